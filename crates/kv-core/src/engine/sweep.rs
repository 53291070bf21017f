//! Expiry: the sweep through the expiry index and the background sweeper.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::error::{Error, Result};
use crate::keys;
use crate::store::{Check, Write};

/// How many expired items one sweep step removes.
pub(super) const SWEEP_CHUNK: usize = 512;

impl Engine {
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
}
