//! What the scanner reads to learn each connection's schedule and usual duration: the live
//! runs, one by one, and each connection's latest scheduled runs and successful runs (after
//! a start, a chunk of connections at a time). Written once for both stores.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::{Columns, Dialect};
use super::table::TableMap;
use super::Result;
use crate::domain::Status;

/// One live run (scheduled or in progress), for the learned signals.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveRun {
    pub workspace_connector_id: Uuid,
    pub connector_slug: String,
    pub status: Status,
    pub trigger_type: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
}

/// One of a connection's latest runs: a scheduled run's creation (`duration_ms` null), or
/// a successful run's duration.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentRun {
    pub workspace_connector_id: Uuid,
    pub connector_slug: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
}

/// Live runs in progress, and live scheduled-trigger runs (the ones the learned state
/// reads), oldest first; at most `$1`.
pub fn active_runs_sql(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select workspace_connector_id, connector_slug, status, trigger_type, created_at, \
           started_at \
         from {} \
         where status in ('scheduled', 'in_progress') and deleted_at is null \
           and (status = 'in_progress' or trigger_type = 'cloud_task') \
         order by created_at limit $1",
        t.source(d, "s")
    )
}

/// For the `ids` connections (parameters `$1`…`$n`): their latest 21 live `cloud_task`
/// runs by creation, and their latest 20 live successful runs with a duration by
/// completion. Each connection's cut-off is one index probe (`offset` down its
/// `(connection, created_at)` or `(connection, completed_at)` index entries), then a range
/// read above it: its cost follows the number of connections, not their history.
pub fn recent_runs_sql(d: &Dialect, t: &TableMap, ids: usize) -> String {
    let values: Vec<String> = (1..=ids)
        .map(|n| format!("({})", d.typed(n, "uuid")))
        .collect();
    let probe = |alias: &str| t.source(d, alias);
    format!(
        "with c(id) as (values {values}),
floors as (
    select c.id,
        (select p.created_at from {p} where p.workspace_connector_id = c.id
           and p.trigger_type = 'cloud_task' and p.deleted_at is null
         order by p.created_at desc limit 1 offset 20) as created_floor,
        (select q.completed_at from {q} where q.workspace_connector_id = c.id
           and q.completed_at is not null and q.status = 'success' and q.deleted_at is null
           and q.duration_ms is not null
         order by q.completed_at desc limit 1 offset 19) as success_floor
    from c
)
select l.workspace_connector_id, l.connector_slug, l.created_at, null, null
from floors f join {l} on l.workspace_connector_id = f.id
where l.trigger_type = 'cloud_task' and l.deleted_at is null
  and (f.created_floor is null or l.created_at >= f.created_floor)
union all
select m.workspace_connector_id, m.connector_slug, m.created_at, m.completed_at, m.duration_ms
from floors f join {m} on m.workspace_connector_id = f.id
where m.completed_at is not null and m.status = 'success' and m.deleted_at is null
  and m.duration_ms is not null
  and (f.success_floor is null or m.completed_at >= f.success_floor)",
        values = values.join(", "),
        p = probe("p"),
        q = probe("q"),
        l = probe("l"),
        m = probe("m"),
    )
}

/// A row of [`active_runs_sql`].
pub fn decode_active_run(row: &impl Columns) -> Result<ActiveRun> {
    Ok(ActiveRun {
        workspace_connector_id: row.uuid_req(0)?,
        connector_slug: row.connector(1)?,
        status: row.status(2)?,
        trigger_type: row.text(3)?,
        created_at: row.timestamp_req(4)?,
        started_at: row.timestamp(5)?,
    })
}

/// A row of [`recent_runs_sql`].
pub fn decode_recent_run(row: &impl Columns) -> Result<RecentRun> {
    Ok(RecentRun {
        workspace_connector_id: row.uuid_req(0)?,
        connector_slug: row.connector(1)?,
        created_at: row.timestamp_req(2)?,
        completed_at: row.timestamp(3)?,
        duration_ms: row.int(4)?,
    })
}
