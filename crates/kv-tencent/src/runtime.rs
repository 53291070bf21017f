//! The EdgeOne Pages runtime binding endpoint: `PUT|GET|DELETE /_edge/tencent/{ZoneId}/{Namespace}/{Key}`.
//!
//! Edge functions on EdgeOne Pages see a KV binding (`my_kv.put(key, value)`) whose limits are not
//! the OpenAPI's: values up to 25 MB, binary `ArrayBuffer`s, the empty value. `EdgeKVPut` carries
//! only a non-empty UTF-8 string of at most 1 MB, so a local binding (`kvmux-edge`) that wrote
//! through it could not store what the runtime stores. This route takes and returns the raw value
//! bytes under the runtime's rules and writes the very container and key EdgeKV uses for
//! (account, ZoneId, Namespace), so `EdgeKVGet` through the TEO SDK reads what the binding put and
//! the reverse.
//!
//! Authentication is the dialect's own TC3-HMAC-SHA256, and stricter than the SDKs' form: the
//! method and path (which name the operation, zone, namespace and key) are always in the canonical
//! request, `host` must be signed, and the payload must be signed (no `UNSIGNED-PAYLOAD`), so what
//! runs is what was signed. The signature is verified before the path is even parsed.
//!
//! Replies: a value is returned as `application/octet-stream` with HTTP 200; every other reply is
//! Tencent's envelope (`{"Response": {..., "RequestId"}}`), errors with Tencent's codes, and, since
//! no SDK reads these replies, with an HTTP status that says what happened (404 for a missing key
//! or namespace, 413 for a value over the limit, 401 for a refused signature, 400 for a bad key).

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use kv_core::{Error as EngineError, NewContainer, Precondition};
use kv_dialect::{Answer, AuthMode, RequestInfo};
use serde_json::json;

use crate::auth::{self, SignedRequest};
use crate::error::{codes, envelope, error_response, ApiError};
use crate::ops::{valid_namespace_name, Ctx};
use crate::router::Operation;
use crate::TencentDialect;

/// Every runtime-binding path starts with this (the rest is `{ZoneId}/{Namespace}/{Key}`).
pub const PATH_PREFIX: &str = "/_edge/tencent/";

/// The runtime's value limit: 25 MB, read as MiB (26,214,400 bytes), the larger meaning, so every
/// value the runtime accepts is accepted here.
pub const MAX_VALUE_BYTES: usize = 25 * 1024 * 1024;

/// Bodies up to this size are read on runtime paths: the value limit plus slack, so a value just
/// over the limit gets this route's own `RequestSizeLimitExceeded` naming the limit, and anything
/// larger is refused by the gateway before it is read.
pub const BODY_LIMIT: u64 = MAX_VALUE_BYTES as u64 + 64 * 1024;

/// The runtime's key rule: at most 512 bytes of `[A-Za-z0-9_]`.
pub const MAX_KEY_BYTES: usize = 512;

/// A missing key. EdgeKV has no such error (EdgeKVGet answers `""`); this route tells a missing
/// key from an empty value, which the runtime's `get` (`null` vs `""`) needs.
pub use crate::error::codes::KEY_NOT_FOUND;

/// The operation labels of this route (metrics, logs, inspector).
pub const OPERATIONS: [&str; 3] = ["EdgeRuntimePut", "EdgeRuntimeGet", "EdgeRuntimeDelete"];

/// Every label the dialect reports: the EdgeKV actions and this route's operations.
pub const LABELS: [&str; Operation::ALL.len() + OPERATIONS.len()] = {
    let mut labels = [""; Operation::ALL.len() + OPERATIONS.len()];
    let mut i = 0;
    while i < Operation::NAMES.len() {
        labels[i] = Operation::NAMES[i];
        i += 1;
    }
    let mut j = 0;
    while j < OPERATIONS.len() {
        labels[i + j] = OPERATIONS[j];
        j += 1;
    }
    labels
};

/// Whether a path is this route's (claimed by the Tencent dialect whatever its headers).
pub fn is_runtime_path(path: &str) -> bool {
    path.starts_with(PATH_PREFIX)
}

