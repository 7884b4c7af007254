//! Faults: the store going away and coming back, the server killed under write load, a
//! database too slow to answer, a pool with no free connection, a client too slow to send
//! its body. Each test runs the real binary (or the real app) on a real store.

use crate::common;

use std::time::{Duration, Instant};

use common::cluster::OwnCluster;
use common::{
    family_sum, run_id, run_through_api, sample, wait_until, Backend, Server, TestApp, TestDb,
};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use syncwatch::api::ApiSettings;
use syncwatch_tools::load::{self, LoadConfig, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// CPU time (user + system) of a process so far, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are 11 and 12 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Domain series (everything syncwatch derives from the table) of an exposition.
fn domain_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("connector_sync_"))
        .map(str::to_owned)
        .collect()
}

fn create_body(slug: &str) -> Value {
    json!({ "workspace_connector_id": Uuid::new_v4(), "connector_slug": slug })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_keeps_the_last_metrics_answers_503_and_recovers_without_restart() {
    let Some(pg) = OwnCluster::create() else {
        return;
    };
    let server = Server::start(
        &pg.url(),
        &[
            "--scan-interval",
            "1s",
            "--db-acquire-timeout",
            "1s",
            "--request-timeout",
            "5s",
        ],
    )
    .await;
    let client = Client::new();
    let mut ids = Vec::new();
    for (slug, outcome) in [
        ("outage-a", "succeed"),
        ("outage-a", "fail"),
        ("outage-b", "succeed"),
    ] {
        let row = run_through_api(&client, &server.api, create_body(slug), outcome, "boom").await;
        ids.push((run_id(&row), row["status"].clone()));
    }
    wait_until(
        "the three runs in /metrics",
        Duration::from_secs(20),
        async || {
            let text = server.scrape().await;
            family_sum(&text, "connector_sync_runs_total") == 3.0
                && sample(&text, "syncwatch_up") == Some(1.0)
        },
    )
    .await;
    let before = domain_lines(&server.scrape().await);

    pg.stop_immediately();
    let down = wait_until("syncwatch_up 0", Duration::from_secs(15), async || {
        sample(&server.scrape().await, "syncwatch_up") == Some(0.0)
    })
    .await;
    eprintln!("figure: syncwatch_up fell to 0 {down:?} after the store stopped");

    // The API: 503 in the error shape, quickly; readiness fails, liveness does not.
    let started = Instant::now();
    let response = client
        .post(format!("{}/v1/sync-logs", server.api))
        .json(&create_body("outage-a"))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    assert!(took < Duration::from_secs(5), "the 503 took {took:?}");
    eprintln!("figure: a create during the outage answered 503 in {took:?}");
    // Logged once, with what failed and where.
    let logged = server.stderr_tail();
    assert!(
        logged.lines().any(|l| l.contains("store unavailable")
            && l.contains("/v1/sync-logs")
            && l.contains("POST")
            && l.contains("503")),
        "no log line for the failed create with its route, method and status:\n{logged}"
    );
    let ready = client
        .get(format!("{}/readyz", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let live = client
        .get(format!("{}/healthz", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);

    // /metrics keeps the last values and answers fast; scans keep failing, slowly.
    let errors_before = sample(&server.scrape().await, "syncwatch_scan_errors_total").unwrap();
    let cpu_before = cpu_ticks(server.pid());
    let window = Instant::now();
    let mut slowest = Duration::ZERO;
    while window.elapsed() < Duration::from_secs(4) {
        let started = Instant::now();
        let text = server.scrape().await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(
            domain_lines(&text),
            before,
            "domain values changed during the outage"
        );
        assert_eq!(sample(&text, "syncwatch_up"), Some(0.0));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu = cpu_ticks(server.pid()) - cpu_before;
    let window = window.elapsed();
    let errors_after = sample(&server.scrape().await, "syncwatch_scan_errors_total").unwrap();
    assert!(
        errors_after > errors_before,
        "scan errors did not rise: {errors_before} → {errors_after}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a scrape took {slowest:?} during the outage"
    );
    // A busy loop would burn about one core (100 ticks a second).
    assert!(
        (cpu as f64) < 25.0 * window.as_secs_f64(),
        "syncwatch used {cpu} ticks of CPU in {window:?} while the store was down"
    );
    eprintln!(
        "figure: during the outage: slowest scrape {slowest:?}, CPU {cpu} ticks in {window:?}, \
         scan errors {errors_before} → {errors_after}"
    );

    // The store comes back: recovery without a restart, nothing written before is lost.
    pg.start();
    let back = wait_until(
        "syncwatch_up 1 after the store returned",
        Duration::from_secs(15),
        async || sample(&server.scrape().await, "syncwatch_up") == Some(1.0),
    )
    .await;
    eprintln!("figure: syncwatch_up back to 1 {back:?} after the store answered again");
    assert!(
        back < Duration::from_secs(5),
        "recovery took {back:?} with a 1s scan interval"
    );
    for (id, status) in &ids {
        let row = get_json(&client, &format!("{}/v1/sync-logs/{id}", server.api)).await;
        assert_eq!(&row["status"], status, "{row}");
    }
    assert_eq!(domain_lines(&server.scrape().await).len(), before.len());
    run_through_api(&client, &server.api, create_body("outage-b"), "succeed", "").await;
    wait_until("the new run counted", Duration::from_secs(10), async || {
        family_sum(&server.scrape().await, "connector_sync_runs_total") == 4.0
    })
    .await;
    let ready = client
        .get(format!("{}/readyz", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

/// `kill -9` while clients write; after a restart every acknowledged write is there, no
/// row is half-transitioned and the metrics equal the store.
async fn kill_9_under_write_load(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let url = db.url.expose().to_owned();
    let flags = ["--scan-interval", "1s"];
    let server = Server::start(&url, &flags).await;
    let (api_port, metrics_port) = (port_of(&server.api), port_of(&server.metrics));
    let config = LoadConfig {
        clients: 8,
        duration: Duration::from_secs(60),
        ..LoadConfig::default()
    };
    let target = Target::api(&server.api, None).unwrap();
    let load = {
        let config = config.clone();
        tokio::spawn(async move { load::run(&target, &config, std::future::pending()).await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.kill_9();
    let report = tokio::time::timeout(Duration::from_secs(60), load)
        .await
        .expect("the clients stop once the server is gone")
        .unwrap();
    eprintln!(
        "figure ({backend:?}): before the kill: {}",
        report.summary()
    );
    assert!(
        !report.acked.is_empty(),
        "nothing was acknowledged before the kill"
    );
    assert!(
        report.transport_errors > 0,
        "the clients did not notice the kill"
    );
    assert_eq!(report.server_errors(), 0);
    assert_eq!(report.violation_count, 0, "{:?}", report.violations);

    let server = Server::start_on(&url, api_port, metrics_port, &flags).await;
    let v = load::verify(&db.store, &config, &report, false)
        .await
        .unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    let acked = report.acked.len() as u64;
    // A create in flight when the process died may have committed unacknowledged.
    assert!(
        v.rows >= acked && v.rows <= acked + config.clients as u64,
        "{} rows for {acked} acknowledged creates",
        v.rows
    );
    let torn = db
        .scalar_i64(
            "select count(*) from workspace_connector_sync_log where \
               (status in ('success', 'error')) <> (completed_at is not null) \
               or (status = 'in_progress' and started_at is null) \
               or (status = 'error' and error is null) \
               or (completed_at is not null and started_at is not null and duration_ms is null)",
        )
        .await;
    assert_eq!(torn, 0, "half-transitioned rows after kill -9");
    let metrics = format!("{}/metrics", server.metrics);
    let matched = load::wait_for_metrics(
        &metrics,
        None,
        &config,
        &v.terminal,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(matched, Ok(()));
    eprintln!(
        "figure ({backend:?}): after restart: {} rows for {acked} acknowledged creates, \
         {} still active, metrics equal SQL",
        v.rows, v.active_rows
    );
    drop(server);
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_write_load_loses_no_acknowledged_write_postgres() {
    kill_9_under_write_load(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_write_load_loses_no_acknowledged_write_sqlite() {
    kill_9_under_write_load(Backend::Sqlite).await;
}

/// A table locked by someone else: scanner queries are cancelled by the scanner's
/// statement timeout, API statements by the API's, scrapes never wait, and a request that
/// finds no free connection gets 503 after the acquire timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_database_is_cut_off_by_statement_timeouts_and_never_blocks_a_scrape() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let url = db.url.expose().to_owned();
    let server = Server::start(
        &url,
        &[
            "--scan-interval",
            "1s",
            "--scan-statement-timeout",
            "1s",
            "--scan-timeout",
            "20s",
            "--db-statement-timeout",
            "1s",
            "--request-timeout",
            "10s",
            "--db-max-connections",
            "2",
            "--db-acquire-timeout",
            "500ms",
        ],
    )
    .await;
    let client = Client::new();
    let first = run_through_api(&client, &server.api, create_body("slow-a"), "succeed", "").await;
    wait_until(
        "the first run counted",
        Duration::from_secs(10),
        async || family_sum(&server.scrape().await, "connector_sync_runs_total") == 1.0,
    )
    .await;

    let mut locker = PgConnection::connect(&url).await.unwrap();
    sqlx::query("begin").execute(&mut locker).await.unwrap();
    sqlx::query("lock table workspace_connector_sync_log in access exclusive mode")
        .execute(&mut locker)
        .await
        .unwrap();
    let errors_before = sample(&server.scrape().await, "syncwatch_scan_errors_total").unwrap();
    wait_until(
        "a scan to fail on the lock",
        Duration::from_secs(15),
        async || {
            sample(&server.scrape().await, "syncwatch_scan_errors_total").unwrap() > errors_before
        },
    )
    .await;
    let text = server.scrape().await;
    let scan_took = sample(&text, "syncwatch_last_scan_duration_seconds").unwrap();
    assert_eq!(sample(&text, "syncwatch_up"), Some(0.0));
    // Cancelled by the 1s statement timeout, long before the 20s scan timeout.
    assert!(
        (0.9..5.0).contains(&scan_took),
        "the failed scan took {scan_took}s; the statement timeout is 1s"
    );

    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let text = server.scrape().await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(family_sum(&text, "connector_sync_runs_total"), 1.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a scrape took {slowest:?}"
    );
    // The scanner's reads have their own connections: the API's pool stays free.
    let ready = client
        .get(format!("{}/readyz", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "readiness needs only the API pool"
    );

    // An API write waits on the lock until the server cancels it: 503, quickly.
    let started = Instant::now();
    let (status, body) = post(&client, &server.api, create_body("slow-a")).await;
    let write_took = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
    assert!(
        write_took < Duration::from_secs(4),
        "the write took {write_took:?}"
    );

    // Both API connections busy on the lock: a third request gets 503 after the acquire
    // timeout instead of queueing.
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (client, api) = (client.clone(), server.api.clone());
            tokio::spawn(async move { post(&client, &api, create_body("slow-b")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let response = client
        .get(format!("{}/v1/sync-logs?limit=1", server.api))
        .send()
        .await
        .unwrap();
    let exhausted_took = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable");
    assert!(
        exhausted_took < Duration::from_millis(1500),
        "took {exhausted_took:?}"
    );
    for task in busy {
        let (status, _) = task.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    eprintln!(
        "figure: locked table: failed scan {scan_took:.2}s, slowest scrape {slowest:?}, \
         write cancelled after {write_took:?}, no free connection answered in {exhausted_took:?}"
    );

    sqlx::query("rollback").execute(&mut locker).await.unwrap();
    let _ = locker.close().await;
    let back = wait_until(
        "a scan to succeed again",
        Duration::from_secs(10),
        async || sample(&server.scrape().await, "syncwatch_up") == Some(1.0),
    )
    .await;
    assert!(back < Duration::from_secs(5), "recovery took {back:?}");
    let (status, _) = post(&client, &server.api, create_body("slow-a")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(db.count_rows().await, 2, "the refused writes wrote nothing");
    let row = get_json(
        &client,
        &format!("{}/v1/sync-logs/{}", server.api, run_id(&first)),
    )
    .await;
    assert_eq!(row["status"], "success");
    drop(server);
}

async fn get_json(client: &Client, url: &str) -> Value {
    let response = client.get(url).send().await.unwrap();
    response.json().await.unwrap()
}

async fn post(client: &Client, api: &str, body: Value) -> (StatusCode, Value) {
    let response = client
        .post(format!("{api}/v1/sync-logs"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A client that sends its headers and then stalls is cut off by the request timeout
/// with 503 in the error shape; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_times_out_with_503() {
    let settings = ApiSettings {
        request_timeout: Duration::from_millis(700),
        ..ApiSettings::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, settings)
        .await
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /v1/sync-logs HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"connector_slug\":",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the server answers a stalled request")
            .unwrap();
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&response).contains("\"request_timeout\"") {
            break;
        }
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    assert!(
        (Duration::from_millis(600)..Duration::from_secs(5)).contains(&took),
        "answered after {took:?} with a 700ms timeout"
    );
    assert_eq!(app.db.count_rows().await, 0);
}
