//! `syncwatch-tools demo`: a simulated fleet of connectors writing runs through the store,
//! so every dashboard panel and alert has data to show. Deterministic for a given seed.
//!
//! When it stops (after `ticks`, or when the stop future resolves) the runs the fleet is
//! still running are finished as they would have been, so none is left behind to be
//! reported as stuck later. The runs it leaves stuck on purpose (see
//! [`DemoConfig::stuck_rate`]) stay as they are: they are the simulated stuck runs the
//! stuck-run panels and alerts show.

use std::future::Future;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use syncwatch::domain::{Action, NewSyncLog, Status, TriggerType};
use syncwatch::store::{Change, Created, Store};

/// The shape of the simulated fleet.
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
    /// or started and abandoned without heartbeats (a stuck in-progress run). These are
    /// left in the store when the demo stops.
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
    /// Runs finished successfully, those finished at stop included.
    pub succeeded: u64,
    /// Runs failed, those finished at stop included.
    pub failed: u64,
    /// Runs left stuck on purpose (scheduled and never started, or started and
    /// abandoned); they stay in the store after the demo stops.
    pub stuck: u64,
    /// Runs still running when the demo stopped, finished then (counted in `succeeded`
    /// or `failed`).
    pub finished_at_stop: u64,
}

impl DemoReport {
    /// The line `syncwatch-tools demo` ends with.
    pub fn summary(&self) -> String {
        format!(
            "demo: created {} runs, {} succeeded, {} failed, {} left stuck \
             ({} still running at stop were finished; the stuck ones are left on purpose, \
             as simulated stuck runs for the stuck-run panels and alerts)",
            self.created, self.succeeded, self.failed, self.stuck, self.finished_at_stop
        )
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

/// The fleet's state while it runs.
struct Fleet {
    store: Store,
    rng: StdRng,
    connections: Vec<Connection>,
    report: DemoReport,
}

/// Run the simulation until `ticks` are done or `stop` resolves, then finish the runs
/// still running (also when a store call failed on the way).
pub async fn run(
    store: Store,
    config: &DemoConfig,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<DemoReport> {
    let mut fleet = Fleet::new(store, config);
    let simulated = fleet.simulate(config, stop).await;
    let finished = fleet.finish_running().await;
    simulated?;
    finished?;
    Ok(fleet.report)
}

impl Fleet {
    fn new(store: Store, config: &DemoConfig) -> Self {
        let n = config.connectors.clamp(1, CONNECTORS.len());
        let mut connections = Vec::new();
        for (i, slug) in CONNECTORS.iter().take(n).enumerate() {
            let broken = i == n - 1 && n > 1;
            let failure_rate = if broken {
                0.8
            } else {
                (config.failure_rate * (1.0 + i as f64 / 2.0)).min(1.0)
            };
            for c in 0..config.connections_per_connector.max(1) {
                connections.push(Connection {
                    id: crate::stable_id(&format!("demo/{slug}/{c}")),
                    slug: (*slug).to_owned(),
                    failure_rate,
                    running: None,
                });
            }
        }
        Fleet {
            store,
            rng: StdRng::seed_from_u64(config.seed),
            connections,
            report: DemoReport::default(),
        }
    }

    async fn simulate(
        &mut self,
        config: &DemoConfig,
        stop: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut interval = tokio::time::interval(config.tick);
        tokio::pin!(stop);
        let mut tick: u64 = 0;
        loop {
            tokio::select! {
                () = &mut stop => return Ok(()),
                _ = interval.tick() => {}
            }
            tick += 1;
            for i in 0..self.connections.len() {
                self.step(config, i, tick).await?;
            }
            if config.ticks.is_some_and(|limit| tick >= limit) {
                return Ok(());
            }
        }
    }

    /// One tick of one connection: its run goes on or ends, or an idle connection may
    /// start a new one.
    async fn step(&mut self, config: &DemoConfig, i: usize, tick: u64) -> anyhow::Result<()> {
        let connection = &mut self.connections[i];
        if let Some(run) = connection.running.as_mut() {
            if tick < run.ends_at_tick {
                run.pages += 1 + below(&mut self.rng, 5);
                let change = Change {
                    metadata: Some(object(json!({"pages_fetched": run.pages}))),
                    ..Change::new(Action::Heartbeat)
                };
                self.store.runs().apply(run.id, &change).await?;
                return Ok(());
            }
        }
        if let Some(run) = &connection.running {
            finish(&self.store, &mut self.rng, &mut self.report, run).await?;
            connection.running = None;
            return Ok(());
        }
        // Idle: start a new run now and then.
        if !chance(&mut self.rng, 0.3) {
            return Ok(());
        }
        let trigger = match below(&mut self.rng, 10) {
            0 => TriggerType::Manual,
            1 => TriggerType::OauthCallback,
            _ => TriggerType::CloudTask,
        };
        let new = NewSyncLog {
            workspace_connector_id: connection.id.into(),
            connector_slug: connection.slug.clone(),
            trigger_type: Some(trigger),
            cloud_task_id: (trigger == TriggerType::CloudTask)
                .then(|| format!("projects/demo/queues/syncs/tasks/{}", Uuid::new_v4())),
            status: Status::Scheduled,
            metadata: Some(object(
                json!({"connector_slug": connection.slug, "demo": true}),
            )),
        };
        let row = match self.store.runs().create(&new).await? {
            Created::New(row) | Created::Existing(row) => row,
        };
        self.report.created += 1;
        let id = row.workspace_connector_sync_log_id;
        if chance(&mut self.rng, config.stuck_rate) {
            // Left as it is: never dispatched, or started and abandoned. Either shows up as
            // stuck once the thresholds pass; the connection moves on to new runs.
            if chance(&mut self.rng, 0.5) {
                self.store
                    .runs()
                    .apply(id, &Change::new(Action::Start))
                    .await?;
            }
            self.report.stuck += 1;
            return Ok(());
        }
        self.store
            .runs()
            .apply(id, &Change::new(Action::Start))
            .await?;
        let length = 1 + below(&mut self.rng, u64::from(config.max_run_ticks.max(1)));
        let length = if chance(&mut self.rng, config.slow_rate) {
            length * 10
        } else {
            length
        };
        connection.running = Some(Running {
            id,
            ends_at_tick: tick + length,
            fails: chance(&mut self.rng, connection.failure_rate),
            pages: 0,
        });
        Ok(())
    }

    /// Finish every run still running, as it would have ended. Tries them all and
    /// returns the first error.
    async fn finish_running(&mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        for connection in &mut self.connections {
            let Some(run) = connection.running.take() else {
                continue;
            };
            match finish(&self.store, &mut self.rng, &mut self.report, &run).await {
                Ok(()) => self.report.finished_at_stop += 1,
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Succeed or fail `run`, as it was drawn to end, and count it.
async fn finish(
    store: &Store,
    rng: &mut StdRng,
    report: &mut DemoReport,
    run: &Running,
) -> anyhow::Result<()> {
    let records = if run.fails {
        below(rng, 50)
    } else {
        100 + below(rng, 5000)
    };
    let error = run
        .fails
        .then(|| ERRORS[below(rng, ERRORS.len() as u64) as usize].to_owned());
    let action = if run.fails {
        Action::Fail
    } else {
        Action::Succeed
    };
    let change = Change {
        metadata: Some(object(json!({
            "records_synced": records,
            "pages_fetched": run.pages,
        }))),
        error,
        ..Change::new(action)
    };
    store.runs().apply(run.id, &change).await?;
    if run.fails {
        report.failed += 1;
    } else {
        report.succeeded += 1;
    }
    Ok(())
}

/// `true` with probability `p` (clamped to 0..=1).
fn chance(rng: &mut StdRng, p: f64) -> bool {
    rng.random_bool(p.clamp(0.0, 1.0))
}

/// Uniform in `0..n` (`0` when `n` is 0).
fn below(rng: &mut StdRng, n: u64) -> u64 {
    rng.random_range(0..n.max(1))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The connector slugs the fleet simulates (for the CLI's start-up line).
pub fn connectors(config: &DemoConfig) -> Vec<&'static str> {
    CONNECTORS
        .iter()
        .take(config.connectors.clamp(1, CONNECTORS.len()))
        .copied()
        .collect()
}
