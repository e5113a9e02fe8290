//! The ImageSubscription reconciler: resolves the image in its list's
//! current standing, then keeps the cache in line with it through the
//! pure planner (`store::plan`) for this one image: download and promote,
//! keep (with periodic integrity re-checks), or expire with a reason. The
//! original's hook moments become Events: DownloadStarted
//! (AvailablePrefix), Available (AvailablePostfix), Expiring (ExpirePrefix)
//! and Expired (ExpirePostfix).

mod download;
mod expire;
mod export;
mod integrity;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt as _};

use super::claims::key_for;
use super::{Context, ControllerError, key_of};
use crate::api::conditions::{self, types};
use crate::api::export::GlanceExportState;
use crate::api::{ImageListSubscription, ImagePhase, ImageSubscription, ImageSubscriptionStatus};
use crate::imagelist::{self, ImageId};
use crate::reason::camel_case;
use crate::store::{Desired, ExpireReason, ImageKey, Inventory, SubscriptionState};
use crate::subscription::select::{cache_list_key, resolve, wanted};
use crate::subscription::status::{self, set};
use crate::subscription::{GoodList, ListView, ObjectKey};
use download::download;
use expire::{expire_file, withdraw};
use integrity::available;

pub const FINALIZER: &str = "vmli.hepix.org/archive";

pub async fn reconcile(
    image: Arc<ImageSubscription>,
    context: Arc<Context>,
) -> Result<Action, ControllerError> {
    context.wait_for_caches().await;
    let started = Instant::now();
    let namespace = image
        .namespace()
        .ok_or(ControllerError::MissingField("metadata.namespace"))?;
    let api: Api<ImageSubscription> = Api::namespaced(context.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, image, |event| async {
        match event {
            Finalizer::Apply(image) => apply(&image, &context).await,
            Finalizer::Cleanup(image) => cleanup(&image, &context).await,
        }
    })
    .await
    .map_err(ControllerError::from);
    context
        .metrics
        .reconciled("ImageSubscription", started, &result);
    result
}

pub fn error_policy(
    image: Arc<ImageSubscription>,
    error: &ControllerError,
    context: Arc<Context>,
) -> Action {
    context.backoff(&key_of(&*image), error)
}

/// The ImageSubscriptions of `list`, re-evaluated whenever it changes.
pub fn images_of(
    images: &Store<ImageSubscription>,
    list: &ImageListSubscription,
) -> Vec<ObjectRef<ImageSubscription>> {
    let namespace = list.namespace();
    let name = list.name_any();
    images
        .state()
        .iter()
        .filter(|image| image.namespace() == namespace && image.spec.subscription_ref.name == name)
        .map(|image| ObjectRef::from_obj(&**image))
        .collect()
}

async fn apply(image: &ImageSubscription, context: &Context) -> Result<Action, ControllerError> {
    let key = key_of(image);
    let now = Timestamp::now();
    let current = image.status.clone();
    let mut status = current.clone().unwrap_or_default();
    status.observed_generation = image.metadata.generation;
    let requested = image.annotations().get(super::REQUESTED_AT).cloned();
    if requested.is_some() && requested != status.last_handled_reconcile_at {
        // A requested reconcile re-checks a cached file now: its last
        // check is made as old as can be, so the check is due.
        if status.artifact.is_some() {
            status.last_integrity_check = Some(imagelist::format_timestamp(Timestamp::UNIX_EPOCH));
        }
        status.last_handled_reconcile_at = requested;
    }
    if image.spec.suspend {
        context
            .apply_status(image, current.as_ref(), &status)
            .await?;
        return Ok(Action::await_change());
    }
    let list_key = ObjectKey::new(&key.namespace, &image.spec.subscription_ref.name);
    let view = context.view(&list_key);
    let list_exists = context
        .lists
        .get(&ObjectRef::new(&list_key.name).within(&list_key.namespace))
        .is_some();

    let action = match (&view, list_exists) {
        (None, false) => {
            let reason = ExpireReason::SubscriptionGone;
            let message = format!("ImageListSubscription {} not found", list_key.name);
            withdraw(
                image,
                &mut status,
                &list_key,
                None,
                reason,
                &message,
                context,
                now,
            )
            .await?;
            Action::await_change()
        }
        (None, true) => {
            // The list has not been reconciled since start: keep what is
            // cached (and an interrupted download's phase), look again soon
            // (an unchanged list status writes nothing, so wakes nobody).
            if status.artifact.is_none() && status.phase != ImagePhase::Downloading {
                status.phase = ImagePhase::Pending;
                not_ready(
                    &mut status,
                    "WaitingForList",
                    "the list is being verified",
                    now,
                );
            }
            Action::requeue(Duration::from_secs(2))
        }
        (Some(ListView::Unavailable(failure)), _) => {
            if status.artifact.is_none() {
                status.phase = ImagePhase::Pending;
                not_ready(&mut status, "ListUnavailable", &failure.to_string(), now);
            }
            Action::requeue(Duration::from_secs(300))
        }
        (Some(ListView::Withdrawn(reason, failure)), _) => {
            let message = failure.to_string();
            withdraw(
                image,
                &mut status,
                &list_key,
                view.as_ref(),
                *reason,
                &message,
                context,
                now,
            )
            .await?;
            Action::await_change()
        }
        (Some(ListView::Good(good)), _) => {
            keep_in_line(image, &mut status, &list_key, good, context, now).await?
        }
    };
    // spec.export: KubeVirt, then Glance; one Exported condition sums up
    // both when both are configured.
    let list = context
        .lists
        .get(&ObjectRef::new(&list_key.name).within(&list_key.namespace));
    let exported = super::export::export(image, &mut status, list.as_deref(), context, now).await;
    let kubevirt_condition = exports(image)
        .0
        .then(|| conditions::find(&status.conditions, types::EXPORTED).cloned())
        .flatten();
    let listed = match &view {
        Some(ListView::Good(good)) => resolve(image, good),
        _ => None,
    };
    let action = match export::glance(image, &mut status, listed, context, now).await? {
        // Look again soon while Glance imports or after a failure.
        Some(GlanceExportState::Importing | GlanceExportState::Failed) => {
            Action::requeue(Duration::from_secs(60))
        }
        _ => action,
    };
    if let Some(kubevirt) = kubevirt_condition
        && exports(image).1
        && let Some(glance) = conditions::find(&status.conditions, types::EXPORTED).cloned()
    {
        conditions::set_condition(
            &mut status.conditions,
            export::both_exported(&kubevirt, &glance),
        );
    }
    context
        .apply_status(image, current.as_ref(), &status)
        .await?;
    exported?;
    context.clear_failures(&key);
    Ok(action)
}

