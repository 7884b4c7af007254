//! The production store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{QueryBuilder, Row};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

use super::scan::{
    self, ActiveGroup, ConnectionState, StuckCutoffs, TerminalAggregate, TerminalRun,
};
use super::{
    bucket_counts, cas_failure, parse_status, Change, ListFilter, Page, PoolOptions, Result,
    SchemaStatus, StatusFilter, StoreError, SyncLogStore,
};
use crate::config::{Backend, DatabaseUrl};
use crate::domain::{Action, ConnectorStatus, NewSyncLog, Status, SyncLog, TriggerType};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

const COLUMNS: &str = "workspace_connector_sync_log_id, workspace_connector_id, connector_slug, \
     status, trigger_type, cloud_task_id, started_at, completed_at, duration_ms, error, metadata, \
     created_at, updated_at";

/// Two pools on one database: `pool` serves the API (and the reaper's transitions),
/// `scan_pool` serves the scanner's reads, so a slow scan cannot take the connections the
/// API needs, and each side gets its own server-side `statement_timeout`.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    scan_pool: PgPool,
    /// Migrations run on a connection of their own, without a statement timeout.
    connect: PgConnectOptions,
}

/// Connections of the scanner's pool: one scan reads one query at a time; the second
/// lets a scan and `syncwatch scan --once` or a test overlap without waiting.
const SCAN_POOL_CONNECTIONS: u32 = 2;

impl PostgresStore {
    pub async fn connect(url: &DatabaseUrl, options: &PoolOptions) -> Result<Self> {
        let connect = PgConnectOptions::from_str(url.expose())
            .map_err(|e| StoreError::Corrupt(format!("invalid database URL {url}: {e}")))?
            .application_name("syncwatch");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(with_statement_timeout(
                connect.clone(),
                options.statement_timeout,
            ));
        let scan_pool = PgPoolOptions::new()
            .max_connections(SCAN_POOL_CONNECTIONS)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(with_statement_timeout(
                connect.clone().application_name("syncwatch-scanner"),
                options.scan_statement_timeout,
            ));
        Ok(Self {
            pool,
            scan_pool,
            connect,
        })
    }

