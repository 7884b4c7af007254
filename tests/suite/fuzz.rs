//! The API fuzzed from its own OpenAPI document with schemathesis (PyPI, pinned in
//! `tests/fuzz/requirements.txt`, installed by `scripts/test` into `target/fuzz-venv`):
//! every operation, positive and negative cases, stateful sequences through the
//! document's links; no 5xx, every status code, content type and body as documented.
//! Bounded and deterministic (`tests/fuzz/schemathesis.toml`: fixed seed, 100 examples
//! per operation), against the real binary on each store.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{in_ci, Backend, Server, TestDb};
use serde_json::Value;

const TOKEN: &str = "fuzz-token";

fn schemathesis() -> Option<PathBuf> {
    let path = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-venv/bin/schemathesis")
        });
    if path.exists() {
        return Some(path);
    }
    let reason = format!(
        "schemathesis is not installed at {} (scripts/test installs tests/fuzz/requirements.txt \
         into target/fuzz-venv; or set SCHEMATHESIS)",
        path.display()
    );
    assert!(!in_ci(), "{reason}");
    eprintln!("SKIPPED: {reason}");
    None
}

fn run(tool: &Path, document: &Path, api: &str, extra: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new(tool)
        .current_dir(root)
        .arg("--config-file")
        .arg(root.join("tests/fuzz/schemathesis.toml"))
        .arg("run")
        .arg(document)
        .args(["--url", api])
        .args(extra)
        .env("SYNCWATCH_FUZZ_TOKEN", TOKEN)
        .env("HYPOTHESIS_STORAGE_DIRECTORY", cache.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis")
}

fn tail(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

async fn fuzz_the_api(backend: Backend) {
    let Some(tool) = schemathesis() else {
        return;
    };
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let server = Server::start(db.url.expose(), &["--api-tokens", TOKEN]).await;
    let document = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/openapi.json");
    let output = run(&tool, &document, &server.api, &[]);
    eprintln!("figure ({backend:?}): schemathesis:\n{}", tail(&output));
    assert!(
        output.status.success(),
        "schemathesis found failures on {backend:?}:\n{}\n{}",
        tail(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_the_api_finds_no_5xx_and_no_undocumented_response_postgres() {
    fuzz_the_api(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_the_api_finds_no_5xx_and_no_undocumented_response_sqlite() {
    fuzz_the_api(Backend::Sqlite).await;
}

/// The fuzz run can fail: against a copy of the document that forgets the 404 of
/// `GET /v1/sync-logs/{id}`, it reports the undocumented status code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fuzz_run_fails_when_the_document_is_wrong() {
    let Some(tool) = schemathesis() else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let server = Server::start(db.url.expose(), &["--api-tokens", TOKEN]).await;
    let mut document: Value =
        serde_json::from_str(syncwatch::test_support::OPENAPI_JSON).expect("the document is JSON");
    let responses = document["paths"]["/v1/sync-logs/{id}"]["get"]["responses"]
        .as_object_mut()
        .expect("GET /v1/sync-logs/{id} has responses");
    assert!(responses.remove("404").is_some());
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("openapi.json");
    std::fs::write(&broken, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let output = run(
        &tool,
        &broken,
        &server.api,
        &[
            "--include-operation-id",
            "getSyncLog",
            "--max-examples",
            "20",
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "schemathesis passed a wrong document:\n{text}"
    );
    assert!(text.contains("404"), "{}", tail(&output));
    drop(server);
}
