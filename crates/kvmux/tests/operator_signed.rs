//! End to end with signatures enforced: requests signed the way each vendor's SDK signs them
//! (the signers `kvmux bench` uses, built on the dialect crates' own canonical-request code) pass,
//! the same requests with the wrong secret are refused and explained in the inspector, and
//! account-scoped fault rules find the account from the signed request.

mod common;

#[allow(dead_code)]
use kvmux_bench::workload;

use bytes::Bytes;
use common::{agent, Server};
use serde_json::{json, Value};
use workload::{Op, Target, Workload};

fn workload(s: &Server, target: Target, secret: &str) -> Workload {
    Workload {
        target,
        host: format!("127.0.0.1:{}", s.port),
        key_id: target.dev_key_id().into(),
        secret: secret.into(),
        value: Bytes::from_static(b"signed value"),
    }
}

/// Sends a built request to the server; returns the status and the body.
fn send(s: &Server, request: http::Request<Bytes>) -> (u16, Vec<u8>) {
    common::send_request(&agent(), s.port, request).expect("request")
}

fn is_error(w: &Workload, status: u16, body: &[u8]) -> bool {
    w.is_error(http::StatusCode::from_u16(status).expect("status"), body)
}

fn requests(s: &Server, query: &str) -> Vec<Value> {
    let mut r = agent()
        .get(&s.url(&format!("/_kvmux/requests?{query}")))
        .call()
        .expect("inspector");
    let v: Value = r.body_mut().read_json().expect("json");
    v["requests"].as_array().cloned().unwrap_or_default()
}

#[test]
fn every_dialect_signs_through_and_refusals_are_explained() {
    let s = Server::start("");
    for (target, dialect, algorithm) in [
        (Target::Tencent, "tencent", "TC3-HMAC-SHA256"),
        (Target::Aliyun, "aliyun", "ACS3-HMAC-SHA256"),
        (Target::Huawei, "huawei", "SDK-HMAC-SHA256"),
    ] {
        let good = workload(&s, target, "kvmuxdevsecret");
        let (create, puts) = good.setup(2);
        let (status, body) = send(&s, create);
        assert!(
            !is_error(&good, status, &body),
            "{dialect}: {}",
            String::from_utf8_lossy(&body)
        );
        for put in puts {
            let (status, body) = send(&s, put);
            assert!(
                !is_error(&good, status, &body),
                "{dialect}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let (status, body) = send(&s, good.request(Op::Get, 1));
        assert!(!is_error(&good, status, &body), "{dialect}");
        assert!(String::from_utf8_lossy(&body).contains("signed value") || dialect == "huawei");

        let bad = workload(&s, target, "a-wrong-secret");
        let (status, body) = send(&s, bad.request(Op::Get, 1));
        assert!(
            is_error(&bad, status, &body),
            "{dialect}: the wrong secret must be refused"
        );

        let refused = requests(&s, &format!("dialect={dialect}&errors_only=true&limit=1"));
        let entry = refused
            .first()
            .unwrap_or_else(|| panic!("{dialect}: nothing recorded"));
        let sig = &entry["signature"];
        assert_eq!(sig["algorithm"], algorithm, "{dialect}: {entry}");
        assert_eq!(sig["access_key_id"], good.key_id.as_str());
        assert!(
            sig["canonical_request"]
                .as_str()
                .is_some_and(|c| c.starts_with("GET\n") || c.starts_with("POST\n")),
            "{dialect}: {sig}"
        );
        assert!(
            sig["string_to_sign"]
                .as_str()
                .is_some_and(|t| t.starts_with(algorithm)),
            "{dialect}: {sig}"
        );
        assert_eq!(entry["account"], "dev", "{dialect}: {entry}");
        let shown = entry.to_string();
        assert!(
            !shown.contains("kvmuxdevsecret") && !shown.contains("a-wrong-secret"),
            "{shown}"
        );
    }
}

#[test]
fn account_rules_match_signed_requests_of_that_account_only() {
    let extra = "[[credentials]]\ndialect = \"huawei\"\nid = \"HWteamb\"\nsecret = \"teambsecret\"\naccount = \"team-b\"\n\
                 [[credentials]]\ndialect = \"huawei\"\nid = \"HWkvmuxdev\"\nsecret = \"kvmuxdevsecret\"\naccount = \"dev\"\n";
    let s = Server::start(extra);
    let dev = workload(&s, Target::Huawei, "kvmuxdevsecret");
    let mut team_b = workload(&s, Target::Huawei, "teambsecret");
    team_b.key_id = "HWteamb".into();
    for w in [&dev, &team_b] {
        let (create, puts) = w.setup(1);
        let (status, body) = send(&s, create);
        assert!(
            !is_error(w, status, &body),
            "{}",
            String::from_utf8_lossy(&body)
        );
        for put in puts {
            send(&s, put);
        }
    }
    let mut r = agent()
        .post(&s.url("/_kvmux/faults"))
        .send_json(json!({"dialect": "huawei", "operation": "get-kv", "account": "team-b", "error": "throttle"}))
        .expect("fault");
    assert_eq!(
        r.status(),
        201,
        "{}",
        r.body_mut().read_to_string().unwrap_or_default()
    );

    let (status, body) = send(&s, dev.request(Op::Get, 0));
    assert!(
        !is_error(&dev, status, &body),
        "dev is not throttled: {status}"
    );
    let (status, body) = send(&s, team_b.request(Op::Get, 0));
    assert_eq!(status, 503);
    let doc = bson::Document::from_reader(&mut body.as_slice()).expect("bson error");
    assert_eq!(
        doc.get_str("error_code").ok(),
        Some("KVS.00000003"),
        "{doc}"
    );
    let last = requests(&s, "limit=1");
    assert_eq!(last[0]["account"], "team-b");
    assert_eq!(last[0]["fault"], "rule 1");
}
