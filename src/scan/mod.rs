//! The scanner: a loop around one testable step, [`Scanner::scan_once`], that derives the
//! domain metrics from the store and publishes them as one snapshot.
//!
//! Counters and histograms start from a baseline aggregate computed in SQL; after that a
//! scan reads only the runs completed since the previous scan's window start, with an
//! overlap (`late_commit_window`) and de-duplication by run id, so a run whose transaction
//! commits late (inside the window) is counted exactly once. A periodic re-baseline
//! repairs anything missed and never lowers a counter. `docs/metrics.md` has the details.

mod lease;
mod state;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use lease::{Leadership, Lease, LEASE_KEY};
pub use state::{build_snapshot, Connections, SnapshotInputs, Totals, NO_TRIGGER};

use crate::clock::Clock;
use crate::domain::Action;
use crate::metrics::{LabelCapper, Metrics, Snapshot};
use crate::store::{Change, Store, StoreError, StuckCutoffs};
use crate::telemetry::otlp::{run_span, SpanSink};

#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub interval: Duration,
    pub late_commit_window: Duration,
    pub rebaseline_interval: Duration,
    pub stuck_scheduled_after: Duration,
    pub stuck_in_progress_after: Duration,
    pub max_run_duration: Duration,
    pub reap_stuck_after: Option<Duration>,
    pub top_failing_connections: usize,
    pub max_connectors: usize,
    pub duration_buckets: Vec<f64>,
    pub dispatch_delay_buckets: Vec<f64>,
    /// Longest a scan may take before it is abandoned and counted as an error.
    pub timeout: Duration,
    /// Start from the saved totals (the store's checkpoint) when starting or gaining the
    /// lease, and save them after each baseline. Off for `scan --once`, which only reads.
    pub checkpoint: bool,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            late_commit_window: Duration::from_secs(300),
            rebaseline_interval: Duration::from_secs(3600),
            stuck_scheduled_after: Duration::from_secs(15 * 60),
            stuck_in_progress_after: Duration::from_secs(30 * 60),
            max_run_duration: Duration::from_secs(6 * 3600),
            reap_stuck_after: None,
            top_failing_connections: 50,
            max_connectors: 500,
            duration_buckets: crate::metrics::DEFAULT_DURATION_BUCKETS.to_vec(),
            dispatch_delay_buckets: crate::metrics::DEFAULT_DISPATCH_DELAY_BUCKETS.to_vec(),
            timeout: Duration::from_secs(30),
            checkpoint: true,
        }
    }
}

/// What one scan did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanReport {
    pub leader: bool,
    /// A full baseline (startup, leadership gained, or periodic re-baseline) ran.
    pub baselined: bool,
    /// That baseline started from the checkpoint and aggregated only what completed
    /// after it.
    pub from_checkpoint: bool,
    /// Terminal runs counted by this scan's incremental read.
    pub new_terminal_runs: usize,
    pub reaped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("scan timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Lease(String),
}

struct ScanState {
    totals: Totals,
    connections: Connections,
    /// Runs counted with `completed_at` after `low`, so a re-read does not count twice.
    seen: HashMap<Uuid, DateTime<Utc>>,
    /// Lower bound (exclusive) of the next incremental read.
    low: DateTime<Utc>,
    baselined_at: Instant,
}

