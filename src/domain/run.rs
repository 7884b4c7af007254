//! A sync run as the API shows it ([`SyncLog`]), as a create asks for it ([`NewSyncLog`]), and a
//! connection's latest outcome ([`ConnectorStatus`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{ConnectionId, Status, TriggerType};

/// One row of `workspace_connector_sync_log`, as the API shows it. The internal key is
/// deliberately absent: it never leaves the store. `Deserialize` reads the same shape back
/// (the typed client of the tools crate decodes API responses into it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncLog {
    pub workspace_connector_sync_log_id: Uuid,
    pub workspace_connector_id: ConnectionId,
    pub connector_slug: String,
    pub status: Status,
    pub trigger_type: Option<TriggerType>,
    pub cloud_task_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    pub metadata: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Columns whose stored value cannot be read (another service wrote it outside the
    /// contract): shown as null here, named so a reader knows null is not the value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// A validated request to record a new run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSyncLog {
    pub workspace_connector_id: ConnectionId,
    pub connector_slug: String,
    pub trigger_type: Option<TriggerType>,
    pub cloud_task_id: Option<String>,
    pub status: Status,
    pub metadata: Option<Map<String, Value>>,
}

/// The health of one connection, from its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorStatus {
    pub workspace_connector_id: ConnectionId,
    pub connector_slug: String,
    /// Status of the most recently created run.
    pub last_status: Status,
    pub last_run_at: DateTime<Utc>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Failed runs completed after the last successful one.
    pub consecutive_failures: i64,
    /// Error text of the most recently completed failed run.
    pub last_error: Option<String>,
}
