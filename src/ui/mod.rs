//! The status page: read-only HTML under `/ui` on the API listener, for the engineer an
//! alert just paged. Server-rendered from compiled templates (`templates/ui/`), escaped
//! by default, one stylesheet of its own, no script.
//!
//! Where each page's data comes from, so every read is bounded whatever the history:
//! - fleet-wide views (the overview's signals, the failing connections) from the scanner's
//!   published snapshot — the same state the metrics and the alerts come from — plus one
//!   aggregate of the last 24 h by `completed_at`, cached for [`OUTCOMES_TTL`];
//! - a failing connection's details, a connection's runs (keyset pages) and a run, from
//!   the table by its indexes.
//!
//! Every response carries a strict `Content-Security-Policy`; with API tokens configured
//! the page asks for HTTP Basic credentials whose password is one of them.

mod failing;
mod fleet;
mod format;
mod history;
mod render;
mod saved;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, MethodRouter};
use axum::Router;
use base64::Engine as _;

use crate::auth::ApiAuth;
use crate::domain::FailureRules;
use crate::metrics::Metrics;
use crate::store::{ConnectorOutcomes, Store};

use format::utc;

/// How long the overview's 24-hour outcomes are reused before they are read again.
const OUTCOMES_TTL: Duration = Duration::from_secs(15);

/// Rows on a page of failing connections or of a connection's runs.
pub(crate) const PAGE_SIZE: usize = 50;

/// The policy on every response: nothing but this origin's own stylesheet and links; no
/// script at all, no framing, forms only to this origin.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The page's external base URL (`--public-url`): scheme, host, optional path prefix,
/// without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path prefix links start with (`/syncwatch` for `https://host/syncwatch`).
    fn path_prefix(&self) -> String {
        url::Url::parse(&self.0)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }
}

impl std::str::FromStr for PublicUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = url::Url::parse(text.trim())
            .map_err(|e| format!("not an absolute URL ({e}): {text:?}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("the scheme must be http or https: {text:?}"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("the URL has no host: {text:?}"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!(
                "the URL may not carry a query or fragment: {text:?}"
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!("the URL may not carry credentials: {text:?}"));
        }
        Ok(Self(parsed.as_str().trim_end_matches('/').to_owned()))
    }
}

/// The overview's last read of the 24-hour outcomes, and when it was made.
type OutcomesCache = tokio::sync::Mutex<Option<(Instant, Arc<Vec<ConnectorOutcomes>>)>>;

/// What the pages read.
#[derive(Clone)]
pub struct UiState {
    store: Store,
    metrics: Metrics,
    rules: Arc<FailureRules>,
    /// Path prefix of every link (from `--public-url`; empty when unset).
    base: Arc<str>,
    outcomes: Arc<OutcomesCache>,
    /// The leader's saved connection states, on a replica that does not lead.
    saved: Arc<saved::SavedCache>,
}

impl UiState {
    pub fn new(
        store: Store,
        metrics: Metrics,
        rules: Arc<FailureRules>,
        public_url: Option<&PublicUrl>,
    ) -> Self {
        Self {
            store,
            metrics,
            rules,
            base: public_url
                .map(PublicUrl::path_prefix)
                .unwrap_or_default()
                .into(),
            outcomes: Arc::default(),
            saved: Arc::default(),
        }
    }

    /// Each connector's outcomes over the last 24 h, read at most once per
    /// [`OUTCOMES_TTL`] however often the overview is loaded.
    async fn outcomes_24h(&self) -> crate::store::Result<Arc<Vec<ConnectorOutcomes>>> {
        let mut cached = self.outcomes.lock().await;
        if let Some((at, outcomes)) = cached.as_ref() {
            if at.elapsed() < OUTCOMES_TTL {
                return Ok(outcomes.clone());
            }
        }
        let since = self.store.scan().db_now().await? - chrono::Duration::hours(24);
        let outcomes = Arc::new(self.store.pages().outcomes_since(since).await?);
        *cached = Some((Instant::now(), outcomes.clone()));
        Ok(outcomes)
    }
}

/// The status page's routes, behind Basic authentication when `auth` has tokens, every
/// response with the security headers.
pub fn router<S: Clone + Send + Sync + 'static>(state: UiState, auth: ApiAuth) -> Router<S> {
    // Every path under /ui, and every method, is the status page's: an unknown page or a
    // method other than GET is an HTML page with the same headers, behind the same sign-in.
    Router::new()
        .route("/ui", page(fleet::overview))
        .route("/ui/failing", page(failing::failing))
        .route("/ui/connections/{id}", page(history::connection))
        .route("/ui/runs/{id}", page(history::run))
        .route(
            "/ui/style.css",
            get(stylesheet).fallback(method_not_allowed),
        )
        .route("/ui/{*rest}", any(not_found))
        .route_layer(from_fn_with_state(auth, require_basic))
        .layer(from_fn(security_headers))
        .with_state(state)
}

/// A page's route: GET (and HEAD), any other method answered by [`method_not_allowed`].
fn page<H, T>(handler: H) -> MethodRouter<UiState>
where
    H: Handler<T, UiState>,
    T: 'static,
{
    get(handler).fallback(method_not_allowed)
}

async fn not_found() -> Response {
    render::message_page(StatusCode::NOT_FOUND, "Not found", "There is no such page.")
}

async fn method_not_allowed() -> Response {
    let mut page = render::message_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "The status page only shows pages (GET).",
    );
    page.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    page
}

const STYLESHEET: &str = include_str!("style.css");

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The password of an `Authorization: Basic …` header (any user name).
fn basic_password(headers: &axum::http::HeaderMap) -> Option<Vec<u8>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// With tokens configured: Basic credentials whose password is a token (the browser
/// prompts for them), or the API's bearer token; otherwise 401 with the challenge.
async fn require_basic(State(auth): State<ApiAuth>, request: Request, next: Next) -> Response {
    let admitted = auth.admits(request.headers())
        || basic_password(request.headers()).is_some_and(|p| auth.accepts(&p));
    if admitted {
        return next.run(request).await;
    }
    let mut response = render::message_page(
        StatusCode::UNAUTHORIZED,
        "Sign in",
        "The status page needs credentials: any user name, and one of the API tokens as the password.",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"syncwatch\", charset=\"UTF-8\""),
    );
    response
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_absolute_http_without_extras() {
        let url: PublicUrl = "https://ops.example.com/syncwatch/".parse().unwrap();
        assert_eq!(url.as_str(), "https://ops.example.com/syncwatch");
        assert_eq!(url.path_prefix(), "/syncwatch");
        let root: PublicUrl = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!(root.as_str(), "http://127.0.0.1:8080");
        assert_eq!(root.path_prefix(), "");
        for bad in [
            "ops.example.com",
            "ftp://ops.example.com",
            "https://ops.example.com/?x=1",
            "https://ops.example.com/#top",
            "https://user:pw@ops.example.com",
            "",
        ] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn basic_credentials_yield_the_password() {
        let mut headers = axum::http::HeaderMap::new();
        // "oncall:s3cret:with-colon"
        headers.insert(
            header::AUTHORIZATION,
            "Basic b25jYWxsOnMzY3JldDp3aXRoLWNvbG9u".parse().unwrap(),
        );
        assert_eq!(
            basic_password(&headers).as_deref(),
            Some(&b"s3cret:with-colon"[..])
        );
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_password(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_password(&headers), None);
    }
}
