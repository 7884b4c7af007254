//! A real Prometheus the test runs itself, scraping one syncwatch every second; and what
//! the tests that read expositions share: piping a text through a tool, the duration
//! buckets' bounds.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Client;

use super::{free_port, in_ci, wait_until, ChildGuard};

pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// The default `--duration-buckets`.
pub const DURATION_BOUNDS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
    21600.0,
];

/// Whether `value` lies in the duration bucket labelled `le` (`+Inf` included): above the
/// bound before it (from 0 for the first), at most `le`.
pub fn in_duration_bucket(value: f64, le: &str) -> bool {
    let le = if le == "+Inf" {
        f64::INFINITY
    } else {
        le.parse().expect("le is a number")
    };
    let below = DURATION_BOUNDS
        .iter()
        .copied()
        .filter(|b| *b < le)
        .fold(f64::NAN, f64::max);
    let above_below = if below.is_nan() {
        value >= 0.0
    } else {
        value > below
    };
    above_below && value <= le
}

/// Pipes `input` into `command`: (exit success, what it printed on stdout and stderr).
pub fn pipe_through(command: &mut Command, input: &str) -> (bool, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// Whether `url` answers 2xx within two seconds.
pub async fn http_ok(client: &Client, url: String) -> bool {
    client
        .get(&url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// A running Prometheus, stopped (and its data removed) when dropped.
pub struct Prometheus {
    pub port: u16,
    _process: ChildGuard,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// `None` when Prometheus is not installed (which fails the test in CI, and is said
    /// elsewhere); otherwise a Prometheus on a free port with `flags`, scraping
    /// `127.0.0.1:{target}` as job `syncwatch` every second, once it is ready.
    pub async fn start(client: &Client, target: u16, flags: &[&str]) -> Option<Self> {
        if !std::path::Path::new(PROMETHEUS).exists() {
            let reason =
                "prometheus is not installed; scripts/test installs Debian's prometheus package";
            assert!(!in_ci(), "{reason}");
            eprintln!("SKIPPED: {reason}");
            return None;
        }
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: syncwatch\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let process = ChildGuard(
            Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .args(flags)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus"),
        );
        wait_until("prometheus ready", Duration::from_secs(30), || {
            http_ok(client, format!("http://127.0.0.1:{port}/-/ready"))
        })
        .await;
        Some(Self {
            port,
            _process: process,
            _dir: dir,
        })
    }
}
