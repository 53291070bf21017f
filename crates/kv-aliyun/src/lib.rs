//! kv-aliyun: the Alibaba Cloud ESA (2024-09-10) and DCDN (2018-01-15) KV dialect of kvmux,
//! with the OpenPlatform `AuthorizeFileUpload` + OSS PostObject pair that the SDKs' high-capacity
//! `*Advance` methods need. The wire truth is `shared/specs/aliyun.md`.
//!
//! A request goes: [`router::route`] -> signature ([`auth`], V3 or V2, with the nonce recorded
//! in the store) -> the operation the signature covers -> parameters (query merged with the form body, [`wire::Params`]) -> [`ops`] ->
//! JSON reply with `RequestId`, or the POP error envelope from [`error`].

pub mod auth;
pub mod error;
pub mod import;
pub mod ops;
pub mod options;
pub mod router;
pub mod wire;

pub use options::Options;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use kv_dialect::{
    Answer, AuthMode, Dialect, DialectContext, DialectOptions, GatewayError, Head, RequestInfo,
};

use crate::auth::{Caller, Refusal, Scheme};
use crate::error::ApiError;
use crate::router::{Operation, Product, RouteError};
use crate::wire::{decode_form, Params};
use kv_core::replay::NonceCache;

/// Body limit of ordinary actions: a 2,000,000-byte value or KvList, percent-encoded (up to 3×)
/// in a form body, plus the other fields.
pub const ACTION_BODY_LIMIT: u64 = 8 * 1024 * 1024;
/// Body limit of the OSS upload: a 100 MB batch object plus multipart overhead.
pub const UPLOAD_BODY_LIMIT: u64 = 101 * 1024 * 1024;
/// Nonces remembered at most (15 minutes' worth at ~1,000 signed requests per second).
const NONCE_CAPACITY: usize = 1_000_000;

