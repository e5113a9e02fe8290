//! Why a signed message was not trusted.

use thiserror::Error;

use crate::reason::Reason;

/// Every way verification can fail, each with its own stable reason code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the message is not S/MIME, PEM or DER PKCS#7: {0}")]
    MalformedSmime(String),
    #[error("the CMS structure cannot be read: {0}")]
    MalformedCms(String),
    #[error("the message has {0} signers; exactly one is required")]
    MultipleSigners(usize),
    #[error("{0}")]
    UnsupportedAlgorithm(String),
    #[error("{0} is a legacy algorithm; allow it explicitly (--allow-sha1) to verify old lists")]
    LegacyAlgorithm(String),
    #[error("the content does not match the signed message digest ({algorithm})")]
    DigestMismatch { algorithm: &'static str },
    #[error("the signature does not verify with the signer's public key")]
    SignatureInvalid,
    #[error("no chain from signer {subject} to a trusted CA: {detail}")]
    UntrustedSigner { subject: String, detail: String },
    #[error("certificate {subject} expired at {not_after}")]
    CertificateExpired { subject: String, not_after: String },
    #[error("certificate {subject} is not valid before {not_before}")]
    CertificateNotYetValid { subject: String, not_before: String },
    #[error("certificate {subject} (serial {serial}) is revoked by {issuer}")]
    CertificateRevoked {
        subject: String,
        serial: String,
        issuer: String,
    },
    #[error("no usable CRL of {issuer} in the trust store (CRL policy: require): {detail}")]
    CrlMissing { issuer: String, detail: String },
    #[error("the CRL of {issuer} is not current at the verification time: {detail}")]
    CrlStale { issuer: String, detail: String },
    #[error("the CRL of {issuer} cannot be trusted: {detail}")]
    CrlInvalid { issuer: String, detail: String },
    #[error("CA {issuer} may not vouch for {subject}: {detail}")]
    NamespaceViolation {
        issuer: String,
        subject: String,
        detail: String,
    },
    #[error("certificate {subject} may not sign messages: {detail}")]
    KeyUsage { subject: String, detail: String },
    #[error("certificate chain is invalid: {0}")]
    CertificateInvalid(String),
}

impl Reason for VerifyError {
    fn reason(&self) -> &'static str {
        match self {
            Self::MalformedSmime(_) => "malformed-smime",
            Self::MalformedCms(_) => "malformed-cms",
            Self::MultipleSigners(_) => "multiple-signers",
            Self::UnsupportedAlgorithm(_) => "unsupported-algorithm",
            Self::LegacyAlgorithm(_) => "legacy-algorithm",
            Self::DigestMismatch { .. } => "digest-mismatch",
            Self::SignatureInvalid => "signature-invalid",
            Self::UntrustedSigner { .. } => "untrusted-signer",
            Self::CertificateExpired { .. } => "certificate-expired",
            Self::CertificateNotYetValid { .. } => "certificate-not-yet-valid",
            Self::CertificateRevoked { .. } => "certificate-revoked",
            Self::CrlMissing { .. } => "crl-missing",
            Self::CrlStale { .. } => "crl-stale",
            Self::CrlInvalid { .. } => "crl-invalid",
            Self::NamespaceViolation { .. } => "namespace-violation",
            Self::KeyUsage { .. } => "key-usage",
            Self::CertificateInvalid(_) => "certificate-invalid",
        }
    }
}
