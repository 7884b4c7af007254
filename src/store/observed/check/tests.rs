//! `check_table` against descriptions of tables as orchestrators create them.

use super::*;
use crate::store::observed::inspect::ColumnInfo;
use crate::store::observed::table::Ident;

fn description(columns: &[&str], indexes: &[(&str, &[&str])]) -> TableDescription {
    TableDescription {
        columns: columns
            .iter()
            .map(|c| ColumnInfo {
                name: (*c).into(),
                sql_type: type_of(c).into(),
            })
            .collect(),
        indexes: indexes
            .iter()
            .map(|(n, k)| ((*n).into(), k.iter().map(|c| (*c).into()).collect()))
            .collect(),
        readable: true,
        lookup: None,
        id_lookup: None,
    }
}

/// The type an orchestrator's migrations give each column.
fn type_of(column: &str) -> &'static str {
    match column {
        "id" => "bigint",
        "workspace_connector_sync_log_id" | "workspace_connector_id" => "uuid",
        "status" => "connector_sync_status (enum)",
        "duration_ms" => "integer",
        "metadata" => "jsonb",
        "cloud_task_id" => "character varying(255)",
        c if c.ends_with("_at") => "timestamp without time zone",
        _ => "text",
    }
}

#[test]
fn a_column_of_a_type_syncwatch_does_not_read_fails_naming_what_it_reads() {
    let map = TableMap::default();
    let mut found = description(&all_columns(), &[]);
    assert!(check_table(Backend::Postgres, &map, &found).can_run);
    for (column, bad) in [
        ("workspace_connector_id", "jsonb"),
        ("workspace_connector_id", "timestamp with time zone"),
        ("duration_ms", "numeric(12,0)"),
        ("completed_at", "date"),
        ("metadata", "json"),
    ] {
        let mut found = found.clone();
        found
            .columns
            .iter_mut()
            .find(|c| c.name == column)
            .unwrap()
            .sql_type = bad.into();
        let report = check_table(Backend::Postgres, &map, &found);
        assert!(!report.can_run, "{column} {bad}: {:?}", report.lines);
        assert!(
            report
                .lines
                .iter()
                .any(|l| l.starts_with(&format!("column {column} "))
                    && l.contains(&format!("FAILED: {bad}; syncwatch reads"))),
            "{:?}",
            report.lines
        );
    }
    // A connection column of any key type is read.
    for key in ["integer", "bigint", "text", "character varying(64)"] {
        let mut keyed = found.clone();
        keyed
            .columns
            .iter_mut()
            .find(|c| c.name == "workspace_connector_id")
            .unwrap()
            .sql_type = key.into();
        let report = check_table(Backend::Postgres, &map, &keyed);
        assert!(report.can_run, "{key}: {:?}", report.lines);
    }
    // A fractional-seconds precision is still a timestamp.
    let mut precise = found.clone();
    for column in &mut precise.columns {
        if column.name.ends_with("_at") {
            column.sql_type = "timestamp(6) without time zone".into();
        }
    }
    let report = check_table(Backend::Postgres, &map, &precise);
    assert!(report.can_run, "{:?}", report.lines);
    assert!(
        report.lines.iter().any(|l| l.ends_with("(taken as UTC)")),
        "{:?}",
        report.lines
    );
    // Behind a connection table's public id, the connection column may be an integer
    // key; the public id must then be of a key type too (not a timestamp).
    let map = TableMap {
        connection_id: ConnectionIdSource::Lookup {
            table: Ident::table("workspace_connector").unwrap(),
            column: Ident::column("public_id").unwrap(),
        },
        ..TableMap::default()
    };
    found
        .columns
        .iter_mut()
        .find(|c| c.name == "workspace_connector_id")
        .unwrap()
        .sql_type = "integer".into();
    let mut connections = description(&["id", "public_id"], &[("pk", &["id"])]);
    connections.columns[1].sql_type = "uuid".into();
    found.id_lookup = Some(Box::new(connections.clone()));
    let report = check_table(Backend::Postgres, &map, &found);
    assert!(report.can_run, "{:?}", report.lines);
    // The walk over public ids wants the connection table's index on the public column.
    assert!(
        report.create_index.contains(
            &"create index concurrently if not exists \"syncwatch_workspace_connector_public_id_idx\" \
              on \"workspace_connector\" (\"public_id\");"
                .to_owned()
        ),
        "{:?}",
        report.create_index
    );
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.contains("for a connection's key: ok (pk)")),
        "{:?}",
        report.lines
    );
    connections.columns[1].sql_type = "timestamp with time zone".into();
    found.id_lookup = Some(Box::new(connections));
    let report = check_table(Backend::Postgres, &map, &found);
    assert!(!report.can_run, "{:?}", report.lines);
}

fn all_columns() -> Vec<&'static str> {
    let mut c = READ_COLUMNS.to_vec();
    c.extend(["workspace_connector_id", "connector_slug"]);
    c
}

#[test]
fn missing_indexes_come_as_ready_statements_and_existing_ones_count() {
    let map = TableMap::default();
    let found = description(&all_columns(), &[("pk", &["id"])]);
    let report = check_table(Backend::Postgres, &map, &found);
    assert!(report.can_run, "{:?}", report.lines);
    assert_eq!(report.create_index.len(), 7);
    assert!(report.create_index[1].starts_with(
        "create index concurrently if not exists \
         \"syncwatch_workspace_connector_sync_log_connection_terminal_idx\" on \
         \"workspace_connector_sync_log\" (\"workspace_connector_id\", \"completed_at\", \"id\") \
         where completed_at is not null;"
    ));
    // A wider index with the same leading columns serves.
    let found = description(
        &all_columns(),
        &[
            ("a", &["completed_at", "id"]),
            (
                "b",
                &["workspace_connector_id", "completed_at", "id", "status"],
            ),
            ("b2", &["workspace_connector_id", "created_at", "id"]),
            ("c", &["status", "created_at"]),
            ("d", &["workspace_connector_sync_log_id"]),
            ("e", &["created_at", "workspace_connector_sync_log_id"]),
            ("f", &["cloud_task_id"]),
        ],
    );
    let report = check_table(Backend::Postgres, &map, &found);
    assert_eq!(report.create_index, Vec::<String>::new());
    // Leading columns in another order do not.
    let found = description(&all_columns(), &[("x", &["id", "completed_at"])]);
    assert_eq!(
        check_table(Backend::Sqlite, &map, &found)
            .create_index
            .len(),
        7
    );
}

#[test]
fn a_missing_column_or_table_means_syncwatch_cannot_run() {
    let map = TableMap::default();
    let mut columns = all_columns();
    columns.retain(|c| *c != "completed_at");
    let report = check_table(Backend::Postgres, &map, &description(&columns, &[]));
    assert!(!report.can_run);
    assert!(report
        .lines
        .contains(&"column completed_at (read): FAILED: missing".to_owned()));
    let report = check_table(Backend::Postgres, &map, &TableDescription::default());
    assert!(!report.can_run);
    let mut unreadable = description(&all_columns(), &[]);
    unreadable.readable = false;
    assert!(!check_table(Backend::Postgres, &map, &unreadable).can_run);
}
