//! The command line of `syncwatch-tools`: `load` and `demo` with their flags and
//! environment variables, the store flags they share, and running them.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use syncwatch::settings::parse_duration;
use syncwatch::startup::{shutdown_signal, StoreSettings};

use crate::demo::{self, DemoConfig};
use crate::load::{self, LoadConfig, Target};

/// `syncwatch-tools`: drive a syncwatch service from outside.
#[derive(Debug, Parser)]
#[command(
    name = "syncwatch-tools",
    version,
    about = "Load generator and demo fleet for syncwatch"
)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreSettings,

    #[command(subcommand)]
    pub command: Command,
}

/// The two tools.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a fleet of connectors writing runs into the store (for dashboards and
    /// alerts to show something). Run `syncwatch serve` on the same store alongside.
    Demo(DemoArgs),
    /// Drive concurrent orchestrator clients through full run lifecycles against a running
    /// `syncwatch serve` (or the store directly), print throughput and latency, and check
    /// that nothing acknowledged was lost.
    Load(LoadArgs),
}

/// Flags of `load`.
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
    /// The load these flags describe.
    pub fn to_config(&self) -> anyhow::Result<LoadConfig> {
        if self.clients == 0 || self.connectors == 0 || self.connections_per_connector == 0 {
            anyhow::bail!(
                "--clients, --connectors and --connections-per-connector must be positive"
            );
        }
        if self.duration.is_zero() {
            anyhow::bail!("--duration must be positive");
        }
        Ok(LoadConfig {
            clients: self.clients,
            duration: self.duration,
            heartbeats: self.heartbeats,
            connectors: self.connectors,
            connections_per_connector: self.connections_per_connector,
            fail_every: self.fail_every,
            duplicate_create_every: self.duplicate_create_every,
            duplicate_finish_every: self.duplicate_finish_every,
            ..LoadConfig::default()
        })
    }
}

/// Flags of `demo`.
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
    /// Probability that a run is left stuck (never dispatched, or abandoned); stuck runs
    /// stay in the store when the demo stops.
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
    /// The fleet these flags describe.
    pub fn to_config(&self) -> anyhow::Result<DemoConfig> {
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
        Ok(DemoConfig {
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

/// Run the command; the exit code says whether its checks passed.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Demo(args) => run_demo(&cli.store, args).await,
        Command::Load(args) => run_load(&cli.store, args).await,
    }
}

async fn run_demo(store_args: &StoreSettings, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let config = args.to_config()?;
    let store = store_args.open_and_migrate(None).await?;
    tracing::info!(
        store = %store_args.database_url,
        connectors = ?demo::connectors(&config),
        "demo fleet running; start `syncwatch serve` on the same store to see it"
    );
    let report = demo::run(store, &config, shutdown_signal()).await?;
    println!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}

/// The load, its figures, then the checks; non-zero exit when any fails.
async fn run_load(store_args: &StoreSettings, args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let config = args.to_config()?;
    let store = match (args.direct, args.verify) {
        (true, _) => Some(store_args.open_and_migrate(None).await?),
        (false, true) => Some(store_args.open(None).await?),
        (false, false) => None,
    };
    let target = match (&store, args.direct) {
        (Some(store), true) => Target::Direct(store.clone()),
        _ => Target::api(&args.api_url, args.api_token.clone())?,
    };
    println!(
        "load: {} clients for {:?} against {} (connectors {}-000…)",
        config.clients,
        config.duration,
        if args.direct {
            store_args.database_url.to_string()
        } else {
            args.api_url.clone()
        },
        config.slug_prefix
    );
    let report = load::run(&target, &config, shutdown_signal()).await;
    println!("{}", report.summary());
    for v in &report.violations {
        println!("violation: {v}");
    }
    let mut failed =
        report.server_errors() > 0 || report.transport_errors > 0 || report.violation_count > 0;
    if let (true, Some(store)) = (args.verify, &store) {
        let v = load::verify(store, &config, &report, true).await?;
        println!(
            "verify: {} runs in the store, {} acknowledged creates, {} not terminal",
            v.rows,
            report.acked.len(),
            v.active_rows
        );
        for p in &v.problems {
            println!("verify: FAILED: {p}");
        }
        failed |= !v.problems.is_empty();
        if let Some(url) = &args.metrics_url {
            match load::wait_for_metrics(
                url,
                args.metrics_token.as_deref(),
                &config,
                &v.terminal,
                args.metrics_wait,
            )
            .await?
            {
                Ok(()) => println!(
                    "verify: connector_sync_runs_total equals the store's counts for {} connectors",
                    config.connectors
                ),
                Err(e) => {
                    println!("verify: FAILED: {e}");
                    failed = true;
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_keep_their_defaults() {
        let cli = Cli::try_parse_from(["syncwatch-tools", "load"]).unwrap();
        let Command::Load(load) = &cli.command else {
            panic!("load expected")
        };
        assert_eq!(load.api_url, "http://127.0.0.1:8080");
        assert_eq!(load.duration, Duration::from_secs(10));
        assert_eq!(load.metrics_wait, Duration::from_secs(60));
        assert_eq!(cli.store.db_acquire_timeout, Duration::from_secs(5));
        let cli = Cli::try_parse_from(["syncwatch-tools", "demo", "--tick", "250ms"]).unwrap();
        let Command::Demo(demo) = &cli.command else {
            panic!("demo expected")
        };
        assert_eq!(demo.tick, Duration::from_millis(250));
        assert_eq!(demo.to_config().unwrap().seed, 42);
    }

    #[test]
    fn metrics_url_needs_verify_and_rates_are_probabilities() {
        let no_verify = [
            "syncwatch-tools",
            "load",
            "--metrics-url",
            "http://x/metrics",
        ];
        assert!(Cli::try_parse_from(no_verify).is_err());
        let cli = Cli::try_parse_from(["syncwatch-tools", "demo", "--stuck-rate", "1.5"]).unwrap();
        let Command::Demo(demo) = &cli.command else {
            panic!("demo expected")
        };
        assert!(demo.to_config().is_err());
    }
}
