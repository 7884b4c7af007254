//! A connection's id as people see it and as the table keys it: a uuid (syncwatch's own
//! table, and most public ids), an integer or a text key (another service's table, through
//! `--connection-column` or `--connection-id-from`). Held as its canonical text — a uuid
//! hyphenated in lower case, an integer in decimal, text as it is — so every id compares,
//! hashes, labels and saves the same way whatever its type; the store binds it back in the
//! column's own type ([`ConnectionKind`]), so the table's indexes still serve.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Characters a text connection id may have (the metric label and the page URL carry it).
pub const MAX_CONNECTION_ID_CHARS: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(String);

impl ConnectionId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An integer key.
    pub fn int(value: i64) -> Self {
        Self(value.to_string())
    }

    /// A text key, taken as it is.
    pub fn text(value: String) -> Self {
        Self(value)
    }
}

impl From<Uuid> for ConnectionId {
    fn from(value: Uuid) -> Self {
        Self(value.hyphenated().to_string())
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The type of the column a connection id is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionKind {
    #[default]
    Uuid,
    Int,
    Text,
}

impl ConnectionKind {
    /// The kind of a column of this type (a PostgreSQL type name or a SQLite declared type,
    /// any case), if syncwatch reads connection ids from it.
    pub fn of_column(sql_type: &str) -> Option<Self> {
        let t = sql_type.trim().to_ascii_lowercase();
        let t = t.split('(').next().unwrap_or("").trim();
        match t {
            "uuid" => Some(Self::Uuid),
            "smallint" | "integer" | "bigint" | "int" | "int2" | "int4" | "int8" | "serial"
            | "bigserial" | "smallserial" => Some(Self::Int),
            "text" | "character varying" | "varchar" | "character" | "char" | "bpchar" | "name"
            | "" => Some(Self::Text),
            _ => None,
        }
    }

    /// An id of this kind no connection is likely to have, for a read that must run
    /// without one (the probe of `check`).
    pub fn placeholder(self) -> ConnectionId {
        match self {
            Self::Uuid => Uuid::nil().into(),
            Self::Int => ConnectionId::int(0),
            Self::Text => ConnectionId::text("-".into()),
        }
    }

    /// The SQL type a parameter is cast to before comparing with the column (PostgreSQL).
    pub fn sql_type(self) -> &'static str {
        match self {
            Self::Uuid => "uuid",
            Self::Int => "bigint",
            Self::Text => "text",
        }
    }

    /// Read an id someone typed (a filter, a URL): a clear error when it cannot be one.
    pub fn parse(self, text: &str) -> Result<ConnectionId, String> {
        match self {
            Self::Uuid => Uuid::try_parse(text)
                .map(ConnectionId::from)
                .map_err(|_| format!("{text:?} is not a uuid")),
            Self::Int => text
                .parse::<i64>()
                .map(ConnectionId::int)
                .map_err(|_| format!("{text:?} is not an integer")),
            Self::Text if text.is_empty() || text.chars().count() > MAX_CONNECTION_ID_CHARS => Err(
                format!("a connection id has 1 to {MAX_CONNECTION_ID_CHARS} characters"),
            ),
            Self::Text => Ok(ConnectionId::text(text.to_owned())),
        }
    }
}

impl fmt::Display for ConnectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uuid => "uuid",
            Self::Int => "integer",
            Self::Text => "text",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_by_the_kind_of_their_column() {
        let id = Uuid::from_u128(0xABCD);
        assert_eq!(
            ConnectionKind::Uuid.parse(&id.simple().to_string().to_uppercase()),
            Ok(ConnectionId::from(id)),
            "any spelling of a uuid is the same id"
        );
        assert!(ConnectionKind::Uuid.parse("42").is_err());
        assert_eq!(ConnectionKind::Int.parse("42"), Ok(ConnectionId::int(42)));
        assert!(ConnectionKind::Int.parse("4x2").is_err());
        assert_eq!(
            ConnectionKind::Text.parse("conn_42").unwrap().as_str(),
            "conn_42"
        );
        assert!(ConnectionKind::Text.parse("").is_err());
        assert_eq!(ConnectionKind::of_column("INT4"), Some(ConnectionKind::Int));
        assert_eq!(
            ConnectionKind::of_column("character varying(36)"),
            Some(ConnectionKind::Text)
        );
        assert_eq!(ConnectionKind::of_column("jsonb"), None);
        assert_eq!(ConnectionKind::of_column("timestamptz"), None);
    }
}
