//! `vmlisub operator`: the three reconcilers over the shared core.
//!
//! * [`list`] fetches, verifies and authorises each ImageListSubscription
//!   (the sync engine's list step), publishes the list's standing to the
//!   image reconciles, and owns AutoSubscribe's ImageSubscriptions.
//! * [`image`] keeps each ImageSubscription's image in the cache:
//!   download, promotion, integrity re-checks, expiry, and a finalizer that
//!   archives on deletion.
//! * [`export`] (a step of the image reconcile) keeps the KubeVirt CDI
//!   DataVolumes and DataSource of `spec.export.kubevirt` in line.
//! * [`endorser`] reports which subscriptions each Endorser authorises.
//!
//! Primary objects are watched through a predicate that passes spec,
//! annotation, finalizer and deletion changes only, so the operator's own
//! status writes never trigger a reconcile; statuses are written by
//! server-side apply and only when they changed, so an idle cluster sees no
//! writes. Every replica serves artifacts and metrics; only the holder of
//! the Lease reconciles.

mod claims;
mod context;
mod endorser;
mod error;
mod events;
mod export;
mod hooks;
mod image;
mod inputs;
pub mod leader;
mod list;
pub mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource, ResourceExt as _};

pub use context::Context;
pub use error::ControllerError;

use crate::api::{Endorser, ImageListSubscription, ImageSubscription};
use crate::store::{CacheStore, RetentionPolicy};
use crate::subscription::{CoreConfig, DEFAULT_MAX_LIST_BYTES, Subscriptions};
use crate::transfer::TransferConfig;

/// The field manager of every server-side apply.
pub const MANAGER: &str = "vmlisub";
/// The annotation that asks for a reconcile now (Flux's convention).
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    pub cache_dir: PathBuf,
    pub ca_dir: PathBuf,
    pub listen: SocketAddr,
    /// The metrics port (`/metrics` and the probes).
    pub metrics_listen: SocketAddr,
    /// Who may read artifacts (`--artifact-auth`).
    pub artifact_access: crate::server::access::AccessMode,
    /// Timeouts and connection cap of both HTTP servers.
    pub server_limits: crate::server::http::Limits,
    pub artifact_base_url: Option<String>,
    /// Watch only this namespace (namespaced RBAC suffices).
    pub watch_namespace: Option<String>,
    pub leader: Option<leader::LeaderConfig>,
    pub max_concurrent_downloads: usize,
    /// Reconciles in flight per controller.
    pub max_concurrent_reconciles: u16,
    pub allow_file_urls: bool,
    pub retention: RetentionPolicy,
    pub max_clock_skew: Duration,
    /// Where refreshed CRLs go (read with the CA directory).
    pub crl_dir: PathBuf,
    /// Time between CRL refreshes; `None` turns them off.
    pub crl_refresh_interval: Option<Duration>,
    /// Create the Jobs of `spec.hooks` (`--hook-jobs`). Off, a list's
    /// hooks are reported as `HooksDisabled`.
    pub hook_jobs: bool,
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("cannot open the cache: {0}")]
    Core(#[from] crate::subscription::CoreError),
    #[error("cannot open the cache for serving: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("leader election: {0}")]
    Leader(#[from] leader::LeaderError),
}

impl crate::reason::Reason for OperatorError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Core(err) => err.reason(),
            Self::Store(err) => err.reason(),
            Self::Listen { .. } => "listen",
            Self::Client(_) => "kube-api",
            Self::Metrics(_) => "metrics",
            Self::Leader(_) => "leader-election",
        }
    }
}

