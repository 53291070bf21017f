//! The engine: containers and items over a `Store`, with optimistic transactions, exact quotas
//! and expiry. Every write is read, compute, then commit with version checks on what was read; a
//! lost race is retried here, so callers see either their outcome or a real error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::clock::Clock;
use crate::container::{Container, NewContainer, Usage};
use crate::error::{Error, Quota, Result};
use crate::keys;
use crate::meta_cache::MetaCache;
use crate::store::{self, Batch, Check, Key, KeyRange, Record, Rejected, Store, StoreStats, Write};

/// How often a transaction is retried after losing an optimistic race before giving up.
const MAX_ATTEMPTS: usize = 64;
/// How many expired items one sweep step removes.
const SWEEP_CHUNK: usize = 512;

/// A live item as a reader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub key: Vec<u8>,
    pub value: Bytes,
    pub expires_at: Option<u64>,
    pub version: u64,
    /// When the item was last written, engine clock in unix milliseconds (vendors report it, e.g.
    /// Aliyun's `UpdateTime`).
    pub modified_at_ms: u64,
}

/// Bytes the engine keeps in front of every stored item value: the modification time (u64 BE).
/// They are the engine's bookkeeping, so quotas never charge them: a vendor's "1 GB" stays exact.
const ITEM_STAMP_LEN: usize = 8;

/// The stored form of an item value: its modification time, then the value.
fn stamp_item_value(modified_at_ms: u64, value: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(ITEM_STAMP_LEN + value.len());
    out.extend_from_slice(&modified_at_ms.to_be_bytes());
    out.extend_from_slice(value);
    Bytes::from(out)
}

/// Splits a stored item value into (modification time, value) without copying the value. A value
/// too short to carry a stamp (never written by this engine) reads as unstamped.
fn unstamp_item_value(stored: &Bytes) -> (u64, Bytes) {
    match stored.get(..ITEM_STAMP_LEN) {
        Some(stamp) => {
            let mut ms = [0u8; ITEM_STAMP_LEN];
            ms.copy_from_slice(stamp);
            (u64::from_be_bytes(ms), stored.slice(ITEM_STAMP_LEN..))
        }
        None => (0, stored.clone()),
    }
}

/// The user value's length inside a stored item value.
fn unstamped_len(stored_len: usize) -> usize {
    stored_len.saturating_sub(ITEM_STAMP_LEN)
}

impl Item {
    /// Bytes charged against quotas: key plus value.
    pub fn size(&self) -> usize {
        self.key.len() + self.value.len()
    }
}

/// A caller's test of the stored item (None when absent).
pub type ItemPredicate = Arc<dyn Fn(Option<&Item>) -> bool + Send + Sync>;

/// A condition on the item's current (logical) state for a single-item write.
#[derive(Clone, Default)]
pub enum Precondition {
    #[default]
    None,
    /// The item must not exist (or must have expired).
    Absent,
    /// The item must exist.
    Present,
    /// The item must exist with exactly this version.
    Version(u64),
    /// A predicate on the stored item (None when absent), evaluated by the engine on a read that
    /// the commit then checks by version.
    Matches(ItemPredicate),
}

impl std::fmt::Debug for Precondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Precondition::None => f.write_str("None"),
            Precondition::Absent => f.write_str("Absent"),
            Precondition::Present => f.write_str("Present"),
            Precondition::Version(v) => write!(f, "Version({v})"),
            Precondition::Matches(_) => f.write_str("Matches(..)"),
        }
    }
}

impl Precondition {
    fn holds(&self, current: Option<&Item>) -> bool {
        match self {
            Precondition::None => true,
            Precondition::Absent => current.is_none(),
            Precondition::Present => current.is_some(),
            Precondition::Version(v) => current.is_some_and(|i| i.version == *v),
            Precondition::Matches(f) => f(current),
        }
    }
}

/// A range scan over one container's items.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub start: Bound<Vec<u8>>,
    pub end: Bound<Vec<u8>>,
    pub limit: usize,
    pub reverse: bool,
}

impl ScanOptions {
    /// Items whose key starts with `prefix`, strictly after `after` when given.
    pub fn prefix(prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Self {
        let range = KeyRange::prefix(prefix);
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
            _ => range.start,
        };
        ScanOptions {
            start,
            end: range.end,
            limit,
            reverse: false,
        }
    }
}

