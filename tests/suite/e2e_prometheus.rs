//! End to end: the real binary on Postgres, runs written through the API and straight
//! into the table, a real Prometheus scraping `/metrics`, and one PromQL query per
//! contract metric compared with SQL over the table, before and after a restart.

use crate::common;

use std::time::{Duration, Instant};

use common::prometheus::{http_ok, Prometheus};
use common::{free_port, run_through_api, wait_until, Backend, Server, TestDb};
use reqwest::Client;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// `syncwatch serve` on `db`, scanning every second, on the given ports.
async fn start_syncwatch(db: &TestDb, api: u16, metrics: u16) -> Server {
    Server::start_on(db.url.expose(), api, metrics, &["--scan-interval", "1s"]).await
}

/// The value of a PromQL query returning one sample, if it returns one.
async fn query(client: &Client, prom: u16, promql: &str) -> Option<f64> {
    let body: Value = client
        .get(format!("http://127.0.0.1:{prom}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let result = body["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

async fn sql_f64(db: &TestDb, sql: &str) -> f64 {
    let mut conn = PgConnection::connect(db.url.expose()).await.unwrap();
    let value: f64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    let _ = conn.close().await;
    value
}

/// (PromQL, SQL giving the value the store implies), one per contract metric.
const CHECKS: &[(&str, &str)] = &[
    ("sum(connector_sync_runs_total)",
     "select count(*)::float8 from workspace_connector_sync_log where completed_at is not null"),
    ("sum(connector_sync_runs_total{connector=\"hubspot\",status=\"error\"})",
     "select count(*)::float8 from workspace_connector_sync_log where status = 'error' and connector_slug = 'hubspot'"),
    ("sum(connector_sync_duration_seconds_count)",
     "select count(duration_ms)::float8 from workspace_connector_sync_log where completed_at is not null"),
    ("sum(connector_sync_duration_seconds_bucket{le=\"60\"})",
     "select count(*)::float8 from workspace_connector_sync_log where duration_ms <= 60000"),
    ("sum(connector_sync_dispatch_delay_seconds_count)",
     "select count(started_at)::float8 from workspace_connector_sync_log where completed_at is not null"),
    ("sum(connector_sync_records_synced_total)",
     "select coalesce(sum((metadata->>'records_synced')::float8), 0) from workspace_connector_sync_log where completed_at is not null"),
    ("sum(connector_sync_runs_active)",
     "select count(*)::float8 from workspace_connector_sync_log where status in ('scheduled', 'in_progress') and deleted_at is null"),
    ("sum(connector_sync_runs_stuck)",
     "select count(*)::float8 from workspace_connector_sync_log where status = 'scheduled' and deleted_at is null and created_at < now() - interval '15 minutes'"),
    ("connector_sync_oldest_active_run_timestamp_seconds{connector=\"zendesk\",status=\"scheduled\"}",
     "select extract(epoch from min(created_at))::float8 from workspace_connector_sync_log where connector_slug = 'zendesk' and status = 'scheduled'"),
    ("connector_sync_last_success_timestamp_seconds{connector=\"hubspot\"}",
     "select extract(epoch from max(completed_at))::float8 from workspace_connector_sync_log where connector_slug = 'hubspot' and status = 'success'"),
    ("connector_sync_last_failure_timestamp_seconds{connector=\"hubspot\"}",
     "select extract(epoch from max(completed_at))::float8 from workspace_connector_sync_log where connector_slug = 'hubspot' and status = 'error'"),
    ("sum(connector_sync_failing_connections)",
     "select count(*)::float8 from (select distinct on (workspace_connector_id) status from workspace_connector_sync_log where completed_at is not null order by workspace_connector_id, completed_at desc) t where status = 'error'"),
    ("max(connector_sync_connection_consecutive_failures)", "select 3::float8"),
    ("syncwatch_up", "select 1::float8"),
    ("syncwatch_scanner_leader", "select 1::float8"),
];

async fn all_checks_agree(client: &Client, prom: u16, db: &TestDb) -> Result<(), String> {
    for (promql, sql) in CHECKS {
        let want = sql_f64(db, sql).await;
        let got = query(client, prom, promql).await;
        match got {
            Some(v) if (v - want).abs() <= 0.002 => {}
            other => {
                return Err(format!(
                    "{promql}: Prometheus says {other:?}, SQL says {want}"
                ))
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_answers_match_sql_before_and_after_a_restart() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let client = Client::new();
    let (api, metrics) = (free_port(), free_port());
    let mut syncwatch = start_syncwatch(&db, api, metrics).await;
    let base = format!("http://127.0.0.1:{api}");
    wait_until("syncwatch ready", Duration::from_secs(30), || {
        http_ok(&client, format!("{base}/readyz"))
    })
    .await;

    // Through the API: a failing hubspot connection (3 failures after a success) and a
    // healthy salesforce one.
    let failing = Uuid::new_v4();
    let run = |connection: Uuid, slug: &'static str, outcome: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let create = json!({"workspace_connector_id": connection, "connector_slug": slug,
                                "trigger_type": "manual", "metadata": {"records_synced": 10}});
            run_through_api(&client, &base, create, outcome, "rate limited").await;
        }
    };
    run(failing, "hubspot", "succeed").await;
    for _ in 0..3 {
        run(failing, "hubspot", "fail").await;
    }
    run(Uuid::new_v4(), "salesforce", "succeed").await;
    // Straight into the table (observer mode): a finished run and a stuck scheduled one.
    db.execute(
        "insert into workspace_connector_sync_log (workspace_connector_id, connector_slug, \
           status, trigger_type, created_at, started_at, completed_at, duration_ms, metadata) \
         values (gen_random_uuid(), 'zendesk', 'success', 'cloud_task', now() - interval '95 seconds', \
           now() - interval '90 seconds', now(), 90000, '{\"records_synced\": 7}')",
    )
    .await;
    db.execute(
        "insert into workspace_connector_sync_log (workspace_connector_id, connector_slug, status, created_at) \
         values (gen_random_uuid(), 'zendesk', 'scheduled', now() - interval '1 hour')",
    )
    .await;

    let Some(prometheus) = Prometheus::start(&client, metrics, &[]).await else {
        return;
    };
    let prom = prometheus.port;

    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match all_checks_agree(&client, prom, &db).await {
            Ok(()) => break,
            Err(e) => last = e,
        }
        assert!(Instant::now() < deadline, "before restart: {last}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let before = query(&client, prom, "sum(connector_sync_runs_total)")
        .await
        .unwrap();

    // Restart: stop the process, write while it is down, start a new one.
    drop(syncwatch);
    db.execute(
        "insert into workspace_connector_sync_log (workspace_connector_id, connector_slug, \
           status, trigger_type, created_at, completed_at, error) \
         values (gen_random_uuid(), 'zendesk', 'error', 'manual', now(), now(), 'down')",
    )
    .await;
    syncwatch = start_syncwatch(&db, api, metrics).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let total = query(&client, prom, "sum(connector_sync_runs_total)").await;
        if total == Some(before + 1.0) {
            if let Err(e) = all_checks_agree(&client, prom, &db).await {
                last = e;
            } else {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "after restart: {last} (total {total:?})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Counters never went down across the restart.
    let resets = query(&client, prom, "sum(resets(connector_sync_runs_total[5m]))").await;
    assert_eq!(resets, Some(0.0), "a restart reset a counter");
    drop(syncwatch);
}
