//! The monitoring mixin (mixin/, jsonnet) against the files generated from it: the
//! committed rules, dashboards, PrometheusRule and Grafana data source are exactly what
//! `jsonnet` makes of the mixin, and a non-default job selector reaches every expression,
//! every query an alert runs from its annotations and the dashboards' job variable, passing
//! promtool's check and the rules' unit tests. The duration and failure panels ask for
//! exemplars, and the data source links an exemplar's run_id to the run on the status page
//! and its trace_id to the trace. tests/suite/e2e_alerting.rs pages through rules generated
//! with a non-default selector.

use crate::common::require_tool;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The Grafana data source the mixin generates, with the exemplars' links.
const DATASOURCE: &str = "dashboards/provisioning/datasources.example.yaml";

/// The status page the data source links exemplars to by default (`_config.statusPageUrl`).
pub(crate) const DEFAULT_STATUS_PAGE_URL: &str = "http://syncwatch:8080";

/// An exemplar label's value in the data source's link URLs: Grafana's `${__value.raw}`,
/// its `$` doubled as Grafana expands environment variables in provisioning files.
const VALUE_PLACEHOLDER: &str = "$${__value.raw}";

/// The series syncwatch attaches exemplars (trace_id, run_id) to.
const EXEMPLAR_SERIES: [&str; 2] = [
    "connector_sync_duration_seconds_bucket",
    "connector_sync_failures_total",
];

/// The job a test deployment scrapes syncwatch under, not the default.
pub const CUSTOM_JOB: &str = "connector-sync";

/// What the mixin generates with `_config.syncwatchSelector` set to `selector` (the default
/// when `None`), by path from the repository's root. `None` when jsonnet is missing outside
/// CI (in CI that fails).
pub fn render(selector: Option<&str>) -> Option<BTreeMap<String, String>> {
    let config = match selector {
        Some(s) => format!(
            "+ {{ _config+:: {{ syncwatchSelector: {} }} }}",
            serde_json::to_string(s).unwrap()
        ),
        None => String::new(),
    };
    render_with(&config)
}

/// What the mixin generates with `config` (jsonnet added to the mixin, such as
/// `+ { _config+:: { … } }`; empty for the defaults), by path from the repository's root.
fn render_with(config: &str) -> Option<BTreeMap<String, String>> {
    let jsonnet = require_tool("jsonnet")?;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for sub in [
        "alerts",
        "dashboards",
        "deploy/kubernetes/base",
        "dashboards/provisioning",
    ] {
        std::fs::create_dir_all(out.join(sub)).unwrap();
    }
    // The texts, then the dashboards (objects jsonnet writes as JSON), as scripts/mixin does.
    let mut files = BTreeMap::new();
    for (part, into, text) in [
        ("files", out.clone(), "-S"),
        ("dashboards", out.join("dashboards"), ""),
    ] {
        let entry = dir.path().join(format!("{part}.jsonnet"));
        std::fs::write(
            &entry,
            format!("(import 'render.libsonnet')((import 'mixin.libsonnet') {config}).{part}\n"),
        )
        .unwrap();
        let output = Command::new(&jsonnet)
            .arg("-J")
            .arg(Path::new(ROOT).join("mixin"))
            .args([text, "-m"].into_iter().filter(|a| !a.is_empty()))
            .arg(&into)
            .arg(&entry)
            .output()
            .expect("run jsonnet");
        assert!(
            output.status.success(),
            "jsonnet: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for line in String::from_utf8(output.stdout).unwrap().lines() {
            let path = PathBuf::from(line);
            let relative = path.strip_prefix(&out).unwrap().display().to_string();
            files.insert(relative, std::fs::read_to_string(&path).unwrap());
        }
    }
    Some(files)
}

#[test]
fn the_committed_rules_dashboards_and_prometheusrule_are_what_the_mixin_generates() {
    let Some(files) = render(None) else { return };
    let paths: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "alerts/syncwatch.rules.yml",
            "dashboards/connector-syncs-connector.json",
            "dashboards/connector-syncs-overview.json",
            "dashboards/provisioning/datasources.example.yaml",
            "dashboards/syncwatch-exporter.json",
            "deploy/kubernetes/base/prometheusrule.yaml",
        ]
    );
    let stale: Vec<&str> = files
        .iter()
        .filter(|(path, text)| {
            std::fs::read_to_string(Path::new(ROOT).join(path))
                .ok()
                .as_ref()
                != Some(*text)
        })
        .map(|(path, _)| path.as_str())
        .collect();
    assert!(
        stale.is_empty(),
        "{stale:?} differ from what mixin/ generates: run scripts/mixin and commit the result"
    );
    // Every dashboard the folder holds comes from the mixin.
    for entry in std::fs::read_dir(Path::new(ROOT).join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let name = format!("dashboards/{}", path.file_name().unwrap().to_string_lossy());
            assert!(
                files.contains_key(&name),
                "{name} is not generated by mixin/"
            );
        }
    }
}

