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

/// What one start of a binary measured.
#[derive(Clone, Copy)]
struct Measured {
    rss: u64,
    peak: u64,
    /// The part of `rss` that is the mapped binary and libraries (`RssFile`).
    file: u64,
    /// Median of `syncwatch_last_scan_duration_seconds` over the second half of the settle
    /// time (the steady scans), ms.
    scan_ms: f64,
}

/// One gzip scrape, decompressed.
async fn scrape_text(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let body = client
        .get(url)
        .header("accept-encoding", "gzip")
        .send()
        .await?
        .bytes()
        .await?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&body[..]), &mut text)?;
    Ok(text)
}

async fn measure(bin: &str, url: &str, settle: u64) -> anyhow::Result<Measured> {
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
    // Steady scans: the last scan's duration, read every second of the second half.
    tokio::time::sleep(Duration::from_secs(settle / 2)).await;
    let mut scans = Vec::new();
    for _ in 0..(settle - settle / 2) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let text = scrape_text(&client, &scrape).await?;
        let last = text
            .lines()
            .find_map(|l| l.strip_prefix("syncwatch_last_scan_duration_seconds "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        scans.extend(last.map(|s| s * 1000.0));
    }
    for _ in 0..5 {
        scrape_text(&client, &scrape).await?;
    }
    let (rss, peak) = rss_kib(child.0.id());
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.0.id()))?;
    let file = status
        .lines()
        .find_map(|l| l.strip_prefix("RssFile:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    drop(child);
    scans.sort_by(f64::total_cmp);
    let scan_ms = scans.get(scans.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(Measured {
        rss,
        peak,
        file,
        scan_ms,
    })
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
    let mut results: Vec<Vec<Measured>> = vec![Vec::new(); builds.len()];
    for _ in 0..rounds {
        for (i, (_, bin)) in builds.iter().enumerate() {
            results[i].push(measure(bin, &db.url, settle).await?);
        }
    }
    println!("\nresident memory at {rows} terminal runs, {active} active, {rounds} rounds");
    println!(
        "| build | RSS MiB (each round) | peak MiB | of which mapped files MiB | steady scan ms (median) |\n|---|---|---|---|---|"
    );
    fn mib(kib: u64) -> f64 {
        kib as f64 / 1024.0
    }
    for (i, (name, _)) in builds.iter().enumerate() {
        let fmt = |f: fn(&Measured) -> f64| {
            results[i]
                .iter()
                .map(|r| format!("{:.1}", f(r)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {name} | {} | {} | {} | {} |",
            fmt(|r| mib(r.rss)),
            fmt(|r| mib(r.peak)),
            fmt(|r| mib(r.file)),
            fmt(|r| r.scan_ms)
        );
    }
    Ok(())
}
