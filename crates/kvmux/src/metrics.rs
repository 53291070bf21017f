//! Prometheus metrics: requests by dialect, operation and status; latency histograms; store size.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    dialect: String,
    operation: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    dialect: String,
    operation: String,
}

type HistogramMaker = fn() -> Histogram;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, HistogramMaker>,
    store_records: Gauge,
    store_file_bytes: Gauge,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s, doubling: covers a cached get and a 25 MB upload alike.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kvmux");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram, HistogramMaker>::new_with_constructor(
            latency_histogram as HistogramMaker,
        );
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
        self.requests
            .get_or_create(&RequestLabels {
                dialect: dialect.to_string(),
                operation: operation.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                dialect: dialect.to_string(),
                operation: operation.to_string(),
            })
            .observe(elapsed.as_secs_f64());
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
