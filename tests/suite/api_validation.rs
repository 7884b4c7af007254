//! Bad input gets a clear 4xx in the error shape and writes nothing, on both stores.

use crate::common;

use common::{run_id, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use syncwatch::api::{ApiAuth, ApiSettings};
use uuid::Uuid;

fn valid_create() -> Value {
    json!({
        "workspace_connector_id": Uuid::new_v4(),
        "connector_slug": "hubspot",
        "trigger_type": "cloud_task",
        "cloud_task_id": "tasks/1",
    })
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

fn without(mut body: Value, field: &str) -> Value {
    body.as_object_mut().unwrap().remove(field);
    body
}

/// Sends raw bytes with a content type.
async fn raw(app: &TestApp, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.expect("error body is JSON");
    (status, body)
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str, case: &str) {
    assert_eq!(status, want, "{case}: {body}");
    assert_eq!(body["error"]["code"], code, "{case}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{case}: the error says what is wrong");
}

async fn invalid_creates_are_rejected_and_write_nothing(app: &TestApp) {
    let nested = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "a positional array instead of an object",
            json!([uuid::Uuid::new_v4(), "hubspot", null, null, null, null]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "a string instead of an object",
            json!("hubspot"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "malformed workspace_connector_id",
            with(
                valid_create(),
                "workspace_connector_id",
                json!("not-a-uuid"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "missing workspace_connector_id",
            without(valid_create(), "workspace_connector_id"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "missing connector_slug",
            without(valid_create(), "connector_slug"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "unknown trigger_type",
            with(valid_create(), "trigger_type", json!("cron")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "unknown status",
            with(valid_create(), "status", json!("running")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "created as success",
            with(valid_create(), "status", json!("success")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "created as error",
            with(valid_create(), "status", json!("error")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "cloud_task_id with manual trigger",
            with(valid_create(), "trigger_type", json!("manual")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "cloud_task_id without trigger",
            without(valid_create(), "trigger_type"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "cloud_task_id over 255 chars",
            with(valid_create(), "cloud_task_id", json!("t".repeat(256))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "uppercase connector_slug",
            with(valid_create(), "connector_slug", json!("HubSpot")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "connector_slug with a space",
            with(valid_create(), "connector_slug", json!("hub spot")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "connector_slug over 64 chars",
            with(valid_create(), "connector_slug", json!("a".repeat(65))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "connector_slug with SQL",
            with(
                valid_create(),
                "connector_slug",
                json!("x'; drop table workspace_connector_sync_log; --"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "empty connector_slug",
            with(valid_create(), "connector_slug", json!("")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "metadata is an array",
            with(valid_create(), "metadata", json!([1, 2])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "metadata is a string",
            with(valid_create(), "metadata", json!("{}")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "metadata over 64 KiB",
            with(
                valid_create(),
                "metadata",
                json!({"blob": "x".repeat(64 * 1024)}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "metadata with NUL",
            with(valid_create(), "metadata", json!({"k": "a\u{0}b"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "unknown field",
            with(valid_create(), "records", json!(3)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "internal key supplied",
            with(valid_create(), "id", json!(1)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "body is an array",
            json!([valid_create()]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ];
    for (case, body, want, code) in cases {
        let (status, err) = app.post("/v1/sync-logs", body).await;
        assert_error(status, &err, want, code, case);
        // Messages speak of the request, never of the server's types.
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("struct") && !message.contains("Body"),
            "{case}: {message}"
        );
    }

    let raw_cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "truncated JSON",
            "application/json",
            b"{\"workspace_connector_id\":".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "empty body",
            "application/json",
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "invalid UTF-8",
            "application/json",
            b"{\"connector_slug\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "deeply nested JSON",
            "application/json",
            format!("{{\"metadata\": {{\"a\": {nested}}}}}").into_bytes(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "form content type",
            "application/x-www-form-urlencoded",
            b"connector_slug=hubspot".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "text content type",
            "text/plain",
            valid_create().to_string().into_bytes(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (case, content_type, body, want, code) in raw_cases {
        let (status, err) = raw(app, "/v1/sync-logs", content_type, body).await;
        assert_error(status, &err, want, code, case);
    }

    assert_eq!(
        app.db.count_rows().await,
        0,
        "a rejected create wrote a row"
    );
}

async fn invalid_transitions_bodies_are_rejected_and_change_nothing(app: &TestApp) {
    let row = app.run_in_status("hubspot", "in_progress").await;
    let id = run_id(&row);
    let (_, before) = app.get(&format!("/v1/sync-logs/{id}")).await;
    let cases: Vec<(&str, String, Value, StatusCode, &str)> = vec![
        (
            "fail without error",
            format!("/v1/sync-logs/{id}/fail"),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "fail with blank error",
            format!("/v1/sync-logs/{id}/fail"),
            json!({"error": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "fail with numeric error",
            format!("/v1/sync-logs/{id}/fail"),
            json!({"error": 42}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "fail with metadata array",
            format!("/v1/sync-logs/{id}/fail"),
            json!({"error": "x", "metadata": [1]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "succeed with unknown field",
            format!("/v1/sync-logs/{id}/succeed"),
            json!({"status": "success"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "succeed with metadata string",
            format!("/v1/sync-logs/{id}/succeed"),
            json!({"metadata": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "heartbeat with huge metadata",
            format!("/v1/sync-logs/{id}/heartbeat"),
            json!({"metadata": {"b": "x".repeat(70_000)}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "start with a body field",
            format!("/v1/sync-logs/{id}/start"),
            json!({"started_at": "2020-01-01T00:00:00Z"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "malformed id",
            "/v1/sync-logs/12345/succeed".to_owned(),
            json!({}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (case, path, body, want, code) in cases {
        let (status, err) = app.post(&path, body).await;
        assert_error(status, &err, want, code, case);
    }
    let (_, after) = app.get(&format!("/v1/sync-logs/{id}")).await;
    assert_eq!(after, before, "a rejected request changed the run");
    assert_eq!(app.db.count_rows().await, 1);
}

async fn bad_query_parameters_are_400(app: &TestApp) {
    for (case, query) in [
        ("limit over 500", "limit=501"),
        ("limit zero", "limit=0"),
        ("limit not a number", "limit=ten"),
        ("unknown status", "status=done"),
        ("malformed connection", "workspace_connector_id=abc"),
        ("malformed cursor", "cursor=xyz"),
        ("unknown parameter", "order=asc"),
        ("bad slug", "connector_slug=Hub%20Spot"),
    ] {
        let (status, err) = app.get(&format!("/v1/sync-logs?{query}")).await;
        assert_error(status, &err, StatusCode::BAD_REQUEST, "bad_request", case);
    }
    let (status, err) = app
        .get("/v1/connector-status?workspace_connector_id=nope")
        .await;
    assert_error(
        status,
        &err,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "status filter",
    );
    let (status, page) = app.get("/v1/sync-logs?limit=500").await;
    assert_eq!(status, StatusCode::OK, "{page}");
}

async fn sql_metacharacters_are_stored_verbatim(app: &TestApp) {
    let hostile = "'; drop table workspace_connector_sync_log; -- \" \\ % _ $1 ?1";
    let row = app
        .create(json!({
            "workspace_connector_id": Uuid::new_v4(),
            "connector_slug": "hubspot",
            "trigger_type": "cloud_task",
            "cloud_task_id": hostile,
            "metadata": {hostile: hostile},
        }))
        .await;
    let id = run_id(&row);
    let (code, failed) = app
        .post(
            &format!("/v1/sync-logs/{id}/fail"),
            json!({"error": hostile}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{failed}");
    assert_eq!(failed["error"], hostile);
    assert_eq!(failed["cloud_task_id"], hostile);
    assert_eq!(failed["metadata"][hostile], hostile);
    assert_eq!(app.db.count_rows().await, 1);
}

/// Numbers at the edges of what JSON carries come back exactly (Postgres keeps jsonb
/// numbers as decimals: reading one back must not overflow), and the rows holding them
/// do not break the listing; numbers beyond a double are refused, nothing stored.
async fn extreme_numbers_in_metadata_round_trip(app: &TestApp) {
    let extremes = json!({
        "max": f64::MAX, "min": f64::MIN, "tiny": 5e-324,
        "big_int": i64::MAX, "small_int": i64::MIN, "huge_uint": u64::MAX, "third": 1.0 / 3.0,
    });
    let row = app
        .create(with(valid_create(), "metadata", extremes.clone()))
        .await;
    assert_eq!(row["metadata"], extremes, "as returned by the create");
    let (status, got) = app.get(&format!("/v1/sync-logs/{}", run_id(&row))).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["metadata"], extremes, "as read back");
    let (status, page) = app.get("/v1/sync-logs").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, err) = raw(
        app,
        "/v1/sync-logs",
        "application/json",
        format!(
            "{{\"workspace_connector_id\":\"{}\",\"connector_slug\":\"hubspot\",\"metadata\":{{\"x\":1e400}}}}",
            Uuid::new_v4()
        )
        .into_bytes(),
    )
    .await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
        "{status} {err}"
    );
    assert_eq!(app.db.count_rows().await, 1);
}

on_both_stores!(
    extreme_numbers_in_metadata_round_trip,
    invalid_creates_are_rejected_and_write_nothing,
    invalid_transitions_bodies_are_rejected_and_change_nothing,
    bad_query_parameters_are_400,
    sql_metacharacters_are_stored_verbatim,
);

#[tokio::test]
async fn bodies_over_the_configured_limit_get_413_and_write_nothing() {
    let settings = ApiSettings {
        max_body_bytes: 2048,
        ..ApiSettings::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, settings)
        .await
        .unwrap();
    let body = with(valid_create(), "metadata", json!({"pad": "x".repeat(4096)}));
    let (status, err) = app.post("/v1/sync-logs", body).await;
    assert_error(
        status,
        &err,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "oversized",
    );
    let (status, _) = app.post("/v1/sync-logs", valid_create()).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a body under the limit still works"
    );
    assert_eq!(app.db.count_rows().await, 1);
}

#[tokio::test]
async fn bearer_token_is_required_when_tokens_are_configured() {
    let settings = ApiSettings {
        auth: ApiAuth::new(["s3cret-token".to_owned(), "second".to_owned()]),
        ..ApiSettings::default()
    };
    let mut app = TestApp::spawn_with(Backend::Sqlite, settings)
        .await
        .unwrap();
    let routes: [(Method, &str); 4] = [
        (Method::POST, "/v1/sync-logs"),
        (Method::GET, "/v1/sync-logs"),
        (Method::GET, "/v1/connector-status"),
        (
            Method::POST,
            "/v1/sync-logs/6f1c1f0e-2f57-4a6b-9a39-0f1e2d3c4b5a/start",
        ),
    ];
    for header in [
        None,
        Some("Bearer wrong"),
        Some("Basic czNjcmV0LXRva2Vu"),
        Some("Bearer s3cret-toke"),
    ] {
        for (method, path) in &routes {
            let mut req = app.client.request(method.clone(), app.url(path));
            if let Some(h) = header {
                req = req.header("authorization", h);
            }
            let response = req.json(&valid_create()).send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {header:?}"
            );
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    assert_eq!(
        app.db.count_rows().await,
        0,
        "an unauthenticated create wrote a row"
    );

    for open in ["/healthz", "/readyz", "/openapi.json"] {
        let (status, _) = app.get(open).await;
        assert_eq!(status, StatusCode::OK, "{open} needs no token");
    }

    app.token = Some("second".into());
    let (status, row) = app.post("/v1/sync-logs", valid_create()).await;
    assert_eq!(status, StatusCode::CREATED, "{row}");
    let (status, _) = app.get("/v1/sync-logs").await;
    assert_eq!(status, StatusCode::OK);
}
