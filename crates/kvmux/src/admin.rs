//! The admin API under `/_kvmux/` (and `/metrics`): never claimed by a dialect.
//!
//! It reads every tenant's data and can wipe it, so [`authorize`] runs before anything else
//! (before the body is even read): the port must be one that serves admin, `[admin] enabled`
//! must be true, the `Host` must be a name this gateway answers to and any `Origin` must be that
//! same host (a page elsewhere, or a DNS-rebound name, gets nothing), the caller must hold the
//! token unless the listener is loopback and no token is configured, and a state-changing call
//! must say `Content-Type: application/json`, which a cross-site form or a "simple" `fetch`
//! cannot send without a CORS preflight that this API never grants.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::json;

use crate::config::Config;
use crate::faults::FaultRuleSpec;
use crate::inspector;
use crate::server::Gateway;

/// Whether a path belongs to the admin API.
pub fn is_admin_path(path: &str) -> bool {
    path == "/metrics" || path == "/_kvmux" || path.starts_with("/_kvmux/")
}

mod isolation;

/// The largest admin request body.
pub const ADMIN_BODY_LIMIT: u64 = 1 << 20;

/// The largest body this admin request may carry: [`ADMIN_BODY_LIMIT`], but a snapshot import
/// (`POST /_kvmux/snapshot`) carries a whole dump, up to [`isolation::IMPORT_BODY_LIMIT`].
pub fn body_limit(parts: &http::request::Parts) -> u64 {
    if parts.method == Method::POST && parts.uri.path() == "/_kvmux/snapshot" {
        isolation::IMPORT_BODY_LIMIT
    } else {
        ADMIN_BODY_LIMIT
    }
}

pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// `GET /_kvmux/health` for a caller who may see the details: serialized from a struct into one
/// buffer (through a `serde_json::Value` map it was a tenth of a health call's CPU), the fields
/// in the order the map gave them.
fn health_details(gw: &Gateway) -> Response<Bytes> {
    struct Dialects<'a>(&'a Gateway);
    impl serde::Serialize for Dialects<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.dialects.iter().map(|d| d.name()))
        }
    }
    #[derive(serde::Serialize)]
    struct Details<'a> {
        dialects: Dialects<'a>,
        now: u64,
        status: &'static str,
        uptime_secs: u64,
        version: &'static str,
    }
    let details = Details {
        dialects: Dialects(gw),
        now: gw.engine.now(),
        status: "ok",
        uptime_secs: gw.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
    };
    // A struct of numbers and names always serializes.
    let body = serde_json::to_vec(&details).unwrap_or_default();
    let mut resp = Response::new(Bytes::from(body));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response<Bytes> {
    json_response(status, json!({"error": message.into()}))
}

/// Which listener a connection came in on; [`crate::server::run`] tags every request with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Port {
    /// The one port, serving both the vendor APIs and admin (no `[admin] listen`).
    #[default]
    Shared,
    /// The data port when `[admin] listen` is set: admin paths do not exist here.
    Data,
    /// `[admin] listen`: nothing but admin, dashboard and metrics.
    Admin,
}

/// How the admin API is protected, decided by the config alone (never by who connects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `[admin] enabled = false`: every admin path answers 404.
    Disabled,
    /// Loopback listener and no token: only this machine can connect, no token needed.
    Open,
    /// A token is configured: every call carries `Authorization: Bearer <token>`.
    Token,
    /// A listener other than loopback and no token: every call is refused with 401.
    Locked,
}

/// The mode alone, without its description: what every admin call checks (the description was
/// `format!`ted on each call, 2.7% of the gateway's CPU serving `GET /_kvmux/health`).
pub fn mode_kind(config: &Config) -> Mode {
    let listen = config.admin.listen.as_deref().unwrap_or(&config.listen);
    mode_of(config, crate::config::is_loopback(listen))
}

fn mode_of(config: &Config, loopback: bool) -> Mode {
    if !config.admin.enabled {
        Mode::Disabled
    } else if config.admin.token.is_some() {
        Mode::Token
    } else if loopback {
        Mode::Open
    } else {
        Mode::Locked
    }
}

