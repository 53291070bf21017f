//! End to end through the real binary: the request inspector (`/_kvmux/requests`) and fault
//! rules (`/_kvmux/faults`) answered in each vendor's own envelope.

mod common;

use std::time::{Duration, Instant};

use common::{agent, Server, AUTH_OFF};
use serde_json::{json, Value};

fn get_json(s: &Server, path: &str) -> (u16, Value) {
    let mut r = agent().get(&s.url(path)).call().expect("admin call");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().expect("json"))
}

fn post_json(s: &Server, path: &str, body: Value) -> (u16, Value) {
    let mut r = agent()
        .post(&s.url(path))
        .send_json(body)
        .expect("admin call");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().expect("json"))
}

fn delete(s: &Server, path: &str) -> (u16, Value) {
    let mut r = agent()
        .delete(&s.url(path))
        .header("Content-Type", "application/json")
        .call()
        .expect("admin call");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().expect("json"))
}

/// A Tencent TC3 request with a well-formed but wrong signature for the dev key.
fn tencent_wrongly_signed(s: &Server, action: &str, body: &Value) -> (u16, Value) {
    let now = kv_core::clock::wall_clock_secs();
    let date = time::OffsetDateTime::from_unix_timestamp(now as i64)
        .expect("time")
        .date();
    let auth = format!(
        "TC3-HMAC-SHA256 Credential=AKIDkvmuxdev/{date}/teo/tc3_request, SignedHeaders=content-type;host, Signature={}",
        "ab".repeat(32)
    );
    let mut r = agent()
        .post(&s.url("/"))
        .header("Content-Type", "application/json")
        .header("X-TC-Action", action)
        .header("X-TC-Version", "2022-09-01")
        .header("X-TC-Timestamp", &now.to_string())
        .header("X-TC-Token", "session-token-that-must-not-leak")
        .header("Authorization", &auth)
        .send(body.to_string())
        .expect("tencent request");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().expect("json"))
}

#[test]
fn a_refused_signature_shows_the_servers_canonical_request_and_no_secret() {
    let s = Server::start("");
    let body = json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["k"]});
    let (status, reply) = tencent_wrongly_signed(&s, "EdgeKVGet", &body);
    assert_eq!(status, 200);
    let code = reply["Response"]["Error"]["Code"]
        .as_str()
        .unwrap_or_default();
    assert!(code.starts_with("AuthFailure"), "{reply}");

    let (status, listed) = get_json(&s, "/_kvmux/requests");
    assert_eq!(status, 200);
    let requests = listed["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 1, "admin calls are not recorded: {listed}");
    let entry = &requests[0];
    assert_eq!(entry["dialect"], "tencent");
    assert_eq!(entry["operation"], "EdgeKVGet");
    assert_eq!(entry["code"], code);
    assert_eq!(
        entry["request_id"], reply["Response"]["RequestId"],
        "{entry}"
    );
    let sig = &entry["signature"];
    assert_eq!(sig["algorithm"], "TC3-HMAC-SHA256");
    assert_eq!(sig["access_key_id"], "AKIDkvmuxdev");
    assert_eq!(sig["client_signature"], "ab".repeat(32));
    let canonical = sig["canonical_request"]
        .as_str()
        .expect("canonical request");
    assert!(canonical.starts_with("POST\n/\n"), "{canonical}");
    assert!(
        canonical.contains("content-type:application/json"),
        "{canonical}"
    );
    let to_sign = sig["string_to_sign"].as_str().expect("string to sign");
    assert!(to_sign.starts_with("TC3-HMAC-SHA256\n"), "{to_sign}");
    // What the client sent sits beside it, with the session token masked.
    let headers = entry["request"]["headers"].as_array().expect("headers");
    assert!(headers
        .iter()
        .any(|h| h[0] == "x-tc-action" && h[1] == "EdgeKVGet"));
    assert!(headers
        .iter()
        .any(|h| h[0] == "x-tc-token" && h[1] == "***"));
    let shown = listed.to_string();
    assert!(
        !shown.contains("kvmuxdevsecret"),
        "a secret leaked: {shown}"
    );
    assert!(
        !shown.contains("session-token-that-must-not-leak"),
        "{shown}"
    );
}

