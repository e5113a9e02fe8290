//! Grid trust: the IGTF-layout CA directory and S/MIME + CMS verification.
//!
//! Everything here is pure: the caller loads files into a [`TrustStore`]
//! (see [`store`]) and passes the verification time in, so the same inputs
//! always give the same verdict and tests can travel in time.

pub mod algorithms;
pub mod ber;
pub mod cert;
pub mod constraints;
pub mod crl;
pub mod dn;
pub mod error;
pub mod name;
pub mod path;
pub mod policy;
pub mod refresh;
pub mod smime;
pub mod store;
pub mod verify;

pub use error::VerifyError;
pub use store::TrustStore;
pub use verify::{CrlPolicy, Revocation, Signer, Verified, VerifyOptions, verify};
