//! The engine on the PostgreSQL backend, against a real PostgreSQL server: what only a shared
//! store has (the engine's own tests in `engine.rs` run unchanged on PostgreSQL in the postgres
//! suite, with `KV_TEST_POSTGRES`): several engines ("gateways") on one database, the sweeper
//! lease, the shared clock and the migrations.
//!
//! The server is `KV_TEST_POSTGRES` when set; otherwise one is started for this test binary with
//! scripts/postgres.sh (installing PostgreSQL from Debian if absent) and stopped by a watcher
//! when the binary exits. Every test works in a schema of its own.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kv_core::store::counting::Counting;
use kv_core::store::postgres::PostgresStore;
use kv_core::store::{Batch, Check, Rejected, Store, Write};
use kv_core::{
    Clock, ContainerKind, Engine, Error, Limits, NewContainer, Precondition, Quota, ScanOptions,
};

mod common;
use common::server_url;

/// A URL whose connections use a schema no other test uses.
fn fresh_schema_url(tag: &str) -> String {
    common::with_schema(server_url(), &common::fresh_schema(tag))
}

async fn open_url(url: &str, clock: Clock) -> Arc<Engine> {
    let store = PostgresStore::open_shared(url, 8, &clock).await.unwrap();
    Arc::new(Engine::new(store, clock))
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

async fn put(engine: &Engine, c: &kv_core::Container, key: &str, value: &str) -> u64 {
    engine
        .put(
            c,
            key.as_bytes(),
            Bytes::from(value.to_string()),
            None,
            Precondition::None,
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_writing_at_once_keep_usage_exact_and_lose_no_increment() {
    let url = fresh_schema_url("three");
    let gateways = [
        open_url(&url, Clock::new()).await,
        open_url(&url, Clock::new()).await,
        open_url(&url, Clock::new()).await,
    ];
    let c = gateways[0]
        .create_container(new_container("a", "c", Limits::default()))
        .await
        .unwrap();
    // 90 distinct keys through three gateways at once: the usage counters must be exact.
    let tasks: Vec<_> = (0..90)
        .map(|i| {
            let (engine, c) = (gateways[i % 3].clone(), c.clone());
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
    for g in &gateways {
        let usage = g.usage(&c).await.unwrap();
        assert_eq!(usage.items, 90);
        assert_eq!(usage.bytes, (0..90).map(|i| 4 + i as i64).sum::<i64>());
    }
    // Read-modify-write with version preconditions from every gateway: no update is lost.
    put(&gateways[1], &c, "n", "0").await;
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (engine, c) = (gateways[i % 3].clone(), c.clone());
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
    for g in &gateways {
        assert_eq!(
            g.get(&c, b"n").await.unwrap().unwrap().value,
            Bytes::from("24")
        );
    }
}

#[tokio::test]
async fn a_write_through_one_gateway_is_read_at_once_through_another() {
    let url = fresh_schema_url("readyourwrite");
    let (a, b) = (
        open_url(&url, Clock::new()).await,
        open_url(&url, Clock::new()).await,
    );
    let c = a
        .create_container(new_container("acct", "ns", Limits::default()))
        .await
        .unwrap();
    // The container created through `a` is visible through `b` too.
    let seen = b.container("acct", "test", "ns").await.unwrap();
    assert_eq!(seen.id, c.id);
    for i in 0..20 {
        let value = format!("value-{i}");
        let version = put(&a, &c, "k", &value).await;
        let item = b.get(&seen, b"k").await.unwrap().unwrap();
        assert_eq!(item.value, Bytes::from(value));
        assert_eq!(item.version, version);
    }
    let page = b
        .scan(&seen, ScanOptions::prefix(b"", None, 10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

#[tokio::test]
async fn store_level_checks_quotas_versions_and_ranges_match_redb() {
    let url = fresh_schema_url("store");
    let store = PostgresStore::open(&url, 2).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redb = kv_core::store::redb::RedbStore::open(&dir.path().join("r.redb"), false).unwrap();
    let stores: [&dyn Store; 2] = [&store, &redb];
    let mut outcomes = Vec::new();
    for s in stores {
        let mut seen = Vec::new();
        let put = |k: &[u8], exp: Option<u64>| Write::Put {
            key: k.to_vec(),
            value: Bytes::from(k.to_vec()),
            expires_at: exp,
        };
        let v1 = s
            .commit(Batch {
                checks: vec![Check::Absent(b"a".to_vec())],
                writes: vec![put(b"a", None), put(b"b", Some(100)), put(b"c\xff", None)],
            })
            .await
            .unwrap()
            .unwrap();
        // Versions are each store's own (unique per commit, compared for equality only): the
        // records are compared by value and expiry, and by carrying the commit's version.
        let got = s
            .get_many(&[b"a".to_vec(), b"zz".to_vec(), b"a".to_vec()])
            .await
            .unwrap();
        assert!(got.iter().flatten().all(|r| r.version == v1));
        seen.push(format!(
            "{:?}",
            got.iter()
                .map(|r| r.as_ref().map(|r| (r.value.clone(), r.expires_at)))
                .collect::<Vec<_>>()
        ));
        // A stale version check is rejected, a current one passes.
        let stale = s
            .commit(Batch {
                checks: vec![Check::AtVersion(b"a".to_vec(), v1 + 7)],
                writes: vec![put(b"x", None)],
            })
            .await
            .unwrap();
        assert_eq!(
            stale,
            Err(Rejected::Check(Check::AtVersion(b"a".to_vec(), v1 + 7)))
        );
        let v2 = s
            .commit(Batch {
                checks: vec![
                    Check::AtVersion(b"a".to_vec(), v1),
                    Check::Present(b"b".to_vec()),
                ],
                writes: vec![Write::Add {
                    counter: b"n".to_vec(),
                    delta: 5,
                    limit: Some((5, Quota::ContainerItems)),
                }],
            })
            .await
            .unwrap()
            .unwrap();
        assert_ne!(v2, v1, "every commit has its own version");
        let over = s
            .commit(Batch {
                checks: vec![],
                writes: vec![
                    Write::Add {
                        counter: b"n".to_vec(),
                        delta: 1,
                        limit: Some((5, Quota::ContainerItems)),
                    },
                    put(b"never", None),
                ],
            })
            .await
            .unwrap();
        assert_eq!(over, Err(Rejected::Quota(Quota::ContainerItems)));
        seen.push(format!(
            "{:?}",
            s.counters(&[b"n".to_vec(), b"m".to_vec()]).await.unwrap()
        ));
        let eq = s
            .commit(Batch {
                checks: vec![Check::CounterEquals(b"n".to_vec(), 5)],
                writes: vec![
                    Write::Add {
                        counter: b"n".to_vec(),
                        delta: -5,
                        limit: None,
                    },
                    Write::DeleteRange {
                        start: b"b".to_vec(),
                        end: b"c\xff\x00".to_vec(),
                    },
                ],
            })
            .await
            .unwrap();
        seen.push(format!("{}", eq.is_ok()));
        seen.push(format!("{:?}", s.counters(&[b"n".to_vec()]).await.unwrap()));
        let page = s
            .scan(kv_core::store::KeyRange::prefix(b""), 10, true, 50)
            .await
            .unwrap();
        seen.push(format!(
            "{:?} {}",
            page.records
                .iter()
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>(),
            page.more
        ));
        outcomes.push(seen);
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!(outcomes[0][4], "[[97]] false", "{:?}", outcomes[0]);
}

#[tokio::test]
async fn only_one_gateway_holds_the_sweeper_lease_until_it_lets_go() {
    let url = fresh_schema_url("lease");
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(PostgresStore::open(&url, 2).await.unwrap());
    }
    let held = futures_util::future::join_all(stores.iter().map(|s| s.try_sweep_lease())).await;
    let holders: Vec<usize> = held
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.unwrap().then_some(i))
        .collect();
    assert_eq!(holders.len(), 1, "exactly one holder: {holders:?}");
    let holder = holders[0];
    // The holder renews; the others keep being refused.
    for _ in 0..3 {
        for (i, s) in stores.iter().enumerate() {
            assert_eq!(s.try_sweep_lease().await.unwrap(), i == holder);
        }
    }
    // Closing releases it, and one of the others takes over.
    stores[holder].close().await.unwrap();
    let next = (holder + 1) % 3;
    assert!(stores[next].try_sweep_lease().await.unwrap());
    let other = (holder + 2) % 3;
    assert!(!stores[other].try_sweep_lease().await.unwrap());
}

#[tokio::test]
async fn a_clock_advance_through_one_gateway_is_seen_by_all() {
    let url = fresh_schema_url("clock");
    let base = 2_000_000_000;
    let clocks = [
        Clock::frozen_at(base),
        Clock::frozen_at(base),
        Clock::frozen_at(base),
    ];
    let mut engines = Vec::new();
    for clock in &clocks {
        engines.push(open_url(&url, clock.clone()).await);
    }
    let c = engines[0]
        .create_container(new_container("a", "c", Limits::default()))
        .await
        .unwrap();
    engines[0]
        .put(
            &c,
            b"ttl",
            Bytes::from("v"),
            Some(base + 60),
            Precondition::None,
        )
        .await
        .unwrap();
    assert!(engines[2].get(&c, b"ttl").await.unwrap().is_some());
    engines[1].clock().advance(60);
    // The other gateways adopt the advance within a few sync intervals (bounded wait).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while clocks.iter().any(|c| c.now() != base + 60) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for clock in &clocks {
        assert_eq!(clock.now(), base + 60);
    }
    for e in &engines {
        assert!(e.get(&c, b"ttl").await.unwrap().is_none());
    }
    // A gateway that starts later starts at the shared time.
    let late = Clock::frozen_at(base);
    let _late_engine = open_url(&url, late.clone()).await;
    assert_eq!(late.now(), base + 60);
}

#[tokio::test]
async fn a_huge_clock_advance_is_capped_and_a_wrapped_stored_offset_is_healed() {
    let url = fresh_schema_url("clockcap");
    let base = 2_000_000_000;
    let clock = Clock::frozen_at(base);
    let store = PostgresStore::open(&url, 2).await.unwrap();
    store.sync_clock(&clock).await.unwrap();
    // Before the cap, this advance wrapped the offset and the database kept it for every gateway.
    clock.advance(u64::MAX);
    let ceiling = base + Clock::MAX_OFFSET_SECS as u64;
    assert_eq!(clock.now(), ceiling);
    assert_eq!(
        store.merge_clock_offset(i64::MAX).await.unwrap(),
        Clock::MAX_OFFSET_SECS
    );
    let restarted = Clock::frozen_at(base);
    store.sync_clock(&restarted).await.unwrap();
    assert_eq!(restarted.now(), ceiling, "never wrapped to 1970");

    // An offset an older build stored (wrapped negative, or past the cap) is healed on merge.
    let url = fresh_schema_url("clockheal");
    let store = PostgresStore::open(&url, 2).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    for stored in [i64::MIN + 5, i64::MAX] {
        client
            .execute(
                "UPDATE kv_meta SET value = $1 WHERE name = 'clock_offset'",
                &[&stored],
            )
            .await
            .unwrap();
        let shared = store.merge_clock_offset(0).await.unwrap();
        assert!((0..=Clock::MAX_OFFSET_SECS).contains(&shared), "{shared}");
        let clock = Clock::frozen_at(base);
        store.sync_clock(&clock).await.unwrap();
        assert!(clock.now() >= base, "engine time never goes back");
    }
}

#[tokio::test]
async fn migrations_are_versioned_and_concurrent_start_ups_agree() {
    let url = fresh_schema_url("migrate");
    // Five stores opening the same empty schema at once race on the DDL; all must succeed.
    let opened = futures_util::future::join_all((0..5).map(|_| PostgresStore::open(&url, 1))).await;
    for store in opened {
        assert_eq!(store.unwrap().schema_version().await.unwrap(), 2);
    }
}

#[tokio::test]
async fn a_bad_url_is_an_error_not_a_panic() {
    let err = PostgresStore::open("postgres://[not a host", 1)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let err = PostgresStore::open(
        &format!("{}?options=-csearch_path%3Dbad-name", server_url()),
        1,
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

/// The keys (hex) of a relation's rows that `observer` cannot lock now (another transaction holds
/// them), found with `FOR UPDATE SKIP LOCKED` inside a transaction that is rolled back.
async fn rows_locked_by_others(
    observer: &tokio_postgres::Client,
    table: &str,
    column: &str,
) -> Vec<String> {
    observer.batch_execute("BEGIN").await.unwrap();
    let all: Vec<String> = observer
        .query(
            &format!("SELECT encode({column}::bytea, 'hex') FROM {table} ORDER BY 1"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let free: Vec<String> = observer
        .query(
            &format!(
                "SELECT encode({column}::bytea, 'hex') FROM {table} ORDER BY 1 \
                 FOR UPDATE SKIP LOCKED"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    observer.batch_execute("ROLLBACK").await.unwrap();
    all.into_iter().filter(|k| !free.contains(k)).collect()
}

/// Without a global commit row, a commit touches the rows of its own keys, its container and its
/// counters and nothing else. A put of a new item is held half-way (another transaction holds
/// its container's item counter) and every row it holds is listed: by `FOR UPDATE SKIP LOCKED`
/// over every table, and by the relations it has open in `pg_locks`. The old design's
/// `kv_meta('last_version')` lock, or a lock on another container's or account's rows, fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_commit_locks_only_its_own_keys_container_and_counters() {
    let url = fresh_schema_url("locks");
    let engine = open_url(&url, Clock::new()).await;
    let limits = Limits {
        max_bytes: Some(1 << 20),
        ..Limits::default()
    };
    let mine = engine
        .create_container(new_container("acct", "mine", limits.clone()))
        .await
        .unwrap();
    let other = engine
        .create_container(new_container("else", "other", limits))
        .await
        .unwrap();
    put(&engine, &mine, "old", "1").await;
    put(&engine, &mine, "neighbour", "2").await;
    put(&engine, &other, "x", "3").await;

    let connect = || async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    };
    let blocker = connect().await;
    let observer = connect().await;
    let mut items_counter = b"qn".to_vec();
    items_counter.extend_from_slice(&mine.id.to_be_bytes());
    blocker.batch_execute("BEGIN").await.unwrap();
    blocker
        .query(
            "SELECT value FROM kv_counters WHERE key = $1 FOR UPDATE",
            &[&items_counter],
        )
        .await
        .unwrap();

    let writer = {
        let (engine, mine) = (engine.clone(), mine.clone());
        tokio::spawn(async move { put(&engine, &mine, "new", "4").await })
    };
    // The put's commit waits on the counter the blocker holds.
    let mut waiting = None;
    for _ in 0..500 {
        let rows = observer
            .query(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                 AND query LIKE '%kv_counters%' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        if let Some(row) = rows.first() {
            waiting = Some(row.get::<_, i32>(0));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = waiting.expect("the commit waits on the held counter");

    let relations: Vec<String> = observer
        .query(
            "SELECT DISTINCT relation::regclass::text FROM pg_locks \
             WHERE pid = $1 AND locktype = 'relation' ORDER BY 1",
            &[&pid],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let allowed = [
        "kv_counters",
        "kv_counters_pkey",
        "kv_records",
        "kv_records_expiry",
        "kv_records_pkey",
    ];
    assert!(
        relations.iter().all(|r| allowed.contains(&r.as_str())),
        "the commit opened {relations:?}"
    );

    let escape = |key: &[u8]| -> String { key.iter().map(|b| format!("{b:02x}")).collect() };
    let mut registry = vec![b'r'];
    registry.extend_from_slice(&mine.id.to_be_bytes());
    assert_eq!(
        rows_locked_by_others(&observer, "kv_records", "key").await,
        vec![escape(&registry)],
        "records: only the container's registry entry (shared), the new key is a placeholder"
    );
    let mut bytes_counter = b"qb".to_vec();
    bytes_counter.extend_from_slice(&mine.id.to_be_bytes());
    let mut expected = vec![
        escape(b"qBacct\0"),
        escape(b"qNacct\0"),
        escape(b"qTacct"),
        escape(&bytes_counter),
        escape(&items_counter),
    ];
    expected.sort();
    assert_eq!(
        rows_locked_by_others(&observer, "kv_counters", "key").await,
        expected,
        "counters: the container's and its account's, no other account's"
    );
    for (table, column) in [
        ("kv_meta", "convert_to(name, 'UTF8')"),
        ("kv_leases", "convert_to(name, 'UTF8')"),
        ("kv_version_prefixes", "convert_to(prefix::text, 'UTF8')"),
    ] {
        assert_eq!(
            rows_locked_by_others(&observer, table, column).await,
            Vec::<String>::new(),
            "{table}: no shared row is locked"
        );
    }

    blocker.batch_execute("ROLLBACK").await.unwrap();
    let version = writer.await.unwrap();
    let item = engine.get(&mine, b"new").await.unwrap().unwrap();
    assert_eq!(item.version, version);
}

/// A second gateway on the database at `url` whose store counts its statements (every `Store`
/// read and commit call is one statement or one transaction).
async fn counted_gateway(url: &str) -> (Engine, Arc<Counting>) {
    let clock = Clock::new();
    let counted = Counting::new(PostgresStore::open_shared(url, 4, &clock).await.unwrap());
    (Engine::new(counted.clone(), clock), counted)
}

/// A data read is one statement: once a gateway has seen a container, `container_and_items`
/// reads the container's record and the items together, and still sees at once a change made
/// through another gateway (attributes, delete, recreate, clock advance) from that same snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_is_one_statement_and_sees_other_gateways_changes_in_it() {
    let url = fresh_schema_url("oneread");
    let a = open_url(&url, Clock::new()).await;
    let (b, counted) = counted_gateway(&url).await;
    let c = a
        .create_container(new_container("acct", "c", Limits::default()))
        .await
        .unwrap();
    let v1 = put(&a, &c, "k", "one").await;
    let keys = vec![b"k".to_vec(), b"missing".to_vec()];
    async fn read(
        b: &Engine,
        keys: &[Vec<u8>],
    ) -> kv_core::Result<(kv_core::Container, Vec<Option<kv_core::Item>>)> {
        b.container_and_items("acct", "test", "c", keys).await
    }

    // The first read finds the container (one statement) and the items (one more).
    counted.take();
    let (seen, items) = read(&b, &keys).await.unwrap();
    assert_eq!(seen.id, c.id);
    assert_eq!(
        items[0].as_ref().map(|i| (&i.value[..], i.version)),
        Some((&b"one"[..], v1))
    );
    assert!(items[1].is_none());
    assert_eq!(counted.take(), 2);
    // From then on: one statement per read.
    for _ in 0..3 {
        let (_, items) = read(&b, &keys).await.unwrap();
        assert_eq!(items[0].as_ref().map(|i| &i.value[..]), Some(&b"one"[..]));
        assert_eq!(counted.take(), 1);
    }

    // Changed through A: the attributes B answers with are the new ones, in the same statement.
    a.update_container_attrs("acct", "test", "c", serde_json::json!({"remark": "new"}))
        .await
        .unwrap();
    put(&a, &c, "k", "two").await;
    let (seen, items) = read(&b, &keys).await.unwrap();
    assert_eq!(seen.attrs, serde_json::json!({"remark": "new"}));
    assert_eq!(items[0].as_ref().map(|i| &i.value[..]), Some(&b"two"[..]));
    assert_eq!(counted.take(), 1);

    // An expiry passed by an advance through A: the next read through B, one statement.
    a.put(
        &c,
        b"k",
        Bytes::from_static(b"brief"),
        Some(a.now() + 60),
        Precondition::None,
    )
    .await
    .unwrap();
    assert!(a.advance_clock(120).await.unwrap().is_some());
    let (_, items) = read(&b, &keys).await.unwrap();
    assert!(items[0].is_none(), "expired at the shared time: {items:?}");
    assert_eq!(counted.take(), 1);

    // Deleted through A: NotFound from the same single statement.
    a.delete_container("acct", "test", "c").await.unwrap();
    assert!(matches!(read(&b, &keys).await, Err(Error::NotFound(_))));
    assert_eq!(counted.take(), 1);

    // Recreated through A under the same name: B finds the new container and its items.
    let again = a
        .create_container(new_container("acct", "c", Limits::default()))
        .await
        .unwrap();
    put(&a, &again, "k", "reborn").await;
    let (seen, items) = read(&b, &keys).await.unwrap();
    assert_eq!(seen.id, again.id);
    assert_eq!(
        items[0].as_ref().map(|i| &i.value[..]),
        Some(&b"reborn"[..])
    );
    counted.take();
    let (seen, _) = read(&b, &keys).await.unwrap();
    assert_eq!(seen.id, again.id);
    assert_eq!(counted.take(), 1);
}

/// A request nonce is admitted once across every gateway on the database: three engines race to
/// record the same nonces, exactly one wins each, and a nonce used through one is refused
/// through the others afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_is_admitted_once_across_gateways() {
    let url = fresh_schema_url("nonces");
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(open_url(&url, Clock::new()).await);
    }
    for n in 0..20 {
        let nonce = format!("nonce-{n}");
        let tries = gateways.iter().map(|g| {
            let (g, nonce) = (g.clone(), nonce.clone());
            tokio::spawn(async move { g.first_use_of_nonce("aliyun", "AK", &nonce, 900).await })
        });
        let mut admitted = 0;
        for t in tries {
            admitted += usize::from(t.await.unwrap().unwrap());
        }
        assert_eq!(admitted, 1, "{nonce}");
        for g in &gateways {
            assert!(!g
                .first_use_of_nonce("aliyun", "AK", &nonce, 900)
                .await
                .unwrap());
        }
    }
    // Another key's nonce of the same text is its own.
    assert!(gateways[0]
        .first_use_of_nonce("aliyun", "AK2", "nonce-0", 900)
        .await
        .unwrap());
}

/// A put by container name is three statements (the container's record with the item's, then the
/// commit's two round trips) once the gateway has seen the container, and a container changed,
/// deleted or recreated through another gateway is honoured by the next put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_by_name_reads_the_container_with_the_item_and_follows_other_gateways() {
    let url = fresh_schema_url("putat");
    let a = open_url(&url, Clock::new()).await;
    let (b, counted) = counted_gateway(&url).await;
    let limits = Limits {
        max_items: Some(2),
        ..Limits::default()
    };
    let c = a
        .create_container(new_container("acct", "c", limits.clone()))
        .await
        .unwrap();
    let put_b = |key: &'static str, value: &'static str| {
        b.put_at(
            "acct",
            "test",
            "c",
            key.as_bytes(),
            Bytes::from_static(value.as_bytes()),
            None,
            Precondition::None,
        )
    };
    let v = put_b("k", "one").await.unwrap();
    counted.take();
    let v2 = put_b("k", "two").await.unwrap();
    assert_ne!(v, v2);
    // One read (container record + item), one commit (its two round trips).
    assert_eq!(counted.take(), 2);
    assert_eq!(
        a.get(&c, b"k").await.unwrap().map(|i| (i.value, i.version)),
        Some((Bytes::from_static(b"two"), v2))
    );
    // Quotas hold as with `put`.
    put_b("k2", "x").await.unwrap();
    assert_eq!(
        put_b("k3", "x").await,
        Err(Error::QuotaExceeded(Quota::ContainerItems))
    );

    // Changed through A: B's next put still lands (it reads the record anew).
    a.update_container_attrs("acct", "test", "c", serde_json::json!({"remark": "new"}))
        .await
        .unwrap();
    put_b("k", "three").await.unwrap();
    assert_eq!(
        a.get(&c, b"k").await.unwrap().map(|i| i.value),
        Some(Bytes::from_static(b"three"))
    );
    // Deleted through A: NotFound. Recreated: the put lands in the new container.
    a.delete_container("acct", "test", "c").await.unwrap();
    assert!(matches!(put_b("k", "four").await, Err(Error::NotFound(_))));
    let again = a
        .create_container(new_container("acct", "c", limits))
        .await
        .unwrap();
    put_b("k", "five").await.unwrap();
    assert_eq!(
        a.get(&again, b"k").await.unwrap().map(|i| i.value),
        Some(Bytes::from_static(b"five"))
    );
    assert_eq!(a.usage(&again).await.unwrap().items, 1);
}

/// A TCP proxy in front of the PostgreSQL server that counts the server's ReadyForQuery
/// messages: one per Sync (or simple query) the client sends, so one per round trip of an
/// unpipelined statement. A statement given as text costs two (Parse/Describe/Sync to prepare
/// it, then Bind/Execute/Sync) and a Close after; a statement prepared once per connection and
/// run again costs one.
struct WireCounter {
    url: String,
    ready: Arc<std::sync::atomic::AtomicUsize>,
}

impl WireCounter {
    async fn start(url: &str) -> WireCounter {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let config: tokio_postgres::Config = url.parse().unwrap();
        let port = config.get_ports()[0];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_port = listener.local_addr().unwrap().port();
        let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = ready.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let counter = counter.clone();
                tokio::spawn(async move {
                    // Server messages: a type byte, then a length that counts itself.
                    let (mut pending, mut chunk) = (Vec::new(), vec![0u8; 64 * 1024]);
                    loop {
                        let n = match server_read.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        pending.extend_from_slice(&chunk[..n]);
                        while pending.len() >= 5 {
                            let len = u32::from_be_bytes([
                                pending[1], pending[2], pending[3], pending[4],
                            ]) as usize;
                            if pending.len() < 1 + len {
                                break;
                            }
                            if pending[0] == b'Z' {
                                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            pending.drain(..1 + len);
                        }
                        if client_write.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        WireCounter {
            url: url.replacen(&format!(":{port}/"), &format!(":{proxy_port}/"), 1),
            ready,
        }
    }

    fn take(&self) -> usize {
        self.ready.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

/// On the wire, every read is ONE round trip once its connection has run it: `get_many`, `scan`,
/// `count` and `counters` run statements prepared once per connection (and kept), where a
/// statement given as text was prepared again on every call, a round trip of its own before the
/// one that ran it. So a data read through a gateway that has seen its container is one
/// statement in one round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_is_one_round_trip_on_the_wire() {
    let url = fresh_schema_url("wire");
    let wire = WireCounter::start(&url).await;
    // One connection, and no clock sync task (whose statements would be counted too).
    let store = PostgresStore::open(&wire.url, 1).await.unwrap();
    let engine = Engine::new(Arc::new(store), Clock::new());
    let c = engine
        .create_container(new_container("acct", "c", Limits::default()))
        .await
        .unwrap();
    put(&engine, &c, "k", "one").await;
    let keys = vec![b"k".to_vec()];
    let everything = ScanOptions::prefix(b"", None, 10);
    // The first run of each prepares it on the connection.
    engine
        .container_and_items("acct", "test", "c", &keys)
        .await
        .unwrap();
    engine.scan(&c, everything.clone()).await.unwrap();
    engine.count(&c, &everything).await.unwrap();
    engine.usage(&c).await.unwrap();
    wire.take();
    for _ in 0..3 {
        let (_, items) = engine
            .container_and_items("acct", "test", "c", &keys)
            .await
            .unwrap();
        assert_eq!(items[0].as_ref().map(|i| &i.value[..]), Some(&b"one"[..]));
        assert_eq!(wire.take(), 1, "a get");
        let page = engine.scan(&c, everything.clone()).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(wire.take(), 1, "a scan page");
        assert_eq!(engine.count(&c, &everything).await.unwrap(), 1);
        assert_eq!(wire.take(), 1, "a count");
        assert_eq!(engine.usage(&c).await.unwrap().items, 1);
        assert_eq!(wire.take(), 1, "the usage counters");
    }
}
