//! The embedded default backend: one redb file under `data_dir`.
//!
//! Writes go through one writer thread that practises group commit: it takes every batch waiting
//! at that moment, checks and applies each in order inside one redb write transaction, makes that
//! transaction durable once, and only then answers every caller. One fsync thus pays for many
//! writers, and because each batch's checks run against the state left by the batches before it
//! in the same transaction, the result is exactly that of applying them one by one.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use super::{
    Batch, Check, CommitResult, Expired, Key, KeyRange, Page, Record, Rejected, Store, StoreStats,
    Write,
};
use crate::error::{Error, Result};

/// Records: key -> [version u64 BE][expires_at u64 BE, 0 = never][value bytes].
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
/// Expiry index: [expires_at u64 BE][record key] -> ().
const EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("expiry");
/// Counters: key -> i64.
const COUNTERS: TableDefinition<&[u8], i64> = TableDefinition::new("counters");
/// Large values stored as side files: blob id -> (), so files a crash left behind can be told apart.
const BLOBS: TableDefinition<u128, ()> = TableDefinition::new("blobs");
/// Store-level metadata, e.g. the last commit sequence number.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const LAST_VERSION: &str = "last_version";

/// How many waiting batches one group commit takes at most, so one slow group cannot starve the
/// callers that arrive while it runs.
const MAX_GROUP: usize = 512;

/// Values from this size on are kept in side files rather than in the B-tree (see the module doc).
pub const BLOB_MIN_BYTES: usize = 1 << 20;

/// How often a read retries when a blob its snapshot names was deleted by a later commit.
const BLOB_READ_ATTEMPTS: usize = 8;

/// While the last commit failed, how often the writer reopens the file and tries a tiny commit, so
/// the store heals (and `health` says so) once space returns even if no client writes.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Where a crash's (or a mismatched database's) unreferenced side files are moved, inside the
/// side-file directory: kept, not deleted, because they may be the only copy of a user's value.
const QUARANTINE_DIR: &str = "quarantine";

/// A value of a batch's `Write::Put` already written to its side file: the write's index in the
/// batch, the blob id, and the value's length.
#[derive(Clone, Copy, Debug)]
struct StagedBlob {
    write: usize,
    id: u128,
    len: u64,
}

enum WriterMsg {
    Commit(Batch, Vec<StagedBlob>, oneshot::Sender<CommitResult>),
    Reset(oneshot::Sender<Result<()>>),
    Close(oneshot::Sender<Result<()>>),
}

/// The open database, swappable. After one failed write (e.g. ENOSPC) redb latches every later
/// operation on that handle to `PreviousIo` until the file is closed and opened again, so a store
/// that kept its first handle stayed broken after space returned. The writer thread reopens it
/// instead; readers borrow the handle through the lock, so none is using it at the swap (redb also
/// locks its file, so the old handle must be gone before the new one opens).
struct DbSlot {
    db: RwLock<Option<Database>>,
    path: PathBuf,
    /// Opens the file: redb's own file backend, or in tests one that injects I/O faults.
    opener: Opener,
    /// Why the store cannot write: the last commit's error, cleared by the next commit that
    /// succeeds (see `Store::health`).
    failure: Mutex<Option<String>>,
}

/// How a [`DbSlot`] opens its database, at start and after every failed write.
type Opener = Box<dyn Fn() -> std::result::Result<Database, redb::DatabaseError> + Send + Sync>;

impl DbSlot {
    fn new(path: &Path, opener: Opener) -> Result<Self> {
        let db = Self::open_database(&opener)?;
        Ok(DbSlot {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            opener,
            failure: Mutex::new(None),
        })
    }

    /// Opens (or creates) the file and its tables, so read transactions never see them missing.
    fn open_database(opener: &Opener) -> Result<Database> {
        let db = opener()?;
        let tx = db.begin_write()?;
        {
            tx.open_table(RECORDS)?;
            tx.open_table(EXPIRY)?;
            tx.open_table(COUNTERS)?;
            tx.open_table(META)?;
            tx.open_table(BLOBS)?;
        }
        tx.commit()?;
        Ok(db)
    }

