//! Logging setup.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// `RUST_LOG` picks the level (default `info`); `--log-format` the shape.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

pub mod otlp;
