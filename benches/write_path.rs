//! Write path: full lifecycles through the HTTP API against the same store calls made
//! directly with sqlx (no HTTP), on one fresh PostgreSQL database, in one run.
//!
//!     cargo bench --bench write_path -- [--clients 16] [--seconds 10] [--rounds 3] [--history 100000]
//!
//! Each round runs `syncwatch-tools load`'s clients (the same lifecycles, duplicate creates and
//! racing finishers) for `--seconds` against the release binary's API, then directly
//! against the store (the order alternates between rounds), on a database given
//! `--history` runs and analyzed before the server starts. Prints each round and the
//! medians: lifecycles and requests per second, p50 and p99 latency per request, and the
//! API's throughput as a share of the direct figure.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use syncwatch::store::DatabaseUrl;
use syncwatch::store::{self, PoolOptions};
use syncwatch_tools::load::{self, LoadConfig, LoadReport, Target};

use support::{arg, fresh_db, seed_history, serve};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients: usize = arg("--clients").map_or(Ok(16), |s| s.parse())?;
    let seconds: u64 = arg("--seconds").map_or(Ok(10), |s| s.parse())?;
    let rounds: usize = arg("--rounds").map_or(Ok(3), |s| s.parse())?;
    let history: u64 = arg("--history").map_or(Ok(100_000), |s| s.parse())?;
    let url = fresh_db("syncwatch_bench_write").await?;
    // Both targets' connections prepare their statements against a table with history and
    // statistics, as on any database autovacuum has analyzed: on an empty, never-analyzed
    // table PostgreSQL's generic plan for a lookup by public id may pick the partial
    // created_at index (an equal estimate on an empty table) and keeps it until the next
    // ANALYZE, which on a cluster without autovacuum never comes.
    seed_history(&url, history).await?;
    let (_server, api, _metrics, _) = serve(&url, &[]).await?;
    let parsed: DatabaseUrl = url.parse().map_err(anyhow::Error::msg)?;
    let direct = Target::Direct(
        store::connect(
            &parsed,
            &PoolOptions::default(),
            &store::TableMap::default(),
        )
        .await?,
    );
    let api = Target::api(&api, None)?;

    let mut results: Vec<(&'static str, LoadReport)> = Vec::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [&api, &direct]
        } else {
            [&direct, &api]
        };
        for target in order {
            // A fresh connector prefix (and so fresh Cloud Tasks ids) for every run.
            let config = LoadConfig {
                clients,
                duration: Duration::from_secs(seconds),
                ..LoadConfig::default()
            };
            let report = load::run(target, &config, std::future::pending()).await;
            anyhow::ensure!(
                report.server_errors() == 0
                    && report.violation_count == 0
                    && report.transport_errors == 0,
                "round {round} {}: {}",
                report.target,
                report.summary()
            );
            println!(
                "round {round} {:>6}: {:>7.1} lifecycles/s {:>7.0} requests/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
                report.target,
                report.lifecycles_per_second(),
                report.requests_per_second(),
                report.latency_ms(0.5),
                report.latency_ms(0.99)
            );
            results.push((report.target, report));
        }
    }
    let figure = |target: &str, f: fn(&LoadReport) -> f64| {
        median(
            results
                .iter()
                .filter(|(t, _)| *t == target)
                .map(|(_, r)| f(r))
                .collect(),
        )
    };
    println!();
    println!(
        "write path, PostgreSQL, {clients} clients, {seconds}s × {rounds} rounds each (medians)"
    );
    println!(
        "{:>8} {:>14} {:>12} {:>9} {:>9}",
        "target", "lifecycles/s", "requests/s", "p50 ms", "p99 ms"
    );
    for target in ["api", "direct"] {
        println!(
            "{:>8} {:>14.1} {:>12.0} {:>9.2} {:>9.2}",
            target,
            figure(target, LoadReport::lifecycles_per_second),
            figure(target, LoadReport::requests_per_second),
            figure(target, |r| r.latency_ms(0.5)),
            figure(target, |r| r.latency_ms(0.99)),
        );
    }
    println!(
        "API / direct: throughput {:.0}%, p99 {:.2}×",
        100.0 * figure("api", LoadReport::requests_per_second)
            / figure("direct", LoadReport::requests_per_second),
        figure("api", |r| r.latency_ms(0.99)) / figure("direct", |r| r.latency_ms(0.99)),
    );
    Ok(())
}
