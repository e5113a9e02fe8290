//! The subscription core both drivers run: refresh a list (fetch when due,
//! verify, authorise, decide, keep the last good list), download and
//! promote an image, and the pure status builders.
//!
//! The pure core decides (`trust::verify`, `decision::decide`,
//! `store::plan`); this module sequences the I/O around it. Its inputs are
//! typed and already dereferenced ([`ListInputs`]): `vmlisub sync` finds
//! them in its manifests, the operator through the API. A rejected update
//! never touches the last good list or its images.

pub mod disk;
pub mod failure;
pub mod inputs;
mod refresh;
pub mod select;
pub mod state;
pub mod status;
pub mod view;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;

pub use failure::{Classify, Concern, Failure, FailureClass};
pub use inputs::{
    Fetched, ListInputs, ObjectKey, SecretData, Sources, TransferSettings, TrustBundles,
};
pub use view::{GoodList, ListRefresh, ListView};

use crate::imagelist::Image;
use crate::reason::Reason;
use crate::store::{CacheStore, ImageKey, ImageRecord};
use crate::transfer::{Transfer, TransferConfig};
use crate::trust::{CaDirCache, TrustStore};
use state::{State, write_atomically};

/// Largest signed list accepted.
pub const DEFAULT_MAX_LIST_BYTES: u64 = 64 * 1024 * 1024;

/// What both drivers configure the same way.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub cache_dir: PathBuf,
    pub ca_dir: PathBuf,
    /// Each list's state (validators, high-water marks, next fetch) and,
    /// next to it under `lists/`, its last good signed list.
    pub state_file: PathBuf,
    pub allow_file_urls: bool,
    pub max_list_bytes: u64,
    pub max_clock_skew: Duration,
    pub transfer: TransferConfig,
    /// Base URL of the artifact server over this cache.
    pub artifact_base_url: Option<String>,
    /// A writable directory of refreshed CRLs, read with the CA directory.
    pub crl_dir: Option<PathBuf>,
    /// Time between CRL refreshes into `crl_dir`; `None`: never.
    pub crl_refresh_interval: Option<Duration>,
}

/// Errors that stop a driver's step before it starts.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Transfer(#[from] crate::transfer::TransferError),
}

impl Reason for CoreError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Store(err) => err.reason(),
            Self::State(err) => err.reason(),
            Self::Transfer(err) => err.reason(),
        }
    }
}

/// One image to download: from which list, with which transfer settings.
#[derive(Clone, Copy)]
pub struct Download<'a> {
    pub transfer: &'a Result<TransferSettings, Failure>,
    /// The list's URL (relative `hv:uri`s resolve against it; credentials
    /// are scoped to its origin).
    pub list_url: &'a str,
    pub good: &'a GoodList,
    pub image: &'a Image,
    pub key: &'a ImageKey,
    pub now: Timestamp,
}

/// Hears about one download: the CLI runs its hooks and draws a progress
/// line, the operator writes `status.progress`.
pub trait DownloadObserver: Send + Sync {
    /// The download is about to start (`path`: where the image will be).
    fn starting(&self, _record: &ImageRecord, _path: &Path) {}
    fn progress(&self, _received: u64, _total: u64) {}
    /// The image is verified and in the cache at `path`.
    fn promoted(&self, _record: &ImageRecord, _path: &Path) {}
}

impl DownloadObserver for () {}

