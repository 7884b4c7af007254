//! Which table the store reads, and how its columns map onto the sync log: syncwatch's own
//! table (the identity mapping), or one another service writes, observed read-only.
//!
//! Every statement reads the sync log through [`TableMap::source`]: the table itself for
//! the identity mapping, otherwise a derived table that renames the connection column and
//! computes the `connector_slug` column from the configured source. Both databases inline
//! such a derived table into the statement (PostgreSQL pulls the subquery up, SQLite
//! flattens it), so a condition on `workspace_connector_id` still uses an index on the
//! observed table's own column, and the lookup join is dropped from statements that do not
//! read the connector. Names come from configuration, are checked against a plain
//! identifier pattern and are always quoted; they are never spliced in unchecked.

use std::fmt;
use std::str::FromStr;

use super::sources::{ConnectionIdSource, ConnectorSource};
use crate::domain::ConnectionKind;
use crate::store::engine::Dialect;

pub const DEFAULT_TABLE: &str = "workspace_connector_sync_log";
pub const DEFAULT_CONNECTION_COLUMN: &str = "workspace_connector_id";
pub const DEFAULT_ID_COLUMN: &str = "id";
pub const DEFAULT_CONNECTOR_COLUMN: &str = "connector_slug";

/// A table (`name` or `schema.name`) or column name from configuration: letters, digits,
/// `_` and `$`, not starting with a digit or `$`, at most 63 bytes a part (PostgreSQL's
/// limit). Quoted when written into SQL, so it is taken exactly as written (case
/// included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub(super) parts: Vec<String>,
}

impl Ident {
    /// A table name, optionally schema-qualified.
    pub fn table(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() > 2 {
            return Err(format!("{text:?}: a table name is `name` or `schema.name`"));
        }
        Self::from_parts(text, &parts)
    }

    /// A column name.
    pub fn column(text: &str) -> Result<Self, String> {
        Self::from_parts(text, &[text])
    }

    fn from_parts(text: &str, parts: &[&str]) -> Result<Self, String> {
        for part in parts {
            let bytes = part.as_bytes();
            let head = bytes
                .first()
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
            let rest = bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$');
            if !head || !rest || bytes.len() > 63 {
                return Err(format!(
                    "{text:?}: names are letters, digits, `_` and `$`, start with a letter \
                     or `_`, and have at most 63 characters"
                ));
            }
        }
        Ok(Self {
            parts: parts.iter().map(|p| (*p).to_owned()).collect(),
        })
    }

    /// The name as SQL, every part double-quoted.
    pub fn quoted(&self) -> String {
        self.parts
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The last part (a table's own name, without its schema).
    pub fn name(&self) -> &str {
        self.parts.last().map_or("", String::as_str)
    }

    /// The schema, when the name has one.
    pub fn schema(&self) -> Option<&str> {
        (self.parts.len() == 2).then(|| self.parts[0].as_str())
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.join("."))
    }
}

impl FromStr for Ident {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Self::table(text)
    }
}

/// The sync log a store reads: its name, its connection column, where the connection's
/// public id and the connector label come from, and whether syncwatch may write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap {
    pub table: Ident,
    /// The run's internal key (`--id-column`), read as `id`.
    pub id: Ident,
    pub connection: Ident,
    pub connection_id: ConnectionIdSource,
    pub connector: ConnectorSource,
    /// Another service owns the table: syncwatch never writes it.
    pub observed: bool,
    /// The type of the column connection ids are read from (a uuid on syncwatch's own
    /// table; an observed table's is read from its catalogue at start).
    pub connection_kind: ConnectionKind,
    /// The type of the connection column itself, which `lookup:` tables are keyed by (the
    /// same as `connection_kind` unless the public id is looked up; from the catalogue).
    pub key_kind: ConnectionKind,
    /// The type of the run's internal key (`id`), which keyset reads compare with (an
    /// integer on syncwatch's own table; an observed table's is read from its catalogue).
    pub run_key_kind: ConnectionKind,
}

impl Default for TableMap {
    /// syncwatch's own table.
    fn default() -> Self {
        Self {
            table: Ident {
                parts: vec![DEFAULT_TABLE.into()],
            },
            id: Ident {
                parts: vec![DEFAULT_ID_COLUMN.into()],
            },
            connection: Ident {
                parts: vec![DEFAULT_CONNECTION_COLUMN.into()],
            },
            connection_id: ConnectionIdSource::Connection,
            connector: ConnectorSource::default(),
            observed: false,
            connection_kind: ConnectionKind::Uuid,
            key_kind: ConnectionKind::Uuid,
            run_key_kind: ConnectionKind::Int,
        }
    }
}

