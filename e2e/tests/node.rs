//! The chart on a real node (`e2e/cluster up --node`, started by
//! `e2e/run.sh`): `helm install` of charts/vmlisub with only the image and
//! test settings overridden, into a namespace that enforces the `restricted`
//! Pod Security level; the operator's pod runs from the registry-less image
//! of e2e/node/build-images.sh, verifies a list published from the host,
//! caches its image in the PersistentVolume and serves it through the
//! chart's Service to a client pod. Then `helm upgrade` rolls the pod (the
//! cache survives) and `helm uninstall` keeps the volume.
//!
//! Skipped only when the developer sets `VMLISUB_E2E_NODE=0` (an error in CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../operator/tests/support/live.rs"]
#[allow(dead_code)]
mod live;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, Service,
};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use serde_json::{Value, json};
use sha2::Digest as _;
use vmlisub_e2e::node::{
    TestNode, container_process, image_layouts, node_or_skip, node_tests_wanted, oci_config,
    operator_image, proc_status_field, root_mount_options,
};
use vmlisub_e2e::operator::Publisher;
use vmlisub_e2e::{Cluster, eventually, helm, merge_patch, repo_path, vmli_api};

const LIST_ID: &str = "7b1c9e0a-2d4f-4c61-9a8e-1f3b5d7c9e02";
const CLIENT_IMAGE: &str = "localhost/vmlisub-e2e/busybox:1";
/// Pods start in seconds on the node; images are local.
const POD_TIMEOUT: Duration = Duration::from_secs(180);

fn sha512_hex(bytes: &[u8]) -> String {
    sha2::Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic bytes that do not compress (an image stand-in).
fn image_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The OCI image of e2e/node/build-images.sh and the Dockerfile's runtime
/// stage define the same container: user, entrypoint, command, environment,
/// exposed port, and the binary at the path the Dockerfile copies it to.
#[test]
fn node_operator_image_matches_the_dockerfile() -> Result<()> {
    if !node_tests_wanted()? {
        return Ok(());
    }
    let scratch = tempfile::tempdir()?;
    let layouts = image_layouts(scratch.path())?;
    let (config, layers) = oci_config(&layouts.join("vmlisub"))?;

    let text = std::fs::read_to_string(repo_path("Dockerfile"))?;
    let instrs = vmlisub_e2e::dockerfile_instructions(&text);
    let last = instrs
        .iter()
        .map(|i| i.0)
        .max()
        .context("empty Dockerfile")?;
    let runtime: Vec<&(usize, String, String)> = instrs.iter().filter(|i| i.0 == last).collect();
    let one = |name: &str| -> Result<String> {
        runtime
            .iter()
            .rev()
            .find(|i| i.1 == name)
            .map(|i| i.2.clone())
            .with_context(|| format!("no {name} in the Dockerfile's runtime stage"))
    };
    assert_eq!(config["User"], one("USER")?, "USER");
    let exec_form = |name: &str| -> Result<Value> { Ok(serde_json::from_str(&one(name)?)?) };
    assert_eq!(config["Entrypoint"], exec_form("ENTRYPOINT")?, "ENTRYPOINT");
    assert_eq!(config["Cmd"], exec_form("CMD")?, "CMD");
    // ENV: every variable the Dockerfile sets (KEY=VALUE pairs).
    let env: Vec<String> = config["Env"]
        .as_array()
        .context("no Env")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let dockerfile_env: Vec<String> = runtime
        .iter()
        .filter(|i| i.1 == "ENV")
        .flat_map(|i| {
            i.2.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!dockerfile_env.is_empty(), "the Dockerfile sets no ENV");
    for kv in &dockerfile_env {
        assert!(
            env.contains(kv),
            "image Env {env:?} lacks the Dockerfile's {kv}"
        );
    }
    // EXPOSE: the same ports.
    let exposed: Vec<String> = config["ExposedPorts"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let dockerfile_ports: Vec<String> = one("EXPOSE")?
        .split_whitespace()
        .map(|p| {
            if p.contains('/') {
                p.to_owned()
            } else {
                format!("{p}/tcp")
            }
        })
        .collect();
    assert_eq!(exposed, dockerfile_ports, "EXPOSE");
    // The binary where the Dockerfile copies it, owned by root, not
    // writable; the user's passwd entry as in distroless.
    let copy = one("COPY")?;
    let target = copy
        .split_whitespace()
        .last()
        .context("COPY without target")?;
    assert_eq!(layers.len(), 1, "one layer: {layers:?}");
    let listing = std::process::Command::new("tar")
        .args(["-tvzf"])
        .arg(
            layouts
                .join("vmlisub/blobs")
                .join(layers[0].replace(':', "/")),
        )
        .output()?;
    assert!(listing.status.success(), "tar -tvzf of the layer failed");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let entry = listing
        .lines()
        .find(|l| {
            l.ends_with(&format!(" {}", target.trim_start_matches('/')))
                || l.ends_with(&format!(" .{target}"))
        })
        .with_context(|| format!("{target} not in the image layer:\n{listing}"))?;
    let mut fields = entry.split_whitespace();
    assert_eq!(fields.next(), Some("-r-xr-xr-x"), "{entry}");
    assert!(
        matches!(fields.next(), Some("root/root" | "0/0")),
        "not owned by root: {entry}"
    );
    Ok(())
}

/// The node's view of the release's one pod: the pod, and it must be Ready.
async fn release_pod(cluster: &Cluster, ns: &str, release: &str) -> Result<Pod> {
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns);
    let selector = format!("app.kubernetes.io/instance={release}");
    eventually(POD_TIMEOUT, "the operator pod Ready", || async {
        let list = pods.list(&ListParams::default().labels(&selector)).await?;
        let ready: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .collect();
        Ok((ready.len() == 1).then(|| ready[0].clone()))
    })
    .await
}

async fn deployment_available(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    replicas: i32,
) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), ns);
    eventually(
        POD_TIMEOUT,
        "the Deployment Available and rolled out",
        || async {
            let d = deployments.get(name).await?;
            let generation = d.metadata.generation.unwrap_or_default();
            let status = d.status.unwrap_or_default();
            let available = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True");
            let rolled = status.observed_generation == Some(generation)
                && status.updated_replicas == Some(replicas)
                && status.replicas == Some(replicas)
                && status.available_replicas == Some(replicas);
            Ok((available && rolled).then_some(()))
        },
    )
    .await
}

