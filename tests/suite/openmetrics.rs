//! The OpenMetrics exposition: series for series the numbers of the text format, exemplars
//! that name the runs in the table (each inside its bucket, its trace id the run's span's),
//! and a body an OpenMetrics parser (Python's `prometheus_client`) accepts.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;

use chrono::{Duration, Utc};
use common::prometheus::{in_duration_bucket, pipe_through};
use common::scan::scanner;
use common::{in_ci, TestApp};
use uuid::Uuid;

use syncwatch::clock::SystemClock;
use syncwatch::metrics::Format;
use syncwatch::scan::ScanConfig;
use syncwatch::test_support::ScannerExt;

/// One terminal run written straight into the table, completed `ago` after `seconds`, with
/// a run id of the test's own.
async fn insert_run(
    app: &TestApp,
    connector: &str,
    status: &str,
    seconds: f64,
    ago: Duration,
) -> Uuid {
    let id = Uuid::new_v4();
    let millis = (seconds * 1000.0) as i64;
    let completed = Utc::now() - ago;
    let started = completed - Duration::milliseconds(millis);
    let created = started - Duration::seconds(1);
    let at = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let error = if status == "error" {
        "'rate limited'"
    } else {
        "null"
    };
    app.db
        .execute(&format!(
            "insert into workspace_connector_sync_log (workspace_connector_sync_log_id, \
               workspace_connector_id, connector_slug, status, trigger_type, started_at, \
               completed_at, duration_ms, error, created_at, updated_at) \
             values ('{id}', '{}', '{connector}', '{status}', 'cloud_task', '{}', '{}', {millis}, \
               {error}, '{}', '{}')",
            Uuid::new_v4(),
            at(started),
            at(completed),
            at(created),
            at(completed),
        ))
        .await;
    id
}

/// Every sample line of an exposition: series (name and labels, as written) → value; the
/// exemplar, if any, cut off.
fn samples(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let sample = line.split_once(" # {").map_or(line, |(s, _)| s);
            let (series, value) = sample.rsplit_once(' ').unwrap();
            (series.to_owned(), value.to_owned())
        })
        .collect()
}

/// An exemplar as written: (series, trace_id, run_id, value, timestamp).
struct Written {
    series: String,
    trace_id: String,
    run_id: Uuid,
    value: f64,
    at: f64,
}

fn exemplars(text: &str) -> Vec<Written> {
    text.lines()
        .filter_map(|line| {
            let (sample, exemplar) = line.split_once(" # {")?;
            let (labels, rest) = exemplar.split_once("} ").unwrap();
            let label = |name: &str| {
                let start = labels.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                labels[start..].split('"').next().unwrap().to_owned()
            };
            let (value, at) = rest.split_once(' ').unwrap();
            Some(Written {
                series: sample.rsplit_once(' ').unwrap().0.to_owned(),
                trace_id: label("trace_id"),
                run_id: label("run_id").parse().unwrap(),
                value: value.parse().unwrap(),
                at: at.parse().unwrap(),
            })
        })
        .collect()
}

