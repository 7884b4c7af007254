//! From the scanner's state to the published [`Snapshot`](crate::metrics::Snapshot): the
//! families built from the running totals, kept between scans and updated with the series
//! a scan's runs touched (`families.rs`), and the builder that adds the live, connection
//! and learned families and labels connectors under the cap (`publish.rs`).

pub(crate) mod families;
pub(crate) mod publish;

pub use publish::{SnapshotBuilder, SnapshotInputs};
