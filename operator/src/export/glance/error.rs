//! Why a Glance export step failed.

use thiserror::Error;

use crate::reason::Reason;
use crate::transfer::TransferError;

/// A Glance export failure, with its reason code.
#[derive(Debug, Error)]
pub enum GlanceError {
    /// `spec.export.glance` or its Secrets are incomplete or wrong.
    #[error("Glance export configuration: {detail}")]
    Config { detail: String },
    /// Keystone refused the credentials.
    #[error("Keystone authentication failed (HTTP {status}): {detail}")]
    Keystone { status: u16, detail: String },
    /// Glance answered an error.
    #[error("Glance {op} failed (HTTP {status}): {detail}")]
    Api {
        op: &'static str,
        status: u16,
        detail: String,
    },
    /// Glance answered something that is not what its API documents.
    #[error("Glance {op}: unexpected answer: {detail}")]
    Protocol { op: &'static str, detail: String },
    /// The connection to Keystone or Glance failed.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// Glance stored other bytes than the verified image.
    #[error("{detail}")]
    HashMismatch { detail: String },
    /// A `web-download` import did not finish in time, or failed.
    #[error("Glance import of image {id}: {detail}")]
    Import { id: String, detail: String },
    /// The cached file to upload cannot be read.
    #[error("cannot read the cached image {path}: {source}")]
    Cache {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Reason for GlanceError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Config { .. } => "glance-config",
            Self::Keystone { .. } => "keystone-auth-failed",
            Self::Api { .. } => "glance-api-error",
            Self::Protocol { .. } => "glance-protocol",
            Self::Transfer(err) => err.reason(),
            Self::HashMismatch { .. } => "glance-hash-mismatch",
            Self::Import { .. } => "glance-import-failed",
            Self::Cache { .. } => "cache-unreadable",
        }
    }
}
