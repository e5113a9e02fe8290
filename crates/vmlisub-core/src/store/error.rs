//! Errors of the image cache.
//!
//! Every variant carries the path (or the name) it is about, because a cache
//! error is only actionable when the operator's status or log says which
//! file; and every variant has a stable reason code (see [`Reason`]) so that
//! conditions, events and metrics can tell a full disk from a corrupt image.

use super::names::NameError;
use crate::imagelist::Sha512Hex;
use crate::reason::Reason;
use std::io;
use std::path::PathBuf;

/// A failure of the image cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A name that would become a path component failed validation.
    #[error("unsafe {what}: {source}")]
    UnsafeName {
        /// Which component (`namespace`, `image identifier`, ...).
        what: &'static str,
        /// The rule that failed.
        #[source]
        source: NameError,
    },
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was attempted (`open`, `rename`, `fsync`, ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A write failed because the file system is full (or over quota).
    #[error("{op} {}: no space left: {source}", path.display())]
    DiskFull {
        /// What was attempted.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error (`ENOSPC`/`EDQUOT`).
        #[source]
        source: io::Error,
    },
    /// The pre-check found too little free space for a download.
    #[error(
        "not enough space in {}: {needed} bytes needed, {available} available",
        path.display()
    )]
    NoSpace {
        /// The cache root (the file system that was measured).
        path: PathBuf,
        /// Bytes still to be written plus the configured reserve.
        needed: u64,
        /// Bytes available to this (unprivileged) process.
        available: u64,
    },
    /// A file's length differs from the size it must have.
    #[error("{}: size is {actual} bytes, expected {expected}", path.display())]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The expected size (list / record).
        expected: u64,
        /// The file's length.
        actual: u64,
    },
    /// A file's SHA-512 differs from the expected one.
    #[error("{}: sha512 is {actual}, expected {expected}", path.display())]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// The expected digest.
        expected: Sha512Hex,
        /// The computed digest.
        actual: Sha512Hex,
    },
    /// A file or entry that the operation needs does not exist.
    #[error("{what} not found: {}", path.display())]
    NotFound {
        /// What was looked for (`partial download`, `cached image`, ...).
        what: &'static str,
        /// Where.
        path: PathBuf,
    },
    /// A symbolic link was found where the cache expects a real file or
    /// directory; it is never followed, so that a planted link cannot
    /// redirect reads or writes out of the cache.
    #[error("refusing to follow symbolic link {}", path.display())]
    SymlinkRefused {
        /// The link.
        path: PathBuf,
    },
    /// Something other than the expected kind of file (a directory where a
    /// file belongs, a FIFO, a device, ...).
    #[error("{}: expected {expected}, found {found}", path.display())]
    UnexpectedFileType {
        /// The path.
        path: PathBuf,
        /// What should be there.
        expected: &'static str,
        /// What is there.
        found: &'static str,
    },
    /// The destination already exists; the store never overwrites an
    /// endorsed image (expire the old one first).
    #[error("{} already exists", path.display())]
    AlreadyExists {
        /// The destination.
        path: PathBuf,
    },
    /// A metadata record is unreadable, malformed or contradicts the call
    /// (another key, never verified, ...).
    #[error("metadata record {}: {detail}", path.display())]
    RecordInvalid {
        /// The record file (or the image it belongs to).
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A test-only crash injected between two steps of an operation (the
    /// `simulated-crash` feature, enabled by the `vmlisub` crate's tests
    /// only).
    #[cfg(feature = "simulated-crash")]
    #[error("simulated crash")]
    SimulatedCrash,
}

impl Reason for StoreError {
    fn reason(&self) -> &'static str {
        match self {
            Self::UnsafeName { .. } => "unsafe-name",
            Self::Io { .. } => "io",
            Self::DiskFull { .. } | Self::NoSpace { .. } => "no-space",
            Self::SizeMismatch { .. } => "size-mismatch",
            Self::ChecksumMismatch { .. } => "checksum-mismatch",
            Self::NotFound { .. } => "not-found",
            Self::SymlinkRefused { .. } => "symlink-refused",
            Self::UnexpectedFileType { .. } => "unexpected-file-type",
            Self::AlreadyExists { .. } => "already-exists",
            Self::RecordInvalid { .. } => "record-invalid",
            #[cfg(feature = "simulated-crash")]
            Self::SimulatedCrash => "simulated-crash",
        }
    }
}

impl StoreError {
    /// Wraps an I/O error, classifying a full disk (`ENOSPC`, `EDQUOT`) as
    /// [`StoreError::DiskFull`] so that it gets the `no-space` reason.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        // std maps ENOSPC and EDQUOT to these kinds.
        let full = source.kind() == io::ErrorKind::StorageFull
            || source.kind() == io::ErrorKind::QuotaExceeded;
        if full {
            Self::DiskFull { op, path, source }
        } else {
            Self::Io { op, path, source }
        }
    }

    /// Whether this is the test-only injected crash.
    #[cfg(feature = "simulated-crash")]
    pub fn is_simulated_crash(&self) -> bool {
        matches!(self, Self::SimulatedCrash)
    }

    /// Whether this is the test-only injected crash.
    #[cfg(not(feature = "simulated-crash"))]
    pub fn is_simulated_crash(&self) -> bool {
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_is_classified() {
        let e = StoreError::io("write", "/x", io::Error::from_raw_os_error(28)); // ENOSPC
        assert!(matches!(e, StoreError::DiskFull { .. }));
        assert_eq!(e.reason(), "no-space");
        let e = StoreError::io("write", "/x", io::Error::from_raw_os_error(122)); // EDQUOT
        assert!(matches!(e, StoreError::DiskFull { .. }));
        let e = StoreError::io("write", "/x", io::Error::from_raw_os_error(5)); // EIO
        assert_eq!(e.reason(), "io");
        assert!(e.to_string().starts_with("write /x: "));
    }

    #[test]
    fn no_space_names_both_numbers() {
        let e = StoreError::NoSpace {
            path: "/cache".into(),
            needed: 10,
            available: 3,
        };
        assert_eq!(
            e.to_string(),
            "not enough space in /cache: 10 bytes needed, 3 available"
        );
        assert_eq!(e.reason(), "no-space");
    }
}
