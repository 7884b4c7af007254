//! `/v1/sync-logs` and `/v1/connector-status`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::error::{ApiError, Result};
use super::extract::{ApiJson, ApiQuery, OptionalJson, RunId};
use super::AppState;
use crate::domain::{
    capped_error_text, validate_cloud_task, validate_connector_slug, validate_error_text,
    validate_metadata, Action, ConnectionId, ConnectionKind, ConnectorStatus, NewSyncLog, Status,
    SyncLog, TriggerType, ValidationError,
};
use crate::store::{Change, Created, Cursor, ListFilter, StatusCursor, StatusFilter};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;
pub const DEFAULT_STATUS_PAGE_SIZE: u32 = 1000;
pub const MAX_STATUS_PAGE_SIZE: u32 = 10_000;

/// A page's `limit` parameter: `default` when absent, else 1 to `max`.
fn page_limit(raw: Option<&str>, default: u32, max: u32) -> Result<u32> {
    match raw {
        None => Ok(default),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "limit must be an integer from 1 to {max}"
            ))),
        },
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    workspace_connector_id: Uuid,
    connector_slug: String,
    #[serde(default)]
    trigger_type: Option<TriggerType>,
    #[serde(default)]
    cloud_task_id: Option<String>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    metadata: Option<Value>,
}

impl CreateBody {
    fn validate(self) -> std::result::Result<NewSyncLog, ValidationError> {
        validate_connector_slug(&self.connector_slug)?;
        validate_cloud_task(self.trigger_type, self.cloud_task_id.as_deref())?;
        let status = self.status.unwrap_or(Status::Scheduled);
        if !status.is_initial() {
            return Err(ValidationError::new(
                "status",
                "a run is created as scheduled or in_progress",
            ));
        }
        let metadata = self
            .metadata
            .as_ref()
            .map(validate_metadata)
            .transpose()?
            .cloned();
        Ok(NewSyncLog {
            workspace_connector_id: self.workspace_connector_id.into(),
            connector_slug: self.connector_slug,
            trigger_type: self.trigger_type,
            cloud_task_id: self.cloud_task_id,
            status,
            metadata,
        })
    }
}

/// Body of `start`: nothing, or an empty object.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// Body of `heartbeat` and `succeed`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataBody {
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailBody {
    error: String,
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    workspace_connector_id: Option<String>,
    connector_slug: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

impl ListParams {
    fn into_filter(self, kind: ConnectionKind) -> Result<ListFilter> {
        let limit = page_limit(self.limit.as_deref(), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        Ok(ListFilter {
            workspace_connector_id: parse_connection(kind, self.workspace_connector_id.as_deref())?,
            connector_slug: parse_slug(self.connector_slug)?,
            status: self
                .status
                .map(|s| s.parse::<Status>().map_err(ApiError::BadRequest))
                .transpose()?,
            cursor: self
                .cursor
                .map(|c| c.parse::<Cursor>().map_err(ApiError::BadRequest))
                .transpose()?,
            limit,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {
    workspace_connector_id: Option<String>,
    connector_slug: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// A connection id as the table's connection column holds them (a uuid on syncwatch's own
/// table).
fn parse_connection(kind: ConnectionKind, raw: Option<&str>) -> Result<Option<ConnectionId>> {
    raw.map(|r| {
        kind.parse(r)
            .map_err(|e| ApiError::BadRequest(format!("workspace_connector_id: {e}")))
    })
    .transpose()
}

fn parse_slug(raw: Option<String>) -> Result<Option<String>> {
    if let Some(slug) = &raw {
        validate_connector_slug(slug).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    Ok(raw)
}

#[derive(Debug, Serialize)]
pub struct SyncLogPage {
    items: Vec<SyncLog>,
    next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ConnectorStatusList {
    items: Vec<ConnectorStatus>,
    next_cursor: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<SyncLog>)> {
    let new = body.validate()?;
    match state.store.runs().create(&new).await? {
        Created::New(row) => Ok((StatusCode::CREATED, Json(row))),
        Created::Existing(row) => Ok((StatusCode::OK, Json(row))),
    }
}

/// `start`: scheduled → in_progress.
pub async fn start(
    State(state): State<AppState>,
    RunId(id): RunId,
    OptionalJson(_): OptionalJson<EmptyBody>,
) -> Result<Json<SyncLog>> {
    apply(&state, id, Change::new(Action::Start)).await
}

/// `heartbeat` and `succeed`: the transition `action`, merging the body's metadata.
pub async fn with_metadata(
    action: Action,
    State(state): State<AppState>,
    RunId(id): RunId,
    OptionalJson(body): OptionalJson<MetadataBody>,
) -> Result<Json<SyncLog>> {
    let change = Change {
        metadata: checked_metadata(body.metadata)?,
        ..Change::new(action)
    };
    apply(&state, id, change).await
}

/// `fail`: to error, with the error text.
pub async fn fail(
    State(state): State<AppState>,
    RunId(id): RunId,
    ApiJson(body): ApiJson<FailBody>,
) -> Result<Json<SyncLog>> {
    validate_error_text(&body.error)?;
    let change = Change {
        metadata: checked_metadata(body.metadata)?,
        error: Some(capped_error_text(body.error)),
        ..Change::new(Action::Fail)
    };
    apply(&state, id, change).await
}

async fn apply(state: &AppState, id: Uuid, change: Change) -> Result<Json<SyncLog>> {
    Ok(Json(state.store.runs().apply(id, &change).await?))
}

pub async fn get(State(state): State<AppState>, RunId(id): RunId) -> Result<Json<SyncLog>> {
    state
        .store
        .run_reads()
        .get(id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<SyncLogPage>> {
    let filter = params.into_filter(state.store.catalogue().connection_kind())?;
    let page = state.store.run_reads().list(&filter).await?;
    Ok(Json(SyncLogPage {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

pub async fn delete(State(state): State<AppState>, RunId(id): RunId) -> Result<StatusCode> {
    if state.store.runs().soft_delete(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

pub async fn connector_status(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatusParams>,
) -> Result<Json<ConnectorStatusList>> {
    let kind = state.store.catalogue().connection_kind();
    let filter = StatusFilter {
        workspace_connector_id: parse_connection(kind, params.workspace_connector_id.as_deref())?,
        connector_slug: parse_slug(params.connector_slug)?,
        cursor: params
            .cursor
            .map(|c| StatusCursor::parse(&c, kind).map_err(ApiError::BadRequest))
            .transpose()?,
        limit: page_limit(
            params.limit.as_deref(),
            DEFAULT_STATUS_PAGE_SIZE,
            MAX_STATUS_PAGE_SIZE,
        )?,
    };
    let page = state.store.run_reads().connector_status(&filter).await?;
    Ok(Json(ConnectorStatusList {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

fn checked_metadata(metadata: Option<Value>) -> Result<Option<serde_json::Map<String, Value>>> {
    Ok(metadata
        .as_ref()
        .map(validate_metadata)
        .transpose()?
        .cloned())
}
