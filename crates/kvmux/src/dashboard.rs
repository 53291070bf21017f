//! The web dashboard at `/_kvmux/ui`: static files compiled into the binary (no build step, no
//! CDN, so it works offline and in CI) and the small read-only JSON API it browses with:
//!
//! - `GET /_kvmux/api/containers` — every container with its account, scope, kind and usage;
//! - `GET /_kvmux/api/items?container=ID&prefix=TEXT&after=CURSOR&limit=N` — one page of keys;
//! - `GET /_kvmux/api/item?container=ID&key_hex=HEX` — one value, rendered for reading: JSON,
//!   text, BSON documents as relaxed extended JSON, anything else as hex.
//!
//! Keys travel as hex because Huawei keys are binary (an order-preserving encoding of the
//! primary key); `key` is the readable form only: for a Huawei table or index the key decoded
//! and named by its schema (`{"owner": "ann", "n": 7}`), else the text, else `0x` hex.
//!
//! kvmux's own containers (account [`kv_core::INTERNAL_ACCOUNT`], the Aliyun upload staging)
//! are not a tenant's: they are neither listed nor browsable.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use kv_core::{Container, ContainerKind, ScanOptions};
use serde::Deserialize;
use serde_json::json;

use crate::admin::{error, json_response, parse_query};
use crate::server::Gateway;

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// The most keys one page may ask for.
const MAX_PAGE: usize = 500;
/// Values larger than this are cut for display (the size is still reported).
const MAX_SHOWN_BYTES: usize = 256 * 1024;

/// Whether the dashboard serves this path.
pub fn is_dashboard_path(path: &str) -> bool {
    path == "/_kvmux/ui" || path.starts_with("/_kvmux/ui/") || path.starts_with("/_kvmux/api/")
}

fn static_file(body: &'static str, content_type: &'static str) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from_static(body.as_bytes()));
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    // The page only talks to its own origin; nothing inline, nothing remote.
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    resp
}

/// Serves a dashboard request; returns the operation name for metrics and the response.
pub async fn handle(
    gw: &Arc<Gateway>,
    parts: &http::request::Parts,
) -> (&'static str, Response<Bytes>) {
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or_default();
    if parts.method != Method::GET {
        return (
            "ui",
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {path}", parts.method),
            ),
        );
    }
    match path {
        "/_kvmux/ui" | "/_kvmux/ui/" | "/_kvmux/ui/index.html" => {
            ("ui", static_file(INDEX_HTML, "text/html; charset=utf-8"))
        }
        "/_kvmux/ui/app.js" => ("ui", static_file(APP_JS, "text/javascript; charset=utf-8")),
        "/_kvmux/ui/app.css" => ("ui", static_file(APP_CSS, "text/css; charset=utf-8")),
        "/_kvmux/api/containers" => ("api", containers(gw).await),
        "/_kvmux/api/items" => ("api", items(gw, query).await),
        "/_kvmux/api/item" => ("api", item(gw, query).await),
        _ => (
            "ui",
            error(
                StatusCode::NOT_FOUND,
                format!("no dashboard resource {path}"),
            ),
        ),
    }
}

fn kind_name(kind: &ContainerKind) -> &'static str {
    match kind {
        ContainerKind::Flat => "flat",
        ContainerKind::Document => "document",
    }
}

/// Which vendor a container belongs to, from the scope prefix the dialects use.
fn vendor_of(scope: &str) -> &'static str {
    match scope.split('/').next().unwrap_or_default() {
        "tencent" => "tencent",
        s if s.starts_with("aliyun") => "aliyun",
        s if s.starts_with("huawei") => "huawei",
        _ => "other",
    }
}

