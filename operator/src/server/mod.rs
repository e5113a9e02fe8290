//! HTTP servers: the read-only artifact server (and, with the operator,
//! metrics and health endpoints).

pub mod artifacts;
