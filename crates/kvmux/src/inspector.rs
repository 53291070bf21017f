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
/// Signature=..`; a value of any other shape keeps its scheme only. Appended to `out` (the
/// recorded head's one buffer).
fn mask_authorization_into(value: &str, out: &mut String) {
    let start = out.len();
    let value = value.trim();
    let (scheme, params) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    out.reserve(value.len() + 16);
    push_cut(out, scheme, MAX_NAME_BYTES);
    let mut first = true;
    for param in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        out.push_str(if first { " " } else { ", " });
        first = false;
        match param.split_once('=') {
            Some((name, value)) => {
                let name = name.trim();
                push_cut(out, name, MAX_NAME_BYTES);
                out.push('=');
                if SHOWN_AUTHORIZATION_PARAMS
                    .iter()
                    .any(|shown| name.eq_ignore_ascii_case(shown))
                {
                    push_cut(out, value.trim(), MAX_HEADER_VALUE_BYTES / 2);
                } else {
                    out.push_str("***");
                }
            }
            None => out.push_str("***"),
        }
    }
    if !first {
        cut_tail(out, start, MAX_HEADER_VALUE_BYTES * 2);
    }
}

/// Appends [`cut`]`(text, max)` to `out` without a copy of its own when `text` fits.
fn push_cut(out: &mut String, text: &str, max: usize) {
    if text.len() <= max {
        out.push_str(text);
    } else {
        out.push_str(&cut(text, max));
    }
}

/// Cuts what `out` holds from `start` on to `max` bytes, as [`cut`] would.
fn cut_tail(out: &mut String, start: usize, max: usize) {
    if out.len() - start > max {
        let cut_text = cut(&out[start..], max);
        out.truncate(start);
        out.push_str(&cut_text);
    }
}

/// [`cut`] without a copy when `text` fits.
pub fn cut_ref(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
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

/// What the client sent, as far as the inspector shows it: tokens and signatures masked, at most
/// [`MAX_HEADERS`] headers, every field cut (see the module doc), all of it recorded into one
/// string. A `String` per header name and value was 22 of a signed get's 165 allocations
/// (docs/BENCHMARKS.md); this is two. Serialized as `{"method", "target", "headers": [[name,
/// value], ...], "body_bytes"}`, with a last `["…", "N more headers not kept"]` when headers
/// were left out.
#[derive(Clone, Debug)]
pub struct SentRequest {
    /// The method, the target, then each kept header's name and value, back to back.
    text: String,
    /// Where each field ends in `text`: the method, the target, then each name and value.
    ends: Vec<u32>,
    /// Headers left out past [`MAX_HEADERS`].
    more_headers: usize,
    pub body_bytes: usize,
}

impl SentRequest {
    /// The head as shown: tokens and signatures masked, at most [`MAX_HEADERS`] headers, every
    /// field cut (see the module doc).
    pub fn from_parts(parts: &http::request::Parts, body_bytes: usize) -> Self {
        let kept = parts.headers.len().min(MAX_HEADERS);
        let mut sent = SentRequest {
            text: String::with_capacity(256 + 48 * kept),
            ends: Vec::with_capacity(2 + 2 * kept),
            more_headers: parts.headers.len() - kept,
            body_bytes,
        };
        push_cut(&mut sent.text, parts.method.as_str(), MAX_NAME_BYTES);
        sent.end_field();
        let target = sent.text.len();
        push_masked_target(&mut sent.text, &parts.uri);
        cut_tail(&mut sent.text, target, MAX_FIELD_BYTES);
        sent.end_field();
        for (name, value) in parts.headers.iter().take(MAX_HEADERS) {
            let name = name.as_str();
            push_cut(&mut sent.text, name, MAX_NAME_BYTES);
            sent.end_field();
            if MASKED_HEADERS.contains(&name) {
                sent.text.push_str("***");
            } else if name == "authorization" {
                mask_authorization_into(
                    &kv_core::text::lossy_utf8(value.as_bytes()),
                    &mut sent.text,
                );
            } else {
                push_cut(
                    &mut sent.text,
                    &kv_core::text::lossy_utf8(value.as_bytes()),
                    MAX_HEADER_VALUE_BYTES,
                );
            }
            sent.end_field();
        }
        sent
    }

    fn end_field(&mut self) {
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    /// Field `i` (0 the method, 1 the target, then names and values).
    fn field(&self, i: usize) -> &str {
        let start = match i {
            0 => 0,
            _ => self.ends.get(i - 1).map_or(0, |&e| e as usize),
        };
        let end = self.ends.get(i).map_or(start, |&e| e as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    pub fn method(&self) -> &str {
        self.field(0)
    }

    /// Path and query, with masked token parameters.
    pub fn target(&self) -> &str {
        self.field(1)
    }

    /// The kept headers, as shown.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        let pairs = self.ends.len().saturating_sub(2) / 2;
        (0..pairs).map(|h| (self.field(2 + 2 * h), self.field(3 + 2 * h)))
    }

    /// Headers left out past [`MAX_HEADERS`].
    pub fn more_headers(&self) -> usize {
        self.more_headers
    }

    fn weight(&self) -> usize {
        self.text.len() + self.ends.len() * std::mem::size_of::<u32>()
    }
}

impl Serialize for SentRequest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeStruct};

        struct Headers<'a>(&'a SentRequest);
        impl Serialize for Headers<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let more = self.0.more_headers;
                let mut seq = serializer.serialize_seq(None)?;
                for pair in self.0.headers() {
                    seq.serialize_element(&pair)?;
                }
                if more > 0 {
                    seq.serialize_element(&("…", format!("{more} more headers not kept")))?;
                }
                seq.end()
            }
        }

        let mut fields = serializer.serialize_struct("SentRequest", 4)?;
        fields.serialize_field("method", self.method())?;
        fields.serialize_field("target", self.target())?;
        fields.serialize_field("headers", &Headers(self))?;
        fields.serialize_field("body_bytes", &self.body_bytes)?;
        fields.end()
    }
}

