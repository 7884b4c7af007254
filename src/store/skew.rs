//! Whether the table's times agree with the database clock: the newest completion far
//! ahead of the clock means a writer's clock is ahead, or a writer stores local times in
//! `timestamp without time zone` columns of a zone ahead of UTC (syncwatch reads those as
//! UTC). Such runs read as from the future: their last-success times lie ahead and their
//! completions count late. Said at `serve`'s start and by `check`; never a refusal, since
//! one re-dated row would look the same.

use chrono::{DateTime, Duration, Utc};

use super::{Result, Store};

/// How far the newest completion may lie ahead of the database clock before it is said.
const AHEAD: Duration = Duration::minutes(30);

/// What the newest completion says about the writers' clocks, in a sentence when it is
/// worth saying.
pub fn judge(newest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<String> {
    let ahead = newest? - now;
    if ahead <= AHEAD {
        return None;
    }
    let minutes = ahead.num_minutes();
    Some(format!(
        "the newest completion in the table is {}h {:02}m ahead of the database clock: a \
         writer's clock is ahead, or a writer stores local times in `timestamp without time \
         zone` columns in a zone ahead of UTC, which syncwatch reads as UTC (its runs then \
         count late and their last-success times lie in the future). Store UTC, or \
         timestamptz",
        minutes / 60,
        minutes % 60
    ))
}

/// [`judge`] on the store's newest completion.
pub async fn check(store: &Store) -> Result<Option<String>> {
    let (newest, now) = store.scan().newest_completed_at().await?;
    Ok(judge(newest, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_completion_well_ahead_of_the_clock_is_said() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(judge(None, now), None);
        assert_eq!(judge(Some(now - Duration::hours(5)), now), None);
        assert_eq!(judge(Some(now + Duration::minutes(20)), now), None);
        let said = judge(Some(now + Duration::hours(9) + Duration::seconds(3)), now).unwrap();
        assert!(
            said.starts_with("the newest completion in the table is 9h 00m ahead"),
            "{said}"
        );
    }
}
