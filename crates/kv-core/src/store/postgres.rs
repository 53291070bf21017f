//! The scale-out backend: one PostgreSQL database shared by any number of stateless gateways.
//!
//! Semantics are redb's (see `store/redb.rs`) apart from version order, mapped onto these tables:
//! `kv_records` (key, value, expires_at, version) with an index on (expires_at, key) that serves as
//! the expiry index; `kv_counters` (key, value); `kv_meta` (name, value) holding the shared clock
//! offset; `kv_leases`, which elects the one gateway that sweeps; and `kv_version_prefixes`.
//!
//! No row is shared by all commits. A commit locks only what its batch names (see
//! [`PostgresStore::commit_once`]): the records it checks (a placeholder row for a key checked
//! absent, so a concurrent creator of that key waits; `FOR UPDATE` on records it checks and
//! writes; `FOR SHARE` on records it only checks, such as its container's registry entry) and the
//! counters it checks or changes. Its checks and counter limits are judged on those locked rows
//! and its writes applied before the locks go at COMMIT, so checks stay atomic with their writes
//! and counters never lose an update, yet commits on unrelated keys and containers never wait for
//! each other. Under READ COMMITTED (PostgreSQL's default) each statement sees the latest committed
//! rows and a locked row is re-read after its lock is granted; under SERIALIZABLE (CockroachDB's
//! default) a conflict surfaces as SQLSTATE 40001, and a lock cycle anywhere as 40P01: `commit`
//! retries both. A rejected batch rolls back.
//!
//! Versions are per commit and unique on the database without a shared row: a gateway claims a
//! random prefix in `kv_version_prefixes` once at start-up and numbers its commits under it (see
//! [`PostgresStore::next_version`]). They change on every write of a key and never repeat for it,
//! which is what ETags, `AtVersion` checks and the sweeper's version-checked deletes need; they
//! are not in commit order across gateways, which nothing in the engine needs.
//!
//! Reads need no lock: each of `get_many`, `scan`, `counters` and `expired` is one statement,
//! and one statement reads one snapshot.
//!
//! The SQL is kept to what CockroachDB and YugabyteDB accept (docs/POSTGRES.md lists it): BYTEA,
//! BIGINT, `= ANY($1)` and `unnest($1)` over arrays, `INSERT .. ON CONFLICT .. DO UPDATE/NOTHING`,
//! `SELECT .. FOR UPDATE/FOR SHARE`, `CREATE .. IF NOT EXISTS`, `RETURNING`, and no advisory
//! locks, sequences, LISTEN/NOTIFY or PL/pgSQL. `reset` alone takes `LOCK TABLE` where offered.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::{Hook, Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use super::{
    Batch, Check, CommitResult, Expired, Key, KeyRange, Page, Record, Rejected, Store, StoreStats,
    Write,
};
use crate::clock::Clock;
use crate::error::{Error, Result};

/// Versioned schema migrations, applied in order at start-up and recorded in `kvmux_migrations`.
/// Never edit a released entry: append a new one.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE IF NOT EXISTS kv_records (
            key BYTEA PRIMARY KEY,
            value BYTEA NOT NULL,
            expires_at BIGINT,
            version BIGINT NOT NULL
        )",
            "CREATE INDEX IF NOT EXISTS kv_records_expiry ON kv_records (expires_at, key)",
            "CREATE TABLE IF NOT EXISTS kv_counters (key BYTEA PRIMARY KEY, value BIGINT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS kv_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO kv_meta (name, value) VALUES ('last_version', 0), ('clock_offset', 0)
            ON CONFLICT (name) DO NOTHING",
            "CREATE TABLE IF NOT EXISTS kv_leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until_ms BIGINT NOT NULL
        )",
        ],
    ),
    (
        2,
        &[
            // Per-record versions (see `PostgresStore::next_version`): each gateway claims a prefix
            // here once and numbers its commits under it. Rows are never deleted, so a prefix, and
            // with it a version, is never handed out twice.
            "CREATE TABLE IF NOT EXISTS kv_version_prefixes (
            prefix BIGINT PRIMARY KEY,
            claimed_ms BIGINT NOT NULL
        )",
        ],
    ),
];

/// How often a commit is retried after a serialization failure or deadlock before giving up.
const MAX_SERIALIZATION_RETRIES: usize = 32;
/// How often a gateway exchanges clock offsets with the others.
const CLOCK_SYNC_INTERVAL: Duration = Duration::from_millis(50);
/// How long the sweeper lease lasts; the holder renews it on every sweep tick.
const SWEEP_LEASE_MS: i64 = 5_000;
/// The shared clock offset, read inside the statement that uses it.
const SHARED_OFFSET: &str = "(SELECT value FROM kv_meta WHERE name = 'clock_offset')";

/// The database's own clock in milliseconds, so lease expiry does not depend on gateway clocks.
const DB_NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// Bits of a version that number one prefix's commits; the prefix takes the bits above them.
const VERSION_COUNTER_BITS: u32 = 40;
/// Prefixes are 1..2^22, so every version is below 2^62: a BIGINT, and never `u64::MAX` (the
/// engine's "written in this transaction" mark) or 0 (a placeholder row's version).
const VERSION_PREFIXES: u64 = (1 << 22) - 1;

