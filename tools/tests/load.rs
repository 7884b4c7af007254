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

use common::{Backend, Server, TestDb};

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