/// The cache, the warm trust store and each list's state.
///
/// Shared by concurrent operator reconciles (`&self` everywhere): each
/// lock is held only for a map access, never across an await, and the
/// controllers never reconcile one object twice at a time.
pub struct Subscriptions {
    config: CoreConfig,
    store: CacheStore,
    trust: Mutex<Option<CaDirCache>>,
    transfers: Mutex<HashMap<String, Transfer>>,
    state: Mutex<State>,
    /// One download per image at a time, whatever the number of
    /// subscriptions that want it (they share the partial file).
    in_flight: Mutex<HashMap<ImageKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// Locks a mutex; a panic elsewhere while holding it left plain data that
/// is still consistent (every critical section is a single map update).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `work` (seconds of file hashing) without stalling the other tasks
/// of a multi-threaded runtime (the operator's); on a current-thread
/// runtime (`vmlisub sync`, one pass at a time) it simply runs.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// The file whose mtime records the last CRL refresh.
const CRL_REFRESH_STAMP: &str = ".refreshed";

impl Subscriptions {
    /// Opens the cache (recovering from a crash) and the state.
    pub fn open(config: CoreConfig) -> Result<(Self, Vec<String>), CoreError> {
        let store = CacheStore::open(&config.cache_dir)?;
        let recovery = store.recover()?;
        let mut notes = Vec::new();
        for partial in &recovery.partials {
            notes.push(format!(
                "partial download {} ({} bytes) will be resumed",
                partial.key, partial.len
            ));
        }
        for quarantined in &recovery.quarantined {
            notes.push(format!(
                "moved {} to expired/: {}",
                quarantined.entry.key,
                quarantined.reason.code()
            ));
        }
        for orphan in &recovery.orphan_records {
            notes.push(format!("record without image: {orphan}"));
        }
        for unexpected in &recovery.unexpected {
            notes.push(format!(
                "unexpected file in cache: {}",
                unexpected.path.display()
            ));
        }
        let state = State::load(&config.state_file)?;
        let trust = match CaDirCache::open_with_crl_dir(&config.ca_dir, config.crl_dir.clone()) {
            Ok(cache) => Some(cache),
            Err(err) => {
                notes.push(format!("trust store unavailable: {err}"));
                None
            }
        };
        Ok((
            Self {
                config,
                store,
                trust: Mutex::new(trust),
                transfers: Mutex::new(HashMap::new()),
                state: Mutex::new(state),
                in_flight: Mutex::new(HashMap::new()),
            },
            notes,
        ))
    }

