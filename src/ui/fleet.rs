//! The fleet-wide pages: the overview and the failing connections, from the snapshot the
//! scanner published, with each shown failing connection's details read from the table.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::format::{ratio, When};
use super::render::{connection_href, query_value, render, PageQuery, UiError};
use super::{UiState, PAGE_SIZE};
use crate::domain::{ConnectionId, ConnectionKind};
use crate::store::{ConnectionState, ConnectionSummary, Store};

struct ConnectorRow {
    connector: String,
    href: String,
    runs: u64,
    failed: u64,
    ratio: String,
    failing: u64,
    active: u64,
    stuck: u64,
    overdue: u64,
    overrunning: u64,
    last_success: Option<When>,
    /// Worst first: a tuple compared in order.
    rank: (u64, u64, u64, u64, u64),
}

impl ConnectorRow {
    fn new(connector: &str, base: &str) -> Self {
        Self {
            connector: connector.to_owned(),
            href: format!("{base}/ui/failing?connector={}", query_value(connector)),
            runs: 0,
            failed: 0,
            ratio: String::new(),
            failing: 0,
            active: 0,
            stuck: 0,
            overdue: 0,
            overrunning: 0,
            last_success: None,
            rank: (0, 0, 0, 0, 0),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/overview.html")]
struct OverviewPage<'a> {
    base: &'a str,
    title: &'a str,
    now: String,
    leader: bool,
    /// On a replica that does not lead: what the leader's last checkpoint was settled up
    /// to, when it saved one.
    saved_at: Option<String>,
    rows: Vec<ConnectorRow>,
    failing_total: usize,
}

pub async fn overview(State(ui): State<UiState>) -> Result<Response, UiError> {
    let now = Utc::now();
    let snap = ui.metrics.snapshot();
    let outcomes = ui.outcomes_24h().await?;
    let mut rows: BTreeMap<String, ConnectorRow> = BTreeMap::new();
    fn row<'r>(
        rows: &'r mut BTreeMap<String, ConnectorRow>,
        base: &str,
        connector: &str,
    ) -> &'r mut ConnectorRow {
        rows.entry(connector.to_owned())
            .or_insert_with(|| ConnectorRow::new(connector, base))
    }
    let base = &*ui.base;
    for o in outcomes.iter() {
        let r = row(&mut rows, base, &o.connector_slug);
        r.runs += o.succeeded + o.failed;
        r.failed += o.failed;
    }
    // On a replica that does not lead, what the leader saved with its last checkpoint.
    let saved = match snap.leader {
        true => None,
        false => Some(ui.saved_fleet().await?),
    };
    let (failing, last_success) = match &saved {
        Some(s) => (
            s.failing_connections
                .iter()
                .map(|(c, n)| (c.as_str(), *n))
                .collect::<Vec<_>>(),
            s.last_success
                .iter()
                .map(|(c, at)| (c.as_str(), *at))
                .collect::<Vec<_>>(),
        ),
        None => (
            snap.failing_connections
                .iter()
                .map(|(c, n)| (&**c, *n))
                .collect(),
            snap.last_success
                .iter()
                .map(|(c, at)| (&**c, *at))
                .collect(),
        ),
    };
    for (connector, count) in failing {
        row(&mut rows, base, connector).failing += count;
    }
    for ((connector, _), count) in &snap.active {
        row(&mut rows, base, connector).active += count;
    }
    for ((connector, _), count) in &snap.stuck {
        row(&mut rows, base, connector).stuck += count;
    }
    for (connector, count) in &snap.overdue_connections {
        row(&mut rows, base, connector).overdue += count;
    }
    for (connector, count) in &snap.overrunning {
        row(&mut rows, base, connector).overrunning += count;
    }
    for (connector, at) in last_success {
        row(&mut rows, base, connector).last_success = When::from_epoch(at, now);
    }
    let mut rows: Vec<ConnectorRow> = rows.into_values().collect();
    for r in &mut rows {
        r.ratio = ratio(r.runs - r.failed, r.failed);
        // Failure share in per mille, so a connector failing most of its runs sorts first
        // among those with the same number of failing connections.
        let failure_share = (r.failed * 1000).checked_div(r.runs).unwrap_or(0);
        r.rank = (
            r.failing,
            r.stuck,
            r.overdue + r.overrunning,
            failure_share,
            r.active,
        );
    }
    rows.sort_by(|a, b| b.rank.cmp(&a.rank).then(a.connector.cmp(&b.connector)));
    let page = OverviewPage {
        base: &ui.base,
        title: "Connectors",
        now: super::utc(now),
        leader: snap.leader,
        saved_at: saved_at(saved.as_deref()),
        failing_total: saved
            .as_ref()
            .map_or(snap.failing_list.len(), |s| s.failing_list.len()),
        rows,
    };
    Ok(render(&page))
}

