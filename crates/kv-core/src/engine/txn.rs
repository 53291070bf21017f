//! The optimistic transaction and the retry loop around it.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;

use super::sweep::SWEEP_CHUNK;
use super::*;
use crate::container::Container;
use crate::error::{Error, Quota, Result};
use crate::keys;
use crate::store::{Batch, Check, Key, Record, Rejected, Write};

/// The most expired items one quota refusal sweeps before its single retry. A refusal runs inside
/// a client's request, so its extra work must not grow with the store: expired items the sweep
/// does not reach are left to the background sweeper, and until it runs they may still hold
/// quota room (the refusal then stands, as it would have a moment before they expired).
pub(super) const QUOTA_SWEEP_MAX: usize = SWEEP_CHUNK * 8;

/// What a quota refusal inside a [`retry`] left for the retry loop: whether this call may still
/// sweep, and whether its sweep freed anything. Kept in a task-local that `retry` scopes around
/// each call, because the refusal travels back through the caller's closure as an ordinary
/// `Error::QuotaExceeded`: the loop learns "sweep freed room, try once more" from here, not from
/// a disguised `Conflict`, and the caller never sees anything but the true error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuotaSweep {
    /// No sweep yet in this `retry` call; the next quota refusal may run one.
    Available,
    /// This call's sweep removed expired items: one more attempt may now fit.
    Freed,
    /// This call's sweep ran (and the retry after it, if any): the next refusal is final.
    Spent,
}

tokio::task_local! {
    static QUOTA_SWEEP: std::cell::Cell<QuotaSweep>;
}

/// Runs `attempt` (which begins and commits its own `Txn`) until it stops losing optimistic
/// races, i.e. until it returns anything but `Error::Conflict` (after `MAX_ATTEMPTS` losses the
/// `Conflict` is returned). A quota refusal is final, with one exception: expired but unswept
/// items may still hold the room, so the first refusal in a call sweeps at most
/// [`QUOTA_SWEEP_MAX`] of them (see `Txn::commit`), and if that removed any, the attempt runs
/// once more; a second refusal is returned as it is. Outside `retry`, a commit's quota refusal
/// sweeps nothing.
pub async fn retry<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    QUOTA_SWEEP
        .scope(std::cell::Cell::new(QuotaSweep::Available), async move {
            for n in 0..MAX_ATTEMPTS {
                match attempt().await {
                    Err(Error::Conflict) => {
                        if n > 4 {
                            tokio::task::yield_now().await;
                        }
                    }
                    Err(Error::QuotaExceeded(q)) => {
                        if QUOTA_SWEEP.with(|s| s.replace(QuotaSweep::Spent)) != QuotaSweep::Freed {
                            return Err(Error::QuotaExceeded(q));
                        }
                    }
                    other => return other,
                }
            }
            Err(Error::Conflict)
        })
        .await
}

/// An optimistic transaction: reads record what they saw, writes are buffered, and `commit`
/// turns both into one `Batch` whose checks make the commit fail with `Conflict` if anything read
/// changed meanwhile. Quota counters are adjusted for every write from what was there before.
pub struct Txn<'e> {
    engine: &'e Engine,
    now: u64,
    /// The same instant in milliseconds, stamped on every item this transaction writes.
    now_ms: u64,
    /// Physical state as this transaction sees it: what it read, overlaid by what it wrote.
    view: HashMap<Key, Option<Record>>,
    /// The first physical version read per key (None = absent), checked at commit.
    observed: BTreeMap<Key, Option<u64>>,
    containers: HashSet<u64>,
    pub(super) checks: Vec<Check>,
    pub(super) writes: Vec<Write>,
    counters: BTreeMap<Key, (i64, Option<(i64, Quota)>)>,
    /// The container cache's generation when this transaction began: a container record read
    /// by it may be kept in the cache unless a change was committed since (see `MetaCache`).
    meta_generation: u64,
}

/// Reads to make in the same store statement as a container's record, planned on the record
/// this engine last saw (see [`Txn::container`]): items of that container, and the records of
/// other containers whose addresses it determines.
#[derive(Debug, Default)]
pub struct ReadAhead {
    keys: Vec<Key>,
}

impl ReadAhead {
    /// The item `key` of `container`.
    pub fn item(&mut self, container: &Container, key: &[u8]) {
        self.keys.push(keys::item(container.id, key));
    }

