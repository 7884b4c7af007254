//! The scanner's running totals of terminal runs, keyed by the raw connector slug (their
//! saved form is `saved.rs`'s). Pure: no I/O, unit-tested.

use foldhash::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::FailureRules;
use crate::domain::Status;
use crate::metrics::{Exemplar, HistogramData, Label};
use crate::store::{TerminalAggregate, TerminalRun};

/// Label value for runs without a trigger type.
pub const NO_TRIGGER: &str = "none";

type RunKey = (Label, Label, Status);
/// (connector, trigger, reason).
type FailureKey = (Label, Label, Label);

/// Every label value the totals hold, once: keys share them, so a key is a few pointers
/// and copies of the totals (the exported, the settled, the repair anchor) and every
/// snapshot built from them share one string per connector, trigger and reason.
#[derive(Debug, Clone, Default)]
pub struct Interner(HashSet<Label>);

impl Interner {
    /// The shared form of `value`, if it is held.
    pub fn get(&self, value: &str) -> Option<&Label> {
        self.0.get(value)
    }

    pub fn label(&mut self, value: &str) -> Label {
        if let Some(label) = self.0.get(value) {
            return label.clone();
        }
        let label = Label::from(value);
        self.0.insert(label.clone());
        label
    }
}

/// A cache, not content: totals with equal counts are equal whatever they interned.
impl PartialEq for Interner {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// What the runs added to the totals since [`Totals::take_changes`] last took them
/// touched: their (connector, trigger) pairs, and the failure keys they counted.
#[derive(Debug, Default)]
pub struct Changes {
    pub pairs: HashSet<(Label, Label)>,
    pub failures: HashSet<FailureKey>,
}

/// The changes not yet taken. Recorded once somebody takes them, and only while every
/// change is a run added: `None` after an aggregate or a merge, and in a copy, so the next
/// snapshot built from these totals is built in full.
#[derive(Debug, Default)]
struct Journal(Option<Changes>);

impl Clone for Journal {
    fn clone(&self) -> Self {
        Self(None)
    }
}

/// A record of changes, not content.
impl PartialEq for Journal {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub(crate) duration_bounds: Arc<[f64]>,
    pub(crate) delay_bounds: Arc<[f64]>,
    pub runs: HashMap<RunKey, u64>,
    pub durations: HashMap<RunKey, HistogramData>,
    pub delays: HashMap<(Label, Label), HistogramData>,
    pub records: HashMap<Label, f64>,
    pub last_success: HashMap<Label, DateTime<Utc>>,
    pub last_failure: HashMap<Label, DateTime<Utc>>,
    /// Failed runs by reason; per (connector, trigger) they sum to the `error` runs.
    pub failures: HashMap<FailureKey, u64>,
    /// The latest failed run counted under each failure key (read one by one, so not for
    /// keys only an aggregate counted).
    pub failure_exemplars: HashMap<FailureKey, Exemplar>,
    pub(crate) rules: Arc<FailureRules>,
    pub(super) labels: Interner,
    journal: Journal,
}

impl Totals {
    /// Empty totals, failures classified by the built-in rules.
    pub fn new(duration_bounds: &[f64], delay_bounds: &[f64]) -> Self {
        Self::with_rules(duration_bounds, delay_bounds, Arc::default())
    }

    pub fn with_rules(
        duration_bounds: &[f64],
        delay_bounds: &[f64],
        rules: Arc<FailureRules>,
    ) -> Self {
        Self {
            duration_bounds: duration_bounds.into(),
            delay_bounds: delay_bounds.into(),
            runs: HashMap::default(),
            durations: HashMap::default(),
            delays: HashMap::default(),
            records: HashMap::default(),
            last_success: HashMap::default(),
            last_failure: HashMap::default(),
            failures: HashMap::default(),
            failure_exemplars: HashMap::default(),
            rules,
            labels: Interner::default(),
            journal: Journal::default(),
        }
    }

    /// Every label value these totals hold.
    pub(crate) fn labels(&self) -> &Interner {
        &self.labels
    }

    /// Empty totals with the same bucket bounds and rules.
    pub fn empty_like(&self) -> Self {
        Self {
            labels: self.labels.clone(),
            ..Self::with_rules(
                &self.duration_bounds,
                &self.delay_bounds,
                self.rules.clone(),
            )
        }
    }

    /// Count failed runs under the reason their error gives; returns their key.
    fn note_failures(
        &mut self,
        connector: &Label,
        trigger: &Label,
        error: Option<&str>,
        runs: u64,
    ) -> FailureKey {
        let reason = self.rules.classify(error);
        let key = (
            connector.clone(),
            trigger.clone(),
            self.labels.label(reason),
        );
        *self.failures.entry(key.clone()).or_default() += runs;
        key
    }

    /// What runs added since the last call touched; `None` when something else changed the
    /// totals since (or on the first call, or in a copy): whoever keeps anything derived
    /// from them then derives it again. Changes are recorded from the first call on.
    pub fn take_changes(&mut self) -> Option<Changes> {
        self.journal.0.replace(Changes::default())
    }

    fn note_completion(&mut self, connector: &Label, status: Status, at: DateTime<Utc>) {
        let map = match status {
            Status::Success => &mut self.last_success,
            Status::Error => &mut self.last_failure,
            _ => return,
        };
        let entry = map.entry(connector.clone()).or_insert(at);
        if at > *entry {
            *entry = at;
        }
    }

