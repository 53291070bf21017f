//! Per-test isolation: a reset of one scope (an account, a dialect, a container) instead of
//! everything, and named checkpoints of the whole state that a test suite returns to.

use super::containers::decode_meta;
use super::*;
use crate::container::ContainerSelector;
use crate::error::Error;
use crate::keys;
use crate::store::{CheckpointError, CheckpointInfo, KeyRange};

/// What a scoped reset removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResetSummary {
    pub containers: u64,
    /// Items those containers held (expired ones not yet swept included).
    pub items: u64,
}

impl Engine {
    /// Deletes every container that one of `selectors` matches (of `account` only, when given),
    /// with its items and the dependents the selector names, and gives their usage back to
    /// their accounts, as [`Engine::delete_container`] does for one. Each container goes in its
    /// own commit: a concurrent writer may land in a container removed a moment later, never in
    /// a half-removed one. Nonces are not account data and stay (only a full reset drops them).
    pub async fn reset_scope(
        &self,
        account: Option<&str>,
        selectors: &[ContainerSelector],
    ) -> Result<ResetSummary> {
        let candidates = self.containers_of(account).await?;
        let mut doomed: Vec<Container> = Vec::new();
        for container in &candidates {
            let Some(selector) = selectors.iter().find(|s| {
                s.scope.matches(&container.scope)
                    && s.name.as_ref().is_none_or(|n| *n == container.name)
            }) else {
                continue;
            };
            doomed.push(container.clone());
            if let Some(prefix) = &selector.dependents_prefix {
                let scope = format!("{prefix}{}", container.id);
                doomed.extend(
                    candidates
                        .iter()
                        .filter(|c| c.account == container.account && c.scope == scope)
                        .cloned(),
                );
            }
        }
        doomed
            .sort_by(|a, b| (&a.account, &a.scope, &a.name).cmp(&(&b.account, &b.scope, &b.name)));
        doomed.dedup_by(|a, b| a.id == b.id);
        let mut summary = ResetSummary::default();
        for container in &doomed {
            if let Some(items) = self.remove_container_at(container).await? {
                summary.containers += 1;
                summary.items += items.max(0) as u64;
            }
        }
        Ok(summary)
    }

    /// Every container record (of one account when given), read from one snapshot.
    async fn containers_of(&self, account: Option<&str>) -> Result<Vec<Container>> {
        let prefix = match account {
            Some(account) => {
                let mut p = vec![keys::CONTAINER];
                p.extend_from_slice(account.as_bytes());
                p.push(0);
                p
            }
            None => vec![keys::CONTAINER],
        };
        let page = self
            .store
            .scan(KeyRange::prefix(&prefix), usize::MAX, false, 0)
            .await?;
        page.records.iter().map(|(_, r)| decode_meta(r)).collect()
    }

