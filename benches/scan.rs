//! Scan cost against the length of the history, on Postgres.
//!
//!     cargo bench --bench scan -- [--sizes 1000000,10000000] [--active 1000]
//!                                 [--steady-scans 20] [--plans] [--seed-only]
//!                                 [--chunk-rows N] [--chunk-connections N]
//!
//! For each size a database `syncwatch_bench_<rows>_<active>_<connections>` on the server at
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) is seeded once
//! with that many terminal runs and `--active` active runs (`benches/sql/seed*.sql`: 500
//! connectors, 20000 connections, deterministic) and kept, so a rerun measures without
//! reseeding. Then, per size, with the default settings (chunks of 100000 runs and 5000
//! connections):
//! - **first start**: a new scanner without a checkpoint scanning until its build has
//!   caught up (wall time and scans), twice; the process RSS after it;
//! - **from checkpoint**: a new scanner starting from a checkpoint an hour old, twice;
//! - **chunk statements**: the build's statements one by one (where each chunk of runs
//!   ends, its aggregate, each chunk of connections): the longest single statement, and
//!   the sum of the chunks of runs (a full pass: what an opt-in full repair sweep costs);
//!   then the database time of a recent repair sweep over the last 48 h (one per
//!   `--repair-interval`, an hour by default);
//! - **one aggregate**: the whole history in one statement, once, for contrast (what the
//!   scanner no longer does);
//! - **steady**: `--steady-scans` scans, each after 5 new runs finished, once the full
//!   repair sweep a start from a checkpoint owes has finished; after each, untimed, the
//!   published snapshot's encoding (on its own thread) is let finish, as it does between
//!   two scans an interval apart. They alternate, side by side, with as many scans that
//!   build their snapshot in full instead of updating the previous one (as a scan does
//!   after a repair sweep, and every scan did before).
//!
//! Printed last, one table with medians. `--plans` prints `EXPLAIN (ANALYZE, BUFFERS)` of
//! each scanner query at the largest size; `--seed-only` seeds the databases and exits.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use syncwatch::clock::SystemClock;
use syncwatch::metrics::Metrics;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::Lease;
use syncwatch::store::{Position, Store};
use syncwatch::test_support::postgres_scanner_queries;
use syncwatch::test_support::{MetricsExt, ScannerExt};

use support::{arg, median_ms, ms, BenchDb, CONNECTIONS, CONNECTORS};

struct Row {
    rows: u64,
    first_start: Vec<Duration>,
    first_start_scans: usize,
    from_checkpoint: Vec<Duration>,
    longest_statement: Duration,
    sweep: Duration,
    one_aggregate: Duration,
    steady: Vec<Duration>,
    /// Steady scans that built their snapshot in full, alternating with `steady`.
    steady_full: Vec<Duration>,
    rss_mb: f64,
    table_mb: f64,
    full_pass: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<u64> = arg("--sizes")
        .unwrap_or_else(|| "1000000,10000000".into())
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
    println!(
        "scan cost against history (Postgres, {active} active runs, {CONNECTORS} connectors, \
         {CONNECTIONS} connections, default chunks)"
    );
    println!(
        "{:>10} {:>8} | {:>12} {:>6} {:>11} | {:>10} {:>10} {:>10} | {:>12} | {:>9} {:>8} {:>8} | {:>9} {:>6} | {:>7}",
        "rows",
        "table MB",
        "first start",
        "scans",
        "checkpoint",
        "longest st.",
        "sweep/h",
        "full pass",
        "1 aggregate",
        "steady p50",
        "p90",
        "max",
        "full p50",
        "ratio",
        "RSS MB"
    );
    for r in &results {
        let mut steady = r.steady.clone();
        steady.sort();
        let p90 = steady[(steady.len() * 9 / 10).min(steady.len() - 1)];
        println!(
            "{:>10} {:>8.0} | {:>11.1}s {:>6} {:>9.0}ms | {:>8.0}ms {:>8.0}ms {:>9.1}s | {:>10.0}ms | {:>7.2}ms {:>6.2}ms {:>6.2}ms | {:>7.2}ms {:>5.2}x | {:>7.1}",
            r.rows,
            r.table_mb,
            median_ms(&r.first_start) / 1000.0,
            r.first_start_scans,
            median_ms(&r.from_checkpoint),
            ms(r.longest_statement),
            ms(r.sweep),
            r.full_pass.as_secs_f64(),
            ms(r.one_aggregate),
            median_ms(&r.steady),
            ms(p90),
            ms(*steady.last().unwrap()),
            median_ms(&r.steady_full),
            median_ms(&r.steady_full) / median_ms(&r.steady),
            r.rss_mb,
        );
    }
    println!(
        "(medians; first start = a new scanner without a checkpoint scanning until caught up, \
         2 runs; checkpoint = the same from a checkpoint 1 h old, 2 runs; longest st. = the \
         longest single statement of the build; sweep/h = the database time of one recent repair \
         sweep over the last 48 h (run once per --repair-interval); full pass = all the \
         build's chunks of runs (a full repair sweep, off by default); 1 aggregate = the whole history in one \
         statement, what the scanner no longer runs; steady = {steady_scans} scans, each after \
         5 runs finished, updating the previous snapshot; full p50 = {steady_scans} scans \
         alternating with those, each building its snapshot in full; ratio = full p50 / steady \
         p50; RSS of the bench process after a first start)"
    );
    Ok(())
}

