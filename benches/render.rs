//! `/metrics` render time and memory against the number of series.
//!
//!     cargo bench --bench render -- [--series 1000,10000,100000] [--renders 30]
//!
//! For each target size, builds the scanner's snapshot for enough synthetic connectors
//! (each with three triggers, both statuses, both histograms, active and stuck runs,
//! timestamps) through the same code the scanner uses (`Totals`, `SnapshotBuilder`),
//! publishes it, and renders the exposition `--renders` times. Prints the series count,
//! the exposition's size, the median time of a snapshot built in full and of one updated
//! with the runs a scan added (side by side, alternating), the median render times, and
//! the resident memory the published snapshot added (VmRSS before and after, from
//! /proc/self/status).
//!
//! Then, at `--exemplar-series` (12000,100000), the OpenMetrics exposition with exemplars
//! against the same snapshot without them, side by side: each duration series with runs
//! in four buckets (four exemplars), each failure series with its latest failed run.
//! Prints sizes, the median encode and gzip-scrape times (alternating), and the resident
//! set of a process holding each variant's totals, snapshot and encoded exposition (this
//! binary run again, once per variant, so neither inherits what the other freed).

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use syncwatch::domain::Status;
use syncwatch::metrics::{Format, Metrics};
use syncwatch::scan::ScanConfig;
use syncwatch::store::{ActiveGroup, TerminalRun};
use syncwatch::test_support::{
    Changes, Connections, LearnedSignals, SnapshotBuilder, SnapshotInputs, Totals,
};
use syncwatch::test_support::{Exposition, MetricsExt};
use uuid::Uuid;

use support::{arg, ms};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A terminal run of `slug` by `trigger`.
fn run(slug: &str, trigger: &str, status: Status, at: DateTime<Utc>, i: usize) -> TerminalRun {
    TerminalRun {
        id: Uuid::new_v4(),
        key: uuid::Uuid::new_v4().simple().to_string(),
        workspace_connector_id: Uuid::new_v4().into(),
        connector_slug: slug.to_owned(),
        trigger_type: Some(trigger.into()),
        status,
        duration_seconds: Some(30.0 + i as f64),
        dispatch_delay_seconds: Some(1.5),
        records_synced: Some(100.0),
        completed_at: at,
        created_at: at,
        started_at: Some(at),
        error: None,
        deleted: false,
    }
}

/// The totals and live runs of `connectors` synthetic connectors.
fn fixture(connectors: usize) -> (Totals, Vec<ActiveGroup>) {
    let config = ScanConfig::default();
    let mut totals = Totals::new(&config.duration_buckets, &config.dispatch_delay_buckets);
    let at: DateTime<Utc> = "2026-11-27T12:00:00Z".parse().unwrap();
    let mut active = Vec::new();
    for c in 0..connectors {
        let slug = format!("connector-{c:05}");
        for trigger in ["cloud_task", "manual", "oauth_callback"] {
            for (i, status) in [Status::Success, Status::Error].into_iter().enumerate() {
                totals.add_run(&run(&slug, trigger, status, at, i));
            }
        }
        for status in [Status::Scheduled, Status::InProgress] {
            active.push(ActiveGroup {
                connector_slug: slug.clone(),
                status,
                count: 3,
                stuck: 1,
                oldest: at,
            });
        }
    }
    (totals, active)
}

fn inputs<'a>(
    totals: &'a Totals,
    changes: Option<&'a Changes>,
    active: &'a [ActiveGroup],
    empty: &'a (Connections, LearnedSignals),
) -> SnapshotInputs<'a> {
    SnapshotInputs {
        totals,
        changes,
        connections: &empty.0,
        active,
        learned: &empty.1,
        top_failing: 50,
    }
}

fn metrics_for(connectors: usize) -> Metrics {
    let (totals, active) = fixture(connectors);
    let metrics = Metrics::new();
    let empty = Default::default();
    let (snapshot, _) =
        SnapshotBuilder::new(usize::MAX).build(&inputs(&totals, None, &active, &empty));
    metrics.publish(snapshot);
    metrics
}

/// Side by side, alternating: the median time of a snapshot built in full (its
/// connectors already labelled, as after a repair sweep), and of one updating the previous
/// snapshot after a scan added 5 runs of known connectors.
fn build_times(connectors: usize, builds: usize) -> (Duration, Duration) {
    let (mut totals, active) = fixture(connectors);
    let empty = Default::default();
    let mut builder = SnapshotBuilder::new(usize::MAX);
    builder.build(&inputs(&totals, None, &active, &empty));
    // The totals record what runs touch from the first time this is asked on.
    totals.take_changes();
    let at: DateTime<Utc> = "2026-11-27T13:00:00Z".parse().unwrap();
    let (mut full, mut update) = (Vec::new(), Vec::new());
    for b in 0..builds {
        let started = Instant::now();
        std::hint::black_box(builder.build(&inputs(&totals, None, &active, &empty)));
        full.push(started.elapsed());
        for i in 0..5 {
            let slug = format!("connector-{:05}", (b * 5 + i) % connectors.max(1));
            totals.add_run(&run(&slug, "manual", Status::Error, at, i));
        }
        let changes = totals.take_changes();
        let started = Instant::now();
        std::hint::black_box(builder.build(&inputs(&totals, changes.as_ref(), &active, &empty)));
        update.push(started.elapsed());
    }
    full.sort();
    update.sort();
    (full[full.len() / 2], update[update.len() / 2])
}

