//! The writer thread: group commit, and checking and applying each batch of a group in order.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use redb::{Database, Durability, ReadableTable};
use tokio::sync::oneshot;

use super::*;
use crate::error::{Error, Result};
use crate::store::{Batch, CommitResult, Rejected, Write};

/// How many waiting batches one group commit takes at most, so one slow group cannot starve the
/// callers that arrive while it runs.
pub(super) const MAX_GROUP: usize = 512;

pub(super) enum WriterMsg {
    Commit(Batch, Vec<StagedBlob>, oneshot::Sender<CommitResult>),
    Reset(oneshot::Sender<Result<()>>),
    Checkpoint(CheckpointOp, CheckpointReply),
    Close(oneshot::Sender<Result<()>>),
}

pub(super) fn run_writer(
    db: Arc<DbSlot>,
    blobs: Arc<BlobDir>,
    inbox: std_mpsc::Receiver<WriterMsg>,
    durable: bool,
    mut checkpoints: Checkpoints,
) {
    let mut closed = false;
    loop {
        // Savepoints belong to the database handle a failed write makes the writer reopen.
        if db.failure().is_some() {
            checkpoints.forget_all();
        }
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
                commit_group(&db, &blobs, group, durable, &mut checkpoints);
            }
        }
        for msg in control {
            match msg {
                WriterMsg::Reset(reply) => {
                    let _ = reply.send(if closed {
                        Err(Error::Internal("closed".into()))
                    } else {
                        let reset = db.heal().and_then(|()| db.with(reset_all));
                        record_outcome(&db, reset)
                            .map(|dropped| checkpoints.retire(&blobs, dropped))
                    });
                }
                WriterMsg::Checkpoint(op, reply) => {
                    if closed {
                        let _ = reply.send(Err(Error::Internal("closed".into()).into()));
                    } else {
                        checkpoints.run(&db, &blobs, durable, op, reply);
                    }
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
pub(super) struct Tables<'txn> {
    records: redb::Table<'txn, &'static [u8], &'static [u8]>,
    expiry: redb::Table<'txn, &'static [u8], ()>,
    counters: redb::Table<'txn, &'static [u8], i64>,
    blobs: redb::Table<'txn, u128, ()>,
    /// Blobs whose records this transaction removed or replaced: deleted once it commits.
    superseded: Vec<u128>,
}

pub(super) type Waiting = (Batch, Vec<StagedBlob>, oneshot::Sender<CommitResult>);

/// What a group commit decided for each batch, and the blobs its commit superseded.
pub(super) type GroupOutcome = (Vec<std::result::Result<u64, Rejected>>, Vec<u128>);

pub(super) fn commit_group(
    db: &DbSlot,
    blobs: &BlobDir,
    group: Vec<Waiting>,
    durable: bool,
    checkpoints: &mut Checkpoints,
) {
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
                match crate::store::batch::first_rejection(&tables, batch)? {
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
            checkpoints.retire(blobs, superseded);
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

/// The batch rules (see `store::batch`) over the group's write transaction, which includes the
/// batches before this one in the same group.
impl crate::store::batch::BatchView for Tables<'_> {
    type Error = Error;
    fn record_version(&self, key: &[u8]) -> Result<Option<u64>> {
        match self.records.get(key)? {
            Some(raw) => Ok(Some(decode_header(raw.value())?.0)),
            None => Ok(None),
        }
    }
    fn counter(&self, key: &[u8]) -> Result<i64> {
        Ok(self.counters.get(key)?.map(|g| g.value()).unwrap_or(0))
    }
}

impl Tables<'_> {
    /// Drops a removed record's expiry index entry and blob, if it had them.
    pub(super) fn forget(
        &mut self,
        key: &[u8],
        expires_at: Option<u64>,
        blob: Option<u128>,
    ) -> Result<()> {
        if let Some(exp) = expires_at {
            self.expiry.remove(expiry_key(exp, key).as_slice())?;
        }
        if let Some(id) = blob {
            self.blobs.remove(id)?;
            self.superseded.push(id);
        }
        Ok(())
    }

    /// Forgets what the record at `key` (if any) referenced, before a put replaces it in place.
    /// Reads it rather than removing it: a remove followed by an insert of the same key walked
    /// and copied its path twice and could merge and then split the leaf again.
    pub(super) fn forget_replaced(&mut self, key: &[u8]) -> Result<()> {
        let replaced = match self.records.get(key)? {
            Some(old) => {
                let (_, expires_at, body) = decode(old.value())?;
                Some((expires_at, body.blob()))
            }
            None => None,
        };
        match replaced {
            Some((expires_at, blob)) => self.forget(key, expires_at, blob),
            None => Ok(()),
        }
    }

    pub(super) fn remove_record(&mut self, key: &[u8]) -> Result<()> {
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

pub(super) fn apply_batch(
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
                // The insert below replaces the record; its expiry entry and blob go here.
                tables.forget_replaced(key)?;
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

/// Empties every table; answers the side files the records named (removed by the caller, or
/// kept while a checkpoint may name them).
pub(super) fn reset_all(db: &Database) -> Result<Vec<u128>> {
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
    Ok(dropped)
}