/// The selectors of raw series (`name{…}`, not recording rules, whose names hold a colon)
/// in a PromQL expression, with their matchers.
fn raw_selectors(expr: &str) -> Vec<(String, String)> {
    let re = regex::Regex::new(r"([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}").unwrap();
    re.captures_iter(expr)
        .filter(|c| !c[1].contains(':'))
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect()
}

/// How many raw series an expression names: identifiers of syncwatch's metrics and `up`
/// (recording rules' names hold colons and are not counted).
fn series_names(expr: &str) -> usize {
    let identifier = regex::Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*").unwrap();
    identifier
        .find_iter(expr)
        .map(|m| m.as_str())
        .filter(|w| {
            !w.contains(':')
                && (*w == "up" || w.starts_with("syncwatch_") || w.starts_with("connector_sync_"))
        })
        .count()
}

#[test]
fn a_custom_job_selector_reaches_every_rule_annotation_query_and_dashboard_variable() {
    let selector = format!(r#"job="{CUSTOM_JOB}""#);
    let (Some(default), Some(custom)) = (render(None), render(Some(&selector))) else {
        return;
    };
    let rules = &custom["alerts/syncwatch.rules.yml"];
    // Nothing of the default selector is left, in any quoting.
    for text in custom.values() {
        for old in [
            r#"job="syncwatch""#,
            r#"job=\"syncwatch\""#,
            "job='syncwatch'",
        ] {
            assert!(!text.contains(old), "{old} is left in {text}");
        }
    }
    // Every raw series an expression reads is selected by the custom job: the metrics
    // and `up`, and none is left unselected.
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(rules).unwrap();
    let mut selected = 0;
    for group in doc["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            let bare = series_names(expr);
            let raw = raw_selectors(expr);
            assert_eq!(bare, raw.len(), "a series without matchers in {expr}");
            // An expression reads raw series or recording rules (names with colons), or is
            // a constant (the objective, the minimum volume).
            assert!(
                bare > 0 || expr.contains(':') || expr.starts_with("vector("),
                "no series in {expr}"
            );
            for (name, matchers) in raw {
                assert!(
                    matchers.contains(&selector),
                    "{name}{{{matchers}}} in {expr}"
                );
                selected += 1;
            }
            // The queries annotations run: status links and connection lists.
            if let Some(annotations) = rule["annotations"].as_mapping() {
                for (key, value) in annotations {
                    let value = value.as_str().unwrap();
                    if value.contains("query") {
                        assert!(
                            value.contains(&format!("syncwatch_ui_info{{{selector}}}"))
                                || value.contains(&format!(r#"{{job=\"{CUSTOM_JOB}\","#)),
                            "{key:?}: {value}"
                        );
                    }
                }
            }
        }
    }
    // As many as the default rules select by their job.
    let default_doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&default["alerts/syncwatch.rules.yml"]).unwrap();
    let by_default: usize = default_doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .map(|r| {
            raw_selectors(r["expr"].as_str().unwrap())
                .iter()
                .filter(|(_, m)| m.contains(r#"job="syncwatch""#))
                .count()
        })
        .sum();
    assert!(selected >= 30, "only {selected} selectors in the rules");
    assert_eq!(selected, by_default);
    // The rules differ from the default ones only by the selector (compared as data: the
    // longer job name folds long descriptions elsewhere).
    let as_json = |text: &str| {
        let value: serde_json::Value = serde_yaml_ng::from_str(text).unwrap();
        serde_json::to_string_pretty(&value).unwrap()
    };
    let as_default = as_json(rules)
        .replace(&format!(r#"job=\"{CUSTOM_JOB}\""#), r#"job=\"syncwatch\""#)
        .replace(
            &format!(r#"job=\\\"{CUSTOM_JOB}\\\""#),
            r#"job=\\\"syncwatch\\\""#,
        );
    assert_eq!(as_default, as_json(&default["alerts/syncwatch.rules.yml"]));
    // The dashboards' job variable offers only the selected jobs.
    for (path, text) in custom.iter().filter(|(p, _)| p.ends_with(".json")) {
        let dashboard: serde_json::Value = serde_json::from_str(text).unwrap();
        let job = dashboard["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "job")
            .unwrap_or_else(|| panic!("{path}: no job variable"));
        let wanted = format!("label_values(syncwatch_build_info{{{selector}}}, job)");
        assert_eq!(job["query"]["query"], wanted.as_str(), "{path}");
        assert_eq!(job["definition"], wanted.as_str(), "{path}");
    }

    // promtool: the rules check, and the unit tests pass on series of the custom job.
    let Some(promtool) = require_tool("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("syncwatch.rules.yml"), rules).unwrap();
    let tests_dir = dir.path().join("tests");
    std::fs::create_dir(&tests_dir).unwrap();
    let mut tests = Vec::new();
    for entry in std::fs::read_dir(Path::new(ROOT).join("alerts/tests")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#"job="syncwatch""#), "{}", path.display());
        let copy = tests_dir.join(path.file_name().unwrap());
        // The job in input series, in expected labels (absent() makes them from the
        // selector) and in the description naming the selector.
        let relabelled = text
            .replace(r#"job="syncwatch""#, &selector)
            .replace("job: syncwatch\n", &format!("job: {CUSTOM_JOB}\n"));
        std::fs::write(&copy, relabelled).unwrap();
        tests.push(copy);
    }
    let check = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(dir.path().join("syncwatch.rules.yml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let test = Command::new(&promtool)
        .current_dir(&tests_dir)
        .args(["test", "rules"])
        .args(&tests)
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "promtool test rules with {selector}: {}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}

/// Every query target of a dashboard, with its panel's title (panels nested in rows too).
fn targets(dashboard: &Value) -> Vec<(&str, &Value)> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("");
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push((title, target));
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Removes the `exemplar` field of every target in `panels` and the panels nested in them.
fn strip_exemplars(panels: &mut Value) {
    for panel in panels.as_array_mut().into_iter().flatten() {
        if let Some(targets) = panel.get_mut("targets").and_then(Value::as_array_mut) {
            for target in targets {
                if let Some(target) = target.as_object_mut() {
                    target.remove("exemplar");
                }
            }
        }
        if let Some(nested) = panel.get_mut("panels") {
            strip_exemplars(nested);
        }
    }
}

#[test]
fn the_duration_and_failure_panels_ask_for_exemplars_and_no_other_target_does() {
    for (name, panels) in [
        (
            "connector-syncs-overview.json",
            &[
                "Run duration p50 / p95 / p99",
                "Run duration distribution",
                "Run duration p95 by connector",
                "Failures per second by reason",
            ][..],
        ),
        (
            "connector-syncs-connector.json",
            &[
                "Run duration p50 / p95 / p99",
                "Run duration distribution",
                "Run duration p95 by status",
                "Failures per second by reason",
            ][..],
        ),
        ("syncwatch-exporter.json", &[][..]),
    ] {
        let path = Path::new(ROOT).join("dashboards").join(name);
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut with_exemplars = BTreeSet::new();
        for (title, target) in targets(&dashboard) {
            let expr = target["expr"].as_str().unwrap_or("");
            if EXEMPLAR_SERIES.iter().any(|series| expr.contains(series)) {
                assert_eq!(target["exemplar"], true, "{name}/{title}: {expr}");
                with_exemplars.insert(title);
            } else {
                assert!(
                    target["exemplar"].is_null(),
                    "{name}/{title} asks for exemplars: {expr}"
                );
            }
        }
        assert_eq!(
            with_exemplars,
            panels.iter().copied().collect::<BTreeSet<&str>>(),
            "{name}"
        );
    }
}

/// The one data source of a provisioning file (YAML), as JSON.
fn datasource(text: &str) -> Value {
    let doc: Value = serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{DATASOURCE}: {e}"));
    assert_eq!(doc["apiVersion"], 1, "{DATASOURCE}");
    let sources = doc["datasources"].as_array().expect("datasources");
    assert_eq!(sources.len(), 1, "{DATASOURCE}");
    sources[0].clone()
}

/// The exemplar links of a data source, by the label they read.
fn destinations(source: &Value) -> BTreeMap<String, Value> {
    source["jsonData"]["exemplarTraceIdDestinations"]
        .as_array()
        .expect("exemplarTraceIdDestinations")
        .iter()
        .map(|d| (d["name"].as_str().unwrap().to_owned(), d.clone()))
        .collect()
}

/// The committed data source's link from an exemplar's run_id, as written in the file
/// (`$` doubled).
fn committed_run_destination_url() -> String {
    let text = std::fs::read_to_string(Path::new(ROOT).join(DATASOURCE))
        .unwrap_or_else(|e| panic!("{DATASOURCE}: {e}"));
    let links = destinations(&datasource(&text));
    let run = links
        .get("run_id")
        .unwrap_or_else(|| panic!("{DATASOURCE}: no run_id link"));
    run["url"].as_str().expect("run_id url").to_owned()
}

/// The page Grafana opens from an exemplar of the run `run_id`: the run_id link of the
/// committed dashboards/provisioning/datasources.example.yaml, with syncwatch's status page at `base` instead
/// of the default `_config.statusPageUrl`.
pub(crate) fn run_link(base: &str, run_id: &str) -> String {
    let url = committed_run_destination_url();
    let path = url
        .strip_prefix(DEFAULT_STATUS_PAGE_URL)
        .unwrap_or_else(|| panic!("{DATASOURCE}: {url} is not on {DEFAULT_STATUS_PAGE_URL}"));
    format!(
        "{}{}",
        base.trim_end_matches('/'),
        path.replace(VALUE_PLACEHOLDER, run_id).replace("$$", "$")
    )
}

#[test]
fn the_datasource_links_an_exemplar_to_its_run_on_the_status_page_and_to_its_trace() {
    let text = std::fs::read_to_string(Path::new(ROOT).join(DATASOURCE)).unwrap();
    let source = datasource(&text);
    assert_eq!(source["name"], "Prometheus");
    assert_eq!(source["type"], "prometheus");
    assert_eq!(source["uid"], "prometheus");
    assert_eq!(source["url"], "http://prometheus:9090");
    let links = destinations(&source);
    assert_eq!(
        links.keys().map(String::as_str).collect::<Vec<_>>(),
        ["run_id", "trace_id"]
    );

    // run_id: the run's page on the status page. Every `$` is doubled, so Grafana expands
    // no environment variable in it and hands `${__value.raw}` to the link.
    let run = &links["run_id"];
    assert_eq!(run["urlDisplayLabel"], "Open run in syncwatch");
    assert!(run["datasourceUid"].is_null(), "{run}");
    let url = run["url"].as_str().unwrap();
    assert!(url.contains(VALUE_PLACEHOLDER), "{url}");
    assert!(!url.replace("$$", "").contains('$'), "{url}");
    let run_id = "3f2b8c4d-6f1c-4a9e-9b0d-1f0f3e2b8c55";
    assert_eq!(
        url.replace(VALUE_PLACEHOLDER, run_id).replace("$$", "$"),
        format!("{DEFAULT_STATUS_PAGE_URL}/ui/runs/{run_id}")
    );
    assert_eq!(
        run_link("https://sync.example.com/", run_id),
        format!("https://sync.example.com/ui/runs/{run_id}")
    );

    // trace_id: the trace, in the trace data source.
    let trace = &links["trace_id"];
    assert_eq!(trace["datasourceUid"], "tempo");
    assert_eq!(trace["urlDisplayLabel"], "Open trace");
    assert!(trace["url"].is_null(), "{trace}");
}

#[test]
fn exemplars_and_the_trace_link_can_be_turned_off_and_the_status_page_moved() {
    let config = "+ { _config+:: { exemplars: false, \
                  statusPageUrl: 'https://sync.example.com/status/', \
                  grafana+: { traceDatasourceUid: '' } } }";
    let (Some(default), Some(custom)) = (render(None), render_with(config)) else {
        return;
    };
    // No target asks for exemplars; the dashboards are otherwise the default ones.
    let mut dashboards = 0;
    for (path, text) in custom.iter().filter(|(p, _)| p.ends_with(".json")) {
        let dashboard: Value = serde_json::from_str(text).unwrap();
        for (title, target) in targets(&dashboard) {
            assert!(target["exemplar"].is_null(), "{path}/{title}");
        }
        let mut expected: Value = serde_json::from_str(&default[path]).unwrap();
        if let Some(panels) = expected.get_mut("panels") {
            strip_exemplars(panels);
        }
        assert_eq!(dashboard, expected, "{path}");
        dashboards += 1;
    }
    assert_eq!(dashboards, 3);
    // Only the run_id link is left, on the moved status page.
    let links = destinations(&datasource(&custom[DATASOURCE]));
    assert_eq!(
        links.keys().map(String::as_str).collect::<Vec<_>>(),
        ["run_id"]
    );
    assert_eq!(
        links["run_id"]["url"],
        format!("https://sync.example.com/status/ui/runs/{VALUE_PLACEHOLDER}").as_str()
    );
    // The rules do not depend on either.
    for path in [
        "alerts/syncwatch.rules.yml",
        "deploy/kubernetes/base/prometheusrule.yaml",
    ] {
        assert_eq!(custom[path], default[path], "{path}");
    }
}
