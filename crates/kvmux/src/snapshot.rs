//! Snapshots: every container and live item as JSON Lines, for `kvmux export`/`kvmux import`,
//! `GET /_kvmux/snapshot` and the seed files loaded at start-up.
//!
//! The dump is taken at the engine level (containers + items), so it covers all three dialects
//! without knowing them: Tencent and Aliyun namespaces hold flat values, Huawei tables hold BSON
//! documents, and Huawei's index containers are dumped like any other container. Lines:
//!
//! ```text
//! {"type":"header","format":2,"now":1700000000}
//! {"type":"container","id":7,"account":"dev","scope":"tencent/z","name":"ns","kind":"flat","attrs":{},"limits":{..}}
//! {"type":"item","container":7,"key":"greeting","value":"hello","expires_at":1700000600}
//! {"type":"item","container":9,"key_b64":"IGFubgAA","document":{"owner":"ann","n":{"$numberInt":"7"}},"expires_at":null}
//! ```
//!
//! Keys and values are written as text when they are UTF-8 and as base64 (`key_b64`,
//! `value_b64`) otherwise, so hand-written seed files stay readable. A value of a document
//! container (a Huawei table or index) that is a BSON document is written as `document`: MongoDB
//! canonical extended JSON in the document's field order, which gives back every BSON type
//! (int32, int64, double, binary, date ...) and the exact bytes on import; it is written so only
//! when it does (checked at export), else as `value_b64`. Format 1 files (before `document`,
//! BSON values as text or base64) import unchanged. `expires_at` is absolute
//! (engine clock, unix seconds), so TTLs survive the round trip; an item already expired at
//! import is skipped. Container ids are only labels inside one file: import creates containers
//! afresh and maps the ids, and a scope whose last `/`-segment names an exported container id (a
//! Huawei index belongs to `huawei-index/<table id>`) is rewritten to the new id. Containers are
//! therefore written with the ones that others refer to first.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::ops::Bound;

use base64::Engine as _;
use bytes::Bytes;
use kv_core::{
    Container, ContainerKind, Engine, ItemWrite, Limits, NewContainer, Precondition, ScanOptions,
};
use kv_huawei::extjson::{self, ExtJson};
use serde::{Deserialize, Serialize};

/// The format version written in the header line: 2 added `document` items. Import reads
/// [`OLDEST_FORMAT`] up to this.
pub const FORMAT: u32 = 2;
/// The oldest format import reads.
pub const OLDEST_FORMAT: u32 = 1;
/// Items written per engine commit on import.
const IMPORT_BATCH: usize = 256;
/// Items read per scan page on export.
const EXPORT_PAGE: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Header {
        format: u32,
        #[serde(default)]
        now: Option<u64>,
    },
    Container {
        id: u64,
        account: String,
        scope: String,
        name: String,
        kind: ContainerKind,
        #[serde(default)]
        attrs: serde_json::Value,
        #[serde(default)]
        limits: Limits,
        /// Creation and modification times (engine clock, unix ms), restored on import so a
        /// restore gives back Tencent's `CreatedOn`/`ModifiedOn`; absent in older files.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_at_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modified_at_ms: Option<u64>,
    },
    Item {
        container: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_b64: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value_b64: Option<String>,
        /// A BSON document value as canonical extended JSON (format 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document: Option<ExtJson>,
        #[serde(default)]
        expires_at: Option<u64>,
        /// When the item was last written (unix ms; Aliyun's `UpdateTime`), restored on import.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modified_at_ms: Option<u64>,
    },
}

