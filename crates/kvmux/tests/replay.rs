//! Aliyun replays and re-targeting, end to end on the real binary with signatures enforced: a
//! signed request (V3 or V2) is served once and its exact bytes are refused with
//! `SignatureNonceUsed` afterwards, also after a graceful restart on the same data dir (the nonce
//! is kept in the store, not in process memory); a request without a nonce is refused; and a V2
//! request cannot be re-targeted by an unsigned `x-acs-action` header.

mod adversarial;
mod common;

use adversarial::raw::{exchange, Exchange, RawRequest};
use adversarial::sign;
use adversarial::Vendor;
use common::Server;
use serde_json::Value;

const ENFORCE: &str = "[auth]\nmode = \"enforce\"\n";
const ESA: &str = "2024-09-10";

fn host(s: &Server) -> String {
    format!("127.0.0.1:{}", s.port)
}

fn now_iso() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .expect("format")
}

/// An ESA action signed with V3 the way tea-openapi signs it (fresh nonce, date now).
fn v3(s: &Server, method: &str, action: &str, query: &str, form: &str) -> RawRequest {
    v3_at(s, method, action, ESA, query, form)
}

/// [`v3`] for another API version (OpenPlatform's AuthorizeFileUpload is 2019-12-19).
fn v3_at(
    s: &Server,
    method: &str,
    action: &str,
    version: &str,
    query: &str,
    form: &str,
) -> RawRequest {
    let target = if query.is_empty() {
        "/".to_string()
    } else {
        format!("/?{query}")
    };
    let mut r = RawRequest::new(method, &target)
        .header("Host", host(s))
        .header("x-acs-action", action)
        .header("x-acs-version", version);
    if !form.is_empty() {
        r = r
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form);
    }
    assert!(sign::aliyun_v3(&mut r, &Vendor::Aliyun.dev_key()));
    r
}

/// A GET signed with RPC V2 (HMAC-SHA1) over `params` plus the common parameters; with
/// `nonce` None the request carries no SignatureNonce.
fn v2(s: &Server, action: &str, params: &[(&str, &str)], nonce: Option<&str>) -> RawRequest {
    let key = Vendor::Aliyun.dev_key();
    let ts = now_iso();
    let mut all: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("Action", action),
        ("Version", ESA),
        ("Format", "JSON"),
        ("AccessKeyId", key.id.as_str()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("Timestamp", ts.as_str()),
    ] {
        all.push((k.into(), v.into()));
    }
    if let Some(n) = nonce {
        all.push(("SignatureNonce".into(), n.into()));
    }
    let signature = kv_aliyun::auth::sign_v2("GET", &all, &key.secret);
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&all)
        .append_pair("Signature", &signature)
        .finish();
    RawRequest::new("GET", &format!("/?{query}")).header("Host", host(s))
}

/// Status and JSON body of one exchange.
fn send(s: &Server, r: &RawRequest) -> (u16, Value) {
    match exchange(s.port, r) {
        Exchange::Reply(reply) => {
            let v: Value = serde_json::from_slice(&reply.body)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&reply.body)));
            (reply.status, v)
        }
        other => panic!("{other:?}"),
    }
}

fn code(v: &Value) -> &str {
    v["Code"].as_str().unwrap_or("")
}

fn fresh_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[test]
fn a_signed_aliyun_request_is_served_once_and_refused_again_even_after_a_restart() {
    let mut s = Server::start(ENFORCE);
    let (status, v) = send(&s, &v3(&s, "POST", "CreateKvNamespace", "", "Namespace=ns"));
    assert_eq!(status, 200, "{v}");

    // One captured request of each signature, sent again byte for byte.
    let put = v3(&s, "POST", "PutKv", "Namespace=ns&Key=k", "Value=first");
    let nonce = fresh_nonce();
    let get_v2 = v2(
        &s,
        "GetKv",
        &[("Namespace", "ns"), ("Key", "k")],
        Some(&nonce),
    );
    assert_eq!(send(&s, &put).0, 200);
    let (status, v) = send(&s, &get_v2);
    assert_eq!((status, v["Value"].as_str()), (200, Some("first")), "{v}");
    for (what, r) in [("v3", &put), ("v2", &get_v2)] {
        let (status, v) = send(&s, r);
        assert_eq!(
            (status, code(&v)),
            (400, "SignatureNonceUsed"),
            "{what}: {v}"
        );
    }

    // The data changes meanwhile; a replayed PutKv must not put "first" back.
    let (status, _) = send(
        &s,
        &v3(&s, "POST", "PutKv", "Namespace=ns&Key=k", "Value=second"),
    );
    assert_eq!(status, 200);

    s.terminate();
    s.restart();
    for (what, r) in [("v3", &put), ("v2", &get_v2)] {
        let (status, v) = send(&s, r);
        assert_eq!(
            (status, code(&v)),
            (400, "SignatureNonceUsed"),
            "{what} after a restart: {v}"
        );
    }
    let (status, v) = send(&s, &v3(&s, "GET", "GetKv", "Namespace=ns&Key=k", ""));
    assert_eq!((status, v["Value"].as_str()), (200, Some("second")), "{v}");
}

