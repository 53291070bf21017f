//! The contract between the `kvmux` binary and a vendor dialect crate. The binary owns sockets,
//! body limits, logging and metrics; a dialect owns everything its vendor defines (routes,
//! signatures, codec, error table). A dialect is callable without a socket: `serve` takes a fully
//! buffered `http::Request<Bytes>` and returns the vendor's response.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::request::Parts;
use http::{Request, Response};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;

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
    /// ([`Dialect::key_id_hint`]), else the first credential's account; the operation is read
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
        {
            let keys = self.read();
            if let Some(found) = keys.iter().find(|c| c.id == id) {
                return Some(found.clone());
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
        valid_auto_id(id).then(|| Credential {
            id: id.to_string(),
            secret: secret.to_string(),
            account: id.to_string(),
        })
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

/// What the gateway itself must refuse or inject, in the dialect's own envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayError {
    /// The body is (or declares to be) larger than `body_limit`.
    BodyTooLarge { limit: u64 },
    /// The body could not be read (client went away, timed out, bad chunking).
    BadBody(String),
    /// An injected fault or an emulated rate limit: the vendor's throttling code.
    Throttled,
    /// An injected fault: the vendor's internal server error.
    Internal,
}

/// The verifier's view of a refused signature, for the request inspector. Never holds a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureDiagnostics {
    pub algorithm: String,
    pub access_key_id: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub client_signature: String,
    pub reason: String,
}

/// Facts about a served request that a dialect puts into the response's extensions, for logs,
/// metrics and the request inspector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// The vendor's operation name (`EdgeKVPut`, `PutKv`, `put-kv`), or `unknown`.
    pub operation: String,
    pub account: Option<String>,
    /// The vendor error code, when the reply is an error.
    pub code: Option<String>,
    /// The vendor request id sent back to the client.
    pub request_id: String,
    pub signature: Option<SignatureDiagnostics>,
}

/// A vendor dialect.
pub trait Dialect: Send + Sync + 'static {
    /// `tencent`, `aliyun` or `huawei`: the name used in config, metrics and logs.
    fn name(&self) -> &'static str;

    /// Whether this request is for this dialect, from the request line and headers alone.
    fn claims(&self, parts: &Parts) -> bool;

    /// The largest body this request may carry, decided before any of it is read.
    fn body_limit(&self, parts: &Parts) -> u64;

    /// The vendor's reply for a failure the gateway detected or injected.
    fn gateway_error(&self, parts: &Parts, error: GatewayError) -> Response<Bytes>;

    /// The vendor operation this request names, if that can be told without the body (fault
    /// rules match on it).
    fn operation_hint(&self, parts: &Parts) -> Option<String>;

    /// The access key id the request names in its headers or query, read without verifying
    /// anything: what fault rules match an account on before the body is read, and what
    /// `AuthMode::Off` serves by. Each vendor puts it somewhere else, so only the dialect knows.
    fn key_id_hint(&self, parts: &Parts) -> Option<String>;

    /// The account [`Dialect::key_id_hint`]'s key belongs to among this dialect's credentials
    /// (runtime and auto accounts included), unverified.
    fn account_hint(&self, parts: &Parts) -> Option<String> {
        let id = self.key_id_hint(parts)?;
        self.credentials()?.get(&id).map(|c| c.account)
    }

    /// Every vendor operation name this dialect serves, as it appears in `RequestInfo::operation`.
    /// The binary labels metrics, logs and the inspector only with these names (anything else is
    /// `unknown`): operation names reach it from client headers, and a label per distinct value
    /// would let any client grow the gateway's memory without bound.
    fn operations(&self) -> &'static [&'static str];

    /// Serves one request. Must not panic on any input; the response carries a `RequestInfo`
    /// extension.
    fn serve(&self, request: Request<Bytes>) -> BoxFuture<'_, Response<Bytes>>;

    /// The engine containers a scoped reset of this dialect removes: every container of the
    /// dialect when `container` is `None`, else the one the vendor calls `container` (a
    /// namespace, or Huawei's `store` or `store/table`) with whatever belongs to it. `Err` says
    /// why the name cannot name one. The default knows no scopes.
    fn reset_selectors(&self, container: Option<&str>) -> Result<Vec<ContainerSelector>, String> {
        let _ = container;
        Err(format!("the {} dialect has no scoped reset", self.name()))
    }

    /// The dialect's key pairs, for the admin API's runtime credentials; `None` when it has none
    /// to share.
    fn credentials(&self) -> Option<&Credentials> {
        None
    }
}

/// The peer address, put into request extensions by the listener.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Builds a `[&str; len]` at compile time from a const table, `name` giving the entry at index
/// `i`: each dialect derives its closed set of operation labels (`Dialect::operations`) from its
/// router's own table this way, so the labels cannot drift from what the router serves.
///
/// ```
/// const TABLE: [(&str, u8); 2] = [("Get", 1), ("Put", 2)];
/// const NAMES: [&str; TABLE.len()] = kv_core::const_names!(TABLE.len(), |i| TABLE[i].0);
/// assert_eq!(NAMES, ["Get", "Put"]);
/// ```
#[macro_export]
macro_rules! const_names {
    ($len:expr, |$i:ident| $name:expr) => {{
        let mut names = [""; $len];
        let mut $i = 0;
        while $i < names.len() {
            names[$i] = $name;
            $i += 1;
        }
        names
    }};
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
