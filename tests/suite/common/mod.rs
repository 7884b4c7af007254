//! Test harness: the real app on port 0 over a real store, a fresh Postgres database or a
//! SQLite file in a temp dir per test.

pub mod cluster;
pub mod process;
pub mod prometheus;
pub mod scan;
pub mod webdriver;

pub use process::{admin_url, free_port, ChildGuard};

use std::collections::BTreeMap;
use std::sync::OnceLock;

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use syncwatch::api::ApiSettings;
use syncwatch::metrics::Metrics;
use syncwatch::store::DatabaseUrl;
use syncwatch::store::{self, PoolOptions, Store};
use syncwatch::test_support;
use tokio::net::TcpListener;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `Some(reason)` when Postgres cannot be reached. In CI that is a failure, not a skip.
pub async fn postgres_unavailable() -> Option<String> {
    static CHECKED: OnceLock<Option<String>> = OnceLock::new();
    if let Some(result) = CHECKED.get() {
        return result.clone();
    }
    let result = match PgConnection::connect(&admin_url()).await {
        Ok(conn) => {
            let _ = conn.close().await;
            None
        }
        Err(e) => Some(format!(
            "Postgres at TEST_DATABASE_URL ({}) is unreachable: {e}. Start it (scripts/test does) \
             or point TEST_DATABASE_URL at a server where the user may create databases.",
            redact(&admin_url())
        )),
    };
    CHECKED.get_or_init(|| result).clone()
}

fn redact(url: &str) -> String {
    url.parse::<DatabaseUrl>()
        .map(|u| u.to_string())
        .unwrap_or_else(|_| "<unparseable>".into())
}

/// A fresh, empty, migrated database of one backend.
pub struct TestDb {
    pub backend: Backend,
    pub url: DatabaseUrl,
    pub store: Store,
    pg_name: Option<String>,
    /// Server-wide roles a test made for this database, dropped after it.
    pg_roles: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// `None` (with the reason printed) when Postgres is missing outside CI.
    pub async fn new(backend: Backend) -> Option<Self> {
        let db = Self::unmigrated(backend).await?;
        db.store
            .catalogue()
            .migrate()
            .await
            .expect("migrations apply");
        Some(db)
    }

    /// A fresh database with nothing in it (for tables another service made).
    pub async fn unmigrated(backend: Backend) -> Option<Self> {
        Some(match backend {
            Backend::Postgres => {
                if let Some(reason) = postgres_unavailable().await {
                    assert!(!in_ci(), "{reason}");
                    eprintln!("SKIPPED (Postgres): {reason}");
                    return None;
                }
                let name = format!("syncwatch_test_{}", Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&admin_url())
                    .await
                    .expect("connect to the test Postgres server");
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create a test database");
                let _ = admin.close().await;
                let mut url = url::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                let url: DatabaseUrl = url.as_str().parse().unwrap();
                let store =
                    store::connect(&url, &PoolOptions::default(), &store::TableMap::default())
                        .await
                        .expect("open the Postgres store");
                TestDb {
                    backend,
                    url,
                    store,
                    pg_name: Some(name),
                    pg_roles: Vec::new(),
                    _dir: None,
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url: DatabaseUrl = format!("sqlite://{}", dir.path().join("test.db").display())
                    .parse()
                    .unwrap();
                let store =
                    store::connect(&url, &PoolOptions::default(), &store::TableMap::default())
                        .await
                        .expect("open the SQLite store");
                TestDb {
                    backend,
                    url,
                    store,
                    pg_name: None,
                    pg_roles: Vec::new(),
                    _dir: Some(dir),
                }
            }
        })
    }

    /// Every row, soft-deleted ones included.
    pub async fn count_rows(&self) -> i64 {
        self.scalar_i64("select count(*) from workspace_connector_sync_log")
            .await
    }

    /// Run one statement that returns a single integer, on either backend.
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::connect(self.url.expose()).await.unwrap();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
                let _ = conn.close().await;
                n
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(self.url.expose())
                    .await
                    .unwrap();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
                let _ = conn.close().await;
                n
            }
        }
    }

    /// Run a statement that returns nothing, on either backend.
    pub async fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::connect(self.url.expose()).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
                let _ = conn.close().await;
            }
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(self.url.expose())
                    .await
                    .unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
                let _ = conn.close().await;
            }
        }
    }

    /// A login role that may only `SELECT` `tables` of this PostgreSQL database (and use
    /// its `public` schema), dropped with the database: its name and a URL that logs in as
    /// it.
    pub async fn select_only_role(&mut self, tables: &[&str]) -> (String, String) {
        let role = format!("syncwatch_reader_{}", Uuid::new_v4().simple());
        self.drops_role(&role);
        let name = self.url.expose().rsplit('/').next().unwrap().to_owned();
        let mut conn = PgConnection::connect(self.url.expose()).await.unwrap();
        sqlx::raw_sql(&format!(
            "create role {role} login;
             grant connect on database {name} to {role};
             grant usage on schema public to {role};
             grant select on {} to {role};",
            tables.join(", ")
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        let _ = conn.close().await;
        let mut url = url::Url::parse(self.url.expose()).unwrap();
        url.set_username(&role).unwrap();
        (role, url.to_string())
    }

    /// Drop the server-wide `role` (made by the test for this database) when the database
    /// is dropped.
    pub fn drops_role(&mut self, role: &str) {
        self.pg_roles.push(role.to_owned());
    }
}

/// A test's PostgreSQL database (and the roles it made) is dropped however the test ends,
/// a panic included. `Drop` cannot await, so a thread of its own with a runtime of its own
/// does the round trip.
impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let roles = std::mem::take(&mut self.pg_roles);
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(mut admin) = PgConnection::connect(&admin_url()).await else {
                    return;
                };
                let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                    .execute(&mut admin)
                    .await;
                for role in roles {
                    let _ = sqlx::query(&format!("drop role if exists {role}"))
                        .execute(&mut admin)
                        .await;
                }
                let _ = admin.close().await;
            });
        });
        let _ = dropped.join();
    }
}

