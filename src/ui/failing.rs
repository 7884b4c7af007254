//! The failing connections: the published snapshot's list (on a replica that does not
//! lead, the leader's saved states), filtered, paged, each shown connection's details read
//! from the table; and the search box, which leads to a run or a connection.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::fleet::saved_at;
use super::format::When;
use super::render::{connection_href, query_value, render, PageQuery, UiError};
use super::{UiState, PAGE_SIZE};
use crate::domain::{ConnectionId, ConnectionKind};
use crate::store::{ConnectionState, ConnectionSummary, Store};

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
