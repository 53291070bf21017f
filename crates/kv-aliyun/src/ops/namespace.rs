//! Namespaces: CreateKvNamespace / PutDcdnKvNamespace, GetKvNamespace /
//! DescribeDcdnKvNamespace, DeleteKvNamespace / DeleteDcdnKvNamespace. ESA and DCDN namespaces
//! live in different engine scopes and account groups, so each product has its own 10-namespace
//! and 10 GB quota per account (spec §1.3).

use kv_core::{Container, ContainerKind, Limits, NewContainer};
use serde_json::{json, Value};

use super::{reply, Ctx, Reply};
use crate::error::{ApiError, ApiResult};
use crate::router::Product;
use crate::wire::human_size;

/// 1 GB per namespace.
pub const NAMESPACE_CAPACITY: i64 = 1 << 30;
/// 10 GB per account (per product).
pub const ACCOUNT_CAPACITY: i64 = 10 << 30;
/// 10 namespaces per account (per product).
pub const NAMESPACE_QUOTA: i64 = 10;

/// The engine scope (and account group) of a product's namespaces.
pub fn scope(product: Product) -> &'static str {
    match product {
        Product::Dcdn => "aliyun-dcdn",
        _ => "aliyun-esa",
    }
}

/// The quotas of a new namespace; capacities come from `[aliyun] namespace_capacity` /
/// `account_capacity` (bytes), defaulting to the vendor's 1 GB and 10 GB.
pub fn limits(product: Product, namespace_capacity: i64, account_capacity: i64) -> Limits {
    Limits {
        max_bytes: Some(namespace_capacity),
        max_items: None,
        account_group: scope(product).to_string(),
        account_max_bytes: Some(account_capacity),
        account_max_items: None,
        account_max_containers: Some(NAMESPACE_QUOTA),
    }
}

/// Namespace names: letters, digits, `-` and `_` (spec §1.2), at most 512 bytes.
pub fn validate_name(name: &str) -> ApiResult<()> {
    if name.is_empty()
        || name.len() > 512
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::namespace_malformed());
    }
    Ok(())
}

/// The engine's name for a namespace. DCDN namespace names are case-insensitive (spec §1.2:
/// `CaseNs_X` and `casens_x` are one namespace), so DCDN keys its containers by the lower-cased
/// name and keeps the name as created in the `Namespace` attribute for display. ESA documents no
/// such rule (its CreateKvNamespace reference only gives the alphabet), so ESA names stay exact.
pub fn engine_name(product: Product, name: &str) -> String {
    match product {
        Product::Dcdn => name.to_ascii_lowercase(),
        _ => name.to_string(),
    }
}

/// The caller's namespace named by the `Namespace` parameter.
pub async fn open(ctx: &Ctx<'_>) -> ApiResult<Container> {
    let name = ctx.params.required("Namespace")?;
    open_named(ctx, name).await
}

pub async fn open_named(ctx: &Ctx<'_>, name: &str) -> ApiResult<Container> {
    validate_name(name)?;
    in_namespace(ctx, name, |stored| async move {
        ctx.engine
            .container(ctx.account, scope(ctx.product), &stored)
            .await
    })
    .await
}

