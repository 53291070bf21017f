//! Key actions: EdgeKVPut (with absolute or relative expiry), EdgeKVGet (up to 20 keys, request
//! order, missing keys as empty values), EdgeKVDelete (up to 20 keys, missing keys are fine) and
//! EdgeKVList (sorted, prefix, cursor = last key returned while more remain).

use std::borrow::Cow;
use std::ops::Bound;

use bytes::Bytes;
use kv_core::text::lossy_utf8;
use kv_core::{Item, Precondition, ScanOptions};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{
    batch_keys, check_key, empty, namespace_ref, page_limit, zone_id, Ctx, MAX_KEY_CHARS,
    MAX_VALUE_BYTES, MIN_TTL_SECS,
};
use crate::error::ApiError;
use crate::wire::{iso8601_utc, KeyValuePair, Params};

/// 9999-12-31T23:59:59Z, the last instant an ISO-8601 `Expiration` can name.
const LATEST_EXPIRY: i64 = 253_402_300_799;

pub async fn put(ctx: &Ctx<'_>, params: &Params) -> Result<Map<String, Value>, ApiError> {
    params.deny_unknown(&["Namespace", "Key", "Value", "Expiration", "ExpirationTTL"])?;
    let zone = zone_id(params)?;
    let name = namespace_ref(params)?;
    let key = params.req_str("Key")?;
    check_key("Key", &key, ctx.options)?;
    let value = params.req_str("Value")?;
    if value.is_empty() {
        return Err(ApiError::bad_value("Value", "it must not be empty"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::bad_value(
            "Value",
            format!(
                "it is {} bytes, the limit is {MAX_VALUE_BYTES} bytes (1 MB)",
                value.len()
            ),
        ));
    }
    let expiration = params.opt_i64("Expiration")?;
    let ttl = params.opt_i64("ExpirationTTL")?;
    let now = i64::try_from(ctx.engine.now()).unwrap_or(i64::MAX);
    // ExpirationTTL wins when both are given; neither means the key never expires.
    let expires_at = match (ttl, expiration) {
        (Some(ttl), _) => {
            if ttl < MIN_TTL_SECS {
                return Err(ApiError::bad_value(
                    "ExpirationTTL",
                    format!("it must be at least {MIN_TTL_SECS} seconds"),
                ));
            }
            Some(now.saturating_add(ttl))
        }
        (None, Some(at)) => {
            if at < now.saturating_add(MIN_TTL_SECS) {
                return Err(ApiError::bad_value(
                    "Expiration",
                    format!("it must be at least {MIN_TTL_SECS} seconds in the future"),
                ));
            }
            Some(at)
        }
        (None, None) => None,
    };
    // Expiries are reported as ISO-8601 dates, which end at year 9999.
    if expires_at.is_some_and(|t| t > LATEST_EXPIRY) {
        let field = if ttl.is_some() {
            "ExpirationTTL"
        } else {
            "Expiration"
        };
        return Err(ApiError::bad_value(
            field,
            "the expiry is after the year 9999",
        ));
    }
    // No separate namespace lookup: the namespace's record is read with the item's current state
    // (one statement on PostgreSQL once this gateway has seen the namespace).
    ctx.engine
        .put_at(
            ctx.account,
            &Ctx::scope(&zone),
            &name,
            key.as_bytes(),
            Bytes::from(value.into_bytes()),
            expires_at.map(|t| u64::try_from(t).unwrap_or(u64::MAX)),
            Precondition::None,
        )
        .await
        .map_err(|e| ApiError::from_engine(e, &name))?;
    Ok(empty())
}

pub async fn get(ctx: &Ctx<'_>, params: &Params) -> Result<GetReply, ApiError> {
    params.deny_unknown(&["Namespace", "Keys"])?;
    let zone = zone_id(params)?;
    let name = namespace_ref(params)?;
    let keys = batch_keys(params, ctx.options)?;
    let raw: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
    // The namespace and the items in one store read (one statement on PostgreSQL once this
    // gateway has seen the namespace); a missing namespace is the same NamespaceNotFound as
    // `Ctx::namespace` answers.
    let (_, items) = ctx
        .engine
        .container_and_items(ctx.account, &Ctx::scope(&zone), &name, &raw)
        .await
        .map_err(|e| ApiError::from_engine(e, &name))?;
    Ok(GetReply {
        entries: keys.into_iter().zip(items).collect(),
    })
}

/// EdgeKVGet's reply: the keys in request order with what was found. It serialises as
/// `{"Data": [KeyValuePair...]}` by borrowing the stored values, so the reply's bytes are the only
/// copy made of them.
pub struct GetReply {
    entries: Vec<(String, Option<Item>)>,
}

impl Serialize for GetReply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Data<'a>(&'a [(String, Option<Item>)]);
        impl Serialize for Data<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for (key, item) in self.0 {
                    seq.serialize_element(&match item {
                        Some(item) => KeyValuePair {
                            key,
                            value: lossy_utf8(&item.value),
                            expiration: item.expires_at.map(iso8601_utc).unwrap_or_default(),
                        },
                        None => KeyValuePair {
                            key,
                            value: Cow::Borrowed(""),
                            expiration: String::new(),
                        },
                    })?;
                }
                seq.end()
            }
        }
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("Data", &Data(&self.entries))?;
        map.end()
    }
}

