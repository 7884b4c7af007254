//! The status page's handlers: each gathers its (bounded) reads into a view of plain,
//! already formatted values, and a compiled template (`templates/ui/`) renders it with
//! every value HTML-escaped.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::format::{duration_ms, ratio, When};
use super::{UiState, PAGE_SIZE};
use crate::domain::{Status, SyncLog};
use crate::store::{ConnectionState, Cursor, ListFilter, StoreError};

/// Why a page could not be shown; rendered as a page of its own.
#[derive(Debug)]
pub enum UiError {
    NotFound(String),
    BadRequest(String),
    Store(StoreError),
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound(what) => message_page(StatusCode::NOT_FOUND, "Not found", &what),
            Self::BadRequest(what) => message_page(StatusCode::BAD_REQUEST, "Bad request", &what),
            Self::Store(e) => {
                tracing::error!(error = %e, "status page: the store read failed");
                message_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Store unavailable",
                    "The sync log could not be read just now; the service log has the reason. Try again shortly.",
                )
            }
        }
    }
}

#[derive(Template)]
#[template(path = "ui/message.html")]
struct MessagePage<'a> {
    base: &'a str,
    title: &'a str,
    message: &'a str,
}

/// A page that only says something (errors, the sign-in prompt).
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = MessagePage {
        base: "",
        title,
        message,
    };
    (status, render(&page)).into_response()
}

fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "status page: a template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

// ---- Overview ----

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
    for (connector, count) in &snap.failing_connections {
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
    for (connector, at) in &snap.last_success {
        row(&mut rows, base, connector).last_success = When::from_epoch(*at, now);
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
        failing_total: snap.failing_list.len(),
        rows,
    };
    Ok(render(&page))
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
    connector: Option<String>,
    q: String,
    notice: Option<String>,
    options: Vec<ConnectorOption>,
    total: usize,
    rows: Vec<FailingRow>,
    next: Option<String>,
}

/// A page position in the failing list: the last row's (consecutive failures, id).
fn parse_after(text: &str) -> Option<(u64, Uuid)> {
    let (count, id) = text.split_once('_')?;
    Some((count.parse().ok()?, Uuid::parse_str(id).ok()?))
}

/// Whether `state` comes after the position in the list's order (most failures first,
/// then by id).
fn is_after(state: &ConnectionState, (count, id): (u64, Uuid)) -> bool {
    state.consecutive_failures < count
        || (state.consecutive_failures == count && state.workspace_connector_id > id)
}

