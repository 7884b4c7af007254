//! What the integration suite and the benchmarks reach into that is not the service's
//! API: a clock that moves only when told to, the scanner's pure state and snapshot
//! builder, hooks that force or count full snapshot builds, the domain exposition as text,
//! and a few constants the tests compare against. Hidden from the documentation; nothing
//! in the service uses this module.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::clock::Clock;
use crate::metrics::{HistogramData, Metrics};
use crate::scan::Scanner;
use crate::startup::Application;

pub use crate::metrics::exposition::Exposition;
pub use crate::metrics::labels::{LabelCapper, OVERFLOW_LABEL};
pub use crate::metrics::snapshot::{Family, DOMAIN_FAMILIES};
pub use crate::scan::snapshot::{SnapshotBuilder, SnapshotInputs};
pub use crate::scan::state::{
    Changes, Connections, Learned, LearnedRules, LearnedSignals, LearnedState, Missed, Totals,
};
pub use crate::store::sql::{postgres_scanner_queries, postgres_transition};

/// The OpenAPI document `/openapi.json` serves.
pub const OPENAPI_JSON: &str = crate::api::OPENAPI_JSON;
/// The status page's rows per page.
pub const PAGE_SIZE: usize = crate::ui::PAGE_SIZE;
/// The status page's `Content-Security-Policy`.
pub const CONTENT_SECURITY_POLICY: &str = crate::ui::CONTENT_SECURITY_POLICY;

/// The attributes of an OTLP span, as a map from key to value (for the OTLP tests).
#[cfg(feature = "otlp")]
pub use crate::telemetry::otlp::spans::span_attributes;

/// A clock that moves only when told to.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every `(method, path template)` the API's router serves: the list it is built from.
pub fn api_routes() -> Vec<(&'static str, &'static str)> {
    crate::api::routes()
        .into_iter()
        .map(|route| (route.method, route.path))
        .collect()
}

/// What tests and benchmarks ask of a [`Scanner`] beyond scanning.
pub trait ScannerExt {
    /// The metrics the scanner publishes into.
    fn metrics(&self) -> &Metrics;
    /// How many snapshots were built in full rather than by updating the previous one:
    /// the first, those after a repair sweep, and those that met a new connector or
    /// (connector, trigger) pair.
    fn full_snapshot_builds(&self) -> u64;
    /// Build the next snapshot in full rather than update the previous one, as after a
    /// repair sweep (for benchmarks comparing the two ways).
    fn rebuild_next_snapshot(&mut self);
}

impl ScannerExt for Scanner {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn full_snapshot_builds(&self) -> u64 {
        self.snapshots.full_builds()
    }

    fn rebuild_next_snapshot(&mut self) {
        self.snapshots.rebuild_next();
    }
}

/// What tests and benchmarks ask of [`Metrics`] beyond serving scrapes.
pub trait MetricsExt {
    /// Only the domain metrics, as text (golden tests, restart comparisons).
    fn render_domain(&self) -> String;
    /// The published snapshot's exposition, encoded once (text and gzip).
    fn domain_exposition(&self) -> Arc<Exposition>;
    /// The same in `format`.
    fn domain_exposition_in(&self, format: crate::metrics::Format) -> Arc<Exposition>;
}

impl MetricsExt for Metrics {
    fn render_domain(&self) -> String {
        self.with_domain_text(|text| String::from_utf8_lossy(text).into_owned())
    }

    fn domain_exposition(&self) -> Arc<Exposition> {
        Metrics::domain_exposition(self)
    }

    fn domain_exposition_in(&self, format: crate::metrics::Format) -> Arc<Exposition> {
        Metrics::domain_exposition_in(self, format)
    }
}

/// An empty histogram with these bucket bounds.
pub fn histogram(bounds: &[f64]) -> HistogramData {
    HistogramData::empty(bounds)
}

/// The API's largest metadata object, in bytes.
pub const MAX_METADATA_BYTES: usize = crate::domain::MAX_METADATA_BYTES;
/// The longest `cloud_task_id`, in characters.
pub const MAX_CLOUD_TASK_ID_CHARS: usize = crate::domain::MAX_CLOUD_TASK_ID_CHARS;

/// The application on a listener the caller bound (port 0 in tests), over `store`.
pub fn application(
    listener: tokio::net::TcpListener,
    store: crate::store::Store,
    settings: &crate::api::ApiSettings,
    metrics: Metrics,
) -> anyhow::Result<Application> {
    Application::from_parts(listener, store, settings, metrics)
}

/// Where an application built by [`application`] listens.
pub fn local_addr(app: &Application) -> std::net::SocketAddr {
    app.local_addr()
}
