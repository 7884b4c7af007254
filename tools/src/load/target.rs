//! What the load's clients talk to — the API through the typed client, or the store's own
//! calls in process — and one step's answer, timed, in the protocol's status codes.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use uuid::Uuid;

use syncwatch::domain::{Action, NewSyncLog, Status, SyncLog};
use syncwatch::store::{Change, Created, Store, StoreError};

use super::http::Http1Client;
use crate::client::{ApiClient, ChangeBody, CreateBody, Reply};

/// Error text of the runs the load fails on purpose.
const SIMULATED_FAILURE: &str = "simulated failure from syncwatch load";

/// What the clients talk to.
#[derive(Clone)]
pub enum Target {
    /// The HTTP API: a plain `http://` one over the load's own keep-alive connections, an
    /// `https://` one through the typed client.
    Api(ApiClient, Option<Http1Client>),
    /// The store's own calls, in process: the same SQL statements without HTTP.
    Direct(Store),
}

/// One step's answer: the HTTP status (for a direct call, the status the API answers the
/// same store outcome with), and the run it returned.
pub(super) struct Answer {
    pub status: u16,
    pub run: Option<(Uuid, Status)>,
}

impl Answer {
    fn of(status: u16, run: &SyncLog) -> Self {
        Answer {
            status,
            run: Some((run.workspace_connector_sync_log_id, run.status)),
        }
    }

    fn reply(reply: &Reply<SyncLog>) -> Self {
        Answer {
            status: reply.status.as_u16(),
            run: reply
                .ok()
                .map(|run| (run.workspace_connector_sync_log_id, run.status)),
        }
    }

    fn store_error(e: &StoreError) -> Self {
        Answer {
            status: protocol_status(e),
            run: None,
        }
    }
}

/// The status the API's contract (`src/api/openapi.json`) gives each store error, so the
/// direct target's figures read like the API's. The load only ever sees 404/409 here;
/// anything counted as 5xx fails the run either way.
fn protocol_status(e: &StoreError) -> u16 {
    match e {
        StoreError::NotFound => 404,
        StoreError::InvalidTransition(_)
        | StoreError::Conflict(_)
        | StoreError::CloudTaskConflict { .. } => 409,
        StoreError::Rejected(_) => 422,
        StoreError::Unavailable(_) | StoreError::StatementTimeout(_) => 503,
        _ => 500,
    }
}

impl Target {
    /// The HTTP API at `base` (e.g. `http://127.0.0.1:8080`): over the load's own
    /// keep-alive HTTP/1.1 connections for `http://`, through the typed client for
    /// `https://`.
    pub fn api(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let lean = Http1Client::new(base, token.as_deref())?;
        Ok(Target::Api(ApiClient::new(base, token)?, lean))
    }

    /// The HTTP API at `base` through the typed client (reqwest) only, whatever the scheme:
    /// the comparison the write benchmark prints beside the load's own connections.
    pub fn api_typed(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        Ok(Target::Api(ApiClient::new(base, token)?, None))
    }

    /// `api` (the load's own connections), `api-typed` (the typed client) or `direct`,
    /// for the report.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Api(_, Some(_)) => "api",
            Target::Api(_, None) => "api-typed",
            Target::Direct(_) => "direct",
        }
    }

    /// Create a run; `None` when no answer came.
    pub(super) async fn create(&self, new: &NewSyncLog) -> (Duration, Option<Answer>) {
        let started = Instant::now();
        let answer = match self {
            Target::Api(_, Some(http)) => {
                let body = serde_json::to_vec(&CreateBody::of(new)).expect("serializable");
                http.post_json("/v1/sync-logs", body)
                    .await
                    .ok()
                    .map(|(status, bytes)| Answer::reply(&Reply::decode(status, &bytes)))
            }
            Target::Api(client, None) => client.create(new).await.ok().map(|r| Answer::reply(&r)),
            Target::Direct(store) => Some(match store.runs().create(new).await {
                Ok(Created::New(run)) => Answer::of(201, &run),
                Ok(Created::Existing(run)) => Answer::of(200, &run),
                Err(e) => Answer::store_error(&e),
            }),
        };
        (started.elapsed(), answer)
    }

    /// Apply `action` to run `id` (a failure carries the simulated error text); `None`
    /// when no answer came.
    pub(super) async fn transition(
        &self,
        id: Uuid,
        action: Action,
        metadata: Option<Map<String, Value>>,
    ) -> (Duration, Option<Answer>) {
        let started = Instant::now();
        let error = (action == Action::Fail).then_some(SIMULATED_FAILURE);
        let answer = match self {
            Target::Api(_, Some(http)) => {
                let body = ChangeBody {
                    metadata: metadata.as_ref(),
                    error,
                };
                let body = serde_json::to_vec(&body).expect("serializable");
                http.post_json(&format!("/v1/sync-logs/{id}/{}", action.as_str()), body)
                    .await
                    .ok()
                    .map(|(status, bytes)| Answer::reply(&Reply::decode(status, &bytes)))
            }
            Target::Api(client, None) => client
                .transition(id, action, metadata.as_ref(), error)
                .await
                .ok()
                .map(|r| Answer::reply(&r)),
            Target::Direct(store) => {
                let change = Change {
                    metadata,
                    error: error.map(str::to_owned),
                    ..Change::new(action)
                };
                Some(match store.runs().apply(id, &change).await {
                    Ok(run) => Answer::of(200, &run),
                    Err(e) => Answer::store_error(&e),
                })
            }
        };
        (started.elapsed(), answer)
    }
}