/// What an export or import moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub containers: u64,
    pub items: u64,
    /// Import only: items not written (expired already, or the container existed in seed mode).
    pub skipped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("storage: {0}")]
    Engine(#[from] kv_core::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Something that shows progress (indicatif's bar in the CLI, nothing online).
pub trait Progress: Sync {
    fn set_total(&self, _items: u64) {}
    fn advance(&self, _items: u64) {}
}

/// No progress display.
pub struct Silent;
impl Progress for Silent {}

impl Progress for indicatif::ProgressBar {
    fn set_total(&self, items: u64) {
        self.set_length(items);
    }
    fn advance(&self, items: u64) {
        self.inc(items);
    }
}

fn text_or_b64(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Some(s.to_string()), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

/// Whether a container's scope refers to another container by id (its last `/`-segment is a
/// number): such containers are written after the ones they refer to.
fn scope_reference(scope: &str) -> Option<u64> {
    scope.rsplit('/').next()?.parse().ok()
}

/// Writes every container and live item of `engine` to `out`.
pub async fn export(
    engine: &Engine,
    out: &mut (dyn Write + Send),
    progress: &dyn Progress,
) -> Result<Counts, SnapshotError> {
    use futures_util::StreamExt;
    let mut total = 0;
    for c in engine
        .all_containers()
        .await?
        .iter()
        .filter(|c| !c.is_internal())
    {
        total += engine.usage(c).await?.items.max(0) as u64;
    }
    progress.set_total(total);
    let mut counts = Counts::default();
    let mut chunks = std::pin::pin!(export_stream(engine));
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        out.write_all(&chunk.bytes)?;
        counts.containers += chunk.containers;
        counts.items += chunk.items;
        progress.advance(chunk.items);
    }
    out.flush()?;
    Ok(counts)
}

/// One piece of a streamed dump: whole lines, and how many items they hold.
pub struct Chunk {
    pub bytes: Bytes,
    pub containers: u64,
    pub items: u64,
}

enum StreamState<E> {
    Start(E),
    Items {
        engine: E,
        containers: Vec<Container>,
        index: usize,
        start: Bound<Vec<u8>>,
    },
    Done,
}

/// The same dump as [`export`], as a stream of chunks (the header and container lines, then one
/// chunk per scan page), so `GET /_kvmux/snapshot` sends a large store without holding it in
/// memory. An error ends the stream after yielding it.
pub fn export_stream<'a, E>(
    engine: E,
) -> impl futures_util::Stream<Item = Result<Chunk, SnapshotError>> + Send + 'a
where
    E: std::ops::Deref<Target = Engine> + Send + 'a,
{
    futures_util::stream::unfold(StreamState::Start(engine), |state| async move {
        match state {
            StreamState::Done => None,
            StreamState::Start(engine) => match head_lines(&engine).await {
                Ok((bytes, containers)) => Some((
                    Ok(Chunk {
                        bytes,
                        containers: containers.len() as u64,
                        items: 0,
                    }),
                    StreamState::Items {
                        engine,
                        containers,
                        index: 0,
                        start: Bound::Unbounded,
                    },
                )),
                Err(e) => Some((Err(e), StreamState::Done)),
            },
            StreamState::Items {
                engine,
                containers,
                index,
                start,
            } => {
                let container = containers.get(index)?;
                let options = ScanOptions {
                    start,
                    end: Bound::Unbounded,
                    limit: EXPORT_PAGE,
                    reverse: false,
                };
                let page = match engine.scan(container, options).await {
                    Ok(page) => page,
                    Err(e) => return Some((Err(e.into()), StreamState::Done)),
                };
                let mut out = Vec::new();
                for item in &page.items {
                    if let Err(e) = write_line(&mut out, &item_line(container, item)) {
                        return Some((Err(e), StreamState::Done));
                    }
                }
                let items = page.items.len() as u64;
                let (index, start) = match (page.more, page.items.last()) {
                    (true, Some(last)) => (index, Bound::Excluded(last.key.clone())),
                    _ => (index + 1, Bound::Unbounded),
                };
                Some((
                    Ok(Chunk {
                        bytes: Bytes::from(out),
                        containers: 0,
                        items,
                    }),
                    StreamState::Items {
                        engine,
                        containers,
                        index,
                        start,
                    },
                ))
            }
        }
    })
}

/// The header line and every container line, and the containers in dump order.
async fn head_lines(engine: &Engine) -> Result<(Bytes, Vec<Container>), SnapshotError> {
    let containers = ordered_containers(engine).await?;
    let mut out = Vec::new();
    write_line(
        &mut out,
        &Line::Header {
            format: FORMAT,
            now: Some(engine.now()),
        },
    )?;
    for c in &containers {
        write_line(&mut out, &container_line(c))?;
    }
    Ok((Bytes::from(out), containers))
}

