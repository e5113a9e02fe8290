//! Pure planning: what to download, keep and expire.
//!
//! [`plan`] looks only at the cache inventory, what the caller wants per
//! subscription, and the time it is given; it does no I/O and reads no
//! clock, so every rule is a unit test. The shell then executes the plan
//! with the [`CacheStore`](super::CacheStore): expirations first (a changed
//! image must leave the endorsed area before its replacement can be
//! promoted under the same name), then downloads.
//!
//! Scope: only subscriptions named in the input are planned. Cached images
//! of any other subscription are reported as `untouched`, never expired: a
//! reconciler that plans one subscription must not wipe the others, and
//! "this subscription is gone" is a decision the caller states explicitly
//! with [`SubscriptionState::Withdrawn`].

use super::names::{ImageKey, ListKey};
use super::record::ExpireReason;
use crate::imagelist::{ImageId, Sha512Hex};
use jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

/// One verified image in the endorsed area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedImage {
    /// Its key.
    pub key: ImageKey,
    /// The verified digest (from its record).
    pub sha512: Sha512Hex,
    /// The verified size (from its record).
    pub size: u64,
    /// When it was verified.
    pub verified_at: Timestamp,
}

/// The verified images in the endorsed area, by key.
///
/// Built by [`CacheStore::inventory`](super::CacheStore::inventory) (only
/// complete, verified entries count; recovery reports the rest) or by hand
/// in tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    images: BTreeMap<ImageKey, CachedImage>,
}

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an image; returns the previous entry of the key.
    pub fn insert(&mut self, image: CachedImage) -> Option<CachedImage> {
        self.images.insert(image.key.clone(), image)
    }

    /// The entry of `key`.
    pub fn get(&self, key: &ImageKey) -> Option<&CachedImage> {
        self.images.get(key)
    }

    /// All entries, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = &CachedImage> {
        self.images.values()
    }

    /// The entries of one subscription, ordered by key.
    pub fn of_subscription<'a>(
        &'a self,
        subscription: &'a ListKey,
    ) -> impl Iterator<Item = &'a CachedImage> + 'a {
        self.images
            .values()
            .filter(move |c| c.key.belongs_to(subscription))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Total verified bytes.
    pub fn total_bytes(&self) -> u64 {
        self.images
            .values()
            .fold(0u64, |acc, c| acc.saturating_add(c.size))
    }
}

impl FromIterator<CachedImage> for Inventory {
    fn from_iter<T: IntoIterator<Item = CachedImage>>(iter: T) -> Self {
        let mut inventory = Self::new();
        for image in iter {
            inventory.insert(image);
        }
        inventory
    }
}

/// An image the caller wants cached, from a currently valid list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedImage {
    /// Its identifier; the subscription comes from the enclosing
    /// [`Desired`], so an image can never be filed under another one.
    pub image: ImageId,
    /// The listed `sl:checksum:sha512`.
    pub sha512: Sha512Hex,
    /// The listed `hv:size`.
    pub size: u64,
    /// The image's own `dc:date:expires`, if any.
    pub expires: Option<Timestamp>,
}

/// What the caller knows about one subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionState {
    /// The subscription's stored list verifies and is endorsed.
    Endorsed {
        /// The list's `dc:date:expires`; at or after it the list endorses
        /// nothing, whatever the caller thinks (checked here again, because
        /// the original kept serving images of expired lists).
        list_expires: Timestamp,
        /// The images selected for caching.
        wanted: Vec<WantedImage>,
        /// Every identifier in the list, selected or not; only used to tell
        /// [`ExpireReason::Unsubscribed`] from
        /// [`ExpireReason::RemovedFromList`].
        listed: Vec<ImageId>,
    },
    /// Everything of the subscription must leave the endorsed area, for
    /// this reason (list expired, signer invalid, endorser removed,
    /// subscription gone, ...).
    Withdrawn(ExpireReason),
}

/// One subscription and its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The subscription.
    pub subscription: ListKey,
    /// Its state.
    pub state: SubscriptionState,
}

/// An image to download (then verify and promote).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    /// Where it goes.
    pub key: ImageKey,
    /// The digest it must have.
    pub sha512: Sha512Hex,
    /// The size it must have.
    pub size: u64,
}