/// One page of items, from one snapshot.
#[derive(Clone, Debug, Default)]
pub struct ScanPage {
    pub items: Vec<Item>,
    /// True when the range holds more items after the last one returned.
    pub more: bool,
}

impl ScanPage {
    /// An opaque continuation cursor (the last key, hex) when more remain.
    pub fn cursor(&self) -> Option<String> {
        match (self.more, self.items.last()) {
            (true, Some(last)) => Some(encode_cursor(&last.key)),
            _ => None,
        }
    }
}

/// Encodes a resume point as an opaque printable string.
pub fn encode_cursor(key: &[u8]) -> String {
    let mut s = String::with_capacity(key.len() * 2);
    for b in key {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is `Invalid`.
pub fn decode_cursor(cursor: &str) -> Result<Vec<u8>> {
    let bad = || Error::Invalid("malformed cursor".into());
    if !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
        return Err(bad());
    }
    (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

/// A single write inside an `Engine::write_items` call.
#[derive(Clone, Debug)]
pub enum ItemWrite {
    Put {
        key: Vec<u8>,
        value: Bytes,
        expires_at: Option<u64>,
        precondition: Precondition,
    },
    Delete {
        key: Vec<u8>,
        precondition: Precondition,
    },
}

/// The engine. Share it behind an `Arc`.
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Clock,
    /// Container bindings (see [`Engine::bind_containers`]): each member's address maps to the
    /// whole group, in preference order.
    bindings: std::sync::RwLock<HashMap<ContainerAddress, Arc<Vec<ContainerAddress>>>>,
    /// Container records in memory, when this engine is its store's only writer.
    meta_cache: MetaCache,
    /// The byte quota of each account across all its containers, groups and dialects.
    account_byte_limits: std::sync::RwLock<AccountByteLimits>,
    /// Set once the store's per-account byte totals are known to be kept (see
    /// [`Engine::count_account_totals`]); every commit that moves counters waits for it.
    account_totals_ready: tokio::sync::OnceCell<()>,
}

/// See [`Engine::set_account_byte_limit`].
#[derive(Clone, Debug, Default)]
struct AccountByteLimits {
    default: Option<i64>,
    per_account: HashMap<String, i64>,
}

/// The migration that builds the per-account byte totals of a store written before they existed.
const ACCOUNT_TOTALS_MIGRATION: &str = "account-total-bytes";

/// Where a container lives: (account, scope, name).
pub type ContainerAddress = (String, String, String);

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Engine {
            meta_cache: MetaCache::new(store.sole_writer()),
            store,
            clock,
            bindings: Default::default(),
            account_byte_limits: Default::default(),
            account_totals_ready: tokio::sync::OnceCell::new(),
        }
    }

    /// Caps the bytes (keys plus values, as every vendor quota counts them) one account may store
    /// in total, across all its containers, account groups and dialects: a vendor's own quotas are
    /// per namespace or per store, so without this one tenant can create containers until the disk
    /// is full. `per_account` overrides `default` for the accounts it names; `None` with no
    /// override means unlimited. A write that would pass the cap fails with
    /// `QuotaExceeded(Quota::AccountBytes)`, which every dialect maps to its vendor's capacity
    /// error; deletes and shrinking writes are never refused, so an account over a lowered cap
    /// can always free space. The total is a counter kept in the same commit as every write,
    /// delete, sweep and container delete, so the cap is exact. Replaces the previous limits;
    /// lives in memory (the binary sets it from its configuration at every start).
    pub fn set_account_byte_limit(&self, default: Option<i64>, per_account: HashMap<String, i64>) {
        *self
            .account_byte_limits
            .write()
            .unwrap_or_else(|p| p.into_inner()) = AccountByteLimits {
            default,
            per_account,
        };
    }

    /// The byte cap of `account` (see [`Engine::set_account_byte_limit`]), if any.
    pub fn account_byte_limit(&self, account: &str) -> Option<i64> {
        let limits = self
            .account_byte_limits
            .read()
            .unwrap_or_else(|p| p.into_inner());
        limits.per_account.get(account).copied().or(limits.default)
    }

    /// Bytes `account` stores across every container, group and dialect (expired items count
    /// until swept), as checked against [`Engine::set_account_byte_limit`].
    pub async fn account_bytes(&self, account: &str) -> Result<i64> {
        self.ensure_account_totals().await?;
        let c = self
            .store
            .counters(&[keys::account_total_bytes(account)])
            .await?;
        Ok(c.first().copied().unwrap_or(0))
    }

    async fn ensure_account_totals(&self) -> Result<()> {
        self.account_totals_ready
            .get_or_try_init(|| self.count_account_totals())
            .await
            .map(|_| ())
    }

    /// Builds the per-account byte totals once per store, for data written before the engine kept
    /// them: each total is the sum of the account's container byte counters (exact already),
    /// committed with checks that none of those counters moved meanwhile and with a marker
    /// counter, so it runs once however many gateways share the store. Costs one read of every
    /// container record and counter, at the first commit after an upgrade; afterwards one counter
    /// read per process. Every writer of this build waits for it before committing, so a total
    /// can only be off if a gateway of an older build writes to a shared store meanwhile.
    async fn count_account_totals(&self) -> Result<()> {
        let marker = keys::migrated(ACCOUNT_TOTALS_MIGRATION);
        for _ in 0..MAX_ATTEMPTS {
            let done = self.store.counters(std::slice::from_ref(&marker)).await?;
            if done.first().copied().unwrap_or(0) != 0 {
                return Ok(());
            }
            let containers = self.all_containers().await?;
            let byte_keys: Vec<Key> = containers
                .iter()
                .map(|c| keys::container_bytes(c.id))
                .collect();
            let bytes = self.store.counters(&byte_keys).await?;
            let mut checks = vec![Check::CounterEquals(marker.clone(), 0)];
            let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
            for ((c, key), b) in containers.iter().zip(byte_keys).zip(bytes) {
                let total = totals.entry(c.account.as_str()).or_default();
                *total = total.saturating_add(b);
                checks.push(Check::CounterEquals(key, b));
            }
            let mut writes = vec![Write::Add {
                counter: marker.clone(),
                delta: 1,
                limit: None,
            }];
            for (account, total) in totals {
                let counter = keys::account_total_bytes(account);
                writes.push(Write::ResetCounter {
                    counter: counter.clone(),
                });
                writes.push(Write::Add {
                    counter,
                    delta: total,
                    limit: None,
                });
            }
            match self.store.commit(Batch { checks, writes }).await? {
                Ok(_) => {
                    tracing::info!("per-account byte totals counted");
                    return Ok(());
                }
                // A counter moved (or another gateway counted first): look again.
                Err(Rejected::Check(_)) => tokio::task::yield_now().await,
                Err(Rejected::Quota(q)) => return Err(Error::QuotaExceeded(q)),
            }
        }
        Err(Error::Conflict)
    }

    /// Makes several container addresses one container, so that data written through one
    /// vendor's API is read through another's (a Tencent namespace and an Aliyun namespace bound
    /// together, for migrations). Looking up any member finds the first member, in the order
    /// given, that exists; whichever dialect creates it first, the others then see it. Lives in
    /// memory: the binary binds its configured groups at every start.
    pub fn bind_containers(&self, members: Vec<ContainerAddress>) {
        let group = Arc::new(members);
        let mut bindings = self.bindings.write().unwrap_or_else(|p| p.into_inner());
        for member in group.iter() {
            bindings.insert(member.clone(), group.clone());
        }
    }

    /// Opens the embedded redb backend at `path`.
    pub fn open_redb(path: &Path, durable: bool, clock: Clock) -> Result<Self> {
        Ok(Self::new(
            Arc::new(store::redb::RedbStore::open(path, durable)?),
            clock,
        ))
    }

    /// Opens the embedded redb backend at `path` with explicit options (durability, cache).
    pub fn open_redb_with(
        path: &Path,
        options: store::redb::RedbOptions,
        clock: Clock,
    ) -> Result<Self> {
        Ok(Self::new(
            Arc::new(store::redb::RedbStore::open_with(path, options)?),
            clock,
        ))
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Engine time, unix seconds.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Starts an optimistic transaction at the current engine time.
    pub fn begin(&self) -> Txn<'_> {
        Txn::new(self)
    }

    /// Drops all data.
    pub async fn reset(&self) -> Result<()> {
        let result = self.store.reset().await;
        self.meta_cache.forget_all();
        result
    }

    /// Whether the store can write (see [`Store::health`]): Err with a reason while its last
    /// commit failed and none has succeeded since. No I/O, so a health endpoint may call it often.
    pub fn health(&self) -> std::result::Result<(), String> {
        self.store.health()
    }

    pub async fn stats(&self) -> Result<StoreStats> {
        self.store.stats().await
    }

    pub async fn close(&self) -> Result<()> {
        self.store.close().await
    }

    // ---------------------------------------------------------------- containers

    /// Creates a container; `AlreadyExists` if the name is taken in its scope, `QuotaExceeded`
    /// when the account group already has its maximum number of containers.
    pub async fn create_container(&self, new: NewContainer) -> Result<Container> {
        for (what, s) in [
            ("account", &new.account),
            ("scope", &new.scope),
            ("name", &new.name),
        ] {
            if s.as_bytes().contains(&0) {
                return Err(Error::Invalid(format!("{what} contains a NUL byte")));
            }
        }
        let meta_key = keys::container(&new.account, &new.scope, &new.name);
        let now_ms = self.clock.now_millis();
        retry(|| async {
            let mut tx = self.begin();
            if tx.physical(&meta_key).await?.is_some() {
                return Err(Error::AlreadyExists(format!("container {}", new.name)));
            }
            let id = fresh_id();
            let container = Container {
                id,
                account: new.account.clone(),
                scope: new.scope.clone(),
                name: new.name.clone(),
                kind: new.kind.clone(),
                attrs: new.attrs.clone(),
                limits: new.limits.clone(),
                created_at_ms: now_ms,
                modified_at_ms: now_ms,
                meta_version: 0,
            };
            tx.checks.push(Check::Absent(keys::registry(id)));
            tx.raw_put(meta_key.clone(), encode_meta(&container)?, None);
            tx.raw_put(keys::registry(id), Bytes::from(meta_key.clone()), None);
            tx.add(
                keys::account_containers(&new.account, &new.limits.account_group),
                1,
                new.limits
                    .account_max_containers
                    .map(|m| (m, Quota::AccountContainers)),
            );
            let committed = tx.commit().await;
            self.meta_cache.forget(&meta_key);
            Ok(Container {
                meta_version: committed?,
                ..container
            })
        })
        .await
    }

    /// The container `name` in `scope`, or `NotFound`.
    pub async fn container(&self, account: &str, scope: &str, name: &str) -> Result<Container> {
        let group = self
            .bindings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(account.to_string(), scope.to_string(), name.to_string()))
            .cloned();
        let Some(group) = group else {
            return self.container_at(account, scope, name).await;
        };
        for (account, scope, name) in group.iter() {
            match self.container_at(account, scope, name).await {
                Err(Error::NotFound(_)) => continue,
                found => return found,
            }
        }
        Err(Error::NotFound(format!("container {name}")))
    }

    /// The container stored at exactly this address, bindings aside.
    async fn container_at(&self, account: &str, scope: &str, name: &str) -> Result<Container> {
        let key = keys::container(account, scope, name);
        if let Some(cached) = self.meta_cache.get(&key) {
            return Ok(cached);
        }
        let generation = self.meta_cache.generation();
        let records = self.store.get_many(std::slice::from_ref(&key)).await?;
        match records.into_iter().next().flatten() {
            Some(r) => {
                let container = decode_meta(&r)?;
                self.meta_cache.keep(key, &container, generation);
                Ok(container)
            }
            None => Err(Error::NotFound(format!("container {name}"))),
        }
    }

    /// Containers of one scope in name order, strictly after `after`, at most `limit`.
    pub async fn list_containers(
        &self,
        account: &str,
        scope: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Container>, bool)> {
        let prefix = keys::container_scope_prefix(account, scope);
        let mut range = KeyRange::prefix(&prefix);
        if let Some(after) = after {
            let mut k = prefix.clone();
            k.extend_from_slice(after.as_bytes());
            range.start = Bound::Excluded(k);
        }
        let page = self.store.scan(range, limit, false, 0).await?;
        let containers = page
            .records
            .iter()
            .map(|(_, r)| decode_meta(r))
            .collect::<Result<Vec<_>>>()?;
        Ok((containers, page.more))
    }

    /// Every container of every account (for snapshots and the dashboard).
    pub async fn all_containers(&self) -> Result<Vec<Container>> {
        let page = self
            .store
            .scan(KeyRange::prefix(&[keys::CONTAINER]), usize::MAX, false, 0)
            .await?;
        page.records.iter().map(|(_, r)| decode_meta(r)).collect()
    }

    /// Replaces a container's dialect attributes; `NotFound` if it is gone.
    pub async fn update_container_attrs(
        &self,
        account: &str,
        scope: &str,
        name: &str,
        attrs: serde_json::Value,
    ) -> Result<Container> {
        let now_ms = self.clock.now_millis();
        retry(|| async {
            let current = self.container(account, scope, name).await?;
            let mut tx = self.begin();
            let updated = Container {
                attrs: attrs.clone(),
                modified_at_ms: now_ms,
                ..current.clone()
            };
            let meta_key = keys::container(&current.account, &current.scope, &current.name);
            tx.checks
                .push(Check::AtVersion(meta_key.clone(), current.meta_version));
            tx.raw_put(meta_key.clone(), encode_meta(&updated)?, None);
            let committed = tx.commit().await;
            self.meta_cache.forget(&meta_key);
            Ok(Container {
                meta_version: committed?,
                ..updated
            })
        })
        .await
    }

    /// Deletes a container and every item in it, and gives its usage back to the account.
    pub async fn delete_container(
        &self,
        account: &str,
        scope: &str,
        name: &str,
    ) -> Result<Container> {
        retry(|| async {
            let current = self.container(account, scope, name).await?;
            let usage = self.usage(&current).await?;
            let id = current.id;
            let group = &current.limits.account_group;
            let account = current.account.as_str();
            let mut tx = self.begin();
            let meta_key = keys::container(account, &current.scope, &current.name);
            tx.checks
                .push(Check::AtVersion(meta_key.clone(), current.meta_version));
            tx.checks
                .push(Check::CounterEquals(keys::container_bytes(id), usage.bytes));
            tx.checks
                .push(Check::CounterEquals(keys::container_items(id), usage.items));
            tx.writes.push(Write::Delete {
                key: meta_key.clone(),
            });
            tx.writes.push(Write::Delete {
                key: keys::registry(id),
            });
            let items = keys::items_prefix(id);
            tx.writes.push(Write::DeleteRange {
                end: store::prefix_end(&items).unwrap_or_default(),
                start: items,
            });
            tx.writes.push(Write::ResetCounter {
                counter: keys::container_bytes(id),
            });
            tx.writes.push(Write::ResetCounter {
                counter: keys::container_items(id),
            });
            tx.add(keys::account_bytes(account, group), -usage.bytes, None);
            tx.add(keys::account_total_bytes(account), -usage.bytes, None);
            tx.add(keys::account_items(account, group), -usage.items, None);
            tx.add(keys::account_containers(account, group), -1, None);
            let committed = tx.commit().await;
            self.meta_cache.forget(&meta_key);
            committed?;
            Ok(current.clone())
        })
        .await
    }

    /// Bytes and items stored in a container now (expired items count until swept).
    pub async fn usage(&self, container: &Container) -> Result<Usage> {
        let counters = self
            .store
            .counters(&[
                keys::container_bytes(container.id),
                keys::container_items(container.id),
            ])
            .await?;
        Ok(Usage {
            bytes: counters[0],
            items: counters[1],
        })
    }

    /// Bytes, items and containers of an account group.
    pub async fn account_usage(&self, account: &str, group: &str) -> Result<(Usage, i64)> {
        let c = self
            .store
            .counters(&[
                keys::account_bytes(account, group),
                keys::account_items(account, group),
                keys::account_containers(account, group),
            ])
            .await?;
        Ok((
            Usage {
                bytes: c[0],
                items: c[1],
            },
            c[2],
        ))
    }

    // ---------------------------------------------------------------- items

    /// A live item, or None.
    pub async fn get(&self, container: &Container, key: &[u8]) -> Result<Option<Item>> {
        Ok(self
            .get_many(container, &[key.to_vec()])
            .await?
            .into_iter()
            .next()
            .flatten())
    }

    /// Live items in request order, from one snapshot.
    pub async fn get_many(
        &self,
        container: &Container,
        item_keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Item>>> {
        let physical: Vec<Key> = item_keys
            .iter()
            .map(|k| keys::item(container.id, k))
            .collect();
        let now = self.now();
        let records = self.store.get_many(&physical).await?;
        Ok(records
            .into_iter()
            .zip(item_keys)
            .map(|(r, k)| r.and_then(|r| live_item(k, r, now)))
            .collect())
    }

    /// Writes one item if `precondition` holds; returns the new version.
    pub async fn put(
        &self,
        container: &Container,
        key: &[u8],
        value: Bytes,
        expires_at: Option<u64>,
        precondition: Precondition,
    ) -> Result<u64> {
        self.write_items(
            container,
            vec![ItemWrite::Put {
                key: key.to_vec(),
                value,
                expires_at,
                precondition,
            }],
        )
        .await
    }

    /// Deletes items; returns how many were live. Missing keys are not an error.
    pub async fn delete(&self, container: &Container, item_keys: &[Vec<u8>]) -> Result<usize> {
        retry(|| async {
            let mut tx = self.begin();
            let mut live = 0;
            for k in item_keys {
                if tx.delete(container, k).await? {
                    live += 1;
                }
            }
            tx.commit().await?;
            Ok(live)
        })
        .await
    }

    /// Applies several writes to one container atomically: all preconditions hold and all writes
    /// land, or `PreconditionFailed`/`QuotaExceeded` and nothing changes. Returns the version.
    pub async fn write_items(&self, container: &Container, writes: Vec<ItemWrite>) -> Result<u64> {
        retry(|| async {
            let mut tx = self.begin();
            for w in &writes {
                match w {
                    ItemWrite::Put {
                        key,
                        value,
                        expires_at,
                        precondition,
                    } => {
                        let current = tx.get(container, key).await?;
                        if !precondition.holds(current.as_ref()) {
                            return Err(Error::PreconditionFailed(format!("{precondition:?}")));
                        }
                        tx.put(container, key, value.clone(), *expires_at).await?;
                    }
                    ItemWrite::Delete { key, precondition } => {
                        let current = tx.get(container, key).await?;
                        if !precondition.holds(current.as_ref()) {
                            return Err(Error::PreconditionFailed(format!("{precondition:?}")));
                        }
                        tx.delete(container, key).await?;
                    }
                }
            }
            tx.commit().await
        })
        .await
    }

    /// The store range of a container's items that `options` selects.
    fn item_range(container: &Container, options: &ScanOptions) -> KeyRange {
        let map = |b: &Bound<Vec<u8>>| match b {
            Bound::Included(k) => Bound::Included(keys::item(container.id, k)),
            Bound::Excluded(k) => Bound::Excluded(keys::item(container.id, k)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let all = KeyRange::prefix(&keys::items_prefix(container.id));
        let start = match map(&options.start) {
            Bound::Unbounded => all.start,
            b => b,
        };
        let end = match map(&options.end) {
            Bound::Unbounded => all.end,
            b => b,
        };
        KeyRange { start, end }
    }

    /// Live items of a range, in key order (or reverse), from one snapshot.
    pub async fn scan(&self, container: &Container, options: ScanOptions) -> Result<ScanPage> {
        let now = self.now();
        let range = Self::item_range(container, &options);
        let page = self
            .store
            .scan(range, options.limit, options.reverse, now)
            .await?;
        let items = page
            .records
            .into_iter()
            .filter_map(|(k, r)| {
                let (_, item_key) = keys::split_item(&k)?;
                live_item(item_key, r, now)
            })
            .collect();
        Ok(ScanPage {
            items,
            more: page.more,
        })
    }

    /// How many live items the range of `options` holds (its limit and direction are ignored),
    /// without reading their values.
    pub async fn count(&self, container: &Container, options: &ScanOptions) -> Result<u64> {
        let now = self.now();
        self.store
            .count(Self::item_range(container, options), now)
            .await
    }

    // ---------------------------------------------------------------- replay protection

    /// Records that `nonce` was used with `key_id` by `dialect`, for `window_secs`: `Ok(true)`
    /// the first time, `Ok(false)` when it was already used and is still remembered. Kept in the
    /// store, so a nonce is refused once across restarts and across every gateway sharing a
    /// database (the store's `Absent` check decides the race between two gateways).
    ///
    /// The record expires on the engine clock (`now + window_secs`), since that is the clock the
    /// sweeper runs on; moving the engine clock forward through the admin API therefore forgets
    /// nonces early, which only an admin can do. Callers check the signature first, so only
    /// authenticated requests write here, and the key is a fixed-size digest.
    pub async fn first_use_of_nonce(
        &self,
        dialect: &str,
        key_id: &str,
        nonce: &str,
        window_secs: u64,
    ) -> Result<bool> {
        let key = keys::nonce(dialect, key_id, nonce);
        let expires_at = self.now().saturating_add(window_secs.max(1));
        let batch = Batch {
            checks: vec![Check::Absent(key.clone())],
            writes: vec![Write::Put {
                key,
                value: Bytes::new(),
                expires_at: Some(expires_at),
            }],
        };
        match self.store.commit(batch).await? {
            Ok(_) => Ok(true),
            Err(Rejected::Check(_)) => Ok(false),
            Err(Rejected::Quota(q)) => Err(Error::QuotaExceeded(q)),
        }
    }

    // ---------------------------------------------------------------- expiry

    /// Deletes up to `max` expired items through the expiry index and gives their space back to
    /// the quotas. Returns how many were removed.
    pub async fn sweep_expired(&self, max: usize) -> Result<usize> {
        let now = self.now();
        let expired = self.store.expired(now, max).await?;
        let mut removed = 0;
        let mut groups: HashMap<u64, Option<(String, String)>> = HashMap::new();
        for chunk in expired.chunks(SWEEP_CHUNK) {
            let mut tx = self.begin();
            for e in chunk {
                let Some((id, item_key)) = keys::split_item(&e.key) else {
                    // Only items carry expiries today; anything else is dropped as it is.
                    tx.checks.push(Check::AtVersion(e.key.clone(), e.version));
                    tx.writes.push(Write::Delete { key: e.key.clone() });
                    continue;
                };
                if let std::collections::hash_map::Entry::Vacant(slot) = groups.entry(id) {
                    let owner = self.container_by_id(id).await?;
                    slot.insert(owner.map(|c| (c.account, c.limits.account_group)));
                }
                tx.checks.push(Check::AtVersion(e.key.clone(), e.version));
                tx.writes.push(Write::Delete { key: e.key.clone() });
                let value_len = unstamped_len(usize::try_from(e.value_len).unwrap_or(usize::MAX));
                let size = (item_key.len() as i64).saturating_add(value_len as i64);
                tx.add(keys::container_bytes(id), -size, None);
                tx.add(keys::container_items(id), -1, None);
                if let Some(Some((account, group))) = groups.get(&id) {
                    tx.add(keys::account_bytes(account, group), -size, None);
                    tx.add(keys::account_total_bytes(account), -size, None);
                    tx.add(keys::account_items(account, group), -1, None);
                }
            }
            match tx.commit().await {
                Ok(_) => removed += chunk.len(),
                // Someone rewrote one of them meanwhile; the next sweep sees the fresh state.
                Err(Error::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Runs `sweep_expired` every `interval` until the returned handle is aborted.
    pub fn spawn_sweeper(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                // On a shared store only the lease holder sweeps; the others stand by.
                match engine.store.try_sweep_lease().await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "sweeper lease check failed");
                        continue;
                    }
                }
                loop {
                    match engine.sweep_expired(SWEEP_CHUNK * 4).await {
                        Ok(n) if n >= SWEEP_CHUNK * 4 => continue,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "expiry sweep failed");
                            break;
                        }
                    }
                }
            }
        })
    }

    async fn container_by_id(&self, id: u64) -> Result<Option<Container>> {
        let reg = self.store.get_many(&[keys::registry(id)]).await?;
        let Some(meta_key) = reg.into_iter().next().flatten() else {
            return Ok(None);
        };
        let meta = self.store.get_many(&[meta_key.value.to_vec()]).await?;
        meta.into_iter()
            .next()
            .flatten()
            .map(|r| decode_meta(&r))
            .transpose()
    }
}

