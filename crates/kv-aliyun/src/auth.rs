//! The two signature algorithms the Alibaba SDKs use (spec §3): ACS3-HMAC-SHA256 ("V3", the tea
//! SDKs' default) and RPC HMAC-SHA1 ("V2", the legacy SDK and `signature_algorithm='v2'`), plus
//! the 15-minute timestamp window and the SignatureNonce replay cache.
//!
//! Both verifiers are pure functions of the request and a clock so that the shared vectors can
//! be replayed at their recorded time; the caller owns the nonce check. They return a [`Caller`]
//! holding every value that decides what runs, each read from a signed place, and refuse a
//! request whose signature leaves one of them open (V3: a required header outside
//! `SignedHeaders`; both: no nonce, or a deciding value sent twice).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use kv_core::text::lossy_utf8;
use kv_dialect::crypto::hmac_sha256;
use kv_dialect::SignatureDiagnostics;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// RFC 3986 unreserved characters stay; everything else is `%XX` (space `%20`, `*` `%2A`).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The freshness window for `x-acs-date` / `Timestamp`, and how long a nonce is remembered.
pub const WINDOW_SECS: u64 = 15 * 60;

/// The V3 algorithm name.
pub const ACS3: &str = "ACS3-HMAC-SHA256";
/// The V3 variant with SM3 in place of SHA-256 (`Config(signature_algorithm='ACS3-HMAC-SM3')`).
pub const ACS3_SM3: &str = "ACS3-HMAC-SM3";

/// The digest of an ACS3 variant: hex hash of bytes.
fn acs3_hash(algorithm: &str, data: &[u8]) -> String {
    if algorithm == ACS3_SM3 {
        hex::encode(sm3::Sm3::digest(data))
    } else {
        hex::encode(Sha256::digest(data))
    }
}

fn acs3_hmac(algorithm: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
    if algorithm == ACS3_SM3 {
        match Hmac::<sm3::Sm3>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    } else {
        hmac_sha256(key, data)
    }
}
/// The name used for V2 in diagnostics (matches the vectors file).
pub const RPC_V2: &str = "aliyun-rpc-v2-HMAC-SHA1";

pub fn pct(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// Which signature a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    V3,
    V2,
    Unsigned,
}

/// Detects the scheme: an `Authorization: ACS3-…` header is V3; a `Signature` query parameter is
/// V2 (spec §3.3).
pub fn detect(headers: &HeaderMap, query: &[(String, String)]) -> Scheme {
    let authz = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if authz.trim_start().starts_with("ACS3-") {
        Scheme::V3
    } else if query.iter().any(|(k, _)| k == "Signature") {
        Scheme::V2
    } else {
        Scheme::Unsigned
    }
}

/// A verified caller, and every value of the request that decides what runs and for whom, each
/// read from a place the signature covers (V3: the signed headers; V2: the signed parameters).
/// The dialect takes these from here and nowhere else, so an unsigned header or parameter cannot
/// re-target a signed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub scheme: Scheme,
    pub access_key_id: String,
    /// `x-acs-signature-nonce` (V3) or `SignatureNonce` (V2); both SDK families always send one,
    /// and a request without it is refused, since it could otherwise be replayed within the window.
    pub nonce: String,
    /// The signed action (`x-acs-action` / `Action`) and API version (`x-acs-version` / `Version`).
    pub action: String,
    pub version: String,
    /// The signed time (`x-acs-date` / `Timestamp`), unix seconds: the nonce must be remembered
    /// until this leaves the window, which for a request dated in the future is longer than
    /// [`WINDOW_SECS`] from now.
    pub signed_at: u64,
    /// The STS token, only from a signed place (`x-acs-security-token` in SignedHeaders, or the
    /// `SecurityToken` parameter).
    pub security_token: Option<String>,
}

