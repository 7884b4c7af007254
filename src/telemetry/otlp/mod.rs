//! OTLP export: the same metrics as `/metrics`, a span per finished run, and a span per
//! API request, pushed over gRPC or HTTP/protobuf to an OpenTelemetry collector.
//!
//! Configured by the standard `OTEL_*` variables. Metrics are converted from the same
//! registry `/metrics` renders, so both carry the same numbers; histograms go out as
//! cumulative explicit-bucket histograms with the store's bucket counts. (The SDK's
//! instruments record observations one by one and cannot carry counts the store already
//! aggregated, so the messages are built with `opentelemetry-proto` directly.)

mod config;
mod convert;
mod export;
pub(crate) mod spans;

use std::time::{Duration, SystemTime};

use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::sync::mpsc;

pub use config::{OtlpConfig, Protocol};
pub use convert::to_otlp_metrics;
pub use export::Exporter;
pub use spans::SpanSink;

use crate::metrics::Metrics;

const SPAN_QUEUE: usize = 8192;
const SPAN_BATCH: usize = 512;
const SPAN_FLUSH: Duration = Duration::from_secs(1);

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
        let (sink, rx) = SpanSink::channel(SPAN_QUEUE);
        Ok(Self {
            exporter: Exporter::new(config)?,
            metrics,
            rx,
            sink,
            started: SystemTime::now(),
        })
    }

    pub fn sink(&self) -> SpanSink {
        self.sink.clone()
    }

    async fn push_metrics(&mut self) {
        let snapshot = self.metrics.snapshot();
        let families = self.metrics.gather_from(&snapshot);
        let mut metrics = to_otlp_metrics(&families, self.started, SystemTime::now());
        convert::attach_exemplars(&mut metrics, &snapshot);
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
