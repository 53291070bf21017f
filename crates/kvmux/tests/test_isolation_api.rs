//! End to end through the real binary: the admin endpoints a test suite isolates its tests with
//! (issue 15): scoped `POST /_kvmux/reset` in every dialect, checkpoints that restore items, TTLs,
//! containers, quotas and the clock exactly, `POST /_kvmux/snapshot` while running, credentials
//! added and removed at runtime, `[auth] auto_accounts`, and every new endpoint locked without
//! the token on a listener other than loopback.

mod adversarial;
mod common;

use adversarial::raw::{exchange, Exchange, RawRequest};
use adversarial::sign::Key;
use adversarial::{sign_for, Vendor};
use bson::{doc, Document};
use common::{agent, free_port, Server, AUTH_OFF};
use serde_json::{json, Value};

const MEMORY: &str = "storage = \"memory\"\n";

/// EdgeKV's code for a namespace that does not exist.
const NO_NAMESPACE: &str = "ResourceUnavailable.NamespaceNotFound";

/// One admin call with `Content-Type: application/json`; status and JSON reply.
fn admin(s: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    admin_raw(
        s.port,
        method,
        path,
        body.map(|b| b.to_string()).unwrap_or_default(),
    )
}

fn admin_raw(port: u16, method: &str, path: &str, body: String) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("Content-Type", "application/json")
        .body(body.into_bytes())
        .expect("request");
    let mut resp = agent().run(request).expect("admin call");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn aliyun(s: &Server, query: &str) -> (u16, Value) {
    let mut r = agent()
        .post(&s.url(&format!("/?Version=2024-09-10&{query}")))
        .send_empty()
        .expect("aliyun request");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().expect("json"))
}

fn huawei(s: &Server, store: &str, op: &str, body: Document) -> (u16, Document) {
    s.huawei(store, op, body)
}

fn tencent_put(s: &Server, ns: &str, key: &str, value: &str, ttl: Option<u64>) {
    let mut body = json!({"ZoneId": "z", "Namespace": ns, "Key": key, "Value": value});
    if let Some(ttl) = ttl {
        body["ExpirationTTL"] = json!(ttl);
    }
    let r = s.tencent("EdgeKVPut", body);
    assert!(r.get("Error").is_none(), "{r}");
}

/// The value of `key` in Tencent namespace `ns` of zone `z`: `None` when absent, `Err` with the
/// error code when the namespace is gone.
fn tencent_get(s: &Server, ns: &str, key: &str) -> Result<Option<String>, String> {
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": ns, "Keys": [key]}),
    );
    if let Some(code) = r["Error"]["Code"].as_str() {
        return Err(code.to_string());
    }
    // EdgeKVGet answers a missing key with an empty value; these tests store no empty values.
    Ok(r["Data"][0]["Value"]
        .as_str()
        .filter(|v| !v.is_empty())
        .map(String::from))
}

fn tencent_create(s: &Server, ns: &str) -> Value {
    s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": ns}),
    )
}

fn huawei_table(s: &Server, store: &str, table: &str) {
    let (status, r) = huawei(
        s,
        store,
        "create-table",
        doc! {
            "table_name": table,
            "primary_key_schema": {"shard_key_fields": [{"name": "id"}]},
            "global_secondary_index_schema": [
                {"index_name": "by_v", "shard_key_fields": [{"name": "v"}],
                 "sort_key_fields": [{"name": "id"}]},
            ],
        },
    );
    assert_eq!(status, 200, "{r}");
    for id in ["a", "b"] {
        let (status, r) = huawei(
            s,
            store,
            "put-kv",
            doc! {"table_name": table, "kv_doc": {"id": id, "v": format!("{table}-{id}")}},
        );
        assert_eq!(status, 200, "{r}");
    }
}

fn huawei_has(s: &Server, store: &str, table: &str) -> bool {
    let (status, _) = huawei(
        s,
        store,
        "get-kv",
        doc! {"table_name": table, "primary_key": {"id": "a"}},
    );
    status == 200
}

