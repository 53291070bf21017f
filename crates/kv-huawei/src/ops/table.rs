//! create-table, delete-table, describe-table, list-table, and loading a table's schema.

use bson::{doc, Bson, Document};
use kv_core::{Container, ContainerKind, Limits, NewContainer};
use kv_doc::{IndexDef, KeySchema};
use serde::{Deserialize, Serialize};

use super::store::{ensure_store, require_store};
use super::{validate_field_name, validate_table_name, Ctx};
use crate::error::KvsError;
use crate::wire;

pub const MAX_TABLES_PER_STORE: i64 = 100;
pub const MAX_LSI: usize = 5;
pub const MAX_GSI: usize = 20;

/// A store's table scope (and the account group that caps it at 100 tables).
pub fn table_scope(store: &str) -> String {
    format!("huawei/{store}")
}

/// Index containers are scoped by the table container's id, so a recreated table never sees a
/// previous incarnation's index entries.
fn index_scope(table: &Container) -> String {
    format!("huawei-index/{}", table.id)
}

/// The TTL rule of a table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ttl {
    pub expire_after_seconds: i64,
    /// A field holding a UTC time in seconds (or a BSON datetime); absent = write time.
    pub field_name: Option<String>,
}

/// What a table container's attrs hold.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TableMeta {
    pub shard_fields: Vec<String>,
    pub sort_fields: Vec<String>,
    pub lsi: Vec<IndexDef>,
    pub gsi: Vec<IndexDef>,
    pub ttl: Option<Ttl>,
    /// The create-table request as sent (hex BSON), echoed by describe-table.
    pub request_hex: String,
}

/// A loaded table: its container, schema and index containers.
pub struct Table {
    pub name: String,
    pub container: Container,
    pub meta: TableMeta,
    pub schema: KeySchema,
    /// Every index with its container, LSIs first.
    pub indexes: Vec<(IndexDef, Container)>,
}

impl Table {
    pub fn index(&self, name: &str) -> Option<&(IndexDef, Container)> {
        self.indexes.iter().find(|(d, _)| d.name == name)
    }

    /// The expiry of a document written now, per the TTL rule.
    pub fn expires_at(&self, doc: &Document, now: u64) -> Option<u64> {
        let ttl = self.meta.ttl.as_ref()?;
        let base = match &ttl.field_name {
            None => now as i64,
            Some(f) => match doc.get(f)? {
                Bson::Int32(i) => i64::from(*i),
                Bson::Int64(i) => *i,
                Bson::Double(d) => *d as i64,
                Bson::DateTime(d) => d.timestamp_millis() / 1000,
                _ => return None,
            },
        };
        Some(base.saturating_add(ttl.expire_after_seconds).max(0) as u64)
    }
}

pub async fn load_table(ctx: &Ctx<'_>, name: &str) -> Result<Table, KvsError> {
    let store = ctx.store()?;
    let container = match ctx
        .engine
        .container(&ctx.account, &table_scope(store), name)
        .await
    {
        Ok(c) => c,
        Err(kv_core::Error::NotFound(_)) => {
            require_store(ctx, store).await?;
            return Err(KvsError::no_such_table(name));
        }
        Err(e) => return Err(e.into()),
    };
    let meta = table_meta(&container)?;
    let mut indexes = Vec::new();
    for def in meta.lsi.iter().chain(meta.gsi.iter()) {
        let c = ctx
            .engine
            .container(&ctx.account, &index_scope(&container), &def.name)
            .await
            .map_err(|e| KvsError::internal(format!("index {}: {e}", def.name)))?;
        indexes.push((def.clone(), c));
    }
    Ok(Table::new(name, container, meta, indexes))
}

