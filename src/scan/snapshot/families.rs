//! The families derived from the running totals (runs, durations, dispatch delays,
//! failures by reason, records synced, last success and failure), kept from one snapshot
//! to the next: a scan that only added runs recomputes, from the totals, the series of
//! the (connector, trigger) pairs those runs touched, instead of building every series
//! again (~20,000 at 500 connectors). Anything else (the first snapshot, a repair sweep
//! merged, a connector or a pair not seen before) builds them in full. Both ways give the
//! same series, bit for bit: a series that folds several connectors (`other`) sums them in
//! the connectors' order either way. Pure, and tested against the full build.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::domain::Owner;
use crate::domain::Status;
use crate::metrics::{Exemplar, HistogramData, Label, Snapshot};
use crate::scan::state::totals::{Changes, Totals};

/// The status label values, shared by every snapshot.
pub(crate) static STATUS: std::sync::LazyLock<[Label; 4]> = std::sync::LazyLock::new(|| {
    [
        Status::Success,
        Status::Error,
        Status::Scheduled,
        Status::InProgress,
    ]
    .map(|s| Label::from(s.as_str()))
});

pub(crate) fn status_label(status: Status) -> Label {
    let i = match status {
        Status::Success => 0,
        Status::Error => 1,
        Status::Scheduled => 2,
        Status::InProgress => 3,
    };
    STATUS[i].clone()
}

/// The terminal statuses, with their labels.
fn terminal() -> [(Status, Label); 2] {
    [Status::Success, Status::Error].map(|s| (s, status_label(s)))
}

pub(crate) fn ts(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

/// The families of one snapshot that come from the totals, and what updating them needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct TotalsFamilies {
    runs: BTreeMap<(Label, Label, Label), u64>,
    durations: BTreeMap<(Label, Label, Label), HistogramData>,
    failures: BTreeMap<(Label, Label, Label, Label), u64>,
    /// Shared with the snapshots built from it until a failure changes it.
    failure_exemplars: std::sync::Arc<BTreeMap<(Label, Label, Label, Label), Exemplar>>,
    failure_pairs: Vec<(Label, Label)>,
    failure_reasons: Vec<(Label, Label)>,
    delays: BTreeMap<(Label, Label), HistogramData>,
    records: BTreeMap<Label, f64>,
    last_success: BTreeMap<Label, f64>,
    last_failure: BTreeMap<Label, f64>,
    /// Every connector label → the connectors of the totals exported under it, sorted
    /// (one, its own, unless connectors are folded into `other`).
    members: HashMap<Label, Vec<Label>>,
}

