//! The scanner lease has a deadline (docs/operations.md, "Replicas and the lease"): a
//! leader that stops renewing it — here stopped with `SIGSTOP`, its sessions left open —
//! loses it within `--lease-timeout`, a follower takes over and exports numbers equal to
//! SQL, and the old leader, resumed, follows and exports no domain series.

use crate::common;

use std::time::{Duration, Instant};

use common::{family_sum, run_through_api, sample, Backend, Server, TestDb};
use serde_json::json;

fn signal(pid: u32, which: &str) {
    let sent = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill {which} {pid}");
}

async fn leads(server: &Server) -> bool {
    sample(&server.scrape().await, "syncwatch_scanner_leader") == Some(1.0)
}

#[tokio::test]
async fn a_stopped_leader_loses_the_lease_within_its_deadline() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let flags = ["--scan-interval", "200ms", "--lease-timeout", "2s"];
    let first = Server::start(db.url.expose(), &flags).await;
    common::wait_until(
        "the first replica to lead",
        Duration::from_secs(30),
        async || leads(&first).await,
    )
    .await;
    let second = Server::start(db.url.expose(), &flags).await;
    let client = reqwest::Client::new();
    for i in 0..12 {
        let outcome = if i % 3 == 0 { "fail" } else { "succeed" };
        let create = json!({
            "workspace_connector_id": uuid::Uuid::new_v4(),
            "connector_slug": if i % 2 == 0 { "hubspot" } else { "stripe" },
            "trigger_type": "manual",
        });
        run_through_api(&client, &first.api, create, outcome, "boom").await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!leads(&second).await, "one leader at a time");

    // The leader stops: its process keeps every socket open, so only a deadline frees the
    // lock.
    signal(first.pid(), "-STOP");
    let stopped = Instant::now();
    let took = common::wait_until(
        "the follower to take the lease of the stopped leader",
        Duration::from_secs(20),
        async || leads(&second).await,
    )
    .await;
    eprintln!(
        "takeover {:?} after SIGSTOP (deadline 2s)",
        stopped.elapsed()
    );
    // Deadline 2 s, then the follower's next scan (200 ms): well inside 20 s on any
    // machine; without a deadline this never happens while the process lives.
    assert!(took < Duration::from_secs(20));
    let total = db
        .scalar_i64(
            "select count(*) from workspace_connector_sync_log where completed_at is not null",
        )
        .await;
    common::wait_until(
        "the new leader's runs to equal SQL",
        Duration::from_secs(30),
        async || family_sum(&second.scrape().await, "connector_sync_runs_total") == total as f64,
    )
    .await;

    // Resumed, the old leader finds its lease gone and follows.
    signal(first.pid(), "-CONT");
    common::wait_until(
        "the resumed replica to follow",
        Duration::from_secs(20),
        async || {
            let text = first.scrape().await;
            sample(&text, "syncwatch_scanner_leader") == Some(0.0)
                && family_sum(&text, "connector_sync_runs_total") == 0.0
        },
    )
    .await;
    assert!(leads(&second).await, "the new leader keeps the lease");
}
