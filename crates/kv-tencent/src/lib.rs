//! Tencent EdgeOne (TEO API 2022-09-01) EdgeKV for kvmux: the 8 EdgeKV actions over the kvmux
//! engine, signed with TC3-HMAC-SHA256 (POST or GET) or the legacy HmacSHA1/HmacSHA256 form, and
//! answered in Tencent's envelope (always HTTP 200, errors in `Response.Error`), so the unmodified
//! Python SDK, tccli, and the Node, Go and Java SDKs work with only their endpoint changed.
//!
//! The wire truth is `shared/specs/tencent.md`; the module layout is the one every kvmux dialect
//! shares: `router` (request -> `Operation`), `auth`, `wire`, `ops/`, `error`.

pub mod auth;
pub mod error;
pub mod ops;
pub mod router;
pub mod runtime;
pub mod wire;

pub use ops::Options;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::request::Parts;
use http::{Method, Request};
use kv_core::replay::{Binding, SignatureBindings};
use kv_dialect::{
    Answer, AuthMode, Dialect, DialectContext, DialectOptions, GatewayError, Head, RequestInfo,
};

use crate::auth::{Refused, SignedRequest, Verified, TIMESTAMP_WINDOW_SECS};
use crate::error::{envelope_len, envelope_of, error_response, ApiError};
use crate::ops::{Ctx, Reply, MAX_REPLY_BYTES};
use crate::router::{Operation, Style, API_VERSION};
use crate::wire::Params;

/// Bodies up to this size are read. A 1 MB value of CJK text escaped by the Python SDK as `\uXXXX`
/// makes a body of about 6 MB, and an oversized value must get EdgeKV's own
/// `InvalidParameterValue`, not a transport refusal.
pub const BODY_LIMIT: u64 = 16 * 1024 * 1024;

/// [`Head::envelope`] of a request on the EdgeOne runtime binding route (`crate::runtime`),
/// answered in that route's form; every other request is in the API's envelope (0).
const RUNTIME_ENVELOPE: u8 = 1;

/// Requests per second per action and account when vendor rate limits are emulated
/// ("默认接口请求频率限制：20次/秒").
pub const VENDOR_RATE_LIMIT_PER_SEC: u32 = 20;

/// TC3 signatures whose unsigned action/version are remembered at most: five minutes' worth at
/// ~3,000 signed requests per second (about 40 MB when full).
const BINDING_CAPACITY: usize = 1_000_000;

/// Where the signature window reads the time: the wall clock, never the engine clock, so tests
/// that advance the engine clock by days can still sign requests.
type WallClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The Tencent EdgeKV dialect.
pub struct TencentDialect {
    ctx: DialectContext,
    options: Options,
    rate: Mutex<HashMap<(String, Operation), (u64, u32)>>,
    wall_clock: WallClock,
    /// Each accepted TC3 signature and the unsigned values (action, version, an unsigned
    /// payload) it was first used with; see [`TencentDialect::check_replay`].
    bindings: SignatureBindings,
}

/// The secret of the key id a request names, looked up once for that request. The credential set
/// may change at runtime, so a lookup hands out a copy; the verifiers want a borrowed secret, so
/// the copy is kept here for the length of the request.
struct RequestSecret<'a> {
    ctx: &'a DialectContext,
    found: std::cell::OnceCell<Option<kv_dialect::Credential>>,
}

impl<'a> RequestSecret<'a> {
    fn new(ctx: &'a DialectContext) -> Self {
        RequestSecret {
            ctx,
            found: std::cell::OnceCell::new(),
        }
    }

    fn of(&self, id: &str) -> Option<&str> {
        self.found
            .get_or_init(|| self.ctx.credential(id))
            .as_ref()
            .filter(|c| c.id == id)
            .map(|c| c.secret.as_str())
    }
}

impl TencentDialect {
    pub fn new(ctx: DialectContext) -> Self {
        let options = Options::from_json_or_default(&ctx.options);
        TencentDialect {
            ctx,
            options,
            rate: Mutex::new(HashMap::new()),
            wall_clock: Arc::new(kv_core::clock::wall_clock_secs),
            bindings: SignatureBindings::new(BINDING_CAPACITY),
        }
    }