    /// Deletes the container stored at exactly `c`'s address (bindings aside: a reset names
    /// storage, not a view of it) if it is still that container; returns the items it held, or
    /// `None` when it was gone already.
    async fn remove_container_at(&self, c: &Container) -> Result<Option<i64>> {
        retry(|| async {
            let current = match self.container_at(&c.account, &c.scope, &c.name).await {
                Ok(found) if found.id == c.id => found,
                Ok(_) | Err(Error::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let usage = self.drop_container(&current).await?;
            Ok(Some(usage.items))
        })
        .await
    }

    /// Saves the whole state under `name` (replacing one of that name) with the engine clock's
    /// offset, so that [`Engine::restore_checkpoint`] can put back TTLs *and* the time they are
    /// judged against.
    pub async fn checkpoint(
        &self,
        name: &str,
    ) -> std::result::Result<CheckpointInfo, CheckpointError> {
        self.store.checkpoint(name, self.clock.offset()).await
    }

    /// Puts the checkpoint `name` back exactly: every record and counter, and the engine clock
    /// as it stood (moved back if it was advanced since: an item live at the checkpoint is live
    /// again, with the same time left). The container cache is emptied, as after a reset: it
    /// may hold containers the checkpoint does not have, or newer versions of its own.
    pub async fn restore_checkpoint(
        &self,
        name: &str,
    ) -> std::result::Result<CheckpointInfo, CheckpointError> {
        let restored = self.store.restore_checkpoint(name).await;
        self.meta_cache.forget_all();
        let info = restored?;
        self.clock.restore_offset(info.clock_offset);
        Ok(info)
    }

    pub async fn list_checkpoints(
        &self,
    ) -> std::result::Result<Vec<CheckpointInfo>, CheckpointError> {
        self.store.list_checkpoints().await
    }

    pub async fn drop_checkpoint(&self, name: &str) -> std::result::Result<(), CheckpointError> {
        self.store.drop_checkpoint(name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::ScopeMatch;
    use crate::container::{ContainerKind, Limits, NewContainer};

    fn new(account: &str, scope: &str, name: &str) -> NewContainer {
        NewContainer {
            account: account.into(),
            scope: scope.into(),
            name: name.into(),
            kind: ContainerKind::Flat,
            attrs: serde_json::Value::Null,
            limits: Limits {
                account_group: scope.into(),
                ..Default::default()
            },
        }
    }

    #[tokio::test]
    async fn a_scoped_reset_removes_only_matching_containers_and_gives_usage_back() {
        let engine = Engine::open_memory(Clock::frozen_at(1_000));
        let a = engine
            .create_container(new("a", "t/1", "ns"))
            .await
            .unwrap();
        let b = engine
            .create_container(new("a", "t/2", "other"))
            .await
            .unwrap();
        let c = engine
            .create_container(new("b", "t/1", "ns"))
            .await
            .unwrap();
        for (container, n) in [(&a, 3), (&b, 2), (&c, 1)] {
            for i in 0..n {
                let key = format!("k{i}");
                engine
                    .put(
                        container,
                        key.as_bytes(),
                        Bytes::from_static(b"v"),
                        None,
                        Precondition::None,
                    )
                    .await
                    .unwrap();
            }
        }
        let selector = ContainerSelector::named(ScopeMatch::Prefix("t/".into()), "ns");
        let summary = engine.reset_scope(Some("a"), &[selector]).await.unwrap();
        assert_eq!(
            summary,
            ResetSummary {
                containers: 1,
                items: 3
            }
        );
        assert!(engine.container("a", "t/1", "ns").await.is_err());
        assert!(engine.container("a", "t/2", "other").await.is_ok());
        assert!(engine.container("b", "t/1", "ns").await.is_ok());
        let (usage, containers) = engine.account_usage("a", "t/1").await.unwrap();
        assert_eq!((usage.items, usage.bytes, containers), (0, 0, 0));
    }

    #[tokio::test]
    async fn a_restore_brings_back_the_clock_and_what_expired_since() {
        let engine = Engine::open_memory(Clock::frozen_at(1_000));
        let c = engine.create_container(new("a", "s", "n")).await.unwrap();
        engine
            .put(
                &c,
                b"k",
                Bytes::from_static(b"v"),
                Some(1_100),
                Precondition::None,
            )
            .await
            .unwrap();
        engine.clock().advance(50);
        let info = engine.checkpoint("before").await.unwrap();
        assert_eq!(info.clock_offset, 50);
        engine.clock().advance(100);
        assert!(engine.get(&c, b"k").await.unwrap().is_none(), "expired");
        engine.delete_container("a", "s", "n").await.unwrap();
        engine.restore_checkpoint("before").await.unwrap();
        assert_eq!(engine.now(), 1_050, "the clock is back where it was");
        let c = engine.container("a", "s", "n").await.unwrap();
        let item = engine.get(&c, b"k").await.unwrap().expect("live again");
        assert_eq!(item.expires_at, Some(1_100));
        assert!(matches!(
            engine.restore_checkpoint("nope").await,
            Err(CheckpointError::NotFound(_))
        ));
    }
}
