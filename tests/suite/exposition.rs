//! The real exposition: `promtool check metrics` on it, and the Postgres scanner lease
//! (one leader among replicas, failover without a drop).

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::prometheus::pipe_through;
use common::scan::{insert, Row};
use common::{require_tool, Backend, TestApp};

use syncwatch::clock::SystemClock;
use syncwatch::metrics::Metrics;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::Lease;
use syncwatch::test_support::MetricsExt;

/// Pipes an exposition into `promtool check metrics`: (exit success, what it printed).
fn promtool_check_metrics(promtool: &std::path::Path, text: &str) -> (bool, String) {
    pipe_through(Command::new(promtool).args(["check", "metrics"]), text)
}

async fn exposition_passes_promtool_check_metrics(app: &TestApp) {
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    for status in ["success", "error", "in_progress", "scheduled"] {
        app.run_in_status("hubspot", status).await;
    }
    app.get("/v1/sync-logs").await;
    // A connection on a one-minute schedule that stopped ten minutes ago: overdue.
    let connection = uuid::Uuid::new_v4();
    let stopped = chrono::Utc::now() - chrono::Duration::minutes(10);
    for i in 0..6 {
        let created = stopped - chrono::Duration::minutes(i);
        let mut row = Row::new("hubspot", "success", created);
        row.connection = connection;
        row.started = Some(created + chrono::Duration::seconds(1));
        row.completed = Some(created + chrono::Duration::seconds(30));
        insert(&app.db, &row).await;
    }
    let metrics = Metrics::new();
    let mut scanner = Scanner::new(
        app.db.store.clone(),
        Lease::Always,
        ScanConfig::default(),
        Arc::new(SystemClock),
        metrics.clone(),
    );
    // Until caught up, and each connection's latest runs read (the learned signals).
    loop {
        let report = scanner.scan_once().await.unwrap();
        if !report.building && !report.learning {
            break;
        }
    }
    metrics
        .http_requests
        .with_label_values(&["/v1/sync-logs", "GET", "200"])
        .inc();
    metrics
        .http_duration
        .with_label_values(&["/v1/sync-logs", "GET", "200"])
        .observe(0.01);
    let text = metrics.render();
    for family in syncwatch::test_support::DOMAIN_FAMILIES {
        assert!(
            text.contains(&format!("# TYPE {} ", family.name)),
            "{} missing",
            family.name
        );
    }
    let (ok, said) = promtool_check_metrics(&promtool, &text);
    assert!(ok && said.trim().is_empty(), "promtool: {said}");
}

on_both_stores!(exposition_passes_promtool_check_metrics);

/// The check above can fail: promtool rejects a counter without `_total`.
#[test]
fn promtool_rejects_a_badly_named_counter() {
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    let (ok, said) = promtool_check_metrics(
        &promtool,
        "# HELP runs Runs.\n# TYPE runs counter\nruns 1\n",
    );
    assert!(!ok || !said.trim().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_postgres_replica_leads_and_another_takes_over_without_a_drop() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let replica = |metrics: Metrics| {
        Scanner::new(
            app.db.store.clone(),
            Lease::for_store(&app.db.url, "", Duration::from_secs(30)),
            ScanConfig::default(),
            Arc::new(SystemClock),
            metrics,
        )
    };
    let (m1, m2) = (Metrics::new(), Metrics::new());
    let mut first = replica(m1.clone());
    let mut second = replica(m2.clone());
    for status in ["success", "error", "success"] {
        app.run_in_status("hubspot", status).await;
    }
    assert!(first.scan_once().await.unwrap().leader);
    assert!(!second.scan_once().await.unwrap().leader);
    assert!(
        first.scan_once().await.unwrap().leader,
        "the leader keeps its lease"
    );
    assert_eq!(m1.scanner_leader.get(), 1);
    assert_eq!(m2.scanner_leader.get(), 0);
    assert!(
        m2.render_domain().is_empty(),
        "a follower exports no domain metrics"
    );
    assert!(
        m2.render().contains("syncwatch_up 1"),
        "but it reports on itself"
    );
    let counted = m1.render_domain();
    assert!(counted.contains(
        "connector_sync_runs_total{connector=\"hubspot\",trigger=\"manual\",status=\"success\"} 2"
    ));

    // The leader dies without releasing anything: its session ends with it.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !second.scan_once().await.unwrap().leader {
        assert!(Instant::now() < deadline, "no replica took over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(m2.scanner_leader.get(), 1);
    assert_eq!(
        m2.render_domain(),
        counted,
        "counters continue without a drop"
    );

    // A third replica does not steal the lease.
    let mut third = replica(Metrics::new());
    assert!(!third.scan_once().await.unwrap().leader);
    app.run_in_status("hubspot", "error").await;
    second.scan_once().await.unwrap();
    assert!(m2.render_domain().contains(
        "connector_sync_runs_total{connector=\"hubspot\",trigger=\"manual\",status=\"error\"} 2"
    ));
}

/// The lease is the table's and mapping's: scanners of two tables in one database both
/// lead, while two of one table still share one lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tables_in_one_postgres_database_each_have_a_leader() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let other = "table=app.other_sync_log connection=workspace_connector_id \
                 connection_id=column:workspace_connector_id connector=column:connector_slug key=uuid";
    let replica = |mapping: &str| {
        Scanner::new(
            app.db.store.clone(),
            Lease::for_store(&app.db.url, mapping, Duration::from_secs(30)),
            ScanConfig::default(),
            Arc::new(SystemClock),
            Metrics::new(),
        )
    };
    let mut own = replica("");
    let mut observer = replica(other);
    let mut own_again = replica("");
    let mut observer_again = replica(other);
    assert!(own.scan_once().await.unwrap().leader);
    assert!(
        observer.scan_once().await.unwrap().leader,
        "another table, another lease"
    );
    assert!(!own_again.scan_once().await.unwrap().leader);
    assert!(!observer_again.scan_once().await.unwrap().leader);
}

/// Two `serve` processes on one SQLite file: one scans (and writes checkpoints), the
/// other serves the API only, and takes over when the first dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_sqlite_file_have_one_leader() {
    let db = common::TestDb::new(Backend::Sqlite).await.unwrap();
    let url = db.url.expose().to_owned();
    let flags = ["--scan-interval", "200ms"];
    let leader = |text: &str| common::sample(text, "syncwatch_scanner_leader");
    let first = common::Server::start(&url, &flags).await;
    common::wait_until(
        "the first process leads",
        Duration::from_secs(30),
        async || leader(&first.scrape().await) == Some(1.0),
    )
    .await;
    let second = common::Server::start(&url, &flags).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        leader(&second.scrape().await),
        Some(0.0),
        "one leader per file"
    );
    assert_eq!(leader(&first.scrape().await), Some(1.0));
    first.kill_9();
    common::wait_until(
        "the second process takes over",
        Duration::from_secs(30),
        async || leader(&second.scrape().await) == Some(1.0),
    )
    .await;
}

