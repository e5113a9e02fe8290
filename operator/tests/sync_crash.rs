//! `vmlisub sync` killed with SIGKILL in the middle of an image download:
//! the cache never holds an unverified image, and the next run resumes the
//! partial file with `Range` (and `If-Range`, so that a file that changed on
//! the server is fetched whole instead of spliced onto old bytes).
//!
//! The HTTP/1.1 server is a few lines of `std::net` on loopback: it serves
//! the signed list and one image, honours `Range: bytes=N-` and `If-Range`,
//! sends `ETag` and `Last-Modified`, records every request, and can be
//! throttled so that the first download lasts long enough to be killed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::process::{files_under, text};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::live::LivePki;

const LIST_ID: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
const IMAGE_ID: &str = "crash-img";
const IMAGE_LEN: usize = 8 << 20;
/// The server writes the image in chunks of this size...
const CHUNK: usize = 64 * 1024;
/// ...and, while throttled, sleeps this long between two of them: 8 MiB
/// then take about 5 s, and the first MiB arrives within a second.
const THROTTLE: Duration = Duration::from_millis(40);
/// The partial file must have grown past this before the kill.
const KILL_AFTER: u64 = 1 << 20;
/// Nothing in a test may wait longer than this.
const PATIENCE: Duration = Duration::from_secs(15);
/// The server stops accepting after this, whatever happens to the test.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);

// ----- the server ------------------------------------------------------------

/// What the server publishes; swapped between runs.
#[derive(Clone)]
struct Content {
    list: Arc<Vec<u8>>,
    image: Arc<Vec<u8>>,
    etag: String,
    last_modified: String,
}

/// One request as the server saw it, with the status it answered.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
    status: u16,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `N` of a `Range: bytes=N-` header.
    fn range_start(&self) -> Option<u64> {
        self.header("range")?
            .strip_prefix("bytes=")?
            .strip_suffix('-')?
            .parse()
            .ok()
    }
}

struct Shared {
    content: Mutex<Content>,
    seen: Mutex<Vec<Seen>>,
    /// Milliseconds slept between two image chunks (0: full speed).
    throttle_ms: AtomicU64,
    stop: AtomicBool,
}

struct Server {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start(content: Content) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            content: Mutex::new(content),
            seen: Mutex::new(Vec::new()),
            throttle_ms: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let accept = support::publisher::spawn_accept(
            listener,
            Arc::clone(&shared),
            SERVER_LIFETIME,
            |state| state.stop.load(Ordering::SeqCst),
            serve,
        );
        Self {
            port,
            shared,
            accept: Some(accept),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn throttle(&self, on: bool) {
        let ms = if on {
            u64::try_from(THROTTLE.as_millis()).unwrap()
        } else {
            0
        };
        self.shared.throttle_ms.store(ms, Ordering::SeqCst);
    }

    fn publish(&self, content: Content) {
        *self.shared.content.lock().unwrap() = content;
    }

    /// The requests seen since the last call.
    fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.shared.seen.lock().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// One request per connection (`Connection: close`).
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        if headers.len() > 100 {
            return;
        }
    }
    let mut seen = Seen {
        path: path.clone(),
        headers,
        status: 0,
    };
    let content = shared.content.lock().unwrap().clone();
    let mut stream = stream;
    match (method.as_str(), path.as_str()) {
        ("GET", "/image.list") => {
            seen.status = 200;
            record(shared, seen);
            let _ = respond(&mut stream, 200, &[], &content.list, shared, false);
        }
        ("GET", "/image.img") => {
            let image = &content.image;
            let len = image.len() as u64;
            // If-Range: the range applies only if the validator still
            // matches; otherwise the whole (new) file is sent.
            let validator_ok = seen
                .header("if-range")
                .is_none_or(|v| v == content.etag || v == content.last_modified);
            let validators = [
                ("ETag", content.etag.clone()),
                ("Last-Modified", content.last_modified.clone()),
                ("Accept-Ranges", "bytes".to_string()),
            ];
            match seen.range_start().filter(|_| validator_ok) {
                Some(start) if start >= len => {
                    seen.status = 416;
                    record(shared, seen);
                    let extra = [("Content-Range", format!("bytes */{len}"))];
                    let _ = respond(&mut stream, 416, &extra, &[], shared, false);
                }
                Some(start) => {
                    seen.status = 206;
                    record(shared, seen);
                    let mut extra = validators.to_vec();
                    extra.push(("Content-Range", format!("bytes {start}-{}/{len}", len - 1)));
                    let body = &image[usize::try_from(start).unwrap()..];
                    let _ = respond(&mut stream, 206, &extra, body, shared, true);
                }
                None => {
                    seen.status = 200;
                    record(shared, seen);
                    let _ = respond(&mut stream, 200, &validators, image, shared, true);
                }
            }
        }
        _ => {
            seen.status = 404;
            record(shared, seen);
            let _ = respond(&mut stream, 404, &[], b"not found", shared, false);
        }
    }
    // Drain what the client may still send, then close.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = reader.read(&mut [0u8; 64]);
}

