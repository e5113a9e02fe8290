//! `ImageListSubscription`: one signed image list, fetched on an interval,
//! verified, authorised against Endorsers and kept as the last good list.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::Condition;

/// A reference to an object in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectReference {
    /// The object's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Which images get an ImageSubscription automatically.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImagePolicy {
    /// Only images named by explicit ImageSubscriptions are cached.
    #[default]
    Manual,
    /// Every image (or every image matching `imageSelector`) gets an
    /// ImageSubscription owned by this object, removed when the image
    /// leaves the list.
    AutoSubscribe,
}

/// Selects images of a list by their metadata (all given fields must match).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSelector {
    /// `sl:os` values to accept (case-insensitive), e.g. `Linux`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os: Vec<String>,
    /// `sl:arch` values to accept (case-insensitive), e.g. `x86_64`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch: Vec<String>,
    /// A regular expression the image's `dc:title` must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub title_pattern: Option<String>,
}

/// Where the trust anchors for this list come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustSource {
    /// A ConfigMap whose values are CA certificate and CRL PEMs, added to
    /// the operator-wide CA directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectReference>,
    /// A Secret whose values are CA certificate and CRL PEMs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Use only the ConfigMap/Secret, not the operator-wide CA directory.
    #[serde(default)]
    pub exclusive: bool,
    /// What a missing or stale CRL means: `require` (default), `if-present`
    /// or `ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(require|if-present|ignore)$"))]
    pub crl_policy: Option<String>,
    /// Accept SHA-1 signatures (2011-era lists only).
    #[serde(default)]
    pub allow_sha1: bool,
}

/// A subscription to one signed image list.
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "vmli.hepix.org",
    version = "v1alpha1",
    kind = "ImageListSubscription",
    namespaced,
    status = "ImageListSubscriptionStatus",
    doc = "An ImageListSubscription: one signed HEPiX image list, fetched on an interval, verified (S/MIME signature, certificate path to the CA directory, CRLs), authorised against its Endorsers and kept as the last good list; its images are cached by ImageSubscriptions.",
    shortname = "ils",
    shortname = "imagelist",
    category = "vmli",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.list.version"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","jsonPath":".status.list.expires"}"#,
    printcolumn = r#"{"name":"Images","type":"integer","jsonPath":".status.imageCount"}"#,
    printcolumn = r#"{"name":"Suspended","type":"boolean","jsonPath":".spec.suspend","priority":1}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url","priority":1}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageListSubscriptionSpec {
    /// Where the signed list is published (https, http, or file when the
    /// operator allows it). Authoritative: a list's own `hv:uri` is reported,
    /// never followed.
    #[schemars(regex(pattern = r"^(https?|file)://.+"), length(max = 2048))]
    pub url: String,
    /// How often to check the list (Go duration, e.g. `6h`, jittered by up
    /// to 10%; at least `1m`).
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"), length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m')").message("interval must be at least 1m"))]
    pub interval: String,
    /// Deadline of one list fetch, redirects and body included (Go
    /// duration, `1s` to `1h`; default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"), length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('1h')").message("timeout must be between 1s and 1h"))]
    pub timeout: Option<String>,
    /// Stop fetching; the cached images stay as they are.
    #[serde(default)]
    pub suspend: bool,
    /// The Endorsers allowed to sign this list.
    #[serde(default)]
    pub endorsers: Vec<LocalObjectReference>,
    /// Trust the first validly signed list's signer and record it as an
    /// Endorser (trust on first use). Off by default; flagged in status.
    #[serde(default)]
    pub auto_endorse: bool,
    /// The list's `dc:identifier`; when absent it is pinned at first import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub identifier: Option<String>,
    /// Trust anchors beyond (or instead of) the operator-wide CA directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustSource>,
    /// A Secret with `username`/`password` (HTTP Basic; AppDB tokens use the
    /// token as username and `x-oauth-basic` as password) or `token` (bearer).
    /// Sent only to the origin (scheme, host, port) of `url`: never to
    /// images on other hosts or ports, never over plain http unless `url`
    /// is http.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// A Secret like `secretRef`'s (`username`/`password` or `token`) for
    /// image downloads from other hosts than the list's (mirrors that need
    /// their own credentials). Sent over https only; `secretRef`'s
    /// credentials never leave the list URL's origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_secret_ref: Option<LocalObjectReference>,
    /// A Secret with `ca.crt`: extra transport CAs for the list and image
    /// servers (TLS trust, separate from list trust).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// A Secret with `address` (proxy URL) and optional `noProxy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// `Manual` (explicit ImageSubscriptions only) or `AutoSubscribe`.
    #[serde(default)]
    pub image_policy: ImagePolicy,
    /// With `AutoSubscribe`: only images matching this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_selector: Option<ImageSelector>,
    /// Serve this list's cached images and the list itself from the
    /// operator's artifact server to anyone who can reach it, without a
    /// token. Off by default: then (with the operator's default
    /// `--artifact-auth token`) a client needs a Kubernetes ServiceAccount
    /// token allowed to `get` ImageSubscriptions in this namespace. Turn it
    /// on only for lists whose images are public anyway (e.g. for OpenStack
    /// Glance web-download, which cannot send a token).
    #[serde(default)]
    pub public_artifacts: bool,
    /// With `AutoSubscribe`: the `spec.export` of every ImageSubscription
    /// it creates (kept in line when this changes), so that subscribed
    /// images are exported too (e.g. to KubeVirt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_export: Option<super::export::ImageExport>,
    /// Event hooks (operator only): a Kubernetes Job from a template for
    /// each selected event of one of this list's images, with the
    /// original's `VMILS_EVENT_*` values in its environment; owned by this
    /// object. Needs the operator's `--hook-jobs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<super::hooks::Hooks>,
}

