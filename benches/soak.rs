//! The soak: an orchestrator-like writer on the ORM's table (`tests/sql/orm_schema.sql`)
//! keeps creating and finishing runs, reopening and completing some again, backfilling
//! thousands with one `completed_at`, and renaming connectors in the lookup table, while two
//! `serve --observe-only` replicas are restarted, killed and stopped (`SIGSTOP`, a hung
//! leader) in turn. At the end every exported total equals SQL under the counting rule
//! (docs/metrics.md, "The counting rule": each completion once, so the terminal rows as
//! they are now plus the completions reopened runs had before, which the writer keeps),
//! and the leader's resident memory is compared between the first and the last third of
//! the run. Runs are reopened only once their completion has left the late-commit window:
//! within it, the rule counts a row once however often it completes.
//!
//! `cargo bench --bench soak -- --minutes 30` (PostgreSQL at `TEST_DATABASE_URL`; the
//! database `syncwatch_soak` is made anew). `--chaos-every 120` sets the seconds between
//! two disruptions, `--seed 1` the writer's random choices. Exits non-zero when a number differs or memory grew.

mod support;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sqlx::{Connection, PgConnection};
use support::{arg, rss_kib, Child};

const SCHEMA: &str = include_str!("../tests/sql/orm_schema.sql");
const CONNECTORS: i64 = 5;
const CONNECTIONS: i64 = 50;

const FLAGS: &[&str] = &[
    "--observe-only",
    "--connector-from",
    "lookup:workspace_connector.connector_slug",
    "--connection-id-from",
    "lookup:workspace_connector.workspace_connector_id",
    "--scan-interval",
    "1s",
    "--checkpoint-interval",
    "5s",
    "--late-commit-window",
    "10s",
    "--repair-interval",
    "30s",
    "--lease-timeout",
    "5s",
];

/// One `serve` replica.
struct Replica {
    child: Child,
    metrics: String,
}

impl Replica {
    async fn start(url: &str) -> anyhow::Result<Self> {
        let (child, _, metrics, _) = support::serve(url, FLAGS).await?;
        Ok(Replica { child, metrics })
    }

    fn pid(&self) -> u32 {
        self.child.0.id()
    }

    async fn scrape(&self) -> Option<String> {
        let client = reqwest::Client::new();
        let answer = client
            .get(&self.metrics)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        answer.text().await.ok()
    }

    async fn leads(&self) -> bool {
        self.scrape()
            .await
            .is_some_and(|t| t.lines().any(|l| l == "syncwatch_scanner_leader 1"))
    }

    fn signal(&self, which: &str) {
        let _ = std::process::Command::new("kill")
            .args([which, &self.pid().to_string()])
            .status();
    }
}

/// The sum of a family's samples, by the value of `label` (all when `None`).
fn sums(text: &str, family: &str, label: Option<&str>) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(family) else {
            continue;
        };
        if !rest.starts_with('{') && !rest.starts_with(' ') {
            continue;
        }
        let Some((labels, value)) = rest.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let key = label
            .and_then(|l| {
                let start = labels.find(&format!("{l}=\""))? + l.len() + 2;
                Some(labels[start..].split('"').next()?.to_owned())
            })
            .unwrap_or_default();
        *out.entry(key).or_default() += value;
    }
    out
}

/// What the writer did that SQL over the table cannot tell: the completions a reopened run
/// had before (by status), which the table no longer shows.
#[derive(Default)]
struct Done {
    runs: u64,
    recompleted: u64,
    earlier: std::collections::BTreeMap<String, f64>,
    recompleted_records: f64,
    backfilled: u64,
    renames: u64,
}

