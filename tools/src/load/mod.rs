//! `syncwatch-tools load`: concurrent orchestrator clients driving full run lifecycles
//! against the API (or, for comparison, the same store calls made directly), then checking
//! that nothing was lost.
//!
//! Every client loops over lifecycles until the deadline: create (some as two concurrent
//! deliveries of one Cloud Tasks id), start, heartbeats, then succeed or fail (some as two
//! concurrent finishers). Each acknowledged step is remembered, so afterwards
//! [`verify`] can check the store holds every acknowledged write, and the protocol's
//! promises are checked as the load runs: one `201` per duplicate create, exactly one
//! winner per duplicate finish, no `5xx`.

mod http;
mod metrics;
mod report;
mod target;
mod verify;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use syncwatch::domain::{Action, NewSyncLog, Status, TriggerType};

pub use metrics::{runs_total_from_exposition, wait_for_metrics};
pub use report::{quantile_us, Acked, LoadReport, Stage};
pub use target::Target;
pub use verify::{verify, Verification};

use target::Answer;

/// The shape of a load: how many clients, for how long, and which protocol corners each
/// lifecycle exercises.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub clients: usize,
    pub duration: Duration,
    pub heartbeats: u32,
    /// Distinct connector slugs the runs spread over.
    pub connectors: usize,
    /// Connections per connector.
    pub connections_per_connector: usize,
    /// Every n-th lifecycle of a client fails (0: none).
    pub fail_every: u64,
    /// Every n-th lifecycle is created by two concurrent deliveries of one Cloud Tasks id.
    pub duplicate_create_every: u64,
    /// Every n-th lifecycle is finished by two concurrent finishers.
    pub duplicate_finish_every: u64,
    /// Prefix of the connector slugs, so a run's rows can be told apart.
    pub slug_prefix: String,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            clients: 8,
            duration: Duration::from_secs(10),
            heartbeats: 2,
            connectors: 8,
            connections_per_connector: 4,
            fail_every: 5,
            duplicate_create_every: 7,
            duplicate_finish_every: 11,
            slug_prefix: format!("load-{}", &Uuid::new_v4().simple().to_string()[..8]),
        }
    }
}

impl LoadConfig {
    pub fn connector(&self, n: usize) -> String {
        format!("{}-{:03}", self.slug_prefix, n % self.connectors.max(1))
    }

    pub fn connectors(&self) -> Vec<String> {
        (0..self.connectors.max(1))
            .map(|n| self.connector(n))
            .collect()
    }
}

/// Run the load until `duration` has passed or `stop` resolves; every client finishes the
/// lifecycle it is in (unless the target stops answering).
pub async fn run(
    target: &Target,
    config: &LoadConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> LoadReport {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopper = tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let started = Instant::now();
    let deadline = started + config.duration;
    let config = Arc::new(config.clone());
    let mut tasks = Vec::new();
    for client in 0..config.clients.max(1) {
        let target = target.clone();
        let config = config.clone();
        let stop_rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            client_loop(&target, &config, client, deadline, stop_rx).await
        }));
    }
    let mut report = LoadReport {
        target: target.name(),
        ..LoadReport::default()
    };
    for task in tasks {
        match task.await {
            Ok(part) => report.merge(part),
            Err(e) => report.violation(format!("a client task panicked: {e}")),
        }
    }
    report.elapsed = started.elapsed();
    stopper.abort();
    report
}

async fn client_loop(
    target: &Target,
    config: &LoadConfig,
    client: usize,
    deadline: Instant,
    stop: tokio::sync::watch::Receiver<bool>,
) -> LoadReport {
    let mut report = LoadReport::default();
    let mut n: u64 = 0;
    while Instant::now() < deadline && !*stop.borrow() {
        n += 1;
        if !lifecycle(target, config, client, n, &mut report).await {
            break;
        }
    }
    report
}

