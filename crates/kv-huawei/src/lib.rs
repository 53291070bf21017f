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
pub mod display;
pub mod error;
pub mod extjson;
pub mod ops;
pub mod router;
pub mod wire;

use std::net::IpAddr;

use bson::Document;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use kv_dialect::{
    Answer, AuthMode, Dialect, DialectContext, DialectOptions, GatewayError, Head, RequestInfo,
};

use crate::error::KvsError;
use crate::router::Operation;

/// Largest body of a single-document request: a 512 KB document plus its envelope.
const SINGLE_BODY_LIMIT: u64 = 1024 * 1024;
/// Largest batch request body.
const BATCH_BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// `[huawei]` options. Unknown keys are refused (a typo must not pass silently); the binary's
/// config reads this type, so `check-config` names the line and column.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// The store for requests that name none (no Host prefix, no `?store_name=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_store: Option<String>,
    /// Extra hosts that are the gateway itself (besides IP literals and `localhost`), so that
    /// `<store>.<base host>` is read as a store prefix.
    pub base_hosts: Vec<String>,
    /// Enforce the service's store-name length (16..52); off by default because local names
    /// like `mystore` are shorter.
    pub strict_store_names: bool,
}

impl DialectOptions for Options {
    const SECTION: &'static str = "huawei";
}

pub struct HuaweiDialect {
    ctx: DialectContext,
    options: Options,
    /// Signatures over `UNSIGNED-PAYLOAD` and the body each was first used with.
    unsigned_payloads: kv_core::replay::SignatureBindings,
}

/// Unsigned-payload signatures remembered at most (15 minutes at ~1,000 such requests a second;
/// the Python SDK never sends them for KVS, so this is normally empty).
const UNSIGNED_PAYLOAD_CAPACITY: usize = 1_000_000;

