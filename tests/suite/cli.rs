//! The real binary: `migrate`, `check`, `serve` with graceful shutdown, refusing an open
//! API on a public address, and never printing the database password.

use crate::common;

use common::free_port;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_syncwatch");

fn syncwatch(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SYNCWATCH_API_TOKENS")
        .env("RUST_LOG", "info")
        .output()
        .expect("run syncwatch")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_fails_before_migrate_and_passes_after() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let before = syncwatch(&["check", "--database-url", &url]);
    assert!(!before.status.success(), "{}", text(&before));
    assert!(
        text(&before).contains("schema: FAILED"),
        "{}",
        text(&before)
    );

    // `serve --no-migrate` refuses a schema that is not current, saying what to run.
    let refused = syncwatch(&[
        "serve",
        "--no-migrate",
        "--database-url",
        &url,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("syncwatch migrate"),
        "{}",
        text(&refused)
    );

    // `migrate` migrates whatever --no-migrate says (it is serve's).
    let migrate = syncwatch(&["migrate", "--no-migrate", "--database-url", &url]);
    assert!(migrate.status.success(), "{}", text(&migrate));

    let after = syncwatch(&["check", "--database-url", &url]);
    assert!(after.status.success(), "{}", text(&after));
    assert!(text(&after).contains("schema: ok"), "{}", text(&after));
    assert!(text(&after).contains("access: ok"), "{}", text(&after));
}

#[test]
fn the_database_password_never_appears_in_output() {
    // Nothing listens on port 1: the connection fails, and the error must not carry the
    // password.
    let secret = "pw-Zq8v3xT";
    let url = format!("postgres://syncwatch:{secret}@127.0.0.1:1/app");
    for args in [
        vec!["check"],
        vec!["migrate"],
        vec!["serve", "--listen", "127.0.0.1:0"],
    ] {
        let mut args = args;
        args.extend(["--database-url", url.as_str(), "--db-acquire-timeout", "1s"]);
        let output = syncwatch(&args);
        assert!(
            !output.status.success(),
            "{args:?} should fail: {}",
            text(&output)
        );
        let all = text(&output);
        assert!(
            !all.contains(secret),
            "{args:?} printed the password: {all}"
        );
        assert!(all.contains("REDACTED") || all.contains("FAILED"), "{all}");
    }
}

#[test]
fn a_bad_failure_rules_file_stops_serve_with_its_line_and_check_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "- reason: auth\n  owner: customer\n  pattern: '401'\n- reason: broken\n  owner: platform\n  pattern: '(unclosed'\n",
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    let url = format!("sqlite://{}", dir.path().join("never.db").display());
    let serve = syncwatch(&["serve", "--database-url", &url, "--failure-rules", rules]);
    assert!(!serve.status.success());
    let out = text(&serve);
    assert!(
        out.contains(&format!("{rules}:4: pattern of broken")),
        "{out}"
    );
    assert!(
        !dir.path().join("never.db").exists(),
        "stopped before opening the store"
    );
    let check = syncwatch(&["check", "--failure-rules", rules]);
    assert!(!check.status.success());
    assert!(
        text(&check).contains("failure rules: FAILED"),
        "{}",
        text(&check)
    );

    std::fs::write(
        dir.path().join("good.yml"),
        "- {reason: token_gone, owner: customer, pattern: 'revoked'}\n",
    )
    .unwrap();
    let good = dir.path().join("good.yml");
    let check = syncwatch(&[
        "check",
        "--failure-rules",
        good.to_str().unwrap(),
        "--sample",
        "token REVOKED",
        "--sample",
        "disk full",
    ]);
    let out = text(&check);
    assert!(check.status.success(), "{out}");
    assert!(
        out.contains("\"token REVOKED\" -> token_gone (customer)"),
        "{out}"
    );
    assert!(out.contains("\"disk full\" -> other (platform)"), "{out}");
}

#[test]
fn refuses_an_open_api_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("open.db").display());
    let output = syncwatch(&["serve", "--database-url", &url, "--listen", "0.0.0.0:0"]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("refusing to serve the API"),
        "{}",
        text(&output)
    );
}

#[tokio::test]
async fn serve_runs_on_the_embedded_default_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No --database-url: the default sqlite://syncwatch.db, created in the working directory.
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("SYNCWATCH_API_TOKENS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        assert!(child.try_wait().unwrap().is_none(), "server exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let created = client
        .post(format!("{base}/v1/sync-logs"))
        .json(&serde_json::json!({
            "workspace_connector_id": uuid::Uuid::new_v4(),
            "connector_slug": "hubspot",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert!(
        dir.path().join("syncwatch.db").exists(),
        "the embedded store file is created"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}
