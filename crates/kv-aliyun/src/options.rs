//! The `[aliyun]` config options. Unknown keys are refused (a typo must not pass silently); the
//! binary's config reads this type, so `check-config` names the line and column.

use crate::ops::namespace::{ACCOUNT_CAPACITY, NAMESPACE_CAPACITY};

#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Where `AuthorizeFileUpload` tells the SDK to upload high-capacity values (default: the
    /// gateway's own address, which the SDK reaches through `HTTP_PROXY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_endpoint: Option<String>,
    /// Accounts that answer as not activated (every operation but the status ones refused).
    pub inactive_accounts: Vec<String>,
    /// STS security tokens accepted beside AccessKey signatures.
    pub security_tokens: Vec<String>,
    /// Bytes per namespace; ESA's is 1 GB. A smaller one reaches the quota in a test.
    pub namespace_capacity: i64,
    /// Bytes per account, all namespaces together.
    pub account_capacity: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            upload_endpoint: None,
            inactive_accounts: Vec::new(),
            security_tokens: Vec::new(),
            namespace_capacity: NAMESPACE_CAPACITY,
            account_capacity: ACCOUNT_CAPACITY,
        }
    }
}

impl kv_dialect::DialectOptions for Options {
    const SECTION: &'static str = "aliyun";

    /// The rules serde cannot state (capacities are positive): the offending key and why.
    fn check(&self) -> Result<(), (&'static str, String)> {
        for (name, value) in [
            ("namespace_capacity", self.namespace_capacity),
            ("account_capacity", self.account_capacity),
        ] {
            if value <= 0 {
                return Err((
                    name,
                    format!("[aliyun] {name} must be positive, got {value}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_dialect::DialectOptions;
    use serde_json::Value;

    #[test]
    fn options_read_and_refuse_typos_and_bad_capacities() {
        let o = Options::from_json(&serde_json::json!({
            "namespace_capacity": 100, "security_tokens": ["t"], "upload_endpoint": "h:1"
        }))
        .expect("valid");
        assert_eq!(o.namespace_capacity, 100);
        assert_eq!(o.account_capacity, ACCOUNT_CAPACITY);
        assert_eq!(o.security_tokens, vec!["t".to_string()]);
        assert_eq!(o.upload_endpoint.as_deref(), Some("h:1"));
        let err = Options::from_json(&serde_json::json!({"security_token": ["t"]})).unwrap_err();
        assert!(err.contains("unknown field `security_token`"), "{err}");
        let err = Options::from_json(&serde_json::json!({"account_capacity": -1})).unwrap_err();
        assert!(err.contains("account_capacity"), "{err}");
        assert_eq!(Options::from_json(&Value::Null), Ok(Options::default()));
    }
}
