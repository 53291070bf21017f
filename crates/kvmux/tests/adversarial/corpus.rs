//! The seeded generator of malformed requests. Each case is aimed at one dialect (its claim
//! marks are kept unless the case is about losing them), falls in one category, and says which
//! answers are acceptable besides that dialect's error envelope.

use serde_json::{json, Value};

use super::raw::{Framing, RawRequest};
use super::Vendor;

/// The containers the corpus aims at (created by the valid-traffic setup beforehand, so bad
/// requests on existing containers reach the deeper code paths too).
pub const TENCENT_ZONE: &str = "zone-bench";
pub const TENCENT_NAMESPACE: &str = "kvmux-bench";
pub const ALIYUN_NAMESPACE: &str = "kvmux-bench";
pub const HUAWEI_STORE: &str = "benchstore";
pub const HUAWEI_TABLE: &str = "bench";

/// Which answers besides the aimed dialect's error envelope are correct for a case.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allow {
    /// Another dialect's envelope or the gateway's unclaimed 400 (the case removed or garbled
    /// what makes the aimed dialect claim it).
    pub other_dialect: bool,
    /// A success envelope (the defect is one the vendor tolerates, e.g. an extra header).
    pub success: bool,
    /// hyper's empty 4xx or a closed connection: the bytes are not an HTTP request.
    pub http_level: bool,
    /// Huawei's documented 501 `KVS.00000002` for an unknown `/v1/<op>`.
    pub not_implemented: bool,
    /// A success too when signatures are not checked (auth off): the case is refused only
    /// because its signature does not cover what was changed, or names an unknown key.
    pub success_without_auth: bool,
    /// The case is an admin call: the answer must be the admin API's own 401, 403 or 415 JSON
    /// refusal, never a vendor envelope or a success.
    pub admin: bool,
}

/// One malformed request.
#[derive(Clone, Debug)]
pub struct Case {
    pub vendor: Vendor,
    pub category: &'static str,
    pub what: String,
    pub request: RawRequest,
    pub allow: Allow,
    /// Whether the corpus runner should sign it when signatures are enforced (false when the
    /// case is about the signature itself, or the framing makes it unsignable).
    pub sign: bool,
}

/// The generator: a seeded RNG and the gateway's address (the Host the SDKs would send).
pub struct Corpus {
    pub(super) rng: fastrand::Rng,
    pub(super) host: String,
    deep_doc: Vec<u8>,
    deep_array: Vec<u8>,
}

const METHODS: [&str; 9] = [
    "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO", "post", "M-SEARCH", "PROPFIND",
];

/// Values of every JSON type but the expected one get picked from here.
fn wrong_json_values() -> Vec<Value> {
    vec![
        json!(123),
        json!(-1),
        json!(1.5),
        json!(true),
        json!(null),
        json!([]),
        json!({}),
        json!("str"),
        json!([1, 2]),
        json!({"a": 1}),
        json!([null]),
        json!([{"x": []}]),
        json!(""),
    ]
}

const HUGE_NUMBERS: [&str; 10] = [
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "-1e308",
    "123456789012345678901234567890",
    "4294967296",
    "-0",
    "0.000000000000000000000000001",
];

const INVALID_UTF8: [&[u8]; 6] = [
    b"\xff",
    b"\xc3\x28",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"a\xfe\xfeb",
];

