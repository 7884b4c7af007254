//! The production store's engine: PostgreSQL through two pools.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow, Postgres};
use sqlx::query::Query;
use sqlx::{Column, Row};
use uuid::Uuid;

use super::{bind_all, Columns, Dialect, Engine, Param, PoolKind, POSTGRES};
use crate::domain::ConnectionId;
use crate::store::{Backend, DatabaseUrl, PoolOptions, Result, StoreError, UnreadableReason};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The zone an observed table's `timestamp without time zone` values were written in
/// (`--naive-timezone`): set once at start for the process, UTC when not set. Its pools'
/// sessions set the same `TimeZone` ([`in_zone`]), so the database compares those columns with
/// syncwatch's instants in it too.
static NAIVE_ZONE: std::sync::OnceLock<chrono_tz::Tz> = std::sync::OnceLock::new();

/// Read `timestamp without time zone` values as local times of `zone` from now on (once a
/// process; a second, different zone is refused).
pub fn read_naive_timestamps_in(zone: chrono_tz::Tz) -> std::result::Result<(), String> {
    let set = NAIVE_ZONE.get_or_init(|| zone);
    if *set == zone {
        Ok(())
    } else {
        Err(format!("naive timestamps are already read in {set}"))
    }
}

/// The zone naive timestamps are read in, when it is not UTC.
pub fn naive_zone() -> Option<chrono_tz::Tz> {
    NAIVE_ZONE.get().copied()
}

/// `naive`, a local time of `zone`, as an instant: an ambiguous time (the hour repeated
/// when clocks go back) as standard time, a time the clocks skipped with the offset before
/// the change, as PostgreSQL reads them.
fn local_to_utc(zone: chrono_tz::Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    use chrono::{Offset, TimeZone};
    match zone.from_local_datetime(&naive).latest() {
        Some(at) => at.with_timezone(&Utc),
        None => {
            let offset = zone.offset_from_utc_datetime(&naive).fix();
            (naive - offset).and_utc()
        }
    }
}

/// Two pools on one database: `api` serves the API (and the reaper's transitions), `scan`
/// serves the scanner's reads, so a slow scan cannot take the connections the API needs,
/// and each side gets its own server-side `statement_timeout`.
#[derive(Debug, Clone)]
pub struct PostgresEngine {
    api: PgPool,
    scan: PgPool,
    /// Migrations run on a connection of their own, without a statement timeout.
    connect: PgConnectOptions,
    acquire_timeout: Duration,
}

/// Connections of the scanner's pool: one scan reads one query at a time; the second
/// lets a scan and `syncwatch scan --once` or a test overlap without waiting.
const SCAN_POOL_CONNECTIONS: u32 = 2;

impl PostgresEngine {
    pub fn connect(url: &DatabaseUrl, options: &PoolOptions) -> Result<Self> {
        let connect = PgConnectOptions::from_str(url.expose())
            .map_err(|e| StoreError::invalid_url(url, e))?
            .application_name("syncwatch")
            // `timestamp without time zone` columns of an observed table compare with
            // (and convert to) UTC instants, whatever the server's own time zone (the
            // driver's own startup parameter; with --naive-timezone each session sets the
            // zone they were written in, below).
            .options([("timezone", "UTC")]);
        let connect = match &options.search_path {
            Some(path) => connect.options([("search_path", path.as_str())]),
            None => connect,
        };
        let connect = if options.read_only {
            connect.options([("default_transaction_read_only", "on")])
        } else {
            connect
        };
        let api = in_zone(PgPoolOptions::new(), options.timezone.clone())
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(with_statement_timeout(
                connect.clone(),
                options.statement_timeout,
            ));
        let scan = in_zone(PgPoolOptions::new(), options.timezone.clone())
            .max_connections(SCAN_POOL_CONNECTIONS)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(with_statement_timeout(
                connect.clone().application_name("syncwatch-scanner"),
                options.scan_statement_timeout,
            ));
        Ok(Self {
            api,
            scan,
            connect,
            acquire_timeout: options.acquire_timeout,
        })
    }

    fn pool(&self, kind: PoolKind) -> &PgPool {
        match kind {
            PoolKind::Api => &self.api,
            PoolKind::Scan => &self.scan,
        }
    }
}

/// Uuids and timestamps go out as PostgreSQL's own types.
fn bind(sql: &str, params: Vec<Param>) -> Query<'_, Postgres, PgArguments> {
    bind_all(sql, params, |query, param| match param {
        Param::Uuid(v) => query.bind(v),
        Param::Text(v) => query.bind(v),
        Param::Timestamp(v) => query.bind(v),
        Param::OptTimestamp(v) => query.bind(v),
        Param::Bool(v) => query.bind(v),
        Param::Int(v) => query.bind(v),
    })
}

#[async_trait]
impl Engine for PostgresEngine {
    type Row = PgRow;

