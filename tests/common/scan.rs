//! Scanner test helpers: rows written straight into the table as another service would,
//! a scanner over a test store, and the check of a snapshot against SQL.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use syncwatch::clock::Clock;
use syncwatch::metrics::{Metrics, Snapshot};
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::Lease;
use uuid::Uuid;

use super::TestDb;

pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

pub fn scanner(db: &TestDb, config: ScanConfig, clock: Arc<dyn Clock>) -> Scanner {
    Scanner::new(
        db.store.clone(),
        Lease::Always,
        config,
        clock,
        Metrics::new(),
    )
}

/// One row written straight into the table, as another service would.
pub struct Row<'a> {
    pub connection: Uuid,
    pub connector: &'a str,
    pub trigger: Option<&'a str>,
    pub status: &'a str,
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    pub records: Option<i64>,
    pub deleted: bool,
}

impl<'a> Row<'a> {
    pub fn new(connector: &'a str, status: &'a str, created: DateTime<Utc>) -> Self {
        Row {
            connection: Uuid::new_v4(),
            connector,
            trigger: Some("cloud_task"),
            status,
            created,
            started: None,
            completed: None,
            updated: None,
            records: None,
            deleted: false,
        }
    }
}

pub fn lit(ts: Option<DateTime<Utc>>) -> String {
    ts.map_or("null".into(), |t| {
        format!(
            "'{}'",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    })
}

/// The same SQL works on both stores: explicit ids, ISO-8601 timestamps.
pub async fn insert(db: &TestDb, row: &Row<'_>) {
    let duration = match (row.started, row.completed) {
        (Some(s), Some(c)) => (c - s).num_milliseconds().to_string(),
        _ => "null".into(),
    };
    let error = if row.status == "error" {
        "'failed'"
    } else {
        "null"
    };
    let metadata = row
        .records
        .map_or("null".into(), |r| format!("'{{\"records_synced\": {r}}}'"));
    let updated = row
        .updated
        .or(row.completed)
        .or(row.started)
        .unwrap_or(row.created);
    let sql = format!(
        "insert into workspace_connector_sync_log \
           (workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status, \
            trigger_type, started_at, completed_at, duration_ms, error, metadata, created_at, \
            updated_at, deleted_at) \
         values ('{}', '{}', '{}', '{}', {}, {}, {}, {duration}, {error}, {metadata}, {}, {}, {})",
        Uuid::new_v4(),
        row.connection,
        row.connector,
        row.status,
        row.trigger.map_or("null".into(), |t| format!("'{t}'")),
        lit(row.started),
        lit(row.completed),
        lit(Some(row.created)),
        lit(Some(updated)),
        if row.deleted {
            lit(row.completed)
        } else {
            "null".into()
        },
    );
    db.execute(&sql).await;
}

/// Counters and histogram counts from the snapshot, checked against SQL over the table.
pub async fn assert_snapshot_matches_sql(db: &TestDb, snapshot: &Snapshot, buckets: &[f64]) {
    let trigger_sql = "coalesce(trigger_type, 'none')";
    for ((connector, trigger, status), value) in &snapshot.runs {
        let filter = format!(
            "completed_at is not null and connector_slug = '{connector}' \
             and {trigger_sql} = '{trigger}' and status = '{status}'"
        );
        let count = db
            .scalar_i64(&format!(
                "select count(*) from workspace_connector_sync_log where {filter}"
            ))
            .await;
        assert_eq!(
            *value as i64, count,
            "runs_total {connector}/{trigger}/{status}"
        );
        let histogram = &snapshot.durations[&(connector.clone(), trigger.clone(), status.clone())];
        let started = db
            .scalar_i64(&format!(
                "select count(*) from workspace_connector_sync_log where {filter} and duration_ms is not null"
            ))
            .await;
        assert_eq!(
            histogram.count as i64, started,
            "duration count {connector}/{status}"
        );
        for (bound, cumulative) in buckets.iter().zip(&histogram.cumulative) {
            let in_bucket = db
                .scalar_i64(&format!(
                    "select count(*) from workspace_connector_sync_log where {filter} \
                     and duration_ms <= {}",
                    bound * 1000.0
                ))
                .await;
            assert_eq!(
                *cumulative as i64, in_bucket,
                "bucket le={bound} {connector}/{status}"
            );
        }
    }
    let total: u64 = snapshot.runs.values().sum();
    let terminal = db
        .scalar_i64(
            "select count(*) from workspace_connector_sync_log where completed_at is not null",
        )
        .await;
    assert_eq!(total as i64, terminal, "every terminal run is counted once");
    for ((connector, status), value) in &snapshot.active {
        let count = db
            .scalar_i64(&format!(
                "select count(*) from workspace_connector_sync_log where deleted_at is null \
                 and connector_slug = '{connector}' and status = '{status}'"
            ))
            .await;
        assert_eq!(*value as i64, count, "active {connector}/{status}");
    }
}
