//! The image cache's pure half: what may be a name on disk, what a record
//! says about an image, what to download, keep and expire, and what to
//! prune. The `vmlisub` crate's `store` module executes these decisions on
//! disk (see its documentation for the layout).

pub mod error;
pub mod names;
pub mod plan;
pub mod record;
pub mod retention;

pub use error::StoreError;
pub use names::{
    ImageKey, ListKey, MAX_NAMESPACE_BYTES, MAX_SUBSCRIPTION_BYTES, NameError, Namespace,
    SubscriptionName, validate_dns_label, validate_dns_subdomain,
};
pub use plan::{
    CachedImage, Desired, Download, Inventory, Plan, SubscriptionState, WantedImage, plan,
};
pub use record::{ExpireReason, Expiry, ExpiryMarker, ImageRecord, ListInfo, RECORD_SCHEMA};
pub use retention::{ExpiredEntry, RetentionPolicy, plan_retention};