impl Caller {
    /// How long, from wall time `now`, the nonce must be remembered: until the signed time
    /// leaves the window (after that the timestamp check refuses the request by itself).
    pub fn nonce_retention_secs(&self, now: u64) -> u64 {
        (self.signed_at + WINDOW_SECS).saturating_sub(now).max(1) + 1
    }
}

/// Headers that V3 requires in `SignedHeaders`: without them a request could be re-targeted at
/// another action, product or host, or replayed forever (no signed date or nonce). Every SDK
/// signs all of them (shared/specs/aliyun-captures.txt, vectors/aliyun.json).
pub const V3_REQUIRED_SIGNED: [&str; 5] = [
    "host",
    "x-acs-action",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
];

/// V3 headers whose value kvmux reads: each must carry a single value, so that the value read
/// is the value signed (the canonical form joins several values with `,`).
const V3_SINGLE_VALUED: [&str; 8] = [
    "host",
    "x-acs-action",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
    "x-acs-security-token",
    "x-acs-content-sha256",
    "content-type",
];

/// V2 parameters that decide who calls, what runs and whether it is fresh: each may appear once
/// in the signed query and form together, so that no reader can pick a different copy.
const V2_SINGLE_VALUED: [&str; 8] = [
    "Action",
    "Version",
    "AccessKeyId",
    "SignatureNonce",
    "Timestamp",
    "Signature",
    "SignatureMethod",
    "SecurityToken",
];

/// A refused signature: the vendor error plus what the verifier computed.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub error: ApiError,
    pub diagnostics: Box<SignatureDiagnostics>,
    /// The key id the request named, so log mode can still pick the account.
    pub access_key_id: Option<String>,
}

/// The parsed `Authorization: ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acs3Authorization {
    pub algorithm: String,
    pub credential: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_acs3_authorization(value: &str) -> Option<Acs3Authorization> {
    let (algorithm, rest) = value.trim().split_once(' ')?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v.to_string()),
            "Signature" => signature = Some(v.to_string()),
            _ => {}
        }
    }
    Some(Acs3Authorization {
        algorithm: algorithm.to_string(),
        credential: credential?,
        signed_headers: signed?
            .split(';')
            .filter(|h| !h.is_empty())
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        signature: signature?,
    })
}

