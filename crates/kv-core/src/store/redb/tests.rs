use std::path::Path;

use bytes::Bytes;

use super::*;
use crate::store::{Check, Rejected};

fn big(fill: u8) -> Bytes {
    Bytes::from(vec![fill; BLOB_MIN_BYTES + 17])
}

fn put(key: &[u8], value: Bytes, expires_at: Option<u64>) -> Write {
    Write::Put {
        key: key.to_vec(),
        value,
        expires_at,
    }
}

fn batch(writes: Vec<Write>) -> Batch {
    Batch {
        checks: Vec::new(),
        writes,
    }
}

/// The files present in `dir`, by name.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                e.file_type().ok()?.is_file().then_some(())?;
                e.file_name().into_string().ok()
            })
            .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The blob files present, by name.
fn blob_files(store: &RedbStore) -> Vec<String> {
    files_in(&store.blobs.dir)
}

/// Opens `path` again once the closed store's writer thread has let go of the file lock.
async fn reopen(path: &Path) -> Result<RedbStore> {
    let mut reopened = RedbStore::open(path, true);
    for _ in 0..200 {
        match &reopened {
            Err(Error::Internal(m)) if m.contains("already open") => {}
            _ => break,
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        reopened = RedbStore::open(path, true);
    }
    reopened
}

async fn commit(store: &RedbStore, b: Batch) -> std::result::Result<u64, Rejected> {
    store.commit(b).await.expect("store healthy")
}

#[tokio::test]
async fn large_values_live_in_side_files_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("kv.redb"), true).unwrap();
    let small = Bytes::from_static(b"small");
    let v1 = commit(
        &store,
        batch(vec![
            put(b"a", big(1), Some(50)),
            put(b"b", small.clone(), None),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        blob_files(&store).len(),
        1,
        "only the large value became a file"
    );
    let got = store
        .get_many(&[b"a".to_vec(), b"b".to_vec()])
        .await
        .unwrap();
    let a = got[0].clone().unwrap();
    assert_eq!((a.value, a.version, a.expires_at), (big(1), v1, Some(50)));
    assert_eq!(got[1].clone().unwrap().value, small);
    let page = store
        .scan(KeyRange::prefix(b""), 10, false, 0)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 2);
    assert_eq!(page.records[0].1.value, big(1));
    let expired = store.expired(60, 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].value_len, big(1).len() as u64);
    // A version check sees the real version, not the blob marker.
    let checked = Batch {
        checks: vec![Check::AtVersion(b"a".to_vec(), v1)],
        writes: vec![put(b"c", Bytes::from_static(b"x"), None)],
    };
    assert!(commit(&store, checked).await.is_ok());
}

#[tokio::test]
async fn superseded_deleted_and_rejected_blobs_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("kv.redb"), false).unwrap();
    commit(&store, batch(vec![put(b"a", big(1), None)]))
        .await
        .unwrap();
    let first = blob_files(&store);
    commit(&store, batch(vec![put(b"a", big(2), None)]))
        .await
        .unwrap();
    let second = blob_files(&store);
    assert_eq!(second.len(), 1);
    assert_ne!(first, second, "the overwritten value's file is gone");
    commit(
        &store,
        batch(vec![put(b"a", Bytes::from_static(b"tiny"), None)]),
    )
    .await
    .unwrap();
    assert!(
        blob_files(&store).is_empty(),
        "a small overwrite drops the file"
    );

    let refused = Batch {
        checks: vec![Check::Present(b"missing".to_vec())],
        writes: vec![put(b"z", big(3), None)],
    };
    assert!(matches!(
        commit(&store, refused).await,
        Err(Rejected::Check(_))
    ));
    assert!(
        blob_files(&store).is_empty(),
        "a refused batch keeps no file"
    );

    commit(
        &store,
        batch(vec![put(b"r1", big(4), None), put(b"r2", big(5), None)]),
    )
    .await
    .unwrap();
    commit(&store, batch(vec![put(b"d", big(6), None)]))
        .await
        .unwrap();
    assert_eq!(blob_files(&store).len(), 3);
    commit(
        &store,
        batch(vec![Write::DeleteRange {
            start: b"r".to_vec(),
            end: b"s".to_vec(),
        }]),
    )
    .await
    .unwrap();
    assert_eq!(blob_files(&store).len(), 1);
    commit(&store, batch(vec![Write::Delete { key: b"d".to_vec() }]))
        .await
        .unwrap();
    assert!(blob_files(&store).is_empty());
    assert_eq!(store.get_many(&[b"d".to_vec()]).await.unwrap(), vec![None]);

    commit(&store, batch(vec![put(b"e", big(7), None)]))
        .await
        .unwrap();
    store.reset().await.unwrap();
    assert!(blob_files(&store).is_empty(), "reset drops every file");
}

