//! The corpus families of the trust rules (docs/SECURITY.md): requests signed correctly whose
//! unsigned parts were changed afterwards ("unsigned-override"), admin calls a foreign web page or
//! host could send ("admin-foreign"), and requests made to grow metric labels and the inspector
//! ("label-growth"). Override cases aim at sentinel items that nothing else in the corpus touches,
//! so the runner can check afterwards that no refused override ran.

use serde_json::json;

use super::corpus::{
    Allow, Case, Corpus, ALIYUN_NAMESPACE, HUAWEI_STORE, HUAWEI_TABLE, TENCENT_NAMESPACE,
    TENCENT_ZONE,
};
use super::raw::RawRequest;
use super::sign::{self, Key};
use super::Vendor;

/// The Tencent and Aliyun namespace holding the sentinel item (no other case names it).
pub const SENTINEL_NAMESPACE: &str = "kvmux-sentinel";
/// The Huawei store holding the sentinel item (its table is [`HUAWEI_TABLE`]).
pub const SENTINEL_STORE: &str = "sentinelstore";
pub const SENTINEL_KEY: &str = "sentinel";
pub const SENTINEL_VALUE: &str = "sentinel-still-here";

/// The admin endpoints a cross-site page or a rebound host name would aim at.
const ADMIN_TARGETS: [(&str, &str); 11] = [
    ("POST", "/_kvmux/reset"),
    ("POST", "/_kvmux/faults"),
    ("DELETE", "/_kvmux/faults"),
    ("POST", "/_kvmux/clock/advance"),
    ("POST", "/_kvmux/snapshot"),
    ("DELETE", "/_kvmux/requests"),
    ("GET", "/_kvmux/snapshot"),
    ("GET", "/_kvmux/requests"),
    ("GET", "/_kvmux/faults"),
    ("GET", "/metrics"),
    ("GET", "/_kvmux/health"),
];

fn tencent_request(host: &str, action: &str, body: serde_json::Value) -> RawRequest {
    RawRequest::new("POST", "/")
        .header("Host", host)
        .header("Content-Type", "application/json")
        .header("X-TC-Action", action)
        .header("X-TC-Version", "2022-09-01")
        .body(body.to_string().into_bytes())
}

fn aliyun_request(host: &str, method: &str, action: &str, query: &str, form: &str) -> RawRequest {
    let mut r = RawRequest::new(method, &format!("/?{query}"))
        .header("Host", host)
        .header("x-acs-action", action)
        .header("x-acs-version", "2024-09-10")
        .header("accept", "application/json");
    if !form.is_empty() {
        r = r
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.as_bytes().to_vec());
    }
    r
}

fn huawei_request(authority: &str, target: &str, op: &str, doc: bson::Document) -> RawRequest {
    RawRequest::new("POST", &format!("{target}/v1/{op}"))
        .header("Host", authority)
        .header("Content-Type", "application/bson")
        .body(doc.to_vec().unwrap_or_default())
}

fn signed(vendor: Vendor, mut r: RawRequest) -> RawRequest {
    super::sign_for(vendor, &mut r, &vendor.dev_key());
    r
}

