//! `vmlisub sync`: the whole pipeline on one machine, from the manifests a
//! user would `kubectl apply`, for sites without Kubernetes.

pub mod engine;
pub mod failure;
pub mod manifest;
pub mod state;
