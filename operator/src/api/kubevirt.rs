//! The KubeVirt (CDI) export's configuration and status
//! (`spec.export.kubevirt`, `status.export.kubevirt`); the decisions are in
//! [`crate::export::kubevirt`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happens to the export when the image is withdrawn or expires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OnWithdraw {
    /// Clear the DataSource's source (new VMs cannot use it), keep the
    /// DataVolumes and their PVCs.
    #[default]
    Unpublish,
    /// Delete the DataSource and every DataVolume (and so their PVCs).
    Delete,
}

/// The KubeVirt (CDI) export of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeVirtExport {
    /// The DataSource (cdi.kubevirt.io/v1beta1) to keep pointing at the
    /// newest imported version, in the ImageSubscription's namespace;
    /// default: the ImageSubscription's name. VMs use it with
    /// `sourceRef: {kind: DataSource, name: ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub data_source: Option<String>,
    /// The storage of each DataVolume (CDI `spec.storage`).
    #[serde(default)]
    pub storage: KubeVirtStorage,
    /// How many imported versions to keep, the current one included
    /// (default 2: the current and the previous one); older DataVolumes
    /// are deleted once a newer one is imported and published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20))]
    pub imports_to_keep: Option<u32>,
    /// When the image is withdrawn or expires: `Unpublish` (default: clear
    /// the DataSource's source, keep the DataVolumes) or `Delete` (delete
    /// the DataSource and the DataVolumes).
    #[serde(default)]
    pub on_withdraw: OnWithdraw,
    /// Secrets (in this namespace) each holding one extra HTTP header line
    /// for CDI's importer (`secretExtraHeaders`): with the operator's
    /// default `--artifact-auth token`, a Secret whose value is
    /// `Authorization: Bearer <ServiceAccount token>` allowed to `get`
    /// ImageSubscriptions here. Not needed for a list with
    /// `publicArtifacts: true` or with `--artifact-auth none`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 253)))]
    pub secret_extra_headers: Vec<String>,
    /// A ConfigMap (in this namespace) with the CA that signed the artifact
    /// server's certificate, when its base URL is https with a private CA
    /// (CDI's `certConfigMap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub cert_config_map: Option<String>,
}

/// The storage of each exported DataVolume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeVirtStorage {
    /// The StorageClass; default: CDI's (the cluster default, or CDI's
    /// StorageProfile choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
    /// Access modes, e.g. `ReadWriteMany` for live migration; default: the
    /// StorageProfile's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 4),
        inner(regex(pattern = r"^(ReadWriteOnce|ReadOnlyMany|ReadWriteMany|ReadWriteOncePod)$"))
    )]
    pub access_modes: Vec<String>,
    /// The size to request (a Kubernetes quantity, e.g. `20Gi`); default:
    /// the image's virtual size (`status.artifact.virtualSize`) rounded up
    /// to a whole MiB. CDI adds its filesystem overhead on top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    pub size: Option<String>,
}

/// Where the KubeVirt export stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeVirtExportStatus {
    /// `Pending` (nothing to import yet), `Importing`, `Published` (the
    /// DataSource serves the current version), `Failed` (CDI reports the
    /// import failed), `Unpublished` or `Deleted` (withdrawn), or
    /// `Unavailable` (CDI is not installed, or the export cannot start).
    pub phase: String,
    /// The DataSource's name.
    pub data_source: String,
    /// The DataVolume the DataSource points at.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_volume: String,
    /// The PVC the DataSource points at.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pvc: String,
    /// The published version's digest, `sha512:<hex>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// The DataVolume being imported, when it is not the published one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub importing: String,
}
