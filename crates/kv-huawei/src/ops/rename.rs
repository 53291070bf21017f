//! rename-kv: moves one document to a new sort key under the same shard key. The old document,
//! the new one and every index entry of both change in one transaction, so a reader sees the
//! document at exactly one of the two keys, and a concurrent writer of either key makes the
//! commit retry.
//!
//! Two body shapes were released (`services/kvs/.../model/RenameKvRequestBody.java`): the Java
//! SDK 3.1.77–3.1.83 (C++ 3.1.69–3.1.74) sends snake_case (`table_name`, `primary_key`,
//! `new_sort_key`, `kv_options`, `update_blob_attr`) and reads `old_primary_key`; Java
//! 3.1.62–3.1.76 (C++ 3.1.54–3.1.68) sent CamelCase (`TableName`, `PrimaryKey`, `NewSortKey`,
//! `KvOptions{ReturnHint}`, `UpdateBlobAttr`, `ReturnBlobAttr`) and read `OldPrimaryKey` and
//! `KvDoc`. Both are served, each answered in its own spelling: a body naming `TableName` is
//! the CamelCase one.

use bson::{Bson, Document};

use super::kv::{apply, decode_stored, finish, primary_key, Change};
use super::table::load_table;
use super::Ctx;
use crate::error::KvsError;
use crate::wire;

/// The field names of one body shape.
struct Names {
    table: &'static str,
    pk: &'static str,
    new_sort_key: &'static str,
    options: &'static str,
    return_hint: &'static str,
    update_blob: &'static str,
    old_pk: &'static str,
}

const SNAKE: Names = Names {
    table: "table_name",
    pk: "primary_key",
    new_sort_key: "new_sort_key",
    options: "kv_options",
    return_hint: "return_hint",
    update_blob: "update_blob_attr",
    old_pk: "old_primary_key",
};

const CAMEL: Names = Names {
    table: "TableName",
    pk: "PrimaryKey",
    new_sort_key: "NewSortKey",
    options: "KvOptions",
    return_hint: "ReturnHint",
    update_blob: "UpdateBlobAttr",
    old_pk: "OldPrimaryKey",
};

pub async fn rename_kv(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let camel = request.contains_key(CAMEL.table) && !request.contains_key(SNAKE.table);
    let n = if camel { &CAMEL } else { &SNAKE };
    let table = load_table(ctx, &wire::req_str(request, n.table)?).await?;
    let pk = wire::req_doc(request, n.pk)?;
    let new_sort_key = wire::req_doc(request, n.new_sort_key)?;
    // `return_hint` picks the document the CamelCase reply's `KvDoc` carries (true, the
    // default: before the rename; false: after). The snake_case reply has no document, so
    // there it is only type-checked.
    let return_before = match wire::opt_doc(request, n.options)? {
        Some(o) => wire::opt_bool(o, n.return_hint)?.unwrap_or(true),
        None => true,
    };
    if wire::opt_doc(request, n.update_blob)?.is_some() {
        return Err(KvsError::not_implemented(
            "update_blob_attr: blob KVs are not supported by kvmux",
        ));
    }
    if camel {
        wire::opt_bool(request, "ReturnBlobAttr")?;
    }
    let sort_fields = &table.schema.sort_fields;
    if sort_fields.is_empty() {
        return Err(KvsError::bad_request(format!(
            "table `{}` has no sort key to rename to",
            table.name
        )));
    }
    if let Some(extra) = new_sort_key.keys().find(|k| !sort_fields.contains(k)) {
        return Err(KvsError::bad_request(format!(
            "`{}` may only hold the sort-key fields, not `{extra}`",
            n.new_sort_key
        )));
    }
    let (old_key, old_key_doc) = primary_key(&table, pk)?;
    // The new key: the request's key with every sort field replaced.
    let mut new_key_doc = old_key_doc.clone();
    for f in sort_fields {
        let v = new_sort_key.get(f).ok_or_else(|| {
            KvsError::bad_request(format!(
                "`{}` must hold sort-key field `{f}`",
                n.new_sort_key
            ))
        })?;
        new_key_doc.insert(f.clone(), v.clone());
    }
    let (new_key, new_key_doc) = primary_key(&table, &new_key_doc)?;

    let engine = ctx.engine;
    let outcome = kv_core::retry(|| async {
        let mut tx = engine.begin();
        let old = match tx.get(&table.container, &old_key).await? {
            Some(item) => match decode_stored(&item) {
                Ok(d) => d,
                Err(e) => return Ok(Err(e)),
            },
            None => return Ok(Err(KvsError::no_such_key())),
        };
        // Checked before anything is written, so renaming a document onto its own key is the
        // same refusal as onto another document's.
        if tx.get(&table.container, &new_key).await?.is_some() {
            return Ok(Err(KvsError::kv_exists()));
        }
        let mut moved = old.clone();
        for (k, v) in &new_key_doc {
            moved.insert(k.clone(), v.clone());
        }
        let steps = [
            (&old_key, &old_key_doc, Change::Delete),
            (&new_key, &new_key_doc, Change::Put(moved.clone())),
        ];
        for (key, key_doc, change) in &steps {
            if let Err(e) = apply(&mut tx, &table, key, key_doc, change, None).await? {
                return Ok(Err(e));
            }
        }
        tx.commit().await?;
        Ok(Ok((old, moved)))
    })
    .await;
    let (old, moved) = finish(&table.name, outcome)?;
    let mut reply = Document::new();
    reply.insert(n.old_pk, old_key_doc);
    if camel {
        reply.insert(
            "KvDoc",
            Bson::Document(if return_before { old } else { moved }),
        );
    }
    Ok(reply)
}
