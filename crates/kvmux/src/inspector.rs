//! The request inspector: the last N requests the gateway answered, for `/_kvmux/requests` and
//! the dashboard. Its point is to answer "why did my SDK's call fail?" without a packet capture:
//! for a refused signature it keeps the canonical request and string-to-sign the server computed
//! next to what the client sent. Secrets never enter it: the dialects never put one into
//! `SignatureDiagnostics`, session tokens in the recorded headers are masked here, and so are the
//! signatures of `Authorization` headers and `Signature=` query parameters (a signature seen
//! here could be replayed within the vendor's time window).
//!
//! Anyone who can reach the port can make the gateway record a request, so what it keeps is
//! bounded in bytes, not only in entries: every text field is cut ([`cut`]), at most
//! [`MAX_HEADERS`] headers are kept, and the ring evicts its oldest entries beyond
//! [`DEFAULT_BUDGET_BYTES`]. A refused legacy/V2 signature's string-to-sign holds the whole form
//! body, so it is kept only as a prefix: enough to compare with the client's by eye.

use std::collections::VecDeque;
use std::sync::Mutex;

use kv_dialect::SignatureDiagnostics;
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
    "x-auth-token",
];

/// Query parameters masked for the same reason (Aliyun RPC V2 sends its STS token in the query;
/// Aliyun V2 and Tencent's legacy signature send the signature itself there). Compared without
/// regard to case.
const MASKED_QUERY: &[&str] = &[
    "SecurityToken",
    "security_token",
    "Token",
    "Signature",
    "X-Amz-Signature",
];

/// `Authorization` parameters shown as sent: what a developer needs to tell which key, scope and
/// signed headers the client used. Every other parameter's value (`Signature`, and anything not
/// known) is shown as `***`.
const SHOWN_AUTHORIZATION_PARAMS: &[&str] = &["credential", "signedheaders", "access"];

/// The longest text field kept: the request target, a header name, the canonical request, the
/// string-to-sign, the verifier's reason. A refused Tencent legacy or Aliyun V2 signature's
/// string-to-sign is the whole form body (12 MiB bodies held 596 MiB in 20 entries); its first
/// 4 KiB show the method, path and leading parameters, which is where signing mistakes show.
pub const MAX_FIELD_BYTES: usize = 4 * 1024;
/// The longest header value kept.
pub const MAX_HEADER_VALUE_BYTES: usize = 1024;
/// Short identifying fields: dialect, operation, account, code, request id, key id, algorithm,
/// client signature.
pub const MAX_NAME_BYTES: usize = 128;
/// Headers kept per request; the rest are counted in one last `…` entry.
pub const MAX_HEADERS: usize = 64;
/// What all entries together may weigh ([`Entry::weight`]); the oldest are evicted beyond it.
/// One entry weighs at most about 90 KiB, so this holds at least ~45 of the largest.
pub const DEFAULT_BUDGET_BYTES: usize = 4 << 20;

/// Room kept at the end of a cut field for its marker, `… (N bytes cut)`.
const MARKER_ROOM: usize = 40;

/// `text` if it fits in `max` bytes, else its longest prefix (on a character boundary) followed
/// by `… (N bytes cut)`, the whole at most `max` bytes; so cutting twice changes nothing.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(MARKER_ROOM);
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end)
}

/// An `Authorization` value with its signature masked: the scheme and the parameters in
/// [`SHOWN_AUTHORIZATION_PARAMS`] are kept (cut), every other value becomes `***`. Covers
/// `TC3-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`, `ACS3-HMAC-SHA256
/// Credential=..,SignedHeaders=..,Signature=..` and `SDK-HMAC-SHA256 Access=.., SignedHeaders=..,
/// Signature=..`; a value of any other shape keeps its scheme only.
pub fn mask_authorization(value: &str) -> String {
    let value = value.trim();
    let (scheme, params) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    // Built in one string (this runs for every request the inspector records).
    let mut out = String::with_capacity(value.len() + 16);
    out.push_str(&cut_ref(scheme, MAX_NAME_BYTES));
    let mut first = true;
    for param in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        out.push_str(if first { " " } else { ", " });
        first = false;
        match param.split_once('=') {
            Some((name, value)) => {
                let name = name.trim();
                out.push_str(&cut_ref(name, MAX_NAME_BYTES));
                out.push('=');
                if SHOWN_AUTHORIZATION_PARAMS
                    .iter()
                    .any(|shown| name.eq_ignore_ascii_case(shown))
                {
                    out.push_str(&cut_ref(value.trim(), MAX_HEADER_VALUE_BYTES / 2));
                } else {
                    out.push_str("***");
                }
            }
            None => out.push_str("***"),
        }
    }
    if first || out.len() <= MAX_HEADER_VALUE_BYTES * 2 {
        out
    } else {
        cut(&out, MAX_HEADER_VALUE_BYTES * 2)
    }
}

