//! The ImageSubscription reconciler: resolves the image in its list's
//! current standing, then keeps the cache in line with it through the
//! pure planner (`store::plan`) for this one image: download and promote,
//! keep (with periodic integrity re-checks), or expire with a reason. The
//! original's hook moments become Events: DownloadStarted
//! (AvailablePrefix), Available (AvailablePostfix), Expiring (ExpirePrefix)
//! and Expired (ExpirePostfix).

use kube::runtime::events::EventType;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt as _};

use super::claims::{claimed_keys, key_for, resolve};
use super::{Context, ControllerError, key_of};
use crate::api::conditions;
use crate::api::{
    Artifact, DownloadProgress, ExpiredRecord, ImageListSubscription, ImagePhase,
    ImageSubscription, ImageSubscriptionStatus,
};
use crate::imagelist::{self, Image, ImageId};
use crate::reason::{Reason as _, camel_case};
use crate::store::{
    Desired, ExpireReason, ImageKey, Integrity, Inventory, SubscriptionState, WantedImage,
};
use crate::sync::engine::{GoodList, ListView, ProgressSink, cache_list_key, set, summary_of};
use crate::sync::manifest::ObjectKey;

pub const FINALIZER: &str = "vmli.hepix.org/archive";
/// Default time between integrity re-checks of a cached image.
const DEFAULT_INTEGRITY_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Least time between two progress writes of one download.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

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
    context
        .apply_status(image, current.as_ref(), &status)
        .await?;
    context.clear_failures(&key);
    Ok(action)
}

