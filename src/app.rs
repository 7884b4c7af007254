//! Building and running the service from listeners the caller binds, so tests run it on
//! port 0: the API, the metrics listener, and the scanner loop, stopped together.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::api::{self, ApiAuth, ApiSettings};
use crate::clock::SystemClock;
use crate::config::{self, GlobalArgs, ServeArgs};
use crate::metrics::Metrics;
use crate::scan::{Lease, Scanner};
use crate::store::{self, PoolOptions, Store};
use crate::telemetry::otlp::{OtlpConfig, Pipeline};

/// The metrics listener: `/metrics` from the last snapshot, never waiting on the store.
pub struct MetricsServer {
    listener: TcpListener,
    router: Router,
    local_addr: SocketAddr,
}

impl MetricsServer {
    pub fn new(listener: TcpListener, metrics: Metrics, auth: ApiAuth) -> anyhow::Result<Self> {
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
}

async fn render_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics.render(),
    )
}

async fn metrics_auth(State(auth): State<ApiAuth>, request: Request, next: Next) -> Response {
    if !auth.is_enabled() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if auth.accepts(token.as_bytes()) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer")],
            "missing or invalid bearer token\n",
        )
            .into_response(),
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    local_addr: SocketAddr,
    metrics: Metrics,
    metrics_server: Option<MetricsServer>,
    scanner: Option<Scanner>,
    otlp: Option<OtlpConfig>,
}

impl Application {
    /// Connect the store, apply migrations, bind both listeners, set up the scanner.
    pub async fn build(global: &GlobalArgs, serve: &ServeArgs) -> anyhow::Result<Self> {
        let tokens = config::load_api_tokens(serve)?;
        config::check_listen_security(serve.listen, &tokens, serve.insecure_no_auth)?;
        let scan_config = serve.scan.to_config()?;
        let store = open_store(global, Some(serve.scan.scan_statement_timeout)).await?;
        store
            .migrate()
            .await
            .with_context(|| format!("migrating {}", global.database_url))?;
        let listener = TcpListener::bind(serve.listen)
            .await
            .with_context(|| format!("binding the API listener on {}", serve.listen))?;
        let metrics_listener = TcpListener::bind(serve.metrics_listen)
            .await
            .with_context(|| format!("binding the metrics listener on {}", serve.metrics_listen))?;
        let settings = ApiSettings {
            auth: ApiAuth::new(tokens),
            max_body_bytes: serve.max_body_bytes,
            request_timeout: serve.request_timeout,
        };
        let metrics = Metrics::new();
        let scanner = Scanner::new(
            store.clone(),
            Lease::for_store(&global.database_url),
            scan_config,
            Arc::new(SystemClock),
            metrics.clone(),
        );
        let metrics_server = MetricsServer::new(
            metrics_listener,
            metrics.clone(),
            ApiAuth::new(serve.metrics_token.clone()),
        )?;
        let otlp = OtlpConfig::from_env().context("reading the OTEL_* configuration")?;
        let mut app = Self::from_parts(listener, store, &settings, metrics)?
            .with_metrics_server(metrics_server)
            .with_scanner(scanner);
        app.otlp = otlp;
        Ok(app)
    }

    /// The API alone, from parts the caller made (tests: a port-0 listener and a fresh
    /// store). Add the metrics listener and the scanner with the `with_` methods.
    pub fn from_parts(
        listener: TcpListener,
        store: Store,
        settings: &ApiSettings,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let local_addr = listener.local_addr()?;
        let router = api::router(store, settings).layer(middleware::from_fn_with_state(
            metrics.clone(),
            crate::metrics::track_http,
        ));
        Ok(Self {
            listener,
            router,
            local_addr,
            metrics,
            metrics_server: None,
            scanner: None,
            otlp: None,
        })
    }

    pub fn with_metrics_server(mut self, server: MetricsServer) -> Self {
        self.metrics_server = Some(server);
        self
    }

    pub fn with_scanner(mut self, scanner: Scanner) -> Self {
        self.scanner = Some(scanner);
        self
    }

    /// Push metrics and spans over OTLP while running.
    pub fn with_otlp(mut self, config: OtlpConfig) -> Self {
        self.otlp = Some(config);
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(MetricsServer::local_addr)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serve until `shutdown` resolves, then finish in-flight requests and release the
    /// scanner lease.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });

        // OTLP starts first and stops last, so it flushes what the others produced.
        let (otlp_stop_tx, otlp_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut scanner = self.scanner;
        let otlp = match self.otlp {
            Some(config) => match Pipeline::new(config, self.metrics.clone()) {
                Ok(pipeline) => {
                    let sink = pipeline.sink();
                    self.metrics.set_span_sink(sink.clone());
                    scanner = scanner.map(|s| s.with_spans(sink));
                    Some(tokio::spawn(pipeline.run_until_stopped(async {
                        let _ = otlp_stop_rx.await;
                    })))
                }
                Err(e) => {
                    tracing::error!(error = %e, "OTLP export disabled: cannot set up the exporter");
                    None
                }
            },
            None => None,
        };
        let scanner = scanner.map(|scanner| tokio::spawn(scanner.run_until_stopped(stopped())));
        let metrics_server = self.metrics_server.map(|server| {
            tracing::info!(addr = %server.local_addr, "metrics listening");
            let stop = stopped();
            tokio::spawn(async move {
                axum::serve(server.listener, server.router)
                    .with_graceful_shutdown(stop)
                    .await
            })
        });
        tracing::info!(addr = %self.local_addr, "API listening");
        let api = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(stopped())
            .await;
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        if let Some(scanner) = scanner {
            let _ = scanner.await;
        }
        let _ = otlp_stop_tx.send(());
        if let Some(otlp) = otlp {
            let _ = otlp.await;
        }
        api
    }
}

/// Open the store the global flags name; `scan_statement_timeout` caps the scanner's
/// queries (Postgres).
pub async fn open_store(
    global: &GlobalArgs,
    scan_statement_timeout: Option<Duration>,
) -> anyhow::Result<Store> {
    let options = PoolOptions {
        max_connections: global.db_max_connections,
        acquire_timeout: global.db_acquire_timeout,
        statement_timeout: Some(global.db_statement_timeout).filter(|t| !t.is_zero()),
        scan_statement_timeout: scan_statement_timeout.filter(|t| !t.is_zero()),
    };
    store::connect(&global.database_url, &options)
        .await
        .with_context(|| format!("opening the store at {}", global.database_url))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
