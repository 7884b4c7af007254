//! The metrics listener: `/metrics` from the last snapshot, never waiting on the store,
//! behind an optional bearer token.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::{accepts_gzip, Format, Metrics};
use crate::auth::ApiAuth;
use crate::server::HttpLimits;

/// `/metrics` and `/healthz` on a listener of their own.
pub struct MetricsServer {
    listener: TcpListener,
    router: Router,
    local_addr: SocketAddr,
    header_read_timeout: Duration,
    max_connections: usize,
}

impl MetricsServer {
    pub fn new(
        listener: TcpListener,
        metrics: Metrics,
        auth: ApiAuth,
        limits: &HttpLimits,
    ) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let router = Router::new()
            .route("/metrics", get(render_metrics))
            .route_layer(middleware::from_fn_with_state(auth, metrics_auth))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(metrics);
        Ok(Self {
            listener,
            router,
            local_addr,
            header_read_timeout: limits.header_read_timeout,
            max_connections: limits.metrics_max_connections,
        })
    }

    /// Serve until `stop` resolves.
    pub async fn run_until_stopped(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr, "metrics listening");
        crate::server::serve(
            self.listener,
            self.router,
            self.header_read_timeout,
            self.max_connections,
            stop,
        )
        .await
    }
}

/// The stored exposition in the format the scraper prefers (OpenMetrics, with exemplars,
/// when its `Accept` header ranks it first, as Prometheus's does; the Prometheus text
/// format otherwise): gzip when the scraper accepts it (Prometheus always does), plain
/// otherwise.
async fn render_metrics(State(metrics): State<Metrics>, headers: HeaderMap) -> Response {
    let gzip = headers
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let format = Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    // Copies of stored bytes (under a millisecond even at 100k series); only a scrape that
    // arrives before the encoder thread has finished encodes here, once.
    let body = metrics.render_in(format, gzip);
    let mut response = (
        [
            (CONTENT_TYPE, format.content_type()),
            (VARY, "Accept, Accept-Encoding"),
        ],
        body,
    )
        .into_response();
    if gzip {
        response
            .headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

async fn metrics_auth(State(auth): State<ApiAuth>, request: Request, next: Next) -> Response {
    if auth.admits(request.headers()) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", "Bearer")],
        "missing or invalid bearer token\n",
    )
        .into_response()
}