/// The PostgreSQL backend. Cheap to share behind an `Arc`.
pub struct PostgresStore {
    pool: Pool,
    /// A random identity for lease ownership.
    instance: String,
    /// This process's version prefix and the last number used under it.
    versions: Mutex<(u64, u64)>,
    /// The engine clock of this gateway, when it shares the database's clock (`open_shared`):
    /// reads then compute "now" from the shared offset inside their own statement and raise
    /// this clock to it.
    clock: std::sync::OnceLock<Clock>,
}

fn pg_error(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("postgres: {e}"))
}

/// True for failures that a retry of the whole transaction can cure.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Keys, versions and expiry times are u64 in the engine and BIGINT in SQL; engine values never
/// come near 2^63, and clamping keeps a hostile TTL from wrapping negative.
fn to_sql_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_sql_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl PostgresStore {
    /// Connects with a pool of up to `max_connections` and applies pending migrations.
    ///
    /// A URL may carry `options=-c search_path=NAME` to keep one kvmux's tables in schema NAME; the
    /// schema is created if missing, so tests can give every gateway a fresh one.
    pub async fn open(url: &str, max_connections: usize) -> Result<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::Invalid(format!("storage URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    prefer_generic_plans(client).await;
                    Ok(())
                })
            }))
            .max_size(max_connections.max(1))
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(pg_error)?;
        let store = PostgresStore {
            pool,
            instance: format!("{}-{:016x}", std::process::id(), rand_u64()),
            versions: Mutex::new((0, 0)),
            clock: std::sync::OnceLock::new(),
        };
        store.migrate().await?;
        let prefix = store.claim_version_prefix().await?;
        *store.versions.lock().unwrap_or_else(|p| p.into_inner()) = (prefix, 0);
        Ok(store)
    }

    /// Opens the store and keeps `clock` in step with every other gateway on the same database
    /// (see [`PostgresStore::spawn_clock_sync`]). This is what `storage = "postgres://..."` runs.
    pub async fn open_shared(
        url: &str,
        max_connections: usize,
        clock: &Clock,
    ) -> Result<Arc<Self>> {
        let store = Self::open(url, max_connections).await?;
        let _ = store.clock.set(clock.clone());
        let store = Arc::new(store);
        // Adopt the shared offset before serving, so a new gateway starts at the shared time.
        store.sync_clock(clock).await?;
        Arc::clone(&store).spawn_clock_sync(clock.clone(), CLOCK_SYNC_INTERVAL);
        Ok(store)
    }

    /// Publishes local clock advances and adopts everyone else's, every `interval`, until the
    /// store is closed or dropped. An advance made through one gateway is thus seen by all within
    /// about two intervals; the gateway that made it sees it at once.
    pub fn spawn_clock_sync(
        self: Arc<Self>,
        clock: Clock,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self);
        drop(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(store) = weak.upgrade() else { break };
                if store.pool.is_closed() {
                    break;
                }
                if let Err(e) = store.sync_clock(&clock).await {
                    tracing::warn!(error = %e, "clock offset sync failed");
                }
            }
        })
    }

    /// One round of clock sync: push the local offset, then move forward to the shared one.
    pub async fn sync_clock(&self, clock: &Clock) -> Result<()> {
        let shared = self.merge_clock_offset(clock.offset()).await?;
        // `advance` adds atomically, so a local advance racing with this one is never lost.
        let behind = shared.saturating_sub(clock.offset());
        if behind > 0 {
            clock.advance(u64::try_from(behind).unwrap_or(0));
        }
        Ok(())
    }

    /// The `$base` reads add [`SHARED_OFFSET`] to: this gateway's base time (wall clock without offset) when it
    /// shares the database's clock, else a value far in the past, so "now" is the caller's.
    fn clock_base(&self) -> i64 {
        match self.clock.get() {
            Some(clock) => to_sql_u64(clock.base_secs()),
            None => -(1 << 62),
        }
    }

    /// Raises this gateway's clock to the shared offset a read statement returned.
    fn adopt_offset(&self, shared: i64) {
        if let Some(clock) = self.clock.get() {
            clock.set_offset(shared);
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pg_error)
    }

    /// Applies every migration newer than the recorded one. Gateways starting together may race
    /// on the DDL; the loser's transaction fails and it simply tries again, then finds the work
    /// done (portable, where an advisory lock would not be).
    async fn migrate(&self) -> Result<()> {
        let mut last_error = None;
        for attempt in 0..20u64 {
            match self.migrate_once().await {
                Ok(()) => return Ok(()),
                Err(e @ Error::Invalid(_)) => return Err(e),
                Err(e) => {
                    tracing::debug!(attempt, error = %e, "schema migration raced; retrying");
                    last_error = Some(e);
                    tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Internal("migration failed".into())))
    }

    async fn migrate_once(&self) -> Result<()> {
        let mut client = self.client().await?;
        // A fresh per-test schema named in search_path is created here.
        let search_path: String = client
            .query_one("SHOW search_path", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        if let Some(first) = search_path.split(',').next().map(str::trim) {
            let name = first.trim_matches('"');
            if !name.is_empty() && name != "$user" && name != "public" {
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(Error::Invalid(format!(
                        "search_path schema {name:?}: use letters, digits and _"
                    )));
                }
                client
                    .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {name}"))
                    .await
                    .map_err(pg_error)?;
            }
        }
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS kvmux_migrations (version BIGINT PRIMARY KEY)",
            )
            .await
            .map_err(pg_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let applied: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM kvmux_migrations",
                &[],
            )
            .await
            .map_err(pg_error)?
            .get(0);
        for (version, statements) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
            for statement in *statements {
                tx.batch_execute(statement).await.map_err(pg_error)?;
            }
            tx.execute(
                "INSERT INTO kvmux_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(pg_error)?;
            tracing::info!(version, "applied PostgreSQL schema migration");
        }
        tx.commit().await.map_err(pg_error)
    }

    /// The schema version this database is at.
    pub async fn schema_version(&self) -> Result<i64> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM kvmux_migrations",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get(0))
    }

    /// Claims a version prefix no process has had on this database: a random one, inserted with
    /// `ON CONFLICT DO NOTHING`; taken already, another is tried. One statement at start-up (and
    /// after 2^40 commits), never in the commit path.
    async fn claim_version_prefix(&self) -> Result<u64> {
        let client = self.client().await?;
        let sql = format!(
            "INSERT INTO kv_version_prefixes (prefix, claimed_ms) VALUES ($1, {DB_NOW_MS})
             ON CONFLICT (prefix) DO NOTHING RETURNING prefix"
        );
        for _ in 0..1_000 {
            let prefix = 1 + rand_u64() % VERSION_PREFIXES;
            let rows = client
                .query(&sql, &[&to_sql_u64(prefix)])
                .await
                .map_err(pg_error)?;
            if !rows.is_empty() {
                return Ok(prefix);
            }
        }
        Err(Error::Internal(
            "postgres: no free version prefix found (kv_version_prefixes is nearly full)".into(),
        ))
    }

    /// The version of the next commit: this process's prefix, then its own count of commits.
    /// Unique on the database (no other process has the prefix, and this one never repeats a
    /// number), so it changes on every write of a record and never comes back for a key, even
    /// after a delete and a recreate or a reset, without any row shared by all commits. Versions
    /// are compared for equality only: across gateways they are not in commit order.
    async fn next_version(&self) -> Result<i64> {
        loop {
            {
                let mut slot = self.versions.lock().unwrap_or_else(|p| p.into_inner());
                if slot.1 + 1 < (1 << VERSION_COUNTER_BITS) {
                    slot.1 += 1;
                    return Ok(to_sql_u64((slot.0 << VERSION_COUNTER_BITS) | slot.1));
                }
            }
            let prefix = self.claim_version_prefix().await?;
            let mut slot = self.versions.lock().unwrap_or_else(|p| p.into_inner());
            if slot.1 + 1 >= (1 << VERSION_COUNTER_BITS) {
                *slot = (prefix, 0);
            }
        }
    }

    /// Takes or renews the named lease for this instance; true while this instance holds it.
    /// A holder that stops renewing loses it after `SWEEP_LEASE_MS` of database time.
    pub async fn try_lease(&self, name: &str) -> Result<bool> {
        let client = self.client().await?;
        let sql = format!(
            "INSERT INTO kv_leases (name, holder, until_ms) VALUES ($1, $2, {DB_NOW_MS} + $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
             WHERE kv_leases.holder = excluded.holder OR kv_leases.until_ms < {DB_NOW_MS}
             RETURNING holder"
        );
        let statement = client.prepare_cached(&sql).await.map_err(pg_error)?;
        let rows = client
            .query(&statement, &[&name, &self.instance, &SWEEP_LEASE_MS])
            .await
            .map_err(pg_error)?;
        Ok(!rows.is_empty())
    }

    /// Gives the named lease up if this instance holds it (on shutdown, so another takes over).
    pub async fn release_lease(&self, name: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM kv_leases WHERE name = $1 AND holder = $2",
                &[&name, &self.instance],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    /// Raises the shared clock offset to at least `local` and returns the shared value. Offsets
    /// only grow, so taking the maximum merges advances made through any gateway in any order.
    /// Both sides are kept within `0..=Clock::MAX_OFFSET_SECS`, so an offset a buggy build stored
    /// (wrapped negative, or near i64::MAX) is healed here instead of surviving every restart.
    ///
    /// Every gateway runs this every [`CLOCK_SYNC_INTERVAL`], so it writes only when the stored
    /// value would change: the usual case is one read-only statement (an `UPDATE` that changes
    /// nothing still writes a new row version, WAL and, on a durable server, a flush: 20 of them
    /// a second per gateway, all on one row).
    pub async fn merge_clock_offset(&self, local: i64) -> Result<i64> {
        let local = crate::clock::clamp_offset(local);
        let client = self.client().await?;
        let read = client
            .prepare_cached("SELECT value FROM kv_meta WHERE name = 'clock_offset'")
            .await
            .map_err(pg_error)?;
        let stored: i64 = client.query_one(&read, &[]).await.map_err(pg_error)?.get(0);
        // What the UPDATE below would store; if that is what is there, there is nothing to write.
        if stored.max(0).max(local).min(Clock::MAX_OFFSET_SECS) == stored {
            return Ok(stored);
        }
        let merge = client
            .prepare_cached(
                "UPDATE kv_meta SET value = LEAST(GREATEST(value, 0, $1), $2)
                 WHERE name = 'clock_offset' RETURNING value",
            )
            .await
            .map_err(pg_error)?;
        let row = client
            .query_one(&merge, &[&local, &Clock::MAX_OFFSET_SECS])
            .await
            .map_err(pg_error)?;
        Ok(crate::clock::clamp_offset(row.get(0)))
    }

    /// One attempt at a batch inside one transaction, in two pipelined round trips and without
    /// any row outside the batch's own keys and counters (see the module doc):
    ///
    /// 1. `BEGIN`, then lock what the checks and counters depend on: a placeholder row inserted
    ///    for every key checked `Absent` (`ON CONFLICT DO NOTHING RETURNING key`: the keys that
    ///    come back were absent and are now held by this transaction, a concurrent creator of the
    ///    same key waits for it), `FOR UPDATE` on records checked and written, `FOR SHARE` on
    ///    records only checked, and every counter the batch checks or changes, created at 0 if
    ///    missing and locked by a no-op upsert that returns its value.
    /// 2. Judge the batch by the shared rules (`store::batch`) on what phase 1 returned; refused,
    ///    `ROLLBACK`. Accepted, one pipeline: placeholders no write replaces are deleted, the
    ///    writes in batch order, each touched counter written once, and `COMMIT`.
    async fn commit_once(
        &self,
        guard: &TxGuard,
        batch: &Batch,
        version: i64,
    ) -> std::result::Result<std::result::Result<u64, Rejected>, tokio_postgres::Error> {
        let client = guard.client();
        let plan = CommitPlan::new(batch);
        let absent_sql = client
            .prepare_cached(
                "INSERT INTO kv_records (key, value, expires_at, version)
                 SELECT k, ''::bytea, NULL, 0 FROM unnest($1::bytea[]) AS k
                 ON CONFLICT (key) DO NOTHING RETURNING key",
            )
            .await?;
        let update_sql = client
            .prepare_cached(
                "SELECT key, version FROM kv_records WHERE key = ANY($1) ORDER BY key FOR UPDATE",
            )
            .await?;
        let share_sql = client
            .prepare_cached(
                "SELECT key, version FROM kv_records WHERE key = ANY($1) ORDER BY key FOR SHARE",
            )
            .await?;
        let counters_sql = client
            .prepare_cached(
                "INSERT INTO kv_counters (key, value) SELECT k, 0 FROM unnest($1::bytea[]) AS k
                 ON CONFLICT (key) DO UPDATE SET value = kv_counters.value RETURNING key, value",
            )
            .await?;
        guard.open.store(true, Ordering::Relaxed);
        let none = || async { Ok(Vec::new()) };
        let (begin, absent, update, share, counters) = tokio::join!(
            client.batch_execute("BEGIN"),
            async {
                if plan.absent.is_empty() {
                    none().await
                } else {
                    client.query(&absent_sql, &[&plan.absent]).await
                }
            },
            async {
                if plan.locked.is_empty() {
                    none().await
                } else {
                    client.query(&update_sql, &[&plan.locked]).await
                }
            },
            async {
                if plan.shared.is_empty() {
                    none().await
                } else {
                    client.query(&share_sql, &[&plan.shared]).await
                }
            },
            async {
                if plan.counters.is_empty() {
                    none().await
                } else {
                    client.query(&counters_sql, &[&plan.counters]).await
                }
            },
        );
        let phase1 = (|| Ok((begin?, absent?, update?, share?, counters?)))();
        let (_, absent, update, share, counters) = match phase1 {
            Ok(rows) => rows,
            Err(e) => {
                client.batch_execute("ROLLBACK").await?;
                guard.open.store(false, Ordering::Relaxed);
                return Err(e);
            }
        };
        let created: HashSet<Vec<u8>> = absent.iter().map(|r| r.get(0)).collect();
        let mut versions: HashMap<Vec<u8>, i64> = HashMap::new();
        for row in update.iter().chain(share.iter()) {
            versions.insert(row.get(0), row.get(1));
        }
        for key in &plan.absent {
            if !created.contains(*key) {
                // Present: its version is not needed, only that it exists.
                versions.insert(key.to_vec(), i64::MAX);
            }
        }
        let view = CommitView {
            versions,
            counters: counters.iter().map(|r| (r.get(0), r.get(1))).collect(),
        };
        let Ok(verdict) = super::batch::first_rejection(&view, batch);
        if let Some(rejected) = verdict {
            client.batch_execute("ROLLBACK").await?;
            guard.open.store(false, Ordering::Relaxed);
            return Ok(Err(rejected));
        }
        let placeholders: Vec<&[u8]> = plan
            .absent
            .iter()
            .filter(|k| created.contains(**k) && !plan.put.contains(**k))
            .copied()
            .collect();
        let (outcome, closed) = apply_batch(client, &view, batch, &placeholders, version).await;
        // The server answered the COMMIT (a transaction with a failed statement answers it with
        // ROLLBACK): the connection is out of the transaction either way.
        if closed {
            guard.open.store(false, Ordering::Relaxed);
        }
        outcome.map(|()| Ok(from_sql_u64(version)))
    }
}

