//! Items: the types a reader and writer sees (item, precondition, scan, cursor) and the item API.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::container::Container;
use crate::error::{Error, Result};
use crate::keys;
use crate::store::{Key, KeyRange, Record};

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
pub(super) const ITEM_STAMP_LEN: usize = 8;

/// The stored form of an item value: its modification time, then the value.
pub(super) fn stamp_item_value(modified_at_ms: u64, value: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(ITEM_STAMP_LEN + value.len());
    out.extend_from_slice(&modified_at_ms.to_be_bytes());
    out.extend_from_slice(value);
    Bytes::from(out)
}

/// Splits a stored item value into (modification time, value) without copying the value. A value
/// too short to carry a stamp (never written by this engine) reads as unstamped.
pub(super) fn unstamp_item_value(stored: &Bytes) -> (u64, Bytes) {
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
pub(super) fn unstamped_len(stored_len: usize) -> usize {
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
    pub(super) fn holds(&self, current: Option<&Item>) -> bool {
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

impl Engine {
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
        let records = self.store.get_many(&physical).await?;
        // After the read: a shared store raises the clock to the shared time in that statement.
        let now = self.now();
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
        let writes = writes.into_iter().map(|w| (w, None)).collect();
        self.write_items_modified_at(container, writes).await
    }

    /// [`Engine::write_items`] where a put may carry its modification time (unix ms) instead of
    /// now: a snapshot import restores what was exported, so Aliyun's `UpdateTime` is not the
    /// import time.
    pub async fn write_items_modified_at(
        &self,
        container: &Container,
        writes: Vec<(ItemWrite, Option<u64>)>,
    ) -> Result<u64> {
        retry(|| async {
            let mut tx = self.begin();
            for (w, modified_at_ms) in &writes {
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
                        match modified_at_ms {
                            Some(ms) => {
                                tx.put_modified_at(container, key, value.clone(), *expires_at, *ms)
                                    .await?
                            }
                            None => tx.put(container, key, value.clone(), *expires_at).await?,
                        }
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
}

pub(super) fn live_item(key: &[u8], record: Record, now: u64) -> Option<Item> {
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