fn record(shared: &Shared, seen: Seen) {
    shared.seen.lock().unwrap().push(seen);
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    shared: &Shared,
    throttled: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        416 => "Range Not Satisfiable",
        _ => "Not Found",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    for chunk in body.chunks(CHUNK) {
        stream.write_all(chunk)?;
        let ms = shared.throttle_ms.load(Ordering::SeqCst);
        if throttled && ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
    stream.flush()
}

// ----- the site --------------------------------------------------------------

/// Deterministic image bytes (splitmix64), different for each seed.
fn image_bytes(seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(IMAGE_LEN);
    while out.len() < IMAGE_LEN {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(IMAGE_LEN);
    out
}

struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pki: LivePki,
    server: Server,
}

impl Site {
    /// A site serving version 1 of the image (seed 1) with a list that
    /// names it, throttled.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("pki")).unwrap();
        std::fs::create_dir_all(root.join("manifests")).unwrap();
        let pki = LivePki::new(&root.join("pki"));
        let server = Server::start(Content {
            list: Arc::new(Vec::new()),
            image: Arc::new(Vec::new()),
            etag: String::new(),
            last_modified: String::new(),
        });
        let site = Self {
            _dir: dir,
            root,
            pki,
            server,
        };
        let image = image_bytes(1);
        let list = site.signed_list("1", &image);
        site.server.publish(content(1, list, image));
        site.server.throttle(true);
        site.manifests();
        site
    }

    fn signed_list(&self, version: &str, image: &[u8]) -> Vec<u8> {
        let uri = self.server.url("image.img");
        self.pki.list(LIST_ID, version, &[(IMAGE_ID, &uri, image)])
    }

    fn manifests(&self) {
        let manifest = format!(
            r#"apiVersion: vmli.hepix.org/v1alpha1
kind: Endorser
metadata: {{name: signer}}
spec:
  credentials:
    - subject: "{subject}"
      issuer: "{issuer}"
---
apiVersion: vmli.hepix.org/v1alpha1
kind: ImageListSubscription
metadata: {{name: vo-list}}
spec:
  url: "{list}"
  endorsers: [{{name: signer}}]
  imagePolicy: AutoSubscribe
"#,
            subject = self.pki.subject,
            issuer = self.pki.issuer,
            list = self.server.url("image.list"),
        );
        std::fs::write(self.root.join("manifests/site.yaml"), manifest).unwrap();
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vmlisub"));
        command
            .args(["sync", "--once", "-f"])
            .arg(self.root.join("manifests"))
            .arg("--cache-dir")
            .arg(self.root.join("cache"))
            .arg("--ca-dir")
            .arg(&self.pki.ca_dir)
            .arg("--state")
            .arg(self.root.join("state/state.json"))
            .env("RUST_LOG", "vmlisub=info");
        // Loopback only, whatever the environment says.
        for proxy in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ] {
            command.env_remove(proxy);
        }
        command
    }

    fn sync(&self) -> Output {
        self.command().output().unwrap()
    }

    fn spawn(&self) -> Child {
        let log = |name: &str| Stdio::from(std::fs::File::create(self.root.join(name)).unwrap());
        self.command()
            .stdout(log("killed.stdout"))
            .stderr(log("killed.stderr"))
            .spawn()
            .unwrap()
    }

    fn partial(&self) -> PathBuf {
        self.root
            .join("cache/partial/default/vo-list")
            .join(IMAGE_ID)
    }

    fn sidecar(&self) -> PathBuf {
        self.root
            .join("cache/partial/default/vo-list")
            .join(format!(".{IMAGE_ID}.meta"))
    }

    fn endorsed(&self) -> PathBuf {
        self.root
            .join("cache/endorsed/default/vo-list")
            .join(IMAGE_ID)
            .join("image")
    }

    /// Image files anywhere under `endorsed/`.
    fn endorsed_images(&self) -> Vec<PathBuf> {
        files_under(&self.root.join("cache/endorsed"))
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "image"))
            .collect()
    }

    /// Runs a sync and SIGKILLs it once the partial file has grown past
    /// [`KILL_AFTER`]; returns the partial's length after the kill.
    fn sync_and_kill_mid_download(&self) -> u64 {
        let mut child = self.spawn();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let len = std::fs::metadata(self.partial()).map_or(0, |m| m.len());
            if len >= KILL_AFTER {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "sync exited ({status}) before the kill, partial {len} bytes\n{}",
                    self.killed_logs()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "partial never reached {KILL_AFTER} bytes (has {len})\n{}",
                    self.killed_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "sync finished before it could be killed"
        );
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "{status}");
        let len = std::fs::metadata(self.partial()).unwrap().len();
        assert!(len > 0 && len < IMAGE_LEN as u64, "partial has {len} bytes");
        len
    }

    fn killed_logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.root.join(name)).unwrap_or_default();
        format!(
            "stdout:\n{}\nstderr:\n{}",
            read("killed.stdout"),
            read("killed.stderr")
        )
    }

    /// What must hold right after the kill: the partial and its sidecar
    /// are there, nothing reached `endorsed/`.
    fn assert_killed_state(&self) {
        assert!(self.partial().is_file());
        assert!(self.sidecar().is_file(), "{}", self.killed_logs());
        assert!(
            self.endorsed_images().is_empty(),
            "{:?}",
            self.endorsed_images()
        );
    }
}