#[test]
fn aliyun_requests_without_a_nonce_are_refused() {
    let s = Server::start(ENFORCE);
    // V2 without SignatureNonce.
    let (status, v) = send(&s, &v2(&s, "GetKvAccount", &[], None));
    assert_eq!((status, code(&v)), (400, "MissingParameter"), "{v}");
    assert!(v["Message"]
        .as_str()
        .unwrap_or("")
        .contains("SignatureNonce"));
    // V3 without x-acs-signature-nonce (signed without it: the signer's nonce is dropped and the
    // request re-signed over what is left).
    let mut r = RawRequest::new("GET", "/")
        .header("Host", host(&s))
        .header("x-acs-action", "GetKvAccount")
        .header("x-acs-version", ESA);
    assert!(sign::aliyun_v3(&mut r, &Vendor::Aliyun.dev_key()));
    r.headers.retain(|(n, _)| {
        !n.eq_ignore_ascii_case(b"x-acs-signature-nonce")
            && !n.eq_ignore_ascii_case(b"authorization")
    });
    let (status, v) = send(&s, &resign_without_nonce(r));
    assert_eq!((status, code(&v)), (400, "MissingParameter"), "{v}");
    // And the same request with a nonce is fine.
    let (status, v) = send(&s, &v3(&s, "GET", "GetKvAccount", "", ""));
    assert_eq!(status, 200, "{v}");
}

/// Signs `r` (which has no nonce) over host, action, version, date and body hash only.
fn resign_without_nonce(mut r: RawRequest) -> RawRequest {
    let key = Vendor::Aliyun.dev_key();
    let mut headers = http::HeaderMap::new();
    for (n, v) in &r.headers {
        headers.append(
            http::HeaderName::from_bytes(n).expect("name"),
            http::HeaderValue::from_bytes(v).expect("value"),
        );
    }
    let mut signed: Vec<String> = [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-version",
    ]
    .into_iter()
    .filter(|h| headers.contains_key(*h))
    .map(str::to_string)
    .collect();
    signed.sort();
    let hash = String::from_utf8_lossy(r.get("x-acs-content-sha256").expect("hash")).into_owned();
    let authorization =
        kv_aliyun::auth::sign_v3("GET", &[], &headers, &signed, &hash, &key.id, &key.secret);
    r.set("Authorization", authorization);
    r
}

#[test]
fn an_unsigned_header_cannot_retarget_a_v2_request() {
    let s = Server::start(ENFORCE);
    assert_eq!(
        send(&s, &v3(&s, "POST", "CreateKvNamespace", "", "Namespace=ns")).0,
        200
    );
    assert_eq!(
        send(
            &s,
            &v3(&s, "POST", "PutKv", "Namespace=ns&Key=k", "Value=kept")
        )
        .0,
        200
    );
    // Signed as GetKv / GetKvNamespace, sent with the header of a delete.
    let get = v2(
        &s,
        "GetKv",
        &[("Namespace", "ns"), ("Key", "k")],
        Some(&fresh_nonce()),
    )
    .header("x-acs-action", "DeleteKv")
    .header("x-acs-version", ESA);
    let (status, v) = send(&s, &get);
    assert_eq!((status, code(&v)), (400, "InvalidParameters"), "{v}");
    let ns = v2(
        &s,
        "GetKvNamespace",
        &[("Namespace", "ns")],
        Some(&fresh_nonce()),
    )
    .header("x-acs-action", "DeleteKvNamespace")
    .header("x-acs-version", ESA);
    let (status, v) = send(&s, &ns);
    assert_eq!((status, code(&v)), (400, "InvalidParameters"), "{v}");
    let (status, v) = send(&s, &v3(&s, "GET", "GetKv", "Namespace=ns&Key=k", ""));
    assert_eq!((status, v["Value"].as_str()), (200, Some("kept")), "{v}");
}

