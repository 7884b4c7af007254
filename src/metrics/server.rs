//! The metrics listener: `/metrics` from the last snapshot, never waiting on the store,
//! behind an optional bearer token.

use std::net::SocketAddr;
use std::time::Duration;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::{accepts_gzip, Format, Metrics, Rendered};
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
    // The stored domain section, shared by every scrape of the snapshot (not copied), then
    // the self metrics; only a scrape that arrives before the encoder thread has finished
    // encodes here, once.
    let Rendered { domain, own } = metrics.render_parts(format, gzip);
    let mut response = (
        [
            (CONTENT_TYPE, format.content_type()),
            (VARY, "Accept, Accept-Encoding"),
        ],
        Body::new(TwoChunks([Some(domain), Some(Bytes::from(own))])),
    )
        .into_response();
    if gzip {
        response
            .headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// A body of two chunks, sent as they are (a `Content-Length` of both).
struct TwoChunks([Option<Bytes>; 2]);

impl HttpBody for TwoChunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let next = self.0.iter_mut().find_map(Option::take);
        Poll::Ready(next.map(|chunk| Ok(http_body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let len = self.0.iter().flatten().map(|c| c.len() as u64).sum();
        http_body::SizeHint::with_exact(len)
    }
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
