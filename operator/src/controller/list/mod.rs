//! The ImageListSubscription reconciler, as steps:
//!
//! 1. [`dereference`]: the list's typed inputs (Endorsers, Secrets, trust);
//! 2. refresh through the subscription core (fetch when due, verify,
//!    authorise, decide, keep the last good list);
//! 3. [`auto`]: `autoEndorse` and AutoSubscribe;
//! 4. [`status`]: the status to publish and the Events of its changes
//!    (pure);
//! 5. the list's standing is published to the image reconciles;
//! 6. [`gc`]: cached images no ImageSubscription claims are expired.

pub mod auto;
pub mod dereference;
pub mod gc;
pub mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt as _};

use super::{Context, ControllerError, REQUESTED_AT, key_of};
use crate::api::conditions::{self, types};
use crate::api::{Endorser, ImageListSubscription, ImageListSubscriptionStatus};
use crate::imagelist;
use crate::store::ExpireReason;
use crate::subscription::{ListRefresh, ListView, ObjectKey};

use auto::auto_endorser_name;

pub const FINALIZER: &str = "vmli.hepix.org/cleanup";
/// How often a Stalled list is tried again. A spec change retries at
/// once; this catches fixes outside the spec (a Secret labelled for the
/// operator, a ConfigMap created), which change no generation.
const STALLED_RETRY: Duration = Duration::from_secs(600);

pub async fn reconcile(
    list: Arc<ImageListSubscription>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    tracing::debug!(list = %list.name_any(), "reconcile: waiting for caches");
    context.wait_for_caches().await;
    let started = Instant::now();
    let namespace = list
        .namespace()
        .ok_or(ControllerError::MissingField("metadata.namespace"))?;
    let api: Api<ImageListSubscription> = Api::namespaced(context.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, list, |event| async {
        match event {
            Finalizer::Apply(list) => apply(&list, &context).await,
            Finalizer::Cleanup(list) => cleanup(&list, &context).await,
        }
    })
    .await
    .map_err(ControllerError::from);
    context
        .metrics
        .reconciled("ImageListSubscription", started, &result);
    result
}

pub fn error_policy(
    list: Arc<ImageListSubscription>,
    error: &ControllerError,
    context: Arc<Context>,
) -> Action {
    context.backoff(&key_of(&*list), error)
}

/// The lists that name `endorser`: they are re-evaluated when it changes.
pub fn lists_using(
    lists: &Store<ImageListSubscription>,
    endorser: &Endorser,
) -> Vec<ObjectRef<ImageListSubscription>> {
    let namespace = endorser.namespace();
    let name = endorser.name_any();
    lists
        .state()
        .iter()
        .filter(|list| list.namespace() == namespace)
        .filter(|list| {
            list.spec.endorsers.iter().any(|e| e.name == name)
                || (list.spec.auto_endorse && name == auto_endorser_name(&list.name_any()))
        })
        .map(|list| ObjectRef::from_obj(&**list))
        .collect()
}

