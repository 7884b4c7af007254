//! [`SqlStore`]: the one implementation of [`SyncLogStore`], over either database's
//! [`Engine`]. Every statement is written once (`statements.rs`, `scanner_reads.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::{Columns, Engine, Param, PoolKind};
use super::inspect::{self, TableDescription};
use super::learned_reads::{self, ActiveRun, RecentRun};
use super::scanner_reads::{
    self, ActiveGroup, ConnectionState, StuckCutoffs, TerminalAggregate, TerminalRun,
};
use super::statements::{self, decode_run};
use super::table::{ConnectorSource, Ident, TableMap};
use super::ui_reads::{self, ConnectionSummary, ConnectorOutcomes};
use super::{
    cas_failure, Backend, Change, ListFilter, Page, Result, SchemaStatus, StateSource,
    StatusFilter, StoreError, SyncLogStore,
};
use crate::domain::{ConnectorStatus, NewSyncLog, Status, SyncLog, TriggerType};

/// A store over one database engine (PostgreSQL or SQLite).
#[derive(Debug, Clone)]
pub struct SqlStore<E> {
    engine: E,
    table: TableMap,
}

impl<E: Engine> SqlStore<E> {
    pub fn new(engine: E, table: TableMap) -> Self {
        Self { engine, table }
    }

    async fn one_run(&self, sql: &str, params: Vec<Param>) -> Result<Option<SyncLog>> {
        let row = self
            .engine
            .fetch_optional(PoolKind::Api, sql, params)
            .await?;
        row.as_ref().map(decode_run).transpose()
    }

    async fn scan_rows(&self, sql: &str, params: Vec<Param>) -> Result<Vec<E::Row>> {
        self.engine.fetch_all(PoolKind::Scan, sql, params).await
    }

    /// A scanner read, every row decoded.
    async fn scan_decoded<T>(
        &self,
        sql: &str,
        params: Vec<Param>,
        decode: impl Fn(&E::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.scan_rows(sql, params)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// One table's catalogue entry.
    async fn describe(&self, table: &Ident) -> Result<TableDescription> {
        let [columns, indexes, readable] = inspect::describe_sql(E::BACKEND);
        let name = inspect::catalogue_name(E::BACKEND, table);
        let read = |sql: &'static str| {
            self.engine
                .fetch_all(PoolKind::Api, sql, vec![name.as_str().into()])
        };
        let (columns, indexes, readable) = (
            read(columns).await?,
            read(indexes).await?,
            read(readable).await?,
        );
        inspect::decode_description(&columns, &indexes, &readable)
    }

    #[tracing::instrument(skip_all)]
    async fn current_status(&self, id: Uuid) -> Result<Option<Status>> {
        let row = self
            .engine
            .fetch_optional(
                PoolKind::Api,
                &statements::live_status(E::DIALECT, &self.table),
                vec![id.into()],
            )
            .await?;
        row.map(|r| r.status(0)).transpose()
    }
}

fn json_text(metadata: &Option<serde_json::Map<String, serde_json::Value>>) -> Param {
    Param::Text(
        metadata
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string()),
    )
}

#[async_trait]
impl<E: Engine> SyncLogStore for SqlStore<E> {
    fn backend(&self) -> Backend {
        E::BACKEND
    }

    async fn migrate(&self) -> Result<()> {
        self.engine.migrate().await
    }

