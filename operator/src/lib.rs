//! vmlisub: subscribe to signed HEPiX virtual-machine image lists.
//!
//! The pure core (list parsing, trust decisions, update rules, cache plans)
//! is the `vmlisub-core` crate, re-exported here as [`imagelist`],
//! [`trust`], [`decision`] and [`reason`]. This crate holds the two drivers
//! and the I/O shells around it:
//!
//! * [`subscription`]: the subscription core both drivers run (refresh a
//!   list, download an image, the pure status builders), fed typed inputs;
//! * [`sync`]: the standalone driver (`vmlisub sync`: manifests, state file,
//!   hooks, the pass loop);
//! * [`controller`]: the Kubernetes driver (`vmlisub operator`);
//! * [`transfer`] (HTTP), [`store`] (the cache on disk), [`server`] (the
//!   artifact server), [`hooks`], [`crl_refresh`] and [`trust::dir`] (CA
//!   directories): the I/O shells;
//! * [`api`] (the CRDs) and [`cli`].

// The pure core, re-exported under the paths the shells have always used.
pub use vmlisub_core::{decision, imagelist, reason};

pub mod api;
pub mod cli;
pub mod controller;
pub mod crl_refresh;
pub mod export;
pub mod hooks;
pub mod server;
pub mod store;
pub mod subscription;
pub mod sync;
pub mod transfer;
pub mod trust;
