//! The saved form of what the scanner learned about a connection, kept with the
//! connection's saved state in the checkpoint, so a restart reads no history.

use super::{Learned, LearnedState};
use crate::domain::ConnectionId;

impl Learned {
    /// The saved form, kept with the connection's saved state: `1;` then the kept creation
    /// times, then `;` and the kept successes as `completed:duration` (Unix and plain
    /// milliseconds), each list comma-separated. The leading version lets a later format
    /// be told apart (a form this version does not know is learned again from the table).
    fn to_saved(&self) -> String {
        use std::fmt::Write;
        let mut text = String::from("1;");
        for (i, at) in self.created[..usize::from(self.created_len)]
            .iter()
            .enumerate()
        {
            let _ = write!(text, "{}{at}", if i == 0 { "" } else { "," });
        }
        text.push(';');
        for i in 0..usize::from(self.durations_len) {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(text, "{comma}{}:{}", self.completed[i], self.durations[i]);
        }
        text
    }

    /// The state saved by [`Learned::to_saved`]; `None` for any other text.
    fn from_saved(connector: &str, text: &str) -> Option<Self> {
        let rest = text.strip_prefix("1;")?;
        let (created, durations) = rest.split_once(';')?;
        let mut learned = Self::new(connector);
        fn list(text: &str) -> impl Iterator<Item = &str> {
            text.split(',').filter(|item| !item.is_empty())
        }
        for at in list(created) {
            learned.note_created(at.parse().ok()?);
        }
        for pair in list(durations) {
            let (completed, duration) = pair.split_once(':')?;
            learned.note_duration(completed.parse().ok()?, duration.parse().ok()?);
        }
        Some(learned)
    }
}

impl LearnedState {
    /// The saved form of what was learned about connection `id` (an empty window when
    /// nothing was: a restart then knows there is nothing to read either).
    pub fn saved(&self, id: &ConnectionId) -> String {
        match self.by_id.get(id) {
            Some(learned) => learned.to_saved(),
            None => Learned::new("").to_saved(),
        }
    }

    /// Take back what was saved about connection `id` (its saved state's `learned`);
    /// whether the text was one this version reads.
    pub fn restore_saved(&mut self, id: &ConnectionId, connector: &str, text: &str) -> bool {
        let Some(saved) = Learned::from_saved(connector, text) else {
            return false;
        };
        // Merged with anything noted already (it is idempotent), not replacing it.
        let entry = self.entry(id, connector);
        for at in &saved.created[..usize::from(saved.created_len)] {
            entry.note_created(*at);
        }
        for i in 0..usize::from(saved.durations_len) {
            entry.note_duration(saved.completed[i], saved.durations[i]);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saved_form_gives_back_the_same_window() {
        let mut l = Learned::with_created(
            &(0..25)
                .map(|i| 1_700_000_000_000 + i * 60_000)
                .collect::<Vec<_>>(),
        );
        for i in 0..23 {
            l.note_duration(1_700_000_000_000 + i, 1000 + i as u32);
        }
        let text = l.to_saved();
        assert!(text.starts_with("1;"), "{text}");
        let back = Learned::from_saved("a", &text).unwrap();
        assert_eq!(back.interval_ms(), Some(60_000));
        assert_eq!(back.p95_duration_ms(), l.p95_duration_ms());
        assert_eq!(back.to_saved(), text);
        let empty = Learned::new("a");
        assert_eq!(Learned::from_saved("a", &empty.to_saved()), Some(empty));
        for other in ["", "2;1,2;", "1;x;", "1;1,2", "1;;5"] {
            assert_eq!(Learned::from_saved("a", other), None, "{other:?}");
        }
    }
}
