//! Command line and environment: every setting is a flag with an environment variable.
//! The configuration table in `README.md` lists them all.

mod database_url;
mod duration;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use database_url::{Backend, DatabaseUrl};
pub use duration::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "syncwatch",
    version,
    about = "Lifecycle store and metrics sidecar for data-connector sync runs"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (and apply pending migrations first).
    Serve(ServeArgs),
    /// Apply pending migrations and exit.
    Migrate,
    /// Check configuration, store connectivity and schema version; exit non-zero on a problem.
    Check,
    /// Scan the store and print the metrics exposition.
    Scan(ScanCommandArgs),
    /// Simulate a fleet of connectors writing runs into the store (for dashboards and
    /// alerts to show something). Run `serve` on the same store alongside.
    Demo(DemoArgs),
    /// Drive concurrent orchestrator clients through full run lifecycles against a running
    /// `serve` (or the store directly), print throughput and latency, and check that
    /// nothing acknowledged was lost.
    Load(LoadArgs),
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Base URL of the API under load.
    #[arg(
        long,
        env = "SYNCWATCH_LOAD_API_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub api_url: String,
    /// Bearer token for the API.
    #[arg(long, env = "SYNCWATCH_LOAD_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Call the store at `--database-url` directly (the same SQL, no HTTP) instead of the API.
    #[arg(long)]
    pub direct: bool,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// How long to keep starting lifecycles.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Heartbeats per run.
    #[arg(long, default_value_t = 2)]
    pub heartbeats: u32,
    /// Distinct connectors the runs spread over.
    #[arg(long, default_value_t = 8)]
    pub connectors: usize,
    /// Connections per connector.
    #[arg(long, default_value_t = 4)]
    pub connections_per_connector: usize,
    /// Every n-th run of a client fails (0: none).
    #[arg(long, default_value_t = 5)]
    pub fail_every: u64,
    /// Every n-th run is created by two concurrent deliveries of one Cloud Tasks id (0: none).
    #[arg(long, default_value_t = 7)]
    pub duplicate_create_every: u64,
    /// Every n-th run is finished by two concurrent finishers (0: none).
    #[arg(long, default_value_t = 11)]
    pub duplicate_finish_every: u64,
    /// Afterwards, check the store at `--database-url` (the one the server writes) holds
    /// every acknowledged write and nothing else of this load, all terminal.
    #[arg(long)]
    pub verify: bool,
    /// With `--verify`, also wait until `connector_sync_runs_total` at this `/metrics` URL
    /// equals the store's counts.
    #[arg(long, requires = "verify")]
    pub metrics_url: Option<String>,
    /// Bearer token for `--metrics-url`.
    #[arg(long, env = "SYNCWATCH_LOAD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// How long to wait for the metrics to catch up.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub metrics_wait: Duration,
}

