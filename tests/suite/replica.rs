//! A hot standby for the reads: the real binary with `--read-database-url` on a streaming
//! standby the test creates (`initdb`, `pg_basebackup -R`, a second server on its own
//! port). Runs committed on the primary while the standby's replay is paused are exported
//! exactly once after it resumes, the API's reads come from the standby, the primary
//! serves none of the scanner's reads, and `/readyz` and the lag metric say where the
//! standby stands.

use crate::common;

use std::time::Duration;

use common::cluster::OwnCluster;
use common::{family_sum, get_json, sample, service_bin, wait_until, Server};
use reqwest::Client;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

/// Run `sql` on `url`, returning the first column of the first row as an i64 (0 for none).
async fn scalar(url: &str, sql: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let value: Option<i64> = sqlx::query_scalar(sql)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    value.unwrap_or(0)
}

async fn execute(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    let _ = conn.close().await;
}

/// `n` finished runs, written on the primary in one plain transaction as an orchestrator
/// would.
async fn finish_runs(primary: &str, n: usize) {
    let one = "insert into workspace_connector_sync_log (workspace_connector_id, connector_slug, \
        status, trigger_type, created_at, started_at, completed_at, duration_ms) \
        values (gen_random_uuid(), 'hubspot', 'success', 'cloud_task', now() - interval '10 seconds', \
        now() - interval '9 seconds', now(), 9000);";
    execute(primary, &format!("begin; {} commit;", one.repeat(n))).await;
}

/// Finished runs in the table on `url`.
async fn terminal(url: &str) -> i64 {
    scalar(
        url,
        "select count(*) from workspace_connector_sync_log where completed_at is not null",
    )
    .await
}

/// Sequential and index scans of the sync log the server at `url` has served (its
/// cumulative statistics, flushed within a second or so of each statement).
async fn table_reads(url: &str) -> i64 {
    scalar(
        url,
        "select (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::int8 from pg_stat_user_tables \
         where relname = 'workspace_connector_sync_log'",
    )
    .await
}

/// Pause the standby's replay, and wait until it has stopped: a pause takes effect at the
/// next record the standby replays, so the primary writes one (to a table of the test's
/// own) until it has.
async fn pause(primary: &str, standby: &str) {
    execute(standby, "select pg_wal_replay_pause()").await;
    wait_until(
        "the standby's replay paused",
        Duration::from_secs(30),
        async || {
            execute(
                primary,
                "create table if not exists replica_test_ping (at timestamptz); \
             insert into replica_test_ping values (now())",
            )
            .await;
            let mut conn = PgConnection::connect(standby).await.unwrap();
            let state: String = sqlx::query_scalar("select pg_get_wal_replay_pause_state()")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let _ = conn.close().await;
            state == "paused"
        },
    )
    .await;
}

/// Resume the standby's replay, and wait until `server` exports `runs` runs.
async fn resume(standby: &str, server: &Server, runs: f64) {
    execute(standby, "select pg_wal_replay_resume()").await;
    wait_until(
        "the replayed runs exported",
        Duration::from_secs(30),
        async || family_sum(&server.scrape().await, "connector_sync_runs_total") == runs,
    )
    .await;
}

/// A primary cluster with syncwatch's schema and 3 finished runs, and a hot standby of it.
async fn primary_and_standby() -> Option<(OwnCluster, OwnCluster)> {
    let primary = OwnCluster::create()?;
    // The schema first, so the standby starts with it.
    let migrated = std::process::Command::new(service_bin())
        .args(["migrate", "--database-url", &primary.url()])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    finish_runs(&primary.url(), 3).await;
    let standby = primary.standby()?;
    Some((primary, standby))
}

/// The real binary on `primary`, reading from `standby`: a scan every 300 ms, a 2 s
/// late-commit window and 1 s of tolerated lag, so a paused replay shows within seconds.
async fn serve(primary: &str, standby: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--read-database-url",
        standby,
        "--scan-interval",
        "300ms",
        "--late-commit-window",
        "2s",
        "--read-max-lag",
        "1s",
    ];
    args.extend(extra);
    Server::start(primary, &args).await
}

