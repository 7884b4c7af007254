//! The scanner against real stores: a pinned exposition, counters equal to SQL over the
//! table after a randomized workload written both through the API and straight into the
//! table, restarts, late commits, stuck runs, the reaper, and the Postgres lease.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::scan::{assert_snapshot_matches_sql, at, insert, lit, scanner, Row};
use common::{run_id, Backend, TestApp, TestDb};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use syncwatch::clock::{Clock, SystemClock};
use syncwatch::metrics::Snapshot;
use syncwatch::scan::ScanConfig;
use syncwatch::test_support::ManualClock;
use syncwatch::test_support::{MetricsExt, ScannerExt};
use uuid::Uuid;

/// A fixed store state; the exposition of its domain metrics is pinned in
/// `tests/golden/metrics.txt`, the same for both stores.
async fn golden_state(db: &TestDb) {
    let t = |s: &str| at(&format!("2026-01-01T{s}Z"));
    let hub_conn = Uuid::from_u128(0x1111);
    let sf_conn = Uuid::from_u128(0x2222);
    let mut rows = Vec::new();
    // hubspot: two successes, then two failures on the same connection.
    for (start, end, status, records) in [
        ("00:00:00", "00:00:30", "success", Some(100)),
        ("00:10:00", "00:12:00", "success", Some(50)),
        ("00:20:00", "00:20:03", "error", None),
        ("00:30:00", "00:50:00", "error", Some(5)),
    ] {
        let mut row = Row::new("hubspot", status, t(start) - chrono::Duration::seconds(2));
        row.connection = hub_conn;
        row.started = Some(t(start));
        row.completed = Some(t(end));
        row.records = records;
        rows.push(row);
    }
    // salesforce: a manual success (soft-deleted later: still counted), a failure before
    // start, and a run that never started.
    let mut deleted = Row::new("salesforce", "success", t("00:05:00"));
    deleted.connection = sf_conn;
    deleted.trigger = Some("manual");
    deleted.started = Some(t("00:05:00"));
    deleted.completed = Some(t("00:06:40"));
    deleted.deleted = true;
    rows.push(deleted);
    let mut never = Row::new("salesforce", "error", t("00:07:00"));
    never.connection = sf_conn;
    never.trigger = None;
    never.completed = Some(t("00:08:00"));
    rows.push(never);
    // Active: a scheduled run 20 minutes old (stuck at 15m), an in-progress run with a
    // recent heartbeat, and one without a heartbeat for 40 minutes (stuck at 30m).
    rows.push(Row::new("stripe", "scheduled", t("00:40:00")));
    let mut fresh = Row::new("stripe", "in_progress", t("00:45:00"));
    fresh.started = Some(t("00:45:00"));
    fresh.updated = Some(t("00:58:00"));
    rows.push(fresh);
    let mut idle = Row::new("hubspot", "in_progress", t("00:10:00"));
    idle.started = Some(t("00:19:00"));
    idle.updated = Some(t("00:20:00"));
    rows.push(idle);
    for row in &rows {
        insert(db, row).await;
    }
}

async fn exposition_of_a_known_state_is_pinned(db: &TestDb) {
    golden_state(db).await;
    let clock = Arc::new(ManualClock::new(at("2026-01-01T01:00:00Z")));
    let mut scanner = scanner(db, ScanConfig::default(), clock);
    scanner.scan_once().await.expect("scan");
    let got = scanner.metrics().render_domain();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/metrics.txt");
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(path, &got).unwrap();
    }
    let want = std::fs::read_to_string(path).expect("golden file");
    assert_eq!(
        got, want,
        "exposition differs from tests/golden/metrics.txt"
    );
}

