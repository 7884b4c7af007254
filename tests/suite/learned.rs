//! What the scanner learns without configuration — each connection's schedule and usual
//! duration — checked on both stores against an independent recomputation of the same
//! definitions from every row of the table: after a first build, after new runs, and after
//! a restart that rebuilds the learned state from each connection's latest runs only.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::scan::{insert, scanner, Row};
use common::{Backend, TestDb};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sqlx::Connection;
use syncwatch::metrics::Snapshot;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::test_support::ManualClock;
use syncwatch::test_support::ScannerExt;
use uuid::Uuid;

/// One row as the recomputation reads it.
pub(crate) struct Run {
    connection: Uuid,
    connector: String,
    trigger: Option<String>,
    status: String,
    created: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
    completed: Option<DateTime<Utc>>,
    duration_ms: Option<i64>,
    deleted: bool,
}

pub(crate) async fn all_runs(db: &TestDb) -> Vec<Run> {
    const SQL: &str = "select workspace_connector_id, connector_slug, trigger_type, status, \
        created_at, started_at, completed_at, duration_ms, \
        case when deleted_at is null then 0 else 1 end from workspace_connector_sync_log";
    type Raw = (
        String,
        String,
        Option<String>,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        i64,
    );
    let ts = |t: &str| -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .unwrap()
    };
    let rows: Vec<Raw> = match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(db.url.expose())
                .await
                .unwrap();
            sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            // The same columns as text in the stored ISO form.
            let sql = "select workspace_connector_id::text, connector_slug, trigger_type, status, \
                to_char(created_at at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
                to_char(started_at at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
                to_char(completed_at at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
                duration_ms::bigint, case when deleted_at is null then 0::bigint else 1::bigint end \
                from workspace_connector_sync_log";
            let mut conn = sqlx::PgConnection::connect(db.url.expose()).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
    };
    rows.into_iter()
        .map(|r| Run {
            connection: r.0.parse().unwrap(),
            connector: r.1,
            trigger: r.2,
            status: r.3,
            created: ts(&r.4),
            started: r.5.as_deref().map(ts),
            completed: r.6.as_deref().map(ts),
            duration_ms: r.7,
            deleted: r.8 != 0,
        })
        .collect()
}

/// The definitions, recomputed from every row: per connector, the overdue connections
/// (with their seconds past due) and the overrunning live runs.
pub(crate) type Expected = (
    BTreeMap<String, u64>,
    BTreeMap<(String, String), f64>,
    BTreeMap<String, u64>,
);

pub(crate) fn recompute(runs: &[Run], now: DateTime<Utc>) -> Expected {
    let mut by_connection: BTreeMap<Uuid, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        by_connection.entry(run.connection).or_default().push(run);
    }
    let (mut overdue, mut seconds, mut overrunning) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for (id, runs) in &by_connection {
        let connector = runs[0].connector.clone();
        overdue.entry(connector.clone()).or_insert(0u64);
        overrunning.entry(connector.clone()).or_insert(0u64);
        // The schedule: live cloud_task runs (terminal or active), latest 21 distinct
        // creation times, the lower median of their gaps.
        let mut created: Vec<i64> = runs
            .iter()
            .filter(|r| !r.deleted && r.trigger.as_deref() == Some("cloud_task"))
            .map(|r| r.created.timestamp_millis())
            .collect();
        created.sort_unstable();
        created.dedup();
        let created = &created[created.len().saturating_sub(21)..];
        let latest_success = runs
            .iter()
            .filter(|r| !r.deleted && r.status == "success" && r.duration_ms.is_some())
            .filter_map(|r| r.completed)
            .max();
        let last_seen = created
            .last()
            .copied()
            .or(latest_success.map(|t| t.timestamp_millis()));
        let retired = last_seen.is_none_or(|t| now.timestamp_millis() - t > 2 * 86_400_000);
        if created.len() >= 5 && !retired {
            let mut gaps: Vec<i64> = created.windows(2).map(|w| w[1] - w[0]).collect();
            gaps.sort_unstable();
            let interval = gaps[(gaps.len() - 1) / 2];
            let silent = now.timestamp_millis() - created[created.len() - 1];
            if interval > 0 && silent as f64 > 3.0 * interval as f64 {
                *overdue.get_mut(&connector).unwrap() += 1;
                seconds.insert(
                    (connector.clone(), id.to_string()),
                    (silent - interval) as f64 / 1000.0,
                );
            }
        }
        // The usual duration: the p95 (nearest rank) of the latest 20 live successes.
        let mut successes: Vec<(DateTime<Utc>, i64)> = runs
            .iter()
            .filter(|r| !r.deleted && r.status == "success")
            .filter_map(|r| Some((r.completed?, r.duration_ms?)))
            .collect();
        successes.sort();
        let latest = &successes[successes.len().saturating_sub(20)..];
        if latest.len() >= 5 && !retired {
            let mut d: Vec<i64> = latest.iter().map(|(_, d)| *d).collect();
            d.sort_unstable();
            let p95 = d[(d.len() * 95).div_ceil(100) - 1];
            let limit = (3 * p95).max(5 * 60 * 1000);
            for run in runs {
                if run.status == "in_progress" && !run.deleted {
                    let age = now - run.started.unwrap_or(run.created);
                    if age.num_milliseconds() > limit {
                        *overrunning.get_mut(&connector).unwrap() += 1;
                    }
                }
            }
        }
    }
    (overdue, seconds, overrunning)
}