/// The admin mode of `config` and why, for `check-config`, the start-up log and 401 replies.
pub fn mode(config: &Config) -> (Mode, String) {
    let listen = config.admin.listen.as_deref().unwrap_or(&config.listen);
    let kind = mode_of(config, crate::config::is_loopback(listen));
    let why = match kind {
        Mode::Disabled => "disabled by [admin] enabled = false; admin paths answer 404".into(),
        Mode::Token => format!(
            "on {listen}, token required ([admin] token or {}); send Authorization: Bearer \
             <token>",
            crate::config::ADMIN_TOKEN_ENV
        ),
        Mode::Open => {
            format!("open without a token: {listen} is loopback, so only this machine can connect")
        }
        Mode::Locked => format!(
            "locked: {listen} is reachable from other machines and no token is configured; \
             set [admin] token or {} to use it (every admin call answers 401 until then)",
            crate::config::ADMIN_TOKEN_ENV
        ),
    };
    (kind, why)
}

/// The response header that carries an admin call's request id (data requests carry their
/// vendor's own request id header instead).
pub const REQUEST_ID_HEADER: &str = "x-kvmux-request-id";

/// The id of one admin call, put into the request's extensions by the server when the call
/// arrives: its log lines ("admin call", "request") and its response's [`REQUEST_ID_HEADER`]
/// carry it, so an operator can find what the gateway logged about a reply a client saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn fresh() -> Self {
        RequestId(uuid::Uuid::new_v4().to_string())
    }
}

/// The request id the server gave this admin call (`-` if none: only unit tests build such).
pub fn request_id(parts: &http::request::Parts) -> &str {
    parts
        .extensions
        .get::<RequestId>()
        .map_or("-", |id| id.0.as_str())
}

/// Puts the call's request id into an admin response's headers.
pub fn tag_response(parts: &http::request::Parts, headers: &mut http::HeaderMap) {
    if let Some(id) = parts.extensions.get::<RequestId>() {
        if let Ok(value) = http::HeaderValue::from_str(&id.0) {
            headers.insert(REQUEST_ID_HEADER, value);
        }
    }
}

/// Logs one admin call (INFO), answered or refused, with who asked.
pub fn log_call(peer: SocketAddr, parts: &http::request::Parts, status: StatusCode) {
    crate::logs::emit(crate::logs::Line::AdminCall {
        request_id: request_id(parts),
        peer,
        method: parts.method.as_str(),
        // The path is the caller's text: cut, so a log line never grows with what a stranger sent.
        path: &crate::inspector::cut_ref(parts.uri.path(), 256),
        status: status.as_u16(),
    });
}

/// Whether a request that reached a listener is allowed into the admin API (or, on the admin
/// port, anywhere). `Err` is the refusal to send as is (boxed: it is the rare path); it has been
/// logged.
pub fn authorize(
    gw: &Gateway,
    peer: SocketAddr,
    parts: &http::request::Parts,
) -> Result<(), Box<Response<Bytes>>> {
    check(&gw.config, parts)
        .map_err(Box::new)
        .inspect_err(|resp| log_call(peer, parts, resp.status()))
}

#[allow(clippy::result_large_err)] // boxed once, by `authorize`
fn check(config: &Config, parts: &http::request::Parts) -> Result<(), Response<Bytes>> {
    let path = parts.uri.path();
    let admin_path = is_admin_path(path);
    match parts.extensions.get::<Port>().copied().unwrap_or_default() {
        Port::Data if admin_path => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("no admin endpoint {path}"),
            ))
        }
        Port::Admin if !admin_path => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("{path}: this port serves only the admin API (/_kvmux/, /metrics)"),
            ))
        }
        _ if !admin_path => return Ok(()),
        _ => {}
    }
    let mode = mode_kind(config);
    if mode == Mode::Disabled {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no admin endpoint {path}"),
        ));
    }
    let host = check_host(config, parts).map_err(|e| error(StatusCode::FORBIDDEN, e))?;
    check_origin(config, parts, host.as_ref()).map_err(|e| error(StatusCode::FORBIDDEN, e))?;
    if !is_public(parts) && !holds_token(config, mode, parts) {
        let message = match mode {
            Mode::Token => {
                "admin token missing or wrong: send Authorization: Bearer <token>".into()
            }
            _ => format!("admin is {}", self::mode(config).1),
        };
        let mut resp = error(StatusCode::UNAUTHORIZED, message);
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"kvmux admin\""),
        );
        return Err(resp);
    }
    let changes_state = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    // The dashboard's paths are read-only (anything but GET is a 405 there), so they need no
    // content type to stay harmless.
    if changes_state && !crate::dashboard::is_dashboard_path(path) && !is_json(parts) {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{} {path} must be sent with Content-Type: application/json (also when there is \
                 no body): browsers cannot send that cross-site without asking first",
                parts.method
            ),
        ));
    }
    Ok(())
}