    /// Runs `f` on the current handle.
    fn with<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(db) => f(db),
            None => Err(Error::Internal(format!(
                "the database {} could not be reopened after a failed write: {}",
                self.path.display(),
                self.failure().unwrap_or_default()
            ))),
        }
    }

    /// Closes the current handle and opens the file again (redb recovers to the last commit).
    fn reopen(&self) -> Result<()> {
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        drop(guard.take());
        *guard = Some(Self::open_database(&self.opener)?);
        tracing::info!(path = %self.path.display(), "reopened the database after a failed write");
        Ok(())
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_failure(&self, failure: Option<String>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }

    /// Reopens the file if a failed write left it unusable; true when the handle can be used.
    fn heal(&self) -> Result<()> {
        if self.failure().is_none() {
            return Ok(());
        }
        self.reopen()
    }

    /// Whether the store can write again: the file system takes [`PROBE_BYTES`] beside the
    /// database (a tiny commit alone would fit in pages the file already has, and report a still
    /// full disk healthy), then one small commit goes through a reopened handle.
    fn probe(&self, durable: bool) -> Result<()> {
        let scratch = self.path.with_extension("probe");
        let written = (|| {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&scratch)?;
            file.write_all(&vec![0u8; PROBE_BYTES])?;
            file.sync_all()
        })();
        let _ = std::fs::remove_file(&scratch);
        written.map_err(|e| {
            Error::Internal(format!(
                "no room to write {PROBE_BYTES} bytes beside {}: {e}",
                self.path.display()
            ))
        })?;
        self.heal()?;
        self.with(|db| {
            let mut tx = db.begin_write()?;
            if !durable {
                tx.set_durability(Durability::None)
                    .map_err(|e| Error::Internal(format!("redb durability: {e}")))?;
            }
            {
                let mut meta = tx.open_table(META)?;
                let probes = meta.get(PROBES)?.map(|g| g.value()).unwrap_or(0);
                meta.insert(PROBES, probes.wrapping_add(1))?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

/// How much free space the health probe asks for before it calls the store writable again: one
/// large value's worth.
const PROBE_BYTES: usize = BLOB_MIN_BYTES;

/// A META entry the health probe rewrites (its value means nothing).
const PROBES: &str = "health_probes";

/// The redb backend. Cheap to share behind an `Arc`.
pub struct RedbStore {
    db: Arc<DbSlot>,
    path: PathBuf,
    blobs: Arc<BlobDir>,
    writer: std_mpsc::Sender<WriterMsg>,
}

/// The directory of side files for large values, named by blob id in hex.
struct BlobDir {
    dir: PathBuf,
    durable: bool,
}

impl BlobDir {
    fn path(&self, id: u128) -> PathBuf {
        self.dir.join(format!("{id:032x}"))
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::Internal(format!("{what} in {}: {e}", self.dir.display()))
    }

    /// Writes every large value of `batch` to a new side file (durably when the store is), and
    /// empties those values in the batch so the caller's copy is not held through the commit.
    fn stage(&self, batch: &mut Batch) -> Result<Vec<StagedBlob>> {
        use std::io::Write as _;
        let mut staged = Vec::new();
        for (index, write) in batch.writes.iter_mut().enumerate() {
            let Write::Put { value, .. } = write else {
                continue;
            };
            if value.len() < BLOB_MIN_BYTES {
                continue;
            }
            if staged.is_empty() {
                std::fs::create_dir_all(&self.dir).map_err(|e| self.io_error("creating", e))?;
            }
            let id = uuid::Uuid::new_v4().as_u128();
            let written = (|| {
                let mut file = std::fs::File::create_new(self.path(id))?;
                file.write_all(value)?;
                if self.durable {
                    file.sync_all()?;
                }
                Ok::<_, std::io::Error>(())
            })();
            if let Err(e) = written {
                self.discard(&staged);
                self.remove(&[id]);
                return Err(self.io_error("writing a blob", e));
            }
            staged.push(StagedBlob {
                write: index,
                id,
                len: value.len() as u64,
            });
            *value = Bytes::new();
        }
        if self.durable && !staged.is_empty() {
            // The new names must be durable too before the commit that refers to them.
            std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io_error("syncing", e))?;
        }
        Ok(staged)
    }

    /// The blob's bytes, or None when its file is not there (deleted by a later commit, or lost).
    fn read(&self, id: u128) -> Result<Option<Bytes>> {
        match std::fs::read(self.path(id)) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error("reading a blob", e)),
        }
    }

    /// Deletes the files of staged blobs whose batch was refused, failed or never sent.
    fn discard(&self, staged: &[StagedBlob]) {
        self.remove(&staged.iter().map(|s| s.id).collect::<Vec<_>>());
    }

    /// Deletes side files no committed record refers to any more. A failure only leaves a file
    /// behind, which the next open removes.
    fn remove(&self, ids: &[u128]) {
        for id in ids {
            if let Err(e) = std::fs::remove_file(self.path(*id)) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, blob = %format!("{id:032x}"), "removing a blob");
                }
            }
        }
    }

    /// The names of side files present (not the quarantine directory).
    fn side_files(&self) -> Result<Vec<(u128, PathBuf)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_error("listing", e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io_error("listing", e))?;
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(|n| u128::from_str_radix(n, 16).ok()) {
                found.push((id, entry.path()));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Moves the side files no committed record refers to (a crash between writing a blob and
    /// committing it, or a commit that finished before its deletions did) into `quarantine/`.
    /// Moved, not deleted: if the database is not the one these files belong to (restored from an
    /// older backup, say), they are the only copy of someone's values.
    fn quarantine_orphans(&self, db: &Database) -> Result<Vec<u128>> {
        let files = self.side_files()?;
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let tx = db.begin_read()?;
        let index = tx.open_table(BLOBS)?;
        let mut orphans = Vec::new();
        for (id, path) in files {
            if index.get(id)?.is_some() {
                continue;
            }
            let quarantine = self.dir.join(QUARANTINE_DIR);
            std::fs::create_dir_all(&quarantine).map_err(|e| self.io_error("quarantining", e))?;
            std::fs::rename(&path, quarantine.join(format!("{id:032x}")))
                .map_err(|e| self.io_error("quarantining", e))?;
            orphans.push(id);
        }
        Ok(orphans)
    }
}

/// Refuses to open a database file that is missing or empty while side files exist beside it:
/// redb would create a fresh, empty database, and every side file would then look like an orphan.
/// That start is more likely a lost or truncated database (wrong path, failed restore, disk
/// trouble) than an empty store, so nothing is created and nothing is moved; the operator decides.
fn refuse_suspicious_start(path: &Path, blobs: &BlobDir) -> Result<()> {
    let state = match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => return Ok(()),
        Ok(_) => "empty",
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "missing",
        Err(e) => return Err(Error::Internal(format!("reading {}: {e}", path.display()))),
    };
    let files = blobs.side_files()?;
    if files.is_empty() {
        return Ok(());
    }
    let examples: Vec<String> = files
        .iter()
        .take(3)
        .map(|(id, _)| format!("{id:032x}"))
        .collect();
    Err(Error::Internal(format!(
        "refusing to start: the database file {} is {state}, but {} holds {} large-value side \
         file(s) (e.g. {}) that belong to a database; starting would create an empty database \
         and orphan them. Restore the database file into {}, or move the side-file directory \
         away to start empty",
        path.display(),
        blobs.dir.display(),
        files.len(),
        examples.join(", "),
        path.parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    )))
}

/// How a redb file is opened.
#[derive(Clone, Copy, Debug)]
pub struct RedbOptions {
    /// fsync every group commit before answering. Off only for benchmarks that want to measure
    /// everything but the disk.
    pub durable: bool,
    /// redb's page cache. redb's own default (1 GiB) lets the gateway's memory grow with the data
    /// set; a bounded cache keeps RSS flat however much is stored, and the OS page cache still
    /// keeps hot file pages close. The default, 32 MiB, keeps a gateway holding a million 1 KiB
    /// items under 100 MB of RSS (measured: 64 MiB of cache cost 139 MB, 16 MiB 62 MB; redb's
    /// cache holds ~1.6× its nominal size in memory, docs/BENCHMARKS.md).
    pub cache_bytes: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            durable: true,
            cache_bytes: 32 << 20,
        }
    }
}

impl RedbStore {
    /// Opens (or creates) the database file with the default cache.
    pub fn open(path: &Path, durable: bool) -> Result<Self> {
        Self::open_with(
            path,
            RedbOptions {
                durable,
                ..RedbOptions::default()
            },
        )
    }

