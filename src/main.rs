//! The `syncwatch` binary: parse the command line and run it (everything else is in the library).

use clap::Parser;

use syncwatch::cli::Cli;

/// Every scan builds and frees buffers of megabytes (rows read, a snapshot, its encoding);
/// glibc's allocator keeps much of that memory in per-thread arenas, jemalloc gives it
/// back (BENCHMARKS.md §4). Feature `jemalloc`, on by default.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    syncwatch::telemetry::init_logging(cli.log_format);
    match syncwatch::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
