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
use std::sync::Arc;

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
/// Store-level metadata, e.g. the last commit sequence number.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const LAST_VERSION: &str = "last_version";

/// How many waiting batches one group commit takes at most, so one slow group cannot starve the
/// callers that arrive while it runs.
const MAX_GROUP: usize = 512;

enum WriterMsg {
    Commit(Batch, oneshot::Sender<CommitResult>),
    Reset(oneshot::Sender<Result<()>>),
    Close(oneshot::Sender<Result<()>>),
}

/// The redb backend. Cheap to share behind an `Arc`.
pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
    writer: std_mpsc::Sender<WriterMsg>,
}

/// How a redb file is opened.
#[derive(Clone, Copy, Debug)]
pub struct RedbOptions {
    /// fsync every group commit before answering. Off only for benchmarks that want to measure
    /// everything but the disk.
    pub durable: bool,
    /// redb's page cache. redb's own default (1 GiB) lets the gateway's memory grow with the data
    /// set; a bounded cache keeps RSS flat however much is stored, and the OS page cache still
    /// keeps hot file pages close.
    pub cache_bytes: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            durable: true,
            cache_bytes: 64 << 20,
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
        let durable = options.durable;
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
            }
        }
        let db = Arc::new(
            redb::Builder::new()
                .set_cache_size(options.cache_bytes)
                .create(path)?,
        );
        // Create the tables once so that read transactions never see them missing.
        let tx = db.begin_write()?;
        {
            tx.open_table(RECORDS)?;
            tx.open_table(EXPIRY)?;
            tx.open_table(COUNTERS)?;
            tx.open_table(META)?;
        }
        tx.commit()?;
        let (writer, inbox) = std_mpsc::channel();
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("kv-redb-writer".into())
            .spawn(move || run_writer(writer_db, inbox, durable))
            .map_err(|e| Error::Internal(format!("spawning writer: {e}")))?;
        Ok(RedbStore {
            db,
            path: path.to_path_buf(),
            writer,
        })
    }

    fn send(&self, msg: WriterMsg) -> Result<()> {
        self.writer
            .send(msg)
            .map_err(|_| Error::Internal("the store is closed".into()))
    }
}

/// Bytes of the record header: version, then expiry (0 = never), both u64 BE.
const RECORD_HEADER: usize = 16;

/// Writes a record straight into the space redb reserved for it: a large value is copied once,
/// into the page, not first into an intermediate buffer.
fn write_record(out: &mut [u8], value: &[u8], expires_at: Option<u64>, version: u64) {
    out[..8].copy_from_slice(&version.to_be_bytes());
    out[8..RECORD_HEADER].copy_from_slice(&expires_at.unwrap_or(0).to_be_bytes());
    out[RECORD_HEADER..].copy_from_slice(value);
}

fn decode_header(raw: &[u8]) -> Result<(u64, Option<u64>)> {
    if raw.len() < RECORD_HEADER {
        return Err(Error::Internal("corrupt record header".into()));
    }
    let mut v = [0u8; 8];
    v.copy_from_slice(&raw[..8]);
    let mut e = [0u8; 8];
    e.copy_from_slice(&raw[8..RECORD_HEADER]);
    let expires = u64::from_be_bytes(e);
    Ok((u64::from_be_bytes(v), (expires != 0).then_some(expires)))
}

