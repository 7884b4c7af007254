//! syncwatch's own state: [`StateStore`] keeps the scanner's checkpoint (its totals and the
//! point they are settled up to) and the per-connection states it saved with it, in
//! syncwatch's tables (beside an owned sync log, or in a state store beside an observed
//! one), or nowhere ([`NoState`]: the scanner keeps them in memory).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::domain::{ConnectionId, Status};

/// The latest terminal run of one connection and the failures since its last success.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionState {
    pub workspace_connector_id: ConnectionId,
    pub connector_slug: String,
    pub last_status: Status,
    pub last_completed_at: DateTime<Utc>,
    pub consecutive_failures: u64,
    /// When its latest success completed, if known (`None`: never, or a state saved before
    /// syncwatch kept it): a failure completed before it never extends the streak.
    pub last_success_at: Option<DateTime<Utc>>,
    /// What the scanner learned about the connection, in its saved form
    /// ([`LearnedState::saved`](crate::scan::LearnedState)); `None` when read from the
    /// table, or saved before syncwatch kept it.
    pub learned: Option<String>,
}

/// Where the scanner's checkpoint is kept.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// The scanner's saved totals: the point they are settled up to, and their JSON.
    async fn load_checkpoint(&self) -> Result<Option<(DateTime<Utc>, String)>>;

    /// Only the point the saved totals are settled up to (for a page that shows how old
    /// the checkpoint is, without reading the totals).
    async fn checkpoint_settled_upto(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self.load_checkpoint().await?.map(|(at, _)| at))
    }

    /// Upsert the given connection states, then replace the scanner's saved totals (in
    /// that order, so saved totals never claim states that were not saved).
    async fn save_checkpoint(
        &self,
        settled_upto: DateTime<Utc>,
        totals: &str,
        connections: &[ConnectionState],
    ) -> Result<()>;

    /// Forget the checkpoint — the saved totals first, then the connection states — when it
    /// cannot be continued (or there is none): the build from the table that follows walks
    /// every connection again and saves them anew, and meanwhile nothing (`prune`, another
    /// replica) takes the old totals or states for current.
    async fn forget_checkpoint(&self) -> Result<()>;

    /// Forget the saved states of connections whose latest terminal run completed before
    /// `before` (retention has deleted all their runs).
    async fn forget_connections_before(&self, before: DateTime<Utc>) -> Result<()>;

    /// At most `limit` saved connection states in id order after `after` (from the first
    /// when `None`).
    async fn saved_connection_states(
        &self,
        after: Option<ConnectionId>,
        limit: usize,
    ) -> Result<Vec<ConnectionState>>;
}

/// No state store (an observed table without one): nothing is saved, nothing is loaded;
/// the scanner's state lives in its memory and is rebuilt from the table after a restart.
pub struct NoState;

#[async_trait]
impl StateStore for NoState {
    async fn load_checkpoint(&self) -> Result<Option<(DateTime<Utc>, String)>> {
        Ok(None)
    }

    async fn save_checkpoint(
        &self,
        _settled_upto: DateTime<Utc>,
        _totals: &str,
        _connections: &[ConnectionState],
    ) -> Result<()> {
        Ok(())
    }

    async fn forget_checkpoint(&self) -> Result<()> {
        Ok(())
    }

    async fn forget_connections_before(&self, _before: DateTime<Utc>) -> Result<()> {
        Ok(())
    }

    async fn saved_connection_states(
        &self,
        _after: Option<ConnectionId>,
        _limit: usize,
    ) -> Result<Vec<ConnectionState>> {
        Ok(Vec::new())
    }
}
