//! Exports of verified images beyond the cache: the pure decisions.
//! The operator's image reconciler applies them (`controller::image`).

pub mod kubevirt;
