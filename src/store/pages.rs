//! The status page's view of the sync log beyond the lifecycle API: [`PageReads`], each
//! read bounded by an index whatever the history, with the values it gives.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Result;
use crate::domain::ConnectionId;

/// One connector's terminal runs completed in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorOutcomes {
    pub connector_slug: String,
    pub succeeded: u64,
    pub failed: u64,
}

/// One connection's current failure streak, as the table records it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionSummary {
    pub last_success_at: Option<DateTime<Utc>>,
    /// Completion of the first failed run after the last success.
    pub failing_since: Option<DateTime<Utc>>,
    /// The most recently completed failed run.
    pub latest_error: Option<LatestError>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LatestError {
    pub run_id: Uuid,
    pub completed_at: DateTime<Utc>,
    pub error: Option<String>,
}

/// What the status page reads.
#[async_trait]
pub trait PageReads: Send + Sync + 'static {
    /// Terminal runs completed after `since`, per connector (soft-deleted ones included).
    async fn outcomes_since(&self, since: DateTime<Utc>) -> Result<Vec<ConnectorOutcomes>>;

    /// One connection's last success, the first failure after it, its latest failed run.
    async fn connection_summary(&self, id: &ConnectionId) -> Result<ConnectionSummary>;
}
