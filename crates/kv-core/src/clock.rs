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
    /// How far engine time may run ahead of the base time: 1,000 years. Far beyond any TTL a
    /// test needs, and small enough that `base + offset` in milliseconds never overflows an i64
    /// and dates stay formattable.
    pub const MAX_OFFSET_SECS: i64 = 1_000 * 366 * 86_400;

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

    /// The base engine time runs from, unix seconds: the wall clock (or the frozen time) without
    /// the offset. A shared store adds the shared offset to it inside its own statements.
    pub fn base_secs(&self) -> u64 {
        match self.frozen_base {
            Some(secs) => secs,
            None => wall_clock_secs(),
        }
    }

    /// Engine time in unix seconds.
    pub fn now(&self) -> u64 {
        self.now_millis() / 1000
    }

    /// Engine time in unix milliseconds (for reply timestamps that want sub-second precision).
    pub fn now_millis(&self) -> u64 {
        let base_ms = match self.frozen_base {
            Some(secs) => i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        };
        base_ms
            .saturating_add(
                clamp_offset(self.offset_secs.load(Ordering::Relaxed)).saturating_mul(1000),
            )
            .max(0) as u64
    }

    /// Moves engine time forward by `seconds` and returns the new engine time. The offset
    /// saturates at [`Clock::MAX_OFFSET_SECS`]: a huge `seconds` (an admin typo, or `u64::MAX`)
    /// parks the clock at its ceiling instead of wrapping the offset negative, which would send
    /// engine time back to 1970 and, on PostgreSQL, store that wrapped offset for every gateway.
    pub fn advance(&self, seconds: u64) -> u64 {
        let delta = i64::try_from(seconds).unwrap_or(i64::MAX);
        // `fetch_update` with a closure that always returns Some cannot fail.
        let _ = self
            .offset_secs
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                Some(clamp_offset(current.saturating_add(delta)))
            });
        self.now()
    }

    /// Like [`Clock::advance`], but refuses (returns None and leaves the clock alone) when the
    /// offset would pass [`Clock::MAX_OFFSET_SECS`], so an API can answer "out of range" rather
    /// than silently stopping short.
    pub fn try_advance(&self, seconds: u64) -> Option<u64> {
        let delta = i64::try_from(seconds).ok()?;
        self.offset_secs
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                current
                    .checked_add(delta)
                    .filter(|next| *next <= Self::MAX_OFFSET_SECS)
            })
            .ok()?;
        Some(self.now())
    }

    /// The current offset from wall time, in seconds.
    pub fn offset(&self) -> i64 {
        self.offset_secs.load(Ordering::Relaxed)
    }

    /// Raises the offset to `offset` (used when several gateways share one clock through the
    /// store). Engine time only moves forward, so a smaller value is ignored; a value outside
    /// `0..=MAX_OFFSET_SECS` (e.g. one a buggy build stored) is clamped into it.
    pub fn set_offset(&self, offset: i64) {
        self.offset_secs
            .fetch_max(clamp_offset(offset), Ordering::Relaxed);
    }
}

impl Clock {
    /// Sets the offset to exactly `offset` (clamped into `0..=MAX_OFFSET_SECS`), lower or not:
    /// only for restoring a checkpoint, which puts the whole state back as it was, the time of
    /// every TTL included. Everything else moves time forward only ([`Clock::set_offset`]).
    pub fn restore_offset(&self, offset: i64) {
        self.offset_secs
            .store(clamp_offset(offset), Ordering::Relaxed);
    }
}

/// Wall-clock unix milliseconds, for when a checkpoint or a record was made.
pub fn wall_clock_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Keeps an offset within what [`Clock`] allows.
pub(crate) fn clamp_offset(offset: i64) -> i64 {
    offset.clamp(0, Clock::MAX_OFFSET_SECS)
}

/// Wall-clock unix seconds, for signature freshness windows.
pub fn wall_clock_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_advances_saturate_and_never_move_time_backwards() {
        let clock = Clock::frozen_at(1_700_000_000);
        assert_eq!(clock.advance(10), 1_700_000_010);
        // u64::MAX once, i64::MAX twice: the old code wrapped the offset to 1970 on these.
        let ceiling = 1_700_000_000 + Clock::MAX_OFFSET_SECS as u64;
        assert_eq!(clock.advance(u64::MAX), ceiling);
        assert_eq!(clock.advance(i64::MAX as u64), ceiling);
        assert_eq!(clock.advance(i64::MAX as u64), ceiling);
        assert_eq!(clock.offset(), Clock::MAX_OFFSET_SECS);
        assert_eq!(clock.now_millis(), ceiling * 1000);

        let clock = Clock::frozen_at(1_700_000_000);
        clock.advance(i64::MAX as u64 / 4);
        clock.advance(i64::MAX as u64 / 4);
        clock.advance(i64::MAX as u64 / 4);
        clock.advance(i64::MAX as u64 / 4);
        clock.advance(i64::MAX as u64 / 4);
        assert_eq!(clock.now(), ceiling, "repeated large advances never wrap");

        // A wall-time clock at its ceiling is still far in the future, not at 0.
        let wall = Clock::new();
        assert!(wall.advance(u64::MAX) > wall_clock_secs());
    }

    #[test]
    fn try_advance_refuses_past_the_ceiling_and_leaves_the_clock_alone() {
        let clock = Clock::frozen_at(1_000);
        assert_eq!(clock.try_advance(5), Some(1_005));
        assert_eq!(clock.try_advance(u64::MAX), None);
        assert_eq!(clock.try_advance(Clock::MAX_OFFSET_SECS as u64), None);
        assert_eq!(clock.now(), 1_005);
        assert_eq!(
            clock.try_advance(Clock::MAX_OFFSET_SECS as u64 - 5),
            Some(1_000 + Clock::MAX_OFFSET_SECS as u64)
        );
    }

    #[test]
    fn set_offset_only_raises_and_clamps_stored_values() {
        let clock = Clock::frozen_at(1_000);
        clock.set_offset(50);
        clock.set_offset(10);
        assert_eq!(
            clock.now(),
            1_050,
            "a smaller shared offset never moves time back"
        );
        clock.set_offset(i64::MIN);
        assert_eq!(clock.now(), 1_050);
        clock.set_offset(i64::MAX);
        assert_eq!(clock.offset(), Clock::MAX_OFFSET_SECS);
    }
}