    /// A store on an existing pool (tests): the scanner shares it and no timeout is set.
    pub fn from_pool(pool: PgPool) -> Self {
        let connect = (*pool.connect_options()).clone();
        Self {
            scan_pool: pool.clone(),
            pool,
            connect,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    #[tracing::instrument(skip_all)]
    async fn current_status(&self, id: Uuid) -> Result<Option<Status>> {
        let status: Option<String> = sqlx::query_scalar(
            "select status from workspace_connector_sync_log \
             where workspace_connector_sync_log_id = $1 and deleted_at is null",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        status
            .map(|s| s.parse().map_err(StoreError::Corrupt))
            .transpose()
    }
}

#[async_trait]
impl SyncLogStore for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    #[tracing::instrument(skip_all)]
    async fn migrate(&self) -> Result<()> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.connect.clone())
            .await?;
        let result = MIGRATOR.run(&pool).await;
        pool.close().await;
        result?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn schema_status(&self) -> Result<SchemaStatus> {
        let expected = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let exists: bool = sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
            .fetch_one(&self.pool)
            .await?;
        if !exists {
            return Ok(SchemaStatus {
                applied: None,
                expected,
                dirty: false,
            });
        }
        let (applied, dirty): (Option<i64>, bool) = sqlx::query_as(
            "select max(version) filter (where success), coalesce(bool_or(not success), false) \
             from _sqlx_migrations",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(SchemaStatus {
            applied,
            expected,
            dirty,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn insert(&self, new: &NewSyncLog) -> Result<Option<SyncLog>> {
        let sql = format!(
            "insert into workspace_connector_sync_log \
               (workspace_connector_id, connector_slug, status, trigger_type, cloud_task_id, \
                metadata, started_at) \
             values ($1, $2, $3, $4, $5, $6, case when $7 then now() end) \
             on conflict (cloud_task_id) where cloud_task_id is not null and deleted_at is null \
             do nothing \
             returning {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new.workspace_connector_id)
            .bind(&new.connector_slug)
            .bind(new.status.as_str())
            .bind(new.trigger_type.map(TriggerType::as_str))
            .bind(&new.cloud_task_id)
            .bind(
                new.metadata
                    .clone()
                    .map(|m| sqlx::types::Json(Value::Object(m))),
            )
            .bind(new.status == Status::InProgress)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode(&r)).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn find_live_by_cloud_task(&self, cloud_task_id: &str) -> Result<Option<SyncLog>> {
        let sql = format!(
            "select {COLUMNS} from workspace_connector_sync_log \
             where cloud_task_id = $1 and deleted_at is null"
        );
        let row = sqlx::query(&sql)
            .bind(cloud_task_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode(&r)).transpose()
    }

    #[tracing::instrument(skip_all, fields(action = %change.action))]
    async fn apply(&self, id: Uuid, change: &Change) -> Result<SyncLog> {
        let terminal = change.action.target().is_terminal();
        let sql = format!(
            "update workspace_connector_sync_log set \
               status = $2, \
               started_at = case when $3 then now() else started_at end, \
               completed_at = case when $4 then now() else completed_at end, \
               duration_ms = case when $4 and started_at is not null \
                 then least(greatest(round(extract(epoch from (now() - started_at)) * 1000), 0), \
                            2147483647)::integer \
                 else duration_ms end, \
               error = coalesce($5, error), \
               metadata = case when $6::jsonb is null then metadata \
                 else syncwatch_merge_patch(metadata, $6::jsonb) end, \
               updated_at = now() \
             where workspace_connector_sync_log_id = $1 and deleted_at is null \
               and status = any($7) \
             returning {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(change.action.target().as_str())
            .bind(change.action == Action::Start)
            .bind(terminal)
            .bind(&change.error)
            .bind(change.metadata_json())
            .bind(change.allowed_statuses())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => decode(&row),
            None => Err(cas_failure(change, self.current_status(id).await?)),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn get(&self, id: Uuid) -> Result<Option<SyncLog>> {
        let sql = format!(
            "select {COLUMNS} from workspace_connector_sync_log \
             where workspace_connector_sync_log_id = $1 and deleted_at is null"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode(&r)).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, filter: &ListFilter) -> Result<Page> {
        let mut qb = QueryBuilder::new(format!(
            "select {COLUMNS} from workspace_connector_sync_log where deleted_at is null"
        ));
        if let Some(id) = filter.workspace_connector_id {
            qb.push(" and workspace_connector_id = ").push_bind(id);
        }
        if let Some(slug) = &filter.connector_slug {
            qb.push(" and connector_slug = ").push_bind(slug.clone());
        }
        if let Some(status) = filter.status {
            qb.push(" and status = ").push_bind(status.as_str());
        }
        if let Some(cursor) = filter.cursor {
            qb.push(" and (created_at, workspace_connector_sync_log_id) < (")
                .push_bind(cursor.created_at)
                .push(", ")
                .push_bind(cursor.id)
                .push(")");
        }
        qb.push(" order by created_at desc, workspace_connector_sync_log_id desc limit ")
            .push_bind(i64::from(filter.limit) + 1);
        let rows = qb.build().fetch_all(&self.pool).await?;
        let mut items = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
        let next_cursor = super::paginate(&mut items, filter.limit);
        Ok(Page { items, next_cursor })
    }

    #[tracing::instrument(skip_all)]
    async fn soft_delete(&self, id: Uuid) -> Result<bool> {
        let done = sqlx::query(
            "update workspace_connector_sync_log set deleted_at = now(), updated_at = now() \
             where workspace_connector_sync_log_id = $1 and deleted_at is null",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all)]
    async fn connector_status(&self, filter: &StatusFilter) -> Result<Vec<ConnectorStatus>> {
        let rows = sqlx::query(CONNECTOR_STATUS_SQL)
            .bind(filter.workspace_connector_id)
            .bind(&filter.connector_slug)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("last_status")?;
                Ok(ConnectorStatus {
                    workspace_connector_id: row.try_get("workspace_connector_id")?,
                    connector_slug: row.try_get("connector_slug")?,
                    last_status: status.parse().map_err(StoreError::Corrupt)?,
                    last_run_at: row.try_get("last_run_at")?,
                    last_success_at: row.try_get("last_success_at")?,
                    last_failure_at: row.try_get("last_failure_at")?,
                    consecutive_failures: row.try_get("consecutive_failures")?,
                    last_error: row.try_get("last_error")?,
                })
            })
            .collect()
    }

    async fn db_now(&self) -> Result<DateTime<Utc>> {
        Ok(sqlx::query_scalar("select now()")
            .fetch_one(&self.scan_pool)
            .await?)
    }

    #[tracing::instrument(skip_all)]
    async fn terminal_aggregate(
        &self,
        after: Option<DateTime<Utc>>,
        upto: DateTime<Utc>,
        duration_bounds: &[f64],
        delay_bounds: &[f64],
    ) -> Result<Vec<TerminalAggregate>> {
        let sql = scan::aggregate_sql(
            &scan::POSTGRES,
            duration_bounds,
            delay_bounds,
            after.is_some(),
        );
        let mut query = sqlx::query(&sql).bind(upto);
        if let Some(after) = after {
            query = query.bind(after);
        }
        let rows = query.fetch_all(&self.scan_pool).await?;
        rows.iter()
            .map(|row| {
                Ok(TerminalAggregate {
                    connector_slug: row.try_get(0)?,
                    trigger_type: row.try_get(1)?,
                    status: parse_status(row.try_get(2)?)?,
                    runs: row.try_get::<i64, _>(3)? as u64,
                    duration_count: row.try_get::<i64, _>(4)? as u64,
                    duration_sum_seconds: row.try_get::<i64, _>(5)? as f64 / 1000.0,
                    delay_count: row.try_get::<i64, _>(6)? as u64,
                    delay_sum_seconds: row.try_get(7)?,
                    records_synced: row.try_get(8)?,
                    last_completed_at: row.try_get(9)?,
                    duration_buckets: bucket_counts(row, 10, duration_bounds.len())?,
                    delay_buckets: bucket_counts(
                        row,
                        10 + duration_bounds.len(),
                        delay_bounds.len(),
                    )?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn terminal_after(&self, after: DateTime<Utc>) -> Result<Vec<TerminalRun>> {
        let sql = scan::terminal_after_sql(&scan::POSTGRES);
        let rows = sqlx::query(&sql)
            .bind(after)
            .fetch_all(&self.scan_pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TerminalRun {
                    id: row.try_get(0)?,
                    workspace_connector_id: row.try_get(1)?,
                    connector_slug: row.try_get(2)?,
                    trigger_type: row.try_get(3)?,
                    status: parse_status(row.try_get(4)?)?,
                    duration_seconds: row
                        .try_get::<Option<i32>, _>(5)?
                        .map(|ms| f64::from(ms) / 1000.0),
                    dispatch_delay_seconds: row.try_get(6)?,
                    records_synced: row.try_get(7)?,
                    completed_at: row.try_get(8)?,
                    created_at: row.try_get(9)?,
                    started_at: row.try_get(10)?,
                    error: row.try_get(11)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn connection_states(&self) -> Result<Vec<ConnectionState>> {
        let rows = sqlx::query(scan::CONNECTION_STATES_SQL)
            .fetch_all(&self.scan_pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ConnectionState {
                    workspace_connector_id: row.try_get(0)?,
                    connector_slug: row.try_get(1)?,
                    last_status: parse_status(row.try_get(2)?)?,
                    last_completed_at: row.try_get(3)?,
                    consecutive_failures: row.try_get::<i64, _>(4)? as u64,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn active_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<ActiveGroup>> {
        let sql = scan::active_sql(&scan::POSTGRES);
        let rows = sqlx::query(&sql)
            .bind(cutoffs.scheduled_before)
            .bind(cutoffs.idle_before)
            .bind(cutoffs.started_before)
            .fetch_all(&self.scan_pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ActiveGroup {
                    connector_slug: row.try_get(0)?,
                    status: parse_status(row.try_get(1)?)?,
                    count: row.try_get::<i64, _>(2)? as u64,
                    stuck: row.try_get::<i64, _>(3)? as u64,
                    oldest: row.try_get(4)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn stuck_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<Uuid>> {
        let sql = scan::stuck_ids_sql(&scan::POSTGRES);
        Ok(sqlx::query_scalar(&sql)
            .bind(cutoffs.scheduled_before)
            .bind(cutoffs.idle_before)
            .bind(cutoffs.started_before)
            .fetch_all(&self.scan_pool)
            .await?)
    }

    #[tracing::instrument(skip_all)]
    async fn load_checkpoint(&self) -> Result<Option<(DateTime<Utc>, String)>> {
        Ok(sqlx::query_as(
            "select settled_upto, totals from syncwatch_scanner_checkpoint where name = 'totals'",
        )
        .fetch_optional(&self.scan_pool)
        .await?)
    }

    #[tracing::instrument(skip_all)]
    async fn save_checkpoint(&self, settled_upto: DateTime<Utc>, totals: &str) -> Result<()> {
        sqlx::query(
            "insert into syncwatch_scanner_checkpoint (name, settled_upto, totals) \
             values ('totals', $1, $2) \
             on conflict (name) do update set settled_upto = excluded.settled_upto, \
               totals = excluded.totals, updated_at = now()",
        )
        .bind(settled_upto)
        .bind(totals)
        .execute(&self.scan_pool)
        .await?;
        Ok(())
    }
}

/// Latest run per connection, last success, failures since it, and the newest error.
const CONNECTOR_STATUS_SQL: &str = "
with live as (
    select * from workspace_connector_sync_log
    where deleted_at is null
      and ($1::uuid is null or workspace_connector_id = $1)
      and ($2::text is null or connector_slug = $2)
), latest as (
    select distinct on (workspace_connector_id)
           workspace_connector_id, connector_slug, status, created_at
    from live
    order by workspace_connector_id, created_at desc, workspace_connector_sync_log_id desc
), success as (
    select workspace_connector_id, max(completed_at) as last_success_at
    from live where status = 'success' group by workspace_connector_id
), failures as (
    select l.workspace_connector_id,
           count(*) filter (where s.last_success_at is null or l.completed_at > s.last_success_at)
               as consecutive_failures,
           max(l.completed_at) as last_failure_at
    from live l left join success s using (workspace_connector_id)
    where l.status = 'error'
    group by l.workspace_connector_id
), last_error as (
    select distinct on (workspace_connector_id) workspace_connector_id, error
    from live where status = 'error'
    order by workspace_connector_id, completed_at desc, workspace_connector_sync_log_id desc
)
select latest.workspace_connector_id, latest.connector_slug, latest.status as last_status,
       latest.created_at as last_run_at, success.last_success_at, failures.last_failure_at,
       coalesce(failures.consecutive_failures, 0) as consecutive_failures,
       last_error.error as last_error
from latest
left join success using (workspace_connector_id)
left join failures using (workspace_connector_id)
left join last_error using (workspace_connector_id)
order by consecutive_failures desc, latest.workspace_connector_id
";

fn decode(row: &PgRow) -> Result<SyncLog> {
    let status: String = row.try_get("status")?;
    let trigger: Option<String> = row.try_get("trigger_type")?;
    let duration: Option<i32> = row.try_get("duration_ms")?;
    let metadata: Option<sqlx::types::Json<Value>> = row.try_get("metadata")?;
    Ok(SyncLog {
        workspace_connector_sync_log_id: row.try_get("workspace_connector_sync_log_id")?,
        workspace_connector_id: row.try_get("workspace_connector_id")?,
        connector_slug: row.try_get("connector_slug")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        trigger_type: trigger
            .map(|t| t.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        cloud_task_id: row.try_get("cloud_task_id")?,
        started_at: row.try_get::<Option<DateTime<Utc>>, _>("started_at")?,
        completed_at: row.try_get::<Option<DateTime<Utc>>, _>("completed_at")?,
        duration_ms: duration.map(i64::from),
        error: row.try_get("error")?,
        metadata: metadata.map(|m| m.0),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Ask the server to cancel any statement of these connections running longer than
/// `timeout` (a `statement_timeout` startup parameter), so a slow query frees its
/// connection and the database's resources instead of piling up.
fn with_statement_timeout(
    connect: PgConnectOptions,
    timeout: Option<Duration>,
) -> PgConnectOptions {
    match timeout {
        Some(t) if !t.is_zero() => {
            connect.options([("statement_timeout", format!("{}ms", t.as_millis()))])
        }
        _ => connect,
    }
}
