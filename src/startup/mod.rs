//! Building and running the service from listeners the caller binds, so tests run it on
//! port 0: the store (opened and migrated once), the API, the metrics listener, the
//! scanner loop and the OTLP export, started and stopped together. Also the settings of
//! `serve` and of the store connection, which the CLI flattens into its flags.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use clap::Args;
use tokio::net::TcpListener;

use crate::api::{self, ApiAuth, ApiSettings};
use crate::clock::SystemClock;
use crate::metrics::{Metrics, MetricsServer};
use crate::scan::{ScanConfig, Scanner};
use crate::server::HttpLimits;
use crate::store::{Lease, Store};

mod signal;
mod store_settings;
mod supervise;

#[cfg(feature = "otlp")]
use crate::telemetry::otlp::{OtlpConfig, Pipeline};
pub use signal::shutdown_signal;
pub use store_settings::{StoreSettings, NO_STATE_STORE};

/// The flags of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address of the HTTP API.
    #[arg(long, env = "SYNCWATCH_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,

    /// Address of the metrics listener (`/metrics`).
    #[arg(
        long,
        env = "SYNCWATCH_METRICS_LISTEN",
        default_value = "127.0.0.1:9477"
    )]
    pub(crate) metrics_listen: SocketAddr,

    /// Comma-separated bearer tokens accepted on `/v1`. Prefer the file form in production.
    #[arg(
        long,
        env = "SYNCWATCH_API_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub(crate) api_tokens: Vec<String>,

    /// File with one bearer token per line (blank lines and `#` comments ignored).
    #[arg(long, env = "SYNCWATCH_API_TOKENS_FILE")]
    api_tokens_file: Option<PathBuf>,

    /// Serve `/v1` without authentication on a non-loopback address.
    #[arg(long, env = "SYNCWATCH_INSECURE_NO_AUTH")]
    insecure_no_auth: bool,

    /// Bearer token required on the metrics listener (open when unset).
    #[arg(long, env = "SYNCWATCH_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,

    #[command(flatten)]
    pub(crate) api: ApiSettings,

    #[command(flatten)]
    pub(crate) scan: ScanConfig,

    #[command(flatten)]
    pub(crate) http: HttpLimits,
}

impl ServeSettings {
    /// Tokens from the flag or environment variable plus the tokens file, trimmed, blanks
    /// dropped. A list given but holding no token (`" , "`) is an error, never an open API.
    pub(crate) fn api_tokens(&self) -> anyhow::Result<Vec<String>> {
        let mut tokens: Vec<String> = self
            .api_tokens
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if !self.api_tokens.is_empty() && tokens.is_empty() {
            anyhow::bail!(
                "--api-tokens (SYNCWATCH_API_TOKENS) is set but holds no token: name at least \
                 one, or unset it"
            );
        }
        if let Some(path) = &self.api_tokens_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read API tokens file {}: {e}", path.display())
            })?;
            tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
            if tokens.is_empty() {
                anyhow::bail!("API tokens file {} holds no token", path.display());
            }
        }
        Ok(tokens)
    }

    /// What the flags cannot say alone: the scanner's settings, and a positive request
    /// deadline (`0s` would silently be none).
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.scan.validate()?;
        self.http.validate().map_err(anyhow::Error::msg)?;
        if self.api.request_timeout.is_zero() {
            anyhow::bail!("--request-timeout must be positive (a request would never time out)");
        }
        Ok(())
    }

    /// The metrics listener's token, if any. Set but blank is an error, never an open
    /// listener.
    pub(crate) fn metrics_token(&self) -> anyhow::Result<Option<String>> {
        match self.metrics_token.as_deref().map(str::trim) {
            Some("") => anyhow::bail!(
                "--metrics-token (SYNCWATCH_METRICS_TOKEN) is set but empty: give a token, or \
                 unset it"
            ),
            token => Ok(token.map(str::to_owned)),
        }
    }
}

