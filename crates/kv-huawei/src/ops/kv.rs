//! put-kv, get-kv, update-kv, delete-kv, and the one write path they (and batch-write-kv)
//! share: read the current document, check the condition, compute the new document, and write
//! it together with every index entry in one optimistic transaction.

use bson::{doc, Document};
use bytes::Bytes;
use kv_doc::{decode_document, Condition};

use super::table::{checked_after_table, open_table, Table};
use super::{validate_field_name, Ctx};
use crate::error::KvsError;
use crate::wire;

/// A document KV, key included, is at most 512 KB.
pub const MAX_DOC_BYTES: usize = 512 * 1024;
/// The encoded primary key is at most 1024 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// What a write does with the current document.
pub enum Change {
    /// Replace it with this document (put-kv).
    Put(Document),
    /// Apply an update; insert `upsert` when there is no document (update-kv).
    Update(Box<wire::UpdateFields>),
    /// Remove it (delete-kv).
    Delete,
    /// Leave it as it is: only the condition matters (transact-write-skey-kv's
    /// `check_shard_key_kv`).
    Check,
}

/// The primary key of a request document, validated and encoded.
pub fn primary_key(table: &Table, doc: &Document) -> Result<(Vec<u8>, Document), KvsError> {
    let key = table.schema.encode(doc)?;
    if key.len() > MAX_KEY_BYTES {
        return Err(KvsError::entity_too_large(format!(
            "EntityTooLarge: the primary key is {} bytes, over {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok((key, table.schema.extract(doc)))
}

pub(super) fn check_document(doc: &Document) -> Result<Vec<u8>, KvsError> {
    for k in doc.keys() {
        validate_field_name(k)?;
    }
    let bytes = kv_doc::encode_document(doc)?;
    if bytes.len() > MAX_DOC_BYTES {
        return Err(KvsError::kv_too_large(format!(
            "keyValueSizeExceedLimited: the document is {} bytes, over {MAX_DOC_BYTES}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// A stored document; one that does not decode is the gateway's fault, never the client's.
pub(super) fn decode_stored(item: &kv_core::Item) -> Result<Document, KvsError> {
    decode_document(&item.value).map_err(|e| KvsError::internal(format!("stored document: {e}")))
}

/// Applies one change to the document at `key`, atomically with its index entries.
pub async fn write(
    ctx: &Ctx<'_>,
    table: &Table,
    key: &[u8],
    key_doc: &Document,
    change: &Change,
    condition: Option<&Condition>,
) -> Result<(), KvsError> {
    let engine = ctx.engine;
    let outcome = kv_core::retry(|| async {
        let mut tx = engine.begin();
        if let Err(e) = apply(&mut tx, table, key, key_doc, change, condition).await? {
            return Ok(Err(e));
        }
        tx.commit().await?;
        Ok(Ok(()))
    })
    .await;
    finish(&table.name, outcome)
}

/// The write of put-kv, update-kv and delete-kv by table name: the table (with its indexes) and
/// the document read in one store statement inside the transaction that writes (see
/// `open_table`), so no lookup of the table comes before the commit. `key_source` is the
/// request document the primary key is taken from; `checks` are the request's checks that
/// follow the primary key's in the vendor's order.
async fn write_by_name(
    ctx: &Ctx<'_>,
    table_name: &str,
    key_source: &Document,
    checks: impl Fn() -> Result<(), KvsError>,
    change: &Change,
    condition: Option<&Condition>,
) -> Result<(), KvsError> {
    let outcome = kv_core::retry(|| async {
        let mut tx = ctx.engine.begin();
        let read_ahead = |schema: &kv_doc::KeySchema| schema.encode(key_source).ok();
        let table = match open_table(&mut tx, ctx, table_name, true, read_ahead).await? {
            Ok(table) => table,
            Err(e) => return Ok(Err(e)),
        };
        let (key, key_doc) =
            match primary_key(&table, key_source).and_then(|k| checks().map(|()| k)) {
                Ok(k) => k,
                Err(e) => return Ok(Err(e)),
            };
        if let Err(e) = apply(&mut tx, &table, &key, &key_doc, change, condition).await? {
            return Ok(Err(e));
        }
        tx.commit().await?;
        Ok(Ok(()))
    })
    .await;
    finish(table_name, outcome)
}

/// A retry loop's outcome as the vendor's reply: a container that vanished mid-request is the
/// table's `NoSuchTable`, any other engine failure maps through `From<kv_core::Error>`.
pub(super) fn finish<T>(
    table_name: &str,
    outcome: kv_core::Result<Result<T, KvsError>>,
) -> Result<T, KvsError> {
    match outcome {
        Ok(r) => r,
        Err(kv_core::Error::NotFound(_)) => Err(KvsError::no_such_table(table_name)),
        Err(e) => Err(e.into()),
    }
}

/// The one write step every document operation shares, inside the caller's transaction: read
/// the current document, check the condition, compute the next one and buffer it together with
/// every index entry. It commits nothing, so several calls in one `Txn` (rename-kv,
/// transact-write-skey-kv) commit all together or not at all, and the commit's version checks
/// cover every document read. `Ok(Err(..))` is a vendor refusal: the caller must not commit.
pub(super) async fn apply(
    tx: &mut kv_core::Txn<'_>,
    table: &Table,
    key: &[u8],
    key_doc: &Document,
    change: &Change,
    condition: Option<&Condition>,
) -> kv_core::Result<Result<(), KvsError>> {
    let now = tx.now();
    let current = match tx.get(&table.container, key).await? {
        Some(item) => match decode_stored(&item) {
            Ok(d) => Some(d),
            Err(e) => return Ok(Err(e)),
        },
        None => None,
    };
    if let Some(c) = condition {
        if !c.evaluate(current.as_ref()) {
            return Ok(Err(KvsError::condition_false()));
        }
    }
    let next = match change {
        Change::Check => return Ok(Ok(())),
        Change::Put(d) => Some(d.clone()),
        Change::Delete => match current {
            Some(_) => None,
            None => return Ok(Err(KvsError::no_such_key())),
        },
        Change::Update(u) => match (&current, &u.upsert) {
            (Some(cur), _) => match u.spec.apply(cur, &table.schema.fields()) {
                Ok(d) => Some(d),
                Err(e) => return Ok(Err(e.into())),
            },
            (None, Some(up)) => {
                // The upsert document, addressed by the request's key.
                let mut d = key_doc.clone();
                for (k, v) in up {
                    if !d.contains_key(k) {
                        d.insert(k.clone(), v.clone());
                    }
                }
                Some(d)
            }
            (None, None) => return Ok(Err(KvsError::no_such_key())),
        },
    };
    let next_bytes = match &next {
        Some(d) => match check_document(d) {
            Ok(b) => Some(b),
            Err(e) => return Ok(Err(e)),
        },
        None => None,
    };
    let expires_at = next.as_ref().and_then(|d| table.expires_at(d, now));
    match &next_bytes {
        Some(b) => {
            tx.put(&table.container, key, Bytes::from(b.clone()), expires_at)
                .await?
        }
        None => {
            tx.delete(&table.container, key).await?;
        }
    }
    let mut entries = Vec::with_capacity(table.indexes.len());
    let mut plan = kv_core::ReadAhead::default();
    for (def, index) in &table.indexes {
        let old = match current
            .as_ref()
            .map(|d| def.entry(d, &table.schema))
            .transpose()
        {
            Ok(e) => e.flatten(),
            Err(e) => return Ok(Err(e.into())),
        };
        let new = match next
            .as_ref()
            .map(|d| def.entry(d, &table.schema))
            .transpose()
        {
            Ok(e) => e.flatten(),
            Err(e) => return Ok(Err(e.into())),
        };
        for (key, _) in old.iter().chain(new.iter()) {
            plan.item(index, key);
        }
        entries.push((index, old, new));
    }
    // Every index entry the write replaces or adds, read in one statement.
    tx.read_ahead(plan).await?;
    for (index, old, new) in entries {
        if let Some((old_key, _)) = &old {
            if new.as_ref().map(|(k, _)| k) != Some(old_key) {
                tx.delete(index, old_key).await?;
            }
        }
        if let Some((new_key, projected)) = new {
            let bytes = match kv_doc::encode_document(&projected) {
                Ok(b) => b,
                Err(e) => return Ok(Err(e.into())),
            };
            tx.put(index, &new_key, Bytes::from(bytes), expires_at)
                .await?;
        }
    }
    Ok(Ok(()))
}

pub async fn put_kv(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let name = wire::req_str(request, "table_name")?;
    let parsed = wire::req_doc(request, "kv_doc").and_then(|kv_doc| {
        wire::condition(request, "condition_expression").map(|condition| (kv_doc, condition))
    });
    let (kv_doc, condition) = checked_after_table(ctx, &name, parsed).await?;
    write_by_name(
        ctx,
        &name,
        kv_doc,
        || check_document(kv_doc).map(|_| ()),
        &Change::Put(kv_doc.clone()),
        condition.as_ref(),
    )
    .await?;
    Ok(doc! {})
}

pub async fn put_doc(
    ctx: &Ctx<'_>,
    table: &Table,
    kv_doc: &Document,
    condition: Option<&Condition>,
) -> Result<(), KvsError> {
    let (key, key_doc) = primary_key(table, kv_doc)?;
    check_document(kv_doc)?;
    write(
        ctx,
        table,
        &key,
        &key_doc,
        &Change::Put(kv_doc.clone()),
        condition,
    )
    .await
}

/// get-kv: the table's record and the document in one store statement once this gateway has
/// seen the table (see `open_table`).
pub async fn get_kv(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let name = wire::req_str(request, "table_name")?;
    let parsed = wire::req_doc(request, "primary_key").and_then(|pk| {
        wire::str_array(request, "projection_fields").map(|projection| (pk, projection))
    });
    let (pk, projection) = checked_after_table(ctx, &name, parsed).await?;
    let mut tx = ctx.engine.begin();
    let read_ahead = |schema: &kv_doc::KeySchema| schema.encode(pk).ok();
    let opened = open_table(&mut tx, ctx, &name, false, read_ahead).await;
    let table = finish(&name, opened)?;
    let (key, _) = primary_key(&table, pk)?;
    match tx.get(&table.container, &key).await? {
        Some(item) => {
            Ok(doc! {"kv_doc": super::project::project(decode_stored(&item)?, &projection)})
        }
        None => Err(KvsError::no_such_key()),
    }
}

pub async fn get_doc(
    ctx: &Ctx<'_>,
    table: &Table,
    pk: &Document,
) -> Result<Option<Document>, KvsError> {
    let (key, _) = primary_key(table, pk)?;
    match ctx.engine.get(&table.container, &key).await? {
        Some(item) => Ok(Some(decode_stored(&item)?)),
        None => Ok(None),
    }
}

pub async fn update_kv(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let name = wire::req_str(request, "table_name")?;
    let parsed = wire::req_doc(request, "primary_key").and_then(|pk| {
        let condition = wire::condition(request, "condition_expression")?;
        Ok((pk, condition, wire::update_fields(request)?))
    });
    let (pk, condition, update) = checked_after_table(ctx, &name, parsed).await?;
    let empty = update.spec.is_empty() && update.upsert.is_none();
    write_by_name(
        ctx,
        &name,
        pk,
        || match empty {
            true => Err(KvsError::bad_request("`update_fields` has nothing to do")),
            false => Ok(()),
        },
        &Change::Update(Box::new(update)),
        condition.as_ref(),
    )
    .await?;
    Ok(doc! {})
}

pub async fn update_doc(
    ctx: &Ctx<'_>,
    table: &Table,
    pk: &Document,
    update: wire::UpdateFields,
    condition: Option<&Condition>,
) -> Result<(), KvsError> {
    let (key, key_doc) = primary_key(table, pk)?;
    if update.spec.is_empty() && update.upsert.is_none() {
        return Err(KvsError::bad_request("`update_fields` has nothing to do"));
    }
    write(
        ctx,
        table,
        &key,
        &key_doc,
        &Change::Update(Box::new(update)),
        condition,
    )
    .await
}

pub async fn delete_kv(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let name = wire::req_str(request, "table_name")?;
    let parsed = wire::req_doc(request, "primary_key").and_then(|pk| {
        wire::condition(request, "condition_expression").map(|condition| (pk, condition))
    });
    let (pk, condition) = checked_after_table(ctx, &name, parsed).await?;
    write_by_name(
        ctx,
        &name,
        pk,
        || Ok(()),
        &Change::Delete,
        condition.as_ref(),
    )
    .await?;
    Ok(doc! {})
}

pub async fn delete_doc(
    ctx: &Ctx<'_>,
    table: &Table,
    pk: &Document,
    condition: Option<&Condition>,
) -> Result<(), KvsError> {
    let (key, key_doc) = primary_key(table, pk)?;
    write(ctx, table, &key, &key_doc, &Change::Delete, condition).await
}
