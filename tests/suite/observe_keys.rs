//! Connection keys of every usual type, through the one code path: the sync log as an ORM's
//! migrations create it — Prisma (`text` ids, `timestamp(3)` columns), Django on
//! PostgreSQL (`bigint` identity keys, `timestamp with time zone`) and on SQLite
//! (`integer` keys, `datetime` text) — read by the real binary with the per-connection walk
//! in chunks of two (so every keyset step binds an id of the column's own type), each
//! exported number equal to what the rows say, the id label the key as the table holds it.

use crate::common;

use std::collections::BTreeMap;

use common::{family_samples as family, get_json, service_bin, Backend, Server, TestDb};

/// Five connections, six runs each, finished one minute apart: connection `k` ends on `k`
/// failures in a row; even connections are `hubspot`'s, odd ones `stripe`'s.
const CONNECTIONS: usize = 5;
const RUNS: usize = 6;

fn failed(k: usize, j: usize) -> bool {
    j >= RUNS - k
}

fn connector(k: usize) -> &'static str {
    if k.is_multiple_of(2) {
        "hubspot"
    } else {
        "stripe"
    }
}

/// One `insert` per run: `values(k, j)` gives the statement's values for connection `k`'s
/// run `j`, in the column order of `columns`.
fn inserts(table: &str, columns: &str, values: impl Fn(usize, usize) -> String) -> Vec<String> {
    (0..CONNECTIONS)
        .flat_map(|k| (0..RUNS).map(move |j| (k, j)))
        .map(|(k, j)| format!("insert into {table} ({columns}) values ({})", values(k, j)))
        .collect()
}

/// `2026-01-01 00:MM:00`, minute `k * 10 + j`.
fn at(k: usize, j: usize) -> String {
    format!("2026-01-01 0{}:{:02}:00", k, j * 5)
}

fn status(k: usize, j: usize) -> &'static str {
    if failed(k, j) {
        "error"
    } else {
        "success"
    }
}

/// Runs `scan --once` with `flags` and compares runs by connector and status, and each
/// failing connection's streak under the id `id(k)`, with what the rows say.
fn assert_scanned_exactly(url: &str, flags: &[&str], id: impl Fn(usize) -> String) {
    let output = std::process::Command::new(service_bin())
        .args([
            "scan",
            "--once",
            "--observe-only",
            "--scan-chunk-connections",
            "2",
        ])
        .args(["--database-url", url])
        .args(flags)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let labels = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<_> = pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        v.sort();
        v
    };
    let mut runs = BTreeMap::new();
    let mut streaks = BTreeMap::new();
    for k in 0..CONNECTIONS {
        for j in 0..RUNS {
            *runs
                .entry(labels(&[
                    ("connector", connector(k)),
                    ("status", status(k, j)),
                    ("trigger", "manual"),
                ]))
                .or_insert(0.0) += 1.0;
        }
        if k > 0 {
            streaks.insert(
                labels(&[
                    ("connector", connector(k)),
                    ("workspace_connector_id", &id(k)),
                ]),
                k as f64,
            );
        }
    }
    let exported: BTreeMap<_, _> = family(&text, "connector_sync_runs_total")
        .into_iter()
        .filter(|(_, v)| *v > 0.0)
        .collect();
    assert_eq!(exported, runs, "{text}");
    assert_eq!(
        family(&text, "connector_sync_connection_consecutive_failures"),
        streaks,
        "{text}"
    );
}

fn check_passes(url: &str, flags: &[&str], key_type: &str) {
    let out = std::process::Command::new(service_bin())
        .args(["check", "--observe-only", "--database-url", url])
        .args(flags)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "column workspace_connector_id (the connection): ok, {key_type}"
        )),
        "{said}"
    );
}

/// Prisma with `@map` to the contract's names: `text` ids (cuid), `text` status with a
/// check, `timestamp(3)` (without time zone) columns. One connection's key holds a space
/// and a slash, as a text key may.
fn prisma_id(k: usize) -> String {
    if k == 3 {
        "acme/eu 3".into()
    } else {
        format!("clconn_{k}")
    }
}

