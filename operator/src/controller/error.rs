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
    /// The finalizer's patch found the object changed since the watch
    /// cache saw it (its JSON patch tests the list it edits): a race with
    /// the watch, not a failure. Retried in a second, quietly, a few
    /// times (`context::retry_delay`).
    #[error("finalizer: the object changed since it was read ({0}); retrying")]
    Stale(String),
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
            Self::Stale(_) => "stale-object",
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
            // 422: the patch's `test` op failed; 409: a conflict.
            Error::AddFinalizer(kube::Error::Api(status))
            | Error::RemoveFinalizer(kube::Error::Api(status))
                if status.code == 422 || status.code == 409 =>
            {
                Self::Stale(status.message)
            }
            other => Self::Finalizer(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;
    use kube::runtime::finalizer::Error;

    use super::ControllerError;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(
            Status::failure("the server rejected our request", "Invalid")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn a_finalizer_patch_on_a_stale_object_is_a_race_not_a_failure() {
        for code in [422, 409] {
            let add = ControllerError::from(Error::<ControllerError>::AddFinalizer(api(code)));
            assert!(matches!(add, ControllerError::Stale(_)), "{add:?}");
            let remove =
                ControllerError::from(Error::<ControllerError>::RemoveFinalizer(api(code)));
            assert!(matches!(remove, ControllerError::Stale(_)), "{remove:?}");
        }
        for code in [403, 500] {
            let other = ControllerError::from(Error::<ControllerError>::AddFinalizer(api(code)));
            assert!(matches!(other, ControllerError::Finalizer(_)), "{other:?}");
        }
    }
}