impl Corpus {
    pub fn new(seed: u64, port: u16) -> Self {
        Corpus {
            rng: fastrand::Rng::with_seed(seed),
            host: format!("127.0.0.1:{port}"),
            deep_doc: nested_bson(10_000, 0x03),
            deep_array: nested_bson(10_000, 0x04),
        }
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.usize(..items.len())]
    }

    fn bad_utf8(&mut self) -> Vec<u8> {
        let mut v = b"k".to_vec();
        let bad = *self.pick(&INVALID_UTF8);
        v.extend_from_slice(bad);
        v
    }

    /// The next case. Of every ten, six are the malformed-request families (dialects in turn),
    /// two grow labels and the inspector, one overrides an unsigned part of a signed request and
    /// one is a foreign admin call (the trust families, in `trust.rs`).
    pub fn case(&mut self, index: usize) -> Case {
        match index % 10 {
            6 | 7 => return self.label_growth(index),
            8 => return self.unsigned_override(),
            9 => return self.admin_foreign(),
            _ => {}
        }
        match (index / 10 * 6 + index % 10) % 4 {
            0 => self.tencent(),
            1 => self.aliyun(),
            2 => self.huawei(),
            // Bytes that are not HTTP, or HTTP that breaks framing, aimed at each dialect in turn.
            _ => {
                let vendor = *self.pick(&[Vendor::Tencent, Vendor::Aliyun, Vendor::Huawei]);
                if self.rng.bool() {
                    self.http_garbage(vendor)
                } else {
                    self.framing(vendor)
                }
            }
        }
    }

    // ---------------------------------------------------------------- Tencent

    fn tencent_base(&self, action: &str, body: &[u8]) -> RawRequest {
        RawRequest::new("POST", "/")
            .header("Host", &self.host)
            .header("Content-Type", "application/json")
            .header("X-TC-Action", action)
            .header("X-TC-Version", "2022-09-01")
            .body(body.to_vec())
    }

    /// A well-formed parameter object for `action`.
    fn tencent_params(&mut self, action: &str) -> serde_json::Map<String, Value> {
        let ns = json!(TENCENT_NAMESPACE);
        let v = match action {
            "EdgeKVPut" => {
                json!({"ZoneId": TENCENT_ZONE, "Namespace": ns, "Key": "k1", "Value": "v", "ExpirationTTL": 3600})
            }
            "EdgeKVGet" => json!({"ZoneId": TENCENT_ZONE, "Namespace": ns, "Keys": ["k1", "k2"]}),
            "EdgeKVDelete" => json!({"ZoneId": TENCENT_ZONE, "Namespace": ns, "Keys": ["k1"]}),
            "EdgeKVList" => {
                json!({"ZoneId": TENCENT_ZONE, "Namespace": ns, "Prefix": "k", "Limit": 10, "Cursor": ""})
            }
            "CreateEdgeKVNamespace" => {
                json!({"ZoneId": TENCENT_ZONE, "Namespace": TENCENT_NAMESPACE, "Remark": "r"})
            }
            "DeleteEdgeKVNamespace" => json!({"ZoneId": TENCENT_ZONE, "Namespace": "never-made"}),
            "ModifyEdgeKVNamespace" => {
                json!({"ZoneId": TENCENT_ZONE, "Namespace": ns, "Remark": "r"})
            }
            _ => {
                json!({"ZoneId": TENCENT_ZONE, "Offset": 0, "Limit": 20, "Filters": [{"Name": "namespace", "Values": ["kvmux"], "Fuzzy": true}], "SortBy": "created_on", "SortOrder": "asc"})
            }
        };
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn tencent(&mut self) -> Case {
        match self.rng.u8(..12) {
            0..=2 => return self.tencent_mutated(),
            3 => return self.tencent_legacy(),
            _ => {}
        }
        let action = *self.pick(&[
            "EdgeKVPut",
            "EdgeKVGet",
            "EdgeKVDelete",
            "EdgeKVList",
            "CreateEdgeKVNamespace",
            "DeleteEdgeKVNamespace",
            "ModifyEdgeKVNamespace",
            "DescribeEdgeKVNamespaces",
        ]);
        let params = self.tencent_params(action);
        let fields: Vec<String> = params.keys().cloned().collect();
        let valid = Value::Object(params.clone()).to_string();
        let mut allow = Allow::default();
        let mut sign = true;
        let (category, what, request) = match self.rng.u8(..11) {
            0 => {
                let body: Vec<u8> = match self.rng.u8(..8) {
                    0 => {
                        let cut = self.rng.usize(1..valid.len());
                        valid.as_bytes()[..cut].to_vec()
                    }
                    1 => b"[]".to_vec(),
                    2 => self
                        .pick(&[&b"null"[..], b"42", b"\"str\"", b"true"])
                        .to_vec(),
                    3 => b"{\"Key\":}".to_vec(),
                    4 => format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
                    5 => {
                        let mut b = b"\xef\xbb\xbf".to_vec();
                        b.extend_from_slice(valid.as_bytes());
                        b
                    }
                    6 => (0..self.rng.usize(1..200))
                        .map(|_| self.rng.u8(..))
                        .collect(),
                    _ => format!("{valid}}}}}garbage").into_bytes(),
                };
                (
                    "json-syntax",
                    format!(
                        "{action}: {} body bytes that are not one JSON object",
                        body.len()
                    ),
                    self.tencent_base(action, &body),
                )
            }
            1 => {
                let mut p = params.clone();
                let field = self.pick(&fields).clone();
                let original = std::mem::discriminant(&p[&field]);
                let others: Vec<Value> = wrong_json_values()
                    .into_iter()
                    .filter(|v| std::mem::discriminant(v) != original)
                    .collect();
                let wrong = self.pick(&others).clone();
                // An explicit null means "not given" (the SDKs drop unset fields).
                allow.success = wrong.is_null();
                p.insert(field.clone(), wrong.clone());
                let extra = if self.rng.bool() { "Keys" } else { "Limit" };
                if self.rng.u8(..4) == 0 {
                    p.insert(extra.into(), json!({"nested": [wrong.clone()]}));
                }
                (
                    "json-types",
                    format!("{action}: {field} = {wrong}"),
                    self.tencent_base(action, Value::Object(p).to_string().as_bytes()),
                )
            }
            2 => {
                let field = *self.pick(&["Limit", "Offset", "ExpirationTTL", "Expiration"]);
                let n = *self.pick(&HUGE_NUMBERS);
                let mut text = Value::Object(params.clone()).to_string();
                text.insert_str(text.len() - 1, &format!(",\"{field}\":{n}"));
                // A far-future expiry is a valid request.
                allow.success = field.starts_with("Expiration");
                (
                    "huge-numbers",
                    format!("{action}: {field} = {n}"),
                    self.tencent_base(action, text.as_bytes()),
                )
            }
            3 => {
                let bad = self.bad_utf8();
                let (what, req) = match self.rng.u8(..4) {
                    0 | 1 => {
                        // Raw invalid bytes inside a JSON string (key, value or namespace).
                        let field = *self.pick(&["Key", "Value", "Namespace", "Prefix", "ZoneId"]);
                        let mut body =
                            b"{\"ZoneId\":\"zone-bench\",\"Namespace\":\"kvmux-bench\",\"".to_vec();
                        body.extend_from_slice(field.as_bytes());
                        body.extend_from_slice(b"\":\"");
                        body.extend_from_slice(&bad);
                        body.extend_from_slice(b"\",\"Keys\":[\"");
                        body.extend_from_slice(&bad);
                        body.extend_from_slice(b"\"]}");
                        (
                            format!("{action}: invalid UTF-8 in {field}"),
                            self.tencent_base(action, &body),
                        )
                    }
                    2 => {
                        let body = br#"{"ZoneId":"zone-bench","Namespace":"kvmux-bench","Key":"\ud800","Value":"\udfff","Keys":["\ud800x"]}"#;
                        (
                            format!("{action}: lone surrogate escapes"),
                            self.tencent_base(action, body),
                        )
                    }
                    _ => {
                        let name = *self.pick(&[
                            "X-TC-Action",
                            "X-TC-Version",
                            "Content-Type",
                            "X-TC-Timestamp",
                            "X-TC-Region",
                        ]);
                        let mut r = self.tencent_base(action, valid.as_bytes());
                        r.set(name, &bad);
                        allow.other_dialect = name == "X-TC-Action";
                        // Unreadable Content-Type/Region are ignored; an unreadable timestamp only
                        // matters to the signature check, which is off in one of the two runs.
                        allow.success =
                            matches!(name, "Content-Type" | "X-TC-Region" | "X-TC-Timestamp");
                        (format!("{action}: invalid UTF-8 in header {name}"), r)
                    }
                };
                ("invalid-utf8", what, req)
            }
            4 => {
                let mut r;
                let what = match self.rng.u8(..4) {
                    0 => {
                        let mut p = params.clone();
                        let required: Vec<String> = fields
                            .iter()
                            .filter(|f| {
                                matches!(f.as_str(), "Namespace" | "Key" | "Keys" | "Value")
                            })
                            .cloned()
                            .collect();
                        let field = if required.is_empty() {
                            "ZoneId".to_string()
                        } else {
                            self.pick(&required).clone()
                        };
                        p.remove(&field);
                        r = self.tencent_base(action, Value::Object(p).to_string().as_bytes());
                        format!("{action} without {field}")
                    }
                    1 => {
                        r = self.tencent_base(action, b"{}");
                        format!("{action} with no parameters")
                    }
                    2 => {
                        r = self.tencent_base(action, valid.as_bytes());
                        r.headers
                            .retain(|(n, _)| !n.eq_ignore_ascii_case(b"x-tc-version"));
                        format!("{action} without X-TC-Version")
                    }
                    _ => {
                        r = self.tencent_base(action, b"");
                        format!("{action} with an empty body")
                    }
                };
                ("missing-params", what, r)
            }
            5 => {
                let field = self.pick(&fields).clone();
                let mut text = Value::Object(params.clone()).to_string();
                let wrong = self.pick(&wrong_json_values()).to_string();
                text.insert_str(text.len() - 1, &format!(",\"{field}\":{wrong}"));
                let mut r = self.tencent_base(action, text.as_bytes());
                if self.rng.bool() {
                    r = r.header("X-TC-Action", "EdgeKVScan");
                }
                allow.success = true;
                (
                    "duplicate-params",
                    format!("{action}: {field} twice (second {wrong})"),
                    r,
                )
            }
            6 => {
                let ct: &[u8] = self.pick::<&[u8]>(&[
                    &b"text/plain"[..],
                    b"application/x-www-form-urlencoded",
                    b"application/xml",
                    b"multipart/form-data",
                    b"application/json; charset=utf-8",
                    b"\x01\x02garbage",
                    b"application/\xffjson",
                    b"",
                ]);
                let mut r = self.tencent_base(action, valid.as_bytes());
                if ct.is_empty() {
                    r.headers
                        .retain(|(n, _)| !n.eq_ignore_ascii_case(b"content-type"));
                } else {
                    r.set("Content-Type", ct);
                }
                allow.success = true;
                // Control characters are not legal in a header value: hyper refuses the request.
                allow.http_level = ct.starts_with(b"\x01");
                (
                    "content-type",
                    format!("{action} as {:?}", String::from_utf8_lossy(ct)),
                    r,
                )
            }
            7 => {
                let mut r = self.tencent_base(action, valid.as_bytes());
                let what = self.garbage_headers(&mut r);
                // hyper answers more than 100 headers with its own 431 before any dialect sees them.
                allow.http_level = what.contains("extra headers");
                allow.success = true;
                ("garbage-headers", format!("{action}: {what}"), r)
            }
            8 => {
                let method = *self.pick(&METHODS);
                let mut r = self.tencent_base(action, valid.as_bytes());
                r.method = method.as_bytes().to_vec();
                ("bad-method", format!("{method} {action}"), r)
            }
            9 => {
                let path = *self.pick(&[
                    "/x",
                    "//",
                    "/index.html",
                    "/%FF",
                    "/v1",
                    "/v2/x",
                    "/./",
                    "/%2F",
                ]);
                let mut r = self.tencent_base(action, valid.as_bytes());
                r.target = path.as_bytes().to_vec();
                allow.other_dialect = true;
                ("bad-path", format!("{action} at {path}"), r)
            }
            _ => {
                let mut r = self.tencent_base(action, valid.as_bytes());
                let what = match self.rng.u8(..6) {
                    0 => {
                        r.set("X-TC-Action", "EdgeKVScan");
                        "unknown action".to_string()
                    }
                    1 => {
                        r.set("X-TC-Action", action.to_ascii_lowercase());
                        "lower-case action".to_string()
                    }
                    2 => {
                        r.set("X-TC-Action", "A".repeat(4000));
                        "4000-byte action".to_string()
                    }
                    3 => {
                        r.set("X-TC-Version", "2017-03-12");
                        "wrong version".to_string()
                    }
                    4 => {
                        r.set(
                            "X-TC-Timestamp",
                            *self.pick(&["abc", "-1", "99999999999999999999", "1e9", ""]),
                        );
                        sign = false;
                        r.set("Authorization", "TC3-HMAC-SHA256 Credential=AKIDkvmuxdev/2026-01-01/teo/tc3_request, SignedHeaders=content-type;host, Signature=00");
                        "bad X-TC-Timestamp".to_string()
                    }
                    _ => {
                        sign = false;
                        let auth: &str = self.pick::<&str>(&[
                            "TC3-HMAC-SHA256",
                            "TC3-HMAC-SHA256 Credential=/x, SignedHeaders=, Signature=",
                            "TC3-HMAC-SHA256 Credential=AKIDkvmuxdev/2026-01-01/teo/tc3_request, SignedHeaders=content-type;host, Signature=zz",
                            "TC3-HMAC-SHA256 Credential=AKIDnobody/2026-01-01/teo/tc3_request, SignedHeaders=host, Signature=00",
                            "TC3-HMAC-SHA256 ,,,,===",
                        ]);
                        r.set("Authorization", auth);
                        format!("Authorization {auth:?}")
                    }
                };
                allow.success = what.starts_with("Authorization") || what.contains("Timestamp");
                ("action-version-auth", format!("{action}: {what}"), r)
            }
        };
        Case {
            vendor: Vendor::Tencent,
            category,
            what,
            request,
            allow,
            sign,
        }
    }

    /// Adds odd but legal headers; returns what was added.
    fn garbage_headers(&mut self, r: &mut RawRequest) -> String {
        match self.rng.u8(..5) {
            0 => {
                for i in 0..200 {
                    r.headers
                        .push((format!("x-junk-{i}").into_bytes(), b"j".to_vec()));
                }
                "200 extra headers".into()
            }
            1 => {
                let v: Vec<u8> = (0..64).map(|_| self.rng.u8(0x80..=0xff)).collect();
                r.headers.push((b"X-Obs-Text".to_vec(), v));
                "obs-text header value".into()
            }
            2 => {
                r.headers.push((b"X-Long".to_vec(), vec![b'a'; 16 * 1024]));
                "16 KiB header value".into()
            }
            3 => {
                r.headers
                    .push((b"!#$%&'*+-.^_`|~".to_vec(), b"token-chars-name".to_vec()));
                "header name of every token char".into()
            }
            _ => {
                r.headers.push((b"X-Empty".to_vec(), Vec::new()));
                r.headers.push((b"X-Tab".to_vec(), b"a\tb".to_vec()));
                "empty and tab values".into()
            }
        }
    }

    // ---------------------------------------------------------------- Aliyun

    fn aliyun_base(&self, method: &str, action: &str, query: &str, form: &[u8]) -> RawRequest {
        let target = if query.is_empty() {
            "/".to_string()
        } else {
            format!("/?{query}")
        };
        let mut r = RawRequest::new(method, &target)
            .header("Host", &self.host)
            .header("x-acs-action", action)
            .header("x-acs-version", "2024-09-10")
            .header("accept", "application/json");
        if !form.is_empty() {
            r = r
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.to_vec());
        }
        r
    }

    fn aliyun(&mut self) -> Case {
        match self.rng.u8(..12) {
            0..=2 => return self.aliyun_mutated(),
            3 => return self.aliyun_upload(),
            _ => {}
        }
        let ns = ALIYUN_NAMESPACE;
        let (action, query, form): (&str, String, String) = match self.rng.u8(..7) {
            0 => ("PutKv", format!("Namespace={ns}&Key=k1"), "Value=v".into()),
            1 => ("GetKv", format!("Namespace={ns}&Key=k1"), String::new()),
            2 => (
                "ListKvs",
                format!("Namespace={ns}&Prefix=k&PageSize=10&PageNumber=1"),
                String::new(),
            ),
            3 => (
                "BatchPutKv",
                format!("Namespace={ns}"),
                "KvList=%5B%7B%22Key%22%3A%22a%22%2C%22Value%22%3A%22b%22%7D%5D".into(),
            ),
            4 => (
                "BatchDeleteKv",
                format!("Namespace={ns}"),
                "Keys=%5B%22a%22%5D".into(),
            ),
            5 => (
                "CreateKvNamespace",
                format!("Namespace={ns}"),
                String::new(),
            ),
            _ => ("DeleteKv", format!("Namespace={ns}&Key=k1"), String::new()),
        };
        let method = if form.is_empty() { "GET" } else { "POST" };
        let mut allow = Allow::default();
        let mut sign = true;
        let (category, what, request) = match self.rng.u8(..11) {
            0 => {
                let choices: &[(&str, &str)] = match action {
                    "PutKv" => &[
                        ("Expiration", "abc"),
                        ("Expiration", "-1"),
                        ("ExpirationTtl", "-5"),
                        ("ExpirationTtl", "1.5"),
                        ("Base64", "maybe"),
                        ("Key", ""),
                        ("Namespace", ""),
                        ("Namespace", "a%2Fb%20c"),
                    ],
                    "ListKvs" => &[
                        ("PageSize", "abc"),
                        ("PageSize", "-1"),
                        ("PageSize", "0"),
                        ("PageSize", "101"),
                        ("PageNumber", "x"),
                        ("PageNumber", "0"),
                        ("PageNumber", "50000"),
                    ],
                    "BatchPutKv" => &[
                        ("KvList", "not-json"),
                        ("KvList", "%7B%7D"),
                        ("KvList", "%5B1%2C2%5D"),
                        ("KvList", "%5B%7B%22Key%22%3A1%7D%5D"),
                        ("KvList", "%5B%7B%22Key%22%3A%22k%22%7D%5D"),
                        ("KvList", ""),
                    ],
                    "BatchDeleteKv" => &[
                        ("Keys", "not-json"),
                        ("Keys", "%5B1%5D"),
                        ("Keys", "%5B%5B%5B%5D%5D%5D"),
                        ("Keys", ""),
                    ],
                    "CreateKvNamespace" => &[
                        ("Namespace", ""),
                        ("Namespace", "a%2Fb%20c"),
                        ("Namespace", "%20"),
                    ],
                    _ => &[("Key", ""), ("Namespace", ""), ("Namespace", "a%2Fb%20c")],
                };
                let (field, value) = *self.pick(choices);
                // A batch item of the wrong type fails that item only (FailKeys), as the vendor does.
                allow.success = matches!(
                    value,
                    "%5B1%2C2%5D"
                        | "%5B1%5D"
                        | "%5B%5B%5B%5D%5D%5D"
                        | "%5B%7B%22Key%22%3A1%7D%5D"
                        | "%5B%7B%22Key%22%3A%22k%22%7D%5D"
                );
                let (query, form) = if matches!(field, "KvList" | "Keys") {
                    (query.clone(), format!("{field}={value}"))
                } else {
                    (replace_param(&query, field, value), form.clone())
                };
                (
                    "form-types",
                    format!("{action}: {field}={value}"),
                    self.aliyun_base(method, action, &query, form.as_bytes()),
                )
            }
            1 => {
                let n = *self.pick(&HUGE_NUMBERS);
                let (action, field) = *self.pick(&[
                    ("ListKvs", "PageSize"),
                    ("ListKvs", "PageNumber"),
                    ("PutKv", "Expiration"),
                    ("PutKv", "ExpirationTtl"),
                ]);
                // A far-future expiry is a valid request; sizes and page numbers have ranges.
                allow.success = field.starts_with("Expiration");
                let query = format!("Namespace={ns}&Key=h&{field}={n}");
                let form = if action == "PutKv" { "Value=v" } else { "" };
                let method = if form.is_empty() { "GET" } else { "POST" };
                (
                    "huge-numbers",
                    format!("{action}: {field}={n}"),
                    self.aliyun_base(method, action, &query, form.as_bytes()),
                )
            }
            2 => {
                let what;
                let r = match self.rng.u8(..5) {
                    0 => {
                        what = "deeply nested KvList".to_string();
                        let deep = format!("{}{}", "%5B".repeat(10_000), "%5D".repeat(10_000));
                        self.aliyun_base(
                            "POST",
                            "BatchPutKv",
                            &format!("Namespace={ns}"),
                            format!("KvList={deep}").as_bytes(),
                        )
                    }
                    1 => {
                        what = "600-byte key".to_string();
                        self.aliyun_base(
                            "GET",
                            "GetKv",
                            &format!("Namespace={ns}&Key={}", "k".repeat(600)),
                            b"",
                        )
                    }
                    2 => {
                        what = "3,000,000-byte value".to_string();
                        let mut body = b"Value=".to_vec();
                        body.extend(std::iter::repeat_n(b'v', 3_000_000));
                        self.aliyun_base("POST", "PutKv", &format!("Namespace={ns}&Key=big"), &body)
                    }
                    3 => {
                        what = "base64 value that is not base64".to_string();
                        self.aliyun_base(
                            "POST",
                            "PutKv",
                            &format!("Namespace={ns}&Key=b64&Base64=true"),
                            b"Value=%%%%not-base64",
                        )
                    }
                    _ => {
                        what = "10,001 keys in BatchDeleteKv (10,000 at most)".to_string();
                        let keys: Vec<String> =
                            (0..10_001).map(|i| format!("%22k{i}%22")).collect();
                        self.aliyun_base(
                            "POST",
                            "BatchDeleteKv",
                            &format!("Namespace={ns}"),
                            format!("Keys=%5B{}%5D", keys.join("%2C")).as_bytes(),
                        )
                    }
                };
                ("oversized-values", what, r)
            }
            3 => {
                let bad = self.bad_utf8();
                let pct: String = bad.iter().map(|b| format!("%{b:02X}")).collect();
                let (what, r) = match self.rng.u8(..4) {
                    0 => {
                        // Decoded with U+FFFD as the service's form decoder does.
                        allow.success = true;
                        (
                            format!("{action}: %-encoded invalid UTF-8 in Key"),
                            self.aliyun_base(
                                method,
                                action,
                                &format!("Namespace={ns}&Key={pct}"),
                                form.as_bytes(),
                            ),
                        )
                    }
                    1 => {
                        // An unknown parameter is ignored by POP, whatever its name.
                        allow.success = true;
                        (
                            format!("{action}: %-encoded invalid UTF-8 in a parameter name"),
                            self.aliyun_base(
                                method,
                                action,
                                &format!("{query}&{pct}=1"),
                                form.as_bytes(),
                            ),
                        )
                    }
                    2 => {
                        let mut body = b"Value=".to_vec();
                        body.extend_from_slice(&bad);
                        // Decoded as the service's form decoder does, with U+FFFD.
                        allow.success = true;
                        (
                            "PutKv: raw invalid UTF-8 in the form body".to_string(),
                            self.aliyun_base(
                                "POST",
                                "PutKv",
                                &format!("Namespace={ns}&Key=u8"),
                                &body,
                            ),
                        )
                    }
                    _ => {
                        let name = *self.pick(&[
                            "x-acs-action",
                            "x-acs-version",
                            "content-type",
                            "x-acs-security-token",
                        ]);
                        let mut r = self.aliyun_base(method, action, &query, form.as_bytes());
                        r.set(name, &bad);
                        // An unreadable token counts as none; an unreadable content type as none.
                        allow.success = matches!(name, "x-acs-security-token" | "content-type");
                        (format!("{action}: invalid UTF-8 in header {name}"), r)
                    }
                };
                ("invalid-utf8", what, r)
            }
            4 => {
                let mut r = self.aliyun_base(method, action, &query, form.as_bytes());
                let what = match self.rng.u8(..4) {
                    0 => {
                        r.target = b"/".to_vec();
                        format!("{action} without query parameters")
                    }
                    1 => {
                        r.headers
                            .retain(|(n, _)| !n.eq_ignore_ascii_case(b"x-acs-version"));
                        format!("{action} without x-acs-version")
                    }
                    2 if !form.is_empty() => {
                        r.body.clear();
                        r.headers
                            .retain(|(n, _)| !n.eq_ignore_ascii_case(b"content-type"));
                        format!("{action} without its form body")
                    }
                    2 => {
                        r.target =
                            format!("/?{}", replace_param(&query, "Namespace", "")).into_bytes();
                        format!("{action} with an empty Namespace")
                    }
                    _ => {
                        r.target = b"/?Key=k1".to_vec();
                        format!("{action} without Namespace")
                    }
                };
                allow.success = false;
                ("missing-params", what, r)
            }
            5 => {
                let r = self
                    .aliyun_base(
                        method,
                        action,
                        &format!("{query}&Namespace=other&Key=%FF"),
                        form.as_bytes(),
                    )
                    .header("x-acs-action", "NoSuchAction");
                allow.success = true;
                (
                    "duplicate-params",
                    format!("{action}: Namespace and Key twice, two x-acs-action"),
                    r,
                )
            }
            6 => {
                let (ct, body): (&str, &[u8]) = *self.pick(&[
                    (
                        "application/json",
                        &br#"{"Namespace":"kvmux-bench","Key":"k1","Value":"v"}"#[..],
                    ),
                    ("text/plain", b"Value=v"),
                    ("multipart/form-data", b"--x\r\n\r\n"),
                    (
                        "multipart/form-data; boundary=zz",
                        b"garbage that is not multipart",
                    ),
                    ("application/xml", b"<Value>v</Value>"),
                ]);
                let mut r = self.aliyun_base("POST", action, &query, b"");
                r.set("content-type", ct);
                r.body = body.to_vec();
                allow.success = true;
                ("content-type", format!("{action} with {ct}"), r)
            }
            7 => {
                let mut r = self.aliyun_base(method, action, &query, form.as_bytes());
                let what = self.garbage_headers(&mut r);
                // hyper answers more than 100 headers with its own 431 before any dialect sees them.
                allow.http_level = what.contains("extra headers");
                allow.success = true;
                ("garbage-headers", format!("{action}: {what}"), r)
            }
            8 => {
                let m = *self.pick(&METHODS);
                let mut r = self.aliyun_base(method, action, &query, form.as_bytes());
                r.method = m.as_bytes().to_vec();
                allow.success = true;
                ("bad-method", format!("{m} {action}"), r)
            }
            9 => {
                let path = *self.pick(&["/x", "//", "/%FF", "/v2/x", "/."]);
                let mut r = self.aliyun_base(method, action, &query, form.as_bytes());
                r.target = format!("{path}?{query}").into_bytes();
                allow.success = true;
                ("bad-path", format!("{action} at {path}"), r)
            }
            _ => {
                let mut r = self.aliyun_base(method, action, &query, form.as_bytes());
                let what = match self.rng.u8(..6) {
                    0 => {
                        r.set("x-acs-action", "NoSuchAction");
                        "unknown action".to_string()
                    }
                    1 => {
                        r.set("x-acs-version", "2018-01-15");
                        "an ESA action with the DCDN version".to_string()
                    }
                    2 => {
                        r.set("x-acs-version", "garbage");
                        "garbage version".to_string()
                    }
                    3 => {
                        sign = false;
                        r.target = format!("/?Action={action}&Version=2024-09-10&{query}&AccessKeyId=LTAIkvmuxdev&Timestamp=yesterday&SignatureNonce=n&Signature=AAAA").into_bytes();
                        r.headers.retain(|(n, _)| !n.starts_with(b"x-acs-"));
                        allow.success = true;
                        "V2 request with a malformed Timestamp".to_string()
                    }
                    4 => {
                        sign = false;
                        r.set(
                            "x-acs-date",
                            *self.pick(&["yesterday", "2026-13-45T99:99:99Z", "", "1795314798"]),
                        );
                        r.set("Authorization", "ACS3-HMAC-SHA256 Credential=LTAIkvmuxdev,SignedHeaders=host;x-acs-date,Signature=00");
                        allow.success = true;
                        "malformed x-acs-date".to_string()
                    }
                    _ => {
                        sign = false;
                        let auth: &str = self.pick::<&str>(&[
                            "ACS3-HMAC-SHA256",
                            "ACS3-HMAC-SHA256 Credential=,SignedHeaders=,Signature=",
                            "ACS3-HMAC-MD5 Credential=LTAIkvmuxdev,SignedHeaders=host,Signature=00",
                            "ACS3-HMAC-SHA256 Credential=LTAInobody,SignedHeaders=host,Signature=zz",
                            "ACS3-HMAC-SHA256 ,,,===",
                        ]);
                        r.set("Authorization", auth);
                        allow.success = true;
                        format!("Authorization {auth:?}")
                    }
                };
                ("action-version-auth", format!("{action}: {what}"), r)
            }
        };
        Case {
            vendor: Vendor::Aliyun,
            category,
            what,
            request,
            allow,
            sign,
        }
    }

    // ---------------------------------------------------------------- Huawei

    fn huawei_base(&self, op: &str, body: Vec<u8>) -> RawRequest {
        RawRequest::new("POST", &format!("/v1/{op}"))
            .header("Host", format!("{HUAWEI_STORE}.{}", self.host))
            .header("Content-Type", "application/bson")
            .body(body)
    }

    fn huawei_doc(&mut self, op: &str) -> bson::Document {
        use bson::doc;
        let t = HUAWEI_TABLE;
        match op {
            "put-kv" => doc! {"table_name": t, "kv_doc": {"id": "k1", "v": "x"}},
            "get-kv" => doc! {"table_name": t, "primary_key": {"id": "k1"}},
            "delete-kv" => doc! {"table_name": t, "primary_key": {"id": "k1"}},
            "update-kv" => {
                doc! {"table_name": t, "primary_key": {"id": "k1"}, "update_fields": {"set": {"v": "y"}}}
            }
            "scan-kv" => doc! {"table_name": t, "limit": 10i32, "start_key": {"id": "a"}},
            "batch-write-kv" => {
                doc! {"table_opers": [{"table_name": t, "kv_opers": [{"put_kv": {"oper_id": 1i32, "kv_doc": {"id": "k2"}}}]}]}
            }
            "batch-get-kv" => {
                doc! {"batch_get_kv_opers": [{"table_name": t, "get_kv_opers": [{"get_kv": {"oper_id": 1i32, "primary_key": {"id": "k2"}}}]}]}
            }
            "create-table" => {
                doc! {"table_name": HUAWEI_TABLE, "primary_key_schema": {"shard_key_fields": [{"name": "id", "order": true}]}}
            }
            "describe-table" | "delete-table" => doc! {"table_name": "never-made"},
            _ => doc! {"limit": 10i32},
        }
    }

    fn huawei(&mut self) -> Case {
        if self.rng.u8(..4) == 0 {
            return self.huawei_mutated();
        }
        let op = *self.pick(&[
            "put-kv",
            "get-kv",
            "delete-kv",
            "update-kv",
            "scan-kv",
            "batch-write-kv",
            "batch-get-kv",
            "create-table",
            "describe-table",
            "delete-table",
            "list-table",
        ]);
        let doc = self.huawei_doc(op);
        let valid = doc.to_vec().expect("bson");
        let mut allow = Allow::default();
        let (category, what, request) = match self.rng.u8(..11) {
            0 => {
                let mut body = valid.clone();
                let what = match self.rng.u8(..7) {
                    0 => {
                        body.truncate(self.rng.usize(1..body.len()));
                        "truncated".to_string()
                    }
                    1 => {
                        let n = body.len() as i32 + self.rng.i32(1..1000);
                        body[..4].copy_from_slice(&n.to_le_bytes());
                        "length prefix larger than the body".to_string()
                    }
                    2 => {
                        let n = *self.pick(&[0i32, -1, 4, i32::MIN, i32::MAX]);
                        body[..4].copy_from_slice(&n.to_le_bytes());
                        format!("length prefix {n}")
                    }
                    3 => {
                        body.extend_from_slice(b"trailing garbage");
                        "trailing bytes".to_string()
                    }
                    4 => {
                        let at = self.rng.usize(4..body.len());
                        body[at] = self.rng.u8(..);
                        // The result may still be a valid document.
                        allow.success = true;
                        format!("byte {at} flipped")
                    }
                    5 => {
                        body = br#"{"table_name":"bench"}"#.to_vec();
                        "JSON instead of BSON".to_string()
                    }
                    _ => {
                        body = (0..self.rng.usize(1..64))
                            .map(|_| self.rng.u8(..))
                            .collect();
                        "random bytes".to_string()
                    }
                };
                (
                    "bson-syntax",
                    format!("{op}: {what}"),
                    self.huawei_base(op, body),
                )
            }
            1 => {
                let mut d = doc.clone();
                let field = *self.pick(&[
                    "table_name",
                    "primary_key",
                    "kv_doc",
                    "limit",
                    "start_key",
                    "update_fields",
                    "table_opers",
                    "primary_key_schema",
                    "filter_expression",
                    "projection_fields",
                    "condition_expression",
                ]);
                let wrong = self.pick(&wrong_bson_values()).clone();
                d.insert(field, wrong.clone());
                allow.success = true;
                (
                    "bson-types",
                    format!("{op}: {field} = {wrong}"),
                    self.huawei_base(op, d.to_vec().expect("bson")),
                )
            }
            2 => {
                let (what, inner) = match self.rng.u8(..3) {
                    0 => ("10,000 nested documents", self.deep_doc.clone()),
                    1 => ("10,000 nested arrays", self.deep_array.clone()),
                    _ => ("65 nested documents", nested_bson(65, 0x03)),
                };
                let field: &[u8] = self.pick::<&[u8]>(&[
                    &b"kv_doc"[..],
                    b"primary_key",
                    b"condition_expression",
                    b"update_fields",
                ]);
                let body = raw_doc(&[
                    (
                        0x02,
                        b"table_name".as_slice(),
                        bson_string(HUAWEI_TABLE.as_bytes()),
                    ),
                    (
                        if what.contains("arrays") { 0x04 } else { 0x03 },
                        field,
                        inner,
                    ),
                ]);
                (
                    "deep-nesting",
                    format!("{op}: {what} in {}", String::from_utf8_lossy(field)),
                    self.huawei_base(op, body),
                )
            }
            3 => {
                let bad = self.bad_utf8();
                let (what, r) = match self.rng.u8(..5) {
                    0 => {
                        let inner = raw_doc(&[(0x02, b"id".as_slice(), bson_string(&bad))]);
                        let body = raw_doc(&[
                            (
                                0x02,
                                b"table_name".as_slice(),
                                bson_string(HUAWEI_TABLE.as_bytes()),
                            ),
                            (0x03, b"kv_doc".as_slice(), inner.clone()),
                            (0x03, b"primary_key".as_slice(), inner),
                        ]);
                        (
                            "invalid UTF-8 in a key value".to_string(),
                            self.huawei_base(op, body),
                        )
                    }
                    1 => {
                        let mut key = b"f".to_vec();
                        key.extend_from_slice(&bad);
                        let inner = raw_doc(&[
                            (0x02, b"id".as_slice(), bson_string(b"k1")),
                            (0x02, key.as_slice(), bson_string(b"v")),
                        ]);
                        let body = raw_doc(&[
                            (
                                0x02,
                                b"table_name".as_slice(),
                                bson_string(HUAWEI_TABLE.as_bytes()),
                            ),
                            (0x03, b"kv_doc".as_slice(), inner),
                        ]);
                        (
                            "invalid UTF-8 in a field name".to_string(),
                            self.huawei_base(op, body),
                        )
                    }
                    2 => {
                        let body = raw_doc(&[(0x02, b"table_name".as_slice(), bson_string(&bad))]);
                        (
                            "invalid UTF-8 in table_name".to_string(),
                            self.huawei_base(op, body),
                        )
                    }
                    3 => {
                        let mut r = self.huawei_base(op, valid.clone());
                        let mut host = b"s".to_vec();
                        host.extend_from_slice(&bad);
                        host.extend_from_slice(format!(".{}", self.host).as_bytes());
                        r.set("Host", host);
                        ("invalid UTF-8 in the Host store prefix".to_string(), r)
                    }
                    _ => {
                        let mut r = self.huawei_base(op, valid.clone());
                        r.set("Host", &self.host);
                        r.target = format!("/v1/{op}?store_name=%FF%FE").into_bytes();
                        ("invalid UTF-8 in ?store_name=".to_string(), r)
                    }
                };
                ("invalid-utf8", format!("{op}: {what}"), r)
            }
            4 => {
                let field = *self.pick(&["limit", "expire_after_seconds", "oper_id", "id"]);
                let value = self
                    .pick(&[
                        bson::Bson::Int64(i64::MAX),
                        bson::Bson::Int64(i64::MIN),
                        bson::Bson::Int32(i32::MIN),
                        bson::Bson::Double(f64::INFINITY),
                        bson::Bson::Double(f64::NAN),
                        bson::Bson::Double(-1e308),
                        bson::Bson::Double(1e-320),
                    ])
                    .clone();
                let mut d = doc.clone();
                d.insert(field, value.clone());
                if let Ok(kv) = d.get_document_mut("kv_doc") {
                    kv.insert("id", value.clone());
                }
                if let Ok(pk) = d.get_document_mut("primary_key") {
                    pk.insert("id", value.clone());
                }
                allow.success = true;
                (
                    "huge-numbers",
                    format!("{op}: {field} and id = {value}"),
                    self.huawei_base(op, d.to_vec().expect("bson")),
                )
            }
            5 => {
                let (what, body) = match self.rng.u8(..3) {
                    0 => ("an empty body".to_string(), Vec::new()),
                    1 => (
                        "an empty document".to_string(),
                        bson::Document::new().to_vec().expect("bson"),
                    ),
                    _ => {
                        let mut d = doc.clone();
                        let keys: Vec<String> = d.keys().cloned().collect();
                        let k = self.pick(&keys).clone();
                        d.remove(&k);
                        (format!("no {k}"), d.to_vec().expect("bson"))
                    }
                };
                allow.success = matches!(op, "list-table" | "scan-kv");
                (
                    "missing-params",
                    format!("{op} with {what}"),
                    self.huawei_base(op, body),
                )
            }
            6 => {
                let body = raw_doc(&[
                    (
                        0x02,
                        b"table_name".as_slice(),
                        bson_string(HUAWEI_TABLE.as_bytes()),
                    ),
                    (0x10, b"table_name".as_slice(), 7i32.to_le_bytes().to_vec()),
                    (
                        0x03,
                        b"primary_key".as_slice(),
                        raw_doc(&[
                            (0x02, b"id".as_slice(), bson_string(b"k1")),
                            (0x10, b"id".as_slice(), 1i32.to_le_bytes().to_vec()),
                        ]),
                    ),
                    (
                        0x03,
                        b"kv_doc".as_slice(),
                        raw_doc(&[
                            (0x02, b"id".as_slice(), bson_string(b"k1")),
                            (0x02, b"id".as_slice(), bson_string(b"k2")),
                        ]),
                    ),
                ]);
                allow.success = true;
                (
                    "duplicate-params",
                    format!("{op}: table_name and id twice with other types"),
                    self.huawei_base(op, body),
                )
            }
            7 => {
                let mut r = self.huawei_base(op, valid.clone());
                let (what, success) = match self.rng.u8(..4) {
                    0 => {
                        r.set("Content-Type", "application/json");
                        r.body = br#"{"table_name":"bench","primary_key":{"id":"k1"}}"#.to_vec();
                        ("JSON body as application/json".to_string(), false)
                    }
                    1 => {
                        r.set("Content-Type", "text/plain");
                        ("BSON as text/plain".to_string(), true)
                    }
                    2 => {
                        r.headers
                            .retain(|(n, _)| !n.eq_ignore_ascii_case(b"content-type"));
                        ("BSON without Content-Type".to_string(), true)
                    }
                    _ => {
                        let what = self.garbage_headers(&mut r);
                        allow.http_level = what.contains("extra headers");
                        (what, true)
                    }
                };
                allow.success = success;
                ("content-type-headers", format!("{op}: {what}"), r)
            }
            8 => {
                let m = *self.pick(&["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO", "post"]);
                let mut r = self.huawei_base(op, valid.clone());
                r.method = m.as_bytes().to_vec();
                ("bad-method", format!("{m} /v1/{op}"), r)
            }
            9 => {
                let path = *self.pick(&[
                    "/v1/no-such-op",
                    "/v1/",
                    "/v1/get-kv/extra",
                    "/v1//get-kv",
                    "/v1/GET-KV",
                    "/v1/get-kv%00",
                    "/v1/%FF",
                    "/v1/get-kv/..",
                ]);
                let mut r = self.huawei_base(op, valid.clone());
                r.target = path.as_bytes().to_vec();
                allow.not_implemented = true;
                ("bad-path", path.to_string(), r)
            }
            _ => {
                let mut r = self.huawei_base(op, valid.clone());
                let stores = ["", "A!", "-x", "a b", &"x".repeat(300)].map(str::to_string);
                let store = self.pick(&stores).clone();
                let what = if store.is_empty() {
                    r.set("Host", &self.host);
                    "no store at all".to_string()
                } else {
                    r.set("Host", format!("{store}.{}", self.host));
                    format!("store name {:?}", &store[..store.len().min(12)])
                };
                allow.success = matches!(op, "list-table") && store.len() < 200;
                ("bad-store", format!("{op}: {what}"), r)
            }
        };
        Case {
            vendor: Vendor::Huawei,
            category,
            what,
            request,
            allow,
            sign: true,
        }
    }

    // ---------------------------------------------------------------- structure-aware mutation

    /// A nasty value of any JSON type: huge, deep, empty, odd Unicode, wrong types.
    fn nasty_json(&mut self) -> Value {
        match self.rng.u8(..14) {
            0 => json!(""),
            1 => json!("x".repeat(self.rng.usize(1..300_000))),
            2 => json!("\u{0}\u{ffff}\u{10ffff}é漢字 \t\n/../%00"),
            3 => json!(i64::MIN),
            4 => json!(u64::MAX),
            5 => json!(-1.5e300),
            6 => {
                let mut v = json!("leaf");
                for _ in 0..self.rng.usize(1..120) {
                    v = json!([v]);
                }
                v
            }
            7 => json!({"": {"": [null, {}]}}),
            8 => Value::Array(
                (0..self.rng.usize(1..20_000))
                    .map(|i| json!(format!("k{i}")))
                    .collect(),
            ),
            9 => json!(true),
            10 => json!(null),
            11 => json!([{"Name": 1, "Values": "v", "Fuzzy": "yes"}]),
            12 => json!("k".repeat(513)),
            _ => json!(self.rng.i64(..)),
        }
    }

    /// Replaces one random node of `v` (walking down objects and arrays) with a nasty value.
    fn mutate_json(&mut self, v: &mut Value) -> String {
        // Choose the path with shared borrows, then change the node at its end.
        let mut steps: Vec<Result<String, usize>> = Vec::new();
        let mut node: &Value = v;
        loop {
            if self.rng.u8(..3) == 0 {
                break;
            }
            match node {
                Value::Object(m) if !m.is_empty() => {
                    let keys: Vec<&String> = m.keys().collect();
                    let k = (*self.pick(&keys)).clone();
                    node = &m[&k];
                    steps.push(Ok(k));
                }
                Value::Array(a) if !a.is_empty() => {
                    let i = self.rng.usize(..a.len());
                    node = &a[i];
                    steps.push(Err(i));
                }
                _ => break,
            }
        }
        let mut target = v;
        let mut path = String::new();
        for step in &steps {
            target = match step {
                Ok(k) => {
                    path.push_str(&format!(".{k}"));
                    &mut target[k.as_str()]
                }
                Err(i) => {
                    path.push_str(&format!("[{i}]"));
                    &mut target[*i]
                }
            };
        }
        let nasty = self.nasty_json();
        let shown: String = nasty.to_string().chars().take(40).collect();
        *target = nasty;
        format!("{path} = {shown}")
    }

    fn tencent_mutated(&mut self) -> Case {
        let action = *self.pick(&[
            "EdgeKVPut",
            "EdgeKVGet",
            "EdgeKVDelete",
            "EdgeKVList",
            "CreateEdgeKVNamespace",
            "ModifyEdgeKVNamespace",
            "DescribeEdgeKVNamespaces",
        ]);
        let mut params = Value::Object(self.tencent_params(action));
        let mut what = Vec::new();
        for _ in 0..self.rng.usize(1..4) {
            what.push(self.mutate_json(&mut params));
        }
        Case {
            vendor: Vendor::Tencent,
            category: "mutated",
            what: format!("{action}: {}", what.join("; ")),
            request: self.tencent_base(action, params.to_string().as_bytes()),
            allow: Allow {
                success: true,
                ..Default::default()
            },
            sign: true,
        }
    }

    fn aliyun_mutated(&mut self) -> Case {
        let ns = ALIYUN_NAMESPACE;
        let (action, mut query, mut form): (&str, Pairs, Pairs) = {
            let p = |items: &[(&str, &str)]| -> Vec<(String, String)> {
                items
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            };
            match self.rng.u8(..9) {
                0 => (
                    "PutKv",
                    p(&[
                        ("Namespace", ns),
                        ("Key", "m1"),
                        ("Expiration", "4102444800"),
                        ("Base64", "false"),
                    ]),
                    p(&[("Value", "v")]),
                ),
                1 => (
                    "GetKv",
                    p(&[("Namespace", ns), ("Key", "m1"), ("Base64", "true")]),
                    vec![],
                ),
                2 => (
                    "GetKvDetail",
                    p(&[("Namespace", ns), ("Key", "m1")]),
                    vec![],
                ),
                3 => (
                    "ListKvs",
                    p(&[
                        ("Namespace", ns),
                        ("Prefix", "m"),
                        ("PageNumber", "2"),
                        ("PageSize", "5"),
                    ]),
                    vec![],
                ),
                4 => (
                    "BatchPutKv",
                    p(&[("Namespace", ns)]),
                    p(&[(
                        "KvList",
                        r#"[{"Key":"a","Value":"b","Expiration":4102444800,"ExpirationTtl":60,"Base64":false}]"#,
                    )]),
                ),
                5 => (
                    "BatchDeleteKv",
                    p(&[("Namespace", ns)]),
                    p(&[("Keys", r#"["a","b"]"#)]),
                ),
                6 => (
                    "PutKvWithHighCapacity",
                    p(&[
                        ("Namespace", ns),
                        ("Key", "hc"),
                        ("Url", "http://127.0.0.1:1/x"),
                    ]),
                    vec![],
                ),
                7 => ("GetKvNamespace", p(&[("Namespace", ns)]), vec![]),
                _ => (
                    "DescribeKvUsageData",
                    p(&[
                        ("Field", "acc"),
                        ("StartTime", "2026-01-01T00:00:00Z"),
                        ("EndTime", "2026-01-02T00:00:00Z"),
                    ]),
                    vec![],
                ),
            }
        };
        let version = if action == "DescribeKvUsageData" {
            "2018-01-15"
        } else {
            "2024-09-10"
        };
        let mut what = Vec::new();
        for _ in 0..self.rng.usize(1..3) {
            let in_form = !form.is_empty() && self.rng.bool();
            let params = if in_form { &mut form } else { &mut query };
            let i = self.rng.usize(..params.len());
            let name = params[i].0.clone();
            let value = if matches!(name.as_str(), "KvList" | "Keys") {
                let mut v: Value = serde_json::from_str(&params[i].1).expect("json");
                what.push(format!("{name}{}", self.mutate_json(&mut v)));
                v.to_string()
            } else {
                let nasty = self.nasty_json();
                let text = match nasty {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                what.push(format!(
                    "{name}={}",
                    text.chars().take(40).collect::<String>()
                ));
                text
            };
            params[i].1 = value;
        }
        let encode = |pairs: &[(String, String)]| {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                ser.append_pair(k, v);
            }
            ser.finish()
        };
        let method = if form.is_empty() { "GET" } else { "POST" };
        let query = encode(&query);
        // A request head over the gateway's 64 KiB limit gets hyper's own 414/431.
        let head_too_large = query.len() > 60 * 1024;
        let mut request = self.aliyun_base(method, action, &query, encode(&form).as_bytes());
        request.set("x-acs-version", version);
        Case {
            vendor: Vendor::Aliyun,
            category: "mutated",
            what: format!("{action}: {}", what.join("; ")),
            request,
            allow: Allow {
                success: true,
                http_level: head_too_large,
                ..Default::default()
            },
            sign: true,
        }
    }

    /// The legacy form style (no X-TC-Action; `Action`, `Version` and flattened parameters such
    /// as `Keys.0` in a form body), with odd flattened names and values.
    fn tencent_legacy(&mut self) -> Case {
        let action = *self.pick(&[
            "EdgeKVGet",
            "EdgeKVPut",
            "EdgeKVList",
            "DescribeEdgeKVNamespaces",
        ]);
        let (name, value) = *self.pick(&[
            ("Keys.10001", "a"),
            ("Keys.0.1.2", "a"),
            ("Keys..0", "a"),
            ("Keys.-1", "a"),
            ("Keys.99999999999999999999", "a"),
            ("Filters.0.Values.5000", "a"),
            ("Filters.0.Fuzzy", "perhaps"),
            ("Filters.x.Name", "namespace"),
            ("Limit", "ten"),
            ("Limit", "99999999999999999999"),
            ("Offset", "-1"),
            ("ExpirationTTL", "1e3"),
            (".", "."),
            ("Namespace.0", "n"),
            ("ZoneId", "%FF"),
        ]);
        let body = format!(
            "Action={action}&Version=2022-09-01&ZoneId={TENCENT_ZONE}&Namespace={TENCENT_NAMESPACE}&Key=k&Value=v&{}={}",
            name, value
        );
        let request = RawRequest::new("POST", "/")
            .header("Host", &self.host)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-TC-TraceId", "corpus")
            .body(body);
        Case {
            vendor: Vendor::Tencent,
            category: "legacy-form",
            what: format!("{action}: {name}={value}"),
            request,
            // Unsigned: with auth off it is served (and may succeed), enforced it is refused.
            allow: Allow {
                success: true,
                ..Default::default()
            },
            sign: false,
        }
    }

    /// The unsigned OSS PostObject of the `*Advance` upload: multipart forms with missing,
    /// duplicated, huge or garbled fields, never authorized.
    fn aliyun_upload(&mut self) -> Case {
        let part = |name: &str, data: &[u8]| {
            let mut p = format!("--zz\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .into_bytes();
            p.extend_from_slice(data);
            p.extend_from_slice(b"\r\n");
            p
        };
        let (what, mut body): (&str, Vec<u8>) = match self.rng.u8(..7) {
            0 => ("no file", part("key", b"k")),
            1 => ("no key", part("file", b"data")),
            2 => (
                "a key never authorized",
                [part("key", b"never"), part("file", b"data")].concat(),
            ),
            3 => (
                "a 100 KB key",
                [part("key", &vec![b'k'; 100_000]), part("file", b"d")].concat(),
            ),
            4 => (
                "invalid UTF-8 key",
                [part("key", b"k\xff\xfe"), part("file", b"d")].concat(),
            ),
            5 => (
                "two keys and two files",
                [
                    part("key", b"a"),
                    part("key", b"b"),
                    part("file", b"1"),
                    part("file", b"2"),
                ]
                .concat(),
            ),
            _ => (
                "a part without a closing boundary",
                b"--zz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nunterminated"
                    .to_vec(),
            ),
        };
        if !what.contains("closing") {
            body.extend_from_slice(b"--zz--\r\n");
        }
        let request = RawRequest::new("POST", "/")
            .header("Host", &self.host)
            .header("Content-Type", "multipart/form-data; boundary=zz")
            .body(body);
        Case {
            vendor: Vendor::Aliyun,
            category: "oss-upload",
            what: what.to_string(),
            request,
            allow: Allow::default(),
            sign: false,
        }
    }

    /// A nasty BSON value: every type, deep, huge, odd names.
    fn nasty_bson(&mut self) -> bson::Bson {
        use bson::Bson;
        match self.rng.u8(..8) {
            0 => self.pick(&wrong_bson_values()).clone(),
            1 => Bson::String("s".repeat(self.rng.usize(1..600_000))),
            2 => {
                let mut d = bson::doc! {"leaf": 1};
                for _ in 0..self.rng.usize(1..100) {
                    d = bson::doc! {"d": d};
                }
                Bson::Document(d)
            }
            3 => Bson::Array(
                (0..self.rng.usize(1..5_000))
                    .map(|i| Bson::Int32(i as i32))
                    .collect(),
            ),
            4 => Bson::Document(bson::doc! {"": "", "$set": {"a.b": 1}, ".": [], "a\u{0}b": 1}),
            5 => Bson::Document(
                bson::doc! {"field": "id", "func": self.pick(&["$gt", "$in", "$prefix", "$exists", "$nope", ""]).to_string(), "value": {"": [1, "a"]}},
            ),
            6 => Bson::Decimal128(bson::Decimal128::from_bytes([0xff; 16])),
            _ => Bson::Double(*self.pick(&[
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                f64::MIN_POSITIVE,
            ])),
        }
    }

    /// Replaces one random node of `doc` (walking down documents and arrays) with a nasty value.
    fn mutate_bson(&mut self, doc: &mut bson::Document) -> String {
        use bson::Bson;
        let keys: Vec<String> = doc.keys().cloned().collect();
        if keys.is_empty() {
            doc.insert("x", self.nasty_bson());
            return "x".into();
        }
        let first = self.pick(&keys).clone();
        // Choose the path with shared borrows, then change the node at its end.
        let mut steps: Vec<Result<String, usize>> = Vec::new();
        let mut node: &Bson = &doc[&first];
        loop {
            if self.rng.u8(..3) == 0 {
                break;
            }
            match node {
                Bson::Document(d) if !d.is_empty() => {
                    let keys: Vec<&String> = d.keys().collect();
                    let k = (*self.pick(&keys)).clone();
                    node = &d[&k];
                    steps.push(Ok(k));
                }
                Bson::Array(a) if !a.is_empty() => {
                    let i = self.rng.usize(..a.len());
                    node = &a[i];
                    steps.push(Err(i));
                }
                _ => break,
            }
        }
        let mut path = first.clone();
        let mut target = doc.get_mut(&first).expect("present");
        for step in &steps {
            let next = match (step, target) {
                (Ok(k), Bson::Document(d)) => {
                    path.push_str(&format!(".{k}"));
                    d.get_mut(k)
                }
                (Err(i), Bson::Array(a)) => {
                    path.push_str(&format!("[{i}]"));
                    a.get_mut(*i)
                }
                _ => None,
            };
            target = next.expect("the chosen path exists");
        }
        let nasty = self.nasty_bson();
        let shown: String = format!("{nasty}").chars().take(40).collect();
        *target = nasty;
        format!("{path} = {shown}")
    }

    /// Requests that use every documented feature, so that mutations reach the deep code:
    /// conditions, updates, filters, projections, sort keys, indexes, TTL, batches.
    fn huawei_rich(&mut self) -> (&'static str, bson::Document) {
        use bson::doc;
        let t = HUAWEI_TABLE;
        let cond = doc! {"composed_expression": {"logic": "$and", "expressions": [
            {"single_field_expression": {"field": "n", "func": "$gt", "value": {"": 1}}},
            {"multi_field_expression": {"logic": "$or", "expressions": [
                {"field": "s", "func": "$prefix", "value": {"s": "ab"}},
                {"field": "t", "func": "$in", "value_array": [{"": 1}, {"": 2}]},
            ]}},
        ]}};
        match self.rng.u8(..8) {
            0 => (
                "put-kv",
                doc! {"table_name": t, "kv_doc": {"id": "m1", "n": 5, "s": "abc", "arr": [1, 2], "sub": {"a": "b"}}, "condition_expression": cond},
            ),
            1 => (
                "update-kv",
                doc! {"table_name": t, "primary_key": {"id": "m1"},
                "update_fields": {"set": {"n": 6}, "add": {"c": 1}, "rmv": ["x"], "insert": {"arr": [3]}, "delete": {"arr": [1]}, "upsert": {"id": "m1", "n": 0}},
                "condition_expression": {"single_kv_expression": {"func": "is_exist"}}},
            ),
            2 => (
                "scan-kv",
                doc! {"table_name": t, "limit": 10, "start_key": {"id": "a"}, "end_key": {"id": "z"},
                "filter_expression": cond, "projection_fields": ["id", "n"], "return_count_only": false},
            ),
            3 => (
                "scan-skey-kv",
                doc! {"table_name": "corpus-sorted", "shard_key": {"a": "x"}, "start_sort_key": {"b": 1}, "end_sort_key": {"b": 9}, "limit": 5},
            ),
            4 => (
                "create-table",
                doc! {"table_name": "corpus-sorted",
                "primary_key_schema": {"shard_key_fields": [{"name": "a", "order": true}], "sort_key_fields": [{"name": "b", "order": false}]},
                "local_secondary_index_schema": [{"index_name": "l1", "sort_key_fields": [{"name": "c"}], "abstract_fields": ["d"]}],
                "global_secondary_index_schema": [{"index_name": "g1", "shard_key_fields": [{"name": "e"}], "sort_key_fields": [{"name": "f"}], "abstract_fields": ["g"]}],
                "ttl_specification": {"enable": true, "field_name": "exp", "expire_after_seconds": 60}},
            ),
            5 => (
                "batch-write-kv",
                doc! {"table_opers": [{"table_name": t, "kv_opers": [
                    {"put_kv": {"oper_id": 1, "kv_doc": {"id": "m2", "n": 1}}},
                    {"update_kv": {"oper_id": 2, "primary_key": {"id": "m2"}, "update_fields": {"set": {"n": 2}}}},
                    {"delete_kv": {"oper_id": 3, "primary_key": {"id": "m3"}}},
                ]}]},
            ),
            6 => (
                "batch-get-kv",
                doc! {"batch_get_kv_opers": [{"table_name": t, "get_kv_opers": [
                    {"get_kv": {"oper_id": 1, "primary_key": {"id": "m1"}, "projection_fields": ["n"]}},
                ]}]},
            ),
            _ => (
                "get-kv",
                doc! {"table_name": t, "primary_key": {"id": "m1"}, "projection_fields": ["n", "s"]},
            ),
        }
    }

    fn huawei_mutated(&mut self) -> Case {
        let (op, mut doc) = self.huawei_rich();
        let mut what = Vec::new();
        for _ in 0..self.rng.usize(1..4) {
            what.push(self.mutate_bson(&mut doc));
        }
        // Documents over 16 MiB cannot be encoded; such a mutation is dropped.
        let body = doc
            .to_vec()
            .unwrap_or_else(|_| bson::doc! {"table_name": 1}.to_vec().expect("bson"));
        Case {
            vendor: Vendor::Huawei,
            category: "mutated",
            what: format!("{op}: {}", what.join("; ")),
            request: self.huawei_base(op, body),
            allow: Allow {
                success: true,
                ..Default::default()
            },
            sign: true,
        }
    }

    // ---------------------------------------------------------------- framing and non-HTTP

    /// A well-formed request of `vendor` whose body the framing cases then break.
    fn valid_of(&mut self, vendor: Vendor) -> RawRequest {
        match vendor {
            Vendor::Tencent => {
                let p = self.tencent_params("EdgeKVPut");
                self.tencent_base("EdgeKVPut", Value::Object(p).to_string().as_bytes())
            }
            Vendor::Aliyun => self.aliyun_base(
                "POST",
                "PutKv",
                &format!("Namespace={ALIYUN_NAMESPACE}&Key=f"),
                b"Value=framing",
            ),
            Vendor::Huawei => {
                let d = self.huawei_doc("put-kv");
                self.huawei_base("put-kv", d.to_vec().expect("bson"))
            }
        }
    }

    fn framing(&mut self, vendor: Vendor) -> Case {
        let mut r = self.valid_of(vendor);
        let len = r.body.len();
        let limit: u64 = match vendor {
            Vendor::Tencent => kv_tencent::BODY_LIMIT,
            Vendor::Aliyun => kv_aliyun::ACTION_BODY_LIMIT,
            Vendor::Huawei => 1024 * 1024,
        };
        let mut allow = Allow {
            http_level: true,
            ..Default::default()
        };
        r.framing = Framing::AsGiven;
        let (category, what) = match self.rng.u8(..11) {
            0 => {
                r.set(
                    "Content-Length",
                    (len + self.rng.usize(1..5000)).to_string(),
                );
                // The dialect refuses a body that ends early in its own envelope.
                allow.http_level = false;
                (
                    "truncated-body",
                    "Content-Length larger than the body (client half-closes)".to_string(),
                )
            }
            1 => {
                let v = *self.pick(&[
                    "abc",
                    "-5",
                    "+5",
                    "5 5",
                    "0x10",
                    "",
                    "1e3",
                    "99999999999999999999999",
                ]);
                r.set("Content-Length", v);
                ("bad-content-length", format!("Content-Length {v:?}"))
            }
            2 => {
                r.set("Content-Length", len.to_string());
                r.headers.push((
                    b"Content-Length".to_vec(),
                    (len + 1).to_string().into_bytes(),
                ));
                (
                    "bad-content-length",
                    "two different Content-Length headers".to_string(),
                )
            }
            3 => {
                r.set(
                    "Content-Length",
                    (limit + 1 + self.rng.u64(..1 << 30)).to_string(),
                );
                // Refused from the declared length alone, in the dialect's envelope.
                allow.http_level = false;
                (
                    "oversized-body",
                    "declared length over the dialect's limit, small body sent".to_string(),
                )
            }
            4 => {
                // A real over-limit body, every byte sent. The refusal comes before the body is
                // read and the connection is then closed: the kernel may reset it while bytes are
                // still arriving and so lose the reply (the only case a closed connection passes).
                r.framing = Framing::Auto;
                r.body = vec![b'x'; limit as usize + 1];
                (
                    "oversized-body",
                    format!("{} bytes actually sent", limit + 1),
                )
            }
            5 => {
                r.set("Transfer-Encoding", "chunked");
                let chunked: &[u8] = self.pick::<&[u8]>(&[
                    &b"zz\r\nabc\r\n0\r\n\r\n"[..],
                    b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
                    b"10\r\nabc",
                    b"3\r\nabcdef\r\n0\r\n\r\n",
                    b"-1\r\n\r\n",
                ]);
                r.body = chunked.to_vec();
                (
                    "bad-chunked",
                    format!("chunked body {:?}", String::from_utf8_lossy(chunked)),
                )
            }
            6 => {
                r.set("Transfer-Encoding", "chunked");
                r.headers
                    .push((b"Content-Length".to_vec(), len.to_string().into_bytes()));
                let mut body = format!("{len:x}\r\n").into_bytes();
                body.extend_from_slice(&r.body);
                body.extend_from_slice(b"\r\n0\r\n\r\n");
                r.body = body;
                // RFC 9112 6.3: a server MAY reject this or read the body by Transfer-Encoding
                // alone and close the connection after answering; hyper does the latter (no
                // second request can hide behind the first). The body is then the valid one, so
                // with auth off a put into a namespace another case of the run has created is a
                // success (which made this case fail now and then, depending on the order).
                allow.success = true;
                (
                    "bad-content-length",
                    "Transfer-Encoding chunked and Content-Length".to_string(),
                )
            }
            7 => {
                let te = *self.pick(&["gzip", "chunked, gzip", "identity", "x-custom"]);
                r.set("Transfer-Encoding", te);
                ("bad-chunked", format!("Transfer-Encoding {te}"))
            }
            8 => {
                r.set(
                    "Content-Length",
                    len.saturating_sub(1 + self.rng.usize(..len.max(1)))
                        .to_string(),
                );
                // The rest of the body is then a second (garbage) request; only the first reply is read.
                allow.success = true;
                (
                    "bad-content-length",
                    "Content-Length smaller than the body".to_string(),
                )
            }
            9 => {
                r.headers
                    .retain(|(n, _)| !n.eq_ignore_ascii_case(b"content-length"));
                r.set("Connection", "close");
                (
                    "bad-content-length",
                    "a body with no framing at all".to_string(),
                )
            }
            _ => {
                // Framed normally (no half-close: hyper drops a half-closed connection that is
                // still waiting to send 100 Continue).
                r.framing = Framing::Auto;
                r.set("Expect", *self.pick(&["100-continue", "200-ok", "\u{7f}"]));
                allow.success = true;
                ("garbage-headers", "Expect header".to_string())
            }
        };
        Case {
            vendor,
            category,
            what,
            request: r,
            allow,
            sign: false,
        }
    }

    fn http_garbage(&mut self, vendor: Vendor) -> Case {
        let mark = match vendor {
            Vendor::Tencent => "X-TC-Action: EdgeKVGet\r\n".to_string(),
            Vendor::Aliyun => "x-acs-action: GetKv\r\n".to_string(),
            Vendor::Huawei => String::new(),
        };
        let path = if vendor == Vendor::Huawei {
            "/v1/get-kv"
        } else {
            "/"
        };
        let host = &self.host;
        let choice = self.rng.u8(..12);
        let bytes: Vec<u8> = match choice {
            0 => (0..self.rng.usize(1..512))
                .map(|_| self.rng.u8(..))
                .collect(),
            1 => b"GET\r\n\r\n".to_vec(),
            2 => format!("POST {path} HTTP/1.1\r\nHost {host}\r\n{mark}\r\n").into_bytes(),
            3 => format!("POST {path} HTTP/9.9\r\nHost: {host}\r\n{mark}Content-Length: 0\r\n\r\n")
                .into_bytes(),
            4 => format!("POST  {path}  HTTP/1.1\r\nHost: {host}\r\n{mark}\r\n").into_bytes(),
            5 => {
                format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nX Y: z\r\n{mark}\r\n").into_bytes()
            }
            6 => format!("POST {path} HTTP/1.1\r\nHost: {host}\r\n{mark}X-Fold: a\r\n  b\r\n\r\n")
                .into_bytes(),
            7 => {
                let mut b =
                    format!("POST {path} HTTP/1.1\r\nHost: {host}\r\n{mark}X-Nul: a").into_bytes();
                b.extend_from_slice(b"\0b\r\n\r\n");
                b
            }
            8 => format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\n{mark}X-Huge: {}\r\n\r\n",
                "h".repeat(70 * 1024)
            )
            .into_bytes(),
            9 => b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-tls-hello".to_vec(),
            10 => b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            _ => {
                let mut b = b"POST ".to_vec();
                b.extend_from_slice(path.as_bytes());
                b.extend_from_slice(b"\xff\xfe HTTP/1.1\r\nHost: ");
                b.extend_from_slice(host.as_bytes());
                b.extend_from_slice(b"\r\n\r\n");
                b
            }
        };
        let what = match choice {
            0 => "random bytes",
            1 => "request line without a target",
            2 => "header without a colon",
            3 => "HTTP/9.9",
            4 => "double spaces in the request line",
            5 => "space in a header name",
            6 => "obsolete header folding",
            7 => "NUL in a header value",
            8 => "70 KiB header (over the 64 KiB head limit)",
            9 => "a TLS ClientHello",
            10 => "the HTTP/2 preface",
            _ => "raw non-ASCII bytes in the target",
        };
        let mut request = RawRequest::new("", "");
        request.framing = Framing::Verbatim(bytes);
        Case {
            vendor,
            category: "http-garbage",
            what: what.to_string(),
            request,
            allow: Allow {
                http_level: true,
                other_dialect: true,
                ..Default::default()
            },
            sign: false,
        }
    }
}

/// Some BSON value of a type the field does not take.
/// Decoded parameter pairs.
type Pairs = Vec<(String, String)>;

/// `query` with every `field=` value replaced by `value` (appended when absent).
fn replace_param(query: &str, field: &str, value: &str) -> String {
    let mut found = false;
    let mut parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k == field => {
                found = true;
                format!("{k}={value}")
            }
            _ => pair.to_string(),
        })
        .collect();
    if !found {
        parts.push(format!("{field}={value}"));
    }
    parts.join("&")
}

