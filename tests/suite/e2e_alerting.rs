//! End to end: the real binary, a real Prometheus with the shipped rules, a real
//! Alertmanager with the shipped example configuration, and a webhook receiver run by
//! this test. One connector is driven into repeated failure through the API (a provider
//! outage): the page arrives with its labels and annotations; driven back to success, it
//! resolves. Another fails as often for a reason only the customer can fix (a revoked
//! token): it never pages, and its ticket arrives instead.
//!
//! The rules are the mixin's (mixin/) for a scrape job named `connector-sync`, not the
//! default `syncwatch`: the page and the ticket prove the selector reaches the expressions
//! and the queries the annotations run. Only timings are changed, by a script over copies:
//! every `for:` becomes 0s and Alertmanager's group timings become short.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Json;
use common::{free_port, in_ci, run_through_api, ChildGuard, Server};
use serde_json::{json, Value};
use uuid::Uuid;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PROMETHEUS: &str = "/usr/bin/prometheus";
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

fn spawn(program: &str, args: &[String]) -> ChildGuard {
    ChildGuard(
        Command::new(program)
            .args(args)
            .env_remove("SYNCWATCH_API_TOKENS")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}")),
    )
}

/// (receiver path, notification) pairs the webhook got.
type Inbox = Arc<Mutex<Vec<(String, Value)>>>;

async fn start_webhook(inbox: Inbox) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let route = |path: &'static str, inbox: Inbox| {
        post(move |Json(body): Json<Value>| {
            let inbox = inbox.clone();
            async move {
                inbox.lock().unwrap().push((path.to_owned(), body));
                "ok"
            }
        })
    };
    let app = axum::Router::new()
        .route("/pager", route("/pager", inbox.clone()))
        .route("/ticket", route("/ticket", inbox));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// The alert `name` for `connector` with `status` (firing | resolved) as delivered to
