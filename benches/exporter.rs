//! Side by side with the generic alternative: Debian's `prometheus-postgres-exporter`
//! running `benches/postgres-exporter/queries.yaml`, which computes the same series at
//! scrape time, against syncwatch, on the same seeded PostgreSQL database.
//!
//!     cargo bench --bench exporter -- [--rows 1000000] [--active 1000] [--scrapes 5]
//!
//! Both are scraped as Prometheus scrapes them, with `Accept-Encoding: gzip`. Prints, for
//! each: scrape latency (median, max), PostgreSQL CPU time per scrape (all
//! server processes, from /proc), and for syncwatch the startup build, the PostgreSQL
//! CPU per steady scan and the resident memory; then compares every series both export
//! (values must agree) and the ratio of scrape latencies. Needs
//! /usr/bin/prometheus-postgres-exporter (`apt-get install prometheus-postgres-exporter`).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::{arg, free_port, ms, postgres_ticks, process_ticks, rss_kib, serve, BenchDb, Child};

const EXPORTER: &str = "/usr/bin/prometheus-postgres-exporter";

type Series = BTreeMap<String, f64>;

/// `name{sorted labels without server}` → value, for the `connector_sync_` families.
fn parse(text: &str) -> Series {
    let mut out = Series::new();
    for line in text.lines() {
        if !line.starts_with("connector_sync_") {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut pairs: Vec<String> = labels
            .split("\",")
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                let v = v.trim_matches('"');
                match k {
                    "server" => None,
                    "le" => Some(format!(
                        "le={}",
                        v.parse::<f64>().map_or(v.to_owned(), |f| f.to_string())
                    )),
                    _ => Some(format!("{k}={v}")),
                }
            })
            .collect();
        pairs.sort();
        out.insert(format!("{name}{{{}}}", pairs.join(",")), value);
    }
    out
}

