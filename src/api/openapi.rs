//! The API's OpenAPI 3.1 description, served as written in `openapi.json`.

use axum::http::header;
use axum::response::IntoResponse;

pub(crate) const OPENAPI_JSON: &str = include_str!("openapi.json");

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
