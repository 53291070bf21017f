//! The backend seam. Everything below this trait is bytes: no vendor, no container, no document.
//! A backend only has to apply batches atomically with their checks, read consistent snapshots,
//! and find expired records through an index. Quota arithmetic, container layout and document
//! logic all live above it, in the engine, so redb and SQL fit the same shape.

use std::ops::Bound;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::error::{Quota, Result};

mod batch;
#[cfg(feature = "testing")]
pub mod counting;
pub mod memory;
pub mod postgres;
pub mod redb;

/// A key in the store's single ordered keyspace (the engine lays out its prefixes, see `keys`).
pub type Key = Vec<u8>;

/// A stored value with its expiry and the version of the commit that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub value: Bytes,
    /// Unix seconds (engine clock) after which the record is logically gone.
    pub expires_at: Option<u64>,
    /// The version of the commit that wrote it. The contract, on every backend: each commit's
    /// version is its own (no other commit on the store, before or after, resets included, gets
    /// the same one) and every record the batch writes carries it, so a record's version changes
    /// on every write and never comes back for its key, even after a delete and a recreate
    /// (ETags and `AtVersion` checks rely on exactly that). Never 0 or `u64::MAX`. Compare
    /// versions for equality only: redb and the memory store count commits up one by one, but
    /// PostgreSQL gives each gateway its own range, so across gateways versions are not in
    /// commit order.
    pub version: u64,
}

/// One atomic change: every check holds and every write lands, or nothing happens.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub checks: Vec<Check>,
    pub writes: Vec<Write>,
}

/// A counter's limit, and the quota named when it would be passed.
pub type CounterLimit = (i64, Quota);

impl Batch {
    /// The counters this batch grows and that have a limit: each counter's deltas summed (so two
    /// adds to one counter are judged together), with its limit. A counter the batch only
    /// shrinks, or resets, is left out: such a batch is never refused for it. Every backend checks
    /// `current + delta <= limit` for these inside its commit.
    pub fn limited_counter_growth(&self) -> Vec<(&[u8], i64, CounterLimit)> {
        let mut pending: Vec<(&[u8], i64, Option<CounterLimit>)> = Vec::new();
        for write in &self.writes {
            match write {
                Write::Add {
                    counter,
                    delta,
                    limit,
                } => match pending
                    .iter_mut()
                    .find(|(c, _, _)| *c == counter.as_slice())
                {
                    Some(entry) => {
                        entry.1 = entry.1.saturating_add(*delta);
                        if limit.is_some() {
                            entry.2 = *limit;
                        }
                    }
                    None => pending.push((counter.as_slice(), *delta, *limit)),
                },
                Write::ResetCounter { counter } => {
                    pending.retain(|(c, _, _)| *c != counter.as_slice());
                }
                _ => {}
            }
        }
        pending
            .into_iter()
            .filter_map(|(counter, delta, limit)| match limit {
                Some(limit) if delta > 0 => Some((counter, delta, limit)),
                _ => None,
            })
            .collect()
    }
}

/// A precondition on physical state, checked inside the commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// No record is stored under the key (expired-but-unswept records count as present).
    Absent(Key),
    /// A record is stored under the key, whatever its version.
    Present(Key),
    /// The stored record has exactly this version.
    AtVersion(Key, u64),
    /// A counter has exactly this value (absent counters are 0).
    CounterEquals(Key, i64),
}

/// One write inside a batch, applied in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Put {
        key: Key,
        value: Bytes,
        expires_at: Option<u64>,
    },
    Delete {
        key: Key,
    },
    /// Deletes every record with `start <= key < end` (and their expiry index entries).
    DeleteRange {
        start: Key,
        end: Key,
    },
    /// Adds to a counter. Commutative, so concurrent writers never conflict on it; the batch fails
    /// as a whole with `QuotaExceeded(quota)` if a positive delta would take it past `limit`.
    Add {
        counter: Key,
        delta: i64,
        limit: Option<(i64, Quota)>,
    },
    /// Removes a counter entirely.
    ResetCounter {
        counter: Key,
    },
}

/// Why a batch was not applied, when the reason is the batch's own (not the backend's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// This check did not hold.
    Check(Check),
    /// A counter limit would have been passed.
    Quota(Quota),
}

/// The outcome of one batch: its commit version (unique, see [`Record::version`]), or why it was
/// rejected.
pub type CommitResult = Result<std::result::Result<u64, Rejected>>;

