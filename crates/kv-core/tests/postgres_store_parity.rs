//! Differential property tests at the `Store` seam: random sequences of batches (every check and
//! write kind, expiries, counter limits), point reads, counters, scans (both directions, any
//! `now`), expiry lookups, resets and record counts must give identical answers, step by step,
//! from each backend and from redb, the reference: the in-memory store
//! (`memory_answers_exactly_like_redb`, no server needed) and PostgreSQL
//! (`postgres_answers_exactly_like_redb`). Each case starts from an empty store, an empty schema
//! and an empty redb file. The memory store numbers commits as redb does, so its versions must
//! agree too; PostgreSQL's versions are per-commit unique ids instead of a sequence (the `Store`
//! contract promises uniqueness, not order), so they are compared through the one-to-one map
//! of the versions the two stores returned for the same commits: a check `AtVersion(k, v)` is
//! sent to PostgreSQL with its version for redb's `v`, and its answers are read back through
//! the map.
//!
//! The PostgreSQL server is `KV_TEST_POSTGRES` when set; otherwise one is started with
//! scripts/postgres.sh and stopped when the test binary exits. `KV_PARITY_CASES` sets the case
//! count (default 60 against PostgreSQL, 256 against memory, which costs no server round trips).

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::OnceLock;

use bytes::Bytes;
use kv_core::store::memory::MemoryStore;
use kv_core::store::postgres::PostgresStore;
use kv_core::store::redb::RedbStore;
use kv_core::store::{Batch, Check, KeyRange, Store, Write};
use kv_core::Quota;
use proptest::prelude::*;

const KEYS: &[&[u8]] = &[b"", b"a", b"a\x00", b"ab", b"b", b"\xff", b"\xff\xff"];
const COUNTERS: &[&[u8]] = &[b"c1", b"c2"];

mod common;
use common::server_url;

#[derive(Clone, Debug)]
enum Op {
    Commit(Batch),
    Get(Vec<usize>),
    Counters,
    Scan {
        start: Bound<usize>,
        end: Bound<usize>,
        limit: usize,
        reverse: bool,
        now: u64,
    },
    Expired {
        now: u64,
        max: usize,
    },
    Reset,
    Stats,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    (0..KEYS.len()).prop_map(|i| KEYS[i].to_vec())
}

fn counter() -> impl Strategy<Value = Vec<u8>> {
    (0..COUNTERS.len()).prop_map(|i| COUNTERS[i].to_vec())
}

fn check() -> impl Strategy<Value = Check> {
    prop_oneof![
        key().prop_map(Check::Absent),
        key().prop_map(Check::Present),
        (key(), 0..8u64).prop_map(|(k, v)| Check::AtVersion(k, v)),
        (counter(), -2..6i64).prop_map(|(k, v)| Check::CounterEquals(k, v)),
    ]
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        3 => (key(), 0..4usize, prop::option::of(1..6u64)).prop_map(|(key, len, expires_at)| {
            Write::Put {
                value: Bytes::from(vec![b'v'; len]),
                key,
                expires_at,
            }
        }),
        1 => key().prop_map(|key| Write::Delete { key }),
        1 => (key(), key()).prop_map(|(start, end)| Write::DeleteRange { start, end }),
        2 => (counter(), -3..6i64, prop::option::of(0..8i64)).prop_map(|(counter, delta, limit)| {
            Write::Add {
                counter,
                delta,
                limit: limit.map(|l| (l, Quota::ContainerItems)),
            }
        }),
        1 => counter().prop_map(|counter| Write::ResetCounter { counter }),
    ]
}

