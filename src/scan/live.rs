//! The live runs, kept between scans: each scan reads only the runs created or started
//! since its last read (with an overlap), drops the ones its terminal read saw finish, and
//! checks what it keeps against the active-run groups it reads anyway (an aggregate, one
//! row per connector and status). A count that disagrees two scans in a row — a live run
//! soft-deleted, or changed by a writer that moved neither timestamp, or a commit later
//! than the overlap — and a resync interval make it read them all again.
//!
//! The gauges (live, stuck, oldest) never come from this set: they are the groups'. The
//! set feeds the learned signals (overrunning runs, and the schedules' latest creations).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{chrono_duration, ScanError, Scanner};
use crate::domain::Status;
use crate::store::{ActiveGroup, LiveRun, StuckCutoffs};

/// At most this many live runs are kept; beyond it every scan reads them all (oldest
/// first, as many as fit), as before the set existed.
pub(crate) const MAX_LIVE_RUNS: usize = 100_000;

/// How often the set is read in full even when its counts agree with the groups'.
pub const RESYNC_EVERY: Duration = Duration::from_secs(300);

/// How far back before its last read a scan reads the runs created or started (at most the
/// late-commit window): a run committed later than this is found by the count check.
pub const CHANGED_OVERLAP: Duration = Duration::from_secs(60);

/// Why a scan read every live run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullRead {
    /// The first read of this leadership (or after the scanner started over).
    Start,
    /// [`RESYNC_EVERY`] since the last full read.
    Interval,
    /// The set's counts disagreed with the groups' two scans in a row.
    Drift,
    /// More live runs than [`MAX_LIVE_RUNS`]: the set cannot hold them all.
    Capped,
}

impl FullRead {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Interval => "interval",
            Self::Drift => "drift",
            Self::Capped => "capped",
        }
    }
}

type GroupKey = (String, Status);

/// The live runs by id, and when and how they were last read.
#[derive(Debug, Default)]
pub(crate) struct LiveSet {
    runs: HashMap<Uuid, LiveRun>,
    /// The database time the last read saw up to.
    read_upto: Option<DateTime<Utc>>,
    full_at: Option<Instant>,
    capped: bool,
    /// Set minus groups, per group, right after the last full read: rows the groups count
    /// and the set cannot decode (or the reverse) are no drift.
    baseline: HashMap<GroupKey, i64>,
    /// The previous scan's counts disagreed (with the baseline).
    disagreed: bool,
    drifted: bool,
}

impl LiveSet {
    /// The full read this scan owes, if any.
    pub fn full_read_due(&self) -> Option<FullRead> {
        if self.read_upto.is_none() {
            Some(FullRead::Start)
        } else if self.capped {
            Some(FullRead::Capped)
        } else if self.drifted {
            Some(FullRead::Drift)
        } else if self.full_at.is_none_or(|at| at.elapsed() >= RESYNC_EVERY) {
            Some(FullRead::Interval)
        } else {
            None
        }
    }

    /// Where this scan's read of changed runs starts: the last read's point less the
    /// overlap.
    pub fn changed_since(&self, overlap: Duration) -> Option<DateTime<Utc>> {
        self.read_upto.map(|at| at - chrono_duration(overlap))
    }

    /// Every live run, read at `upto`.
    pub fn replace(&mut self, runs: Vec<LiveRun>, upto: DateTime<Utc>) {
        self.capped = runs.len() >= MAX_LIVE_RUNS;
        self.runs = runs.into_iter().map(|run| (run.id, run)).collect();
        self.read_upto = Some(upto);
        self.full_at = Some(Instant::now());
        self.baseline.clear();
        self.disagreed = false;
        self.drifted = false;
    }

    /// The runs created or started since the last read, read at `upto`.
    pub fn merge(&mut self, runs: &[LiveRun], upto: DateTime<Utc>) {
        for run in runs {
            self.runs.insert(run.id, run.clone());
        }
        self.read_upto = Some(upto);
    }

    /// A run the terminal read saw finish.
    pub fn finished(&mut self, id: &Uuid) {
        self.runs.remove(id);
    }

    /// Compare the set with the groups: `full` says whether this scan read it in full (its
    /// difference is then the baseline). Returns whether it disagrees.
    pub fn check(&mut self, groups: &[ActiveGroup], full: bool) -> bool {
        // Borrowed keys: no string is copied for the ten thousands of runs.
        let mut diff: HashMap<(&str, Status), i64> = HashMap::with_capacity(groups.len());
        for run in self.runs.values() {
            *diff.entry((&run.connector_slug, run.status)).or_default() += 1;
        }
        for group in groups {
            *diff
                .entry((&group.connector_slug, group.status))
                .or_default() -= group.count as i64;
        }
        diff.retain(|_, n| *n != 0);
        if full {
            self.baseline = (diff.into_iter())
                .map(|((connector, status), n)| ((connector.to_owned(), status), n))
                .collect();
            return false;
        }
        let disagrees = diff.len() != self.baseline.len()
            || diff.iter().any(|((connector, status), n)| {
                self.baseline.get(&((*connector).to_owned(), *status)) != Some(n)
            });
        // Once is a race between the two reads (a run committed between them), twice is
        // a change the set missed.
        self.drifted = disagrees && self.disagreed;
        self.disagreed = disagrees;
        disagrees
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn runs(&self) -> impl Iterator<Item = &LiveRun> {
        self.runs.values()
    }

    /// The runs this scan read: the changed ones it was given, or (`None`, a full read)
    /// every run kept.
    pub fn read_now<'a>(
        &'a self,
        changed: &'a Option<Vec<LiveRun>>,
    ) -> Box<dyn Iterator<Item = &'a LiveRun> + 'a> {
        match changed {
            Some(runs) => Box::new(runs.iter()),
            None => Box::new(self.runs.values()),
        }
    }
}