    /// Opens (or creates) the database file.
    pub fn open_with(path: &Path, options: RedbOptions) -> Result<Self> {
        let file = path.to_path_buf();
        let opener: Opener = Box::new(move || {
            redb::Builder::new()
                .set_cache_size(options.cache_bytes)
                .create(&file)
        });
        Self::open_through(path, options.durable, opener)
    }

    /// Opens the store at `path` with the database `opener` makes (side files live beside `path`).
    fn open_through(path: &Path, durable: bool, opener: Opener) -> Result<Self> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
            }
        }
        let blobs = Arc::new(BlobDir {
            dir: path.with_extension("blobs"),
            durable,
        });
        refuse_suspicious_start(path, &blobs)?;
        let db = Arc::new(DbSlot::new(path, opener)?);
        let orphans = db.with(|db| blobs.quarantine_orphans(db))?;
        if !orphans.is_empty() {
            tracing::warn!(
                orphans = orphans.len(),
                quarantine = %blobs.dir.join(QUARANTINE_DIR).display(),
                "moved side files no commit refers to into quarantine"
            );
        }
        let (writer, inbox) = std_mpsc::channel();
        let writer_db = db.clone();
        let writer_blobs = blobs.clone();
        std::thread::Builder::new()
            .name("kv-redb-writer".into())
            .spawn(move || run_writer(writer_db, writer_blobs, inbox, durable))
            .map_err(|e| Error::Internal(format!("spawning writer: {e}")))?;
        Ok(RedbStore {
            db,
            path: path.to_path_buf(),
            blobs,
            writer,
        })
    }

    fn send(&self, msg: WriterMsg) -> Result<()> {
        self.writer
            .send(msg)
            .map_err(|_| Error::Internal("the store is closed".into()))
    }
}

/// Bytes of the record header: version, then expiry (0 = never), both u64 BE. The version's top
/// bit marks a record whose value is a side file: then the header is followed by the value's
/// length (u64 BE) and the blob id (u128 BE) instead of the value.
const RECORD_HEADER: usize = 16;
const BLOB_FLAG: u64 = 1 << 63;
const BLOB_RECORD: usize = RECORD_HEADER + 8 + 16;

/// Writes a record straight into the space redb reserved for it: a value is copied once, into the
/// page, not first into an intermediate buffer.
fn write_record(out: &mut [u8], value: &[u8], expires_at: Option<u64>, version: u64) {
    out[..8].copy_from_slice(&version.to_be_bytes());
    out[8..RECORD_HEADER].copy_from_slice(&expires_at.unwrap_or(0).to_be_bytes());
    out[RECORD_HEADER..].copy_from_slice(value);
}

fn blob_record(blob: StagedBlob, expires_at: Option<u64>, version: u64) -> [u8; BLOB_RECORD] {
    let mut out = [0u8; BLOB_RECORD];
    out[..8].copy_from_slice(&(version | BLOB_FLAG).to_be_bytes());
    out[8..RECORD_HEADER].copy_from_slice(&expires_at.unwrap_or(0).to_be_bytes());
    out[RECORD_HEADER..RECORD_HEADER + 8].copy_from_slice(&blob.len.to_be_bytes());
    out[RECORD_HEADER + 8..].copy_from_slice(&blob.id.to_be_bytes());
    out
}

/// Where a record's value is.
enum Body<'a> {
    Inline(&'a [u8]),
    Blob { id: u128, len: u64 },
}

impl Body<'_> {
    fn len(&self) -> u64 {
        match self {
            Body::Inline(v) => v.len() as u64,
            Body::Blob { len, .. } => *len,
        }
    }

    fn blob(&self) -> Option<u128> {
        match self {
            Body::Blob { id, .. } => Some(*id),
            Body::Inline(_) => None,
        }
    }
}

fn corrupt() -> Error {
    Error::Internal("corrupt record header".into())
}

fn be_u64(raw: &[u8]) -> Result<u64> {
    raw.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt())
}

/// Splits a stored record into version, expiry and where its value is.
fn decode(raw: &[u8]) -> Result<(u64, Option<u64>, Body<'_>)> {
    if raw.len() < RECORD_HEADER {
        return Err(corrupt());
    }
    let tagged = be_u64(&raw[..8])?;
    let expires = be_u64(&raw[8..RECORD_HEADER])?;
    let expires_at = (expires != 0).then_some(expires);
    if tagged & BLOB_FLAG == 0 {
        return Ok((tagged, expires_at, Body::Inline(&raw[RECORD_HEADER..])));
    }
    if raw.len() != BLOB_RECORD {
        return Err(corrupt());
    }
    let len = be_u64(&raw[RECORD_HEADER..RECORD_HEADER + 8])?;
    let id = raw[RECORD_HEADER + 8..]
        .try_into()
        .map(u128::from_be_bytes)
        .map_err(|_| corrupt())?;
    Ok((tagged & !BLOB_FLAG, expires_at, Body::Blob { id, len }))
}

fn decode_header(raw: &[u8]) -> Result<(u64, Option<u64>)> {
    decode(raw).map(|(version, expires_at, _)| (version, expires_at))
}

/// A record whose side file was not there when its snapshot was read.
struct MissingBlob {
    key: Vec<u8>,
    id: u128,
}

/// The record, reading a side file when the value is one; `Err(MissingBlob)` when that file is
/// not there (usually deleted by a commit later than the caller's snapshot: the caller reads again).
fn decode_record(
    key: &[u8],
    raw: &[u8],
    blobs: &BlobDir,
) -> Result<std::result::Result<Record, MissingBlob>> {
    let (version, expires_at, body) = decode(raw)?;
    let value = match body {
        Body::Inline(v) => Bytes::copy_from_slice(v),
        Body::Blob { id, .. } => match blobs.read(id)? {
            Some(v) => v,
            None => {
                return Ok(Err(MissingBlob {
                    key: key.to_vec(),
                    id,
                }))
            }
        },
    };
    Ok(Ok(Record {
        value,
        expires_at,
        version,
    }))
}

/// How an error names a store key: the item and its container for item keys, escaped bytes
/// otherwise.
fn describe_key(key: &[u8]) -> String {
    match crate::keys::split_item(key) {
        Some((container, item)) => format!(
            "item \"{}\" of container {container:016x}",
            item.escape_ascii()
        ),
        None => format!("record \"{}\"", key.escape_ascii()),
    }
}

