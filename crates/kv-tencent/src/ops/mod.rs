//! The EdgeKV actions, one file per family, and the limits they share. Each action takes the
//! decoded `Params` and returns the fields of its `Response` object (without `RequestId`).

pub mod kv;
pub mod namespace;

use std::sync::Arc;

use kv_core::{Container, ContainerKind, Engine, Limits};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::wire::Params;

/// Bytes a namespace may hold (Tencent: 1 GB, reported as `Capacity`).
pub const NAMESPACE_CAPACITY: i64 = 1 << 30;
/// Largest value, measured on the decoded string (Tencent: 1 MB).
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Key length in characters (Unicode scalar values).
pub const MAX_KEY_CHARS: usize = 512;
/// Keys per EdgeKVGet / EdgeKVDelete.
pub const MAX_BATCH_KEYS: usize = 20;
/// Largest `Limit` of EdgeKVList and DescribeEdgeKVNamespaces.
pub const MAX_PAGE: i64 = 1000;
/// Default `Limit` of EdgeKVList and DescribeEdgeKVNamespaces.
pub const DEFAULT_PAGE: i64 = 20;
/// Shortest expiry, in seconds from now, since the 2026-05-06 rule change.
pub const MIN_TTL_SECS: i64 = 60;
/// Remark length in characters.
pub const MAX_REMARK_CHARS: usize = 256;
/// Namespace name length in characters.
pub const MAX_NAMESPACE_CHARS: usize = 50;

/// The engine's account group for Tencent namespaces (account-level quotas are per vendor).
pub const ACCOUNT_GROUP: &str = "tencent";

/// The `[tencent]` config options. Unknown keys are refused (a typo such as `strict_key` must
/// not pass silently); the binary's config reads this type, so `check-config` names the line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Keys limited to `[A-Za-z0-9_-]`, the rule of the first EdgeKV release (before 2026-06-11).
    pub strict_keys: bool,
    /// Namespaces per account (Tencent does not publish its per-zone limit); None = unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_namespaces: Option<i64>,
    /// Bytes per namespace (key + value bytes of every item), reported as `Capacity`. Tencent's is
    /// 1 GB; a smaller one lets tests reach `LimitExceeded` without writing a gigabyte.
    pub namespace_capacity: i64,
    /// Bind each accepted TC3 signature to the unsigned action, version (and unsigned body) it
    /// was first used with, refusing it with another one from another connection. The real SDKs
    /// sign only `content-type;host`, so without this a captured EdgeKVGet could be replayed as
    /// an EdgeKVDelete of the same keys within the signature window. The price: a client that
    /// sends two different actions with byte-identical bodies in the same second from two
    /// connections (a namespace created by one SDK client and deleted by another within the
    /// second) gets the second refused. Unset: on (the binary makes it on beyond loopback,
    /// where traffic can be captured, and off on loopback, where only the machine's root can).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_unsigned_action: Option<bool>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            strict_keys: false,
            max_namespaces: None,
            namespace_capacity: NAMESPACE_CAPACITY,
            bind_unsigned_action: None,
        }
    }
}

impl kv_dialect::DialectOptions for Options {
    const SECTION: &'static str = "tencent";

    /// The rules serde cannot state (sizes are positive): the offending key and why.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.namespace_capacity <= 0 {
            return Err((
                "namespace_capacity",
                format!(
                    "[tencent] namespace_capacity must be positive, got {}",
                    self.namespace_capacity
                ),
            ));
        }
        if self.max_namespaces.is_some_and(|n| n < 0) {
            return Err((
                "max_namespaces",
                "[tencent] max_namespaces must not be negative".into(),
            ));
        }
        Ok(())
    }
}

impl Options {
    /// Whether TC3 signatures are bound to their unsigned action (see the field).
    pub fn binds_unsigned_action(&self) -> bool {
        self.bind_unsigned_action.unwrap_or(true)
    }
}

