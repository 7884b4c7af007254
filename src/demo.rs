//! `syncwatch demo`: a simulated fleet of connectors writing runs through the store, so
//! every dashboard panel and alert has data to show. Deterministic for a given seed.

use std::time::Duration;

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::domain::{Action, NewSyncLog, Status, TriggerType};
use crate::store::{Change, Created, Store};

#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub connectors: usize,
    pub connections_per_connector: usize,
    /// Base failure probability; connectors get multiples of it, and the last connector
    /// is broken (fails most runs) so failure alerts have something to page on.
    pub failure_rate: f64,
    /// Probability that a new run is slow (ten times longer).
    pub slow_rate: f64,
    /// Probability that a new run is enqueued and never dispatched (a stuck scheduled run),
    /// or started and abandoned without heartbeats (a stuck in-progress run).
    pub stuck_rate: f64,
    pub tick: Duration,
    /// Longest normal run, in ticks.
    pub max_run_ticks: u32,
    /// Stop after this many ticks (runs forever when unset).
    pub ticks: Option<u64>,
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            connectors: 8,
            connections_per_connector: 3,
            failure_rate: 0.05,
            slow_rate: 0.1,
            stuck_rate: 0.02,
            tick: Duration::from_secs(1),
            max_run_ticks: 20,
            ticks: None,
            seed: 42,
        }
    }
}

const CONNECTORS: &[&str] = &[
    "hubspot",
    "salesforce",
    "stripe",
    "zendesk",
    "intercom",
    "jira",
    "github",
    "shopify",
    "notion",
    "slack",
    "asana",
    "linear",
    "gong",
    "marketo",
    "netsuite",
    "quickbooks",
];

const ERRORS: &[&str] = &[
    "429 Too Many Requests from provider API",
    "OAuth token expired: refresh failed with invalid_grant",
    "upstream timeout after 30s",
    "schema changed: field 'amount' is now a string",
];

/// What the demo wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoReport {
    pub created: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub stuck: u64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Running {
    id: Uuid,
    ends_at_tick: u64,
    fails: bool,
    pages: u64,
}

struct Connection {
    id: Uuid,
    slug: String,
    failure_rate: f64,
    running: Option<Running>,
}

/// Run the simulation until `ticks` are done or `stop` resolves.
pub async fn run(
    store: Store,
    config: &DemoConfig,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<DemoReport> {
    let mut rng = Rng(config.seed.max(1));
    let n = config.connectors.clamp(1, CONNECTORS.len());
    let mut connections: Vec<Connection> = Vec::new();
    for (i, slug) in CONNECTORS.iter().take(n).enumerate() {
        let broken = i == n - 1 && n > 1;
        let failure_rate = if broken {
            0.8
        } else {
            (config.failure_rate * (1.0 + i as f64 / 2.0)).min(1.0)
        };
        for c in 0..config.connections_per_connector.max(1) {
            connections.push(Connection {
                id: Uuid::from_u64_pair(i as u64 + 1, c as u64 + 1),
                slug: (*slug).to_owned(),
                failure_rate,
                running: None,
            });
        }
    }
    let mut report = DemoReport::default();
    let mut interval = tokio::time::interval(config.tick);
    tokio::pin!(stop);
    let mut tick: u64 = 0;
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = interval.tick() => {}
        }
        tick += 1;
        for connection in connections.iter_mut() {
            step(&store, config, &mut rng, connection, tick, &mut report).await?;
        }
        if config.ticks.is_some_and(|limit| tick >= limit) {
            break;
        }
    }
    Ok(report)
}

async fn step(
    store: &Store,
    config: &DemoConfig,
    rng: &mut Rng,
    connection: &mut Connection,
    tick: u64,
    report: &mut DemoReport,
) -> anyhow::Result<()> {
    if let Some(run) = connection.running.as_mut() {
        if tick < run.ends_at_tick {
            run.pages += 1 + rng.below(5);
            let mut change = Change::new(Action::Heartbeat);
            change.metadata = Some(object(json!({"pages_fetched": run.pages})));
            store.apply(run.id, &change).await?;
            return Ok(());
        }
        let mut change = if run.fails {
            Change {
                error: Some(ERRORS[rng.below(ERRORS.len() as u64) as usize].to_owned()),
                ..Change::new(Action::Fail)
            }
        } else {
            Change::new(Action::Succeed)
        };
        change.metadata = Some(object(json!({
            "records_synced": if run.fails { rng.below(50) } else { 100 + rng.below(5000) },
            "pages_fetched": run.pages,
        })));
        store.apply(run.id, &change).await?;
        if run.fails {
            report.failed += 1;
        } else {
            report.succeeded += 1;
        }
        connection.running = None;
        return Ok(());
    }
    // Idle: start a new run now and then.
    if !rng.chance(0.3) {
        return Ok(());
    }
    let trigger = match rng.below(10) {
        0 => TriggerType::Manual,
        1 => TriggerType::OauthCallback,
        _ => TriggerType::CloudTask,
    };
    let new = NewSyncLog {
        workspace_connector_id: connection.id,
        connector_slug: connection.slug.clone(),
        trigger_type: Some(trigger),
        cloud_task_id: (trigger == TriggerType::CloudTask)
            .then(|| format!("projects/demo/queues/syncs/tasks/{}", Uuid::new_v4())),
        status: Status::Scheduled,
        metadata: Some(object(
            json!({"connector_slug": connection.slug, "demo": true}),
        )),
    };
    let row = match store.create(&new).await? {
        Created::New(row) | Created::Existing(row) => row,
    };
    report.created += 1;
    let id = row.workspace_connector_sync_log_id;
    if rng.chance(config.stuck_rate) {
        // Left as it is: never dispatched, or started and abandoned. Either shows up as
        // stuck once the thresholds pass; the connection moves on to new runs.
        if rng.chance(0.5) {
            store.apply(id, &Change::new(Action::Start)).await?;
        }
        report.stuck += 1;
        return Ok(());
    }
    store.apply(id, &Change::new(Action::Start)).await?;
    let length = 1 + rng.below(u64::from(config.max_run_ticks.max(1)));
    let length = if rng.chance(config.slow_rate) {
        length * 10
    } else {
        length
    };
    connection.running = Some(Running {
        id,
        ends_at_tick: tick + length,
        fails: rng.chance(connection.failure_rate),
        pages: 0,
    });
    Ok(())
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Counts for the report line, by connector (for the CLI's summary).
pub fn connectors(config: &DemoConfig) -> Vec<&'static str> {
    CONNECTORS
        .iter()
        .take(config.connectors.clamp(1, CONNECTORS.len()))
        .copied()
        .collect()
}
