//! The runs counted within the late-commit window, which every steady scan reads again:
//! which of them were counted (by internal key), and their totals by second of completion,
//! settled a whole second at a time as the window moves on. A run costs the window its
//! key's 128-bit hash, not its values, so a backfill of any size fits in a few bytes a run.
//! Pure: no I/O, unit-tested.

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use chrono::{DateTime, Utc};
use foldhash::fast::FixedState;
use foldhash::HashMap;

use super::Totals;
use crate::store::TerminalRun;

/// The key's hash under two fixed seeds: 128 bits, the same in every process (two keys
/// colliding among a window's runs is far less likely than a disk error). Two words, so a
/// map entry with its second is 24 bytes.
fn key_hash(key: &str) -> (u64, u64) {
    let (a, b) = (
        FixedState::with_seed(0x7379_6e63),
        FixedState::with_seed(0x7761_7463),
    );
    (a.hash_one(key), b.hash_one(key))
}

/// The runs counted in the window.
#[derive(Debug, Clone)]
pub struct Window {
    /// Each counted run's key hash, and the second it completed in.
    keys: HashMap<(u64, u64), i64>,
    /// Per second of completion: the counted runs' totals.
    seconds: BTreeMap<i64, Totals>,
    /// Empty totals with the bucket bounds and rules of the scanner's.
    empty: Totals,
}

impl Window {
    pub fn new(like: &Totals) -> Self {
        Self {
            keys: HashMap::default(),
            seconds: BTreeMap::new(),
            empty: like.empty_like(),
        }
    }

    /// Count `run` in the window; `false` when a run of its key was counted already.
    pub fn insert(&mut self, run: &TerminalRun) -> bool {
        let hash = key_hash(&run.key);
        if self.keys.contains_key(&hash) {
            return false;
        }
        let second = run.completed_at.timestamp();
        self.keys.insert(hash, second);
        (self.seconds)
            .entry(second)
            .or_insert_with(|| self.empty.empty_like())
            .add_run(run);
        true
    }

    /// Settle every second before `cut` (a whole second): its runs' totals are added to
    /// `settled` and their keys forgotten. Returns the point every run at or before which
    /// is now settled (just before `cut`).
    pub fn settle_before(&mut self, cut: DateTime<Utc>, settled: &mut Totals) -> DateTime<Utc> {
        let cut_second = cut.timestamp();
        let keep = self.seconds.split_off(&cut_second);
        let gone = std::mem::replace(&mut self.seconds, keep);
        if gone.is_empty() {
            return cut - chrono::Duration::microseconds(1);
        }
        for totals in gone.values() {
            settled.add_totals(totals);
        }
        self.keys.retain(|_, second| *second >= cut_second);
        if self.keys.len() * 4 < self.keys.capacity() {
            self.keys.shrink_to_fit();
        }
        cut - chrono::Duration::microseconds(1)
    }

    /// Add every second's totals into `totals`.
    pub fn add_into(&self, totals: &mut Totals) {
        for second in self.seconds.values() {
            totals.add_totals(second);
        }
    }

    /// Runs counted in the window.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The start of the second `at` falls in.
pub fn whole_second(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;
    use crate::scan::test_support::run;

    #[test]
    fn a_run_is_counted_once_by_its_key_and_settles_with_its_second() {
        let mut settled = Totals::new(&[1.0], &[1.0]);
        let mut window = Window::new(&settled);
        let mut a = run("a", Status::Success, Some(0.5), 10);
        a.key = "1".into();
        let mut b = run("a", Status::Error, Some(0.5), 11);
        b.key = "2".into();
        assert!(window.insert(&a));
        assert!(!window.insert(&a), "read again");
        let mut moved = a.clone();
        moved.completed_at = b.completed_at;
        assert!(!window.insert(&moved), "the same key at another time");
        assert!(window.insert(&b));
        assert_eq!(window.len(), 2);
        let mut all = settled.clone();
        window.add_into(&mut all);
        assert_eq!(all.runs.values().sum::<u64>(), 2);

        let upto = window.settle_before(DateTime::from_timestamp(11, 0).unwrap(), &mut settled);
        assert_eq!(upto, DateTime::from_timestamp(10, 999_999_000).unwrap());
        assert_eq!(
            settled.runs.values().sum::<u64>(),
            1,
            "the run of second 10"
        );
        assert_eq!(window.len(), 1);
        assert!(window.insert(&a), "settled: a later read counts it again");
    }
}
