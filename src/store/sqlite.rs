//! The embedded default store: one SQLite file, WAL mode, a busy timeout.
//!
//! Every write is one statement, so SQLite's single-writer lock makes each
//! compare-and-set atomic; the busy timeout makes concurrent writers queue instead of
//! failing. Timestamps are UTC text in one fixed format (see the migration).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row};
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

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const COLUMNS: &str = "workspace_connector_sync_log_id, workspace_connector_id, connector_slug, \
     status, trigger_type, cloud_task_id, started_at, completed_at, duration_ms, error, metadata, \
     created_at, updated_at";

/// SQLite's clock in the stored format. Within one statement SQLite evaluates `'now'` once,
/// so every use in a statement sees the same instant.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &DatabaseUrl, options: &PoolOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url.expose())
            .map_err(|e| StoreError::Corrupt(format!("invalid database URL {url}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    #[tracing::instrument(skip_all)]
    async fn current_status(&self, id: Uuid) -> Result<Option<Status>> {
        let status: Option<String> = sqlx::query_scalar(
            "select status from workspace_connector_sync_log \
             where workspace_connector_sync_log_id = ?1 and deleted_at is null",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        status
            .map(|s| s.parse().map_err(StoreError::Corrupt))
            .transpose()
    }
}

#[async_trait]
impl SyncLogStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    #[tracing::instrument(skip_all)]
    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn schema_status(&self) -> Result<SchemaStatus> {
        let expected = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let exists: bool = sqlx::query_scalar(
            "select count(*) > 0 from sqlite_master where type = 'table' and name = '_sqlx_migrations'",
        )
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
            "select max(case when success then version end), coalesce(max(not success), 0) \
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
               (workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status, \
                trigger_type, cloud_task_id, metadata, started_at) \
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, case when ?8 then {NOW} end) \
             on conflict (cloud_task_id) where cloud_task_id is not null and deleted_at is null \
             do nothing \
             returning {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(Uuid::new_v4().to_string())
            .bind(new.workspace_connector_id.to_string())
            .bind(&new.connector_slug)
            .bind(new.status.as_str())
            .bind(new.trigger_type.map(TriggerType::as_str))
            .bind(&new.cloud_task_id)
            .bind(new.metadata.clone().map(|m| Value::Object(m).to_string()))
            .bind(new.status == Status::InProgress)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode(&r)).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn find_live_by_cloud_task(&self, cloud_task_id: &str) -> Result<Option<SyncLog>> {
        let sql = format!(
            "select {COLUMNS} from workspace_connector_sync_log \
             where cloud_task_id = ?1 and deleted_at is null"
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
               status = ?2, \
               started_at = case when ?3 then {NOW} else started_at end, \
               completed_at = case when ?4 then {NOW} else completed_at end, \
               duration_ms = case when ?4 and started_at is not null \
                 then max(0, min(2147483647, cast(round( \
                        (julianday({NOW}) - julianday(started_at)) * 86400000.0) as integer))) \
                 else duration_ms end, \
               error = coalesce(?5, error), \
               metadata = case when ?6 is null then metadata \
                 else json_patch(coalesce(metadata, '{{}}'), ?6) end, \
               updated_at = {NOW} \
             where workspace_connector_sync_log_id = ?1 and deleted_at is null \
               and status in (select value from json_each(?7)) \
             returning {COLUMNS}"
        );
        let allowed = serde_json::to_string(&change.allowed_statuses())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(change.action.target().as_str())
            .bind(change.action == Action::Start)
            .bind(terminal)
            .bind(&change.error)
            .bind(change.metadata_json())
            .bind(allowed)
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
             where workspace_connector_sync_log_id = ?1 and deleted_at is null"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
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
            qb.push(" and workspace_connector_id = ")
                .push_bind(id.to_string());
        }
        if let Some(slug) = &filter.connector_slug {
            qb.push(" and connector_slug = ").push_bind(slug.clone());
        }
        if let Some(status) = filter.status {
            qb.push(" and status = ").push_bind(status.as_str());
        }
        if let Some(cursor) = filter.cursor {
            qb.push(" and (created_at, workspace_connector_sync_log_id) < (")
                .push_bind(format_ts(cursor.created_at))
                .push(", ")
                .push_bind(cursor.id.to_string())
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
        let sql = format!(
            "update workspace_connector_sync_log set deleted_at = {NOW}, updated_at = {NOW} \
             where workspace_connector_sync_log_id = ?1 and deleted_at is null"
        );
        let done = sqlx::query(&sql)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all)]
    async fn connector_status(&self, filter: &StatusFilter) -> Result<Vec<ConnectorStatus>> {
        let rows = sqlx::query(CONNECTOR_STATUS_SQL)
            .bind(filter.workspace_connector_id.map(|id| id.to_string()))
            .bind(&filter.connector_slug)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("last_status")?;
                let id: String = row.try_get("workspace_connector_id")?;
                Ok(ConnectorStatus {
                    workspace_connector_id: parse_uuid(&id)?,
                    connector_slug: row.try_get("connector_slug")?,
                    last_status: status.parse().map_err(StoreError::Corrupt)?,
                    last_run_at: parse_ts(&row.try_get::<String, _>("last_run_at")?)?,
                    last_success_at: opt_ts(row.try_get("last_success_at")?)?,
                    last_failure_at: opt_ts(row.try_get("last_failure_at")?)?,
                    consecutive_failures: row.try_get("consecutive_failures")?,
                    last_error: row.try_get("last_error")?,
                })
            })
            .collect()
    }

    async fn db_now(&self) -> Result<DateTime<Utc>> {
        let now: String = sqlx::query_scalar(&format!("select {NOW}"))
            .fetch_one(&self.pool)
            .await?;
        parse_ts(&now)
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
            &scan::SQLITE,
            duration_bounds,
            delay_bounds,
            after.is_some(),
        );
        let mut query = sqlx::query(&sql).bind(format_ts(upto));
        if let Some(after) = after {
            query = query.bind(format_ts(after));
        }
        let rows = query.fetch_all(&self.pool).await?;
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
                    last_completed_at: opt_ts(row.try_get(9)?)?,
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
        let sql = scan::terminal_after_sql(&scan::SQLITE);
        let rows = sqlx::query(&sql)
            .bind(format_ts(after))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TerminalRun {
                    id: parse_uuid(&row.try_get::<String, _>(0)?)?,
                    workspace_connector_id: parse_uuid(&row.try_get::<String, _>(1)?)?,
                    connector_slug: row.try_get(2)?,
                    trigger_type: row.try_get(3)?,
                    status: parse_status(row.try_get(4)?)?,
                    duration_seconds: row
                        .try_get::<Option<i64>, _>(5)?
                        .map(|ms| ms as f64 / 1000.0),
                    dispatch_delay_seconds: row.try_get(6)?,
                    records_synced: row.try_get(7)?,
                    completed_at: parse_ts(&row.try_get::<String, _>(8)?)?,
                    created_at: parse_ts(&row.try_get::<String, _>(9)?)?,
                    started_at: opt_ts(row.try_get(10)?)?,
                    error: row.try_get(11)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn connection_states(&self) -> Result<Vec<ConnectionState>> {
        let rows = sqlx::query(scan::CONNECTION_STATES_SQL)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ConnectionState {
                    workspace_connector_id: parse_uuid(&row.try_get::<String, _>(0)?)?,
                    connector_slug: row.try_get(1)?,
                    last_status: parse_status(row.try_get(2)?)?,
                    last_completed_at: parse_ts(&row.try_get::<String, _>(3)?)?,
                    consecutive_failures: row.try_get::<i64, _>(4)? as u64,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn active_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<ActiveGroup>> {
        let sql = scan::active_sql(&scan::SQLITE);
        let rows = sqlx::query(&sql)
            .bind(format_ts(cutoffs.scheduled_before))
            .bind(format_ts(cutoffs.idle_before))
            .bind(format_ts(cutoffs.started_before))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ActiveGroup {
                    connector_slug: row.try_get(0)?,
                    status: parse_status(row.try_get(1)?)?,
                    count: row.try_get::<i64, _>(2)? as u64,
                    stuck: row.try_get::<i64, _>(3)? as u64,
                    oldest: parse_ts(&row.try_get::<String, _>(4)?)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn stuck_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<Uuid>> {
        let sql = scan::stuck_ids_sql(&scan::SQLITE);
        let ids: Vec<String> = sqlx::query_scalar(&sql)
            .bind(format_ts(cutoffs.scheduled_before))
            .bind(format_ts(cutoffs.idle_before))
            .bind(format_ts(cutoffs.started_before))
            .fetch_all(&self.pool)
            .await?;
        ids.iter().map(|id| parse_uuid(id)).collect()
    }

    #[tracing::instrument(skip_all)]
    async fn load_checkpoint(&self) -> Result<Option<(DateTime<Utc>, String)>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "select settled_upto, totals from syncwatch_scanner_checkpoint where name = 'totals'",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(at, totals)| Ok((parse_ts(&at)?, totals)))
            .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn save_checkpoint(&self, settled_upto: DateTime<Utc>, totals: &str) -> Result<()> {
        sqlx::query(
            "insert into syncwatch_scanner_checkpoint (name, settled_upto, totals) \
             values ('totals', ?1, ?2) \
             on conflict (name) do update set settled_upto = excluded.settled_upto, \
               totals = excluded.totals, \
               updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(format_ts(settled_upto))
        .bind(totals)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The same question as the Postgres query, with window functions for `distinct on`.
const CONNECTOR_STATUS_SQL: &str = "
with live as (
    select * from workspace_connector_sync_log
    where deleted_at is null
      and (?1 is null or workspace_connector_id = ?1)
      and (?2 is null or connector_slug = ?2)
), latest as (
    select workspace_connector_id, connector_slug, status, created_at,
           row_number() over (partition by workspace_connector_id
                              order by created_at desc, workspace_connector_sync_log_id desc) as rn
    from live
), success as (
    select workspace_connector_id, max(completed_at) as last_success_at
    from live where status = 'success' group by workspace_connector_id
), failures as (
    select l.workspace_connector_id,
           sum(case when s.last_success_at is null or l.completed_at > s.last_success_at
                    then 1 else 0 end) as consecutive_failures,
           max(l.completed_at) as last_failure_at
    from live l left join success s using (workspace_connector_id)
    where l.status = 'error'
    group by l.workspace_connector_id
), last_error as (
    select workspace_connector_id, error,
           row_number() over (partition by workspace_connector_id
                              order by completed_at desc, workspace_connector_sync_log_id desc) as rn
    from live where status = 'error'
)
select latest.workspace_connector_id, latest.connector_slug, latest.status as last_status,
       latest.created_at as last_run_at, success.last_success_at, failures.last_failure_at,
       coalesce(failures.consecutive_failures, 0) as consecutive_failures,
       last_error.error as last_error
from latest
left join success using (workspace_connector_id)
left join failures using (workspace_connector_id)
left join last_error on last_error.workspace_connector_id = latest.workspace_connector_id
                    and last_error.rn = 1
where latest.rn = 1
order by consecutive_failures desc, latest.workspace_connector_id
";

/// The stored timestamp format: millisecond precision, `Z` suffix.
pub fn format_ts(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads the stored format, and the other text forms SQLite users write by hand
/// (`YYYY-MM-DD HH:MM:SS[.fff]`, taken as UTC).
fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(ts) = DateTime::parse_from_rfc3339(text) {
        return Ok(ts.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .map(|naive| naive.and_utc())
        .map_err(|_| StoreError::Corrupt(format!("unreadable timestamp {text:?}")))
}

fn opt_ts(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_ts).transpose()
}

fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::try_parse(text).map_err(|_| StoreError::Corrupt(format!("unreadable uuid {text:?}")))
}

fn decode(row: &SqliteRow) -> Result<SyncLog> {
    let status: String = row.try_get("status")?;
    let trigger: Option<String> = row.try_get("trigger_type")?;
    let metadata: Option<String> = row.try_get("metadata")?;
    let id: String = row.try_get("workspace_connector_sync_log_id")?;
    let connection: String = row.try_get("workspace_connector_id")?;
    Ok(SyncLog {
        workspace_connector_sync_log_id: parse_uuid(&id)?,
        workspace_connector_id: parse_uuid(&connection)?,
        connector_slug: row.try_get("connector_slug")?,
        status: status.parse().map_err(StoreError::Corrupt)?,
        trigger_type: trigger
            .map(|t| t.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        cloud_task_id: row.try_get("cloud_task_id")?,
        started_at: opt_ts(row.try_get("started_at")?)?,
        completed_at: opt_ts(row.try_get("completed_at")?)?,
        duration_ms: row.try_get("duration_ms")?,
        error: row.try_get("error")?,
        metadata: metadata
            .map(|m| serde_json::from_str(&m))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("unreadable metadata: {e}")))?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_format_sorts_as_time_and_parses_back() {
        let a = DateTime::from_timestamp_millis(1_764_000_000_005).unwrap();
        let b = DateTime::from_timestamp_millis(1_764_000_000_040).unwrap();
        assert!(format_ts(a) < format_ts(b));
        assert_eq!(format_ts(a), "2025-11-24T16:00:00.005Z");
        assert_eq!(parse_ts(&format_ts(b)).unwrap(), b);
        assert_eq!(
            parse_ts("2025-11-24 16:00:00").unwrap(),
            DateTime::from_timestamp_millis(1_764_000_000_000).unwrap()
        );
        assert!(parse_ts("yesterday").is_err());
    }
}
