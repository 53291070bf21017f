//! Engine behaviour the model test does not reach: concurrency through group commit, container
//! lifecycle, account-wide quotas, the background sweeper, and durability across a reopen.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kv_core::{
    Clock, ContainerKind, Engine, Error, ItemWrite, Limits, NewContainer, Precondition, Quota,
    ScanOptions,
};

mod common;

/// The engine under test: redb in `dir`, or with `KV_TEST_POSTGRES` set, PostgreSQL in a schema
/// named after `dir` (so reopening the same `dir` reopens the same data).
async fn try_open(dir: &tempfile::TempDir, clock: Clock) -> kv_core::Result<Arc<Engine>> {
    match common::postgres_url() {
        Some(url) => {
            let name = dir
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("t");
            let schema: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            let url = common::with_schema(&url, &format!("engine_{schema}"));
            let store = kv_core::store::postgres::PostgresStore::open(&url, 8).await?;
            Ok(Arc::new(Engine::new(Arc::new(store), clock)))
        }
        None => Ok(Arc::new(Engine::open_redb(
            &dir.path().join("kv.redb"),
            true,
            clock,
        )?)),
    }
}

async fn open(dir: &tempfile::TempDir, clock: Clock) -> Arc<Engine> {
    try_open(dir, clock).await.expect("open the engine")
}

