//! Every metric syncwatch exports is defined and registered here. Domain metrics come
//! from the scanner's latest [`Snapshot`], read at scrape time by a `Collector`; self
//! metrics are ordinary instruments updated where the work happens.

pub(crate) mod exposition;
mod histogram;
pub(crate) mod labels;
pub(crate) mod openmetrics;
mod published;
pub use published::Rendered;
use published::{Job, Published, Requested};
mod server;
pub(crate) mod snapshot;
mod text;

use std::sync::{Arc, OnceLock, RwLock};

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

pub(crate) use exposition::{accepts_gzip, Exposition};
pub use histogram::Exemplar;
pub(crate) use labels::{LabelCapper, OVERFLOW_LABEL};
pub use openmetrics::Format;
pub use server::MetricsServer;
pub use snapshot::{HistogramData, Label, Snapshot};

/// The scanner's upkeep steps beside its scans, the `task` label of
/// `syncwatch_maintenance_errors_total` (each zero-filled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Maintenance {
    /// A repair sweep (the totals re-aggregated from the table; the runs the window missed added).
    Repair,
    /// Saving the totals and connection states.
    Checkpoint,
    /// Deleting terminal runs older than `--retention`.
    Retention,
    /// Reading what a connection's learned signals start from.
    Learn,
}

impl Maintenance {
    const ALL: [Maintenance; 4] = [
        Maintenance::Repair,
        Maintenance::Checkpoint,
        Maintenance::Retention,
        Maintenance::Learn,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Maintenance::Repair => "repair",
            Maintenance::Checkpoint => "checkpoint",
            Maintenance::Retention => "retention",
            Maintenance::Learn => "learn",
        }
    }
}

/// HTTP request duration buckets (seconds).
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The registry and every self-metric instrument; clones share them.
#[derive(Clone)]
pub struct Metrics {
    /// The self metrics (the domain metrics are the published snapshot's).
    registry: Registry,
    published: Arc<RwLock<Arc<Published>>>,
    encoder: Arc<OnceLock<std::sync::mpsc::Sender<Job>>>,
    requested: Arc<Requested>,
    pub up: IntGauge,
    pub last_scan_duration: Gauge,
    pub last_scan_success: Gauge,
    pub scan_errors: IntCounter,
    pub scanner_leader: IntGauge,
    pub label_overflow: IntCounter,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub build_progress: Gauge,
    maintenance_errors: IntCounterVec,
    pub last_repair_success: Gauge,
    pub pruned_runs: IntCounter,
    rows_skipped: IntCounterVec,
    exposition_series: IntGauge,
    exposition_bytes: IntGaugeVec,
    read_replica_lag: prometheus::GaugeVec,
    read_fallback: IntGaugeVec,
    /// Scans that read every live run, by reason.
    pub live_full_reads: IntCounterVec,
    /// Live runs the scanner keeps between scans.
    pub live_runs_kept: IntGauge,
    /// `public_url` of the status page (`--public-url`); the alert rules build their
    /// `status_url` annotation from it.
    pub ui_info: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let published = Arc::new(RwLock::new(Published::new(Snapshot::default())));
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

