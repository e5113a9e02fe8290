//! Reading IGTF-layout CA directories (and vmlisub's CRL directory) into
//! the pure [`TrustStore`] of vmlisub-core, and keeping the result warm.
//!
//! Files are recognised by extension and content, never by their hash
//! name; symlinks are followed (IGTF directories link hash names to CA
//! files); sizes and counts are bounded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use thiserror::Error;
use vmlisub_core::trust::TrustStore;
use vmlisub_core::trust::store::{MAX_FILE_BYTES, MAX_FILES, is_crl_file, is_trust_file};

/// Why a CA directory could not be read at all.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot read CA directory {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA directory {path} has more than {MAX_FILES} files")]
    TooManyFiles { path: PathBuf },
    #[error("CA directory {path} holds no CA certificate")]
    Empty { path: PathBuf },
}

/// Reads a CA directory into a [`TrustStore`].
pub fn load_dir(path: &Path) -> Result<TrustStore, StoreError> {
    let files = read_dir_files(path)?;
    let store = TrustStore::from_files(
        files
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice())),
    );
    if store.cas.is_empty() {
        return Err(StoreError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(store)
}

fn read_dir_files(path: &Path) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let read_err = |source| StoreError::ReadDir {
        path: path.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        if let Some(name) = entry.file_name().to_str()
            && is_trust_file(name)
        {
            names.push(name.to_string());
        }
        if names.len() > MAX_FILES {
            return Err(StoreError::TooManyFiles {
                path: path.to_path_buf(),
            });
        }
    }
    // Sorted, so that the store (and any tie between equal CAs) is deterministic.
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let full = path.join(&name);
        // Follows symlinks: IGTF directories link hash names to CA files.
        match std::fs::metadata(&full) {
            Ok(meta) if meta.is_file() && meta.len() <= MAX_FILE_BYTES => {}
            _ => continue,
        }
        if let Ok(bytes) = std::fs::read(&full) {
            files.push((name, bytes));
        }
    }
    Ok(files)
}

/// A cheap summary of a directory's state: names, sizes and mtimes.
fn fingerprint(path: &Path) -> std::io::Result<Vec<(String, u64, Option<SystemTime>)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_trust_file(&name) {
            continue;
        }
        let meta = std::fs::metadata(entry.path());
        let (len, modified) = match meta {
            Ok(meta) => (meta.len(), meta.modified().ok()),
            Err(_) => (0, None),
        };
        entries.push((name, len, modified));
        if entries.len() > MAX_FILES {
            break;
        }
    }
    entries.sort();
    Ok(entries)
}

/// Reads a CA directory plus the CRLs of a CRL directory (where vmlisub's
/// own CRL refresh writes; it may not exist yet). For each CA, revocation
/// then uses the newest current CRL of either place.
pub fn load_dirs(ca_dir: &Path, crl_dir: Option<&Path>) -> Result<TrustStore, StoreError> {
    let mut store = load_dir(ca_dir)?;
    if let Some(crl_dir) = crl_dir {
        add_crl_dir(&mut store, crl_dir);
    }
    Ok(store)
}

/// Adds the CRL files of `dir` to `store` (a missing directory adds
/// nothing).
pub fn add_crl_dir(store: &mut TrustStore, dir: &Path) {
    let Ok(files) = read_dir_files(dir) else {
        return;
    };
    for (name, bytes) in files {
        if is_crl_file(&name) {
            store.add_crl_file(&format!("{}/{name}", dir.display()), &bytes);
        }
    }
}

/// A cheap summary of both directories' state.
type Fingerprint = Vec<(String, u64, Option<SystemTime>)>;

fn fingerprints(ca_dir: &Path, crl_dir: Option<&Path>) -> std::io::Result<Fingerprint> {
    let mut all = fingerprint(ca_dir)?;
    if let Some(crl_dir) = crl_dir
        && let Ok(crls) = fingerprint(crl_dir)
    {
        all.extend(
            crls.into_iter()
                .map(|(name, len, modified)| (format!("crl-dir/{name}"), len, modified)),
        );
    }
    Ok(all)
}

/// Keeps a CA directory's parsed store warm and reloads it only when the
/// directory (or the CRL directory next to it) changed: fetch-crl, or
/// vmlisub's own refresh, rewrites CRLs several times a day.
#[derive(Debug)]
pub struct CaDirCache {
    path: PathBuf,
    crl_dir: Option<PathBuf>,
    fingerprint: Fingerprint,
    store: Arc<TrustStore>,
}

impl CaDirCache {
    /// Loads the directory for the first time.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::open_with_crl_dir(path, None)
    }

    /// Loads a CA directory and a CRL directory for the first time.
    pub fn open_with_crl_dir(
        path: impl Into<PathBuf>,
        crl_dir: Option<PathBuf>,
    ) -> Result<Self, StoreError> {
        let path = path.into();
        let fingerprint =
            fingerprints(&path, crl_dir.as_deref()).map_err(|source| StoreError::ReadDir {
                path: path.clone(),
                source,
            })?;
        let store = Arc::new(load_dirs(&path, crl_dir.as_deref())?);
        Ok(Self {
            path,
            crl_dir,
            fingerprint,
            store,
        })
    }

    /// The current store.
    pub fn store(&self) -> Arc<TrustStore> {
        Arc::clone(&self.store)
    }

    /// Reloads when either directory changed. Returns whether it did. On
    /// a failed reload the previous store stays in place.
    pub fn refresh(&mut self) -> Result<bool, StoreError> {
        let current = fingerprints(&self.path, self.crl_dir.as_deref()).map_err(|source| {
            StoreError::ReadDir {
                path: self.path.clone(),
                source,
            }
        })?;
        if current == self.fingerprint {
            return Ok(false);
        }
        let store = load_dirs(&self.path, self.crl_dir.as_deref())?;
        self.store = Arc::new(store);
        self.fingerprint = current;
        Ok(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The CRL directory read next to the CA directory, if any.
    pub fn crl_dir(&self) -> Option<&Path> {
        self.crl_dir.as_deref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn real_igtf_directory_loads_with_policies() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/real-lists/ca");
        let store = load_dir(&dir).unwrap();
        assert!(store.problems.is_empty(), "{:?}", store.problems);
        let subjects: Vec<&str> = store.cas().iter().map(|ca| ca.subject.as_str()).collect();
        assert!(subjects.contains(&"/C=DE/O=GermanGrid/CN=GridKa-CA"));
        assert!(subjects.contains(&"/DC=ORG/DC=SEE-GRID/CN=SEE-GRID CA 2013"));
        assert_eq!(store.cas().iter().filter(|ca| ca.self_signed).count(), 2);
    }

    #[test]
    fn cache_reloads_only_on_change() {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/testdata/real-lists/ca/dd4b34ea.0");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&source, dir.path().join("dd4b34ea.0")).unwrap();
        let mut cache = CaDirCache::open(dir.path()).unwrap();
        assert!(!cache.refresh().unwrap());
        std::fs::write(dir.path().join("dd4b34ea.namespaces"), "# empty\n").unwrap();
        assert!(cache.refresh().unwrap());
        assert!(!cache.refresh().unwrap());
    }
}
