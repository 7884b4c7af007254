//! The lifecycle API's view of the store: [`RunStore`] (record runs, move them through
//! their lifecycle by compare-and-set, read and list them) and [`Retention`] (delete old
//! terminal runs), with the values they take and give.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Cursor, Result, StatusCursor, StoreError};
use crate::domain::{
    Action, ConnectionId, ConnectorStatus, NewSyncLog, Status, SyncLog, ValidationError,
    MAX_METADATA_BYTES,
};

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
    pub workspace_connector_id: Option<ConnectionId>,
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
    pub workspace_connector_id: Option<ConnectionId>,
    pub connector_slug: Option<String>,
    /// Where the page starts (`None`: the first page).
    pub cursor: Option<StatusCursor>,
    /// At most this many entries.
    pub limit: u32,
}

/// One page of `GET /v1/connector-status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusPage {
    pub items: Vec<ConnectorStatus>,
    /// Set when more entries may follow; pass it back as `cursor`.
    pub next_cursor: Option<StatusCursor>,
}

/// What the lifecycle API (and the reaper, which fails stuck runs through it) asks of the
/// sync log. Every transition is a single compare-and-set `UPDATE … WHERE status IN
/// (allowed)`, with the allowed statuses taken from [`Action::allowed_from`]; the terminal
/// status, `completed_at` and `duration_ms` are written by that one statement from the
/// database clock, so of two concurrent finishers exactly one wins. A store that only
/// observes the table answers every write with [`StoreError::ObserveOnly`].
#[async_trait]
pub trait RunStore: Send + Sync + 'static {
    /// Insert a run; `None` when a live run already has its `cloud_task_id`.
    async fn insert(&self, new: &NewSyncLog) -> Result<Option<SyncLog>>;

    async fn find_live_by_cloud_task(&self, cloud_task_id: &str) -> Result<Option<SyncLog>>;

    /// Record a new run, or return the live run with the same `cloud_task_id` (a repeated
    /// Cloud Tasks delivery). The unique index decides between concurrent creates; when
    /// the run it collided with is deleted before we read it, the insert is retried.
    #[tracing::instrument(level = "debug", skip_all)]
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

    /// One entry per connection, the connections with the most consecutive failures first,
    /// keyset-paginated.
    async fn connector_status(&self, filter: &StatusFilter) -> Result<StatusPage>;
}

/// Deleting history: what `--retention` and `syncwatch prune` ask of the sync log.
#[async_trait]
pub trait Retention: Send + Sync + 'static {
    /// Hard-delete at most `batch` terminal runs completed before `before`, oldest first.
    /// Returns how many were deleted; active runs are never touched.
    async fn prune(&self, before: DateTime<Utc>, batch: u64) -> Result<u64>;
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
/// Why a transition's compare-and-set matched no row, from the run's `current` status
/// and the size its metadata would have had merged with the change's patch.
pub(crate) fn cas_failure(change: &Change, current: Option<(Status, i64)>) -> StoreError {
    match current {
        None => StoreError::NotFound,
        Some((current, merged_bytes)) => match change.action.apply(current) {
            Err(e) => StoreError::InvalidTransition(e),
            Ok(_) if merged_bytes > MAX_METADATA_BYTES as i64 => {
                StoreError::Invalid(ValidationError::new(
                    "metadata",
                    format!(
                        "merged into the run's stored metadata it would be {merged_bytes} \
                         bytes; at most {MAX_METADATA_BYTES} are allowed"
                    ),
                ))
            }
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
