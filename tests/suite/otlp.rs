//! OTLP export from the real binary to receivers this test runs itself: a gRPC collector
//! (tonic, the OTLP services from opentelemetry-proto) and an HTTP/protobuf one (axum).
//! The metric points must equal what `/metrics` says, every finished run must arrive as a
//! span with its attributes, API requests as server spans, and SIGTERM must flush.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use common::{free_port, run_id, run_through_api, Backend, Server, TestDb};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use syncwatch::test_support::span_attributes;
use uuid::Uuid;

/// An exemplar of an exported point: (metric, run_id attribute, trace id, span id, value).
type PointExemplar = (String, String, Vec<u8>, Vec<u8>, f64);

#[derive(Clone, Default)]
pub(crate) struct Received {
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    pub(crate) spans: Arc<Mutex<Vec<Span>>>,
    headers: Arc<Mutex<Vec<String>>>,
}

impl Received {
    fn add_spans(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.spans.lock().unwrap();
        for rs in request.resource_spans {
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
    }

    /// Every exemplar of the newest metrics export: (metric, run_id attribute, trace id,
    /// span id, value).
    fn latest_exemplars(&self) -> Vec<PointExemplar> {
        use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
        use opentelemetry_proto::tonic::metrics::v1::exemplar::Value;
        let exports = self.metrics.lock().unwrap();
        let Some(last) = exports.last() else {
            return Vec::new();
        };
        let mut found = Vec::new();
        let metrics = last
            .resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics);
        for m in metrics {
            let exemplars: Vec<_> = match &m.data {
                Some(metric::Data::Sum(sum)) => {
                    sum.data_points.iter().flat_map(|p| &p.exemplars).collect()
                }
                Some(metric::Data::Histogram(h)) => {
                    h.data_points.iter().flat_map(|p| &p.exemplars).collect()
                }
                _ => Vec::new(),
            };
            for e in exemplars {
                let run_id = e
                    .filtered_attributes
                    .iter()
                    .find(|kv| kv.key == "run_id")
                    .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                        Any::StringValue(s) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                let value = match e.value {
                    Some(Value::AsDouble(d)) => d,
                    Some(Value::AsInt(i)) => i as f64,
                    None => f64::NAN,
                };
                found.push((
                    m.name.clone(),
                    run_id,
                    e.trace_id.clone(),
                    e.span_id.clone(),
                    value,
                ));
            }
        }
        found
    }

