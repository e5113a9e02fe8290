//! Harness for vmlisub's end-to-end tests against a real Kubernetes API server.
//!
//! The tests run only when a cluster is provided (see `e2e/README.md`):
//!
//! * `VMLISUB_E2E_KUBECONFIG=/path/to/kubeconfig`, or
//! * `VMLISUB_E2E=1` with the usual `KUBECONFIG` (or `~/.kube/config`).
//!
//! Without one, [`Cluster::connect`] prints `skipped: no cluster` and the test
//! returns early, unless `VMLISUB_E2E_REQUIRE=1` (set by `e2e/run.sh`) or `CI`
//! is set: then a missing cluster is an error, so skipping cannot hide in CI.
//!
//! A typical test:
//!
//! ```ignore
//! #[tokio::test]
//! async fn something() -> anyhow::Result<()> {
//!     let cluster = vmlisub_e2e::cluster_or_skip!();
//!     let ns = cluster.create_namespace("something").await?;
//!     // ... use cluster.client() ...
//!     cluster.delete_namespace(&ns).await?;
//!     Ok(())
//! }
//! ```

use std::fmt::Debug;
use std::fs::File;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Event, Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::discovery::Scope;
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Client, Config, Resource, ResourceExt as _};
use serde_json::Value;

pub mod node;
pub mod operator;

/// Field manager used by the harness for server-side apply.
pub const FIELD_MANAGER: &str = "vmlisub-e2e";

/// Label put on every namespace the harness creates; on a shared cluster,
/// `kubectl delete ns -l e2e.vmli.hepix.org/test` removes what a failed run left.
pub const TEST_LABEL: &str = "e2e.vmli.hepix.org/test";

/// Default timeout for waits in the tests.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Writes straight to the process' stderr, past the test harness' output
/// capture, so that the line is seen even for a passing test.
fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

fn env_set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn truthy(name: &str) -> bool {
    env_set(name).is_some_and(|v| !matches!(v.as_str(), "0" | "false" | "no"))
}

/// In a test returning `anyhow::Result<()>`: evaluates to the [`Cluster`]
/// under test, or prints `skipped: no cluster` and returns `Ok(())` from the
/// test when none is configured (an error when one is required; see the crate
/// docs).
#[macro_export]
macro_rules! cluster_or_skip {
    () => {
        match $crate::Cluster::connect().await? {
            Some(cluster) => cluster,
            None => return Ok(()),
        }
    };
}

/// A connection to the cluster under test, as its administrator.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    config: Config,
}