/// One run from create to finish. `false` when the target stopped answering.
async fn lifecycle(
    target: &Target,
    config: &LoadConfig,
    client: usize,
    n: u64,
    report: &mut LoadReport,
) -> bool {
    let every = |k: u64| k > 0 && n % k == 0;
    let connector_index = (client + n as usize) % config.connectors.max(1);
    let connector = config.connector(connector_index);
    let connection = connection_id(
        &config.slug_prefix,
        connector_index,
        (client + n as usize / config.connectors.max(1)) % config.connections_per_connector.max(1),
    );
    let duplicate_create = every(config.duplicate_create_every);
    let trigger = match n % 3 {
        _ if duplicate_create => TriggerType::CloudTask,
        0 => TriggerType::CloudTask,
        1 => TriggerType::Manual,
        _ => TriggerType::OauthCallback,
    };
    let new = NewSyncLog {
        workspace_connector_id: connection.into(),
        connector_slug: connector.clone(),
        trigger_type: Some(trigger),
        cloud_task_id: (trigger == TriggerType::CloudTask)
            .then(|| format!("{}-{client}-{n}", config.slug_prefix)),
        status: Status::Scheduled,
        metadata: Some(json_map(json!({ "client": client, "n": n }))),
    };

    // Create, once or as two concurrent deliveries.
    let id = if duplicate_create {
        let (a, b) = tokio::join!(target.create(&new), target.create(&new));
        let (Some(a), Some(b)) = (record(report, a), record(report, b)) else {
            return false;
        };
        let mut codes = [a.status, b.status];
        codes.sort_unstable();
        if codes != [200, 201] || a.run.map(|r| r.0) != b.run.map(|r| r.0) {
            report.violation(format!(
                "duplicate create answered {:?} and {:?} (expected one 201 and one 200 for one run)",
                (a.status, a.run),
                (b.status, b.run)
            ));
        }
        a.run.or(b.run).map(|r| r.0)
    } else {
        let Some(a) = record(report, target.create(&new).await) else {
            return false;
        };
        if a.status != 201 {
            report.violation(format!("create answered {}", a.status));
        }
        a.run.map(|r| r.0)
    };
    let Some(id) = id else {
        return true;
    };
    report.acked.insert(
        id,
        Acked {
            connector_slug: connector,
            stage: Stage::Scheduled,
        },
    );

    let Some(started) = record(report, target.transition(id, Action::Start, None).await) else {
        return false;
    };
    if !expect_ok(report, "start", &started) {
        return true;
    }
    set_stage(report, id, Stage::InProgress);
    for beat in 0..config.heartbeats {
        let metadata = json_map(json!({ "heartbeat": beat }));
        let Some(answer) = record(
            report,
            target
                .transition(id, Action::Heartbeat, Some(metadata))
                .await,
        ) else {
            return false;
        };
        expect_ok(report, "heartbeat", &answer);
    }

    let fail = every(config.fail_every);
    let finish = |fail: bool| {
        let action = if fail { Action::Fail } else { Action::Succeed };
        let metadata = json_map(json!({ "records_synced": n * 10 }));
        target.transition(id, action, Some(metadata))
    };
    if every(config.duplicate_finish_every) {
        // Two finishers race (one succeeds, one fails): exactly one may win.
        let (a, b) = tokio::join!(finish(fail), finish(!fail));
        let (Some(a), Some(b)) = (record(report, a), record(report, b)) else {
            return false;
        };
        let winners: Vec<&Answer> = [&a, &b].into_iter().filter(|x| x.status == 200).collect();
        let losers_conflict = [&a, &b].iter().filter(|x| x.status == 409).count();
        if winners.len() != 1 || losers_conflict != 1 {
            report.violation(format!(
                "duplicate finish answered {} and {} (expected one 200 and one 409)",
                a.status, b.status
            ));
        }
        if let Some((_, status)) = winners.first().and_then(|w| w.run) {
            finished(report, id, status);
        }
    } else {
        let Some(answer) = record(report, finish(fail).await) else {
            return false;
        };
        if expect_ok(report, "finish", &answer) {
            if let Some((_, status)) = answer.run {
                finished(report, id, status);
            }
        }
    }
    true
}

fn finished(report: &mut LoadReport, id: Uuid, status: Status) {
    set_stage(report, id, Stage::Finished(status));
    report.lifecycles += 1;
    if status == Status::Error {
        report.failed_lifecycles += 1;
    }
}

fn set_stage(report: &mut LoadReport, id: Uuid, stage: Stage) {
    if let Some(acked) = report.acked.get_mut(&id) {
        acked.stage = stage;
    }
}

fn expect_ok(report: &mut LoadReport, step: &str, answer: &Answer) -> bool {
    if answer.status == 200 {
        true
    } else {
        report.violation(format!("{step} answered {}", answer.status));
        false
    }
}

/// Count a step's answer; `None` (and a transport error counted) when there was none.
fn record(report: &mut LoadReport, result: (Duration, Option<Answer>)) -> Option<Answer> {
    let (took, answer) = result;
    report.latencies_us.push(took.as_micros() as u64);
    match answer {
        Some(answer) => {
            *report.statuses.entry(answer.status).or_default() += 1;
            Some(answer)
        }
        None => {
            report.transport_errors += 1;
            None
        }
    }
}

fn json_map(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// A stable connection id per (load prefix, connector, connection).
fn connection_id(prefix: &str, connector: usize, connection: usize) -> Uuid {
    crate::stable_id(&format!("load/{prefix}/{connector}/{connection}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_stable_and_distinct() {
        assert_eq!(connection_id("p", 1, 2), connection_id("p", 1, 2));
        assert_ne!(connection_id("p", 1, 2), connection_id("p", 2, 1));
        assert_ne!(connection_id("p", 1, 2), connection_id("q", 1, 2));
    }
}