/// The statements of one pass of chunks of runs, as the build and the sweeps run them.
struct ChunkPass {
    total: Duration,
    longest_boundary: Duration,
    longest_aggregate: Duration,
}

/// Chunk by chunk from `from` (the start when `None`) to `settled`, timing each statement.
async fn chunk_pass(
    store: &Store,
    config: &ScanConfig,
    from: Option<chrono::DateTime<chrono::Utc>>,
    settled: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<ChunkPass> {
    let mut pass = ChunkPass {
        total: Duration::ZERO,
        longest_boundary: Duration::ZERO,
        longest_aggregate: Duration::ZERO,
    };
    let mut done: Option<Position> = from.map(Position::from);
    loop {
        let t = Instant::now();
        let end = store
            .scan()
            .terminal_boundary(done.as_ref(), settled, config.chunk_rows)
            .await?;
        let boundary = t.elapsed();
        let upto = end.clone().unwrap_or_else(|| settled.into());
        let t = Instant::now();
        store
            .scan()
            .terminal_aggregate(
                done.as_ref(),
                &upto,
                &config.duration_buckets,
                &config.dispatch_delay_buckets,
            )
            .await?;
        let aggregate = t.elapsed();
        pass.total += boundary + aggregate;
        pass.longest_boundary = pass.longest_boundary.max(boundary);
        pass.longest_aggregate = pass.longest_aggregate.max(aggregate);
        done = Some(upto);
        if end.is_none() {
            return Ok(pass);
        }
    }
}

/// Resident set size of this process, in MiB.
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Scan until the build has caught up; the wall time and the number of scans.
async fn until_caught_up(scanner: &mut Scanner) -> anyhow::Result<(Duration, usize, bool)> {
    let started = Instant::now();
    let mut scans = 0;
    let mut from_checkpoint = false;
    loop {
        let report = scanner.scan_once().await?;
        scans += 1;
        from_checkpoint |= report.from_checkpoint;
        if !report.building {
            return Ok((started.elapsed(), scans, from_checkpoint));
        }
    }
}

async fn measure(db: &BenchDb, rows: u64, steady_scans: usize) -> anyhow::Result<Row> {
    let store: Store = db.store().await?;
    let config = ScanConfig {
        chunk_rows: arg("--chunk-rows")
            .map_or(Ok(ScanConfig::default().chunk_rows), |s| s.parse())?,
        chunk_connections: arg("--chunk-connections")
            .map_or(Ok(ScanConfig::default().chunk_connections), |s| s.parse())?,
        ..ScanConfig::default()
    };
    let scanner = |checkpoint: bool| {
        Scanner::new(
            store.clone(),
            Lease::Always,
            ScanConfig {
                checkpoint,
                ..config.clone()
            },
            Arc::new(SystemClock),
            Metrics::new(),
        )
    };
    let mut first_start = Vec::new();
    let mut first_start_scans = 0;
    let mut rss = f64::NAN;
    for _ in 0..2 {
        let mut s = scanner(false);
        let (took, scans, _) = until_caught_up(&mut s).await?;
        first_start.push(took);
        first_start_scans = scans;
        rss = rss_mb();
    }
    // Save a checkpoint, then move it back an hour: the start counts an hour of
    // completions after it (the counts are checked by tests/bounded_scan.rs, not here).
    let mut from_checkpoint = Vec::new();
    for _ in 0..2 {
        let mut s = scanner(true);
        until_caught_up(&mut s).await?;
        s.scan_once().await?;
        db.age_checkpoint(3600).await?;
        let mut s = scanner(true);
        let (took, _, used) = until_caught_up(&mut s).await?;
        assert!(used, "the start did not use the checkpoint");
        from_checkpoint.push(took);
    }

    // The build's statements one by one.
    let settled = store.scan().db_now().await? - chrono::Duration::minutes(5);
    // The longest of each kind: where a chunk ends, its aggregate, a chunk of connections.
    let mut longest = [Duration::ZERO; 3];
    let full = chunk_pass(&store, &config, None, settled).await?;
    longest[0] = full.longest_boundary;
    longest[1] = full.longest_aggregate;
    // A repair sweep reads the chunks after its anchor, at most two --repair-horizons
    // (2 × 24 h) back, once per --repair-interval (1 h): its database time per hour.
    let recent = chunk_pass(
        &store,
        &config,
        Some(settled - chrono::Duration::hours(48)),
        settled,
    )
    .await?;
    let sweep_time = recent.total;
    let full_pass = full.total;
    let mut after = None;
    loop {
        let t = Instant::now();
        let chunk = store
            .scan()
            .connection_states(after, config.chunk_connections)
            .await?;
        longest[2] = longest[2].max(t.elapsed());
        match chunk.last {
            Some(last) if chunk.walked >= config.chunk_connections => after = Some(last),
            _ => break,
        }
    }
    let t = Instant::now();
    store
        .scan()
        .terminal_aggregate(
            None,
            &settled.into(),
            &config.duration_buckets,
            &config.dispatch_delay_buckets,
        )
        .await?;
    let one_aggregate = t.elapsed();

    // A start from the checkpoint owes one full repair sweep, one chunk per scan; the
    // steady state is measured once it has finished.
    let mut steady_scanner = scanner(true);
    until_caught_up(&mut steady_scanner).await?;
    let mut sweep_scans = 0;
    while !steady_scanner.scan_once().await?.repair_merged {
        sweep_scans += 1;
    }
    eprintln!("{rows} rows: the full sweep after a start took {sweep_scans} more scans");
    // Side by side, alternating: scans that update the previous snapshot with the runs
    // they read (what a steady scan does), and scans that build it in full (what one does
    // after a repair sweep, and every scan did before).
    let (mut steady, mut steady_full) = (Vec::new(), Vec::new());
    for i in 0..steady_scans * 2 {
        db.finish_live_runs(5).await?;
        let full = i % 2 == 1;
        if full {
            steady_scanner.rebuild_next_snapshot();
        }
        let started = Instant::now();
        let report = steady_scanner.scan_once().await?;
        if full { &mut steady_full } else { &mut steady }.push(started.elapsed());
        assert!(!report.building, "steady scans do not build");
        // Scans are an interval apart (15 s by default) and the snapshot's encoding takes
        // a fraction of that on its own thread: let it finish, untimed, as it would
        // between two scans, rather than compete with the next scan for this machine's
        // two cores.
        steady_scanner.metrics().domain_exposition();
    }
    db.remove_live_runs().await?;
    let table_mb = db.table_mb().await?;
    eprintln!(
        "{rows} rows: first start {:.1} s, longest statements: chunk end {:.0} ms, chunk \
         aggregate {:.0} ms, connections {:.0} ms; steady {:.2} ms (built in full {:.2} ms)",
        median_ms(&first_start) / 1000.0,
        ms(longest[0]),
        ms(longest[1]),
        ms(longest[2]),
        median_ms(&steady),
        median_ms(&steady_full)
    );
    Ok(Row {
        rows,
        first_start,
        first_start_scans,
        from_checkpoint,
        longest_statement: longest.into_iter().max().unwrap_or_default(),
        sweep: sweep_time,
        full_pass,
        one_aggregate,
        steady,
        steady_full,
        rss_mb: rss,
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
