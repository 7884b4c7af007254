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

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use syncwatch::domain::Status;
use syncwatch::metrics::Metrics;
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

fn series(text: &str) -> usize {
    text.lines().filter(|l| !l.starts_with('#')).count()
}

fn main() {
    let targets: Vec<usize> = arg("--series")
        .unwrap_or_else(|| "1000,10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("--series takes numbers"))
        .collect();
    let renders: usize = arg("--renders").map_or(30, |s| s.parse().unwrap());
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
}