/// Which exports `spec.export` configures: (KubeVirt, Glance).
fn exports(image: &ImageSubscription) -> (bool, bool) {
    image.spec.export.as_ref().map_or((false, false), |export| {
        (export.kubevirt.is_some(), export.glance.is_some())
    })
}

fn not_ready(status: &mut ImageSubscriptionStatus, reason: &str, message: &str, now: Timestamp) {
    set(
        &mut status.conditions,
        types::READY,
        false,
        reason,
        message,
        now,
    );
}

/// The list is good: plan this one image and carry the plan out.
async fn keep_in_line(
    image: &ImageSubscription,
    status: &mut ImageSubscriptionStatus,
    list_key: &ObjectKey,
    good: &Arc<GoodList>,
    context: &Context,
    now: Timestamp,
) -> Result<Action, ControllerError> {
    let Some(subscription) = cache_list_key(list_key) else {
        return Err(ControllerError::MissingField("valid subscriptionRef"));
    };
    let Some(listed) = resolve(image, good) else {
        let view = ListView::Good(Arc::clone(good));
        withdraw(
            image,
            status,
            list_key,
            Some(&view),
            ExpireReason::RemovedFromList,
            &format!("no endorsed image matches in {list_key}"),
            context,
            now,
        )
        .await?;
        return Ok(Action::await_change());
    };
    status.image = Some(status::summary_of(listed));
    let key = subscription.image(listed.identifier.clone());

    // A subscription by sha512 may move to another identifier: the old
    // file goes unless someone else claims it.
    if let Some(previous) = status.artifact.as_ref().and(previous_key(status, list_key))
        && previous != key
    {
        let view = ListView::Good(Arc::clone(good));
        expire_file(
            image,
            status,
            &previous,
            ExpireReason::Unsubscribed,
            &view,
            context,
            now,
        )
        .await;
    }

    let mut inventory = Inventory::new();
    if let Some(cached) = context.core.store().cached(&key) {
        inventory.insert(cached);
    }
    let plan = crate::store::plan(
        &inventory,
        &[Desired {
            subscription,
            state: SubscriptionState::Endorsed {
                list_expires: good.parsed.list.expires,
                wanted: vec![wanted(listed)],
                listed: vec![listed.identifier.clone()],
            },
        }],
        now,
    );
    let view = ListView::Good(Arc::clone(good));
    for (expiring, reason) in &plan.expire {
        expire_file(image, status, expiring, *reason, &view, context, now).await;
    }
    if plan.download.is_empty() {
        if plan.keep.contains(&key) {
            return available(image, status, &key, listed, context, now).await;
        }
        // Refused (the image itself expired, say): not endorsed now.
        let reason = plan
            .expire
            .first()
            .map(|(_, r)| *r)
            .unwrap_or(ExpireReason::ImageExpired);
        status.artifact = None;
        status.progress = None;
        let message = format!("not cacheable: {}", reason.code());
        status::image_unavailable(
            status,
            ImagePhase::Expired,
            &camel_case(reason.code()),
            &message,
            now,
        );
        return Ok(Action::await_change());
    }
    download(image, status, list_key, &key, good, listed, context, now).await
}

fn previous_key(status: &ImageSubscriptionStatus, list_key: &ObjectKey) -> Option<ImageKey> {
    let recorded = status.image.as_ref()?;
    Some(cache_list_key(list_key)?.image(ImageId::new(&recorded.identifier).ok()?))
}

/// Deletion: archive the image unless another ImageSubscription claims it.
async fn cleanup(image: &ImageSubscription, context: &Context) -> Result<Action, ControllerError> {
    let list_key = ObjectKey::new(
        image.namespace().as_deref().unwrap_or_default(),
        &image.spec.subscription_ref.name,
    );
    let view = context.view(&list_key);
    let reason = match &view {
        Some(ListView::Good(good)) => match key_for(image, &list_key, view.as_ref()) {
            Some(key) if good.parsed.list.image(key.image.as_str()).is_some() => {
                ExpireReason::Unsubscribed
            }
            _ => ExpireReason::RemovedFromList,
        },
        Some(ListView::Withdrawn(reason, _)) => *reason,
        _ => ExpireReason::SubscriptionGone,
    };
    let effective = view
        .clone()
        .unwrap_or_else(|| ListView::withdrawn(reason, "deleted"));
    if let Some(key) = key_for(image, &list_key, view.as_ref()) {
        let mut status = image.status.clone().unwrap_or_default();
        expire_file(
            image,
            &mut status,
            &key,
            reason,
            &effective,
            context,
            Timestamp::now(),
        )
        .await;
    }
    Ok(Action::await_change())
}
