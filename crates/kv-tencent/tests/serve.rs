//! The dialect driven through `serve()` with no socket: requests signed like the SDKs sign them,
//! an engine on a temporary redb file, and assertions on the exact Tencent replies.

use bytes::Bytes;
use http::{HeaderMap, Request};
use kv_dialect::testing::{Harness, Setup};
use kv_dialect::{Answer, AuthMode, Dialect, GatewayError, RequestInfo};
use kv_tencent::auth::{sign_legacy, sign_tc3, SignedRequest};
use kv_tencent::TencentDialect;
use serde_json::{json, Value};

const ID: &str = "AKIDtest";
const SECRET: &str = "secret";
const HOST: &str = "127.0.0.1:9090";

type Fixture = Harness<TencentDialect>;

fn fixture_with(auth_mode: AuthMode, options: Value, vendor_rate_limits: bool) -> Fixture {
    Setup::new(&[(ID, SECRET, "acct"), ("AKIDother", "other", "other")])
        .auth_mode(auth_mode)
        .options(options)
        .vendor_rate_limits(vendor_rate_limits)
        .build(TencentDialect::new)
}

fn fixture() -> Fixture {
    fixture_with(AuthMode::Enforce, Value::Null, false)
}

fn now() -> u64 {
    kv_core::clock::wall_clock_secs()
}

