//! The lifecycle store: one interface, [`SyncLogStore`], with a Postgres and an embedded
//! SQLite implementation that pass the same behavioural test suite.
//!
//! Every transition is a single compare-and-set `UPDATE … WHERE status IN (allowed)`, with
//! the allowed statuses taken from [`Action::allowed_from`]; the terminal status,
//! `completed_at` and `duration_ms` are written by that one statement from the database
//! clock, so of two concurrent finishers exactly one wins.

mod cursor;
mod dialect;
mod error;
mod inspect;
mod learned_reads;
mod lease;
mod observed;
mod postgres;
mod scanner_reads;
mod sql_store;
mod sqlite;
mod statements;
mod table;
mod ui_reads;
mod url;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::{Action, ConnectorStatus, NewSyncLog, Status, SyncLog};

pub use cursor::Cursor;
pub use dialect::UNKNOWN_CONNECTOR;
pub use error::StoreError;
pub use inspect::{check_table, CheckReport, ColumnInfo, TableDescription};
pub use learned_reads::{ActiveRun, RecentRun};
pub use lease::{Leadership, Lease, LEASE_KEY};
pub use observed::ObservedStore;
pub use postgres::{create_schema, schema_exists};
pub use scanner_reads::{
    postgres_scanner_queries, ActiveGroup, ConnectionState, StuckCutoffs, TerminalAggregate,
    TerminalRun, ERROR_PREFIX_CHARS,
};
pub use sql_store::SqlStore;
pub use table::{ConnectorSource, Ident, TableMap, DEFAULT_CONNECTION_COLUMN, DEFAULT_TABLE};
pub use ui_reads::{ConnectionSummary, ConnectorOutcomes, LatestError};
pub use url::{Backend, DatabaseUrl};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store as the rest of the service holds it.
pub type Store = Arc<dyn SyncLogStore>;

/// What `create` did: inserted a new run, or found the live run with the same
/// `cloud_task_id` (a repeated Cloud Tasks delivery).
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    New(SyncLog),
    Existing(SyncLog),
}

/// A change to an existing run.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub action: Action,
    /// Merged into the row's metadata as an RFC 7396 merge patch.
    pub metadata: Option<Map<String, Value>>,
    /// Only with [`Action::Fail`].
    pub error: Option<String>,
}

impl Change {
    pub fn new(action: Action) -> Self {
        Self {
            action,
            metadata: None,
            error: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    pub workspace_connector_id: Option<Uuid>,
    pub connector_slug: Option<String>,
    pub status: Option<Status>,
    pub cursor: Option<Cursor>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<SyncLog>,
    /// Set when more rows may follow; pass it back as `cursor`.
    pub next_cursor: Option<Cursor>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusFilter {
    pub workspace_connector_id: Option<Uuid>,
    pub connector_slug: Option<String>,
}

/// How the database's schema compares with the migrations this binary carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Highest applied migration, if any.
    pub applied: Option<i64>,
    /// Highest migration this binary knows.
    pub expected: i64,
    /// A migration that started and did not finish.
    pub dirty: bool,
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        !self.dirty && self.applied == Some(self.expected)
    }
}

#[async_trait]
pub trait SyncLogStore: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Whether the sync log belongs to another service, so syncwatch never writes it.
    fn observe_only(&self) -> bool {
        false
    }

    /// Apply pending migrations.
    async fn migrate(&self) -> Result<()>;

    async fn schema_status(&self) -> Result<SchemaStatus>;

    /// One round trip to the database.
    async fn ping(&self) -> Result<()>;

    /// Insert a run; `None` when a live run already has its `cloud_task_id`.
    async fn insert(&self, new: &NewSyncLog) -> Result<Option<SyncLog>>;

    async fn find_live_by_cloud_task(&self, cloud_task_id: &str) -> Result<Option<SyncLog>>;