fn le_of(series: &str) -> &str {
    series
        .split("le=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
}

async fn openmetrics_has_the_text_numbers_and_exemplars_of_the_runs(app: &TestApp) {
    // Counted by the build (aggregates, read in bulk, of runs completed a while ago): no
    // exemplar names it.
    let built = insert_run(app, "hubspot", "error", 30.0, Duration::hours(1)).await;
    let mut scanner = scanner(&app.db, ScanConfig::default(), Arc::new(SystemClock));
    let metrics = scanner.metrics().clone();
    while scanner.scan_once().await.unwrap().building {}
    // Read one by one by the incremental scans: each is the latest of its bucket.
    let mut durations = BTreeMap::new();
    let mut failed = BTreeSet::new();
    for (connector, status, seconds) in [
        ("hubspot", "success", 0.5),
        ("hubspot", "success", 45.0),
        ("hubspot", "error", 200.0),
        ("stripe", "error", 3000.0),
        ("stripe", "success", 9.25),
        ("stripe", "success", 30000.0),
    ] {
        let id = insert_run(app, connector, status, seconds, Duration::zero()).await;
        durations.insert(id, seconds);
        if status == "error" {
            failed.insert(id);
        }
    }
    loop {
        let report = scanner.scan_once().await.unwrap();
        if !report.building && !report.learning {
            break;
        }
    }
    scanner.scan_once().await.unwrap();

    let text = String::from_utf8(metrics.render_in(Format::Text, false)).unwrap();
    let om = String::from_utf8(metrics.render_in(Format::OpenMetrics, false)).unwrap();
    let domain = |all: BTreeMap<String, String>| -> BTreeMap<String, String> {
        all.into_iter()
            .filter(|(series, _)| series.starts_with("connector_sync_"))
            .collect()
    };
    let (text_samples, om_samples) = (domain(samples(&text)), domain(samples(&om)));
    assert!(text_samples.len() > 50, "{text}");
    assert_eq!(
        text_samples, om_samples,
        "the same series and values in both formats"
    );
    assert!(om.ends_with("# EOF\n") && om.matches("# EOF").count() == 1);
    assert!(
        !text.contains("# EOF") && !text.contains(" # {"),
        "no exemplars in the text format"
    );
    assert!(om.contains("# TYPE connector_sync_runs counter\n"));
    assert!(om.contains("# TYPE syncwatch_scan_errors counter\n"));
    assert!(om.contains("# UNIT connector_sync_duration_seconds seconds\n"));
    assert!(text.contains("# TYPE connector_sync_runs_total counter\n"));

    let written = exemplars(&om);
    let on_durations: Vec<&Written> = written
        .iter()
        .filter(|e| {
            e.series
                .starts_with("connector_sync_duration_seconds_bucket{")
        })
        .collect();
    let on_failures: Vec<&Written> = written
        .iter()
        .filter(|e| e.series.starts_with("connector_sync_failures_total{"))
        .collect();
    assert_eq!(
        on_durations.len() + on_failures.len(),
        written.len(),
        "exemplars only on duration buckets and failures"
    );
    for e in &written {
        assert_eq!(
            e.trace_id,
            e.run_id.simple().to_string(),
            "the run's span's trace id"
        );
        assert!(e.at > (Utc::now() - Duration::hours(2)).timestamp() as f64);
    }
    let named: BTreeSet<Uuid> = on_durations.iter().map(|e| e.run_id).collect();
    assert_eq!(
        named,
        durations.keys().copied().collect(),
        "each run read since the build names its bucket"
    );
    for e in &on_durations {
        assert!(
            in_duration_bucket(e.value, le_of(&e.series)),
            "{} outside {}",
            e.value,
            e.series
        );
        assert!(
            (e.value - durations[&e.run_id]).abs() < 1e-9,
            "{}",
            e.series
        );
    }
    let named: BTreeSet<Uuid> = on_failures.iter().map(|e| e.run_id).collect();
    assert_eq!(
        named, failed,
        "each failure series names its latest failed run"
    );
    assert!(!named.contains(&built));
    for e in &on_failures {
        assert_eq!(e.value, 1.0);
        assert!(e.series.contains("reason=\"rate_limit\""), "{}", e.series);
    }

    openmetrics_parser_accepts(&om, written.len());
}

on_both_stores!(openmetrics_has_the_text_numbers_and_exemplars_of_the_runs);

/// The Python of the venv where `scripts/test` installs `prometheus_client` (its
/// OpenMetrics parser) with the fuzzer (`tests/fuzz/requirements.txt`).
fn python_path() -> Option<std::path::PathBuf> {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-venv");
    let python = venv.join("bin/python3");
    let installed = Command::new(&python)
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        let reason = "prometheus_client is not installed in target/fuzz-venv; scripts/test installs it from PyPI (tests/fuzz/requirements.txt)";
        assert!(!in_ci(), "{reason}");
        eprintln!("SKIPPED: {reason}");
        return None;
    }
    Some(python)
}

/// Parses `body` with `prometheus_client`'s OpenMetrics parser: (exit success, what it
/// printed: samples and exemplars it read, or the error).
fn python_parse(python: &std::path::Path, body: &str) -> (bool, String) {
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        samples = exemplars = 0\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       samples += 1\n\
        \x20       exemplars += s.exemplar is not None\n\
        print(samples, exemplars)\n";
    pipe_through(Command::new(python).args(["-c", script]), body)
}

fn openmetrics_parser_accepts(om: &str, exemplars: usize) {
    let Some(path) = python_path() else {
        return;
    };
    let (ok, said) = python_parse(&path, om);
    assert!(ok, "the OpenMetrics parser rejected the body: {said}");
    let lines = om.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(
        said.trim(),
        format!("{lines} {exemplars}"),
        "samples and exemplars read"
    );
}

/// The parser above can fail: it rejects a body without `# EOF`, and an exemplar on a gauge.
#[test]
fn the_openmetrics_parser_rejects_what_the_format_forbids() {
    let Some(path) = python_path() else {
        return;
    };
    let good = "# TYPE a counter\na_total 1 # {run_id=\"x\"} 1 1.5\n# EOF\n";
    assert!(
        python_parse(&path, good).0,
        "{}",
        python_parse(&path, good).1
    );
    assert!(
        !python_parse(&path, "# TYPE a counter\na_total 1\n").0,
        "no # EOF"
    );
    let on_gauge = "# TYPE g gauge\ng 1 # {run_id=\"x\"} 1 1.5\n# EOF\n";
    assert!(!python_parse(&path, on_gauge).0, "an exemplar on a gauge");
}
