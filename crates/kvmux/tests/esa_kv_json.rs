//! `kvmux import|export --format esa-kv-json` on the real binary: esa-cli's kv.json goes into an
//! account's ESA namespaces and is read back by ESA-signed GetKv; export writes those namespaces
//! back as kv.json (non-UTF-8 values left out with a warning, TTLs dropped with a count, expired
//! items absent); bad files are refused naming what is wrong, and change nothing.

mod adversarial;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use adversarial::raw::{exchange, Exchange, RawRequest};
use adversarial::sign;
use adversarial::Vendor;
use common::Server;
use serde_json::{json, Value};

const ENFORCE: &str = "[auth]\nmode = \"enforce\"\n";

/// A config on `dir` (data in `dir/data`, as `Server::with_dir` writes it) for offline commands.
fn offline_config(dir: &Path) -> PathBuf {
    let config = dir.join("offline.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n{ENFORCE}",
            common::free_port(),
            dir.join("data").display()
        ),
    )
    .unwrap();
    config
}

fn kvmux(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .args(args)
        .arg("--config")
        .arg(offline_config(dir))
        .env_remove("KVMUX_DATA_DIR")
        .env_remove("KVMUX_CONFIG")
        .output()
        .expect("run kvmux")
}

fn import(dir: &Path, kv_json: &str, extra: &[&str]) -> Output {
    let file = dir.join("kv.json");
    std::fs::write(&file, kv_json).unwrap();
    let file = file.display().to_string();
    let mut args = vec!["import", "--format", "esa-kv-json"];
    args.extend_from_slice(extra);
    args.push(&file);
    kvmux(dir, &args)
}

fn export(dir: &Path, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["export", "--format", "esa-kv-json"];
    args.extend_from_slice(extra);
    let out = kvmux(dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "export failed: {stderr}");
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("export is not JSON ({e}): {:?}", out.stdout));
    (doc, stderr)
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// An ESA action signed with V3 by the dev key, as tea-openapi signs it.
fn esa(s: &Server, method: &str, action: &str, query: &str, form: &str) -> (u16, Value) {
    let target = if query.is_empty() {
        "/".to_string()
    } else {
        format!("/?{query}")
    };
    let mut r = RawRequest::new(method, &target)
        .header("Host", format!("127.0.0.1:{}", s.port))
        .header("x-acs-action", action)
        .header("x-acs-version", "2024-09-10");
    if !form.is_empty() {
        r = r
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form);
    }
    assert!(sign::aliyun_v3(&mut r, &Vendor::Aliyun.dev_key()));
    match exchange(s.port, &r) {
        Exchange::Reply(reply) => (
            reply.status,
            serde_json::from_slice(&reply.body).expect("JSON reply"),
        ),
        other => panic!("{other:?}"),
    }
}

fn get_kv(s: &Server, namespace: &str, key: &str) -> (u16, Value) {
    esa(
        s,
        "GET",
        "GetKv",
        &format!("Namespace={namespace}&Key={key}"),
        "",
    )
}

const KV_JSON: &str = r#"{
  "site": {
    "greeting": "héllo",
    "config": {"a": 1, "b": [true, null]},
    "count": 42,
    "flag": false,
    "nothing": null,
    "empty": ""
  },
  "redirects": { "docs": "https://example.com/docs" }
}"#;