/// Asks a new connection to plan each prepared statement once (`plan_cache_mode =
/// force_generic_plan`). By default PostgreSQL plans a statement's first five runs for their
/// parameters and keeps doing so while that plan looks cheaper than the generic one, and for
/// `key = ANY($1)` (every read, every commit's locking reads) it always does: the statement was
/// planned again on every run, about 80 µs of the database's CPU each (pgbench, the get's
/// statement: 0.22 ms a run, 0.14 ms with the generic plan). The generic plans are the primary
/// key's and the expiry index's, which is what every statement here wants whatever its
/// parameters. A server without the setting (PostgreSQL before 12, older CockroachDB and
/// YugabyteDB releases) refuses it, and the connection goes on with the server's own choice.
async fn prefer_generic_plans(client: &tokio_postgres::Client) {
    if let Err(e) = client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
    {
        tracing::debug!(error = %e, "plan_cache_mode is not offered; the server plans as it likes");
    }
}

/// `url` with any password replaced by `***`, for logs and error messages.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// A little entropy for instance identities without another dependency.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// What one commit reads before deciding: the stored version of every record its checks name,
/// and the value of every counter it checks or changes (absent = not in the map).
struct CommitView {
    versions: HashMap<Vec<u8>, i64>,
    counters: HashMap<Vec<u8>, i64>,
}

