//! The typed image list.
//!
//! Every key named by the format is a typed field; everything else is kept
//! verbatim in an `extra` map, because unknown keys are part of the signed
//! document and must reach consumers (event hooks, status, the CLI)
//! unchanged. Values are normalised where the format is loose: sizes become
//! integers even when the publisher wrote decimal strings, checksums become
//! lower case, timestamps are re-emitted in the one accepted shape.
//!
//! Serialization uses the original key names. An [`Image`] serializes flat
//! (what `--format json` prints per image); an [`ImageList`] serializes as the
//! body of a list document with its images wrapped in `{"hv:image": ...}`, and
//! [`ImageList::to_document`] adds the `{"hv:imagelist": ...}` wrapper, so a
//! serialized list parses back to an equal value.
//!
//! `extra` must not contain keys that are modelled as fields (the parser
//! guarantees it; code that builds values by hand must keep to it), otherwise
//! the serialized object would repeat a key.

use super::checksum::Sha512Hex;
use super::identifier::{ImageId, ListId};
use super::timestamp;
use jiff::Timestamp;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// A parsed, validated image list (the content of `hv:imagelist`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageList {
    /// `dc:identifier`: constant for the life of a subscription.
    #[serde(rename = "dc:identifier")]
    pub identifier: ListId,
    /// `dc:title`.
    #[serde(rename = "dc:title")]
    pub title: String,
    /// `dc:description`.
    #[serde(rename = "dc:description")]
    pub description: String,
    /// `dc:source`: where the publisher lives.
    #[serde(rename = "dc:source")]
    pub source: String,
    /// `dc:date:created`.
    #[serde(rename = "dc:date:created", serialize_with = "timestamp::serialize")]
    pub created: Timestamp,
    /// `dc:date:expires`: the first instant at which the list is invalid.
    #[serde(rename = "dc:date:expires", serialize_with = "timestamp::serialize")]
    pub expires: Timestamp,
    /// `hv:version`: publisher version, compared with
    /// [`compare_versions`](super::compare_versions).
    #[serde(rename = "hv:version")]
    pub version: String,
    /// `hv:uri`: where the publisher says new versions appear. Informational
    /// only: the subscription URL is authoritative.
    #[serde(rename = "hv:uri")]
    pub uri: String,
    /// `hv:endorser`.
    #[serde(rename = "hv:endorser")]
    pub endorser: Endorser,
    /// `ad:vo`: EGI AppDB virtual organisation.
    #[serde(rename = "ad:vo", skip_serializing_if = "Option::is_none")]
    pub vo: Option<String>,
    /// `ad:swid`: EGI AppDB software id.
    #[serde(rename = "ad:swid", skip_serializing_if = "Option::is_none")]
    pub swid: Option<String>,
    /// `hv:images`: the images that passed validation, in list order.
    /// Rejected images are reported in [`Parsed::rejected`](super::Parsed).
    #[serde(rename = "hv:images", serialize_with = "serialize_wrapped_images")]
    pub images: Vec<Image>,
    /// Unknown list-level keys, in document order.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `hv:endorser`: who claims to have signed the list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Endorser {
    /// `hv:x509`.
    #[serde(rename = "hv:x509")]
    pub x509: X509Endorser,
    /// Unknown keys of the endorser object.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `hv:endorser.hv:x509`: the signer's certificate names and contact.
