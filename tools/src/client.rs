//! The typed client of the syncwatch HTTP API: every call returns the HTTP status with the
//! body decoded into the service's own types ([`SyncLog`]) or into the API's error shape.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use syncwatch::domain::{Action, ConnectionId, NewSyncLog, Status, SyncLog, TriggerType};

/// The body of every error answer: `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, as the API words it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_transition`, `not_found`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// What an answer's body held.
#[derive(Debug, Clone, PartialEq)]
pub enum Body<T> {
    /// A 2xx answer's body, decoded.
    Ok(T),
    /// An error answer in the API's error shape.
    Error(ErrorBody),
    /// A body in neither shape (from something in front of the API, or a broken
    /// contract), as text.
    Unexpected(String),
}

/// One answer of the API: its HTTP status and its decoded body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<T> {
    pub status: StatusCode,
    pub body: Body<T>,
}

impl<T> Reply<T> {
    /// The decoded success body, if the answer was one.
    pub fn ok(&self) -> Option<&T> {
        match &self.body {
            Body::Ok(value) => Some(value),
            _ => None,
        }
    }

    /// The API's error, if the answer was one.
    pub fn error(&self) -> Option<&ErrorDetail> {
        match &self.body {
            Body::Error(body) => Some(&body.error),
            _ => None,
        }
    }
}

/// One page of `GET /v1/sync-logs`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SyncLogPage {
    pub items: Vec<SyncLog>,
    /// Pass back as [`ListQuery::cursor`] for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// The filters of `GET /v1/sync-logs`; unset ones are left out of the query string.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_connector_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_slug: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Body of `POST /v1/sync-logs`.
#[derive(Serialize)]
pub(crate) struct CreateBody<'a> {
    workspace_connector_id: &'a ConnectionId,
    connector_slug: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger_type: Option<TriggerType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud_task_id: Option<&'a str>,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
}

impl<'a> CreateBody<'a> {
    pub(crate) fn of(new: &'a NewSyncLog) -> Self {
        CreateBody {
            workspace_connector_id: &new.workspace_connector_id,
            connector_slug: &new.connector_slug,
            trigger_type: new.trigger_type,
            cloud_task_id: new.cloud_task_id.as_deref(),
            status: new.status,
            metadata: new.metadata.as_ref(),
        }
    }
}

/// Body of the transitions: `{}` for `start`, metadata and (for `fail`) the error otherwise.
#[derive(Serialize)]
pub(crate) struct ChangeBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

/// A client of one syncwatch API. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:8080`), sending `token` as a
    /// bearer token when given. Requests time out after 30 s.
    pub fn new(base: &str, token: Option<String>) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Self::with_http(base, token, http))
    }

    /// The same over a `reqwest::Client` the caller configured.
    pub fn with_http(base: &str, token: Option<String>, http: reqwest::Client) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        }
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /v1/sync-logs`: `201` with the new run, or `200` with the live run of a
    /// repeated Cloud Tasks delivery.
    pub async fn create(&self, new: &NewSyncLog) -> reqwest::Result<Reply<SyncLog>> {
        let url = format!("{}/v1/sync-logs", self.base);
        self.send(self.http.post(url).json(&CreateBody::of(new)))
            .await
    }

    /// `POST /v1/sync-logs/{id}/{action}`. The API takes no metadata with `start` and
    /// requires `error` with `fail`; both are sent as given, so the API judges them.
    pub async fn transition(
        &self,
        id: Uuid,
        action: Action,
        metadata: Option<&Map<String, Value>>,
        error: Option<&str>,
    ) -> reqwest::Result<Reply<SyncLog>> {
        let url = format!("{}/v1/sync-logs/{id}/{}", self.base, action.as_str());
        let body = ChangeBody { metadata, error };
        self.send(self.http.post(url).json(&body)).await
    }

    /// `POST /v1/sync-logs/{id}/start`.
    pub async fn start(&self, id: Uuid) -> reqwest::Result<Reply<SyncLog>> {
        self.transition(id, Action::Start, None, None).await
    }

    /// `POST /v1/sync-logs/{id}/heartbeat`, merging `metadata` into the run's.
    pub async fn heartbeat(
        &self,
        id: Uuid,
        metadata: Option<&Map<String, Value>>,
    ) -> reqwest::Result<Reply<SyncLog>> {
        self.transition(id, Action::Heartbeat, metadata, None).await
    }

    /// `POST /v1/sync-logs/{id}/succeed`.
    pub async fn succeed(
        &self,
        id: Uuid,
        metadata: Option<&Map<String, Value>>,
    ) -> reqwest::Result<Reply<SyncLog>> {
        self.transition(id, Action::Succeed, metadata, None).await
    }

    /// `POST /v1/sync-logs/{id}/fail` with the error text.
    pub async fn fail(
        &self,
        id: Uuid,
        error: &str,
        metadata: Option<&Map<String, Value>>,
    ) -> reqwest::Result<Reply<SyncLog>> {
        self.transition(id, Action::Fail, metadata, Some(error))
            .await
    }

    /// `GET /v1/sync-logs/{id}`.
    pub async fn get(&self, id: Uuid) -> reqwest::Result<Reply<SyncLog>> {
        let url = format!("{}/v1/sync-logs/{id}", self.base);
        self.send(self.http.get(url)).await
    }

    /// `GET /v1/sync-logs`: one page, newest first.
    pub async fn list(&self, query: &ListQuery) -> reqwest::Result<Reply<SyncLogPage>> {
        let url = format!("{}/v1/sync-logs", self.base);
        self.send(self.http.get(url).query(query)).await
    }

    /// Send, and decode the body by the status. `Err` only when no complete answer came
    /// (connection refused or reset, timeout, body cut off).
    async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> reqwest::Result<Reply<T>> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        Ok(Reply::decode(status, &bytes))
    }
}

impl<T: DeserializeOwned> Reply<T> {
    /// An answer's body decoded by its status: `T` for a 2xx, the error shape otherwise,
    /// the text when it is neither.
    pub(crate) fn decode(status: StatusCode, bytes: &[u8]) -> Self {
        let body = if status.is_success() {
            serde_json::from_slice::<T>(bytes).map(Body::Ok).ok()
        } else {
            serde_json::from_slice::<ErrorBody>(bytes)
                .map(Body::Error)
                .ok()
        };
        let body =
            body.unwrap_or_else(|| Body::Unexpected(String::from_utf8_lossy(bytes).into_owned()));
        Reply { status, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_decode_into_the_api_shape() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"error":{"code":"invalid_transition","message":"cannot succeed a run whose status is error"}}"#,
        )
        .unwrap();
        assert_eq!(body.error.code, "invalid_transition");
    }

    #[test]
    fn a_create_body_leaves_out_what_is_unset() {
        let metadata = Map::new();
        let body = CreateBody {
            workspace_connector_id: &Uuid::nil().into(),
            connector_slug: "hubspot",
            trigger_type: Some(TriggerType::CloudTask),
            cloud_task_id: None,
            status: Status::Scheduled,
            metadata: Some(&metadata),
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "workspace_connector_id": Uuid::nil(),
                "connector_slug": "hubspot",
                "trigger_type": "cloud_task",
                "status": "scheduled",
                "metadata": {},
            })
        );
    }
}