impl TotalsFamilies {
    /// Build every family from `totals`; `label_of` has the label of every connector in
    /// them.
    pub fn full(totals: &Totals, label_of: &HashMap<Label, Label>) -> Self {
        let label = |c: &str| label_of.get(c).cloned().unwrap_or_else(|| Label::from(c));
        let mut members: HashMap<Label, Vec<Label>> = HashMap::default();
        let connectors: HashSet<&Label> = totals.runs.keys().map(|(c, _, _)| c).collect();
        for connector in connectors {
            members
                .entry(label(connector))
                .or_default()
                .push(connector.clone());
        }
        for folded in members.values_mut() {
            folded.sort_unstable();
        }
        // The large families are collected, sorted (a key's connectors in their order)
        // and built in bulk rather than inserted one key at a time. Zero-fill: both
        // terminal statuses for every (connector, trigger) seen.
        let mut runs = Vec::with_capacity(totals.runs.len() * 2);
        let mut durations = Vec::with_capacity(totals.runs.len() * 2);
        for (connector, trigger, _) in totals.runs.keys() {
            for (status, status_label) in terminal() {
                let raw = (connector.clone(), trigger.clone(), status);
                let key = (label(connector), trigger.clone(), status_label);
                if !totals.runs.contains_key(&raw) {
                    runs.push((key.clone(), connector.clone(), 0));
                }
                if !totals.durations.contains_key(&raw) {
                    let zero = HistogramData::zeroed(&totals.duration_bounds);
                    durations.push((key, connector.clone(), zero));
                }
            }
        }
        for ((connector, trigger, status), count) in &totals.runs {
            let key = (label(connector), trigger.clone(), status_label(*status));
            runs.push((key, connector.clone(), *count));
        }
        for ((connector, trigger, status), histogram) in &totals.durations {
            let key = (label(connector), trigger.clone(), status_label(*status));
            durations.push((key, connector.clone(), histogram.clone()));
        }
        // Every reason is exported for each (connector, trigger) seen, so the first
        // failure of a kind shows as an increase: zero-filled when written
        // (`Snapshot::failure_series`), not stored.
        let mut failure_reasons: Vec<(Label, Label)> = totals
            .rules
            .reasons()
            .iter()
            .map(|(reason, owner)| (interned(totals, reason), owner_label(*owner)))
            .collect();
        failure_reasons.sort_unstable();
        let mut failures = Vec::with_capacity(totals.failures.len());
        for ((connector, trigger, reason), count) in &totals.failures {
            let owner = owner_label(totals.rules.owner(reason));
            let key = (label(connector), trigger.clone(), reason.clone(), owner);
            failures.push((key, connector.clone(), *count));
        }
        let mut failure_exemplars: BTreeMap<_, Exemplar> = BTreeMap::new();
        for ((connector, trigger, reason), exemplar) in &totals.failure_exemplars {
            let owner = owner_label(totals.rules.owner(reason));
            let key = (label(connector), trigger.clone(), reason.clone(), owner);
            failure_exemplars
                .entry(key)
                .and_modify(|e| *e = e.latest(*exemplar))
                .or_insert(*exemplar);
        }
        let mut failure_pairs: Vec<(Label, Label)> = totals
            .runs
            .keys()
            .map(|(c, t, _)| (label(c), t.clone()))
            .collect();
        failure_pairs.sort_unstable();
        failure_pairs.dedup();
        let delays = totals
            .delays
            .iter()
            .map(|((c, t), histogram)| ((label(c), t.clone()), c.clone(), histogram.clone()))
            .collect();
        let mut families = Self {
            runs: bulk(runs, |sum, n| *sum += n),
            durations: bulk(durations, |sum, h| sum.add(&h)),
            failures: bulk(failures, |sum, n| *sum += n),
            failure_exemplars: failure_exemplars.into(),
            failure_pairs,
            failure_reasons,
            delays: bulk(delays, |sum, h| sum.add(&h)),
            members,
            ..Self::default()
        };
        let labels: Vec<Label> = families.members.keys().cloned().collect();
        for connector in labels {
            families.connector_series(totals, &connector);
        }
        families
    }

    /// Recompute the series `changes` touched; `false` (and nothing changed) when they
    /// touched a connector or a (connector, trigger) pair these families do not have.
    pub fn update(
        &mut self,
        totals: &Totals,
        changes: &Changes,
        label_of: &HashMap<Label, Label>,
    ) -> bool {
        let known = |connector: &Label, trigger: &Label| -> Option<Label> {
            let label = label_of.get(connector)?;
            let folded = self.members.get(label)?;
            folded.binary_search(connector).ok()?;
            let pair = (label.clone(), trigger.clone());
            self.failure_pairs.binary_search(&pair).ok()?;
            Some(label.clone())
        };
        let all_known = changes.pairs.iter().all(|(c, t)| known(c, t).is_some())
            && changes
                .failures
                .iter()
                .all(|(c, t, _)| known(c, t).is_some());
        if !all_known {
            return false;
        }
        let mut connectors: HashSet<Label> = HashSet::default();
        for (connector, trigger) in &changes.pairs {
            let label = label_of[connector].clone();
            let folded = &self.members[&label];
            for (status, status_label) in terminal() {
                let raw = |m: &Label| (m.clone(), trigger.clone(), status);
                let key = (label.clone(), trigger.clone(), status_label);
                let runs = folded.iter().filter_map(|m| totals.runs.get(&raw(m))).sum();
                self.runs.insert(key.clone(), runs);
                let mut sum = HistogramData::zeroed(&totals.duration_bounds);
                for h in folded.iter().filter_map(|m| totals.durations.get(&raw(m))) {
                    sum.add(h);
                }
                self.durations.insert(key, sum);
            }
            let mut delays: Option<HistogramData> = None;
            for m in folded {
                if let Some(h) = totals.delays.get(&(m.clone(), trigger.clone())) {
                    delays
                        .get_or_insert_with(|| HistogramData::zeroed(&totals.delay_bounds))
                        .add(h);
                }
            }
            if let Some(delays) = delays {
                self.delays.insert((label.clone(), trigger.clone()), delays);
            }
            connectors.insert(label);
        }
        for (connector, trigger, reason) in &changes.failures {
            let label = label_of[connector].clone();
            let mut counted = None;
            let mut latest: Option<Exemplar> = None;
            for m in &self.members[&label] {
                let raw = (m.clone(), trigger.clone(), reason.clone());
                if let Some(n) = totals.failures.get(&raw) {
                    *counted.get_or_insert(0) += n;
                }
                if let Some(e) = totals.failure_exemplars.get(&raw) {
                    latest = Some(latest.map_or(*e, |l| l.latest(*e)));
                }
            }
            let owner = owner_label(totals.rules.owner(reason));
            let key = (label, trigger.clone(), reason.clone(), owner);
            if let Some(e) = latest {
                std::sync::Arc::make_mut(&mut self.failure_exemplars).insert(key.clone(), e);
            }
            if let Some(n) = counted {
                self.failures.insert(key, n);
            }
        }
        for connector in connectors {
            self.connector_series(totals, &connector);
        }
        true
    }

