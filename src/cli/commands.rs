//! What each command does.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::SystemClock;
use crate::domain::FailureRules;
use crate::metrics::Metrics;
use crate::scan::{prune_cutoff, prune_in_batches, ScanConfig, Scanner};
use crate::startup::{shutdown_signal, Application, ServeSettings, StoreSettings, NO_STATE_STORE};
use crate::store::{check_table, Lease, Probed, Store};

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

/// `syncwatch migrate`: apply pending migrations (whatever `--no-migrate` says: it is
/// `serve`'s).
pub async fn migrate(settings: &StoreSettings) -> anyhow::Result<ExitCode> {
    let mut settings = settings.clone();
    settings.no_migrate = false;
    let store = settings.open_and_migrate(None).await?;
    let schema = store.catalogue().schema_status().await?;
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
    let schema = store.catalogue().schema_status().await?;
    // An observed table is not syncwatch's schema, and `scan --once` saves no state.
    if !settings.observe_only && !schema.is_current() {
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
    if settings.observe_only {
        anyhow::bail!(
            "prune deletes runs from the table, and --observe-only never writes it: pruning \
             an observed table is its owner's call"
        );
    }
    let store = settings.open(None).await?;
    let Some((settled, totals)) = store.state().load_checkpoint().await? else {
        anyhow::bail!(
            "{} has no scanner checkpoint yet: run `syncwatch serve` on it until its first \
             build has caught up (syncwatch_build_progress_ratio 1), so the history is \
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
    let wanted = store.scan().db_now().await? - chrono::Duration::from_std(older_than)?;
    let before = prune_cutoff(wanted, settled);
    if before < wanted {
        println!(
            "prune: the scanner checkpoint is settled up to {settled}; deleting only what \
             completed before it"
        );
    }
    let mut deleted = 0;
    prune_in_batches(&store, before, None, |n| deleted += n).await?;
    // Every run before the cut-off is gone, and with them the connections that had none
    // later: a scanner starting from the checkpoint does not bring their states back.
    store.state().forget_connections_before(before).await?;
    println!("prune: deleted {deleted} terminal runs completed before {before}");
    Ok(ExitCode::SUCCESS)
}

/// Where the sync log was found, and the `search_path` every session gets.
fn pinned_line(settings: &StoreSettings, pinned: &crate::store::Pinned) -> String {
    let name = settings
        .table_map()
        .map(|m| m.table.name().to_owned())
        .unwrap_or_default();
    let path = pinned.setting();
    match &pinned.table_schema {
        Some(schema) => {
            format!("table: \"{schema}\".\"{name}\" (every session's search_path: {path})")
        }
        None => format!("table: {name} is not on the search_path {path} yet"),
    }
}

/// Prints one line per check; exits non-zero when any fails.
pub async fn check(settings: &StoreSettings) -> anyhow::Result<ExitCode> {
    println!("config: ok (store {})", settings.database_url);
    let store = match settings.open_to_check().await {
        Ok(store) => store,
        Err(e) => {
            println!("store: FAILED: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // `open` pinned the table; say where (the same resolution, against the same catalogue).
    match settings.pin().await {
        Ok(Some(pinned)) => println!("{}", pinned_line(settings, &pinned)),
        Ok(None) => {}
        Err(e) => {
            println!("table: FAILED: {e:#}");
            return Ok(ExitCode::FAILURE);
        }
    }
    if settings.observe_only {
        // The catalogue first: it says what is wrong where a read would only fail.
        return check_observed(settings, &store).await;
    }
    let schema = match store.catalogue().schema_status().await {
        Ok(schema) => schema,
        Err(e) => {
            println!("store: FAILED: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("store: ok");
    match Ok::<_, crate::store::StoreError>(schema) {
        Ok(schema) if schema.is_current() => {
            println!("schema: ok (version {})", schema.expected);
            // What `/readyz` proves: the file, a read, and no-op writes.
            if let Err(e) = store.catalogue().ping().await {
                println!("access: FAILED: {e}");
                return Ok(ExitCode::FAILURE);
            }
            println!("access: ok (read, and no-op writes of the sync log and checkpoint)");
            print_clock(&store).await;
            if print_probe(&store).await {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
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

/// `check --observe-only`: every column syncwatch reads and its type, whether the role may
/// read the table, and a ready `create index` statement for every index it wants and the
/// table lacks. Exits 0 when syncwatch can run on the table, even without those indexes.
async fn check_observed(settings: &StoreSettings, store: &Store) -> anyhow::Result<ExitCode> {
    let map = settings.table_map()?;
    let found = match store.catalogue().describe_table().await {
        Ok(found) => found,
        Err(e) => {
            println!("table {}: FAILED: {e}", map.table);
            return Ok(ExitCode::FAILURE);
        }
    };
    let report = check_table(store.catalogue().backend(), &map, &found);
    for line in &report.lines {
        println!("{line}");
    }
    let mut can_run = report.can_run;
    print_clock(store).await;
    if can_run {
        // The catalogue says yes; every read `serve` runs, through the mapping, proves it.
        if let Err(e) = store.catalogue().ping().await {
            println!("read through the mapping: FAILED: {e}");
            can_run = false;
        } else {
            println!(
                "read through the mapping: ok (connector from {})",
                map.connector
            );
            can_run = print_probe(store).await;
        }
    }
    match settings.describe_state().await {
        Ok(_) if settings.state_file_missing().is_some() => println!(
            "state: the state store {} does not exist yet; `syncwatch serve` (or `migrate`) \
             with the same flags creates it",
            settings
                .state_file_missing()
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
        Ok(None) => println!("state: {NO_STATE_STORE}"),
        Ok(Some(home)) => match store.catalogue().schema_status().await {
            Ok(schema) if schema.is_current() => println!("state: ok ({home})"),
            Ok(schema) => println!(
                "state: {home} is at version {:?}, expected {}: `syncwatch serve` (or \
                 `migrate`) with the same flags brings it up to date",
                schema.applied, schema.expected
            ),
            Err(e) => println!("state: {home} is unreadable: {e}"),
        },
        Err(e) => println!("state: cannot tell where it lives: {e:#}"),
    }
    if !report.create_index.is_empty() {
        println!(
            "{} index(es) missing: syncwatch runs without them, but its reads scan more of \
             the table than they need. For the table's owner:",
            report.create_index.len()
        );
        for statement in &report.create_index {
            println!("  {statement}");
        }
    }
    if can_run {
        println!("result: syncwatch can observe {}", map.table);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "result: syncwatch cannot observe {} (see FAILED above)",
            map.table
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Whether the table's newest completion agrees with the database clock: a warning, never
/// a failure (one re-dated row looks the same as a writer's zone).
async fn print_clock(store: &Store) {
    match crate::store::skew::check(store).await {
        Ok(None) => {
            println!("clock: ok (the newest completion is not ahead of the database clock)")
        }
        Ok(Some(said)) => println!("clock: WARNING: {said}"),
        Err(e) => println!("clock: not compared: {e}"),
    }
}

/// Every kind of read `serve` runs, once each through the same statements and decoders
/// ([`Store::probe`]), a line per read; whether all succeeded.
async fn print_probe(store: &Store) -> bool {
    let mut all = true;
    for Probed { read, outcome } in store.probe().await {
        match outcome {
            Ok(rows) => println!(
                "read {read}: ok ({rows} row{})",
                if rows == 1 { "" } else { "s" }
            ),
            Err(e) => {
                all = false;
                println!("read {read}: FAILED: {e}");
            }
        }
    }
    // Rows the reads skipped (another writer's values syncwatch cannot decode): not a
    // failure, `serve` skips and counts them too, but named here with their column.
    let skipped = store.skipped().counts();
    if skipped.is_empty() {
        println!("rows the reads could not decode: none among the rows read");
    }
    for (reason, column, rows) in skipped {
        println!(
            "rows the reads could not decode: {rows} ({column}: {}), skipped and counted by \
             serve as well (syncwatch_rows_skipped_total{{reason=\"{}\"}})",
            reason.as_str(),
            reason.as_str()
        );
    }
    all
}

/// Error texts `check --failure-rules` classifies when given none.
const SAMPLE_ERRORS: &[&str] = &[
    "HTTP 401 Unauthorized: invalid_grant",
    "HTTP 429 Too Many Requests",
    "request timed out after 30s",
    "upstream returned status 503 Service Unavailable",
    "read ECONNRESET",
    "failed to parse the response: unexpected field",
    "index out of range",
];

/// `check --failure-rules FILE`: the rules, and how sample error texts classify.
pub fn check_failure_rules(path: &std::path::Path, samples: &[String]) -> ExitCode {
    let rules = match FailureRules::load(path) {
        Ok(rules) => rules,
        Err(e) => {
            println!("failure rules: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reasons: Vec<String> = rules
        .reasons()
        .iter()
        .map(|(reason, owner)| format!("{reason} ({owner})"))
        .collect();
    println!(
        "failure rules {}: ok, {} rules; reasons: {}",
        path.display(),
        rules.describe().count(),
        reasons.join(", ")
    );
    let defaults: Vec<String>;
    let samples = if samples.is_empty() {
        defaults = SAMPLE_ERRORS.iter().map(|s| (*s).to_owned()).collect();
        &defaults
    } else {
        samples
    };
    for sample in samples {
        let reason = rules.classify(Some(sample));
        println!("  {sample:?} -> {reason} ({})", rules.owner(reason));
    }
    ExitCode::SUCCESS
}
