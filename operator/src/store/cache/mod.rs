//! The imperative shell: [`CacheStore`] executes decisions on disk.
//!
//! Layout under the cache root (see the module documentation of
//! [`store`](super) for the reasons):
//!
//! ```text
//! <root>/                                   0755
//!   partial/                                0700  downloads in progress
//!     <ns>/<sub>/<image-id>                       the file the downloader appends to
//!     <ns>/<sub>/.promote-<image-id>/             a promotion being assembled
//!   endorsed/                               0755  verified images only
//!     <ns>/<sub>/<image-id>/image           0644  the image
//!     <ns>/<sub>/<image-id>/record.json     0644  its metadata record
//!   expired/                                0700  archive
//!     <ns>/<sub>/<YYYYMMDDTHHMMSSZ>[.<n>]-<image-id>/{image, record.json | expiry.json}
//! ```
//!
//! An endorsed entry is a directory holding the image and its record, and it
//! only ever appears or disappears by one `rename` of that directory: it is
//! assembled (record written atomically, verified file moved in) in a
//! staging directory under `partial/`, then renamed into `endorsed/`;
//! expiry renames it into `expired/`. So a crash at any point leaves either
//! the old state or the new one, and the endorsed area never holds an image
//! without its record or a byte that was not verified.
//!
//! The code is filed by job, each file adding an `impl CacheStore` block:
//! this file holds the store itself (opening, paths, walking the areas,
//! the shared record reader) and the layout constants; `partial.rs` the
//! downloads in progress and the space checks, `promote.rs` promotion into
//! `endorsed/`, `inventory.rs` reading the endorsed area and re-checking
//! its integrity, `expire.rs` expiry into `expired/` and the retention of
//! the archive, `recover.rs` start-up recovery.

mod expire;
mod inventory;
mod partial;
mod promote;
mod recover;

pub use expire::{RetentionReport, expired_name_stamp};
pub use inventory::Integrity;
pub use partial::{SpaceCheck, bytes_still_needed, compare_space};
pub use recover::{PartialFile, Quarantined, Recovery, Unexpected};

use super::error::StoreError;
use super::fsops::{DirHandle, Kind};
use super::names::{ImageKey, Namespace, SubscriptionName};
use super::record::ImageRecord;
use crate::imagelist::ImageId;
use std::path::{Path, PathBuf};

/// Area holding downloads in progress.
pub const PARTIAL_DIR: &str = "partial";
/// Area holding verified images.
pub const ENDORSED_DIR: &str = "endorsed";
/// Area holding the archive of expired images.
pub const EXPIRED_DIR: &str = "expired";
/// File name of the image inside an entry directory.
pub const IMAGE_FILE: &str = "image";
/// File name of the metadata record inside an entry directory.
pub const RECORD_FILE: &str = "record.json";
/// File name of the expiry marker of an entry without a valid record.
pub const MARKER_FILE: &str = "expiry.json";
/// Prefix of staging directories (a leading dot: no validated name has one).
const STAGING_PREFIX: &str = ".promote-";
/// Suffix of the downloader's resume sidecar, `.<id>.meta` (see
/// `transfer::sidecar_path`).
const SIDECAR_SUFFIX: &str = ".meta";
/// Records are small; anything bigger is not one of ours.
const MAX_RECORD_BYTES: u64 = 1 << 20;

const ROOT_MODE: u32 = 0o755;
/// Unverified bytes are nobody else's business.
const PARTIAL_MODE: u32 = 0o700;
/// Endorsed images are served, possibly by another process of the same
/// deployment: readable, not writable.
const ENDORSED_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o644;
const EXPIRED_MODE: u32 = 0o700;

/// Points between the steps of an operation where tests inject a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    StagingCreated,
    RecordWritten,
    ImageStaged,
    Committed,
    ExpiryMarked,
}

