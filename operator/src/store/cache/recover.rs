//! Start-up recovery: brings the cache back to a consistent state after
//! a crash and reports what it found.

use super::expire::{mark_expired, read_marker};
use super::promote::clear_staging;
use super::{
    CacheStore, ENDORSED_DIR, IMAGE_FILE, MARKER_FILE, PARTIAL_DIR, RECORD_FILE, SIDECAR_SUFFIX,
    STAGING_PREFIX, read_record, unexpected_item,
};
use crate::imagelist::ImageId;
use crate::store::error::StoreError;
use crate::store::fsops::{Kind, temp_name};
use crate::store::names::ImageKey;
use crate::store::record::{ExpireReason, Expiry};
use crate::store::retention::ExpiredEntry;
use jiff::Timestamp;
use std::path::PathBuf;

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

impl CacheStore {
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
}
