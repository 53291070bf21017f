//! Binding a signature to the unsigned parts of the request it was first accepted with.
//!
//! Some vendor protocols sign the body but not every value that decides what runs: Tencent's TC3
//! SDKs sign only `content-type;host`, so the action (`X-TC-Action`) and version travel unsigned,
//! and EdgeKVGet and EdgeKVDelete have the same body shape. A captured signed EdgeKVGet could
//! then be replayed, within the signature's freshness window, as an EdgeKVDelete. Refusing
//! unsigned actions would break every real SDK, so instead a dialect records, per accepted
//! signature, a fingerprint of those unsigned values ([`SignatureBindings::bind`]), and refuses
//! the same signature arriving with different ones. An identical repeat is still accepted: SDKs
//! may legitimately send the same call twice within one second, producing the same signature.
//!
//! The same signature with other values is also accepted from the *owner* that first used it (the
//! dialect passes the client's connection, i.e. its peer address and port): a client that calls
//! EdgeKVGet and then EdgeKVDelete with the same keys within one second sends the same signature
//! twice, legitimately, on its kept-alive connection. A replay comes from whoever captured the
//! request, on a connection of their own.
//!
//! What this does not cover, and why:
//! - Other gateways sharing the same database, and the same gateway after a restart: the
//!   bindings live in this process's memory only. The vendor's own protocol leaves the action
//!   unsigned, and a durable, shared record would cost every call a store write (an fsync with a
//!   durable store) for a protection the vendor itself does not offer.
//! - A client that opens a new connection per call and sends two different actions with the
//!   same body in the same second is refused the second time (its two signatures are equal, so
//!   it cannot be told from a replay); retrying a second later signs anew.
//! - A flood: the structure is capacity-bounded, and past its capacity the oldest bindings are
//!   forgotten first, so a signature older than the flood could be re-bound. Only requests whose
//!   signature verified are recorded, so only a key holder can flood it.
//!
//! Memory: signatures and bindings are kept as 64-bit keyed fingerprints (about 40 bytes an
//! entry with the map and the age queue), in up to 64 shards with a lock each, so that a growing
//! map rehashes a sixty-fourth of the entries under one lock. The fingerprint key is random per
//! process, so collisions cannot be aimed at; an accidental one (odds ~10^-13 per request at a
//! million entries) would refuse one request or accept one re-binding.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;

/// What [`SignatureBindings::bind`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// The signature was not known: it is now bound to these values.
    First,
    /// The signature was already bound to the same values (an identical repeat).
    Same,
    /// The signature was already bound to other values: refuse the request.
    Conflict,
}

/// The memory both structures of this module are made of: 64-bit keyed fingerprints mapped to a
/// value and an expiry, bounded to about `capacity` entries and split into up to 64 shards (a
/// lock, a map and an age queue each), so that a growing map rehashes a sixty-fourth of the
/// entries under one lock. Past its capacity a shard forgets its oldest entries first.
struct Expiring<V> {
    per_shard: usize,
    fingerprint: RandomState,
    shards: Box<[Mutex<Shard<V>>]>,
}

struct Shard<V> {
    /// fingerprint -> (value, expiry in the caller's clock)
    entries: HashMap<u64, (V, u64)>,
    /// (expiry, fingerprint) in insertion order; expiries are close to monotonic (timestamps
    /// within a freshness window), so expired entries are found at the front.
    order: VecDeque<(u64, u64)>,
}

