//! `syncwatch load`: concurrent orchestrator clients driving full run lifecycles against
//! the API (or, for comparison, the same store calls made directly), then checking that
//! nothing was lost.
//!
//! Every client loops over lifecycles until the deadline: create (some as two concurrent
//! deliveries of one Cloud Tasks id), start, heartbeats, then succeed or fail (some as two
//! concurrent finishers). Each acknowledged step is remembered, so afterwards
//! [`verify`] can check the store holds every acknowledged write, and the protocol's
//! promises are checked as the load runs: one `201` per duplicate create, exactly one
//! winner per duplicate finish, no `5xx`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::ApiError;
use crate::domain::{Action, NewSyncLog, Status, SyncLog, TriggerType};
use crate::store::{Change, Created, ListFilter, Store, StoreError};

/// What the clients talk to.
#[derive(Clone)]
pub enum Target {
    /// The HTTP API at `base` (e.g. `http://127.0.0.1:8080`).
    Api {
        base: String,
        token: Option<String>,
        client: reqwest::Client,
    },
    /// The store's own calls, in process: the same SQL statements without HTTP.
    Direct(Store),
}

impl Target {
    pub fn api(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Target::Api {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Target::Api { .. } => "api",
            Target::Direct(_) => "direct",
        }
    }
}

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

/// How far an acknowledged run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Scheduled,
    InProgress,
    Finished(Status),
}

