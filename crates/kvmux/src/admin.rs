//! The admin API under `/_kvmux/` (and `/metrics`): never claimed by a dialect.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::faults::FaultRuleSpec;
use crate::inspector;
use crate::server::Gateway;

/// Whether a path belongs to the admin API.
pub fn is_admin_path(path: &str) -> bool {
    path == "/metrics" || path == "/_kvmux" || path.starts_with("/_kvmux/")
}

/// The largest admin request body.
pub const ADMIN_BODY_LIMIT: u64 = 1 << 20;

pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response<Bytes> {
    json_response(status, json!({"error": message.into()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: u64,
}

/// Serves one admin request. Returns the operation name for metrics and the response.
pub async fn handle(
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
        (&Method::GET, "/_kvmux/health") => (
            "health",
            json_response(
                StatusCode::OK,
                json!({
                    "status": "ok",
                    "version": env!("CARGO_PKG_VERSION"),
                    "dialects": gw.dialect_names(),
                    "now": gw.engine.now(),
                    "uptime_secs": gw.started.elapsed().as_secs(),
                }),
            ),
        ),
        (&Method::POST, "/_kvmux/reset") => match gw.engine.reset().await {
            Ok(()) => (
                "reset",
                json_response(StatusCode::OK, json!({"status": "ok"})),
            ),
            Err(e) => (
                "reset",
                error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            ),
        },
        (&Method::POST, "/_kvmux/clock/advance") => {
            match serde_json::from_slice::<Advance>(&body) {
                Ok(a) => {
                    let now = gw.engine.clock().advance(a.seconds);
                    (
                        "clock_advance",
                        json_response(StatusCode::OK, json!({"now": now})),
                    )
                }
                Err(e) => (
                    "clock_advance",
                    error(
                        StatusCode::BAD_REQUEST,
                        format!("expected {{\"seconds\": N}} with N >= 0: {e}"),
                    ),
                ),
            }
        }
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
