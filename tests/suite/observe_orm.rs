//! The orchestrator's table as an ORM creates it: an internal `serial` key on every table,
//! the sync log's connection column an `integer` foreign key to `workspace_connector(id)`,
//! the connection's public uuid in `workspace_connector.workspace_connector_id`,
//! `status` a native enum, `trigger_type` text with a check constraint, `duration_ms`
//! `bigint` (PostgreSQL sums it as `numeric`). Observed by the real binary under a role
//! that may only `SELECT`, with `--connection-id-from lookup:…`: `check` passes, every
//! read exports numbers equal to SQL, and every place a person reads a connection shows
//! its public uuid. Without the flag the integer key is the id people see; a connection
//! column of a type no id is read from (`jsonb`) fails `check` naming it, and `serve`
//! refuses to start instead of failing every scan.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{family_samples as family, service_bin, sql_family as sql};
use common::{get_json, get_text, Backend, Server, TestDb};
use sqlx::{Connection, PgConnection};

pub(crate) const SCHEMA: &str = include_str!("../sql/orm_schema.sql");

pub(crate) const MAPPING: &[&str] = &[
    "--observe-only",
    "--connector-from",
    "lookup:workspace_connector.connector_slug",
    "--connection-id-from",
    "lookup:workspace_connector.workspace_connector_id",
];

/// The database, the schema, and a role that may only read the two tables.
async fn orm_table() -> Option<(TestDb, String)> {
    let mut db = TestDb::unmigrated(Backend::Postgres).await?;
    let mut conn = PgConnection::connect(db.url.expose()).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    let (_, url) = db
        .select_only_role(&["workspace_connector_sync_log", "workspace_connector"])
        .await;
    Some((db, url))
}