/// A predicate hash of what a reconcile depends on: the spec (generation),
/// the requestedAt annotation, finalizers and deletion. Status-only updates
/// hash the same and are dropped before they reach the controller.
fn trigger_hash<K: Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash as _, Hasher as _};
    let meta = object.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REQUESTED_AT))
        .hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    meta.uid.hash(&mut hasher);
    Some(hasher.finish())
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// A reflector over `api` whose trigger stream passes only changes that
/// matter (see [`trigger_hash`]), and a flag that turns true once the
/// initial list is in the store. (The store's own `wait_until_ready` keeps
/// a single waker, so concurrent reconciles must not wait on it.)
///
/// `touched`, when given, receives every object applied or deleted after
/// the initial list, *after* the store has taken the change in: other
/// controllers that read this store when triggered by it never see it
/// stale (a second watch of the same kind would race the store).
fn filtered<K>(
    api: Api<K>,
    touched: Option<tokio::sync::mpsc::UnboundedSender<K>>,
) -> (
    Store<K>,
    tokio::sync::watch::Receiver<bool>,
    impl futures_util::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .inspect(move |event| match event {
            Ok(watcher::Event::InitDone) => {
                ready_tx.send_replace(true);
            }
            Ok(watcher::Event::Apply(object) | watcher::Event::Delete(object)) => {
                if let Some(touched) = &touched {
                    let _ = touched.send(object.clone());
                }
            }
            _ => {}
        })
        .applied_objects()
        .predicate_filter(trigger_hash, Default::default());
    (reader, ready_rx, stream)
}

