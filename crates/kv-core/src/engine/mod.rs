//! The engine: containers and items over a `Store`, with optimistic transactions, exact quotas
//! and expiry. Every write is read, compute, then commit with version checks on what was read; a
//! lost race is retried here, so callers see either their outcome or a real error.
//!
//! One job a file: `items` (the item types and the item API), `containers` (the container API
//! and its records), `txn` (the optimistic transaction and `retry`), `sweep` (expiry),
//! `accounts` (per-account byte caps and totals), `nonce` (replay protection); this file holds
//! the `Engine` itself and its plumbing.

mod accounts;
mod containers;
mod items;
mod nonce;
mod reset;
mod sweep;
mod txn;

use accounts::AccountByteLimits;
use items::*;
pub use items::{
    decode_cursor, encode_cursor, Item, ItemPredicate, ItemWrite, Precondition, ScanOptions,
    ScanPage,
};
pub use reset::ResetSummary;
pub use txn::{retry, ReadAhead, Txn};

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::clock::Clock;
use crate::container::Container;
use crate::error::Result;
use crate::meta_cache::MetaCache;
use crate::store::{self, Store, StoreStats};

/// How often a transaction is retried after losing an optimistic race before giving up.
const MAX_ATTEMPTS: usize = 64;

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
    /// The engine clock resumes from the offset stored with the data (time never moves back
    /// across a restart) and every later advance is stored too.
    pub fn open_redb(path: &Path, durable: bool, clock: Clock) -> Result<Self> {
        let store = Arc::new(store::redb::RedbStore::open(path, durable)?);
        store::redb::clock::restore_and_keep(&store, &clock)?;
        Ok(Self::new(store, clock))
    }

    /// Opens the embedded redb backend at `path` with explicit options (durability, cache).
    pub fn open_redb_with(
        path: &Path,
        options: store::redb::RedbOptions,
        clock: Clock,
    ) -> Result<Self> {
        let store = Arc::new(store::redb::RedbStore::open_with(path, options)?);
        store::redb::clock::restore_and_keep(&store, &clock)?;
        Ok(Self::new(store, clock))
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

    /// Moves engine time forward by `seconds` and returns the new engine time, or `None` (and
    /// nothing moves) when that would pass [`Clock::MAX_OFFSET_SECS`]. On a store that shares
    /// the clock between gateways (PostgreSQL) the advance is made in the store before this
    /// returns, so the very next request through any gateway runs at the new time.
    pub async fn advance_clock(&self, seconds: u64) -> Result<Option<u64>> {
        let local = self.clock.offset();
        let within = i64::try_from(seconds)
            .ok()
            .and_then(|s| local.checked_add(s))
            .is_some_and(|next| next <= Clock::MAX_OFFSET_SECS);
        if !within {
            return Ok(None);
        }
        match self.store.advance_shared_clock(local, seconds).await? {
            Some(shared) => {
                self.clock.set_offset(shared);
                Ok(Some(self.clock.now()))
            }
            None => Ok(self.clock.try_advance(seconds)),
        }
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
        // The last advance may be newer than the stores' periodic persistence (redb's keeper,
        // PostgreSQL's sync): a graceful stop right after `clock/advance` must not forget it.
        self.store.save_clock_offset(self.clock.offset()).await?;
        self.store.close().await
    }
}

#[allow(dead_code)]
fn _assert_send(e: &Engine, c: &Container) {
    fn is_send<T: Send>(_: T) {}
    is_send(e.put(c, b"k", Bytes::new(), None, Precondition::None));
    is_send(e.delete_container("a", "s", "n"));
    is_send(e.scan(c, ScanOptions::prefix(b"", None, 1)));
}