fn removed(r: &Value) -> (u64, u64) {
    (
        r["removed"]["containers"].as_u64().unwrap_or(u64::MAX),
        r["removed"]["items"].as_u64().unwrap_or(u64::MAX),
    )
}

#[test]
fn scoped_reset_removes_only_that_scope_in_every_dialect() {
    let s = Server::start(&format!("{MEMORY}{AUTH_OFF}"));
    for ns in ["ns", "keep"] {
        assert!(tencent_create(&s, ns).get("Error").is_none());
        tencent_put(&s, ns, "k1", "v1", None);
        tencent_put(&s, ns, "k2", "v2", Some(3600));
    }
    for ns in ["ans", "akeep"] {
        let (status, r) = aliyun(&s, &format!("Action=CreateKvNamespace&Namespace={ns}"));
        assert_eq!(status, 200, "{r}");
        let (status, r) = aliyun(&s, &format!("Action=PutKv&Namespace={ns}&Key=a&Value=x"));
        assert_eq!(status, 200, "{r}");
    }
    huawei_table(&s, "shop", "files");
    huawei_table(&s, "shop", "other");

    // Tencent: one namespace, its two items, nothing else.
    let (status, r) = admin(
        &s,
        "POST",
        "/_kvmux/reset",
        Some(json!({"dialect": "tencent", "container": "ns"})),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(removed(&r), (1, 2), "{r}");
    assert_eq!(tencent_get(&s, "ns", "k1").unwrap_err(), NO_NAMESPACE);
    assert_eq!(tencent_get(&s, "keep", "k1"), Ok(Some("v1".into())));
    // The namespace quota was given back: the name can be created again, empty.
    assert!(tencent_create(&s, "ns").get("Error").is_none());
    assert_eq!(tencent_get(&s, "ns", "k1"), Ok(None));

    // Aliyun: one namespace.
    let (status, r) = admin(
        &s,
        "POST",
        "/_kvmux/reset",
        Some(json!({"dialect": "aliyun", "container": "ans"})),
    );
    assert_eq!((status, removed(&r)), (200, (1, 1)), "{r}");
    assert_eq!(aliyun(&s, "Action=GetKv&Namespace=ans&Key=a").0, 404);
    assert_eq!(aliyun(&s, "Action=GetKv&Namespace=akeep&Key=a").0, 200);

    // Huawei: one table goes with its secondary index container; the store's other table stays.
    let (status, r) = admin(
        &s,
        "POST",
        "/_kvmux/reset",
        Some(json!({"dialect": "huawei", "container": "shop/files"})),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(removed(&r).0, 2, "table + index: {r}");
    assert!(!huawei_has(&s, "shop", "files"));
    assert!(huawei_has(&s, "shop", "other"));
    assert_eq!(tencent_get(&s, "keep", "k1"), Ok(Some("v1".into())));

    // A whole dialect of one account.
    let (status, r) = admin(
        &s,
        "POST",
        "/_kvmux/reset",
        Some(json!({"account": "dev", "dialect": "huawei"})),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(removed(&r).0, 3, "store, table, index: {r}");
    assert!(!huawei_has(&s, "shop", "other"));
    assert_eq!(aliyun(&s, "Action=GetKv&Namespace=akeep&Key=a").0, 200);

    // Another account's scope removes nothing of dev's.
    let (status, r) = admin(
        &s,
        "POST",
        "/_kvmux/reset",
        Some(json!({"account": "someone-else"})),
    );
    assert_eq!((status, removed(&r)), (200, (0, 0)), "{r}");
    assert_eq!(tencent_get(&s, "keep", "k2"), Ok(Some("v2".into())));

    // Refusals name what is valid, and remove nothing.
    let (status, r) = admin(
        &s,
        "POST",
        "/_kvmux/reset",
        Some(json!({"dialect": "azure"})),
    );
    assert_eq!(status, 400, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap_or("")
            .contains("tencent, aliyun, huawei"),
        "{r}"
    );
    let (status, r) = admin(&s, "POST", "/_kvmux/reset", Some(json!({"zone": "z"})));
    assert_eq!(status, 400, "{r}");
    let (status, r) = admin(
        &s,
        "POST",
        "/_kvmux/reset",
        Some(json!({"dialect": "huawei", "container": "a/b/c"})),
    );
    assert_eq!(status, 400, "{r}");
    let (status, r) = admin(&s, "POST", "/_kvmux/reset", Some(json!({"container": ""})));
    assert_eq!(status, 400, "{r}");
    // An explicit null (an unset variable in a harness) is not "every account".
    let (status, r) = admin(&s, "POST", "/_kvmux/reset", Some(json!({"account": null})));
    assert_eq!(status, 400, "{r}");
    assert_eq!(tencent_get(&s, "keep", "k1"), Ok(Some("v1".into())));

    // `{}` (like no body) is everything, as before.
    let (status, r) = admin(&s, "POST", "/_kvmux/reset", Some(json!({})));
    assert_eq!((status, r["status"].as_str()), (200, Some("ok")), "{r}");
    assert_eq!(tencent_get(&s, "keep", "k1").unwrap_err(), NO_NAMESPACE);
    assert_eq!(aliyun(&s, "Action=GetKv&Namespace=akeep&Key=a").0, 404);
}

/// A body too large for the admin API must be refused, never read as "no body": for a reset,
/// no body means everything.
#[test]
fn an_oversized_reset_body_is_refused_not_taken_for_a_full_reset() {
    let s = Server::start(&format!("{MEMORY}{AUTH_OFF}"));
    assert!(tencent_create(&s, "keep").get("Error").is_none());
    tencent_put(&s, "keep", "k", "v", None);
    let padding = " ".repeat(2 << 20);
    let (status, r) = admin_raw(
        s.port,
        "POST",
        "/_kvmux/reset",
        format!("{{\"dialect\": \"tencent\", \"container\": \"other\"}}{padding}"),
    );
    assert_eq!(status, 413, "{r}");
    assert_eq!(tencent_get(&s, "keep", "k"), Ok(Some("v".into())));
}

fn engine_now(s: &Server) -> u64 {
    let (status, r) = admin(s, "GET", "/_kvmux/health", None);
    assert_eq!(status, 200, "{r}");
    r["now"].as_u64().expect("now")
}

fn advance(s: &Server, seconds: u64) {
    let (status, r) = admin(
        s,
        "POST",
        "/_kvmux/clock/advance",
        Some(json!({"seconds": seconds})),
    );
    assert_eq!(status, 200, "{r}");
}

#[test]
fn a_checkpoint_restores_items_ttls_containers_quotas_and_the_clock_exactly_on_memory() {
    checkpoint_restores_exactly(MEMORY);
}

#[test]
fn a_checkpoint_restores_items_ttls_containers_quotas_and_the_clock_exactly_on_redb() {
    checkpoint_restores_exactly("");
}

fn checkpoint_restores_exactly(storage: &str) {
    let s = Server::start(&format!(
        "{storage}{AUTH_OFF}[tencent]\nmax_namespaces = 2\n"
    ));
    assert!(tencent_create(&s, "ns").get("Error").is_none());
    tencent_put(&s, "ns", "forever", "f", None);
    tencent_put(&s, "ns", "ttl", "t", Some(100));
    advance(&s, 10);
    let (status, r) = admin(&s, "PUT", "/_kvmux/checkpoints/before-test", None);
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["name"], "before-test", "{r}");
    assert_eq!(r["clock_offset"], 10, "{r}");
    let at_checkpoint = engine_now(&s);

    // The test runs: time passes (the TTL item expires), items and namespaces come and go, and
    // the namespace quota (2) is used up.
    advance(&s, 1000);
    assert_eq!(tencent_get(&s, "ns", "ttl"), Ok(None));
    tencent_put(&s, "ns", "forever", "changed", None);
    tencent_put(&s, "ns", "new", "n", None);
    assert!(tencent_create(&s, "second").get("Error").is_none());
    let refused = tencent_create(&s, "third");
    assert!(refused.get("Error").is_some(), "quota of 2: {refused}");

    let (status, r) = admin(&s, "POST", "/_kvmux/checkpoints/before-test/restore", None);
    assert_eq!(status, 200, "{r}");
    // The clock is back (wall time moves on by the seconds this test takes).
    let now = engine_now(&s);
    assert!(
        (at_checkpoint..at_checkpoint + 5).contains(&now),
        "now {now}, at the checkpoint {at_checkpoint}"
    );
    assert_eq!(tencent_get(&s, "ns", "forever"), Ok(Some("f".into())));
    assert_eq!(tencent_get(&s, "ns", "new"), Ok(None));
    assert_eq!(tencent_get(&s, "second", "x").unwrap_err(), NO_NAMESPACE);
    // The TTL item is live again with the time it had left (90 s), not a fresh 100 s.
    assert_eq!(tencent_get(&s, "ns", "ttl"), Ok(Some("t".into())));
    advance(&s, 80);
    assert_eq!(tencent_get(&s, "ns", "ttl"), Ok(Some("t".into())));
    advance(&s, 15);
    assert_eq!(tencent_get(&s, "ns", "ttl"), Ok(None));
    // The namespace counter is back at 1: one more fits, then the quota refuses again.
    assert!(tencent_create(&s, "second").get("Error").is_none());
    assert!(tencent_create(&s, "third").get("Error").is_some());

    // Listed with its size; restorable again; dropped.
    let (status, r) = admin(&s, "GET", "/_kvmux/checkpoints", None);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["checkpoints"][0]["name"], "before-test", "{r}");
    assert!(
        r["checkpoints"][0]["records"].as_u64().unwrap_or(0) >= 3,
        "{r}"
    );
    let (status, _) = admin(&s, "POST", "/_kvmux/checkpoints/before-test/restore", None);
    assert_eq!(status, 200);
    assert_eq!(tencent_get(&s, "second", "x").unwrap_err(), NO_NAMESPACE);
    assert_eq!(
        admin(&s, "DELETE", "/_kvmux/checkpoints/before-test", None).0,
        200
    );
    assert_eq!(
        admin(&s, "POST", "/_kvmux/checkpoints/before-test/restore", None).0,
        404
    );
    assert_eq!(
        admin(&s, "DELETE", "/_kvmux/checkpoints/before-test", None).0,
        404
    );
    let (status, r) = admin(&s, "GET", "/_kvmux/checkpoints", None);
    assert_eq!(
        (status, r["checkpoints"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    // Names: 1 to 64 of A-Z a-z 0-9 _ . -
    for bad in ["bad$name", "..", &"x".repeat(65), "a/b"] {
        let (status, r) = admin(&s, "PUT", &format!("/_kvmux/checkpoints/{bad}"), None);
        assert_eq!(status, 400, "{bad}: {r}");
    }
    assert_eq!(admin(&s, "POST", "/_kvmux/checkpoints", None).0, 405);
}

#[test]
fn on_redb_a_restore_drops_and_names_the_checkpoints_taken_after_it() {
    let s = Server::start(AUTH_OFF);
    for name in ["early", "base"] {
        assert_eq!(
            admin(&s, "PUT", &format!("/_kvmux/checkpoints/{name}"), None).0,
            201
        );
    }
    assert!(tencent_create(&s, "ns").get("Error").is_none());
    assert_eq!(admin(&s, "PUT", "/_kvmux/checkpoints/later", None).0, 201);
    let (status, r) = admin(&s, "POST", "/_kvmux/checkpoints/base/restore", None);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["dropped"], json!(["later"]), "{r}");
    assert_eq!(tencent_get(&s, "ns", "x").unwrap_err(), NO_NAMESPACE);
    let (_, r) = admin(&s, "GET", "/_kvmux/checkpoints", None);
    let names: Vec<&str> = r["checkpoints"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["base", "early"]);
}

#[test]
fn a_snapshot_imports_while_running_and_errors_name_the_line() {
    let s = Server::start(&format!("{MEMORY}{AUTH_OFF}"));
    assert!(tencent_create(&s, "ns").get("Error").is_none());
    tencent_put(&s, "ns", "a", "1", None);
    tencent_put(&s, "ns", "b", "2", Some(3600));
    let mut resp = agent()
        .get(&s.url("/_kvmux/snapshot"))
        .call()
        .expect("snapshot");
    let dump = resp.body_mut().read_to_string().expect("dump");

    let (status, _) = admin(&s, "POST", "/_kvmux/reset", None);
    assert_eq!(status, 200);
    let (status, r) = admin_raw(s.port, "POST", "/_kvmux/snapshot", dump.clone());
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["imported"]["containers"], 1, "{r}");
    assert_eq!(r["imported"]["items"], 2, "{r}");
    assert_eq!(tencent_get(&s, "ns", "b"), Ok(Some("2".into())));

    // ?replace=true drops what is there first.
    tencent_put(&s, "ns", "extra", "x", None);
    let (status, r) = admin_raw(
        s.port,
        "POST",
        "/_kvmux/snapshot?replace=true",
        dump.clone(),
    );
    assert_eq!((status, r["replaced"].as_bool()), (200, Some(true)), "{r}");
    assert_eq!(tencent_get(&s, "ns", "extra"), Ok(None));
    assert_eq!(tencent_get(&s, "ns", "a"), Ok(Some("1".into())));

    // A bad line is named.
    let first = dump.lines().next().expect("header line");
    let broken = format!("{first}\nnot json\n");
    let (status, r) = admin_raw(s.port, "POST", "/_kvmux/snapshot", broken);
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["line"], 2, "{r}");
    assert!(
        r["error"].as_str().unwrap_or("").starts_with("line 2:"),
        "{r}"
    );
    let (status, r) = admin_raw(s.port, "POST", "/_kvmux/snapshot?bogus=1", dump);
    assert_eq!(status, 400, "{r}");
}

// ------------------------------------------------------------------ credentials, signed requests

/// A signed Tencent call as `key`: status and the inner `Response`.
fn signed_tencent(s: &Server, key: &Key, action: &str, params: Value) -> Value {
    let mut request = RawRequest::new("POST", "/")
        .header("Host", format!("127.0.0.1:{}", s.port))
        .header("Content-Type", "application/json")
        .header("X-TC-Action", action)
        .header("X-TC-Version", "2022-09-01")
        .body(params.to_string());
    assert!(sign_for(Vendor::Tencent, &mut request, key), "signable");
    match exchange(s.port, &request) {
        Exchange::Reply(r) => {
            let v: Value = serde_json::from_slice(&r.body).expect("json");
            v["Response"].clone()
        }
        other => panic!("{other:?}"),
    }
}

fn code(r: &Value) -> &str {
    r["Error"]["Code"].as_str().unwrap_or("")
}

#[test]
fn credentials_added_at_runtime_sign_requests_until_removed() {
    let s = Server::start(MEMORY);
    let key = Key::new("AKIDruntime", "rtsecret");
    let ns = json!({"ZoneId": "z", "Namespace": "rtns"});
    let refused = signed_tencent(&s, &key, "CreateEdgeKVNamespace", ns.clone());
    assert!(code(&refused).starts_with("AuthFailure"), "{refused}");

    let new =
        json!({"dialect": "tencent", "id": "AKIDruntime", "secret": "rtsecret", "account": "rt"});
    let (status, r) = admin(&s, "POST", "/_kvmux/credentials", Some(new.clone()));
    assert_eq!(status, 201, "{r}");
    let made = signed_tencent(&s, &key, "CreateEdgeKVNamespace", ns.clone());
    assert!(made.get("Error").is_none(), "{made}");
    // Its own account: the dev account does not see the namespace.
    let dev = signed_tencent(
        &s,
        &Vendor::Tencent.dev_key(),
        "DescribeEdgeKVNamespaces",
        json!({"ZoneId": "z"}),
    );
    assert!(!dev.to_string().contains("rtns"), "{dev}");

    let (status, r) = admin(&s, "POST", "/_kvmux/credentials", Some(new));
    assert_eq!(status, 409, "{r}");
    let (status, r) = admin(
        &s,
        "POST",
        "/_kvmux/credentials",
        Some(json!({"dialect": "azure", "id": "x", "secret": "y", "account": "z"})),
    );
    assert_eq!(status, 400, "{r}");
    let (status, r) = admin(&s, "POST", "/_kvmux/credentials", Some(json!({"id": "x"})));
    assert_eq!(status, 400, "{r}");

    let (status, r) = admin(&s, "GET", "/_kvmux/credentials", None);
    assert_eq!(status, 200, "{r}");
    let text = r.to_string();
    assert!(
        text.contains("AKIDruntime") && text.contains("\"rt\""),
        "{text}"
    );
    assert!(
        !text.contains("rtsecret") && !text.contains("kvmuxdevsecret"),
        "{text}"
    );

    let (status, r) = admin(
        &s,
        "DELETE",
        "/_kvmux/credentials/tencent/AKIDruntime",
        None,
    );
    assert_eq!(status, 200, "{r}");
    let refused = signed_tencent(&s, &key, "DescribeEdgeKVNamespaces", json!({"ZoneId": "z"}));
    assert!(code(&refused).starts_with("AuthFailure"), "{refused}");
    assert_eq!(
        admin(
            &s,
            "DELETE",
            "/_kvmux/credentials/tencent/AKIDruntime",
            None
        )
        .0,
        404
    );
    assert_eq!(
        admin(&s, "DELETE", "/_kvmux/credentials/azure/x", None).0,
        400
    );
}

#[test]
fn auto_accounts_give_each_key_id_its_own_account() {
    let s = Server::start(&format!("{MEMORY}[auth]\nauto_accounts = true\n"));
    let a = Key::new("test-a", "kvmuxdevsecret");
    let b = Key::new("test-b", "kvmuxdevsecret");
    for (key, value) in [(&a, "from a"), (&b, "from b")] {
        let r = signed_tencent(
            &s,
            key,
            "CreateEdgeKVNamespace",
            json!({"ZoneId": "z", "Namespace": "same"}),
        );
        assert!(r.get("Error").is_none(), "{r}");
        let r = signed_tencent(
            &s,
            key,
            "EdgeKVPut",
            json!({"ZoneId": "z", "Namespace": "same", "Key": "k", "Value": value}),
        );
        assert!(r.get("Error").is_none(), "{r}");
    }
    for (key, value) in [(&a, "from a"), (&b, "from b")] {
        let r = signed_tencent(
            &s,
            key,
            "EdgeKVGet",
            json!({"ZoneId": "z", "Namespace": "same", "Keys": ["k"]}),
        );
        assert_eq!(r["Data"][0]["Value"], value, "{r}");
    }
    // The wrong secret is refused, auto account or not.
    let wrong = signed_tencent(
        &s,
        &Key::new("test-c", "not-the-secret"),
        "DescribeEdgeKVNamespaces",
        json!({"ZoneId": "z"}),
    );
    assert!(code(&wrong).starts_with("AuthFailure"), "{wrong}");
    // A scoped reset of one test's account leaves the other's.
    let (status, r) = admin(
        &s,
        "POST",
        "/_kvmux/reset",
        Some(json!({"account": "test-a"})),
    );
    assert_eq!((status, removed(&r)), (200, (1, 1)), "{r}");
    let r = signed_tencent(
        &s,
        &b,
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "same", "Keys": ["k"]}),
    );
    assert_eq!(r["Data"][0]["Value"], "from b", "{r}");
    let (_, listed) = admin(&s, "GET", "/_kvmux/credentials", None);
    assert_eq!(
        listed["auto_accounts"],
        json!(["tencent", "aliyun", "huawei"]),
        "{listed}"
    );
}

