//! The scanner at a history larger than one statement may read: the first start builds
//! its totals in bounded chunks and reaches exactly the table's numbers, a restart in the
//! middle of that build continues it, repair sweeps never fail a scan, and retention
//! deletes old runs without changing any exported number (after a restart too).

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::scan::{assert_snapshot_matches_sql, insert, scanner, Row};
use common::{Backend, TestDb};
use syncwatch::clock::SystemClock;
use syncwatch::metrics::Metrics;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::{self, Lease, PoolOptions, StoreError};
use syncwatch::test_support::{MetricsExt, ScannerExt};

/// `runs` terminal runs, one every five seconds ending about a day ago, over 4
/// connectors and 2000 connections; every fifth fails, every 97th has no trigger.
async fn seed(db: &TestDb, runs: u64) {
    let sql = match db.backend {
        Backend::Postgres => format!(
            "insert into workspace_connector_sync_log (workspace_connector_sync_log_id, \
               workspace_connector_id, connector_slug, status, trigger_type, started_at, \
               completed_at, duration_ms, error, metadata, created_at, updated_at) \
             select gen_random_uuid(), \
               ('00000000-0000-0000-0000-' || lpad(to_hex(g % 2000), 12, '0'))::uuid, \
               'c' || (g % 4), case when g % 5 = 0 then 'error' else 'success' end, \
               case when g % 97 = 0 then null else 'cloud_task' end, \
               t - (g % 600) * interval '1 second', t, (g % 600) * 1000, \
               case when g % 5 = 0 then 'boom' end, \
               jsonb_build_object('records_synced', g % 100), \
               t - (g % 600 + 3) * interval '1 second', t \
             from (select g, now() - interval '1 day' - ({runs} - g) * interval '5 seconds' as t \
                   from generate_series(1, {runs}) g) s"
        ),
        Backend::Sqlite => format!(
            "insert into workspace_connector_sync_log (workspace_connector_sync_log_id, \
               workspace_connector_id, connector_slug, status, trigger_type, started_at, \
               completed_at, duration_ms, error, metadata, created_at, updated_at) \
             with recursive n(g) as (select 1 union all select g + 1 from n where g < {runs}), \
             s(g, t) as (select g, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day', \
               '-' || (({runs} - g) * 5) || ' seconds') from n) \
             select printf('00000000-0000-4000-8000-%012x', g), \
               printf('00000000-0000-0000-0000-%012x', g % 2000), \
               'c' || (g % 4), case when g % 5 = 0 then 'error' else 'success' end, \
               case when g % 97 = 0 then null else 'cloud_task' end, \
               strftime('%Y-%m-%dT%H:%M:%fZ', t, '-' || (g % 600) || ' seconds'), t, \
               (g % 600) * 1000, case when g % 5 = 0 then 'boom' end, \
               json_object('records_synced', g % 100), \
               strftime('%Y-%m-%dT%H:%M:%fZ', t, '-' || (g % 600 + 3) || ' seconds'), t \
             from s"
        ),
    };
    db.execute(&sql).await;
}

/// The test store again, with the scanner's statements cut off at `timeout` (Postgres).
async fn with_scan_timeout(db: &TestDb, timeout: Duration) -> store::Store {
    let options = PoolOptions {
        scan_statement_timeout: Some(timeout),
        ..PoolOptions::default()
    };
    store::connect(&db.url, &options, &store::TableMap::default())
        .await
        .unwrap()
}

/// The setup's premise: one aggregate of the whole history exceeds the statement timeout.
async fn assert_whole_aggregate_times_out(store: &store::Store, config: &ScanConfig) {
    let now = store.scan().db_now().await.unwrap();
    let whole = store
        .scan()
        .terminal_aggregate(
            None,
            &now.into(),
            &config.duration_buckets,
            &config.dispatch_delay_buckets,
        )
        .await;
    assert!(
        matches!(whole, Err(StoreError::StatementTimeout(_))),
        "the setup must make one full aggregate exceed the statement timeout: {whole:?}"
    );
}

fn chunked(interval_ms: u64) -> ScanConfig {
    ScanConfig {
        interval: Duration::from_millis(interval_ms),
        chunk_rows: 10_000,
        chunk_connections: 300,
        ..ScanConfig::default()
    }
}