/// Runs `call` on the engine name the namespace `name` is stored under: its engine name (see
/// [`engine_name`]), and for a DCDN namespace created before names were folded, its exact name
/// when the folded one is not found. The engine's `NotFound` for both is the vendor's
/// `InvalidNameSpace.NotFound`. This is how a data call names its namespace without a lookup of
/// its own (`Engine::container_and_items`, `Engine::put_at`: one store read for the namespace
/// and the item together).
pub async fn in_namespace<T, F, Fut>(ctx: &Ctx<'_>, name: &str, call: F) -> ApiResult<T>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = kv_core::Result<T>>,
{
    let key = engine_name(ctx.product, name);
    let folded = key != name;
    let found = match call(key).await {
        Err(kv_core::Error::NotFound(_)) if folded => call(name.to_string()).await,
        other => other,
    };
    found.map_err(|e| match e {
        kv_core::Error::NotFound(_) => ApiError::namespace_not_found(),
        e => ApiError::from_engine(ctx.product, e),
    })
}

/// The request's parameter checks that the vendor makes after finding the namespace: when they
/// fail, the namespace is looked up first, so a missing namespace is still the error reported
/// (as when the lookup came first); when they pass, no lookup is made here.
pub async fn checked_after_namespace<T>(
    ctx: &Ctx<'_>,
    name: &str,
    checks: ApiResult<T>,
) -> ApiResult<T> {
    match checks {
        Ok(checked) => Ok(checked),
        Err(e) => {
            open_named(ctx, name).await?;
            Err(e)
        }
    }
}

/// The name a client sees: as it was created (DCDN folds the engine's name, see `engine_name`).
fn display_name(c: &Container) -> String {
    c.attrs
        .get("Namespace")
        .and_then(Value::as_str)
        .unwrap_or(&c.name)
        .to_string()
}

fn namespace_id(c: &Container) -> String {
    c.attrs
        .get("NamespaceId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| (c.id % 1_000_000_000_000_000).to_string())
}

fn description(c: &Container) -> String {
    c.attrs
        .get("Description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The fields shared by GetKvNamespace and the account's NamespaceList.
pub async fn summary(ctx: &Ctx<'_>, c: &Container) -> ApiResult<Reply> {
    let usage = ctx
        .engine
        .usage(c)
        .await
        .map_err(|e| ApiError::from_engine(ctx.product, e))?;
    let capacity = c.limits.max_bytes.unwrap_or(NAMESPACE_CAPACITY);
    Ok(reply([
        ("Namespace", json!(display_name(c))),
        ("NamespaceId", json!(namespace_id(c))),
        ("Description", json!(description(c))),
        ("Status", json!("online")),
        ("Capacity", json!(capacity)),
        ("CapacityString", json!(human_size(capacity))),
        ("CapacityUsed", json!(usage.bytes.max(0))),
        ("CapacityUsedString", json!(human_size(usage.bytes))),
    ]))
}

pub async fn create(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let name = ctx.params.required("Namespace")?;
    validate_name(name)?;
    let desc = ctx.params.get("Description").unwrap_or_default();
    // The engine refuses a second container of the same folded name; this also catches one
    // stored under its exact mixed-case name before the folding (see `open_named`).
    if ctx.product == Product::Dcdn && open_named(ctx, name).await.is_ok() {
        return Err(ApiError::from_engine(
            ctx.product,
            kv_core::Error::AlreadyExists(name.to_string()),
        ));
    }
    // A short decimal id, as the service shows (the SDK models it as a string).
    let id = (uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000_000) as u64;
    let created = ctx
        .engine
        .create_container(NewContainer {
            account: ctx.account.to_string(),
            scope: scope(ctx.product).to_string(),
            name: engine_name(ctx.product, name),
            kind: ContainerKind::Flat,
            attrs: json!({"Description": desc, "NamespaceId": id.to_string(), "Namespace": name}),
            limits: limits(
                ctx.product,
                ctx.shared.namespace_capacity,
                ctx.shared.account_capacity,
            ),
        })
        .await
        .map_err(|e| ApiError::from_engine(ctx.product, e))?;
    Ok(reply([
        ("Namespace", json!(display_name(&created))),
        ("NamespaceId", json!(namespace_id(&created))),
        ("Description", json!(description(&created))),
        ("Status", json!("online")),
    ]))
}

pub async fn describe(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let c = open(ctx).await?;
    let mut r = summary(ctx, &c).await?;
    if ctx.product == Product::Dcdn {
        r.insert("Mode".into(), json!("Normal"));
    }
    Ok(r)
}

pub async fn delete(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let c = open(ctx).await?;
    match ctx
        .engine
        .delete_container(ctx.account, scope(ctx.product), &c.name)
        .await
    {
        Ok(_) => Ok(Reply::new()),
        Err(kv_core::Error::NotFound(_)) => Err(ApiError::namespace_not_found()),
        Err(e) => Err(ApiError::from_engine(ctx.product, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_follow_the_documented_alphabet() {
        assert!(validate_name("ns-1_A").is_ok());
        for bad in ["", "a b", "a/b", "ä", "a.b"] {
            assert_eq!(
                validate_name(bad).unwrap_err().code,
                "InvalidNameSpace.Malformed",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn esa_and_dcdn_have_separate_groups() {
        let l = |p| limits(p, NAMESPACE_CAPACITY, ACCOUNT_CAPACITY);
        assert_ne!(
            l(Product::Esa).account_group,
            l(Product::Dcdn).account_group
        );
        assert_eq!(l(Product::Esa).account_max_containers, Some(10));
        assert_eq!(l(Product::Dcdn).max_bytes, Some(1 << 30));
        assert_eq!(l(Product::Dcdn).account_max_bytes, Some(10 << 30));
    }
}
