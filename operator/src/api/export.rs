//! Exports: where a verified image goes beyond the cache.
//!
//! `spec.export` of an ImageSubscription (and `spec.imageExport` of an
//! ImageListSubscription, copied onto the ImageSubscriptions AutoSubscribe
//! creates) names the targets; `status.export` reports each one.
//!
//! * `kubevirt` ([`super::kubevirt`]): one KubeVirt CDI DataVolume per
//!   verified digest, imported from the artifact server with CDI's own
//!   sha512 check, and a DataSource that points at the newest imported one
//!   (docs/recipes/kubevirt.md).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::kubevirt::{KubeVirtExport, KubeVirtExportStatus, KubeVirtStorage, OnWithdraw};

/// Where a verified image is exported to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageExport {
    /// Import every verified version into a KubeVirt CDI DataVolume and
    /// keep a DataSource pointing at the newest one (needs CDI's CRDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubevirt: Option<KubeVirtExport>,
}

/// What the exports report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportStatus {
    /// The KubeVirt export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubevirt: Option<KubeVirtExportStatus>,
}
