//! A connection's runs (keyset pages, newest first) and one run, read from the table.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::format::{duration_ms, When};
use super::render::{connection_href, query_value, render, PageQuery, UiError};
use super::{UiState, PAGE_SIZE};
use crate::domain::{Status, SyncLog};
use crate::store::{Cursor, ListFilter};

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
    /// Columns whose stored value cannot be read (shown as unreadable, not as empty).
    unreadable: String,
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
            unreadable: run.unreadable.join(", "),
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
    PageQuery(query): PageQuery<ConnectionQuery>,
) -> Result<Response, UiError> {
    let id = ui
        .store
        .catalogue()
        .connection_kind()
        .parse(&id)
        .map_err(|e| UiError::BadRequest(format!("not a connection id: {e}")))?;
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
        .run_reads()
        .list(&ListFilter {
            workspace_connector_id: Some(id.clone()),
            cursor,
            limit: PAGE_SIZE as u32,
            ..ListFilter::default()
        })
        .await?;
    let summary = ui.store.pages().connection_summary(&id).await?;
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
            .map(|c| format!("{}?before={c}", connection_href(&ui.base, id.as_str()))),
        newest_href: cursor.map(|_| connection_href(&ui.base, id.as_str())),
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
    let Some(run) = ui.store.run_reads().get(id).await? else {
        return Err(UiError::NotFound(format!(
            "No live run has id {id} (it may have been deleted)."
        )));
    };
    let now = Utc::now();
    let connection = run.workspace_connector_id.to_string();
    let view = RunPage {
        base: &ui.base,
        title: "Run",
        connection_href: connection_href(&ui.base, &connection),
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