/// Runs a client pod (busybox, restricted) with `script`; returns its log
/// once it Succeeded.
async fn client_pod(cluster: &Cluster, ns: &str, name: &str, script: &str) -> Result<String> {
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": "client", "image": CLIENT_IMAGE, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", script],
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                },
            }],
        },
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let phase = eventually(POD_TIMEOUT, "the client pod finished", || async {
        let p = pods.get(name).await?;
        let phase = p.status.and_then(|s| s.phase).unwrap_or_default();
        Ok(matches!(phase.as_str(), "Succeeded" | "Failed").then_some(phase))
    })
    .await?;
    let log = pods.logs(name, &LogParams::default()).await?;
    if phase != "Succeeded" {
        bail!("client pod {name} {phase}:\n{log}");
    }
    Ok(log)
}

fn gets_of(publisher: &Publisher, path: &str) -> usize {
    publisher
        .requests()
        .iter()
        .filter(|r| r.starts_with(&format!("GET {path} ")))
        .count()
}

/// Where the PVC's volume lives on the node (local or hostPath volume).
async fn volume_dir(cluster: &Cluster, ns: &str, claim: &str) -> Result<PathBuf> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client(), ns);
    let pvc = claims.get(claim).await?;
    let volume = pvc
        .spec
        .and_then(|s| s.volume_name)
        .context("the PVC is not bound")?;
    let pv = Api::<PersistentVolume>::all(cluster.client())
        .get(&volume)
        .await?;
    let spec = pv.spec.context("PV without spec")?;
    let path = spec
        .local
        .map(|l| l.path)
        .or_else(|| spec.host_path.map(|h| h.path))
        .with_context(|| format!("PV {volume} is neither local nor hostPath"))?;
    Ok(PathBuf::from(path))
}

/// The CA directory as a ConfigMap (file name -> content) for the chart's
/// `trust.source: configMap`.
fn ca_config_map(name: &str, ca_dir: &Path) -> Result<ConfigMap> {
    let mut data = BTreeMap::new();
    let mut binary = BTreeMap::new();
    for entry in std::fs::read_dir(ca_dir)?.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path())?;
        match String::from_utf8(bytes) {
            Ok(text) => {
                data.insert(file, text);
            }
            Err(e) => {
                binary.insert(file, ByteString(e.into_bytes()));
            }
        }
    }
    Ok(ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some(data),
        binary_data: (!binary.is_empty()).then_some(binary),
        ..Default::default()
    })
}

/// One release of the chart on the node, in its own restricted namespace,
/// with a publisher on the node's address and the test PKI whose CA
/// directory the chart mounts from a ConfigMap.
struct Release {
    _dir: tempfile::TempDir,
    pki: live::LivePki,
    publisher: Publisher,
    ns: String,
    name: String,
    fullname: String,
    chart: String,
}

impl Release {
    /// The test's vmlisub objects while the release still runs (no
    /// finalizer left for a later test's operator), then `helm uninstall`,
    /// then the PVC it keeps (the chart's policy) too.
    async fn uninstall_with_its_cache(&self, cluster: &Cluster, ns: &str) -> Result<()> {
        vmlisub_e2e::delete_vmli_objects(cluster, ns).await?;
        helm(&["uninstall", &self.name, "--namespace", ns, "--wait"])?;
        Api::<PersistentVolumeClaim>::namespaced(cluster.client(), ns)
            .delete(
                &format!("{}-cache", self.fullname),
                &DeleteParams::default(),
            )
            .await?;
        Ok(())
    }