fn wrong_bson_values() -> Vec<bson::Bson> {
    use bson::Bson;
    vec![
        Bson::Int32(7),
        Bson::Int64(-1),
        Bson::Double(1.5),
        Bson::Boolean(true),
        Bson::Null,
        Bson::String("str".into()),
        Bson::Array(vec![]),
        Bson::Array(vec![Bson::Null, Bson::Int32(1)]),
        Bson::Document(bson::doc! {}),
        Bson::Document(bson::doc! {"$weird": {"": []}}),
        Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: vec![0, 1, 2],
        }),
        Bson::DateTime(bson::DateTime::from_millis(-1)),
        Bson::ObjectId(bson::oid::ObjectId::from_bytes([0; 12])),
        Bson::RegularExpression(bson::Regex {
            pattern: "a(".to_string().try_into().expect("no NUL"),
            options: "x".to_string().try_into().expect("no NUL"),
        }),
        Bson::MinKey,
        Bson::MaxKey,
        Bson::Undefined,
        Bson::Timestamp(bson::Timestamp {
            time: 0,
            increment: 0,
        }),
    ]
}

/// A BSON string value: int32 length (with the NUL), bytes, NUL. The bytes are not checked.
fn bson_string(bytes: &[u8]) -> Vec<u8> {
    let mut v = ((bytes.len() + 1) as i32).to_le_bytes().to_vec();
    v.extend_from_slice(bytes);
    v.push(0);
    v
}