#[test]
fn kv_json_is_read_by_getkv_and_exported_back_as_strings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = import(dir, KV_JSON, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("imported 2 ESA namespaces (2 created) of account `dev`, 7 items"),
        "{}",
        stderr_of(&out)
    );

    let mut s = Server::with_dir(dir, ENFORCE);
    for (ns, key, expected) in [
        ("site", "greeting", "héllo"),
        ("site", "config", r#"{"a":1,"b":[true,null]}"#),
        ("site", "count", "42"),
        ("site", "flag", "false"),
        ("site", "nothing", "null"),
        ("site", "empty", ""),
        ("redirects", "docs", "https://example.com/docs"),
    ] {
        let (status, v) = get_kv(&s, ns, key);
        assert_eq!(
            (status, v["Value"].as_str()),
            (200, Some(expected)),
            "{ns}/{key}: {v}"
        );
    }
    // Data written through the API meanwhile: a binary value, one with a TTL, one about to expire.
    let (status, v) = esa(
        &s,
        "POST",
        "PutKv",
        "Namespace=site&Key=bin&Base64=true",
        "Value=%2FwA%3D",
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = esa(
        &s,
        "POST",
        "PutKv",
        "Namespace=site&Key=ttl&ExpirationTtl=86400",
        "Value=later",
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = esa(
        &s,
        "POST",
        "PutKv",
        "Namespace=site&Key=short&ExpirationTtl=1",
        "Value=soon",
    );
    assert_eq!(status, 200, "{v}");
    // Real time, not `clock/advance`: the export must see the item expired whatever the clock.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (status, v) = get_kv(&s, "site", "short");
    assert_eq!(status, 404, "expired: {v}");
    s.terminate();

    let (doc, stderr) = export(dir, &[]);
    assert_eq!(
        doc,
        json!({
            "redirects": { "docs": "https://example.com/docs" },
            "site": {
                "config": r#"{"a":1,"b":[true,null]}"#,
                "count": "42",
                "empty": "",
                "flag": "false",
                "greeting": "héllo",
                "nothing": "null",
                "ttl": "later"
            }
        })
    );
    assert!(
        stderr
            .contains("skipped namespace `site` key `bin`: the value (2 bytes) is not valid UTF-8"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exported 2 ESA namespaces of account `dev`, 8 items (1 skipped: not UTF-8; 1 TTLs dropped"),
        "{stderr}"
    );

    // The export imports again unchanged (an esa-cli dev round trip).
    let again = import(dir, &doc.to_string(), &[]);
    assert!(again.status.success(), "{}", stderr_of(&again));
    assert_eq!(export(dir, &[]).0, doc);
}

#[test]
fn the_account_flag_picks_whose_namespaces_move() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = import(dir, r#"{"ns": {"k": "v"}}"#, &["--account", "other"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(export(dir, &[]).0, json!({}));
    assert_eq!(
        export(dir, &["--account", "other"]).0,
        json!({"ns": {"k": "v"}})
    );
    // A JSON Lines dump names its accounts itself.
    let out = kvmux(dir, &["export", "--account", "other"]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("--account applies to --format esa-kv-json only"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn bad_files_are_refused_naming_what_is_wrong_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let nine: serde_json::Map<String, Value> = (1..=9)
        .map(|i| (format!("ns{i}"), json!({"k": "v"})))
        .collect();
    let out = import(dir, &Value::Object(nine).to_string(), &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));

    for (file, expected) in [
        (r#"["ns"]"#, "kv.json must be an object of namespaces"),
        (r#"["ns"]"#, "it is an array"),
        ("{\"ns\": {\"k\": \"v\"}\n", "kv.json is not valid JSON: EOF while parsing an object at line 2"),
        (r#"{"ns": "v"}"#, "namespace `ns` must be an object of keys and values; it is a string"),
        (r#"{"a b": {"k": "v"}}"#, "namespace `a b`: "),
        (r#"{"ns": {"a b": "v"}}"#, "namespace `ns`, key `a b`: "),
        (r#"{"ns": {"a b": "v"}}"#, "InvalidKey.Malformed"),
        (
            r#"{"x1": {"k": "new"}, "x2": {"k": "new"}, "ns1": {"k": "changed"}}"#,
            "account `dev` has 9 ESA namespaces and kv.json adds 2 (`x1`, `x2`); ESA allows 10 per account",
        ),
    ] {
        let out = import(dir, file, &[]);
        assert!(!out.status.success(), "{file}");
        assert!(stderr_of(&out).contains(expected), "{file}: {}", stderr_of(&out));
    }
    let big = format!(r#"{{"ns": {{"k": "{}"}}}}"#, "x".repeat(2_000_001));
    let out = import(dir, &big, &[]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("namespace `ns`, key `k`: "),
        "{}",
        stderr_of(&out)
    );

    // Nothing of the refused files was written: still the nine namespaces of `{"k": "v"}`.
    let (doc, _) = export(dir, &[]);
    let expected: serde_json::Map<String, Value> = (1..=9)
        .map(|i| (format!("ns{i}"), json!({"k": "v"})))
        .collect();
    assert_eq!(doc, Value::Object(expected));
    // One more namespace fits the quota.
    let out = import(dir, r#"{"x1": {"k": "v"}}"#, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}