impl<V> Default for Shard<V> {
    fn default() -> Self {
        Shard {
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V> Shard<V> {
    fn forget_oldest(&mut self) {
        if let Some((expiry, old)) = self.order.pop_front() {
            if self.entries.get(&old).is_some_and(|(_, e)| *e == expiry) {
                self.entries.remove(&old);
            }
        }
    }

    /// The value under `fingerprint`, if it has not expired at `now`.
    fn live(&mut self, fingerprint: u64, now: u64) -> Option<&mut V> {
        match self.entries.get_mut(&fingerprint) {
            Some((value, expiry)) if *expiry > now => Some(value),
            _ => None,
        }
    }

    /// Remembers `value` until `expiry`, making room by forgetting the oldest first.
    fn insert(&mut self, fingerprint: u64, value: V, expiry: u64, per_shard: usize) {
        while self.order.len() >= per_shard {
            self.forget_oldest();
        }
        self.entries.insert(fingerprint, (value, expiry));
        self.order.push_back((expiry, fingerprint));
    }
}

impl<V> Expiring<V> {
    const MAX_SHARDS: usize = 64;

    fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shards = capacity.min(Self::MAX_SHARDS);
        Expiring {
            per_shard: capacity.div_ceil(shards),
            fingerprint: RandomState::new(),
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    fn fingerprint(&self, of: impl Hash) -> u64 {
        self.fingerprint.hash_one(of)
    }

    /// Runs `f` on the shard of `fingerprint` after dropping what expired by `now`; `None` when
    /// the shard's lock is poisoned.
    fn with_shard<R>(
        &self,
        fingerprint: u64,
        now: u64,
        f: impl FnOnce(&mut Shard<V>, usize) -> R,
    ) -> Option<R> {
        let index = usize::try_from(fingerprint % self.shards.len() as u64).unwrap_or(0);
        let mut shard = self.shards.get(index)?.lock().ok()?;
        while shard
            .order
            .front()
            .is_some_and(|(expiry, _)| *expiry <= now)
        {
            shard.forget_oldest();
        }
        Some(f(&mut shard, self.per_shard))
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.entries.len()).unwrap_or(0))
            .sum()
    }
}

/// Signature fingerprint -> (binding fingerprint, owner fingerprint), until the signature
/// expires; bounded and sharded.
pub struct SignatureBindings {
    bound: Expiring<(u64, u64)>,
}

impl SignatureBindings {
    /// A structure remembering about `capacity` signatures at most (each shard holds its share,
    /// rounded up).
    pub fn new(capacity: usize) -> Self {
        SignatureBindings {
            bound: Expiring::new(capacity),
        }
    }

    /// Binds `signature` to `binding` (the unsigned values that decide what runs) until
    /// `expires_at`, when the signature itself stops being accepted; `now` is the same clock.
    /// `owner` is who used it (the client's connection): the owner may use its signature with
    /// other values (the binding then follows its latest use), nobody else may.
    /// A poisoned shard lock answers `First`: failing open only loses this extra check, the
    /// signature itself has already been verified.
    pub fn bind(
        &self,
        signature: &[u8],
        binding: &[u8],
        owner: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Binding {
        let sig = self.bound.fingerprint(signature);
        let value = self.bound.fingerprint(binding);
        let who = self.bound.fingerprint(owner);
        self.bound
            .with_shard(sig, now, |shard, per_shard| {
                if let Some((bound, first_owner)) = shard.live(sig, now) {
                    if *bound == value {
                        return Binding::Same;
                    }
                    if *first_owner != who {
                        return Binding::Conflict;
                    }
                    *bound = value;
                    return Binding::Same;
                }
                shard.insert(sig, (value, who), expires_at, per_shard);
                Binding::First
            })
            .unwrap_or(Binding::First)
    }

    /// How many signatures are remembered.
    pub fn len(&self) -> usize {
        self.bound.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Nonces seen within a window, per access key: a fast first check in front of the store's
/// durable record (`Engine::first_use_of_nonce`), which decides. Bounded: past about `capacity`
/// the oldest are forgotten first, so a flood cannot exhaust memory (the store still refuses
/// such a nonce). A nonce is remembered by a keyed fingerprint of (access key, nonce), ~16 bytes
/// instead of two copies of the strings; an accidental collision (odds ~10^-13 per request at a
/// million remembered) would refuse one request as a replay.
pub struct NonceCache {
    seen: Expiring<()>,
}

impl NonceCache {
    pub fn new(capacity: usize) -> Self {
        NonceCache {
            seen: Expiring::new(capacity),
        }
    }

    /// Records `nonce` for `access_key_id` at `now` for `window` seconds; false if it was
    /// already used within its window. A poisoned shard lock answers true (the store decides).
    pub fn first_use(&self, access_key_id: &str, nonce: &str, now: u64, window: u64) -> bool {
        let fingerprint = self.seen.fingerprint((access_key_id, nonce));
        self.seen
            .with_shard(fingerprint, now, |shard, per_shard| {
                if shard.live(fingerprint, now).is_some() {
                    return false;
                }
                shard.insert(fingerprint, (), now.saturating_add(window), per_shard);
                true
            })
            .unwrap_or(true)
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_keeps_its_first_binding_until_it_expires() {
        let b = SignatureBindings::new(100);
        assert_eq!(
            b.bind(b"sig", b"EdgeKVGet", b"c1", 1300, 1000),
            Binding::First
        );
        assert_eq!(
            b.bind(b"sig", b"EdgeKVGet", b"c2", 1300, 1001),
            Binding::Same
        );
        assert_eq!(
            b.bind(b"sig", b"EdgeKVDelete", b"c2", 1300, 1299),
            Binding::Conflict
        );
        assert_eq!(
            b.bind(b"other", b"EdgeKVDelete", b"c2", 1300, 1001),
            Binding::First
        );
        // Past the signature's window the signature itself is refused by the verifier; the
        // binding is forgotten with it.
        assert_eq!(
            b.bind(b"sig", b"EdgeKVDelete", b"c2", 1600, 1300),
            Binding::First
        );
    }

    #[test]
    fn the_first_owner_may_use_its_signature_for_other_values() {
        let b = SignatureBindings::new(100);
        assert_eq!(
            b.bind(b"sig", b"EdgeKVGet", b"c1", 1300, 1000),
            Binding::First
        );
        assert_eq!(
            b.bind(b"sig", b"EdgeKVDelete", b"c1", 1300, 1000),
            Binding::Same
        );
        assert_eq!(
            b.bind(b"sig", b"EdgeKVGet", b"c2", 1300, 1000),
            Binding::Conflict
        );
        assert_eq!(
            b.bind(b"sig", b"EdgeKVDelete", b"c2", 1300, 1000),
            Binding::Same
        );
    }

    #[test]
    fn bindings_are_bounded_and_keep_the_newest() {
        let b = SignatureBindings::new(1000);
        for i in 0..5000u32 {
            assert_eq!(
                b.bind(&i.to_be_bytes(), b"a", b"c", 2000, 1000),
                Binding::First,
                "{i}"
            );
        }
        // 64 shards of 16: at most 1,024 remembered.
        assert!(b.len() <= 1024, "{}", b.len());
        assert!(b.len() >= 900, "{}", b.len());
        for i in 4990..5000u32 {
            assert_eq!(
                b.bind(&i.to_be_bytes(), b"b", b"d", 2000, 1001),
                Binding::Conflict
            );
        }
    }

    const WINDOW: u64 = 900;

    #[test]
    fn nonce_is_refused_within_the_window_and_accepted_after() {
        let c = NonceCache::new(100);
        assert!(c.first_use("ak", "n1", 1000, WINDOW));
        assert!(!c.first_use("ak", "n1", 1000 + WINDOW - 1, WINDOW));
        assert!(c.first_use("other", "n1", 1001, WINDOW));
        assert!(c.first_use("ak", "n1", 1000 + WINDOW + 1, WINDOW));
    }

    #[test]
    fn nonce_cache_is_bounded() {
        let c = NonceCache::new(10);
        for i in 0..100 {
            assert!(c.first_use("ak", &format!("n{i}"), 1000, WINDOW));
        }
        assert!(c.len() <= 10);
        // the newest are still remembered
        assert!(!c.first_use("ak", "n99", 1000, WINDOW));
    }

    #[test]
    fn a_sharded_nonce_cache_stays_near_its_capacity_and_keeps_the_newest() {
        let c = NonceCache::new(1000);
        for i in 0..5000 {
            assert!(c.first_use("ak", &format!("n{i}"), 1000, WINDOW));
        }
        // 64 shards of 16: at most 1,024 remembered.
        assert!(c.len() <= 1024, "{}", c.len());
        assert!(c.len() >= 900, "{}", c.len());
        for i in 4990..5000 {
            assert!(
                !c.first_use("ak", &format!("n{i}"), 1001, WINDOW),
                "n{i} forgotten"
            );
        }
    }
}
