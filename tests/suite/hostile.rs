//! Hostile input that is valid one request at a time: thousands of distinct connector
//! slugs (a label bomb) must not blow up the exposition's cardinality.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{Backend, TestApp};
use futures::stream::{self, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use syncwatch::clock::SystemClock;
use syncwatch::metrics::Metrics;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::Lease;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_connector_slugs_stay_capped_in_the_exposition() {
    const SLUGS: usize = 2000;
    const CAP: usize = 50;
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let statuses: Vec<(StatusCode, StatusCode)> = stream::iter(0..SLUGS)
        .map(|i| {
            let app = &app;
            async move {
                let (created, row) = app
                    .post(
                        "/v1/sync-logs",
                        json!({
                            "workspace_connector_id": Uuid::new_v4(),
                            "connector_slug": format!("bomb-{i:05}"),
                        }),
                    )
                    .await;
                let id = row["workspace_connector_sync_log_id"]
                    .as_str()
                    .unwrap_or("none");
                let (failed, _) = app
                    .post(
                        &format!("/v1/sync-logs/{id}/fail"),
                        json!({"error": "boom"}),
                    )
                    .await;
                (created, failed)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses
        .iter()
        .all(|s| *s == (StatusCode::CREATED, StatusCode::OK)));

    let metrics = Metrics::new();
    let mut scanner = Scanner::new(
        app.db.store.clone(),
        Lease::Always,
        ScanConfig {
            max_connectors: CAP,
            ..ScanConfig::default()
        },
        Arc::new(SystemClock),
        metrics.clone(),
    );
    scanner.scan_once().await.unwrap();
    let text = metrics.render();
    let connectors: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.split("connector=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(connectors.len(), CAP + 1, "{CAP} connectors and \"other\"");
    assert!(connectors.contains("other"));
    let overflow = common::sample(&text, "syncwatch_label_overflow_total").unwrap();
    assert_eq!(overflow as usize, SLUGS - CAP);
    // Nothing is lost by folding: every run is still counted.
    assert_eq!(
        common::family_sum(&text, "connector_sync_runs_total") as usize,
        SLUGS
    );
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    eprintln!("figure: {SLUGS} connectors, cap {CAP}: {series} series in the exposition");
    assert!(series < 5000, "{series} series");
}