/// `receiver`, if it arrived.
fn delivered(
    inbox: &Inbox,
    receiver: &str,
    name: &str,
    connector: &str,
    status: &str,
) -> Option<Value> {
    inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _)| path == receiver)
        .flat_map(|(_, body)| body["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| {
            a["labels"]["alertname"] == name
                && a["labels"]["connector"] == connector
                && a["status"] == status
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_connector_pages_and_resolves_and_customer_failures_do_not_page() {
    for tool in [PROMETHEUS, ALERTMANAGER] {
        if !Path::new(tool).exists() {
            let reason = format!("{tool} is missing; scripts/test installs Debian's prometheus and prometheus-alertmanager");
            assert!(!in_ci(), "{reason}");
            eprintln!("SKIPPED: {reason}");
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let inbox: Inbox = Arc::default();
    let hook = start_webhook(inbox.clone()).await;
    let (api, metrics, prom, am) = (free_port(), free_port(), free_port(), free_port());

    // The mixin's rules for a job not named syncwatch (the selector must reach every
    // expression and every query the annotations run), with short timings.
    let job = crate::mixin::CUSTOM_JOB;
    let Some(generated) = crate::mixin::render(Some(&format!(r#"job="{job}""#))) else {
        return;
    };
    let for_clause = regex::Regex::new(r"(?m)^(\s*)for:\s*\S+").unwrap();
    let rules = dir.path().join("syncwatch.rules.yml");
    std::fs::write(
        &rules,
        for_clause
            .replace_all(&generated["alerts/syncwatch.rules.yml"], "${1}for: 0s")
            .as_ref(),
    )
    .unwrap();
    let rule_paths = [rules];
    let example =
        std::fs::read_to_string(Path::new(ROOT).join("alerts/alertmanager.example.yml")).unwrap();
    let timing = regex::Regex::new(r"(?m)^(\s*)(group_wait|group_interval):\s*\S+").unwrap();
    let am_config = timing
        .replace_all(&example, "${1}${2}: 1s")
        .replace("http://127.0.0.1:9095", &format!("http://127.0.0.1:{hook}"));
    assert!(
        am_config.contains(&format!("127.0.0.1:{hook}")),
        "the example's webhook URLs are http://127.0.0.1:9095/…"
    );
    let am_file = dir.path().join("alertmanager.yml");
    std::fs::write(&am_file, am_config).unwrap();
    let prom_file = dir.path().join("prometheus.yml");
    let rule_list: Vec<String> = rule_paths
        .iter()
        .map(|p| format!("  - {}", p.display()))
        .collect();
    std::fs::write(
        &prom_file,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{}\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am}']\n\
             scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{metrics}']\n",
            rule_list.join("\n")
        ),
    )
    .unwrap();

    let database_url = format!("sqlite://{}", dir.path().join("alerting.db").display());
    let public_url = format!("http://127.0.0.1:{api}/");
    let _syncwatch = Server::start_on(
        &database_url,
        api,
        metrics,
        &["--scan-interval", "1s", "--public-url", &public_url],
    )
    .await;
    let _alertmanager = spawn(
        ALERTMANAGER,
        &[
            format!("--config.file={}", am_file.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am}"),
            "--cluster.listen-address=".into(),
        ],
    );
    let _prometheus = spawn(
        PROMETHEUS,
        &[
            format!("--config.file={}", prom_file.display()),
            format!("--storage.tsdb.path={}", dir.path().join("prom").display()),
            format!("--web.listen-address=127.0.0.1:{prom}"),
        ],
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{api}");
    for url in [
        format!("{base}/readyz"),
        format!("http://127.0.0.1:{am}/-/ready"),
        format!("http://127.0.0.1:{prom}/-/ready"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "{url} never became ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let (connection, customer_connection) = (Uuid::new_v4(), Uuid::new_v4());
    let run = |connection: Uuid,
               connector: &'static str,
               outcome: &'static str,
               error: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let create = json!({"workspace_connector_id": connection, "connector_slug": connector,
                                "trigger_type": "cloud_task", "cloud_task_id": Uuid::new_v4().to_string()});
            run_through_api(&client, &base, create, outcome, error).await;
        }
    };
    // The platform's failure (a provider outage: owner provider) pages; the same storm of
    // failures only the customer can fix (a revoked token: owner customer) does not, and
    // raises a ticket instead.
    let finish = |outcome: &'static str| {
        run(
            connection,
            "hubspot",
            outcome,
            "upstream returned status 503",
        )
    };
    let customer_failure = || {
        run(
            customer_connection,
            "salesforce",
            "fail",
            "401 Unauthorized: token revoked",
        )
    };
    // A healthy connector alongside, which must not page.
    let healthy = Uuid::new_v4();
    run_through_api(
        &client,
        &base,
        json!({"workspace_connector_id": healthy, "connector_slug": "stripe", "status": "in_progress"}),
        "succeed",
        "",
    )
    .await;

    // Repeated failure: keep failing until the page arrives (rates need a few scrapes).
    let deadline = Instant::now() + Duration::from_secs(90);
    let page = loop {
        finish("fail").await;
        customer_failure().await;
        if let Some(alert) = delivered(
            &inbox,
            "/pager",
            "ConnectorSyncErrorBudgetBurn",
            "hubspot",
            "firing",
        ) {
            break alert;
        }
        assert!(
            Instant::now() < deadline,
            "no page arrived: {:?}",
            inbox.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(page["labels"]["severity"], "critical");
    // The page links to the connector's failing connections on the status page, built by
    // Prometheus from syncwatch_ui_info; the link answers.
    let status_url = page["annotations"]["status_url"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        status_url,
        format!("http://127.0.0.1:{api}/ui/failing?connector=hubspot"),
        "{page}"
    );
    let linked = reqwest::get(status_url).await.unwrap();
    assert_eq!(linked.status(), 200);
    assert!(linked
        .text()
        .await
        .unwrap()
        .contains("Failing connections of hubspot"));
    for key in ["summary", "description", "runbook_url", "dashboard_url"] {
        assert!(
            page["annotations"][key]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{key} in {page}"
        );
    }
    assert!(page["annotations"]["description"]
        .as_str()
        .unwrap()
        .contains("hubspot"));
    assert!(page["annotations"]["runbook_url"]
        .as_str()
        .unwrap()
        .contains("runbooks.md#connectorsyncerrorbudgetburn"));
    assert!(
        delivered(
            &inbox,
            "/pager",
            "ConnectorSyncErrorBudgetBurn",
            "stripe",
            "firing"
        )
        .is_none(),
        "the healthy connector paged"
    );
    // The customer-owned storm: as many failures as hubspot's, every run failing, no page;
    // its ticket names the reason.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ticket = loop {
        if let Some(alert) = delivered(
            &inbox,
            "/ticket",
            "ConnectorSyncCustomerActionNeeded",
            "salesforce",
            "firing",
        ) {
            break alert;
        }
        assert!(
            Instant::now() < deadline,
            "no ticket for the customer failures"
        );
        customer_failure().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(ticket["labels"]["reason"], "auth");
    // Its description lists the connection failing in a row, from the query it runs with
    // the job selector.
    let listed = ticket["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        listed.contains(&format!("failing in a row: {customer_connection} (")),
        "{ticket}"
    );
    assert!(
        delivered(
            &inbox,
            "/pager",
            "ConnectorSyncErrorBudgetBurn",
            "salesforce",
            "firing"
        )
        .is_none(),
        "failures only the customer can fix paged: {:?}",
        inbox.lock().unwrap()
    );

    // Back to success: the error ratios fall below every threshold and the page resolves.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        finish("succeed").await;
        if delivered(
            &inbox,
            "/pager",
            "ConnectorSyncErrorBudgetBurn",
            "hubspot",
            "resolved",
        )
        .is_some()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the page never resolved");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
