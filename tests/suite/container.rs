//! The OCI image, built by `scripts/image` from the binary this run built and run with
//! podman as an operator would: read-only root filesystem, on the host network, against
//! the suite's PostgreSQL and on its own SQLite volume. A run recorded through the API
//! appears on `/metrics`; the process runs as the non-root user 65532; SIGTERM stops it
//! cleanly within the grace period.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, in_ci, wait_until, Backend, TestDb};
use reqwest::{Client, StatusCode};
use serde_json::json;
use uuid::Uuid;

const TOKEN: &str = "container-test-token";

/// Podman as `scripts/image` runs it: with runc, and the containers.conf it writes
/// unless one is set in the environment.
fn podman(args: &[&str]) -> std::process::Output {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut command = Command::new("/usr/bin/podman");
    if Path::new("/usr/sbin/runc").exists() {
        command.args(["--runtime", "/usr/sbin/runc"]);
    }
    if std::env::var_os("CONTAINERS_CONF").is_none() {
        command.env(
            "CONTAINERS_CONF",
            format!("{root}/target/image/containers.conf"),
        );
    }
    command.args(args).output().expect("run podman")
}

fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Removes the container (and, last, the image) however the test ends.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in self.0.iter().rev() {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = podman(&args);
        }
    }
}

fn build_image() -> Option<String> {
    if !Path::new("/usr/bin/podman").exists() {
        let why = "podman is not installed; scripts/test installs Debian's podman and runc";
        assert!(!in_ci(), "{why}");
        eprintln!("skipped: {why}");
        return None;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let tag = format!("localhost/syncwatch:test-{}", Uuid::new_v4().simple());
    let output = Command::new(format!("{root}/scripts/image"))
        .args(["--binary", env!("CARGO_BIN_EXE_syncwatch"), "--tag", &tag])
        .current_dir(root)
        .output()
        .expect("run scripts/image");
    let printed = ok(&output);
    assert_eq!(
        printed.lines().last(),
        Some(tag.as_str()),
        "scripts/image prints the tag"
    );
    Some(tag)
}

/// `podman run -d` of `image` read-only on the host network, its listeners on free
/// loopback ports; its name and the two base URLs.
fn run(image: &str, cleanup: &mut Cleanup, env: &[(&str, &str)]) -> (String, String, String) {
    let name = format!("syncwatch-test-{}", Uuid::new_v4().simple());
    let (api, metrics) = (free_port(), free_port());
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--name",
        &name,
        "--read-only",
        "--network=host",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let listen = format!("SYNCWATCH_LISTEN=127.0.0.1:{api}");
    let metrics_listen = format!("SYNCWATCH_METRICS_LISTEN=127.0.0.1:{metrics}");
    let token = format!("SYNCWATCH_API_TOKENS={TOKEN}");
    for pair in [listen, metrics_listen, token]
        .into_iter()
        .chain(env.iter().map(|(k, v)| format!("{k}={v}")))
    {
        args.push("-e".into());
        args.push(pair);
    }
    args.extend([
        image.to_owned(),
        "serve".into(),
        "--scan-interval".into(),
        "200ms".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&podman(&args));
    cleanup.0.push(vec!["rm".into(), "-f".into(), name.clone()]);
    (
        name,
        format!("http://127.0.0.1:{api}"),
        format!("http://127.0.0.1:{metrics}"),
    )
}

async fn record_a_run(client: &Client, api: &str) -> String {
    wait_until("the container's API", Duration::from_secs(30), async || {
        client
            .get(format!("{api}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    let post = |path: String, body: serde_json::Value| {
        client
            .post(format!("{api}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let created = post(
        "/v1/sync-logs".into(),
        json!({"workspace_connector_id": Uuid::new_v4(), "connector_slug": "hubspot"}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let run: serde_json::Value = created.json().await.unwrap();
    let id = run["workspace_connector_sync_log_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for action in ["start", "succeed"] {
        let answer = post(format!("/v1/sync-logs/{id}/{action}"), json!({}))
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{action}");
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_serves_read_only_as_non_root_and_stops_cleanly_on_sigterm() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let Some(image) = build_image() else {
        return;
    };
    let mut cleanup = Cleanup(vec![vec!["rmi".into(), "-f".into(), image.clone()]]);
    let client = Client::new();

    // Against PostgreSQL.
    let (name, api, metrics) = run(&image, &mut cleanup, &[("DATABASE_URL", db.url.expose())]);
    record_a_run(&client, &api).await;
    let series =
        "connector_sync_runs_total{connector=\"hubspot\",trigger=\"none\",status=\"success\"} 1";
    wait_until("the run on /metrics", Duration::from_secs(30), async || {
        common::get_text(&format!("{metrics}/metrics"))
            .await
            .contains(series)
    })
    .await;

    // The process is the non-root user, on a read-only root filesystem.
    let pid = ok(&podman(&["inspect", "--format", "{{.State.Pid}}", &name]));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["65532"; 4],
        "{uid}"
    );
    assert_eq!(
        ok(&podman(&[
            "inspect",
            "--format",
            "{{.HostConfig.ReadonlyRootfs}}",
            &name
        ])),
        "true"
    );

    // SIGTERM (podman stop) ends it cleanly, well within a 10 s grace period.
    let started = Instant::now();
    ok(&podman(&["stop", "-t", "10", &name]));
    let stopped = started.elapsed();
    assert!(
        stopped < Duration::from_secs(9),
        "stopped after {stopped:?}"
    );
    assert_eq!(
        ok(&podman(&[
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            &name
        ])),
        "0",
        "exit status after SIGTERM"
    );
    let logs = podman(&["logs", &name]);
    assert!(
        String::from_utf8_lossy(&logs.stderr).contains("syncwatch stopped")
            || String::from_utf8_lossy(&logs.stdout).contains("syncwatch stopped"),
        "the process said it stopped"
    );

    // The embedded default: SQLite on the image's volume, writable by the non-root user
    // while the root filesystem is read-only.
    let (_, api, _) = run(&image, &mut cleanup, &[]);
    record_a_run(&client, &api).await;
}