/// Every tenant's container, the ones that others refer to by id first (stable otherwise).
/// kvmux's own containers (the Aliyun upload staging, account `_kvmux`) are transient and not
/// dumped.
async fn ordered_containers(engine: &Engine) -> Result<Vec<Container>, SnapshotError> {
    let mut containers = engine.all_containers().await?;
    containers.retain(|c| !c.is_internal());
    let ids: std::collections::HashSet<u64> = containers.iter().map(|c| c.id).collect();
    containers.sort_by_key(|c| scope_reference(&c.scope).is_some_and(|id| ids.contains(&id)));
    Ok(containers)
}

fn container_line(c: &Container) -> Line {
    Line::Container {
        id: c.id,
        account: c.account.clone(),
        scope: c.scope.clone(),
        name: c.name.clone(),
        kind: c.kind.clone(),
        attrs: c.attrs.clone(),
        limits: c.limits.clone(),
        created_at_ms: Some(c.created_at_ms),
        modified_at_ms: Some(c.modified_at_ms),
    }
}

fn item_line(container: &Container, item: &kv_core::Item) -> Line {
    // A document container's key is an order-preserving binary encoding (kv-doc's keycode):
    // base64, never a string of control characters.
    let (key, key_b64, document) = match container.kind {
        ContainerKind::Document => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&item.key)),
            extjson::exact_document(&item.value),
        ),
        ContainerKind::Flat => {
            let (key, key_b64) = text_or_b64(&item.key);
            (key, key_b64, None)
        }
    };
    let (value, value_b64) = match document {
        Some(_) => (None, None),
        None => text_or_b64(&item.value),
    };
    Line::Item {
        container: container.id,
        key,
        key_b64,
        value,
        value_b64,
        document,
        expires_at: item.expires_at,
        modified_at_ms: Some(item.modified_at_ms),
    }
}

fn write_line(out: &mut (dyn Write + Send), line: &Line) -> Result<(), SnapshotError> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// How an import treats containers that already exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Restore: items are written into existing containers too, overwriting what is there.
    Overwrite,
    /// Seed: only containers the import creates get items, so a restart does not undo what the
    /// application changed since.
    SeedNewOnly,
}

struct Target {
    container: Container,
    writable: bool,
}

/// Reads a dump from `input` into `engine`.
pub async fn import(
    engine: &Engine,
    input: &mut (dyn BufRead + Send),
    mode: Mode,
    progress: &dyn Progress,
) -> Result<Counts, SnapshotError> {
    let mut targets: HashMap<u64, Target> = HashMap::new();
    let mut counts = Counts::default();
    let mut pending: Vec<(ItemWrite, Option<u64>)> = Vec::new();
    let mut pending_for: Option<u64> = None;
    let now = engine.now();
    let mut text = String::new();
    let mut number = 0;
    loop {
        text.clear();
        if input.read_line(&mut text)? == 0 {
            break;
        }
        number += 1;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        let bad = |message: String| SnapshotError::Line {
            line: number,
            message,
        };
        let line: Line = serde_json::from_str(trimmed).map_err(|e| bad(e.to_string()))?;
        match line {
            Line::Header { format, .. } => {
                if !(OLDEST_FORMAT..=FORMAT).contains(&format) {
                    return Err(bad(format!(
                        "snapshot format {format} is not supported (this kvmux reads \
                         {OLDEST_FORMAT} to {FORMAT})"
                    )));
                }
            }
            Line::Container {
                id,
                account,
                scope,
                name,
                kind,
                attrs,
                limits,
                created_at_ms,
                modified_at_ms,
            } => {
                if targets.contains_key(&id) {
                    return Err(bad(format!("container id {id} appears twice")));
                }
                let scope = match scope_reference(&scope).and_then(|old| targets.get(&old)) {
                    Some(referenced) => {
                        let cut = scope.rfind('/').map(|i| i + 1).unwrap_or(0);
                        format!("{}{}", &scope[..cut], referenced.container.id)
                    }
                    None => scope,
                };
                let created = engine
                    .create_container(NewContainer {
                        account: account.clone(),
                        scope: scope.clone(),
                        name: name.clone(),
                        kind,
                        attrs,
                        limits,
                    })
                    .await;
                let target = match created {
                    Ok(mut container) => {
                        if let Some(created_ms) = created_at_ms {
                            container = engine
                                .restore_container_times(
                                    &account,
                                    &scope,
                                    &name,
                                    created_ms,
                                    modified_at_ms.unwrap_or(created_ms),
                                )
                                .await?;
                        }
                        counts.containers += 1;
                        Target {
                            container,
                            writable: true,
                        }
                    }
                    Err(kv_core::Error::AlreadyExists(_)) => Target {
                        container: engine.container(&account, &scope, &name).await?,
                        writable: mode == Mode::Overwrite,
                    },
                    Err(kv_core::Error::Invalid(m)) => return Err(bad(m)),
                    Err(e) => return Err(e.into()),
                };
                targets.insert(id, target);
            }
            Line::Item {
                container,
                key,
                key_b64,
                value,
                value_b64,
                document,
                expires_at,
                modified_at_ms,
            } => {
                let key = text_or_bytes(key, key_b64, "key").map_err(bad)?;
                let value = match document {
                    None => text_or_bytes(value, value_b64, "value").map_err(bad)?,
                    Some(_) if value.is_some() || value_b64.is_some() => {
                        return Err(bad("give value, value_b64 or document, not two".into()))
                    }
                    Some(doc) => extjson::document_bytes(doc)
                        .map_err(|e| bad(format!("document is not a BSON document: {e}")))?,
                };
                let Some(target) = targets.get(&container) else {
                    return Err(bad(format!(
                        "item of container {container}, which no earlier line defines"
                    )));
                };
                if !target.writable || expires_at.is_some_and(|e| e <= now) {
                    counts.skipped += 1;
                    continue;
                }
                if pending_for != Some(container) || pending.len() >= IMPORT_BATCH {
                    flush(
                        engine,
                        &targets,
                        pending_for,
                        &mut pending,
                        &mut counts,
                        progress,
                    )
                    .await?;
                    pending_for = Some(container);
                }
                pending.push((
                    ItemWrite::Put {
                        key,
                        value: Bytes::from(value),
                        expires_at,
                        precondition: Precondition::None,
                    },
                    modified_at_ms,
                ));
            }
        }
    }
    flush(
        engine,
        &targets,
        pending_for,
        &mut pending,
        &mut counts,
        progress,
    )
    .await?;
    Ok(counts)
}

