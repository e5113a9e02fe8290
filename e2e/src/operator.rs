//! Running the real `vmlisub operator` binary in e2e tests: a loopback HTTP
//! publisher of signed lists and images, a kubeconfig that authenticates
//! with a ServiceAccount token (so RBAC is what the operator really gets),
//! and the process itself.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use kube::config::{AuthInfo, Kubeconfig, NamedAuthInfo};

use crate::{Cluster, Process, workspace_binary};

/// A static HTTP/1.1 file server on 127.0.0.1 or another local address (GET, HEAD, `Range: bytes=N-`
/// with `If-Range`, an ETag per file version (size and modification time,
/// as common web servers make it), 304 for a matching `If-None-Match`), with
/// a request log and an optional bandwidth limit, standing in for a list
/// publisher.
pub struct Publisher {
    pub dir: PathBuf,
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
    /// Bytes per second per response; 0 is unlimited.
    throttle: Arc<AtomicU64>,
}

impl Publisher {
    pub fn start(dir: &Path) -> Result<Publisher> {
        Publisher::start_at(dir, std::net::Ipv4Addr::LOCALHOST)
    }

    /// [`Publisher::start`] on another local address, e.g. the e2e node's
    /// bridge address, which its pods reach.
    pub fn start_at(dir: &Path, address: std::net::Ipv4Addr) -> Result<Publisher> {
        std::fs::create_dir_all(dir)?;
        let listener = TcpListener::bind((address, 0))
            .with_context(|| format!("binding a publisher to {address}"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let log = Arc::new(Mutex::new(Vec::new()));
        let throttle = Arc::new(AtomicU64::new(0));
        let (root, thread_log, thread_throttle) =
            (dir.to_path_buf(), Arc::clone(&log), Arc::clone(&throttle));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, log, throttle) = (
                    root.clone(),
                    Arc::clone(&thread_log),
                    Arc::clone(&thread_throttle),
                );
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &root, &log, &throttle);
                });
            }
        });
        Ok(Publisher {
            dir: dir.to_path_buf(),
            url,
            log,
            throttle,
        })
    }

    /// Publishes `bytes` at `/name`.
    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<String> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
        Ok(format!("{}/{name}", self.url))
    }

    pub fn set_throttle(&self, bytes_per_second: u64) {
        self.throttle.store(bytes_per_second, Ordering::SeqCst);
    }

    /// Request lines so far, as `METHOD /path [range]`, followed by
    /// ` if-none-match=<etag>` and ` authorization=<value>` when the request
    /// carried them and ` -> 304` when it was answered Not Modified.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn serve_one(
    stream: TcpStream,
    root: &Path,
    log: &Mutex<Vec<String>>,
    throttle: &AtomicU64,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or("/").to_string();
        let range = headers.get("range").cloned();
        let if_none_match = headers.get("if-none-match").cloned();
        let mut line = format!("{method} {path} {}", range.clone().unwrap_or_default());
        if let Some(tag) = &if_none_match {
            line.push_str(&format!(" if-none-match={tag}"));
        }
        if let Some(authorization) = headers.get("authorization") {
            line.push_str(&format!(" authorization={authorization}"));
        }
        let name = path.trim_start_matches('/');
        let file = (!name.contains('/') && !name.starts_with('.'))
            .then(|| root.join(name))
            .and_then(|p| std::fs::File::open(p).ok());
        let Some(mut file) = file else {
            if let Ok(mut log) = log.lock() {
                log.push(line);
            }
            writer.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        };
        let metadata = file.metadata()?;
        let len = metadata.len();
        let modified = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let etag = format!("\"{len}-{modified:x}\"");
        let not_modified = if_none_match.as_deref() == Some(etag.as_str());
        if not_modified {
            line.push_str(" -> 304");
        }
        if let Ok(mut log) = log.lock() {
            log.push(line);
        }
        if not_modified {
            write!(
                writer,
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\nETag: {etag}\r\n\r\n"
            )?;
            continue;
        }
        let start = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|_| headers.get("if-range").is_none_or(|v| *v == etag))
            .filter(|start| *start < len);
        let (status, from) = match start {
            Some(start) => (
                format!(
                    "206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}",
                    len - 1
                ),
                start,
            ),
            None => ("200 OK".to_string(), 0),
        };
        write!(
            writer,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n\r\n",
            len - from
        )?;
        if method == "HEAD" {
            continue;
        }
        file.seek(std::io::SeekFrom::Start(from))?;
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            writer.write_all(&buffer[..n])?;
            let rate = throttle.load(Ordering::SeqCst);
            if rate > 0 {
                std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
            }
        }
    }
}

