//! End to end through the real binary: behaviours that differed from the vendors (issue
//! "Vendor fidelity", section 3). The vendors' own SDKs drive the same cases in tests/sdk/.
//!
//! - Engine time never moves back across a restart: the clock offset is kept with the data.
//! - A bound namespace is whole on both sides: its own name in describe and listings, and a
//!   second create through the other vendor is that vendor's duplicate error.
//! - DCDN namespace names are case-insensitive (ESA's are not).

mod common;

use common::{agent, Server, AUTH_OFF};
use serde_json::{json, Value};

/// One Aliyun RPC call with auth off: `version` picks ESA (2024-09-10) or DCDN (2018-01-15).
fn aliyun(s: &Server, version: &str, query: &str) -> (u16, Value) {
    let mut r = agent()
        .post(&s.url(&format!("/?Version={version}&{query}")))
        .send_empty()
        .expect("aliyun request");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().expect("json"))
}

const ESA: &str = "2024-09-10";
const DCDN: &str = "2018-01-15";

fn advance(s: &Server, seconds: u64) {
    let r = agent()
        .post(&s.url("/_kvmux/clock/advance"))
        .send_json(json!({ "seconds": seconds }))
        .expect("advance");
    assert_eq!(r.status(), 200);
}

fn ttl(s: &Server, ns: &str, key: &str) -> i64 {
    let (status, r) = aliyun(
        s,
        ESA,
        &format!("Action=GetKvDetail&Namespace={ns}&Key={key}"),
    );
    assert_eq!(status, 200, "{r}");
    r["ExpirationTtl"]
        .as_i64()
        .or_else(|| r["ExpirationTtl"].as_str().and_then(|t| t.parse().ok()))
        .expect("ExpirationTtl")
}

#[test]
fn engine_time_never_moves_back_across_a_restart_or_a_crash() {
    let mut s = Server::start(AUTH_OFF);
    assert_eq!(
        aliyun(&s, ESA, "Action=CreateKvNamespace&Namespace=clock").0,
        200
    );
    for (key, ttl) in [("long", 3600), ("short", 60)] {
        let q = format!("Action=PutKv&Namespace=clock&Key={key}&Value=v&ExpirationTtl={ttl}");
        assert_eq!(aliyun(&s, ESA, &q).0, 200);
    }
    advance(&s, 100);
    // A graceful stop right after the advance: Engine::close stores the offset.
    assert!(s.terminate().success());
    s.restart();
    let after_restart = ttl(&s, "clock", "long");
    assert!((3490..=3500).contains(&after_restart), "{after_restart}");
    let (status, r) = aliyun(&s, ESA, "Action=GetKv&Namespace=clock&Key=short");
    assert_eq!(
        (status, r["Code"].clone()),
        (404, json!("InvalidKey.NotFound")),
        "{r}"
    );
    let (_, listed) = aliyun(&s, ESA, "Action=ListKvs&Namespace=clock");
    assert_eq!(listed["TotalCount"], json!(1), "{listed}");

    // A crash (SIGKILL) a moment after an advance: the keeper had stored it.
    advance(&s, 1000);
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.kill();
    s.restart();
    let after_crash = ttl(&s, "clock", "long");
    assert!((2490..=2500).contains(&after_crash), "{after_crash}");
}

const BINDING: &str = r#"
[[bindings]]
account = "dev"
tencent_zone = "zone-1"
tencent_namespace = "orders"
aliyun_namespace = "orders-esa"

[[bindings]]
account = "dev"
tencent_zone = "zone-1"
tencent_namespace = "legacy"
aliyun_namespace = "migrated"
"#;

