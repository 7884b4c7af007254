//! The command line: the flags (each settings struct is defined once, beside the code it
//! configures, and flattened here) and the commands `serve`, `migrate`, `check` and
//! `scan --once`. Every flag has an environment variable; README.md lists them all.

mod commands;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::scan::ScanConfig;
use crate::startup::{ServeSettings, StoreSettings};
use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "syncwatch",
    version,
    about = "Lifecycle store and metrics sidecar for data-connector sync runs"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "SYNCWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub(crate) store: StoreSettings,

    #[command(subcommand)]
    pub(crate) command: Command,
}

// Parsed once at start and matched once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the HTTP API, the metrics listener and the scanner (and apply pending
    /// migrations first).
    Serve(ServeSettings),
    /// Apply pending migrations and exit.
    Migrate,
    /// Check configuration, store connectivity and schema version (with `--observe-only`,
    /// the observed table), or a failure rules file; exit non-zero on a problem.
    Check(CheckArgs),
    /// Scan the store and print the metrics exposition.
    Scan(ScanOnce),
    /// Hard-delete terminal runs older than `--older-than`, in small batches. The
    /// exported numbers keep them: the scanner's checkpoint already counts them.
    Prune(Prune),
}

/// The flags of `prune`.
#[derive(Debug, Clone, Args)]
pub(crate) struct Prune {
    /// Delete terminal runs that completed longer ago than this (active runs are never
    /// touched).
    #[arg(long, value_parser = crate::settings::parse_duration)]
    pub(crate) older_than: std::time::Duration,
}

/// The flags of `check`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CheckArgs {
    /// Check this failure rules file instead of the store: print its rules and how sample
    /// error texts classify; exit non-zero, with the line and reason, when it is unusable.
    #[arg(long)]
    pub(crate) failure_rules: Option<std::path::PathBuf>,

    /// An error text to classify with `--failure-rules` (repeatable; a built-in set of
    /// samples when none is given).
    #[arg(long, requires = "failure_rules")]
    pub(crate) sample: Vec<String>,
}

/// The flags of `scan`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ScanOnce {
    /// Scan once, print the exposition to stdout and exit (non-zero when the store is
    /// unreachable). Required: continuous scanning is part of `serve`.
    #[arg(long, required = true)]
    pub(crate) once: bool,

    #[command(flatten)]
    pub(crate) scan: ScanConfig,
}

impl Cli {
    /// Apply flags given in an old spelling, returning one line per such flag to log.
    fn deprecations(&mut self) -> Vec<&'static str> {
        match &mut self.command {
            Command::Serve(serve) => serve.scan.deprecations(),
            Command::Scan(args) => args.scan.deprecations(),
            _ => Vec::new(),
        }
    }
}