/// A TC3 POST signed as the Python SDK signs it (Host verbatim, service teo).
fn signed(action: &str, body: &str, id: &str, secret: &str, timestamp: u64) -> Request<Bytes> {
    let mut headers = HeaderMap::new();
    headers.insert("host", HOST.parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("x-tc-action", action.parse().unwrap());
    headers.insert("x-tc-version", "2022-09-01".parse().unwrap());
    headers.insert("x-tc-timestamp", timestamp.into());
    let request = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let signed_headers = ["content-type".to_string(), "host".to_string()];
    let authorization = sign_tc3(
        &request,
        HOST,
        "teo",
        id,
        secret,
        &signed_headers,
        timestamp,
    );
    headers.insert("authorization", authorization.parse().unwrap());
    let mut b = Request::builder().method("POST").uri("/");
    for (k, v) in &headers {
        b = b.header(k, v);
    }
    b.body(Bytes::from(body.to_string())).unwrap()
}

async fn send(f: &Fixture, request: Request<Bytes>) -> (Value, RequestInfo) {
    let Answer { response, info } = f.dialect.serve_request(request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(response.body()).expect("JSON body");
    let inner = body["Response"].clone();
    let request_id = inner["RequestId"].as_str().expect("RequestId").to_string();
    let parsed = uuid::Uuid::parse_str(&request_id).expect("uuid");
    assert_eq!(parsed.get_version_num(), 4);
    assert_eq!(info.request_id, request_id);
    assert_eq!(response.headers()["x-tc-requestid"], request_id.as_str());
    (inner, info)
}

async fn ok(f: &Fixture, action: &str, body: Value) -> Value {
    let (reply, info) = send(f, signed(action, &body.to_string(), ID, SECRET, now())).await;
    assert!(reply.get("Error").is_none(), "{action} {body}: {reply}");
    assert_eq!(info.operation, action);
    assert_eq!(info.account.as_deref(), Some("acct"));
    assert_eq!(info.code, None);
    reply
}

async fn err(f: &Fixture, action: &str, body: &str) -> String {
    let (reply, info) = send(f, signed(action, body, ID, SECRET, now())).await;
    let code = reply["Error"]["Code"]
        .as_str()
        .unwrap_or_else(|| panic!("{action} {body}: expected an error, got {reply}"))
        .to_string();
    assert!(!reply["Error"]["Message"]
        .as_str()
        .unwrap_or_default()
        .is_empty());
    assert_eq!(info.code.as_deref(), Some(code.as_str()));
    code
}

#[tokio::test]
async fn namespace_and_key_round_trip() {
    let f = fixture();
    ok(
        &f,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns-1", "Remark": "hi"}),
    )
    .await;
    ok(
        &f,
        "EdgeKVPut",
        json!({"ZoneId": "z", "Namespace": "ns-1", "Key": "b", "Value": "2"}),
    )
    .await;
    ok(
        &f,
        "EdgeKVPut",
        json!({"ZoneId": "z", "Namespace": "ns-1", "Key": "a", "Value": "一"}),
    )
    .await;
    let got = ok(
        &f,
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "ns-1", "Keys": ["b", "x", "a"]}),
    )
    .await;
    assert_eq!(
        got["Data"],
        json!([
            {"Key": "b", "Value": "2", "Expiration": ""},
            {"Key": "x", "Value": "", "Expiration": ""},
            {"Key": "a", "Value": "一", "Expiration": ""},
        ])
    );
    let listed = ok(
        &f,
        "EdgeKVList",
        json!({"ZoneId": "z", "Namespace": "ns-1", "Limit": 1}),
    )
    .await;
    assert_eq!(
        (listed["Keys"].clone(), listed["Cursor"].clone()),
        (json!(["a"]), json!("a"))
    );
    let listed = ok(
        &f,
        "EdgeKVList",
        json!({"ZoneId": "z", "Namespace": "ns-1", "Limit": 1, "Cursor": "a"}),
    )
    .await;
    assert_eq!(
        (listed["Keys"].clone(), listed["Cursor"].clone()),
        (json!(["b"]), json!(""))
    );
    let described = ok(&f, "DescribeEdgeKVNamespaces", json!({"ZoneId": "z"})).await;
    assert_eq!(described["TotalCount"], 1);
    let ns = &described["KVNamespaces"][0];
    assert_eq!(ns["Namespace"], "ns-1");
    assert_eq!(ns["Remark"], "hi");
    assert_eq!(ns["Capacity"], 1073741824);
    assert_eq!(ns["CapacityUsed"], 1 + 1 + 1 + 3);
    assert_eq!(ns["References"], json!([]));
    ok(
        &f,
        "EdgeKVDelete",
        json!({"ZoneId": "z", "Namespace": "ns-1", "Keys": ["a", "zz"]}),
    )
    .await;
    let listed = ok(
        &f,
        "EdgeKVList",
        json!({"ZoneId": "z", "Namespace": "ns-1"}),
    )
    .await;
    assert_eq!(listed["Keys"], json!(["b"]));
    ok(
        &f,
        "ModifyEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns-1", "Remark": "new"}),
    )
    .await;
    let described = ok(&f, "DescribeEdgeKVNamespaces", json!({"ZoneId": "z"})).await;
    assert_eq!(described["KVNamespaces"][0]["Remark"], "new");
    ok(
        &f,
        "DeleteEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns-1"}),
    )
    .await;
    let described = ok(&f, "DescribeEdgeKVNamespaces", json!({"ZoneId": "z"})).await;
    assert_eq!(
        described,
        json!({"TotalCount": 0, "KVNamespaces": [], "RequestId": described["RequestId"]})
    );
}

#[tokio::test]
async fn ttl_expires_on_the_engine_clock_and_ttl_wins_over_expiration() {
    let f = fixture();
    ok(
        &f,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "t"}),
    )
    .await;
    let start = f.engine.now();
    ok(&f, "EdgeKVPut", json!({"ZoneId": "z", "Namespace": "t", "Key": "k", "Value": "v", "ExpirationTTL": 60, "Expiration": start + 10_000})).await;
    let got = ok(
        &f,
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "t", "Keys": ["k"]}),
    )
    .await;
    let exp = got["Data"][0]["Expiration"].as_str().unwrap().to_string();
    let parsed =
        time::OffsetDateTime::parse(&exp, &time::format_description::well_known::Rfc3339).unwrap();
    let at = parsed.unix_timestamp() as u64;
    assert!(at >= start + 60 && at <= f.engine.now() + 60, "{exp}");
    f.engine.clock().advance(61);
    let got = ok(
        &f,
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "t", "Keys": ["k"]}),
    )
    .await;
    assert_eq!(
        got["Data"][0],
        json!({"Key": "k", "Value": "", "Expiration": ""})
    );
}