fn not_ready(status: &mut ImageSubscriptionStatus, reason: &str, message: &str, now: Timestamp) {
    set(&mut status.conditions, "Ready", false, reason, message, now);
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
    status.image = Some(summary_of(listed));
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
    if let Some(cached) = context.engine.store().cached(&key) {
        inventory.insert(cached);
    }
    let plan = crate::store::plan(
        &inventory,
        &[Desired {
            subscription,
            state: SubscriptionState::Endorsed {
                list_expires: good.parsed.list.expires,
                wanted: vec![WantedImage {
                    image: listed.identifier.clone(),
                    sha512: listed.sha512.clone(),
                    size: listed.size,
                    expires: listed.expires,
                }],
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
        status.phase = ImagePhase::Expired;
        status.artifact = None;
        status.progress = None;
        let message = format!("not cacheable: {}", reason.code());
        set(
            &mut status.conditions,
            "Available",
            false,
            &camel_case(reason.code()),
            &message,
            now,
        );
        not_ready(status, &camel_case(reason.code()), &message, now);
        return Ok(Action::await_change());
    }
    download(image, status, list_key, &key, good, listed, context, now).await
}

fn previous_key(status: &ImageSubscriptionStatus, list_key: &ObjectKey) -> Option<ImageKey> {
    let recorded = status.image.as_ref()?;
    Some(cache_list_key(list_key)?.image(ImageId::new(&recorded.identifier).ok()?))
}

/// The image is cached and verified: publish it, re-hash it when due.
async fn available(
    image: &ImageSubscription,
    status: &mut ImageSubscriptionStatus,
    key: &ImageKey,
    listed: &Image,
    context: &Context,
    now: Timestamp,
) -> Result<Action, ControllerError> {
    let interval = image
        .spec
        .integrity_interval
        .as_deref()
        .and_then(|i| crate::api::duration::parse_duration(i).ok())
        .unwrap_or(DEFAULT_INTEGRITY_INTERVAL)
        .max(Duration::from_secs(60));
    let last_check = status
        .last_integrity_check
        .as_deref()
        .and_then(|t| imagelist::parse_timestamp(t).ok());
    let due = last_check.is_some_and(|last| now >= last + interval);
    if due {
        let store_key = key.clone();
        let checked = {
            let _permit = context.downloads.acquire().await;
            let engine_store = context.engine.store();
            tokio::task::block_in_place(|| engine_store.recheck_at(&store_key, now))
        };
        match checked {
            Ok(Integrity::Intact { .. }) => {}
            Ok(Integrity::Corrupt {
                reason,
                detail,
                expired,
            }) => {
                context
                    .event(
                        image,
                        EventType::Warning,
                        &camel_case(reason.code()),
                        "IntegrityCheck",
                        format!("cached file failed its re-check ({detail}); moved to expired/{}, downloading again", expired.name),
                    )
                    .await;
                record_history(status, reason, &expired.name, now);
                status.artifact = None;
                status.phase = ImagePhase::Pending;
                not_ready(status, &camel_case(reason.code()), &detail, now);
                status.last_integrity_check = Some(imagelist::format_timestamp(now));
                return Ok(Action::requeue(Duration::from_secs(1)));
            }
            Err(err) => return Err(err.into()),
        }
        status.last_integrity_check = Some(imagelist::format_timestamp(now));
    }
    let Some(cached) = context.engine.store().cached(key) else {
        return Ok(Action::requeue(Duration::from_secs(1)));
    };
    let was_available = status.phase == ImagePhase::Available;
    status.phase = ImagePhase::Available;
    status.progress = None;
    if status.last_integrity_check.is_none() {
        status.last_integrity_check = Some(imagelist::format_timestamp(cached.verified_at));
    }
    status.artifact = Some(artifact_of(
        context,
        key,
        &cached.sha512,
        cached.size,
        cached.verified_at,
    ));
    set(
        &mut status.conditions,
        "Available",
        true,
        "Verified",
        "",
        now,
    );
    set(&mut status.conditions, "Ready", true, "Available", "", now);
    conditions::remove_condition(&mut status.conditions, "Reconciling");
    if !was_available {
        tracing::info!(image = %key, "available");
    }
    let next_check = status
        .last_integrity_check
        .as_deref()
        .and_then(|t| imagelist::parse_timestamp(t).ok())
        .map_or(interval, |last| {
            (last + interval)
                .duration_since(now)
                .try_into()
                .unwrap_or(Duration::ZERO)
        });
    let mut wait = next_check;
    if let Some(expires) = listed.expires {
        let until: Duration = expires
            .duration_since(now)
            .try_into()
            .unwrap_or(Duration::ZERO);
        wait = wait.min(until);
    }
    Ok(Action::requeue(wait.max(Duration::from_secs(1))))
}

fn artifact_of(
    context: &Context,
    key: &ImageKey,
    sha512: &imagelist::Sha512Hex,
    size: u64,
    verified_at: Timestamp,
) -> Artifact {
    Artifact {
        path: context.engine.store().image_path(key).display().to_string(),
        url: context
            .config
            .artifact_base_url
            .as_deref()
            .map(|base| {
                format!(
                    "{}/images/{}/{}/{}",
                    base.trim_end_matches('/'),
                    key.namespace,
                    key.subscription,
                    key.image
                )
            })
            .unwrap_or_default(),
        digest: format!("sha512:{}", sha512.as_str()),
        size,
        last_update_time: imagelist::format_timestamp(verified_at),
    }
}

/// Downloads, verifies and promotes; progress is written at most every
/// [`PROGRESS_EVERY`].
#[allow(clippy::too_many_arguments)]
async fn download(
    image: &ImageSubscription,
    status: &mut ImageSubscriptionStatus,
    list_key: &ObjectKey,
    key: &ImageKey,
    good: &GoodList,
    listed: &Image,
    context: &Context,
    now: Timestamp,
) -> Result<Action, ControllerError> {
    let Some(list) = context
        .lists
        .get(&ObjectRef::new(&list_key.name).within(&list_key.namespace))
    else {
        return Ok(Action::requeue(Duration::from_secs(5)));
    };
    let before = status.clone();
    if status.phase != ImagePhase::Downloading {
        context
            .event(
                image,
                EventType::Normal,
                "DownloadStarted",
                "Download",
                format!(
                    "{} ({} bytes, sha512:{}) from {}",
                    listed.identifier.as_str(),
                    listed.size,
                    listed.sha512.as_str(),
                    crate::sync::engine::resolve_image_url(&list.spec.url, &listed.uri)
                ),
            )
            .await;
    }
    status.phase = ImagePhase::Downloading;
    status.progress = Some(DownloadProgress {
        bytes: 0,
        total: listed.size,
        percent: 0,
    });
    set(
        &mut status.conditions,
        "Reconciling",
        true,
        "Downloading",
        "downloading the image",
        now,
    );
    not_ready(status, "Downloading", "downloading the image", now);
    context.apply_status(image, Some(&before), status).await?;

    // The engine's transfer settings come from the list's Secrets.
    let manifests = super::inputs::transfer_manifests(&list, list_key, context).await?;

    let (progress_tx, mut progress_rx) = tokio::sync::watch::channel((0u64, listed.size));
    let sink = ProgressSink(Arc::new(move |_: &str, received: u64, total: u64| {
        progress_tx.send_replace((received, total));
    }));
    let permit = context.downloads.acquire().await;
    let started = Instant::now();
    let transfer = context.engine.download(
        &manifests,
        list_key,
        &list,
        good,
        listed,
        key,
        now,
        Some(&sink),
    );
    tokio::pin!(transfer);
    let mut last_written = Instant::now();
    let result = loop {
        tokio::select! {
            result = &mut transfer => break result,
            changed = progress_rx.changed() => {
                if changed.is_err() || last_written.elapsed() < PROGRESS_EVERY {
                    continue;
                }
                let (received, total) = *progress_rx.borrow_and_update();
                let before = status.clone();
                status.progress = Some(DownloadProgress {
                    bytes: received,
                    total,
                    percent: u8::try_from(received.saturating_mul(100) / total.max(1)).unwrap_or(100),
                });
                if let Err(err) = context.apply_status(image, Some(&before), status).await {
                    tracing::debug!(image = %key, error = %err, "progress not written");
                }
                last_written = Instant::now();
            }
        }
    };
    drop(permit);
    let elapsed = started.elapsed().as_secs_f64();
    conditions::remove_condition(&mut status.conditions, "Reconciling");
    status.progress = None;
    match result {
        Ok(path) => {
            context.metrics.download_bytes.inc_by(listed.size);
            context
                .metrics
                .download_duration
                .with_label_values(&["success"])
                .observe(elapsed);
            context
                .event(
                    image,
                    EventType::Normal,
                    "Available",
                    "Download",
                    format!(
                        "{} verified (sha512:{}) at {}",
                        listed.identifier.as_str(),
                        listed.sha512.as_str(),
                        path.display()
                    ),
                )
                .await;
            status.last_integrity_check = Some(imagelist::format_timestamp(Timestamp::now()));
            available(image, status, key, listed, context, Timestamp::now()).await
        }
        Err(failure) => {
            context
                .metrics
                .download_duration
                .with_label_values(&["failure"])
                .observe(elapsed);
            context
                .metrics
                .download_failures
                .with_label_values(&[failure.reason.as_ref()])
                .inc();
            let reason = failure.condition_reason();
            context
                .event(
                    image,
                    EventType::Warning,
                    &reason,
                    "Download",
                    failure.message.clone(),
                )
                .await;
            status.phase = ImagePhase::Failed;
            set(
                &mut status.conditions,
                "Available",
                false,
                &reason,
                &failure.message,
                now,
            );
            not_ready(status, &reason, &failure.message, now);
            context
                .apply_status(image, image.status.as_ref(), status)
                .await?;
            Err(ControllerError::Image {
                code: failure.reason.into_owned(),
                message: failure.message,
            })
        }
    }
}

fn record_history(
    status: &mut ImageSubscriptionStatus,
    reason: ExpireReason,
    archived: &str,
    now: Timestamp,
) {
    let sha512 = status
        .artifact
        .as_ref()
        .map(|a| a.digest.clone())
        .unwrap_or_default();
    status.history.insert(
        0,
        ExpiredRecord {
            sha512,
            reason: reason.code().into(),
            expired_at: imagelist::format_timestamp(now),
            archived_path: archived.to_string(),
        },
    );
    status.history.truncate(crate::api::MAX_HISTORY);
}

/// Moves `key` to expired/ with Events around it, unless another live
/// ImageSubscription claims it or it is not cached.
async fn expire_file(
    image: &ImageSubscription,
    status: &mut ImageSubscriptionStatus,
    key: &ImageKey,
    reason: ExpireReason,
    view: &ListView,
    context: &Context,
    now: Timestamp,
) {
    let list_key = ObjectKey::new(key.namespace.as_str(), key.subscription.as_str());
    let me = key_of(image);
    if claimed_keys(context, &list_key, view, Some(&me), false).contains(key)
        && !matches!(view, ListView::Withdrawn(..))
    {
        return;
    }
    if context.engine.store().cached(key).is_none() {
        return;
    }
    context
        .event(
            image,
            EventType::Normal,
            "Expiring",
            "Expire",
            format!("{key}: {}", reason.code()),
        )
        .await;
    match context.engine.store().expire(key, reason, now) {
        Ok(entry) => {
            context
                .event(
                    image,
                    EventType::Warning,
                    "Expired",
                    "Expire",
                    format!(
                        "{key}: {}; archived as expired/{}/{}/{}",
                        reason.code(),
                        key.namespace,
                        key.subscription,
                        entry.name
                    ),
                )
                .await;
            record_history(status, reason, &entry.name, now);
            status.artifact = None;
        }
        Err(err) => {
            tracing::warn!(image = %key, error = %err, reason = err.reason(), "expiry failed");
        }
    }
}

/// The image is no longer endorsed: archive the file, record why.
#[allow(clippy::too_many_arguments)]
async fn withdraw(
    image: &ImageSubscription,
    status: &mut ImageSubscriptionStatus,
    list_key: &ObjectKey,
    view: Option<&ListView>,
    reason: ExpireReason,
    message: &str,
    context: &Context,
    now: Timestamp,
) -> Result<(), ControllerError> {
    let withdrawn = ListView::withdrawn(reason, message);
    let effective = match view {
        Some(good @ ListView::Good(_)) => good,
        _ => &withdrawn,
    };
    if let Some(key) = key_for(image, list_key, view) {
        expire_file(image, status, &key, reason, effective, context, now).await;
    }
    status.artifact = None;
    status.progress = None;
    let code = camel_case(reason.code());
    // Expired once it had an image; Pending if it never matched anything.
    status.phase = if status.history.is_empty() && status.image.is_none() {
        ImagePhase::Pending
    } else {
        ImagePhase::Expired
    };
    set(
        &mut status.conditions,
        "Available",
        false,
        &code,
        message,
        now,
    );
    not_ready(status, &code, message, now);
    conditions::remove_condition(&mut status.conditions, "Reconciling");
    Ok(())
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
