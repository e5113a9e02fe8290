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
    /// An image's disk format, read from its header: `qcow2`, `raw`,
    /// `vmdk`, `vpc` (VHD), `vhdx`, `vdi`, `iso`, or `gzip`/`xz`/`zstd` for
    /// a compressed file (absent for a list).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub format: String,
    /// The size of the disk an image holds, in bytes, where its format's
    /// header defines it (qcow2, vmdk, vhd, vdi; raw and iso: the file
    /// size). The KubeVirt export sizes its DataVolumes from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<u64>,
}