#[test]
fn the_inspector_records_every_dialect_filters_and_pages() {
    let s = Server::start(AUTH_OFF);
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "missing", "Keys": ["k"]}),
    );
    assert_eq!(r["Error"]["Code"], "ResourceUnavailable.NamespaceNotFound");
    let mut aliyun = agent()
        .get(&s.url("/?Action=GetKv&Version=2024-09-10&Namespace=none&Key=k"))
        .call()
        .expect("aliyun");
    assert_eq!(
        aliyun.status(),
        404,
        "{}",
        aliyun.body_mut().read_to_string().unwrap_or_default()
    );
    let huawei = agent()
        .post(&s.url("/v1/get-kv?store_name=nostore"))
        .header("Content-Type", "application/bson")
        .send(&b"not bson"[..])
        .expect("huawei");
    assert_eq!(huawei.status(), 400);
    let unclaimed = agent().get(&s.url("/nothing")).call().expect("unclaimed");
    assert_eq!(unclaimed.status(), 400);

    let (_, all) = get_json(&s, "/_kvmux/requests");
    let all = all["requests"].as_array().expect("requests").clone();
    let dialects: Vec<&str> = all
        .iter()
        .map(|e| e["dialect"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(dialects, ["none", "huawei", "aliyun", "tencent", "tencent"]);
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap_or(0)).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    assert_eq!(all[2]["operation"], "GetKv");
    assert_eq!(all[2]["status"], 404);
    assert!(
        all[2]["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{}",
        all[2]
    );
    assert_eq!(all[4]["operation"], "CreateEdgeKVNamespace");
    assert_eq!(all[4]["account"], "dev");
    assert!(all[4]["code"].is_null());
    assert!(all[4]["latency_ms"].as_f64().is_some_and(|l| l >= 0.0));

    let (_, tencent) = get_json(&s, "/_kvmux/requests?dialect=tencent&errors_only=true");
    let tencent = tencent["requests"].as_array().expect("requests").clone();
    assert_eq!(tencent.len(), 1);
    assert_eq!(tencent[0]["operation"], "EdgeKVGet");
    let (_, newer) = get_json(&s, &format!("/_kvmux/requests?after={}&limit=1", seqs[2]));
    let newer = newer["requests"].as_array().expect("requests").clone();
    assert_eq!(newer.len(), 1);
    assert_eq!(newer[0]["seq"], seqs[0]);

    let (status, bad) = get_json(&s, "/_kvmux/requests?limit=many");
    assert_eq!(status, 400, "{bad}");
    let (status, _) = get_json(&s, "/_kvmux/requests?colour=red");
    assert_eq!(status, 400);
    assert_eq!(delete(&s, "/_kvmux/requests").0, 200);
    let (_, empty) = get_json(&s, "/_kvmux/requests");
    assert_eq!(empty["requests"], json!([]));
}

#[test]
fn fault_rules_answer_with_each_vendors_own_errors() {
    let s = Server::start(AUTH_OFF);
    let (status, rule) = post_json(
        &s,
        "/_kvmux/faults",
        json!({"dialect": "tencent", "operation": "EdgeKVGet", "error": "throttle"}),
    );
    assert_eq!(status, 201, "{rule}");
    assert_eq!(rule["probability"], 1.0);
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    );
    assert!(r.get("Error").is_none(), "only EdgeKVGet is throttled: {r}");
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["k"]}),
    );
    assert_eq!(r["Error"]["Code"], "RequestLimitExceeded", "{r}");

    post_json(
        &s,
        "/_kvmux/faults",
        json!({"dialect": "aliyun", "error": "throttle"}),
    );
    let mut r = agent()
        .get(&s.url("/?Action=GetKv&Version=2024-09-10&Namespace=ns&Key=k"))
        .call()
        .expect("aliyun");
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.headers()
            .get("x-acs-retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1000")
    );
    let body: Value = r.body_mut().read_json().expect("json");
    assert_eq!(body["Code"], "TooManyRequests", "{body}");

    post_json(
        &s,
        "/_kvmux/faults",
        json!({"dialect": "huawei", "error": "internal"}),
    );
    let mut r = agent()
        .post(&s.url("/v1/get-kv?store_name=s"))
        .header("Content-Type", "application/bson")
        .send(&b""[..])
        .expect("huawei");
    assert_eq!(r.status(), 500);
    let bytes = r.body_mut().read_to_vec().expect("body");
    let doc = bson::Document::from_reader(&mut bytes.as_slice()).expect("bson error body");
    assert_eq!(
        doc.get_str("error_code").ok(),
        Some("KVS.00000001"),
        "{doc}"
    );

    let (_, listed) = get_json(&s, "/_kvmux/faults");
    let fired: Vec<u64> = listed["faults"]
        .as_array()
        .expect("faults")
        .iter()
        .map(|f| f["fired"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(fired, [1, 1, 1]);
    let (_, inspected) = get_json(&s, "/_kvmux/requests?limit=1");
    assert_eq!(inspected["requests"][0]["fault"], "rule 3");
    assert_eq!(inspected["requests"][0]["operation"], "get-kv");

    assert_eq!(delete(&s, "/_kvmux/faults/1").0, 200);
    assert_eq!(delete(&s, "/_kvmux/faults/1").0, 404);
    assert_eq!(delete(&s, "/_kvmux/faults/x").0, 400);
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["k"]}),
    );
    assert!(r.get("Error").is_none(), "rule 1 is gone: {r}");
    assert_eq!(delete(&s, "/_kvmux/faults").1["removed"], 2);
    let (_, listed) = get_json(&s, "/_kvmux/faults");
    assert_eq!(listed["faults"], json!([]));
}

