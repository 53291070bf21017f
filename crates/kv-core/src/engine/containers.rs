//! The container API: create, look up (through bindings), list, update, delete, usage; and the
//! container record encoding.

use std::ops::Bound;

use bytes::Bytes;

use super::*;
use crate::container::{Container, NewContainer, Usage};
use crate::error::{Error, Quota, Result};
use crate::keys;
use crate::store::{self, Check, KeyRange, Record, Write};

impl Engine {
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
    pub(super) async fn container_at(
        &self,
        account: &str,
        scope: &str,
        name: &str,
    ) -> Result<Container> {
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

    pub(super) async fn container_by_id(&self, id: u64) -> Result<Option<Container>> {
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

pub(super) fn encode_meta(c: &Container) -> Result<Bytes> {
    serde_json::to_vec(c)
        .map(Bytes::from)
        .map_err(|e| Error::Internal(format!("encoding container: {e}")))
}

pub(super) fn decode_meta(r: &Record) -> Result<Container> {
    let mut c: Container = serde_json::from_slice(&r.value)
        .map_err(|e| Error::Internal(format!("corrupt container metadata: {e}")))?;
    c.meta_version = r.version;
    Ok(c)
}

/// A container id that no live or past container is likely to have; the commit checks it.
pub(super) fn fresh_id() -> u64 {
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
