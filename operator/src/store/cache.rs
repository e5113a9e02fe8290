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

use super::error::StoreError;
use super::fsops::{DirHandle, Kind, fstat, sha512_reader, temp_name};
use super::names::{ImageKey, Namespace, SubscriptionKey, SubscriptionName, validate_component};
use super::plan::{CachedImage, Inventory};
use super::record::{ExpireReason, Expiry, ExpiryMarker, ImageRecord};
use super::retention::{ExpiredEntry, RetentionPolicy, plan_retention};
use crate::imagelist::{ImageId, Sha512Hex};
use jiff::Timestamp;
use std::fs::File;
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

/// A download in progress found by [`CacheStore::recover`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialFile {
    /// Its key.
    pub key: ImageKey,
    /// Its path.
    pub path: PathBuf,
    /// Bytes already downloaded (to resume from, or to discard).
    pub len: u64,
}

/// An entry moved out of the endorsed area by [`CacheStore::recover`]
/// because it could not be proven verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// Why ([`ExpireReason::Unverified`], [`ExpireReason::Orphan`],
    /// [`ExpireReason::SizeMismatch`]).
    pub reason: ExpireReason,
    /// What exactly was wrong.
    pub detail: String,
    /// Where it went.
    pub entry: ExpiredEntry,
}

/// Something in the cache that the store did not create; reported and left
/// alone (never followed, never deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unexpected {
    /// Where.
    pub path: PathBuf,
    /// What it is (`symbolic link`, `directory`, ...).
    pub found: &'static str,
    /// Why it is unexpected.
    pub detail: String,
}

/// What [`CacheStore::recover`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Downloads in progress: resume them or
    /// [`discard_partial`](CacheStore::discard_partial) them.
    pub partials: Vec<PartialFile>,
    /// Promotions interrupted before their final rename; their files went
    /// back to `partial/` (and are listed in `partials`).
    pub rolled_back: Vec<ImageKey>,
    /// Expiries interrupted after marking; now completed.
    pub completed_expiries: Vec<ExpiredEntry>,
    /// Endorsed entries that could not be proven verified, moved to
    /// `expired/` (an image without a valid record, a record that says
    /// "never verified", a size that disagrees with the record).
    pub quarantined: Vec<Quarantined>,
    /// Records whose image file is missing; left in place (they are not
    /// served and hold no image bytes). Expire them with
    /// [`ExpireReason::Missing`] to archive them.
    pub orphan_records: Vec<ImageKey>,
    /// Leftovers that held nothing (temporary files of interrupted atomic
    /// writes, empty entry directories), removed.
    pub removed: Vec<PathBuf>,
    /// Things the store did not create: left alone.
    pub unexpected: Vec<Unexpected>,
    /// Number of intact, verified entries.
    pub endorsed: usize,
}

impl Recovery {
    /// Whether recovery found nothing to report beyond intact entries and
    /// downloads in progress.
    pub fn is_clean(&self) -> bool {
        self.rolled_back.is_empty()
            && self.completed_expiries.is_empty()
            && self.quarantined.is_empty()
            && self.orphan_records.is_empty()
            && self.removed.is_empty()
            && self.unexpected.is_empty()
    }
}

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

/// Free space measured by [`CacheStore::check_space`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceCheck {
    /// Bytes needed (still to write plus the reserve).
    pub needed: u64,
    /// Bytes available.
    pub available: u64,
}

/// Result of [`CacheStore::apply_retention`].
#[derive(Debug, Default)]
pub struct RetentionReport {
    /// Entries deleted.
    pub deleted: Vec<ExpiredEntry>,
    /// Bytes of image files deleted (what [`ExpiredEntry::bytes`] and the
    /// `max_bytes` limit count; records are not included).
    pub freed_bytes: u64,
    /// Entries that could not be deleted, and why (the rest went on).
    pub failed: Vec<(ExpiredEntry, StoreError)>,
}

/// Bytes a download still has to write: the image size minus what the
/// partial file already holds, plus the reserve. Pure.
pub fn bytes_still_needed(image_size: u64, partial_len: u64, reserve: u64) -> u64 {
    image_size
        .saturating_sub(partial_len)
        .saturating_add(reserve)
}

/// Compares a need with the measured availability. Pure.
pub fn compare_space(root: &Path, needed: u64, available: u64) -> Result<SpaceCheck, StoreError> {
    if needed > available {
        return Err(StoreError::NoSpace {
            path: root.to_path_buf(),
            needed,
            available,
        });
    }
    Ok(SpaceCheck { needed, available })
}