    const BACKEND: Backend = Backend::Postgres;
    const DIALECT: &'static Dialect = &POSTGRES;
    const MIGRATOR: &'static Migrator = &MIGRATOR;

    #[tracing::instrument(skip_all)]
    async fn migrate(&self) -> Result<()> {
        // A connection of its own (no statement timeout), bounded by the acquire timeout
        // like every other connection, so an unreachable server fails fast.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(self.connect.clone())
            .await?;
        let result = MIGRATOR.run(&pool).await;
        pool.close().await;
        result?;
        Ok(())
    }

    async fn fetch_all(&self, pool: PoolKind, sql: &str, params: Vec<Param>) -> Result<Vec<PgRow>> {
        Ok(bind(sql, params).fetch_all(self.pool(pool)).await?)
    }

    async fn execute(&self, pool: PoolKind, sql: &str, params: Vec<Param>) -> Result<u64> {
        let done = bind(sql, params).execute(self.pool(pool)).await?;
        Ok(done.rows_affected())
    }
}

impl Columns for PgRow {
    fn describe(&self, i: usize) -> (String, String) {
        use sqlx::TypeInfo;
        self.columns()
            .get(i)
            .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
            .unwrap_or_else(|| (format!("#{i}"), "?".into()))
    }

    fn text(&self, i: usize) -> Result<Option<String>> {
        // An observed table's `status` and `trigger_type` may be enum types, whose values
        // travel as their label's text.
        match self.try_get(i) {
            Ok(v) => Ok(v),
            Err(_) if is_enum(self, i) => Ok(self.try_get_unchecked(i)?),
            Err(e) => Err(undecodable(self, i, "text (text, varchar or an enum)", e)),
        }
    }

    fn int(&self, i: usize) -> Result<Option<i64>> {
        // `integer` or `bigint` columns (duration_ms of an observed table may be either, or
        // `smallint`), and `bigint` aggregates.
        if let Ok(v) = self.try_get::<Option<i64>, _>(i) {
            return Ok(v);
        }
        if let Ok(v) = self.try_get::<Option<i32>, _>(i) {
            return Ok(v.map(i64::from));
        }
        self.try_get::<Option<i16>, _>(i)
            .map(|v| v.map(i64::from))
            .map_err(|e| undecodable(self, i, "an integer (smallint, integer or bigint)", e))
    }

    fn float(&self, i: usize) -> Result<Option<f64>> {
        self.try_get(i)
            .map_err(|e| undecodable(self, i, "a number (double precision)", e))
    }

    fn connection(&self, i: usize) -> Result<Option<ConnectionId>> {
        use sqlx::{TypeInfo, ValueRef};
        let raw = self
            .try_get_raw(i)
            .map_err(|e| undecodable(self, i, CONNECTION_TYPES, e))?;
        if raw.is_null() {
            return Ok(None);
        }
        let type_name = raw.type_info().name().to_owned();
        match type_name.as_str() {
            "UUID" => Ok(self.uuid(i)?.map(ConnectionId::from)),
            "INT2" | "INT4" | "INT8" => Ok(self.int(i)?.map(ConnectionId::int)),
            _ => self
                .try_get::<Option<String>, _>(i)
                .map(|v| v.map(ConnectionId::text))
                .map_err(|e| undecodable(self, i, CONNECTION_TYPES, e)),
        }
    }

    fn uuid(&self, i: usize) -> Result<Option<Uuid>> {
        use sqlx::{TypeInfo, ValueRef};
        let text = self
            .try_get_raw(i)
            .is_ok_and(|raw| matches!(raw.type_info().name(), "TEXT" | "VARCHAR" | "BPCHAR"));
        if !text {
            return self
                .try_get(i)
                .map_err(|e| undecodable(self, i, "a uuid", e));
        }
        // A uuid kept as text (an ORM's `varchar(36)`): parsed, as SQLite's are.
        self.try_get::<Option<String>, _>(i)
            .map_err(|e| undecodable(self, i, "a uuid", e))?
            .as_deref()
            .map(|text| {
                Uuid::try_parse(text.trim()).map_err(|_| {
                    self.unreadable(
                        i,
                        UnreadableReason::WrongType,
                        format!("syncwatch reads a uuid there: {text:?}"),
                    )
                })
            })
            .transpose()
    }