#[tokio::test]
async fn every_documented_error_code() {
    let f = fixture_with(AuthMode::Enforce, json!({"max_namespaces": 2}), false);
    ok(
        &f,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    )
    .await;
    let twenty_one: Vec<String> = (0..21).map(|i| format!("k{i}")).collect();
    let cases: Vec<(&str, String, &str)> = vec![
        ("EdgeKVScan", json!({"ZoneId": "z"}).to_string(), "InvalidAction"),
        ("EdgeKVGet", "{not json".into(), "InvalidParameter"),
        ("EdgeKVGet", "[]".into(), "InvalidParameter"),
        ("EdgeKVGet", json!({"ZoneId": "z", "Namespace": "ns", "Keys": "k"}).to_string(), "InvalidParameter"),
        ("EdgeKVGet", json!({"Namespace": "ns", "Keys": ["k"]}).to_string(), "MissingParameter"),
        ("EdgeKVGet", json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["k"], "X": 1}).to_string(), "UnknownParameter"),
        ("EdgeKVGet", json!({"ZoneId": "z", "Namespace": "ns", "Keys": twenty_one}).to_string(), "InvalidParameter.KeysTooMany"),
        ("EdgeKVDelete", json!({"ZoneId": "z", "Namespace": "ns", "Keys": twenty_one}).to_string(), "InvalidParameter.KeysTooMany"),
        ("EdgeKVGet", json!({"ZoneId": "z", "Namespace": "ns", "Keys": []}).to_string(), "InvalidParameterValue"),
        ("EdgeKVGet", json!({"ZoneId": "z", "Namespace": "nope", "Keys": ["k"]}).to_string(), "ResourceUnavailable.NamespaceNotFound"),
        ("EdgeKVPut", json!({"ZoneId": "z", "Namespace": "ns", "Key": "k", "Value": "v", "ExpirationTTL": 59}).to_string(), "InvalidParameterValue"),
        ("EdgeKVPut", json!({"ZoneId": "z", "Namespace": "ns", "Key": "k", "Value": "v", "Expiration": 1}).to_string(), "InvalidParameterValue"),
        ("EdgeKVPut", json!({"ZoneId": "z", "Namespace": "ns", "Key": "k", "Value": ""}).to_string(), "InvalidParameterValue"),
        ("EdgeKVPut", json!({"ZoneId": "z", "Namespace": "ns", "Key": "k", "Value": "v", "ExpirationTTL": i64::MAX}).to_string(), "InvalidParameterValue"),
        ("EdgeKVPut", json!({"ZoneId": "z", "Namespace": "ns", "Key": "k", "Value": "v", "Expiration": 253_402_300_800i64}).to_string(), "InvalidParameterValue"),
        ("EdgeKVPut", json!({"ZoneId": "z", "Namespace": "ns", "Key": "k", "Value": "x".repeat((1 << 20) + 1)}).to_string(), "InvalidParameterValue"),
        ("EdgeKVPut", json!({"ZoneId": "z", "Namespace": "ns", "Key": "k".repeat(513), "Value": "v"}).to_string(), "InvalidParameterValue"),
        ("EdgeKVPut", json!({"ZoneId": "z", "Namespace": "ns", "Key": "k", "Value": "v", "ExpirationTTL": "60"}).to_string(), "InvalidParameter"),
        ("EdgeKVList", json!({"ZoneId": "z", "Namespace": "ns", "Prefix": ""}).to_string(), "InvalidParameterValue"),
        ("EdgeKVList", json!({"ZoneId": "z", "Namespace": "ns", "Limit": 1001}).to_string(), "InvalidParameterValue"),
        ("CreateEdgeKVNamespace", json!({"ZoneId": "z", "Namespace": "a--b"}).to_string(), "InvalidParameter.BadNamespaceName"),
        ("CreateEdgeKVNamespace", json!({"ZoneId": "z", "Namespace": "ok", "Remark": "r".repeat(257)}).to_string(), "InvalidParameter.RemarkTooLong"),
        ("CreateEdgeKVNamespace", json!({"ZoneId": "z", "Namespace": "ns"}).to_string(), "InvalidParameterValue"),
        ("ModifyEdgeKVNamespace", json!({"ZoneId": "z", "Namespace": "gone"}).to_string(), "ResourceUnavailable.NamespaceNotFound"),
        ("DeleteEdgeKVNamespace", json!({"ZoneId": "z", "Namespace": "gone"}).to_string(), "ResourceUnavailable.NamespaceNotFound"),
        ("DescribeEdgeKVNamespaces", json!({"ZoneId": "z", "SortBy": "name"}).to_string(), "InvalidParameter.InvalidSortBy"),
        ("DescribeEdgeKVNamespaces", json!({"ZoneId": "z", "SortOrder": "up"}).to_string(), "InvalidParameter.InvalidSortOrder"),
        ("DescribeEdgeKVNamespaces", json!({"ZoneId": "z", "Filters": [{"Name": "x", "Values": ["a"]}]}).to_string(), "InvalidParameter.InvalidFilterName"),
        ("DescribeEdgeKVNamespaces", json!({"ZoneId": "z", "Filters": [{"Values": ["a"]}]}).to_string(), "MissingParameter"),
        ("DescribeEdgeKVNamespaces", json!({"ZoneId": "z", "Filters": [{"Name": "namespace", "Values": ["a"], "Fuzzy": "yes"}]}).to_string(), "InvalidParameter"),
    ];
    for (action, body, expected) in cases {
        assert_eq!(err(&f, action, &body).await, expected, "{action} {body}");
    }
    ok(
        &f,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z2", "Namespace": "two"}),
    )
    .await;
    assert_eq!(
        err(
            &f,
            "CreateEdgeKVNamespace",
            &json!({"ZoneId": "z3", "Namespace": "three"}).to_string()
        )
        .await,
        "LimitExceeded.NamespaceLimitExceeded"
    );
}

