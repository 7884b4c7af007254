//! What the scanner reads from a store: aggregates of terminal runs (computed in SQL),
//! terminal runs completed after a point in time, per-connection state, and the active
//! runs. The SQL text is shared by both stores; only a few expressions differ.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::Status;

/// Terminal runs of one (connector, trigger, status), histogram buckets counted in SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalAggregate {
    pub connector_slug: String,
    pub trigger_type: Option<String>,
    pub status: Status,
    pub runs: u64,
    /// Runs with a duration (they started); `duration_buckets[i]` counts those with
    /// `duration <= bounds[i]`.
    pub duration_count: u64,
    pub duration_sum_seconds: f64,
    pub duration_buckets: Vec<u64>,
    pub delay_count: u64,
    pub delay_sum_seconds: f64,
    pub delay_buckets: Vec<u64>,
    pub records_synced: f64,
    pub last_completed_at: Option<DateTime<Utc>>,
}

/// One terminal run, for the incremental scan.
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalRun {
    pub id: Uuid,
    pub workspace_connector_id: Uuid,
    pub connector_slug: String,
    pub trigger_type: Option<String>,
    pub status: Status,
    pub duration_seconds: Option<f64>,
    pub dispatch_delay_seconds: Option<f64>,
    pub records_synced: Option<f64>,
    pub completed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// The latest terminal run of one connection and the failures since its last success.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionState {
    pub workspace_connector_id: Uuid,
    pub connector_slug: String,
    pub last_status: Status,
    pub last_completed_at: DateTime<Utc>,
    pub consecutive_failures: u64,
}

/// Active runs of one (connector, status).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveGroup {
    pub connector_slug: String,
    pub status: Status,
    pub count: u64,
    pub stuck: u64,
    pub oldest: DateTime<Utc>,
}

/// When an active run counts as stuck, as absolute cut-offs computed from the clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StuckCutoffs {
    /// `scheduled` and created before this.
    pub scheduled_before: DateTime<Utc>,
    /// `in_progress` and not updated (no heartbeat) since this.
    pub idle_before: DateTime<Utc>,
    /// `in_progress` and started before this (ran longer than the maximum).
    pub started_before: DateTime<Utc>,
}

/// The expressions in which the two SQL dialects differ.
pub(crate) struct Dialect {
    /// `started_at - created_at` in seconds, as a float rounded to milliseconds (the
    /// stores' common precision, so both give the same figures).
    pub delay_seconds: &'static str,
    /// `metadata.records_synced` when it is a non-negative number, as a float, else null.
    pub records_synced: &'static str,
    /// Placeholder for the n-th (1-based) bind parameter.
    pub param: fn(usize) -> String,
}

pub(crate) const POSTGRES: Dialect = Dialect {
    // date_part returns a double; extract() returns numeric, whose arithmetic made the
    // baseline aggregate several times slower.
    delay_seconds: "(round(date_part('epoch', started_at - created_at) * 1000::float8) \
        / 1000::float8)",
    records_synced: "case when jsonb_typeof(metadata -> 'records_synced') = 'number' \
        and (metadata ->> 'records_synced')::float8 >= 0 \
        then (metadata ->> 'records_synced')::float8 end",
    param: |n| format!("${n}"),
};

pub(crate) const SQLITE: Dialect = Dialect {
    delay_seconds: "(round((julianday(started_at) - julianday(created_at)) * 86400000.0) / 1000.0)",
    records_synced: "case when json_type(metadata, '$.records_synced') in ('integer', 'real') \
        and json_extract(metadata, '$.records_synced') >= 0 \
        then cast(json_extract(metadata, '$.records_synced') as real) end",
    param: |n| format!("?{n}"),
};

/// Format a bucket bound for SQL. Bounds come from validated configuration, never from
/// a request.
fn sql_number(value: f64) -> String {
    if value.is_finite() {
        format!("{value:?}")
    } else {
        "0".into()
    }
}

/// Aggregate of all terminal runs (soft-deleted included: a run that happened stays
/// counted) completed at or before parameter 1, and with `after`, strictly after
/// parameter 2 (an index range on `completed_at`).
pub(crate) fn aggregate_sql(
    d: &Dialect,
    duration_bounds: &[f64],
    delay_bounds: &[f64],
    after: bool,
) -> String {
    let mut cols = Vec::new();
    for bound in duration_bounds {
        // Whole milliseconds compare as integers (a fractional literal would make
        // Postgres compare every row as numeric).
        let ms = bound * 1000.0;
        let ms = if ms.fract() == 0.0 && ms.abs() < 9e15 {
            format!("{}", ms as i64)
        } else {
            sql_number(ms)
        };
        cols.push(format!(
            "coalesce(sum(case when duration_ms <= {ms} then 1 else 0 end), 0)"
        ));
    }
    let delay = d.delay_seconds;
    for bound in delay_bounds {
        cols.push(format!(
            "coalesce(sum(case when started_at is not null and {delay} <= {} then 1 else 0 end), 0)",
            sql_number(*bound)
        ));
    }
    let buckets = if cols.is_empty() {
        String::new()
    } else {
        format!(", {}", cols.join(", "))
    };
    format!(
        "select connector_slug, trigger_type, status, count(*) as runs, \
           count(duration_ms) as duration_count, \
           coalesce(sum(duration_ms), 0) as duration_sum_ms, \
           count(started_at) as delay_count, \
           coalesce(sum(case when started_at is not null then {delay} end), 0.0) as delay_sum, \
           coalesce(sum({records}), 0.0) as records_synced, \
           max(completed_at) as last_completed_at{buckets} \
         from workspace_connector_sync_log \
         where completed_at is not null and completed_at <= {p1}{lower} \
         group by connector_slug, trigger_type, status",
        records = d.records_synced,
        p1 = (d.param)(1),
        lower = if after {
            format!(" and completed_at > {}", (d.param)(2))
        } else {
            String::new()
        },
    )
}

