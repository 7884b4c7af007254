//! The scanner's running totals of terminal runs, keyed by the raw connector slug, and
//! their saved (checkpoint) form. Pure: no I/O, unit-tested.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::reasons::FailureRules;
use crate::domain::Status;
use crate::metrics::HistogramData;
use crate::store::{TerminalAggregate, TerminalRun};

/// Label value for runs without a trigger type.
pub const NO_TRIGGER: &str = "none";

type RunKey = (String, String, Status);
/// (connector, trigger, reason).
type FailureKey = (String, String, String);

#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub(crate) duration_bounds: Vec<f64>,
    pub(crate) delay_bounds: Vec<f64>,
    pub runs: HashMap<RunKey, u64>,
    pub durations: HashMap<RunKey, HistogramData>,
    pub delays: HashMap<(String, String), HistogramData>,
    pub records: HashMap<String, f64>,
    pub last_success: HashMap<String, DateTime<Utc>>,
    pub last_failure: HashMap<String, DateTime<Utc>>,
    /// Failed runs by reason; per (connector, trigger) they sum to the `error` runs.
    pub failures: HashMap<FailureKey, u64>,
    pub(crate) rules: Arc<FailureRules>,
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
            duration_bounds: duration_bounds.to_vec(),
            delay_bounds: delay_bounds.to_vec(),
            runs: HashMap::new(),
            durations: HashMap::new(),
            delays: HashMap::new(),
            records: HashMap::new(),
            last_success: HashMap::new(),
            last_failure: HashMap::new(),
            failures: HashMap::new(),
            rules,
        }
    }

    /// Empty totals with the same bucket bounds and rules.
    pub fn empty_like(&self) -> Self {
        Self::with_rules(
            &self.duration_bounds,
            &self.delay_bounds,
            self.rules.clone(),
        )
    }

    fn note_failures(&mut self, connector: &str, trigger: &str, error: Option<&str>, runs: u64) {
        let reason = self.rules.classify(error).to_owned();
        *self
            .failures
            .entry((connector.to_owned(), trigger.to_owned(), reason))
            .or_default() += runs;
    }

    fn note_completion(&mut self, connector: &str, status: Status, at: DateTime<Utc>) {
        let map = match status {
            Status::Success => &mut self.last_success,
            Status::Error => &mut self.last_failure,
            _ => return,
        };
        let entry = map.entry(connector.to_owned()).or_insert(at);
        if at > *entry {
            *entry = at;
        }
    }

    /// Add one aggregate row computed in SQL.
    pub fn add_aggregate(&mut self, row: &TerminalAggregate) {
        let trigger = row
            .trigger_type
            .clone()
            .unwrap_or_else(|| NO_TRIGGER.into());
        let key = (row.connector_slug.clone(), trigger.clone(), row.status);
        *self.runs.entry(key.clone()).or_default() += row.runs;
        if row.status == Status::Error {
            self.note_failures(
                &row.connector_slug,
                &trigger,
                row.error.as_deref(),
                row.runs,
            );
        }
        let durations = HistogramData {
            bounds: self.duration_bounds.clone(),
            cumulative: row.duration_buckets.clone(),
            sum: row.duration_sum_seconds,
            count: row.duration_count,
        };
        self.durations
            .entry(key)
            .or_insert_with(|| HistogramData::empty(&self.duration_bounds))
            .add(&durations);
        let delays = HistogramData {
            bounds: self.delay_bounds.clone(),
            cumulative: row.delay_buckets.clone(),
            sum: row.delay_sum_seconds,
            count: row.delay_count,
        };
        self.delays
            .entry((row.connector_slug.clone(), trigger))
            .or_insert_with(|| HistogramData::empty(&self.delay_bounds))
            .add(&delays);
        *self.records.entry(row.connector_slug.clone()).or_default() += row.records_synced;
        if let Some(at) = row.last_completed_at {
            self.note_completion(&row.connector_slug, row.status, at);
        }
    }

    /// Add one terminal run read by the incremental scan.
    pub fn add_run(&mut self, run: &TerminalRun) {
        let trigger = run
            .trigger_type
            .clone()
            .unwrap_or_else(|| NO_TRIGGER.into());
        let key = (run.connector_slug.clone(), trigger.clone(), run.status);
        *self.runs.entry(key.clone()).or_default() += 1;
        if run.status == Status::Error {
            self.note_failures(&run.connector_slug, &trigger, run.error.as_deref(), 1);
        }
        let durations = self
            .durations
            .entry(key)
            .or_insert_with(|| HistogramData::empty(&self.duration_bounds));
        if let Some(seconds) = run.duration_seconds {
            durations.observe(seconds);
        }
        let delays = self
            .delays
            .entry((run.connector_slug.clone(), trigger))
            .or_insert_with(|| HistogramData::empty(&self.delay_bounds));
        if let Some(seconds) = run.dispatch_delay_seconds {
            delays.observe(seconds);
        }
        *self.records.entry(run.connector_slug.clone()).or_default() +=
            run.records_synced.unwrap_or(0.0);
        self.note_completion(&run.connector_slug, run.status, run.completed_at);
    }

    /// The totals as JSON, for the scanner's checkpoint; `connections_saved` says whether
    /// the per-connection states were saved with them.
    pub fn to_json(&self, connections_saved: bool) -> String {
        let saved = SavedTotals {
            version: SAVED_VERSION,
            connections_saved,
            duration_bounds: self.duration_bounds.clone(),
            delay_bounds: self.delay_bounds.clone(),
            runs: self
                .runs
                .iter()
                .map(|((c, t, s), n)| (c.clone(), t.clone(), *s, *n))
                .collect(),
            durations: self
                .durations
                .iter()
                .map(|((c, t, s), h)| (c.clone(), t.clone(), *s, h.clone()))
                .collect(),
            delays: self
                .delays
                .iter()
                .map(|((c, t), h)| (c.clone(), t.clone(), h.clone()))
                .collect(),
            records: self.records.iter().map(|(c, v)| (c.clone(), *v)).collect(),
            last_success: self
                .last_success
                .iter()
                .map(|(c, t)| (c.clone(), *t))
                .collect(),
            last_failure: self
                .last_failure
                .iter()
                .map(|(c, t)| (c.clone(), *t))
                .collect(),
            rules_digest: self.rules.digest().to_owned(),
            failures: self
                .failures
                .iter()
                .map(|((c, t, r), n)| (c.clone(), t.clone(), r.clone(), *n))
                .collect(),
        };
        serde_json::to_string(&saved).unwrap_or_default()
    }

    /// Totals saved by [`Totals::to_json`], and whether the connection states were saved
    /// with them, if they parse and were computed with these bucket bounds and failure
    /// rules (otherwise they cannot be continued and the totals are built again).
    pub fn from_json(
        text: &str,
        duration_bounds: &[f64],
        delay_bounds: &[f64],
        rules: &Arc<FailureRules>,
    ) -> Option<(Self, bool)> {
        let saved: SavedTotals = serde_json::from_str(text).ok()?;
        let consistent = saved.version == SAVED_VERSION
            && saved.rules_digest == rules.digest()
            && saved.duration_bounds == duration_bounds
            && saved.delay_bounds == delay_bounds
            && saved
                .durations
                .iter()
                .all(|d| d.3.cumulative.len() == duration_bounds.len())
            && saved
                .delays
                .iter()
                .all(|d| d.2.cumulative.len() == delay_bounds.len());
        if !consistent {
            return None;
        }
        let mut totals = Totals::with_rules(duration_bounds, delay_bounds, rules.clone());
        totals.failures = saved
            .failures
            .into_iter()
            .map(|(c, t, r, n)| ((c, t, r), n))
            .collect();
        totals.runs = saved
            .runs
            .into_iter()
            .map(|(c, t, s, n)| ((c, t, s), n))
            .collect();
        totals.durations = saved
            .durations
            .into_iter()
            .map(|(c, t, s, h)| ((c, t, s), h))
            .collect();
        totals.delays = saved
            .delays
            .into_iter()
            .map(|(c, t, h)| ((c, t), h))
            .collect();
        totals.records = saved.records.into_iter().collect();
        totals.last_success = saved.last_success.into_iter().collect();
        totals.last_failure = saved.last_failure.into_iter().collect();
        Some((totals, saved.connections_saved))
    }

    /// Merge a fresh re-baseline into the running totals without ever lowering a value.
    pub fn max_with(&mut self, fresh: &Totals) {
        for (key, value) in &fresh.runs {
            let mine = self.runs.entry(key.clone()).or_default();
            *mine = (*mine).max(*value);
        }
        for (key, value) in &fresh.durations {
            self.durations
                .entry(key.clone())
                .or_insert_with(|| HistogramData::empty(&fresh.duration_bounds))
                .max_with(value);
        }
        for (key, value) in &fresh.delays {
            self.delays
                .entry(key.clone())
                .or_insert_with(|| HistogramData::empty(&fresh.delay_bounds))
                .max_with(value);
        }
        for (key, value) in &fresh.failures {
            let mine = self.failures.entry(key.clone()).or_default();
            *mine = (*mine).max(*value);
        }
        for (key, value) in &fresh.records {
            let mine = self.records.entry(key.clone()).or_default();
            *mine = mine.max(*value);
        }
        for (connector, at) in &fresh.last_success {
            self.note_completion(connector, Status::Success, *at);
        }
        for (connector, at) in &fresh.last_failure {
            self.note_completion(connector, Status::Error, *at);
        }
    }
}

