//! Expiry: a file leaves the endorsed area with Events around it
//! (Expiring, Expired) and a history record, unless another live
//! ImageSubscription still claims it.

use jiff::Timestamp;
use kube::runtime::events::EventType;

use crate::api::hooks::HookEvent;
use crate::api::{ImageSubscription, ImageSubscriptionStatus};
use crate::controller::claims::{claimed_keys, key_for};
use crate::controller::hooks;
use crate::controller::{Context, ControllerError, key_of};
use crate::reason::{Reason as _, camel_case};
use crate::store::{ExpireReason, ImageKey};
use crate::subscription::status;
use crate::subscription::{ListView, ObjectKey};

/// Moves `key` to expired/ with Events around it, unless another live
/// ImageSubscription claims it or it is not cached.
pub async fn expire_file(
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
    if context.core.store().cached(key).is_none() {
        return;
    }
    let record = context.core.store().record(key).ok();
    let path = context.core.store().image_path(key);
    let marker = hooks::marker_of(status);
    let fire = |event| {
        let (record, path, marker, list_key) = (&record, &path, &marker, &list_key);
        async move {
            if let Some(record) = record {
                let fired = hooks::Fired {
                    image,
                    list_key,
                    event,
                    record,
                    path,
                    marker,
                };
                hooks::fire(context, fired).await;
            }
        }
    };
    context.event(
        image,
        EventType::Normal,
        "Expiring",
        "Expire",
        format!("{key}: {}", reason.code()),
    );
    fire(HookEvent::ExpirePrefix).await;
    match context.core.store().expire(key, reason, now) {
        Ok(entry) => {
            context.event(
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
            );
            fire(HookEvent::ExpirePostfix).await;
            status::record_history(status, reason, &entry.name, now);
            status.artifact = None;
        }
        Err(err) => {
            tracing::warn!(image = %key, error = %err, reason = err.reason(), "expiry failed");
        }
    }
}

/// The image is no longer endorsed: archive the file, record why.
#[allow(clippy::too_many_arguments)]
pub async fn withdraw(
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
    status::image_withdrawn(status, &camel_case(reason.code()), message, now);
    Ok(())
}
