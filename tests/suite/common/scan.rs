//! Scanner test helpers: rows written straight into the table as another service would,
//! a scanner over a test store, and the check of a snapshot against SQL.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::Connection;
use syncwatch::clock::Clock;
use syncwatch::domain::FailureRules;
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

/// The error texts of failed rows (chosen by creation time): one per built-in failure
/// reason, one no rule matches, none at all, and one whose match lies past the prefix the
/// rules read.
const ERRORS: &[Option<&str>] = &[
    Some("HTTP 401 Unauthorized: token revoked"),
    Some("429 Too Many Requests"),
    Some("request timed out after 30s"),
    Some("upstream returned status 503"),
    Some("read ECONNRESET"),
    Some("failed to parse the response"),
    Some("it's broken"),
    None,
    Some(LONG_ERROR),
];
const LONG_ERROR: &str = concat!(
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "then a 429",
);

/// The same SQL works on both stores: explicit ids, ISO-8601 timestamps.
pub async fn insert(db: &TestDb, row: &Row<'_>) {
    let duration = match (row.started, row.completed) {
        (Some(s), Some(c)) => (c - s).num_milliseconds().to_string(),
        _ => "null".into(),
    };
    let error = if row.status == "error" {
        ERRORS[row.created.timestamp().rem_euclid(ERRORS.len() as i64) as usize]
            .map_or("null".into(), |e| format!("'{}'", e.replace('\'', "''")))
    } else {
        "null".into()
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
    assert_failures_match_sql(db, snapshot).await;
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

/// Failures by reason: every failed run in the table classified one by one (the built-in
/// rules), counted per (connector, trigger, reason), equal to the snapshot's; and per
/// (connector, trigger) the reasons sum to the error runs.
pub async fn assert_failures_match_sql(db: &TestDb, snapshot: &Snapshot) {
    use std::collections::BTreeMap;
    let rules = FailureRules::default();
    let rows: Vec<(String, Option<String>, Option<String>)> = match db.backend {
        super::Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(db.url.expose()).await.unwrap();
            sqlx::query_as(FAILED_ROWS)
                .fetch_all(&mut conn)
                .await
                .unwrap()
        }
        super::Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(db.url.expose())
                .await
                .unwrap();
            sqlx::query_as(FAILED_ROWS)
                .fetch_all(&mut conn)
                .await
                .unwrap()
        }
    };
    let mut want: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for (connector, trigger, error) in &rows {
        let key = (
            connector.clone(),
            trigger.clone().unwrap_or_else(|| "none".into()),
            rules.classify(error.as_deref()).to_owned(),
        );
        *want.entry(key).or_default() += 1;
    }
    let got: BTreeMap<(String, String, String), u64> = snapshot
        .failures
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|((c, t, r, o), v)| {
            assert_eq!(&**o, rules.owner(r).as_str(), "owner of {r}");
            ((c.to_string(), t.to_string(), r.to_string()), *v)
        })
        .collect();
    assert_eq!(got, want, "failures by reason");
    for ((connector, trigger, status), runs) in &snapshot.runs {
        if &**status == "error" {
            let by_reason: u64 = snapshot
                .failures
                .iter()
                .filter(|((c, t, _, _), _)| c == connector && t == trigger)
                .map(|(_, v)| v)
                .sum();
            assert_eq!(
                by_reason, *runs,
                "reasons sum to the errors of {connector}/{trigger}"
            );
        }
    }
}

const FAILED_ROWS: &str = "select connector_slug, trigger_type, error \
     from workspace_connector_sync_log where completed_at is not null and status = 'error'";
