//! Scan cost against the length of the history, on Postgres.
//!
//!     cargo bench --bench scan -- [--sizes 10000,100000,1000000,10000000] [--active 1000]
//!                                 [--steady-scans 20] [--plans] [--seed-only]
//!
//! For each size a database `syncwatch_bench_<rows>_<active>` on the server at `TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) is seeded once with that many
//! terminal runs and `--active` active runs (`benches/sql/seed*.sql`: 500 connectors, 5000
//! connections, deterministic) and kept, so a rerun measures without reseeding. Then, per
//! size: the full baseline (a first scan by a new scanner without a checkpoint, 3 times),
//! a start from a checkpoint an hour old (3 times), each scanner query alone, the
//! steady-state scan (`--steady-scans` scans, each after 5 new runs finished),
//! and printed last, one table with medians and the ratio of every size to the smallest.
//! `--plans` prints `EXPLAIN (ANALYZE, BUFFERS)` of each scanner query at the largest size;
//! `--seed-only` seeds the databases and exits (seed while the machine is busy, measure
//! when it is quiet).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use syncwatch::clock::SystemClock;
use syncwatch::metrics::Metrics;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::Lease;
use syncwatch::store::{postgres_scanner_queries, Store, StuckCutoffs};

use support::{arg, median_ms, ms, BenchDb};

struct Row {
    rows: u64,
    baseline: Vec<Duration>,
    from_checkpoint: Vec<Duration>,
    aggregate: Vec<Duration>,
    connections: Vec<Duration>,
    window: Vec<Duration>,
    active: Vec<Duration>,
    steady: Vec<Duration>,
    table_mb: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<u64> = arg("--sizes")
        .unwrap_or_else(|| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let active: u64 = arg("--active").map_or(Ok(1000), |s| s.parse())?;
    let steady_scans: usize = arg("--steady-scans").map_or(Ok(20), |s| s.parse())?;
    let plans = std::env::args().any(|a| a == "--plans");
    if std::env::args().any(|a| a == "--seed-only") {
        for &rows in &sizes {
            BenchDb::seeded(rows, active).await?;
        }
        return Ok(());
    }

    let mut results = Vec::new();
    for &rows in &sizes {
        let db = BenchDb::seeded(rows, active).await?;
        results.push(measure(&db, rows, steady_scans).await?);
    }
    if plans {
        if let Some(&rows) = sizes.iter().max() {
            let db = BenchDb::seeded(rows, active).await?;
            print_plans(&db).await?;
        }
    }

    println!();
    println!("scan cost against history (Postgres, {active} active runs, 500 connectors, 5000 connections)");
    println!(
        "{:>10} {:>9} | {:>11} {:>11} | {:>11} {:>11} {:>9} {:>9} | {:>10} {:>8} {:>8} {:>8}",
        "rows",
        "table MB",
        "baseline",
        "checkpoint",
        "aggregate",
        "connections",
        "window",
        "active",
        "steady p50",
        "p90",
        "max",
        "vs first"
    );
    let first = results.first().map(|r| median_ms(&r.steady)).unwrap_or(1.0);
    for r in &results {
        let mut steady = r.steady.clone();
        steady.sort();
        let p90 = steady[(steady.len() * 9 / 10).min(steady.len() - 1)];
        println!(
            "{:>10} {:>9.0} | {:>9.1}ms {:>9.1}ms | {:>9.1}ms {:>9.1}ms {:>7.1}ms {:>7.1}ms | {:>8.2}ms {:>6.2}ms {:>6.2}ms {:>7.2}×",
            r.rows,
            r.table_mb,
            median_ms(&r.baseline),
            median_ms(&r.from_checkpoint),
            median_ms(&r.aggregate),
            median_ms(&r.connections),
            median_ms(&r.window),
            median_ms(&r.active),
            median_ms(&r.steady),
            ms(p90),
            ms(*steady.last().unwrap()),
            median_ms(&r.steady) / first,
        );
    }
    println!("(medians; baseline = a new scanner's first scan without a checkpoint, 3 runs; checkpoint = a new scanner's first scan from a checkpoint 1 h old, 3 runs; each query alone, 3 runs; steady = {steady_scans} scans, each after 5 runs finished)");
    Ok(())
}

async fn measure(db: &BenchDb, rows: u64, steady_scans: usize) -> anyhow::Result<Row> {
    let store: Store = db.store().await?;
    let config = ScanConfig::default();
    let metrics = Metrics::new();
    // Defaults, but no scan timeout: the point is to measure how long a baseline takes.
    let scan_config = ScanConfig {
        timeout: Duration::from_secs(3600),
        ..ScanConfig::default()
    };
    let scanner = |metrics: Metrics| {
        Scanner::new(
            store.clone(),
            Lease::Always,
            scan_config.clone(),
            Arc::new(SystemClock),
            metrics,
        )
    };
    let full_scanner = || {
        Scanner::new(
            store.clone(),
            Lease::Always,
            ScanConfig {
                checkpoint: false,
                ..scan_config.clone()
            },
            Arc::new(SystemClock),
            Metrics::new(),
        )
    };
    // Warm the cache the way a running server's would be (and save a checkpoint).
    scanner(Metrics::new()).scan_once().await?;
    let mut baseline = Vec::new();
    for _ in 0..3 {
        let mut s = full_scanner();
        let started = Instant::now();
        let report = s.scan_once().await?;
        baseline.push(started.elapsed());
        assert!(report.baselined && !report.from_checkpoint);
    }
    // A start from a checkpoint one re-baseline interval (1 h) old: the checkpoint is
    // moved back an hour so the start aggregates an hour of completions (the counts this
    // gives are not checked here; tests/metrics.rs checks them).
    let mut from_checkpoint = Vec::new();
    for _ in 0..3 {
        scanner(Metrics::new()).scan_once().await?;
        db.age_checkpoint(3600).await?;
        let mut s = scanner(Metrics::new());
        let started = Instant::now();
        let report = s.scan_once().await?;
        from_checkpoint.push(started.elapsed());
        assert!(
            report.from_checkpoint,
            "the start did not use the checkpoint"
        );
    }
    let (mut aggregate, mut connections, mut window, mut active) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let now = store.db_now().await?;
        let settled = now - chrono::Duration::minutes(5);
        let t = Instant::now();
        store
            .terminal_aggregate(
                None,
                settled,
                &config.duration_buckets,
                &config.dispatch_delay_buckets,
            )
            .await?;
        aggregate.push(t.elapsed());
        let t = Instant::now();
        store.connection_states(None, usize::MAX).await?;
        connections.push(t.elapsed());
        let t = Instant::now();
        store.terminal_after(settled, None).await?;
        window.push(t.elapsed());
        let cutoffs = StuckCutoffs {
            scheduled_before: now - chrono::Duration::minutes(15),
            idle_before: now - chrono::Duration::minutes(30),
            started_before: now - chrono::Duration::hours(6),
        };
        let t = Instant::now();
        store.active_runs(&cutoffs).await?;
        active.push(t.elapsed());
    }

