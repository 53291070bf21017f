//! Snapshots hold Huawei documents as readable MongoDB extended JSON (canonical, so every BSON
//! type comes back exactly) instead of BSON bytes in a string full of `\u0000`; import reads
//! that and the format-1 form older gateways wrote. Through the real binary: written and read
//! through the Huawei API, moved with `GET`/`POST /_kvmux/snapshot`.

mod common;

use base64::Engine as _;
use bson::{doc, Binary, Document};
use common::{agent, Server, AUTH_OFF};
use kv_huawei::extjson::ExtJson;
use serde_json::{json, Value};

fn huawei(s: &Server, op: &str, body: Document) -> (u16, Document) {
    s.huawei("shop", op, body)
}

/// A document with a field of every type the issue names, in a deliberate (unsorted) order.
fn sample() -> Document {
    doc! {
        "owner": "ann",
        "i32": 7_i32,
        "i64": 1_i64 << 40,
        "small_i64": 3_i64,
        "dbl": 1.5,
        "whole_dbl": 2.0,
        "bin": Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0, 1, 2, 255] },
        "when": bson::DateTime::from_millis(1_700_000_000_123),
        "tags": ["a", 1_i32],
    }
}

fn fill(s: &Server) {
    let (status, r) = huawei(
        s,
        "create-table",
        doc! {
            "table_name": "docs",
            "primary_key_schema": {"shard_key_fields": [{"name": "owner"}]},
        },
    );
    assert_eq!(status, 200, "{r}");
    let (status, r) = huawei(s, "put-kv", doc! {"table_name": "docs", "kv_doc": sample()});
    assert_eq!(status, 200, "{r}");
    // A plain document, whose BSON bytes happen to be UTF-8.
    let (status, r) = huawei(s, "put-kv", doc! {"table_name": "docs", "kv_doc": plain()});
    assert_eq!(status, 200, "{r}");
}

fn plain() -> Document {
    doc! {"owner": "bob", "n": 5_i32, "note": "x"}
}

/// The document read back through the Huawei API equals the one written: every field, type and
/// the field order.
fn check(s: &Server) {
    let (status, r) = huawei(
        s,
        "get-kv",
        doc! {"table_name": "docs", "primary_key": {"owner": "ann"}},
    );
    assert_eq!(status, 200, "{r}");
    let got = r.get_document("kv_doc").expect("kv_doc").clone();
    assert_eq!(got, sample());
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        sample().keys().collect::<Vec<_>>()
    );
    let (status, r) = huawei(
        s,
        "get-kv",
        doc! {"table_name": "docs", "primary_key": {"owner": "bob"}},
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r.get_document("kv_doc").expect("kv_doc"), &plain());
}

fn snapshot(s: &Server) -> String {
    let mut r = agent()
        .get(&s.url("/_kvmux/snapshot"))
        .call()
        .expect("snapshot");
    assert_eq!(r.status(), 200);
    String::from_utf8(r.body_mut().read_to_vec().expect("body")).expect("utf-8 dump")
}

fn import(s: &Server, dump: &str) -> Value {
    let mut r = agent()
        .post(&s.url("/_kvmux/snapshot"))
        .header("Content-Type", "application/json")
        .config()
        .http_status_as_error(false)
        .build()
        .send(dump.as_bytes())
        .expect("import");
    let status = r.status().as_u16();
    let body: Value = r.body_mut().read_json().expect("json");
    assert_eq!(status, 200, "{body}");
    body
}

/// The item line of the `docs` table (the only document item whose value has an `owner`).
fn document_line(dump: &str) -> Value {
    let mut found = dump
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json line"))
        .filter(|l| l["type"] == "item" && l["document"]["owner"] == "ann");
    let line = found.next().expect("the document's line");
    assert!(found.next().is_none());
    line
}

#[test]
fn huawei_documents_export_as_extended_json_and_import_exactly() {
    let source = Server::start(AUTH_OFF);
    fill(&source);
    check(&source);
    let dump = snapshot(&source);
    assert!(!dump.contains("\\u0000"), "{dump}");
    assert!(
        dump.lines()
            .next()
            .is_some_and(|h| h.contains("\"format\":2")),
        "{dump}"
    );

    // The line is readable JSON naming each field with its type, in the document's order.
    let raw = dump
        .lines()
        .find(|l| l.contains("\"document\":"))
        .expect("a document line");
    assert!(
        raw.contains(r#""document":{"owner":"ann","i32":{"$numberInt":"7"},"i64":{"$numberLong":"1099511627776"}"#),
        "{raw}"
    );
    let line = document_line(&dump);
    let document = &line["document"];
    assert_eq!(document["i32"], json!({"$numberInt": "7"}));
    assert_eq!(document["i64"], json!({"$numberLong": "1099511627776"}));
    assert_eq!(document["small_i64"], json!({"$numberLong": "3"}));
    assert_eq!(document["dbl"], json!({"$numberDouble": "1.5"}));
    assert_eq!(document["whole_dbl"], json!({"$numberDouble": "2.0"}));
    assert_eq!(
        document["bin"],
        json!({"$binary": {"base64": "AAEC/w==", "subType": "00"}})
    );
    assert_eq!(
        document["when"],
        json!({"$date": {"$numberLong": "1700000000123"}})
    );
    assert_eq!(document["tags"], json!(["a", {"$numberInt": "1"}]));
    assert!(
        line.get("value").is_none() && line.get("value_b64").is_none(),
        "{line}"
    );

    // Into a fresh gateway, read back through the Huawei API: equal, types and order included.
    let target = Server::start(AUTH_OFF);
    let imported = import(&target, &dump);
    assert!(
        imported["imported"]["items"].as_u64() >= Some(1),
        "{imported}"
    );
    check(&target);
    // ... and exported again, the same line.
    assert_eq!(document_line(&snapshot(&target))["document"], *document);

    // A format-1 snapshot, as older gateways wrote it (the BSON bytes as a string when they are
    // UTF-8, full of \u0000, else base64), still imports.
    let old: Vec<String> = dump
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("json line");
            if v["type"] == "header" {
                v["format"] = json!(1);
            }
            if v.as_object_mut()
                .and_then(|o| o.remove("document"))
                .is_some()
            {
                // Read again in field order (serde_json::Value sorts objects).
                let ExtJson::Object(fields) = serde_json::from_str::<ExtJson>(l).expect("line")
                else {
                    panic!("not an object: {l}")
                };
                let (_, doc) = fields
                    .into_iter()
                    .find(|(k, _)| k == "document")
                    .expect("document");
                let bytes = kv_huawei::extjson::document_bytes(doc).expect("bson");
                match String::from_utf8(bytes) {
                    Ok(text) => v["value"] = json!(text),
                    Err(e) => {
                        v["value_b64"] =
                            json!(base64::engine::general_purpose::STANDARD.encode(e.into_bytes()))
                    }
                }
            }
            v.to_string()
        })
        .collect();
    let old = old.join("\n") + "\n";
    assert!(!old.contains("\"document\":"));
    assert!(
        old.contains("\\u0000"),
        "the text form of a format-1 BSON value: {old}"
    );
    let legacy = Server::start(AUTH_OFF);
    import(&legacy, &old);
    check(&legacy);
}