pub(crate) fn exported(snapshot: &Snapshot) -> Expected {
    let owned = |m: &std::collections::BTreeMap<syncwatch::metrics::Label, u64>| {
        m.iter().map(|(c, v)| (c.to_string(), *v)).collect()
    };
    (
        owned(&snapshot.overdue_connections),
        snapshot
            .overdue_seconds
            .iter()
            .map(|((c, id), v)| ((c.to_string(), id.to_string()), *v))
            .collect(),
        owned(&snapshot.overrunning),
    )
}

/// Connections of three connectors, each on its own schedule with jitter, manual runs in
/// between, soft-deleted runs, some silent for a while (overdue), one silent for days
/// (retired), one with every run soft-deleted, some with fewer than 5 runs, and live runs
/// in progress for various multiples of their usual duration.
pub(crate) async fn fill(db: &TestDb, now: DateTime<Utc>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let connectors = ["hubspot", "salesforce", "stripe"];
    for c in 0..18u32 {
        let connection = Uuid::from_u128(0xc0 + u128::from(c));
        let connector = connectors[c as usize % 3];
        let interval_min = [10i64, 30, 60][c as usize % 3];
        let runs = [3usize, 8, 30][(c as usize / 3) % 3];
        // How long ago the schedule stopped: now, a little, a lot, days.
        let silence_min = match c % 6 {
            0 | 1 => 0,
            2 | 3 => interval_min * 5,
            4 => interval_min * 2,
            _ => 3 * 24 * 60,
        };
        let all_deleted = c == 7;
        for i in 0..runs {
            let back = silence_min + interval_min * (runs - i) as i64;
            let jitter = rng.random_range(-60i64..60);
            let created = now - Duration::minutes(back) + Duration::seconds(jitter);
            let started = created + Duration::seconds(rng.random_range(1..20));
            let duration = Duration::seconds(rng.random_range(30..240));
            let status = if rng.random_range(0..5) == 0 {
                "error"
            } else {
                "success"
            };
            let mut row = Row::new(connector, status, created);
            row.connection = connection;
            row.started = Some(started);
            row.completed = Some(started + duration);
            row.deleted = all_deleted || rng.random_range(0..15) == 0;
            insert(db, &row).await;
            if rng.random_range(0..4) == 0 {
                let mut manual = Row::new(connector, "success", created + Duration::minutes(2));
                manual.connection = connection;
                manual.trigger = Some("manual");
                manual.started = Some(created + Duration::minutes(2));
                manual.completed = Some(created + Duration::minutes(3));
                insert(db, &manual).await;
            }
        }
        // A live run in progress: from a minute to hours.
        if c % 2 == 0 {
            let age = [1i64, 8, 20, 90, 400][rng.random_range(0..5)];
            let mut live = Row::new(connector, "in_progress", now - Duration::minutes(age));
            live.connection = connection;
            live.trigger = Some(["cloud_task", "manual"][rng.random_range(0..2)]);
            live.started = Some(now - Duration::minutes(age));
            live.updated = Some(now - Duration::seconds(30));
            insert(db, &live).await;
        }
    }
}

/// Scan until the build has caught up and every connection's latest runs were read (a
/// chunk of connections per scan; small chunks here, so it takes several).
pub(crate) async fn until_learned(scanner: &mut syncwatch::scan::Scanner) {
    loop {
        let report = scanner.scan_once().await.unwrap();
        if !report.building && !report.learning {
            break;
        }
    }
}

pub(crate) fn config() -> ScanConfig {
    ScanConfig {
        chunk_connections: 4,
        ..ScanConfig::default()
    }
}

/// A store filled with [`fill`]'s fleet (`seed`), and a scanner on a clock stopped at its
/// `now` that has learned it; `None` when the backend is missing.
pub(crate) async fn learned_fleet(
    backend: Backend,
    seed: u64,
) -> Option<(TestDb, Scanner, Arc<ManualClock>, DateTime<Utc>)> {
    let db = TestDb::new(backend).await?;
    let now = Utc::now().trunc_subsecs(3);
    fill(&db, now, seed).await;
    let clock = Arc::new(ManualClock::new(now));
    let mut scanner = scanner(&db, config(), clock.clone());
    until_learned(&mut scanner).await;
    Some((db, scanner, clock, now))
}

