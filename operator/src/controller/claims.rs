//! Which cache entries the ImageSubscriptions of a list claim: what an
//! image reconcile resolves to, and what the list's sweep must leave alone.
//! Shared by the list and image reconcilers (neither imports the other).

use std::collections::BTreeSet;

use kube::ResourceExt as _;

use super::{Context, key_of};
use crate::api::ImageSubscription;
use crate::imagelist::ImageId;
use crate::store::ImageKey;
use crate::subscription::select::{cache_list_key, resolve};
use crate::subscription::{ListView, ObjectKey};

/// The cache key an ImageSubscription has now: its resolved image, else
/// the one its status last recorded.
pub fn key_for(
    subscription: &ImageSubscription,
    list_key: &ObjectKey,
    view: Option<&ListView>,
) -> Option<ImageKey> {
    let sub = cache_list_key(list_key)?;
    if let Some(ListView::Good(good)) = view
        && let Some(image) = resolve(subscription, good)
    {
        return Some(sub.image(image.identifier.clone()));
    }
    if let Some(id) = &subscription.spec.identifier
        && let Ok(id) = ImageId::new(id)
    {
        return Some(sub.image(id));
    }
    let recorded = subscription.status.as_ref()?.image.as_ref()?;
    Some(sub.image(ImageId::new(&recorded.identifier).ok()?))
}

/// Cache keys of `list_key` claimed by live ImageSubscriptions (except
/// `except`): a file one of them still wants is never expired by another.
/// With `include_held`, also the files they last held (the list's sweep
/// leaves those to their own reconciles).
pub fn claimed_keys(
    context: &Context,
    list_key: &ObjectKey,
    view: &ListView,
    except: Option<&ObjectKey>,
    include_held: bool,
) -> BTreeSet<ImageKey> {
    context
        .images
        .state()
        .iter()
        .filter(|image| image.metadata.deletion_timestamp.is_none() && !image.spec.suspend)
        .filter(|image| {
            image.namespace().as_deref() == Some(list_key.namespace.as_str())
                && image.spec.subscription_ref.name == list_key.name
        })
        .filter(|image| except != Some(&key_of(&***image)))
        .flat_map(|image| {
            // What it resolves to now, and what it last held: a file a
            // subscription still holds is expired by its own reconcile,
            // which records why and publishes the Events.
            let resolved = match view {
                ListView::Good(good) => resolve(image, good).and_then(|found| {
                    Some(cache_list_key(list_key)?.image(found.identifier.clone()))
                }),
                _ => None,
            };
            let held = include_held
                .then(|| key_for(image, list_key, None))
                .flatten();
            resolved.into_iter().chain(held)
        })
        .collect()
}
