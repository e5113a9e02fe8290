//! One pass of `vmlisub sync`: fetch, verify, authorise, update the stored
//! list, download the selected images, expire what is no longer endorsed,
//! apply retention, and record every object's status.
//!
//! The pure core decides (`trust::verify`, `decision::decide`,
//! `store::plan`); this module only sequences I/O around it. A failure of one
//! subscription never stops the others, and a rejected update never touches
//! the last good list or its images.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use sha2::{Digest as _, Sha512};

use super::failure::{Concern, Failure, FailureClass};
use super::manifest::{Manifests, ObjectKey};
use super::state::{State, write_atomically};
use crate::api::conditions::{self, Condition, ConditionStatus};
use crate::api::{
    Artifact, EndorserStatus, ExpiredRecord, ImageListSubscription, ImagePhase, ImagePolicy,
    ImageSubscriptionStatus, ImageSummary, ListSigner, ListStatus, RejectedImageReport,
};
use crate::decision::{
    self, Credential, DecisionInput, HighWaterMark, SignerIdentity, StoredList, Verdict,
};
use crate::hooks::{Event, EventType, Hook};
use crate::imagelist::{self, Image, ImageId, Parsed, Sha512Hex};
use crate::reason::Reason;
use crate::store::{
    CacheStore, Desired, ExpireReason, ImageKey, ImageRecord, ListKey, Namespace, RetentionPolicy,
    SubscriptionName, SubscriptionState, WantedImage,
};
use crate::transfer::{Auth, ListFetch, ProxyConfig, Transfer, TransferConfig, Validators};
use crate::trust::{self, CaDirCache, CrlPolicy, TrustStore, VerifyOptions};

/// Largest signed list accepted.
pub const DEFAULT_MAX_LIST_BYTES: u64 = 64 * 1024 * 1024;

/// A progress callback: (image key, bytes so far, total bytes).
pub type ProgressFn = dyn Fn(&str, u64, u64) + Send + Sync;

/// Receives download progress.
#[derive(Clone)]
pub struct ProgressSink(pub std::sync::Arc<ProgressFn>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

/// How `vmlisub sync` runs.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub cache_dir: PathBuf,
    pub ca_dir: PathBuf,
    pub state_file: PathBuf,
    pub hook: Option<Hook>,
    pub allow_file_urls: bool,
    pub max_list_bytes: u64,
    pub max_clock_skew: Duration,
    pub retention: RetentionPolicy,
    /// Fetch every list now, whatever its interval says.
    pub force: bool,
    pub transfer: TransferConfig,
    /// Where download progress goes (a terminal progress line, say).
    pub progress: Option<ProgressSink>,
    /// Base URL of the artifact server over this cache.
    pub artifact_base_url: Option<String>,
    /// A writable directory of refreshed CRLs, read with the CA directory.
    pub crl_dir: Option<PathBuf>,
    /// Time between CRL refreshes into `crl_dir`; `None`: never.
    pub crl_refresh_interval: Option<Duration>,
}

/// What one pass did, for the summary and the exit code.
#[derive(Debug, Default)]
pub struct PassReport {
    pub lines: Vec<String>,
    /// Objects whose Ready condition is not True.
    pub not_ready: Vec<String>,
    /// When the next list is due (for `--watch`).
    pub next_due: Option<Timestamp>,
}

/// Errors that stop a pass before it starts.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    State(#[from] super::state::StateError),
    #[error(transparent)]
    Transfer(#[from] crate::transfer::TransferError),
}

impl Reason for SyncError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Store(err) => err.reason(),
            Self::State(err) => err.reason(),
            Self::Transfer(err) => err.reason(),
        }
    }
}

/// The usable list of a subscription: verified, endorsed, not expired.
#[derive(Debug)]
pub(crate) struct GoodList {
    pub(crate) parsed: Parsed,
    /// sha512 of the signed bytes.
    pub(crate) digest: Sha512Hex,
}

/// The sync engine: the cache, the warm trust store and the state.
///
/// Shared by concurrent operator reconciles (`&self` everywhere): each
/// lock is held only for a map access, never across an await, and the
/// controllers never reconcile one object twice at a time.
pub struct Engine {
    config: SyncConfig,
    store: CacheStore,
    trust: Mutex<Option<CaDirCache>>,
    transfers: Mutex<HashMap<String, Transfer>>,
    state: Mutex<State>,
}

/// Locks a mutex; a panic elsewhere while holding it left plain data that
/// is still consistent (every critical section is a single map update).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn rfc3339(at: Timestamp) -> String {
    imagelist::format_timestamp(at)
}

fn sha512_hex(bytes: &[u8]) -> Sha512Hex {
    let digest: [u8; 64] = Sha512::digest(bytes).into();
    Sha512Hex::from_digest(&digest)
}

pub(crate) fn summary_of(image: &Image) -> ImageSummary {
    // The informational fields, by their list keys, from one serialisation.
    let value = serde_json::to_value(image).unwrap_or_default();
    let text = |key: &str| -> String {
        value
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_default()
    };
    ImageSummary {
        identifier: image.identifier.as_str().to_string(),
        title: image.title.clone(),
        version: text("hv:version"),
        uri: image.uri.clone(),
        size: image.size,
        sha512: image.sha512.as_str().to_string(),
        os: text("sl:os"),
        os_version: text("sl:osversion"),
        arch: text("sl:arch"),
        hypervisor: text("hv:hypervisor"),
        format: text("hv:format"),
        expires: image.expires.map(rfc3339),
    }
}

pub(crate) fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let status = if ok {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    conditions::set_condition(
        conditions,
        Condition::new(type_, status, reason, message, now),
    );
}

