//! The scanner's settings: every flag of `serve` and `scan --once` that tunes scanning,
//! with its default, defined once.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::LearnedRules;
use crate::domain::FailureRules;

use crate::settings::{parse_bucket, parse_duration};

/// The shortest `--scan-interval` accepted: shorter would keep a core busy reading the
/// store for signals no scrape can follow.
const MIN_SCAN_INTERVAL: Duration = Duration::from_millis(100);

/// How the scanner reads the store and what it exports. `ScanConfig::default()` is the
/// set of flag defaults.
#[derive(Debug, Clone, Args)]
pub struct ScanConfig {
    /// How often the scanner reads the store.
    #[arg(long = "scan-interval", env = "SYNCWATCH_SCAN_INTERVAL", value_parser = parse_duration, default_value = "15s")]
    pub interval: Duration,

    /// Overlap re-read by every scan so runs whose transaction commits late are counted.
    #[arg(long, env = "SYNCWATCH_LATE_COMMIT_WINDOW", value_parser = parse_duration, default_value = "5m")]
    pub late_commit_window: Duration,

    /// How often a repair sweep re-aggregates the recent history (from one to two
    /// `--repair-horizon`s back) and adds the runs the window missed.
    #[arg(long, env = "SYNCWATCH_REPAIR_INTERVAL", value_parser = parse_duration, default_value = "1h")]
    pub repair_interval: Duration,

    /// The old spelling of `--repair-interval` (and `SYNCWATCH_REBASELINE_INTERVAL`), still
    /// accepted; [`ScanConfig::deprecations`] applies it and says so.
    #[arg(long = "rebaseline-interval", env = "SYNCWATCH_REBASELINE_INTERVAL", value_parser = parse_duration,
          hide = true, conflicts_with = "repair_interval")]
    pub rebaseline_interval: Option<Duration>,

    /// How far back a repair sweep reaches at least: runs that become visible later than
    /// `--late-commit-window` but within this of their completion are counted by the next
    /// sweep.
    #[arg(long, env = "SYNCWATCH_REPAIR_HORIZON", value_parser = parse_duration, default_value = "24h")]
    pub repair_horizon: Duration,

    /// Also re-aggregate the whole history this often (for back-dated writes older than
    /// `--repair-horizon`). Off when unset: its cost grows with the history.
    #[arg(long, env = "SYNCWATCH_FULL_REPAIR_INTERVAL", value_parser = parse_duration)]
    pub full_repair_interval: Option<Duration>,

    /// PostgreSQL: the scanner lease's deadline. The leader renews it every quarter of this;
    /// one that stops renewing (stopped, hung, cut off from the database) loses it within
    /// this, and a follower takes over at its next scan. At least 2s.
    #[arg(long, env = "SYNCWATCH_LEASE_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub lease_timeout: Duration,

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
    #[arg(long = "scan-timeout", env = "SYNCWATCH_SCAN_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,

    /// Postgres: the server cancels a scanner query running longer than this (the scan
    /// fails and is retried at the next interval). `0s` turns it off.
    #[arg(long = "scan-statement-timeout", env = "SYNCWATCH_SCAN_STATEMENT_TIMEOUT", value_parser = parse_duration, default_value = "25s")]
    pub statement_timeout: Duration,

    /// Terminal runs one statement of the scanner's build (and of its repair sweep)
    /// aggregates at most; halved automatically when a chunk runs longer than
    /// `--scan-statement-timeout`.
    #[arg(
        long = "scan-chunk-rows",
        env = "SYNCWATCH_SCAN_CHUNK_ROWS",
        default_value_t = 100_000
    )]
    pub chunk_rows: u64,

    /// Connections one statement of the first per-connection walk reads at most.
    #[arg(
        long = "scan-chunk-connections",
        env = "SYNCWATCH_SCAN_CHUNK_CONNECTIONS",
        default_value_t = 2_000
    )]
    pub chunk_connections: usize,

    /// How often the leader saves its totals and changed connection states (the
    /// checkpoint a restart or a new leader continues from).
    #[arg(long, env = "SYNCWATCH_CHECKPOINT_INTERVAL", value_parser = parse_duration, default_value = "1m")]
    pub checkpoint_interval: Duration,

    /// Hard-delete terminal runs completed longer ago than this (the leader, in small
    /// batches, never past its saved checkpoint). Off when unset. Exported numbers keep
    /// the deleted history.
    #[arg(long, env = "SYNCWATCH_RETENTION", value_parser = parse_duration)]
    pub retention: Option<Duration>,

    /// A connection is overdue when its latest scheduled (`cloud_task`) run was created
    /// longer ago than this many times its learned interval between such runs.
    #[arg(long, env = "SYNCWATCH_OVERDUE_FACTOR", default_value_t = 3.0)]
    pub overdue_factor: f64,

    /// A connection silent for longer than this is retired: no longer overdue, and its
    /// learned schedule forgotten.
    #[arg(long, env = "SYNCWATCH_OVERDUE_FORGET_AFTER", value_parser = parse_duration, default_value = "2d")]
    pub overdue_forget_after: Duration,

    /// A live run overruns when it has been in progress longer than this many times the
    /// p95 of its connection's latest successful durations (and `--overrun-min`).
    #[arg(long, env = "SYNCWATCH_OVERRUN_FACTOR", default_value_t = 3.0)]
    pub overrun_factor: f64,

    /// The shortest run that can count as overrunning.
    #[arg(long, env = "SYNCWATCH_OVERRUN_MIN", value_parser = parse_duration, default_value = "5m")]
    pub overrun_min: Duration,

    /// YAML file of failure rules (`- {reason, owner, pattern}`, first match wins) that
    /// classify failed runs for `connector_sync_failures_total`; the built-in rules when
    /// unset. Read and checked at startup: a bad file stops the command with its line.
    #[arg(long, env = "SYNCWATCH_FAILURE_RULES", value_parser = load_failure_rules)]
    pub failure_rules: Option<Arc<FailureRules>>,

    /// Start from the saved totals (the store's checkpoint) when starting or gaining the
    /// lease, and save them after each build. Off for `scan --once`, which only reads.
    #[arg(skip = true)]
    pub checkpoint: bool,
}

