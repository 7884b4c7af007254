//! The domain metrics as plain data: what one scan found. The scanner builds a new
//! snapshot and swaps it in whole; scrapes only read it.

use std::collections::BTreeMap;

pub use super::histogram::HistogramData;
pub use super::labels::Label;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

/// Series keys use the capped `connector` label value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Whether this replica exports domain metrics (it holds the scanner lease).
    pub leader: bool,
    /// (connector, trigger, status) → terminal runs.
    pub runs: BTreeMap<(Label, Label, Label), u64>,
    /// (connector, trigger, reason, owner) → failed runs, those counted; every reason of
    /// `failure_reasons` is exported for every pair of `failure_pairs` besides, zero when
    /// not counted (see [`Snapshot::failure_series`]).
    pub failures: BTreeMap<(Label, Label, Label, Label), u64>,
    /// The latest failed run of each failure series that has one (written as its
    /// exemplar in the OpenMetrics exposition). Shared with the snapshot builder's copy
    /// until a failure changes it.
    pub failure_exemplars: std::sync::Arc<BTreeMap<(Label, Label, Label, Label), super::Exemplar>>,
    /// (connector, trigger) pairs whose failure series are all exported, sorted.
    pub failure_pairs: Vec<(Label, Label)>,
    /// Every (reason, owner) of the failure rules, sorted.
    pub failure_reasons: Vec<(Label, Label)>,
    /// (connector, trigger, status) → durations of the runs that started.
    pub durations: BTreeMap<(Label, Label, Label), HistogramData>,
    /// (connector, trigger) → `started_at - created_at`.
    pub dispatch_delays: BTreeMap<(Label, Label), HistogramData>,
    pub records_synced: BTreeMap<Label, f64>,
    /// (connector, status) → live scheduled / in-progress runs.
    pub active: BTreeMap<(Label, Label), u64>,
    pub stuck: BTreeMap<(Label, Label), u64>,
    pub oldest_active: BTreeMap<(Label, Label), f64>,
    pub last_success: BTreeMap<Label, f64>,
    pub last_failure: BTreeMap<Label, f64>,
    pub failing_connections: BTreeMap<Label, u64>,
    /// (connector, workspace_connector_id) → consecutive failures, the K worst.
    pub consecutive_failures: BTreeMap<(Label, Label), u64>,
    /// connector → connections overdue by their learned schedule.
    pub overdue_connections: BTreeMap<Label, u64>,
    /// (connector, workspace_connector_id) → seconds past due, the K most overdue.
    pub overdue_seconds: BTreeMap<(Label, Label), f64>,
    /// connector → live runs taking far longer than their connection's usual duration.
    pub overrunning: BTreeMap<Label, u64>,
    /// Every connection with a failure streak, worst first (raw connector slugs, never
    /// capped): not exported, read by the status page.
    pub failing_list: Vec<crate::store::ConnectionState>,
}

/// One domain metric family: its name, help, type and label names.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
    pub labels: &'static [&'static str],
}

/// Defines each family as a named constant, and [`DOMAIN_FAMILIES`] listing them in
/// exposition order.
macro_rules! families {
    ($($(#[$doc:meta])* $id:ident: $kind:ident $name:literal [$($label:literal),*] $help:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $id: Family = Family {
                name: $name,
                help: $help,
                kind: MetricType::$kind,
                labels: &[$($label),*],
            };
        )*
        /// Every domain family, in exposition order.
        pub const DOMAIN_FAMILIES: &[&Family] = &[$(&$id),*];
    };
}

