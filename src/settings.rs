//! Helpers every settings struct uses: the duration and bucket-list parsers of its flags,
//! and [`defaults`], so a struct's defaults live in its `#[arg(default_value …)]`
//! attributes alone.

use std::time::Duration;

/// Parses durations written the way operators write them: `500ms`, `15s`, `5m`, `1h`, `1d`,
/// or a sum such as `1h30m`. A bare number is refused so a unit is never guessed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration {text:?}: expected a number"));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            "d" => Duration::from_secs(value.saturating_mul(86_400)),
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit (ms, s, m, h, d)"
                ))
            }
            other => return Err(format!("invalid duration {text:?}: unknown unit {other:?}")),
        };
        total = total.saturating_add(part);
    }
    if total > LONGEST_DURATION {
        return Err(format!(
            "invalid duration {text:?}: longer than 100 years (36500d)"
        ));
    }
    Ok(total)
}

/// The longest duration any flag takes: a cut-off that far back is still a date (one
/// further would overflow the clock's arithmetic at startup or in the first scan).
const LONGEST_DURATION: Duration = Duration::from_secs(36_500 * 86_400);

/// A histogram bucket bound: a positive, finite number of seconds.
pub fn parse_bucket(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("bucket {text:?} is not a number"))?;
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "bucket {text:?} must be a positive number of seconds"
        ))
    }
}

/// A settings struct with every flag at its default: the values written in its
/// `#[arg(default_value …)]` attributes, so they are stated once.
pub fn defaults<T: clap::Args>() -> T {
    #[derive(clap::Parser)]
    struct Only<T: clap::Args> {
        #[command(flatten)]
        settings: T,
    }
    <Only<T> as clap::Parser>::try_parse_from(["syncwatch"])
        .map(|only| only.settings)
        .unwrap_or_else(|e| panic!("the defaults of a settings struct do not parse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for bad in [
            "",
            "15",
            "s",
            "1.5s",
            "1w",
            "-1s",
            "1 s",
            "36501d",
            "99999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_duration("36500d"),
            Ok(Duration::from_secs(36_500 * 86_400))
        );
    }
}
