//! Validated identifiers for images and lists.
//!
//! An image's `dc:identifier` is a UUID "by convention only": the format does
//! not enforce it, and the original subscriber used the identifier verbatim as
//! the file name of the cached image, so a signed list (or anyone who could
//! get one signed) could write `../../etc/cron.d/x`. Identifiers here are
//! therefore checked against a deliberately small alphabet before they are
//! accepted at all: every [`ImageId`] and [`ListId`] is safe to use as a
//! single path component, a Kubernetes label value fragment, an environment
//! variable value and a log field, without further escaping.
//!
//! The rules (see [`validate`]):
//! * non-empty and at most [`MAX_IDENTIFIER_BYTES`] bytes (file-name limits
//!   are 255 bytes; leave room for prefixes and suffixes such as `.partial`);
//! * only `A-Z a-z 0-9 . _ : @ + -` (UUIDs pass), which rules out `/`, `\`,
//!   NUL, control characters, whitespace and any non-ASCII look-alikes;
//! * no `..` anywhere (never a parent-directory reference, whatever the
//!   separator rules of the consumer) and no leading `.` (no `.`, no hidden
//!   files);
//! * no leading `-`, so that the name can never be read as an option by a
//!   command-line tool that is handed the file name.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest accepted identifier, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 128;

/// Why a string is not an acceptable identifier.
///
/// The variants never echo the offending string itself (it may contain
/// terminal escape sequences); they name the rule and, where useful, the
/// position and the character (debug-escaped).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// The identifier is the empty string.
    #[error("identifier is empty")]
    Empty,
    /// The identifier is longer than [`MAX_IDENTIFIER_BYTES`].
    #[error("identifier is {len} bytes long, the maximum is {max}")]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The maximum ([`MAX_IDENTIFIER_BYTES`]).
        max: usize,
    },
    /// The identifier contains a NUL byte.
    #[error("identifier contains a NUL byte at byte {position}")]
    Nul {
        /// Byte offset of the NUL.
        position: usize,
    },
    /// The identifier contains a control character.
    #[error("identifier contains control character {ch:?} at byte {position}")]
    ControlCharacter {
        /// The character.
        ch: char,
        /// Byte offset.
        position: usize,
    },
    /// The identifier contains whitespace.
    #[error("identifier contains whitespace {ch:?} at byte {position}")]
    Whitespace {
        /// The character.
        ch: char,
        /// Byte offset.
        position: usize,
    },
    /// The identifier contains `/` or `\`.
    #[error("identifier contains path separator {ch:?} at byte {position}")]
    PathSeparator {
        /// The separator.
        ch: char,
        /// Byte offset.
        position: usize,
    },
    /// The identifier contains `..`.
    #[error("identifier contains \"..\" at byte {position}")]
    DotDot {
        /// Byte offset of the first dot.
        position: usize,
    },
    /// The identifier starts with `.`.
    #[error("identifier starts with '.'")]
    LeadingDot,
    /// The identifier starts with `-`.
    #[error("identifier starts with '-'")]
    LeadingDash,
    /// The identifier contains a character outside `[A-Za-z0-9._:@+-]`.
    #[error("identifier contains {ch:?} at byte {position}, outside [A-Za-z0-9._:@+-]")]
    InvalidCharacter {
        /// The character.
        ch: char,
        /// Byte offset.
        position: usize,
    },
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '+' | '-')
}

fn allowed_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'+' | b'-')
}

