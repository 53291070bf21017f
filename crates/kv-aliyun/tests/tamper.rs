//! Tamper: every byte of every signed part of every valid Aliyun vector
//! (shared/specs/vectors/aliyun.json) replaced by other values, each refused by the verifier the
//! dialect runs (and the unmodified request accepted in the same test, so the test can fail).
//!
//! What is signed (spec §3, auth.rs):
//! - ACS3-HMAC-SHA256 (V3): the method; every query parameter, name and value; the headers named
//!   in `SignedHeaders` (names and values; tea-openapi signs every header it sets, `host`,
//!   `x-acs-date`, `x-acs-signature-nonce`, `x-acs-content-sha256`, `x-acs-action`...); the body
//!   through `x-acs-content-sha256`, which must match it; and the whole Authorization value
//!   (algorithm, `Credential` = AccessKeyId, SignedHeaders, Signature). The canonical URI is
//!   always `/` (RPC style), so the path is NOT signed; unsigned headers may change.
//! - RPC V2 (HMAC-SHA1): the method and every parameter of the query and of a form body (names
//!   and values, `Timestamp`, `SignatureNonce`, `AccessKeyId`... and `Signature` itself). No
//!   header (not even Host) and no path is signed.
//!
//! Also: `x-acs-date` / `Timestamp` just outside the 15-minute window (past and future) is
//! refused with `InvalidTimeStamp.Expired` and just inside accepted; a reused nonce
//! (`x-acs-signature-nonce` for V3, `SignatureNonce` for V2) is refused with
//! `SignatureNonceUsed` by the dialect.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use kv_aliyun::auth::{self, Caller, Refusal};
use kv_dialect::testing::{Harness, Setup};
use kv_dialect::Dialect;
use kv_testkit::{
    assert_freshness_window, header_index, part_of, tamper_bytes, tamper_headers, tamper_method,
    tamper_str, valid_vectors, valid_vectors_expecting, verified, Req, TamperTally, Vector,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The verifier the dialect picks, fed exactly as lib.rs feeds it.
fn verify(v: &Vector, req: &Req, now: u64) -> Result<Caller, Refusal> {
    let parts = req.to_parts();
    let query = parts
        .uri
        .query()
        .map(|q| kv_aliyun::wire::decode_form(q.as_bytes()))
        .unwrap_or_default();
    let (id, secret) = (v.id.clone(), v.secret.clone());
    let secret_of = move |k: &str| (k == id).then(|| secret.clone());
    match auth::detect(&parts.headers, &query) {
        auth::Scheme::V3 => auth::verify_v3(
            parts.method.as_str(),
            &query,
            &parts.headers,
            &req.body,
            &secret_of,
            now,
        ),
        auth::Scheme::V2 => {
            let form = match parts
                .headers
                .get("content-type")
                .and_then(|c| c.to_str().ok())
            {
                Some(ct) => ct
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded"),
                None => !req.body.is_empty(),
            };
            let mut params = query;
            if form {
                params.extend(kv_aliyun::wire::decode_form(&req.body));
            }
            auth::verify_v2(parts.method.as_str(), &params, &secret_of, now)
        }
        auth::Scheme::Unsigned => Err(Refusal {
            error: kv_aliyun::error::ApiError::incomplete_signature(),
            diagnostics: Box::default(),
            access_key_id: None,
        }),
    }
}

fn is_form(req: &Req) -> bool {
    match header_index(req, "content-type") {
        Some(h) => req.headers[h]
            .1
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded"),
        None => !req.body.is_empty(),
    }
}

/// Whether the vector is signed with V3 (ACS3-HMAC-SHA256) rather than the RPC V2 signature.
fn is_v3(v: &Vector) -> bool {
    v.algorithm == "ACS3-HMAC-SHA256"
}

fn tampered(v: &Vector) -> Vec<(String, Req)> {
    let req = &v.req;
    let mut out = Vec::new();
    out.extend(tamper_method(req));
    if let Some((path, query)) = req.target.split_once('?') {
        for (i, b, m) in tamper_str(query, 0..query.len()) {
            out.push((
                format!("query[{i}]={}", b as char),
                Req {
                    target: format!("{path}?{m}"),
                    ..req.clone()
                },
            ));
        }
    }
    // V3 signs any body through its hash; V2 signs a form body's parameters.
    if is_v3(v) || is_form(req) {
        for (i, b, body) in tamper_bytes(&req.body, 0..req.body.len()) {
            out.push((
                format!("body[{i}]={}", b as char),
                Req {
                    body,
                    ..req.clone()
                },
            ));
        }
    }
    if is_v3(v) {
        let authz = req.header("authorization").expect("V3 has Authorization");
        let parsed = auth::parse_acs3_authorization(authz).expect("a valid ACS3 Authorization");
        out.extend(tamper_headers(req, &parsed.signed_headers, &v.name));
    }
    out
}

#[test]
fn every_byte_of_every_signed_part_is_refused() {
    let all = valid_vectors_expecting("aliyun", 36);
    assert_eq!(all.iter().filter(|v| !is_v3(v)).count(), 4, "4 of them V2");
    let mut tally = TamperTally::default();
    for v in &all {
        let ok = verified(v, verify(v, &v.req, v.now));
        assert_eq!(ok.access_key_id, v.id);
        for (label, req) in tampered(v) {
            let scheme = if is_v3(v) { "v3" } else { "v2" };
            let accepted = verify(v, &req, v.now)
                .is_ok()
                .then(|| format!("{} {label}", v.name));
            tally.record(&format!("{scheme} {}", part_of(&label)), accepted);
        }
    }
    tally.assert_all_refused(
        "aliyun",
        all.len(),
        &[
            "v3 method",
            "v3 query",
            "v3 body",
            "v3 host",
            "v3 x-acs-date",
            "v3 x-acs-signature-nonce",
            "v3 x-acs-content-sha256",
            "v3 authorization",
            "v2 method",
            "v2 query",
            "v2 body",
        ],
        10_000,
    );
}

/// The other side, so the refusals mean something: the path and the unsigned headers may change.
#[test]
fn unsigned_parts_may_change() {
    for v in valid_vectors("aliyun") {
        let mut req = v.req.clone();
        // After the authority of an absolute-form target (proxy clients), or at the start.
        let slash = match req.target.strip_prefix("http://") {
            Some(rest) => 7 + rest.find('/').unwrap(),
            None => 0,
        };
        req.target.insert_str(slash + 1, "any/path/");
        assert!(
            verify(&v, &req, v.now).is_ok(),
            "{}: the path is not signed",
            v.name
        );
        let mut req = v.req.clone();
        req.headers
            .push(("x-unsigned-extra".into(), "anything".into()));
        assert!(verify(&v, &req, v.now).is_ok(), "{}", v.name);
    }
}

fn request_time(v: &Vector) -> u64 {
    let text = match v.req.header("x-acs-date") {
        Some(date) if is_v3(v) => date.to_string(),
        _ => kv_aliyun::wire::decode_form(v.req.query().as_bytes())
            .into_iter()
            .chain(kv_aliyun::wire::decode_form(&v.req.body))
            .find(|(k, _)| k == "Timestamp")
            .map(|(_, t)| t)
            .expect("V2 carries Timestamp"),
    };
    auth::parse_timestamp(&text).expect("a valid timestamp")
}

#[test]
fn timestamps_just_outside_the_window_are_expired_and_just_inside_accepted() {
    assert_eq!(auth::WINDOW_SECS, 900, "Aliyun documents 15 minutes");
    for v in valid_vectors("aliyun") {
        assert_freshness_window(
            &v.name,
            request_time(&v),
            auth::WINDOW_SECS,
            |now| verify(&v, &v.req, now),
            |refused| {
                assert_eq!(
                    (refused.error.code.as_str(), refused.error.status),
                    ("InvalidTimeStamp.Expired", 400),
                    "{}",
                    v.name
                )
            },
        );
    }
}

/// Every valid vector's nonce is accepted once and refused again within the window by the
/// dialect's replay cache, per access key.
#[test]
fn every_vector_nonce_is_single_use() {
    let cache = kv_core::replay::NonceCache::new(1000);
    for v in valid_vectors("aliyun") {
        let caller = verify(&v, &v.req, v.now).expect("valid");
        let nonce = caller.nonce.clone();
        assert!(
            cache.first_use(&caller.access_key_id, &nonce, v.now, auth::WINDOW_SECS),
            "{}",
            v.name
        );
        assert!(
            !cache.first_use(&caller.access_key_id, &nonce, v.now + 60, auth::WINDOW_SECS),
            "{}: replay",
            v.name
        );
    }
}

const ID: &str = "LTAItamper";
const SECRET: &str = "tampersecret";

fn dialect() -> Harness<kv_aliyun::AliyunDialect> {
    Setup::new(&[(ID, SECRET, "tamper")]).build(kv_aliyun::AliyunDialect::new)
}

fn now_iso() -> String {
    kv_aliyun::wire::iso_utc(kv_core::clock::wall_clock_secs() * 1000)
}

/// `GetKvAccount` signed with V3 now, with the given nonce.
fn v3_request(nonce: &str) -> Request<Bytes> {
    let mut headers = HeaderMap::new();
    let hash = hex::encode(Sha256::digest(b""));
    for (k, val) in [
        ("host", "127.0.0.1:9090".to_string()),
        ("x-acs-action", "GetKvAccount".into()),
        ("x-acs-version", "2024-09-10".into()),
        ("x-acs-date", now_iso()),
        ("x-acs-signature-nonce", nonce.into()),
        ("x-acs-content-sha256", hash.clone()),
    ] {
        headers.insert(k, HeaderValue::from_str(&val).unwrap());
    }
    let mut signed: Vec<String> = headers.keys().map(|k| k.to_string()).collect();
    signed.sort();
    let authorization = auth::sign_v3("GET", &[], &headers, &signed, &hash, ID, SECRET);
    let mut b = Request::builder().method("GET").uri("/");
    for (k, val) in &headers {
        b = b.header(k, val);
    }
    b.header("authorization", authorization)
        .body(Bytes::new())
        .unwrap()
}

/// `GetKvAccount` signed with V2 now, with the given SignatureNonce.
fn v2_request(nonce: &str) -> Request<Bytes> {
    let ts = now_iso();
    let params: Vec<(String, String)> = [
        ("Action", "GetKvAccount"),
        ("Version", "2024-09-10"),
        ("AccessKeyId", ID),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", ts.as_str()),
        ("Format", "JSON"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let signature = auth::sign_v2("GET", &params, SECRET);
    let query: Vec<String> = params
        .iter()
        .chain(std::iter::once(&("Signature".to_string(), signature)))
        .map(|(k, v)| format!("{}={}", auth::pct(k), auth::pct(v)))
        .collect();
    Request::builder()
        .method("GET")
        .uri(format!("/?{}", query.join("&")))
        .header("host", "127.0.0.1:9090")
        .body(Bytes::new())
        .unwrap()
}

async fn code_of(d: &kv_aliyun::AliyunDialect, request: Request<Bytes>) -> (u16, String) {
    let resp = d.serve_request(request).await;
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    (
        resp.status().as_u16(),
        body["Code"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn a_reused_nonce_is_refused_by_the_dialect_v3_and_v2() {
    let h = dialect();
    let d = h.dialect;
    for (scheme, make) in [
        ("v3", v3_request as fn(&str) -> Request<Bytes>),
        ("v2", v2_request),
    ] {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let (status, code) = code_of(&d, make(&nonce)).await;
        assert_eq!((status, code.as_str()), (200, ""), "{scheme}: first use");
        let (status, code) = code_of(&d, make(&nonce)).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "SignatureNonceUsed"),
            "{scheme}: replay"
        );
        let (status, code) = code_of(&d, make(&uuid::Uuid::new_v4().simple().to_string())).await;
        assert_eq!(
            (status, code.as_str()),
            (200, ""),
            "{scheme}: a fresh nonce"
        );
    }
}
