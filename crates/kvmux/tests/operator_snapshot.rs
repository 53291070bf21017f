//! End to end through the real binary: `GET /_kvmux/snapshot`, `kvmux export`, `kvmux import`
//! and `seed_dir`, with data written through all three dialects (Huawei tables with secondary
//! indexes included) and TTLs that must survive the trip.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use bson::{doc, Document};
use common::{agent, Server, AUTH_OFF};
use serde_json::{json, Value};

fn huawei(s: &Server, op: &str, body: Document) -> (u16, Document) {
    s.huawei("shop", op, body)
}

fn aliyun(s: &Server, query: &str) -> (u16, Value) {
    let mut r = agent()
        .post(&s.url(&format!("/?Version=2024-09-10&{query}")))
        .send_empty()
        .expect("aliyun request");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().expect("json"))
}

/// Writes the same data set through all three dialects.
fn fill(s: &Server) {
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    for (key, value, ttl) in [
        ("short", "lives an hour", Some(3600)),
        ("long", "forever", None),
    ] {
        let mut body = json!({"ZoneId": "z", "Namespace": "ns", "Key": key, "Value": value});
        if let Some(ttl) = ttl {
            body["ExpirationTTL"] = json!(ttl);
        }
        let r = s.tencent("EdgeKVPut", body);
        assert!(r.get("Error").is_none(), "{r}");
    }
    let (status, r) = aliyun(s, "Action=CreateKvNamespace&Namespace=ans");
    assert_eq!(status, 200, "{r}");
    let (status, r) = aliyun(s, "Action=PutKv&Namespace=ans&Key=a1&Value=from%20aliyun");
    assert_eq!(status, 200, "{r}");
    let (status, r) = huawei(
        s,
        "create-table",
        doc! {
            "table_name": "files",
            "primary_key_schema": {
                "shard_key_fields": [{"name": "owner"}],
                "sort_key_fields": [{"name": "filename"}],
            },
            "global_secondary_index_schema": [
                {"index_name": "by_name", "shard_key_fields": [{"name": "filename"}],
                 "sort_key_fields": [{"name": "owner"}], "abstract_fields": ["size"]},
            ],
        },
    );
    assert_eq!(status, 200, "{r}");
    for (owner, name, size) in [("alice", "a.txt", 7), ("bob", "b.txt", 5)] {
        let (status, r) = huawei(
            s,
            "put-kv",
            doc! {"table_name": "files", "kv_doc": {"owner": owner, "filename": name, "size": size}},
        );
        assert_eq!(status, 200, "{r}");
    }
}

/// Reads the data set back through all three dialects.
fn check(s: &Server) {
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["short", "long"]}),
    );
    assert_eq!(r["Data"][0]["Value"], "lives an hour", "{r}");
    assert_eq!(r["Data"][1]["Value"], "forever", "{r}");
    let (status, r) = aliyun(s, "Action=GetKv&Namespace=ans&Key=a1");
    assert_eq!(
        (status, r["Value"].clone()),
        (200, json!("from aliyun")),
        "{r}"
    );
    let (status, r) = huawei(
        s,
        "get-kv",
        doc! {"table_name": "files", "primary_key": {"owner": "bob", "filename": "b.txt"}},
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r.get_document("kv_doc")
            .and_then(|d| d.get_i32("size"))
            .ok(),
        Some(5)
    );
    // The global secondary index came along (or was rebuilt): a scan over it finds both.
    let (status, r) = huawei(
        s,
        "scan-kv",
        doc! {"table_name": "files", "hint_index_name": "by_name"},
    );
    assert_eq!(status, 200, "{r}");
    let names: Vec<String> = r
        .get_array("returned_kv_items")
        .expect("items")
        .iter()
        .filter_map(|i| {
            i.as_document()?
                .get_document("kv_doc")
                .ok()?
                .get_str("filename")
                .ok()
                .map(String::from)
        })
        .collect();
    assert_eq!(names, ["a.txt", "b.txt"], "{r}");
}

fn advance(s: &Server, seconds: u64) {
    let r = agent()
        .post(&s.url("/_kvmux/clock/advance"))
        .send_json(json!({"seconds": seconds}))
        .expect("advance");
    assert_eq!(r.status(), 200);
}