/// Own credentials, so a 0.0.0.0 listener may start.
const OWN_CREDENTIALS: &str = r#"
[[credentials]]
dialect = "tencent"
id = "AKIDown"
secret = "ownsecret"
account = "own"
"#;

#[test]
fn every_new_endpoint_is_refused_without_the_token_beyond_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = dir.path().join("kvmux.toml");
    std::fs::write(
        &config,
        format!("listen = \"0.0.0.0:{port}\"\n{MEMORY}{OWN_CREDENTIALS}"),
    )
    .expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("KVMUX_LISTEN")
        .env_remove("KVMUX_STORAGE")
        .env_remove("KVMUX_ADMIN_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while agent()
        .get(&format!("http://127.0.0.1:{port}/_kvmux/health"))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(std::time::Instant::now() < deadline, "not healthy");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let calls: [(&str, &str, Value); 9] = [
        ("POST", "/_kvmux/reset", json!({"dialect": "tencent"})),
        ("PUT", "/_kvmux/checkpoints/c", Value::Null),
        ("POST", "/_kvmux/checkpoints/c/restore", Value::Null),
        ("GET", "/_kvmux/checkpoints", Value::Null),
        ("DELETE", "/_kvmux/checkpoints/c", Value::Null),
        ("POST", "/_kvmux/snapshot", Value::Null),
        (
            "POST",
            "/_kvmux/credentials",
            json!({"dialect": "tencent", "id": "x", "secret": "y", "account": "z"}),
        ),
        ("GET", "/_kvmux/credentials", Value::Null),
        ("DELETE", "/_kvmux/credentials/tencent/AKIDown", Value::Null),
    ];
    for (method, path, body) in calls {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, r) = admin_raw(port, method, path, body);
        assert_eq!(status, 401, "{method} {path}: {r}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An auto account is named after the key id, so a key id that names an account with key
/// pairs of its own must not reach that account with the auto secret.
#[test]
fn an_auto_account_never_reaches_an_account_that_has_its_own_keys() {
    let s = Server::start(&format!(
        "{MEMORY}[auth]\nauto_accounts = true\nauto_secret = \"autosecret\"\n\
         [[credentials]]\ndialect = \"tencent\"\nid = \"AKIDprod\"\nsecret = \"prodsecret\"\n\
         account = \"prod\"\n[[credentials]]\ndialect = \"aliyun\"\nid = \"LTAIops\"\n\
         secret = \"opssecret\"\naccount = \"ops\"\n"
    ));
    let prod = Key::new("AKIDprod", "prodsecret");
    let made = signed_tencent(
        &s,
        &prod,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "secret-ns"}),
    );
    assert!(made.get("Error").is_none(), "{made}");
    // The prod account itself, and one that only another dialect's key reaches.
    for id in ["prod", "ops"] {
        let r = signed_tencent(
            &s,
            &Key::new(id, "autosecret"),
            "DescribeEdgeKVNamespaces",
            json!({"ZoneId": "z"}),
        );
        assert!(code(&r).starts_with("AuthFailure"), "{id}: {r}");
        assert!(!r.to_string().contains("secret-ns"), "{id}: {r}");
    }
    let fresh = signed_tencent(
        &s,
        &Key::new("test-x", "autosecret"),
        "DescribeEdgeKVNamespaces",
        json!({"ZoneId": "z"}),
    );
    assert!(fresh.get("Error").is_none(), "{fresh}");
    assert!(!fresh.to_string().contains("secret-ns"), "{fresh}");
}
