//! Go-style durations (`6h`, `90m`, `1h30m`, `45s`), the form Kubernetes
//! users already write in Flux and CronJob-adjacent tools.

use std::time::Duration;

use thiserror::Error;

/// The schema pattern for duration fields: one or more `<number><unit>`
/// groups with units h, m, s, ms.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Why a duration string was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid duration {value:?}: {why} (expected e.g. 6h, 30m, 1h30m, 45s)")]
pub struct DurationError {
    pub value: String,
    pub why: &'static str,
}

/// Parses a Go-style duration. Fractions are allowed (`1.5h`); the result
/// is capped at one year so that arithmetic on it cannot overflow.
pub fn parse_duration(value: &str) -> Result<Duration, DurationError> {
    let error = |why| DurationError {
        value: value.to_string(),
        why,
    };
    if value.is_empty() {
        return Err(error("empty"));
    }
    if value.len() > 64 {
        return Err(error("too long"));
    }
    let mut total = 0f64;
    let mut rest = value;
    while !rest.is_empty() {
        let number_len = rest
            .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
            .ok_or_else(|| error("missing unit"))?;
        if number_len == 0 {
            return Err(error("missing number"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| error("bad number"))?;
        rest = &rest[number_len..];
        let (unit, seconds) = if rest.starts_with("ms") {
            ("ms", 0.001)
        } else if rest.starts_with('s') {
            ("s", 1.0)
        } else if rest.starts_with('m') {
            ("m", 60.0)
        } else if rest.starts_with('h') {
            ("h", 3600.0)
        } else {
            return Err(error("unknown unit"));
        };
        rest = &rest[unit.len()..];
        total += number * seconds;
    }
    const MAX_SECONDS: f64 = 366.0 * 24.0 * 3600.0;
    if total > MAX_SECONDS {
        return Err(error("longer than a year"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration the way users write it (`6h`, `1h30m`, `45s`).
pub fn format_duration(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    if seconds == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            out.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(6 * 3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["", "h", "6", "6x", "-6h", "6h-", "9999999h", "1 h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["6h", "1h30m", "45s", "1h1m1s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn pattern_agrees_with_parser() {
        let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
        for text in ["6h", "1h30m", "45s", "250ms", "1.5h"] {
            assert!(pattern.is_match(text), "{text}");
        }
        for text in ["", "6", "6x", "-6h"] {
            assert!(!pattern.is_match(text), "{text}");
        }
    }
}
