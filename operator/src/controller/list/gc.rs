//! The list's garbage collection: cached images of this subscription that
//! no ImageSubscription claims (removed while the operator was down, or a
//! finalizer forced away) are expired. Claimed images are left to their
//! own reconciles, which record the expiry and its Events.

use jiff::Timestamp;
use kube::ResourceExt as _;

use crate::api::ImageListSubscription;
use crate::controller::Context;
use crate::controller::claims::claimed_keys;
use crate::reason::Reason as _;
use crate::store::{Desired, SubscriptionState};
use crate::subscription::select::{cache_list_key, endorsed_state};
use crate::subscription::{ListView, ObjectKey};

/// Expires what no live ImageSubscription of `key` claims.
pub fn sweep(
    list: &ImageListSubscription,
    key: &ObjectKey,
    view: &ListView,
    context: &Context,
    now: Timestamp,
) {
    let Some(subscription) = cache_list_key(key) else {
        return;
    };
    let state = match view {
        ListView::Good(good) => {
            let images = context.images.state();
            let mine = images.iter().filter(|image| {
                image.namespace().as_deref() == Some(key.namespace.as_str())
                    && image.spec.subscription_ref.name == key.name
                    && image.metadata.deletion_timestamp.is_none()
            });
            endorsed_state(list, good, mine.map(|image| &**image))
        }
        ListView::Withdrawn(reason, _) => SubscriptionState::Withdrawn(*reason),
        ListView::Unavailable(_) => return,
    };
    let claimed = claimed_keys(context, key, view, None, true);
    let Ok(inventory) = context.core.store().inventory_of(&subscription) else {
        return;
    };
    let plan = crate::store::plan(
        &inventory,
        &[Desired {
            subscription,
            state,
        }],
        now,
    );
    for (image, reason) in plan.expire {
        if claimed.contains(&image) {
            continue;
        }
        match context.core.store().expire(&image, reason, now) {
            Ok(entry) => {
                tracing::info!(image = %image, reason = reason.code(), archived = %entry.name, "expired unclaimed image")
            }
            Err(err) => {
                tracing::warn!(image = %image, error = %err, reason = err.reason(), "expiry failed")
            }
        }
    }
}
