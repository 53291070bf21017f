//! One conformance suite over the `Store` trait, run against every backend: the in-memory store,
//! redb (in a temp dir) and, when `KV_TEST_POSTGRES=postgres://...` is set, PostgreSQL (each test
//! in a fresh schema). Each scenario is written once against `&dyn Store` and asserts the
//! contract the trait's doc comments give, with exact values, so a backend that differs from the
//! others in any of them fails here by name. The random differential test beside it
//! (postgres_store_parity.rs) covers the combinations these scenarios do not spell out.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use kv_core::store::memory::MemoryStore;
use kv_core::store::postgres::PostgresStore;
use kv_core::store::redb::RedbStore;
use kv_core::store::{
    Batch, Check, CheckpointError, Expired, Key, KeyRange, Record, Rejected, Store, Write,
};
use kv_core::Quota;

mod common;

/// A backend under test, with whatever must outlive it (redb's temp dir).
struct Backend {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn memory() -> Self {
        Backend {
            store: Arc::new(MemoryStore::new()),
            _dir: None,
        }
    }

    fn redb() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RedbStore::open(&dir.path().join("conformance.redb"), false).expect("redb");
        Backend {
            store: Arc::new(store),
            _dir: Some(dir),
        }
    }

    /// None (and the test passes without running) unless `KV_TEST_POSTGRES` names a server.
    async fn postgres() -> Option<Self> {
        let Some(url) = common::postgres_url() else {
            eprintln!("KV_TEST_POSTGRES is not set: skipping the PostgreSQL backend");
            return None;
        };
        let url = common::with_schema(&url, &common::fresh_schema("conformance"));
        let store = PostgresStore::open(&url, 8).await.expect("postgres");
        Some(Backend {
            store: Arc::new(store),
            _dir: None,
        })
    }
}

/// Generates one `#[tokio::test]` per scenario and backend: `memory::<scenario>`,
/// `redb::<scenario>` and `postgres::<scenario>`.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::Backend::memory().store).await;
                }
            )*
        }
        mod redb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let backend = super::Backend::redb();
                    super::$scenario(&backend.store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(backend) = super::Backend::postgres().await {
                        super::$scenario(&backend.store).await;
                        backend.store.close().await.expect("close");
                    }
                }
            )*
        }
    };
}

conformance!(
    reads_see_what_was_written_and_expired_records_until_swept,
    checks_judge_physical_state_and_a_refused_batch_changes_nothing,
    writes_apply_in_order_within_a_batch,
    delete_range_is_half_open_and_a_reversed_range_deletes_nothing,
    counters_add_vanish_at_zero_reset_and_saturate,
    counter_limits_refuse_growth_past_the_limit_as_a_whole_batch,
    scans_page_in_key_order_and_reverse_skipping_expired,
    scans_and_counts_of_empty_or_reversed_ranges_are_empty,
    expired_lists_oldest_first_bounded_by_max_and_follows_overwrites,
    versions_are_unique_across_commits_deletes_and_resets,
    concurrent_commits_on_their_own_keys_all_land_with_exact_counters,
    reset_drops_every_record_and_counter,
    stats_count_records,
    racing_creates_of_one_key_have_exactly_one_winner,
    racing_version_checked_updates_have_exactly_one_winner,
    racing_limited_adds_stop_exactly_at_the_limit,
    claim_once_admits_a_key_once_until_it_is_deleted,
    commits_fail_after_close,
);

/// Checkpoints are promised on memory and redb; PostgreSQL answers that it keeps none, with why.
macro_rules! checkpoint_conformance {
    ($($scenario:ident),* $(,)?) => {
        mod checkpoints {
            $(
                mod $scenario {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn memory() {
                        super::super::$scenario(&super::super::Backend::memory().store).await;
                    }
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn redb() {
                        let backend = super::super::Backend::redb();
                        super::super::$scenario(&backend.store).await;
                    }
                }
            )*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_answers_unsupported_with_the_reason() {
                if let Some(backend) = super::Backend::postgres().await {
                    match backend.store.checkpoint("one", 0).await {
                        Err(kv_core::store::CheckpointError::Unsupported(why)) => {
                            assert!(why.contains("PostgreSQL") || why.contains("gateways"), "{why}")
                        }
                        other => panic!("{other:?}"),
                    }
                    backend.store.close().await.expect("close");
                }
            }
        }
    };
}

checkpoint_conformance!(
    a_restore_puts_back_records_ttls_counters_and_large_values_exactly,
    checkpoints_are_listed_replaced_dropped_and_named_in_errors,
);

// ------------------------------------------------------------------------------------ helpers

fn k(s: &str) -> Key {
    s.as_bytes().to_vec()
}

