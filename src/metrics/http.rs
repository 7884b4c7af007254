//! Request counting and latency for the API, labelled by route template (never the raw
//! path, which would carry run ids).

use std::time::{Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::Metrics;

pub async fn track_http(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let wall_start = SystemTime::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let code = response.status().as_u16().to_string();
    let labels = [route.as_str(), method.as_str(), code.as_str()];
    metrics.http_requests.with_label_values(&labels).inc();
    metrics
        .http_duration
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    if let Some(sink) = metrics.span_sink() {
        sink.send(crate::telemetry::otlp::request_span(
            &route,
            &method,
            response.status().as_u16(),
            wall_start,
            SystemTime::now(),
        ));
    }
    response
}
