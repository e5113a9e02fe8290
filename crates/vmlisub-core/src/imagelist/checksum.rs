//! `sl:checksum:sha512` values.
//!
//! The checksum is what binds a downloaded image to the signed list, so it is
//! validated at parse time (exactly 128 hex digits) rather than when the
//! download finishes: a list with a truncated checksum must not start a
//! multi-gigabyte download that can never verify. Publishers differ in case;
//! the value is stored lower-case and compared case-insensitively.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Number of hex digits in a SHA-512 digest.
pub const SHA512_HEX_LEN: usize = 128;

/// Why a string is not a SHA-512 hex digest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    /// Not 128 characters long.
    #[error("sha512 checksum has {len} characters, expected {SHA512_HEX_LEN} hex digits")]
    Length {
        /// Length in bytes.
        len: usize,
    },
    /// A character that is not a hex digit.
    #[error("sha512 checksum contains non-hex character {ch:?} at byte {position}")]
    NotHex {
        /// The character.
        ch: char,
        /// Byte offset.
        position: usize,
    },
}

/// A SHA-512 digest as 128 lower-case hex digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha512Hex(String);

impl Sha512Hex {
    /// Validates and normalises (to lower case) a hex digest.
    pub fn new(s: &str) -> Result<Self, ChecksumError> {
        check(s)?;
        Ok(Self(s.to_ascii_lowercase()))
    }

    /// Builds the hex form of a computed digest.
    pub fn from_digest(digest: &[u8; 64]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(SHA512_HEX_LEN);
        for b in digest {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        Self(s)
    }

    /// The lower-case hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 digest bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        fn nibble(c: u8) -> u8 {
            match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                // Unreachable: the constructor only admits lower-case hex.
                _ => 0,
            }
        }
        let mut out = [0u8; 64];
        for (o, pair) in out.iter_mut().zip(self.0.as_bytes().chunks_exact(2)) {
            *o = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        out
    }

    /// Case-insensitive comparison with another hex string; anything that is
    /// not a valid digest never matches.
    pub fn matches(&self, other_hex: &str) -> bool {
        self.0.eq_ignore_ascii_case(other_hex)
    }

    /// Compares with a computed digest.
    pub fn matches_digest(&self, digest: &[u8]) -> bool {
        digest == self.to_bytes().as_slice()
    }
}

/// Why `s` is not a SHA-512 hex digest, if it is not.
fn check(s: &str) -> Result<(), ChecksumError> {
    if s.len() == SHA512_HEX_LEN && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    if let Some((position, ch)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(ChecksumError::NotHex { ch, position });
    }
    Err(ChecksumError::Length { len: s.len() })
}

/// Like [`Sha512Hex::new`], lower-casing in place (the list parser owns
/// every checksum string it reads).
impl TryFrom<String> for Sha512Hex {
    type Error = ChecksumError;

    fn try_from(mut s: String) -> Result<Self, Self::Error> {
        check(&s)?;
        s.make_ascii_lowercase();
        Ok(Self(s))
    }
}

impl From<Sha512Hex> for String {
    fn from(h: Sha512Hex) -> String {
        h.0
    }
}

impl AsRef<str> for Sha512Hex {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha512Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Sha512Hex {
    type Err = ChecksumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const REAL: &str = "8b4c269a60da1061b434b696c4a89293bea847b66bd8ba486a914d4209df651193ee8d454f8231840b7500fab6740620c7111d9a17d08b743133dc393ba2c0d4";

    #[test]
    fn accepts_and_lowercases() {
        let h = Sha512Hex::new(&REAL.to_ascii_uppercase()).unwrap();
        assert_eq!(h.as_str(), REAL);
        assert!(h.matches(REAL));
        assert!(h.matches(&REAL.to_ascii_uppercase()));
        assert!(!h.matches(&REAL[..127]));
        assert!(!h.matches(""));
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(Sha512Hex::new(""), Err(ChecksumError::Length { len: 0 }));
        assert_eq!(
            Sha512Hex::new(&REAL[..127]),
            Err(ChecksumError::Length { len: 127 })
        );
        assert_eq!(
            Sha512Hex::new(&format!("{REAL}0")),
            Err(ChecksumError::Length { len: 129 })
        );
        let mut bad = REAL.to_owned();
        bad.replace_range(5..6, "g");
        assert_eq!(
            Sha512Hex::new(&bad),
            Err(ChecksumError::NotHex {
                ch: 'g',
                position: 5
            })
        );
        assert!(Sha512Hex::new(&format!("sha512:{}", &REAL[..121])).is_err());
        // 128 characters but multi-byte: rejected as not hex, never sliced.
        let multibyte = "é".repeat(64);
        assert!(matches!(
            Sha512Hex::new(&multibyte),
            Err(ChecksumError::NotHex { .. })
        ));
        let spaced = format!(" {}", &REAL[1..]);
        assert!(Sha512Hex::new(&spaced).is_err());
    }

    #[test]
    fn bytes_round_trip() {
        let h = Sha512Hex::new(REAL).unwrap();
        let bytes = h.to_bytes();
        assert_eq!(bytes[0], 0x8b);
        assert_eq!(bytes[63], 0xd4);
        assert_eq!(Sha512Hex::from_digest(&bytes), h);
        assert!(h.matches_digest(&bytes));
        assert!(!h.matches_digest(&bytes[..63]));
        assert!(!h.matches_digest(&[0u8; 64]));
    }

    #[test]
    fn serde_validates() {
        let h: Sha512Hex = serde_json::from_str(&format!("\"{}\"", REAL.to_uppercase())).unwrap();
        assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{REAL}\""));
        assert!(serde_json::from_str::<Sha512Hex>("\"abc\"").is_err());
    }
}
