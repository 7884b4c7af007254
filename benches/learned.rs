//! The learned schedules and durations at scale, in memory (no database): the resident
//! memory of the learned state for `--connections` connections with full windows (21
//! scheduled runs and 20 successes each), and the time one scan spends turning it into
//! the overdue and overrunning signals with `--active` live runs.
//!
//!     cargo bench --bench learned -- [--connections 100000] [--active 10000] [--scans 15]

#[path = "support/mod.rs"]
mod support;

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use syncwatch::domain::Status;
use syncwatch::store::{LiveRun, TerminalRun};
use syncwatch::test_support::{LearnedRules, LearnedState};
use uuid::Uuid;

use support::{arg, median_ms, rss_kib};

/// This process's resident memory.
fn rss_mib() -> f64 {
    rss_kib(std::process::id()).0 as f64 / 1024.0
}

fn run(connection: Uuid, connector: &str, at: DateTime<Utc>, status: Status) -> TerminalRun {
    TerminalRun {
        id: Uuid::new_v4(),
        key: uuid::Uuid::new_v4().simple().to_string(),
        workspace_connector_id: connection.into(),
        connector_slug: connector.to_owned(),
        trigger_type: Some("cloud_task".into()),
        status,
        duration_seconds: Some(42.0),
        dispatch_delay_seconds: Some(1.0),
        records_synced: None,
        completed_at: at + Duration::seconds(45),
        created_at: at,
        started_at: Some(at + Duration::seconds(3)),
        error: None,
        deleted: false,
    }
}

fn main() -> anyhow::Result<()> {
    let connections: usize = arg("--connections").map_or(Ok(100_000), |s| s.parse())?;
    let active: usize = arg("--active").map_or(Ok(10_000), |s| s.parse())?;
    let scans: usize = arg("--scans").map_or(Ok(15), |s| s.parse())?;
    let now = Utc::now();
    let connectors: Vec<String> = (0..500).map(|c| format!("connector-{c:03}")).collect();
    let ids: Vec<Uuid> = (0..connections as u128)
        .map(|i| Uuid::from_u128(i + 1))
        .collect();

    let before = rss_mib();
    let mut learned = LearnedState::default();
    for (i, id) in ids.iter().enumerate() {
        let connector = &connectors[i % connectors.len()];
        // Hourly, the latest run 30 minutes ago (one in 50 stopped a day ago: overdue).
        let stopped = if i % 50 == 0 { 24 } else { 0 };
        for k in 0..25 {
            let at = now - Duration::minutes(30) - Duration::hours(stopped + k);
            learned.observe(&run(*id, connector, at, Status::Success));
        }
    }
    let after = rss_mib();
    let live: Vec<LiveRun> = (0..active)
        .map(|i| LiveRun {
            id: Uuid::from_u128(i as u128),
            workspace_connector_id: Some(ids[i * 7 % ids.len()].into()),
            connector_slug: connectors[i * 7 % ids.len() % connectors.len()].clone(),
            status: Status::InProgress,
            trigger_type: Some("cloud_task".into()),
            created_at: now - Duration::minutes((i % 40) as i64),
            started_at: Some(now - Duration::minutes((i % 40) as i64)),
        })
        .collect();
    let rules = LearnedRules {
        overdue_factor: 3.0,
        forget_after: Duration::days(2),
        overrun_factor: 3.0,
        overrun_min: Duration::minutes(5),
    };
    let mut took = Vec::new();
    let mut signals = Default::default();
    for _ in 0..scans {
        let started = Instant::now();
        learned.observe_active(&live);
        signals = learned.signals(now, &live, &rules);
        took.push(started.elapsed());
    }
    let overdue = signals.overdue.len();
    let overrunning: u64 = signals.overrunning.iter().map(|(_, n)| n).sum();
    println!("\n{connections} connections with full windows, {active} live runs (medians)\n");
    println!(
        "| learned state RSS | per connection | signals per scan (p50) | overdue | overrunning |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {:.1} MiB | {:.0} bytes | {:.2} ms | {overdue} | {overrunning} |",
        after - before,
        (after - before) * 1_048_576.0 / connections as f64,
        median_ms(&took),
    );
    println!(
        "\nprocess RSS {after:.1} MiB (before the state: {before:.1} MiB); size_of one connection's \
         windows: {} bytes",
        std::mem::size_of::<syncwatch::test_support::Learned>()
    );
    Ok(())
}