impl LoadArgs {
    pub fn to_config(&self) -> anyhow::Result<crate::load::LoadConfig> {
        if self.clients == 0 || self.connectors == 0 || self.connections_per_connector == 0 {
            anyhow::bail!(
                "--clients, --connectors and --connections-per-connector must be positive"
            );
        }
        if self.duration.is_zero() {
            anyhow::bail!("--duration must be positive");
        }
        Ok(crate::load::LoadConfig {
            clients: self.clients,
            duration: self.duration,
            heartbeats: self.heartbeats,
            connectors: self.connectors,
            connections_per_connector: self.connections_per_connector,
            fail_every: self.fail_every,
            duplicate_create_every: self.duplicate_create_every,
            duplicate_finish_every: self.duplicate_finish_every,
            ..crate::load::LoadConfig::default()
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// How many connectors to simulate (at most 16).
    #[arg(long, default_value_t = 8)]
    pub connectors: usize,
    /// Connections per connector.
    #[arg(long, default_value_t = 3)]
    pub connections_per_connector: usize,
    /// Base failure probability of a run; later connectors fail more, the last one mostly.
    #[arg(long, default_value_t = 0.05)]
    pub failure_rate: f64,
    /// Probability that a run is ten times slower.
    #[arg(long, default_value_t = 0.1)]
    pub slow_rate: f64,
    /// Probability that a run is left stuck (never dispatched, or abandoned).
    #[arg(long, default_value_t = 0.02)]
    pub stuck_rate: f64,
    /// Simulation step.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub tick: Duration,
    /// Longest normal run, in ticks.
    #[arg(long, default_value_t = 20)]
    pub max_run_ticks: u32,
    /// Stop after this many ticks (default: until interrupted).
    #[arg(long)]
    pub ticks: Option<u64>,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl DemoArgs {
    pub fn to_config(&self) -> anyhow::Result<crate::demo::DemoConfig> {
        for (name, p) in [
            ("--failure-rate", self.failure_rate),
            ("--slow-rate", self.slow_rate),
            ("--stuck-rate", self.stuck_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                anyhow::bail!("{name} must be between 0 and 1");
            }
        }
        if self.tick.is_zero() {
            anyhow::bail!("--tick must be positive");
        }
        Ok(crate::demo::DemoConfig {
            connectors: self.connectors,
            connections_per_connector: self.connections_per_connector,
            failure_rate: self.failure_rate,
            slow_rate: self.slow_rate,
            stuck_rate: self.stuck_rate,
            tick: self.tick,
            max_run_ticks: self.max_run_ticks,
            ticks: self.ticks,
            seed: self.seed,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct ScanCommandArgs {
    /// Scan once, print the exposition to stdout and exit (non-zero when the store is
    /// unreachable). Required: continuous scanning is part of `serve`.
    #[arg(long, required = true)]
    pub once: bool,

    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    /// How often the scanner reads the store.
    #[arg(long, env = "SYNCWATCH_SCAN_INTERVAL", value_parser = parse_duration, default_value = "15s")]
    pub scan_interval: Duration,

    /// Overlap re-read by every scan so runs whose transaction commits late are counted.
    #[arg(long, env = "SYNCWATCH_LATE_COMMIT_WINDOW", value_parser = parse_duration, default_value = "5m")]
    pub late_commit_window: Duration,

    /// How often counters are recomputed from the whole table (never lowered).
    #[arg(long, env = "SYNCWATCH_REBASELINE_INTERVAL", value_parser = parse_duration, default_value = "1h")]
    pub rebaseline_interval: Duration,

    /// A scheduled run older than this is stuck.
    #[arg(long, env = "SYNCWATCH_STUCK_SCHEDULED_AFTER", value_parser = parse_duration, default_value = "15m")]
    pub stuck_scheduled_after: Duration,

    /// An in-progress run with no update (heartbeat) for this long is stuck.
    #[arg(long, env = "SYNCWATCH_STUCK_IN_PROGRESS_AFTER", value_parser = parse_duration, default_value = "30m")]
    pub stuck_in_progress_after: Duration,

    /// An in-progress run running longer than this is stuck, heartbeats or not.
    #[arg(long, env = "SYNCWATCH_MAX_RUN_DURATION", value_parser = parse_duration, default_value = "6h")]
    pub max_run_duration: Duration,

    /// Fail runs stuck for this long (off when unset).
    #[arg(long, env = "SYNCWATCH_REAP_STUCK_AFTER", value_parser = parse_duration)]
    pub reap_stuck_after: Option<Duration>,

    /// How many of the worst connections get a consecutive-failures series.
    #[arg(long, env = "SYNCWATCH_TOP_FAILING_CONNECTIONS", default_value_t = 50)]
    pub top_failing_connections: usize,

    /// Most distinct `connector` label values; later connectors are reported as "other".
    #[arg(long, env = "SYNCWATCH_MAX_CONNECTORS", default_value_t = 500)]
    pub max_connectors: usize,

    /// Run duration histogram buckets, in seconds, comma-separated.
    #[arg(long, env = "SYNCWATCH_DURATION_BUCKETS", value_delimiter = ',', value_parser = parse_bucket,
          default_value = "1,5,15,30,60,120,300,600,1200,1800,3600,7200,14400,21600")]
    pub duration_buckets: Vec<f64>,

    /// Dispatch delay histogram buckets, in seconds, comma-separated.
    #[arg(long, env = "SYNCWATCH_DISPATCH_DELAY_BUCKETS", value_delimiter = ',', value_parser = parse_bucket,
          default_value = "0.5,1,5,15,30,60,300,900,3600")]
    pub dispatch_delay_buckets: Vec<f64>,

    /// Longest one scan may take before it is abandoned and counted as an error.
    #[arg(long, env = "SYNCWATCH_SCAN_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub scan_timeout: Duration,

    /// Postgres: the server cancels a scanner query running longer than this (the scan
    /// fails and is retried at the next interval). `0s` turns it off.
    #[arg(long, env = "SYNCWATCH_SCAN_STATEMENT_TIMEOUT", value_parser = parse_duration, default_value = "25s")]
    pub scan_statement_timeout: Duration,
}

impl ScanArgs {
    pub fn to_config(&self) -> anyhow::Result<crate::scan::ScanConfig> {
        for (name, buckets) in [
            ("--duration-buckets", &self.duration_buckets),
            ("--dispatch-delay-buckets", &self.dispatch_delay_buckets),
        ] {
            if buckets.is_empty() || buckets.windows(2).any(|w| w[0] >= w[1]) {
                anyhow::bail!("{name} must be a non-empty, strictly increasing list");
            }
        }
        if self.scan_interval.is_zero() {
            anyhow::bail!("--scan-interval must be positive");
        }
        if self.scan_timeout.is_zero() {
            anyhow::bail!("--scan-timeout must be positive");
        }
        Ok(crate::scan::ScanConfig {
            interval: self.scan_interval,
            late_commit_window: self.late_commit_window,
            rebaseline_interval: self.rebaseline_interval,
            stuck_scheduled_after: self.stuck_scheduled_after,
            stuck_in_progress_after: self.stuck_in_progress_after,
            max_run_duration: self.max_run_duration,
            reap_stuck_after: self.reap_stuck_after,
            top_failing_connections: self.top_failing_connections,
            max_connectors: self.max_connectors,
            duration_buckets: self.duration_buckets.clone(),
            dispatch_delay_buckets: self.dispatch_delay_buckets.clone(),
            timeout: self.scan_timeout,
            checkpoint: true,
        })
    }
}

fn parse_bucket(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("bucket {text:?} is not a number"))?;
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "bucket {text:?} must be a positive number of seconds"
        ))
    }
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Store URL: `postgres://…` for production, `sqlite://path` for the embedded store
    /// (the file is created if missing).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://syncwatch.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// Log format.
    #[arg(long, env = "SYNCWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Most connections the store pool opens.
    #[arg(
        long,
        env = "SYNCWATCH_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub db_max_connections: u32,

