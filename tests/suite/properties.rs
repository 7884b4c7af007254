//! Property tests (proptest) of the pure rules: the state machine, input validation, and
//! the metrics maths (histograms, the incremental totals against the SQL-style aggregate,
//! the never-lower merge, the connector label cap, snapshots updated scan by scan against
//! snapshots built in full).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::Value;
use syncwatch::domain::{
    validate_cloud_task, validate_connector_slug, validate_metadata, Action, Status, TriggerType,
};
use syncwatch::store::{TerminalAggregate, TerminalRun};
use syncwatch::test_support::{
    Connections, LearnedSignals, Missed, SnapshotBuilder, SnapshotInputs, Totals,
};
use syncwatch::test_support::{LabelCapper, OVERFLOW_LABEL};
use syncwatch::test_support::{MAX_CLOUD_TASK_ID_CHARS, MAX_METADATA_BYTES};
use uuid::Uuid;

const STATUSES: [Status; 4] = [
    Status::Scheduled,
    Status::InProgress,
    Status::Success,
    Status::Error,
];
const ACTIONS: [Action; 4] = [
    Action::Start,
    Action::Heartbeat,
    Action::Succeed,
    Action::Fail,
];

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(&STATUSES[..])
}

fn action() -> impl Strategy<Value = Action> {
    prop::sample::select(&ACTIONS[..])
}

/// The lifecycle as the contract states it, written independently of the implementation.
fn model(from: Status, action: Action) -> Option<Status> {
    use Status::*;
    match (from, action) {
        (Scheduled, Action::Start) => Some(InProgress),
        (InProgress, Action::Heartbeat) => Some(InProgress),
        (InProgress, Action::Succeed) => Some(Success),
        (Scheduled | InProgress, Action::Fail) => Some(Error),
        _ => None,
    }
}

