//! Publishing verified images beyond the cache (`spec.export` of an
//! ImageSubscription).

pub mod glance;