    /// (name, attributes) → value of every number point in the newest metrics export.
    fn latest_points(&self) -> HashMap<(String, Vec<(String, String)>), f64> {
        let mut points = HashMap::new();
        let exports = self.metrics.lock().unwrap();
        let Some(last) = exports.last() else {
            return points;
        };
        for rm in &last.resource_metrics {
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    let attrs = |kvs: &Vec<opentelemetry_proto::tonic::common::v1::KeyValue>| {
                        let mut v: Vec<(String, String)> = kvs
                            .iter()
                            .map(|kv| {
                                let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                    Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => s.clone(),
                                    other => format!("{other:?}"),
                                };
                                (kv.key.clone(), value)
                            })
                            .collect();
                        v.sort();
                        v
                    };
                    let number = |p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint| {
                        match p.value {
                            Some(number_data_point::Value::AsDouble(d)) => d,
                            Some(number_data_point::Value::AsInt(i)) => i as f64,
                            None => f64::NAN,
                        }
                    };
                    match &m.data {
                        Some(metric::Data::Sum(sum)) => {
                            assert!(sum.is_monotonic, "{} is a monotonic sum", m.name);
                            for p in &sum.data_points {
                                points.insert((m.name.clone(), attrs(&p.attributes)), number(p));
                            }
                        }
                        Some(metric::Data::Gauge(g)) => {
                            for p in &g.data_points {
                                points.insert((m.name.clone(), attrs(&p.attributes)), number(p));
                            }
                        }
                        Some(metric::Data::Histogram(h)) => {
                            for p in &h.data_points {
                                assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
                                assert_eq!(
                                    p.bucket_counts.iter().sum::<u64>(),
                                    p.count,
                                    "{}",
                                    m.name
                                );
                                points.insert(
                                    (format!("{}_count", m.name), attrs(&p.attributes)),
                                    p.count as f64,
                                );
                                points.insert(
                                    (format!("{}_sum", m.name), attrs(&p.attributes)),
                                    p.sum.unwrap_or(f64::NAN),
                                );
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        points
    }
}

struct GrpcReceiver(Received);

#[tonic::async_trait]
impl MetricsService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        if let Some(v) = request.metadata().get("x-test-token") {
            self.0
                .headers
                .lock()
                .unwrap()
                .push(v.to_str().unwrap_or("").to_owned());
        }
        self.0.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.add_spans(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn start_grpc_receiver(received: Received) -> u16 {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(MetricsServiceServer::new(GrpcReceiver(received.clone())))
            .add_service(TraceServiceServer::new(GrpcReceiver(received)))
            .serve(addr)
            .await
            .expect("gRPC receiver runs");
    });
    port
}

pub(crate) async fn start_http_receiver(received: Received) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (m, t) = (received.clone(), received);
    let app = axum::Router::new()
        .route(
            "/v1/metrics",
            post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let m = m.clone();
                async move {
                    if let Some(v) = headers.get("x-test-token") {
                        m.headers
                            .lock()
                            .unwrap()
                            .push(v.to_str().unwrap_or("").to_owned());
                    }
                    let request = ExportMetricsServiceRequest::decode(body).expect("protobuf");
                    m.metrics.lock().unwrap().push(request);
                    ExportMetricsServiceResponse::default().encode_to_vec()
                }
            }),
        )
        .route(
            "/v1/traces",
            post(move |body: Bytes| {
                let t = t.clone();
                async move {
                    t.add_spans(ExportTraceServiceRequest::decode(body).expect("protobuf"));
                    ExportTraceServiceResponse::default().encode_to_vec()
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

pub(crate) async fn eventually<F: FnMut() -> Result<(), String>>(what: &str, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// `/metrics` lines of one family as (sorted labels) → value.
fn scrape_family(text: &str, family: &str) -> HashMap<Vec<(String, String)>, f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let inner = &series[family.len() + 1..series.len() - 1];
            let mut labels: Vec<(String, String)> = inner
                .split("\",")
                .map(|pair| {
                    let (k, v) = pair.split_once("=\"").unwrap();
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            labels.sort();
            (labels, value.parse().unwrap())
        })
        .collect()
}

async fn exports_metrics_and_spans(protocol: &str, backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let received = Received::default();
    let port = match protocol {
        "grpc" => start_grpc_receiver(received.clone()),
        _ => start_http_receiver(received.clone()).await,
    };
    let (api, metrics_port) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut server = Server::start_with_env(
        db.url.expose(),
        api,
        metrics_port,
        &["--scan-interval", "1s"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-test-token=abc"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{api}");
    let scrape = || {
        let client = client.clone();
        async move {
            client
                .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()
        }
    };
    // Wait for the first (build) scan: spans are emitted for runs seen finishing after it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(text) = scrape().await {
            if text
                .lines()
                .any(|l| l.starts_with("syncwatch_scanner_leader 1"))
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "syncwatch did not start scanning"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut runs = Vec::new();
    for (slug, outcome) in [
        ("hubspot", "succeed"),
        ("hubspot", "succeed"),
        ("hubspot", "fail"),
        ("salesforce", "succeed"),
    ] {
        let create = json!({"workspace_connector_id": Uuid::new_v4(), "connector_slug": slug,
                            "trigger_type": "manual", "metadata": {"records_synced": 4}});
        runs.push(run_through_api(&client, &base, create, outcome, "rate limited").await);
    }

    // Metric points equal what /metrics says for the same families.
    let families = [
        "connector_sync_runs_total",
        "connector_sync_records_synced_total",
    ];
    let mut exposition = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        exposition = scrape().await.unwrap_or(exposition);
        let expected: f64 = scrape_family(&exposition, "connector_sync_runs_total")
            .values()
            .sum();
        let points = received.latest_points();
        let agree = expected == 4.0
            && families.iter().all(|family| {
                let want = scrape_family(&exposition, family);
                !want.is_empty()
                    && want.iter().all(|(labels, value)| {
                        points.get(&((*family).to_owned(), labels.clone())) == Some(value)
                    })
            });
        if agree {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "OTLP points never matched /metrics: {exposition}\n{points:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let points = received.latest_points();
    let key = |name: &str, pairs: &[(&str, &str)]| {
        let mut labels: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        (name.to_owned(), labels)
    };
    let hub_ok = [
        ("connector", "hubspot"),
        ("trigger", "manual"),
        ("status", "success"),
    ];
    assert_eq!(
        points.get(&key("connector_sync_runs_total", &hub_ok)),
        Some(&2.0)
    );
    assert_eq!(
        points.get(&key("connector_sync_duration_seconds_count", &hub_ok)),
        Some(&2.0)
    );
    assert_eq!(points.get(&key("syncwatch_up", &[])), Some(&1.0));
    assert!(
        received.headers.lock().unwrap().iter().any(|h| h == "abc"),
        "OTEL_EXPORTER_OTLP_HEADERS sent"
    );

    // One span per finished run, with its attributes; failed runs carry error status.
    eventually("run spans", || {
        let spans = received.spans.lock().unwrap();
        for run in &runs {
            let id = run_id(run);
            let span = spans
                .iter()
                .find(|s| {
                    s.name == "connector_sync_run"
                        && span_attributes(s).get("workspace_connector_sync_log_id") == Some(&id)
                })
                .ok_or(format!("no span for run {id}"))?;
            let attrs = span_attributes(span);
            assert_eq!(attrs["connector"], run["connector_slug"].as_str().unwrap());
            assert_eq!(attrs["trigger"], "manual");
            assert_eq!(attrs["status"], run["status"].as_str().unwrap());
            assert_eq!(
                attrs["workspace_connector_id"],
                run["workspace_connector_id"].as_str().unwrap()
            );
            let started: chrono::DateTime<chrono::Utc> =
                run["started_at"].as_str().unwrap().parse().unwrap();
            let completed: chrono::DateTime<chrono::Utc> =
                run["completed_at"].as_str().unwrap().parse().unwrap();
            assert_eq!(
                span.start_time_unix_nano as i64,
                started.timestamp_nanos_opt().unwrap()
            );
            assert_eq!(
                span.end_time_unix_nano as i64,
                completed.timestamp_nanos_opt().unwrap()
            );
            let status = span.status.as_ref().unwrap();
            if run["status"] == "error" {
                assert_eq!(status.code, 2, "failed runs have error status");
                assert_eq!(status.message, "rate limited");
                assert_eq!(attrs["error"], "rate limited");
            } else {
                assert_eq!(status.code, 0);
            }
        }
        let run_spans = spans
            .iter()
            .filter(|s| s.name == "connector_sync_run")
            .count();
        if run_spans != runs.len() {
            return Err(format!("{run_spans} run spans for {} runs", runs.len()));
        }
        Ok(())
    })
    .await;
    // The duration and failure points carry their latest runs as exemplars, with the
    // trace and span ids of those runs' spans.
    let failed = runs
        .iter()
        .find(|r| r["status"] == "error")
        .map(run_id)
        .unwrap();
    let salesforce = runs
        .iter()
        .find(|r| r["connector_slug"] == "salesforce")
        .map(run_id)
        .unwrap();
    eventually("exemplars on the points", || {
        let exemplars = received.latest_exemplars();
        let spans = received.spans.lock().unwrap();
        let of = |metric: &str| -> Vec<String> {
            exemplars
                .iter()
                .filter(|e| e.0 == metric)
                .map(|e| e.1.clone())
                .collect()
        };
        let durations = of("connector_sync_duration_seconds");
        if !durations.contains(&failed) || !durations.contains(&salesforce) {
            return Err(format!("duration exemplars {durations:?}"));
        }
        if of("connector_sync_failures_total") != [failed.clone()] {
            return Err(format!("failure exemplars {exemplars:?}"));
        }
        for (metric, run, trace, span_id, value) in &exemplars {
            let span = spans
                .iter()
                .find(|s| span_attributes(s).get("workspace_connector_sync_log_id") == Some(run))
                .ok_or(format!("{metric}: no span for exemplar run {run}"))?;
            assert_eq!(
                (trace, span_id),
                (&span.trace_id, &span.span_id),
                "{metric} {run}"
            );
            assert!(*value >= 0.0 && value.is_finite());
        }
        Ok(())
    })
    .await;
    {
        let spans = received.spans.lock().unwrap();
        let api_span = spans
            .iter()
            .find(|s| s.name == "POST /v1/sync-logs/{id}/succeed")
            .expect("API requests are server spans");
        assert_eq!(
            span_attributes(api_span)["http.response.status_code"],
            "200"
        );
        assert_eq!(api_span.kind, 2);
    }

    // Flush on shutdown: a request right before SIGTERM still arrives.
    client
        .get(format!("{base}/v1/connector-status"))
        .send()
        .await
        .unwrap();
    let status = server.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
    let flushed = received
        .spans
        .lock()
        .unwrap()
        .iter()
        .any(|s| s.name == "GET /v1/connector-status");
    assert!(flushed, "the last request's span was flushed on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_from_postgres_carries_the_same_numbers_and_a_span_per_run() {
    exports_metrics_and_spans("grpc", Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export_from_sqlite_carries_the_same_numbers_and_a_span_per_run() {
    exports_metrics_and_spans("http/protobuf", Backend::Sqlite).await;
}