    /// Replaces the clock of the signature window, so recorded requests (the shared signature
    /// vectors) can be served at the time they were signed.
    pub fn with_wall_clock(mut self, now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.wall_clock = Arc::new(now);
        self
    }

    async fn handle(&self, request: Request<Bytes>) -> Answer {
        let request_id = kv_dialect::new_request_id();
        let (parts, body) = request.into_parts();
        let mut info = RequestInfo {
            operation: "unknown".to_string(),
            request_id: request_id.clone(),
            ..Default::default()
        };
        let outcome = self.process(&parts, &body, &mut info).await;
        // The reply is measured before it is built, so an oversized one costs no buffer.
        let outcome = outcome.and_then(|reply| {
            let len = envelope_len(&reply, &request_id);
            if len > MAX_REPLY_BYTES {
                Err(ApiError::response_too_large(len, MAX_REPLY_BYTES))
            } else {
                Ok(reply)
            }
        });
        let response = match outcome {
            Ok(reply) => envelope_of(&reply, &request_id),
            Err(e) => {
                info.code = Some(e.code.to_string());
                error_response(&e, &request_id)
            }
        };
        Answer::new(response, info)
    }

    async fn process(
        &self,
        parts: &Parts,
        body: &Bytes,
        info: &mut RequestInfo,
    ) -> Result<Reply, ApiError> {
        if parts.method != Method::POST && parts.method != Method::GET {
            return Err(ApiError::unsupported_method(&parts.method));
        }
        let style = router::style(parts);
        let host = header(parts, "host")
            .map(str::to_string)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let Named {
            action,
            version,
            params,
            signed,
        } = Named::read(style, parts, body);
        let operation = action.as_deref().and_then(Operation::from_action);
        if let Some(op) = operation {
            info.operation = op.name().to_string();
        }

        // Authenticate before anything about the request's content is revealed.
        let now = (self.wall_clock)();
        let account = self
            .authenticate(parts, body, &host, &signed, &action, &version, now, info)
            .await?;
        info.account = Some(account.clone());

        match version.as_deref() {
            None => return Err(ApiError::missing_version()),
            Some(API_VERSION) => {}
            Some(other) => return Err(ApiError::no_such_version(other, API_VERSION)),
        }
        let Some(operation) = operation else {
            return Err(match action {
                None => ApiError::missing_action(),
                Some(a) => ApiError::invalid_action(&a),
            });
        };
        if self.ctx.vendor_rate_limits && !self.admit(&account, operation, now) {
            return Err(ApiError::rate_limited(
                operation.name(),
                VENDOR_RATE_LIMIT_PER_SEC,
            ));
        }

        let ctx = Ctx {
            engine: &self.ctx.engine,
            account: &account,
            options: &self.options,
        };
        run(&ctx, operation, &params?).await
    }

    /// The caller's account per the auth mode (see [`AuthMode`]: `off` verifies nothing), or
    /// the vendor's refusal; records a refused signature's diagnostics in `info`.
    #[allow(clippy::too_many_arguments)]
    async fn authenticate(
        &self,
        parts: &Parts,
        body: &Bytes,
        host: &str,
        legacy: &Option<Vec<(String, String)>>,
        action: &Option<String>,
        version: &Option<String>,
        now: u64,
        info: &mut RequestInfo,
    ) -> Result<String, ApiError> {
        if self.ctx.auth_mode == AuthMode::Off {
            // The legacy style's SecretId may be in a POST body, which the hint does not read.
            let claimed = match legacy {
                None => key_id_hint(parts),
                Some(pairs) => pairs
                    .iter()
                    .find(|(k, _)| k == "SecretId")
                    .map(|(_, v)| v.clone()),
            };
            return Ok(self.account_of(claimed.as_deref()));
        }
        let secrets = RequestSecret::new(&self.ctx);
        let secret_of = |id: &str| secrets.of(id);
        let outcome: Result<Verified, Refused> = match legacy {
            None => auth::verify_tc3(
                &SignedRequest {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query: parts.uri.query().unwrap_or_default(),
                    headers: &parts.headers,
                    body,
                },
                secret_of,
                now,
            ),
            Some(pairs) => auth::verify_legacy(
                parts.method.as_str(),
                host,
                parts.uri.path(),
                pairs,
                secret_of,
                now,
            ),
        };
        let claimed_account = |id: Option<&str>| {
            id.and_then(|id| self.ctx.credential(id))
                .map(|c| c.account.clone())
        };
        // A verified signature may still be a replay: a TC3 signature reused with other unsigned
        // values, or a legacy Nonce used before.
        if let Ok(v) = &outcome {
            if let Err(e) = self
                .check_replay(parts, body, legacy, v, action, version, now)
                .await
            {
                if self.ctx.auth_mode == AuthMode::Enforce {
                    info.account = claimed_account(Some(&v.secret_id));
                    return Err(e);
                }
                tracing::warn!(
                    code = e.code,
                    reason = %e.message,
                    "tencent replay refused (auth mode log: serving anyway)"
                );
            }
        }
        match outcome {
            Ok(v) => Ok(self.account_of(Some(&v.secret_id))),
            Err(refused) if self.ctx.auth_mode == AuthMode::Enforce => {
                info.account = claimed_account(refused.secret_id.as_deref());
                info.signature = Some(*refused.diagnostics);
                Err(refused.error)
            }
            Err(refused) => {
                tracing::warn!(
                    code = refused.error.code,
                    reason = %refused.diagnostics.reason,
                    "tencent signature refused (auth mode log: serving anyway)"
                );
                info.signature = Some(*refused.diagnostics);
                Ok(self.account_of(refused.secret_id.as_deref()))
            }
        }
    }

