//! Tencent Cloud API signatures: TC3-HMAC-SHA256 (POST and GET) and the legacy "v1"
//! HmacSHA1/HmacSHA256 form signature, verified the way the real clients compute them.
//!
//! The clients disagree on what they sign (spec §6), so TC3 verification is deliberately lenient in
//! exactly two places and strict everywhere else:
//! - the service in the credential scope is taken from the scope itself (`teo` for Python, Go and
//!   tccli; the first label of the endpoint, e.g. `127`, for the Node SDK);
//! - the signed `host` is first the `Host` header verbatim (which for tccli includes `http://`),
//!   then, if that does not match, the bare hostname without scheme and port (the Node SDK).
//!
//! The body is hashed as received: Python sends `json.dumps` output with `\uXXXX` escapes, so any
//! re-serialisation would break the signature.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use kv_dialect::crypto::{constant_time_eq, hmac_sha256, sha256_hex};
use kv_dialect::SignatureDiagnostics;

use crate::error::{codes, ApiError};

/// How far a request timestamp may be from the wall clock (Tencent: 5 minutes).
pub const TIMESTAMP_WINDOW_SECS: u64 = 300;

pub const TC3_ALGORITHM: &str = "TC3-HMAC-SHA256";

/// The parts of a request that signatures cover.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string as sent (without `?`), `""` when there is none.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A signature that verified: who signed, and the strings the verifier built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub secret_id: String,
    pub canonical_request: String,
    pub string_to_sign: String,
}

/// A refused signature: the Tencent error, and what the inspector may show (never a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub error: ApiError,
    pub secret_id: Option<String>,
    /// Boxed: the strings are large and a refusal is the rare path.
    pub diagnostics: Box<SignatureDiagnostics>,
}

impl Refused {
    fn new(code: &'static str, message: &str, diagnostics: SignatureDiagnostics) -> Self {
        let secret_id = Some(diagnostics.access_key_id.clone()).filter(|s| !s.is_empty());
        Refused {
            error: ApiError::new(code, message),
            secret_id,
            diagnostics: Box::new(SignatureDiagnostics {
                reason: message.to_string(),
                ..diagnostics
            }),
        }
    }
}

const MSG_SIGNATURE_FAILURE: &str =
    "The provided credentials could not be validated. Please check your signature is correct.";
const MSG_SECRET_ID_NOT_FOUND: &str =
    "The SecretId is not found, please ensure that your SecretId is correct.";

/// The parsed `Authorization: TC3-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tc3Authorization {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses a TC3 Authorization header; None when it is not one.
pub fn parse_tc3_authorization(value: &str) -> Option<Tc3Authorization> {
    let rest = value.trim().strip_prefix(TC3_ALGORITHM)?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, val) = part.trim().split_once('=')?;
        match name.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            _ => {}
        }
    }
    let mut scope = credential?.split('/');
    let secret_id = scope.next()?.to_string();
    let date = scope.next()?.to_string();
    let service = scope.next()?.to_string();
    if scope.next()? != "tc3_request" || scope.next().is_some() || secret_id.is_empty() {
        return None;
    }
    let signed_headers: Vec<String> = signed?
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if signed_headers.iter().any(String::is_empty) {
        return None;
    }
    let signature = signature?.to_string();
    Some(Tc3Authorization {
        secret_id,
        date,
        service,
        signed_headers,
        signature,
    })
}

/// The host with any `scheme://` and `:port` removed: what the Node SDK signs.
pub fn bare_hostname(host: &str) -> &str {
    let host = host.split_once("://").map_or(host, |(_, rest)| rest);
    if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: `[::1]:9090` -> `::1`
        return rest.split(']').next().unwrap_or(rest);
    }
    host.split(':').next().unwrap_or(host)
}

/// The TC3 canonical request, with `host` as the value of the `host` signed header.
pub fn tc3_canonical_request(
    request: &SignedRequest<'_>,
    auth: &Tc3Authorization,
    host: &str,
) -> String {
    tc3_canonical_request_with(request, auth, host, &tc3_payload_hash(request))
}

/// The canonical request's last line: the body's SHA-256, or that of `UNSIGNED-PAYLOAD` when the
/// client says it did not sign the body.
fn tc3_payload_hash(request: &SignedRequest<'_>) -> String {
    let unsigned = request
        .header("x-tc-content-sha256")
        .is_some_and(|v| v.trim() == "UNSIGNED-PAYLOAD");
    if unsigned {
        sha256_hex(b"UNSIGNED-PAYLOAD")
    } else {
        sha256_hex(request.body)
    }
}

