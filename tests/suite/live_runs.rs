//! The live runs the scanner keeps between scans: after the first scan each one reads only
//! the runs created or started since the last, drops the ones it sees finish, and reads
//! them all again only when its counts disagree with the live-run groups two scans in a
//! row. Checked on both stores against the learned signals recomputed from every row, and
//! by counting the full reads.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use uuid::Uuid;

use crate::common::scan::{insert, lit, Row};
use crate::common::{Backend, TestDb};
use crate::learned::{all_runs, exported, learned_fleet, recompute, Expected};
use syncwatch::scan::Scanner;
use syncwatch::test_support::ScannerExt;

fn full_reads(scanner: &Scanner, reason: &str) -> u64 {
    scanner
        .metrics()
        .live_full_reads
        .with_label_values(&[reason])
        .get()
}

/// The learned signals exported after three scans (a disagreement seen twice is read in
/// full by the third), checked against the table's at `at`; returns them.
/// Three scans after `what` happened: the learned signals equal those recomputed from
/// every row, and `drift` full reads have been made since the start.
async fn after_three_scans(
    scanner: &mut Scanner,
    db: &TestDb,
    at: DateTime<Utc>,
    what: &str,
    drift: u64,
) -> Expected {
    for _ in 0..3 {
        scanner.scan_once().await.unwrap();
    }
    let want = recompute(&all_runs(db).await, at);
    assert_eq!(exported(&scanner.metrics().snapshot()), want, "{what}");
    assert_eq!(
        full_reads(scanner, "drift"),
        drift,
        "full reads for drift after {what}"
    );
    want
}

/// A manual run of `connection` (a scheduled run's creation would stay in the learned
/// schedule once seen), in progress since `created`.
async fn live_run(db: &TestDb, connection: Uuid, created: DateTime<Utc>) {
    let mut run = Row::new("hubspot", "in_progress", created);
    run.connection = connection;
    run.trigger = Some("manual");
    run.started = Some(created);
    insert(db, &run).await;
}

async fn live_runs_are_read_by_what_changed(backend: Backend) {
    let Some((db, mut scanner, clock, now)) = learned_fleet(backend, 7).await else {
        return;
    };
    assert_eq!(full_reads(&scanner, "start"), 1);

    // A run created and started now is read by the next scan's read of what changed; an
    // hour later it overruns its connection's usual duration (hubspot, every 10 minutes,
    // 30 runs of 30 s to 4 min).
    let connection = Uuid::from_u128(0xc0 + 6);
    let fresh = Utc::now().trunc_subsecs(3);
    live_run(&db, connection, fresh).await;
    scanner.scan_once().await.unwrap();
    let later = now + Duration::hours(1);
    clock.set(later);
    let want = after_three_scans(&mut scanner, &db, later, "a new run", 0).await;
    let before = want.2["hubspot"];
    assert!(before >= 1, "the new run overruns: {want:?}");

    // Soft-deleted, it leaves the groups at once, and the set after two scans disagree.
    db.execute(&format!(
        "update workspace_connector_sync_log set deleted_at = updated_at \
         where workspace_connector_id = '{connection}' and status = 'in_progress' \
           and created_at = {}",
        lit(Some(fresh))
    ))
    .await;
    let want = after_three_scans(&mut scanner, &db, later, "a deleted run", 1).await;
    assert_eq!(want.2["hubspot"], before - 1);

    // Written as if long ago (no timestamp after the last read): found the same way.
    let backdated = now - Duration::hours(3);
    live_run(&db, connection, backdated).await;
    let want = after_three_scans(&mut scanner, &db, later, "a backdated run", 2).await;
    assert_eq!(want.2["hubspot"], before);

    // Finishing, it is dropped by the terminal read: no disagreement, no full read.
    let done = lit(Some(Utc::now().trunc_subsecs(3)));
    db.execute(&format!(
        "update workspace_connector_sync_log set status = 'success', completed_at = {done}, \
           duration_ms = 1000, updated_at = {done} \
         where workspace_connector_id = '{connection}' and status = 'in_progress' \
           and deleted_at is null and created_at = {}",
        lit(Some(backdated)),
    ))
    .await;
    let want = after_three_scans(&mut scanner, &db, later, "a finished run", 2).await;
    assert_eq!(want.2["hubspot"], before - 1);

    // A scheduled run enqueued two minutes ago (older than the read of changes looks)
    // for an overdue connection every hour: the full read that the disagreement brings
    // notes its creation, and the connection is overdue no more.
    let (_, overdue) = (want.1.keys())
        .find(|(connector, _)| connector == "stripe")
        .expect("an overdue hourly connection in the fixture")
        .clone();
    let mut enqueued = Row::new(
        "stripe",
        "scheduled",
        Utc::now().trunc_subsecs(3) - Duration::minutes(2),
    );
    enqueued.connection = overdue.parse().unwrap();
    insert(&db, &enqueued).await;
    let want = after_three_scans(&mut scanner, &db, later, "an enqueued run", 3).await;
    assert!(!want.1.keys().any(|(_, id)| *id == overdue), "{want:?}");
    assert_eq!(full_reads(&scanner, "start"), 1);
    assert_eq!(full_reads(&scanner, "interval"), 0);
}

on_both_backends!(live_runs_are_read_by_what_changed);
