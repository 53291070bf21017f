//! Tamper: every byte of every signed part of every valid Huawei vector
//! (shared/specs/vectors/huawei.json) replaced by other values, each refused by the verifier the
//! dialect runs (and the unmodified request accepted in the same test, so the test can fail).
//!
//! What is signed (spec §7, auth.rs): the method; the path (canonical URI) and the query; the
//! headers named in `SignedHeaders`, names and values (the SDKs sign `content-type`, `host`,
//! `x-sdk-date`, and the Python SDK also `user-agent` and `x-project-id`), with `x-sdk-date`
//! required among them and also in the string to sign; the body through its SHA-256 or SM3, or
//! through a declared `X-Sdk-Content-Sha256` that must match it, except when that header says
//! `UNSIGNED-PAYLOAD` (then the body is not signed); and the whole Authorization value
//! (algorithm, `Access`, SignedHeaders, Signature). The authority of an absolute-form target
//! (proxy clients) is not signed: the Host header is.
//!
//! Also: `X-Sdk-Date` just outside the 15-minute window (past and future) is refused, just
//! inside accepted, and through the whole dialect the refusal is Huawei's `401 APIGW.0301`.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use kv_dialect::testing::Setup;
use kv_dialect::{Dialect, SignatureDiagnostics};
use kv_huawei::auth::{self, SignedRequest, Verified};
use kv_testkit::{
    assert_freshness_window, header_index, part_of, tamper_bytes, tamper_headers, tamper_method,
    tamper_str, valid_vectors, valid_vectors_expecting, verified, Req, TamperTally, Vector,
};

/// The verifier, fed exactly as the dialect feeds it.
fn verify(v: &Vector, req: &Req, now: i64) -> Result<Verified, Box<SignatureDiagnostics>> {
    let parts = req.to_parts();
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &req.body,
    };
    auth::verify(&signed, now, |ak| (ak == v.id).then(|| v.secret.clone()))
}

/// Where the path of the target starts (after the authority of an absolute-form target).
fn path_start(target: &str) -> usize {
    match target.strip_prefix("http://") {
        Some(rest) => 7 + rest.find('/').expect("a path after the authority"),
        None => 0,
    }
}

