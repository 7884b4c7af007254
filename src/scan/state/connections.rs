//! Per-connection state: each connection's latest terminal run and its failure streak.
//! Pure: no I/O, unit-tested.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::learned::LearnedState;
use crate::domain::{ConnectionId, Status};
use crate::store::{ConnectionState, TerminalRun};

/// Per-connection state for failing connections and consecutive failures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Connections {
    pub by_id: HashMap<ConnectionId, ConnectionState>,
    /// Each connection's learned schedule and usual duration.
    pub learned: LearnedState,
}

impl Connections {
    /// The states of `ids` (those known), for saving; with what was learned about each
    /// whose learned state is `complete` (its history read, or restored), so a restart
    /// never takes a window that was still being learned for a whole one.
    pub fn states_of<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a ConnectionId>,
        complete: impl Fn(&ConnectionId) -> bool,
    ) -> Vec<ConnectionState> {
        ids.into_iter()
            .filter_map(|id| {
                let mut state = self.by_id.get(id)?.clone();
                state.learned = complete(id).then(|| self.learned.saved(id));
                Some(state)
            })
            .collect()
    }

    /// Apply `run` only when it is newer than what the connection's state already
    /// reflects: for states read or saved at a later point than the runs being applied
    /// (a first start's walk, a restart from saved states), where a run may or may not be
    /// in the state already. Returns whether it was applied.
    pub fn add_run_if_newer(&mut self, run: &TerminalRun) -> bool {
        // Learning is idempotent, so a run the state already reflects changes nothing.
        self.learned.observe(run);
        let newer = self
            .by_id
            .get(&run.workspace_connector_id)
            .is_none_or(|state| run.completed_at > state.last_completed_at);
        if newer {
            self.add_run(run);
        }
        newer
    }

    /// Forget the connections whose latest terminal run completed before `before`: once
    /// retention has deleted every terminal run before it, nothing of theirs is left in
    /// the table (their counted runs stay in the totals). Returns how many were forgotten.
    pub fn forget_before(&mut self, before: DateTime<Utc>) -> usize {
        let n = self.by_id.len();
        let learned = &mut self.learned;
        self.by_id.retain(|id, state| {
            let keep = state.last_completed_at >= before;
            if !keep {
                learned.forget(id);
            }
            keep
        });
        if self.by_id.len() * 2 < self.by_id.capacity() {
            self.by_id.shrink_to_fit();
        }
        n - self.by_id.len()
    }

    /// Apply a terminal run read after the build.
    pub fn add_run(&mut self, run: &TerminalRun) {
        self.learned.observe(run);
        let entry = self
            .by_id
            .entry(run.workspace_connector_id.clone())
            .or_insert_with(|| ConnectionState {
                workspace_connector_id: run.workspace_connector_id.clone(),
                connector_slug: run.connector_slug.clone(),
                last_status: run.status,
                last_completed_at: run.completed_at,
                consecutive_failures: 0,
                last_success_at: None,
                learned: None,
            });
        match run.status {
            // A failure that completed before the latest success (seen late: its
            // transaction committed after the success's) is not part of the streak.
            Status::Error
                if entry
                    .last_success_at
                    .is_none_or(|success| run.completed_at > success) =>
            {
                entry.consecutive_failures += 1;
            }
            Status::Success => {
                if run.completed_at >= entry.last_completed_at {
                    entry.consecutive_failures = 0;
                }
                if entry
                    .last_success_at
                    .is_none_or(|success| run.completed_at > success)
                {
                    entry.last_success_at = Some(run.completed_at);
                }
            }
            _ => {}
        }
        if run.completed_at >= entry.last_completed_at {
            entry.last_completed_at = run.completed_at;
            entry.last_status = run.status;
            entry.connector_slug = run.connector_slug.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::test_support::run;
    use uuid::Uuid;

    #[test]
    fn connections_whose_runs_are_all_before_the_cutoff_are_forgotten() {
        let (mut connections, id, r) = failure();
        connections.add_run(&r);
        let mut other = run("a", Status::Success, Some(1.0), 20);
        other.workspace_connector_id = ConnectionId::from(Uuid::from_u128(8));
        connections.add_run(&other);
        assert_eq!(
            connections.forget_before(DateTime::from_timestamp(10, 0).unwrap()),
            0
        );
        assert_eq!(
            connections.forget_before(DateTime::from_timestamp(11, 0).unwrap()),
            1
        );
        assert!(!connections.by_id.contains_key(&id));
        assert!(!connections.learned.by_id.contains_key(&id));
        assert_eq!(connections.by_id.len(), 1);
    }

    /// A failed run of connection 7 completed at second 10.
    fn failure() -> (Connections, ConnectionId, TerminalRun) {
        let id = ConnectionId::from(Uuid::from_u128(7));
        let mut r = run("a", Status::Error, Some(1.0), 10);
        r.workspace_connector_id = id.clone();
        (Connections::default(), id, r)
    }

    #[test]
    fn consecutive_failures_reset_on_success() {
        let (mut connections, id, mut r) = failure();
        connections.add_run(&r);
        r.completed_at = DateTime::from_timestamp(11, 0).unwrap();
        connections.add_run(&r);
        assert_eq!(connections.by_id[&id].consecutive_failures, 2);
        r.status = Status::Success;
        r.completed_at = DateTime::from_timestamp(12, 0).unwrap();
        connections.add_run(&r);
        assert_eq!(connections.by_id[&id].consecutive_failures, 0);
        assert_eq!(connections.by_id[&id].last_status, Status::Success);
    }

    #[test]
    fn a_failure_seen_after_a_later_success_does_not_extend_the_streak() {
        let (mut connections, id, mut r) = failure();
        connections.add_run(&r);
        r.status = Status::Success;
        r.completed_at = DateTime::from_timestamp(12, 0).unwrap();
        connections.add_run(&r);
        // Completed at 11, before the success at 12, committed after it.
        r.status = Status::Error;
        r.completed_at = DateTime::from_timestamp(11, 0).unwrap();
        connections.add_run(&r);
        assert_eq!(connections.by_id[&id].consecutive_failures, 0);
        assert_eq!(connections.by_id[&id].last_status, Status::Success);
        r.completed_at = DateTime::from_timestamp(13, 0).unwrap();
        connections.add_run(&r);
        assert_eq!(connections.by_id[&id].consecutive_failures, 1);
        assert_eq!(
            connections.by_id[&id].last_success_at,
            DateTime::from_timestamp(12, 0)
        );
    }

    #[test]
    fn only_newer_runs_apply_to_a_later_state() {
        let (mut connections, id, mut r) = failure();
        assert!(connections.add_run_if_newer(&r), "unknown connection");
        assert!(!connections.add_run_if_newer(&r), "already reflected");
        r.completed_at = DateTime::from_timestamp(9, 0).unwrap();
        assert!(!connections.add_run_if_newer(&r), "older");
        r.completed_at = DateTime::from_timestamp(11, 0).unwrap();
        assert!(connections.add_run_if_newer(&r));
        assert_eq!(connections.by_id[&id].consecutive_failures, 2);
    }
}