/// [`tc3_canonical_request`] with the payload hash already computed.
fn tc3_canonical_request_with(
    request: &SignedRequest<'_>,
    auth: &Tc3Authorization,
    host: &str,
    payload_hash: &str,
) -> String {
    let mut canonical_headers = String::new();
    for name in &auth.signed_headers {
        let value = if name == "host" {
            host.trim().to_string()
        } else {
            // Repeated headers are joined as most HTTP stacks would present them.
            let values: Vec<&str> = request
                .headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::trim)
                .collect();
            values.join(",")
        };
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&value);
        canonical_headers.push('\n');
    }
    let query = if request.method.eq_ignore_ascii_case("GET") {
        request.query
    } else {
        ""
    };
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        request.path,
        query,
        canonical_headers,
        auth.signed_headers.join(";"),
        payload_hash
    )
}

pub fn tc3_string_to_sign(timestamp: &str, auth: &Tc3Authorization, canonical: &str) -> String {
    format!(
        "{TC3_ALGORITHM}\n{timestamp}\n{}/{}/tc3_request\n{}",
        auth.date,
        auth.service,
        sha256_hex(canonical.as_bytes())
    )
}

/// `hex(HMAC(kSigning, string_to_sign))` with `kSigning` derived from `"TC3" + secret`.
pub fn tc3_signature(secret: &str, date: &str, service: &str, string_to_sign: &str) -> String {
    let k_signing = signing_key(secret, date, service);
    hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes()))
}

/// Derived signing keys by (secret, date, service). The three HMACs of the derivation cost more
/// than the final one and their result changes once a day per key, so it is cached; the cache is
/// cleared when it grows past a bound (many keys or dates), which only costs re-derivation.
fn signing_key(secret: &str, date: &str, service: &str) -> Vec<u8> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Cache = Mutex<HashMap<(String, String, String), Vec<u8>>>;
    const MAX_ENTRIES: usize = 4096;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    let id = (secret.to_string(), date.to_string(), service.to_string());
    if let Some(key) = cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
        return key;
    }
    let k_date = hmac_sha256(format!("TC3{secret}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    if let Ok(mut c) = cache.lock() {
        if c.len() >= MAX_ENTRIES {
            c.clear();
        }
        c.insert(id, k_signing.clone());
    }
    k_signing
}

fn timestamp_fresh(timestamp: u64, now: u64) -> bool {
    timestamp.abs_diff(now) <= TIMESTAMP_WINDOW_SECS
}