/// The V3 canonical query: the decoded pairs re-encoded per RFC 3986 and sorted. With
/// `bare_empty`, an empty value is rendered as `k` instead of `k=` (some non-Python SDKs).
pub fn v3_canonical_query(query: &[(String, String)], bare_empty: bool) -> String {
    let mut pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (pct(k), pct(v))).collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() && bare_empty {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The V3 canonical request and string-to-sign (ACS3-HMAC-SHA256).
pub fn v3_canonical(
    method: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    signed_headers: &[String],
    hashed_payload: &str,
    bare_empty: bool,
) -> (String, String) {
    acs3_canonical(
        ACS3,
        method,
        query,
        headers,
        signed_headers,
        hashed_payload,
        bare_empty,
    )
}

/// The canonical request and string-to-sign of an ACS3 variant.
pub fn acs3_canonical(
    algorithm: &str,
    method: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    signed_headers: &[String],
    hashed_payload: &str,
    bare_empty: bool,
) -> (String, String) {
    let mut names: Vec<&String> = signed_headers.iter().collect();
    names.sort();
    names.dedup();
    let mut canonical_headers = String::new();
    for name in &names {
        // Borrowed from the header map unless a value is not UTF-8 (then replaced lossily).
        let mut values: Vec<std::borrow::Cow<'_, str>> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| match lossy_utf8(v.as_bytes()) {
                std::borrow::Cow::Borrowed(text) => std::borrow::Cow::Borrowed(text.trim()),
                std::borrow::Cow::Owned(text) => std::borrow::Cow::Owned(text.trim().to_string()),
            })
            .collect();
        values.sort();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                canonical_headers.push(',');
            }
            canonical_headers.push_str(value);
        }
        canonical_headers.push('\n');
    }
    let signed: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let canonical = format!(
        "{method}\n/\n{}\n{canonical_headers}\n{}\n{hashed_payload}",
        v3_canonical_query(query, bare_empty),
        signed.join(";")
    );
    let sts = format!(
        "{algorithm}\n{}",
        acs3_hash(algorithm, canonical.as_bytes())
    );
    (canonical, sts)
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    match Hmac::<sha1::Sha1>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Constant-time comparison, so a timing oracle cannot recover a signature byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses `2026-11-22T02:33:18Z` into unix seconds.
pub fn parse_timestamp(s: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// The signed time as unix seconds, if it is within the window around `now`.
fn check_window(ts: &str, now: u64) -> Result<u64, ApiError> {
    let t = parse_timestamp(ts).ok_or_else(ApiError::timestamp_format)?;
    if t.abs_diff(now) > WINDOW_SECS {
        return Err(ApiError::timestamp_expired());
    }
    Ok(t)
}

/// Verifies an ACS3-HMAC-SHA256 request at wall-clock time `now`. `secret_of` resolves an
/// AccessKeyId. The nonce is returned for the caller to check against its replay cache.
pub fn verify_v3(
    method: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
    secret_of: &dyn Fn(&str) -> Option<String>,
    now: u64,
) -> Result<Caller, Refusal> {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut diag = SignatureDiagnostics {
        algorithm: ACS3.to_string(),
        ..Default::default()
    };
    let refuse = |error: ApiError, diag: SignatureDiagnostics, ak: Option<String>| Refusal {
        error,
        diagnostics: Box::new(diag),
        access_key_id: ak,
    };
    let Some(auth) = header("authorization").and_then(|a| parse_acs3_authorization(&a)) else {
        diag.reason = "malformed Authorization header".into();
        return Err(refuse(ApiError::incomplete_signature(), diag, None));
    };
    diag.access_key_id = auth.credential.clone();
    diag.client_signature = auth.signature.clone();
    let ak = Some(auth.credential.clone());
    let algorithm = auth.algorithm.clone();
    diag.algorithm = algorithm.clone();
    if algorithm != ACS3 && algorithm != ACS3_SM3 {
        diag.reason = format!("unsupported algorithm {}", auth.algorithm);
        return Err(refuse(ApiError::incomplete_signature(), diag, ak));
    }
    let Some(secret) = secret_of(&auth.credential) else {
        diag.reason = "unknown AccessKeyId".into();
        return Err(refuse(ApiError::access_key_not_found(), diag, ak));
    };
    if let Some(name) = V3_SINGLE_VALUED
        .iter()
        .find(|n| headers.get_all(**n).iter().count() > 1)
    {
        diag.reason = format!("{name} is sent more than once");
        return Err(refuse(ApiError::incomplete_signature(), diag, ak));
    }
    let Some(nonce) = header("x-acs-signature-nonce").filter(|n| !n.trim().is_empty()) else {
        diag.reason = "missing x-acs-signature-nonce".into();
        return Err(refuse(
            ApiError::missing_parameter("x-acs-signature-nonce"),
            diag,
            ak,
        ));
    };
    let signed = |name: &str| auth.signed_headers.iter().any(|h| h == name);
    if let Some(name) = V3_REQUIRED_SIGNED.iter().find(|n| !signed(n)) {
        diag.reason = format!("SignedHeaders does not include {name}");
        return Err(refuse(ApiError::incomplete_signature(), diag, ak));
    }
    // The body is signed through its hash, but how it is read (as a form or not) follows
    // Content-Type, so that must be signed too when there is a body to read.
    if !body.is_empty() && headers.contains_key("content-type") && !signed("content-type") {
        diag.reason = "SignedHeaders does not include content-type".into();
        return Err(refuse(ApiError::incomplete_signature(), diag, ak));
    }
    if headers.contains_key("x-acs-security-token") && !signed("x-acs-security-token") {
        diag.reason = "SignedHeaders does not include x-acs-security-token".into();
        return Err(refuse(ApiError::incomplete_signature(), diag, ak));
    }
    let (Some(action), Some(version)) = (header("x-acs-action"), header("x-acs-version")) else {
        diag.reason = "x-acs-action or x-acs-version is missing or not text".into();
        return Err(refuse(ApiError::incomplete_signature(), diag, ak));
    };
    let body_hash = acs3_hash(&algorithm, body);
    let declared = header("x-acs-content-sha256").unwrap_or_else(|| body_hash.clone());
    let (canonical, sts) = acs3_canonical(
        &algorithm,
        method,
        query,
        headers,
        &auth.signed_headers,
        &declared,
        false,
    );
    diag.canonical_request = canonical;
    diag.string_to_sign = sts.clone();
    if !declared.eq_ignore_ascii_case(&body_hash) {
        diag.reason = "x-acs-content-sha256 does not match the body".into();
        return Err(refuse(ApiError::signature_v3_mismatch(), diag, ak));
    }
    let Some(date) = header("x-acs-date") else {
        diag.reason = "missing x-acs-date".into();
        return Err(refuse(ApiError::incomplete_signature(), diag, ak));
    };
    let signed_at = match check_window(&date, now) {
        Ok(t) => t,
        Err(e) => {
            diag.reason = format!("x-acs-date {date} outside the 15 minute window");
            return Err(refuse(e, diag, ak));
        }
    };
    let Ok(given) = hex::decode(auth.signature.trim()) else {
        diag.reason = "signature is not hex".into();
        return Err(refuse(ApiError::signature_v3_mismatch(), diag, ak));
    };
    let mut ok = same(
        &acs3_hmac(&algorithm, secret.as_bytes(), sts.as_bytes()),
        &given,
    );
    if !ok && query.iter().any(|(_, v)| v.is_empty()) {
        // Tolerance (spec §3.2): some SDKs render an empty query value as a bare key.
        let (c2, s2) = acs3_canonical(
            &algorithm,
            method,
            query,
            headers,
            &auth.signed_headers,
            &declared,
            true,
        );
        if same(
            &acs3_hmac(&algorithm, secret.as_bytes(), s2.as_bytes()),
            &given,
        ) {
            ok = true;
            diag.canonical_request = c2;
            diag.string_to_sign = s2;
        }
    }
    if !ok {
        diag.reason = "signature mismatch".into();
        return Err(refuse(ApiError::signature_v3_mismatch(), diag, ak));
    }
    Ok(Caller {
        scheme: Scheme::V3,
        access_key_id: auth.credential,
        nonce,
        action,
        version,
        signed_at,
        security_token: header("x-acs-security-token"),
    })
}

/// The V2 canonicalized query (all params but `Signature`, RFC 3986, sorted) and string-to-sign.
pub fn v2_canonical(method: &str, params: &[(String, String)]) -> (String, String) {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| (pct(k), pct(v)))
        .collect();
    pairs.sort();
    let canonical = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let sts = format!("{method}&{}&{}", pct("/"), pct(&canonical));
    (canonical, sts)
}

