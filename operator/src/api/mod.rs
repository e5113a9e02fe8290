//! The custom resources: `Endorser`, `ImageListSubscription` and
//! `ImageSubscription` (group `vmli.hepix.org`, version `v1alpha1`).
//!
//! The same types serve three readers: the CRDs are generated from them
//! (`vmlisub crds`), the operator reconciles them, and `vmlisub sync` reads
//! the very manifests a user would `kubectl apply` and writes the same
//! status types into its state file.

pub mod artifact;
pub mod conditions;
pub mod duration;
pub mod endorser;
pub mod export;
pub mod image_subscription;
pub mod list_subscription;
pub mod names;

pub use conditions::{Condition, ConditionStatus};

/// How many past images an ImageSubscription's `status.history` keeps
/// (both drivers).
pub const MAX_HISTORY: usize = 10;
/// The label that opts a Secret (or a trust ConfigMap) in to being read by
/// the operator: `vmli.hepix.org/credentials: "true"`. Without it the
/// operator refuses to read the object, so that whoever may create an
/// ImageListSubscription cannot make the operator send a Secret they may
/// not read (a ServiceAccount token, say) to a server of theirs.
pub const CREDENTIALS_LABEL: &str = "vmli.hepix.org/credentials";
/// Marks what vmlisub creates for a list (AutoSubscribe's
/// ImageSubscriptions, autoEndorse's Endorser); the value is the list's name.
pub const LIST_LABEL: &str = "vmli.hepix.org/list";
pub use endorser::{Endorser, EndorserCredential, EndorserSpec, EndorserStatus};
pub use image_subscription::{
    Artifact, DownloadProgress, ExpiredRecord, ImagePhase, ImageSubscription,
    ImageSubscriptionSpec, ImageSubscriptionStatus,
};
pub use list_subscription::{
    ImageListSubscription, ImageListSubscriptionSpec, ImageListSubscriptionStatus, ImagePolicy,
    ImageSelector, ImageSummary, ListSigner, ListStatus, LocalObjectReference, RejectedImageReport,
    TrustSource,
};

/// The API group of every vmlisub resource.
pub const GROUP: &str = "vmli.hepix.org";
/// The API version of every vmlisub resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "vmli.hepix.org/v1alpha1";
