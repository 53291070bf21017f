//! Tamper: every byte of every signed part of every valid Tencent vector
//! (shared/specs/vectors/tencent.json) replaced by other values, each refused by the verifier the
//! dialect runs (and the unmodified request accepted in the same test, so the test can fail).
//!
//! What is signed (spec §6, auth.rs):
//! - TC3-HMAC-SHA256: the method; the path; the query string of a GET (a POST's query is not in
//!   the canonical request); the headers named in `SignedHeaders` (names and values; the clients
//!   sign `content-type;host`, so `X-TC-Action`, `X-TC-Version`, `X-TC-Region`... are NOT
//!   signed); `X-TC-Timestamp` (in the string to sign); the body (its SHA-256), unless
//!   `X-TC-Content-SHA256: UNSIGNED-PAYLOAD`; and the whole Authorization value (algorithm,
//!   SecretId, date, service, `tc3_request`, SignedHeaders, Signature). The Host is signed
//!   verbatim, except for the Node SDK, which signs the bare hostname: its port is not signed.
//! - Legacy HmacSHA1/HmacSHA256: the method, the Host, the path and every parameter (query of a
//!   GET, form body of a POST), names and values, with `Signature` itself. No header but Host.
//!
//! Also: timestamps just outside the 5-minute window (past and future) are refused with
//! `AuthFailure.SignatureExpire`, and just inside are accepted.

use kv_tencent::auth::{self, SignedRequest};
use kv_testkit::{
    assert_freshness_window, header_index, part_of, replacements, tamper_method, tamper_str,
    valid_vectors, valid_vectors_expecting, verified, Req, TamperTally, Vector,
};

/// Whether the vector uses the legacy HmacSHA1/HmacSHA256 signature rather than TC3.
fn is_legacy(v: &Vector) -> bool {
    v.algorithm != "TC3-HMAC-SHA256"
}

/// Runs the verifier the dialect picks, on the request as hyper would hand it over.
fn verify(v: &Vector, req: &Req, now: u64) -> Result<auth::Verified, auth::Refused> {
    let parts = req.to_parts();
    let secret_of = |k: &str| (k == v.id).then_some(v.secret.as_str());
    if !is_legacy(v) {
        return auth::verify_tc3(
            &SignedRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or_default(),
                headers: &parts.headers,
                body: &req.body,
            },
            secret_of,
            now,
        );
    }
    let mut pairs: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    if parts.method == http::Method::POST {
        pairs.extend(form_urlencoded::parse(&req.body).into_owned());
    }
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    auth::verify_legacy(
        parts.method.as_str(),
        host,
        parts.uri.path(),
        &pairs,
        secret_of,
        now,
    )
}

/// Every tampered copy of the vector's request, labelled with the part it changes.
fn tampered(v: &Vector, accepted: &auth::Verified) -> Vec<(String, Req)> {
    let mut out = Vec::new();
    let req = &v.req;
    let mut push = |label: String, r: Req| out.push((label, r));
    for (label, r) in tamper_method(req) {
        push(label, r);
    }
    let (path, query) = req
        .target
        .split_once('?')
        .map_or((req.target.as_str(), None), |(p, q)| (p, Some(q)));
    // The leading '/' is structural (an origin-form target starts with it); every other path
    // byte is signed.
    for (i, b, m) in tamper_str(path, 1.min(path.len())..path.len()) {
        let target = match query {
            Some(q) => format!("{m}?{q}"),
            None => m,
        };
        push(
            format!("path[{i}]={}", b as char),
            Req {
                target,
                ..req.clone()
            },
        );
    }
    let query_signed = is_legacy(v) || req.method == "GET";
    if let (Some(q), true) = (query, query_signed) {
        for (i, b, m) in tamper_str(q, 0..q.len()) {
            push(
                format!("query[{i}]={}", b as char),
                Req {
                    target: format!("{path}?{m}"),
                    ..req.clone()
                },
            );
        }
    }
    if is_legacy(v) && req.method == "POST" {
        for i in 0..req.body.len() {
            for r in replacements(req.body[i]) {
                let mut body = req.body.clone();
                body[i] = r;
                push(
                    format!("form[{i}]={}", r as char),
                    Req {
                        body,
                        ..req.clone()
                    },
                );
            }
        }
    }
    let mut signed_headers: Vec<String> = vec!["host".into()];
    if !is_legacy(v) {
        let authz = req.header("authorization").expect("TC3 has Authorization");
        let parsed = auth::parse_tc3_authorization(authz).expect("a valid TC3 Authorization");
        signed_headers = parsed.signed_headers.clone();
        signed_headers.push("x-tc-timestamp".into());
        signed_headers.push("authorization".into());
        let unsigned = req.headers.iter().any(|(k, val)| {
            k.eq_ignore_ascii_case("x-tc-content-sha256") && val == "UNSIGNED-PAYLOAD"
        });
        if !unsigned {
            for i in 0..req.body.len() {
                for r in replacements(req.body[i]) {
                    let mut body = req.body.clone();
                    body[i] = r;
                    push(
                        format!("body[{i}]={}", r as char),
                        Req {
                            body,
                            ..req.clone()
                        },
                    );
                }
            }
        }
    }
    for name in &signed_headers {
        let Some(h) = header_index(req, name) else {
            continue;
        };
        let value = &req.headers[h].1;
        let mut range = 0..value.len();
        if name == "host"
            && !is_legacy(v)
            && !accepted
                .canonical_request
                .contains(&format!("\nhost:{value}\n"))
        {
            // The Node SDK signed only the bare hostname: the port is not a signed part.
            let bare = auth::bare_hostname(value);
            let start = value.find(bare).expect("bare hostname inside the Host");
            range = start..start + bare.len();
        }
        for (i, b, m) in tamper_str(value, range) {
            let mut r = req.clone();
            r.headers[h].1 = m;
            push(format!("{name}[{i}]={}", b as char), r);
        }
        // The header's name: renamed, the signed header is gone.
        if name != "authorization" && name != "x-tc-timestamp" {
            let header_name = req.headers[h].0.clone();
            for (i, b, m) in tamper_str(&header_name, 0..header_name.len()) {
                let mut r = req.clone();
                r.headers[h].0 = m;
                push(format!("{name} name[{i}]={}", b as char), r);
            }
        }
    }
    out
}

