//! The check after a load: the store holds every acknowledged write, each at least as far
//! along as acknowledged, and (when nothing was interrupted) nothing else, all terminal.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use syncwatch::domain::Status;
use syncwatch::store::{ListFilter, Store};

use super::{LoadConfig, LoadReport, Stage};

/// Rows read per store call (the API's largest page; the store takes any size).
const PAGE_SIZE: u32 = 500;

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct Verification {
    /// Rows of this load's connectors in the store.
    pub rows: u64,
    /// Of those, rows not yet terminal.
    pub active_rows: u64,
    /// Terminal rows by (connector, status).
    pub terminal: BTreeMap<(String, Status), u64>,
    pub problems: Vec<String>,
}

/// Check the store against what the load acknowledged: every acknowledged run is there
/// and at least as far along as acknowledged (exactly, once finished). With `exact`
/// (nothing was interrupted), the store holds no other run of these connectors and every
/// run is terminal.
pub async fn verify(
    store: &Store,
    config: &LoadConfig,
    report: &LoadReport,
    exact: bool,
) -> anyhow::Result<Verification> {
    let mut found: HashMap<Uuid, (String, Status)> = HashMap::new();
    for connector in config.connectors() {
        let mut filter = ListFilter {
            connector_slug: Some(connector.clone()),
            limit: PAGE_SIZE,
            ..ListFilter::default()
        };
        loop {
            let page = store.runs().list(&filter).await?;
            for run in page.items {
                found.insert(
                    run.workspace_connector_sync_log_id,
                    (connector.clone(), run.status),
                );
            }
            match page.next_cursor {
                Some(cursor) => filter.cursor = Some(cursor),
                None => break,
            }
        }
    }
    let mut v = Verification {
        rows: found.len() as u64,
        ..Verification::default()
    };
    for (connector, status) in found.values() {
        if status.is_terminal() {
            *v.terminal.entry((connector.clone(), *status)).or_default() += 1;
        } else {
            v.active_rows += 1;
        }
    }
    let mut lost = 0;
    let mut behind = Vec::new();
    for (id, acked) in &report.acked {
        let Some((_, status)) = found.get(id) else {
            lost += 1;
            continue;
        };
        let stage = Stage::of(*status);
        let ok = match acked.stage {
            Stage::Finished(want) => stage == Stage::Finished(want),
            want => stage.rank() >= want.rank(),
        };
        if !ok {
            behind.push(format!(
                "{id}: acknowledged {:?}, store has {status}",
                acked.stage
            ));
        }
    }
    if lost > 0 {
        v.problems.push(format!(
            "{lost} acknowledged runs are missing from the store"
        ));
    }
    if !behind.is_empty() {
        v.problems.push(format!(
            "{} runs are behind what was acknowledged, e.g. {}",
            behind.len(),
            behind[0]
        ));
    }
    if exact {
        if v.rows != report.acked.len() as u64 {
            v.problems.push(format!(
                "the store holds {} runs of this load, {} creates were acknowledged",
                v.rows,
                report.acked.len()
            ));
        }
        if v.active_rows > 0 {
            v.problems
                .push(format!("{} runs are not terminal", v.active_rows));
        }
    }
    Ok(v)
}