    /// `helm install` with the image, the PVC size and `extra` (`key=value`
    /// settings) overridden; waits until the Deployment is Available.
    async fn install(
        cluster: &Cluster,
        node: &TestNode,
        ns: &str,
        extra: &[&str],
    ) -> Result<Release> {
        Release::install_in(
            cluster,
            node,
            ns,
            extra,
            &std::env::temp_dir(),
            "restricted",
        )
        .await
    }

    /// [`Release::install`] with the publisher's files and the PKI under
    /// `scratch` (e.g. /dev/shm for a big image, off the shared disk).
    async fn install_in(
        cluster: &Cluster,
        node: &TestNode,
        ns: &str,
        extra: &[&str],
        scratch: &Path,
        pod_security: &str,
    ) -> Result<Release> {
        // The namespace enforces the Pod Security Standard `pod_security`.
        merge_patch(
            &Api::<Namespace>::all(cluster.client()),
            ns,
            &json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": pod_security,
                "pod-security.kubernetes.io/enforce-version": "latest",
            }}}),
        )
        .await?;
        let suffix = ns.rsplit('-').next().unwrap_or("x");
        let name = format!("n{suffix}");
        let fullname = format!("{name}-vmlisub");
        let dir = tempfile::Builder::new()
            .prefix("vmlisub-e2e-node-")
            .tempdir_in(scratch)?;
        std::fs::create_dir_all(dir.path().join("pki"))?;
        let pki = live::LivePki::new(&dir.path().join("pki"));
        let publisher = Publisher::start_at(&dir.path().join("www"), node.ip)?;
        Api::<ConfigMap>::namespaced(cluster.client(), ns)
            .create(
                &PostParams::default(),
                &ca_config_map(&format!("{fullname}-grid-ca"), &pki.ca_dir)?,
            )
            .await?;
        let (repository, tag) = operator_image();
        let chart = repo_path("charts/vmlisub")
            .to_str()
            .context("chart path")?
            .to_owned();
        let mut sets = vec![
            format!("image.repository={repository}"),
            format!("image.tag={tag}"),
            "image.pullPolicy=Never".to_owned(),
            "persistence.size=2Gi".to_owned(),
            // Only this namespace: a release left by a failed run never
            // reconciles (and rewrites the status of) another test's objects.
            format!("watchNamespace={ns}"),
        ];
        sets.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut install = vec!["install", &name, &chart, "--namespace", ns];
        for a in &sets {
            install.extend(["--set", a]);
        }
        helm(&install)?;
        let release = Release {
            _dir: dir,
            pki,
            publisher,
            ns: ns.to_owned(),
            name,
            fullname,
            chart,
        };
        Ok(release)
    }

    /// Publishes a signed list of `images` and applies the Endorser, the
    /// list `site` (public artifacts) and one ImageSubscription per image
    /// (named after the image).
    async fn subscribe(&self, cluster: &Cluster, images: &[(&str, &[u8])]) -> Result<()> {
        self.subscribe_with(cluster, images, json!({})).await
    }

    /// [`Release::subscribe`] with `extra` merged into the list's spec.
    async fn subscribe_with(
        &self,
        cluster: &Cluster,
        images: &[(&str, &[u8])],
        extra: Value,
    ) -> Result<()> {
        let mut entries = Vec::new();
        for (id, bytes) in images {
            entries.push((id.to_string(), self.publisher.put(id, bytes)?, *bytes));
        }
        let refs: Vec<(&str, &str, &[u8])> = entries
            .iter()
            .map(|(id, url, bytes)| (id.as_str(), url.as_str(), *bytes))
            .collect();
        let list_url = self
            .publisher
            .put("image.list", &self.pki.list(LIST_ID, "1", &refs))?;
        let ns = self.ns.as_str();
        cluster
            .apply_json(
                ns,
                vmlisub_e2e::publisher_endorser(&self.pki.subject, &self.pki.issuer),
            )
            .await?;
        let mut list = json!({
            "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
            "metadata": {"name": "site"},
            "spec": {"url": list_url, "interval": "1h", "endorsers": [{"name": "publisher"}],
                     "publicArtifacts": true},
        });
        if let (Some(spec), Value::Object(extra)) = (list["spec"].as_object_mut(), extra) {
            spec.extend(extra);
        }
        cluster.apply_json(ns, list).await?;
        for (id, _) in images {
            cluster
                .apply_json(
                    ns,
                    json!({
                        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageSubscription",
                        "metadata": {"name": id},
                        "spec": {"subscriptionRef": {"name": "site"}, "identifier": id},
                    }),
                )
                .await?;
        }
        Ok(())
    }

    /// Waits until ImageSubscription `name` is Available; returns its status.
    async fn available(&self, cluster: &Cluster, name: &str, timeout: Duration) -> Result<Value> {
        let subs = vmli_api(cluster, &self.ns, "ImageSubscription");
        eventually(timeout, &format!("{name} Available"), || async {
            let s = subs.get(name).await?;
            let status = s.data.get("status").cloned().unwrap_or(Value::Null);
            Ok((status["phase"] == "Available").then_some(status))
        })
        .await
    }

    /// The cached file of image `id` in the PersistentVolume's directory.
    async fn cached_file(&self, cluster: &Cluster, id: &str) -> Result<PathBuf> {
        let volume = volume_dir(cluster, &self.ns, &format!("{}-cache", self.fullname)).await?;
        Ok(volume
            .join("endorsed")
            .join(&self.ns)
            .join("site")
            .join(id)
            .join("image"))
    }
}

