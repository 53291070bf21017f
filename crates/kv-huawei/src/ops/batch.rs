//! batch-write-kv and batch-get-kv: several tables per request. Each write operation is applied
//! on its own (atomically with its index entries); one that is refused (false condition, missing
//! document, impossible update) is reported in `unprocessed_opers` rather than failing the rest.
//! Malformed requests and unknown tables fail the whole call.

use bson::{doc, Bson, Document};

use super::kv::{delete_doc, get_doc, put_doc, update_doc};
use super::scan::MAX_PAGE_BYTES;
use super::table::{load_table, Table};
use super::Ctx;
use crate::error::KvsError;
use crate::wire;

/// Most operations one batch call may carry (the service's number is undocumented; spec §2.5
/// recommends 100).
pub const MAX_BATCH_OPERATIONS: usize = 100;

enum Oper<'a> {
    Put(i64, &'a Document),
    Delete(i64, &'a Document),
    Update(i64, &'a Document),
}

fn parse_oper(item: &Document) -> Result<Oper<'_>, KvsError> {
    if let Some(p) = wire::opt_doc(item, "put_kv")? {
        let id = wire::opt_int(p, "oper_id")?
            .ok_or_else(|| KvsError::bad_request("`oper_id` is required"))?;
        if wire::opt_doc(p, "kv_blob")?.is_some() {
            return Err(KvsError::not_implemented(
                "kv_blob: blob KVs are not supported by kvmux",
            ));
        }
        return Ok(Oper::Put(id, p));
    }
    if let Some(d) = wire::opt_doc(item, "delete_kv")? {
        let id = wire::opt_int(d, "oper_id")?
            .ok_or_else(|| KvsError::bad_request("`oper_id` is required"))?;
        return Ok(Oper::Delete(id, d));
    }
    if let Some(u) = wire::opt_doc(item, "update_kv")? {
        let id = wire::opt_int(u, "oper_id")?
            .ok_or_else(|| KvsError::bad_request("`oper_id` is required"))?;
        return Ok(Oper::Update(id, u));
    }
    Err(KvsError::bad_request(
        "a kv_oper needs put_kv, delete_kv or update_kv",
    ))
}

/// Whether a refusal is about this one operation (reported as unprocessed) rather than the call.
fn per_operation(e: &KvsError) -> bool {
    matches!(
        e.code,
        "KVS.00005017" | "KVS.00001016" | "KVS.00001001" | "KVS.00005018" | "KVS.00001004"
    )
}

pub async fn batch_write_kv(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let groups = wire::doc_array(request, "table_opers", true)?;
    // Parse and validate everything before writing anything.
    let mut plan: Vec<(Table, Vec<Oper<'_>>)> = Vec::new();
    let mut total = 0;
    for g in &groups {
        let table = load_table(ctx, &wire::req_str(g, "table_name")?).await?;
        let opers = wire::doc_array(g, "kv_opers", true)?
            .into_iter()
            .map(parse_oper)
            .collect::<Result<Vec<_>, _>>()?;
        total += opers.len();
        plan.push((table, opers));
    }
    if total > MAX_BATCH_OPERATIONS {
        return Err(KvsError::batch_limit(format!(
            "BatchExceededLimit: {total} operations, at most {MAX_BATCH_OPERATIONS}"
        )));
    }
    let mut unprocessed = Vec::new();
    for (table, opers) in &plan {
        let (mut puts, mut deletes, mut updates) = (Vec::new(), Vec::new(), Vec::new());
        for oper in opers {
            let (id, list, result) = match oper {
                Oper::Put(id, p) => {
                    let r = async {
                        let kv_doc = wire::req_doc(p, "kv_doc")?;
                        let c = wire::condition(p, "condition_expression")?;
                        put_doc(ctx, table, kv_doc, c.as_ref()).await
                    }
                    .await;
                    (*id, &mut puts, r)
                }
                Oper::Delete(id, d) => {
                    let r = async {
                        let pk = wire::req_doc(d, "primary_key")?;
                        let c = wire::condition(d, "condition_expression")?;
                        delete_doc(ctx, table, pk, c.as_ref()).await
                    }
                    .await;
                    (*id, &mut deletes, r)
                }
                Oper::Update(id, u) => {
                    let r = async {
                        let pk = wire::req_doc(u, "primary_key")?;
                        let c = wire::condition(u, "condition_expression")?;
                        update_doc(ctx, table, pk, wire::update_fields(u)?, c.as_ref()).await
                    }
                    .await;
                    (*id, &mut updates, r)
                }
            };
            match result {
                Ok(()) => {}
                Err(e) if per_operation(&e) => list.push(Bson::Int64(id)),
                Err(e) => return Err(e),
            }
        }
        if !(puts.is_empty() && deletes.is_empty() && updates.is_empty()) {
            let mut ids = Document::new();
            for (k, v) in [
                ("put_kv_ids", puts),
                ("delete_kv_ids", deletes),
                ("update_kv_ids", updates),
            ] {
                if !v.is_empty() {
                    ids.insert(k, v);
                }
            }
            unprocessed.push(Bson::Document(
                doc! {"table_name": &table.name, "kv_oper_ids": ids},
            ));
        }
    }
    Ok(doc! {"unprocessed_opers": unprocessed})
}

pub async fn batch_get_kv(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let groups = wire::doc_array(request, "batch_get_kv_opers", true)?;
    let mut plan = Vec::new();
    let mut total = 0;
    for g in &groups {
        let table = load_table(ctx, &wire::req_str(g, "table_name")?).await?;
        // The SDK's `BatchGetKvOfTable` has no `projection_fields`; a client that sends one on a
        // table group gets the same projection get-kv and the scans apply.
        let projection = wire::str_array(g, "projection_fields")?;
        let mut keys = Vec::new();
        for item in wire::doc_array(g, "get_kv_opers", true)? {
            let get = wire::req_doc(item, "get_kv")?;
            let id = wire::opt_int(get, "oper_id")?
                .ok_or_else(|| KvsError::bad_request("`oper_id` is required"))?;
            keys.push((id, wire::req_doc(get, "primary_key")?));
        }
        total += keys.len();
        plan.push((table, keys, projection));
    }
    if total > MAX_BATCH_OPERATIONS {
        return Err(KvsError::batch_limit(format!(
            "BatchExceededLimit: {total} operations, at most {MAX_BATCH_OPERATIONS}"
        )));
    }
    // Documents are read until the reply would pass the page cap; the rest are reported in
    // `exception_opers[].unprocessed_opers`, which is how the service tells a client to send
    // those again.
    let mut all = Vec::new();
    let mut exceptions = Vec::new();
    let mut bytes = 0usize;
    let mut full = false;
    for (table, keys, projection) in &plan {
        let mut found = Vec::new();
        let mut unprocessed = Vec::new();
        for (id, pk) in keys {
            if full {
                unprocessed.push(Bson::Int64(*id));
                continue;
            }
            if let Some(d) = get_doc(ctx, table, pk).await? {
                let d = super::project::project(d, projection);
                let size = kv_doc::encode_document(&d)?.len();
                if bytes > 0 && bytes.saturating_add(size) > MAX_PAGE_BYTES {
                    full = true;
                    unprocessed.push(Bson::Int64(*id));
                    continue;
                }
                bytes += size;
                found.push(Bson::Document(doc! {"kv_doc": d}));
            }
        }
        if !unprocessed.is_empty() {
            exceptions.push(Bson::Document(
                doc! {"table_name": &table.name, "unprocessed_opers": unprocessed},
            ));
        }
        all.push(Bson::Document(
            doc! {"table_name": &table.name, "returned_kv_items": found},
        ));
    }
    Ok(doc! {"exception_opers": exceptions, "returned_kv_items_of_all": all})
}
