//! `[limits] account_max_bytes`: one byte cap per account across every zone and namespace (and
//! dialect), end to end on the real binary. Tencent accepts any number of ZoneIds and gives each
//! namespace 1 GB, so before this cap one tenant could fill the disk by creating zones.

mod common;

use common::{Server, AUTH_OFF};
use serde_json::json;

fn put(s: &Server, zone: &str, namespace: &str, key: &str, bytes: usize) -> serde_json::Value {
    s.tencent(
        "EdgeKVPut",
        json!({"ZoneId": zone, "Namespace": namespace, "Key": key, "Value": "v".repeat(bytes)}),
    )
}

fn create(s: &Server, zone: &str, namespace: &str) {
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": zone, "Namespace": namespace}),
    );
    assert!(r.get("Error").is_none(), "{r}");
}

#[test]
fn one_account_cannot_pass_its_byte_cap_by_spreading_over_zones() {
    let s = Server::start(&format!(
        "{AUTH_OFF}[limits]\naccount_max_bytes = 3000\n\
         [limits.account_max_bytes_by_account]\nbig = 100000\n"
    ));
    create(&s, "zone-a", "ns");
    create(&s, "zone-b", "ns");
    let first = put(&s, "zone-a", "ns", "k1", 2000);
    assert!(first.get("Error").is_none(), "{first}");
    // Another zone, another namespace: still the same account's bytes.
    let refused = put(&s, "zone-b", "ns", "k2", 2000);
    assert_eq!(refused["Error"]["Code"], "LimitExceeded", "{refused}");
    let nothing = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "zone-b", "Namespace": "ns", "Keys": ["k2"]}),
    );
    // EdgeKVGet answers a missing key with an empty value.
    assert_eq!(
        nothing["Data"][0]["Value"], "",
        "the refused put stored nothing: {nothing}"
    );
    // Under the cap it still works, and freeing space makes room again.
    let small = put(&s, "zone-b", "ns", "k3", 900);
    assert!(small.get("Error").is_none(), "{small}");
    let deleted = s.tencent(
        "EdgeKVDelete",
        json!({"ZoneId": "zone-a", "Namespace": "ns", "Keys": ["k1"]}),
    );
    assert!(deleted.get("Error").is_none(), "{deleted}");
    let again = put(&s, "zone-b", "ns", "k2", 2000);
    assert!(again.get("Error").is_none(), "{again}");
}

#[test]
fn a_negative_cap_is_refused_by_check_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kvmux.toml");
    std::fs::write(&path, "[limits]\naccount_max_bytes = -1\n").expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run kvmux");
    assert!(!out.status.success());
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("account_max_bytes"), "{said}");
}
