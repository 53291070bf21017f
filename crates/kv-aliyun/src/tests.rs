//! Dialect-level tests: the shared signature vectors, claims() disjointness, the coverage table,
//! and end-to-end `serve()` scenarios against a real engine on a temp redb file.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use kv_dialect::testing::Setup;
use kv_dialect::{Answer, AuthMode, Credential, Dialect, DialectContext, RequestInfo};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth;
use crate::router::{ACTIONS, DCDN_VERSION, ESA_VERSION, OPENPLATFORM_VERSION};
use crate::AliyunDialect;

// ---------------------------------------------------------------- shared vectors

use kv_testkit::vectors;

struct Vector {
    name: String,
    method: String,
    target: String,
    headers: HeaderMap,
    body: Vec<u8>,
    now: u64,
    valid: bool,
    algorithm: String,
    canonical_request: String,
    string_to_sign: String,
    id: String,
    secret: String,
}

fn vector(v: &Value) -> Vector {
    let mut headers = HeaderMap::new();
    for h in v["headers"].as_array().unwrap() {
        let name = HeaderName::from_bytes(h[0].as_str().unwrap().as_bytes()).unwrap();
        let value = HeaderValue::from_str(h[1].as_str().unwrap()).unwrap();
        headers.append(name, value);
    }
    Vector {
        name: v["name"].as_str().unwrap().into(),
        method: v["method"].as_str().unwrap().into(),
        target: v["target"].as_str().unwrap().into(),
        headers,
        body: base64::engine::general_purpose::STANDARD
            .decode(v["body_b64"].as_str().unwrap())
            .unwrap(),
        now: v["now_unix"].as_u64().unwrap(),
        valid: v["valid"].as_bool().unwrap(),
        algorithm: v["algorithm"].as_str().unwrap().into(),
        canonical_request: v["canonical_request"].as_str().unwrap().into(),
        string_to_sign: v["string_to_sign"].as_str().unwrap().into(),
        id: v["credential"]["id"].as_str().unwrap().into(),
        secret: v["credential"]["secret"].as_str().unwrap().into(),
    }
}

fn parts_of(v: &Vector) -> http::request::Parts {
    let mut b = Request::builder()
        .method(v.method.as_str())
        .uri(v.target.as_str());
    for (k, val) in &v.headers {
        b = b.header(k, val);
    }
    b.body(()).unwrap().into_parts().0
}

#[test]
fn every_aliyun_vector_verifies_or_is_refused_with_the_recorded_strings() {
    let all = vectors("aliyun");
    assert_eq!(all.len(), 47);
    let (mut ok, mut refused) = (0, 0);
    for raw in &all {
        let v = vector(raw);
        let parts = parts_of(&v);
        let query = parts
            .uri
            .query()
            .map(|q| crate::wire::decode_form(q.as_bytes()))
            .unwrap_or_default();
        let (id, secret) = (v.id.clone(), v.secret.clone());
        let secret_of = move |k: &str| (k == id).then(|| secret.clone());
        let (canonical, sts, result) = match v.algorithm.as_str() {
            "ACS3-HMAC-SHA256" => {
                let authz = v.headers["authorization"].to_str().unwrap();
                let a = auth::parse_acs3_authorization(authz).unwrap();
                let declared = v.headers["x-acs-content-sha256"].to_str().unwrap();
                let (c, s) = auth::v3_canonical(
                    &v.method,
                    &query,
                    &v.headers,
                    &a.signed_headers,
                    declared,
                    false,
                );
                let r = auth::verify_v3(&v.method, &query, &v.headers, &v.body, &secret_of, v.now);
                (c, s, r)
            }
            "aliyun-rpc-v2-HMAC-SHA1" => {
                let mut params = query.clone();
                let is_form = v
                    .headers
                    .get("content-type")
                    .is_some_and(|c| c.to_str().unwrap().starts_with("application/x-www-form"));
                if is_form {
                    params.extend(crate::wire::decode_form(&v.body));
                }
                let (c, s) = auth::v2_canonical(&v.method, &params);
                let r = auth::verify_v2(&v.method, &params, &secret_of, v.now);
                (c, s, r)
            }
            other => panic!("{}: unexpected algorithm {other}", v.name),
        };
        assert_eq!(canonical, v.canonical_request, "{}: canonical", v.name);
        assert_eq!(sts, v.string_to_sign, "{}: string to sign", v.name);
        if v.valid {
            let caller = result.unwrap_or_else(|r| panic!("{}: refused: {r:?}", v.name));
            assert_eq!(caller.access_key_id, v.id);
            assert!(!caller.nonce.is_empty(), "{}: nonce", v.name);
            ok += 1;
        } else {
            let refusal = result
                .err()
                .unwrap_or_else(|| panic!("{}: accepted", v.name));
            assert_eq!(
                refusal.error.code, "SignatureDoesNotMatch",
                "{}: {:?}",
                v.name, refusal.diagnostics.reason
            );
            if v.algorithm.starts_with("aliyun-rpc") {
                assert!(refusal
                    .error
                    .message
                    .contains(&format!("server string to sign is:{}", v.string_to_sign)));
            }
            refused += 1;
        }
    }
    assert_eq!((ok, refused), (36, 11));
}

#[test]
fn vectors_outside_the_window_are_expired_and_an_unknown_key_is_not_found() {
    let v = vector(&vectors("aliyun")[0]);
    let query = crate::wire::decode_form(b"Base64=False&ExpirationTtl=3600&Key=k1&Namespace=ns1");
    let secret_of = |k: &str| (k == "testid").then(|| "testsecret".to_string());
    let late = auth::verify_v3(
        &v.method,
        &query,
        &v.headers,
        &v.body,
        &secret_of,
        v.now + 901,
    )
    .unwrap_err();
    assert_eq!(late.error.code, "InvalidTimeStamp.Expired");
    let nobody = |_: &str| None;
    let unknown =
        auth::verify_v3(&v.method, &query, &v.headers, &v.body, &nobody, v.now).unwrap_err();
    assert_eq!(unknown.error.code, "InvalidAccessKeyId.NotFound");
    assert_eq!(unknown.error.status, 404);
}

#[test]
fn claims_every_aliyun_vector_and_no_other_vendors() {
    for raw in vectors("aliyun") {
        let v = vector(&raw);
        assert!(crate::claims(&parts_of(&v)), "{} not claimed", v.name);
    }
    for vendor in ["tencent", "huawei"] {
        for raw in vectors(vendor) {
            let v = vector(&raw);
            assert!(!crate::claims(&parts_of(&v)), "{vendor} {} claimed", v.name);
        }
    }
}

// ---------------------------------------------------------------- coverage

#[test]
fn coverage_md_lists_exactly_the_routed_actions() {
    // | `Action` | product | status | notes |
    kv_testkit::assert_coverage_lists("aliyun", 3, ACTIONS.iter().map(|e| e.0));
}

// ---------------------------------------------------------------- serve()

const ID: &str = "LTAIkvmuxdev";
const SECRET: &str = "kvmuxdevsecret";

type Harness = kv_dialect::testing::Harness<AliyunDialect>;

fn harness_with(mode: AuthMode, rate_limits: bool) -> Harness {
    harness_full(
        mode,
        rate_limits,
        serde_json::json!({"upload_endpoint": "127.0.0.1:9999"}),
    )
}

fn harness_full(mode: AuthMode, rate_limits: bool, options: Value) -> Harness {
    Setup::new(&[
        (ID, SECRET, "dev"),
        ("LTAIother", "othersecret", "other"),
        ("LTAIspaced", "spacedsecret", "bad account"),
    ])
    .auth_mode(mode)
    .options(options)
    .vendor_rate_limits(rate_limits)
    .build(AliyunDialect::new)
}

fn harness() -> Harness {
    harness_with(AuthMode::Enforce, false)
}

fn now_iso() -> String {
    crate::wire::iso_utc(kv_core::clock::wall_clock_secs() * 1000)
}

