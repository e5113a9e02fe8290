//! `ImageSubscription`: one image to keep cached, selected by identifier or
//! by sha512 from its list subscription's current verified list.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::artifact::Artifact;
use super::conditions::Condition;
use super::export::{ExportStatus, ImageExport};
use super::list_subscription::{ImageSummary, LocalObjectReference};

/// An image to cache.
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("has(self.identifier) != has(self.sha512)").message("exactly one of identifier and sha512 must be set"))]
#[kube(
    group = "vmli.hepix.org",
    version = "v1alpha1",
    kind = "ImageSubscription",
    namespaced,
    status = "ImageSubscriptionStatus",
    doc = "An ImageSubscription: one image of a list to keep cached, selected by identifier or sha512 in the list's current verified version; downloaded, proven (size and sha512), served and expired with its list.",
    shortname = "imgsub",
    category = "vmli",
    printcolumn = r#"{"name":"Subscription","type":"string","jsonPath":".spec.subscriptionRef.name"}"#,
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".status.image.title"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".status.artifact.size"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Suspended","type":"boolean","jsonPath":".spec.suspend","priority":1}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageSubscriptionSpec {
    /// The ImageListSubscription whose list endorses the image.
    pub subscription_ref: LocalObjectReference,
    /// The image's `dc:identifier` (exactly one of identifier and sha512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_:@+][A-Za-z0-9._:@+-]{0,127}$"))]
    pub identifier: Option<String>,
    /// The image's `sl:checksum:sha512` (128 hex digits), to follow an image
    /// by content rather than by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{128}$"))]
    pub sha512: Option<String>,
    /// Stop downloading and re-checking; the cached file stays.
    #[serde(default)]
    pub suspend: bool,
    /// How often to re-hash the cached file (Go duration, default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub integrity_interval: Option<String>,
    /// Where to export the verified image beyond the cache (KubeVirt CDI,
    /// OpenStack Glance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ImageExport>,
}

/// The lifecycle of a cached image, for people.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImagePhase {
    #[default]
    Pending,
    Downloading,
    Available,
    Expired,
    Failed,
}

/// Download progress, updated at a throttled rate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadProgress {
    /// Bytes received so far.
    pub bytes: u64,
    /// The image's size (`hv:size`).
    pub total: u64,
    /// Whole percent, 0-100.
    pub percent: u8,
}

/// An earlier version of the image that was expired, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiredRecord {
    /// The expired file's digest, `sha512:<hex>`.
    pub sha512: String,
    /// Why it expired: a stable code, e.g. `removed-from-list`,
    /// `checksum-changed`, `signer-revoked` (docs/reason-codes.md).
    pub reason: String,
    /// When it expired (RFC 3339).
    pub expired_at: String,
    /// Its entry in the expired archive (`expired/<ns>/<list>/<entry>`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub archived_path: String,
}

/// What the operator observed about an image subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSubscriptionStatus {
    /// Pending, Downloading, Available, Expired or Failed.
    #[serde(default)]
    pub phase: ImagePhase,
    /// `Ready` (summarised), `Available`, and `Reconciling` while a
    /// download runs or is retried.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The image as its list describes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSummary>,
    /// Where the verified image can be read (absent unless Available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// Progress of the running download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<DownloadProgress>,
    /// When the cached file was last re-hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_integrity_check: Option<String>,
    /// Expired versions, newest first (bounded).
    #[serde(default)]
    pub history: Vec<ExpiredRecord>,
    /// The last handled `reconcile.fluxcd.io/requestedAt` value: annotate
    /// the object with a new value to reconcile it now (and re-check the
    /// cached file), then wait for this field to show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Where each export of `spec.export` stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportStatus>,
}
