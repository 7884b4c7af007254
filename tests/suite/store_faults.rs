//! Faults an operator causes while syncwatch serves — privileges revoked, the database made
//! read-only or dropped, the SQLite file removed or replaced — each answered
//! `503 store_unavailable` with `Retry-After`, reported by `/readyz` with its reason, and
//! nothing written; and a role with only DML grants serves a store whose schema is current.

use crate::common;

use std::time::Duration;

use common::{admin_url, wait_until, Backend, Server, TestDb};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// A login role with `SELECT`, `INSERT`, `UPDATE`, `DELETE` on every table of `public`
/// and nothing else (no `CREATE`): its name and a URL that logs in as it.
async fn dml_role(db: &mut TestDb) -> (String, String) {
    let role = format!("syncwatch_dml_{}", Uuid::new_v4().simple());
    db.drops_role(&role);
    let name = db.url.expose().rsplit('/').next().unwrap().to_owned();
    let mut conn = PgConnection::connect(db.url.expose()).await.unwrap();
    sqlx::raw_sql(&format!(
        "create role {role} login;
         grant connect on database {name} to {role};
         revoke create on schema public from public;
         grant usage on schema public to {role};
         grant select, insert, update, delete on all tables in schema public to {role};
         grant usage on all sequences in schema public to {role};"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let _ = conn.close().await;
    let mut url = url::Url::parse(db.url.expose()).unwrap();
    url.set_username(&role).unwrap();
    (role, url.to_string())
}

async fn post(client: &Client, url: &str, body: Value) -> (StatusCode, Option<String>, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

async fn readiness(client: &Client, api: &str) -> (StatusCode, Value) {
    let response = client.get(format!("{api}/readyz")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until `/readyz` answers 503 naming `reason`.
async fn not_ready_because(client: &Client, api: &str, reason: &str) {
    let mut last = Value::Null;
    let waited = tokio::time::timeout(
        Duration::from_secs(30),
        wait_until(
            &format!("/readyz to say {reason}"),
            Duration::from_secs(30),
            async || {
                let (status, body) = readiness(client, api).await;
                last = body.clone();
                status == StatusCode::SERVICE_UNAVAILABLE && body["store"] == reason
            },
        ),
    )
    .await;
    assert!(waited.is_ok(), "/readyz never said {reason}: {last}");
}

fn assert_unavailable(what: &str, answer: &(StatusCode, Option<String>, Value)) {
    let (status, retry, body) = answer;
    assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert_eq!(body["error"]["code"], "store_unavailable", "{what}: {body}");
    assert!(retry.is_some(), "{what}: a 503 says when to retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dml_only_role_serves_and_store_faults_are_503_with_their_reason() {
    let Some(mut db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let (role, url) = dml_role(&mut db).await;
    // No migration is pending, so a role that may not create tables serves.
    let server = Server::start(&url, &[]).await;
    let client = Client::new();
    let api = server.api.clone();
    let (status, body) = readiness(&client, &api).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, run) = post(
        &client,
        &format!("{api}/v1/sync-logs"),
        json!({"workspace_connector_id": Uuid::new_v4(), "connector_slug": "hubspot"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let id = run["workspace_connector_sync_log_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = format!("{api}/v1/sync-logs/{id}/start");
    let still_scheduled = format!(
        "select count(*) from workspace_connector_sync_log \
         where workspace_connector_sync_log_id = '{id}' and status = 'scheduled'"
    );

    // Privileges revoked: a fault, not a bug.
    db.execute(&format!(
        "revoke update on workspace_connector_sync_log from {role}"
    ))
    .await;
    assert_unavailable("revoked", &post(&client, &start, json!({})).await);
    not_ready_because(&client, &api, "permission").await;
    assert_eq!(db.scalar_i64(&still_scheduled).await, 1, "nothing written");
    db.execute(&format!(
        "grant update on workspace_connector_sync_log to {role}"
    ))
    .await;
    wait_until("ready again", Duration::from_secs(30), async || {
        readiness(&client, &api).await.0 == StatusCode::OK
    })
    .await;

    // The database made read-only for the role (as on a standby).
    let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
    let terminate =
        format!("select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}'");
    db.execute(&format!(
        "alter role {role} set default_transaction_read_only = on"
    ))
    .await;
    sqlx::query(&terminate).execute(&mut admin).await.unwrap();
    not_ready_because(&client, &api, "read_only").await;
    assert_unavailable("read-only", &post(&client, &start, json!({})).await);
    assert_eq!(db.scalar_i64(&still_scheduled).await, 1, "nothing written");
    db.execute(&format!(
        "alter role {role} reset default_transaction_read_only"
    ))
    .await;
    sqlx::query(&terminate).execute(&mut admin).await.unwrap();
    wait_until("ready again", Duration::from_secs(30), async || {
        readiness(&client, &api).await.0 == StatusCode::OK
    })
    .await;
    let (status, _, body) = post(&client, &start, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The database dropped under it.
    let name = db.url.expose().rsplit('/').next().unwrap().to_owned();
    sqlx::query(&format!("drop database {name} with (force)"))
        .execute(&mut admin)
        .await
        .unwrap();
    not_ready_because(&client, &api, "missing_database").await;
    assert_unavailable(
        "dropped",
        &post(
            &client,
            &format!("{api}/v1/sync-logs/{id}/heartbeat"),
            json!({}),
        )
        .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_sqlite_file_refuses_writes_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("syncwatch.db");
    let url = format!("sqlite://{}", file.display());
    let server = Server::start(&url, &[]).await;
    let client = Client::new();
    let api = server.api.clone();
    let create = format!("{api}/v1/sync-logs");
    let body = || json!({"workspace_connector_id": Uuid::new_v4(), "connector_slug": "hubspot"});
    let (status, _, run) = post(&client, &create, body()).await;
    assert_eq!(status, StatusCode::CREATED, "{run}");

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    // Every write is refused (it would go to a file no one will read), and readiness says so.
    for _ in 0..3 {
        assert_unavailable("removed", &post(&client, &create, body()).await);
    }
    not_ready_because(&client, &api, "replaced").await;

    // A new file in its place is not the one syncwatch opened either.
    std::fs::write(&file, b"").unwrap();
    assert_unavailable("replaced", &post(&client, &create, body()).await);
    not_ready_because(&client, &api, "replaced").await;
}
