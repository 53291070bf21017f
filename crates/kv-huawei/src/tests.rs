//! Dialect-level tests: requests through `serve()` against a real engine on a temp redb file.

use std::sync::Arc;

use bson::{doc, Bson, Document};
use bytes::Bytes;
use http::Request;
use kv_dialect::testing::{self, Setup};
use kv_dialect::{Answer, AuthMode, Dialect, RequestInfo};

use super::*;

/// The dialect over a fresh engine, with the Huawei request helpers below.
struct Harness(testing::Harness<HuaweiDialect>);

impl std::ops::Deref for Harness {
    type Target = testing::Harness<HuaweiDialect>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

fn harness_with(mode: AuthMode, options: serde_json::Value) -> Harness {
    Harness(
        Setup::new(&[("HWkvmuxdev", "kvmuxdevsecret", "dev")])
            .auth_mode(mode)
            .options(options)
            .build(HuaweiDialect::new),
    )
}

fn harness() -> Harness {
    harness_with(AuthMode::Off, serde_json::Value::Null)
}

struct Reply {
    status: u16,
    doc: Document,
    info: RequestInfo,
    request_id: String,
}

impl Reply {
    fn code(&self) -> &str {
        self.doc.get_str("error_code").unwrap_or("")
    }
}

impl Harness {
    async fn send_raw(&self, request: Request<Bytes>) -> Reply {
        let Answer { response, info } = self.dialect.serve_request(request).await;
        assert_eq!(response.headers()["content-type"], "application/bson");
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(uuid::Uuid::parse_str(&request_id).is_ok());
        assert_eq!(info.request_id, request_id);
        let status = response.status().as_u16();
        let doc = kv_doc::decode_document(response.body()).unwrap();
        Reply {
            status,
            doc,
            info,
            request_id,
        }
    }

    /// An unsigned request to store `mystore` (auth is off in most tests).
    async fn call(&self, op: &str, body: Document) -> Reply {
        self.call_store(Some("mystore"), op, body).await
    }

    async fn call_store(&self, store: Option<&str>, op: &str, body: Document) -> Reply {
        let host = match store {
            Some(s) => format!("{s}.127.0.0.1:9090"),
            None => "127.0.0.1:9090".into(),
        };
        let req = Request::post(format!("http://{host}/v1/{op}"))
            .header("host", host)
            .header("content-type", "application/bson")
            .body(Bytes::from(body.to_vec().unwrap()))
            .unwrap();
        self.send_raw(req).await
    }