fn decode_record(raw: &[u8]) -> Result<Record> {
    let (version, expires_at) = decode_header(raw)?;
    Ok(Record {
        value: Bytes::copy_from_slice(&raw[RECORD_HEADER..]),
        expires_at,
        version,
    })
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

fn run_writer(db: Arc<Database>, inbox: std_mpsc::Receiver<WriterMsg>, durable: bool) {
    let mut closed = false;
    while let Ok(first) = inbox.recv() {
        let mut group = Vec::new();
        let mut control = Vec::new();
        match first {
            WriterMsg::Commit(b, tx) => group.push((b, tx)),
            other => control.push(other),
        }
        while group.len() < MAX_GROUP && control.is_empty() {
            match inbox.try_recv() {
                Ok(WriterMsg::Commit(b, tx)) => group.push((b, tx)),
                Ok(other) => control.push(other),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            if closed {
                for (_, reply) in group {
                    let _ = reply.send(Err(Error::Internal("the store is closed".into())));
                }
            } else {
                commit_group(&db, group, durable);
            }
        }
        for msg in control {
            match msg {
                WriterMsg::Reset(reply) => {
                    let _ = reply.send(if closed {
                        Err(Error::Internal("closed".into()))
                    } else {
                        reset_all(&db)
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
}

fn commit_group(db: &Database, group: Vec<(Batch, oneshot::Sender<CommitResult>)>, durable: bool) {
    let outcome = (|| -> Result<Vec<std::result::Result<u64, Rejected>>> {
        let mut tx = db.begin_write()?;
        if !durable {
            tx.set_durability(Durability::None)
                .map_err(|e| Error::Internal(format!("redb durability: {e}")))?;
        }
        let mut results = Vec::with_capacity(group.len());
        {
            let mut meta = tx.open_table(META)?;
            let mut last_version = meta.get(LAST_VERSION)?.map(|g| g.value()).unwrap_or(0);
            // The tables are opened once for the whole group, not once per batch.
            let mut tables = Tables {
                records: tx.open_table(RECORDS)?,
                expiry: tx.open_table(EXPIRY)?,
                counters: tx.open_table(COUNTERS)?,
            };
            for (batch, _) in &group {
                match check_batch(&tables, batch)? {
                    Some(rejected) => results.push(Err(rejected)),
                    None => {
                        last_version += 1;
                        apply_batch(&mut tables, batch, last_version)?;
                        results.push(Ok(last_version));
                    }
                }
            }
            meta.insert(LAST_VERSION, last_version)?;
        }
        tx.commit()?;
        Ok(results)
    })();
    match outcome {
        Ok(results) => {
            for ((_, reply), result) in group.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            for (_, reply) in group {
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

fn remove_record(
    records: &mut redb::Table<&[u8], &[u8]>,
    expiry: &mut redb::Table<&[u8], ()>,
    key: &[u8],
) -> Result<()> {
    if let Some(old) = records.remove(key)? {
        if let (_, Some(exp)) = decode_header(old.value())? {
            expiry.remove(expiry_key(exp, key).as_slice())?;
        }
    }
    Ok(())
}

fn apply_batch(tables: &mut Tables<'_>, batch: &Batch, version: u64) -> Result<()> {
    let Tables {
        records,
        expiry,
        counters,
    } = tables;
    for write in &batch.writes {
        match write {
            Write::Put {
                key,
                value,
                expires_at,
            } => {
                remove_record(records, expiry, key)?;
                let mut slot =
                    records.insert_reserve(key.as_slice(), RECORD_HEADER + value.len())?;
                write_record(slot.as_mut(), value, *expires_at, version);
                drop(slot);
                if let Some(exp) = expires_at {
                    expiry.insert(expiry_key(*exp, key).as_slice(), ())?;
                }
            }
            Write::Delete { key } => remove_record(records, expiry, key)?,
            Write::DeleteRange { start, end } => {
                let mut doomed = Vec::new();
                for entry in records.range::<&[u8]>(start.as_slice()..end.as_slice())? {
                    let (k, v) = entry?;
                    doomed.push((k.value().to_vec(), decode_header(v.value())?.1));
                }
                for (k, exp) in doomed {
                    records.remove(k.as_slice())?;
                    if let Some(exp) = exp {
                        expiry.remove(expiry_key(exp, &k).as_slice())?;
                    }
                }
            }
            Write::Add { counter, delta, .. } => {
                let current = counters
                    .get(counter.as_slice())?
                    .map(|g| g.value())
                    .unwrap_or(0);
                let next = current.saturating_add(*delta);
                if next == 0 {
                    counters.remove(counter.as_slice())?;
                } else {
                    counters.insert(counter.as_slice(), next)?;
                }
            }
            Write::ResetCounter { counter } => {
                counters.remove(counter.as_slice())?;
            }
        }
    }
    Ok(())
}

fn reset_all(db: &Database) -> Result<()> {
    let tx = db.begin_write()?;
    tx.delete_table(RECORDS)?;
    tx.delete_table(EXPIRY)?;
    tx.delete_table(COUNTERS)?;
    {
        tx.open_table(RECORDS)?;
        tx.open_table(EXPIRY)?;
        tx.open_table(COUNTERS)?;
    }
    tx.commit()?;
    Ok(())
}

impl Store for RedbStore {
    fn get_many<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<Option<Record>>>> {
        let result = (|| {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(RECORDS)?;
            keys.iter()
                .map(|k| {
                    table
                        .get(k.as_slice())?
                        .map(|g| decode_record(g.value()))
                        .transpose()
                })
                .collect()
        })();
        async move { result }.boxed()
    }

    fn scan(
        &self,
        range: KeyRange,
        limit: usize,
        reverse: bool,
        now: u64,
    ) -> BoxFuture<'_, Result<Page>> {
        let result = (|| {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(RECORDS)?;
            let bounds = (bound_ref(&range.start), bound_ref(&range.end));
            let iter = table.range::<&[u8]>(bounds)?;
            let mut page = Page::default();
            let mut push = |entry: RangeEntry| -> Result<bool> {
                let (k, v) = entry?;
                let (_, expires_at) = decode_header(v.value())?;
                if expires_at.is_some_and(|exp| exp <= now) {
                    return Ok(true);
                }
                if page.records.len() == limit {
                    page.more = true;
                    return Ok(false);
                }
                page.records
                    .push((k.value().to_vec(), decode_record(v.value())?));
                Ok(true)
            };
            if reverse {
                for entry in iter.rev() {
                    if !push(entry)? {
                        break;
                    }
                }
            } else {
                for entry in iter {
                    if !push(entry)? {
                        break;
                    }
                }
            }
            Ok(page)
        })();
        async move { result }.boxed()
    }

    fn counters<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<i64>>> {
        let result = (|| {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(COUNTERS)?;
            keys.iter()
                .map(|k| Ok(table.get(k.as_slice())?.map(|g| g.value()).unwrap_or(0)))
                .collect()
        })();
        async move { result }.boxed()
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, CommitResult> {
        async move {
            let (tx, rx) = oneshot::channel();
            self.send(WriterMsg::Commit(batch, tx))?;
            rx.await
                .map_err(|_| Error::Internal("the writer stopped".into()))?
        }
        .boxed()
    }

    fn expired(&self, now: u64, max: usize) -> BoxFuture<'_, Result<Vec<Expired>>> {
        let result = (|| {
            let tx = self.db.begin_read()?;
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
                    let raw = raw.value();
                    let (version, _) = decode_header(raw)?;
                    out.push(Expired {
                        key,
                        version,
                        value_len: raw.len().saturating_sub(RECORD_HEADER) as u64,
                    });
                }
            }
            Ok(out)
        })();
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
        let result = (|| {
            use redb::ReadableTableMetadata;
            let tx = self.db.begin_read()?;
            let records = tx.open_table(RECORDS)?.len()?;
            let file_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
            Ok(StoreStats {
                records,
                file_bytes,
            })
        })();
        async move { result }.boxed()
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