impl Scanner {
    /// This scan's live reads, at once on two pooled connections: the active-run groups,
    /// and the live runs (all of them when a full read is due, else those changed since
    /// the last read). Returns the groups, and the changed runs this scan read (`None`
    /// after a full read: they are all in the set, not copied).
    pub(crate) async fn read_live(
        &mut self,
        visible: DateTime<Utc>,
        cutoffs: &StuckCutoffs,
    ) -> Result<(Vec<ActiveGroup>, Option<Vec<LiveRun>>), ScanError> {
        let due = self.live.full_read_due();
        let overlap = CHANGED_OVERLAP.min(self.config.late_commit_window);
        let since = match due {
            Some(_) => None,
            None => self.live.changed_since(overlap),
        };
        let live = self.store.live();
        let (groups, runs) = tokio::try_join!(
            live.active_groups(cutoffs),
            live.live_runs(since, MAX_LIVE_RUNS)
        )?;
        let changed = match due {
            Some(why) => {
                self.metrics.live_full_read(why.as_str());
                self.live.replace(runs, visible);
                None
            }
            None => {
                self.live.merge(&runs, visible);
                Some(runs)
            }
        };
        if self.live.check(&groups, due.is_some()) {
            tracing::debug!("scanner: the live runs kept disagree with the groups' counts");
        }
        self.metrics.live_runs_kept.set(self.live.len() as i64);
        Ok((groups, changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ConnectionId;

    fn run(n: u128, connector: &str, status: Status) -> LiveRun {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        LiveRun {
            id: Uuid::from_u128(n),
            workspace_connector_id: Some(ConnectionId::text(format!("c{n}"))),
            connector_slug: connector.into(),
            status,
            trigger_type: None,
            created_at: at,
            started_at: None,
        }
    }

    fn group(connector: &str, status: Status, count: u64) -> ActiveGroup {
        ActiveGroup {
            connector_slug: connector.into(),
            status,
            count,
            stuck: 0,
            oldest: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn a_full_read_is_due_first_then_only_on_drift_cap_or_interval() {
        let mut set = LiveSet::default();
        assert_eq!(set.full_read_due(), Some(FullRead::Start));
        let now = Utc::now();
        set.replace(vec![run(1, "a", Status::InProgress)], now);
        assert_eq!(set.full_read_due(), None);
        assert_eq!(
            set.changed_since(Duration::from_secs(60)),
            Some(now - chrono::Duration::seconds(60))
        );
        set.full_at = Some(Instant::now() - RESYNC_EVERY);
        assert_eq!(set.full_read_due(), Some(FullRead::Interval));
    }

    #[test]
    fn counts_that_disagree_twice_in_a_row_are_drift_once_is_a_race() {
        let mut set = LiveSet::default();
        let now = Utc::now();
        set.replace(
            vec![
                run(1, "a", Status::InProgress),
                run(2, "a", Status::Scheduled),
            ],
            now,
        );
        let agree = [
            group("a", Status::InProgress, 1),
            group("a", Status::Scheduled, 1),
        ];
        assert!(!set.check(&agree, true));
        assert!(!set.check(&agree, false));
        // A run created between the two reads: the groups count it, the set not yet.
        let raced = [
            group("a", Status::InProgress, 2),
            group("a", Status::Scheduled, 1),
        ];
        assert!(set.check(&raced, false));
        assert_eq!(set.full_read_due(), None, "one disagreement is no drift");
        set.merge(&[run(3, "a", Status::InProgress)], now);
        assert!(!set.check(&raced, false));
        // Run 2 soft-deleted: the set cannot see it go.
        let deleted = [group("a", Status::InProgress, 2)];
        assert!(set.check(&deleted, false));
        assert!(set.check(&deleted, false));
        assert_eq!(set.full_read_due(), Some(FullRead::Drift));
    }

    #[test]
    fn what_the_set_cannot_hold_after_a_full_read_is_no_drift() {
        let mut set = LiveSet::default();
        set.replace(vec![run(1, "a", Status::InProgress)], Utc::now());
        // The groups count a second run whose row the set could not decode.
        let groups = [group("a", Status::InProgress, 2)];
        assert!(!set.check(&groups, true));
        assert!(!set.check(&groups, false));
        assert!(!set.check(&groups, false));
        assert_eq!(set.full_read_due(), None);
        // A finished run leaves the set and the groups alike.
        set.finished(&Uuid::from_u128(1));
        assert!(!set.check(&[group("a", Status::InProgress, 1)], false));
    }

    #[test]
    fn a_set_as_large_as_the_cap_is_read_in_full_every_scan() {
        let mut set = LiveSet::default();
        let runs = (0..MAX_LIVE_RUNS as u128)
            .map(|n| run(n, "a", Status::InProgress))
            .collect();
        set.replace(runs, Utc::now());
        assert_eq!(set.full_read_due(), Some(FullRead::Capped));
    }
}
