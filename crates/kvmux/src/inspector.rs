//! The request inspector: the last N requests the gateway answered, for `/_kvmux/requests` and
//! the dashboard. Its point is to answer "why did my SDK's call fail?" without a packet capture:
//! for a refused signature it keeps the canonical request and string-to-sign the server computed
//! next to what the client sent. Secrets never enter it: the dialects never put one into
//! `SignatureDiagnostics`, and session tokens in the recorded headers are masked here.

use std::collections::VecDeque;
use std::sync::Mutex;

use kv_core::SignatureDiagnostics;
use serde::Serialize;

/// Headers whose values are credentials in their own right (STS/session tokens, cookies); they
/// are recorded as `***` so that the inspector can be shown on a shared screen.
const MASKED_HEADERS: &[&str] = &[
    "x-tc-token",
    "x-acs-security-token",
    "x-security-token",
    "x-amz-security-token",
    "cookie",
    "proxy-authorization",
];

/// Query parameters masked for the same reason (Aliyun RPC V2 sends its STS token in the query).
const MASKED_QUERY: &[&str] = &["SecurityToken", "security_token", "Token"];

/// What the client sent, as far as the inspector shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SentRequest {
    pub method: String,
    /// Path and query, with masked token parameters.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body_bytes: usize,
}

impl SentRequest {
    pub fn from_parts(parts: &http::request::Parts, body_bytes: usize) -> Self {
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                let name = name.as_str().to_string();
                let value = if MASKED_HEADERS.contains(&name.as_str()) {
                    "***".to_string()
                } else {
                    kv_core::text::lossy_utf8(value.as_bytes()).into_owned()
                };
                (name, value)
            })
            .collect();
        SentRequest {
            method: parts.method.to_string(),
            target: masked_target(&parts.uri),
            headers,
            body_bytes,
        }
    }
}

fn masked_target(uri: &http::Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_string();
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            if MASKED_QUERY.contains(&name) {
                format!("{name}=***")
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{path}?{}", masked.join("&"))
}

/// One answered request.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// Increasing sequence number; the dashboard polls with `?after=` on it.
    pub seq: u64,
    /// Wall clock, unix milliseconds.
    pub time_ms: u64,
    pub dialect: String,
    pub operation: String,
    pub account: Option<String>,
    pub status: u16,
    /// The vendor's error code, when the reply was an error.
    pub code: Option<String>,
    pub request_id: String,
    pub latency_ms: f64,
    /// Set when a fault rule answered (or delayed) this request, naming the rule.
    pub fault: Option<String>,
    pub request: SentRequest,
    /// The verifier's view, for a refused signature.
    pub signature: Option<SignatureDiagnostics>,
}

/// A bounded ring of recent requests. A plain mutex: the critical section is a push/pop, far
/// shorter than anything else a request does.
pub struct Inspector {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    entries: VecDeque<Entry>,
}

impl Inspector {
    pub fn new(capacity: usize) -> Self {
        Inspector {
            capacity,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether anything is recorded at all.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Records one request; assigns its sequence number. Drops the oldest beyond capacity.
    pub fn record(&self, mut entry: Entry) {
        if self.capacity == 0 {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.next_seq += 1;
        entry.seq = state.next_seq;
        state.entries.push_back(entry);
        while state.entries.len() > self.capacity {
            state.entries.pop_front();
        }
    }

    /// Newest first, with `seq > after`, filtered, at most `limit`.
    pub fn recent(&self, query: &Query) -> Vec<Entry> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .entries
            .iter()
            .rev()
            .filter(|e| query.after.is_none_or(|a| e.seq > a))
            .filter(|e| query.dialect.as_deref().is_none_or(|d| e.dialect == d))
            .filter(|e| query.operation.as_deref().is_none_or(|o| e.operation == o))
            .filter(|e| !query.errors_only || e.status >= 400 || e.code.is_some())
            .take(query.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    /// Forgets everything recorded so far (sequence numbers keep increasing).
    pub fn clear(&self) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .clear();
    }
}

/// Filters of `GET /_kvmux/requests`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub after: Option<u64>,
    pub limit: Option<usize>,
    pub dialect: Option<String>,
    pub operation: Option<String>,
    #[serde(default)]
    pub errors_only: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dialect: &str, status: u16) -> Entry {
        Entry {
            seq: 0,
            time_ms: 0,
            dialect: dialect.into(),
            operation: "op".into(),
            account: None,
            status,
            code: None,
            request_id: String::new(),
            latency_ms: 0.0,
            fault: None,
            request: SentRequest {
                method: "POST".into(),
                target: "/".into(),
                headers: vec![],
                body_bytes: 0,
            },
            signature: None,
        }
    }

    #[test]
    fn keeps_the_newest_capacity_entries_newest_first() {
        let inspector = Inspector::new(3);
        for i in 0..5 {
            inspector.record(entry(if i % 2 == 0 { "tencent" } else { "huawei" }, 200));
        }
        let seqs: Vec<u64> = inspector
            .recent(&Query::default())
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![5, 4, 3]);
        let after = Query {
            after: Some(3),
            ..Default::default()
        };
        assert_eq!(inspector.recent(&after).len(), 2);
        let huawei = Query {
            dialect: Some("huawei".into()),
            ..Default::default()
        };
        assert_eq!(inspector.recent(&huawei)[0].seq, 4);
    }

    #[test]
    fn tokens_are_masked_in_headers_and_query() {
        let req = http::Request::builder()
            .uri("/?Action=GetKv&SecurityToken=sts-secret&AccessKeyId=LTAI")
            .header("x-acs-security-token", "sts-secret")
            .header("x-acs-action", "GetKv")
            .body(())
            .expect("request");
        let (parts, _) = req.into_parts();
        let sent = SentRequest::from_parts(&parts, 0);
        let shown = serde_json::to_string(&sent).expect("json");
        assert!(!shown.contains("sts-secret"), "{shown}");
        assert!(shown.contains("SecurityToken=***"), "{shown}");
        assert!(shown.contains("AccessKeyId=LTAI"), "{shown}");
        assert!(shown.contains("GetKv"), "{shown}");
    }
}
