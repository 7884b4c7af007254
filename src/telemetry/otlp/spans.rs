//! Spans: one per finished run and one per API request, and the non-blocking queue
//! ([`SpanSink`]) through which the scanner and the API hand them to the exporter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{span, status, Span, Status};
use tokio::sync::mpsc;

use super::convert::{chrono_nanos, kv, kv_int, nanos};
use crate::api::{RequestObserver, ServedRequest};
use crate::domain::Status as RunStatus;
use crate::scan::RunObserver;
use crate::store::TerminalRun;

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
    fn send(&self, span: Span) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl SpanSink {
    /// A sink and the receiving end of its queue.
    pub(super) fn channel(capacity: usize) -> (Self, mpsc::Receiver<Span>) {
        let (tx, rx) = mpsc::channel(capacity);
        let sink = Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (sink, rx)
    }
}

impl RunObserver for SpanSink {
    fn run_finished(&self, run: &TerminalRun) {
        self.send(run_span(run));
    }
}

impl RequestObserver for SpanSink {
    fn request_served(&self, r: &ServedRequest<'_>) {
        self.send(request_span(
            r.route, r.method, r.status, r.started, r.ended,
        ));
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
    use chrono::{DateTime, Utc};

    use super::*;

    #[test]
    fn a_run_that_never_started_spans_from_creation_with_error_status() {
        let id = uuid::Uuid::new_v4();
        let created: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let run = TerminalRun {
            id,
            key: uuid::Uuid::new_v4().simple().to_string(),
            workspace_connector_id: uuid::Uuid::new_v4().into(),
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
            deleted: false,
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
}