async fn counters_equal_sql_after_a_mixed_workload(app: &TestApp) {
    let db = &app.db;
    let config = ScanConfig {
        duration_buckets: vec![0.05, 1.0, 60.0, 600.0],
        ..ScanConfig::default()
    };
    let mut scanner = scanner(db, config.clone(), Arc::new(SystemClock));
    scanner.scan_once().await.unwrap();
    let connectors = ["hubspot", "salesforce", "stripe", "zendesk"];
    let triggers = ["cloud_task", "manual", "oauth_callback"];
    // Seeded, so the workload is the same on every run.
    let mut rng = StdRng::seed_from_u64(0x5eed_1234_abcd_9876);
    for round in 0..4 {
        for _ in 0..15 {
            let connector = connectors[rng.random_range(0..4usize)];
            let trigger = triggers[rng.random_range(0..3usize)];
            match rng.random_range(0..5u64) {
                // Through the API, to success, error, or left running.
                0..=2 => {
                    let row = app
                        .create(json!({
                            "workspace_connector_id": Uuid::new_v4(),
                            "connector_slug": connector,
                            "trigger_type": trigger,
                            "metadata": {"records_synced": rng.random_range(0..100u64)},
                        }))
                        .await;
                    let id = run_id(&row);
                    let path = |a: &str| format!("/v1/sync-logs/{id}/{a}");
                    match rng.random_range(0..4u64) {
                        0 => {
                            app.post(
                                &path("fail"),
                                json!({"error": "invalid_grant: token revoked"}),
                            )
                            .await;
                        }
                        1 => {
                            app.post_empty(&path("start")).await;
                            app.post_empty(&path("succeed")).await;
                        }
                        2 => {
                            app.post_empty(&path("start")).await;
                            app.post(
                                &path("fail"),
                                json!({"error": "HTTP 429 Too Many Requests"}),
                            )
                            .await;
                        }
                        _ => {
                            app.post_empty(&path("start")).await;
                        }
                    }
                    if rng.random_range(0..6u64) == 0 {
                        app.call(
                            reqwest::Method::DELETE,
                            &format!("/v1/sync-logs/{id}"),
                            None,
                        )
                        .await;
                    }
                }
                // Straight into the table, completed now by the database clock.
                _ => {
                    let now = db.store.scan().db_now().await.unwrap();
                    let secs = rng.random_range(0..900i64);
                    let status = if rng.random_range(0..3u64) == 0 {
                        "error"
                    } else {
                        "success"
                    };
                    let mut row =
                        Row::new(connector, status, now - chrono::Duration::seconds(secs + 5));
                    row.trigger = Some(trigger);
                    row.started = Some(now - chrono::Duration::seconds(secs));
                    row.completed = Some(now);
                    row.records = Some(rng.random_range(0..1000i64));
                    insert(db, &row).await;
                }
            }
        }
        let report = scanner.scan_once().await.unwrap();
        assert!(
            !report.caught_up && !report.repair_merged,
            "round {round} is incremental"
        );
        assert_snapshot_matches_sql(db, &scanner.metrics().snapshot(), &config.duration_buckets)
            .await;
    }
    // Runs of a (connector, trigger) pair already exported: the scan updates the previous
    // snapshot (no full build), and what it exports still equals SQL.
    let snapshot = scanner.metrics().snapshot();
    let (connector, trigger, _) = snapshot
        .runs
        .keys()
        .find(|(_, t, _)| &**t != "none")
        .expect("the workload exported runs with a trigger")
        .clone();
    let full_builds = scanner.full_snapshot_builds();
    let now = db.store.scan().db_now().await.unwrap();
    for (i, status) in ["success", "error", "success"].into_iter().enumerate() {
        let mut row = Row::new(&connector, status, now - chrono::Duration::seconds(60));
        row.trigger = Some(&trigger);
        row.started = Some(now - chrono::Duration::seconds(50 - i as i64));
        row.completed = Some(now);
        row.records = Some(7);
        insert(db, &row).await;
    }
    let report = scanner.scan_once().await.unwrap();
    assert_eq!(report.new_terminal_runs, 3);
    assert!(!report.repair_merged, "no repair sweep merged");
    assert_eq!(
        scanner.full_snapshot_builds(),
        full_builds,
        "runs of known pairs update the previous snapshot"
    );
    assert_snapshot_matches_sql(db, &scanner.metrics().snapshot(), &config.duration_buckets).await;
    // A restart: a new scanner over the same store exports the same values.
    let before = scanner.metrics().render_domain();
    let mut restarted = self::scanner(db, config.clone(), Arc::new(SystemClock));
    assert!(restarted.scan_once().await.unwrap().caught_up);
    let after = restarted.metrics().render_domain();
    let strip = |text: &str| {
        text.lines()
            .filter(|l| !l.contains("timestamp_seconds"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(&after),
        strip(&before),
        "a restart changes no counter"
    );
    assert!(before.contains("connector_sync_runs_total"));
}

async fn a_late_commit_inside_the_window_is_counted_exactly_once(app: &TestApp) {
    let db = &app.db;
    let mut scanner = scanner(db, ScanConfig::default(), Arc::new(SystemClock));
    app.run_in_status("hubspot", "success").await;
    scanner.scan_once().await.unwrap();
    let count = |s: &Snapshot| s.runs.values().sum::<u64>();
    assert_eq!(count(&scanner.metrics().snapshot()), 1);

    // A run whose transaction commits after the scanner passed its completed_at.
    let now = db.store.scan().db_now().await.unwrap();
    let mut late = Row::new("hubspot", "success", now - chrono::Duration::seconds(200));
    late.started = Some(now - chrono::Duration::seconds(190));
    late.completed = Some(now - chrono::Duration::seconds(120));
    insert(db, &late).await;
    for _ in 0..3 {
        let report = scanner.scan_once().await.unwrap();
        assert!(!report.caught_up && !report.repair_merged);
        assert_eq!(
            count(&scanner.metrics().snapshot()),
            2,
            "counted once, never twice"
        );
    }

    // Later than the window, and back-dated before the saved checkpoint a new scanner
    // starts from: missed by the incremental reads and by that start, repaired by the
    // full sweep that comes first after a start from a checkpoint. (A run completed after
    // a sweep's anchor is repaired by the recent sweeps: tests/bounded_scan.rs.)
    let mut very_late = Row::new("hubspot", "error", now - chrono::Duration::seconds(4000));
    very_late.completed = Some(now - chrono::Duration::seconds(3600));
    insert(db, &very_late).await;
    scanner.scan_once().await.unwrap();
    assert_eq!(count(&scanner.metrics().snapshot()), 2);
    let mut sweeping = self::scanner(
        db,
        ScanConfig {
            repair_interval: Duration::ZERO,
            ..ScanConfig::default()
        },
        Arc::new(SystemClock),
    );
    sweeping.scan_once().await.unwrap();
    assert!(sweeping.scan_once().await.unwrap().repair_merged);
    assert_eq!(count(&sweeping.metrics().snapshot()), 3);

    // A hard delete behind our back never lowers a counter on a sweep.
    db.execute("delete from workspace_connector_sync_log where status = 'error'")
        .await;
    sweeping.scan_once().await.unwrap();
    assert_eq!(count(&sweeping.metrics().snapshot()), 3);
}

/// A failure that completed before a success but committed after the scanner saw the
/// success is not part of the connection's streak, for a running scanner as for a new one
/// and one continuing from the saved states.
async fn a_failure_seen_after_a_later_success_does_not_extend_the_streak(app: &TestApp) {
    let db = &app.db;
    let mut running = scanner(db, ScanConfig::default(), Arc::new(SystemClock));
    let now = db.store.scan().db_now().await.unwrap();
    let secs = chrono::Duration::seconds;
    let connection = Uuid::new_v4();
    let mut success = Row::new("hubspot", "success", now - secs(300));
    success.connection = connection;
    success.started = Some(now - secs(290));
    success.completed = Some(now - secs(60));
    insert(db, &success).await;
    running.scan_once().await.unwrap();

    let mut late = Row::new("hubspot", "error", now - secs(280));
    late.connection = connection;
    late.started = Some(now - secs(270));
    late.completed = Some(now - secs(120));
    insert(db, &late).await;
    let id = connection.to_string();
    let streak = |s: &Snapshot| {
        s.failing_list
            .iter()
            .find(|c| c.workspace_connector_id.to_string() == id)
            .map_or(0, |c| c.consecutive_failures)
    };
    for _ in 0..2 {
        running.scan_once().await.unwrap();
        let snap = running.metrics().snapshot();
        assert_eq!(
            streak(&snap),
            0,
            "the late failure is older than the success"
        );
        assert_eq!(
            snap.failing_connections
                .get("hubspot")
                .copied()
                .unwrap_or(0),
            0
        );
    }
    // From the table, and from the states the running scanner saved.
    for _ in 0..2 {
        let mut fresh = scanner(db, ScanConfig::default(), Arc::new(SystemClock));
        while fresh.scan_once().await.unwrap().building {}
        assert_eq!(streak(&fresh.metrics().snapshot()), 0);
    }
    // A failure after the success does count.
    let mut after = Row::new("hubspot", "error", now - secs(50));
    after.connection = connection;
    after.started = Some(now - secs(40));
    after.completed = Some(now - secs(30));
    insert(db, &after).await;
    running.scan_once().await.unwrap();
    assert_eq!(streak(&running.metrics().snapshot()), 1);
}

/// A completion time far ahead of the clock (another writer's clock, a year 9999) is no
/// outcome yet: not counted, not the connector's last success, not its connection's
/// latest run; the row is skipped and counted once, however many scans read it.
async fn a_completion_far_in_the_future_is_no_outcome_yet(app: &TestApp) {
    let db = &app.db;
    let mut running = scanner(db, ScanConfig::default(), Arc::new(SystemClock));
    app.run_in_status("hubspot", "success").await;
    running.scan_once().await.unwrap();
    let before = running.metrics().snapshot();
    let now = db.store.scan().db_now().await.unwrap();
    // Never started (a duration to year 9999 would not fit the column).
    let mut ahead = Row::new("hubspot", "success", now - chrono::Duration::seconds(60));
    ahead.completed = Some(
        DateTime::parse_from_rfc3339("9999-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    );
    insert(db, &ahead).await;
    let skipped = |text: &str| {
        common::family_samples(text, "syncwatch_rows_skipped_total")
            .into_iter()
            .filter(|(labels, _)| {
                labels.contains(&("reason".to_owned(), "out_of_range".to_owned()))
                    && labels.contains(&("column".to_owned(), "completed_at".to_owned()))
            })
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    for _ in 0..3 {
        running.scan_once().await.unwrap();
        let snap = running.metrics().snapshot();
        assert_eq!(snap.runs, before.runs, "not counted");
        assert_eq!(
            snap.last_success, before.last_success,
            "not the last success"
        );
        assert_eq!(skipped(&running.metrics().render()), 1.0, "skipped once");
    }
    // From the table: the same.
    let mut fresh = scanner(db, ScanConfig::default(), Arc::new(SystemClock));
    while fresh.scan_once().await.unwrap().building {}
    let snap = fresh.metrics().snapshot();
    assert_eq!(snap.runs, before.runs);
    assert_eq!(snap.last_success, before.last_success);
    assert!(
        !snap
            .failing_list
            .iter()
            .any(|c| c.workspace_connector_id.to_string() == ahead.connection.to_string()),
        "no state for a connection whose only run is not done yet"
    );
}

async fn stuck_runs_heartbeats_and_the_reaper_follow_the_clock(app: &TestApp) {
    let db = &app.db;
    let start = db.store.scan().db_now().await.unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let config = ScanConfig {
        reap_stuck_after: Some(Duration::from_secs(3600)),
        ..ScanConfig::default()
    };
    let mut scanner = scanner(db, config, clock.clone());
    let scheduled = app.run_in_status("hubspot", "scheduled").await;
    let running = app.run_in_status("hubspot", "in_progress").await;
    let stuck = |s: &Snapshot, status: &str| s.stuck[&("hubspot".into(), status.into())];

    scanner.scan_once().await.unwrap();
    let snap = scanner.metrics().snapshot();
    assert_eq!(
        (stuck(&snap, "scheduled"), stuck(&snap, "in_progress")),
        (0, 0)
    );

    clock.advance(chrono::Duration::minutes(16));
    scanner.scan_once().await.unwrap();
    let snap = scanner.metrics().snapshot();
    assert_eq!(
        (stuck(&snap, "scheduled"), stuck(&snap, "in_progress")),
        (1, 0)
    );

    clock.advance(chrono::Duration::minutes(15));
    scanner.scan_once().await.unwrap();
    assert_eq!(
        stuck(&scanner.metrics().snapshot(), "in_progress"),
        1,
        "31 minutes idle"
    );

    // A heartbeat resets idleness: move the database row's updated_at to the clock's now.
    let id = run_id(&running);
    let (code, _) = app
        .post(&format!("/v1/sync-logs/{id}/heartbeat"), json!({}))
        .await;
    assert_eq!(code, reqwest::StatusCode::OK);
    db.execute(&format!(
        "update workspace_connector_sync_log set updated_at = {} \
         where workspace_connector_sync_log_id = '{id}'",
        lit(Some(clock.now()))
    ))
    .await;
    scanner.scan_once().await.unwrap();
    assert_eq!(
        stuck(&scanner.metrics().snapshot(), "in_progress"),
        0,
        "heartbeat resets"
    );

    // After an hour without progress the reaper fails the scheduled run through the
    // same compare-and-set as the API; the heartbeating run is left alone.
    clock.advance(chrono::Duration::minutes(30));
    let report = scanner.scan_once().await.unwrap();
    assert_eq!(report.reaped, 1);
    let (_, reaped) = app
        .get(&format!("/v1/sync-logs/{}", run_id(&scheduled)))
        .await;
    assert_eq!(reaped["status"], "error");
    assert!(reaped["error"].as_str().unwrap().contains("reaped"));
    let (_, alive) = app.get(&format!("/v1/sync-logs/{id}")).await;
    assert_eq!(alive["status"], "in_progress");
    scanner.scan_once().await.unwrap();
    let snap = scanner.metrics().snapshot();
    assert_eq!(
        snap.runs[&("hubspot".into(), "manual".into(), "error".into())],
        1,
        "the reaped run is counted as a failure"
    );
}

/// A scan that fails keeps the last values published, reports itself down, and the next
/// good scan continues where it left off.
async fn a_failed_scan_keeps_the_last_values_and_recovers(app: &TestApp) {
    let db = &app.db;
    let mut scanner = scanner(db, ScanConfig::default(), Arc::new(SystemClock));
    app.run_in_status("hubspot", "success").await;
    scanner.scan_once().await.unwrap();
    let before = scanner.metrics().render_domain();
    assert!(before.contains("connector_sync_runs_total"));

    db.execute("alter table workspace_connector_sync_log rename to sync_log_away")
        .await;
    assert!(scanner.scan_once().await.is_err());
    assert!(scanner.scan_once().await.is_err());
    let metrics = scanner.metrics();
    assert_eq!(metrics.up.get(), 0);
    assert_eq!(metrics.scan_errors.get(), 2);
    assert_eq!(
        metrics.render_domain(),
        before,
        "the last known values stay published"
    );

    db.execute("alter table sync_log_away rename to workspace_connector_sync_log")
        .await;
    app.run_in_status("hubspot", "error").await;
    let report = scanner.scan_once().await.unwrap();
    assert!(
        !report.caught_up && !report.repair_merged,
        "recovery continues incrementally"
    );
    assert_eq!(report.new_terminal_runs, 1);
    assert_eq!(scanner.metrics().up.get(), 1);
    assert_eq!(scanner.metrics().snapshot().runs.values().sum::<u64>(), 2);
}

/// The per-connection state (latest terminal run, failures since the last success) read
/// by index probes equals a recomputation over the whole history, on random histories
/// full of ties in `completed_at`, soft-deleted and active rows.
async fn connection_states_equal_a_full_history_recomputation(app: &TestApp) {
    use std::collections::HashMap;
    let connections: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    let base = at("2026-11-01T00:00:00Z");
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    // (connection, connector, status, completed, insertion order)
    let mut terminal: Vec<(Uuid, &str, &str, DateTime<Utc>, usize)> = Vec::new();
    for i in 0..160 {
        let connection = connections[next(8) as usize];
        let connector = ["alpha", "beta", "gamma"][next(3) as usize];
        let status = ["success", "error", "error", "in_progress"][next(4) as usize];
        let created = base + chrono::Duration::seconds(next(30) as i64);
        let mut row = Row::new(connector, status, created);
        row.connection = connection;
        row.started = Some(created);
        if status != "in_progress" {
            // Few distinct seconds: many ties between runs of one connection.
            let completed = created + chrono::Duration::seconds(next(12) as i64);
            row.completed = Some(completed);
            terminal.push((connection, connector, status, completed, i));
        }
        row.deleted = next(10) == 0;
        insert(&app.db, &row).await;
    }
    let mut expected = HashMap::new();
    for &c in &connections {
        let runs: Vec<_> = terminal.iter().filter(|r| r.0 == c).collect();
        let Some(latest) = runs.iter().max_by_key(|r| (r.3, r.4)) else {
            continue;
        };
        let last_success = runs.iter().filter(|r| r.2 == "success").map(|r| r.3).max();
        let failures = runs
            .iter()
            .filter(|r| r.2 == "error" && last_success.is_none_or(|s| r.3 > s))
            .count() as u64;
        expected.insert(
            c.into(),
            (latest.1.to_owned(), latest.2.to_owned(), latest.3, failures),
        );
    }
    // Walked in chunks of 3 connections (keyset on the connection id), as a first start
    // does, and in one go: the same states, each connection once.
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let chunk = app
            .db
            .store
            .scan()
            .connection_states(after, 3)
            .await
            .unwrap();
        assert!(chunk.walked <= 3);
        assert_eq!(chunk.walked, chunk.states.len(), "no row skipped");
        let Some(last) = chunk.last else { break };
        after = Some(last);
        walked.extend(chunk.states);
    }
    let whole = app
        .db
        .store
        .scan()
        .connection_states(None, usize::MAX)
        .await
        .unwrap()
        .states;
    assert_eq!(walked, whole);
    let got: HashMap<_, _> = whole
        .into_iter()
        .map(|s| {
            (
                s.workspace_connector_id,
                (
                    s.connector_slug,
                    s.last_status.as_str().to_owned(),
                    s.last_completed_at,
                    s.consecutive_failures,
                ),
            )
        })
        .collect();
    assert_eq!(got, expected);
}

/// A scanner that starts after another has built continues from the saved totals
/// (the checkpoint) and aggregates only what completed after them: same values as a full
/// build; and it really used the checkpoint (a row hard-deleted from the old history
/// is still counted from it, where a full build no longer sees it). A checkpoint made
/// with other buckets is not used.
async fn a_new_scanner_continues_from_the_checkpoint(app: &TestApp) {
    let db = &app.db;
    let old = at("2026-10-01T00:00:00Z");
    for (i, status) in ["success", "error", "success", "success"]
        .into_iter()
        .enumerate()
    {
        let created = old + chrono::Duration::minutes(i as i64 * 10);
        let mut row = Row::new("hubspot", status, created);
        row.started = Some(created + chrono::Duration::seconds(2));
        row.completed = Some(created + chrono::Duration::seconds(90));
        row.records = Some(10);
        insert(db, &row).await;
    }
    let full = || ScanConfig {
        checkpoint: false,
        ..ScanConfig::default()
    };
    let mut first = scanner(db, ScanConfig::default(), Arc::new(SystemClock));
    let report = first.scan_once().await.unwrap();
    assert!(
        report.caught_up && !report.from_checkpoint,
        "nothing saved yet"
    );

    // New runs after the checkpoint, through the API (completed now).
    app.run_in_status("hubspot", "success").await;
    app.run_in_status("salesforce", "error").await;
    let mut second = scanner(db, ScanConfig::default(), Arc::new(SystemClock));
    let report = second.scan_once().await.unwrap();
    assert!(
        report.from_checkpoint,
        "the second scanner starts from the checkpoint"
    );
    let mut reference = scanner(db, full(), Arc::new(SystemClock));
    reference.scan_once().await.unwrap();
    assert_eq!(
        second.metrics().render_domain(),
        reference.metrics().render_domain(),
        "checkpoint + the runs after it == a full build"
    );
    assert_eq!(second.metrics().snapshot().runs.values().sum::<u64>(), 6);

    db.execute(
        "delete from workspace_connector_sync_log where id = \
         (select min(id) from workspace_connector_sync_log)",
    )
    .await;
    let mut third = scanner(db, ScanConfig::default(), Arc::new(SystemClock));
    assert!(third.scan_once().await.unwrap().from_checkpoint);
    assert_eq!(third.metrics().snapshot().runs.values().sum::<u64>(), 6);
    let mut recount = scanner(db, full(), Arc::new(SystemClock));
    recount.scan_once().await.unwrap();
    assert_eq!(recount.metrics().snapshot().runs.values().sum::<u64>(), 5);

    let mut other_buckets = scanner(
        db,
        ScanConfig {
            duration_buckets: vec![1.0, 10.0],
            ..ScanConfig::default()
        },
        Arc::new(SystemClock),
    );
    let report = other_buckets.scan_once().await.unwrap();
    assert!(report.caught_up && !report.from_checkpoint);
}

on_both_stores!(
    a_new_scanner_continues_from_the_checkpoint,
    connection_states_equal_a_full_history_recomputation,
    a_failed_scan_keeps_the_last_values_and_recovers,
    counters_equal_sql_after_a_mixed_workload,
    a_late_commit_inside_the_window_is_counted_exactly_once,
    a_failure_seen_after_a_later_success_does_not_extend_the_streak,
    a_completion_far_in_the_future_is_no_outcome_yet,
    stuck_runs_heartbeats_and_the_reaper_follow_the_clock,
);

mod golden {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        exposition_of_a_known_state_is_pinned(&db).await;
    }

    #[tokio::test]
    async fn postgres() {
        if let Some(db) = TestDb::new(Backend::Postgres).await {
            exposition_of_a_known_state_is_pinned(&db).await;
        }
    }
}
