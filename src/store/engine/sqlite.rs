//! The embedded default store's engine: one SQLite file, WAL mode, a busy timeout.
//!
//! Every write is one statement, so SQLite's single-writer lock makes each
//! compare-and-set atomic; the busy timeout makes concurrent writers queue instead of
//! failing. Uuids and timestamps are stored as text, timestamps in one fixed UTC format
//! that sorts as time (see the migration).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::sqlite::{
    Sqlite, SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::Row;
use uuid::Uuid;

use super::{bind_all, Columns, Dialect, Engine, Param, PoolKind, SQLITE};
use crate::domain::ConnectionId;
use crate::store::{Backend, DatabaseUrl, PoolOptions, Result, StoreError, UnreadableReason};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One pool serves the API and the scanner alike (SQLite has no server to protect).
#[derive(Debug, Clone)]
pub struct SqliteEngine {
    pool: SqlitePool,
    /// The database file and its identity (device, inode) when opened; `None` in memory.
    file: Option<(std::path::PathBuf, (u64, u64))>,
}

/// A file's device and inode: what stays the same while it is the same file.
#[cfg(unix)]
fn identity(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)?;
    Ok((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn identity(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|_| (0, 0))
}

impl SqliteEngine {
    pub async fn connect(url: &DatabaseUrl, options: &PoolOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url.expose())
            .map_err(|e| StoreError::invalid_url(url, e))?
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let connect = if options.read_only {
            connect.read_only(true)
        } else {
            connect
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };
        let filename = connect.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        // sqlx names an in-memory database `file:sqlx-in-memory-N`: nothing to watch.
        let file = if filename.to_string_lossy().starts_with("file:") {
            None
        } else {
            identity(&filename).ok().map(|id| (filename, id))
        };
        Ok(Self { pool, file })
    }
}

/// Uuids and timestamps go in as text (timestamps in the stored format).
fn bind(sql: &str, params: Vec<Param>) -> Query<'_, Sqlite, SqliteArguments<'_>> {
    bind_all(sql, params, |query, param| match param {
        Param::Text(v) => query.bind(v),
        Param::Uuid(v) => query.bind(v.map(|id| id.to_string())),
        Param::Bool(v) => query.bind(v),
        Param::Timestamp(v) => query.bind(format_ts(v)),
        Param::OptTimestamp(v) => query.bind(v.map(format_ts)),
        Param::Int(v) => query.bind(v),
    })
}

#[async_trait]
impl Engine for SqliteEngine {
    fn file_intact(&self) -> Result<()> {
        let Some((path, opened)) = &self.file else {
            return Ok(());
        };
        let detail = match identity(path) {
            Ok(now) if now == *opened => return Ok(()),
            Ok(_) => format!(
                "{} was replaced by another file since syncwatch opened it; restart syncwatch \
                 to use the new file",
                path.display()
            ),
            Err(e) => format!(
                "{} was removed since syncwatch opened it ({e}); what is written now would \
                 be lost: restore it or restart syncwatch",
                path.display()
            ),
        };
        Err(StoreError::Fault {
            fault: crate::store::StoreFault::Replaced,
            detail,
        })
    }

    type Row = SqliteRow;

    const BACKEND: Backend = Backend::Sqlite;
    const DIALECT: &'static Dialect = &SQLITE;
    const MIGRATOR: &'static Migrator = &MIGRATOR;

