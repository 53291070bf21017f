//! DescribeKvUsageData and DescribeKvRealTimeQpsData (DCDN). kvmux keeps no per-interval access
//! statistics, so both answer with the declared envelope and empty series; the time range is
//! echoed (defaulting to the last 24 hours / 5 minutes of engine time).

use serde_json::json;

use super::{reply, Ctx, Reply};
use crate::error::ApiResult;
use crate::wire::iso_utc;

fn range(ctx: &Ctx<'_>, default_span_secs: u64) -> (String, String) {
    let now_ms = ctx.engine.clock().now_millis();
    let end = ctx
        .params
        .get("EndTime")
        .map(str::to_string)
        .unwrap_or_else(|| iso_utc(now_ms));
    let start = ctx
        .params
        .get("StartTime")
        .map(str::to_string)
        .unwrap_or_else(|| iso_utc(now_ms.saturating_sub(default_span_secs * 1000)));
    (start, end)
}

pub async fn usage_data(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    ctx.params.required("Field")?;
    let (start, end) = range(ctx, 24 * 3600);
    Ok(reply([
        ("StartTime", json!(start)),
        ("EndTime", json!(end)),
        ("KvUsageData", json!([])),
    ]))
}

pub async fn qps_data(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let (start, end) = range(ctx, 300);
    Ok(reply([
        ("StartTime", json!(start)),
        ("EndTime", json!(end)),
        ("KvQpsData", json!([])),
        ("AggregateData", json!([])),
    ]))
}