/// The image cache on disk.
///
/// Layout under the cache root (see the [`store`](super) module for the reasons):
///
/// ```text
/// <root>/                                   0755
///   partial/                                0700  downloads in progress
///     <ns>/<sub>/<image-id>                       the file the downloader appends to
///     <ns>/<sub>/.promote-<image-id>/             a promotion being assembled
///   endorsed/                               0755  verified images only
///     <ns>/<sub>/<image-id>/image           0644  the image
///     <ns>/<sub>/<image-id>/record.json     0644  its metadata record
///   expired/                                0700  archive
///     <ns>/<sub>/<YYYYMMDDTHHMMSSZ>[.<n>]-<image-id>/{image, record.json | expiry.json}
/// ```
///
/// An endorsed entry is a directory holding the image and its record, and it
/// only ever appears or disappears by one `rename` of that directory: it is
/// assembled (record written atomically, verified file moved in) in a
/// staging directory under `partial/`, then renamed into `endorsed/`;
/// expiry renames it into `expired/`. So a crash at any point leaves either
/// the old state or the new one, and the endorsed area never holds an image
/// without its record or a byte that was not verified.
///
/// One process owns a cache at a time (the operator elects one active
/// reconciler); the store does no locking of its own.
#[derive(Debug)]
pub struct CacheStore {
    root: DirHandle,
    min_free_bytes: u64,
    #[cfg(test)]
    crash_at: std::sync::Mutex<Option<Step>>,
}