/// The V2 signature of a string-to-sign: base64(HMAC-SHA1(secret + "&", sts)). For clients and
/// tests that sign the way the legacy SDK does.
pub fn v2_signature(secret: &str, string_to_sign: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_sha1(
        format!("{secret}&").as_bytes(),
        string_to_sign.as_bytes(),
    ))
}

/// Verifies an RPC HMAC-SHA1 request. `params` are the decoded query AND form-body pairs
/// (the body is signed under V2).
pub fn verify_v2(
    method: &str,
    params: &[(String, String)],
    secret_of: &dyn Fn(&str) -> Option<String>,
    now: u64,
) -> Result<Caller, Refusal> {
    let get = |n: &str| {
        params
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.to_string())
    };
    let mut diag = SignatureDiagnostics {
        algorithm: RPC_V2.to_string(),
        ..Default::default()
    };
    let refuse = |error: ApiError, diag: SignatureDiagnostics, ak: Option<String>| Refusal {
        error,
        diagnostics: Box::new(diag),
        access_key_id: ak,
    };
    let (canonical, sts) = v2_canonical(method, params);
    diag.canonical_request = canonical;
    diag.string_to_sign = sts.clone();
    diag.client_signature = get("Signature").unwrap_or_default();
    if let Some(name) = V2_SINGLE_VALUED
        .iter()
        .find(|n| params.iter().filter(|(k, _)| k == *n).count() > 1)
    {
        diag.reason = format!("{name} is sent more than once");
        return Err(refuse(
            ApiError::incomplete_signature(),
            diag,
            get("AccessKeyId"),
        ));
    }
    let Some(ak) = get("AccessKeyId") else {
        diag.reason = "missing AccessKeyId".into();
        return Err(refuse(
            ApiError::missing_parameter("AccessKeyId"),
            diag,
            None,
        ));
    };
    diag.access_key_id = ak.clone();
    let Some(secret) = secret_of(&ak) else {
        diag.reason = "unknown AccessKeyId".into();
        return Err(refuse(ApiError::access_key_not_found(), diag, Some(ak)));
    };
    if let Some(method) = get("SignatureMethod") {
        if method != "HMAC-SHA1" {
            diag.reason = format!("unsupported SignatureMethod {method}");
            return Err(refuse(ApiError::incomplete_signature(), diag, Some(ak)));
        }
    }
    let Some(ts) = get("Timestamp") else {
        diag.reason = "missing Timestamp".into();
        return Err(refuse(
            ApiError::missing_parameter("Timestamp"),
            diag,
            Some(ak),
        ));
    };
    let signed_at = match check_window(&ts, now) {
        Ok(t) => t,
        Err(e) => {
            diag.reason = format!("Timestamp {ts} outside the 15 minute window");
            return Err(refuse(e, diag, Some(ak)));
        }
    };
    let Some(nonce) = get("SignatureNonce").filter(|n| !n.trim().is_empty()) else {
        diag.reason = "missing SignatureNonce".into();
        return Err(refuse(
            ApiError::missing_parameter("SignatureNonce"),
            diag,
            Some(ak),
        ));
    };
    let (Some(action), Some(version)) = (get("Action"), get("Version")) else {
        diag.reason = "missing Action or Version".into();
        let missing = if get("Action").is_none() {
            "Action"
        } else {
            "Version"
        };
        return Err(refuse(ApiError::missing_parameter(missing), diag, Some(ak)));
    };
    let expected = hmac_sha1(format!("{secret}&").as_bytes(), sts.as_bytes());
    let given = base64::engine::general_purpose::STANDARD
        .decode(diag.client_signature.trim())
        .unwrap_or_default();
    if !same(&expected, &given) {
        diag.reason = "signature mismatch".into();
        return Err(refuse(
            ApiError::signature_v2_mismatch(&sts),
            diag,
            Some(ak),
        ));
    }
    Ok(Caller {
        scheme: Scheme::V2,
        access_key_id: ak,
        nonce,
        action,
        version,
        signed_at,
        security_token: get("SecurityToken"),
    })
}