/// One scrape as Prometheus makes it (`Accept-Encoding: gzip`; both servers compress),
/// timed to the last byte; the text is decompressed afterwards, outside the timing.
async fn scrape(client: &reqwest::Client, url: &str) -> anyhow::Result<(Duration, u64, String)> {
    use std::io::Read;
    let ticks = postgres_ticks();
    let started = Instant::now();
    let response = client
        .get(url)
        .header("Accept-Encoding", "gzip")
        .send()
        .await?
        .error_for_status()?;
    let gzipped = response
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let body = response.bytes().await?;
    let took = started.elapsed();
    let ticks = postgres_ticks() - ticks;
    let mut text = String::new();
    if gzipped {
        flate2::read::MultiGzDecoder::new(&body[..]).read_to_string(&mut text)?;
    } else {
        text = String::from_utf8(body.to_vec())?;
    }
    Ok((took, ticks, text))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: u64 = arg("--rows").map_or(Ok(1_000_000), |s| s.parse())?;
    let active: u64 = arg("--active").map_or(Ok(1000), |s| s.parse())?;
    let scrapes: usize = arg("--scrapes").map_or(Ok(5), |s| s.parse())?;
    anyhow::ensure!(
        std::path::Path::new(EXPORTER).exists(),
        "{EXPORTER} is not installed"
    );
    let db = BenchDb::seeded(rows, active).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;

    // syncwatch: start, wait for the first (build) scan, then steady scans every 2 s.
    let (server, _api, metrics_url, startup) = serve(&db.url, &["--scan-interval", "2s"]).await?;
    let pid = server.0.id();
    // After the first scan: the scans that read each connection's latest runs for the
    // learned signals (a chunk of 2000 connections per scan, 10 scans here), then steady.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let (pg0, sw0) = (postgres_ticks(), process_ticks(pid));
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let scans = window.elapsed().as_secs_f64() / 2.0;
    let pg_per_scan = (postgres_ticks() - pg0) as f64 * 10.0 / scans;
    let sw_per_scan = (process_ticks(pid) - sw0) as f64 * 10.0 / scans;
    let mut sw_times = Vec::new();
    let mut sw_db = 0;
    let mut sw_text = String::new();
    for _ in 0..(scrapes * 4) {
        let (took, ticks, text) = scrape(&client, &metrics_url).await?;
        sw_times.push(took);
        sw_db += ticks;
        sw_text = text;
    }
    let (rss, peak) = rss_kib(pid);
    drop(server);

    // The exporter.
    let port = free_port();
    let queries = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/postgres-exporter/queries.yaml"
    );
    let mut dsn = url::Url::parse(&db.url)?;
    dsn.query_pairs_mut().append_pair("sslmode", "disable");
    let exporter = Child(
        std::process::Command::new(EXPORTER)
            .args(["--disable-default-metrics", "--disable-settings-metrics"])
            .arg(format!("--extend.query-path={queries}"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .env("DATA_SOURCE_NAME", dsn.as_str())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let exporter_url = format!("http://127.0.0.1:{port}/metrics");
    while client
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut pe_times = Vec::new();
    let mut pe_db = 0;
    let mut pe_text = String::new();
    for _ in 0..scrapes {
        let (took, ticks, text) = scrape(&client, &exporter_url).await?;
        pe_times.push(took);
        pe_db += ticks;
        pe_text = text;
    }
    let (pe_rss, _) = rss_kib(exporter.0.id());
    drop(exporter);

    // Do they agree?
    let (a, b) = (parse(&sw_text), parse(&pe_text));
    let mut compared = 0;
    let mut differ = Vec::new();
    for (key, x) in &a {
        if let Some(y) = b.get(key) {
            compared += 1;
            if (x - y).abs() > 1e-9 * x.abs().max(y.abs()).max(1.0) {
                differ.push(format!("{key}: syncwatch {x}, exporter {y}"));
            }
        }
    }
    let only_sw = a.keys().filter(|k| !b.contains_key(*k)).count();
    let only_pe = b.keys().filter(|k| !a.contains_key(*k)).count();

    sw_times.sort();
    pe_times.sort();
    let med = |t: &[Duration]| ms(t[t.len() / 2]);
    println!();
    println!("syncwatch vs prometheus-postgres-exporter, {rows} terminal + {active} active runs (PostgreSQL)");
    println!(
        "{:>26} {:>12} {:>12} {:>16} {:>10}",
        "", "scrape p50", "scrape max", "DB CPU / scrape", "RSS"
    );
    println!(
        "{:>26} {:>10.2}ms {:>10.2}ms {:>14.1}ms {:>7} MiB",
        "syncwatch",
        med(&sw_times),
        ms(*sw_times.last().unwrap()),
        sw_db as f64 * 10.0 / sw_times.len() as f64,
        rss / 1024
    );
    println!(
        "{:>26} {:>10.0}ms {:>10.0}ms {:>14.0}ms {:>7} MiB",
        "postgres-exporter",
        med(&pe_times),
        ms(*pe_times.last().unwrap()),
        pe_db as f64 * 10.0 / pe_times.len() as f64,
        pe_rss / 1024
    );
    println!(
        "scrape latency ratio (exporter / syncwatch, medians): {:.0}×",
        med(&pe_times) / med(&sw_times)
    );
    println!(
        "syncwatch: first scan (startup build) done {:.1} s after start; steady scan every 2 s costs \
         {pg_per_scan:.1} ms PostgreSQL CPU and {sw_per_scan:.1} ms syncwatch CPU; RSS {} MiB (peak {} MiB)",
        startup.as_secs_f64(),
        rss / 1024,
        peak / 1024
    );
    println!(
        "values: {compared} series compared, {} differ; {only_sw} only in syncwatch, {only_pe} only in the exporter",
        differ.len()
    );
    for d in differ.iter().take(10) {
        println!("  differs: {d}");
    }
    Ok(())
}