/// Runs `body` in a new namespace ([`in_namespace`]) on the e2e node; a
/// skip when there is no cluster or no node (as `node_or_skip` decides).
async fn on_node<F, Fut>(prefix: &str, body: F) -> Result<()>
where
    F: FnOnce(Cluster, TestNode, String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let Some(cluster) = Cluster::connect().await? else {
        return Ok(());
    };
    let Some(node) = node_or_skip(&cluster).await? else {
        return Ok(());
    };
    let inner = cluster.clone();
    in_namespace(&cluster, prefix, |ns| body(inner, node, ns)).await
}

/// Runs `body` in a fresh namespace; on failure prints the namespace's
/// events and the operator's log; deletes the namespace when it passed.
async fn in_namespace<F, Fut>(cluster: &Cluster, prefix: &str, body: F) -> Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let ns = cluster.create_namespace(prefix).await?;
    let result = body(ns.clone()).await;
    if result.is_err() {
        if let Ok(events) = vmlisub_e2e::kubectl(&["get", "events", "-n", &ns], None) {
            eprintln!("--- events in {ns} ---\n{}", events.stdout);
        }
        if let Ok(logs) = vmlisub_e2e::kubectl(
            &[
                "logs",
                "-n",
                &ns,
                "-l",
                "app.kubernetes.io/name=vmlisub",
                "--tail=60",
                "--prefix",
            ],
            None,
        ) {
            eprintln!("--- operator log ---\n{}", logs.stdout);
        }
    }
    result?;
    cluster.delete_namespace(&ns).await?;
    Ok(())
}

#[tokio::test]
async fn node_chart_runs_restricted_verifies_caches_and_serves_from_its_volume() -> Result<()> {
    on_node("node", |cluster, node, ns| async move {
        chart_on_the_node(&cluster, &node, &ns).await
    })
    .await
}

