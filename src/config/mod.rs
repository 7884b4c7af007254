//! Command line and environment: every setting is a flag with an environment variable.
//! The reference table in `docs/configuration.md` lists them all.

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
