//! The scanner's PostgreSQL statements as `EXPLAIN` reads them: each with its parameters
//! written in as SQL, for the benchmarks' and the docs' query plans; and the API's
//! transition as it is prepared, for the tests of its generic plan.

use super::scanner::Bound;
use super::{connection_walk, lifecycle, live, scanner};
use crate::domain::Action;
use crate::store::engine::POSTGRES;
use crate::store::observed::TableMap;

/// The scanner's Postgres queries with their parameters written in as SQL (the late-commit
/// window and the default stuck cut-offs), for `EXPLAIN` in the benchmarks and docs.
pub fn postgres_scanner_queries(
    duration_bounds: &[f64],
    delay_bounds: &[f64],
) -> Vec<(&'static str, String)> {
    let d = &POSTGRES;
    let t = &TableMap::default();
    let window = "(now() - interval '5 minutes')";
    vec![
        (
            "build: terminal aggregate",
            scanner::aggregate_sql(d, t, duration_bounds, delay_bounds, Bound::At, Bound::None)
                .replace("$1", window),
        ),
        (
            "start from a checkpoint 1 h old: the terminal aggregate since",
            scanner::aggregate_sql(d, t, duration_bounds, delay_bounds, Bound::At, Bound::At)
                .replace("$1", window)
                .replace("$2", "(now() - interval '65 minutes')"),
        ),
        (
            "first start: connection states, a chunk of 2000 connections from the middle",
            connection_walk::connection_states_sql(d, t, true)
                .replace("$2::uuid", "'80000000-0000-0000-0000-000000000000'::uuid")
                .replace("$1", "2000"),
        ),
        (
            "first start: where a chunk of 100000 runs ends",
            scanner::terminal_boundary_sql(d, t, Bound::None)
                .replace("$1", window)
                .replace("$2", "100000"),
        ),
        (
            "a backfill: where a chunk of 100000 runs ends inside one instant",
            scanner::terminal_boundary_sql(d, t, Bound::Keyed)
                .replace("$1", window)
                .replace("$2", "100000")
                .replace("$3", "(now() - interval '6 minutes')")
                .replace("$4::bigint", "0::bigint"),
        ),
        (
            "every scan: runs completed in the window",
            scanner::terminal_after_sql(d, t, Bound::At, Bound::None, true)
                .replace("$2", "100000")
                .replace("$1", window),
        ),
        (
            "every scan: live runs created or started in the window",
            live::live_runs_sql(d, t, true, 100_000).replace("$1", window),
        ),
        (
            "every scan: active runs",
            live::active_groups_sql(d, t)
                .replace("$1", "(now() - interval '15 minutes')")
                .replace("$2", "(now() - interval '30 minutes')")
                .replace("$3", "(now() - interval '6 hours')"),
        ),
    ]
}

/// The compare-and-set transition for `action` on the owned PostgreSQL table, with its
/// parameters as placeholders (1 id, 2 new status, 3 error, 4 metadata patch, then the
/// allowed statuses), as the store prepares it.
pub fn postgres_transition(action: Action) -> String {
    lifecycle::transition(&POSTGRES, &TableMap::default(), action)
}