impl Cluster {
    /// Connects to the cluster that the environment names; `Ok(None)` (after
    /// printing `skipped: no cluster`) when there is none and none is required.
    pub async fn connect() -> Result<Option<Cluster>> {
        let explicit = env_set("VMLISUB_E2E_KUBECONFIG");
        if explicit.is_none() && !truthy("VMLISUB_E2E") {
            let test = std::thread::current()
                .name()
                .unwrap_or("e2e test")
                .to_owned();
            if truthy("VMLISUB_E2E_REQUIRE") || truthy("CI") {
                bail!(
                    "{test}: no cluster, but one is required here (VMLISUB_E2E_REQUIRE or CI is set): \
                     run the e2e tests through `make e2e` / e2e/run.sh, or set VMLISUB_E2E=1 with KUBECONFIG"
                );
            }
            say(&format!(
                "{test}: skipped: no cluster (run `make e2e`, or set VMLISUB_E2E=1 with KUBECONFIG, \
                 or VMLISUB_E2E_KUBECONFIG)"
            ));
            return Ok(None);
        }
        let config = match explicit {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(&path)
                    .with_context(|| format!("reading VMLISUB_E2E_KUBECONFIG={path}"))?;
                Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .with_context(|| format!("loading kubeconfig {path}"))?
            }
            None => Config::infer()
                .await
                .context("VMLISUB_E2E=1 but no usable KUBECONFIG")?,
        };
        let client = Client::try_from(config.clone()).context("building the client")?;
        Ok(Some(Cluster { client, config }))
    }

    /// The administrator's client (cheap to clone).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The administrator's client configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Creates a fresh namespace `vmlisub-e2e-<prefix>-xxxxx` labelled
    /// [`TEST_LABEL`], and returns its name.
    pub async fn create_namespace(&self, prefix: &str) -> Result<String> {
        let api: Api<Namespace> = Api::all(self.client());
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("vmlisub-e2e-{prefix}-")),
                labels: Some([(TEST_LABEL.to_owned(), prefix.to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let created = api
            .create(&PostParams::default(), &ns)
            .await
            .context("creating a test namespace")?;
        Ok(created.name_any())
    }

    /// Deletes a namespace (the namespace controller removes its content)
    /// without waiting for it to go.
    pub async fn delete_namespace(&self, name: &str) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client());
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting namespace {name}")),
        }
    }

    /// Server-side applies every CustomResourceDefinition in a (multi-document)
    /// YAML file and waits until each is Established.
    pub async fn apply_crds(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<Vec<CustomResourceDefinition>> {
        let path = path.as_ref();
        let api: Api<CustomResourceDefinition> = Api::all(self.client());
        let mut out = Vec::new();
        for doc in read_yaml_documents(path)? {
            let crd: CustomResourceDefinition = serde_json::from_value(doc)
                .with_context(|| format!("{}: not a CustomResourceDefinition", path.display()))?;
            let name = crd.name_any();
            let applied = api
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&crd),
                )
                .await
                .with_context(|| format!("applying CRD {name}"))?;
            out.push(applied);
        }
        for crd in &out {
            let name = crd.name_any();
            wait_for(&api, &name, TIMEOUT, conditions::is_crd_established())
                .await
                .with_context(|| format!("CRD {name} not Established"))?;
        }
        Ok(out)
    }

    /// Server-side applies every object in a (multi-document) YAML file, each
    /// kind resolved through discovery. Namespaced objects without a namespace
    /// go to `namespace` (an error when it is `None`).
    pub async fn apply_yaml(
        &self,
        path: impl AsRef<Path>,
        namespace: Option<&str>,
    ) -> Result<Vec<DynamicObject>> {
        let path = path.as_ref();
        let mut out = Vec::new();
        for doc in read_yaml_documents(path)? {
            let obj: DynamicObject = serde_json::from_value(doc)
                .with_context(|| format!("{}: not a Kubernetes object", path.display()))?;
            out.push(self.apply_dynamic(&obj, namespace).await?);
        }
        Ok(out)
    }

    /// Server-side applies a JSON manifest (`apiVersion`, `kind`,
    /// `metadata.name`) in `namespace`.
    pub async fn apply_json(&self, namespace: &str, doc: Value) -> Result<DynamicObject> {
        let obj: DynamicObject = serde_json::from_value(doc).context("not a manifest")?;
        self.apply_dynamic(&obj, Some(namespace)).await
    }

    /// Server-side applies one object of any kind (resolved through discovery).
    pub async fn apply_dynamic(
        &self,
        obj: &DynamicObject,
        namespace: Option<&str>,
    ) -> Result<DynamicObject> {
        let types = obj
            .types
            .as_ref()
            .ok_or_else(|| anyhow!("object {} has no apiVersion/kind", obj.name_any()))?;
        let gvk = GroupVersionKind::try_from(types)?;
        let (resource, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .with_context(|| format!("discovering {}/{}", types.api_version, types.kind))?;
        let name = obj.name_any();
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(self.client(), &resource),
            Scope::Namespaced => {
                let ns = obj
                    .namespace()
                    .or_else(|| namespace.map(str::to_owned))
                    .ok_or_else(|| anyhow!("{} {name} needs a namespace", types.kind))?;
                Api::namespaced_with(self.client(), &ns, &resource)
            }
        };
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
        .with_context(|| format!("applying {} {name}", types.kind))
    }

    /// The Events about an object (matched by its uid, in any namespace),
    /// oldest first. The operator publishes Events from a queue, a moment
    /// after the status it goes with, so the list is read until two reads
    /// 250 ms apart agree (at most 5 s). To wait for a particular Event, use
    /// [`Cluster::events_until`].
    pub async fn events_for<K: Resource>(&self, obj: &K) -> Result<Vec<Event>> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut events = self.list_events(obj).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let again = self.list_events(obj).await?;
            if again == events || std::time::Instant::now() > deadline {
                return Ok(again);
            }
            events = again;
        }
    }

    /// The Events about an object once `done` holds for them (at most 60 s;
    /// a loaded machine may send a queued Event seconds after the status
    /// write a test waited for). The error names the reasons seen.
    pub async fn events_until<K: Resource>(
        &self,
        obj: &K,
        what: &str,
        done: impl Fn(&[Event]) -> bool,
    ) -> Result<Vec<Event>> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let events = self.list_events(obj).await?;
            if done(&events) {
                return Ok(events);
            }
            if std::time::Instant::now() > deadline {
                let reasons: Vec<&str> =
                    events.iter().filter_map(|e| e.reason.as_deref()).collect();
                bail!("timed out after 60s waiting for Events: {what}; reasons seen: {reasons:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The Events about an object now, oldest first.
    async fn list_events<K: Resource>(&self, obj: &K) -> Result<Vec<Event>> {
        let uid = obj
            .meta()
            .uid
            .as_deref()
            .ok_or_else(|| anyhow!("object has no uid (not read back from the server?)"))?;
        let api: Api<Event> = Api::all(self.client());
        let params = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
        let mut events = api.list(&params).await.context("listing events")?.items;
        events.sort_by(|a, b| {
            let key = |e: &Event| {
                e.event_time
                    .as_ref()
                    .map(|t| t.0)
                    .or_else(|| e.last_timestamp.as_ref().map(|t| t.0))
                    .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
            };
            key(a).cmp(&key(b))
        });
        Ok(events)
    }

    /// Creates the ServiceAccount `name` in `namespace` (if missing), asks the
    /// TokenRequest API for a token and returns a client that authenticates
    /// with that token only: an unprivileged client, subject to RBAC.
    pub async fn service_account_client(&self, namespace: &str, name: &str) -> Result<Client> {
        let token = self.service_account_token(namespace, name).await?;
        let mut config = self.config.clone();
        config.auth_info = AuthInfo {
            token: Some(token.into()),
            ..AuthInfo::default()
        };
        config.default_namespace = namespace.to_owned();
        Client::try_from(config).context("building the service-account client")
    }

    /// Creates the ServiceAccount (if missing) and returns a one-hour token.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client(), namespace);
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => {}
            Err(e) if status_code(&e) == Some(409) => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating ServiceAccount {namespace}/{name}"));
            }
        }
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let granted = api
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("TokenRequest for {namespace}/{name}"))?;
        granted
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("TokenRequest for {namespace}/{name} returned no token"))
    }
}

