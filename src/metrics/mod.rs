//! Every metric syncwatch exports is defined and registered here. Domain metrics come
//! from the scanner's latest [`Snapshot`], read at scrape time by a `Collector`; self
//! metrics are ordinary instruments updated where the work happens.

mod labels;
mod server;
mod snapshot;

use std::sync::{Arc, RwLock};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

pub use labels::{LabelCapper, OVERFLOW_LABEL};
pub use server::MetricsServer;
pub use snapshot::{Family, HistogramData, Snapshot, DOMAIN_FAMILIES};

/// Default duration buckets (seconds): from one second to six hours.
pub const DEFAULT_DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
    21600.0,
];

/// Default dispatch-delay buckets (seconds).
pub const DEFAULT_DISPATCH_DELAY_BUCKETS: &[f64] =
    &[0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// The upkeep tasks beside the scans, the `task` label of
/// `syncwatch_maintenance_errors_total`.
pub const MAINTENANCE_TASKS: &[&str] = &["repair", "checkpoint", "retention", "learn"];

/// HTTP request duration buckets (seconds).
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The registry and every self-metric instrument; clones share them.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    pub up: IntGauge,
    pub last_scan_duration: Gauge,
    pub last_scan_success: Gauge,
    pub scan_errors: IntCounter,
    pub scanner_leader: IntGauge,
    pub label_overflow: IntCounter,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub baseline_progress: Gauge,
    pub maintenance_errors: IntCounterVec,
    pub last_repair_success: Gauge,
    pub pruned_runs: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let snapshot = Arc::new(RwLock::new(Arc::new(Snapshot::default())));
        let up = IntGauge::new(
            "syncwatch_up",
            "1 if the last scan succeeded (the store answered every query), 0 if it failed.",
        )
        .expect("valid metric");
        let last_scan_duration = Gauge::new(
            "syncwatch_last_scan_duration_seconds",
            "Wall-clock seconds the last scan of the store took.",
        )
        .expect("valid metric");
        let last_scan_success = Gauge::new(
            "syncwatch_last_scan_success_timestamp_seconds",
            "Unix time at which the last successful scan finished.",
        )
        .expect("valid metric");
        let scan_errors = IntCounter::new(
            "syncwatch_scan_errors_total",
            "Scans that failed (store unreachable, query error or timeout).",
        )
        .expect("valid metric");
        let scanner_leader = IntGauge::new(
            "syncwatch_scanner_leader",
            "1 if this replica holds the scanner lease and exports the domain metrics.",
        )
        .expect("valid metric");
        let label_overflow = IntCounter::new(
            "syncwatch_label_overflow_total",
            "Connectors reported under connector=\"other\" because the connector label cap was reached.",
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "syncwatch_build_info",
                "Always 1; the version label says which syncwatch build runs.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let http_requests = IntCounterVec::new(
            Opts::new(
                "syncwatch_http_requests_total",
                "API requests served, by route template, method and status code.",
            ),
            &["route", "method", "code"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "syncwatch_http_request_duration_seconds",
                "API request latency in seconds, by route template, method and status code.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["route", "method", "code"],
        )
        .expect("valid metric");

        let baseline_progress = Gauge::new(
            "syncwatch_baseline_progress_ratio",
            "How far the leader's build of its totals from the table has come, from 0 to 1 \
             (by completion time); domain counters are exported once it reaches 1.",
        )
        .expect("valid metric");
        let maintenance_errors = IntCounterVec::new(
            Opts::new(
                "syncwatch_maintenance_errors_total",
                "Failed upkeep steps beside the scans, by task (repair, checkpoint, retention, \
                 learn); they never fail a scan.",
            ),
            &["task"],
        )
        .expect("valid metric");
        for task in MAINTENANCE_TASKS {
            maintenance_errors.with_label_values(&[task]);
        }
        let last_repair_success = Gauge::new(
            "syncwatch_last_repair_success_timestamp_seconds",
            "Unix time at which the last repair sweep (the totals re-aggregated from the \
             table, merged by maximum) finished.",
        )
        .expect("valid metric");
        let pruned_runs = IntCounter::new(
            "syncwatch_pruned_runs_total",
            "Terminal runs hard-deleted from the table by --retention.",
        )
        .expect("valid metric");

        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(DomainCollector::new(snapshot.clone())),
            Box::new(up.clone()),
            Box::new(last_scan_duration.clone()),
            Box::new(last_scan_success.clone()),
            Box::new(scan_errors.clone()),
            Box::new(scanner_leader.clone()),
            Box::new(label_overflow.clone()),
            Box::new(build_info),
            Box::new(http_requests.clone()),
            Box::new(http_duration.clone()),
            Box::new(baseline_progress.clone()),
            Box::new(maintenance_errors.clone()),
            Box::new(last_repair_success.clone()),
            Box::new(pruned_runs.clone()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            snapshot,
            up,
            last_scan_duration,
            last_scan_success,
            scan_errors,
            scanner_leader,
            label_overflow,
            http_requests,
            http_duration,
            baseline_progress,
            maintenance_errors,
            last_repair_success,
            pruned_runs,
        }
    }

    /// Log and count a failed upkeep step (`task` is one of [`MAINTENANCE_TASKS`]).
    pub fn maintenance_failed(&self, task: &str, error: &dyn std::fmt::Display) {
        tracing::warn!(task, error = %error, "scanner upkeep failed; the scan goes on");
        self.maintenance_errors.with_label_values(&[task]).inc();
    }

    /// Swap in a new snapshot; scrapes after this see it whole.
    pub fn publish(&self, snapshot: Snapshot) {
        let mut slot = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        *slot = Arc::new(snapshot);
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        encode(&self.registry.gather())
    }

    /// Every metric family, for other exporters (OTLP).
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }

    /// Only the domain metrics (for golden tests and `scan --once` comparisons).
    pub fn render_domain(&self) -> String {
        encode(&self.snapshot().families())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn encode(families: &[MetricFamily]) -> String {
    let mut buffer = Vec::new();
    if let Err(e) = TextEncoder::new().encode(families, &mut buffer) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

/// Reads the current snapshot at scrape time. It never touches the database.
struct DomainCollector {
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    descs: Vec<Desc>,
}

impl DomainCollector {
    fn new(snapshot: Arc<RwLock<Arc<Snapshot>>>) -> Self {
        let descs = DOMAIN_FAMILIES
            .iter()
            .map(|family| {
                Desc::new(
                    family.name.to_owned(),
                    family.help.to_owned(),
                    family.labels.iter().map(|l| (*l).to_owned()).collect(),
                    Default::default(),
                )
                .expect("valid metric description")
            })
            .collect();
        Self { snapshot, descs }
    }
}

impl Collector for DomainCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snapshot = self
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        snapshot.families()
    }
}