/// [`cut`] without a copy when `text` fits.
fn cut_ref(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(cut(text, max))
    }
}

/// The verifier's view cut to size: the canonical request and string-to-sign keep a prefix
/// ([`MAX_FIELD_BYTES`]), the short fields [`MAX_NAME_BYTES`]. Works from a reference so that a
/// 12 MiB string-to-sign is never copied whole.
pub fn bounded_signature(d: &SignatureDiagnostics) -> SignatureDiagnostics {
    SignatureDiagnostics {
        algorithm: cut(&d.algorithm, MAX_NAME_BYTES),
        access_key_id: cut(&d.access_key_id, MAX_NAME_BYTES),
        canonical_request: cut(&d.canonical_request, MAX_FIELD_BYTES),
        string_to_sign: cut(&d.string_to_sign, MAX_FIELD_BYTES),
        client_signature: cut(&d.client_signature, MAX_NAME_BYTES),
        reason: cut(&d.reason, MAX_FIELD_BYTES),
    }
}

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
    /// The head as shown: tokens and signatures masked, at most [`MAX_HEADERS`] headers, every
    /// field cut (see the module doc).
    pub fn from_parts(parts: &http::request::Parts, body_bytes: usize) -> Self {
        let mut headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .take(MAX_HEADERS)
            .map(|(name, value)| {
                let name = name.as_str();
                let value = if MASKED_HEADERS.contains(&name) {
                    "***".to_string()
                } else if name == "authorization" {
                    mask_authorization(&kv_core::text::lossy_utf8(value.as_bytes()))
                } else {
                    cut(
                        &kv_core::text::lossy_utf8(value.as_bytes()),
                        MAX_HEADER_VALUE_BYTES,
                    )
                };
                (cut(name, MAX_NAME_BYTES), value)
            })
            .collect();
        let more = parts.headers.len().saturating_sub(MAX_HEADERS);
        if more > 0 {
            headers.push(("…".to_string(), format!("{more} more headers not kept")));
        }
        SentRequest {
            method: cut(parts.method.as_str(), MAX_NAME_BYTES),
            target: cut(&masked_target(&parts.uri), MAX_FIELD_BYTES),
            headers,
            body_bytes,
        }
    }

    fn weight(&self) -> usize {
        self.method.len()
            + self.target.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 2 * std::mem::size_of::<String>())
                .sum::<usize>()
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
            // Compared decoded (`Signatur%65` is `Signature` to the verifier too).
            let decoded: String = form_urlencoded::parse(name.as_bytes())
                .next()
                .map(|(n, _)| n.into_owned())
                .unwrap_or_default();
            if MASKED_QUERY
                .iter()
                .any(|masked| masked.eq_ignore_ascii_case(&decoded))
            {
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

impl Entry {
    /// Cuts every field to its bound (see the module doc); cutting twice changes nothing, so
    /// [`Inspector::record`] applies it to whatever it is given.
    fn bound(&mut self) {
        for field in [&mut self.dialect, &mut self.operation, &mut self.request_id] {
            if field.len() > MAX_NAME_BYTES {
                *field = cut(field, MAX_NAME_BYTES);
            }
        }
        for field in [&mut self.account, &mut self.code, &mut self.fault]
            .into_iter()
            .flatten()
        {
            if field.len() > MAX_NAME_BYTES {
                *field = cut(field, MAX_NAME_BYTES);
            }
        }
        if self.request.headers.len() > MAX_HEADERS + 1 {
            let more = self.request.headers.len() - MAX_HEADERS;
            self.request.headers.truncate(MAX_HEADERS);
            self.request
                .headers
                .push(("…".to_string(), format!("{more} more headers not kept")));
        }
        // Only what is over its bound is cut again (a cut copies; `from_parts` already cut the rest).
        let recut = |field: &mut String, max: usize| {
            if field.len() > max {
                *field = cut(field, max);
            }
        };
        for (name, value) in &mut self.request.headers {
            recut(name, MAX_NAME_BYTES);
            recut(value, MAX_HEADER_VALUE_BYTES * 2);
        }
        recut(&mut self.request.method, MAX_NAME_BYTES);
        recut(&mut self.request.target, MAX_FIELD_BYTES);
        if let Some(signature) = &self.signature {
            self.signature = Some(bounded_signature(signature));
        }
    }

    /// Roughly the bytes this entry holds: its text plus a fixed allowance for the struct.
    fn weight(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let signature = self.signature.as_ref().map_or(0, |d| {
            d.algorithm.len()
                + d.access_key_id.len()
                + d.canonical_request.len()
                + d.string_to_sign.len()
                + d.client_signature.len()
                + d.reason.len()
        });
        std::mem::size_of::<Entry>()
            + self.dialect.len()
            + self.operation.len()
            + self.request_id.len()
            + text(&self.account)
            + text(&self.code)
            + text(&self.fault)
            + self.request.weight()
            + signature
    }
}

/// A bounded ring of recent requests: at most `capacity` entries and `budget` bytes
/// ([`Entry::weight`]). A plain mutex: the critical section is a push/pop, far shorter than
/// anything else a request does.
pub struct Inspector {
    capacity: usize,
    budget: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    /// Each entry with its weight.
    entries: VecDeque<(Entry, usize)>,
    /// The sum of the weights in `entries`.
    bytes: usize,
}

impl Inspector {
    /// A ring of `capacity` entries within [`DEFAULT_BUDGET_BYTES`].
    pub fn new(capacity: usize) -> Self {
        Self::with_budget(capacity, DEFAULT_BUDGET_BYTES)
    }

    /// A ring of `capacity` entries and `budget` bytes.
    pub fn with_budget(capacity: usize, budget: usize) -> Self {
        Inspector {
            capacity,
            budget,
            state: Mutex::new(State::default()),
        }
    }

    /// The bytes (by [`Entry::weight`]) the ring holds now.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }

    /// Whether anything is recorded at all.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Records one request, cut to its bounds; assigns its sequence number. Drops the oldest
    /// beyond capacity or beyond the byte budget (the newest entry is always kept).
    pub fn record(&self, mut entry: Entry) {
        if self.capacity == 0 {
            return;
        }
        entry.bound();
        let weight = entry.weight();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.next_seq += 1;
        entry.seq = state.next_seq;
        state.entries.push_back((entry, weight));
        state.bytes += weight;
        while state.entries.len() > self.capacity
            || (state.bytes > self.budget && state.entries.len() > 1)
        {
            match state.entries.pop_front() {
                Some((_, w)) => state.bytes -= w,
                None => break,
            }
        }
    }

    /// Newest first, with `seq > after`, filtered, at most `limit`.
    pub fn recent(&self, query: &Query) -> Vec<Entry> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .entries
            .iter()
            .rev()
            .map(|(e, _)| e)
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
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.entries.clear();
        state.bytes = 0;
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
    fn cut_keeps_a_marked_prefix_on_a_char_boundary_and_is_idempotent() {
        assert_eq!(cut("short", 100), "short");
        let long = "é".repeat(5000); // 10,000 bytes
        let once = cut(&long, 4096);
        assert!(once.len() <= 4096, "{}", once.len());
        assert!(once.ends_with("bytes cut)"), "{once}");
        assert!(once.starts_with("éé"));
        assert_eq!(cut(&once, 4096), once);
    }

    #[test]
    fn authorization_signatures_are_masked_and_credentials_kept() {
        for (sent, kept, secret) in [
            (
                "TC3-HMAC-SHA256 Credential=AKIDkvmuxdev/2026-01-01/teo/tc3_request, \
                 SignedHeaders=content-type;host, Signature=0123456789abcdef",
                "TC3-HMAC-SHA256 Credential=AKIDkvmuxdev/2026-01-01/teo/tc3_request, \
                 SignedHeaders=content-type;host, Signature=***",
                "0123456789abcdef",
            ),
            (
                "ACS3-HMAC-SHA256 Credential=LTAIkvmuxdev,SignedHeaders=host;x-acs-date,\
                 Signature=fedcba9876543210",
                "ACS3-HMAC-SHA256 Credential=LTAIkvmuxdev, SignedHeaders=host;x-acs-date, \
                 Signature=***",
                "fedcba9876543210",
            ),
            (
                "SDK-HMAC-SHA256 Access=testak, SignedHeaders=host;x-sdk-date, Signature=8dc97092",
                "SDK-HMAC-SHA256 Access=testak, SignedHeaders=host;x-sdk-date, Signature=***",
                "8dc97092",
            ),
            (
                "Bearer opaque-token-value",
                "Bearer ***",
                "opaque-token-value",
            ),
        ] {
            let shown = mask_authorization(sent);
            assert_eq!(shown, kept);
            assert!(!shown.contains(secret));
        }
        let req = http::Request::builder()
            .uri("/?Action=PutKv&signature=abc123&Signatur%65=def456&AccessKeyId=LTAI")
            .header(
                "authorization",
                "TC3-HMAC-SHA256 Credential=AKID/x, Signature=abc789",
            )
            .body(())
            .expect("request");
        let (parts, _) = req.into_parts();
        let shown = serde_json::to_string(&SentRequest::from_parts(&parts, 0)).expect("json");
        for secret in ["abc123", "def456", "abc789"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("AccessKeyId=LTAI"), "{shown}");
        assert!(shown.contains("Credential=AKID/x"), "{shown}");
    }

    #[test]
    fn entries_are_cut_and_the_ring_stays_within_its_byte_budget() {
        let mut builder = http::Request::builder().uri(format!("/?q={}", "a".repeat(20_000)));
        for i in 0..100 {
            builder = builder.header(format!("x-h{i}"), "v".repeat(5000));
        }
        let (parts, _) = builder.body(()).expect("request").into_parts();
        let sent = SentRequest::from_parts(&parts, 12 << 20);
        assert_eq!(sent.headers.len(), MAX_HEADERS + 1);
        assert_eq!(sent.headers[MAX_HEADERS].1, "36 more headers not kept");
        assert!(sent.headers[0].1.len() <= MAX_HEADER_VALUE_BYTES);
        assert!(sent.target.len() <= MAX_FIELD_BYTES);

        let big = "p".repeat(12 << 20);
        let diagnostics = SignatureDiagnostics {
            algorithm: "HmacSHA256".into(),
            access_key_id: "AKID".into(),
            canonical_request: big.clone(),
            string_to_sign: big,
            client_signature: "sig".into(),
            reason: "mismatch".into(),
        };
        let budget = 256 * 1024;
        let inspector = Inspector::with_budget(500, budget);
        for _ in 0..50 {
            let mut e = entry("tencent", 200);
            e.operation = "o".repeat(10_000);
            e.request = sent.clone();
            e.signature = Some(diagnostics.clone());
            inspector.record(e);
        }
        let kept = inspector.recent(&Query::default());
        assert!(kept.len() < 50 && !kept.is_empty(), "{}", kept.len());
        assert!(inspector.bytes() <= budget, "{}", inspector.bytes());
        let json = serde_json::to_string(&kept).expect("json");
        assert!(json.len() <= budget * 2, "{}", json.len());
        let signature = kept[0].signature.as_ref().expect("diagnostics kept");
        assert!(signature.string_to_sign.len() <= MAX_FIELD_BYTES);
        assert!(signature.string_to_sign.ends_with("bytes cut)"));
        assert!(kept[0].operation.len() <= MAX_NAME_BYTES);
        inspector.clear();
        assert_eq!(inspector.bytes(), 0);
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
