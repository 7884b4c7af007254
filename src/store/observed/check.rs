//! What `syncwatch check --observe-only` reports about an observed table: its columns and
//! their types against what syncwatch reads there, whether the role may read it and its
//! lookup tables, and the indexes syncwatch's reads want that are missing, each as a
//! statement ready to hand to the table's owner. Pure ([`check_table`]).

use super::inspect::TableDescription;
use super::sources::{ConnectionIdSource, ConnectorSource};
use super::table::{Ident, TableMap, READ_COLUMNS};
use crate::store::Backend;

/// An index syncwatch's reads want: what it serves and its key columns.
struct WantedIndex {
    purpose: &'static str,
    suffix: &'static str,
    columns: Vec<String>,
    predicate: &'static str,
}

fn wanted_indexes(map: &TableMap) -> Vec<WantedIndex> {
    // The per-connection reads filter and order by the public id: with `column:NAME` that
    // is another column of the table; through a lookup, the join goes by the connection
    // column.
    let connection = match &map.connection_id {
        ConnectionIdSource::Column(column) => column.to_string(),
        _ => map.connection.to_string(),
    };
    let columns = |cols: &[&str]| cols.iter().map(|c| (*c).to_owned()).collect();
    vec![
        WantedIndex {
            purpose: "scanner: terminal runs by completion time and key",
            suffix: "completed_at",
            columns: vec!["completed_at".into(), map.id.to_string()],
            predicate: "completed_at is not null",
        },
        WantedIndex {
            purpose: "scanner: each connection's latest terminal runs",
            suffix: "connection_terminal",
            columns: vec![
                connection.clone(),
                "completed_at".into(),
                map.id.to_string(),
            ],
            predicate: "completed_at is not null",
        },
        WantedIndex {
            purpose: "scanner: each connection's latest runs by creation",
            suffix: "connection_created",
            columns: vec![connection.clone(), "created_at".into()],
            predicate: "deleted_at is null",
        },
        WantedIndex {
            purpose: "scanner: active runs",
            suffix: "active",
            columns: columns(&["status", "created_at"]),
            predicate: "status in ('scheduled', 'in_progress') and deleted_at is null",
        },
        WantedIndex {
            purpose: "API: a run by its public id",
            suffix: "public_id",
            columns: columns(&["workspace_connector_sync_log_id"]),
            predicate: "",
        },
        WantedIndex {
            purpose: "API: runs newest first",
            suffix: "created_at",
            columns: columns(&["created_at", "workspace_connector_sync_log_id"]),
            predicate: "deleted_at is null",
        },
        WantedIndex {
            purpose: "API and status page search: a live run by its cloud_task_id",
            suffix: "cloud_task_id",
            columns: columns(&["cloud_task_id"]),
            predicate: "cloud_task_id is not null and deleted_at is null",
        },
    ]
}

/// What `check --observe-only` found: one line per finding, the statements that create
/// the missing indexes, and whether syncwatch can run on the table.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub lines: Vec<String>,
    pub create_index: Vec<String>,
    pub can_run: bool,
}