fn put(key: &str, value: &str, expires_at: Option<u64>) -> Write {
    Write::Put {
        key: k(key),
        value: Bytes::copy_from_slice(value.as_bytes()),
        expires_at,
    }
}

fn del(key: &str) -> Write {
    Write::Delete { key: k(key) }
}

fn add(counter: &str, delta: i64, limit: Option<(i64, Quota)>) -> Write {
    Write::Add {
        counter: k(counter),
        delta,
        limit,
    }
}

fn writes(writes: Vec<Write>) -> Batch {
    Batch {
        checks: Vec::new(),
        writes,
    }
}

fn checked(checks: Vec<Check>, writes: Vec<Write>) -> Batch {
    Batch { checks, writes }
}

async fn commit(store: &Arc<dyn Store>, batch: Batch) -> Result<u64, Rejected> {
    store.commit(batch).await.expect("backend healthy")
}

async fn ok(store: &Arc<dyn Store>, batch: Batch) -> u64 {
    match commit(store, batch).await {
        Ok(version) => version,
        Err(rejected) => panic!("batch refused: {rejected:?}"),
    }
}

async fn get(store: &Arc<dyn Store>, key: &str) -> Option<Record> {
    let got = store.get_many(&[k(key)]).await.expect("get");
    got.into_iter().next().flatten()
}

/// The value under `key` as a string, or None.
async fn value(store: &Arc<dyn Store>, key: &str) -> Option<String> {
    get(store, key)
        .await
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
}

async fn counter(store: &Arc<dyn Store>, key: &str) -> i64 {
    store.counters(&[k(key)]).await.expect("counters")[0]
}

fn all() -> KeyRange {
    KeyRange {
        start: Bound::Unbounded,
        end: Bound::Unbounded,
    }
}

/// The keys of one scan page, and its `more` flag.
async fn scan_keys(
    store: &Arc<dyn Store>,
    range: KeyRange,
    limit: usize,
    reverse: bool,
    now: u64,
) -> (Vec<String>, bool) {
    let page = store.scan(range, limit, reverse, now).await.expect("scan");
    let keys = page
        .records
        .iter()
        .map(|(key, _)| String::from_utf8_lossy(key).into_owned())
        .collect();
    (keys, page.more)
}

