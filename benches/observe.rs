//! An observed table against the owned one, side by side in one run, on the scan bench's
//! seeded Postgres database, and what a generic SQL exporter pays per scrape instead.
//!
//!     cargo bench --bench observe -- [--rows 1000000] [--steady-scans 20] [--recounts 5]
//!
//! The seeded table is read twice: through the owned mapping (its `connector_slug`
//! column), and observed (`--observe-only --connector-from lookup:…`): the connector from a
//! `bench_workspace_connector (id, slug)` table made once from the seeded rows, no state
//! store. For each: a first start (a new scanner building from the table until caught up:
//! what an observed table without a state store pays at every restart) and, once the
//! scans that read each connection's latest runs for the learned signals are done, the
//! steady scan (each after 5 new runs finished), alternating between the two so both see
//! the same machine. Then the whole history's aggregate through the lookup mapping, as an exporter
//! that recounts at every scrape runs it. Printed last, one table with medians.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use syncwatch::clock::SystemClock;
use syncwatch::metrics::Metrics;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::{self, Ident, Lease, PoolOptions, Store, TableMap};

use support::{arg, median_ms, BenchDb};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: u64 = arg("--rows").map_or(Ok(1_000_000), |s| s.parse())?;
    let steady_scans: usize = arg("--steady-scans").map_or(Ok(20), |s| s.parse())?;
    let recounts: usize = arg("--recounts").map_or(Ok(5), |s| s.parse())?;
    let db = BenchDb::seeded(rows, 1000).await?;
    let mut conn = PgConnection::connect(&db.url).await?;
    sqlx::raw_sql(
        "create table if not exists bench_workspace_connector as \
           select distinct on (workspace_connector_id) workspace_connector_id as id, \
                  connector_slug as slug \
           from workspace_connector_sync_log order by workspace_connector_id; \
         create unique index if not exists bench_workspace_connector_pkey \
           on bench_workspace_connector (id); \
         analyze bench_workspace_connector;",
    )
    .execute(&mut conn)
    .await?;
    conn.close().await?;

    let url = db.url.parse().map_err(anyhow::Error::msg)?;
    let owned: Store = db.store().await?;
    let map = TableMap {
        connector: "lookup:bench_workspace_connector.slug"
            .parse()
            .map_err(anyhow::Error::msg)?,
        connection: Ident::column("workspace_connector_id").map_err(anyhow::Error::msg)?,
        observed: true,
        ..TableMap::default()
    };
    let options = PoolOptions {
        read_only: true,
        ..PoolOptions::default()
    };
    let observed = Store::observed(store::connect(&url, &options, &map).await?, None);
    let scanner = |store: &Store| {
        Scanner::new(
            store.clone(),
            Lease::Always,
            ScanConfig {
                checkpoint: false,
                ..ScanConfig::default()
            },
            Arc::new(SystemClock),
            Metrics::new(),
        )
    };

    let mut first_start = [Vec::new(), Vec::new()];
    let mut scanners = Vec::new();
    for round in 0..2 {
        for (i, store) in [&owned, &observed].into_iter().enumerate() {
            let mut s = scanner(store);
            let started = Instant::now();
            while s.scan_once().await?.building {}
            first_start[i].push(started.elapsed());
            // The steady state: after the chunks that read each connection's latest runs.
            while s.scan_once().await?.learning {}
            if round == 1 {
                scanners.push(s);
            }
        }
    }
    let mut steady = [Vec::new(), Vec::new()];
    for _ in 0..steady_scans {
        db.finish_live_runs(5).await?;
        for (i, s) in scanners.iter_mut().enumerate() {
            let started = Instant::now();
            let report = s.scan_once().await?;
            steady[i].push(started.elapsed());
            assert!(!report.building, "steady scans do not build");
        }
    }
    db.remove_live_runs().await?;

    let config = ScanConfig::default();
    let mut recount = Vec::new();
    for _ in 0..recounts {
        let now = observed.scan().db_now().await?;
        let started = Instant::now();
        observed
            .scan()
            .terminal_aggregate(
                None,
                now,
                &config.duration_buckets,
                &config.dispatch_delay_buckets,
            )
            .await?;
        recount.push(started.elapsed());
    }

    let s = |d: &[Duration]| median_ms(d) / 1000.0;
    println!("\n{rows} terminal runs, 1000 active, 20000 connections (medians)\n");
    println!("| table | first start (s) | steady scan (ms) |");
    println!("|---|---:|---:|");
    println!(
        "| owned (`connector_slug` column) | {:.2} | {:.2} |",
        s(&first_start[0]),
        median_ms(&steady[0])
    );
    println!(
        "| observed (`lookup:`, no state store) | {:.2} | {:.2} |",
        s(&first_start[1]),
        median_ms(&steady[1])
    );
    println!(
        "\nobserved / owned: first start {:.2}x, steady scan {:.2}x",
        median_ms(&first_start[1]) / median_ms(&first_start[0]),
        median_ms(&steady[1]) / median_ms(&steady[0])
    );
    println!(
        "recounting the whole history through the lookup (what a generic exporter does per \
         scrape): {:.0} ms, {:.0}x the observed steady scan",
        median_ms(&recount),
        median_ms(&recount) / median_ms(&steady[1])
    );
    Ok(())
}