/// Checks `s` against the identifier rules.
///
/// The original subscriber used an image's `dc:identifier` verbatim as the
/// cached file name (path traversal), so identifiers are held to a small
/// alphabet that is safe as a single path component, label fragment,
/// environment value and log field:
/// * non-empty and at most [`MAX_IDENTIFIER_BYTES`] bytes;
/// * only `A-Z a-z 0-9 . _ : @ + -` (UUIDs pass): no `/`, `\`, NUL,
///   control characters, whitespace or non-ASCII look-alikes;
/// * no `..` anywhere and no leading `.` (no parent references, no hidden
///   files);
/// * no leading `-` (never read as an option by a command given the name).
///
/// The most specific rule wins (a NUL is reported as such, not as an invalid
/// character), so that rejection messages tell the publisher what is wrong.
pub fn validate(s: &str) -> Result<(), IdentifierError> {
    if s.is_empty() {
        return Err(IdentifierError::Empty);
    }
    if s.len() > MAX_IDENTIFIER_BYTES {
        return Err(IdentifierError::TooLong {
            len: s.len(),
            max: MAX_IDENTIFIER_BYTES,
        });
    }
    // Every character is checked in turn only when some byte is outside the
    // alphabet: that walk exists to name the first offender precisely.
    let bytes = s.as_bytes();
    if !bytes.iter().all(|&b| allowed_byte(b)) {
        check_characters(s)?;
    }
    if let Some(position) = bytes.windows(2).position(|w| w == b"..") {
        return Err(IdentifierError::DotDot { position });
    }
    if s.starts_with('.') {
        return Err(IdentifierError::LeadingDot);
    }
    if s.starts_with('-') {
        return Err(IdentifierError::LeadingDash);
    }
    Ok(())
}

/// The first character of `s` outside the alphabet, by the most specific
/// rule it breaks.
fn check_characters(s: &str) -> Result<(), IdentifierError> {
    for (position, ch) in s.char_indices() {
        if ch == '\0' {
            return Err(IdentifierError::Nul { position });
        }
        if ch.is_control() {
            return Err(IdentifierError::ControlCharacter { ch, position });
        }
        if ch.is_whitespace() {
            return Err(IdentifierError::Whitespace { ch, position });
        }
        if ch == '/' || ch == '\\' {
            return Err(IdentifierError::PathSeparator { ch, position });
        }
        if !allowed(ch) {
            return Err(IdentifierError::InvalidCharacter { ch, position });
        }
    }
    Ok(())
}

/// Renders an untrusted identifier for a report: printable ASCII is kept,
/// everything else is escaped, and the result is capped in length, so that a
/// hostile identifier cannot inject terminal escapes or flood a status field.
pub fn sanitize_for_report(s: &str) -> String {
    const MAX_CHARS: usize = 2 * MAX_IDENTIFIER_BYTES;
    let mut out = String::new();
    for (count, ch) in s.chars().enumerate() {
        if count >= MAX_CHARS {
            out.push_str("...");
            break;
        }
        if ch.is_ascii_graphic() || ch == ' ' {
            out.push(ch);
        } else {
            out.extend(ch.escape_default());
        }
    }
    out
}

