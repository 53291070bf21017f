//! Signs any [`RawRequest`] (malformed bodies, odd headers, odd paths included) with a dialect's
//! own client-side signer (`auth::sign*`, built on its verifier's canonical request), the way
//! `kvmux_bench::workload` signs its well-formed requests, so that a malformed request passes
//! authentication and reaches the dialect's decoders with signatures enforced.

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::raw::{Framing, RawRequest};

/// A key pair of one dialect.
#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

impl Key {
    pub fn new(id: &str, secret: &str) -> Key {
        Key {
            id: id.into(),
            secret: secret.into(),
        }
    }
}

fn now_utc(format: &[time::format_description::FormatItem<'_>]) -> String {
    time::OffsetDateTime::now_utc()
        .format(format)
        .expect("format")
}

/// The headers as the server will see them; None when a header cannot exist in `http` (then the
/// request is sent unsigned and must be refused in the dialect's envelope).
fn header_map(req: &RawRequest) -> Option<HeaderMap> {
    let mut map = HeaderMap::new();
    for (n, v) in &req.headers {
        map.append(
            HeaderName::from_bytes(n).ok()?,
            HeaderValue::from_bytes(v).ok()?,
        );
    }
    Some(map)
}

/// Path and raw query of the request target as the server's `Uri` will split them.
fn target(req: &RawRequest) -> Option<(String, String)> {
    let uri: http::Uri = std::str::from_utf8(&req.target).ok()?.parse().ok()?;
    Some((
        uri.path().to_string(),
        uri.query().unwrap_or_default().to_string(),
    ))
}

fn signable(req: &RawRequest) -> bool {
    matches!(req.framing, Framing::Auto) && std::str::from_utf8(&req.method).is_ok()
}

/// TC3-HMAC-SHA256 over `content-type;host` (or `host` alone when there is no Content-Type), with
/// `X-TC-Timestamp` now unless the request carries its own. Returns false when not signable.
pub fn tencent(req: &mut RawRequest, key: &Key) -> bool {
    tencent_signing(req, key, &[])
}

/// TC3 as [`tencent`], also signing the `extra` headers the request has (e.g. `x-tc-action`,
/// which a client may sign; the server must then verify it as any signed header).
pub fn tencent_signing(req: &mut RawRequest, key: &Key, extra: &[&str]) -> bool {
    use kv_tencent::auth::{sign_tc3, SignedRequest};
    if !signable(req) || req.has("authorization") {
        return false;
    }
    if !req.has("x-tc-timestamp") {
        req.set(
            "X-TC-Timestamp",
            kv_core::clock::wall_clock_secs().to_string(),
        );
    }
    let (Some(headers), Some((path, query))) = (header_map(req), target(req)) else {
        return false;
    };
    let Some(host) = headers.get("host").and_then(|h| h.to_str().ok()) else {
        return false;
    };
    // An unreadable X-TC-Timestamp (a corpus case) is signed as now: the server refuses the
    // header before it looks at the signature.
    let timestamp = String::from_utf8_lossy(req.get("x-tc-timestamp").unwrap_or_default())
        .trim()
        .parse::<u64>()
        .unwrap_or_else(|_| kv_core::clock::wall_clock_secs());
    let mut signed_headers: Vec<String> = ["content-type", "host"]
        .iter()
        .chain(extra)
        .filter(|h| headers.contains_key(**h))
        .map(|h| h.to_string())
        .collect();
    signed_headers.sort();
    signed_headers.dedup();
    let method = String::from_utf8_lossy(&req.method).into_owned();
    let signed = SignedRequest {
        method: &method,
        path: &path,
        query: &query,
        headers: &headers,
        body: &req.body,
    };
    let value = sign_tc3(
        &signed,
        host.trim(),
        "teo",
        &key.id,
        &key.secret,
        &signed_headers,
        timestamp,
    );
    req.set("Authorization", value);
    true
}

/// ACS3-HMAC-SHA256 (V3) over every header the SDKs sign that the request has, with a fresh
/// nonce, `x-acs-date` now and the body's hash.
pub fn aliyun_v3(req: &mut RawRequest, key: &Key) -> bool {
    aliyun_v3_omitting(req, key, &[])
}

/// ACS3 as [`aliyun_v3`], leaving the `omit` headers out of SignedHeaders (they are still sent):
/// a request whose deciding headers are unsigned, which the server must refuse.
pub fn aliyun_v3_omitting(req: &mut RawRequest, key: &Key, omit: &[&str]) -> bool {
    use kv_aliyun::auth::sign_v3;
    if !signable(req) || req.has("authorization") {
        return false;
    }
    let hash = hex::encode(Sha256::digest(&req.body));
    if !req.has("x-acs-date") {
        req.set(
            "x-acs-date",
            now_utc(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            )),
        );
    }
    req.set(
        "x-acs-signature-nonce",
        uuid::Uuid::new_v4().simple().to_string(),
    );
    if !req.has("x-acs-content-sha256") {
        req.set("x-acs-content-sha256", &hash);
    }
    let (Some(headers), Some((_, query))) = (header_map(req), target(req)) else {
        return false;
    };
    let mut signed: Vec<String> = [
        "content-type",
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    ]
    .into_iter()
    .filter(|h| headers.contains_key(*h) && !omit.contains(h))
    .map(str::to_string)
    .collect();
    signed.sort();
    let declared = headers
        .get("x-acs-content-sha256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&hash)
        .to_string();
    let pairs = kv_aliyun::wire::decode_form(query.as_bytes());
    let method = String::from_utf8_lossy(&req.method).into_owned();
    let authorization = sign_v3(
        &method,
        &pairs,
        &headers,
        &signed,
        &declared,
        &key.id,
        &key.secret,
    );
    req.set("Authorization", authorization);
    true
}

/// SDK-HMAC-SHA256 over `content-type` (when present), `host` and `x-sdk-date`.
pub fn huawei(req: &mut RawRequest, key: &Key) -> bool {
    use kv_huawei::auth::{sign, Algorithm, SignedRequest};
    if !signable(req) || req.has("authorization") {
        return false;
    }
    let sdk_date = now_utc(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ));
    if !req.has("x-sdk-date") {
        req.set("X-Sdk-Date", &sdk_date);
    }
    let (Some(headers), Some((path, query))) = (header_map(req), target(req)) else {
        return false;
    };
    let date = String::from_utf8_lossy(req.get("x-sdk-date").unwrap_or_default()).into_owned();
    let signed_headers: Vec<String> = ["content-type", "host", "x-sdk-date"]
        .into_iter()
        .filter(|h| headers.contains_key(*h))
        .map(str::to_string)
        .collect();
    let method = String::from_utf8_lossy(&req.method).into_owned();
    let signed = SignedRequest {
        method: &method,
        path: &path,
        query: (!query.is_empty()).then_some(query.as_str()),
        headers: &headers,
        body: &req.body,
    };
    let authorization = sign(
        &signed,
        Algorithm::HmacSha256,
        &key.id,
        &key.secret,
        signed_headers,
        &date,
    );
    req.set("Authorization", authorization);
    true
}

/// An Aliyun V2 (HMAC-SHA1, RPC) request: `params` plus the common parameters (dev `key`,
/// a fresh `SignatureNonce`, `Timestamp` now), every one of them in the query and signed, the way
/// the legacy SDKs send a GET. Repeated names in `params` are kept (and signed) as given.
pub fn aliyun_v2(host: &str, params: &[(&str, &str)], key: &Key) -> RawRequest {
    use kv_aliyun::auth::{pct, sign_v2};
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let timestamp = now_utc(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ));
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("Format", "JSON"),
        ("AccessKeyId", key.id.as_str()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce.as_str()),
        ("Timestamp", timestamp.as_str()),
    ] {
        pairs.push((k.into(), v.into()));
    }
    let signature = sign_v2("GET", &pairs, &key.secret);
    pairs.push(("Signature".into(), signature));
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect();
    RawRequest::new("GET", &format!("/?{}", query.join("&"))).header("Host", host)
}