    /// How long a request waits for a store connection before it gets 503.
    #[arg(long, env = "SYNCWATCH_DB_ACQUIRE_TIMEOUT", value_parser = parse_duration, default_value = "5s", global = true)]
    pub db_acquire_timeout: Duration,

    /// Postgres: the server cancels an API statement running longer than this (the
    /// request gets 503). `0s` turns it off.
    #[arg(long, env = "SYNCWATCH_DB_STATEMENT_TIMEOUT", value_parser = parse_duration, default_value = "10s", global = true)]
    pub db_statement_timeout: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the HTTP API.
    #[arg(long, env = "SYNCWATCH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address of the metrics listener (`/metrics`).
    #[arg(
        long,
        env = "SYNCWATCH_METRICS_LISTEN",
        default_value = "127.0.0.1:9477"
    )]
    pub metrics_listen: SocketAddr,

    /// Comma-separated bearer tokens accepted on `/v1`. Prefer the file form in production.
    #[arg(
        long,
        env = "SYNCWATCH_API_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_tokens: Vec<String>,

    /// File with one bearer token per line (blank lines and `#` comments ignored).
    #[arg(long, env = "SYNCWATCH_API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,

    /// Serve `/v1` without authentication on a non-loopback address.
    #[arg(long, env = "SYNCWATCH_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// Largest request body accepted; larger ones get 413.
    #[arg(long, env = "SYNCWATCH_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Longest an API request may take, body upload included; slower requests get 503.
    #[arg(long, env = "SYNCWATCH_REQUEST_TIMEOUT", value_parser = parse_duration, default_value = "15s")]
    pub request_timeout: Duration,

    /// Bearer token required on the metrics listener (open when unset).
    #[arg(long, env = "SYNCWATCH_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Tokens from the flag or environment variable plus the tokens file, trimmed, blanks dropped.
