//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::store::{Store, StoreError};

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
    let (ready, detail) = match state.store.read_replica_max_lag() {
        Some(max_lag) => {
            let (replica_ready, mut replica) = read_replica(&state.store, max_lag).await;
            if let (Some(replica), Some(detail)) = (replica.as_object_mut(), detail.as_object()) {
                replica.extend(detail.clone());
            }
            (ready && replica_ready, replica)
        }
        None => (ready, detail),
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

/// The read replica (`--read-database-url`) as its reads will find it: a read of the sync
/// log there (an index probe by id) and how far its replay is behind the primary. Not
/// ready when it cannot be read or is further behind than `--read-max-lag`.
async fn read_replica(store: &Store, max_lag: std::time::Duration) -> (bool, serde_json::Value) {
    let checked = async {
        store.run_reads().get(uuid::Uuid::nil()).await?;
        let now = store.scan().db_now().await?;
        Ok::<_, StoreError>(store.visible_until(now).await?.1)
    };
    match checked.await {
        Err(e) => {
            let reason = e.unavailable_reason().unwrap_or("unreachable");
            tracing::warn!(error = %e, reason, "readiness: the read replica cannot serve");
            (false, json!({ "read_replica": reason }))
        }
        Ok(lag) => {
            let behind = lag > max_lag;
            if behind {
                tracing::warn!(lag = ?lag, max = ?max_lag, "readiness: the read replica lags");
            }
            let status = if behind { "lagging" } else { "ok" };
            let lag = lag.as_secs_f64();
            (
                !behind,
                json!({ "read_replica": status, "read_replica_lag_seconds": lag }),
            )
        }
    }
}
