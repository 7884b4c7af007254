//! `--naive-timezone`: the zone an observed PostgreSQL table's `timestamp without time
//! zone` values are local times of, how they are read as instants, and the pools whose
//! sessions compare them in it.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::PgPoolOptions;

/// The zone an observed table's `timestamp without time zone` values were written in
/// (`--naive-timezone`): set once at start for the process, UTC when not set. Its pools'
/// sessions set the same `TimeZone` ([`in_zone`]), so the database compares those columns with
/// syncwatch's instants in it too.
static NAIVE_ZONE: std::sync::OnceLock<chrono_tz::Tz> = std::sync::OnceLock::new();

/// Read `timestamp without time zone` values as local times of `zone` from now on (once a
/// process; a second, different zone is refused).
pub fn read_naive_timestamps_in(zone: chrono_tz::Tz) -> std::result::Result<(), String> {
    let set = NAIVE_ZONE.get_or_init(|| zone);
    if *set == zone {
        Ok(())
    } else {
        Err(format!("naive timestamps are already read in {set}"))
    }
}

/// The zone naive timestamps are read in, when it is not UTC.
pub fn naive_zone() -> Option<chrono_tz::Tz> {
    NAIVE_ZONE.get().copied()
}

/// `naive`, a local time of `zone`, as an instant: an ambiguous time (the hour repeated
/// when clocks go back) as standard time, a time the clocks skipped with the offset before
/// the change, as PostgreSQL reads them.
pub(super) fn local_to_utc(zone: chrono_tz::Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    use chrono::{Offset, TimeZone};
    match zone.from_local_datetime(&naive).latest() {
        Some(at) => at.with_timezone(&Utc),
        None => {
            let offset = zone.offset_from_utc_datetime(&naive).fix();
            (naive - offset).and_utc()
        }
    }
}

/// Pools whose sessions are in `zone` (`--naive-timezone`), set on each new connection:
/// the driver's startup parameter sets UTC, which a `-c timezone=` option cannot override.
pub(super) fn in_zone(pool: PgPoolOptions, zone: Option<String>) -> PgPoolOptions {
    let Some(zone) = zone else {
        return pool;
    };
    pool.after_connect(move |conn, _| {
        let zone = zone.clone();
        Box::pin(async move {
            sqlx::query("select set_config('TimeZone', $1, false)")
                .bind(zone)
                .execute(conn)
                .await
                .map(|_| ())
        })
    })
}
