//! Promotion: a finished, verified download moves into `endorsed/` with
//! its record, by one rename of a staged entry directory.

use super::{
    CacheStore, ENDORSED_DIR, ENDORSED_MODE, FILE_MODE, IMAGE_FILE, PARTIAL_DIR, RECORD_FILE,
    STAGING_PREFIX, Step,
};
use crate::store::error::StoreError;
use crate::store::fsops::{DirHandle, Kind, fstat, sha512_reader, temp_name};
use crate::store::names::ImageKey;
use crate::store::record::ImageRecord;
use crate::transfer::FileStamp;
use std::path::PathBuf;

/// What promotion checks of the file's content before it renames it.
#[derive(Clone, Copy, Debug)]
enum Proof {
    /// The caller proved the digest; only the size is checked.
    SizeOnly,
    /// The file is hashed again.
    Rehash,
    /// The file is hashed again unless it still has this stamp.
    Stamp(FileStamp),
}

impl CacheStore {
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
        self.promote_impl(key, record, Proof::SizeOnly)
    }

    /// Like [`promote`](Self::promote), but re-hashes the partial file first
    /// (through the same descriptor that is then promoted) and refuses on a
    /// checksum mismatch, leaving the partial file in place.
    pub fn verify_and_promote(
        &self,
        key: &ImageKey,
        record: &ImageRecord,
    ) -> Result<PathBuf, StoreError> {
        self.promote_impl(key, record, Proof::Rehash)
    }

    /// Like [`verify_and_promote`](Self::verify_and_promote) for a file
    /// whose bytes were hashed as read back from it when it had `stamp`
    /// (the downloader's proof, [`crate::transfer::Downloaded`]): when the
    /// descriptor that is promoted still has that stamp (same inode, size,
    /// mtime and ctime: nothing wrote to it since), the digest holds and
    /// the file is not hashed again; otherwise it is re-hashed as in
    /// `verify_and_promote`.
    pub fn promote_stamped(
        &self,
        key: &ImageKey,
        record: &ImageRecord,
        stamp: &FileStamp,
    ) -> Result<PathBuf, StoreError> {
        self.promote_impl(key, record, Proof::Stamp(*stamp))
    }

    fn promote_impl(
        &self,
        key: &ImageKey,
        record: &ImageRecord,
        proof: Proof,
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
        let rehash = match proof {
            Proof::SizeOnly => false,
            Proof::Rehash => true,
            Proof::Stamp(stamp) => {
                let now =
                    FileStamp::of(&file).map_err(|e| StoreError::io("stat", &partial_path, e))?;
                if now != stamp {
                    tracing::info!(key = %key, "partial file changed since it was hashed: hashing it again");
                }
                now != stamp
            }
        };
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
        measured: crate::store::fsops::EntryStat,
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
}

/// Empties and removes a staging directory that holds no image; returns
/// what was removed.
pub(super) fn clear_staging(
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