/// With no token configured, `/v1` is open; that is only allowed on loopback unless the
/// operator says otherwise.
fn check_listen_security(
    listen: SocketAddr,
    tokens: &[String],
    insecure_no_auth: bool,
) -> anyhow::Result<()> {
    if tokens.is_empty() && !listen.ip().is_loopback() && !insecure_no_auth {
        anyhow::bail!(
            "refusing to serve the API on {listen} without authentication: set SYNCWATCH_API_TOKENS \
             or SYNCWATCH_API_TOKENS_FILE, listen on a loopback address, or pass --insecure-no-auth"
        );
    }
    Ok(())
}

/// The running service's parts, built and not yet started.
pub struct Application {
    listener: TcpListener,
    store: Store,
    settings: ApiSettings,
    local_addr: SocketAddr,
    metrics: Metrics,
    metrics_server: Option<MetricsServer>,
    scanner: Option<Scanner>,
    http: HttpLimits,
    #[cfg(feature = "otlp")]
    otlp: Option<OtlpConfig>,
}

/// An observed table is another service's: before serving, every kind of read runs once
/// ([`Store::probe`]), so a table syncwatch cannot read (a type it does not decode, a role
/// without `SELECT`) stops the start with the reason instead of failing every scan.
async fn refuse_unreadable(opened: &Store, settings: &StoreSettings) -> anyhow::Result<()> {
    let failed: Vec<String> = opened
        .probe()
        .await
        .into_iter()
        .filter_map(|probed| {
            let read = probed.read;
            probed.outcome.err().map(|e| format!("{read}: {e}"))
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "syncwatch cannot observe {} (or read its state store or read replica): {}. \
         `syncwatch check \
         --observe-only` with the same flags shows every read and what each column needs",
        settings.table,
        failed.join("; ")
    )
}

impl Application {
    /// Connect the store, apply migrations, bind both listeners, set up the scanner.
    pub async fn build(store: &StoreSettings, serve: &ServeSettings) -> anyhow::Result<Self> {
        let tokens = serve.api_tokens()?;
        let metrics_token = serve.metrics_token()?;
        check_listen_security(serve.listen, &tokens, serve.insecure_no_auth)?;
        serve.validate()?;
        if store.observe_only {
            if serve.scan.reap_stuck_after.is_some() {
                anyhow::bail!(
                    "--reap-stuck-after fails runs in the table, and --observe-only never writes it"
                );
            }
            if serve.scan.retention.is_some() {
                anyhow::bail!(
                    "--retention deletes runs from the table, and --observe-only never writes it"
                );
            }
        }
        let opened = store
            .open_and_migrate(serve.scan.statement_timeout())
            .await?;
        // A table another service writes, or a read replica: every kind of read is run
        // once on what will serve it before the start goes on.
        if store.observe_only || opened.read_replica_max_lag().is_some() {
            refuse_unreadable(&opened, store).await?;
        }
        match crate::store::skew::check(&opened).await {
            Ok(Some(said)) => tracing::warn!("{said}"),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "cannot compare the table's times with the clock")
            }
        }
        let listener = TcpListener::bind(serve.listen)
            .await
            .with_context(|| format!("binding the API listener on {}", serve.listen))?;
        let metrics_listener = TcpListener::bind(serve.metrics_listen)
            .await
            .with_context(|| format!("binding the metrics listener on {}", serve.metrics_listen))?;
        let settings = ApiSettings {
            auth: ApiAuth::new(tokens),
            failure_rules: serve.scan.rules(),
            ..serve.api.clone()
        };
        let metrics = Metrics::new();
        if let (true, Some(url)) = (settings.ui, &settings.public_url) {
            metrics.ui_info.with_label_values(&[url.as_str()]).set(1);
        }
        let scanner = Scanner::new(
            opened.clone(),
            Lease::for_store(
                &store.database_url,
                &opened.catalogue().mapping_key(),
                serve.scan.lease_timeout,
            ),
            serve.scan.clone(),
            Arc::new(SystemClock),
            metrics.clone(),
        );
        let metrics_server = MetricsServer::new(
            metrics_listener,
            metrics.clone(),
            ApiAuth::new(metrics_token),
            &serve.http,
        )?;
        #[allow(unused_mut)]
        let mut app = Self::from_parts(listener, opened, &settings, metrics)?
            .with_metrics_server(metrics_server)
            .with_scanner(scanner);
        app.http = serve.http.clone();
        #[cfg(feature = "otlp")]
        {
            app.otlp = OtlpConfig::from_env().context("reading the OTEL_* configuration")?;
        }
        Ok(app)
    }

    /// The API alone, from parts the caller made (tests: a port-0 listener and a fresh
    /// store). Add the metrics listener and the scanner with the `with_` methods.
    pub(crate) fn from_parts(
        listener: TcpListener,
        store: Store,
        settings: &ApiSettings,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            store,
            settings: settings.clone(),
            local_addr,
            metrics,
            metrics_server: None,
            scanner: None,
            http: HttpLimits::default(),
            #[cfg(feature = "otlp")]
            otlp: None,
        })
    }

    fn with_metrics_server(mut self, server: MetricsServer) -> Self {
        self.metrics_server = Some(server);
        self
    }

    fn with_scanner(mut self, scanner: Scanner) -> Self {
        self.scanner = Some(scanner);
        self
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `shutdown` resolves, then finish in-flight requests, release the
    /// scanner lease and flush the OTLP export.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let stop_on_signal = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_on_signal.send(true);
        });

        #[cfg_attr(not(feature = "otlp"), allow(unused_mut))]
        let mut scanner = self.scanner;
        // OTLP starts first and stops last, so it flushes what the others produced.
        #[cfg(feature = "otlp")]
        let (otlp, request_observer) = {
            let (stop, stopped_otlp) = tokio::sync::oneshot::channel::<()>();
            match self.otlp.map(|c| Pipeline::new(c, self.metrics.clone())) {
                Some(Ok(pipeline)) => {
                    let sink = Arc::new(pipeline.sink());
                    scanner = scanner.map(|s| s.with_observer(sink.clone()));
                    let task = tokio::spawn(pipeline.run_until_stopped(async {
                        let _ = stopped_otlp.await;
                    }));
                    let observer: Arc<dyn api::RequestObserver> = sink;
                    (Some((stop, task)), Some(observer))
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "OTLP export disabled: cannot set up the exporter");
                    (None, None)
                }
                None => (None, None),
            }
        };
        #[cfg(not(feature = "otlp"))]
        let request_observer = None;

        let router: Router = api::router(
            self.store,
            &self.settings,
            self.metrics.clone(),
            request_observer,
        );
        let scanner = scanner.map(|scanner| {
            supervise::supervise("scanner", scanner.run_until_stopped(stopped()), stop_tx)
        });
        let metrics_server = self
            .metrics_server
            .map(|server| tokio::spawn(server.run_until_stopped(stopped())));
        tracing::info!(addr = %self.local_addr, "API listening");
        let api = crate::server::serve(
            self.listener,
            router,
            self.http.header_read_timeout,
            self.http.max_connections,
            stopped(),
        )
        .await;
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        let scanner = match scanner {
            Some(task) => task.await.unwrap_or_else(|e| Err(e.to_string())),
            None => Ok(()),
        };
        #[cfg(feature = "otlp")]
        if let Some((stop, task)) = otlp {
            let _ = stop.send(());
            let _ = task.await;
        }
        api.and(scanner.map_err(std::io::Error::other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_api_only_on_loopback_unless_forced() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let local6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert!(check_listen_security(public, &[], false).is_err());
        assert!(check_listen_security(public, &[], true).is_ok());
        assert!(check_listen_security(public, &["t".into()], false).is_ok());
        assert!(check_listen_security(local, &[], false).is_ok());
        assert!(check_listen_security(local6, &[], false).is_ok());
    }
}
