//! What can be wrong with a list (fatal) or with one image (that image is
//! dropped and reported).

use super::checksum::ChecksumError;
use super::identifier::IdentifierError;
use super::timestamp::TimestampError;
use crate::reason::Reason;
use serde::Serialize;

/// A problem that makes the whole document unusable as an image list.
///
/// Keys are given as paths inside the list body, e.g.
/// `hv:endorser/hv:x509/hv:dn`. Messages never echo large or control-laden
/// input verbatim.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The document is larger than the configured maximum.
    #[error("list is {size} bytes, the maximum is {max}")]
    TooLarge {
        /// Input size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not (acceptable) JSON: syntax, encoding, nesting depth, duplicate
    /// keys or an over-long string.
    #[error("list is not acceptable JSON: {message}")]
    Json {
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// The top level (or the `hv:imagelist` value) is not a JSON object.
    #[error("{key} is a JSON {found}, expected an object")]
    NotAnObject {
        /// `(document)` for the top level, else the key.
        key: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A required key is absent.
    #[error("required key {key} is missing")]
    MissingField {
        /// The key path.
        key: &'static str,
    },
    /// A key has the wrong JSON type.
    #[error("{key} is a JSON {found}, expected {expected}")]
    WrongType {
        /// The key path.
        key: &'static str,
        /// What the format requires.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A key that must not be empty is the empty string.
    #[error("{key} is empty")]
    EmptyField {
        /// The key path.
        key: &'static str,
    },
    /// A list timestamp is not `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("{key}: {source}")]
    InvalidTimestamp {
        /// The key path.
        key: &'static str,
        /// Why.
        #[source]
        source: TimestampError,
    },
    /// The list identifier is not a safe identifier.
    #[error("{key}: {source}")]
    InvalidIdentifier {
        /// The key path.
        key: &'static str,
        /// Why.
        #[source]
        source: IdentifierError,
    },
    /// More images than the configured maximum.
    #[error("list has {count} images, the maximum is {max}")]
    TooManyImages {
        /// Number of entries in `hv:images`.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl Reason for ListError {
    /// Every list-level problem is `malformed-list`: the publisher must fix
    /// the document, whatever the detail.
    fn reason(&self) -> &'static str {
        "malformed-list"
    }
}

/// A problem with one entry of `hv:images`. The entry is dropped, the rest
/// of the list stands, and the problem is reported as a [`RejectedImage`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The entry is not `{"hv:image": {...}}`.
    #[error("entry is not of the form {{\"hv:image\": {{...}}}}: {detail}")]
    Malformed {
        /// What was found instead.
        detail: String,
    },
    /// A required key is absent.
    #[error("required key {key} is missing")]
    MissingField {
        /// The key.
        key: &'static str,
    },
    /// A text key has the wrong type or an unusable value.
    #[error("{key}: {detail}")]
    InvalidField {
        /// The key.
        key: &'static str,
        /// Why.
        detail: String,
    },
    /// `hv:size` is not a non-negative integer.
    #[error("hv:size: {detail}")]
    InvalidSize {
        /// Why.
        detail: String,
    },
    /// `sl:checksum:sha512` is not a SHA-512 hex digest.
    #[error("sl:checksum:sha512: {detail}")]
    InvalidChecksum {
        /// Why.
        detail: String,
    },
    /// `dc:identifier` is not safe to use as a file name.
    #[error("dc:identifier: {source}")]
    UnsafeIdentifier {
        /// Why.
        #[source]
        source: IdentifierError,
    },
    /// A per-image timestamp is not `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("{key}: {detail}")]
    InvalidTimestamp {
        /// The key.
        key: &'static str,
        /// Why.
        detail: String,
    },
    /// Another entry has the same identifier (compared ASCII
    /// case-insensitively).
    #[error("dc:identifier is used by {count} entries; others at index {others:?}")]
    DuplicateIdentifier {
        /// How many entries use this identifier, this one included.
        count: usize,
        /// Indexes of (up to 8 of) the other entries with this identifier.
        others: Vec<usize>,
    },
}

impl From<ChecksumError> for ImageError {
    fn from(e: ChecksumError) -> Self {
        ImageError::InvalidChecksum {
            detail: e.to_string(),
        }
    }
}

impl From<TimestampError> for ImageError {
    fn from(e: TimestampError) -> Self {
        ImageError::InvalidTimestamp {
            key: "dc:date:expires",
            detail: e.to_string(),
        }
    }
}

impl Reason for ImageError {
    fn reason(&self) -> &'static str {
        match self {
            ImageError::Malformed { .. } => "malformed-image",
            ImageError::MissingField { .. } => "missing-field",
            ImageError::InvalidField { .. } => "invalid-field",
            ImageError::InvalidSize { .. } => "invalid-size",
            ImageError::InvalidChecksum { .. } => "invalid-checksum",
            ImageError::UnsafeIdentifier { .. } => "unsafe-identifier",
            ImageError::InvalidTimestamp { .. } => "invalid-timestamp",
            ImageError::DuplicateIdentifier { .. } => "duplicate-identifier",
        }
    }
}

/// An entry of `hv:images` that was dropped, and why.
///
/// The original silently dropped images it did not understand; here every
/// dropped image is reported (status, events, CLI) so that publishers and
/// subscribers can see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RejectedImage {
    /// Position in `hv:images` (0-based).
    pub index: usize,
    /// The entry's `dc:identifier` if it had a string one, sanitised for
    /// display (escaped, length-capped); it may not be a valid identifier.
    pub identifier: Option<String>,
    /// Stable kebab-case code: `malformed-image`, `missing-field`,
    /// `invalid-field`, `invalid-size`, `invalid-checksum`,
    /// `unsafe-identifier`, `invalid-timestamp`, `duplicate-identifier`.
    pub reason: String,
    /// Human explanation.
    pub message: String,
}

