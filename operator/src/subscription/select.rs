//! Which images a list subscription wants: what an ImageSubscription
//! resolves to, what AutoSubscribe selects, and the desired cache state
//! both drivers hand to the planner (`store::plan`).

use std::collections::BTreeSet;
use std::time::Duration;

use super::failure::Failure;
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
    let selector = list.spec.image_selector.clone().unwrap_or_default();
    let pattern = selector.title_pattern.as_deref().map(title_regex);
    // An invalid pattern selects nothing (the list is Stalled for it).
    let auto =
        list.spec.image_policy == ImagePolicy::AutoSubscribe && !matches!(pattern, Some(Err(_)));
    let pattern = pattern.and_then(Result::ok);
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

/// Longest `imageSelector.titlePattern` accepted.
pub const MAX_TITLE_PATTERN: usize = 256;
/// Shortest `interval`: publishers are not polled more often.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Bounds of `timeout`, one list fetch.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// A title pattern as a bounded regular expression (linear time by
/// construction; its compiled size is capped too).
fn title_regex(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.len() > MAX_TITLE_PATTERN {
        return Err(format!("longer than {MAX_TITLE_PATTERN} bytes"));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|err| err.to_string())
}

/// The spec rules a schema cannot fully express (or that a manifest read
/// by `vmlisub sync` never met): a valid title pattern, `interval` of at
/// least [`MIN_INTERVAL`], `timeout` within its bounds. Only a spec change
/// cures them (Stalled).
pub fn validate_spec(list: &ImageListSubscription) -> Result<(), Failure> {
    use crate::api::duration::parse_duration;
    if let Some(pattern) = list
        .spec
        .image_selector
        .as_ref()
        .and_then(|s| s.title_pattern.as_deref())
        && let Err(why) = title_regex(pattern)
    {
        return Err(Failure::spec(
            "invalid-selector",
            format!(
                "imageSelector.titlePattern {pattern:?} is not a valid regular expression: {why}"
            ),
        ));
    }
    match parse_duration(&list.spec.interval) {
        Ok(interval) if interval >= MIN_INTERVAL => {}
        Ok(_) => {
            return Err(Failure::spec(
                "invalid-interval",
                format!("interval {} is shorter than 1m", list.spec.interval),
            ));
        }
        Err(err) => return Err(Failure::spec("invalid-interval", err.to_string())),
    }
    if let Some(timeout) = &list.spec.timeout {
        match parse_duration(timeout) {
            Ok(t) if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&t) => {}
            Ok(_) => {
                return Err(Failure::spec(
                    "invalid-timeout",
                    format!("timeout {timeout} is not between 1s and 1h"),
                ));
            }
            Err(err) => return Err(Failure::spec("invalid-timeout", err.to_string())),
        }
    }
    Ok(())
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn list(spec: serde_json::Value) -> ImageListSubscription {
        ImageListSubscription::new("l", serde_json::from_value(spec).unwrap())
    }

    #[test]
    fn an_invalid_title_pattern_stalls_and_selects_nothing() {
        let bad = list(serde_json::json!({
            "url": "https://example.org/list",
            "imagePolicy": "AutoSubscribe",
            "imageSelector": {"titlePattern": "CentOS (7"},
        }));
        let failure = validate_spec(&bad).unwrap_err();
        assert_eq!(failure.reason, "invalid-selector");
        assert!(failure.is_spec_error());
        let good = crate::subscription::view::fixture(3);
        assert_eq!(auto_selected(&bad, &good.parsed.list.images).count(), 0);
        let fine = list(serde_json::json!({
            "url": "https://example.org/list",
            "imagePolicy": "AutoSubscribe",
            "imageSelector": {"titlePattern": "^image [02]$"},
        }));
        assert!(validate_spec(&fine).is_ok());
        let picked: Vec<_> = auto_selected(&fine, &good.parsed.list.images)
            .map(|i| i.identifier.as_str().to_string())
            .collect();
        assert_eq!(picked, ["img-0", "img-2"]);
        let long = list(serde_json::json!({
            "url": "https://example.org/list",
            "imageSelector": {"titlePattern": "a".repeat(MAX_TITLE_PATTERN + 1)},
        }));
        assert_eq!(validate_spec(&long).unwrap_err().reason, "invalid-selector");
        // A pattern whose compiled form is huge is refused, not built.
        let huge = list(serde_json::json!({
            "url": "https://example.org/list",
            "imageSelector": {"titlePattern": "(\\w{100}){100}"},
        }));
        assert_eq!(validate_spec(&huge).unwrap_err().reason, "invalid-selector");
    }

    #[test]
    fn intervals_and_timeouts_have_floors() {
        let with = |interval: &str, timeout: Option<&str>| {
            let mut spec =
                serde_json::json!({"url": "https://example.org/list", "interval": interval});
            if let Some(timeout) = timeout {
                spec["timeout"] = serde_json::json!(timeout);
            }
            validate_spec(&list(spec)).map_err(|f| f.reason.to_string())
        };
        assert_eq!(with("1ms", None), Err("invalid-interval".into()));
        assert_eq!(with("59s", None), Err("invalid-interval".into()));
        assert_eq!(with("1m", None), Ok(()));
        assert_eq!(with("6h", Some("500ms")), Err("invalid-timeout".into()));
        assert_eq!(with("6h", Some("2h")), Err("invalid-timeout".into()));
        assert_eq!(with("6h", Some("30s")), Ok(()));
    }

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
