//! Bearer-token authentication for `/v1`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The accepted tokens. Empty means authentication is off.
#[derive(Clone, Default)]
pub struct ApiAuth {
    tokens: Arc<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the tokens themselves.
        write!(f, "ApiAuth({} tokens)", self.tokens.len())
    }
}

impl ApiAuth {
    pub fn new(tokens: impl IntoIterator<Item = String>) -> Self {
        Self {
            tokens: Arc::new(
                tokens
                    .into_iter()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .map(String::into_bytes)
                    .collect(),
            ),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Compares against every configured token in constant time per token, without
    /// stopping at the first match, so timing tells nothing about which token matched.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let mut matched = subtle::Choice::from(0);
        for token in self.tokens.iter() {
            matched |= token.as_slice().ct_eq(presented);
        }
        matched.into()
    }
}

pub async fn require_bearer(
    State(auth): State<ApiAuth>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if !auth.is_enabled() {
        return Ok(next.run(request).await);
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match presented {
        Some(token) if auth.accepts(token.as_bytes()) => Ok(next.run(request).await),
        _ => Err(ApiError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_configured_tokens() {
        let auth = ApiAuth::new(["alpha".to_owned(), "beta-token".to_owned()]);
        assert!(auth.is_enabled());
        assert!(auth.accepts(b"alpha"));
        assert!(auth.accepts(b"beta-token"));
        assert!(!auth.accepts(b"alph"));
        assert!(!auth.accepts(b"alphaa"));
        assert!(!auth.accepts(b""));
        assert!(!ApiAuth::default().is_enabled());
        assert!(!format!("{auth:?}").contains("alpha"));
    }
}
