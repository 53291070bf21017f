//! End to end through the real binary: `[[bindings]]` makes a Tencent namespace and an Aliyun
//! namespace one store, so data written through one vendor's API is read through the other's.

mod common;

use common::{agent, Server, AUTH_OFF};
use serde_json::{json, Value};

fn aliyun(s: &Server, query: &str) -> (u16, Value) {
    let mut r = agent()
        .post(&s.url(&format!("/?Version=2024-09-10&{query}")))
        .send_empty()
        .expect("aliyun request");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().expect("json"))
}

const BINDINGS: &str = r#"
[[bindings]]
account = "dev"
tencent_zone = "zone-1"
tencent_namespace = "orders"
aliyun_namespace = "orders"

[[bindings]]
account = "dev"
tencent_zone = "zone-1"
tencent_namespace = "legacy"
aliyun_namespace = "migrated"
"#;

#[test]
fn a_bound_namespace_is_one_store_for_both_vendors() {
    let s = Server::start(&format!("{AUTH_OFF}{BINDINGS}"));

    // Created through Tencent, written through Tencent, read through Aliyun.
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "zone-1", "Namespace": "orders"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let r = s.tencent(
        "EdgeKVPut",
        json!({"ZoneId": "zone-1", "Namespace": "orders", "Key": "o-1", "Value": "from tencent"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let (status, r) = aliyun(&s, "Action=GetKv&Namespace=orders&Key=o-1");
    assert_eq!(
        (status, r["Value"].clone()),
        (200, json!("from tencent")),
        "{r}"
    );

    // Written through Aliyun, read and listed through Tencent.
    let (status, r) = aliyun(
        &s,
        "Action=PutKv&Namespace=orders&Key=o-2&Value=from%20aliyun",
    );
    assert_eq!(status, 200, "{r}");
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "zone-1", "Namespace": "orders", "Keys": ["o-2"]}),
    );
    assert_eq!(r["Data"][0]["Value"], "from aliyun", "{r}");
    let r = s.tencent(
        "EdgeKVList",
        json!({"ZoneId": "zone-1", "Namespace": "orders", "Limit": 10}),
    );
    assert_eq!(r["Keys"], json!(["o-1", "o-2"]), "{r}");

    // A delete through one is seen by the other.
    let (status, r) = aliyun(&s, "Action=DeleteKv&Namespace=orders&Key=o-1");
    assert_eq!(status, 200, "{r}");
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "zone-1", "Namespace": "orders", "Keys": ["o-1"]}),
    );
    assert_eq!(r["Data"][0]["Value"], "", "{r}");

    // The other direction and different names: created through Aliyun, read through Tencent.
    let (status, r) = aliyun(&s, "Action=CreateKvNamespace&Namespace=migrated");
    assert_eq!(status, 200, "{r}");
    let (status, r) = aliyun(&s, "Action=PutKv&Namespace=migrated&Key=m&Value=moved");
    assert_eq!(status, 200, "{r}");
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "zone-1", "Namespace": "legacy", "Keys": ["m"]}),
    );
    assert_eq!(r["Data"][0]["Value"], "moved", "{r}");

    // Unbound namespaces stay apart: another zone's "orders" is its own.
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "zone-2", "Namespace": "orders", "Keys": ["o-2"]}),
    );
    assert_eq!(
        r["Error"]["Code"], "ResourceUnavailable.NamespaceNotFound",
        "{r}"
    );
    let (status, _) = aliyun(&s, "Action=GetKv&Namespace=unbound&Key=o-2");
    assert_eq!(status, 404);
}

#[test]
fn bad_bindings_are_refused_at_start_up() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[bindings]]\naccount = \"dev\"\ntencent_zone = \"z\"\ntencent_namespace = \"a\"\naliyun_namespace = \"b\"\naliyun_product = \"oss\"\n",
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .arg("check-config")
        .arg(&config)
        .output()
        .expect("kvmux");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("aliyun_product"), "{stderr}");
}
