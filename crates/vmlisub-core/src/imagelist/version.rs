//! `hv:version` comparison, the way the original subscriber did it.
//!
//! Publishers use anything from `1` through `3.3.0-1` to `20150618211400`,
//! so versions are compared piecewise rather than as strings or semver:
//! split on the separators `-` `,` `.` `/`; within a piece, compare runs of
//! ASCII digits numerically and runs of other characters lexically. The
//! original did this in Python 2, where a number sorts before a string and a
//! longer list is greater when its prefix is equal; both rules are kept so
//! that a list that was accepted by the original is not rejected as a
//! rollback here, and vice versa.

use std::cmp::Ordering;

fn is_separator(c: char) -> bool {
    matches!(c, '-' | ',' | '.' | '/')
}

/// One maximal run of digits or of non-digits inside a piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run<'a> {
    Digits(&'a str),
    Text(&'a str),
}

/// Splits a piece into alternating digit and non-digit runs. ASCII digits
/// are single bytes that never occur inside a multi-byte UTF-8 sequence, so
/// splitting at digit boundaries always lands on character boundaries.
fn runs(piece: &str) -> impl Iterator<Item = Run<'_>> {
    let bytes = piece.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        let first = *bytes.get(start)?;
        let digits = first.is_ascii_digit();
        let len = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit() == digits)
            .count();
        let run = piece.get(start..start + len)?;
        start += len;
        Some(if digits {
            Run::Digits(run)
        } else {
            Run::Text(run)
        })
    })
}

/// Compares two digit strings as unbounded non-negative integers: strip
/// leading zeros, then the longer is greater, then compare lexically (which
/// equals numeric order for equal-length digit strings). Never overflows.
fn compare_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn compare_run(a: Run<'_>, b: Run<'_>) -> Ordering {
    match (a, b) {
        (Run::Digits(x), Run::Digits(y)) => compare_digits(x, y),
        (Run::Text(x), Run::Text(y)) => x.cmp(y),
        // Python 2 ordered every int before every str.
        (Run::Digits(_), Run::Text(_)) => Ordering::Less,
        (Run::Text(_), Run::Digits(_)) => Ordering::Greater,
    }
}

/// Lexicographic comparison of two sequences where a longer sequence with an
/// equal prefix is greater (Python list ordering).
fn compare_seq<T>(
    mut a: impl Iterator<Item = T>,
    mut b: impl Iterator<Item = T>,
    cmp: impl Fn(T, T) -> Ordering,
) -> Ordering {
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (Some(x), Some(y)) => match cmp(x, y) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

/// Compares two `hv:version` strings the original's way: split on `-` `,`
/// `.` `/`; within each piece compare runs of ASCII digits numerically (any
/// length) and other runs lexically, a digit run sorting before a text run;
/// with an equal common prefix, more pieces (or runs) is greater.
///
/// `Equal` means "the same version" for rollback purposes even if the
/// strings differ (`1.02` and `1-2` are equal: leading zeros and the choice
/// of separator do not matter).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    compare_seq(a.split(is_separator), b.split(is_separator), |x, y| {
        compare_seq(runs(x), runs(y), compare_run)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    fn check(a: &str, b: &str, want: Ordering) {
        assert_eq!(compare_versions(a, b), want, "{a:?} vs {b:?}");
        assert_eq!(
            compare_versions(b, a),
            want.reverse(),
            "{b:?} vs {a:?} (antisymmetry)"
        );
    }

    #[test]
    fn brief_examples() {
        check("1", "2", Less);
        check("3.3.0-1", "3.10.0", Less);
        check("20150618211400", "20150618211500", Less);
        check("1.0", "1.0.1", Less);
        check("1a", "1b", Less);
        check("1.2", "1.2", Equal);
    }

    #[test]
    fn numeric_not_lexical() {
        check("9", "10", Less);
        check("1.9", "1.10", Less);
        check("2", "10", Less);
        check("3.3.0-1", "3.3.0-2", Less);
        check("3.3.0-10", "3.3.0-9", Greater);
    }

    #[test]
    fn arbitrary_length_digits_do_not_overflow() {
        let big = "9".repeat(100);
        let bigger = format!("1{}", "0".repeat(100));
        check(&big, &bigger, Less);
        check(&format!("000{big}"), &big, Equal);
        check("18446744073709551616", "18446744073709551615", Greater);
    }

    #[test]
    fn leading_zeros_and_separators_do_not_matter() {
        check("01", "1", Equal);
        check("1.02", "1.2", Equal);
        check("1-2", "1.2", Equal);
        check("1,2/3", "1.2.3", Equal);
        check("0", "00", Equal);
        check("", "0", Less);
    }

    #[test]
    fn more_pieces_or_runs_is_greater() {
        check("1.0", "1", Greater);
        check("1.", "1", Greater);
        check("1a", "1", Greater);
        check("1a1", "1a", Greater);
        check("", "", Equal);
    }

    #[test]
    fn digits_sort_before_text() {
        check("1", "a", Less);
        check("1.0", "1.beta", Less);
        check("a1", "a1", Equal);
        check("rc1", "rc2", Less);
        check("alpha", "beta", Less);
        check("A", "a", Less);
    }

    #[test]
    fn non_ascii_text_is_handled() {
        check("1\u{e9}2", "1\u{e9}3", Less);
        check("\u{1f600}", "\u{1f600}1", Less);
        check("1\u{660}", "1\u{661}", Less); // Arabic-Indic digits are text
    }

    #[test]
    fn runs_split_correctly() {
        let r: Vec<_> = runs("ab12cd3").collect();
        assert_eq!(
            r,
            vec![
                Run::Text("ab"),
                Run::Digits("12"),
                Run::Text("cd"),
                Run::Digits("3")
            ]
        );
        assert_eq!(runs("").count(), 0);
    }

    #[test]
    fn total_order_on_sample() {
        // Transitivity and consistency over a small sample.
        let sample = [
            "",
            "0",
            "1",
            "1.0",
            "1.0.1",
            "1a",
            "1b",
            "2",
            "3.3.0-1",
            "3.10.0",
            "10",
            "a",
            "1.beta",
            "01",
            "20150618211400",
        ];
        for a in sample {
            for b in sample {
                for c in sample {
                    let ab = compare_versions(a, b);
                    let bc = compare_versions(b, c);
                    if ab == bc && ab != Equal {
                        assert_eq!(compare_versions(a, c), ab, "{a:?} {b:?} {c:?}");
                    }
                }
            }
        }
    }
}