/// The HTTP status code of an API error (403, 404, 409, ...), if it is one.
pub fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Reads a (multi-document) YAML file into JSON values, skipping empty documents.
pub fn read_yaml_documents(path: impl AsRef<Path>) -> Result<Vec<Value>> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
        .with_context(|| format!("parsing YAML {}", path.display()))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// A path relative to the e2e crate (`e2e/`), e.g. `testdata/smoke-crd.yaml`.
pub fn crate_path(relative: impl AsRef<Path>) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A binary built by cargo in this workspace (e.g. `vmlisub`), found next to
/// the running test executable (`target/<profile>/`). Build it first, e.g.
/// `cargo build -p vmlisub`.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    // target/<profile>/deps/<test-exe>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("unexpected test executable path {}", exe.display()))?;
    let bin = profile_dir.join(name);
    if bin.is_file() {
        Ok(bin)
    } else {
        bail!(
            "{} not found: build it first (cargo build -p <package>)",
            bin.display()
        )
    }
}

/// Creates an object; an existing one is an error (unlike [`apply`]).
pub async fn create<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource + Clone + Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    api.create(&PostParams::default(), obj)
        .await
        .with_context(|| format!("creating {}", obj.name_any()))
}

/// Server-side applies `obj` (a typed object or a `serde_json::Value` with
/// apiVersion and kind) as field manager `manager`, forcing conflicts.
pub async fn apply<K, P>(api: &Api<K>, name: &str, manager: &str, obj: &P) -> Result<K>
where
    K: Resource + Clone + Debug + serde::de::DeserializeOwned,
    P: serde::Serialize + Debug,
{
    api.patch(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(obj),
    )
    .await
    .with_context(|| format!("server-side apply of {name} as {manager}"))
}