pub async fn failing(
    State(ui): State<UiState>,
    Query(query): Query<FailingQuery>,
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
    let mut names: Vec<&str> = snap
        .failing_list
        .iter()
        .map(|s| s.connector_slug.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let options = names
        .into_iter()
        .map(|name| ConnectorOption {
            name: name.to_owned(),
            selected: connector.as_deref() == Some(name),
        })
        .collect();
    let matching: Vec<&ConnectionState> = snap
        .failing_list
        .iter()
        .filter(|s| connector.as_ref().is_none_or(|c| &s.connector_slug == c))
        .collect();
    let total = matching.len();
    let mut shown = matching
        .into_iter()
        .filter(|s| after.is_none_or(|a| is_after(s, a)))
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
    let mut rows = Vec::with_capacity(shown.len());
    for state in shown {
        let summary = ui
            .store
            .connection_summary(state.workspace_connector_id)
            .await?;
        let error = summary.latest_error.as_ref();
        let text = error.and_then(|e| e.error.clone());
        let reason = ui.rules.classify(text.as_deref()).to_owned();
        let id = state.workspace_connector_id.to_string();
        rows.push(FailingRow {
            href: format!("{}/ui/connections/{id}", ui.base),
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

/// Where a search goes: a run id to its run, any other uuid to that connection, anything
/// else to the live run with that `cloud_task_id`. `Err` says why nothing matched.
async fn search(ui: &UiState, q: &str) -> Result<Result<String, String>, UiError> {
    if let Ok(id) = Uuid::parse_str(q) {
        if ui.store.get(id).await?.is_some() {
            return Ok(Ok(format!("{}/ui/runs/{id}", ui.base)));
        }
        return Ok(Ok(format!("{}/ui/connections/{id}", ui.base)));
    }
    Ok(match ui.store.find_live_by_cloud_task(q).await? {
        Some(run) => Ok(format!(
            "{}/ui/runs/{}",
            ui.base, run.workspace_connector_sync_log_id
        )),
        None => Err(format!(
            "No connection or run id, and no live run with cloud_task_id {q:?}."
        )),
    })
}

// ---- A connection ----

#[derive(Debug, Default, Deserialize)]
pub struct ConnectionQuery {
    before: Option<String>,
}

struct RunRow {
    id: String,
    href: String,
    status: &'static str,
    trigger: String,
    created: When,
    started: Option<When>,
    completed: Option<When>,
    duration: Option<String>,
    delay: Option<String>,
    error: Option<String>,
    metadata: Option<String>,
}

impl RunRow {
    fn new(run: &SyncLog, base: &str, now: DateTime<Utc>) -> Self {
        let id = run.workspace_connector_sync_log_id.to_string();
        Self {
            href: format!("{base}/ui/runs/{id}"),
            id,
            status: run.status.as_str(),
            trigger: run
                .trigger_type
                .map_or_else(|| "—".to_owned(), |t| t.as_str().to_owned()),
            created: When::new(run.created_at, now),
            started: When::from_option(run.started_at, now),
            completed: When::from_option(run.completed_at, now),
            duration: run.duration_ms.map(duration_ms),
            delay: run
                .started_at
                .map(|s| duration_ms((s - run.created_at).num_milliseconds())),
            error: run.error.clone(),
            metadata: run.metadata.as_ref().map(|m| m.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/connection.html")]
struct ConnectionPage<'a> {
    base: &'a str,
    title: &'a str,
    id: String,
    connector: String,
    connector_href: String,
    streak: Option<u64>,
    last_success: Option<When>,
    failing_since: Option<When>,
    latest_error: Option<String>,
    reason: Option<String>,
    runs: Vec<RunRow>,
    next: Option<String>,
    newest_href: Option<String>,
}

fn parse_id(text: &str, what: &str) -> Result<Uuid, UiError> {
    Uuid::parse_str(text).map_err(|_| UiError::BadRequest(format!("{text:?} is not a {what} id")))
}

pub async fn connection(
    State(ui): State<UiState>,
    Path(id): Path<String>,
    Query(query): Query<ConnectionQuery>,
) -> Result<Response, UiError> {
    let id = parse_id(&id, "connection")?;
    let cursor = match query.before.as_deref().filter(|b| !b.is_empty()) {
        Some(text) => Some(text.parse::<Cursor>().map_err(|_| {
            UiError::BadRequest(format!(
                "{text:?} is not a position in this connection's runs"
            ))
        })?),
        None => None,
    };
    let now = Utc::now();
    let page = ui
        .store
        .list(&ListFilter {
            workspace_connector_id: Some(id),
            cursor,
            limit: PAGE_SIZE as u32,
            ..ListFilter::default()
        })
        .await?;
    let summary = ui.store.connection_summary(id).await?;
    let snap = ui.metrics.snapshot();
    let state = snap
        .failing_list
        .iter()
        .find(|s| s.workspace_connector_id == id);
    let connector = page
        .items
        .first()
        .map(|r| r.connector_slug.clone())
        .or_else(|| state.map(|s| s.connector_slug.clone()));
    let Some(connector) = connector else {
        return Err(UiError::NotFound(format!(
            "No live run is recorded for connection {id}."
        )));
    };
    let latest_error = summary.latest_error.as_ref().and_then(|e| e.error.clone());
    let reason = summary
        .latest_error
        .as_ref()
        .map(|_| ui.rules.classify(latest_error.as_deref()).to_owned());
    let view = ConnectionPage {
        base: &ui.base,
        title: "Connection",
        id: id.to_string(),
        connector_href: format!(
            "{}/ui/failing?connector={}",
            ui.base,
            query_value(&connector)
        ),
        connector,
        streak: state.map(|s| s.consecutive_failures),
        last_success: When::from_option(summary.last_success_at, now),
        failing_since: When::from_option(summary.failing_since, now),
        latest_error,
        reason,
        runs: page
            .items
            .iter()
            .map(|r| RunRow::new(r, &ui.base, now))
            .collect(),
        next: page
            .next_cursor
            .map(|c| format!("{}/ui/connections/{id}?before={c}", ui.base)),
        newest_href: cursor.map(|_| format!("{}/ui/connections/{id}", ui.base)),
    };
    Ok(render(&view))
}

// ---- A run ----

#[derive(Template)]
#[template(path = "ui/run.html")]
struct RunPage<'a> {
    base: &'a str,
    title: &'a str,
    run: RunRow,
    connection: String,
    connection_href: String,
    connector: String,
    cloud_task_id: Option<String>,
    reason: Option<String>,
    updated: When,
    metadata_pretty: Option<String>,
}

pub async fn run(State(ui): State<UiState>, Path(id): Path<String>) -> Result<Response, UiError> {
    let id = parse_id(&id, "run")?;
    let Some(run) = ui.store.get(id).await? else {
        return Err(UiError::NotFound(format!(
            "No live run has id {id} (it may have been deleted)."
        )));
    };
    let now = Utc::now();
    let connection = run.workspace_connector_id.to_string();
    let view = RunPage {
        base: &ui.base,
        title: "Run",
        connection_href: format!("{}/ui/connections/{connection}", ui.base),
        connection,
        connector: run.connector_slug.clone(),
        cloud_task_id: run.cloud_task_id.clone(),
        reason: (run.status == Status::Error)
            .then(|| ui.rules.classify(run.error.as_deref()).to_owned()),
        updated: When::new(run.updated_at, now),
        metadata_pretty: run
            .metadata
            .as_ref()
            .map(|m| serde_json::to_string_pretty(m).unwrap_or_else(|_| m.to_string())),
        run: RunRow::new(&run, &ui.base, now),
    };
    Ok(render(&view))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(count: u64, id: u128) -> ConnectionState {
        ConnectionState {
            workspace_connector_id: Uuid::from_u128(id),
            connector_slug: "hubspot".into(),
            last_status: Status::Error,
            last_completed_at: Utc::now(),
            consecutive_failures: count,
        }
    }

    #[test]
    fn the_failing_list_pages_by_its_own_order() {
        let position = parse_after(&format!("5_{}", Uuid::from_u128(7))).unwrap();
        assert_eq!(position, (5, Uuid::from_u128(7)));
        assert!(is_after(&state(4, 1), position));
        assert!(is_after(&state(5, 8), position));
        assert!(!is_after(&state(5, 7), position));
        assert!(!is_after(&state(5, 6), position));
        assert!(!is_after(&state(6, 9), position));
        assert_eq!(parse_after("5"), None);
        assert_eq!(parse_after("x_00000000-0000-0000-0000-000000000007"), None);
    }
}
