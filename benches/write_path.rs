//! Write path: full lifecycles through the HTTP API against the same store calls made
//! directly with sqlx (no HTTP), on one fresh PostgreSQL database, in one run.
//!
//!     cargo bench --bench write_path -- [--clients 16] [--seconds 10] [--rounds 5] [--history 100000]
//!
//! Each round runs `syncwatch-tools load`'s clients (the same lifecycles, duplicate creates and
//! racing finishers) for `--seconds` against the release binary's API over the load's own
//! keep-alive connections (`api`), against it through the typed client (`api-typed`, to
//! show what a heavier HTTP client costs when it shares the machine), and directly against
//! the store (the order changes between rounds), on a database given
//! `--history` runs and analyzed before the server starts, once the server has settled;
//! the direct target opens the pool `serve` opens by default. Prints each round and the
//! medians: lifecycles and requests per second, p50 and p99 latency per request, the CPU
//! per request of PostgreSQL, the server and this process, and each API target's
//! throughput as a share of the direct figure.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use syncwatch::store::DatabaseUrl;
use syncwatch::store::{self, PoolOptions};
use syncwatch_tools::load::{self, LoadConfig, LoadReport, Target};

use support::{arg, fresh_db, postgres_ticks, process_ticks, seed_history, serve};

/// CPU time, in clock ticks, of every PostgreSQL process, the server and this process;
/// per request once two readings are subtracted.
struct Cpu {
    database_us: f64,
    server_us: f64,
    load_us: f64,
}

impl Cpu {
    fn now(server_pid: u32) -> Cpu {
        Cpu {
            database_us: postgres_ticks() as f64,
            server_us: process_ticks(server_pid) as f64,
            load_us: process_ticks(std::process::id()) as f64,
        }
    }

    /// Microseconds per request since `before` (a tick is 10 ms).
    fn since(&self, before: &Cpu, requests: u64) -> Cpu {
        let per = |now: f64, then: f64| (now - then) * 10_000.0 / requests.max(1) as f64;
        Cpu {
            database_us: per(self.database_us, before.database_us),
            server_us: per(self.server_us, before.server_us),
            load_us: per(self.load_us, before.load_us),
        }
    }
}

/// Wait until the server uses under 3 % of a core for three seconds in a row (at most
/// five minutes); how long that took.
async fn settle(pid: u32) -> Duration {
    let started = std::time::Instant::now();
    let mut quiet = 0;
    while quiet < 3 && started.elapsed() < Duration::from_secs(300) {
        let before = process_ticks(pid);
        tokio::time::sleep(Duration::from_secs(1)).await;
        quiet = if process_ticks(pid).saturating_sub(before) < 3 {
            quiet + 1
        } else {
            0
        };
    }
    started.elapsed()
}