fn kvmux(args: &[&str], config: &std::path::Path, stdin: Option<&[u8]>) -> (bool, Vec<u8>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("KVMUX_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kvmux");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(input) = stdin {
        pipe.write_all(input).expect("write stdin");
    }
    drop(pipe);
    let out = child.wait_with_output().expect("kvmux");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn without_header(dump: &[u8]) -> Vec<String> {
    let text = String::from_utf8(dump.to_vec()).expect("utf-8 dump");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    assert!(lines[0].contains("\"type\":\"header\""), "{}", lines[0]);
    lines.remove(0);
    lines
}

#[test]
fn export_import_round_trip_across_all_dialects_keeps_ttls() {
    let mut source = Server::start(AUTH_OFF);
    fill(&source);
    check(&source);

    let mut online = agent()
        .get(&source.url("/_kvmux/snapshot"))
        .call()
        .expect("snapshot");
    assert_eq!(online.status(), 200);
    let online = online.body_mut().read_to_vec().expect("body");
    let online_lines = without_header(&online);
    let items = online_lines
        .iter()
        .filter(|l| l.contains("\"type\":\"item\""))
        .count();
    // 2 tencent + 1 aliyun + 2 huawei documents + 2 huawei index entries.
    assert_eq!(items, 7, "{}", String::from_utf8_lossy(&online));
    assert!(online_lines
        .iter()
        .any(|l| l.contains("\"value\":\"lives an hour\"") && l.contains("\"expires_at\":")));

    // Offline export of the stopped gateway's data says the same.
    assert!(source.terminate().success());
    let (ok, exported, stderr) = kvmux(&["export"], &source.config, None);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("exported"), "{stderr}");
    assert_eq!(without_header(&exported), online_lines);

    // Import into a fresh data dir from stdin, then serve it.
    let target_dir = tempfile::tempdir().expect("tmp");
    let data = target_dir.path().join("data");
    let config = target_dir.path().join("import.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", data.display())).expect("config");
    let (ok, _, stderr) = kvmux(&["import"], &config, Some(&exported));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("imported"), "{stderr}");
    let mut target = Server::with_dir(target_dir.path(), AUTH_OFF);
    check(&target);
    // The TTL came along: an hour later the short-lived item is gone and the other is not.
    advance(&target, 3601);
    let r = target.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["short", "long"]}),
    );
    assert_eq!(r["Data"][0]["Value"], "", "{r}");
    assert_eq!(r["Data"][1]["Value"], "forever", "{r}");
    target.terminate();

    // A bad dump is refused with its line number and a non-zero exit.
    let (ok, _, stderr) = kvmux(&["import"], &config, Some(b"{\"type\":\"item\"}\n"));
    assert!(!ok);
    assert!(stderr.contains("line 1"), "{stderr}");
}

#[test]
fn seed_files_load_at_start_up_once() {
    let source = Server::start(AUTH_OFF);
    fill(&source);
    let mut dump = agent()
        .get(&source.url("/_kvmux/snapshot"))
        .call()
        .expect("snapshot");
    let dump = dump.body_mut().read_to_vec().expect("body");

    let dir = tempfile::tempdir().expect("tmp");
    let seeds = dir.path().join("seeds");
    std::fs::create_dir(&seeds).expect("seed dir");
    std::fs::write(seeds.join("10-all.jsonl"), &dump).expect("seed");
    // A hand-written seed: readable keys and values, no ids from any real engine.
    std::fs::write(
        seeds.join("20-hand.jsonl"),
        concat!(
            "{\"type\":\"container\",\"id\":1,\"account\":\"dev\",\"scope\":\"tencent/z\",\"name\":\"handmade\",\"kind\":\"flat\",\"attrs\":{}}\n",
            "{\"type\":\"item\",\"container\":1,\"key\":\"hello\",\"value\":\"world\"}\n",
        ),
    )
    .expect("seed");
    std::fs::write(seeds.join("ignored.txt"), "not a seed").expect("other file");
    let extra = format!("seed_dir = \"{}\"\n{AUTH_OFF}", seeds.display());
    let mut seeded = Server::with_dir(dir.path(), &extra);
    check(&seeded);
    let r = seeded.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "handmade", "Keys": ["hello"]}),
    );
    assert_eq!(r["Data"][0]["Value"], "world", "{r}");

    // What the application changes survives a restart: seeds fill only containers they create.
    let r = seeded.tencent(
        "EdgeKVPut",
        json!({"ZoneId": "z", "Namespace": "ns", "Key": "long", "Value": "changed"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    assert!(seeded.terminate().success());
    seeded.restart();
    let r = seeded.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["long"]}),
    );
    assert_eq!(r["Data"][0]["Value"], "changed", "{r}");
    seeded.terminate();

    // A broken seed stops the start-up with a message naming the file and line.
    std::fs::write(
        seeds.join("30-broken.jsonl"),
        "{\"type\":\"item\",\"container\":5,\"key\":\"k\",\"value\":\"v\"}\n",
    )
    .expect("seed");
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .args(["serve", "--config"])
        .arg(dir.path().join("kvmux.toml"))
        .output()
        .expect("kvmux");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("30-broken.jsonl") && stderr.contains("line 1"),
        "{stderr}"
    );
}
