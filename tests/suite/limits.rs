//! Limits that hold whatever the clients do: metadata bounded after merges, error texts
//! capped where stored and cut in summaries, connector status in pages, and connections
//! that send nothing closed and capped on both listeners.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{run_id, Backend, Server, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

const MAX_METADATA_BYTES: usize = 64 * 1024;

async fn started_run(app: &TestApp) -> String {
    let id = run_id(&app.create_run("hubspot").await);
    let (status, row) = app.post_empty(&format!("/v1/sync-logs/{id}/start")).await;
    assert_eq!(status, StatusCode::OK, "{row}");
    id
}

async fn merged_metadata_stays_within_the_limit(app: &TestApp) {
    let id = started_run(app).await;
    let part = "x".repeat(MAX_METADATA_BYTES * 5 / 8);
    let heartbeat = format!("/v1/sync-logs/{id}/heartbeat");
    let (status, row) = app.post(&heartbeat, json!({"metadata": {"a": part}})).await;
    assert_eq!(status, StatusCode::OK, "{row}");

    // Each request is under the limit; merged, the second is not: refused, nothing written.
    for action in ["heartbeat", "succeed", "fail"] {
        let mut body = json!({"metadata": {"b": part}});
        if action == "fail" {
            body["error"] = json!("boom");
        }
        let (status, err) = app
            .post(&format!("/v1/sync-logs/{id}/{action}"), body)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{action}: {err}");
        assert_eq!(err["error"]["code"], "validation_failed", "{action}: {err}");
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("merged"), "{action}: {message}");
        let (_, run) = app.get(&format!("/v1/sync-logs/{id}")).await;
        assert_eq!(run["status"], "in_progress", "{action} changed nothing");
        assert_eq!(
            run["metadata"],
            json!({"a": part}),
            "{action} changed nothing"
        );
    }

    // A patch that shrinks the document fits again, and the run finishes with it.
    let (status, row) = app
        .post(&heartbeat, json!({"metadata": {"a": null, "b": part}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!(row["metadata"], json!({"b": part}));
    let (status, row) = app
        .post(
            &format!("/v1/sync-logs/{id}/succeed"),
            json!({"metadata": {"records_synced": 3}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!(row["status"], "success");
}

async fn long_error_texts_are_capped_where_stored_and_cut_in_summaries(app: &TestApp) {
    const CAP: usize = 8192;
    const SUMMARY: usize = 2048;
    let id = started_run(app).await;
    let long = format!("{}END", "é".repeat(100_000));
    let (status, row) = app
        .post(&format!("/v1/sync-logs/{id}/fail"), json!({"error": long}))
        .await;
    assert_eq!(status, StatusCode::OK, "{}", row["error"]["message"]);
    let stored = row["error"].as_str().expect("error text");
    assert_eq!(stored.chars().count(), CAP);
    assert!(stored.starts_with("éé"));
    assert!(
        stored.ends_with("[cut: 100003 characters in all]"),
        "{}",
        &stored[stored.len() - 50..]
    );
    let (_, run) = app.get(&format!("/v1/sync-logs/{id}")).await;
    assert_eq!(run["error"], row["error"]);

    // Another writer's text of any length: summaries carry its start only.
    let huge = "e".repeat(300_000);
    app.db
        .execute(&format!(
            "update workspace_connector_sync_log set error = '{huge}' \
             where workspace_connector_sync_log_id = '{id}'"
        ))
        .await;
    let connection = row["workspace_connector_id"].as_str().unwrap();
    let (status, page) = app
        .get(&format!(
            "/v1/connector-status?workspace_connector_id={connection}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let last_error = page["items"][0]["last_error"].as_str().expect("last_error");
    assert_eq!(last_error.len(), SUMMARY);
    let (status, run) = app.get(&format!("/v1/sync-logs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["error"].as_str().map(str::len), Some(huge.len()));
}

async fn connector_status_pages_cover_every_connection_once(app: &TestApp) {
    // Nine connections, failure streaks 0..=3 with ties, so pages split inside a tie.
    for i in 0..9 {
        let connection = Uuid::new_v4();
        for _ in 0..(i % 4) {
            let row = app
                .create(json!({
                    "workspace_connector_id": connection,
                    "connector_slug": "hubspot",
                }))
                .await;
            let id = run_id(&row);
            app.post_empty(&format!("/v1/sync-logs/{id}/start")).await;
            let (status, _) = app
                .post(
                    &format!("/v1/sync-logs/{id}/fail"),
                    json!({"error": "boom"}),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
        }
        if i % 4 == 0 {
            app.create(json!({"workspace_connector_id": connection, "connector_slug": "hubspot"}))
                .await;
        }
    }
    let (status, whole) = app.get("/v1/connector-status?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(whole["next_cursor"], Value::Null);
    let whole: Vec<Value> = whole["items"].as_array().unwrap().clone();
    assert_eq!(whole.len(), 9);

    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/connector-status?limit=2&cursor={c}"),
            None => "/v1/connector-status?limit=2".to_owned(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        walked.extend(items.iter().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "the walk ends");
    }
    assert_eq!(
        walked, whole,
        "pages of 2 walk the same list in the same order"
    );
    let ids: BTreeSet<&str> = walked
        .iter()
        .map(|e| e["workspace_connector_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 9);
    let streaks: Vec<i64> = walked
        .iter()
        .map(|e| e["consecutive_failures"].as_i64().unwrap())
        .collect();
    assert!(streaks.windows(2).all(|w| w[0] >= w[1]), "{streaks:?}");

    for bad in [
        "limit=0",
        "limit=10001",
        "limit=x",
        "cursor=garbage",
        "cursor=1_not-a-uuid",
        "cursor=-1_521d86d1-5b13-497d-978e-84629bfc1abe",
    ] {
        let (status, err) = app.get(&format!("/v1/connector-status?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {err}");
    }
}

on_both_stores!(
    merged_metadata_stays_within_the_limit,
    long_error_texts_are_capped_where_stored_and_cut_in_summaries,
    connector_status_pages_cover_every_connection_once,
);

/// Reads until the server closes the socket; how long after `opened` that was, or `None`
/// if it was still open `patience` after it.
async fn closed_within(
    socket: &mut TcpStream,
    opened: Instant,
    patience: Duration,
) -> Option<Duration> {
    let started = opened;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + patience).into(), socket.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// One `GET /healthz` on a socket of its own; the status line, or `None` if nothing came
/// back within `patience`.
async fn healthz_on(socket: &mut TcpStream, patience: Duration) -> Option<String> {
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: syncwatch\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(patience, socket.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .map(str::to_owned)
}

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_half_sent_and_idle_connections_are_closed_on_both_listeners() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = Server::start(db.url.expose(), &["--header-read-timeout", "1s"]).await;
    for listener in [addr(&server.api), addr(&server.metrics)] {
        let opened = Instant::now();
        let mut silent = TcpStream::connect(&listener).await.unwrap();
        let mut half = TcpStream::connect(&listener).await.unwrap();
        half.write_all(b"GET /healthz HT").await.unwrap();
        let mut idle = TcpStream::connect(&listener).await.unwrap();
        let answer = healthz_on(&mut idle, Duration::from_secs(10)).await;
        assert_eq!(answer.as_deref(), Some("HTTP/1.1 200 OK"), "{listener}");
        for (what, socket) in [
            ("sending nothing", &mut silent),
            ("half a request line", &mut half),
            ("idle after a response", &mut idle),
        ] {
            let closed = closed_within(socket, opened, Duration::from_secs(20)).await;
            let closed = closed.unwrap_or_else(|| {
                panic!("{listener}: a connection {what} is still open after 20 s")
            });
            assert!(
                closed >= Duration::from_millis(500),
                "{listener}: a connection {what} was closed {closed:?} after opening, before the timeout"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_and_the_other_listener_still_answers() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = Server::start(
        db.url.expose(),
        &["--max-connections", "4", "--header-read-timeout", "120s"],
    )
    .await;
    // Four silent sockets take every slot (the kernel's accept queue is first in, first
    // out: a start probe still closing delays them, never the fifth).
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr(&server.api)).await.unwrap());
    }
    let mut fifth = TcpStream::connect(addr(&server.api)).await.unwrap();
    let answer = healthz_on(&mut fifth, Duration::from_millis(1500)).await;
    assert_eq!(
        answer, None,
        "a fifth connection was served beyond the cap of 4"
    );
    // The metrics listener has slots of its own.
    let mut scrape = TcpStream::connect(addr(&server.metrics)).await.unwrap();
    let answer = healthz_on(&mut scrape, Duration::from_secs(10)).await;
    assert_eq!(answer.as_deref(), Some("HTTP/1.1 200 OK"));
    // One slot frees, and the waiting request is served.
    held.pop();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), fifth.read(&mut buf))
        .await
        .expect("the waiting connection is served once a slot frees")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}
