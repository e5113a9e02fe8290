//! Which images a list subscription wants: what an ImageSubscription
//! resolves to, what AutoSubscribe selects, and the desired cache state
//! both drivers hand to the planner (`store::plan`).

use std::collections::BTreeSet;
use std::time::Duration;

use super::inputs::ObjectKey;
use super::view::GoodList;
use crate::api::{ImageListSubscription, ImagePolicy, ImageSubscription};
use crate::imagelist::{Image, ImageId};
use crate::store::{ListKey, Namespace, SubscriptionName, SubscriptionState, WantedImage};

/// The image an ImageSubscription selects in a good list: by identifier,
/// else the first image with its sha512.
pub fn resolve<'a>(subscription: &'a ImageSubscription, good: &'a GoodList) -> Option<&'a Image> {
    match (&subscription.spec.identifier, &subscription.spec.sha512) {
        (Some(id), _) => good.parsed.list.image(id),
        (_, Some(sum)) => good.parsed.list.images_by_sha512(sum).next(),
        _ => None,
    }
}

/// The desired state of a list's images: what its (not suspended)
/// ImageSubscriptions select plus AutoSubscribe's selection.
pub fn endorsed_state<'s>(
    list: &ImageListSubscription,
    good: &GoodList,
    subscriptions: impl IntoIterator<Item = &'s ImageSubscription>,
) -> SubscriptionState {
    let images = &good.parsed.list.images;
    let mut wanted_ids: BTreeSet<ImageId> = BTreeSet::new();
    for subscription in subscriptions.into_iter().filter(|s| !s.spec.suspend) {
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
            .map(wanted)
            .collect(),
        listed: images
            .iter()
            .map(|image| image.identifier.clone())
            .collect(),
    }
}

/// The cache's view of one endorsed image.
pub fn wanted(image: &Image) -> WantedImage {
    WantedImage {
        image: image.identifier.clone(),
        sha512: image.sha512.clone(),
        size: image.size,
        expires: image.expires,
    }
}

/// The images AutoSubscribe selects from a list (none under Manual): all,
/// or those matching the selector (os and arch case-insensitively, the
/// title by regular expression).
pub fn auto_selected<'a>(
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

/// The store key of a list subscription (`None` for names the store
/// cannot hold; the API validates them first).
pub fn cache_list_key(key: &ObjectKey) -> Option<ListKey> {
    Some(ListKey::new(
        Namespace::new(&key.namespace).ok()?,
        SubscriptionName::new(&key.name).ok()?,
    ))
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

/// The interval plus up to 10% more, fixed per subscription (a hash of its
/// key): sites started by the same cron minute do not all hit a publisher
/// at once, and one subscription keeps a steady rhythm.
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
