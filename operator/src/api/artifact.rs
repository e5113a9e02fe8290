//! Where vmlisub publishes what it verified: an image (ImageSubscription)
//! or a list's content (ImageListSubscription).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a verified artifact (an image, or a list's content) can be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Path on the cache volume.
    pub path: String,
    /// URL on the operator's artifact server (when configured).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// `sha512:<hex>`, as KubeVirt CDI's `checksum` field takes it.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was last verified (RFC 3339).
    pub last_update_time: String,
}
