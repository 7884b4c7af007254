//! The fleet views on a replica that does not hold the scanner lease: the failing
//! connections, and each connector's count of them and latest success, from the
//! connection states the leader saved with its last checkpoint (read at most once per
//! [`SAVED_TTL`], however often the pages are loaded). What the states do not hold (live,
//! stuck, overdue and overrunning runs) is the leader's page's only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::UiState;
use crate::domain::Status;
use crate::store::{ConnectionState, Store};

/// How long a read of the saved states is shown before it is read again.
const SAVED_TTL: Duration = Duration::from_secs(15);
/// Saved states read per statement.
const SAVED_PAGE: usize = 5_000;

/// The leader's saved connection states, as the fleet pages show them.
#[derive(Debug, Default)]
pub(super) struct SavedFleet {
    /// What the leader's last checkpoint was settled up to; `None` without one (no state
    /// store, or no checkpoint saved yet).
    pub settled_upto: Option<DateTime<Utc>>,
    /// Every connection on a failure streak, worst first (the leader's order).
    pub failing_list: Vec<ConnectionState>,
    /// Connector → connections whose latest terminal run failed.
    pub failing_connections: BTreeMap<String, u64>,
    /// Connector → its latest success (Unix seconds).
    pub last_success: BTreeMap<String, f64>,
}

/// The cache of the last read.
pub(super) type SavedCache = tokio::sync::Mutex<Option<(Instant, Arc<SavedFleet>)>>;

impl UiState {
    /// The leader's saved fleet, read at most once per [`SAVED_TTL`].
    pub(super) async fn saved_fleet(&self) -> crate::store::Result<Arc<SavedFleet>> {
        let mut cached = self.saved.lock().await;
        if let Some((at, fleet)) = cached.as_ref() {
            if at.elapsed() < SAVED_TTL {
                return Ok(fleet.clone());
            }
        }
        let fleet = Arc::new(read(&self.store).await?);
        *cached = Some((Instant::now(), fleet.clone()));
        Ok(fleet)
    }
}

/// Every saved state of this table and mapping, a page at a time.
async fn read(store: &Store) -> crate::store::Result<SavedFleet> {
    let mut fleet = SavedFleet {
        settled_upto: store.state().checkpoint_settled_upto().await?,
        ..SavedFleet::default()
    };
    let mut after = None;
    loop {
        let page = store
            .state()
            .saved_connection_states(after, SAVED_PAGE)
            .await?;
        let full = page.len() == SAVED_PAGE;
        after = page.last().map(|s| s.workspace_connector_id.clone());
        for mut state in page {
            state.learned = None;
            if state.last_status == Status::Error {
                *fleet
                    .failing_connections
                    .entry(state.connector_slug.clone())
                    .or_default() += 1;
            }
            if let Some(at) = state.last_success_at {
                let at = at.timestamp_millis() as f64 / 1000.0;
                let latest = fleet
                    .last_success
                    .entry(state.connector_slug.clone())
                    .or_insert(at);
                *latest = latest.max(at);
            }
            if state.consecutive_failures > 0 {
                fleet.failing_list.push(state);
            }
        }
        if !full {
            break;
        }
    }
    fleet.failing_list.sort_by(|a, b| {
        b.consecutive_failures
            .cmp(&a.consecutive_failures)
            .then(a.workspace_connector_id.cmp(&b.workspace_connector_id))
    });
    Ok(fleet)
}