/// (account, action) -> wall-clock ms of the calls admitted in the last second.
type RateWindows = HashMap<(String, &'static str), VecDeque<u64>>;

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// State shared by all requests of one dialect instance.
pub struct Shared {
    pub nonces: NonceCache,
    /// `[aliyun] upload_endpoint = "127.0.0.1:9090"`: where AuthorizeFileUpload sends uploads.
    pub upload_endpoint: Option<String>,
    /// `[aliyun] inactive_accounts`: accounts that have not "activated" KV; their KV calls get
    /// InvalidAccount.NotFound and their account status reads `offline`.
    pub inactive_accounts: HashSet<String>,
    /// `[aliyun] security_tokens`: STS tokens to accept. kvmux issues none, so a request that
    /// carries any other token is refused with Unauthorized.InvalidToken.
    pub security_tokens: HashSet<String>,
    /// `[aliyun] namespace_capacity` (bytes; default 1 GB) for namespaces created from now on.
    pub namespace_capacity: i64,
    /// `[aliyun] account_capacity` (bytes; default 10 GB) for namespaces created from now on.
    pub account_capacity: i64,
    /// Calls per (account, action) in the current second, for the emulated rate limits.
    rate: Mutex<RateWindows>,
    /// Last modification (wall ms) per item, for the emulated TooQuickRequests.
    recent_writes: Mutex<HashMap<String, u64>>,
}

/// Minimum spacing of two modifications of one item when vendor rate limits are emulated.
const SAME_ITEM_SPACING_MS: u64 = 1000;

/// Account names that cannot be an Alibaba account (empty, whitespace, control characters).
fn account_is_malformed(account: &str) -> bool {
    account.is_empty() || account.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The Aliyun dialect.
pub struct AliyunDialect {
    ctx: DialectContext,
    shared: Shared,
}

impl AliyunDialect {
    pub fn new(ctx: DialectContext) -> Self {
        let options = Options::from_json_or_default(&ctx.options);
        let upload_endpoint = options.upload_endpoint;
        let inactive_accounts: HashSet<String> = options.inactive_accounts.into_iter().collect();
        let security_tokens: HashSet<String> = options.security_tokens.into_iter().collect();
        let namespace_capacity = options.namespace_capacity;
        let account_capacity = options.account_capacity;
        AliyunDialect {
            ctx,
            shared: Shared {
                nonces: NonceCache::new(NONCE_CAPACITY),
                upload_endpoint,
                inactive_accounts,
                security_tokens,
                namespace_capacity,
                account_capacity,
                rate: Mutex::new(HashMap::new()),
                recent_writes: Mutex::new(HashMap::new()),
            },
        }
    }

    /// The documented per-user rate limits (spec §1.3), when `vendor_rate_limits` is on.
    fn throttled(&self, account: &str, op: Operation) -> bool {
        if !self.ctx.vendor_rate_limits {
            return false;
        }
        let per_second = match op {
            Operation::PutDcdnKv => 50,
            Operation::DeleteDcdnKvNamespace => 5,
            _ => return false,
        };
        // A sliding one-second window: at most `per_second` admitted calls in any second.
        let now = wall_clock_ms();
        let Ok(mut rate) = self.shared.rate.lock() else {
            return false;
        };
        if rate.len() > 100_000 {
            rate.retain(|_, calls| calls.back().is_some_and(|t| now.saturating_sub(*t) < 1000));
        }
        let calls = rate.entry((account.to_string(), op.name())).or_default();
        while calls
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= 1000)
        {
            calls.pop_front();
        }
        if calls.len() >= per_second {
            return true;
        }
        calls.push_back(now);
        false
    }

    /// TooQuickRequests: a second modification of the same item within a second, when vendor
    /// rate limits are emulated (the documented meaning of the code).
    fn too_quick(&self, account: &str, op: Operation, params: &Params) -> bool {
        use crate::router::Family;
        if !self.ctx.vendor_rate_limits
            || !matches!(
                op.family(),
                Family::Put | Family::Delete | Family::PutHighCapacity
            )
        {
            return false;
        }
        let (Some(ns), Some(key)) = (params.get("Namespace"), params.get("Key")) else {
            return false;
        };
        let item = format!("{account}\n{:?}\n{ns}\n{key}", op.product());
        let now = wall_clock_ms();
        let Ok(mut recent) = self.shared.recent_writes.lock() else {
            return false;
        };
        if recent.len() > 100_000 {
            recent.retain(|_, at| now.saturating_sub(*at) < SAME_ITEM_SPACING_MS);
        }
        match recent.insert(item, now) {
            Some(previous) => now.saturating_sub(previous) < SAME_ITEM_SPACING_MS,
            None => false,
        }
    }

    async fn handle(&self, request: Request<Bytes>) -> Answer {
        let request_id = new_request_id();
        let (parts, body) = request.into_parts();
        let mut info = RequestInfo {
            operation: "unknown".into(),
            request_id: request_id.clone(),
            ..Default::default()
        };
        let op = match router::route(&parts) {
            Ok(op) => op,
            Err(e) => return error_response(&route_error(e), product_of(&parts), info),
        };
        info.operation = op.name().to_string();

        if op == Operation::OssPostObject {
            return self.post_object(&parts, body, &request_id, info).await;
        }
        let (query, form) = parameters(&parts, &body);
        let admitted = self.admit(&parts, &query, &form, &body, op, &mut info);
        let (account, op) = match admitted.await {
            Ok(admitted) => admitted,
            Err(refused) => return refused,
        };
        let product = op.product();

        let mut pairs = query;
        pairs.extend(form);
        let params = Params::new(pairs);
        if self.too_quick(&account, op, &params) {
            return error_response(&ApiError::too_quick_requests(), product, info);
        }
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or_default()
            .to_string();
        let ctx = ops::Ctx {
            engine: &self.ctx.engine,
            shared: &self.shared,
            account: &account,
            op,
            product,
            params: &params,
            host: &host,
        };
        match ops::dispatch(&ctx).await {
            Ok(mut fields) => {
                fields.insert("RequestId".into(), serde_json::json!(request_id));
                json_response(200, &serde_json::Value::Object(fields), info)
            }
            Err(e) => error_response(&e, product, info),
        }
    }

    /// The high-capacity upload's OSS POST (no RPC signature: the form carries the policy the
    /// `AuthorizeFileUpload` grant signed).
    async fn post_object(
        &self,
        parts: &Parts,
        body: Bytes,
        request_id: &str,
        mut info: RequestInfo,
    ) -> Answer {
        let ct = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let (resp, code) = ops::upload::post_object(&self.ctx.engine, ct, body, request_id).await;
        info.code = code.map(str::to_string);
        Answer::new(resp, info)
    }

    /// Everything decided before an operation runs: the caller's account (authenticated per the
    /// auth mode), the one operation every place in the request agrees on, the security token,
    /// an inactive account, and the vendor rate limit; or the vendor's refusal.
    async fn admit(
        &self,
        parts: &Parts,
        query: &[(String, String)],
        form: &[(String, String)],
        body: &[u8],
        routed: Operation,
        info: &mut RequestInfo,
    ) -> Result<(String, Operation), Answer> {
        let mut product = routed.product();
        let admitted = self
            .admit_as(parts, query, form, body, &mut product, info)
            .await;
        admitted.map_err(|refused| error_response(&refused, product, std::mem::take(info)))
    }

    /// [`Self::admit`]'s decisions, in order; `product` follows the operation once it is agreed
    /// (the refusal's envelope is that product's).
    async fn admit_as(
        &self,
        parts: &Parts,
        query: &[(String, String)],
        form: &[(String, String)],
        body: &[u8],
        product: &mut Product,
        info: &mut RequestInfo,
    ) -> Result<(String, Operation), ApiError> {
        let (account, caller) = self.authenticate(parts, query, form, body, info).await?;
        info.account = Some(account.clone());
        // A verified request runs what it signed: the operation comes from the caller's signed
        // action and version. Unverified (auth off or log), from where the router read them.
        // Either way every other place that names an action or version must agree: a request
        // naming two is refused, never served as one of them.
        let (action, version) = match &caller {
            Some(caller) => (caller.action.clone(), caller.version.clone()),
            None => {
                let (action, version) = router::action_and_version(parts);
                (action.unwrap_or_default(), version.unwrap_or_default())
            }
        };
        let op = agreed_operation(parts, query, form, &action, &version)?;
        *product = op.product();
        info.operation = op.name().to_string();
        if account_is_malformed(&account) {
            return Err(ApiError::account_malformed());
        }
        self.check_security_token(parts, query, caller.as_ref())?;
        let inactive = self.shared.inactive_accounts.contains(&account);
        if inactive
            && !matches!(
                op,
                Operation::DescribeKvAccountStatus
                    | Operation::DescribeDcdnKvAccountStatus
                    | Operation::AuthorizeFileUpload
            )
        {
            return Err(ApiError::account_not_found());
        }
        if self.throttled(&account, op) {
            return Err(ApiError::too_many_requests());
        }
        Ok((account, op))
    }

    /// A security token must be one `AssumeRole` issued (refused under `enforce`, logged under
    /// `log`, not looked at under `off`). A verified request's token is the signed one.
    fn check_security_token(
        &self,
        parts: &Parts,
        query: &[(String, String)],
        caller: Option<&Caller>,
    ) -> Result<(), ApiError> {
        let token = match caller {
            Some(caller) => caller.security_token.clone(),
            // Unverified (auth off or log): the best guess, as nothing here is trusted anyway.
            None => parts
                .headers
                .get("x-acs-security-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| {
                    query
                        .iter()
                        .find(|(k, _)| k == "SecurityToken")
                        .map(|(_, v)| v.clone())
                }),
        };
        let Some(token) = token else {
            return Ok(());
        };
        if self.ctx.auth_mode == AuthMode::Off || self.shared.security_tokens.contains(&token) {
            return Ok(());
        }
        if self.ctx.auth_mode == AuthMode::Enforce {
            return Err(ApiError::unauthorized_token());
        }
        tracing::warn!("aliyun: unknown security token (auth mode log: serving anyway)");
        Ok(())
    }

    /// Verifies the request's signature per the auth mode and returns the caller's account (and
    /// the verified caller, when the signature was verified), or the vendor's refusal. Records
    /// the outcome (and diagnostics of a refused signature) in `info`.
    ///
    /// Nonces, per mode: `enforce` refuses a request without one or with one already used;
    /// `log` records every nonce of a verified request and logs a reuse but serves it (log mode
    /// serves everything and only reports); `off` verifies nothing, so there is no nonce to
    /// trust and none is recorded.
    async fn authenticate(
        &self,
        parts: &Parts,
        query: &[(String, String)],
        form: &[(String, String)],
        body: &[u8],
        info: &mut RequestInfo,
    ) -> Result<(String, Option<Caller>), ApiError> {
        if self.ctx.auth_mode == AuthMode::Off {
            // One meaning of `off` in every dialect (see `AuthMode`): nothing is verified.
            let id = key_id_hint(parts).or_else(|| {
                form.iter()
                    .find(|(k, _)| k == "AccessKeyId")
                    .map(|(_, v)| v.clone())
            });
            let account = self
                .account_of(id.as_deref())
                .unwrap_or_else(|| self.ctx.fallback_account());
            return Ok((account, None));
        }
        let scheme = auth::detect(&parts.headers, query);
        let now = kv_core::clock::wall_clock_secs();
        let secret_of = |id: &str| self.ctx.credential(id).map(|c| c.secret.clone());
        let verified = match scheme {
            Scheme::V3 => auth::verify_v3(
                parts.method.as_str(),
                query,
                &parts.headers,
                body,
                &secret_of,
                now,
            )
            .and_then(|caller| signed_host(parts).map(|()| caller)),
            Scheme::V2 => {
                let mut all = query.to_vec();
                all.extend(form.iter().cloned());
                auth::verify_v2(parts.method.as_str(), &all, &secret_of, now)
            }
            Scheme::Unsigned => Err(Refusal {
                error: ApiError::incomplete_signature(),
                diagnostics: Box::new(kv_dialect::SignatureDiagnostics {
                    reason: "no Authorization header and no Signature parameter".into(),
                    ..Default::default()
                }),
                access_key_id: None,
            }),
        };
        match (verified, self.ctx.auth_mode) {
            (Ok(caller), mode) => {
                let account = self.account_of(Some(&caller.access_key_id));
                match self.first_use_of_nonce(&caller, now).await {
                    Ok(true) => {}
                    Ok(false) if mode == AuthMode::Log => {
                        tracing::warn!(
                            "aliyun: SignatureNonce reused (auth mode log: serving anyway)"
                        );
                    }
                    Ok(false) => {
                        info.account = account;
                        return Err(ApiError::nonce_used());
                    }
                    Err(e) if mode == AuthMode::Log => {
                        tracing::warn!(
                            code = %e.code,
                            "aliyun: nonce not recorded (auth mode log: serving anyway)"
                        );
                    }
                    Err(e) => {
                        info.account = account;
                        return Err(e);
                    }
                }
                let account = account.unwrap_or_else(|| self.ctx.fallback_account());
                Ok((account, Some(caller)))
            }
            (Err(refusal), AuthMode::Enforce) => {
                info.account = self.account_of(refusal.access_key_id.as_deref());
                info.signature = Some(*refusal.diagnostics);
                Err(refusal.error)
            }
            (Err(refusal), _) => {
                tracing::warn!(
                    code = %refusal.error.code,
                    reason = %refusal.diagnostics.reason,
                    "aliyun: signature refused (auth mode log: serving anyway)"
                );
                info.signature = Some(*refusal.diagnostics);
                let id = refusal.access_key_id.or_else(|| {
                    query
                        .iter()
                        .find(|(k, _)| k == "AccessKeyId")
                        .map(|(_, v)| v.clone())
                });
                let account = self
                    .account_of(id.as_deref())
                    .unwrap_or_else(|| self.ctx.fallback_account());
                Ok((account, None))
            }
        }
    }

    /// Whether this is the first use of the caller's nonce. The in-process cache answers a
    /// replay to this gateway without a store round trip; the store decides otherwise, so that a
    /// nonce stays used across restarts and on every gateway sharing the database. The record
    /// lives until the signed time leaves the window.
    async fn first_use_of_nonce(&self, caller: &Caller, now: u64) -> Result<bool, ApiError> {
        if !self.shared.nonces.first_use(
            &caller.access_key_id,
            &caller.nonce,
            now,
            auth::WINDOW_SECS,
        ) {
            return Ok(false);
        }
        let product = router::Product::from_version(&caller.version).unwrap_or(Product::Esa);
        self.ctx
            .engine
            .first_use_of_nonce(
                "aliyun",
                &caller.access_key_id,
                &caller.nonce,
                caller.nonce_retention_secs(now),
            )
            .await
            .map_err(|e| ApiError::from_engine(product, e))
    }

    fn account_of(&self, access_key_id: Option<&str>) -> Option<String> {
        access_key_id
            .and_then(|id| self.ctx.credential(id))
            .map(|c| c.account.clone())
    }
}

