//! Telemetry about syncwatch itself: its logs, and (with the default `otlp` feature) the
//! OTLP export of its metrics and spans.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

#[cfg(feature = "otlp")]
pub mod otlp;

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `RUST_LOG` picks the level (default `info`); `format` the shape. Text is coloured only
/// when standard error is a terminal, so files and pipes get plain lines.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