/// Appends the path and query with the values of [`MASKED_QUERY`] parameters as `***`.
fn push_masked_target(out: &mut String, uri: &http::Uri) {
    out.push_str(uri.path());
    let Some(query) = uri.query() else {
        return;
    };
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let name = pair.split('=').next().unwrap_or_default();
        // Compared decoded (`Signatur%65` is `Signature` to the verifier too).
        let decoded = form_urlencoded::parse(name.as_bytes())
            .next()
            .map(|(n, _)| n)
            .unwrap_or_default();
        if MASKED_QUERY
            .iter()
            .any(|masked| masked.eq_ignore_ascii_case(&decoded))
        {
            out.push_str(name);
            out.push_str("=***");
        } else {
            out.push_str(pair);
        }
    }
}

/// One answered request.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// Increasing sequence number; the dashboard polls with `?after=` on it.
    pub seq: u64,
    /// Wall clock, unix milliseconds.
    pub time_ms: u64,
    /// A dialect's name, `admin` or `none`: from the code, never from the request.
    pub dialect: &'static str,
    /// One of the dialect's operation names ([`kv_dialect::Dialect::operations`]), `unknown`,
    /// or an admin route's name: from the code, never from the request.
    pub operation: &'static str,
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
        if self.request_id.len() > MAX_NAME_BYTES {
            self.request_id = cut(&self.request_id, MAX_NAME_BYTES);
        }
        for field in [&mut self.account, &mut self.code, &mut self.fault]
            .into_iter()
            .flatten()
        {
            if field.len() > MAX_NAME_BYTES {
                *field = cut(field, MAX_NAME_BYTES);
            }
        }
        // `request` is bounded as it is recorded (`SentRequest::from_parts`).
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

    fn entry(dialect: &'static str, status: u16) -> Entry {
        Entry {
            seq: 0,
            time_ms: 0,
            dialect,
            operation: "op",
            account: None,
            status,
            code: None,
            request_id: String::new(),
            latency_ms: 0.0,
            fault: None,
            request: SentRequest::from_parts(
                &http::Request::post("/")
                    .body(())
                    .expect("request")
                    .into_parts()
                    .0,
                0,
            ),
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
            let mut shown = String::new();
            mask_authorization_into(sent, &mut shown);
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
        assert_eq!(sent.headers().count(), MAX_HEADERS);
        assert_eq!(sent.more_headers(), 36);
        let (name, value) = sent.headers().next().expect("a header");
        assert_eq!(name, "x-h0");
        assert!(value.len() <= MAX_HEADER_VALUE_BYTES);
        assert!(
            value.starts_with("vvv") && value.ends_with("bytes cut)"),
            "{value}"
        );
        assert!(sent.target().len() <= MAX_FIELD_BYTES);
        assert!(sent.target().starts_with("/?q=aaa"));
        let json: serde_json::Value = serde_json::to_value(&sent).expect("json");
        let headers = json["headers"].as_array().expect("headers");
        assert_eq!(headers.len(), MAX_HEADERS + 1);
        assert_eq!(
            headers[MAX_HEADERS],
            serde_json::json!(["…", "36 more headers not kept"])
        );
        assert_eq!(json["body_bytes"], 12 << 20);

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
            e.request_id = "r".repeat(10_000);
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
        assert!(kept[0].request_id.len() <= MAX_NAME_BYTES);
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

    #[test]
    fn a_recorded_head_serializes_as_method_target_header_pairs_and_body_bytes() {
        let (parts, _) = http::Request::put("/kv/a%20b?SecurityToken=sts&x=1")
            .header("host", "127.0.0.1:9090")
            .header(
                "authorization",
                "SDK-HMAC-SHA256 Access=ak, SignedHeaders=host, Signature=abc",
            )
            .header("x-tc-token", "tok")
            .header("x-empty", "")
            .body(())
            .expect("request")
            .into_parts();
        let sent = SentRequest::from_parts(&parts, 5);
        assert_eq!(sent.method(), "PUT");
        assert_eq!(sent.target(), "/kv/a%20b?SecurityToken=***&x=1");
        assert_eq!(
            serde_json::to_value(&sent).expect("json"),
            serde_json::json!({
                "method": "PUT",
                "target": "/kv/a%20b?SecurityToken=***&x=1",
                "headers": [
                    ["host", "127.0.0.1:9090"],
                    ["authorization", "SDK-HMAC-SHA256 Access=ak, SignedHeaders=host, Signature=***"],
                    ["x-tc-token", "***"],
                    ["x-empty", ""],
                ],
                "body_bytes": 5,
            })
        );
    }
}
