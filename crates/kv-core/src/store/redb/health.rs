//! The swappable database handle: reopening after a failed write, and the health probe that
//! heals the store once space returns.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use redb::{Database, Durability, ReadableTable};

use super::*;
use crate::error::{Error, Result};

/// While the last commit failed, how often the writer reopens the file and tries a tiny commit, so
/// the store heals (and `health` says so) once space returns even if no client writes.
pub(super) const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The open database, swappable. After one failed write (e.g. ENOSPC) redb latches every later
/// operation on that handle to `PreviousIo` until the file is closed and opened again, so a store
/// that kept its first handle stayed broken after space returned. The writer thread reopens it
/// instead; readers borrow the handle through the lock, so none is using it at the swap (redb also
/// locks its file, so the old handle must be gone before the new one opens).
pub(super) struct DbSlot {
    db: RwLock<Option<Database>>,
    path: PathBuf,
    /// Opens the file: redb's own file backend, or in tests one that injects I/O faults.
    opener: Opener,
    /// Why the store cannot write: the last commit's error, cleared by the next commit that
    /// succeeds (see `Store::health`).
    failure: Mutex<Option<String>>,
}

/// How a [`DbSlot`] opens its database, at start and after every failed write.
pub(super) type Opener =
    Box<dyn Fn() -> std::result::Result<Database, redb::DatabaseError> + Send + Sync>;

impl DbSlot {
    pub(super) fn new(path: &Path, opener: Opener) -> Result<Self> {
        let db = Self::open_database(&opener)?;
        Ok(DbSlot {
            db: RwLock::new(Some(db)),
            path: path.to_path_buf(),
            opener,
            failure: Mutex::new(None),
        })
    }

    /// Opens (or creates) the file and its tables, so read transactions never see them missing.
    pub(super) fn open_database(opener: &Opener) -> Result<Database> {
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
    pub(super) fn with<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
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
    pub(super) fn reopen(&self) -> Result<()> {
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        drop(guard.take());
        *guard = Some(Self::open_database(&self.opener)?);
        tracing::info!(path = %self.path.display(), "reopened the database after a failed write");
        Ok(())
    }

    pub(super) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn set_failure(&self, failure: Option<String>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }

    /// Reopens the file if a failed write left it unusable; true when the handle can be used.
    pub(super) fn heal(&self) -> Result<()> {
        if self.failure().is_none() {
            return Ok(());
        }
        self.reopen()
    }

    /// Whether the store can write again: the file system takes [`PROBE_BYTES`] beside the
    /// database (a tiny commit alone would fit in pages the file already has, and report a still
    /// full disk healthy), then one small commit goes through a reopened handle.
    pub(super) fn probe(&self, durable: bool) -> Result<()> {
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
pub(super) const PROBE_BYTES: usize = BLOB_MIN_BYTES;

/// A META entry the health probe rewrites (its value means nothing).
pub(super) const PROBES: &str = "health_probes";

/// Notes whether a write transaction committed, for `health` and for the writer's next start.
pub(super) fn record_outcome<T>(db: &DbSlot, result: Result<T>) -> Result<T> {
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