pub async fn delete(ctx: &Ctx<'_>, params: &Params) -> Result<Map<String, Value>, ApiError> {
    params.deny_unknown(&["Namespace", "Keys"])?;
    let zone = zone_id(params)?;
    let name = namespace_ref(params)?;
    let keys = batch_keys(params, ctx.options)?;
    let namespace = ctx.namespace(&zone, &name).await?;
    let raw: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
    ctx.engine
        .delete(&namespace, &raw)
        .await
        .map_err(|e| ApiError::from_engine(e, &name))?;
    Ok(empty())
}

pub async fn list(ctx: &Ctx<'_>, params: &Params) -> Result<Map<String, Value>, ApiError> {
    params.deny_unknown(&["Namespace", "Prefix", "Cursor", "Limit"])?;
    let zone = zone_id(params)?;
    let name = namespace_ref(params)?;
    let prefix = params.opt_str("Prefix")?;
    if let Some(p) = &prefix {
        let len = p.chars().count();
        if len == 0 {
            return Err(ApiError::bad_value(
                "Prefix",
                "it must not be empty; omit it to list every key",
            ));
        }
        if len > MAX_KEY_CHARS {
            return Err(ApiError::bad_value(
                "Prefix",
                format!("it is at most {MAX_KEY_CHARS} characters"),
            ));
        }
    }
    // The cursor is the last key of the previous page; "" is what the last page returns.
    let cursor = params.opt_str("Cursor")?.filter(|c| !c.is_empty());
    let limit = page_limit(params)?;
    let namespace = ctx.namespace(&zone, &name).await?;

    let prefix_bytes = prefix.as_deref().unwrap_or_default().as_bytes();
    let cursor_bytes = cursor.as_deref().map(str::as_bytes);
    // A cursor past every key with this prefix (greater, and not itself prefixed) ends the list;
    // checking here keeps the scan's start bound from passing its end bound.
    if let Some(c) = cursor_bytes {
        if !prefix_bytes.is_empty() && c > prefix_bytes && !c.starts_with(prefix_bytes) {
            return Ok(list_reply(Vec::new(), ""));
        }
    }
    let options = if prefix_bytes.is_empty() {
        ScanOptions {
            start: cursor_bytes.map_or(Bound::Unbounded, |c| Bound::Excluded(c.to_vec())),
            end: Bound::Unbounded,
            limit,
            reverse: false,
        }
    } else {
        ScanOptions::prefix(prefix_bytes, cursor_bytes, limit)
    };
    let page = ctx
        .engine
        .scan(&namespace, options)
        .await
        .map_err(|e| ApiError::from_engine(e, &name))?;
    let keys: Vec<String> = page
        .items
        .iter()
        .map(|i| lossy_utf8(&i.key).into_owned())
        .collect();
    let next = match (page.more, keys.last()) {
        (true, Some(last)) => last.clone(),
        _ => String::new(),
    };
    Ok(list_reply(keys, &next))
}

fn list_reply(keys: Vec<String>, cursor: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("Keys".into(), json!(keys));
    out.insert("Cursor".into(), json!(cursor));
    out
}