impl RejectedImage {
    /// Builds a report from the typed problem.
    pub fn new(index: usize, identifier: Option<String>, error: &ImageError) -> Self {
        RejectedImage {
            index,
            identifier,
            reason: error.reason().to_owned(),
            message: error.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_list_error_is_malformed_list() {
        let errors = [
            ListError::TooLarge { size: 2, max: 1 },
            ListError::Json {
                message: "x".into(),
            },
            ListError::NotAnObject {
                key: "(document)",
                found: "array",
            },
            ListError::MissingField { key: "dc:title" },
            ListError::WrongType {
                key: "hv:images",
                expected: "an array",
                found: "object",
            },
            ListError::EmptyField { key: "hv:version" },
            ListError::InvalidTimestamp {
                key: "dc:date:created",
                source: TimestampError::Shape,
            },
            ListError::InvalidIdentifier {
                key: "dc:identifier",
                source: IdentifierError::Empty,
            },
            ListError::TooManyImages { count: 2, max: 1 },
        ];
        for e in errors {
            assert_eq!(e.reason(), "malformed-list");
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn image_error_codes() {
        let cases = [
            (
                ImageError::Malformed { detail: "x".into() },
                "malformed-image",
            ),
            (ImageError::MissingField { key: "hv:uri" }, "missing-field"),
            (
                ImageError::InvalidField {
                    key: "dc:title",
                    detail: "x".into(),
                },
                "invalid-field",
            ),
            (
                ImageError::InvalidSize { detail: "x".into() },
                "invalid-size",
            ),
            (ChecksumError::Length { len: 1 }.into(), "invalid-checksum"),
            (
                ImageError::UnsafeIdentifier {
                    source: IdentifierError::LeadingDot,
                },
                "unsafe-identifier",
            ),
            (TimestampError::Shape.into(), "invalid-timestamp"),
            (
                ImageError::DuplicateIdentifier {
                    count: 2,
                    others: vec![1],
                },
                "duplicate-identifier",
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.reason(), code);
            let r = RejectedImage::new(3, Some("id".into()), &e);
            assert_eq!(r.reason, code);
            assert_eq!(r.index, 3);
            assert_eq!(r.message, e.to_string());
        }
    }
}