/// The outcome of [`plan`]. Every inventory entry appears in exactly one of
/// `keep`, `expire` and `untouched`; all vectors are sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Images to fetch: wanted and not (validly) cached. An image that is
    /// also in `expire` is a replacement: expire first.
    pub download: Vec<Download>,
    /// Cached images that stay.
    pub keep: Vec<ImageKey>,
    /// Cached images that must leave the endorsed area, and why.
    pub expire: Vec<(ImageKey, ExpireReason)>,
    /// Cached images of subscriptions that were not planned.
    pub untouched: Vec<ImageKey>,
}

impl Plan {
    /// Whether the plan changes nothing.
    pub fn is_noop(&self) -> bool {
        self.download.is_empty() && self.expire.is_empty()
    }
}

/// The merged view of one subscription after resolving duplicates.
enum Merged<'a> {
    Endorsed {
        list_expires: Timestamp,
        wanted: BTreeMap<&'a ImageId, Vec<&'a WantedImage>>,
        listed: BTreeSet<&'a ImageId>,
    },
    Withdrawn(ExpireReason),
}

/// Merges the caller's entries per subscription. Duplicates are resolved on
/// the safe side: any withdrawal wins (the first one's reason), several
/// endorsed entries merge with the earliest list expiry.
fn merge(desired: &[Desired]) -> BTreeMap<&ListKey, Merged<'_>> {
    let mut merged: BTreeMap<&ListKey, Merged<'_>> = BTreeMap::new();
    for d in desired {
        let entry = merged.entry(&d.subscription);
        match &d.state {
            SubscriptionState::Withdrawn(reason) => {
                let slot = entry.or_insert(Merged::Withdrawn(*reason));
                if matches!(slot, Merged::Endorsed { .. }) {
                    *slot = Merged::Withdrawn(*reason);
                }
            }
            SubscriptionState::Endorsed {
                list_expires,
                wanted,
                listed,
            } => {
                let slot = entry.or_insert_with(|| Merged::Endorsed {
                    list_expires: *list_expires,
                    wanted: BTreeMap::new(),
                    listed: BTreeSet::new(),
                });
                if let Merged::Endorsed {
                    list_expires: expires,
                    wanted: w,
                    listed: l,
                } = slot
                {
                    *expires = (*expires).min(*list_expires);
                    for image in wanted {
                        w.entry(&image.image).or_default().push(image);
                    }
                    l.extend(listed.iter());
                }
            }
        }
    }
    merged
}

/// What to do for one wanted identifier.
enum Want<'a> {
    /// Fetch/keep this content.
    Content(&'a WantedImage),
    /// Not cacheable now, for this reason (expired image, ambiguous).
    Refuse(ExpireReason),
}

fn resolve_want<'a>(candidates: &[&'a WantedImage], now: Timestamp) -> Option<Want<'a>> {
    let first = *candidates.first()?;
    if candidates
        .iter()
        .any(|c| c.sha512 != first.sha512 || c.size != first.size)
    {
        return Some(Want::Refuse(ExpireReason::Ambiguous));
    }
    // The earliest of the duplicates' expiries applies.
    let expires = candidates.iter().filter_map(|c| c.expires).min();
    if expires.is_some_and(|e| now >= e) {
        return Some(Want::Refuse(ExpireReason::ImageExpired));
    }
    Some(Want::Content(first))
}

