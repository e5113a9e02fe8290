//! The image cache: `partial/` -> `endorsed/` -> `expired/`.
//!
//! Functional core, thin shell:
//! * pure decisions: [`plan()`] (what to download, keep and expire, given
//!   the inventory, what each subscription wants and the time),
//!   [`plan_retention`] (what to prune from the archive),
//!   [`bytes_still_needed`] / [`compare_space`], and the name rules in
//!   [`ImageKey`], [`Namespace`], [`SubscriptionName`];
//! * the shell: [`CacheStore`], which executes them on disk with `openat`
//!   discipline (every name below the root is opened relative to a
//!   directory descriptor without following symlinks).
//!
//! Why the layout differs a little from the original (`cache/`,
//! `cache/partial/`, `cache/expired/`):
//! * images are filed under `<namespace>/<subscription>/<image-id>`, so two
//!   subscriptions listing the same identifier never collide, and every
//!   component is a validated name (the original used the raw identifier:
//!   path traversal);
//! * the endorsed images live in their own `endorsed/` area rather than in
//!   the root, because a namespace may legitimately be called `partial` or
//!   `expired`;
//! * each endorsed image is a directory holding `image` and `record.json`
//!   (the original's `cache.index`, one per image), which moves as a unit:
//!   promotion and expiry are single renames of that directory, so an image
//!   can never be visible without its record, and no partial or unverified
//!   byte is ever visible in `endorsed/`;
//! * `expired/` is pruned by an explicit retention policy (the original's
//!   archive grew forever).
//!
//! The downloader streams into [`CacheStore::partial_path`] (opened with
//! [`CacheStore::open_partial`]), hashing as it goes, then calls
//! [`CacheStore::promote`] with the [`ImageRecord`]; see [`CacheStore`] for
//! the exact on-disk layout and the step order.

mod cache;
mod fsops;

// The pure half lives in vmlisub-core; the modules are re-exported so that
// the shell and callers see one `store`.
pub use vmlisub_core::store::*;

pub use cache::{
    CacheStore, ENDORSED_DIR, EXPIRED_DIR, IMAGE_FILE, Integrity, MARKER_FILE, PARTIAL_DIR,
    PartialFile, Quarantined, RECORD_FILE, Recovery, RetentionReport, SpaceCheck, Unexpected,
    bytes_still_needed, compare_space, expired_name_stamp,
};
pub use fsops::{sha512_reader, write_atomically};
#[cfg(test)]
mod tests;
