//! list-store and check-health: the two operations without a store prefix.

use bson::{doc, Bson, Document};
use kv_core::{ContainerKind, Limits, NewContainer};

use super::Ctx;
use crate::error::KvsError;
use crate::wire;

/// Scope of store containers; also their account group (the 25-stores quota).
pub const STORE_SCOPE: &str = "huawei-stores";
pub const MAX_STORES: i64 = 25;

pub async fn list_store(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let after = wire::opt_str(request, "cursor_name")?.filter(|c| !c.is_empty());
    let limit = match wire::opt_int(request, "limit")? {
        None => MAX_STORES as usize,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => {
            return Err(KvsError::bad_request(format!(
                "`limit` must be between 1 and 100, got {n}"
            )))
        }
    };
    let (stores, more) = ctx
        .engine
        .list_containers(&ctx.account, STORE_SCOPE, after.as_deref(), limit)
        .await?;
    let names: Vec<Bson> = stores
        .iter()
        .map(|c| Bson::String(c.name.clone()))
        .collect();
    let mut reply = Document::new();
    if more {
        if let Some(last) = stores.last() {
            reply.insert("cursor_name", last.name.clone());
        }
    }
    reply.insert("stores", names);
    Ok(reply)
}

pub fn check_health(request: &Document) -> Result<Document, KvsError> {
    wire::opt_int(request, "version")?;
    Ok(doc! {})
}

/// Makes sure the store exists (create-table creates stores implicitly).
pub async fn ensure_store(ctx: &Ctx<'_>, store: &str) -> Result<(), KvsError> {
    if ctx
        .engine
        .container(&ctx.account, STORE_SCOPE, store)
        .await
        .is_ok()
    {
        return Ok(());
    }
    let created = ctx
        .engine
        .create_container(NewContainer {
            account: ctx.account.clone(),
            scope: STORE_SCOPE.to_string(),
            name: store.to_string(),
            kind: ContainerKind::Flat,
            attrs: serde_json::json!({}),
            limits: Limits {
                account_group: STORE_SCOPE.to_string(),
                account_max_containers: Some(MAX_STORES),
                ..Default::default()
            },
        })
        .await;
    match created {
        Ok(_) | Err(kv_core::Error::AlreadyExists(_)) => Ok(()),
        Err(kv_core::Error::QuotaExceeded(_)) => Err(KvsError::too_many_stores()),
        Err(e) => Err(e.into()),
    }
}

/// The store must exist for every table and KV operation.
pub async fn require_store(ctx: &Ctx<'_>, store: &str) -> Result<(), KvsError> {
    match ctx.engine.container(&ctx.account, STORE_SCOPE, store).await {
        Ok(_) => Ok(()),
        Err(kv_core::Error::NotFound(_)) => Err(KvsError::no_such_store(store)),
        Err(e) => Err(e.into()),
    }
}
