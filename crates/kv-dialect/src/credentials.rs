//! Who may call a dialect: the configured key pairs, shared with the admin API, and what a
//! dialect does with a signature (`[auth] mode`).

use std::sync::Arc;

use kv_core::engine::Engine;
use serde::{Deserialize, Serialize};

/// One configured key pair and the tenant it reaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub id: String,
    pub secret: String,
    pub account: String,
}

/// What a dialect does with a request's signature. One meaning in every dialect, pinned by
/// `crates/kvmux/tests/auth_modes.rs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Verify everything (signature, freshness, nonce or replay binding, security token) and
    /// refuse what fails with the vendor's error.
    #[default]
    Enforce,
    /// Verify everything as `enforce` does and record each failure (log line, inspector
    /// diagnostics), but serve the request anyway: for debugging a client's signing.
    Log,
    /// Verify nothing: no signature is computed, no nonce recorded, no replay binding or
    /// security token checked. The account is the one the presented key id belongs to
    /// ([`crate::Head::key_id`]), else the first credential's account; the operation is read
    /// from the request as it names it.
    Off,
}

/// Everything a dialect is built from.
#[derive(Clone)]
pub struct DialectContext {
    pub engine: Arc<Engine>,
    /// The credentials of this dialect only: shared with the admin API, which adds and removes
    /// key pairs while the gateway runs (`/_kvmux/credentials`).
    pub credentials: Credentials,
    pub auth_mode: AuthMode,
    /// The dialect's own config section (e.g. `[tencent]`), as JSON; `Null` when absent.
    pub options: serde_json::Value,
    /// Whether the vendor's documented rate limits are emulated (`[limits] vendor_rate_limits`).
    pub vendor_rate_limits: bool,
}

impl DialectContext {
    /// The credential with this access key id (a copy: the set may change while it is used).
    pub fn credential(&self, id: &str) -> Option<Credential> {
        self.credentials.get(id)
    }

    /// The account used when auth is off and the key id is unknown.
    pub fn fallback_account(&self) -> String {
        self.credentials
            .first()
            .map(|c| c.account)
            .unwrap_or_else(|| "dev".to_string())
    }
}

/// One dialect's key pairs, shared between the dialect (which looks keys up on every request)
/// and the admin API (which adds and removes them at runtime), so a test suite can make an
/// account on the fly without restarting the gateway. Cloning shares the set.
///
/// With [`Credentials::with_auto_accounts`], a key id that is not in the set is still known: its
/// secret is the configured auto secret and its account is the key id itself, so each test can
/// sign with a fresh key id and see nothing of another test's data.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    keys: Arc<std::sync::RwLock<Vec<Credential>>>,
    auto_secret: Option<Arc<str>>,
    /// Accounts that a key pair reaches with its own secret (every dialect's, from the config):
    /// never an auto account, or anyone holding the auto secret could sign as that account.
    reserved: Arc<[String]>,
}

impl From<Vec<Credential>> for Credentials {
    fn from(keys: Vec<Credential>) -> Self {
        Credentials {
            keys: Arc::new(std::sync::RwLock::new(keys)),
            auto_secret: None,
            reserved: Arc::new([]),
        }
    }
}

/// Why [`Credentials::add`] refused a key pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialError {
    /// A key pair with this id exists already.
    Exists,
    /// The id, secret or account is empty or has a control character.
    Invalid(String),
}

impl Credentials {
    /// Serves unknown key ids signed with `secret` in an account named after the key id.
    pub fn with_auto_accounts(mut self, secret: &str) -> Self {
        self.auto_secret = Some(Arc::from(secret));
        self
    }

    /// Accounts no key id may reach as an auto account (besides those of this set's own key
    /// pairs, which are always refused): the accounts other dialects' credentials reach.
    pub fn reserve_accounts(mut self, accounts: impl IntoIterator<Item = String>) -> Self {
        self.reserved = accounts.into_iter().collect();
        self
    }

