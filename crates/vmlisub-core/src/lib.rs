//! The pure core of vmlisub.
//!
//! Everything here takes bytes, a trust store and the current time and
//! returns decisions: no network, no async runtime, no Kubernetes, and no
//! file system beyond what a caller hands in (CA directories are read by the
//! `vmlisub` crate's I/O shell). The two drivers of the `vmlisub` crate
//! (`vmlisub sync` and the operator) and the fuzz targets and benchmarks all
//! build on it.
//!
//! * [`imagelist`]: the HEPiX list model and its parser.
//! * [`trust`]: the grid trust store and S/MIME + CMS verification, with
//!   RFC 5280 path validation, CRLs and IGTF namespace policies.
//! * [`disk`]: a disk image's format and virtual size, from its header.
//! * [`decision`]: whether a verified list may replace the stored one.
//! * [`store`]: the image cache's pure half: names on disk, records, the
//!   download/keep/expire plan and the retention plan.
//! * [`reason`]: the stable reason codes every error carries.
//! * [`redact`]: URLs without their credentials, for every message.

pub mod decision;
pub mod disk;
pub mod imagelist;
pub mod reason;
pub mod redact;
pub mod store;
pub mod trust;
