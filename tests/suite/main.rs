//! syncwatch's integration suite: one test binary, one module per area, each against real
//! stores (a fresh PostgreSQL database or a SQLite file per test) and, where the area
//! needs them, the real binary, Prometheus, Alertmanager, promtool and Chromium.
//!
//! One binary instead of one per file: the crate and the harness are compiled and linked
//! once. Run one area with `scripts/test --test suite -- <module>::`.

#[macro_use]
mod common;

mod api_concurrency;
mod api_lifecycle;
mod api_validation;
mod backfill;
mod bounded_scan;
mod cli;
mod container;
mod counting_rule;
mod demo;
mod deploy;
mod e2e_alerting;
#[cfg(feature = "otlp")]
mod e2e_exemplars;
mod e2e_prometheus;
mod edges;
mod exposition;
mod failover;
mod faults;
mod fuzz;
mod hostile;
mod learned;
mod limits;
mod live_runs;
mod load;
mod metrics;
mod mixin;
mod observe;
mod observe_bad_rows;
mod observe_keys;
mod observe_lookups;
mod observe_orm;
mod openapi;
mod openmetrics;
#[cfg(feature = "otlp")]
mod otlp;
mod pinned_table;
mod plans;
mod properties;
mod replica;
mod rules_and_dashboards;
mod scrape_memory;
mod store_faults;
mod ui;
mod ui_browser;