fn content(generation: u64, list: Vec<u8>, image: Vec<u8>) -> Content {
    Content {
        list: Arc::new(list),
        image: Arc::new(image),
        etag: format!("\"image-v{generation}\""),
        last_modified: format!("Tue, 0{generation} Jul 2025 12:00:00 GMT"),
    }
}

fn image_requests(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter().filter(|s| s.path == "/image.img").collect()
}

// ----- the tests -------------------------------------------------------------

#[test]
fn killed_mid_download_then_resumed_with_range() {
    let site = Site::new();
    let image = image_bytes(1);

    let kept = site.sync_and_kill_mid_download();
    site.assert_killed_state();
    let first = site.server.take_seen();
    let first_image = image_requests(&first);
    assert_eq!(first_image.len(), 1, "{first:?}");
    assert_eq!(first_image[0].header("range"), None);
    // What was kept is a prefix of the served bytes.
    let partial = std::fs::read(site.partial()).unwrap();
    assert_eq!(&partial[..], &image[..partial.len()]);

    site.server.throttle(false);
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("will be resumed"),
        "{}",
        text(&out)
    );
    assert!(std::fs::read(site.endorsed()).unwrap() == image);
    assert!(!site.partial().exists());
    assert!(!site.sidecar().exists());

    let second = site.server.take_seen();
    let second_image = image_requests(&second);
    assert_eq!(second_image.len(), 1, "{second:?}");
    let resumed = second_image[0];
    assert_eq!(resumed.range_start(), Some(kept), "{resumed:?}");
    assert_eq!(resumed.header("if-range"), Some("\"image-v1\""));
    assert_eq!(resumed.status, 206);
}

#[test]
fn changed_image_with_a_resigned_list_is_downloaded_whole() {
    let site = Site::new();
    let old = image_bytes(1);
    let new = image_bytes(2);

    let kept = site.sync_and_kill_mid_download();
    site.assert_killed_state();
    site.server.take_seen();

    // The publisher replaces the image and re-signs the list for it.
    let list = site.signed_list("2", &new);
    site.server.publish(content(2, list, new.clone()));
    site.server.throttle(false);
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));

    let endorsed = std::fs::read(site.endorsed()).unwrap();
    assert!(endorsed == new, "the endorsed image is not the new one");
    let kept = usize::try_from(kept).unwrap();
    let spliced: Vec<u8> = old[..kept].iter().chain(&new[kept..]).copied().collect();
    assert!(endorsed != spliced);
    // No byte range of the new file was put after old bytes: every image
    // response was the whole file. (vmlisub sees that the partial's sidecar
    // names another sha512 and starts from zero without a Range; had it
    // asked for one, the old validator in If-Range would have made the
    // server send the whole file.)
    let seen = site.server.take_seen();
    let images = image_requests(&seen);
    assert!(!images.is_empty(), "{seen:?}");
    for request in images {
        assert_eq!(request.status, 200, "{request:?}");
        if request.header("range").is_some() {
            assert_eq!(request.header("if-range"), Some("\"image-v1\""));
        }
    }
}

#[test]
fn image_changed_before_the_list_is_refused_then_fetched_whole() {
    let site = Site::new();
    let old = image_bytes(1);
    let new = image_bytes(2);

    let kept = site.sync_and_kill_mid_download();
    site.assert_killed_state();
    site.server.take_seen();

    // The image changes on the server (new ETag) while the signed list
    // still describes the old one.
    let stale_list = site.signed_list("1", &old);
    site.server.publish(content(2, stale_list, new.clone()));
    site.server.throttle(false);
    let out = site.sync();
    // A failed image fails the pass, even with no ImageSubscription naming it.
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("download failed: checksum-mismatch"),
        "{}",
        text(&out)
    );
    // If-Range with the old validator made the server send the whole new
    // file instead of the rest of it; it did not match the list, so
    // nothing was promoted and the partial is not kept for resuming.
    let seen = site.server.take_seen();
    let images = image_requests(&seen);
    assert_eq!(images.len(), 1, "{seen:?}");
    assert_eq!(images[0].range_start(), Some(kept));
    assert_eq!(images[0].header("if-range"), Some("\"image-v1\""));
    assert_eq!(images[0].status, 200);
    assert!(site.endorsed_images().is_empty());
    assert!(!site.sidecar().exists());

    // The list catches up: the new image is fetched and endorsed.
    let list = site.signed_list("2", &new);
    site.server.publish(content(2, list, new.clone()));
    let out = site.sync();
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(site.endorsed()).unwrap() == new);
    let seen = site.server.take_seen();
    for request in image_requests(&seen) {
        assert_eq!(request.status, 200, "{request:?}");
    }
}