/// Uppercase UUID v4, as the service sends.
fn new_request_id() -> String {
    kv_dialect::new_request_id_upper()
}

/// [`Head::envelope`]: the product whose envelope answers the request. Alibaba Cloud's RPC
/// error body differs by product (ESA, DCDN, OpenPlatform), and the high-capacity upload's OSS
/// POST answers in OSS's XML.
const PRODUCTS: [Product; 4] = [
    Product::Esa,
    Product::Dcdn,
    Product::OpenPlatform,
    Product::Oss,
];

fn envelope_of(product: Product) -> u8 {
    PRODUCTS.iter().position(|p| *p == product).unwrap_or(0) as u8
}

fn product_of_envelope(envelope: u8) -> Product {
    PRODUCTS
        .get(usize::from(envelope))
        .copied()
        .unwrap_or(Product::Esa)
}

/// The key id a request names, unverified: ACS3's `Credential=<AccessKeyId>`, else the V2
/// signature's `AccessKeyId` in the query (a V2 POST may carry it in the form instead).
fn key_id_hint(parts: &Parts) -> Option<String> {
    match parts.headers.get(http::header::AUTHORIZATION) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(auth::parse_acs3_authorization)
            .map(|a| a.credential),
        None => form_urlencoded::parse(parts.uri.query()?.as_bytes())
            .find(|(k, _)| k == "AccessKeyId")
            .map(|(_, v)| v.into_owned()),
    }
}