/// JSON merge-patches an object.
pub async fn merge_patch<K>(api: &Api<K>, name: &str, patch: &Value) -> Result<K>
where
    K: Resource + Clone + Debug + serde::de::DeserializeOwned,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .with_context(|| format!("merge patch of {name}"))
}

/// JSON merge-patches an object's status subresource.
pub async fn merge_patch_status<K>(api: &Api<K>, name: &str, patch: &Value) -> Result<K>
where
    K: Resource + Clone + Debug + serde::de::DeserializeOwned,
{
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .with_context(|| format!("status merge patch of {name}"))
}

/// Watches object `name` until `condition` holds (it gets `None` while the
/// object does not exist) or `timeout` passes. Returns the object as last
/// seen (`None` when it is gone). Closures `|o: Option<&K>| -> bool` are
/// conditions, as are those of [`kube::runtime::wait::conditions`].
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    condition: impl Condition<K>,
) -> Result<Option<K>>
where
    K: Resource + Clone + Debug + Send + serde::de::DeserializeOwned + 'static,
{
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, condition)).await {
        Ok(result) => result.with_context(|| format!("watching {name}")),
        Err(_) => bail!("timed out after {timeout:?} waiting for a condition on {name}"),
    }
}

/// Waits until object `name` no longer exists.
pub async fn wait_deleted<K>(api: &Api<K>, name: &str, timeout: Duration) -> Result<()>
where
    K: Resource + Clone + Debug + Send + serde::de::DeserializeOwned + 'static,
{
    wait_for(api, name, timeout, |obj: Option<&K>| obj.is_none())
        .await
        .with_context(|| format!("{name} still exists"))
        .map(|_| ())
}

/// Polls `check` every 250 ms until it returns `Ok(Some(value))`. An `Err`
/// ends the wait at once, unless it is an API server's transient answer
/// ([`transient`]: a loaded control plane, not the behaviour under test);
/// map other expected errors (a 404 of an object still to be created) to
/// `Ok(None)`. Fails after `timeout`, naming `what`. For things no watch
/// expresses (RBAC propagation, Events appearing, log lines).
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) if transient(&e) && Instant::now() < deadline => {
                eprintln!("eventually({what}): retrying after a transient error: {e:#}");
            }
            Err(e) => return Err(e.context(format!("while waiting for {what}"))),
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether `err` is a Kubernetes API answer a client retries: 429 (API
/// priority and fairness), 5xx (an etcd timeout), or no answer at all (a
/// connection dropped or refused while the server is busy).
pub fn transient(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| match cause.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(status)) => status.code == 429 || status.code >= 500,
            Some(kube::Error::HyperError(_) | kube::Error::Service(_)) => true,
            _ => false,
        })
}

static PROCESS_SEQ: AtomicU64 = AtomicU64::new(0);

