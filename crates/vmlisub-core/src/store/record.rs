//! The metadata record kept with every cached image, and expiry reasons.
//!
//! The original kept a `cache.index` with the image's list metadata. Here
//! each image directory holds its own `record.json`, written atomically
//! before the directory becomes visible in the endorsed area, so an image
//! and its record appear and disappear together. The record is the proof
//! that the bytes were verified: it names the digest and size that were
//! checked, when, and against which signed list (by the digest of the signed
//! bytes), so that status, events and the artifact server can say exactly
//! what they serve.

use super::error::StoreError;
use super::names::ImageKey;
use crate::imagelist::{Image, ImageList, ListId, Sha512Hex};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::path::Path;

/// Current record format version; bump on incompatible changes.
pub const RECORD_SCHEMA: u32 = 1;

/// Why an image left the endorsed area.
///
/// The codes (kebab-case, also the serde form) are part of the contract:
/// they end up in expired records, status and events. Never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ExpireReason {
    /// The image is no longer in the subscription's list.
    RemovedFromList,
    /// The image is still listed but no longer selected for caching.
    Unsubscribed,
    /// The list now gives another sha512 for this identifier.
    ChecksumChanged,
    /// The list now gives another size for this identifier (same sha512).
    SizeChanged,
    /// The list that endorsed the image has expired (`dc:date:expires`).
    ListExpired,
    /// The image's own `dc:date:expires` has passed.
    ImageExpired,
    /// The list's signer no longer verifies (expired, CRL stale, ...).
    SignerInvalid,
    /// A CRL revokes the list's signer or a CA on its path.
    SignerRevoked,
    /// The endorser that authorised the list was removed.
    EndorserRemoved,
    /// The subscription was deleted.
    SubscriptionGone,
    /// The wanted set named the same image twice with different content;
    /// nothing ambiguous is kept.
    Ambiguous,
    /// Re-hashing found another sha512 than the record.
    ChecksumMismatch,
    /// The file's length differs from the record.
    SizeMismatch,
    /// The record exists but the image file is gone.
    Missing,
    /// The record says the image was never verified.
    Unverified,
    /// An image file without a (valid) metadata record.
    Orphan,
}

impl ExpireReason {
    /// Every reason, for exhaustive tests and documentation.
    pub const ALL: [ExpireReason; 16] = [
        Self::RemovedFromList,
        Self::Unsubscribed,
        Self::ChecksumChanged,
        Self::SizeChanged,
        Self::ListExpired,
        Self::ImageExpired,
        Self::SignerInvalid,
        Self::SignerRevoked,
        Self::EndorserRemoved,
        Self::SubscriptionGone,
        Self::Ambiguous,
        Self::ChecksumMismatch,
        Self::SizeMismatch,
        Self::Missing,
        Self::Unverified,
        Self::Orphan,
    ];

    /// The kebab-case code.
    pub fn code(self) -> &'static str {
        match self {
            Self::RemovedFromList => "removed-from-list",
            Self::Unsubscribed => "unsubscribed",
            Self::ChecksumChanged => "checksum-changed",
            Self::SizeChanged => "size-changed",
            Self::ListExpired => "list-expired",
            Self::ImageExpired => "image-expired",
            Self::SignerInvalid => "signer-invalid",
            Self::SignerRevoked => "signer-revoked",
            Self::EndorserRemoved => "endorser-removed",
            Self::SubscriptionGone => "subscription-gone",
            Self::Ambiguous => "ambiguous",
            Self::ChecksumMismatch => "checksum-mismatch",
            Self::SizeMismatch => "size-mismatch",
            Self::Missing => "missing",
            Self::Unverified => "unverified",
            Self::Orphan => "orphan",
        }
    }

    /// Whether the reason means the cached bytes themselves are bad (as
    /// opposed to no longer endorsed); such images are downloaded again when
    /// still wanted.
    pub fn is_corruption(self) -> bool {
        matches!(
            self,
            Self::ChecksumMismatch | Self::SizeMismatch | Self::Missing
        )
    }
}

impl fmt::Display for ExpireReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// When and why an image expired; added to its record when it leaves the
/// endorsed area.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiry {
    /// Why.
    pub reason: ExpireReason,
    /// When (the caller's clock).
    pub at: Timestamp,
    /// Free-text detail, e.g. the digests of a checksum mismatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The signed list that endorsed an image when it was verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInfo {
    /// The list's `dc:identifier`.
    pub identifier: ListId,
    /// The list's `hv:version`.
    pub version: String,
    /// SHA-512 of the signed list bytes, so the exact list can be named.
    pub digest: Sha512Hex,
    /// The list's `dc:date:expires`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// The list's `ad:vo` (EGI AppDB virtual organisation), for hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vo: Option<String>,
}