impl Stage {
    fn rank(self) -> u8 {
        match self {
            Stage::Scheduled => 0,
            Stage::InProgress => 1,
            Stage::Finished(_) => 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Acked {
    pub connector_slug: String,
    pub stage: Stage,
}

#[derive(Debug, Default)]
pub struct LoadReport {
    pub target: &'static str,
    pub elapsed: Duration,
    /// Lifecycles that reached an acknowledged terminal status.
    pub lifecycles: u64,
    pub failed_lifecycles: u64,
    /// Latency of every request (or direct store call), microseconds.
    pub latencies_us: Vec<u64>,
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer (connection refused or reset, client timeout).
    pub transport_errors: u64,
    /// Broken promises of the protocol seen while loading (first few kept).
    pub violations: Vec<String>,
    pub violation_count: u64,
    /// Every run a create was acknowledged for, and how far it was acknowledged.
    pub acked: HashMap<Uuid, Acked>,
}

impl LoadReport {
    pub fn requests(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    pub fn server_errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(code, _)| **code >= 500)
            .map(|(_, n)| n)
            .sum()
    }

    /// The q-quantile (0..=1) of the request latencies, in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        quantile_us(&self.latencies_us, q) as f64 / 1000.0
    }

    pub fn requests_per_second(&self) -> f64 {
        self.requests() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn lifecycles_per_second(&self) -> f64 {
        self.lifecycles as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn violation(&mut self, text: String) {
        self.violation_count += 1;
        if self.violations.len() < 20 {
            self.violations.push(text);
        }
    }

    fn merge(&mut self, other: LoadReport) {
        self.lifecycles += other.lifecycles;
        self.failed_lifecycles += other.failed_lifecycles;
        self.latencies_us.extend(other.latencies_us);
        for (code, n) in other.statuses {
            *self.statuses.entry(code).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        // `violation` counts each one it is handed; the rest were counted but not kept.
        let kept = other.violations.len() as u64;
        for v in other.violations {
            self.violation(v);
        }
        self.violation_count += other.violation_count.saturating_sub(kept);
        self.acked.extend(other.acked);
    }

    /// The human summary `syncwatch load` prints.
    pub fn summary(&self) -> String {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(code, n)| format!("{code}×{n}"))
            .collect();
        format!(
            "target {}: {} lifecycles ({} failed) in {:.1}s, {} requests\n\
             throughput {:.0} requests/s, {:.1} lifecycles/s\n\
             latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n\
             responses {}; 5xx {}; transport errors {}; protocol violations {}",
            self.target,
            self.lifecycles,
            self.failed_lifecycles,
            self.elapsed.as_secs_f64(),
            self.requests(),
            self.requests_per_second(),
            self.lifecycles_per_second(),
            self.latency_ms(0.5),
            self.latency_ms(0.99),
            self.latency_ms(1.0),
            statuses.join(" "),
            self.server_errors(),
            self.transport_errors,
            self.violation_count,
        )
    }
}

/// Nearest-rank quantile of unsorted microsecond samples.
pub fn quantile_us(samples: &[u64], q: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// One step's answer: the HTTP status (or the status the API would give for a direct
/// call's result), and the run it returned.
struct Answer {
    status: u16,
    run: Option<(Uuid, Status)>,
}

impl Answer {
    fn of(status: u16, run: &SyncLog) -> Self {
        Answer {
            status,
            run: Some((run.workspace_connector_sync_log_id, run.status)),
        }
    }

    /// A direct call's error, as the status the API would answer it with.
    fn error(e: StoreError) -> Self {
        Answer {
            status: ApiError::from(e).status_code().as_u16(),
            run: None,
        }
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
    let trigger = match n % 3 {
        0 => TriggerType::CloudTask,
        1 => TriggerType::Manual,
        _ => TriggerType::OauthCallback,
    };
    let duplicate_create = every(config.duplicate_create_every);
    let trigger = if duplicate_create {
        TriggerType::CloudTask
    } else {
        trigger
    };
    let new = NewSyncLog {
        workspace_connector_id: connection,
        connector_slug: connector.clone(),
        trigger_type: Some(trigger),
        cloud_task_id: (trigger == TriggerType::CloudTask)
            .then(|| format!("{}-{client}-{n}", config.slug_prefix)),
        status: Status::Scheduled,
        metadata: Some(json_map(json!({ "client": client, "n": n }))),
    };

    // Create, once or as two concurrent deliveries.
    let id = if duplicate_create {
        let (a, b) = tokio::join!(create(target, &new), create(target, &new));
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
        let Some(a) = record(report, create(target, &new).await) else {
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

    let Some(started) = record(report, transition(target, id, Action::Start, None).await) else {
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
            transition(target, id, Action::Heartbeat, Some(metadata)).await,
        ) else {
            return false;
        };
        expect_ok(report, "heartbeat", &answer);
    }

    let fail = every(config.fail_every);
    let finish = |fail: bool| {
        let action = if fail { Action::Fail } else { Action::Succeed };
        let metadata = json_map(json!({ "records_synced": n * 10 }));
        transition(target, id, action, Some(metadata))
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
    let mut bytes = [0u8; 16];
    let key = format!("{prefix}/{connector}/{connection}");
    // FNV-1a over the key, twice with different offsets, for 128 stable bits.
    for (half, offset) in [
        (0usize, 0xcbf2_9ce4_8422_2325u64),
        (8, 0x6c62_272e_07bb_0142),
    ] {
        let mut hash = offset;
        for b in key.bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        bytes[half..half + 8].copy_from_slice(&hash.to_be_bytes());
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

async fn create(target: &Target, new: &NewSyncLog) -> (Duration, Option<Answer>) {
    let started = Instant::now();
    let answer = match target {
        Target::Api {
            base,
            token,
            client,
        } => {
            let body = json!({
                "workspace_connector_id": new.workspace_connector_id,
                "connector_slug": new.connector_slug,
                "trigger_type": new.trigger_type.map(TriggerType::as_str),
                "cloud_task_id": new.cloud_task_id,
                "metadata": new.metadata,
            });
            let request = client.post(format!("{base}/v1/sync-logs")).json(&body);
            send(request, token.as_deref()).await
        }
        Target::Direct(store) => Some(match store.create(new).await {
            Ok(Created::New(run)) => Answer::of(201, &run),
            Ok(Created::Existing(run)) => Answer::of(200, &run),
            Err(e) => Answer::error(e),
        }),
    };
    (started.elapsed(), answer)
}

async fn transition(
    target: &Target,
    id: Uuid,
    action: Action,
    metadata: Option<serde_json::Map<String, Value>>,
) -> (Duration, Option<Answer>) {
    let started = Instant::now();
    let error =
        (action == Action::Fail).then(|| "simulated failure from syncwatch load".to_owned());
    let answer = match target {
        Target::Api {
            base,
            token,
            client,
        } => {
            let verb = match action {
                Action::Start => "start",
                Action::Heartbeat => "heartbeat",
                Action::Succeed => "succeed",
                Action::Fail => "fail",
            };
            let mut body = serde_json::Map::new();
            if let Some(metadata) = metadata {
                body.insert("metadata".into(), Value::Object(metadata));
            }
            if let Some(error) = error {
                body.insert("error".into(), Value::String(error));
            }
            let request = client
                .post(format!("{base}/v1/sync-logs/{id}/{verb}"))
                .json(&Value::Object(body));
            send(request, token.as_deref()).await
        }
        Target::Direct(store) => {
            let change = Change {
                action,
                metadata,
                error,
            };
            Some(match store.apply(id, &change).await {
                Ok(run) => Answer::of(200, &run),
                Err(e) => Answer::error(e),
            })
        }
    };
    (started.elapsed(), answer)
}

async fn send(request: reqwest::RequestBuilder, token: Option<&str>) -> Option<Answer> {
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.ok()?;
    let run = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
        let id = v
            .get("workspace_connector_sync_log_id")?
            .as_str()?
            .parse()
            .ok()?;
        let status = v.get("status")?.as_str()?.parse().ok()?;
        Some((id, status))
    });
    Some(Answer { status, run })
}

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct Verification {
    /// Rows of this load's connectors in the store.
    pub rows: u64,
    /// Of those, rows not yet terminal.
    pub active_rows: u64,
    /// Terminal rows by (connector, status).
    pub terminal: BTreeMap<(String, Status), u64>,
    pub problems: Vec<String>,
}

/// Check the store against what the load acknowledged: every acknowledged run is there
/// and at least as far along as acknowledged (exactly, once finished). With `exact`
/// (nothing was interrupted), the store holds no other run of these connectors and every
/// run is terminal.
pub async fn verify(
    store: &Store,
    config: &LoadConfig,
    report: &LoadReport,
    exact: bool,
) -> anyhow::Result<Verification> {
    let mut found: HashMap<Uuid, (String, Status)> = HashMap::new();
    for connector in config.connectors() {
        let mut filter = ListFilter {
            connector_slug: Some(connector.clone()),
            limit: crate::api::MAX_PAGE_SIZE,
            ..ListFilter::default()
        };
        loop {
            let page = store.list(&filter).await?;
            for run in page.items {
                found.insert(
                    run.workspace_connector_sync_log_id,
                    (connector.clone(), run.status),
                );
            }
            match page.next_cursor {
                Some(cursor) => filter.cursor = Some(cursor),
                None => break,
            }
        }
    }
    let mut v = Verification {
        rows: found.len() as u64,
        ..Verification::default()
    };
    for (connector, status) in found.values() {
        if status.is_terminal() {
            *v.terminal.entry((connector.clone(), *status)).or_default() += 1;
        } else {
            v.active_rows += 1;
        }
    }
    let mut lost = 0;
    let mut behind = Vec::new();
    for (id, acked) in &report.acked {
        let Some((_, status)) = found.get(id) else {
            lost += 1;
            continue;
        };
        let stage = match status {
            Status::Scheduled => Stage::Scheduled,
            Status::InProgress => Stage::InProgress,
            done => Stage::Finished(*done),
        };
        let ok = match acked.stage {
            Stage::Finished(want) => stage == Stage::Finished(want),
            want => stage.rank() >= want.rank(),
        };
        if !ok {
            behind.push(format!(
                "{id}: acknowledged {:?}, store has {status}",
                acked.stage
            ));
        }
    }
    if lost > 0 {
        v.problems.push(format!(
            "{lost} acknowledged runs are missing from the store"
        ));
    }
    if !behind.is_empty() {
        v.problems.push(format!(
            "{} runs are behind what was acknowledged, e.g. {}",
            behind.len(),
            behind[0]
        ));
    }
    if exact {
        if v.rows != report.acked.len() as u64 {
            v.problems.push(format!(
                "the store holds {} runs of this load, {} creates were acknowledged",
                v.rows,
                report.acked.len()
            ));
        }
        if v.active_rows > 0 {
            v.problems
                .push(format!("{} runs are not terminal", v.active_rows));
        }
    }
    Ok(v)
}

/// `connector_sync_runs_total` by (connector, status) from an exposition, for the given
/// connectors (summed over `trigger`).
pub fn runs_total_from_exposition(
    text: &str,
    connectors: &[String],
) -> BTreeMap<(String, Status), u64> {
    let mut totals = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("connector_sync_runs_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels.split(',').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k == name).then(|| v.trim_matches('"').to_owned())
            })
        };
        let (Some(connector), Some(status)) = (label("connector"), label("status")) else {
            continue;
        };
        if !connectors.contains(&connector) {
            continue;
        }
        let (Ok(status), Ok(value)) = (status.parse::<Status>(), value.trim().parse::<f64>())
        else {
            continue;
        };
        *totals.entry((connector, status)).or_default() += value as u64;
    }
    totals
}

/// Poll `metrics_url` until `connector_sync_runs_total` for the load's connectors equals
/// the store's terminal counts, or `within` passes. `Ok(())` when they match.
pub async fn wait_for_metrics(
    metrics_url: &str,
    token: Option<&str>,
    config: &LoadConfig,
    expected: &BTreeMap<(String, Status), u64>,
    within: Duration,
) -> anyhow::Result<Result<(), String>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let connectors = config.connectors();
    let expected: BTreeMap<_, _> = expected
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let deadline = Instant::now() + within;
    loop {
        let mut request = client.get(metrics_url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let text = request.send().await?.error_for_status()?.text().await?;
        let got: BTreeMap<_, _> = runs_total_from_exposition(&text, &connectors)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        if got == expected {
            return Ok(Ok(()));
        }
        if Instant::now() >= deadline {
            return Ok(Err(format!(
                "connector_sync_runs_total {got:?} != SQL counts {expected:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile_us(&samples, 0.5), 50);
        assert_eq!(quantile_us(&samples, 0.99), 99);
        assert_eq!(quantile_us(&samples, 1.0), 100);
        assert_eq!(quantile_us(&samples, 0.0), 1);
        assert_eq!(quantile_us(&[], 0.5), 0);
    }

    #[test]
    fn runs_total_is_read_per_connector_and_status() {
        let text = "# TYPE connector_sync_runs_total counter\n\
            connector_sync_runs_total{connector=\"a\",trigger=\"manual\",status=\"success\"} 3\n\
            connector_sync_runs_total{connector=\"a\",trigger=\"none\",status=\"success\"} 2\n\
            connector_sync_runs_total{connector=\"a\",trigger=\"manual\",status=\"error\"} 1\n\
            connector_sync_runs_total{connector=\"b\",trigger=\"manual\",status=\"error\"} 9\n";
        let got = runs_total_from_exposition(text, &["a".to_owned()]);
        assert_eq!(got.get(&("a".into(), Status::Success)), Some(&5));
        assert_eq!(got.get(&("a".into(), Status::Error)), Some(&1));
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn merged_reports_count_every_violation() {
        let mut total = LoadReport::default();
        for _ in 0..3 {
            let mut part = LoadReport::default();
            for i in 0..15 {
                part.violation(format!("v{i}"));
            }
            total.merge(part);
        }
        assert_eq!(total.violation_count, 45);
        assert_eq!(total.violations.len(), 20, "only the first few are kept");
    }

    #[test]
    fn connection_ids_are_stable_and_distinct() {
        assert_eq!(connection_id("p", 1, 2), connection_id("p", 1, 2));
        assert_ne!(connection_id("p", 1, 2), connection_id("p", 2, 1));
        assert_ne!(connection_id("p", 1, 2), connection_id("q", 1, 2));
    }
}
