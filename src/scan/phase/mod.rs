//! The scanner's phases. After a start (or on gaining leadership) it *builds*: the
//! history is aggregated into running totals chunk by chunk (or continued from the saved
//! checkpoint) and the per-connection states are walked, nothing exported until it has
//! caught up (`build.rs`). Then every scan is *steady*: it reads only what finished since
//! the last one, and does bounded upkeep beside it — a *repair sweep* now and then, the
//! checkpoint, retention (`steady.rs`, `retention.rs`) — and fails stuck runs when told to
//! (`reaper.rs`).

pub(crate) mod build;
pub(crate) mod reaper;
pub(crate) mod retention;
pub(crate) mod steady;

pub(crate) use build::{Build, Chunks, Step};
pub use retention::{prune_cutoff, prune_in_batches};
pub(crate) use steady::{Steady, WINDOW_ROWS};
