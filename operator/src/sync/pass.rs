//! One pass of `vmlisub sync`: refresh every list through the subscription
//! core, plan the whole cache at once, expire and download, apply
//! retention, run the hooks, and record every object's status in the
//! state file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use kube::ResourceExt as _;

use super::manifest::Manifests;
use crate::api::conditions;
use crate::api::{
    Endorser, EndorserStatus, ImagePhase, ImageSubscription, ImageSubscriptionStatus,
};
use crate::hooks::{Event, EventType, Hook};
use crate::imagelist::{Image, ImageId};
use crate::reason::Reason as _;
use crate::store::{
    Desired, ExpireReason, ImageKey, ImageRecord, RetentionPolicy, SubscriptionState,
};
use crate::subscription::select::{self, cache_list_key};
use crate::subscription::status;
use crate::subscription::{
    CoreConfig, CoreError, DownloadObserver, Failure, GoodList, ListInputs, ListView, ObjectKey,
    SecretData, Sources, Subscriptions, TransferSettings,
};

/// A progress callback: (image key, bytes so far, total bytes).
pub type ProgressFn = dyn Fn(&str, u64, u64) + Send + Sync;

/// Receives download progress (a terminal progress line, say).
#[derive(Clone)]
pub struct ProgressSink(pub Arc<ProgressFn>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

/// How `vmlisub sync` runs.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub core: CoreConfig,
    pub hook: Option<Hook>,
    pub retention: RetentionPolicy,
    /// Fetch every list now, whatever its interval says.
    pub force: bool,
    pub progress: Option<ProgressSink>,
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

/// The standalone driver: the subscription core plus what only the CLI
/// has (hooks, a progress line, retention per pass, `force`).
pub struct Syncer {
    core: Subscriptions,
    hook: Option<Hook>,
    retention: RetentionPolicy,
    force: bool,
    progress: Option<ProgressSink>,
}

/// A namespace of the manifests, as the objects a list may name.
struct ManifestSources<'m> {
    manifests: &'m Manifests,
    namespace: &'m str,
}

impl Sources for ManifestSources<'_> {
    fn secret(&self, name: &str) -> Option<&SecretData> {
        self.manifests
            .secrets
            .get(&ObjectKey::new(self.namespace, name))
    }
    fn config_map(&self, name: &str) -> Option<&SecretData> {
        self.manifests
            .config_maps
            .get(&ObjectKey::new(self.namespace, name))
    }
    fn endorser(&self, name: &str) -> Option<&Endorser> {
        self.manifests
            .endorsers
            .get(&ObjectKey::new(self.namespace, name))
    }
}

/// The ImageSubscriptions of one list in the manifests.
pub fn images_of<'m>(
    manifests: &'m Manifests,
    key: &ObjectKey,
) -> impl Iterator<Item = &'m ImageSubscription> {
    let key = key.clone();
    manifests
        .images
        .iter()
        .filter(move |(k, s)| {
            k.namespace == key.namespace && s.spec.subscription_ref.name == key.name
        })
        .map(|(_, s)| s)
}

/// A hook event for an image of the cache.
fn image_event(kind: EventType, record: &ImageRecord, path: &Path) -> Event {
    Event::of_record(kind, record, path)
}

/// Runs the hooks around a download and draws its progress.
struct PassObserver<'a> {
    hook: Option<&'a Hook>,
    progress: Option<&'a ProgressSink>,
    label: String,
}

impl DownloadObserver for PassObserver<'_> {
    fn starting(&self, record: &ImageRecord, path: &Path) {
        if let Some(hook) = self.hook {
            hook.notify(&image_event(EventType::AvailablePrefix, record, path));
        }
    }
    fn progress(&self, received: u64, total: u64) {
        if let Some(sink) = self.progress {
            (sink.0)(&self.label, received, total);
        }
    }
    fn promoted(&self, record: &ImageRecord, path: &Path) {
        if let Some(hook) = self.hook {
            hook.notify(&image_event(EventType::AvailablePostfix, record, path));
        }
    }
}

impl Syncer {
    /// Opens the cache (recovering from a crash) and the state.
    pub fn open(config: SyncConfig) -> Result<(Self, Vec<String>), CoreError> {
        let (core, notes) = Subscriptions::open(config.core)?;
        Ok((
            Self {
                core,
                hook: config.hook,
                retention: config.retention,
                force: config.force,
                progress: config.progress,
            },
            notes,
        ))
    }