impl Engine {
    /// Opens the cache (recovering from a crash) and the state.
    pub fn open(config: SyncConfig) -> Result<(Self, Vec<String>), SyncError> {
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
            },
            notes,
        ))
    }

    /// The image cache.
    pub fn store(&self) -> &CacheStore {
        &self.store
    }

    /// The engine's configuration.
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    pub(crate) fn list_file(&self, key: &ObjectKey) -> PathBuf {
        self.state_dir()
            .join("lists")
            .join(&key.namespace)
            .join(format!("{}.smime", key.name))
    }

    fn state_dir(&self) -> PathBuf {
        match self.config.state_file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The transfer client for one subscription (auth, CA, proxy from its
    /// Secrets), built once per distinct configuration.
    pub(crate) fn transfer_for(
        &self,
        manifests: &Manifests,
        key: &ObjectKey,
        list: &ImageListSubscription,
    ) -> Result<Transfer, Failure> {
        let mut config = self.config.transfer.clone();
        config.allow_file_scheme = self.config.allow_file_urls;
        let secret = |name: &str| manifests.secrets.get(&ObjectKey::new(&key.namespace, name));
        let missing = |what: &str, name: &str| {
            Failure::transient(
                "secret-missing",
                format!(
                    "{what} Secret {}/{name} is not among the manifests",
                    key.namespace
                ),
            )
        };
        if let Some(reference) = &list.spec.secret_ref {
            let data =
                secret(&reference.name).ok_or_else(|| missing("secretRef", &reference.name))?;
            let text = |k: &str| {
                data.values
                    .get(k)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            config.auth = match (text("username"), text("password"), text("token")) {
                (Some(user), Some(password), _) => Auth::Basic { user, password },
                (_, _, Some(token)) => Auth::Bearer { token },
                _ => {
                    return Err(Failure::spec(
                        "secret-invalid",
                        format!(
                            "Secret {} needs username and password, or token",
                            reference.name
                        ),
                    ));
                }
            };
        }
        if let Some(reference) = &list.spec.cert_secret_ref {
            let data =
                secret(&reference.name).ok_or_else(|| missing("certSecretRef", &reference.name))?;
            config.extra_ca_pem = data.values.get("ca.crt").cloned().unwrap_or_default();
        }
        if let Some(reference) = &list.spec.proxy_secret_ref {
            let data = secret(&reference.name)
                .ok_or_else(|| missing("proxySecretRef", &reference.name))?;
            let text = |k: &str| {
                data.values
                    .get(k)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            if let Some(url) = text("address") {
                config.proxy = ProxyConfig::Explicit {
                    url,
                    no_proxy: text("noProxy")
                        .map(|list| list.split(',').map(|s| s.trim().to_string()).collect())
                        .unwrap_or_default(),
                };
            }
        }
        let fingerprint = serde_json::to_string(&config).unwrap_or_default();
        if let Some(transfer) = lock(&self.transfers).get(&fingerprint) {
            return Ok(transfer.clone());
        }
        let transfer = Transfer::new(&config).map_err(|err| Failure::of(&err))?;
        lock(&self.transfers).insert(fingerprint, transfer.clone());
        Ok(transfer)
    }

    /// The trust store for one subscription: the CA directory, plus (or
    /// only) the PEMs of its ConfigMap/Secret.
    fn trust_for(
        &self,
        manifests: &Manifests,
        key: &ObjectKey,
        list: &ImageListSubscription,
    ) -> Result<Arc<TrustStore>, Failure> {
        let base = lock(&self.trust).as_ref().map(|cache| cache.store());
        let Some(source) = &list.spec.trust else {
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
        let mut store = match (&base, source.exclusive) {
            (Some(base), false) => (**base).clone(),
            _ => TrustStore::default(),
        };
        let mut bundles = Vec::new();
        if let Some(reference) = &source.config_map_ref {
            let data = manifests
                .config_maps
                .get(&ObjectKey::new(&key.namespace, &reference.name))
                .ok_or_else(|| {
                    Failure::transient(
                        "trust-source-missing",
                        format!("ConfigMap {} is not among the manifests", reference.name),
                    )
                })?;
            bundles.extend(
                data.values
                    .iter()
                    .map(|(k, v)| (format!("configmap/{k}"), v.clone())),
            );
        }
        if let Some(reference) = &source.secret_ref {
            let data = manifests
                .secrets
                .get(&ObjectKey::new(&key.namespace, &reference.name))
                .ok_or_else(|| {
                    Failure::transient(
                        "trust-source-missing",
                        format!("Secret {} is not among the manifests", reference.name),
                    )
                })?;
            bundles.extend(
                data.values
                    .iter()
                    .map(|(k, v)| (format!("secret/{k}"), v.clone())),
            );
        }
        for (name, bytes) in bundles {
            store
                .add_pem_bundle(&name, &bytes)
                .map_err(|err| Failure::of(&err))?;
        }
        Ok(Arc::new(store))
    }

    fn verify_options(list: &ImageListSubscription, now: Timestamp) -> VerifyOptions {
        let trust = list.spec.trust.as_ref();
        VerifyOptions {
            at: now,
            crl_policy: trust
                .and_then(|t| t.crl_policy.as_deref())
                .and_then(|p| p.parse::<CrlPolicy>().ok())
                .unwrap_or_default(),
            allow_sha1: trust.is_some_and(|t| t.allow_sha1),
        }
    }

    /// The credentials of the Endorsers a list names (missing ones noted).
    fn credentials(
        manifests: &Manifests,
        key: &ObjectKey,
        list: &ImageListSubscription,
    ) -> (Vec<Credential>, Vec<String>) {
        let mut credentials = Vec::new();
        let mut missing = Vec::new();
        for reference in &list.spec.endorsers {
            match manifests
                .endorsers
                .get(&ObjectKey::new(&key.namespace, &reference.name))
            {
                Some(endorser) => {
                    credentials.extend(endorser.spec.credentials.iter().map(|c| Credential {
                        subject: c.subject.clone(),
                        issuer: c.issuer.clone(),
                    }))
                }
                None => missing.push(reference.name.clone()),
            }
        }
        (credentials, missing)
    }

    /// Re-checks the stored list: is it still trusted now (signature,
    /// chain, CRL, expiry, endorsement)? Returns the list or why it no
    /// longer stands (which withdraws its images).
    fn stored_list(
        &self,
        bytes: &[u8],
        trust: &TrustStore,
        options: &VerifyOptions,
        credentials: &[Credential],
    ) -> Result<GoodList, Failure> {
        let verified = trust::verify(bytes, trust, options).map_err(|err| {
            let reason = match err {
                trust::VerifyError::CertificateRevoked { .. } => ExpireReason::SignerRevoked,
                _ => ExpireReason::SignerInvalid,
            };
            Failure::of(&err).withdrawing(reason)
        })?;
        let parsed = imagelist::parse(&verified.content)
            .map_err(|err| Failure::of(&err).withdrawing(ExpireReason::SignerInvalid))?;
        if decision::is_list_expired(&parsed.list, options.at) {
            return Err(Failure::transient(
                "list-expired",
                format!(
                    "the stored list expired at {}",
                    rfc3339(parsed.list.expires)
                ),
            )
            .withdrawing(ExpireReason::ListExpired));
        }
        let signer = SignerIdentity {
            subject: verified.signer.subject.clone(),
            issuer: verified.signer.issuer.clone(),
        };
        if !credentials
            .iter()
            .any(|c| c.subject == signer.subject && c.issuer == signer.issuer)
        {
            return Err(Failure::endorsement(
                "endorser-not-authorised",
                format!("{} is no longer an authorised endorser", signer.subject),
            )
            .withdrawing(ExpireReason::EndorserRemoved));
        }
        Ok(GoodList {
            parsed,
            digest: sha512_hex(bytes),
        })
    }

    /// Fetches, verifies and decides one list; updates its state. Returns
    /// the list to plan with, or the reason its images must go.
    async fn process_list(
        &self,
        manifests: &Manifests,
        key: &ObjectKey,
        list: &ImageListSubscription,
        now: Timestamp,
        report: &mut PassReport,
    ) -> Result<GoodList, Failure> {
        let state_key = key.to_string();
        let mut entry = lock(&self.state)
            .lists
            .get(&state_key)
            .cloned()
            .unwrap_or_default();
        let status = &mut entry.status;
        status.observed_generation = list.metadata.generation;

        let (credentials, missing_endorsers) = Self::credentials(manifests, key, list);
        let options = Self::verify_options(list, now);
        let stored_bytes = entry
            .signed_list_file
            .as_ref()
            .and_then(|_| std::fs::read(self.list_file(key)).ok());
        // How far the list the publisher serves now got, when this pass
        // fetched one and refused it: the conditions describe it.
        let mut refused: Option<Refused> = None;

        let outcome: Result<GoodList, Failure> = async {
            let trust = self.trust_for(manifests, key, list)?;
            if !missing_endorsers.is_empty() && credentials.is_empty() {
                // Every endorser this list relied on is gone.
                return Err(Failure::endorsement(
                    "endorser-missing",
                    format!("Endorser(s) {} not found", missing_endorsers.join(", ")),
                )
                .withdrawing(ExpireReason::EndorserRemoved));
            }
            let transfer = self.transfer_for(manifests, key, list)?;
            // The validators on record are those of the last *accepted*
            // response (a refused response never records its own), so a 304
            // always refers to the stored list, and is only asked for while
            // that list still stands.
            let validators = Validators {
                etag: entry.status.etag.clone(),
                last_modified: entry.status.last_modified.clone(),
            };
            let previous = stored_bytes
                .as_deref()
                .map(|bytes| self.stored_list(bytes, &trust, &options, &credentials));
            let use_validators = matches!(previous, Some(Ok(_)));
            let fetched = transfer
                .fetch_list(
                    &list.spec.url,
                    self.config.max_list_bytes,
                    use_validators.then_some(&validators),
                )
                .await;
            entry.status.last_fetch_time = Some(rfc3339(now));
            let (bytes, fetched_validators) = match fetched {
                Ok(ListFetch::NotModified) => {
                    return match previous {
                        Some(Ok(good)) => Ok(good),
                        Some(Err(failure)) => Err(failure),
                        None => Err(Failure::transient(
                            "fetch-failed",
                            "304 without a stored list",
                        )),
                    };
                }
                Ok(ListFetch::Fetched {
                    bytes, validators, ..
                }) => {
                    // Recorded only once the response is accepted: kept
                    // for a refused one, they would turn the next fetch of
                    // the same bad list into a 304 that passes for the
                    // stored list's.
                    entry.status.etag = None;
                    entry.status.last_modified = None;
                    (bytes, validators)
                }
                Err(err) => {
                    // The old list stays good while the publisher is
                    // unreachable; one that no longer stands still goes.
                    return Err(still_withdrawing(Failure::of(&err), previous.as_ref()));
                }
            };
            let candidate = verify_and_decide(
                &bytes,
                &trust,
                &options,
                &credentials,
                list,
                entry.pinned_identifier.as_deref(),
                previous.as_ref().and_then(|p| p.as_ref().ok()),
                &entry.high_water,
                self.config.max_clock_skew,
            );
            match candidate {
                Ok(Accepted {
                    good,
                    verdict,
                    signer: verified_signer,
                    content,
                }) => {
                    let digest = good.digest.to_bytes();
                    if verdict.stores_list() {
                        // The signed bytes, and the bare JSON they carry
                        // (what the artifact server publishes).
                        let path = self.list_file(key);
                        for (path, bytes) in
                            [(path.with_extension("json"), &content), (path, &bytes)]
                        {
                            write_atomically(&path, bytes).map_err(|err| {
                                Failure::transient(
                                    "state-unwritable",
                                    format!("{}: {err}", path.display()),
                                )
                            })?;
                        }
                        entry.signed_list_file =
                            Some(format!("lists/{}/{}.smime", key.namespace, key.name));
                        entry.pinned_identifier =
                            Some(good.parsed.list.identifier.as_str().to_string());
                        entry.status.list = Some(list_status(&good, &verified_signer, now));
                        decision::raise_high_water(
                            &mut entry.high_water,
                            &good.parsed.list,
                            &digest,
                        );
                        report.lines.push(format!(
                            "{key}: list {} version {} accepted ({})",
                            good.parsed.list.identifier.as_str(),
                            good.parsed.list.version,
                            verdict.kind()
                        ));
                    }
                    if !entry
                        .high_water
                        .iter()
                        .any(|m| m.identifier == good.parsed.list.identifier.as_str())
                    {
                        decision::raise_high_water(
                            &mut entry.high_water,
                            &good.parsed.list,
                            &digest,
                        );
                    }
                    entry.status.etag = fetched_validators.etag;
                    entry.status.last_modified = fetched_validators.last_modified;
                    for warning in verdict.warnings() {
                        report.lines.push(format!("{key}: warning: {warning}"));
                    }
                    Ok(good)
                }
                Err((stage, failure)) => {
                    refused = Some(stage);
                    // A bad update never touches the last good list.
                    Err(still_withdrawing(failure, previous.as_ref()))
                }
            }
        }
        .await;

        let status = &mut entry.status;
        let result = match outcome {
            Ok(good) => {
                set(
                    &mut status.conditions,
                    "SignatureVerified",
                    true,
                    "Verified",
                    "",
                    now,
                );
                set(
                    &mut status.conditions,
                    "Endorsed",
                    true,
                    "Endorsed",
                    "",
                    now,
                );
                set(
                    &mut status.conditions,
                    "Ready",
                    true,
                    "Succeeded",
                    &format!(
                        "list version {} with {} images",
                        good.parsed.list.version,
                        good.parsed.list.images.len()
                    ),
                    now,
                );
                conditions::remove_condition(&mut status.conditions, "Stalled");
                status.images = good.parsed.list.images.iter().map(summary_of).collect();
                status.image_count = status.images.len() as i64;
                status.rejected_images = good
                    .parsed
                    .rejected
                    .iter()
                    .map(|r| RejectedImageReport {
                        index: r.index as u64,
                        identifier: r.identifier.clone(),
                        reason: r.reason.clone(),
                        message: r.message.clone(),
                    })
                    .collect();
                for rejected in &good.parsed.rejected {
                    report.lines.push(format!(
                        "{key}: image {} dropped: {}: {}",
                        rejected.index, rejected.reason, rejected.message
                    ));
                }
                Ok(good)
            }
            Err(failure) => {
                let reason = failure.condition_reason();
                set(
                    &mut status.conditions,
                    "Ready",
                    false,
                    &reason,
                    &failure.message,
                    now,
                );
                let endorsement_failed = failure.concern == Concern::Endorsement;
                match refused {
                    // The served list's signature verifies; its content was
                    // refused (rollback, replay, expired, unauthorised...).
                    Some(Refused::Content) => {
                        set(
                            &mut status.conditions,
                            "SignatureVerified",
                            true,
                            "Verified",
                            "",
                            now,
                        );
                        if !endorsement_failed {
                            set(
                                &mut status.conditions,
                                "Endorsed",
                                true,
                                "Endorsed",
                                "",
                                now,
                            );
                        }
                    }
                    Some(Refused::Signature) => set(
                        &mut status.conditions,
                        "SignatureVerified",
                        false,
                        &reason,
                        &failure.message,
                        now,
                    ),
                    // Nothing fetched (unreachable publisher, or a 304 for a
                    // stored list that no longer stands): the failure is the
                    // stored list's.
                    None => {
                        if failure.concern == Concern::Signature {
                            set(
                                &mut status.conditions,
                                "SignatureVerified",
                                false,
                                &reason,
                                &failure.message,
                                now,
                            );
                        }
                    }
                }
                if endorsement_failed {
                    set(
                        &mut status.conditions,
                        "Endorsed",
                        false,
                        &reason,
                        &failure.message,
                        now,
                    );
                }
                report.lines.push(format!("{key}: {failure}"));
                if failure.withdraws().is_some() {
                    status.images.clear();
                    status.image_count = 0;
                }
                Err(failure)
            }
        };
        let interval = jittered(
            crate::api::duration::parse_duration(&list.spec.interval)
                .unwrap_or(Duration::from_secs(6 * 3600)),
            &state_key,
        );
        let next = now
            .checked_add(
                jiff::SignedDuration::try_from(interval)
                    .unwrap_or(jiff::SignedDuration::from_hours(6)),
            )
            .unwrap_or(now);
        entry.next_fetch = Some(rfc3339(next));
        report.next_due = Some(report.next_due.map_or(next, |due| due.min(next)));
        lock(&self.state).lists.insert(state_key, entry);
        result
    }

    /// Runs one pass over all manifests.
    pub async fn run_pass(
        &mut self,
        manifests: &Manifests,
        now: Timestamp,
    ) -> Result<PassReport, SyncError> {
        let mut report = PassReport::default();
        if let Some(hook) = &self.config.hook {
            hook.notify(&Event::process(EventType::ProcessPrefix));
        }
        if self.crl_refresh_due(now) {
            for outcome in self.refresh_crls().await {
                report.lines.push(crl_outcome_line(&outcome));
            }
        }
        if let Err(err) = self.refresh_trust() {
            report.lines.push(format!(
                "CA directory reload failed, keeping the previous one: {err}"
            ));
        }

        let mut desired = Vec::new();
        let mut good_lists: BTreeMap<ObjectKey, GoodList> = BTreeMap::new();
        for (key, list) in &manifests.lists {
            let Some(subscription) = cache_list_key(key) else {
                continue;
            };
            if list.spec.suspend {
                report.lines.push(format!("{key}: suspended"));
                continue;
            }
            let due = self.config.force
                || lock(&self.state)
                    .lists
                    .get(&key.to_string())
                    .and_then(|entry| entry.next_fetch.as_deref())
                    .and_then(|next| imagelist::parse_timestamp(next).ok())
                    .is_none_or(|next| next <= now);
            if !due {
                // Not due: the stored list still decides, re-checked now.
                // If it no longer stands (expired, revoked, endorser gone),
                // the list is processed now rather than at its next fetch.
                match self.recheck_stored(manifests, key, list, now) {
                    Ok(good) => {
                        desired.push(Desired {
                            subscription: subscription.clone(),
                            state: endorsed_state(manifests, key, list, &good),
                        });
                        good_lists.insert(key.clone(), good);
                        continue;
                    }
                    Err(None) => continue,
                    Err(Some(_)) => {}
                }
            }
            match self
                .process_list(manifests, key, list, now, &mut report)
                .await
            {
                Ok(good) => {
                    desired.push(Desired {
                        subscription: subscription.clone(),
                        state: endorsed_state(manifests, key, list, &good),
                    });
                    good_lists.insert(key.clone(), good);
                }
                Err(failure) => {
                    // Not usable now; withdrawn only when the list no
                    // longer stands.
                    if let Some(reason) = failure.withdraws() {
                        desired.push(Desired {
                            subscription,
                            state: SubscriptionState::Withdrawn(reason),
                        });
                    }
                }
            }
        }
        // Subscriptions whose manifests are gone lose their images.
        let inventory = self.store.inventory()?;
        let known: BTreeSet<(String, String)> = manifests
            .lists
            .keys()
            .map(|k| (k.namespace.clone(), k.name.clone()))
            .collect();
        let mut gone = BTreeSet::new();
        for cached in inventory.iter() {
            let pair = (
                cached.key.namespace.to_string(),
                cached.key.subscription.to_string(),
            );
            if !known.contains(&pair) && gone.insert(pair) {
                desired.push(Desired {
                    subscription: cached.key.cache_list_key(),
                    state: SubscriptionState::Withdrawn(ExpireReason::SubscriptionGone),
                });
            }
        }

        let plan = crate::store::plan(&inventory, &desired, now);
        let mut expired: BTreeMap<ImageKey, (ExpireReason, String)> = BTreeMap::new();
        for (key, reason) in &plan.expire {
            let record = self.store.record(key).ok();
            let event = |kind| {
                record.as_ref().and_then(|r| {
                    image_event(kind, r, r.list.vo.as_deref(), &self.store.image_path(key))
                })
            };
            if let (Some(hook), Some(event)) = (&self.config.hook, event(EventType::ExpirePrefix)) {
                hook.notify(&event);
            }
            match self.store.expire(key, *reason, now) {
                Ok(entry) => {
                    report
                        .lines
                        .push(format!("{key}: expired ({})", reason.code()));
                    expired.insert(key.clone(), (*reason, entry.name.clone()));
                    if let (Some(hook), Some(event)) =
                        (&self.config.hook, event(EventType::ExpirePostfix))
                    {
                        hook.notify(&event);
                    }
                }
                Err(err) => report
                    .lines
                    .push(format!("{key}: expiry failed: {}: {err}", err.reason())),
            }
        }
        let mut failures: BTreeMap<ImageKey, Failure> = BTreeMap::new();
        for download in &plan.download {
            let list_key = ObjectKey::new(
                download.key.namespace.as_str(),
                download.key.subscription.as_str(),
            );
            let (Some(good), Some(list)) =
                (good_lists.get(&list_key), manifests.lists.get(&list_key))
            else {
                continue;
            };
            let Some(image) = good.parsed.list.image(download.key.image.as_str()) else {
                continue;
            };
            match self
                .download(
                    manifests,
                    &list_key,
                    list,
                    good,
                    image,
                    &download.key,
                    now,
                    None,
                )
                .await
            {
                Ok(path) => {
                    report
                        .lines
                        .push(format!("{}: available at {}", download.key, path.display()))
                }
                Err(failure) => {
                    report
                        .lines
                        .push(format!("{}: download failed: {failure}", download.key));
                    // A failed image makes the pass fail even when no
                    // ImageSubscription names it (AutoSubscribe).
                    report
                        .not_ready
                        .push(format!("image {} ({failure})", download.key));
                    failures.insert(download.key.clone(), failure);
                }
            }
        }
        match self.store.prune_expired(&self.config.retention, now) {
            Ok(pruned) if !pruned.deleted.is_empty() => report.lines.push(format!(
                "retention: removed {} expired entries ({} bytes)",
                pruned.deleted.len(),
                pruned.freed_bytes
            )),
            Ok(_) => {}
            Err(err) => report.lines.push(format!("retention failed: {err}")),
        }

        self.update_image_statuses(
            manifests,
            &good_lists,
            &expired,
            &failures,
            now,
            &mut report,
        );
        self.update_endorser_statuses(manifests, now);
        let mut state = lock(&self.state);
        for (key, entry) in &state.lists {
            if manifests.lists.contains_key(&parse_object_key(key))
                && !conditions::is_ready(&entry.status.conditions)
            {
                report
                    .not_ready
                    .push(format!("ImageListSubscription {key}"));
            }
        }
        state
            .lists
            .retain(|key, _| manifests.lists.contains_key(&parse_object_key(key)));
        state.save(&self.config.state_file)?;
        drop(state);
        if let Some(hook) = &self.config.hook {
            hook.notify(&Event::process(EventType::ProcessPostfix));
        }
        Ok(report)
    }

    /// Re-checks the stored list of `key` now. `Err(None)`: there is no
    /// usable stored list (none yet, or its trust inputs are missing);
    /// `Err(Some(..))`: it no longer stands, and why.
    fn recheck_stored(
        &self,
        manifests: &Manifests,
        key: &ObjectKey,
        list: &ImageListSubscription,
        now: Timestamp,
    ) -> Result<GoodList, Option<Failure>> {
        let stored = lock(&self.state)
            .lists
            .get(&key.to_string())
            .is_some_and(|entry| entry.signed_list_file.is_some());
        if !stored {
            return Err(None);
        }
        let bytes = std::fs::read(self.list_file(key)).map_err(|_| None)?;
        let trust = self.trust_for(manifests, key, list).map_err(|_| None)?;
        let (credentials, _) = Self::credentials(manifests, key, list);
        self.stored_list(
            &bytes,
            &trust,
            &Self::verify_options(list, now),
            &credentials,
        )
        .map_err(Some)
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
                let wait = jittered(interval, &dir.display().to_string());
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

    /// Downloads one image of a good list into the cache and promotes it
    /// once its size and sha512 are proven. A partial download stays
    /// resumable unless its bytes are known to be wrong.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn download(
        &self,
        manifests: &Manifests,
        list_key: &ObjectKey,
        list: &ImageListSubscription,
        good: &GoodList,
        image: &Image,
        key: &ImageKey,
        now: Timestamp,
        progress: Option<&ProgressSink>,
    ) -> Result<PathBuf, Failure> {
        let transfer = self.transfer_for(manifests, list_key, list)?;
        self.store
            .check_space_for(key, image.size)
            .map_err(|err| Failure::of(&err))?;
        let partial = self
            .store
            .prepare_partial(key)
            .map_err(|err| Failure::of(&err))?;
        let url = resolve_image_url(&list.spec.url, &image.uri);
        let record = ImageRecord::new(
            key.clone(),
            image,
            &good.parsed.list,
            good.digest.clone(),
            now,
        )
        .map_err(|err| Failure::of(&err))?;
        if let (Some(hook), Some(event)) = (
            &self.config.hook,
            image_event(
                EventType::AvailablePrefix,
                &record,
                good.parsed.list.vo.as_deref(),
                &self.store.image_path(key),
            ),
        ) {
            hook.notify(&event);
        }
        let expected = image.sha512.to_bytes();
        let sink = progress.or(self.config.progress.as_ref());
        let label = key.to_string();
        let result = transfer
            .download(&url, &partial, image.size, &expected, |progress| {
                if let Some(sink) = &sink {
                    (sink.0)(&label, progress.received, progress.total);
                }
            })
            .await;
        if let Err(err) = result {
            if err.proves_bytes_wrong() {
                let _ = self.store.discard_partial(key);
            }
            return Err(Failure::of(&err));
        }
        let path = self
            .store
            .promote(key, &record)
            .map_err(|err| Failure::of(&err))?;
        if let (Some(hook), Some(event)) = (
            &self.config.hook,
            image_event(
                EventType::AvailablePostfix,
                &record,
                good.parsed.list.vo.as_deref(),
                &path,
            ),
        ) {
            hook.notify(&event);
        }
        Ok(path)
    }

    fn update_image_statuses(
        &self,
        manifests: &Manifests,
        good_lists: &BTreeMap<ObjectKey, GoodList>,
        expired: &BTreeMap<ImageKey, (ExpireReason, String)>,
        failures: &BTreeMap<ImageKey, Failure>,
        now: Timestamp,
        report: &mut PassReport,
    ) {
        let inventory = self.store.inventory().unwrap_or_default();
        let mut statuses = BTreeMap::new();
        for (key, subscription) in &manifests.images {
            let mut status: ImageSubscriptionStatus = lock(&self.state)
                .images
                .get(&key.to_string())
                .cloned()
                .unwrap_or_default();
            status.observed_generation = subscription.metadata.generation;
            let list_key = ObjectKey::new(&key.namespace, &subscription.spec.subscription_ref.name);
            let image = good_lists.get(&list_key).and_then(|good| {
                match (&subscription.spec.identifier, &subscription.spec.sha512) {
                    (Some(id), _) => good.parsed.list.image(id),
                    (_, Some(sum)) => good.parsed.list.images_by_sha512(sum).next(),
                    _ => None,
                }
            });
            let cache_key = image.and_then(|image| {
                cache_list_key(&list_key).map(|sub| sub.image(image.identifier.clone()))
            });
            let cached = cache_key.as_ref().and_then(|k| inventory.get(k));
            if let Some(image) = image {
                status.image = Some(summary_of(image));
            }
            if subscription.spec.suspend {
                // Suspended: keep what is there, report it.
            } else if let (Some(k), Some(cached)) = (&cache_key, cached) {
                status.phase = ImagePhase::Available;
                status.progress = None;
                status.artifact = Some(Artifact {
                    path: self.store.image_path(k).display().to_string(),
                    url: self
                        .config
                        .artifact_base_url
                        .as_deref()
                        .map(|base| {
                            format!(
                                "{}/images/{}/{}/{}",
                                base.trim_end_matches('/'),
                                k.namespace,
                                k.subscription,
                                k.image
                            )
                        })
                        .unwrap_or_default(),
                    digest: format!("sha512:{}", cached.sha512.as_str()),
                    size: cached.size,
                    last_update_time: rfc3339(cached.verified_at),
                });
                set(
                    &mut status.conditions,
                    "Available",
                    true,
                    "Verified",
                    "",
                    now,
                );
                set(&mut status.conditions, "Ready", true, "Available", "", now);
            } else if let Some(failure) = cache_key.as_ref().and_then(|k| failures.get(k)) {
                status.phase = ImagePhase::Failed;
                set(
                    &mut status.conditions,
                    "Ready",
                    false,
                    &failure.condition_reason(),
                    &failure.to_string(),
                    now,
                );
            } else {
                // Not available: was it expired, or is the image not endorsed?
                // The image this subscription had, if this pass expired it.
                let previous = status
                    .image
                    .as_ref()
                    .and_then(|image| ImageId::new(&image.identifier).ok())
                    .and_then(|id| cache_list_key(&list_key).map(|sub| sub.image(id)));
                let expired_now = status
                    .artifact
                    .as_ref()
                    .and(previous.as_ref())
                    .and_then(|k| expired.get(k));
                if let Some((reason, path)) = expired_now {
                    let sha = status
                        .artifact
                        .as_ref()
                        .map(|a| a.digest.clone())
                        .unwrap_or_default();
                    status.history.insert(
                        0,
                        ExpiredRecord {
                            sha512: sha,
                            reason: reason.code().into(),
                            expired_at: rfc3339(now),
                            archived_path: path.clone(),
                        },
                    );
                    status.history.truncate(crate::api::MAX_HISTORY);
                }
                let (phase, reason, message) = if image.is_none() {
                    (
                        ImagePhase::Expired,
                        "NotEndorsed",
                        format!("no endorsed image matches in {list_key}"),
                    )
                } else {
                    (
                        ImagePhase::Pending,
                        "Pending",
                        "waiting for download".to_string(),
                    )
                };
                if status.artifact.is_some() || phase == ImagePhase::Expired {
                    status.artifact = None;
                }
                status.phase = if status.history.is_empty() && phase == ImagePhase::Expired {
                    ImagePhase::Pending
                } else {
                    phase
                };
                set(
                    &mut status.conditions,
                    "Available",
                    false,
                    reason,
                    &message,
                    now,
                );
                set(
                    &mut status.conditions,
                    "Ready",
                    false,
                    reason,
                    &message,
                    now,
                );
            }
            if !conditions::is_ready(&status.conditions) {
                report.not_ready.push(format!("ImageSubscription {key}"));
            }
            statuses.insert(key.to_string(), status);
        }
        lock(&self.state).images = statuses;
    }

    fn update_endorser_statuses(&self, manifests: &Manifests, now: Timestamp) {
        let mut statuses = BTreeMap::new();
        for (key, endorser) in &manifests.endorsers {
            let mut status: EndorserStatus = lock(&self.state)
                .endorsers
                .get(&key.to_string())
                .cloned()
                .unwrap_or_default();
            status.observed_generation = endorser.metadata.generation;
            status.credential_count = endorser.spec.credentials.len() as i64;
            status.authorises = manifests
                .lists
                .iter()
                .filter(|(k, l)| {
                    k.namespace == key.namespace
                        && l.spec.endorsers.iter().any(|e| e.name == key.name)
                })
                .map(|(k, _)| k.name.clone())
                .collect();
            let malformed: Vec<&str> = endorser
                .spec
                .credentials
                .iter()
                .filter(|c| {
                    !trust::dn::is_one_line_dn(&c.subject) || !trust::dn::is_one_line_dn(&c.issuer)
                })
                .map(|c| c.subject.as_str())
                .collect();
            if malformed.is_empty() {
                set(
                    &mut status.conditions,
                    "Ready",
                    true,
                    "CredentialsValid",
                    "",
                    now,
                );
            } else {
                set(
                    &mut status.conditions,
                    "Ready",
                    false,
                    "CredentialsInvalid",
                    &format!("not one-line DNs: {}", malformed.join(", ")),
                    now,
                );
            }
            statuses.insert(key.to_string(), status);
        }
        lock(&self.state).endorsers = statuses;
    }
}

/// A list's standing, as the operator's image reconciles see it.
#[derive(Clone, Debug)]
pub(crate) enum ListView {
    /// Verified and endorsed now: its images may be cached.
    Good(Arc<GoodList>),
    /// Its images must leave the endorsed area, for this reason.
    Withdrawn(ExpireReason, Failure),
    /// Not usable now (never imported, publisher unreachable, a bad first
    /// update), but nothing withdrew what is cached.
    Unavailable(Failure),
}

impl ListView {
    /// Withdrawn for `reason`, with its code as the failure code.
    pub(crate) fn withdrawn(reason: ExpireReason, message: &str) -> Self {
        Self::Withdrawn(reason, Failure::withdrawn(reason, message))
    }
}

/// What [`Engine::refresh_list`] did to one list.
#[derive(Debug)]
pub(crate) struct ListRefresh {
    /// The list's status after this step.
    pub(crate) status: crate::api::ImageListSubscriptionStatus,
    pub(crate) view: ListView,
    /// Human-readable notes (accepted versions, dropped images, warnings).
    pub(crate) lines: Vec<String>,
    /// Whether the list was fetched, rather than the stored one re-checked.
    pub(crate) fetched: bool,
    pub(crate) next_fetch: Option<Timestamp>,
}

impl Engine {
    /// One list, for the operator: fetched when due (or `force`d), else
    /// the stored list re-checked now (a stored list that no longer
    /// stands is fetched at once). The caller saves the state.
    pub(crate) async fn refresh_list(
        &self,
        manifests: &Manifests,
        key: &ObjectKey,
        list: &ImageListSubscription,
        force: bool,
        now: Timestamp,
    ) -> ListRefresh {
        let entry = lock(&self.state).lists.get(&key.to_string()).cloned();
        let next_of = |entry: Option<&super::state::ListState>| {
            entry
                .and_then(|e| e.next_fetch.as_deref())
                .and_then(|next| imagelist::parse_timestamp(next).ok())
        };
        let next_fetch = next_of(entry.as_ref());
        if !force && next_fetch.is_some_and(|next| next > now) {
            let status = entry.map(|e| e.status).unwrap_or_default();
            match self.recheck_stored(manifests, key, list, now) {
                Ok(good) => {
                    return ListRefresh {
                        status,
                        view: ListView::Good(Arc::new(good)),
                        lines: Vec::new(),
                        fetched: false,
                        next_fetch,
                    };
                }
                Err(None) => {
                    let failure = conditions::find(&status.conditions, "Ready")
                        .map(|ready| Failure {
                            reason: ready.reason.clone().into(),
                            message: ready.message.clone(),
                            class: FailureClass::Transient,
                            concern: Concern::Other,
                        })
                        .unwrap_or_else(|| {
                            Failure::transient("no-stored-list", "no list has been imported yet")
                        });
                    return ListRefresh {
                        status,
                        view: ListView::Unavailable(failure),
                        lines: Vec::new(),
                        fetched: false,
                        next_fetch,
                    };
                }
                Err(Some(_)) => {}
            }
        }
        let mut report = PassReport::default();
        let result = self
            .process_list(manifests, key, list, now, &mut report)
            .await;
        let entry = lock(&self.state)
            .lists
            .get(&key.to_string())
            .cloned()
            .unwrap_or_default();
        let view = match result {
            Ok(good) => ListView::Good(Arc::new(good)),
            Err(failure) => match failure.withdraws() {
                Some(reason) => ListView::Withdrawn(reason, failure),
                None => ListView::Unavailable(failure),
            },
        };
        ListRefresh {
            next_fetch: next_of(Some(&entry)),
            status: entry.status,
            view,
            lines: report.lines,
            fetched: true,
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
    pub(crate) fn save_state(&self) -> Result<(), SyncError> {
        lock(&self.state).save(&self.config.state_file)?;
        Ok(())
    }

    /// Forgets a deleted list: its state entry and its stored signed list.
    pub(crate) fn forget_list(&self, key: &ObjectKey) -> Result<(), SyncError> {
        lock(&self.state).lists.remove(&key.to_string());
        let path = self.list_file(key);
        for path in [path.with_extension("json"), path] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(SyncError::State(super::state::StateError::Write {
                        path,
                        source,
                    }));
                }
            }
        }
        self.save_state()
    }
}

/// The interval plus up to 10% more, fixed per subscription (a hash of its
/// key): sites started by the same cron minute do not all hit a publisher
/// at once, and one subscription keeps a steady rhythm.
/// `failure`, withdrawing the list's images too when the stored list no
/// longer stands (`previous`, the stored list re-checked now).
fn still_withdrawing(failure: Failure, previous: Option<&Result<GoodList, Failure>>) -> Failure {
    match previous
        .and_then(|stored| stored.as_ref().err())
        .and_then(Failure::withdraws)
    {
        Some(reason) => failure.withdrawing(reason),
        None => failure,
    }
}

/// The file whose mtime records the last CRL refresh.
const CRL_REFRESH_STAMP: &str = ".refreshed";

/// One report line for a CA's CRL refresh.
fn crl_outcome_line(outcome: &crate::crl_refresh::CaOutcome) -> String {
    use crate::crl_refresh::Outcome;
    match &outcome.outcome {
        Outcome::Updated {
            file, next_update, ..
        } => format!(
            "CRL of {}: refreshed into {file} (next update {})",
            outcome.issuer,
            next_update.map_or_else(
                || "not given".to_string(),
                |next| rfc3339(crate::trust::verify::timestamp(next))
            )
        ),
        Outcome::Unchanged { .. } => format!("CRL of {}: unchanged", outcome.issuer),
        Outcome::Failed { reason, detail } => format!(
            "CRL of {}: refresh failed ({reason}), keeping the CRL in use: {detail}",
            outcome.issuer
        ),
    }
}

pub fn jittered(interval: Duration, key: &str) -> Duration {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let spread = interval.as_millis() / 10;
    let extra = u64::try_from(spread)
        .ok()
        .filter(|spread| *spread > 0)
        .map_or(0, |spread| hash % spread);
    interval + Duration::from_millis(extra)
}

/// The store key of a list subscription (its names are already validated).
pub(crate) fn cache_list_key(key: &ObjectKey) -> Option<ListKey> {
    Some(ListKey::new(
        Namespace::new(&key.namespace).ok()?,
        SubscriptionName::new(&key.name).ok()?,
    ))
}

fn parse_object_key(text: &str) -> ObjectKey {
    let (namespace, name) = text.split_once('/').unwrap_or(("", text));
    ObjectKey::new(namespace, name)
}

/// Relative `hv:uri` values resolve against the list URL, as a browser
/// resolves a link; absolute ones are used as they are.
pub fn resolve_image_url(list_url: &str, image_uri: &str) -> String {
    if image_uri.contains("://") {
        return image_uri.to_string();
    }
    match reqwest::Url::parse(list_url).and_then(|base| base.join(image_uri)) {
        Ok(url) => url.to_string(),
        Err(_) => image_uri.to_string(),
    }
}

fn image_event(
    kind: EventType,
    record: &ImageRecord,
    vo: Option<&str>,
    path: &Path,
) -> Option<Event> {
    Some(Event::image_value(
        kind,
        &record.image,
        record.list.identifier.as_str(),
        vo,
        &path.display().to_string(),
    ))
}

fn list_status(good: &GoodList, signer: &trust::Signer, now: Timestamp) -> ListStatus {
    let list = &good.parsed.list;
    ListStatus {
        identifier: list.identifier.as_str().to_string(),
        title: list.title.clone(),
        version: list.version.clone(),
        created: rfc3339(list.created),
        expires: rfc3339(list.expires),
        uri: list.uri.clone(),
        vo: list.vo.clone(),
        signer: ListSigner {
            subject: signer.subject.clone(),
            issuer: signer.issuer.clone(),
            serial: signer.serial.clone(),
            not_after: rfc3339(signer.not_after),
        },
        digest: format!("sha512:{}", good.digest.as_str()),
        imported_at: rfc3339(now),
    }
}

/// The desired state of a list's images: explicit ImageSubscriptions plus
/// AutoSubscribe's selection.
pub(crate) fn endorsed_state(
    manifests: &Manifests,
    key: &ObjectKey,
    list: &ImageListSubscription,
    good: &GoodList,
) -> SubscriptionState {
    let images = &good.parsed.list.images;
    let mut wanted_ids: BTreeSet<ImageId> = BTreeSet::new();
    for subscription in manifests.images.iter().filter(|(k, s)| {
        k.namespace == key.namespace && s.spec.subscription_ref.name == key.name && !s.spec.suspend
    }) {
        let (_, subscription) = subscription;
        match (&subscription.spec.identifier, &subscription.spec.sha512) {
            (Some(id), _) => {
                if let Some(image) = good.parsed.list.image(id) {
                    wanted_ids.insert(image.identifier.clone());
                }
            }
            (_, Some(sum)) => wanted_ids.extend(
                good.parsed
                    .list
                    .images_by_sha512(sum)
                    .map(|i| i.identifier.clone()),
            ),
            _ => {}
        }
    }
    wanted_ids.extend(auto_selected(list, images).map(|image| image.identifier.clone()));
    SubscriptionState::Endorsed {
        list_expires: good.parsed.list.expires,
        wanted: images
            .iter()
            .filter(|image| wanted_ids.contains(&image.identifier))
            .map(|image| WantedImage {
                image: image.identifier.clone(),
                sha512: image.sha512.clone(),
                size: image.size,
                expires: image.expires,
            })
            .collect(),
        listed: images
            .iter()
            .map(|image| image.identifier.clone())
            .collect(),
    }
}

/// The images AutoSubscribe selects from a list (none under Manual): all,
/// or those matching the selector (os and arch case-insensitively, the
/// title by regular expression).
pub(crate) fn auto_selected<'a>(
    list: &ImageListSubscription,
    images: &'a [Image],
) -> impl Iterator<Item = &'a Image> {
    let auto = list.spec.image_policy == ImagePolicy::AutoSubscribe;
    let selector = list.spec.image_selector.clone().unwrap_or_default();
    let pattern = selector
        .title_pattern
        .as_deref()
        .and_then(|p| regex::Regex::new(p).ok());
    images.iter().filter(move |image| {
        if !auto {
            return false;
        }
        let value = serde_json::to_value(image).unwrap_or_default();
        let field = |k: &str| {
            value
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        let os_ok = selector.os.is_empty()
            || selector
                .os
                .iter()
                .any(|o| o.to_ascii_lowercase() == field("sl:os"));
        let arch_ok = selector.arch.is_empty()
            || selector
                .arch
                .iter()
                .any(|a| a.to_ascii_lowercase() == field("sl:arch"));
        let title_ok = pattern.as_ref().is_none_or(|p| p.is_match(&image.title));
        os_ok && arch_ok && title_ok
    })
}

/// How far a fetched list got before it was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// Its signature, certificate chain or CRL check failed.
    Signature,
    /// It verifies, but its content was refused (unparseable, or by the
    /// update rules).
    Content,
}

/// A fetched list that passed verification and the update rules.
struct Accepted {
    good: GoodList,
    verdict: Verdict,
    /// The verified signer.
    signer: trust::Signer,
    /// The signed content (the bare JSON).
    content: Vec<u8>,
}

/// Verifies fetched bytes and applies the update rules, against the stored
/// list (when it still stands) and the subscription's high-water marks.
#[allow(clippy::too_many_arguments)]
fn verify_and_decide(
    bytes: &[u8],
    trust: &TrustStore,
    options: &VerifyOptions,
    credentials: &[Credential],
    list: &ImageListSubscription,
    pinned: Option<&str>,
    previous: Option<&GoodList>,
    high_water: &[HighWaterMark],
    skew: Duration,
) -> Result<Accepted, (Refused, Failure)> {
    let verified = trust::verify(bytes, trust, options)
        .map_err(|err| (Refused::Signature, Failure::of(&err)))?;
    let parsed =
        imagelist::parse(&verified.content).map_err(|err| (Refused::Content, Failure::of(&err)))?;
    let digest = sha512_hex(bytes);
    let signer = SignerIdentity {
        subject: verified.signer.subject.clone(),
        issuer: verified.signer.issuer.clone(),
    };
    let pinned = list.spec.identifier.as_deref().or(pinned);
    let digest_bytes = digest.to_bytes();
    let previous_digest = previous.map(|p| p.digest.to_bytes());
    let input = DecisionInput {
        list: &parsed.list,
        digest: &digest_bytes,
        signer: &signer,
        endorsers: credentials,
        pinned_identifier: pinned,
        previous: previous
            .zip(previous_digest.as_ref())
            .map(|(p, d)| StoredList {
                list: &p.parsed.list,
                digest: d,
            }),
        high_water,
        subscription_url: Some(&list.spec.url),
        now: options.at,
        max_clock_skew: skew,
    };
    let verdict = decision::decide(&input).map_err(|err| (Refused::Content, Failure::of(&err)))?;
    Ok(Accepted {
        good: GoodList { parsed, digest },
        verdict,
        signer: verified.signer,
        content: verified.content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_bounded_stable_and_spread() {
        let interval = Duration::from_secs(3600);
        let a = jittered(interval, "default/a");
        assert!(a >= interval && a < interval + Duration::from_secs(360));
        assert_eq!(a, jittered(interval, "default/a"));
        assert_ne!(a, jittered(interval, "default/b"));
        assert_eq!(jittered(Duration::ZERO, "x"), Duration::ZERO);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_ca_directory_missing_at_start_is_opened_when_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let config = SyncConfig {
            cache_dir: dir.path().join("cache"),
            ca_dir: dir.path().join("ca"),
            state_file: dir.path().join("state.json"),
            hook: None,
            allow_file_urls: false,
            max_list_bytes: DEFAULT_MAX_LIST_BYTES,
            max_clock_skew: Duration::from_secs(300),
            retention: RetentionPolicy::default(),
            force: false,
            transfer: TransferConfig::default(),
            progress: None,
            artifact_base_url: None,
            crl_dir: Some(dir.path().join("crls")),
            crl_refresh_interval: None,
        };
        let (engine, notes) = Engine::open(config).unwrap();
        assert!(
            notes
                .iter()
                .any(|note| note.contains("trust store unavailable"))
        );
        assert!(engine.refresh_trust().is_err());
        // The ConfigMap arrives.
        std::fs::create_dir(dir.path().join("ca")).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/testdata/real-lists/ca/dd4b34ea.0"),
            dir.path().join("ca/dd4b34ea.0"),
        )
        .unwrap();
        assert!(engine.refresh_trust().unwrap());
        assert!(!engine.refresh_trust().unwrap());
    }

    #[test]
    fn relative_image_uris_resolve_against_the_list() {
        assert_eq!(
            resolve_image_url("https://h.example/vo/image.list", "images/a.img"),
            "https://h.example/vo/images/a.img"
        );
        assert_eq!(
            resolve_image_url("https://h.example/vo/image.list", "https://other/x"),
            "https://other/x"
        );
    }
}
