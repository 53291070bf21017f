//! The embedded default backend: one redb file under `data_dir`.
//!
//! Writes go through one writer thread that practises group commit: it takes every batch waiting
//! at that moment, checks and applies each in order inside one redb write transaction, makes that
//! transaction durable once, and only then answers every caller. One fsync thus pays for many
//! writers, and because each batch's checks run against the state left by the batches before it
//! in the same transaction, the result is exactly that of applying them one by one.
//!
//! One job a file: `writer` (the writer thread, group commit, batch checks and application),
//! `record` (the on-disk record encoding), `blobs` (side files for large values), `health` (the
//! swappable handle, reopening after a failed write, the health probe), `open` (opening,
//! refusing a suspicious start, quarantining orphans); this file holds the tables and the
//! `Store` implementation.

mod blobs;
mod checkpoints;
pub(crate) mod clock;
mod health;
mod open;
mod record;
#[cfg(test)]
mod tests;
mod writer;

pub use blobs::BLOB_MIN_BYTES;
use blobs::*;
use checkpoints::*;
use health::*;
pub use open::RedbOptions;
use record::*;
use writer::*;

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use redb::{ReadableDatabase, TableDefinition};
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::store::{
    Batch, CheckpointError, CheckpointInfo, CommitResult, Expired, Key, KeyRange, Page, Record,
    Store, StoreStats, Write,
};

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

/// The redb backend. Cheap to share behind an `Arc`.
pub struct RedbStore {
    db: Arc<DbSlot>,
    path: PathBuf,
    blobs: Arc<BlobDir>,
    writer: std_mpsc::Sender<WriterMsg>,
    /// The checkpoints the writer thread holds, as listed.
    checkpoints: Arc<std::sync::Mutex<Vec<CheckpointInfo>>>,
}

impl RedbStore {
    fn send(&self, msg: WriterMsg) -> Result<()> {
        self.writer
            .send(msg)
            .map_err(|_| Error::Internal("the store is closed".into()))
    }
}

impl RedbStore {
    /// Runs a checkpoint call on the writer thread, between group commits.
    async fn checkpoint_call(
        &self,
        op: CheckpointOp,
    ) -> std::result::Result<Option<CheckpointInfo>, CheckpointError> {
        let (tx, rx) = oneshot::channel();
        self.send(WriterMsg::Checkpoint(op, tx))?;
        rx.await
            .map_err(|_| CheckpointError::from(Error::Internal("the writer stopped".into())))?
    }
}

/// The info a take or a restore answers (always present for those two).
fn checkpoint_answer(
    answer: std::result::Result<Option<CheckpointInfo>, CheckpointError>,
) -> std::result::Result<CheckpointInfo, CheckpointError> {
    answer.and_then(|info| {
        info.ok_or_else(|| Error::Internal("a checkpoint call answered nothing".into()).into())
    })
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

    fn save_clock_offset(&self, offset: i64) -> BoxFuture<'_, Result<()>> {
        let result = self.store_clock_offset(u64::try_from(offset).unwrap_or(0));
        Box::pin(async move { result })
    }

    /// O(1): a redb savepoint of the committed state (see `checkpoints.rs`).
    fn checkpoint(
        &self,
        name: &str,
        clock_offset: i64,
    ) -> BoxFuture<'_, std::result::Result<CheckpointInfo, CheckpointError>> {
        let op = CheckpointOp::Take {
            name: name.to_string(),
            clock_offset,
        };
        self.checkpoint_call(op).map(checkpoint_answer).boxed()
    }

    fn restore_checkpoint(
        &self,
        name: &str,
    ) -> BoxFuture<'_, std::result::Result<CheckpointInfo, CheckpointError>> {
        let op = CheckpointOp::Restore {
            name: name.to_string(),
        };
        self.checkpoint_call(op).map(checkpoint_answer).boxed()
    }

    fn list_checkpoints(
        &self,
    ) -> BoxFuture<'_, std::result::Result<Vec<CheckpointInfo>, CheckpointError>> {
        let list = self
            .checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        async move { Ok(list) }.boxed()
    }

    fn drop_checkpoint(
        &self,
        name: &str,
    ) -> BoxFuture<'_, std::result::Result<(), CheckpointError>> {
        let op = CheckpointOp::Drop {
            name: name.to_string(),
        };
        self.checkpoint_call(op).map(|r| r.map(|_| ())).boxed()
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
