//! `syncwatch load` at a small size against the real binary on both stores: zero 5xx,
//! every protocol promise kept under concurrency, the store holding exactly the
//! acknowledged writes, and `/metrics` equal to SQL. And the checker itself: it must
//! notice a lost or rolled-back write.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Backend, Server, TestDb};
use syncwatch::load::{self, LoadConfig, Target};

async fn load_through_the_binary(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let url = db.url.expose().to_owned();
    let server = Server::start(&url, &["--scan-interval", "1s"]).await;
    let output = Command::new(env!("CARGO_BIN_EXE_syncwatch"))
        .args(["load", "--database-url", &url, "--api-url", &server.api])
        .args(["--clients", "6", "--duration", "3s", "--verify"])
        .args(["--metrics-url", &format!("{}/metrics", server.metrics)])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run syncwatch load");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("figure ({backend:?}):\n{stdout}");
    assert!(
        output.status.success(),
        "syncwatch load failed:\n{stdout}\n{}",
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
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_through_the_binary_loses_nothing_postgres() {
    load_through_the_binary(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_through_the_binary_loses_nothing_sqlite() {
    load_through_the_binary(Backend::Sqlite).await;
}

/// The verification is only worth something if it fails: a hard-deleted acknowledged run
/// and a finished run moved to another status are both reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_check_notices_lost_and_altered_writes() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let config = LoadConfig {
        clients: 2,
        duration: Duration::from_millis(500),
        fail_every: 0,
        duplicate_finish_every: 0,
        ..LoadConfig::default()
    };
    let report = load::run(
        &Target::Direct(db.store.clone()),
        &config,
        std::future::pending(),
    )
    .await;
    assert!(report.lifecycles >= 2, "{}", report.summary());
    assert_eq!(report.violation_count, 0, "{:?}", report.violations);
    let clean = load::verify(&db.store, &config, &report, true)
        .await
        .unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);

    let mut ids = report.acked.keys();
    let (lost, altered) = (ids.next().unwrap(), ids.next().unwrap());
    db.execute(&format!(
        "delete from workspace_connector_sync_log where workspace_connector_sync_log_id = '{lost}'"
    ))
    .await;
    db.execute(&format!(
        "update workspace_connector_sync_log set status = 'error', error = 'x' \
         where workspace_connector_sync_log_id = '{altered}'"
    ))
    .await;
    let found = load::verify(&db.store, &config, &report, true)
        .await
        .unwrap();
    let problems = found.problems.join("\n");
    assert!(
        problems.contains("1 acknowledged runs are missing"),
        "{problems}"
    );
    assert!(
        problems.contains("1 runs are behind what was acknowledged"),
        "{problems}"
    );
    assert!(problems.contains("creates were acknowledged"), "{problems}");
    db.cleanup().await;
}
