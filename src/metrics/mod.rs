//! Every metric syncwatch exports is defined and registered here. Domain metrics come
//! from the scanner's latest [`Snapshot`], read at scrape time by a `Collector`; self
//! metrics are ordinary instruments updated where the work happens.

mod exposition;
mod labels;
mod server;
mod snapshot;
mod text;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

pub use exposition::{accepts_gzip, Exposition};
pub use labels::{LabelCapper, OVERFLOW_LABEL};
pub use server::MetricsServer;
pub use snapshot::{Family, HistogramData, Label, Snapshot, DOMAIN_FAMILIES};

/// Default duration buckets (seconds): from one second to six hours.
pub const DEFAULT_DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
    21600.0,
];

/// Default dispatch-delay buckets (seconds).
pub const DEFAULT_DISPATCH_DELAY_BUCKETS: &[f64] =
    &[0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// The scanner's upkeep steps beside its scans, the `task` label of
/// `syncwatch_maintenance_errors_total` (each zero-filled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Maintenance {
    /// A repair sweep (the totals re-aggregated from the table, merged by maximum).
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

    pub fn as_str(self) -> &'static str {
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
    plain_requested: Arc<AtomicI64>,
    pub up: IntGauge,
    pub last_scan_duration: Gauge,
    pub last_scan_success: Gauge,
    pub scan_errors: IntCounter,
    pub scanner_leader: IntGauge,
    pub label_overflow: IntCounter,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub build_progress: Gauge,
    pub maintenance_errors: IntCounterVec,
    pub last_repair_success: Gauge,
    pub pruned_runs: IntCounter,
    pub exposition_series: IntGauge,
    pub exposition_bytes: IntGaugeVec,
    /// `public_url` of the status page (`--public-url`); the alert rules build their
    /// `status_url` annotation from it.
    pub ui_info: IntGaugeVec,
}

/// A published snapshot and, once encoded, its exposition (and, once a scrape without
/// gzip asked for it and the text was not kept, the text decompressed once).
struct Published {
    snapshot: Arc<Snapshot>,
    exposition: OnceLock<Arc<Exposition>>,
    plain: OnceLock<Arc<Vec<u8>>>,
}

impl Published {
    fn new(snapshot: Snapshot) -> Arc<Self> {
        Arc::new(Self {
            snapshot: Arc::new(snapshot),
            exposition: OnceLock::new(),
            plain: OnceLock::new(),
        })
    }
}

/// How long after a scrape without gzip the text of each new snapshot is kept encoded.
const KEEP_TEXT_FOR_SECS: i64 = 600;

