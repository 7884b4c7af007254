//! Rows the scanner's reads skip because a value does not decode (another service's data
//! is not ours to trust): counted once per row by reason and column — what
//! `syncwatch_rows_skipped_total` exports — and logged once per row, at most a few lines a
//! second, naming the row, the column, its type and the value.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Unreadable, UnreadableReason};

/// Rows remembered as already counted; past this the memory is cleared (a row then met
/// again is counted again: the count stays an upper bound of distinct rows).
const REMEMBERED: usize = 100_000;

/// Log lines per [`LOG_PERIOD`]; the rest are summed into the next line.
const LOG_LINES: u32 = 5;
const LOG_PERIOD: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct SkippedRows {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    counts: BTreeMap<(UnreadableReason, String), u64>,
    seen: HashSet<String>,
    period: Option<Instant>,
    logged: u32,
    unlogged: u64,
}

impl std::fmt::Debug for SkippedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkippedRows").finish_non_exhaustive()
    }
}

impl SkippedRows {
    /// A row a read skipped. `row` names it (`run <internal id>`, or `connection <id>` for
    /// a per-connection read) when the read can: a row met again by a later read (the
    /// steady scan's overlap, the live runs every scan) is not counted again.
    pub fn record(&self, read: &str, row: Option<&str>, error: &Unreadable) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(row) = row {
            if inner.seen.len() >= REMEMBERED {
                inner.seen.clear();
            }
            if !inner.seen.insert(row.to_owned()) {
                return;
            }
        }
        *inner
            .counts
            .entry((error.reason, error.column.clone()))
            .or_default() += 1;
        let now = Instant::now();
        if inner
            .period
            .is_none_or(|p| now.duration_since(p) >= LOG_PERIOD)
        {
            inner.period = Some(now);
            inner.logged = 0;
        }
        if inner.logged < LOG_LINES {
            inner.logged += 1;
            let unlogged = std::mem::take(&mut inner.unlogged);
            tracing::warn!(
                read,
                row = row.unwrap_or("?"),
                column = %error.column,
                reason = error.reason.as_str(),
                unlogged,
                "skipped a row that cannot be read: {error}"
            );
        } else {
            inner.unlogged += 1;
        }
    }

    /// Rows skipped so far, by reason and column.
    pub fn counts(&self) -> Vec<(UnreadableReason, String, u64)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .counts
            .iter()
            .map(|((reason, column), n)| (*reason, column.clone(), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(column: &str, reason: UnreadableReason) -> Unreadable {
        Unreadable {
            column: column.into(),
            sql_type: "TEXT".into(),
            reason,
            detail: "\"cancelled\"".into(),
        }
    }

    #[test]
    fn a_row_is_counted_once_and_rows_without_a_name_every_time() {
        let skipped = SkippedRows::default();
        let status = bad("status", UnreadableReason::UnknownValue);
        skipped.record("terminal runs", Some("run 7"), &status);
        skipped.record("live runs", Some("run 7"), &status);
        skipped.record("terminal runs", Some("run 8"), &status);
        skipped.record(
            "terminal runs",
            None,
            &bad("created_at", UnreadableReason::OutOfRange),
        );
        skipped.record(
            "terminal runs",
            None,
            &bad("created_at", UnreadableReason::OutOfRange),
        );
        assert_eq!(
            skipped.counts(),
            vec![
                (UnreadableReason::UnknownValue, "status".into(), 2),
                (UnreadableReason::OutOfRange, "created_at".into(), 2),
            ]
        );
    }
}
