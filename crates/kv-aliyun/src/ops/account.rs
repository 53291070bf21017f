//! GetKvAccount / DescribeDcdnKvAccount and the two account-status actions. There is no
//! ListKvNamespaces: the SDKs list namespaces through `NamespaceList` here (spec §1.1).

use serde_json::{json, Value};

use super::namespace::{scope, summary, NAMESPACE_QUOTA};
use super::{reply, Ctx, Reply};
use crate::error::{ApiError, ApiResult};
use crate::wire::human_size;

pub async fn describe(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let engine_err = |e| ApiError::from_engine(ctx.product, e);
    let group = scope(ctx.product);
    let (containers, _) = ctx
        .engine
        .list_containers(ctx.account, group, None, 10_000)
        .await
        .map_err(engine_err)?;
    let (usage, _) = ctx
        .engine
        .account_usage(ctx.account, group)
        .await
        .map_err(engine_err)?;
    let mut list = Vec::with_capacity(containers.len());
    for c in &containers {
        list.push(Value::Object(summary(ctx, c).await?));
    }
    Ok(reply([
        ("Status", json!("online")),
        ("NamespaceQuota", json!(NAMESPACE_QUOTA)),
        ("NamespaceUsed", json!(containers.len())),
        ("Capacity", json!(ctx.shared.account_capacity)),
        (
            "CapacityString",
            json!(human_size(ctx.shared.account_capacity)),
        ),
        ("CapacityUsed", json!(usage.bytes.max(0))),
        ("CapacityUsedString", json!(human_size(usage.bytes))),
        ("NamespaceList", Value::Array(list)),
    ]))
}

pub async fn status(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let status = if ctx.shared.inactive_accounts.contains(ctx.account) {
        "offline"
    } else {
        "online"
    };
    Ok(reply([("Status", json!(status))]))
}
