//! A cumulative histogram as plain data: the bounds, the count per bucket, the sum and the
//! count, as the scanner keeps them and the exposition writes them; and, per bucket, the
//! latest run that fell into it (its exemplar).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One example observation behind a sample: the run it came from. Written as an
/// OpenMetrics exemplar `{trace_id, run_id}`: the trace id is the run id's 16 bytes, as
/// the run's OTLP span carries it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Exemplar {
    /// The run's public id.
    pub run: Uuid,
    /// The observed value (a duration in seconds; 1 for a counted run).
    pub value: f64,
    /// When the run completed, in Unix milliseconds.
    pub at_ms: i64,
}

impl Exemplar {
    pub fn new(run: Uuid, value: f64, at: DateTime<Utc>) -> Self {
        Self {
            run,
            value,
            at_ms: at.timestamp_millis(),
        }
    }

    /// The later of two exemplars (by completion, then run id, so any order of merging
    /// picks the same one).
    pub fn latest(self, other: Self) -> Self {
        if (other.at_ms, other.run) > (self.at_ms, self.run) {
            other
        } else {
            self
        }
    }
}

/// A classic histogram: cumulative counts per upper bound, plus sum and count.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistogramData {
    /// Shared by every histogram of a family.
    pub bounds: Arc<[f64]>,
    /// `cumulative[i]` counts observations `<= bounds[i]`.
    pub cumulative: Vec<u64>,
    pub sum: f64,
    pub count: u64,
    /// (bucket, the latest run observed in it), sorted by bucket; only buckets that have
    /// one, `None` for none. Bucket `i` holds values in `(bounds[i-1], bounds[i]]`;
    /// `bounds.len()` is the `+Inf` bucket. Sparse (a connector's durations fall into a few
    /// buckets) and shared: the totals, the snapshot builder's families and the published
    /// snapshot hold one copy until a run changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemplars: Option<Arc<[(u16, Exemplar)]>>,
}

impl HistogramData {
    pub(crate) fn empty(bounds: &[f64]) -> Self {
        Self::zeroed(&bounds.into())
    }

    /// An empty histogram sharing `bounds`.
    pub fn zeroed(bounds: &Arc<[f64]>) -> Self {
        Self {
            bounds: bounds.clone(),
            cumulative: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
            exemplars: None,
        }
    }

