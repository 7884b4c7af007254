//! What the scanner reads about finished runs: aggregates of terminal runs (computed in
//! SQL), terminal runs completed after a point in time, chunk boundaries, per-connection
//! states walked from the table, and the database clock; their decoders, and
//! [`ScanSource`] over them. Each query is written once for both stores; the few
//! expressions that differ come from the [`Dialect`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::connection_walk::connection_states_sql;
pub use super::position::Bound;
use super::SqlStore;
use crate::domain::ConnectionId;
use crate::store::engine::{readable, Columns, Dialect, Engine, Param};
use crate::store::observed::TableMap;
use crate::store::{
    ConnectionChunk, ConnectionState, Position, Result, ScanSource, StoreError, TerminalAggregate,
    TerminalRun, Unreadable, UnreadableReason, ERROR_PREFIX_CHARS,
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
/// parameter 2 (an index range on `completed_at`). A run without a public id or a
/// connection is left out, as the reads of single runs skip it (and count it in
/// `syncwatch_rows_skipped_total`), so a build, a sweep and a steady scan count the same
/// runs.
pub fn aggregate_sql(
    d: &Dialect,
    t: &TableMap,
    duration_bounds: &[f64],
    delay_bounds: &[f64],
    upto: Bound,
    after: Bound,
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
           cast(coalesce(sum(duration_ms), 0) as bigint) as duration_sum_ms, \
           count(case when started_at is not null then {delay} end) as delay_count, \
           coalesce(sum(case when started_at is not null then {delay} end), 0.0) as delay_sum, \
           coalesce(sum({records}), 0.0) as records_synced, \
           max(completed_at) as last_completed_at, {error} as error{buckets} \
         from {src} \
         where completed_at is not null{upper}{lower} \
           and status in ('scheduled', 'in_progress', 'success', 'error') \
           and workspace_connector_sync_log_id is not null and workspace_connector_id is not null \
         group by connector_slug, trigger_type, status, {error}",
        records = d.records_synced,
        src = t.source(d, "s"),
        upper = upto.upto(d, t, 1),
        lower = after.after(d, t, 1 + upto.len()),
        error = format_args!(
            "case when status = 'error' then substr(error, 1, {ERROR_PREFIX_CHARS}) end"
        ),
    )
}

/// Terminal runs after the position at parameter 1 (and 2, keyed) and, with `upto`, at or
/// before the one after it (soft-deleted included), in position order; with `limit`, at
/// most the last parameter's count.
pub fn terminal_after_sql(
    d: &Dialect,
    t: &TableMap,
    after: Bound,
    upto: Bound,
    limit: bool,
) -> String {
    format!(
        "select workspace_connector_sync_log_id, workspace_connector_id, connector_slug, \
           trigger_type, status, duration_ms, \
           case when started_at is not null then {delay} end as delay_seconds, \
           {records} as records_synced, completed_at, created_at, started_at, error, \
           case when deleted_at is not null then 1 else 0 end as deleted, \
           case when completed_at > {horizon} then 1 else 0 end as ahead, \
           cast(id as text) as run_key \
         from {src} \
         where completed_at is not null{lower}{upper} \
         order by completed_at, id{limit}",
        delay = d.delay_seconds,
        horizon = d.horizon,
        // Unbounded above, it is a steady scan's window: few runs.
        src = if upto != Bound::None {
            t.source(d, "s")
        } else {
            t.source_of_few(d, "s")
        },
        records = d.records_synced,
        lower = after.after(d, t, 1),
        upper = upto.upto(d, t, 1 + after.len()),
        limit = if limit {
            format!(" limit ${}", 1 + after.len() + upto.len())
        } else {
            String::new()
        },
    )
}