/// Reachable without the token (still only on an admin port, with an allowed Host): the
/// dashboard's static files, which hold no data (the page then asks for the token), and
/// `GET /_kvmux/health`, which says only whether the gateway is up, so load balancer and
/// Kubernetes probes work without a secret.
fn is_public(parts: &http::request::Parts) -> bool {
    let path = parts.uri.path();
    parts.method == Method::GET
        && (path == "/_kvmux/health" || path == "/_kvmux/ui" || path.starts_with("/_kvmux/ui/"))
}

/// Whether the caller may see everything: admin is open, or it sent the right token.
fn holds_token(config: &Config, mode: Mode, parts: &http::request::Parts) -> bool {
    match (mode, &config.admin.token) {
        (Mode::Open, _) => true,
        (Mode::Token, Some(token)) => bearer(parts).is_some_and(|sent| same_secret(sent, token)),
        _ => false,
    }
}

fn bearer(parts: &http::request::Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares two secrets in time independent of where they differ (or of their lengths): both
/// are MACed under a fixed key and the digests compared with `verify_slice`, which is
/// constant-time.
fn same_secret(sent: &str, expected: &str) -> bool {
    use hmac::{Hmac, Mac};
    type HmacSha256 = Hmac<sha2::Sha256>;
    let mac = |data: &str| {
        HmacSha256::new_from_slice(b"kvmux admin token").map(|mut m| {
            m.update(data.as_bytes());
            m
        })
    };
    match (mac(sent), mac(expected)) {
        (Ok(sent), Ok(expected)) => sent.verify_slice(&expected.finalize().into_bytes()).is_ok(),
        _ => false,
    }
}

fn is_json(parts: &http::request::Parts) -> bool {
    parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A `Host` or `Origin` authority: lower-case host without brackets or a trailing dot, and port.
#[derive(Debug, PartialEq, Eq)]
struct HostPort {
    host: String,
    port: Option<u16>,
}

fn host_port(authority: &http::uri::Authority) -> HostPort {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    HostPort {
        host,
        port: authority.port_u16(),
    }
}

/// The request's `Host`, if it names this gateway: loopback names (`localhost`, `*.localhost`),
/// any IP address (DNS rebinding needs a name: a page can only make a browser send an IP as the
/// Host by being served from that IP, i.e. by this gateway), or an `[admin] allowed_hosts` entry.
/// No `Host` at all is `None` and let through: browsers always send one, so its absence is an
/// HTTP/1.0 client such as a load balancer's health check, never a rebound page.
fn check_host(config: &Config, parts: &http::request::Parts) -> Result<Option<HostPort>, String> {
    let Some(raw) = parts.headers.get(http::header::HOST) else {
        return Ok(None);
    };
    // Shown only in a refusal (a Host of the caller's bytes, quoted).
    let shown = || String::from_utf8_lossy(raw.as_bytes()).into_owned();
    let authority = raw
        .to_str()
        .ok()
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        .filter(|a| !a.as_str().contains('@'))
        .ok_or_else(|| format!("Host {:?} is not a host name", shown()))?;
    let hp = host_port(&authority);
    if host_allowed(config, &hp) {
        Ok(Some(hp))
    } else {
        Err(format!(
            "Host {:?} is not a name this gateway answers to; an operator can add it to \
             [admin] allowed_hosts",
            shown()
        ))
    }
}

fn host_allowed(config: &Config, hp: &HostPort) -> bool {
    let host = hp.host.as_str();
    if host == "localhost" || host.ends_with(".localhost") || host.parse::<IpAddr>().is_ok() {
        return true;
    }
    config.admin.allowed_hosts.iter().any(|allowed| {
        let allowed = allowed.trim().trim_end_matches('.').to_ascii_lowercase();
        match allowed.parse::<http::uri::Authority>() {
            Ok(a) if a.port_u16().is_some() => host_port(&a) == *hp,
            _ => allowed == host,
        }
    })
}

/// A browser names the page that made a request in `Origin`; admin calls are only taken from
/// pages of this same host and port (the dashboard). A request without `Origin` is a
/// non-browser client or a same-origin GET.
fn check_origin(
    config: &Config,
    parts: &http::request::Parts,
    host: Option<&HostPort>,
) -> Result<(), String> {
    let Some(raw) = parts.headers.get(http::header::ORIGIN) else {
        return Ok(());
    };
    let shown = String::from_utf8_lossy(raw.as_bytes()).into_owned();
    let refused = || {
        format!(
            "Origin {shown:?} is not this gateway: admin calls are only taken from its own pages"
        )
    };
    let uri = raw
        .to_str()
        .ok()
        .and_then(|o| o.parse::<http::Uri>().ok())
        .ok_or_else(refused)?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(refused()),
    };
    let origin = host_port(uri.authority().ok_or_else(refused)?);
    // A browser always sends Host with Origin; without one there is nothing to be the same as.
    let host = host.ok_or_else(refused)?;
    let same_host = origin.host == host.host;
    let same_port = origin.port.unwrap_or(default_port) == host.port.unwrap_or(default_port);
    if same_host && same_port && host_allowed(config, &origin) {
        Ok(())
    } else {
        Err(refused())
    }
}

/// The most one `clock/advance` may move the clock: 100 years. Tests need days or years; a larger
/// number is a mistake, and refusing it keeps the offset far inside what the clock can hold.
pub const MAX_ADVANCE_SECS: u64 = 3_153_600_000;

/// `{"seconds": N}` with N a whole number in `0..=MAX_ADVANCE_SECS`; the error says which bound.
fn advance_seconds(body: &[u8]) -> Result<u64, String> {
    let shape = format!("expected {{\"seconds\": N}} with N a whole number from 0 to {MAX_ADVANCE_SECS} (100 years)");
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("{shape}: {e}"))?;
    let object = value.as_object().ok_or_else(|| shape.clone())?;
    if let Some(unknown) = object.keys().find(|k| *k != "seconds") {
        return Err(format!("{shape}: unknown field {unknown:?}"));
    }
    let seconds = object
        .get("seconds")
        .ok_or_else(|| format!("{shape}: seconds is missing"))?;
    match seconds.as_u64() {
        Some(n) if n <= MAX_ADVANCE_SECS => Ok(n),
        Some(n) => Err(format!("{shape}: {n} is more than {MAX_ADVANCE_SECS}")),
        None => Err(format!("{shape}: got {seconds}")),
    }
}