    async fn ok(&self, op: &str, body: Document) -> Document {
        let r = self.call(op, body).await;
        assert_eq!(r.status, 200, "{op}: {}", r.doc);
        r.doc
    }
}

fn files_table() -> Document {
    doc! {
        "table_name": "files",
        "primary_key_schema": {
            "shard_key_fields": [{"name": "owner"}],
            "sort_key_fields": [{"name": "filename"}],
        },
        "local_secondary_index_schema": [
            {"index_name": "by_size", "sort_key_fields": [{"name": "size"}], "abstract_fields": ["color"]},
        ],
        "global_secondary_index_schema": [
            {"index_name": "g_by_name", "shard_key_fields": [{"name": "filename"}],
             "sort_key_fields": [{"name": "owner"}], "abstract_fields": ["size"]},
        ],
    }
}

async fn with_files(h: &Harness) {
    h.ok("create-table", files_table()).await;
    for (owner, name, size) in [
        ("alice", "a.txt", 7),
        ("alice", "b.txt", 3),
        ("bob", "a.txt", 5),
        ("alice", "c.txt", 9),
    ] {
        h.ok(
            "put-kv",
            doc! {"table_name": "files", "kv_doc": {"owner": owner, "filename": name, "size": size, "color": "red"}},
        )
        .await;
    }
}

fn owners_files(d: &Document) -> Vec<(String, String)> {
    d.get_array("returned_kv_items")
        .unwrap()
        .iter()
        .map(|i| {
            let kv = i.as_document().unwrap().get_document("kv_doc").unwrap();
            (
                kv.get_str("owner").unwrap().into(),
                kv.get_str("filename").unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn table_lifecycle_and_store_listing() {
    let h = harness();
    let created = h.ok("create-table", files_table()).await;
    assert_eq!(created.get_str("table_name").unwrap(), "files");
    let again = h.call("create-table", files_table()).await;
    assert_eq!((again.status, again.code()), (409, "KVS.00001020"));

    let stores = h.call_store(None, "list-store", doc! {}).await;
    assert_eq!(
        stores.doc.get_array("stores").unwrap(),
        &vec![Bson::String("mystore".into())]
    );
    assert!(!stores.doc.contains_key("cursor_name"));

    let d = h.ok("describe-table", doc! {"table_name": "files"}).await;
    let rti = d.get_document("run_time_info").unwrap();
    assert_eq!(
        rti.get_document("table_info")
            .unwrap()
            .get_str("table_status")
            .unwrap(),
        "active"
    );
    assert_eq!(
        rti.get_array("local_secondary_index_infos").unwrap().len(),
        1
    );
    assert_eq!(
        d.get_array("global_secondary_index_schema").unwrap().len(),
        1
    );

    let mut t2 = files_table();
    t2.insert("table_name", "second");
    t2.remove("local_secondary_index_schema");
    t2.remove("global_secondary_index_schema");
    h.ok("create-table", t2).await;
    let page = h.ok("list-table", doc! {"limit": 1}).await;
    assert_eq!(
        page.get_array("table_names").unwrap(),
        &vec![Bson::String("files".into())]
    );
    assert_eq!(page.get_str("cursor_name").unwrap(), "files");
    let rest = h.ok("list-table", doc! {"cursor_name": "files"}).await;
    assert_eq!(
        rest.get_array("table_names").unwrap(),
        &vec![Bson::String("second".into())]
    );
    assert!(!rest.contains_key("cursor_name"));

    h.ok("delete-table", doc! {"table_name": "second"}).await;
    let gone = h
        .call("describe-table", doc! {"table_name": "second"})
        .await;
    assert_eq!((gone.status, gone.code()), (404, "KVS.00001015"));
    let no_store = h
        .call_store(Some("otherstore"), "list-table", doc! {})
        .await;
    assert_eq!((no_store.status, no_store.code()), (404, "KVS.00001014"));
}

#[tokio::test]
async fn create_table_validation() {
    let h = harness();
    let mut bad_name = files_table();
    bad_name.insert("table_name", "x");
    assert_eq!(
        h.call("create-table", bad_name).await.code(),
        "KVS.00001001"
    );
    let mut no_pk = files_table();
    no_pk.remove("primary_key_schema");
    assert_eq!(h.call("create-table", no_pk).await.code(), "KVS.00005012");
    let mut lsi_same = files_table();
    lsi_same.insert(
        "local_secondary_index_schema",
        vec![Bson::Document(
            doc! {"index_name": "dup", "sort_key_fields": [{"name": "filename"}]},
        )],
    );
    assert_eq!(
        h.call("create-table", lsi_same).await.code(),
        "KVS.00005013"
    );
    let mut too_many = files_table();
    let six: Vec<Bson> = (0..6)
        .map(|i| Bson::Document(doc! {"index_name": format!("lsi{i}"), "sort_key_fields": [{"name": format!("f{i}")}]}))
        .collect();
    too_many.insert("local_secondary_index_schema", six);
    assert_eq!(
        h.call("create-table", too_many).await.code(),
        "KVS.00005010"
    );
    let mut gsi_same = files_table();
    gsi_same.insert(
        "global_secondary_index_schema",
        vec![Bson::Document(
            doc! {"index_name": "gs", "shard_key_fields": [{"name": "owner"}]},
        )],
    );
    assert_eq!(
        h.call("create-table", gsi_same).await.code(),
        "KVS.00005014"
    );
    let bad_store = h
        .call_store(Some("Bad_Store"), "create-table", files_table())
        .await;
    assert_eq!(bad_store.code(), "KVS.00001001");
}

#[tokio::test]
async fn put_get_update_delete_with_conditions() {
    let h = harness();
    with_files(&h).await;
    let got = h
        .ok(
            "get-kv",
            doc! {"table_name": "files", "primary_key": {"owner": "alice", "filename": "a.txt"}},
        )
        .await;
    assert_eq!(
        got.get_document("kv_doc").unwrap(),
        &doc! {"owner": "alice", "filename": "a.txt", "size": 7, "color": "red"}
    );
    // Numbers address keys by value: int64 and double spell the same key as int32.
    h.ok(
        "create-table",
        doc! {"table_name": "nums", "primary_key_schema": {"shard_key_fields": [{"name": "id"}]}},
    )
    .await;
    h.ok(
        "put-kv",
        doc! {"table_name": "nums", "kv_doc": {"id": 9, "v": "int32"}},
    )
    .await;
    let by_double = h
        .ok(
            "get-kv",
            doc! {"table_name": "nums", "primary_key": {"id": 9.0}},
        )
        .await;
    assert_eq!(
        by_double
            .get_document("kv_doc")
            .unwrap()
            .get_str("v")
            .unwrap(),
        "int32"
    );
    h.ok(
        "put-kv",
        doc! {"table_name": "nums", "kv_doc": {"id": 9i64, "v": "int64"}},
    )
    .await;
    let by_int = h
        .ok(
            "get-kv",
            doc! {"table_name": "nums", "primary_key": {"id": 9}},
        )
        .await;
    assert_eq!(
        by_int.get_document("kv_doc").unwrap(),
        &doc! {"id": 9i64, "v": "int64"}
    );

    let pk = doc! {"owner": "alice", "filename": "a.txt"};
    let cond_false =
        doc! {"single_field_expression": {"field": "size", "func": "$gt", "value": {"": 100}}};
    let r = h
        .call("update-kv", doc! {"table_name": "files", "primary_key": pk.clone(), "condition_expression": cond_false.clone(), "update_fields": {"set": {"color": "blue"}}})
        .await;
    assert_eq!((r.status, r.code()), (400, "KVS.00005017"));
    assert_eq!(r.info.code.as_deref(), Some("KVS.00005017"));
    assert_eq!(r.doc.get_str("request_id").unwrap(), r.request_id);

    h.ok(
        "update-kv",
        doc! {"table_name": "files", "primary_key": pk.clone(),
              "condition_expression": {"single_field_expression": {"field": "size", "func": "$eq", "value": {"size": 7.0}}},
              "update_fields": {"set": {"color": "blue", "tags": ["x"]}, "add": {"size": 1}, "insert": {"tags": "y"}}},
    )
    .await;
    let got = h
        .ok(
            "get-kv",
            doc! {"table_name": "files", "primary_key": pk.clone()},
        )
        .await;
    assert_eq!(
        got.get_document("kv_doc").unwrap(),
        &doc! {"owner": "alice", "filename": "a.txt", "size": 8, "color": "blue", "tags": ["x", "y"]}
    );
    let sort_change = h
        .call("update-kv", doc! {"table_name": "files", "primary_key": pk.clone(), "update_fields": {"set": {"filename": "z"}}})
        .await;
    assert_eq!(sort_change.code(), "KVS.00001001");
    let bad_insert = h
        .call("update-kv", doc! {"table_name": "files", "primary_key": pk.clone(), "update_fields": {"insert": {"color": 1}}})
        .await;
    assert_eq!(bad_insert.code(), "KVS.00001001");
    let bad_delete = h
        .call("update-kv", doc! {"table_name": "files", "primary_key": pk.clone(), "update_fields": {"delete": {"tags": "nope"}}})
        .await;
    assert_eq!(bad_delete.code(), "KVS.00001001");
    let missing = h
        .call("update-kv", doc! {"table_name": "files", "primary_key": {"owner": "zed", "filename": "q"}, "update_fields": {"set": {"a": 1}}})
        .await;
    assert_eq!((missing.status, missing.code()), (404, "KVS.00001016"));
    h.ok(
        "update-kv",
        doc! {"table_name": "files", "primary_key": {"owner": "zed", "filename": "q"}, "update_fields": {"upsert": {"a": 1}}},
    )
    .await;
    let upserted = h
        .ok(
            "get-kv",
            doc! {"table_name": "files", "primary_key": {"owner": "zed", "filename": "q"}},
        )
        .await;
    assert_eq!(
        upserted.get_document("kv_doc").unwrap(),
        &doc! {"owner": "zed", "filename": "q", "a": 1}
    );

    // put with a not-exists condition only creates.
    let not_exist = doc! {"single_kv_expression": {"func": "not_exist"}};
    let dup = h
        .call("put-kv", doc! {"table_name": "files", "kv_doc": {"owner": "alice", "filename": "a.txt"}, "condition_expression": not_exist.clone()})
        .await;
    assert_eq!(dup.code(), "KVS.00005017");
    h.ok("put-kv", doc! {"table_name": "files", "kv_doc": {"owner": "new", "filename": "n"}, "condition_expression": not_exist}).await;

    let r = h.call("delete-kv", doc! {"table_name": "files", "primary_key": pk.clone(), "condition_expression": cond_false}).await;
    assert_eq!(r.code(), "KVS.00005017");
    h.ok(
        "delete-kv",
        doc! {"table_name": "files", "primary_key": pk.clone()},
    )
    .await;
    let gone = h
        .call("get-kv", doc! {"table_name": "files", "primary_key": pk})
        .await;
    assert_eq!((gone.status, gone.code()), (404, "KVS.00001016"));
    let bad_cond = h
        .call("delete-kv", doc! {"table_name": "files", "primary_key": {"owner": "bob", "filename": "a.txt"},
              "condition_expression": {"single_field_expression": {"field": "size", "func": "$near", "value": {"": 1}}}})
        .await;
    assert_eq!(bad_cond.code(), "KVS.00005016");
}

#[tokio::test]
async fn scans_page_filter_count_and_use_indexes() {
    let h = harness();
    with_files(&h).await;
    let all = h.ok("scan-kv", doc! {"table_name": "files"}).await;
    assert_eq!(
        owners_files(&all),
        vec![
            ("alice".into(), "a.txt".into()),
            ("alice".into(), "b.txt".into()),
            ("alice".into(), "c.txt".into()),
            ("bob".into(), "a.txt".into())
        ]
    );
    assert!(!all.contains_key("cursor_key"));
    assert_eq!(all.get_i32("returned_count").unwrap(), 4);

    let p1 = h
        .ok("scan-kv", doc! {"table_name": "files", "limit": 2})
        .await;
    assert_eq!(owners_files(&p1).len(), 2);
    let cursor = p1.get_document("cursor_key").unwrap().clone();
    assert_eq!(cursor, doc! {"owner": "alice", "filename": "c.txt"});
    let p2 = h
        .ok(
            "scan-kv",
            doc! {"table_name": "files", "limit": 2, "start_key": cursor},
        )
        .await;
    assert_eq!(
        owners_files(&p2),
        vec![
            ("alice".into(), "c.txt".into()),
            ("bob".into(), "a.txt".into())
        ]
    );
    assert!(!p2.contains_key("cursor_key"));

    let ranged = h
        .ok("scan-kv", doc! {"table_name": "files", "start_key": {"owner": "alice", "filename": "b.txt"}, "end_key": {"owner": "bob"}})
        .await;
    assert_eq!(
        owners_files(&ranged),
        vec![
            ("alice".into(), "b.txt".into()),
            ("alice".into(), "c.txt".into())
        ]
    );

    let filtered = h
        .ok("scan-kv", doc! {"table_name": "files", "filter_expression": {"single_field_expression": {"field": "size", "func": "$gte", "value": {"": 7}}}})
        .await;
    assert_eq!(
        owners_files(&filtered),
        vec![
            ("alice".into(), "a.txt".into()),
            ("alice".into(), "c.txt".into())
        ]
    );
    assert_eq!(filtered.get_i32("filtered_count").unwrap(), 2);

    let counted = h
        .ok(
            "scan-kv",
            doc! {"table_name": "files", "return_count_only": true, "limit": 2},
        )
        .await;
    assert_eq!(counted.get_i32("returned_count").unwrap(), 4);
    assert!(counted.get_array("returned_kv_items").unwrap().is_empty());

    let skey = h
        .ok("scan-skey-kv", doc! {"table_name": "files", "shard_key": {"owner": "alice"}, "start_sort_key": {"filename": "b.txt"}, "limit": 1})
        .await;
    assert_eq!(owners_files(&skey), vec![("alice".into(), "b.txt".into())]);
    assert_eq!(
        skey.get_document("cursor_sort_key").unwrap(),
        &doc! {"filename": "c.txt"}
    );
    let skey_end = h
        .ok("scan-skey-kv", doc! {"table_name": "files", "shard_key": {"owner": "alice"}, "end_sort_key": {"filename": "c.txt"}})
        .await;
    assert_eq!(owners_files(&skey_end).len(), 2);
    assert!(!skey_end.contains_key("cursor_sort_key"));

    // LSI by size: alice's files ordered by size, projected to key + size + abstract fields.
    let by_size = h
        .ok("scan-skey-kv", doc! {"table_name": "files", "hint_index_name": "by_size", "shard_key": {"owner": "alice"}})
        .await;
    let sizes: Vec<i32> = by_size
        .get_array("returned_kv_items")
        .unwrap()
        .iter()
        .map(|i| {
            i.as_document()
                .unwrap()
                .get_document("kv_doc")
                .unwrap()
                .get_i32("size")
                .unwrap()
        })
        .collect();
    assert_eq!(sizes, vec![3, 7, 9]);
    // GSI by filename: both owners of a.txt.
    let by_name = h
        .ok("scan-skey-kv", doc! {"table_name": "files", "hint_index_name": "g_by_name", "shard_key": {"filename": "a.txt"}})
        .await;
    assert_eq!(
        owners_files(&by_name),
        vec![
            ("alice".into(), "a.txt".into()),
            ("bob".into(), "a.txt".into())
        ]
    );
    // Index entries follow updates and deletes in the same transaction.
    h.ok("update-kv", doc! {"table_name": "files", "primary_key": {"owner": "alice", "filename": "c.txt"}, "update_fields": {"set": {"size": 1}}}).await;
    h.ok(
        "delete-kv",
        doc! {"table_name": "files", "primary_key": {"owner": "alice", "filename": "b.txt"}},
    )
    .await;
    let by_size = h
        .ok("scan-kv", doc! {"table_name": "files", "hint_index_name": "by_size", "start_key": {"owner": "alice"}, "end_key": {"owner": "b"}})
        .await;
    assert_eq!(
        owners_files(&by_size),
        vec![
            ("alice".into(), "c.txt".into()),
            ("alice".into(), "a.txt".into())
        ]
    );
    let unknown = h
        .call(
            "scan-kv",
            doc! {"table_name": "files", "hint_index_name": "nope"},
        )
        .await;
    assert_eq!(unknown.code(), "KVS.00001001");
    let over = h
        .call("scan-kv", doc! {"table_name": "files", "limit": 101})
        .await;
    assert_eq!(over.code(), "KVS.00001001");

    let sample = h
        .ok(
            "scan-kv",
            doc! {"table_name": "files", "sample_segments_count": 2},
        )
        .await;
    let segs = sample.get_array("returned_segment_items").unwrap();
    assert_eq!(segs.len(), 2);
    let first = segs[0].as_document().unwrap();
    assert_eq!(
        first.get_document("segment_min_key").unwrap().get("owner"),
        Some(&Bson::MinKey)
    );
}

#[tokio::test]
async fn batches() {
    let h = harness();
    with_files(&h).await;
    let r = h
        .ok(
            "batch-write-kv",
            doc! {"table_opers": [{"table_name": "files", "kv_opers": [
                {"put_kv": {"oper_id": 1, "kv_doc": {"owner": "carol", "filename": "x", "size": 1}}},
                {"delete_kv": {"oper_id": 2, "primary_key": {"owner": "bob", "filename": "a.txt"}}},
                {"update_kv": {"oper_id": 3, "primary_key": {"owner": "alice", "filename": "a.txt"}, "update_fields": {"add": {"size": 10}}}},
                {"delete_kv": {"oper_id": 4, "primary_key": {"owner": "nobody", "filename": "x"}}},
            ]}]},
        )
        .await;
    let unprocessed = r.get_array("unprocessed_opers").unwrap();
    assert_eq!(unprocessed.len(), 1);
    let ids = unprocessed[0]
        .as_document()
        .unwrap()
        .get_document("kv_oper_ids")
        .unwrap();
    assert_eq!(
        ids.get_array("delete_kv_ids").unwrap(),
        &vec![Bson::Int64(4)]
    );

    let got = h
        .ok(
            "batch-get-kv",
            doc! {"batch_get_kv_opers": [{"table_name": "files", "get_kv_opers": [
                {"get_kv": {"oper_id": 1, "primary_key": {"owner": "carol", "filename": "x"}}},
                {"get_kv": {"oper_id": 2, "primary_key": {"owner": "bob", "filename": "a.txt"}}},
                {"get_kv": {"oper_id": 3, "primary_key": {"owner": "alice", "filename": "a.txt"}}},
            ]}]},
        )
        .await;
    let all = got.get_array("returned_kv_items_of_all").unwrap();
    let items = owners_files(all[0].as_document().unwrap());
    assert_eq!(
        items,
        vec![
            ("carol".into(), "x".into()),
            ("alice".into(), "a.txt".into())
        ]
    );

    let many: Vec<Bson> = (0..101)
        .map(|i| Bson::Document(doc! {"put_kv": {"oper_id": i, "kv_doc": {"owner": "m", "filename": format!("{i}")}}}))
        .collect();
    let over = h
        .call(
            "batch-write-kv",
            doc! {"table_opers": [{"table_name": "files", "kv_opers": many}]},
        )
        .await;
    assert_eq!(over.code(), "KVS.00005020");
}

#[tokio::test]
async fn ttl_expires_with_the_engine_clock() {
    let h = harness();
    h.ok(
        "create-table",
        doc! {"table_name": "sessions", "primary_key_schema": {"shard_key_fields": [{"name": "id"}]},
              "ttl_specification": {"enable": true, "expire_after_seconds": 60}},
    )
    .await;
    h.ok(
        "put-kv",
        doc! {"table_name": "sessions", "kv_doc": {"id": "s1"}},
    )
    .await;
    h.ok(
        "get-kv",
        doc! {"table_name": "sessions", "primary_key": {"id": "s1"}},
    )
    .await;
    h.clock.advance(61);
    let gone = h
        .call(
            "get-kv",
            doc! {"table_name": "sessions", "primary_key": {"id": "s1"}},
        )
        .await;
    assert_eq!(gone.code(), "KVS.00001016");
}

#[tokio::test]
async fn malformed_input_is_a_400_never_a_panic() {
    let h = harness();
    h.ok("create-table", files_table()).await;
    let raw = |body: &'static [u8]| {
        Request::post("/v1/put-kv")
            .header("host", "mystore.127.0.0.1:1")
            .body(Bytes::from_static(body))
            .unwrap()
    };
    for body in [
        &b"not bson"[..],
        b"\x05\x00\x00\x00\x01",
        b"\xff\xff\xff\x7f\x00",
    ] {
        let r = h.send_raw(raw(body)).await;
        assert_eq!((r.status, r.code()), (400, "KVS.00001006"));
    }
    let mut deep = doc! {"x": 1};
    for _ in 0..200 {
        deep = doc! {"n": deep};
    }
    let r = h
        .call(
            "put-kv",
            doc! {"table_name": "files", "kv_doc": {"owner": "a", "filename": "b", "deep": deep}},
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "KVS.00001006"));
    for body in [
        doc! {"table_name": 5, "kv_doc": {}},
        doc! {"table_name": "files"},
        doc! {"table_name": "files", "kv_doc": "x"},
        doc! {"table_name": "files", "kv_doc": {"owner": "a"}},
        doc! {"table_name": "files", "kv_doc": {"owner": "a", "filename": "b", "bad.name": 1}},
    ] {
        let r = h.call("put-kv", body.clone()).await;
        assert_eq!((r.status, r.code()), (400, "KVS.00001001"), "{body}");
    }
    let big = "x".repeat(600 * 1024);
    let r = h
        .call(
            "put-kv",
            doc! {"table_name": "files", "kv_doc": {"owner": "a", "filename": "b", "big": big}},
        )
        .await;
    assert_eq!(r.code(), "KVS.00005018");
    // rename-kv is served (from the 3.1.83 models); an empty body lacks its required fields.
    // An operation kvmux does not route is still "not implemented".
    let r = h.call("rename-kv", doc! {}).await;
    assert_eq!((r.status, r.code()), (400, "KVS.00001001"));
    let r = h.call("no-such-op", doc! {}).await;
    assert_eq!((r.status, r.code()), (501, "KVS.00000002"));
    let r = h
        .call(
            "get-kv",
            doc! {"table_name": "nosuch", "primary_key": {"a": 1}},
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "KVS.00001015"));
    let r = h
        .call_store(None, "check-health", doc! {"version": 1})
        .await;
    assert_eq!((r.status, r.doc.len()), (200, 0));
}

#[test]
fn an_absolute_form_target_must_name_the_host_header() {
    let parts = |uri: &str, host: Option<&str>| {
        let mut b = Request::post(uri);
        if let Some(h) = host {
            b = b.header("host", h);
        }
        b.body(()).unwrap().into_parts().0
    };
    for (uri, host) in [
        ("/v1/get-kv", Some("a.127.0.0.1:9")),
        ("http://a.127.0.0.1:9/v1/get-kv", Some("a.127.0.0.1:9")),
        ("http://A.127.0.0.1:9/v1/get-kv", Some("a.127.0.0.1:9")),
        ("http://a.localhost/v1/get-kv", Some("a.localhost:80")),
    ] {
        assert!(
            HuaweiDialect::check_target(&parts(uri, host)).is_ok(),
            "{uri} {host:?}"
        );
    }
    for (uri, host) in [
        ("http://b.127.0.0.1:9/v1/get-kv", Some("a.127.0.0.1:9")),
        ("http://a.127.0.0.1:10/v1/get-kv", Some("a.127.0.0.1:9")),
        ("http://a.127.0.0.1:9/v1/get-kv", None),
        ("http://a.127.0.0.1:9/v1/get-kv", Some("not a host")),
    ] {
        let e = HuaweiDialect::check_target(&parts(uri, host)).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code),
            (400, "KVS.00001001"),
            "{uri} {host:?}"
        );
    }
    // The store comes from the Host header even when a target names another.
    let h = harness_with(AuthMode::Off, serde_json::Value::Null);
    assert_eq!(
        h.dialect
            .store_name(&parts(
                "http://b.127.0.0.1:9/v1/get-kv",
                Some("a.127.0.0.1:9")
            ))
            .as_deref(),
        Some("a")
    );
}