/// One multipart PostObject as the SDK sends it (fields sorted, file last).
fn upload(s: &Server, key: &str, policy: &str, signature: &str, file: &[u8]) -> RawRequest {
    let mut body = Vec::new();
    for (name, value) in [
        ("OSSAccessKeyId", "kvmux-oss"),
        ("Signature", signature),
        ("key", key),
        ("policy", policy),
        ("success_action_status", "201"),
    ] {
        body.extend_from_slice(
            format!("--zz\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{key}\"\r\nContent-Type: \r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--zz--\r\n");
    RawRequest::new("POST", "/")
        .header("Host", format!("http://{}", host(s)))
        .header("Content-Type", "multipart/form-data; boundary=zz")
        .body(body)
}

fn upload_reply(s: &Server, r: &RawRequest) -> (u16, String) {
    match exchange(s.port, r) {
        Exchange::Reply(reply) => (reply.status, String::from_utf8_lossy(&reply.body).into()),
        other => panic!("{other:?}"),
    }
}

/// The unsigned OSS upload step: without the policy and Signature that AuthorizeFileUpload
/// handed out (or with forged ones) a large file is refused with OSS's XML error and nothing is
/// stored, so the Url it would have made cannot be used.
#[test]
fn an_upload_without_its_grant_is_refused_and_stores_nothing() {
    let s = Server::start(ENFORCE);
    assert_eq!(
        send(&s, &v3(&s, "POST", "CreateKvNamespace", "", "Namespace=ns")).0,
        200
    );
    let (status, grant) = send(
        &s,
        &v3_at(
            &s,
            "GET",
            "AuthorizeFileUpload",
            "2019-12-19",
            "Product=ESA",
            "",
        ),
    );
    assert_eq!(status, 200, "{grant}");
    let key = grant["ObjectKey"].as_str().expect("ObjectKey");
    let policy = grant["EncodedPolicy"].as_str().expect("EncodedPolicy");
    let signature = grant["Signature"].as_str().expect("Signature");
    let value = "v".repeat(20 * 1024 * 1024);
    let object = format!(r#"{{"Namespace":"ns","Key":"big","Value":"{value}"}}"#);
    for (what, p, sig, expected) in [
        ("no policy, no signature", "", "", "SignatureDoesNotMatch"),
        (
            "forged signature",
            policy,
            "kvmux-unsigned",
            "SignatureDoesNotMatch",
        ),
        ("forged policy", "e30=", signature, "SignatureDoesNotMatch"),
    ] {
        let (status, xml) = upload_reply(&s, &upload(&s, key, p, sig, object.as_bytes()));
        assert_eq!(status, 403, "{what}: {xml}");
        assert!(
            xml.contains(&format!("<Code>{expected}</Code>")),
            "{what}: {xml}"
        );
    }
    let url = format!("http://http://{}/{key}", host(&s));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("Namespace", "ns")
        .append_pair("Key", "big")
        .append_pair("Url", &url)
        .finish();
    let (status, v) = send(&s, &v3(&s, "POST", "PutKvWithHighCapacity", &query, ""));
    assert_eq!(
        (status, code(&v)),
        (400, "InvalidParameters"),
        "nothing stored: {v}"
    );
    // The genuine grant uploads and the value lands.
    let (status, xml) = upload_reply(&s, &upload(&s, key, policy, signature, object.as_bytes()));
    assert_eq!(status, 201, "{xml}");
    let (status, v) = send(&s, &v3(&s, "POST", "PutKvWithHighCapacity", &query, ""));
    assert_eq!(
        (status, v["Length"].as_str()),
        (200, Some("20971520")),
        "{v}"
    );
}