async fn chart_on_the_node(cluster: &Cluster, node: &TestNode, ns: &str) -> Result<()> {
    let release = Release::install(cluster, node, ns, &[]).await?;
    let fullname = release.fullname.as_str();
    deployment_available(cluster, ns, fullname, 1).await?;
    let pod = release_pod(cluster, ns, &release.name).await?;
    let pod_name = pod.metadata.name.clone().context("pod name")?;
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(node.name.as_str())
    );
    // Non-root, read-only root file system: as declared, and as the kernel
    // sees the running process.
    let container = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .context("no container status")?;
    assert!(container.ready, "container not ready (probes)");
    assert_eq!(
        container.restart_count, 0,
        "the liveness probe restarted it"
    );
    let process = container_process(container.container_id.as_deref().context("container id")?)?;
    let uids = proc_status_field(process.pid, "Uid:")?;
    assert!(
        uids.split_whitespace().all(|u| u == "65532"),
        "the operator runs as {uids}"
    );
    let root_options = root_mount_options(process.pid)?;
    assert!(
        root_options.split(',').any(|o| o == "ro"),
        "root file system mounted {root_options}"
    );
    // The probes answer on the pod IP, as the kubelet asks them.
    let pod_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .context("pod IP")?;
    for path in ["/healthz", "/readyz"] {
        let (code, _) =
            vmlisub_e2e::operator::http_get(&format!("http://{pod_ip}:8080{path}"), None)?;
        assert_eq!(code, 200, "{path} on the pod");
    }

    // A signed list with one image, published from the host, verified with
    // the CA directory of the ConfigMap.
    let image = image_bytes(3 << 20, 7);
    release.subscribe(cluster, &[("img-one", &image)]).await?;
    let status = release.available(cluster, "img-one", POD_TIMEOUT).await?;
    let digest = sha512_hex(&image);
    assert_eq!(status["artifact"]["digest"], format!("sha512:{digest}"));
    let lists = vmli_api(cluster, ns, "ImageListSubscription");
    let list = lists.get("site").await?;
    assert_eq!(
        list.data["status"]["list"]["signer"]["subject"],
        release.pki.subject.as_str()
    );

    // On the PersistentVolume: the file, its sha512, owned by the pod's user.
    let cached = release.cached_file(cluster, "img-one").await?;
    let on_disk =
        std::fs::read(&cached).with_context(|| format!("reading {}", cached.display()))?;
    assert_eq!(sha512_hex(&on_disk), digest, "{}", cached.display());
    assert_eq!(std::fs::metadata(&cached)?.uid(), 65532);

    // Served through the chart's Service (kube-proxy) to a client pod.
    let service = Api::<Service>::namespaced(cluster.client(), ns)
        .get(fullname)
        .await?;
    let cluster_ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .context("Service without ClusterIP")?;
    let artifact_url = status["artifact"]["url"].as_str().context("artifact url")?;
    let path = artifact_url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, path)| format!("/{path}"))
        .context("artifact url without path")?;
    let log = client_pod(
        cluster,
        ns,
        "client",
        // Retried: the Service answers once kube-proxy has synced its
        // endpoints, which a loaded node does after the pod is Ready.
        &format!(
            "for i in $(seq 60); do wget -q -O /tmp/image http://{cluster_ip}:8080{path} && break; sleep 1; done; sha512sum /tmp/image"
        ),
    )
    .await?;
    assert!(
        log.starts_with(&digest),
        "the client pod got another file: {log}"
    );

    let memory = process
        .memory_cgroup
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("memory.max_usage_in_bytes")).ok());
    eprintln!(
        "node: operator pod {pod_name}: VmHWM {}, cgroup memory.max_usage_in_bytes {}",
        proc_status_field(process.pid, "VmHWM:").unwrap_or_default(),
        memory.as_deref().map(str::trim).unwrap_or("n/a"),
    );

    // helm upgrade with a changed value rolls the pod; the cache survives
    // it (no second download).
    let downloads = gets_of(&release.publisher, "/img-one");
    helm(&[
        "upgrade",
        &release.name,
        &release.chart,
        "--namespace",
        ns,
        "--reuse-values",
        "--set",
        "logLevel=debug",
    ])?;
    let rolled = eventually(POD_TIMEOUT, "a new operator pod", || async {
        let pod = release_pod(cluster, ns, &release.name).await?;
        Ok((pod.metadata.name.as_deref() != Some(pod_name.as_str())).then_some(pod))
    })
    .await?;
    deployment_available(cluster, ns, fullname, 1).await?;
    let env = rolled
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.env.clone())
        .unwrap_or_default();
    assert!(
        env.iter()
            .any(|e| e.name == "RUST_LOG" && e.value.as_deref() == Some("debug")),
        "the new pod lacks the upgraded value: {env:?}"
    );
    // The new pod reconciles the list on request: still Available, from the
    // cache.
    merge_patch(
        &lists,
        "site",
        &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "after-upgrade"}}}),
    )
    .await?;
    eventually(POD_TIMEOUT, "the new pod's reconcile", || async {
        let l = lists.get("site").await?;
        Ok((l.data["status"]["lastHandledReconcileAt"] == "after-upgrade").then_some(()))
    })
    .await?;
    let subs = vmli_api(cluster, ns, "ImageSubscription");
    assert_eq!(
        subs.get("img-one").await?.data["status"]["phase"],
        "Available"
    );
    assert_eq!(
        gets_of(&release.publisher, "/img-one"),
        downloads,
        "the image was downloaded again"
    );

    // helm uninstall keeps the PVC (helm.sh/resource-policy: keep) and so
    // the cached image.
    helm(&["uninstall", &release.name, "--namespace", ns, "--wait"])?;
    let claim = format!("{fullname}-cache");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client(), ns);
    assert!(
        claims.get_opt(&claim).await?.is_some(),
        "helm uninstall deleted the PVC"
    );
    assert_eq!(sha512_hex(&std::fs::read(&cached)?), digest);
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), ns);
    assert!(deployments.get_opt(fullname).await?.is_none());
    claims.delete(&claim, &DeleteParams::default()).await?;
    Ok(())
}