/// First start on a history whose one aggregate the statement timeout refuses: chunks
/// build it across scans; a new scanner started in the middle continues from the saved
/// progress (never below it) and reaches exactly the table's numbers.
async fn first_start_builds_in_chunks_and_a_restart_continues(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    seed(&db, 120_000).await;
    let config = chunked(200);
    let store = match backend {
        Backend::Postgres => {
            let store = with_scan_timeout(&db, Duration::from_millis(60)).await;
            assert_whole_aggregate_times_out(&store, &config).await;
            store
        }
        Backend::Sqlite => db.store.clone(),
    };
    let new_scanner = || {
        Scanner::new(
            store.clone(),
            Lease::Always,
            config.clone(),
            Arc::new(SystemClock),
            Metrics::new(),
        )
    };
    let progress = |s: &Scanner| s.metrics().build_progress.get();

    let mut first = new_scanner();
    let report = first
        .scan_once()
        .await
        .expect("a chunked scan never times out");
    assert!(
        report.building,
        "120k runs take more than one 100 ms budget"
    );
    // A slow first chunk (cold pages) may take a scan or two.
    for _ in 0..20 {
        if progress(&first) > 0.0 {
            break;
        }
        assert!(first.scan_once().await.expect("scan").building);
    }
    assert!(!first
        .metrics()
        .render()
        .contains("connector_sync_runs_total"));
    let reached = progress(&first);
    assert!(reached > 0.0 && reached < 1.0, "progress {reached}");
    let saved = store.state().load_checkpoint().await.unwrap();
    let (saved_upto, _) = saved.expect("progress is saved");
    drop(first);

    let mut second = new_scanner();
    let report = second.scan_once().await.expect("scan");
    assert!(report.from_checkpoint, "the restart continues the build");
    // Never below the saved progress: the point the build has counted up to. (The ratio
    // is not compared: its denominator grows with the clock, so a scan that finishes no
    // chunk on a busy machine shows a smaller ratio at the same point.)
    let (upto, _) = store.state().load_checkpoint().await.unwrap().unwrap();
    assert!(
        upto >= saved_upto && progress(&second) > 0.0,
        "never below the saved progress: {upto} < {saved_upto}"
    );
    let mut scans = 1;
    while second.scan_once().await.expect("scan").building {
        scans += 1;
        assert!(scans < 200, "the build must finish");
    }
    assert_eq!(progress(&second), 1.0);
    assert_snapshot_matches_sql(&db, &second.metrics().snapshot(), &config.duration_buckets).await;
    let failing = db
        .scalar_i64(
            "select count(*) from (select workspace_connector_id, max(completed_at) as last \
             from workspace_connector_sync_log group by workspace_connector_id) l \
             join workspace_connector_sync_log r on r.workspace_connector_id = \
             l.workspace_connector_id and r.completed_at = l.last where r.status = 'error'",
        )
        .await;
    let exported: u64 = second
        .metrics()
        .snapshot()
        .failing_connections
        .values()
        .sum();
    assert_eq!(
        exported as i64, failing,
        "failing connections from the walk"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_builds_in_chunks_and_a_restart_continues_postgres() {
    first_start_builds_in_chunks_and_a_restart_continues(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_builds_in_chunks_and_a_restart_continues_sqlite() {
    first_start_builds_in_chunks_and_a_restart_continues(Backend::Sqlite).await;
}

/// With a repair sweep due at every scan, on a history no single statement may aggregate:
/// no scan fails, a run finished between two scans is counted by the next one, and the
/// sweeps finish and change nothing that was right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repairs_never_fail_a_scan_postgres() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    seed(&db, 120_000).await;
    // Long enough for a steady scan's small reads on a busy machine, too short for one
    // aggregate of the whole history.
    let store = with_scan_timeout(&db, Duration::from_millis(150)).await;
    let config = ScanConfig {
        repair_interval: Duration::ZERO,
        ..chunked(300)
    };
    assert_whole_aggregate_times_out(&store, &config).await;
    let mut scanner = Scanner::new(
        store,
        Lease::Always,
        config.clone(),
        Arc::new(SystemClock),
        Metrics::new(),
    );
    while scanner.scan_once().await.expect("build").building {}
    let total = |s: &Scanner| s.metrics().snapshot().runs.values().sum::<u64>();
    let started = Instant::now();
    let mut counted = total(&scanner);
    let mut scans = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let now = db.store.scan().db_now().await.unwrap();
        let mut row = Row::new("c1", "success", now - chrono::Duration::seconds(20));
        row.started = Some(now - chrono::Duration::seconds(10));
        row.completed = Some(now);
        insert(&db, &row).await;
        scanner
            .scan_once()
            .await
            .expect("no scan fails while repairs run");
        scans += 1;
        counted += 1;
        assert_eq!(
            total(&scanner),
            counted,
            "the run is counted by the next scan"
        );
    }
    let text = scanner.metrics().render();
    assert!(
        common::sample(&text, "syncwatch_last_repair_success_timestamp_seconds")
            .is_some_and(|v| v > 0.0),
        "at least one sweep finished in {scans} scans"
    );
    assert_eq!(
        common::family_sum(&text, "syncwatch_scan_errors_total"),
        0.0
    );
    assert_snapshot_matches_sql(&db, &scanner.metrics().snapshot(), &config.duration_buckets).await;
}

/// Retention: the old history goes, every exported number stays, also after a restart
/// from the checkpoint; the table keeps the young terminal runs and every active one.
async fn retention_changes_no_exported_number(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    seed(&db, 20_000).await; // from about 2.2 days ago to 1 day ago
    let now = db.store.scan().db_now().await.unwrap();
    let mut active = Row::new("c3", "in_progress", now - chrono::Duration::days(3));
    active.started = Some(now - chrono::Duration::days(3));
    insert(&db, &active).await;
    let config = ScanConfig {
        checkpoint_interval: Duration::ZERO,
        ..chunked(500)
    };
    let mut scanner = self::scanner(&db, config.clone(), Arc::new(SystemClock));
    while scanner.scan_once().await.unwrap().building {}
    scanner.scan_once().await.unwrap(); // saves the checkpoint
    let before = scanner.metrics().render_domain();
    let active_before = db
        .scalar_i64("select count(*) from workspace_connector_sync_log where completed_at is null")
        .await;

    // The command: refuses nothing here, deletes what completed more than 40 h ago.
    let output = Command::new(env!("CARGO_BIN_EXE_syncwatch"))
        .args([
            "prune",
            "--older-than",
            "40h",
            "--database-url",
            db.url.expose(),
        ])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("prune: deleted"), "{stdout}");
    let old = db
        .scalar_i64(&format!(
            "select count(*) from workspace_connector_sync_log where completed_at < {}",
            common::scan::lit(Some(now - chrono::Duration::hours(40)))
        ))
        .await;
    assert_eq!(old, 0, "nothing older than the cut-off is left");
    let left = db
        .scalar_i64(
            "select count(*) from workspace_connector_sync_log where completed_at is not null",
        )
        .await;
    assert!(left > 0 && left < 20_000, "{left} terminal runs left");

    // Retention in the scanner itself takes the rest (it never passes the checkpoint).
    let retaining = ScanConfig {
        retention: Some(Duration::from_secs(6 * 3600)),
        ..config.clone()
    };
    let mut scanner = self::scanner(&db, retaining, Arc::new(SystemClock));
    let mut pruned = 0;
    for _ in 0..20 {
        pruned += scanner.scan_once().await.unwrap().pruned;
    }
    assert_eq!(
        pruned as i64, left,
        "every terminal run was over six hours old"
    );
    // What the scanner learned about each connection is rebuilt after a start from the runs
    // the table still has (the learned signals follow the wall clock too): retention that
    // deletes a connection's latest runs takes its schedule with them (documented). So do
    // the per-connection gauges once every run of a connection is gone (they equal SQL over
    // the table: no terminal run is left), and the states kept for them.
    let per_connection = |l: &str| {
        l.contains("connector_sync_failing_connections")
            || l.contains("connector_sync_connection_consecutive_failures")
    };
    let strip = |text: &str| {
        text.lines()
            .filter(|l| {
                !l.contains("oldest_active")
                    && !l.contains("overdue")
                    && !l.contains("overrunning")
                    && !per_connection(l)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let after = scanner.metrics().render_domain();
    assert_eq!(strip(&after), strip(&before));
    assert!(before
        .lines()
        .any(|l| !l.starts_with('#') && per_connection(l)));
    assert!(
        !after
            .lines()
            .any(|l| !l.starts_with('#') && per_connection(l)),
        "no connection has a terminal run left: {after}"
    );
    assert_eq!(
        db.scalar_i64("select count(*) from syncwatch_connection_state")
            .await,
        0,
        "the states of connections with no run left are forgotten"
    );
    assert_eq!(
        db.scalar_i64(
            "select count(*) from workspace_connector_sync_log where completed_at is null"
        )
        .await,
        active_before,
        "active runs are never deleted"
    );

    // A restart from the checkpoint: still every number, per-connection state included.
    let mut restarted = self::scanner(&db, config, Arc::new(SystemClock));
    while restarted.scan_once().await.unwrap().building {}
    let restarted = restarted.metrics().render_domain();
    assert_eq!(strip(&restarted), strip(&after));
    assert!(!restarted
        .lines()
        .any(|l| !l.starts_with('#') && per_connection(l)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_changes_no_exported_number_postgres() {
    retention_changes_no_exported_number(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_changes_no_exported_number_sqlite() {
    retention_changes_no_exported_number(Backend::Sqlite).await;
}

/// `prune` refuses to delete history the scanner has not counted and saved yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_refuses_without_a_checkpoint() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    seed(&db, 100).await;
    let output = Command::new(env!("CARGO_BIN_EXE_syncwatch"))
        .args([
            "prune",
            "--older-than",
            "1h",
            "--database-url",
            db.url.expose(),
        ])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no scanner checkpoint"), "{stderr}");
    assert_eq!(db.count_rows().await, 100, "nothing deleted");
}

/// A run that becomes visible later than the late-commit window after its completion is
/// missed by the incremental reads and counted by the next recent repair sweep, which
/// reads only what completed after its anchor (no full sweep configured).
async fn a_run_visible_later_than_the_window_is_counted_by_the_next_sweep(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    seed(&db, 1_000).await;
    let config = |repair_interval| ScanConfig {
        late_commit_window: Duration::from_secs(1),
        repair_interval,
        ..chunked(500)
    };
    let mut without = scanner(
        &db,
        config(Duration::from_secs(3600)),
        Arc::new(SystemClock),
    );
    let mut with = scanner(&db, config(Duration::ZERO), Arc::new(SystemClock));
    let built = db.store.scan().db_now().await.unwrap();
    for s in [&mut without, &mut with] {
        while s.scan_once().await.unwrap().building {}
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for s in [&mut without, &mut with] {
        s.scan_once().await.unwrap();
    }
    // Completed after both builds' settled point, visible only now: below the window.
    let mut late = Row::new("late", "error", built);
    late.started = Some(built);
    late.completed = Some(built + chrono::Duration::milliseconds(500));
    insert(&db, &late).await;
    let errors = |s: &Scanner| {
        s.metrics()
            .snapshot()
            .runs
            .iter()
            .filter(|((c, _, st), _)| &**c == "late" && &**st == "error")
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    for s in [&mut without, &mut with] {
        s.scan_once().await.unwrap();
    }
    assert_eq!(errors(&without), 0, "the incremental reads miss it");
    assert_eq!(errors(&with), 1, "the recent sweep counts it");
    with.scan_once().await.unwrap();
    assert_eq!(errors(&with), 1, "once");
    assert_snapshot_matches_sql(
        &db,
        &with.metrics().snapshot(),
        &ScanConfig::default().duration_buckets,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_visible_later_than_the_window_is_counted_by_the_next_sweep_postgres() {
    a_run_visible_later_than_the_window_is_counted_by_the_next_sweep(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_visible_later_than_the_window_is_counted_by_the_next_sweep_sqlite() {
    a_run_visible_later_than_the_window_is_counted_by_the_next_sweep(Backend::Sqlite).await;
}