impl CommitView {
    fn counter(&self, key: &[u8]) -> i64 {
        self.counters.get(key).copied().unwrap_or(0)
    }
}

/// The keys one commit locks in its first round trip, each list sorted and without repeats (so
/// two commits lock shared rows in the same order), and the keys it puts.
struct CommitPlan<'b> {
    /// Keys checked `Absent`: a placeholder row is inserted for each.
    absent: Vec<&'b [u8]>,
    /// Keys checked `Present` or `AtVersion` that the batch also puts or deletes.
    locked: Vec<&'b [u8]>,
    /// Keys checked `Present` or `AtVersion` and not written by key (shared lock).
    shared: Vec<&'b [u8]>,
    /// Every counter the batch checks, adds to or resets.
    counters: Vec<&'b [u8]>,
    /// Keys the batch puts.
    put: HashSet<&'b [u8]>,
}

impl<'b> CommitPlan<'b> {
    fn new(batch: &'b Batch) -> Self {
        let mut put = HashSet::new();
        let mut written = HashSet::new();
        let mut counters = Vec::new();
        for write in &batch.writes {
            match write {
                Write::Put { key, .. } => {
                    put.insert(key.as_slice());
                    written.insert(key.as_slice());
                }
                Write::Delete { key } => {
                    written.insert(key.as_slice());
                }
                Write::Add { counter, .. } | Write::ResetCounter { counter } => {
                    counters.push(counter.as_slice())
                }
                Write::DeleteRange { .. } => {}
            }
        }
        let (mut absent, mut locked, mut shared) = (Vec::new(), Vec::new(), Vec::new());
        for check in &batch.checks {
            match check {
                Check::Absent(k) => absent.push(k.as_slice()),
                Check::Present(k) | Check::AtVersion(k, _) if written.contains(k.as_slice()) => {
                    locked.push(k.as_slice())
                }
                Check::Present(k) | Check::AtVersion(k, _) => shared.push(k.as_slice()),
                Check::CounterEquals(k, _) => counters.push(k.as_slice()),
            }
        }
        for list in [&mut absent, &mut locked, &mut shared, &mut counters] {
            list.sort_unstable();
            list.dedup();
        }
        // A key checked both ways is judged by its placeholder; lock it once.
        locked.retain(|k| absent.binary_search(k).is_err());
        shared.retain(|k| absent.binary_search(k).is_err() && locked.binary_search(k).is_err());
        CommitPlan {
            absent,
            locked,
            shared,
            counters,
            put,
        }
    }
}

