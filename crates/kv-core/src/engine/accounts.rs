//! Per-account byte caps (across containers, groups and dialects) and the totals behind them.

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::error::{Error, Result};
use crate::keys;
use crate::store::{Batch, Check, Key, Rejected, Write};

/// See [`Engine::set_account_byte_limit`].
#[derive(Clone, Debug, Default)]
pub(super) struct AccountByteLimits {
    default: Option<i64>,
    per_account: HashMap<String, i64>,
}

/// The migration that builds the per-account byte totals of a store written before they existed.
pub(super) const ACCOUNT_TOTALS_MIGRATION: &str = "account-total-bytes";

impl Engine {
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

    pub(super) async fn ensure_account_totals(&self) -> Result<()> {
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
    pub(super) async fn count_account_totals(&self) -> Result<()> {
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
}
