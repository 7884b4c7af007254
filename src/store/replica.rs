//! A hot standby for the sync log's reads: the scanner's, the status page's and the API's
//! `GET`s go to it; writes, the lease, retention, the reaper's updates and the scanner's
//! state stay on the primary (or the state store).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Result, Store};

impl Store {
    /// This store with the sync log's reads from `replica`: a hot standby of the same
    /// database, opened read-only with the same table mapping. `max_lag` is the replay
    /// lag `/readyz` tolerates.
    pub fn with_reads(self, replica: Store, max_lag: Duration) -> Store {
        Store {
            scan: replica.scan,
            live: replica.live,
            pages: replica.pages,
            reads: replica.runs,
            skipped: replica.skipped,
            read_replica: Some(max_lag),
            ..self
        }
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