/// A pooled connection that may be inside a transaction this process opened by hand (`BEGIN`
/// pipelined with the first statements). If the commit future is dropped half-way (a client went
/// away), the connection is taken out of the pool and closed, so the server rolls the
/// transaction back and no later user inherits it or its locks.
struct TxGuard {
    client: Option<deadpool_postgres::Object>,
    open: AtomicBool,
}

impl TxGuard {
    fn client(&self) -> &deadpool_postgres::Object {
        // Set in `new`, taken only in `drop`.
        self.client.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for TxGuard {
    fn drop(&mut self) {
        if *self.open.get_mut() {
            if let Some(client) = self.client.take() {
                drop(deadpool_postgres::Object::take(client));
            }
        }
    }
}

/// The batch rules (see `store::batch`) over the rows read under the commit lock: the checks
/// run here rather than in SQL so PostgreSQL judges a batch by the same code as redb and memory.
impl super::batch::BatchView for CommitView {
    type Error = std::convert::Infallible;
    fn record_version(&self, key: &[u8]) -> std::result::Result<Option<u64>, Self::Error> {
        Ok(self.versions.get(key).map(|v| from_sql_u64(*v)))
    }
    fn counter(&self, key: &[u8]) -> std::result::Result<i64, Self::Error> {
        Ok(CommitView::counter(self, key))
    }
}

/// Applies the writes and commits, in one pipeline: placeholders no write replaces are deleted,
/// record writes follow in batch order, then each touched counter is written once (computed here,
/// saturating exactly like redb's, from the values read under its lock: deleted at 0, upserted
/// otherwise; a counter only checked and found at 0 loses the row phase 1 made for it), then
/// `COMMIT`. Returns the first failure in pipeline order, and whether the server answered the
/// `COMMIT` (then the connection is out of the transaction, committed or rolled back).
async fn apply_batch(
    client: &deadpool_postgres::Object,
    view: &CommitView,
    batch: &Batch,
    placeholders: &[&[u8]],
    version: i64,
) -> (std::result::Result<(), tokio_postgres::Error>, bool) {
    let statements = futures_util::future::try_join_all(
        [
            "INSERT INTO kv_records (key, value, expires_at, version) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                expires_at = excluded.expires_at, version = excluded.version",
            "DELETE FROM kv_records WHERE key = $1",
            "DELETE FROM kv_records WHERE key >= $1 AND key < $2",
            "UPDATE kv_counters SET value = $2 WHERE key = $1",
            "DELETE FROM kv_counters WHERE key = $1",
            "DELETE FROM kv_records WHERE key = ANY($1)",
        ]
        .map(|sql| client.prepare_cached(sql)),
    )
    .await;
    let statements = match statements {
        Ok(s) => s,
        Err(e) => {
            // Nothing was sent inside the transaction: end it here.
            let closed = client.batch_execute("ROLLBACK").await.is_ok();
            return (Err(e), closed);
        }
    };
    let [put, delete, delete_range, set_counter, drop_counter, drop_placeholders] =
        <[_; 6]>::try_from(statements).unwrap_or_else(|_| unreachable!());

    let expiries: Vec<Option<i64>> = batch
        .writes
        .iter()
        .map(|w| match w {
            Write::Put { expires_at, .. } => expires_at.map(to_sql_u64),
            _ => None,
        })
        .collect();
    let mut counters: Vec<(&[u8], i64)> = Vec::new();
    for write in &batch.writes {
        let (key, next) = match write {
            Write::Add { counter, delta, .. } => {
                let current = counters
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == counter.as_slice())
                    .map(|(_, v)| *v)
                    .unwrap_or_else(|| view.counter(counter));
                (counter.as_slice(), current.saturating_add(*delta))
            }
            Write::ResetCounter { counter } => (counter.as_slice(), 0),
            _ => continue,
        };
        match counters.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = next,
            None => counters.push((key, next)),
        }
    }
    // Counters phase 1 created at 0 for a check only: drop the row again.
    let checked_zero: Vec<&[u8]> = view
        .counters
        .iter()
        .filter(|(k, v)| **v == 0 && !counters.iter().any(|(c, _)| *c == k.as_slice()))
        .map(|(k, _)| k.as_slice())
        .collect();