async fn apply(list: &ImageListSubscription, context: &Context) -> Result<Action, ControllerError> {
    let key = key_of(list);
    if list.spec.suspend {
        tracing::debug!(list = %key, "suspended");
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let current = list.status.as_ref();
    let requested = list.annotations().get(REQUESTED_AT).cloned();
    let handled = current.and_then(|s| s.last_handled_reconcile_at.clone());
    let spec_changed = current.and_then(|s| s.observed_generation) != list.metadata.generation;
    // A Stalled list is retried (slowly, see below) with a fetch: what
    // cures it may be outside its spec (labelling a Secret, say).
    let stalled_before =
        current.is_some_and(|s| conditions::find(&s.conditions, types::STALLED).is_some());
    let force = spec_changed || stalled_before || (requested.is_some() && requested != handled);

    let inputs = dereference::gather(list, &key, context).await?;
    tracing::debug!(list = %key, force, "refreshing");
    let refresh = context.core.refresh_list(&inputs, force, now).await;
    for line in &refresh.lines {
        tracing::info!(list = %key, "{line}");
    }
    if refresh.fetched {
        context.core.save_state()?;
    }
    if list.spec.auto_endorse
        && let ListView::Good(_) = &refresh.view
        && let Some(info) = &refresh.status.list
    {
        auto::record_auto_endorser(list, &key, &info.signer, context).await?;
    }

    let auto_endorser = list
        .spec
        .auto_endorse
        .then(|| auto_endorser_name(&key.name));
    let observed = status::Observed {
        current,
        generation: list.metadata.generation,
        handled_request: requested.or(handled),
        auto_endorser: auto_endorser.as_deref(),
    };
    let published = status::publish(&observed, &refresh, now);
    // The standing first: the status write below wakes the image
    // reconciles, which must see the new list.
    context.set_view(key.clone(), Some(refresh.view.clone()));
    if published.changed {
        context
            .apply_status(list, None, &status::without_hooks(&published.status))
            .await?;
        for event in status::events(current, &published.status, &refresh.view) {
            context.event(list, event.type_, &event.reason, event.action, event.note);
        }
    }
    record_metrics(context, &key, &refresh, &published.status);

    if let ListView::Good(good) = &refresh.view {
        auto::auto_subscribe(list, &key, good, context).await?;
    }
    gc::sweep(list, &key, &refresh.view, context, now);

    context.clear_failures(&key);
    if published.stalled {
        return Ok(Action::requeue(STALLED_RETRY));
    }
    Ok(Action::requeue(next_wait(&refresh, now)))
}

/// Until the next fetch, or the list's expiry if sooner.
fn next_wait(refresh: &ListRefresh, now: Timestamp) -> Duration {
    let mut next = refresh.next_fetch.unwrap_or(now + Duration::from_secs(300));
    if let ListView::Good(good) = &refresh.view {
        next = next.min(good.parsed.list.expires);
    }
    next.duration_since(now)
        .try_into()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

fn record_metrics(
    context: &Context,
    key: &ObjectKey,
    refresh: &ListRefresh,
    status: &ImageListSubscriptionStatus,
) {
    if let Some(failure) = refresh.view.failure()
        && refresh.fetched
    {
        context
            .metrics
            .verification_failures
            .with_label_values(&[failure.reason.as_ref()])
            .inc();
    }
    let labels = [key.namespace.as_str(), key.name.as_str()];
    if refresh.fetched && matches!(refresh.view, ListView::Good(_)) {
        context
            .metrics
            .list_last_success
            .with_label_values(&labels)
            .set(Timestamp::now().as_second() as f64);
    }
    let Some(info) = &status.list else {
        return;
    };
    let seconds = |value: &str| imagelist::parse_timestamp(value).map(|t| t.as_second() as f64);
    if let Ok(expires) = seconds(&info.expires) {
        context
            .metrics
            .list_expiry
            .with_label_values(&labels)
            .set(expires);
    }
    if let Ok(not_after) = seconds(&info.signer.not_after) {
        context
            .metrics
            .signer_not_after
            .with_label_values(&labels)
            .set(not_after);
    }
}

/// Deletion: forget the stored list and expire what no ImageSubscription
/// claims (owned ImageSubscriptions are garbage-collected and archive
/// their own images through their finalizers).
async fn cleanup(
    list: &ImageListSubscription,
    context: &Context,
) -> Result<Action, ControllerError> {
    let key = key_of(list);
    context.core.forget_list(&key)?;
    context.set_view(key.clone(), None);
    context.metrics.forget_list(&key.namespace, &key.name);
    let view = ListView::withdrawn(
        ExpireReason::SubscriptionGone,
        "the ImageListSubscription was deleted",
    );
    gc::sweep(list, &key, &view, context, Timestamp::now());
    tracing::info!(list = %key, "deleted: stored list forgotten");
    Ok(Action::await_change())
}