#[tokio::test]
async fn protocol_errors_version_method_and_auth() {
    let f = fixture();
    let body = json!({"ZoneId": "z"}).to_string();
    let mut wrong_version = signed("DescribeEdgeKVNamespaces", &body, ID, SECRET, now());
    wrong_version
        .headers_mut()
        .insert("x-tc-version", "2021-01-01".parse().unwrap());
    // The version header is not signed, so this one reaches the version check.
    let (reply, _) = send(&f, wrong_version).await;
    assert_eq!(reply["Error"]["Code"], "NoSuchVersion");

    let (reply, info) = send(
        &f,
        signed("DescribeEdgeKVNamespaces", &body, ID, "wrong", now()),
    )
    .await;
    assert_eq!(reply["Error"]["Code"], "AuthFailure.SignatureFailure");
    let diag = info.signature.expect("diagnostics for a refused signature");
    assert!(diag
        .canonical_request
        .starts_with("POST\n/\n\ncontent-type:application/json\nhost:127.0.0.1:9090\n"));
    assert!(diag.string_to_sign.starts_with("TC3-HMAC-SHA256\n"));
    assert_eq!(diag.access_key_id, ID);
    assert!(!diag.canonical_request.contains(SECRET) && !diag.string_to_sign.contains("wrong"));

    let (reply, _) = send(
        &f,
        signed(
            "DescribeEdgeKVNamespaces",
            &body,
            "AKIDnobody",
            SECRET,
            now(),
        ),
    )
    .await;
    assert_eq!(reply["Error"]["Code"], "AuthFailure.SecretIdNotFound");
    let (reply, _) = send(
        &f,
        signed("DescribeEdgeKVNamespaces", &body, ID, SECRET, now() - 301),
    )
    .await;
    assert_eq!(reply["Error"]["Code"], "AuthFailure.SignatureExpire");
    let mut mangled = signed("DescribeEdgeKVNamespaces", &body, ID, SECRET, now());
    mangled
        .headers_mut()
        .insert("authorization", "TC3-HMAC-SHA256 nonsense".parse().unwrap());
    let (reply, _) = send(&f, mangled).await;
    assert_eq!(reply["Error"]["Code"], "AuthFailure.InvalidAuthorization");
    let mut put = signed("DescribeEdgeKVNamespaces", &body, ID, SECRET, now());
    *put.method_mut() = http::Method::PUT;
    let (reply, _) = send(&f, put).await;
    assert_eq!(reply["Error"]["Code"], "UnsupportedProtocol");
    // A token header (temporary credentials) is accepted and not part of the signature.
    let mut with_token = signed("DescribeEdgeKVNamespaces", &body, ID, SECRET, now());
    with_token
        .headers_mut()
        .insert("x-tc-token", "tmp".parse().unwrap());
    let (reply, _) = send(&f, with_token).await;
    assert_eq!(reply["TotalCount"], 0);
}

