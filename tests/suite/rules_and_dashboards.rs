//! The shipped alert rules and dashboards, against real Prometheus tooling: promtool
//! checks and unit tests of the rules, amtool on the Alertmanager example, every
//! dashboard expression parsed by promtool, and every metric they name really exported.

use crate::common;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{require_tool, Backend, TestDb};
use serde_json::Value;
use syncwatch::clock::Clock;
use syncwatch::metrics::Metrics;
use syncwatch::scan::{ScanConfig, Scanner};
use syncwatch::store::Lease;
use syncwatch::test_support::ManualClock;
use syncwatch::test_support::DOMAIN_FAMILIES;
use syncwatch_tools::demo::{self, DemoConfig};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join(dir))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Rule files: every YAML under alerts/ (and alerts/rules/) that has `groups:`.
fn rule_files() -> Vec<PathBuf> {
    let mut all = files("alerts", "yml");
    all.extend(files("alerts/rules", "yml"));
    all.extend(files("alerts", "yaml"));
    all.into_iter()
        .filter(|p| {
            std::fs::read_to_string(p)
                .is_ok_and(|t| t.lines().any(|l| l.trim_start().starts_with("groups:")))
        })
        .collect()
}

fn run(cmd: &mut Command) -> (bool, String) {
    let output = cmd.output().expect("run the tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    labels: serde_yaml_ng::Mapping,
    annotations: serde_yaml_ng::Mapping,
}

fn rules() -> Vec<Rule> {
    let mut out = Vec::new();
    for file in rule_files() {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for group in doc["groups"].as_sequence().unwrap() {
            for rule in group["rules"].as_sequence().unwrap() {
                let text = |k: &str| rule.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                let map = |k: &str| {
                    rule.get(k)
                        .and_then(|v| v.as_mapping())
                        .cloned()
                        .unwrap_or_default()
                };
                out.push(Rule {
                    alert: text("alert"),
                    record: text("record"),
                    expr: text("expr").unwrap_or_default(),
                    labels: map("labels"),
                    annotations: map("annotations"),
                });
            }
        }
    }
    out
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    let rule_files = rule_files();
    assert!(!rule_files.is_empty(), "no rule files under alerts/");
    let (ok, said) = run(Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .args(&rule_files));
    assert!(ok, "promtool check rules: {said}");
    let tests = files("alerts/tests", "yml");
    assert!(
        !tests.is_empty(),
        "no promtool unit tests under alerts/tests/"
    );
    let (ok, said) = run(Command::new(&promtool)
        .current_dir(Path::new(ROOT).join("alerts/tests"))
        .arg("test")
        .arg("rules")
        .args(&tests));
    assert!(ok, "promtool test rules: {said}");
}

#[test]
fn every_alert_is_routed_documented_and_unit_tested_both_ways() {
    let required = [
        "ConnectorSyncErrorBudgetBurn",
        "ConnectorSyncNoRecentSuccess",
        "ConnectorSyncStuckRuns",
        "ConnectorSyncScheduledBacklog",
        "ConnectorSyncConnectionFailing",
        "SyncwatchDown",
        "SyncwatchStoreUnreachable",
        "SyncwatchScanStale",
        "SyncwatchNoScannerLeader",
    ];
    let rules = rules();
    let alerts: BTreeSet<String> = rules.iter().filter_map(|r| r.alert.clone()).collect();
    for name in required {
        assert!(alerts.contains(name), "alert {name} is missing");
    }
    let runbooks = std::fs::read_to_string(Path::new(ROOT).join("docs/runbooks.md")).unwrap();
    let headings: HashSet<String> = runbooks
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_lowercase())
        .collect();
    for rule in rules.iter().filter(|r| r.alert.is_some()) {
        let name = rule.alert.as_deref().unwrap();
        let severity = rule.labels.get("severity").and_then(|v| v.as_str());
        assert!(
            matches!(severity, Some("critical" | "warning")),
            "{name}: severity {severity:?}"
        );
        for key in [
            "summary",
            "description",
            "runbook_url",
            "dashboard_url",
            "status_url",
        ] {
            assert!(rule.annotations.contains_key(key), "{name} lacks {key}");
        }
        let status_url = rule
            .annotations
            .get("status_url")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        assert!(
            status_url.contains("syncwatch_ui_info") && status_url.contains("/ui"),
            "{name}: status_url is built from syncwatch_ui_info: {status_url}"
        );
        let runbook = rule
            .annotations
            .get("runbook_url")
            .and_then(|v| v.as_str())
            .unwrap();
        let anchor = runbook.rsplit_once('#').map(|(_, a)| a).unwrap_or("");
        assert!(
            runbook.contains("docs/runbooks.md#") && headings.contains(anchor),
            "{name}: runbook_url {runbook} has no heading in docs/runbooks.md"
        );
    }
    // Each alert has a unit test case where it fires and one where it stays silent.
    let mut fires = HashSet::new();
    let mut silent = HashSet::new();
    for file in files("alerts/tests", "yml") {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for test in doc["tests"].as_sequence().into_iter().flatten() {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = case["alertname"].as_str().unwrap_or("").to_owned();
                let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
                if expected > 0 {
                    fires.insert(name);
                } else {
                    silent.insert(name);
                }
            }
        }
    }
    for name in &alerts {
        assert!(
            fires.contains(name),
            "{name} has no test case where it fires"
        );
        assert!(
            silent.contains(name),
            "{name} has no test case where it stays silent"
        );
    }
}