/// redb's in-memory backend behind a switch that makes every write fail as a full disk does,
/// so the disk-full recovery is covered without mounting a file system (tests/disk_full.rs
/// does that too, as root).
#[derive(Debug)]
struct FullDisk {
    mem: Arc<redb::backends::InMemoryBackend>,
    full: Arc<std::sync::atomic::AtomicBool>,
}

impl FullDisk {
    fn check(&self) -> std::io::Result<()> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            Err(std::io::ErrorKind::StorageFull.into())
        } else {
            Ok(())
        }
    }
}

impl redb::StorageBackend for FullDisk {
    fn len(&self) -> std::io::Result<u64> {
        self.mem.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.mem.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        if len > self.mem.len()? {
            self.check()?;
        }
        self.mem.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.check()?;
        self.mem.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.mem.write(offset, data)
    }
}

#[tokio::test]
async fn after_a_disk_full_commit_writes_resume_and_health_recovers() {
    use redb::StorageBackend as _;
    let dir = tempfile::tempdir().unwrap();
    let mem = Arc::new(redb::backends::InMemoryBackend::new());
    let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opener: Opener = {
        let (mem, full) = (mem.clone(), full.clone());
        Box::new(move || {
            redb::Builder::new().create_with_backend(FullDisk {
                mem: mem.clone(),
                full: full.clone(),
            })
        })
    };
    let store = RedbStore::open_through(&dir.path().join("kv.redb"), true, opener).unwrap();
    let v = || Bytes::from_static(b"value");
    commit(&store, batch(vec![put(b"a", v(), None)]))
        .await
        .unwrap();
    assert_eq!(store.health(), Ok(()));

    full.store(true, std::sync::atomic::Ordering::SeqCst);
    let failed = store.commit(batch(vec![put(b"b", v(), None)])).await;
    assert!(matches!(failed, Err(Error::Internal(_))), "{failed:?}");
    let health = store
        .health()
        .expect_err("a store that cannot write says so");
    assert!(health.contains("cannot write"), "{health}");
    let still = store
        .commit(batch(vec![Write::Delete { key: b"a".to_vec() }]))
        .await;
    assert!(still.is_err(), "still full");

    full.store(false, std::sync::atomic::Ordering::SeqCst);
    // Before the reopen these failed with redb's PreviousIo for as long as the process ran.
    commit(&store, batch(vec![put(b"c", v(), None)]))
        .await
        .unwrap();
    commit(&store, batch(vec![Write::Delete { key: b"a".to_vec() }]))
        .await
        .unwrap();
    assert_eq!(store.health(), Ok(()));
    let got = store
        .get_many(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
        .await
        .unwrap();
    assert_eq!(got[0], None);
    assert_eq!(got[1], None, "the failed write left nothing behind");
    assert_eq!(got[2].clone().unwrap().value, v());
    assert!(mem.len().unwrap() > 0);
}

#[tokio::test]
async fn reopening_quarantines_files_no_commit_refers_to_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    {
        let store = RedbStore::open(&path, true).unwrap();
        commit(&store, batch(vec![put(b"kept", big(9), None)]))
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    let blob_dir = path.with_extension("blobs");
    let kept = files_in(&blob_dir);
    // What a crash between writing a blob and committing its batch leaves behind.
    let orphan = format!("{:032x}", 42u128);
    std::fs::write(blob_dir.join(&orphan), b"orphan").unwrap();
    let store = reopen(&path).await.unwrap();
    assert_eq!(blob_files(&store), kept);
    let quarantined = blob_dir.join(QUARANTINE_DIR);
    assert_eq!(
        files_in(&quarantined),
        vec![orphan.clone()],
        "moved, not deleted"
    );
    assert_eq!(
        std::fs::read(quarantined.join(&orphan)).unwrap(),
        b"orphan".to_vec()
    );
    let got = store.get_many(&[b"kept".to_vec()]).await.unwrap();
    assert_eq!(got[0].clone().unwrap().value, big(9));
    store.close().await.unwrap();
    drop(store);
    // The quarantine directory itself is never taken for a side file on the next open.
    let store = reopen(&path).await.unwrap();
    assert_eq!(blob_files(&store), kept);
    assert_eq!(files_in(&quarantined), vec![orphan]);
}

#[tokio::test]
async fn a_missing_or_empty_database_beside_side_files_refuses_to_start_and_keeps_them() {
    for damage in ["missing", "empty"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        {
            let store = RedbStore::open(&path, true).unwrap();
            commit(
                &store,
                batch(vec![put(b"a", big(1), None), put(b"b", big(2), None)]),
            )
            .await
            .unwrap();
            store.close().await.unwrap();
        }
        let blob_dir = path.with_extension("blobs");
        let before = files_in(&blob_dir);
        assert_eq!(before.len(), 2);
        // Wait for the closed store to let go of its file before damaging it.
        drop(reopen(&path).await.unwrap());
        // The dropped store's writer thread may still hold the file for a moment (and write its
        // last pages on the way out): the damage replaces the file rather than truncating it in
        // place, so those late writes land in the unlinked old file, not in the damaged one.
        std::fs::remove_file(&path).unwrap();
        if damage == "empty" {
            std::fs::File::create(&path).unwrap();
        }
        let refused = reopen(&path).await;
        let Err(Error::Internal(message)) = refused else {
            panic!("a {damage} database must refuse to start");
        };
        assert!(message.contains("refusing to start"), "{message}");
        assert!(message.contains(damage), "{message}");
        assert!(
            message.contains(&blob_dir.display().to_string()),
            "{message}"
        );
        assert!(message.contains(&before[0]), "{message}");
        assert!(message.contains("2 large-value side file"), "{message}");
        assert_eq!(files_in(&blob_dir), before, "no side file was touched");
        assert!(!blob_dir.join(QUARANTINE_DIR).exists());
        if damage == "missing" {
            assert!(!path.exists(), "no empty database was created");
        }
    }
    // Without side files a missing database is simply a new store.
    let dir = tempfile::tempdir().unwrap();
    assert!(RedbStore::open(&dir.path().join("kv.redb"), true).is_ok());
}

#[tokio::test]
async fn a_lost_side_file_fails_only_its_item_with_an_internal_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("kv.redb"), false).unwrap();
    let lost = crate::keys::item(7, b"lost-key");
    let other = crate::keys::item(7, b"other-key");
    let small = crate::keys::item(7, b"small");
    commit(
        &store,
        batch(vec![
            put(&lost, big(1), None),
            put(&other, big(2), None),
            put(&small, Bytes::from_static(b"s"), None),
        ]),
    )
    .await
    .unwrap();
    let before = blob_files(&store);
    let lost_file = {
        let raw = store.db.with(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(RECORDS)?;
            let raw = table.get(lost.as_slice())?.map(|g| g.value().to_vec());
            Ok(raw)
        });
        let raw = raw.unwrap().unwrap();
        let Ok((_, _, Body::Blob { id, .. })) = decode(&raw) else {
            panic!("the large value is a side file");
        };
        format!("{id:032x}")
    };
    assert!(before.contains(&lost_file));
    std::fs::remove_file(store.blobs.dir.join(&lost_file)).unwrap();

    for read in [
        store.get_many(std::slice::from_ref(&lost)).await,
        store
            .scan(
                KeyRange::prefix(&crate::keys::items_prefix(7)),
                10,
                false,
                0,
            )
            .await
            .map(|_| Vec::new()),
    ] {
        let Err(Error::Internal(message)) = read else {
            panic!("a lost side file is an internal error, got {read:?}");
        };
        assert!(message.contains("item \"lost-key\""), "{message}");
        assert!(message.contains(&lost_file), "{message}");
    }
    let got = store
        .get_many(&[other.clone(), small.clone()])
        .await
        .unwrap();
    assert_eq!(got[0].clone().unwrap().value, big(2));
    assert_eq!(&got[1].clone().unwrap().value[..], b"s");
    // The item can still be deleted or overwritten, which clears the error.
    commit(&store, batch(vec![Write::Delete { key: lost.clone() }]))
        .await
        .unwrap();
    assert_eq!(store.get_many(&[lost]).await.unwrap(), vec![None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_racing_overwrites_always_get_one_whole_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(&dir.path().join("kv.redb"), false).unwrap());
    commit(&store, batch(vec![put(b"k", big(0), None)]))
        .await
        .unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for fill in 1..=40u8 {
                commit(&store, batch(vec![put(b"k", big(fill), None)]))
                    .await
                    .unwrap();
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let got = store.get_many(&[b"k".to_vec()]).await.unwrap();
        let value = got[0].clone().unwrap().value;
        assert_eq!(value.len(), big(0).len());
        assert!(
            value.iter().all(|b| *b == value[0]),
            "a read never mixes two values"
        );
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 0);
    assert_eq!(
        blob_files(&store).len(),
        1,
        "every superseded file was deleted"
    );
}

