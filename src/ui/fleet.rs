//! The fleet-wide overview: each connector's runs of the last 24 hours and what the
//! scanner's published snapshot says of it now (on a replica that does not lead, the
//! leader's saved states). The failing connections' page is `failing.rs`.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::Utc;

use super::format::{ratio, When};
use super::render::{query_value, render, UiError};
use super::UiState;

struct ConnectorRow {
    connector: String,
    href: String,
    runs: u64,
    failed: u64,
    ratio: String,
    failing: u64,
    active: u64,
    stuck: u64,
    overdue: u64,
    overrunning: u64,
    last_success: Option<When>,
    /// Worst first: a tuple compared in order.
    rank: (u64, u64, u64, u64, u64),
}

impl ConnectorRow {
    fn new(connector: &str, base: &str) -> Self {
        Self {
            connector: connector.to_owned(),
            href: format!("{base}/ui/failing?connector={}", query_value(connector)),
            runs: 0,
            failed: 0,
            ratio: String::new(),
            failing: 0,
            active: 0,
            stuck: 0,
            overdue: 0,
            overrunning: 0,
            last_success: None,
            rank: (0, 0, 0, 0, 0),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/overview.html")]
struct OverviewPage<'a> {
    base: &'a str,
    title: &'a str,
    now: String,
    leader: bool,
    /// On a replica that does not lead: what the leader's last checkpoint was settled up
    /// to, when it saved one.
    saved_at: Option<String>,
    rows: Vec<ConnectorRow>,
    failing_total: usize,
}

pub async fn overview(State(ui): State<UiState>) -> Result<Response, UiError> {
    let now = Utc::now();
    let snap = ui.metrics.snapshot();
    let outcomes = ui.outcomes_24h().await?;
    let mut rows: BTreeMap<String, ConnectorRow> = BTreeMap::new();
    fn row<'r>(
        rows: &'r mut BTreeMap<String, ConnectorRow>,
        base: &str,
        connector: &str,
    ) -> &'r mut ConnectorRow {
        rows.entry(connector.to_owned())
            .or_insert_with(|| ConnectorRow::new(connector, base))
    }
    let base = &*ui.base;
    for o in outcomes.iter() {
        let r = row(&mut rows, base, &o.connector_slug);
        r.runs += o.succeeded + o.failed;
        r.failed += o.failed;
    }
    // On a replica that does not lead, what the leader saved with its last checkpoint.
    let saved = match snap.leader {
        true => None,
        false => Some(ui.saved_fleet().await?),
    };
    let (failing, last_success) = match &saved {
        Some(s) => (
            s.failing_connections
                .iter()
                .map(|(c, n)| (c.as_str(), *n))
                .collect::<Vec<_>>(),
            s.last_success
                .iter()
                .map(|(c, at)| (c.as_str(), *at))
                .collect::<Vec<_>>(),
        ),
        None => (
            snap.failing_connections
                .iter()
                .map(|(c, n)| (&**c, *n))
                .collect(),
            snap.last_success
                .iter()
                .map(|(c, at)| (&**c, *at))
                .collect(),
        ),
    };
    for (connector, count) in failing {
        row(&mut rows, base, connector).failing += count;
    }
    for ((connector, _), count) in &snap.active {
        row(&mut rows, base, connector).active += count;
    }
    for ((connector, _), count) in &snap.stuck {
        row(&mut rows, base, connector).stuck += count;
    }
    for (connector, count) in &snap.overdue_connections {
        row(&mut rows, base, connector).overdue += count;
    }
    for (connector, count) in &snap.overrunning {
        row(&mut rows, base, connector).overrunning += count;
    }
    for (connector, at) in last_success {
        row(&mut rows, base, connector).last_success = When::from_epoch(at, now);
    }
    let mut rows: Vec<ConnectorRow> = rows.into_values().collect();
    for r in &mut rows {
        r.ratio = ratio(r.runs - r.failed, r.failed);
        // Failure share in per mille, so a connector failing most of its runs sorts first
        // among those with the same number of failing connections.
        let failure_share = (r.failed * 1000).checked_div(r.runs).unwrap_or(0);
        r.rank = (
            r.failing,
            r.stuck,
            r.overdue + r.overrunning,
            failure_share,
            r.active,
        );
    }
    rows.sort_by(|a, b| b.rank.cmp(&a.rank).then(a.connector.cmp(&b.connector)));
    let page = OverviewPage {
        base: &ui.base,
        title: "Connectors",
        now: super::utc(now),
        leader: snap.leader,
        saved_at: saved_at(saved.as_deref()),
        failing_total: saved
            .as_ref()
            .map_or(snap.failing_list.len(), |s| s.failing_list.len()),
        rows,
    };
    Ok(render(&page))
}

/// When the leader's saved states the page shows were settled, if it shows them.
pub(super) fn saved_at(saved: Option<&super::saved::SavedFleet>) -> Option<String> {
    saved.and_then(|s| s.settled_upto).map(super::utc)
}
