//! Single-key actions: PutKv / PutDcdnKv, GetKv / GetDcdnKv, GetKvDetail / GetDcdnKvDetail,
//! GetDcdnKvStatus, DeleteKv / DeleteDcdnKv. Also the key, value and TTL rules that the batch
//! and high-capacity actions share (spec §1.3).

use base64::Engine as _;
use bytes::Bytes;
use kv_core::text::lossy_utf8;
use kv_core::{Container, Precondition};
use serde_json::json;

use super::namespace::{checked_after_namespace, in_namespace, open, scope, validate_name};
use super::{reply, Ctx, Reply};
use crate::error::{ApiError, ApiResult};
use crate::router::Product;
use crate::wire::{iso_cst, truncate_echo};

/// Largest key, in bytes.
pub const MAX_KEY: usize = 512;
/// Largest value of PutKv / PutDcdnKv and of each batch entry, in bytes.
pub const MAX_VALUE: usize = 2_000_000;

/// Keys are 1–512 bytes without space, `/` or `\` (spec §1.3).
pub fn validate_key(key: &str) -> ApiResult<()> {
    if key.is_empty() || key.bytes().any(|b| b == b' ' || b == b'/' || b == b'\\') {
        return Err(ApiError::key_malformed());
    }
    if key.len() > MAX_KEY {
        return Err(ApiError::key_too_long());
    }
    Ok(())
}

/// The absolute expiry from `Expiration` (unix seconds, not in the past) and `ExpirationTtl`
/// (relative seconds); `ExpirationTtl` wins when both are given; neither means never.
pub fn expiry(
    product: Product,
    expiration: Option<i64>,
    ttl: Option<i64>,
    now: u64,
) -> ApiResult<Option<u64>> {
    if let Some(ttl) = ttl {
        if ttl <= 0 {
            return Err(ApiError::invalid_parameter(
                product,
                "ExpirationTtl must be a positive number of seconds.",
            ));
        }
        return Ok(Some(now.saturating_add(ttl as u64)));
    }
    if let Some(at) = expiration {
        if at <= now as i64 {
            return Err(ApiError::invalid_parameter(
                product,
                "Expiration must not be in the past.",
            ));
        }
        return Ok(Some(at as u64));
    }
    Ok(None)
}

/// Writes one value (raw bytes) under `key`; the engine stamps the update time.
pub async fn write(
    ctx: &Ctx<'_>,
    container: &Container,
    key: &str,
    value: Bytes,
    expires_at: Option<u64>,
) -> ApiResult<()> {
    ctx.engine
        .put(
            container,
            key.as_bytes(),
            value,
            expires_at,
            Precondition::None,
        )
        .await
        .map(|_| ())
        .map_err(|e| ApiError::from_engine(ctx.product, e))
}

/// The reply of PutKv and PutKvWithHighCapacity: `Length` is a string in ESA's model and an
/// integer in DCDN's (spec §1.1–1.2).
pub fn put_reply(product: Product, length: usize, echo: &str) -> Reply {
    let length = match product {
        Product::Dcdn => json!(length),
        _ => json!(length.to_string()),
    };
    reply([("Length", length), ("Value", json!(truncate_echo(echo)))])
}

pub async fn put(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let p = ctx.params;
    let name = p.required("Namespace")?;
    validate_name(name)?;
    // The checks the vendor makes after finding the namespace, made before it here: the
    // namespace's record is then read with the key's current state, in one store read.
    let checked = (|| {
        let key = p.required("Key")?;
        validate_key(key)?;
        let value = p.required("Value")?;
        let base64 = ctx.product == Product::Esa && p.bool(ctx.product, "Base64")?;
        let raw: Vec<u8> = if base64 {
            base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| {
                    ApiError::invalid_parameter(ctx.product, "Value is not valid base64.")
                })?
        } else {
            value.as_bytes().to_vec()
        };
        if raw.len() > MAX_VALUE || value.len() > MAX_VALUE * 2 {
            return Err(ApiError::value_too_large("2,000,000"));
        }
        let expires_at = expiry(
            ctx.product,
            p.int(ctx.product, "Expiration")?,
            p.int(ctx.product, "ExpirationTtl")?,
            ctx.engine.now(),
        )?;
        Ok((key, value, raw, expires_at))
    })();
    let (key, value, raw, expires_at) = checked_after_namespace(ctx, name, checked).await?;
    let length = raw.len();
    let raw = &Bytes::from(raw);
    in_namespace(ctx, name, |stored| async move {
        ctx.engine
            .put_at(
                ctx.account,
                scope(ctx.product),
                &stored,
                key.as_bytes(),
                raw.clone(),
                expires_at,
                Precondition::None,
            )
            .await
    })
    .await?;
    Ok(put_reply(ctx.product, length, value))
}

