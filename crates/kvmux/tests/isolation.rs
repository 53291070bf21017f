//! Tenant isolation, end to end with signatures enforced: two accounts ("dev" and "other", each
//! with its own key pair per dialect) create containers with the SAME names and write the SAME
//! keys with different values. In every dialect, no read (get, list, scan, batch-get), no
//! container listing or description, no usage or quota figure and no delete crosses accounts.

mod adversarial;
mod common;

use adversarial::raw::{exchange, Exchange, RawRequest};
use adversarial::sign::Key;
use adversarial::{sign_for, Vendor};
use common::Server;
use serde_json::{json, Value};

/// Both accounts' keys for every dialect (listing `[[credentials]]` replaces the dev defaults,
/// so the dev ones are listed again), and a Tencent namespace quota small enough to reach.
const CONFIG: &str = r#"
[tencent]
max_namespaces = 3

[[credentials]]
dialect = "tencent"
id = "AKIDkvmuxdev"
secret = "kvmuxdevsecret"
account = "dev"
[[credentials]]
dialect = "aliyun"
id = "LTAIkvmuxdev"
secret = "kvmuxdevsecret"
account = "dev"
[[credentials]]
dialect = "huawei"
id = "HWkvmuxdev"
secret = "kvmuxdevsecret"
account = "dev"
[[credentials]]
dialect = "tencent"
id = "AKIDother"
secret = "othersecret"
account = "other"
[[credentials]]
dialect = "aliyun"
id = "LTAIother"
secret = "othersecret"
account = "other"
[[credentials]]
dialect = "huawei"
id = "HWother"
secret = "othersecret"
account = "other"
"#;

/// One tenant: its key for the dialect under test and the marker in every value it writes.
struct Tenant {
    key: Key,
    /// Upper-case marker that starts every value this tenant writes (`DEV…` / `OTHER…`).
    marker: &'static str,
    /// Values of different lengths per tenant, so usage figures tell them apart.
    pad: usize,
}

fn tenants(vendor: Vendor) -> [Tenant; 2] {
    let other_id = match vendor {
        Vendor::Tencent => "AKIDother",
        Vendor::Aliyun => "LTAIother",
        Vendor::Huawei => "HWother",
    };
    [
        Tenant {
            key: vendor.dev_key(),
            marker: "DEVVALUE",
            pad: 8,
        },
        Tenant {
            key: Key::new(other_id, "othersecret"),
            marker: "OTHERVALUE",
            pad: 4000,
        },
    ]
}

impl Tenant {
    fn value(&self, key: &str) -> String {
        format!("{}-{key}-{}", self.marker, "x".repeat(self.pad))
    }
}

/// Sends a request signed with `key`; returns status and body.
fn send(s: &Server, vendor: Vendor, mut request: RawRequest, key: &Key) -> (u16, Vec<u8>) {
    assert!(sign_for(vendor, &mut request, key), "signable");
    match exchange(s.port, &request) {
        Exchange::Reply(r) => (r.status, r.body),
        other => panic!("{vendor:?}: {other:?}"),
    }
}

/// Asserts the reply shows nothing of the other tenant: no value marker, no name of its own.
fn assert_clean(what: &str, reply: &str, me: &Tenant, them: &Tenant, their_names: &[&str]) {
    assert!(
        !reply.contains(them.marker),
        "{what} as {}: shows {}'s data: {reply}",
        me.key.id,
        them.key.id
    );
    for name in their_names {
        assert!(
            !reply.contains(name),
            "{what} as {}: shows {}'s {name}: {reply}",
            me.key.id,
            them.key.id
        );
    }
}

// ------------------------------------------------------------------------------------- Tencent

fn tencent(s: &Server, t: &Tenant, action: &str, params: Value) -> Value {
    let request = RawRequest::new("POST", "/")
        .header("Host", format!("127.0.0.1:{}", s.port))
        .header("Content-Type", "application/json")
        .header("X-TC-Action", action)
        .header("X-TC-Version", "2022-09-01")
        .body(params.to_string());
    let (status, body) = send(s, Vendor::Tencent, request, &t.key);
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).expect("json");
    v["Response"].clone()
}