/// Signed requests that create each dialect's sentinel container and write its sentinel item.
pub fn sentinel_setup(host: &str) -> Vec<(Vendor, RawRequest)> {
    let t = |action, body| signed(Vendor::Tencent, tencent_request(host, action, body));
    let ns = SENTINEL_NAMESPACE;
    let huawei_host = format!("{SENTINEL_STORE}.{host}");
    vec![
        (
            Vendor::Tencent,
            t(
                "CreateEdgeKVNamespace",
                json!({"ZoneId": TENCENT_ZONE, "Namespace": ns}),
            ),
        ),
        (
            Vendor::Tencent,
            t(
                "EdgeKVPut",
                json!({"ZoneId": TENCENT_ZONE, "Namespace": ns, "Key": SENTINEL_KEY, "Value": SENTINEL_VALUE}),
            ),
        ),
        (
            Vendor::Aliyun,
            signed(
                Vendor::Aliyun,
                aliyun_request(
                    host,
                    "POST",
                    "CreateKvNamespace",
                    &format!("Namespace={ns}"),
                    "",
                ),
            ),
        ),
        (
            Vendor::Aliyun,
            signed(
                Vendor::Aliyun,
                aliyun_request(
                    host,
                    "POST",
                    "PutKv",
                    &format!("Namespace={ns}&Key={SENTINEL_KEY}"),
                    &format!("Value={SENTINEL_VALUE}"),
                ),
            ),
        ),
        (
            Vendor::Huawei,
            signed(
                Vendor::Huawei,
                huawei_request(
                    &huawei_host,
                    "",
                    "create-table",
                    bson::doc! {"table_name": HUAWEI_TABLE, "primary_key_schema": {"shard_key_fields": [{"name": "id"}]}},
                ),
            ),
        ),
        (
            Vendor::Huawei,
            signed(
                Vendor::Huawei,
                huawei_request(
                    &huawei_host,
                    "",
                    "put-kv",
                    bson::doc! {"table_name": HUAWEI_TABLE, "kv_doc": {"id": SENTINEL_KEY, "v": SENTINEL_VALUE}},
                ),
            ),
        ),
    ]
}

/// Signed reads of each dialect's sentinel item (the reply must carry [`SENTINEL_VALUE`]).
pub fn sentinel_reads(host: &str) -> Vec<(Vendor, RawRequest)> {
    let ns = SENTINEL_NAMESPACE;
    vec![
        (
            Vendor::Tencent,
            signed(
                Vendor::Tencent,
                tencent_request(
                    host,
                    "EdgeKVGet",
                    json!({"ZoneId": TENCENT_ZONE, "Namespace": ns, "Keys": [SENTINEL_KEY]}),
                ),
            ),
        ),
        (
            Vendor::Aliyun,
            signed(
                Vendor::Aliyun,
                aliyun_request(
                    host,
                    "GET",
                    "GetKv",
                    &format!("Namespace={ns}&Key={SENTINEL_KEY}"),
                    "",
                ),
            ),
        ),
        (
            Vendor::Huawei,
            signed(
                Vendor::Huawei,
                huawei_request(
                    &format!("{SENTINEL_STORE}.{host}"),
                    "",
                    "get-kv",
                    bson::doc! {"table_name": HUAWEI_TABLE, "primary_key": {"id": SENTINEL_KEY}},
                ),
            ),
        ),
    ]
}

/// A refusal, or (auth off, where nothing is verified) whatever the request says.
fn refused_when_enforced() -> Allow {
    Allow {
        success_without_auth: true,
        ..Default::default()
    }
}

impl Corpus {
    fn unknown_key(&mut self, vendor: Vendor) -> Key {
        let prefix = match vendor {
            Vendor::Tencent => "AKID",
            Vendor::Aliyun => "LTAI",
            Vendor::Huawei => "HW",
        };
        let len = self.rng.usize(16..400);
        let tail: String = std::iter::repeat_with(|| self.rng.alphanumeric())
            .take(len)
            .collect();
        Key::new(&format!("{prefix}unknown{tail}"), "not-a-configured-secret")
    }

