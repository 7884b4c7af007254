//! The HTTP API (axum): routes, request extraction, errors, authentication.

mod auth;
mod error;
mod extract;
mod health;
mod sync_logs;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};

use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

pub use auth::ApiAuth;
pub use error::ApiError;
pub use health::OPENAPI_JSON;
pub use sync_logs::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub auth: ApiAuth,
    pub max_body_bytes: usize,
    /// Longest a request may take (reading its body included) before it gets 503.
    pub request_timeout: Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            auth: ApiAuth::default(),
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// Every route the API serves, as `(method, path template)`. The OpenAPI document is
/// tested against this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/sync-logs"),
    ("get", "/v1/sync-logs"),
    ("get", "/v1/sync-logs/{id}"),
    ("delete", "/v1/sync-logs/{id}"),
    ("post", "/v1/sync-logs/{id}/start"),
    ("post", "/v1/sync-logs/{id}/heartbeat"),
    ("post", "/v1/sync-logs/{id}/succeed"),
    ("post", "/v1/sync-logs/{id}/fail"),
    ("get", "/v1/connector-status"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
];

pub fn router(store: Store, settings: &ApiSettings) -> Router {
    let state = AppState { store };
    let v1 = Router::new()
        .route(
            "/v1/sync-logs",
            post(sync_logs::create).get(sync_logs::list),
        )
        .route(
            "/v1/sync-logs/{id}",
            get(sync_logs::get).delete(sync_logs::delete),
        )
        .route("/v1/sync-logs/{id}/start", post(sync_logs::start))
        .route("/v1/sync-logs/{id}/heartbeat", post(sync_logs::heartbeat))
        .route("/v1/sync-logs/{id}/succeed", post(sync_logs::succeed))
        .route("/v1/sync-logs/{id}/fail", post(sync_logs::fail))
        .route("/v1/connector-status", get(sync_logs::connector_status))
        .route_layer(middleware::from_fn_with_state(
            settings.auth.clone(),
            auth::require_bearer,
        ));
    Router::new()
        .merge(v1)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(health::openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            settings.request_timeout,
            request_timeout,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str);
                tracing::info_span!("http_request", method = %request.method(), route)
            }),
        )
        .with_state(state)
}

/// Abandon a request that takes longer than `limit` (a slow client body, a slow or locked
/// store) with 503 in the error shape. Dropping the handler's future cancels its store
/// call; a transition is one statement, so it either committed or did not.
async fn request_timeout(
    State(limit): State<Duration>,
    request: Request,
    next: middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limit).into_response(),
    }
}

async fn not_found() -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({
        "error": { "code": "not_found", "message": "no such route" }
    });
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn method_not_allowed() -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({
        "error": { "code": "method_not_allowed", "message": "method not allowed on this route" }
    });
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}
