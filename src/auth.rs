//! Bearer tokens: the configured set, compared in constant time, and the one parser of
//! an `Authorization: Bearer …` header, shared by the API and the metrics listener.

use std::sync::Arc;

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

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

    fn is_enabled(&self) -> bool {
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

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl ApiAuth {
    /// Whether a request may pass: authentication is off, or it presents a known token.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        !self.is_enabled() || bearer_token(headers).is_some_and(|t| self.accepts(t.as_bytes()))
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

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let auth = ApiAuth::new(["alpha".to_owned()]);
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, value.parse().unwrap());
            h
        };
        assert!(auth.admits(&headers("Bearer alpha")));
        assert!(auth.admits(&headers("bearer alpha")));
        assert!(!auth.admits(&headers("Basic alpha")));
        assert!(!auth.admits(&headers("Bearer beta")));
        assert!(!auth.admits(&HeaderMap::new()));
        assert!(ApiAuth::default().admits(&HeaderMap::new()));
    }
}