/// The columns every read of the sync log may use, as the statements name them (the
/// mapped ones excepted: `workspace_connector_id` and `connector_slug`).
pub const READ_COLUMNS: &[&str] = &[
    "id",
    "workspace_connector_sync_log_id",
    "status",
    "trigger_type",
    "cloud_task_id",
    "started_at",
    "completed_at",
    "duration_ms",
    "error",
    "metadata",
    "created_at",
    "updated_at",
    "deleted_at",
];

/// How [`TableMap::source_reading`] reads a `lookup:` column.
#[derive(Debug, Clone, Copy)]
enum Lookups {
    Joined,
    Probed,
    /// Not at all: a looked-up connector reads null and a looked-up public id reads the
    /// connection column's own key, for the caller to resolve.
    Keys,
}

impl TableMap {
    /// Whether the table's columns are the sync log's own names (no derived table needed).
    fn is_identity(&self) -> bool {
        self.id.to_string() == DEFAULT_ID_COLUMN
            && self.connection.to_string() == DEFAULT_CONNECTION_COLUMN
            && self.connection_id == ConnectionIdSource::Connection
            && self.connector == ConnectorSource::default()
    }

    /// The relation reads select from, with `alias`: the table itself, or a derived table
    /// with the sync log's column names. A `lookup:` is a left join, which the database
    /// removes where the read does not use its column and otherwise makes one pass over
    /// the looked-up table: for reads of many rows (a build's chunk, a sweep).
    pub fn source(&self, d: &Dialect, alias: &str) -> String {
        self.source_reading(d, alias, Lookups::Joined)
    }

    /// [`TableMap::source`] for reads of few rows (the live runs, a steady scan's window):
    /// each `lookup:` is an index probe per row read, never a pass over the looked-up
    /// table (which PostgreSQL's planner prefers for a join even at a thousand rows).
    /// Never for a read that filters or orders by the connection id it looks up.
    pub fn source_of_few(&self, d: &Dialect, alias: &str) -> String {
        self.source_reading(d, alias, Lookups::Probed)
    }

    /// [`TableMap::source`] without lookups, for reads whose `lookup:` values syncwatch
    /// resolves itself (the live runs, read every scan, through a cache): a looked-up
    /// connector reads null, a looked-up public id the connection column's key.
    pub fn source_of_keys(&self, d: &Dialect, alias: &str) -> String {
        self.source_reading(d, alias, Lookups::Keys)
    }

    fn source_reading(&self, d: &Dialect, alias: &str, lookups: Lookups) -> String {
        if self.is_identity() {
            return format!("{} {alias}", self.table.quoted());
        }
        let columns: Vec<String> = READ_COLUMNS
            .iter()
            .map(|c| match *c {
                "id" => format!("t.{} as id", self.id.quoted()),
                c => format!("t.{c}"),
            })
            .collect();
        let connection = self.connection.quoted();
        // A looked-up column under `alias`, and the join it needs (none when probed);
        // `unresolved` what it reads when syncwatch resolves it (Lookups::Keys).
        let lookup = |table: &Ident, column: &Ident, alias: &str, unresolved: String| match lookups
        {
            Lookups::Joined => (
                format!("{alias}.{}", column.quoted()),
                format!(
                    " left join {} {alias} on {alias}.id = t.{connection}",
                    table.quoted()
                ),
            ),
            // `limit 1`: a looked-up table whose `id` is not unique never fails the read.
            Lookups::Probed => (
                format!(
                    "(select {alias}.{} from {} {alias} where {alias}.id = t.{connection} \
                     limit 1)",
                    column.quoted(),
                    table.quoted()
                ),
                String::new(),
            ),
            Lookups::Keys => (unresolved, String::new()),
        };
        let (connector, join) = match &self.connector {
            ConnectorSource::Column(c) => (format!("t.{}", c.quoted()), String::new()),
            ConnectorSource::Metadata(key) => ((d.metadata_text)("t.metadata", key), String::new()),
            ConnectorSource::Lookup { table, column } => lookup(table, column, "w", "null".into()),
        };
        let (connection_id, id_join) = match &self.connection_id {
            ConnectionIdSource::Connection => (format!("t.{connection}"), String::new()),
            ConnectionIdSource::Column(c) => (format!("t.{}", c.quoted()), String::new()),
            ConnectionIdSource::Lookup { table, column } => {
                lookup(table, column, "p", format!("t.{connection}"))
            }
        };
        format!(
            "(select {}, {connection_id} as workspace_connector_id, cast({connector} as text) \
             as connector_slug from {} t{join}{id_join}) {alias}",
            columns.join(", "),
            self.table.quoted(),
        )
    }

