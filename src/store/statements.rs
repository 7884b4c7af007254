//! The lifecycle statements, each written once for both stores against a [`Dialect`],
//! and the decoders of their rows.

use super::dialect::{Columns, Dialect};
use super::table::TableMap;
use super::{Result, StoreError};
use crate::domain::{Action, ConnectorStatus, SyncLog};

/// The columns every statement returning a run selects, in the order [`decode_run`] reads.
pub const RUN_COLUMNS: &str = "workspace_connector_sync_log_id, workspace_connector_id, \
     connector_slug, status, trigger_type, cloud_task_id, started_at, completed_at, duration_ms, \
     error, metadata, created_at, updated_at";

/// Parameters: 1 id, 2 connection, 3 connector, 4 status, 5 trigger, 6 cloud task id,
/// 7 metadata (JSON text), 8 whether the run starts now.
pub fn insert(d: &Dialect, t: &TableMap) -> String {
    format!(
        "insert into {target} \
           (workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status, \
            trigger_type, cloud_task_id, metadata, started_at) \
         values ($1, $2, $3, $4, $5, $6, {metadata}, case when $8 then {now} end) \
         on conflict (cloud_task_id) where cloud_task_id is not null and deleted_at is null \
         do nothing \
         returning {RUN_COLUMNS}",
        metadata = d.typed(7, "jsonb"),
        now = d.now,
        target = t.target(),
    )
}

/// The live run with a `cloud_task_id` (parameter 1).
pub fn live_by_cloud_task(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select {RUN_COLUMNS} from {} where cloud_task_id = $1 and deleted_at is null",
        t.source(d, "s")
    )
}

/// The live run with a public id (parameter 1).
pub fn live_by_id(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select {RUN_COLUMNS} from {} \
         where workspace_connector_sync_log_id = $1 and deleted_at is null",
        t.source(d, "s")
    )
}

/// The status of the live run with a public id (parameter 1).
pub fn live_status(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select status from {} \
         where workspace_connector_sync_log_id = $1 and deleted_at is null",
        t.source(d, "s")
    )
}

/// The compare-and-set transition for `action`: it only matches a live run in one of the
/// statuses the action is allowed from (written into the statement from the state
/// machine, never from input). Parameters: 1 id, 2 new status, 3 error, 4 metadata patch
/// (JSON text).
pub fn transition(d: &Dialect, t: &TableMap, action: Action) -> String {
    let allowed: Vec<String> = action
        .allowed_from()
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let now = d.now;
    let started = if action == Action::Start {
        now
    } else {
        "started_at"
    };
    let finishing = action.target().is_terminal();
    let (completed, duration) = if finishing {
        (
            now.to_owned(),
            format!(
                "case when started_at is not null then {} end",
                d.elapsed_ms()
            ),
        )
    } else {
        ("completed_at".to_owned(), "duration_ms".to_owned())
    };
    format!(
        "update {target} set \
           status = $2, started_at = {started}, completed_at = {completed}, \
           duration_ms = {duration}, error = coalesce($3, error), \
           metadata = case when $4 is null then metadata else {merge} end, \
           updated_at = {now} \
         where workspace_connector_sync_log_id = $1 and deleted_at is null \
           and status in ({allowed}) \
         returning {RUN_COLUMNS}",
        merge = d.merge_patch(4),
        allowed = allowed.join(", "),
        target = t.target(),
    )
}

/// Soft delete of the live run with a public id (parameter 1).
pub fn soft_delete(d: &Dialect, t: &TableMap) -> String {
    format!(
        "update {target} set deleted_at = {now}, updated_at = {now} \
         where workspace_connector_sync_log_id = $1 and deleted_at is null",
        now = d.now,
        target = t.target(),
    )
}