///
/// Only `hv:dn` and `hv:ca` take part in trust decisions (they must equal
/// the verified signer's subject and issuer), so only they are required;
/// missing contact details do not cost a list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct X509Endorser {
    /// `hv:dn`: the signer's subject, one-line form.
    #[serde(rename = "hv:dn")]
    pub dn: String,
    /// `hv:ca`: the signer's issuer, one-line form.
    #[serde(rename = "hv:ca")]
    pub ca: String,
    /// `hv:email`.
    #[serde(rename = "hv:email", skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `dc:creator`.
    #[serde(rename = "dc:creator", skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// Unknown keys of the `hv:x509` object.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One image of a list (the content of `hv:image`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Image {
    /// `dc:identifier`: validated to be safe as a file name.
    #[serde(rename = "dc:identifier")]
    pub identifier: ImageId,
    /// `dc:title`.
    #[serde(rename = "dc:title")]
    pub title: String,
    /// `dc:description`.
    #[serde(rename = "dc:description")]
    pub description: String,
    /// `hv:uri`: where the image is downloaded from (never empty).
    #[serde(rename = "hv:uri")]
    pub uri: String,
    /// `hv:size` in bytes (integer or decimal string in the source).
    #[serde(rename = "hv:size")]
    pub size: u64,
    /// `sl:checksum:sha512`, lower case.
    #[serde(rename = "sl:checksum:sha512")]
    pub sha512: Sha512Hex,
    /// `sl:arch`.
    #[serde(rename = "sl:arch")]
    pub arch: String,
    /// `sl:os`.
    #[serde(rename = "sl:os")]
    pub os: String,
    /// `sl:osversion`.
    #[serde(rename = "sl:osversion")]
    pub osversion: String,
    /// `sl:comments`.
    #[serde(rename = "sl:comments")]
    pub comments: String,
    /// `hv:hypervisor`.
    #[serde(rename = "hv:hypervisor")]
    pub hypervisor: String,
    /// `hv:version`: the image's own version (not compared).
    #[serde(rename = "hv:version")]
    pub version: String,
    /// `hv:format`: `OVA`, `QCOW2`, `raw`, ...
    #[serde(rename = "hv:format", skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `hv:ram_minimum` (integer or decimal string in the source).
    #[serde(rename = "hv:ram_minimum", skip_serializing_if = "Option::is_none")]
    pub ram_minimum: Option<u64>,
    /// `hv:core_minimum` (integer or decimal string in the source).
    #[serde(rename = "hv:core_minimum", skip_serializing_if = "Option::is_none")]
    pub core_minimum: Option<u64>,
    /// `sl:osname`.
    #[serde(rename = "sl:osname", skip_serializing_if = "Option::is_none")]
    pub osname: Option<String>,
    /// Per-image `dc:date:expires`.
    #[serde(
        rename = "dc:date:expires",
        serialize_with = "timestamp::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<Timestamp>,
    /// `ad:mpuri`: AppDB marketplace URI.
    #[serde(rename = "ad:mpuri", skip_serializing_if = "Option::is_none")]
    pub mpuri: Option<String>,
    /// `ad:base_mpuri`.
    #[serde(rename = "ad:base_mpuri", skip_serializing_if = "Option::is_none")]
    pub base_mpuri: Option<String>,
    /// `ad:appid`.
    #[serde(rename = "ad:appid", skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// `ad:group`.
    #[serde(rename = "ad:group", skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `ad:ram_recommended` (integer or decimal string in the source).
    #[serde(rename = "ad:ram_recommended", skip_serializing_if = "Option::is_none")]
    pub ram_recommended: Option<u64>,
    /// `ad:core_recommended` (integer or decimal string in the source).
    #[serde(
        rename = "ad:core_recommended",
        skip_serializing_if = "Option::is_none"
    )]
    pub core_recommended: Option<u64>,
    /// `ad:user:fullname`.
    #[serde(rename = "ad:user:fullname", skip_serializing_if = "Option::is_none")]
    pub user_fullname: Option<String>,
    /// `ad:user:guid`.
    #[serde(rename = "ad:user:guid", skip_serializing_if = "Option::is_none")]
    pub user_guid: Option<String>,
    /// `ad:user:uri`.
    #[serde(rename = "ad:user:uri", skip_serializing_if = "Option::is_none")]
    pub user_uri: Option<String>,
    /// Unknown image keys, in document order.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Image {
    /// Whether `other_hex` is this image's sha512 (case-insensitive).
    pub fn sha512_matches(&self, other_hex: &str) -> bool {
        self.sha512.matches(other_hex)
    }

    /// Whether the image's own `dc:date:expires` (if any) has been reached.
    /// The list's expiry applies on top of this; see
    /// [`decision::is_list_expired`](crate::decision::is_list_expired).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }
}

impl ImageList {
    /// The images that passed validation, in list order.
    pub fn images(&self) -> &[Image] {
        &self.images
    }

    /// The image with this identifier (identifiers are unique in a parsed
    /// list; duplicates are rejected).
    pub fn image(&self, identifier: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.identifier == identifier)
    }

    /// The images whose sha512 equals `hex` (case-insensitive). Several
    /// images may share a checksum.
    pub fn images_by_sha512<'a>(&'a self, hex: &'a str) -> impl Iterator<Item = &'a Image> + 'a {
        self.images.iter().filter(move |i| i.sha512_matches(hex))
    }

    /// The list wrapped as a complete document, `{"hv:imagelist": {...}}`.
    pub fn to_document(&self) -> ListDocument<'_> {
        ListDocument(self)
    }
}

/// A list serialized with its `hv:imagelist` wrapper (see
/// [`ImageList::to_document`]).
#[derive(Clone, Copy, Debug)]
pub struct ListDocument<'a>(pub &'a ImageList);

impl Serialize for ListDocument<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("hv:imagelist", self.0)?;
        map.end()
    }
}

/// `{"hv:image": image}`.
struct WrappedImage<'a>(&'a Image);

impl Serialize for WrappedImage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("hv:image", self.0)?;
        map.end()
    }
}

fn serialize_wrapped_images<S: Serializer>(images: &[Image], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(images.len()))?;
    for image in images {
        seq.serialize_element(&WrappedImage(image))?;
    }
    seq.end()
}
