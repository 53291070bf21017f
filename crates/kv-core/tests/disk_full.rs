//! A full disk is not sticky. redb latches every operation on a handle to `PreviousIo` after one
//! failed write, so before the store reopened its file, one ENOSPC made every later write and
//! delete fail even after space was freed, while nothing reported the store unhealthy. These tests
//! fill a real, small tmpfs (mounting needs root; without it they print why and skip).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use kv_core::{Clock, ContainerKind, Engine, Error, Limits, NewContainer, Precondition};

/// A tmpfs mounted on a fresh directory for the life of the value.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the store's writer thread may still hold the file for a moment after the engine
        // is dropped, and a busy mount must not outlive the test.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A file of real (not sparse) bytes that holds space until it is removed.
fn ballast(path: &Path, bytes: usize) -> PathBuf {
    std::fs::write(path, vec![0x5a; bytes]).expect("writing ballast");
    path.to_path_buf()
}

async fn open(dir: &Path) -> (Engine, kv_core::Container) {
    let engine = Engine::open_redb(&dir.join("kv.redb"), true, Clock::new()).expect("open");
    let container = engine
        .create_container(NewContainer {
            account: "acct".into(),
            scope: "s".into(),
            name: "ns".into(),
            kind: ContainerKind::Flat,
            attrs: serde_json::Value::Null,
            limits: Limits::default(),
        })
        .await
        .expect("create container");
    (engine, container)
}

/// Writes 32 KiB values until the disk refuses one; returns the keys that were stored.
async fn fill(engine: &Engine, c: &kv_core::Container, tag: &str) -> Vec<Vec<u8>> {
    let value = Bytes::from(vec![7u8; 32 << 10]);
    let mut stored = Vec::new();
    for i in 0..1_000 {
        let key = format!("{tag}-{i:04}").into_bytes();
        match engine
            .put(c, &key, value.clone(), None, Precondition::None)
            .await
        {
            Ok(_) => stored.push(key),
            Err(Error::Internal(_)) => return stored,
            Err(e) => panic!("a full disk is an internal error, got {e:?}"),
        }
    }
    panic!("4 MiB of tmpfs never filled up");
}

fn skip(why: &str) {
    eprintln!("skipping the disk-full test: cannot mount a tmpfs ({why}); run as root to cover it");
}

#[tokio::test]
async fn writes_and_deletes_resume_and_health_recovers_once_space_returns() {
    let fs = match Tmpfs::mount("4m") {
        Ok(fs) => fs,
        Err(why) => return skip(&why),
    };
    let spare = ballast(&fs.path().join("ballast"), 1536 << 10);
    let (engine, c) = open(fs.path()).await;
    assert_eq!(engine.health(), Ok(()));

    let stored = fill(&engine, &c, "a").await;
    assert!(!stored.is_empty());
    let unhealthy = engine
        .health()
        .expect_err("a store that cannot write says so");
    assert!(unhealthy.contains("kv.redb"), "{unhealthy}");

    std::fs::remove_file(&spare).expect("freeing space");
    // The first write after space returns lands (the old store failed this, and every later one).
    engine
        .put(
            &c,
            b"after",
            Bytes::from_static(b"v"),
            None,
            Precondition::None,
        )
        .await
        .expect("a write after space returns");
    assert_eq!(engine.health(), Ok(()));
    let deleted = engine
        .delete(&c, &stored[..4])
        .await
        .expect("deletes resume");
    assert_eq!(deleted, 4);
    for key in &stored[4..] {
        let item = engine
            .get(&c, key)
            .await
            .expect("reads work")
            .expect("kept");
        assert_eq!(item.value.len(), 32 << 10);
    }
    assert!(engine.get(&c, &stored[0]).await.unwrap().is_none());
    // The counters stayed exact through the failure: only committed writes were charged.
    let usage = engine.usage(&c).await.unwrap();
    assert_eq!(usage.items as usize, stored.len() - 4 + 1);
}

#[tokio::test]
async fn health_recovers_without_any_client_write_once_space_returns() {
    let fs = match Tmpfs::mount("4m") {
        Ok(fs) => fs,
        Err(why) => return skip(&why),
    };
    let spare = ballast(&fs.path().join("ballast"), 1536 << 10);
    let (engine, c) = open(fs.path()).await;
    fill(&engine, &c, "b").await;
    assert!(engine.health().is_err());
    // Still full: the store keeps saying so.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(engine.health().is_err(), "no space came back yet");

    std::fs::remove_file(&spare).expect("freeing space");
    let mut waited = Duration::ZERO;
    while engine.health().is_err() {
        assert!(
            waited < Duration::from_secs(10),
            "the writer's probe never noticed the space"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    engine
        .put(
            &c,
            b"after",
            Bytes::from_static(b"v"),
            None,
            Precondition::None,
        )
        .await
        .expect("writes work");
}