/// Runs a read until it finds no blob deleted under it. A missing side file is told apart from a
/// racing delete by reading the record again: if a fresh snapshot still names the same file, the
/// file is lost (deleted by hand, a bad restore), and that is reported as `Internal` naming the
/// item, at once, instead of retrying and then failing with a message that names nothing.
fn with_blob_retry<T>(
    db: &DbSlot,
    blobs: &BlobDir,
    mut read: impl FnMut() -> Result<std::result::Result<T, MissingBlob>>,
) -> Result<T> {
    for _ in 0..BLOB_READ_ATTEMPTS {
        let missing = match read()? {
            Ok(done) => return Ok(done),
            Err(missing) => missing,
        };
        let still_named = db.with(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(RECORDS)?;
            let raw = table.get(missing.key.as_slice())?;
            Ok(match raw {
                Some(raw) => decode(raw.value())?.2.blob() == Some(missing.id),
                None => false,
            })
        })?;
        if still_named {
            tracing::error!(
                item = %describe_key(&missing.key),
                blob = %format!("{:032x}", missing.id),
                "a large value's side file is missing"
            );
            return Err(Error::Internal(format!(
                "the value of {} is lost: its side file {:032x} is missing from {}",
                describe_key(&missing.key),
                missing.id,
                blobs.dir.display()
            )));
        }
    }
    Err(Error::Internal(
        "a large value kept changing while being read".into(),
    ))
}