    /// What the scanner's checkpoint is keyed by: the table and the whole mapping, so a
    /// checkpoint is never continued under another one (its labels and connection keys
    /// would mix with the new ones). Empty for syncwatch's own table, as checkpoints saved
    /// before the key existed were.
    pub fn key(&self) -> String {
        if self.is_identity() && self.table.to_string() == DEFAULT_TABLE {
            return String::new();
        }
        // The run's key only when it is not `id`, so the keys of earlier checkpoints hold.
        let id = if self.id.to_string() == DEFAULT_ID_COLUMN {
            String::new()
        } else {
            format!(" id={}", self.id)
        };
        format!(
            "table={} connection={} connection_id={} connector={} key={}{id}",
            self.table, self.connection, self.connection_id, self.connector, self.connection_kind
        )
    }

    /// Parameter `n` holding a connection id, as the statement compares it with the
    /// connection column.
    pub fn connection_param(&self, d: &Dialect, n: usize) -> String {
        d.typed(n, self.connection_kind.sql_type())
    }

    /// Parameter `n` holding a connection column's key, as a `lookup:` table's `id` is
    /// compared with it.
    pub fn key_param(&self, d: &Dialect, n: usize) -> String {
        d.typed(n, self.key_kind.sql_type())
    }

    /// The table writes go to (only ever the owned table).
    pub fn target(&self) -> String {
        self.table.quoted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::engine::{POSTGRES, SQLITE};

    #[test]
    fn names_are_checked_and_quoted() {
        assert_eq!(Ident::table("sync_log").unwrap().quoted(), "\"sync_log\"");
        assert_eq!(
            Ident::table("app.SyncLog").unwrap().quoted(),
            "\"app\".\"SyncLog\""
        );
        for bad in [
            "",
            "a.b.c",
            "x\"; drop table y; --",
            "1st",
            "a b",
            ".x",
            "x.",
            &"a".repeat(64),
        ] {
            assert!(Ident::table(bad).is_err(), "{bad:?}");
        }
        assert!(Ident::column("schema.col").is_err());
    }

    #[test]
    fn connector_sources_parse_and_print_back() {
        for text in [
            "column:connector_slug",
            "metadata:connector_slug",
            "lookup:workspace_connector.slug",
            "lookup:app.workspace_connector.slug",
        ] {
            let source: ConnectorSource = text.parse().unwrap();
            assert_eq!(source.to_string(), text);
        }
        for bad in [
            "slug",
            "column:",
            "metadata:a'b",
            "metadata:",
            "lookup:slug",
            "lookup:a.b.c.d",
            "other:x",
        ] {
            assert!(bad.parse::<ConnectorSource>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_owned_table_is_read_as_it_is() {
        let map = TableMap::default();
        assert_eq!(
            map.source(&POSTGRES, "s"),
            "\"workspace_connector_sync_log\" s"
        );
    }

    #[test]
    fn an_observed_table_is_read_through_a_renaming_derived_table() {
        let map = TableMap {
            connection_id: ConnectionIdSource::Connection,
            id: Ident::column("id").unwrap(),
            table: Ident::table("app.sync_log").unwrap(),
            connection: Ident::column("connection_id").unwrap(),
            connector: "lookup:app.workspace_connector.slug".parse().unwrap(),
            observed: true,
            connection_kind: ConnectionKind::Uuid,
            key_kind: ConnectionKind::Uuid,
            run_key_kind: ConnectionKind::Int,
        };
        let sql = map.source(&POSTGRES, "s");
        assert!(sql.contains("t.\"connection_id\" as workspace_connector_id"));
        assert!(sql.contains("cast(w.\"slug\" as text) as connector_slug"));
        assert!(sql.contains(
            "from \"app\".\"sync_log\" t left join \"app\".\"workspace_connector\" w \
             on w.id = t.\"connection_id\""
        ));
        assert!(sql.ends_with(") s"));
        // Read few rows at a time, a lookup is an index probe per row, never a join.
        let few = map.source_of_few(&POSTGRES, "s");
        assert!(few.contains(
            "cast((select w.\"slug\" from \"app\".\"workspace_connector\" w \
             where w.id = t.\"connection_id\" limit 1) as text) as connector_slug"
        ));
        assert!(!few.contains("join"));
        let map = TableMap {
            connection_id: ConnectionIdSource::Connection,
            connector: "metadata:slug".parse().unwrap(),
            ..map
        };
        assert!(map
            .source(&SQLITE, "s")
            .contains("json_extract(t.metadata, '$.\"slug\"')"));
        assert!(map.source(&POSTGRES, "s").contains("t.metadata ->> 'slug'"));
    }
}