fn tampered(v: &Vector) -> Vec<(String, Req)> {
    let req = &v.req;
    let mut out = Vec::new();
    out.extend(tamper_method(req));
    // Path and query; the path's leading '/' is structural.
    let start = path_start(&req.target) + 1;
    for (i, b, target) in tamper_str(&req.target, start..req.target.len()) {
        let part = if req.target[..i].contains('?') {
            "query"
        } else {
            "path"
        };
        out.push((
            format!("{part}[{i}]={}", b as char),
            Req {
                target,
                ..req.clone()
            },
        ));
    }
    let unsigned_payload = header_index(req, "x-sdk-content-sha256")
        .is_some_and(|h| req.headers[h].1 == "UNSIGNED-PAYLOAD");
    if !unsigned_payload {
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
    let authz = req.header("authorization").expect("Authorization");
    let parsed = auth::parse_authorization(authz).expect("a valid Authorization");
    out.extend(tamper_headers(req, &parsed.signed_headers, &v.name));
    out
}

#[test]
fn every_byte_of_every_signed_part_is_refused() {
    let all = valid_vectors_expecting("huawei", 110);
    let mut tally = TamperTally::default();
    for v in &all {
        let ok = verified(v, verify(v, &v.req, v.now as i64));
        assert_eq!(ok.access, v.id);
        for (label, req) in tampered(v) {
            let accepted = verify(v, &req, v.now as i64)
                .is_ok()
                .then(|| format!("{} {label}", v.name));
            tally.record(part_of(&label), accepted);
        }
    }
    tally.assert_all_refused(
        "huawei",
        all.len(),
        &[
            "method",
            "path",
            "body",
            "host",
            "content-type",
            "x-sdk-date",
            "authorization",
            "host name",
        ],
        50_000,
    );
}

/// The other side, so the refusals mean something: unsigned headers may change, and with
/// `UNSIGNED-PAYLOAD` so may the body.
#[test]
fn unsigned_parts_may_change() {
    let mut unsigned_bodies = 0;
    for v in valid_vectors("huawei") {
        let mut req = v.req.clone();
        req.headers
            .push(("x-unsigned-extra".into(), "anything".into()));
        assert!(verify(&v, &req, v.now as i64).is_ok(), "{}", v.name);
        if header_index(&v.req, "x-sdk-content-sha256")
            .is_some_and(|h| v.req.headers[h].1 == "UNSIGNED-PAYLOAD")
        {
            let mut req = v.req.clone();
            req.body.push(0);
            assert!(verify(&v, &req, v.now as i64).is_ok(), "{}", v.name);
            unsigned_bodies += 1;
        }
    }
    assert_eq!(
        unsigned_bodies, 1,
        "one vector (the Go SDK's) sends UNSIGNED-PAYLOAD"
    );
}

#[test]
fn dates_just_outside_the_window_are_refused_and_just_inside_accepted() {
    assert_eq!(auth::MAX_SKEW_SECONDS, 900, "15 minutes");
    for v in valid_vectors("huawei") {
        let h = header_index(&v.req, "x-sdk-date").expect("X-Sdk-Date");
        let t = auth::parse_sdk_date(&v.req.headers[h].1).expect("a valid date");
        assert_freshness_window(
            &v.name,
            t as u64,
            auth::MAX_SKEW_SECONDS as u64,
            |now| verify(&v, &v.req, now as i64),
            |refused| {
                assert!(
                    refused.reason.contains("15 minutes"),
                    "{}: {}",
                    v.name,
                    refused.reason
                )
            },
        );
    }
}

const AK: &str = "HWtamper";
const SK: &str = "tampersecret";

/// `list-store` signed at wall-clock time plus `offset` seconds.
fn signed_at(offset: i64) -> Request<Bytes> {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset);
    let date = at
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap();
    let body = Bytes::from(bson::doc! {}.to_vec().unwrap());
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/bson"));
    headers.insert("host", HeaderValue::from_static("127.0.0.1:9090"));
    headers.insert("x-sdk-date", HeaderValue::from_str(&date).unwrap());
    let signed = SignedRequest {
        method: "POST",
        path: "/v1/list-store",
        query: None,
        headers: &headers,
        body: &body,
    };
    let signed_headers = vec!["content-type".into(), "host".into(), "x-sdk-date".into()];
    let authorization = auth::sign(
        &signed,
        auth::Algorithm::HmacSha256,
        AK,
        SK,
        signed_headers,
        &date,
    );
    let mut b = Request::builder().method("POST").uri("/v1/list-store");
    for (k, val) in &headers {
        b = b.header(k, val);
    }
    b.header("authorization", authorization).body(body).unwrap()
}

/// Through the whole dialect (which reads the wall clock): 20 s either side of the window edge,
/// so the test's own run time cannot move a request across it.
#[tokio::test]
async fn the_dialect_refuses_stale_and_future_dates_with_apigw_0301() {
    let h = Setup::new(&[(AK, SK, "tamper")]).build(kv_huawei::HuaweiDialect::new);
    let dialect = &h.dialect;
    for offset in [-920, 920, -86_400] {
        let resp = dialect.serve_request(signed_at(offset)).await;
        assert_eq!(resp.status(), 401, "signed {offset} s away");
        let doc = bson::Document::from_reader(&mut resp.body().as_ref()).unwrap();
        assert_eq!(doc.get_str("error_code").unwrap(), "APIGW.0301", "{doc}");
    }
    for offset in [-880, 880, 0] {
        let resp = dialect.serve_request(signed_at(offset)).await;
        assert_eq!(
            resp.status(),
            200,
            "signed {offset} s away is inside the window"
        );
    }
}
