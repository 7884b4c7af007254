//! The HTTP API (axum): routes, request extraction, errors, and the layers around them
//! (authentication, deadline, request metrics).

mod error;
mod extract;
mod health;
mod middleware;
mod openapi;
mod sync_logs;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::TraceLayer;

pub use crate::auth::ApiAuth;
pub use error::ApiError;
pub use middleware::{RequestObserver, ServedRequest};
pub use openapi::OPENAPI_JSON;
pub use sync_logs::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

use crate::domain::Action;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every handler reads.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

/// The API's settings; `ApiSettings::default()` is the set of flag defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiSettings {
    /// The accepted bearer tokens (from `--api-tokens` and `--api-tokens-file`).
    #[arg(skip)]
    pub auth: ApiAuth,

    /// Largest request body accepted; larger ones get 413.
    #[arg(long, env = "SYNCWATCH_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Longest an API request may take, body upload included; slower requests get 503.
    #[arg(long, env = "SYNCWATCH_REQUEST_TIMEOUT", value_parser = crate::settings::parse_duration, default_value = "15s")]
    pub request_timeout: Duration,

    /// Serve the read-only status page under `/ui` (`--ui false` turns it off).
    #[arg(long, env = "SYNCWATCH_UI", default_value_t = true, action = clap::ArgAction::Set)]
    pub ui: bool,

    /// The status page's external base URL (scheme, host, optional path prefix), as the
    /// on-call engineer's browser reaches it; exported as `syncwatch_ui_info{public_url}`,
    /// from which the alert rules build their `status_url` annotation.
    #[arg(long, env = "SYNCWATCH_PUBLIC_URL")]
    pub public_url: Option<crate::ui::PublicUrl>,

    /// The failure rules the pages classify error text with (the scanner's).
    #[arg(skip)]
    pub failure_rules: Arc<crate::scan::FailureRules>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        crate::settings::defaults()
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

/// The API's routes and layers. Requests are counted into `metrics` and, when given,
/// reported to `observer`.
pub fn router(
    store: Store,
    settings: &ApiSettings,
    metrics: Metrics,
    observer: Option<Arc<dyn RequestObserver>>,
) -> Router {
    use axum::middleware::from_fn_with_state;
    let observe_only = store.observe_only();
    let ui = settings.ui.then(|| {
        let state = crate::ui::UiState::new(
            store.clone(),
            metrics.clone(),
            settings.failure_rules.clone(),
            settings.public_url.as_ref(),
        );
        crate::ui::router(state, settings.auth.clone())
    });
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
        .route(
            "/v1/sync-logs/{id}/heartbeat",
            post(|s, id, body| sync_logs::with_metadata(Action::Heartbeat, s, id, body)),
        )
        .route(
            "/v1/sync-logs/{id}/succeed",
            post(|s, id, body| sync_logs::with_metadata(Action::Succeed, s, id, body)),
        )
        .route("/v1/sync-logs/{id}/fail", post(sync_logs::fail))
        .route("/v1/connector-status", get(sync_logs::connector_status))
        .route_layer(from_fn_with_state(observe_only, middleware::refuse_writes))
        .route_layer(from_fn_with_state(
            settings.auth.clone(),
            middleware::require_bearer,
        ));
    Router::new()
        .merge(v1)
        .merge(ui.unwrap_or_default())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(from_fn_with_state(
            settings.request_timeout,
            middleware::request_timeout,
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
        .layer(from_fn_with_state(
            middleware::RequestTracking { metrics, observer },
            middleware::track_requests,
        ))
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