    fn timestamp(&self, i: usize) -> Result<Option<DateTime<Utc>>> {
        // Both timestamp types travel as microseconds since 2000-01-01 (an observed table's
        // `timestamp without time zone` is taken as UTC). Read here rather than by the
        // driver, whose conversion panics on `infinity` and on dates chrono cannot hold.
        use sqlx::{Decode, TypeInfo, ValueRef};
        let wanted = "a timestamp (timestamptz or timestamp)";
        let raw = self
            .try_get_raw(i)
            .map_err(|e| undecodable(self, i, wanted, e))?;
        if raw.is_null() {
            return Ok(None);
        }
        let binary = matches!(raw.format(), sqlx::postgres::PgValueFormat::Binary);
        let type_name = raw.type_info().name().to_owned();
        if !binary || !matches!(type_name.as_str(), "TIMESTAMPTZ" | "TIMESTAMP") {
            // Text results (never sent for syncwatch's statements) and other types: the
            // driver's own decoding, which says what it found.
            return match self.try_get::<Option<DateTime<Utc>>, _>(i) {
                Ok(v) => Ok(v),
                Err(_) => self
                    .try_get::<Option<NaiveDateTime>, _>(i)
                    .map(|t| t.map(|t| t.and_utc()))
                    .map_err(|e| undecodable(self, i, wanted, e)),
            };
        }
        let micros = <i64 as Decode<Postgres>>::decode(raw)
            .map_err(|e| self.unreadable(i, UnreadableReason::WrongType, e.to_string()))?;
        let out_of_range = |what: &str| {
            self.unreadable(
                i,
                UnreadableReason::OutOfRange,
                format!("{what}: syncwatch reads finite timestamps between the years 1 and 9999"),
            )
        };
        let at = match micros {
            i64::MAX => return Err(out_of_range("infinity")),
            i64::MIN => return Err(out_of_range("-infinity")),
            _ => postgres_epoch()
                .checked_add_signed(chrono::TimeDelta::microseconds(micros))
                .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)))
                .ok_or_else(|| out_of_range(&format!("{micros} microseconds from 2000-01-01")))?,
        };
        Ok(Some(match (type_name.as_str(), naive_zone()) {
            ("TIMESTAMP", Some(zone)) => local_to_utc(zone, at.naive_utc()),
            _ => at,
        }))
    }

    fn json(&self, i: usize) -> Result<Option<Value>> {
        self.try_get::<Option<sqlx::types::Json<Value>>, _>(i)
            .map(|v| v.map(|j| j.0))
            .map_err(|e| undecodable(self, i, "JSON (jsonb or json)", e))
    }
}

