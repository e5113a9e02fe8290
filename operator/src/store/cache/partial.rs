//! Downloads in progress: `partial/<ns>/<sub>/<image-id>` (and the
//! downloader's resume sidecar next to it), and the space checks made
//! before a download.

use super::{CacheStore, PARTIAL_DIR, PARTIAL_MODE, SIDECAR_SUFFIX};
use crate::store::error::StoreError;
use crate::store::fsops::{Kind, fstat};
use crate::store::names::ImageKey;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Free space measured by [`CacheStore::check_space`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceCheck {
    /// Bytes needed (still to write plus the reserve).
    pub needed: u64,
    /// Bytes available.
    pub available: u64,
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

impl CacheStore {
    /// Where the downloader writes `key` (`partial/<ns>/<sub>/<id>`). Pure:
    /// call [`prepare_partial`](Self::prepare_partial) or, better,
    /// [`open_partial`](Self::open_partial) first, which create the parent
    /// directories and refuse a planted symlink.
    pub fn partial_path(&self, key: &ImageKey) -> PathBuf {
        self.sub_path(PARTIAL_DIR, key).join(key.image.as_str())
    }

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
}