/// The operation a method names on this route, for labels; None for other methods.
pub fn operation_of(method: &Method) -> Option<&'static str> {
    match *method {
        Method::PUT => Some(OPERATIONS[0]),
        Method::GET => Some(OPERATIONS[1]),
        Method::DELETE => Some(OPERATIONS[2]),
        _ => None,
    }
}

/// What the path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub zone: String,
    pub namespace: String,
    pub key: String,
}

/// `{ZoneId}/{Namespace}/{Key}` after [`PATH_PREFIX`]. The zone is percent-decoded (EdgeKV takes any
/// non-control ZoneId); namespace and key are checked against their rules as sent, since neither
/// rule admits a character that needs encoding.
pub fn parse_path(path: &str) -> Result<Target, ApiError> {
    let rest = path
        .strip_prefix(PATH_PREFIX)
        .ok_or_else(ApiError::not_a_runtime_path)?;
    let segments: Vec<&str> = rest.split('/').collect();
    let [zone, namespace, key] = segments[..] else {
        return Err(ApiError::bad_runtime_path(PATH_PREFIX, segments.len()));
    };
    let zone = percent_decode(zone)
        .ok_or_else(|| ApiError::bad_value("ZoneId", "it is not valid percent-encoded UTF-8"))?;
    crate::ops::check_zone_id(&zone)?;
    if namespace.is_empty() {
        return Err(ApiError::bad_value("Namespace", "it must not be empty"));
    }
    check_key(key)?;
    Ok(Target {
        zone,
        namespace: namespace.to_string(),
        key: key.to_string(),
    })
}

/// The runtime's key rule, stricter than EdgeKV's (so every runtime key is a valid EdgeKV key).
pub fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_value(
            "Key",
            format!(
                "a key is 1 to {MAX_KEY_BYTES} bytes, this one has {}",
                key.len()
            ),
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ApiError::bad_value(
            "Key",
            "a key may only contain letters, digits and `_`",
        ));
    }
    Ok(())
}