#[test]
fn a_repeated_field_name_is_an_invalid_request_at_any_depth() {
    let field = |name: &str, value: bson::Bson| {
        let one = doc! { name: value }.to_vec().unwrap();
        one[4..one.len() - 1].to_vec()
    };
    let document = |elements: Vec<Vec<u8>>| {
        let body = elements.concat();
        let mut out = ((body.len() + 5) as i32).to_le_bytes().to_vec();
        out.extend(body);
        out.push(0);
        out
    };
    let top = document(vec![field("a", 1.into()), field("a", 2.into())]);
    let e = crate::decode_request(&top).unwrap_err();
    assert_eq!((e.status.as_u16(), e.code), (400, "KVS.00001006"));
    let inner = document(vec![field("x", 1.into()), field("x", 1.into())]);
    let mut nested = vec![0x03];
    nested.extend_from_slice(b"kv_doc\0");
    nested.extend_from_slice(&inner);
    let outer = document(vec![field("table_name", "t".into()), nested]);
    assert_eq!(
        crate::decode_request(&outer).unwrap_err().code,
        "KVS.00001006"
    );
    let fine = doc! {"a": 1, "b": {"a": 1}, "c": [1, 2]}.to_vec().unwrap();
    assert_eq!(crate::decode_request(&fine).unwrap().len(), 3);
    assert_eq!(
        crate::decode_request(b"junk").unwrap_err().code,
        "KVS.00001006"
    );
}

