//! The counting rule (docs/metrics.md, "The counting rule"), through the real binary on the
//! ORM's table: a run is counted once per completion the scanner sees, by its internal
//! key, under the labels it had when it was counted. A connector renamed in the lookup
//! table, then a restart and the repair sweeps that follow, count no run twice (the old
//! label keeps what it counted, the new one counts what completes after the rename); a run
//! reopened and completed again is counted again, as a second completion; a duplicated
//! public id is two runs. Each compared with SQL under that rule.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{family_samples as family, sample, Server, TestDb};
use sqlx::{Connection, PgConnection};

use crate::observe_orm::{drive_runs, MAPPING, SCHEMA};

type Labels = Vec<(String, String)>;

/// Terminal runs by (connector, trigger, status) under the labels the lookup gives now,
/// of the runs whose key is above `after`.
async fn counted_now(conn: &mut PgConnection, table: &str, after: i32) -> BTreeMap<Labels, f64> {
    let rows: Vec<(String, String, String, f64)> = sqlx::query_as(&format!(
        "select w.connector_slug, coalesce(t.trigger_type, 'none'), t.status::text, \
           count(*)::float8 from {table} t \
         join workspace_connector w on w.id = t.workspace_connector_id \
         where t.completed_at is not null and t.id > $1 group by 1, 2, 3"
    ))
    .bind(after)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(c, t, s, n)| {
            (
                vec![
                    ("connector".into(), c),
                    ("status".into(), s),
                    ("trigger".into(), t),
                ],
                n,
            )
        })
        .collect()
}

fn plus(mut a: BTreeMap<Labels, f64>, b: &BTreeMap<Labels, f64>) -> BTreeMap<Labels, f64> {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
    a
}

