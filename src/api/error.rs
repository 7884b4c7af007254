//! The API's one error type: its HTTP status, its `{"error":{"code","message"}}` body, and
//! how store errors map onto it (5xx details are logged by the request layer, never sent).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::{TransitionError, ValidationError};
use crate::store::StoreError;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Every error the API returns, rendered as `{"error":{"code","message"}}`. Details of
/// 5xx errors go to the log (through [`Failure`]), never to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),

    #[error("{0}")]
    Validation(String),

    #[error("missing or invalid bearer token")]
    Unauthorized,

    #[error("{}", StoreError::ObserveOnly)]
    ObserveOnly,

    #[error("sync log not found")]
    NotFound,

    #[error("{0}")]
    InvalidTransition(TransitionError),

    #[error("{0}")]
    Conflict(String),

    #[error("{0}")]
    PayloadTooLarge(String),

    /// The run exists but a value it must have cannot be read (another service wrote it).
    #[error("the run cannot be shown: {0}")]
    UnreadableRow(String),

    #[error("{0}")]
    UnsupportedMediaType(String),

    #[error("store unavailable")]
    Unavailable(#[source] StoreError),

    #[error("the request took longer than {0:?}")]
    Timeout(std::time::Duration),

    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::ObserveOnly => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::InvalidTransition(_) | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnreadableRow(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) | ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation(_) => "validation_failed",
            ApiError::Unauthorized => "unauthorized",
            ApiError::ObserveOnly => "observe_only",
            ApiError::NotFound => "not_found",
            ApiError::InvalidTransition(_) => "invalid_transition",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnreadableRow(_) => "unreadable_row",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unavailable(_) => "store_unavailable",
            ApiError::Timeout(_) => "request_timeout",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        ApiError::Validation(err.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::ObserveOnly => ApiError::ObserveOnly,
            StoreError::InvalidTransition(e) => ApiError::InvalidTransition(e),
            StoreError::Conflict(msg) => ApiError::Conflict(msg),
            e @ StoreError::CloudTaskConflict { .. } => ApiError::Conflict(e.to_string()),
            StoreError::Rejected(msg) => ApiError::Validation(msg),
            StoreError::Invalid(e) => e.into(),
            StoreError::Unreadable(e) => ApiError::UnreadableRow(e.to_string()),
            e @ (StoreError::Unavailable(_)
            | StoreError::StatementTimeout(_)
            | StoreError::Fault { .. }) => ApiError::Unavailable(e),
            e => ApiError::Internal(e.into()),
        }
    }
}

/// What a 5xx answer carries for the request layer (`track_requests`), which logs it once
/// with the route, method and status (by default no span per request gives log lines that
/// context: see `api::router`).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// An internal error (logged at `error`) rather than an unavailable store or a
    /// deadline (`warn`).
    pub internal: bool,
    pub what: &'static str,
    pub detail: String,
}

impl Failure {
    pub fn log(&self, route: &str, method: &str, status: u16) {
        let detail = &self.detail;
        if self.internal {
            tracing::error!(route, method, status, error = %detail, "{}", self.what);
        } else {
            tracing::warn!(route, method, status, error = %detail, "{}", self.what);
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let failure = |internal, what, detail| Failure {
            internal,
            what,
            detail,
        };
        let failure = match &self {
            ApiError::Internal(e) => Some(failure(true, "request failed", format!("{e:?}"))),
            ApiError::Unavailable(e) => Some(failure(false, "store unavailable", e.to_string())),
            ApiError::Timeout(after) => Some(failure(
                false,
                "request timed out",
                format!("after {after:?}"),
            )),
            _ => None,
        };
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ApiError::Unavailable(_) | ApiError::Timeout(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(failure) = failure {
            response.extensions_mut().insert(failure);
        }
        response
    }
}
