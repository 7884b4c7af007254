//! Building and running the service from a listener the caller binds, so tests run it on
//! port 0.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, ApiAuth, ApiSettings};
use crate::config::{self, GlobalArgs, ServeArgs};
use crate::store::{self, PoolOptions, Store};

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    local_addr: SocketAddr,
}

impl Application {
    /// Connect the store, apply migrations, bind the API listener.
    pub async fn build(global: &GlobalArgs, serve: &ServeArgs) -> anyhow::Result<Self> {
        let tokens = config::load_api_tokens(serve)?;
        config::check_listen_security(serve.listen, &tokens, serve.insecure_no_auth)?;
        let store = open_store(global).await?;
        store
            .migrate()
            .await
            .with_context(|| format!("migrating {}", global.database_url))?;
        let listener = TcpListener::bind(serve.listen)
            .await
            .with_context(|| format!("binding the API listener on {}", serve.listen))?;
        let settings = ApiSettings {
            auth: ApiAuth::new(tokens),
            max_body_bytes: serve.max_body_bytes,
        };
        Self::from_parts(listener, store, &settings)
    }

    /// Assemble from parts the caller made (tests: a port-0 listener and a fresh store).
    pub fn from_parts(
        listener: TcpListener,
        store: Store,
        settings: &ApiSettings,
    ) -> anyhow::Result<Self> {
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            router: api::router(store, settings),
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Serve until `shutdown` resolves, then finish in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr, "API listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

pub async fn open_store(global: &GlobalArgs) -> anyhow::Result<Store> {
    let options = PoolOptions {
        max_connections: global.db_max_connections,
        acquire_timeout: global.db_acquire_timeout,
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