/// What encoding a snapshot needs besides the snapshot: the size gauges, and when a
/// scrape last asked for the text.
#[derive(Clone)]
struct EncodeState {
    series: IntGauge,
    bytes: IntGaugeVec,
    /// Unix seconds of the last scrape without gzip; 0 for never.
    plain_requested: Arc<AtomicI64>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
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
             table, merged by maximum) finished.",
        )
        .expect("valid metric");
        let pruned_runs = IntCounter::new(
            "syncwatch_pruned_runs_total",
            "Terminal runs hard-deleted from the table by --retention.",
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
                "Bytes of the domain section of the last published snapshot's exposition, by encoding (identity, gzip).",
            ),
            &["encoding"],
        )
        .expect("valid metric");
        for encoding in ["identity", "gzip"] {
            exposition_bytes.with_label_values(&[encoding]);
        }

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
            Box::new(exposition_series.clone()),
            Box::new(exposition_bytes.clone()),
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
            plain_requested: Arc::default(),
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
            exposition_series,
            exposition_bytes,
            ui_info,
        }
    }

    /// Log and count a failed upkeep step.
    pub fn maintenance_failed(&self, task: Maintenance, error: &dyn std::fmt::Display) {
        let task = task.as_str();
        tracing::warn!(task, error = %error, "scanner upkeep failed; the scan goes on");
        self.maintenance_errors.with_label_values(&[task]).inc();
    }

    /// Swap in a new snapshot; scrapes after this see it whole. Its exposition is encoded
    /// once, on the encoder thread (a scrape that comes first encodes it itself; either
    /// way once).
    pub fn publish(&self, snapshot: Snapshot) {
        let published = Published::new(snapshot);
        let previous = {
            let mut slot = self.published.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *slot, published.clone())
        };
        let encoder = self.encoder.get_or_init(|| start_encoder(self));
        // Freeing the previous snapshot (tens of thousands of map entries) is the encoder
        // thread's work too, not the scan's. When the encoder is gone, it is freed here
        // and the next scrape encodes the new one instead.
        let _ = encoder.send(Job::Retire(previous));
        let _ = encoder.send(Job::Encode(published));
    }

    fn current(&self) -> Arc<Published> {
        self.published
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn encode_state(&self) -> EncodeState {
        EncodeState {
            series: self.exposition_series.clone(),
            bytes: self.exposition_bytes.clone(),
            plain_requested: self.plain_requested.clone(),
        }
    }

    /// `published`'s exposition, encoding it if nobody has yet.
    fn encoded(&self, published: &Arc<Published>) -> Arc<Exposition> {
        encode_once(published, &self.encode_state())
    }

    /// The domain section as text: stored, or decompressed once per snapshot. Asking
    /// keeps the text of the next snapshots encoded for [`KEEP_TEXT_FOR_SECS`].
    fn with_domain_text<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        self.plain_requested.store(unix_now(), Ordering::Relaxed);
        let published = self.current();
        let exposition = self.encoded(&published);
        if exposition.text.len() == exposition.text_len {
            return f(&exposition.text);
        }
        let text = published
            .plain
            .get_or_init(|| Arc::new(exposition.plain().into_owned()));
        f(text)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current().snapshot.clone()
    }

    /// The domain section of the current snapshot, encoded (once).
    pub fn domain_exposition(&self) -> Arc<Exposition> {
        self.encoded(&self.current())
    }

    /// The self metrics, encoded now (a few dozen samples).
    fn self_text(&self) -> Vec<u8> {
        exposition::text(&self.registry.gather())
    }

    /// The whole exposition as text: the stored domain section, then the self metrics.
    pub fn render_bytes(&self) -> Vec<u8> {
        let own = self.self_text();
        self.with_domain_text(|domain| {
            let mut body = Vec::with_capacity(domain.len() + own.len());
            body.extend_from_slice(domain);
            body.extend_from_slice(&own);
            body
        })
    }

    /// The whole exposition gzipped: the stored gzip member of the domain section, then a
    /// member for the self metrics.
    pub fn render_gzip(&self) -> Vec<u8> {
        let domain = self.domain_exposition();
        let own = exposition::gzip(&self.self_text());
        let mut body = Vec::with_capacity(domain.gzip.len() + own.len());
        body.extend_from_slice(&domain.gzip);
        body.extend_from_slice(&own);
        body
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        String::from_utf8(self.render_bytes()).unwrap_or_default()
    }

    /// Every metric family, for other exporters (OTLP).
    pub fn gather(&self) -> Vec<MetricFamily> {
        let mut families = self.snapshot().families();
        families.extend(self.registry.gather());
        families
    }

    /// Only the domain metrics (for golden tests and `scan --once` comparisons).
    pub fn render_domain(&self) -> String {
        self.with_domain_text(|text| String::from_utf8_lossy(text).into_owned())
    }
}

/// `published`'s exposition, encoded by whoever comes first (the encoder thread, or a
/// scrape that arrives before it), with the size gauges set.
fn encode_once(published: &Arc<Published>, state: &EncodeState) -> Arc<Exposition> {
    published
        .exposition
        .get_or_init(|| {
            let asked = state.plain_requested.load(Ordering::Relaxed);
            let keep_text = unix_now() - asked <= KEEP_TEXT_FOR_SECS;
            let exposition = Exposition::from_snapshot(&published.snapshot, keep_text);
            state.series.set(exposition.series as i64);
            state
                .bytes
                .with_label_values(&["identity"])
                .set(exposition.text_len as i64);
            state
                .bytes
                .with_label_values(&["gzip"])
                .set(exposition.gzip.len() as i64);
            Arc::new(exposition)
        })
        .clone()
}

/// The encoder thread's work.
enum Job {
    /// Encode a published snapshot (skipped when a newer one is queued behind it).
    Encode(Arc<Published>),
    /// Free a snapshot that is no longer published (freed here unless a scrape still
    /// holds it).
    Retire(Arc<Published>),
}

/// One long-lived thread encodes each published snapshot, newest first (an older one
/// still queued is skipped): not the scanner's task, and one thread rather than a pool,
/// so the large, short-lived encoding buffers reuse one allocator arena instead of
/// spreading over many. It holds no `Metrics` (only the gauges), so it ends when the last
/// clone is dropped.
fn start_encoder(metrics: &Metrics) -> std::sync::mpsc::Sender<Job> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let state = metrics.encode_state();
    let spawned = std::thread::Builder::new()
        .name("syncwatch-encoder".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut newest = None;
                for job in std::iter::once(first).chain(rx.try_iter()) {
                    match job {
                        Job::Encode(published) => newest = Some(published),
                        Job::Retire(previous) => drop(previous),
                    }
                }
                if let Some(published) = newest {
                    encode_once(&published, &state);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the encoder thread; scrapes will encode");
    }
    tx
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