    // Parameters are borrowed from these vectors, which outlive the pipeline.
    let values: Vec<&[u8]> = batch
        .writes
        .iter()
        .map(|w| match w {
            Write::Put { value, .. } => value.as_ref(),
            _ => &[][..],
        })
        .collect();
    type Param<'p> = &'p (dyn ToSql + Sync);
    let mut pipeline: Vec<BoxFuture<'_, std::result::Result<u64, tokio_postgres::Error>>> =
        Vec::new();
    if !placeholders.is_empty() {
        let params: [Param; 1] = [&placeholders];
        pipeline.push(Box::pin(client.execute_raw(&drop_placeholders, params)));
    }
    for (i, write) in batch.writes.iter().enumerate() {
        match write {
            Write::Put { key, .. } => {
                let params: [Param; 4] = [key, &values[i], &expiries[i], &version];
                pipeline.push(Box::pin(client.execute_raw(&put, params)));
            }
            Write::Delete { key } => {
                let params: [Param; 1] = [key];
                pipeline.push(Box::pin(client.execute_raw(&delete, params)));
            }
            Write::DeleteRange { start, end } => {
                let params: [Param; 2] = [start, end];
                pipeline.push(Box::pin(client.execute_raw(&delete_range, params)));
            }
            Write::Add { .. } | Write::ResetCounter { .. } => {}
        }
    }
    for (key, value) in &counters {
        if *value == 0 {
            let params: [Param; 1] = [key];
            pipeline.push(Box::pin(client.execute_raw(&drop_counter, params)));
        } else {
            let params: [Param; 2] = [key, value];
            pipeline.push(Box::pin(client.execute_raw(&set_counter, params)));
        }
    }
    for key in &checked_zero {
        let params: [Param; 1] = [key];
        pipeline.push(Box::pin(client.execute_raw(&drop_counter, params)));
    }
    let (results, commit) = tokio::join!(
        futures_util::future::join_all(pipeline),
        client.batch_execute("COMMIT")
    );
    let closed = match &commit {
        Ok(()) => true,
        Err(e) => e.code().is_some(),
    };
    let first_failure = results
        .into_iter()
        .find_map(|r| r.err())
        .map_or(commit, Err);
    (first_failure, closed)
}

fn record_from_row(row: &tokio_postgres::Row, offset: usize) -> Record {
    let value: Vec<u8> = row.get(offset);
    let expires_at: Option<i64> = row.get(offset + 1);
    let version: i64 = row.get(offset + 2);
    Record {
        value: Bytes::from(value),
        expires_at: expires_at.map(from_sql_u64),
        version: from_sql_u64(version),
    }
}

/// Appends `AND key …` conditions for the bounds of `range` to `sql`, binding the keys as the
/// next parameters.
fn push_range<'a>(sql: &mut String, params: &mut Vec<&'a (dyn ToSql + Sync)>, range: &'a KeyRange) {
    for (bound, included, excluded) in [(&range.start, ">=", ">"), (&range.end, "<=", "<")] {
        let (op, key) = match bound {
            Bound::Included(k) => (included, k),
            Bound::Excluded(k) => (excluded, k),
            Bound::Unbounded => continue,
        };
        params.push(key);
        sql.push_str(&format!(" AND key {op} ${}", params.len()));
    }
}