fn expiry_key(expires_at: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&expires_at.to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn bound_ref(b: &Bound<Key>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn run_writer(
    db: Arc<DbSlot>,
    blobs: Arc<BlobDir>,
    inbox: std_mpsc::Receiver<WriterMsg>,
    durable: bool,
) {
    let mut closed = false;
    loop {
        // While writes fail, wake up now and then to see whether they work again.
        let first = if db.failure().is_some() && !closed {
            match inbox.recv_timeout(PROBE_INTERVAL) {
                Ok(msg) => msg,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    let _ = record_outcome(&db, db.probe(durable));
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match inbox.recv() {
                Ok(msg) => msg,
                Err(_) => break,
            }
        };
        let mut group = Vec::new();
        let mut control = Vec::new();
        match first {
            WriterMsg::Commit(b, staged, tx) => group.push((b, staged, tx)),
            other => control.push(other),
        }
        while group.len() < MAX_GROUP && control.is_empty() {
            match inbox.try_recv() {
                Ok(WriterMsg::Commit(b, staged, tx)) => group.push((b, staged, tx)),
                Ok(other) => control.push(other),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            if closed {
                for (_, staged, reply) in group {
                    blobs.discard(&staged);
                    let _ = reply.send(Err(Error::Internal("the store is closed".into())));
                }
            } else {
                commit_group(&db, &blobs, group, durable);
            }
        }
        for msg in control {
            match msg {
                WriterMsg::Reset(reply) => {
                    let _ = reply.send(if closed {
                        Err(Error::Internal("closed".into()))
                    } else {
                        let reset = db.heal().and_then(|()| db.with(|d| reset_all(d, &blobs)));
                        record_outcome(&db, reset)
                    });
                }
                WriterMsg::Close(reply) => {
                    closed = true;
                    let _ = reply.send(Ok(()));
                }
                WriterMsg::Commit(..) => unreachable!("commits are grouped above"),
            }
        }
    }
}

/// The tables one group commit works on, opened once per write transaction.
struct Tables<'txn> {
    records: redb::Table<'txn, &'static [u8], &'static [u8]>,
    expiry: redb::Table<'txn, &'static [u8], ()>,
    counters: redb::Table<'txn, &'static [u8], i64>,
    blobs: redb::Table<'txn, u128, ()>,
    /// Blobs whose records this transaction removed or replaced: deleted once it commits.
    superseded: Vec<u128>,
}

type Waiting = (Batch, Vec<StagedBlob>, oneshot::Sender<CommitResult>);

/// What a group commit decided for each batch, and the blobs its commit superseded.
type GroupOutcome = (Vec<std::result::Result<u64, Rejected>>, Vec<u128>);

/// Notes whether a write transaction committed, for `health` and for the writer's next start.
fn record_outcome<T>(db: &DbSlot, result: Result<T>) -> Result<T> {
    match &result {
        Ok(_) => {
            if db.failure().is_some() {
                tracing::info!("the store commits again");
                db.set_failure(None);
            }
        }
        Err(e) => db.set_failure(Some(e.to_string())),
    }
    result
}

fn commit_group(db: &DbSlot, blobs: &BlobDir, group: Vec<Waiting>, durable: bool) {
    let run = |db: &Database| -> Result<GroupOutcome> {
        let mut tx = db.begin_write()?;
        if !durable {
            tx.set_durability(Durability::None)
                .map_err(|e| Error::Internal(format!("redb durability: {e}")))?;
        }
        let mut results = Vec::with_capacity(group.len());
        let superseded = {
            let mut meta = tx.open_table(META)?;
            let mut last_version = meta.get(LAST_VERSION)?.map(|g| g.value()).unwrap_or(0);
            // The tables are opened once for the whole group, not once per batch.
            let mut tables = Tables {
                records: tx.open_table(RECORDS)?,
                expiry: tx.open_table(EXPIRY)?,
                counters: tx.open_table(COUNTERS)?,
                blobs: tx.open_table(BLOBS)?,
                superseded: Vec::new(),
            };
            for (batch, staged, _) in &group {
                match check_batch(&tables, batch)? {
                    Some(rejected) => results.push(Err(rejected)),
                    None => {
                        last_version += 1;
                        apply_batch(&mut tables, batch, staged, last_version)?;
                        results.push(Ok(last_version));
                    }
                }
            }
            meta.insert(LAST_VERSION, last_version)?;
            tables.superseded
        };
        tx.commit()?;
        Ok((results, superseded))
    };
    // A failed commit leaves redb's handle unusable; `heal` reopens it before this group runs.
    let outcome = record_outcome(db, db.heal().and_then(|()| db.with(run)));
    match outcome {
        Ok((results, superseded)) => {
            blobs.remove(&superseded);
            for ((_, staged, reply), result) in group.into_iter().zip(results) {
                if result.is_err() {
                    blobs.discard(&staged);
                }
                let _ = reply.send(Ok(result));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            for (_, staged, reply) in group {
                blobs.discard(&staged);
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// One entry of a redb range iterator over the records table.
type RangeEntry<'a> = std::result::Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

/// Checks every precondition and counter limit of `batch` against the transaction's current state
/// (which includes earlier batches of the same group). Returns the first reason to reject it.
fn check_batch(tables: &Tables<'_>, batch: &Batch) -> Result<Option<Rejected>> {
    let (records, counters) = (&tables.records, &tables.counters);
    for check in &batch.checks {
        let holds = match check {
            Check::Absent(k) => records.get(k.as_slice())?.is_none(),
            Check::Present(k) => records.get(k.as_slice())?.is_some(),
            Check::AtVersion(k, v) => match records.get(k.as_slice())? {
                Some(raw) => decode_header(raw.value())?.0 == *v,
                None => false,
            },
            Check::CounterEquals(k, v) => {
                counters.get(k.as_slice())?.map(|g| g.value()).unwrap_or(0) == *v
            }
        };
        if !holds {
            return Ok(Some(Rejected::Check(check.clone())));
        }
    }
    for (counter, delta, (max, quota)) in batch.limited_counter_growth() {
        let current = counters.get(counter)?.map(|g| g.value()).unwrap_or(0);
        if current.saturating_add(delta) > max {
            return Ok(Some(Rejected::Quota(quota)));
        }
    }
    Ok(None)
}

impl Tables<'_> {
    /// Drops a removed record's expiry index entry and blob, if it had them.
    fn forget(&mut self, key: &[u8], expires_at: Option<u64>, blob: Option<u128>) -> Result<()> {
        if let Some(exp) = expires_at {
            self.expiry.remove(expiry_key(exp, key).as_slice())?;
        }
        if let Some(id) = blob {
            self.blobs.remove(id)?;
            self.superseded.push(id);
        }
        Ok(())
    }

    fn remove_record(&mut self, key: &[u8]) -> Result<()> {
        let removed = match self.records.remove(key)? {
            Some(old) => {
                let (_, expires_at, body) = decode(old.value())?;
                Some((expires_at, body.blob()))
            }
            None => None,
        };
        match removed {
            Some((expires_at, blob)) => self.forget(key, expires_at, blob),
            None => Ok(()),
        }
    }
}

fn apply_batch(
    tables: &mut Tables<'_>,
    batch: &Batch,
    staged: &[StagedBlob],
    version: u64,
) -> Result<()> {
    for (index, write) in batch.writes.iter().enumerate() {
        match write {
            Write::Put {
                key,
                value,
                expires_at,
            } => {
                tables.remove_record(key)?;
                match staged.iter().find(|s| s.write == index) {
                    Some(blob) => {
                        let record = blob_record(*blob, *expires_at, version);
                        tables.records.insert(key.as_slice(), record.as_slice())?;
                        tables.blobs.insert(blob.id, ())?;
                    }
                    None => {
                        let mut slot = tables
                            .records
                            .insert_reserve(key.as_slice(), RECORD_HEADER + value.len())?;
                        write_record(slot.as_mut(), value, *expires_at, version);
                    }
                }
                if let Some(exp) = expires_at {
                    tables.expiry.insert(expiry_key(*exp, key).as_slice(), ())?;
                }
            }
            Write::Delete { key } => tables.remove_record(key)?,
            Write::DeleteRange { start, end } => {
                let mut doomed = Vec::new();
                for entry in tables
                    .records
                    .range::<&[u8]>(start.as_slice()..end.as_slice())?
                {
                    let (k, v) = entry?;
                    let (_, expires_at, body) = decode(v.value())?;
                    doomed.push((k.value().to_vec(), expires_at, body.blob()));
                }
                for (k, expires_at, blob) in doomed {
                    tables.records.remove(k.as_slice())?;
                    tables.forget(&k, expires_at, blob)?;
                }
            }
            Write::Add { counter, delta, .. } => {
                let current = tables
                    .counters
                    .get(counter.as_slice())?
                    .map(|g| g.value())
                    .unwrap_or(0);
                let next = current.saturating_add(*delta);
                if next == 0 {
                    tables.counters.remove(counter.as_slice())?;
                } else {
                    tables.counters.insert(counter.as_slice(), next)?;
                }
            }
            Write::ResetCounter { counter } => {
                tables.counters.remove(counter.as_slice())?;
            }
        }
    }
    Ok(())
}

fn reset_all(db: &Database, blobs: &BlobDir) -> Result<()> {
    let tx = db.begin_write()?;
    let mut dropped = Vec::new();
    {
        let index = tx.open_table(BLOBS)?;
        for entry in index.iter()? {
            dropped.push(entry?.0.value());
        }
    }
    tx.delete_table(RECORDS)?;
    tx.delete_table(EXPIRY)?;
    tx.delete_table(COUNTERS)?;
    tx.delete_table(BLOBS)?;
    {
        tx.open_table(RECORDS)?;
        tx.open_table(EXPIRY)?;
        tx.open_table(COUNTERS)?;
        tx.open_table(BLOBS)?;
    }
    tx.commit()?;
    blobs.remove(&dropped);
    Ok(())
}

impl Store for RedbStore {
    fn get_many<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<Option<Record>>>> {
        let result = with_blob_retry(&self.db, &self.blobs, || {
            self.db.with(|db| {
                let tx = db.begin_read()?;
                let table = tx.open_table(RECORDS)?;
                let mut found = Vec::with_capacity(keys.len());
                for k in keys {
                    match table.get(k.as_slice())? {
                        None => found.push(None),
                        Some(g) => match decode_record(k, g.value(), &self.blobs)? {
                            Ok(record) => found.push(Some(record)),
                            Err(missing) => return Ok(Err(missing)),
                        },
                    }
                }
                Ok(Ok(found))
            })
        });
        async move { result }.boxed()
    }

    fn scan(
        &self,
        range: KeyRange,
        limit: usize,
        reverse: bool,
        now: u64,
    ) -> BoxFuture<'_, Result<Page>> {
        let result = with_blob_retry(&self.db, &self.blobs, || {
            self.db.with(|db| {
                let tx = db.begin_read()?;
                let table = tx.open_table(RECORDS)?;
                let bounds = (bound_ref(&range.start), bound_ref(&range.end));
                let iter = table.range::<&[u8]>(bounds)?;
                let mut page = Page::default();
                // Ok(Ok(go on)), or Ok(Err(_)) when a blob vanished and the page must be read again.
                let mut push =
                    |entry: RangeEntry| -> Result<std::result::Result<bool, MissingBlob>> {
                        let (k, v) = entry?;
                        let (_, expires_at) = decode_header(v.value())?;
                        if expires_at.is_some_and(|exp| exp <= now) {
                            return Ok(Ok(true));
                        }
                        if page.records.len() == limit {
                            page.more = true;
                            return Ok(Ok(false));
                        }
                        let record = match decode_record(k.value(), v.value(), &self.blobs)? {
                            Ok(record) => record,
                            Err(missing) => return Ok(Err(missing)),
                        };
                        page.records.push((k.value().to_vec(), record));
                        Ok(Ok(true))
                    };
                let entries: Box<dyn Iterator<Item = RangeEntry>> = if reverse {
                    Box::new(iter.rev())
                } else {
                    Box::new(iter)
                };
                for entry in entries {
                    match push(entry)? {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(missing) => return Ok(Err(missing)),
                    }
                }
                Ok(Ok(page))
            })
        });
        async move { result }.boxed()
    }

    fn count(&self, range: KeyRange, now: u64) -> BoxFuture<'_, Result<u64>> {
        let result = self.db.with(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(RECORDS)?;
            let bounds = (bound_ref(&range.start), bound_ref(&range.end));
            let mut live = 0u64;
            for entry in table.range::<&[u8]>(bounds)? {
                let (_, v) = entry?;
                let (_, expires_at) = decode_header(v.value())?;
                if expires_at.is_none_or(|exp| exp > now) {
                    live += 1;
                }
            }
            Ok(live)
        });
        async move { result }.boxed()
    }

    fn counters<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<i64>>> {
        let result = self.db.with(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(COUNTERS)?;
            keys.iter()
                .map(|k| Ok(table.get(k.as_slice())?.map(|g| g.value()).unwrap_or(0)))
                .collect()
        });
        async move { result }.boxed()
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, CommitResult> {
        async move {
            let mut batch = batch;
            let large = batch
                .writes
                .iter()
                .any(|w| matches!(w, Write::Put { value, .. } if value.len() >= BLOB_MIN_BYTES));
            let staged = if large {
                // Writing and syncing megabytes is blocking work; keep it off the async workers.
                let blobs = self.blobs.clone();
                let (staged, returned) = tokio::task::spawn_blocking(move || {
                    let staged = blobs.stage(&mut batch);
                    (staged, batch)
                })
                .await
                .map_err(|e| Error::Internal(format!("blob writer: {e}")))?;
                batch = returned;
                staged?
            } else {
                Vec::new()
            };
            let (tx, rx) = oneshot::channel();
            if let Err(e) = self.send(WriterMsg::Commit(batch, staged.clone(), tx)) {
                self.blobs.discard(&staged);
                return Err(e);
            }
            rx.await
                .map_err(|_| Error::Internal("the writer stopped".into()))?
        }
        .boxed()
    }

    fn expired(&self, now: u64, max: usize) -> BoxFuture<'_, Result<Vec<Expired>>> {
        let result = self.db.with(|db| {
            let tx = db.begin_read()?;
            let index = tx.open_table(EXPIRY)?;
            let records = tx.open_table(RECORDS)?;
            let end = (now.saturating_add(1)).to_be_bytes();
            let mut out = Vec::new();
            for entry in index.range::<&[u8]>(..&end[..])? {
                if out.len() >= max {
                    break;
                }
                let (k, _) = entry?;
                let key = k.value()[8..].to_vec();
                if let Some(raw) = records.get(key.as_slice())? {
                    let (version, _, body) = decode(raw.value())?;
                    out.push(Expired {
                        key,
                        version,
                        value_len: body.len(),
                    });
                }
            }
            Ok(out)
        });
        async move { result }.boxed()
    }

    fn reset(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let (tx, rx) = oneshot::channel();
            self.send(WriterMsg::Reset(tx))?;
            rx.await
                .map_err(|_| Error::Internal("the writer stopped".into()))?
        }
        .boxed()
    }

    fn stats(&self) -> BoxFuture<'_, Result<StoreStats>> {
        let result = self.db.with(|db| {
            use redb::ReadableTableMetadata;
            let tx = db.begin_read()?;
            let records = tx.open_table(RECORDS)?.len()?;
            let file_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
            Ok(StoreStats {
                records,
                file_bytes,
            })
        });
        async move { result }.boxed()
    }

    /// Err with the last commit's error while commits fail (disk full, I/O error) and none has
    /// succeeded since; the writer reopens the file and probes every second meanwhile.
    fn health(&self) -> std::result::Result<(), String> {
        match self.db.failure() {
            None => Ok(()),
            Some(e) => Err(format!("{}: cannot write: {e}", self.path.display())),
        }
    }

    /// redb locks its file: no other process can write it while this store is open.
    fn sole_writer(&self) -> bool {
        true
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let (tx, rx) = oneshot::channel();
            self.send(WriterMsg::Close(tx))?;
            rx.await
                .map_err(|_| Error::Internal("the writer stopped".into()))?
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(fill: u8) -> Bytes {
        Bytes::from(vec![fill; BLOB_MIN_BYTES + 17])
    }

    fn put(key: &[u8], value: Bytes, expires_at: Option<u64>) -> Write {
        Write::Put {
            key: key.to_vec(),
            value,
            expires_at,
        }
    }

    fn batch(writes: Vec<Write>) -> Batch {
        Batch {
            checks: Vec::new(),
            writes,
        }
    }

    /// The files present in `dir`, by name.
    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| {
                    let e = e.ok()?;
                    e.file_type().ok()?.is_file().then_some(())?;
                    e.file_name().into_string().ok()
                })
                .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The blob files present, by name.
    fn blob_files(store: &RedbStore) -> Vec<String> {
        files_in(&store.blobs.dir)
    }

    /// Opens `path` again once the closed store's writer thread has let go of the file lock.
    async fn reopen(path: &Path) -> Result<RedbStore> {
        let mut reopened = RedbStore::open(path, true);
        for _ in 0..200 {
            match &reopened {
                Err(Error::Internal(m)) if m.contains("already open") => {}
                _ => break,
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            reopened = RedbStore::open(path, true);
        }
        reopened
    }

    async fn commit(store: &RedbStore, b: Batch) -> std::result::Result<u64, Rejected> {
        store.commit(b).await.expect("store healthy")
    }

    #[tokio::test]
    async fn large_values_live_in_side_files_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("kv.redb"), true).unwrap();
        let small = Bytes::from_static(b"small");
        let v1 = commit(
            &store,
            batch(vec![
                put(b"a", big(1), Some(50)),
                put(b"b", small.clone(), None),
            ]),
        )
        .await
        .unwrap();
        assert_eq!(
            blob_files(&store).len(),
            1,
            "only the large value became a file"
        );
        let got = store
            .get_many(&[b"a".to_vec(), b"b".to_vec()])
            .await
            .unwrap();
        let a = got[0].clone().unwrap();
        assert_eq!((a.value, a.version, a.expires_at), (big(1), v1, Some(50)));
        assert_eq!(got[1].clone().unwrap().value, small);
        let page = store
            .scan(KeyRange::prefix(b""), 10, false, 0)
            .await
            .unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[0].1.value, big(1));
        let expired = store.expired(60, 10).await.unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].value_len, big(1).len() as u64);
        // A version check sees the real version, not the blob marker.
        let checked = Batch {
            checks: vec![Check::AtVersion(b"a".to_vec(), v1)],
            writes: vec![put(b"c", Bytes::from_static(b"x"), None)],
        };
        assert!(commit(&store, checked).await.is_ok());
    }

    #[tokio::test]
    async fn superseded_deleted_and_rejected_blobs_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("kv.redb"), false).unwrap();
        commit(&store, batch(vec![put(b"a", big(1), None)]))
            .await
            .unwrap();
        let first = blob_files(&store);
        commit(&store, batch(vec![put(b"a", big(2), None)]))
            .await
            .unwrap();
        let second = blob_files(&store);
        assert_eq!(second.len(), 1);
        assert_ne!(first, second, "the overwritten value's file is gone");
        commit(
            &store,
            batch(vec![put(b"a", Bytes::from_static(b"tiny"), None)]),
        )
        .await
        .unwrap();
        assert!(
            blob_files(&store).is_empty(),
            "a small overwrite drops the file"
        );

        let refused = Batch {
            checks: vec![Check::Present(b"missing".to_vec())],
            writes: vec![put(b"z", big(3), None)],
        };
        assert!(matches!(
            commit(&store, refused).await,
            Err(Rejected::Check(_))
        ));
        assert!(
            blob_files(&store).is_empty(),
            "a refused batch keeps no file"
        );

        commit(
            &store,
            batch(vec![put(b"r1", big(4), None), put(b"r2", big(5), None)]),
        )
        .await
        .unwrap();
        commit(&store, batch(vec![put(b"d", big(6), None)]))
            .await
            .unwrap();
        assert_eq!(blob_files(&store).len(), 3);
        commit(
            &store,
            batch(vec![Write::DeleteRange {
                start: b"r".to_vec(),
                end: b"s".to_vec(),
            }]),
        )
        .await
        .unwrap();
        assert_eq!(blob_files(&store).len(), 1);
        commit(&store, batch(vec![Write::Delete { key: b"d".to_vec() }]))
            .await
            .unwrap();
        assert!(blob_files(&store).is_empty());
        assert_eq!(store.get_many(&[b"d".to_vec()]).await.unwrap(), vec![None]);

        commit(&store, batch(vec![put(b"e", big(7), None)]))
            .await
            .unwrap();
        store.reset().await.unwrap();
        assert!(blob_files(&store).is_empty(), "reset drops every file");
    }

    /// redb's in-memory backend behind a switch that makes every write fail as a full disk does,
    /// so the disk-full recovery is covered without mounting a file system (tests/disk_full.rs
    /// does that too, as root).
    #[derive(Debug)]
    struct FullDisk {
        mem: Arc<redb::backends::InMemoryBackend>,
        full: Arc<std::sync::atomic::AtomicBool>,
    }

    impl FullDisk {
        fn check(&self) -> std::io::Result<()> {
            if self.full.load(std::sync::atomic::Ordering::SeqCst) {
                Err(std::io::ErrorKind::StorageFull.into())
            } else {
                Ok(())
            }
        }
    }

    impl redb::StorageBackend for FullDisk {
        fn len(&self) -> std::io::Result<u64> {
            self.mem.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
            self.mem.read(offset, out)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            if len > self.mem.len()? {
                self.check()?;
            }
            self.mem.set_len(len)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            self.check()?;
            self.mem.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.check()?;
            self.mem.write(offset, data)
        }
    }

    #[tokio::test]
    async fn after_a_disk_full_commit_writes_resume_and_health_recovers() {
        use redb::StorageBackend as _;
        let dir = tempfile::tempdir().unwrap();
        let mem = Arc::new(redb::backends::InMemoryBackend::new());
        let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let opener: Opener = {
            let (mem, full) = (mem.clone(), full.clone());
            Box::new(move || {
                redb::Builder::new().create_with_backend(FullDisk {
                    mem: mem.clone(),
                    full: full.clone(),
                })
            })
        };
        let store = RedbStore::open_through(&dir.path().join("kv.redb"), true, opener).unwrap();
        let v = || Bytes::from_static(b"value");
        commit(&store, batch(vec![put(b"a", v(), None)]))
            .await
            .unwrap();
        assert_eq!(store.health(), Ok(()));

        full.store(true, std::sync::atomic::Ordering::SeqCst);
        let failed = store.commit(batch(vec![put(b"b", v(), None)])).await;
        assert!(matches!(failed, Err(Error::Internal(_))), "{failed:?}");
        let health = store
            .health()
            .expect_err("a store that cannot write says so");
        assert!(health.contains("cannot write"), "{health}");
        let still = store
            .commit(batch(vec![Write::Delete { key: b"a".to_vec() }]))
            .await;
        assert!(still.is_err(), "still full");

        full.store(false, std::sync::atomic::Ordering::SeqCst);
        // Before the reopen these failed with redb's PreviousIo for as long as the process ran.
        commit(&store, batch(vec![put(b"c", v(), None)]))
            .await
            .unwrap();
        commit(&store, batch(vec![Write::Delete { key: b"a".to_vec() }]))
            .await
            .unwrap();
        assert_eq!(store.health(), Ok(()));
        let got = store
            .get_many(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
            .await
            .unwrap();
        assert_eq!(got[0], None);
        assert_eq!(got[1], None, "the failed write left nothing behind");
        assert_eq!(got[2].clone().unwrap().value, v());
        assert!(mem.len().unwrap() > 0);
    }

    #[tokio::test]
    async fn reopening_quarantines_files_no_commit_refers_to_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        {
            let store = RedbStore::open(&path, true).unwrap();
            commit(&store, batch(vec![put(b"kept", big(9), None)]))
                .await
                .unwrap();
            store.close().await.unwrap();
        }
        let blob_dir = path.with_extension("blobs");
        let kept = files_in(&blob_dir);
        // What a crash between writing a blob and committing its batch leaves behind.
        let orphan = format!("{:032x}", 42u128);
        std::fs::write(blob_dir.join(&orphan), b"orphan").unwrap();
        let store = reopen(&path).await.unwrap();
        assert_eq!(blob_files(&store), kept);
        let quarantined = blob_dir.join(QUARANTINE_DIR);
        assert_eq!(
            files_in(&quarantined),
            vec![orphan.clone()],
            "moved, not deleted"
        );
        assert_eq!(
            std::fs::read(quarantined.join(&orphan)).unwrap(),
            b"orphan".to_vec()
        );
        let got = store.get_many(&[b"kept".to_vec()]).await.unwrap();
        assert_eq!(got[0].clone().unwrap().value, big(9));
        store.close().await.unwrap();
        drop(store);
        // The quarantine directory itself is never taken for a side file on the next open.
        let store = reopen(&path).await.unwrap();
        assert_eq!(blob_files(&store), kept);
        assert_eq!(files_in(&quarantined), vec![orphan]);
    }

    #[tokio::test]
    async fn a_missing_or_empty_database_beside_side_files_refuses_to_start_and_keeps_them() {
        for damage in ["missing", "empty"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("kv.redb");
            {
                let store = RedbStore::open(&path, true).unwrap();
                commit(
                    &store,
                    batch(vec![put(b"a", big(1), None), put(b"b", big(2), None)]),
                )
                .await
                .unwrap();
                store.close().await.unwrap();
            }
            let blob_dir = path.with_extension("blobs");
            let before = files_in(&blob_dir);
            assert_eq!(before.len(), 2);
            // Wait for the closed store to let go of its file before damaging it.
            drop(reopen(&path).await.unwrap());
            match damage {
                "missing" => std::fs::remove_file(&path).unwrap(),
                _ => std::fs::File::create(&path).unwrap().set_len(0).unwrap(),
            }
            let refused = reopen(&path).await;
            let Err(Error::Internal(message)) = refused else {
                panic!("a {damage} database must refuse to start");
            };
            assert!(message.contains("refusing to start"), "{message}");
            assert!(message.contains(damage), "{message}");
            assert!(
                message.contains(&blob_dir.display().to_string()),
                "{message}"
            );
            assert!(message.contains(&before[0]), "{message}");
            assert!(message.contains("2 large-value side file"), "{message}");
            assert_eq!(files_in(&blob_dir), before, "no side file was touched");
            assert!(!blob_dir.join(QUARANTINE_DIR).exists());
            if damage == "missing" {
                assert!(!path.exists(), "no empty database was created");
            }
        }
        // Without side files a missing database is simply a new store.
        let dir = tempfile::tempdir().unwrap();
        assert!(RedbStore::open(&dir.path().join("kv.redb"), true).is_ok());
    }

    #[tokio::test]
    async fn a_lost_side_file_fails_only_its_item_with_an_internal_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("kv.redb"), false).unwrap();
        let lost = crate::keys::item(7, b"lost-key");
        let other = crate::keys::item(7, b"other-key");
        let small = crate::keys::item(7, b"small");
        commit(
            &store,
            batch(vec![
                put(&lost, big(1), None),
                put(&other, big(2), None),
                put(&small, Bytes::from_static(b"s"), None),
            ]),
        )
        .await
        .unwrap();
        let before = blob_files(&store);
        let lost_file = {
            let raw = store.db.with(|db| {
                let tx = db.begin_read()?;
                let table = tx.open_table(RECORDS)?;
                let raw = table.get(lost.as_slice())?.map(|g| g.value().to_vec());
                Ok(raw)
            });
            let raw = raw.unwrap().unwrap();
            let Ok((_, _, Body::Blob { id, .. })) = decode(&raw) else {
                panic!("the large value is a side file");
            };
            format!("{id:032x}")
        };
        assert!(before.contains(&lost_file));
        std::fs::remove_file(store.blobs.dir.join(&lost_file)).unwrap();

        for read in [
            store.get_many(std::slice::from_ref(&lost)).await,
            store
                .scan(
                    KeyRange::prefix(&crate::keys::items_prefix(7)),
                    10,
                    false,
                    0,
                )
                .await
                .map(|_| Vec::new()),
        ] {
            let Err(Error::Internal(message)) = read else {
                panic!("a lost side file is an internal error, got {read:?}");
            };
            assert!(message.contains("item \"lost-key\""), "{message}");
            assert!(message.contains(&lost_file), "{message}");
        }
        let got = store
            .get_many(&[other.clone(), small.clone()])
            .await
            .unwrap();
        assert_eq!(got[0].clone().unwrap().value, big(2));
        assert_eq!(&got[1].clone().unwrap().value[..], b"s");
        // The item can still be deleted or overwritten, which clears the error.
        commit(&store, batch(vec![Write::Delete { key: lost.clone() }]))
            .await
            .unwrap();
        assert_eq!(store.get_many(&[lost]).await.unwrap(), vec![None]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_racing_overwrites_always_get_one_whole_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(&dir.path().join("kv.redb"), false).unwrap());
        commit(&store, batch(vec![put(b"k", big(0), None)]))
            .await
            .unwrap();
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for fill in 1..=40u8 {
                    commit(&store, batch(vec![put(b"k", big(fill), None)]))
                        .await
                        .unwrap();
                }
            })
        };
        let mut reads = 0;
        while !writer.is_finished() {
            let got = store.get_many(&[b"k".to_vec()]).await.unwrap();
            let value = got[0].clone().unwrap().value;
            assert_eq!(value.len(), big(0).len());
            assert!(
                value.iter().all(|b| *b == value[0]),
                "a read never mixes two values"
            );
            reads += 1;
        }
        writer.await.unwrap();
        assert!(reads > 0);
        assert_eq!(
            blob_files(&store).len(),
            1,
            "every superseded file was deleted"
        );
    }
}