fn default_interval() -> String {
    "6h".to_string()
}

/// The signer of the current list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListSigner {
    /// The signer certificate's subject, one-line DN.
    pub subject: String,
    /// Its issuer (the CA), one-line DN.
    pub issuer: String,
    /// Its serial number (hex).
    pub serial: String,
    /// When it expires (RFC 3339): re-signing is due before.
    pub not_after: String,
}

/// The last good list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListStatus {
    /// The list's `dc:identifier`.
    pub identifier: String,
    /// The list's `dc:title`.
    pub title: String,
    /// The list's `hv:version`.
    pub version: String,
    /// When the publisher created this version (`dc:date:created`).
    pub created: String,
    /// When this version expires (`dc:date:expires`); its images are
    /// withdrawn then unless a newer version arrives.
    pub expires: String,
    /// The list's own `hv:uri` (informational).
    pub uri: String,
    /// The virtual organisation the list is for (`ad:vo`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vo: Option<String>,
    /// Who signed it.
    pub signer: ListSigner,
    /// `sha512:<hex>` of the signed bytes.
    pub digest: String,
    /// When this version was accepted.
    pub imported_at: String,
}

/// An image of the current list, as `vmlisub_image -l` showed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    /// The image's `dc:identifier`.
    pub identifier: String,
    /// Its `dc:title`.
    pub title: String,
    /// Its `hv:version`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Where it is published (`hv:uri`, without credentials).
    pub uri: String,
    /// Its size in bytes (`hv:size`), enforced during the download.
    pub size: u64,
    /// Its `sl:checksum:sha512` (hex), proven before it is served.
    pub sha512: String,
    /// `sl:os`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    /// `sl:osversion`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// `sl:arch`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// `hv:hypervisor`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hypervisor: String,
    /// `hv:format` (e.g. `qcow2`, `raw`, `ova`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub format: String,
    /// Per-image expiry (`dc:date:expires`), when the list gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// An image the list carried but vmlisub refused, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedImageReport {
    /// Its position in the list's `hv:images` (0-based).
    pub index: u64,
    /// Its `dc:identifier`, if it had one (escaped for display).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// A stable code, e.g. `missing-field`, `invalid-checksum`.
    pub reason: String,
    /// What exactly was wrong.
    pub message: String,
}

/// What the operator observed about a list subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageListSubscriptionStatus {
    /// `Ready`, `SignatureVerified`, `Endorsed`, `AutoEndorsed`, and
    /// `Reconciling` (retrying) or `Stalled` (only a fix can help); with
    /// `spec.hooks`, `HookJobs` (False with the reason a Job could not be
    /// created).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// The last good list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<ListStatus>,
    /// Where the last good list's content (the JSON its signature covers,
    /// with every image) is kept and served: `url` is the artifact server's
    /// `/lists/<namespace>/<name>.json`. The status carries counts, not the
    /// image table, so it stays small for lists of any size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<super::artifact::Artifact>,
    /// How many images the last good list endorses now (0 once withdrawn).
    #[serde(default)]
    pub image_count: i64,
    /// The first images of the list that were refused (at most 20; see
    /// `rejectedImageCount`).
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub rejected_images: Vec<RejectedImageReport>,
    /// How many images of the list were refused in all.
    #[serde(default)]
    pub rejected_image_count: i64,
    /// HTTP validators of the last fetch, for conditional GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` of the last accepted response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// When the list was last fetched (successfully or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetch_time: Option<String>,
    /// The event hooks' last Job and last failure (with `spec.hooks`).
    /// Written by the operator's hooks step under its own field manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<super::hooks::HookStatus>,
}