/// The position (completion time, key as text) of the `$2 + 1`-th terminal run completed
/// at or before `$1` (and after the position at `$3`, when given), in position order:
/// where a chunk of that many runs ends; and 1 when another run completed at the same
/// instant comes after it (so the chunk ends inside the instant), else 0. An index range
/// on `completed_at` of that many entries (with an index on `completed_at` and the key,
/// also within one instant), and one probe.
pub fn terminal_boundary_sql(d: &Dialect, t: &TableMap, after: Bound) -> String {
    format!(
        "select b.completed_at, cast(b.id as text), \
           case when exists (select 1 from {next} where n.completed_at = b.completed_at \
             and n.id > b.id) then 1 else 0 end \
         from (select completed_at, id from {src} \
           where completed_at is not null and completed_at <= $1{lower} \
           order by completed_at, id limit 1 offset $2) b",
        lower = after.after(d, t, 3),
        src = t.source(d, "s"),
        next = t.source(d, "n"),
    )
}

/// The newest completion time in the table (one index probe), and the database clock.
pub fn newest_completed_sql(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select max(completed_at), {now} from {src} where completed_at is not null",
        now = d.now,
        src = t.source(d, "s")
    )
}

/// The oldest completion time in the table (one index probe).
pub fn first_completed_sql(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select min(completed_at) from {} where completed_at is not null",
        t.source(d, "s")
    )
}

/// A row of [`aggregate_sql`].
pub fn decode_aggregate(
    row: &impl Columns,
    duration_bounds: &[f64],
    delay_bounds: &[f64],
) -> Result<TerminalAggregate> {
    let buckets = |first: usize, n: usize| -> Result<Vec<u64>> {
        (first..first + n).map(|i| row.count(i)).collect()
    };
    Ok(TerminalAggregate {
        connector_slug: row.connector(0)?,
        trigger_type: row.text(1)?,
        status: row.status(2)?,
        runs: row.count(3)?,
        duration_count: row.count(4)?,
        duration_sum_seconds: row.int(5)?.unwrap_or(0) as f64 / 1000.0,
        delay_count: row.count(6)?,
        delay_sum_seconds: row.float_or_zero(7)?,
        records_synced: row.float_or_zero(8)?,
        last_completed_at: row.timestamp(9)?,
        error: row.text(10)?,
        duration_buckets: buckets(11, duration_bounds.len())?,
        delay_buckets: buckets(11 + duration_bounds.len(), delay_bounds.len())?,
    })
}

/// A row of [`terminal_after_sql`].
///
/// A run is counted when what counting needs decodes — its id, connection, status and
/// completion — as the SQL aggregate counts it; another value that does not decode counts
/// as absent (as it is null in the aggregate's sums), and a creation time that does not
/// decode is taken as the completion. Otherwise the row is skipped.
pub fn decode_terminal_run(row: &impl Columns) -> Result<TerminalRun> {
    let completed_at = row.timestamp_req(8)?;
    if row.int(13)?.unwrap_or(0) != 0 {
        // Counted, it would stay the connector's last success (or failure) until then.
        return Err(StoreError::Unreadable(Unreadable {
            column: "completed_at".into(),
            sql_type: "timestamp".into(),
            reason: UnreadableReason::OutOfRange,
            detail: format!(
                "{completed_at} is more than a day ahead of the database clock; the run is \
                 read when that day comes"
            ),
        }));
    }
    Ok(TerminalRun {
        id: row.uuid_req(0)?,
        key: row.text_req(14)?,
        workspace_connector_id: row.connection_req(1)?,
        connector_slug: row.connector(2)?,
        trigger_type: readable(row.text(3))?,
        status: row.status(4)?,
        duration_seconds: readable(row.int(5))?.map(|ms| ms as f64 / 1000.0),
        dispatch_delay_seconds: readable(row.float(6))?,
        records_synced: readable(row.float(7))?,
        completed_at,
        created_at: readable(row.timestamp(9))?.unwrap_or(completed_at),
        started_at: readable(row.timestamp(10))?,
        error: readable(row.text(11))?,
        deleted: row.int(12)?.unwrap_or(0) != 0,
    })
}

/// A row of [`connection_states_sql`] or [`saved_connection_states_sql`].
pub fn decode_connection_state(row: &impl Columns) -> Result<ConnectionState> {
    Ok(ConnectionState {
        workspace_connector_id: row.connection_req(0)?,
        connector_slug: row.connector(1)?,
        last_status: row.status(2)?,
        last_completed_at: row.timestamp_req(3)?,
        consecutive_failures: row.count(4)?,
        last_success_at: row.timestamp(5)?,
        learned: None,
    })
}

