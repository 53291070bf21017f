//! Replay protection: first use of a signed request's nonce, kept until its window passes.

use super::*;
use crate::error::Result;
use crate::keys;

impl Engine {
    /// Records that `nonce` was used with `key_id` by `dialect`, for `window_secs`: `Ok(true)`
    /// the first time, `Ok(false)` when it was already used and is still remembered. Kept in the
    /// store, so a nonce is refused once across restarts and across every gateway sharing a
    /// database ([`Store::claim_once`] decides the race between two gateways).
    ///
    /// The record expires on the engine clock (`now + window_secs`), since that is the clock the
    /// sweeper runs on; moving the engine clock forward through the admin API therefore forgets
    /// nonces early, which only an admin can do. Callers check the signature first, so only
    /// authenticated requests write here, and the key is a fixed-size digest.
    pub async fn first_use_of_nonce(
        &self,
        dialect: &str,
        key_id: &str,
        nonce: &str,
        window_secs: u64,
    ) -> Result<bool> {
        let key = keys::nonce(dialect, key_id, nonce);
        let expires_at = self.now().saturating_add(window_secs.max(1));
        // The store decides the race between two gateways: on PostgreSQL one
        // `INSERT .. ON CONFLICT DO NOTHING`, elsewhere a commit with an `Absent` check.
        self.store.claim_once(key, expires_at).await
    }
}