fn expired_keys(expired: &[Expired]) -> Vec<String> {
    expired
        .iter()
        .map(|e| String::from_utf8_lossy(&e.key).into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------- scenarios

async fn reads_see_what_was_written_and_expired_records_until_swept(store: &Arc<dyn Store>) {
    let v = ok(
        store,
        writes(vec![put("a", "alpha", Some(10)), put("b", "beta", None)]),
    )
    .await;
    let got = store
        .get_many(&[k("b"), k("missing"), k("a"), k("b")])
        .await
        .expect("get");
    let expected_a = Record {
        value: Bytes::from_static(b"alpha"),
        expires_at: Some(10),
        version: v,
    };
    let expected_b = Record {
        value: Bytes::from_static(b"beta"),
        expires_at: None,
        version: v,
    };
    assert_eq!(
        got,
        vec![
            Some(expected_b.clone()),
            None,
            Some(expected_a.clone()),
            Some(expected_b)
        ],
        "in the order asked, a key asked twice answered twice"
    );
    // get_many reads physical state: the engine, not the store, hides an expired record.
    assert_eq!(
        get(store, "a").await,
        Some(expected_a),
        "still there until swept"
    );
    assert!(store.get_many(&[]).await.expect("get").is_empty());
}

async fn checks_judge_physical_state_and_a_refused_batch_changes_nothing(store: &Arc<dyn Store>) {
    let v = ok(
        store,
        writes(vec![put("live", "1", None), put("stale", "2", Some(5))]),
    )
    .await;
    ok(store, writes(vec![add("n", 4, None)])).await;
    // The expired-but-unswept record is invisible to a scan at 100, yet present to checks.
    assert_eq!(
        scan_keys(store, all(), 10, false, 100).await.0,
        vec!["live"]
    );

    let holding = [
        Check::Absent(k("missing")),
        Check::Present(k("live")),
        Check::Present(k("stale")),
        Check::AtVersion(k("live"), v),
        Check::AtVersion(k("stale"), v),
        Check::CounterEquals(k("n"), 4),
        Check::CounterEquals(k("absent counter"), 0),
    ];
    for check in holding {
        let batch = checked(vec![check.clone()], vec![put("probe", "x", None)]);
        assert!(commit(store, batch).await.is_ok(), "{check:?} should hold");
    }

    let failing = [
        Check::Absent(k("live")),
        Check::Absent(k("stale")),
        Check::Present(k("missing")),
        Check::AtVersion(k("live"), v + 1_000),
        Check::AtVersion(k("missing"), v),
        Check::CounterEquals(k("n"), 3),
        Check::CounterEquals(k("absent counter"), 1),
    ];
    let before = get(store, "probe").await;
    for check in failing {
        // A holding check first, then the failing one: the failing one is named.
        let batch = checked(
            vec![Check::Present(k("live")), check.clone()],
            vec![
                put("probe", "changed", None),
                del("live"),
                add("n", 1, None),
            ],
        );
        assert_eq!(
            commit(store, batch).await,
            Err(Rejected::Check(check.clone())),
            "{check:?} should fail"
        );
    }
    assert_eq!(
        get(store, "probe").await,
        before,
        "no write of a refused batch landed"
    );
    assert_eq!(value(store, "live").await.as_deref(), Some("1"));
    assert_eq!(counter(store, "n").await, 4);
}

async fn writes_apply_in_order_within_a_batch(store: &Arc<dyn Store>) {
    ok(store, writes(vec![put("kept", "old", Some(50))])).await;
    let v = ok(
        store,
        writes(vec![
            put("a", "first", None),
            del("a"),
            put("a", "second", Some(20)),
            put("b", "gone", None),
            del("b"),
            del("never existed"),
            put("kept", "new", None),
            add("n", 5, None),
            Write::ResetCounter { counter: k("n") },
            add("n", 2, None),
        ]),
    )
    .await;
    let a = get(store, "a").await.expect("a");
    assert_eq!(
        (&a.value[..], a.expires_at, a.version),
        (&b"second"[..], Some(20), v)
    );
    assert_eq!(get(store, "b").await, None);
    assert_eq!(counter(store, "n").await, 2);
    // The overwrite dropped the old expiry with the old record.
    let kept = get(store, "kept").await.expect("kept");
    assert_eq!((&kept.value[..], kept.expires_at), (&b"new"[..], None));
    let expired = store.expired(1_000, 10).await.expect("expired");
    assert_eq!(expired_keys(&expired), vec!["a"]);
    assert_eq!(scan_keys(store, all(), 10, false, 60).await.0, vec!["kept"]);
}

async fn delete_range_is_half_open_and_a_reversed_range_deletes_nothing(store: &Arc<dyn Store>) {
    let keys = ["a", "b", "b\u{0}", "ba", "c", "d"];
    ok(
        store,
        writes(keys.iter().map(|key| put(key, "v", Some(100))).collect()),
    )
    .await;
    for (start, end) in [("c", "b"), ("b", "b")] {
        ok(
            store,
            writes(vec![Write::DeleteRange {
                start: k(start),
                end: k(end),
            }]),
        )
        .await;
    }
    assert_eq!(scan_keys(store, all(), 10, false, 0).await.0, keys);
    ok(
        store,
        writes(vec![Write::DeleteRange {
            start: k("b"),
            end: k("c"),
        }]),
    )
    .await;
    assert_eq!(
        scan_keys(store, all(), 10, false, 0).await.0,
        vec!["a", "c", "d"]
    );
    // Their expiry index entries went with them.
    let expired = store.expired(100, 10).await.expect("expired");
    assert_eq!(expired_keys(&expired), vec!["a", "c", "d"]);
    // A range to the end of the keyspace, written as its prefix end.
    ok(
        store,
        writes(vec![Write::DeleteRange {
            start: Vec::new(),
            end: vec![0xff],
        }]),
    )
    .await;
    assert_eq!(store.count(all(), 0).await.expect("count"), 0);
}

async fn counters_add_vanish_at_zero_reset_and_saturate(store: &Arc<dyn Store>) {
    ok(store, writes(vec![add("c", 7, None), add("c", -2, None)])).await;
    assert_eq!(counter(store, "c").await, 5);
    ok(store, writes(vec![add("c", -5, None)])).await;
    assert_eq!(counter(store, "c").await, 0);
    // Back at zero a counter is absent, so CounterEquals(0) holds, as for one never written.
    assert!(commit(
        store,
        checked(vec![Check::CounterEquals(k("c"), 0)], vec![])
    )
    .await
    .is_ok());
    ok(store, writes(vec![add("neg", -3, None)])).await;
    assert_eq!(counter(store, "neg").await, -3);
    ok(
        store,
        writes(vec![Write::ResetCounter { counter: k("neg") }]),
    )
    .await;
    ok(
        store,
        writes(vec![Write::ResetCounter { counter: k("none") }]),
    )
    .await;
    assert_eq!(
        store
            .counters(&[k("neg"), k("none"), k("c")])
            .await
            .expect("counters"),
        vec![0, 0, 0]
    );
    ok(
        store,
        writes(vec![add("big", i64::MAX, None), add("big", 10, None)]),
    )
    .await;
    assert_eq!(
        counter(store, "big").await,
        i64::MAX,
        "saturates, never wraps"
    );
    ok(store, writes(vec![add("big", -1, None)])).await;
    assert_eq!(counter(store, "big").await, i64::MAX - 1);
}

async fn counter_limits_refuse_growth_past_the_limit_as_a_whole_batch(store: &Arc<dyn Store>) {
    let items = Some((10, Quota::ContainerItems));
    ok(store, writes(vec![add("items", 8, items)])).await;
    // Exactly to the limit is allowed.
    ok(store, writes(vec![add("items", 2, items)])).await;
    assert_eq!(counter(store, "items").await, 10);
    // One past it is refused with the quota named, and the batch's other writes do not land.
    let refused = writes(vec![put("x", "v", None), add("items", 1, items)]);
    assert_eq!(
        commit(store, refused).await,
        Err(Rejected::Quota(Quota::ContainerItems))
    );
    assert_eq!(get(store, "x").await, None);
    assert_eq!(counter(store, "items").await, 10);
    // Shrinking is never refused, even above the limit.
    ok(
        store,
        writes(vec![add("items", -1, Some((0, Quota::ContainerItems)))]),
    )
    .await;
    assert_eq!(counter(store, "items").await, 9);
    // Two adds to one counter in one batch are judged by their sum...
    let bytes = Some((100, Quota::AccountBytes));
    assert_eq!(
        commit(
            store,
            writes(vec![add("bytes", 60, bytes), add("bytes", 41, bytes)])
        )
        .await,
        Err(Rejected::Quota(Quota::AccountBytes))
    );
    ok(
        store,
        writes(vec![add("bytes", 60, bytes), add("bytes", 40, bytes)]),
    )
    .await;
    // ...and a grow with a shrink in the same batch by the net change.
    ok(
        store,
        writes(vec![add("bytes", 5, bytes), add("bytes", -5, None)]),
    )
    .await;
    assert_eq!(counter(store, "bytes").await, 100);
    // Each limited counter is judged on its own; the first over its limit is named.
    let both = writes(vec![
        add("items", 1, items),
        add("bytes", 1, Some((100, Quota::ContainerBytes))),
    ]);
    assert_eq!(
        commit(store, both).await,
        Err(Rejected::Quota(Quota::ContainerBytes))
    );
    assert_eq!(counter(store, "items").await, 9);
}

async fn scans_page_in_key_order_and_reverse_skipping_expired(store: &Arc<dyn Store>) {
    ok(
        store,
        writes(vec![
            put("p/a", "1", None),
            put("p/b", "2", Some(10)),
            put("p/c", "3", None),
            put("p/d", "4", Some(20)),
            put("p/e", "5", None),
            put("q/a", "other prefix", None),
            put("p", "the prefix itself", None),
        ]),
    )
    .await;
    let prefix = || KeyRange::prefix(b"p/");
    // Before any expiry: everything, in order, in pages.
    assert_eq!(
        scan_keys(store, prefix(), 2, false, 5).await,
        (vec!["p/a".into(), "p/b".into()], true)
    );
    let after = |key: &str| KeyRange {
        start: Bound::Excluded(k(key)),
        end: prefix().end,
    };
    assert_eq!(
        scan_keys(store, after("p/b"), 2, false, 5).await,
        (vec!["p/c".into(), "p/d".into()], true)
    );
    assert_eq!(
        scan_keys(store, after("p/d"), 2, false, 5).await,
        (vec!["p/e".into()], false)
    );
    // A page that ends exactly at the last record has no more.
    assert_eq!(
        scan_keys(store, after("p/c"), 2, false, 5).await,
        (vec!["p/d".into(), "p/e".into()], false)
    );
    // At 10, p/b has expired (expiry is exclusive: visible while now < expires_at).
    assert_eq!(
        scan_keys(store, prefix(), 10, false, 10).await.0,
        vec!["p/a", "p/c", "p/d", "p/e"]
    );
    assert_eq!(store.count(prefix(), 9).await.expect("count"), 5);
    assert_eq!(store.count(prefix(), 10).await.expect("count"), 4);
    assert_eq!(store.count(prefix(), 20).await.expect("count"), 3);
    // Reverse, with expired records skipped, including a page's `more`.
    assert_eq!(
        scan_keys(store, prefix(), 2, true, 20).await,
        (vec!["p/e".into(), "p/c".into()], true)
    );
    let before = KeyRange {
        start: prefix().start,
        end: Bound::Excluded(k("p/c")),
    };
    assert_eq!(
        scan_keys(store, before, 2, true, 20).await,
        (vec!["p/a".into()], false)
    );
    // An expired record after the last visible one does not make `more` true.
    let through_d = KeyRange {
        start: Bound::Included(k("p/c")),
        end: Bound::Included(k("p/d")),
    };
    assert_eq!(
        scan_keys(store, through_d, 1, false, 20).await,
        (vec!["p/c".into()], false)
    );
    // Limit 0 returns nothing and tells whether anything is visible.
    assert_eq!(
        scan_keys(store, prefix(), 0, false, 20).await,
        (vec![], true)
    );
    // Records come back whole.
    let page = store.scan(prefix(), 1, false, 0).await.expect("scan");
    let (key, record) = &page.records[0];
    assert_eq!(
        (key.as_slice(), &record.value[..]),
        (&b"p/a"[..], &b"1"[..])
    );
    // Unbounded both ways: everything visible, in byte order.
    assert_eq!(
        scan_keys(store, all(), 100, false, 100).await.0,
        vec!["p", "p/a", "p/c", "p/e", "q/a"]
    );
    assert_eq!(store.count(all(), 100).await.expect("count"), 5);
}

async fn scans_and_counts_of_empty_or_reversed_ranges_are_empty(store: &Arc<dyn Store>) {
    ok(
        store,
        writes(vec![
            put("a", "1", None),
            put("b", "2", None),
            put("c", "3", None),
        ]),
    )
    .await;
    let ranges = [
        (Bound::Included(k("c")), Bound::Included(k("a"))),
        (Bound::Excluded(k("b")), Bound::Excluded(k("b"))),
        (Bound::Included(k("b")), Bound::Excluded(k("b"))),
        (Bound::Excluded(k("b")), Bound::Included(k("b"))),
        (Bound::Excluded(k("c")), Bound::Unbounded),
        (Bound::Unbounded, Bound::Excluded(k("a"))),
    ];
    for (start, end) in ranges {
        let range = KeyRange { start, end };
        for reverse in [false, true] {
            assert_eq!(
                scan_keys(store, range.clone(), 10, reverse, 0).await,
                (vec![], false),
                "{range:?}"
            );
        }
        assert_eq!(
            store.count(range.clone(), 0).await.expect("count"),
            0,
            "{range:?}"
        );
    }
    let single = KeyRange {
        start: Bound::Included(k("b")),
        end: Bound::Included(k("b")),
    };
    assert_eq!(
        scan_keys(store, single.clone(), 10, true, 0).await.0,
        vec!["b"]
    );
    assert_eq!(store.count(single, 0).await.expect("count"), 1);
}

async fn expired_lists_oldest_first_bounded_by_max_and_follows_overwrites(store: &Arc<dyn Store>) {
    let v1 = ok(
        store,
        writes(vec![
            put("late", "xx", Some(30)),
            put("tie-b", "yyy", Some(10)),
            put("tie-a", "z", Some(10)),
            put("early", "", Some(5)),
            put("forever", "f", None),
            put("moved", "m", Some(6)),
        ]),
    )
    .await;
    // The overwrite moves "moved" from 6 to 40 in the index; the delete drops "late" from it.
    let v2 = ok(
        store,
        writes(vec![put("moved", "mm", Some(40)), del("late")]),
    )
    .await;
    assert!(store.expired(4, 10).await.expect("expired").is_empty());
    let all_due = store.expired(1_000, 100).await.expect("expired");
    assert_eq!(
        all_due,
        vec![
            Expired {
                key: k("early"),
                version: v1,
                value_len: 0
            },
            Expired {
                key: k("tie-a"),
                version: v1,
                value_len: 1
            },
            Expired {
                key: k("tie-b"),
                version: v1,
                value_len: 3
            },
            Expired {
                key: k("moved"),
                version: v2,
                value_len: 2
            },
        ],
        "oldest first, ties in key order"
    );
    // `now` is inclusive: due at exactly its expiry.
    assert_eq!(
        expired_keys(&store.expired(10, 100).await.expect("expired")),
        vec!["early", "tie-a", "tie-b"]
    );
    // `max` bounds the answer to the oldest ones.
    assert_eq!(
        expired_keys(&store.expired(1_000, 2).await.expect("expired")),
        vec!["early", "tie-a"]
    );
    assert!(store.expired(1_000, 0).await.expect("expired").is_empty());
    // A sweep's version-checked delete removes exactly what it saw.
    let sweep = checked(vec![Check::AtVersion(k("early"), v1)], vec![del("early")]);
    ok(store, sweep).await;
    assert_eq!(
        expired_keys(&store.expired(1_000, 1).await.expect("expired")),
        vec!["tie-a"]
    );
}

/// The version contract (see `Record::version`): every commit's version is its own, never handed
/// out before or after on this store (resets included); every record a batch writes carries it;
/// so a record's version changes on every write and never comes back for a key, even after a
/// delete and a recreate. Versions are compared for equality only (redb and memory happen to count
/// up, PostgreSQL does not).
async fn versions_are_unique_across_commits_deletes_and_resets(store: &Arc<dyn Store>) {
    let mut seen = std::collections::HashSet::new();
    let mut of_k = Vec::new();
    for round in 0..20 {
        let batch = match round % 4 {
            0 => writes(vec![put("k", "v", None), put("other", "v", None)]),
            1 => writes(vec![add("c", 1, None)]),
            2 => writes(vec![]),
            _ => writes(vec![del("k")]),
        };
        let version = ok(store, batch).await;
        assert!(
            seen.insert(version),
            "round {round}: {version} handed out twice"
        );
        if round % 4 == 0 {
            // Both records of the batch carry its version.
            assert_eq!(get(store, "k").await.expect("k").version, version);
            assert_eq!(get(store, "other").await.expect("other").version, version);
            of_k.push(version);
        }
    }
    // Deleted and recreated five times: five different versions (ETags) for "k".
    of_k.dedup();
    assert_eq!(of_k.len(), 5, "{of_k:?}");
    // A refused batch is not a commit; the next commit has a fresh version.
    assert!(
        commit(store, checked(vec![Check::Present(k("nope"))], vec![]))
            .await
            .is_err()
    );
    let stamped = ok(store, writes(vec![put("k", "v", None)])).await;
    assert!(seen.insert(stamped));
    // A check against any earlier version of "k" fails; against the current one it holds.
    for old in &of_k {
        assert_eq!(
            commit(store, checked(vec![Check::AtVersion(k("k"), *old)], vec![])).await,
            Err(Rejected::Check(Check::AtVersion(k("k"), *old)))
        );
    }
    ok(
        store,
        checked(vec![Check::AtVersion(k("k"), stamped)], vec![]),
    )
    .await;
    // A reset drops data, not the versions handed out: a version a client kept from before the
    // reset can never match a record written after it.
    store.reset().await.expect("reset");
    let after_reset = ok(store, writes(vec![put("k", "v", None)])).await;
    assert!(
        !seen.contains(&after_reset),
        "{after_reset} handed out before the reset"
    );
}

/// Concurrent commits that share a checked record and a few counters but write their own keys
/// (PostgreSQL's case without a global commit lock: a shared lock on the checked record, row
/// locks on each counter) all land, each with its own version, and every counter is exact.
async fn concurrent_commits_on_their_own_keys_all_land_with_exact_counters(store: &Arc<dyn Store>) {
    ok(store, writes(vec![put("shared-read", "x", None)])).await;
    let outcomes = race(store, |i| {
        checked(
            vec![
                Check::Present(k("shared-read")),
                Check::Absent(k(&format!("own {i}"))),
            ],
            vec![
                put(&format!("own {i}"), "v", None),
                add(
                    &format!("counter {}", i % 4),
                    1,
                    Some((RACERS as i64, Quota::AccountItems)),
                ),
            ],
        )
    })
    .await;
    let mut versions: Vec<u64> = outcomes
        .iter()
        .map(|o| o.clone().expect("unrelated commits all land"))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), RACERS);
    for c in 0..4 {
        assert_eq!(
            counter(store, &format!("counter {c}")).await,
            (RACERS / 4) as i64
        );
    }
    assert_eq!(
        store.count(all(), 0).await.expect("count"),
        RACERS as u64 + 1
    );
}