#[async_trait]
impl<E: Engine> ScanSource for SqlStore<E> {
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

    async fn replay_point(&self) -> Result<Option<DateTime<Utc>>> {
        let Some(point) = E::DIALECT.replay_point else {
            return Ok(None);
        };
        let rows = self.scan_rows(&format!("select {point}"), vec![]).await?;
        match rows.first() {
            Some(row) => row.timestamp(0),
            None => Ok(None),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn terminal_aggregate(
        &self,
        after: Option<&Position>,
        upto: &Position,
        duration_bounds: &[f64],
        delay_bounds: &[f64],
    ) -> Result<Vec<TerminalAggregate>> {
        let d = E::DIALECT;
        let (upper, lower) = (Bound::of(Some(upto)), Bound::of(after));
        let sql = aggregate_sql(d, &self.table, duration_bounds, delay_bounds, upper, lower);
        let mut params = Bound::params(Some(upto));
        params.extend(Bound::params(after));
        self.scan_decoded("terminal aggregate", &sql, params, None, |row| {
            decode_aggregate(row, duration_bounds, delay_bounds)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn terminal_after(
        &self,
        after: &Position,
        upto: Option<&Position>,
        limit: Option<u64>,
    ) -> Result<Vec<TerminalRun>> {
        let (lower, upper) = (Bound::of(Some(after)), Bound::of(upto));
        let sql = terminal_after_sql(E::DIALECT, &self.table, lower, upper, limit.is_some());
        let mut params = Bound::params(Some(after));
        params.extend(Bound::params(upto));
        params.extend(limit.map(|n| Param::Int(n.min(i64::MAX as u64) as i64)));
        self.scan_decoded(
            "terminal runs",
            &sql,
            params,
            Some((0, "run")),
            decode_terminal_run,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn connection_states(
        &self,
        after: Option<ConnectionId>,
        limit: usize,
    ) -> Result<ConnectionChunk> {
        let sql = connection_states_sql(E::DIALECT, &self.table, after.is_some());
        let mut params = vec![Param::Int(limit.min(i64::MAX as usize) as i64)];
        params.extend(after.as_ref().map(Param::from));
        let rows = self.scan_rows(&sql, params).await?;
        // The walk goes on from the last connection read, even when its state is skipped.
        let last = rows.last().map(|row| row.connection_req(0)).transpose()?;
        let states = self.decode_lenient(
            "connection states",
            &rows,
            Some((0, "connection")),
            decode_connection_state,
        )?;
        Ok(ConnectionChunk {
            states,
            walked: rows.len(),
            last,
        })
    }

    #[tracing::instrument(skip_all)]
    async fn terminal_boundary(
        &self,
        after: Option<&Position>,
        upto: DateTime<Utc>,
        rows: u64,
    ) -> Result<Option<Position>> {
        let sql = terminal_boundary_sql(E::DIALECT, &self.table, Bound::of(after));
        let offset = Param::Int(rows.saturating_sub(1).min(i64::MAX as u64) as i64);
        let mut params = vec![upto.into(), offset];
        params.extend(Bound::params(after));
        let rows = self.scan_rows(&sql, params).await?;
        rows.first()
            .map(|row| {
                let inside = row.int(2)?.unwrap_or(0) != 0;
                Ok(Position {
                    at: row.timestamp_req(0)?,
                    key: inside
                        .then(|| row.text_req(1).map(ConnectionId::text))
                        .transpose()?,
                })
            })
            .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn newest_completed_at(&self) -> Result<(Option<DateTime<Utc>>, DateTime<Utc>)> {
        let rows = self
            .scan_rows(&newest_completed_sql(E::DIALECT, &self.table), vec![])
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Corrupt("the clock query returned no row".into()))?;
        Ok((row.timestamp(0)?, row.timestamp_req(1)?))
    }

    #[tracing::instrument(skip_all)]
    async fn first_completed_at(&self) -> Result<Option<DateTime<Utc>>> {
        let rows = self
            .scan_rows(&first_completed_sql(E::DIALECT, &self.table), vec![])
            .await?;
        Ok(rows
            .first()
            .map(|row| row.timestamp(0))
            .transpose()?
            .flatten())
    }
}