    /// The image cache.
    pub fn store(&self) -> &CacheStore {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// The state (each list's, and the CLI's object statuses).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Where the last good signed list of `key` is kept.
    pub(crate) fn list_file(&self, key: &ObjectKey) -> PathBuf {
        state::stored_list_file(&self.config.state_file, key)
    }

    /// The transfer client for a list's settings, built once per distinct
    /// configuration. Its credentials are scoped to `list_url`'s origin.
    pub(crate) fn transfer_for(
        &self,
        settings: &Result<TransferSettings, Failure>,
        list_url: &str,
    ) -> Result<Transfer, Failure> {
        let settings = settings.as_ref().map_err(Clone::clone)?;
        let config =
            settings.apply_to(&self.config.transfer, self.config.allow_file_urls, list_url);
        let fingerprint = serde_json::to_string(&config).unwrap_or_default();
        // Built under the lock (milliseconds, no I/O): hundreds of lists
        // reconciled at once then share one client, its parsed roots and
        // its connection pool, instead of each building its own before the
        // first one is cached (measured: 12.8 MB of duplicate root stores
        // at the peak of 150 lists, docs/benchmarks.md).
        let mut transfers = lock(&self.transfers);
        if let Some(transfer) = transfers.get(&fingerprint) {
            return Ok(transfer.clone());
        }
        let transfer = Transfer::new(&config).map_err(|err| Failure::of(&err))?;
        transfers.insert(fingerprint, transfer.clone());
        Ok(transfer)
    }

    /// The trust store for one list: the CA directory, plus (or only) the
    /// PEMs of its ConfigMap/Secret.
    fn trust_for(&self, inputs: &ListInputs) -> Result<Arc<TrustStore>, Failure> {
        let base = lock(&self.trust).as_ref().map(|cache| cache.store());
        let bundles = inputs.trust.as_ref().map_err(Clone::clone)?;
        let Some(bundles) = bundles else {
            return base.ok_or_else(|| {
                Failure::transient(
                    "trust-store-unavailable",
                    format!(
                        "CA directory {} cannot be read",
                        self.config.ca_dir.display()
                    ),
                )
            });
        };
        let mut store = match (&base, bundles.exclusive) {
            (Some(base), false) => (**base).clone(),
            _ => TrustStore::default(),
        };
        for (name, bytes) in &bundles.pems {
            store
                .add_pem_bundle(name, bytes)
                .map_err(|err| Failure::of(&err))?;
        }
        Ok(Arc::new(store))
    }

    /// Downloads one image of a good list into the cache and promotes it
    /// once its size and sha512 are proven on the bytes of the file itself
    /// (read back as they are written). A partial download stays resumable unless its bytes are known
    /// to be wrong. Concurrent calls for one image run one at a time; a
    /// later one finds the image cached and returns it.
    pub async fn download(
        &self,
        request: &Download<'_>,
        observer: &dyn DownloadObserver,
    ) -> Result<PathBuf, Failure> {
        let (key, image) = (request.key, request.image);
        let gate = Arc::clone(lock(&self.in_flight).entry(key.clone()).or_default());
        let result = {
            let _turn = gate.lock().await;
            match self.store.cached(key) {
                // Another subscription of the same image got it first.
                Some(cached) if cached.sha512 == image.sha512 && cached.size == image.size => {
                    Ok(self.store.image_path(key))
                }
                _ => self.download_now(request, observer).await,
            }
        };
        let mut in_flight = lock(&self.in_flight);
        // Only the map and this call hold it: nobody waits any more.
        if Arc::strong_count(&gate) == 2 {
            in_flight.remove(key);
        }
        result
    }

    async fn download_now(
        &self,
        request: &Download<'_>,
        observer: &dyn DownloadObserver,
    ) -> Result<PathBuf, Failure> {
        let Download {
            transfer,
            list_url,
            good,
            image,
            key,
            now,
        } = *request;
        let transfer = self.transfer_for(transfer, list_url)?;
        self.store
            .check_space_for(key, image.size)
            .map_err(|err| Failure::of(&err))?;
        let partial = self
            .store
            .prepare_partial(key)
            .map_err(|err| Failure::of(&err))?;
        let url = select::resolve_image_url(list_url, &image.uri);
        let record = ImageRecord::new(
            key.clone(),
            image,
            &good.parsed.list,
            good.digest.clone(),
            now,
        )
        .map_err(|err| Failure::of(&err))?;
        observer.starting(&record, &self.store.image_path(key));
        let expected = image.sha512.to_bytes();
        let result = transfer
            .download(&url, &partial, image.size, &expected, |progress| {
                observer.progress(progress.received, progress.total);
            })
            .await;
        let downloaded = match result {
            Ok(downloaded) => downloaded,
            Err(err) => {
                if err.proves_bytes_wrong() {
                    let _ = self.store.discard_partial(key);
                }
                return Err(Failure::of(&err));
            }
        };
        // The downloader hashed the file's bytes as read back from it;
        // promotion hashes it again only if it changed since (its stamp).
        let promoted = blocking(|| self.store.promote_stamped(key, &record, &downloaded.stamp));
        let path = promoted.map_err(|err| {
            if matches!(
                err,
                crate::store::StoreError::ChecksumMismatch { .. }
                    | crate::store::StoreError::SizeMismatch { .. }
            ) {
                // Known wrong: the next attempt starts from zero.
                let _ = self.store.discard_partial(key);
            }
            Failure::of(&err)
        })?;
        observer.promoted(&record, &path);
        Ok(path)
    }

    /// Whether a CRL refresh is due at `now`: refreshing is on and the
    /// last one (the mtime of `.refreshed` in the CRL directory, so that
    /// `sync --once` from cron keeps the pace too) is older than the
    /// jittered interval.
    pub fn crl_refresh_due(&self, now: Timestamp) -> bool {
        let (Some(dir), Some(interval)) = (&self.config.crl_dir, self.config.crl_refresh_interval)
        else {
            return false;
        };
        let last = std::fs::metadata(dir.join(CRL_REFRESH_STAMP))
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|time| Timestamp::try_from(time).ok());
        match last {
            None => true,
            Some(last) => {
                let wait = select::jittered(interval, &dir.display().to_string());
                now.as_second().saturating_sub(last.as_second())
                    >= i64::try_from(wait.as_secs()).unwrap_or(i64::MAX)
            }
        }
    }

