//! What a scanner keeps between scans, pure and unit-tested: the running totals behind the
//! counters and histograms (`totals.rs`), each connection's latest outcome and failure
//! streak (`connections.rs`), the learned windows behind the overdue and overrunning
//! signals (`learned.rs`), and the runs counted within the late-commit window
//! (`window.rs`).

pub(crate) mod connections;
pub(crate) mod learned;
mod saved;
pub(crate) mod totals;
pub(crate) mod window;

pub use connections::Connections;
pub use learned::{Learned, LearnedRules, LearnedSignals, LearnedState};
pub use saved::saved_with_connections;
pub use totals::{Changes, Missed, Totals};
pub use window::Window;