/// Verifies a TC3-HMAC-SHA256 request. `secret_of` looks up a SecretKey by SecretId; `now` is
/// wall-clock unix seconds.
pub fn verify_tc3<'c>(
    request: &SignedRequest<'_>,
    secret_of: impl Fn(&str) -> Option<&'c str>,
    now: u64,
) -> Result<Verified, Refused> {
    let mut diag = SignatureDiagnostics {
        algorithm: TC3_ALGORITHM.to_string(),
        ..Default::default()
    };
    let header = request.header("authorization").unwrap_or_default();
    let Some(auth) = parse_tc3_authorization(header) else {
        return Err(Refused::new(
            codes::INVALID_AUTHORIZATION,
            "The Authorization header is not a valid TC3-HMAC-SHA256 authorization.",
            diag,
        ));
    };
    diag.access_key_id = auth.secret_id.clone();
    diag.client_signature = auth.signature.clone();
    let Some(timestamp_text) = request.header("x-tc-timestamp").map(str::trim) else {
        return Err(Refused::new(
            codes::MISSING_PARAMETER,
            "The request is missing the X-TC-Timestamp header.",
            diag,
        ));
    };
    let Ok(timestamp) = timestamp_text.parse::<u64>() else {
        return Err(Refused::new(
            codes::INVALID_AUTHORIZATION,
            "The X-TC-Timestamp header is not a unix timestamp in seconds.",
            diag,
        ));
    };

    // The hosts to try, in order: verbatim, then the bare hostname (Node SDK). The second
    // canonical request is built only when the first does not match (the common case builds one),
    // and the body is hashed once for both.
    let verbatim = request.header("host").unwrap_or_default().trim();
    let bare = bare_hostname(verbatim);
    let payload_hash = tc3_payload_hash(request);
    let attempt = |host: &str| {
        let canonical = tc3_canonical_request_with(request, &auth, host, &payload_hash);
        let sts = tc3_string_to_sign(timestamp_text, &auth, &canonical);
        (canonical, sts)
    };
    // What a refusal shows: the attempt the client most likely meant. Node signs the bare
    // hostname and puts the endpoint's first label in the scope.
    let refuse = |code: &'static str, message: &str, mut diag: SignatureDiagnostics| {
        let node_style =
            bare.split('.').next() == Some(auth.service.as_str()) && auth.service != "teo";
        let (canonical, sts) = attempt(if node_style { bare } else { verbatim });
        diag.canonical_request = canonical;
        diag.string_to_sign = sts;
        Refused::new(code, message, diag)
    };

    if !timestamp_fresh(timestamp, now) {
        return Err(refuse(
            codes::SIGNATURE_EXPIRE,
            "Signature expired: the request timestamp is more than 5 minutes away from server time.",
            diag,
        ));
    }
    let Some(secret) = secret_of(&auth.secret_id) else {
        return Err(refuse(
            codes::SECRET_ID_NOT_FOUND,
            MSG_SECRET_ID_NOT_FOUND,
            diag,
        ));
    };
    let hosts = if bare != verbatim {
        &[verbatim, bare][..]
    } else {
        &[verbatim][..]
    };
    let client_signature = auth.signature.to_ascii_lowercase();
    for host in hosts {
        let (canonical, sts) = attempt(host);
        let expected = tc3_signature(secret, &auth.date, &auth.service, &sts);
        if constant_time_eq(expected.as_bytes(), client_signature.as_bytes()) {
            return Ok(Verified {
                secret_id: auth.secret_id,
                canonical_request: canonical,
                string_to_sign: sts,
            });
        }
    }
    Err(refuse(
        codes::SIGNATURE_FAILURE,
        MSG_SIGNATURE_FAILURE,
        diag,
    ))
}

/// The legacy v1 parameters that are protocol, not business, parameters.
pub const LEGACY_COMMON_PARAMS: &[&str] = &[
    "Action",
    "Version",
    "Timestamp",
    "Nonce",
    "SecretId",
    "SignatureMethod",
    "Signature",
    "Region",
    "Token",
    "Language",
    "RequestClient",
];

/// `k=v&...` over every parameter but `Signature`, sorted by name, raw (decoded) values.
pub fn legacy_canonical_params(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The legacy string to sign: method, Host as sent, path, `?` and the canonical parameters.
fn legacy_string_to_sign(method: &str, host: &str, path: &str, canonical: &str) -> String {
    format!("{method}{host}{path}?{canonical}")
}

/// `base64(HMAC(secret, string_to_sign))` with the hash `SignatureMethod` names; None for any
/// other method.
fn legacy_signature(signature_method: &str, secret: &str, string_to_sign: &str) -> Option<String> {
    let mac = match signature_method {
        "HmacSHA256" => hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes()),
        "HmacSHA1" => {
            let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.as_bytes()).ok()?;
            mac.update(string_to_sign.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => return None,
    };
    Some(base64::engine::general_purpose::STANDARD.encode(mac))
}

/// Verifies a legacy `HmacSHA1`/`HmacSHA256` request; `params` are the decoded query or form
/// parameters, `host` the Host header as sent.
pub fn verify_legacy<'c>(
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
    secret_of: impl Fn(&str) -> Option<&'c str>,
    now: u64,
) -> Result<Verified, Refused> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let method_name = param("SignatureMethod").unwrap_or("HmacSHA1");
    let mut diag = SignatureDiagnostics {
        algorithm: format!("tencent-legacy-{method_name}"),
        access_key_id: param("SecretId").unwrap_or_default().to_string(),
        client_signature: param("Signature").unwrap_or_default().to_string(),
        ..Default::default()
    };
    for required in ["SecretId", "Signature", "Timestamp"] {
        if param(required).is_none_or(str::is_empty) {
            return Err(Refused::new(
                codes::MISSING_PARAMETER,
                &format!("The request is missing the `{required}` parameter."),
                diag,
            ));
        }
    }
    let canonical = legacy_canonical_params(params);
    let sts = legacy_string_to_sign(method, host, path, &canonical);
    diag.canonical_request = canonical.clone();
    diag.string_to_sign = sts.clone();
    let Some(timestamp) = param("Timestamp").and_then(|t| t.trim().parse::<u64>().ok()) else {
        return Err(Refused::new(
            codes::INVALID_PARAMETER,
            "The `Timestamp` parameter is not a unix timestamp in seconds.",
            diag,
        ));
    };
    if !timestamp_fresh(timestamp, now) {
        return Err(Refused::new(
            codes::SIGNATURE_EXPIRE,
            "Signature expired: the request timestamp is more than 5 minutes away from server time.",
            diag,
        ));
    }
    let secret_id = diag.access_key_id.clone();
    let Some(secret) = secret_of(&secret_id) else {
        return Err(Refused::new(
            codes::SECRET_ID_NOT_FOUND,
            MSG_SECRET_ID_NOT_FOUND,
            diag,
        ));
    };
    let Some(expected) = legacy_signature(method_name, secret, &sts) else {
        return Err(Refused::new(
            codes::INVALID_PARAMETER_VALUE,
            "`SignatureMethod` must be HmacSHA1 or HmacSHA256.",
            diag,
        ));
    };
    if constant_time_eq(expected.as_bytes(), diag.client_signature.as_bytes()) {
        Ok(Verified {
            secret_id,
            canonical_request: canonical,
            string_to_sign: sts,
        })
    } else {
        Err(Refused::new(
            codes::SIGNATURE_FAILURE,
            MSG_SIGNATURE_FAILURE,
            diag,
        ))
    }
}

