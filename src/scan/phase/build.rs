//! Building the scanner's state from the table in bounded steps: the totals one chunk of
//! `--scan-chunk-rows` terminal runs per statement (by completion time), then the
//! per-connection states `--scan-chunk-connections` at a time, continuing across scans
//! (and, through the checkpoint, across restarts) until it has caught up with the table.
//! The same chunking serves the repair sweep ([`Sweep`]).

use std::collections::HashSet;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::domain::ConnectionId;

use crate::scan::state::Window;
use crate::scan::{Connections, ScanConfig, ScanError, Totals};
use crate::store::{ConnectionChunk, Position, Store, StoreError, TerminalRun};

/// The smallest chunk a statement timeout halves the chunk size down to.
const MIN_CHUNK_ROWS: u64 = 1_000;

/// Where the build stands with the per-connection states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Loading the states saved with the checkpoint, after this connection id (first,
    /// so the runs counted after the checkpoint bring them up to date).
    Saved(Option<ConnectionId>),
    /// Not yet: the totals are still being built.
    Pending,
    /// Read from the table (a first start), after this connection id.
    Table(Option<ConnectionId>),
    /// Done (read from the table, or kept up to date from the checkpoint's saved states).
    Done,
}

/// A build in progress: what has been counted so far, and where it stands.
pub(crate) struct Build {
    pub totals: Totals,
    pub connections: Connections,
    /// Every terminal run at or before this is in `totals` (a chunk may end inside one
    /// instant: a backfill's runs that share a completion time are read in chunks too).
    pub done_upto: Option<Position>,
    /// Where the history starts, for the progress ratio.
    pub first: Option<DateTime<Utc>>,
    /// Started from a checkpoint whose connection states were saved: they are loaded
    /// first, and the chunks after the checkpoint are read run by run so the states follow.
    pub follow_saved: bool,
    /// Started from a checkpoint at all.
    pub from_checkpoint: bool,
    pub walk: Walk,
    /// The states read or changed since the checkpoint, to save with it.
    pub dirty: HashSet<ConnectionId>,
    /// Connections whose learned state came back with their saved state: their history
    /// need not be read again.
    pub learned_restored: HashSet<ConnectionId>,
}

impl Build {
    /// A build from nothing: the whole history is aggregated, then the connections walked.
    pub fn fresh(totals: Totals) -> Self {
        Self {
            totals,
            connections: Connections::default(),
            done_upto: None,
            first: None,
            follow_saved: false,
            from_checkpoint: false,
            walk: Walk::Pending,
            dirty: HashSet::new(),
            learned_restored: HashSet::new(),
        }
    }

    /// A build that continues from saved `totals`, settled up to `upto`; with
    /// `connections_saved`, the saved connection states are loaded first and followed.
    pub fn from_checkpoint(totals: Totals, upto: DateTime<Utc>, connections_saved: bool) -> Self {
        Self {
            done_upto: Some(upto.into()),
            follow_saved: connections_saved,
            from_checkpoint: true,
            walk: if connections_saved {
                Walk::Saved(None)
            } else {
                Walk::Pending
            },
            ..Self::fresh(totals)
        }
    }
}

/// What the build has reached when a scan's budget runs out or it catches up.
pub(crate) enum Step {
    /// More to do at the next scan.
    Continue,
    /// Caught up: everything completed at or before `settled` is counted.
    CaughtUp { settled: DateTime<Utc> },
}

/// Chunk sizes, halved when a statement is cancelled for running too long.
pub(crate) struct Chunks {
    pub rows: u64,
    pub connections: usize,
}

impl Chunks {
    pub fn new(config: &ScanConfig) -> Self {
        Self {
            rows: config.chunk_rows.max(MIN_CHUNK_ROWS),
            connections: config.chunk_connections.max(1),
        }
    }

    /// After a cancelled chunk of runs: a smaller chunk, if there is one, else the error.
    pub fn shrink_rows(&mut self, e: StoreError) -> Result<(), ScanError> {
        if !matches!(e, StoreError::StatementTimeout(_)) || self.rows <= MIN_CHUNK_ROWS {
            return Err(e.into());
        }
        self.rows = (self.rows / 2).max(MIN_CHUNK_ROWS);
        tracing::warn!(
            chunk_rows = self.rows,
            "a chunk of runs ran longer than --scan-statement-timeout; halving it"
        );
        Ok(())
    }