/// Serves one admin request that [`authorize`] let in, and logs it. Returns the operation name
/// for metrics and the response.
pub async fn handle(
    gw: &Arc<Gateway>,
    peer: SocketAddr,
    parts: &http::request::Parts,
    body: Bytes,
) -> (&'static str, Response<Bytes>) {
    let (operation, resp) = route(gw, parts, body).await;
    log_call(peer, parts, resp.status());
    (operation, resp)
}

async fn route(
    gw: &Arc<Gateway>,
    parts: &http::request::Parts,
    body: Bytes,
) -> (&'static str, Response<Bytes>) {
    let method = &parts.method;
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or_default();
    if crate::dashboard::is_dashboard_path(path) {
        return crate::dashboard::handle(gw, parts).await;
    }
    match (method, path) {
        (&Method::GET, "/_kvmux/requests") => (
            "requests",
            match parse_query::<inspector::Query>(query) {
                Ok(q) => json_response(
                    StatusCode::OK,
                    json!({"requests": gw.inspector.recent(&q)}),
                ),
                Err(e) => error(StatusCode::BAD_REQUEST, e),
            },
        ),
        (&Method::DELETE, "/_kvmux/requests") => {
            gw.inspector.clear();
            (
                "requests",
                json_response(StatusCode::OK, json!({"status": "ok"})),
            )
        }
        (&Method::GET, "/_kvmux/faults") => (
            "faults",
            json_response(StatusCode::OK, json!({"faults": gw.faults.list()})),
        ),
        (&Method::POST, "/_kvmux/faults") => (
            "faults",
            match serde_json::from_slice::<FaultRuleSpec>(&body)
                .map_err(|e| format!("a fault rule is {{\"dialect\", \"operation\", \"account\", \"probability\", \"error\": \"throttle\"|\"internal\", \"latency_ms\"}}: {e}"))
                .and_then(|spec| spec.validate().map(|()| spec))
                .and_then(|spec| {
                    let dialects: Vec<(&str, &[&str])> =
                        gw.dialects.iter().map(|d| (d.name(), d.operations())).collect();
                    spec.check_names(&dialects).map(|()| spec)
                })
            {
                Ok(spec) => json_response(StatusCode::CREATED, json!(gw.faults.add(spec))),
                Err(e) => error(StatusCode::BAD_REQUEST, e),
            },
        ),
        (&Method::DELETE, "/_kvmux/faults") => (
            "faults",
            json_response(StatusCode::OK, json!({"removed": gw.faults.clear()})),
        ),
        (&Method::DELETE, p) if p.starts_with("/_kvmux/faults/") => {
            let id = &p["/_kvmux/faults/".len()..];
            (
                "faults",
                match id.parse::<u64>() {
                    Ok(id) if gw.faults.remove(id) => {
                        json_response(StatusCode::OK, json!({"removed": 1}))
                    }
                    Ok(id) => error(StatusCode::NOT_FOUND, format!("no fault rule {id}")),
                    Err(_) => error(
                        StatusCode::BAD_REQUEST,
                        format!("{id:?} is not a fault rule id"),
                    ),
                },
            )
        }
        (&Method::GET, "/_kvmux/health") => {
            // A store that cannot write takes the gateway out of service (readiness), with why.
            if let Err(reason) = gw.engine.health() {
                return (
                    "health",
                    json_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        json!({"status": "unavailable", "reason": reason}),
                    ),
                );
            }
            // Public (probes carry no token), so details only for callers who may see them.
            let mode = mode_kind(&gw.config);
            if holds_token(&gw.config, mode, parts) {
                ("health", health_details(gw))
            } else {
                ("health", json_response(StatusCode::OK, json!({"status": "ok"})))
            }
        }
        (&Method::POST, "/_kvmux/reset") => ("reset", isolation::reset(gw, &body).await),
        (&Method::POST, "/_kvmux/snapshot") => {
            ("snapshot_import", isolation::import(gw, query, &body).await)
        }
        (_, p) if p == "/_kvmux/checkpoints" || p.starts_with("/_kvmux/checkpoints/") => (
            "checkpoints",
            match isolation::checkpoints(gw, method, p).await {
                Some(resp) => resp,
                None => error(StatusCode::NOT_FOUND, format!("no admin endpoint {path}")),
            },
        ),
        (_, p) if p == "/_kvmux/credentials" || p.starts_with("/_kvmux/credentials/") => (
            "credentials",
            match isolation::credentials(gw, method, p, &body) {
                Some(resp) => resp,
                None => error(StatusCode::NOT_FOUND, format!("no admin endpoint {path}")),
            },
        ),
        (&Method::POST, "/_kvmux/clock/advance") => (
            "clock_advance",
            match advance_seconds(&body) {
                Ok(seconds) => match gw.engine.advance_clock(seconds).await {
                    Ok(Some(now)) => json_response(StatusCode::OK, json!({"now": now})),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    Ok(None) => error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "advancing {seconds} s would put the engine clock more than {} s \
                             ahead of real time, the most it may run ahead",
                            kv_core::Clock::MAX_OFFSET_SECS
                        ),
                    ),
                },
                Err(e) => error(StatusCode::BAD_REQUEST, e),
            },
        ),
        (&Method::GET, "/metrics") => {
            let stats = gw.engine.stats().await.ok();
            let mut resp = Response::new(Bytes::from(gw.metrics.render(stats.as_ref())));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            ("metrics", resp)
        }
        (
            _,
            "/_kvmux/health" | "/_kvmux/reset" | "/_kvmux/clock/advance" | "/metrics"
            | "/_kvmux/requests" | "/_kvmux/faults" | "/_kvmux/snapshot",
        ) => (
            "admin",
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path}"),
            ),
        ),
        _ => (
            "admin",
            error(StatusCode::NOT_FOUND, format!("no admin endpoint {path}")),
        ),
    }
}

/// Parses a query string into `T`, refusing unknown or malformed parameters with a message.
pub(crate) fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, String> {
    serde_urlencoded::from_str(query).map_err(|e| format!("bad query parameters: {e}"))
}