proptest! {
    #[test]
    fn every_transition_follows_the_contract(from in status(), action in action()) {
        let applied = action.apply(from);
        prop_assert_eq!(applied.as_ref().ok().copied(), model(from, action));
        prop_assert_eq!(action.allowed_from().contains(&from), applied.is_ok());
        if let Err(e) = applied {
            // The error names where the run is, for the 409 body.
            prop_assert!(e.to_string().contains(from.as_str()), "{}", e);
        }
    }

    #[test]
    fn random_action_sequences_never_leave_a_terminal_status(
        actions in prop::collection::vec(action(), 0..40),
    ) {
        let mut state = Status::Scheduled;
        let mut finished = false;
        for action in actions {
            match action.apply(state) {
                Ok(next) => {
                    prop_assert!(!finished, "{action:?} moved a finished run");
                    state = next;
                }
                Err(_) => prop_assert_eq!(model(state, action), None),
            }
            finished = state.is_terminal();
        }
    }

    #[test]
    fn connector_slugs_are_accepted_exactly_when_they_match_the_label_pattern(
        slug in prop_oneof!["[a-z0-9_-]{0,70}", "[a-zA-Z0-9 _./'\";-]{0,70}", "\\PC{0,70}"],
    ) {
        let bytes = slug.as_bytes();
        let matches = !bytes.is_empty()
            && bytes.len() <= 64
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        prop_assert_eq!(validate_connector_slug(&slug).is_ok(), matches, "{:?}", slug);
    }

    #[test]
    fn cloud_task_ids_belong_to_cloud_task_triggers_and_fit_the_column(
        trigger in prop::option::of(prop::sample::select(vec![
            TriggerType::CloudTask, TriggerType::Manual, TriggerType::OauthCallback,
        ])),
        id in prop::option::of(prop_oneof!["\\PC{0,300}", "[a-z\\x00]{0,5}"]),
    ) {
        let expected = match id.as_deref() {
            None => true,
            Some(id) => trigger == Some(TriggerType::CloudTask)
                && !id.is_empty()
                && !id.contains('\0')
                && id.chars().count() <= MAX_CLOUD_TASK_ID_CHARS,
        };
        prop_assert_eq!(validate_cloud_task(trigger, id.as_deref()).is_ok(), expected);
    }

    #[test]
    fn metadata_is_an_object_under_the_size_limit_without_nul(value in json(), pad in 0usize..70_000) {
        let value = match value {
            Value::Object(mut map) if pad > 60_000 => {
                map.insert("pad".into(), Value::String("x".repeat(pad)));
                Value::Object(map)
            }
            other => other,
        };
        let size = serde_json::to_vec(&value).unwrap().len();
        let has_nul = serde_json::to_string(&value).unwrap().contains("\\u0000");
        let expected = value.is_object() && size <= MAX_METADATA_BYTES && !has_nul;
        prop_assert_eq!(validate_metadata(&value).is_ok(), expected, "{} bytes", size);
    }

    #[test]
    fn histograms_stay_cumulative_and_count_every_observation(
        values in prop::collection::vec(-10.0f64..30_000.0, 0..200),
    ) {
        let bounds = [1.0, 5.0, 60.0, 3600.0, 21600.0];
        let mut h = syncwatch::test_support::histogram(&bounds);
        for v in &values {
            h.observe(*v);
        }
        prop_assert_eq!(h.count, values.len() as u64);
        prop_assert!(h.cumulative.windows(2).all(|w| w[0] <= w[1]));
        prop_assert!(h.cumulative.last().copied().unwrap_or(0) <= h.count);
        for (bound, count) in bounds.iter().zip(&h.cumulative) {
            prop_assert_eq!(*count, values.iter().filter(|v| *v <= bound).count() as u64);
        }
    }

    /// Counting runs one by one (the incremental scan) gives the same totals as the
    /// aggregate the build computes in SQL; merging a repair sweep never lowers a value
    /// and is idempotent.
    #[test]
    fn incremental_totals_equal_the_aggregate_and_the_merge_never_lowers(
        runs in prop::collection::vec(terminal_run(), 0..120),
        split in 0usize..120,
    ) {
        let (durations, delays) = ([1.0, 15.0, 300.0, 3600.0], [0.5, 5.0, 60.0]);
        let mut incremental = Totals::new(&durations, &delays);
        for run in &runs {
            incremental.add_run(run);
        }
        let mut from_sql = Totals::new(&durations, &delays);
        for row in aggregate(&runs, &durations, &delays) {
            from_sql.add_aggregate(&row);
        }
        prop_assert_eq!(&incremental.runs, &from_sql.runs);
        prop_assert_eq!(&incremental.failures, &from_sql.failures);
        for ((connector, trigger, status), n) in &incremental.runs {
            if *status == Status::Error {
                let by_reason: u64 = incremental
                    .failures
                    .iter()
                    .filter(|((c, t, _), _)| c == connector && t == trigger)
                    .map(|(_, v)| v)
                    .sum();
                prop_assert_eq!(by_reason, *n);
            }
        }
        prop_assert_eq!(&incremental.last_success, &from_sql.last_success);
        prop_assert_eq!(&incremental.last_failure, &from_sql.last_failure);
        for (key, h) in &incremental.durations {
            let other = &from_sql.durations[key];
            prop_assert_eq!((&h.cumulative, h.count), (&other.cumulative, other.count));
            prop_assert!((h.sum - other.sum).abs() < 1e-6 * (1.0 + h.sum.abs()));
        }
        for (key, h) in &incremental.delays {
            let other = &from_sql.delays[key];
            prop_assert_eq!((&h.cumulative, h.count), (&other.cumulative, other.count));
        }

        // A repair sweep over all of them, against what an earlier scan counted (the first
        // `split`): the missed ones are added, and the totals equal the whole aggregate.
        let counted = &runs[..split.min(runs.len())];
        let mut baseline = Totals::new(&durations, &delays);
        for run in counted {
            baseline.add_run(run);
        }
        let mut merged = baseline.clone();
        let missed = merged.add_missed(&from_sql, &baseline);
        let expected = if counted.len() == runs.len() {
            Missed::Nothing
        } else {
            Missed::Added((runs.len() - counted.len()) as u64)
        };
        prop_assert_eq!(missed, expected);
        prop_assert_eq!(&merged.runs, &from_sql.runs);
        prop_assert_eq!(&merged.failures, &from_sql.failures);
        for (key, h) in &merged.durations {
            let other = &from_sql.durations[key];
            prop_assert_eq!((&h.cumulative, h.count), (&other.cumulative, other.count));
        }
        // The same runs under other labels (a renamed connector): nothing is added.
        let mut renamed = Totals::new(&durations, &delays);
        for run in &runs {
            let mut run = run.clone();
            run.connector_slug = format!("{}_v2", run.connector_slug);
            renamed.add_run(&run);
        }
        let mut kept = baseline.clone();
        let missed = kept.add_missed(&renamed, &baseline);
        let ambiguous = matches!(missed, Missed::Ambiguous { .. });
        prop_assert!(counted.is_empty() || ambiguous, "{:?}", missed);
        if !counted.is_empty() {
            prop_assert_eq!(kept, baseline);
        }
    }

    /// However many connectors show up, at most `max` keep their own label, the rest are
    /// `other`; a connector's label never changes; each is counted as overflow once.
    #[test]
    fn the_connector_cap_holds_and_labels_never_flap(
        connectors in prop::collection::vec("[a-z]{1,3}", 0..400),
        max in 0usize..50,
    ) {
        let mut capper = LabelCapper::new(max);
        let mut labels: HashMap<String, String> = HashMap::new();
        let mut overflowed = 0;
        for _round in 0..2 {
            for c in &connectors {
                let (label, first_overflow) = capper.label(c);
                overflowed += u64::from(first_overflow);
                if let Some(previous) = labels.insert(c.clone(), label.clone()) {
                    prop_assert_eq!(previous, label);
                }
            }
        }
        let own: HashSet<&String> = labels.values().filter(|l| *l != OVERFLOW_LABEL).collect();
        let distinct: HashSet<&String> = connectors.iter().collect();
        prop_assert!(own.len() <= max);
        prop_assert_eq!(own.len(), distinct.len().min(max));
        prop_assert_eq!(overflowed as usize, distinct.len().saturating_sub(max));
    }

    /// A snapshot that updated the previous one with the runs a scan added equals, bit for
    /// bit, one built in full from the same totals with the same labels (connectors folded
    /// into `other` included, whose sums depend on the order they are added in); and only
    /// a new connector or (connector, trigger) pair makes the builder build in full.
    #[test]
    fn snapshots_updated_by_runs_equal_full_builds(
        scans in prop::collection::vec(prop::collection::vec(varied_run(), 0..12), 1..8),
        max in 0usize..5,
    ) {
        let mut totals = Totals::new(&[0.5, 5.0, 50.0], &[1.0, 60.0]);
        let mut builder = SnapshotBuilder::new(max);
        let mut pairs: HashSet<(String, Option<String>)> = HashSet::new();
        for (i, runs) in scans.iter().enumerate() {
            let (mut new_pair, mut new_connector) = (false, false);
            for run in runs {
                totals.add_run(run);
                new_connector |= !pairs.iter().any(|(c, _)| *c == run.connector_slug);
                new_pair |= pairs.insert((run.connector_slug.clone(), run.trigger_type.clone()));
            }
            let changes = totals.take_changes();
            prop_assert_eq!(changes.is_some(), i > 0, "recorded from the first take on");
            let (connections, learned) = (Connections::default(), LearnedSignals::default());
            let inputs = |changes| SnapshotInputs {
                totals: &totals,
                changes,
                connections: &connections,
                active: &[],
                learned: &learned,
                top_failing: 5,
            };
            let mut full = builder.clone();
            let (expected, _) = full.build(&inputs(None));
            let builds = builder.full_builds();
            let (updated, _) = builder.build(&inputs(changes.as_ref()));
            prop_assert_eq!(&updated, &expected);
            let rebuilt = builder.full_builds() > builds;
            if i == 0 || new_connector {
                prop_assert!(rebuilt, "a new connector is labelled in a full build");
            } else if !new_pair {
                prop_assert!(!rebuilt, "runs of known pairs update the previous snapshot");
            }
        }
    }
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z\\x00 ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\\x00]{0,4}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn terminal_run() -> impl Strategy<Value = TerminalRun> {
    (
        prop::sample::select(vec!["alpha", "beta", "gamma"]),
        prop::option::of(prop::sample::select(vec!["cloud_task", "manual"])),
        prop::bool::ANY,
        prop::option::of(0u32..10_000_000),
        prop::option::of(0u32..200_000),
        0i64..100_000,
        prop::option::of(prop::sample::select(vec![
            "HTTP 401",
            "429 rate limited",
            "boom",
        ])),
    )
        .prop_map(
            |(connector, trigger, success, duration_ms, delay_ms, at, error)| {
                let completed_at = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap()
                    + Duration::seconds(at);
                TerminalRun {
                    id: Uuid::new_v4(),
                    key: uuid::Uuid::new_v4().simple().to_string(),
                    workspace_connector_id: Uuid::nil().into(),
                    connector_slug: connector.into(),
                    trigger_type: trigger.map(str::to_owned),
                    status: if success {
                        Status::Success
                    } else {
                        Status::Error
                    },
                    duration_seconds: duration_ms.map(|ms| f64::from(ms) / 1000.0),
                    dispatch_delay_seconds: delay_ms.map(|ms| f64::from(ms) / 1000.0),
                    records_synced: None,
                    completed_at,
                    created_at: completed_at,
                    started_at: None,
                    error: error.filter(|_| !success).map(str::to_owned),
                    deleted: false,
                }
            },
        )
}