#[tokio::test]
async fn store_from_host_query_or_default() {
    let h = harness_with(
        AuthMode::Off,
        serde_json::json!({"default_store": "fallback"}),
    );
    let parts = |uri: &str, host: &str| {
        Request::post(uri)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    let d = &h.dialect;
    assert_eq!(
        d.store_name(&parts("http://s1.127.0.0.1:9/v1/get-kv", "s1.127.0.0.1:9"))
            .as_deref(),
        Some("s1")
    );
    assert_eq!(
        d.store_name(&parts("/v1/get-kv", "s2.localhost:9"))
            .as_deref(),
        Some("s2")
    );
    assert_eq!(
        d.store_name(&parts("/v1/get-kv?store_name=s3", "127.0.0.1:9"))
            .as_deref(),
        Some("s3")
    );
    assert_eq!(
        d.store_name(&parts("/v1/get-kv", "127.0.0.1:9")).as_deref(),
        Some("fallback")
    );
    assert_eq!(
        d.store_name(&parts("/v1/get-kv", "localhost")).as_deref(),
        Some("fallback")
    );
    let none = harness();
    let r = none
        .call_store(
            None,
            "get-kv",
            doc! {"table_name": "t1", "primary_key": {"a": 1}},
        )
        .await;
    assert_eq!(r.code(), "KVS.00001001");
}

/// Signs a request the way the Python SDK does, with the current time.
fn signed(op: &str, host: &str, body: Document, ak: &str, sk: &str, date: &str) -> Request<Bytes> {
    let body = Bytes::from(body.to_vec().unwrap());
    let mut req = Request::post(format!("/v1/{op}"))
        .header("host", host)
        .header("content-type", "application/bson")
        .header("x-sdk-date", date)
        .body(body)
        .unwrap();
    let sr = auth::SignedRequest {
        method: "POST",
        path: req.uri().path(),
        query: None,
        headers: req.headers(),
        body: req.body(),
    };
    let signed_headers = vec!["content-type".into(), "host".into(), "x-sdk-date".into()];
    let value = auth::sign(
        &sr,
        auth::Algorithm::HmacSha256,
        ak,
        sk,
        signed_headers,
        date,
    );
    req.headers_mut()
        .insert("authorization", value.parse().unwrap());
    req
}

fn sdk_date(offset: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset);
    t.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))
    .unwrap()
}

#[tokio::test]
async fn enforced_signatures() {
    let h = harness_with(AuthMode::Enforce, serde_json::Value::Null);
    let ok = h
        .send_raw(signed(
            "check-health",
            "127.0.0.1:9",
            doc! {},
            "HWkvmuxdev",
            "kvmuxdevsecret",
            &sdk_date(0),
        ))
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.info.account.as_deref(), Some("dev"));
    let wrong = h
        .send_raw(signed(
            "check-health",
            "127.0.0.1:9",
            doc! {},
            "HWkvmuxdev",
            "nope",
            &sdk_date(0),
        ))
        .await;
    assert_eq!((wrong.status, wrong.code()), (401, "APIGW.0301"));
    let diag = wrong.info.signature.unwrap();
    assert_eq!(diag.reason, "signature mismatch");
    assert!(!diag.canonical_request.contains("kvmuxdevsecret"));
    let stale = h
        .send_raw(signed(
            "check-health",
            "127.0.0.1:9",
            doc! {},
            "HWkvmuxdev",
            "kvmuxdevsecret",
            &sdk_date(-20 * 60),
        ))
        .await;
    assert_eq!(stale.code(), "APIGW.0301");
    let unsigned = h.call_store(None, "check-health", doc! {}).await;
    assert_eq!((unsigned.status, unsigned.code()), (401, "APIGW.0301"));
    let unknown = h
        .send_raw(signed(
            "check-health",
            "127.0.0.1:9",
            doc! {},
            "AKnobody",
            "kvmuxdevsecret",
            &sdk_date(0),
        ))
        .await;
    assert_eq!(unknown.code(), "APIGW.0301");
}

#[tokio::test]
async fn store_and_table_quotas() {
    let h = harness();
    for i in 0..25 {
        let r = h
            .call_store(Some(&format!("store{i}")), "create-table", files_table())
            .await;
        assert_eq!(r.status, 200, "{}", r.doc);
    }
    let r = h
        .call_store(Some("store25"), "create-table", files_table())
        .await;
    assert_eq!((r.status, r.code()), (400, "KVS.00001007"));
    let page = h.call_store(None, "list-store", doc! {"limit": 10}).await;
    assert_eq!(page.doc.get_array("stores").unwrap().len(), 10);
    assert!(page.doc.contains_key("cursor_name"));
}

#[test]
fn claims_are_disjoint_across_vendors() {
    let h = harness();
    for (vendor, expected) in [("huawei", true), ("tencent", false), ("aliyun", false)] {
        for v in auth::tests::load(vendor) {
            let (parts, _) = auth::tests::to_request(&v).into_parts();
            assert_eq!(
                h.dialect.classify(&parts).is_some(),
                expected,
                "{vendor} {}",
                v.name
            );
        }
    }
}

#[tokio::test]
async fn every_vector_is_served_by_its_operation() {
    // Auth is off here (the vectors' dates are in the past); this proves routing, store
    // extraction and body decoding accept every request the real SDK sent.
    let h = harness();
    for v in auth::tests::load("huawei").into_iter().filter(|v| v.valid) {
        let req = auth::tests::to_request(&v);
        let expected = router::route(req.uri().path()).unwrap();
        let r = h.send_raw(req).await;
        assert_eq!(r.info.operation, expected.name(), "{}", v.name);
        assert_ne!(r.status, 500, "{}: {}", v.name, r.doc);
        assert_ne!(r.code(), "KVS.00001006", "{}: {}", v.name, r.doc);
    }
}