/// The `Authorization` value a client sends for an ACS3-HMAC-SHA256 (V3) request, as tea-openapi
/// builds it: `query` the decoded query pairs, `signed_headers` lowercase names (listed sorted
/// and once, as the canonical request has them), `payload_hash` the hex SHA-256 the request
/// declares in `x-acs-content-sha256` (that of the body unless a test says otherwise).
#[cfg(any(test, feature = "sign"))]
pub fn sign_v3(
    method: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
    key_id: &str,
    secret: &str,
) -> String {
    let (_, sts) = v3_canonical(method, query, headers, signed_headers, payload_hash, false);
    let mut names: Vec<&str> = signed_headers.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let signature = hex::encode(acs3_hmac(ACS3, secret.as_bytes(), sts.as_bytes()));
    format!(
        "{ACS3} Credential={key_id},SignedHeaders={},Signature={signature}",
        names.join(";")
    )
}

/// The `Signature` parameter a client sends for an RPC V2 (HMAC-SHA1) request over `params`
/// (every decoded query and form parameter; a `Signature` among them is left out).
#[cfg(any(test, feature = "sign"))]
pub fn sign_v2(method: &str, params: &[(String, String)], secret: &str) -> String {
    let (_, sts) = v2_canonical(method, params);
    v2_signature(secret, &sts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tea-openapi's V3 `Authorization` and the legacy SDK's V2 `Signature` of each valid
    /// vector come out of the signers unchanged from the vector's own request.
    #[test]
    fn the_signers_reproduce_every_valid_vector() {
        let expected = [(ACS3, 32), (RPC_V2, 4)];
        kv_testkit::check_valid_vectors("aliyun", &expected, |v, parts| {
            let method = parts.method.as_str();
            let query = parts
                .uri
                .query()
                .map(|q| crate::wire::decode_form(q.as_bytes()))
                .unwrap_or_default();
            if v.algorithm == ACS3 {
                let sent = parts.headers["authorization"].to_str().expect(&v.name);
                let signed = parse_acs3_authorization(sent)
                    .expect(&v.name)
                    .signed_headers;
                let declared = parts.headers["x-acs-content-sha256"]
                    .to_str()
                    .expect(&v.name);
                let authorization = sign_v3(
                    method,
                    &query,
                    &parts.headers,
                    &signed,
                    declared,
                    &v.id,
                    &v.secret,
                );
                assert_eq!(authorization, sent, "{}", v.name);
            } else {
                let form = parts.headers.get("content-type").is_some_and(|c| {
                    c.as_bytes()
                        .starts_with(b"application/x-www-form-urlencoded")
                });
                let mut params = query;
                if form {
                    params.extend(crate::wire::decode_form(&v.req.body));
                }
                let sent = params
                    .iter()
                    .find(|(k, _)| k == "Signature")
                    .map(|(_, s)| s.clone())
                    .expect(&v.name);
                assert_eq!(sign_v2(method, &params, &v.secret), sent, "{}", v.name);
            }
        });
    }

    #[test]
    fn authorization_parses_without_spaces_after_commas() {
        let a = parse_acs3_authorization(
            "ACS3-HMAC-SHA256 Credential=id,SignedHeaders=host;x-acs-date,Signature=ab",
        )
        .unwrap();
        assert_eq!(a.credential, "id");
        assert_eq!(a.signed_headers, vec!["host", "x-acs-date"]);
        assert_eq!(a.signature, "ab");
        assert_eq!(parse_acs3_authorization("ACS3-HMAC-SHA256 garbage"), None);
    }

    #[test]
    fn sm3_matches_the_standard_test_vector() {
        // GB/T 32905-2016 example 1: SM3("abc")
        assert_eq!(
            acs3_hash(ACS3_SM3, b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(acs3_hmac(ACS3_SM3, b"k", b"d").len(), 32);
    }

    #[test]
    fn pct_follows_rfc3986() {
        assert_eq!(pct("a b*/~-_."), "a%20b%2A%2F~-_.");
        assert_eq!(pct("ä"), "%C3%A4");
    }

    proptest::proptest! {
        #[test]
        fn pct_roundtrips_through_percent_decoding(s in ".{0,40}") {
            let encoded = pct(&s);
            let decoded = percent_encoding::percent_decode_str(&encoded).decode_utf8().unwrap();
            proptest::prop_assert_eq!(decoded, s);
        }

        #[test]
        fn the_authorization_parser_never_panics(s in ".{0,200}") {
            let _ = parse_acs3_authorization(&s);
        }
    }
}
