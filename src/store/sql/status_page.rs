//! What the status page reads beyond the lifecycle API: terminal outcomes per connector
//! since a point in time, and one connection's summary (last success, the first failure
//! after it, its latest failed run); bounded by an index whatever the history, with
//! [`PageReads`] over them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::connector_status::MAX_SUMMARY_ERROR_CHARS;
use super::SqlStore;
use crate::domain::{ConnectionId, Status};
use crate::store::engine::{readable, Columns, Dialect, Engine, PoolKind};
use crate::store::observed::TableMap;
use crate::store::{
    ConnectionSummary, ConnectorOutcomes, LatestError, PageReads, Result, StoreError,
};

/// Terminal runs completed after `$1`, counted per connector and status. Soft-deleted runs
/// count, as they do in the exported totals.
pub fn outcomes_since_sql(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select connector_slug, cast(status as text), count(*) from {} \
         where completed_at > {} and status in ('success', 'error') \
         group by connector_slug, cast(status as text)",
        t.source(d, "s"),
        d.typed(1, "timestamptz"),
    )
}

/// Rows of [`outcomes_since_sql`], folded per connector.
pub fn fold_outcomes(rows: &[impl Columns]) -> Result<Vec<ConnectorOutcomes>> {
    let mut out: Vec<ConnectorOutcomes> = Vec::new();
    for row in rows {
        let connector = row.connector(0)?;
        let status = match row.status(1) {
            Ok(status) => status,
            // Runs of a status outside the contract are neither successes nor failures.
            Err(StoreError::Unreadable(_)) => continue,
            Err(e) => return Err(e),
        };
        let count = u64::try_from(row.int_req(2)?).unwrap_or(0);
        let index = match out.iter().position(|o| o.connector_slug == connector) {
            Some(i) => i,
            None => {
                out.push(ConnectorOutcomes {
                    connector_slug: connector,
                    succeeded: 0,
                    failed: 0,
                });
                out.len() - 1
            }
        };
        match status {
            Status::Success => out[index].succeeded += count,
            Status::Error => out[index].failed += count,
            _ => {}
        }
    }
    out.sort_by(|a, b| a.connector_slug.cmp(&b.connector_slug));
    Ok(out)
}

/// The connection `$1`'s last success, the first failure after it, and its latest failed
/// run: three probes of its `(connection, completed_at, id)` index entries, whatever its
/// history (the first failure is looked up from the last success on, a range the index
/// bounds, in its own branch so the bound is never `null`). The error is cut to
/// [`MAX_SUMMARY_ERROR_CHARS`], as every summary's.
pub fn connection_summary_sql(d: &Dialect, t: &TableMap) -> String {
    let src = |alias: &str| t.source(d, alias);
    let id = t.connection_param(d, 1);
    format!(
        "with last_success as (
    select max(completed_at) as at from {s1}
    where workspace_connector_id = {id} and status = 'success'
), latest_error as (
    select workspace_connector_sync_log_id, completed_at,
           substr(error, 1, {MAX_SUMMARY_ERROR_CHARS}) as error from {s2}
    where workspace_connector_id = {id} and status = 'error' and completed_at is not null
    order by completed_at desc, workspace_connector_sync_log_id desc limit 1
)
select last_success.at,
       case when last_success.at is null
            then (select min(completed_at) from {s3}
                  where workspace_connector_id = {id} and status = 'error')
            else (select min(completed_at) from {s4}
                  where workspace_connector_id = {id} and status = 'error'
                    and completed_at > last_success.at)
       end,
       latest_error.workspace_connector_sync_log_id, latest_error.completed_at,
       latest_error.error
from last_success left join latest_error on 1 = 1",
        s1 = src("s1"),
        s2 = src("s2"),
        s3 = src("s3"),
        s4 = src("s4"),
    )
}

/// The row of [`connection_summary_sql`].
pub fn decode_connection_summary(row: &impl Columns) -> Result<ConnectionSummary> {
    // A value that does not decode is shown as unknown rather than failing the page.
    let latest_error = match (readable(row.uuid(2))?, readable(row.timestamp(3))?) {
        (Some(run_id), Some(completed_at)) => Some(LatestError {
            run_id,
            completed_at,
            error: readable(row.text(4))?,
        }),
        _ => None,
    };
    Ok(ConnectionSummary {
        last_success_at: readable(row.timestamp(0))?,
        failing_since: readable(row.timestamp(1))?,
        latest_error,
    })
}

#[async_trait]
impl<E: Engine> PageReads for SqlStore<E> {
    #[tracing::instrument(skip_all)]
    async fn outcomes_since(&self, since: DateTime<Utc>) -> Result<Vec<ConnectorOutcomes>> {
        let sql = outcomes_since_sql(E::DIALECT, &self.table);
        let rows = self
            .engine
            .fetch_all(PoolKind::Api, &sql, vec![since.into()])
            .await?;
        fold_outcomes(&rows)
    }

    #[tracing::instrument(skip_all)]
    async fn connection_summary(&self, id: &ConnectionId) -> Result<ConnectionSummary> {
        let sql = connection_summary_sql(E::DIALECT, &self.table);
        let rows = self
            .engine
            .fetch_all(PoolKind::Api, &sql, vec![id.into()])
            .await?;
        rows.first()
            .map(decode_connection_summary)
            .transpose()
            .map(Option::unwrap_or_default)
    }
}
