//! The one timestamp shape image lists use: `YYYY-MM-DDTHH:MM:SSZ`.
//!
//! The format is strict on purpose. Lists are signed documents compared by
//! time (rollback and replay protection, expiry), so two parsers must never
//! disagree on what a date means: no offsets, no fractions, no lower-case
//! `t`/`z`, no leap seconds, no "lenient" RFC 3339 variants. A timestamp
//! that is not exactly this shape is rejected rather than guessed at.

use jiff::Timestamp;
use jiff::tz::Offset;

/// Why a string is not a `YYYY-MM-DDTHH:MM:SSZ` timestamp.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// Wrong length or wrong characters at fixed positions.
    #[error("timestamp is not of the form YYYY-MM-DDTHH:MM:SSZ")]
    Shape,
    /// The shape is right but the date does not exist (e.g. February 30th).
    #[error("timestamp names a date that does not exist ({year:04}-{month:02}-{day:02})")]
    InvalidDate {
        /// Year as written.
        year: u16,
        /// Month as written.
        month: u8,
        /// Day as written.
        day: u8,
    },
    /// Hour, minute or second out of range (including leap second `60`).
    #[error("timestamp has a time of day out of range ({hour:02}:{minute:02}:{second:02})")]
    InvalidTime {
        /// Hour as written.
        hour: u8,
        /// Minute as written.
        minute: u8,
        /// Second as written.
        second: u8,
    },
    /// A real date, but beyond what the time library represents (the very
    /// end of year 9999).
    #[error("timestamp is out of the supported range")]
    OutOfRange,
}

/// The exact shape: `D` is an ASCII digit, anything else must match literally.
const SHAPE: &[u8; 20] = b"DDDD-DD-DDTDD:DD:DDZ";

/// Parses a strict `YYYY-MM-DDTHH:MM:SSZ` UTC timestamp.
pub fn parse_timestamp(s: &str) -> Result<Timestamp, TimestampError> {
    let b = s.as_bytes();
    if b.len() != SHAPE.len() {
        return Err(TimestampError::Shape);
    }
    for (&c, &want) in b.iter().zip(SHAPE.iter()) {
        let ok = if want == b'D' {
            c.is_ascii_digit()
        } else {
            c == want
        };
        if !ok {
            return Err(TimestampError::Shape);
        }
    }
    // All digit positions are checked above, so these cannot overflow:
    // at most 4 digits (9999) fit in u16, 2 digits (99) in u8.
    let num = |range: std::ops::Range<usize>| -> u16 {
        b[range]
            .iter()
            .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'))
    };
    let year = num(0..4);
    let month = num(5..7) as u8;
    let day = num(8..10) as u8;
    let hour = num(11..13) as u8;
    let minute = num(14..16) as u8;
    let second = num(17..19) as u8;
    if hour > 23 || minute > 59 || second > 59 {
        return Err(TimestampError::InvalidTime {
            hour,
            minute,
            second,
        });
    }
    let date = jiff::civil::Date::new(year as i16, month as i8, day as i8)
        .map_err(|_| TimestampError::InvalidDate { year, month, day })?;
    let datetime = date.at(hour as i8, minute as i8, second as i8, 0);
    Offset::UTC
        .to_timestamp(datetime)
        .map_err(|_| TimestampError::OutOfRange)
}

/// Formats a timestamp as `YYYY-MM-DDTHH:MM:SSZ`, truncating sub-second
/// precision (parsed timestamps never have any).
///
/// Years outside `0000..=9999` cannot come out of [`parse_timestamp`]; if a
/// caller builds such a timestamp anyway it is formatted with a sign and
/// more digits rather than panicking.
pub fn format_timestamp(ts: Timestamp) -> String {
    let dt = Offset::UTC.to_datetime(ts);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Serializes a timestamp field in list format (for `serialize_with`).
pub fn serialize<S: serde::Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(*ts))
}

/// Serializes an optional timestamp field (for `serialize_with` together with
/// `skip_serializing_if = "Option::is_none"`).
pub fn serialize_opt<S: serde::Serializer>(
    ts: &Option<Timestamp>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => s.serialize_str(&format_timestamp(*ts)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_list_dates() {
        let ts = parse_timestamp("2011-03-10T17:09:12Z").unwrap();
        assert_eq!(ts.as_second(), 1_299_776_952);
        let far = parse_timestamp("2499-12-31T22:00:00Z").unwrap();
        assert_eq!(format_timestamp(far), "2499-12-31T22:00:00Z");
    }

    #[test]
    fn round_trips() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2015-06-18T21:14:00Z",
            "0001-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-30T22:00:00Z",
        ] {
            assert_eq!(format_timestamp(parse_timestamp(s).unwrap()), s);
        }
        assert_eq!(
            parse_timestamp("9999-12-31T23:59:59Z"),
            Err(TimestampError::OutOfRange)
        );
    }

    #[test]
    fn rejects_other_shapes() {
        for s in [
            "",
            "2011-03-10",
            "2011-03-10T17:09:12",
            "2011-03-10T17:09:12z",
            "2011-03-10t17:09:12Z",
            "2011-03-10 17:09:12Z",
            "2011-03-10T17:09:12.5Z",
            "2011-03-10T17:09:12+00:00",
            "2011-03-10T17:09:12Z ",
            " 2011-03-10T17:09:12Z",
            "+2011-03-10T17:09:12Z",
            "2011-3-10T17:09:12Z0",
            "20110310T170912Z",
            "2011-03-10T17:09:1aZ",
            "２011-03-10T17:09:12Z",
            "2011/03/10T17:09:12Z",
        ] {
            assert_eq!(parse_timestamp(s), Err(TimestampError::Shape), "{s:?}");
        }
    }

    #[test]
    fn rejects_impossible_dates_and_times() {
        for s in [
            "2011-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2011-13-01T00:00:00Z",
            "2011-00-01T00:00:00Z",
            "2011-01-00T00:00:00Z",
            "2011-04-31T00:00:00Z",
        ] {
            assert!(
                matches!(parse_timestamp(s), Err(TimestampError::InvalidDate { .. })),
                "{s:?}"
            );
        }
        for s in [
            "2011-01-01T24:00:00Z",
            "2011-01-01T23:60:00Z",
            "2016-12-31T23:59:60Z",
        ] {
            assert!(
                matches!(parse_timestamp(s), Err(TimestampError::InvalidTime { .. })),
                "{s:?}"
            );
        }
        assert!(parse_timestamp("2000-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn format_truncates_fractions() {
        let ts = Timestamp::new(1_299_776_952, 999_999_999).unwrap();
        assert_eq!(format_timestamp(ts), "2011-03-10T17:09:12Z");
    }

    #[test]
    fn format_extreme_timestamps_does_not_panic() {
        let _ = format_timestamp(Timestamp::MIN);
        let _ = format_timestamp(Timestamp::MAX);
    }

    #[test]
    fn serializes_in_list_shape() {
        #[derive(serde::Serialize)]
        struct T {
            #[serde(serialize_with = "serialize")]
            a: Timestamp,
            #[serde(serialize_with = "serialize_opt")]
            b: Option<Timestamp>,
        }
        let a = parse_timestamp("2015-06-18T21:14:00Z").unwrap();
        let t = T { a, b: Some(a) };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"a":"2015-06-18T21:14:00Z","b":"2015-06-18T21:14:00Z"}"#
        );
        let t = T { a, b: None };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"a":"2015-06-18T21:14:00Z","b":null}"#
        );
    }
}