        let build_progress = Gauge::new(
            "syncwatch_build_progress_ratio",
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
        for task in Maintenance::ALL {
            maintenance_errors.with_label_values(&[task.as_str()]);
        }
        let last_repair_success = Gauge::new(
            "syncwatch_last_repair_success_timestamp_seconds",
            "Unix time at which the last repair sweep (the totals re-aggregated from the \
             table, the runs the window missed added) finished.",
        )
        .expect("valid metric");
        let pruned_runs = IntCounter::new(
            "syncwatch_pruned_runs_total",
            "Terminal runs hard-deleted from the table by --retention.",
        )
        .expect("valid metric");

        let rows_skipped = IntCounterVec::new(
            Opts::new(
                "syncwatch_rows_skipped_total",
                "Rows of the sync log syncwatch left out because a value does not decode \
                 (another service wrote it outside the contract), by reason (wrong_type, \
                 unknown_value, null, out_of_range) and column; each row counted once.",
            ),
            &["reason", "column"],
        )
        .expect("valid metric");

        let exposition_series = IntGauge::new(
            "syncwatch_exposition_series",
            "Samples in the domain section of the last published snapshot's exposition (each histogram bucket, sum and count is one): the cardinality scrapes pay for.",
        )
        .expect("valid metric");
        let exposition_bytes = IntGaugeVec::new(
            Opts::new(
                "syncwatch_exposition_bytes",
                "Bytes of the domain section of the last published snapshot's exposition encoded in a format, by format (text, openmetrics) and encoding (identity, gzip); a format is encoded once scraped.",
            ),
            &["format", "encoding"],
        )
        .expect("valid metric");
        for encoding in ["identity", "gzip"] {
            exposition_bytes.with_label_values(&["text", encoding]);
        }

        let read_replica_lag = prometheus::GaugeVec::new(
            Opts::new(
                "syncwatch_read_replica_lag_seconds",
                "How far the read replica (--read-database-url) was behind its primary at the leader's last scan: the primary's commits it had not replayed, in seconds (0 when it had replayed all it received). Absent without a read replica.",
            ),
            &[],
        )
        .expect("valid metric");
        let read_fallback = IntGaugeVec::new(
            Opts::new(
                "syncwatch_read_fallback",
                "1 while the leader's scans read the primary because the read replica is down or further behind than --read-max-lag (--read-fallback-primary), else 0. Absent without --read-fallback-primary.",
            ),
            &[],
        )
        .expect("valid metric");
        let live_full_reads = IntCounterVec::new(
            Opts::new(
                "syncwatch_live_full_reads_total",
                "Scans that read every live run instead of only those created or started since the last scan, by reason: start (the first scan of a leadership), interval (every 5 minutes), drift (the runs kept disagreed with the live-run counts two scans in a row: a live run deleted, or changed without a new timestamp), capped (more than 100,000 live runs).",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for reason in ["start", "interval", "drift", "capped"] {
            live_full_reads.with_label_values(&[reason]);
        }
        let live_runs_kept = IntGauge::new(
            "syncwatch_live_runs_kept",
            "Live runs (scheduled or in progress) the leader's scanner keeps between scans for the learned signals.",
        )
        .expect("valid metric");
        let ui_info = IntGaugeVec::new(
            Opts::new(
                "syncwatch_ui_info",
                "Always 1 while the status page is served; public_url is its external base URL (--public-url), from which the alert rules build their status_url annotation.",
            ),
            &["public_url"],
        )
        .expect("valid metric");

        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(up.clone()),
            Box::new(last_scan_duration.clone()),
            Box::new(last_scan_success.clone()),
            Box::new(scan_errors.clone()),
            Box::new(scanner_leader.clone()),
            Box::new(label_overflow.clone()),
            Box::new(build_info),
            Box::new(http_requests.clone()),
            Box::new(http_duration.clone()),
            Box::new(build_progress.clone()),
            Box::new(maintenance_errors.clone()),
            Box::new(last_repair_success.clone()),
            Box::new(pruned_runs.clone()),
            Box::new(rows_skipped.clone()),
            Box::new(exposition_series.clone()),
            Box::new(exposition_bytes.clone()),
            Box::new(read_replica_lag.clone()),
            Box::new(read_fallback.clone()),
            Box::new(live_full_reads.clone()),
            Box::new(live_runs_kept.clone()),
            Box::new(ui_info.clone()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            published,
            encoder: Arc::default(),
            requested: Arc::default(),
            up,
            last_scan_duration,
            last_scan_success,
            scan_errors,
            scanner_leader,
            label_overflow,
            http_requests,
            http_duration,
            build_progress,
            maintenance_errors,
            last_repair_success,
            pruned_runs,
            rows_skipped,
            exposition_series,
            exposition_bytes,
            read_replica_lag,
            read_fallback,
            live_full_reads,
            live_runs_kept,
            ui_info,
        }
    }

    /// Count a scan that read every live run, and why.
    pub fn live_full_read(&self, reason: &str) {
        self.live_full_reads.with_label_values(&[reason]).inc();
    }

    /// Set `syncwatch_read_fallback` from where a scan reads (left absent while there is
    /// no fallback to report).
    pub fn scan_reads(&self, reads: crate::store::ScanReads) {
        let fallback = self.read_fallback.with_label_values(&[] as &[&str]);
        match reads {
            crate::store::ScanReads::Primary => {}
            crate::store::ScanReads::Replica => fallback.set(0),
            crate::store::ScanReads::Fallback => fallback.set(1),
        }
    }

    /// Set `syncwatch_read_replica_lag_seconds`.
    pub fn read_replica_lag(&self, lag: std::time::Duration) {
        self.read_replica_lag
            .with_label_values(&[] as &[&str])
            .set(lag.as_secs_f64());
    }

    /// Bring `syncwatch_rows_skipped_total` up to the store's count of skipped rows.
    pub fn rows_skipped(&self, skipped: &crate::store::SkippedRows) {
        for (reason, column, n) in skipped.counts() {
            let counter = self
                .rows_skipped
                .with_label_values(&[reason.as_str(), column.as_str()]);
            counter.inc_by(n.saturating_sub(counter.get()));
        }
    }

    /// Log and count a failed upkeep step.
    pub fn maintenance_failed(&self, task: Maintenance, error: &dyn std::fmt::Display) {
        let task = task.as_str();
        tracing::warn!(task, error = %error, "scanner upkeep failed; the scan goes on");
        self.maintenance_errors.with_label_values(&[task]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        String::from_utf8(self.render_bytes()).unwrap_or_default()
    }

    /// Every metric family, for other exporters (OTLP).
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.gather_from(&self.snapshot())
    }

    /// The same, with the domain families of `snapshot`.
    pub fn gather_from(&self, snapshot: &Snapshot) -> Vec<MetricFamily> {
        let mut families = snapshot.families();
        families.extend(self.registry.gather());
        families
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