/// Terminal runs completed after parameter 1 (soft-deleted included).
pub(crate) fn terminal_after_sql(d: &Dialect) -> String {
    format!(
        "select workspace_connector_sync_log_id, workspace_connector_id, connector_slug, \
           trigger_type, status, duration_ms, \
           case when started_at is not null then {delay} end as delay_seconds, \
           {records} as records_synced, completed_at, created_at, started_at, error \
         from workspace_connector_sync_log \
         where completed_at is not null and completed_at > {p1} \
         order by completed_at",
        delay = d.delay_seconds,
        records = d.records_synced,
        p1 = (d.param)(1),
    )
}

/// Per connection: latest terminal run and failures after the last success.
///
/// Written as index probes on `connection_terminal_idx` (workspace_connector_id,
/// completed_at, id) so its cost follows the number of connections and their current
/// failure streaks, not the length of the history: the connections are enumerated by a
/// loose index scan (one probe each), then per connection the latest terminal run, the
/// latest success, and the failures after it are read from the same index. Every terminal
/// run completed after the latest success is an error, so that count is an index range
/// with no status to check; a connection that never succeeded counts all its errors.
pub(crate) const CONNECTION_STATES_SQL: &str = "
with recursive connections(id) as (
    select (select workspace_connector_id from workspace_connector_sync_log
            where completed_at is not null
            order by workspace_connector_id limit 1)
    union all
    select (select l.workspace_connector_id from workspace_connector_sync_log l
            where l.completed_at is not null and l.workspace_connector_id > c.id
            order by l.workspace_connector_id limit 1)
    from connections c where c.id is not null
), latest as (
    select c.id as workspace_connector_id,
           (select l.id from workspace_connector_sync_log l
            where l.workspace_connector_id = c.id and l.completed_at is not null
            order by l.completed_at desc, l.id desc limit 1) as last_id,
           (select l.completed_at from workspace_connector_sync_log l
            where l.workspace_connector_id = c.id and l.completed_at is not null
              and l.status = 'success'
            order by l.completed_at desc, l.id desc limit 1) as last_success
    from connections c where c.id is not null
)
select x.workspace_connector_id, t.connector_slug, t.status, t.completed_at,
       case when x.last_success is null then
           (select count(*) from workspace_connector_sync_log e
            where e.workspace_connector_id = x.workspace_connector_id
              and e.completed_at is not null and e.status = 'error')
       else
           (select count(*) from workspace_connector_sync_log e
            where e.workspace_connector_id = x.workspace_connector_id
              and e.completed_at > x.last_success)
       end as consecutive_failures
from latest x join workspace_connector_sync_log t on t.id = x.last_id
";

/// Active runs grouped by connector and status, with stuck counts. Parameters: 1 the
/// scheduled cut-off, 2 the idle cut-off, 3 the started cut-off.
pub(crate) fn active_sql(d: &Dialect) -> String {
    let (p1, p2, p3) = ((d.param)(1), (d.param)(2), (d.param)(3));
    format!(
        "select connector_slug, status, count(*) as runs, \
           coalesce(sum(case \
             when status = 'scheduled' and created_at < {p1} then 1 \
             when status = 'in_progress' and (updated_at < {p2} \
                  or coalesce(started_at, created_at) < {p3}) then 1 \
             else 0 end), 0) as stuck, \
           min(case when status = 'in_progress' then coalesce(started_at, created_at) \
                    else created_at end) as oldest \
         from workspace_connector_sync_log \
         where status in ('scheduled', 'in_progress') and deleted_at is null \
         group by connector_slug, status"
    )
}

/// Ids of active runs stuck by the same rules (parameters as in [`active_sql`]).
pub(crate) fn stuck_ids_sql(d: &Dialect) -> String {
    let (p1, p2, p3) = ((d.param)(1), (d.param)(2), (d.param)(3));
    format!(
        "select workspace_connector_sync_log_id from workspace_connector_sync_log \
         where status in ('scheduled', 'in_progress') and deleted_at is null and ( \
           (status = 'scheduled' and created_at < {p1}) or \
           (status = 'in_progress' and (updated_at < {p2} \
              or coalesce(started_at, created_at) < {p3}))) \
         order by created_at limit 1000"
    )
}

/// The scanner's Postgres queries with their parameters written in as SQL (the late-commit
/// window and the default stuck cut-offs), for `EXPLAIN` in the benchmarks and docs.
pub fn postgres_scanner_queries(
    duration_bounds: &[f64],
    delay_bounds: &[f64],
) -> Vec<(&'static str, String)> {
    let d = &POSTGRES;
    let window = "(now() - interval '5 minutes')";
    vec![
        (
            "baseline: terminal aggregate",
            aggregate_sql(d, duration_bounds, delay_bounds, false).replace("$1", window),
        ),
        (
            "start from a checkpoint 1 h old: the terminal aggregate since",
            aggregate_sql(d, duration_bounds, delay_bounds, true)
                .replace("$1", window)
                .replace("$2", "(now() - interval '65 minutes')"),
        ),
        (
            "baseline: connection states",
            CONNECTION_STATES_SQL.to_owned(),
        ),
        (
            "every scan: runs completed in the window",
            terminal_after_sql(d).replace("$1", window),
        ),
        (
            "every scan: active runs",
            active_sql(d)
                .replace("$1", "(now() - interval '15 minutes')")
                .replace("$2", "(now() - interval '30 minutes')")
                .replace("$3", "(now() - interval '6 hours')"),
        ),
    ]
}
