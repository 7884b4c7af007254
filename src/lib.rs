//! syncwatch: the lifecycle store and metrics sidecar for data-connector sync runs.
//!
//! `domain` holds the pure rules, `store` the Postgres and SQLite implementations,
//! `api` the HTTP surface, `app` wires them to a listener, `cli` runs the commands.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod domain;
pub mod load;
pub mod metrics;
pub mod scan;
pub mod store;
pub mod telemetry;
