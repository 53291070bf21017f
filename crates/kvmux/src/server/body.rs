//! Request bodies: read within the dialect's limit and a share of the gateway's body budget
//! (`[limits] max_inflight_body_bytes`), joined into one buffer.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body as _;
use hyper::body::Incoming;
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a request waits for its share of `max_inflight_body_bytes` before it is refused as
/// throttled: long enough to ride out a burst, short enough that a flood of large uploads is
/// turned away rather than queued (a queued connection still holds its socket and task).
const BODY_BUDGET_WAIT: Duration = Duration::from_secs(1);

/// The budget is counted in KiB: a tokio semaphore takes at most `u32::MAX` permits at once, and
/// bodies of several GiB must fit.
const BUDGET_UNIT: u64 = 1024;

/// The bytes of request bodies buffered at once, all connections together
/// (`[limits] max_inflight_body_bytes`). A body is read before its signature can be checked, so
/// without it a few unauthenticated clients sending large bodies slowly could make the gateway
/// hold their uploads (10 PostObject connections: +629 MiB). A request takes its declared length
/// (capped by the dialect's body limit) before reading, or grows its share frame by frame when
/// the length is not declared, and keeps it until its response is produced.
pub struct BodyBudget {
    units: Semaphore,
    total_units: u64,
}

impl BodyBudget {
    /// A budget of `max_inflight_body_bytes`, shared by every listener of one gateway.
    pub fn new(max_inflight_body_bytes: u64) -> Self {
        let total_units = max_inflight_body_bytes
            .div_ceil(BUDGET_UNIT)
            .min(Semaphore::MAX_PERMITS as u64);
        BodyBudget {
            units: Semaphore::new(total_units as usize),
            total_units,
        }
    }
}

/// A request's share of the body budget; released when dropped.
pub(super) struct BodyShare<'a> {
    budget: &'a BodyBudget,
    permit: Option<SemaphorePermit<'a>>,
    /// Bytes the share covers.
    covered: u64,
}

/// The budget could not cover a body within [`BODY_BUDGET_WAIT`].
pub(super) struct BudgetExhausted;

impl<'a> BodyShare<'a> {
    pub(super) fn new(budget: &'a BodyBudget) -> Self {
        BodyShare {
            budget,
            permit: None,
            covered: 0,
        }
    }

    /// Grows the share to cover `bytes` (at least `min_step` more when it grows, so that a body
    /// of many small frames does not take the semaphore once per frame).
    pub(super) async fn cover(&mut self, bytes: u64, min_step: u64) -> Result<(), BudgetExhausted> {
        if bytes <= self.covered {
            return Ok(());
        }
        let held = self.covered / BUDGET_UNIT;
        let wanted = bytes
            .max(self.covered + min_step)
            .div_ceil(BUDGET_UNIT)
            .min(self.budget.total_units);
        if bytes.div_ceil(BUDGET_UNIT) > self.budget.total_units {
            return Err(BudgetExhausted);
        }
        let more = u32::try_from(wanted - held).map_err(|_| BudgetExhausted)?;
        let permit = tokio::time::timeout(BODY_BUDGET_WAIT, self.budget.units.acquire_many(more))
            .await
            .map_err(|_| BudgetExhausted)?
            .map_err(|_| BudgetExhausted)?;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        self.covered = wanted * BUDGET_UNIT;
        Ok(())
    }
}

pub(super) enum BodyError {
    TooLarge,
    /// The body budget could not cover the bytes that arrived.
    Throttled,
    Other(String),
}

/// Reads a request body of at most `limit` bytes within its share of the body budget: the share
/// grows as frames of an undeclared-length body arrive, and the read fails as throttled when it
/// cannot.
pub(super) async fn read_body_shared(
    body: Incoming,
    limit: u64,
    timeout_secs: u64,
    share: &mut BodyShare<'_>,
) -> Result<Bytes, BodyError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let read = gather(body, limit, Some(share));
    match tokio::time::timeout(Duration::from_secs(timeout_secs), read).await {
        Err(_) => Err(BodyError::Other(
            "the request body was not received in time".into(),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if e.is::<BudgetExhausted>() => Err(BodyError::Throttled),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(e)) => Err(BodyError::Other(format!("reading the request body: {e}"))),
    }
}

impl std::fmt::Debug for BudgetExhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BudgetExhausted")
    }
}

impl std::fmt::Display for BudgetExhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("max_inflight_body_bytes is in use by other requests")
    }
}

impl std::error::Error for BudgetExhausted {}

/// How much a share of the budget grows at least when an undeclared-length body outgrows it.
const SHARE_STEP: u64 = 64 * 1024;

/// Joins a body's frames into one buffer sized by its Content-Length (already checked against the
/// limit), appending each frame as it arrives and dropping it. Collecting every frame first and
/// then concatenating held a large body twice at once; a body of one frame is not copied at all.
/// With a `share`, every frame is covered by the body budget before it is kept.
async fn gather(
    body: Incoming,
    limit: usize,
    mut share: Option<&mut BodyShare<'_>>,
) -> Result<Bytes, Box<dyn std::error::Error + Send + Sync>> {
    let mut body = Limited::new(body, limit);
    let announced = body
        .size_hint()
        .exact()
        .and_then(|n| usize::try_from(n).ok());
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers carry nothing a dialect reads
        };
        if let Some(share) = share.as_deref_mut() {
            let kept = first.as_ref().map_or(0, Bytes::len) + joined.len() + data.len();
            share.cover(kept as u64, SHARE_STEP).await?;
        }
        if first.is_none() && joined.is_empty() {
            first = Some(data);
            continue;
        }
        if let Some(head) = first.take() {
            let wanted = announced.unwrap_or(0).min(limit);
            joined.reserve(wanted.max(head.len() + data.len()));
            joined.extend_from_slice(&head);
        }
        joined.extend_from_slice(&data);
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}
