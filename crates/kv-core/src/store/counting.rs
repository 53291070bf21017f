//! A `Store` that counts the store calls made through it (feature `testing`), so a test can
//! assert how many statements a request costs on a real backend: every call that reads or writes
//! is one statement or one transaction on PostgreSQL (`commit` is one transaction of two
//! pipelined round trips), and each is counted once. Everything is forwarded unchanged, the
//! backend's own answers to `sole_writer`, `claim_once` and the shared clock included, so the
//! engine above behaves exactly as on the store it wraps.

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use super::{
    Batch, CheckpointError, CheckpointInfo, CommitResult, Expired, Key, KeyRange, Page, Record,
    Store, StoreStats,
};
use crate::error::Result;

/// `inner`, counting its calls.
pub struct Counting {
    inner: Arc<dyn Store>,
    /// The name of each call since the last `take`, in order.
    calls: Mutex<Vec<&'static str>>,
}

impl Counting {
    pub fn new(inner: Arc<dyn Store>) -> Arc<Counting> {
        Arc::new(Counting {
            inner,
            calls: Mutex::default(),
        })
    }

    /// How many calls were made since the last `take` (or `take_names`); counting starts again.
    pub fn take(&self) -> usize {
        self.take_names().len()
    }

    /// The calls made since the last `take`, by method name in order (for an assertion's
    /// message); counting starts again.
    pub fn take_names(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn tick(&self, name: &'static str) -> &dyn Store {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name);
        self.inner.as_ref()
    }
}

impl Store for Counting {
    fn get_many<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<Option<Record>>>> {
        self.tick("get_many").get_many(keys)
    }
    fn scan(
        &self,
        range: KeyRange,
        limit: usize,
        reverse: bool,
        now: u64,
    ) -> BoxFuture<'_, Result<Page>> {
        self.tick("scan").scan(range, limit, reverse, now)
    }
    fn count(&self, range: KeyRange, now: u64) -> BoxFuture<'_, Result<u64>> {
        self.tick("count").count(range, now)
    }
    fn counters<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<i64>>> {
        self.tick("counters").counters(keys)
    }
    fn commit(&self, batch: Batch) -> BoxFuture<'_, CommitResult> {
        self.tick("commit").commit(batch)
    }
    fn expired(&self, now: u64, max: usize) -> BoxFuture<'_, Result<Vec<Expired>>> {
        self.tick("expired").expired(now, max)
    }
    fn reset(&self) -> BoxFuture<'_, Result<()>> {
        self.tick("reset").reset()
    }
    fn stats(&self) -> BoxFuture<'_, Result<StoreStats>> {
        self.tick("stats").stats()
    }
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        self.inner.close()
    }
    fn try_sweep_lease(&self) -> BoxFuture<'_, Result<bool>> {
        self.tick("try_sweep_lease").try_sweep_lease()
    }
    fn health(&self) -> std::result::Result<(), String> {
        self.inner.health()
    }
    fn sole_writer(&self) -> bool {
        self.inner.sole_writer()
    }
    fn save_clock_offset(&self, offset: i64) -> BoxFuture<'_, Result<()>> {
        self.tick("save_clock_offset").save_clock_offset(offset)
    }
    fn claim_once(&self, key: Key, expires_at: u64) -> BoxFuture<'_, Result<bool>> {
        self.tick("claim_once").claim_once(key, expires_at)
    }
    fn advance_shared_clock(
        &self,
        local_offset: i64,
        seconds: u64,
    ) -> BoxFuture<'_, Result<Option<i64>>> {
        self.tick("advance_shared_clock")
            .advance_shared_clock(local_offset, seconds)
    }
    fn checkpoint(
        &self,
        name: &str,
        clock_offset: i64,
    ) -> BoxFuture<'_, std::result::Result<CheckpointInfo, CheckpointError>> {
        self.tick("checkpoint").checkpoint(name, clock_offset)
    }
    fn restore_checkpoint(
        &self,
        name: &str,
    ) -> BoxFuture<'_, std::result::Result<CheckpointInfo, CheckpointError>> {
        self.tick("restore_checkpoint").restore_checkpoint(name)
    }
    fn list_checkpoints(
        &self,
    ) -> BoxFuture<'_, std::result::Result<Vec<CheckpointInfo>, CheckpointError>> {
        self.tick("list_checkpoints").list_checkpoints()
    }
    fn drop_checkpoint(
        &self,
        name: &str,
    ) -> BoxFuture<'_, std::result::Result<(), CheckpointError>> {
        self.tick("drop_checkpoint").drop_checkpoint(name)
    }
    fn checkpoint_support(&self) -> String {
        self.inner.checkpoint_support()
    }
}
