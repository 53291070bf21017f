//! Tencent replays and reply amplification, end to end on the real binary with signatures
//! enforced: a TC3 signature is bound to the (unsigned) action it was first used with, a legacy
//! Nonce is used once (also across a restart), and EdgeKVGet's reply is bounded by the vendor's
//! 50 MB response cap.

mod adversarial;
mod common;

use adversarial::raw::{exchange, Exchange, RawRequest};
use adversarial::sign;
use adversarial::Vendor;
use common::Server;
use serde_json::{json, Value};

const ENFORCE: &str = "[auth]\nmode = \"enforce\"\n";
/// The TC3 signature binding, which is on by default beyond loopback and off on loopback, turned
/// on for a test server (which listens on 127.0.0.1).
const ENFORCE_AND_BIND: &str =
    "[auth]\nmode = \"enforce\"\n[tencent]\nbind_unsigned_action = true\n";

fn host(s: &Server) -> String {
    format!("127.0.0.1:{}", s.port)
}

/// A TC3 POST signed like the SDKs sign it (`content-type;host`: action and version unsigned).
fn tc3(s: &Server, action: &str, body: &Value) -> RawRequest {
    let mut r = RawRequest::new("POST", "/")
        .header("Host", host(s))
        .header("Content-Type", "application/json")
        .header("X-TC-Action", action)
        .header("X-TC-Version", "2022-09-01")
        .body(body.to_string());
    assert!(sign::tencent(&mut r, &Vendor::Tencent.dev_key()));
    r
}

/// The reply's `Response` object and the size of the whole body.
fn send(s: &Server, r: &RawRequest) -> (Value, usize) {
    match exchange(s.port, r) {
        Exchange::Reply(reply) => {
            assert_eq!(reply.status, 200);
            let v: Value = serde_json::from_slice(&reply.body).expect("json reply");
            (v["Response"].clone(), reply.body.len())
        }
        other => panic!("{other:?}"),
    }
}

fn ok(s: &Server, action: &str, body: Value) -> Value {
    let (reply, _) = send(s, &tc3(s, action, &body));
    assert!(reply.get("Error").is_none(), "{action}: {reply}");
    reply
}

fn code(reply: &Value) -> &str {
    reply["Error"]["Code"].as_str().unwrap_or("")
}

#[test]
fn a_tc3_signature_reused_with_another_action_is_refused_and_an_identical_repeat_is_served() {
    let s = Server::start(ENFORCE_AND_BIND);
    ok(
        &s,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    );
    ok(
        &s,
        "EdgeKVPut",
        json!({"ZoneId": "z", "Namespace": "ns", "Key": "k", "Value": "precious"}),
    );
    let get = tc3(
        &s,
        "EdgeKVGet",
        &json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["k"]}),
    );
    for _ in 0..2 {
        let (reply, _) = send(&s, &get);
        assert_eq!(reply["Data"][0]["Value"], "precious", "{reply}");
    }
    // The captured EdgeKVGet, replayed as an EdgeKVDelete (same body, same signature).
    let mut delete = get.clone();
    delete.set("X-TC-Action", "EdgeKVDelete");
    let (reply, _) = send(&s, &delete);
    assert_eq!(code(&reply), "AuthFailure.SignatureFailure", "{reply}");
    // ... and as another version.
    let mut other_version = get.clone();
    other_version.set("X-TC-Version", "2020-01-01");
    let (reply, _) = send(&s, &other_version);
    assert_eq!(code(&reply), "AuthFailure.SignatureFailure", "{reply}");
    // The key survived, and the original call still works.
    let (reply, _) = send(&s, &get);
    assert_eq!(reply["Data"][0]["Value"], "precious", "{reply}");
    let reply = ok(
        &s,
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["k"]}),
    );
    assert_eq!(reply["Data"][0]["Value"], "precious");
}

#[test]
fn on_loopback_by_default_two_clients_may_send_identical_bodies_in_one_second() {
    // A namespace created by one SDK client and deleted by another within the same second: the
    // two requests carry the same TC3 signature (only content-type and host are signed). On a
    // loopback listener nobody but the machine's root can capture traffic, so the binding is off
    // by default there and both calls are served; beyond loopback it is on (see main.rs).
    let s = Server::start(ENFORCE);
    let body = json!({"ZoneId": "z", "Namespace": "twice"});
    let create = tc3(&s, "CreateEdgeKVNamespace", &body);
    let mut delete = create.clone();
    delete.set("X-TC-Action", "DeleteEdgeKVNamespace");
    let (reply, _) = send(&s, &create);
    assert!(reply.get("Error").is_none(), "{reply}");
    let (reply, _) = send(&s, &delete);
    assert!(reply.get("Error").is_none(), "{reply}");
    let (reply, _) = send(
        &s,
        &tc3(&s, "DescribeEdgeKVNamespaces", &json!({"ZoneId": "z"})),
    );
    assert!(!reply.to_string().contains("twice"), "{reply}");
}

