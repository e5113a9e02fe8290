//! Grid trust: the IGTF-layout CA directory and S/MIME + CMS verification.
//!
//! Everything here is pure: the caller loads files into a [`TrustStore`]
//! (see [`store`]) and passes the verification time in, so the same inputs
//! always give the same verdict and tests can travel in time.

pub mod dn;
pub mod policy;