/// The `Authorization` value a client sends for a TC3 request: `host` is the value signed for
/// the `host` header and `service` the credential scope's (the Python SDK, Go SDK and tccli sign
/// the Host verbatim with `teo`; the Node SDK the bare hostname with the endpoint's first label);
/// the scope's date is the UTC date of `timestamp`, which the request's `X-TC-Timestamp` carries.
#[cfg(any(test, feature = "sign"))]
pub fn sign_tc3(
    request: &SignedRequest<'_>,
    host: &str,
    service: &str,
    key_id: &str,
    secret: &str,
    signed_headers: &[String],
    timestamp: u64,
) -> String {
    let date = i64::try_from(timestamp)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(|t| t.date().to_string())
        .unwrap_or_default();
    let mut auth = Tc3Authorization {
        secret_id: key_id.to_string(),
        date,
        service: service.to_string(),
        signed_headers: signed_headers.to_vec(),
        signature: String::new(),
    };
    let canonical = tc3_canonical_request(request, &auth, host);
    let sts = tc3_string_to_sign(&timestamp.to_string(), &auth, &canonical);
    auth.signature = tc3_signature(secret, &auth.date, &auth.service, &sts);
    format!(
        "{TC3_ALGORITHM} Credential={}/{}/{}/tc3_request, SignedHeaders={}, Signature={}",
        auth.secret_id,
        auth.date,
        auth.service,
        auth.signed_headers.join(";"),
        auth.signature
    )
}