/// Runs one target's load. The API targets' clients run on one thread of their own
/// (`instrument`, a single-threaded runtime), as a load generator does, so the instrument
/// takes as little as it can of the two cores the server and PostgreSQL share with it; the
/// direct target's clients are the writer being measured and run in this process's
/// runtime (two workers, as the server's).
async fn run_load(
    target: &Target,
    config: &LoadConfig,
    instrument: &Arc<tokio::runtime::Runtime>,
) -> anyhow::Result<LoadReport> {
    if let Target::Direct(_) = target {
        return Ok(load::run(target, config, std::future::pending()).await);
    }
    let (target, config, instrument) = (target.clone(), config.clone(), instrument.clone());
    Ok(tokio::task::spawn_blocking(move || {
        instrument.block_on(load::run(&target, &config, std::future::pending()))
    })
    .await?)
}

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
    let rounds: usize = arg("--rounds").map_or(Ok(5), |s| s.parse())?;
    let history: u64 = arg("--history").map_or(Ok(100_000), |s| s.parse())?;
    let url = fresh_db("syncwatch_bench_write").await?;
    // Both targets' connections prepare their statements against a table with history and
    // statistics, as on any database autovacuum has analyzed: on an empty, never-analyzed
    // table PostgreSQL's generic plan for a lookup by public id may pick the partial
    // created_at index (an equal estimate on an empty table) and keeps it until the next
    // ANALYZE, which on a cluster without autovacuum never comes.
    seed_history(&url, history).await?;
    let (server, api, _metrics, _) = serve(&url, &[]).await?;
    let server_pid = server.0.id();
    // The server's start reads the history (the build, each connection's state and learned
    // window) over its first scans; measured rounds begin once it has settled, so neither
    // target's database figures carry that work.
    let settled = settle(server_pid).await;
    println!("server settled {settled:.1?} after its first scan");
    let parsed: DatabaseUrl = url.parse().map_err(anyhow::Error::msg)?;
    let direct = Target::Direct(
        // The pool `serve` opens with its defaults: 10 connections, a 5 s acquire
        // timeout, a 10 s statement timeout.
        store::connect(
            &parsed,
            &PoolOptions {
                statement_timeout: Some(Duration::from_secs(10)),
                ..PoolOptions::default()
            },
            &store::TableMap::default(),
        )
        .await?,
    );
    // The API twice: over the load's own keep-alive connections (the figure compared with
    // the direct one) and through the typed client, whose own CPU, taken from the two cores
    // the server and the database share, the comparison shows beside it.
    let typed = Target::api_typed(&api, None)?;
    let api = Target::api(&api, None)?;
    let targets = [&api, &typed, &direct];
    let instrument = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    );

    let mut results: Vec<(&'static str, LoadReport, Cpu)> = Vec::new();
    for round in 0..rounds {
        // Each round starts with the next target, and every other round runs backwards, so
        // no target always follows the same one.
        let mut order = targets;
        order.rotate_left(round % targets.len());
        if round % 2 == 1 {
            order.reverse();
        }
        for target in order {
            // A fresh connector prefix (and so fresh Cloud Tasks ids) for every run.
            let config = LoadConfig {
                clients,
                duration: Duration::from_secs(seconds),
                ..LoadConfig::default()
            };
            let before = Cpu::now(server_pid);
            let report = run_load(target, &config, &instrument).await?;
            let cpu = Cpu::now(server_pid).since(&before, report.requests());
            anyhow::ensure!(
                report.server_errors() == 0
                    && report.violation_count == 0
                    && report.transport_errors == 0,
                "round {round} {}: {}",
                report.target,
                report.summary()
            );
            println!(
                "round {round} {:>9}: {:>7.1} lifecycles/s {:>7.0} requests/s  p50 {:>6.2} ms  p99 {:>6.2} ms  \
                 CPU per request: database {:>4.0} µs, server {:>4.0} µs, load process {:>4.0} µs",
                report.target,
                report.lifecycles_per_second(),
                report.requests_per_second(),
                report.latency_ms(0.5),
                report.latency_ms(0.99),
                cpu.database_us,
                cpu.server_us,
                cpu.load_us,
            );
            results.push((report.target, report, cpu));
        }
    }
    // A runtime may not be dropped inside another.
    if let Ok(instrument) = Arc::try_unwrap(instrument) {
        instrument.shutdown_background();
    }
    // The median over one target's rounds of a figure of its report and CPU.
    let of = |target: &str, f: &dyn Fn(&LoadReport, &Cpu) -> f64| {
        median(
            results
                .iter()
                .filter(|(t, _, _)| *t == target)
                .map(|(_, r, c)| f(r, c))
                .collect(),
        )
    };
    let figure = |target: &str, f: fn(&LoadReport) -> f64| of(target, &|r, _| f(r));
    let cpu = |target: &str, f: fn(&Cpu) -> f64| of(target, &|_, c| f(c));
    println!();
    println!(
        "write path, PostgreSQL, {clients} clients, {seconds}s × {rounds} rounds each (medians)"
    );
    println!(
        "{:>8} {:>14} {:>12} {:>9} {:>9}",
        "target", "lifecycles/s", "requests/s", "p50 ms", "p99 ms"
    );
    for target in ["api", "api-typed", "direct"] {
        println!(
            "{:>8} {:>14.1} {:>12.0} {:>9.2} {:>9.2}",
            target,
            figure(target, LoadReport::lifecycles_per_second),
            figure(target, LoadReport::requests_per_second),
            figure(target, |r| r.latency_ms(0.5)),
            figure(target, |r| r.latency_ms(0.99)),
        );
    }
    println!();
    println!("CPU per request (medians, µs; clock ticks of every PostgreSQL process, the server, this process)");
    println!(
        "{:>8} {:>10} {:>8} {:>14}",
        "target", "database", "server", "load process"
    );
    for target in ["api", "api-typed", "direct"] {
        println!(
            "{:>8} {:>10.0} {:>8.0} {:>14.0}",
            target,
            cpu(target, |c| c.database_us),
            cpu(target, |c| c.server_us),
            cpu(target, |c| c.load_us),
        );
    }
    // What the database and the writer spend per request, leaving out the clients' own
    // work: the API's writer is the server, the direct target's is this process (its
    // figure also holds the load's bookkeeping, so this leans against the direct target).
    println!(
        "database + writer CPU per request, direct / API: {:.0}%",
        100.0 * (cpu("direct", |c| c.database_us) + cpu("direct", |c| c.load_us))
            / (cpu("api", |c| c.database_us) + cpu("api", |c| c.server_us)),
    );
    for api in ["api", "api-typed"] {
        println!(
            "{api} / direct: throughput {:.0}%, p99 {:.2}×",
            100.0 * figure(api, LoadReport::requests_per_second)
                / figure("direct", LoadReport::requests_per_second),
            figure(api, |r| r.latency_ms(0.99)) / figure("direct", |r| r.latency_ms(0.99)),
        );
    }
    Ok(())
}