fn bound() -> impl Strategy<Value = Bound<usize>> {
    prop_oneof![
        Just(Bound::Unbounded),
        (0..KEYS.len()).prop_map(Bound::Included),
        (0..KEYS.len()).prop_map(Bound::Excluded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (prop::collection::vec(check(), 0..3), prop::collection::vec(write(), 0..4))
            .prop_map(|(checks, writes)| Op::Commit(Batch { checks, writes })),
        2 => prop::collection::vec(0..KEYS.len(), 0..4).prop_map(Op::Get),
        2 => Just(Op::Counters),
        4 => (bound(), bound(), 0..4usize, any::<bool>(), 0..7u64).prop_map(
            |(start, end, limit, reverse, now)| Op::Scan { start, end, limit, reverse, now }
        ),
        2 => (0..7u64, 0..4usize).prop_map(|(now, max)| Op::Expired { now, max }),
        1 => Just(Op::Reset),
        1 => Just(Op::Stats),
    ]
}

fn to_key_bound(b: &Bound<usize>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(i) => Bound::Included(KEYS[*i].to_vec()),
        Bound::Excluded(i) => Bound::Excluded(KEYS[*i].to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// One operation's answer, rendered for comparison.
async fn answer(store: &dyn Store, op: &Op) -> String {
    match op {
        Op::Commit(batch) => format!("{:?}", store.commit(batch.clone()).await.unwrap()),
        Op::Get(keys) => {
            let keys: Vec<Vec<u8>> = keys.iter().map(|i| KEYS[*i].to_vec()).collect();
            format!("{:?}", store.get_many(&keys).await.unwrap())
        }
        Op::Counters => {
            let keys: Vec<Vec<u8>> = COUNTERS.iter().map(|k| k.to_vec()).collect();
            format!("{:?}", store.counters(&keys).await.unwrap())
        }
        Op::Scan {
            start,
            end,
            limit,
            reverse,
            now,
        } => {
            let range = KeyRange {
                start: to_key_bound(start),
                end: to_key_bound(end),
            };
            let count = store.count(range.clone(), *now).await.unwrap();
            let page = store.scan(range, *limit, *reverse, *now).await.unwrap();
            format!("{:?} more={} count={count}", page.records, page.more)
        }
        Op::Expired { now, max } => {
            format!("{:?}", store.expired(*now, *max).await.unwrap())
        }
        Op::Reset => format!("{:?}", store.reset().await.unwrap()),
        // Records only: file_bytes is each backend's own measure of its footprint.
        Op::Stats => format!("records={}", store.stats().await.unwrap().records),
    }
}

/// The version a commit's answer carries, if it committed.
fn committed(answer: &str) -> Option<u64> {
    answer.strip_prefix("Ok(")?.strip_suffix(')')?.parse().ok()
}

/// `op` with every `AtVersion` version that redb handed out replaced by PostgreSQL's for the
/// same commit (a version redb never handed out is sent as it is: PostgreSQL never hands out
/// one that small either).
fn with_versions(op: &Op, versions: &HashMap<u64, u64>) -> Op {
    let Op::Commit(batch) = op else {
        return op.clone();
    };
    let checks = batch
        .checks
        .iter()
        .map(|check| match check {
            Check::AtVersion(k, v) => Check::AtVersion(k.clone(), *versions.get(v).unwrap_or(v)),
            other => other.clone(),
        })
        .collect();
    Op::Commit(Batch {
        checks,
        writes: batch.writes.clone(),
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn cases(default: u32) -> u32 {
    std::env::var("KV_PARITY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    /// The toydb `Mirror` pattern: every operation goes to both stores and the answers must match
    /// before the next one is sent, so the first divergence is reported at its own step.
    #[test]
    fn memory_answers_exactly_like_redb(ops in prop::collection::vec(op(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let memory = MemoryStore::new();
            let redb = RedbStore::open(&dir.path().join("parity.redb"), false).unwrap();
            for (step, op) in ops.iter().enumerate() {
                let expected = answer(&redb, op).await;
                let got = answer(&memory, op).await;
                prop_assert_eq!(got, expected, "step {}: {:?}", step, op);
            }
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(60), ..ProptestConfig::default() })]

    #[test]
    fn postgres_answers_exactly_like_redb(ops in prop::collection::vec(op(), 1..30)) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static CASE: AtomicU64 = AtomicU64::new(0);
        let case = CASE.fetch_add(1, Ordering::Relaxed);
        let url = server_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let url = format!(
            "{url}{sep}options=-csearch_path%3Dparity_{}_{case}_{unique}",
            std::process::id()
        );
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let pg = PostgresStore::open(&url, 2).await.unwrap();
            let redb = RedbStore::open(&dir.path().join("parity.redb"), false).unwrap();
            // redb's version of a commit -> PostgreSQL's version of the same commit.
            let mut versions: HashMap<u64, u64> = HashMap::new();
            for (step, op) in ops.iter().enumerate() {
                let expected = answer(&redb, op).await;
                let got = answer(&pg, &with_versions(op, &versions)).await;
                if let (Some(theirs), Some(ours)) = (committed(&expected), committed(&got)) {
                    prop_assert!(
                        versions.values().all(|v| *v != ours),
                        "step {}: version {} handed out twice", step, ours
                    );
                    versions.insert(theirs, ours);
                }
                let got = versions.iter().fold(got, |got, (theirs, ours)| {
                    got.replace(&format!("Ok({ours})"), &format!("Ok({theirs})"))
                        .replace(&format!(", {ours})"), &format!(", {theirs})"))
                        .replace(&format!("version: {ours} "), &format!("version: {theirs} "))
                        .replace(&format!("version: {ours},"), &format!("version: {theirs},"))
                });
                prop_assert_eq!(got, expected, "step {}: {:?}", step, op);
            }
            pg.close().await.unwrap();
            Ok(())
        })?;
    }
}