/// A BSON document from raw elements (type, key bytes, value bytes), keys unchecked, duplicates
/// allowed: what no BSON encoder would produce.
fn raw_doc(elements: &[(u8, &[u8], Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, key, value) in elements {
        body.push(*kind);
        body.extend_from_slice(key);
        body.push(0);
        body.extend_from_slice(value);
    }
    let mut out = ((body.len() + 5) as i32).to_le_bytes().to_vec();
    out.extend_from_slice(&body);
    out.push(0);
    out
}

/// `depth` documents (kind 0x03, key "a") or arrays (kind 0x04, key "0") nested in one another,
/// built without recursion: level k is `len | kind key\0 level(k-1) | \0` and is 8 bytes longer
/// than level k-1, so the lengths are known up front.
fn nested_bson(depth: usize, kind: u8) -> Vec<u8> {
    let key = if kind == 0x04 { b'0' } else { b'a' };
    let mut out = Vec::with_capacity(depth * 8 + 5);
    for level in (1..=depth).rev() {
        out.extend_from_slice(&((5 + 8 * level) as i32).to_le_bytes());
        out.extend_from_slice(&[kind, key, 0]);
    }
    out.extend_from_slice(&5i32.to_le_bytes());
    out.push(0);
    out.extend(std::iter::repeat_n(0u8, depth));
    out
}