    /// Refuses a verified request that replays another one.
    ///
    /// Legacy signatures carry a `Nonce`: it is required, and a Nonce already used by this
    /// SecretId within the signature window is refused. The record is kept in the store
    /// (`Engine::first_use_of_nonce`), so it holds across restarts and across gateways sharing the
    /// database.
    ///
    /// TC3 signatures carry no nonce, and the real SDKs sign only `content-type;host`: the action
    /// and version headers are unsigned (and the body too, with `UNSIGNED-PAYLOAD`). Whatever of
    /// those the client did not sign is bound to the signature the first time it is accepted
    /// ([`SignatureBindings`]), until the signature expires; the same signature with another
    /// action, version or unsigned body from another connection is refused, an identical repeat
    /// is served, and so is the same client's next call on its own connection (Get then Delete of
    /// the same keys within a second carry equal signatures). Values the client signed are
    /// already covered by the signature and are not bound.
    #[allow(clippy::too_many_arguments)]
    async fn check_replay(
        &self,
        parts: &Parts,
        body: &Bytes,
        legacy: &Option<Vec<(String, String)>>,
        verified: &Verified,
        action: &Option<String>,
        version: &Option<String>,
        now: u64,
    ) -> Result<(), ApiError> {
        match legacy {
            Some(pairs) => {
                let nonce = pairs
                    .iter()
                    .find(|(k, _)| k == "Nonce")
                    .map(|(_, v)| v.trim())
                    .filter(|n| !n.is_empty())
                    .ok_or_else(ApiError::missing_nonce)?;
                let timestamp = pairs
                    .iter()
                    .find(|(k, _)| k == "Timestamp")
                    .and_then(|(_, t)| t.trim().parse::<u64>().ok())
                    .unwrap_or(now);
                // Remembered for as long as the timestamp stays acceptable (it may be up to
                // the window ahead of our clock).
                let window = timestamp
                    .saturating_add(TIMESTAMP_WINDOW_SECS)
                    .saturating_sub(now)
                    .clamp(1, 2 * TIMESTAMP_WINDOW_SECS)
                    + 1;
                match self
                    .ctx
                    .engine
                    .first_use_of_nonce(self.name(), &verified.secret_id, nonce, window)
                    .await
                {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(ApiError::nonce_reused(nonce, TIMESTAMP_WINDOW_SECS)),
                    Err(e) => Err(ApiError::from_engine(e, "")),
                }
            }
            None => {
                let Some(auth) =
                    header(parts, "authorization").and_then(auth::parse_tc3_authorization)
                else {
                    return Ok(());
                };
                if !self.options.binds_unsigned_action() {
                    return Ok(());
                }
                let signed = |name: &str| auth.signed_headers.iter().any(|h| h == name);
                let mut binding = Vec::new();
                if !signed("x-tc-action") {
                    binding.extend_from_slice(b"action\0");
                    binding.extend_from_slice(action.as_deref().unwrap_or_default().as_bytes());
                    binding.push(0);
                }
                if !signed("x-tc-version") {
                    binding.extend_from_slice(b"version\0");
                    binding.extend_from_slice(version.as_deref().unwrap_or_default().as_bytes());
                    binding.push(0);
                }
                let unsigned_payload = header(parts, "x-tc-content-sha256")
                    .is_some_and(|v| v.trim() == "UNSIGNED-PAYLOAD");
                if unsigned_payload && parts.method != Method::GET {
                    use sha2::Digest;
                    binding.extend_from_slice(b"body\0");
                    binding.extend_from_slice(&sha2::Sha256::digest(body));
                }
                if binding.is_empty() {
                    return Ok(());
                }
                let timestamp = header(parts, "x-tc-timestamp")
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .unwrap_or(now);
                let expires_at = timestamp.saturating_add(TIMESTAMP_WINDOW_SECS + 1);
                let signature = format!(
                    "{}\n{}",
                    verified.secret_id,
                    auth.signature.to_ascii_lowercase()
                );
                // The owner is the client's connection (see `SignatureBindings`); requests
                // served without a listener (in-process) all share one.
                let owner = parts
                    .extensions
                    .get::<kv_dialect::PeerAddr>()
                    .map(|p| p.0.to_string())
                    .unwrap_or_default();
                match self.bindings.bind(
                    signature.as_bytes(),
                    &binding,
                    owner.as_bytes(),
                    expires_at,
                    now,
                ) {
                    Binding::First | Binding::Same => Ok(()),
                    Binding::Conflict => Err(ApiError::signature_reused()),
                }
            }
        }
    }

