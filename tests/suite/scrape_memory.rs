//! Scrapes share the snapshot's exposition (docs/metrics.md, "Scrapes"): fifty concurrent
//! scrapes without gzip of an exposition of several megabytes, left unread, add less than
//! twice its size to the process's resident memory, where a copy per scrape added fifty.

use crate::common;

use std::time::Duration;

use common::{family_sum, Backend, Server, TestDb};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Every connector under the default cap, each with runs of every trigger and outcome: the
/// label sets of a large fleet (about 90k series).
const SEED: &str = "
insert into workspace_connector_sync_log
  (workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status,
   trigger_type, started_at, completed_at, duration_ms, error, created_at, updated_at)
select gen_random_uuid(), gen_random_uuid(), 'connector_' || c, s::text,
       t, now() - interval '2 hours', now() - interval '1 hour', 3600000,
       case when s = 'error' then 'boom' end,
       now() - interval '2 hours', now() - interval '1 hour'
from generate_series(1, 499) c,
     unnest(array['success', 'error']) s,
     unnest(array['cloud_task', 'manual', 'oauth_callback']) t";

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb * 1024
}

#[tokio::test]
async fn concurrent_scrapes_without_gzip_share_one_copy_of_the_exposition() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    db.execute(SEED).await;
    let runs = db
        .scalar_i64("select count(*) from workspace_connector_sync_log")
        .await;
    // Scans far apart, so the measurement most likely sees one snapshot (a new one in
    // between adds its own encoding once, still under the bound).
    let server = Server::start(db.url.expose(), &["--scan-interval", "20s"]).await;
    common::wait_until(
        "the seeded runs exported",
        Duration::from_secs(60),
        async || family_sum(&server.scrape().await, "connector_sync_runs_total") == runs as f64,
    )
    .await;
    // A scrape without gzip first: the text of the snapshot is then kept, once.
    let size = server.scrape().await.len() as u64;
    assert!(size > 4_000_000, "a large exposition: {size} bytes");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_bytes(server.pid());

    let port = server.metrics.rsplit(':').next().unwrap().to_owned();
    let mut held = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    // Every response is under way (the server wrote what the sockets take, and holds the
    // rest), none read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = rss_bytes(server.pid());
    drop(held);
    let rise = during.saturating_sub(before);
    eprintln!("exposition {size} bytes; RSS {before} -> {during} with 50 unread scrapes (+{rise})");
    assert!(
        rise < 2 * size,
        "50 concurrent scrapes raised RSS by {rise} bytes, {:.1}x the {size}-byte exposition",
        rise as f64 / size as f64
    );
}