fn load_failure_rules(path: &str) -> Result<Arc<FailureRules>, String> {
    FailureRules::load(std::path::Path::new(path))
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

impl Default for ScanConfig {
    fn default() -> Self {
        crate::settings::defaults()
    }
}

impl ScanConfig {
    /// The checks a flag's own parser cannot make.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, buckets) in [
            ("--duration-buckets", &self.duration_buckets),
            ("--dispatch-delay-buckets", &self.dispatch_delay_buckets),
        ] {
            if buckets.is_empty() || buckets.windows(2).any(|w| w[0] >= w[1]) {
                anyhow::bail!("{name} must be a non-empty, strictly increasing list");
            }
        }
        if self.interval < MIN_SCAN_INTERVAL {
            anyhow::bail!(
                "--scan-interval must be at least {}ms: every scan reads the store",
                MIN_SCAN_INTERVAL.as_millis()
            );
        }
        if self.timeout.is_zero() {
            anyhow::bail!("--scan-timeout must be positive");
        }
        if self.lease_timeout < crate::store::MIN_LEASE_TIMEOUT {
            anyhow::bail!(
                "--lease-timeout must be at least {:?}: the leader renews it every quarter",
                crate::store::MIN_LEASE_TIMEOUT
            );
        }
        if self.chunk_rows == 0 || self.chunk_connections == 0 {
            anyhow::bail!("--scan-chunk-rows and --scan-chunk-connections must be positive");
        }
        for (name, factor) in [
            ("--overdue-factor", self.overdue_factor),
            ("--overrun-factor", self.overrun_factor),
        ] {
            if !(factor.is_finite() && factor >= 1.0) {
                anyhow::bail!("{name} must be a number of at least 1");
            }
        }
        if self.retention.is_some_and(|r| r < self.late_commit_window) {
            anyhow::bail!("--retention must be at least --late-commit-window");
        }
        Ok(())
    }

    /// Apply the flags given in an old spelling (a `--repair-interval` given as
    /// `--rebaseline-interval`), and say which, for the caller to log once logging is up.
    pub fn deprecations(&mut self) -> Vec<&'static str> {
        let mut said = Vec::new();
        if let Some(interval) = self.rebaseline_interval.take() {
            self.repair_interval = interval;
            said.push(
                "--rebaseline-interval (SYNCWATCH_REBASELINE_INTERVAL) is deprecated: use \
                 --repair-interval (SYNCWATCH_REPAIR_INTERVAL)",
            );
        }
        said
    }

    /// How the learned signals decide overdue and overrunning.
    pub fn learned_rules(&self) -> LearnedRules {
        let d = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        LearnedRules {
            overdue_factor: self.overdue_factor,
            forget_after: d(self.overdue_forget_after),
            overrun_factor: self.overrun_factor,
            overrun_min: d(self.overrun_min),
        }
    }

    /// The failure rules in force.
    pub fn rules(&self) -> Arc<FailureRules> {
        self.failure_rules.clone().unwrap_or_default()
    }

    /// The scanner statements' timeout, `None` when off.
    pub fn statement_timeout(&self) -> Option<Duration> {
        Some(self.statement_timeout).filter(|t| !t.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        scan: ScanConfig,
    }

    fn parse(args: &[&str]) -> anyhow::Result<ScanConfig> {
        let flags =
            Flags::try_parse_from(std::iter::once("syncwatch").chain(args.iter().copied()))?;
        flags.scan.validate()?;
        Ok(flags.scan)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let scan = ScanConfig::default();
        assert_eq!(scan.interval, Duration::from_secs(15));
        assert_eq!(scan.late_commit_window, Duration::from_secs(300));
        assert_eq!(scan.repair_interval, Duration::from_secs(3600));
        assert_eq!(scan.timeout, Duration::from_secs(30));
        assert_eq!(scan.statement_timeout, Duration::from_secs(25));
        // The design's defaults, in seconds.
        assert_eq!(
            scan.duration_buckets,
            [
                1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
                14400.0, 21600.0
            ]
        );
        assert_eq!(
            scan.dispatch_delay_buckets,
            [0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0]
        );
        assert_eq!(scan.reap_stuck_after, None);
        assert_eq!(
            (scan.top_failing_connections, scan.max_connectors),
            (50, 500)
        );
        assert!(scan.checkpoint);
        assert_eq!((scan.chunk_rows, scan.chunk_connections), (100_000, 2_000));
        assert_eq!(scan.checkpoint_interval, Duration::from_secs(60));
        assert_eq!(scan.retention, None);
        assert_eq!(scan.repair_horizon, Duration::from_secs(24 * 3600));
        assert_eq!(scan.full_repair_interval, None);
        scan.validate().unwrap();
    }

    #[test]
    fn buckets_must_be_positive_and_increasing() {
        assert_eq!(
            parse(&["--duration-buckets", "1,2.5,10"])
                .unwrap()
                .duration_buckets,
            vec![1.0, 2.5, 10.0]
        );
        for bad in ["", "2,1", "1,1", "-1,2", "x", "inf"] {
            assert!(parse(&["--duration-buckets", bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn zero_interval_and_timeout_are_refused() {
        assert!(parse(&["--scan-interval", "0s"]).is_err());
        assert!(parse(&["--scan-timeout", "0s"]).is_err());
        assert!(parse(&["--scan-interval", "1s"]).is_ok());
        assert!(parse(&["--scan-chunk-rows", "0"]).is_err());
        assert!(
            parse(&["--retention", "1m"]).is_err(),
            "shorter than the window"
        );
        assert!(parse(&["--retention", "30d"]).is_ok());
    }
}