async fn learned_signals_follow_the_table(backend: Backend) {
    let Some((db, mut first, clock, now)) = learned_fleet(backend, 42).await else {
        return;
    };
    let want = recompute(&all_runs(&db).await, now);
    assert!(
        want.0.values().sum::<u64>() >= 3,
        "the fixture has overdue connections: {want:?}"
    );
    assert!(
        want.2.values().sum::<u64>() >= 1,
        "the fixture has overrunning runs: {want:?}"
    );
    assert_eq!(
        exported(&first.metrics().snapshot()),
        want,
        "after the first build"
    );

    // New runs: an overdue connection runs again, and time passes.
    let overdue_id = want.1.keys().next().unwrap().1.parse::<Uuid>().unwrap();
    let connector = want.1.keys().next().unwrap().0.clone();
    let later = now + Duration::minutes(7);
    clock.set(later);
    let mut again = Row::new(&connector, "success", now + Duration::seconds(5));
    again.connection = overdue_id;
    again.started = Some(now + Duration::seconds(6));
    again.completed = Some(now + Duration::seconds(60));
    insert(&db, &again).await;
    // A soft-deleted scheduled run teaches nothing: another overdue connection stays so.
    let (still_connector, still_id) = want.1.keys().nth(1).unwrap().clone();
    let mut deleted = Row::new(&still_connector, "error", now + Duration::seconds(10));
    deleted.connection = still_id.parse().unwrap();
    deleted.completed = Some(now + Duration::seconds(20));
    deleted.deleted = true;
    insert(&db, &deleted).await;
    first.scan_once().await.unwrap();
    let want = recompute(&all_runs(&db).await, later);
    assert!(
        !want.1.keys().any(|(_, id)| *id == overdue_id.to_string()),
        "the connection that ran again is not overdue"
    );
    assert!(
        want.1.keys().any(|(_, id)| *id == still_id),
        "a soft-deleted run does not end an overdue streak"
    );
    assert_eq!(
        exported(&first.metrics().snapshot()),
        want,
        "after new runs"
    );

    // A restart rebuilds the learned state from each connection's latest runs.
    let mut second = scanner(&db, config(), clock.clone());
    until_learned(&mut second).await;
    assert_eq!(
        exported(&second.metrics().snapshot()),
        want,
        "after a restart"
    );

    // Saved with the checkpoint: a restart reads no connection's history, and needs none
    // (every terminal run deleted, as retention would, changes no learned signal).
    let saving = ScanConfig {
        checkpoint_interval: std::time::Duration::ZERO,
        ..config()
    };
    let mut third = scanner(&db, saving, clock.clone());
    until_learned(&mut third).await;
    third.scan_once().await.unwrap();
    db.execute("delete from workspace_connector_sync_log where completed_at is not null")
        .await;
    let mut restarted = scanner(&db, config(), clock.clone());
    let mut history_reads = 0;
    loop {
        let report = restarted.scan_once().await.unwrap();
        history_reads += usize::from(report.learning);
        if !report.building && !report.learning {
            break;
        }
    }
    assert_eq!(
        history_reads, 0,
        "a scan read connections' latest runs after a restart from the checkpoint"
    );
    assert_eq!(
        exported(&restarted.metrics().snapshot()),
        want,
        "after a restart from the checkpoint, with the history deleted"
    );
}

/// More connections than one statement of the learn walk reads (200): every one of them
/// learned after a first start, as the recomputation from every row says.
async fn the_learn_walk_reads_every_connection_in_parts(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let now = Utc::now().trunc_subsecs(3);
    let mut values = Vec::new();
    for c in 0..250u128 {
        let connection = Uuid::from_u128(0x1000 + c);
        // Hourly, the last one 4 to 7 hours ago for one connection in five: overdue.
        let silent = if c % 5 == 0 { 4 + (c % 4) as i64 } else { 0 };
        for i in 0..6i64 {
            let created = now - Duration::hours(silent + 6 - i) - Duration::seconds(c as i64);
            let started = created + Duration::seconds(5);
            let completed = started + Duration::seconds(60 + (c as i64 % 50));
            values.push(format!(
                "('{}', '{connection}', 'hubspot', 'success', 'cloud_task', {}, {}, {}, null, \
                 null, {}, {}, null)",
                Uuid::new_v4(),
                common::scan::lit(Some(started)),
                common::scan::lit(Some(completed)),
                (completed - started).num_milliseconds(),
                common::scan::lit(Some(created)),
                common::scan::lit(Some(completed)),
            ));
        }
    }
    db.execute(&format!(
        "insert into workspace_connector_sync_log \
           (workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status, \
            trigger_type, started_at, completed_at, duration_ms, error, metadata, created_at, \
            updated_at, deleted_at) values {}",
        values.join(", ")
    ))
    .await;
    let clock = Arc::new(ManualClock::new(now));
    let mut scanner = scanner(&db, ScanConfig::default(), clock);
    until_learned(&mut scanner).await;
    let want = recompute(&all_runs(&db).await, now);
    assert_eq!(
        want.0["hubspot"], 50,
        "the fixture's overdue connections: {want:?}"
    );
    assert_eq!(exported(&scanner.metrics().snapshot()), want);
}

on_both_backends!(
    learned_signals_follow_the_table,
    the_learn_walk_reads_every_connection_in_parts
);