/// What an action runs with.
pub struct Ctx<'a> {
    pub engine: &'a Arc<Engine>,
    pub account: &'a str,
    pub options: &'a Options,
}

impl Ctx<'_> {
    /// The engine scope of a zone: namespaces are unique per (account, ZoneId).
    pub fn scope(zone: &str) -> String {
        format!("tencent/{zone}")
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_bytes: Some(self.options.namespace_capacity),
            account_group: ACCOUNT_GROUP.to_string(),
            account_max_containers: self.options.max_namespaces,
            ..Default::default()
        }
    }

    pub fn kind() -> ContainerKind {
        ContainerKind::Flat
    }

    /// The namespace, or `ResourceUnavailable.NamespaceNotFound`.
    pub async fn namespace(&self, zone: &str, name: &str) -> Result<Container, ApiError> {
        self.engine
            .container(self.account, &Self::scope(zone), name)
            .await
            .map_err(|e| ApiError::from_engine(e, name))
    }
}

/// `ZoneId`: required by every action, any non-empty value accepted.
pub fn zone_id(params: &Params) -> Result<String, ApiError> {
    let zone = params.req_str("ZoneId")?;
    check_zone_id(&zone)?;
    Ok(zone)
}

/// The rule for a ZoneId wherever it comes from (a parameter, or the runtime route's path): any
/// non-empty value without control characters.
pub fn check_zone_id(zone: &str) -> Result<(), ApiError> {
    if zone.is_empty() {
        return Err(ApiError::bad_value("ZoneId", "it must not be empty"));
    }
    if zone.chars().any(char::is_control) {
        return Err(ApiError::bad_value(
            "ZoneId",
            "it contains control characters",
        ));
    }
    Ok(())
}

/// `Namespace` as a reference to an existing namespace (names are checked only on create, so a
/// bad name simply does not exist).
pub fn namespace_ref(params: &Params) -> Result<String, ApiError> {
    let name = params.req_str("Namespace")?;
    if name.is_empty() {
        return Err(ApiError::bad_value("Namespace", "it must not be empty"));
    }
    Ok(name)
}

/// Namespace names: 1–50 characters of `[A-Za-z0-9-]`; `-` may not start or end the name nor
/// appear twice in a row.
pub fn valid_namespace_name(name: &str) -> bool {
    let len = name.chars().count();
    (1..=MAX_NAMESPACE_CHARS).contains(&len)
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// A key: 1–512 characters; with `strict_keys`, only `[A-Za-z0-9_-]`.
pub fn check_key(field: &str, key: &str, options: &Options) -> Result<(), ApiError> {
    let len = key.chars().count();
    if len == 0 {
        return Err(ApiError::bad_value(field, "a key must not be empty"));
    }
    if len > MAX_KEY_CHARS {
        return Err(ApiError::bad_value(
            field,
            format!("a key is at most {MAX_KEY_CHARS} characters, this one has {len}"),
        ));
    }
    if options.strict_keys
        && !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::bad_value(
            field,
            "a key may only contain letters, digits, `-` and `_`",
        ));
    }
    Ok(())
}

/// `Keys` of Get and Delete: 1–20 valid keys.
pub fn batch_keys(params: &Params, options: &Options) -> Result<Vec<String>, ApiError> {
    let keys = params.req_str_list("Keys")?;
    if keys.is_empty() {
        return Err(ApiError::bad_value("Keys", "at least one key is required"));
    }
    if keys.len() > MAX_BATCH_KEYS {
        return Err(ApiError::keys_too_many(MAX_BATCH_KEYS, keys.len()));
    }
    for (i, key) in keys.iter().enumerate() {
        check_key(&format!("Keys.{i}"), key, options)?;
    }
    Ok(keys)
}

/// `Limit` of the two listing actions: 1–1000, default 20.
pub fn page_limit(params: &Params) -> Result<usize, ApiError> {
    let limit = params.opt_i64("Limit")?.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_value(
            "Limit",
            format!("it must be between 1 and {MAX_PAGE}"),
        ));
    }
    Ok(usize::try_from(limit).unwrap_or(DEFAULT_PAGE as usize))
}

