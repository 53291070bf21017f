//! How the engine lays its model out in the store's one ordered keyspace. Every key starts with
//! one tag byte, so each family is a contiguous range:
//!
//! | tag | key | value |
//! |---|---|---|
//! | `c` | account `\0` scope `\0` name | the container's metadata (JSON) |
//! | `r` | container id (u64 BE) | the container's `c` key (finds a container from an item key) |
//! | `i` | container id (u64 BE) + item key bytes | the item's value |
//! | counters | `qb`/`qn` + id; `qB`/`qN`/`qC` + account `\0` group | bytes, items, containers |
//! | counters | `qT` + account | bytes of the account across every group and dialect |
//! | counters | `qM` + name | 1 once a one-time migration of the store has run |
//! | `o` | SHA-256 of dialect `\0` key id `\0` nonce | empty; expires with the replay window |
//!
//! Names may not contain `\0` (the engine refuses them), which keeps the separators unambiguous
//! and makes a listing of one scope a prefix scan in name order.

use crate::store::Key;

pub(crate) const CONTAINER: u8 = b'c';
pub(crate) const REGISTRY: u8 = b'r';
pub(crate) const ITEM: u8 = b'i';
pub(crate) const NONCE: u8 = b'o';

pub(crate) fn container_scope_prefix(account: &str, scope: &str) -> Key {
    let mut k = Vec::with_capacity(3 + account.len() + scope.len());
    k.push(CONTAINER);
    k.extend_from_slice(account.as_bytes());
    k.push(0);
    k.extend_from_slice(scope.as_bytes());
    k.push(0);
    k
}

pub(crate) fn container(account: &str, scope: &str, name: &str) -> Key {
    let mut k = container_scope_prefix(account, scope);
    k.extend_from_slice(name.as_bytes());
    k
}

pub(crate) fn registry(id: u64) -> Key {
    let mut k = vec![REGISTRY];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(crate) fn items_prefix(id: u64) -> Key {
    let mut k = vec![ITEM];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(crate) fn item(id: u64, key: &[u8]) -> Key {
    let mut k = items_prefix(id);
    k.extend_from_slice(key);
    k
}

/// Splits an item key back into (container id, item key).
pub(crate) fn split_item(key: &[u8]) -> Option<(u64, &[u8])> {
    if key.len() < 9 || key[0] != ITEM {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&key[1..9]);
    Some((u64::from_be_bytes(id), &key[9..]))
}

pub(crate) fn container_bytes(id: u64) -> Key {
    counter_for_id(b'b', id)
}

pub(crate) fn container_items(id: u64) -> Key {
    counter_for_id(b'n', id)
}

fn counter_for_id(kind: u8, id: u64) -> Key {
    let mut k = vec![b'q', kind];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(crate) fn account_bytes(account: &str, group: &str) -> Key {
    counter_for_account(b'B', account, group)
}

pub(crate) fn account_items(account: &str, group: &str) -> Key {
    counter_for_account(b'N', account, group)
}

pub(crate) fn account_containers(account: &str, group: &str) -> Key {
    counter_for_account(b'C', account, group)
}

fn counter_for_account(kind: u8, account: &str, group: &str) -> Key {
    let mut k = vec![b'q', kind];
    k.extend_from_slice(account.as_bytes());
    k.push(0);
    k.extend_from_slice(group.as_bytes());
    k
}

/// Bytes an account stores across all its account groups (so across every dialect): what the
/// engine-wide per-account byte limit is checked against. No separator is needed: the `T` kind
/// byte keeps it apart from the per-group counters.
pub(crate) fn account_total_bytes(account: &str) -> Key {
    let mut k = vec![b'q', b'T'];
    k.extend_from_slice(account.as_bytes());
    k
}

/// A counter that is 1 once the named one-time migration has run on this store. A counter rather
/// than a record, so it never shows in record counts or scans.
pub(crate) fn migrated(name: &str) -> Key {
    let mut k = vec![b'q', b'M'];
    k.extend_from_slice(name.as_bytes());
    k
}

/// A used signature nonce: a fixed-size digest, so the record's size never depends on what a
/// client chose to send.
pub(crate) fn nonce(dialect: &str, key_id: &str, nonce: &str) -> Key {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for part in [dialect, key_id, nonce] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let mut k = Vec::with_capacity(33);
    k.push(NONCE);
    k.extend_from_slice(&hasher.finalize());
    k
}