/// A half-open key range for scans.
#[derive(Clone, Debug)]
pub struct KeyRange {
    pub start: Bound<Key>,
    pub end: Bound<Key>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        KeyRange {
            start: Bound::Included(prefix.to_vec()),
            end: match prefix_end(prefix) {
                Some(end) => Bound::Excluded(end),
                None => Bound::Unbounded,
            },
        }
    }
}

/// The smallest key greater than every key starting with `prefix` (None if prefix is all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Key> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// One page of a scan, read from one snapshot.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub records: Vec<(Key, Record)>,
    /// True when the range holds more records after the last one returned.
    pub more: bool,
}

/// A record whose expiry has passed, as found through the expiry index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expired {
    pub key: Key,
    pub version: u64,
    pub value_len: u64,
}

/// Size figures for metrics.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct StoreStats {
    pub records: u64,
    pub file_bytes: u64,
}

/// The most named checkpoints kept at once, on any backend. Each costs nothing when taken, but
/// once writes diverge from it each holds what it alone still names (a copy of the maps on the
/// memory store, the pages a redb savepoint keeps from being freed): a suite that named a
/// checkpoint per test and never dropped them would grow the gateway without bound.
pub const MAX_CHECKPOINTS: usize = 64;

/// A named checkpoint as listed by the admin API.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CheckpointInfo {
    pub name: String,
    /// Wall-clock unix milliseconds when it was taken.
    pub created_ms: u64,
    /// Records (items, containers, nonces; expired ones not yet swept included) it holds.
    pub records: u64,
    /// The engine clock offset (seconds) at the checkpoint, which a restore puts back.
    pub clock_offset: i64,
}