fn text_or_bytes(text: Option<String>, b64: Option<String>, what: &str) -> Result<Vec<u8>, String> {
    match (text, b64) {
        (Some(t), None) => Ok(t.into_bytes()),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| format!("{what}_b64 is not base64: {e}")),
        (Some(_), Some(_)) => Err(format!("give {what} or {what}_b64, not both")),
        (None, None) => Err(format!("an item needs {what} or {what}_b64")),
    }
}

async fn flush(
    engine: &Engine,
    targets: &HashMap<u64, Target>,
    container: Option<u64>,
    pending: &mut Vec<(ItemWrite, Option<u64>)>,
    counts: &mut Counts,
    progress: &dyn Progress,
) -> Result<(), SnapshotError> {
    let (Some(id), false) = (container, pending.is_empty()) else {
        return Ok(());
    };
    let Some(target) = targets.get(&id) else {
        return Ok(());
    };
    let writes = std::mem::take(pending);
    let n = writes.len() as u64;
    engine
        .write_items_modified_at(&target.container, writes)
        .await?;
    counts.items += n;
    progress.advance(n);
    Ok(())
}

/// Loads every `*.jsonl` file of `dir` in file-name order, in seed mode.
pub async fn load_seed_dir(
    engine: &Engine,
    dir: &std::path::Path,
) -> Result<Vec<(std::path::PathBuf, Counts)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("seed_dir {}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut loaded = Vec::new();
    for path in files {
        let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut reader = std::io::BufReader::new(file);
        let counts = import(engine, &mut reader, Mode::SeedNewOnly, &Silent)
            .await
            .map_err(|e| format!("seed {}: {e}", path.display()))?;
        loaded.push((path, counts));
    }
    Ok(loaded)
}

// ---------------------------------------------------------------------------------------------
// esa-cli's kv.json (`kvmux import|export --format esa-kv-json`)
// ---------------------------------------------------------------------------------------------

/// The dump format of `kvmux import|export`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// kvmux's own JSON Lines dump: every container of every dialect, TTLs kept.
    #[default]
    Jsonl,
    /// esa-cli's `kv.json`, `{"namespace": {"key": "value"}}`: one account's ESA namespaces, so
    /// data moves between `esa-cli dev` and kvmux (docs/EDGE.md has the mapping).
    EsaKvJson,
}