/// A terminal run of one of six connectors (so that some fold into `other`), with
/// fractional durations, delays and records (so that sums depend on their order).
fn varied_run() -> impl Strategy<Value = TerminalRun> {
    (
        terminal_run(),
        prop::sample::select(vec!["a", "b", "c", "d", "e", "f"]),
        prop::option::of(0u32..1_000_000),
    )
        .prop_map(|(mut run, connector, records)| {
            run.connector_slug = connector.into();
            run.records_synced = records.map(|r| f64::from(r) / 7.0);
            run
        })
}

/// What the build's SQL computes, per (connector, trigger, status, and for failures
/// the error text).
fn aggregate(runs: &[TerminalRun], durations: &[f64], delays: &[f64]) -> Vec<TerminalAggregate> {
    type Group = (String, Option<String>, Status, Option<String>);
    let mut groups: BTreeMap<Group, Vec<&TerminalRun>> = BTreeMap::new();
    for run in runs {
        groups
            .entry((
                run.connector_slug.clone(),
                run.trigger_type.clone(),
                run.status,
                run.error.clone().filter(|_| run.status == Status::Error),
            ))
            .or_default()
            .push(run);
    }
    groups
        .into_iter()
        .map(|((connector_slug, trigger_type, status, error), runs)| {
            let d: Vec<f64> = runs.iter().filter_map(|r| r.duration_seconds).collect();
            let w: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.dispatch_delay_seconds)
                .collect();
            let buckets = |values: &[f64], bounds: &[f64]| {
                bounds
                    .iter()
                    .map(|b| values.iter().filter(|v| *v <= b).count() as u64)
                    .collect()
            };
            TerminalAggregate {
                connector_slug,
                trigger_type,
                status,
                runs: runs.len() as u64,
                duration_count: d.len() as u64,
                duration_sum_seconds: d.iter().sum(),
                duration_buckets: buckets(&d, durations),
                delay_count: w.len() as u64,
                delay_sum_seconds: w.iter().sum(),
                delay_buckets: buckets(&w, delays),
                records_synced: 0.0,
                last_completed_at: runs.iter().map(|r| r.completed_at).max(),
                error,
            }
        })
        .collect()
}