macro_rules! identifier_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `s` against the identifier rules (see [`validate`]).
            pub fn new(s: &str) -> Result<Self, IdentifierError> {
                validate(s)?;
                Ok(Self(s.to_owned()))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The identifier as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdentifierError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                validate(&s)?;
                Ok(Self(s))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdentifierError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdentifierError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

identifier_type! {
    /// An image's `dc:identifier`, validated to be safe as a file name.
    ///
    /// The cache later names files after it, so construction enforces the
    /// rules of [`validate`]; there is no way to build an
    /// `ImageId` that could escape a directory.
    ImageId
}

identifier_type! {
    /// A list's `dc:identifier`, validated like an [`ImageId`].
    ///
    /// It is a separate type so that an image identifier can never be passed
    /// where a list identifier is expected (both are UUIDs in practice); it
    /// follows the same rules because it ends up in file names and object
    /// names too.
    ListId
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_allowed_punctuation_pass() {
        for ok in [
            "488dcdc4-9ab1-4fc8-a7ba-b7a5428ecb3d",
            "76fdee70-8119-5d33-gggg-3c57e1c60df1",
            "C0482BC2-BF41-5D49-AAAA-A750174A186B",
            "a",
            "image.qcow2",
            "a_b:c@d+e-f.g",
            "x.",
            "1.2.3",
        ] {
            assert!(ImageId::new(ok).is_ok(), "{ok:?} should pass");
            assert!(ListId::new(ok).is_ok(), "{ok:?} should pass");
        }
        let max = "a".repeat(MAX_IDENTIFIER_BYTES);
        assert!(ImageId::new(&max).is_ok());
    }

    #[test]
    fn each_rule_rejects() {
        let cases: &[(&str, IdentifierError)] = &[
            ("", IdentifierError::Empty),
            (
                "../etc/passwd",
                IdentifierError::PathSeparator {
                    ch: '/',
                    position: 2,
                },
            ),
            ("a..b", IdentifierError::DotDot { position: 1 }),
            ("..", IdentifierError::DotDot { position: 0 }),
            (".hidden", IdentifierError::LeadingDot),
            (".", IdentifierError::LeadingDot),
            ("-rf", IdentifierError::LeadingDash),
            (
                "a\\b",
                IdentifierError::PathSeparator {
                    ch: '\\',
                    position: 1,
                },
            ),
            ("a\0b", IdentifierError::Nul { position: 1 }),
            (
                "a\nb",
                IdentifierError::ControlCharacter {
                    ch: '\n',
                    position: 1,
                },
            ),
            (
                "a\u{1b}[31m",
                IdentifierError::ControlCharacter {
                    ch: '\u{1b}',
                    position: 1,
                },
            ),
            (
                "a b",
                IdentifierError::Whitespace {
                    ch: ' ',
                    position: 1,
                },
            ),
            (
                "a\u{a0}b",
                IdentifierError::Whitespace {
                    ch: '\u{a0}',
                    position: 1,
                },
            ),
            (
                "a*b",
                IdentifierError::InvalidCharacter {
                    ch: '*',
                    position: 1,
                },
            ),
            (
                "caf\u{e9}",
                IdentifierError::InvalidCharacter {
                    ch: '\u{e9}',
                    position: 3,
                },
            ),
            (
                "\u{2215}etc",
                IdentifierError::InvalidCharacter {
                    ch: '\u{2215}',
                    position: 0,
                },
            ),
            (
                "$(reboot)",
                IdentifierError::InvalidCharacter {
                    ch: '$',
                    position: 0,
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                ImageId::new(input).unwrap_err(),
                *expected,
                "input {input:?}"
            );
        }
        let long = "a".repeat(MAX_IDENTIFIER_BYTES + 1);
        assert_eq!(
            ImageId::new(&long).unwrap_err(),
            IdentifierError::TooLong {
                len: MAX_IDENTIFIER_BYTES + 1,
                max: MAX_IDENTIFIER_BYTES
            }
        );
    }

    #[test]
    fn serde_round_trip_validates() {
        let id = ImageId::new("abc-1").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"abc-1\"");
        let back: ImageId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<ImageId>("\"../x\"").is_err());
        assert!(serde_json::from_str::<ListId>("\"\"").is_err());
    }

    #[test]
    fn conversions_and_display() {
        let id: ListId = "x:y".parse().unwrap();
        assert_eq!(id.to_string(), "x:y");
        assert_eq!(id.as_str(), "x:y");
        assert_eq!(id, "x:y");
        assert_eq!(String::from(id.clone()), "x:y");
        assert_eq!(ListId::try_from("x:y".to_owned()).unwrap(), id);
        assert!(ListId::try_from("a/b").is_err());
    }

    #[test]
    fn error_messages_do_not_echo_escape_sequences() {
        let err = ImageId::new("a\u{1b}]0;pwned\u{7}").unwrap_err();
        assert!(!err.to_string().contains('\u{1b}'));
    }

    #[test]
    fn sanitize_escapes_and_truncates() {
        assert_eq!(sanitize_for_report("ok-1"), "ok-1");
        assert_eq!(sanitize_for_report("a\u{1b}b"), "a\\u{1b}b");
        assert_eq!(sanitize_for_report("a\nb"), "a\\nb");
        let long = sanitize_for_report(&"x".repeat(10_000));
        assert!(long.len() <= 2 * MAX_IDENTIFIER_BYTES + 3);
        assert!(long.ends_with("..."));
    }
}
