//! How the status page writes times, durations and ratios. Pure, unit-tested.

use chrono::{DateTime, SecondsFormat, Utc};

/// A timestamp in UTC, to the second: `2026-11-30 08:15:02 UTC`.
pub fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The same as RFC 3339 (for the `datetime` attribute of `<time>`).
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How long ago `at` was, seen from `now`: `just now`, `12 s ago`, `12 min ago`,
/// `3 h ago`, `4 d ago`; `in 5 min` for a time ahead of `now` (clock skew).
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    if seconds.abs() < 1 {
        return "just now".to_owned();
    }
    let span = span(seconds.unsigned_abs());
    if seconds > 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A span of seconds in its largest whole unit.
fn span(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3_599 => format!("{} min", seconds / 60),
        3_600..=172_799 => format!("{} h", seconds / 3_600),
        _ => format!("{} d", seconds / 86_400),
    }
}

/// A duration in milliseconds as a person reads it: `850 ms`, `12.4 s`, `3 min 05 s`,
/// `2 h 03 min`.
pub fn duration_ms(ms: i64) -> String {
    if ms < 0 {
        return format!("{ms} ms");
    }
    let ms = ms.unsigned_abs();
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {:02} s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{} h {:02} min", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

/// Success ratio as a percentage with one decimal, `—` when there were no runs.
pub fn ratio(succeeded: u64, failed: u64) -> String {
    let total = succeeded + failed;
    if total == 0 {
        return "—".to_owned();
    }
    format!("{:.1} %", succeeded as f64 * 100.0 / total as f64)
}

/// A timestamp and how long ago it was, or `never`.
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    pub utc: String,
    pub iso: String,
    pub ago: String,
}

impl When {
    pub fn new(at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            utc: utc(at),
            iso: rfc3339(at),
            ago: relative(at, now),
        }
    }

    pub fn from_option(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Self> {
        at.map(|at| Self::new(at, now))
    }

    /// Seconds since the Unix epoch (the metrics' timestamps); `None` for 0 (never).
    pub fn from_epoch(seconds: f64, now: DateTime<Utc>) -> Option<Self> {
        if seconds <= 0.0 {
            return None;
        }
        DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
            .map(|at| Self::new(at, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn relative_times_use_the_largest_whole_unit() {
        let now = at(0);
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(at(-12), now), "12 s ago");
        assert_eq!(relative(at(-59), now), "59 s ago");
        assert_eq!(relative(at(-60), now), "1 min ago");
        assert_eq!(relative(at(-12 * 60 - 30), now), "12 min ago");
        assert_eq!(relative(at(-3 * 3600), now), "3 h ago");
        assert_eq!(relative(at(-47 * 3600), now), "47 h ago");
        assert_eq!(relative(at(-4 * 86_400), now), "4 d ago");
        assert_eq!(relative(at(300), now), "in 5 min");
    }

    #[test]
    fn timestamps_are_utc() {
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 8, 15, 2).unwrap();
        assert_eq!(utc(t), "2026-11-30 08:15:02 UTC");
        assert_eq!(rfc3339(t), "2026-11-30T08:15:02Z");
        let when = When::from_epoch(t.timestamp() as f64, t).unwrap();
        assert_eq!(when.utc, "2026-11-30 08:15:02 UTC");
        assert_eq!(when.ago, "just now");
        assert_eq!(When::from_epoch(0.0, t), None);
    }

    #[test]
    fn durations_read_as_a_person_reads_them() {
        assert_eq!(duration_ms(0), "0 ms");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_400), "12.4 s");
        assert_eq!(duration_ms(185_000), "3 min 05 s");
        assert_eq!(duration_ms(7_380_000), "2 h 03 min");
        assert_eq!(duration_ms(-5), "-5 ms");
    }

    #[test]
    fn ratios_say_when_there_is_nothing_to_divide() {
        assert_eq!(ratio(0, 0), "—");
        assert_eq!(ratio(3, 1), "75.0 %");
        assert_eq!(ratio(0, 7), "0.0 %");
        assert_eq!(ratio(999, 1), "99.9 %");
    }
}