fn esa_names(s: &Server) -> Vec<String> {
    let (status, r) = aliyun(s, ESA, "Action=GetKvAccount");
    assert_eq!(status, 200, "{r}");
    let mut names: Vec<String> = r["NamespaceList"]
        .as_array()
        .expect("NamespaceList")
        .iter()
        .map(|n| n["Namespace"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

fn tencent_names(s: &Server) -> Vec<String> {
    let r = s.tencent("DescribeEdgeKVNamespaces", json!({"ZoneId": "zone-1"}));
    let mut names: Vec<String> = r["KVNamespaces"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|n| n["Namespace"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn a_bound_namespace_is_whole_on_both_sides() {
    let s = Server::start(&format!("{AUTH_OFF}{BINDING}"));

    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "zone-1", "Namespace": "orders"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let (status, r) = aliyun(&s, ESA, "Action=CreateKvNamespace&Namespace=orders-esa");
    assert_eq!(
        (status, r["Code"].clone()),
        (406, json!("InvalidNameSpace.Duplicate")),
        "{r}"
    );
    let (status, r) = aliyun(&s, ESA, "Action=GetKvNamespace&Namespace=orders-esa");
    assert_eq!(
        (status, r["Namespace"].clone()),
        (200, json!("orders-esa")),
        "{r}"
    );
    assert_eq!(esa_names(&s), ["orders-esa"]);

    let (status, _) = aliyun(&s, ESA, "Action=CreateKvNamespace&Namespace=migrated");
    assert_eq!(status, 200);
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "zone-1", "Namespace": "legacy"}),
    );
    assert_eq!(r["Error"]["Code"], json!("InvalidParameterValue"), "{r}");
    assert_eq!(tencent_names(&s), ["legacy", "orders"]);
    assert_eq!(esa_names(&s), ["migrated", "orders-esa"]);

    // Data written on one side is read on the other, under each side's own name.
    let (status, _) = aliyun(&s, ESA, "Action=PutKv&Namespace=migrated&Key=m&Value=esa");
    assert_eq!(status, 200);
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "zone-1", "Namespace": "legacy", "Keys": ["m"]}),
    );
    assert_eq!(r["Data"][0]["Value"], json!("esa"), "{r}");

    // Deleting through either name deletes it for both.
    let (status, _) = aliyun(&s, ESA, "Action=DeleteKvNamespace&Namespace=orders-esa");
    assert_eq!(status, 200);
    assert_eq!(tencent_names(&s), ["legacy"]);
    assert_eq!(esa_names(&s), ["migrated"]);
}

#[test]
fn dcdn_namespace_names_are_case_insensitive_and_esa_names_are_not() {
    let s = Server::start(AUTH_OFF);
    let (status, r) = aliyun(&s, DCDN, "Action=PutDcdnKvNamespace&Namespace=CaseNs_X");
    assert_eq!(
        (status, r["Namespace"].clone()),
        (200, json!("CaseNs_X")),
        "{r}"
    );
    let (status, r) = aliyun(&s, DCDN, "Action=PutDcdnKvNamespace&Namespace=casens_x");
    assert_eq!(
        (status, r["Code"].clone()),
        (406, json!("InvalidNameSpace.Duplicate")),
        "{r}"
    );
    let (status, _) = aliyun(
        &s,
        DCDN,
        "Action=PutDcdnKv&Namespace=caseNS_x&Key=k&Value=v",
    );
    assert_eq!(status, 200);
    let (status, r) = aliyun(&s, DCDN, "Action=GetDcdnKv&Namespace=CASENS_X&Key=k");
    assert_eq!((status, r["Value"].clone()), (200, json!("v")), "{r}");
    let (status, r) = aliyun(
        &s,
        DCDN,
        "Action=DescribeDcdnKvNamespace&Namespace=casens_x",
    );
    assert_eq!(
        (status, r["Namespace"].clone()),
        (200, json!("CaseNs_X")),
        "{r}"
    );

    for name in ["CaseEsa", "caseesa"] {
        let (status, r) = aliyun(
            &s,
            ESA,
            &format!("Action=CreateKvNamespace&Namespace={name}"),
        );
        assert_eq!(status, 200, "{r}");
    }
}
