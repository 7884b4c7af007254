//! How the scanner's state turns into the published [`Snapshot`]: connector labels capped,
//! known label sets zero-filled, the K worst connections kept. Pure: no I/O, unit-tested.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt, HashSet};

use chrono::{DateTime, Utc};

use super::learned::{LearnedSignals, Overdue};
use super::{Connections, Owner, Totals};
use crate::domain::Status;
use crate::metrics::{HistogramData, Label, LabelCapper, Snapshot};
use crate::store::{ActiveGroup, ConnectionState};

/// What the snapshot builder needs besides the totals.
pub struct SnapshotInputs<'a> {
    pub totals: &'a Totals,
    pub connections: &'a Connections,
    pub active: &'a [ActiveGroup],
    pub learned: &'a LearnedSignals,
    pub top_failing: usize,
}

fn ts(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// Build the exported snapshot: cap connector labels (first seen keeps its label; the
/// capper admits connectors in sorted order so replicas agree), zero-fill known label
/// sets, keep only the K worst connections. Returns the snapshot and how many connectors
/// were newly folded into `other`.
pub fn build_snapshot(inputs: &SnapshotInputs<'_>, capper: &mut LabelCapper) -> (Snapshot, u64) {
    let totals = inputs.totals;
    // Every label value comes from the totals' interner (statuses, owners and connection
    // ids are added to a copy): a key is a few shared pointers, nothing is allocated per
    // series.
    let mut labels = totals.labels().clone();
    let mut overflowed = 0;
    // Connections whose latest run failed, per raw connector slug (20,000 connections
    // counted here, a few hundred connectors labelled below).
    let mut failing_of: HashMap<&str, u64> = HashMap::new();
    for state in inputs.connections.by_id.values() {
        *failing_of.entry(&state.connector_slug).or_default() +=
            u64::from(state.last_status == Status::Error);
    }
    let distinct: HashSet<&str> = totals
        .runs
        .keys()
        .map(|(c, _, _)| &**c)
        .chain(inputs.active.iter().map(|a| a.connector_slug.as_str()))
        .chain(failing_of.keys().copied())
        .chain(inputs.learned.overdue.iter().map(|o| o.connector.as_str()))
        .chain(inputs.learned.overrunning.iter().map(|(c, _)| c.as_str()))
        .collect();
    let mut connectors: Vec<&str> = distinct.into_iter().collect();
    connectors.sort_unstable();
    let mut label_of: HashMap<&str, Label> = HashMap::with_capacity(connectors.len());
    for connector in connectors {
        let (label, new) = capper.label(connector);
        overflowed += u64::from(new);
        label_of.insert(connector, labels.label(&label));
    }
    // Every connector is in `label_of`; the fallback only keeps this total.
    let label = |c: &str| label_of.get(c).cloned().unwrap_or_else(|| Label::from(c));
    let status_label = |s: Status| -> Label {
        match s {
            Status::Success => STATUS[0].clone(),
            Status::Error => STATUS[1].clone(),
            Status::Scheduled => STATUS[2].clone(),
            Status::InProgress => STATUS[3].clone(),
        }
    };

    let mut snap = Snapshot {
        leader: true,
        ..Snapshot::default()
    };
    // The large families (a series per connector, trigger and status or reason) are
    // collected, sorted and built in bulk rather than inserted one key at a time.
    // Zero-fill: both terminal statuses for every (connector, trigger) seen.
    let mut runs = Vec::with_capacity(totals.runs.len() * 2);
    let mut durations = Vec::with_capacity(totals.runs.len() * 2);
    for (connector, trigger, _) in totals.runs.keys() {
        for status in [Status::Success, Status::Error] {
            let raw = (connector.clone(), trigger.clone(), status);
            let key = (label(connector), trigger.clone(), status_label(status));
            if !totals.runs.contains_key(&raw) {
                runs.push((key.clone(), 0));
            }
            if !totals.durations.contains_key(&raw) {
                durations.push((key, HistogramData::zeroed(&totals.duration_bounds)));
            }
        }
    }
    for ((connector, trigger, status), count) in &totals.runs {
        let key = (label(connector), trigger.clone(), status_label(*status));
        runs.push((key, *count));
    }
    snap.runs = bulk(runs, |sum, n| *sum += n);
    for ((connector, trigger, status), histogram) in &totals.durations {
        let key = (label(connector), trigger.clone(), status_label(*status));
        durations.push((key, histogram.clone()));
    }
    snap.durations = bulk(durations, |sum, h| sum.add(&h));
    // Every reason is exported for each (connector, trigger) seen, so the first failure of
    // a kind shows as an increase: zero-filled when written (`Snapshot::failure_series`),
    // not stored.
    let reasons: Vec<(Label, Label)> = totals
        .rules
        .reasons()
        .iter()
        .map(|(reason, owner)| (labels.label(reason), labels.label(owner.as_str())))
        .collect();
    let platform = labels.label(Owner::Platform.as_str());
    let mut failures = Vec::with_capacity(totals.failures.len());
    for ((connector, trigger, reason), count) in &totals.failures {
        let owner = reasons
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(&platform, |(_, owner)| owner);
        let key = (
            label(connector),
            trigger.clone(),
            reason.clone(),
            owner.clone(),
        );
        failures.push((key, *count));
    }
    let mut pairs: Vec<(Label, Label)> = totals
        .runs
        .keys()
        .map(|(c, t, _)| (label(c), t.clone()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    snap.failure_pairs = pairs;
    snap.failure_reasons = reasons;
    snap.failure_reasons.sort_unstable();
    snap.failures = bulk(failures, |sum, n| *sum += n);
    let delays = totals
        .delays
        .iter()
        .map(|((connector, trigger), histogram)| {
            ((label(connector), trigger.clone()), histogram.clone())
        })
        .collect();
    snap.dispatch_delays = bulk(delays, |sum, h| sum.add(&h));
    for (connector, records) in &totals.records {
        *snap.records_synced.entry(label(connector)).or_default() += records;
    }
    for (connector, at) in &totals.last_success {
        let slot = snap.last_success.entry(label(connector)).or_insert(0.0);
        *slot = slot.max(ts(*at));
    }
    for (connector, at) in &totals.last_failure {
        let slot = snap.last_failure.entry(label(connector)).or_insert(0.0);
        *slot = slot.max(ts(*at));
    }

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

    for (connector, count) in failing_of {
        *snap
            .failing_connections
            .entry(label(connector))
            .or_default() += count;
    }
    let mut failing: Vec<&ConnectionState> = inputs
        .connections
        .by_id
        .values()
        .filter(|state| state.consecutive_failures > 0)
        .collect();
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
    // Zero-filled once per connector label (not per connection: this runs every scan).
    for connector in label_of.values() {
        snap.overdue_connections
            .entry(connector.clone())
            .or_insert(0);
        snap.overrunning.entry(connector.clone()).or_insert(0);
    }
    for (connector, count) in &inputs.learned.overrunning {
        *snap.overrunning.entry(label(connector)).or_default() += count;
    }
    let mut overdue: Vec<_> = inputs.learned.overdue.iter().collect();
    for o in &overdue {
        *snap
            .overdue_connections
            .entry(label(&o.connector))
            .or_default() += 1;
    }
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
    (snap, overflowed)
}

/// A map built from unsorted entries, those with equal keys merged: sorted once, then built
/// in bulk (`BTreeMap` builds a sorted sequence in linear time), instead of a tree descent
/// per entry.
fn bulk<K: Ord, V>(mut entries: Vec<(K, V)>, merge: impl Fn(&mut V, V)) -> BTreeMap<K, V> {
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(K, V)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        match merged.last_mut() {
            Some((last, sum)) if *last == key => merge(sum, value),
            _ => merged.push((key, value)),
        }
    }
    merged.into_iter().collect()
}

/// The status label values, shared by every snapshot.
static STATUS: std::sync::LazyLock<[Label; 4]> = std::sync::LazyLock::new(|| {
    [
        Status::Success,
        Status::Error,
        Status::Scheduled,
        Status::InProgress,
    ]
    .map(|s| Label::from(s.as_str()))
});

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
        let mut capper = LabelCapper::new(2);
        let (snap, overflowed) = build_snapshot(
            &SnapshotInputs {
                totals: &totals,
                connections: &connections,
                active: &[],
                learned: &LearnedSignals::default(),
                top_failing: 5,
            },
            &mut capper,
        );
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
        let (snap, overflowed) = build_snapshot(
            &SnapshotInputs {
                totals: &totals,
                connections: &Connections::default(),
                active: &[],
                learned: &LearnedSignals::default(),
                top_failing: 5,
            },
            &mut LabelCapper::new(1),
        );
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
