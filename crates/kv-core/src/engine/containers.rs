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
        // A bound name is taken once any member of its binding exists: creating it through the
        // second vendor made a hidden duplicate that lookups never reached (the first member in
        // the binding's order wins), and the data became unreachable from one side.
        let requested = (new.account.clone(), new.scope.clone(), new.name.clone());
        if let Some(group) = self.binding_of(&requested) {
            for (account, scope, name) in group.iter() {
                if (account, scope, name) != (&requested.0, &requested.1, &requested.2)
                    && self.container_at(account, scope, name).await.is_ok()
                {
                    return Err(Error::AlreadyExists(format!("container {}", new.name)));
                }
            }
        }
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

    /// The container `name` in `scope`, or `NotFound`. A bound name (see
    /// [`Engine::bind_containers`]) finds the binding's container, seen at the address asked
    /// for: `scope` and `name` are the caller's, so each vendor shows its own name for it (a
    /// Tencent `orders` bound to an Aliyun `orders-esa` is `orders-esa` to Aliyun). Only the
    /// id, attributes, limits and times are the stored container's.
    pub async fn container(&self, account: &str, scope: &str, name: &str) -> Result<Container> {
        let found = self.resolve(account, scope, name).await?;
        Ok(Container {
            account: account.to_string(),
            scope: scope.to_string(),
            name: name.to_string(),
            ..found
        })
    }

    /// The binding group `address` belongs to, if any.
    pub(super) fn binding_of(
        &self,
        address: &ContainerAddress,
    ) -> Option<Arc<Vec<ContainerAddress>>> {
        self.bindings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(address)
            .cloned()
    }

    /// The container a name stands for, at its stored address (through bindings). Updates and
    /// deletes work on this, never on the caller's view of it.
    async fn resolve(&self, account: &str, scope: &str, name: &str) -> Result<Container> {
        let address = (account.to_string(), scope.to_string(), name.to_string());
        let Some(group) = self.binding_of(&address) else {
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

    /// The bound names of `scope` whose container lives at another member's address, seen at
    /// their own address (see [`Engine::container`]), for listings.
    async fn bound_views(&self, account: &str, scope: &str) -> Result<Vec<Container>> {
        let members: Vec<ContainerAddress> = self
            .bindings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|(a, s, _)| a == account && s == scope)
            .cloned()
            .collect();
        let mut views = Vec::new();
        for (account, scope, name) in members {
            if self.container_at(&account, &scope, &name).await.is_ok() {
                continue; // stored here: the scan lists it already
            }
            match self.container(&account, &scope, &name).await {
                Ok(view) => views.push(view),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(views)
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

    /// The container `name` in `scope` and its live items under `item_keys`, read together: a
    /// data read's whole store work, ONE store statement once this engine has seen the
    /// container (see [`Txn::container`] for how a change through another gateway is seen in
    /// that same snapshot).
    pub async fn container_and_items(
        &self,
        account: &str,
        scope: &str,
        name: &str,
        item_keys: &[Vec<u8>],
    ) -> Result<(Container, Vec<Option<Item>>)> {
        let mut tx = self.begin();
        let container = tx
            .container(account, scope, name, |c, plan| {
                for k in item_keys {
                    plan.item(c, k);
                }
            })
            .await?;
        let items = tx.get_many(&container, item_keys).await?;
        Ok((container, items))
    }

    /// Writes one item of the container `name` in `scope` if `precondition` holds, and returns
    /// the new version: [`Engine::put`] without a separate lookup of the container. The
    /// container's record is read in the same statement as the item's current state (see
    /// [`Txn::container`]) and the commit checks that record's version (a shared lock on
    /// PostgreSQL), so a container changed, deleted or recreated through another gateway
    /// meanwhile makes the attempt start again with the record read anew, or `NotFound`.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_at(
        &self,
        account: &str,
        scope: &str,
        name: &str,
        key: &[u8],
        value: Bytes,
        expires_at: Option<u64>,
        precondition: Precondition,
    ) -> Result<u64> {
        retry(|| async {
            let mut tx = self.begin();
            let container = tx
                .container(account, scope, name, |c, plan| plan.item(c, key))
                .await?;
            let current = tx.get(&container, key).await?;
            if !precondition.holds(current.as_ref()) {
                return Err(Error::PreconditionFailed(format!("{precondition:?}")));
            }
            tx.put(&container, key, value.clone(), expires_at).await?;
            tx.commit().await
        })
        .await
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
        let mut containers = page
            .records
            .iter()
            .map(|(_, r)| decode_meta(r))
            .collect::<Result<Vec<_>>>()?;
        let mut more = page.more;
        // Bound names stored under another vendor's address are listed here too, under this
        // scope's name, merged into name order. While the store has more pages, a view past
        // this page's last name waits for the page it belongs to.
        let last = containers.last().map(|c| c.name.clone());
        let mut views = self.bound_views(account, scope).await?;
        views.retain(|v| {
            after.is_none_or(|a| v.name.as_str() > a)
                && (!page.more || last.as_ref().is_some_and(|l| &v.name <= l))
        });
        if !views.is_empty() {
            containers.extend(views);
            containers.sort_by(|a, b| a.name.cmp(&b.name));
            if containers.len() > limit {
                containers.truncate(limit);
                more = true;
            }
        }
        Ok((containers, more))
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
            let current = self.resolve(account, scope, name).await?;
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
            // Answered as seen from the caller's address, like `container`.
            Ok(Container {
                meta_version: committed?,
                account: account.to_string(),
                scope: scope.to_string(),
                name: name.to_string(),
                ..updated
            })
        })
        .await
    }

    /// Sets a container's creation and modification times (unix ms): a snapshot import gives
    /// back what was exported (Tencent's `CreatedOn`/`ModifiedOn`), not the import time.
    pub async fn restore_container_times(
        &self,
        account: &str,
        scope: &str,
        name: &str,
        created_at_ms: u64,
        modified_at_ms: u64,
    ) -> Result<Container> {
        retry(|| async {
            let current = self.resolve(account, scope, name).await?;
            let mut tx = self.begin();
            let updated = Container {
                created_at_ms,
                modified_at_ms,
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
            let current = self.resolve(account, scope, name).await?;
            self.drop_container(&current).await?;
            Ok(current.clone())
        })
        .await
    }

    /// Deletes exactly `current` (as read: its metadata version and counters are checked in the
    /// commit, so a concurrent write makes this a `Conflict` for the caller's `retry`) with every
    /// item in it, and gives its usage back to its account. Returns the usage it held.
    pub(super) async fn drop_container(&self, current: &Container) -> Result<Usage> {
        let usage = self.usage(current).await?;
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
        Ok(usage)
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

#[cfg(test)]
mod binding_tests {
    use super::*;
    use crate::container::ContainerKind;

    fn new(scope: &str, name: &str) -> NewContainer {
        NewContainer {
            account: "dev".into(),
            scope: scope.into(),
            name: name.into(),
            kind: ContainerKind::Flat,
            attrs: serde_json::json!({}),
            limits: Default::default(),
        }
    }

    fn addr(scope: &str, name: &str) -> ContainerAddress {
        ("dev".into(), scope.into(), name.into())
    }

    fn names(list: &[Container]) -> Vec<&str> {
        list.iter().map(|c| c.name.as_str()).collect()
    }

    #[tokio::test]
    async fn a_bound_name_is_seen_under_each_name_and_cannot_be_created_twice() {
        let engine = Engine::open_memory(Clock::frozen_at(1_000));
        engine.bind_containers(vec![addr("tc/z", "orders"), addr("esa", "orders-esa")]);
        engine.create_container(new("esa", "apple")).await.unwrap();
        engine.create_container(new("esa", "zebra")).await.unwrap();
        let stored = engine
            .create_container(new("tc/z", "orders"))
            .await
            .unwrap();

        // The second vendor's create is a duplicate, not a hidden second container.
        assert!(matches!(
            engine.create_container(new("esa", "orders-esa")).await,
            Err(Error::AlreadyExists(_))
        ));
        // Each side sees its own address, and the one container behind it.
        let view = engine.container("dev", "esa", "orders-esa").await.unwrap();
        assert_eq!(
            (view.scope.as_str(), view.name.as_str(), view.id),
            ("esa", "orders-esa", stored.id)
        );
        // Listings include it under this scope's name, in name order, paged.
        let (all, more) = engine
            .list_containers("dev", "esa", None, 10)
            .await
            .unwrap();
        assert_eq!(
            (names(&all), more),
            (vec!["apple", "orders-esa", "zebra"], false)
        );
        let (first, more) = engine.list_containers("dev", "esa", None, 2).await.unwrap();
        assert_eq!((names(&first), more), (vec!["apple", "orders-esa"], true));
        let (rest, more) = engine
            .list_containers("dev", "esa", Some("orders-esa"), 2)
            .await
            .unwrap();
        assert_eq!((names(&rest), more), (vec!["zebra"], false));
        let (tc, _) = engine
            .list_containers("dev", "tc/z", None, 10)
            .await
            .unwrap();
        assert_eq!(names(&tc), vec!["orders"]);

        // An update through the other name keeps the record where it is stored.
        engine
            .update_container_attrs("dev", "esa", "orders-esa", serde_json::json!({"x": 1}))
            .await
            .unwrap();
        let back = engine.container("dev", "tc/z", "orders").await.unwrap();
        assert_eq!(back.attrs, serde_json::json!({"x": 1}));
        // Deleting through either name deletes it for both.
        engine
            .delete_container("dev", "esa", "orders-esa")
            .await
            .unwrap();
        assert!(matches!(
            engine.container("dev", "tc/z", "orders").await,
            Err(Error::NotFound(_))
        ));
        let (all, _) = engine
            .list_containers("dev", "esa", None, 10)
            .await
            .unwrap();
        assert_eq!(names(&all), vec!["apple", "zebra"]);
    }
}

#[cfg(test)]
mod restore_tests {
    use super::*;
    use crate::container::ContainerKind;
    use crate::engine::{ItemWrite, Precondition};

    #[tokio::test]
    async fn restored_times_are_the_given_ones_not_now() {
        let engine = Engine::open_memory(Clock::frozen_at(5_000));
        let c = engine
            .create_container(NewContainer {
                account: "dev".into(),
                scope: "s".into(),
                name: "n".into(),
                kind: ContainerKind::Flat,
                attrs: serde_json::json!({}),
                limits: Default::default(),
            })
            .await
            .unwrap();
        assert_eq!(c.created_at_ms, 5_000_000);
        engine
            .restore_container_times("dev", "s", "n", 1_000_000, 2_000_000)
            .await
            .unwrap();
        let back = engine.container("dev", "s", "n").await.unwrap();
        assert_eq!(
            (back.created_at_ms, back.modified_at_ms),
            (1_000_000, 2_000_000)
        );

        let put = |key: &str| ItemWrite::Put {
            key: key.as_bytes().to_vec(),
            value: Bytes::from_static(b"v"),
            expires_at: None,
            precondition: Precondition::None,
        };
        engine
            .write_items_modified_at(
                &back,
                vec![(put("old"), Some(1_234_000)), (put("new"), None)],
            )
            .await
            .unwrap();
        let old = engine.get(&back, b"old").await.unwrap().unwrap();
        let new = engine.get(&back, b"new").await.unwrap().unwrap();
        assert_eq!(
            (old.modified_at_ms, new.modified_at_ms),
            (1_234_000, 5_000_000)
        );
    }
}
