//! Exports: where a verified image goes beyond the cache.
//!
//! `spec.export` of an ImageSubscription (and `spec.imageExport` of an
//! ImageListSubscription, copied onto the ImageSubscriptions AutoSubscribe
//! creates) names the targets; `status.export` reports each one, and one
//! `Exported` condition sums them up.
//!
//! * `kubevirt` ([`super::kubevirt`]): one KubeVirt CDI DataVolume per
//!   verified digest, imported from the artifact server with CDI's own
//!   sha512 check, and a DataSource that points at the newest imported one
//!   (docs/recipes/kubevirt.md).
//! * `glance`: one OpenStack Glance image per (list, image identifier,
//!   digest), found again by its `vmli_*` properties, older versions hidden,
//!   deactivated or deleted (docs/recipes/openstack.md).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::kubevirt::{KubeVirtExport, KubeVirtExportStatus, KubeVirtStorage, OnWithdraw};
use super::list_subscription::LocalObjectReference;

/// Where a verified image is exported to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageExport {
    /// Import every verified version into a KubeVirt CDI DataVolume and
    /// keep a DataSource pointing at the newest one (needs CDI's CRDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubevirt: Option<KubeVirtExport>,
    /// Publish the image to an OpenStack Glance image service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glance: Option<GlanceExport>,
}

/// What the exports report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportStatus {
    /// The KubeVirt export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubevirt: Option<KubeVirtExportStatus>,
    /// The Glance export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glance: Option<GlanceExportStatus>,
}

/// One Glance image per (list, image identifier, digest), found again by
/// its `vmli_list`, `vmli_identifier` and `vmli_sha512` properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlanceExport {
    /// The Glance endpoint, e.g. `https://glance.example.org:9292` (without
    /// `/v2`). Leave empty to look it up in the Keystone catalog of
    /// `authUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
    /// The Keystone v3 URL, e.g. `https://keystone.example.org:5000/v3`:
    /// needed for application credentials and for the catalog lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub auth_url: Option<String>,
    /// The catalog region of the image service (catalog lookup only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The catalog interface: `public` (default), `internal` or `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(public|internal|admin)$"))]
    pub interface: Option<String>,
    /// A Secret with `application_credential_id` and
    /// `application_credential_secret` (Keystone application credential),
    /// or `token` (a Keystone token, or any value for a Glance without
    /// Keystone). Read by the operator only when labelled
    /// `vmli.hepix.org/credentials: "true"`.
    pub credentials_secret_ref: LocalObjectReference,
    /// A Secret with `ca.crt`: CAs that sign the Glance and Keystone
    /// servers' certificates (added to the system roots; TLS is always
    /// verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<LocalObjectReference>,
    /// The image's Glance visibility: `private` (default), `shared`,
    /// `community` or `public` (public needs an admin role by default).
    #[serde(default)]
    pub visibility: GlanceVisibility,
    /// The Glance image name (default: the list's `dc:title`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Extra image properties (e.g. `hw_firmware_type: uefi`); they win
    /// over the properties mapped from the list, never over the `vmli_*`
    /// ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// How the data reaches Glance: `Auto` (default) uses Glance's
    /// `web-download` import from `status.artifact.url` when Glance
    /// offers it and the artifact has a URL, else uploads from the cache.
    #[serde(default)]
    pub method: GlanceImportMethod,
    /// What happens to the previous version's image when a new version is
    /// exported: `Hide` (default; `os_hidden`, still bootable by ID),
    /// `Deactivate` or `Delete`.
    #[serde(default)]
    pub on_new_version: GlanceRetirePolicy,
    /// What happens to the image when it expires or is withdrawn from the
    /// list: `Deactivate` (default; kept but unbootable) or `Delete`
    /// (`Hide` hides it only).
    #[serde(default = "deactivate")]
    pub on_expiry: GlanceRetirePolicy,
}

fn deactivate() -> GlanceRetirePolicy {
    GlanceRetirePolicy::Deactivate
}

/// Glance image visibility.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GlanceVisibility {
    #[default]
    Private,
    Shared,
    Community,
    Public,
}

impl GlanceVisibility {
    /// The value Glance takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Shared => "shared",
            Self::Community => "community",
            Self::Public => "public",
        }
    }
}

/// How image data reaches Glance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GlanceImportMethod {
    /// `WebDownload` when Glance offers it and the artifact has a URL,
    /// else `Upload`.
    #[default]
    Auto,
    /// Glance's interoperable import `web-download` from
    /// `status.artifact.url` (Glance fetches it; its import filtering must
    /// allow that host and port).
    WebDownload,
    /// `PUT /v2/images/{id}/file`, streamed from the cache.
    Upload,
}

/// What becomes of an image that is no longer the current version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GlanceRetirePolicy {
    /// Set `os_hidden: true`: out of image lists, still usable by ID.
    #[default]
    Hide,
    /// Deactivate: kept, but no instance can boot from it.
    Deactivate,
    /// Delete the image.
    Delete,
}

/// The Glance image of the current version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlanceExportStatus {
    /// The Glance image ID (absent until created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// `Exported`, `Importing`, `Retired` (expired or withdrawn, and
    /// deactivated, hidden or deleted) or `Failed`.
    pub state: GlanceExportState,
    /// The exported digest, `sha512:<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// How the data reached Glance: `web-download` or `upload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// What the last run did to older versions' images (e.g. `hid 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
    /// The last error, with its reason code (absent when the last run
    /// succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the export was last checked (RFC 3339).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_sync_time: String,
}

/// Where a Glance export stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GlanceExportState {
    /// Waiting for a verified image.
    #[default]
    Pending,
    /// Glance is importing the data.
    Importing,
    /// Active in Glance with the verified sha512.
    Exported,
    /// The image expired or was withdrawn; its Glance image was retired.
    Retired,
    /// The last attempt failed (see `lastError`).
    Failed,
}

/// The condition type that reports the exports of `spec.export`.
pub const EXPORTED_CONDITION: &str = super::conditions::types::EXPORTED;