    /// Whether unknown key ids get an account of their own (`[auth] auto_accounts`).
    pub fn auto_accounts(&self) -> bool {
        self.auto_secret.is_some()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Credential>> {
        // The vector is valid after any panic (every change is one push or one remove).
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Credential>> {
        self.keys.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The key pair with this id: a configured or added one, else an auto account's.
    pub fn get(&self, id: &str) -> Option<Credential> {
        self.lookup(id, Credential::clone, |secret| Credential {
            id: id.to_string(),
            secret: secret.to_string(),
            account: id.to_string(),
        })
    }

    /// The account the key pair with this id reaches (configured, added or auto), unverified:
    /// what [`crate::Head::account`] names. Asked for every request a dialect classifies, so it
    /// copies the account alone, not the whole key pair.
    pub fn account_of(&self, id: &str) -> Option<String> {
        self.lookup(id, |held| held.account.clone(), |_| id.to_string())
    }

    /// The one lookup rule behind [`Credentials::get`] and [`Credentials::account_of`]: `held`
    /// reads a configured or added key pair, `auto` makes the auto account's from its secret.
    fn lookup<T>(
        &self,
        id: &str,
        held: impl FnOnce(&Credential) -> T,
        auto: impl FnOnce(&str) -> T,
    ) -> Option<T> {
        {
            let keys = self.read();
            if let Some(found) = keys.iter().find(|c| c.id == id) {
                return Some(held(found));
            }
            // A key id named like an account that has key pairs of its own would reach that
            // account with the auto secret instead of the account's secret.
            if keys.iter().any(|c| c.account == id) {
                return None;
            }
        }
        if self.reserved.iter().any(|a| a == id) {
            return None;
        }
        let secret = self.auto_secret.as_ref()?;
        // An auto account is named after the key id, and account names reach the store's keys
        // and logs: only ids a vendor SDK would send qualify (no separators, no control bytes).
        valid_auto_id(id).then(|| auto(secret))
    }

    /// The first key pair configured or added (the account used when auth is off).
    pub fn first(&self) -> Option<Credential> {
        self.read().first().cloned()
    }

    /// Every key pair held (not the auto accounts, which are not held anywhere).
    pub fn list(&self) -> Vec<Credential> {
        self.read().clone()
    }

    /// Adds a key pair; refused when the id is taken or a field is empty or unprintable.
    pub fn add(&self, credential: Credential) -> Result<(), CredentialError> {
        for (what, value) in [
            ("id", &credential.id),
            ("secret", &credential.secret),
            ("account", &credential.account),
        ] {
            if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
                return Err(CredentialError::Invalid(format!(
                    "{what} must be 1 to 256 characters with no control characters"
                )));
            }
        }
        let mut keys = self.write();
        if keys.iter().any(|c| c.id == credential.id) {
            return Err(CredentialError::Exists);
        }
        keys.push(credential);
        Ok(())
    }

    /// Removes the key pair with this id; false when there is none.
    pub fn remove(&self, id: &str) -> bool {
        let mut keys = self.write();
        let before = keys.len();
        keys.retain(|c| c.id != id);
        keys.len() != before
    }
}

/// Whether a key id may name an auto account: 1 to 128 ASCII letters, digits, `-`, `_` or `.`.
fn valid_auto_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, account: &str) -> Credential {
        Credential {
            id: id.into(),
            secret: "s".into(),
            account: account.into(),
        }
    }

    #[test]
    fn credentials_change_at_runtime_and_every_clone_sees_it() {
        let set = Credentials::from(vec![key("a", "dev")]);
        let seen_by_dialect = set.clone();
        assert_eq!(set.add(key("a", "x")), Err(CredentialError::Exists));
        assert!(matches!(
            set.add(key("", "x")),
            Err(CredentialError::Invalid(_))
        ));
        set.add(key("b", "other")).unwrap();
        assert_eq!(
            seen_by_dialect.get("b").map(|c| c.account),
            Some("other".into())
        );
        assert!(set.remove("b"));
        assert!(!set.remove("b"));
        assert_eq!(
            seen_by_dialect.get("b"),
            None,
            "no auto accounts: unknown ids are unknown"
        );
    }

    #[test]
    fn auto_accounts_name_the_account_after_a_well_formed_key_id() {
        let set = Credentials::from(vec![key("a", "dev")]).with_auto_accounts("auto");
        assert_eq!(
            set.get("a").map(|c| c.account),
            Some("dev".into()),
            "configured first"
        );
        let fresh = set.get("test-42").expect("auto");
        assert_eq!(
            (fresh.secret.as_str(), fresh.account.as_str()),
            ("auto", "test-42")
        );
        for bad in ["", "a/b", "a\0b", &"x".repeat(129)] {
            assert_eq!(set.get(bad), None, "{bad:?}");
        }
        assert_eq!(set.list().len(), 1, "auto accounts are not held");
        // Accounts with key pairs of their own are never auto accounts.
        assert_eq!(set.get("dev"), None);
        let set = set.reserve_accounts(["prod".to_string()]);
        assert_eq!(set.get("prod"), None);
        set.add(key("k2", "added")).unwrap();
        assert_eq!(set.get("added"), None);
        assert!(set.get("test-43").is_some());
    }
}