fn product_of(parts: &Parts) -> Product {
    router::action_and_version(parts)
        .1
        .and_then(|v| Product::from_version(&v))
        .unwrap_or(Product::Esa)
}

/// The vendor's answer to a request that names no action, or one that does not exist.
fn route_error(e: RouteError) -> ApiError {
    match e {
        RouteError::MissingAction => ApiError::missing_parameter("Action"),
        RouteError::UnknownAction { .. } => ApiError::action_not_found(),
    }
}

/// A request's name-value parameters, in order.
type Pairs = Vec<(String, String)>;

/// The query's parameters and, for a form body, the form's.
fn parameters(parts: &Parts, body: &Bytes) -> (Pairs, Pairs) {
    let query = parts
        .uri
        .query()
        .map(|q| decode_form(q.as_bytes()))
        .unwrap_or_default();
    let form = if is_form(parts, body) {
        decode_form(body)
    } else {
        Vec::new()
    };
    (query, form)
}

/// The operation of `action` and `version` (the signed ones of a verified caller). Every other
/// place that names an action or version (the `x-acs-*` headers, which V2 does not sign; the
/// `Action`/`Version` parameters, which V3 does not read) must agree with them, or the request is
/// refused as a bad parameter: a disagreement is either a tampered request or a client bug, and
/// guessing would run something the key holder did not sign.
fn agreed_operation(
    parts: &Parts,
    query: &[(String, String)],
    form: &[(String, String)],
    action: &str,
    version: &str,
) -> Result<Operation, ApiError> {
    let op = router::lookup(action, version).map_err(route_error)?;
    let product = op.product();
    let disagree = |what: &str| {
        ApiError::invalid_parameter(
            product,
            format!("{what} disagrees with the request's action and version."),
        )
    };
    for (name, chosen) in [("x-acs-action", action), ("x-acs-version", version)] {
        for value in parts.headers.get_all(name) {
            if value.as_bytes() != chosen.as_bytes() {
                return Err(disagree(&format!("The {name} header")));
            }
        }
    }
    for (name, chosen) in [("Action", action), ("Version", version)] {
        if query
            .iter()
            .chain(form)
            .any(|(k, v)| k == name && v != chosen)
        {
            return Err(disagree(&format!("The {name} parameter")));
        }
    }
    Ok(op)
}