async fn readyz(client: &Client, server: &Server) -> (u16, Value) {
    let response = client
        .get(format!("{}/readyz", server.api))
        .send()
        .await
        .unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_serves_the_reads_and_a_run_replayed_late_is_counted_once() {
    let Some((primary, standby)) = primary_and_standby().await else {
        return;
    };
    let (primary_url, standby_url) = (primary.url(), standby.url());
    let server = serve(&primary_url, &standby_url, &[]).await;
    let client = Client::new();
    let exported = || async { family_sum(&server.scrape().await, "connector_sync_runs_total") };
    wait_until(
        "the runs before the start exported",
        Duration::from_secs(30),
        async || exported().await == 3.0,
    )
    .await;

    // Replay paused: the primary goes on, the standby (and so syncwatch) does not see it.
    let primary_reads = table_reads(&primary_url).await;
    let standby_reads = table_reads(&standby_url).await;
    pause(&primary_url, &standby_url).await;
    finish_runs(&primary_url, 5).await;
    // Longer than the late-commit window, many scans: without the replay point, the
    // scanner would settle past these runs and never read them.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        terminal(&standby_url).await,
        3,
        "the standby's replay is paused"
    );
    assert_eq!(
        exported().await,
        3.0,
        "nothing the standby has not replayed"
    );
    let listed = get_json(&format!("{}/v1/sync-logs?limit=100", server.api)).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(3),
        "the API lists what the standby has: {listed}"
    );
    let lag = sample(&server.scrape().await, "syncwatch_read_replica_lag_seconds");
    assert!(lag.is_some_and(|lag| lag >= 2.0), "lag {lag:?}");

    // Replay resumed: each run counted once, and no more later.
    resume(&standby_url, &server, 8.0).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(exported().await, 8.0, "counted exactly once");
    assert_eq!(
        table_reads(&primary_url).await,
        primary_reads,
        "the primary served none of the scanner's or the API's reads"
    );
    assert_eq!(terminal(&primary_url).await, 8, "as the primary has them");
    assert!(
        table_reads(&standby_url).await > standby_reads,
        "the standby served them"
    );

    // Readiness says where the standby stands: lagging while paused, ok caught up.
    wait_until("caught up", Duration::from_secs(30), async || {
        readyz(&client, &server).await.0 == 200
    })
    .await;
    let (_, ready) = readyz(&client, &server).await;
    assert_eq!(ready["read_replica"], "ok", "{ready}");
    assert_eq!(ready["store"], "ok", "{ready}");
    pause(&primary_url, &standby_url).await;
    finish_runs(&primary_url, 1).await;
    wait_until("lagging", Duration::from_secs(30), async || {
        let (code, body) = readyz(&client, &server).await;
        code == 503 && body["read_replica"] == "lagging"
    })
    .await;
    resume(&standby_url, &server, 9.0).await;

    // The standby gone: not ready, and why.
    standby.stop_immediately();
    wait_until(
        "not ready without the standby",
        Duration::from_secs(30),
        async || {
            let (code, body) = readyz(&client, &server).await;
            code == 503 && body["read_replica"] == "unreachable"
        },
    )
    .await;
}

/// The flag is refused where it cannot apply, with the reason.
#[test]
fn a_read_url_must_name_a_postgres_standby_of_another_place() {
    for (primary, read, said) in [
        ("sqlite://x.db", "postgres://h/db", "postgres"),
        (
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@localhost:5432/db",
            "itself",
        ),
    ] {
        let output = std::process::Command::new(service_bin())
            .args([
                "check",
                "--database-url",
                primary,
                "--read-database-url",
                read,
            ])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.status.success(), "{primary} {read}");
        assert!(
            printed.contains("--read-database-url") && printed.contains(said),
            "{printed}"
        );
    }
}

/// With `--read-fallback-primary`, scans read the primary while the standby lags or is
/// down, and the standby again once it is back, each run counted once across the switches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_fall_back_to_the_primary_while_the_standby_lags_or_is_down() {
    let Some((primary, standby)) = primary_and_standby().await else {
        return;
    };
    let (primary_url, standby_url) = (primary.url(), standby.url());
    let server = serve(&primary_url, &standby_url, &["--read-fallback-primary"]).await;
    let state = || async {
        let text = server.scrape().await;
        let fallback = sample(&text, "syncwatch_read_fallback");
        (family_sum(&text, "connector_sync_runs_total"), fallback)
    };
    wait_until("reading the standby", Duration::from_secs(30), async || {
        state().await == (3.0, Some(0.0))
    })
    .await;
    // The standby paused: its lag passes --read-max-lag, and the scans read the primary.
    pause(&primary_url, &standby_url).await;
    finish_runs(&primary_url, 5).await;
    wait_until("reading the primary", Duration::from_secs(30), async || {
        state().await == (8.0, Some(1.0))
    })
    .await;
    // Back on the standby once it has caught up; the runs read on the primary are not
    // counted again when the standby replays them.
    execute(&standby_url, "select pg_wal_replay_resume()").await;
    wait_until("back on the standby", Duration::from_secs(30), async || {
        state().await.1 == Some(0.0)
    })
    .await;
    finish_runs(&primary_url, 2).await;
    wait_until("the new runs", Duration::from_secs(30), async || {
        state().await.0 == 10.0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(state().await, (10.0, Some(0.0)), "each run once");
    // The standby gone: the primary again, and the scans go on.
    standby.stop_immediately();
    finish_runs(&primary_url, 1).await;
    wait_until(
        "the primary without the standby",
        Duration::from_secs(30),
        async || state().await == (11.0, Some(1.0)),
    )
    .await;
    let text = server.scrape().await;
    assert_eq!(sample(&text, "syncwatch_up"), Some(1.0));
    assert_eq!(terminal(&primary_url).await, 11);
}
