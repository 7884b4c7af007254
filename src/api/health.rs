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

/// Ready to serve: the store answers, its schema is the one this binary expects, and it
/// can be read and written as the API and the scanner will ([`Catalogue::ping`]:
/// the SQLite file is the one opened, a read of the sync log, no-op writes of it and of
/// the checkpoint). A store that answers but cannot serve says why (`permission`,
/// `read_only`, `corrupt`, `missing_database`, `missing_table`, `storage`, `replaced`).
///
/// [`Catalogue::ping`]: crate::store::Catalogue::ping
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let catalogue = state.store.catalogue();
    let (ready, detail) = match catalogue.schema_status().await {
        Err(e) => {
            let reason = e.unavailable_reason().unwrap_or("unreachable");
            tracing::warn!(error = %e, reason, "readiness: store unreachable");
            (false, json!({ "store": reason }))
        }
        Ok(schema) if schema.is_current() => match catalogue.ping().await {
            Ok(()) => (
                true,
                json!({ "store": "ok", "schema_version": schema.expected }),
            ),
            Err(e) => {
                let reason = e.unavailable_reason().unwrap_or("error");
                tracing::warn!(error = %e, reason, "readiness: the store cannot serve");
                (
                    false,
                    json!({ "store": reason, "schema_version": schema.expected }),
                )
            }
        },
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
