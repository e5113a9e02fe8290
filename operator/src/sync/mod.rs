//! `vmlisub sync`: the standalone driver. It reads the manifests a user
//! would `kubectl apply`, runs passes of the subscription core over them,
//! runs the hooks, and keeps every object's status in the state file, for
//! sites without Kubernetes.

pub mod manifest;
pub mod pass;