    /// A signed request with an unsigned part changed after signing. With signatures enforced
    /// every such case but the unsigned TC3 action must be refused (the runner also checks that
    /// the sentinel items survive); the TC3 action is unsigned by the vendor's own protocol and,
    /// on loopback, served as the vendor would.
    pub(super) fn unsigned_override(&mut self) -> Case {
        let host = self.host.clone();
        let ns = SENTINEL_NAMESPACE;
        let target_query = format!("Namespace={ns}&Key={SENTINEL_KEY}");
        let (vendor, what, request, allow) = match self.rng.u8(..8) {
            0 => {
                // V2 routes on its signed Action/Version; a disagreeing header is refused.
                let (name, value) = *self.pick(&[
                    ("x-acs-action", "DeleteKv"),
                    ("x-acs-action", "BatchDeleteKv"),
                    ("x-acs-version", "2019-01-01"),
                    ("X-Acs-Action", "DeleteKv"),
                ]);
                let r = sign::aliyun_v2(
                    &host,
                    &[
                        ("Action", "GetKv"),
                        ("Version", "2024-09-10"),
                        ("Namespace", ns),
                        ("Key", SENTINEL_KEY),
                    ],
                    &Vendor::Aliyun.dev_key(),
                )
                .header(name, value);
                let allow = Allow::default();
                (
                    Vendor::Aliyun,
                    format!("V2 GetKv, then {name}: {value}"),
                    r,
                    allow,
                )
            }
            1 => {
                // V3 whose SignedHeaders leave out a deciding header, which is then changed.
                let omit = *self.pick(&[
                    "host",
                    "x-acs-action",
                    "x-acs-version",
                    "x-acs-date",
                    "x-acs-signature-nonce",
                ]);
                let mut r = aliyun_request(&host, "GET", "GetKv", &target_query, "");
                sign::aliyun_v3_omitting(&mut r, &Vendor::Aliyun.dev_key(), &[omit]);
                let changed = match omit {
                    "host" => format!("evil.example:{}", self.rng.u16(1..)),
                    "x-acs-action" => "DeleteKv".into(),
                    "x-acs-version" => "2019-01-01".into(),
                    "x-acs-date" => "2001-01-01T00:00:00Z".into(),
                    _ => format!("replayed-{}", self.rng.u64(..)),
                };
                if self.rng.bool() {
                    r.set(omit, &changed);
                }
                (
                    Vendor::Aliyun,
                    format!("V3 GetKv without {omit} in SignedHeaders ({changed})"),
                    r,
                    refused_when_enforced(),
                )
            }
            2 => {
                // A second value of a signed deciding header.
                let (name, value) = *self.pick(&[
                    ("x-acs-action", "DeleteKv"),
                    ("x-acs-version", "2019-01-01"),
                    ("x-acs-signature-nonce", "second-nonce"),
                    ("x-acs-date", "2001-01-01T00:00:00Z"),
                    ("host", "evil.example"),
                ]);
                let mut r = aliyun_request(&host, "GET", "GetKv", &target_query, "");
                sign::aliyun_v3(&mut r, &Vendor::Aliyun.dev_key());
                r = r.header(name, value);
                (
                    Vendor::Aliyun,
                    format!("V3 GetKv signed, then a second {name}: {value}"),
                    r,
                    Allow {
                        http_level: name == "host",
                        ..refused_when_enforced()
                    },
                )
            }
            3 => {
                // V2 with a deciding parameter given twice (both signed): ambiguous, refused when
                // signatures are enforced.
                let (name, first, second) = *self.pick(&[
                    ("Action", "GetKv", "DeleteKv"),
                    ("Version", "2024-09-10", "2019-01-01"),
                ]);
                let mut params = vec![(name, first), (name, second)];
                if name == "Action" {
                    params.push(("Version", "2024-09-10"));
                } else {
                    params.push(("Action", "GetKv"));
                }
                params.extend([("Namespace", ns), ("Key", SENTINEL_KEY)]);
                let r = sign::aliyun_v2(&host, &params, &Vendor::Aliyun.dev_key());
                // The V2 verifier refuses the repeat; with auth off nothing is verified and the
                // dialect serves it (measured: a success), which is no trust boundary.
                (
                    Vendor::Aliyun,
                    format!("V2 with {name}={first} and {name}={second}"),
                    r,
                    refused_when_enforced(),
                )
            }
            4 | 5 => {
                // Huawei: an absolute-form target naming another store than the signed Host.
                let op = *self.pick(&["delete-kv", "get-kv", "put-kv", "delete-table"]);
                let doc = match op {
                    "put-kv" => {
                        bson::doc! {"table_name": HUAWEI_TABLE, "kv_doc": {"id": SENTINEL_KEY, "v": "overwritten"}}
                    }
                    "delete-table" => bson::doc! {"table_name": HUAWEI_TABLE},
                    _ => {
                        bson::doc! {"table_name": HUAWEI_TABLE, "primary_key": {"id": SENTINEL_KEY}}
                    }
                };
                let store = if self.rng.bool() {
                    SENTINEL_STORE.to_string()
                } else {
                    format!("other{}", self.rng.u32(..))
                };
                let scheme = *self.pick(&["http", "https"]);
                let r = signed(
                    Vendor::Huawei,
                    huawei_request(
                        &format!("{HUAWEI_STORE}.{host}"),
                        &format!("{scheme}://{store}.{host}"),
                        op,
                        doc,
                    ),
                );
                let allow = Allow::default();
                (
                    Vendor::Huawei,
                    format!("{op} signed for {HUAWEI_STORE}, target names {store}"),
                    r,
                    allow,
                )
            }
            6 => {
                // TC3 that signs x-tc-action: a changed action breaks the signature.
                let mut r = tencent_request(
                    &host,
                    "EdgeKVGet",
                    json!({"ZoneId": TENCENT_ZONE, "Namespace": ns, "Keys": [SENTINEL_KEY]}),
                );
                sign::tencent_signing(&mut r, &Vendor::Tencent.dev_key(), &["x-tc-action"]);
                r.set("X-TC-Action", "EdgeKVDelete");
                (
                    Vendor::Tencent,
                    "TC3 signing x-tc-action EdgeKVGet, sent as EdgeKVDelete".into(),
                    r,
                    refused_when_enforced(),
                )
            }
            _ => {
                // TC3 as the SDKs sign it (content-type;host): the action header is unsigned. On
                // loopback `bind_unsigned_action` is off by default, so the gateway serves what
                // the vendor would; only its envelope is checked. Aimed at the bench namespace.
                let mut r = tencent_request(
                    &host,
                    "EdgeKVGet",
                    json!({"ZoneId": TENCENT_ZONE, "Namespace": TENCENT_NAMESPACE, "Keys": ["k1"]}),
                );
                sign::tencent(&mut r, &Vendor::Tencent.dev_key());
                let (name, value) = *self.pick(&[
                    ("X-TC-Action", "EdgeKVDelete"),
                    ("X-TC-Action", "DescribeEdgeKVNamespaces"),
                    ("X-TC-Action", "EdgeKVList"),
                    ("X-TC-Version", "2020-01-01"),
                ]);
                r.set(name, value);
                (
                    Vendor::Tencent,
                    format!("TC3 EdgeKVGet, then unsigned {name}: {value}"),
                    r,
                    Allow {
                        success: true,
                        ..Default::default()
                    },
                )
            }
        };
        Case {
            vendor,
            category: "unsigned-override",
            what,
            request,
            allow,
            sign: false,
        }
    }

