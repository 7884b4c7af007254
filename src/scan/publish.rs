//! How the scanner's state turns into the published [`Snapshot`]: connector labels capped,
//! known label sets zero-filled, the K worst connections kept. Pure: no I/O, unit-tested.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::learned::LearnedSignals;
use super::{Connections, Totals};
use crate::domain::Status;
use crate::metrics::{HistogramData, LabelCapper, Snapshot};
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
    let mut overflowed = 0;
    let mut connectors: Vec<&String> = totals
        .runs
        .keys()
        .map(|(c, _, _)| c)
        .chain(inputs.active.iter().map(|a| &a.connector_slug))
        .chain(inputs.connections.by_id.values().map(|c| &c.connector_slug))
        .chain(inputs.learned.overdue.iter().map(|o| &o.connector))
        .chain(inputs.learned.overrunning.iter().map(|(c, _)| c))
        .collect();
    connectors.sort();
    connectors.dedup();
    let mut label_of: HashMap<&str, String> = HashMap::new();
    for connector in connectors {
        let (label, new) = capper.label(connector);
        overflowed += u64::from(new);
        label_of.insert(connector.as_str(), label);
    }
    let label = |c: &str| label_of.get(c).cloned().unwrap_or_else(|| c.to_owned());

    let mut snap = Snapshot {
        leader: true,
        ..Snapshot::default()
    };
    // Zero-fill: both terminal statuses for every (connector, trigger) seen.
    for ((connector, trigger, _), _) in totals.runs.iter() {
        for status in [Status::Success, Status::Error] {
            let key = (
                label(connector),
                trigger.clone(),
                status.as_str().to_owned(),
            );
            snap.runs.entry(key.clone()).or_insert(0);
            snap.durations
                .entry(key)
                .or_insert_with(|| HistogramData::empty(&totals.duration_bounds));
        }
    }
    for ((connector, trigger, status), count) in &totals.runs {
        let key = (
            label(connector),
            trigger.clone(),
            status.as_str().to_owned(),
        );
        *snap.runs.entry(key).or_default() += count;
    }
    // Every reason zero-filled for each (connector, trigger) seen, so the first failure of
    // a kind shows as an increase.
    let pairs: std::collections::BTreeSet<(&str, &str)> = totals
        .runs
        .keys()
        .map(|(c, t, _)| (c.as_str(), t.as_str()))
        .collect();
    for (connector, trigger) in pairs {
        let connector = label(connector);
        for (reason, owner) in totals.rules.reasons() {
            let key = (
                connector.clone(),
                trigger.to_owned(),
                reason.clone(),
                owner.as_str().to_owned(),
            );
            snap.failures.insert(key, 0);
        }
    }
    for ((connector, trigger, reason), count) in &totals.failures {
        let owner = totals.rules.owner(reason).as_str().to_owned();
        let key = (label(connector), trigger.clone(), reason.clone(), owner);
        *snap.failures.entry(key).or_default() += count;
    }
    for ((connector, trigger, status), histogram) in &totals.durations {
        let key = (
            label(connector),
            trigger.clone(),
            status.as_str().to_owned(),
        );
        snap.durations
            .entry(key)
            .or_insert_with(|| HistogramData::empty(&totals.duration_bounds))
            .add(histogram);
    }
    for ((connector, trigger), histogram) in &totals.delays {
        snap.dispatch_delays
            .entry((label(connector), trigger.clone()))
            .or_insert_with(|| HistogramData::empty(&totals.delay_bounds))
            .add(histogram);
    }
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
            let key = (connector.clone(), status.as_str().to_owned());
            snap.active.entry(key.clone()).or_insert(0);
            snap.stuck.entry(key).or_insert(0);
        }
        let key = (connector, group.status.as_str().to_owned());
        *snap.active.entry(key.clone()).or_default() += group.count;
        *snap.stuck.entry(key.clone()).or_default() += group.stuck;
        let oldest = ts(group.oldest);
        let slot = snap.oldest_active.entry(key).or_insert(oldest);
        *slot = slot.min(oldest);
    }

    let mut failing: Vec<&ConnectionState> = Vec::new();
    for state in inputs.connections.by_id.values() {
        let connector = label(&state.connector_slug);
        let count = snap.failing_connections.entry(connector).or_insert(0);
        if state.last_status == Status::Error {
            *count += 1;
        }
        if state.consecutive_failures > 0 {
            failing.push(state);
        }
    }
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
                state.workspace_connector_id.to_string(),
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
    overdue.sort_by(|a, b| {
        b.past_due_seconds
            .total_cmp(&a.past_due_seconds)
            .then(a.workspace_connector_id.cmp(&b.workspace_connector_id))
    });
    for o in overdue.into_iter().take(inputs.top_failing) {
        snap.overdue_seconds.insert(
            (label(&o.connector), o.workspace_connector_id.to_string()),
            o.past_due_seconds,
        );
    }
    (snap, overflowed)
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
        let key = |c: &str, s: &str| (c.to_owned(), "manual".to_owned(), s.to_owned());
        assert_eq!(snap.runs[&key("a", "success")], 1);
        assert_eq!(snap.runs[&key("a", "error")], 0, "zero-filled");
        assert_eq!(snap.runs[&key("other", "error")], 1);
        assert_eq!(snap.durations[&key("a", "success")].cumulative, vec![0, 1]);
        assert_eq!(snap.durations[&key("other", "error")].count, 1);
        assert_eq!(snap.runs.len(), 6);
        assert_eq!(snap.records_synced["a"], 10.0);
        assert_eq!(snap.last_success["a"], 100.0);
    }
}