#[tokio::test]
async fn side_files_a_checkpoint_may_name_are_kept_until_the_last_checkpoint_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("db.redb"), true).unwrap();
    commit(&store, batch(vec![put(b"k", big(1), None)]))
        .await
        .unwrap();
    let at_checkpoint = blob_files(&store);
    assert_eq!(at_checkpoint.len(), 1);
    // `two` first: restoring `one` keeps the checkpoints taken before it.
    store.checkpoint("two", 0).await.unwrap();
    store.checkpoint("one", 0).await.unwrap();

    // Replaced, then deleted: without the checkpoints both files would be gone now.
    commit(&store, batch(vec![put(b"k", big(2), None)]))
        .await
        .unwrap();
    commit(&store, batch(vec![Write::Delete { key: b"k".to_vec() }]))
        .await
        .unwrap();
    assert_eq!(blob_files(&store).len(), 2, "both kept for the checkpoints");
    // A value written after the checkpoint, live when the restore comes.
    commit(&store, batch(vec![put(b"later", big(3), None)]))
        .await
        .unwrap();

    store.restore_checkpoint("one").await.unwrap();
    let got = store.get_many(&[b"k".to_vec(), b"later".to_vec()]).await;
    let got = got.unwrap();
    assert!(got[0].as_ref().unwrap().value == big(1));
    assert!(got[1].is_none());

    store.drop_checkpoint("one").await.unwrap();
    assert_eq!(blob_files(&store).len(), 3, "`two` may still name them");
    store.drop_checkpoint("two").await.unwrap();
    assert_eq!(
        blob_files(&store),
        at_checkpoint,
        "the last drop removes every file no current record names"
    );
}