/// When the leader's saved states the page shows were settled, if it shows them.
fn saved_at(saved: Option<&super::saved::SavedFleet>) -> Option<String> {
    saved.and_then(|s| s.settled_upto).map(super::utc)
}

// ---- Failing connections ----

#[derive(Debug, Default, Deserialize)]
pub struct FailingQuery {
    connector: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

struct FailingRow {
    id: String,
    href: String,
    connector: String,
    consecutive: u64,
    last_failure: When,
    failing_since: Option<When>,
    last_success: Option<When>,
    error: Option<String>,
    error_href: Option<String>,
    reason: String,
    owner: &'static str,
}

struct ConnectorOption {
    name: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "ui/failing.html")]
struct FailingPage<'a> {
    base: &'a str,
    title: &'a str,
    leader: bool,
    saved_at: Option<String>,
    connector: Option<String>,
    q: String,
    notice: Option<String>,
    options: Vec<ConnectorOption>,
    total: usize,
    rows: Vec<FailingRow>,
    next: Option<String>,
}

/// A page position in the failing list: the last row's (consecutive failures, id).
fn parse_after(text: &str) -> Option<(u64, ConnectionId)> {
    let (count, id) = text.split_once('_')?;
    Some((count.parse().ok()?, ConnectionId::text(id.to_owned())))
}

/// Whether `state` comes after the position in the list's order (most failures first,
/// then by id).
fn is_after(state: &ConnectionState, (count, id): &(u64, ConnectionId)) -> bool {
    let count = *count;
    state.consecutive_failures < count
        || (state.consecutive_failures == count && state.workspace_connector_id > *id)
}

pub async fn failing(
    State(ui): State<UiState>,
    PageQuery(query): PageQuery<FailingQuery>,
) -> Result<Response, UiError> {
    let q = query.q.as_deref().map(str::trim).unwrap_or_default();
    let mut notice = None;
    if !q.is_empty() {
        match search(&ui, q).await? {
            Ok(location) => return Ok(Redirect::to(&location).into_response()),
            Err(message) => notice = Some(message),
        }
    }
    let connector = query.connector.filter(|c| !c.is_empty());
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(text) => Some(parse_after(text).ok_or_else(|| {
            UiError::BadRequest(format!("{text:?} is not a position in the list"))
        })?),
        None => None,
    };
    let now = Utc::now();
    let snap = ui.metrics.snapshot();
    let saved = match snap.leader {
        true => None,
        false => Some(ui.saved_fleet().await?),
    };
    let list = saved
        .as_ref()
        .map_or(&snap.failing_list, |s| &s.failing_list);
    let mut names: Vec<&str> = list.iter().map(|s| s.connector_slug.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let options = names
        .into_iter()
        .map(|name| ConnectorOption {
            name: name.to_owned(),
            selected: connector.as_deref() == Some(name),
        })
        .collect();
    let matching: Vec<&ConnectionState> = list
        .iter()
        .filter(|s| connector.as_ref().is_none_or(|c| &s.connector_slug == c))
        .collect();
    let total = matching.len();
    let mut shown = matching
        .into_iter()
        .filter(|s| after.as_ref().is_none_or(|a| is_after(s, a)))
        .take(PAGE_SIZE + 1)
        .collect::<Vec<_>>();
    let next = (shown.len() > PAGE_SIZE).then(|| {
        shown.truncate(PAGE_SIZE);
        let last = shown[PAGE_SIZE - 1];
        let mut href = format!(
            "{}/ui/failing?after={}_{}",
            ui.base, last.consecutive_failures, last.workspace_connector_id
        );
        if let Some(c) = &connector {
            href.push_str(&format!("&connector={}", query_value(c)));
        }
        href
    });
    let ids = shown
        .iter()
        .map(|s| s.workspace_connector_id.clone())
        .collect();
    let summaries = summaries(&ui.store, ids).await?;
    let mut rows = Vec::with_capacity(shown.len());
    for (state, summary) in shown.into_iter().zip(summaries) {
        let error = summary.latest_error.as_ref();
        let text = error.and_then(|e| e.error.clone());
        let reason = ui.rules.classify(text.as_deref()).to_owned();
        let id = state.workspace_connector_id.to_string();
        rows.push(FailingRow {
            href: connection_href(&ui.base, &id),
            id,
            connector: state.connector_slug.clone(),
            consecutive: state.consecutive_failures,
            last_failure: When::new(state.last_completed_at, now),
            failing_since: When::from_option(summary.failing_since, now),
            last_success: When::from_option(summary.last_success_at, now),
            error_href: error.map(|e| format!("{}/ui/runs/{}", ui.base, e.run_id)),
            error: text,
            owner: ui.rules.owner(&reason).as_str(),
            reason,
        });
    }
    let page = FailingPage {
        base: &ui.base,
        title: "Failing connections",
        leader: snap.leader,
        saved_at: saved_at(saved.as_deref()),
        connector,
        q: q.to_owned(),
        notice,
        options,
        total,
        rows,
        next,
    };
    Ok(render(&page))
}

