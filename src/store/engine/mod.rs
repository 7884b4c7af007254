//! The two database engines behind one interface: [`Engine`] runs a statement with
//! [`Param`]s on one of its pools and hands back rows read through [`Columns`], so every
//! statement and every decoder is written once for PostgreSQL and SQLite; what differs in
//! the SQL itself is the [`Dialect`]'s.

mod dialect;
mod postgres;
mod session;
mod sqlite;
mod zone;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Result, StoreError, Unreadable, UnreadableReason};
use crate::domain::{validate_connector_slug, ConnectionId, Status};

pub use dialect::{Dialect, POSTGRES, SQLITE};
pub use postgres::PostgresEngine;
pub use session::{create_schema, pin, schema_exists, Pinned};
pub use sqlite::SqliteEngine;
pub use zone::{naive_zone, read_naive_timestamps_in};

/// The `connector` label of runs whose connector is missing or not a valid label.
pub const UNKNOWN_CONNECTOR: &str = "unknown";

/// A value to bind, in the domain's types; each store encodes it its own way (SQLite
/// keeps uuids and timestamps as text).
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(Option<String>),
    Uuid(Option<Uuid>),
    Timestamp(DateTime<Utc>),
    OptTimestamp(Option<DateTime<Utc>>),
    Bool(bool),
    Int(i64),
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(Some(value.to_owned()))
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(Some(value))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Param::Text(value)
    }
}

impl From<&ConnectionId> for Param {
    /// Bound as text: statements cast it to the column's type where the database needs
    /// it ([`Dialect::typed`] with [`crate::domain::ConnectionKind::sql_type`]).
    fn from(value: &ConnectionId) -> Self {
        Param::Text(Some(value.to_string()))
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
    /// Column `i`'s name and its type in the database.
    fn describe(&self, i: usize) -> (String, String);
    /// A connection id, from a uuid, integer or text column ([`ConnectionId`]).
    fn connection(&self, i: usize) -> Result<Option<ConnectionId>>;

    fn connection_req(&self, i: usize) -> Result<ConnectionId> {
        let value = self.connection(i)?;
        self.required(i, value)
    }

    /// Column `i`'s value as text, whatever its type (to name a row in a log line).
    fn raw_text(&self, i: usize) -> Option<String> {
        if let Ok(Some(text)) = self.text(i) {
            return Some(text);
        }
        if let Ok(Some(n)) = self.int(i) {
            return Some(n.to_string());
        }
        self.uuid(i).ok().flatten().map(|u| u.to_string())
    }

    /// The error for column `i`'s value, naming the column and its type.
    fn unreadable(&self, i: usize, reason: UnreadableReason, detail: String) -> StoreError {
        let (column, sql_type) = self.describe(i);
        StoreError::Unreadable(Unreadable {
            column,
            sql_type,
            reason,
            detail,
        })
    }

    fn text_req(&self, i: usize) -> Result<String> {
        let value = self.text(i)?;
        self.required(i, value)
    }
    fn int_req(&self, i: usize) -> Result<i64> {
        let value = self.int(i)?;
        self.required(i, value)
    }
    fn count(&self, i: usize) -> Result<u64> {
        Ok(self.int(i)?.unwrap_or(0).max(0) as u64)
    }
    fn float_or_zero(&self, i: usize) -> Result<f64> {
        Ok(self.float(i)?.unwrap_or(0.0))
    }
    fn uuid_req(&self, i: usize) -> Result<Uuid> {
        let value = self.uuid(i)?;
        self.required(i, value)
    }
    fn timestamp_req(&self, i: usize) -> Result<DateTime<Utc>> {
        let value = self.timestamp(i)?;
        self.required(i, value)
    }
    fn status(&self, i: usize) -> Result<Status> {
        let text = self.text_req(i)?;
        text.parse().map_err(|_| {
            self.unreadable(
                i,
                UnreadableReason::UnknownValue,
                format!("{text:?} is not one of scheduled, in_progress, success, error"),
            )
        })
    }
    /// An optional label of a closed set (`trigger_type`).
    fn label<T: std::str::FromStr>(&self, i: usize, values: &str) -> Result<Option<T>> {
        match self.text(i)? {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                self.unreadable(
                    i,
                    UnreadableReason::UnknownValue,
                    format!("{text:?} is not one of {values}"),
                )
            }),
        }
    }
    /// `value`, or the error saying column `i` is null.
    fn required<T>(&self, i: usize, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| {
            self.unreadable(
                i,
                UnreadableReason::Null,
                "null where a value is required".into(),
            )
        })
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

/// An optional value, or none when it does not decode (a page shows it as unknown).
pub fn readable<T>(value: Result<Option<T>>) -> Result<Option<T>> {
    match value {
        Err(StoreError::Unreadable(_)) => Ok(None),
        other => other,
    }
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

    /// Whether the database is still the one opened: an SQLite file removed or replaced
    /// since is a [`StoreFault::Replaced`](crate::store::StoreFault::Replaced) fault
    /// (writes would go to a file no one reads). Always true of a server.
    fn file_intact(&self) -> Result<()> {
        Ok(())
    }

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
