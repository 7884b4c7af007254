//! The two database engines behind one interface: [`Engine`] runs a statement with
//! [`Param`]s on one of its pools and hands back rows read through [`Columns`], so every
//! statement and every decoder is written once for PostgreSQL and SQLite; what differs in
//! the SQL itself is the [`Dialect`]'s.

mod dialect;
mod postgres;
mod sqlite;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, StoreError};
use crate::domain::{validate_connector_slug, Status};

pub use dialect::{Dialect, POSTGRES, SQLITE};
pub use postgres::{create_schema, schema_exists, PostgresEngine};
pub use sqlite::SqliteEngine;

/// The `connector` label of runs whose connector is missing or not a valid label.
pub const UNKNOWN_CONNECTOR: &str = "unknown";

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
