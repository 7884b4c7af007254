//! The status page (`/ui`) on both stores: what each page shows, that every value a writer
//! controls comes out escaped under a strict policy, keyset paging, search, Basic
//! authentication, and `--ui false`. The router runs in process on a real store, after a
//! real scan published the snapshot the fleet views read.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Map};
use syncwatch::api::{self, ApiAuth, ApiSettings};
use syncwatch::clock::SystemClock;
use syncwatch::domain::Action;
use syncwatch::metrics::Metrics;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::Lease;
use syncwatch::test_support::CONTENT_SECURITY_POLICY;
use tower::ServiceExt;
use uuid::Uuid;

use common::{record_run, Backend, TestDb};

const HOSTILE_ERROR: &str = "<script>alert(1)</script> & \"quoted\" 'x'";
const HOSTILE_KEY: &str = "<img src=x onerror=alert(2)>";
const HOSTILE_VALUE: &str = "</pre><script>alert(3)</script>";
const HOSTILE_TASK: &str = "task-<b>bold</b>\"'&";
/// Runs of the connection whose history takes several pages.
const PAGED_RUNS: usize = 120;

struct Fixture {
    db: TestDb,
    metrics: Metrics,
    /// hubspot: a success, then two failures, the last with every hostile value.
    failing: Uuid,
    hostile_run: Uuid,
    /// stripe: many successful runs.
    paged: Uuid,
    paged_runs: Vec<Uuid>,
    /// jira: one failure the built-in rules call `auth`.
    auth_failing: Uuid,
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    let db = TestDb::new(backend).await?;
    let store = &db.store;
    let failing = Uuid::new_v4();
    record_run(store, failing, "hubspot", Action::Succeed, None, None, None).await;
    record_run(
        store,
        failing,
        "hubspot",
        Action::Fail,
        Some("upstream returned status 503"),
        None,
        None,
    )
    .await;
    let mut metadata = Map::new();
    metadata.insert(HOSTILE_KEY.to_owned(), json!(HOSTILE_VALUE));
    metadata.insert("records_synced".to_owned(), json!(0));
    let hostile_run = record_run(
        store,
        failing,
        "hubspot",
        Action::Fail,
        Some(HOSTILE_ERROR),
        Some(metadata),
        Some(HOSTILE_TASK),
    )
    .await;
    let paged = Uuid::new_v4();
    let mut paged_runs = Vec::new();
    for _ in 0..PAGED_RUNS {
        paged_runs
            .push(record_run(store, paged, "stripe", Action::Succeed, None, None, None).await);
    }
    paged_runs.reverse();
    let auth_failing = Uuid::new_v4();
    record_run(
        store,
        auth_failing,
        "jira",
        Action::Fail,
        Some("HTTP 401 Unauthorized: token revoked"),
        None,
        None,
    )
    .await;

    let metrics = Metrics::new();
    let mut scanner = Scanner::new(
        store.clone(),
        Lease::Always,
        ScanConfig::default(),
        Arc::new(SystemClock),
        metrics.clone(),
    );
    while scanner.scan_once().await.expect("scan").building {}
    Some(Fixture {
        db,
        metrics,
        failing,
        hostile_run,
        paged,
        paged_runs,
        auth_failing,
    })
}

