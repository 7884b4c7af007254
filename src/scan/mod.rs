//! The scanner: a loop around one testable step, [`Scanner::scan_once`], that derives the
//! domain metrics from the store and publishes them as one snapshot.
//!
//! A leader first builds its state from the table in bounded chunks (`build.rs`),
//! continuing from the checkpoint when there is one; until that has caught up only the
//! active-run gauges are exported. After that a scan reads only the runs completed since
//! the previous scan's window start, with an overlap (`late_commit_window`) and
//! de-duplication by internal key, so a run whose transaction commits late (inside the window)
//! is counted exactly once; a repair sweep, the checkpoint and retention run beside it in
//! bounded steps (`steady.rs`) and never fail a scan. `docs/metrics.md` has the details.

mod config;
mod error;
pub mod live;
pub(crate) mod phase;
pub(crate) mod snapshot;
pub(crate) mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
pub use config::ScanConfig;
pub use error::ScanError;
pub use phase::{prune_cutoff, prune_in_batches};
pub(crate) use snapshot::{SnapshotBuilder, SnapshotInputs};
pub use state::saved_with_connections;
pub(crate) use state::{Connections, LearnedRules, LearnedSignals, Totals};

use live::LiveSet;
use phase::{Build, Chunks, Steady, Step};

use crate::clock::Clock;
use crate::metrics::{Maintenance, Metrics, Snapshot};
use crate::store::{Leadership, Lease, Position, Store, StuckCutoffs, TerminalRun};

/// Told about every run the scanner sees finish (from its incremental reads only, so a
/// restart does not replay the history). The OTLP exporter turns them into spans.
pub trait RunObserver: Send + Sync + 'static {
    fn run_finished(&self, run: &TerminalRun);
}

/// What one scan did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanReport {
    pub leader: bool,
    /// The build caught up in this scan: the history is exported from now on.
    pub caught_up: bool,
    /// A repair sweep finished in this scan and was merged into the totals.
    pub repair_merged: bool,
    /// That build continued from the checkpoint.
    pub from_checkpoint: bool,
    /// Still building: nothing of the history is exported yet.
    pub building: bool,
    /// Terminal runs counted by this scan's incremental read.
    pub new_terminal_runs: usize,
    pub reaped: usize,
    /// Terminal runs deleted by retention in this scan.
    pub pruned: u64,
    /// Connections whose latest runs are still to be read for the learned signals (a chunk
    /// per scan after a start; until then they signal only from what this process saw).
    pub learning: bool,
}

/// Where the scanner stands with the table.
enum Phase {
    Building(Box<Build>, Chunks),
    Steady(Box<Steady>),
}

pub struct Scanner {
    /// What this scan reads through: `home`, or the primary's reads when a read replica
    /// is down or lags (`Store::for_scan`).
    store: Store,
    home: Store,
    config: ScanConfig,
    clock: Arc<dyn Clock>,
    pub(crate) metrics: Metrics,
    lease: Lease,
    pub(crate) snapshots: SnapshotBuilder,
    phase: Option<Phase>,
    /// The live runs kept between scans.
    live: LiveSet,
    observer: Option<Arc<dyn RunObserver>>,
    /// Whether the last lease check found another replica leading (said once per change).
    following: bool,
}

