//! What differs between the two SQL stores, said once: the SQL expressions that are not
//! standard ([`Dialect`]), how a value is bound ([`Param`]) and how a column is read back
//! ([`Columns`]). Statements are written once against these (`statements.rs`,
//! `scanner_reads.rs`); `postgres.rs` and `sqlite.rs` only implement them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, StoreError};
use crate::domain::{validate_connector_slug, Status};

/// The `connector` label of runs whose connector is missing or not a valid label.
pub const UNKNOWN_CONNECTOR: &str = "unknown";

/// The SQL text in which PostgreSQL and SQLite differ. Parameters are written `$n` in both
/// (SQLite accepts the `$NNN` form).
pub struct Dialect {
    /// The database clock as a timestamp value in the stored form. Evaluated once per
    /// statement in both databases, so every use in one statement sees the same instant.
    pub now: &'static str,
    /// `started_at - created_at` in seconds, as a float rounded to milliseconds (the
    /// stores' common precision, so both give the same figures).
    pub delay_seconds: &'static str,
    /// `metadata.records_synced` when it is a non-negative number, as a float, else null.
    pub records_synced: &'static str,
    /// Whole milliseconds from `started_at` to the clock (`{now}`), clamped to
    /// `0..=i32::MAX`.
    pub elapsed_ms: &'static str,
    /// `metadata` merged with the JSON object in the parameter named by `{p}` (RFC 7396).
    pub merge_patch: &'static str,
    /// A parameter used where the database must know its type (`{p}` is the placeholder,
    /// `{t}` the type); SQLite needs no cast.
    pub typed_param: fn(usize, &str) -> String,
    /// 1 when the migrations table exists, else 0.
    pub migrations_table_exists: &'static str,
    /// The text value of key `{1}` of the JSON object column `{0}` (null when absent); the
    /// key is a checked configuration value ([`super::table::ConnectorSource`]).
    pub metadata_text: fn(&str, &str) -> String,
}

pub const POSTGRES: Dialect = Dialect {
    now: "now()",
    // date_part returns a double; extract() returns numeric, whose arithmetic made the
    // baseline aggregate several times slower.
    delay_seconds: "(round(date_part('epoch', started_at - created_at) * 1000::float8) \
        / 1000::float8)",
    records_synced: "case when jsonb_typeof(metadata -> 'records_synced') = 'number' \
        and (metadata ->> 'records_synced')::float8 >= 0 \
        then (metadata ->> 'records_synced')::float8 end",
    elapsed_ms: "least(greatest(round(extract(epoch from ({now} - started_at)) * 1000), 0), \
        2147483647)::integer",
    merge_patch: "syncwatch_merge_patch(metadata, {p}::jsonb)",
    typed_param: |n, t| format!("${n}::{t}"),
    migrations_table_exists:
        "select case when to_regclass('_sqlx_migrations') is null then 0 else 1 end",
    metadata_text: |column, key| format!("{column} ->> '{key}'"),
};

pub const SQLITE: Dialect = Dialect {
    now: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    delay_seconds: "(round((julianday(started_at) - julianday(created_at)) * 86400000.0) / 1000.0)",
    records_synced: "case when json_type(metadata, '$.records_synced') in ('integer', 'real') \
        and json_extract(metadata, '$.records_synced') >= 0 \
        then cast(json_extract(metadata, '$.records_synced') as real) end",
    elapsed_ms: "max(0, min(2147483647, cast(round((julianday({now}) - julianday(started_at)) \
        * 86400000.0) as integer)))",
    merge_patch: "json_patch(coalesce(metadata, '{}'), {p})",
    typed_param: |n, _| format!("${n}"),
    migrations_table_exists: "select count(*) from sqlite_master \
        where type = 'table' and name = '_sqlx_migrations'",
    metadata_text: |column, key| format!("json_extract({column}, '$.\"{key}\"')"),
};

impl Dialect {
    /// Whole milliseconds from `started_at` to the clock.
    pub fn elapsed_ms(&self) -> String {
        self.elapsed_ms.replace("{now}", self.now)
    }

    /// The merge-patch expression for parameter `n`.
    pub fn merge_patch(&self, n: usize) -> String {
        self.merge_patch.replace("{p}", &format!("${n}"))
    }