/// A legacy (HmacSHA256) GET with the given Nonce, signed over every parameter.
fn legacy(s: &Server, action: &str, nonce: Option<&str>, business: &[(&str, &str)]) -> RawRequest {
    let ts = kv_core::clock::wall_clock_secs().to_string();
    let id = Vendor::Tencent.dev_key();
    let mut params: Vec<(&str, &str)> = vec![
        ("Action", action),
        ("Version", "2022-09-01"),
        ("Timestamp", &ts),
        ("SecretId", &id.id),
        ("SignatureMethod", "HmacSHA256"),
    ];
    if let Some(n) = nonce {
        params.push(("Nonce", n));
    }
    params.extend_from_slice(business);
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let signature = kv_tencent::auth::sign_legacy("GET", &host(s), "/", &owned, &id.secret);
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &params {
        query.append_pair(k, v);
    }
    query.append_pair("Signature", &signature);
    RawRequest::new("GET", &format!("/?{}", query.finish()))
        .header("Host", host(s))
        .header("X-TC-TraceId", "00000000-0000-0000-0000-000000000000")
}

#[test]
fn a_legacy_nonce_is_used_once_also_after_a_restart() {
    let mut s = Server::start(ENFORCE);
    let zone = [("ZoneId", "z")];
    let first = legacy(&s, "DescribeEdgeKVNamespaces", Some("7391"), &zone);
    let (reply, _) = send(&s, &first);
    assert!(reply.get("Error").is_none(), "{reply}");
    assert_eq!(reply["TotalCount"], 0, "{reply}");
    // The same request again: a replay.
    let (reply, _) = send(&s, &first);
    assert_eq!(code(&reply), "AuthFailure.SignatureFailure", "{reply}");
    // Another Nonce is another request.
    let (reply, _) = send(
        &s,
        &legacy(&s, "DescribeEdgeKVNamespaces", Some("7392"), &zone),
    );
    assert!(reply.get("Error").is_none(), "{reply}");
    // No Nonce at all is refused.
    let (reply, _) = send(&s, &legacy(&s, "DescribeEdgeKVNamespaces", None, &zone));
    assert_eq!(code(&reply), "MissingParameter", "{reply}");

    // A restart forgets nothing: the nonces are in the store.
    s.terminate();
    s.restart();
    let (reply, _) = send(&s, &first);
    assert_eq!(code(&reply), "AuthFailure.SignatureFailure", "{reply}");
    let (reply, _) = send(
        &s,
        &legacy(&s, "DescribeEdgeKVNamespaces", Some("7393"), &zone),
    );
    assert!(reply.get("Error").is_none(), "{reply}");
}

fn put_values(s: &Server, namespace: &str, value: &str) -> Vec<String> {
    ok(
        s,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": namespace}),
    );
    let keys: Vec<String> = (0..20).map(|i| format!("k{i:02}")).collect();
    for key in &keys {
        ok(
            s,
            "EdgeKVPut",
            json!({"ZoneId": "z", "Namespace": namespace, "Key": key, "Value": value}),
        );
    }
    keys
}

#[test]
fn edgekvget_of_twenty_one_mib_values_is_bounded_by_the_response_cap() {
    let s = Server::start(ENFORCE);
    // Twenty 1 MiB values of control characters: each escapes to 6 MiB of JSON, 126 MB together.
    let escaped = put_values(&s, "wide", &"\u{1}".repeat(1 << 20));
    let before = common::rss_kib(s.pid());
    let request = json!({"ZoneId": "z", "Namespace": "wide", "Keys": escaped});
    let (reply, size) = send(&s, &tc3(&s, "EdgeKVGet", &request));
    let after = common::rss_kib(s.pid());
    println!(
        "20 x 1 MiB escaped EdgeKVGet: reply {size} bytes, RSS {before} -> {after} KiB (+{} KiB)",
        after.saturating_sub(before)
    );
    assert_eq!(code(&reply), "ResponseSizeLimitExceeded", "{reply}");
    assert!(size < 4096, "{size}");
    assert!(
        after.saturating_sub(before) < 100 * 1024,
        "RSS grew by {} KiB",
        after.saturating_sub(before)
    );

    // Twenty 1 MiB plain values make a 21 MB reply, under the cap: served whole.
    let plain = put_values(&s, "plain", &"v".repeat(1 << 20));
    let before = common::rss_kib(s.pid());
    let request = json!({"ZoneId": "z", "Namespace": "plain", "Keys": plain});
    let (reply, size) = send(&s, &tc3(&s, "EdgeKVGet", &request));
    let after = common::rss_kib(s.pid());
    println!(
        "20 x 1 MiB plain EdgeKVGet: reply {size} bytes, RSS {before} -> {after} KiB (+{} KiB)",
        after.saturating_sub(before)
    );
    assert!(reply.get("Error").is_none(), "{}", code(&reply));
    let data = reply["Data"].as_array().expect("Data");
    assert_eq!(data.len(), 20);
    assert!(data
        .iter()
        .all(|d| d["Value"].as_str().map(str::len) == Some(1 << 20)));
    assert!(size > 20 << 20 && size < 50_000_000, "{size}");
}