async fn reset_drops_every_record_and_counter(store: &Arc<dyn Store>) {
    ok(
        store,
        writes(vec![
            put("a", "1", Some(5)),
            put("b", "2", None),
            add("c", 3, None),
        ]),
    )
    .await;
    store.reset().await.expect("reset");
    assert_eq!(
        store.get_many(&[k("a"), k("b")]).await.expect("get"),
        vec![None, None]
    );
    assert_eq!(counter(store, "c").await, 0);
    assert!(store.expired(100, 10).await.expect("expired").is_empty());
    assert_eq!(store.count(all(), 0).await.expect("count"), 0);
    assert_eq!(store.stats().await.expect("stats").records, 0);
    // The store is usable at once.
    ok(
        store,
        checked(vec![Check::Absent(k("a"))], vec![put("a", "again", None)]),
    )
    .await;
    assert_eq!(value(store, "a").await.as_deref(), Some("again"));
}

async fn stats_count_records(store: &Arc<dyn Store>) {
    assert_eq!(store.stats().await.expect("stats").records, 0);
    ok(
        store,
        writes(vec![
            put("a", "1", None),
            put("b", "2", Some(1)),
            add("counter", 1, None),
        ]),
    )
    .await;
    // Records, expired-but-unswept included; counters are not records.
    assert_eq!(store.stats().await.expect("stats").records, 2);
    ok(store, writes(vec![del("a")])).await;
    assert_eq!(store.stats().await.expect("stats").records, 1);
}