    /// Parameter `n`, cast to `sql_type` where the dialect needs it.
    pub fn typed(&self, n: usize, sql_type: &str) -> String {
        (self.typed_param)(n, sql_type)
    }
}

/// A value to bind, in the domain's types; each store encodes it its own way (SQLite
/// keeps uuids and timestamps as text).
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(Option<String>),
    Uuid(Option<Uuid>),
    Timestamp(DateTime<Utc>),
    Bool(bool),
    Int(i64),
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(Some(value.to_owned()))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Param::Text(value)
    }
}

impl From<Uuid> for Param {
    fn from(value: Uuid) -> Self {
        Param::Uuid(Some(value))
    }
}

impl From<DateTime<Utc>> for Param {
    fn from(value: DateTime<Utc>) -> Self {
        Param::Timestamp(value)
    }
}

impl From<bool> for Param {
    fn from(value: bool) -> Self {
        Param::Bool(value)
    }
}

/// Reads a result row by position, into the domain's types. Each store implements it for
/// its row type, so every decoder is written once.
pub trait Columns {
    fn text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<Option<i64>>;
    fn float(&self, i: usize) -> Result<Option<f64>>;
    fn uuid(&self, i: usize) -> Result<Option<Uuid>>;
    fn timestamp(&self, i: usize) -> Result<Option<DateTime<Utc>>>;
    /// A JSON object column (`metadata`).
    fn json(&self, i: usize) -> Result<Option<serde_json::Value>>;

    fn text_req(&self, i: usize) -> Result<String> {
        required(i, self.text(i)?)
    }
    fn int_req(&self, i: usize) -> Result<i64> {
        required(i, self.int(i)?)
    }
    fn count(&self, i: usize) -> Result<u64> {
        Ok(self.int(i)?.unwrap_or(0).max(0) as u64)
    }
    fn float_or_zero(&self, i: usize) -> Result<f64> {
        Ok(self.float(i)?.unwrap_or(0.0))
    }
    fn uuid_req(&self, i: usize) -> Result<Uuid> {
        required(i, self.uuid(i)?)
    }
    fn timestamp_req(&self, i: usize) -> Result<DateTime<Utc>> {
        required(i, self.timestamp(i)?)
    }
    fn status(&self, i: usize) -> Result<Status> {
        self.text_req(i)?.parse().map_err(StoreError::Corrupt)
    }
    /// The `connector` label: a value outside the label pattern, or none (an observed
    /// table's mapping may find none), reads as [`UNKNOWN_CONNECTOR`], so its runs are
    /// counted under that label rather than dropped.
    fn connector(&self, i: usize) -> Result<String> {
        Ok(match self.text(i)? {
            Some(slug) if validate_connector_slug(&slug).is_ok() => slug,
            _ => UNKNOWN_CONNECTOR.to_owned(),
        })
    }
}

fn required<T>(i: usize, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| StoreError::Corrupt(format!("column {i} is null")))
}

/// Which of a store's pools a statement runs on: the API's, or the scanner's (PostgreSQL
/// keeps them apart so a slow scan cannot take the API's connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Api,
    Scan,
}

/// The part of a store that talks to its database: pools, migrations, binding and
/// reading. [`super::SqlStore`] runs every statement through it.
#[async_trait::async_trait]
pub trait Engine: Send + Sync + 'static {
    type Row: Columns + Send + Sync;
    const BACKEND: super::Backend;
    const DIALECT: &'static Dialect;
    /// This store's migrations (`migrations/<backend>/`).
    const MIGRATOR: &'static sqlx::migrate::Migrator;

    async fn migrate(&self) -> Result<()>;
    async fn fetch_all(
        &self,
        pool: PoolKind,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<Vec<Self::Row>>;
    /// Rows affected.
    async fn execute(&self, pool: PoolKind, sql: &str, params: Vec<Param>) -> Result<u64>;

    /// The first row, for statements that match at most one.
    async fn fetch_optional(
        &self,
        pool: PoolKind,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<Option<Self::Row>> {
        Ok(self.fetch_all(pool, sql, params).await?.into_iter().next())
    }
}

/// Binds `params` in order, each through the store's `bind_one`.
pub fn bind_all<'q, DB: sqlx::Database>(
    sql: &'q str,
    params: Vec<Param>,
    bind_one: impl Fn(
        sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
        Param,
    ) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>> {
    params.into_iter().fold(sqlx::query(sql), bind_one)
}