/// The fixture's totals with runs in four duration buckets of every series (so every
/// bucket series with a run has an exemplar, and every failure series one), or, without
/// `exemplars`, the same counts with every exemplar dropped as soon as it is made.
fn exemplar_fixtures(connectors: usize, exemplars: bool) -> (Totals, Vec<ActiveGroup>) {
    let (mut with, active) = fixture(connectors);
    let at: DateTime<Utc> = "2026-11-27T12:30:00Z".parse().unwrap();
    for c in 0..connectors {
        let slug = format!("connector-{c:05}");
        for trigger in ["cloud_task", "manual", "oauth_callback"] {
            for status in [Status::Success, Status::Error] {
                for seconds in [0.5, 200.0, 3000.0] {
                    let mut r = run(&slug, trigger, status, at, 0);
                    r.duration_seconds = Some(seconds);
                    with.add_run(&r);
                    if !exemplars {
                        for histogram in with.durations.values_mut() {
                            histogram.exemplars = None;
                        }
                        with.failure_exemplars = Default::default();
                    }
                }
            }
        }
    }
    if !exemplars {
        for histogram in with.durations.values_mut() {
            histogram.exemplars = None;
        }
    }
    (with, active)
}

/// The variant `--exemplar-child` names, built, published and encoded in OpenMetrics by a
/// process of its own: prints its resident set (VmRSS, KiB).
fn exemplar_child(variant: &str, connectors: usize) {
    let (totals, active) = exemplar_fixtures(connectors, variant == "with");
    let empty = Default::default();
    let metrics = Metrics::new();
    let mut builder = SnapshotBuilder::new(usize::MAX);
    let (snapshot, _) = builder.build(&inputs(&totals, None, &active, &empty));
    metrics.publish(snapshot);
    let exposition = metrics.domain_exposition_in(Format::OpenMetrics);
    std::hint::black_box((&totals, &builder, &exposition));
    println!("{}", rss_kib());
}

/// The resident set of a process holding the variant (see [`exemplar_child`]).
fn child_rss(variant: &str, connectors: usize) -> u64 {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exemplar-child",
            variant,
            "--connectors",
            &connectors.to_string(),
        ])
        .output()
        .expect("the bench runs itself");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("the child prints its VmRSS")
}

/// OpenMetrics with exemplars against the same snapshot without, side by side.
fn exemplar_comparison(targets: &[usize], per_connector: usize, renders: usize) {
    println!();
    println!("OpenMetrics exposition with exemplars against without, side by side");
    println!(
        "{:>8} {:>10} {:>8} | {:>11} {:>11} | {:>9} {:>9} | {:>9} {:>9} | {:>9} {:>9} | {:>9} {:>9}",
        "target", "variant", "series", "bytes", "exemplars", "gzip", "ratio", "encode", "ratio",
        "gzip scr.", "ratio", "RSS KiB", "ratio"
    );
    for &target in targets {
        let connectors = (target / per_connector).max(1);
        let empty = Default::default();
        let publish = |exemplars: bool| {
            let (totals, active) = exemplar_fixtures(connectors, exemplars);
            let metrics = Metrics::new();
            let (snapshot, _) =
                SnapshotBuilder::new(usize::MAX).build(&inputs(&totals, None, &active, &empty));
            metrics.publish(snapshot);
            let exposition = metrics.domain_exposition_in(Format::OpenMetrics);
            (metrics, exposition)
        };
        let (plain, plain_exposition) = publish(false);
        let (rich, rich_exposition) = publish(true);
        let (plain_rss, rich_rss) = (
            child_rss("without", connectors),
            child_rss("with", connectors),
        );
        let (mut encode, mut scrape) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
        for _ in 0..renders {
            for (i, metrics) in [&plain, &rich].into_iter().enumerate() {
                let snapshot = metrics.snapshot();
                let started = Instant::now();
                std::hint::black_box(Exposition::from_snapshot(
                    &snapshot,
                    Format::OpenMetrics,
                    false,
                ));
                encode[i].push(started.elapsed());
                let started = Instant::now();
                std::hint::black_box(metrics.render_in(Format::OpenMetrics, true).len());
                scrape[i].push(started.elapsed());
            }
        }
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let [e0, e1] = encode.map(median);
        let [s0, s1] = scrape.map(median);
        let om = |metrics: &Metrics| {
            String::from_utf8(metrics.render_in(Format::OpenMetrics, false)).unwrap()
        };
        let marks = |text: &str| text.matches(" # {").count();
        let rows = [
            (
                "without",
                &plain_exposition,
                marks(&om(&plain)),
                e0,
                s0,
                plain_rss,
            ),
            (
                "with",
                &rich_exposition,
                marks(&om(&rich)),
                e1,
                s1,
                rich_rss,
            ),
        ];
        for (name, exposition, exemplars, encode, scrape, rss) in rows {
            println!(
                "{:>8} {:>10} {:>8} | {:>11} {:>11} | {:>9} {:>8.2}x | {:>7.2}ms {:>8.2}x | {:>7.3}ms {:>8.2}x | {:>9} {:>8.2}x",
                target,
                name,
                exposition.series,
                exposition.text_len,
                exemplars,
                exposition.gzip.len(),
                exposition.gzip.len() as f64 / plain_exposition.gzip.len() as f64,
                ms(encode),
                ms(encode) / ms(e0),
                ms(scrape),
                ms(scrape) / ms(s0),
                rss,
                rss as f64 / plain_rss.max(1) as f64,
            );
        }
    }
    println!(
        "(medians of {renders}, the two variants alternating; bytes = the OpenMetrics domain \
         section; encode = writing and gzipping it once per published snapshot; gzip scr. = a \
         scrape: the stored section plus the self metrics; RSS = VmRSS of a process holding the \
         variant's totals, snapshot builder, published snapshot and its encoded exposition; \
         ratio = against without)"
    );
}

