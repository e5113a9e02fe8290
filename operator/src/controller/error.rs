//! Errors of the reconcilers. Each variant has a stable reason code (the
//! metric label and the Event reason); a failure of the list or image itself
//! is not an error here but a status condition.

use crate::reason::Reason;

/// Why a reconcile could not finish (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("object has no {0}")]
    MissingField(&'static str),
    #[error(transparent)]
    Core(#[from] crate::subscription::CoreError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A download failed (retried with backoff; the status says why).
    #[error("{0}")]
    Image(crate::subscription::Failure),
}

impl Reason for ControllerError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube-api",
            Self::Finalizer(_) => "finalizer",
            Self::MissingField(_) => "invalid-object",
            Self::Core(err) => err.reason(),
            Self::Store(err) => err.reason(),
            Self::Image(_) => "image-failed",
        }
    }
}

impl From<kube::runtime::finalizer::Error<ControllerError>> for ControllerError {
    fn from(err: kube::runtime::finalizer::Error<ControllerError>) -> Self {
        use kube::runtime::finalizer::Error;
        match err {
            Error::ApplyFailed(inner) | Error::CleanupFailed(inner) => inner,
            other => Self::Finalizer(other.to_string()),
        }
    }
}