    /// Runs one pass over all manifests.
    pub async fn run_pass(
        &mut self,
        manifests: &Manifests,
        now: Timestamp,
    ) -> Result<PassReport, CoreError> {
        let mut report = PassReport::default();
        if let Some(hook) = &self.hook {
            hook.notify(&Event::process(EventType::ProcessPrefix));
        }
        if self.core.crl_refresh_due(now) {
            for outcome in self.core.refresh_crls().await {
                report.lines.push(crl_outcome_line(&outcome));
            }
        }
        if let Err(err) = self.core.refresh_trust() {
            report.lines.push(format!(
                "CA directory reload failed, keeping the previous one: {err}"
            ));
        }

        let mut desired = Vec::new();
        let mut good_lists: BTreeMap<ObjectKey, Arc<GoodList>> = BTreeMap::new();
        let mut transfers: BTreeMap<ObjectKey, Result<TransferSettings, Failure>> = BTreeMap::new();
        for (key, list) in &manifests.lists {
            let Some(subscription) = cache_list_key(key) else {
                continue;
            };
            if list.spec.suspend {
                report.lines.push(format!("{key}: suspended"));
                continue;
            }
            let sources = ManifestSources {
                manifests,
                namespace: &key.namespace,
            };
            let inputs = ListInputs::gather(key, list, &sources);
            let refresh = self.core.refresh_list(&inputs, self.force, now).await;
            report.lines.extend(refresh.lines);
            if let Some(next) = refresh.next_fetch {
                report.next_due = Some(report.next_due.map_or(next, |due| due.min(next)));
            }
            match refresh.view {
                ListView::Good(good) => {
                    desired.push(Desired {
                        subscription,
                        state: select::endorsed_state(list, &good, images_of(manifests, key)),
                    });
                    good_lists.insert(key.clone(), good);
                }
                // Withdrawn only when the list no longer stands.
                ListView::Withdrawn(reason, _) => desired.push(Desired {
                    subscription,
                    state: SubscriptionState::Withdrawn(reason),
                }),
                ListView::Unavailable(_) => {}
            }
            transfers.insert(key.clone(), inputs.transfer);
        }
        // Subscriptions whose manifests are gone lose their images.
        let inventory = self.core.store().inventory()?;
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
        let expired = self.expire(&plan.expire, now, &mut report);
        let mut failures: BTreeMap<ImageKey, Failure> = BTreeMap::new();
        for download in &plan.download {
            let list_key = ObjectKey::new(
                download.key.namespace.as_str(),
                download.key.subscription.as_str(),
            );
            let (Some(good), Some(list), Some(transfer)) = (
                good_lists.get(&list_key),
                manifests.lists.get(&list_key),
                transfers.get(&list_key),
            ) else {
                continue;
            };
            let Some(image) = good.parsed.list.image(download.key.image.as_str()) else {
                continue;
            };
            let observer = PassObserver {
                hook: self.hook.as_ref(),
                progress: self.progress.as_ref(),
                label: download.key.to_string(),
            };
            let downloaded = self
                .core
                .download(
                    &crate::subscription::Download {
                        transfer,
                        list_url: &list.spec.url,
                        good,
                        image,
                        key: &download.key,
                        now,
                    },
                    &observer,
                )
                .await;
            match downloaded {
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
        match self.core.store().prune_expired(&self.retention, now) {
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
        self.run_exports(manifests, &good_lists, now, &mut report)
            .await;
        self.update_endorser_statuses(manifests, now);
        let mut state = self.core.state();
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
        drop(state);
        self.core.save_state()?;
        if let Some(hook) = &self.hook {
            hook.notify(&Event::process(EventType::ProcessPostfix));
        }
        Ok(report)
    }

    /// Expires what the plan says, with the hooks around each; returns the
    /// archive entry of each expired image.
    fn expire(
        &self,
        plan: &[(ImageKey, ExpireReason)],
        now: Timestamp,
        report: &mut PassReport,
    ) -> BTreeMap<ImageKey, (ExpireReason, String)> {
        let store = self.core.store();
        let mut expired = BTreeMap::new();
        for (key, reason) in plan {
            let record = store.record(key).ok();
            let notify = |kind| {
                if let (Some(hook), Some(record)) = (&self.hook, &record) {
                    hook.notify(&image_event(kind, record, &store.image_path(key)));
                }
            };
            notify(EventType::ExpirePrefix);
            match store.expire(key, *reason, now) {
                Ok(entry) => {
                    report
                        .lines
                        .push(format!("{key}: expired ({})", reason.code()));
                    expired.insert(key.clone(), (*reason, entry.name.clone()));
                    notify(EventType::ExpirePostfix);
                }
                Err(err) => report
                    .lines
                    .push(format!("{key}: expiry failed: {}: {err}", err.reason())),
            }
        }
        expired
    }

    fn update_image_statuses(
        &self,
        manifests: &Manifests,
        good_lists: &BTreeMap<ObjectKey, Arc<GoodList>>,
        expired: &BTreeMap<ImageKey, (ExpireReason, String)>,
        failures: &BTreeMap<ImageKey, Failure>,
        now: Timestamp,
        report: &mut PassReport,
    ) {
        let store = self.core.store();
        let inventory = store.inventory().unwrap_or_default();
        let base_url = self.core.config().artifact_base_url.as_deref();
        let mut statuses = BTreeMap::new();
        for (key, subscription) in &manifests.images {
            let mut status: ImageSubscriptionStatus = self
                .core
                .state()
                .images
                .get(&key.to_string())
                .cloned()
                .unwrap_or_default();
            status.observed_generation = subscription.metadata.generation;
            let list_key = ObjectKey::new(&key.namespace, &subscription.spec.subscription_ref.name);
            let list_cache_key = cache_list_key(&list_key);
            let image: Option<&Image> = good_lists
                .get(&list_key)
                .and_then(|good| select::resolve(subscription, good));
            let cache_key = image.and_then(|image| {
                list_cache_key
                    .as_ref()
                    .map(|sub| sub.image(image.identifier.clone()))
            });
            let cached = cache_key.as_ref().and_then(|k| inventory.get(k));
            if let Some(image) = image {
                status.image = Some(status::summary_of(image));
            }
            if subscription.spec.suspend {
                // Suspended: keep what is there, report it.
            } else if let (Some(k), Some(cached)) = (&cache_key, cached) {
                let path = store.image_path(k);
                let artifact = status::artifact(
                    base_url,
                    &path,
                    k,
                    &cached.sha512,
                    cached.size,
                    cached.verified_at,
                );
                let disk =
                    crate::subscription::disk::describe(status.artifact.as_ref(), &artifact, &path);
                let artifact = status::with_disk(artifact, disk);
                status::image_available(&mut status, artifact, now);
            } else if let Some(failure) = cache_key.as_ref().and_then(|k| failures.get(k)) {
                status::image_failed(&mut status, failure, now);
            } else {
                // Not available: was it expired, or is the image not endorsed?
                // The image this subscription had, if this pass expired it.
                let previous = status
                    .image
                    .as_ref()
                    .and_then(|image| ImageId::new(&image.identifier).ok())
                    .and_then(|id| list_cache_key.as_ref().map(|sub| sub.image(id)));
                let expired_now = status
                    .artifact
                    .as_ref()
                    .and(previous.as_ref())
                    .and_then(|k| expired.get(k));
                if let Some((reason, archived)) = expired_now {
                    status::record_history(&mut status, *reason, archived, now);
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
                status.artifact = None;
                // Expired once it held an image; Pending if it never did.
                let phase = if status.history.is_empty() && phase == ImagePhase::Expired {
                    ImagePhase::Pending
                } else {
                    phase
                };
                status::image_unavailable(&mut status, phase, reason, &message, now);
            }
            if !conditions::is_ready(&status.conditions) {
                report.not_ready.push(format!("ImageSubscription {key}"));
            }
            statuses.insert(key.to_string(), status);
        }
        self.core.state().images = statuses;
    }

    /// Runs the Glance exports of `spec.export.glance`, with the Secrets
    /// of the manifests, and records them in `status.export` and the
    /// `Exported` condition.
    async fn run_exports(
        &self,
        manifests: &Manifests,
        good_lists: &BTreeMap<ObjectKey, Arc<GoodList>>,
        now: Timestamp,
        report: &mut PassReport,
    ) {
        use crate::export::glance;
        let mut clients: BTreeMap<String, Result<glance::Glance, String>> = BTreeMap::new();
        for (key, subscription) in &manifests.images {
            let Some(spec) = subscription
                .spec
                .export
                .as_ref()
                .and_then(|export| export.glance.as_ref())
            else {
                continue;
            };
            if subscription.spec.suspend {
                continue;
            }
            let Some(status) = self.core.state().images.get(&key.to_string()).cloned() else {
                continue;
            };
            let list_key = ObjectKey::new(&key.namespace, &subscription.spec.subscription_ref.name);
            let image = good_lists
                .get(&list_key)
                .and_then(|good| select::resolve(subscription, good));
            let Some((identifier, target)) = glance::target_of(&status, image) else {
                continue;
            };
            let previous = status.export.as_ref().and_then(|e| e.glance.as_ref());
            // One Keystone login per configuration and pass.
            let client_key = format!(
                "{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}",
                key.namespace,
                spec.credentials_secret_ref.name,
                spec.ca_secret_ref.as_ref().map(|r| &r.name),
                spec.endpoint,
                spec.auth_url,
                spec.region,
                spec.interface
            );
            if !clients.contains_key(&client_key) {
                let secret =
                    |name: &str| manifests.secrets.get(&ObjectKey::new(&key.namespace, name));
                let connected = match secret(&spec.credentials_secret_ref.name) {
                    None => Err(glance::GlanceError::Config {
                        detail: format!(
                            "Secret {}/{} is not in the manifests",
                            key.namespace, spec.credentials_secret_ref.name
                        ),
                    }),
                    Some(credentials) => {
                        let ca = spec.ca_secret_ref.as_ref().and_then(|r| secret(&r.name));
                        match glance::connection(spec, credentials, ca) {
                            Ok(connection) => {
                                glance::Glance::connect(&connection, &self.core.config().transfer)
                                    .await
                            }
                            Err(err) => Err(err),
                        }
                    }
                };
                clients.insert(
                    client_key.clone(),
                    connected.map_err(|err| format!("{}: {err}", err.reason())),
                );
            }
            let list = list_key.to_string();
            let source = glance::Source {
                list: &list,
                identifier,
                target,
            };
            let exported = match clients.get(&client_key) {
                Some(Ok(client)) => {
                    glance::export(
                        client,
                        spec,
                        &source,
                        previous,
                        &glance::Timing::default(),
                        now,
                    )
                    .await
                }
                Some(Err(message)) => crate::api::export::GlanceExportStatus {
                    state: crate::api::export::GlanceExportState::Failed,
                    last_error: Some(message.clone()),
                    last_sync_time: crate::imagelist::format_timestamp(now),
                    ..previous.cloned().unwrap_or_default()
                },
                None => continue,
            };
            report.lines.push(export_line(key, &exported));
            if exported.state == crate::api::export::GlanceExportState::Failed {
                report
                    .not_ready
                    .push(format!("Glance export of ImageSubscription {key}"));
            }
            let mut state = self.core.state();
            if let Some(status) = state.images.get_mut(&key.to_string()) {
                conditions::set_condition(
                    &mut status.conditions,
                    glance::exported_condition(&exported, now),
                );
                status.export.get_or_insert_with(Default::default).glance = Some(exported);
            }
        }
    }

    fn update_endorser_statuses(&self, manifests: &Manifests, now: Timestamp) {
        let mut statuses = BTreeMap::new();
        for (key, endorser) in &manifests.endorsers {
            let previous: Option<EndorserStatus> =
                self.core.state().endorsers.get(&key.to_string()).cloned();
            let auto_for = endorser.labels().get(crate::api::LIST_LABEL).cloned();
            let lists = manifests
                .lists
                .iter()
                .filter(|(k, _)| k.namespace == key.namespace)
                .map(|(k, list)| (k.name.as_str(), list));
            let authorises = status::authorises(&key.name, auto_for.as_deref(), lists);
            statuses.insert(
                key.to_string(),
                status::endorser_status(previous.as_ref(), endorser, authorises, now),
            );
        }
        self.core.state().endorsers = statuses;
    }
}

/// The report line of a Glance export.
fn export_line(key: &ObjectKey, status: &crate::api::export::GlanceExportStatus) -> String {
    let image = status.image_id.as_deref().unwrap_or("-");
    let mut line = format!("{key}: glance: {:?} image {image}", status.state);
    if let Some(method) = &status.method {
        line.push_str(&format!(" ({method})"));
    }
    if let Some(retired) = &status.retired {
        line.push_str(&format!("; older versions: {retired}"));
    }
    if let Some(error) = &status.last_error {
        line.push_str(&format!("; {error}"));
    }
    line
}

fn parse_object_key(text: &str) -> ObjectKey {
    let (namespace, name) = text.split_once('/').unwrap_or(("", text));
    ObjectKey::new(namespace, name)
}

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
                |next| crate::imagelist::format_timestamp(crate::trust::verify::timestamp(next))
            )
        ),
        Outcome::Unchanged { .. } => format!("CRL of {}: unchanged", outcome.issuer),
        Outcome::Failed { reason, detail } => format!(
            "CRL of {}: refresh failed ({reason}), keeping the CRL in use: {detail}",
            outcome.issuer
        ),
    }
}
