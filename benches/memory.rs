//! Resident memory of `syncwatch serve` in steady state, for this build and, given
//! `--baseline PATH[,PATH…]`, other builds of the binary, side by side in one run: each started
//! on the scan bench's seeded database (`--rows` terminal runs, `--active` live runs, 500
//! connectors, 20,000 connections), left to finish its first scans and the scans that read
//! each connection's latest runs (`--settle` seconds, scanning every 2 s), scraped a few
//! times (with gzip, as Prometheus does), then its `VmRSS` and `VmHWM` read. The binaries
//! take turns, `--rounds` times, so both see the same machine.
//!
//!     cargo bench --bench memory -- [--rows 100000] [--active 10000] [--baseline PATH]

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use support::{arg, free_port, rss_kib, BenchDb, Child};

async fn measure(bin: &str, url: &str, settle: u64) -> anyhow::Result<(u64, u64)> {
    let (api, metrics) = (free_port(), free_port());
    let child = Child(
        std::process::Command::new(bin)
            .args(["serve", "--database-url", url, "--scan-interval", "2s"])
            .args(["--listen", &format!("127.0.0.1:{api}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
            .env_remove("SYNCWATCH_API_TOKENS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let client = reqwest::Client::new();
    let scrape = format!("http://127.0.0.1:{metrics}/metrics");
    let started = std::time::Instant::now();
    loop {
        // With gzip, as Prometheus scrapes: a scrape without it makes syncwatch keep the
        // text encoding too.
        let response = client
            .get(&scrape)
            .header("accept-encoding", "gzip")
            .send()
            .await;
        if let Ok(r) = response {
            let mut text = String::new();
            let body = r.bytes().await?;
            std::io::Read::read_to_string(
                &mut flate2::read::MultiGzDecoder::new(&body[..]),
                &mut text,
            )?;
            if text.lines().any(|l| l == "syncwatch_up 1") {
                break;
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "{bin} never scanned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(settle)).await;
    for _ in 0..5 {
        client
            .get(&scrape)
            .header("accept-encoding", "gzip")
            .send()
            .await?
            .bytes()
            .await?;
    }
    let (rss, peak) = rss_kib(child.0.id());
    drop(child);
    Ok((rss, peak))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: u64 = arg("--rows").map_or(Ok(100_000), |s| s.parse())?;
    let active: u64 = arg("--active").map_or(Ok(10_000), |s| s.parse())?;
    let settle: u64 = arg("--settle").map_or(Ok(40), |s| s.parse())?;
    let rounds: usize = arg("--rounds").map_or(Ok(2), |s| s.parse())?;
    let db = BenchDb::seeded(rows, active).await?;
    let mut builds = vec![(
        "this build".to_owned(),
        env!("CARGO_BIN_EXE_syncwatch").to_owned(),
    )];
    for path in arg("--baseline").iter().flat_map(|p| p.split(',')) {
        builds.push((format!("baseline {path}"), path.to_owned()));
    }
    let mut results: Vec<Vec<(u64, u64)>> = vec![Vec::new(); builds.len()];
    for _ in 0..rounds {
        for (i, (_, bin)) in builds.iter().enumerate() {
            results[i].push(measure(bin, &db.url, settle).await?);
        }
    }
    println!("\nresident memory at {rows} terminal runs, {active} active, {rounds} rounds");
    println!("| build | RSS MiB (each round) | peak MiB (each round) |\n|---|---|---|");
    for (i, (name, _)) in builds.iter().enumerate() {
        let fmt = |f: fn(&(u64, u64)) -> u64| {
            results[i]
                .iter()
                .map(|r| format!("{:.1}", f(r) as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("| {name} | {} | {} |", fmt(|r| r.0), fmt(|r| r.1));
    }
    Ok(())
}