    /// The tenant of a SecretId; unknown ids (only possible with auth log/off) get the fallback.
    fn account_of(&self, secret_id: Option<&str>) -> String {
        secret_id
            .and_then(|id| self.ctx.credential(id))
            .map(|c| c.account.clone())
            .unwrap_or_else(|| self.ctx.fallback_account())
    }

    /// A fixed one-second window per (account, action), the granularity Tencent documents.
    fn admit(&self, account: &str, operation: Operation, now: u64) -> bool {
        let Ok(mut windows) = self.rate.lock() else {
            return true;
        };
        let entry = windows
            .entry((account.to_string(), operation))
            .or_insert((now, 0));
        if entry.0 != now {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= VENDOR_RATE_LIMIT_PER_SEC
    }
}

/// Runs one EdgeKV action for an authenticated caller.
async fn run(ctx: &Ctx<'_>, operation: Operation, params: &Params) -> Result<Reply, ApiError> {
    match operation {
        Operation::CreateEdgeKVNamespace => ops::namespace::create(ctx, params).await,
        Operation::DeleteEdgeKVNamespace => ops::namespace::delete(ctx, params).await,
        Operation::ModifyEdgeKVNamespace => ops::namespace::modify(ctx, params).await,
        Operation::DescribeEdgeKVNamespaces => ops::namespace::describe(ctx, params).await,
        Operation::EdgeKVPut => ops::kv::put(ctx, params).await,
        Operation::EdgeKVGet => return ops::kv::get(ctx, params).await.map(Reply::Get),
        Operation::EdgeKVDelete => ops::kv::delete(ctx, params).await,
        Operation::EdgeKVList => ops::kv::list(ctx, params).await,
    }
    .map(Reply::from)
}

/// What a request names, read from where its style puts it: the action, the version, the
/// business parameters, and (legacy style) every parameter the signature covers.
struct Named {
    action: Option<String>,
    version: Option<String>,
    params: Result<Params, ApiError>,
    signed: Option<Vec<(String, String)>>,
}

impl Named {
    fn read(style: Style, parts: &Parts, body: &[u8]) -> Named {
        let query = parts.uri.query().unwrap_or_default();
        match style {
            Style::Tc3 => {
                let params = if parts.method == Method::GET {
                    Params::from_flat(&decode_pairs(query.as_bytes()))
                } else if is_form(parts) {
                    Params::from_flat(&decode_pairs(body))
                } else {
                    Params::from_json(body)
                };
                Named {
                    action: header(parts, "x-tc-action").map(str::to_string),
                    version: header(parts, "x-tc-version").map(str::to_string),
                    params,
                    signed: None,
                }
            }
            Style::Legacy => {
                let mut pairs = decode_pairs(query.as_bytes());
                if parts.method == Method::POST {
                    pairs.extend(decode_pairs(body));
                }
                let param = |name: &str| {
                    pairs
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                };
                let (action, version) = (param("Action"), param("Version"));
                let business: Vec<(String, String)> = pairs
                    .iter()
                    .filter(|(k, _)| !auth::LEGACY_COMMON_PARAMS.contains(&k.as_str()))
                    .cloned()
                    .collect();
                Named {
                    action,
                    version,
                    params: Params::from_flat(&business),
                    signed: Some(pairs),
                }
            }
        }
    }
}

/// The key id a request names, unverified: TC3's `Credential=<SecretId>/...`, else the legacy
/// signature's `SecretId` in the query (a legacy POST carries it in the body, which a head does
/// not include).
fn key_id_hint(parts: &Parts) -> Option<String> {
    match header(parts, "authorization") {
        Some(value) => auth::parse_tc3_authorization(value).map(|a| a.secret_id),
        None => router::query_param(parts, "SecretId"),
    }
}

fn header<'p>(parts: &'p Parts, name: &str) -> Option<&'p str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