pub fn load_api_tokens(args: &ServeArgs) -> anyhow::Result<Vec<String>> {
    let mut tokens: Vec<String> = args
        .api_tokens
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(path) = &args.api_tokens_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read API tokens file {}: {e}", path.display()))?;
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
        if tokens.is_empty() {
            anyhow::bail!("API tokens file {} holds no token", path.display());
        }
    }
    Ok(tokens)
}

/// With no token configured, `/v1` is open; that is only allowed on loopback unless the
/// operator says otherwise.
pub fn check_listen_security(
    listen: SocketAddr,
    tokens: &[String],
    insecure_no_auth: bool,
) -> anyhow::Result<()> {
    if tokens.is_empty() && !listen.ip().is_loopback() && !insecure_no_auth {
        anyhow::bail!(
            "refusing to serve the API on {listen} without authentication: set SYNCWATCH_API_TOKENS \
             or SYNCWATCH_API_TOKENS_FILE, listen on a loopback address, or pass --insecure-no-auth"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_api_only_on_loopback_unless_forced() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let local6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert!(check_listen_security(public, &[], false).is_err());
        assert!(check_listen_security(public, &[], true).is_ok());
        assert!(check_listen_security(public, &["t".into()], false).is_ok());
        assert!(check_listen_security(local, &[], false).is_ok());
        assert!(check_listen_security(local6, &[], false).is_ok());
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = Cli::try_parse_from(["syncwatch", "serve"]).unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(serve.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(serve.metrics_listen, "127.0.0.1:9477".parse().unwrap());
        assert_eq!(serve.max_body_bytes, 1024 * 1024);
        assert_eq!(cli.global.db_acquire_timeout, Duration::from_secs(5));
        assert_eq!(cli.global.db_statement_timeout, Duration::from_secs(10));
        assert_eq!(serve.request_timeout, Duration::from_secs(15));
        assert_eq!(serve.scan.scan_statement_timeout, Duration::from_secs(25));
        let scan = serve.scan.to_config().unwrap();
        let defaults = crate::scan::ScanConfig::default();
        assert_eq!(scan.interval, Duration::from_secs(15));
        assert_eq!(scan.late_commit_window, Duration::from_secs(300));
        assert_eq!(scan.duration_buckets, defaults.duration_buckets);
        assert_eq!(scan.dispatch_delay_buckets, defaults.dispatch_delay_buckets);
        assert_eq!(scan.reap_stuck_after, None);
        assert_eq!(
            (scan.top_failing_connections, scan.max_connectors),
            (50, 500)
        );
    }

    #[test]
    fn tokens_come_from_the_list_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# ops\nfile-token\n\n").unwrap();
        let cli = Cli::try_parse_from([
            "syncwatch",
            "serve",
            "--api-tokens",
            "a, b",
            "--api-tokens-file",
            file.to_str().unwrap(),
        ])
        .unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(
            load_api_tokens(&serve).unwrap(),
            vec!["a", "b", "file-token"]
        );
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    #[test]
    fn buckets_must_be_positive_and_increasing() {
        let parse = |b: &str| {
            Cli::try_parse_from(["syncwatch", "scan", "--once", "--duration-buckets", b])
                .map_err(|e| e.to_string())
                .and_then(|cli| match cli.command {
                    Command::Scan(s) => s.scan.to_config().map_err(|e| e.to_string()),
                    _ => unreachable!(),
                })
        };
        assert_eq!(
            parse("1,2.5,10").unwrap().duration_buckets,
            vec![1.0, 2.5, 10.0]
        );
        for bad in ["", "2,1", "1,1", "-1,2", "x", "inf"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