/// The table `name` read inside `tx`, in ONE store statement with the table's document under
/// the key `doc_key` computes from the table's key schema (and, with `indexes`, the records of
/// the table's index containers) once this gateway has seen the table: a get-kv's whole read,
/// and the read a put-kv, update-kv or delete-kv commits on (see `kv_core::Txn::container`;
/// the table's record is checked at commit like the document). Without `indexes` the returned
/// table lists none (a read needs none). `Ok(Err(..))` is the vendor's answer (no such store or
/// table); `Err` is the engine's, which a retry loop may retry.
pub async fn open_table(
    tx: &mut kv_core::Txn<'_>,
    ctx: &Ctx<'_>,
    name: &str,
    indexes: bool,
    doc_key: impl Fn(&KeySchema) -> Option<Vec<u8>>,
) -> kv_core::Result<Result<Table, KvsError>> {
    let store = match ctx.store() {
        Ok(store) => store,
        Err(e) => return Ok(Err(e)),
    };
    let plan = |c: &Container, plan: &mut kv_core::ReadAhead| {
        let Ok(meta) = table_meta(c) else { return };
        if indexes {
            for def in meta.lsi.iter().chain(meta.gsi.iter()) {
                plan.container(&ctx.account, &index_scope(c), &def.name);
            }
        }
        if let Some(key) = doc_key(&meta.key_schema()) {
            plan.item(c, &key);
        }
    };
    let container = match tx
        .container(&ctx.account, &table_scope(store), name, plan)
        .await
    {
        Ok(c) => c,
        Err(kv_core::Error::NotFound(_)) => {
            return Ok(match require_store(ctx, store).await {
                Ok(()) => Err(KvsError::no_such_table(name)),
                Err(e) => Err(e),
            })
        }
        Err(e) => return Err(e),
    };
    let meta = match table_meta(&container) {
        Ok(meta) => meta,
        Err(e) => return Ok(Err(e)),
    };
    let mut index_containers = Vec::new();
    if indexes {
        for def in meta.lsi.iter().chain(meta.gsi.iter()) {
            // Read ahead with the table: no statement of its own.
            match tx
                .container(&ctx.account, &index_scope(&container), &def.name, |_, _| {})
                .await
            {
                Ok(c) => index_containers.push((def.clone(), c)),
                Err(kv_core::Error::NotFound(m)) => {
                    return Ok(Err(KvsError::internal(format!("index {}: {m}", def.name))))
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(Ok(Table::new(name, container, meta, index_containers)))
}

/// The request's checks that come after finding the table in the vendor's order: when they
/// fail, the table is looked up first, so a missing store or table is still the error reported;
/// when they pass, no lookup is made here (the operation reads the table with its document).
pub async fn checked_after_table<T>(
    ctx: &Ctx<'_>,
    name: &str,
    checks: Result<T, KvsError>,
) -> Result<T, KvsError> {
    match checks {
        Ok(checked) => Ok(checked),
        Err(e) => {
            load_table(ctx, name).await?;
            Err(e)
        }
    }
}

/// A table's metadata, from its container's attributes.
fn table_meta(container: &Container) -> Result<TableMeta, KvsError> {
    serde_json::from_value(container.attrs.clone())
        .map_err(|e| KvsError::internal(format!("table metadata: {e}")))
}

impl TableMeta {
    fn key_schema(&self) -> KeySchema {
        KeySchema {
            shard_fields: self.shard_fields.clone(),
            sort_fields: self.sort_fields.clone(),
        }
    }
}

impl Table {
    fn new(
        name: &str,
        container: Container,
        meta: TableMeta,
        indexes: Vec<(IndexDef, Container)>,
    ) -> Table {
        Table {
            name: name.to_string(),
            schema: meta.key_schema(),
            container,
            meta,
            indexes,
        }
    }
}

fn check_fields(fields: &[String], err: fn(String) -> KvsError) -> Result<(), KvsError> {
    for (i, f) in fields.iter().enumerate() {
        validate_field_name(f).map_err(|e| err(e.message))?;
        if fields[..i].contains(f) {
            return Err(err(format!("field `{f}` appears twice")));
        }
    }
    Ok(())
}

/// Validates the create-table request into table metadata (spec §2.1 rules).
fn parse_schema(request: &Document) -> Result<TableMeta, KvsError> {
    let pk = wire::opt_doc(request, "primary_key_schema")
        .map_err(|e| KvsError::primary_schema(e.message))?
        .ok_or_else(|| KvsError::primary_schema("`primary_key_schema` is required"))?;
    let shard = wire::key_fields(pk, "shard_key_fields")
        .map_err(|e| KvsError::primary_schema(e.message))?;
    let sort =
        wire::key_fields(pk, "sort_key_fields").map_err(|e| KvsError::primary_schema(e.message))?;
    if shard.is_empty() {
        return Err(KvsError::primary_schema(
            "`shard_key_fields` needs at least one field",
        ));
    }
    let all: Vec<String> = shard.iter().chain(sort.iter()).cloned().collect();
    check_fields(&all, KvsError::primary_schema)?;

    let lsi_docs = wire::doc_array(request, "local_secondary_index_schema", false)
        .map_err(|e| KvsError::lsi_schema(e.message))?;
    if lsi_docs.len() > MAX_LSI {
        return Err(KvsError::lsi_limit());
    }
    let mut lsi = Vec::new();
    for d in lsi_docs {
        let name = wire::req_str(d, "index_name").map_err(|e| KvsError::lsi_schema(e.message))?;
        validate_table_name(&name, "index name").map_err(|e| KvsError::lsi_schema(e.message))?;
        let sort_fields =
            wire::key_fields(d, "sort_key_fields").map_err(|e| KvsError::lsi_schema(e.message))?;
        if sort_fields.is_empty() {
            return Err(KvsError::lsi_schema(format!(
                "index `{name}` needs sort_key_fields"
            )));
        }
        check_fields(&sort_fields, KvsError::lsi_schema)?;
        if sort_fields == sort || sort_fields == shard {
            return Err(KvsError::lsi_schema(format!(
                "index `{name}`: its sort key may not equal the table's shard or sort key"
            )));
        }
        let abstract_fields =
            wire::str_array(d, "abstract_fields").map_err(|e| KvsError::lsi_schema(e.message))?;
        lsi.push(IndexDef {
            name,
            shard_fields: shard.clone(),
            sort_fields,
            abstract_fields,
        });
    }

    let gsi_docs = wire::doc_array(request, "global_secondary_index_schema", false)
        .map_err(|e| KvsError::gsi_schema(e.message))?;
    if gsi_docs.len() > MAX_GSI {
        return Err(KvsError::gsi_limit());
    }
    let mut gsi: Vec<IndexDef> = Vec::new();
    for d in gsi_docs {
        let name = wire::req_str(d, "index_name").map_err(|e| KvsError::gsi_schema(e.message))?;
        validate_table_name(&name, "index name").map_err(|e| KvsError::gsi_schema(e.message))?;
        let shard_fields =
            wire::key_fields(d, "shard_key_fields").map_err(|e| KvsError::gsi_schema(e.message))?;
        let sort_fields =
            wire::key_fields(d, "sort_key_fields").map_err(|e| KvsError::gsi_schema(e.message))?;
        if shard_fields.is_empty() {
            return Err(KvsError::gsi_schema(format!(
                "index `{name}` needs shard_key_fields"
            )));
        }
        let both: Vec<String> = shard_fields
            .iter()
            .chain(sort_fields.iter())
            .cloned()
            .collect();
        check_fields(&both, KvsError::gsi_schema)?;
        if shard_fields == shard {
            return Err(KvsError::gsi_schema(format!(
                "index `{name}`: its shard key may not equal the table's"
            )));
        }
        if gsi
            .iter()
            .any(|g| g.shard_fields == shard_fields && g.sort_fields == sort_fields)
        {
            return Err(KvsError::gsi_schema(format!(
                "index `{name}` duplicates another global index's key"
            )));
        }
        let abstract_fields =
            wire::str_array(d, "abstract_fields").map_err(|e| KvsError::gsi_schema(e.message))?;
        gsi.push(IndexDef {
            name,
            shard_fields,
            sort_fields,
            abstract_fields,
        });
    }
    let mut names: Vec<&str> = lsi
        .iter()
        .chain(gsi.iter())
        .map(|d| d.name.as_str())
        .collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(KvsError::bad_request(
            "index names must be unique within a table",
        ));
    }

    let ttl = match wire::opt_doc(request, "ttl_specification")? {
        Some(t) if wire::opt_bool(t, "enable")?.unwrap_or(false) => Some(Ttl {
            expire_after_seconds: wire::opt_int(t, "expire_after_seconds")?.unwrap_or(0),
            field_name: wire::opt_str(t, "field_name")?,
        }),
        _ => None,
    };
    Ok(TableMeta {
        shard_fields: shard,
        sort_fields: sort,
        lsi,
        gsi,
        ttl,
        request_hex: String::new(),
    })
}

pub async fn create_table(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let store = ctx.store()?;
    let name = wire::req_str(request, "table_name")?;
    validate_table_name(&name, "table name")?;
    let mut meta = parse_schema(request)?;
    meta.request_hex = hex::encode(
        request
            .to_vec()
            .map_err(|e| KvsError::internal(e.to_string()))?,
    );
    ensure_store(ctx, store).await?;
    let attrs = serde_json::to_value(&meta).map_err(|e| KvsError::internal(e.to_string()))?;
    let scope = table_scope(store);
    let table = ctx
        .engine
        .create_container(NewContainer {
            account: ctx.account.clone(),
            scope: scope.clone(),
            name: name.clone(),
            kind: ContainerKind::Document,
            attrs,
            limits: Limits {
                account_group: scope,
                account_max_containers: Some(MAX_TABLES_PER_STORE),
                ..Default::default()
            },
        })
        .await
        .map_err(|e| match e {
            kv_core::Error::AlreadyExists(_) => KvsError::table_exists(&name),
            kv_core::Error::QuotaExceeded(_) => KvsError::too_many_tables(),
            e => e.into(),
        })?;
    for def in meta.lsi.iter().chain(meta.gsi.iter()) {
        ctx.engine
            .create_container(NewContainer {
                account: ctx.account.clone(),
                scope: index_scope(&table),
                name: def.name.clone(),
                kind: ContainerKind::Document,
                attrs: serde_json::to_value(def).map_err(|e| KvsError::internal(e.to_string()))?,
                limits: Limits {
                    account_group: "huawei-index".to_string(),
                    ..Default::default()
                },
            })
            .await?;
    }
    // CreateTableResponse has the request's fields: echo them.
    Ok(request.clone())
}

fn stored_request(table: &Table) -> Document {
    hex::decode(&table.meta.request_hex)
        .ok()
        .and_then(|b| kv_doc::decode_document(&b).ok())
        .unwrap_or_default()
}

fn run_time_info(table: &Table, status: &str) -> Document {
    let infos = |defs: &[IndexDef]| {
        Bson::Array(
            defs.iter()
                .map(|d| Bson::Document(doc! {"index_name": &d.name, "index_status": status}))
                .collect(),
        )
    };
    doc! {
        "table_info": {"table_status": status},
        "local_secondary_index_infos": infos(&table.meta.lsi),
        "global_secondary_index_infos": infos(&table.meta.gsi),
    }
}

fn describe(table: &Table, status: &str) -> Document {
    let req = stored_request(table);
    let mut out = doc! {"table_name": &table.name};
    let pk = req.get("primary_key_schema").cloned().unwrap_or_else(|| {
        Bson::Document(doc! {
            "shard_key_fields": wire::fields_to_wire(&table.meta.shard_fields),
            "sort_key_fields": wire::fields_to_wire(&table.meta.sort_fields),
        })
    });
    out.insert("primary_key_schema", pk);
    for key in [
        "local_secondary_index_schema",
        "global_secondary_index_schema",
    ] {
        out.insert(key, req.get(key).cloned().unwrap_or(Bson::Array(vec![])));
    }
    out.insert("run_time_info", run_time_info(table, status));
    for key in ["ttl_specification", "sse_specification"] {
        if let Some(v) = req.get(key) {
            out.insert(key, v.clone());
        }
    }
    out
}

pub async fn describe_table(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let name = wire::req_str(request, "table_name")?;
    let table = load_table(ctx, &name).await?;
    Ok(describe(&table, "active"))
}

pub async fn delete_table(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let name = wire::req_str(request, "table_name")?;
    let table = load_table(ctx, &name).await?;
    let reply = describe(&table, "deleting");
    // The table first: once it is gone no write can add index entries; then its indexes.
    ctx.engine
        .delete_container(&ctx.account, &table_scope(ctx.store()?), &name)
        .await
        .map_err(|e| match e {
            kv_core::Error::NotFound(_) => KvsError::no_such_table(&name),
            e => e.into(),
        })?;
    for (def, _) in &table.indexes {
        match ctx
            .engine
            .delete_container(&ctx.account, &index_scope(&table.container), &def.name)
            .await
        {
            Ok(_) | Err(kv_core::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(reply)
}

pub async fn list_table(ctx: &Ctx<'_>, request: &Document) -> Result<Document, KvsError> {
    let store = ctx.store()?;
    require_store(ctx, store).await?;
    let after = wire::opt_str(request, "cursor_name")?.filter(|c| !c.is_empty());
    let limit = wire::scan_limit(request)?;
    let (tables, more) = ctx
        .engine
        .list_containers(&ctx.account, &table_scope(store), after.as_deref(), limit)
        .await?;
    let mut reply = Document::new();
    if more {
        if let Some(last) = tables.last() {
            reply.insert("cursor_name", last.name.clone());
        }
    }
    reply.insert(
        "table_names",
        tables
            .iter()
            .map(|c| Bson::String(c.name.clone()))
            .collect::<Vec<_>>(),
    );
    Ok(reply)
}