    /// Record a new run, or return the live run with the same `cloud_task_id` (a repeated
    /// Cloud Tasks delivery). The unique index decides between concurrent creates; when
    /// the run it collided with is deleted before we read it, the insert is retried.
    #[tracing::instrument(skip_all)]
    async fn create(&self, new: &NewSyncLog) -> Result<Created> {
        for _ in 0..CREATE_ATTEMPTS {
            if let Some(row) = self.insert(new).await? {
                return Ok(Created::New(row));
            }
            // Only a live row with the same cloud_task_id makes the insert do nothing.
            let Some(task) = new.cloud_task_id.as_deref() else {
                break;
            };
            if let Some(existing) = self.find_live_by_cloud_task(task).await? {
                return existing_for_duplicate(new, existing);
            }
        }
        Err(StoreError::Conflict(
            "the run with this cloud_task_id changed concurrently; retry the request".into(),
        ))
    }

    /// Compare-and-set transition. `NotFound` for a missing or soft-deleted run,
    /// `InvalidTransition` (with the current status) when the run is not in a status the
    /// action is allowed from.
    async fn apply(&self, id: Uuid, change: &Change) -> Result<SyncLog>;

    async fn get(&self, id: Uuid) -> Result<Option<SyncLog>>;

    /// Newest first (`created_at`, then id, descending), keyset-paginated.
    async fn list(&self, filter: &ListFilter) -> Result<Page>;

    /// Sets `deleted_at`. `false` when there was no live run with that id.
    async fn soft_delete(&self, id: Uuid) -> Result<bool>;

    /// One entry per connection, the connections with the most consecutive failures first.
    async fn connector_status(&self, filter: &StatusFilter) -> Result<Vec<ConnectorStatus>>;

    // What the status page reads: bounded by an index whatever the history.

    /// Terminal runs completed after `since`, per connector (soft-deleted ones included).
    async fn outcomes_since(&self, since: DateTime<Utc>) -> Result<Vec<ConnectorOutcomes>>;

    /// One connection's last success, the first failure after it, its latest failed run.
    async fn connection_summary(&self, id: Uuid) -> Result<ConnectionSummary>;

    // What the scanner reads. Terminal-run queries include soft-deleted rows: a run that
    // happened stays counted.

    /// The database clock.
    async fn db_now(&self) -> Result<DateTime<Utc>>;

    /// Terminal runs completed at or before `upto` (and strictly after `after`, when
    /// given), aggregated in SQL per (connector, trigger, status), with histogram buckets
    /// for the given bounds (seconds).
    async fn terminal_aggregate(
        &self,
        after: Option<DateTime<Utc>>,
        upto: DateTime<Utc>,
        duration_bounds: &[f64],
        delay_bounds: &[f64],
    ) -> Result<Vec<TerminalAggregate>>;

    /// Terminal runs completed strictly after `after` (and at or before `upto`, when
    /// given), oldest first.
    async fn terminal_after(
        &self,
        after: DateTime<Utc>,
        upto: Option<DateTime<Utc>>,
    ) -> Result<Vec<TerminalRun>>;

    /// Per-connection states (latest terminal run, failures since the last success) of at
    /// most `limit` connections in id order after `after` (from the first when `None`):
    /// computed from the table, or the ones the scanner saved with its checkpoint.
    async fn connection_states(
        &self,
        source: StateSource,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ConnectionState>>;

    /// Where a chunk of `rows` terminal runs completed after `after` and at or before
    /// `upto` ends (oldest first): the completion time of the last run of the chunk, or
    /// `None` when fewer runs remain than a whole chunk.
    async fn terminal_boundary(
        &self,
        after: Option<DateTime<Utc>>,
        upto: DateTime<Utc>,
        rows: u64,
    ) -> Result<Option<DateTime<Utc>>>;

    /// The oldest completion time in the table.
    async fn first_completed_at(&self) -> Result<Option<DateTime<Utc>>>;

    /// Hard-delete at most `batch` terminal runs completed before `before`, oldest first.
    /// Returns how many were deleted; active runs are never touched.
    async fn prune(&self, before: DateTime<Utc>, batch: u64) -> Result<u64>;

    /// Live scheduled and in-progress runs per (connector, status).
    async fn active_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<ActiveGroup>>;

    /// Ids of live runs that are stuck by `cutoffs` (at most 1000, oldest first).
    async fn stuck_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<Uuid>>;

    /// Live runs in progress and live `cloud_task` runs, one by one (at most `limit`,
    /// oldest first), for the learned schedules and durations.
    async fn active_run_list(&self, limit: usize) -> Result<Vec<ActiveRun>>;

    /// The latest scheduled and successful runs of each of `ids` (see
    /// [`RecentRun`]), to rebuild what the scanner learned about them.
    async fn recent_runs(&self, ids: &[Uuid]) -> Result<Vec<RecentRun>>;

    /// The scanner's saved totals: the point they are settled up to, and their JSON.
    async fn load_checkpoint(&self) -> Result<Option<(DateTime<Utc>, String)>>;

    /// Upsert the given connection states, then replace the scanner's saved totals (in
    /// that order, so saved totals never claim states that were not saved).
    async fn save_checkpoint(
        &self,
        settled_upto: DateTime<Utc>,
        totals: &str,
        connections: &[ConnectionState],
    ) -> Result<()>;

    /// The sync log's columns, indexes and readability as the database's catalogue
    /// describes them (for `check --observe-only`).
    async fn describe_table(&self) -> Result<TableDescription>;
}

/// Where [`SyncLogStore::connection_states`] reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSource {
    /// Computed from the sync log itself.
    Table,
    /// The states the scanner saved with its checkpoint.
    Saved,
}

