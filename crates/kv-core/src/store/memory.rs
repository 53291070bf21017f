//! The ephemeral backend: everything in this process's memory, nothing on disk. Built for test
//! suites that want a fresh gateway per run (or per test) without a data directory to clean up,
//! and cheap checkpoints to return to.
//!
//! Semantics are those of the trait's doc comments and of the redb backend, which the store
//! conformance suite (tests/store_conformance.rs) and the differential test against redb
//! (tests/postgres_store_parity.rs) hold it to: every commit has its own version, never handed
//! out again (it counts up, as redb's does; reset included), checks see physical state (an
//! expired record not yet swept is still present), writes apply in order, counters that reach 0 disappear, and the expiry index is kept in step
//! with the records so `expired` does work proportional to `max`.
//!
//! Concurrency: one `RwLock` around the state. A commit is a few map operations with no I/O, so
//! writers hold it briefly; no lock is held across an `.await` (every answer is computed before
//! its future is built, as redb's are).
//!
//! # Checkpoints
//!
//! The maps live behind an `Arc` ([`MemoryStore::checkpoint`] takes one more reference to them
//! under the read lock: O(1), no copy). The first commit after a checkpoint finds the maps shared
//! and copies them once (`Arc::make_mut`: keys are copied, values are `Bytes` and only gain a
//! reference); later commits work in place again until the next checkpoint. So a test suite can
//! checkpoint before every test for the price of one copy per test that writes.
//! [`MemoryStore::restore`] puts a checkpoint's maps back (O(1) again) and leaves the snapshot
//! usable for further restores.
//!
//! Everything the engine keeps in the store comes back with a restore: items and their TTLs,
//! container records, quota counters, nonces. Two things do not, and a caller restoring under a
//! live engine must handle them: the engine clock's offset (held by `Clock`, not the store), and
//! the engine's in-memory container cache (this store is a sole writer, so the engine caches
//! container records; it must forget them after a restore, as `Engine::reset` does after a reset).
//!
//! The commit version is not restored: it only grows, so a version handed out after the
//! checkpoint is never handed out again for a different write, and a version or ETag a client
//! kept from before the restore can never match a value it did not see.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

pub use super::MAX_CHECKPOINTS;
use super::{Batch, CommitResult, Expired, Key, KeyRange, Page, Record, Store, StoreStats, Write};
use super::{CheckpointError, CheckpointInfo};
use crate::clock::Clock;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// The in-memory backend. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    closed: AtomicBool,
    /// Checkpoints taken by name through the `Store` trait (the admin API's
    /// `/_kvmux/checkpoints`), each with what the listing shows and the clock offset to restore.
    named: std::sync::Mutex<BTreeMap<String, (MemorySnapshot, CheckpointInfo)>>,
}

#[derive(Default)]
struct Inner {
    /// Shared with any checkpoint taken since the last commit (copy on write).
    data: Arc<Data>,
    /// The last commit version handed out. Outside `data` so that a restore cannot lower it.
    last_version: u64,
}

/// Everything a checkpoint holds.
#[derive(Clone, Debug, Default)]
struct Data {
    records: BTreeMap<Key, Record>,
    /// (expires_at, key) for every record with an expiry: the oldest first, ties in key order,
    /// the order of redb's `[expires_at BE][key]` index.
    expiry: BTreeSet<(u64, Key)>,
    /// Absent counters are 0; a counter that reaches 0 is removed, as in redb.
    counters: BTreeMap<Key, i64>,
    /// Bytes of keys and values held in `records`, plus key and 8 bytes for each counter.
    bytes: u64,
}

/// The whole state of a [`MemoryStore`] at one commit: records with their versions and expiries,
/// the expiry index, and every counter. Cheap to clone and to keep (it shares the maps).
#[derive(Clone, Debug)]
pub struct MemorySnapshot {
    data: Arc<Data>,
}