impl CacheStore {
    /// Opens the cache at `root`, creating the root and its three areas if
    /// needed. Call [`recover`](Self::recover) once before using it.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = DirHandle::open_root(root.as_ref(), ROOT_MODE)?;
        root.ensure_dir(PARTIAL_DIR, PARTIAL_MODE)?;
        root.ensure_dir(ENDORSED_DIR, ENDORSED_MODE)?;
        root.ensure_dir(EXPIRED_DIR, EXPIRED_MODE)?;
        Ok(Self {
            root,
            min_free_bytes: 0,
            #[cfg(test)]
            crash_at: std::sync::Mutex::new(None),
        })
    }

    /// Keeps at least `bytes` free: [`check_space`](Self::check_space) adds
    /// them to every requirement.
    pub fn with_min_free_bytes(mut self, bytes: u64) -> Self {
        self.min_free_bytes = bytes;
        self
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    // ----- paths (pure) ---------------------------------------------------

    fn sub_path(&self, area: &str, key: &ImageKey) -> PathBuf {
        self.root
            .path()
            .join(area)
            .join(key.namespace.as_str())
            .join(key.subscription.as_str())
    }

    /// The directory of an endorsed entry.
    pub fn entry_path(&self, key: &ImageKey) -> PathBuf {
        self.sub_path(ENDORSED_DIR, key).join(key.image.as_str())
    }

    /// The endorsed image file of `key` (what the artifact server serves).
    pub fn image_path(&self, key: &ImageKey) -> PathBuf {
        self.entry_path(key).join(IMAGE_FILE)
    }

    /// The metadata record of `key`.
    pub fn record_path(&self, key: &ImageKey) -> PathBuf {
        self.entry_path(key).join(RECORD_FILE)
    }

    // ----- directory walking ----------------------------------------------

    fn area(&self, area: &str) -> Result<DirHandle, StoreError> {
        self.root.require_dir(area, "cache area")
    }

    /// `<area>/<ns>/<sub>`, created with `mode` if `create`.
    fn sub_dir(
        &self,
        area: &str,
        key: &ImageKey,
        create: Option<u32>,
    ) -> Result<Option<DirHandle>, StoreError> {
        let area = self.area(area)?;
        let (ns, sub) = (key.namespace.as_str(), key.subscription.as_str());
        match create {
            Some(mode) => Ok(Some(area.ensure_dir(ns, mode)?.ensure_dir(sub, mode)?)),
            None => match area.open_dir(ns)? {
                Some(ns) => ns.open_dir(sub),
                None => Ok(None),
            },
        }
    }

    fn endorsed_entry(&self, key: &ImageKey) -> Result<(DirHandle, DirHandle), StoreError> {
        let not_found = || StoreError::NotFound {
            what: "cached image",
            path: self.entry_path(key),
        };
        let sub = self
            .sub_dir(ENDORSED_DIR, key, None)?
            .ok_or_else(not_found)?;
        let entry = sub.open_dir(key.image.as_str())?.ok_or_else(not_found)?;
        Ok((sub, entry))
    }

    /// Walks `<area>/<ns>/<sub>/<name>`, returning every name that parses
    /// as an image identifier with its parent and its directory handle (if
    /// it is a directory). Everything else is pushed to `unexpected`.
    #[allow(clippy::type_complexity)]
    fn walk_entries(
        &self,
        area: &str,
        unexpected: &mut Vec<Unexpected>,
    ) -> Result<Vec<(ImageKey, std::rc::Rc<DirHandle>, Option<DirHandle>)>, StoreError> {
        let mut out = Vec::new();
        for (ns, sub, sub_dir) in self.walk_subscriptions(area, unexpected)? {
            let sub_dir = std::rc::Rc::new(sub_dir);
            for item in sub_dir.list()? {
                let Some(name) = item.name.as_deref() else {
                    unexpected.push(unexpected_item(&sub_dir, &item, "name is not UTF-8"));
                    continue;
                };
                let Ok(image) = ImageId::new(name) else {
                    if !(area == PARTIAL_DIR && name.starts_with(STAGING_PREFIX)) {
                        unexpected.push(unexpected_item(
                            &sub_dir,
                            &item,
                            "not a valid image identifier",
                        ));
                    }
                    continue;
                };
                let key = ImageKey::new(ns.clone(), sub.clone(), image);
                let dir = if item.kind == Kind::Dir {
                    sub_dir.open_dir(name)?
                } else {
                    None
                };
                out.push((key, std::rc::Rc::clone(&sub_dir), dir));
            }
        }
        Ok(out)
    }

    /// Walks `<area>/<ns>/<sub>/`, validating both names; anything else is
    /// reported, never followed.
    fn walk_subscriptions(
        &self,
        area: &str,
        unexpected: &mut Vec<Unexpected>,
    ) -> Result<Vec<(Namespace, SubscriptionName, DirHandle)>, StoreError> {
        let area_dir = self.area(area)?;
        let mut out = Vec::new();
        for ns_item in area_dir.list()? {
            let ns = match (&ns_item.name, ns_item.kind) {
                (Some(name), Kind::Dir) => match Namespace::new(name) {
                    Ok(ns) => ns,
                    Err(e) => {
                        unexpected.push(unexpected_item(
                            &area_dir,
                            &ns_item,
                            &format!("not a namespace: {e}"),
                        ));
                        continue;
                    }
                },
                _ => {
                    unexpected.push(unexpected_item(
                        &area_dir,
                        &ns_item,
                        "expected a namespace directory",
                    ));
                    continue;
                }
            };
            let Some(ns_dir) = area_dir.open_dir(ns.as_str())? else {
                continue;
            };
            for sub_item in ns_dir.list()? {
                let sub = match (&sub_item.name, sub_item.kind) {
                    (Some(name), Kind::Dir) => match SubscriptionName::new(name) {
                        Ok(sub) => sub,
                        Err(e) => {
                            unexpected.push(unexpected_item(
                                &ns_dir,
                                &sub_item,
                                &format!("not a subscription name: {e}"),
                            ));
                            continue;
                        }
                    },
                    _ => {
                        unexpected.push(unexpected_item(
                            &ns_dir,
                            &sub_item,
                            "expected a subscription directory",
                        ));
                        continue;
                    }
                };
                if let Some(sub_dir) = ns_dir.open_dir(sub.as_str())? {
                    out.push((ns.clone(), sub, sub_dir));
                }
            }
        }
        Ok(out)
    }

    // ----- crash injection (tests) ----------------------------------------

    #[cfg(test)]
    fn crash_point(&self, step: Step) -> Result<(), StoreError> {
        let armed = self.crash_at.lock().map(|guard| *guard).unwrap_or(None);
        if armed == Some(step) {
            return Err(StoreError::SimulatedCrash);
        }
        Ok(())
    }

    #[cfg(not(test))]
    #[inline(always)]
    fn crash_point(&self, _step: Step) -> Result<(), StoreError> {
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn set_crash_at(&self, step: Option<Step>) {
        if let Ok(mut guard) = self.crash_at.lock() {
            *guard = step;
        }
    }
}

/// Reads and parses `record.json` of an entry: `Ok(None)` when absent.
fn read_record(entry: &DirHandle) -> Result<Option<ImageRecord>, StoreError> {
    match entry.read_small(RECORD_FILE, MAX_RECORD_BYTES)? {
        None => Ok(None),
        Some(bytes) => ImageRecord::from_json(&bytes, &entry.join(RECORD_FILE)).map(Some),
    }
}

fn unexpected_item(dir: &DirHandle, item: &super::fsops::Listed, detail: &str) -> Unexpected {
    Unexpected {
        path: dir.join(&item.display),
        found: item.kind.describe(),
        detail: detail.to_owned(),
    }
}
