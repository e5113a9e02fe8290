//! Exports of verified images beyond the cache (`spec.export` of an
//! ImageSubscription): the pure decisions and, for Glance, its client.
//! The operator's image reconciler and `vmlisub sync` apply them.

pub mod glance;
pub mod kubevirt;
