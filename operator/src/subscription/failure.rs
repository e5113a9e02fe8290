//! One failure type for both drivers: a stable reason code, a message, and
//! who can cure it.
//!
//! The class decides what a driver does (retry with backoff, set Stalled,
//! or withdraw the list's images) and the concern which condition the
//! failure falsifies (`SignatureVerified`, `Endorsed`); both come from the
//! error types themselves ([`Classify`]), never from matching reason
//! strings.

use std::borrow::Cow;
use std::fmt;

use crate::decision::Rejection;
use crate::reason::{Reason, camel_case};
use crate::store::{ExpireReason, StoreError};
use crate::transfer::TransferError;
use crate::trust::VerifyError;

/// Who can cure a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Time may: the network, the publisher, the disk. Retried with backoff.
    Transient,
    /// Only a change of the spec (or of what it names) cures it: the
    /// drivers set Stalled and do not retry until the spec changes.
    SpecError,
    /// The list no longer stands: its images are withdrawn for this reason.
    Withdraw(ExpireReason),
}

/// Which condition of a list a failure falsifies, besides Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern {
    /// The signature or the signer's certificate path.
    Signature,
    /// The signer's authorisation (Endorsers, `hv:dn`/`hv:ca`).
    Endorsement,
    /// Neither (fetching, content rules, the cache, ...).
    Other,
}

/// A failure of one list or image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kebab-case reason code (`digest-mismatch`, `fetch-failed`, ...).
    pub reason: Cow<'static, str>,
    pub message: String,
    pub class: FailureClass,
    pub concern: Concern,
}

/// Errors that know their class and concern.
pub trait Classify: Reason + fmt::Display {
    fn class(&self) -> FailureClass {
        FailureClass::Transient
    }

    fn concern(&self) -> Concern {
        Concern::Other
    }
}

impl Classify for TransferError {
    fn class(&self) -> FailureClass {
        match self {
            Self::InvalidUrl { .. } | Self::SchemeRefused { .. } | Self::Config { .. } => {
                FailureClass::SpecError
            }
            _ => FailureClass::Transient,
        }
    }
}

impl Classify for VerifyError {
    fn concern(&self) -> Concern {
        Concern::Signature
    }
}

impl Classify for Rejection {
    fn class(&self) -> FailureClass {
        match self {
            Self::IdentifierMismatch { .. } => FailureClass::SpecError,
            _ => FailureClass::Transient,
        }
    }

    fn concern(&self) -> Concern {
        match self {
            Self::SignerDnMismatch { .. } | Self::EndorserNotAuthorised { .. } => {
                Concern::Endorsement
            }
            _ => Concern::Other,
        }
    }
}

impl Classify for crate::imagelist::ListError {}
impl Classify for StoreError {}
/// A ConfigMap or Secret fix cures it, not a spec change: retried.
impl Classify for crate::trust::store::BundleError {}

impl Failure {
    /// The failure an error stands for.
    pub fn of(error: &impl Classify) -> Self {
        Self {
            reason: Cow::Borrowed(error.reason()),
            message: error.to_string(),
            class: error.class(),
            concern: error.concern(),
        }
    }

    /// A transient failure with its own code.
    pub fn transient(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason: Cow::Borrowed(reason),
            message: message.into(),
            class: FailureClass::Transient,
            concern: Concern::Other,
        }
    }

    /// A failure only a spec change cures.
    pub fn spec(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            class: FailureClass::SpecError,
            ..Self::transient(reason, message)
        }
    }

    /// A failure that falsifies the endorsement.
    pub fn endorsement(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            concern: Concern::Endorsement,
            ..Self::transient(reason, message)
        }
    }

    /// The same failure, now also withdrawing the list's images.
    pub fn withdrawing(self, reason: ExpireReason) -> Self {
        Self {
            class: FailureClass::Withdraw(reason),
            ..self
        }
    }

    /// A list withdrawn for `reason`, with that reason as the code.
    pub fn withdrawn(reason: ExpireReason, message: impl Into<String>) -> Self {
        Self::transient(reason.code(), message).withdrawing(reason)
    }

    /// The reason in the CamelCase form of conditions and Events.
    pub fn condition_reason(&self) -> String {
        camel_case(&self.reason)
    }

    /// The withdrawal reason, if the failure withdraws the list's images.
    pub fn withdraws(&self) -> Option<ExpireReason> {
        match self.class {
            FailureClass::Withdraw(reason) => Some(reason),
            _ => None,
        }
    }

    pub fn is_spec_error(&self) -> bool {
        self.class == FailureClass::SpecError
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_come_from_the_error_types() {
        let refused = TransferError::SchemeRefused {
            url: "ftp://x".into(),
            scheme: "ftp".into(),
            hint: "",
        };
        assert_eq!(Failure::of(&refused).class, FailureClass::SpecError);
        let verify = VerifyError::SignatureInvalid;
        let failure = Failure::of(&verify);
        assert_eq!(failure.concern, Concern::Signature);
        assert_eq!(failure.class, FailureClass::Transient);
        assert_eq!(failure.condition_reason(), "SignatureInvalid");
        let withdrawn = failure.withdrawing(ExpireReason::SignerRevoked);
        assert_eq!(withdrawn.withdraws(), Some(ExpireReason::SignerRevoked));
        assert_eq!(
            withdrawn.to_string(),
            format!("signature-invalid: {verify}")
        );
    }
}
