//! End to end: the real binary on Postgres, scraped by a real Prometheus with exemplar
//! storage (OpenMetrics negotiated), its spans sent to an OTLP receiver of the test's own.
//! A run just finished is found from the graph: `/api/v1/query_exemplars` names it inside
//! its bucket, with the trace id of its span, and the status page link the dashboards'
//! data source builds opens it.

use crate::common;
use crate::otlp::{eventually, start_http_receiver, Received};

use std::time::{Duration, Instant};

use common::prometheus::{in_duration_bucket, Prometheus};
use common::{free_port, run_id, run_through_api, wait_until, Backend, Server, TestDb};
use reqwest::Client;
use serde_json::{json, Value};
use syncwatch::test_support::span_attributes;
use uuid::Uuid;

/// Prometheus's own `Accept` header for scrapes (v2.42, `scrape/scrape.go`).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Every exemplar Prometheus holds for `query` over the last ten minutes: (series labels,
/// exemplar labels, value).
async fn exemplars(client: &Client, prom: u16, query: &str) -> Vec<(Value, Value, f64)> {
    let now = chrono::Utc::now().timestamp();
    let Ok(response) = client
        .get(format!("http://127.0.0.1:{prom}/api/v1/query_exemplars"))
        .query(&[
            ("query", query.to_owned()),
            ("start", (now - 600).to_string()),
            ("end", (now + 60).to_string()),
        ])
        .send()
        .await
    else {
        return Vec::new();
    };
    let body: Value = response.json().await.unwrap_or_default();
    let mut found = Vec::new();
    for series in body["data"].as_array().into_iter().flatten() {
        for e in series["exemplars"].as_array().into_iter().flatten() {
            let value = e["value"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            found.push((series["seriesLabels"].clone(), e["labels"].clone(), value));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_just_finished_is_an_exemplar_in_prometheus_with_its_trace_and_page() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let client = Client::new();
    let received = Received::default();
    let otlp = start_http_receiver(received.clone()).await;
    let (api, metrics) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{otlp}");
    let base = format!("http://127.0.0.1:{api}");
    let _syncwatch = Server::start_with_env(
        db.url.expose(),
        api,
        metrics,
        &["--scan-interval", "1s"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
    )
    .await;
    let scrape = format!("http://127.0.0.1:{metrics}/metrics");
    wait_until("syncwatch leads", Duration::from_secs(30), || {
        let (client, scrape) = (client.clone(), scrape.clone());
        async move {
            let text = async { client.get(&scrape).send().await.ok()?.text().await.ok() };
            text.await
                .is_some_and(|t| t.contains("syncwatch_scanner_leader 1"))
        }
    })
    .await;

    // What each scraper is given: OpenMetrics to Prometheus, the text format otherwise.
    let response = client
        .get(&scrape)
        .header("accept", PROMETHEUS_ACCEPT)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let zipped = response.bytes().await.unwrap();
    let mut body = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(&zipped[..]),
        &mut body,
    )
    .unwrap();
    assert!(body.ends_with("# EOF\n"), "{body}");
    let plain = client.get(&scrape).send().await.unwrap();
    assert_eq!(
        plain.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(!plain.text().await.unwrap().contains("# EOF"));

    let Some(prometheus) =
        Prometheus::start(&client, metrics, &["--enable-feature=exemplar-storage"]).await
    else {
        return;
    };
    let prom = prometheus.port;

    let run = |outcome: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let create = json!({"workspace_connector_id": Uuid::new_v4(), "connector_slug": "hubspot",
                                "trigger_type": "manual"});
            run_id(
                &run_through_api(
                    &client,
                    &base,
                    create,
                    outcome,
                    "HTTP 429 Too Many Requests",
                )
                .await,
            )
        }
    };
    let succeeded = run("succeed").await;
    let failed = run("fail").await;

    // Both runs come back from Prometheus as exemplars.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (duration, failure) = loop {
        let durations = exemplars(&client, prom, "connector_sync_duration_seconds_bucket").await;
        let failures = exemplars(&client, prom, "connector_sync_failures_total").await;
        let named = |all: &[(Value, Value, f64)], run: &str| {
            all.iter()
                .find(|(_, labels, _)| labels["run_id"] == run)
                .cloned()
        };
        if let (Some(d), Some(f)) = (named(&durations, &succeeded), named(&failures, &failed)) {
            break (d, f);
        }
        assert!(
            Instant::now() < deadline,
            "no exemplars for runs {succeeded} and {failed}: {durations:?} {failures:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (series, labels, value) = duration;
    assert_eq!(series["connector"], "hubspot");
    assert_eq!(series["status"], "success");
    assert!(
        in_duration_bucket(value, series["le"].as_str().unwrap()),
        "{value} outside {series}"
    );
    let (series, failure_labels, one) = failure;
    assert_eq!((series["reason"].as_str(), one), (Some("rate_limit"), 1.0));

    // Each trace id is the one the run's span carried over OTLP.
    for (run, trace) in [
        (&succeeded, &labels["trace_id"]),
        (&failed, &failure_labels["trace_id"]),
    ] {
        let trace = trace.as_str().unwrap().to_owned();
        eventually("the run's span", || {
            let spans = received.spans.lock().unwrap();
            let span = spans
                .iter()
                .find(|s| span_attributes(s).get("workspace_connector_sync_log_id") == Some(run))
                .ok_or(format!("no span for run {run}"))?;
            let hex: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, trace, "run {run}");
            Ok(())
        })
        .await;
    }

    // The link the Grafana data source builds from the run_id label opens the run's page.
    let link = crate::mixin::run_link(&base, &failed);
    let page = client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200, "{link}");
    assert!(page.text().await.unwrap().contains(&failed), "{link}");
}
