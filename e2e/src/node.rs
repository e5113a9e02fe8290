//! The e2e node (`e2e/cluster up --node`, started by `e2e/run.sh`): finding
//! it, the operator image built for it, and what the host sees of a pod's
//! container (its process, user, root mount and memory cgroup).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::ListParams;

use crate::{Cluster, env_set, repo_path, say, truthy, workspace_binary};

/// The operator image `e2e/run.sh` builds (e2e/node/build-images.sh) and
/// imports into the node's containerd; `VMLISUB_E2E_OPERATOR_IMAGE`
/// overrides it (e.g. for a kind cluster with a loaded image).
pub fn operator_image() -> (String, String) {
    let image =
        env_set("VMLISUB_E2E_OPERATOR_IMAGE").unwrap_or_else(|| "localhost/vmlisub:e2e".into());
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
        _ => (image, "latest".to_owned()),
    }
}

/// The node under test.
#[derive(Debug, Clone)]
pub struct TestNode {
    /// Node name.
    pub name: String,
    /// Its InternalIP: the host's address on the pods' bridge, which pods
    /// reach (list publishers of the tests bind to it).
    pub ip: std::net::Ipv4Addr,
}

/// The node tests run unless the developer turns them off with
/// `VMLISUB_E2E_NODE=0` (never in CI: `CI` set makes that an error too).
pub fn node_tests_wanted() -> Result<bool> {
    if env_set("VMLISUB_E2E_NODE").as_deref() == Some("0") {
        if truthy("CI") {
            bail!("VMLISUB_E2E_NODE=0 is for developers; CI runs the node tests");
        }
        let test = std::thread::current()
            .name()
            .unwrap_or("e2e test")
            .to_owned();
        say(&format!("{test}: skipped: VMLISUB_E2E_NODE=0"));
        return Ok(false);
    }
    Ok(true)
}

/// The Ready node of the cluster, or `None` (after saying so) when the
/// developer asked to skip the node tests; no Ready node is an error.
pub async fn node_or_skip(cluster: &Cluster) -> Result<Option<TestNode>> {
    if !node_tests_wanted()? {
        return Ok(None);
    }
    let nodes: Api<Node> = Api::all(cluster.client());
    let list = nodes
        .list(&ListParams::default())
        .await
        .context("listing nodes")?;
    for node in list.items {
        let status = node.status.unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let ip = status
            .addresses
            .unwrap_or_default()
            .into_iter()
            .find(|a| a.type_ == "InternalIP")
            .and_then(|a| a.address.parse().ok());
        if let (true, Some(ip)) = (ready, ip) {
            return Ok(Some(TestNode {
                name: node.metadata.name.unwrap_or_default(),
                ip,
            }));
        }
    }
    bail!(
        "no Ready node with an IPv4 InternalIP: run the tests with e2e/run.sh (it starts \
         `e2e/cluster up --node`), or set VMLISUB_E2E_NODE=0 to skip the node tests"
    )
}

/// The OCI image layouts of e2e/node/build-images.sh: `VMLISUB_E2E_NODE_IMAGES`
/// (set by e2e/run.sh, which built them), else built now into `scratch`
/// from the workspace's `vmlisub` binary.
pub fn image_layouts(scratch: &Path) -> Result<PathBuf> {
    if let Some(dir) = env_set("VMLISUB_E2E_NODE_IMAGES") {
        return Ok(PathBuf::from(dir));
    }
    let binary = workspace_binary("vmlisub")?;
    let out = Command::new("bash")
        .arg(repo_path("e2e/node/build-images.sh"))
        .arg(scratch)
        .arg(&binary)
        .stdin(Stdio::null())
        .output()
        .context("running e2e/node/build-images.sh")?;
    if !out.status.success() {
        bail!(
            "e2e/node/build-images.sh failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(scratch.to_path_buf())
}

/// A blob of an OCI image layout by digest (`sha256:...`).
pub fn oci_blob(layout: &Path, digest: &str) -> Result<Vec<u8>> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| anyhow!("malformed digest {digest}"))?;
    let path = layout.join("blobs").join(algorithm).join(hex);
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// The image configuration (`config` of the OCI image config) of the only
/// manifest of an OCI image layout, and the digests of its layers.
pub fn oci_config(layout: &Path) -> Result<(serde_json::Value, Vec<String>)> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .ok_or_else(|| anyhow!("{}: no manifest", layout.display()))?;
    let manifest: serde_json::Value = serde_json::from_slice(&oci_blob(layout, manifest_digest)?)?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| anyhow!("manifest without config"))?;
    let config: serde_json::Value = serde_json::from_slice(&oci_blob(layout, config_digest)?)?;
    let layers = manifest["layers"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|d| d["digest"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok((config["config"].clone(), layers))
}

/// What the host sees of a running container: its main process.
#[derive(Debug, Clone)]
pub struct ContainerProcess {
    /// Host pid of the container's first process.
    pub pid: u32,
    /// The memory cgroup directory of the container (cgroup v1), if any.
    pub memory_cgroup: Option<PathBuf>,
}

/// The host process of a container by its CRI id (`containerd://<id>` in
/// the pod status): the process whose cgroup path ends in the id.
pub fn container_process(container_id: &str) -> Result<ContainerProcess> {
    let id = container_id
        .rsplit_once("://")
        .map_or(container_id, |(_, id)| id);
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cgroups) = std::fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        if !cgroups.lines().any(|l| l.ends_with(&format!("/{id}"))) {
            continue;
        }
        // The first process: its parent is the shim, outside the cgroup.
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .unwrap_or_default();
        let parent_in = std::fs::read_to_string(format!("/proc/{ppid}/cgroup"))
            .is_ok_and(|c| c.lines().any(|l| l.ends_with(&format!("/{id}"))));
        if parent_in {
            continue;
        }
        let memory_cgroup = cgroups.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then(|| PathBuf::from(format!("/sys/fs/cgroup/memory{path}")))
        });
        return Ok(ContainerProcess { pid, memory_cgroup });
    }
    bail!("no host process in a cgroup of container {id}")
}

/// A field (`Uid:`, `VmHWM:`, ...) of `/proc/<pid>/status`.
pub fn proc_status_field(pid: u32, field: &str) -> Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_owned()))
        .ok_or_else(|| anyhow!("/proc/{pid}/status has no {field}"))
}

/// The mount options of the root file system of process `pid`.
pub fn root_mount_options(pid: u32) -> Result<String> {
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    mountinfo
        .lines()
        .find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(4) == Some(&"/")).then(|| fields.get(5).map(|o| (*o).to_owned()))?
        })
        .ok_or_else(|| anyhow!("no root mount in /proc/{pid}/mountinfo"))
}