async fn containers(gw: &Gateway) -> Response<Bytes> {
    let all = match gw.engine.all_containers().await {
        Ok(all) => all,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut out = Vec::with_capacity(all.len());
    for c in all.iter().filter(|c| !c.is_internal()) {
        let usage = gw.engine.usage(c).await.unwrap_or_default();
        out.push(json!({
            "id": c.id.to_string(),
            "account": c.account,
            "scope": c.scope,
            "name": c.name,
            "vendor": vendor_of(&c.scope),
            "kind": kind_name(&c.kind),
            "items": usage.items,
            "bytes": usage.bytes,
            "attrs": c.attrs,
            "created_at_ms": c.created_at_ms,
        }));
    }
    json_response(
        StatusCode::OK,
        json!({"containers": out, "now": gw.engine.now()}),
    )
}

/// A tenant's container by id, with how its keys are read.
async fn find_container(gw: &Gateway, id: &str) -> Result<(Container, KeyReader), Response<Bytes>> {
    let id: u64 = id.parse().map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a container id"),
        )
    })?;
    let all = gw
        .engine
        .all_containers()
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let container = all
        .iter()
        .find(|c| c.id == id && !c.is_internal())
        .cloned()
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no container {id}")))?;
    let reader = KeyReader::of(&container, &all);
    Ok((container, reader))
}

fn readable_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => format!("0x{}", hex::encode(key)),
    }
}

/// How a container's keys are shown: a Huawei table's or index's decoded by its key fields,
/// anything else as text or hex.
enum KeyReader {
    Huawei(Vec<String>),
    Bytes,
}

impl KeyReader {
    fn of(container: &Container, all: &[Container]) -> Self {
        if vendor_of(&container.scope) != "huawei" || container.kind != ContainerKind::Document {
            return KeyReader::Bytes;
        }
        let table = kv_huawei::display::index_table_id(container)
            .and_then(|id| all.iter().find(|c| c.id == id));
        KeyReader::Huawei(kv_huawei::display::key_fields(container, table))
    }