/// Formats a timestamp for an expired entry name (`YYYYMMDDTHHMMSSZ`:
/// sortable, no `:`). Pure.
pub fn expired_name_stamp(at: Timestamp) -> String {
    let dt = jiff::tz::Offset::UTC.to_datetime(at);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year().max(0),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
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

    /// Where the downloader writes `key` (`partial/<ns>/<sub>/<id>`). Pure:
    /// call [`prepare_partial`](Self::prepare_partial) or, better,
    /// [`open_partial`](Self::open_partial) first, which create the parent
    /// directories and refuse a planted symlink.
    pub fn partial_path(&self, key: &ImageKey) -> PathBuf {
        self.sub_path(PARTIAL_DIR, key).join(key.image.as_str())
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

    // ----- partial downloads ----------------------------------------------

    /// Creates `partial/<ns>/<sub>/` and returns the partial path of `key`,
    /// refusing if a symlink or a non-file sits at that path.
    pub fn prepare_partial(&self, key: &ImageKey) -> Result<PathBuf, StoreError> {
        let dir = self.sub_dir(PARTIAL_DIR, key, Some(PARTIAL_MODE))?;
        let dir = dir.ok_or_else(|| StoreError::NotFound {
            what: "partial directory",
            path: self.sub_path(PARTIAL_DIR, key),
        })?;
        let id = key.image.as_str();
        match dir.stat(id)? {
            None => {}
            Some(st) if st.kind == Kind::File => {}
            Some(st) if st.kind == Kind::Symlink => {
                return Err(StoreError::SymlinkRefused { path: dir.join(id) });
            }
            Some(st) => {
                return Err(StoreError::UnexpectedFileType {
                    path: dir.join(id),
                    expected: Kind::File.describe(),
                    found: st.kind.describe(),
                });
            }
        }
        Ok(dir.join(id))
    }

    /// Opens (creating if needed, never truncating, never following a
    /// symlink) the partial file of `key` for reading and writing, and
    /// returns it with its current length. The file position is 0: a
    /// resuming downloader hashes the existing bytes and continues at the
    /// returned length.
    pub fn open_partial(&self, key: &ImageKey) -> Result<(File, u64), StoreError> {
        let path = self.prepare_partial(key)?;
        let dir = self
            .sub_dir(PARTIAL_DIR, key, None)?
            .ok_or_else(|| StoreError::NotFound {
                what: "partial directory",
                path: self.sub_path(PARTIAL_DIR, key),
            })?;
        let file = dir.open_or_create(key.image.as_str())?;
        let len = fstat(&file, &path)?.len;
        Ok((file, len))
    }

    /// Length of the partial file of `key`, if there is one.
    pub fn partial_len(&self, key: &ImageKey) -> Result<Option<u64>, StoreError> {
        let Some(dir) = self.sub_dir(PARTIAL_DIR, key, None)? else {
            return Ok(None);
        };
        match dir.stat(key.image.as_str())? {
            Some(st) if st.kind == Kind::File => Ok(Some(st.len)),
            Some(st) if st.kind == Kind::Symlink => Err(StoreError::SymlinkRefused {
                path: dir.join(key.image.as_str()),
            }),
            Some(st) => Err(StoreError::UnexpectedFileType {
                path: dir.join(key.image.as_str()),
                expected: Kind::File.describe(),
                found: st.kind.describe(),
            }),
            None => Ok(None),
        }
    }

    /// Deletes the partial file of `key` (the caller decided not to
    /// resume); returns the bytes freed (0 if there was none). A symlink
    /// there is removed without being followed.
    pub fn discard_partial(&self, key: &ImageKey) -> Result<u64, StoreError> {
        let Some(dir) = self.sub_dir(PARTIAL_DIR, key, None)? else {
            return Ok(0);
        };
        let id = key.image.as_str();
        let freed = match dir.stat(id)? {
            None => return Ok(0),
            Some(st) if st.kind == Kind::Dir => {
                return Err(StoreError::UnexpectedFileType {
                    path: dir.join(id),
                    expected: Kind::File.describe(),
                    found: st.kind.describe(),
                });
            }
            Some(st) if st.kind == Kind::File => st.len,
            Some(_) => 0,
        };
        dir.unlink(id)?;
        let sidecar = format!(".{id}{SIDECAR_SUFFIX}");
        if dir.stat(&sidecar)?.is_some() {
            dir.unlink(&sidecar)?;
        }
        dir.sync()?;
        Ok(freed)
    }

    // ----- space ----------------------------------------------------------

    /// Checks that `required_bytes` (plus the configured minimum free space)
    /// fit on the cache's file system.
    pub fn check_space(&self, required_bytes: u64) -> Result<SpaceCheck, StoreError> {
        let available = self.root.available_bytes()?;
        compare_space(
            self.root.path(),
            required_bytes.saturating_add(self.min_free_bytes),
            available,
        )
    }

    /// Checks the space for downloading `key` of `image_size` bytes,
    /// counting what its partial file already holds (a resumed download
    /// only needs the rest).
    pub fn check_space_for(
        &self,
        key: &ImageKey,
        image_size: u64,
    ) -> Result<SpaceCheck, StoreError> {
        let have = self.partial_len(key)?.unwrap_or(0);
        let available = self.root.available_bytes()?;
        compare_space(
            self.root.path(),
            bytes_still_needed(image_size, have, self.min_free_bytes),
            available,
        )
    }

    // ----- promotion ------------------------------------------------------

    /// Moves the finished download of `key` into the endorsed area with its
    /// record. Call only after proving the sha512 and size (the downloader
    /// hashes while streaming); this re-checks the size, not the digest (see
    /// [`verify_and_promote`](Self::verify_and_promote)).
    ///
    /// Steps: check the record (same key, verified, consistent); open the
    /// partial file without following links and compare its length with the
    /// record; fsync it; build `partial/<ns>/<sub>/.promote-<id>/` with the
    /// record (written atomically) and the file (renamed in, and checked to
    /// be the very inode that was measured); fsync; rename the directory to
    /// `endorsed/<ns>/<sub>/<id>` (never replacing an existing entry);
    /// fsync both parents. A failure before that rename puts the file back
    /// in `partial/`; after it, the entry stays endorsed (it is complete).
    ///
    /// Returns the endorsed image path.
    pub fn promote(&self, key: &ImageKey, record: &ImageRecord) -> Result<PathBuf, StoreError> {
        self.promote_impl(key, record, false)
    }

    /// Like [`promote`](Self::promote), but re-hashes the partial file first
    /// (through the same descriptor that is then promoted) and refuses on a
    /// checksum mismatch, leaving the partial file in place.
    pub fn verify_and_promote(
        &self,
        key: &ImageKey,
        record: &ImageRecord,
    ) -> Result<PathBuf, StoreError> {
        self.promote_impl(key, record, true)
    }

    fn promote_impl(
        &self,
        key: &ImageKey,
        record: &ImageRecord,
        rehash: bool,
    ) -> Result<PathBuf, StoreError> {
        let id = key.image.as_str();
        record.check_endorsable(key, &self.entry_path(key))?;

        let partial_dir =
            self.sub_dir(PARTIAL_DIR, key, None)?
                .ok_or_else(|| StoreError::NotFound {
                    what: "partial download",
                    path: self.partial_path(key),
                })?;
        let partial_path = partial_dir.join(id);
        let mut file = partial_dir
            .open_read(id)?
            .ok_or_else(|| StoreError::NotFound {
                what: "partial download",
                path: partial_path.clone(),
            })?;
        let measured = fstat(&file, &partial_path)?;
        if measured.len != record.size {
            return Err(StoreError::SizeMismatch {
                path: partial_path,
                expected: record.size,
                actual: measured.len,
            });
        }
        if rehash {
            let (digest, len) =
                sha512_reader(&mut file).map_err(|e| StoreError::io("read", &partial_path, e))?;
            if len != record.size {
                return Err(StoreError::SizeMismatch {
                    path: partial_path,
                    expected: record.size,
                    actual: len,
                });
            }
            if digest != record.sha512 {
                return Err(StoreError::ChecksumMismatch {
                    path: partial_path,
                    expected: record.sha512.clone(),
                    actual: digest,
                });
            }
        }
        file.sync_all()
            .map_err(|e| StoreError::io("fsync", &partial_path, e))?;
        // Served read-only; best effort, since the file may belong to the
        // downloader's user (then its own mode stays).
        if let Err(e) = rustix::fs::fchmod(&file, rustix::fs::Mode::from_bits_truncate(FILE_MODE)) {
            tracing::debug!(path = %partial_path.display(), error = %e, "cannot chmod promoted image");
        }
        drop(file);

        let endorsed_dir = self
            .sub_dir(ENDORSED_DIR, key, Some(ENDORSED_MODE))?
            .ok_or_else(|| StoreError::NotFound {
                what: "endorsed directory",
                path: self.sub_path(ENDORSED_DIR, key),
            })?;
        if endorsed_dir.stat(id)?.is_some() {
            return Err(StoreError::AlreadyExists {
                path: endorsed_dir.join(id),
            });
        }

        let staging_name = format!("{STAGING_PREFIX}{id}");
        if let Some(old) = partial_dir.open_dir(&staging_name)? {
            // A leftover of an earlier failed attempt: harmless unless it
            // still holds an image (then recovery must decide).
            if old.stat(IMAGE_FILE)?.is_some() {
                return Err(StoreError::AlreadyExists {
                    path: old.join(IMAGE_FILE),
                });
            }
            clear_staging(&partial_dir, &old, &staging_name)?;
        }
        let staging = partial_dir.ensure_dir(&staging_name, ENDORSED_MODE)?;
        let result = self.assemble_and_commit(
            key,
            record,
            &partial_dir,
            &staging,
            &staging_name,
            &endorsed_dir,
            measured,
        );
        match result {
            Ok(()) => {}
            Err(e) if e.is_simulated_crash() => return Err(e),
            Err(e) => {
                // Not committed: the file goes back where the downloader
                // left it.
                if staging.stat(IMAGE_FILE).ok().flatten().is_some()
                    && let Err(undo) = staging.rename_noreplace(IMAGE_FILE, &partial_dir, id)
                {
                    tracing::warn!(key = %key, error = %undo, "cannot move image back after a failed promotion");
                    return Err(e);
                }
                if let Err(undo) = clear_staging(&partial_dir, &staging, &staging_name) {
                    tracing::warn!(key = %key, error = %undo, "cannot remove staging directory");
                }
                return Err(e);
            }
        }
        // Committed: the entry is complete and verified whatever happens
        // now, so nothing below may roll back (the `staging` handle now
        // points into the endorsed area). A failed fsync is still reported.
        drop(staging);
        self.crash_point(Step::Committed)?;
        endorsed_dir.sync()?;
        partial_dir.sync()?;
        Ok(self.image_path(key))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble_and_commit(
        &self,
        key: &ImageKey,
        record: &ImageRecord,
        partial_dir: &DirHandle,
        staging: &DirHandle,
        staging_name: &str,
        endorsed_dir: &DirHandle,
        measured: super::fsops::EntryStat,
    ) -> Result<(), StoreError> {
        let id = key.image.as_str();
        self.crash_point(Step::StagingCreated)?;
        staging.write_atomic(
            RECORD_FILE,
            &record.to_json(&staging.join(RECORD_FILE))?,
            FILE_MODE,
        )?;
        self.crash_point(Step::RecordWritten)?;
        partial_dir.rename_noreplace(id, staging, IMAGE_FILE)?;
        // The name could have been swapped for another file between the
        // size check and the rename; promote only the inode that was
        // measured (and, for verify_and_promote, hashed).
        let moved = staging.stat(IMAGE_FILE)?;
        if moved
            .is_none_or(|m| m.kind != Kind::File || m.dev != measured.dev || m.ino != measured.ino)
        {
            return Err(StoreError::UnexpectedFileType {
                path: partial_dir.join(id),
                expected: "the verified file",
                found: "a file that was replaced during promotion",
            });
        }
        self.crash_point(Step::ImageStaged)?;
        staging.sync()?;
        partial_dir.sync()?;
        // The commit point: one rename of the complete entry.
        partial_dir.rename_noreplace(staging_name, endorsed_dir, id)
    }

    // ----- reading --------------------------------------------------------

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
    pub fn inventory_of(&self, subscription: &SubscriptionKey) -> Result<Inventory, StoreError> {
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

    // ----- expiry ---------------------------------------------------------

    /// Moves the endorsed entry of `key` (image and record, whichever
    /// exist) to `expired/<ns>/<sub>/<timestamp>-<id>/`, recording the
    /// reason and time in the moved record (or, for an entry without a valid
    /// record, in an `expiry.json` marker).
    ///
    /// The mark is written before the move, so an interrupted expiry is
    /// completed by [`recover`](Self::recover), and entries marked expired
    /// never count as cached.
    pub fn expire(
        &self,
        key: &ImageKey,
        reason: ExpireReason,
        now: Timestamp,
    ) -> Result<ExpiredEntry, StoreError> {
        self.expire_with_detail(key, reason, None, now)
    }

    fn expire_with_detail(
        &self,
        key: &ImageKey,
        reason: ExpireReason,
        detail: Option<String>,
        now: Timestamp,
    ) -> Result<ExpiredEntry, StoreError> {
        let (sub, entry) = self.endorsed_entry(key)?;
        let expiry = Expiry {
            reason,
            at: now,
            detail,
        };
        let expiry = mark_expired(&entry, key, expiry)?;
        self.crash_point(Step::ExpiryMarked)?;
        self.move_to_expired(&sub, &entry, key, &expiry)
    }

    fn move_to_expired(
        &self,
        sub: &DirHandle,
        entry: &DirHandle,
        key: &ImageKey,
        expiry: &Expiry,
    ) -> Result<ExpiredEntry, StoreError> {
        let bytes = match entry.stat(IMAGE_FILE)? {
            Some(st) if st.kind == Kind::File => st.len,
            _ => 0,
        };
        let expired_sub = self
            .sub_dir(EXPIRED_DIR, key, Some(EXPIRED_MODE))?
            .ok_or_else(|| StoreError::NotFound {
                what: "expired directory",
                path: self.sub_path(EXPIRED_DIR, key),
            })?;
        let stamp = expired_name_stamp(expiry.at);
        let id = key.image.as_str();
        let mut attempt = 0u32;
        let name = loop {
            let name = if attempt == 0 {
                format!("{stamp}-{id}")
            } else {
                format!("{stamp}.{attempt}-{id}")
            };
            match sub.rename_noreplace(id, &expired_sub, &name) {
                Ok(()) => break name,
                Err(StoreError::AlreadyExists { .. }) if attempt < 10_000 => attempt += 1,
                Err(e) => return Err(e),
            }
        };
        expired_sub.sync()?;
        sub.sync()?;
        Ok(ExpiredEntry {
            key: key.clone(),
            name,
            expired_at: expiry.at,
            reason: Some(expiry.reason),
            bytes,
        })
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

    // ----- recovery -------------------------------------------------------

    /// Start-up recovery; see [`recover_at`](Self::recover_at).
    pub fn recover(&self) -> Result<Recovery, StoreError> {
        self.recover_at(Timestamp::now())
    }

    /// Brings the cache back to a consistent state after a crash and
    /// reports what it found:
    /// * interrupted promotions are rolled back (the file returns to
    ///   `partial/`), so nothing half-promoted survives;
    /// * downloads in progress are listed with their sizes, for the caller
    ///   to resume or discard;
    /// * interrupted expiries are completed;
    /// * endorsed entries that cannot be proven verified (record missing,
    ///   unreadable, for another key, saying "never verified", or a size
    ///   that disagrees) are moved to `expired/` with the reason: no
    ///   unverified byte stays in the endorsed area;
    /// * records without an image are reported and left;
    /// * anything the store did not create is reported and left alone,
    ///   never followed.
    pub fn recover_at(&self, now: Timestamp) -> Result<Recovery, StoreError> {
        let mut report = Recovery::default();
        self.recover_partial(&mut report)?;
        self.recover_endorsed(&mut report, now)?;
        Ok(report)
    }

    fn recover_partial(&self, report: &mut Recovery) -> Result<(), StoreError> {
        for (ns, sub, dir) in self.walk_subscriptions(PARTIAL_DIR, &mut report.unexpected)? {
            // Interrupted promotions first, so that their files are listed
            // as partials below.
            for item in dir.list()? {
                let Some(name) = item.name.as_deref() else {
                    continue;
                };
                let Some(id) = name.strip_prefix(STAGING_PREFIX) else {
                    continue;
                };
                let Ok(image) = ImageId::new(id) else {
                    report.unexpected.push(unexpected_item(
                        &dir,
                        &item,
                        "staging directory of an invalid identifier",
                    ));
                    continue;
                };
                if item.kind != Kind::Dir {
                    report.unexpected.push(unexpected_item(
                        &dir,
                        &item,
                        "expected a staging directory",
                    ));
                    continue;
                }
                let key = ImageKey::new(ns.clone(), sub.clone(), image);
                let Some(staging) = dir.open_dir(name)? else {
                    continue;
                };
                match staging.stat(IMAGE_FILE)? {
                    Some(st) if st.kind == Kind::File => {
                        if dir.stat(id)?.is_some() {
                            report.unexpected.push(Unexpected {
                                path: staging.join(IMAGE_FILE),
                                found: st.kind.describe(),
                                detail: "interrupted promotion while a newer partial exists".into(),
                            });
                            continue;
                        }
                        staging.rename_noreplace(IMAGE_FILE, &dir, id)?;
                        report.rolled_back.push(key);
                    }
                    Some(st) => {
                        report.unexpected.push(Unexpected {
                            path: staging.join(IMAGE_FILE),
                            found: st.kind.describe(),
                            detail: "not a regular file".into(),
                        });
                        continue;
                    }
                    None => {}
                }
                match clear_staging(&dir, &staging, name) {
                    Ok(removed) => report.removed.extend(removed),
                    Err(e) => report.unexpected.push(Unexpected {
                        path: dir.join(name),
                        found: Kind::Dir.describe(),
                        detail: format!("cannot remove staging directory: {e}"),
                    }),
                }
            }
            for item in dir.list()? {
                let Some(name) = item.name.as_deref() else {
                    report
                        .unexpected
                        .push(unexpected_item(&dir, &item, "name is not UTF-8"));
                    continue;
                };
                if name.starts_with(STAGING_PREFIX) {
                    continue;
                }
                // The downloader's resume sidecar (`.<id>.meta`): kept with
                // its partial, removed when the partial is gone.
                if let Some(id) = name
                    .strip_prefix('.')
                    .and_then(|rest| rest.strip_suffix(SIDECAR_SUFFIX))
                    && item.kind == Kind::File
                {
                    if dir.stat(id)?.is_none() {
                        dir.unlink(name)?;
                        report.removed.push(dir.join(name));
                    }
                    continue;
                }
                let Ok(image) = ImageId::new(name) else {
                    report.unexpected.push(unexpected_item(
                        &dir,
                        &item,
                        "not a valid image identifier",
                    ));
                    continue;
                };
                if item.kind != Kind::File {
                    report.unexpected.push(unexpected_item(
                        &dir,
                        &item,
                        "expected a partial download file",
                    ));
                    continue;
                }
                let len = dir.stat(name)?.map_or(0, |s| s.len);
                report.partials.push(PartialFile {
                    key: ImageKey::new(ns.clone(), sub.clone(), image),
                    path: dir.join(name),
                    len,
                });
            }
        }
        Ok(())
    }

    fn recover_endorsed(&self, report: &mut Recovery, now: Timestamp) -> Result<(), StoreError> {
        for (key, sub, entry) in self.walk_entries(ENDORSED_DIR, &mut report.unexpected)? {
            let id = key.image.as_str();
            let Some(entry) = entry else {
                let found = sub.stat(id)?.map_or(Kind::Other, |s| s.kind);
                report.unexpected.push(Unexpected {
                    path: sub.join(id),
                    found: found.describe(),
                    detail: "expected an entry directory".into(),
                });
                continue;
            };
            // Leftovers of interrupted atomic writes, and foreign files.
            for item in entry.list()? {
                let name = item.name.as_deref().unwrap_or("");
                if [IMAGE_FILE, RECORD_FILE, MARKER_FILE].contains(&name) {
                    continue;
                }
                if (name == temp_name(RECORD_FILE) || name == temp_name(MARKER_FILE))
                    && item.kind != Kind::Dir
                {
                    entry.unlink(name)?;
                    report.removed.push(entry.join(name));
                    continue;
                }
                report
                    .unexpected
                    .push(unexpected_item(&entry, &item, "not part of a cache entry"));
            }
            let image = entry.stat(IMAGE_FILE)?;
            let record = read_record(&entry);
            let marker = entry.stat(MARKER_FILE)?.is_some();

            // An interrupted expiry: finish it.
            let marked = match &record {
                Ok(Some(r)) => r.expired.clone(),
                _ => None,
            };
            let marked = match (marked, marker) {
                (Some(expiry), _) => Some(expiry),
                (None, true) => Some(read_marker(&entry, &key, now)),
                (None, false) => None,
            };
            if let Some(expiry) = marked {
                entry.sync()?;
                report
                    .completed_expiries
                    .push(self.move_to_expired(&sub, &entry, &key, &expiry)?);
                continue;
            }

            let problem: Option<(ExpireReason, String)> = match (&image, &record) {
                (None, Ok(Some(_))) => {
                    report.orphan_records.push(key);
                    continue;
                }
                (None, Ok(None)) if entry.list()?.is_empty() => {
                    entry.sync()?;
                    drop(entry);
                    if sub.rmdir(id)? {
                        sub.sync()?;
                        report.removed.push(self.entry_path(&key));
                    }
                    continue;
                }
                (None, _) => {
                    report.unexpected.push(Unexpected {
                        path: self.entry_path(&key),
                        found: Kind::Dir.describe(),
                        detail: "entry without image or valid record".into(),
                    });
                    continue;
                }
                (Some(st), _) if st.kind != Kind::File => Some((
                    ExpireReason::Unverified,
                    format!("the image is a {}, not a regular file", st.kind.describe()),
                )),
                (Some(_), Err(e)) => Some((ExpireReason::Orphan, e.to_string())),
                (Some(_), Ok(None)) => Some((
                    ExpireReason::Orphan,
                    "image without a metadata record".into(),
                )),
                (Some(st), Ok(Some(r))) => match r.check_endorsable(&key, &entry.join(RECORD_FILE))
                {
                    Err(_) if r.verified_at.is_none() => Some((
                        ExpireReason::Unverified,
                        "record says the image was never verified".into(),
                    )),
                    Err(e) => Some((ExpireReason::Orphan, e.to_string())),
                    Ok(()) if st.len != r.size => Some((
                        ExpireReason::SizeMismatch,
                        format!("size is {} bytes, record says {}", st.len, r.size),
                    )),
                    Ok(()) => None,
                },
            };
            match problem {
                None => report.endorsed += 1,
                Some((reason, detail)) => {
                    let expiry = mark_expired(
                        &entry,
                        &key,
                        Expiry {
                            reason,
                            at: now,
                            detail: Some(detail.clone()),
                        },
                    )?;
                    let moved = self.move_to_expired(&sub, &entry, &key, &expiry)?;
                    report.quarantined.push(Quarantined {
                        reason,
                        detail,
                        entry: moved,
                    });
                }
            }
        }
        Ok(())
    }

    // ----- the expired archive --------------------------------------------

    /// Lists the expired archive (for [`plan_retention`]). The time and
    /// reason come from the entry's record or marker; the directory's
    /// modification time stands in when neither is readable.
    pub fn expired_entries(&self) -> Result<Vec<ExpiredEntry>, StoreError> {
        let mut out = Vec::new();
        let mut ignored = Vec::new();
        for (ns, sub, dir) in self.walk_subscriptions(EXPIRED_DIR, &mut ignored)? {
            for item in dir.list()? {
                let Some(name) = item.name.as_deref() else {
                    continue;
                };
                if item.kind != Kind::Dir || validate_component(name).is_err() {
                    continue;
                }
                let Some((_, id)) = name.split_once('-') else {
                    continue;
                };
                let Ok(image) = ImageId::new(id) else {
                    continue;
                };
                let key = ImageKey::new(ns.clone(), sub.clone(), image);
                let Some(entry) = dir.open_dir(name)? else {
                    continue;
                };
                let from_record = match read_record(&entry) {
                    Ok(Some(r)) => r.expired,
                    _ => None,
                };
                let from_marker = || -> Option<Expiry> {
                    let bytes = entry.read_small(MARKER_FILE, MAX_RECORD_BYTES).ok()??;
                    serde_json::from_slice::<ExpiryMarker>(&bytes)
                        .ok()
                        .map(|m| m.expired)
                };
                let expiry = from_record.or_else(from_marker);
                let (expired_at, reason) = match expiry {
                    Some(e) => (e.at, Some(e.reason)),
                    None => {
                        let mtime = dir.stat(name)?.map_or(0, |s| s.mtime);
                        (
                            Timestamp::from_second(mtime).unwrap_or(Timestamp::UNIX_EPOCH),
                            None,
                        )
                    }
                };
                let bytes = match entry.stat(IMAGE_FILE)? {
                    Some(st) if st.kind == Kind::File => st.len,
                    _ => 0,
                };
                out.push(ExpiredEntry {
                    key,
                    name: name.to_owned(),
                    expired_at,
                    reason,
                    bytes,
                });
            }
        }
        Ok(out)
    }

    /// Deletes the given expired entries (normally the output of
    /// [`plan_retention`]). Each entry's name is validated again, links are
    /// removed without being followed, and a failure on one entry does not
    /// stop the others.
    pub fn apply_retention(&self, entries: &[ExpiredEntry]) -> RetentionReport {
        let mut report = RetentionReport::default();
        for entry in entries {
            match self.delete_expired(entry) {
                Ok(freed) => {
                    report.freed_bytes = report.freed_bytes.saturating_add(freed);
                    report.deleted.push(entry.clone());
                }
                Err(e) => report.failed.push((entry.clone(), e)),
            }
        }
        report
    }

    /// Lists the archive, plans with `policy` at `now`, and deletes.
    pub fn prune_expired(
        &self,
        policy: &RetentionPolicy,
        now: Timestamp,
    ) -> Result<RetentionReport, StoreError> {
        let entries = self.expired_entries()?;
        Ok(self.apply_retention(&plan_retention(&entries, policy, now)))
    }

    fn delete_expired(&self, entry: &ExpiredEntry) -> Result<u64, StoreError> {
        validate_component(&entry.name).map_err(|source| StoreError::UnsafeName {
            what: "expired entry name",
            source,
        })?;
        let sub = self
            .sub_dir(EXPIRED_DIR, &entry.key, None)?
            .ok_or_else(|| StoreError::NotFound {
                what: "expired entry",
                path: self.sub_path(EXPIRED_DIR, &entry.key).join(&entry.name),
            })?;
        let dir = sub.require_dir(&entry.name, "expired entry")?;
        let mut freed = 0u64;
        for item in dir.list()? {
            let Some(name) = item.name.as_deref() else {
                return Err(StoreError::UnexpectedFileType {
                    path: dir.join(&item.display),
                    expected: "a file with a UTF-8 name",
                    found: item.kind.describe(),
                });
            };
            if item.kind == Kind::Dir {
                return Err(StoreError::UnexpectedFileType {
                    path: dir.join(name),
                    expected: Kind::File.describe(),
                    found: Kind::Dir.describe(),
                });
            }
            if name == IMAGE_FILE && item.kind == Kind::File {
                freed = freed.saturating_add(dir.stat(name)?.map_or(0, |s| s.len));
            }
            dir.unlink(name)?;
        }
        drop(dir);
        sub.rmdir(&entry.name)?;
        sub.sync()?;
        Ok(freed)
    }
}

/// Reads and parses `record.json` of an entry: `Ok(None)` when absent.
fn read_record(entry: &DirHandle) -> Result<Option<ImageRecord>, StoreError> {
    match entry.read_small(RECORD_FILE, MAX_RECORD_BYTES)? {
        None => Ok(None),
        Some(bytes) => ImageRecord::from_json(&bytes, &entry.join(RECORD_FILE)).map(Some),
    }
}

/// Reads the expiry marker of an entry, or makes one up for `now` when it is
/// unreadable (the entry still has to leave).
fn read_marker(entry: &DirHandle, key: &ImageKey, now: Timestamp) -> Expiry {
    entry
        .read_small(MARKER_FILE, MAX_RECORD_BYTES)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice::<ExpiryMarker>(&bytes).ok())
        .filter(|m| m.key == *key)
        .map(|m| m.expired)
        .unwrap_or(Expiry {
            reason: ExpireReason::Orphan,
            at: now,
            detail: Some("unreadable expiry marker".into()),
        })
}

/// Records the expiry in the entry before it moves: in its record when it
/// has a valid one, else in a marker file. An existing mark wins (an expiry
/// that was interrupted keeps its original reason and time). Returns the
/// mark in force.
fn mark_expired(entry: &DirHandle, key: &ImageKey, expiry: Expiry) -> Result<Expiry, StoreError> {
    match read_record(entry) {
        Ok(Some(mut record)) if record.key == *key => {
            if let Some(existing) = record.expired {
                return Ok(existing);
            }
            record.expired = Some(expiry.clone());
            entry.write_atomic(
                RECORD_FILE,
                &record.to_json(&entry.join(RECORD_FILE))?,
                FILE_MODE,
            )?;
        }
        _ => {
            if entry.stat(MARKER_FILE)?.is_some() {
                return Ok(read_marker(entry, key, expiry.at));
            }
            let marker = ExpiryMarker {
                key: key.clone(),
                expired: expiry.clone(),
            };
            let mut bytes =
                serde_json::to_vec_pretty(&marker).map_err(|e| StoreError::RecordInvalid {
                    path: entry.join(MARKER_FILE),
                    detail: format!("cannot serialize: {e}"),
                })?;
            bytes.push(b'\n');
            entry.write_atomic(MARKER_FILE, &bytes, FILE_MODE)?;
        }
    }
    Ok(expiry)
}

/// Empties and removes a staging directory that holds no image; returns
/// what was removed.
fn clear_staging(
    parent: &DirHandle,
    staging: &DirHandle,
    name: &str,
) -> Result<Vec<PathBuf>, StoreError> {
    let mut removed = Vec::new();
    for file in [RECORD_FILE.to_owned(), temp_name(RECORD_FILE)] {
        if staging.unlink(&file)? {
            removed.push(staging.join(&file));
        }
    }
    match parent.rmdir(name) {
        Ok(_) => {
            removed.push(parent.join(name));
            parent.sync()?;
            Ok(removed)
        }
        Err(e) => Err(e),
    }
}

fn unexpected_item(dir: &DirHandle, item: &super::fsops::Listed, detail: &str) -> Unexpected {
    Unexpected {
        path: dir.join(&item.display),
        found: item.kind.describe(),
        detail: detail.to_owned(),
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