// One family per line: constant, type, name, labels, help.
families! {
    RUNS: COUNTER "connector_sync_runs_total" ["connector", "trigger", "status"] "Terminal sync runs (success or error) recorded in the store, by connector, trigger and final status. Soft-deleted runs stay counted.";
    FAILURES: COUNTER "connector_sync_failures_total" ["connector", "trigger", "reason", "owner"] "Failed terminal runs by the reason their error text gives (the first matching failure rule; other when none matches, none without an error) and who can fix it (customer, provider, platform). Per connector and trigger they sum to the error runs of connector_sync_runs_total.";
    DURATION: HISTOGRAM "connector_sync_duration_seconds" ["connector", "trigger", "status"] "Duration in seconds (completed_at - started_at) of terminal runs that started, from the store.";
    DISPATCH_DELAY: HISTOGRAM "connector_sync_dispatch_delay_seconds" ["connector", "trigger"] "Seconds from a run's creation to its start (started_at - created_at), for terminal runs that started, from the store.";
    RECORDS_SYNCED: COUNTER "connector_sync_records_synced_total" ["connector"] "Sum of metadata.records_synced over terminal runs, from the store.";
    ACTIVE: GAUGE "connector_sync_runs_active" ["connector", "status"] "Live runs now scheduled or in progress, from the store.";
    STUCK: GAUGE "connector_sync_runs_stuck" ["connector", "status"] "Live runs scheduled for too long, or in progress with no update or running for too long, from the store.";
    OLDEST_ACTIVE: GAUGE "connector_sync_oldest_active_run_timestamp_seconds" ["connector", "status"] "Unix time at which the oldest live scheduled run was created, or the oldest in-progress run started.";
    LAST_SUCCESS: GAUGE "connector_sync_last_success_timestamp_seconds" ["connector"] "Unix time of the most recent successful run's completion, from the store.";
    LAST_FAILURE: GAUGE "connector_sync_last_failure_timestamp_seconds" ["connector"] "Unix time of the most recent failed run's completion, from the store.";
    FAILING_CONNECTIONS: GAUGE "connector_sync_failing_connections" ["connector"] "Connections whose latest terminal run failed, from the store.";
    OVERDUE: GAUGE "connector_sync_connections_overdue" ["connector"] "Connections whose latest scheduled (cloud_task) run was created longer ago than --overdue-factor times their learned interval between scheduled runs (learned from the last 20 gaps, after 5 runs; silent longer than --overdue-forget-after: retired).";
    OVERDUE_SECONDS: GAUGE "connector_sync_connection_overdue_seconds" ["connector", "workspace_connector_id"] "Seconds since the next scheduled run of an overdue connection was due (its latest scheduled run's creation plus its learned interval), for the most overdue connections (top K only).";
    OVERRUNNING: GAUGE "connector_sync_runs_overrunning" ["connector"] "Live runs in progress for longer than max(--overrun-factor times the p95 of their connection's last 20 successful durations, --overrun-min), for connections with at least 5 successful runs.";
    CONSECUTIVE_FAILURES: GAUGE "connector_sync_connection_consecutive_failures" ["connector", "workspace_connector_id"] "Failed runs since the last success, for the connections with the most (top K only).";
}

fn three(key: &(Label, Label, Label)) -> [&str; 3] {
    [&key.0, &key.1, &key.2]
}

fn two(key: &(Label, Label)) -> [&str; 2] {
    [&key.0, &key.1]
}

fn labels(names: &[&str], values: &[&str]) -> Vec<LabelPair> {
    names
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect()
}

fn family(spec: &Family, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(spec.name.to_owned());
    family.set_help(spec.help.to_owned());
    family.set_field_type(spec.kind);
    family.set_metric(metrics);
    family
}

/// One counter or gauge point.
fn point(label_values: &[&str], names: &[&str], value: f64, counter: bool) -> Metric {
    let mut metric = Metric::default();
    metric.set_label(labels(names, label_values));
    if counter {
        let mut c = Counter::default();
        c.set_value(value);
        metric.set_counter(c);
    } else {
        let mut g = Gauge::default();
        g.set_value(value);
        metric.set_gauge(g);
    }
    metric
}

fn counter(label_values: &[&str], names: &[&str], value: f64) -> Metric {
    point(label_values, names, value, true)
}

fn gauge(label_values: &[&str], names: &[&str], value: f64) -> Metric {
    point(label_values, names, value, false)
}

fn histogram(label_values: &[&str], names: &[&str], data: &HistogramData) -> Metric {
    let mut metric = Metric::default();
    metric.set_label(labels(names, label_values));
    let mut h = Histogram::default();
    h.set_sample_count(data.count);
    h.set_sample_sum(data.sum);
    h.set_bucket(
        data.bounds
            .iter()
            .zip(&data.cumulative)
            .map(|(bound, count)| {
                let mut b = Bucket::default();
                b.set_upper_bound(*bound);
                b.set_cumulative_count(*count);
                b
            })
            .collect(),
    );
    metric.set_histogram(h);
    metric
}

type FailureKey<'a> = (&'a Label, &'a Label, &'a Label, &'a Label);