#[test]
fn fault_rules_match_accounts_add_latency_and_refuse_bad_specs() {
    let extra = format!(
        "{AUTH_OFF}[[credentials]]\ndialect = \"tencent\"\nid = \"AKIDteamb\"\nsecret = \"s\"\naccount = \"team-b\"\n"
    );
    let s = Server::start(&extra);
    post_json(
        &s,
        "/_kvmux/faults",
        json!({"account": "team-b", "error": "internal", "latency_ms": 1000}),
    );
    // The helper signs as AKIDkvmuxdev (account dev): no fault, no delay.
    let started = Instant::now();
    let r = s.tencent("DescribeEdgeKVNamespaces", json!({"ZoneId": "z"}));
    assert!(r.get("Error").is_none(), "{r}");
    assert!(started.elapsed() < Duration::from_millis(1000));
    // The same call as team-b's key waits and fails.
    let started = Instant::now();
    let mut resp = agent()
        .post(&s.url("/"))
        .header("Content-Type", "application/json")
        .header("X-TC-Action", "DescribeEdgeKVNamespaces")
        .header("X-TC-Version", "2022-09-01")
        .header("X-TC-Timestamp", &kv_core::clock::wall_clock_secs().to_string())
        .header(
            "Authorization",
            "TC3-HMAC-SHA256 Credential=AKIDteamb/2026-01-01/teo/tc3_request, SignedHeaders=content-type;host, Signature=00",
        )
        .send(json!({"ZoneId": "z"}).to_string())
        .expect("tencent");
    assert!(started.elapsed() >= Duration::from_millis(1000));
    let body: Value = resp.body_mut().read_json().expect("json");
    assert_eq!(body["Response"]["Error"]["Code"], "InternalError", "{body}");

    for bad in [
        json!({"error": "explode"}),
        json!({"dialect": "tencent"}),
        json!({"probability": 2.0, "error": "throttle"}),
        json!({"latency_ms": 3_600_000}),
        json!({"dialect": "aws", "error": "throttle"}),
        json!({"error": "throttle", "colour": "red"}),
    ] {
        let (status, reply) = post_json(&s, "/_kvmux/faults", bad.clone());
        assert_eq!(status, 400, "{bad} -> {reply}");
        assert!(reply["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let r = agent()
        .post(&s.url("/_kvmux/faults"))
        .header("Content-Type", "application/json")
        .send(&b"{not json"[..])
        .expect("admin");
    assert_eq!(r.status(), 400);
}

#[test]
fn a_probabilistic_rule_fires_about_as_often_as_asked() {
    let s = Server::start(AUTH_OFF);
    s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    );
    post_json(
        &s,
        "/_kvmux/faults",
        json!({"dialect": "tencent", "probability": 0.5, "error": "throttle"}),
    );
    let throttled = (0..200)
        .filter(|_| {
            s.tencent(
                "EdgeKVGet",
                json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["k"]}),
            )["Error"]["Code"]
                == "RequestLimitExceeded"
        })
        .count();
    // Binomial(200, 0.5): outside 60..140 with probability < 1e-8.
    assert!((60..140).contains(&throttled), "{throttled} of 200");
}

#[test]
fn an_inspector_capacity_of_zero_records_nothing_and_serves_everything() {
    let s = Server::start(&format!("inspector_capacity = 0\n{AUTH_OFF}"));
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let (status, listed) = get_json(&s, "/_kvmux/requests");
    assert_eq!(status, 200);
    assert_eq!(listed["requests"], json!([]));
}