/// Strict percent-decoding of one path segment: `%XX` escapes, the result valid UTF-8; a stray `%`
/// or invalid UTF-8 is None (never decoded lossily, which would name another zone).
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The HTTP status of an error on this route (the EdgeKV actions always answer 200).
pub fn status_of(code: &str) -> StatusCode {
    match code {
        c if c.starts_with("AuthFailure") => StatusCode::UNAUTHORIZED,
        codes::NAMESPACE_NOT_FOUND | KEY_NOT_FOUND => StatusCode::NOT_FOUND,
        codes::REQUEST_SIZE_LIMIT_EXCEEDED => StatusCode::PAYLOAD_TOO_LARGE,
        codes::REQUEST_LIMIT_EXCEEDED => StatusCode::TOO_MANY_REQUESTS,
        codes::UNSUPPORTED_PROTOCOL => StatusCode::METHOD_NOT_ALLOWED,
        codes::FAILED_OPERATION => StatusCode::CONFLICT,
        codes::INTERNAL_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
        c if c.starts_with("LimitExceeded") => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Tencent's error envelope with this route's HTTP status.
pub fn error_reply(error: &ApiError, request_id: &str) -> Response<Bytes> {
    let mut response = error_response(error, request_id);
    *response.status_mut() = status_of(error.code);
    response
}

/// GET: the value itself as the body, `application/octet-stream`.
async fn runtime_get(ctx: &Ctx<'_>, target: &Target) -> Result<Response<Bytes>, ApiError> {
    let namespace = ctx.namespace(&target.zone, &target.namespace).await?;
    let item = ctx
        .engine
        .get(&namespace, target.key.as_bytes())
        .await
        .map_err(|e| ApiError::from_engine(e, &target.namespace))?
        .ok_or_else(|| ApiError::key_not_found(&target.key, &target.namespace))?;
    let mut response = Response::new(item.value);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

/// DELETE: `{"Deleted": bool}`. Deleting from a namespace that does not exist deletes nothing,
/// as deleting a missing key does: on the runtime a bound namespace always exists.
async fn runtime_delete(
    ctx: &Ctx<'_>,
    target: &Target,
    request_id: &str,
) -> Result<Response<Bytes>, ApiError> {
    let deleted = match ctx.namespace(&target.zone, &target.namespace).await {
        Ok(namespace) => ctx
            .engine
            .delete(&namespace, &[target.key.as_bytes().to_vec()])
            .await
            .map_err(|e| ApiError::from_engine(e, &target.namespace))?,
        Err(e) if e.code == codes::NAMESPACE_NOT_FOUND => 0,
        Err(e) => return Err(e),
    };
    let mut fields = serde_json::Map::new();
    fields.insert("Deleted".into(), json!(deleted > 0));
    Ok(envelope(fields, request_id))
}

fn header<'p>(parts: &'p Parts, name: &str) -> Option<&'p str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

impl TencentDialect {
    /// Serves one runtime-binding request (see the module docs).
    pub(crate) async fn serve_runtime(&self, request: Request<Bytes>) -> Answer {
        let request_id = kv_dialect::new_request_id();
        let (parts, body) = request.into_parts();
        let mut info = RequestInfo {
            operation: operation_of(&parts.method).unwrap_or("unknown").to_string(),
            request_id: request_id.clone(),
            ..Default::default()
        };
        let mut response = match self.runtime(&parts, body, &mut info).await {
            Ok(response) => response,
            Err(e) => {
                info.code = Some(e.code.to_string());
                error_reply(&e, &request_id)
            }
        };
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-tc-requestid", id);
        }
        Answer::new(response, info)
    }

    async fn runtime(
        &self,
        parts: &Parts,
        body: Bytes,
        info: &mut RequestInfo,
    ) -> Result<Response<Bytes>, ApiError> {
        let account = self.authenticate_runtime(parts, &body, info)?;
        info.account = Some(account.clone());
        let Some(_) = operation_of(&parts.method) else {
            return Err(ApiError::unsupported_runtime_method(&parts.method));
        };
        let target = parse_path(parts.uri.path())?;
        let ctx = Ctx {
            engine: &self.ctx.engine,
            account: &account,
            options: &self.options,
        };
        match parts.method {
            Method::PUT => {
                self.runtime_put(&ctx, &target, body, &info.request_id)
                    .await
            }
            Method::GET => runtime_get(&ctx, &target).await,
            _ => runtime_delete(&ctx, &target, &info.request_id).await,
        }
    }

    /// PUT: the body is the value, into a namespace created when missing.
    async fn runtime_put(
        &self,
        ctx: &Ctx<'_>,
        target: &Target,
        body: Bytes,
        request_id: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        if body.len() > MAX_VALUE_BYTES {
            return Err(ApiError::value_too_large(body.len(), MAX_VALUE_BYTES));
        }
        let namespace = self.runtime_namespace(ctx, target).await?;
        ctx.engine
            .put(
                &namespace,
                target.key.as_bytes(),
                body,
                None,
                Precondition::None,
            )
            .await
            .map_err(|e| ApiError::from_engine(e, &target.namespace))?;
        Ok(envelope(serde_json::Map::new(), request_id))
    }

    /// The namespace of a put, created (with EdgeKV's name rule, limits and quota) when missing:
    /// on the runtime a bound namespace always exists.
    async fn runtime_namespace(
        &self,
        ctx: &Ctx<'_>,
        target: &Target,
    ) -> Result<kv_core::Container, ApiError> {
        match ctx.namespace(&target.zone, &target.namespace).await {
            Err(e) if e.code == codes::NAMESPACE_NOT_FOUND => {}
            other => return other,
        }
        if !valid_namespace_name(&target.namespace) {
            return Err(ApiError::bad_namespace_name());
        }
        let created = ctx
            .engine
            .create_container(NewContainer {
                account: ctx.account.to_string(),
                scope: Ctx::scope(&target.zone),
                name: target.namespace.clone(),
                kind: Ctx::kind(),
                attrs: json!({ "remark": "" }),
                limits: ctx.limits(),
            })
            .await;
        match created {
            Ok(container) => Ok(container),
            // A concurrent first put created it.
            Err(EngineError::AlreadyExists(_)) => {
                ctx.namespace(&target.zone, &target.namespace).await
            }
            Err(e) => Err(ApiError::from_engine(e, &target.namespace)),
        }
    }

    /// TC3 over method, path, signed host and signed body; the account of the key. Refusals follow
    /// `[auth] mode` as the EdgeKV actions do.
    fn authenticate_runtime(
        &self,
        parts: &Parts,
        body: &Bytes,
        info: &mut RequestInfo,
    ) -> Result<String, ApiError> {
        let now = (self.wall_clock)();
        let secrets = crate::RequestSecret::new(&self.ctx);
        let secret_of = |id: &str| secrets.of(id);
        let parsed = header(parts, "authorization").and_then(auth::parse_tc3_authorization);
        let claimed = parsed.as_ref().map(|a| a.secret_id.clone());
        let outcome = match &parsed {
            None => Err(ApiError::runtime_needs_tc3()),
            Some(a) if !a.signed_headers.iter().any(|h| h == "host") => {
                Err(ApiError::runtime_needs_signed_host())
            }
            Some(_)
                if header(parts, "x-tc-content-sha256")
                    .is_some_and(|v| v.trim() == "UNSIGNED-PAYLOAD") =>
            {
                Err(ApiError::runtime_needs_signed_payload())
            }
            Some(_) => auth::verify_tc3(
                &SignedRequest {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query: parts.uri.query().unwrap_or_default(),
                    headers: &parts.headers,
                    body,
                },
                secret_of,
                now,
            )
            .map(|v| v.secret_id)
            .map_err(|refused| {
                info.signature = Some(*refused.diagnostics);
                refused.error
            }),
        };
        match (outcome, self.ctx.auth_mode) {
            (Ok(id), _) => Ok(self.account_of(Some(&id))),
            (Err(e), AuthMode::Enforce) => {
                info.account = claimed
                    .as_deref()
                    .and_then(|id| self.ctx.credential(id))
                    .map(|c| c.account.clone());
                Err(e)
            }
            (Err(e), AuthMode::Log) => {
                tracing::warn!(
                    code = e.code,
                    reason = %e.message,
                    "tencent runtime signature refused (auth mode log: serving anyway)"
                );
                Ok(self.account_of(claimed.as_deref()))
            }
            (Err(_), AuthMode::Off) => Ok(self.account_of(claimed.as_deref())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_zone_namespace_and_key() {
        assert_eq!(
            parse_path("/_edge/tencent/zone%2D1%20x/ns-1/a_B9").unwrap(),
            Target {
                zone: "zone-1 x".into(),
                namespace: "ns-1".into(),
                key: "a_B9".into()
            }
        );
        for bad in [
            "/_edge/tencent/z/ns",
            "/_edge/tencent/z/ns/k/extra",
            "/_edge/tencent//ns/k",
            "/_edge/tencent/z//k",
            "/_edge/tencent/z/ns/",
            "/_edge/tencent/z/ns/a-b",
            "/_edge/tencent/z/ns/a%20b",
            "/_edge/tencent/%zz/ns/k",
            "/_edge/tencent/%ff/ns/k",
            "/_edge/tencent/%0a/ns/k",
        ] {
            let e = parse_path(bad).unwrap_err();
            assert!(e.code.starts_with("InvalidParameter"), "{bad}: {e:?}");
            assert_eq!(status_of(e.code), StatusCode::BAD_REQUEST, "{bad}");
        }
        let long = format!("/_edge/tencent/z/ns/{}", "k".repeat(MAX_KEY_BYTES));
        assert!(parse_path(&long).is_ok());
        let longer = format!("/_edge/tencent/z/ns/{}", "k".repeat(MAX_KEY_BYTES + 1));
        assert!(parse_path(&longer).is_err());
    }

    #[test]
    fn labels_hold_every_action_and_route_operation() {
        for name in Operation::NAMES.iter().chain(OPERATIONS.iter()) {
            assert!(LABELS.contains(name), "{name}");
        }
        assert_eq!(LABELS.len(), 11);
        assert!(!LABELS.contains(&""));
    }
}
