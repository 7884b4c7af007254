//! The scanner's view of the sync log: [`ScanSource`] (finished runs, aggregated or one by
//! one, and per-connection states walked from the table) and [`LiveReads`] (runs still live,
//! and the recent runs its learned signals start from), with the values they give.
//! Terminal-run queries include soft-deleted rows: a run that happened stays counted.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConnectionState, Result};
use crate::domain::{ConnectionId, Status};

/// Terminal runs of one (connector, trigger, status), histogram buckets counted in SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalAggregate {
    pub connector_slug: String,
    pub trigger_type: Option<String>,
    pub status: Status,
    pub runs: u64,
    /// Runs with a duration (they started); `duration_buckets[i]` counts those with
    /// `duration <= bounds[i]`.
    pub duration_count: u64,
    pub duration_sum_seconds: f64,
    pub duration_buckets: Vec<u64>,
    pub delay_count: u64,
    pub delay_sum_seconds: f64,
    pub delay_buckets: Vec<u64>,
    pub records_synced: f64,
    pub last_completed_at: Option<DateTime<Utc>>,
    /// The failed runs' `error` (its first [`ERROR_PREFIX_CHARS`] characters): failed runs
    /// are grouped by it, so each group's failure reason can be told.
    pub error: Option<String>,
}

/// Characters of `error` the aggregates group failed runs by.
pub const ERROR_PREFIX_CHARS: usize = 1024;

/// One terminal run, for the incremental scan.
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalRun {
    /// The run's public id.
    pub id: Uuid,
    /// The run's internal key (`--id-column`) as text: what a run is counted once by.
    pub key: String,
    pub workspace_connector_id: ConnectionId,
    pub connector_slug: String,
    pub trigger_type: Option<String>,
    pub status: Status,
    pub duration_seconds: Option<f64>,
    pub dispatch_delay_seconds: Option<f64>,
    pub records_synced: Option<f64>,
    pub completed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// Soft-deleted (it stays counted; it teaches the learned schedules nothing).
    pub deleted: bool,
}

/// A chunk of the walk over the table's connections: the states that decoded (a connection
/// whose latest run does not decode is skipped, and recorded), and where the walk stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionChunk {
    pub states: Vec<ConnectionState>,
    /// Connections the chunk walked, skipped ones included.
    pub walked: usize,
    /// The last connection walked: where the next chunk starts.
    pub last: Option<ConnectionId>,
}

/// Active runs of one (connector, status).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveGroup {
    pub connector_slug: String,
    pub status: Status,
    pub count: u64,
    pub stuck: u64,
    pub oldest: DateTime<Utc>,
}

/// When an active run counts as stuck, as absolute cut-offs computed from the clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StuckCutoffs {
    /// `scheduled` and created before this.
    pub scheduled_before: DateTime<Utc>,
    /// `in_progress` and not updated (no heartbeat) since this.
    pub idle_before: DateTime<Utc>,
    /// `in_progress` and started before this (ran longer than the maximum).
    pub started_before: DateTime<Utc>,
}

/// One live run (scheduled or in progress, not deleted), as the scanner keeps it between
/// scans (`scan::live`): for the learned signals, and to check its set against the
/// active-run groups.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRun {
    pub id: Uuid,
    /// The connection's public id; `None` when it cannot be resolved (the run still counts
    /// among its connector's live runs, but teaches the learned signals nothing).
    pub workspace_connector_id: Option<ConnectionId>,
    pub connector_slug: String,
    pub status: Status,
    pub trigger_type: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
}

/// One of a connection's latest runs: a scheduled run's creation (`duration_ms` null), or
/// a successful run's duration.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentRun {
    pub workspace_connector_id: ConnectionId,
    pub connector_slug: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
}