/// Six connections of three connectors; runs taken through their lifecycle with plain
/// transactions, as the orchestrator's repository helpers do (each statement's clock, so
/// runs complete in the order they are written). `round` varies the mix.
pub(crate) async fn drive_runs(conn: &mut PgConnection, round: i64) {
    if round == 0 {
        sqlx::query(
            "insert into workspace_connector (connector_slug) \
             select (array['hubspot', 'salesforce', 'stripe'])[1 + g % 3] \
             from generate_series(0, 5) g",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    for i in 0..30_i64 {
        let connection = 1 + (i + round) % 6;
        let mut tx = conn.begin().await.unwrap();
        let id: i32 = sqlx::query_scalar(
            "insert into workspace_connector_sync_log (workspace_connector_id, trigger_type, \
               cloud_task_id, created_at, updated_at) \
             values ($1, 'cloud_task', gen_random_uuid()::text, now() - interval '10 seconds', now()) \
             returning id",
        )
        .bind(connection as i32)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        if i % 10 == 9 {
            continue; // left scheduled
        }
        sqlx::query(
            "update workspace_connector_sync_log set status = 'in_progress', \
               started_at = now(), updated_at = now() where id = $1",
        )
        .bind(id)
        .execute(&mut *conn)
        .await
        .unwrap();
        if i % 10 == 8 {
            continue; // left running
        }
        // Connection 1 always fails; the others fail now and then.
        let failed = connection == 1 || (i + round) % 7 == 0;
        sqlx::query(
            "update workspace_connector_sync_log set status = $2::sync_status, \
               completed_at = now(), duration_ms = $3::bigint, \
               error = case when $2::text = 'error' then 'HTTP 429 Too Many Requests' end, \
               metadata = jsonb_build_object('records_synced', $4::int), updated_at = now() \
             where id = $1",
        )
        .bind(id)
        .bind(if failed { "error" } else { "success" })
        .bind(500 + 1_300 * i + round)
        .bind(10 * i)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// The tables, and the runs counted: a status outside the contract is not a run's.
const FROM: &str = "from workspace_connector_sync_log t \
     join workspace_connector w on w.id = t.workspace_connector_id \
     where t.status::text in ('scheduled', 'in_progress', 'success', 'error') and";

/// Runs, durations (count and sum: a `bigint` column), records synced, failures by
/// reason, failing connections, consecutive failures by public uuid and live runs, each
/// equal to SQL; `None` while they differ, with the first difference.
pub(crate) async fn differences(conn: &mut PgConnection, text: &str) -> Option<String> {
    let checks: [(&str, &[&str], String); 8] = [
        (
            "connector_sync_runs_total",
            &["connector", "trigger", "status"],
            format!("select w.connector_slug, t.trigger_type, t.status::text, count(*)::float8 {FROM} t.completed_at is not null group by 1, 2, 3"),
        ),
        (
            "connector_sync_duration_seconds_count",
            &["connector", "trigger", "status"],
            format!("select w.connector_slug, t.trigger_type, t.status::text, count(*)::float8 {FROM} t.completed_at is not null and t.duration_ms is not null group by 1, 2, 3"),
        ),
        (
            "connector_sync_duration_seconds_sum",
            &["connector", "trigger", "status"],
            format!("select w.connector_slug, t.trigger_type, t.status::text, (sum(t.duration_ms) / 1000.0)::float8 {FROM} t.completed_at is not null group by 1, 2, 3"),
        ),
        (
            "connector_sync_records_synced_total",
            &["connector"],
            format!("select w.connector_slug, sum((t.metadata ->> 'records_synced')::float8) {FROM} t.completed_at is not null group by 1"),
        ),
        (
            "connector_sync_failures_total",
            &["connector", "trigger", "reason", "owner"],
            format!("select w.connector_slug, t.trigger_type, 'rate_limit', 'provider', count(*)::float8 {FROM} t.status = 'error' group by 1, 2"),
        ),
        (
            "connector_sync_failing_connections",
            &["connector"],
            format!("select slug, count(*)::float8 from (select distinct on (t.workspace_connector_id) w.connector_slug as slug, t.status {FROM} t.completed_at is not null order by t.workspace_connector_id, t.completed_at desc, t.id desc) latest where status = 'error' group by 1"),
        ),
        (
            "connector_sync_connection_consecutive_failures",
            &["connector", "workspace_connector_id"],
            format!("select w.connector_slug, w.workspace_connector_id::text, count(*)::float8 {FROM} t.status = 'error' and t.completed_at > coalesce((select max(s.completed_at) from workspace_connector_sync_log s where s.workspace_connector_id = t.workspace_connector_id and s.status = 'success'), '-infinity') group by 1, 2"),
        ),
        (
            "connector_sync_runs_active",
            &["connector", "status"],
            format!("select w.connector_slug, t.status::text, count(*)::float8 {FROM} t.deleted_at is null and t.status in ('scheduled', 'in_progress') group by 1, 2"),
        ),
    ];
    for (name, labels, query) in checks {
        let exported = family(text, name);
        let expected = sql(conn, labels, &query).await;
        let close = exported.len() == expected.len()
            && exported
                .iter()
                .zip(&expected)
                .all(|((a, x), (b, y))| a == b && (x - y).abs() <= 1e-9 * y.abs().max(1.0));
        if !close {
            return Some(format!("{name}: exported {exported:?}\n  SQL {expected:?}"));
        }
    }
    None
}

pub(crate) fn check(url: &str, extra: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(service_bin())
        .args(["check", "--database-url", url])
        .args(extra)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `serve` with `flags` on `url`, which must exit non-zero before serving; its stderr.
async fn refused_at_start(url: &str, flags: &[&str]) -> String {
    let mut serve = common::ChildGuard(
        std::process::Command::new(service_bin())
            .args(["serve", "--database-url", url, "--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(flags)
            .env_remove("DATABASE_URL")
            .env_remove("SYNCWATCH_API_TOKENS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve started on a table it cannot read"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(serve.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "serve exited 0: {stderr}");
    stderr
}

#[tokio::test]
async fn an_orm_table_with_integer_keys_is_observed_by_its_public_ids() {
    let Some((db, reader_url)) = orm_table().await else {
        return;
    };
    let mut conn = PgConnection::connect(db.url.expose()).await.unwrap();
    drive_runs(&mut conn, 0).await;

    // Without the public id, the integer key itself is the connection id: read, bound
    // and shown as an integer, through the same reads.
    let label_only = &MAPPING[..3];
    let (ok, said) = check(&reader_url, label_only);
    assert!(ok, "{said}");
    assert!(
        said.contains("column workspace_connector_id (the connection): ok, integer"),
        "{said}"
    );
    let mut flags = label_only.to_vec();
    flags.extend(["--scan-interval", "200ms"]);
    let server = Server::start(&reader_url, &flags).await;
    let streak: f64 = sqlx::query_scalar(
        "select count(*)::float8 from workspace_connector_sync_log \
         where workspace_connector_id = 1 and status = 'error'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = server.scrape().await;
        let streaks = family(&text, "connector_sync_connection_consecutive_failures");
        let one = streaks
            .iter()
            .find(|(labels, _)| labels.contains(&("workspace_connector_id".into(), "1".into())));
        if one.is_some_and(|(_, v)| *v == streak) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "connection 1's streak {streak} under its integer id:\n{streaks:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = get_json(&format!(
        "{}/v1/sync-logs?workspace_connector_id=1&limit=100",
        server.api
    ))
    .await;
    let items = listed["items"].as_array().unwrap();
    assert!(
        !items.is_empty() && items.iter().all(|r| r["workspace_connector_id"] == "1"),
        "{listed}"
    );
    let refused = reqwest::get(format!(
        "{}/v1/sync-logs?workspace_connector_id=one",
        server.api
    ))
    .await
    .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("not an integer"));
    let page = reqwest::get(format!("{}/ui/connections/1", server.api))
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    drop(server);

    // A connection column of a type no id is read from is named, and `serve` refuses to
    // start rather than fail every scan.
    let jsonb = [
        "--observe-only",
        "--connection-column",
        "metadata",
        "--connector-from",
        "metadata:connector_slug",
    ];
    let (ok, said) = check(&reader_url, &jsonb);
    assert!(!ok, "check passes a jsonb connection column:\n{said}");
    assert!(
        said.contains("column metadata (the connection): FAILED: jsonb") && said.contains("uuid"),
        "{said}"
    );
    let stderr = refused_at_start(&reader_url, &jsonb).await;
    assert!(
        stderr.contains("cannot observe") && stderr.contains("metadata"),
        "{stderr}"
    );

    // With it, `check` runs every read and passes.
    let (ok, said) = check(&reader_url, MAPPING);
    assert!(ok, "{said}");
    assert!(
        said.contains("connection table workspace_connector: ok"),
        "{said}"
    );
    assert!(
        said.contains("read the scanner's per-connection states: ok (6 rows)"),
        "{said}"
    );
    assert!(said.contains("result: syncwatch can observe"), "{said}");

    let mut flags = MAPPING.to_vec();
    flags.extend(["--scan-interval", "200ms"]);
    let server = Server::start(&reader_url, &flags).await;
    let mut text = String::new();
    for round in 1..=3 {
        // Another writer goes on meanwhile (but before the first look); every number
        // follows it.
        if round > 1 {
            drive_runs(&mut conn, round).await;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            text = server.scrape().await;
            let Some(diff) = differences(&mut conn, &text).await else {
                break;
            };
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}, after 60 s: {diff}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(
        common::sample(&text, "syncwatch_scan_errors_total"),
        Some(0.0),
        "no scan failed"
    );

    // The API and the status page show public uuids, never the integer key.
    let public: BTreeSet<String> =
        sqlx::query_scalar("select workspace_connector_id::text from workspace_connector")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let list = get_json(&format!("{}/v1/sync-logs?limit=100", server.api)).await;
    let listed: BTreeSet<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["workspace_connector_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, public, "{list}");
    let failing: String = sqlx::query_scalar(
        "select workspace_connector_id::text from workspace_connector where id = 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let filtered = get_json(&format!(
        "{}/v1/sync-logs?workspace_connector_id={failing}&limit=5",
        server.api
    ))
    .await;
    assert!(
        filtered["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty()
                && items
                    .iter()
                    .all(|r| r["workspace_connector_id"] == failing.as_str())),
        "{filtered}"
    );
    let page = get_text(&format!("{}/ui/failing", server.api)).await;
    assert!(
        page.contains(&failing),
        "/ui/failing names {failing}:\n{page}"
    );
    let connection = reqwest::Client::new()
        .get(format!("{}/ui/connections/{failing}", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(connection.status(), reqwest::StatusCode::OK);
    assert!(connection.text().await.unwrap().contains("HTTP 429"));
}

/// A role that may not read the sync log stops `serve` at start, saying so, rather than
/// serving 500s and failing every scan.
#[tokio::test]
async fn a_role_that_may_not_read_the_table_is_refused_at_start() {
    let Some(mut db) = TestDb::unmigrated(Backend::Postgres).await else {
        return;
    };
    let mut conn = PgConnection::connect(db.url.expose()).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    let (_, url) = db.select_only_role(&["workspace_connector"]).await;
    let stderr = refused_at_start(&url, MAPPING).await;
    assert!(
        stderr.contains("cannot observe") && stderr.contains("permission denied"),
        "{stderr}"
    );
}
