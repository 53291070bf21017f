//! `[auth] mode` means one thing in every dialect (see `kv_dialect::AuthMode`), pinned here with the
//! same requests through Tencent, Aliyun and Huawei:
//! - `off` verifies nothing and serves each request in the account its key id belongs to, else
//!   the first credential's account; a nonce used twice is served twice;
//! - `log` serves a badly signed request the same way but records why its signature failed (the
//!   inspector shows it);
//! - `enforce` refuses it with the vendor's signature error.
//!
//! And fault rules find a request's account through the dialect (`Dialect::account_hint`),
//! so a key pair added at runtime is matched as a configured one is.

mod common;

use bson::{doc, Document};
use common::{agent, Server};
use serde_json::{json, Value};

/// Two accounts per dialect; `alpha`'s keys come first, so `alpha` is the fallback account.
const KEYS: &str = r#"
[[credentials]]
dialect = "tencent"
id = "AKIDalpha"
secret = "alpha-secret"
account = "alpha"
[[credentials]]
dialect = "tencent"
id = "AKIDbeta"
secret = "beta-secret"
account = "beta"
[[credentials]]
dialect = "aliyun"
id = "LTAIalpha"
secret = "alpha-secret"
account = "alpha"
[[credentials]]
dialect = "aliyun"
id = "LTAIbeta"
secret = "beta-secret"
account = "beta"
[[credentials]]
dialect = "huawei"
id = "HWalpha"
secret = "alpha-secret"
account = "alpha"
[[credentials]]
dialect = "huawei"
id = "HWbeta"
secret = "beta-secret"
account = "beta"
"#;

fn start(mode: &str) -> Server {
    Server::start(&format!(
        "storage = \"memory\"\n[auth]\nmode = \"{mode}\"\n{KEYS}"
    ))
}

#[derive(Clone, Copy, Debug)]
enum Vendor {
    Tencent,
    Aliyun,
    Huawei,
}

const VENDORS: [Vendor; 3] = [Vendor::Tencent, Vendor::Aliyun, Vendor::Huawei];

impl Vendor {
    fn key(self, who: &str) -> String {
        match self {
            Vendor::Tencent => format!("AKID{who}"),
            Vendor::Aliyun => format!("LTAI{who}"),
            Vendor::Huawei => format!("HW{who}"),
        }
    }
}

/// What a request came back as: HTTP status and the vendor's error code, if any.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    code: Option<String>,
    value: Option<String>,
}

/// Sends one badly signed request (every signature is `00`) with key `key`: a container create
/// (`op = "create"`), a put of `value` under `k`, or a get of `k`. `nonce` is the Aliyun
/// `SignatureNonce` (the other two carry none in this style).
fn call(s: &Server, vendor: Vendor, key: &str, op: &str, value: &str, nonce: &str) -> Answer {
    match vendor {
        Vendor::Tencent => {
            let (action, body) = match op {
                "create" => (
                    "CreateEdgeKVNamespace",
                    json!({"ZoneId": "z", "Namespace": "ns"}),
                ),
                "put" => (
                    "EdgeKVPut",
                    json!({"ZoneId": "z", "Namespace": "ns", "Key": "k", "Value": value}),
                ),
                _ => (
                    "EdgeKVGet",
                    json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["k"]}),
                ),
            };
            let mut r = agent()
                .post(&s.url("/"))
                .header("Content-Type", "application/json")
                .header("X-TC-Action", action)
                .header("X-TC-Version", "2022-09-01")
                .header(
                    "X-TC-Timestamp",
                    &kv_core::clock::wall_clock_secs().to_string(),
                )
                .header(
                    "Authorization",
                    &format!(
                        "TC3-HMAC-SHA256 Credential={key}/2026-01-01/teo/tc3_request, \
                         SignedHeaders=content-type;host;x-tc-action, Signature=00"
                    ),
                )
                .send(body.to_string())
                .expect("tencent request");
            let status = r.status().as_u16();
            let v: Value = r.body_mut().read_json().expect("json");
            let v = &v["Response"];
            Answer {
                status,
                code: v["Error"]["Code"].as_str().map(str::to_string),
                value: v["Data"][0]["Value"].as_str().map(str::to_string),
            }
        }
        Vendor::Aliyun => {
            let action = match op {
                "create" => "CreateKvNamespace".to_string(),
                "put" => format!("PutKv&Key=k&Value={value}"),
                _ => "GetKv&Key=k".to_string(),
            };
            let mut r = agent()
                .post(&s.url(&format!(
                    "/?Version=2024-09-10&Action={action}&Namespace=ns&AccessKeyId={key}\
                     &SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce={nonce}\
                     &Timestamp={}&Format=JSON&Signature=00",
                    time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .expect("time")
                        .replace(':', "%3A")
                )))
                .send_empty()
                .expect("aliyun request");
            let status = r.status().as_u16();
            let v: Value = r.body_mut().read_json().expect("json");
            Answer {
                status,
                code: v["Code"].as_str().map(str::to_string),
                value: v["Value"].as_str().map(str::to_string),
            }
        }
        Vendor::Huawei => {
            let (path, body) = match op {
                "create" => (
                    "create-table",
                    doc! {"table_name": "tbl", "primary_key_schema": {"shard_key_fields": [{"name": "id"}]}},
                ),
                "put" => (
                    "put-kv",
                    doc! {"table_name": "tbl", "kv_doc": {"id": "k", "v": value}},
                ),
                _ => (
                    "get-kv",
                    doc! {"table_name": "tbl", "primary_key": {"id": "k"}},
                ),
            };
            let mut r = agent()
                .post(&s.url(&format!("/v1/{path}?store_name=store1")))
                .header("Content-Type", "application/bson")
                .header("X-Sdk-Date", "20260101T000000Z")
                .header(
                    "Authorization",
                    &format!("SDK-HMAC-SHA256 Access={key}, SignedHeaders=host, Signature=00"),
                )
                .send(body.to_vec().expect("bson"))
                .expect("huawei request");
            let status = r.status().as_u16();
            let bytes = r.body_mut().read_to_vec().expect("body");
            let doc = Document::from_reader(&mut bytes.as_slice()).unwrap_or_default();
            Answer {
                status,
                code: doc.get_str("error_code").ok().map(str::to_string),
                value: doc
                    .get_document("kv_doc")
                    .ok()
                    .and_then(|d| d.get_str("v").ok())
                    .map(str::to_string),
            }
        }
    }
}