/// One keyset page of live runs, newest first. `filters` are the conditions already
/// numbered; the cursor and the limit take the next parameters.
pub fn list(
    d: &Dialect,
    t: &TableMap,
    filters: &[String],
    cursor_from: Option<usize>,
    limit_param: usize,
) -> String {
    let mut sql = format!(
        "select {RUN_COLUMNS} from {} where deleted_at is null",
        t.source(d, "s")
    );
    for filter in filters {
        sql.push_str(" and ");
        sql.push_str(filter);
    }
    if let Some(n) = cursor_from {
        sql.push_str(&format!(
            " and (created_at, workspace_connector_sync_log_id) < (${n}, ${})",
            n + 1
        ));
    }
    sql.push_str(&format!(
        " order by created_at desc, workspace_connector_sync_log_id desc limit ${limit_param}"
    ));
    sql
}

/// Latest run per connection, last success, failures since it, and the newest error.
/// Parameters: 1 connection (or null), 2 connector (or null).
pub fn connector_status(d: &Dialect, t: &TableMap) -> String {
    format!(
        "with live as (
    select * from {src}
    where deleted_at is null
      and ({p1} is null or workspace_connector_id = $1)
      and ({p2} is null or connector_slug = $2)
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
select latest.workspace_connector_id, latest.connector_slug, latest.status,
       latest.created_at, success.last_success_at, failures.last_failure_at,
       coalesce(failures.consecutive_failures, 0), last_error.error
from latest
left join success using (workspace_connector_id)
left join failures using (workspace_connector_id)
left join last_error on last_error.workspace_connector_id = latest.workspace_connector_id
                    and last_error.rn = 1
where latest.rn = 1
order by 7 desc, latest.workspace_connector_id",
        p1 = d.typed(1, "uuid"),
        p2 = d.typed(2, "text"),
        src = t.source(d, "s"),
    )
}

/// The highest applied migration, and 1 when one of them failed (same text on both).
pub const MIGRATIONS_STATE: &str = "select max(case when success then version end), \
     max(case when success then 0 else 1 end) from _sqlx_migrations";

/// The scanner's saved totals.
pub const LOAD_CHECKPOINT: &str =
    "select settled_upto, totals from syncwatch_scanner_checkpoint where name = 'totals'";

/// Replace the scanner's saved totals. Parameters: 1 settled up to, 2 totals (JSON text).
pub fn save_checkpoint(d: &Dialect) -> String {
    format!(
        "insert into syncwatch_scanner_checkpoint (name, settled_upto, totals) \
         values ('totals', $1, $2) \
         on conflict (name) do update set settled_upto = excluded.settled_upto, \
           totals = excluded.totals, updated_at = {now}",
        now = d.now
    )
}

/// A row selected with [`RUN_COLUMNS`].
pub fn decode_run(row: &impl Columns) -> Result<SyncLog> {
    Ok(SyncLog {
        workspace_connector_sync_log_id: row.uuid_req(0)?,
        workspace_connector_id: row.uuid_req(1)?,
        connector_slug: row.connector(2)?,
        status: row.status(3)?,
        trigger_type: row
            .text(4)?
            .map(|t| t.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        cloud_task_id: row.text(5)?,
        started_at: row.timestamp(6)?,
        completed_at: row.timestamp(7)?,
        duration_ms: row.int(8)?,
        error: row.text(9)?,
        metadata: row.json(10)?,
        created_at: row.timestamp_req(11)?,
        updated_at: row.timestamp_req(12)?,
    })
}

/// A row of [`connector_status`].
pub fn decode_connector_status(row: &impl Columns) -> Result<ConnectorStatus> {
    Ok(ConnectorStatus {
        workspace_connector_id: row.uuid_req(0)?,
        connector_slug: row.connector(1)?,
        last_status: row.status(2)?,
        last_run_at: row.timestamp_req(3)?,
        last_success_at: row.timestamp(4)?,
        last_failure_at: row.timestamp(5)?,
        consecutive_failures: row.int_req(6)?,
        last_error: row.text(7)?,
    })
}