    /// Fetches every CA's CRL into the CRL directory (see
    /// [`crate::crl_refresh`]) and records when. The trust store picks the
    /// new files up at its next [`Self::refresh_trust`].
    pub async fn refresh_crls(&self) -> Vec<crate::crl_refresh::CaOutcome> {
        let Some(dir) = &self.config.crl_dir else {
            return Vec::new();
        };
        let Some(store) = lock(&self.trust).as_ref().map(CaDirCache::store) else {
            return Vec::new();
        };
        let mut config = self.config.transfer.clone();
        config.allow_file_scheme = false;
        let transfer = match Transfer::new(&config) {
            Ok(transfer) => transfer,
            Err(err) => {
                tracing::warn!(error = %err, "no CRL refresh: transfer settings");
                return Vec::new();
            }
        };
        let outcomes = crate::crl_refresh::refresh(&store, dir, &transfer).await;
        if let Err(err) = std::fs::create_dir_all(dir)
            .and_then(|()| write_atomically(&dir.join(CRL_REFRESH_STAMP), b""))
        {
            tracing::warn!(error = %err, dir = %dir.display(), "cannot record the CRL refresh");
        }
        outcomes
    }

    /// Reloads the CA directory if its files changed.
    /// A CA directory that could not be read at start (a ConfigMap not yet
    /// created, say) is opened as soon as it can be.
    pub fn refresh_trust(&self) -> Result<bool, crate::trust::dir::StoreError> {
        let mut trust = lock(&self.trust);
        match trust.as_mut() {
            Some(cache) => cache.refresh(),
            None => {
                let cache = CaDirCache::open_with_crl_dir(
                    &self.config.ca_dir,
                    self.config.crl_dir.clone(),
                )?;
                *trust = Some(cache);
                Ok(true)
            }
        }
    }

    /// `nextUpdate` of every CRL in the CA directory, by issuer.
    pub(crate) fn crl_next_updates(&self) -> Vec<(String, i64)> {
        lock(&self.trust)
            .as_ref()
            .map(|cache| {
                // Per issuer, the CRL in use: the one that lasts longest.
                let mut newest: BTreeMap<String, i64> = BTreeMap::new();
                for crl in cache.store().crls() {
                    if let Some(next) = crl.next_update {
                        let entry = newest.entry(crl.issuer.clone()).or_insert(next);
                        *entry = (*entry).max(next);
                    }
                }
                newest.into_iter().collect()
            })
            .unwrap_or_default()
    }

    /// Writes the state file (atomically).
    pub fn save_state(&self) -> Result<(), CoreError> {
        lock(&self.state).save(&self.config.state_file)?;
        Ok(())
    }

    /// Forgets a deleted list: its state entry and its stored signed list.
    pub fn forget_list(&self, key: &ObjectKey) -> Result<(), CoreError> {
        lock(&self.state).lists.remove(&key.to_string());
        let path = self.list_file(key);
        for path in [path.with_extension("json"), path] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(CoreError::State(state::StateError::Write { path, source }));
                }
            }
        }
        self.save_state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_ca_directory_missing_at_start_is_opened_when_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let config = CoreConfig {
            cache_dir: dir.path().join("cache"),
            ca_dir: dir.path().join("ca"),
            state_file: dir.path().join("state.json"),
            allow_file_urls: false,
            max_list_bytes: DEFAULT_MAX_LIST_BYTES,
            max_clock_skew: Duration::from_secs(300),
            transfer: TransferConfig::default(),
            artifact_base_url: None,
            crl_dir: Some(dir.path().join("crls")),
            crl_refresh_interval: None,
        };
        let (core, notes) = Subscriptions::open(config).unwrap();
        assert!(
            notes
                .iter()
                .any(|note| note.contains("trust store unavailable"))
        );
        assert!(core.refresh_trust().is_err());
        // The ConfigMap arrives.
        std::fs::create_dir(dir.path().join("ca")).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/testdata/real-lists/ca/dd4b34ea.0"),
            dir.path().join("ca/dd4b34ea.0"),
        )
        .unwrap();
        assert!(core.refresh_trust().unwrap());
        assert!(!core.refresh_trust().unwrap());
    }
}
