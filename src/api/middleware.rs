//! The API's layers: bearer authentication, the request deadline, and request metrics
//! (by route template, never the raw path, which would carry run ids) with an optional
//! observer told of every request (the OTLP exporter's request spans); failed requests'
//! details are logged here, with their route.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::auth::ApiAuth;
use crate::metrics::Metrics;

/// One answered API request.
#[derive(Debug, Clone, Copy)]
pub struct ServedRequest<'a> {
    /// The route template (`/v1/sync-logs/{id}`), never the raw path.
    pub route: &'a str,
    pub method: &'a str,
    pub status: u16,
    pub started: SystemTime,
    pub ended: SystemTime,
}

/// Told about every API request once it is answered.
pub trait RequestObserver: Send + Sync + 'static {
    fn request_served(&self, request: &ServedRequest<'_>);
}

/// What [`track_requests`] records into; shared, so each request clones one pointer.
#[derive(Clone)]
pub struct RequestTracking(Arc<Tracking>);

struct Tracking {
    metrics: Metrics,
    observer: Option<Arc<dyn RequestObserver>>,
}

impl RequestTracking {
    pub fn new(metrics: Metrics, observer: Option<Arc<dyn RequestObserver>>) -> Self {
        Self(Arc::new(Tracking { metrics, observer }))
    }
}

/// Refuse a request whose declared `Content-Length` is over `limit` before its body is
/// read: 413 at once, instead of waiting for a body that would be refused anyway (and,
/// with `Expect: 100-continue`, without inviting the client to send it: the server sends
/// `100 Continue` only when a handler starts reading).
pub async fn refuse_oversized(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge(format!(
            "request body of {} bytes is larger than the configured limit ({limit} bytes)",
            declared.unwrap_or_default()
        )));
    }
    Ok(next.run(request).await)
}

pub async fn require_bearer(
    State(auth): State<ApiAuth>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if auth.admits(request.headers()) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Abandon a request that takes longer than `limit` (a slow client body, a slow or locked
/// store) with 503 in the error shape. Dropping the handler's future cancels its store
/// call; a transition is one statement, so it either committed or did not.
pub async fn request_timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limit).into_response(),
    }
}

pub async fn track_requests(
    State(tracking): State<RequestTracking>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let wall_start = SystemTime::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let tracking = &tracking.0;
    let status = response.status().as_u16();
    match response.extensions().get::<super::error::Failure>() {
        Some(failure) => failure.log(&route, &method, status),
        None if status >= 500 => {
            tracing::error!(route = %route, method = %method, status, "request failed")
        }
        None => {}
    }
    let code = status.to_string();
    let labels = [route.as_str(), method.as_str(), code.as_str()];
    tracking
        .metrics
        .http_requests
        .with_label_values(&labels)
        .inc();
    tracking
        .metrics
        .http_duration
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    if let Some(observer) = &tracking.observer {
        observer.request_served(&ServedRequest {
            route: &route,
            method: &method,
            status,
            started: wall_start,
            ended: SystemTime::now(),
        });
    }
    response
}

/// With an observed table (`--observe-only`) every write answers 403 `observe_only`
/// before its body is read: the table belongs to another service.
pub async fn refuse_writes(
    State(observe_only): State<bool>,
    request: Request,
    next: Next,
) -> Response {
    let read = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if observe_only && !read {
        return ApiError::ObserveOnly.into_response();
    }
    next.run(request).await
}
