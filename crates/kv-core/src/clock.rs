//! The engine's one clock. Expiry, TTLs and timestamps in replies read it; tests move it forward
//! through the admin API instead of sleeping. Signature freshness windows deliberately do NOT use
//! it (they use the wall clock), so a test can advance days without breaking request signing.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall time (or a frozen base time, for deterministic tests) plus an offset that only grows.
/// Cloning shares the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
    frozen_base: Option<u64>,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock that stands still at `unix_secs` until advanced.
    pub fn frozen_at(unix_secs: u64) -> Self {
        Clock {
            offset_secs: Arc::default(),
            frozen_base: Some(unix_secs),
        }
    }

    /// Engine time in unix seconds.
    pub fn now(&self) -> u64 {
        self.now_millis() / 1000
    }

    /// Engine time in unix milliseconds (for reply timestamps that want sub-second precision).
    pub fn now_millis(&self) -> u64 {
        let base_ms = match self.frozen_base {
            Some(secs) => secs.saturating_mul(1000) as i64,
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        };
        (base_ms
            + self
                .offset_secs
                .load(Ordering::Relaxed)
                .saturating_mul(1000))
        .max(0) as u64
    }

    /// Moves engine time forward by `seconds` and returns the new engine time.
    pub fn advance(&self, seconds: u64) -> u64 {
        let delta = i64::try_from(seconds).unwrap_or(i64::MAX / 4);
        self.offset_secs.fetch_add(delta, Ordering::Relaxed);
        self.now()
    }

    /// The current offset from wall time, in seconds.
    pub fn offset(&self) -> i64 {
        self.offset_secs.load(Ordering::Relaxed)
    }

    /// Sets the offset (used when several gateways share one clock through the store).
    pub fn set_offset(&self, offset: i64) {
        self.offset_secs.store(offset, Ordering::Relaxed);
    }
}

/// Wall-clock unix seconds, for signature freshness windows.
pub fn wall_clock_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
