//! vmlisub: subscribe to signed HEPiX virtual-machine image lists.
//!
//! The crate is split into a pure core that takes bytes, a trust store and the
//! current time and returns decisions, and thin shells (CLI, controllers) that
//! touch the network, the disk and the Kubernetes API.
//!
//! * [`imagelist`]: the list model and its parser (bytes in, typed list out).
//! * [`trust`]: the grid trust store and S/MIME + CMS verification.
//! * [`decision`]: whether a verified list may replace the stored one.

pub mod api;
pub mod cli;
pub mod controller;
pub mod crl_refresh;
pub mod decision;
pub mod hooks;
pub mod imagelist;
pub mod reason;
pub mod server;
pub mod store;
pub mod sync;
pub mod transfer;
pub mod trust;