impl MemorySnapshot {
    /// How many records (expired or not) the snapshot holds.
    pub fn records(&self) -> u64 {
        self.data.records.len() as u64
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state, taken in O(1) (see the module doc for what the next commit pays).
    pub fn checkpoint(&self) -> MemorySnapshot {
        MemorySnapshot {
            data: self.read().data.clone(),
        }
    }

    /// Makes `snapshot` the current state, atomically with respect to commits and reads. Commit
    /// versions keep growing from where they are (see the module doc).
    pub fn restore(&self, snapshot: &MemorySnapshot) {
        drop(self.replace(snapshot.data.clone()));
    }

    /// Swaps in new maps and hands back the old ones, so that the caller frees them after the
    /// lock is released: dropping 100k records took 12 ms, which readers would otherwise wait out.
    fn replace(&self, data: Arc<Data>) -> Arc<Data> {
        std::mem::replace(&mut self.write().data, data)
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock can only come from a failed allocation between two map
        // operations; the maps themselves stay valid, so the state is still usable.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Internal("the store is closed".into()));
        }
        Ok(())
    }

    fn apply(&self, batch: &Batch) -> CommitResult {
        self.open()?;
        let mut inner = self.write();
        let Ok(verdict) = super::batch::first_rejection(&*inner.data, batch);
        if let Some(rejected) = verdict {
            return Ok(Err(rejected));
        }
        let version = inner
            .last_version
            .checked_add(1)
            .ok_or_else(|| Error::Internal("commit versions exhausted".into()))?;
        inner.last_version = version;
        // Nothing below can fail, so the batch lands whole.
        let data = Arc::make_mut(&mut inner.data);
        for write in &batch.writes {
            data.apply(write, version);
        }
        Ok(Ok(version))
    }
}

impl Engine {
    /// An engine over a fresh [`MemoryStore`]: nothing is written to disk and everything is gone
    /// when the engine is dropped. A caller that wants checkpoints keeps its own
    /// `Arc<MemoryStore>` and builds the engine with [`Engine::new`].
    pub fn open_memory(clock: Clock) -> Self {
        Engine::new(Arc::new(MemoryStore::new()), clock)
    }
}

fn entry_bytes(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

const COUNTER_BYTES: u64 = 8;

/// The batch rules (see `store::batch`) read the maps directly.
impl super::batch::BatchView for Data {
    type Error = std::convert::Infallible;
    fn record_version(&self, key: &[u8]) -> std::result::Result<Option<u64>, Self::Error> {
        Ok(self.records.get(key).map(|r| r.version))
    }
    fn counter(&self, key: &[u8]) -> std::result::Result<i64, Self::Error> {
        Ok(Data::counter(self, key))
    }
}

impl Data {
    fn counter(&self, key: &[u8]) -> i64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    fn apply(&mut self, write: &Write, version: u64) {
        match write {
            Write::Put {
                key,
                value,
                expires_at,
            } => {
                self.remove_record(key);
                if let Some(exp) = expires_at {
                    self.expiry.insert((*exp, key.clone()));
                }
                self.bytes += entry_bytes(key, value);
                // A copy, not the caller's `Bytes`: that may be a slice of a whole request body,
                // which keeping would hold every other byte of that body in memory too.
                let record = Record {
                    value: Bytes::copy_from_slice(value),
                    expires_at: *expires_at,
                    version,
                };
                self.records.insert(key.clone(), record);
            }
            Write::Delete { key } => self.remove_record(key),
            Write::DeleteRange { start, end } => {
                // BTreeMap::range panics on a reversed range; redb finds nothing in one.
                if start >= end {
                    return;
                }
                let doomed: Vec<Key> = self
                    .records
                    .range::<Key, _>((Bound::Included(start), Bound::Excluded(end)))
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in doomed {
                    self.remove_record(&key);
                }
            }
            Write::Add { counter, delta, .. } => {
                let current = self.counters.get(counter).copied();
                let next = current.unwrap_or(0).saturating_add(*delta);
                match (current.is_some(), next != 0) {
                    (false, true) => {
                        self.bytes += counter.len() as u64 + COUNTER_BYTES;
                        self.counters.insert(counter.clone(), next);
                    }
                    (true, true) => {
                        self.counters.insert(counter.clone(), next);
                    }
                    (true, false) => self.remove_counter(counter),
                    (false, false) => {}
                }
            }
            Write::ResetCounter { counter } => self.remove_counter(counter),
        }
    }

    /// Removes a record and its expiry index entry, if it is there.
    fn remove_record(&mut self, key: &[u8]) {
        if let Some((key, old)) = self.records.remove_entry(key) {
            self.bytes = self.bytes.saturating_sub(entry_bytes(&key, &old.value));
            if let Some(exp) = old.expires_at {
                self.expiry.remove(&(exp, key));
            }
        }
    }

    fn remove_counter(&mut self, counter: &[u8]) {
        if self.counters.remove(counter).is_some() {
            self.bytes = self
                .bytes
                .saturating_sub(counter.len() as u64 + COUNTER_BYTES);
        }
    }

    /// The records of `range`, in key order. Empty, rather than a panic, for a range whose start
    /// lies after its end (or `(k, k)` exclusive), which a client-chosen start/end can produce.
    fn range(&self, range: &KeyRange) -> Box<dyn DoubleEndedIterator<Item = (&Key, &Record)> + '_> {
        if !well_formed(&range.start, &range.end) {
            return Box::new(std::iter::empty());
        }
        Box::new(
            self.records
                .range::<Key, _>((range.start.as_ref(), range.end.as_ref())),
        )
    }
}