fn is_form(parts: &Parts) -> bool {
    header(parts, "content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

fn decode_pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

impl Dialect for TencentDialect {
    fn name(&self) -> &'static str {
        "tencent"
    }

    fn classify(&self, parts: &Parts) -> Option<Head> {
        if !router::claims(parts) {
            return None;
        }
        let head = if runtime::is_runtime_path(parts.uri.path()) {
            Head::new(runtime::BODY_LIMIT)
                .in_envelope(RUNTIME_ENVELOPE)
                .naming(runtime::operation_of(&parts.method), &runtime::LABELS)
        } else {
            let action = match header(parts, "x-tc-action") {
                Some(action) => Some(std::borrow::Cow::Borrowed(action)),
                None => router::query_param(parts, "Action").map(std::borrow::Cow::Owned),
            };
            Head::new(BODY_LIMIT).naming(action.as_deref(), &runtime::LABELS)
        };
        Some(head.signed_by(key_id_hint(parts), &self.ctx.credentials))
    }

    fn gateway_error(&self, head: &Head, error: GatewayError) -> Answer {
        let request_id = kv_dialect::new_request_id();
        let api_error = match error {
            GatewayError::BodyTooLarge { limit } => ApiError::body_too_large(limit),
            GatewayError::BadBody(why) => ApiError::unreadable_body(&why),
            GatewayError::Throttled => ApiError::throttled(),
            GatewayError::Internal => ApiError::internal(),
        };
        let response = if head.envelope == RUNTIME_ENVELOPE {
            runtime::error_reply(&api_error, &request_id)
        } else {
            error_response(&api_error, &request_id)
        };
        let info = RequestInfo {
            operation: head.operation_or_unknown(),
            code: Some(api_error.code.to_string()),
            request_id,
            ..Default::default()
        };
        Answer::new(response, info)
    }

    fn operations(&self) -> &'static [&'static str] {
        &runtime::LABELS
    }

    fn serve(&self, head: Head, request: Request<Bytes>) -> BoxFuture<'_, Answer> {
        if head.envelope == RUNTIME_ENVELOPE {
            return Box::pin(self.serve_runtime(request));
        }
        Box::pin(self.handle(request))
    }

    /// Namespaces live in `tencent/<ZoneId>`; a namespace name resets it in every zone (the
    /// runtime binding route's containers are the same ones).
    fn reset_selectors(
        &self,
        container: Option<&str>,
    ) -> Result<Vec<kv_core::ContainerSelector>, String> {
        let zones = kv_core::ScopeMatch::Prefix(Ctx::scope(""));
        Ok(vec![match container {
            None => kv_core::ContainerSelector::all(zones),
            Some(namespace) => kv_core::ContainerSelector::named(zones, namespace),
        }])
    }

    fn credentials(&self) -> Option<&kv_dialect::Credentials> {
        Some(&self.ctx.credentials)
    }
}
