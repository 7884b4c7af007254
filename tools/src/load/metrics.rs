//! Reading the service's `/metrics` after a load: `connector_sync_runs_total` of the load's
//! connectors, parsed with `prometheus-parse`, polled until it equals the store's counts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};

use syncwatch::domain::Status;

use super::LoadConfig;

/// The counter the check compares with the store.
const RUNS_TOTAL: &str = "connector_sync_runs_total";

/// `connector_sync_runs_total` by (connector, status) from an exposition, for the given
/// connectors (summed over `trigger`).
pub fn runs_total_from_exposition(
    text: &str,
    connectors: &[String],
) -> BTreeMap<(String, Status), u64> {
    let mut totals = BTreeMap::new();
    // Reading from a string cannot fail; an empty map is the honest answer if it did.
    let Ok(scrape) = Scrape::parse(text.lines().map(|l| Ok::<_, std::io::Error>(l.to_owned())))
    else {
        return totals;
    };
    for sample in scrape.samples.iter().filter(|s| s.metric == RUNS_TOTAL) {
        let value = match sample.value {
            Value::Counter(v) | Value::Untyped(v) => v,
            _ => continue,
        };
        let (Some(connector), Some(status)) =
            (sample.labels.get("connector"), sample.labels.get("status"))
        else {
            continue;
        };
        if !connectors.iter().any(|c| c == connector) {
            continue;
        }
        let Ok(status) = status.parse::<Status>() else {
            continue;
        };
        *totals.entry((connector.to_owned(), status)).or_default() += value as u64;
    }
    totals
}

/// Poll `metrics_url` until `connector_sync_runs_total` for the load's connectors equals
/// the store's terminal counts, or `within` passes. `Ok(())` when they match.
pub async fn wait_for_metrics(
    metrics_url: &str,
    token: Option<&str>,
    config: &LoadConfig,
    expected: &BTreeMap<(String, Status), u64>,
    within: Duration,
) -> anyhow::Result<Result<(), String>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let connectors = config.connectors();
    let expected: BTreeMap<_, _> = expected
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let deadline = Instant::now() + within;
    loop {
        let mut request = client.get(metrics_url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let text = request.send().await?.error_for_status()?.text().await?;
        let got: BTreeMap<_, _> = runs_total_from_exposition(&text, &connectors)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        if got == expected {
            return Ok(Ok(()));
        }
        if Instant::now() >= deadline {
            return Ok(Err(format!(
                "{RUNS_TOTAL} {got:?} != SQL counts {expected:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_total_is_read_per_connector_and_status() {
        let text = "# HELP connector_sync_runs_total Finished runs.\n\
            # TYPE connector_sync_runs_total counter\n\
            connector_sync_runs_total{connector=\"a\",trigger=\"manual\",status=\"success\"} 3\n\
            connector_sync_runs_total{connector=\"a\",trigger=\"none\",status=\"success\"} 2\n\
            connector_sync_runs_total{connector=\"a\",trigger=\"manual\",status=\"error\"} 1\n\
            connector_sync_runs_total{connector=\"b\",trigger=\"manual\",status=\"error\"} 9\n\
            # TYPE connector_sync_runs_in_progress gauge\n\
            connector_sync_runs_in_progress{connector=\"a\"} 4\n";
        let got = runs_total_from_exposition(text, &["a".to_owned()]);
        assert_eq!(got.get(&("a".into(), Status::Success)), Some(&5));
        assert_eq!(got.get(&("a".into(), Status::Error)), Some(&1));
        assert_eq!(got.len(), 2);
    }
}
