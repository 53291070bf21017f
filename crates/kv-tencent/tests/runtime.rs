//! The EdgeOne runtime binding route (`/_edge/tencent/{ZoneId}/{Namespace}/{Key}`) driven through
//! `serve()`: the runtime's limits (25 MiB, binary, empty values, its key rule), the same data as
//! the EdgeKV actions both ways, and TC3 over method, path, host and body.

use bytes::Bytes;
use http::{Request, Response};
use kv_dialect::testing::{Harness, Setup};
use kv_dialect::{Answer, Dialect, RequestInfo};
use kv_tencent::auth::{sign_tc3, SignedRequest};
use kv_tencent::TencentDialect;
use serde_json::{json, Value};

const ID: &str = "AKIDtest";
const SECRET: &str = "secret";
const HOST: &str = "127.0.0.1:9090";

type Fixture = Harness<TencentDialect>;

fn fixture() -> Fixture {
    Setup::new(&[(ID, SECRET, "acct"), ("AKIDother", "other", "other")]).build(TencentDialect::new)
}

fn now() -> u64 {
    kv_core::clock::wall_clock_secs()
}

/// `request` with the TC3 `Authorization` over `signed_headers`, at its `X-TC-Timestamp`.
fn sign(
    request: Request<Bytes>,
    id: &str,
    secret: &str,
    signed_headers: &[&str],
) -> Request<Bytes> {
    let (mut parts, body) = request.into_parts();
    let header = |name: &str| parts.headers[name].to_str().unwrap().to_string();
    let timestamp: u64 = header("x-tc-timestamp").parse().unwrap();
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &parts.headers,
        body: &body,
    };
    let signed_headers: Vec<String> = signed_headers.iter().map(|h| h.to_string()).collect();
    let authorization = sign_tc3(
        &signed,
        &header("host"),
        "teo",
        id,
        secret,
        &signed_headers,
        timestamp,
    );
    parts
        .headers
        .insert("authorization", authorization.parse().unwrap());
    Request::from_parts(parts, body)
}

/// A runtime request signed as `kvmux-edge` signs it: method, path, host and the body's hash.
fn runtime_as(method: &str, path: &str, body: &[u8], id: &str, secret: &str) -> Request<Bytes> {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", HOST)
        .header("x-tc-timestamp", now().to_string())
        .body(Bytes::copy_from_slice(body))
        .unwrap();
    sign(request, id, secret, &["host"])
}

fn runtime(method: &str, path: &str, body: &[u8]) -> Request<Bytes> {
    runtime_as(method, path, body, ID, SECRET)
}

/// An EdgeKV action signed as the Python SDK signs it.
fn action(name: &str, body: &Value) -> Request<Bytes> {
    let request = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", HOST)
        .header("content-type", "application/json")
        .header("x-tc-action", name)
        .header("x-tc-version", "2022-09-01")
        .header("x-tc-timestamp", now().to_string())
        .body(Bytes::from(body.to_string()))
        .unwrap();
    sign(request, ID, SECRET, &["content-type", "host"])
}

async fn send(f: &Fixture, request: Request<Bytes>) -> Answer {
    f.dialect.serve_request(request).await
}

async fn edgekv(f: &Fixture, name: &str, body: Value) -> Value {
    let response = send(f, action(name, &body)).await;
    assert_eq!(response.status(), 200);
    let reply: Value = serde_json::from_slice(response.body()).unwrap();
    reply["Response"].clone()
}

fn error_code(response: &Response<Bytes>) -> String {
    let reply: Value = serde_json::from_slice(response.body()).expect("an envelope");
    reply["Response"]["Error"]["Code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {reply}"))
        .to_string()
}

fn info(answer: &Answer) -> RequestInfo {
    answer.info.clone()
}

const PATH: &str = "/_edge/tencent/zone-1/ns-1/k_1";

