//! OTLP export: the same metrics as `/metrics`, a span per finished run, and a span per
//! API request, pushed over gRPC or HTTP/protobuf to an OpenTelemetry collector.
//!
//! Configured by the standard `OTEL_*` variables. Metrics are converted from the same
//! registry `/metrics` renders, so both carry the same numbers; histograms go out as
//! cumulative explicit-bucket histograms with the store's bucket counts. (The SDK's
//! instruments record observations one by one and cannot carry counts the store already
//! aggregated, so the messages are built with `opentelemetry-proto` directly.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prometheus::proto::{MetricFamily, MetricType};
use prost::Message;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::domain::Status as RunStatus;
use crate::metrics::Metrics;
use crate::store::TerminalRun;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    pub protocol: Protocol,
    pub metrics_endpoint: String,
    pub traces_endpoint: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub export_interval: Duration,
    pub service_name: String,
    pub resource_attributes: Vec<(String, String)>,
}

impl OtlpConfig {
    /// From the process environment; `None` when no OTLP endpoint is configured.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From any variable source (tests pass a map). Follows the OTLP exporter spec:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is a base (`/v1/metrics`, `/v1/traces` appended for
    /// HTTP), the per-signal `…_METRICS_ENDPOINT` / `…_TRACES_ENDPOINT` are used as given.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let base = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        let metrics = get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
        let traces = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        if base.is_none() && metrics.is_none() && traces.is_none() {
            return Ok(None);
        }
        let protocol = match get("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported; use grpc or http/protobuf"
            ),
        };
        let default_base = match protocol {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf => "http://localhost:4318",
        };
        let base = base.unwrap_or_else(|| default_base.to_owned());
        let signal = |path: &str| match protocol {
            Protocol::Grpc => base.clone(),
            Protocol::HttpProtobuf => format!("{}/{path}", base.trim_end_matches('/')),
        };
        let millis = |name: &str, default: u64| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(match get(name) {
                Some(v) => v
                    .parse()
                    .with_context(|| format!("{name}={v:?} is not a number of milliseconds"))?,
                None => default,
            }))
        };
        let pairs = |name: &str| -> anyhow::Result<Vec<(String, String)>> {
            let Some(text) = get(name) else {
                return Ok(Vec::new());
            };
            text.split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|pair| {
                    let (k, v) = pair
                        .split_once('=')
                        .with_context(|| format!("{name}: {pair:?} is not key=value"))?;
                    Ok((percent_decode(k.trim()), percent_decode(v.trim())))
                })
                .collect()
        };
        let export_interval = millis("OTEL_METRIC_EXPORT_INTERVAL", 60_000)?;
        if export_interval.is_zero() {
            anyhow::bail!("OTEL_METRIC_EXPORT_INTERVAL must be positive");
        }
        Ok(Some(Self {
            protocol,
            metrics_endpoint: metrics.unwrap_or_else(|| signal("v1/metrics")),
            traces_endpoint: traces.unwrap_or_else(|| signal("v1/traces")),
            headers: pairs("OTEL_EXPORTER_OTLP_HEADERS")?,
            timeout: millis("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000)?,
            export_interval,
            service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "syncwatch".into()),
            resource_attributes: pairs("OTEL_RESOURCE_ATTRIBUTES")?,
        }))
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn chrono_nanos(t: DateTime<Utc>) -> u64 {
    t.timestamp_nanos_opt().unwrap_or(0).max(0) as u64
}

fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "syncwatch".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

fn resource(config: &OtlpConfig) -> Resource {
    let mut attributes = vec![
        kv("service.name", config.service_name.clone()),
        kv("service.version", env!("CARGO_PKG_VERSION")),
    ];
    for (k, v) in &config.resource_attributes {
        if k != "service.name" {
            attributes.push(kv(k, v.clone()));
        }
    }
    Resource {
        attributes,
        ..Default::default()
    }
}

