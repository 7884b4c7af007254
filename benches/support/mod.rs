//! Shared by the benchmarks: seeded Postgres databases that are kept between runs,
//! command-line flags, medians.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use syncwatch::store::DatabaseUrl;
use syncwatch::store::{self, PoolOptions, Store};

#[path = "../../tests/suite/common/process.rs"]
mod process;

pub use process::{admin_url, free_port, ChildGuard as Child};

const SEED: &str = include_str!("../sql/seed.sql");
const SEED_ACTIVE: &str = include_str!("../sql/seed_active.sql");
pub const CONNECTORS: i64 = 500;
pub const CONNECTIONS: i64 = 20_000;

/// The value after `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn median_ms(samples: &[Duration]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    ms(sorted[sorted.len() / 2])
}

fn url_of(name: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
    url.set_path(name);
    url.to_string()
}

/// A database holding `rows` terminal and `active` active seeded runs.
pub struct BenchDb {
    pub name: String,
    pub url: String,
    pub rows: u64,
}

impl BenchDb {
    /// Reuse `syncwatch_bench_<rows>_<active>_<connections>` when it was seeded with these numbers (after
    /// applying any new migration), else create and seed it.
    pub async fn seeded(rows: u64, active: u64) -> anyhow::Result<Self> {
        let name = format!("syncwatch_bench_{rows}_{active}_{CONNECTIONS}");
        let db = BenchDb {
            url: url_of(&name),
            name,
            rows,
        };
        let mut admin = PgConnection::connect(&admin_url()).await?;
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
                .bind(&db.name)
                .fetch_one(&mut admin)
                .await?;
        if exists && db.marker().await? == Some((rows as i64, active as i64)) {
            db.store().await?.catalogue().migrate().await?;
            let mut conn = PgConnection::connect(&db.url).await?;
            sqlx::query("analyze workspace_connector_sync_log")
                .execute(&mut conn)
                .await?;
            eprintln!("{}: reusing the seeded database", db.name);
            return Ok(db);
        }
        sqlx::query(&format!("drop database if exists {} with (force)", db.name))
            .execute(&mut admin)
            .await?;
        sqlx::query(&format!("create database {}", db.name))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        db.store().await?.catalogue().migrate().await?;
        db.seed(rows, active).await?;
        Ok(db)
    }

    async fn marker(&self) -> anyhow::Result<Option<(i64, i64)>> {
        let mut conn = PgConnection::connect(&self.url).await?;
        let has: bool =
            sqlx::query_scalar("select to_regclass('syncwatch_bench_marker') is not null")
                .fetch_one(&mut conn)
                .await?;
        let marker = if has {
            sqlx::query_as("select rows, active from syncwatch_bench_marker")
                .fetch_optional(&mut conn)
                .await?
        } else {
            None
        };
        conn.close().await?;
        Ok(marker)
    }

