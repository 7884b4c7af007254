//! An observed table: another service writes the sync log, syncwatch only reads it. Reads
//! go to the observed table (through its [`super::TableMap`]); syncwatch's own state — the
//! scanner's checkpoint and saved connection states — goes to a separate state store, or
//! nowhere (the scanner then keeps it in memory and rebuilds it after a restart). Every
//! write to the sync log is refused here as well as at the API.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::inspect::TableDescription;
use super::{
    ActiveGroup, ActiveRun, Backend, Change, ConnectionState, ConnectionSummary, ConnectorOutcomes,
    ListFilter, Page, RecentRun, Result, SchemaStatus, StateSource, StatusFilter, Store,
    StoreError, StuckCutoffs, SyncLogStore, TerminalAggregate, TerminalRun,
};
use crate::domain::{ConnectorStatus, NewSyncLog, SyncLog};

pub struct ObservedStore {
    table: Store,
    state: Option<Store>,
}

impl ObservedStore {
    /// `table` reads the observed table; `state` holds syncwatch's own tables, if any.
    pub fn new(table: Store, state: Option<Store>) -> Self {
        Self { table, state }
    }
}

#[async_trait]
impl SyncLogStore for ObservedStore {
    fn backend(&self) -> Backend {
        self.table.backend()
    }

    fn observe_only(&self) -> bool {
        true
    }

    /// Migrates the state store only: the observed table is never altered.
    async fn migrate(&self) -> Result<()> {
        match &self.state {
            Some(state) => state.migrate().await,
            None => Ok(()),
        }
    }

    /// The state store's schema; with none there is no schema of syncwatch's to be behind.
    async fn schema_status(&self) -> Result<SchemaStatus> {
        match &self.state {
            Some(state) => state.schema_status().await,
            None => Ok(SchemaStatus {
                applied: Some(0),
                expected: 0,
                dirty: false,
            }),
        }
    }

    /// A read of the observed table (by its unique public id, so an index probe), which
    /// also proves the role may read it and the mapped columns exist.
    async fn ping(&self) -> Result<()> {
        self.table.get(Uuid::nil()).await?;
        if let Some(state) = &self.state {
            state.ping().await?;
        }
        Ok(())
    }

    async fn insert(&self, _new: &NewSyncLog) -> Result<Option<SyncLog>> {
        Err(StoreError::ObserveOnly)
    }

    async fn find_live_by_cloud_task(&self, cloud_task_id: &str) -> Result<Option<SyncLog>> {
        self.table.find_live_by_cloud_task(cloud_task_id).await
    }

    async fn apply(&self, _id: Uuid, _change: &Change) -> Result<SyncLog> {
        Err(StoreError::ObserveOnly)
    }

    async fn get(&self, id: Uuid) -> Result<Option<SyncLog>> {
        self.table.get(id).await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Page> {
        self.table.list(filter).await
    }

    async fn soft_delete(&self, _id: Uuid) -> Result<bool> {
        Err(StoreError::ObserveOnly)
    }

    async fn connector_status(&self, filter: &StatusFilter) -> Result<Vec<ConnectorStatus>> {
        self.table.connector_status(filter).await
    }

    async fn outcomes_since(&self, since: DateTime<Utc>) -> Result<Vec<ConnectorOutcomes>> {
        self.table.outcomes_since(since).await
    }

    async fn connection_summary(&self, id: Uuid) -> Result<ConnectionSummary> {
        self.table.connection_summary(id).await
    }

    async fn db_now(&self) -> Result<DateTime<Utc>> {
        self.table.db_now().await
    }

    async fn terminal_aggregate(
        &self,
        after: Option<DateTime<Utc>>,
        upto: DateTime<Utc>,
        duration_bounds: &[f64],
        delay_bounds: &[f64],
    ) -> Result<Vec<TerminalAggregate>> {
        self.table
            .terminal_aggregate(after, upto, duration_bounds, delay_bounds)
            .await
    }

    async fn terminal_after(
        &self,
        after: DateTime<Utc>,
        upto: Option<DateTime<Utc>>,
    ) -> Result<Vec<TerminalRun>> {
        self.table.terminal_after(after, upto).await
    }

    async fn connection_states(
        &self,
        source: StateSource,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ConnectionState>> {
        match (source, &self.state) {
            (StateSource::Table, _) => self.table.connection_states(source, after, limit).await,
            (StateSource::Saved, Some(state)) => {
                state.connection_states(source, after, limit).await
            }
            (StateSource::Saved, None) => Ok(Vec::new()),
        }
    }

    async fn terminal_boundary(
        &self,
        after: Option<DateTime<Utc>>,
        upto: DateTime<Utc>,
        rows: u64,
    ) -> Result<Option<DateTime<Utc>>> {
        self.table.terminal_boundary(after, upto, rows).await
    }

    async fn first_completed_at(&self) -> Result<Option<DateTime<Utc>>> {
        self.table.first_completed_at().await
    }

    async fn prune(&self, _before: DateTime<Utc>, _batch: u64) -> Result<u64> {
        Err(StoreError::ObserveOnly)
    }

    async fn active_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<ActiveGroup>> {
        self.table.active_runs(cutoffs).await
    }

    async fn stuck_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<Uuid>> {
        self.table.stuck_runs(cutoffs).await
    }

    async fn active_run_list(&self, limit: usize) -> Result<Vec<ActiveRun>> {
        self.table.active_run_list(limit).await
    }

    async fn recent_runs(&self, ids: &[Uuid]) -> Result<Vec<RecentRun>> {
        self.table.recent_runs(ids).await
    }

    async fn load_checkpoint(&self) -> Result<Option<(DateTime<Utc>, String)>> {
        match &self.state {
            Some(state) => state.load_checkpoint().await,
            None => Ok(None),
        }
    }

    /// Without a state store nothing is saved: the scanner's state lives in its memory.
    async fn save_checkpoint(
        &self,
        settled_upto: DateTime<Utc>,
        totals: &str,
        connections: &[ConnectionState],
    ) -> Result<()> {
        match &self.state {
            Some(state) => {
                state
                    .save_checkpoint(settled_upto, totals, connections)
                    .await
            }
            None => Ok(()),
        }
    }

    async fn describe_table(&self) -> Result<TableDescription> {
        self.table.describe_table().await
    }
}