#[tokio::test]
async fn prisma_text_keys() {
    let Some(mut db) = TestDb::unmigrated(Backend::Postgres).await else {
        return;
    };
    db.execute(
        "create table workspace_connector_sync_log (
            id text primary key,
            workspace_connector_sync_log_id uuid not null unique default gen_random_uuid(),
            workspace_connector_id text not null,
            connector_slug text not null,
            status text not null default 'scheduled'
                check (status in ('scheduled', 'in_progress', 'success', 'error')),
            trigger_type text,
            cloud_task_id varchar(255),
            started_at timestamp(3),
            completed_at timestamp(3),
            duration_ms integer,
            error text,
            metadata jsonb,
            created_at timestamp(3) not null default current_timestamp,
            updated_at timestamp(3) not null,
            deleted_at timestamp(3)
        )",
    )
    .await;
    let columns = "id, workspace_connector_id, connector_slug, status, trigger_type, \
                   started_at, completed_at, duration_ms, created_at, updated_at";
    for sql in inserts("workspace_connector_sync_log", columns, |k, j| {
        format!(
            "'clrun{k}x{j}', '{}', '{}', '{}', 'manual', '{at}', '{at}', 0, '{at}', '{at}'",
            prisma_id(k),
            connector(k),
            status(k, j),
            at = at(k, j)
        )
    }) {
        db.execute(&sql).await;
    }
    let (_, url) = db.select_only_role(&["workspace_connector_sync_log"]).await;
    check_passes(&url, &[], "text");
    assert_scanned_exactly(&url, &[], prisma_id);

    // The API filters by a text id, the failing list links to its connection page with
    // the key encoded as one path segment, and that page opens.
    let server = Server::start(&url, &["--observe-only"]).await;
    let page = get_json(&format!(
        "{}/v1/sync-logs?workspace_connector_id=acme%2Feu%203&limit=100",
        server.api
    ))
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), RUNS, "{page}");
    assert!(items
        .iter()
        .all(|r| r["workspace_connector_id"] == "acme/eu 3"));
    let href = "/ui/connections/acme%2Feu%203";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !common::get_text(&format!("{}/ui/failing", server.api))
        .await
        .contains(href)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "/ui/failing links {href}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let connection = reqwest::get(format!("{}{href}", server.api)).await.unwrap();
    assert_eq!(connection.status(), reqwest::StatusCode::OK);
    assert!(connection.text().await.unwrap().contains("acme/eu 3"));
}

/// Django on PostgreSQL: `bigint` identity keys, the connection a `bigint` foreign key,
/// `varchar` choices, `timestamp with time zone`.
#[tokio::test]
async fn django_postgres_bigint_keys() {
    let Some(mut db) = TestDb::unmigrated(Backend::Postgres).await else {
        return;
    };
    db.execute(
        "create table workspace_connector_sync_log (
            id bigint generated by default as identity primary key,
            workspace_connector_sync_log_id uuid not null unique,
            workspace_connector_id bigint not null,
            connector_slug varchar(64) not null,
            status varchar(16) not null,
            trigger_type varchar(16) null,
            cloud_task_id varchar(255) null,
            started_at timestamp with time zone null,
            completed_at timestamp with time zone null,
            duration_ms integer null,
            error text null,
            metadata jsonb null,
            created_at timestamp with time zone not null,
            updated_at timestamp with time zone not null,
            deleted_at timestamp with time zone null
        )",
    )
    .await;
    let columns = "workspace_connector_sync_log_id, workspace_connector_id, connector_slug, \
                   status, trigger_type, started_at, completed_at, duration_ms, created_at, \
                   updated_at";
    for sql in inserts("workspace_connector_sync_log", columns, |k, j| {
        format!(
            "gen_random_uuid(), {}, '{}', '{}', 'manual', '{at}Z', '{at}Z', 0, '{at}Z', '{at}Z'",
            9_000_000_000_i64 + k as i64,
            connector(k),
            status(k, j),
            at = at(k, j)
        )
    }) {
        db.execute(&sql).await;
    }
    // The public uuid in the connection table, in the opposite order of the keys: the
    // walk goes by the public id (the connection table's index), two connections a chunk.
    db.execute(
        "create table workspace_connector (
            id bigint primary key,
            workspace_connector_id uuid not null unique
        )",
    )
    .await;
    let public = |k: usize| uuid::Uuid::from_u128((100 - k) as u128).to_string();
    for k in 0..CONNECTIONS {
        db.execute(&format!(
            "insert into workspace_connector values ({}, '{}')",
            9_000_000_000_i64 + k as i64,
            public(k)
        ))
        .await;
    }
    let (_, url) = db
        .select_only_role(&["workspace_connector_sync_log", "workspace_connector"])
        .await;
    check_passes(&url, &[], "bigint");
    assert_scanned_exactly(&url, &[], |k| (9_000_000_000_i64 + k as i64).to_string());
    let by_public_id = [
        "--connection-id-from",
        "lookup:workspace_connector.workspace_connector_id",
    ];
    assert_scanned_exactly(&url, &by_public_id, public);

    // The run's key under another name: `check` names the missing `id` until
    // `--id-column` says which, then reads, advises its indexes by that name and passes;
    // the scan walks by it and stays exact.
    db.execute("alter table workspace_connector_sync_log rename column id to sync_log_pk")
        .await;
    let check = |flags: &[&str]| {
        let mut all = vec!["--observe-only"];
        all.extend(flags);
        crate::observe_orm::check(&url, &all)
    };
    let (ok, said) = check(&[]);
    assert!(!ok && said.contains("column id"), "{said}");
    let renamed = ["--id-column", "sync_log_pk"];
    let (ok, said) = check(&renamed);
    assert!(ok, "{said}");
    assert!(
        said.contains("column sync_log_pk (the run's key): ok, bigint")
            && said.contains("\"completed_at\", \"sync_log_pk\""),
        "{said}"
    );
    let mut flags = by_public_id.to_vec();
    flags.extend(renamed);
    assert_scanned_exactly(&url, &flags, public);
}

