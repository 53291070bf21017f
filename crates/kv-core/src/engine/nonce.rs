//! Replay protection: first use of a signed request's nonce, kept until its window passes.

use bytes::Bytes;

use super::*;
use crate::error::{Error, Result};
use crate::keys;
use crate::store::{Batch, Check, Rejected, Write};

impl Engine {
    /// Records that `nonce` was used with `key_id` by `dialect`, for `window_secs`: `Ok(true)`
    /// the first time, `Ok(false)` when it was already used and is still remembered. Kept in the
    /// store, so a nonce is refused once across restarts and across every gateway sharing a
    /// database (the store's `Absent` check decides the race between two gateways).
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
        let batch = Batch {
            checks: vec![Check::Absent(key.clone())],
            writes: vec![Write::Put {
                key,
                value: Bytes::new(),
                expires_at: Some(expires_at),
            }],
        };
        match self.store.commit(batch).await? {
            Ok(_) => Ok(true),
            Err(Rejected::Check(_)) => Ok(false),
            Err(Rejected::Quota(q)) => Err(Error::QuotaExceeded(q)),
        }
    }
}
