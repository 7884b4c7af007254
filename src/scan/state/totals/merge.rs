//! Totals counted apart, added in: a second of the window when it settles, and a repair
//! sweep's recount of the table, of which only what was not counted is added.

use chrono::{DateTime, Utc};

use super::{Label, Totals};
use crate::domain::Status;
use crate::metrics::HistogramData;

/// What [`Totals::add_missed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// The table holds no run the totals did not count.
    Nothing,
    /// This many runs the window did not see were counted.
    Added(u64),
    /// `fewer` counted runs are no longer under the label they were counted with (or no
    /// longer in the table): nothing was added.
    Ambiguous { fewer: u64 },
}

impl Totals {
    /// Add `other` (runs counted apart, such as a second of the window) into these totals.
    pub fn add_totals(&mut self, other: &Totals) {
        self.journal.0 = None;
        let mut label = |l: &Label| self.labels.label(l);
        let mut runs = Vec::with_capacity(other.runs.len());
        for ((c, t, s), n) in &other.runs {
            runs.push(((label(c), label(t), *s), *n));
        }
        let mut durations = Vec::with_capacity(other.durations.len());
        for ((c, t, s), h) in &other.durations {
            durations.push(((label(c), label(t), *s), h));
        }
        let mut delays = Vec::with_capacity(other.delays.len());
        for ((c, t), h) in &other.delays {
            delays.push(((label(c), label(t)), h));
        }
        let mut failures = Vec::with_capacity(other.failures.len());
        for ((c, t, r), n) in &other.failures {
            failures.push(((label(c), label(t), label(r)), *n));
        }
        let mut exemplars = Vec::with_capacity(other.failure_exemplars.len());
        for ((c, t, r), e) in &other.failure_exemplars {
            exemplars.push(((label(c), label(t), label(r)), *e));
        }
        let records: Vec<(Label, f64)> = (other.records.iter())
            .map(|(c, v)| (label(c), *v))
            .collect();
        let success: Vec<(Label, DateTime<Utc>)> = (other.last_success.iter())
            .map(|(c, at)| (label(c), *at))
            .collect();
        let failure: Vec<(Label, DateTime<Utc>)> = (other.last_failure.iter())
            .map(|(c, at)| (label(c), *at))
            .collect();
        for (key, n) in runs {
            *self.runs.entry(key).or_default() += n;
        }
        for (key, h) in durations {
            self.durations
                .entry(key)
                .or_insert_with(|| HistogramData::zeroed(&self.duration_bounds))
                .add(h);
        }
        for (key, h) in delays {
            self.delays
                .entry(key)
                .or_insert_with(|| HistogramData::zeroed(&self.delay_bounds))
                .add(h);
        }
        for (key, n) in failures {
            *self.failures.entry(key).or_default() += n;
        }
        for (key, exemplar) in exemplars {
            self.failure_exemplars
                .entry(key)
                .and_modify(|e| *e = e.latest(exemplar))
                .or_insert(exemplar);
        }
        for (connector, value) in records {
            *self.records.entry(connector).or_default() += value;
        }
        for (connector, at) in success {
            self.note_completion(&connector, Status::Success, at);
        }
        for (connector, at) in failure {
            self.note_completion(&connector, Status::Error, at);
        }
    }

    /// Add what a repair sweep found in the table that these totals did not count: `fresh`
    /// (the table's runs over the sweep's range, as it holds them now) less `baseline`
    /// (what was counted over the same range when the sweep began), label set by label
    /// set. Only when every label set holds at least as many runs in `fresh` as in
    /// `baseline`: a label set with fewer means runs changed labels (a renamed connector, a
    /// deleted connection row) or left the table (retention, a dropped partition) since they
    /// were counted, and then which label a missed run would belong to cannot be told, so
    /// nothing is added. A run counted is never counted again under another label.
    pub fn add_missed(&mut self, fresh: &Totals, baseline: &Totals) -> Missed {
        let fewer: u64 = baseline
            .runs
            .iter()
            .map(|(key, n)| n.saturating_sub(fresh.runs.get(key).copied().unwrap_or(0)))
            .sum();
        let failures_fewer = baseline
            .failures
            .iter()
            .any(|(key, n)| *n > fresh.failures.get(key).copied().unwrap_or(0));
        if fewer > 0 || failures_fewer {
            return Missed::Ambiguous { fewer };
        }
        let mut added = 0;
        let mut histograms = Vec::new();
        for (key, n) in &fresh.runs {
            let more = n - baseline.runs.get(key).copied().unwrap_or(0);
            if more == 0 {
                continue;
            }
            let zero = HistogramData::zeroed(&fresh.duration_bounds);
            let base = baseline.durations.get(key).unwrap_or(&zero);
            let Some(d) = fresh
                .durations
                .get(key)
                .and_then(|f| HistogramData::difference(f, base))
            else {
                return Missed::Ambiguous { fewer: 0 };
            };
            histograms.push((key.clone(), more, d));
            added += more;
        }
        if added == 0 {
            return Missed::Nothing;
        }
        let mut delays = Vec::new();
        for (key, f) in &fresh.delays {
            let zero = HistogramData::zeroed(&fresh.delay_bounds);
            let base = baseline.delays.get(key).unwrap_or(&zero);
            let Some(d) = HistogramData::difference(f, base) else {
                return Missed::Ambiguous { fewer: 0 };
            };
            delays.push((key.clone(), d));
        }
        self.journal.0 = None;
        for (key, more, d) in histograms {
            *self.runs.entry(key.clone()).or_default() += more;
            self.durations
                .entry(key)
                .or_insert_with(|| HistogramData::zeroed(&fresh.duration_bounds))
                .add(&d);
        }
        for (key, d) in delays {
            self.delays
                .entry(key)
                .or_insert_with(|| HistogramData::zeroed(&fresh.delay_bounds))
                .add(&d);
        }
        for (key, n) in &fresh.failures {
            let more = n - baseline.failures.get(key).copied().unwrap_or(0);
            *self.failures.entry(key.clone()).or_default() += more;
        }
        for (key, exemplar) in &fresh.failure_exemplars {
            self.failure_exemplars
                .entry(key.clone())
                .and_modify(|e| *e = e.latest(*exemplar))
                .or_insert(*exemplar);
        }
        for (key, value) in &fresh.records {
            let more = value - baseline.records.get(key).copied().unwrap_or(0.0);
            *self.records.entry(key.clone()).or_default() += more.max(0.0);
        }
        for (connector, at) in &fresh.last_success {
            self.note_completion(connector, Status::Success, *at);
        }
        for (connector, at) in &fresh.last_failure {
            self.note_completion(connector, Status::Error, *at);
        }
        Missed::Added(added)
    }
}