/// Signs like tea-openapi's V3: every header present is signed.
fn v3(
    method: &str,
    action: &str,
    version: &str,
    query: &[(&str, &str)],
    form: &[(&str, &str)],
    id: &str,
    secret: &str,
) -> Request<Bytes> {
    v3_custom(
        method,
        action,
        version,
        query,
        form,
        (id, secret),
        |_| {},
        &[],
    )
}

/// [`v3`] with the headers changed by `tweak` before signing, and `unsigned` left out of
/// SignedHeaders (an absent header is not sent at all).
#[allow(clippy::too_many_arguments)]
fn v3_custom(
    method: &str,
    action: &str,
    version: &str,
    query: &[(&str, &str)],
    form: &[(&str, &str)],
    (id, secret): (&str, &str),
    tweak: impl FnOnce(&mut HeaderMap),
    unsigned: &[&str],
) -> Request<Bytes> {
    let qs = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let body = if form.is_empty() {
        String::new()
    } else {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish()
    };
    let mut headers = HeaderMap::new();
    let mut set = |k: &'static str, v: String| {
        headers.insert(k, HeaderValue::from_str(&v).unwrap());
    };
    set("host", "127.0.0.1:9090".into());
    set("x-acs-action", action.into());
    set("x-acs-version", version.into());
    set("x-acs-date", now_iso());
    set(
        "x-acs-signature-nonce",
        uuid::Uuid::new_v4().simple().to_string(),
    );
    set(
        "x-acs-content-sha256",
        hex::encode(Sha256::digest(body.as_bytes())),
    );
    if !body.is_empty() {
        set("content-type", "application/x-www-form-urlencoded".into());
    }
    tweak(&mut headers);
    let signed: Vec<String> = headers
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| !unsigned.contains(&k.as_str()))
        .collect();
    let decoded = crate::wire::decode_form(qs.as_bytes());
    let declared = hex::encode(Sha256::digest(body.as_bytes()));
    let authz = auth::sign_v3(method, &decoded, &headers, &signed, &declared, id, secret);
    let uri = if qs.is_empty() {
        "/".to_string()
    } else {
        format!("/?{qs}")
    };
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in &headers {
        b = b.header(k, v);
    }
    b.header("authorization", authz)
        .body(Bytes::from(body))
        .unwrap()
}

/// Signs like the legacy SDK's RPC V2 (query) with a form body.
fn v2(
    method: &str,
    action: &str,
    version: &str,
    query: &[(&str, &str)],
    form: &[(&str, &str)],
    secret: &str,
) -> Request<Bytes> {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let ts = now_iso();
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("Action", action),
        ("Version", version),
        ("Format", "JSON"),
        ("AccessKeyId", ID),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce.as_str()),
        ("SignatureType", ""),
        ("Timestamp", ts.as_str()),
    ] {
        q.push((k.into(), v.into()));
    }
    let mut all = q.clone();
    all.extend(form.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    q.push(("Signature".into(), auth::sign_v2(method, &all, secret)));
    let qs = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q)
        .finish();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut b = Request::builder()
        .method(method)
        .uri(format!("/?{qs}"))
        .header("host", "127.0.0.1:9090");
    if !form.is_empty() {
        b = b.header("content-type", "application/x-www-form-urlencoded");
    }
    b.body(Bytes::from(body)).unwrap()
}

async fn call(h: &Harness, req: Request<Bytes>) -> (u16, Value, RequestInfo) {
    let Answer {
        response: resp,
        info,
    } = h.dialect.serve_request(req).await;
    let status = resp.status().as_u16();
    let rid = resp.headers()["x-acs-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["RequestId"].as_str(), Some(rid.as_str()));
    assert_eq!(uuid::Uuid::parse_str(&rid).unwrap().get_version_num(), 4);
    (status, body, info)
}

async fn esa(
    h: &Harness,
    method: &str,
    action: &str,
    query: &[(&str, &str)],
    form: &[(&str, &str)],
) -> (u16, Value) {
    let (s, b, _) = call(h, v3(method, action, ESA_VERSION, query, form, ID, SECRET)).await;
    (s, b)
}

async fn dcdn(
    h: &Harness,
    method: &str,
    action: &str,
    query: &[(&str, &str)],
    form: &[(&str, &str)],
) -> (u16, Value) {
    let (s, b, _) = call(h, v3(method, action, DCDN_VERSION, query, form, ID, SECRET)).await;
    (s, b)
}

async fn call2(h: &Harness, req: Request<Bytes>) -> (u16, Value) {
    let (s, b, _) = call(h, req).await;
    (s, b)
}

fn code(b: &Value) -> &str {
    b["Code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn esa_kv_lifecycle() {
    let h = harness();
    let (s, b) = esa(
        &h,
        "POST",
        "CreateKvNamespace",
        &[],
        &[("Namespace", "ns1"), ("Description", "d")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["Namespace"], "ns1");
    assert_eq!(b["Status"], "online");
    assert!(b["NamespaceId"].is_string());

    let (s, b) = esa(
        &h,
        "POST",
        "PutKv",
        &[("Namespace", "ns1"), ("Key", "k1")],
        &[("Value", "hello world & more/ä")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["Length"], "21");
    assert_eq!(b["Value"], "hello world & more/ä");

    let (s, b) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "ns1"), ("Key", "k1")],
        &[],
    )
    .await;
    assert_eq!(
        (s, b["Value"].as_str()),
        (200, Some("hello world & more/ä"))
    );

    let (_, b) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "ns1"), ("Key", "k1"), ("Base64", "True")],
        &[],
    )
    .await;
    assert_eq!(
        b["Value"].as_str().unwrap(),
        base64::engine::general_purpose::STANDARD.encode("hello world & more/ä")
    );

    // Base64 put stores the decoded bytes
    let (s, b) = esa(
        &h,
        "POST",
        "PutKv",
        &[("Namespace", "ns1"), ("Key", "b64"), ("Base64", "true")],
        &[("Value", "aGk=")],
    )
    .await;
    assert_eq!((s, b["Length"].as_str()), (200, Some("2")));
    let (_, b) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "ns1"), ("Key", "b64")],
        &[],
    )
    .await;
    assert_eq!(b["Value"], "hi");

    // TTL and detail
    let (s, _) = esa(
        &h,
        "POST",
        "PutKv",
        &[
            ("Namespace", "ns1"),
            ("Key", "ttl"),
            ("ExpirationTtl", "100"),
            ("Expiration", "1"),
        ],
        &[("Value", "v")],
    )
    .await;
    assert_eq!(s, 200);
    let (_, b) = esa(
        &h,
        "POST",
        "GetKvDetail",
        &[("Namespace", "ns1"), ("Key", "ttl")],
        &[],
    )
    .await;
    assert_eq!(b["ExpirationTtl"], "100");
    h.engine.clock().advance(101);
    let (s, b) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "ns1"), ("Key", "ttl")],
        &[],
    )
    .await;
    assert_eq!((s, code(&b)), (404, "InvalidKey.NotFound"));

    // list
    for k in ["a1", "a2", "a3", "b1"] {
        esa(
            &h,
            "POST",
            "PutKv",
            &[("Namespace", "ns1"), ("Key", k)],
            &[("Value", "x")],
        )
        .await;
    }
    let (s, b) = esa(
        &h,
        "GET",
        "ListKvs",
        &[
            ("Namespace", "ns1"),
            ("Prefix", "a"),
            ("PageSize", "2"),
            ("PageNumber", "2"),
        ],
        &[],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["TotalCount"], 3);
    assert_eq!(b["PageNumber"], 2);
    assert_eq!(b["Keys"].as_array().unwrap().len(), 1);
    assert_eq!(b["Keys"][0]["Name"], "a3");
    assert!(b["Keys"][0]["UpdateTime"].as_str().unwrap().ends_with('Z'));
    let (s, b) = esa(
        &h,
        "GET",
        "ListKvs",
        &[("Namespace", "ns1"), ("PageSize", "101")],
        &[],
    )
    .await;
    assert_eq!((s, code(&b)), (400, "InvalidParameters"));
    let (s, _) = esa(
        &h,
        "GET",
        "ListKvs",
        &[
            ("Namespace", "ns1"),
            ("PageSize", "100"),
            ("PageNumber", "501"),
        ],
        &[],
    )
    .await;
    assert_eq!(s, 400);

    // delete
    let (s, _) = esa(
        &h,
        "GET",
        "DeleteKv",
        &[("Namespace", "ns1"), ("Key", "a1")],
        &[],
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = esa(
        &h,
        "GET",
        "DeleteKv",
        &[("Namespace", "ns1"), ("Key", "a1")],
        &[],
    )
    .await;
    assert_eq!((s, code(&b)), (404, "InvalidKey.NotFound"));

    // namespace and account
    let (s, b) = esa(&h, "GET", "GetKvNamespace", &[("Namespace", "ns1")], &[]).await;
    assert_eq!(s, 200);
    assert_eq!(b["Capacity"], 1 << 30);
    assert!(b["CapacityUsed"].as_i64().unwrap() > 0);
    let (_, b) = esa(&h, "GET", "GetKvAccount", &[], &[]).await;
    assert_eq!(b["NamespaceUsed"], 1);
    assert_eq!(b["NamespaceQuota"], 10);
    assert_eq!(b["NamespaceList"][0]["Namespace"], "ns1");
    let (_, b) = esa(&h, "GET", "DescribeKvAccountStatus", &[], &[]).await;
    assert_eq!(b["Status"], "online");
    let (s, _) = esa(
        &h,
        "POST",
        "DeleteKvNamespace",
        &[("Namespace", "ns1")],
        &[],
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "ns1"), ("Key", "a2")],
        &[],
    )
    .await;
    assert_eq!((s, code(&b)), (404, "InvalidNameSpace.NotFound"));
}

