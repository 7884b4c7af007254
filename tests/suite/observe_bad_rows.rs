//! Rows another service wrote outside the contract — a status the orchestrator added
//! (`cancelled`), `infinity` timestamps, on SQLite a `metadata` that is not JSON and an
//! epoch-integer timestamp — never stop the scanner or a page: a run whose status cannot be
//! read is skipped and counted in `syncwatch_rows_skipped_total`, a value a run may lack
//! counts as absent, every other number stays equal to SQL, and the API and the status
//! page answer, marking what they cannot show.

use crate::common;
use crate::observe_orm::{check, differences, drive_runs, MAPPING, SCHEMA};

use std::time::{Duration, Instant};

use common::{get_json, Backend, Server, TestDb};
use sqlx::{Connection, PgConnection};

/// A finished manual run of connection `connection` with `status` (any label of the
/// enum); its public id.
async fn bad_run(conn: &mut PgConnection, connection: i32, status: &str) -> String {
    sqlx::query_scalar(
        "insert into workspace_connector_sync_log (workspace_connector_id, status, trigger_type, \
           started_at, completed_at, duration_ms, metadata) \
         values ($1, $2::text::sync_status, 'manual', now() - interval '2 seconds', now(), 2000, \
           '{\"records_synced\": 5}') \
         returning workspace_connector_sync_log_id::text",
    )
    .bind(connection)
    .bind(status)
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

async fn set(conn: &mut PgConnection, id: &str, set: &str) {
    sqlx::query(&format!(
        "update workspace_connector_sync_log set {set} \
         where workspace_connector_sync_log_id = $1::uuid"
    ))
    .bind(id)
    .execute(&mut *conn)
    .await
    .unwrap();
}

/// Waits until every number equals SQL; the last scrape.
async fn exact(server: &Server, conn: &mut PgConnection, when: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = server.scrape().await;
        let Some(diff) = differences(conn, &text).await else {
            return text;
        };
        assert!(Instant::now() < deadline, "{when}, after 60 s: {diff}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn skipped(text: &str, reason: &str, column: &str) -> f64 {
    common::family_samples(text, "syncwatch_rows_skipped_total")
        .into_iter()
        .filter(|(labels, _)| {
            labels.contains(&("reason".to_owned(), reason.to_owned()))
                && labels.contains(&("column".to_owned(), column.to_owned()))
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn rows_outside_the_contract_are_skipped_and_counted_and_the_rest_stays_exact() {
    let Some(mut db) = TestDb::unmigrated(Backend::Postgres).await else {
        return;
    };
    let mut conn = PgConnection::connect(db.url.expose()).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    // The orchestrator added a status syncwatch does not know.
    sqlx::raw_sql("alter type sync_status add value 'cancelled'")
        .execute(&mut conn)
        .await
        .unwrap();
    let (_, url) = db
        .select_only_role(&["workspace_connector_sync_log", "workspace_connector"])
        .await;
    drive_runs(&mut conn, 0).await;

    // Before the start (the build reads them in SQL): a cancelled run as the latest of the
    // connection that always fails (it stays failing, its streak unbroken), a success whose
    // creation is `infinity`, one that started at `-infinity`.
    bad_run(&mut conn, 1, "cancelled").await;
    let infinite = bad_run(&mut conn, 3, "success").await;
    set(&mut conn, &infinite, "created_at = 'infinity'").await;
    let long_ago = bad_run(&mut conn, 4, "success").await;
    set(&mut conn, &long_ago, "started_at = '-infinity'").await;

    // `check` reads every kind of read and passes: these rows are skipped, not fatal.
    let (ok, said) = check(&url, MAPPING);
    assert!(ok, "{said}");
    assert!(said.contains("rows the reads could not decode: "), "{said}");

    let mut flags = MAPPING.to_vec();
    flags.extend(["--scan-interval", "200ms"]);
    let server = Server::start(&url, &flags).await;
    exact(&server, &mut conn, "after the build").await;

    // While serving (the steady scan reads them run by run): the same kinds again, and a
    // cancelled run as a connection's latest.
    let cancelled = bad_run(&mut conn, 5, "cancelled").await;
    let infinite = bad_run(&mut conn, 6, "success").await;
    set(&mut conn, &infinite, "created_at = 'infinity'").await;
    drive_runs(&mut conn, 1).await;
    let text = exact(&server, &mut conn, "while serving").await;
    assert_eq!(
        common::sample(&text, "syncwatch_scan_errors_total"),
        Some(0.0),
        "no scan failed"
    );
    // Both cancelled runs were read run by run (the one before the start too: it lies
    // within the late-commit window the build reads so), each counted once however often
    // the steady scan's overlap reads it again; the walk over connections took the
    // readable run before it as its connection's latest.
    assert_eq!(
        skipped(&text, "unknown_value", "status"),
        2.0,
        "{}",
        text.lines()
            .filter(|l| l.starts_with("syncwatch_rows_skipped_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The API lists the runs it can show, and says what it cannot.
    let list = get_json(&format!("{}/v1/sync-logs?limit=200", server.api)).await;
    let items = list["items"].as_array().expect("a page");
    let total: i64 = sqlx::query_scalar(
        "select count(*) from workspace_connector_sync_log \
         where status::text <> 'cancelled' and isfinite(created_at)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(items.len() as i64, total, "every readable run listed");
    let run = get_json(&format!("{}/v1/sync-logs/{long_ago}", server.api)).await;
    assert_eq!(run["started_at"], serde_json::Value::Null, "{run}");
    assert_eq!(
        run["unreadable"],
        serde_json::json!(["started_at"]),
        "{run}"
    );
    let response = reqwest::get(format!("{}/v1/sync-logs/{cancelled}", server.api))
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unreadable_row", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("status") && message.contains("cancelled"),
        "{message}"
    );

    // The status page answers for the run and for its connection.
    for (path, status) in [
        (format!("/ui/runs/{long_ago}"), reqwest::StatusCode::OK),
        (
            format!("/ui/runs/{cancelled}"),
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let response = reqwest::get(format!("{}{path}", server.api)).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("started_at") || page.contains("cancelled"),
            "{path} says what it cannot show:\n{page}"
        );
    }
    let connection: String = sqlx::query_scalar(
        "select workspace_connector_id::text from workspace_connector where id = 5",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let response = reqwest::get(format!("{}/ui/connections/{connection}", server.api))
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}