/// Drops what the operator never reads from a watched object before it is
/// stored or handed on: `managedFields` (a JSON tree per field manager, the
/// largest part of an ImageSubscription in memory; server-side apply needs
/// none of it on the client) and kubectl's `last-applied-configuration`
/// (a copy of the whole manifest). `None`, not an empty list: an empty
/// list in a write would reset the server's field ownership, and stored
/// objects are never written back whole, but `None` keeps that true.
pub(crate) fn slim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Runs the operator until SIGTERM/SIGINT (or a lost Lease).
pub async fn run(config: OperatorConfig) -> Result<(), OperatorError> {
    let state_dir = config.cache_dir.join("state");
    let core_config = CoreConfig {
        cache_dir: config.cache_dir.clone(),
        ca_dir: config.ca_dir.clone(),
        state_file: state_dir.join("operator.json"),
        allow_file_urls: config.allow_file_urls,
        max_list_bytes: DEFAULT_MAX_LIST_BYTES,
        max_clock_skew: config.max_clock_skew,
        transfer: TransferConfig {
            max_concurrent_downloads: config.max_concurrent_downloads,
            ..TransferConfig::default()
        },
        artifact_base_url: config.artifact_base_url.clone(),
        crl_dir: Some(config.crl_dir.clone()),
        crl_refresh_interval: config.crl_refresh_interval,
    };
    let (core, notes) = Subscriptions::open(core_config)?;
    for note in notes {
        tracing::info!(note = %note, "cache recovery");
    }
    let metrics = metrics::Metrics::new()?;

    // Every replica serves artifacts, lists and metrics, leader or not.
    let client = Client::try_default().await?;
    let ready = Arc::new(AtomicBool::new(false));
    crate::server::OperatorServers {
        artifacts: config.listen,
        metrics: config.metrics_listen,
        limits: config.server_limits,
        access: config.artifact_access.clone(),
        watch_namespace: config.watch_namespace.clone(),
        store: CacheStore::open(&config.cache_dir)?,
        lists_dir: state_dir.join("lists"),
        render_metrics: Box::new({
            let metrics = metrics.clone();
            move || metrics.render()
        }),
        access_counted: metrics.artifact_access.clone(),
        ready: Arc::clone(&ready),
    }
    .start(client.clone())
    .await
    .map_err(|err| OperatorError::Listen {
        address: err.address,
        source: err.source,
    })?;
    ready.store(true, Ordering::SeqCst);

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let lease = match &config.leader {
        Some(leader_config) => {
            let elector = leader::Elector::new(client.clone(), leader_config.clone());
            tokio::select! {
                held = elector.acquire() => Some(held?),
                () = &mut shutdown => return Ok(()),
            }
        }
        None => None,
    };
    metrics.leader.set(1);

    let namespace = config.watch_namespace.as_deref();
    let (endorser_touched, endorser_touched_rx) = tokio::sync::mpsc::unbounded_channel();
    let (lists, lists_ready, list_trigger) =
        filtered(api::<ImageListSubscription>(&client, namespace), None);
    let (images, images_ready, image_trigger) =
        filtered(api::<ImageSubscription>(&client, namespace), None);
    let (endorsers, endorsers_ready, endorser_trigger) =
        filtered(api::<Endorser>(&client, namespace), Some(endorser_touched));
    // The KubeVirt export: only when CDI's CRDs are served.
    let (cdi, cdi_triggers) = match export::discover(&client).await {
        Some((data_volume, data_source)) => {
            let (data_volumes, dv_ready, dv_trigger) =
                export::watch(&client, namespace, &data_volume);
            let (data_sources, ds_ready, ds_trigger) =
                export::watch(&client, namespace, &data_source);
            (
                Some(export::Cdi {
                    data_volume,
                    data_source,
                    data_volumes,
                    data_sources,
                    ready: [dv_ready, ds_ready],
                }),
                futures_util::stream::select(dv_trigger, ds_trigger).boxed(),
            )
        }
        None => (None, futures_util::stream::pending().boxed()),
    };
    let context = Arc::new(Context::new(
        client.clone(),
        core,
        metrics,
        config.clone(),
        lists.clone(),
        images.clone(),
        endorsers.clone(),
        [lists_ready, images_ready, endorsers_ready],
        cdi,
    ));

    // A CA directory change re-checks every list at once.
    let trust_changed = futures_util::stream::unfold(
        context.trust_changed.subscribe(),
        |mut receiver| async move {
            receiver.changed().await.ok()?;
            Some(((), receiver))
        },
    );

    // Bounded: unbounded, a start with 10,000 ImageSubscriptions ran them
    // all at once, each with its own API connection (HTTP/1.1) and task,
    // and peaked at 576 MiB (docs/benchmarks.md#scale-make-bench-scale).
    let bounded = controller::Config::default().concurrency(config.max_concurrent_reconciles);
    let list_controller = Controller::for_stream(list_trigger, lists.clone())
        // An Endorser change (or deletion) re-evaluates the lists that
        // name it, once the Endorser store has it.
        .reconcile_on({
            let lists = lists.clone();
            futures_util::stream::unfold(endorser_touched_rx, |mut receiver| async move {
                let endorser = receiver.recv().await?;
                Some((endorser, receiver))
            })
            .flat_map(move |endorser: Endorser| {
                futures_util::stream::iter(list::lists_using(&lists, &endorser))
            })
        })
        .reconcile_all_on(trust_changed)
        .with_config(bounded.clone())
        .run(list::reconcile, list::error_policy, Arc::clone(&context))
        .for_each(|result| async move { log_result("ImageListSubscription", result) });

    let image_controller = Controller::for_stream(image_trigger, images.clone())
        // A DataVolume or DataSource of the KubeVirt export changed
        // (CDI's phase, a deletion): re-plan its ImageSubscription.
        .reconcile_on(cdi_triggers)
        .watches(
            api::<ImageListSubscription>(&client, namespace),
            watcher::Config::default(),
            {
                let images = images.clone();
                move |list: ImageListSubscription| image::images_of(&images, &list)
            },
        )
        .with_config(bounded.clone())
        .run(image::reconcile, image::error_policy, Arc::clone(&context))
        .for_each(|result| async move { log_result("ImageSubscription", result) });

    let endorser_controller = Controller::for_stream(endorser_trigger, endorsers.clone())
        .watches(
            api::<ImageListSubscription>(&client, namespace),
            watcher::Config::default(),
            {
                let endorsers = endorsers.clone();
                move |list: ImageListSubscription| endorser::endorsers_of(&endorsers, &list)
            },
        )
        .with_config(bounded)
        .run(
            endorser::reconcile,
            endorser::error_policy,
            Arc::clone(&context),
        )
        .for_each(|result| async move { log_result("Endorser", result) });

    // spec.hooks: a controller of lists that watches the Jobs they own
    // (only when hook Jobs are on: off, it needs no Job permission).
    let hook_wake_ups = context.hooks.wake_ups();
    let hooks_controller = Controller::new(
        api::<ImageListSubscription>(&client, namespace),
        watcher::Config::default().any_semantic(),
    );
    let hooks_controller = if config.hook_jobs {
        hooks_controller.owns(
            api::<k8s_openapi::api::batch::v1::Job>(&client, namespace),
            watcher::Config::default()
                .labels(hooks::job::HOOK_EVENT_LABEL)
                .any_semantic(),
        )
    } else {
        hooks_controller
    };
    let hooks_controller = hooks_controller
        .reconcile_on(futures_util::stream::unfold(
            hook_wake_ups,
            |receiver| async move {
                let mut receiver = receiver?;
                let list = receiver.recv().await?;
                Some((list, Some(receiver)))
            },
        ))
        .run(hooks::reconcile, hooks::error_policy, Arc::clone(&context))
        .for_each(|result| async move { log_result("ImageListSubscription hooks", result) });

    let housekeeping = context::housekeeping(Arc::clone(&context));
    // Only the leader refreshes CRLs (it alone reconciles).
    let crl_refresh = context::crl_refresh(Arc::clone(&context));
    // Events go out from a task of their own: a reconcile blocking its
    // worker thread (an integrity re-check) does not hold them up.
    let events = tokio::spawn({
        let context = Arc::clone(&context);
        async move { context.events.run().await }
    });
    let controllers = futures_util::future::join4(
        list_controller,
        image_controller,
        endorser_controller,
        hooks_controller,
    );
    let lost = async {
        match &lease {
            Some(held) => held.lost().await,
            None => std::future::pending().await,
        }
    };
    // On a signal the reconciles are dropped where they stand: a download
    // stops with its partial file and sidecar in place, and the next
    // leader resumes it with a Range request.
    let outcome = tokio::select! {
        _ = controllers => Ok(()),
        () = housekeeping => Ok(()),
        () = async { crl_refresh.await; std::future::pending::<()>().await } => Ok(()),
        () = &mut shutdown => {
            tracing::info!("shutting down: downloads stop at a resumable point");
            Ok(())
        }
        err = lost => Err(OperatorError::Leader(err)),
    };
    // The last Events (a download that just finished) still go out.
    context.events.flush(Duration::from_secs(2)).await;
    events.abort();
    if let Err(err) = context.core.save_state() {
        tracing::warn!(error = %err, "state not saved");
    }
    if outcome.is_ok()
        && let Some(held) = lease
    {
        held.release().await;
    }
    outcome
}