#[tokio::test]
async fn errors_carry_the_vendor_codes_and_statuses() {
    let h = harness();
    esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "ns")]).await;
    type Pairs<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Pairs, Pairs, u16, &str)> = vec![
        (
            "PutKv",
            vec![("Namespace", "ns"), ("Key", "a b")],
            vec![("Value", "v")],
            400,
            "InvalidKey.Malformed",
        ),
        (
            "PutKv",
            vec![("Namespace", "ns"), ("Key", "")],
            vec![("Value", "v")],
            400,
            "InvalidKey.Malformed",
        ),
        (
            "PutKv",
            vec![("Namespace", "bad ns"), ("Key", "k")],
            vec![("Value", "v")],
            400,
            "InvalidNameSpace.Malformed",
        ),
        (
            "PutKv",
            vec![("Namespace", "nope"), ("Key", "k")],
            vec![("Value", "v")],
            404,
            "InvalidNameSpace.NotFound",
        ),
        (
            "PutKv",
            vec![("Namespace", "ns")],
            vec![("Value", "v")],
            400,
            "MissingParameter",
        ),
        (
            "PutKv",
            vec![("Namespace", "ns"), ("Key", "k"), ("Expiration", "1")],
            vec![("Value", "v")],
            400,
            "InvalidParameters",
        ),
        (
            "BatchDeleteKv",
            vec![("Namespace", "ns")],
            vec![("Keys", "not json")],
            400,
            "InvalidParameters",
        ),
    ];
    for (action, q, f, status, c) in cases {
        let (s, b) = esa(&h, "POST", action, &q, &f).await;
        assert_eq!((s, code(&b)), (status, c), "{action} {q:?}: {b}");
        assert_eq!(b["HostId"], "esa.aliyuncs.com");
        assert!(b["Recommend"].as_str().unwrap().contains(c));
    }
    let long = "k".repeat(513);
    let (s, b) = esa(
        &h,
        "POST",
        "PutKv",
        &[("Namespace", "ns"), ("Key", &long)],
        &[("Value", "v")],
    )
    .await;
    assert_eq!((s, code(&b)), (400, "InvalidKey.ExceedsMaximum"));
    let big = "v".repeat(2_000_001);
    let (s, b) = esa(
        &h,
        "POST",
        "PutKv",
        &[("Namespace", "ns"), ("Key", "k")],
        &[("Value", &big)],
    )
    .await;
    assert_eq!((s, code(&b)), (400, "InvalidValue.ExceedsMaximum"));
    let exact = "v".repeat(2_000_000);
    let (s, _) = esa(
        &h,
        "POST",
        "PutKv",
        &[("Namespace", "ns"), ("Key", "k")],
        &[("Value", &exact)],
    )
    .await;
    assert_eq!(s, 200);
    let keys: Vec<String> = (0..10_001).map(|i| format!("k{i}")).collect();
    let keys = serde_json::to_string(&keys).unwrap();
    let (s, b) = esa(
        &h,
        "POST",
        "BatchDeleteKv",
        &[("Namespace", "ns")],
        &[("Keys", &keys)],
    )
    .await;
    assert_eq!((s, code(&b)), (400, "InvalidKey.TooManyKeys"));
    let (s, b) = esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "ns")]).await;
    assert_eq!((s, code(&b)), (406, "InvalidNameSpace.Duplicate"));
    for i in 1..10 {
        let (s, _) = esa(
            &h,
            "POST",
            "CreateKvNamespace",
            &[],
            &[("Namespace", &format!("n{i}"))],
        )
        .await;
        assert_eq!(s, 200);
    }
    let (s, b) = esa(
        &h,
        "POST",
        "CreateKvNamespace",
        &[],
        &[("Namespace", "eleventh")],
    )
    .await;
    assert_eq!((s, code(&b)), (406, "InvalidNameSpace.QuotaFull"));
    // DCDN has its own quota and its own spelling of the parameter error
    let (s, _) = dcdn(
        &h,
        "POST",
        "PutDcdnKvNamespace",
        &[],
        &[("Namespace", "eleventh")],
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = dcdn(
        &h,
        "GET",
        "ListDcdnKv",
        &[("Namespace", "eleventh"), ("PageNumber", "0")],
        &[],
    )
    .await;
    assert_eq!((s, code(&b)), (400, "Invalid.Parameter"));
    assert_eq!(b["HostId"], "dcdn.aliyuncs.com");
    // unknown action
    let (s, b) = esa(&h, "GET", "NoSuchAction", &[], &[]).await;
    assert_eq!((s, code(&b)), (404, "InvalidAction.NotFound"));
}

#[tokio::test]
async fn esa_and_dcdn_namespaces_are_apart_and_accounts_too() {
    let h = harness();
    esa(
        &h,
        "POST",
        "CreateKvNamespace",
        &[],
        &[("Namespace", "shared")],
    )
    .await;
    let (s, b) = dcdn(
        &h,
        "POST",
        "PutDcdnKv",
        &[("Namespace", "shared"), ("Key", "k")],
        &[("Value", "v")],
    )
    .await;
    assert_eq!((s, code(&b)), (404, "InvalidNameSpace.NotFound"));
    dcdn(
        &h,
        "POST",
        "PutDcdnKvNamespace",
        &[],
        &[("Namespace", "shared")],
    )
    .await;
    let (s, b) = dcdn(
        &h,
        "POST",
        "PutDcdnKv",
        &[
            ("Namespace", "shared"),
            ("Key", "k"),
            ("ExpirationTtl", "60"),
        ],
        &[("Value", "dcdn")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["Length"], 4);
    let (s, b) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "shared"), ("Key", "k")],
        &[],
    )
    .await;
    assert_eq!((s, code(&b)), (404, "InvalidKey.NotFound"));
    let (_, b) = dcdn(
        &h,
        "POST",
        "GetDcdnKvStatus",
        &[("Namespace", "shared"), ("Key", "k")],
        &[],
    )
    .await;
    assert_eq!(b["Complete"], true);
    assert!(b["Expire"].as_str().unwrap().ends_with("+08:00"));
    let (_, b) = dcdn(
        &h,
        "GET",
        "DescribeDcdnKvNamespace",
        &[("Namespace", "shared")],
        &[],
    )
    .await;
    assert_eq!(b["Mode"], "Normal");
    // another account sees nothing
    let (s, b, info) = call(
        &h,
        v3(
            "GET",
            "GetDcdnKv",
            DCDN_VERSION,
            &[("Namespace", "shared"), ("Key", "k")],
            &[],
            "LTAIother",
            "othersecret",
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (404, "InvalidNameSpace.NotFound"));
    assert_eq!(info.account.as_deref(), Some("other"));
}

