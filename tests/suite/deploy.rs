//! The deployment files that are not the image: the Kubernetes manifests validate
//! against the Kubernetes and Prometheus Operator schemas (tests/k8s, pinned), their
//! `PrometheusRule` is alerts/syncwatch.rules.yml's rules, and the systemd unit passes
//! `systemd-analyze verify` with the binary this run built in place of the installed one.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{in_ci, require_tool};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every YAML file under `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `node tests/k8s/validate.mjs files…`: whether it passed, and what it said. `None`
/// (skipped, or failed in CI) when node or the installed schemas are missing.
fn validate(files: &[PathBuf]) -> Option<(bool, String)> {
    let installed = Path::new(ROOT).join("tests/k8s/node_modules/kubernetes-models");
    if !Path::new("/usr/bin/node").exists() || !installed.exists() {
        let why = "node or tests/k8s/node_modules is missing; scripts/test runs npm ci there";
        assert!(!in_ci(), "{why}");
        eprintln!("SKIPPED: {why}");
        return None;
    }
    let output = Command::new("/usr/bin/node")
        .arg(Path::new(ROOT).join("tests/k8s/validate.mjs"))
        .args(files)
        .output()
        .expect("run node");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Some((output.status.success(), said))
}

#[test]
fn the_kubernetes_manifests_validate_against_their_schemas() {
    let files = yaml_files(&Path::new(ROOT).join("deploy/kubernetes"));
    assert!(files.len() >= 9, "{files:?}");
    let Some((ok, said)) = validate(&files) else {
        return;
    };
    assert!(ok, "{said}");
    for kind in [
        "Deployment syncwatch: ok",
        "Service syncwatch: ok",
        "PodDisruptionBudget syncwatch: ok",
        "ServiceMonitor syncwatch: ok",
        "PrometheusRule syncwatch: ok",
        "patched Deployment syncwatch: ok",
    ] {
        assert!(said.contains(kind), "{kind} not checked:\n{said}");
    }
}

/// The check above can fail: a wrong type in a Deployment and a ServiceMonitor, and a
/// kind it has no schema for.
#[test]
fn the_manifest_check_rejects_what_the_schemas_forbid() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n  \
         selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    \
         spec: {containers: [{name: c, image: i}]}\n---\napiVersion: monitoring.coreos.com/v1\n\
         kind: ServiceMonitor\nmetadata: {name: y}\nspec: {selector: {}, endpoints: [{port: 9477}]}\n\
         ---\napiVersion: example.com/v1\nkind: Unknown\nmetadata: {name: z}\n",
    )
    .unwrap();
    let Some((ok, said)) = validate(&[bad]) else {
        return;
    };
    assert!(!ok, "{said}");
    assert!(said.contains("spec/replicas must be integer"), "{said}");
    assert!(said.contains("endpoints/0/port must be string"), "{said}");
    assert!(said.contains("no schema known here"), "{said}");
}

/// Both files are generated from mixin/ (tests/suite/mixin.rs compares them with it); this
/// checks the Operator's resource carries exactly the rules Prometheus loads from alerts/.
#[test]
fn the_prometheusrule_carries_the_rules_of_alerts() {
    let read = |path: &str| -> serde_json::Value {
        serde_yaml_ng::from_str(&std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap())
            .unwrap()
    };
    let rule = read("deploy/kubernetes/base/prometheusrule.yaml");
    let alerts = read("alerts/syncwatch.rules.yml");
    assert!(
        alerts["groups"].as_array().is_some_and(|g| g.len() >= 3),
        "alerts/ has rule groups"
    );
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(
        rule["spec"]["groups"], alerts["groups"],
        "deploy/kubernetes/base/prometheusrule.yaml and alerts/syncwatch.rules.yml differ: run scripts/mixin"
    );
}

#[test]
fn the_systemd_unit_verifies() {
    let Some(analyze) = require_tool("systemd-analyze") else {
        return;
    };
    let unit = include_str!("../../deploy/systemd/syncwatch.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/syncwatch serve"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syncwatch.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/syncwatch", env!("CARGO_BIN_EXE_syncwatch")),
    )
    .unwrap();
    let output = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    assert!(
        said.trim().is_empty(),
        "systemd-analyze has remarks: {said}"
    );
}
