//! A real Keystone and a real Glance on loopback, for the Glance export
//! tests: both from PyPI (installed by `e2e/openstack/install.sh` into a
//! cached virtualenv), sqlite databases and Glance's file store in a
//! temporary directory, served by gunicorn, killed on drop.
//!
//! Keystone is bootstrapped with `keystone-manage` (admin user, project and
//! catalog), the Glance `image` service is added to its catalog, and an
//! application credential is created for the admin user. Glance validates
//! tokens with Keystone (`flavor = keystone`), offers the `web-download`
//! import method, and its import filtering allows 127.0.0.1 on any port
//! (by default it allows only ports 80 and 443 and never loopback).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where the virtualenv is (`$VMLISUB_OPENSTACK_VENV`, else the install
/// script's default), if it is installed. With
/// `VMLISUB_OPENSTACK_REQUIRE=1` (CI) a missing one is a failure.
pub fn venv() -> Option<PathBuf> {
    let path = std::env::var_os("VMLISUB_OPENSTACK_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            let tools = std::env::var_os("VMLISUB_TOOLS")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME")
                        .map(|c| PathBuf::from(c).join("vmlisub-tools"))
                })
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vmlisub-tools"))
                })?;
            Some(tools.join("openstack-glance-33.0.0-keystone-28.1.0"))
        });
    match path {
        Some(path) if path.join(".vmlisub-complete").exists() => Some(path),
        _ if std::env::var("VMLISUB_OPENSTACK_REQUIRE").as_deref() == Ok("1") => {
            panic!(
                "VMLISUB_OPENSTACK_REQUIRE=1 but the OpenStack virtualenv is missing: run e2e/openstack/install.sh"
            )
        }
        _ => {
            eprintln!(
                "skipped: no OpenStack virtualenv (run e2e/openstack/install.sh, or set VMLISUB_OPENSTACK_REQUIRE=1 to fail instead)"
            );
            None
        }
    }
}

/// The running services.
pub struct OpenStack {
    dir: tempfile::TempDir,
    children: Vec<(String, Child)>,
    /// `http://127.0.0.1:<port>/v3`
    pub keystone: String,
    /// `http://127.0.0.1:<port>`
    pub glance: String,
    /// A project-scoped admin token (password authentication).
    pub admin_token: String,
    /// An application credential of the admin user: (id, secret).
    pub app_credential: (String, String),
}

const ADMIN_PASSWORD: &str = "vmlisub-test-admin";

#[path = "ports.rs"]
mod ports;

/// A free loopback port for a service that binds it seconds later (after
/// its database is set up): below the ephemeral range, apart from the e2e
/// harness's operator ports (20000-31999).
fn free_port() -> u16 {
    let ephemeral = ports::ephemeral_start();
    assert!(
        ephemeral >= 20_000,
        "the ephemeral port range starts at {ephemeral}: no room below it for 10000-19999"
    );
    ports::free_port_in(10_000..20_000).expect("a free loopback port in 10000-19999")
}

fn run(what: &str, command: &mut Command, log: &Path) {
    let log_file = std::fs::File::create(log).unwrap();
    let status = command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .status()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed ({status}):\n{}", tail(log));
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A blocking HTTP call with curl-free std: one request per connection.
pub fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Vec<(String, String)>, Value) {
    http_raw(
        method,
        url,
        token,
        body.map(|b| ("application/json", serde_json::to_vec(b).unwrap())),
    )
}

