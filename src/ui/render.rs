//! What every page shares: the error page, rendering, query-string escaping. The pages
//! themselves are in `fleet.rs` (the overview and the failing connections, from the
//! scanner's snapshot) and `history.rs` (a connection's runs and a run, from the table).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::store::StoreError;

/// A page's query string; one that does not parse (a repeated or malformed parameter) is
/// a 400 page, not the framework's plain-text answer.
pub struct PageQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for PageQuery<T>
{
    type Rejection = UiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(query)| PageQuery(query))
            .map_err(|e| UiError::BadRequest(e.body_text()))
    }
}

/// Why a page could not be shown; rendered as a page of its own.
#[derive(Debug)]
pub enum UiError {
    NotFound(String),
    BadRequest(String),
    Store(StoreError),
    /// A read task that did not finish (it panicked).
    Internal(String),
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound(what) => message_page(StatusCode::NOT_FOUND, "Not found", &what),
            Self::BadRequest(what) => message_page(StatusCode::BAD_REQUEST, "Bad request", &what),
            Self::Internal(e) => {
                tracing::error!(error = %e, "status page: a read did not finish");
                message_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    "The page could not be assembled; the service log has the reason.",
                )
            }
            Self::Store(StoreError::Unreadable(e)) => message_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Run cannot be shown",
                &format!(
                    "This run is in the table, but a value every run has cannot be read: {e}. \
                     The service that writes the table wrote it outside the contract."
                ),
            ),
            Self::Store(e) => {
                tracing::error!(error = %e, "status page: the store read failed");
                message_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Store unavailable",
                    "The sync log could not be read just now; the service log has the reason. Try again shortly.",
                )
            }
        }
    }
}

#[derive(Template)]
#[template(path = "ui/message.html")]
struct MessagePage<'a> {
    base: &'a str,
    title: &'a str,
    message: &'a str,
}

/// A page that only says something (errors, the sign-in prompt).
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = MessagePage {
        base: "",
        title,
        message,
    };
    (status, render(&page)).into_response()
}

pub(super) fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "status page: a template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// The status page of connection `id` (percent-encoded as one path segment: a text key
/// may hold any character).
pub(super) fn connection_href(base: &str, id: &str) -> String {
    let mut segment = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            segment.push(char::from(byte));
        } else {
            segment.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{base}/ui/connections/{segment}")
}

pub(super) fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