    /// After a cancelled chunk of connections: a smaller one, if there is one.
    fn shrink_connections(&mut self, e: StoreError) -> Result<(), ScanError> {
        if !matches!(e, StoreError::StatementTimeout(_)) || self.connections <= 1 {
            return Err(e.into());
        }
        self.connections = (self.connections / 2).max(1);
        tracing::warn!(
            chunk_connections = self.connections,
            "a chunk of connections ran longer than --scan-statement-timeout; halving it"
        );
        Ok(())
    }
}

/// The end of the next chunk after `after` (at or before `settled`), and whether it
/// reaches `settled`. A chunk of `rows` runs ends at its last run's position, inside one
/// instant when many runs share it; fewer runs left than that, at `settled`.
async fn next_boundary(
    store: &Store,
    after: Option<&Position>,
    settled: DateTime<Utc>,
    rows: u64,
) -> Result<(Position, bool), StoreError> {
    Ok(
        match store.scan().terminal_boundary(after, settled, rows).await? {
            Some(end) => (end, false),
            None => (settled.into(), true),
        },
    )
}

/// Aggregate the terminal runs in `(after, end]` in SQL and add them to `totals`; how
/// many runs that was.
async fn aggregate_into(
    store: &Store,
    totals: &mut Totals,
    after: Option<&Position>,
    end: &Position,
) -> Result<u64, StoreError> {
    let rows = store
        .scan()
        .terminal_aggregate(after, end, &totals.duration_bounds, &totals.delay_bounds)
        .await?;
    for row in &rows {
        totals.add_aggregate(row);
    }
    Ok(rows.iter().map(|r| r.runs).sum())
}

impl Build {
    /// The progress of the totals, from 0 to 1.
    pub fn progress(&self, settled: DateTime<Utc>) -> f64 {
        match (self.first, self.done_upto.as_ref().map(|d| d.at)) {
            (_, None) => 0.0,
            (Some(first), Some(done)) if settled > first => {
                let all = (settled - first).num_milliseconds() as f64;
                ((done - first).num_milliseconds() as f64 / all).clamp(0.0, 1.0)
            }
            _ => 1.0,
        }
    }

