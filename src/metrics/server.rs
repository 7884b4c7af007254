//! The metrics listener: `/metrics` from the last snapshot, never waiting on the store,
//! behind an optional bearer token.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::Metrics;
use crate::auth::ApiAuth;

/// `/metrics` and `/healthz` on a listener of their own.
pub struct MetricsServer {
    listener: TcpListener,
    router: Router,
    local_addr: SocketAddr,
}

impl MetricsServer {
    pub fn new(listener: TcpListener, metrics: Metrics, auth: ApiAuth) -> std::io::Result<Self> {
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
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `stop` resolves.
    pub async fn run_until_stopped(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr, "metrics listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(stop)
            .await
    }
}

async fn render_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.render(),
    )
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
