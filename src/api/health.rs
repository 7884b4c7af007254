//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;

/// The process is up. Says nothing about the store, so an orchestrator does not restart
/// a healthy process because the database is down.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Ready to serve: the store answers and its schema is the one this binary expects.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (ready, detail) = match state.store.catalogue().ping().await {
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            (false, json!({ "store": "unreachable" }))
        }
        Ok(()) => match state.store.catalogue().schema_status().await {
            Ok(schema) if schema.is_current() => (
                true,
                json!({ "store": "ok", "schema_version": schema.expected }),
            ),
            Ok(schema) => (
                false,
                json!({
                    "store": "ok",
                    "schema": "not current",
                    "schema_version": schema.applied,
                    "expected_schema_version": schema.expected,
                    "dirty": schema.dirty,
                }),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: schema check failed");
                (false, json!({ "store": "unreachable" }))
            }
        },
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({ "status": if ready { "ready" } else { "not_ready" } });
    if let (Some(body), Some(detail)) = (body.as_object_mut(), detail.as_object()) {
        body.extend(detail.clone());
    }
    (code, Json(body))
}