/// As [`http`], with a raw body and content type.
pub fn http_raw(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Vec<(String, String)>, Value) {
    use std::io::Read as _;
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if let Some(token) = token {
        request.push_str(&format!("X-Auth-Token: {token}\r\n"));
    }
    let body = body.unwrap_or(("application/json", Vec::new()));
    if method != "GET" {
        request.push_str(&format!(
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            body.0,
            body.1.len()
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(&body.1).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let mut raw_body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        raw_body = dechunk(&raw_body);
    }
    let value = serde_json::from_slice(&raw_body).unwrap_or(Value::Null);
    (status, headers, value)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
    out
}

fn wait_ready(what: &str, url: &str, log: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited ({status}):\n{}", tail(log));
        }
        let authority = url.trim_start_matches("http://").split('/').next().unwrap();
        if std::net::TcpStream::connect(authority).is_ok() {
            let (status, _, _) = http("GET", url, None, None);
            if status < 500 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what} not ready after 120s:\n{}",
            tail(log)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

impl OpenStack {
    /// Starts Keystone and Glance from `venv`.
    pub fn start(venv: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let python = venv.join("bin/python");
        let keystone_port = free_port();
        let glance_port = free_port();
        let keystone = format!("http://127.0.0.1:{keystone_port}/v3");
        let glance = format!("http://127.0.0.1:{glance_port}");

        // Keystone: sqlite, fernet tokens, bootstrap.
        let ks = root.join("keystone");
        for sub in ["fernet", "credential"] {
            std::fs::create_dir_all(ks.join(sub)).unwrap();
        }
        std::fs::write(
            ks.join("keystone.conf"),
            format!(
                "[database]\nconnection = sqlite:///{db}\n[token]\nprovider = fernet\n\
                 [fernet_tokens]\nkey_repository = {fernet}\n[fernet_receipts]\nkey_repository = {fernet}\n\
                 [credential]\nkey_repository = {cred}\n",
                db = ks.join("keystone.sqlite").display(),
                fernet = ks.join("fernet").display(),
                cred = ks.join("credential").display(),
            ),
        )
        .unwrap();
        // Keystone's WSGI app parses sys.argv with oslo.config: give it
        // none of gunicorn's.
        std::fs::write(
            ks.join("vmlisub_keystone_app.py"),
            "import sys\nsys.argv = sys.argv[:1]\nfrom keystone.wsgi.api import application  # noqa: E402,F401\n",
        )
        .unwrap();
        let manage = |args: &[&str], log: &str| {
            let mut command = Command::new(venv.join("bin/keystone-manage"));
            command
                .arg("--config-file")
                .arg(ks.join("keystone.conf"))
                .args(args);
            run(
                &format!("keystone-manage {}", args[0]),
                &mut command,
                &ks.join(log),
            );
        };
        // Glance: sqlite, file store, keystone auth, web-download.
        let gl = root.join("glance");
        for sub in ["images", "staging", "tasks"] {
            std::fs::create_dir_all(gl.join(sub)).unwrap();
        }
        std::fs::copy(
            venv.join("etc/glance/glance-api-paste.ini"),
            gl.join("glance-api-paste.ini"),
        )
        .unwrap();
        std::fs::write(
            gl.join("glance-api.conf"),
            format!(
                "[DEFAULT]\nenabled_backends = fs:file\nenabled_import_methods = [web-download]\n\
                 worker_self_reference_url = {glance}\n\
                 [database]\nconnection = sqlite:///{db}\n\
                 [paste_deploy]\nflavor = keystone\nconfig_file = {paste}\n\
                 [glance_store]\ndefault_backend = fs\n\
                 [fs]\nfilesystem_store_datadir = {images}\n\
                 [os_glance_staging_store]\nfilesystem_store_datadir = {staging}\n\
                 [os_glance_tasks_store]\nfilesystem_store_datadir = {tasks}\n\
                 [import_filtering_opts]\nallowed_hosts = [127.0.0.1]\nallowed_ports = []\n\
                 [keystone_authtoken]\nwww_authenticate_uri = {keystone}\nauth_url = {keystone}\n\
                 auth_type = password\nusername = admin\npassword = {ADMIN_PASSWORD}\nproject_name = admin\n\
                 user_domain_id = default\nproject_domain_id = default\n",
                db = gl.join("glance.sqlite").display(),
                paste = gl.join("glance-api-paste.ini").display(),
                images = gl.join("images").display(),
                staging = gl.join("staging").display(),
                tasks = gl.join("tasks").display(),
            ),
        )
        .unwrap();
        // Both databases at once (each setup command is seconds of Python
        // start-up).
        std::thread::scope(|scope| {
            let glance_db = scope.spawn(|| {
                let mut db_sync = Command::new(venv.join("bin/glance-manage"));
                db_sync
                    .env("OS_GLANCE_CONFIG_DIR", &gl)
                    .arg("--config-file")
                    .arg(gl.join("glance-api.conf"))
                    .arg("db_sync");
                run(
                    "glance-manage db_sync",
                    &mut db_sync,
                    &gl.join("db_sync.log"),
                );
                wal(&python, &gl.join("glance.sqlite"));
            });
            let uid = current_user_and_group();
            manage(&["db_sync"], "db_sync.log");
            wal(&python, &ks.join("keystone.sqlite"));
            manage(
                &[
                    "fernet_setup",
                    "--keystone-user",
                    &uid.0,
                    "--keystone-group",
                    &uid.1,
                ],
                "fernet.log",
            );
            manage(
                &[
                    "credential_setup",
                    "--keystone-user",
                    &uid.0,
                    "--keystone-group",
                    &uid.1,
                ],
                "credential.log",
            );
            manage(
                &[
                    "bootstrap",
                    "--bootstrap-password",
                    ADMIN_PASSWORD,
                    "--bootstrap-admin-url",
                    &keystone,
                    "--bootstrap-public-url",
                    &keystone,
                    "--bootstrap-internal-url",
                    &keystone,
                    "--bootstrap-region-id",
                    "RegionOne",
                ],
                "bootstrap.log",
            );
            if let Err(panic) = glance_db.join() {
                std::panic::resume_unwind(panic);
            }
        });

        let mut stack = Self {
            dir,
            children: Vec::new(),
            keystone: keystone.clone(),
            glance: glance.clone(),
            admin_token: String::new(),
            app_credential: (String::new(), String::new()),
        };
        // Keystone serves one request at a time: its sqlite database is
        // locked by concurrent writers otherwise. Glance needs threads: an
        // import runs beside the requests that watch it.
        let gunicorn = |port: u16, chdir: &Path, app: &str, log: &Path, threads: &str| {
            let log_file = std::fs::File::create(log).unwrap();
            let mut command = Command::new(&python);
            command
                .args([
                    "-m",
                    "gunicorn",
                    "--no-control-socket",
                    "--workers",
                    "1",
                    "--threads",
                    threads,
                ])
                .args(["--worker-class", "gthread", "--timeout", "300", "--bind"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("--chdir")
                .arg(chdir)
                .arg(app)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file);
            command
        };
        let ks_log = ks.join("api.log");
        let mut ks_command = gunicorn(
            keystone_port,
            &ks,
            "vmlisub_keystone_app:application",
            &ks_log,
            "1",
        );
        ks_command
            .env("OS_KEYSTONE_CONFIG_DIR", &ks)
            .env("OS_KEYSTONE_CONFIG_FILES", "keystone.conf");
        stack
            .children
            .push(("keystone".into(), ks_command.spawn().unwrap()));
        let gl_log = gl.join("api.log");
        let mut gl_command = gunicorn(
            glance_port,
            &gl,
            "glance.wsgi.api:application",
            &gl_log,
            "4",
        );
        gl_command.env("OS_GLANCE_CONFIG_DIR", &gl);
        stack
            .children
            .push(("glance".into(), gl_command.spawn().unwrap()));
        wait_ready("keystone", &keystone, &ks_log, &mut stack.children[0].1);

        // An admin token, the image service in the catalog, and an
        // application credential.
        let (status, headers, body) = http(
            "POST",
            &format!("{keystone}/auth/tokens"),
            None,
            Some(
                &json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}),
            ),
        );
        assert_eq!(status, 201, "admin token: {body}");
        stack.admin_token = headers
            .iter()
            .find(|(k, _)| k == "x-subject-token")
            .map(|(_, v)| v.clone())
            .unwrap();
        let user_id = body["token"]["user"]["id"].as_str().unwrap().to_string();
        let token = stack.admin_token.clone();
        let (status, _, service) = http(
            "POST",
            &format!("{keystone}/services"),
            Some(&token),
            Some(&json!({"service": {"type": "image", "name": "glance"}})),
        );
        assert_eq!(status, 201, "image service: {service}");
        for interface in ["public", "internal"] {
            let (status, _, endpoint) = http(
                "POST",
                &format!("{keystone}/endpoints"),
                Some(&token),
                Some(
                    &json!({"endpoint": {"service_id": service["service"]["id"], "interface": interface,
                    "url": glance, "region_id": "RegionOne"}}),
                ),
            );
            assert_eq!(status, 201, "image endpoint: {endpoint}\n{}", tail(&ks_log));
        }
        let (status, _, credential) = http(
            "POST",
            &format!("{keystone}/users/{user_id}/application_credentials"),
            Some(&token),
            Some(&json!({"application_credential": {"name": "vmlisub-test"}})),
        );
        assert_eq!(
            status,
            201,
            "application credential: {credential}\n{}",
            tail(&ks_log)
        );
        stack.app_credential = (
            credential["application_credential"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
            credential["application_credential"]["secret"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        wait_ready(
            "glance",
            &format!("{glance}/versions"),
            &gl_log,
            &mut stack.children[1].1,
        );
        stack
    }

    /// The temporary directory (logs are under keystone/ and glance/).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of Glance's log.
    pub fn glance_log(&self) -> String {
        tail(&self.dir.path().join("glance/api.log"))
    }

    /// `GET /v2/images?<query>` as admin.
    pub fn images(&self, query: &str) -> Vec<Value> {
        let (status, _, body) = http(
            "GET",
            &format!("{}/v2/images?{query}", self.glance),
            Some(&self.admin_token),
            None,
        );
        assert_eq!(status, 200, "{body}");
        body["images"].as_array().cloned().unwrap_or_default()
    }

    /// Every image of a list (hidden ones too).
    pub fn images_of(&self, list: &str) -> Vec<Value> {
        let query = format!("vmli_list={}", list.replace('/', "%2F"));
        let mut all = self.images(&query);
        all.extend(self.images(&format!("{query}&os_hidden=true")));
        all
    }
}

/// Puts a sqlite database in write-ahead-log mode (kept in the file):
/// without it, a read left open by one request's connection locks out the
/// writes of the next ("database is locked" from Keystone's catalog API).
fn wal(python: &Path, db: &Path) {
    let mut command = Command::new(python);
    command.args([
        "-c",
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); assert c.execute('PRAGMA journal_mode=WAL').fetchone()[0] == 'wal'",
    ]);
    command.arg(db);
    run(
        "sqlite WAL mode",
        &mut command,
        &db.with_extension("wal.log"),
    );
}

fn current_user_and_group() -> (String, String) {
    let id = |flag: &str| {
        let out = Command::new("id").arg(flag).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    (id("-un"), id("-gn"))
}

impl Drop for OpenStack {
    fn drop(&mut self) {
        // gunicorn's workers exit when their master is gone.
        for (name, child) in &mut self.children {
            if child.kill().is_ok() {
                let _ = child.wait();
            } else {
                eprintln!("{name} had exited already");
            }
        }
    }
}

/// A TLS-terminating proxy (Python's asyncio and ssl, from the venv) on
/// 127.0.0.1 in front of a plain HTTP server: Glance "behind TLS" with a
/// certificate of a test CA. Stopped when dropped.
pub struct TlsProxy {
    child: Child,
    /// `https://127.0.0.1:<port>`
    pub url: String,
}

const TLS_PROXY: &str = r#"
import asyncio, ssl, sys
cert, key, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass
async def handle(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
    except Exception:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"#;

impl TlsProxy {
    /// Serves `https://127.0.0.1:<port>` with `cert`/`key` (PEM files) and
    /// forwards every connection to `upstream` (`http://127.0.0.1:<port>...`).
    pub fn start(venv: &Path, cert: &Path, key: &Path, upstream: &str) -> Self {
        use std::io::BufRead as _;
        let port = upstream
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.split(['/', '?']).next())
            .unwrap_or_else(|| panic!("not a loopback http URL: {upstream}"));
        let mut child = Command::new(venv.join("bin/python"))
            .args(["-c", TLS_PROXY])
            .arg(cert)
            .arg(key)
            .arg(port)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 for the TLS proxy");
        let stdout = child.stdout.take().expect("proxy stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the proxy's port");
        let listening: u16 = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the TLS proxy did not start: {line:?}")
        });
        Self {
            child,
            url: format!("https://127.0.0.1:{listening}"),
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
