//! ESA namespaces and values for tools that move data outside the API (`kvmux import|export
//! --format esa-kv-json`): the namespace layout (scope, limits, quota), the name and key rules and
//! the value limit are this dialect's truth, so the binary calls these instead of re-deriving them.
//! A value written here is exactly what `PutKv` would have stored, read back by `GetKv`.

use bytes::Bytes;
use kv_core::{Container, ContainerKind, Engine, NewContainer, Precondition};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::ops::kv::{validate_key, MAX_VALUE};
use crate::ops::namespace::{limits, scope, validate_name, NAMESPACE_QUOTA};
use crate::router::Product;

/// ESA namespaces per account (the quota `CreateKvNamespace` enforces).
pub const ESA_NAMESPACE_QUOTA: i64 = NAMESPACE_QUOTA;
/// The largest value `PutKv` stores, in bytes.
pub const ESA_MAX_VALUE: usize = MAX_VALUE;

/// One account's ESA (not DCDN) namespaces.
pub struct EsaAccount<'a> {
    engine: &'a Engine,
    account: &'a str,
    namespace_capacity: i64,
    account_capacity: i64,
}

impl<'a> EsaAccount<'a> {
    /// `options` is the `[aliyun]` config section: its `namespace_capacity` and
    /// `account_capacity` apply to namespaces created here, as they do to `CreateKvNamespace`.
    pub fn new(engine: &'a Engine, account: &'a str, options: &crate::Options) -> Self {
        EsaAccount {
            engine,
            account,
            namespace_capacity: options.namespace_capacity,
            account_capacity: options.account_capacity,
        }
    }

    /// Checks a namespace name against `CreateKvNamespace`'s rule.
    pub fn check_namespace_name(name: &str) -> ApiResult<()> {
        validate_name(name)
    }

    /// Checks a key and value against `PutKv`'s rules (key rule, 2,000,000-byte value).
    pub fn check_entry(key: &str, value: &[u8]) -> ApiResult<()> {
        validate_key(key)?;
        if value.len() > MAX_VALUE {
            return Err(ApiError::value_too_large("2,000,000"));
        }
        Ok(())
    }

    /// The account's ESA namespaces, by name.
    pub async fn namespaces(&self) -> ApiResult<Vec<Container>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, more) = self
                .engine
                .list_containers(self.account, scope(Product::Esa), after.as_deref(), 1000)
                .await
                .map_err(|e| ApiError::from_engine(Product::Esa, e))?;
            after = page.last().map(|c| c.name.clone());
            all.extend(page);
            if !more || after.is_none() {
                break;
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// The namespace `name`, created as `CreateKvNamespace` creates it when missing (same scope,
    /// limits and 10-namespace quota); the bool says whether it was created.
    pub async fn open_or_create(&self, name: &str) -> ApiResult<(Container, bool)> {
        validate_name(name)?;
        match self
            .engine
            .container(self.account, scope(Product::Esa), name)
            .await
        {
            Ok(c) => return Ok((c, false)),
            Err(kv_core::Error::NotFound(_)) => {}
            Err(e) => return Err(ApiError::from_engine(Product::Esa, e)),
        }
        let id = (uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000_000) as u64;
        let created = self
            .engine
            .create_container(NewContainer {
                account: self.account.to_string(),
                scope: scope(Product::Esa).to_string(),
                name: name.to_string(),
                kind: ContainerKind::Flat,
                attrs: json!({"Description": "", "NamespaceId": id.to_string()}),
                limits: limits(Product::Esa, self.namespace_capacity, self.account_capacity),
            })
            .await
            .map_err(|e| ApiError::from_engine(Product::Esa, e))?;
        Ok((created, true))
    }

    /// Stores `value` under `key` as `PutKv` without an expiry would.
    pub async fn put(&self, namespace: &Container, key: &str, value: Bytes) -> ApiResult<()> {
        Self::check_entry(key, &value)?;
        self.engine
            .put(namespace, key.as_bytes(), value, None, Precondition::None)
            .await
            .map(|_| ())
            .map_err(|e| ApiError::from_engine(Product::Esa, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_core::Clock;

    #[tokio::test]
    async fn namespaces_are_created_in_the_esa_scope_within_the_quota() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open_redb(&dir.path().join("kv.redb"), false, Clock::new()).unwrap();
        let esa = EsaAccount::new(
            &engine,
            "dev",
            &crate::Options {
                namespace_capacity: 1000,
                ..crate::Options::default()
            },
        );
        let (ns, created) = esa.open_or_create("ns-1").await.unwrap();
        assert!(created);
        assert_eq!(ns.scope, "aliyun-esa");
        assert_eq!(ns.limits.max_bytes, Some(1000));
        assert_eq!(ns.limits.account_max_containers, Some(10));
        assert!(!esa.open_or_create("ns-1").await.unwrap().1);
        esa.put(&ns, "k", Bytes::from_static(b"v")).await.unwrap();
        assert_eq!(
            esa.put(&ns, "a b", Bytes::new()).await.unwrap_err().code,
            "InvalidKey.Malformed"
        );
        assert_eq!(
            esa.put(&ns, "k", Bytes::from(vec![0; MAX_VALUE + 1]))
                .await
                .unwrap_err()
                .code,
            ApiError::value_too_large("2,000,000").code
        );
        for i in 2..=10 {
            esa.open_or_create(&format!("ns-{i}")).await.unwrap();
        }
        let e = esa.open_or_create("ns-11").await.unwrap_err();
        assert_eq!(e.code, ApiError::namespace_quota_full().code);
        assert_eq!(esa.namespaces().await.unwrap().len(), 10);
        assert!(EsaAccount::check_namespace_name("a/b").is_err());
    }
}
