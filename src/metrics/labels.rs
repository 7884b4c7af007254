//! Bounded `connector` label values.

use std::collections::HashSet;

pub const OVERFLOW_LABEL: &str = "other";

/// Keeps at most `max` distinct connector label values. A connector keeps its own label
/// from the moment it is first seen, so the set is stable from scan to scan and series
/// do not flap; connectors first seen after the cap is reached are reported as `other`.
#[derive(Debug, Clone)]
pub struct LabelCapper {
    max: usize,
    kept: HashSet<String>,
    overflowed: HashSet<String>,
}

impl LabelCapper {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            kept: HashSet::new(),
            overflowed: HashSet::new(),
        }
    }

    /// The label for `connector`, and whether this call folded a connector into
    /// `other` for the first time.
    pub fn label(&mut self, connector: &str) -> (String, bool) {
        if self.kept.contains(connector) {
            return (connector.to_owned(), false);
        }
        if self.overflowed.contains(connector) {
            return (OVERFLOW_LABEL.to_owned(), false);
        }
        if self.kept.len() < self.max {
            self.kept.insert(connector.to_owned());
            (connector.to_owned(), false)
        } else {
            self.overflowed.insert(connector.to_owned());
            (OVERFLOW_LABEL.to_owned(), true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_seen_keep_their_label_and_the_rest_are_other() {
        let mut capper = LabelCapper::new(2);
        assert_eq!(capper.label("b"), ("b".into(), false));
        assert_eq!(capper.label("a"), ("a".into(), false));
        assert_eq!(capper.label("c"), ("other".into(), true));
        assert_eq!(capper.label("c"), ("other".into(), false), "counted once");
        assert_eq!(capper.label("b"), ("b".into(), false), "stable");
    }

    #[test]
    fn a_label_bomb_stays_capped() {
        let mut capper = LabelCapper::new(500);
        let mut distinct = HashSet::new();
        let mut overflowed = 0;
        for i in 0..10_000 {
            let (label, new) = capper.label(&format!("c{i}"));
            distinct.insert(label);
            overflowed += usize::from(new);
        }
        assert_eq!(distinct.len(), 501);
        assert_eq!(overflowed, 9_500);
    }
}