#[tokio::test]
async fn batch_put_reports_keys_one_by_one() {
    let h = harness();
    esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "ns")]).await;
    let kv = r#"[{"Key":"k1","Value":"v1","ExpirationTtl":60},{"Key":"bad key","Value":"x"},{"Key":"k2","Value":"v2"},{"Key":"k3","Value":5}]"#;
    let (s, b) = esa(
        &h,
        "POST",
        "BatchPutKv",
        &[("Namespace", "ns")],
        &[("KvList", kv)],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["SuccessKeys"], serde_json::json!(["k1", "k2"]));
    assert_eq!(b["FailKeys"], serde_json::json!(["bad key", "k3"]));
    let (_, b) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "ns"), ("Key", "k2")],
        &[],
    )
    .await;
    assert_eq!(b["Value"], "v2");
    let (s, b) = esa(
        &h,
        "POST",
        "BatchDeleteKv",
        &[("Namespace", "ns")],
        &[("Keys", r#"["k1","k2","a/b"]"#)],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["SuccessKeys"], serde_json::json!(["k1", "k2"]));
    assert_eq!(b["FailKeys"], serde_json::json!(["a/b"]));
    let (s, _) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "ns"), ("Key", "k1")],
        &[],
    )
    .await;
    assert_eq!(s, 404);
}

/// An upload with a made-up policy and signature (never granted).
fn multipart(key: &str, file: &[u8]) -> Request<Bytes> {
    multipart_with(key, "p", "x", file)
}

/// An upload carrying the grant an AuthorizeFileUpload reply handed out, as the SDK sends it.
fn multipart_granted(auth: &Value, file: &[u8]) -> Request<Bytes> {
    multipart_with(
        auth["ObjectKey"].as_str().unwrap(),
        auth["EncodedPolicy"].as_str().unwrap(),
        auth["Signature"].as_str().unwrap(),
        file,
    )
}

fn multipart_with(key: &str, policy: &str, signature: &str, file: &[u8]) -> Request<Bytes> {
    let boundary = "13655572285612";
    let mut body = Vec::new();
    for (name, value) in [
        ("OSSAccessKeyId", "kvmux-oss"),
        ("Signature", signature),
        ("host", "1:9999"),
        ("key", key),
        ("policy", policy),
        ("success_action_status", "201"),
    ] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{key}\"\r\nContent-Type: \r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Request::builder()
        .method("POST")
        .uri("http://127.0.0.1:9999/")
        .header("host", "http://127.0.0.1:9999")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Bytes::from(body))
        .unwrap()
}

#[tokio::test]
async fn high_capacity_flow_round_trips_a_large_value() {
    let h = harness();
    esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "ns")]).await;
    let (s, auth) = call2(
        &h,
        v3(
            "GET",
            "AuthorizeFileUpload",
            OPENPLATFORM_VERSION,
            &[("Product", "ESA")],
            &[],
            ID,
            SECRET,
        ),
    )
    .await;
    assert_eq!(s, 200, "{auth}");
    assert_eq!(auth["Bucket"], "http://127.0.0");
    assert_eq!(auth["Endpoint"], "1:9999");
    assert_eq!(auth["UseAccelerate"], false);
    let object_key = auth["ObjectKey"].as_str().unwrap().to_string();

    // 3 MB of every byte value that survives JSON as a string
    let value: String = (0..3_000_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let object = serde_json::json!({"Namespace": "ns", "Key": "big", "Value": value}).to_string();
    let resp = h
        .dialect
        .serve_request(multipart_granted(&auth, object.as_bytes()))
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let xml = String::from_utf8(resp.body().to_vec()).unwrap();
    assert!(
        xml.contains("<PostResponse>") && xml.contains(&object_key),
        "{xml}"
    );

    let url = format!("http://http://127.0.0.1:9999/{object_key}");
    let (s, b) = esa(
        &h,
        "POST",
        "PutKvWithHighCapacity",
        &[("Namespace", "ns"), ("Key", "big"), ("Url", &url)],
        &[],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["Length"], "3000000");
    let (_, b) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "ns"), ("Key", "big")],
        &[],
    )
    .await;
    assert_eq!(b["Value"].as_str().unwrap(), value);
    // used objects are gone
    let (s, b) = esa(
        &h,
        "POST",
        "PutKvWithHighCapacity",
        &[("Namespace", "ns"), ("Key", "big"), ("Url", &url)],
        &[],
    )
    .await;
    assert_eq!((s, code(&b)), (400, "InvalidParameters"));

    // an ungranted key is refused by the upload
    let resp = h
        .dialect
        .serve_request(multipart("kvupload/forged", b"{}"))
        .await;
    assert_eq!(resp.status().as_u16(), 403);
    assert!(String::from_utf8_lossy(resp.body()).contains("<Code>AccessDenied</Code>"));

    // batch put and batch delete through uploads
    for (action, object, expect) in [
        (
            "BatchPutKvWithHighCapacity",
            r#"{"Namespace":"ns","KvList":[{"Key":"h1","Value":"1"},{"Key":"h2","Value":"2"}]}"#,
            serde_json::json!(["h1", "h2"]),
        ),
        (
            "BatchDeleteKvWithHighCapacity",
            r#"{"Namespace":"ns","Keys":["h1"]}"#,
            serde_json::json!(["h1"]),
        ),
        (
            "BatchPutKvWithHighCapacity",
            "not json",
            serde_json::json!([]),
        ),
    ] {
        let (_, auth) = call2(
            &h,
            v3(
                "GET",
                "AuthorizeFileUpload",
                OPENPLATFORM_VERSION,
                &[("Product", "ESA")],
                &[],
                ID,
                SECRET,
            ),
        )
        .await;
        let key = auth["ObjectKey"].as_str().unwrap();
        assert_eq!(
            h.dialect
                .serve_request(multipart_granted(&auth, object.as_bytes()))
                .await
                .status()
                .as_u16(),
            201
        );
        let url = format!("http://http://127.0.0.1:9999/{key}");
        let (s, b) = esa(
            &h,
            "POST",
            action,
            &[("Namespace", "ns"), ("Url", &url)],
            &[],
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["SuccessKeys"], expect, "{action}");
    }
    let (s, _) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "ns"), ("Key", "h1")],
        &[],
    )
    .await;
    assert_eq!(s, 404);
    let (_, b) = esa(
        &h,
        "GET",
        "GetKv",
        &[("Namespace", "ns"), ("Key", "h2")],
        &[],
    )
    .await;
    assert_eq!(b["Value"], "2");
}

