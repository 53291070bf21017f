//! The EdgeOne runtime binding route on the real gateway: `/_edge/tencent/{ZoneId}/{Namespace}/{Key}`
//! is claimed by the Tencent dialect, takes 25 MiB bodies (the EdgeKV actions keep their 16 MiB),
//! refuses anything larger before storing it, and shares its data with signed EdgeKV actions.

mod adversarial;
mod common;

use adversarial::raw::{exchange, Exchange, RawRequest, RawResponse};
use adversarial::sign;
use adversarial::Vendor;
use common::Server;
use serde_json::{json, Value};

const ENFORCE: &str = "[auth]\nmode = \"enforce\"\n";
const MAX_VALUE: usize = 25 * 1024 * 1024;

fn reply(s: &Server, r: &RawRequest) -> RawResponse {
    match exchange(s.port, r) {
        Exchange::Reply(reply) => reply,
        other => panic!("{other:?}"),
    }
}

/// A runtime request signed with the dev Tencent key over method, path, host and body.
fn runtime(s: &Server, method: &str, path: &str, body: Vec<u8>) -> RawResponse {
    let mut r = RawRequest::new(method, path)
        .header("Host", format!("127.0.0.1:{}", s.port))
        .body(body);
    assert!(sign::tencent(&mut r, &Vendor::Tencent.dev_key()));
    reply(s, &r)
}

/// A signed EdgeKV action; returns the inner `Response`.
fn action(s: &Server, name: &str, params: Value) -> Value {
    let mut r = RawRequest::new("POST", "/")
        .header("Host", format!("127.0.0.1:{}", s.port))
        .header("Content-Type", "application/json")
        .header("X-TC-Action", name)
        .header("X-TC-Version", "2022-09-01")
        .body(params.to_string());
    assert!(sign::tencent(&mut r, &Vendor::Tencent.dev_key()));
    let got = reply(s, &r);
    assert_eq!(got.status, 200);
    serde_json::from_slice::<Value>(&got.body).unwrap()["Response"].clone()
}

fn code(r: &RawResponse) -> String {
    let v: Value = serde_json::from_slice(&r.body).expect("an envelope");
    v["Response"]["Error"]["Code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_gateway_takes_25_mib_on_the_runtime_route_and_shares_it_with_edgekv() {
    let s = Server::start(ENFORCE);
    let value: Vec<u8> = (0..MAX_VALUE).map(|i| (i % 251) as u8).collect();
    let put = runtime(&s, "PUT", "/_edge/tencent/zone-1/ns-1/big", value.clone());
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    let got = runtime(&s, "GET", "/_edge/tencent/zone-1/ns-1/big", Vec::new());
    assert_eq!(got.status, 200);
    assert_eq!(got.content_type(), "application/octet-stream");
    assert_eq!(got.body.len(), MAX_VALUE);
    assert!(got.body == value, "25 MiB byte for byte");

    // Binary and empty values; EdgeKVGet reads the first lossily, the second as "".
    for (key, v) in [("bin", vec![0xff, b'o', b'k']), ("empty", Vec::new())] {
        let path = format!("/_edge/tencent/zone-1/ns-1/{key}");
        assert_eq!(runtime(&s, "PUT", &path, v.clone()).status, 200);
        assert_eq!(runtime(&s, "GET", &path, Vec::new()).body, v);
    }
    let edgekv = action(
        &s,
        "EdgeKVGet",
        json!({"ZoneId": "zone-1", "Namespace": "ns-1", "Keys": ["bin", "empty"]}),
    );
    assert_eq!(edgekv["Data"][0]["Value"], "\u{fffd}ok", "{edgekv}");
    assert_eq!(edgekv["Data"][1]["Value"], "");
    let put = action(
        &s,
        "EdgeKVPut",
        json!({"ZoneId": "zone-1", "Namespace": "ns-1", "Key": "sdk", "Value": "ü"}),
    );
    assert!(put.get("Error").is_none(), "{put}");
    let got = runtime(&s, "GET", "/_edge/tencent/zone-1/ns-1/sdk", Vec::new());
    assert_eq!(got.body, "ü".as_bytes());
}

#[test]
fn larger_bodies_are_refused_with_tencent_codes_and_the_actions_keep_their_limit() {
    let s = Server::start(ENFORCE);
    // Over the value limit but within the route's body limit: the route's own refusal.
    let over = runtime(
        &s,
        "PUT",
        "/_edge/tencent/z/ns/k",
        vec![b'a'; MAX_VALUE + 1],
    );
    assert_eq!(
        (over.status, code(&over)),
        (413, "RequestSizeLimitExceeded".into())
    );
    // Over the route's body limit: the gateway refuses before reading it, in the same envelope.
    let huge = runtime(
        &s,
        "PUT",
        "/_edge/tencent/z/ns/k",
        vec![b'a'; MAX_VALUE + 64 * 1024 + 1],
    );
    assert_eq!(
        (huge.status, code(&huge)),
        (413, "RequestSizeLimitExceeded".into())
    );
    let missing = runtime(&s, "GET", "/_edge/tencent/z/ns/k", Vec::new());
    assert_eq!(
        (missing.status, code(&missing)),
        (404, "ResourceUnavailable.NamespaceNotFound".into())
    );

    // The EdgeKV actions' 16 MiB body limit is unchanged by the route's.
    let mut r = RawRequest::new("POST", "/")
        .header("Host", format!("127.0.0.1:{}", s.port))
        .header("Content-Type", "application/json")
        .header("X-TC-Action", "EdgeKVPut")
        .header("X-TC-Version", "2022-09-01")
        .body(vec![b' '; 17 * 1024 * 1024]);
    assert!(sign::tencent(&mut r, &Vendor::Tencent.dev_key()));
    let refused = reply(&s, &r);
    assert_eq!(
        (refused.status, code(&refused)),
        (200, "RequestSizeLimitExceeded".into())
    );

    // Unsigned: refused with Tencent's code and a 401.
    let unsigned = reply(
        &s,
        &RawRequest::new("GET", "/_edge/tencent/z/ns/k")
            .header("Host", format!("127.0.0.1:{}", s.port)),
    );
    assert_eq!(
        (unsigned.status, code(&unsigned)),
        (401, "AuthFailure.InvalidAuthorization".into())
    );
}