/// How many writers race in the concurrency scenarios.
const RACERS: usize = 16;

/// Runs `RACERS` commits at once, each built by `batch(i)` and sent from its own task; a barrier
/// releases them together so they overlap on the runtime's worker threads.
async fn race(
    store: &Arc<dyn Store>,
    batch: impl Fn(usize) -> Batch,
) -> Vec<Result<u64, Rejected>> {
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, start, batch) = (store.clone(), start.clone(), batch(i));
            tokio::spawn(async move {
                start.wait().await;
                store.commit(batch).await.expect("backend healthy")
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(RACERS);
    for task in tasks {
        outcomes.push(task.await.expect("racer finished"));
    }
    outcomes
}

async fn racing_creates_of_one_key_have_exactly_one_winner(store: &Arc<dyn Store>) {
    let outcomes = race(store, |i| {
        checked(
            vec![Check::Absent(k("key"))],
            vec![
                put("key", &format!("writer {i}"), None),
                add("created", 1, None),
            ],
        )
    })
    .await;
    let winners: Vec<usize> = (0..RACERS).filter(|i| outcomes[*i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for (i, outcome) in outcomes.iter().enumerate() {
        if i != winners[0] {
            assert_eq!(outcome, &Err(Rejected::Check(Check::Absent(k("key")))));
        }
    }
    let record = get(store, "key").await.expect("created");
    assert_eq!(record.value, format!("writer {}", winners[0]).into_bytes());
    assert_eq!(Ok(record.version), outcomes[winners[0]]);
    assert_eq!(counter(store, "created").await, 1);
}

async fn racing_version_checked_updates_have_exactly_one_winner(store: &Arc<dyn Store>) {
    let v = ok(store, writes(vec![put("doc", "0", None)])).await;
    let outcomes = race(store, |i| {
        checked(
            vec![Check::AtVersion(k("doc"), v)],
            vec![put("doc", &format!("{}", i + 1), None)],
        )
    })
    .await;
    let winners: Vec<usize> = (0..RACERS).filter(|i| outcomes[*i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let record = get(store, "doc").await.expect("doc");
    assert_eq!(record.value, format!("{}", winners[0] + 1).into_bytes());
    assert_ne!(record.version, v);
    assert_eq!(Ok(record.version), outcomes[winners[0]]);
}

async fn racing_limited_adds_stop_exactly_at_the_limit(store: &Arc<dyn Store>) {
    let limit = (RACERS / 2) as i64;
    let outcomes = race(store, |i| {
        writes(vec![
            put(&format!("item {i:02}"), "v", None),
            add("items", 1, Some((limit, Quota::AccountItems))),
        ])
    })
    .await;
    let accepted = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(accepted as i64, limit, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| o.is_ok() || *o == Err(Rejected::Quota(Quota::AccountItems))));
    assert_eq!(counter(store, "items").await, limit);
    assert_eq!(store.count(all(), 0).await.expect("count"), limit as u64);
    // Every accepted commit got its own version.
    let mut versions: Vec<u64> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), accepted);
}

/// `claim_once` (replay protection): of many claims of one key at once exactly one is admitted;
/// the record it leaves is an ordinary expiring record (listed by `expired`, swept by a
/// version-checked delete) and, until it is deleted, even once expired, the key stays claimed.
async fn claim_once_admits_a_key_once_until_it_is_deleted(store: &Arc<dyn Store>) {
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.claim_once(k("nonce"), 50).await.expect("claim")
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.expect("claimer"));
    }
    assert_eq!(admitted, 1);
    let record = get(store, "nonce").await.expect("claimed");
    assert_eq!((&record.value[..], record.expires_at), (&b""[..], Some(50)));
    assert!(!store.claim_once(k("nonce"), 60).await.expect("claim"));
    // Expired but not swept: still claimed; found by the sweep and deleted by version.
    let expired = store.expired(50, 10).await.expect("expired");
    assert_eq!(expired_keys(&expired), vec!["nonce"]);
    assert!(!store.claim_once(k("nonce"), 60).await.expect("claim"));
    ok(
        store,
        checked(
            vec![Check::AtVersion(k("nonce"), expired[0].version)],
            vec![del("nonce")],
        ),
    )
    .await;
    assert!(store.claim_once(k("nonce"), 60).await.expect("claim"));
}

