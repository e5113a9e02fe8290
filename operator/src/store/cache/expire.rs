//! Expiry: endorsed entries move into `expired/` with the reason and
//! time; the archive is listed and pruned by the retention plan.

use super::{
    CacheStore, EXPIRED_DIR, EXPIRED_MODE, FILE_MODE, IMAGE_FILE, MARKER_FILE, MAX_RECORD_BYTES,
    RECORD_FILE, Step, read_record,
};
use crate::imagelist::ImageId;
use crate::store::error::StoreError;
use crate::store::fsops::{DirHandle, Kind};
use crate::store::names::{ImageKey, validate_component};
use crate::store::record::{ExpireReason, Expiry, ExpiryMarker, ImageRecord};
use crate::store::retention::{ExpiredEntry, RetentionPolicy, plan_retention};
use jiff::Timestamp;

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

impl CacheStore {
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

    pub(super) fn expire_with_detail(
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

    pub(super) fn move_to_expired(
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

    /// The directory of an expired entry (for listings).
    pub fn expired_entry_path(&self, entry: &ExpiredEntry) -> std::path::PathBuf {
        self.sub_path(EXPIRED_DIR, &entry.key).join(&entry.name)
    }

    /// The record an expired entry kept (`None` when it has only an expiry
    /// marker, or is gone). Read-only, for listings such as `vmlisub cache
    /// ls --expired`.
    pub fn expired_record(&self, entry: &ExpiredEntry) -> Result<Option<ImageRecord>, StoreError> {
        validate_component(&entry.name).map_err(|source| StoreError::UnsafeName {
            what: "expired entry name",
            source,
        })?;
        let Some(sub) = self.sub_dir(EXPIRED_DIR, &entry.key, None)? else {
            return Ok(None);
        };
        let Some(dir) = sub.open_dir(&entry.name)? else {
            return Ok(None);
        };
        read_record(&dir)
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

/// Reads the expiry marker of an entry, or makes one up for `now` when it is
/// unreadable (the entry still has to leave).
pub(super) fn read_marker(entry: &DirHandle, key: &ImageKey, now: Timestamp) -> Expiry {
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
pub(super) fn mark_expired(
    entry: &DirHandle,
    key: &ImageKey,
    expiry: Expiry,
) -> Result<Expiry, StoreError> {
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
