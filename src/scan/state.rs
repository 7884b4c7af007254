//! The scanner's running totals, keyed by the raw connector slug, and how they turn into
//! a capped [`Snapshot`]. Pure: no I/O, unit-tested.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::Status;
use crate::metrics::{HistogramData, LabelCapper, Snapshot};
use crate::store::{ActiveGroup, ConnectionState, TerminalAggregate, TerminalRun};

/// Label value for runs without a trigger type.
pub const NO_TRIGGER: &str = "none";

type RunKey = (String, String, Status);

#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    duration_bounds: Vec<f64>,
    delay_bounds: Vec<f64>,
    pub runs: HashMap<RunKey, u64>,
    pub durations: HashMap<RunKey, HistogramData>,
    pub delays: HashMap<(String, String), HistogramData>,
    pub records: HashMap<String, f64>,
    pub last_success: HashMap<String, DateTime<Utc>>,
    pub last_failure: HashMap<String, DateTime<Utc>>,
}

impl Totals {
    pub fn new(duration_bounds: &[f64], delay_bounds: &[f64]) -> Self {
        Self {
            duration_bounds: duration_bounds.to_vec(),
            delay_bounds: delay_bounds.to_vec(),
            runs: HashMap::new(),
            durations: HashMap::new(),
            delays: HashMap::new(),
            records: HashMap::new(),
            last_success: HashMap::new(),
            last_failure: HashMap::new(),
        }
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

    /// The totals as JSON, for the scanner's checkpoint.
    pub fn to_json(&self) -> String {
        let saved = SavedTotals {
            version: SAVED_VERSION,
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
        };
        serde_json::to_string(&saved).unwrap_or_default()
    }

    /// Totals saved by [`Totals::to_json`], if they parse and were computed with these
    /// bucket bounds (otherwise they cannot be continued and a full baseline is needed).
    pub fn from_json(text: &str, duration_bounds: &[f64], delay_bounds: &[f64]) -> Option<Self> {
        let saved: SavedTotals = serde_json::from_str(text).ok()?;
        let consistent = saved.version == SAVED_VERSION
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
        let mut totals = Totals::new(duration_bounds, delay_bounds);
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
        Some(totals)
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

const SAVED_VERSION: u32 = 1;

/// The checkpoint's JSON form of [`Totals`] (map keys are tuples, so entries are lists).
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedTotals {
    version: u32,
    duration_bounds: Vec<f64>,
    delay_bounds: Vec<f64>,
    runs: Vec<(String, String, Status, u64)>,
    durations: Vec<(String, String, Status, HistogramData)>,
    delays: Vec<(String, String, HistogramData)>,
    records: Vec<(String, f64)>,
    last_success: Vec<(String, DateTime<Utc>)>,
    last_failure: Vec<(String, DateTime<Utc>)>,
}

/// Per-connection state for failing connections and consecutive failures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Connections {
    pub by_id: HashMap<Uuid, ConnectionState>,
}

impl Connections {
    pub fn from_states(states: Vec<ConnectionState>) -> Self {
        Self {
            by_id: states
                .into_iter()
                .map(|s| (s.workspace_connector_id, s))
                .collect(),
        }
    }

    /// Apply a terminal run read after the baseline.
    pub fn add_run(&mut self, run: &TerminalRun) {
        let entry = self
            .by_id
            .entry(run.workspace_connector_id)
            .or_insert_with(|| ConnectionState {
                workspace_connector_id: run.workspace_connector_id,
                connector_slug: run.connector_slug.clone(),
                last_status: run.status,
                last_completed_at: run.completed_at,
                consecutive_failures: 0,
            });
        match run.status {
            Status::Error => entry.consecutive_failures += 1,
            Status::Success if run.completed_at >= entry.last_completed_at => {
                entry.consecutive_failures = 0;
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

/// What the snapshot builder needs besides the totals.
pub struct SnapshotInputs<'a> {
    pub totals: &'a Totals,
    pub connections: &'a Connections,
    pub active: &'a [ActiveGroup],
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
    for state in failing.into_iter().take(inputs.top_failing) {
        snap.consecutive_failures.insert(
            (
                label(&state.connector_slug),
                state.workspace_connector_id.to_string(),
            ),
            state.consecutive_failures,
        );
    }
    (snap, overflowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(connector: &str, status: Status, secs: Option<f64>, at: i64) -> TerminalRun {
        TerminalRun {
            id: Uuid::new_v4(),
            workspace_connector_id: Uuid::from_u128(at as u128 % 3),
            connector_slug: connector.into(),
            trigger_type: Some("manual".into()),
            status,
            duration_seconds: secs,
            dispatch_delay_seconds: secs.map(|_| 0.7),
            records_synced: Some(10.0),
            completed_at: DateTime::from_timestamp(at, 0).unwrap(),
            created_at: DateTime::from_timestamp(at - 60, 0).unwrap(),
            started_at: None,
            error: None,
        }
    }

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

    #[test]
    fn consecutive_failures_reset_on_success() {
        let mut connections = Connections::default();
        let id = Uuid::from_u128(7);
        let mut r = run("a", Status::Error, Some(1.0), 10);
        r.workspace_connector_id = id;
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