fn series(text: &str) -> usize {
    text.lines().filter(|l| !l.starts_with('#')).count()
}

fn main() {
    if let Some(variant) = arg("--exemplar-child") {
        let connectors = arg("--connectors").map_or(1, |c| c.parse().unwrap());
        return exemplar_child(&variant, connectors);
    }
    let targets: Vec<usize> = arg("--series")
        .unwrap_or_else(|| "1000,10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("--series takes numbers"))
        .collect();
    let renders: usize = arg("--renders").map_or(30, |s| s.parse().unwrap());
    let exemplar_targets: Vec<usize> = arg("--exemplar-series")
        .unwrap_or_else(|| "12000,100000".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("--exemplar-series takes numbers"))
        .collect();
    // Series per connector, from a small probe (the self metrics are a fixed few).
    let per_connector = (series(&metrics_for(10).render()) - series(&metrics_for(0).render())) / 10;
    println!(
        "/metrics render against series count ({per_connector} series per synthetic connector)"
    );
    println!(
        "{:>8} {:>10} {:>8} {:>10} {:>9} {:>6} | {:>10} {:>10} | {:>10} | {:>11} {:>10} {:>10} | {:>12}",
        "target",
        "connectors",
        "series",
        "bytes",
        "gzip",
        "ratio",
        "full build",
        "update",
        "encode",
        "old scrape",
        "scrape",
        "gzip scr.",
        "RSS"
    );
    for target in targets {
        let connectors = (target / per_connector).max(1);
        let (full, update) = build_times(connectors, renders);
        let before = rss_kib();
        let metrics = metrics_for(connectors);
        // Encoded once per published snapshot (here on first use: no runtime to do it in
        // the background).
        let started = Instant::now();
        let exposition = metrics.domain_exposition();
        let encode = started.elapsed();
        let after = rss_kib();
        let time = |f: &dyn Fn() -> usize| {
            let mut times: Vec<Duration> = (0..renders)
                .map(|_| {
                    let started = Instant::now();
                    std::hint::black_box(f());
                    started.elapsed()
                })
                .collect();
            times.sort();
            times[times.len() / 2]
        };
        // Side by side: what a scrape cost when it encoded the snapshot every time, and
        // what it costs now (the stored section plus the self metrics), plain and gzip.
        let snapshot = metrics.snapshot();
        let old = time(&|| Exposition::encode(&snapshot.families()).text.len());
        let plain = time(&|| metrics.render_bytes().len());
        let gzip = time(&|| metrics.render_gzip().len());
        let (text, zipped) = (metrics.render_bytes(), metrics.render_gzip());
        println!(
            "{:>8} {:>10} {:>8} {:>10} {:>9} {:>5.1}x | {:>8.2}ms {:>8.2}ms | {:>8.2}ms | {:>9.2}ms {:>8.3}ms {:>8.3}ms | {:>8} KiB",
            target,
            connectors,
            exposition.series,
            text.len(),
            zipped.len(),
            text.len() as f64 / zipped.len() as f64,
            ms(full),
            ms(update),
            ms(encode),
            ms(old),
            ms(plain),
            ms(gzip),
            after.saturating_sub(before),
        );
        drop(metrics);
    }
    println!(
        "(medians of {renders}; full build = the snapshot built in full from the scanner's \
         totals, update = the previous one updated with the 5 runs a scan added, alternating \
         with the full builds; encode = the domain section encoded and gzipped once per \
         published snapshot; old scrape = encoding it at every scrape, as before; scrape and \
         gzip scr. = the stored section plus the self metrics; RSS = resident memory added by \
         building, publishing and encoding the snapshot)"
    );
    exemplar_comparison(&exemplar_targets, per_connector, renders);
}