    /// Build until caught up with `settled` (the database clock less the late-commit
    /// window) or until `deadline`, at least one statement per call.
    pub async fn step(
        &mut self,
        store: &Store,
        chunks: &mut Chunks,
        settled: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<Step, ScanError> {
        if self.first.is_none() {
            self.first = store.scan().first_completed_at().await?;
        }
        loop {
            match self.walk.clone() {
                Walk::Pending
                    if self
                        .done_upto
                        .as_ref()
                        .is_some_and(|done| done.is_whole() && done.at >= settled) =>
                {
                    self.walk = if self.follow_saved {
                        Walk::Done
                    } else {
                        Walk::Table(None)
                    };
                }
                Walk::Pending => {
                    if let Err(e) = self.totals_chunk(store, chunks, settled).await {
                        chunks.shrink_rows(e)?;
                    }
                }
                Walk::Saved(after) | Walk::Table(after) => {
                    let walked = matches!(self.walk, Walk::Table(_));
                    let limit = chunks.connections;
                    let chunk = if walked {
                        store.scan().connection_states(after, limit).await
                    } else {
                        store
                            .state()
                            .saved_connection_states(after, limit)
                            .await
                            .map(|states| ConnectionChunk {
                                walked: states.len(),
                                last: states.last().map(|s| s.workspace_connector_id.clone()),
                                states,
                            })
                    };
                    match chunk {
                        Ok(chunk) => self.add_states(chunk, limit, walked),
                        Err(e) => chunks.shrink_connections(e)?,
                    }
                }
                Walk::Done => {
                    let done = self.done_upto.as_ref().map_or(settled, |d| d.at);
                    return Ok(Step::CaughtUp { settled: done });
                }
            }
            if Instant::now() >= deadline {
                return Ok(Step::Continue);
            }
        }
    }

    /// One chunk of the totals: aggregated in SQL on a first build; read run by run when
    /// continuing from a checkpoint, so the saved connection states follow too.
    async fn totals_chunk(
        &mut self,
        store: &Store,
        chunks: &Chunks,
        settled: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = self.done_upto.as_ref();
        let (end, last) = next_boundary(store, done, settled, chunks.rows).await?;
        let counted = if self.follow_saved {
            // Always set: a checkpoint has a point it is settled up to.
            let after = done.unwrap_or(&end);
            let runs = store.scan().terminal_after(after, Some(&end), None).await?;
            for run in &runs {
                self.totals.add_run(run);
                if self.connections.add_run_if_newer(run) {
                    self.dirty.insert(run.workspace_connector_id.clone());
                }
            }
            runs.len() as u64
        } else {
            aggregate_into(store, &mut self.totals, done, &end).await?
        };
        tracing::info!(
            runs = counted,
            upto = %end.at,
            progress = format!("{:.3}", self.progress(settled)),
            caught_up = last,
            "scanner build: counted a chunk of terminal runs"
        );
        self.done_upto = Some(end);
        Ok(())
    }

    /// One chunk of states, `walked` from the table (to be saved) or the saved ones.
    fn add_states(&mut self, chunk: ConnectionChunk, limit: usize, walked: bool) {
        let last = chunk.last;
        let more = chunk.walked >= limit;
        for mut state in chunk.states {
            if walked {
                self.dirty.insert(state.workspace_connector_id.clone());
            }
            // Kept as the learned state itself, not as its saved text.
            if let Some(saved) = state.learned.take() {
                let (id, connector) = (&state.workspace_connector_id, &state.connector_slug);
                if self
                    .connections
                    .learned
                    .restore_saved(id, connector, &saved)
                {
                    self.learned_restored.insert(id.clone());
                }
            }
            self.connections
                .by_id
                .insert(state.workspace_connector_id.clone(), state);
        }
        self.walk = match (more, last, walked) {
            (true, Some(id), true) => Walk::Table(Some(id)),
            (true, Some(id), false) => Walk::Saved(Some(id)),
            (false, _, true) => Walk::Done,
            (_, _, false) => Walk::Pending,
            (true, None, true) => Walk::Done,
        };
    }

    /// Runs completed after the build's point (at most the late-commit window), counted
    /// into the totals and into `window` (once each, by key); a connection takes a run only
    /// when its state does not reflect it yet (the walk read the table later than
    /// `settled`).
    pub fn add_recent(&mut self, recent: &[TerminalRun], window: &mut Window) {
        for run in recent {
            if window.insert(run) {
                self.totals.add_run(run);
                if self.connections.add_run_if_newer(run) {
                    self.dirty.insert(run.workspace_connector_id.clone());
                }
            }
        }
    }
}

/// A repair sweep: the totals built again from the table, chunk by chunk, one chunk per
/// scan, then compared with what was counted over the same range when it began; the runs
/// the window missed are added ([`Totals::add_missed`]). A recent sweep starts from an
/// anchor (the settled totals as they were at a point some hours back) and reads only what
/// completed after it; a full sweep reads everything.
pub(crate) struct Sweep {
    pub fresh: Totals,
    /// The settled totals when the sweep began (settled up to `target`).
    pub baseline: Totals,
    pub done_upto: Option<Position>,
    /// The point the sweep counts up to (the running totals' settled point when it began).
    pub target: DateTime<Utc>,
    /// Whether it reads the whole history.
    pub full: bool,
}

/// The settled totals as they were at a point: where a recent repair sweep starts.
pub(crate) struct Anchor {
    pub at: DateTime<Utc>,
    pub totals: Totals,
}

impl Sweep {
    /// Everything completed at or before `target`, against `settled` (up to `target`).
    pub fn full(settled: &Totals, target: DateTime<Utc>) -> Self {
        Self {
            fresh: settled.empty_like(),
            baseline: settled.clone(),
            done_upto: None,
            target,
            full: true,
        }
    }

    /// `anchor`'s totals plus what completed after its point, up to `target`, against
    /// `settled` (up to `target`).
    pub fn recent(anchor: &Anchor, settled: &Totals, target: DateTime<Utc>) -> Self {
        Self {
            fresh: anchor.totals.clone(),
            baseline: settled.clone(),
            done_upto: Some(anchor.at.into()),
            target,
            full: false,
        }
    }

    /// One chunk; `true` once the sweep has reached its target.
    pub async fn step(&mut self, store: &Store, chunks: &mut Chunks) -> Result<bool, StoreError> {
        let done = self.done_upto.as_ref();
        let (end, last) = next_boundary(store, done, self.target, chunks.rows).await?;
        aggregate_into(store, &mut self.fresh, done, &end).await?;
        self.done_upto = Some(end);
        Ok(last)
    }
}
