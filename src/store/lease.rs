//! The scanner lease: on Postgres a session-level advisory lock held on a dedicated
//! connection outside the pool; on SQLite the one process always leads.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use super::{Backend, DatabaseUrl};

/// Advisory lock key: the bytes of "syncwatc" as a big-endian integer.
pub const LEASE_KEY: i64 = 0x7379_6e63_7761_7463;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a lease check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// This replica holds the lease.
    Leader,
    /// Another replica holds it.
    Follower,
    /// The database could not be asked (unreachable, or too slow to answer).
    Unknown(String),
}

pub enum Lease {
    /// The single process leads (SQLite).
    Always,
    Postgres {
        url: DatabaseUrl,
        held: Option<PgConnection>,
    },
}

impl Lease {
    pub fn for_store(url: &DatabaseUrl) -> Self {
        match url.backend() {
            Backend::Sqlite => Lease::Always,
            Backend::Postgres => Lease::Postgres {
                url: url.clone(),
                held: None,
            },
        }
    }

    /// Whether this replica leads now. Checks a held lease is still alive (its session
    /// answers); a lost session means a lost lock, and we try to take it again. When the
    /// database cannot be reached at all the answer is [`Leadership::Unknown`].
    pub async fn check(&mut self) -> Leadership {
        let Lease::Postgres { url, held } = self else {
            return Leadership::Leader;
        };
        if let Some(conn) = held.as_mut() {
            let alive = tokio::time::timeout(CONNECT_TIMEOUT, conn.ping())
                .await
                .is_ok_and(|r| r.is_ok());
            if alive {
                return Leadership::Leader;
            }
            tracing::warn!("scanner lease connection lost; leadership dropped");
            *held = None;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, try_lock(url)).await {
            Ok(Ok(Some(conn))) => {
                tracing::info!("scanner lease acquired; this replica exports domain metrics");
                *held = Some(conn);
                Leadership::Leader
            }
            Ok(Ok(None)) => Leadership::Follower,
            Ok(Err(e)) => Leadership::Unknown(format!(
                "the store is unreachable (cannot take the scanner lease): {e}"
            )),
            Err(_) => Leadership::Unknown(format!(
                "timed out after {CONNECT_TIMEOUT:?} taking the scanner lease"
            )),
        }
    }

    /// Give the lease up (on shutdown), so another replica takes over at once.
    pub async fn release(&mut self) {
        if let Lease::Postgres { held, .. } = self {
            if let Some(conn) = held.take() {
                let _ = conn.close().await;
            }
        }
    }
}

async fn try_lock(url: &DatabaseUrl) -> Result<Option<PgConnection>, sqlx::Error> {
    let mut conn = PgConnection::connect(url.expose()).await?;
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
        .bind(LEASE_KEY)
        .fetch_one(&mut conn)
        .await?;
    if locked {
        Ok(Some(conn))
    } else {
        let _ = conn.close().await;
        Ok(None)
    }
}