/// V3 signs the `host` header (required in SignedHeaders); an absolute-form request target
/// (proxy clients) must name that same host, or the request was aimed somewhere it was not
/// signed for.
fn signed_host(parts: &Parts) -> Result<(), Refusal> {
    let Some(authority) = parts.uri.authority() else {
        return Ok(());
    };
    let host = parts
        .headers
        .get(http::header::HOST)
        .map(|h| h.as_bytes())
        .unwrap_or_default();
    if host.eq_ignore_ascii_case(authority.as_str().as_bytes()) {
        return Ok(());
    }
    Err(Refusal {
        error: ApiError::incomplete_signature(),
        diagnostics: Box::new(kv_dialect::SignatureDiagnostics {
            reason: "the request target names another host than the signed Host header".into(),
            ..Default::default()
        }),
        access_key_id: None,
    })
}

/// Whether the body is a form: the SDKs send `application/x-www-form-urlencoded`; a body with no
/// content type at all is read as one too (hand-written clients).
fn is_form(parts: &Parts, body: &Bytes) -> bool {
    match parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(ct) => ct
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded"),
        None => !body.is_empty(),
    }
}

fn json_response(status: u16, body: &serde_json::Value, info: RequestInfo) -> Answer {
    let mut resp = Response::new(Bytes::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&info.request_id) {
        h.insert("x-acs-request-id", v);
    }
    Answer::new(resp, info)
}