async fn max_key(conn: &mut PgConnection, table: &str) -> i32 {
    sqlx::query_scalar(&format!("select coalesce(max(id), 0) from {table}"))
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Until the exported runs equal `expected`, failing with both after 60 s.
async fn exported_equals(server: &Server, expected: &BTreeMap<Labels, f64>, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = server.scrape().await;
        let exported = family(&text, "connector_sync_runs_total");
        if &exported == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}:\n  exported {exported:?}\n  expected {expected:?}\n{}",
            server.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Until a repair sweep has finished after `since` (Unix seconds), and one scan after it.
async fn swept_after(server: &Server, since: f64) {
    common::wait_until("a repair sweep", Duration::from_secs(60), async || {
        sample(
            &server.scrape().await,
            "syncwatch_last_repair_success_timestamp_seconds",
        )
        .is_some_and(|at| at > since)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

const FLAGS: &[&str] = &[
    "--scan-interval",
    "200ms",
    "--checkpoint-interval",
    "200ms",
    "--late-commit-window",
    "1s",
    "--repair-interval",
    "1s",
];

#[tokio::test]
async fn a_renamed_connector_a_restart_and_a_reopened_run_count_each_completion_once() {
    let Some(db) = TestDb::unmigrated(common::Backend::Postgres).await else {
        return;
    };
    let url = db.url.expose().to_owned();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    let table = "workspace_connector_sync_log";
    drive_runs(&mut conn, 0).await;
    let flags: Vec<&str> = MAPPING.iter().chain(FLAGS).copied().collect();
    let mut server = Server::start(&url, &flags).await;
    let before = counted_now(&mut conn, table, 0).await;
    exported_equals(&server, &before, "the first runs").await;

    // The connector renamed in the lookup table, then more runs.
    let renamed_at = max_key(&mut conn, table).await;
    sqlx::query(
        "update workspace_connector set connector_slug = 'hubspot_v2' \
         where connector_slug = 'hubspot'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    drive_runs(&mut conn, 1).await;
    let expected = plus(
        before.clone(),
        &counted_now(&mut conn, table, renamed_at).await,
    );
    assert!(
        expected.keys().any(|k| k[0].1 == "hubspot")
            && expected.keys().any(|k| k[0].1 == "hubspot_v2"),
        "both labels counted: {expected:?}"
    );
    exported_equals(&server, &expected, "after the rename").await;
    let since = now();
    swept_after(&server, since).await;
    exported_equals(&server, &expected, "after a sweep following the rename").await;

    // A restart: continued from the checkpoint, then a full sweep over the whole history,
    // whose runs the lookup now labels `hubspot_v2`.
    server.terminate(Duration::from_secs(20)).await;
    let since = now();
    let mut server = Server::start(&url, &flags).await;
    swept_after(&server, since).await;
    exported_equals(&server, &expected, "after a restart and a full sweep").await;

    // A connection row deleted (its foreign key dropped first): its runs have no public id
    // or connector now. What was counted stays, under the labels it was counted with,
    // through a restart and its full sweep.
    sqlx::raw_sql(
        "alter table workspace_connector_sync_log \
           drop constraint workspace_connector_sync_log_workspace_connector_id_fkey; \
         delete from workspace_connector where id = 3",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    server.terminate(Duration::from_secs(20)).await;
    let since = now();
    let mut server = Server::start(&url, &flags).await;
    swept_after(&server, since).await;
    exported_equals(&server, &expected, "after a connection row was deleted").await;

    // Five finished runs reopened and completed again: five more completions, under the
    // labels they have now.
    let reopened: Vec<i32> = sqlx::query_scalar(&format!(
        "select id from {table} where status = 'success' and workspace_connector_id <> 3 \
         order by id limit 5"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(reopened.len(), 5);
    sqlx::query(&format!(
        "update {table} set status = 'in_progress', completed_at = null, duration_ms = null \
         where id = any($1)"
    ))
    .bind(&reopened)
    .execute(&mut conn)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    sqlx::query(&format!(
        "update {table} set status = 'success', completed_at = now(), duration_ms = 1000 \
         where id = any($1)"
    ))
    .bind(&reopened)
    .execute(&mut conn)
    .await
    .unwrap();
    let again: BTreeMap<Labels, f64> = {
        let rows: Vec<(String, String, f64)> = sqlx::query_as(&format!(
            "select w.connector_slug, coalesce(t.trigger_type, 'none'), count(*)::float8 \
             from {table} t join workspace_connector w on w.id = t.workspace_connector_id \
             where t.id = any($1) group by 1, 2"
        ))
        .bind(&reopened)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(c, t, n)| {
                (
                    vec![
                        ("connector".into(), c),
                        ("status".into(), "success".into()),
                        ("trigger".into(), t),
                    ],
                    n,
                )
            })
            .collect()
    };
    let expected = plus(expected, &again);
    exported_equals(&server, &expected, "after five runs were completed again").await;
    let since = now();
    swept_after(&server, since).await;
    server.terminate(Duration::from_secs(20)).await;
    let since = now();
    let server = Server::start(&url, &flags).await;
    swept_after(&server, since).await;
    exported_equals(&server, &expected, "after a restart and a sweep").await;
    let total: f64 = expected.values().sum();
    let rows: i64 = sqlx::query_scalar(&format!(
        "select count(*) from {table} where completed_at is not null"
    ))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        total,
        rows as f64 + 5.0,
        "every terminal row once, and the five second completions"
    );
    let _ = conn.close().await;
}

#[tokio::test]
async fn rows_sharing_a_public_id_are_each_a_run() {
    let Some(db) = TestDb::unmigrated(common::Backend::Postgres).await else {
        return;
    };
    let url = db.url.expose().to_owned();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    // The ORM's table without its unique constraint on the public id.
    let schema = SCHEMA.replace(
        "uuid not null unique default gen_random_uuid(),\n    workspace_connector_id integer",
        "uuid not null default gen_random_uuid(),\n    workspace_connector_id integer",
    );
    assert_ne!(schema, SCHEMA, "the constraint was dropped");
    sqlx::raw_sql(&schema).execute(&mut conn).await.unwrap();
    drive_runs(&mut conn, 0).await;
    // No repair sweep while it runs: the window alone must count the three.
    let flags: Vec<&str> = MAPPING
        .iter()
        .chain(&FLAGS[..6])
        .chain(&["--repair-interval", "1h"])
        .copied()
        .collect();
    let server = Server::start(&url, &flags).await;
    let table = "workspace_connector_sync_log";
    exported_equals(
        &server,
        &counted_now(&mut conn, table, 0).await,
        "the first runs",
    )
    .await;
    // Three runs written with one public id, completed now.
    sqlx::query(&format!(
        "insert into {table} (workspace_connector_sync_log_id, workspace_connector_id, status, \
           trigger_type, started_at, completed_at, duration_ms, created_at, updated_at) \
         select '5f0c9a8e-0000-4000-8000-000000000001', 2, 'success', 'manual', now(), now(), \
           10, now(), now() from generate_series(1, 3)"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let expected = counted_now(&mut conn, table, 0).await;
    exported_equals(&server, &expected, "three rows, three runs").await;
    let _ = conn.close().await;
}