/// A value of column `i` that does not decode, naming the column, its type in the
/// database and what syncwatch reads there.
fn undecodable(row: &PgRow, i: usize, wanted: &str, error: sqlx::Error) -> StoreError {
    let detail = match error {
        sqlx::Error::ColumnDecode { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    row.unreadable(
        i,
        UnreadableReason::WrongType,
        format!("syncwatch reads {wanted} there: {detail}"),
    )
}

/// What syncwatch reads a connection id from.
const CONNECTION_TYPES: &str = "a connection id (uuid, smallint, integer, bigint, text or varchar)";

/// PostgreSQL's timestamp epoch, 2000-01-01T00:00:00Z.
fn postgres_epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(946_684_800, 0).unwrap_or_default()
}

/// Whether column `i` of `row` has a user-defined enum type.
fn is_enum(row: &PgRow, i: usize) -> bool {
    use sqlx::postgres::PgTypeKind;
    row.columns()
        .get(i)
        .is_some_and(|c| matches!(c.type_info().kind(), PgTypeKind::Enum(_)))
}

/// Pools whose sessions are in `zone` (`--naive-timezone`), set on each new connection:
/// the driver's startup parameter sets UTC, which a `-c timezone=` option cannot override.
fn in_zone(pool: PgPoolOptions, zone: Option<String>) -> PgPoolOptions {
    let Some(zone) = zone else {
        return pool;
    };
    pool.after_connect(move |conn, _| {
        let zone = zone.clone();
        Box::pin(async move {
            sqlx::query("select set_config('TimeZone', $1, false)")
                .bind(zone)
                .execute(conn)
                .await
                .map(|_| ())
        })
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

/// One connection of its own, bounded by `timeout` like every other.
async fn connect_once(url: &DatabaseUrl, timeout: Duration) -> Result<sqlx::PgConnection> {
    use sqlx::Connection;
    let options = PgConnectOptions::from_str(url.expose())
        .map_err(|e| StoreError::invalid_url(url, e))?
        .application_name("syncwatch");
    match tokio::time::timeout(timeout, sqlx::PgConnection::connect_with(&options)).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
    }
}

/// Whether `schema` exists in the database and this role may create tables in it.
pub async fn schema_exists(url: &DatabaseUrl, schema: &str, timeout: Duration) -> Result<bool> {
    let mut conn = connect_once(url, timeout).await?;
    let found: Option<bool> = sqlx::query_scalar(
        "select has_schema_privilege(oid, 'create') from pg_namespace where nspname = $1",
    )
    .bind(schema)
    .fetch_optional(&mut conn)
    .await?;
    Ok(found == Some(true))
}

/// `create schema if not exists` (the name is a constant of syncwatch's, quoted).
pub async fn create_schema(url: &DatabaseUrl, schema: &str, timeout: Duration) -> Result<()> {
    let mut conn = connect_once(url, timeout).await?;
    sqlx::query(&format!("create schema if not exists \"{schema}\""))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Where a store's sessions find their tables, resolved once at start from the role's own
/// `search_path` and then set on every session syncwatch opens, so no schema created (or
/// granted) later can put another table of the same name first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// The schemas, in order, as the `search_path` every session gets.
    pub search_path: Vec<String>,
    /// The schema the sync log was found in (`None`: not there yet, on an owned table
    /// before its first migration).
    pub table_schema: Option<String>,
}

impl Pinned {
    /// The `search_path` setting, every schema double-quoted.
    pub fn setting(&self) -> String {
        self.search_path
            .iter()
            .map(|s| format!("\"{}\"", s.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Which schemas hold a relation (table, partitioned table, view, materialized view or
/// foreign table) named `$1`, in the order of the role's search path.
const SCHEMAS_HOLDING: &str = "select s.nspname::text from unnest(current_schemas(false)) \
     with ordinality as s(nspname, pos) join pg_namespace n on n.nspname = s.nspname \
     join pg_class c on c.relnamespace = n.oid \
     where c.relname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f') order by s.pos";

/// Pin `table` (unqualified, or `schema.name`) to one schema on the role's search path.
///
/// An observed table: the role's search path without `exclude` (syncwatch's own state
/// schema, whose tables are never the observed one even when the role's name puts it
/// first); the table must be found on it exactly once. syncwatch's own table: the one
/// schema that holds syncwatch's migrations (or, before the first, the schema a `create
/// table` would use), and no other schema on the path may hold a table of that name.
/// Either way a second table of the name is an error naming both.
pub async fn pin(
    url: &DatabaseUrl,
    table: &str,
    table_schema: Option<&str>,
    observed: bool,
    exclude: Option<&str>,
    timeout: Duration,
) -> Result<Pinned> {
    let mut conn = connect_once(url, timeout).await?;
    let path: Vec<String> = sqlx::query_scalar("select unnest(current_schemas(false))::text")
        .fetch_all(&mut conn)
        .await?;
    let path: Vec<String> = path
        .into_iter()
        .filter(|s| Some(s.as_str()) != exclude)
        .collect();
    let holding: Vec<String> = sqlx::query_scalar(SCHEMAS_HOLDING)
        .bind(table)
        .fetch_all(&mut conn)
        .await?;
    let holding: Vec<String> = holding
        .into_iter()
        .filter(|s| Some(s.as_str()) != exclude)
        .collect();
    let both = |a: &str, b: &str| {
        StoreError::Config(format!(
            "two tables named {table} are visible on this role's search_path: \"{a}\".\"{table}\" \
             and \"{b}\".\"{table}\"; syncwatch would read one and an operator's psql \
             maybe the other. Name the table with its schema (--table {a}.{table}), or drop \
             or move the other one"
        ))
    };
    if observed {
        if let Some(schema) = table_schema {
            // Named with its schema: nothing to resolve, but the lookups still resolve on
            // the path without the state schema.
            return Ok(Pinned {
                search_path: path,
                table_schema: Some(schema.to_owned()),
            });
        }
        if let [a, b, ..] = holding.as_slice() {
            return Err(both(a, b));
        }
        return Ok(Pinned {
            search_path: path,
            table_schema: holding.into_iter().next(),
        });
    }
    let migrations: Option<String> = sqlx::query_scalar(
        "select n.nspname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where c.oid = to_regclass('_sqlx_migrations')",
    )
    .fetch_optional(&mut conn)
    .await?
    .flatten();
    let home = match migrations.or_else(|| path.first().cloned()) {
        Some(home) => home,
        None => {
            return Err(StoreError::Config(
                "no schema on this role's search_path exists (or may be used): syncwatch has \
                 nowhere to create its tables; create one or set the role's search_path"
                    .into(),
            ))
        }
    };
    if let Some(other) = holding.iter().find(|s| **s != home) {
        return Err(both(&home, other));
    }
    Ok(Pinned {
        table_schema: holding.first().cloned(),
        search_path: vec![home],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_the_driver_refuses_is_an_invalid_url_error_without_the_password() {
        let url: DatabaseUrl = "postgres://app:s3cret@127.0.0.1:5432/db?sslmode=sideways"
            .parse()
            .unwrap();
        let Err(err) = PostgresEngine::connect(&url, &PoolOptions::default()) else {
            panic!("sslmode=sideways was accepted");
        };
        assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with("invalid database URL"), "{text}");
        assert!(text.contains("sideways"), "names what is wrong: {text}");
        assert!(!text.contains("s3cret"), "no password: {text}");
    }
}