    /// Records synced, last success and last failure of one connector label, from the
    /// connectors under it.
    fn connector_series(&mut self, totals: &Totals, label: &Label) {
        let folded = &self.members[label];
        let records = folded.iter().filter_map(|m| totals.records.get(m));
        if let Some(sum) = records.fold(None, |sum: Option<f64>, r| Some(sum.unwrap_or(0.0) + r)) {
            self.records.insert(label.clone(), sum);
        }
        let latest = |map: &HashMap<Label, DateTime<Utc>>| {
            folded
                .iter()
                .filter_map(|m| map.get(m))
                .max()
                .map(|at| ts(*at))
        };
        if let Some(at) = latest(&totals.last_success) {
            self.last_success.insert(label.clone(), at);
        }
        if let Some(at) = latest(&totals.last_failure) {
            self.last_failure.insert(label.clone(), at);
        }
    }

    /// The connector labels of the totals.
    pub fn labels(&self) -> impl Iterator<Item = &Label> {
        self.members.keys()
    }

    /// Copy the families into `snap`.
    pub fn fill(&self, snap: &mut Snapshot) {
        snap.runs = self.runs.clone();
        snap.durations = self.durations.clone();
        snap.failures = self.failures.clone();
        snap.failure_exemplars = self.failure_exemplars.clone();
        snap.failure_pairs = self.failure_pairs.clone();
        snap.failure_reasons = self.failure_reasons.clone();
        snap.dispatch_delays = self.delays.clone();
        snap.records_synced = self.records.clone();
        snap.last_success = self.last_success.clone();
        snap.last_failure = self.last_failure.clone();
    }
}

/// The totals' shared form of `value` (a new one if they do not hold it).
pub(crate) fn interned(totals: &Totals, value: &str) -> Label {
    totals
        .labels()
        .get(value)
        .cloned()
        .unwrap_or_else(|| Label::from(value))
}

/// The label value of `owner`, shared by every snapshot.
fn owner_label(owner: Owner) -> Label {
    static OWNERS: std::sync::LazyLock<[Label; 3]> = std::sync::LazyLock::new(|| {
        [Owner::Customer, Owner::Provider, Owner::Platform].map(|o| Label::from(o.as_str()))
    });
    let i = match owner {
        Owner::Customer => 0,
        Owner::Provider => 1,
        Owner::Platform => 2,
    };
    OWNERS[i].clone()
}

/// A map built from unsorted entries, those with equal keys merged in the order of their
/// connectors: sorted once, then built in bulk (`BTreeMap` builds a sorted sequence in
/// linear time), instead of a tree descent per entry.
fn bulk<K: Ord, V>(mut entries: Vec<(K, Label, V)>, merge: impl Fn(&mut V, V)) -> BTreeMap<K, V> {
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut merged: Vec<(K, V)> = Vec::with_capacity(entries.len());
    for (key, _, value) in entries {
        match merged.last_mut() {
            Some((last, sum)) if *last == key => merge(sum, value),
            _ => merged.push((key, value)),
        }
    }
    merged.into_iter().collect()
}
