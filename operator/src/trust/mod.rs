//! Grid trust: the pure verifier of vmlisub-core, plus [`dir`], the I/O
//! shell that reads IGTF-layout CA directories into it.

pub use vmlisub_core::trust::*;

pub mod dir;

pub use dir::{CaDirCache, load_dir, load_dirs};