    #[tracing::instrument(skip_all)]
    async fn schema_status(&self) -> Result<SchemaStatus> {
        let expected = E::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let rows = self
            .engine
            .fetch_all(PoolKind::Api, E::DIALECT.migrations_table_exists, vec![])
            .await?;
        if rows.first().map(|r| r.count(0)).transpose()?.unwrap_or(0) == 0 {
            return Ok(SchemaStatus {
                applied: None,
                expected,
                dirty: false,
            });
        }
        let rows = self
            .engine
            .fetch_all(PoolKind::Api, statements::MIGRATIONS_STATE, vec![])
            .await?;
        let row = rows.first();
        Ok(SchemaStatus {
            applied: row.map(|r| r.int(0)).transpose()?.flatten(),
            expected,
            dirty: row.map(|r| r.count(1)).transpose()?.unwrap_or(0) > 0,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        self.engine
            .execute(PoolKind::Api, "select 1", vec![])
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn insert(&self, new: &NewSyncLog) -> Result<Option<SyncLog>> {
        let sql = statements::insert(E::DIALECT, &self.table);
        let params = vec![
            Uuid::new_v4().into(),
            new.workspace_connector_id.into(),
            new.connector_slug.as_str().into(),
            new.status.as_str().into(),
            Param::Text(new.trigger_type.map(|t| TriggerType::as_str(t).to_owned())),
            new.cloud_task_id.clone().into(),
            json_text(&new.metadata),
            (new.status == Status::InProgress).into(),
        ];
        self.one_run(&sql, params).await
    }

    #[tracing::instrument(skip_all)]
    async fn find_live_by_cloud_task(&self, cloud_task_id: &str) -> Result<Option<SyncLog>> {
        self.one_run(
            &statements::live_by_cloud_task(E::DIALECT, &self.table),
            vec![cloud_task_id.into()],
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(action = %change.action))]
    async fn apply(&self, id: Uuid, change: &Change) -> Result<SyncLog> {
        let sql = statements::transition(E::DIALECT, &self.table, change.action);
        let params = vec![
            id.into(),
            change.action.target().as_str().into(),
            change.error.clone().into(),
            json_text(&change.metadata),
        ];
        match self.one_run(&sql, params).await? {
            Some(row) => Ok(row),
            None => Err(cas_failure(change, self.current_status(id).await?)),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn get(&self, id: Uuid) -> Result<Option<SyncLog>> {
        self.one_run(
            &statements::live_by_id(E::DIALECT, &self.table),
            vec![id.into()],
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, filter: &ListFilter) -> Result<Page> {
        let mut conditions = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let mut condition = |column: &str, value: Param| {
            params.push(value);
            conditions.push(format!("{column} = ${}", params.len()));
        };
        if let Some(id) = filter.workspace_connector_id {
            condition("workspace_connector_id", id.into());
        }
        if let Some(slug) = &filter.connector_slug {
            condition("connector_slug", slug.as_str().into());
        }
        if let Some(status) = filter.status {
            // Compared as text: an observed table's status may be an enum type.
            condition("cast(status as text)", status.as_str().into());
        }
        let cursor_from = filter.cursor.map(|cursor| {
            params.push(cursor.created_at.into());
            params.push(cursor.id.into());
            params.len() - 1
        });
        params.push(Param::Int(i64::from(filter.limit) + 1));
        let sql = statements::list(
            E::DIALECT,
            &self.table,
            &conditions,
            cursor_from,
            params.len(),
        );
        let rows = self.engine.fetch_all(PoolKind::Api, &sql, params).await?;
        let mut items = rows.iter().map(decode_run).collect::<Result<Vec<_>>>()?;
        let next_cursor = super::paginate(&mut items, filter.limit);
        Ok(Page { items, next_cursor })
    }

    #[tracing::instrument(skip_all)]
    async fn soft_delete(&self, id: Uuid) -> Result<bool> {
        let sql = statements::soft_delete(E::DIALECT, &self.table);
        let done = self
            .engine
            .execute(PoolKind::Api, &sql, vec![id.into()])
            .await?;
        Ok(done == 1)
    }

    #[tracing::instrument(skip_all)]
    async fn connector_status(&self, filter: &StatusFilter) -> Result<Vec<ConnectorStatus>> {
        let sql = statements::connector_status(E::DIALECT, &self.table);
        let params = vec![
            Param::Uuid(filter.workspace_connector_id),
            filter.connector_slug.clone().into(),
        ];
        let rows = self.engine.fetch_all(PoolKind::Api, &sql, params).await?;
        rows.iter()
            .map(statements::decode_connector_status)
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn outcomes_since(&self, since: DateTime<Utc>) -> Result<Vec<ConnectorOutcomes>> {
        let sql = ui_reads::outcomes_since_sql(E::DIALECT, &self.table);
        let rows = self
            .engine
            .fetch_all(PoolKind::Api, &sql, vec![since.into()])
            .await?;
        ui_reads::fold_outcomes(&rows)
    }

    #[tracing::instrument(skip_all)]
    async fn connection_summary(&self, id: Uuid) -> Result<ConnectionSummary> {
        let sql = ui_reads::connection_summary_sql(E::DIALECT, &self.table);
        let rows = self
            .engine
            .fetch_all(PoolKind::Api, &sql, vec![id.into()])
            .await?;
        rows.first()
            .map(ui_reads::decode_connection_summary)
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn db_now(&self) -> Result<DateTime<Utc>> {
        let sql = format!("select {}", E::DIALECT.now);
        let rows = self.scan_rows(&sql, vec![]).await?;
        match rows.first() {
            Some(row) => row.timestamp_req(0),
            None => Err(StoreError::Corrupt(
                "the clock query returned no row".into(),
            )),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn terminal_aggregate(
        &self,
        after: Option<DateTime<Utc>>,
        upto: DateTime<Utc>,
        duration_bounds: &[f64],
        delay_bounds: &[f64],
    ) -> Result<Vec<TerminalAggregate>> {
        let d = E::DIALECT;
        let sql = scanner_reads::aggregate_sql(
            d,
            &self.table,
            duration_bounds,
            delay_bounds,
            after.is_some(),
        );
        let mut params = vec![Param::from(upto)];
        params.extend(after.map(Param::from));
        let rows = self.scan_rows(&sql, params).await?;
        rows.iter()
            .map(|row| scanner_reads::decode_aggregate(row, duration_bounds, delay_bounds))
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn terminal_after(
        &self,
        after: DateTime<Utc>,
        upto: Option<DateTime<Utc>>,
    ) -> Result<Vec<TerminalRun>> {
        let sql = scanner_reads::terminal_after_sql(E::DIALECT, &self.table, upto.is_some());
        let params = [Some(after), upto].into_iter().flatten().map(Param::from);
        self.scan_decoded(&sql, params.collect(), scanner_reads::decode_terminal_run)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn connection_states(
        &self,
        source: StateSource,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<ConnectionState>> {
        let sql = match source {
            StateSource::Table => {
                scanner_reads::connection_states_sql(E::DIALECT, &self.table, after.is_some())
            }
            StateSource::Saved => {
                scanner_reads::saved_connection_states_sql(E::DIALECT, after.is_some())
            }
        };
        let mut params = vec![Param::Int(limit.min(i64::MAX as usize) as i64)];
        params.extend(after.map(Param::from));
        self.scan_decoded(&sql, params, scanner_reads::decode_connection_state)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn terminal_boundary(
        &self,
        after: Option<DateTime<Utc>>,
        upto: DateTime<Utc>,
        rows: u64,
    ) -> Result<Option<DateTime<Utc>>> {
        let sql = scanner_reads::terminal_boundary_sql(E::DIALECT, &self.table, after.is_some());
        let offset = Param::Int(rows.saturating_sub(1).min(i64::MAX as u64) as i64);
        let mut params = vec![upto.into(), offset];
        params.extend(after.map(Param::from));
        let rows = self.scan_rows(&sql, params).await?;
        rows.first().map(|row| row.timestamp_req(0)).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn first_completed_at(&self) -> Result<Option<DateTime<Utc>>> {
        let rows = self
            .scan_rows(
                &scanner_reads::first_completed_sql(E::DIALECT, &self.table),
                vec![],
            )
            .await?;
        Ok(rows
            .first()
            .map(|row| row.timestamp(0))
            .transpose()?
            .flatten())
    }

    #[tracing::instrument(skip_all)]
    async fn prune(&self, before: DateTime<Utc>, batch: u64) -> Result<u64> {
        let params = vec![before.into(), Param::Int(batch.min(i64::MAX as u64) as i64)];
        self.engine
            .execute(
                PoolKind::Api,
                &scanner_reads::prune_sql(&self.table),
                params,
            )
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn active_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<ActiveGroup>> {
        let rows = self
            .scan_rows(
                &scanner_reads::active_sql(E::DIALECT, &self.table),
                cutoffs.params(),
            )
            .await?;
        rows.iter().map(scanner_reads::decode_active).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn stuck_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<Uuid>> {
        let rows = self
            .scan_rows(
                &scanner_reads::stuck_ids_sql(E::DIALECT, &self.table),
                cutoffs.params(),
            )
            .await?;
        rows.iter().map(|row| row.uuid_req(0)).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn active_run_list(&self, limit: usize) -> Result<Vec<ActiveRun>> {
        let sql = learned_reads::active_runs_sql(E::DIALECT, &self.table);
        let params = vec![Param::Int(limit.min(i64::MAX as usize) as i64)];
        self.scan_decoded(&sql, params, learned_reads::decode_active_run)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn recent_runs(&self, ids: &[Uuid]) -> Result<Vec<RecentRun>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = learned_reads::recent_runs_sql(E::DIALECT, &self.table, ids.len());
        let params = ids.iter().map(|id| Param::from(*id)).collect();
        self.scan_decoded(&sql, params, learned_reads::decode_recent_run)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn load_checkpoint(&self) -> Result<Option<(DateTime<Utc>, String)>> {
        let rows = self.scan_rows(statements::LOAD_CHECKPOINT, vec![]).await?;
        rows.first()
            .map(|row| Ok((row.timestamp_req(0)?, row.text_req(1)?)))
            .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn save_checkpoint(
        &self,
        settled_upto: DateTime<Utc>,
        totals: &str,
        connections: &[ConnectionState],
    ) -> Result<()> {
        // The states first: a failure between the two leaves them ahead of the totals,
        // which a start handles (it applies a run to a connection only when newer); the
        // reverse would leave the checkpoint claiming states that were never saved.
        for chunk in connections.chunks(CONNECTION_STATES_PER_STATEMENT) {
            let sql = scanner_reads::save_connection_states_sql(chunk.len());
            let params = chunk.iter().flat_map(ConnectionState::params).collect();
            self.engine.execute(PoolKind::Scan, &sql, params).await?;
        }
        let sql = statements::save_checkpoint(E::DIALECT);
        self.engine
            .execute(
                PoolKind::Scan,
                &sql,
                vec![settled_upto.into(), totals.into()],
            )
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn describe_table(&self) -> Result<TableDescription> {
        let mut found = self.describe(&self.table.table).await?;
        if let ConnectorSource::Lookup { table, .. } = &self.table.connector {
            found.lookup = Some(Box::new(self.describe(table).await?));
        }
        Ok(found)
    }
}

/// Rows of one connection-state upsert: 1000 parameters, well inside both databases'
/// limits.
const CONNECTION_STATES_PER_STATEMENT: usize = 200;
