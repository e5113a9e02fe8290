//! `vmlisub sync`: the whole pipeline on one machine, from the manifests a
//! user would `kubectl apply`, for sites without Kubernetes.

pub mod manifest;
pub mod state;
pub mod engine;