async fn write(url: String, until: Instant, seed: u64) -> anyhow::Result<Done> {
    let mut conn = PgConnection::connect(&url).await?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut done = Done::default();
    let mut tick: u64 = 0;
    while Instant::now() < until {
        tick += 1;
        let connection = rng.random_range(1..=CONNECTIONS) as i32;
        let failed = rng.random_range(0..5) == 0;
        let records = rng.random_range(0..1000_i32);
        let id: i32 = sqlx::query_scalar(
            "insert into workspace_connector_sync_log (workspace_connector_id, trigger_type, \
               status, started_at, created_at, updated_at) \
             values ($1, 'cloud_task', 'in_progress', now(), now() - interval '2 seconds', now()) \
             returning id",
        )
        .bind(connection)
        .fetch_one(&mut conn)
        .await?;
        sqlx::query(
            "update workspace_connector_sync_log set status = $2::sync_status, \
               completed_at = now(), duration_ms = 1500, \
               error = case when $2::text = 'error' then 'HTTP 503 Service Unavailable' end, \
               metadata = jsonb_build_object('records_synced', $3::int), updated_at = now() \
             where id = $1",
        )
        .bind(id)
        .bind(if failed { "error" } else { "success" })
        .bind(records)
        .execute(&mut conn)
        .await?;
        done.runs += 1;
        if tick.is_multiple_of(400) {
            // Three runs finished well before the window (so their completion was counted
            // and has left it) reopened, then completed again: three more completions. The
            // table then shows only the last; what it was before is kept here.
            let reopened: Vec<(i32, String, Option<f64>)> = sqlx::query_as(
                "update workspace_connector_sync_log t set status = 'in_progress', \
                   completed_at = null, duration_ms = null, error = null, updated_at = now() \
                 from (select id, status::text as before from workspace_connector_sync_log \
                   where completed_at < now() - interval '30 seconds' \
                   order by random() limit 3 for update) o \
                 where t.id = o.id \
                 returning t.id, o.before, (t.metadata ->> 'records_synced')::float8",
            )
            .fetch_all(&mut conn)
            .await?;
            for (_, before, _) in &reopened {
                *done.earlier.entry(before.clone()).or_default() += 1.0;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let ids: Vec<i32> = reopened.iter().map(|(id, _, _)| *id).collect();
            sqlx::query(
                "update workspace_connector_sync_log set status = 'success', \
                   completed_at = now(), duration_ms = 900, updated_at = now() \
                 where id = any($1)",
            )
            .bind(&ids)
            .execute(&mut conn)
            .await?;
            done.recompleted += ids.len() as u64;
            done.recompleted_records += reopened.iter().filter_map(|(_, _, r)| *r).sum::<f64>();
        }
        if tick.is_multiple_of(2500) {
            // A backfill: thousands of runs with one completion time.
            let n: u64 = sqlx::query_scalar::<_, i64>(
                "with inserted as (insert into workspace_connector_sync_log \
                   (workspace_connector_id, trigger_type, status, started_at, completed_at, \
                    duration_ms, metadata, created_at, updated_at) \
                 select 1 + g % $1, 'manual', 'success', t - interval '1 minute', t, 60000, \
                   jsonb_build_object('records_synced', 1), t - interval '1 minute', t \
                 from generate_series(1, 5000) g, (select now() as t) n returning 1) \
                 select count(*) from inserted",
            )
            .bind(CONNECTIONS as i32)
            .fetch_one(&mut conn)
            .await? as u64;
            done.backfilled += n;
        }
        if tick.is_multiple_of(3000) {
            // A connector renamed in the lookup table.
            done.renames += 1;
            sqlx::query(
                "update workspace_connector set connector_slug = \
                   regexp_replace(connector_slug, '_v[0-9]+$', '') || '_v' || $1 \
                 where connector_slug like $2",
            )
            .bind(done.renames as i64)
            .bind(format!("c{}%", done.renames as i64 % CONNECTORS))
            .execute(&mut conn)
            .await?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.close().await?;
    Ok(done)
}

fn median(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let minutes: u64 = arg("--minutes").map_or(Ok(30), |m| m.parse())?;
    let chaos_every = Duration::from_secs(arg("--chaos-every").map_or(Ok(120), |s| s.parse())?);
    let name = "syncwatch_soak";
    let url = support::empty_db(name).await?;
    let mut conn = PgConnection::connect(&url).await?;
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await?;
    sqlx::query(
        "insert into workspace_connector (connector_slug) \
         select 'c' || (g % $1) from generate_series(0, $2 - 1) g",
    )
    .bind(CONNECTORS as i32)
    .bind(CONNECTIONS as i32)
    .execute(&mut conn)
    .await?;
    sqlx::query("create index on workspace_connector_sync_log (completed_at, id) where completed_at is not null")
        .execute(&mut conn)
        .await?;

    let started = Instant::now();
    let until = started + Duration::from_secs(minutes * 60);
    println!("soak: {minutes} min, a disruption every {chaos_every:?}, database {name}");
    let seed: u64 = arg("--seed").map_or(Ok(1), |s| s.parse())?;
    let writer = tokio::spawn(write(url.clone(), until, seed));
    let mut replicas = vec![Replica::start(&url).await?, Replica::start(&url).await?];
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut takeovers: Vec<Duration> = Vec::new();
    let mut disruptions = 0;
    let mut next_chaos = Instant::now() + chaos_every;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut leader = None;
        for (i, r) in replicas.iter().enumerate() {
            if r.leads().await {
                leader = Some(i);
            }
        }
        if let Some(i) = leader {
            samples.push((started.elapsed(), rss_kib(replicas[i].pid()).0));
        }
        if Instant::now() < next_chaos {
            continue;
        }
        next_chaos = Instant::now() + chaos_every;
        let Some(i) = leader else { continue };
        let other = 1 - i;
        disruptions += 1;
        match disruptions % 3 {
            // A hung leader: stopped with its sessions open, resumed later.
            0 => {
                replicas[i].signal("-STOP");
                let stopped = Instant::now();
                while !replicas[other].leads().await {
                    anyhow::ensure!(
                        stopped.elapsed() < Duration::from_secs(60),
                        "no takeover of a stopped leader in 60 s"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                takeovers.push(stopped.elapsed());
                println!(
                    "soak: {:?} leader stopped, taken over in {:?}",
                    started.elapsed(),
                    stopped.elapsed()
                );
                tokio::time::sleep(Duration::from_secs(10)).await;
                replicas[i].signal("-CONT");
            }
            // A restart (SIGTERM), and a crash (SIGKILL).
            n => {
                replicas[i].signal(if n == 1 { "-TERM" } else { "-KILL" });
                let _ = replicas[i].child.0.wait();
                replicas[i] = Replica::start(&url).await?;
                println!(
                    "soak: {:?} leader {}",
                    started.elapsed(),
                    if n == 1 {
                        "restarted"
                    } else {
                        "killed and started again"
                    }
                );
            }
        }
    }
    let done = writer.await??;
    // The window (10 s) passes, a sweep (30 s) runs.
    tokio::time::sleep(Duration::from_secs(45)).await;
    let mut text = None;
    for r in &replicas {
        if r.leads().await {
            text = r.scrape().await;
        }
    }
    let text = text.ok_or_else(|| anyhow::anyhow!("no replica leads at the end"))?;
    let rows: Vec<(String, f64, f64)> = sqlx::query_as(
        "select status::text, count(*)::float8, coalesce(sum((metadata ->> 'records_synced')::float8), 0) \
         from workspace_connector_sync_log where completed_at is not null group by 1",
    )
    .fetch_all(&mut conn)
    .await?;
    let sql_status: std::collections::BTreeMap<String, f64> =
        rows.iter().map(|(s, n, _)| (s.clone(), *n)).collect();
    let sql_records: f64 = rows.iter().map(|(_, _, r)| r).sum();
    // Each terminal row once (as it is now), and each completion a reopened run had before.
    let mut expected = sql_status.clone();
    for (status, n) in &done.earlier {
        *expected.entry(status.clone()).or_default() += n;
    }
    let exported = sums(&text, "connector_sync_runs_total", Some("status"));
    let exported: std::collections::BTreeMap<String, f64> =
        exported.into_iter().filter(|(_, v)| *v > 0.0).collect();
    let records = sums(&text, "connector_sync_records_synced_total", None)
        .values()
        .sum::<f64>();
    let expected_records = sql_records + done.recompleted_records;
    let third = samples.len() / 3;
    let first = median(samples[..third].iter().map(|s| s.1).collect());
    let last = median(
        samples[samples.len() - third..]
            .iter()
            .map(|s| s.1)
            .collect(),
    );
    println!(
        "soak: {} runs written, {} completed again, {} backfilled in one instant each 5000, \
         {} renames, {disruptions} disruptions",
        done.runs, done.recompleted, done.backfilled, done.renames
    );
    println!("soak: runs by status exported {exported:?}, SQL under the rule {expected:?}");
    println!("soak: records exported {records}, SQL under the rule {expected_records}");
    println!(
        "soak: takeovers of a stopped leader {:?}",
        takeovers
            .iter()
            .map(|d| format!("{:.1}s", d.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    println!(
        "soak: leader RSS median first third {} MiB, last third {} MiB ({:.2}x); {} samples",
        first / 1024,
        last / 1024,
        last as f64 / first.max(1) as f64,
        samples.len()
    );
    anyhow::ensure!(
        exported == expected,
        "the runs differ from SQL under the rule"
    );
    anyhow::ensure!(
        (records - expected_records).abs() < 1e-6 * expected_records.max(1.0),
        "the records differ from SQL under the rule"
    );
    anyhow::ensure!(
        last as f64 <= 1.5 * first as f64,
        "the leader's memory grew"
    );
    println!("soak: every number equals SQL under the rule");
    drop(replicas);
    conn.close().await?;
    Ok(())
}