pub struct Scanner {
    store: Store,
    config: ScanConfig,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    lease: Lease,
    capper: LabelCapper,
    state: Option<ScanState>,
    spans: Option<SpanSink>,
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Scanner {
    pub fn new(
        store: Store,
        lease: Lease,
        config: ScanConfig,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> Self {
        let capper = LabelCapper::new(config.max_connectors);
        Self {
            store,
            config,
            clock,
            metrics,
            lease,
            capper,
            state: None,
            spans: None,
        }
    }

    /// Emit a span for every run this scanner sees finish (incremental reads only, so a
    /// restart does not emit the history again).
    pub fn with_spans(mut self, sink: SpanSink) -> Self {
        self.spans = Some(sink);
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// One scan, with its self metrics recorded. On error the last snapshot stays
    /// published (scrapes keep the last known values) and `syncwatch_up` drops to 0.
    pub async fn scan_once(&mut self) -> Result<ScanReport, ScanError> {
        let started = Instant::now();
        let timeout = self.config.timeout;
        let result = match tokio::time::timeout(timeout, self.scan_inner()).await {
            Ok(result) => result,
            Err(_) => Err(ScanError::Timeout(timeout)),
        };
        self.metrics
            .last_scan_duration
            .set(started.elapsed().as_secs_f64());
        match &result {
            Ok(report) => {
                self.metrics.up.set(1);
                self.metrics
                    .last_scan_success
                    .set(self.clock.now().timestamp_millis() as f64 / 1000.0);
                self.metrics.scanner_leader.set(i64::from(report.leader));
            }
            Err(e) => {
                tracing::warn!(error = %e, "scan failed");
                self.metrics.up.set(0);
                self.metrics.scan_errors.inc();
                // The state stays: it is only changed after a scan's reads completed
                // (no await between the reads and the update), so a failed or abandoned
                // scan leaves it consistent and the next scan continues incrementally.
            }
        }
        result
    }

    async fn scan_inner(&mut self) -> Result<ScanReport, ScanError> {
        let leader = match self.lease.check().await {
            Leadership::Leader => true,
            Leadership::Follower => false,
            Leadership::Unknown(why) => {
                // The store cannot be reached, so no replica can take the lease now: keep
                // the last snapshot published (scrapes see the last known values, with
                // `syncwatch_up 0`), and baseline again once the lease is back.
                self.state = None;
                return Err(ScanError::Lease(why));
            }
        };
        if !leader {
            // Stop exporting domain metrics first: another replica may lead now, and a
            // store error below must not leave the old snapshot published.
            self.state = None;
            self.metrics.publish(Snapshot::default());
            self.metrics.scanner_leader.set(0);
            self.store.ping().await?;
            return Ok(ScanReport::default());
        }
        let mut report = ScanReport {
            leader: true,
            ..ScanReport::default()
        };
        let db_now = self.store.db_now().await?;
        let window = chrono_duration(self.config.late_commit_window);
        let due = self
            .state
            .as_ref()
            .is_none_or(|s| s.baselined_at.elapsed() >= self.config.rebaseline_interval);
        if due {
            // Starting or gaining the lease: continue from the checkpoint when there is a
            // usable one. The periodic re-baseline always reads everything (it is the
            // repair for whatever the incremental reads and the checkpoint missed).
            let use_checkpoint = self.config.checkpoint && self.state.is_none();
            let (fresh, from_checkpoint) = self.baseline(db_now - window, use_checkpoint).await?;
            report.from_checkpoint = from_checkpoint;
            let merged = match self.state.take() {
                Some(mut old) => {
                    old.totals.max_with(&fresh.totals);
                    ScanState {
                        totals: old.totals,
                        ..fresh
                    }
                }
                None => fresh,
            };
            self.state = Some(merged);
            report.baselined = true;
        } else if let Some(state) = self.state.as_mut() {
            let runs = self.store.terminal_after(state.low).await?;
            for run in &runs {
                if state.seen.contains_key(&run.id) {
                    continue;
                }
                state.seen.insert(run.id, run.completed_at);
                state.totals.add_run(run);
                state.connections.add_run(run);
                report.new_terminal_runs += 1;
                if let Some(sink) = &self.spans {
                    sink.send(run_span(run));
                }
            }
            let low = db_now - window;
            if low > state.low {
                state.low = low;
                state.seen.retain(|_, at| *at > low);
            }
        }

        let now = self.clock.now();
        let cutoffs = StuckCutoffs {
            scheduled_before: now - chrono_duration(self.config.stuck_scheduled_after),
            idle_before: now - chrono_duration(self.config.stuck_in_progress_after),
            started_before: now - chrono_duration(self.config.max_run_duration),
        };
        if let Some(after) = self.config.reap_stuck_after {
            report.reaped = self.reap(now, after).await?;
        }
        let active = self.store.active_runs(&cutoffs).await?;
        let Some(state) = self.state.as_ref() else {
            return Ok(report);
        };
        let (snapshot, overflowed) = build_snapshot(
            &SnapshotInputs {
                totals: &state.totals,
                connections: &state.connections,
                active: &active,
                top_failing: self.config.top_failing_connections,
            },
            &mut self.capper,
        );
        self.metrics.label_overflow.inc_by(overflowed);
        self.metrics.publish(snapshot);
        Ok(report)
    }

    /// Totals from SQL for everything completed at or before `settled` (or from the
    /// checkpoint plus what completed between it and `settled`), then the runs after it
    /// one by one (remembered, so the next scan does not count them again). Saves the
    /// totals at `settled` as the new checkpoint. Also says whether the checkpoint was used.
    async fn baseline(
        &self,
        settled: DateTime<Utc>,
        use_checkpoint: bool,
    ) -> Result<(ScanState, bool), ScanError> {
        let (durations, delays) = (
            &self.config.duration_buckets,
            &self.config.dispatch_delay_buckets,
        );
        let saved = if use_checkpoint {
            self.store
                .load_checkpoint()
                .await?
                .filter(|(upto, _)| *upto <= settled)
                .and_then(|(upto, text)| Some((upto, Totals::from_json(&text, durations, delays)?)))
        } else {
            None
        };
        let from_checkpoint = saved.is_some();
        let (after, mut totals) = match saved {
            Some((upto, totals)) => (Some(upto), totals),
            None => (None, Totals::new(durations, delays)),
        };
        let aggregates = self
            .store
            .terminal_aggregate(after, settled, durations, delays)
            .await?;
        for row in &aggregates {
            totals.add_aggregate(row);
        }
        let checkpoint = self.config.checkpoint.then(|| totals.to_json());
        let connections = Connections::from_states(self.store.connection_states().await?);
        let recent = self.store.terminal_after(settled).await?;
        let mut seen = HashMap::new();
        for run in &recent {
            if seen.insert(run.id, run.completed_at).is_none() {
                totals.add_run(run);
            }
        }
        if let Some(json) = checkpoint {
            // Losing a checkpoint only costs the next start a full baseline.
            if let Err(e) = self.store.save_checkpoint(settled, &json).await {
                tracing::warn!(error = %e, "cannot save the scanner checkpoint");
            }
        }
        Ok((
            ScanState {
                totals,
                connections,
                seen,
                low: settled,
                baselined_at: Instant::now(),
            },
            from_checkpoint,
        ))
    }

    /// Fail runs stuck for longer than `after`, through the API's compare-and-set.
    async fn reap(&self, now: DateTime<Utc>, after: Duration) -> Result<usize, ScanError> {
        let cutoff = now - chrono_duration(after);
        let cutoffs = StuckCutoffs {
            scheduled_before: cutoff,
            idle_before: cutoff,
            started_before: now - chrono_duration(self.config.max_run_duration.max(after)),
        };
        let ids = self.store.stuck_runs(&cutoffs).await?;
        let mut reaped = 0;
        for id in ids {
            let change = Change {
                error: Some(format!(
                    "reaped by syncwatch: stuck (not started, no heartbeat, or running too \
                     long) for more than {}s (--reap-stuck-after)",
                    after.as_secs()
                )),
                ..Change::new(Action::Fail)
            };
            match self.store.apply(id, &change).await {
                Ok(_) => reaped += 1,
                // Finished or deleted meanwhile: the orchestrator won the race.
                Err(StoreError::InvalidTransition(_) | StoreError::NotFound) => {}
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if reaped > 0 {
            tracing::warn!(reaped, "failed stuck runs");
        }
        Ok(reaped)
    }

    /// Scan every `interval` until `shutdown` resolves, then release the lease.
    pub async fn run_until_stopped(mut self, shutdown: impl Future<Output = ()>) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    let _ = self.scan_once().await;
                }
            }
        }
        self.lease.release().await;
    }
}