/// Django on SQLite: `integer` keys, uuids as 32 hex digits in `char(32)`, `datetime`
/// columns holding text.
#[tokio::test]
async fn django_sqlite_integer_keys() {
    let db = TestDb::unmigrated(Backend::Sqlite).await.unwrap();
    db.execute(
        "create table \"workspace_connector_sync_log\" (
            \"id\" integer not null primary key autoincrement,
            \"workspace_connector_sync_log_id\" char(32) not null unique,
            \"workspace_connector_id\" bigint not null,
            \"connector_slug\" varchar(64) not null,
            \"status\" varchar(16) not null,
            \"trigger_type\" varchar(16) null,
            \"cloud_task_id\" varchar(255) null,
            \"started_at\" datetime null,
            \"completed_at\" datetime null,
            \"duration_ms\" integer null,
            \"error\" text null,
            \"metadata\" text null,
            \"created_at\" datetime not null,
            \"updated_at\" datetime not null,
            \"deleted_at\" datetime null
        )",
    )
    .await;
    let columns = "workspace_connector_sync_log_id, workspace_connector_id, connector_slug, \
                   status, trigger_type, started_at, completed_at, duration_ms, created_at, \
                   updated_at";
    for sql in inserts("workspace_connector_sync_log", columns, |k, j| {
        format!(
            "'{}', {}, '{}', '{}', 'manual', '{at}', '{at}', 0, '{at}', '{at}'",
            uuid::Uuid::new_v4().simple(),
            10 + k,
            connector(k),
            status(k, j),
            at = at(k, j)
        )
    }) {
        db.execute(&sql).await;
    }
    assert_scanned_exactly(db.url.expose(), &[], |k| (10 + k).to_string());
    // The public id from the connection table, Django's uuid as 32 hex digits, sorting
    // opposite to the keys.
    db.execute(
        "create table \"workspace_connector\" (
            \"id\" integer not null primary key autoincrement,
            \"workspace_connector_id\" char(32) not null unique
        )",
    )
    .await;
    let public = |k: usize| {
        uuid::Uuid::from_u128((100 - k) as u128)
            .simple()
            .to_string()
    };
    for k in 0..CONNECTIONS {
        db.execute(&format!(
            "insert into workspace_connector values ({}, '{}')",
            10 + k,
            public(k)
        ))
        .await;
    }
    let by_public_id = [
        "--connection-id-from",
        "lookup:workspace_connector.workspace_connector_id",
    ];
    assert_scanned_exactly(db.url.expose(), &by_public_id, public);
}
