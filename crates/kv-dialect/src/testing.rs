//! Test support for the dialect crates (feature `testing`): a dialect over a fresh engine on a
//! temporary redb file, with the credentials, auth mode and options a test asks for. The harness
//! keeps alive what the dialect needs (the directory of the file) and hands out the engine and
//! its clock, which tests read and advance.

use std::sync::Arc;

use kv_core::{Clock, Engine};

use crate::{AuthMode, Credential, DialectContext};

/// What a test dialect is built with; `Setup::new(..)` is auth enforced, no options, no vendor
/// rate limits.
#[derive(Clone, Debug)]
pub struct Setup {
    pub credentials: Vec<Credential>,
    pub auth_mode: AuthMode,
    pub options: serde_json::Value,
    pub vendor_rate_limits: bool,
}

impl Setup {
    /// The key pairs as `(id, secret, account)`.
    pub fn new(credentials: &[(&str, &str, &str)]) -> Setup {
        Setup {
            credentials: credentials
                .iter()
                .map(|(id, secret, account)| Credential {
                    id: id.to_string(),
                    secret: secret.to_string(),
                    account: account.to_string(),
                })
                .collect(),
            auth_mode: AuthMode::Enforce,
            options: serde_json::Value::Null,
            vendor_rate_limits: false,
        }
    }

    pub fn auth_mode(self, auth_mode: AuthMode) -> Setup {
        Setup { auth_mode, ..self }
    }

    pub fn options(self, options: serde_json::Value) -> Setup {
        Setup { options, ..self }
    }

    pub fn vendor_rate_limits(self, vendor_rate_limits: bool) -> Setup {
        Setup {
            vendor_rate_limits,
            ..self
        }
    }

    /// The dialect `new` makes of a context over a fresh engine on a temporary redb file.
    pub fn build<D>(self, new: impl FnOnce(DialectContext) -> D) -> Harness<D> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let clock = Clock::new();
        let engine = Arc::new(
            Engine::open_redb(&dir.path().join("kv.redb"), false, clock.clone())
                .expect("an engine on a fresh redb file"),
        );
        let dialect = new(DialectContext {
            engine: engine.clone(),
            credentials: self.credentials.into(),
            auth_mode: self.auth_mode,
            options: self.options,
            vendor_rate_limits: self.vendor_rate_limits,
        });
        Harness {
            dialect,
            engine,
            clock,
            _dir: dir,
        }
    }
}

/// A dialect under test and what it runs on.
pub struct Harness<D> {
    pub dialect: D,
    pub engine: Arc<Engine>,
    /// The engine's clock (tests advance it to expire items).
    pub clock: Clock,
    _dir: tempfile::TempDir,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_builds_a_context_with_what_it_was_given() {
        let h = Setup::new(&[("id", "secret", "acct"), ("id2", "secret2", "acct2")])
            .auth_mode(AuthMode::Log)
            .options(serde_json::json!({"a": 1}))
            .vendor_rate_limits(true)
            .build(|ctx| ctx);
        let ctx = &h.dialect;
        assert_eq!(ctx.auth_mode, AuthMode::Log);
        assert_eq!(ctx.options, serde_json::json!({"a": 1}));
        assert!(ctx.vendor_rate_limits);
        assert_eq!(
            ctx.credential("id2").map(|c| c.account),
            Some("acct2".into())
        );
        assert_eq!(ctx.fallback_account(), "acct");
        assert!(Arc::ptr_eq(&ctx.engine, &h.engine));
    }
}