/// How many summaries of one page are read at once: enough to hide the round trips, few
/// enough to leave the API's pool to the writers.
const SUMMARY_READS: usize = 4;

/// The summaries of `ids`, in order, read [`SUMMARY_READS`] at a time. A dropped request
/// aborts the reads still running.
async fn summaries(
    store: &Store,
    ids: Vec<ConnectionId>,
) -> Result<Vec<ConnectionSummary>, UiError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(SUMMARY_READS));
    let mut reads = tokio::task::JoinSet::new();
    let mut out = vec![ConnectionSummary::default(); ids.len()];
    for (i, id) in ids.into_iter().enumerate() {
        let (store, permits) = (store.clone(), permits.clone());
        reads.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, store.pages().connection_summary(&id).await)
        });
    }
    while let Some(read) = reads.join_next().await {
        let (i, summary) = read.map_err(|e| UiError::Internal(e.to_string()))?;
        out[i] = summary?;
    }
    Ok(out)
}

/// Where a search goes: a run id to its run, the live run with that `cloud_task_id` to
/// it, anything else that can be a connection id (a uuid, or what the table's connection
/// column holds) to that connection. `Err` says why nothing matched.
async fn search(ui: &UiState, q: &str) -> Result<Result<String, String>, UiError> {
    let kind = ui.store.catalogue().connection_kind();
    let connection = |id: ConnectionId| connection_href(&ui.base, id.as_str());
    if let Ok(id) = Uuid::parse_str(q) {
        if ui.store.run_reads().get(id).await?.is_some() {
            return Ok(Ok(format!("{}/ui/runs/{id}", ui.base)));
        }
        if kind == ConnectionKind::Uuid {
            return Ok(Ok(connection(id.into())));
        }
    }
    if let Some(run) = ui.store.run_reads().find_live_by_cloud_task(q).await? {
        return Ok(Ok(format!(
            "{}/ui/runs/{}",
            ui.base, run.workspace_connector_sync_log_id
        )));
    }
    Ok(match kind.parse(q) {
        Ok(id) => Ok(connection(id)),
        Err(_) => Err(format!(
            "No connection or run id, and no live run with cloud_task_id {q:?}."
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;

    fn state(count: u64, id: u128) -> ConnectionState {
        ConnectionState {
            workspace_connector_id: uuid::Uuid::from_u128(id).into(),
            connector_slug: "hubspot".into(),
            last_status: Status::Error,
            last_completed_at: Utc::now(),
            consecutive_failures: count,
            last_success_at: None,
            learned: None,
        }
    }

    #[test]
    fn the_failing_list_pages_by_its_own_order() {
        let position = parse_after(&format!("5_{}", Uuid::from_u128(7))).unwrap();
        assert_eq!(position, (5, Uuid::from_u128(7).into()));
        assert!(is_after(&state(4, 1), &position));
        assert!(is_after(&state(5, 8), &position));
        assert!(!is_after(&state(5, 7), &position));
        assert!(!is_after(&state(5, 6), &position));
        assert!(!is_after(&state(6, 9), &position));
        assert_eq!(parse_after("5"), None);
        assert_eq!(parse_after("x_00000000-0000-0000-0000-000000000007"), None);
    }
}
