//! `syncwatch-tools`: parse the command line, set up logging, run the tool.

use clap::Parser;

use syncwatch_tools::cli::{self, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr, so stdout holds only the figures.
    syncwatch::telemetry::init_logging(syncwatch::telemetry::LogFormat::Text);
    match cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