/// `Remark`: at most 256 characters.
pub fn remark(params: &Params) -> Result<Option<String>, ApiError> {
    let remark = params.opt_str("Remark")?;
    if let Some(r) = &remark {
        if r.chars().count() > MAX_REMARK_CHARS {
            return Err(ApiError::remark_too_long(MAX_REMARK_CHARS));
        }
    }
    Ok(remark)
}

/// The largest reply body, envelope included: Tencent caps responses at 50 MB
/// (`ResponseSizeLimitExceeded`, spec §9). Read as 50,000,000 bytes, the smaller meaning of
/// "50 MB", so kvmux never sends a reply the vendor would refuse. It bounds EdgeKVGet, the one
/// action whose reply grows with stored data: twenty 1 MB values of control characters escape
/// to about 126 MB of JSON.
pub const MAX_REPLY_BYTES: usize = 50_000_000;

/// What an action answers: the fields of its `Response` object, without `RequestId`.
pub enum Reply {
    Fields(Map<String, Value>),
    /// EdgeKVGet's `Data`, serialised straight from the stored values (no intermediate `Value`).
    Get(kv::GetReply),
}

impl From<Map<String, Value>> for Reply {
    fn from(fields: Map<String, Value>) -> Self {
        Reply::Fields(fields)
    }
}

impl serde::Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reply::Fields(fields) => fields.serialize(s),
            Reply::Get(get) => get.serialize(s),
        }
    }
}

/// A response with no fields but `RequestId`.
pub fn empty() -> Map<String, Value> {
    Map::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::codes;
    use kv_dialect::DialectOptions;

    #[test]
    fn namespace_name_rules() {
        for ok in ["a", "ns-011", "A1-b2-C3", &"x".repeat(50)] {
            assert!(valid_namespace_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-",
            "-a",
            "a-",
            "a--b",
            "a_b",
            "a.b",
            "命名",
            &"x".repeat(51),
        ] {
            assert!(!valid_namespace_name(bad), "{bad}");
        }
    }

    #[test]
    fn key_rules_count_characters_not_bytes() {
        let utf8 = Options::default();
        let strict = Options {
            strict_keys: true,
            ..Default::default()
        };
        assert!(check_key("Key", &"键".repeat(512), &utf8).is_ok());
        assert_eq!(
            check_key("Key", &"键".repeat(513), &utf8).unwrap_err().code,
            codes::INVALID_PARAMETER_VALUE
        );
        assert!(check_key("Key", "", &utf8).is_err());
        assert!(check_key("Key", "a b/c", &utf8).is_ok());
        assert!(check_key("Key", "a b/c", &strict).is_err());
        assert!(check_key("Key", "A-z_09", &strict).is_ok());
    }

    #[test]
    fn options_parse_from_config_json_and_refuse_typos_and_bad_sizes() {
        let o = Options::from_json(
            &serde_json::json!({"strict_keys": true, "max_namespaces": 3, "namespace_capacity": 100}),
        )
        .expect("valid");
        assert!(o.strict_keys);
        assert_eq!(o.max_namespaces, Some(3));
        assert_eq!(o.namespace_capacity, 100);
        assert!(o.binds_unsigned_action(), "on unless said otherwise");
        let err = Options::from_json(&serde_json::json!({"namespace_capacity": 0})).unwrap_err();
        assert!(err.contains("namespace_capacity"), "{err}");
        let err = Options::from_json(&serde_json::json!({"strict_key": true})).unwrap_err();
        assert!(err.contains("unknown field `strict_key`"), "{err}");
        let err = Options::from_json(&serde_json::json!({"strict_keys": "yes"})).unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
        assert_eq!(Options::from_json(&Value::Null), Ok(Options::default()));
    }
}