/// The live value and expiry under `Key` in the request's namespace: the namespace's record and
/// the item in one store read.
async fn read(ctx: &Ctx<'_>) -> ApiResult<(Bytes, Option<u64>)> {
    let name = ctx.params.required("Namespace")?;
    validate_name(name)?;
    let checked = ctx
        .params
        .required("Key")
        .and_then(|key| validate_key(key).map(|()| key));
    let key = checked_after_namespace(ctx, name, checked).await?;
    let keys = &[key.as_bytes().to_vec()];
    let (_, items) = in_namespace(ctx, name, |stored| async move {
        ctx.engine
            .container_and_items(ctx.account, scope(ctx.product), &stored, keys)
            .await
    })
    .await?;
    match items.into_iter().next().flatten() {
        Some(item) => Ok((item.value, item.expires_at)),
        None => Err(ApiError::key_not_found()),
    }
}

fn as_text(value: &[u8]) -> String {
    lossy_utf8(value).into_owned()
}

pub async fn get(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let base64 = ctx.product == Product::Esa && ctx.params.bool(ctx.product, "Base64")?;
    let (value, _) = read(ctx).await?;
    let text = if base64 {
        base64::engine::general_purpose::STANDARD.encode(&value)
    } else {
        as_text(&value)
    };
    Ok(reply([("Value", json!(text))]))
}

pub async fn detail(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let (value, expires_at) = read(ctx).await?;
    let mut r = reply([("Value", json!(as_text(&value)))]);
    if let Some(at) = expires_at {
        let remaining = at.saturating_sub(ctx.engine.now());
        r.insert("ExpirationTtl".into(), json!(remaining.to_string()));
    }
    Ok(r)
}

pub async fn status(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let (_, expires_at) = read(ctx).await?;
    let mut r = reply([("Complete", json!(true))]);
    if let Some(at) = expires_at {
        r.insert("Expire".into(), json!(iso_cst(at)));
    }
    Ok(r)
}

pub async fn delete(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let container = open(ctx).await?;
    let key = ctx.params.required("Key")?;
    validate_key(key)?;
    match ctx
        .engine
        .delete(&container, &[key.as_bytes().to_vec()])
        .await
    {
        Ok(0) => Err(ApiError::key_not_found()),
        Ok(_) => Ok(Reply::new()),
        Err(e) => Err(ApiError::from_engine(ctx.product, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_rules() {
        assert!(validate_key("a").is_ok());
        assert!(validate_key(&"k".repeat(512)).is_ok());
        assert_eq!(
            validate_key(&"k".repeat(513)).unwrap_err().code,
            "InvalidKey.ExceedsMaximum"
        );
        for bad in ["", "a b", "a/b", "a\\b"] {
            assert_eq!(
                validate_key(bad).unwrap_err().code,
                "InvalidKey.Malformed",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ttl_beats_expiration_and_the_past_is_refused() {
        assert_eq!(
            expiry(Product::Esa, Some(5000), Some(10), 1000),
            Ok(Some(1010))
        );
        assert_eq!(expiry(Product::Esa, Some(5000), None, 1000), Ok(Some(5000)));
        assert_eq!(expiry(Product::Esa, None, None, 1000), Ok(None));
        assert_eq!(
            expiry(Product::Esa, Some(999), None, 1000)
                .unwrap_err()
                .code,
            "InvalidParameters"
        );
        assert_eq!(
            expiry(Product::Dcdn, None, Some(0), 1000).unwrap_err().code,
            "Invalid.Parameter"
        );
    }

    proptest::proptest! {
        #[test]
        fn key_validation_matches_the_rule(key in "\\PC{0,600}") {
            let ok = !key.is_empty() && key.len() <= 512
                && !key.contains([' ', '/', '\\']);
            proptest::prop_assert_eq!(validate_key(&key).is_ok(), ok);
        }
    }
}