/// Compare a description with what syncwatch reads.
pub fn check_table(backend: Backend, map: &TableMap, found: &TableDescription) -> CheckReport {
    let mut lines = Vec::new();
    let mut can_run = true;
    if found.columns.is_empty() {
        lines.push(format!("table {}: FAILED: not found", map.table));
        return CheckReport {
            lines,
            create_index: Vec::new(),
            can_run: false,
        };
    }
    if found.readable {
        lines.push(format!("table {}: ok (readable)", map.table));
    } else {
        lines.push(format!(
            "table {}: FAILED: this role may not SELECT it",
            map.table
        ));
        can_run = false;
    }
    // (the table's column, what it is to syncwatch, the sync log column it is read as)
    let mut wanted: Vec<(String, &str, &str)> = READ_COLUMNS
        .iter()
        .map(|c| match *c {
            "id" => (map.id.to_string(), "the run's key", "id"),
            c => (c.to_owned(), "read", c),
        })
        .collect();
    match &map.connection_id {
        ConnectionIdSource::Connection => wanted.insert(
            2,
            (
                map.connection.to_string(),
                "the connection",
                "workspace_connector_id",
            ),
        ),
        // Any type the join compares with the connection table's (or read as) id.
        _ => wanted.insert(2, (map.connection.to_string(), "the connection", "id")),
    }
    if let ConnectionIdSource::Column(column) = &map.connection_id {
        wanted.push((
            column.to_string(),
            "the connection's public id",
            "workspace_connector_id",
        ));
    }
    if let ConnectorSource::Column(column) = &map.connector {
        wanted.push((column.to_string(), "the connector label", "connector_slug"));
    }
    for (name, role, reads_as) in &wanted {
        let accepted = match backend {
            Backend::Postgres => accepted_types(reads_as),
            // SQLite's declared types are advice: the probe's reads tell.
            Backend::Sqlite => None,
        };
        match found.columns.iter().find(|c| &c.name == name) {
            Some(column) if accepted.is_some_and(|types| !reads_type(types, &column.sql_type)) => {
                lines.push(format!(
                    "column {name} ({role}): FAILED: {}; syncwatch reads {}",
                    column.sql_type,
                    accepted.unwrap_or_default().join(", ")
                ));
                can_run = false;
            }
            Some(column) => lines.push(format!(
                "column {name} ({role}): ok, {}{}",
                column.sql_type,
                if without_precision(&column.sql_type).starts_with("timestamp without time zone") {
                    naive_note()
                } else {
                    String::new()
                }
            )),
            None => {
                lines.push(format!("column {name} ({role}): FAILED: missing"));
                can_run = false;
            }
        }
    }
    if let ConnectorSource::Lookup { table, column } = &map.connector {
        let lookup = found.lookup.as_deref().cloned().unwrap_or_default();
        let has = |name: &str| lookup.columns.iter().any(|c| c.name == name);
        if lookup.columns.is_empty() {
            lines.push(format!("lookup table {table}: FAILED: not found"));
            can_run = false;
        } else if !lookup.readable {
            lines.push(format!(
                "lookup table {table}: FAILED: this role may not SELECT it"
            ));
            can_run = false;
        } else if !has("id") || !has(&column.to_string()) {
            lines.push(format!(
                "lookup table {table}: FAILED: needs the columns id and {column}"
            ));
            can_run = false;
        } else {
            lines.push(format!("lookup table {table}: ok (id, {column} readable)"));
        }
    }
    if let ConnectionIdSource::Lookup { table, column } = &map.connection_id {
        let lookup = found.id_lookup.as_deref().cloned().unwrap_or_default();
        let public = lookup.columns.iter().find(|c| c.name == column.to_string());
        if lookup.columns.is_empty() {
            lines.push(format!("connection table {table}: FAILED: not found"));
            can_run = false;
        } else if !lookup.readable {
            lines.push(format!(
                "connection table {table}: FAILED: this role may not SELECT it"
            ));
            can_run = false;
        } else if !lookup.columns.iter().any(|c| c.name == "id") || public.is_none() {
            lines.push(format!(
                "connection table {table}: FAILED: needs the columns id and {column}"
            ));
            can_run = false;
        } else if let Some(public) = public
            .filter(|c| backend == Backend::Postgres && !reads_type(CONNECTION_TYPES, &c.sql_type))
        {
            lines.push(format!(
                "connection table {table}: FAILED: {column} is {}; syncwatch reads the \
                 public id as {}",
                public.sql_type,
                CONNECTION_TYPES.join(", ")
            ));
            can_run = false;
        } else {
            lines.push(format!(
                "connection table {table}: ok (public id {column}, joined on id)"
            ));
        }
    }
    let mut create_index = Vec::new();
    for index in wanted_indexes(map) {
        let served_by = found
            .indexes
            .iter()
            .find(|(_, keys)| keys.starts_with(&index.columns));
        match served_by {
            Some((name, _)) => lines.push(format!("index for {}: ok ({name})", index.purpose)),
            None => {
                lines.push(format!("index for {}: missing", index.purpose));
                create_index.push(create_index_sql(backend, &map.table, &index));
            }
        }
    }
    // The connection table of `--connection-id-from lookup:`: the first start walks its
    // index on the public id, and every read resolves a public id or a key through it.
    if let (ConnectionIdSource::Lookup { table, column }, Some(lookup)) =
        (&map.connection_id, found.id_lookup.as_deref())
    {
        for (purpose, suffix, key) in [
            ("the walk over public ids", "public_id", column.to_string()),
            ("a connection's key", "id", "id".to_owned()),
        ] {
            let index = WantedIndex {
                purpose,
                suffix,
                columns: vec![key],
                predicate: "",
            };
            match lookup
                .indexes
                .iter()
                .find(|(_, keys)| keys.starts_with(&index.columns))
            {
                Some((name, _)) => {
                    lines.push(format!("index of {table} for {purpose}: ok ({name})"))
                }
                None => {
                    lines.push(format!("index of {table} for {purpose}: missing"));
                    create_index.push(create_index_sql(backend, table, &index));
                }
            }
        }
    }
    CheckReport {
        lines,
        create_index,
        can_run,
    }
}