#[tokio::test]
async fn values_the_runtime_allows_round_trip_and_edgekv_reads_them() {
    let f = fixture();
    // 25 MiB exactly, binary, and empty: none of which EdgeKVPut carries.
    let big: Vec<u8> = (0..26_214_400u32).map(|i| (i % 251) as u8).collect();
    for (path, value) in [
        ("/_edge/tencent/zone-1/ns-1/big", big.clone()),
        (
            "/_edge/tencent/zone-1/ns-1/bin",
            vec![0xff, 0x00, 0xfe, b'a'],
        ),
        ("/_edge/tencent/zone-1/ns-1/empty", Vec::new()),
    ] {
        let put = send(&f, runtime("PUT", path, &value)).await;
        assert_eq!(put.status(), 200, "{path}: {:?}", put.body());
        assert_eq!(info(&put).operation, "EdgeRuntimePut");
        assert_eq!(info(&put).account.as_deref(), Some("acct"));
        let got = send(&f, runtime("GET", path, b"")).await;
        assert_eq!(got.status(), 200, "{path}");
        assert_eq!(got.headers()["content-type"], "application/octet-stream");
        assert_eq!(got.body().len(), value.len(), "{path}");
        assert!(got.body()[..] == value[..], "{path}");
        assert_eq!(info(&got).operation, "EdgeRuntimeGet");
    }
    // The namespace the first put created is EdgeKV's, in the zone, of the signer's account.
    let listed = edgekv(
        &f,
        "EdgeKVList",
        json!({"ZoneId": "zone-1", "Namespace": "ns-1"}),
    )
    .await;
    assert_eq!(listed["Keys"], json!(["big", "bin", "empty"]));
    // EdgeKVGet answers a non-UTF-8 value lossily (U+FFFD for each invalid sequence), as the
    // runtime's `get(key, "text")` decodes it; the empty value reads as "" (as a missing key).
    let got = edgekv(
        &f,
        "EdgeKVGet",
        json!({"ZoneId": "zone-1", "Namespace": "ns-1", "Keys": ["bin", "empty"]}),
    )
    .await;
    assert_eq!(got["Data"][0]["Value"], "\u{fffd}\u{0}\u{fffd}a");
    assert_eq!(got["Data"][1]["Value"], "");
}

#[tokio::test]
async fn edgekvput_values_are_read_by_the_runtime_route_and_deletes_are_shared() {
    let f = fixture();
    let created = edgekv(
        &f,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "zone-1", "Namespace": "ns-1"}),
    )
    .await;
    assert!(created.get("Error").is_none(), "{created}");
    let put = edgekv(
        &f,
        "EdgeKVPut",
        json!({"ZoneId": "zone-1", "Namespace": "ns-1", "Key": "k_1", "Value": "héllo"}),
    )
    .await;
    assert!(put.get("Error").is_none(), "{put}");
    let got = send(&f, runtime("GET", PATH, b"")).await;
    assert_eq!(got.status(), 200);
    assert_eq!(&got.body()[..], "héllo".as_bytes());

    let deleted = send(&f, runtime("DELETE", PATH, b"")).await;
    assert_eq!(deleted.status(), 200);
    let reply: Value = serde_json::from_slice(deleted.body()).unwrap();
    assert_eq!(reply["Response"]["Deleted"], true);
    let again = send(&f, runtime("DELETE", PATH, b"")).await;
    let reply: Value = serde_json::from_slice(again.body()).unwrap();
    assert_eq!(reply["Response"]["Deleted"], false);

    let missing = send(&f, runtime("GET", PATH, b"")).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(error_code(&missing), "ResourceNotFound.KeyNotFound");
    let no_ns = send(&f, runtime("GET", "/_edge/tencent/zone-2/ns-1/k_1", b"")).await;
    assert_eq!(no_ns.status(), 404);
    assert_eq!(error_code(&no_ns), "ResourceUnavailable.NamespaceNotFound");
    // Another account's key does not see acct's namespace.
    let other = send(&f, runtime_as("PUT", PATH, b"x", "AKIDother", "other")).await;
    assert_eq!(other.status(), 200);
    assert_eq!(info(&other).account.as_deref(), Some("other"));
    let got = send(&f, runtime("GET", PATH, b"")).await;
    assert_eq!(got.status(), 404);
}