/// Whether `BTreeMap::range` accepts these bounds (it panics otherwise).
fn well_formed(start: &Bound<Key>, end: &Bound<Key>) -> bool {
    match (start, end) {
        (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) => {
            s < e || (s == e && !matches!((start, end), (Bound::Excluded(_), Bound::Excluded(_))))
        }
        _ => true,
    }
}

fn visible(record: &Record, now: u64) -> bool {
    record.expires_at.is_none_or(|exp| now < exp)
}

impl Store for MemoryStore {
    fn get_many<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<Option<Record>>>> {
        let result = self.open().map(|()| {
            let inner = self.read();
            keys.iter()
                .map(|k| inner.data.records.get(k).cloned())
                .collect()
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
        let result = self.open().map(|()| {
            let inner = self.read();
            let entries = inner.data.range(&range);
            let entries: Box<dyn Iterator<Item = (&Key, &Record)>> = if reverse {
                Box::new(entries.rev())
            } else {
                entries
            };
            let mut page = Page::default();
            for (key, record) in entries.filter(|(_, r)| visible(r, now)) {
                if page.records.len() == limit {
                    page.more = true;
                    break;
                }
                page.records.push((key.clone(), record.clone()));
            }
            page
        });
        async move { result }.boxed()
    }

    fn count(&self, range: KeyRange, now: u64) -> BoxFuture<'_, Result<u64>> {
        let result = self.open().map(|()| {
            let inner = self.read();
            let live = inner.data.range(&range).filter(|(_, r)| visible(r, now));
            live.count() as u64
        });
        async move { result }.boxed()
    }

    fn counters<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<i64>>> {
        let result = self.open().map(|()| {
            let inner = self.read();
            keys.iter().map(|k| inner.data.counter(k)).collect()
        });
        async move { result }.boxed()
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, CommitResult> {
        let result = self.apply(&batch);
        async move { result }.boxed()
    }

    fn expired(&self, now: u64, max: usize) -> BoxFuture<'_, Result<Vec<Expired>>> {
        let result = self.open().map(|()| {
            let inner = self.read();
            let data = &inner.data;
            // Every (expires_at, key) with expires_at <= now: below (now + 1, empty key).
            let end = match now.checked_add(1) {
                Some(next) => Bound::Excluded((next, Key::new())),
                None => Bound::Unbounded,
            };
            data.expiry
                .range((Bound::Unbounded, end))
                .take(max)
                .filter_map(|(_, key)| {
                    let record = data.records.get(key)?;
                    Some(Expired {
                        key: key.clone(),
                        version: record.version,
                        value_len: record.value.len() as u64,
                    })
                })
                .collect()
        });
        async move { result }.boxed()
    }

    /// Drops every record and counter. Checkpoints taken before keep theirs; versions go on
    /// growing, as redb's do across a reset.
    fn reset(&self) -> BoxFuture<'_, Result<()>> {
        let result = self
            .open()
            .map(|()| drop(self.replace(Arc::new(Data::default()))));
        async move { result }.boxed()
    }