/// Pool settings shared by both stores.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Postgres: the server cancels an API statement running longer than this.
    pub statement_timeout: Option<Duration>,
    /// Postgres: the same for the scanner's reads, which have a pool of their own.
    pub scan_statement_timeout: Option<Duration>,
    /// Postgres: the schema syncwatch's own tables live in (`search_path`), when not the
    /// connection's default.
    pub schema: Option<String>,
    /// Open the database read-only (an observed table): PostgreSQL sessions default to
    /// read-only transactions, so the server itself refuses any write; SQLite opens the
    /// file read-only and leaves its journal mode alone.
    pub read_only: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: None,
            scan_statement_timeout: None,
            schema: None,
            read_only: false,
        }
    }
}

/// Open the store a URL names, reading the sync log `table` maps. Does not run migrations.
pub async fn connect(url: &DatabaseUrl, options: &PoolOptions, table: &TableMap) -> Result<Store> {
    let table = table.clone();
    Ok(match url.backend() {
        Backend::Postgres => Arc::new(SqlStore::new(
            postgres::PostgresEngine::connect(url, options)?,
            table,
        )),
        Backend::Sqlite => Arc::new(SqlStore::new(
            sqlite::SqliteEngine::connect(url, options).await?,
            table,
        )),
    })
}

/// Shared by both implementations: keep the row when the caller's create matches it,
/// refuse when the same task name is reused for another connection.
fn existing_for_duplicate(new: &NewSyncLog, existing: SyncLog) -> Result<Created> {
    if existing.workspace_connector_id == new.workspace_connector_id
        && existing.connector_slug == new.connector_slug
    {
        Ok(Created::Existing(existing))
    } else {
        Err(StoreError::CloudTaskConflict {
            existing_id: existing.workspace_connector_sync_log_id,
        })
    }
}

/// Resolve a failed compare-and-set into the right error from the row's current status.
fn cas_failure(change: &Change, current: Option<Status>) -> StoreError {
    match current {
        None => StoreError::NotFound,
        Some(current) => match change.action.apply(current) {
            Err(e) => StoreError::InvalidTransition(e),
            // The row moved into an allowed status after our UPDATE looked at it; the
            // caller may retry, but from its point of view the run was not where it
            // expected, which is a conflict.
            Ok(_) => StoreError::Conflict(format!(
                "the run changed concurrently (now {current}); retry the request"
            )),
        },
    }
}

/// How many times `create` retries when the row it collided with vanished (soft-deleted)
/// between the insert and the read.
const CREATE_ATTEMPTS: usize = 3;

/// Trim a `limit + 1` fetch to `limit` rows and say where the next page starts.
fn paginate(items: &mut Vec<SyncLog>, limit: u32) -> Option<Cursor> {
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|last| Cursor {
            created_at: last.created_at,
            id: last.workspace_connector_sync_log_id,
        })
    } else {
        None
    }
}
