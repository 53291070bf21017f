//! The engine clock's offset, kept in the `meta` table with the data. Engine time only moves
//! forward (`clock/advance`); before this file a restart forgot the offset, so remaining TTLs
//! grew back and keys that had expired but not yet been swept became readable again. Nothing
//! like that happens at a vendor, where time never goes back and an expired key never returns.
//! PostgreSQL keeps the same offset in `kv_meta` (see `store/postgres.rs`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable};

use super::{RedbStore, META};
use crate::clock::Clock;
use crate::error::Result;

pub(super) const CLOCK_OFFSET: &str = "clock_offset";

/// How often the keeper looks for an advance to persist. An advance is an admin call, so the
/// usual cost is one atomic load; the interval bounds how long after `clock/advance` a crash
/// (not a graceful stop, which takes longer than this to drain) could still forget it.
const KEEP_INTERVAL: Duration = Duration::from_millis(10);

impl RedbStore {
    /// The offset persisted last, in seconds (0 in a store that never saw an advance).
    pub fn stored_clock_offset(&self) -> Result<u64> {
        self.db.with(|db| {
            let tx = db.begin_read()?;
            let meta = match tx.open_table(META) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
                Err(e) => return Err(e.into()),
            };
            Ok(meta.get(CLOCK_OFFSET)?.map(|g| g.value()).unwrap_or(0))
        })
    }

    /// Raises the persisted offset to `offset` (never lowers it) in its own durable write
    /// transaction; redb serialises it with the writer thread's group commits.
    pub fn store_clock_offset(&self, offset: u64) -> Result<()> {
        self.db.with(|db| {
            let tx = db.begin_write()?;
            {
                let mut meta = tx.open_table(META)?;
                let stored = meta.get(CLOCK_OFFSET)?.map(|g| g.value()).unwrap_or(0);
                if offset > stored {
                    meta.insert(CLOCK_OFFSET, offset)?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }
}

/// Moves `clock` forward to the persisted offset, then keeps persisting every advance until the
/// store is dropped. Called once when an engine opens a redb store.
pub(crate) fn restore_and_keep(store: &Arc<RedbStore>, clock: &Clock) -> Result<()> {
    let stored = i64::try_from(store.stored_clock_offset()?).unwrap_or(Clock::MAX_OFFSET_SECS);
    let behind = stored.min(Clock::MAX_OFFSET_SECS) - clock.offset();
    if behind > 0 {
        clock.advance(behind as u64);
    }
    let weak: Weak<RedbStore> = Arc::downgrade(store);
    let clock = clock.clone();
    let mut saved = clock.offset();
    std::thread::Builder::new()
        .name("kv-redb-clock".into())
        .spawn(move || loop {
            std::thread::sleep(KEEP_INTERVAL);
            let Some(store) = weak.upgrade() else { break };
            let now = clock.offset();
            if now < saved {
                // A checkpoint restore moved the clock back and stored its offset exactly.
                saved = store
                    .stored_clock_offset()
                    .map_or(now, |s| i64::try_from(s).unwrap_or(now));
            }
            if now > saved {
                match store.store_clock_offset(u64::try_from(now).unwrap_or(0)) {
                    Ok(()) => saved = now,
                    Err(e) => tracing::warn!(error = %e, "persisting the clock offset failed"),
                }
            }
        })
        .map_err(|e| crate::error::Error::Internal(format!("spawning clock keeper: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    /// Opens the engine, retrying while the keeper thread of a just-dropped engine may still
    /// hold the file for one iteration.
    fn open(path: &std::path::Path, clock: Clock) -> Engine {
        for _ in 0..100 {
            if let Ok(e) = Engine::open_redb(path, false, clock.clone()) {
                return e;
            }
            std::thread::sleep(KEEP_INTERVAL);
        }
        panic!("could not reopen {}", path.display());
    }

    #[test]
    fn a_reopened_engine_resumes_the_advanced_clock_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let engine = Engine::open_redb(&path, false, Clock::frozen_at(1_000)).unwrap();
        assert_eq!(engine.clock().advance(100), 1_100);
        // Give the keeper (every KEEP_INTERVAL) ample time to store the advance.
        std::thread::sleep(KEEP_INTERVAL * 30);
        drop(engine);

        let reopened = open(&path, Clock::frozen_at(1_000));
        assert_eq!(
            reopened.clock().now(),
            1_100,
            "the offset came back with the data"
        );
        drop(reopened);

        // A clock already further ahead (e.g. a PostgreSQL peer's) is not pulled back.
        let ahead = Clock::frozen_at(1_000);
        ahead.advance(500);
        let again = open(&path, ahead);
        assert_eq!(again.clock().now(), 1_500);
    }

    #[test]
    fn the_stored_offset_only_grows() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("db.redb"), false).unwrap();
        assert_eq!(store.stored_clock_offset().unwrap(), 0);
        store.store_clock_offset(300).unwrap();
        store.store_clock_offset(200).unwrap();
        assert_eq!(store.stored_clock_offset().unwrap(), 300);
    }
}
