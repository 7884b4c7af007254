//! The checkpoint's JSON form of the running [`Totals`]: written with every checkpoint,
//! read back at a start (a form from another version, bucket layout or rule set is not
//! continued from). Pure: no I/O.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::totals::{Interner, Totals};
use crate::domain::{FailureRules, Status};
use crate::metrics::{Exemplar, HistogramData};

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
    /// The table and mapping they were counted from ([`TableMap::key`]); absent (empty)
    /// in checkpoints saved before it was recorded, as it is for syncwatch's own table.
    ///
    /// [`TableMap::key`]: crate::store::TableMap::key
    #[serde(default)]
    mapping: String,
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
    /// The latest failed run of each failure key; absent in checkpoints saved before
    /// exemplars were kept (the durations' are inside their histograms).
    #[serde(default)]
    failure_exemplars: Vec<(String, String, String, Exemplar)>,
}

impl Totals {
    /// The totals as JSON, for the scanner's checkpoint; `connections_saved` says whether
    /// the per-connection states were saved with them.
    pub fn to_json(&self, connections_saved: bool, mapping: &str) -> String {
        let saved = SavedTotals {
            version: SAVED_VERSION,
            connections_saved,
            mapping: mapping.to_owned(),
            duration_bounds: self.duration_bounds.to_vec(),
            delay_bounds: self.delay_bounds.to_vec(),
            runs: self
                .runs
                .iter()
                .map(|((c, t, s), n)| (c.to_string(), t.to_string(), *s, *n))
                .collect(),
            durations: self
                .durations
                .iter()
                .map(|((c, t, s), h)| (c.to_string(), t.to_string(), *s, h.clone()))
                .collect(),
            delays: self
                .delays
                .iter()
                .map(|((c, t), h)| (c.to_string(), t.to_string(), h.clone()))
                .collect(),
            records: self
                .records
                .iter()
                .map(|(c, v)| (c.to_string(), *v))
                .collect(),
            last_success: self
                .last_success
                .iter()
                .map(|(c, t)| (c.to_string(), *t))
                .collect(),
            last_failure: self
                .last_failure
                .iter()
                .map(|(c, t)| (c.to_string(), *t))
                .collect(),
            rules_digest: self.rules.digest().to_owned(),
            failures: self
                .failures
                .iter()
                .map(|((c, t, r), n)| (c.to_string(), t.to_string(), r.to_string(), *n))
                .collect(),
            failure_exemplars: self
                .failure_exemplars
                .iter()
                .map(|((c, t, r), e)| (c.to_string(), t.to_string(), r.to_string(), *e))
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
        mapping: &str,
    ) -> Option<(Self, bool)> {
        let saved: SavedTotals = serde_json::from_str(text).ok()?;
        let consistent = saved.version == SAVED_VERSION
            && saved.mapping == mapping
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
        let mut labels = Interner::default();
        let mut l = |s: String| labels.label(&s);
        let shared = |mut h: HistogramData, bounds: &Arc<[f64]>| {
            h.bounds = bounds.clone();
            h
        };
        totals.failures = saved
            .failures
            .into_iter()
            .map(|(c, t, r, n)| ((l(c), l(t), l(r)), n))
            .collect();
        totals.failure_exemplars = saved
            .failure_exemplars
            .into_iter()
            .map(|(c, t, r, e)| ((l(c), l(t), l(r)), e))
            .collect();
        totals.runs = saved
            .runs
            .into_iter()
            .map(|(c, t, s, n)| ((l(c), l(t), s), n))
            .collect();
        totals.durations = saved
            .durations
            .into_iter()
            .map(|(c, t, s, h)| ((l(c), l(t), s), shared(h, &totals.duration_bounds)))
            .collect();
        totals.delays = saved
            .delays
            .into_iter()
            .map(|(c, t, h)| ((l(c), l(t)), shared(h, &totals.delay_bounds)))
            .collect();
        totals.records = saved.records.into_iter().map(|(c, v)| (l(c), v)).collect();
        totals.last_success = saved
            .last_success
            .into_iter()
            .map(|(c, at)| (l(c), at))
            .collect();
        totals.last_failure = saved
            .last_failure
            .into_iter()
            .map(|(c, at)| (l(c), at))
            .collect();
        totals.labels = labels;
        Some((totals, saved.connections_saved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::test_support::run;

    /// The exemplars (each duration bucket's latest run, each failure key's latest failed
    /// run) come back from a checkpoint as they were saved.
    #[test]
    fn exemplars_survive_a_checkpoint() {
        let rules = Arc::new(FailureRules::default());
        let mut totals = Totals::with_rules(&[1.0, 60.0], &[1.0], rules.clone());
        let mut failed = run("a", Status::Error, Some(30.0), 1_700_000_100);
        failed.error = Some("HTTP 429 Too Many Requests".into());
        for r in [
            run("a", Status::Success, Some(0.5), 1_700_000_000),
            run("a", Status::Success, Some(90.0), 1_700_000_050),
            failed.clone(),
        ] {
            totals.add_run(&r);
        }
        let json = totals.to_json(true, "");
        let (back, _) = Totals::from_json(&json, &[1.0, 60.0], &[1.0], &rules, "").unwrap();
        assert_eq!(back.durations, totals.durations);
        let exemplars = |t: &Totals| {
            let mut all: Vec<_> = t
                .durations
                .values()
                .flat_map(|h| h.exemplars().to_vec())
                .collect();
            all.sort_by_key(|(bucket, e)| (*bucket, e.at_ms));
            all
        };
        assert_eq!(exemplars(&back).len(), 3);
        assert_eq!(exemplars(&back), exemplars(&totals));
        assert_eq!(back.failure_exemplars, totals.failure_exemplars);
        let kept: Vec<_> = back.failure_exemplars.values().map(|e| e.run).collect();
        assert_eq!(kept, [failed.id]);
    }
}
