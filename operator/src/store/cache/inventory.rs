//! Reading the endorsed area: records, images for serving, the inventory
//! of verified images, and the integrity re-check.

use super::{CacheStore, ENDORSED_DIR, IMAGE_FILE, MARKER_FILE, RECORD_FILE, read_record};
use crate::imagelist::{ImageId, Sha512Hex};
use crate::store::error::StoreError;
use crate::store::fsops::{DirHandle, Kind, fstat, sha512_reader};
use crate::store::names::{ImageKey, ListKey};
use crate::store::plan::{CachedImage, Inventory};
use crate::store::record::{ExpireReason, ImageRecord};
use crate::store::retention::ExpiredEntry;
use jiff::Timestamp;
use std::fs::File;

/// Result of [`CacheStore::recheck`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// The file still hashes to its record.
    Intact {
        /// The digest.
        sha512: Sha512Hex,
        /// The size.
        size: u64,
    },
    /// The file is bad and was moved to `expired/`; a plan computed from a
    /// fresh inventory downloads it again.
    Corrupt {
        /// [`ExpireReason::ChecksumMismatch`], [`ExpireReason::SizeMismatch`]
        /// or [`ExpireReason::Missing`].
        reason: ExpireReason,
        /// Expected and found values.
        detail: String,
        /// Where it went.
        expired: ExpiredEntry,
    },
}

impl CacheStore {
    /// The record of the endorsed image `key`.
    pub fn record(&self, key: &ImageKey) -> Result<ImageRecord, StoreError> {
        let (_, entry) = self.endorsed_entry(key)?;
        read_record(&entry)?.ok_or_else(|| StoreError::NotFound {
            what: "metadata record",
            path: entry.join(RECORD_FILE),
        })
    }

    /// Opens the endorsed image `key` for serving, with its record, after
    /// checking that the record is valid for it and the length matches.
    /// Never follows a symlink.
    pub fn open_image(&self, key: &ImageKey) -> Result<(File, ImageRecord), StoreError> {
        let (_, entry) = self.endorsed_entry(key)?;
        let record = read_record(&entry)?.ok_or_else(|| StoreError::NotFound {
            what: "metadata record",
            path: entry.join(RECORD_FILE),
        })?;
        record.check_endorsable(key, &entry.join(RECORD_FILE))?;
        let path = entry.join(IMAGE_FILE);
        let file = entry
            .open_read(IMAGE_FILE)?
            .ok_or_else(|| StoreError::NotFound {
                what: "cached image",
                path: path.clone(),
            })?;
        let len = fstat(&file, &path)?.len;
        if len != record.size {
            return Err(StoreError::SizeMismatch {
                path,
                expected: record.size,
                actual: len,
            });
        }
        Ok((file, record))
    }

    /// The verified images in the endorsed area. Entries that are not
    /// complete and verified are skipped here ([`recover`](Self::recover)
    /// reports and moves them).
    pub fn inventory(&self) -> Result<Inventory, StoreError> {
        let mut inventory = Inventory::new();
        for (key, _, entry) in self.walk_entries(ENDORSED_DIR, &mut Vec::new())? {
            let Some(entry) = entry else { continue };
            if let Some(cached) = verified_entry(key, &entry) {
                inventory.insert(cached);
            }
        }
        Ok(inventory)
    }

    /// [`inventory`](Self::inventory) of one subscription: reads only its
    /// directory (a list reconcile must not walk the whole cache).
    pub fn inventory_of(&self, subscription: &ListKey) -> Result<Inventory, StoreError> {
        let mut inventory = Inventory::new();
        let area = self.area(ENDORSED_DIR)?;
        let Some(namespace) = area.open_dir(subscription.namespace.as_str())? else {
            return Ok(inventory);
        };
        let Some(sub) = namespace.open_dir(subscription.name.as_str())? else {
            return Ok(inventory);
        };
        for item in sub.list()? {
            let Some(name) = item.name.as_deref() else {
                continue;
            };
            let Ok(image) = ImageId::new(name) else {
                continue;
            };
            if item.kind != Kind::Dir {
                continue;
            }
            if let Some(entry) = sub.open_dir(name)?
                && let Some(cached) = verified_entry(subscription.image(image), &entry)
            {
                inventory.insert(cached);
            }
        }
        Ok(inventory)
    }

    /// `key`'s entry if it is complete and verified (what
    /// [`inventory`](Self::inventory) would list for it), without walking
    /// the cache.
    pub fn cached(&self, key: &ImageKey) -> Option<CachedImage> {
        let (_, entry) = self.endorsed_entry(key).ok()?;
        verified_entry(key.clone(), &entry)
    }

    // ----- integrity --------------------------------------------------------

    /// Re-hashes the endorsed image `key` (streaming, bounded memory) and
    /// compares it with its record. A corrupt or missing file is moved to
    /// `expired/` with the reason, so the next plan downloads it again.
    pub fn recheck(&self, key: &ImageKey) -> Result<Integrity, StoreError> {
        self.recheck_at(key, Timestamp::now())
    }

    /// [`recheck`](Self::recheck) with an explicit time for the expiry
    /// record.
    pub fn recheck_at(&self, key: &ImageKey, now: Timestamp) -> Result<Integrity, StoreError> {
        let (_, entry) = self.endorsed_entry(key)?;
        let record = read_record(&entry)?.ok_or_else(|| StoreError::NotFound {
            what: "metadata record",
            path: entry.join(RECORD_FILE),
        })?;
        let path = entry.join(IMAGE_FILE);
        let verdict = match entry.open_read(IMAGE_FILE)? {
            None => Some((
                ExpireReason::Missing,
                format!("{} is missing", path.display()),
            )),
            Some(file) => {
                let len = fstat(&file, &path)?.len;
                if len != record.size {
                    Some((
                        ExpireReason::SizeMismatch,
                        format!("size is {len} bytes, record says {}", record.size),
                    ))
                } else {
                    let (digest, hashed) =
                        sha512_reader(file).map_err(|e| StoreError::io("read", &path, e))?;
                    if hashed != record.size {
                        Some((
                            ExpireReason::SizeMismatch,
                            format!("read {hashed} bytes, record says {}", record.size),
                        ))
                    } else if digest != record.sha512 {
                        Some((
                            ExpireReason::ChecksumMismatch,
                            format!("sha512 is {digest}, record says {}", record.sha512),
                        ))
                    } else {
                        None
                    }
                }
            }
        };
        drop(entry);
        match verdict {
            None => Ok(Integrity::Intact {
                sha512: record.sha512,
                size: record.size,
            }),
            Some((reason, detail)) => {
                let expired = self.expire_with_detail(key, reason, Some(detail.clone()), now)?;
                Ok(Integrity::Corrupt {
                    reason,
                    detail,
                    expired,
                })
            }
        }
    }
}

/// A complete, verified endorsed entry: its record is valid for `key`, it
/// carries no in-progress marker, and the image has the recorded length.
fn verified_entry(key: ImageKey, entry: &DirHandle) -> Option<CachedImage> {
    let record = read_record(entry).ok()??;
    record
        .check_endorsable(&key, &entry.join(RECORD_FILE))
        .ok()?;
    if !matches!(entry.stat(MARKER_FILE), Ok(None)) {
        return None;
    }
    match entry.stat(IMAGE_FILE) {
        Ok(Some(st)) if st.kind == Kind::File && st.len == record.size => {}
        _ => return None,
    }
    Some(CachedImage {
        key,
        sha512: record.sha512,
        size: record.size,
        verified_at: record.verified_at?,
    })
}