/// Run the command `cli` names (after logging that a flag was given in an old spelling).
pub async fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    for line in cli.deprecations() {
        tracing::warn!("{line}");
    }
    match cli.command {
        Command::Serve(serve) => commands::serve(&cli.store, &serve).await,
        Command::Migrate => commands::migrate(&cli.store).await,
        Command::Check(args) => match &args.failure_rules {
            Some(path) => Ok(commands::check_failure_rules(path, &args.sample)),
            None => commands::check(&cli.store).await,
        },
        Command::Scan(args) => commands::scan_once(&cli.store, &args.scan).await,
        Command::Prune(args) => commands::prune(&cli.store, args.older_than).await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn serve(args: &[&str]) -> (Cli, ServeSettings) {
        let cli = Cli::try_parse_from(["syncwatch", "serve"].iter().chain(args)).unwrap();
        let Command::Serve(serve) = &cli.command else {
            panic!("serve expected")
        };
        let serve = serve.clone();
        (cli, serve)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let (cli, serve) = serve(&[]);
        assert_eq!(serve.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(serve.metrics_listen, "127.0.0.1:9477".parse().unwrap());
        assert_eq!(serve.api.max_body_bytes, 1024 * 1024);
        assert_eq!(serve.api.request_timeout, Duration::from_secs(15));
        assert_eq!(cli.store.db_acquire_timeout, Duration::from_secs(5));
        assert_eq!(cli.store.db_statement_timeout, Duration::from_secs(10));
        assert_eq!(cli.store.database_url.to_string(), "sqlite://syncwatch.db");
        assert_eq!(serve.scan.statement_timeout, Duration::from_secs(25));
        assert_eq!(serve.scan.interval, ScanConfig::default().interval);
        assert!(serve.api.ui, "the status page is on by default");
        assert_eq!(serve.api.public_url, None);
    }

    #[test]
    fn the_old_spelling_of_a_renamed_flag_still_works_and_is_reported() {
        let (_, plain) = serve(&["--repair-interval", "2h"]);
        assert_eq!(plain.scan.repair_interval, Duration::from_secs(7200));
        let (mut cli, _) = serve(&["--rebaseline-interval", "3h"]);
        let said = cli.deprecations();
        let Command::Serve(serve) = &cli.command else {
            panic!("serve expected")
        };
        assert_eq!(serve.scan.repair_interval, Duration::from_secs(3 * 3600));
        assert_eq!(said.len(), 1);
        assert!(said[0].contains("--repair-interval"), "{}", said[0]);
        assert!(
            Cli::try_parse_from([
                "syncwatch",
                "serve",
                "--rebaseline-interval",
                "3h",
                "--repair-interval",
                "2h"
            ])
            .is_err(),
            "both spellings at once are refused"
        );
        let help = Cli::try_parse_from(["syncwatch", "serve", "--help"])
            .unwrap_err()
            .to_string();
        assert!(
            help.contains("--repair-interval") && !help.contains("--rebaseline-interval"),
            "{help}"
        );
    }

    #[test]
    fn the_status_page_flags_parse_and_refuse_bad_urls() {
        let (_, serve) = serve(&[
            "--ui",
            "false",
            "--public-url",
            "https://ops.example.com/sw/",
        ]);
        assert!(!serve.api.ui);
        assert_eq!(
            serve.api.public_url.unwrap().as_str(),
            "https://ops.example.com/sw"
        );
        for bad in ["ops.example.com", "https://ops.example.com/?a=1"] {
            let Err(error) = Cli::try_parse_from(["syncwatch", "serve", "--public-url", bad])
            else {
                panic!("{bad} is refused as --public-url");
            };
            let error = error.to_string();
            assert!(error.contains("--public-url"), "{error}");
        }
    }

    #[test]
    fn tokens_come_from_the_list_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# ops\nfile-token\n\n").unwrap();
        let (_, serve) = serve(&[
            "--api-tokens",
            "a, b",
            "--api-tokens-file",
            file.to_str().unwrap(),
        ]);
        assert_eq!(serve.api_tokens().unwrap(), vec!["a", "b", "file-token"]);
    }

    #[test]
    fn scan_flags_reach_the_scanner_settings() {
        let cli = Cli::try_parse_from([
            "syncwatch",
            "scan",
            "--once",
            "--scan-interval",
            "2s",
            "--scan-timeout",
            "7s",
        ])
        .unwrap();
        let Command::Scan(args) = cli.command else {
            panic!("scan expected")
        };
        assert_eq!(args.scan.interval, Duration::from_secs(2));
        assert_eq!(args.scan.timeout, Duration::from_secs(7));
    }

    #[test]
    fn a_table_mapping_needs_observe_only() {
        let parse = |args: &[&str]| Cli::try_parse_from(["syncwatch", "check"].iter().chain(args));
        let cli = parse(&[]).unwrap();
        assert_eq!(
            cli.store.table_map().unwrap(),
            crate::store::TableMap::default()
        );
        for args in [
            &["--table", "app.sync_log"][..],
            &["--connection-column", "connection_id"],
            &["--connector-from", "metadata:slug"],
            &["--connection-id-from", "lookup:connection.public_id"],
            &["--state-database-url", "sqlite://state.db"],
        ] {
            let err = parse(args).unwrap().store.table_map().unwrap_err();
            assert!(
                err.to_string().contains("--observe-only"),
                "{args:?}: {err}"
            );
        }
        let cli = parse(&[
            "--observe-only",
            "--table",
            "app.sync_log",
            "--connector-from",
            "lookup:app.workspace_connector.slug",
        ])
        .unwrap();
        let map = cli.store.table_map().unwrap();
        assert!(map.observed);
        assert_eq!(map.table.quoted(), "\"app\".\"sync_log\"");
        // Names and sources are checked when the flags are parsed.
        assert!(parse(&["--observe-only", "--table", "a; drop table b"]).is_err());
        assert!(parse(&["--observe-only", "--connector-from", "slug"]).is_err());
        assert!(parse(&["--observe-only", "--connection-id-from", "metadata:id"]).is_err());
        let cli = parse(&[
            "--observe-only",
            "--connection-id-from",
            "lookup:workspace_connector.workspace_connector_id",
        ])
        .unwrap();
        assert_eq!(
            cli.store.table_map().unwrap().connection_id.to_string(),
            "lookup:workspace_connector.workspace_connector_id"
        );
    }

    #[test]
    fn a_token_list_with_no_token_is_an_error_never_an_open_listener() {
        let (_, blank) = serve(&["--api-tokens", " , "]);
        let err = blank.api_tokens().unwrap_err().to_string();
        assert!(err.contains("holds no token"), "{err}");
        let (_, given) = serve(&["--api-tokens", "a, ,b"]);
        assert_eq!(given.api_tokens().unwrap(), ["a", "b"]);
        let (_, none) = serve(&[]);
        assert!(none.api_tokens().unwrap().is_empty(), "unset: no token");
        for blank in ["", "  "] {
            let (_, metrics) = serve(&["--metrics-token", blank]);
            let err = metrics.metrics_token().unwrap_err().to_string();
            assert!(err.contains("is set but empty"), "{blank:?}: {err}");
        }
        let (_, metrics) = serve(&["--metrics-token", " s3cret "]);
        assert_eq!(metrics.metrics_token().unwrap().as_deref(), Some("s3cret"));
        assert_eq!(none.metrics_token().unwrap(), None);
    }

    #[test]
    fn every_duration_flag_is_bounded_when_parsed() {
        for flag in [
            "--stuck-scheduled-after",
            "--stuck-in-progress-after",
            "--max-run-duration",
            "--late-commit-window",
            "--reap-stuck-after",
            "--retention",
            "--repair-interval",
        ] {
            let Err(err) = Cli::try_parse_from(["syncwatch", "serve", flag, "99999999d"]) else {
                panic!("{flag} 99999999d was accepted");
            };
            assert!(
                err.to_string().contains("longer than 100 years"),
                "{flag}: {err}"
            );
        }
        assert!(Cli::try_parse_from(["syncwatch", "prune", "--older-than", "99999999d"]).is_err());
        assert!(Cli::try_parse_from(["syncwatch", "prune", "--older-than", "3650d"]).is_ok());
    }

    #[test]
    fn absurd_values_are_refused_before_anything_starts() {
        for (args, said) in [
            (
                &["--scan-interval", "1ms"][..],
                "--scan-interval must be at least 100ms",
            ),
            (
                &["--request-timeout", "0s"],
                "--request-timeout must be positive",
            ),
        ] {
            let (_, serve) = serve(args);
            let err = serve.validate().unwrap_err().to_string();
            assert!(err.contains(said), "{args:?}: {err}");
        }
        let (_, fine) = serve(&["--scan-interval", "100ms"]);
        fine.validate().unwrap();
        let (cli, _) = serve(&["--db-acquire-timeout", "0s"]);
        let err = cli.store.table_map().unwrap_err().to_string();
        assert!(
            err.contains("--db-acquire-timeout must be positive"),
            "{err}"
        );
    }

    #[test]
    fn the_state_store_may_not_be_the_observed_database() {
        let parse = |args: &[&str]| Cli::try_parse_from(["syncwatch", "check"].iter().chain(args));
        let cli = parse(&[
            "--observe-only",
            "--database-url",
            "postgres://reader@127.0.0.1:5432/app",
            "--state-database-url",
            "postgres://postgres:pw@localhost/app",
        ])
        .unwrap();
        let err = cli.store.table_map().unwrap_err().to_string();
        assert!(err.contains("names the observed database"), "{err}");
        assert!(!err.contains("pw@"), "no password: {err}");
        let cli = parse(&[
            "--observe-only",
            "--database-url",
            "postgres://reader@127.0.0.1:5432/app",
            "--state-database-url",
            "postgres://postgres@localhost/app_state",
        ])
        .unwrap();
        assert!(cli.store.table_map().is_ok());
    }
}