fn error_response(err: &ApiError, product: Product, mut info: RequestInfo) -> Answer {
    info.code = Some(err.code.clone());
    let body = err.body(&info.request_id, product);
    let mut answer = json_response(err.status, &body, info);
    if err.code == error::TOO_MANY_REQUESTS {
        // The header is what makes tea-openapi raise its ThrottlingException (with
        // `retry_after`), which client retry code keys on: on the emulated rate limit and on an
        // injected throttle alike.
        answer
            .response
            .headers_mut()
            .insert("x-acs-retry-after", HeaderValue::from_static("1000"));
    }
    answer
}

impl Dialect for AliyunDialect {
    fn name(&self) -> &'static str {
        "aliyun"
    }

    fn classify(&self, parts: &Parts) -> Option<Head> {
        if !claims(parts) {
            return None;
        }
        if router::is_oss_post(parts) {
            return Some(
                Head::new(UPLOAD_BODY_LIMIT)
                    .in_envelope(envelope_of(Product::Oss))
                    .naming(Some(Operation::OssPostObject.name()), &router::ACTION_NAMES),
            );
        }
        let operation = router::route(parts).ok();
        let envelope = envelope_of(product_of(parts));
        let head = Head::new(ACTION_BODY_LIMIT)
            .in_envelope(envelope)
            .naming(operation.map(|op| op.name()), &router::ACTION_NAMES);
        Some(head.signed_by(key_id_hint(parts), &self.ctx.credentials))
    }

    fn gateway_error(&self, head: &Head, error: GatewayError) -> Answer {
        let request_id = new_request_id();
        let info = RequestInfo {
            operation: head.operation_or_unknown(),
            request_id: request_id.clone(),
            ..Default::default()
        };
        let product = product_of_envelope(head.envelope);
        if product == Product::Oss {
            let (status, code, msg) = match &error {
                GatewayError::BodyTooLarge { .. } => (
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size.",
                ),
                GatewayError::BadBody(_) => (400, "InvalidArgument", "The body could not be read."),
                GatewayError::Throttled => (
                    503,
                    "ServiceUnavailable",
                    "Please reduce your request rate.",
                ),
                GatewayError::Internal => {
                    (500, "InternalError", "We encountered an internal error.")
                }
            };
            let resp = ops::upload::oss_error(status, code, msg, &request_id);
            let info = RequestInfo {
                code: Some(code.into()),
                ..info
            };
            return Answer::new(resp, info);
        }
        let err = match error {
            GatewayError::BodyTooLarge { .. } => ApiError::value_too_large("2,000,000"),
            GatewayError::BadBody(m) => ApiError::invalid_parameter(product, m),
            GatewayError::Throttled => ApiError::too_many_requests(),
            GatewayError::Internal => ApiError::internal(),
        };
        error_response(&err, product, info)
    }

    fn operations(&self) -> &'static [&'static str] {
        &router::ACTION_NAMES
    }

    fn serve(&self, _head: Head, request: Request<Bytes>) -> BoxFuture<'_, Answer> {
        Box::pin(self.handle(request))
    }

    /// ESA and DCDN namespaces (`aliyun-esa`, `aliyun-dcdn`); a name resets that namespace in
    /// both products, DCDN's under its case-folded engine name and a legacy exact one.
    fn reset_selectors(
        &self,
        container: Option<&str>,
    ) -> Result<Vec<kv_core::ContainerSelector>, String> {
        use kv_core::{ContainerSelector, ScopeMatch};
        use ops::namespace::{engine_name, scope};
        let products = [Product::Esa, Product::Dcdn];
        Ok(match container {
            None => products
                .iter()
                .map(|p| ContainerSelector::all(ScopeMatch::Exact(scope(*p).into())))
                .collect(),
            Some(name) => {
                let mut selectors: Vec<ContainerSelector> = products
                    .iter()
                    .map(|p| {
                        ContainerSelector::named(
                            ScopeMatch::Exact(scope(*p).into()),
                            engine_name(*p, name),
                        )
                    })
                    .collect();
                selectors.push(ContainerSelector::named(
                    ScopeMatch::Exact(scope(Product::Dcdn).into()),
                    name,
                ));
                selectors
            }
        })
    }

    fn credentials(&self) -> Option<&kv_dialect::Credentials> {
        Some(&self.ctx.credentials)
    }
}

/// Whether a request is for this dialect: an `x-acs-action` header or `ACS3-` Authorization (V3),
/// an `Action` query parameter with one of our API versions (V2; Tencent's legacy signature also
/// uses `Action=`, but never these versions), or the multipart OSS upload.
pub fn claims(parts: &Parts) -> bool {
    if parts.uri.path().starts_with("/_kvmux") {
        return false;
    }
    if parts.headers.contains_key("x-acs-action") {
        return true;
    }
    if parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.trim_start().starts_with("ACS3-"))
    {
        return true;
    }
    if router::is_oss_post(parts) && parts.uri.path() == "/" {
        return true;
    }
    let (action, version) = router::action_and_version(parts);
    action.is_some() && version.as_deref().and_then(Product::from_version).is_some()
}

#[cfg(test)]
mod tests;
