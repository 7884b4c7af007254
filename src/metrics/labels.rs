//! Bounded `connector` label values.

use std::collections::HashSet;
use std::sync::Arc;

/// A label value. Shared: the scanner's totals and every snapshot hold the same few
/// hundred connector, trigger and status strings, so a series key is a few pointers,
/// cloning one allocates nothing, and two keys sharing a value compare it by pointer.
/// Hashes, compares and borrows as its text (`map["slug"]` works).
#[derive(Clone)]
pub struct Label(Arc<str>);

impl std::ops::Deref for Label {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Label {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Label {
    fn from(value: &str) -> Self {
        Self(value.into())
    }
}

impl From<String> for Label {
    fn from(value: String) -> Self {
        Self(value.into())
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Label {}

impl Ord for Label {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::hash::Hash for Label {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes, which `Borrow<str>` requires.
        (*self.0).hash(state);
    }
}

impl std::fmt::Debug for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

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

    /// Labels order, compare and hash as their text, whether or not they share it, so a
    /// map keyed by labels is looked up by `&str` and sorts as the text format wants.
    #[test]
    fn labels_behave_as_their_text() {
        use std::collections::{BTreeMap, BTreeSet, HashSet};
        let shared = Label::from("hubspot");
        let (same, other) = (Label::from("hubspot"), Label::from("attio"));
        assert_eq!(shared, shared.clone());
        assert_eq!(shared, same, "equal text in another allocation");
        assert_ne!(shared, other);
        assert_eq!(shared.cmp(&other), "hubspot".cmp("attio"));
        let sorted: Vec<String> = [shared.clone(), other.clone(), Label::from("zendesk")]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(sorted, ["attio", "hubspot", "zendesk"]);
        let set: HashSet<Label> = [shared.clone(), other].into_iter().collect();
        assert!(set.contains("hubspot") && set.contains("attio") && !set.contains("hub"));
        let map: BTreeMap<Label, u64> = [(same, 3)].into_iter().collect();
        assert_eq!(map["hubspot"], 3);
    }
}