/// The metadata record of one cached image (`record.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// [`RECORD_SCHEMA`] at the time of writing.
    pub schema: u32,
    /// The cache key; must equal the entry's location.
    pub key: ImageKey,
    /// The image as listed (original key names, unknown keys included),
    /// what the original's `cache.index` and event variables carried.
    pub image: Value,
    /// The list that endorsed it.
    pub list: ListInfo,
    /// The verified SHA-512 of the cached file.
    pub sha512: Sha512Hex,
    /// The verified size of the cached file, in bytes.
    pub size: u64,
    /// When the digest and size were proven; `None` means never, and such an
    /// entry is moved out of the endorsed area on recovery.
    pub verified_at: Option<Timestamp>,
    /// Set when the image left the endorsed area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<Expiry>,
}

impl ImageRecord {
    /// Builds the record of `image` from `list`, verified at `verified_at`.
    ///
    /// `list_digest` is the SHA-512 of the signed list bytes. Fails when the
    /// image's identifier is not the key's (a record must never describe
    /// another image than the one it sits with).
    pub fn new(
        key: ImageKey,
        image: &Image,
        list: &ImageList,
        list_digest: Sha512Hex,
        verified_at: Timestamp,
    ) -> Result<Self, StoreError> {
        if image.identifier != key.image {
            return Err(StoreError::RecordInvalid {
                path: key.to_string().into(),
                detail: format!(
                    "record for image {} built from image {}",
                    key.image, image.identifier
                ),
            });
        }
        let value = serde_json::to_value(image).map_err(|e| StoreError::RecordInvalid {
            path: key.to_string().into(),
            detail: format!("cannot serialize image: {e}"),
        })?;
        Ok(Self {
            schema: RECORD_SCHEMA,
            key,
            image: value,
            list: ListInfo {
                identifier: list.identifier.clone(),
                version: list.version.clone(),
                digest: list_digest,
                expires: Some(list.expires),
                vo: list.vo.clone(),
            },
            sha512: image.sha512.clone(),
            size: image.size,
            verified_at: Some(verified_at),
            expired: None,
        })
    }

    /// Checks that the record may be stored for `key` as an endorsed image:
    /// same key, verified, not expired, and the listed checksum and size (if
    /// the image JSON carries them) equal the record's. Pure.
    pub fn check_endorsable(&self, key: &ImageKey, path: &Path) -> Result<(), StoreError> {
        let bad = |detail: String| StoreError::RecordInvalid {
            path: path.to_path_buf(),
            detail,
        };
        if self.schema != RECORD_SCHEMA {
            return Err(bad(format!("unsupported schema {}", self.schema)));
        }
        if self.key != *key {
            return Err(bad(format!("record is for {}, not {key}", self.key)));
        }
        if self.verified_at.is_none() {
            return Err(bad("record says the image was never verified".into()));
        }
        if let Some(expiry) = &self.expired {
            return Err(bad(format!(
                "record says the image expired ({})",
                expiry.reason
            )));
        }
        if let Some(listed) = self.image.get("sl:checksum:sha512").and_then(Value::as_str)
            && !self.sha512.matches(listed)
        {
            return Err(bad(
                "record sha512 differs from the listed sl:checksum:sha512".into(),
            ));
        }
        if let Some(listed) = self.image.get("hv:size").and_then(Value::as_u64)
            && listed != self.size
        {
            return Err(bad(format!(
                "record size {} differs from the listed hv:size {listed}",
                self.size
            )));
        }
        Ok(())
    }

    /// Serializes the record (pretty, for humans reading the cache).
    pub fn to_json(&self, path: &Path) -> Result<Vec<u8>, StoreError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| StoreError::RecordInvalid {
            path: path.to_path_buf(),
            detail: format!("cannot serialize: {e}"),
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parses a record read from disk.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::RecordInvalid {
            path: path.to_path_buf(),
            detail: format!("cannot parse: {e}"),
        })
    }
}

