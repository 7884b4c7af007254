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

use super::zone::{in_zone, local_to_utc, naive_zone};
use super::{bind_all, Columns, Dialect, Engine, Param, PoolKind, POSTGRES};
use crate::domain::ConnectionId;
use crate::store::{Backend, DatabaseUrl, PoolOptions, Result, StoreError, UnreadableReason};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

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