    /// Seed with the secondary indexes dropped and rebuilt after (much faster than
    /// maintaining them row by row), then analyze.
    async fn seed(&self, rows: u64, active: u64) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.url).await?;
        let started = Instant::now();
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "select indexname::text, indexdef::text from pg_indexes \
             where tablename = 'workspace_connector_sync_log' \
               and not exists (select 1 from pg_constraint where conname = indexname)",
        )
        .fetch_all(&mut conn)
        .await?;
        for (index, _) in &indexes {
            sqlx::query(&format!("drop index {index}"))
                .execute(&mut conn)
                .await?;
        }
        sqlx::query("set maintenance_work_mem = '512MB'")
            .execute(&mut conn)
            .await?;
        let mut done = 0u64;
        while done < rows {
            // In chunks, so progress shows and no single transaction is huge.
            let chunk = (rows - done).min(1_000_000);
            let sql = SEED.replace(
                "generate_series(1::bigint, $1::bigint)",
                &format!(
                    "generate_series({}::bigint, {}::bigint)",
                    done + 1,
                    done + chunk
                ),
            );
            assert_ne!(sql, SEED, "seed.sql's series changed; update the chunking");
            sqlx::query(&sql)
                .bind(rows as i64)
                .bind(CONNECTORS)
                .bind(CONNECTIONS)
                .execute(&mut conn)
                .await?;
            done += chunk;
            eprintln!(
                "{}: {done} terminal rows ({:.0?})",
                self.name,
                started.elapsed()
            );
        }
        sqlx::query(SEED_ACTIVE)
            .bind(active as i64)
            .bind(CONNECTORS)
            .bind(CONNECTIONS)
            .execute(&mut conn)
            .await?;
        for (_, def) in &indexes {
            sqlx::query(def).execute(&mut conn).await?;
        }
        sqlx::query("vacuum analyze workspace_connector_sync_log")
            .execute(&mut conn)
            .await?;
        sqlx::query("create table syncwatch_bench_marker (rows bigint, active bigint)")
            .execute(&mut conn)
            .await?;
        sqlx::query("insert into syncwatch_bench_marker values ($1, $2)")
            .bind(rows as i64)
            .bind(active as i64)
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        eprintln!("{}: seeded in {:.1?}", self.name, started.elapsed());
        Ok(())
    }

    pub async fn store(&self) -> anyhow::Result<Store> {
        let url: DatabaseUrl = self.url.parse().map_err(anyhow::Error::msg)?;
        Ok(store::connect(&url, &PoolOptions::default(), &store::TableMap::default()).await?)
    }

    /// `n` runs of the connector `bench-live` that finish now, as steady traffic.
    pub async fn finish_live_runs(&self, n: i64) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.url).await?;
        sqlx::query(
            "insert into workspace_connector_sync_log \
               (workspace_connector_id, connector_slug, status, trigger_type, started_at, \
                completed_at, duration_ms, created_at, updated_at) \
             select gen_random_uuid(), 'bench-live', 'success', 'manual', \
                    now() - interval '1 second', now(), 1000, now() - interval '2 seconds', now() \
             from generate_series(1, $1)",
        )
        .bind(n)
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }

    /// Move the scanner's checkpoint `seconds` back, as if it had been saved that long ago.
    pub async fn age_checkpoint(&self, seconds: i64) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.url).await?;
        sqlx::query(
            "update syncwatch_scanner_checkpoint \
             set settled_upto = settled_upto - make_interval(secs => $1)",
        )
        .bind(seconds as f64)
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }

    pub async fn remove_live_runs(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.url).await?;
        sqlx::query("delete from workspace_connector_sync_log where connector_slug = 'bench-live'")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }

    pub async fn table_mb(&self) -> anyhow::Result<f64> {
        let mut conn = PgConnection::connect(&self.url).await?;
        let bytes: i64 =
            sqlx::query_scalar("select pg_total_relation_size('workspace_connector_sync_log')")
                .fetch_one(&mut conn)
                .await?;
        conn.close().await?;
        Ok(bytes as f64 / 1_048_576.0)
    }
}

/// CPU time (user + system, in clock ticks of 1/100 s) of one process.
pub fn process_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// CPU time of every PostgreSQL server process on this machine, in clock ticks: the
/// database's work, whoever asked for it.
pub fn postgres_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(process_ticks)
        .sum()
}

/// `VmRSS` and `VmHWM` (peak) of a process, KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `syncwatch serve` (the release binary) on `url`; returns once `/metrics` shows a
/// successful scan, with the time that took.
pub async fn serve(url: &str, extra: &[&str]) -> anyhow::Result<(Child, String, String, Duration)> {
    let (api, metrics) = (free_port(), free_port());
    let started = Instant::now();
    let child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_syncwatch"))
            .args(["serve", "--database-url", url])
            .args(["--listen", &format!("127.0.0.1:{api}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
            .args(extra)
            .env_remove("SYNCWATCH_API_TOKENS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let api = format!("http://127.0.0.1:{api}");
    let metrics = format!("http://127.0.0.1:{metrics}/metrics");
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(&metrics).send().await {
            if r.text().await?.lines().any(|l| l == "syncwatch_up 1") {
                break;
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "syncwatch never scanned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((child, api, metrics, started.elapsed()))
}

/// A new database `name` with nothing in it (an old one of the name is dropped); its URL.
pub async fn empty_db(name: &str) -> anyhow::Result<String> {
    let mut admin = PgConnection::connect(&admin_url()).await?;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("create database {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(url_of(name))
}

/// A fresh, migrated, empty database `name`.
pub async fn fresh_db(name: &str) -> anyhow::Result<String> {
    let url = empty_db(name).await?;
    let parsed: DatabaseUrl = url.parse().map_err(anyhow::Error::msg)?;
    store::connect(
        &parsed,
        &PoolOptions::default(),
        &store::TableMap::default(),
    )
    .await?
    .catalogue()
    .migrate()
    .await?;
    Ok(url)
}

/// Insert `rows` finished runs of `seed.sql` into the database at `url`, then analyze the
/// table, as autovacuum would have done on any database that has taken writes. (This
/// machine's cluster runs with autovacuum off: statements prepared while a table is empty
/// keep a plan made for an empty table until something analyzes it.)
pub async fn seed_history(url: &str, rows: u64) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query(SEED)
        .bind(rows as i64)
        .bind(CONNECTORS)
        .bind(CONNECTIONS)
        .execute(&mut conn)
        .await?;
    sqlx::query("analyze workspace_connector_sync_log")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
