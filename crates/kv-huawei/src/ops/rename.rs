//! rename-kv (`RenameKvRequestBody` of the Java SDK 3.1.77–3.1.83, `services/kvs/.../model/`):
//! moves one document to a new sort key under the same shard key. The old document, the new
//! one and every index entry of both change in one transaction, so a reader sees the document at
//! exactly one of the two keys, and a concurrent writer of either key makes the commit retry.

use bson::{doc, Document};

use super::kv::{apply, decode_stored, finish, primary_key, Change};
use super::table::load_table;
use super::Ctx;
use crate::error::KvsError;
use crate::wire;

pub async fn rename_kv(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let table = load_table(ctx, &wire::req_str(request, "table_name")?).await?;
    let pk = wire::req_doc(request, "primary_key")?;
    let new_sort_key = wire::req_doc(request, "new_sort_key")?;
    // `kv_options` only carries `return_hint`, which has nothing to shape here: the reply is
    // `old_primary_key` either way. It is still type-checked like every other field.
    wire::opt_doc(request, "kv_options")?;
    if wire::opt_doc(request, "update_blob_attr")?.is_some() {
        return Err(KvsError::not_implemented(
            "update_blob_attr: blob KVs are not supported by kvmux",
        ));
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
            "`new_sort_key` may only hold the sort-key fields, not `{extra}`"
        )));
    }
    let (old_key, old_key_doc) = primary_key(&table, pk)?;
    // The new key: the request's key with every sort field replaced.
    let mut new_key_doc = old_key_doc.clone();
    for f in sort_fields {
        let v = new_sort_key.get(f).ok_or_else(|| {
            KvsError::bad_request(format!("`new_sort_key` must hold sort-key field `{f}`"))
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
        let mut moved = old;
        for (k, v) in &new_key_doc {
            moved.insert(k.clone(), v.clone());
        }
        let steps = [
            (&old_key, &old_key_doc, Change::Delete),
            (&new_key, &new_key_doc, Change::Put(moved)),
        ];
        for (key, key_doc, change) in &steps {
            if let Err(e) = apply(&mut tx, &table, key, key_doc, change, None).await? {
                return Ok(Err(e));
            }
        }
        tx.commit().await?;
        Ok(Ok(()))
    })
    .await;
    finish(&table, outcome)?;
    Ok(doc! {"old_primary_key": old_key_doc})
}