/// The most `syncwatch_build_progress_ratio` reads while the build has not published its
/// counters.
const BUILDING_PROGRESS_MAX: f64 = 0.99;

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
        let snapshots = SnapshotBuilder::new(config.max_connectors);
        Self {
            home: store.clone(),
            store,
            config,
            clock,
            metrics,
            lease,
            snapshots,
            phase: None,
            live: LiveSet::default(),
            observer: None,
            following: false,
        }
    }

    /// Tell `observer` about every run this scanner sees finish.
    pub fn with_observer(mut self, observer: Arc<dyn RunObserver>) -> Self {
        self.observer = Some(observer);
        self
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
        self.metrics.rows_skipped(self.store.skipped());
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
                // The state stays: it is only changed after a step's reads completed
                // (no await between the reads and the update), so a failed or abandoned
                // scan leaves it consistent and the next scan continues where it stood.
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
                // `syncwatch_up 0`), and start again from the checkpoint once the lease is
                // back.
                self.phase = None;
                return Err(ScanError::Lease(why));
            }
        };
        if leader == self.following {
            self.following = !leader;
            if self.following {
                tracing::info!(
                    "another replica holds the scanner lease of this table and mapping; this \
                     one serves the API and exports no domain metrics until it takes the lease"
                );
            }
        }
        if !leader {
            // Stop exporting domain metrics first: another replica may lead now, and a
            // store error below must not leave the old snapshot published.
            self.phase = None;
            self.metrics.publish(Snapshot::default());
            self.metrics.scanner_leader.set(0);
            self.store.catalogue().ping().await?;
            return Ok(ScanReport::default());
        }
        let mut report = ScanReport {
            leader: true,
            ..ScanReport::default()
        };
        let started = Instant::now();
        // On a read replica, runs are settled only up to what it has replayed: one
        // committed on the primary and replayed late is still read once.
        let point = self.home.for_scan().await?;
        self.store = point.store;
        self.metrics.scan_reads(point.reads);
        if let Some(lag) = point.lag {
            self.metrics.read_replica_lag(lag);
        }
        let settled = point.visible - chrono_duration(self.config.late_commit_window);
        if self.phase.is_none() {
            self.live = LiveSet::default();
            self.phase = Some(self.start().await?);
        }
        if let Some(Phase::Building(..)) = &self.phase {
            self.build(settled, started, &mut report).await?;
        } else {
            self.steady(settled, started, &mut report).await?;
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
        let (active, read) = self.read_live(point.visible, &cutoffs).await?;
        let signals = match self.phase.as_mut() {
            Some(Phase::Steady(steady)) => {
                let learned = &mut steady.connections.learned;
                learned.observe_active(self.live.read_now(&read));
                learned.signals(now, self.live.runs(), &self.config.learned_rules())
            }
            _ => LearnedSignals::default(),
        };
        // Until the build has caught up only the active-run gauges are exported: partial
        // counters would later jump and show as a burst of runs that never happened.
        let changes = match self.phase.as_mut() {
            Some(Phase::Steady(steady)) => steady.totals.take_changes(),
            _ => None,
        };
        let empty;
        let (totals, connections) = match &self.phase {
            Some(Phase::Steady(steady)) => (&steady.totals, &steady.connections),
            _ => {
                empty = (
                    Totals::with_rules(
                        &self.config.duration_buckets,
                        &self.config.dispatch_delay_buckets,
                        self.config.rules(),
                    ),
                    Connections::default(),
                );
                (&empty.0, &empty.1)
            }
        };
        let (snapshot, overflowed) = self.snapshots.build(&SnapshotInputs {
            totals,
            changes: changes.as_ref(),
            connections,
            active: &active,
            learned: &signals,
            top_failing: self.config.top_failing_connections,
        });
        self.metrics.label_overflow.inc_by(overflowed);
        if !self.lease.still_held() {
            // Stopped or stalled past the lease's deadline mid-scan: another replica may
            // lead now, so what this scan read is not published.
            self.phase = None;
            self.metrics.publish(Snapshot::default());
            return Err(ScanError::Lease(
                "the scanner lease expired during the scan".into(),
            ));
        }
        self.metrics.publish(snapshot);
        if report.caught_up {
            self.metrics.build_progress.set(1.0);
        }
        Ok(report)
    }

    /// Where a leader starts: from the checkpoint when there is a usable one (its totals,
    /// and its saved connection states), else from nothing.
    async fn start(&self) -> Result<Phase, ScanError> {
        let (durations, delays) = (
            &self.config.duration_buckets,
            &self.config.dispatch_delay_buckets,
        );
        let rules = self.config.rules();
        let mapping = self.store.catalogue().mapping_key();
        let checkpoint = if self.config.checkpoint {
            self.store.state().load_checkpoint().await?
        } else {
            None
        };
        let saved = match checkpoint {
            Some((upto, text)) => {
                let totals = Totals::from_json(&text, durations, delays, &rules, &mapping);
                if totals.is_none() {
                    tracing::warn!(
                        "scanner: the checkpoint was saved for another table, mapping, bucket \
                         layout or rule set; building from the table instead"
                    );
                }
                totals.map(|totals| (upto, totals))
            }
            None => None,
        };
        if saved.is_none() && self.config.checkpoint {
            // Another table or mapping, other buckets or rules, another version, or no
            // checkpoint at all: built anew from the table, after the old totals and the
            // connection states saved under them (keyed by what another mapping called a
            // connection) are forgotten.
            self.store.state().forget_checkpoint().await?;
        }
        let build = Box::new(match saved {
            Some((upto, (totals, connections_saved))) => {
                tracing::info!(settled_upto = %upto, "scanner: continuing from the checkpoint");
                Build::from_checkpoint(totals, upto, connections_saved)
            }
            None => Build::fresh(Totals::with_rules(durations, delays, rules)),
        });
        Ok(Phase::Building(build, Chunks::new(&self.config)))
    }

    /// How long a scan may spend building or on upkeep: half the interval (and of the
    /// scan timeout), so the scanner keeps its rhythm while it builds.
    fn budget(&self) -> Duration {
        self.config.interval.min(self.config.timeout) / 2
    }

    async fn build(
        &mut self,
        settled: DateTime<Utc>,
        started: Instant,
        report: &mut ScanReport,
    ) -> Result<(), ScanError> {
        let deadline = started + self.budget();
        let Some(Phase::Building(build, chunks)) = self.phase.as_mut() else {
            return Ok(());
        };
        report.from_checkpoint = build.from_checkpoint;
        let step = build.step(&self.store, chunks, settled, deadline).await?;
        // Below 1 until the counters are published: the walk of the connections comes
        // after the totals, and operators read 1 as "the numbers are live".
        self.metrics
            .build_progress
            .set(build.progress(settled).min(BUILDING_PROGRESS_MAX));
        let Step::CaughtUp { settled: upto } = step else {
            report.building = true;
            if self.config.checkpoint {
                // Saved only where the build stands between two instants: the checkpoint
                // counts everything completed up to a time.
                let whole = build.done_upto.as_ref().filter(|p| p.is_whole());
                if let Some(upto) = whole.map(|p| p.at) {
                    // Progress survives a restart; losing it only costs the next start
                    // the chunks since the last save. When the build follows saved
                    // connection states, the states it changed are saved with the totals
                    // (the next start continues both from this point).
                    let json = build
                        .totals
                        .to_json(build.follow_saved, &self.store.catalogue().mapping_key());
                    let states = if build.follow_saved {
                        let restored = &build.learned_restored;
                        (build.connections).states_of(&build.dirty, |id| restored.contains(id))
                    } else {
                        Vec::new()
                    };
                    match self
                        .store
                        .state()
                        .save_checkpoint(upto, &json, &states)
                        .await
                    {
                        Ok(()) if build.follow_saved => build.dirty.clear(),
                        Ok(()) => {}
                        Err(e) => self.metrics.maintenance_failed(Maintenance::Checkpoint, &e),
                    }
                }
            }
            return Ok(());
        };
        // What completed after the build's point (the window), in bounded pages.
        let mut recent = Vec::new();
        let mut from = Position::from(upto);
        loop {
            let page = (self.store.scan())
                .terminal_after(&from, None, Some(phase::WINDOW_ROWS))
                .await?;
            let full = page.len() as u64 >= phase::WINDOW_ROWS;
            if let Some(last) = page.last() {
                from = Position::after_run(last);
            }
            recent.extend(page);
            if !full {
                break;
            }
        }
        let Some(Phase::Building(build, chunks)) = self.phase.take() else {
            return Ok(());
        };
        tracing::info!(settled_upto = %upto, "scanner build caught up; exporting");
        report.caught_up = true;
        let mut steady = Steady::caught_up(build, upto, &recent, chunks);
        report.learning = !steady.learn_queue.is_empty();
        if self.config.checkpoint {
            if let Err(e) = steady.save(&self.store).await {
                self.metrics.maintenance_failed(Maintenance::Checkpoint, &e);
            }
        }
        self.phase = Some(Phase::Steady(steady));
        Ok(())
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

/// Shared by the scanner's unit tests.
#[cfg(test)]
pub(crate) mod test_support;
