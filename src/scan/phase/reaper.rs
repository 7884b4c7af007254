//! The reaper: with `--reap-stuck-after`, the leader fails runs stuck for that long,
//! through the same compare-and-set as the API.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::Action;
use crate::scan::{chrono_duration, ScanError, Scanner};
use crate::store::{Change, StoreError, StuckCutoffs};

impl Scanner {
    /// Fail runs stuck for longer than `after`, through the API's compare-and-set.
    pub(crate) async fn reap(
        &self,
        now: DateTime<Utc>,
        after: Duration,
    ) -> Result<usize, ScanError> {
        let cutoff = now - chrono_duration(after);
        let cutoffs = StuckCutoffs {
            scheduled_before: cutoff,
            idle_before: cutoff,
            started_before: now - chrono_duration(self.config.max_run_duration.max(after)),
        };
        let ids = self.store.live().stuck_runs(&cutoffs).await?;
        let mut reaped = 0;
        for id in ids {
            let change = Change {
                error: Some(format!(
                    "reaped by syncwatch: stuck (not started, no heartbeat, or running too \
                     long) for more than {}s (--reap-stuck-after)",
                    after.as_secs()
                )),
                ..Change::new(Action::Fail)
            };
            match self.store.runs().apply(id, &change).await {
                Ok(_) => reaped += 1,
                // Finished or deleted meanwhile: the orchestrator won the race.
                Err(StoreError::InvalidTransition(_) | StoreError::NotFound) => {}
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if reaped > 0 {
            tracing::warn!(reaped, "failed stuck runs");
        }
        Ok(reaped)
    }
}
