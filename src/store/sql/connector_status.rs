//! `GET /v1/connector-status`: one summary per connection (latest run, last success,
//! failures since, newest error), the most failing first, in keyset pages.

use super::SqlStore;
use crate::domain::ConnectorStatus;
use crate::store::engine::{Columns, Dialect, Engine, Param, PoolKind};
use crate::store::observed::TableMap;
use crate::store::{Result, StatusCursor, StatusFilter, StatusPage};

/// The most characters of an error text a summary carries (the run itself, `GET
/// /v1/sync-logs/{id}`, has the whole stored text).
pub const MAX_SUMMARY_ERROR_CHARS: usize = 2048;

/// Latest run per connection, last success, failures since it, and the newest error.
/// Parameters: 1 connection (or null), 2 connector (or null), 3 and 4 the cursor's
/// consecutive failures and connection (`i64::MAX` and null: the first page), 5 the rows to return.
/// The newest error is cut to [`MAX_SUMMARY_ERROR_CHARS`]: another service's table may
/// hold errors of any length, and a summary never carries them whole.
pub fn connector_status(d: &Dialect, t: &TableMap) -> String {
    format!(
        "with live as (
    select * from {src}
    where deleted_at is null
      and ({p1} is null or workspace_connector_id = {p1})
      and ({p2} is null or connector_slug = $2)
), latest as (
    select workspace_connector_id, connector_slug, status, created_at,
           workspace_connector_sync_log_id,
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
    select workspace_connector_id, substr(error, 1, {MAX_SUMMARY_ERROR_CHARS}) as error,
           row_number() over (partition by workspace_connector_id
                              order by completed_at desc, workspace_connector_sync_log_id desc) as rn
    from live where status = 'error'
)
select latest.workspace_connector_id, latest.connector_slug, latest.status,
       latest.created_at, success.last_success_at, failures.last_failure_at,
       coalesce(failures.consecutive_failures, 0), last_error.error,
       latest.workspace_connector_sync_log_id
from latest
left join success using (workspace_connector_id)
left join failures using (workspace_connector_id)
left join last_error on last_error.workspace_connector_id = latest.workspace_connector_id
                    and last_error.rn = 1
where latest.rn = 1
  and (coalesce(failures.consecutive_failures, 0) < {p3}
       or (coalesce(failures.consecutive_failures, 0) = {p3}
           and latest.workspace_connector_id > {p4}))
order by 7 desc, latest.workspace_connector_id
limit $5",
        p1 = t.connection_param(d, 1),
        p2 = d.typed(2, "text"),
        p3 = d.typed(3, "bigint"),
        p4 = t.connection_param(d, 4),
        src = t.source(d, "s"),
    )
}

/// A row of [`connector_status`].
pub fn decode_connector_status(row: &impl Columns) -> Result<ConnectorStatus> {
    Ok(ConnectorStatus {
        workspace_connector_id: row.connection_req(0)?,
        connector_slug: row.connector(1)?,
        last_status: row.status(2)?,
        last_run_at: row.timestamp_req(3)?,
        last_success_at: row.timestamp(4)?,
        last_failure_at: row.timestamp(5)?,
        consecutive_failures: row.int_req(6)?,
        last_error: row.text(7)?,
    })
}

impl<E: Engine> SqlStore<E> {
    /// One page of [`connector_status`]; `next_cursor` is set when more may follow.
    pub(super) async fn connector_status_page(&self, filter: &StatusFilter) -> Result<StatusPage> {
        let sql = connector_status(E::DIALECT, &self.table);
        let (failures, connection) = match &filter.cursor {
            Some(c) => (
                Param::Int(c.consecutive_failures),
                (&c.workspace_connector_id).into(),
            ),
            // The first page: every connection has fewer failures than this.
            None => (Param::Int(i64::MAX), Param::Text(None)),
        };
        let params = vec![
            Param::Text(
                filter
                    .workspace_connector_id
                    .as_ref()
                    .map(ToString::to_string),
            ),
            filter.connector_slug.clone().into(),
            failures,
            connection,
            Param::Int(i64::from(filter.limit) + 1),
        ];
        let rows = self.engine.fetch_all(PoolKind::Api, &sql, params).await?;
        let more = rows.len() > filter.limit as usize;
        let page = &rows[..rows.len().min(filter.limit as usize)];
        let items = self.decode_lenient(
            "connector status",
            page,
            // Named by its latest run, whose values the entry must read: a run the
            // scanner skipped too is counted once.
            Some((8, "run")),
            decode_connector_status,
        )?;
        let next_cursor = if more {
            items.last().map(StatusCursor::after)
        } else {
            None
        };
        Ok(StatusPage { items, next_cursor })
    }
}