async fn commits_fail_after_close(store: &Arc<dyn Store>) {
    ok(store, writes(vec![put("a", "1", None)])).await;
    store.close().await.expect("close");
    assert!(store
        .commit(writes(vec![put("b", "2", None)]))
        .await
        .is_err());
}

// ------------------------------------------------------------------------------- checkpoints

/// A value stored as a side file on redb (and in memory like any other on the memory store).
fn large(fill: u8) -> Bytes {
    Bytes::from(vec![fill; kv_core::store::redb::BLOB_MIN_BYTES + 17])
}

fn put_bytes(key: &str, value: Bytes) -> Write {
    Write::Put {
        key: k(key),
        value,
        expires_at: None,
    }
}

async fn a_restore_puts_back_records_ttls_counters_and_large_values_exactly(
    store: &Arc<dyn Store>,
) {
    ok(
        store,
        writes(vec![
            put("a", "1", Some(50)),
            put("b", "2", None),
            add("c", 3, None),
            put_bytes("big", large(b'x')),
        ]),
    )
    .await;
    let a_before = get(store, "a").await.expect("a");
    let taken = store.checkpoint("one", 7).await.expect("checkpoint");
    assert_eq!(
        (taken.name.as_str(), taken.records, taken.clock_offset),
        ("one", 3, 7)
    );

    // Everything changes after the checkpoint, the large value twice (replaced, then deleted).
    ok(
        store,
        writes(vec![
            put("a", "changed", None),
            del("b"),
            put("d", "new", Some(60)),
            add("c", 4, None),
            put_bytes("big", large(b'y')),
        ]),
    )
    .await;
    let last = ok(store, writes(vec![del("big"), add("fresh", 1, None)])).await;

    let restored = store.restore_checkpoint("one").await.expect("restore");
    assert_eq!(
        restored, taken,
        "a restore answers the checkpoint as it was taken"
    );
    assert_eq!(
        get(store, "a").await,
        Some(a_before),
        "value, TTL and version"
    );
    assert_eq!(value(store, "b").await.as_deref(), Some("2"));
    assert_eq!(get(store, "d").await, None);
    assert_eq!(counter(store, "c").await, 3);
    assert_eq!(counter(store, "fresh").await, 0);
    let big = get(store, "big").await.expect("the large value is back");
    assert!(
        big.value == large(b'x'),
        "the large value is the one checkpointed"
    );
    // The expiry index came back with the records: only `a` (50) expires, not `d` (60).
    assert_eq!(
        expired_keys(&store.expired(100, 10).await.expect("expired")),
        vec!["a"]
    );
    assert_eq!(store.stats().await.expect("stats").records, 3);

    // Versions keep growing past everything handed out before the restore.
    let after = ok(store, writes(vec![put("b", "3", None)])).await;
    assert!(after > last, "{after} after {last}");

    // The checkpoint stays for further restores.
    ok(store, writes(vec![del("a"), put_bytes("big", large(b'z'))])).await;
    store
        .restore_checkpoint("one")
        .await
        .expect("second restore");
    assert_eq!(value(store, "b").await.as_deref(), Some("2"));
    assert!(get(store, "big").await.expect("big").value == large(b'x'));
    assert!(get(store, "a").await.is_some());
}

