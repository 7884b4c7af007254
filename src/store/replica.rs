//! A hot standby for the sync log's reads: the scanner's, the status page's and the API's
//! `GET`s go to it; writes, the lease, retention, the reaper's updates and the scanner's
//! state stay on the primary (or the state store).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{LiveReads, PageReads, Result, RunStore, ScanSource, Store};

/// The read parts of a store: what a scan, the status page and the API's `GET`s read.
pub(super) struct Reads {
    scan: Arc<dyn ScanSource>,
    live: Arc<dyn LiveReads>,
    pages: Arc<dyn PageReads>,
    reads: Arc<dyn RunStore>,
}

/// Where a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanReads {
    /// No read replica: the primary, as always.
    Primary,
    /// The read replica.
    Replica,
    /// The primary, because the replica is down or too far behind
    /// (`--read-fallback-primary`).
    Fallback,
}

impl Store {
    /// This store with the sync log's reads from `replica`: a hot standby of the same
    /// database, opened read-only with the same table mapping. `max_lag` is the replay
    /// lag `/readyz` tolerates.
    ///
    /// With `fallback`, [`Store::for_scan`] reads from the primary while the standby is
    /// down or further behind than `max_lag`.
    pub fn with_reads(self, replica: Store, max_lag: Duration, fallback: bool) -> Store {
        let primary = Reads {
            scan: self.scan.clone(),
            live: self.live.clone(),
            pages: self.pages.clone(),
            reads: self.reads.clone(),
        };
        Store {
            scan: replica.scan,
            live: replica.live,
            pages: replica.pages,
            reads: replica.runs,
            skipped: replica.skipped,
            read_replica: Some(max_lag),
            fallback: fallback.then(|| Arc::new(primary)),
            ..self
        }
    }

    /// The store one scan reads through, and where that is: the read replica while it
    /// answers within `--read-max-lag`; else, with `--read-fallback-primary`, the primary
    /// (the whole scan on one server). Switching loses and repeats nothing: the low bound
    /// only ever rises, and a run read on one server is not counted again on the other
    /// (the scanner keeps the ids of every run completed after it).
    pub async fn for_scan(&self) -> (Store, ScanReads) {
        let Some(max_lag) = self.read_replica else {
            return (self.clone(), ScanReads::Primary);
        };
        let Some(primary) = &self.fallback else {
            return (self.clone(), ScanReads::Replica);
        };
        let lag = match self.scan().db_now().await {
            Ok(now) => self.visible_until(now).await.map(|(_, lag)| lag),
            Err(e) => Err(e),
        };
        match lag {
            Ok(lag) if lag <= max_lag => return (self.clone(), ScanReads::Replica),
            Ok(lag) => {
                tracing::warn!(lag = ?lag, "the read replica lags: this scan reads the primary")
            }
            Err(e) => {
                tracing::warn!(error = %e, "the read replica cannot be read: this scan reads the primary")
            }
        }
        let store = Store {
            scan: primary.scan.clone(),
            live: primary.live.clone(),
            pages: primary.pages.clone(),
            reads: primary.reads.clone(),
            read_replica: None,
            fallback: None,
            ..self.clone()
        };
        (store, ScanReads::Fallback)
    }

    /// Where the scanner's reads stand, as of `db_now` (the clock of the database they go
    /// to): the completion time up to which every committed run is visible to them, and
    /// how far behind the primary that is (zero without a read replica, or when the
    /// standby has replayed everything it received).
    pub async fn visible_until(&self, db_now: DateTime<Utc>) -> Result<(DateTime<Utc>, Duration)> {
        if self.read_replica.is_none() {
            return Ok((db_now, Duration::ZERO));
        }
        let point = self
            .scan()
            .replay_point()
            .await?
            .unwrap_or(db_now)
            .min(db_now);
        Ok((point, (db_now - point).to_std().unwrap_or_default()))
    }
}
