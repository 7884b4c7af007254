//! `syncwatch-tools load` at a small size against the real `syncwatch serve` on both
//! stores: zero 5xx, every protocol promise kept under concurrency, the store holding
//! exactly the acknowledged writes, and `/metrics` equal to SQL.
//!
//! Shares the service's test harness; it starts `syncwatch` from the workspace's target
//! directory, so run it with `cargo test --workspace` (which builds that binary).

#[path = "../../tests/suite/common/mod.rs"]
#[allow(dead_code, unused_macros)]
mod common;

use std::process::Command;
use std::time::Duration;

use common::{Backend, Server, TestDb};
use syncwatch_tools::load::{self, LoadConfig, Target};

async fn load_through_the_binary(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let url = db.url.expose().to_owned();
    let server = Server::start(&url, &["--scan-interval", "1s"]).await;
    let output = Command::new(env!("CARGO_BIN_EXE_syncwatch-tools"))
        .args(["load", "--database-url", &url, "--api-url", &server.api])
        .args(["--clients", "6", "--duration", "3s", "--verify"])
        .args(["--metrics-url", &format!("{}/metrics", server.metrics)])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run syncwatch-tools load");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("figure ({backend:?}):\n{stdout}");
    assert!(
        output.status.success(),
        "syncwatch-tools load failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "5xx 0; transport errors 0; protocol violations 0",
        "0 not terminal",
        "verify: connector_sync_runs_total equals the store's counts",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // It really ran: duplicate creates (200) and losing duplicate finishers (409) happened.
    assert!(stdout.contains("200×") && stdout.contains("201×") && stdout.contains("409×"));
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_through_the_binary_loses_nothing_postgres() {
    load_through_the_binary(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_through_the_binary_loses_nothing_sqlite() {
    load_through_the_binary(Backend::Sqlite).await;
}

/// The load's own keep-alive connections and the server's idle limit: connections the
/// server closed while the load paused are never used again (no transport error after the
/// pause), and the load goes on over new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_reopens_connections_the_server_closed() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let server = Server::start(db.url.expose(), &["--header-read-timeout", "1s"]).await;
    let target = Target::api(&server.api, None).unwrap();
    assert_eq!(
        target.name(),
        "api",
        "a plain http:// API gets the load's own connections"
    );
    // A fresh config (and so fresh Cloud Tasks ids) for each run.
    let config = || LoadConfig {
        clients: 4,
        duration: Duration::from_millis(800),
        ..LoadConfig::default()
    };
    let before = load::run(&target, &config(), std::future::pending()).await;
    // Longer than the server keeps an idle connection, shorter than the load's own limit.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = load::run(&target, &config(), std::future::pending()).await;
    for (when, report) in [("before the pause", &before), ("after it", &after)] {
        eprintln!("figure: {when}: {}", report.summary());
        assert!(
            report.requests() >= 20
                && report.transport_errors == 0
                && report.server_errors() == 0
                && report.violation_count == 0,
            "{when}: {}",
            report.summary()
        );
    }
}