/// The holder of the chart's leader-election Lease.
async fn lease_holder(cluster: &Cluster, ns: &str) -> Result<Option<String>> {
    let leases: Api<Lease> = Api::namespaced(cluster.client(), ns);
    Ok(leases
        .get_opt("vmlisub-leader")
        .await?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

/// The bytes of the partial downloads in the volume.
fn partial_bytes(volume: &Path) -> u64 {
    fn walk(dir: &Path, total: &mut u64) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(&entry.path(), total),
                Ok(t) if t.is_file() => *total += entry.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut total = 0;
    walk(&volume.join("partial"), &mut total);
    total
}

#[tokio::test]
async fn node_two_replicas_one_leader_takes_over_and_resumes_the_download() -> Result<()> {
    on_node("node-ha", |cluster, node, ns| async move {
        two_replicas(&cluster, &node, &ns).await
    })
    .await
}

async fn two_replicas(cluster: &Cluster, node: &TestNode, ns: &str) -> Result<()> {
    // Two replicas share one ReadWriteMany volume (the chart's requirement
    // for replicaCount > 1; local volumes on one node allow it).
    let release = Release::install(
        cluster,
        node,
        ns,
        &["replicaCount=2", "persistence.accessModes={ReadWriteMany}"],
    )
    .await?;
    deployment_available(cluster, ns, &release.fullname, 2).await?;
    let leader = eventually(POD_TIMEOUT, "a Lease holder", || lease_holder(cluster, ns)).await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns);
    let selector = format!("app.kubernetes.io/instance={}", release.name);
    let names: Vec<String> = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(
        names.contains(&leader),
        "holder {leader} is not one of {names:?}"
    );
    let follower = names
        .iter()
        .find(|n| **n != leader)
        .cloned()
        .context("no second pod")?;

    // A 12 MiB image served at 1 MiB/s: the leader is still downloading
    // when it goes.
    let image = image_bytes(12 << 20, 11);
    release.publisher.set_throttle(1 << 20);
    release.subscribe(cluster, &[("img-big", &image)]).await?;
    let volume = volume_dir(cluster, ns, &format!("{}-cache", release.fullname)).await?;
    let partial = eventually(POD_TIMEOUT, "a partial download", || async {
        let n = partial_bytes(&volume);
        Ok((n >= 2 << 20).then_some(n))
    })
    .await?;
    assert!(partial < image.len() as u64);
    // Slower still until the takeover: the rest would take minutes, so the
    // old leader cannot finish before it is stopped, however slowly the
    // kubelet delivers the SIGTERM.
    release.publisher.set_throttle(64 << 10);
    // Only the leader reconciles: the follower never fetched anything.
    let follower_log = pods.logs(&follower, &LogParams::default()).await?;
    assert!(
        !follower_log.contains("img-big"),
        "the follower worked on the image:\n{follower_log}"
    );

    pods.delete(&leader, &DeleteParams::default()).await?;
    // The leader releases the Lease on SIGTERM; the follower or the
    // Deployment's replacement pod, whichever asks first, takes it.
    let new_leader = eventually(POD_TIMEOUT, "another pod takes the Lease", || async {
        Ok(lease_holder(cluster, ns).await?.filter(|h| *h != leader))
    })
    .await?;
    let live: Vec<String> = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(
        live.contains(&new_leader),
        "holder {new_leader} is not one of {live:?}"
    );
    eprintln!(
        "node: leader {leader} deleted; the Lease went to {new_leader} ({})",
        if new_leader == follower {
            "the follower"
        } else {
            "the replacement pod"
        }
    );
    release.publisher.set_throttle(0);
    let status = release.available(cluster, "img-big", POD_TIMEOUT).await?;
    let digest = sha512_hex(&image);
    assert_eq!(status["artifact"]["digest"], format!("sha512:{digest}"));
    // The new leader resumed: it asked for the rest only.
    let resumed: Vec<String> = release
        .publisher
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /img-big bytes="))
        .collect();
    assert!(
        !resumed.is_empty(),
        "no ranged request: {:?}",
        release.publisher.requests()
    );
    let cached = release.cached_file(cluster, "img-big").await?;
    assert_eq!(sha512_hex(&std::fs::read(&cached)?), digest);

    // Both replicas serve the artifact from the shared volume.
    deployment_available(cluster, ns, &release.fullname, 2).await?;
    let path = status["artifact"]["url"]
        .as_str()
        .and_then(|u| u.split_once("://"))
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, path)| format!("/{path}"))
        .context("artifact url without path")?;
    let ready = pods.list(&ListParams::default().labels(&selector)).await?;
    let ips: Vec<String> = ready
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.status.as_ref().and_then(|s| s.pod_ip.clone()))
        .collect();
    assert_eq!(ips.len(), 2, "{ips:?}");
    for ip in ips {
        let (code, body) =
            vmlisub_e2e::operator::http_get(&format!("http://{ip}:8080{path}"), None)?;
        assert_eq!(
            (code, sha512_hex(&body)),
            (200, digest.clone()),
            "served by {ip}"
        );
    }
    release.uninstall_with_its_cache(cluster, ns).await?;
    Ok(())
}

/// The operator pod's memory while it caches a 1 GiB image (a benchmark:
/// `make bench-node-memory`; `VMLISUB_E2E_NODE_IMAGE_MIB` sets another
/// size): the process's peak RSS (`VmHWM`) and the
/// container cgroup's peak charge (`memory.max_usage_in_bytes`, page cache
/// of the written file included), sampled while the download runs.
#[tokio::test]
#[ignore = "benchmark: make bench-node-memory"]
async fn node_operator_memory_while_caching_a_1gib_image() -> Result<()> {
    on_node("node-mem", |cluster, node, ns| async move {
        memory_1gib(&cluster, &node, &ns).await
    })
    .await
}

