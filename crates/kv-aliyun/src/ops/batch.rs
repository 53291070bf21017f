//! BatchPutKv / BatchPutDcdnKv and BatchDeleteKv / BatchDeleteDcdnKv. `KvList` and `Keys` arrive
//! as one JSON string in a form field (spec §1). Each key is judged on its own and reported in
//! `SuccessKeys` or `FailKeys`; the valid ones are then written in one atomic engine batch. The
//! high-capacity batch actions reuse [`put_entries`] and [`delete_keys`].

use bytes::Bytes;
use kv_core::{Container, ItemWrite, Precondition};
use serde_json::{json, Value};

use super::kv::{expiry, validate_key, MAX_VALUE};
use super::namespace::open;
use super::{reply, Ctx, Reply};
use crate::error::{ApiError, ApiResult};
use crate::wire::{json_int, KvEntry};

/// Largest `KvList` of BatchPutKv, in bytes.
pub const MAX_BATCH_PAYLOAD: usize = 2_000_000;
/// Most keys in one batch delete.
pub const MAX_DELETE_KEYS: usize = 10_000;

fn key_label(v: &Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Validates and writes a list of `{Key, Value, Expiration?, ExpirationTtl?}` entries.
pub async fn put_entries(
    ctx: &Ctx<'_>,
    container: &Container,
    entries: Vec<Value>,
    max_value: usize,
) -> ApiResult<Reply> {
    let now = ctx.engine.now();
    let mut success = Vec::new();
    let mut fail = Vec::new();
    let mut writes = Vec::new();
    for raw in entries {
        let Ok(entry) = serde_json::from_value::<KvEntry>(raw) else {
            fail.push(String::new());
            continue;
        };
        let label = key_label(&entry.key);
        let (Some(Value::String(key)), Some(Value::String(value))) = (&entry.key, &entry.value)
        else {
            fail.push(label);
            continue;
        };
        let int = |v: &Option<Value>| match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => json_int(v).map(Some).ok_or(()),
        };
        let (Ok(expiration), Ok(ttl)) = (int(&entry.expiration), int(&entry.expiration_ttl)) else {
            fail.push(label);
            continue;
        };
        let Ok(expires_at) = expiry(ctx.product, expiration, ttl, now) else {
            fail.push(label);
            continue;
        };
        if validate_key(key).is_err() || value.len() > max_value {
            fail.push(label);
            continue;
        }
        writes.push(ItemWrite::Put {
            key: key.as_bytes().to_vec(),
            value: Bytes::copy_from_slice(value.as_bytes()),
            expires_at,
            precondition: Precondition::None,
        });
        success.push(key.clone());
    }
    if !writes.is_empty() {
        ctx.engine
            .write_items(container, writes)
            .await
            .map_err(|e| ApiError::from_engine(ctx.product, e))?;
    }
    Ok(reply([
        ("SuccessKeys", json!(success)),
        ("FailKeys", json!(fail)),
    ]))
}

/// Validates and deletes a list of keys. Keys that were not there still count as deleted.
pub async fn delete_keys(
    ctx: &Ctx<'_>,
    container: &Container,
    keys: Vec<Value>,
) -> ApiResult<Reply> {
    if keys.len() > MAX_DELETE_KEYS {
        return Err(ApiError::too_many_keys());
    }
    let mut success = Vec::new();
    let mut fail = Vec::new();
    for k in keys {
        match k {
            Value::String(s) if validate_key(&s).is_ok() => success.push(s),
            Value::String(s) => fail.push(s),
            other => fail.push(other.to_string()),
        }
    }
    if !success.is_empty() {
        let raw: Vec<Vec<u8>> = success.iter().map(|k| k.as_bytes().to_vec()).collect();
        ctx.engine
            .delete(container, &raw)
            .await
            .map_err(|e| ApiError::from_engine(ctx.product, e))?;
    }
    Ok(reply([
        ("SuccessKeys", json!(success)),
        ("FailKeys", json!(fail)),
    ]))
}

/// Parses a JSON-array form field (`KvList`, `Keys`).
pub fn json_array(ctx: &Ctx<'_>, name: &str, raw: &str) -> ApiResult<Vec<Value>> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Array(a)) => Ok(a),
        _ => Err(ApiError::invalid_parameter(
            ctx.product,
            format!("{name} must be a JSON array."),
        )),
    }
}

pub async fn batch_put(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let container = open(ctx).await?;
    let raw = ctx.params.required("KvList")?;
    if raw.len() > MAX_BATCH_PAYLOAD {
        return Err(ApiError::value_too_large("2,000,000"));
    }
    let entries = json_array(ctx, "KvList", raw)?;
    put_entries(ctx, &container, entries, MAX_VALUE).await
}

pub async fn batch_delete(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let container = open(ctx).await?;
    let raw = ctx.params.required("Keys")?;
    let keys = json_array(ctx, "Keys", raw)?;
    delete_keys(ctx, &container, keys).await
}
