//! The state file of `vmlisub sync`: each object's status (the same status
//! types the CRDs carry) and the last good signed list of each subscription.
//! The operator keeps the same file on its cache volume.
//!
//! Next to the last good list, each subscription keeps its high-water marks
//! (the highest list ever accepted per `dc:identifier`, see
//! [`crate::decision::HighWaterMark`]): the rollback guard's reference,
//! which outlives a stored list that expires, stops verifying or is
//! dropped. Files written before the marks existed are migrated on load
//! from the recorded `status.list` (the last accepted list).
//!
//! Written atomically (temporary file, fsync, rename, fsync of the
//! directory), so that a crash or a full disk leaves the previous state, never
//! a torn one. The signed list bytes are kept next to it, so that the last
//! good list survives every bad update and can be re-verified on start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::api::{EndorserStatus, ImageListSubscriptionStatus, ImageSubscriptionStatus};
use crate::decision::{Credential, HighWaterMark};
use crate::reason::Reason;
pub use crate::store::write_atomically;

/// The format version written into the file.
pub const STATE_VERSION: u32 = 1;
/// State files larger than this are refused rather than parsed.
pub const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// Everything `vmlisub sync` remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub version: u32,
    /// Keyed by `namespace/name`.
    #[serde(default)]
    pub endorsers: BTreeMap<String, EndorserStatus>,
    #[serde(default)]
    pub lists: BTreeMap<String, ListState>,
    #[serde(default)]
    pub images: BTreeMap<String, ImageSubscriptionStatus>,
}

/// A list subscription's status plus what is needed to compare the next
/// update with the last good list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListState {
    pub status: ImageListSubscriptionStatus,
    /// The pinned `dc:identifier` (from the spec or the first import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_identifier: Option<String>,
    /// File name (inside the state directory) of the last good signed list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_list_file: Option<String>,
    /// When the list is next due, RFC 3339 (for `--watch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_fetch: Option<String>,
    /// The highest list ever accepted, per `dc:identifier` (one entry per
    /// identifier the subscription was ever pinned to). Only raised, never
    /// cleared while the subscription exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub high_water: Vec<HighWaterMark>,
    /// `autoEndorse`: the first valid signer, trusted on first use and
    /// from then on (while `autoEndorse` stays on). Recorded once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_endorsed: Option<Credential>,
}

impl ListState {
    /// Seeds the high-water mark from `status.list` (the last accepted
    /// list, recorded by every vmlisub version) when the entry has no mark
    /// for its identifier: state files from before the marks existed keep
    /// their rollback guard. Unparseable records seed nothing.
    fn migrate(&mut self) {
        let Some(list) = &self.status.list else {
            return;
        };
        if self
            .high_water
            .iter()
            .any(|m| m.identifier == list.identifier)
        {
            return;
        }
        let Ok(created) = crate::imagelist::parse_timestamp(&list.created) else {
            return;
        };
        let digest = list
            .digest
            .strip_prefix("sha512:")
            .unwrap_or(&list.digest)
            .to_ascii_lowercase();
        self.high_water.push(HighWaterMark {
            identifier: list.identifier.clone(),
            version: list.version.clone(),
            created,
            digest,
        });
    }
}

/// The directory the state file is in (the last good lists are kept
/// below it).
pub fn state_dir(state_file: &Path) -> PathBuf {
    match state_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Where the last good signed list of `key` is kept next to `state_file`:
/// `lists/<namespace>/<name>.smime`, with the bare JSON it carries beside
/// it as `<name>.json` (what the artifact server publishes).
pub fn stored_list_file(state_file: &Path, key: &super::ObjectKey) -> PathBuf {
    state_dir(state_file)
        .join("lists")
        .join(&key.namespace)
        .join(format!("{}.smime", key.name))
}

/// Why the state could not be read or written.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("cannot read state {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write state {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state {path} is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("state {path} has version {found}, this vmlisub reads {STATE_VERSION}")]
    Version { path: PathBuf, found: u32 },
}

impl Reason for StateError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "state-unreadable",
            Self::Write { .. } => "state-unwritable",
            Self::Corrupt { .. } | Self::Version { .. } => "state-corrupt",
        }
    }
}

impl State {
    /// Reads the state file; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let read_err = |source| StateError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    version: STATE_VERSION,
                    ..State::default()
                });
            }
            Err(err) => return Err(read_err(err)),
        };
        if meta.len() > MAX_STATE_BYTES {
            return Err(StateError::Corrupt {
                path: path.to_path_buf(),
                message: format!("larger than {MAX_STATE_BYTES} bytes"),
            });
        }
        let bytes = std::fs::read(path).map_err(read_err)?;
        let mut state: State =
            serde_json::from_slice(&bytes).map_err(|err| StateError::Corrupt {
                path: path.to_path_buf(),
                message: err.to_string(),
            })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Version {
                path: path.to_path_buf(),
                found: state.version,
            });
        }
        for entry in state.lists.values_mut() {
            entry.migrate();
        }
        Ok(state)
    }

    /// Writes the state file atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|err| StateError::Corrupt {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
        bytes.push(b'\n');
        write_atomically(path, &bytes).map_err(|source| StateError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_empty_state_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let mut state = State::load(&path).unwrap();
        assert_eq!(state.version, STATE_VERSION);
        state.lists.insert(
            "default/cernvm".into(),
            ListState {
                pinned_identifier: Some("abc".into()),
                ..ListState::default()
            },
        );
        state.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), state);
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn old_state_files_gain_a_high_water_mark_from_the_accepted_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        // As written before the marks existed: status.list, no highWater.
        std::fs::write(
            &path,
            serde_json::json!({
                "version": 1,
                "lists": {
                    "default/old": {"status": {"list": {
                        "identifier": "abc", "title": "t", "version": "2",
                        "created": "2026-01-10T00:00:00Z",
                        "expires": "2026-02-10T00:00:00Z", "uri": "u",
                        "signer": {"subject": "/CN=a", "issuer": "/CN=ca",
                                   "serial": "1", "notAfter": "2027-01-01T00:00:00Z"},
                        "digest": "sha512:AB12", "importedAt": "2026-01-10T00:00:00Z"
                    }}},
                    "default/never-imported": {"status": {}}
                }
            })
            .to_string(),
        )
        .unwrap();
        let state = State::load(&path).unwrap();
        let marks = &state.lists["default/old"].high_water;
        assert_eq!(
            marks,
            &[HighWaterMark {
                identifier: "abc".into(),
                version: "2".into(),
                created: crate::imagelist::parse_timestamp("2026-01-10T00:00:00Z").unwrap(),
                digest: "ab12".into(),
            }]
        );
        assert!(state.lists["default/never-imported"].high_water.is_empty());
        // Saved and loaded again: the mark is kept, not duplicated.
        state.save(&path).unwrap();
        let again = State::load(&path).unwrap();
        assert_eq!(again, state);
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw["lists"]["default/old"]["highWater"][0]["version"], "2");
    }

    #[test]
    fn corrupt_or_foreign_state_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(State::load(&path).unwrap_err().reason(), "state-corrupt");
        std::fs::write(&path, r#"{"version": 99}"#).unwrap();
        assert!(matches!(
            State::load(&path),
            Err(StateError::Version { found: 99, .. })
        ));
    }
}
