//! Containers: a Tencent namespace, an Aliyun namespace, a Huawei store or table. The engine only
//! knows their name, scope, kind, free-form attributes and limits; what they mean is the dialect's.

use serde::{Deserialize, Serialize};

/// The account of kvmux's own containers (the Aliyun high-capacity upload staging): no
/// credential names it, and the dashboard does not list it as a tenant.
pub const INTERNAL_ACCOUNT: &str = "_kvmux";

/// Flat containers hold opaque values under byte-string keys; document containers hold BSON
/// documents whose keys are derived from a key schema (see `doc`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerKind {
    Flat,
    Document,
}

/// Quotas that the engine enforces inside the same commit as the write, so they are exact.
/// `None` means unlimited. Account-level limits apply to all containers of one account that share
/// `account_group` (e.g. `"aliyun-esa"`), so ESA and DCDN quotas stay apart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_bytes: Option<i64>,
    pub max_items: Option<i64>,
    pub account_group: String,
    pub account_max_bytes: Option<i64>,
    pub account_max_items: Option<i64>,
    pub account_max_containers: Option<i64>,
}

/// What a dialect asks for when it creates a container.
#[derive(Clone, Debug)]
pub struct NewContainer {
    pub account: String,
    /// Groups containers that are listed together, e.g. `"tencent/zone-1"` or `"huawei/mystore"`.
    pub scope: String,
    pub name: String,
    pub kind: ContainerKind,
    /// Dialect-owned metadata (remark, key schema, indexes ...), kept verbatim.
    pub attrs: serde_json::Value,
    pub limits: Limits,
}

/// A container as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// Internal id; item keys are prefixed with it, so a recreated name never sees old items.
    pub id: u64,
    pub account: String,
    pub scope: String,
    pub name: String,
    pub kind: ContainerKind,
    pub attrs: serde_json::Value,
    pub limits: Limits,
    /// Engine clock, unix milliseconds.
    pub created_at_ms: u64,
    pub modified_at_ms: u64,
    /// The store version of the metadata record, for optimistic updates.
    #[serde(skip)]
    pub meta_version: u64,
}

impl Container {
    /// Whether this is one of kvmux's own containers ([`INTERNAL_ACCOUNT`]), not a tenant's.
    pub fn is_internal(&self) -> bool {
        self.account == INTERNAL_ACCOUNT
    }
}

/// How much a container (or an account group) holds right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub bytes: i64,
    pub items: i64,
}

/// Which engine scopes a [`ContainerSelector`] covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeMatch {
    /// Exactly this scope.
    Exact(String),
    /// Every scope that starts with this (`tencent/` for every zone).
    Prefix(String),
}

impl ScopeMatch {
    pub fn matches(&self, scope: &str) -> bool {
        match self {
            ScopeMatch::Exact(s) => scope == s,
            ScopeMatch::Prefix(p) => scope.starts_with(p.as_str()),
        }
    }
}

/// A set of engine containers that a scoped reset (`POST /_kvmux/reset` with a body) removes,
/// described by the dialect that owns their scopes so the binary never builds scope strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSelector {
    pub scope: ScopeMatch,
    /// Only the container with this engine name; every container of the scope when `None`.
    pub name: Option<String>,
    /// Containers that belong to each selected one and live in scope `<prefix><its id>` (Huawei
    /// keeps a table's secondary indexes so): removed with it.
    pub dependents_prefix: Option<String>,
}

impl ContainerSelector {
    /// Every container of the scopes `scope` matches.
    pub fn all(scope: ScopeMatch) -> Self {
        ContainerSelector {
            scope,
            name: None,
            dependents_prefix: None,
        }
    }

    /// The container `name` in the scopes `scope` matches.
    pub fn named(scope: ScopeMatch, name: impl Into<String>) -> Self {
        ContainerSelector {
            scope,
            name: Some(name.into()),
            dependents_prefix: None,
        }
    }

    pub fn with_dependents(mut self, prefix: impl Into<String>) -> Self {
        self.dependents_prefix = Some(prefix.into());
        self
    }
}