#[tokio::test]
async fn a_restore_drops_the_checkpoints_taken_after_it_and_names_none_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("db.redb"), false).unwrap();
    commit(
        &store,
        batch(vec![put(b"a", Bytes::from_static(b"1"), None)]),
    )
    .await
    .unwrap();
    store.checkpoint("early", 0).await.unwrap();
    store.checkpoint("base", 0).await.unwrap();
    commit(
        &store,
        batch(vec![put(b"b", Bytes::from_static(b"2"), None)]),
    )
    .await
    .unwrap();
    store.checkpoint("later", 0).await.unwrap();

    store.restore_checkpoint("base").await.unwrap();
    let names: Vec<String> = store
        .list_checkpoints()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, vec!["base", "early"]);
    assert_eq!(
        store.restore_checkpoint("later").await,
        Err(CheckpointError::NotFound("later".into()))
    );
    // The one taken before still restores.
    store.restore_checkpoint("early").await.unwrap();
}

#[tokio::test]
async fn a_restore_survives_a_restart_with_the_checkpoints_clock_and_growing_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let store = RedbStore::open(&path, true).unwrap();
    commit(
        &store,
        batch(vec![put(b"a", Bytes::from_static(b"1"), None)]),
    )
    .await
    .unwrap();
    store.checkpoint("one", 40).await.unwrap();
    store.store_clock_offset(900).unwrap();
    let last = commit(
        &store,
        batch(vec![put(b"b", Bytes::from_static(b"2"), None)]),
    )
    .await
    .unwrap();
    store.restore_checkpoint("one").await.unwrap();
    assert_eq!(store.stored_clock_offset().unwrap(), 40);
    store.close().await.unwrap();
    drop(store);

    let store = reopen(&path).await.unwrap();
    assert!(
        store.list_checkpoints().await.unwrap().is_empty(),
        "savepoints live in one process"
    );
    assert_eq!(store.stored_clock_offset().unwrap(), 40);
    let got = store
        .get_many(&[b"a".to_vec(), b"b".to_vec()])
        .await
        .unwrap();
    assert!(got[0].is_some() && got[1].is_none());
    let next = commit(
        &store,
        batch(vec![put(b"c", Bytes::from_static(b"3"), None)]),
    )
    .await
    .unwrap();
    assert!(next > last, "{next} after {last}");
}