/// What the request inspector holds, as JSON text.
fn recorded_requests(s: &Server) -> String {
    let mut r = agent()
        .get(&s.url("/_kvmux/requests?limit=100"))
        .call()
        .expect("inspector");
    let listed: Value = r.body_mut().read_json().expect("json");
    listed.to_string()
}

fn ok(answer: Answer, what: &str) -> Answer {
    assert_eq!(
        (answer.status, &answer.code),
        (200, &None),
        "{what}: {answer:?}"
    );
    answer
}

/// Under a mode that serves badly signed requests, each is served in its key's account: what
/// alpha writes, beta does not see, and an unknown key reaches alpha (the first credential's).
fn served_in_the_key_owners_account(s: &Server) {
    for vendor in VENDORS {
        let (alpha, beta) = (vendor.key("alpha"), vendor.key("beta"));
        ok(
            call(s, vendor, &alpha, "create", "", "n1"),
            "create as alpha",
        );
        ok(
            call(s, vendor, &alpha, "put", "alpha-value", "n2"),
            "put as alpha",
        );
        let seen = call(s, vendor, &alpha, "get", "", "n3");
        assert_eq!(
            seen.value.as_deref(),
            Some("alpha-value"),
            "{vendor:?}: {seen:?}"
        );
        let other = call(s, vendor, &beta, "get", "", "n4");
        assert_ne!(
            other.value.as_deref(),
            Some("alpha-value"),
            "{vendor:?}: {other:?}"
        );
        let unknown = call(s, vendor, &vendor.key("nobody"), "get", "", "n5");
        assert_eq!(
            unknown.value.as_deref(),
            Some("alpha-value"),
            "{vendor:?}: {unknown:?}"
        );
    }
}

#[test]
fn off_verifies_nothing_and_serves_each_request_in_its_keys_account() {
    let s = start("off");
    served_in_the_key_owners_account(&s);
    // No nonce is recorded: the same SignatureNonce is served again.
    for _ in 0..2 {
        ok(
            call(&s, Vendor::Aliyun, "LTAIalpha", "get", "", "same-nonce"),
            "a reused nonce under off",
        );
    }
    // Nothing was verified, so the inspector holds no signature diagnostics.
    let text = recorded_requests(&s);
    assert!(!text.contains("\"reason\""), "{text}");
}

#[test]
fn log_serves_a_bad_signature_in_the_same_account_and_records_why() {
    let s = start("log");
    served_in_the_key_owners_account(&s);
    let text = recorded_requests(&s);
    for dialect in ["tencent", "aliyun", "huawei"] {
        assert!(
            text.contains(&format!("\"{dialect}\"")),
            "{dialect}: {text}"
        );
    }
    assert!(
        text.contains("\"reason\""),
        "signature diagnostics recorded: {text}"
    );
}

#[test]
fn enforce_refuses_the_same_requests_with_each_vendors_signature_error() {
    let s = start("enforce");
    for vendor in VENDORS {
        let refused = call(&s, vendor, &vendor.key("alpha"), "create", "", "n1");
        let expected: (u16, &str) = match vendor {
            Vendor::Tencent => (200, "AuthFailure.SignatureFailure"),
            Vendor::Aliyun => (400, "SignatureDoesNotMatch"),
            Vendor::Huawei => (401, "APIGW.0301"),
        };
        assert_eq!(
            (refused.status, refused.code.as_deref()),
            (expected.0, Some(expected.1)),
            "{vendor:?}: {refused:?}"
        );
    }
}

#[test]
fn fault_rules_match_the_account_of_a_key_added_at_runtime() {
    let s = start("off");
    let mut r = agent()
        .post(&s.url("/_kvmux/credentials"))
        .send_json(json!({"dialect": "huawei", "id": "HWgamma", "secret": "g", "account": "gamma"}))
        .expect("credentials");
    assert_eq!(
        r.status(),
        201,
        "{}",
        r.body_mut().read_to_string().unwrap_or_default()
    );
    let mut r = agent()
        .post(&s.url("/_kvmux/faults"))
        .send_json(json!({"dialect": "huawei", "account": "gamma", "error": "throttle"}))
        .expect("fault");
    assert!(
        r.status().is_success(),
        "{}",
        r.body_mut().read_to_string().unwrap_or_default()
    );
    let throttled = call(&s, Vendor::Huawei, "HWgamma", "create", "", "");
    assert!(
        throttled.status == 429 || throttled.code.is_some(),
        "{throttled:?}"
    );
    assert_ne!(throttled.status, 200, "{throttled:?}");
    // Another account's key is not matched.
    ok(
        call(&s, Vendor::Huawei, "HWalpha", "create", "", ""),
        "alpha is not throttled",
    );
}