/// Whether a checkpoint's totals were saved together with the connection states (only
/// then may the history before it be deleted).
pub fn saved_with_connections(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Flag {
        #[serde(default)]
        connections_saved: bool,
    }
    serde_json::from_str::<Flag>(text).is_ok_and(|f| f.connections_saved)
}

/// 2: failures by reason, and the digest of the rules that classified them.
const SAVED_VERSION: u32 = 2;

/// The checkpoint's JSON form of [`Totals`] (map keys are tuples, so entries are lists).
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedTotals {
    version: u32,
    /// Absent in checkpoints written before connection states were saved.
    #[serde(default)]
    connections_saved: bool,
    duration_bounds: Vec<f64>,
    delay_bounds: Vec<f64>,
    runs: Vec<(String, String, Status, u64)>,
    durations: Vec<(String, String, Status, HistogramData)>,
    delays: Vec<(String, String, HistogramData)>,
    records: Vec<(String, f64)>,
    last_success: Vec<(String, DateTime<Utc>)>,
    last_failure: Vec<(String, DateTime<Utc>)>,
    rules_digest: String,
    failures: Vec<(String, String, String, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::test_support::run;

    #[test]
    fn max_with_never_lowers() {
        let mut current = Totals::new(&[1.0], &[1.0]);
        current.add_run(&run("a", Status::Success, Some(0.5), 1));
        current.add_run(&run("a", Status::Success, Some(0.5), 2));
        let mut fresh = Totals::new(&[1.0], &[1.0]);
        fresh.add_run(&run("a", Status::Success, Some(0.5), 1));
        fresh.add_run(&run("b", Status::Error, Some(3.0), 3));
        current.max_with(&fresh);
        let key = ("a".to_owned(), "manual".to_owned(), Status::Success);
        assert_eq!(current.runs[&key], 2);
        assert_eq!(
            current.runs[&("b".to_owned(), "manual".to_owned(), Status::Error)],
            1
        );
    }
}