    #[tracing::instrument(skip_all)]
    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn fetch_all(
        &self,
        _: PoolKind,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<Vec<SqliteRow>> {
        Ok(bind(sql, params).fetch_all(&self.pool).await?)
    }

    async fn execute(&self, _: PoolKind, sql: &str, params: Vec<Param>) -> Result<u64> {
        let done = bind(sql, params).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

impl Columns for SqliteRow {
    fn describe(&self, i: usize) -> (String, String) {
        use sqlx::{Column, TypeInfo};
        self.columns()
            .get(i)
            .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
            .unwrap_or_else(|| (format!("#{i}"), "?".into()))
    }

    fn text(&self, i: usize) -> Result<Option<String>> {
        self.try_get(i)
            .map_err(|e| undecodable(self, i, "text", e.to_string()))
    }

    fn int(&self, i: usize) -> Result<Option<i64>> {
        self.try_get(i)
            .map_err(|e| undecodable(self, i, "an integer", e.to_string()))
    }

    fn float(&self, i: usize) -> Result<Option<f64>> {
        self.try_get(i)
            .map_err(|e| undecodable(self, i, "a number", e.to_string()))
    }

    fn connection(&self, i: usize) -> Result<Option<ConnectionId>> {
        use sqlx::{TypeInfo, ValueRef};
        let raw = self
            .try_get_raw(i)
            .map_err(|e| undecodable(self, i, "a connection id", e.to_string()))?;
        if raw.is_null() {
            return Ok(None);
        }
        // By the value's own storage class: SQLite's declared types are advice.
        if raw.type_info().name() == "INTEGER" {
            return Ok(self.int(i)?.map(ConnectionId::int));
        }
        self.try_get::<Option<String>, _>(i)
            .map(|v| v.map(ConnectionId::text))
            .map_err(|e| undecodable(self, i, "a connection id (integer or text)", e.to_string()))
    }

    fn uuid(&self, i: usize) -> Result<Option<Uuid>> {
        self.try_get::<Option<String>, _>(i)
            .map_err(|e| undecodable(self, i, "a uuid", e.to_string()))?
            .as_deref()
            .map(|text| {
                Uuid::try_parse(text)
                    .map_err(|_| undecodable(self, i, "a uuid", format!("{text:?}")))
            })
            .transpose()
    }

    fn timestamp(&self, i: usize) -> Result<Option<DateTime<Utc>>> {
        self.try_get::<Option<String>, _>(i)
            .map_err(|e| undecodable(self, i, "a timestamp (text)", e.to_string()))?
            .as_deref()
            .map(|text| {
                parse_ts(text).map_err(|_| {
                    undecodable(
                        self,
                        i,
                        "a timestamp (RFC 3339, or YYYY-MM-DD HH:MM:SS[.fff] taken as UTC)",
                        format!("{text:?}"),
                    )
                })
            })
            .transpose()
    }

    fn json(&self, i: usize) -> Result<Option<Value>> {
        self.try_get::<Option<String>, _>(i)
            .map_err(|e| undecodable(self, i, "a JSON object (text)", e.to_string()))?
            .map(|m| serde_json::from_str(&m))
            .transpose()
            .map_err(|e| undecodable(self, i, "a JSON object", e.to_string()))
    }
}

/// A value of column `i` that does not decode, naming the column, its declared type and
/// what syncwatch reads there.
fn undecodable(row: &SqliteRow, i: usize, wanted: &str, detail: String) -> StoreError {
    row.unreadable(
        i,
        UnreadableReason::WrongType,
        format!("syncwatch reads {wanted} there: {detail}"),
    )
}

/// The stored timestamp format: millisecond precision, `Z` suffix.
pub fn format_ts(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads the stored format, and the other text forms SQLite users write by hand
/// (`YYYY-MM-DD HH:MM:SS[.fff]`, taken as UTC).
fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(ts) = DateTime::parse_from_rfc3339(text) {
        return Ok(ts.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .map(|naive| naive.and_utc())
        .map_err(|_| StoreError::Corrupt(format!("unreadable timestamp {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_format_sorts_as_time_and_parses_back() {
        let a = DateTime::from_timestamp_millis(1_764_000_000_005).unwrap();
        let b = DateTime::from_timestamp_millis(1_764_000_000_040).unwrap();
        assert!(format_ts(a) < format_ts(b));
        assert_eq!(format_ts(a), "2025-11-24T16:00:00.005Z");
        assert_eq!(parse_ts(&format_ts(b)).unwrap(), b);
        assert_eq!(
            parse_ts("2025-11-24 16:00:00").unwrap(),
            DateTime::from_timestamp_millis(1_764_000_000_000).unwrap()
        );
        assert!(parse_ts("yesterday").is_err());
    }
}