    pub fn observe(&mut self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(self.cumulative.iter_mut()) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    /// Observe `exemplar.value`, and keep `exemplar` for its bucket if it is the latest.
    pub fn observe_run(&mut self, exemplar: Exemplar) {
        self.observe(exemplar.value);
        let bucket = self.bounds.partition_point(|bound| exemplar.value > *bound);
        self.keep_exemplar(bucket as u16, exemplar);
    }

    fn keep_exemplar(&mut self, bucket: u16, exemplar: Exemplar) {
        self.merge_exemplars_from(&[(bucket, exemplar)]);
    }

    /// Every bucket's exemplar, sorted by bucket.
    pub fn exemplars(&self) -> &[(u16, Exemplar)] {
        self.exemplars.as_deref().unwrap_or(&[])
    }

    /// The exemplar of bucket `bucket`, if any run was observed in it.
    pub fn exemplar(&self, bucket: usize) -> Option<&Exemplar> {
        let exemplars = self.exemplars();
        let i = exemplars
            .binary_search_by_key(&bucket, |(b, _)| usize::from(*b))
            .ok()?;
        Some(&exemplars[i].1)
    }

    fn merge_exemplars(&mut self, other: &HistogramData) {
        match (&self.exemplars, &other.exemplars) {
            (_, None) => {}
            // The first histogram added into an empty one (as the snapshot builder sums a
            // connector's): shared, not copied.
            (None, Some(theirs)) => self.exemplars = Some(theirs.clone()),
            (Some(mine), Some(theirs)) if Arc::ptr_eq(mine, theirs) => {}
            (Some(_), Some(theirs)) => {
                let theirs = theirs.clone();
                self.merge_exemplars_from(&theirs);
            }
        }
    }

    /// Each bucket keeps the later of its exemplar and `theirs` (sorted by bucket).
    fn merge_exemplars_from(&mut self, theirs: &[(u16, Exemplar)]) {
        let mine = self.exemplars();
        let mut merged = Vec::with_capacity(mine.len() + theirs.len());
        let (mut i, mut j) = (0, 0);
        while i < mine.len() || j < theirs.len() {
            match (mine.get(i), theirs.get(j)) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    merged.push((x.0, x.1.latest(y.1)));
                    (i, j) = (i + 1, j + 1);
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    merged.push(*x);
                    i += 1;
                }
                (Some(x), None) => {
                    merged.push(*x);
                    i += 1;
                }
                (_, Some(y)) => {
                    merged.push(*y);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        if merged.as_slice() != mine {
            self.exemplars = Some(merged.into());
        }
    }

    /// Add another histogram with the same bounds (each bucket keeps the later exemplar).
    pub fn add(&mut self, other: &HistogramData) {
        for (mine, theirs) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
        self.merge_exemplars(other);
    }

    /// `fresh` less `base`, bucket by bucket: what `fresh` observed that `base` did not.
    /// `None` when `base` holds an observation `fresh` lacks (a bucket or the count would
    /// go below zero); a sum a little below (rounding) counts as zero.
    pub fn difference(fresh: &HistogramData, base: &HistogramData) -> Option<HistogramData> {
        let cumulative = (fresh.cumulative.iter().zip(&base.cumulative))
            .map(|(f, b)| f.checked_sub(*b))
            .collect::<Option<Vec<u64>>>()?;
        Some(HistogramData {
            bounds: fresh.bounds.clone(),
            cumulative,
            sum: (fresh.sum - base.sum).max(0.0),
            count: fresh.count.checked_sub(base.count)?,
            exemplars: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: u128, value: f64, at_ms: i64) -> Exemplar {
        Exemplar {
            run: Uuid::from_u128(n),
            value,
            at_ms,
        }
    }

    #[test]
    fn each_bucket_keeps_the_latest_run_observed_in_it() {
        let mut h = HistogramData::empty(&[1.0, 10.0]);
        h.observe_run(run(1, 0.5, 100));
        h.observe_run(run(2, 1.0, 50));
        h.observe_run(run(3, 5.0, 10));
        h.observe_run(run(4, 99.0, 20));
        h.observe_run(run(5, 3.0, 30));
        assert_eq!(h.cumulative, vec![2, 4]);
        assert_eq!(h.exemplar(0).map(|e| e.run), Some(Uuid::from_u128(1)));
        assert_eq!(h.exemplar(1).map(|e| e.run), Some(Uuid::from_u128(5)));
        assert_eq!(
            h.exemplar(2).map(|e| e.run),
            Some(Uuid::from_u128(4)),
            "+Inf"
        );
        let mut other = HistogramData::empty(&[1.0, 10.0]);
        other.observe_run(run(6, 0.1, 99));
        other.observe_run(run(7, 2.0, 31));
        let (mut a, mut b) = (h.clone(), other.clone());
        a.add(&other);
        b.add(&h);
        assert_eq!(a.exemplars, b.exemplars, "merged the same either way");
        let mut shared = HistogramData::empty(&[1.0, 10.0]);
        shared.add(&a);
        assert!(
            Arc::ptr_eq(
                shared.exemplars.as_ref().unwrap(),
                a.exemplars.as_ref().unwrap()
            ),
            "added into an empty histogram, the exemplars are shared"
        );
        assert_eq!(a.exemplar(0).map(|e| e.run), Some(Uuid::from_u128(1)));
        assert_eq!(a.exemplar(1).map(|e| e.run), Some(Uuid::from_u128(7)));
    }
}