    /// `file_bytes` is the bytes of keys and values held: what a file would hold, less overhead.
    fn stats(&self) -> BoxFuture<'_, Result<StoreStats>> {
        let result = self.open().map(|()| {
            let inner = self.read();
            StoreStats {
                records: inner.data.records.len() as u64,
                file_bytes: inner.data.bytes,
            }
        });
        async move { result }.boxed()
    }

    /// Nothing to flush. Later calls fail, as the trait says; the memory goes with the store.
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        self.closed.store(true, Ordering::Release);
        async { Ok(()) }.boxed()
    }

    /// Only this process can reach the maps.
    fn sole_writer(&self) -> bool {
        true
    }

    /// O(1): shares the maps (see the module doc for what the next commit pays).
    fn checkpoint(
        &self,
        name: &str,
        clock_offset: i64,
    ) -> BoxFuture<'_, std::result::Result<CheckpointInfo, CheckpointError>> {
        let taken = self.open().map_err(CheckpointError::from).and_then(|()| {
            let mut named = self.named_checkpoints();
            if named.len() >= MAX_CHECKPOINTS && !named.contains_key(name) {
                return Err(CheckpointError::TooMany(MAX_CHECKPOINTS));
            }
            let snapshot = self.checkpoint();
            let info = CheckpointInfo {
                name: name.to_string(),
                created_ms: crate::clock::wall_clock_millis(),
                records: snapshot.records(),
                clock_offset,
            };
            named.insert(name.to_string(), (snapshot, info.clone()));
            Ok(info)
        });
        async move { taken }.boxed()
    }

    fn restore_checkpoint(
        &self,
        name: &str,
    ) -> BoxFuture<'_, std::result::Result<CheckpointInfo, CheckpointError>> {
        let restored = self.open().map_err(CheckpointError::from).and_then(|()| {
            let (snapshot, info) = self
                .named_checkpoints()
                .get(name)
                .cloned()
                .ok_or_else(|| CheckpointError::NotFound(name.to_string()))?;
            self.restore(&snapshot);
            Ok(info)
        });
        async move { restored }.boxed()
    }

    fn list_checkpoints(
        &self,
    ) -> BoxFuture<'_, std::result::Result<Vec<CheckpointInfo>, CheckpointError>> {
        let list = self
            .named_checkpoints()
            .values()
            .map(|(_, info)| info.clone())
            .collect();
        async move { Ok(list) }.boxed()
    }

    fn drop_checkpoint(
        &self,
        name: &str,
    ) -> BoxFuture<'_, std::result::Result<(), CheckpointError>> {
        // Dropped outside the lock's statement: freeing a large snapshot takes a while.
        let removed = self.named_checkpoints().remove(name);
        let found = match removed {
            Some(_) => Ok(()),
            None => Err(CheckpointError::NotFound(name.to_string())),
        };
        async move { found }.boxed()
    }
}