#[tokio::test]
async fn signature_failures_and_replays_are_refused() {
    let h = harness();
    // wrong secret, V3
    let (s, b, info) = call(
        &h,
        v3(
            "GET",
            "DescribeKvAccountStatus",
            ESA_VERSION,
            &[],
            &[],
            ID,
            "wrong",
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (400, "SignatureDoesNotMatch"));
    let diag = info.signature.unwrap();
    assert!(diag
        .canonical_request
        .contains("x-acs-action:DescribeKvAccountStatus"));
    assert!(!diag.canonical_request.contains(SECRET));
    // unknown key
    let (s, b, _) = call(
        &h,
        v3(
            "GET",
            "DescribeKvAccountStatus",
            ESA_VERSION,
            &[],
            &[],
            "LTAInobody",
            SECRET,
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (404, "InvalidAccessKeyId.NotFound"));
    // replay
    let req = v3(
        "GET",
        "DescribeKvAccountStatus",
        ESA_VERSION,
        &[],
        &[],
        ID,
        SECRET,
    );
    let copy = {
        let mut b = Request::builder().method(req.method()).uri(req.uri());
        for (k, v) in req.headers() {
            b = b.header(k, v);
        }
        b.body(req.body().clone()).unwrap()
    };
    assert_eq!(call(&h, req).await.0, 200);
    let (s, b, _) = call(&h, copy).await;
    assert_eq!((s, code(&b)), (400, "SignatureNonceUsed"));
    // V2 good and bad
    let (s, b, _) = call(
        &h,
        v2(
            "GET",
            "DescribeDcdnKvAccountStatus",
            DCDN_VERSION,
            &[],
            &[],
            SECRET,
        ),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b, _) = call(
        &h,
        v2(
            "POST",
            "PutDcdnKvNamespace",
            DCDN_VERSION,
            &[],
            &[("Namespace", "v2ns")],
            SECRET,
        ),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b, _) = call(
        &h,
        v2(
            "POST",
            "PutDcdnKvNamespace",
            DCDN_VERSION,
            &[],
            &[("Namespace", "v2ns2")],
            "wrong",
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (400, "SignatureDoesNotMatch"));
    let msg = b["Message"].as_str().unwrap();
    assert!(msg.contains("server string to sign is:POST&%2F&"), "{msg}");
    assert!(msg.split(':').nth(1).unwrap().contains("Namespace%3Dv2ns2"));
    // unsigned
    let req = Request::builder()
        .uri("/")
        .header("x-acs-action", "GetKvAccount")
        .header("x-acs-version", ESA_VERSION)
        .body(Bytes::new())
        .unwrap();
    let (s, b, _) = call(&h, req).await;
    assert_eq!((s, code(&b)), (400, "IncompleteSignature"));
}

#[tokio::test]
async fn auth_modes_log_and_off_serve_bad_signatures() {
    for mode in [AuthMode::Log, AuthMode::Off] {
        let h = harness_with(mode, false);
        let (s, b, info) = call(
            &h,
            v3(
                "GET",
                "DescribeKvAccountStatus",
                ESA_VERSION,
                &[],
                &[],
                ID,
                "wrong",
            ),
        )
        .await;
        assert_eq!(s, 200, "{mode:?} {b}");
        assert_eq!(info.account.as_deref(), Some("dev"));
        assert_eq!(info.signature.is_some(), mode == AuthMode::Log);
    }
}

#[tokio::test]
async fn vendor_rate_limits_throttle_put_dcdn_kv() {
    let h = harness_with(AuthMode::Off, true);
    dcdn(
        &h,
        "POST",
        "PutDcdnKvNamespace",
        &[],
        &[("Namespace", "ns")],
    )
    .await;
    let mut first_throttled = None;
    for i in 0..200 {
        let k = format!("k{i}");
        let (s, b) = dcdn(
            &h,
            "POST",
            "PutDcdnKv",
            &[("Namespace", "ns"), ("Key", &k)],
            &[("Value", "v")],
        )
        .await;
        if s == 429 {
            assert_eq!(code(&b), "TooManyRequests");
            first_throttled = Some(i);
            break;
        }
        assert_eq!(s, 200, "{b}");
    }
    // a sliding window of one second: the first 50 always pass; the 51st within a second is refused
    let first = first_throttled.expect("200 puts without a TooManyRequests");
    assert!(first >= 50, "throttled after only {first} calls");
    // other actions are not limited
    let (s, _) = dcdn(&h, "GET", "DescribeDcdnKvAccountStatus", &[], &[]).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn garbage_never_panics_and_gets_a_vendor_error() {
    let h = harness();
    let bodies: Vec<Request<Bytes>> = vec![
        Request::builder()
            .uri("/?Action=PutKv&Version=2024-09-10&Signature=%%%")
            .body(Bytes::new())
            .unwrap(),
        Request::builder()
            .uri("/")
            .header("authorization", "ACS3-HMAC-SHA256 ,,,")
            .header("x-acs-action", "PutKv")
            .header("x-acs-version", ESA_VERSION)
            .body(Bytes::new())
            .unwrap(),
        Request::builder()
            .method("POST")
            .uri("/")
            .header("content-type", "multipart/form-data")
            .body(Bytes::from_static(b"junk"))
            .unwrap(),
        Request::builder()
            .method("POST")
            .uri("/")
            .header("content-type", "multipart/form-data; boundary=x")
            .body(Bytes::from_static(b"--x\r\njunk"))
            .unwrap(),
    ];
    for req in bodies {
        let resp = h.dialect.serve_request(req).await;
        let s = resp.status().as_u16();
        assert!((400..500).contains(&s), "{s}");
        assert_ne!(resp.info.operation, "", "an operation name for the log");
    }
}

#[tokio::test]
async fn account_token_and_same_item_rules() {
    let h = harness_full(
        AuthMode::Enforce,
        true,
        serde_json::json!({"inactive_accounts": ["other"], "security_tokens": ["tok-ok"]}),
    );
    // an account that has not activated KV
    let (s, b, _) = call(
        &h,
        v3(
            "GET",
            "GetKvAccount",
            ESA_VERSION,
            &[],
            &[],
            "LTAIother",
            "othersecret",
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (404, "InvalidAccount.NotFound"));
    let (s, b, _) = call(
        &h,
        v3(
            "GET",
            "DescribeKvAccountStatus",
            ESA_VERSION,
            &[],
            &[],
            "LTAIother",
            "othersecret",
        ),
    )
    .await;
    assert_eq!((s, b["Status"].as_str()), (200, Some("offline")));
    // an account name that cannot be an Alibaba account
    let (s, b, _) = call(
        &h,
        v3(
            "GET",
            "GetKvAccount",
            ESA_VERSION,
            &[],
            &[],
            "LTAIspaced",
            "spacedsecret",
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (400, "InvalidAccount.Malformed"));
    // STS tokens: only configured ones
    for (token, expect) in [("tok-bad", 403), ("tok-ok", 200)] {
        // Signed, as the SDK signs every x-acs-* header (an unsigned token is refused).
        let req = v3_custom(
            "GET",
            "DescribeKvAccountStatus",
            ESA_VERSION,
            &[],
            &[],
            (ID, SECRET),
            |h| {
                h.insert("x-acs-security-token", HeaderValue::from_static(token));
            },
            &[],
        );
        let (s, b, _) = call(&h, req).await;
        assert_eq!(s, expect, "{token}: {b}");
        if expect == 403 {
            assert_eq!(code(&b), "Unauthorized.InvalidToken");
        }
    }
    // two modifications of one item within a second
    esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "ns")]).await;
    let put = [("Namespace", "ns"), ("Key", "k")];
    assert_eq!(
        esa(&h, "POST", "PutKv", &put, &[("Value", "1")]).await.0,
        200
    );
    let (s, b) = esa(&h, "POST", "PutKv", &put, &[("Value", "2")]).await;
    assert_eq!((s, code(&b)), (429, "TooQuickRequests"));
    let other = [("Namespace", "ns"), ("Key", "k2")];
    assert_eq!(
        esa(&h, "POST", "PutKv", &other, &[("Value", "1")]).await.0,
        200
    );
}

#[tokio::test]
async fn upload_urls_are_bound_to_their_account_and_expire() {
    let h = harness();
    esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "ns")]).await;
    let (_, auth) = call2(
        &h,
        v3(
            "GET",
            "AuthorizeFileUpload",
            OPENPLATFORM_VERSION,
            &[("Product", "ESA")],
            &[],
            ID,
            SECRET,
        ),
    )
    .await;
    let key = auth["ObjectKey"].as_str().unwrap().to_string();
    let object = br#"{"Namespace":"ns","Key":"k","Value":"v"}"#;
    assert_eq!(
        h.dialect
            .serve_request(multipart_granted(&auth, object))
            .await
            .status()
            .as_u16(),
        201
    );
    let url = format!("http://http://127.0.0.1:9999/{key}");
    let q = [("Namespace", "ns"), ("Key", "k"), ("Url", url.as_str())];
    let (s, b, _) = call(
        &h,
        v3(
            "POST",
            "PutKvWithHighCapacity",
            ESA_VERSION,
            &q,
            &[],
            "LTAIother",
            "othersecret",
        ),
    )
    .await;
    // the other account has no namespace "ns" at all; give it one to reach the Url check
    assert_eq!((s, code(&b)), (404, "InvalidNameSpace.NotFound"));
    call(
        &h,
        v3(
            "POST",
            "CreateKvNamespace",
            ESA_VERSION,
            &[],
            &[("Namespace", "ns")],
            "LTAIother",
            "othersecret",
        ),
    )
    .await;
    let (s, b, _) = call(
        &h,
        v3(
            "POST",
            "PutKvWithHighCapacity",
            ESA_VERSION,
            &q,
            &[],
            "LTAIother",
            "othersecret",
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (403, "Unauthorized.InvalidParameters"));
    h.engine
        .clock()
        .advance(crate::ops::upload::UPLOAD_TTL_SECS + 1);
    let (s, b) = esa(&h, "POST", "PutKvWithHighCapacity", &q, &[]).await;
    assert_eq!((s, code(&b)), (403, "Unauthorized.InvalidTime"));
    // an expired authorization cannot upload either, even with its own policy and signature
    let resp = h
        .dialect
        .serve_request(multipart_granted(&auth, object))
        .await;
    assert_eq!(resp.status().as_u16(), 403);
    assert!(String::from_utf8_lossy(resp.body()).contains("Policy expired"));
}

#[tokio::test]
async fn namespace_and_account_capacity_are_exact_and_configurable() {
    let h = harness_full(
        AuthMode::Enforce,
        false,
        serde_json::json!({"namespace_capacity": 1000, "account_capacity": 1500}),
    );
    esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "a")]).await;
    esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "b")]).await;
    let (_, b) = esa(&h, "GET", "GetKvNamespace", &[("Namespace", "a")], &[]).await;
    assert_eq!(b["Capacity"], 1000);
    // each item is charged exactly key + value bytes
    let v = "x".repeat(900 - 1);
    let (s, b) = esa(
        &h,
        "POST",
        "PutKv",
        &[("Namespace", "a"), ("Key", "k")],
        &[("Value", &v)],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = esa(
        &h,
        "POST",
        "PutKv",
        &[("Namespace", "a"), ("Key", "l")],
        &[("Value", &"y".repeat(200))],
    )
    .await;
    assert_eq!((s, code(&b)), (403, "InvalidKey.ExceedsCapacity"));
    let (_, b) = esa(&h, "GET", "GetKvNamespace", &[("Namespace", "a")], &[]).await;
    assert_eq!(b["CapacityUsed"], 900);
    // the account has 600 left: a 700-byte item in the other namespace passes its namespace quota
    // but not the account's
    let (s, b) = esa(
        &h,
        "POST",
        "PutKv",
        &[("Namespace", "b"), ("Key", "m")],
        &[("Value", &"z".repeat(700))],
    )
    .await;
    assert_eq!((s, code(&b)), (403, "InvalidKey.ExceedsCapacity"));
    assert!(b["Message"].as_str().unwrap().contains("account"));
    let (_, b) = esa(&h, "GET", "GetKvAccount", &[], &[]).await;
    assert_eq!(
        (b["Capacity"].as_i64(), b["CapacityUsed"].as_i64()),
        (Some(1500), Some(900))
    );
}