/// A kubeconfig for the test cluster that authenticates with `token`.
pub fn token_kubeconfig(dir: &Path, token: &str) -> Result<PathBuf> {
    let admin = crate::kubeconfig_path().context("no kubeconfig for the test cluster")?;
    let mut config = Kubeconfig::read_from(&admin).context("reading the admin kubeconfig")?;
    let user = config
        .contexts
        .first()
        .and_then(|c| c.context.as_ref())
        .map(|c| c.user.clone())
        .unwrap_or_default();
    config.auth_infos = vec![NamedAuthInfo {
        name: user.unwrap_or_default(),
        auth_info: Some(AuthInfo {
            token: Some(token.to_string().into()),
            ..AuthInfo::default()
        }),
        other: Default::default(),
    }];
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, serde_json::to_vec(&config)?)?;
    Ok(path)
}

/// How to start the operator.
pub struct OperatorRun {
    pub kubeconfig: PathBuf,
    /// Extra arguments, e.g. `--max-concurrent-downloads 8`.
    pub extra_args: Vec<String>,
    pub cache_dir: PathBuf,
    pub ca_dir: PathBuf,
    /// The artifact port (`--listen`).
    pub port: u16,
    /// The metrics port (`--metrics-listen`).
    pub metrics_port: u16,
    pub namespace: String,
    pub leader_elect: bool,
}

impl OperatorRun {
    /// The operator as the chart runs it in `ns`: the chart's RBAC for the
    /// release `<ns>-op` (returned, for `uninstall_chart_rbac`), that
    /// ServiceAccount's token in a kubeconfig under `dir`, its cache in
    /// `dir/cache`, CAs from `ca_dir`, free ports.
    pub async fn as_chart(
        cluster: &Cluster,
        ns: &str,
        dir: &Path,
        ca_dir: &Path,
        leader_elect: bool,
    ) -> Result<(OperatorRun, String)> {
        let release = format!("{ns}-op");
        let account = crate::install_chart_rbac(cluster, ns, &release).await?;
        let token = cluster.service_account_token(ns, &account).await?;
        let run = OperatorRun {
            kubeconfig: token_kubeconfig(dir, &token)?,
            extra_args: Vec::new(),
            cache_dir: dir.join("cache"),
            ca_dir: ca_dir.to_path_buf(),
            port: free_port()?,
            metrics_port: free_port()?,
            namespace: ns.to_string(),
            leader_elect,
        };
        Ok((run, release))
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.metrics_port)
    }

    /// Starts `vmlisub operator` and waits until it serves /readyz.
    pub async fn start(&self, name: &str) -> Result<Process> {
        // VMLISUB_OPERATOR_BIN: another build (the scale benchmark uses
        // the release binary).
        let binary = match std::env::var_os("VMLISUB_OPERATOR_BIN") {
            Some(path) => PathBuf::from(path),
            None => workspace_binary("vmlisub")?,
        };
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("operator")
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .arg("--ca-dir")
            .arg(&self.ca_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{}", self.metrics_port))
            .arg("--artifact-base-url")
            .arg(self.base_url())
            .arg("--log-level")
            .arg("info,kube=warn")
            .env("KUBECONFIG", &self.kubeconfig)
            .env("POD_NAMESPACE", &self.namespace)
            .env("POD_NAME", name)
            .env_remove("VMLISUB_E2E_KUBECONFIG");
        if self.leader_elect {
            cmd.arg("--leader-elect");
        }
        cmd.args(&self.extra_args);
        let mut process = Process::spawn(name, cmd)?;
        process
            .wait_for_log("serving /images", Duration::from_secs(30))
            .await?;
        Ok(process)
    }
}