    let mut steady_scanner = scanner(metrics.clone());
    steady_scanner.scan_once().await?;
    let mut steady = Vec::new();
    for _ in 0..steady_scans {
        db.finish_live_runs(5).await?;
        let started = Instant::now();
        let report = steady_scanner.scan_once().await?;
        steady.push(started.elapsed());
        assert!(!report.baselined, "steady scans must be incremental");
    }
    db.remove_live_runs().await?;
    let table_mb = db.table_mb().await?;
    eprintln!(
        "{rows} rows: baseline {:.1} ms, steady {:.2} ms",
        median_ms(&baseline),
        median_ms(&steady)
    );
    Ok(Row {
        rows,
        baseline,
        from_checkpoint,
        aggregate,
        connections,
        window,
        active,
        steady,
        table_mb,
    })
}

async fn print_plans(db: &BenchDb) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(&db.url).await?;
    let config = ScanConfig::default();
    for (name, sql) in
        postgres_scanner_queries(&config.duration_buckets, &config.dispatch_delay_buckets)
    {
        println!("\n-- {name} ({} rows)", db.rows);
        let plan: Vec<String> =
            sqlx::query_scalar(&format!("explain (analyze, buffers, costs off) {sql}"))
                .fetch_all(&mut conn)
                .await?;
        for line in plan {
            println!("{line}");
        }
    }
    conn.close().await?;
    Ok(())
}