/// The flags `kvmux import` and `kvmux export` share.
#[derive(Debug, clap::Args)]
pub struct FormatArgs {
    /// `jsonl` (kvmux's dump, the default) or `esa-kv-json` (esa-cli's kv.json).
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// The account whose ESA namespaces `--format esa-kv-json` reads or writes (default `dev`).
    #[arg(long)]
    pub account: Option<String>,
}

impl FormatArgs {
    /// The account of an esa-kv-json transfer; `--account` with `jsonl` is an error, since a
    /// JSON Lines dump carries every account's data and names them itself.
    pub fn account(&self) -> Result<&str, String> {
        match (self.format, self.account.as_deref()) {
            (Format::Jsonl, Some(_)) => Err(
                "--account applies to --format esa-kv-json only (a JSON Lines dump names its \
                 accounts)"
                    .to_string(),
            ),
            (_, account) => Ok(account.unwrap_or("dev")),
        }
    }
}

/// What an esa-kv-json import or export moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EsaCounts {
    pub namespaces: u64,
    /// Import: namespaces that did not exist and were created.
    pub created: u64,
    pub items: u64,
    /// Export: items left out because the key or value is not UTF-8 (kv.json holds strings).
    pub skipped_binary: u64,
    /// Export: items whose TTL was dropped (kv.json has none).
    pub ttls_dropped: u64,
}