    /// The (connector, trigger) labels of a run.
    fn labels_of(&mut self, connector: &str, trigger: Option<&str>) -> (Label, Label) {
        (
            self.labels.label(connector),
            self.labels.label(trigger.unwrap_or(NO_TRIGGER)),
        )
    }

    /// Add one aggregate row computed in SQL.
    pub fn add_aggregate(&mut self, row: &TerminalAggregate) {
        self.journal.0 = None;
        let (connector, trigger) = self.labels_of(&row.connector_slug, row.trigger_type.as_deref());
        let key = (connector.clone(), trigger.clone(), row.status);
        *self.runs.entry(key.clone()).or_default() += row.runs;
        if row.status == Status::Error {
            self.note_failures(&connector, &trigger, row.error.as_deref(), row.runs);
        }
        let durations = HistogramData {
            bounds: self.duration_bounds.clone(),
            cumulative: row.duration_buckets.clone(),
            sum: row.duration_sum_seconds,
            count: row.duration_count,
            exemplars: None,
        };
        self.durations
            .entry(key)
            .or_insert_with(|| HistogramData::zeroed(&self.duration_bounds))
            .add(&durations);
        let delays = HistogramData {
            bounds: self.delay_bounds.clone(),
            cumulative: row.delay_buckets.clone(),
            sum: row.delay_sum_seconds,
            count: row.delay_count,
            exemplars: None,
        };
        self.delays
            .entry((connector.clone(), trigger))
            .or_insert_with(|| HistogramData::zeroed(&self.delay_bounds))
            .add(&delays);
        *self.records.entry(connector.clone()).or_default() += row.records_synced;
        if let Some(at) = row.last_completed_at {
            self.note_completion(&connector, row.status, at);
        }
    }

    /// Add one terminal run read by the incremental scan.
    pub fn add_run(&mut self, run: &TerminalRun) {
        let (connector, trigger) = self.labels_of(&run.connector_slug, run.trigger_type.as_deref());
        let key = (connector.clone(), trigger.clone(), run.status);
        *self.runs.entry(key.clone()).or_default() += 1;
        let failure = (run.status == Status::Error)
            .then(|| self.note_failures(&connector, &trigger, run.error.as_deref(), 1));
        if let Some(key) = &failure {
            let exemplar = Exemplar::new(run.id, 1.0, run.completed_at);
            self.failure_exemplars
                .entry(key.clone())
                .and_modify(|e| *e = e.latest(exemplar))
                .or_insert(exemplar);
        }
        if let Some(changes) = &mut self.journal.0 {
            changes.pairs.insert((connector.clone(), trigger.clone()));
            changes.failures.extend(failure);
        }
        let durations = self
            .durations
            .entry(key)
            .or_insert_with(|| HistogramData::zeroed(&self.duration_bounds));
        if let Some(seconds) = run.duration_seconds {
            durations.observe_run(Exemplar::new(run.id, seconds, run.completed_at));
        }
        let delays = self
            .delays
            .entry((connector.clone(), trigger))
            .or_insert_with(|| HistogramData::zeroed(&self.delay_bounds));
        if let Some(seconds) = run.dispatch_delay_seconds {
            delays.observe(seconds);
        }
        *self.records.entry(connector.clone()).or_default() += run.records_synced.unwrap_or(0.0);
        self.note_completion(&connector, run.status, run.completed_at);
    }
}

mod merge;
pub use merge::Missed;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::test_support::run;

    #[test]
    fn a_sweep_adds_only_the_runs_the_window_missed() {
        let key = |c: &str, s| (Label::from(c), Label::from("manual"), s);
        // Counted when the sweep began: two runs of `a`.
        let mut baseline = Totals::new(&[1.0], &[1.0]);
        baseline.add_run(&run("a", Status::Success, Some(0.5), 1));
        baseline.add_run(&run("a", Status::Success, Some(0.5), 2));
        // Since then the window counted one more of `a`.
        let mut current = baseline.clone();
        current.add_run(&run("a", Status::Success, Some(0.5), 5));
        // The table's range holds the two, and a failure of `b` the window never saw.
        let mut fresh = baseline.clone();
        fresh.add_run(&run("b", Status::Error, Some(3.0), 3));
        assert_eq!(current.add_missed(&fresh, &baseline), Missed::Added(1));
        assert_eq!(
            current.runs[&key("a", Status::Success)],
            3,
            "not lowered, not maxed"
        );
        assert_eq!(current.runs[&key("b", Status::Error)], 1);
        assert_eq!(current.durations[&key("b", Status::Error)].count, 1);
        assert_eq!(current.add_missed(&baseline, &baseline), Missed::Nothing);

        // The connector renamed: the table holds the runs under `a2`. Nothing is added,
        // and nothing is counted twice.
        let mut renamed = Totals::new(&[1.0], &[1.0]);
        renamed.add_run(&run("a2", Status::Success, Some(0.5), 1));
        renamed.add_run(&run("a2", Status::Success, Some(0.5), 2));
        let before = current.clone();
        assert_eq!(
            current.add_missed(&renamed, &baseline),
            Missed::Ambiguous { fewer: 2 }
        );
        assert_eq!(current, before);
    }
}