#[test]
fn the_alertmanager_example_passes_amtool() {
    let Some(amtool) = require_tool("amtool") else {
        return;
    };
    let example = Path::new(ROOT).join("alerts/alertmanager.example.yml");
    let (ok, said) = run(Command::new(amtool).arg("check-config").arg(&example));
    assert!(ok, "amtool check-config: {said}");
}

fn dashboards() -> Vec<(PathBuf, Value)> {
    let found: Vec<(PathBuf, Value)> = files("dashboards", "json")
        .into_iter()
        .map(|p| {
            let json = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, json)
        })
        .collect();
    assert!(found.len() >= 3, "three dashboards expected");
    found
}

fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// (dashboard, panel title, expr) of every query.
fn dashboard_exprs() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (path, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((
                        path.file_name().unwrap().to_string_lossy().into_owned(),
                        panel["title"].as_str().unwrap_or("").to_owned(),
                        expr.to_owned(),
                    ));
                }
            }
        }
    }
    out
}

/// Grafana's variables replaced by values PromQL accepts.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("${job}", ".+")
        .replace("$job", ".+")
        .replace("${instance}", ".+")
        .replace("$instance", ".+")
        .replace("${connector}", "x")
        .replace("$connector", "x")
}

#[test]
fn dashboards_follow_the_conventions() {
    let mut uids = HashSet::new();
    for (path, d) in dashboards() {
        let name = path.display().to_string();
        let uid = d["uid"].as_str().unwrap_or("");
        assert!((8..=40).contains(&uid.len()), "{name}: uid {uid:?}");
        assert!(uids.insert(uid.to_owned()), "{name}: duplicate uid");
        let vars: Vec<&Value> = d["templating"]["list"].as_array().unwrap().iter().collect();
        let var = |n: &str| vars.iter().find(|v| v["name"] == n).copied();
        assert_eq!(
            var("datasource").map(|v| v["type"].clone()),
            Some("datasource".into()),
            "{name}"
        );
        for v in ["job", "instance"] {
            let v = var(v).unwrap_or_else(|| panic!("{name}: no {v} variable"));
            assert_eq!(v["multi"], true, "{name}");
            assert_eq!(v["allValue"], ".+", "{name}");
        }
        for panel in panels(&d) {
            if panel["type"] == "row" {
                continue;
            }
            let title = panel["title"].as_str().unwrap_or("");
            assert!(!title.is_empty(), "{name}: a panel without a title");
            assert!(
                panel["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}/{title}: no description"
            );
            assert!(
                panel["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{name}/{title}: no unit"
            );
            assert_eq!(panel["datasource"]["uid"], "$datasource", "{name}/{title}");
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or("");
                assert!(!expr.is_empty(), "{name}/{title}: a target without expr");
                assert!(
                    !expr.contains("[5m]") && !expr.contains("[1m]"),
                    "{name}/{title}: use $__rate_interval: {expr}"
                );
                assert_counters_only_in_rate(expr, &format!("{name}/{title}"));
            }
        }
    }
}

/// `_total`, `_bucket`, `_count`, `_sum` series appear only inside rate-like functions.
fn assert_counters_only_in_rate(expr: &str, whose: &str) {
    let token = regex::Regex::new(r"[a-zA-Z_:][a-zA-Z0-9_:]*|\(|\)").unwrap();
    let mut stack: Vec<String> = Vec::new();
    let mut last_ident = String::new();
    for m in token.find_iter(expr) {
        match m.as_str() {
            "(" => {
                stack.push(std::mem::take(&mut last_ident));
            }
            ")" => {
                stack.pop();
            }
            ident => {
                let counter = ["_total", "_bucket", "_count", "_sum"]
                    .iter()
                    .any(|s| ident.ends_with(s))
                    && (ident.starts_with("connector_sync_") || ident.starts_with("syncwatch_"));
                if counter {
                    let inside = stack
                        .iter()
                        .any(|f| matches!(f.as_str(), "rate" | "irate" | "increase"));
                    assert!(inside, "{whose}: {ident} outside rate()/increase(): {expr}");
                }
                last_ident = ident.to_owned();
            }
        }
    }
}

#[test]
fn every_dashboard_expression_parses_with_promtool() {
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 20, "only {} queries", exprs.len());
    let mut yaml = String::from("groups:\n  - name: dashboard-expressions\n    rules:\n");
    for (i, (_, _, expr)) in exprs.iter().enumerate() {
        let quoted = serde_json::to_string(&substitute(expr)).unwrap();
        yaml.push_str(&format!(
            "      - record: dashboard:expr_{i}:check\n        expr: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-exprs.yml");
    std::fs::write(&file, yaml).unwrap();
    let (ok, said) = run(Command::new(promtool).arg("check").arg("rules").arg(&file));
    assert!(ok, "a dashboard expression does not parse: {said}");
}

/// Every metric a panel or rule names is exported by syncwatch (checked against a real
/// exposition of a demo-filled store) or defined by a recording rule; every contract
/// metric is used somewhere.
#[tokio::test]
async fn panels_and_rules_name_only_real_metrics_and_use_every_contract_metric() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let config = DemoConfig {
        tick: Duration::from_millis(1),
        max_run_ticks: 3,
        stuck_rate: 0.1,
        ticks: Some(60),
        ..DemoConfig::default()
    };
    demo::run(db.store.clone(), &config, std::future::pending())
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(db.store.scan().db_now().await.unwrap()));
    let metrics = Metrics::new();
    let mut scanner = Scanner::new(
        db.store.clone(),
        Lease::Always,
        ScanConfig::default(),
        clock as Arc<dyn Clock>,
        metrics.clone(),
    );
    scanner.scan_once().await.unwrap();
    metrics
        .http_requests
        .with_label_values(&["/v1/sync-logs", "GET", "200"])
        .inc();
    metrics
        .http_duration
        .with_label_values(&["/v1/sync-logs", "GET", "200"])
        .observe(0.01);
    let mut exported: HashSet<String> = metrics
        .render()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect();
    // A domain family with no series in this store state (no connection overdue in a
    // random demo, say) is still one syncwatch exports: the text writer leaves a family
    // without series out, so its declaration is the contract here
    // (`exposition_passes_promtool_check_metrics` checks each is written once it has series).
    for family in DOMAIN_FAMILIES {
        exported.insert(family.name.to_owned());
        if matches!(family.kind, prometheus::proto::MetricType::HISTOGRAM) {
            for suffix in ["_bucket", "_sum", "_count"] {
                exported.insert(format!("{}{suffix}", family.name));
            }
        }
    }
    let rules = rules();
    let recorded: HashSet<String> = rules.iter().filter_map(|r| r.record.clone()).collect();

    let ident = regex::Regex::new(r"[a-zA-Z_:][a-zA-Z0-9_:]*").unwrap();
    let mut used = HashSet::new();
    let mut sources: Vec<(String, String)> = dashboard_exprs()
        .into_iter()
        .map(|(d, t, e)| (format!("{d}/{t}"), e))
        .collect();
    sources.extend(rules.iter().map(|r| {
        (
            r.alert.clone().or(r.record.clone()).unwrap_or_default(),
            r.expr.clone(),
        )
    }));
    for (whose, expr) in &sources {
        for m in ident.find_iter(expr) {
            let name = m.as_str();
            let ours = name.starts_with("connector_sync_")
                || name.starts_with("syncwatch_")
                || (name.contains(':') && !name.starts_with("__"));
            if !ours {
                continue;
            }
            assert!(
                exported.contains(name) || recorded.contains(name),
                "{whose} names {name}, which syncwatch does not export and no rule records"
            );
            used.insert(name.to_owned());
        }
    }
    for syncwatch::test_support::Family {
        name: family, kind, ..
    } in DOMAIN_FAMILIES
    {
        let hit = used
            .iter()
            .any(|u| u == family || u.starts_with(&format!("{family}_")))
            || (matches!(kind, prometheus::proto::MetricType::COUNTER)
                && rules.iter().any(|r| r.expr.contains(family)));
        assert!(hit, "contract metric {family} appears in no panel or alert");
    }
}