async fn memory_1gib(cluster: &Cluster, node: &TestNode, ns: &str) -> Result<()> {
    // The publisher's copy in memory: the machine's disk holds the cached one.
    let shm = Path::new("/dev/shm");
    let scratch = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let release = Release::install_in(
        cluster,
        node,
        ns,
        &["persistence.size=4Gi"],
        &scratch,
        "restricted",
    )
    .await?;
    deployment_available(cluster, ns, &release.fullname, 1).await?;
    let pod = release_pod(cluster, ns, &release.name).await?;
    let container_id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.container_id.clone())
        .context("container id")?;
    let process = container_process(&container_id)?;
    let cgroup = process
        .memory_cgroup
        .clone()
        .context("no memory cgroup (v1)")?;
    let read_kib = |field: &str| -> u64 {
        proc_status_field(process.pid, field)
            .ok()
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    };
    let cgroup_stat = |key: &str| -> u64 {
        std::fs::read_to_string(cgroup.join("memory.stat"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix(&format!("{key} "))
                        .and_then(|v| v.parse().ok())
                })
            })
            .unwrap_or(0)
    };
    let before_hwm = read_kib("VmHWM:");

    // VMLISUB_E2E_NODE_IMAGE_MIB: another size (e.g. on a nearly full disk).
    let mib: usize = std::env::var("VMLISUB_E2E_NODE_IMAGE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let block = image_bytes(1 << 20, 13);
    let image: Vec<u8> = block.iter().copied().cycle().take(mib << 20).collect();
    // The clock starts once the list is applied: signing it hashes the
    // image here, in the test, which is not the operator's time.
    release.subscribe(cluster, &[("img-1g", &image)]).await?;
    let started = std::time::Instant::now();
    let subs = vmli_api(cluster, ns, "ImageSubscription");
    let (mut peak_rss_kib, mut peak_cgroup_rss) = (0u64, 0u64);
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let status = loop {
        peak_rss_kib = peak_rss_kib.max(read_kib("VmRSS:"));
        peak_cgroup_rss = peak_cgroup_rss.max(cgroup_stat("rss"));
        let s = subs.get_opt("img-1g").await?;
        let status = s
            .and_then(|s| s.data.get("status").cloned())
            .unwrap_or(Value::Null);
        if status["phase"] == "Available" {
            break status;
        }
        if std::time::Instant::now() > deadline {
            bail!("img-1g not Available after 600 s: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let hwm_kib = read_kib("VmHWM:");
    let max_usage: u64 = std::fs::read_to_string(cgroup.join("memory.max_usage_in_bytes"))?
        .trim()
        .parse()?;
    let digest = sha512_hex(&image);
    assert_eq!(status["artifact"]["digest"], format!("sha512:{digest}"));
    assert_eq!(status["artifact"]["size"], image.len());
    eprintln!(
        "node: caching {mib} MiB took {seconds:.1} s; operator VmHWM {} MiB (before the list: {} MiB), \
         sampled VmRSS peak {} MiB, cgroup rss peak {} MiB, cgroup memory.max_usage_in_bytes {} MiB \
         (page cache included; the chart's limit is 512 MiB)",
        hwm_kib / 1024,
        before_hwm / 1024,
        peak_rss_kib / 1024,
        peak_cgroup_rss >> 20,
        max_usage >> 20,
    );
    // The download streams: the process never holds the image.
    assert!(hwm_kib < 256 * 1024, "VmHWM {hwm_kib} KiB");
    release.uninstall_with_its_cache(cluster, ns).await?;
    Ok(())
}

/// The fetch-crl way: the CA directory is the node's own (`trust.source:
/// hostPath`, which only a `privileged` namespace admits), CRLs come with it
/// (`crlRefresh.enabled: false`). A list verifies with it; then "fetch-crl"
/// writes a CRL revoking the signer into the directory and the pod, which
/// reads it live, expires the image.
#[tokio::test]
async fn node_trust_from_the_nodes_directory_like_fetch_crl() -> Result<()> {
    on_node("node-hostpath", |cluster, node, ns| async move {
        trust_from_host(&cluster, &node, &ns).await
    })
    .await
}

async fn trust_from_host(cluster: &Cluster, node: &TestNode, ns: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    // The node's directory must be readable by the pod's user (65532), as
    // /etc/grid-security/certificates is.
    let scratch = tempfile::Builder::new()
        .prefix("vmlisub-e2e-node-host-")
        .tempdir()?;
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755))?;
    let release_dir = scratch.path().to_path_buf();
    let ca_dir = release_dir.join("certificates");
    // The release's PKI lives in its own tempdir; the node's directory is a
    // copy, kept up to date by "fetch-crl" below. It exists (empty) before
    // the pod (hostPath type Directory); the operator reloads it on change.
    std::fs::create_dir_all(&ca_dir)?;
    std::fs::set_permissions(&ca_dir, std::fs::Permissions::from_mode(0o755))?;
    let release = Release::install_in(
        cluster,
        node,
        ns,
        &[
            "trust.source=hostPath",
            &format!("trust.hostPath.path={}", ca_dir.display()),
            "crlRefresh.enabled=false",
        ],
        &release_dir,
        "privileged",
    )
    .await?;
    for entry in std::fs::read_dir(&release.pki.ca_dir)?.flatten() {
        let target = ca_dir.join(entry.file_name());
        std::fs::copy(entry.path(), &target)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))?;
    }
    deployment_available(cluster, ns, &release.fullname, 1).await?;
    let image = image_bytes(1 << 20, 17);
    release.subscribe(cluster, &[("img-host", &image)]).await?;
    let status = release.available(cluster, "img-host", POD_TIMEOUT).await?;
    assert_eq!(
        status["artifact"]["digest"],
        format!("sha512:{}", sha512_hex(&image))
    );

    // fetch-crl: a CRL revoking the signer replaces the CA's CRL file
    // (written aside, renamed into place).
    let revoking = release.pki.crl(
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(30),
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 7),
        2,
        &[live::LivePki::SIGNER_SERIAL_HEX],
        false,
    );
    let crl_name = std::fs::read_dir(&ca_dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".r0"))
        .context("no CRL (*.r0) in the CA directory")?;
    let tmp = ca_dir.join(format!(".{crl_name}.tmp"));
    std::fs::write(&tmp, &revoking)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, ca_dir.join(&crl_name))?;
    let lists = vmli_api(cluster, ns, "ImageListSubscription");
    merge_patch(
        &lists,
        "site",
        &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "after-fetch-crl"}}}),
    )
    .await?;
    let subs = vmli_api(cluster, ns, "ImageSubscription");
    let expired = eventually(
        POD_TIMEOUT,
        "the image expired by the revocation",
        || async {
            let s = subs.get("img-host").await?;
            let status = s.data.get("status").cloned().unwrap_or(Value::Null);
            Ok((status["phase"] == "Expired").then_some(status))
        },
    )
    .await?;
    assert_eq!(
        expired["history"][0]["reason"], "signer-revoked",
        "{expired:#}"
    );
    release.uninstall_with_its_cache(cluster, ns).await?;
    Ok(())
}

