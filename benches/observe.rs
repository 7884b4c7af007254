//! An observed table against the owned one, side by side in one run, on the scan bench's
//! seeded Postgres database, and what a generic SQL exporter pays per scrape instead.
//!
//!     cargo bench --bench observe -- [--rows 1000000] [--steady-scans 20] [--recounts 5]
//!
//! The seeded table is read twice: through the owned mapping (its `connector_slug`
//! column), and observed (`--observe-only --connector-from lookup:…`): the connector from a
//! `bench_workspace_connector (id, slug)` table made once from the seeded rows, no state
//! store; and the same rows as an ORM keeps them (`bench_int_sync_log`: the connection an
//! `integer` key into `bench_int_connection (id, public_id uuid, slug)`, the same indexes
//! as the owned table), observed by the integer key itself and by the public uuid through
//! `--connection-id-from lookup:`. For each: a first start (a new scanner building from the table until caught up:
//! what an observed table without a state store pays at every restart) and, once the
//! scans that read each connection's latest runs for the learned signals are done, the
//! steady scan (each after 5 new runs finished), alternating between the stores (each
//! round starting with the next one) so all see the same machine, each followed by an untimed scrape that waits for its snapshot's
//! background encoding (so it never runs during the next store's timed scan). Then the whole history's aggregate through the lookup mapping, as an exporter
//! that recounts at every scrape runs it. Printed last, one table with medians.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use syncwatch::clock::SystemClock;
use syncwatch::domain::ConnectionKind;
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
    integer_key_table(&mut conn).await?;
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
    let int_map = TableMap {
        table: Ident::table("bench_int_sync_log").map_err(anyhow::Error::msg)?,
        connector: "lookup:bench_int_connection.slug"
            .parse()
            .map_err(anyhow::Error::msg)?,
        connection_kind: ConnectionKind::Int,
        key_kind: ConnectionKind::Int,
        ..map.clone()
    };
    let int_key = Store::observed(store::connect(&url, &options, &int_map).await?, None);
    let public_map = TableMap {
        connection_id: "lookup:bench_int_connection.public_id"
            .parse()
            .map_err(anyhow::Error::msg)?,
        connection_kind: ConnectionKind::Uuid,
        key_kind: ConnectionKind::Int,
        ..int_map.clone()
    };
    let public_id = Store::observed(store::connect(&url, &options, &public_map).await?, None);
    let stores = [&owned, &observed, &int_key, &public_id];
    let scanner = |store: &Store, metrics: Metrics| {
        Scanner::new(
            store.clone(),
            Lease::Always,
            ScanConfig {
                checkpoint: false,
                ..ScanConfig::default()
            },
            Arc::new(SystemClock),
            metrics,
        )
    };

    let mut first_start = vec![Vec::new(); stores.len()];
    let mut scanners = Vec::new();
    let mut metrics = Vec::new();
    for round in 0..2 {
        for (i, store) in stores.into_iter().enumerate() {
            let m = Metrics::new();
            let mut s = scanner(store, m.clone());
            let started = Instant::now();
            while s.scan_once().await?.building {}
            first_start[i].push(started.elapsed());
            // The steady state: after the chunks that read each connection's latest runs.
            while s.scan_once().await?.learning {}
            if round == 1 {
                scanners.push(s);
                metrics.push(m);
            }
        }
    }
    let mut steady = vec![Vec::new(); stores.len()];
    for round in 0..steady_scans {
        db.finish_live_runs(5).await?;
        finish_integer_key_runs(&db.url, 5).await?;
        // Each round starts with another store, so no store is always first after the
        // writes (or always last).
        let count = scanners.len();
        for i in (0..count).map(|k| (round + k) % count) {
            let s = &mut scanners[i];
            let started = Instant::now();
            let report = s.scan_once().await?;
            steady[i].push(started.elapsed());
            assert!(!report.building, "steady scans do not build");
            // A scrape, untimed: it waits for the snapshot's encoding (a background thread
            // gzips the exposition after each scan), which would otherwise run on the same
            // two cores during the next store's timed scan and bill it to that store.
            metrics[i].render_gzip();
        }
    }
    db.remove_live_runs().await?;
    let mut conn = PgConnection::connect(&db.url).await?;
    sqlx::query("delete from bench_int_sync_log where cloud_task_id like 'bench-live-%'")
        .execute(&mut conn)
        .await?;
    conn.close().await?;

    let config = ScanConfig::default();
    let mut recount = Vec::new();
    for _ in 0..recounts {
        let now = observed.scan().db_now().await?;
        let started = Instant::now();
        observed
            .scan()
            .terminal_aggregate(
                None,
                &now.into(),
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
        "| observed, integer connection key | {:.2} | {:.2} |",
        s(&first_start[2]),
        median_ms(&steady[2])
    );
    println!(
        "| observed, integer key, public uuid by `--connection-id-from lookup:` | {:.2} | {:.2} |",
        s(&first_start[3]),
        median_ms(&steady[3])
    );
    for (i, name) in [(1, "observed"), (2, "integer key"), (3, "public uuid")] {
        println!(
            "{name} / owned: first start {:.2}x, steady scan {:.2}x",
            median_ms(&first_start[i]) / median_ms(&first_start[0]),
            median_ms(&steady[i]) / median_ms(&steady[0])
        );
    }
    println!(
        "recounting the whole history through the lookup (what a generic exporter does per \
         scrape): {:.0} ms, {:.0}x the observed steady scan",
        median_ms(&recount),
        median_ms(&recount) / median_ms(&steady[1])
    );
    Ok(())
}

