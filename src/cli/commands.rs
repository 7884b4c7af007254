//! What each command does.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::SystemClock;
use crate::metrics::Metrics;
use crate::scan::{ScanConfig, Scanner};
use crate::startup::{shutdown_signal, Application, ServeSettings, StoreSettings};
use crate::store::Lease;

/// `syncwatch serve`: until SIGINT or SIGTERM.
pub async fn serve(store: &StoreSettings, serve: &ServeSettings) -> anyhow::Result<ExitCode> {
    tracing::info!(
        store = %store.database_url,
        listen = %serve.listen,
        "starting syncwatch {}",
        env!("CARGO_PKG_VERSION")
    );
    let app = Application::build(store, serve).await?;
    app.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("syncwatch stopped");
    Ok(ExitCode::SUCCESS)
}

/// `syncwatch migrate`: apply pending migrations.
pub async fn migrate(settings: &StoreSettings) -> anyhow::Result<ExitCode> {
    let store = settings.open_and_migrate(None).await?;
    let schema = store.schema_status().await?;
    println!(
        "schema of {} is at version {}",
        settings.database_url,
        schema.applied.unwrap_or(0)
    );
    Ok(ExitCode::SUCCESS)
}

/// `syncwatch scan --once`: one scan, the exposition on stdout.
pub async fn scan_once(settings: &StoreSettings, scan: &ScanConfig) -> anyhow::Result<ExitCode> {
    scan.validate()?;
    let config = ScanConfig {
        checkpoint: false,
        ..scan.clone()
    };
    let store = settings.open(config.statement_timeout()).await?;
    let schema = store.schema_status().await?;
    if !schema.is_current() {
        anyhow::bail!(
            "the schema of {} is not current (applied {:?}, expected {}); run `syncwatch migrate`",
            settings.database_url,
            schema.applied,
            schema.expected
        );
    }
    let metrics = Metrics::new();
    let mut scanner = Scanner::new(
        store,
        Lease::Always,
        config,
        Arc::new(SystemClock),
        metrics.clone(),
    );
    // The build works in bounded chunks, a scan's budget at a time: scan until it has
    // caught up, so the exposition holds the whole history.
    while scanner.scan_once().await?.building {}
    print!("{}", metrics.render());
    Ok(ExitCode::SUCCESS)
}

/// `syncwatch prune --older-than D`: hard-delete terminal runs completed before the
/// cut-off, in small batches, never past the scanner's saved checkpoint.
pub async fn prune(settings: &StoreSettings, older_than: Duration) -> anyhow::Result<ExitCode> {
    let store = settings.open(None).await?;
    let Some((settled, totals)) = store.load_checkpoint().await? else {
        anyhow::bail!(
            "{} has no scanner checkpoint yet: run `syncwatch serve` on it until its first \
             build has caught up (syncwatch_baseline_progress_ratio 1), so the history is \
             counted before it is deleted",
            settings.database_url
        );
    };
    if !crate::scan::saved_with_connections(&totals) {
        anyhow::bail!(
            "the scanner checkpoint of {} holds no connection states yet: run `syncwatch \
             serve` (this version) on it until it has saved one (--checkpoint-interval)",
            settings.database_url
        );
    }
    let wanted = store.db_now().await? - chrono::Duration::from_std(older_than)?;
    let before = wanted.min(settled);
    if before < wanted {
        println!(
            "prune: the scanner checkpoint is settled up to {settled}; deleting only what \
             completed before it"
        );
    }
    let mut deleted = 0;
    loop {
        let n = store.prune(before, PRUNE_BATCH).await?;
        deleted += n;
        if n < PRUNE_BATCH {
            break;
        }
    }
    println!("prune: deleted {deleted} terminal runs completed before {before}");
    Ok(ExitCode::SUCCESS)
}

/// Terminal runs one `prune` statement deletes: small, so no statement holds its locks
/// for long.
const PRUNE_BATCH: u64 = 5_000;

/// Prints one line per check; exits non-zero when any fails.
pub async fn check(settings: &StoreSettings) -> anyhow::Result<ExitCode> {
    println!("config: ok (store {})", settings.database_url);
    let store = match settings.open(None).await {
        Ok(store) => store,
        Err(e) => {
            println!("store: FAILED: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Err(e) = store.ping().await {
        println!("store: FAILED: {e}");
        return Ok(ExitCode::FAILURE);
    }
    println!("store: ok");
    match store.schema_status().await {
        Ok(schema) if schema.is_current() => {
            println!("schema: ok (version {})", schema.expected);
            Ok(ExitCode::SUCCESS)
        }
        Ok(schema) if schema.applied.is_some_and(|v| v > schema.expected) => {
            println!(
                "schema: FAILED: the store is at version {:?}, newer than this binary's {}; \
                 upgrade syncwatch",
                schema.applied, schema.expected
            );
            Ok(ExitCode::FAILURE)
        }
        Ok(schema) => {
            println!(
                "schema: FAILED: applied {:?}, expected {}{}; run `syncwatch migrate`",
                schema.applied,
                schema.expected,
                if schema.dirty {
                    ", a migration is dirty"
                } else {
                    ""
                }
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            println!("schema: FAILED: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
