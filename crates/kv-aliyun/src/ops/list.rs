//! ListKvs / ListDcdnKv: keys by prefix in ascending byte order, paged by PageNumber and
//! PageSize (default 50, at most 100, PageNumber × PageSize ≤ 50,000), with `TotalCount` the
//! number of matching keys (spec §1.3).

use serde_json::json;

use super::namespace::open;
use super::{reply, Ctx, Reply};
use crate::error::{ApiError, ApiResult};
use crate::wire::iso_utc;
use kv_core::text::lossy_utf8;
use kv_core::ScanOptions;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 100;
pub const MAX_WINDOW: i64 = 50_000;
/// Items read per engine scan while walking to the requested page.
const CHUNK: usize = 256;

pub async fn list(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let p = ctx.params;
    let container = open(ctx).await?;
    let prefix = p.get("Prefix").unwrap_or_default();
    let page_number = p.int(ctx.product, "PageNumber")?.unwrap_or(1);
    let page_size = p.int(ctx.product, "PageSize")?.unwrap_or(DEFAULT_PAGE_SIZE);
    if page_number < 1 {
        return Err(ApiError::invalid_parameter(
            ctx.product,
            "PageNumber must be at least 1.",
        ));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(ApiError::invalid_parameter(
            ctx.product,
            "PageSize must be between 1 and 100.",
        ));
    }
    if page_number.saturating_mul(page_size) > MAX_WINDOW {
        return Err(ApiError::invalid_parameter(
            ctx.product,
            "PageNumber * PageSize cannot exceed 50000.",
        ));
    }
    let skip = ((page_number - 1) * page_size) as usize;
    let take = page_size as usize;
    let engine_err = |e| ApiError::from_engine(ctx.product, e);
    // The total is counted without reading values; the page itself only reads up to its end.
    // Both are snapshots of their own, as the vendor's eventually consistent listing is.
    let total = ctx
        .engine
        .count(&container, &ScanOptions::prefix(prefix.as_bytes(), None, 0))
        .await
        .map_err(engine_err)?;
    let mut keys = Vec::new();
    let mut seen: usize = 0;
    let mut after: Option<Vec<u8>> = None;
    while seen < skip + take {
        let page = ctx
            .engine
            .scan(
                &container,
                ScanOptions::prefix(
                    prefix.as_bytes(),
                    after.as_deref(),
                    CHUNK.min(skip + take - seen),
                ),
            )
            .await
            .map_err(engine_err)?;
        for item in &page.items {
            if seen >= skip && seen < skip + take {
                keys.push(json!({
                    "Name": lossy_utf8(&item.key),
                    "UpdateTime": iso_utc(item.modified_at_ms),
                }));
            }
            seen += 1;
        }
        match (page.more, page.items.last()) {
            (true, Some(last)) => after = Some(last.key.clone()),
            _ => break,
        }
    }
    Ok(reply([
        ("PageNumber", json!(page_number)),
        ("PageSize", json!(page_size)),
        ("TotalCount", json!(total)),
        ("Keys", json!(keys)),
    ]))
}
