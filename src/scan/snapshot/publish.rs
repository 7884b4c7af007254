//! How the scanner's state turns into the published [`Snapshot`]: connector labels capped,
//! known label sets zero-filled, the K worst connections kept; the families that come from
//! the totals kept from scan to scan (`families.rs`). Pure: no I/O, unit-tested.

use foldhash::{HashMap, HashMapExt, HashSet};

use super::families::{interned, status_label, ts, TotalsFamilies};
use crate::domain::Status;
use crate::metrics::{Label, LabelCapper, Snapshot, OVERFLOW_LABEL};
use crate::scan::state::learned::{LearnedSignals, Overdue};
use crate::scan::state::totals::Changes;
use crate::scan::{Connections, Totals};
use crate::store::{ActiveGroup, ConnectionState};

/// What the snapshot builder needs.
pub struct SnapshotInputs<'a> {
    pub totals: &'a Totals,
    /// What runs added to `totals` touched since the previous snapshot was built from
    /// them, when that is all that changed them ([`Totals::take_changes`]); `None` builds
    /// the families that come from the totals in full.
    pub changes: Option<&'a Changes>,
    pub connections: &'a Connections,
    pub active: &'a [ActiveGroup],
    pub learned: &'a LearnedSignals,
    pub top_failing: usize,
}

/// What one pass over the connections and the overdue ones counted, by raw connector slug.
#[derive(Default)]
struct Counted<'a> {
    failing_of: HashMap<&'a str, u64>,
    /// Connections on a failure streak.
    streaks: Vec<&'a ConnectionState>,
    overdue_of: HashMap<&'a str, u64>,
}

/// Builds the exported snapshot, scan after scan. Caps connector labels: a connector
/// keeps the label it was first given (new connectors are admitted in sorted order, so
/// replicas agree), and is looked up, not labelled again, in later scans. Zero-fills known
/// label sets, keeps only the K worst connections, and keeps the families that come from
/// the totals between scans (`families.rs`).
#[derive(Debug, Clone)]
pub struct SnapshotBuilder {
    capper: LabelCapper,
    /// Every connector labelled so far (raw slug) → its label.
    label_of: HashMap<Label, Label>,
    other: Label,
    families: Option<TotalsFamilies>,
    full_builds: u64,
}

impl SnapshotBuilder {
    pub fn new(max_connectors: usize) -> Self {
        Self {
            capper: LabelCapper::new(max_connectors),
            label_of: HashMap::new(),
            other: Label::from(OVERFLOW_LABEL),
            families: None,
            full_builds: 0,
        }
    }

    /// Build the next snapshot's families that come from the totals in full, as after a
    /// repair sweep (for benchmarks comparing the two ways).
    pub fn rebuild_next(&mut self) {
        self.families = None;
    }

    /// How many snapshots built the families that come from the totals in full, rather
    /// than updating the previous ones.
    pub fn full_builds(&self) -> u64 {
        self.full_builds
    }

    /// The snapshot of `inputs`, and how many connectors were newly folded into `other`.
    pub fn build(&mut self, inputs: &SnapshotInputs<'_>) -> (Snapshot, u64) {
        let totals = inputs.totals;
        // One pass over the connections (20,000 in the benchmark): those whose latest run
        // failed, per raw connector slug, and those on a failure streak; the overdue ones
        // per raw connector slug. A few hundred connectors are labelled below.
        let mut counted = Counted::default();
        for state in inputs.connections.by_id.values() {
            *counted.failing_of.entry(&state.connector_slug).or_default() +=
                u64::from(state.last_status == Status::Error);
            if state.consecutive_failures > 0 {
                counted.streaks.push(state);
            }
        }
        for o in &inputs.learned.overdue {
            *counted.overdue_of.entry(&o.connector).or_default() += 1;
        }
        // Every connector of the totals is labelled after each build, so when the runs
        // added since touched only labelled ones, the others need no look.
        let changes = inputs.changes.filter(|changes| {
            self.families.is_some()
                && changes
                    .pairs
                    .iter()
                    .all(|(c, _)| self.label_of.contains_key(c))
        });
        let of_totals = totals.runs.keys().map(|(c, _, _)| &**c);
        let unlabelled: HashSet<&str> = of_totals
            .take(if changes.is_some() { 0 } else { usize::MAX })
            .chain(inputs.active.iter().map(|a| a.connector_slug.as_str()))
            .chain(counted.failing_of.keys().copied())
            .chain(counted.overdue_of.keys().copied())
            .chain(inputs.learned.overrunning.iter().map(|(c, _)| c.as_str()))
            .filter(|c| !self.label_of.contains_key(*c))
            .collect();
        let mut unlabelled: Vec<&str> = unlabelled.into_iter().collect();
        unlabelled.sort_unstable();
        let mut overflowed = 0;
        for connector in unlabelled {
            let (label, new) = self.capper.label(connector);
            overflowed += u64::from(new);
            let label = if label == OVERFLOW_LABEL {
                self.other.clone()
            } else {
                interned(totals, connector)
            };
            self.label_of.insert(interned(totals, connector), label);
        }
        let updated = match (self.families.as_mut(), changes) {
            (Some(families), Some(changes)) => families.update(totals, changes, &self.label_of),
            _ => false,
        };
        if !updated {
            self.full_builds += 1;
            self.families = Some(TotalsFamilies::full(totals, &self.label_of));
        }
        let mut snap = Snapshot {
            leader: true,
            ..Snapshot::default()
        };
        if let Some(families) = &self.families {
            families.fill(&mut snap);
        }
        self.connection_families(inputs, counted, &mut snap);
        (snap, overflowed)
    }