#[path = "../../operator/tests/support/ports.rs"]
mod ports;

/// A free loopback port below the kernel's ephemeral range (32768 and up),
/// as `e2e/cluster` picks its own: a port the kernel handed out would be
/// free only until some outbound connection (this test's API client, a
/// concurrent test's) is given it before the operator binds it. Each port
/// is handed out once per process.
pub fn free_port() -> Result<u16> {
    let ephemeral = ports::ephemeral_start();
    anyhow::ensure!(
        ephemeral >= 32_000,
        "the ephemeral port range starts at {ephemeral}: no room below it for 20000-31999"
    );
    ports::free_port_in(20_000..32_000).context("no free port in 20000-31999")
}

/// An HTTP/1.1 response: status, headers, body.
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// One request to `url` over plain HTTP/1.1 (the artifact and metrics
/// servers), with extra `headers`.
pub fn http_request(method: &str, url: &str, headers: &[(&str, &str)]) -> Result<HttpReply> {
    let rest = url.strip_prefix("http://").context("http URL")?;
    let (host, path) = rest.split_once('/').context("URL path")?;
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!("{method} /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("status")?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(HttpReply {
        status,
        headers,
        body: response[split + 4..].to_vec(),
    })
}

/// GET `url` without credentials, with an optional Range header; returns
/// (status, body).
pub fn http_get(url: &str, range: Option<&str>) -> Result<(u16, Vec<u8>)> {
    let headers: Vec<(&str, &str)> = range.map(|r| ("Range", r)).into_iter().collect();
    let reply = http_request("GET", url, &headers)?;
    Ok((reply.status, reply.body))
}

/// GET `url` with `Authorization: Bearer <token>` and an optional Range
/// header; returns (status, body).
pub fn http_get_as(url: &str, range: Option<&str>, token: &str) -> Result<(u16, Vec<u8>)> {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("Authorization", bearer.as_str())];
    if let Some(range) = range {
        headers.push(("Range", range));
    }
    let reply = http_request("GET", url, &headers)?;
    Ok((reply.status, reply.body))
}

/// A ServiceAccount `name` in `namespace` that may read the namespace's
/// artifacts (a Role with `get` on ImageSubscriptions, bound to it, as a
/// site grants a KubeVirt importer), and a token of it; returns once the
/// authorizer shows the grant.
pub async fn artifact_reader_token(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<String> {
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use kube::api::{Api, PostParams};
    let token = cluster.service_account_token(namespace, name).await?;
    let role = Role {
        metadata: ObjectMeta {
            name: Some(format!("{name}-artifacts")),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["vmli.hepix.org".into()]),
            resources: Some(vec!["imagesubscriptions".into()]),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(cluster.client(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .with_context(|| format!("creating Role {namespace}/{name}-artifacts"))?;
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(format!("{name}-artifacts")),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: format!("{name}-artifacts"),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(namespace.into()),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(cluster.client(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .with_context(|| format!("creating RoleBinding {namespace}/{name}-artifacts"))?;
    let client = cluster.service_account_client(namespace, name).await?;
    let what = format!("{namespace}/{name} to be allowed to get imagesubscriptions");
    crate::eventually(crate::TIMEOUT, &what, || {
        let client = client.clone();
        async move {
            Ok(crate::can_i(client, "get", "imagesubscriptions", namespace)
                .await?
                .then_some(()))
        }
    })
    .await?;
    Ok(token)
}
