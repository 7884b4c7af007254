//! `/openapi.json` describes the API as implemented: the same routes as the router, and
//! every response the suite provokes validates against the documented schema.

use crate::common;

use std::collections::BTreeSet;

use common::{run_id, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use syncwatch::api::{ApiAuth, ApiSettings};
use syncwatch::test_support::api_routes;
use uuid::Uuid;

fn document() -> Value {
    serde_json::from_str(syncwatch::test_support::OPENAPI_JSON).expect("openapi.json is JSON")
}

#[test]
fn documents_exactly_the_routes_the_router_serves() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = api_routes()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    assert!(served.len() >= 12, "the router's routes: {served:?}");
    assert_eq!(documented, served);
}

/// Validates `body` against the schema documented for (path, method, status).
fn assert_documented(doc: &Value, path: &str, method: &str, status: StatusCode, body: &Value) {
    let response = &doc["paths"][path][method]["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the document does not list"
    );
    let Some(schema) = response.pointer("/content/application~1json/schema") else {
        assert!(
            body.is_null(),
            "{method} {path} {status} documents no body but got {body}"
        );
        return;
    };
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&root).expect("the documented schema compiles");
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: response does not match the document: {errors:?}\n{body}"
    );
}

async fn every_provoked_response_matches_the_document(app: &TestApp) {
    let doc = document();
    let check = |path: &'static str, method: &'static str, (status, body): (StatusCode, Value)| {
        assert_documented(&doc, path, method, status, &body);
        body
    };
    let connection = Uuid::new_v4();
    let create = json!({
        "workspace_connector_id": connection,
        "connector_slug": "hubspot",
        "trigger_type": "cloud_task",
        "cloud_task_id": "tasks/doc",
        "metadata": {"k": [1, {"n": null}]},
    });
    let row = check(
        "/v1/sync-logs",
        "post",
        app.post("/v1/sync-logs", create.clone()).await,
    );
    check(
        "/v1/sync-logs",
        "post",
        app.post("/v1/sync-logs", create.clone()).await,
    );
    let mut clash = create.clone();
    clash["workspace_connector_id"] = json!(Uuid::new_v4());
    check(
        "/v1/sync-logs",
        "post",
        app.post("/v1/sync-logs", clash).await,
    );
    check(
        "/v1/sync-logs",
        "post",
        app.post("/v1/sync-logs", json!({"connector_slug": 1}))
            .await,
    );
    let id = run_id(&row);
    let at = |action: &str| format!("/v1/sync-logs/{id}/{action}");

    check(
        "/v1/sync-logs/{id}/heartbeat",
        "post",
        app.post_empty(&at("heartbeat")).await,
    );
    check(
        "/v1/sync-logs/{id}/start",
        "post",
        app.post_empty(&at("start")).await,
    );
    check(
        "/v1/sync-logs/{id}/start",
        "post",
        app.post_empty(&at("start")).await,
    );
    check(
        "/v1/sync-logs/{id}/heartbeat",
        "post",
        app.post(&at("heartbeat"), json!({"metadata": {"pages": 1}}))
            .await,
    );
    check(
        "/v1/sync-logs/{id}/fail",
        "post",
        app.post(&at("fail"), json!({})).await,
    );
    check(
        "/v1/sync-logs/{id}/succeed",
        "post",
        app.post_empty(&at("succeed")).await,
    );
    check(
        "/v1/sync-logs/{id}/fail",
        "post",
        app.post(&at("fail"), json!({"error": "x"})).await,
    );
    check(
        "/v1/sync-logs/{id}",
        "get",
        app.get(&format!("/v1/sync-logs/{id}")).await,
    );
    check(
        "/v1/sync-logs/{id}",
        "get",
        app.get("/v1/sync-logs/nope").await,
    );

    let other = app.run_in_status("salesforce", "error").await;
    check(
        "/v1/sync-logs",
        "get",
        app.get("/v1/sync-logs?limit=1").await,
    );
    check(
        "/v1/sync-logs",
        "get",
        app.get("/v1/sync-logs?limit=999").await,
    );
    check(
        "/v1/connector-status",
        "get",
        app.get("/v1/connector-status").await,
    );
    check(
        "/v1/connector-status",
        "get",
        app.get("/v1/connector-status?x=1").await,
    );

    let other_id = run_id(&other);
    let path = format!("/v1/sync-logs/{other_id}");
    check(
        "/v1/sync-logs/{id}",
        "delete",
        app.call(Method::DELETE, &path, None).await,
    );
    check(
        "/v1/sync-logs/{id}",
        "delete",
        app.call(Method::DELETE, &path, None).await,
    );
    check("/v1/sync-logs/{id}", "get", app.get(&path).await);

    check("/healthz", "get", app.get("/healthz").await);
    check("/readyz", "get", app.get("/readyz").await);
    let (status, spec) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(spec, doc);
}

on_both_stores!(every_provoked_response_matches_the_document);

#[tokio::test]
async fn unauthorized_and_oversized_responses_match_the_document() {
    let settings = ApiSettings {
        auth: ApiAuth::new(["t".to_owned()]),
        max_body_bytes: 512,
        ..ApiSettings::default()
    };
    let mut app = TestApp::spawn_with(Backend::Sqlite, settings)
        .await
        .unwrap();
    let doc = document();
    let (status, body) = app.get("/v1/sync-logs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_documented(&doc, "/v1/sync-logs", "get", status, &body);
    app.token = Some("t".into());
    let big = json!({"workspace_connector_id": Uuid::new_v4(), "connector_slug": "a", "metadata": {"p": "x".repeat(1024)}});
    let (status, body) = app.post("/v1/sync-logs", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_documented(&doc, "/v1/sync-logs", "post", status, &body);
}

/// The check above can fail: a run with the internal key, or an unknown error code,
/// does not validate.
#[test]
fn the_schema_check_rejects_what_the_document_forbids() {
    let doc = document();
    let run = json!({
        "workspace_connector_sync_log_id": Uuid::new_v4(), "workspace_connector_id": Uuid::new_v4(),
        "connector_slug": "hubspot", "status": "scheduled", "trigger_type": null,
        "cloud_task_id": null, "started_at": null, "completed_at": null, "duration_ms": null,
        "error": null, "metadata": null,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    });
    assert_documented(&doc, "/v1/sync-logs/{id}", "get", StatusCode::OK, &run);
    let mut leaked = run.clone();
    leaked["id"] = json!(7);
    let mut bad_status = run.clone();
    bad_status["status"] = json!("running");
    let bad_error = json!({"error": {"code": "teapot", "message": "x"}});
    for (body, status) in [
        (leaked, StatusCode::OK),
        (bad_status, StatusCode::OK),
        (bad_error, StatusCode::NOT_FOUND),
    ] {
        let result = std::panic::catch_unwind(|| {
            assert_documented(&doc, "/v1/sync-logs/{id}", "get", status, &body)
        });
        assert!(result.is_err(), "{body} should not validate");
    }
}