/// `/metrics` of the real binary, as Prometheus asks for it (`Accept-Encoding: gzip`) and
/// as a plain client does: the gzip body is smaller, says so in its headers, reads back
/// (both gzip members) as the same exposition, and passes `promtool check metrics`.
#[tokio::test]
async fn the_scrape_is_gzipped_when_the_scraper_accepts_it() {
    use std::io::Read;
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gzip.db").display());
    let server = common::Server::start(&url, &["--scan-interval", "200ms"]).await;
    let client = reqwest::Client::new();
    for slug in ["hubspot", "stripe"] {
        let create = serde_json::json!({"workspace_connector_id": uuid::Uuid::new_v4(),
                                         "connector_slug": slug, "status": "in_progress"});
        common::run_through_api(&client, &server.api, create, "fail", "HTTP 429").await;
    }
    common::wait_until("both runs exported", Duration::from_secs(20), async || {
        common::family_sum(&server.scrape().await, "connector_sync_failures_total") == 2.0
    })
    .await;
    let scrape = |gzip: bool| {
        let client = client.clone();
        let url = format!("{}/metrics", server.metrics);
        async move {
            let mut request = client.get(url);
            if gzip {
                request = request.header("Accept-Encoding", "gzip");
            }
            let response = request.send().await.unwrap();
            let headers = response.headers().clone();
            (headers, response.bytes().await.unwrap().to_vec())
        }
    };
    let (plain_headers, plain) = scrape(false).await;
    let (gzip_headers, gzipped) = scrape(true).await;
    assert!(plain_headers.get("content-encoding").is_none());
    assert_eq!(gzip_headers["content-encoding"], "gzip");
    assert_eq!(gzip_headers["vary"], "Accept, Accept-Encoding");
    assert_eq!(
        gzip_headers["content-length"].to_str().unwrap(),
        gzipped.len().to_string()
    );
    assert!(
        gzipped.len() * 4 < plain.len(),
        "gzip {} bytes, plain {}",
        gzipped.len(),
        plain.len()
    );
    let mut unzipped = String::new();
    flate2::read::MultiGzDecoder::new(&gzipped[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    // The domain section is the same stored text; self metrics may move between scrapes.
    let domain = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("connector_sync_"))
            .map(str::to_owned)
            .collect()
    };
    let plain = String::from_utf8(plain).unwrap();
    assert_eq!(domain(&unzipped), domain(&plain));
    assert!(
        unzipped.contains("syncwatch_exposition_series "),
        "the self metrics are there too"
    );
    for text in [&plain, &unzipped] {
        let (ok, said) = promtool_check_metrics(&promtool, text);
        assert!(ok && said.trim().is_empty(), "promtool: {said}");
    }
}
