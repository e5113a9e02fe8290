//! What the reconcilers share: the client, the subscription core (cache, trust store,
//! list state), the watched objects, each list's current standing, the
//! download slots and the metrics.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use kube::Client;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Reporter};
use kube::runtime::reflector::Store;
use serde::Serialize;

use super::metrics::Metrics;
use super::{ControllerError, MANAGER, OperatorConfig};
use crate::api::{Endorser, ImageListSubscription, ImagePhase, ImageSubscription};
use crate::reason::Reason as _;
use crate::subscription::{ListView, ObjectKey, Subscriptions};

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub core: Subscriptions,
    pub metrics: Metrics,
    pub config: OperatorConfig,
    pub lists: Store<ImageListSubscription>,
    pub images: Store<ImageSubscription>,
    pub endorsers: Store<Endorser>,
    /// CDI's kinds and the export's objects, when CDI is installed.
    pub cdi: Option<super::export::Cdi>,
    /// Events go out through a queue, off the reconcile path.
    pub events: super::events::EventSink,
    /// Each list's standing after its last reconcile (what image
    /// reconciles resolve against).
    views: RwLock<HashMap<ObjectKey, ListView>>,
    /// Bounds concurrent downloads across all subscriptions.
    pub downloads: tokio::sync::Semaphore,
    /// Bumped when the CA directory changed: every list is re-checked.
    pub trust_changed: tokio::sync::watch::Sender<u64>,
    /// One flag per watch: its initial list is in the store.
    caches_ready: [tokio::sync::watch::Receiver<bool>; 3],
    /// Consecutive failed reconciles per object, for the backoff.
    failures: std::sync::Mutex<HashMap<ObjectKey, u32>>,
    /// The hook Jobs' failures and wake-ups (`spec.hooks`).
    pub hooks: super::hooks::HookState,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        core: Subscriptions,
        metrics: Metrics,
        config: OperatorConfig,
        lists: Store<ImageListSubscription>,
        images: Store<ImageSubscription>,
        endorsers: Store<Endorser>,
        caches_ready: [tokio::sync::watch::Receiver<bool>; 3],
        cdi: Option<super::export::Cdi>,
    ) -> Self {
        let reporter = Reporter {
            controller: "vmlisub".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let downloads = tokio::sync::Semaphore::new(config.max_concurrent_downloads.max(1));
        Self {
            events: super::events::EventSink::new(client.clone(), reporter, metrics.events.clone()),
            client,
            core,
            metrics,
            config,
            lists,
            images,
            endorsers,
            cdi,
            views: RwLock::new(HashMap::new()),
            downloads,
            trust_changed: tokio::sync::watch::Sender::new(0),
            failures: std::sync::Mutex::new(HashMap::new()),
            hooks: super::hooks::HookState::default(),
            caches_ready,
        }
    }

    /// The error policy of all three controllers: exponential backoff per
    /// object, 5 s doubling to 10 min, reset by the next success.
    pub fn backoff(&self, key: &ObjectKey, error: &ControllerError) -> Action {
        let failures = {
            let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
            let count = failures.entry(key.clone()).or_default();
            *count = count.saturating_add(1);
            *count - 1
        };
        let stale = matches!(error, ControllerError::Stale(_));
        let (delay, quiet) = retry_delay(stale, failures);
        if quiet {
            // The watch is about to deliver the newer object.
            tracing::debug!(object = %key, error = %error, "object changed since read; retrying");
        } else {
            tracing::warn!(object = %key, error = %error, reason = error.reason(), retry_in = ?delay, "reconcile failed");
        }
        Action::requeue(delay)
    }

    pub fn clear_failures(&self, key: &ObjectKey) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    pub(crate) fn view(&self, key: &ObjectKey) -> Option<ListView> {
        self.views
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    pub(crate) fn set_view(&self, key: ObjectKey, view: Option<ListView>) {
        let mut views = self.views.write().unwrap_or_else(PoisonError::into_inner);
        match view {
            Some(view) => views.insert(key, view),
            None => views.remove(&key),
        };
    }

    /// Waits until the three watches (and CDI's two) have listed once, so that no decision
    /// is taken on a partial view of the cluster.
    pub async fn wait_for_caches(&self) {
        let cdi = self.cdi.iter().flat_map(|cdi| cdi.ready.iter());
        for ready in self.caches_ready.iter().chain(cdi) {
            let _ = ready.clone().wait_for(|ready| *ready).await;
        }
    }

    /// Queues an Event; it is published in the background (a failure
    /// is logged and counted, never fatal; see [`super::events`]).
    pub fn event<K>(&self, object: &K, type_: EventType, reason: &str, action: &str, note: String)
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note, 1000)),
            action: action.to_string(),
            secondary: None,
        };
        self.events.publish(object.object_ref(&()), event);
    }

    /// Writes `status` by server-side apply (the operator owns the whole
    /// status), unless it equals what the object has: an idle reconcile
    /// writes nothing.
    pub async fn apply_status<K, S>(
        &self,
        object: &K,
        current: Option<&S>,
        status: &S,
    ) -> Result<bool, ControllerError>
    where
        K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        S: Serialize + PartialEq,
    {
        if current == Some(status) {
            return Ok(false);
        }
        let namespace = object
            .meta()
            .namespace
            .as_deref()
            .ok_or(ControllerError::MissingField("metadata.namespace"))?;
        let name = object
            .meta()
            .name
            .as_deref()
            .ok_or(ControllerError::MissingField("metadata.name"))?;
        let api: kube::Api<K> = kube::Api::namespaced(self.client.clone(), namespace);
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        api.patch_status(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        Ok(true)
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Periodic work that no watch triggers: the CA directory reload (which
/// re-checks every list), every 10 s, and the gauges (which walk the whole
/// cache), every minute.
pub async fn housekeeping(context: Arc<Context>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let mut last_error = String::new();
    for round in 0u64.. {
        tick.tick().await;
        let refreshed = context.core.refresh_trust();
        if refreshed.is_ok() {
            last_error.clear();
        }
        match refreshed {
            Ok(true) => {
                tracing::info!(ca_dir = %context.config.ca_dir.display(), "CA directory changed: re-checking every list");
                context
                    .trust_changed
                    .send_modify(|n| *n = n.wrapping_add(1));
            }
            Ok(false) => {}
            Err(err) => {
                // Once per distinct error, not every 10 s.
                let message = err.to_string();
                if message != last_error {
                    tracing::warn!(error = %message, "CA directory reload failed, keeping the previous one");
                    last_error = message;
                }
            }
        }
        if round % 6 == 0 {
            update_gauges(&context);
        }
    }
}

/// The leader's CRL refresh: at start, then every jittered interval. The
/// housekeeping loop notices the new files within 10 s and re-checks every
/// list, so a revocation takes effect at most one interval (plus 10%
/// jitter, plus 10 s) after the CA publishes it.
pub async fn crl_refresh(context: Arc<Context>) {
    let Some(interval) = context.config.crl_refresh_interval else {
        tracing::info!("CRL refresh is off (--no-crl-refresh)");
        return;
    };
    let crl_dir = context.config.crl_dir.display().to_string();
    let wait = crate::subscription::select::jittered(interval, &crl_dir);
    tracing::info!(crl_dir = %crl_dir, every_seconds = wait.as_secs(), "CRL refresh on");
    loop {
        for outcome in context.core.refresh_crls().await {
            if let crate::crl_refresh::Outcome::Failed { reason, .. } = &outcome.outcome {
                context
                    .metrics
                    .crl_refresh_failures
                    .with_label_values(&[outcome.issuer.as_str(), reason])
                    .inc();
            }
        }
        tokio::time::sleep(wait).await;
    }
}

fn update_gauges(context: &Context) {
    let metrics = &context.metrics;
    let mut phases: HashMap<&str, i64> = HashMap::new();
    for phase in [
        ImagePhase::Pending,
        ImagePhase::Downloading,
        ImagePhase::Available,
        ImagePhase::Expired,
        ImagePhase::Failed,
    ] {
        phases.insert(phase_name(&phase), 0);
    }
    for image in context.images.state() {
        let phase = image
            .status
            .as_ref()
            .map(|s| phase_name(&s.phase))
            .unwrap_or("Pending");
        *phases.entry(phase).or_default() += 1;
    }
    for (phase, count) in phases {
        metrics.images.with_label_values(&[phase]).set(count);
    }
    if let Ok(inventory) = context.core.store().inventory() {
        metrics
            .cache_bytes
            .set(i64::try_from(inventory.total_bytes()).unwrap_or(i64::MAX));
    }
    for (issuer, next_update) in context.core.crl_next_updates() {
        metrics
            .crl_next_update
            .with_label_values(&[issuer.as_str()])
            .set(next_update as f64);
    }
}

pub fn phase_name(phase: &ImagePhase) -> &'static str {
    match phase {
        ImagePhase::Pending => "Pending",
        ImagePhase::Downloading => "Downloading",
        ImagePhase::Available => "Available",
        ImagePhase::Expired => "Expired",
        ImagePhase::Failed => "Failed",
    }
}

/// How long to wait before retrying an object after its `failures`-th
/// consecutive failure (0: the first), and whether that is quiet: 5 s
/// doubling to 10 min; a stale object (a finalizer patch that lost the race
/// with the watch) is retried after 1 s, quietly, three times in a row at
/// most, so that a 422 that is not a race (an admission policy, say) falls
/// back to the backoff and a warning instead of a loop.
pub fn retry_delay(stale: bool, failures: u32) -> (Duration, bool) {
    if stale && failures < STALE_RETRIES {
        return (Duration::from_secs(1), true);
    }
    let delay = Duration::from_secs(5)
        .saturating_mul(1 << failures.min(7))
        .min(Duration::from_secs(600));
    (delay, false)
}

/// Quiet one-second retries of a stale object before the usual backoff.
const STALE_RETRIES: u32 = 3;

#[cfg(test)]
mod retry_tests {
    use std::time::Duration;

    use super::retry_delay;

    #[test]
    fn failures_back_off_from_5_s_to_10_min() {
        let delays: Vec<u64> = (0..10).map(|n| retry_delay(false, n).0.as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert!(
            (0..10).all(|n| !retry_delay(false, n).1),
            "failures are warned of"
        );
        assert_eq!(retry_delay(false, u32::MAX).0, Duration::from_secs(600));
    }

    #[test]
    fn a_stale_object_is_retried_quietly_three_times_then_backs_off() {
        let tries: Vec<(u64, bool)> = (0..5)
            .map(|n| {
                let (delay, quiet) = retry_delay(true, n);
                (delay.as_secs(), quiet)
            })
            .collect();
        assert_eq!(
            tries,
            [(1, true), (1, true), (1, true), (40, false), (80, false)]
        );
    }
}
