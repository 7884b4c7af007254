//! The store's error type, and the one place database errors are classified (unavailable,
//! timed out, rejected by a constraint, or a bug).

use uuid::Uuid;

use crate::domain::TransitionError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sync log not found")]
    NotFound,

    #[error(transparent)]
    InvalidTransition(TransitionError),

    #[error("{0}")]
    Conflict(String),

    #[error(
        "cloud_task_id is already used by run {existing_id} of another connection or connector"
    )]
    CloudTaskConflict { existing_id: Uuid },

    /// The values are not acceptable given what is stored (e.g. metadata that merged with
    /// the run's would exceed its limit); nothing was written.
    #[error("{0}")]
    Invalid(crate::domain::ValidationError),

    /// The database refused the values (a CHECK constraint); nothing was written.
    #[error("the store rejected the values: {0}")]
    Rejected(String),

    /// The database cannot be reached or has no free connection.
    #[error("store unavailable: {0}")]
    Unavailable(sqlx::Error),

    /// PostgreSQL cancelled a statement that ran longer than the connection's
    /// `statement_timeout`; nothing was written.
    #[error("a statement ran longer than its statement timeout and was cancelled: {0}")]
    StatementTimeout(sqlx::Error),

    #[error("store error: {0}")]
    Database(sqlx::Error),

    #[error("migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),

    /// The sync log belongs to another service (`--observe-only`); nothing was written.
    #[error("syncwatch observes this table read-only (--observe-only): runs are recorded by the service that owns it")]
    ObserveOnly,

    /// The database URL does not parse as one the backend accepts (a typo in
    /// `DATABASE_URL`, an unknown option); nothing was opened.
    #[error("invalid database URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// A row that does not decode (written by another service with values outside the
    /// contract).
    #[error("row does not match the schema: {0}")]
    Corrupt(String),

    /// A value of one column of one row that syncwatch cannot read: readers skip (the
    /// scanner) or mark (the pages) that row instead of failing.
    #[error("{0}")]
    Unreadable(Unreadable),
}

/// One column's value that does not decode, with enough to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The column as the statement names it (the sync log's name for a mapped column).
    pub column: String,
    /// Its type in the database (the declared type on SQLite).
    pub sql_type: String,
    pub reason: UnreadableReason,
    /// What syncwatch reads there, and what it found.
    pub detail: String,
}

/// Why a value does not decode: the `reason` label of `syncwatch_rows_skipped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnreadableReason {
    /// A type syncwatch does not read in that column (text in a timestamp, not JSON).
    WrongType,
    /// A label outside the contract's values (a `status` of `cancelled`).
    UnknownValue,
    /// Null in a column that must have a value.
    Null,
    /// A value the domain's types cannot hold (`infinity` timestamps).
    OutOfRange,
}

impl UnreadableReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnreadableReason::WrongType => "wrong_type",
            UnreadableReason::UnknownValue => "unknown_value",
            UnreadableReason::Null => "null",
            UnreadableReason::OutOfRange => "out_of_range",
        }
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "column {} ({}) cannot be read: {}",
            self.column, self.sql_type, self.detail
        )
    }
}

impl StoreError {
    /// A URL the backend's driver refused (the password never shown).
    pub(crate) fn invalid_url(url: &super::DatabaseUrl, reason: impl std::fmt::Display) -> Self {
        StoreError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(err)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &err {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                StoreError::Unavailable(err)
            }
            E::Database(db) => {
                let code = db.code().unwrap_or_default();
                // Postgres: class 08 connection exceptions, 57P0x operator intervention
                // (shutdown, crash), 53300 too many connections, 57014 a statement
                // cancelled by `statement_timeout`, 55P03 a lock timeout. SQLite: BUSY /
                // LOCKED. All of them: nothing was written, try again later.
                if code == "57014" {
                    return StoreError::StatementTimeout(err);
                }
                if code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                    || code == "55P03"
                    || code == "5"
                    || code == "6"
                    || code == "517"
                {
                    StoreError::Unavailable(err)
                } else if code == "23514" || code == "275" || code == "22001" {
                    // check_violation (Postgres), SQLITE_CONSTRAINT_CHECK,
                    // string_data_right_truncation
                    StoreError::Rejected(db.message().to_owned())
                } else {
                    StoreError::Database(err)
                }
            }
            _ => StoreError::Database(err),
        }
    }
}