fn new_container(account: &str, name: &str, limits: Limits) -> NewContainer {
    NewContainer {
        account: account.into(),
        scope: "test".into(),
        name: name.into(),
        kind: ContainerKind::Flat,
        attrs: serde_json::json!({"remark": name}),
        limits,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_if_absent_has_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir, Clock::new()).await;
    let c = engine
        .create_container(new_container("a", "c", Limits::default()))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (engine, c) = (engine.clone(), c.clone());
            tokio::spawn(async move {
                engine
                    .put(
                        &c,
                        b"lock",
                        Bytes::from(format!("owner-{i}")),
                        None,
                        Precondition::Absent,
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) => winners.push(i),
            Err(Error::PreconditionFailed(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let stored = engine.get(&c, b"lock").await.unwrap().unwrap();
    assert_eq!(stored.value, Bytes::from(format!("owner-{}", winners[0])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_counter_updates_never_lose_an_increment() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir, Clock::new()).await;
    let c = engine
        .create_container(new_container("a", "c", Limits::default()))
        .await
        .unwrap();
    // 200 distinct keys written concurrently: the quota counters are commutative adds, so the
    // usage must come out exact even though the writes were merged into shared commits.
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (engine, c) = (engine.clone(), c.clone());
            tokio::spawn(async move {
                engine
                    .put(
                        &c,
                        format!("k{i:03}").as_bytes(),
                        Bytes::from(vec![7u8; i]),
                        None,
                        Precondition::None,
                    )
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let usage = engine.usage(&c).await.unwrap();
    assert_eq!(usage.items, 200);
    assert_eq!(usage.bytes, (0..200).map(|i| 4 + i as i64).sum::<i64>());
    // Read-modify-write with version preconditions from many tasks: no update is lost.
    engine
        .put(&c, b"n", Bytes::from("0"), None, Precondition::None)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (engine, c) = (engine.clone(), c.clone());
            tokio::spawn(async move {
                loop {
                    let cur = engine.get(&c, b"n").await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&cur.value).unwrap().parse().unwrap();
                    match engine
                        .put(
                            &c,
                            b"n",
                            Bytes::from((n + 1).to_string()),
                            None,
                            Precondition::Version(cur.version),
                        )
                        .await
                    {
                        Ok(_) => return,
                        Err(Error::PreconditionFailed(_)) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        engine.get(&c, b"n").await.unwrap().unwrap().value,
        Bytes::from("32")
    );
}

#[tokio::test]
async fn a_failing_batch_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir, Clock::new()).await;
    let c = engine
        .create_container(new_container("a", "c", Limits::default()))
        .await
        .unwrap();
    engine
        .put(&c, b"x", Bytes::from("1"), None, Precondition::None)
        .await
        .unwrap();
    let err = engine
        .write_items(
            &c,
            vec![
                ItemWrite::Put {
                    key: b"y".to_vec(),
                    value: Bytes::from("2"),
                    expires_at: None,
                    precondition: Precondition::None,
                },
                ItemWrite::Delete {
                    key: b"x".to_vec(),
                    precondition: Precondition::None,
                },
                ItemWrite::Put {
                    key: b"z".to_vec(),
                    value: Bytes::from("3"),
                    expires_at: None,
                    precondition: Precondition::Present,
                },
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PreconditionFailed(_)), "{err}");
    assert_eq!(
        engine.get(&c, b"x").await.unwrap().unwrap().value,
        Bytes::from("1")
    );
    assert!(engine.get(&c, b"y").await.unwrap().is_none());
    assert_eq!(engine.usage(&c).await.unwrap().items, 1);
}

#[tokio::test]
async fn container_lifecycle_listing_and_account_quotas() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir, Clock::new()).await;
    let limits = Limits {
        account_group: "g".into(),
        account_max_containers: Some(3),
        account_max_items: Some(4),
        ..Limits::default()
    };
    for name in ["b", "a", "c"] {
        engine
            .create_container(new_container("acct", name, limits.clone()))
            .await
            .unwrap();
    }
    let dup = engine
        .create_container(new_container("acct", "a", limits.clone()))
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::AlreadyExists(_)));
    let over = engine
        .create_container(new_container("acct", "d", limits.clone()))
        .await
        .unwrap_err();
    assert_eq!(over, Error::QuotaExceeded(Quota::AccountContainers));
    // Another account has its own quota and its own names.
    engine
        .create_container(new_container("other", "a", limits.clone()))
        .await
        .unwrap();

    let (page, more) = engine
        .list_containers("acct", "test", None, 2)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(more);
    let (page, more) = engine
        .list_containers("acct", "test", Some("b"), 2)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    assert!(!more);

    // The account item quota spans containers.
    let a = engine.container("acct", "test", "a").await.unwrap();
    let b = engine.container("acct", "test", "b").await.unwrap();
    for k in ["1", "2", "3"] {
        engine
            .put(&a, k.as_bytes(), Bytes::from("v"), None, Precondition::None)
            .await
            .unwrap();
    }
    engine
        .put(&b, b"1", Bytes::from("v"), None, Precondition::None)
        .await
        .unwrap();
    let err = engine
        .put(&b, b"2", Bytes::from("v"), None, Precondition::None)
        .await
        .unwrap_err();
    assert_eq!(err, Error::QuotaExceeded(Quota::AccountItems));

    // Deleting a container gives its items back to the account, and a new container with the
    // same name starts empty.
    engine.delete_container("acct", "test", "a").await.unwrap();
    assert_eq!(engine.account_usage("acct", "g").await.unwrap().0.items, 1);
    engine
        .put(&b, b"2", Bytes::from("v"), None, Precondition::None)
        .await
        .unwrap();
    let err = engine
        .put(&a, b"9", Bytes::from("v"), None, Precondition::None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound(_)),
        "writes to a deleted container must fail: {err}"
    );
    let a2 = engine
        .create_container(new_container("acct", "a", limits.clone()))
        .await
        .unwrap();
    assert_ne!(a2.id, a.id);
    assert!(engine
        .scan(&a2, ScanOptions::prefix(b"", None, 10))
        .await
        .unwrap()
        .items
        .is_empty());

    let updated = engine
        .update_container_attrs("acct", "test", "b", serde_json::json!({"remark": "new"}))
        .await
        .unwrap();
    assert_eq!(
        engine.container("acct", "test", "b").await.unwrap().attrs,
        updated.attrs
    );
    assert!(matches!(
        engine.container("acct", "test", "zzz").await.unwrap_err(),
        Error::NotFound(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_sweeper_removes_expired_items_and_frees_quota() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir, Clock::frozen_at(2_000_000_000)).await;
    let c = engine
        .create_container(new_container(
            "a",
            "c",
            Limits {
                max_items: Some(3),
                ..Limits::default()
            },
        ))
        .await
        .unwrap();
    let now = engine.now();
    for k in ["1", "2", "3"] {
        engine
            .put(
                &c,
                k.as_bytes(),
                Bytes::from("v"),
                Some(now + 10),
                Precondition::None,
            )
            .await
            .unwrap();
    }
    let item = engine.get(&c, b"1").await.unwrap().unwrap();
    assert_eq!(item.expires_at, Some(now + 10));
    // The engine stamps each write with its clock; the stamp is not charged to the quota.
    assert_eq!(item.modified_at_ms, 2_000_000_000_000);
    assert_eq!(engine.usage(&c).await.unwrap().bytes, 3 * 2);
    engine.clock().advance(10);
    // Invisible the instant the clock reaches the expiry, before any sweep.
    assert!(engine.get(&c, b"1").await.unwrap().is_none());
    assert!(engine
        .scan(&c, ScanOptions::prefix(b"", None, 10))
        .await
        .unwrap()
        .items
        .is_empty());
    let sweeper = engine.spawn_sweeper(Duration::from_millis(20));
    let mut usage = engine.usage(&c).await.unwrap();
    for _ in 0..250 {
        if usage.items == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        usage = engine.usage(&c).await.unwrap();
    }
    sweeper.abort();
    assert_eq!((usage.items, usage.bytes), (0, 0));
    // Quota room is back.
    for k in ["4", "5", "6"] {
        engine
            .put(&c, k.as_bytes(), Bytes::from("v"), None, Precondition::None)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_quota_refusal_first_reclaims_expired_but_unswept_items() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir, Clock::frozen_at(2_000_000_000)).await;
    let c = engine
        .create_container(new_container(
            "a",
            "c",
            Limits {
                max_bytes: Some(20),
                ..Limits::default()
            },
        ))
        .await
        .unwrap();
    let now = engine.now();
    engine
        .put(
            &c,
            b"old",
            Bytes::from(vec![1u8; 15]),
            Some(now + 5),
            Precondition::None,
        )
        .await
        .unwrap();
    assert_eq!(
        engine
            .put(
                &c,
                b"new",
                Bytes::from(vec![2u8; 15]),
                None,
                Precondition::None
            )
            .await
            .unwrap_err(),
        Error::QuotaExceeded(Quota::ContainerBytes)
    );
    engine.clock().advance(5);
    // No sweeper runs here: the put itself must find the room the expired item held.
    engine
        .put(
            &c,
            b"new",
            Bytes::from(vec![2u8; 15]),
            None,
            Precondition::None,
        )
        .await
        .unwrap();
    assert_eq!(engine.usage(&c).await.unwrap().bytes, 18);
}

#[tokio::test]
async fn data_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(&dir, Clock::new()).await;
        let c = engine
            .create_container(new_container("a", "c", Limits::default()))
            .await
            .unwrap();
        for i in 0..100u32 {
            engine
                .put(
                    &c,
                    &i.to_be_bytes(),
                    Bytes::from(i.to_string()),
                    None,
                    Precondition::None,
                )
                .await
                .unwrap();
        }
        engine.close().await.unwrap();
        assert!(engine
            .put(&c, b"late", Bytes::from("x"), None, Precondition::None)
            .await
            .is_err());
    }
    // redb holds a file lock until the writer thread's handle is gone; give it a moment.
    let mut reopened = None;
    for _ in 0..100 {
        match try_open(&dir, Clock::new()).await {
            Ok(e) => {
                reopened = Some(e);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let engine = reopened.expect("reopen");
    let c = engine.container("a", "test", "c").await.unwrap();
    let page = engine
        .scan(&c, ScanOptions::prefix(b"", None, 1000))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 100);
    assert!(page
        .items
        .iter()
        .enumerate()
        .all(|(i, item)| item.value == i.to_string()));
    assert_eq!(engine.usage(&c).await.unwrap().items, 100);
}

#[test]
fn cursors_round_trip_and_garbage_is_invalid() {
    let key = b"\x00\xffabc".to_vec();
    assert_eq!(
        kv_core::decode_cursor(&kv_core::encode_cursor(&key)).unwrap(),
        key
    );
    for bad in ["zz", "abc", "é1"] {
        assert!(
            matches!(kv_core::decode_cursor(bad), Err(Error::Invalid(_))),
            "{bad}"
        );
    }
}

/// A container of `account` in its own scope and account group, as a different dialect makes.
fn in_group(account: &str, group: &str, name: &str) -> NewContainer {
    NewContainer {
        scope: format!("{group}/zone"),
        limits: Limits {
            account_group: group.into(),
            ..Limits::default()
        },
        ..new_container(account, name, Limits::default())
    }
}

fn bytes_of(n: usize) -> Bytes {
    Bytes::from(vec![b'v'; n])
}

#[tokio::test]
async fn the_account_byte_cap_holds_across_every_group_container_and_dialect() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir, Clock::frozen_at(2_000_000_000)).await;
    engine.set_account_byte_limit(
        Some(1_000),
        std::collections::HashMap::from([("vip".to_string(), 3_000)]),
    );
    assert_eq!(engine.account_byte_limit("anyone"), Some(1_000));
    assert_eq!(engine.account_byte_limit("vip"), Some(3_000));
    // Two vendors' containers (two account groups, two scopes) of one account share one cap.
    let tencent = engine
        .create_container(in_group("acct", "tencent", "ns1"))
        .await
        .unwrap();
    let huawei = engine
        .create_container(in_group("acct", "huawei", "table1"))
        .await
        .unwrap();
    engine
        .put(&tencent, b"k1", bytes_of(598), None, Precondition::None)
        .await
        .unwrap();
    assert_eq!(engine.account_bytes("acct").await.unwrap(), 600);
    let refused = engine
        .put(&huawei, b"k2", bytes_of(498), None, Precondition::None)
        .await;
    assert_eq!(refused, Err(Error::QuotaExceeded(Quota::AccountBytes)));
    // A third container in yet another group is no way round it either.
    let third = engine
        .create_container(in_group("acct", "aliyun-esa", "ns2"))
        .await
        .unwrap();
    let refused = engine
        .put(&third, b"k3", bytes_of(498), None, Precondition::None)
        .await;
    assert_eq!(refused, Err(Error::QuotaExceeded(Quota::AccountBytes)));
    // Up to the cap exactly is fine.
    engine
        .put(&huawei, b"k2", bytes_of(398), None, Precondition::None)
        .await
        .unwrap();
    assert_eq!(engine.account_bytes("acct").await.unwrap(), 1_000);
    let refused = engine
        .put(&third, b"x", Bytes::new(), None, Precondition::None)
        .await;
    assert_eq!(refused, Err(Error::QuotaExceeded(Quota::AccountBytes)));
    // Other accounts are untouched; an override lifts the cap for its account only.
    let other = engine
        .create_container(in_group("vip", "tencent", "ns1"))
        .await
        .unwrap();
    engine
        .put(&other, b"k", bytes_of(2_500), None, Precondition::None)
        .await
        .unwrap();
    assert_eq!(engine.account_bytes("vip").await.unwrap(), 2_501);
    assert_eq!(engine.account_bytes("acct").await.unwrap(), 1_000);

    // Lowering the cap below what is stored never blocks freeing space.
    engine.set_account_byte_limit(Some(100), Default::default());
    engine
        .put(&tencent, b"k1", bytes_of(98), None, Precondition::None)
        .await
        .unwrap();
    assert_eq!(engine.account_bytes("acct").await.unwrap(), 500);
    engine.set_account_byte_limit(Some(1_000), Default::default());

    // Deletes, expiry sweeps and container deletes all give bytes back.
    assert_eq!(engine.delete(&huawei, &[b"k2".to_vec()]).await.unwrap(), 1);
    assert_eq!(engine.account_bytes("acct").await.unwrap(), 100);
    let soon = engine.now() + 10;
    engine
        .put(
            &third,
            b"tmp",
            bytes_of(897),
            Some(soon),
            Precondition::None,
        )
        .await
        .unwrap();
    assert_eq!(engine.account_bytes("acct").await.unwrap(), 1_000);
    engine.clock().advance(11);
    assert_eq!(engine.sweep_expired(usize::MAX).await.unwrap(), 1);
    assert_eq!(engine.account_bytes("acct").await.unwrap(), 100);
    engine
        .delete_container("acct", "tencent/zone", "ns1")
        .await
        .unwrap();
    assert_eq!(engine.account_bytes("acct").await.unwrap(), 0);
    engine
        .put(&huawei, b"k2", bytes_of(998), None, Precondition::None)
        .await
        .unwrap();
    assert_eq!(engine.account_bytes("acct").await.unwrap(), 1_000);
}

#[tokio::test]
async fn account_totals_are_counted_for_a_store_written_before_they_existed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir, Clock::frozen_at(2_000_000_000)).await;
    let a = engine
        .create_container(in_group("old", "tencent", "ns1"))
        .await
        .unwrap();
    let b = engine
        .create_container(in_group("old", "huawei", "t1"))
        .await
        .unwrap();
    let c = engine
        .create_container(in_group("other", "tencent", "ns1"))
        .await
        .unwrap();
    engine
        .put(&a, b"k", bytes_of(399), None, Precondition::None)
        .await
        .unwrap();
    engine
        .put(&b, b"k", bytes_of(299), None, Precondition::None)
        .await
        .unwrap();
    engine
        .put(&c, b"k", bytes_of(49), None, Precondition::None)
        .await
        .unwrap();
    // Make the store look like one an older build wrote: no totals and no migration marker.
    let store = engine.store().clone();
    let forget = |key: &[u8]| kv_core::store::Write::ResetCounter {
        counter: key.to_vec(),
    };
    store
        .commit(kv_core::store::Batch {
            checks: Vec::new(),
            writes: vec![
                forget(b"qTold"),
                forget(b"qTother"),
                forget(b"qMaccount-total-bytes"),
            ],
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.counters(&[b"qTold".to_vec()]).await.unwrap(), vec![0]);

    // A new engine over that store (what a restart after an upgrade is) counts them once.
    let upgraded = Engine::new(store.clone(), Clock::frozen_at(2_000_000_000));
    upgraded.set_account_byte_limit(Some(1_000), Default::default());
    assert_eq!(upgraded.account_bytes("old").await.unwrap(), 700);
    assert_eq!(upgraded.account_bytes("other").await.unwrap(), 50);
    let refused = upgraded
        .put(&a, b"more", bytes_of(400), None, Precondition::None)
        .await;
    assert_eq!(refused, Err(Error::QuotaExceeded(Quota::AccountBytes)));
    upgraded
        .put(&a, b"more", bytes_of(296), None, Precondition::None)
        .await
        .unwrap();
    assert_eq!(upgraded.account_bytes("old").await.unwrap(), 1_000);
    // Counted once: a second new engine finds the marker and leaves the live totals alone.
    let again = Engine::new(store, Clock::frozen_at(2_000_000_000));
    assert_eq!(again.account_bytes("old").await.unwrap(), 1_000);
}
