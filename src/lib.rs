//! syncwatch: the lifecycle store and metrics sidecar for data-connector sync runs.
//!
//! Dependencies point one way: [`cli`] → [`startup`] → [`api`] / [`scan`] →
//! [`metrics`] / [`store`] → [`domain`]. [`telemetry`] (logs, OTLP) plugs into the
//! scanner and the API through their observer traits; [`auth`], [`clock`] and
//! [`settings`] are leaves any layer may use. `docs/design.md` ("Where things live") maps
//! where a new flag, metric, endpoint or query goes.

pub mod api;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod domain;
pub mod metrics;
pub mod scan;
pub mod server;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
#[doc(hidden)]
pub mod test_support;
pub mod ui;