/// The app running on a port-0 listener over a fresh store.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub db: TestDb,
    pub token: Option<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, ApiSettings::default()).await
    }

    pub async fn spawn_with(backend: Backend, settings: ApiSettings) -> Option<Self> {
        let db = TestDb::new(backend).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app = test_support::application(listener, db.store.clone(), &settings, Metrics::new())
            .unwrap();
        let base = format!("http://{}", test_support::local_addr(&app));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Some(TestApp {
            base,
            client: Client::builder()
                .pool_max_idle_per_host(32)
                .build()
                .unwrap(),
            db,
            token: None,
            shutdown: Some(tx),
            server: Some(server),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request reaches the server")
    }

    /// A request and its JSON body (`Value::Null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self.request(method, path, body).await;
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("response is not JSON: {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, value)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::POST, path, None).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    /// Create a run for a fresh connection and return its body.
    pub async fn create_run(&self, slug: &str) -> Value {
        self.create(json!({
            "workspace_connector_id": Uuid::new_v4(),
            "connector_slug": slug,
            "trigger_type": "manual",
        }))
        .await
    }

    pub async fn create(&self, body: Value) -> Value {
        let (status, row) = self.post("/v1/sync-logs", body).await;
        assert_eq!(status, StatusCode::CREATED, "create: {row}");
        row
    }

    /// Drive a run to `status` (`scheduled`, `in_progress`, `success`, `error`).
    pub async fn run_in_status(&self, slug: &str, status: &str) -> Value {
        let row = self.create_run(slug).await;
        let id = run_id(&row);
        let steps: &[(&str, Option<Value>)] = match status {
            "scheduled" => &[],
            "in_progress" => &[("start", None)],
            "success" => &[("start", None), ("succeed", None)],
            "error" => &[("start", None), ("fail", Some(json!({"error": "boom"})))],
            other => panic!("unknown status {other}"),
        };
        let mut last = row;
        for (action, body) in steps {
            let (code, next) = self
                .call(
                    Method::POST,
                    &format!("/v1/sync-logs/{id}/{action}"),
                    body.clone(),
                )
                .await;
            assert_eq!(code, StatusCode::OK, "{action}: {next}");
            last = next;
        }
        assert_eq!(last["status"], status);
        last
    }
}

/// Stops the server task; the database goes with `db`.
impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub fn run_id(row: &Value) -> String {
    row["workspace_connector_sync_log_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {row}"))
        .to_owned()
}

/// The exact keys of a run in every response: the specification's columns plus
/// workspace_connector_id and connector_slug, never the internal key or deleted_at.
pub const RUN_KEYS: [&str; 13] = [
    "completed_at",
    "connector_slug",
    "created_at",
    "cloud_task_id",
    "duration_ms",
    "error",
    "metadata",
    "started_at",
    "status",
    "trigger_type",
    "updated_at",
    "workspace_connector_id",
    "workspace_connector_sync_log_id",
];

pub fn assert_run_shape(row: &Value) {
    let mut keys: Vec<&str> = row
        .as_object()
        .unwrap_or_else(|| panic!("run is not an object: {row}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = RUN_KEYS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "run keys in {row}");
}

/// Runs the named `async fn(&TestApp)` once on Postgres and once on SQLite, each on a
/// fresh store: `mod name { postgres, sqlite }`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::common::TestApp::spawn($crate::common::Backend::Postgres).await {
                        super::$name(&app).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::common::TestApp::spawn($crate::common::Backend::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$name(&app).await;
                }
            }
        )*
    };
}

