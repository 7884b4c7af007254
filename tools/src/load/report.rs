//! What a load run counted: answers by status, latencies, broken protocol promises, and
//! every acknowledged run with how far it was acknowledged; and the summary it prints.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use uuid::Uuid;

use syncwatch::domain::Status;

/// How far an acknowledged run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The create was acknowledged.
    Scheduled,
    /// The start was acknowledged.
    InProgress,
    /// A finish was acknowledged, with the status it left.
    Finished(Status),
}

impl Stage {
    /// The stage a run in `status` is at.
    pub fn of(status: Status) -> Self {
        match status {
            Status::Scheduled => Stage::Scheduled,
            Status::InProgress => Stage::InProgress,
            done => Stage::Finished(done),
        }
    }

    pub(super) fn rank(self) -> u8 {
        match self {
            Stage::Scheduled => 0,
            Stage::InProgress => 1,
            Stage::Finished(_) => 2,
        }
    }
}

/// One run whose create was acknowledged.
#[derive(Debug, Clone)]
pub struct Acked {
    pub connector_slug: String,
    pub stage: Stage,
}

/// Everything one load run counted.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// `api` or `direct`.
    pub target: &'static str,
    pub elapsed: Duration,
    /// Lifecycles that reached an acknowledged terminal status.
    pub lifecycles: u64,
    pub failed_lifecycles: u64,
    /// Latency of every request (or direct store call), microseconds.
    pub latencies_us: Vec<u64>,
    /// Answers by HTTP status (for the direct target, the status the API answers the same
    /// store outcome with).
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer (connection refused or reset, client timeout).
    pub transport_errors: u64,
    /// Broken promises of the protocol seen while loading (first few kept).
    pub violations: Vec<String>,
    pub violation_count: u64,
    /// Every run a create was acknowledged for, and how far it was acknowledged.
    pub acked: HashMap<Uuid, Acked>,
}

impl LoadReport {
    pub fn requests(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    pub fn server_errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(code, _)| **code >= 500)
            .map(|(_, n)| n)
            .sum()
    }

    /// The q-quantile (0..=1) of the request latencies, in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        quantile_us(&self.latencies_us, q) as f64 / 1000.0
    }

    pub fn requests_per_second(&self) -> f64 {
        self.requests() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn lifecycles_per_second(&self) -> f64 {
        self.lifecycles as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(super) fn violation(&mut self, text: String) {
        self.violation_count += 1;
        if self.violations.len() < 20 {
            self.violations.push(text);
        }
    }

    pub(super) fn merge(&mut self, other: LoadReport) {
        self.lifecycles += other.lifecycles;
        self.failed_lifecycles += other.failed_lifecycles;
        self.latencies_us.extend(other.latencies_us);
        for (code, n) in other.statuses {
            *self.statuses.entry(code).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        // `violation` counts each one it is handed; the rest were counted but not kept.
        let kept = other.violations.len() as u64;
        for v in other.violations {
            self.violation(v);
        }
        self.violation_count += other.violation_count.saturating_sub(kept);
        self.acked.extend(other.acked);
    }

    /// The human summary `syncwatch-tools load` prints.
    pub fn summary(&self) -> String {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(code, n)| format!("{code}×{n}"))
            .collect();
        format!(
            "target {}: {} lifecycles ({} failed) in {:.1}s, {} requests\n\
             throughput {:.0} requests/s, {:.1} lifecycles/s\n\
             latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n\
             responses {}; 5xx {}; transport errors {}; protocol violations {}",
            self.target,
            self.lifecycles,
            self.failed_lifecycles,
            self.elapsed.as_secs_f64(),
            self.requests(),
            self.requests_per_second(),
            self.lifecycles_per_second(),
            self.latency_ms(0.5),
            self.latency_ms(0.99),
            self.latency_ms(1.0),
            statuses.join(" "),
            self.server_errors(),
            self.transport_errors,
            self.violation_count,
        )
    }
}

/// Nearest-rank quantile of unsorted microsecond samples.
pub fn quantile_us(samples: &[u64], q: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let samples: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile_us(&samples, 0.5), 50);
        assert_eq!(quantile_us(&samples, 0.99), 99);
        assert_eq!(quantile_us(&samples, 1.0), 100);
        assert_eq!(quantile_us(&samples, 0.0), 1);
        assert_eq!(quantile_us(&[], 0.5), 0);
    }

    #[test]
    fn merged_reports_count_every_violation() {
        let mut total = LoadReport::default();
        for _ in 0..3 {
            let mut part = LoadReport::default();
            for i in 0..15 {
                part.violation(format!("v{i}"));
            }
            total.merge(part);
        }
        assert_eq!(total.violation_count, 45);
        assert_eq!(total.violations.len(), 20, "only the first few are kept");
    }

    #[test]
    fn stages_follow_the_status() {
        assert_eq!(Stage::of(Status::Scheduled), Stage::Scheduled);
        assert_eq!(Stage::of(Status::InProgress), Stage::InProgress);
        assert_eq!(Stage::of(Status::Error), Stage::Finished(Status::Error));
    }
}