    /// An admin call a web page (cross-site, or DNS-rebound to a foreign host name) or a foreign
    /// Host could make: every one must be the admin API's 401/403/415 JSON, and none may change
    /// anything (the runner checks data, clock and faults afterwards). Grouped under a dialect
    /// only for the per-category counts.
    pub(super) fn admin_foreign(&mut self) -> Case {
        let vendor = *self.pick(&Vendor::ALL);
        let (method, path) = *self.pick(&ADMIN_TARGETS);
        let port = self.host.rsplit(':').next().unwrap_or("80").to_string();
        let state_changing = method != "GET";
        let body: &[u8] = match path {
            "/_kvmux/clock/advance" => br#"{"seconds": 31536000}"#,
            "/_kvmux/faults" => br#"{"dialect": "huawei", "probability": 0.0}"#,
            _ => b"{}",
        };
        let mut r = RawRequest::new(method, path);
        let what = match self.rng.u8(..3) {
            0 => {
                let foreign = *self.pick(&[
                    "evil.example",
                    "attacker.test",
                    "127.0.0.1.nip.io",
                    "localhost.evil.example",
                    "kvmux.internal.evil",
                ]);
                let host = if self.rng.bool() {
                    format!("{foreign}:{port}")
                } else {
                    foreign.to_string()
                };
                r = r
                    .header("Host", &host)
                    .header("Content-Type", "application/json");
                format!("{method} {path} with Host {host}")
            }
            1 => {
                let origin = match self.rng.u8(..5) {
                    0 => "null".to_string(),
                    1 => "http://evil.example".to_string(),
                    2 => format!("http://localhost:{port}"),
                    3 => "http://127.0.0.1:1".to_string(),
                    _ => format!("file://127.0.0.1:{port}"),
                };
                r = r
                    .header("Host", &self.host)
                    .header("Origin", &origin)
                    .header("Content-Type", "application/json");
                format!("{method} {path} with Origin {origin}")
            }
            _ => {
                // A CORS "simple request": no preflight, so only the content type stops it.
                let (method, path) = if state_changing {
                    (method, path)
                } else {
                    ("POST", "/_kvmux/reset")
                };
                r = RawRequest::new(method, path).header("Host", &self.host);
                let ct = *self.pick(&[
                    Some("text/plain"),
                    Some("text/plain;charset=UTF-8"),
                    Some("application/x-www-form-urlencoded"),
                    Some("multipart/form-data; boundary=x"),
                    Some("application/jsonp"),
                    None,
                ]);
                if let Some(ct) = ct {
                    r = r.header("Content-Type", ct);
                }
                format!("{method} {path} with Content-Type {ct:?}")
            }
        };
        if r.method != b"GET" {
            r = r.body(body.to_vec());
        }
        Case {
            vendor,
            category: "admin-foreign",
            what,
            request: r,
            allow: Allow {
                admin: true,
                ..Default::default()
            },
            sign: false,
        }
    }

