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
    /// A plain `http://` API, over the load's own keep-alive connections.
    Api(Http1Client),
    /// The API through the typed client (reqwest): an `https://` one, or any for comparison.
    ApiTyped(ApiClient),
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
        match Http1Client::new(base, token.as_deref())? {
            Some(http) => Ok(Target::Api(http)),
            None => Self::api_typed(base, token),
        }
    }

    /// The HTTP API at `base` through the typed client (reqwest) only, whatever the scheme:
    /// the comparison the write benchmark prints beside the load's own connections.
    pub fn api_typed(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        Ok(Target::ApiTyped(ApiClient::new(base, token)?))
    }

    /// `api` (the load's own connections), `api-typed` (the typed client) or `direct`,
    /// for the report.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Api(_) => "api",
            Target::ApiTyped(_) => "api-typed",
            Target::Direct(_) => "direct",
        }
    }

    /// Create a run; `None` when no answer came.
    pub(super) async fn create(&self, new: &NewSyncLog) -> (Duration, Option<Answer>) {
        let started = Instant::now();
        let answer = match self {
            Target::Api(http) => posted(http, "/v1/sync-logs", &CreateBody::of(new)).await,
            Target::ApiTyped(client) => client.create(new).await.ok().map(|r| Answer::reply(&r)),
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
            Target::Api(http) => {
                let path = format!("/v1/sync-logs/{id}/{}", action.as_str());
                let body = ChangeBody {
                    metadata: metadata.as_ref(),
                    error,
                };
                posted(http, &path, &body).await
            }
            Target::ApiTyped(client) => client
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

/// `POST` `body` as JSON over the load's own connections; `None` when no answer came.
async fn posted(http: &Http1Client, path: &str, body: &impl serde::Serialize) -> Option<Answer> {
    let body = serde_json::to_vec(body).expect("the request bodies serialize");
    let (status, bytes) = http.post_json(path, body).await.ok()?;
    Some(Answer::reply(&Reply::<SyncLog>::decode(status, &bytes)))
}