/// Arbitrary actions, parameters and bodies (auth off, so they reach the handlers) always get a
/// vendor 4xx or a 200, never a 5xx or a panic.
#[test]
fn arbitrary_requests_never_get_a_5xx() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h = harness_with(AuthMode::Off, false);
    rt.block_on(async {
        esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "ns")]).await;
        dcdn(
            &h,
            "POST",
            "PutDcdnKvNamespace",
            &[],
            &[("Namespace", "ns")],
        )
        .await;
    });
    let names: Vec<&'static str> = ACTIONS.iter().map(|e| e.0).collect();
    let param_names = [
        "Namespace",
        "Key",
        "Value",
        "Base64",
        "Expiration",
        "ExpirationTtl",
        "Prefix",
        "PageNumber",
        "PageSize",
        "KvList",
        "Keys",
        "Url",
        "Description",
        "Product",
        "Field",
    ];
    let value = prop_oneof![
        Just("ns".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("[{\"Key\":1}]".to_string()),
        Just("[\"a\",null,{}]".to_string()),
        Just("http://x/kvupload/zz".to_string()),
        ".{0,40}",
    ];
    let strategy = (
        proptest::sample::select(names),
        prop::bool::ANY,
        prop::collection::vec(
            (proptest::sample::select(param_names.to_vec()), value),
            0..6,
        ),
        prop::collection::vec(any::<u8>(), 0..64),
    );
    let ok = std::cell::Cell::new(0u32);
    let refused = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(action, dcdn_version, params, junk)| {
            let version = if dcdn_version {
                DCDN_VERSION
            } else {
                ESA_VERSION
            };
            let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut req = v3(
                "POST",
                action,
                version,
                &pairs[..pairs.len() / 2],
                &pairs[pairs.len() / 2..],
                ID,
                "ignored",
            );
            if !junk.is_empty() && junk[0] % 3 == 0 {
                *req.body_mut() = Bytes::from(junk.clone());
            }
            let resp = rt.block_on(h.dialect.serve_request(req));
            let status = resp.status().as_u16();
            prop_assert!(
                status < 500,
                "{action} {params:?}: {status} {:?}",
                resp.body()
            );
            prop_assert!(!resp.info.operation.is_empty());
            if status >= 400 {
                let body: Value = serde_json::from_slice(resp.body()).unwrap();
                prop_assert!(body["Code"].is_string());
                refused.set(refused.get() + 1);
            } else {
                ok.set(ok.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    // both outcomes were reached, so the inputs got past routing into the handlers
    assert!(
        ok.get() > 0 && refused.get() > 0,
        "ok {} refused {}",
        ok.get(),
        refused.get()
    );
}

#[test]
fn gateway_errors_and_body_limits_use_the_vendor_envelopes() {
    let h = harness();
    let upload = multipart("kvupload/x", b"{}").into_parts().0;
    let action = v3("POST", "PutKv", ESA_VERSION, &[], &[], ID, SECRET)
        .into_parts()
        .0;
    let upload = h.dialect.classify(&upload).expect("claimed");
    let action = h.dialect.classify(&action).expect("claimed");
    assert_eq!(upload.body_limit, crate::UPLOAD_BODY_LIMIT);
    const { assert!(crate::UPLOAD_BODY_LIMIT > 100 * 1024 * 1024) };
    assert_eq!(action.body_limit, crate::ACTION_BODY_LIMIT);
    assert_eq!(action.operation, Some("PutKv"));
    assert_eq!(action.key_id.as_deref(), Some(ID));
    assert_eq!(upload.operation, Some("PostObject"));

    let r = h
        .dialect
        .gateway_error(&upload, kv_dialect::GatewayError::BodyTooLarge { limit: 1 });
    assert_eq!(r.status().as_u16(), 400);
    assert!(String::from_utf8_lossy(r.body()).contains("<Code>EntityTooLarge</Code>"));
    assert_eq!(r.info.code.as_deref(), Some("EntityTooLarge"));
    assert_eq!(r.info.operation, "PostObject");

    for (err, status, code) in [
        (
            kv_dialect::GatewayError::BodyTooLarge { limit: 1 },
            400,
            "InvalidValue.ExceedsMaximum",
        ),
        (
            kv_dialect::GatewayError::BadBody("x".into()),
            400,
            "InvalidParameters",
        ),
        (kv_dialect::GatewayError::Throttled, 429, "TooManyRequests"),
        (kv_dialect::GatewayError::Internal, 500, "InternalError"),
    ] {
        let r = h.dialect.gateway_error(&action, err);
        assert_eq!(r.status().as_u16(), status);
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["Code"], code);
        let info = &r.info;
        assert_eq!(info.code.as_deref(), Some(code));
        assert_eq!(body["RequestId"].as_str(), Some(info.request_id.as_str()));
    }
}

/// V2-signs exactly `params` (query only, plus Signature) and sends `headers` alongside.
fn v2_raw(method: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> Request<Bytes> {
    let all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = auth::sign_v2(method, &all, SECRET);
    let qs = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .append_pair("Signature", &sig)
        .finish();
    let mut b = Request::builder()
        .method(method)
        .uri(format!("/?{qs}"))
        .header("host", "127.0.0.1:9090");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Bytes::new()).unwrap()
}

/// The common V2 parameters of `action` (ESA), with a fresh nonce unless `nonce` is None.
fn v2_common(action: &'static str, nonce: Option<&'static str>) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("Action", action.to_string()),
        ("Version", ESA_VERSION.to_string()),
        ("Format", "JSON".to_string()),
        ("AccessKeyId", ID.to_string()),
        ("SignatureMethod", "HMAC-SHA1".to_string()),
        ("SignatureVersion", "1.0".to_string()),
        ("Timestamp", now_iso()),
    ];
    if let Some(n) = nonce {
        p.push((
            "SignatureNonce",
            format!("{n}{}", uuid::Uuid::new_v4().simple()),
        ));
    }
    p
}

