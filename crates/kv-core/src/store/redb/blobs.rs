//! Side files: values from `BLOB_MIN_BYTES` on live in files beside the database, named by
//! blob id; staging, reading, removing, and quarantining the ones no commit refers to.

use std::path::PathBuf;

use bytes::Bytes;
use redb::{Database, ReadableDatabase};

use super::*;
use crate::error::{Error, Result};
use crate::store::{Batch, Write};

/// Values from this size on are kept in side files rather than in the B-tree (see the module doc).
pub const BLOB_MIN_BYTES: usize = 1 << 20;

/// How often a read retries when a blob its snapshot names was deleted by a later commit.
pub(super) const BLOB_READ_ATTEMPTS: usize = 8;

/// Where a crash's (or a mismatched database's) unreferenced side files are moved, inside the
/// side-file directory: kept, not deleted, because they may be the only copy of a user's value.
pub(super) const QUARANTINE_DIR: &str = "quarantine";

/// A value of a batch's `Write::Put` already written to its side file: the write's index in the
/// batch, the blob id, and the value's length.
#[derive(Clone, Copy, Debug)]
pub(super) struct StagedBlob {
    pub(super) write: usize,
    pub(super) id: u128,
    pub(super) len: u64,
}

/// The directory of side files for large values, named by blob id in hex.
pub(super) struct BlobDir {
    pub(super) dir: PathBuf,
    pub(super) durable: bool,
}

impl BlobDir {
    pub(super) fn path(&self, id: u128) -> PathBuf {
        self.dir.join(format!("{id:032x}"))
    }

    pub(super) fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::Internal(format!("{what} in {}: {e}", self.dir.display()))
    }

    /// Writes every large value of `batch` to a new side file (durably when the store is), and
    /// empties those values in the batch so the caller's copy is not held through the commit.
    pub(super) fn stage(&self, batch: &mut Batch) -> Result<Vec<StagedBlob>> {
        use std::io::Write as _;
        let mut staged = Vec::new();
        for (index, write) in batch.writes.iter_mut().enumerate() {
            let Write::Put { value, .. } = write else {
                continue;
            };
            if value.len() < BLOB_MIN_BYTES {
                continue;
            }
            if staged.is_empty() {
                std::fs::create_dir_all(&self.dir).map_err(|e| self.io_error("creating", e))?;
            }
            let id = uuid::Uuid::new_v4().as_u128();
            let written = (|| {
                let mut file = std::fs::File::create_new(self.path(id))?;
                file.write_all(value)?;
                if self.durable {
                    file.sync_all()?;
                }
                Ok::<_, std::io::Error>(())
            })();
            if let Err(e) = written {
                self.discard(&staged);
                self.remove(&[id]);
                return Err(self.io_error("writing a blob", e));
            }
            staged.push(StagedBlob {
                write: index,
                id,
                len: value.len() as u64,
            });
            *value = Bytes::new();
        }
        if self.durable && !staged.is_empty() {
            // The new names must be durable too before the commit that refers to them.
            std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io_error("syncing", e))?;
        }
        Ok(staged)
    }

    /// The blob's bytes, or None when its file is not there (deleted by a later commit, or lost).
    pub(super) fn read(&self, id: u128) -> Result<Option<Bytes>> {
        match std::fs::read(self.path(id)) {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error("reading a blob", e)),
        }
    }

    /// Deletes the files of staged blobs whose batch was refused, failed or never sent.
    pub(super) fn discard(&self, staged: &[StagedBlob]) {
        self.remove(&staged.iter().map(|s| s.id).collect::<Vec<_>>());
    }

    /// Deletes side files no committed record refers to any more. A failure only leaves a file
    /// behind, which the next open removes.
    pub(super) fn remove(&self, ids: &[u128]) {
        for id in ids {
            if let Err(e) = std::fs::remove_file(self.path(*id)) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, blob = %format!("{id:032x}"), "removing a blob");
                }
            }
        }
    }

    /// The names of side files present (not the quarantine directory).
    pub(super) fn side_files(&self) -> Result<Vec<(u128, PathBuf)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_error("listing", e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io_error("listing", e))?;
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(|n| u128::from_str_radix(n, 16).ok()) {
                found.push((id, entry.path()));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Moves the side files no committed record refers to (a crash between writing a blob and
    /// committing it, or a commit that finished before its deletions did) into `quarantine/`.
    /// Moved, not deleted: if the database is not the one these files belong to (restored from an
    /// older backup, say), they are the only copy of someone's values.
    pub(super) fn quarantine_orphans(&self, db: &Database) -> Result<Vec<u128>> {
        let files = self.side_files()?;
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let tx = db.begin_read()?;
        let index = tx.open_table(BLOBS)?;
        let mut orphans = Vec::new();
        for (id, path) in files {
            if index.get(id)?.is_some() {
                continue;
            }
            let quarantine = self.dir.join(QUARANTINE_DIR);
            std::fs::create_dir_all(&quarantine).map_err(|e| self.io_error("quarantining", e))?;
            std::fs::rename(&path, quarantine.join(format!("{id:032x}")))
                .map_err(|e| self.io_error("quarantining", e))?;
            orphans.push(id);
        }
        Ok(orphans)
    }
}

/// Runs a read until it finds no blob deleted under it. A missing side file is told apart from a
/// racing delete by reading the record again: if a fresh snapshot still names the same file, the
/// file is lost (deleted by hand, a bad restore), and that is reported as `Internal` naming the
/// item, at once, instead of retrying and then failing with a message that names nothing.
pub(super) fn with_blob_retry<T>(
    db: &DbSlot,
    blobs: &BlobDir,
    mut read: impl FnMut() -> Result<std::result::Result<T, MissingBlob>>,
) -> Result<T> {
    for _ in 0..BLOB_READ_ATTEMPTS {
        let missing = match read()? {
            Ok(done) => return Ok(done),
            Err(missing) => missing,
        };
        let still_named = db.with(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(RECORDS)?;
            let raw = table.get(missing.key.as_slice())?;
            Ok(match raw {
                Some(raw) => decode(raw.value())?.2.blob() == Some(missing.id),
                None => false,
            })
        })?;
        if still_named {
            tracing::error!(
                item = %describe_key(&missing.key),
                blob = %format!("{:032x}", missing.id),
                "a large value's side file is missing"
            );
            return Err(Error::Internal(format!(
                "the value of {} is lost: its side file {:032x} is missing from {}",
                describe_key(&missing.key),
                missing.id,
                blobs.dir.display()
            )));
        }
    }
    Err(Error::Internal(
        "a large value kept changing while being read".into(),
    ))
}
