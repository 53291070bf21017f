//! Huawei Cloud KVS for kvmux: `POST /v1/<op>` with BSON bodies, the store in the Host prefix,
//! SDK-HMAC-SHA256/SM3 signatures, and tables of BSON documents with key schemas, conditions and
//! secondary indexes (spec: shared/specs/huawei.md).
//!
//! Mapping onto the engine: a store is a container in scope `huawei-stores` (its account group
//! caps an account at 25); a table is a document container in scope `huawei/<store>` (its own
//! account group caps a store at 100) whose attrs hold the key schema, indexes, TTL and the
//! create request; each secondary index is a hidden container in scope `huawei-index/<table id>`,
//! written in the same transaction as the document it indexes.

pub mod auth;
pub mod error;
pub mod ops;
pub mod router;
pub mod wire;

use std::net::IpAddr;

use bson::Document;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use kv_core::{AuthMode, Dialect, DialectContext, GatewayError, RequestInfo};

use crate::error::KvsError;
use crate::router::Operation;

/// Largest body of a single-document request: a 512 KB document plus its envelope.
const SINGLE_BODY_LIMIT: u64 = 1024 * 1024;
/// Largest batch request body.
const BATCH_BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// `[huawei]` options.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// The store for requests that name none (no Host prefix, no `?store_name=`).
    pub default_store: Option<String>,
    /// Extra hosts that are the gateway itself (besides IP literals and `localhost`), so that
    /// `<store>.<base host>` is read as a store prefix.
    pub base_hosts: Vec<String>,
    /// Enforce the service's store-name length (16..52); off by default because local names
    /// like `mystore` are shorter.
    pub strict_store_names: bool,
}

pub struct HuaweiDialect {
    ctx: DialectContext,
    options: Options,
}

impl HuaweiDialect {
    pub fn new(ctx: DialectContext) -> Self {
        let options = match &ctx.options {
            serde_json::Value::Null => Options::default(),
            v => serde_json::from_value(v.clone()).unwrap_or_else(|e| {
                tracing::warn!("ignoring invalid [huawei] options: {e}");
                Options::default()
            }),
        };
        HuaweiDialect { ctx, options }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn context(&self) -> &DialectContext {
        &self.ctx
    }

    /// The store a request addresses (spec §6): Host prefix (of an absolute-form target or the
    /// Host header), then `?store_name=`, then the configured default.
    pub fn store_name(&self, parts: &Parts) -> Option<String> {
        let host = parts
            .uri
            .host()
            .map(str::to_string)
            .or_else(|| {
                parts
                    .headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(strip_port)
            })
            .unwrap_or_default()
            .to_ascii_lowercase();
        if let Some(store) = self.store_from_host(&host) {
            return Some(store);
        }
        if let Some(q) = parts.uri.query() {
            for pair in q.split('&') {
                if let Some(("store_name", v)) = pair.split_once('=') {
                    let v = percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned();
                    if !v.is_empty() {
                        return Some(v);
                    }
                }
            }
        }
        self.options.default_store.clone()
    }

    fn is_gateway_host(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok()
            || bare == "localhost"
            || self
                .options
                .base_hosts
                .iter()
                .any(|b| b.eq_ignore_ascii_case(bare))
    }

    fn store_from_host(&self, host: &str) -> Option<String> {
        if host.is_empty() || self.is_gateway_host(host) {
            return None;
        }
        let (label, rest) = host.split_once('.')?;
        if label.is_empty() {
            return None;
        }
        if self.is_gateway_host(rest) || rest.ends_with("myhuaweicloud.com") {
            Some(label.to_string())
        } else {
            None
        }
    }

    fn account_for(&self, access: Option<&str>) -> String {
        access
            .and_then(|a| self.ctx.credential(a))
            .map(|c| c.account.clone())
            .unwrap_or_else(|| self.ctx.fallback_account())
    }

    async fn handle(
        &self,
        request: Request<Bytes>,
        info: &mut RequestInfo,
    ) -> Result<Document, KvsError> {
        let (parts, body) = request.into_parts();
        let op = router::route(parts.uri.path()).ok_or_else(|| {
            KvsError::not_implemented(format!("unknown operation {}", parts.uri.path()))
        })?;
        info.operation = op.name().to_string();
        if parts.method != http::Method::POST {
            return Err(KvsError::bad_request(format!(
                "{} must be POST, not {}",
                op.name(),
                parts.method
            )));
        }
        let access = self.authenticate(&parts, &body, info)?;
        let account = self.account_for(access.as_deref());
        info.account = Some(account.clone());
        let request = if body.is_empty() {
            Document::new()
        } else {
            kv_core::doc::decode_document(&body)?
        };
        let store = if op.needs_store() {
            let name = self.store_name(&parts).ok_or_else(|| {
                KvsError::bad_request(
                    "no store: use a Host prefix, ?store_name= or [huawei] default_store",
                )
            })?;
            ops::validate_store_name(&name, self.options.strict_store_names)?;
            Some(name)
        } else {
            None
        };
        let ctx = ops::Ctx {
            engine: &self.ctx.engine,
            account,
            store,
        };
        ops::dispatch(&ctx, op, &request).await
    }

    /// Verifies the signature per the auth mode; the access key when one was presented.
    fn authenticate(
        &self,
        parts: &Parts,
        body: &Bytes,
        info: &mut RequestInfo,
    ) -> Result<Option<String>, KvsError> {
        let presented = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| auth::parse_authorization(v).ok())
            .map(|a| a.access);
        if self.ctx.auth_mode == AuthMode::Off {
            return Ok(presented);
        }
        let signed = auth::SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            body,
        };
        // Freshness uses the wall clock, not the engine clock, so tests may advance time freely.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        match auth::verify(&signed, now, |ak| {
            self.ctx.credential(ak).map(|c| c.secret.clone())
        }) {
            Ok(v) => Ok(Some(v.access)),
            Err(diag) => {
                let reason = diag.reason.clone();
                info.signature = Some(*diag);
                if self.ctx.auth_mode == AuthMode::Log {
                    tracing::warn!("huawei signature refused (auth mode log, serving): {reason}");
                    Ok(presented)
                } else {
                    Err(KvsError::signature(format!(
                        "Incorrect IAM authentication information: verify aksk signature fail ({reason})"
                    )))
                }
            }
        }
    }
}