/// Runs `attempt` (which begins and commits its own `Txn`) until it stops losing optimistic
/// races, i.e. until it returns anything but `Error::Conflict`. When a write is refused for a quota,
/// expired items may still be holding that space; one sweep and one more try make quotas exact
/// with respect to what is live.
pub async fn retry<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    for n in 0..MAX_ATTEMPTS {
        match attempt().await {
            Err(Error::Conflict) => {
                if n > 4 {
                    tokio::task::yield_now().await;
                }
            }
            other => return other,
        }
    }
    Err(Error::Conflict)
}

fn live_item(key: &[u8], record: Record, now: u64) -> Option<Item> {
    if record.expires_at.is_some_and(|exp| exp <= now) {
        return None;
    }
    let (modified_at_ms, value) = unstamp_item_value(&record.value);
    Some(Item {
        key: key.to_vec(),
        value,
        expires_at: record.expires_at,
        version: record.version,
        modified_at_ms,
    })
}

fn encode_meta(c: &Container) -> Result<Bytes> {
    serde_json::to_vec(c)
        .map(Bytes::from)
        .map_err(|e| Error::Internal(format!("encoding container: {e}")))
}

fn decode_meta(r: &Record) -> Result<Container> {
    let mut c: Container = serde_json::from_slice(&r.value)
        .map_err(|e| Error::Internal(format!("corrupt container metadata: {e}")))?;
    c.meta_version = r.version;
    Ok(c)
}