    /// The families that come from the live runs, the connections and the learned
    /// signals, built every scan.
    fn connection_families(
        &self,
        inputs: &SnapshotInputs<'_>,
        counted: Counted<'_>,
        snap: &mut Snapshot,
    ) {
        // Every connector is labelled by now; the fallback only keeps this total.
        let label = |c: &str| {
            self.label_of
                .get(c)
                .cloned()
                .unwrap_or_else(|| Label::from(c))
        };
        for group in inputs.active {
            let connector = label(&group.connector_slug);
            for status in [Status::Scheduled, Status::InProgress] {
                let key = (connector.clone(), status_label(status));
                snap.active.entry(key.clone()).or_insert(0);
                snap.stuck.entry(key).or_insert(0);
            }
            let key = (connector, status_label(group.status));
            *snap.active.entry(key.clone()).or_default() += group.count;
            *snap.stuck.entry(key.clone()).or_default() += group.stuck;
            let oldest = ts(group.oldest);
            let slot = snap.oldest_active.entry(key).or_insert(oldest);
            *slot = slot.min(oldest);
        }

        // Zero-filled per connector label of this scan (not per connection: this runs
        // every scan), sorted and built in bulk.
        let mut connectors: Vec<Label> = (self.families.iter())
            .flat_map(TotalsFamilies::labels)
            .cloned()
            .chain(counted.failing_of.keys().map(|c| label(c)))
            .chain(counted.overdue_of.keys().map(|c| label(c)))
            .chain(inputs.active.iter().map(|a| label(&a.connector_slug)))
            .chain(inputs.learned.overrunning.iter().map(|(c, _)| label(c)))
            .collect();
        connectors.sort_unstable();
        connectors.dedup();
        snap.overdue_connections = connectors.iter().map(|c| (c.clone(), 0)).collect();
        snap.overrunning = connectors.into_iter().map(|c| (c, 0)).collect();
        for (connector, count) in counted.overdue_of {
            *snap
                .overdue_connections
                .entry(label(connector))
                .or_default() += count;
        }
        for (connector, count) in counted.failing_of {
            *snap
                .failing_connections
                .entry(label(connector))
                .or_default() += count;
        }
        let mut failing = counted.streaks;
        failing.sort_by(|a, b| {
            b.consecutive_failures
                .cmp(&a.consecutive_failures)
                .then(a.workspace_connector_id.cmp(&b.workspace_connector_id))
        });
        snap.failing_list = failing.iter().map(|s| (*s).clone()).collect();
        for state in failing.into_iter().take(inputs.top_failing) {
            snap.consecutive_failures.insert(
                (
                    label(&state.connector_slug),
                    Label::from(state.workspace_connector_id.to_string()),
                ),
                state.consecutive_failures,
            );
        }
        for (connector, count) in &inputs.learned.overrunning {
            *snap.overrunning.entry(label(connector)).or_default() += count;
        }
        let mut overdue: Vec<_> = inputs.learned.overdue.iter().collect();
        let most_overdue_first = |a: &&Overdue, b: &&Overdue| {
            b.past_due_seconds
                .total_cmp(&a.past_due_seconds)
                .then(a.workspace_connector_id.cmp(&b.workspace_connector_id))
        };
        // Only the K most overdue are exported: select them, then sort those.
        if overdue.len() > inputs.top_failing && inputs.top_failing > 0 {
            overdue.select_nth_unstable_by(inputs.top_failing - 1, most_overdue_first);
            overdue.truncate(inputs.top_failing);
        }
        overdue.sort_by(most_overdue_first);
        for o in overdue.into_iter().take(inputs.top_failing) {
            snap.overdue_seconds.insert(
                (
                    label(&o.connector),
                    Label::from(o.workspace_connector_id.to_string()),
                ),
                o.past_due_seconds,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::test_support::run;

    #[test]
    fn runs_are_zero_filled_and_capped() {
        let mut totals = Totals::new(&[1.0, 10.0], &[1.0]);
        totals.add_run(&run("a", Status::Success, Some(2.0), 100));
        totals.add_run(&run("b", Status::Error, None, 101));
        totals.add_run(&run("c", Status::Error, Some(0.5), 102));
        let connections = Connections::default();
        let (snap, overflowed) = SnapshotBuilder::new(2).build(&SnapshotInputs {
            totals: &totals,
            changes: None,
            connections: &connections,
            active: &[],
            learned: &LearnedSignals::default(),
            top_failing: 5,
        });
        assert_eq!(overflowed, 1);
        let key = |c: &str, s: &str| (Label::from(c), Label::from("manual"), Label::from(s));
        assert_eq!(snap.runs[&key("a", "success")], 1);
        assert_eq!(snap.runs[&key("a", "error")], 0, "zero-filled");
        assert_eq!(snap.runs[&key("other", "error")], 1);
        assert_eq!(snap.durations[&key("a", "success")].cumulative, vec![0, 1]);
        assert_eq!(snap.durations[&key("other", "error")].count, 1);
        assert_eq!(snap.runs.len(), 6);
        assert_eq!(snap.records_synced["a"], 10.0);
        assert_eq!(snap.last_success["a"], 100.0);
    }

    /// Connectors folded into `other` merge into one series per key, failures included,
    /// and every series is the sum of those it folds (the bulk build merges equal keys).
    #[test]
    fn folded_connectors_merge_into_one_series() {
        let mut totals = Totals::new(&[1.0, 10.0], &[1.0]);
        totals.add_run(&run("a", Status::Success, Some(2.0), 100));
        for (slug, at) in [("b", 101), ("c", 102), ("c", 103)] {
            let mut failed = run(slug, Status::Error, Some(0.5), at);
            failed.error = Some("401 Unauthorized".into());
            totals.add_run(&failed);
        }
        let (snap, overflowed) = SnapshotBuilder::new(1).build(&SnapshotInputs {
            totals: &totals,
            changes: None,
            connections: &Connections::default(),
            active: &[],
            learned: &LearnedSignals::default(),
            top_failing: 5,
        });
        assert_eq!(overflowed, 2);
        let key = |c: &str, s: &str| (Label::from(c), Label::from("manual"), Label::from(s));
        assert_eq!(snap.runs[&key("other", "error")], 3);
        assert_eq!(snap.runs[&key("other", "success")], 0, "zero-filled once");
        assert_eq!(snap.durations[&key("other", "error")].count, 3);
        assert_eq!(
            snap.durations[&key("other", "error")].cumulative,
            vec![3, 3]
        );
        assert_eq!(snap.runs.len(), 4);
        let reasons = totals.rules.reasons().len();
        let series = snap.failure_series();
        assert_eq!(series.len(), 2 * reasons, "every reason once per pair");
        let failed: u64 = series
            .iter()
            .filter(|(k, _)| k[0] == "other")
            .map(|(_, n)| n)
            .sum();
        assert_eq!(failed, 3);
        assert_eq!(
            series.iter().filter(|(_, n)| *n > 0).count(),
            1,
            "one counted series"
        );
        assert_eq!(snap.failures.len(), 1, "zeros are not stored");
        let mut sorted = series.clone();
        sorted.sort();
        assert_eq!(series, sorted, "in key order");
        assert_eq!(
            snap.dispatch_delays[&(Label::from("other"), Label::from("manual"))].count,
            3
        );
        assert_eq!(snap.records_synced["other"], 30.0);
    }
}