fn log_result<K: Resource, E: std::fmt::Display>(
    kind: &str,
    result: Result<(kube::runtime::reflector::ObjectRef<K>, controller::Action), E>,
) {
    match result {
        Ok((object, _)) => tracing::debug!(kind, object = %object.name, "reconciled"),
        Err(err) => tracing::debug!(kind, error = %err, "reconcile failed"),
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// `namespace/name` of an object, for logs and maps.
pub(crate) fn key_of<K: Resource>(object: &K) -> crate::subscription::ObjectKey {
    crate::subscription::ObjectKey::new(
        object.namespace().as_deref().unwrap_or_default(),
        &object.name_any(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use kube::api::ObjectMeta;

    #[test]
    fn slim_drops_field_ownership_and_kubectls_copy_only() {
        let mut image: ImageSubscription = serde_json::from_value(serde_json::json!({
            "apiVersion": "vmli.hepix.org/v1alpha1",
            "kind": "ImageSubscription",
            "metadata": {
                "name": "a", "namespace": "n",
                "labels": {"keep": "me"},
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\":true}",
                    "keep": "me"
                },
                "managedFields": [{"manager": "vmlisub", "operation": "Apply",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]
            },
            "spec": {"subscriptionRef": {"name": "l"}, "identifier": "x"}
        }))
        .unwrap();
        slim(&mut image);
        let meta: &ObjectMeta = &image.metadata;
        assert_eq!(meta.managed_fields, None);
        let annotations = meta.annotations.clone().unwrap();
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations.get("keep").map(String::as_str), Some("me"));
        assert_eq!(meta.labels.clone().unwrap().len(), 1);
        // Serialized, it names no managedFields at all (an empty list in a
        // write would reset the server's field ownership).
        let json = serde_json::to_value(&image).unwrap();
        assert!(json["metadata"].get("managedFields").is_none(), "{json}");
    }
}