/// A subprocess (e.g. the operator) whose stdout and stderr go to a log file.
/// Dropping it kills the process and prints the log to the test's stderr,
/// which the test harness shows for a failing test (and hides otherwise).
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd` (stdin closed, output captured), named `name` in messages.
    pub fn spawn(name: &str, mut cmd: Command) -> Result<Process> {
        let dir = std::env::temp_dir().join("vmlisub-e2e-logs");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = dir.join(format!(
            "{}-{}-{}.log",
            name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
            std::process::id(),
            PROCESS_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(Process {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote so far (stdout and stderr interleaved).
    pub fn logs(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `Some(status)` once the process has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child.try_wait().context("polling the process")
    }

    /// Waits until the log contains `needle`; fails if the process exits first.
    pub async fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let what = format!("{} to log {needle:?}", self.name);
        eventually(timeout, &what, || {
            let found = self.logs().contains(needle);
            let exited = self.child.try_wait();
            async move {
                if found {
                    return Ok(Some(()));
                }
                match exited? {
                    Some(status) => bail!("exited ({status}) before logging {needle:?}"),
                    None => Ok(None),
                }
            }
        })
        .await
    }

    /// Sends SIGTERM, waits up to `grace` for the exit, then SIGKILLs.
    pub async fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        // std has no signal API; the `kill` utility is everywhere we run.
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("running kill -TERM")?;
        if sent.success() {
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Some(status) = self.try_wait()? {
                    return Ok(status);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.child.kill().context("killing the process")?;
        self.child.wait().context("waiting for the process")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // eprintln! is captured by the test harness: shown for failing tests.
        eprintln!("----- {} (pid {}) output -----", self.name, self.child.id());
        eprintln!("{}", self.logs());
        eprintln!("----- end of {} output -----", self.name);
        let _ = std::fs::remove_file(&self.log);
    }
}

// ------------------------------------------------------------------------
// Packaging helpers: helm, kubectl and the chart's RBAC (charts/vmlisub).

/// A path relative to the repository root (the parent of `e2e/`), e.g.
/// `charts/vmlisub`.
pub fn repo_path(relative: impl AsRef<Path>) -> PathBuf {
    crate_path("..").join(relative)
}

/// Parses multi-document YAML text into JSON values, skipping empty documents.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).context("parsing YAML")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The kubeconfig the tests use, for command-line tools (helm, kubectl):
/// `VMLISUB_E2E_KUBECONFIG`, else `KUBECONFIG`; `None` lets the tool use its
/// own default (`~/.kube/config`).
pub fn kubeconfig_path() -> Option<PathBuf> {
    env_set("VMLISUB_E2E_KUBECONFIG")
        .or_else(|| env_set("KUBECONFIG"))
        .map(PathBuf::from)
}

/// The pinned helm that `e2e/build-control-plane.sh` builds next to the
/// control plane (`VMLISUB_E2E_HELM` overrides it). It never falls back to a
/// `helm` on `PATH`, whose version nobody pinned.
pub fn helm_binary() -> Result<PathBuf> {
    if let Some(path) = env_set("VMLISUB_E2E_HELM") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("VMLISUB_E2E_HELM={} is not a file", path.display());
    }
    let out = Command::new("bash")
        .arg(crate_path("build-control-plane.sh"))
        .arg("--print-dir")
        .stdin(Stdio::null())
        .output()
        .context("running e2e/build-control-plane.sh --print-dir")?;
    if !out.status.success() {
        bail!(
            "e2e/build-control-plane.sh --print-dir failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let helm = Path::new(&dir).join("helm");
    if helm.is_file() {
        Ok(helm)
    } else {
        bail!(
            "{} not found: build it with e2e/build-control-plane.sh (make e2e does), \
             or set VMLISUB_E2E_HELM",
            helm.display()
        )
    }
}

/// Runs a command with `stdin` (if any), returns its stdout; a failure
/// carries the exit status and stderr.
fn run_tool(what: &str, mut cmd: Command, stdin: Option<&str>) -> Result<ToolOutput> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    if let Some(input) = stdin {
        let mut pipe = child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("{what}: no stdin pipe"))?;
        // Write from a thread: the child may fill its stdout pipe before it
        // has read all of its input.
        let input = input.to_owned();
        let writer = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for {what}"))?;
        writer
            .join()
            .map_err(|_| anyhow!("{what}: stdin writer panicked"))?
            .with_context(|| format!("writing to {what}"))?;
        return tool_output(what, out);
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for {what}"))?;
    tool_output(what, out)
}

fn tool_output(what: &str, out: std::process::Output) -> Result<ToolOutput> {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{what} failed ({}):\n{stderr}\n{stdout}", out.status);
    }
    Ok(ToolOutput { stdout, stderr })
}

/// What a successful tool run printed.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    /// Standard output.
    pub stdout: String,
    /// Standard error (warnings, e.g. PodSecurity or deprecation notices).
    pub stderr: String,
}

/// A `helm` command with private cache/config/data directories (nothing of
/// the user's helm setup is read or written) and the tests' kubeconfig.
fn helm_command() -> Result<Command> {
    let mut cmd = Command::new(helm_binary()?);
    let home = std::env::temp_dir().join(format!("vmlisub-e2e-helm-{}", std::process::id()));
    cmd.env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    if let Some(kubeconfig) = kubeconfig_path() {
        cmd.env("KUBECONFIG", kubeconfig);
    }
    Ok(cmd)
}

/// Runs the pinned helm with `args`; returns stdout and stderr, or an error
/// with both when it fails.
pub fn helm(args: &[&str]) -> Result<ToolOutput> {
    let mut cmd = helm_command()?;
    cmd.args(args);
    run_tool(&format!("helm {}", args.join(" ")), cmd, None)
}

/// `helm template <args...> charts/vmlisub`: renders the chart (CRDs not
/// included) and returns the YAML. `args` are helm's (release name first if
/// any, `--namespace`, `--set`, ...), e.g.
/// `render_chart(&["vmlisub", "--namespace", "ops", "--set", "watchNamespace=team-a"])`.
pub fn render_chart(args: &[&str]) -> Result<String> {
    let chart = repo_path("charts/vmlisub");
    let chart = chart
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 chart path"))?;
    let mut all = vec!["template"];
    all.extend_from_slice(args);
    all.push(chart);
    Ok(helm(&all)?.stdout)
}

/// Runs `kubectl <args>` (from `PATH`) with the tests' kubeconfig, feeding it
/// `stdin` when given.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Result<ToolOutput> {
    let mut cmd = Command::new("kubectl");
    cmd.args(args);
    if let Some(kubeconfig) = kubeconfig_path() {
        cmd.env("KUBECONFIG", kubeconfig);
    }
    run_tool(&format!("kubectl {}", args.join(" ")), cmd, stdin)
}

/// The kinds [`install_chart_rbac`] applies.
const RBAC_KINDS: [&str; 5] = [
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

/// Applies only the ServiceAccount and RBAC objects that the chart renders
/// for release `release` in `namespace` (cluster mode: ClusterRole +
/// ClusterRoleBinding, plus the leader-election Role), waits until the
/// ServiceAccount may list ImageListSubscriptions, and returns the
/// ServiceAccount's name. Run the operator with
/// [`Cluster::service_account_token`] of that name to test it with exactly
/// the chart's permissions. Remove the cluster-scoped objects with
/// [`uninstall_chart_rbac`].
pub async fn install_chart_rbac(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
) -> Result<String> {
    install_chart_rbac_with(cluster, namespace, release, &[]).await
}

/// [`install_chart_rbac`] with extra `helm template` arguments, e.g.
/// `&["--set", "watchNamespace=team-a"]` for watch-namespace mode (Role +
/// RoleBinding in the watched namespace) or
/// `&["--set", "leaderElection.enabled=false"]`.
pub async fn install_chart_rbac_with(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    extra_args: &[&str],
) -> Result<String> {
    let mut args = vec![release, "--namespace", namespace];
    args.extend_from_slice(extra_args);
    let rendered = render_chart(&args)?;
    let mut service_account = None;
    // Where the manager's permissions apply: the Role's namespace in
    // watch-namespace mode, else (ClusterRole) the release namespace.
    let mut check_namespace = namespace.to_owned();
    // The leader-election RoleBinding, if rendered: its namespace.
    let mut lease_namespace = None;
    for doc in parse_yaml_documents(&rendered)? {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        if !RBAC_KINDS.contains(&kind) {
            continue;
        }
        let obj: DynamicObject =
            serde_json::from_value(doc.clone()).context("rendered chart object")?;
        let name = obj.name_any();
        if kind == "ServiceAccount" {
            service_account = Some(name.clone());
        }
        if kind == "Role"
            && name.ends_with("-manager")
            && let Some(ns) = obj.namespace()
        {
            check_namespace = ns;
        }
        if kind == "RoleBinding" && name.ends_with("-leader-election") {
            lease_namespace = Some(obj.namespace().unwrap_or_else(|| namespace.to_owned()));
        }
        cluster.apply_dynamic(&obj, Some(namespace)).await?;
    }
    let service_account = service_account.ok_or_else(|| {
        anyhow!("the chart rendered no ServiceAccount (serviceAccount.create=false?)")
    })?;
    // RBAC reaches the authorizer through an informer per kind: wait until
    // each binding shows.
    let client = cluster
        .service_account_client(namespace, &service_account)
        .await?;
    let mut checks = vec![("list", "imagelistsubscriptions", check_namespace)];
    if let Some(ns) = lease_namespace {
        checks.push(("update", "leases", ns));
    }
    for (verb, resource, ns) in checks {
        let what =
            format!("{namespace}/{service_account} to be allowed to {verb} {resource} in {ns}");
        eventually(TIMEOUT, &what, || {
            let client = client.clone();
            let ns = ns.clone();
            async move { Ok(can_i(client, verb, resource, &ns).await?.then_some(())) }
        })
        .await?;
    }
    Ok(service_account)
}

/// Deletes the cluster-scoped RBAC objects (ClusterRole, ClusterRoleBinding)
/// of a release applied by [`install_chart_rbac`]; the namespaced ones go
/// with their namespace.
pub async fn uninstall_chart_rbac(cluster: &Cluster, release: &str) -> Result<()> {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let selector = format!("app.kubernetes.io/instance={release},app.kubernetes.io/name=vmlisub");
    let lp = ListParams::default().labels(&selector);
    let dp = DeleteParams::default();
    let bindings: Api<ClusterRoleBinding> = Api::all(cluster.client());
    bindings
        .delete_collection(&dp, &lp)
        .await
        .context("deleting ClusterRoleBindings")?;
    let roles: Api<ClusterRole> = Api::all(cluster.client());
    roles
        .delete_collection(&dp, &lp)
        .await
        .context("deleting ClusterRoles")?;
    Ok(())
}

/// SelfSubjectAccessReview: may `client` do `verb` on `resource` (group
/// `vmli.hepix.org` for the vmlisub kinds, `coordination.k8s.io` for leases,
/// the authentication/authorization groups for token and access reviews,
/// core otherwise; `resource` may be `kind/subresource`) in `namespace`
/// (empty: all namespaces)?
pub async fn can_i(client: Client, verb: &str, resource: &str, namespace: &str) -> Result<bool> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_owned())),
        None => (resource, None),
    };
    let group = match resource {
        "endorsers" | "imagelistsubscriptions" | "imagesubscriptions" => "vmli.hepix.org",
        "leases" => "coordination.k8s.io",
        "events" => "events.k8s.io",
        "tokenreviews" => "authentication.k8s.io",
        "subjectaccessreviews" => "authorization.k8s.io",
        _ => "",
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                subresource,
                verb: Some(verb.to_owned()),
                namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client);
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .with_context(|| format!("SelfSubjectAccessReview {verb} {resource} in {namespace:?}"))?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// The Dockerfile's instructions as (stage index, instruction, arguments),
/// continuation lines joined, comments dropped.
pub fn dockerfile_instructions(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut stage = 0usize;
    let mut seen_from = false;
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (instr, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        let instr = instr.to_ascii_uppercase();
        if instr == "FROM" {
            if seen_from {
                stage += 1;
            }
            seen_from = true;
        }
        out.push((stage, instr, rest.trim().to_owned()));
        current.clear();
    }
    out
}

/// The Endorser `publisher` that trusts one signing credential (one-line
/// subject and issuer DNs, e.g. a test PKI's signer): the manifest the e2e
/// tests subscribe with.
pub fn publisher_endorser(subject: &str, issuer: &str) -> Value {
    serde_json::json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "Endorser",
        "metadata": {"name": "publisher"},
        "spec": {"credentials": [{"subject": subject, "issuer": issuer}]},
    })
}

/// An ImageListSubscription `name` of `url`, checked hourly, trusting the
/// [`publisher_endorser`]; `auto` adds `imagePolicy: AutoSubscribe`.
pub fn publisher_list(name: &str, url: &str, auto: bool) -> Value {
    let mut list = serde_json::json!({
        "apiVersion": "vmli.hepix.org/v1alpha1", "kind": "ImageListSubscription",
        "metadata": {"name": name},
        "spec": {"url": url, "interval": "1h", "endorsers": [{"name": "publisher"}]},
    });
    if auto {
        list["spec"]["imagePolicy"] = "AutoSubscribe".into();
    }
    list
}

/// The API of one of vmlisub's kinds (`Endorser`, `ImageListSubscription`,
/// `ImageSubscription`) in `namespace`.
pub fn vmli_api(cluster: &Cluster, namespace: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("vmli.hepix.org", "v1alpha1", kind);
    Api::namespaced_with(
        cluster.client(),
        namespace,
        &kube::discovery::ApiResource::from_gvk(&gvk),
    )
}

/// Deletes every vmlisub object in `namespace` and waits (at most 120 s)
/// until they are gone: for the end of a test, while its operator still
/// runs to remove its finalizers, so that no later test's (cluster-wide)
/// operator finds them. Deleting the namespace first would not do: its
/// ServiceAccount, the operator's identity, may go before the finalizers.
pub async fn delete_vmli_objects(cluster: &Cluster, namespace: &str) -> Result<()> {
    const KINDS: [&str; 3] = ["ImageListSubscription", "ImageSubscription", "Endorser"];
    for kind in KINDS {
        vmli_api(cluster, namespace, kind)
            .delete_collection(&DeleteParams::background(), &ListParams::default())
            .await
            .with_context(|| format!("deleting the {kind}s of {namespace}"))?;
    }
    eventually(
        Duration::from_secs(120),
        &format!("vmlisub objects gone from {namespace}"),
        || async {
            let mut left = 0;
            for kind in KINDS {
                left += vmli_api(cluster, namespace, kind)
                    .list(&ListParams::default())
                    .await?
                    .items
                    .len();
            }
            Ok((left == 0).then_some(()))
        },
    )
    .await
}

/// Asks for a reconcile of `kind` `name` now, as `flux reconcile` does
/// (`reconcile.fluxcd.io/requestedAt: token`).
pub async fn request_reconcile(
    cluster: &Cluster,
    namespace: &str,
    kind: &str,
    name: &str,
    token: &str,
) -> Result<()> {
    merge_patch(
        &vmli_api(cluster, namespace, kind),
        name,
        &serde_json::json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
    )
    .await?;
    Ok(())
}