/// Decides what to download, keep and expire.
///
/// Rules, per planned subscription:
/// * [`SubscriptionState::Withdrawn`]: every cached image expires with the
///   given reason; nothing is downloaded.
/// * Endorsed, but `now >= list_expires`: as withdrawn with
///   [`ExpireReason::ListExpired`].
/// * Endorsed: a wanted image whose own expiry has passed is not
///   downloaded, and a cached copy expires ([`ExpireReason::ImageExpired`]);
///   a wanted identifier given twice with different content is treated the
///   same way ([`ExpireReason::Ambiguous`]). Otherwise a cached copy with the
///   same sha512 and size is kept; one with another sha512 expires
///   ([`ExpireReason::ChecksumChanged`]) and one with the same sha512 but
///   another size expires ([`ExpireReason::SizeChanged`]), and in both cases
///   (and when nothing is cached) the image is downloaded.
/// * Endorsed: a cached image that is not wanted expires with
///   [`ExpireReason::Unsubscribed`] if the list still carries it, else
///   [`ExpireReason::RemovedFromList`].
///
/// Checksums compare as lower-case hex (both sides are [`Sha512Hex`]).
pub fn plan(inventory: &Inventory, desired: &[Desired], now: Timestamp) -> Plan {
    let merged = merge(desired);
    let mut out = Plan::default();

    for cached in inventory.iter() {
        let sub = cached.key.cache_list_key();
        let Some(state) = merged.get(&sub) else {
            out.untouched.push(cached.key.clone());
            continue;
        };
        match state {
            Merged::Withdrawn(reason) => out.expire.push((cached.key.clone(), *reason)),
            Merged::Endorsed { list_expires, .. } if now >= *list_expires => {
                out.expire
                    .push((cached.key.clone(), ExpireReason::ListExpired));
            }
            Merged::Endorsed { wanted, listed, .. } => match wanted
                .get(&cached.key.image)
                .and_then(|c| resolve_want(c, now))
            {
                None if listed.contains(&cached.key.image) => {
                    out.expire
                        .push((cached.key.clone(), ExpireReason::Unsubscribed));
                }
                None => out
                    .expire
                    .push((cached.key.clone(), ExpireReason::RemovedFromList)),
                Some(Want::Refuse(reason)) => out.expire.push((cached.key.clone(), reason)),
                Some(Want::Content(w)) if w.sha512 != cached.sha512 => {
                    out.expire
                        .push((cached.key.clone(), ExpireReason::ChecksumChanged));
                }
                Some(Want::Content(w)) if w.size != cached.size => {
                    out.expire
                        .push((cached.key.clone(), ExpireReason::SizeChanged));
                }
                Some(Want::Content(_)) => out.keep.push(cached.key.clone()),
            },
        }
    }

    let kept: BTreeSet<&ImageKey> = out.keep.iter().collect();
    for (sub, state) in &merged {
        let Merged::Endorsed {
            list_expires,
            wanted,
            ..
        } = state
        else {
            continue;
        };
        if now >= *list_expires {
            continue;
        }
        for (image, candidates) in wanted {
            let key = sub.image((*image).clone());
            if kept.contains(&key) {
                continue;
            }
            if let Some(Want::Content(w)) = resolve_want(candidates, now) {
                out.download.push(Download {
                    key,
                    sha512: w.sha512.clone(),
                    size: w.size,
                });
            }
        }
    }

    out.download.sort_by(|a, b| a.key.cmp(&b.key));
    out.keep.sort();
    out.expire.sort();
    out.untouched.sort();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::names::{Namespace, SubscriptionName};

    fn sha(b: u8) -> Sha512Hex {
        Sha512Hex::from_digest(&[b; 64])
    }

    fn sub(ns: &str, name: &str) -> ListKey {
        ListKey::new(
            Namespace::new(ns).unwrap(),
            SubscriptionName::new(name).unwrap(),
        )
    }

    fn id(s: &str) -> ImageId {
        ImageId::new(s).unwrap()
    }

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    const NOW: i64 = 1_700_000_000;

    fn cached(s: &ListKey, image: &str, sha512: u8, size: u64) -> CachedImage {
        CachedImage {
            key: s.image(id(image)),
            sha512: sha(sha512),
            size,
            verified_at: ts(NOW - 100),
        }
    }

    fn want(image: &str, sha512: u8, size: u64) -> WantedImage {
        WantedImage {
            image: id(image),
            sha512: sha(sha512),
            size,
            expires: None,
        }
    }

    fn endorsed(s: &ListKey, wanted: Vec<WantedImage>, listed: &[&str]) -> Desired {
        Desired {
            subscription: s.clone(),
            state: SubscriptionState::Endorsed {
                list_expires: ts(NOW + 1000),
                wanted,
                listed: listed.iter().map(|l| id(l)).collect(),
            },
        }
    }

    fn keys(v: &[(ImageKey, ExpireReason)]) -> Vec<(String, ExpireReason)> {
        v.iter().map(|(k, r)| (k.to_string(), *r)).collect()
    }

    /// Every inventory entry is classified exactly once, and nothing is
    /// both kept and downloaded.
    fn assert_partition(inv: &Inventory, p: &Plan) {
        let mut seen = BTreeSet::new();
        for k in p
            .keep
            .iter()
            .chain(p.expire.iter().map(|(k, _)| k))
            .chain(p.untouched.iter())
        {
            assert!(seen.insert(k.clone()), "{k} classified twice");
        }
        let inv_keys: BTreeSet<_> = inv.iter().map(|c| c.key.clone()).collect();
        assert_eq!(seen, inv_keys);
        for d in &p.download {
            assert!(!p.keep.contains(&d.key), "{} kept and downloaded", d.key);
        }
    }

    #[test]
    fn empty_everything_is_a_noop() {
        let p = plan(&Inventory::new(), &[], ts(NOW));
        assert!(p.is_noop());
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn new_images_are_downloaded() {
        let s = sub("ns", "list");
        let p = plan(
            &Inventory::new(),
            &[endorsed(
                &s,
                vec![want("b", 2, 20), want("a", 1, 10)],
                &["a", "b"],
            )],
            ts(NOW),
        );
        assert_eq!(
            p.download,
            vec![
                Download {
                    key: s.image(id("a")),
                    sha512: sha(1),
                    size: 10
                },
                Download {
                    key: s.image(id("b")),
                    sha512: sha(2),
                    size: 20
                },
            ]
        );
        assert!(p.keep.is_empty() && p.expire.is_empty());
    }

    #[test]
    fn matching_cache_is_kept() {
        let s = sub("ns", "list");
        let inv: Inventory = [cached(&s, "a", 1, 10)].into_iter().collect();
        let p = plan(
            &inv,
            &[endorsed(&s, vec![want("a", 1, 10)], &["a"])],
            ts(NOW),
        );
        assert_eq!(p.keep, vec![s.image(id("a"))]);
        assert!(p.is_noop());
        assert_partition(&inv, &p);
    }

    #[test]
    fn checksum_changed_expires_and_redownloads() {
        let s = sub("ns", "list");
        let inv: Inventory = [cached(&s, "a", 1, 10)].into_iter().collect();
        let p = plan(
            &inv,
            &[endorsed(&s, vec![want("a", 2, 10)], &["a"])],
            ts(NOW),
        );
        assert_eq!(
            keys(&p.expire),
            vec![("ns/list/a".into(), ExpireReason::ChecksumChanged)]
        );
        assert_eq!(p.download.len(), 1);
        assert_eq!(p.download[0].sha512, sha(2));
        assert_partition(&inv, &p);
    }

    #[test]
    fn checksum_comparison_ignores_case() {
        // Sha512Hex normalises; an upper-case listed checksum equals the cached one.
        let s = sub("ns", "list");
        let lower = sha(0xab);
        let upper = Sha512Hex::new(&lower.as_str().to_ascii_uppercase()).unwrap();
        let inv: Inventory = [CachedImage {
            key: s.image(id("a")),
            sha512: lower,
            size: 1,
            verified_at: ts(NOW),
        }]
        .into_iter()
        .collect();
        let w = WantedImage {
            image: id("a"),
            sha512: upper,
            size: 1,
            expires: None,
        };
        let p = plan(&inv, &[endorsed(&s, vec![w], &["a"])], ts(NOW));
        assert_eq!(p.keep.len(), 1);
    }

    #[test]
    fn size_changed_expires_and_redownloads() {
        let s = sub("ns", "list");
        let inv: Inventory = [cached(&s, "a", 1, 10)].into_iter().collect();
        let p = plan(
            &inv,
            &[endorsed(&s, vec![want("a", 1, 11)], &["a"])],
            ts(NOW),
        );
        assert_eq!(
            keys(&p.expire),
            vec![("ns/list/a".into(), ExpireReason::SizeChanged)]
        );
        assert_eq!(p.download.len(), 1);
        assert_partition(&inv, &p);
    }

    #[test]
    fn removed_and_unsubscribed_are_told_apart() {
        let s = sub("ns", "list");
        let inv: Inventory = [
            cached(&s, "gone", 1, 10),
            cached(&s, "listed", 2, 10),
            cached(&s, "kept", 3, 10),
        ]
        .into_iter()
        .collect();
        let p = plan(
            &inv,
            &[endorsed(&s, vec![want("kept", 3, 10)], &["listed", "kept"])],
            ts(NOW),
        );
        assert_eq!(
            keys(&p.expire),
            vec![
                ("ns/list/gone".into(), ExpireReason::RemovedFromList),
                ("ns/list/listed".into(), ExpireReason::Unsubscribed),
            ]
        );
        assert_eq!(p.keep, vec![s.image(id("kept"))]);
        assert!(p.download.is_empty());
        assert_partition(&inv, &p);
    }

    #[test]
    fn list_expiry_withdraws_everything_even_if_the_caller_missed_it() {
        let s = sub("ns", "list");
        let inv: Inventory = [cached(&s, "a", 1, 10)].into_iter().collect();
        let d = Desired {
            subscription: s.clone(),
            state: SubscriptionState::Endorsed {
                list_expires: ts(NOW),
                wanted: vec![want("a", 1, 10), want("b", 2, 10)],
                listed: vec![],
            },
        };
        // Expiry is inclusive: at the expiry instant the list is invalid.
        let p = plan(&inv, std::slice::from_ref(&d), ts(NOW));
        assert_eq!(
            keys(&p.expire),
            vec![("ns/list/a".into(), ExpireReason::ListExpired)]
        );
        assert!(p.download.is_empty());
        // One second earlier it still endorses.
        let p = plan(&inv, &[d], ts(NOW - 1));
        assert_eq!(p.keep.len(), 1);
        assert_eq!(p.download.len(), 1);
    }

    #[test]
    fn every_withdraw_reason_expires_everything_of_the_subscription_only() {
        let s = sub("ns", "list");
        let other = sub("ns", "other");
        let inv: Inventory = [
            cached(&s, "a", 1, 10),
            cached(&s, "b", 2, 10),
            cached(&other, "a", 1, 10),
        ]
        .into_iter()
        .collect();
        for reason in [
            ExpireReason::ListExpired,
            ExpireReason::SignerInvalid,
            ExpireReason::EndorserRemoved,
            ExpireReason::SubscriptionGone,
        ] {
            let d = Desired {
                subscription: s.clone(),
                state: SubscriptionState::Withdrawn(reason),
            };
            let p = plan(&inv, &[d], ts(NOW));
            assert_eq!(
                keys(&p.expire),
                vec![("ns/list/a".into(), reason), ("ns/list/b".into(), reason)]
            );
            assert_eq!(p.untouched, vec![other.image(id("a"))]);
            assert!(p.download.is_empty() && p.keep.is_empty());
            assert_partition(&inv, &p);
        }
    }

    #[test]
    fn unplanned_subscriptions_are_untouched() {
        let s = sub("ns", "list");
        let inv: Inventory = [cached(&s, "a", 1, 10)].into_iter().collect();
        let p = plan(&inv, &[endorsed(&sub("ns", "other"), vec![], &[])], ts(NOW));
        assert_eq!(p.untouched, vec![s.image(id("a"))]);
        assert!(p.is_noop());
    }

    #[test]
    fn same_image_id_in_two_subscriptions_or_namespaces_is_independent() {
        let s1 = sub("ns1", "list");
        let s2 = sub("ns2", "list");
        let inv: Inventory = [cached(&s1, "a", 1, 10)].into_iter().collect();
        let p = plan(
            &inv,
            &[
                endorsed(&s1, vec![want("a", 1, 10)], &["a"]),
                endorsed(&s2, vec![want("a", 1, 10)], &["a"]),
            ],
            ts(NOW),
        );
        assert_eq!(p.keep, vec![s1.image(id("a"))]);
        assert_eq!(p.download.len(), 1);
        assert_eq!(p.download[0].key, s2.image(id("a")));
    }

    #[test]
    fn image_expiry_blocks_download_and_expires_cache() {
        let s = sub("ns", "list");
        let inv: Inventory = [cached(&s, "a", 1, 10)].into_iter().collect();
        let mut a = want("a", 1, 10);
        a.expires = Some(ts(NOW));
        let mut b = want("b", 2, 10);
        b.expires = Some(ts(NOW));
        let mut c = want("c", 3, 10);
        c.expires = Some(ts(NOW + 1));
        let p = plan(
            &inv,
            &[endorsed(&s, vec![a, b, c], &["a", "b", "c"])],
            ts(NOW),
        );
        assert_eq!(
            keys(&p.expire),
            vec![("ns/list/a".into(), ExpireReason::ImageExpired)]
        );
        assert_eq!(
            p.download
                .iter()
                .map(|d| d.key.to_string())
                .collect::<Vec<_>>(),
            vec!["ns/list/c"]
        );
        assert_partition(&inv, &p);
    }

    #[test]
    fn conflicting_duplicates_are_ambiguous_identical_ones_merge() {
        let s = sub("ns", "list");
        let inv: Inventory = [cached(&s, "a", 1, 10)].into_iter().collect();
        let p = plan(
            &inv,
            &[endorsed(
                &s,
                vec![
                    want("a", 1, 10),
                    want("a", 2, 10),
                    want("b", 3, 5),
                    want("b", 3, 5),
                ],
                &[],
            )],
            ts(NOW),
        );
        assert_eq!(
            keys(&p.expire),
            vec![("ns/list/a".into(), ExpireReason::Ambiguous)]
        );
        assert_eq!(p.download.len(), 1);
        assert_eq!(p.download[0].key, s.image(id("b")));
        // Ambiguity that spans two entries of the same subscription too.
        let p = plan(
            &inv,
            &[
                endorsed(&s, vec![want("a", 1, 10)], &["a"]),
                endorsed(&s, vec![want("a", 1, 11)], &["a"]),
            ],
            ts(NOW),
        );
        assert_eq!(
            keys(&p.expire),
            vec![("ns/list/a".into(), ExpireReason::Ambiguous)]
        );
        assert!(p.download.is_empty());
    }

    #[test]
    fn withdrawal_wins_over_endorsement_in_either_order() {
        let s = sub("ns", "list");
        let inv: Inventory = [cached(&s, "a", 1, 10)].into_iter().collect();
        let e = endorsed(&s, vec![want("a", 1, 10), want("b", 2, 1)], &["a", "b"]);
        let w = Desired {
            subscription: s.clone(),
            state: SubscriptionState::Withdrawn(ExpireReason::EndorserRemoved),
        };
        for order in [vec![e.clone(), w.clone()], vec![w, e]] {
            let p = plan(&inv, &order, ts(NOW));
            assert_eq!(
                keys(&p.expire),
                vec![("ns/list/a".into(), ExpireReason::EndorserRemoved)]
            );
            assert!(p.download.is_empty());
        }
    }

    #[test]
    fn duplicate_endorsements_use_the_earliest_list_expiry() {
        let s = sub("ns", "list");
        let inv: Inventory = [cached(&s, "a", 1, 10)].into_iter().collect();
        let mut early = endorsed(&s, vec![want("a", 1, 10)], &["a"]);
        if let SubscriptionState::Endorsed { list_expires, .. } = &mut early.state {
            *list_expires = ts(NOW - 1);
        }
        let late = endorsed(&s, vec![want("a", 1, 10)], &["a"]);
        let p = plan(&inv, &[late, early], ts(NOW));
        assert_eq!(
            keys(&p.expire),
            vec![("ns/list/a".into(), ExpireReason::ListExpired)]
        );
    }

    #[test]
    fn corrupt_image_removed_by_recheck_is_downloaded_again() {
        // After recheck moved a corrupt file out, the inventory no longer
        // has it, so the next plan fetches it.
        let s = sub("ns", "list");
        let p = plan(
            &Inventory::new(),
            &[endorsed(&s, vec![want("a", 1, 10)], &["a"])],
            ts(NOW),
        );
        assert_eq!(p.download.len(), 1);
    }

    /// Exhaustive over small worlds: every combination of cached state x
    /// wanted state x list state for one image, checked against an
    /// independent statement of the rules.
    #[test]
    fn exhaustive_single_image_table() {
        #[derive(Clone, Copy, Debug)]
        enum CacheState {
            None,
            Same,
            OtherSha,
            OtherSize,
        }
        #[derive(Clone, Copy, Debug)]
        enum WantState {
            NotListed,
            ListedNotWanted,
            Wanted,
            WantedExpired,
            WantedAmbiguous,
        }
        #[derive(Clone, Copy, Debug)]
        enum SubState {
            Valid,
            ListExpired,
            Withdrawn(ExpireReason),
            NotPlanned,
        }
        let s = sub("ns", "list");
        let key = s.image(id("img"));
        let subs = [
            SubState::Valid,
            SubState::ListExpired,
            SubState::Withdrawn(ExpireReason::SignerInvalid),
            SubState::Withdrawn(ExpireReason::SubscriptionGone),
            SubState::NotPlanned,
        ];
        for cache in [
            CacheState::None,
            CacheState::Same,
            CacheState::OtherSha,
            CacheState::OtherSize,
        ] {
            for wantst in [
                WantState::NotListed,
                WantState::ListedNotWanted,
                WantState::Wanted,
                WantState::WantedExpired,
                WantState::WantedAmbiguous,
            ] {
                for substate in subs {
                    let inv: Inventory = match cache {
                        CacheState::None => Inventory::new(),
                        CacheState::Same => [cached(&s, "img", 1, 10)].into_iter().collect(),
                        CacheState::OtherSha => [cached(&s, "img", 9, 10)].into_iter().collect(),
                        CacheState::OtherSize => [cached(&s, "img", 1, 99)].into_iter().collect(),
                    };
                    let (wanted, listed) = match wantst {
                        WantState::NotListed => (vec![], vec![]),
                        WantState::ListedNotWanted => (vec![], vec![id("img")]),
                        WantState::Wanted => (vec![want("img", 1, 10)], vec![id("img")]),
                        WantState::WantedExpired => {
                            let mut w = want("img", 1, 10);
                            w.expires = Some(ts(NOW - 5));
                            (vec![w], vec![id("img")])
                        }
                        WantState::WantedAmbiguous => (
                            vec![want("img", 1, 10), want("img", 2, 10)],
                            vec![id("img")],
                        ),
                    };
                    let desired = match substate {
                        SubState::Valid | SubState::ListExpired => vec![Desired {
                            subscription: s.clone(),
                            state: SubscriptionState::Endorsed {
                                list_expires: if matches!(substate, SubState::Valid) {
                                    ts(NOW + 1)
                                } else {
                                    ts(NOW - 1)
                                },
                                wanted,
                                listed,
                            },
                        }],
                        SubState::Withdrawn(r) => vec![Desired {
                            subscription: s.clone(),
                            state: SubscriptionState::Withdrawn(r),
                        }],
                        SubState::NotPlanned => vec![],
                    };
                    let p = plan(&inv, &desired, ts(NOW));
                    assert_partition(&inv, &p);
                    let ctx = format!("{cache:?} {wantst:?} {substate:?}");

                    // Independent statement of the rules.
                    let is_cached = !matches!(cache, CacheState::None);
                    let expected_expire: Option<ExpireReason> = if !is_cached {
                        None
                    } else {
                        match substate {
                            SubState::NotPlanned => None,
                            SubState::ListExpired => Some(ExpireReason::ListExpired),
                            SubState::Withdrawn(r) => Some(r),
                            SubState::Valid => match (wantst, cache) {
                                (WantState::NotListed, _) => Some(ExpireReason::RemovedFromList),
                                (WantState::ListedNotWanted, _) => Some(ExpireReason::Unsubscribed),
                                (WantState::WantedExpired, _) => Some(ExpireReason::ImageExpired),
                                (WantState::WantedAmbiguous, _) => Some(ExpireReason::Ambiguous),
                                (WantState::Wanted, CacheState::OtherSha) => {
                                    Some(ExpireReason::ChecksumChanged)
                                }
                                (WantState::Wanted, CacheState::OtherSize) => {
                                    Some(ExpireReason::SizeChanged)
                                }
                                (WantState::Wanted, _) => None,
                            },
                        }
                    };
                    let expected_download = matches!(substate, SubState::Valid)
                        && matches!(wantst, WantState::Wanted)
                        && !matches!(cache, CacheState::Same);
                    let expected_keep = is_cached
                        && matches!(substate, SubState::Valid)
                        && matches!(wantst, WantState::Wanted)
                        && matches!(cache, CacheState::Same);
                    let expected_untouched = is_cached && matches!(substate, SubState::NotPlanned);

                    assert_eq!(
                        p.expire,
                        expected_expire
                            .map(|r| (key.clone(), r))
                            .into_iter()
                            .collect::<Vec<_>>(),
                        "{ctx}"
                    );
                    assert_eq!(p.download.len(), usize::from(expected_download), "{ctx}");
                    if expected_download {
                        assert_eq!(p.download[0].sha512, sha(1), "{ctx}");
                        assert_eq!(p.download[0].size, 10, "{ctx}");
                    }
                    assert_eq!(p.keep.len(), usize::from(expected_keep), "{ctx}");
                    assert_eq!(p.untouched.len(), usize::from(expected_untouched), "{ctx}");
                }
            }
        }
    }
}
