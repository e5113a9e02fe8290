//! Shared support for the `vmlisub verify` integration tests: a throwaway
//! grid PKI generated with the `openssl` CLI, image-list documents, every
//! S/MIME signing shape, IGTF trust directories, and runners for
//! `vmlisub verify` and `openssl smime -verify`.
//!
//! Each test binary uses a different subset of this module.
#![allow(dead_code)]

pub mod cli;
pub mod der;
pub mod fixtures;
pub mod list;
pub mod live;
pub mod openssl;
pub mod openstack;
pub mod pki;
pub mod process;
pub mod publisher;
pub mod quickstart;
pub mod rfc5280;
pub mod scenario;
pub mod smime;
pub mod time;
pub mod transport_pki;
pub mod trust;
pub mod web;