#[tokio::test]
async fn auth_modes_log_and_off_serve_a_bad_signature_for_the_claimed_account() {
    for mode in [AuthMode::Log, AuthMode::Off] {
        let f = fixture_with(mode, Value::Null, false);
        let body = json!({"ZoneId": "z", "Namespace": "n"}).to_string();
        let (reply, info) = send(
            &f,
            signed("CreateEdgeKVNamespace", &body, "AKIDother", "bad", now()),
        )
        .await;
        assert!(reply.get("Error").is_none(), "{mode:?}: {reply}");
        assert_eq!(info.account.as_deref(), Some("other"));
        assert_eq!(info.signature.is_some(), mode == AuthMode::Log);
        f.engine
            .container("other", "tencent/z", "n")
            .await
            .expect("created for the claimed account");
    }
}

#[tokio::test]
async fn legacy_get_with_flattened_params() {
    let f = fixture();
    ok(
        &f,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    )
    .await;
    ok(
        &f,
        "EdgeKVPut",
        json!({"ZoneId": "z", "Namespace": "ns", "Key": "a b", "Value": "1"}),
    )
    .await;
    let ts = now().to_string();
    let params: Vec<(String, String)> = [
        ("Action", "EdgeKVGet"),
        ("Version", "2022-09-01"),
        ("Timestamp", ts.as_str()),
        ("Nonce", "42"),
        ("SecretId", ID),
        ("SignatureMethod", "HmacSHA256"),
        ("ZoneId", "z"),
        ("Namespace", "ns"),
        ("Keys.0", "a b"),
        ("Keys.1", "missing"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sig = sign_legacy("GET", HOST, "/", &params, SECRET);
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &params {
        query.append_pair(k, v);
    }
    query.append_pair("Signature", &sig);
    let uri = format!("/?{}", query.finish());
    let request = || {
        Request::builder()
            .method("GET")
            .uri(uri.as_str())
            .header("host", HOST)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::new())
            .unwrap()
    };
    let (reply, info) = send(&f, request()).await;
    assert_eq!(info.operation, "EdgeKVGet");
    assert_eq!(
        reply["Data"],
        json!([{"Key": "a b", "Value": "1", "Expiration": ""}, {"Key": "missing", "Value": "", "Expiration": ""}])
    );
    // The same signed request again reuses its Nonce: a replay.
    let (reply, _) = send(&f, request()).await;
    assert_eq!(
        reply["Error"]["Code"], "AuthFailure.SignatureFailure",
        "{reply}"
    );
}

#[tokio::test]
async fn vendor_rate_limit_is_twenty_per_second_per_action() {
    let f = fixture_with(AuthMode::Enforce, Value::Null, true);
    let body = json!({"ZoneId": "z"}).to_string();
    let mut limited = 0;
    for _ in 0..45 {
        let (reply, _) = send(
            &f,
            signed("DescribeEdgeKVNamespaces", &body, ID, SECRET, now()),
        )
        .await;
        match reply["Error"]["Code"].as_str() {
            Some("RequestLimitExceeded") => limited += 1,
            Some(other) => panic!("unexpected {other}"),
            None => {}
        }
    }
    // 45 quick calls fall into one or two one-second windows of 20 each: with n calls in the first
    // window, max(n-20, 0) + max(25-n, 0) >= 5 are refused, and at most 45 - 20 = 25.
    assert!((5..=25).contains(&limited), "limited = {limited}");
    // Another action has its own budget.
    let other = json!({"ZoneId": "z", "Namespace": "n"}).to_string();
    let (reply, _) = send(
        &f,
        signed("CreateEdgeKVNamespace", &other, ID, SECRET, now()),
    )
    .await;
    assert!(reply.get("Error").is_none(), "{reply}");
}

#[tokio::test]
async fn gateway_errors_use_the_tencent_envelope() {
    let f = fixture();
    let parts = signed("EdgeKVPut", "{}", ID, SECRET, now()).into_parts().0;
    let head = f.dialect.classify(&parts).expect("claimed");
    assert_eq!(head.operation, Some("EdgeKVPut"));
    assert_eq!(head.key_id.as_deref(), Some(ID));
    assert!(head.body_limit >= 10 * 1024 * 1024);
    for (error, code) in [
        (
            GatewayError::BodyTooLarge { limit: 10 },
            "RequestSizeLimitExceeded",
        ),
        (GatewayError::BadBody("eof".into()), "InvalidParameter"),
        (GatewayError::Throttled, "RequestLimitExceeded"),
        (GatewayError::Internal, "InternalError"),
    ] {
        let Answer { response, info } = f.dialect.gateway_error(&head, error);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["Response"]["Error"]["Code"], code);
        assert_eq!(info.operation, "EdgeKVPut");
        assert_eq!(body["Response"]["RequestId"], info.request_id.as_str());
    }
}