/// The bytes a kv.json value is stored as: a JSON string as its UTF-8 bytes (what the runtime's
/// `put(string)` stores and `GetKv` returns), any other JSON value as its compact JSON text.
pub fn esa_value_bytes(value: &serde_json::Value) -> Vec<u8> {
    match value {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn aliyun_error(e: kv_aliyun::error::ApiError) -> String {
    format!("{} ({})", e.message, e.code)
}

/// Imports esa-cli's kv.json `text` into `account`'s ESA namespaces (created when missing,
/// within ESA's quota; existing keys are overwritten, imported keys never expire). Everything is
/// checked before anything is written: a file with one bad namespace, key or value, or one that
/// would take the account over its namespace quota, changes nothing, and the error names it.
pub async fn import_esa_kv_json(
    engine: &Engine,
    account: &str,
    aliyun_options: &kv_aliyun::Options,
    text: &str,
) -> Result<EsaCounts, String> {
    use kv_aliyun::import::{EsaAccount, ESA_NAMESPACE_QUOTA};
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("kv.json is not valid JSON: {e}"))?;
    let serde_json::Value::Object(namespaces) = doc else {
        return Err(format!(
            "kv.json must be an object of namespaces, {{\"namespace\": {{\"key\": \"value\"}}}}; \
             it is {}",
            json_kind(&doc)
        ));
    };
    // Every namespace with its entries as bytes, all checked before the first write.
    type Entries<'a> = Vec<(&'a str, Vec<u8>)>;
    let mut plan: Vec<(&str, Entries)> = Vec::with_capacity(namespaces.len());
    for (name, entries) in &namespaces {
        EsaAccount::check_namespace_name(name)
            .map_err(|e| format!("namespace `{name}`: {}", aliyun_error(e)))?;
        let serde_json::Value::Object(entries) = entries else {
            return Err(format!(
                "namespace `{name}` must be an object of keys and values; it is {}",
                json_kind(entries)
            ));
        };
        let mut items = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let bytes = esa_value_bytes(value);
            EsaAccount::check_entry(key, &bytes)
                .map_err(|e| format!("namespace `{name}`, key `{key}`: {}", aliyun_error(e)))?;
            items.push((key.as_str(), bytes));
        }
        plan.push((name.as_str(), items));
    }
    let esa = EsaAccount::new(engine, account, aliyun_options);
    let existing: std::collections::HashSet<String> = esa
        .namespaces()
        .await
        .map_err(aliyun_error)?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let new: Vec<&str> = plan
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !existing.contains(*name))
        .collect();
    let total = existing.len() + new.len();
    if total as i64 > ESA_NAMESPACE_QUOTA {
        return Err(format!(
            "account `{account}` has {} ESA namespaces and kv.json adds {} ({}); ESA allows \
             {ESA_NAMESPACE_QUOTA} per account, so nothing was imported",
            existing.len(),
            new.len(),
            new.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut counts = EsaCounts::default();
    for (name, items) in plan {
        let (container, created) = esa
            .open_or_create(name)
            .await
            .map_err(|e| format!("namespace `{name}`: {}", aliyun_error(e)))?;
        counts.namespaces += 1;
        counts.created += u64::from(created);
        for (key, bytes) in items {
            esa.put(&container, key, Bytes::from(bytes))
                .await
                .map_err(|e| format!("namespace `{name}`, key `{key}`: {}", aliyun_error(e)))?;
            counts.items += 1;
        }
    }
    Ok(counts)
}

/// Writes `account`'s ESA namespaces as esa-cli's kv.json: each namespace an object of strings.
/// Expired items are not read; a key or value that is not UTF-8 cannot be a JSON string and is
/// left out (never written lossily), with `warn` naming namespace and key; TTLs are dropped
/// (kv.json has none). Both are counted.
pub async fn export_esa_kv_json(
    engine: &Engine,
    account: &str,
    out: &mut (dyn Write + Send),
    warn: &mut (dyn FnMut(String) + Send),
) -> Result<EsaCounts, String> {
    let esa = kv_aliyun::import::EsaAccount::new(engine, account, &kv_aliyun::Options::default());
    let mut doc = serde_json::Map::new();
    let mut counts = EsaCounts::default();
    for container in esa.namespaces().await.map_err(aliyun_error)? {
        let mut entries = serde_json::Map::new();
        let mut start = Bound::Unbounded;
        loop {
            let options = ScanOptions {
                start,
                end: Bound::Unbounded,
                limit: EXPORT_PAGE,
                reverse: false,
            };
            let page = engine
                .scan(&container, options)
                .await
                .map_err(|e| format!("namespace `{}`: {e}", container.name))?;
            for item in &page.items {
                let key = String::from_utf8_lossy(&item.key);
                match (
                    std::str::from_utf8(&item.key),
                    std::str::from_utf8(&item.value),
                ) {
                    (Ok(key), Ok(value)) => {
                        counts.items += 1;
                        counts.ttls_dropped += u64::from(item.expires_at.is_some());
                        entries.insert(key.to_string(), value.into());
                    }
                    (Err(_), _) => {
                        counts.skipped_binary += 1;
                        warn(format!(
                            "skipped namespace `{}` key `{key}`: the key is not valid UTF-8",
                            container.name
                        ));
                    }
                    (_, Err(_)) => {
                        counts.skipped_binary += 1;
                        warn(format!(
                            "skipped namespace `{}` key `{key}`: the value ({} bytes) is not \
                             valid UTF-8, and kv.json holds strings",
                            container.name,
                            item.value.len()
                        ));
                    }
                }
            }
            match (page.more, page.items.last()) {
                (true, Some(last)) => start = Bound::Excluded(last.key.clone()),
                _ => break,
            }
        }
        counts.namespaces += 1;
        doc.insert(container.name.clone(), serde_json::Value::Object(entries));
    }
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(|e| e.to_string())?;
    out.write_all(b"\n").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::Clock;

    fn engine(dir: &tempfile::TempDir) -> Engine {
        Engine::open_redb(&dir.path().join("db.redb"), false, Clock::new()).expect("engine")
    }

    async fn container(engine: &Engine, scope: &str, name: &str) -> Container {
        engine
            .create_container(NewContainer {
                account: "dev".into(),
                scope: scope.into(),
                name: name.into(),
                kind: ContainerKind::Flat,
                attrs: serde_json::json!({"remark": name}),
                limits: Limits::default(),
            })
            .await
            .expect("container")
    }

    #[tokio::test]
    async fn round_trip_keeps_binary_values_ttls_and_id_scopes() {
        let a = tempfile::tempdir().expect("tmp");
        let source = engine(&a);
        let table = container(&source, "huawei/store", "table").await;
        let index = container(&source, &format!("huawei-index/{}", table.id), "idx").await;
        let now = source.now();
        source
            .put(
                &table,
                b"\x00\xffbin",
                Bytes::from_static(b"\x01\x02"),
                Some(now + 100),
                Precondition::None,
            )
            .await
            .expect("put");
        source
            .put(
                &index,
                b"k",
                Bytes::from_static(b"text"),
                None,
                Precondition::None,
            )
            .await
            .expect("put");
        let mut dump = Vec::new();
        let exported = export(&source, &mut dump, &Silent).await.expect("export");
        assert_eq!((exported.containers, exported.items), (2, 2));

        let b = tempfile::tempdir().expect("tmp");
        let target = engine(&b);
        // An unrelated container first, so ids in the two engines differ.
        container(&target, "tencent/z", "other").await;
        let imported = import(&target, &mut dump.as_slice(), Mode::Overwrite, &Silent)
            .await
            .expect("import");
        assert_eq!((imported.containers, imported.items), (2, 2));
        let new_table = target
            .container("dev", "huawei/store", "table")
            .await
            .expect("table");
        let item = target
            .get(&new_table, b"\x00\xffbin")
            .await
            .expect("get")
            .expect("item");
        assert_eq!(item.value, Bytes::from_static(b"\x01\x02"));
        assert_eq!(item.expires_at, Some(now + 100));
        let new_index = target
            .container("dev", &format!("huawei-index/{}", new_table.id), "idx")
            .await
            .expect("index container follows the new table id");
        assert_eq!(new_index.attrs["remark"], "idx");
        assert!(target.get(&new_index, b"k").await.expect("get").is_some());
    }

    #[tokio::test]
    async fn the_internal_account_is_not_dumped() {
        let a = tempfile::tempdir().expect("tmp");
        let engine = engine(&a);
        let staging = engine
            .create_container(NewContainer {
                account: kv_core::INTERNAL_ACCOUNT.into(),
                scope: "aliyun-uploads".into(),
                name: "objects".into(),
                kind: ContainerKind::Flat,
                attrs: serde_json::json!({}),
                limits: Limits::default(),
            })
            .await
            .expect("container");
        engine
            .put(
                &staging,
                b"object/kvupload/x",
                Bytes::from_static(b"{}"),
                None,
                Precondition::None,
            )
            .await
            .expect("put");
        container(&engine, "tencent/z", "ns").await;
        let mut dump = Vec::new();
        let counts = export(&engine, &mut dump, &Silent).await.expect("export");
        assert_eq!((counts.containers, counts.items), (1, 0));
        let text = String::from_utf8(dump).expect("utf-8");
        assert!(
            !text.contains("_kvmux") && !text.contains("kvupload"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_stream_pages_through_containers_larger_than_a_page() {
        let a = tempfile::tempdir().expect("tmp");
        let engine = engine(&a);
        let big = container(&engine, "tencent/z", "big").await;
        let small = container(&engine, "tencent/z", "small").await;
        let n = EXPORT_PAGE * 2 + 7;
        let writes: Vec<ItemWrite> = (0..n)
            .map(|i| ItemWrite::Put {
                key: format!("k{i:05}").into_bytes(),
                value: Bytes::from_static(b"v"),
                expires_at: None,
                precondition: Precondition::None,
            })
            .collect();
        engine.write_items(&big, writes).await.expect("bulk");
        engine
            .put(
                &small,
                b"s",
                Bytes::from_static(b"v"),
                None,
                Precondition::None,
            )
            .await
            .expect("put");
        let mut dump = Vec::new();
        let counts = export(&engine, &mut dump, &Silent).await.expect("export");
        assert_eq!((counts.containers, counts.items), (2, n as u64 + 1));
        let text = String::from_utf8(dump).expect("utf-8");
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("\"container\":") && l.contains("\"key\":\"k"))
            .collect();
        assert_eq!(keys.len(), n, "every item of the big container once");
        assert!(keys[EXPORT_PAGE].contains(&format!("k{:05}", EXPORT_PAGE)));
        assert_eq!(text.lines().count(), 1 + 2 + n + 1);
    }

    #[tokio::test]
    async fn seed_mode_leaves_existing_containers_alone() {
        let a = tempfile::tempdir().expect("tmp");
        let engine = engine(&a);
        let seed = r#"{"type":"container","id":1,"account":"dev","scope":"tencent/z","name":"ns","kind":"flat"}
{"type":"item","container":1,"key":"k","value":"seeded"}
"#;
        let counts = import(&engine, &mut seed.as_bytes(), Mode::SeedNewOnly, &Silent)
            .await
            .expect("seed");
        assert_eq!(counts.items, 1);
        let ns = engine
            .container("dev", "tencent/z", "ns")
            .await
            .expect("ns");
        engine
            .put(
                &ns,
                b"k",
                Bytes::from_static(b"changed"),
                None,
                Precondition::None,
            )
            .await
            .expect("put");
        let again = import(&engine, &mut seed.as_bytes(), Mode::SeedNewOnly, &Silent)
            .await
            .expect("seed again");
        assert_eq!((again.containers, again.items, again.skipped), (0, 0, 1));
        let item = engine.get(&ns, b"k").await.expect("get").expect("item");
        assert_eq!(item.value, Bytes::from_static(b"changed"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Whatever the bytes of keys and values (text, binary, empty values) and whatever the
        /// expiries, export then import into a fresh engine gives back exactly the live items.
        #[test]
        fn any_items_survive_a_round_trip(
            items in proptest::collection::btree_map(
                proptest::collection::vec(proptest::num::u8::ANY, 1..12),
                (proptest::collection::vec(proptest::num::u8::ANY, 0..40), proptest::option::of(1u64..100_000)),
                0..40,
            )
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let a = tempfile::tempdir().expect("tmp");
                let source = engine(&a);
                let ns = container(&source, "tencent/z", "ns").await;
                let now = source.now();
                for (key, (value, ttl)) in &items {
                    source
                        .put(&ns, key, Bytes::from(value.clone()), ttl.map(|t| now + t), Precondition::None)
                        .await
                        .expect("put");
                }
                let mut dump = Vec::new();
                export(&source, &mut dump, &Silent).await.expect("export");
                let b = tempfile::tempdir().expect("tmp");
                let target = engine(&b);
                let counts = import(&target, &mut dump.as_slice(), Mode::Overwrite, &Silent).await.expect("import");
                assert_eq!(counts.items as usize, items.len());
                let copy = target.container("dev", "tencent/z", "ns").await.expect("ns");
                let page = target.scan(&copy, ScanOptions::prefix(b"", None, 1000)).await.expect("scan");
                let got: Vec<(Vec<u8>, Vec<u8>, Option<u64>)> = page
                    .items
                    .into_iter()
                    .map(|i| (i.key, i.value.to_vec(), i.expires_at))
                    .collect();
                let want: Vec<(Vec<u8>, Vec<u8>, Option<u64>)> = items
                    .iter()
                    .map(|(k, (v, ttl))| (k.clone(), v.clone(), ttl.map(|t| now + t)))
                    .collect();
                assert_eq!(got, want);
            });
        }
    }

    #[tokio::test]
    async fn bad_lines_are_refused_with_their_number() {
        let a = tempfile::tempdir().expect("tmp");
        let engine = engine(&a);
        for (text, expected) in [
            ("{\"type\":\"item\",\"container\":3,\"key\":\"k\",\"value\":\"v\"}", "line 1: item of container 3"),
            ("\n{nope", "line 2:"),
            ("{\"type\":\"header\",\"format\":99}", "format 99"),
            (
                "{\"type\":\"container\",\"id\":1,\"account\":\"a\",\"scope\":\"s\",\"name\":\"n\",\"kind\":\"flat\"}\n{\"type\":\"item\",\"container\":1,\"key\":\"k\"}",
                "line 2: an item needs value",
            ),
            (
                "{\"type\":\"container\",\"id\":1,\"account\":\"a\",\"scope\":\"s\",\"name\":\"n\",\"kind\":\"flat\"}\n{\"type\":\"item\",\"container\":1,\"key\":\"k\",\"value_b64\":\"***\"}",
                "line 2: value_b64 is not base64",
            ),
            (
                "{\"type\":\"container\",\"id\":1,\"account\":\"a\",\"scope\":\"s\",\"name\":\"n\",\"kind\":\"document\"}\n{\"type\":\"item\",\"container\":1,\"key\":\"k\",\"value\":\"v\",\"document\":{}}",
                "line 2: give value, value_b64 or document, not two",
            ),
            (
                "{\"type\":\"container\",\"id\":1,\"account\":\"a\",\"scope\":\"s\",\"name\":\"n\",\"kind\":\"document\"}\n{\"type\":\"item\",\"container\":1,\"key\":\"k\",\"document\":[1]}",
                "line 2: document is not a BSON document",
            ),
        ] {
            let err = import(&engine, &mut text.as_bytes(), Mode::Overwrite, &Silent)
                .await
                .expect_err(text)
                .to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