/// The PostgreSQL types (as `format_type` spells them, an enum marked ` (enum)`) syncwatch
/// reads for each of the sync log's columns; `None`: any type (the internal key is never
/// read into a value).
/// The PostgreSQL types a connection id is read from ([`crate::domain::ConnectionKind`]).
const CONNECTION_TYPES: &[&str] = &[
    "uuid",
    "smallint",
    "integer",
    "bigint",
    "text",
    "character varying",
    "character",
];

fn accepted_types(column: &str) -> Option<&'static [&'static str]> {
    const TEXT: &[&str] = &["text", "character varying", "character"];
    const LABEL: &[&str] = &["text", "character varying", "character", "an enum"];
    const TIME: &[&str] = &["timestamp with time zone", "timestamp without time zone"];
    Some(match column {
        "id" => return None,
        "workspace_connector_sync_log_id" => &["uuid"],
        "workspace_connector_id" => CONNECTION_TYPES,
        "status" | "trigger_type" | "connector_slug" => LABEL,
        "cloud_task_id" | "error" => TEXT,
        "duration_ms" => &["smallint", "integer", "bigint"],
        // A `json` column would need a cast in every read of `metadata`: not read.
        "metadata" => &["jsonb"],
        _ => TIME,
    })
}

/// Whether a column of `sql_type` is one of `accepted`.
fn reads_type(accepted: &[&str], sql_type: &str) -> bool {
    let sql_type = without_precision(sql_type);
    let sql_type = sql_type.as_str();
    accepted.iter().any(|&t| {
        if t == "an enum" {
            sql_type.ends_with(" (enum)")
        } else {
            sql_type == t || sql_type.starts_with(&format!("{t}("))
        }
    })
}

/// `format_type`'s spelling without a fractional-seconds precision: `timestamp(3) with
/// time zone` is a `timestamp with time zone` to syncwatch.
fn without_precision(sql_type: &str) -> String {
    match (sql_type.strip_prefix("timestamp("), sql_type.find(')')) {
        (Some(_), Some(close)) => format!("timestamp{}", &sql_type[close + 1..]),
        _ => sql_type.to_owned(),
    }
}

fn create_index_sql(backend: Backend, table: &Ident, index: &WantedIndex) -> String {
    let mut name = format!("syncwatch_{}_{}_idx", table.name(), index.suffix);
    name.truncate(63);
    let concurrently = match backend {
        Backend::Postgres => " concurrently",
        Backend::Sqlite => "",
    };
    let schema = table
        .schema()
        .filter(|_| backend == Backend::Sqlite)
        .map(|s| format!("\"{s}\"."))
        .unwrap_or_default();
    let on = match backend {
        Backend::Postgres => table.quoted(),
        Backend::Sqlite => format!("\"{}\"", table.name()),
    };
    let columns: Vec<String> = index.columns.iter().map(|c| format!("\"{c}\"")).collect();
    let predicate = if index.predicate.is_empty() {
        String::new()
    } else {
        format!(" where {}", index.predicate)
    };
    format!(
        "create index{concurrently} if not exists {schema}\"{name}\" on {on} ({}){predicate};",
        columns.join(", ")
    )
}

#[cfg(test)]
mod tests;

/// How `check` says a `timestamp without time zone` column is read.
fn naive_note() -> String {
    match crate::store::naive_zone() {
        None => " (taken as UTC)".into(),
        Some(zone) => format!(" (taken as {zone}, --naive-timezone)"),
    }
}