impl MemoryStore {
    fn named_checkpoints(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<String, (MemorySnapshot, CheckpointInfo)>> {
        // Every change is one map insert or remove: the map is valid after any panic.
        self.named.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Check, Rejected};

    fn put(key: &[u8], value: &[u8], expires_at: Option<u64>) -> Write {
        Write::Put {
            key: key.to_vec(),
            value: Bytes::copy_from_slice(value),
            expires_at,
        }
    }

    fn batch(writes: Vec<Write>) -> Batch {
        Batch {
            checks: Vec::new(),
            writes,
        }
    }

    async fn commit(store: &MemoryStore, b: Batch) -> std::result::Result<u64, Rejected> {
        store.commit(b).await.expect("store healthy")
    }

    async fn value(store: &MemoryStore, key: &[u8]) -> Option<Bytes> {
        let got = store.get_many(&[key.to_vec()]).await.expect("readable");
        got.into_iter().next().flatten().map(|r| r.value)
    }

    #[tokio::test]
    async fn a_restore_brings_back_records_expiries_and_counters_but_never_old_versions() {
        let store = MemoryStore::new();
        let v1 = commit(
            &store,
            batch(vec![
                put(b"a", b"one", Some(10)),
                Write::Add {
                    counter: b"c".to_vec(),
                    delta: 3,
                    limit: None,
                },
            ]),
        )
        .await
        .unwrap();
        let snapshot = store.checkpoint();
        let v2 = commit(
            &store,
            batch(vec![
                put(b"a", b"two", None),
                put(b"b", b"new", Some(5)),
                Write::ResetCounter {
                    counter: b"c".to_vec(),
                },
            ]),
        )
        .await
        .unwrap();
        assert_eq!(value(&store, b"a").await.as_deref(), Some(&b"two"[..]));
        // The checkpoint did not see the later commit.
        assert_eq!(snapshot.records(), 1);

        store.restore(&snapshot);
        let a = store.get_many(&[b"a".to_vec()]).await.unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(
            (&a.value[..], a.expires_at, a.version),
            (&b"one"[..], Some(10), v1)
        );
        assert_eq!(value(&store, b"b").await, None);
        assert_eq!(store.counters(&[b"c".to_vec()]).await.unwrap(), vec![3]);
        let expired: Vec<Key> = store
            .expired(100, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            expired,
            vec![b"a".to_vec()],
            "the expiry index came back too"
        );
        assert_eq!(store.stats().await.unwrap().file_bytes, 1 + 3 + 1 + 8);

        // Versions keep growing past everything handed out before the restore.
        let v3 = commit(&store, batch(vec![put(b"a", b"three", None)]))
            .await
            .unwrap();
        assert!(v3 > v2, "{v3} after {v2}");
        // A check against the version a client saw before the restore cannot match.
        let stale = Batch {
            checks: vec![Check::AtVersion(b"a".to_vec(), v2)],
            writes: vec![put(b"a", b"x", None)],
        };
        assert!(matches!(
            commit(&store, stale).await,
            Err(Rejected::Check(_))
        ));

        // The snapshot is still whole after being restored and written over: restore it again.
        store.restore(&snapshot);
        assert_eq!(value(&store, b"a").await.as_deref(), Some(&b"one"[..]));
    }

    #[tokio::test]
    async fn named_checkpoints_are_capped_and_a_name_is_replaced_in_place() {
        let store = MemoryStore::new();
        for i in 0..MAX_CHECKPOINTS {
            Store::checkpoint(&store, &format!("c{i}"), 0)
                .await
                .unwrap();
        }
        assert_eq!(
            Store::checkpoint(&store, "one-more", 0).await,
            Err(CheckpointError::TooMany(MAX_CHECKPOINTS))
        );
        // Taking an existing name again replaces it, so it is not refused.
        Store::checkpoint(&store, "c0", 7).await.unwrap();
        store.drop_checkpoint("c1").await.unwrap();
        Store::checkpoint(&store, "one-more", 0).await.unwrap();
        assert_eq!(
            store.list_checkpoints().await.unwrap().len(),
            MAX_CHECKPOINTS
        );
    }

    #[tokio::test]
    async fn a_checkpoint_costs_no_copy_until_the_next_commit() {
        let store = MemoryStore::new();
        commit(&store, batch(vec![put(b"k", b"v", None)]))
            .await
            .unwrap();
        let snapshot = store.checkpoint();
        assert!(
            Arc::ptr_eq(&snapshot.data, &store.read().data),
            "a checkpoint shares the maps"
        );
        commit(&store, batch(vec![put(b"k", b"w", None)]))
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&snapshot.data, &store.read().data));
        let record = &snapshot.data.records[&b"k".to_vec()];
        assert_eq!(&record.value[..], b"v");
    }

    #[tokio::test]
    async fn stored_values_do_not_keep_the_callers_buffer_alive() {
        let store = MemoryStore::new();
        let body = Bytes::from(vec![7u8; 4096]);
        let write = Write::Put {
            key: b"k".to_vec(),
            value: body.slice(10..14),
            expires_at: None,
        };
        commit(&store, batch(vec![write])).await.unwrap();
        // Only our handle and none of the store's keep the 4 KiB buffer: it can be reclaimed.
        assert!(body.try_into_mut().is_ok());
        assert_eq!(
            value(&store, b"k").await.unwrap(),
            Bytes::from(vec![7u8; 4])
        );
    }

    #[test]
    fn reversed_and_empty_exclusive_ranges_are_well_formed_or_refused() {
        let k = |s: &[u8]| s.to_vec();
        assert!(!well_formed(
            &Bound::Included(k(b"b")),
            &Bound::Included(k(b"a"))
        ));
        assert!(!well_formed(
            &Bound::Excluded(k(b"a")),
            &Bound::Excluded(k(b"a"))
        ));
        assert!(well_formed(
            &Bound::Included(k(b"a")),
            &Bound::Excluded(k(b"a"))
        ));
        assert!(well_formed(
            &Bound::Excluded(k(b"a")),
            &Bound::Included(k(b"a"))
        ));
        assert!(well_formed(&Bound::Unbounded, &Bound::Excluded(k(b""))));
    }
}