/// Convert gathered Prometheus families to OTLP metrics: counters become monotonic
/// cumulative sums, gauges gauges, histograms cumulative explicit-bucket histograms.
pub fn to_otlp_metrics(
    families: &[MetricFamily],
    start: SystemTime,
    now: SystemTime,
) -> Vec<pm::Metric> {
    let (start, now) = (nanos(start), nanos(now));
    families
        .iter()
        .filter_map(|family| {
            let attributes = |m: &prometheus::proto::Metric| -> Vec<KeyValue> {
                m.get_label()
                    .iter()
                    .map(|l| kv(l.name(), l.value()))
                    .collect()
            };
            let number = |m: &prometheus::proto::Metric, value: f64| pm::NumberDataPoint {
                attributes: attributes(m),
                start_time_unix_nano: start,
                time_unix_nano: now,
                value: Some(pm::number_data_point::Value::AsDouble(value)),
                ..Default::default()
            };
            let data = match family.get_field_type() {
                MetricType::COUNTER => pm::metric::Data::Sum(pm::Sum {
                    data_points: family
                        .get_metric()
                        .iter()
                        .map(|m| number(m, m.get_counter().get_value()))
                        .collect(),
                    aggregation_temporality: pm::AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                MetricType::GAUGE => pm::metric::Data::Gauge(pm::Gauge {
                    data_points: family
                        .get_metric()
                        .iter()
                        .map(|m| number(m, m.get_gauge().get_value()))
                        .collect(),
                }),
                MetricType::HISTOGRAM => pm::metric::Data::Histogram(pm::Histogram {
                    data_points: family
                        .get_metric()
                        .iter()
                        .map(|m| {
                            let h = m.get_histogram();
                            let (bounds, counts) = per_bucket(
                                h.get_bucket()
                                    .iter()
                                    .map(|b| (b.upper_bound(), b.cumulative_count())),
                                h.get_sample_count(),
                            );
                            pm::HistogramDataPoint {
                                attributes: attributes(m),
                                start_time_unix_nano: start,
                                time_unix_nano: now,
                                count: h.get_sample_count(),
                                sum: Some(h.get_sample_sum()),
                                bucket_counts: counts,
                                explicit_bounds: bounds,
                                ..Default::default()
                            }
                        })
                        .collect(),
                    aggregation_temporality: pm::AggregationTemporality::Cumulative as i32,
                }),
                _ => return None,
            };
            Some(pm::Metric {
                name: family.name().to_owned(),
                description: family.help().to_owned(),
                unit: if family.name().contains("_seconds") {
                    "s".into()
                } else {
                    String::new()
                },
                data: Some(data),
                ..Default::default()
            })
        })
        .collect()
}

/// Prometheus buckets are cumulative with an implicit `+Inf`; OTLP wants a count per
/// bucket, with one more count than bounds (the overflow bucket).
pub fn per_bucket(
    cumulative: impl Iterator<Item = (f64, u64)>,
    total: u64,
) -> (Vec<f64>, Vec<u64>) {
    let mut bounds = Vec::new();
    let mut counts = Vec::new();
    let mut previous = 0;
    for (bound, count) in cumulative {
        if bound.is_infinite() {
            continue;
        }
        bounds.push(bound);
        counts.push(count.saturating_sub(previous));
        previous = count;
    }
    counts.push(total.saturating_sub(previous));
    (bounds, counts)
}

/// One span per finished run: from `started_at` (or `created_at` for a run that never
/// started) to `completed_at`. The trace id is the run id, so a run's trace is found by
/// its id, and a re-export is recognisable as the same span.
pub fn run_span(run: &TerminalRun) -> Span {
    let id = run.id.as_bytes();
    let start = run.started_at.unwrap_or(run.created_at);
    let mut attributes = vec![
        kv("connector", run.connector_slug.clone()),
        kv(
            "trigger",
            run.trigger_type.clone().unwrap_or_else(|| "none".into()),
        ),
        kv("status", run.status.as_str()),
        kv(
            "workspace_connector_id",
            run.workspace_connector_id.to_string(),
        ),
        kv("workspace_connector_sync_log_id", run.id.to_string()),
    ];
    if let Some(error) = &run.error {
        attributes.push(kv("error", error.clone()));
    }
    if let Some(records) = run.records_synced {
        attributes.push(kv_int("records_synced", records as i64));
    }
    let failed = run.status == RunStatus::Error;
    Span {
        trace_id: id.to_vec(),
        span_id: id[8..16].to_vec(),
        name: "connector_sync_run".into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: chrono_nanos(start),
        end_time_unix_nano: chrono_nanos(run.completed_at).max(chrono_nanos(start)),
        attributes,
        status: Some(Status {
            message: if failed {
                run.error.clone().unwrap_or_default()
            } else {
                String::new()
            },
            code: if failed {
                status::StatusCode::Error as i32
            } else {
                status::StatusCode::Unset as i32
            },
        }),
        ..Default::default()
    }
}

/// A server span for one API request.
pub fn request_span(
    route: &str,
    method: &str,
    code: u16,
    start: SystemTime,
    end: SystemTime,
) -> Span {
    let trace = uuid::Uuid::new_v4();
    let span = uuid::Uuid::new_v4();
    Span {
        trace_id: trace.as_bytes().to_vec(),
        span_id: span.as_bytes()[..8].to_vec(),
        name: format!("{method} {route}"),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: nanos(start),
        end_time_unix_nano: nanos(end),
        attributes: vec![
            kv("http.request.method", method),
            kv("http.route", route),
            kv_int("http.response.status_code", i64::from(code)),
        ],
        status: Some(Status {
            message: String::new(),
            code: if code >= 500 {
                status::StatusCode::Error as i32
            } else {
                status::StatusCode::Unset as i32
            },
        }),
        ..Default::default()
    }
}

/// Where spans are handed to the exporter. Never blocks: when the queue is full the
/// span is dropped and counted.
#[derive(Clone, Debug)]
pub struct SpanSink {
    tx: mpsc::Sender<Span>,
    dropped: Arc<AtomicU64>,
}

impl SpanSink {
    pub fn send(&self, span: Span) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

const SPAN_QUEUE: usize = 8192;
const SPAN_BATCH: usize = 512;
const SPAN_FLUSH: Duration = Duration::from_secs(1);

struct GrpcClients {
    metrics: MetricsServiceClient<Channel>,
    traces: TraceServiceClient<Channel>,
}

enum Transport {
    Grpc(Box<GrpcClients>),
    Http { client: reqwest::Client },
}

/// Sends OTLP requests with the configured protocol, headers and timeout.
pub struct Exporter {
    config: OtlpConfig,
    transport: Transport,
}

impl Exporter {
    pub fn new(config: OtlpConfig) -> anyhow::Result<Self> {
        let transport = match config.protocol {
            Protocol::Grpc => {
                let channel = |endpoint: &str| -> anyhow::Result<Channel> {
                    Ok(Channel::from_shared(endpoint.to_owned())
                        .with_context(|| format!("invalid OTLP endpoint {endpoint:?}"))?
                        .timeout(config.timeout)
                        .connect_lazy())
                };
                Transport::Grpc(Box::new(GrpcClients {
                    metrics: MetricsServiceClient::new(channel(&config.metrics_endpoint)?),
                    traces: TraceServiceClient::new(channel(&config.traces_endpoint)?),
                }))
            }
            Protocol::HttpProtobuf => Transport::Http {
                client: reqwest::Client::builder().timeout(config.timeout).build()?,
            },
        };
        Ok(Self { config, transport })
    }

    fn grpc_request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        for (k, v) in &self.config.headers {
            let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .with_context(|| format!("invalid OTLP header name {k:?}"))?;
            let value = v
                .parse()
                .with_context(|| format!("invalid OTLP header value for {k:?}"))?;
            request.metadata_mut().insert(key, value);
        }
        Ok(request)
    }

    async fn post(&self, client: &reqwest::Client, url: &str, body: Vec<u8>) -> anyhow::Result<()> {
        let mut request = client
            .post(url)
            .header("content-type", "application/x-protobuf")
            .body(body);
        for (k, v) in &self.config.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            anyhow::bail!("OTLP endpoint {url} answered {}", response.status());
        }
        Ok(())
    }

    pub async fn export_metrics(&mut self, metrics: Vec<pm::Metric>) -> anyhow::Result<()> {
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![pm::ResourceMetrics {
                resource: Some(resource(&self.config)),
                scope_metrics: vec![pm::ScopeMetrics {
                    scope: Some(scope()),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        match &self.transport {
            Transport::Grpc(clients) => {
                let request = self.grpc_request(request)?;
                clients.metrics.clone().export(request).await?;
            }
            Transport::Http { client } => {
                let url = self.config.metrics_endpoint.clone();
                self.post(client, &url, request.encode_to_vec()).await?;
            }
        }
        Ok(())
    }

    pub async fn export_spans(&mut self, spans: Vec<Span>) -> anyhow::Result<()> {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource(&self.config)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        match &self.transport {
            Transport::Grpc(clients) => {
                let request = self.grpc_request(request)?;
                clients.traces.clone().export(request).await?;
            }
            Transport::Http { client } => {
                let url = self.config.traces_endpoint.clone();
                self.post(client, &url, request.encode_to_vec()).await?;
            }
        }
        Ok(())
    }
}

/// The export loop: metrics every `export_interval`, spans in batches every second, and
/// everything once more when `stop` resolves (flush on shutdown).
pub struct Pipeline {
    exporter: Exporter,
    metrics: Metrics,
    rx: mpsc::Receiver<Span>,
    sink: SpanSink,
    started: SystemTime,
}

impl Pipeline {
    pub fn new(config: OtlpConfig, metrics: Metrics) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(SPAN_QUEUE);
        Ok(Self {
            exporter: Exporter::new(config)?,
            metrics,
            rx,
            sink: SpanSink {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            started: SystemTime::now(),
        })
    }

    pub fn sink(&self) -> SpanSink {
        self.sink.clone()
    }

    async fn push_metrics(&mut self) {
        let metrics = to_otlp_metrics(&self.metrics.gather(), self.started, SystemTime::now());
        if let Err(e) = self.exporter.export_metrics(metrics).await {
            tracing::warn!(error = %e, "OTLP metrics export failed");
        }
    }

    async fn push_spans(&mut self, all: bool) {
        loop {
            let mut batch = Vec::new();
            while batch.len() < SPAN_BATCH {
                match self.rx.try_recv() {
                    Ok(span) => batch.push(span),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            let full = batch.len() == SPAN_BATCH;
            if let Err(e) = self.exporter.export_spans(batch).await {
                tracing::warn!(error = %e, "OTLP span export failed");
            }
            if !(all || full) {
                return;
            }
        }
    }

    pub async fn run_until_stopped(mut self, stop: impl std::future::Future<Output = ()>) {
        tracing::info!(
            protocol = ?self.exporter.config.protocol,
            metrics = %self.exporter.config.metrics_endpoint,
            traces = %self.exporter.config.traces_endpoint,
            "OTLP export on"
        );
        let mut metrics_tick = tokio::time::interval(self.exporter.config.export_interval);
        let mut spans_tick = tokio::time::interval(SPAN_FLUSH);
        metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = metrics_tick.tick() => self.push_metrics().await,
                _ = spans_tick.tick() => self.push_spans(false).await,
            }
        }
        self.push_spans(true).await;
        self.push_metrics().await;
        let dropped = self.sink.dropped();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "OTLP spans dropped because the export queue was full"
            );
        }
        tracing::info!("OTLP export flushed");
    }
}

/// A span's attributes as text (for tests and logs).
pub fn span_attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .filter_map(|kv| {
            let value = match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) => s.clone(),
                any_value::Value::IntValue(i) => i.to_string(),
                any_value::Value::DoubleValue(d) => d.to_string(),
                any_value::Value::BoolValue(b) => b.to_string(),
                _ => return None,
            };
            Some((kv.key.clone(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(OtlpConfig::from_vars(vars(&[])).unwrap(), None);
        let disabled = vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        assert_eq!(OtlpConfig::from_vars(disabled).unwrap(), None);
    }

    #[test]
    fn http_endpoints_get_signal_paths_grpc_ones_do_not() {
        let http =
            OtlpConfig::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]))
                .unwrap()
                .unwrap();
        assert_eq!(http.protocol, Protocol::HttpProtobuf);
        assert_eq!(http.metrics_endpoint, "http://c:4318/v1/metrics");
        assert_eq!(http.traces_endpoint, "http://c:4318/v1/traces");
        assert_eq!(http.export_interval, Duration::from_secs(60));
        assert_eq!(http.timeout, Duration::from_secs(10));
        let grpc = OtlpConfig::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%20x,tenant=a"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
            ("OTEL_SERVICE_NAME", "sw-prod"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(grpc.metrics_endpoint, "http://c:4317");
        assert_eq!(grpc.traces_endpoint, "http://t:4317");
        assert_eq!(
            grpc.headers,
            vec![
                ("api-key".into(), "s x".into()),
                ("tenant".into(), "a".into())
            ]
        );
        assert_eq!(grpc.export_interval, Duration::from_millis(500));
        assert_eq!(grpc.service_name, "sw-prod");
    }

    #[test]
    fn bad_values_are_errors() {
        for bad in [
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "1m"),
            ],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ],
        ] {
            assert!(OtlpConfig::from_vars(vars(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_run_that_never_started_spans_from_creation_with_error_status() {
        let id = uuid::Uuid::new_v4();
        let created: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let run = TerminalRun {
            id,
            workspace_connector_id: uuid::Uuid::new_v4(),
            connector_slug: "hubspot".into(),
            trigger_type: None,
            status: RunStatus::Error,
            duration_seconds: None,
            dispatch_delay_seconds: None,
            records_synced: None,
            completed_at: created + chrono::Duration::seconds(90),
            created_at: created,
            started_at: None,
            error: Some("dispatch failed".into()),
        };
        let span = run_span(&run);
        assert_eq!(span.trace_id, id.as_bytes().to_vec());
        assert_eq!(span.span_id.len(), 8);
        assert_eq!(span.start_time_unix_nano, chrono_nanos(created));
        assert_eq!(
            span.end_time_unix_nano - span.start_time_unix_nano,
            90_000_000_000
        );
        let status = span.status.unwrap();
        assert_eq!(status.code, status::StatusCode::Error as i32);
        assert_eq!(status.message, "dispatch failed");
        let attrs = span_attributes(&Span {
            attributes: span.attributes,
            ..Default::default()
        });
        assert_eq!(attrs["trigger"], "none");
        assert_eq!(attrs["error"], "dispatch failed");
    }

    #[test]
    fn cumulative_buckets_become_per_bucket_counts() {
        let (bounds, counts) = per_bucket(
            [(1.0, 2), (5.0, 3), (15.0, 3), (f64::INFINITY, 4)].into_iter(),
            4,
        );
        assert_eq!(bounds, vec![1.0, 5.0, 15.0]);
        assert_eq!(counts, vec![2, 1, 0, 1]);
        assert_eq!(counts.iter().sum::<u64>(), 4);
    }
}