#[tokio::test]
async fn strict_keys_option() {
    let f = fixture_with(AuthMode::Enforce, json!({"strict_keys": true}), false);
    ok(
        &f,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    )
    .await;
    ok(
        &f,
        "EdgeKVPut",
        json!({"ZoneId": "z", "Namespace": "ns", "Key": "a_B-9", "Value": "v"}),
    )
    .await;
    let bad = json!({"ZoneId": "z", "Namespace": "ns", "Key": "键", "Value": "v"}).to_string();
    assert_eq!(err(&f, "EdgeKVPut", &bad).await, "InvalidParameterValue");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn action() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "CreateEdgeKVNamespace",
            "DeleteEdgeKVNamespace",
            "ModifyEdgeKVNamespace",
            "DescribeEdgeKVNamespaces",
            "EdgeKVPut",
            "EdgeKVGet",
            "EdgeKVDelete",
            "EdgeKVList",
            "Nope",
        ])
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-z0-9\\-]{0,8}".prop_map(Value::from),
            ".{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "ZoneId",
                        "Namespace",
                        "Key",
                        "Keys",
                        "Value",
                        "Limit",
                        "Prefix",
                        "Cursor",
                        "Filters",
                        "Name",
                        "Values",
                        "Fuzzy",
                        "Expiration",
                        "ExpirationTTL",
                        "Offset",
                        "SortBy",
                        "SortOrder",
                        "Remark",
                        "Other"
                    ])
                    .prop_map(str::to_string),
                    inner,
                    0..6,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]
        /// Any signed body gets a Tencent envelope: HTTP 200, JSON, a RequestId, and either a
        /// success or a non-internal error code. Never a panic.
        #[test]
        fn any_signed_body_gets_a_tencent_reply(action in action(), body in json_value()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let f = fixture();
                ok(&f, "CreateEdgeKVNamespace", json!({"ZoneId": "z", "Namespace": "ns"})).await;
                let (reply, _) = send(&f, signed(action, &body.to_string(), ID, SECRET, now())).await;
                if let Some(code) = reply["Error"]["Code"].as_str() {
                    prop_assert_ne!(code, "InternalError");
                }
                Ok(())
            })?;
        }
    }
}