    /// A request made to grow what the gateway keeps per request: a long, distinct action or
    /// operation name, an unknown key id, long and many header values (the inspector keeps 64
    /// headers of 1 KiB). The runner then checks `/metrics` and the inspector stay bounded.
    pub(super) fn label_growth(&mut self, index: usize) -> Case {
        let vendor = Vendor::ALL[(index / 10) % 3];
        let len = self.rng.usize(200..2000);
        let long: String = std::iter::repeat_with(|| self.rng.alphanumeric())
            .take(len)
            .collect();
        let unique = format!("{index}{long}");
        let mut parts = Vec::new();
        let name_it = self.rng.u8(..3) != 0;
        let mut r = match vendor {
            Vendor::Tencent => {
                let action = if name_it {
                    format!("EdgeKV{unique}")
                } else {
                    "EdgeKVGet".into()
                };
                tencent_request(
                    &self.host,
                    &action,
                    json!({"ZoneId": TENCENT_ZONE, "Namespace": TENCENT_NAMESPACE, "Keys": ["k1"]}),
                )
            }
            Vendor::Aliyun => {
                let action = if name_it {
                    format!("GetKv{unique}")
                } else {
                    "GetKv".into()
                };
                aliyun_request(
                    &self.host,
                    "GET",
                    &action,
                    &format!("Namespace={ALIYUN_NAMESPACE}&Key=k1"),
                    "",
                )
            }
            Vendor::Huawei => {
                let op = if name_it {
                    format!("get-kv-{unique}")
                } else {
                    "get-kv".into()
                };
                huawei_request(
                    &format!("{HUAWEI_STORE}.{}", self.host),
                    "",
                    &op,
                    bson::doc! {"table_name": HUAWEI_TABLE, "primary_key": {"id": "k1"}},
                )
            }
        };
        if name_it {
            parts.push("long distinct name".to_string());
        }
        if !name_it || self.rng.bool() {
            let count = self.rng.usize(1..80);
            let each = self.rng.usize(100..(40_000 / count).clamp(101, 4000));
            for i in 0..count {
                let value: String = std::iter::repeat_with(|| self.rng.alphanumeric())
                    .take(each)
                    .collect();
                r = r.header(&format!("X-Kvmux-Pad-{i}-{index}"), value);
            }
            parts.push(format!("{count} headers of {each} bytes"));
        }
        let unknown = self.rng.u8(..3) == 0;
        let mut allow = Allow {
            not_implemented: vendor == Vendor::Huawei,
            ..Default::default()
        };
        let sign = if unknown {
            let key = self.unknown_key(vendor);
            super::sign_for(vendor, &mut r, &key);
            parts.push(format!("unknown key id of {} bytes", key.id.len()));
            // Auth off takes no account from an unknown key id and may serve the request.
            allow.success_without_auth = true;
            false
        } else {
            true
        };
        // A known operation with long headers only is a valid request.
        allow.success |= !name_it && !unknown;
        Case {
            vendor,
            category: "label-growth",
            what: parts.join(", "),
            request: r,
            allow,
            sign,
        }
    }
}