/// Runs the named `async fn(Backend)` once on each backend (it makes its own store):
/// `mod name { postgres, sqlite }`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await;
                }

                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            }
        )*
    };
}

/// `Some(path)` of a tool from Debian's packages under /usr/bin; when it is missing the
/// test fails in CI and skips (saying why) elsewhere.
pub fn require_tool(name: &str) -> Option<std::path::PathBuf> {
    let path = std::path::PathBuf::from(format!("/usr/bin/{name}"));
    if path.exists() {
        return Some(path);
    }
    let reason =
        format!("{name} is not installed; scripts/test installs it from Debian's packages");
    assert!(!in_ci(), "{reason}");
    eprintln!("SKIPPED: {reason}");
    None
}

/// One run through a running server's API: create with `create`, start (unless it was
/// created `in_progress`), then `succeed` or `fail` (with `error`). Returns the finished row.
pub async fn run_through_api(
    client: &Client,
    base: &str,
    create: Value,
    outcome: &str,
    error: &str,
) -> Value {
    let row: Value = client
        .post(format!("{base}/v1/sync-logs"))
        .json(&create)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = run_id(&row);
    if row["status"] == "scheduled" {
        let started = client
            .post(format!("{base}/v1/sync-logs/{id}/start"))
            .send()
            .await
            .unwrap();
        assert!(
            started.status().is_success(),
            "start answered {}",
            started.status()
        );
    }
    let body = if outcome == "fail" {
        json!({ "error": error })
    } else {
        json!({})
    };
    let done = client
        .post(format!("{base}/v1/sync-logs/{id}/{outcome}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        done.status().is_success(),
        "{outcome} answered {}",
        done.status()
    );
    done.json().await.unwrap()
}

/// The `syncwatch` binary. Cargo names it to the service's own tests; the tools crate's
/// tests (which share this harness) find it in the workspace's target directory, next to
/// their own `deps/` folder, where `cargo test --workspace` builds it.
pub fn service_bin() -> std::path::PathBuf {
    if let Some(bin) = option_env!("CARGO_BIN_EXE_syncwatch") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>/syncwatch
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join(format!("syncwatch{}", std::env::consts::EXE_SUFFIX)))
        .expect("the test executable lives in target/<profile>/deps");
    assert!(
        bin.is_file(),
        "{} is missing: build the service first (`cargo test --workspace` or \
         `cargo build --bin syncwatch`)",
        bin.display()
    );
    bin
}

/// The real binary serving on loopback ports of its own, killed when dropped.
pub struct Server {
    pub child: ChildGuard,
    pub api: String,
    pub metrics: String,
    /// Where the process's stderr goes: shown when it fails to come up.
    pub log: tempfile::NamedTempFile,
}

impl Server {
    /// `syncwatch serve` on `database_url` with `extra` flags; waits until both listeners
    /// answer.
    pub async fn start(database_url: &str, extra: &[&str]) -> Self {
        let (api_port, metrics_port) = (free_port(), free_port());
        Self::start_on(database_url, api_port, metrics_port, extra).await
    }

    /// The same on given ports (to restart a server where it was).
    pub async fn start_on(
        database_url: &str,
        api_port: u16,
        metrics_port: u16,
        extra: &[&str],
    ) -> Self {
        Self::start_with_env(database_url, api_port, metrics_port, extra, &[]).await
    }