    /// The record of the container at this address; [`Txn::container`] on it then needs no
    /// statement of its own.
    pub fn container(&mut self, account: &str, scope: &str, name: &str) {
        self.keys.push(keys::container(account, scope, name));
    }
}

impl<'e> Txn<'e> {
    pub(super) fn new(engine: &'e Engine) -> Self {
        let now_ms = engine.clock.now_millis();
        Txn {
            meta_generation: engine.meta_cache.generation(),
            engine,
            now: now_ms / 1000,
            now_ms,
            view: HashMap::new(),
            observed: BTreeMap::new(),
            containers: HashSet::new(),
            checks: Vec::new(),
            writes: Vec::new(),
            counters: BTreeMap::new(),
        }
    }

    /// Engine time this transaction runs at.
    pub fn now(&self) -> u64 {
        self.now
    }

    pub(super) async fn physical(&mut self, key: &Key) -> Result<Option<Record>> {
        if let Some(r) = self.view.get(key) {
            return Ok(r.clone());
        }
        let record = self
            .engine
            .store
            .get_many(std::slice::from_ref(key))
            .await?
            .into_iter()
            .next()
            .flatten();
        self.observed
            .entry(key.clone())
            .or_insert(record.as_ref().map(|r| r.version));
        self.view.insert(key.clone(), record.clone());
        self.catch_up_with_clock();
        Ok(record)
    }

    /// Moves this transaction's time forward to the engine clock's, if a read just raised it: a
    /// shared store (PostgreSQL) reads the shared clock offset in the same statement as the
    /// records, so what the transaction judges live is judged at the time of that read, with an
    /// advance made through any gateway included.
    fn catch_up_with_clock(&mut self) {
        let now_ms = self.engine.clock.now_millis();
        if now_ms / 1000 > self.now {
            self.now_ms = now_ms;
            self.now = now_ms / 1000;
        }
    }

    /// Reads several physical keys in one snapshot, recording what was seen.
    pub(super) async fn prefetch(&mut self, keys: &[Key]) -> Result<()> {
        let missing: Vec<Key> = keys
            .iter()
            .filter(|k| !self.view.contains_key(*k))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let records = self.engine.store.get_many(&missing).await?;
        for (k, r) in missing.into_iter().zip(records) {
            self.observed
                .entry(k.clone())
                .or_insert(r.as_ref().map(|r| r.version));
            self.view.insert(k, r);
        }
        self.catch_up_with_clock();
        Ok(())
    }

    /// Reads `plan`'s keys in one store statement (those this transaction has not read yet), so
    /// that later reads of them ([`Txn::get`], [`Txn::put`], [`Txn::delete`], [`Txn::container`])
    /// need none.
    pub async fn read_ahead(&mut self, plan: ReadAhead) -> Result<()> {
        self.prefetch(&plan.keys).await
    }

    /// The container `name` in `scope` as this transaction sees it, with the reads `ahead` plans
    /// on it made in the same store statement: once this engine has seen the container, a data
    /// request's whole read is ONE statement.
    ///
    /// On a store other processes also write (PostgreSQL), a container record is remembered but
    /// never trusted: it is read again with the planned keys, and its version (unique per write)
    /// compared with the remembered one. A container changed through another gateway is decoded
    /// from that very snapshot, a deleted one is `NotFound`, and one recreated under the same
    /// name (another id) gets its planned reads made again under the new id (one more
    /// statement). The record's version is then checked at commit like any record read, so a
    /// write through this transaction never lands in a container changed or deleted meanwhile.
    /// Seen for the first time, the record is read first and the plan after (two statements).
    /// On a store this engine alone writes (redb, memory) a cached record is exact and is not
    /// read again. Bound names (see [`Engine::bind_containers`]) are resolved as by
    /// [`Engine::container`], then `ahead` is read.
    pub async fn container(
        &mut self,
        account: &str,
        scope: &str,
        name: &str,
        ahead: impl Fn(&Container, &mut ReadAhead),
    ) -> Result<Container> {
        let engine = self.engine;
        let address = (account.to_string(), scope.to_string(), name.to_string());
        let meta_key = keys::container(account, scope, name);
        // Exact without a read of its record: a bound name's container as resolved through its
        // binding, or a record cached by the store's only writer.
        let known = match engine.binding_of(&address) {
            Some(_) => Some(engine.container(account, scope, name).await?),
            None => engine.meta_cache.get(&meta_key),
        };
        if let Some(container) = known {
            let mut plan = ReadAhead::default();
            ahead(&container, &mut plan);
            self.read_ahead(plan).await?;
            return Ok(container);
        }
        let remembered = engine.meta_cache.remembered(&meta_key);
        let mut plan = ReadAhead {
            keys: vec![meta_key.clone()],
        };
        if let Some(r) = &remembered {
            ahead(r, &mut plan);
        }
        self.read_ahead(plan).await?;
        let record = self.view.get(&meta_key).cloned().flatten();
        let container = match (record, remembered) {
            (None, remembered) => {
                if remembered.is_some() {
                    engine.meta_cache.forget(&meta_key);
                }
                return Err(Error::NotFound(format!("container {name}")));
            }
            (Some(r), Some(remembered)) if r.version == remembered.meta_version => remembered,
            (Some(r), remembered) => {
                let fresh = super::containers::decode_meta(&r)?;
                if remembered.is_some() {
                    // Changed through another gateway: remember it as it is now.
                    engine.meta_cache.forget(&meta_key);
                    let now = engine.meta_cache.generation();
                    engine.meta_cache.keep(meta_key, &fresh, now);
                } else {
                    engine
                        .meta_cache
                        .keep(meta_key, &fresh, self.meta_generation);
                }
                fresh
            }
        };
        // Planned on another record (or none): read what the plan on this one adds.
        let mut plan = ReadAhead::default();
        ahead(&container, &mut plan);
        self.read_ahead(plan).await?;
        Ok(container)
    }