#[test]
fn every_byte_of_every_signed_part_is_refused() {
    let all = valid_vectors_expecting("tencent", 20);
    let mut tally = TamperTally::default();
    for v in &all {
        let ok = verified(v, verify(v, &v.req, v.now));
        for (label, req) in tampered(v, &ok) {
            let accepted = verify(v, &req, v.now)
                .ok()
                .map(|a| format!("{} {label}: accepted as {}", v.name, a.secret_id));
            tally.record(part_of(&label), accepted);
        }
    }
    tally.assert_all_refused(
        "tencent",
        all.len(),
        &[
            "method",
            "query",
            "body",
            "form",
            "host",
            "content-type",
            "x-tc-timestamp",
            "authorization",
        ],
        5_000,
    );
}

/// The request's own timestamp: `X-TC-Timestamp` (TC3) or the `Timestamp` parameter (legacy).
fn timestamp_of(v: &Vector) -> u64 {
    if let Some(timestamp) = v.req.header("x-tc-timestamp") {
        return timestamp.parse().unwrap();
    }
    form_urlencoded::parse(v.req.query().as_bytes())
        .chain(form_urlencoded::parse(&v.req.body))
        .find(|(k, _)| k == "Timestamp")
        .map(|(_, t)| t.parse().unwrap())
        .expect("a legacy request carries Timestamp")
}

#[test]
fn timestamps_just_outside_the_window_are_expired_and_just_inside_accepted() {
    assert_eq!(
        auth::TIMESTAMP_WINDOW_SECS,
        300,
        "Tencent documents 5 minutes"
    );
    for v in valid_vectors("tencent") {
        assert_freshness_window(
            &v.name,
            timestamp_of(&v),
            auth::TIMESTAMP_WINDOW_SECS,
            |now| verify(&v, &v.req, now),
            |refused| {
                assert_eq!(
                    refused.error.code, "AuthFailure.SignatureExpire",
                    "{}",
                    v.name
                )
            },
        );
    }
}

/// The other side, so the refusals above mean something: parts that are not signed may change
/// and the request still verifies (X-TC-Action is not in `content-type;host`; a POST's query is
/// not in the TC3 canonical request).
#[test]
fn unsigned_parts_may_change() {
    let mut checked = 0;
    for v in valid_vectors("tencent")
        .into_iter()
        .filter(|v| !is_legacy(v))
    {
        let mut req = v.req.clone();
        if let Some(h) = header_index(&req, "x-tc-action") {
            req.headers[h].1 = "EdgeKVDelete".into();
            assert!(
                verify(&v, &req, v.now).is_ok(),
                "{}: X-TC-Action is unsigned",
                v.name
            );
            checked += 1;
        }
        if v.req.method == "POST" {
            let mut req = v.req.clone();
            req.target = format!(
                "{}?Namespace=elsewhere",
                req.target.split('?').next().unwrap()
            );
            assert!(
                verify(&v, &req, v.now).is_ok(),
                "{}: a POST's query is unsigned",
                v.name
            );
        }
    }
    assert!(checked > 10);
}