    /// The same with environment variables set for the process (`OTEL_*`, say).
    pub async fn start_with_env(
        database_url: &str,
        api_port: u16,
        metrics_port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let api = format!("127.0.0.1:{api_port}");
        let metrics = format!("127.0.0.1:{metrics_port}");
        let log = tempfile::NamedTempFile::new().expect("a file for the server's stderr");
        let child = std::process::Command::new(service_bin())
            .args(["serve", "--database-url", database_url, "--listen", &api])
            .args(["--metrics-listen", &metrics])
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("SYNCWATCH_API_TOKENS")
            .env_remove("DATABASE_URL")
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().expect("reopen the stderr file"))
            .spawn()
            .expect("start syncwatch serve");
        let mut server = Server {
            child: ChildGuard(child),
            api: format!("http://{api}"),
            metrics: format!("http://{metrics}"),
            log,
        };
        let client = Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let api_up = client.get(format!("{}/healthz", server.api)).send().await;
            let metrics_up = client
                .get(format!("{}/healthz", server.metrics))
                .send()
                .await;
            if api_up.is_ok() && metrics_up.is_ok() {
                break;
            }
            if let Some(status) = server.child.0.try_wait().expect("wait for syncwatch") {
                panic!(
                    "syncwatch serve on {api} exited before it came up ({status}); its stderr:\n{}",
                    server.stderr_tail()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "syncwatch serve did not come up on {api} within 30 s; its stderr:\n{}",
                server.stderr_tail()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        server
    }

    /// The last lines the process wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// `SIGTERM`, then wait (at most `grace`) for the process to exit; its exit status.
    pub async fn terminate(&mut self, grace: std::time::Duration) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {}", self.pid());
        let deadline = std::time::Instant::now() + grace;
        loop {
            if let Some(status) = self.child.0.try_wait().expect("wait for syncwatch") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "syncwatch did not stop within {grace:?} of SIGTERM"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `SIGKILL`, no chance to clean up.
    pub fn kill_9(mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }

    pub async fn scrape(&self) -> String {
        Client::new()
            .get(format!("{}/metrics", self.metrics))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .expect("scrape /metrics")
            .text()
            .await
            .unwrap()
    }
}

/// A family's non-zero samples from an exposition, by their sorted labels.
pub fn family_samples(text: &str, name: &str) -> BTreeMap<Vec<(String, String)>, f64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            let value: f64 = value.trim().parse().ok()?;
            let mut labels: Vec<(String, String)> = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            labels.sort();
            (value != 0.0).then_some((labels, value))
        })
        .collect()
}

/// The same family computed in SQL: each row is the label values (text, in `names` order)
/// and the value (`float8`); zeros left out, as [`family_samples`] leaves them.
pub async fn sql_family(
    conn: &mut PgConnection,
    names: &[&str],
    sql: &str,
) -> BTreeMap<Vec<(String, String)>, f64> {
    use sqlx::Row;
    let mut out = BTreeMap::new();
    for row in sqlx::query(sql).fetch_all(&mut *conn).await.unwrap() {
        let mut labels: Vec<(String, String)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| ((*n).to_owned(), row.get::<String, _>(i)))
            .collect();
        labels.sort();
        let value: f64 = row.get(names.len());
        if value != 0.0 {
            out.insert(labels, value);
        }
    }
    out
}

/// `GET url`, its JSON body.
pub async fn get_json(url: &str) -> Value {
    let response = Client::new().get(url).send().await.unwrap();
    response.json().await.unwrap()
}

/// `GET url`, its body as text.
pub async fn get_text(url: &str) -> String {
    let response = Client::new().get(url).send().await.unwrap();
    response.text().await.unwrap()
}

/// The value of one sample (`name` or `name{labels}` exactly as exposed) in an exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        let value = rest.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// Sum of every sample of a family (`name{…}` lines).
pub fn family_sum(text: &str, family: &str) -> f64 {
    let prefix = format!("{family}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Poll `check` every 100 ms until it holds; fails the test after `within`. Returns how
/// long it took.
pub async fn wait_until(
    what: &str,
    within: std::time::Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    started.elapsed()
}

/// One run recorded through the store: created (a `cloud_task` run), started, and
/// finished by `outcome` with `error` and `metadata`. Returns its id.
pub async fn record_run(
    store: &syncwatch::store::Store,
    connection: Uuid,
    connector: &str,
    outcome: syncwatch::domain::Action,
    error: Option<&str>,
    metadata: Option<serde_json::Map<String, Value>>,
    cloud_task_id: Option<&str>,
) -> Uuid {
    use syncwatch::domain::{Action, NewSyncLog, Status, TriggerType};
    use syncwatch::store::{Change, Created};
    let created = store
        .runs()
        .create(&NewSyncLog {
            workspace_connector_id: connection.into(),
            connector_slug: connector.to_owned(),
            trigger_type: Some(TriggerType::CloudTask),
            cloud_task_id: cloud_task_id.map(str::to_owned),
            status: Status::Scheduled,
            metadata: None,
        })
        .await
        .expect("create");
    let Created::New(run) = created else {
        panic!("a new run was expected")
    };
    let id = run.workspace_connector_sync_log_id;
    store
        .runs()
        .apply(id, &Change::new(Action::Start))
        .await
        .expect("start");
    let change = Change {
        action: outcome,
        metadata,
        error: error.map(str::to_owned),
    };
    store.runs().apply(id, &change).await.expect("finish");
    // Newest first is by creation time, then by id: runs created within the same
    // millisecond (SQLite keeps milliseconds) would list in the order of their random ids.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    id
}