    /// The live item, as this transaction sees it.
    pub async fn get(&mut self, container: &Container, key: &[u8]) -> Result<Option<Item>> {
        let record = self.physical(&keys::item(container.id, key)).await?;
        Ok(record.and_then(|r| live_item(key, r, self.now)))
    }

    /// Live items in order, read in one snapshot.
    pub async fn get_many(
        &mut self,
        container: &Container,
        item_keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Item>>> {
        let physical: Vec<Key> = item_keys
            .iter()
            .map(|k| keys::item(container.id, k))
            .collect();
        self.prefetch(&physical).await?;
        Ok(physical
            .iter()
            .zip(item_keys)
            .map(|(p, k)| {
                self.view
                    .get(p)
                    .cloned()
                    .flatten()
                    .and_then(|r| live_item(k, r, self.now))
            })
            .collect())
    }

    /// Buffers a write of one item, charging the size difference to the quotas.
    pub async fn put(
        &mut self,
        container: &Container,
        key: &[u8],
        value: Bytes,
        expires_at: Option<u64>,
    ) -> Result<()> {
        let now_ms = self.now_ms;
        self.put_modified_at(container, key, value, expires_at, now_ms)
            .await
    }

    /// Like [`Txn::put`], with the item's modification time given instead of now: a restore
    /// (snapshot import) gives back the time the export saw (Aliyun's `UpdateTime`).
    pub async fn put_modified_at(
        &mut self,
        container: &Container,
        key: &[u8],
        value: Bytes,
        expires_at: Option<u64>,
        modified_at_ms: u64,
    ) -> Result<()> {
        let physical_key = keys::item(container.id, key);
        let old = self.physical(&physical_key).await?;
        let new_size = (key.len() + value.len()) as i64;
        let old_size = old
            .as_ref()
            .map(|r| (key.len() + unstamped_len(r.value.len())) as i64);
        let value = stamp_item_value(modified_at_ms, &value);
        let bytes_delta = new_size - old_size.unwrap_or(0);
        let items_delta = if old.is_none() { 1 } else { 0 };
        self.charge(container, bytes_delta, items_delta);
        self.view.insert(
            physical_key.clone(),
            Some(Record {
                value: value.clone(),
                expires_at,
                version: u64::MAX,
            }),
        );
        self.writes.push(Write::Put {
            key: physical_key,
            value,
            expires_at,
        });
        Ok(())
    }

    /// Buffers a delete; returns whether a live item was there.
    pub async fn delete(&mut self, container: &Container, key: &[u8]) -> Result<bool> {
        let physical_key = keys::item(container.id, key);
        let Some(old) = self.physical(&physical_key).await? else {
            return Ok(false);
        };
        let live = old.expires_at.is_none_or(|exp| exp > self.now);
        self.charge(
            container,
            -((key.len() + unstamped_len(old.value.len())) as i64),
            -1,
        );
        self.view.insert(physical_key.clone(), None);
        self.writes.push(Write::Delete { key: physical_key });
        Ok(live)
    }

    fn charge(&mut self, c: &Container, bytes: i64, items: i64) {
        self.containers.insert(c.id);
        let l = &c.limits;
        if bytes != 0 {
            self.add(
                keys::container_bytes(c.id),
                bytes,
                l.max_bytes.map(|m| (m, Quota::ContainerBytes)),
            );
            self.add(
                keys::account_bytes(&c.account, &l.account_group),
                bytes,
                l.account_max_bytes.map(|m| (m, Quota::AccountBytes)),
            );
            let cap = self.engine.account_byte_limit(&c.account);
            self.add(
                keys::account_total_bytes(&c.account),
                bytes,
                cap.map(|m| (m, Quota::AccountBytes)),
            );
        }
        if items != 0 {
            self.add(
                keys::container_items(c.id),
                items,
                l.max_items.map(|m| (m, Quota::ContainerItems)),
            );
            self.add(
                keys::account_items(&c.account, &l.account_group),
                items,
                l.account_max_items.map(|m| (m, Quota::AccountItems)),
            );
        }
    }

    pub(super) fn add(&mut self, counter: Key, delta: i64, limit: Option<(i64, Quota)>) {
        let entry = self.counters.entry(counter).or_insert((0, None));
        entry.0 = entry.0.saturating_add(delta);
        if limit.is_some() {
            entry.1 = limit;
        }
    }

    pub(super) fn raw_put(&mut self, key: Key, value: Bytes, expires_at: Option<u64>) {
        self.writes.push(Write::Put {
            key,
            value,
            expires_at,
        });
    }

    /// Commits atomically. `Conflict` if anything read changed (the caller retries);
    /// `QuotaExceeded` if a limit would be passed; `NotFound` if a container written to is gone.
    /// On the first quota refusal inside a [`retry`] call, it first sweeps at most
    /// [`QUOTA_SWEEP_MAX`] expired items and tells `retry` whether that freed any (see
    /// `QuotaSweep`); the error it returns is `QuotaExceeded` either way.
    ///
    /// Boxed because that sweep commits transactions in turn.
    pub fn commit(self) -> futures_util::future::BoxFuture<'e, Result<u64>> {
        use futures_util::FutureExt;
        self.commit_inner().boxed()
    }