/// What the store writes (`expiry.json`) into an expired entry that had no
/// valid record (an orphan image, a corrupt record), so that every expired
/// entry says when and why it expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryMarker {
    /// The entry's key.
    pub key: ImageKey,
    /// When and why.
    pub expired: Expiry,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub mod tests {
    use super::*;

    pub fn sha(byte: u8) -> Sha512Hex {
        Sha512Hex::from_digest(&[byte; 64])
    }

    pub fn record_for(key: &ImageKey, sha512: Sha512Hex, size: u64) -> ImageRecord {
        ImageRecord {
            schema: RECORD_SCHEMA,
            key: key.clone(),
            image: serde_json::json!({
                "dc:identifier": key.image.as_str(),
                "dc:title": "test image",
                "hv:uri": "https://example.org/img",
                "hv:size": size,
                "sl:checksum:sha512": sha512.as_str(),
            }),
            list: ListInfo {
                identifier: ListId::new("list-1").unwrap(),
                version: "1".into(),
                digest: sha(0xaa),
                expires: None,
                vo: None,
            },
            sha512,
            size,
            verified_at: Some(Timestamp::from_second(1_700_000_000).unwrap()),
            expired: None,
        }
    }

    #[test]
    fn codes_are_kebab_case_and_match_serde() {
        for reason in ExpireReason::ALL {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.code()));
            assert_eq!(serde_json::from_str::<ExpireReason>(&json).unwrap(), reason);
            assert!(
                reason
                    .code()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-')
            );
        }
        assert!(ExpireReason::ChecksumMismatch.is_corruption());
        assert!(!ExpireReason::ListExpired.is_corruption());
    }

    #[test]
    fn record_round_trips_with_camel_case_fields() {
        let key = ImageKey::parse("ns", "sub", "img").unwrap();
        let mut rec = record_for(&key, sha(1), 42);
        rec.expired = Some(Expiry {
            reason: ExpireReason::ListExpired,
            at: Timestamp::from_second(1_800_000_000).unwrap(),
            detail: None,
        });
        let json = rec.to_json(Path::new("r")).unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(
            text.contains("\"verifiedAt\": \"2023-11-14T22:13:20Z\""),
            "{text}"
        );
        assert!(text.contains("\"reason\": \"list-expired\""), "{text}");
        assert_eq!(ImageRecord::from_json(&json, Path::new("r")).unwrap(), rec);
    }

    #[test]
    fn endorsable_checks() {
        let key = ImageKey::parse("ns", "sub", "img").unwrap();
        let other = ImageKey::parse("ns", "sub2", "img").unwrap();
        let p = Path::new("x");
        let good = record_for(&key, sha(1), 42);
        good.check_endorsable(&key, p).unwrap();
        assert!(good.check_endorsable(&other, p).is_err());

        let mut r = good.clone();
        r.verified_at = None;
        assert!(r.check_endorsable(&key, p).is_err());

        let mut r = good.clone();
        r.sha512 = sha(2);
        assert!(r.check_endorsable(&key, p).is_err());

        let mut r = good.clone();
        r.size = 43;
        assert!(r.check_endorsable(&key, p).is_err());

        let mut r = good.clone();
        r.schema = 99;
        assert!(r.check_endorsable(&key, p).is_err());

        let mut r = good;
        r.expired = Some(Expiry {
            reason: ExpireReason::Orphan,
            at: Timestamp::UNIX_EPOCH,
            detail: None,
        });
        assert!(r.check_endorsable(&key, p).is_err());
    }

    #[test]
    fn new_refuses_another_image() {
        let list_json = r#"{"hv:imagelist": {
            "dc:identifier": "list-1", "dc:title": "t", "dc:description": "d",
            "dc:source": "s", "dc:date:created": "2024-01-01T00:00:00Z",
            "dc:date:expires": "2034-01-01T00:00:00Z", "hv:version": "3",
            "hv:uri": "https://example.org/list",
            "hv:endorser": {"hv:x509": {"hv:dn": "/CN=a", "hv:ca": "/CN=b"}},
            "hv:images": [{"hv:image": {
                "dc:identifier": "img", "dc:title": "t", "dc:description": "d",
                "hv:uri": "https://example.org/img", "hv:size": "42",
                "sl:checksum:sha512": "CHECKSUM",
                "sl:arch": "x86_64", "sl:os": "Linux", "sl:osversion": "9",
                "sl:comments": "", "hv:hypervisor": "KVM", "hv:version": "1"}}]}}"#;
        let list_json = list_json.replace("CHECKSUM", &"A".repeat(128));
        let parsed = crate::imagelist::parse(list_json.as_bytes()).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let list = parsed.list;
        let image = &list.images[0];
        let key = ImageKey::parse("ns", "sub", "img").unwrap();
        let rec =
            ImageRecord::new(key.clone(), image, &list, sha(9), Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(rec.size, 42);
        assert_eq!(rec.list.version, "3");
        assert_eq!(rec.image["hv:size"], 42);
        rec.check_endorsable(&key, Path::new("x")).unwrap();
        let wrong = ImageKey::parse("ns", "sub", "other").unwrap();
        assert!(ImageRecord::new(wrong, image, &list, sha(9), Timestamp::UNIX_EPOCH).is_err());
    }
}
