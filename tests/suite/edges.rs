//! Edges an operator or a client reaches by ordinary use, each answered at once and
//! clearly: a declared body over the limit, a PostgreSQL URL that names no host or
//! database, a store that refuses connections, a `records_synced` a float cannot hold, a
//! cursor this API never gave out, a state store `check` has not seen created, and a build
//! progress ratio that reads 1 only once the counters are published.

use crate::common;

use std::time::{Duration, Instant};

use common::{family_sum, sample, service_bin, Server, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The status line the server answers `request` (headers and a partial body) with.
async fn first_line(base: &str, request: &str) -> (String, Duration) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer))
        .await
        .expect("an answer within 30 s")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    (
        text.lines().next().unwrap_or_default().to_owned(),
        started.elapsed(),
    )
}

async fn a_declared_body_over_the_limit_is_413_before_it_is_sent(app: &TestApp) {
    let head = "POST /v1/sync-logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 2000000\r\n";
    // One byte of two million sent: the answer does not wait for the rest.
    let (line, took) = first_line(&app.base, &format!("{head}\r\n{{")).await;
    assert!(line.contains(" 413 "), "{line}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // Asked whether to send it, the server says no rather than `100 Continue`.
    let (line, _) = first_line(&app.base, &format!("{head}Expect: 100-continue\r\n\r\n")).await;
    assert!(line.contains(" 413 "), "{line}");
    assert_eq!(app.db.count_rows().await, 0);
}

async fn records_synced_a_float_cannot_hold_is_refused(app: &TestApp) {
    for text in ["9007199254740993", "9007199254740992.5"] {
        let body = format!(
            r#"{{"workspace_connector_id": "{}", "connector_slug": "hubspot",
                "metadata": {{"records_synced": {text}}}}}"#,
            uuid::Uuid::new_v4()
        );
        let answer = app
            .client
            .post(app.url("/v1/sync-logs"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    }
    let (status, _) = app
        .post(
            "/v1/sync-logs",
            json!({"workspace_connector_id": uuid::Uuid::new_v4(), "connector_slug": "hubspot",
                   "metadata": {"records_synced": 9_007_199_254_740_992_u64}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "2^53 itself is a count");
    assert_eq!(app.db.count_rows().await, 1, "only the last was written");
}

async fn a_cursor_before_1970_is_400(app: &TestApp) {
    let (status, body) = app
        .get("/v1/sync-logs?cursor=-1_521d86d15b13497d978e84629bfc1abe")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
}

on_both_stores!(
    a_declared_body_over_the_limit_is_413_before_it_is_sent,
    records_synced_a_float_cannot_hold_is_refused,
    a_cursor_before_1970_is_400,
);

fn run(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(service_bin())
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SYNCWATCH_API_TOKENS")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_postgres_url_that_names_no_host_or_database_is_refused() {
    for (url, says) in [
        ("postgresql://", "names no host"),
        ("postgres://127.0.0.1:5432", "names no database"),
    ] {
        for command in ["check", "serve", "migrate"] {
            let (ok, said) = run(&[command, "--database-url", url]);
            assert!(!ok, "{command} {url}: {said}");
            assert!(said.contains(says), "{command} {url}: {said}");
        }
    }
}

#[test]
fn serve_on_a_closed_port_fails_within_the_acquire_timeout_saying_refused() {
    let port = common::process::free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/app");
    let started = Instant::now();
    let (ok, said) = run(&[
        "serve",
        "--database-url",
        &url,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--db-acquire-timeout",
        "5s",
    ]);
    let took = started.elapsed();
    assert!(!ok, "{said}");
    assert!(said.to_lowercase().contains("refused"), "{said}");
    assert!(
        took < Duration::from_secs(5),
        "failed after {took:?}: {said}"
    );
}

#[tokio::test]
async fn check_reports_a_state_store_not_created_yet_and_creates_nothing() {
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let state_url = format!("sqlite://{}", state.display());
    let (ok, said) = run(&[
        "check",
        "--database-url",
        db.url.expose(),
        "--observe-only",
        "--state-database-url",
        &state_url,
    ]);
    assert!(ok, "{said}");
    assert!(said.contains("read through the mapping: ok"), "{said}");
    assert!(said.contains("does not exist yet"), "{said}");
    assert!(!state.exists(), "check created {}", state.display());
}

#[tokio::test]
async fn the_build_progress_reads_1_only_once_the_counters_are_published() {
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    // Many connections, walked a few hundred per statement: the walk takes several scans
    // after the totals are done.
    db.execute(
        "insert into workspace_connector_sync_log
           (workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status,
            started_at, completed_at, duration_ms, created_at, updated_at)
         select gen_random_uuid(), gen_random_uuid(), 'hubspot', 'success',
                now() - interval '2 hours', now() - interval '1 hour', 3600000,
                now() - interval '2 hours', now() - interval '1 hour'
         from generate_series(1, 20000)",
    )
    .await;
    let server = Server::start(
        db.url.expose(),
        &[
            "--scan-interval",
            "100ms",
            "--scan-chunk-connections",
            "100",
        ],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_below = false;
    loop {
        let text = server.scrape().await;
        let ratio = sample(&text, "syncwatch_build_progress_ratio").unwrap_or(0.0);
        let runs = family_sum(&text, "connector_sync_runs_total");
        if ratio < 1.0 {
            seen_below = true;
        } else {
            assert_eq!(
                runs, 20000.0,
                "the ratio read 1 before the counters were published"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the build did not finish: ratio {ratio}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen_below, "the build was watched while it ran");
}

#[tokio::test]
async fn a_table_whose_times_lie_hours_ahead_is_said_by_check_and_at_start() {
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    // A writer in a zone nine hours ahead of UTC storing its local time.
    db.execute(
        "insert into workspace_connector_sync_log
           (workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status,
            started_at, completed_at, duration_ms, created_at, updated_at)
         values (gen_random_uuid(), gen_random_uuid(), 'hubspot', 'success',
                 now() + interval '9 hours', now() + interval '9 hours 30 seconds', 30000,
                 now() + interval '9 hours', now() + interval '9 hours 30 seconds')",
    )
    .await;
    let (ok, said) = run(&["check", "--database-url", db.url.expose(), "--observe-only"]);
    assert!(ok, "a warning, not a failure: {said}");
    assert!(
        said.contains("clock: WARNING: the newest completion in the table is 9h 00m ahead"),
        "{said}"
    );
    let server = Server::start(db.url.expose(), &[]).await;
    common::wait_until(
        "the warning in the log",
        Duration::from_secs(10),
        async || {
            server
                .stderr_tail()
                .contains("9h 00m ahead of the database clock")
        },
    )
    .await;
    // A table in step with the clock says so.
    db.execute("delete from workspace_connector_sync_log").await;
    let (ok, said) = run(&["check", "--database-url", db.url.expose()]);
    assert!(ok, "{said}");
    assert!(said.contains("clock: ok"), "{said}");
}
