//! How a keyset read over terminal runs is bounded by a [`Position`] (completion time, then
//! internal key): the conditions and their parameters, written once for every statement.

use crate::store::engine::{Dialect, Param};
use crate::store::observed::TableMap;
use crate::store::Position;

/// How a statement bounds the runs it reads by a [`Position`], its parameters starting at
/// `$n`: none, a completion time, or a completion time and a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    None,
    At,
    Keyed,
}

impl Bound {
    pub fn of(position: Option<&Position>) -> Self {
        match position {
            None => Bound::None,
            Some(p) if p.is_whole() => Bound::At,
            Some(_) => Bound::Keyed,
        }
    }

    /// The parameters of `position` for this bound.
    pub fn params(position: Option<&Position>) -> Vec<Param> {
        match position {
            None => Vec::new(),
            Some(p) => {
                let mut params = vec![Param::from(p.at)];
                params.extend(p.key.as_ref().map(Param::from));
                params
            }
        }
    }

    /// How many parameters it takes.
    pub fn len(self) -> usize {
        match self {
            Bound::None => 0,
            Bound::At => 1,
            Bound::Keyed => 2,
        }
    }

    /// ` and …` keeping the runs strictly after the position at `$n` (and `$n+1`). The
    /// completion time alone first, so an index on it (or on it and the key) is a range.
    pub(super) fn after(self, d: &Dialect, t: &TableMap, n: usize) -> String {
        match self {
            Bound::None => String::new(),
            Bound::At => format!(" and completed_at > ${n}"),
            Bound::Keyed => format!(
                " and completed_at >= ${n} and (completed_at, id) > (${n}, {})",
                d.typed(n + 1, t.run_key_kind.sql_type())
            ),
        }
    }

    /// ` and …` keeping the runs at or before the position at `$n` (and `$n+1`).
    pub(super) fn upto(self, d: &Dialect, t: &TableMap, n: usize) -> String {
        match self {
            Bound::None => String::new(),
            Bound::At => format!(" and completed_at <= ${n}"),
            Bound::Keyed => format!(
                " and completed_at <= ${n} and (completed_at, id) <= (${n}, {})",
                d.typed(n + 1, t.run_key_kind.sql_type())
            ),
        }
    }
}