/// The seeded rows as an ORM keeps them: connections numbered in a table of their own
/// (`id`, the public uuid, the slug), the sync log referencing them by that integer, with
/// the owned table's indexes (but those on `connector_slug`, which it has not). Made once,
/// in one transaction.
async fn integer_key_table(conn: &mut PgConnection) -> anyhow::Result<()> {
    let exists: bool = sqlx::query_scalar("select to_regclass('bench_int_sync_log') is not null")
        .fetch_one(&mut *conn)
        .await?;
    if exists {
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(
        "create table bench_int_connection as \
           select (row_number() over (order by id))::int as id, id as public_id, slug \
           from bench_workspace_connector; \
         create unique index on bench_int_connection (id); \
         create unique index on bench_int_connection (public_id); \
         create table bench_int_sync_log as \
           select l.id, l.workspace_connector_sync_log_id, c.id as workspace_connector_id, \
                  l.status, l.trigger_type, l.cloud_task_id, l.started_at, l.completed_at, \
                  l.duration_ms, l.error, l.metadata, l.created_at, l.updated_at, l.deleted_at \
           from workspace_connector_sync_log l \
           join bench_int_connection c on c.public_id = l.workspace_connector_id; \
         alter table bench_int_sync_log add primary key (id);",
    )
    .execute(&mut *tx)
    .await?;
    let indexes: Vec<String> = sqlx::query_scalar(
        "select indexdef from pg_indexes where tablename = 'workspace_connector_sync_log' \
         and indexname <> 'workspace_connector_sync_log_pkey' \
         and indexdef not like '%connector_slug%'",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (n, def) in indexes.iter().enumerate() {
        let (_, rest) = def
            .split_once(" ON ")
            .ok_or_else(|| anyhow::anyhow!("unexpected index definition {def}"))?;
        let rest = rest.replacen("workspace_connector_sync_log", "bench_int_sync_log", 1);
        let unique = if def.starts_with("CREATE UNIQUE") {
            "unique "
        } else {
            ""
        };
        sqlx::raw_sql(&format!(
            "create {unique}index bench_int_sync_log_{n} on {rest}"
        ))
        .execute(&mut *tx)
        .await?;
    }
    // In place of the owned table's active-runs index on `connector_slug`: the one
    // `check` advises for an observed table.
    sqlx::raw_sql(
        "create index bench_int_sync_log_active on bench_int_sync_log (status, created_at) \
         where status in ('scheduled', 'in_progress') and deleted_at is null",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::raw_sql("analyze bench_int_connection; analyze bench_int_sync_log;")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `n` runs finished just now on the integer-key table, spread over its connections.
async fn finish_integer_key_runs(url: &str, n: i64) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query(
        "insert into bench_int_sync_log (id, workspace_connector_sync_log_id, \
           workspace_connector_id, status, trigger_type, cloud_task_id, started_at, \
           completed_at, duration_ms, created_at, updated_at) \
         select (select max(id) from bench_int_sync_log) + g, gen_random_uuid(), \
                1 + (g * 7919) % (select count(*) from bench_int_connection)::int, 'success', 'manual', 'bench-live-' || g || '-' || gen_random_uuid(), \
                now() - interval '1 second', now(), 1000, now() - interval '2 seconds', now() \
         from generate_series(1, $1) g",
    )
    .bind(n)
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}