/// A container id that no live or past container is likely to have; the commit checks it.
fn fresh_id() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
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
    checks: Vec<Check>,
    writes: Vec<Write>,
    counters: BTreeMap<Key, (i64, Option<(i64, Quota)>)>,
}

impl<'e> Txn<'e> {
    fn new(engine: &'e Engine) -> Self {
        let now_ms = engine.clock.now_millis();
        Txn {
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

    async fn physical(&mut self, key: &Key) -> Result<Option<Record>> {
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
        Ok(record)
    }

    /// Reads several physical keys in one snapshot, recording what was seen.
    async fn prefetch(&mut self, keys: &[Key]) -> Result<()> {
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
        Ok(())
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
        let physical_key = keys::item(container.id, key);
        let old = self.physical(&physical_key).await?;
        let new_size = (key.len() + value.len()) as i64;
        let old_size = old
            .as_ref()
            .map(|r| (key.len() + unstamped_len(r.value.len())) as i64);
        let value = stamp_item_value(self.now_ms, &value);
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

    fn add(&mut self, counter: Key, delta: i64, limit: Option<(i64, Quota)>) {
        let entry = self.counters.entry(counter).or_insert((0, None));
        entry.0 = entry.0.saturating_add(delta);
        if limit.is_some() {
            entry.1 = limit;
        }
    }

    fn raw_put(&mut self, key: Key, value: Bytes, expires_at: Option<u64>) {
        self.writes.push(Write::Put {
            key,
            value,
            expires_at,
        });
    }

    /// Commits atomically. `Conflict` if anything read changed (the caller retries);
    /// `QuotaExceeded` if a limit would be passed; `NotFound` if a container written to is gone.
    ///
    /// Boxed because a quota refusal sweeps expired items, which commits in turn.
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
                // Expired but unswept items may hold the space; free it so the retry is exact.
                if self.engine.sweep_expired(usize::MAX).await.unwrap_or(0) > 0 {
                    Err(Error::Conflict)
                } else {
                    Err(Error::QuotaExceeded(q))
                }
            }
        }
    }
}

#[allow(dead_code)]
fn _assert_send(e: &Engine, c: &Container) {
    fn is_send<T: Send>(_: T) {}
    is_send(e.put(c, b"k", Bytes::new(), None, Precondition::None));
    is_send(e.delete_container("a", "s", "n"));
    is_send(e.scan(c, ScanOptions::prefix(b"", None, 1)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_stamps_round_trip_without_copying_and_short_values_read_unstamped() {
        let stored = stamp_item_value(1_234, b"hello");
        assert_eq!(stored.len(), ITEM_STAMP_LEN + 5);
        let (ms, value) = unstamp_item_value(&stored);
        assert_eq!((ms, &value[..]), (1_234, &b"hello"[..]));
        let (ms, value) = unstamp_item_value(&Bytes::from_static(b"abc"));
        assert_eq!((ms, &value[..]), (0, &b"abc"[..]));
        assert_eq!(unstamped_len(3), 0);
        assert_eq!(unstamped_len(ITEM_STAMP_LEN + 7), 7);
    }
}
