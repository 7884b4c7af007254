//! A cumulative histogram as plain data: the bounds, the count per bucket, the sum and the
//! count, as the scanner keeps them and the exposition writes them.

use std::sync::Arc;

/// A classic histogram: cumulative counts per upper bound, plus sum and count.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistogramData {
    /// Shared by every histogram of a family.
    pub bounds: Arc<[f64]>,
    /// `cumulative[i]` counts observations `<= bounds[i]`.
    pub cumulative: Vec<u64>,
    pub sum: f64,
    pub count: u64,
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

    /// Add another histogram with the same bounds.
    pub fn add(&mut self, other: &HistogramData) {
        for (mine, theirs) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// Element-wise maximum: never lowers a bucket, and keeps buckets cumulative.
    pub fn max_with(&mut self, other: &HistogramData) {
        for (mine, theirs) in self.cumulative.iter_mut().zip(&other.cumulative) {
            *mine = (*mine).max(*theirs);
        }
        self.sum = self.sum.max(other.sum);
        self.count = self.count.max(other.count);
    }
}
