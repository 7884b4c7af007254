//! The scanner once its state has caught up with the table: each scan reads only the runs
//! completed since the last one (with the late-commit overlap), and the upkeep runs in
//! bounded steps beside it — the repair sweep, the checkpoint, retention — each of which
//! may fail without failing the scan.

use std::collections::HashSet;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::domain::ConnectionId;

use super::build::{Anchor, Build, Chunks, Sweep};
use super::retention;
use crate::metrics::Maintenance;
use crate::scan::state::window::whole_second;
use crate::scan::state::{Missed, Window};
use crate::scan::{chrono_duration, Connections, Phase, ScanError, ScanReport, Scanner, Totals};
use crate::store::{Position, Store, StoreError, TerminalRun};

/// Connections whose latest runs one statement of the learn walk reads.
const LEARN_STATEMENT_CONNECTIONS: usize = 200;

/// Runs one statement of a steady scan's window reads at most: the window is usually far
/// smaller (the completions of `--late-commit-window`), a backfill far larger.
pub(crate) const WINDOW_ROWS: u64 = 2_000;

/// The smallest page a statement timeout halves the window's pages down to.
const MIN_WINDOW_ROWS: u64 = 100;

/// A steady scan's reads and upkeep, on the scanner.
impl Scanner {
    /// Count the runs completed since the last scan, then run the upkeep due: a step of
    /// the repair sweep, of the learned state's reads, the checkpoint, retention.
    pub(crate) async fn steady(
        &mut self,
        settled: DateTime<Utc>,
        started: Instant,
        report: &mut ScanReport,
    ) -> Result<(), ScanError> {
        let budget = self.budget();
        let Some(Phase::Steady(state)) = self.phase.as_mut() else {
            return Ok(());
        };
        // The window, in pages of at most `window_rows` runs in position order, continued
        // at the next scan when this one's budget runs out: runs that share one completion
        // time (a backfill) are read in bounded steps, and the low bound still advances.
        let deadline = started + budget;
        let mut from = (state.window_from.take()).unwrap_or_else(|| Position::from(state.low));
        let whole = loop {
            let page = self
                .store
                .scan()
                .terminal_after(&from, None, Some(state.window_rows));
            let page = match page.await {
                Ok(page) => page,
                Err(e) => {
                    // The scan fails (a lock held on the table must not make it retry for
                    // seconds); the next one goes on from here, with a smaller page when
                    // this one ran past the statement timeout.
                    state.shrink_window(&e);
                    state.window_from = Some(from);
                    return Err(e.into());
                }
            };
            let full = page.len() as u64 >= state.window_rows;
            if let Some(last) = page.last() {
                from = Position::after_run(last);
            }
            for run in state.add_runs(page) {
                self.live.finished(&run.id);
                report.new_terminal_runs += 1;
                if let Some(observer) = &self.observer {
                    observer.run_finished(&run);
                }
            }
            if !full {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
        };
        if whole {
            state.advance(settled);
        } else {
            // Not read to its end: only what this pass has passed is settled (the runs of
            // the instant it stopped in stay in the window), and the next scan goes on from
            // where it stopped.
            state.advance(settled.min(from.at - chrono::Duration::microseconds(1)));
            state.window_from = Some(from);
        }

        // Upkeep: bounded steps, each of which may fail without failing the scan.
        if state.sweep.is_none() {
            state.sweep = state.due_sweep(
                self.config.repair_interval,
                self.config.full_repair_interval,
                chrono_duration(self.config.repair_horizon),
            );
        }
        if let Some(sweep) = state.sweep.as_mut() {
            match sweep.step(&self.store, &mut state.chunks).await {
                Ok(false) => {}
                Ok(true) => {
                    if let Some(sweep) = state.sweep.take() {
                        state.merge_sweep(&sweep);
                        if sweep.full {
                            state.full_swept_at = Some(Instant::now());
                        }
                    }
                    state.swept_at = Instant::now();
                    report.repair_merged = true;
                    self.metrics
                        .last_repair_success
                        .set(self.clock.now().timestamp_millis() as f64 / 1000.0);
                }
                Err(e) => {
                    self.metrics.maintenance_failed(Maintenance::Repair, &e);
                    // A chunk the statement timeout cut: the next one is smaller.
                    let _ = state.chunks.shrink_rows(e);
                }
            }
        }
        if !state.learn_queue.is_empty() {
            if let Err(e) = state.learn_step(&self.store).await {
                self.metrics.maintenance_failed(Maintenance::Learn, &e);
            }
        }
        report.learning = !state.learn_queue.is_empty();
        if self.config.checkpoint && state.saved_at.elapsed() >= self.config.checkpoint_interval {
            if let Err(e) = state.save(&self.store).await {
                self.metrics.maintenance_failed(Maintenance::Checkpoint, &e);
            }
        }
        if let (Some(keep), Some(saved)) = (self.config.retention, state.saved_upto) {
            // Never past the saved checkpoint: what is deleted must already be counted in
            // the saved totals and connection states.
            let before = retention::prune_cutoff(self.clock.now() - chrono_duration(keep), saved);
            let deadline = started + budget;
            let pruned = &self.metrics.pruned_runs;
            let done = retention::prune_in_batches(&self.store, before, Some(deadline), |n| {
                report.pruned += n;
                pruned.inc_by(n);
            })
            .await;
            match done {
                // Every run before the cut-off is gone: so is what syncwatch kept of the
                // connections that had no later one (in memory and in the state store).
                Ok(true) => {
                    if state.connections.forget_before(before) > 0 {
                        let connections = &state.connections.by_id;
                        state.dirty.retain(|id| connections.contains_key(id));
                        if let Err(e) = self.store.state().forget_connections_before(before).await {
                            self.metrics.maintenance_failed(Maintenance::Retention, &e);
                        }
                    }
                }
                Ok(false) => {}
                Err(e) => self.metrics.maintenance_failed(Maintenance::Retention, &e),
            }
        }
        Ok(())
    }
}

/// The state of a scanner that has caught up.
pub(crate) struct Steady {
    /// What is exported: every run completed at or before `low`, plus the window's.
    pub totals: Totals,
    /// Every run completed at or before `low`: what the checkpoint saves.
    pub settled: Totals,
    pub connections: Connections,
    /// Runs counted with `completed_at` after `low`, so a re-read does not count twice.
    /// The runs counted after `low`, by internal key (two rows sharing a public id are two
    /// runs), so a re-read does not count twice; their totals by second.
    pub window: Window,
    /// Lower bound (exclusive) of the next incremental read.
    pub low: DateTime<Utc>,
    /// Where the next scan goes on reading the window, when the last one's budget ran out
    /// before its end.
    pub window_from: Option<Position>,
    /// Runs one statement of the window's read reads at most (halved when one runs past
    /// the scanner's statement timeout).
    pub window_rows: u64,
    /// Connections changed since the last checkpoint.
    pub dirty: HashSet<ConnectionId>,
    /// The point the last saved checkpoint is settled up to (retention never deletes
    /// past it), if one was saved.
    pub saved_upto: Option<DateTime<Utc>>,
    pub saved_at: Instant,
    pub sweep: Option<Sweep>,
    /// When the last recent and the last full repair sweep finished (or the build).
    pub swept_at: Instant,
    /// `None` until a full sweep ran after a start from a checkpoint (the first sweep is
    /// then a full one).
    pub full_swept_at: Option<Instant>,
    /// Where recent sweeps start: between one and two `--repair-horizon`s back once
    /// warmed up (the build's end until then).
    pub anchor: Anchor,
    /// The next anchor, taken one horizon after the current one.
    pub next_anchor: Option<Anchor>,
    pub chunks: Chunks,
    /// Connections whose latest runs are still to be read for the learned state (after a
    /// start), a chunk per scan.
    pub learn_queue: Vec<ConnectionId>,
}

impl Steady {
    /// The state a build hands over once caught up with `upto`, with the runs completed
    /// after it (`recent`) counted. What each connection's history teaches is read after
    /// the catch-up, a chunk per scan, so a start is not held up by it.
    pub fn caught_up(
        mut build: Box<Build>,
        upto: DateTime<Utc>,
        recent: &[TerminalRun],
        chunks: Chunks,
    ) -> Box<Self> {
        let settled = build.totals.clone();
        let anchor = Anchor {
            at: upto,
            totals: build.totals.clone(),
        };
        let mut window = Window::new(&settled);
        build.add_recent(recent, &mut window);
        // What came back with the saved states is not read again.
        let mut learn_queue: Vec<ConnectionId> = (build.connections.by_id.keys())
            .filter(|id| !build.learned_restored.contains(*id))
            .cloned()
            .collect();
        learn_queue.sort_unstable_by(|a, b| b.cmp(a));
        let now = Instant::now();
        Box::new(Self {
            totals: build.totals,
            settled,
            connections: build.connections,
            window,
            low: upto,
            window_from: None,
            window_rows: WINDOW_ROWS,
            dirty: build.dirty,
            saved_upto: None,
            saved_at: now,
            sweep: None,
            swept_at: now,
            // A build from nothing has just read everything: no full sweep is owed.
            full_swept_at: (!build.from_checkpoint).then_some(now),
            anchor,
            next_anchor: None,
            chunks,
            learn_queue,
        })
    }

