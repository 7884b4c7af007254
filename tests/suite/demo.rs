//! `syncwatch-tools demo` fills the store so that every domain metric has series, and on
//! stop leaves only its deliberately stuck runs active.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::TestApp;
use syncwatch::clock::Clock;
use syncwatch::metrics::Metrics;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::Lease;
use syncwatch::test_support::ManualClock;
use syncwatch::test_support::MetricsExt;
use syncwatch::test_support::DOMAIN_FAMILIES;
use syncwatch_tools::demo::{self, DemoConfig};

async fn the_demo_fleet_populates_every_domain_metric(app: &TestApp) {
    let db = &app.db;
    let config = DemoConfig {
        connectors: 4,
        connections_per_connector: 3,
        failure_rate: 0.2,
        stuck_rate: 0.1,
        tick: Duration::from_millis(2),
        max_run_ticks: 3,
        ticks: Some(80),
        ..DemoConfig::default()
    };
    let report = demo::run(db.store.clone(), &config, std::future::pending())
        .await
        .expect("demo runs");
    assert!(
        report.succeeded > 0 && report.failed > 0 && report.stuck > 0,
        "{report:?}"
    );
    let count = |status: &str| {
        let sql =
            format!("select count(*) from workspace_connector_sync_log where status = '{status}'");
        async move { db.scalar_i64(&sql).await }
    };
    assert_eq!(count("success").await, report.succeeded as i64);
    assert_eq!(count("error").await, report.failed as i64);
    assert_eq!(db.count_rows().await, report.created as i64);
    // On stop the fleet finished the runs it was running: only the deliberately stuck
    // ones are still active.
    assert_eq!(
        count("scheduled").await + count("in_progress").await,
        report.stuck as i64,
        "{report:?}"
    );

    // An hour later every stuck run shows; every domain family has series.
    let clock = Arc::new(ManualClock::new(db.store.scan().db_now().await.unwrap()));
    clock.advance(chrono::Duration::hours(1));
    let metrics = Metrics::new();
    let mut scanner = Scanner::new(
        db.store.clone(),
        Lease::Always,
        ScanConfig::default(),
        clock.clone() as Arc<dyn Clock>,
        metrics.clone(),
    );
    scanner.scan_once().await.unwrap();
    let text = metrics.render_domain();
    for syncwatch::test_support::Family { name: family, .. } in DOMAIN_FAMILIES {
        assert!(
            text.contains(&format!("\n{family}")),
            "{family} has no series:\n{text}"
        );
    }
    let snapshot = metrics.snapshot();
    assert!(snapshot.stuck.values().sum::<u64>() > 0);
    assert!(
        snapshot
            .consecutive_failures
            .values()
            .max()
            .copied()
            .unwrap_or(0)
            > 0
    );
}

on_both_stores!(the_demo_fleet_populates_every_domain_metric);
