//! The HEPiX image list model and parser: bytes in, typed list out.
//!
//! Pure: no I/O, no clock. The input is the JSON part of a signed list (the
//! trust layer extracts and verifies it); the output is a [`Parsed`] list,
//! the warnings worth showing, and the images that were dropped and why.
//!
//! * [`parse()`] / [`parse_with_limits`]: the entry points.
//! * [`ImageList`], [`Endorser`], [`X509Endorser`], [`Image`]: the model;
//!   serializes back with the original key names, unknown keys included.
//! * [`ImageId`], [`ListId`]: identifiers checked to be safe as file names.
//! * [`Sha512Hex`]: a validated, lower-case SHA-512 hex digest.
//! * [`parse_timestamp`], [`format_timestamp`]: the strict
//!   `YYYY-MM-DDTHH:MM:SSZ` format.
//! * [`compare_versions`]: `hv:version` ordering, as the original did it.

mod checksum;
mod document;
mod error;
mod identifier;
mod json;
mod model;
mod parse;
mod timestamp;
mod version;

pub use checksum::{ChecksumError, SHA512_HEX_LEN, Sha512Hex};
pub use error::{ImageError, ListError, RejectedImage};
pub use identifier::{
    IdentifierError, ImageId, ListId, MAX_IDENTIFIER_BYTES, sanitize_for_report,
    validate as validate_identifier,
};
pub use model::{Endorser, Image, ImageList, ListDocument, X509Endorser};
pub use parse::{Limits, MAX_WARNINGS, Parsed, parse, parse_with_limits};
pub use timestamp::{TimestampError, format_timestamp, parse_timestamp};
pub use version::compare_versions;

#[cfg(test)]
mod tests;