fn tencent_ok(s: &Server, t: &Tenant, action: &str, params: Value) -> Value {
    let r = tencent(s, t, action, params);
    assert!(r.get("Error").is_none(), "{action} as {}: {r}", t.key.id);
    r
}

fn tencent_code(r: &Value) -> &str {
    r["Error"]["Code"].as_str().unwrap_or("")
}

#[test]
fn tencent_accounts_share_nothing() {
    let s = Server::start(CONFIG);
    let [dev, other] = tenants(Vendor::Tencent);
    let zone = "zone-iso";
    let ns = json!({"ZoneId": zone, "Namespace": "sharedns"});
    for t in [&dev, &other] {
        tencent_ok(&s, t, "CreateEdgeKVNamespace", ns.clone());
        for k in ["k1", "k2"] {
            tencent_ok(
                &s,
                t,
                "EdgeKVPut",
                json!({"ZoneId": zone, "Namespace": "sharedns", "Key": k, "Value": t.value(k)}),
            );
        }
        let only = format!("only-{}", t.marker.to_lowercase());
        tencent_ok(
            &s,
            t,
            "EdgeKVPut",
            json!({"ZoneId": zone, "Namespace": "sharedns", "Key": only, "Value": t.value(&only)}),
        );
    }
    tencent_ok(
        &s,
        &dev,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": zone, "Namespace": "devonlyns"}),
    );

    for (me, them, theirs) in [
        (&dev, &other, vec!["only-othervalue"]),
        (&other, &dev, vec!["only-devvalue", "devonlyns"]),
    ] {
        let keys = json!(["k1", "k2", "only-devvalue", "only-othervalue"]);
        let got = tencent_ok(
            &s,
            me,
            "EdgeKVGet",
            json!({"ZoneId": zone, "Namespace": "sharedns", "Keys": keys}),
        );
        let text = got.to_string();
        assert!(
            text.contains(&me.value("k1")) && text.contains(&me.value("k2")),
            "{text}"
        );
        assert_clean("EdgeKVGet", &text, me, them, &[]);
        let list = tencent_ok(
            &s,
            me,
            "EdgeKVList",
            json!({"ZoneId": zone, "Namespace": "sharedns", "Limit": 100}),
        );
        let text = list.to_string();
        assert!(
            text.contains(&format!("only-{}", me.marker.to_lowercase())),
            "{text}"
        );
        assert_clean("EdgeKVList", &text, me, them, &theirs);
        let described = tencent_ok(&s, me, "DescribeEdgeKVNamespaces", json!({"ZoneId": zone}));
        assert_clean(
            "DescribeEdgeKVNamespaces",
            &described.to_string(),
            me,
            them,
            &theirs,
        );
        let shared = described["KVNamespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["Namespace"] == "sharedns")
            .cloned()
            .expect("sharedns listed");
        let used = shared["CapacityUsed"].as_i64().unwrap();
        // Three values of this tenant's length (plus keys): never the other tenant's bytes.
        let own = 3 * me.value("k1").len() as i64;
        assert!(
            used >= own && used < own + 200,
            "{} sees CapacityUsed {used}, own data is {own}",
            me.key.id
        );
    }
    let dev_total = tencent_ok(
        &s,
        &dev,
        "DescribeEdgeKVNamespaces",
        json!({"ZoneId": zone}),
    )["TotalCount"]
        .clone();
    let other_total = tencent_ok(
        &s,
        &other,
        "DescribeEdgeKVNamespaces",
        json!({"ZoneId": zone}),
    )["TotalCount"]
        .clone();
    assert_eq!((dev_total, other_total), (json!(2), json!(1)));

    // The namespace quota (3 here) is counted per account.
    tencent_ok(
        &s,
        &dev,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": zone, "Namespace": "devthird"}),
    );
    let full = tencent(
        &s,
        &dev,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": zone, "Namespace": "devfourth"}),
    );
    assert_eq!(
        tencent_code(&full),
        "LimitExceeded.NamespaceLimitExceeded",
        "{full}"
    );
    tencent_ok(
        &s,
        &other,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": zone, "Namespace": "otherb"}),
    );
    tencent_ok(
        &s,
        &other,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": zone, "Namespace": "otherc"}),
    );

    // Deleting in one account leaves the other's key and namespace intact.
    tencent_ok(
        &s,
        &other,
        "EdgeKVDelete",
        json!({"ZoneId": zone, "Namespace": "sharedns", "Keys": ["k1"]}),
    );
    tencent_ok(
        &s,
        &other,
        "DeleteEdgeKVNamespace",
        json!({"ZoneId": zone, "Namespace": "sharedns"}),
    );
    let got = tencent_ok(
        &s,
        &dev,
        "EdgeKVGet",
        json!({"ZoneId": zone, "Namespace": "sharedns", "Keys": ["k1", "k2"]}),
    );
    assert!(got.to_string().contains(&dev.value("k1")), "{got}");
    let gone = tencent(
        &s,
        &other,
        "EdgeKVGet",
        json!({"ZoneId": zone, "Namespace": "sharedns", "Keys": ["k1"]}),
    );
    assert_eq!(
        tencent_code(&gone),
        "ResourceUnavailable.NamespaceNotFound",
        "{gone}"
    );
    // And the other account cannot touch dev's own namespace by name.
    let theirs = tencent(
        &s,
        &other,
        "EdgeKVGet",
        json!({"ZoneId": zone, "Namespace": "devonlyns", "Keys": ["k1"]}),
    );
    assert_eq!(
        tencent_code(&theirs),
        "ResourceUnavailable.NamespaceNotFound",
        "{theirs}"
    );
    let theirs = tencent(
        &s,
        &other,
        "DeleteEdgeKVNamespace",
        json!({"ZoneId": zone, "Namespace": "devonlyns"}),
    );
    assert_eq!(
        tencent_code(&theirs),
        "ResourceUnavailable.NamespaceNotFound",
        "{theirs}"
    );
    tencent_ok(
        &s,
        &dev,
        "EdgeKVList",
        json!({"ZoneId": zone, "Namespace": "devonlyns"}),
    );
}

// -------------------------------------------------------------------------------------- Aliyun

fn pairs(items: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in items {
        ser.append_pair(k, v);
    }
    ser.finish()
}

fn aliyun(
    s: &Server,
    t: &Tenant,
    action: &str,
    query: &[(&str, &str)],
    form: &[(&str, &str)],
) -> (u16, Value) {
    let q = pairs(query);
    let target = if q.is_empty() {
        "/".to_string()
    } else {
        format!("/?{q}")
    };
    let method = if form.is_empty() { "GET" } else { "POST" };
    let mut request = RawRequest::new(method, &target)
        .header("Host", format!("127.0.0.1:{}", s.port))
        .header("x-acs-action", action)
        .header(
            "x-acs-version",
            if action == "AuthorizeFileUpload" {
                "2019-12-19"
            } else {
                "2024-09-10"
            },
        )
        .header("accept", "application/json");
    if !form.is_empty() {
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(pairs(form));
    }
    let (status, body) = send(s, Vendor::Aliyun, request, &t.key);
    (status, serde_json::from_slice(&body).expect("json"))
}

fn aliyun_ok(
    s: &Server,
    t: &Tenant,
    action: &str,
    query: &[(&str, &str)],
    form: &[(&str, &str)],
) -> Value {
    let (status, v) = aliyun(s, t, action, query, form);
    assert_eq!(status, 200, "{action} as {}: {v}", t.key.id);
    v
}

#[test]
fn aliyun_accounts_share_nothing() {
    let s = Server::start(CONFIG);
    let [dev, other] = tenants(Vendor::Aliyun);
    let ns = [("Namespace", "sharedns")];
    for t in [&dev, &other] {
        aliyun_ok(&s, t, "CreateKvNamespace", &ns, &[]);
        for k in ["k1", "k2"] {
            aliyun_ok(
                &s,
                t,
                "PutKv",
                &[("Namespace", "sharedns"), ("Key", k)],
                &[("Value", &t.value(k))],
            );
        }
        let list =
            json!([{"Key": "b1", "Value": t.value("b1")}, {"Key": "b2", "Value": t.value("b2")}])
                .to_string();
        aliyun_ok(&s, t, "BatchPutKv", &ns, &[("KvList", &list)]);
        let only = format!("only-{}", t.marker.to_lowercase());
        aliyun_ok(
            &s,
            t,
            "PutKv",
            &[("Namespace", "sharedns"), ("Key", &only)],
            &[("Value", &t.value(&only))],
        );
    }
    aliyun_ok(
        &s,
        &dev,
        "CreateKvNamespace",
        &[("Namespace", "devonlyns")],
        &[],
    );

    for (me, them, theirs) in [
        (&dev, &other, vec!["only-othervalue"]),
        (&other, &dev, vec!["only-devvalue", "devonlyns"]),
    ] {
        for k in ["k1", "k2", "b1", "b2"] {
            let v = aliyun_ok(
                &s,
                me,
                "GetKv",
                &[("Namespace", "sharedns"), ("Key", k)],
                &[],
            );
            assert_eq!(v["Value"], json!(me.value(k)), "GetKv {k} as {}", me.key.id);
        }
        let their_only = format!("only-{}", them.marker.to_lowercase());
        let (status, v) = aliyun(
            &s,
            me,
            "GetKv",
            &[("Namespace", "sharedns"), ("Key", &their_only)],
            &[],
        );
        assert_eq!(
            (status, v["Code"].as_str()),
            (404, Some("InvalidKey.NotFound")),
            "{v}"
        );
        let listed = aliyun_ok(
            &s,
            me,
            "ListKvs",
            &[("Namespace", "sharedns"), ("PageSize", "100")],
            &[],
        );
        assert_eq!(listed["TotalCount"], json!(5), "{listed}");
        assert_clean("ListKvs", &listed.to_string(), me, them, &theirs);
        let described = aliyun_ok(&s, me, "GetKvNamespace", &ns, &[]);
        let used = described["CapacityUsed"].as_i64().unwrap();
        let own = 5 * me.value("k1").len() as i64;
        assert!(
            used >= own && used < own + 200,
            "{} sees CapacityUsed {used}, own data is {own}",
            me.key.id
        );
        let account = aliyun_ok(&s, me, "GetKvAccount", &[], &[]);
        assert_clean("GetKvAccount", &account.to_string(), me, them, &theirs);
        let account_used = account["CapacityUsed"].as_i64().unwrap();
        assert!(
            account_used >= own && account_used < own + 200,
            "{} account CapacityUsed {account_used}",
            me.key.id
        );
    }
    let used = |t: &Tenant| aliyun_ok(&s, t, "GetKvAccount", &[], &[])["NamespaceUsed"].clone();
    assert_eq!((used(&dev), used(&other)), (json!(2), json!(1)));

    // The 10-namespace quota is counted per account: dev fills it, other still creates.
    for i in 2..10 {
        aliyun_ok(
            &s,
            &dev,
            "CreateKvNamespace",
            &[("Namespace", &format!("devns{i}"))],
            &[],
        );
    }
    let (status, v) = aliyun(
        &s,
        &dev,
        "CreateKvNamespace",
        &[("Namespace", "devns10")],
        &[],
    );
    assert_eq!(
        (status, v["Code"].as_str()),
        (406, Some("InvalidNameSpace.QuotaFull")),
        "{v}"
    );
    aliyun_ok(
        &s,
        &other,
        "CreateKvNamespace",
        &[("Namespace", "otherns2")],
        &[],
    );

    // A high-capacity upload belongs to the account that authorized it: the other account
    // cannot put it into its own namespace by naming its Url.
    let grant = aliyun_ok(&s, &dev, "AuthorizeFileUpload", &[("Product", "ESA")], &[]);
    let object_key = grant["ObjectKey"].as_str().expect("ObjectKey").to_string();
    let content = dev.value("uploaded");
    let object = json!({"Namespace": "sharedns", "Key": "hc", "Value": content}).to_string();
    let mut upload = Vec::new();
    // The grant's fields come before the file, as the SDKs send them; the upload is checked
    // against them before the file is read.
    for (name, value) in [
        ("key", object_key.as_str()),
        (
            "policy",
            grant["EncodedPolicy"].as_str().expect("EncodedPolicy"),
        ),
        ("Signature", grant["Signature"].as_str().expect("Signature")),
    ] {
        upload.extend_from_slice(
            format!("--zz\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    upload.extend_from_slice(format!("--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n{object}\r\n--zz--\r\n").as_bytes());
    let posted = RawRequest::new("POST", "/")
        .header("Host", format!("127.0.0.1:{}", s.port))
        .header("Content-Type", "multipart/form-data; boundary=zz")
        .body(upload);
    match exchange(s.port, &posted) {
        Exchange::Reply(r) => assert!(
            (200..300).contains(&r.status),
            "upload: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ),
        other => panic!("upload: {other:?}"),
    }
    let url = format!("http://http://127.0.0.1:{}/{object_key}", s.port);
    let hc = [
        ("Namespace", "sharedns"),
        ("Key", "hc"),
        ("Url", url.as_str()),
    ];
    let (status, v) = aliyun(&s, &other, "PutKvWithHighCapacity", &hc, &[]);
    assert_eq!(
        (status, v["Code"].as_str()),
        (403, Some("Unauthorized.InvalidParameters")),
        "{v}"
    );
    aliyun_ok(&s, &dev, "PutKvWithHighCapacity", &hc, &[]);
    let v = aliyun_ok(
        &s,
        &dev,
        "GetKv",
        &[("Namespace", "sharedns"), ("Key", "hc")],
        &[],
    );
    assert_eq!(v["Value"], json!(content));
    let (status, v) = aliyun(
        &s,
        &other,
        "GetKv",
        &[("Namespace", "sharedns"), ("Key", "hc")],
        &[],
    );
    assert_eq!(
        (status, v["Code"].as_str()),
        (404, Some("InvalidKey.NotFound")),
        "{v}"
    );

    // Deletes in one account leave the other's data intact.
    aliyun_ok(
        &s,
        &other,
        "DeleteKv",
        &[("Namespace", "sharedns"), ("Key", "k1")],
        &[],
    );
    aliyun_ok(
        &s,
        &other,
        "BatchDeleteKv",
        &ns,
        &[("Keys", r#"["b1","b2"]"#)],
    );
    for k in ["k1", "b1", "b2"] {
        let v = aliyun_ok(
            &s,
            &dev,
            "GetKv",
            &[("Namespace", "sharedns"), ("Key", k)],
            &[],
        );
        assert_eq!(v["Value"], json!(dev.value(k)));
    }
    aliyun_ok(&s, &other, "DeleteKvNamespace", &ns, &[]);
    let v = aliyun_ok(
        &s,
        &dev,
        "GetKv",
        &[("Namespace", "sharedns"), ("Key", "k2")],
        &[],
    );
    assert_eq!(v["Value"], json!(dev.value("k2")));
    let (status, v) = aliyun(
        &s,
        &other,
        "GetKv",
        &[("Namespace", "sharedns"), ("Key", "k2")],
        &[],
    );
    assert_eq!(
        (status, v["Code"].as_str()),
        (404, Some("InvalidNameSpace.NotFound")),
        "{v}"
    );
    let (status, v) = aliyun(
        &s,
        &other,
        "DeleteKvNamespace",
        &[("Namespace", "devonlyns")],
        &[],
    );
    assert_eq!(
        (status, v["Code"].as_str()),
        (404, Some("InvalidNameSpace.NotFound")),
        "{v}"
    );
    aliyun_ok(
        &s,
        &dev,
        "GetKvNamespace",
        &[("Namespace", "devonlyns")],
        &[],
    );
}

// -------------------------------------------------------------------------------------- Huawei

fn huawei(
    s: &Server,
    t: &Tenant,
    store: Option<&str>,
    op: &str,
    body: bson::Document,
) -> (u16, bson::Document) {
    let host = match store {
        Some(store) => format!("{store}.127.0.0.1:{}", s.port),
        None => format!("127.0.0.1:{}", s.port),
    };
    let request = RawRequest::new("POST", &format!("/v1/{op}"))
        .header("Host", host)
        .header("Content-Type", "application/bson")
        .body(body.to_vec().expect("bson"));
    let (status, body) = send(s, Vendor::Huawei, request, &t.key);
    (
        status,
        bson::Document::from_reader(&mut body.as_slice()).expect("bson reply"),
    )
}

fn huawei_ok(
    s: &Server,
    t: &Tenant,
    store: Option<&str>,
    op: &str,
    body: bson::Document,
) -> bson::Document {
    let (status, doc) = huawei(s, t, store, op, body);
    assert_eq!(status, 200, "{op} as {}: {doc}", t.key.id);
    doc
}

fn create_table(s: &Server, t: &Tenant, store: &str, table: &str) -> (u16, bson::Document) {
    let (status, doc) = huawei(
        s,
        t,
        Some(store),
        "create-table",
        bson::doc! {"table_name": table, "primary_key_schema": {"shard_key_fields": [{"name": "id"}]}},
    );
    if status != 200 {
        println!(
            "create-table {store}/{table} as {}: {status} {doc}",
            t.key.id
        );
    }
    (status, doc)
}

#[test]
fn huawei_accounts_share_nothing() {
    use bson::doc;
    let s = Server::start(CONFIG);
    let [dev, other] = tenants(Vendor::Huawei);
    let store = Some("isostore");
    for t in [&dev, &other] {
        assert_eq!(create_table(&s, t, "isostore", "shared").0, 200);
        for k in ["k1", "k2", &format!("only-{}", t.marker.to_lowercase())] {
            huawei_ok(
                &s,
                t,
                store,
                "put-kv",
                doc! {"table_name": "shared", "kv_doc": {"id": k, "v": t.value(k)}},
            );
        }
    }
    assert_eq!(create_table(&s, &dev, "isostore", "devonlytable").0, 200);
    assert_eq!(create_table(&s, &dev, "devonlystore", "tbl").0, 200);

    for (me, them, theirs) in [
        (&dev, &other, vec!["only-othervalue"]),
        (
            &other,
            &dev,
            vec!["only-devvalue", "devonlytable", "devonlystore"],
        ),
    ] {
        for k in ["k1", "k2"] {
            let got = huawei_ok(
                &s,
                me,
                store,
                "get-kv",
                doc! {"table_name": "shared", "primary_key": {"id": k}},
            );
            assert_eq!(
                got.get_document("kv_doc").unwrap().get_str("v").unwrap(),
                me.value(k)
            );
        }
        let their_only = format!("only-{}", them.marker.to_lowercase());
        let (status, e) = huawei(
            &s,
            me,
            store,
            "get-kv",
            doc! {"table_name": "shared", "primary_key": {"id": &their_only}},
        );
        assert_eq!(
            (status, e.get_str("error_code").ok()),
            (404, Some("KVS.00001016")),
            "{e}"
        );
        let scanned = huawei_ok(
            &s,
            me,
            store,
            "scan-kv",
            doc! {"table_name": "shared", "limit": 100i32},
        );
        let text = scanned.to_string();
        assert!(text.contains(&me.value("k1")), "{text}");
        assert_clean("scan-kv", &text, me, them, &theirs);
        let batch = huawei_ok(
            &s,
            me,
            store,
            "batch-get-kv",
            doc! {"batch_get_kv_opers": [{"table_name": "shared", "get_kv_opers": [
                {"get_kv": {"oper_id": 1i32, "primary_key": {"id": "k1"}}},
                {"get_kv": {"oper_id": 2i32, "primary_key": {"id": "k2"}}},
                {"get_kv": {"oper_id": 3i32, "primary_key": {"id": &their_only}}},
            ]}]},
        );
        let text = batch.to_string();
        assert!(
            text.contains(&me.value("k1")) && text.contains(&me.value("k2")),
            "{text}"
        );
        assert_clean("batch-get-kv", &text, me, them, &theirs);
        let tables = huawei_ok(&s, me, store, "list-table", doc! {});
        assert_clean("list-table", &tables.to_string(), me, them, &theirs);
        let stores = huawei_ok(&s, me, None, "list-store", doc! {});
        assert_clean("list-store", &stores.to_string(), me, them, &theirs);
    }
    let (status, e) = huawei(
        &s,
        &other,
        store,
        "describe-table",
        doc! {"table_name": "devonlytable"},
    );
    assert_eq!(
        (status, e.get_str("error_code").ok()),
        (404, Some("KVS.00001015")),
        "{e}"
    );

    // The 25-store quota is counted per account: dev fills it (2 stores so far), other still
    // creates a new one.
    for i in 2..25 {
        assert_eq!(
            create_table(&s, &dev, &format!("devstore{i:02}"), "tbl").0,
            200,
            "store {i}"
        );
    }
    let (status, e) = create_table(&s, &dev, "devstore25", "tbl");
    assert_eq!(
        (status, e.get_str("error_code").ok()),
        (400, Some("KVS.00001007")),
        "{e}"
    );
    assert_eq!(create_table(&s, &other, "otherstore2", "tbl").0, 200);

    // Deletes in one account leave the other's data intact.
    huawei_ok(
        &s,
        &other,
        store,
        "delete-kv",
        doc! {"table_name": "shared", "primary_key": {"id": "k1"}},
    );
    huawei_ok(
        &s,
        &other,
        store,
        "delete-table",
        doc! {"table_name": "shared"},
    );
    let got = huawei_ok(
        &s,
        &dev,
        store,
        "get-kv",
        doc! {"table_name": "shared", "primary_key": {"id": "k1"}},
    );
    assert_eq!(
        got.get_document("kv_doc").unwrap().get_str("v").unwrap(),
        dev.value("k1")
    );
    let (status, e) = huawei(
        &s,
        &other,
        store,
        "get-kv",
        doc! {"table_name": "shared", "primary_key": {"id": "k2"}},
    );
    assert_eq!(
        (status, e.get_str("error_code").ok()),
        (404, Some("KVS.00001015")),
        "{e}"
    );
    let (status, e) = huawei(
        &s,
        &other,
        store,
        "delete-table",
        doc! {"table_name": "devonlytable"},
    );
    assert_eq!(
        (status, e.get_str("error_code").ok()),
        (404, Some("KVS.00001015")),
        "{e}"
    );
    huawei_ok(
        &s,
        &dev,
        store,
        "describe-table",
        doc! {"table_name": "devonlytable"},
    );
}

/// The checks above can fail: a reply carrying the other tenant's marker or names is caught.
#[test]
fn the_cross_account_check_catches_leaks() {
    let [dev, other] = tenants(Vendor::Tencent);
    let leak =
        std::panic::catch_unwind(|| assert_clean("x", &other.value("k1"), &dev, &other, &[]));
    assert!(leak.is_err());
    let leak =
        std::panic::catch_unwind(|| assert_clean("x", "devonlyns", &other, &dev, &["devonlyns"]));
    assert!(leak.is_err());
    assert_clean("x", &dev.value("k1"), &dev, &other, &["only-othervalue"]);
}
