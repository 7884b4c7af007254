//! The lifecycle through the HTTP API, on both stores.

use crate::common;

use chrono::{DateTime, Utc};
use common::{assert_run_shape, run_id, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

fn ts(row: &Value, field: &str) -> DateTime<Utc> {
    row[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {row}"))
        .parse()
        .unwrap()
}

async fn full_lifecycle_records_every_column(app: &TestApp) {
    let connection = Uuid::new_v4();
    let created = app
        .create(json!({
            "workspace_connector_id": connection,
            "connector_slug": "hubspot",
            "trigger_type": "cloud_task",
            "cloud_task_id": "projects/p/locations/l/queues/sync/tasks/1",
            "metadata": {"connector_slug": "hubspot", "nested": {"a": 1}},
        }))
        .await;
    assert_run_shape(&created);
    assert_eq!(created["status"], "scheduled");
    assert_eq!(created["workspace_connector_id"], connection.to_string());
    assert_eq!(created["trigger_type"], "cloud_task");
    for null in ["started_at", "completed_at", "duration_ms", "error"] {
        assert!(
            created[null].is_null(),
            "{null} set on a new run: {created}"
        );
    }
    let id = run_id(&created);

    let (code, started) = app.post_empty(&format!("/v1/sync-logs/{id}/start")).await;
    assert_eq!(code, StatusCode::OK, "{started}");
    assert_eq!(started["status"], "in_progress");
    assert!(ts(&started, "started_at") >= ts(&created, "created_at"));

    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let (code, beat) = app
        .post(
            &format!("/v1/sync-logs/{id}/heartbeat"),
            json!({"metadata": {"pages_fetched": 2, "nested": {"b": 2}}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{beat}");
    assert_eq!(beat["status"], "in_progress");
    assert!(ts(&beat, "updated_at") > ts(&started, "updated_at"));
    assert_eq!(
        beat["metadata"],
        json!({"connector_slug": "hubspot", "nested": {"a": 1, "b": 2}, "pages_fetched": 2})
    );

    let (code, done) = app
        .post(
            &format!("/v1/sync-logs/{id}/succeed"),
            json!({"metadata": {"records_synced": 120, "nested": null}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{done}");
    assert_run_shape(&done);
    assert_eq!(done["status"], "success");
    assert!(done["error"].is_null());
    assert_eq!(
        done["metadata"],
        json!({"connector_slug": "hubspot", "pages_fetched": 2, "records_synced": 120})
    );
    let elapsed = ts(&done, "completed_at") - ts(&done, "started_at");
    let duration = done["duration_ms"].as_i64().expect("duration_ms set");
    assert!(
        duration >= 30,
        "duration {duration} ms covers the 30 ms sleep"
    );
    assert!(
        (duration - elapsed.num_milliseconds()).abs() <= 1,
        "duration_ms {duration} = completed_at - started_at ({} ms)",
        elapsed.num_milliseconds()
    );

    let (code, fetched) = app.get(&format!("/v1/sync-logs/{id}")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(fetched, done);
}

async fn a_run_that_never_started_fails_without_duration(app: &TestApp) {
    let row = app.create_run("salesforce").await;
    let id = run_id(&row);
    let (code, failed) = app
        .post(
            &format!("/v1/sync-logs/{id}/fail"),
            json!({"error": "task dispatch failed", "metadata": {"attempt": 3}}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{failed}");
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["error"], "task dispatch failed");
    assert!(failed["started_at"].is_null());
    assert!(failed["duration_ms"].is_null());
    assert!(!failed["completed_at"].is_null());
    assert_eq!(failed["metadata"], json!({"attempt": 3}));
}

async fn a_run_created_in_progress_has_started(app: &TestApp) {
    let row = app
        .create(json!({
            "workspace_connector_id": Uuid::new_v4(),
            "connector_slug": "stripe",
            "status": "in_progress",
        }))
        .await;
    assert_eq!(row["status"], "in_progress");
    assert!(row["trigger_type"].is_null());
    assert_eq!(ts(&row, "started_at"), ts(&row, "created_at"));
    let id = run_id(&row);
    let (code, body) = app.post_empty(&format!("/v1/sync-logs/{id}/start")).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    let (code, done) = app.post_empty(&format!("/v1/sync-logs/{id}/succeed")).await;
    assert_eq!(code, StatusCode::OK, "{done}");
    assert!(done["duration_ms"].as_i64().is_some());
}

/// Every refused (status, action) pair answers 409 naming the current status and leaves
/// the row exactly as it was.
async fn every_illegal_transition_returns_409_and_changes_nothing(app: &TestApp) {
    let refused: &[(&str, &[&str])] = &[
        ("scheduled", &["heartbeat", "succeed"]),
        ("in_progress", &["start"]),
        ("success", &["start", "heartbeat", "succeed", "fail"]),
        ("error", &["start", "heartbeat", "succeed", "fail"]),
    ];
    for (status, actions) in refused {
        let row = app.run_in_status("hubspot", status).await;
        let id = run_id(&row);
        let (_, before) = app.get(&format!("/v1/sync-logs/{id}")).await;
        for action in *actions {
            let body = match *action {
                "fail" => Some(json!({"error": "late failure"})),
                "heartbeat" | "succeed" => Some(json!({"metadata": {"x": 1}})),
                _ => None,
            };
            let (code, err) = app
                .call(Method::POST, &format!("/v1/sync-logs/{id}/{action}"), body)
                .await;
            assert_eq!(code, StatusCode::CONFLICT, "{action} from {status}: {err}");
            assert_eq!(err["error"]["code"], "invalid_transition");
            let message = err["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("status is {status}")),
                "message names the current status: {message}"
            );
            let (_, after) = app.get(&format!("/v1/sync-logs/{id}")).await;
            assert_eq!(after, before, "{action} from {status} changed the row");
        }
    }
}

async fn succeed_twice_returns_409(app: &TestApp) {
    let row = app.run_in_status("hubspot", "success").await;
    let id = run_id(&row);
    let (code, body) = app.post_empty(&format!("/v1/sync-logs/{id}/succeed")).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
}

async fn missing_runs_are_404(app: &TestApp) {
    let id = Uuid::new_v4();
    for action in ["start", "heartbeat", "succeed"] {
        let (code, body) = app
            .post_empty(&format!("/v1/sync-logs/{id}/{action}"))
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{action}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (code, _) = app
        .post(&format!("/v1/sync-logs/{id}/fail"), json!({"error": "x"}))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = app.get(&format!("/v1/sync-logs/{id}")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = app
        .call(Method::DELETE, &format!("/v1/sync-logs/{id}"), None)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

async fn soft_deleted_runs_are_invisible(app: &TestApp) {
    let connection = Uuid::new_v4();
    let kept = app
        .create(json!({"workspace_connector_id": connection, "connector_slug": "hubspot"}))
        .await;
    let gone = app
        .create(json!({"workspace_connector_id": connection, "connector_slug": "hubspot"}))
        .await;
    let gone_id = run_id(&gone);
    let (code, body) = app
        .call(Method::DELETE, &format!("/v1/sync-logs/{gone_id}"), None)
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert!(body.is_null());

    let (code, _) = app.get(&format!("/v1/sync-logs/{gone_id}")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    for action in ["start", "heartbeat", "succeed"] {
        let (code, _) = app
            .post_empty(&format!("/v1/sync-logs/{gone_id}/{action}"))
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{action} on a deleted run");
    }
    let (code, _) = app
        .call(Method::DELETE, &format!("/v1/sync-logs/{gone_id}"), None)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "deleting twice");

    let (_, page) = app
        .get(&format!(
            "/v1/sync-logs?workspace_connector_id={connection}"
        ))
        .await;
    let ids: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(run_id)
        .collect();
    assert_eq!(ids, vec![run_id(&kept)]);

    let (_, status) = app
        .get(&format!(
            "/v1/connector-status?workspace_connector_id={connection}"
        ))
        .await;
    assert_eq!(status["items"].as_array().unwrap().len(), 1);
    assert_eq!(status["items"][0]["last_run_at"], kept["created_at"]);

    // The row is still there for audit.
    assert_eq!(app.db.count_rows().await, 2);
}

async fn repeated_cloud_task_returns_the_existing_run(app: &TestApp) {
    let connection = Uuid::new_v4();
    let body = json!({
        "workspace_connector_id": connection,
        "connector_slug": "hubspot",
        "trigger_type": "cloud_task",
        "cloud_task_id": "tasks/abc",
    });
    let first = app.create(body.clone()).await;
    let (code, again) = app.post("/v1/sync-logs", body.clone()).await;
    assert_eq!(code, StatusCode::OK, "{again}");
    assert_eq!(again, first);

    // The same task name for another connection is a conflict, not a silent merge.
    let mut other = body.clone();
    other["workspace_connector_id"] = json!(Uuid::new_v4());
    let (code, err) = app.post("/v1/sync-logs", other).await;
    assert_eq!(code, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"]["code"], "conflict");

    // Once the run is soft-deleted, the task name is free again.
    let id = run_id(&first);
    app.call(Method::DELETE, &format!("/v1/sync-logs/{id}"), None)
        .await;
    let (code, fresh) = app.post("/v1/sync-logs", body).await;
    assert_eq!(code, StatusCode::CREATED, "{fresh}");
    assert_ne!(run_id(&fresh), id);
    assert_eq!(app.db.count_rows().await, 2);
}

async fn list_filters_and_orders_newest_first(app: &TestApp) {
    let connection = Uuid::new_v4();
    let mut created = Vec::new();
    for slug in ["hubspot", "salesforce", "hubspot"] {
        created.push(
            app.create(json!({"workspace_connector_id": connection, "connector_slug": slug}))
                .await,
        );
    }
    let other = app.run_in_status("hubspot", "success").await;

    let (code, page) = app.get("/v1/sync-logs").await;
    assert_eq!(code, StatusCode::OK);
    let all: Vec<&Value> = page["items"].as_array().unwrap().iter().collect();
    assert_eq!(all.len(), 4);
    for pair in all.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            (ts(a, "created_at"), run_id(a)) > (ts(b, "created_at"), run_id(b)),
            "newest first"
        );
    }
    assert!(page["next_cursor"].is_null());
    for row in &all {
        assert_run_shape(row);
    }

    let (_, hub) = app
        .get(&format!(
            "/v1/sync-logs?workspace_connector_id={connection}&connector_slug=hubspot"
        ))
        .await;
    let mut got: Vec<String> = hub["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(run_id)
        .collect();
    let mut want = vec![run_id(&created[0]), run_id(&created[2])];
    got.sort();
    want.sort();
    assert_eq!(got, want);

    let (_, done) = app.get("/v1/sync-logs?status=success").await;
    let ids: Vec<String> = done["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(run_id)
        .collect();
    assert_eq!(ids, vec![run_id(&other)]);
}

async fn connector_status_tracks_consecutive_failures(app: &TestApp) {
    let connection = Uuid::new_v4();
    let new_run = || async {
        let row = app
            .create(json!({"workspace_connector_id": connection, "connector_slug": "hubspot"}))
            .await;
        let id = run_id(&row);
        app.post_empty(&format!("/v1/sync-logs/{id}/start")).await;
        id
    };
    let fail = |id: String, text: &'static str| async move {
        let (code, _) = app
            .post(&format!("/v1/sync-logs/{id}/fail"), json!({"error": text}))
            .await;
        assert_eq!(code, StatusCode::OK);
    };
    fail(new_run().await, "before success").await;
    let ok = new_run().await;
    app.post_empty(&format!("/v1/sync-logs/{ok}/succeed")).await;
    fail(new_run().await, "first").await;
    fail(new_run().await, "second").await;
    let pending = app
        .create(json!({"workspace_connector_id": connection, "connector_slug": "hubspot"}))
        .await;
    let healthy = app.run_in_status("salesforce", "success").await;

    let (code, body) = app.get("/v1/connector-status").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    let failing = &items[0];
    assert_eq!(failing["workspace_connector_id"], connection.to_string());
    assert_eq!(failing["connector_slug"], "hubspot");
    assert_eq!(failing["consecutive_failures"], 2);
    assert_eq!(failing["last_error"], "second");
    assert_eq!(failing["last_status"], "scheduled");
    assert_eq!(failing["last_run_at"], pending["created_at"]);
    assert!(!failing["last_success_at"].is_null());
    assert!(ts(failing, "last_failure_at") > ts(failing, "last_success_at"));

    let fine = &items[1];
    assert_eq!(
        fine["workspace_connector_id"],
        healthy["workspace_connector_id"]
    );
    assert_eq!(fine["consecutive_failures"], 0);
    assert!(fine["last_error"].is_null());
    assert_eq!(fine["last_success_at"], healthy["completed_at"]);

    let (_, only) = app
        .get("/v1/connector-status?connector_slug=salesforce")
        .await;
    assert_eq!(only["items"].as_array().unwrap().len(), 1);
}

/// The internal bigint key shows up in no response, under any name.
async fn internal_key_appears_in_no_response(app: &TestApp) {
    let row = app.run_in_status("hubspot", "error").await;
    let internal: i64 = app
        .db
        .scalar_i64("select max(id) from workspace_connector_sync_log")
        .await;
    assert!(internal >= 1);
    let id = run_id(&row);
    let responses = [
        app.get(&format!("/v1/sync-logs/{id}")).await.1,
        app.get("/v1/sync-logs").await.1,
        app.get("/v1/connector-status").await.1,
    ];
    fn walk(value: &Value, internal: i64) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    assert_ne!(key, "id", "a bare id field: {value}");
                    if key != "duration_ms" && key != "consecutive_failures" {
                        assert_ne!(
                            child.as_i64(),
                            Some(internal),
                            "{key} holds the internal key"
                        );
                    }
                    walk(child, internal);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, internal)),
            _ => {}
        }
    }
    for response in &responses {
        walk(response, internal);
    }
    assert_run_shape(&responses[0]);
}

/// Rows another service writes straight into the table are served like our own.
async fn rows_written_by_another_service_are_served(app: &TestApp) {
    let connection = Uuid::new_v4();
    let sql = match app.db.backend {
        common::Backend::Postgres => format!(
            "insert into workspace_connector_sync_log \
               (workspace_connector_id, connector_slug, status, trigger_type, started_at, \
                completed_at, duration_ms, metadata) \
             values ('{connection}', 'zendesk', 'success', 'manual', now() - interval '2 seconds', \
                     now(), 2000, '{{\"records_synced\": 5}}')"
        ),
        common::Backend::Sqlite => format!(
            "insert into workspace_connector_sync_log \
               (workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status, \
                trigger_type, started_at, completed_at, duration_ms, metadata) \
             values ('{}', '{connection}', 'zendesk', 'success', 'manual', \
                     '2026-01-01 10:00:00', '2026-01-01 10:00:02', 2000, '{{\"records_synced\": 5}}')",
            Uuid::new_v4()
        ),
    };
    app.db.execute(&sql).await;
    let (code, page) = app
        .get(&format!(
            "/v1/sync-logs?workspace_connector_id={connection}"
        ))
        .await;
    assert_eq!(code, StatusCode::OK, "{page}");
    let row = &page["items"][0];
    assert_eq!(row["status"], "success");
    assert_eq!(row["duration_ms"], 2000);
    assert_eq!(row["metadata"], json!({"records_synced": 5}));
    let (_, status) = app
        .get(&format!(
            "/v1/connector-status?workspace_connector_id={connection}"
        ))
        .await;
    assert_eq!(status["items"][0]["last_status"], "success");
}

on_both_stores!(
    full_lifecycle_records_every_column,
    a_run_that_never_started_fails_without_duration,
    a_run_created_in_progress_has_started,
    every_illegal_transition_returns_409_and_changes_nothing,
    succeed_twice_returns_409,
    missing_runs_are_404,
    soft_deleted_runs_are_invisible,
    repeated_cloud_task_returns_the_existing_run,
    list_filters_and_orders_newest_first,
    connector_status_tracks_consecutive_failures,
    internal_key_appears_in_no_response,
    rows_written_by_another_service_are_served,
);
