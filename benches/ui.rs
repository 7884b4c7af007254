//! The status page at scale: each page rendered through the real router on the scan
//! bench's seeded PostgreSQL database (`--rows` terminal runs, 20,000 connections), after
//! a scanner caught up and published its snapshot — against the API's
//! `GET /v1/connector-status`, which answers a similar question by reading every run of
//! every connection, side by side in one run.
//!
//!     cargo bench --bench ui -- [--rows 1000000] [--samples 25]
//!
//! Each page is requested `--samples` times, round-robin across pages so all see the same
//! machine; the overview is measured both cold (a fresh router, so its 24-hour aggregate
//! is read) and warm (that aggregate reused). Printed: the median and the worst sample per
//! page, in milliseconds, and the page's size.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use syncwatch::api::{self, ApiSettings};
use syncwatch::clock::SystemClock;
use syncwatch::metrics::Metrics;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::{Lease, ListFilter, Store};
use tower::ServiceExt;

use support::{arg, median_ms, ms, BenchDb};

async fn get(router: &Router, path: &str) -> (Duration, usize) {
    let started = Instant::now();
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (started.elapsed(), body.len())
}

fn router(store: &Store, metrics: &Metrics) -> Router {
    api::router(
        store.clone(),
        &ApiSettings::default(),
        metrics.clone(),
        None,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: u64 = arg("--rows").map_or(Ok(1_000_000), |s| s.parse())?;
    let samples: usize = arg("--samples").map_or(Ok(25), |s| s.parse())?;
    let db = BenchDb::seeded(rows, 1000).await?;
    let store = db.store().await?;
    let metrics = Metrics::new();
    let mut scanner = Scanner::new(
        store.clone(),
        Lease::Always,
        ScanConfig::default(),
        Arc::new(SystemClock),
        metrics.clone(),
    );
    let started = Instant::now();
    while scanner.scan_once().await?.building {}
    eprintln!("scanner caught up in {:.1?}", started.elapsed());
    let snap = metrics.snapshot();
    let worst = snap
        .failing_list
        .first()
        .ok_or_else(|| anyhow::anyhow!("the seeded table has no failing connection"))?;
    let connector = worst.connector_slug.clone();
    let connection = worst.workspace_connector_id.clone();
    // The busiest connection's history, 20 pages back.
    let mut before = None;
    let busiest = snap.failing_list[snap.failing_list.len() / 2]
        .workspace_connector_id
        .clone();
    for _ in 0..20 {
        let page = store
            .runs()
            .list(&ListFilter {
                workspace_connector_id: Some(busiest.clone()),
                cursor: before,
                limit: syncwatch::test_support::PAGE_SIZE as u32,
                ..ListFilter::default()
            })
            .await?;
        match page.next_cursor {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let run = store
        .runs()
        .list(&ListFilter {
            workspace_connector_id: Some(connection.clone()),
            limit: 1,
            ..ListFilter::default()
        })
        .await?
        .items[0]
        .workspace_connector_sync_log_id;
    let deep = match before {
        Some(cursor) => format!("/ui/connections/{busiest}?before={cursor}"),
        None => format!("/ui/connections/{busiest}"),
    };
    let pages: Vec<(&str, String)> = vec![
        ("overview (cold)", "/ui".into()),
        ("overview (warm)", "/ui".into()),
        ("failing, all connectors", "/ui/failing".into()),
        (
            "failing, one connector",
            format!("/ui/failing?connector={connector}"),
        ),
        (
            "a connection, newest runs",
            format!("/ui/connections/{connection}"),
        ),
        ("a connection, 20 pages back", deep),
        ("a run", format!("/ui/runs/{run}")),
        (
            "API connector-status (whole history)",
            "/v1/connector-status".into(),
        ),
    ];
    let warm = router(&store, &metrics);
    get(&warm, "/ui").await;
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); pages.len()];
    let mut sizes = vec![0usize; pages.len()];
    for sample in 0..samples {
        for (i, (name, path)) in pages.iter().enumerate() {
            // The whole-history read is slow: a third of the samples is enough.
            if name.starts_with("API") && sample % 3 != 0 {
                continue;
            }
            let router = if name.ends_with("(cold)") {
                router(&store, &metrics)
            } else {
                warm.clone()
            };
            let (took, size) = get(&router, path).await;
            times[i].push(took);
            sizes[i] = size;
        }
    }
    println!(
        "\nstatus page at {rows} terminal runs, {} failing connections, {samples} samples",
        snap.failing_list.len()
    );
    println!("| page | median ms | worst ms | bytes |\n|---|---:|---:|---:|");
    let ui_worst = times[..pages.len() - 1]
        .iter()
        .map(|t| median_ms(t))
        .fold(0.0, f64::max);
    for (i, (name, _)) in pages.iter().enumerate() {
        let worst = times[i].iter().map(|d| ms(*d)).fold(0.0, f64::max);
        println!(
            "| {name} | {:.2} | {:.2} | {} |",
            median_ms(&times[i]),
            worst,
            sizes[i]
        );
    }
    println!(
        "\nslowest page median {ui_worst:.2} ms; connector-status / failing page = {:.0}x",
        median_ms(&times[pages.len() - 1]) / median_ms(&times[2])
    );
    Ok(())
}