/// Issue #13 item 3 on the node: a hook Job of `spec.hooks` runs to
/// completion in the `restricted` namespace of the release, its container
/// gets the event's values in its environment (the command only names the
/// variables), and `status.hooks` of the list reports the run Succeeded.
#[tokio::test]
async fn node_hook_job_runs_to_completion_with_the_event_in_its_environment() -> Result<()> {
    on_node("node-hooks", |cluster, node, ns| async move {
        hook_job_on_the_node(&cluster, &node, &ns).await
    })
    .await
}

async fn hook_job_on_the_node(cluster: &Cluster, node: &TestNode, ns: &str) -> Result<()> {
    let release = Release::install(cluster, node, ns, &["hooks.enabled=true"]).await?;
    deployment_available(cluster, ns, &release.fullname, 1).await?;
    let image = image_bytes(64 << 10, 11);
    let hooks = json!({"hooks": {
        "events": ["AvailablePostfix"],
        "timeout": "2m",
        "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "securityContext": {
                "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": "handler", "image": CLIENT_IMAGE, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c",
                    "echo \"event=$VMILS_EVENT_TYPE id=$VMILS_EVENT_DC_IDENTIFIER sha512=$VMLISUB_IMAGE_SHA512\""],
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                },
            }],
        }}}},
    }});
    release
        .subscribe_with(cluster, &[("img-hook", &image)], hooks)
        .await?;
    release.available(cluster, "img-hook", POD_TIMEOUT).await?;

    // The Job's pod ran on the node and succeeded.
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(cluster.client(), ns);
    let job = eventually(POD_TIMEOUT, "the hook Job completed", || async {
        let list = jobs.list(&ListParams::default()).await?;
        for job in list.items {
            let status = job.status.clone().unwrap_or_default();
            if status.failed.unwrap_or(0) > 0 {
                bail!("hook Job failed: {status:?}");
            }
            if status.succeeded.unwrap_or(0) > 0 {
                return Ok(Some(job));
            }
        }
        Ok(None)
    })
    .await?;
    let job_name = job.metadata.name.clone().context("job name")?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), ns);
    let pod = pods
        .list(&ListParams::default().labels(&format!("job-name={job_name}")))
        .await?
        .items
        .into_iter()
        .next()
        .context("the hook Job's pod")?;
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(node.name.as_str())
    );
    let log = pods
        .logs(
            pod.metadata.name.as_deref().context("pod name")?,
            &LogParams::default(),
        )
        .await?;
    assert_eq!(
        log.trim(),
        format!(
            "event=AvailablePostfix id=img-hook sha512={}",
            sha512_hex(&image)
        ),
        "the handler's output"
    );

    // status.hooks of the list follows the Job.
    let lists = vmli_api(cluster, ns, "ImageListSubscription");
    eventually(POD_TIMEOUT, "status.hooks Succeeded", || async {
        let list = lists.get("site").await?;
        let last = list.data["status"]["hooks"]["lastRun"].clone();
        Ok((last["jobName"] == job_name.as_str() && last["phase"] == "Succeeded").then_some(()))
    })
    .await?;
    Ok(())
}