async fn checkpoints_are_listed_replaced_dropped_and_named_in_errors(store: &Arc<dyn Store>) {
    ok(store, writes(vec![put("a", "1", None)])).await;
    store.checkpoint("one", 0).await.expect("one");
    ok(store, writes(vec![put("b", "2", None)])).await;
    // Taking a checkpoint of an existing name replaces it.
    let replaced = store.checkpoint("one", 3).await.expect("one again");
    assert_eq!((replaced.records, replaced.clock_offset), (2, 3));
    let names: Vec<(String, u64)> = store
        .list_checkpoints()
        .await
        .expect("list")
        .into_iter()
        .map(|c| (c.name, c.records))
        .collect();
    assert_eq!(names, vec![("one".to_string(), 2)]);
    ok(store, writes(vec![del("a"), del("b")])).await;
    store.restore_checkpoint("one").await.expect("restore");
    assert_eq!(value(store, "b").await.as_deref(), Some("2"));

    assert_eq!(
        store.restore_checkpoint("missing").await,
        Err(CheckpointError::NotFound("missing".into()))
    );
    store.drop_checkpoint("one").await.expect("drop");
    assert_eq!(
        store.drop_checkpoint("one").await,
        Err(CheckpointError::NotFound("one".into()))
    );
    assert!(store.list_checkpoints().await.expect("list").is_empty());
    // Data is untouched by a drop.
    assert_eq!(value(store, "a").await.as_deref(), Some("1"));
}
