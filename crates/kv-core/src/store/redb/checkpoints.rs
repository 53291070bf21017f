//! Named checkpoints on redb, built on redb's ephemeral savepoints: taking one records the
//! committed B-tree roots (O(1), no copy: pages that later commits would free are kept instead);
//! restoring one makes those roots current again in one write transaction (O(pages written
//! since), independent of how much data there is).
//!
//! Everything the writer thread owns, because both need a write transaction that no group
//! commit runs beside, and because the blob rule below must be applied where commits remove
//! side files.
//!
//! What a restore keeps exact, and how:
//! - **records, expiry index, counters, the blob index**: the savepoint's roots;
//! - **commit versions keep growing**: the restore transaction writes `last_version` back as the
//!   larger of now and the checkpoint's, so a version (an ETag) handed out after the checkpoint
//!   is never handed out again for a different value, as on the memory store;
//! - **the persisted clock offset** is written exactly as the checkpoint's (the engine moves its
//!   in-memory clock back the same way), so a restart after a restore resumes the restored time;
//! - **side files of large values**: a commit that replaces or deletes a large value removes its
//!   file at once, but a checkpoint's records may still name it. While any checkpoint is held,
//!   such files are kept (their ids collected in `retired`); when the last checkpoint is dropped,
//!   the ones no current record names are removed. A crash meanwhile leaves them unreferenced,
//!   and the next open moves them to quarantine as any orphan.
//!
//! The one difference from the memory store, inherent in savepoints: a restore invalidates the
//! savepoints taken after the restored one, so those checkpoints are dropped (the restore's
//! answer names them). The usual test-suite pattern (one "clean" checkpoint restored before each
//! test, or a stack of checkpoints unwound newest first) never meets it. Savepoints live in this
//! process only: a restart starts with none, as the memory store does.

use std::collections::BTreeMap;

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata};
use tokio::sync::oneshot;

use super::*;
use crate::store::{CheckpointError, CheckpointInfo, MAX_CHECKPOINTS};

/// A checkpoint call for the writer thread.
pub(super) enum CheckpointOp {
    Take { name: String, clock_offset: i64 },
    Restore { name: String },
    Drop { name: String },
}

/// What a checkpoint call answers.
pub(super) type CheckpointReply =
    oneshot::Sender<std::result::Result<Option<CheckpointInfo>, CheckpointError>>;

struct Held {
    savepoint: redb::Savepoint,
    info: CheckpointInfo,
    /// Order of taking: a restore invalidates every savepoint with a larger one.
    taken: u64,
}

/// The checkpoints held, and the side files kept for them.
#[derive(Default)]
pub(super) struct Checkpoints {
    held: BTreeMap<String, Held>,
    taken: u64,
    /// Side files that no current record may name any more but a checkpoint's might.
    retired: Vec<u128>,
    /// What the listing shows, readable without the writer thread.
    listing: Arc<std::sync::Mutex<Vec<CheckpointInfo>>>,
}

impl Checkpoints {
    pub(super) fn new(listing: Arc<std::sync::Mutex<Vec<CheckpointInfo>>>) -> Self {
        Checkpoints {
            listing,
            ..Checkpoints::default()
        }
    }

    /// Removes side files a commit superseded, or keeps them while a checkpoint may name them.
    pub(super) fn retire(&mut self, blobs: &BlobDir, ids: Vec<u128>) {
        if self.held.is_empty() {
            blobs.remove(&ids);
        } else {
            self.retired.extend(ids);
        }
    }

    /// Forgets every checkpoint: the database handle they belong to is about to be reopened
    /// after a failed write. The kept side files stay (the next open quarantines what no record
    /// names).
    pub(super) fn forget_all(&mut self) {
        if !self.held.is_empty() {
            tracing::warn!(
                checkpoints = self.held.len(),
                "dropping every checkpoint: the store reopens its file after a failed write"
            );
            self.held.clear();
            self.retired.clear();
            self.publish();
        }
    }

    pub(super) fn run(
        &mut self,
        db: &DbSlot,
        blobs: &BlobDir,
        durable: bool,
        op: CheckpointOp,
        reply: CheckpointReply,
    ) {
        let answer = match op {
            CheckpointOp::Take { name, clock_offset } => {
                self.take(db, name, clock_offset).map(Some)
            }
            CheckpointOp::Restore { name } => self.restore(db, durable, &name).map(Some),
            CheckpointOp::Drop { name } => self.drop_named(db, blobs, &name).map(|()| None),
        };
        self.publish();
        let _ = reply.send(answer);
    }

