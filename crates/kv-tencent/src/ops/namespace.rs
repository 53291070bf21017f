//! Namespace actions: Create, Delete, Modify (the remark, the only mutable field) and Describe
//! (offset paging, sorting by creation or modification time, fuzzy filters).

use kv_core::{Container, NewContainer};
use serde_json::{json, Map, Value};

use super::{empty, namespace_ref, page_limit, remark, valid_namespace_name, zone_id, Ctx};
use crate::error::ApiError;
use crate::wire::{iso8601_utc, AdvancedFilter, KvNamespace, Params};

/// Values per filter (spec §3).
const MAX_FILTER_VALUES: usize = 20;

fn remark_of(container: &Container) -> String {
    container
        .attrs
        .get("remark")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub async fn create(ctx: &Ctx<'_>, params: &Params) -> Result<Map<String, Value>, ApiError> {
    params.deny_unknown(&["Namespace", "Remark"])?;
    let zone = zone_id(params)?;
    let name = params.req_str("Namespace")?;
    if !valid_namespace_name(&name) {
        return Err(ApiError::bad_namespace_name());
    }
    let remark = remark(params)?.unwrap_or_default();
    ctx.engine
        .create_container(NewContainer {
            account: ctx.account.to_string(),
            scope: Ctx::scope(&zone),
            name: name.clone(),
            kind: Ctx::kind(),
            attrs: json!({ "remark": remark }),
            limits: ctx.limits(),
        })
        .await
        .map_err(|e| ApiError::from_engine(e, &name))?;
    Ok(empty())
}

pub async fn delete(ctx: &Ctx<'_>, params: &Params) -> Result<Map<String, Value>, ApiError> {
    params.deny_unknown(&["Namespace"])?;
    let zone = zone_id(params)?;
    let name = namespace_ref(params)?;
    ctx.engine
        .delete_container(ctx.account, &Ctx::scope(&zone), &name)
        .await
        .map_err(|e| ApiError::from_engine(e, &name))?;
    Ok(empty())
}

pub async fn modify(ctx: &Ctx<'_>, params: &Params) -> Result<Map<String, Value>, ApiError> {
    params.deny_unknown(&["Namespace", "Remark"])?;
    let zone = zone_id(params)?;
    let name = namespace_ref(params)?;
    let new_remark = remark(params)?;
    let current = ctx.namespace(&zone, &name).await?;
    let mut attrs = match current.attrs {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Some(r) = new_remark {
        attrs.insert("remark".into(), Value::String(r));
    }
    ctx.engine
        .update_container_attrs(ctx.account, &Ctx::scope(&zone), &name, Value::Object(attrs))
        .await
        .map_err(|e| ApiError::from_engine(e, &name))?;
    Ok(empty())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SortBy {
    CreatedOn,
    UpdatedOn,
}

pub async fn describe(ctx: &Ctx<'_>, params: &Params) -> Result<Map<String, Value>, ApiError> {
    params.deny_unknown(&["Offset", "Limit", "SortBy", "SortOrder", "Filters"])?;
    let zone = zone_id(params)?;
    let offset = params.opt_i64("Offset")?.unwrap_or(0);
    let offset = usize::try_from(offset)
        .map_err(|_| ApiError::bad_value("Offset", "it must not be negative"))?;
    let limit = page_limit(params)?;
    let sort_by = match params.opt_str("SortBy")?.as_deref() {
        None | Some("created-on") => SortBy::CreatedOn,
        Some("updated-on") => SortBy::UpdatedOn,
        Some(other) => return Err(ApiError::invalid_sort_by(other)),
    };
    let descending = match params.opt_str("SortOrder")?.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(other) => return Err(ApiError::invalid_sort_order(other)),
    };
    let filters = params.opt_filters("Filters")?.unwrap_or_default();
    for (i, f) in filters.iter().enumerate() {
        if f.name != "namespace" && f.name != "remark" {
            return Err(ApiError::invalid_filter_name(i, &f.name));
        }
        if f.values.len() > MAX_FILTER_VALUES {
            return Err(ApiError::bad_value(
                &format!("Filters.{i}.Values"),
                format!("at most {MAX_FILTER_VALUES} values are allowed"),
            ));
        }
    }

    let scope = Ctx::scope(&zone);
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (page, more) = ctx
            .engine
            .list_containers(ctx.account, &scope, after.as_deref(), 1000)
            .await
            .map_err(|e| ApiError::from_engine(e, ""))?;
        after = page.last().map(|c| c.name.clone());
        all.extend(page);
        if !more || after.is_none() {
            break;
        }
    }
    all.retain(|c| filters.iter().all(|f| filter_matches(f, c)));
    all.sort_by(|a, b| {
        let key = |c: &Container| match sort_by {
            SortBy::CreatedOn => c.created_at_ms,
            SortBy::UpdatedOn => c.modified_at_ms,
        };
        let order = key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name));
        if descending {
            order.reverse()
        } else {
            order
        }
    });
    let total = all.len();
    let mut namespaces = Vec::new();
    for c in all.into_iter().skip(offset).take(limit) {
        let used = ctx
            .engine
            .usage(&c)
            .await
            .map_err(|e| ApiError::from_engine(e, &c.name))?;
        namespaces.push(KvNamespace {
            namespace: c.name.clone(),
            remark: remark_of(&c),
            capacity: c.limits.max_bytes.unwrap_or(super::NAMESPACE_CAPACITY),
            capacity_used: used.bytes.max(0),
            references: Vec::new(),
            created_on: iso8601_utc(c.created_at_ms / 1000),
            modified_on: iso8601_utc(c.modified_at_ms / 1000),
        });
    }
    let mut out = Map::new();
    out.insert("TotalCount".into(), json!(total));
    out.insert(
        "KVNamespaces".into(),
        serde_json::to_value(namespaces).unwrap_or_else(|_| json!([])),
    );
    Ok(out)
}

/// A filter matches when any of its values does: fuzzy (the default) means a case-insensitive
/// substring, `Fuzzy: false` an exact match.
fn filter_matches(filter: &AdvancedFilter, c: &Container) -> bool {
    let field = if filter.name == "namespace" {
        c.name.clone()
    } else {
        remark_of(c)
    };
    let fuzzy = filter.fuzzy.unwrap_or(true);
    filter.values.iter().any(|v| {
        if fuzzy {
            field.to_lowercase().contains(&v.to_lowercase())
        } else {
            field == *v
        }
    })
}
