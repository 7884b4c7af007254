//! The status page in a real browser: headless Chromium (driven through Debian's
//! `chromedriver`) against the real binary, on a store the demo fleet filled plus a run
//! whose every writer-controlled value is hostile. Follows the links overview → failing
//! connections → connection → run, reads what a person would see, checks that no script
//! ran, and saves a screenshot of each page under `target/ui-screenshots/`.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map};
use syncwatch::domain::Action;
use syncwatch_tools::demo::{self, DemoConfig};
use uuid::Uuid;

use common::webdriver::Driver;
use common::{family_sum, record_run, require_tool, wait_until, Backend, Server, TestDb};

const TOKEN: &str = "browser-test-token";
const HOSTILE_ERROR: &str = "<script>alert(1)</script> & \"quoted\" 'x'";
const HOSTILE_KEY: &str = "<img src=x onerror=alert(2)>";
const HOSTILE_VALUE: &str = "</pre><script>alert(3)</script>";
const HOSTILE_TASK: &str = "task-<b>bold</b>";

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/")
        .join("ui-screenshots")
}

#[tokio::test]
async fn a_browser_follows_a_failing_connection_to_its_error() {
    let (Some(chromium), Some(chromedriver)) =
        (require_tool("chromium"), require_tool("chromedriver"))
    else {
        return;
    };
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let config = DemoConfig {
        tick: Duration::from_millis(2),
        ticks: Some(300),
        failure_rate: 0.1,
        ..DemoConfig::default()
    };
    demo::run(db.store.clone(), &config, std::future::pending())
        .await
        .expect("the demo fleet runs");
    let hostile_connection = Uuid::new_v4();
    let mut metadata = Map::new();
    metadata.insert(HOSTILE_KEY.to_owned(), json!(HOSTILE_VALUE));
    for error in ["upstream returned status 503", HOSTILE_ERROR] {
        let task = (error == HOSTILE_ERROR).then_some(HOSTILE_TASK);
        let md = (error == HOSTILE_ERROR).then(|| metadata.clone());
        record_run(
            &db.store,
            hostile_connection,
            "hubspot",
            Action::Fail,
            Some(error),
            md,
            task,
        )
        .await;
    }

    let server = Server::start(
        &db.url.to_string(),
        &["--api-tokens", TOKEN, "--scan-interval", "1s"],
    )
    .await;
    wait_until(
        "the first scan publishes",
        Duration::from_secs(30),
        async || family_sum(&server.scrape().await, "connector_sync_failing_connections") > 0.0,
    )
    .await;

    // Without credentials: 401 with the Basic challenge the browser prompts with.
    let anonymous = reqwest::get(format!("{}/ui", server.api)).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"syncwatch\", charset=\"UTF-8\""
    );

    let driver = Driver::start(&chromedriver).await;
    let browser = driver.session(&chromium).await;
    let shots = screenshots();
    browser.goto(&format!("{}/ui", server.api)).await;
    assert_ne!(
        browser.title().await,
        "Connectors · syncwatch",
        "no page without credentials"
    );
    let host = server.api.trim_start_matches("http://");
    browser
        .goto(&format!("http://oncall:{TOKEN}@{host}/ui"))
        .await;

    // Overview: every demo connector, the failing ones first.
    assert_eq!(browser.title().await, "Connectors · syncwatch");
    let connectors = browser.find_all("table.connectors tbody th a").await;
    assert_eq!(connectors.len(), config.connectors, "one row per connector");
    let mut names = Vec::new();
    for connector in &connectors {
        names.push(browser.text(connector).await);
    }
    assert!(names.contains(&"hubspot".to_owned()), "{names:?}");
    browser.screenshot(&shots.join("overview.png")).await;

    // Failing connections: the hostile connection's latest error, as text.
    browser
        .click(&browser.find("nav a[href$='/ui/failing']").await)
        .await;
    assert_eq!(browser.title().await, "Failing connections · syncwatch");
    let link = browser
        .find(&format!("a[href$='/ui/connections/{hostile_connection}']"))
        .await;
    let mut shown = None;
    for (i, cell) in browser
        .find_all("table.failing tbody td:first-child")
        .await
        .iter()
        .enumerate()
    {
        if browser.text(cell).await == hostile_connection.to_string() {
            shown = Some(i);
        }
    }
    let row = shown.expect("the hostile connection is listed");
    let errors = browser.find_all("table.failing tbody tr pre.error").await;
    assert_eq!(browser.text(&errors[row]).await, HOSTILE_ERROR);
    browser.screenshot(&shots.join("failing.png")).await;

    // Its connection page: both runs, newest first, error and metadata as text.
    browser.click(&link).await;
    assert!(browser
        .current_url()
        .await
        .ends_with(&format!("/ui/connections/{hostile_connection}")));
    let statuses = browser.find_all("table.runs tbody .status").await;
    assert_eq!(statuses.len(), 2);
    assert_eq!(browser.text(&statuses[0]).await, "error");
    let metadata = browser.find("table.runs tbody code.metadata").await;
    let metadata_text = browser.text(&metadata).await;
    assert!(metadata_text.contains(HOSTILE_KEY), "{metadata_text}");
    assert!(metadata_text.contains(HOSTILE_VALUE), "{metadata_text}");
    browser.screenshot(&shots.join("connection.png")).await;

    // The run: every column.
    browser
        .click(&browser.find("table.runs tbody a.id").await)
        .await;
    assert_eq!(browser.title().await, "Run · syncwatch");
    assert_eq!(
        browser.text(&browser.find("dl.run pre.error").await).await,
        HOSTILE_ERROR
    );
    let pretty = browser
        .text(&browser.find("dl.run pre.metadata").await)
        .await;
    assert!(
        pretty.contains(&format!("\"{HOSTILE_KEY}\": \"{HOSTILE_VALUE}\"")),
        "{pretty}"
    );
    assert_eq!(
        browser.text(&browser.find("dl.run dd code").await).await,
        HOSTILE_TASK
    );
    let stylesheet = browser.find("link[rel=stylesheet]").await;
    assert!(browser
        .attribute(&stylesheet, "href")
        .await
        .is_some_and(|h| h.ends_with("/ui/style.css")));
    browser.screenshot(&shots.join("run.png")).await;

    // No hostile value ran as script on any page.
    assert_eq!(browser.open_alert().await, None);
    assert!(browser.find_all("script").await.is_empty());
    browser.quit().await;
    drop(server);
}
