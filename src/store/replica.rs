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

/// Where one scan reads, and its clock.
pub struct ScanPoint {
    pub store: Store,
    pub reads: ScanReads,
    /// What the scan may settle up to (before the late-commit window): `db_now`, or on a
    /// read replica its replay point.
    pub visible: DateTime<Utc>,
    /// How far the read replica was behind, when it was asked.
    pub lag: Option<Duration>,
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

    /// The store one scan reads through, where that is, and its clock: the read replica
    /// while it answers within `--read-max-lag`; else, with `--read-fallback-primary`, the
    /// primary (the whole scan on one server). Switching loses and repeats nothing: the
    /// low bound only ever rises, and a run read on one server is not counted again on the
    /// other (the scanner keeps the ids of every run completed after it).
    pub async fn for_scan(&self) -> Result<ScanPoint> {
        let measured = async {
            let now = self.scan().db_now().await?;
            let (visible, lag) = self.visible_until(now).await?;
            Ok::<_, super::StoreError>((visible, lag))
        }
        .await;
        let point = |store: &Store, reads, (visible, lag)| ScanPoint {
            store: store.clone(),
            reads,
            visible,
            lag: (reads != ScanReads::Primary).then_some(lag),
        };
        let (max_lag, primary) = match (self.read_replica, &self.fallback) {
            (None, _) => return Ok(point(self, ScanReads::Primary, measured?)),
            (Some(_), None) => return Ok(point(self, ScanReads::Replica, measured?)),
            (Some(max_lag), Some(primary)) => (max_lag, primary),
        };
        let lag = match measured {
            Ok(m) if m.1 <= max_lag => return Ok(point(self, ScanReads::Replica, m)),
            Ok(m) => {
                tracing::warn!(lag = ?m.1, "the read replica lags: this scan reads the primary");
                Some(m.1)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the read replica cannot be read: this scan reads the primary");
                None
            }
        };
        let store = Store {
            scan: primary.scan.clone(),
            live: primary.live.clone(),
            pages: primary.pages.clone(),
            reads: primary.reads.clone(),
            read_replica: None,
            fallback: None,
            ..self.clone()
        };
        let db_now = store.scan().db_now().await?;
        Ok(ScanPoint {
            store,
            reads: ScanReads::Fallback,
            visible: db_now,
            lag,
        })
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
