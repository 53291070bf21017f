//! The batch rules every backend judges a commit by, written once: each `Check` in order, then
//! each counter the batch grows against its limit (`Batch::limited_counter_growth`, the summed
//! deltas). A backend supplies only how to read a record's version and a counter's value from
//! the state its commit sees (redb's write transaction, the memory store's maps, the rows
//! PostgreSQL read under its commit lock), so the three cannot drift apart on what a check means.
//!
//! Applying the writes stays in each backend: redb writes into reserved pages and side files,
//! PostgreSQL sends one pipelined statement list, the memory store mutates maps; what they share
//! (batch order, saturating counter adds) is pinned by the store conformance suite instead.

use super::{Batch, Check, Rejected};

/// Read access to the state a commit is judged against.
pub(crate) trait BatchView {
    /// What a read can fail with (`Infallible` for in-memory state).
    type Error;
    /// The version of the record at `key`, or `None` when there is none.
    fn record_version(&self, key: &[u8]) -> Result<Option<u64>, Self::Error>;
    /// The counter at `key`; an absent counter is 0.
    fn counter(&self, key: &[u8]) -> Result<i64, Self::Error>;
}

/// The first reason to refuse `batch` against `view`: a check that does not hold (in the
/// batch's order), else the first counter whose growth would pass its limit; `None` if it
/// may commit.
pub(crate) fn first_rejection<V: BatchView>(
    view: &V,
    batch: &Batch,
) -> Result<Option<Rejected>, V::Error> {
    for check in &batch.checks {
        let holds = match check {
            Check::Absent(k) => view.record_version(k)?.is_none(),
            Check::Present(k) => view.record_version(k)?.is_some(),
            Check::AtVersion(k, v) => view.record_version(k)? == Some(*v),
            Check::CounterEquals(k, v) => view.counter(k)? == *v,
        };
        if !holds {
            return Ok(Some(Rejected::Check(check.clone())));
        }
    }
    for (counter, delta, (max, quota)) in batch.limited_counter_growth() {
        if view.counter(counter)?.saturating_add(delta) > max {
            return Ok(Some(Rejected::Quota(quota)));
        }
    }
    Ok(None)
}
