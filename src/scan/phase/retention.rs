//! Retention: hard-deleting terminal runs older than a cut-off, in small batches, never
//! past the point the saved checkpoint counts. One rule for `--retention` (the leader,
//! every scan) and `syncwatch prune` (once, from the command line).

use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::store::{Store, StoreError};

/// Terminal runs one retention statement deletes at most: small, so no statement holds its
/// locks for long.
pub const PRUNE_BATCH: u64 = 5_000;

/// What may be deleted: runs completed before `wanted`, but never past `settled`, the
/// point the saved totals and connection states count up to (what is deleted must already
/// be counted in them).
pub fn prune_cutoff(wanted: DateTime<Utc>, settled: DateTime<Utc>) -> DateTime<Utc> {
    wanted.min(settled)
}

/// Delete terminal runs completed before `before`, a batch at a time, until fewer than a
/// batch remain or `deadline` passes; `deleted` hears each batch's count as it lands, so
/// what was deleted before an error is still reported. Whether every run before `before`
/// is gone.
pub async fn prune_in_batches(
    store: &Store,
    before: DateTime<Utc>,
    deadline: Option<Instant>,
    mut deleted: impl FnMut(u64),
) -> Result<bool, StoreError> {
    loop {
        let n = store.retention().prune(before, PRUNE_BATCH).await?;
        deleted(n);
        if n < PRUNE_BATCH {
            return Ok(true);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_never_passes_the_checkpoint() {
        let settled = DateTime::from_timestamp(1_000, 0).unwrap();
        let earlier = DateTime::from_timestamp(500, 0).unwrap();
        let later = DateTime::from_timestamp(2_000, 0).unwrap();
        assert_eq!(prune_cutoff(later, settled), settled);
        assert_eq!(prune_cutoff(earlier, settled), earlier);
    }
}