#[tokio::test]
async fn the_runtime_limits_and_key_rule_are_enforced_with_tencent_codes() {
    let f = fixture();
    let over = vec![b'a'; 26_214_401];
    let r = send(&f, runtime("PUT", PATH, &over)).await;
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(&r), "RequestSizeLimitExceeded");
    for (path, code) in [
        ("/_edge/tencent/zone-1/ns-1/a-b", "InvalidParameterValue"),
        ("/_edge/tencent/zone-1/ns-1/a%20b", "InvalidParameterValue"),
        ("/_edge/tencent/zone-1/ns-1", "InvalidParameter"),
        (
            "/_edge/tencent/zone-1/bad--name/k",
            "InvalidParameter.BadNamespaceName",
        ),
    ] {
        let r = send(&f, runtime("PUT", path, b"v")).await;
        assert_eq!(r.status(), 400, "{path}");
        assert_eq!(error_code(&r), code, "{path}");
    }
    let r = send(&f, runtime("POST", PATH, b"v")).await;
    assert_eq!(r.status(), 405);
    assert_eq!(error_code(&r), "UnsupportedProtocol");
    // The gateway's own body refusal on this route is a 413 in the same envelope.
    let (parts, _) = runtime("PUT", PATH, b"").into_parts();
    let head = f.dialect.classify(&parts).expect("claimed");
    assert_eq!(head.body_limit, 26_214_400 + 65_536);
    assert_eq!(head.operation, Some("EdgeRuntimePut"));
    let refusal = f
        .dialect
        .gateway_error(&head, kv_dialect::GatewayError::BodyTooLarge { limit: 1 });
    assert_eq!(refusal.status(), 413);
    assert_eq!(error_code(&refusal), "RequestSizeLimitExceeded");
}

#[tokio::test]
async fn what_runs_is_what_was_signed() {
    let f = fixture();
    let put = send(&f, runtime("PUT", PATH, b"v1")).await;
    assert_eq!(put.status(), 200);

    // A signature moved to another key, another method or another body is refused.
    let signed = runtime("PUT", PATH, b"v2");
    let (mut parts, body) = signed.into_parts();
    parts.uri = "/_edge/tencent/zone-1/ns-1/k_2".parse().unwrap();
    let r = send(&f, Request::from_parts(parts, body)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure");

    let (mut parts, body) = runtime("GET", PATH, b"").into_parts();
    parts.method = http::Method::DELETE;
    let r = send(&f, Request::from_parts(parts, body)).await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure");

    let (parts, _) = runtime("PUT", PATH, b"v2").into_parts();
    let r = send(&f, Request::from_parts(parts, Bytes::from_static(b"v3"))).await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure");

    // No signature, a wrong secret, an unsigned payload, an unsigned host: refused.
    let r = send(
        &f,
        Request::builder()
            .method("GET")
            .uri(PATH)
            .header("host", HOST)
            .body(Bytes::new())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(&r), "AuthFailure.InvalidAuthorization");
    let r = send(&f, runtime_as("GET", PATH, b"", ID, "wrong")).await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure");

    let ts = now();
    let unsigned = Request::builder()
        .method("PUT")
        .uri(PATH)
        .header("host", HOST)
        .header("x-tc-timestamp", ts.to_string())
        .header("x-tc-content-sha256", "UNSIGNED-PAYLOAD")
        .body(Bytes::from_static(b"v9"))
        .unwrap();
    let r = send(&f, sign(unsigned, ID, SECRET, &["host"])).await;
    assert_eq!(error_code(&r), "AuthFailure.InvalidAuthorization");

    let hostless = Request::builder()
        .method("GET")
        .uri(PATH)
        .header("host", HOST)
        .header("x-tc-timestamp", ts.to_string())
        .body(Bytes::new())
        .unwrap();
    let hostless = sign(hostless, ID, SECRET, &["x-tc-timestamp"]);
    let r = send(&f, hostless).await;
    assert_eq!(error_code(&r), "AuthFailure.InvalidAuthorization");

    // None of the refused requests wrote anything.
    let got = send(&f, runtime("GET", PATH, b"")).await;
    assert_eq!(&got.body()[..], b"v1");
    let k2 = send(&f, runtime("GET", "/_edge/tencent/zone-1/ns-1/k_2", b"")).await;
    assert_eq!(k2.status(), 404);
}