fn strip_port(host: &str) -> String {
    if host.starts_with('[') {
        return host
            .split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default();
    }
    host.rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(host)
        .to_string()
}

/// A reply with `Content-Type: application/bson` exactly and the request id header.
pub(crate) fn bson_response(
    status: StatusCode,
    body: Vec<u8>,
    request_id: &str,
) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/bson"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-request-id", v);
    }
    r
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Dialect for HuaweiDialect {
    fn name(&self) -> &'static str {
        "huawei"
    }

    fn claims(&self, parts: &Parts) -> bool {
        router::is_kvs_path(parts.uri.path())
    }

    fn body_limit(&self, parts: &Parts) -> u64 {
        match router::route(parts.uri.path()) {
            Some(Operation::BatchWriteKv | Operation::BatchGetKv) => BATCH_BODY_LIMIT,
            _ => SINGLE_BODY_LIMIT,
        }
    }

    fn gateway_error(&self, parts: &Parts, error: GatewayError) -> Response<Bytes> {
        let e = match error {
            GatewayError::BodyTooLarge { limit } => KvsError::entity_too_large(format!(
                "EntityTooLarge: the body exceeds {limit} bytes"
            )),
            GatewayError::BadBody(m) => KvsError::new(
                StatusCode::BAD_REQUEST,
                "KVS.00001005",
                format!("IncompleteBody: {m}"),
            ),
            GatewayError::Throttled => KvsError::slow_down(),
            GatewayError::Internal => KvsError::internal("InternalError"),
        };
        let request_id = new_request_id();
        let mut response = e.response(&request_id);
        response.extensions_mut().insert(RequestInfo {
            operation: self
                .operation_hint(parts)
                .unwrap_or_else(|| "unknown".to_string()),
            account: None,
            code: Some(e.code.to_string()),
            request_id,
            signature: None,
        });
        response
    }

    fn operation_hint(&self, parts: &Parts) -> Option<String> {
        router::route(parts.uri.path()).map(|o| o.name().to_string())
    }

    fn operations(&self) -> &'static [&'static str] {
        &router::Operation::NAMES
    }

    fn serve(&self, request: Request<Bytes>) -> BoxFuture<'_, Response<Bytes>> {
        Box::pin(async move {
            let request_id = new_request_id();
            let mut info = RequestInfo {
                operation: "unknown".to_string(),
                request_id: request_id.clone(),
                ..Default::default()
            };
            let mut response = match self.handle(request, &mut info).await {
                Ok(doc) => match doc.to_vec() {
                    Ok(body) => bson_response(StatusCode::OK, body, &request_id),
                    Err(e) => {
                        let e = KvsError::internal(format!("encoding the reply: {e}"));
                        info.code = Some(e.code.to_string());
                        e.response(&request_id)
                    }
                },
                Err(e) => {
                    info.code = Some(e.code.to_string());
                    e.response(&request_id)
                }
            };
            response.extensions_mut().insert(info);
            response
        })
    }
}

#[cfg(test)]
mod tests;
