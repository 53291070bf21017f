//! transact-write-skey-kv (`TransactWriteSkeyKvRequestBody` of the Java SDK 3.1.77–3.1.83,
//! `services/kvs/.../model/`): several writes and checks on documents that share one shard key,
//! all or nothing. Every operation runs through the write step put-kv, update-kv and delete-kv
//! use (`kv::apply`: same conditions, same update rules, same index maintenance) inside ONE
//! transaction; the first refusal abandons it uncommitted, so no document changes, and the
//! commit's version checks cover every document read, so a concurrent writer of any of them makes
//! the whole transaction retry against the new state rather than commit over it.

use bson::{doc, Document};
use kv_doc::Condition;

use super::batch::MAX_BATCH_OPERATIONS;
use super::kv::{apply, finish, primary_key, Change};
use super::table::{load_table, Table};
use super::Ctx;
use crate::error::KvsError;
use crate::wire;

/// One parsed `ShardKeyKvOperItem`: its encoded key, key document, change and condition.
struct Step {
    key: Vec<u8>,
    key_doc: Document,
    change: Change,
    condition: Option<Condition>,
}

/// Prefixes an error about one operation with its position, so a client can tell which failed.
fn at(i: usize, e: KvsError) -> KvsError {
    KvsError {
        message: format!("shard_key_kv_opers[{i}]: {}", e.message),
        ..e
    }
}

/// The key document of a check/delete/update: the request's `shard_key` plus the operation's
/// `sort_key`, which may only name sort-key fields (a table without a sort key takes none).
fn key_of(table: &Table, shard_key: &Document, oper: &Document) -> Result<Document, KvsError> {
    let mut key = shard_key.clone();
    if let Some(sort_key) = wire::opt_doc(oper, "sort_key")? {
        for (k, v) in sort_key {
            if !table.schema.sort_fields.contains(k) {
                return Err(KvsError::bad_request(format!(
                    "`sort_key` may only hold the sort-key fields, not `{k}`"
                )));
            }
            key.insert(k.clone(), v.clone());
        }
    }
    Ok(key)
}

fn parse(table: &Table, shard_key: &Document, item: &Document) -> Result<Step, KvsError> {
    const KINDS: [&str; 4] = [
        "check_shard_key_kv",
        "put_shard_key_kv",
        "delete_shard_key_kv",
        "update_shard_key_kv",
    ];
    let mut present = Vec::new();
    for kind in KINDS {
        if let Some(d) = wire::opt_doc(item, kind)? {
            present.push((kind, d));
        }
    }
    let (kind, oper) = match present.as_slice() {
        [one] => *one,
        _ => {
            return Err(KvsError::bad_request(
                "each operation needs exactly one of check_shard_key_kv, put_shard_key_kv, \
                 delete_shard_key_kv, update_shard_key_kv",
            ))
        }
    };
    let condition = wire::condition(oper, "condition_expression")?;
    let (key_doc, change) = match kind {
        "put_shard_key_kv" => {
            if wire::opt_doc(oper, "kv_blob")?.is_some() {
                return Err(KvsError::not_implemented(
                    "kv_blob: blob KVs are not supported by kvmux",
                ));
            }
            let kv_doc = wire::req_doc(oper, "kv_doc")?;
            // The document must sit under the transaction's shard key; compared encoded, so
            // the same number in another width is the same key, as it is in storage.
            let shard = &table.schema.shard_fields;
            let same = match (
                kv_doc::encode_key(kv_doc, shard),
                kv_doc::encode_key(shard_key, shard),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if !same {
                return Err(KvsError::bad_request(
                    "`kv_doc` must hold the request's `shard_key` values",
                ));
            }
            super::kv::check_document(kv_doc)?;
            (kv_doc.clone(), Change::Put(kv_doc.clone()))
        }
        "update_shard_key_kv" => {
            if wire::opt_doc(oper, "update_blob")?.is_some() {
                return Err(KvsError::not_implemented(
                    "update_blob: blob KVs are not supported by kvmux",
                ));
            }
            let update = wire::update_fields(oper)?;
            if update.spec.is_empty() && update.upsert.is_none() {
                return Err(KvsError::bad_request("`update_fields` has nothing to do"));
            }
            (
                key_of(table, shard_key, oper)?,
                Change::Update(Box::new(update)),
            )
        }
        "delete_shard_key_kv" => (key_of(table, shard_key, oper)?, Change::Delete),
        _ => {
            if condition.is_none() {
                return Err(KvsError::condition_invalid(
                    "check_shard_key_kv needs a condition_expression",
                ));
            }
            (key_of(table, shard_key, oper)?, Change::Check)
        }
    };
    let (key, key_doc) = primary_key(table, &key_doc)?;
    Ok(Step {
        key,
        key_doc,
        change,
        condition,
    })
}

pub async fn transact_write_skey_kv(
    ctx: &Ctx<'_>,
    request: &Document,
) -> Result<Document, KvsError> {
    let table = load_table(ctx, &wire::req_str(request, "table_name")?).await?;
    let shard_key = wire::req_doc(request, "shard_key")?;
    let shard = &table.schema.shard_fields;
    if let Some(extra) = shard_key.keys().find(|k| !shard.contains(k)) {
        return Err(KvsError::bad_request(format!(
            "`shard_key` may only hold the shard-key fields, not `{extra}`"
        )));
    }
    if let Some(missing) = shard.iter().find(|f| !shard_key.contains_key(*f)) {
        return Err(KvsError::bad_request(format!(
            "`shard_key` must hold shard-key field `{missing}`"
        )));
    }
    let items = wire::doc_array(request, "shard_key_kv_opers", true)?;
    if items.is_empty() {
        return Err(KvsError::bad_request(
            "`shard_key_kv_opers` needs at least one operation",
        ));
    }
    if items.len() > MAX_BATCH_OPERATIONS {
        return Err(KvsError::batch_limit(format!(
            "BatchExceededLimit: {} operations, at most {MAX_BATCH_OPERATIONS}",
            items.len()
        )));
    }
    // Parse and validate everything before the transaction starts.
    let mut steps = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let step = parse(&table, shard_key, item).map_err(|e| at(i, e))?;
        // Two operations on one document would make the outcome depend on their order, which
        // the model does not define: refused, as one write per document is the rule.
        if let Some(j) = steps.iter().position(|s: &Step| s.key == step.key) {
            return Err(at(
                i,
                KvsError::bad_request(format!("the same document as operation {j}")),
            ));
        }
        steps.push(step);
    }
    let engine = ctx.engine;
    let outcome = kv_core::retry(|| async {
        let mut tx = engine.begin();
        for (i, s) in steps.iter().enumerate() {
            let step = apply(
                &mut tx,
                &table,
                &s.key,
                &s.key_doc,
                &s.change,
                s.condition.as_ref(),
            );
            if let Err(e) = step.await? {
                return Ok(Err(at(i, e)));
            }
        }
        tx.commit().await?;
        Ok(Ok(()))
    })
    .await;
    finish(&table.name, outcome)?;
    Ok(doc! {})
}