    async fn commit_inner(self) -> Result<u64> {
        if self.writes.is_empty() && self.counters.is_empty() {
            return Ok(0);
        }
        if !self.counters.is_empty() {
            // The per-account totals this commit moves must exist before it moves them.
            self.engine.ensure_account_totals().await?;
        }
        let mut checks = self.checks;
        for (k, v) in self.observed {
            checks.push(match v {
                Some(v) => Check::AtVersion(k, v),
                None => Check::Absent(k),
            });
        }
        let container_checks: Vec<Check> = self
            .containers
            .iter()
            .map(|id| Check::Present(keys::registry(*id)))
            .collect();
        checks.extend(container_checks);
        let mut writes = self.writes;
        for (counter, (delta, limit)) in self.counters {
            if delta != 0 {
                writes.push(Write::Add {
                    counter,
                    delta,
                    limit,
                });
            }
        }
        let store = &self.engine.store;
        match store.commit(Batch { checks, writes }).await? {
            Ok(version) => Ok(version),
            Err(Rejected::Check(Check::Present(k))) if k.first() == Some(&keys::REGISTRY) => {
                Err(Error::NotFound("container".into()))
            }
            Err(Rejected::Check(_)) => Err(Error::Conflict),
            Err(Rejected::Quota(q)) => {
                // Expired but unswept items may hold the space: free a bounded number of them,
                // once per `retry` call, and let the loop decide whether to try again.
                let may_sweep = QUOTA_SWEEP
                    .try_with(|s| s.get() == QuotaSweep::Available)
                    .unwrap_or(false);
                if may_sweep {
                    let freed = self
                        .engine
                        .sweep_expired(QUOTA_SWEEP_MAX)
                        .await
                        .unwrap_or(0);
                    let next = if freed > 0 {
                        QuotaSweep::Freed
                    } else {
                        QuotaSweep::Spent
                    };
                    let _ = QUOTA_SWEEP.try_with(|s| s.set(next));
                }
                Err(Error::QuotaExceeded(q))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::QUOTA_SWEEP_MAX;
    use crate::container::{ContainerKind, Limits, NewContainer};
    use crate::store::memory::MemoryStore;
    use crate::{Clock, Engine, Error, ItemWrite, Precondition, Quota};

    fn container(name: &str, limits: Limits) -> NewContainer {
        NewContainer {
            account: "a".into(),
            scope: "test".into(),
            name: name.into(),
            kind: ContainerKind::Flat,
            attrs: serde_json::json!({}),
            limits,
        }
    }

    /// How many expired items the store still holds (none are swept but by the calls below).
    async fn expired_left(engine: &Engine) -> usize {
        engine
            .store()
            .expired(engine.now(), usize::MAX)
            .await
            .unwrap()
            .len()
    }

    /// A refusal used to sweep every expired item in the store inside the refused request
    /// (`sweep_expired(usize::MAX)`) and report the retry as a `Conflict`. Now it sweeps at most
    /// `QUOTA_SWEEP_MAX`, tries once more, and returns the true `QuotaExceeded`.
    #[tokio::test]
    async fn a_quota_refusal_sweeps_a_bounded_number_of_expired_items_elsewhere() {
        let engine = Arc::new(Engine::new(
            Arc::new(MemoryStore::new()),
            Clock::frozen_at(2_000_000_000),
        ));
        let elsewhere = engine
            .create_container(container("elsewhere", Limits::default()))
            .await
            .unwrap();
        let full = engine
            .create_container(container(
                "full",
                Limits {
                    max_items: Some(1),
                    ..Limits::default()
                },
            ))
            .await
            .unwrap();
        let total = QUOTA_SWEEP_MAX + 1_000;
        let expires_at = Some(engine.now() + 1);
        for chunk in (0..total).collect::<Vec<_>>().chunks(1_000) {
            let writes = chunk
                .iter()
                .map(|i| ItemWrite::Put {
                    key: format!("k{i:05}").into_bytes(),
                    value: Bytes::from_static(b"v"),
                    expires_at,
                    precondition: Precondition::None,
                })
                .collect();
            engine.write_items(&elsewhere, writes).await.unwrap();
        }
        engine
            .put(
                &full,
                b"live",
                Bytes::from_static(b"x"),
                None,
                Precondition::None,
            )
            .await
            .unwrap();
        engine.clock().advance(2);
        assert_eq!(expired_left(&engine).await, total);

        let refused = engine
            .put(
                &full,
                b"more",
                Bytes::from_static(b"y"),
                None,
                Precondition::None,
            )
            .await;
        assert_eq!(refused, Err(Error::QuotaExceeded(Quota::ContainerItems)));
        // Exactly one bounded sweep ran: the rest is the background sweeper's.
        assert_eq!(expired_left(&engine).await, total - QUOTA_SWEEP_MAX);
        assert_eq!(
            engine.usage(&elsewhere).await.unwrap().items,
            (total - QUOTA_SWEEP_MAX) as i64
        );

        // The next refusal sweeps its own bounded share, no more.
        let refused = engine
            .put(
                &full,
                b"more",
                Bytes::from_static(b"y"),
                None,
                Precondition::None,
            )
            .await;
        assert_eq!(refused, Err(Error::QuotaExceeded(Quota::ContainerItems)));
        assert_eq!(expired_left(&engine).await, 0);
    }

    /// Outside `retry`, a commit's quota refusal is the plain error and sweeps nothing.
    #[tokio::test]
    async fn a_bare_commit_refused_for_quota_returns_quota_exceeded_and_sweeps_nothing() {
        let engine = Engine::new(
            Arc::new(MemoryStore::new()),
            Clock::frozen_at(2_000_000_000),
        );
        let full = engine
            .create_container(container(
                "full",
                Limits {
                    max_items: Some(1),
                    ..Limits::default()
                },
            ))
            .await
            .unwrap();
        let soon = Some(engine.now() + 1);
        engine
            .put(
                &full,
                b"old",
                Bytes::from_static(b"x"),
                soon,
                Precondition::None,
            )
            .await
            .unwrap();
        engine.clock().advance(2);
        let mut tx = engine.begin();
        tx.put(&full, b"new", Bytes::from_static(b"y"), None)
            .await
            .unwrap();
        assert_eq!(
            tx.commit().await,
            Err(Error::QuotaExceeded(Quota::ContainerItems))
        );
        assert_eq!(expired_left(&engine).await, 1);
        // Through the engine (inside `retry`) the expired item's room is found and used.
        engine
            .put(
                &full,
                b"new",
                Bytes::from_static(b"y"),
                None,
                Precondition::None,
            )
            .await
            .unwrap();
        assert_eq!(engine.usage(&full).await.unwrap().items, 1);
    }
}
