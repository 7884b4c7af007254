//! The HTTP listeners' connection handling, shared by the API and the metrics listener:
//! HTTP/1.1 through hyper with a header-read timeout that also bounds how long an idle
//! keep-alive connection is kept, and a cap on open connections (at the cap the listener
//! stops accepting; new connections wait in the kernel's backlog until one closes).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a connection may hold the listener without a complete request, and how many
/// may be open at once.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpLimits {
    /// Longest a client may take to send a request's headers, counted from when its
    /// connection opens or its previous response was sent (so also how long an idle
    /// keep-alive connection is kept); the connection is then closed. Both listeners.
    #[arg(long, env = "SYNCWATCH_HEADER_READ_TIMEOUT", value_parser = crate::settings::parse_duration, default_value = "15s")]
    pub header_read_timeout: Duration,

    /// Most connections the API listener keeps open at once; further ones wait to be
    /// accepted until one closes.
    #[arg(long, env = "SYNCWATCH_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,

    /// Most connections the metrics listener keeps open at once (scrapers are few).
    #[arg(long, env = "SYNCWATCH_METRICS_MAX_CONNECTIONS", default_value_t = 64)]
    pub metrics_max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        crate::settings::defaults()
    }
}

impl HttpLimits {
    /// Refuses limits that would disable what they bound.
    pub fn validate(&self) -> Result<(), String> {
        if self.header_read_timeout.is_zero() {
            return Err("--header-read-timeout must be positive".into());
        }
        if self.max_connections == 0 || self.metrics_max_connections == 0 {
            return Err(
                "--max-connections and --metrics-max-connections must be at least 1".into(),
            );
        }
        Ok(())
    }
}

/// Serves `router` on `listener` with `header_read_timeout`, at most `max_connections`
/// at once, until `stop` resolves; then stops accepting and waits for the open
/// connections to finish their requests (idle ones close at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    max_connections: usize,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let slots = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            () = &mut stop => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (socket, _peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: the error persists for a
                    // moment, so wait rather than spin.
                    tracing::error!(error = %e, "accept error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(socket), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