    fn take(
        &mut self,
        db: &DbSlot,
        name: String,
        clock_offset: i64,
    ) -> std::result::Result<CheckpointInfo, CheckpointError> {
        if self.held.len() >= MAX_CHECKPOINTS && !self.held.contains_key(&name) {
            return Err(CheckpointError::TooMany(MAX_CHECKPOINTS));
        }
        let (savepoint, records) = db
            .heal()
            .and_then(|()| db.with(savepoint_of_committed_state))
            .map_err(CheckpointError::from)?;
        self.taken += 1;
        let info = CheckpointInfo {
            name: name.clone(),
            created_ms: crate::clock::wall_clock_millis(),
            records,
            clock_offset,
        };
        // Replacing a checkpoint of the same name drops the old savepoint here.
        self.held.insert(
            name,
            Held {
                savepoint,
                info: info.clone(),
                taken: self.taken,
            },
        );
        Ok(info)
    }

    fn restore(
        &mut self,
        db: &DbSlot,
        durable: bool,
        name: &str,
    ) -> std::result::Result<CheckpointInfo, CheckpointError> {
        let held = self
            .held
            .get(name)
            .ok_or_else(|| CheckpointError::NotFound(name.to_string()))?;
        let info = held.info.clone();
        let live_blobs = db
            .heal()
            .and_then(|()| db.with(|d| restore_savepoint(d, &held.savepoint, &info, durable)))
            .map_err(CheckpointError::from)?;
        // The files the state before the restore named may be named by no record now.
        self.retired.extend(live_blobs);
        let restored_order = held.taken;
        self.held.retain(|_, h| h.taken <= restored_order);
        // The restored checkpoint stays (for further restores), so `retired` waits for the
        // last drop.
        Ok(info)
    }

    fn drop_named(
        &mut self,
        db: &DbSlot,
        blobs: &BlobDir,
        name: &str,
    ) -> std::result::Result<(), CheckpointError> {
        if self.held.remove(name).is_none() {
            return Err(CheckpointError::NotFound(name.to_string()));
        }
        if self.held.is_empty() && !self.retired.is_empty() {
            let retired = std::mem::take(&mut self.retired);
            match db.with(|d| unreferenced(d, retired.clone())) {
                Ok(doomed) => blobs.remove(&doomed),
                // Kept: the next open quarantines what no record names.
                Err(e) => tracing::warn!(error = %e, "listing side files to remove"),
            }
        }
        Ok(())
    }

    /// The checkpoints whose names a restore dropped are in the listing no more.
    fn publish(&self) {
        let list = self.held.values().map(|h| h.info.clone()).collect();
        *self.listing.lock().unwrap_or_else(|p| p.into_inner()) = list;
    }
}

/// A savepoint of the last committed state, with how many records it holds.
fn savepoint_of_committed_state(db: &Database) -> Result<(redb::Savepoint, u64)> {
    let tx = db.begin_write()?;
    let savepoint = tx
        .ephemeral_savepoint()
        .map_err(|e| Error::Internal(format!("redb savepoint: {e}")))?;
    tx.abort()?;
    let records = db.begin_read()?.open_table(RECORDS)?.len()?;
    Ok((savepoint, records))
}

/// Makes `savepoint` the committed state, keeping commit versions growing and setting the
/// persisted clock to the checkpoint's; answers the side files the state before named.
fn restore_savepoint(
    db: &Database,
    savepoint: &redb::Savepoint,
    info: &CheckpointInfo,
    durable: bool,
) -> Result<Vec<u128>> {
    let (live_blobs, last_version) = {
        let tx = db.begin_read()?;
        let mut ids = Vec::new();
        for entry in tx.open_table(BLOBS)?.iter()? {
            ids.push(entry?.0.value());
        }
        let version = tx.open_table(META)?.get(LAST_VERSION)?.map(|g| g.value());
        (ids, version.unwrap_or(0))
    };
    let mut tx = db.begin_write()?;
    if !durable {
        tx.set_durability(Durability::None)
            .map_err(|e| Error::Internal(format!("redb durability: {e}")))?;
    }
    tx.restore_savepoint(savepoint)
        .map_err(|e| Error::Internal(format!("restoring a redb savepoint: {e}")))?;
    {
        let mut meta = tx.open_table(META)?;
        let restored = meta.get(LAST_VERSION)?.map(|g| g.value()).unwrap_or(0);
        meta.insert(LAST_VERSION, restored.max(last_version))?;
        meta.insert(
            clock::CLOCK_OFFSET,
            u64::try_from(info.clock_offset).unwrap_or(0),
        )?;
    }
    tx.commit()?;
    Ok(live_blobs)
}

/// Of `ids`, the side files no current record names.
fn unreferenced(db: &Database, mut ids: Vec<u128>) -> Result<Vec<u128>> {
    ids.sort_unstable();
    ids.dedup();
    let tx = db.begin_read()?;
    let index = tx.open_table(BLOBS)?;
    let mut doomed = Vec::new();
    for id in ids {
        if index.get(id)?.is_none() {
            doomed.push(id);
        }
    }
    Ok(doomed)
}
