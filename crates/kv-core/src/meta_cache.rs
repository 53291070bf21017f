//! Container records kept in memory, so a data request does not read and decode its container's
//! record from the store every time (a read transaction and a JSON decode: about an eighth of a
//! signed get's time on the gateway before this cache).
//!
//! Trusted as it is only for stores that no other process writes
//! ([`crate::store::Store::sole_writer`]): then every change to a container record goes through
//! this engine, which forgets the record when it commits a change. A lookup that raced such a
//! change must not put the old record back: each change bumps a generation, and a record read
//! before the bump is not kept.
//!
//! On a shared store (PostgreSQL) records are remembered too, but never served as they are:
//! [`MetaCache::remembered`] hands one to `Engine::container_and_items`, which reads the
//! container's record again in the same statement as the items and compares versions (unique
//! per write), so another gateway's change is seen in that very snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use crate::container::Container;
use crate::store::Key;

/// Enough for every container of a busy test suite; beyond it the cache starts over rather than
/// grow without bound (an account could create containers without end).
const MAX_ENTRIES: usize = 4096;

pub(crate) struct MetaCache {
    /// This engine is the store's only writer: a remembered record is the stored one.
    trusted: bool,
    generation: AtomicU64,
    entries: RwLock<HashMap<Key, Container>>,
}

impl MetaCache {
    pub(crate) fn new(trusted: bool) -> Self {
        MetaCache {
            trusted,
            generation: AtomicU64::new(0),
            entries: RwLock::default(),
        }
    }

    /// The record under `meta_key`, if cached and this engine is the store's only writer.
    pub(crate) fn get(&self, meta_key: &[u8]) -> Option<Container> {
        if !self.trusted {
            return None;
        }
        self.remembered(meta_key)
    }

    /// The record last read under `meta_key`, trusted or not: on a shared store the caller must
    /// check its version against the store in the statement that uses it.
    pub(crate) fn remembered(&self, meta_key: &[u8]) -> Option<Container> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(meta_key)
            .cloned()
    }

    /// Taken before reading a record from the store; hand it back to [`MetaCache::keep`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps a record read from the store, unless a change was committed since `generation`.
    pub(crate) fn keep(&self, meta_key: Key, container: &Container, generation: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock that `forget` also takes after bumping: a change either bumped
        // before this check (the record is dropped) or removes the entry after this insert.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(meta_key, container.clone());
    }

    /// Called after a change to `meta_key` was committed (or may have been).
    pub(crate) fn forget(&self, meta_key: &[u8]) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(meta_key);
    }

    /// Called after every record may have changed (reset).
    pub(crate) fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{ContainerKind, Limits};

    fn container(id: u64) -> Container {
        Container {
            id,
            account: "a".into(),
            scope: "s".into(),
            name: "n".into(),
            kind: ContainerKind::Flat,
            attrs: serde_json::Value::Null,
            limits: Limits::default(),
            created_at_ms: 0,
            modified_at_ms: 0,
            meta_version: id,
        }
    }

    #[test]
    fn a_record_read_before_a_change_is_not_kept() {
        let cache = MetaCache::new(true);
        let before = cache.generation();
        cache.forget(b"k");
        cache.keep(b"k".to_vec(), &container(1), before);
        assert!(cache.get(b"k").is_none());
        let after = cache.generation();
        cache.keep(b"k".to_vec(), &container(2), after);
        assert_eq!(cache.get(b"k").map(|c| c.id), Some(2));
        cache.forget(b"k");
        assert!(cache.get(b"k").is_none());
    }

    #[test]
    fn untrusted_serves_nothing_but_remembers_and_is_bounded() {
        let off = MetaCache::new(false);
        off.keep(b"k".to_vec(), &container(1), off.generation());
        assert!(off.get(b"k").is_none());
        assert_eq!(off.remembered(b"k").map(|c| c.id), Some(1));
        off.forget(b"k");
        assert!(off.remembered(b"k").is_none());

        let on = MetaCache::new(true);
        for i in 0..=MAX_ENTRIES as u64 {
            on.keep(i.to_be_bytes().to_vec(), &container(i), on.generation());
        }
        assert!(on.entries.read().unwrap().len() <= MAX_ENTRIES);
        let last = (MAX_ENTRIES as u64).to_be_bytes();
        assert_eq!(on.get(&last).map(|c| c.id), Some(MAX_ENTRIES as u64));
        on.forget_all();
        assert!(on.get(&last).is_none());
    }
}