/// Why a checkpoint call failed. Apart from the engine's [`crate::Error`] so that "this backend
/// cannot" stays a distinct answer (the admin API's 501) and is never confused with a failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The backend cannot take checkpoints correctly; the reason is for the operator.
    #[error("checkpoints are not supported: {0}")]
    Unsupported(String),
    #[error("no checkpoint named {0:?}")]
    NotFound(String),
    /// As many checkpoints as the backend keeps exist already (each may hold a whole copy of
    /// the data once writes diverge from it); one must be dropped first.
    #[error("{0} checkpoints exist already, the most kept at once; drop one first")]
    TooMany(usize),
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// A transactional ordered key-value backend.
///
/// Guarantees every backend gives: `commit` returns `Ok` only once the batch is durable (unless the
/// backend was opened non-durable for benchmarks); a batch is applied whole or not at all; reads
/// (`get_many`, one `scan` call, `counters`) each see one consistent snapshot.
pub trait Store: Send + Sync + 'static {
    fn get_many<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<Option<Record>>>>;
    /// Up to `limit` records of `range` that are visible at `now` (no expiry, or `now <
    /// expires_at`), in key order or in reverse when `reverse`. Expired records are skipped inside
    /// the same snapshot, so a page never mixes two points in time.
    fn scan(
        &self,
        range: KeyRange,
        limit: usize,
        reverse: bool,
        now: u64,
    ) -> BoxFuture<'_, Result<Page>>;
    /// How many records of `range` are visible at `now`, from one snapshot, without reading their
    /// values (listing APIs report a total of matching keys beside one page of them).
    fn count(&self, range: KeyRange, now: u64) -> BoxFuture<'_, Result<u64>>;
    fn counters<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<i64>>>;
    /// Applies one batch. The outer `Result` is the backend's health, the inner one the batch's fate.
    fn commit(&self, batch: Batch) -> BoxFuture<'_, CommitResult>;
    /// Up to `max` records with `expires_at <= now`, oldest first; work proportional to `max`.
    fn expired(&self, now: u64, max: usize) -> BoxFuture<'_, Result<Vec<Expired>>>;
    /// Drops every record and counter.
    fn reset(&self) -> BoxFuture<'_, Result<()>>;
    fn stats(&self) -> BoxFuture<'_, Result<StoreStats>>;
    /// Flushes and closes; later calls fail. Called once on shutdown.
    fn close(&self) -> BoxFuture<'_, Result<()>>;
    /// Whether this process should run the background expiry sweep now. Sweeping from several
    /// gateways at once is correct (every delete is checked by version) but wasted work, so a
    /// shared backend elects one holder through a renewable lease. An embedded store has one
    /// process, which always sweeps: that is the default, and redb's answer.
    fn try_sweep_lease(&self) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async { Ok(true) })
    }
    /// Whether this store can write: Err with a reason while its last commit failed (e.g. the disk
    /// is full) and none has succeeded since, so a health check can take the gateway out of
    /// service instead of answering ok over a store that refuses every write. Cheap: no I/O.
    fn health(&self) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Whether every write to this store goes through this process's engine, so that the engine
    /// may keep records it wrote in memory (container records). False unless a backend knows
    /// better: a shared database is written by other gateways too.
    fn sole_writer(&self) -> bool {
        false
    }
    /// Persists the engine clock's offset (seconds, only ever raised) with the data, so a restart
    /// never moves engine time back. The engine calls it when it closes; redb and PostgreSQL also
    /// persist advances as they happen. The default keeps nothing: a memory store has no restart.
    fn save_clock_offset(&self, _offset: i64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Stores an empty record under `key`, expiring at `expires_at` (engine clock), if no record
    /// is stored there (an expired one not yet swept counts as stored): `Ok(true)` the first
    /// time, `Ok(false)` after. For replay protection (a request nonce is admitted once, on every
    /// gateway sharing the store); the sweeper removes the record once it expires. The default is
    /// one commit with an `Absent` check; PostgreSQL answers with one statement.
    fn claim_once(&self, key: Key, expires_at: u64) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let batch = Batch {
                checks: vec![Check::Absent(key.clone())],
                writes: vec![Write::Put {
                    key,
                    value: Bytes::new(),
                    expires_at: Some(expires_at),
                }],
            };
            match self.commit(batch).await? {
                Ok(_) => Ok(true),
                Err(Rejected::Check(_)) => Ok(false),
                Err(Rejected::Quota(q)) => Err(crate::Error::QuotaExceeded(q)),
            }
        })
    }
    /// Advances a clock shared through the store by `seconds`, atomically in the store, and
    /// returns the new shared offset (raised first to `local_offset`, this process's, and kept
    /// within `0..=Clock::MAX_OFFSET_SECS`); `None` when the store shares no clock (then the
    /// engine's own clock is the one to advance). Two advances through two gateways at once both
    /// count, and every gateway's next read sees the sum.
    fn advance_shared_clock(
        &self,
        local_offset: i64,
        seconds: u64,
    ) -> BoxFuture<'_, Result<Option<i64>>> {
        let _ = (local_offset, seconds);
        Box::pin(async { Ok(None) })
    }
    /// Saves the whole state (every record and counter) under `name`, replacing a checkpoint of
    /// that name, with the engine clock offset `clock_offset` to hand back on restore. The
    /// default cannot: a backend answers [`CheckpointError::Unsupported`] with why.
    fn checkpoint(
        &self,
        name: &str,
        clock_offset: i64,
    ) -> BoxFuture<'_, std::result::Result<CheckpointInfo, CheckpointError>> {
        let _ = (name, clock_offset);
        Box::pin(async { Err(CheckpointError::Unsupported(self.checkpoint_support())) })
    }
    /// Makes the checkpoint `name` the whole state again, atomically with respect to commits
    /// and reads, and returns it (with its clock offset). It stays for further restores.
    fn restore_checkpoint(
        &self,
        name: &str,
    ) -> BoxFuture<'_, std::result::Result<CheckpointInfo, CheckpointError>> {
        let _ = name;
        Box::pin(async { Err(CheckpointError::Unsupported(self.checkpoint_support())) })
    }
    /// Every checkpoint held, in name order.
    fn list_checkpoints(
        &self,
    ) -> BoxFuture<'_, std::result::Result<Vec<CheckpointInfo>, CheckpointError>> {
        Box::pin(async { Err(CheckpointError::Unsupported(self.checkpoint_support())) })
    }
    /// Drops the checkpoint `name`; `NotFound` when there is none.
    fn drop_checkpoint(
        &self,
        name: &str,
    ) -> BoxFuture<'_, std::result::Result<(), CheckpointError>> {
        let _ = name;
        Box::pin(async { Err(CheckpointError::Unsupported(self.checkpoint_support())) })
    }
    /// Why this backend has no checkpoints (the message of the defaults above).
    fn checkpoint_support(&self) -> String {
        "this storage backend keeps no checkpoints".into()
    }
}