fn router(f: &Fixture, settings: ApiSettings) -> Router {
    api::router(f.db.store.clone(), &settings, f.metrics.clone(), None)
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get_with(router: &Router, path: &str, authorization: Option<&str>) -> Page {
    request_with(router, "GET", path, authorization).await
}

async fn request_with(
    router: &Router,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> Page {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Page {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).expect("pages are UTF-8"),
    }
}

async fn get(router: &Router, path: &str) -> Page {
    get_with(router, path, None).await
}

/// Every response of the page: the policy and the other headers, and no markup a writer
/// could have injected (no element from the hostile values, which all contain one).
fn assert_safe(page: &Page, path: &str) {
    let header = |name: header::HeaderName| {
        page.headers
            .get(&name)
            .unwrap_or_else(|| panic!("{path}: no {name} header"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        header(header::CONTENT_SECURITY_POLICY),
        CONTENT_SECURITY_POLICY,
        "{path}"
    );
    assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'self'"));
    assert_eq!(header(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{path}");
    assert_eq!(header(header::X_FRAME_OPTIONS), "DENY", "{path}");
    for raw in ["<script", "<img", "<b>", "onerror=alert(2)>"] {
        assert!(
            !page.body.contains(raw),
            "{path} carries {raw:?} unescaped:\n{}",
            page.body
        );
    }
}

/// `text` as the templates escape it (numeric character references).
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Every `href` on a page that starts with `prefix`, in order (entities decoded).
fn links(body: &str, prefix: &str) -> Vec<String> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&#38;", "&"))
        .filter(|href| href.starts_with(prefix))
        .collect()
}

async fn pages_show_the_table_escaped(backend: Backend) {
    let Some(f) = fixture(backend).await else {
        return;
    };
    let ui = router(&f, ApiSettings::default());

    // The overview: each connector, worst first.
    let overview = get(&ui, "/ui").await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    assert_safe(&overview, "/ui");
    let order: Vec<&str> = ["hubspot", "jira", "stripe"]
        .into_iter()
        .map(|c| {
            let at = overview
                .body
                .find(&format!(">{c}</a>"))
                .unwrap_or_else(|| panic!("{c} missing from the overview"));
            (at, c)
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect();
    assert_eq!(
        order.last(),
        Some(&"stripe"),
        "a healthy connector sorts last"
    );
    assert!(overview.body.contains("2 failing connections"));

    // Failing connections: both, hubspot (2 in a row) before jira (1), with the latest
    // error as text and its reason class.
    let failing = get(&ui, "/ui/failing").await;
    assert_eq!(failing.status, StatusCode::OK);
    assert_safe(&failing, "/ui/failing");
    let hubspot_at = failing.body.find(&f.failing.to_string()).unwrap();
    let jira_at = failing.body.find(&f.auth_failing.to_string()).unwrap();
    assert!(hubspot_at < jira_at, "most consecutive failures first");
    assert!(
        failing.body.contains(&escaped(HOSTILE_ERROR)),
        "the latest error shows as text"
    );
    assert!(failing.body.contains(">auth</span>"), "{}", failing.body);
    assert!(!failing.body.contains(&f.paged.to_string()));
    assert!(failing.body.contains(">2</td>"), "two consecutive failures");
    let only_jira = get(&ui, "/ui/failing?connector=jira").await;
    assert!(only_jira.body.contains(&f.auth_failing.to_string()));
    assert!(!only_jira.body.contains(&f.failing.to_string()));
    assert!(only_jira.body.contains("<option value=\"jira\" selected>"));

    // Links: failing → connection → run.
    let to_connection = links(&failing.body, "/ui/connections/");
    assert!(to_connection.contains(&format!("/ui/connections/{}", f.failing)));
    let connection = get(&ui, &format!("/ui/connections/{}", f.failing)).await;
    assert_eq!(connection.status, StatusCode::OK);
    assert_safe(&connection, "a connection");
    for value in [HOSTILE_ERROR, HOSTILE_KEY, HOSTILE_VALUE] {
        assert!(
            connection.body.contains(&escaped(value)),
            "{value} shows escaped on the connection page"
        );
    }
    let runs = links(&connection.body, "/ui/runs/");
    assert_eq!(runs.len(), 3, "the connection's three runs");
    assert_eq!(
        runs[0],
        format!("/ui/runs/{}", f.hostile_run),
        "newest first"
    );
    let run = get(&ui, &runs[0]).await;
    assert_eq!(run.status, StatusCode::OK);
    assert_safe(&run, "a run");
    for value in [HOSTILE_ERROR, HOSTILE_KEY, HOSTILE_VALUE, HOSTILE_TASK] {
        assert!(
            run.body.contains(&escaped(value)),
            "{value} shows escaped on the run page"
        );
    }
    assert!(
        run.body.contains("&#34;records_synced&#34;: 0"),
        "metadata pretty-printed"
    );

    // A connection's runs, page by page, newest first, each once.
    let mut seen = Vec::new();
    let mut path = format!("/ui/connections/{}", f.paged);
    let mut pages = 0;
    loop {
        let page = get(&ui, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_safe(&page, &path);
        seen.extend(
            links(&page.body, "/ui/runs/")
                .iter()
                .map(|l| Uuid::parse_str(l.trim_start_matches("/ui/runs/")).unwrap()),
        );
        pages += 1;
        match links(&page.body, &format!("/ui/connections/{}?before=", f.paged)).first() {
            Some(next) => path = next.clone(),
            None => break,
        }
    }
    assert_eq!(
        pages,
        PAGED_RUNS.div_ceil(syncwatch::test_support::PAGE_SIZE)
    );
    assert_eq!(seen, f.paged_runs, "every run once, newest first");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), PAGED_RUNS);

    // Search: a cloud_task_id, a run id, a connection id, and nothing.
    let redirect = |page: &Page| {
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        page.headers[header::LOCATION].to_str().unwrap().to_owned()
    };
    let task: String = url::form_urlencoded::byte_serialize(HOSTILE_TASK.as_bytes()).collect();
    let by_task = get(&ui, &format!("/ui/failing?q={task}")).await;
    assert_eq!(redirect(&by_task), format!("/ui/runs/{}", f.hostile_run));
    let by_run = get(&ui, &format!("/ui/failing?q={}", f.hostile_run)).await;
    assert_eq!(redirect(&by_run), format!("/ui/runs/{}", f.hostile_run));
    let by_connection = get(&ui, &format!("/ui/failing?q=+{}+", f.paged)).await;
    assert_eq!(
        redirect(&by_connection),
        format!("/ui/connections/{}", f.paged)
    );
    let nothing = get(&ui, "/ui/failing?q=%3Cscript%3Enope").await;
    assert_eq!(nothing.status, StatusCode::OK);
    assert_safe(&nothing, "a search with no match");
    assert!(nothing.body.contains("no live run with cloud_task_id"));

    // What does not exist, and what is not an id.
    for (path, status) in [
        (
            format!("/ui/runs/{}", Uuid::new_v4()),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/ui/connections/{}", Uuid::new_v4()),
            StatusCode::NOT_FOUND,
        ),
        ("/ui/runs/%3Cscript%3E".to_owned(), StatusCode::BAD_REQUEST),
        ("/ui/connections/nope".to_owned(), StatusCode::BAD_REQUEST),
        (
            format!("/ui/connections/{}?before=%3Cb%3E", f.paged),
            StatusCode::BAD_REQUEST,
        ),
        ("/ui/failing?after=x".to_owned(), StatusCode::BAD_REQUEST),
    ] {
        let page = get(&ui, &path).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        assert_safe(&page, &path);
    }

    // The stylesheet is the page's own.
    let css = get(&ui, "/ui/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
}

#[tokio::test]
async fn pages_show_the_table_escaped_sqlite() {
    pages_show_the_table_escaped(Backend::Sqlite).await;
}

#[tokio::test]
async fn pages_show_the_table_escaped_postgres() {
    pages_show_the_table_escaped(Backend::Postgres).await;
}

#[tokio::test]
async fn with_tokens_the_page_asks_for_basic_credentials() {
    let Some(f) = fixture(Backend::Sqlite).await else {
        return;
    };
    let settings = ApiSettings {
        auth: ApiAuth::new(["first-token".to_owned(), "on-call-token".to_owned()]),
        ..ApiSettings::default()
    };
    let ui = router(&f, settings);
    let basic = |user: &str, password: &str| {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    };
    for path in ["/ui", "/ui/failing", "/ui/style.css"] {
        for credentials in [
            None,
            Some(basic("oncall", "wrong")),
            Some(basic("on-call-token", "")),
            Some("Basic not-base64!".to_owned()),
        ] {
            let page = get_with(&ui, path, credentials.as_deref()).await;
            assert_eq!(
                page.status,
                StatusCode::UNAUTHORIZED,
                "{path} {credentials:?}"
            );
            assert_eq!(
                page.headers[header::WWW_AUTHENTICATE],
                "Basic realm=\"syncwatch\", charset=\"UTF-8\""
            );
            assert_safe(&page, path);
            assert!(!page.body.contains("hubspot"), "nothing of the table leaks");
        }
        for credentials in [
            basic("oncall", "on-call-token"),
            basic("", "first-token"),
            "Bearer first-token".to_owned(),
        ] {
            let page = get_with(&ui, path, Some(&credentials)).await;
            assert_eq!(page.status, StatusCode::OK, "{path} {credentials}");
        }
    }
    // An unknown page and a method the page does not take: behind the same sign-in, and
    // then HTML pages with the same headers, not the API's JSON.
    let signed_in = basic("oncall", "on-call-token");
    for (method, path, status) in [
        ("GET", "/ui/x", StatusCode::NOT_FOUND),
        ("GET", "/ui/runs/a/b", StatusCode::NOT_FOUND),
        ("POST", "/ui", StatusCode::METHOD_NOT_ALLOWED),
        ("DELETE", "/ui/failing", StatusCode::METHOD_NOT_ALLOWED),
        (
            "GET",
            "/ui/failing?connector=a&connector=b",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let anonymous = request_with(&ui, method, path, None).await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        assert_safe(&anonymous, path);
        let page = request_with(&ui, method, path, Some(&signed_in)).await;
        assert_eq!(page.status, status, "{method} {path}");
        assert_safe(&page, path);
        assert!(
            page.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{method} {path}: {:?}",
            page.headers
        );
    }
}

#[tokio::test]
async fn the_page_can_be_turned_off() {
    let Some(f) = fixture(Backend::Sqlite).await else {
        return;
    };
    let settings = ApiSettings {
        ui: false,
        ..ApiSettings::default()
    };
    let off = router(&f, settings);
    for path in ["/ui", "/ui/failing", "/ui/style.css"] {
        assert_eq!(
            get(&off, path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let on = router(&f, ApiSettings::default());
    assert_eq!(get(&on, "/ui").await.status, StatusCode::OK);
}

#[tokio::test]
async fn links_carry_the_public_url_path() {
    let Some(f) = fixture(Backend::Sqlite).await else {
        return;
    };
    let settings = ApiSettings {
        public_url: Some("https://ops.example.com/syncwatch/".parse().unwrap()),
        ..ApiSettings::default()
    };
    let ui = router(&f, settings);
    let page = get(&ui, "/ui/failing").await;
    assert!(page.body.contains("href=\"/syncwatch/ui/style.css\""));
    assert!(page
        .body
        .contains(&format!("href=\"/syncwatch/ui/connections/{}\"", f.failing)));
    assert!(
        links(&page.body, "/ui/").is_empty(),
        "every link has the prefix"
    );
}

#[tokio::test]
async fn a_replica_without_the_lease_says_so() {
    let Some(f) = fixture(Backend::Sqlite).await else {
        return;
    };
    // A fresh registry: nothing published, as on a replica that does not lead (a new
    // one each time: the page keeps what it read of the saved states for a while).
    let not_leading = || {
        api::router(
            f.db.store.clone(),
            &ApiSettings::default(),
            Metrics::new(),
            None,
        )
    };
    let standby = not_leading();
    let page = get(&standby, "/ui").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("does not hold the scanner lease"));
    assert!(
        page.body.contains(">hubspot</a>"),
        "the 24-hour runs still show"
    );
    let failing = get(&standby, "/ui/failing").await;
    assert!(failing.body.contains("does not hold the scanner lease"));
    let led = get(&router(&f, ApiSettings::default()), "/ui").await;
    assert!(!led.body.contains("does not hold the scanner lease"));

    // Once the leader has saved a checkpoint, its connection states give the failing
    // connections on every replica.
    let saving = ScanConfig {
        checkpoint_interval: std::time::Duration::ZERO,
        ..ScanConfig::default()
    };
    let mut scanner = common::scan::scanner(&f.db, saving, Arc::new(SystemClock));
    loop {
        let report = scanner.scan_once().await.expect("scan");
        if !report.building && !report.learning {
            break;
        }
    }
    scanner.scan_once().await.expect("scan");
    let standby = not_leading();
    let failing = get(&standby, "/ui/failing").await;
    assert!(
        failing.body.contains("saved with its last checkpoint"),
        "{}",
        failing.body
    );
    for id in [f.failing, f.auth_failing] {
        assert!(failing.body.contains(&id.to_string()), "{id} listed");
    }
    assert!(
        !failing.body.contains(&f.paged.to_string()),
        "a healthy connection is not"
    );
    let led_failing = get(&router(&f, ApiSettings::default()), "/ui/failing").await;
    let ids = |body: &str| links(body, "/ui/connections/");
    assert_eq!(
        ids(&failing.body),
        ids(&led_failing.body),
        "the leader's list"
    );
    let page = get(&standby, "/ui").await;
    assert!(page.body.contains("saved with its last checkpoint"));
    assert!(page.body.contains("2 failing connections"), "{}", page.body);
}