impl Store for PostgresStore {
    fn get_many<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<Option<Record>>>> {
        async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let client = self.client().await?;
            // The shared clock offset comes back with the records, from the same snapshot (one
            // row with NULL record columns when no key is found), so an advance made through any
            // gateway is this gateway's engine time for the very next read. Prepared once per
            // connection: a statement given as text is prepared on every call, a round trip of
            // its own before the one that runs it.
            let statement = client
                .prepare_cached(
                    "SELECT o.value, r.key, r.value, r.expires_at, r.version
                     FROM kv_meta o LEFT JOIN kv_records r ON r.key = ANY($1)
                     WHERE o.name = 'clock_offset'",
                )
                .await
                .map_err(pg_error)?;
            let rows = client.query(&statement, &[&keys]).await.map_err(pg_error)?;
            if let Some(row) = rows.first() {
                self.adopt_offset(row.get(0));
            }
            let found: HashMap<Vec<u8>, Record> = rows
                .iter()
                .filter_map(|row| {
                    let key: Option<Vec<u8>> = row.get(1);
                    Some((key?, record_from_row(row, 2)))
                })
                .collect();
            // A key asked for twice gets its record twice, as from redb.
            Ok(keys
                .iter()
                .map(|k| found.get(k.as_slice()).cloned())
                .collect())
        }
        .boxed()
    }

    fn scan(
        &self,
        range: KeyRange,
        limit: usize,
        reverse: bool,
        now: u64,
    ) -> BoxFuture<'_, Result<Page>> {
        async move {
            let now = to_sql_u64(now);
            // One more than asked, to learn whether more remain, from the same statement.
            let fetch = i64::try_from(limit)
                .unwrap_or(i64::MAX - 1)
                .saturating_add(1);
            let base = self.clock_base();
            let mut sql = format!(
                "SELECT key, value, expires_at, version FROM kv_records
                 WHERE (expires_at IS NULL OR expires_at > GREATEST($1, $2 + {SHARED_OFFSET}))"
            );
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&now, &base];
            push_range(&mut sql, &mut params, &range);
            params.push(&fetch);
            sql.push_str(&format!(
                " ORDER BY key {} LIMIT ${}",
                if reverse { "DESC" } else { "ASC" },
                params.len()
            ));
            let client = self.client().await?;
            // One prepared statement per shape of range (at most 18), kept per connection.
            let statement = client.prepare_cached(&sql).await.map_err(pg_error)?;
            let rows = client.query(&statement, &params).await.map_err(pg_error)?;
            let more = rows.len() > limit;
            Ok(Page {
                records: rows
                    .iter()
                    .take(limit)
                    .map(|row| (row.get::<_, Vec<u8>>(0), record_from_row(row, 1)))
                    .collect(),
                more,
            })
        }
        .boxed()
    }

    fn count(&self, range: KeyRange, now: u64) -> BoxFuture<'_, Result<u64>> {
        async move {
            let now = to_sql_u64(now);
            let base = self.clock_base();
            let mut sql = format!(
                "SELECT count(*) FROM kv_records
                 WHERE (expires_at IS NULL OR expires_at > GREATEST($1, $2 + {SHARED_OFFSET}))"
            );
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&now, &base];
            push_range(&mut sql, &mut params, &range);
            let client = self.client().await?;
            let statement = client.prepare_cached(&sql).await.map_err(pg_error)?;
            let row = client
                .query_one(&statement, &params)
                .await
                .map_err(pg_error)?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        }
        .boxed()
    }

    fn counters<'a>(&'a self, keys: &'a [Key]) -> BoxFuture<'a, Result<Vec<i64>>> {
        async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let client = self.client().await?;
            let statement = client
                .prepare_cached("SELECT key, value FROM kv_counters WHERE key = ANY($1)")
                .await
                .map_err(pg_error)?;
            let rows = client.query(&statement, &[&keys]).await.map_err(pg_error)?;
            let found: HashMap<Vec<u8>, i64> =
                rows.iter().map(|row| (row.get(0), row.get(1))).collect();
            Ok(keys
                .iter()
                .map(|k| found.get(k.as_slice()).copied().unwrap_or(0))
                .collect())
        }
        .boxed()
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, CommitResult> {
        async move {
            let version = self.next_version().await?;
            let guard = TxGuard {
                client: Some(self.client().await?),
                open: AtomicBool::new(false),
            };
            let mut attempt = 0;
            loop {
                match self.commit_once(&guard, &batch, version).await {
                    Ok(outcome) => return Ok(outcome),
                    Err(e) if is_retryable(&e) && attempt < MAX_SERIALIZATION_RETRIES => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(attempt as u64)).await;
                    }
                    Err(e) => return Err(pg_error(e)),
                }
            }
        }
        .boxed()
    }

    fn expired(&self, now: u64, max: usize) -> BoxFuture<'_, Result<Vec<Expired>>> {
        async move {
            let now = to_sql_u64(now);
            let max = i64::try_from(max).unwrap_or(i64::MAX);
            let base = self.clock_base();
            let client = self.client().await?;
            let sql = format!(
                "SELECT key, version, octet_length(value) FROM kv_records
                 WHERE expires_at <= GREATEST($1, $3 + {SHARED_OFFSET})
                 ORDER BY expires_at, key LIMIT $2"
            );
            let statement = client.prepare_cached(&sql).await.map_err(pg_error)?;
            let rows = client
                .query(&statement, &[&now, &max, &base])
                .await
                .map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|row| Expired {
                    key: row.get(0),
                    version: from_sql_u64(row.get(1)),
                    value_len: u64::try_from(row.get::<_, i32>(2)).unwrap_or(0),
                })
                .collect())
        }
        .boxed()
    }

    fn reset(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let mut client = self.client().await?;
            // No batch may interleave with the wipe (a commit that inserted a record before it
            // and moved a counter after it would leave the counters inexact), and commits share
            // no row to wait on: the wipe takes both tables whole. LOCK TABLE is PostgreSQL's
            // (and YugabyteDB's); where it is refused (CockroachDB), the wipe runs without it
            // and is exact only on a quiet database, which is how test suites reset.
            let tx = client.transaction().await.map_err(pg_error)?;
            let locked = tx
                .batch_execute("LOCK TABLE kv_records, kv_counters IN EXCLUSIVE MODE")
                .await;
            let tx = match locked {
                Ok(()) => tx,
                Err(e) => {
                    tracing::debug!(error = %e, "LOCK TABLE refused; resetting without it");
                    tx.rollback().await.map_err(pg_error)?;
                    client.transaction().await.map_err(pg_error)?
                }
            };
            tx.batch_execute("DELETE FROM kv_records; DELETE FROM kv_counters;")
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        }
        .boxed()
    }

    fn stats(&self) -> BoxFuture<'_, Result<StoreStats>> {
        async move {
            let client = self.client().await?;
            let records: i64 = client
                .query_one("SELECT count(*) FROM kv_records", &[])
                .await
                .map_err(pg_error)?
                .get(0);
            // PostgreSQL-specific; other databases simply report 0 bytes.
            let file_bytes = client
                .query_one("SELECT pg_total_relation_size('kv_records')", &[])
                .await
                .ok()
                .and_then(|row| row.try_get::<_, i64>(0).ok())
                .unwrap_or(0);
            Ok(StoreStats {
                records: from_sql_u64(records),
                file_bytes: from_sql_u64(file_bytes),
            })
        }
        .boxed()
    }

    fn try_sweep_lease(&self) -> BoxFuture<'_, Result<bool>> {
        self.try_lease(SWEEPER_LEASE).boxed()
    }

    /// One statement, no transaction around it: the insert either takes the key or finds it
    /// (waiting, on a concurrent uncommitted insert of the same nonce, for that one's outcome).
    fn claim_once(&self, key: Key, expires_at: u64) -> BoxFuture<'_, Result<bool>> {
        async move {
            let version = self.next_version().await?;
            let client = self.client().await?;
            let sql = client
                .prepare_cached(
                    "INSERT INTO kv_records (key, value, expires_at, version)
                     VALUES ($1, ''::bytea, $2, $3) ON CONFLICT (key) DO NOTHING",
                )
                .await
                .map_err(pg_error)?;
            let inserted = client
                .execute(&sql, &[&key, &to_sql_u64(expires_at), &version])
                .await
                .map_err(pg_error)?;
            Ok(inserted == 1)
        }
        .boxed()
    }

    fn advance_shared_clock(
        &self,
        local_offset: i64,
        seconds: u64,
    ) -> BoxFuture<'_, Result<Option<i64>>> {
        async move {
            if self.clock.get().is_none() {
                return Ok(None);
            }
            let client = self.client().await?;
            let seconds = to_sql_u64(seconds).min(Clock::MAX_OFFSET_SECS);
            let statement = client
                .prepare_cached(
                    "UPDATE kv_meta SET value = LEAST(GREATEST(value, 0, $1) + $2, $3)
                     WHERE name = 'clock_offset' RETURNING value",
                )
                .await
                .map_err(pg_error)?;
            let row = client
                .query_one(
                    &statement,
                    &[
                        &crate::clock::clamp_offset(local_offset),
                        &seconds,
                        &Clock::MAX_OFFSET_SECS,
                    ],
                )
                .await
                .map_err(pg_error)?;
            let shared = crate::clock::clamp_offset(row.get(0));
            self.adopt_offset(shared);
            Ok(Some(shared))
        }
        .boxed()
    }

    fn save_clock_offset(&self, offset: i64) -> BoxFuture<'_, Result<()>> {
        async move { self.merge_clock_offset(offset).await.map(|_| ()) }.boxed()
    }

    /// Why there are no checkpoints (the admin API's 501): the database is shared by every
    /// gateway on it, so a restore would move data and engine time under gateways that did not
    /// ask, and their in-memory state (nonces, leases) would no longer match it.
    fn checkpoint_support(&self) -> String {
        "PostgreSQL storage is shared by every gateway on the database: a restore would move \
         data and engine time under the others; use storage = \"memory\" for test suites, or \
         GET /_kvmux/snapshot and POST /_kvmux/snapshot?replace=true"
            .into()
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let _ = self.release_lease(SWEEPER_LEASE).await;
            self.pool.close();
            Ok(())
        }
        .boxed()
    }
}

/// The lease name the engine's sweeper takes, so one gateway sweeps at a time.
pub const SWEEPER_LEASE: &str = "sweeper";

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redacted_url("postgres://kv:s3cret@db:5432/kvmux?sslmode=disable"),
            "postgres://kv:***@db:5432/kvmux?sslmode=disable"
        );
        assert_eq!(
            redacted_url("postgres://kv@db/kvmux"),
            "postgres://kv@db/kvmux"
        );
        assert_eq!(redacted_url("postgresql://db"), "postgresql://db");
        assert_eq!(redacted_url("not a url"), "not a url");
    }
}
