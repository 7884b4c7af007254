//! The commands: `serve`, `migrate`, `check`, `scan`, `demo`, `load`.

use std::process::ExitCode;

use anyhow::Context;

use std::sync::Arc;

use crate::app::{open_store, shutdown_signal, Application};
use crate::clock::SystemClock;
use crate::config::{Cli, Command, GlobalArgs, LoadArgs, ScanArgs};
use crate::metrics::Metrics;
use crate::scan::{Lease, Scanner};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(serve) => {
            tracing::info!(
                store = %cli.global.database_url,
                listen = %serve.listen,
                "starting syncwatch {}",
                env!("CARGO_PKG_VERSION")
            );
            let app = Application::build(&cli.global, &serve).await?;
            app.run_until_stopped(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let store = open_store(&cli.global, None).await?;
            store
                .migrate()
                .await
                .with_context(|| format!("migrating {}", cli.global.database_url))?;
            let schema = store.schema_status().await?;
            println!(
                "schema of {} is at version {}",
                cli.global.database_url,
                schema.applied.unwrap_or(0)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => check(&cli.global).await,
        Command::Scan(args) => scan_once(&cli.global, &args.scan).await,
        Command::Load(args) => load(&cli.global, &args).await,
        Command::Demo(args) => {
            let config = args.to_config()?;
            let store = open_store(&cli.global, None).await?;
            store
                .migrate()
                .await
                .with_context(|| format!("migrating {}", cli.global.database_url))?;
            tracing::info!(
                store = %cli.global.database_url,
                connectors = ?crate::demo::connectors(&config),
                "demo fleet running; start `syncwatch serve` on the same store to see it"
            );
            let report = crate::demo::run(store, &config, shutdown_signal()).await?;
            println!(
                "demo: created {} runs, {} succeeded, {} failed, {} left stuck",
                report.created, report.succeeded, report.failed, report.stuck
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `syncwatch load`: the load, its figures, then the checks; non-zero exit when any fails.
async fn load(global: &GlobalArgs, args: &LoadArgs) -> anyhow::Result<ExitCode> {
    use crate::load::{self, Target};
    let config = args.to_config()?;
    let store = if args.direct || args.verify {
        let store = open_store(global, None).await?;
        if args.direct {
            store
                .migrate()
                .await
                .with_context(|| format!("migrating {}", global.database_url))?;
        }
        Some(store)
    } else {
        None
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
            global.database_url.to_string()
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

/// `syncwatch scan --once`: one scan, the exposition on stdout.
async fn scan_once(global: &GlobalArgs, args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let config = crate::scan::ScanConfig {
        checkpoint: false,
        ..args.to_config()?
    };
    let store = open_store(global, Some(args.scan_statement_timeout)).await?;
    let schema = store.schema_status().await?;
    if !schema.is_current() {
        anyhow::bail!(
            "the schema of {} is not current (applied {:?}, expected {}); run `syncwatch migrate`",
            global.database_url,
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
    scanner.scan_once().await?;
    print!("{}", metrics.render());
    Ok(ExitCode::SUCCESS)
}

/// Prints one line per check; exits non-zero when any fails.
async fn check(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    println!("config: ok (store {})", global.database_url);
    let store = match open_store(global, None).await {
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