    /// After a page of the window that failed: a smaller page for the next scan, when the
    /// statement ran past its timeout and a smaller one is left.
    fn shrink_window(&mut self, e: &StoreError) {
        if !matches!(e, StoreError::StatementTimeout(_)) || self.window_rows <= MIN_WINDOW_ROWS {
            return;
        }
        self.window_rows = (self.window_rows / 2).max(MIN_WINDOW_ROWS);
        tracing::warn!(
            window_rows = self.window_rows,
            "a page of the window ran longer than --scan-statement-timeout; halving it"
        );
    }

    /// Count the runs read by this scan's incremental read; returns the new ones.
    pub fn add_runs(&mut self, runs: Vec<TerminalRun>) -> Vec<TerminalRun> {
        let mut new = Vec::new();
        for run in runs {
            if !self.window.insert(&run) {
                continue;
            }
            self.totals.add_run(&run);
            self.connections.add_run(&run);
            self.dirty.insert(run.workspace_connector_id.clone());
            new.push(run);
        }
        new
    }

    /// Read the latest runs of the next chunk of connections still to learn (after a
    /// start): the learned state then covers their history, not only what this process
    /// has seen. On failure they stay queued.
    ///
    /// A statement reads [`LEARN_STATEMENT_CONNECTIONS`] connections (up to 41 runs each),
    /// folded in before the next is read: read at once, a chunk of 2,000 connections' runs
    /// (82,000 rows at the benchmark's size) doubled the resident set while they were held.
    pub async fn learn_step(&mut self, store: &Store) -> Result<(), StoreError> {
        let n = self.learn_queue.len().min(self.chunks.connections);
        let mut ids = self.learn_queue.split_off(self.learn_queue.len() - n);
        while !ids.is_empty() {
            let part = ids.split_off(ids.len().saturating_sub(LEARN_STATEMENT_CONNECTIONS));
            match store.live().recent_runs(&part).await {
                Ok(recent) => {
                    for run in &recent {
                        self.connections.learned.restore(run);
                    }
                    // Saved with the next checkpoint, so a restart need not read them
                    // again.
                    self.dirty.extend(part);
                }
                Err(e) => {
                    self.learn_queue.extend(ids);
                    self.learn_queue.extend(part);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Move the window: the runs of every whole second before `low` are settled, and the
    /// next read starts just before that second (it reads at most a second again).
    pub fn advance(&mut self, low: DateTime<Utc>) {
        let cut = whole_second(low);
        if cut - chrono::Duration::microseconds(1) <= self.low {
            return;
        }
        self.low = self.window.settle_before(cut, &mut self.settled);
    }

    /// The sweep due now, if any: a full one first after a start from a checkpoint and then
    /// every `full_every` (when set), else a recent one every `every`, from the anchor;
    /// the anchors move along one `horizon` apart.
    pub fn due_sweep(
        &mut self,
        every: std::time::Duration,
        full_every: Option<std::time::Duration>,
        horizon: chrono::Duration,
    ) -> Option<Sweep> {
        if self.low - self.anchor.at >= horizon && self.next_anchor.is_none() {
            self.next_anchor = Some(Anchor {
                at: self.low,
                totals: self.settled.clone(),
            });
        }
        if let Some(next) = self.next_anchor.take_if(|n| self.low - n.at >= horizon) {
            self.anchor = next;
        }
        let full_due = match self.full_swept_at {
            // After a start from a checkpoint: one full sweep first, for the runs that
            // became visible late before the checkpoint (older than any anchor of ours).
            None => true,
            Some(at) => full_every.is_some_and(|f| at.elapsed() >= f),
        };
        if full_due {
            Some(Sweep::full(&self.settled, self.low))
        } else if self.swept_at.elapsed() >= every {
            Some(Sweep::recent(&self.anchor, &self.settled, self.low))
        } else {
            None
        }
    }

    /// Merge a finished sweep: the settled totals gain the runs the table holds over the
    /// sweep's range that were not counted ([`Totals::add_missed`]), and the exported ones
    /// are the settled ones plus the runs in the window.
    pub fn merge_sweep(&mut self, sweep: &Sweep) -> Missed {
        let missed = self.settled.add_missed(&sweep.fresh, &sweep.baseline);
        match missed {
            Missed::Nothing => return missed,
            Missed::Added(n) => {
                tracing::info!(runs = n, "repair sweep: counted runs the window missed");
            }
            Missed::Ambiguous { fewer } => {
                tracing::info!(
                    runs = fewer,
                    "repair sweep: counted runs are no longer under the labels they were \
                     counted with (renamed or deleted since); nothing added, nothing counted twice"
                );
                return missed;
            }
        }
        let mut totals = self.settled.clone();
        self.window.add_into(&mut totals);
        self.totals = totals;
        missed
    }

    /// Save the settled totals and the changed connection states.
    pub async fn save(&mut self, store: &Store) -> Result<(), StoreError> {
        let learning: HashSet<&ConnectionId> = self.learn_queue.iter().collect();
        let states = (self.connections).states_of(&self.dirty, |id| !learning.contains(id));
        let json = self.settled.to_json(true, &store.catalogue().mapping_key());
        let upto = self.low;
        store.state().save_checkpoint(upto, &json, &states).await?;
        self.dirty.clear();
        self.saved_upto = Some(upto);
        self.saved_at = Instant::now();
        Ok(())
    }
}