fn refs<'a>(p: &'a [(&'a str, String)], more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    p.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(more.iter().copied())
        .collect()
}

/// Finding: under V2 (which signs no header) an `x-acs-action` header chose the operation, so a
/// request signed as GetKv ran DeleteKv. Now the signed `Action`/`Version` decide, and a header
/// that disagrees is refused; the key and namespace survive.
#[tokio::test]
async fn v2_unsigned_headers_cannot_choose_the_operation() {
    let h = harness();
    esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "ns")]).await;
    let (s, b) = esa(
        &h,
        "POST",
        "PutKv",
        &[("Namespace", "ns"), ("Key", "k")],
        &[("Value", "kept")],
    )
    .await;
    assert_eq!(s, 200, "{b}");

    let target = [("Namespace", "ns"), ("Key", "k")];
    for (header, value) in [
        ("x-acs-action", "DeleteKv"),
        ("x-acs-version", DCDN_VERSION),
    ] {
        let get = v2_common("GetKv", Some("g"));
        let (s, b) = call2(&h, v2_raw("GET", &refs(&get, &target), &[(header, value)])).await;
        assert_eq!((s, code(&b)), (400, "InvalidParameters"), "{header}: {b}");
    }
    let ns = v2_common("GetKvNamespace", Some("n"));
    let (s, b) = call2(
        &h,
        v2_raw(
            "GET",
            &refs(&ns, &[("Namespace", "ns")]),
            &[("x-acs-action", "DeleteKvNamespace")],
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (400, "InvalidParameters"), "{b}");
    // Nothing was deleted; tea's V2 sends matching headers, which are fine.
    let fresh = v2_common("GetKv", Some("ok"));
    let (s, b) = call2(
        &h,
        v2_raw(
            "GET",
            &refs(&fresh, &target),
            &[("x-acs-action", "GetKv"), ("x-acs-version", ESA_VERSION)],
        ),
    )
    .await;
    assert_eq!((s, b["Value"].as_str()), (200, Some("kept")), "{b}");
    let (s, b) = esa(&h, "GET", "GetKvNamespace", &[("Namespace", "ns")], &[]).await;
    assert_eq!((s, b["Namespace"].as_str()), (200, Some("ns")), "{b}");

    // A deciding parameter twice (both copies signed) is ambiguous: refused.
    let twice = v2_common("GetKv", Some("t"));
    let (s, b) = call2(
        &h,
        v2_raw(
            "GET",
            &refs(
                &twice,
                &[("Namespace", "ns"), ("Key", "k"), ("Action", "DeleteKv")],
            ),
            &[],
        ),
    )
    .await;
    assert_eq!((s, code(&b)), (400, "IncompleteSignature"), "{b}");
    // A V2 request without SignatureNonce could be replayed for 15 minutes: refused.
    let bare = v2_common("GetKv", None);
    let (s, b) = call2(&h, v2_raw("GET", &refs(&bare, &target), &[])).await;
    assert_eq!((s, code(&b)), (400, "MissingParameter"), "{b}");
    assert!(b["Message"].as_str().unwrap().contains("SignatureNonce"));
    let (_, b) = esa(&h, "GET", "GetKv", &target, &[]).await;
    assert_eq!(b["Value"].as_str(), Some("kept"));
}

/// Finding: V3 accepted a signature whose SignedHeaders left out the action, version, date,
/// nonce or host, so those could be changed (re-targeted) or the request replayed forever. Each
/// is now required; other values V3 reads must be signed too, or the request is refused.
#[tokio::test]
async fn v3_requires_the_deciding_headers_to_be_signed() {
    let h = harness();
    esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "ns")]).await;
    let q = [("Namespace", "ns"), ("Key", "k")];
    for name in auth::V3_REQUIRED_SIGNED {
        let req = v3_custom(
            "GET",
            "GetKv",
            ESA_VERSION,
            &q,
            &[],
            (ID, SECRET),
            |_| {},
            &[name],
        );
        let (s, b) = call2(&h, req).await;
        assert_eq!((s, code(&b)), (400, "IncompleteSignature"), "{name}: {b}");
    }
    // An unsigned action header used to be free to change: DeleteKv signed without it.
    let req = v3_custom(
        "GET",
        "DeleteKvNamespace",
        ESA_VERSION,
        &[("Namespace", "ns")],
        &[],
        (ID, SECRET),
        |_| {},
        &["x-acs-action"],
    );
    assert_eq!(call2(&h, req).await.0, 400);
    // No nonce at all.
    let req = v3_custom(
        "GET",
        "GetKv",
        ESA_VERSION,
        &q,
        &[],
        (ID, SECRET),
        |h| {
            h.remove("x-acs-signature-nonce");
        },
        &[],
    );
    let (s, b) = call2(&h, req).await;
    assert_eq!((s, code(&b)), (400, "MissingParameter"), "{b}");
    // A security token or a body's content type outside SignedHeaders.
    let req = v3_custom(
        "GET",
        "GetKv",
        ESA_VERSION,
        &q,
        &[],
        (ID, SECRET),
        |h| {
            h.insert("x-acs-security-token", HeaderValue::from_static("t"));
        },
        &["x-acs-security-token"],
    );
    assert_eq!(code(&call2(&h, req).await.1), "IncompleteSignature");
    let req = v3_custom(
        "POST",
        "PutKv",
        ESA_VERSION,
        &q,
        &[("Value", "v")],
        (ID, SECRET),
        |_| {},
        &["content-type"],
    );
    assert_eq!(code(&call2(&h, req).await.1), "IncompleteSignature");
    // A signed query Action that disagrees with the signed header.
    let req = v3(
        "GET",
        "GetKv",
        ESA_VERSION,
        &[("Namespace", "ns"), ("Key", "k"), ("Action", "DeleteKv")],
        &[],
        ID,
        SECRET,
    );
    let (s, b) = call2(&h, req).await;
    assert_eq!((s, code(&b)), (400, "InvalidParameters"), "{b}");
    // An absolute-form target naming another host than the signed Host header.
    let req = v3("GET", "GetKvAccount", ESA_VERSION, &[], &[], ID, SECRET);
    let (mut parts, body) = req.into_parts();
    parts.uri = "http://elsewhere.example/".parse().unwrap();
    let (s, b) = call2(&h, Request::from_parts(parts, body)).await;
    assert_eq!((s, code(&b)), (400, "IncompleteSignature"), "{b}");
    // ...while the same host (proxy clients) is fine.
    let req = v3("GET", "GetKvAccount", ESA_VERSION, &[], &[], ID, SECRET);
    let (mut parts, body) = req.into_parts();
    parts.uri = "http://127.0.0.1:9090/".parse().unwrap();
    assert_eq!(call2(&h, Request::from_parts(parts, body)).await.0, 200);
}

