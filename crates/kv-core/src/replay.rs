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
use std::hash::BuildHasher;
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

/// Signature fingerprint -> (binding fingerprint, owner fingerprint, expiry), bounded and sharded.
pub struct SignatureBindings {
    per_shard: usize,
    fingerprint: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Default)]
struct Shard {
    /// signature fingerprint -> (binding fingerprint, owner fingerprint, expiry in the caller's
    /// clock)
    bound: HashMap<u64, (u64, u64, u64)>,
    /// (expiry, signature fingerprint), in insertion order; expiries are close to monotonic
    /// (timestamps within a freshness window), so expired entries are found at the front.
    order: VecDeque<(u64, u64)>,
}

impl Shard {
    fn forget_oldest(&mut self) {
        if let Some((expiry, old)) = self.order.pop_front() {
            if self.bound.get(&old).is_some_and(|(_, _, e)| *e == expiry) {
                self.bound.remove(&old);
            }
        }
    }
}

impl SignatureBindings {
    const MAX_SHARDS: usize = 64;

    /// A structure remembering about `capacity` signatures at most (each shard holds its share,
    /// rounded up).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shards = capacity.min(Self::MAX_SHARDS);
        SignatureBindings {
            per_shard: capacity.div_ceil(shards),
            fingerprint: RandomState::new(),
            shards: (0..shards).map(|_| Mutex::default()).collect(),
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
        let sig = self.fingerprint.hash_one(signature);
        let value = self.fingerprint.hash_one(binding);
        let who = self.fingerprint.hash_one(owner);
        let index = usize::try_from(sig % self.shards.len() as u64).unwrap_or(0);
        let Some(shard) = self.shards.get(index) else {
            return Binding::First;
        };
        let Ok(mut st) = shard.lock() else {
            return Binding::First;
        };
        while st.order.front().is_some_and(|(expiry, _)| *expiry <= now) {
            st.forget_oldest();
        }
        if let Some((bound, first_owner, expiry)) = st.bound.get_mut(&sig) {
            if *expiry > now {
                if *bound == value {
                    return Binding::Same;
                }
                if *first_owner != who {
                    return Binding::Conflict;
                }
                *bound = value;
                return Binding::Same;
            }
        }
        while st.order.len() >= self.per_shard {
            st.forget_oldest();
        }
        st.bound.insert(sig, (value, who, expires_at));
        st.order.push_back((expires_at, sig));
        Binding::First
    }

    /// How many signatures are remembered.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.bound.len()).unwrap_or(0))
            .sum()
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
}