#[test]
fn coverage_doc_lists_every_operation() {
    // | `operation` | status | notes |
    kv_testkit::assert_coverage_lists("huawei", 2, router::Operation::ALL.iter().map(|o| o.name()));
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    fn arb_bson() -> impl Strategy<Value = Bson> {
        let leaf = prop_oneof![
            any::<i32>().prop_map(Bson::Int32),
            any::<i64>().prop_map(Bson::Int64),
            any::<f64>().prop_map(Bson::Double),
            "[a-z$.]{0,6}".prop_map(Bson::String),
            any::<bool>().prop_map(Bson::Boolean),
            Just(Bson::Null),
            Just(Bson::MinKey),
            Just(Bson::MaxKey),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
                proptest::collection::vec(("[a-z_]{1,12}", inner), 0..4)
                    .prop_map(|kv| Bson::Document(kv.into_iter().collect())),
            ]
        })
    }

    /// A request document built from the operation's real field names with arbitrary values, so
    /// that the parser is exercised past the first type check.
    fn arb_request() -> impl Strategy<Value = Document> {
        let fields = prop_oneof![
            Just("table_name"),
            Just("kv_doc"),
            Just("primary_key"),
            Just("condition_expression"),
            Just("update_fields"),
            Just("limit"),
            Just("start_key"),
            Just("end_key"),
            Just("filter_expression"),
            Just("shard_key"),
            Just("hint_index_name"),
            Just("return_count_only"),
            Just("sample_segments_count"),
            Just("table_opers"),
            Just("batch_get_kv_opers"),
            Just("primary_key_schema"),
            Just("cursor_name"),
            Just("single_field_expression"),
            Just("expressions"),
            Just("func"),
            Just("value"),
        ];
        proptest::collection::vec((fields, arb_bson()), 0..6).prop_map(|kv| {
            let mut d: Document = kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            if !d.contains_key("table_name") {
                d.insert("table_name", "files");
            }
            d
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn arbitrary_requests_get_a_vendor_reply_never_a_500(
            op in proptest::sample::select(router::Operation::ALL.to_vec()),
            body in arb_request(),
            garbage in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let h = harness();
                h.ok("create-table", files_table()).await;
                let r = h.call(op.name(), body.clone()).await;
                prop_assert!(r.status < 500, "{}: {} -> {}", op.name(), body, r.doc);
                prop_assert!(r.status == 200 || r.code().starts_with("KVS."), "{}", r.doc);
                let raw = Request::post(format!("/v1/{}", op.name()))
                    .header("host", "mystore.127.0.0.1:1")
                    .body(Bytes::from(garbage.clone()))
                    .unwrap();
                let r = h.send_raw(raw).await;
                prop_assert!(r.status < 500, "{}: garbage -> {}", op.name(), r.doc);
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn a_scan_that_filters_out_500_documents_returns_a_cursor_and_no_items() {
    let h = harness();
    h.ok(
        "create-table",
        doc! {"table_name": "many", "primary_key_schema": {"shard_key_fields": [{"name": "id"}]}},
    )
    .await;
    let opers: Vec<Bson> = (0..100)
        .map(|i| {
            Bson::Document(doc! {"put_kv": {"oper_id": i, "kv_doc": {"id": i, "even": i % 2 == 0}}})
        })
        .collect();
    for chunk in 0..6 {
        let shifted: Vec<Bson> = opers
            .iter()
            .map(|o| {
                let mut o = o.as_document().unwrap().clone();
                let put = o.get_document_mut("put_kv").unwrap();
                let id = put.get_document("kv_doc").unwrap().get_i32("id").unwrap() + chunk * 100;
                put.insert("kv_doc", doc! {"id": id, "hit": id == 590});
                Bson::Document(o)
            })
            .collect();
        h.ok(
            "batch-write-kv",
            doc! {"table_opers": [{"table_name": "many", "kv_opers": shifted}]},
        )
        .await;
    }
    let filter =
        doc! {"single_field_expression": {"field": "hit", "func": "$eq", "value": {"": true}}};
    let first = h
        .ok(
            "scan-kv",
            doc! {"table_name": "many", "filter_expression": filter.clone()},
        )
        .await;
    assert_eq!(first.get_i32("returned_count").unwrap(), 0);
    assert_eq!(first.get_i32("filtered_count").unwrap(), 500);
    let cursor = first.get_document("cursor_key").unwrap().clone();
    assert_eq!(cursor, doc! {"id": 500});
    let second = h
        .ok(
            "scan-kv",
            doc! {"table_name": "many", "filter_expression": filter, "start_key": cursor},
        )
        .await;
    assert_eq!(second.get_i32("returned_count").unwrap(), 1);
    assert_eq!(second.get_i32("filtered_count").unwrap(), 99);
    assert!(!second.contains_key("cursor_key"));
}

#[tokio::test]
async fn table_quota_key_size_and_projection() {
    let h = harness();
    for i in 0..100 {
        let mut t = files_table();
        t.insert("table_name", format!("t{i:03}"));
        h.ok("create-table", t).await;
    }
    let mut t = files_table();
    t.insert("table_name", "t100");
    let r = h.call("create-table", t).await;
    assert_eq!((r.status, r.code()), (400, "KVS.00001008"));

    let long = "k".repeat(1100);
    let r = h
        .call(
            "put-kv",
            doc! {"table_name": "t000", "kv_doc": {"owner": long, "filename": "f"}},
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "KVS.00001004"));

    h.ok("put-kv", doc! {"table_name": "t000", "kv_doc": {"owner": "o", "filename": "f", "a": 1, "n": {"x": 2, "y": 3}}}).await;
    let got = h
        .ok("get-kv", doc! {"table_name": "t000", "primary_key": {"owner": "o", "filename": "f"}, "projection_fields": ["a", "n/y", "missing"]})
        .await;
    assert_eq!(
        got.get_document("kv_doc").unwrap(),
        &doc! {"a": 1, "n/y": 3}
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_are_not_lost() {
    let h = Arc::new(harness());
    h.ok("create-table", files_table()).await;
    h.ok(
        "put-kv",
        doc! {"table_name": "files", "kv_doc": {"owner": "c", "filename": "n", "size": 0}},
    )
    .await;
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                h.ok(
                    "update-kv",
                    doc! {"table_name": "files", "primary_key": {"owner": "c", "filename": "n"}, "update_fields": {"add": {"size": 1}}},
                )
                .await;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let got = h
        .ok(
            "get-kv",
            doc! {"table_name": "files", "primary_key": {"owner": "c", "filename": "n"}},
        )
        .await;
    assert_eq!(
        got.get_document("kv_doc").unwrap().get_i32("size").unwrap(),
        24
    );
    // The local index holds exactly one entry for the document, at its final size.
    let idx = h
        .ok(
            "scan-skey-kv",
            doc! {"table_name": "files", "hint_index_name": "by_size", "shard_key": {"owner": "c"}},
        )
        .await;
    let sizes: Vec<i32> = idx
        .get_array("returned_kv_items")
        .unwrap()
        .iter()
        .map(|i| {
            i.as_document()
                .unwrap()
                .get_document("kv_doc")
                .unwrap()
                .get_i32("size")
                .unwrap()
        })
        .collect();
    assert_eq!(sizes, vec![24]);
}

mod index_consistency {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Put {
            owner: u8,
            file: u8,
            size: Option<i32>,
        },
        Add {
            owner: u8,
            file: u8,
            delta: i32,
        },
        RemoveSize {
            owner: u8,
            file: u8,
        },
        Delete {
            owner: u8,
            file: u8,
        },
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        let o = 0u8..3;
        let f = 0u8..4;
        prop_oneof![
            (o.clone(), f.clone(), proptest::option::of(-3i32..3))
                .prop_map(|(owner, file, size)| Op::Put { owner, file, size }),
            (o.clone(), f.clone(), -2i32..3).prop_map(|(owner, file, delta)| Op::Add {
                owner,
                file,
                delta
            }),
            (o.clone(), f.clone()).prop_map(|(owner, file)| Op::RemoveSize { owner, file }),
            (o, f).prop_map(|(owner, file)| Op::Delete { owner, file }),
        ]
    }

    fn items(d: &Document) -> Vec<Document> {
        d.get_array("returned_kv_items")
            .unwrap()
            .iter()
            .map(|i| {
                i.as_document()
                    .unwrap()
                    .get_document("kv_doc")
                    .unwrap()
                    .clone()
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// After any sequence of writes, each index holds exactly the entries derived from the
        /// table's documents, in index order.
        #[test]
        fn indexes_always_match_the_table(ops in proptest::collection::vec(arb_op(), 1..25)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let h = harness();
                h.ok("create-table", files_table()).await;
                for op in &ops {
                    let pk = |o: &u8, f: &u8| doc! {"owner": format!("o{o}"), "filename": format!("f{f}")};
                    let (name, body) = match op {
                        Op::Put { owner, file, size } => {
                            let mut d = pk(owner, file);
                            if let Some(s) = size { d.insert("size", *s); }
                            d.insert("color", "c");
                            ("put-kv", doc! {"table_name": "files", "kv_doc": d})
                        }
                        Op::Add { owner, file, delta } => ("update-kv", doc! {"table_name": "files", "primary_key": pk(owner, file), "update_fields": {"add": {"size": *delta}}}),
                        Op::RemoveSize { owner, file } => ("update-kv", doc! {"table_name": "files", "primary_key": pk(owner, file), "update_fields": {"rmv": ["size"]}}),
                        Op::Delete { owner, file } => ("delete-kv", doc! {"table_name": "files", "primary_key": pk(owner, file)}),
                    };
                    let r = h.call(name, body).await;
                    prop_assert!(r.status == 200 || r.code() == "KVS.00001016", "{name}: {}", r.doc);
                }
                let table = items(&h.ok("scan-kv", doc! {"table_name": "files"}).await);
                let schema = kv_doc::KeySchema { shard_fields: vec!["owner".into()], sort_fields: vec!["filename".into()] };
                for (index, def) in [
                    ("by_size", kv_doc::IndexDef { name: "by_size".into(), shard_fields: vec!["owner".into()], sort_fields: vec!["size".into()], abstract_fields: vec!["color".into()] }),
                    ("g_by_name", kv_doc::IndexDef { name: "g_by_name".into(), shard_fields: vec!["filename".into()], sort_fields: vec!["owner".into()], abstract_fields: vec!["size".into()] }),
                ] {
                    let mut expected: Vec<(Vec<u8>, Document)> = table
                        .iter()
                        .filter_map(|d| def.entry(d, &schema).unwrap())
                        .collect();
                    expected.sort_by(|a, b| a.0.cmp(&b.0));
                    let expected: Vec<Document> = expected.into_iter().map(|(_, d)| d).collect();
                    let got = items(&h.ok("scan-kv", doc! {"table_name": "files", "hint_index_name": index}).await);
                    prop_assert_eq!(got, expected, "{}", index);
                }
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn log_mode_serves_but_records_the_refusal() {
    let h = harness_with(AuthMode::Log, serde_json::Value::Null);
    let r = h
        .send_raw(signed(
            "check-health",
            "127.0.0.1:9",
            doc! {},
            "HWkvmuxdev",
            "nope",
            &sdk_date(0),
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.info.account.as_deref(), Some("dev"));
    assert_eq!(r.info.signature.unwrap().reason, "signature mismatch");
    let good = h
        .send_raw(signed(
            "check-health",
            "127.0.0.1:9",
            doc! {},
            "HWkvmuxdev",
            "kvmuxdevsecret",
            &sdk_date(0),
        ))
        .await;
    assert_eq!((good.status, good.info.signature), (200, None));
}

/// An `UNSIGNED-PAYLOAD` request (as Go and Java clients can send) from peer `peer`.
fn unsigned_payload(body: Document, date: &str, peer: &str) -> Request<Bytes> {
    let mut req = Request::post("/v1/create-table")
        .header("host", "mystore.127.0.0.1:9")
        .header("content-type", "application/bson")
        .header("x-sdk-date", date)
        .header("x-sdk-content-sha256", "UNSIGNED-PAYLOAD")
        .body(Bytes::from(body.to_vec().unwrap()))
        .unwrap();
    let sr = auth::SignedRequest {
        method: "POST",
        path: req.uri().path(),
        query: None,
        headers: req.headers(),
        body: req.body(),
    };
    let signed_headers = vec![
        "content-type".into(),
        "host".into(),
        "x-sdk-content-sha256".into(),
        "x-sdk-date".into(),
    ];
    let value = auth::sign(
        &sr,
        auth::Algorithm::HmacSha256,
        "HWkvmuxdev",
        "kvmuxdevsecret",
        signed_headers,
        date,
    );
    req.headers_mut()
        .insert("authorization", value.parse().unwrap());
    req.extensions_mut()
        .insert(kv_dialect::PeerAddr(peer.parse().unwrap()));
    req
}

#[tokio::test]
async fn an_unsigned_payload_signature_is_bound_to_its_first_body() {
    let h = harness_with(AuthMode::Enforce, serde_json::Value::Null);
    let date = sdk_date(0);
    let table = |name: &str| {
        doc! {"table_name": name, "primary_key_schema": {"shard_key_fields": [{"name": "id"}]}}
    };
    let first = h
        .send_raw(unsigned_payload(table("first"), &date, "10.0.0.1:5000"))
        .await;
    assert_eq!(first.status, 200, "{}", first.doc);
    // The same signature with another body, from someone else: refused, nothing created.
    let other = h
        .send_raw(unsigned_payload(table("other"), &date, "10.0.0.2:6000"))
        .await;
    assert_eq!((other.status, other.code()), (401, "APIGW.0301"));
    let described = h
        .send_raw(signed(
            "describe-table",
            "mystore.127.0.0.1:9",
            doc! {"table_name": "other"},
            "HWkvmuxdev",
            "kvmuxdevsecret",
            &sdk_date(0),
        ))
        .await;
    assert_eq!((described.status, described.code()), (404, "KVS.00001015"));
    // An identical repeat passes authentication (and meets the existing table).
    let again = h
        .send_raw(unsigned_payload(table("first"), &date, "10.0.0.2:6000"))
        .await;
    assert_eq!((again.status, again.code()), (409, "KVS.00001020"));
}

// ------------------------------------------------ rename-kv and transact-write-skey-kv
// Bodies as the Java SDK 3.1.83 models serialize them (snake_case BSON names).

async fn get_file(h: &Harness, owner: &str, name: &str) -> Option<Document> {
    let r = h
        .call(
            "get-kv",
            doc! {"table_name": "files", "primary_key": {"owner": owner, "filename": name}},
        )
        .await;
    match r.status {
        200 => Some(r.doc.get_document("kv_doc").unwrap().clone()),
        404 => {
            assert_eq!(r.code(), "KVS.00001016");
            None
        }
        s => panic!("get-kv {owner}/{name}: {s} {}", r.doc),
    }
}

/// `(sort value, document key)` pairs of an index for one shard value, in index order.
async fn index_entries(h: &Harness, index: &str, shard: Document) -> Vec<(Bson, String)> {
    let sort = if index == "by_size" { "size" } else { "owner" };
    let d = h
        .ok(
            "scan-skey-kv",
            doc! {"table_name": "files", "hint_index_name": index, "shard_key": shard},
        )
        .await;
    d.get_array("returned_kv_items")
        .unwrap()
        .iter()
        .map(|i| {
            let kv = i.as_document().unwrap().get_document("kv_doc").unwrap();
            let who = format!(
                "{}/{}",
                kv.get_str("owner").unwrap(),
                kv.get_str("filename").unwrap()
            );
            (kv.get(sort).cloned().unwrap_or(Bson::Null), who)
        })
        .collect()
}

#[tokio::test]
async fn rename_kv_moves_the_document_and_its_index_entries() {
    let h = harness();
    with_files(&h).await;
    let r = h
        .ok(
            "rename-kv",
            doc! {"table_name": "files", "primary_key": {"owner": "alice", "filename": "a.txt"},
            "new_sort_key": {"filename": "z.txt"}, "kv_options": {"return_hint": true}},
        )
        .await;
    assert_eq!(
        r,
        doc! {"old_primary_key": {"owner": "alice", "filename": "a.txt"}}
    );
    assert_eq!(get_file(&h, "alice", "a.txt").await, None);
    assert_eq!(
        get_file(&h, "alice", "z.txt").await.unwrap(),
        doc! {"owner": "alice", "filename": "z.txt", "size": 7, "color": "red"}
    );
    // The local index has the moved document once, under its new key; the global index keyed
    // by file name moved it from `a.txt` (only bob's is left) to `z.txt`.
    assert_eq!(
        index_entries(&h, "by_size", doc! {"owner": "alice"}).await,
        vec![
            (Bson::Int32(3), "alice/b.txt".into()),
            (Bson::Int32(7), "alice/z.txt".into()),
            (Bson::Int32(9), "alice/c.txt".into()),
        ]
    );
    assert_eq!(
        index_entries(&h, "g_by_name", doc! {"filename": "a.txt"}).await,
        vec![(Bson::String("bob".into()), "bob/a.txt".into())]
    );
    assert_eq!(
        index_entries(&h, "g_by_name", doc! {"filename": "z.txt"}).await,
        vec![(Bson::String("alice".into()), "alice/z.txt".into())]
    );
}

/// Java 3.1.62–3.1.76 and C++ 3.1.54–3.1.68 sent the CamelCase body and read `OldPrimaryKey` and
/// `KvDoc` (before the rename by default, after it when `ReturnHint` is false).
#[tokio::test]
async fn rename_kv_answers_the_camel_case_body_in_kind() {
    let h = harness();
    with_files(&h).await;
    let r = h
        .ok(
            "rename-kv",
            doc! {"TableName": "files", "PrimaryKey": {"owner": "alice", "filename": "a.txt"},
            "NewSortKey": {"filename": "y.txt"}, "ReturnBlobAttr": false},
        )
        .await;
    assert_eq!(
        r,
        doc! {"OldPrimaryKey": {"owner": "alice", "filename": "a.txt"},
        "KvDoc": {"owner": "alice", "filename": "a.txt", "size": 7, "color": "red"}}
    );
    let r = h
        .ok(
            "rename-kv",
            doc! {"TableName": "files", "PrimaryKey": {"owner": "alice", "filename": "y.txt"},
            "NewSortKey": {"filename": "x.txt"}, "KvOptions": {"ReturnHint": false}},
        )
        .await;
    assert_eq!(
        r,
        doc! {"OldPrimaryKey": {"owner": "alice", "filename": "y.txt"},
        "KvDoc": {"owner": "alice", "filename": "x.txt", "size": 7, "color": "red"}}
    );
    assert_eq!(get_file(&h, "alice", "a.txt").await, None);
    assert_eq!(get_file(&h, "alice", "y.txt").await, None);
    assert_eq!(
        get_file(&h, "alice", "x.txt")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        7
    );
    for (body, status, code) in [
        (
            doc! {"TableName": "files", "PrimaryKey": {"owner": "alice", "filename": "x.txt"}, "NewSortKey": {"filename": "b.txt"}},
            409,
            "KVS.00001020",
        ),
        (
            doc! {"TableName": "files", "PrimaryKey": {"owner": "alice", "filename": "x.txt"}},
            400,
            "KVS.00001001",
        ),
        (
            doc! {"TableName": "files", "PrimaryKey": {"owner": "alice", "filename": "x.txt"}, "NewSortKey": {"filename": "w"}, "KvOptions": {"ReturnHint": 1}},
            400,
            "KVS.00001001",
        ),
        (
            doc! {"TableName": "files", "PrimaryKey": {"owner": "alice", "filename": "x.txt"}, "NewSortKey": {"filename": "w"}, "UpdateBlobAttr": {}},
            501,
            "KVS.00000002",
        ),
    ] {
        let r = h.call("rename-kv", body.clone()).await;
        assert_eq!((r.status, r.code()), (status, code), "{body}: {}", r.doc);
    }
    assert_eq!(
        get_file(&h, "alice", "x.txt")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        7
    );
}

#[tokio::test]
async fn rename_kv_errors_change_nothing() {
    let h = harness();
    with_files(&h).await;
    let pk = doc! {"owner": "alice", "filename": "a.txt"};
    for (body, status, code) in [
        // Missing source document.
        (
            doc! {"table_name": "files", "primary_key": {"owner": "alice", "filename": "nope"}, "new_sort_key": {"filename": "x"}},
            404,
            "KVS.00001016",
        ),
        // The target is another document, or the document itself.
        (
            doc! {"table_name": "files", "primary_key": pk.clone(), "new_sort_key": {"filename": "b.txt"}},
            409,
            "KVS.00001020",
        ),
        (
            doc! {"table_name": "files", "primary_key": pk.clone(), "new_sort_key": {"filename": "a.txt"}},
            409,
            "KVS.00001020",
        ),
        // Malformed requests.
        (
            doc! {"table_name": "files", "primary_key": pk.clone(), "new_sort_key": {"owner": "bob", "filename": "x"}},
            400,
            "KVS.00001001",
        ),
        (
            doc! {"table_name": "files", "primary_key": pk.clone(), "new_sort_key": {}},
            400,
            "KVS.00001001",
        ),
        (
            doc! {"table_name": "files", "primary_key": pk.clone()},
            400,
            "KVS.00001001",
        ),
        (
            doc! {"table_name": "files", "primary_key": pk.clone(), "new_sort_key": "x"},
            400,
            "KVS.00001001",
        ),
        (
            doc! {"table_name": "files", "primary_key": {"owner": "alice"}, "new_sort_key": {"filename": "x"}},
            400,
            "KVS.00001001",
        ),
        (
            doc! {"table_name": "files", "primary_key": pk.clone(), "new_sort_key": {"filename": "x"}, "update_blob_attr": {}},
            501,
            "KVS.00000002",
        ),
        (
            doc! {"table_name": "nope", "primary_key": pk.clone(), "new_sort_key": {"filename": "x"}},
            404,
            "KVS.00001015",
        ),
    ] {
        let r = h.call("rename-kv", body.clone()).await;
        assert_eq!((r.status, r.code()), (status, code), "{body}: {}", r.doc);
    }
    assert_eq!(
        get_file(&h, "alice", "a.txt").await.unwrap(),
        doc! {"owner": "alice", "filename": "a.txt", "size": 7, "color": "red"}
    );
    assert_eq!(
        get_file(&h, "alice", "b.txt")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        3
    );
    assert_eq!(get_file(&h, "alice", "x").await, None);
}

fn size_is(size: i32) -> Document {
    doc! {"single_field_expression": {"field": "size", "func": "$eq", "value": {"size": size}}}
}

#[tokio::test]
async fn transact_write_skey_kv_applies_every_kind_of_operation() {
    let h = harness();
    with_files(&h).await;
    let r = h
        .ok(
            "transact-write-skey-kv",
            doc! {"table_name": "files", "shard_key": {"owner": "alice"}, "shard_key_kv_opers": [
                {"check_shard_key_kv": {"sort_key": {"filename": "c.txt"}, "condition_expression": size_is(9)}},
                {"put_shard_key_kv": {"kv_doc": {"owner": "alice", "filename": "d.txt", "size": 1}}},
                {"put_shard_key_kv": {"kv_doc": {"owner": "alice", "filename": "e.txt", "size": 2},
                    "condition_expression": {"single_kv_expression": {"func": "not_exist"}}}},
                {"delete_shard_key_kv": {"sort_key": {"filename": "b.txt"}, "condition_expression": size_is(3)}},
                {"update_shard_key_kv": {"sort_key": {"filename": "a.txt"},
                    "update_fields": {"add": {"size": 10}, "set": {"color": "blue"}}}},
            ]},
        )
        .await;
    assert_eq!(r, doc! {});
    assert_eq!(
        get_file(&h, "alice", "a.txt").await.unwrap(),
        doc! {"owner": "alice", "filename": "a.txt", "size": 17, "color": "blue"}
    );
    assert_eq!(get_file(&h, "alice", "b.txt").await, None);
    assert_eq!(
        get_file(&h, "alice", "c.txt")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        9
    );
    assert_eq!(
        get_file(&h, "alice", "d.txt")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        1
    );
    assert_eq!(
        get_file(&h, "alice", "e.txt")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        2
    );
    assert_eq!(
        get_file(&h, "bob", "a.txt")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        5
    );
    // The local index follows every write of the transaction.
    assert_eq!(
        index_entries(&h, "by_size", doc! {"owner": "alice"}).await,
        vec![
            (Bson::Int32(1), "alice/d.txt".into()),
            (Bson::Int32(2), "alice/e.txt".into()),
            (Bson::Int32(9), "alice/c.txt".into()),
            (Bson::Int32(17), "alice/a.txt".into()),
        ]
    );
    // An upsert through update_shard_key_kv creates the document at shard_key + sort_key.
    h.ok(
        "transact-write-skey-kv",
        doc! {"table_name": "files", "shard_key": {"owner": "carol"}, "shard_key_kv_opers": [
            {"update_shard_key_kv": {"sort_key": {"filename": "n"}, "update_fields": {"upsert": {"size": 4}}}},
        ]},
    )
    .await;
    assert_eq!(
        get_file(&h, "carol", "n").await.unwrap(),
        doc! {"owner": "carol", "filename": "n", "size": 4}
    );
}

#[tokio::test]
async fn transact_write_skey_kv_is_all_or_nothing() {
    let h = harness();
    with_files(&h).await;
    let put = |name: &str| doc! {"put_shard_key_kv": {"kv_doc": {"owner": "alice", "filename": name, "size": 100}}};
    let add = doc! {"update_shard_key_kv": {"sort_key": {"filename": "a.txt"}, "update_fields": {"add": {"size": 1}}}};
    let cases: Vec<(Vec<Document>, u16, &str)> = vec![
        // A false check between puts: nothing is written.
        (
            vec![
                put("p1"),
                add.clone(),
                doc! {"check_shard_key_kv": {"sort_key": {"filename": "c.txt"}, "condition_expression": size_is(8)}},
                put("p2"),
            ],
            400,
            "KVS.00005017",
        ),
        // A false condition on the last write.
        (
            vec![
                put("p1"),
                add.clone(),
                doc! {"delete_shard_key_kv": {"sort_key": {"filename": "b.txt"}, "condition_expression": size_is(4)}},
            ],
            400,
            "KVS.00005017",
        ),
        // A missing document for a delete and for an update without upsert.
        (
            vec![
                put("p1"),
                add.clone(),
                doc! {"delete_shard_key_kv": {"sort_key": {"filename": "nope"}}},
            ],
            404,
            "KVS.00001016",
        ),
        (
            vec![
                put("p1"),
                doc! {"update_shard_key_kv": {"sort_key": {"filename": "nope"}, "update_fields": {"add": {"size": 1}}}},
            ],
            404,
            "KVS.00001016",
        ),
        // A check against an existing document that must not exist.
        (
            vec![
                put("p1"),
                doc! {"check_shard_key_kv": {"sort_key": {"filename": "a.txt"}, "condition_expression": {"single_kv_expression": {"func": "not_exist"}}}},
            ],
            400,
            "KVS.00005017",
        ),
        // Bad conditions, and a check without one.
        (
            vec![
                put("p1"),
                doc! {"check_shard_key_kv": {"sort_key": {"filename": "a.txt"}, "condition_expression": {"single_field_expression": {"field": "size", "func": "$like", "value": {"": 1}}}}},
            ],
            400,
            "KVS.00005016",
        ),
        (
            vec![
                put("p1"),
                doc! {"check_shard_key_kv": {"sort_key": {"filename": "a.txt"}}},
            ],
            400,
            "KVS.00005016",
        ),
        // Malformed operations.
        (
            vec![
                put("p1"),
                doc! {"put_shard_key_kv": {"kv_doc": {"owner": "bob", "filename": "x"}}},
            ],
            400,
            "KVS.00001001",
        ),
        (
            vec![
                put("p1"),
                doc! {"put_shard_key_kv": {"kv_doc": {"filename": "x"}}},
            ],
            400,
            "KVS.00001001",
        ),
        (
            vec![
                put("p1"),
                doc! {"delete_shard_key_kv": {"sort_key": {"owner": "bob", "filename": "a.txt"}}},
            ],
            400,
            "KVS.00001001",
        ),
        (
            vec![put("p1"), doc! {"delete_shard_key_kv": {}}],
            400,
            "KVS.00001001",
        ),
        (vec![put("p1"), put("p1")], 400, "KVS.00001001"),
        (vec![put("p1"), doc! {}], 400, "KVS.00001001"),
        (
            vec![
                doc! {"put_shard_key_kv": {"kv_doc": {"owner": "alice", "filename": "p1"}},
                "delete_shard_key_kv": {"sort_key": {"filename": "a.txt"}}},
            ],
            400,
            "KVS.00001001",
        ),
        (
            vec![
                put("p1"),
                doc! {"update_shard_key_kv": {"sort_key": {"filename": "a.txt"}}},
            ],
            400,
            "KVS.00001001",
        ),
        (
            vec![
                put("p1"),
                doc! {"update_shard_key_kv": {"sort_key": {"filename": "a.txt"}, "update_fields": {"set": {"owner": "bob"}}}},
            ],
            400,
            "KVS.00001001",
        ),
        (vec![], 400, "KVS.00001001"),
        (
            (0..101).map(|i| put(&format!("q{i}"))).collect(),
            400,
            "KVS.00005020",
        ),
        (
            vec![
                put("p1"),
                doc! {"put_shard_key_kv": {"kv_doc": {"owner": "alice", "filename": "x"}, "kv_blob": {}}},
            ],
            501,
            "KVS.00000002",
        ),
    ];
    for (opers, status, code) in cases {
        let body = doc! {"table_name": "files", "shard_key": {"owner": "alice"}, "shard_key_kv_opers": opers};
        let r = h.call("transact-write-skey-kv", body.clone()).await;
        assert_eq!((r.status, r.code()), (status, code), "{body}: {}", r.doc);
    }
    for body in [
        doc! {"table_name": "files", "shard_key": {"owner": "alice", "filename": "a.txt"}, "shard_key_kv_opers": [put("p1")]},
        doc! {"table_name": "files", "shard_key": {}, "shard_key_kv_opers": [put("p1")]},
        doc! {"table_name": "files", "shard_key_kv_opers": [put("p1")]},
        doc! {"table_name": "files", "shard_key": {"owner": "alice"}},
        doc! {"table_name": "files", "shard_key": {"owner": "alice"}, "shard_key_kv_opers": [5]},
    ] {
        let r = h.call("transact-write-skey-kv", body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "KVS.00001001"),
            "{body}: {}",
            r.doc
        );
    }
    let r = h
        .call(
            "transact-write-skey-kv",
            doc! {"table_name": "nope", "shard_key": {"owner": "alice"}, "shard_key_kv_opers": [put("p1")]},
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "KVS.00001015"));
    // Nothing of any refused transaction was written: the documents and the index are as
    // with_files left them.
    assert_eq!(get_file(&h, "alice", "p1").await, None);
    assert_eq!(get_file(&h, "alice", "p2").await, None);
    assert_eq!(
        get_file(&h, "alice", "a.txt")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        7
    );
    assert_eq!(
        get_file(&h, "alice", "b.txt")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        3
    );
    assert_eq!(
        index_entries(&h, "by_size", doc! {"owner": "alice"}).await,
        vec![
            (Bson::Int32(3), "alice/b.txt".into()),
            (Bson::Int32(7), "alice/a.txt".into()),
            (Bson::Int32(9), "alice/c.txt".into()),
        ]
    );
}

/// Racing transactions on one shard key behave as some serial order: each task adds 1 to `b`
/// unconditionally, then moves `a` from the size it read to the next one under a condition,
/// and records itself in a new document, retrying when the condition loses. If a transaction
/// were not atomic, a lost condition would leave its add on `b` behind (b > N); if commits did
/// not check what they read, two tasks could both move `a` from the same size (a < N).
#[tokio::test]
async fn concurrent_transactions_never_lose_an_update() {
    const N: i32 = 12;
    let h = Arc::new(harness());
    h.ok("create-table", files_table()).await;
    for name in ["a", "b"] {
        h.ok(
            "put-kv",
            doc! {"table_name": "files", "kv_doc": {"owner": "c", "filename": name, "size": 0}},
        )
        .await;
    }
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                let mut lost = 0;
                loop {
                    let seen = get_file(&h, "c", "a").await.unwrap().get_i32("size").unwrap();
                    let r = h
                        .call(
                            "transact-write-skey-kv",
                            doc! {"table_name": "files", "shard_key": {"owner": "c"}, "shard_key_kv_opers": [
                                {"update_shard_key_kv": {"sort_key": {"filename": "b"}, "update_fields": {"add": {"size": 1}}}},
                                {"update_shard_key_kv": {"sort_key": {"filename": "a"}, "condition_expression": size_is(seen),
                                    "update_fields": {"set": {"size": seen + 1}}}},
                                {"put_shard_key_kv": {"kv_doc": {"owner": "c", "filename": format!("t{i}"), "size": seen + 1}}},
                            ]},
                        )
                        .await;
                    match (r.status, r.code()) {
                        (200, _) => return lost,
                        (400, "KVS.00005017") => lost += 1,
                        other => panic!("{other:?}: {}", r.doc),
                    }
                }
            })
        })
        .collect();
    let mut lost = 0;
    for t in tasks {
        lost += t.await.unwrap();
    }
    assert_eq!(
        get_file(&h, "c", "a")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        N
    );
    assert_eq!(
        get_file(&h, "c", "b")
            .await
            .unwrap()
            .get_i32("size")
            .unwrap(),
        N
    );
    // Each task's record holds the size it moved `a` to: every value 1..=N exactly once.
    let mut moved_to = Vec::new();
    for i in 0..N {
        moved_to.push(
            get_file(&h, "c", &format!("t{i}"))
                .await
                .unwrap()
                .get_i32("size")
                .unwrap(),
        );
    }
    moved_to.sort_unstable();
    assert_eq!(moved_to, (1..=N).collect::<Vec<_>>());
    // The local index holds exactly one entry per document.
    assert_eq!(
        index_entries(&h, "by_size", doc! {"owner": "c"})
            .await
            .len(),
        N as usize + 2
    );
    eprintln!("conditions lost and retried: {lost}");
}

/// What the binary reads from a head (`classify`), once per request, and the gateway's own
/// refusals in KVS's BSON envelope with the operation the head named.
#[test]
fn classify_reads_the_head_once_and_gateway_errors_use_the_kvs_envelope() {
    let h = harness();
    let date = "20260101T000000Z";
    let batch = signed(
        "batch-write-kv",
        "s.localhost",
        doc! {},
        "HWkvmuxdev",
        "x",
        date,
    );
    let batch = h.dialect.classify(&batch.into_parts().0).expect("claimed");
    assert_eq!(batch.operation, Some("batch-write-kv"));
    assert_eq!(batch.body_limit, crate::BATCH_BODY_LIMIT);
    assert_eq!(batch.key_id.as_deref(), Some("HWkvmuxdev"));
    assert_eq!(batch.account.as_deref(), Some("dev"));
    let single = signed("put-kv", "s.localhost", doc! {}, "HWnobody", "x", date);
    let single = h.dialect.classify(&single.into_parts().0).expect("claimed");
    assert_eq!(single.body_limit, crate::SINGLE_BODY_LIMIT);
    assert_eq!(single.key_id.as_deref(), Some("HWnobody"));
    assert_eq!(single.account, None, "an unknown key id names no account");
    let unknown = Request::post("/v1/no-such-op")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    assert_eq!(
        h.dialect.classify(&unknown).map(|head| head.operation),
        Some(None)
    );
    let elsewhere = Request::post("/").body(()).unwrap().into_parts().0;
    assert_eq!(h.dialect.classify(&elsewhere), None);

    for (error, status, code) in [
        (
            kv_dialect::GatewayError::BodyTooLarge { limit: 1 },
            400,
            "KVS.00001004",
        ),
        (kv_dialect::GatewayError::Throttled, 503, "KVS.00000003"),
        (kv_dialect::GatewayError::Internal, 500, "KVS.00000001"),
    ] {
        let answer = h.dialect.gateway_error(&batch, error);
        assert_eq!(answer.status().as_u16(), status);
        assert_eq!(answer.headers()["content-type"], "application/bson");
        assert_eq!(answer.info.code.as_deref(), Some(code));
        assert_eq!(answer.info.operation, "batch-write-kv");
        assert_eq!(
            answer.headers()["x-request-id"],
            answer.info.request_id.as_str()
        );
    }
}
