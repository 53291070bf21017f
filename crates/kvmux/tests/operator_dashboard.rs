//! End to end through the real binary: the dashboard's static files and the JSON API it browses
//! with (the real-browser test in tests/browser drives the page itself).

mod common;

use bson::doc;
use common::{agent, Server, AUTH_OFF};
use serde_json::{json, Value};

fn get(s: &Server, path: &str) -> (u16, Value) {
    let mut r = agent().get(&s.url(path)).call().expect("call");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

fn container_id(s: &Server, name: &str) -> String {
    let (_, all) = get(s, "/_kvmux/api/containers");
    all["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {all}"))["id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[test]
fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let s = Server::start(AUTH_OFF);
    let mut page = agent().get(&s.url("/_kvmux/ui")).call().expect("ui");
    assert_eq!(page.status(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = page.body_mut().read_to_string().expect("html");
    assert!(html.contains("/_kvmux/ui/app.js") && html.contains("id=\"tab-requests\""));
    for (path, kind) in [
        ("/_kvmux/ui/app.js", "javascript"),
        ("/_kvmux/ui/app.css", "css"),
    ] {
        let r = agent().get(&s.url(path)).call().expect("asset");
        assert_eq!(r.status(), 200);
        let ct = r.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .to_string();
        assert!(ct.contains(kind), "{path}: {ct}");
    }
    assert_eq!(get(&s, "/_kvmux/ui/nothing.js").0, 404);
    let r = agent()
        .post(&s.url("/_kvmux/ui"))
        .send_empty()
        .expect("post");
    assert_eq!(r.status(), 405);
}

#[test]
fn keys_page_by_prefix_and_values_render_as_json_text_and_bson() {
    let s = Server::start(AUTH_OFF);
    s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    );
    for (key, value) in [
        ("user:1", "{\"name\":\"ann\"}"),
        ("user:2", "plain"),
        ("zeta", "z"),
    ] {
        let r = s.tencent(
            "EdgeKVPut",
            json!({"ZoneId": "z", "Namespace": "ns", "Key": key, "Value": value, "ExpirationTTL": 600}),
        );
        assert!(r.get("Error").is_none(), "{r}");
    }
    let ns = container_id(&s, "ns");
    let (_, all) = get(&s, "/_kvmux/api/containers");
    let entry = all["containers"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "ns").cloned())
        .expect("ns");
    assert_eq!(
        (entry["vendor"].clone(), entry["items"].clone()),
        (json!("tencent"), json!(3))
    );

    // Prefix search with paging: one key a page, then the next.
    let (status, first) = get(
        &s,
        &format!("/_kvmux/api/items?container={ns}&prefix=user:&limit=1"),
    );
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["items"][0]["key"], "user:1");
    let ttl = first["items"][0]["ttl_secs"].as_u64().expect("ttl");
    assert!((590..=600).contains(&ttl), "{ttl}");
    let next = first["next"].as_str().expect("more pages").to_string();
    let (_, second) = get(
        &s,
        &format!("/_kvmux/api/items?container={ns}&prefix=user:&limit=1&after={next}"),
    );
    assert_eq!(second["items"][0]["key"], "user:2");
    assert!(second["next"].is_null(), "{second}");

    let value = |key: &str| {
        get(
            &s,
            &format!(
                "/_kvmux/api/item?container={ns}&key_hex={}",
                hex::encode(key)
            ),
        )
        .1
    };
    let json_value = value("user:1");
    assert_eq!(json_value["format"], "json");
    let shown: Value =
        serde_json::from_str(json_value["value"].as_str().expect("text")).expect("json");
    assert_eq!(shown, json!({"name": "ann"}));
    assert_eq!(json_value["size"], 6 + 14);
    assert_eq!(value("user:2")["format"], "text");

    // A Huawei document is shown as extended JSON, found by its binary key.
    let body = doc! {"table_name": "files", "primary_key_schema": {"shard_key_fields": [{"name": "owner"}]}};
    let r = agent()
        .post(&s.url("/v1/create-table?store_name=shop"))
        .header("Content-Type", "application/bson")
        .send(body.to_vec().expect("bson"))
        .expect("create-table");
    assert_eq!(r.status(), 200);
    let body =
        doc! {"table_name": "files", "kv_doc": {"owner": "ann", "size": 7_i64, "tags": ["a"]}};
    let r = agent()
        .post(&s.url("/v1/put-kv?store_name=shop"))
        .header("Content-Type", "application/bson")
        .send(body.to_vec().expect("bson"))
        .expect("put-kv");
    assert_eq!(r.status(), 200);
    let files = container_id(&s, "files");
    let (_, keys) = get(&s, &format!("/_kvmux/api/items?container={files}"));
    let key_hex = keys["items"][0]["key_hex"]
        .as_str()
        .expect("key")
        .to_string();
    let (_, doc_value) = get(
        &s,
        &format!("/_kvmux/api/item?container={files}&key_hex={key_hex}"),
    );
    assert_eq!(doc_value["format"], "bson", "{doc_value}");
    let shown: Value =
        serde_json::from_str(doc_value["value"].as_str().expect("text")).expect("json");
    assert_eq!(shown, json!({"owner": "ann", "size": 7, "tags": ["a"]}));

    // Bad input is a 4xx with a message, never a 5xx.
    for (path, status) in [
        ("/_kvmux/api/items?container=abc".to_string(), 400),
        ("/_kvmux/api/items?container=999999".to_string(), 404),
        (format!("/_kvmux/api/items?container={ns}&after=zz"), 400),
        (format!("/_kvmux/api/items?container={ns}&limit=-1"), 400),
        (
            format!("/_kvmux/api/item?container={ns}&key_hex=nothex"),
            400,
        ),
        (format!("/_kvmux/api/item?container={ns}&key_hex=00"), 404),
        (format!("/_kvmux/api/item?container={ns}"), 400),
        ("/_kvmux/api/items?colour=red".to_string(), 400),
    ] {
        let (got, body) = get(&s, &path);
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
}

/// Whatever a client puts in the operator endpoints' queries and bodies, the answer is a 2xx or
/// a 4xx with a message, never a 5xx or a dropped connection. One gateway serves every case (a
/// runner inside the test, so the gateway is stopped when the test ends).
#[test]
fn operator_endpoints_never_fail_on_bad_input() {
    use proptest::prelude::*;
    let s = Server::start(AUTH_OFF);
    s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    );
    let inputs = (
        "[a-z_=&%0-9A-F.-]{0,40}",
        "\\PC{0,12}",
        proptest::collection::vec(any::<u8>(), 0..64),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(&inputs, |(query, value, body)| {
            let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            for path in [
                format!("/_kvmux/api/items?{query}"),
                format!("/_kvmux/api/items?container={encoded}&prefix={encoded}"),
                format!("/_kvmux/api/item?container=1&key_hex={encoded}"),
                format!("/_kvmux/requests?{query}"),
                format!("/_kvmux/requests?dialect={encoded}&limit={encoded}"),
            ] {
                let mut r = agent().get(&s.url(&path)).call().expect("answer");
                let status = r.status().as_u16();
                prop_assert!(status < 500, "{} -> {}", path, status);
                if status >= 400 {
                    let reply: Value = r.body_mut().read_json().expect("json error");
                    prop_assert!(reply["error"].is_string(), "{} -> {}", path, reply);
                }
            }
            let r = agent()
                .post(&s.url("/_kvmux/faults"))
                .header("Content-Type", "application/json")
                .send(&body[..])
                .expect("answer");
            prop_assert!(r.status().as_u16() < 500);
            // Whatever was accepted goes again, so later cases start clean.
            agent()
                .delete(&s.url("/_kvmux/faults"))
                .header("Content-Type", "application/json")
                .call()
                .expect("clear");
            Ok(())
        })
        .expect("no input makes an operator endpoint fail");
}