impl Snapshot {
    /// The failure series as exported, in key order: every reason of every pair, zero when
    /// not counted, merged with the counted ones. Zero-filled here, when written, rather
    /// than stored: at 500 connectors they are 16,000 of the snapshot's entries.
    pub fn failure_series(&self) -> Vec<([&str; 4], u64)> {
        fn key<'a>((c, t, r, o): FailureKey<'a>) -> [&'a str; 4] {
            [c, t, r, o]
        }
        let zeros = self
            .failure_pairs
            .iter()
            .flat_map(|(c, t)| self.failure_reasons.iter().map(move |(r, o)| (c, t, r, o)));
        let mut counted = self
            .failures
            .iter()
            .map(|((c, t, r, o), n)| ((c, t, r, o), *n))
            .peekable();
        let mut series = Vec::with_capacity(self.failure_pairs.len() * self.failure_reasons.len());
        for zero in zeros {
            while let Some((first, n)) = counted.next_if(|(k, _)| *k < zero) {
                series.push((key(first), n));
            }
            match counted.next_if(|(k, _)| *k == zero) {
                Some((same, n)) => series.push((key(same), n)),
                None => series.push((key(zero), 0)),
            }
        }
        series.extend(counted.map(|(k, n)| (key(k), n)));
        series
    }

    /// The failure series as exported, each with its exemplar (the latest failed run it
    /// counts), if kept: the exemplars are sorted as the series are, and walked alongside.
    pub fn failure_series_with_exemplars(
        &self,
    ) -> impl ExactSizeIterator<Item = ([&str; 4], u64, Option<&super::Exemplar>)> {
        fn key((c, t, r, o): &(Label, Label, Label, Label)) -> [&str; 4] {
            [c, t, r, o]
        }
        let mut exemplars = self.failure_exemplars.iter().peekable();
        self.failure_series().into_iter().map(move |(k, n)| {
            while exemplars.next_if(|(e, _)| key(e) < k).is_some() {}
            let exemplar = exemplars.next_if(|(e, _)| key(e) == k).map(|(_, e)| e);
            (k, n, exemplar)
        })
    }

    /// The metric families of this snapshot; empty when this replica does not lead.
    pub fn families(&self) -> Vec<MetricFamily> {
        if !self.leader {
            return Vec::new();
        }
        let families = vec![
            family(
                &RUNS,
                self.runs
                    .iter()
                    .map(|(k, v)| counter(&three(k), RUNS.labels, *v as f64))
                    .collect(),
            ),
            family(
                &FAILURES,
                self.failure_series()
                    .into_iter()
                    .map(|(k, v)| counter(&k, FAILURES.labels, v as f64))
                    .collect(),
            ),
            family(
                &DURATION,
                self.durations
                    .iter()
                    .map(|(k, v)| histogram(&three(k), DURATION.labels, v))
                    .collect(),
            ),
            family(
                &DISPATCH_DELAY,
                self.dispatch_delays
                    .iter()
                    .map(|(k, v)| histogram(&two(k), DISPATCH_DELAY.labels, v))
                    .collect(),
            ),
            family(
                &RECORDS_SYNCED,
                self.records_synced
                    .iter()
                    .map(|(k, v)| counter(&[&**k], RECORDS_SYNCED.labels, *v))
                    .collect(),
            ),
            family(
                &ACTIVE,
                self.active
                    .iter()
                    .map(|(k, v)| gauge(&two(k), ACTIVE.labels, *v as f64))
                    .collect(),
            ),
            family(
                &STUCK,
                self.stuck
                    .iter()
                    .map(|(k, v)| gauge(&two(k), STUCK.labels, *v as f64))
                    .collect(),
            ),
            family(
                &OLDEST_ACTIVE,
                self.oldest_active
                    .iter()
                    .map(|(k, v)| gauge(&two(k), OLDEST_ACTIVE.labels, *v))
                    .collect(),
            ),
            family(
                &LAST_SUCCESS,
                self.last_success
                    .iter()
                    .map(|(k, v)| gauge(&[&**k], LAST_SUCCESS.labels, *v))
                    .collect(),
            ),
            family(
                &LAST_FAILURE,
                self.last_failure
                    .iter()
                    .map(|(k, v)| gauge(&[&**k], LAST_FAILURE.labels, *v))
                    .collect(),
            ),
            family(
                &FAILING_CONNECTIONS,
                self.failing_connections
                    .iter()
                    .map(|(k, v)| gauge(&[&**k], FAILING_CONNECTIONS.labels, *v as f64))
                    .collect(),
            ),
            family(
                &OVERDUE,
                self.overdue_connections
                    .iter()
                    .map(|(k, v)| gauge(&[&**k], OVERDUE.labels, *v as f64))
                    .collect(),
            ),
            family(
                &OVERDUE_SECONDS,
                self.overdue_seconds
                    .iter()
                    .map(|(k, v)| gauge(&two(k), OVERDUE_SECONDS.labels, *v))
                    .collect(),
            ),
            family(
                &OVERRUNNING,
                self.overrunning
                    .iter()
                    .map(|(k, v)| gauge(&[&**k], OVERRUNNING.labels, *v as f64))
                    .collect(),
            ),
            family(
                &CONSECUTIVE_FAILURES,
                self.consecutive_failures
                    .iter()
                    .map(|(k, v)| gauge(&two(k), CONSECUTIVE_FAILURES.labels, *v as f64))
                    .collect(),
            ),
        ];
        families
            .into_iter()
            .filter(|f| !f.get_metric().is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_are_cumulative() {
        let mut h = HistogramData::empty(&[1.0, 5.0, 15.0]);
        for v in [0.5, 1.0, 3.0, 20.0] {
            h.observe(v);
        }
        assert_eq!(h.cumulative, vec![2, 3, 3]);
        assert_eq!(h.count, 4);
        assert!((h.sum - 24.5).abs() < 1e-9);
    }

    #[test]
    fn the_difference_is_what_only_the_fresh_histogram_observed() {
        let base = HistogramData {
            bounds: vec![1.0, 2.0].into(),
            cumulative: vec![1, 4],
            sum: 5.0,
            count: 5,
            exemplars: None,
        };
        let fresh = HistogramData {
            bounds: vec![1.0, 2.0].into(),
            cumulative: vec![3, 6],
            sum: 9.0,
            count: 7,
            exemplars: None,
        };
        let d = HistogramData::difference(&fresh, &base).unwrap();
        assert_eq!(d.cumulative, vec![2, 2]);
        assert_eq!((d.sum, d.count), (4.0, 2));
        assert!(HistogramData::difference(&base, &fresh).is_none());
    }
}