    fn read(&self, key: &[u8]) -> String {
        match self {
            KeyReader::Huawei(fields) => {
                kv_huawei::display::readable_key(fields, key).unwrap_or_else(|| readable_key(key))
            }
            KeyReader::Bytes => readable_key(key),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemsQuery {
    container: String,
    #[serde(default)]
    prefix: String,
    /// The hex key of the last item of the previous page.
    after: Option<String>,
    limit: Option<usize>,
}

async fn items(gw: &Gateway, query: &str) -> Response<Bytes> {
    let q: ItemsQuery = match parse_query(query) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let (container, keys) = match find_container(gw, &q.container).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let after = match q.after.as_deref().map(hex::decode).transpose() {
        Ok(a) => a,
        Err(_) => return error(StatusCode::BAD_REQUEST, "after must be a hex key"),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let mut options = ScanOptions::prefix(q.prefix.as_bytes(), after.as_deref(), limit);
    if q.prefix.is_empty() {
        options.start = after.map_or(Bound::Unbounded, Bound::Excluded);
        options.end = Bound::Unbounded;
    }
    let page = match gw.engine.scan(&container, options).await {
        Ok(p) => p,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let now = gw.engine.now();
    let items: Vec<_> = page
        .items
        .iter()
        .map(|i| {
            json!({
                "key": keys.read(&i.key),
                "key_hex": hex::encode(&i.key),
                "size": i.size(),
                "expires_at": i.expires_at,
                "ttl_secs": i.expires_at.map(|e| e.saturating_sub(now)),
            })
        })
        .collect();
    let next = match (page.more, page.items.last()) {
        (true, Some(last)) => Some(hex::encode(&last.key)),
        _ => None,
    };
    json_response(StatusCode::OK, json!({"items": items, "next": next}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemQuery {
    container: String,
    key_hex: String,
}

/// A BSON value as relaxed extended JSON (MongoDB's notation) in its field order: plain JSON
/// where JSON has the type, `{"$numberLong": ..}`-style wrappers only where it would lose
/// information.
fn relaxed_extjson(value: bson::Bson) -> kv_huawei::extjson::ExtJson {
    kv_huawei::extjson::from_bson(value, kv_huawei::extjson::Mode::Relaxed)
}

/// How a value is best shown: (format, text).
fn render_value(kind: &ContainerKind, value: &[u8]) -> (&'static str, String) {
    let value = &value[..value.len().min(MAX_SHOWN_BYTES)];
    if *kind == ContainerKind::Document {
        if let Ok(doc) = bson::Document::from_reader(&mut &value[..]) {
            let ext = relaxed_extjson(bson::Bson::Document(doc));
            let text = serde_json::to_string_pretty(&ext).unwrap_or_default();
            return ("bson", text);
        }
    }
    if let Ok(text) = std::str::from_utf8(value) {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
                return ("json", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
        }
        return ("text", text.to_string());
    }
    let hex: Vec<String> = value.chunks(16).map(hex::encode).collect();
    ("binary", hex.join("\n"))
}

async fn item(gw: &Gateway, query: &str) -> Response<Bytes> {
    let q: ItemQuery = match parse_query(query) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let key = match hex::decode(&q.key_hex) {
        Ok(k) => k,
        Err(_) => return error(StatusCode::BAD_REQUEST, "key_hex must be hex"),
    };
    let (container, keys) = match find_container(gw, &q.container).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let found = match gw.engine.get(&container, &key).await {
        Ok(f) => f,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let Some(item) = found else {
        return error(StatusCode::NOT_FOUND, "no such item (deleted or expired)");
    };
    let (format, shown) = render_value(&container.kind, &item.value);
    let now = gw.engine.now();
    json_response(
        StatusCode::OK,
        json!({
            "key": keys.read(&item.key),
            "key_hex": hex::encode(&item.key),
            "size": item.size(),
            "value_bytes": item.value.len(),
            "truncated": item.value.len() > MAX_SHOWN_BYTES,
            "expires_at": item.expires_at,
            "ttl_secs": item.expires_at.map(|e| e.saturating_sub(now)),
            "version": item.version,
            "modified_at_ms": item.modified_at_ms,
            "format": format,
            "value": shown,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_by_what_they_are() {
        let doc = bson::doc! {"n": 1_i64, "name": "x"};
        let (format, text) = render_value(&ContainerKind::Document, &doc.to_vec().expect("bson"));
        assert_eq!(format, "bson");
        let v: serde_json::Value = serde_json::from_str(&text).expect("ext json");
        assert_eq!(v, json!({"n": 1, "name": "x"}));
        let big = bson::doc! {"bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] }, "d": 1.5};
        assert_eq!(
            relaxed_extjson(bson::Bson::Document(big)).into_value(),
            json!({"bin": {"$binary": {"base64": "AQI=", "subType": "00"}}, "d": 1.5})
        );
        // Fields are shown in the document's order, not sorted.
        let doc = bson::doc! {"owner": "ann", "n": 7, "a": 1};
        let (_, text) = render_value(&ContainerKind::Document, &doc.to_vec().expect("bson"));
        assert_eq!(text, "{\n  \"owner\": \"ann\",\n  \"n\": 7,\n  \"a\": 1\n}");
        assert_eq!(render_value(&ContainerKind::Flat, b"{\"a\":1}").0, "json");
        assert_eq!(render_value(&ContainerKind::Flat, b"{not json").0, "text");
        assert_eq!(
            render_value(&ContainerKind::Flat, b"hello"),
            ("text", "hello".into())
        );
        assert_eq!(
            render_value(&ContainerKind::Flat, &[0xff, 0x00, 0x10]),
            ("binary", "ff0010".into())
        );
        assert_eq!(readable_key(b"plain"), "plain");
        assert_eq!(readable_key(&[0, 1]), "0x0001");
        assert_eq!(vendor_of("aliyun-esa/dev"), "aliyun");
        assert_eq!(vendor_of("huawei-index/7"), "huawei");
    }
}
