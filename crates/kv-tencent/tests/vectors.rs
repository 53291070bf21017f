//! Every signature vector recorded from the real Tencent clients (shared/specs/vectors/tencent.json):
//! each valid one verifies with exactly the recorded canonical request and string-to-sign, each
//! tampered one is refused. Also: claims() is true for every Tencent vector and false for every
//! Aliyun and Huawei one, so dispatch can never hand another vendor's request to this dialect.

use base64::Engine as _;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use kv_tencent::auth::{self, SignedRequest};
use kv_testkit::vectors;
use serde_json::Value;

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing"))
}

fn body(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s(v, "body_b64"))
        .expect("body_b64")
}

fn parts(v: &Value) -> Parts {
    let mut builder = Request::builder()
        .method(s(v, "method"))
        .uri(s(v, "target"));
    for h in v["headers"].as_array().expect("headers") {
        let name = HeaderName::from_bytes(h[0].as_str().unwrap().as_bytes()).unwrap();
        let value = HeaderValue::from_str(h[1].as_str().unwrap()).unwrap();
        builder = builder.header(name, value);
    }
    builder.body(()).expect("request").into_parts().0
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Runs the verifier the dialect would pick for this vector, at the vector's clock.
fn verify(v: &Value) -> Result<auth::Verified, auth::Refused> {
    let parts = parts(v);
    let body = body(v);
    let secret = s(&v["credential"], "secret").to_string();
    let id = s(&v["credential"], "id").to_string();
    let secret_of = |k: &str| (k == id).then_some(secret.as_str());
    let now = v["now_unix"].as_u64().expect("now_unix");
    if s(v, "algorithm") == "TC3-HMAC-SHA256" {
        auth::verify_tc3(
            &SignedRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or_default(),
                headers: &parts.headers,
                body: &body,
            },
            secret_of,
            now,
        )
    } else {
        let mut pairs: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        if parts.method == http::Method::POST {
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        auth::verify_legacy(
            parts.method.as_str(),
            header(&parts.headers, "host"),
            parts.uri.path(),
            &pairs,
            secret_of,
            now,
        )
    }
}

#[test]
fn every_valid_vector_verifies_with_the_recorded_strings() {
    let all = vectors("tencent");
    let valid: Vec<&Value> = all.iter().filter(|v| v["valid"] == true).collect();
    assert_eq!(valid.len(), 20, "the vectors file holds 20 valid requests");
    for v in valid {
        let name = s(v, "name");
        let ok = verify(v).unwrap_or_else(|r| panic!("{name} refused: {:?}", r.error));
        assert_eq!(ok.canonical_request, s(v, "canonical_request"), "{name}");
        assert_eq!(ok.string_to_sign, s(v, "string_to_sign"), "{name}");
        assert_eq!(ok.secret_id, "AKIDtest", "{name}");
    }
}

#[test]
fn every_tampered_vector_is_refused_as_a_signature_failure() {
    let all = vectors("tencent");
    let invalid: Vec<&Value> = all.iter().filter(|v| v["valid"] == false).collect();
    assert_eq!(
        invalid.len(),
        14,
        "the vectors file holds 14 tampered requests"
    );
    for v in invalid {
        let name = s(v, "name");
        let refused = match verify(v) {
            Ok(_) => panic!("{name} ({}) was accepted", s(v, "why")),
            Err(r) => r,
        };
        assert_eq!(
            refused.error.code, "AuthFailure.SignatureFailure",
            "{name}: {}",
            refused.error.message
        );
        // The inspector shows what the verifier built, which is what the vector records.
        assert_eq!(
            refused.diagnostics.canonical_request,
            s(v, "canonical_request"),
            "{name}"
        );
        assert_eq!(
            refused.diagnostics.string_to_sign,
            s(v, "string_to_sign"),
            "{name}"
        );
        assert_eq!(
            refused.diagnostics.client_signature,
            s(v, "signature"),
            "{name}"
        );
    }
}

#[test]
fn a_valid_vector_with_another_secret_is_refused() {
    let all = vectors("tencent");
    for v in all.iter().filter(|v| v["valid"] == true) {
        let mut wrong = v.clone();
        wrong["credential"]["secret"] = Value::String("not-the-secret".into());
        let refused = verify(&wrong).expect_err("wrong secret must fail");
        assert_eq!(refused.error.code, "AuthFailure.SignatureFailure");
    }
}

/// The request's own timestamp: `X-TC-Timestamp` (TC3) or the `Timestamp` parameter (legacy).
fn request_timestamp(v: &Value) -> u64 {
    let parts = parts(v);
    if let Some(t) = parts.headers.get("x-tc-timestamp") {
        return t.to_str().unwrap().parse().unwrap();
    }
    let body = body(v);
    form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .chain(form_urlencoded::parse(&body))
        .find(|(k, _)| k == "Timestamp")
        .map(|(_, t)| t.parse().unwrap())
        .expect("a legacy request carries Timestamp")
}

#[test]
fn a_valid_vector_outside_the_five_minute_window_is_expired() {
    let all = vectors("tencent");
    for v in all.iter().filter(|v| v["valid"] == true) {
        let ts = request_timestamp(v);
        for now in [ts + 301, ts - 301] {
            let mut late = v.clone();
            late["now_unix"] = Value::from(now);
            let refused = verify(&late).expect_err("stale must fail");
            assert_eq!(
                refused.error.code,
                "AuthFailure.SignatureExpire",
                "{}",
                s(v, "name")
            );
        }
        for now in [ts + 300, ts - 300] {
            let mut edge = v.clone();
            edge["now_unix"] = Value::from(now);
            assert!(verify(&edge).is_ok(), "300 s is still inside the window");
        }
    }
}

#[test]
fn an_unknown_secret_id_is_its_own_code() {
    let all = vectors("tencent");
    for v in all.iter().filter(|v| v["valid"] == true) {
        let mut other = v.clone();
        other["credential"]["id"] = Value::String("AKIDsomeoneelse".into());
        let refused = verify(&other).expect_err("unknown id must fail");
        assert_eq!(refused.error.code, "AuthFailure.SecretIdNotFound");
    }
}

#[test]
fn claims_every_tencent_vector_and_no_other_vendors() {
    for v in vectors("tencent") {
        assert!(kv_tencent::router::claims(&parts(&v)), "{}", s(&v, "name"));
    }
    for vendor in ["aliyun", "huawei"] {
        let all = vectors(vendor);
        assert!(!all.is_empty());
        for v in all {
            assert!(
                !kv_tencent::router::claims(&parts(&v)),
                "{vendor} vector {} claimed",
                s(&v, "name")
            );
        }
    }
}

/// The same vectors through the whole dialect (`serve()`), at the time they were recorded: valid
/// requests pass authentication (whatever the action then answers), tampered ones are refused with
/// the recorded canonical request in the inspector's diagnostics.
#[tokio::test]
async fn every_vector_through_serve() {
    use bytes::Bytes;
    use kv_core::{Clock, Engine};
    use kv_dialect::{Answer, AuthMode, Credential, Dialect, DialectContext};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let engine =
        Arc::new(Engine::open_redb(&dir.path().join("kv.redb"), false, Clock::new()).unwrap());
    for v in vectors("tencent") {
        let name = s(&v, "name");
        let now = v["now_unix"].as_u64().unwrap();
        let dialect = kv_tencent::TencentDialect::new(DialectContext {
            engine: engine.clone(),
            credentials: vec![Credential {
                id: "AKIDtest".into(),
                secret: "secret".into(),
                account: "vectors".into(),
            }]
            .into(),
            auth_mode: AuthMode::Enforce,
            options: Value::Null,
            vendor_rate_limits: false,
        })
        .with_wall_clock(move || now);
        let parts = parts(&v);
        let head = dialect
            .classify(&parts)
            .unwrap_or_else(|| panic!("{name}: not claimed"));
        let Answer { response, info } = dialect
            .serve(head, Request::from_parts(parts, Bytes::from(body(&v))))
            .await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let reply: Value = serde_json::from_slice(response.body()).unwrap();
        let code = reply["Response"]["Error"]["Code"].as_str().unwrap_or("");
        if v["valid"] == true {
            assert!(!code.starts_with("AuthFailure"), "{name}: {reply}");
            assert_eq!(info.account.as_deref(), Some("vectors"), "{name}");
            assert!(info.signature.is_none(), "{name}");
            assert_ne!(info.operation, "unknown", "{name}");
        } else {
            assert_eq!(code, "AuthFailure.SignatureFailure", "{name}");
            let diag = info.signature.expect("diagnostics");
            assert_eq!(diag.canonical_request, s(&v, "canonical_request"), "{name}");
            assert_eq!(diag.string_to_sign, s(&v, "string_to_sign"), "{name}");
        }
    }
}
