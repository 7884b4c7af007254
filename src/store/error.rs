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

    /// The store cannot serve until an operator acts ([`StoreFault`]): privileges revoked,
    /// a read-only or corrupt database, a dropped database or table, a full disk, an
    /// SQLite file removed or replaced. Nothing was written.
    #[error("store fault ({fault}): {detail}")]
    Fault { fault: StoreFault, detail: String },

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

    /// The store's tables cannot be pinned down (two tables of the sync log's name on the
    /// role's search path, or no schema to create them in); nothing was opened.
    #[error("{0}")]
    Config(String),

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

/// What is wrong with a store that answers but cannot serve, as `/readyz` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    /// The role may not read or write what it must (or may no longer log in).
    Permission,
    /// The database refuses writes (a standby, `default_transaction_read_only`, a
    /// read-only SQLite file or directory).
    ReadOnly,
    /// The database reports damaged data.
    Corrupt,
    /// The database is gone (dropped, or the SQLite file cannot be opened).
    MissingDatabase,
    /// The sync log or syncwatch's tables are gone.
    MissingTable,
    /// The disk is full or failing.
    Storage,
    /// The SQLite file was removed or replaced under a running syncwatch: writes would
    /// go to a file no one reads.
    Replaced,
}

impl StoreFault {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreFault::Permission => "permission",
            StoreFault::ReadOnly => "read_only",
            StoreFault::Corrupt => "corrupt",
            StoreFault::MissingDatabase => "missing_database",
            StoreFault::MissingTable => "missing_table",
            StoreFault::Storage => "storage",
            StoreFault::Replaced => "replaced",
        }
    }

    /// The fault a database error code means: a PostgreSQL SQLSTATE (five characters),
    /// or an SQLite result code (its primary code is the low byte), with the message for
    /// SQLite's generic error.
    fn of_code(code: &str, message: &str) -> Option<Self> {
        if code.len() == 5 {
            return match code {
                "42501" | "28000" | "28P01" => Some(StoreFault::Permission),
                "25006" => Some(StoreFault::ReadOnly),
                "XX001" | "XX002" => Some(StoreFault::Corrupt),
                "3D000" => Some(StoreFault::MissingDatabase),
                "42P01" | "3F000" => Some(StoreFault::MissingTable),
                "53100" | "58030" => Some(StoreFault::Storage),
                _ => None,
            };
        }
        match code.parse::<u32>().ok()? & 0xff {
            3 | 23 => Some(StoreFault::Permission),
            8 => Some(StoreFault::ReadOnly),
            11 | 26 => Some(StoreFault::Corrupt),
            14 => Some(StoreFault::MissingDatabase),
            10 | 13 => Some(StoreFault::Storage),
            1 if message.starts_with("no such table") => Some(StoreFault::MissingTable),
            _ => None,
        }
    }
}

impl std::fmt::Display for StoreFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StoreError {
    /// Why the store cannot serve, for `/readyz`: a fault, `unreachable` for an
    /// unreachable or exhausted store, `statement_timeout`; `None` for other errors.
    pub fn unavailable_reason(&self) -> Option<&'static str> {
        match self {
            StoreError::Fault { fault, .. } => Some(fault.as_str()),
            StoreError::Unavailable(_) => Some("unreachable"),
            StoreError::StatementTimeout(_) => Some("statement_timeout"),
            _ => None,
        }
    }

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
                if let Some(fault) = StoreFault::of_code(&code, db.message()) {
                    return StoreError::Fault {
                        fault,
                        detail: db.message().to_owned(),
                    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_codes_are_classified_once_per_backend() {
        for (code, message, fault) in [
            (
                "42501",
                "permission denied for table t",
                Some(StoreFault::Permission),
            ),
            (
                "28P01",
                "password authentication failed",
                Some(StoreFault::Permission),
            ),
            (
                "25006",
                "cannot execute UPDATE in a read-only transaction",
                Some(StoreFault::ReadOnly),
            ),
            (
                "XX001",
                "invalid page in block 1",
                Some(StoreFault::Corrupt),
            ),
            (
                "3D000",
                "database \"x\" does not exist",
                Some(StoreFault::MissingDatabase),
            ),
            (
                "42P01",
                "relation \"t\" does not exist",
                Some(StoreFault::MissingTable),
            ),
            ("53100", "could not extend file", Some(StoreFault::Storage)),
            ("23505", "duplicate key", None),
            // SQLite: extended codes by their primary code (the low byte).
            (
                "8",
                "attempt to write a readonly database",
                Some(StoreFault::ReadOnly),
            ),
            (
                "1032",
                "attempt to write a readonly database",
                Some(StoreFault::ReadOnly),
            ),
            (
                "11",
                "database disk image is malformed",
                Some(StoreFault::Corrupt),
            ),
            ("26", "file is not a database", Some(StoreFault::Corrupt)),
            (
                "14",
                "unable to open database file",
                Some(StoreFault::MissingDatabase),
            ),
            ("13", "database or disk is full", Some(StoreFault::Storage)),
            ("1", "no such table: t", Some(StoreFault::MissingTable)),
            ("1", "near \"x\": syntax error", None),
            ("5", "database is locked", None),
            ("2067", "UNIQUE constraint failed", None),
        ] {
            assert_eq!(
                StoreFault::of_code(code, message),
                fault,
                "{code} {message}"
            );
        }
    }
}