/// A place in the order the scanner reads terminal runs in: by completion time, then by
/// internal key, so any number of runs completed at one instant (a backfill) is read in
/// bounded steps. Every run completed before `at` is at or before it, and those completed
/// at `at` whose key is at most `key` (all of them when `key` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub at: DateTime<Utc>,
    pub key: Option<ConnectionId>,
}

impl From<DateTime<Utc>> for Position {
    /// Every run completed at or before `at`.
    fn from(at: DateTime<Utc>) -> Self {
        Self { at, key: None }
    }
}

impl Position {
    /// Just after `run`.
    pub fn after_run(run: &TerminalRun) -> Self {
        Self {
            at: run.completed_at,
            key: Some(ConnectionId::text(run.key.clone())),
        }
    }

    /// Whether every run completed at `at` is at or before it.
    pub fn is_whole(&self) -> bool {
        self.key.is_none()
    }
}

/// What the scanner reads about finished runs.
#[async_trait]
pub trait ScanSource: Send + Sync + 'static {
    /// The database clock.
    async fn db_now(&self) -> Result<DateTime<Utc>>;

    /// On a hot standby, the commit time up to which every transaction of its primary is
    /// visible here (the standby's clock once it has replayed all it received); `None` on a
    /// primary.
    async fn replay_point(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(None)
    }

    /// Terminal runs at or before `upto` (and strictly after `after`, when given),
    /// aggregated in SQL per (connector, trigger, status), with histogram buckets for the
    /// given bounds (seconds).
    async fn terminal_aggregate(
        &self,
        after: Option<&Position>,
        upto: &Position,
        duration_bounds: &[f64],
        delay_bounds: &[f64],
    ) -> Result<Vec<TerminalAggregate>>;

    /// Terminal runs strictly after `after` (and at or before `upto`, when given), in
    /// [`Position`] order, at most `limit` of them.
    async fn terminal_after(
        &self,
        after: &Position,
        upto: Option<&Position>,
        limit: Option<u64>,
    ) -> Result<Vec<TerminalRun>>;

    /// Per-connection states (latest terminal run, failures since the last success) of at
    /// most `limit` connections in id order after `after` (from the first when `None`),
    /// computed from the table (the saved ones: [`StateStore`](super::StateStore)).
    async fn connection_states(
        &self,
        after: Option<ConnectionId>,
        limit: usize,
    ) -> Result<ConnectionChunk>;

    /// Where a chunk of `rows` terminal runs after `after` and completed at or before
    /// `upto` ends, in [`Position`] order: the position of the chunk's last run, or `None`
    /// when fewer runs remain than a whole chunk.
    async fn terminal_boundary(
        &self,
        after: Option<&Position>,
        upto: DateTime<Utc>,
        rows: u64,
    ) -> Result<Option<Position>>;

    /// The oldest completion time in the table.
    async fn first_completed_at(&self) -> Result<Option<DateTime<Utc>>>;

    /// The newest completion time in the table, and the database clock (one index probe).
    async fn newest_completed_at(&self) -> Result<(Option<DateTime<Utc>>, DateTime<Utc>)>;
}

/// What the scanner reads about runs still live.
#[async_trait]
pub trait LiveReads: Send + Sync + 'static {
    /// Live scheduled and in-progress runs per (connector, status).
    async fn active_groups(&self, cutoffs: &StuckCutoffs) -> Result<Vec<ActiveGroup>>;

    /// Ids of live runs that are stuck by `cutoffs` (at most 1000, oldest first).
    async fn stuck_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<Uuid>>;

    /// Live runs (scheduled or in progress, not deleted) one by one, oldest first, at
    /// most `limit`; with `changed_since`, only those created or started after it.
    async fn live_runs(
        &self,
        changed_since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<LiveRun>>;

    /// The latest scheduled and successful runs of each of `ids` (see
    /// [`RecentRun`]), to rebuild what the scanner learned about them.
    async fn recent_runs(&self, ids: &[ConnectionId]) -> Result<Vec<RecentRun>>;
}
