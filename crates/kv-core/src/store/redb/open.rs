//! Opening a redb store: options, refusing a suspicious start, quarantining orphaned side files.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use super::*;
use crate::error::{Error, Result};

/// Refuses to open a database file that is missing or empty while side files exist beside it:
/// redb would create a fresh, empty database, and every side file would then look like an orphan.
/// That start is more likely a lost or truncated database (wrong path, failed restore, disk
/// trouble) than an empty store, so nothing is created and nothing is moved; the operator decides.
pub(super) fn refuse_suspicious_start(path: &Path, blobs: &BlobDir) -> Result<()> {
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
    pub(super) fn open_through(path: &Path, durable: bool, opener: Opener) -> Result<Self> {
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
        let checkpoints = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer_checkpoints = Checkpoints::new(checkpoints.clone());
        std::thread::Builder::new()
            .name("kv-redb-writer".into())
            .spawn(move || run_writer(writer_db, writer_blobs, inbox, durable, writer_checkpoints))
            .map_err(|e| Error::Internal(format!("spawning writer: {e}")))?;
        Ok(RedbStore {
            db,
            path: path.to_path_buf(),
            blobs,
            writer,
            checkpoints,
        })
    }
}
