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
use axum::handler::Handler;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tower_http::trace::TraceLayer;

pub use crate::auth::ApiAuth;
pub(crate) use error::ApiError;
pub use middleware::{RequestObserver, ServedRequest};
pub(crate) use openapi::OPENAPI_JSON;

use crate::domain::Action;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every handler reads.
#[derive(Clone)]
pub(crate) struct AppState {
    /// Shared: every request clones the state, and a `Store` is a dozen pointers.
    pub store: Arc<Store>,
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
    pub failure_rules: Arc<crate::domain::FailureRules>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        crate::settings::defaults()
    }
}

/// One route of the API: its method, its path template and its handler. The router is
/// built from [`routes`] and from nothing else, so that list is the router's own (the
/// OpenAPI test compares the document with it).
pub(crate) struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// Behind the bearer-token check (and refused when observing, for writes).
    pub authenticated: bool,
    handler: MethodRouter<AppState>,
}

impl Route {
    fn new<H, T>(method: MethodFilter, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let name = [
            (MethodFilter::GET, "get"),
            (MethodFilter::POST, "post"),
            (MethodFilter::DELETE, "delete"),
        ]
        .into_iter()
        .find_map(|(filter, name)| (filter == method).then_some(name))
        .expect("a method the API serves");
        Self {
            method: name,
            path,
            authenticated: path.starts_with("/v1/"),
            handler: on(method, handler),
        }
    }
}

/// Every route the API serves (the status page's are `ui::router`'s).
pub(crate) fn routes() -> Vec<Route> {
    use MethodFilter as M;
    vec![
        Route::new(M::POST, "/v1/sync-logs", sync_logs::create),
        Route::new(M::GET, "/v1/sync-logs", sync_logs::list),
        Route::new(M::GET, "/v1/sync-logs/{id}", sync_logs::get),
        Route::new(M::DELETE, "/v1/sync-logs/{id}", sync_logs::delete),
        Route::new(M::POST, "/v1/sync-logs/{id}/start", sync_logs::start),
        Route::new(M::POST, "/v1/sync-logs/{id}/heartbeat", |s, id, body| {
            sync_logs::with_metadata(Action::Heartbeat, s, id, body)
        }),
        Route::new(M::POST, "/v1/sync-logs/{id}/succeed", |s, id, body| {
            sync_logs::with_metadata(Action::Succeed, s, id, body)
        }),
        Route::new(M::POST, "/v1/sync-logs/{id}/fail", sync_logs::fail),
        Route::new(M::GET, "/v1/connector-status", sync_logs::connector_status),
        Route::new(M::GET, "/healthz", health::healthz),
        Route::new(M::GET, "/readyz", health::readyz),
        Route::new(M::GET, "/openapi.json", openapi::openapi),
    ]
}

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
    let state = AppState {
        store: Arc::new(store),
    };
    let (mut v1, mut open) = (Router::new(), Router::new());
    for route in routes() {
        if route.authenticated {
            v1 = v1.route(route.path, route.handler);
        } else {
            open = open.route(route.path, route.handler);
        }
    }
    let v1 = v1
        .route_layer(from_fn_with_state(observe_only, middleware::refuse_writes))
        .route_layer(from_fn_with_state(
            settings.auth.clone(),
            middleware::require_bearer,
        ));
    Router::new()
        .merge(v1)
        .merge(ui.unwrap_or_default())
        .merge(open)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(from_fn_with_state(
            settings.max_body_bytes,
            middleware::refuse_oversized,
        ))
        .layer(from_fn_with_state(
            settings.request_timeout,
            middleware::request_timeout,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    // At debug, as are the store calls' spans: at info they cost ~3 % of the
                    // server's CPU on the write path (BENCHMARKS.md §3). Failures are logged,
                    // once and with their route, by `track_requests`.
                    tracing::debug_span!("http_request", method = %request.method(), route)
                })
                .on_failure(()),
        )
        .with_state(state)
        .layer(from_fn_with_state(
            middleware::RequestTracking::new(metrics, observer),
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
