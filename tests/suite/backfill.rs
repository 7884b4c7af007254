//! A backfill: 200,000 runs written in one statement share one `completed_at`. Read by
//! (completion time, internal key) in bounded steps (docs/metrics.md, "Cost of a scan"),
//! under a 1 s statement timeout: the build splits the instant into chunks, a steady scan
//! reads it in pages, no scan fails, the totals equal SQL, and the window holds a key's
//! hash per run rather than the run, so memory stays near its steady level.

use crate::common;

use std::time::{Duration, Instant};

use common::{family_sum, sample, Server, TestDb};

const RUNS: i64 = 200_000;

/// `RUNS` successful runs of 200 connections completed at `at` (an SQL expression), in one
/// statement.
fn backfill(at: &str) -> String {
    format!(
        "insert into workspace_connector_sync_log
           (workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status,
            trigger_type, started_at, completed_at, duration_ms, created_at, updated_at)
         select gen_random_uuid(), lpad(to_hex(g % 200), 32, '0')::uuid, 'c' || (g % 20),
                'success', 'manual',
                ts - interval '1 minute', ts, 60000, ts - interval '1 minute', ts
         from generate_series(1, {RUNS}) g, (select {at} as ts) t"
    )
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_sharing_one_completion_time_is_read_in_bounded_steps() {
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    // The history: one instant an hour ago, for the build.
    db.execute(&backfill("now() - interval '1 hour'")).await;
    db.execute("analyze workspace_connector_sync_log").await;
    let flags = [
        "--scan-interval",
        "500ms",
        "--scan-statement-timeout",
        "1s",
        "--scan-chunk-rows",
        "50000",
        "--late-commit-window",
        "20s",
    ];
    let server = Server::start(db.url.expose(), &flags).await;
    let exported = async || family_sum(&server.scrape().await, "connector_sync_runs_total");
    common::wait_until(
        "the build over one instant",
        Duration::from_secs(180),
        async || exported().await == RUNS as f64,
    )
    .await;
    // The steady level: the most over a few scans after the build.
    let mut steady = 0;
    for _ in 0..10 {
        steady = steady.max(rss_bytes(server.pid()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let errors_before =
        sample(&server.scrape().await, "syncwatch_scan_errors_total").unwrap_or(0.0);

    // The same again, completed now: inside the window, read by every scan until it passes.
    db.execute(&backfill("now()")).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut peak = steady;
    let mut counted_at = None;
    loop {
        peak = peak.max(rss_bytes(server.pid()));
        let text = server.scrape().await;
        let total = family_sum(&text, "connector_sync_runs_total");
        assert!(total <= 2.0 * RUNS as f64, "counted {total}");
        if total == 2.0 * RUNS as f64 && counted_at.is_none() {
            counted_at = Some(Instant::now());
        }
        // Counted, then read again by every scan until the window (20 s) has passed.
        if counted_at.is_some_and(|at| at.elapsed() > Duration::from_secs(25)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backfill in the window was not counted: {total} of {}\n{}",
            2 * RUNS,
            server.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = server.scrape().await;
    let sql = db
        .scalar_i64(
            "select count(*) from workspace_connector_sync_log where completed_at is not null",
        )
        .await;
    assert_eq!(family_sum(&text, "connector_sync_runs_total"), sql as f64);
    assert_eq!(
        sample(&text, "syncwatch_scan_errors_total").unwrap_or(0.0),
        errors_before,
        "no scan failed: every statement was bounded\n{}",
        server.stderr_tail()
    );
    assert_eq!(sample(&text, "syncwatch_up"), Some(1.0));
    let ratio = peak as f64 / steady as f64;
    eprintln!(
        "RSS steady {} MiB, peak {} MiB with {RUNS} runs in the window ({ratio:.2}x)",
        steady >> 20,
        peak >> 20
    );
    // The window holds 24 bytes a run (5 MiB here) and a page of 2000 runs; the rest is the
    // allocator's (glibc's arenas on this debug build: 1.4-1.6x measured). A copy of every
    // run, as the window held before, is several times the steady level.
    assert!(
        ratio <= 2.0,
        "RSS rose from {steady} to {peak} bytes ({ratio:.2}x) while the backfill was in the window"
    );
}