impl HuaweiDialect {
    pub fn new(ctx: DialectContext) -> Self {
        let options = Options::from_json_or_default(&ctx.options);
        HuaweiDialect {
            ctx,
            options,
            unsigned_payloads: kv_core::replay::SignatureBindings::new(UNSIGNED_PAYLOAD_CAPACITY),
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn context(&self) -> &DialectContext {
        &self.ctx
    }

    /// The store a request addresses (spec §6): the prefix of the Host header, then
    /// `?store_name=`, then the configured default.
    ///
    /// The Host header, not the request target, because the Host header is what the client
    /// signed: an absolute-form target (what SDKs send through `HTTP_PROXY`) carries the same
    /// authority, and one that does not is refused before this runs
    /// ([`HuaweiDialect::check_target`]). The authority is used only when there is no Host header.
    pub fn store_name(&self, parts: &Parts) -> Option<String> {
        if let Some(store) = self.store_from_host_header(parts) {
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

    /// The store named by the Host header's prefix (or, without a Host header, by the target's).
    fn store_from_host_header(&self, parts: &Parts) -> Option<String> {
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(strip_port)
            .or_else(|| parts.uri.host().map(str::to_string))
            .unwrap_or_default()
            .to_ascii_lowercase();
        self.store_from_host(&host)
    }

    /// Refuses an absolute-form target whose authority is not the Host header's: only the Host
    /// header is signed, so a target naming another host (and with it another store) would run
    /// a signed request against something its signer never named. Through a proxy, SDKs send
    /// the same authority in both, which passes.
    pub fn check_target(parts: &Parts) -> Result<(), KvsError> {
        let Some(authority) = parts.uri.authority() else {
            return Ok(());
        };
        let host_header = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.trim().parse::<http::uri::Authority>().ok());
        let default_port = if parts.uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let same = host_header.is_some_and(|h| {
            h.host().eq_ignore_ascii_case(authority.host())
                && h.port_u16().unwrap_or(default_port)
                    == authority.port_u16().unwrap_or(default_port)
        });
        if same {
            Ok(())
        } else {
            Err(KvsError::bad_request(format!(
                "the request target's host `{authority}` is not the Host header's; \
                 they must name the same host (and store)"
            )))
        }
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
        Self::check_target(&parts)?;
        let access = self.authenticate(&parts, &body, info)?;
        let account = self.account_for(access.as_deref());
        info.account = Some(account.clone());
        let request = if body.is_empty() {
            Document::new()
        } else {
            decode_request(&body)?
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

    /// Verifies the signature per the auth mode (see `AuthMode`: `off` verifies nothing) and
    /// answers the access key presented. The unsigned values that decide what runs (a store
    /// named by an unsigned Host, an `UNSIGNED-PAYLOAD` body) are bound to the signature.
    fn authenticate(
        &self,
        parts: &Parts,
        body: &Bytes,
        info: &mut RequestInfo,
    ) -> Result<Option<String>, KvsError> {
        if self.ctx.auth_mode == AuthMode::Off {
            return Ok(key_id_hint(parts));
        }
        let signed = auth::SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            body,
        };
        // Freshness uses the wall clock, not the engine clock, so tests may advance time freely.
        let now = kv_dialect::wall_clock_secs() as i64;
        match auth::verify(&signed, now, |ak| {
            self.ctx.credential(ak).map(|c| c.secret.clone())
        }) {
            Ok(v) => match self.bind_unsigned_values(parts, body, now) {
                Ok(()) => Ok(Some(v.access)),
                Err(e) if self.ctx.auth_mode == AuthMode::Enforce => Err(e),
                Err(e) => {
                    tracing::warn!(
                        "huawei replay refused (auth mode log, serving): {}",
                        e.message
                    );
                    Ok(Some(v.access))
                }
            },
            Err(diag) => {
                let reason = diag.reason.clone();
                info.signature = Some(*diag);
                if self.ctx.auth_mode == AuthMode::Log {
                    tracing::warn!("huawei signature refused (auth mode log, serving): {reason}");
                    Ok(key_id_hint(parts))
                } else {
                    Err(KvsError::signature(format!(
                        "Incorrect IAM authentication information: verify aksk signature fail ({reason})"
                    )))
                }
            }
        }
    }
}

/// Decodes a request body. BSON itself allows a field name twice, but the service refuses such
/// documents and the decoder would keep only one of the values silently (a condition could check
/// one value while another is written), so a repeated name at any depth is `InvalidRequest`.
pub fn decode_request(body: &[u8]) -> Result<Document, KvsError> {
    let raw = bson::RawDocument::from_bytes(body).map_err(malformed)?;
    reject_duplicate_fields(raw, 0)?;
    Ok(kv_doc::decode_document(body)?)
}

fn malformed(e: impl std::fmt::Display) -> KvsError {
    KvsError::invalid_request(format!("InvalidRequest: {e}"))
}

fn reject_duplicate_fields(raw: &bson::RawDocument, depth: usize) -> Result<(), KvsError> {
    // kv_core's decoder bounds the depth with its own error; stop here before recursing past it.
    if depth > kv_doc::MAX_DEPTH {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    for element in raw.iter() {
        let (name, value) = element.map_err(malformed)?;
        if !seen.insert(name) {
            return Err(KvsError::invalid_request(format!(
                "InvalidRequest: the field `{name}` appears more than once in one document"
            )));
        }
        match value {
            bson::RawBsonRef::Document(d) => reject_duplicate_fields(d, depth + 1)?,
            bson::RawBsonRef::Array(a) => {
                let d = bson::RawDocument::from_bytes(a.as_bytes()).map_err(malformed)?;
                reject_duplicate_fields(d, depth + 1)?
            }
            _ => {}
        }
    }
    Ok(())
}

impl HuaweiDialect {
    /// With `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD` (or its SM3 twin) the signature does not
    /// cover the body, which names the table, the keys and the values: a captured request could
    /// be replayed with any other body for the 15 minutes its date is accepted. So such a
    /// signature is bound to the body it was first accepted with (`SignatureBindings`, in memory,
    /// per gateway), and the same signature with another body from another connection is
    /// refused; an identical repeat is served, as it is for signed bodies (the vendor's protocol
    /// has no nonce).
    fn bind_unsigned_values(&self, parts: &Parts, body: &[u8], now: i64) -> Result<(), KvsError> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let Some(auth) = header("authorization").and_then(|v| auth::parse_authorization(v).ok())
        else {
            return Ok(());
        };
        let mut binding = Vec::new();
        // The Go SDK signs no `host`, and the store is the Host's first label: bound, so a
        // captured request cannot be replayed against another store.
        if !auth.signed_headers.iter().any(|h| h == "host") {
            if let Some(store) = self.store_from_host_header(parts) {
                binding.extend_from_slice(b"store\0");
                binding.extend_from_slice(store.as_bytes());
                binding.push(0);
            }
        }
        let declared = match auth.algorithm {
            auth::Algorithm::HmacSha256 => header("x-sdk-content-sha256"),
            auth::Algorithm::HmacSm3 => header("x-sdk-content-sm3"),
        };
        if declared.map(str::trim) == Some("UNSIGNED-PAYLOAD") {
            binding.extend_from_slice(b"body\0");
            binding.extend_from_slice(auth.algorithm.hash_hex(body).as_bytes());
        }
        if binding.is_empty() {
            return Ok(());
        }
        let signed_at = header("x-sdk-date")
            .and_then(auth::parse_sdk_date)
            .unwrap_or(now);
        let expires_at = signed_at.saturating_add(auth::MAX_SKEW_SECONDS + 1);
        let owner = parts
            .extensions
            .get::<kv_dialect::PeerAddr>()
            .map(|p| p.0.to_string())
            .unwrap_or_default();
        let signature = format!("{}\n{}", auth.access, auth.signature.to_ascii_lowercase());
        let as_u64 = |t: i64| u64::try_from(t).unwrap_or(0);
        match self.unsigned_payloads.bind(
            signature.as_bytes(),
            &binding,
            owner.as_bytes(),
            as_u64(expires_at),
            as_u64(now),
        ) {
            kv_core::replay::Binding::Conflict => Err(KvsError::signature(
                "Incorrect IAM authentication information: this signature was already used \
                 with another store (an unsigned Host) or another body (UNSIGNED-PAYLOAD)",
            )),
            _ => Ok(()),
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

/// SDK-HMAC's `Access=<AK>`: the key id a request names, unverified.
fn key_id_hint(parts: &Parts) -> Option<String> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    auth::parse_authorization(value).ok().map(|a| a.access)
}

impl Dialect for HuaweiDialect {
    fn name(&self) -> &'static str {
        "huawei"
    }

    fn classify(&self, parts: &Parts) -> Option<Head> {
        if !router::is_kvs_path(parts.uri.path()) {
            return None;
        }
        let operation = router::route(parts.uri.path());
        let limit = match operation {
            Some(
                Operation::BatchWriteKv | Operation::BatchGetKv | Operation::TransactWriteSkeyKv,
            ) => BATCH_BODY_LIMIT,
            _ => SINGLE_BODY_LIMIT,
        };
        let head = Head::new(limit).naming(operation.map(|o| o.name()), &Operation::NAMES);
        Some(head.signed_by(key_id_hint(parts), &self.ctx.credentials))
    }

    fn gateway_error(&self, head: &Head, error: GatewayError) -> Answer {
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
        let request_id = kv_dialect::new_request_id();
        let response = e.response(&request_id);
        let info = RequestInfo {
            operation: head.operation_or_unknown(),
            account: None,
            code: Some(e.code.to_string()),
            request_id,
            signature: None,
        };
        Answer::new(response, info)
    }

    /// Stores (`huawei-stores`), their tables (`huawei/<store>`) and each table's index
    /// containers (`huawei-index/<table id>`): `store` resets a store with its tables and
    /// indexes, `store/table` one table with its indexes.
    fn reset_selectors(
        &self,
        container: Option<&str>,
    ) -> Result<Vec<kv_core::ContainerSelector>, String> {
        use kv_core::{ContainerSelector, ScopeMatch};
        use ops::store::STORE_SCOPE;
        use ops::table::table_scope;
        const INDEX_SCOPE: &str = "huawei-index/";
        let Some(container) = container else {
            return Ok(vec![
                ContainerSelector::all(ScopeMatch::Exact(STORE_SCOPE.into())),
                ContainerSelector::all(ScopeMatch::Prefix(table_scope(""))),
                ContainerSelector::all(ScopeMatch::Prefix(INDEX_SCOPE.into())),
            ]);
        };
        match container.split_once('/') {
            Some((store, table))
                if !store.is_empty() && !table.is_empty() && !table.contains('/') =>
            {
                Ok(vec![ContainerSelector::named(
                    ScopeMatch::Exact(table_scope(store)),
                    table,
                )
                .with_dependents(INDEX_SCOPE)])
            }
            None if !container.is_empty() => Ok(vec![
                ContainerSelector::named(ScopeMatch::Exact(STORE_SCOPE.into()), container),
                ContainerSelector::all(ScopeMatch::Exact(table_scope(container)))
                    .with_dependents(INDEX_SCOPE),
            ]),
            _ => Err(format!(
                "a Huawei container is \"store\" or \"store/table\", not {container:?}"
            )),
        }
    }

    fn credentials(&self) -> Option<&kv_dialect::Credentials> {
        Some(&self.ctx.credentials)
    }

    fn operations(&self) -> &'static [&'static str] {
        &router::Operation::NAMES
    }

    fn serve(&self, _head: Head, request: Request<Bytes>) -> BoxFuture<'_, Answer> {
        Box::pin(async move {
            let request_id = kv_dialect::new_request_id();
            let mut info = RequestInfo {
                operation: "unknown".to_string(),
                request_id: request_id.clone(),
                ..Default::default()
            };
            let response = match self.handle(request, &mut info).await {
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
            Answer::new(response, info)
        })
    }
}

#[cfg(test)]
mod tests;