/// The store decides nonces: a second dialect on the same engine (a restart, or another
/// gateway on the same database) refuses a nonce the first one accepted.
#[tokio::test]
async fn a_nonce_is_refused_by_another_dialect_on_the_same_store() {
    let h = harness();
    // One signed request, sent again byte for byte.
    let signed = v3_custom(
        "GET",
        "GetKvAccount",
        ESA_VERSION,
        &[],
        &[],
        (ID, SECRET),
        |h| {
            h.insert(
                "x-acs-signature-nonce",
                HeaderValue::from_static("store-decides"),
            );
        },
        &[],
    );
    let (parts, body) = signed.into_parts();
    let again = || {
        let mut b = Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.clone());
        for (k, v) in &parts.headers {
            b = b.header(k, v);
        }
        b.body(body.clone()).unwrap()
    };
    assert_eq!(call2(&h, again()).await.0, 200);
    let other = AliyunDialect::new(DialectContext {
        engine: h.engine.clone(),
        credentials: vec![Credential {
            id: ID.into(),
            secret: SECRET.into(),
            account: "dev".into(),
        }]
        .into(),
        auth_mode: AuthMode::Enforce,
        options: Value::Null,
        vendor_rate_limits: false,
    });
    let resp = other.serve_request(again()).await;
    let b: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(
        (resp.status().as_u16(), code(&b)),
        (400, "SignatureNonceUsed")
    );
    // Log mode records and serves; off mode does not look.
    for mode in [AuthMode::Log, AuthMode::Off] {
        let lenient = AliyunDialect::new(DialectContext {
            engine: h.engine.clone(),
            credentials: vec![Credential {
                id: ID.into(),
                secret: SECRET.into(),
                account: "dev".into(),
            }]
            .into(),
            auth_mode: mode,
            options: Value::Null,
            vendor_rate_limits: false,
        });
        assert_eq!(lenient.serve_request(again()).await.status().as_u16(), 200);
    }
}

/// Finding: the OSS PostObject read (and kept) the file before checking anything. Now the grant
/// (ObjectKey, EncodedPolicy, Signature of AuthorizeFileUpload) is checked from the fields before
/// the file, and a forged or missing one is refused with OSS's XML error; nothing is stored.
#[tokio::test]
async fn uploads_without_a_valid_grant_are_refused_before_the_file() {
    let h = harness();
    let (_, auth) = call2(
        &h,
        v3(
            "GET",
            "AuthorizeFileUpload",
            OPENPLATFORM_VERSION,
            &[("Product", "ESA")],
            &[],
            ID,
            SECRET,
        ),
    )
    .await;
    let key = auth["ObjectKey"].as_str().unwrap();
    let policy = auth["EncodedPolicy"].as_str().unwrap();
    let signature = auth["Signature"].as_str().unwrap();
    assert_eq!(signature.len(), 64, "256 random bits, not a constant");
    let large = vec![b'x'; 20 * 1024 * 1024];
    let stored = || async {
        let c = crate::ops::upload::uploads(&h.engine).await.unwrap();
        h.engine
            .get(&c, format!("object/{key}").as_bytes())
            .await
            .unwrap()
            .is_some()
    };
    for (what, req, status, expected) in [
        (
            "forged signature",
            multipart_with(key, policy, "kvmux-unsigned", &large),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "forged policy",
            multipart_with(key, "e30=", signature, &large),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "missing policy and signature",
            multipart_with(key, "", "", &large),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "a key never granted",
            multipart_with("kvupload/never", policy, signature, &large),
            403,
            "AccessDenied",
        ),
    ] {
        let resp = h.dialect.serve_request(req).await;
        let text = String::from_utf8_lossy(resp.body()).to_string();
        assert_eq!(resp.status().as_u16(), status, "{what}: {text}");
        assert!(
            text.contains(&format!("<Code>{expected}</Code>")),
            "{what}: {text}"
        );
        assert!(!stored().await, "{what}: nothing is stored");
    }
    // Fields left out entirely, and a file before its key: refused too.
    let boundary = "zz";
    let only_file = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\ndata\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n{key}\r\n--{boundary}--\r\n"
    );
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Bytes::from(only_file))
        .unwrap();
    let resp = h.dialect.serve_request(req).await;
    assert_eq!(resp.status().as_u16(), 400);
    assert!(!stored().await);
    // The genuine grant still uploads.
    let resp = h
        .dialect
        .serve_request(multipart_granted(&auth, b"{}"))
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    assert!(stored().await);
}

/// Upload staging does not outlive its use: a high-capacity call that reads an object drops it
/// and its grant even when the call fails, and an upload nobody uses is swept when its
/// authorization ends (the grant a grace period later).
#[tokio::test]
async fn upload_staging_is_dropped_when_used_or_expired() {
    let h = harness();
    esa(&h, "POST", "CreateKvNamespace", &[], &[("Namespace", "ns")]).await;
    let authorize = || async {
        call2(
            &h,
            v3(
                "GET",
                "AuthorizeFileUpload",
                OPENPLATFORM_VERSION,
                &[("Product", "ESA")],
                &[],
                ID,
                SECRET,
            ),
        )
        .await
        .1
    };
    let staged = || async {
        let uploads = crate::ops::upload::uploads(&h.engine).await.unwrap();
        assert!(uploads.is_internal(), "{}", uploads.account);
        h.engine
            .scan(&uploads, kv_core::ScanOptions::prefix(b"", None, 100))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|i| String::from_utf8_lossy(&i.key).into_owned())
            .collect::<Vec<_>>()
    };
    // A PutKvWithHighCapacity whose object is not the documented JSON fails, and leaves nothing.
    let auth = authorize().await;
    assert_eq!(
        h.dialect
            .serve_request(multipart_granted(&auth, b"not json"))
            .await
            .status()
            .as_u16(),
        201
    );
    assert_eq!(staged().await.len(), 2, "a grant and its object");
    let url = format!(
        "http://http://127.0.0.1:9999/{}",
        auth["ObjectKey"].as_str().unwrap()
    );
    let (s, b) = esa(
        &h,
        "POST",
        "PutKvWithHighCapacity",
        &[("Namespace", "ns"), ("Key", "k"), ("Url", &url)],
        &[],
    )
    .await;
    assert_eq!((s, code(&b)), (400, "InvalidParameters"), "{b}");
    assert_eq!(staged().await, Vec::<String>::new());

    // An upload that is never used: its object goes when the authorization ends, the grant
    // (kept so a late use is told its authorization expired) a grace period later.
    let auth = authorize().await;
    h.dialect
        .serve_request(multipart_granted(
            &auth,
            br#"{"Namespace":"ns","Key":"k","Value":"v"}"#,
        ))
        .await;
    assert_eq!(staged().await.len(), 2);
    h.engine
        .clock()
        .advance(crate::ops::upload::UPLOAD_TTL_SECS + 1);
    h.engine.sweep_expired(100).await.unwrap();
    let left = staged().await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("grant/"), "{left:?}");
    h.engine
        .clock()
        .advance(crate::ops::upload::EXPIRED_GRACE_SECS);
    h.engine.sweep_expired(100).await.unwrap();
    assert_eq!(staged().await, Vec::<String>::new());
}