/// The `Signature` parameter a client sends for a legacy request: `params` are every parameter
/// but `Signature` (decoded), `SignatureMethod` among them (HmacSHA1 when absent), `host` the
/// Host header as sent. Empty for a `SignatureMethod` other than HmacSHA1 and HmacSHA256.
#[cfg(any(test, feature = "sign"))]
pub fn sign_legacy(
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
    secret: &str,
) -> String {
    let signature_method = params
        .iter()
        .find(|(k, _)| k == "SignatureMethod")
        .map_or("HmacSHA1", |(_, v)| v.as_str());
    let sts = legacy_string_to_sign(method, host, path, &legacy_canonical_params(params));
    legacy_signature(signature_method, secret, &sts).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each valid vector's `Authorization` (TC3) or `Signature` (legacy) is what the signers
    /// make of its request, byte for byte.
    #[test]
    fn the_signers_reproduce_every_valid_vector() {
        let expected = [
            (TC3_ALGORITHM, 17),
            ("tencent-legacy-HmacSHA256", 2),
            ("tencent-legacy-HmacSHA1", 1),
        ];
        kv_testkit::check_valid_vectors("tencent", &expected, |v, parts| {
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
            };
            if v.algorithm == TC3_ALGORITHM {
                let sent = parse_tc3_authorization(header("authorization")).expect(&v.name);
                let request = SignedRequest {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query: parts.uri.query().unwrap_or_default(),
                    headers: &parts.headers,
                    body: &v.req.body,
                };
                // The Python SDK and tccli sign the Host verbatim; Node its bare hostname.
                let host = if sent.service == "teo" {
                    header("host")
                } else {
                    bare_hostname(header("host"))
                };
                let timestamp: u64 = header("x-tc-timestamp").parse().expect(&v.name);
                let signed = sign_tc3(
                    &request,
                    host,
                    &sent.service,
                    &v.id,
                    &v.secret,
                    &sent.signed_headers,
                    timestamp,
                );
                assert_eq!(signed, header("authorization"), "{}", v.name);
            } else {
                let mut params: Vec<(String, String)> = parts
                    .uri
                    .query()
                    .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                    .unwrap_or_default();
                params.extend(form_urlencoded::parse(&v.req.body).into_owned());
                let sent = params
                    .iter()
                    .find(|(k, _)| k == "Signature")
                    .map(|(_, s)| s.clone())
                    .expect(&v.name);
                let signed = sign_legacy(
                    parts.method.as_str(),
                    header("host"),
                    parts.uri.path(),
                    &params,
                    &v.secret,
                );
                assert_eq!(signed, sent, "{}", v.name);
            }
        });
    }

    #[test]
    fn spec_python_style_example_signature() {
        // spec §6 test vector: SecretId AKIDtest, SecretKey secret, timestamp 1700000000.
        let body = br#"{"ZoneId": "zone-1", "Namespace": "ns", "Key": "k", "Value": "v"}"#;
        assert_eq!(
            sha256_hex(body),
            "c7cb5ec7f52ee1edabcd1d20ec182c7b9dbbc93b1e9e183c72acf3c1ef35aacc"
        );
        let auth = Tc3Authorization {
            secret_id: "AKIDtest".into(),
            date: "2023-11-14".into(),
            service: "teo".into(),
            signed_headers: vec!["content-type".into(), "host".into()],
            signature: String::new(),
        };
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        let canonical = tc3_canonical_request(&req, &auth, "127.0.0.1:8080");
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "9bdb41db5e927d238e362e289e3890db8ccb59558a5bb7634f1f02de05d767b5"
        );
        let sts = tc3_string_to_sign("1700000000", &auth, &canonical);
        assert_eq!(
            tc3_signature("secret", "2023-11-14", "teo", &sts),
            "bd40e418d49d0668ddc9f579a72950dcfb8738b8b17cb1440db210f9cc650c19"
        );
    }

    #[test]
    fn spec_node_style_example_signature() {
        let body = br#"{"ZoneId":"zone-1","Namespace":"ns","Key":"k","Value":"v"}"#;
        let auth = Tc3Authorization {
            secret_id: "AKIDtest".into(),
            date: "2023-11-14".into(),
            service: "127".into(),
            signed_headers: vec!["content-type".into(), "host".into()],
            signature: String::new(),
        };
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        let canonical = tc3_canonical_request(&req, &auth, "127.0.0.1");
        let sts = tc3_string_to_sign("1700000000", &auth, &canonical);
        assert_eq!(
            tc3_signature("secret", "2023-11-14", "127", &sts),
            "a77ad0ba518f3618a4d771d420ce97de697854a1e619f05247afd023c9a4a157"
        );
    }

    #[test]
    fn bare_hostname_strips_scheme_and_port() {
        assert_eq!(bare_hostname("http://127.0.0.1:9090"), "127.0.0.1");
        assert_eq!(bare_hostname("127.0.0.1:9090"), "127.0.0.1");
        assert_eq!(bare_hostname("localhost"), "localhost");
        assert_eq!(bare_hostname("[::1]:9090"), "::1");
    }

    #[test]
    fn authorization_parser_rejects_garbage() {
        assert!(parse_tc3_authorization("TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=content-type;host, Signature=ab").is_some());
        for bad in [
            "",
            "TC3-HMAC-SHA256",
            "TC3-HMAC-SHA256 Credential=a/b/c/x, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request/extra, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=/b/c/tc3_request, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=;, Signature=ab",
            "HmacSHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=ab",
        ] {
            assert_eq!(parse_tc3_authorization(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn authorization_parser_never_panics(s in ".*") {
            let _ = parse_tc3_authorization(&s);
            let _ = bare_hostname(&s);
        }
    }
}
