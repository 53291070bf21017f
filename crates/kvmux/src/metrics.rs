//! Prometheus metrics: requests by dialect, operation and status; latency histograms; store size.
//!
//! Counting a request takes no lock and builds no string: the labels are `'static` names, and each
//! thread keeps the counter and histogram handles of the label sets it has counted
//! ([`Metrics::observe`]), so after a label set's first request on a thread an observation is a
//! few atomic adds. The exposition (`render`) is the same as `prometheus_client`'s own.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    dialect: &'static str,
    operation: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    dialect: &'static str,
    operation: &'static str,
}

/// 50 µs .. ~1.6 s, doubling: covers a cached get and a 25 MB upload alike.
const BUCKETS: usize = 16;
const FIRST_BOUND_SECS: f64 = 0.000_05;

/// A latency histogram of atomics (`prometheus_client`'s takes a mutex per observation): one
/// count per bucket (the last is +Inf), the count, and the sum in nanoseconds.
#[derive(Clone, Debug, Default)]
pub struct LatencyHistogram(Arc<HistogramCells>);

#[derive(Debug, Default)]
pub struct HistogramCells {
    buckets: [AtomicU64; BUCKETS + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    fn bounds() -> impl Iterator<Item = f64> {
        exponential_buckets(FIRST_BOUND_SECS, 2.0, BUCKETS as u16).chain([f64::INFINITY])
    }

    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        // The first bucket whose upper bound is at least the value (prometheus_client's rule).
        let index = Self::bounds()
            .position(|bound| secs <= bound)
            .unwrap_or(BUCKETS);
        let cells = &self.0;
        cells.buckets[index].fetch_add(1, Ordering::Relaxed);
        cells.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        cells.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let cells = &self.0;
        let buckets: Vec<(f64, u64)> = Self::bounds()
            .zip(cells.buckets.iter())
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = cells.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

pub struct Metrics {
    /// Tells this gateway's handles from another's in the per-thread caches.
    id: u64,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, LatencyHistogram>,
    store_records: Gauge,
    store_file_bytes: Gauge,
}

/// Gives every [`Metrics`] its own id.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A label set as a thread's cache knows it: the metrics it belongs to, where the two `'static`
/// names live (equal names at two addresses are two keys for the same series: harmless), and the
/// status.
type HandleKey = (u64, (usize, usize), (usize, usize), u16);

/// The most handles a thread keeps; past it the cache starts again (label sets are a closed set,
/// so only a process running many gateways, e.g. a test suite, gets there).
const MAX_CACHED_HANDLES: usize = 4096;

thread_local! {
    static HANDLES: RefCell<HashMap<HandleKey, (Counter, LatencyHistogram)>> =
        RefCell::new(HashMap::new());
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kvmux");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, LatencyHistogram>::default();
        let store_records = Gauge::default();
        let store_file_bytes = Gauge::default();
        registry.register(
            "requests",
            "Requests served, by dialect, operation and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from the request head to the response, by dialect and operation",
            latency.clone(),
        );
        registry.register(
            "store_records",
            "Records in the store, all kinds",
            store_records.clone(),
        );
        registry.register(
            "store_file_bytes",
            "Size of the store file in bytes",
            store_file_bytes.clone(),
        );
        Metrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            registry,
            requests,
            latency,
            store_records,
            store_file_bytes,
        }
    }

    /// Counts one answered request. The labels are `'static` on purpose: each distinct label set
    /// is a series kept for the life of the process, so they must come from a closed set in the
    /// code (dialect names, `Dialect::operations`, admin routes), never from request text. The
    /// status is an HTTP status, at most a few hundred values.
    pub fn observe(
        &self,
        dialect: &'static str,
        operation: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let key = (
            self.id,
            (dialect.as_ptr() as usize, dialect.len()),
            (operation.as_ptr() as usize, operation.len()),
            status,
        );
        let observe = |(requests, latency): &(Counter, LatencyHistogram)| {
            requests.inc();
            latency.observe(elapsed);
        };
        HANDLES.with(|handles| {
            let mut handles = handles.borrow_mut();
            if let Some(found) = handles.get(&key) {
                return observe(found);
            }
            if handles.len() >= MAX_CACHED_HANDLES {
                handles.clear();
            }
            let made = (
                self.requests
                    .get_or_create(&RequestLabels {
                        dialect,
                        operation,
                        status,
                    })
                    .clone(),
                self.latency
                    .get_or_create(&LatencyLabels { dialect, operation })
                    .clone(),
            );
            observe(&made);
            handles.insert(key, made);
        })
    }

    /// The text exposition, with the store gauges refreshed first.
    pub fn render(&self, stats: Option<&kv_core::store::StoreStats>) -> String {
        if let Some(s) = stats {
            self.store_records.set(s.records as i64);
            self.store_file_bytes.set(s.file_bytes as i64);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
