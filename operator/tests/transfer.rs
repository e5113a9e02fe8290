//! `vmlisub::transfer` against real loopback servers with injected faults.
//!
//! The HTTP/1.1 server below is written by hand on a tokio `TcpListener`
//! (optionally behind tokio-rustls) so that every fault is exact: stalls
//! after N body bytes, connections closed mid-body, lying Content-Length,
//! ignored Range headers. Every server binds 127.0.0.1:0; test PKIs are
//! generated with the `openssl` CLI in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha512};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use vmlisub::reason::Reason;
use vmlisub::transfer::Sha512 as StreamSha512;
use vmlisub::transfer::{
    Auth, Downloaded, ListFetch, Progress, ProxyConfig, TimeoutPhase, Transfer, TransferConfig,
    TransferError, Validators, sidecar_path,
};

// ---------------------------------------------------------------------------
// The fault-injecting server

/// A request as the server saw it.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

enum Body {
    Bytes(Vec<u8>),
    /// This many zero bytes, generated while sending.
    Zeros(u64),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::Zeros(n) => *n,
        }
    }
}

enum Fault {
    None,
    /// Send this many body bytes, then go silent (connection kept open).
    StallAfter(u64),
    /// Send this many body bytes, then close the connection.
    CloseAfter(u64),
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
    /// `None`: close-delimited body without Content-Length.
    content_length: Option<u64>,
    fault: Fault,
    delay: Duration,
}

impl Reply {
    fn ok(body: Vec<u8>) -> Self {
        Self::with_status(200, body)
    }

    fn with_status(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_length: Some(body.len() as u64),
            body: Body::Bytes(body),
            fault: Fault::None,
            delay: Duration::ZERO,
        }
    }

    fn status(status: u16) -> Self {
        Self::with_status(status, Vec::new())
    }

    fn redirect(location: &str) -> Self {
        Self::status(302).header("Location", location)
    }

    fn zeros(len: u64) -> Self {
        Self {
            body: Body::Zeros(len),
            content_length: Some(len),
            ..Self::status(200)
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn no_length(mut self) -> Self {
        self.content_length = None;
        self
    }

    fn length(mut self, length: u64) -> Self {
        self.content_length = Some(length);
        self
    }

    fn fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Answers request number `index` (0-based, in arrival order).
type Handler = Arc<dyn Fn(&Request, usize) -> Reply + Send + Sync>;

#[derive(Default)]
struct Stats {
    requests: Mutex<Vec<Request>>,
    /// Body bytes the server managed to hand to the socket.
    body_bytes_sent: AtomicU64,
    active: AtomicUsize,
    max_active: AtomicUsize,
    connections_done: AtomicUsize,
}

struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every
        // connection task (stalled ones included).
        self.task.abort();
    }
}

impl Server {
    async fn http(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::start("127.0.0.1:0", Arc::new(handler), None).await
    }

    /// A plain http server on another address, e.g. `127.0.0.2:0` (another
    /// host on the loopback network) or `127.0.0.1:<port>`.
    async fn http_at(
        address: &str,
        handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start(address, Arc::new(handler), None).await
    }

    async fn https(
        pki: &Pki,
        handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start("127.0.0.1:0", Arc::new(handler), Some(acceptor(pki))).await
    }

    async fn start(address: &str, handler: Handler, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind(address).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task_stats = stats.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let stats = task_stats.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    let now = stats.active.fetch_add(1, Ordering::SeqCst) + 1;
                    stats.max_active.fetch_max(now, Ordering::SeqCst);
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, &handler, &stats).await;
                            }
                        }
                        None => serve(stream, &handler, &stats).await,
                    }
                    stats.active.fetch_sub(1, Ordering::SeqCst);
                    stats.connections_done.fetch_add(1, Ordering::SeqCst);
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            scheme,
            stats,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    fn requests(&self) -> Vec<Request> {
        self.stats.requests.lock().unwrap().clone()
    }

    fn body_bytes_sent(&self) -> u64 {
        self.stats.body_bytes_sent.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until `n` connections have finished.
    async fn wait_connections_done(&self, n: usize) {
        let start = Instant::now();
        while self.stats.connections_done.load(Ordering::SeqCst) < n {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "server connections did not finish"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One request per connection (`Connection: close`), which keeps the
/// request count equal to the connection count.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, handler: &Handler, stats: &Stats) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let request = Request { path, headers };
    let index = {
        let mut requests = stats.requests.lock().unwrap();
        requests.push(request.clone());
        requests.len() - 1
    };
    let reply = handler(&request, index);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }

    let mut out = format!("HTTP/1.1 {} Test\r\nConnection: close\r\n", reply.status);
    if let Some(length) = reply.content_length {
        out.push_str(&format!("Content-Length: {length}\r\n"));
    }
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    if stream.write_all(out.as_bytes()).await.is_err() {
        return;
    }

    let limit = match reply.fault {
        Fault::None => reply.body.len(),
        Fault::StallAfter(n) | Fault::CloseAfter(n) => n.min(reply.body.len()),
    };
    let zeros = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    while sent < limit {
        let step = (limit - sent).min(64 * 1024) as usize;
        let chunk = match &reply.body {
            Body::Bytes(bytes) => &bytes[sent as usize..sent as usize + step],
            Body::Zeros(_) => &zeros[..step],
        };
        if stream.write_all(chunk).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        sent += step as u64;
        stats
            .body_bytes_sent
            .fetch_add(step as u64, Ordering::SeqCst);
    }
    match reply.fault {
        Fault::StallAfter(_) => tokio::time::sleep(Duration::from_secs(60)).await,
        Fault::CloseAfter(_) => {} // dropped without a clean TLS close
        Fault::None => {
            let _ = stream.shutdown().await;
        }
    }
}

// ---------------------------------------------------------------------------
// Test PKI (openssl CLI)

#[path = "support/transport_pki.rs"]
#[allow(dead_code)]
mod transport_pki;
use transport_pki::TransportPki as Pki;

/// A TLS acceptor for the fault-injecting server.
fn acceptor(pki: &Pki) -> TlsAcceptor {
    TlsAcceptor::from(pki.server_config())
}

// ---------------------------------------------------------------------------
// Helpers

/// Short timeouts so that every failing case ends within seconds; direct
/// connections whatever the environment's proxy settings. The idle timeout
/// also bounds the time to the response head (reqwest's read timeout), so
/// it leaves room for a loaded machine; tests of the timeouts set theirs.
fn config() -> TransferConfig {
    TransferConfig {
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        total_timeout: Duration::from_secs(10),
        download_timeout: Some(Duration::from_secs(10)),
        proxy: ProxyConfig::Direct,
        ..TransferConfig::default()
    }
}

fn transfer() -> Transfer {
    Transfer::new(&config()).unwrap()
}

/// Deterministic, non-repeating-looking image bytes.
fn image(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn sha512(data: &[u8]) -> [u8; 64] {
    Sha512::digest(data).into()
}

struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Self {
        Self {
            dir: TempDir::new().unwrap(),
        }
    }

    fn partial(&self) -> PathBuf {
        self.dir.path().join("partial").join("image.img")
    }
}

fn no_progress(_: Progress) {}

/// Serves `data` honouring `Range` (206) with a fixed ETag, or fully (200).
fn ranged(data: &[u8], etag: &str, request: &Request) -> Reply {
    let total = data.len();
    match request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(from) if from < total => Reply::with_status(206, data[from..].to_vec())
            .header(
                "Content-Range",
                &format!("bytes {from}-{}/{total}", total - 1),
            )
            .header("ETag", etag),
        Some(_) => Reply::status(416).header("Content-Range", &format!("bytes */{total}")),
        None => Reply::ok(data.to_vec()).header("ETag", etag),
    }
}

async fn download(
    transfer: &Transfer,
    url: &str,
    partial: &Path,
    data: &[u8],
) -> Result<Downloaded, TransferError> {
    transfer
        .download(url, partial, data.len() as u64, &sha512(data), no_progress)
        .await
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Downloads

#[tokio::test]
async fn download_ok_streams_hashes_and_reports_progress() {
    let data = image((4 << 20) + 100_000);
    let served = data.clone();
    let server = Server::http(move |_, _| Reply::ok(served.clone()).header("ETag", "\"a\"")).await;
    let scratch = Scratch::new();
    let reports = Mutex::new(Vec::new());
    let done = transfer()
        .download(
            &server.url("/img"),
            &scratch.partial(),
            data.len() as u64,
            &sha512(&data),
            |p| reports.lock().unwrap().push(p),
        )
        .await
        .unwrap();
    assert_eq!(done.size, data.len() as u64);
    assert_eq!(done.sha512, sha512(&data));
    assert_eq!(done.resumed_from, 0);
    assert_eq!(std::fs::read(scratch.partial()).unwrap(), data);
    assert!(!sidecar_path(&scratch.partial()).exists(), "sidecar left");
    let reports = reports.into_inner().unwrap();
    assert!(reports.len() >= 3, "{reports:?}");
    assert_eq!(reports.first().map(|p| p.received), Some(0));
    assert_eq!(reports.last().map(|p| p.received), Some(data.len() as u64));
    let request = &server.requests()[0];
    assert!(
        request
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("vmlisub/")),
        "{request:?}"
    );
    assert_eq!(request.header("range"), None);
}

#[tokio::test]
async fn http_errors_carry_the_status() {
    let server = Server::http(|req, _| match req.path.as_str() {
        "/missing" => Reply::status(404),
        _ => Reply::with_status(500, b"boom".to_vec()),
    })
    .await;
    let scratch = Scratch::new();
    let data = image(10);
    let err = download(
        &transfer(),
        &server.url("/missing"),
        &scratch.partial(),
        &data,
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "http-status");
    assert_eq!(err.http_status(), Some(404));
    assert!(!err.is_transient());
    let err = transfer()
        .fetch_list(&server.url("/broken"), 1000, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "http-status");
    assert_eq!(err.http_status(), Some(500));
    assert!(err.is_transient());
    assert!(err.to_string().contains("500"), "{err}");
}

#[tokio::test]
async fn stall_mid_body_fires_the_idle_timeout() {
    let data = image(200_000);
    let served = data.clone();
    let server = Server::http(move |_, _| {
        Reply::ok(served.clone())
            .header("ETag", "\"s\"")
            .fault(Fault::StallAfter(100_000))
    })
    .await;
    let scratch = Scratch::new();
    // The server stalls for a minute; the idle timeout (2 s, also the
    // budget for the response head on a loaded machine) ends the transfer
    // long before the 10 s download timeout would.
    let transfer = Transfer::new(&TransferConfig {
        idle_timeout: Duration::from_secs(2),
        ..config()
    })
    .unwrap();
    let err = download(&transfer, &server.url("/img"), &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "timeout", "{err}");
    assert!(
        matches!(
            err,
            TransferError::Timeout {
                phase: TimeoutPhase::Idle,
                ..
            }
        ),
        "{err:?}"
    );
    // What arrived is kept for resuming.
    assert_eq!(file_len(&scratch.partial()), 100_000);
    assert!(sidecar_path(&scratch.partial()).exists());
}

#[tokio::test]
async fn slow_headers_hit_the_idle_then_the_total_timeout() {
    let server =
        Server::http(|_, _| Reply::ok(b"late".to_vec()).delay(Duration::from_secs(30))).await;
    let idle = Transfer::new(&TransferConfig {
        idle_timeout: Duration::from_millis(200),
        ..config()
    })
    .unwrap();
    let err = idle
        .fetch_list(&server.url("/list"), 100, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransferError::Timeout {
                phase: TimeoutPhase::Idle,
                ..
            }
        ),
        "{err:?}"
    );
    let total = Transfer::new(&TransferConfig {
        total_timeout: Duration::from_millis(300),
        ..config()
    })
    .unwrap();
    let err = total
        .fetch_list(&server.url("/list"), 100, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransferError::Timeout {
                phase: TimeoutPhase::Total,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn truncated_body_is_reported_and_kept() {
    let data = image(150_000);
    let served = data.clone();
    let server =
        Server::http(move |_, _| Reply::ok(served.clone()).fault(Fault::CloseAfter(60_000))).await;
    let scratch = Scratch::new();
    let err = download(&transfer(), &server.url("/img"), &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "truncated", "{err}");
    assert!(err.is_transient());
    assert_eq!(file_len(&scratch.partial()), 60_000);

    // The same on a list fetch.
    let err = transfer()
        .fetch_list(&server.url("/list"), 1 << 20, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "truncated", "{err}");
}

#[tokio::test]
async fn a_partial_file_another_process_writes_is_left_alone() {
    let data = image(100_000);
    let served = data.clone();
    let server = Server::http(move |_, _| Reply::ok(served.clone()).header("ETag", "\"l\"")).await;
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.partial().parent().unwrap()).unwrap();
    std::fs::write(scratch.partial(), b"theirs").unwrap();
    // Another process (an open file description of its own) is writing it.
    let theirs = std::fs::OpenOptions::new()
        .write(true)
        .open(scratch.partial())
        .unwrap();
    rustix::fs::flock(&theirs, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let err = download(&transfer(), &server.url("/img"), &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another process"), "{err}");
    assert_eq!(std::fs::read(scratch.partial()).unwrap(), b"theirs");
    assert!(server.requests().is_empty(), "no request before the lock");
    // Released: the download goes ahead.
    drop(theirs);
    let done = download(&transfer(), &server.url("/img"), &scratch.partial(), &data)
        .await
        .unwrap();
    assert_eq!(done.sha512, sha512(&data));
    assert_eq!(std::fs::read(scratch.partial()).unwrap(), data);
}

#[tokio::test]
async fn wrong_bytes_are_a_checksum_mismatch() {
    let data = image(50_000);
    let mut wrong = data.clone();
    wrong[40_000] ^= 1;
    let server = Server::http(move |_, _| Reply::ok(wrong.clone()).header("ETag", "\"w\"")).await;
    let scratch = Scratch::new();
    let err = download(&transfer(), &server.url("/img"), &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "checksum-mismatch", "{err}");
    assert!(!err.is_transient());
    // Left for the caller to move aside, but never resumed.
    assert_eq!(file_len(&scratch.partial()), 50_000);
    assert!(!sidecar_path(&scratch.partial()).exists());
}

#[tokio::test]
async fn body_larger_than_expected_is_aborted_during_transfer() {
    const SENT: u64 = 64 << 20;
    const EXPECTED: u64 = 256 << 10;
    // Close-delimited, so only the streaming check can catch it.
    let server = Server::http(|_, _| Reply::zeros(SENT).no_length()).await;
    let scratch = Scratch::new();
    let err = transfer()
        .download(
            &server.url("/huge"),
            &scratch.partial(),
            EXPECTED,
            &[0u8; 64],
            no_progress,
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "too-large", "{err}");
    assert!(file_len(&scratch.partial()) <= EXPECTED);
    server.wait_connections_done(1).await;
    let sent = server.body_bytes_sent();
    assert!(
        sent < SENT / 4,
        "client read on: server pushed {sent} of {SENT} bytes"
    );

    // An announced Content-Length that is too large fails before the body.
    let server = Server::http(|_, _| Reply::zeros(SENT)).await;
    let err = transfer()
        .download(
            &server.url("/huge"),
            &scratch.partial(),
            EXPECTED,
            &[0u8; 64],
            no_progress,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransferError::TooLarge { seen: SENT, .. }),
        "{err:?}"
    );

    // And a smaller one is a size mismatch.
    let server = Server::http(|_, _| Reply::zeros(1000)).await;
    let err = transfer()
        .download(
            &server.url("/small"),
            &scratch.partial(),
            EXPECTED,
            &[0u8; 64],
            no_progress,
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "size-mismatch", "{err}");
}

#[tokio::test]
async fn dropped_connection_resumes_with_range_and_if_range() {
    let data = image(300_000);
    let served = data.clone();
    let server = Server::http(move |req, index| {
        if index == 0 {
            Reply::ok(served.clone())
                .header("ETag", "\"v1\"")
                .header("Last-Modified", "Tue, 01 Apr 2025 10:00:00 GMT")
                .fault(Fault::CloseAfter(120_000))
        } else {
            ranged(&served, "\"v1\"", req)
        }
    })
    .await;
    let scratch = Scratch::new();
    let transfer = transfer();
    let url = server.url("/img");
    let err = download(&transfer, &url, &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "truncated");
    assert_eq!(file_len(&scratch.partial()), 120_000);

    let done = download(&transfer, &url, &scratch.partial(), &data)
        .await
        .unwrap();
    assert_eq!(done.resumed_from, 120_000);
    assert_eq!(done.sha512, sha512(&data));
    assert_eq!(std::fs::read(scratch.partial()).unwrap(), data);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("range"), Some("bytes=120000-"));
    assert_eq!(requests[1].header("if-range"), Some("\"v1\""));
    assert!(!sidecar_path(&scratch.partial()).exists());
}

/// The resume re-hash reads the partial file in chunks on a blocking
/// thread: a prefix of several chunks that ends mid-block resumes to the
/// right digest, and a prefix whose bytes changed on disk is caught.
#[tokio::test]
async fn resume_rehashes_a_long_prefix_and_catches_a_changed_one() {
    const CUT: usize = (2 << 20) + 129;
    let data = image((3 << 20) + 77);
    let served = data.clone();
    let server = Server::http(move |req, index| {
        if index.is_multiple_of(2) {
            Reply::ok(served.clone())
                .header("ETag", "\"v1\"")
                .fault(Fault::CloseAfter(CUT as u64))
        } else {
            ranged(&served, "\"v1\"", req)
        }
    })
    .await;
    let scratch = Scratch::new();
    let transfer = transfer();
    let url = server.url("/img");
    let err = download(&transfer, &url, &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "truncated");
    assert_eq!(file_len(&scratch.partial()), CUT as u64);
    let done = download(&transfer, &url, &scratch.partial(), &data)
        .await
        .unwrap();
    assert_eq!(done.resumed_from, CUT as u64);
    assert_eq!(done.sha512, sha512(&data));
    assert_eq!(std::fs::read(scratch.partial()).unwrap(), data);

    // Same again, but a byte of the kept prefix (in its second chunk) is
    // changed on disk before the resume: the digest proves it wrong.
    std::fs::remove_file(scratch.partial()).unwrap();
    let err = download(&transfer, &url, &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "truncated");
    let mut kept = std::fs::read(scratch.partial()).unwrap();
    kept[(1 << 20) + 5] ^= 0x01;
    std::fs::write(scratch.partial(), &kept).unwrap();
    let err = download(&transfer, &url, &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "checksum-mismatch", "{err}");
    assert!(!sidecar_path(&scratch.partial()).exists());
    assert_eq!(server.requests()[3].header("range"), Some("bytes=2097281-"));
}

#[tokio::test]
async fn server_without_range_support_restarts_from_zero() {
    let data = image(200_000);
    let served = data.clone();
    let server = Server::http(move |_, index| {
        let reply = Reply::ok(served.clone()).header("ETag", "\"same\"");
        if index == 0 {
            reply.fault(Fault::CloseAfter(80_000))
        } else {
            reply // ignores Range
        }
    })
    .await;
    let scratch = Scratch::new();
    let transfer = transfer();
    let url = server.url("/img");
    let _ = download(&transfer, &url, &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert_eq!(file_len(&scratch.partial()), 80_000);
    let done = download(&transfer, &url, &scratch.partial(), &data)
        .await
        .unwrap();
    assert_eq!(done.resumed_from, 0);
    assert_eq!(std::fs::read(scratch.partial()).unwrap(), data);
    assert_eq!(server.requests()[1].header("range"), Some("bytes=80000-"));
}

#[tokio::test]
async fn changed_file_restarts_and_416_restarts_once() {
    let data = image(100_000);
    let served = data.clone();
    // Attempt 1 is cut; attempt 2's If-Range ("v1") no longer matches
    // ("v2"), so the server sends everything.
    let server = Server::http(move |req, index| match index {
        0 => Reply::ok(served.clone())
            .header("ETag", "\"v1\"")
            .fault(Fault::CloseAfter(30_000)),
        _ if req.header("if-range") == Some("\"v2\"") => ranged(&served, "\"v2\"", req),
        _ => Reply::ok(served.clone()).header("ETag", "\"v2\""),
    })
    .await;
    let scratch = Scratch::new();
    let transfer = transfer();
    let _ = download(&transfer, &server.url("/a"), &scratch.partial(), &data).await;
    let done = download(&transfer, &server.url("/a"), &scratch.partial(), &data)
        .await
        .unwrap();
    assert_eq!(done.resumed_from, 0);
    assert_eq!(server.requests()[1].header("if-range"), Some("\"v1\""));

    // A server that answers 416 to the resume gets one clean restart.
    let served = data.clone();
    let server = Server::http(move |req, index| match index {
        0 => Reply::ok(served.clone()).fault(Fault::CloseAfter(30_000)),
        _ if req.header("range").is_some() => {
            Reply::status(416).header("Content-Range", "bytes */100000")
        }
        _ => Reply::ok(served.clone()),
    })
    .await;
    let scratch = Scratch::new();
    let _ = download(&transfer, &server.url("/b"), &scratch.partial(), &data).await;
    let done = download(&transfer, &server.url("/b"), &scratch.partial(), &data)
        .await
        .unwrap();
    assert_eq!(done.resumed_from, 0);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[2].header("range"), None);
}

#[tokio::test]
async fn complete_partial_is_verified_without_a_request() {
    let data = image(40_000);
    let served = data.clone();
    let server = Server::http(move |_, _| Reply::ok(served.clone())).await;
    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.partial().parent().unwrap()).unwrap();
    std::fs::write(scratch.partial(), &data).unwrap();
    let done = download(&transfer(), &server.url("/img"), &scratch.partial(), &data)
        .await
        .unwrap();
    assert_eq!(done.resumed_from, data.len() as u64);
    assert!(server.requests().is_empty());

    // A full-size partial with wrong bytes is downloaded again.
    let mut wrong = data.clone();
    wrong[0] ^= 0xff;
    std::fs::write(scratch.partial(), &wrong).unwrap();
    let done = download(&transfer(), &server.url("/img"), &scratch.partial(), &data)
        .await
        .unwrap();
    assert_eq!(done.resumed_from, 0);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(std::fs::read(scratch.partial()).unwrap(), data);
}

#[tokio::test]
async fn concurrent_downloads_are_bounded() {
    let data = image(10_000);
    let served = data.clone();
    let server =
        Server::http(move |_, _| Reply::ok(served.clone()).delay(Duration::from_millis(500))).await;
    let transfer = Transfer::new(&TransferConfig {
        max_concurrent_downloads: 2,
        ..config()
    })
    .unwrap();
    assert_eq!(transfer.limiter().max(), 2);
    let scratch = Scratch::new();
    let sha = sha512(&data);
    let mut tasks = JoinSet::new();
    for i in 0..6 {
        let transfer = transfer.clone();
        let url = server.url(&format!("/img{i}"));
        let partial = scratch.dir.path().join(format!("p{i}"));
        tasks.spawn(async move {
            transfer
                .download(&url, &partial, 10_000, &sha, no_progress)
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(server.requests().len(), 6);
    assert_eq!(server.stats.max_active.load(Ordering::SeqCst), 2);
    assert_eq!(transfer.limiter().available(), 2);
}

// ---------------------------------------------------------------------------
// Redirects

#[tokio::test]
async fn redirects_are_followed_but_bounded() {
    let server = Server::http(|req, _| match req.path.as_str() {
        "/a" => Reply::redirect("/b"),
        "/b" => Reply::ok(b"list".to_vec()),
        _ => Reply::redirect("/loop"),
    })
    .await;
    let transfer = Transfer::new(&TransferConfig {
        max_redirects: 3,
        ..config()
    })
    .unwrap();
    let fetched = transfer
        .fetch_list(&server.url("/a"), 100, None)
        .await
        .unwrap();
    let ListFetch::Fetched {
        bytes, final_url, ..
    } = fetched
    else {
        panic!("not fetched");
    };
    assert_eq!(bytes, b"list");
    assert_eq!(final_url, server.url("/b"));

    let err = transfer
        .fetch_list(&server.url("/loop"), 100, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "too-many-redirects", "{err}");
    // The original request plus three redirects followed.
    assert_eq!(server.requests().len(), 2 + 4);
}

#[tokio::test]
async fn https_to_http_redirect_is_refused() {
    let pki = Pki::new("redirect");
    let plain = Server::http(|_, _| Reply::ok(b"downgraded".to_vec())).await;
    let target = plain.url("/list");
    let secure = Server::https(&pki, move |_, _| Reply::redirect(&target)).await;
    let transfer = Transfer::new(&TransferConfig {
        extra_ca_pem: pki.ca_pem.clone(),
        ..config()
    })
    .unwrap();
    let err = transfer
        .fetch_list(&secure.url("/list"), 100, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "redirect-refused", "{err}");
    assert_eq!(secure.requests().len(), 1);
    assert!(plain.requests().is_empty());
}

// ---------------------------------------------------------------------------
// TLS

#[tokio::test]
async fn https_with_the_custom_ca_only() {
    let pki = Pki::new("good");
    let data = image(70_000);
    let served = data.clone();
    let server = Server::https(&pki, move |_, _| Reply::ok(served.clone())).await;
    let url = server.url("/img");

    // Added to the system roots.
    let with_ca = Transfer::new(&TransferConfig {
        extra_ca_pem: pki.ca_pem.clone(),
        ..config()
    })
    .unwrap();
    let scratch = Scratch::new();
    download(&with_ca, &url, &scratch.partial(), &data)
        .await
        .unwrap();
    // Replacing them.
    let only_ca = Transfer::new(&TransferConfig {
        extra_ca_pem: pki.ca_pem.clone(),
        replace_system_roots: true,
        ..config()
    })
    .unwrap();
    let fetched = only_ca.fetch_list(&url, 1 << 20, None).await.unwrap();
    assert!(matches!(fetched, ListFetch::Fetched { bytes, .. } if bytes == data));

    // System roots only.
    let err = transfer()
        .fetch_list(&url, 1 << 20, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "tls", "{err}");
    // Another CA instead of the system roots.
    let other = Pki::new("other");
    let wrong_ca = Transfer::new(&TransferConfig {
        extra_ca_pem: other.ca_pem.clone(),
        replace_system_roots: true,
        ..config()
    })
    .unwrap();
    let scratch = Scratch::new();
    let err = download(&wrong_ca, &url, &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "tls", "{err}");
    assert!(!err.is_transient());
}

// ---------------------------------------------------------------------------
// Lists: auth, conditional GET, size cap

#[tokio::test]
async fn auth_headers_are_sent() {
    let server = Server::http(|_, _| Reply::ok(b"x".to_vec())).await;
    let url = server.url("/list");
    let base = transfer();
    let cases = [
        (
            Auth::Basic {
                user: "user".into(),
                password: "pass".into(),
            },
            "Basic dXNlcjpwYXNz",
        ),
        (
            Auth::Bearer {
                token: "tok".into(),
            },
            "Bearer tok",
        ),
        (Auth::appdb_token("tok"), "Basic dG9rOngtb2F1dGgtYmFzaWM="),
    ];
    for (index, (auth, _)) in cases.iter().enumerate() {
        base.with_credentials(auth.clone(), Some(&url))
            .fetch_list(&url, 10, None)
            .await
            .unwrap();
        let request = &server.requests()[index];
        assert_eq!(request.header("authorization"), Some(cases[index].1));
    }
    base.fetch_list(&url, 10, None).await.unwrap();
    assert_eq!(server.requests()[3].header("authorization"), None);

    // Credentials in the URL are used, and never shown.
    let with_credentials = url.replace("http://", "http://alice:s3cret@");
    base.fetch_list(&with_credentials, 10, None).await.unwrap();
    assert_eq!(
        server.requests()[4].header("authorization"),
        Some("Basic YWxpY2U6czNjcmV0")
    );
    let err = base
        .fetch_list(&with_credentials, 0, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "too-large");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(!err.to_string().contains("alice"), "{err}");
}

// ---------------------------------------------------------------------------
// Credential scope: the list's credentials stay with the list's origin

/// Answers everything with a small body.
fn any_ok(_: &Request, _: usize) -> Reply {
    Reply::ok(b"x".to_vec())
}

/// The `Authorization` header of every request a server saw.
fn authorizations(server: &Server) -> Vec<Option<String>> {
    server
        .requests()
        .iter()
        .map(|r| r.header("authorization").map(str::to_string))
        .collect()
}

/// Fetches `url` as a list (any answer will do: only the request counts).
async fn touch(transfer: &Transfer, url: &str) {
    let _ = transfer.fetch_list(url, 100, None).await;
}

#[tokio::test]
async fn credentials_reach_the_list_origin_and_no_other() {
    let list_host = Server::http(any_ok).await;
    let other_port = Server::http(any_ok).await;
    let other_host = Server::http_at("127.0.0.2:0", any_ok).await;
    let list_url = list_host.url("/vo/image.list");
    for (auth, header) in [
        (
            Auth::Basic {
                user: "user".into(),
                password: "pass".into(),
            },
            "Basic dXNlcjpwYXNz",
        ),
        (
            Auth::Bearer {
                token: "tok".into(),
            },
            "Bearer tok",
        ),
    ] {
        let transfer = Transfer::new(&TransferConfig {
            auth,
            credential_scope: Some(list_url.clone()),
            ..config()
        })
        .unwrap();
        // The list, and an image next to it (absolute or relative URL).
        touch(&transfer, &list_url).await;
        let data = image(1000);
        let served = data.clone();
        let images = Server::http(move |_, _| Reply::ok(served.clone())).await;
        let scratch = Scratch::new();
        // (The list server answers "x", a size mismatch: only the request
        // matters here.)
        let _ = download(
            &transfer,
            &list_host.url("/vo/a.img"),
            &scratch.partial(),
            &data,
        )
        .await;
        // Images elsewhere: another port, another host.
        download(&transfer, &images.url("/a.img"), &scratch.partial(), &data)
            .await
            .unwrap();
        touch(&transfer, &other_port.url("/b.img")).await;
        touch(&transfer, &other_host.url("/c.img")).await;
        let header = Some(header.to_string());
        assert_eq!(authorizations(&list_host), [header.clone(), header]);
        assert_eq!(authorizations(&images), [None]);
        list_host.stats.requests.lock().unwrap().clear();
    }
    assert_eq!(authorizations(&other_port), [None, None]);
    assert_eq!(authorizations(&other_host), [None, None]);
}

#[tokio::test]
async fn an_https_list_never_sends_credentials_over_plain_http() {
    // A plain http server on the very host and port of the https list URL
    // (nothing speaks TLS there: only the image request matters).
    let plain = Server::http(any_ok).await;
    let https_list = format!("https://{}/vo/image.list", plain.addr);
    let auth = Auth::Basic {
        user: "user".into(),
        password: "pass".into(),
    };
    let transfer = transfer().with_credentials(auth.clone(), Some(&https_list));
    touch(&transfer, &plain.url("/vo/a.img")).await;
    // A plain http list on that origin does send them there.
    let http_list = plain.url("/vo/image.list");
    let transfer = transfer.with_credentials(auth, Some(&http_list));
    touch(&transfer, &plain.url("/vo/a.img")).await;
    assert_eq!(
        authorizations(&plain),
        [None, Some("Basic dXNlcjpwYXNz".to_string())]
    );
}

#[tokio::test]
async fn list_url_userinfo_is_scoped_like_a_secret() {
    let list_host = Server::http(any_ok).await;
    let other = Server::http(any_ok).await;
    let list_url = list_host
        .url("/vo/image.list")
        .replace("http://", "http://alice:s3cret@");
    let transfer = transfer().with_credentials(Auth::None, Some(&list_url));
    let alice = Some("Basic YWxpY2U6czNjcmV0".to_string());
    touch(&transfer, &list_url).await;
    // Image URLs as the engine resolves them: relative ones keep the
    // list's user information, on the list's origin.
    let relative = vmlisub::subscription::select::resolve_image_url(&list_url, "a.img");
    assert!(relative.contains("alice:s3cret@"), "{relative}");
    touch(&transfer, &relative).await;
    // An absolute URL on the list's origin gets them from the scope.
    touch(&transfer, &list_host.url("/b.img")).await;
    // Absolute or scheme-relative URLs elsewhere get nothing.
    touch(&transfer, &other.url("/c.img")).await;
    let elsewhere = format!("//{}/d.img", other.addr);
    let resolved = vmlisub::subscription::select::resolve_image_url(&list_url, &elsewhere);
    assert!(!resolved.contains("s3cret"), "{resolved}");
    touch(&transfer, &resolved).await;
    assert_eq!(
        authorizations(&list_host),
        [alice.clone(), alice.clone(), alice]
    );
    assert_eq!(authorizations(&other), [None, None]);
}

#[tokio::test]
async fn without_a_scope_configured_credentials_go_nowhere() {
    let server = Server::http(any_ok).await;
    let transfer = transfer().with_credentials(
        Auth::Bearer {
            token: "tok".into(),
        },
        None,
    );
    touch(&transfer, &server.url("/list")).await;
    // A scope that is no http(s) origin scopes nothing either.
    let transfer = transfer.with_credentials(
        Auth::Bearer {
            token: "tok".into(),
        },
        Some("file:///etc/lists/x.list"),
    );
    touch(&transfer, &server.url("/list")).await;
    assert_eq!(authorizations(&server), [None, None]);
}

#[tokio::test]
async fn redirects_to_another_origin_drop_the_credentials() {
    let elsewhere = Server::http(any_ok).await;
    let target = elsewhere.url("/mirror/a.img");
    let list_host = Server::http(move |request, _| match request.path.as_str() {
        "/vo/moved.img" => Reply::redirect("/vo/here.img"),
        "/vo/away.img" => Reply::redirect(&target),
        _ => any_ok(request, 0),
    })
    .await;
    let transfer = transfer().with_credentials(
        Auth::Bearer {
            token: "tok".into(),
        },
        Some(&list_host.url("/vo/image.list")),
    );
    touch(&transfer, &list_host.url("/vo/moved.img")).await;
    touch(&transfer, &list_host.url("/vo/away.img")).await;
    let bearer = Some("Bearer tok".to_string());
    assert_eq!(
        authorizations(&list_host),
        [bearer.clone(), bearer.clone(), bearer]
    );
    assert_eq!(authorizations(&elsewhere), [None]);
}

// ---------------------------------------------------------------------------
// Redaction: no credential in errors or logs

/// Collects what `tracing` writes while it is alive (this thread only).
struct Logs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("vmlisub=trace")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn errors_and_logs_never_show_url_credentials() {
    let data = image(5000);
    let served = data.clone();
    let server = Server::http(move |request, _| {
        if request.path.starts_with("/moved") {
            Reply::redirect("/img?X-Amz-Signature=SIGNATURE2&part=1")
        } else if request.path.starts_with("/cut") {
            Reply::ok(served.clone())
                .header("ETag", "\"e\"")
                .fault(Fault::CloseAfter(100))
        } else if request.path.starts_with("/img") {
            Reply::ok(served.clone())
        } else {
            Reply::status(404)
        }
    })
    .await;
    let logs = Logs::capture();
    let with_secrets = |path: &str| {
        server
            .url(path)
            .replace("http://", "http://USERNAME:PASSWORD@")
    };
    let transfer = transfer();
    let err = transfer
        .fetch_list(&with_secrets("/list?token=TOKEN1&v=2"), 100, None)
        .await
        .unwrap_err();
    let mut shown = format!("{err} {err:?}");
    assert!(shown.contains("token=REDACTED&v=2"), "{shown}");
    let err = transfer
        .fetch_list(&with_secrets("/list?sig=SIG1"), 100, None)
        .await
        .unwrap_err();
    shown.push_str(&format!("{err}"));
    let err = transfer
        .fetch_list("https://USERNAME:PASSWORD@[::1/x?key=KEY1", 100, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "invalid-url");
    shown.push_str(&format!("{err}"));
    let scratch = Scratch::new();
    let done = download(
        &transfer,
        &with_secrets("/moved?access_token=TOKEN2"),
        &scratch.partial(),
        &data,
    )
    .await
    .unwrap();
    assert_eq!(done.size, 5000);
    // The sidecar of an interrupted download holds the URL too.
    let scratch = Scratch::new();
    let err = download(
        &transfer,
        &with_secrets("/cut?X-Amz-Credential=CREDENTIAL1"),
        &scratch.partial(),
        &data,
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "truncated", "{err}");
    shown.push_str(&format!("{err}"));
    let sidecar = std::fs::read_to_string(sidecar_path(&scratch.partial())).unwrap();
    assert!(sidecar.contains("X-Amz-Credential=REDACTED"), "{sidecar}");
    let logs = logs.text();
    assert!(logs.contains("REDACTED"), "{logs}");
    for secret in [
        "USERNAME",
        "PASSWORD",
        "TOKEN1",
        "SIG1",
        "KEY1",
        "TOKEN2",
        "SIGNATURE2",
        "CREDENTIAL1",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
        assert!(!logs.contains(secret), "{secret} in {logs}");
        assert!(!sidecar.contains(secret), "{secret} in {sidecar}");
    }
}

#[tokio::test]
async fn conditional_get_returns_not_modified() {
    const ETAG: &str = "\"list-7\"";
    const MODIFIED: &str = "Wed, 02 Apr 2025 08:00:00 GMT";
    let server = Server::http(|req, _| {
        if req.header("if-none-match") == Some(ETAG) {
            Reply::status(304)
        } else {
            Reply::ok(b"signed list".to_vec())
                .header("ETag", ETAG)
                .header("Last-Modified", MODIFIED)
        }
    })
    .await;
    let transfer = transfer();
    let url = server.url("/image.list");
    let ListFetch::Fetched {
        bytes, validators, ..
    } = transfer.fetch_list(&url, 1000, None).await.unwrap()
    else {
        panic!("expected a body");
    };
    assert_eq!(bytes, b"signed list");
    assert_eq!(
        validators,
        Validators {
            etag: Some(ETAG.to_string()),
            last_modified: Some(MODIFIED.to_string()),
        }
    );
    let again = transfer
        .fetch_list(&url, 1000, Some(&validators))
        .await
        .unwrap();
    assert_eq!(again, ListFetch::NotModified);
    let requests = server.requests();
    assert_eq!(requests[0].header("if-none-match"), None);
    assert_eq!(requests[1].header("if-none-match"), Some(ETAG));
    assert_eq!(requests[1].header("if-modified-since"), Some(MODIFIED));
}

#[tokio::test]
async fn list_size_cap_is_enforced() {
    let server = Server::http(|req, _| match req.path.as_str() {
        "/declared" => Reply::zeros(2000),
        "/chunked" => Reply::zeros(2000).no_length(),
        "/lying" => Reply::zeros(2000).length(500),
        _ => Reply::zeros(1000),
    })
    .await;
    let transfer = transfer();
    let err = transfer
        .fetch_list(&server.url("/declared"), 1000, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransferError::TooLarge {
                limit: 1000,
                seen: 2000,
                ..
            }
        ),
        "{err:?}"
    );
    let err = transfer
        .fetch_list(&server.url("/chunked"), 1000, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "too-large", "{err}");
    // A Content-Length shorter than the body: hyper stops at the length.
    let ListFetch::Fetched { bytes, .. } = transfer
        .fetch_list(&server.url("/lying"), 1000, None)
        .await
        .unwrap()
    else {
        panic!("expected a body");
    };
    assert_eq!(bytes.len(), 500);
    let ListFetch::Fetched { bytes, .. } = transfer
        .fetch_list(&server.url("/exact"), 1000, None)
        .await
        .unwrap()
    else {
        panic!("expected a body");
    };
    assert_eq!(bytes.len(), 1000);
}

// ---------------------------------------------------------------------------
// Schemes and connection failures

#[tokio::test]
async fn file_urls_only_when_allowed() {
    let scratch = Scratch::new();
    let data = image(30_000);
    let source = scratch.dir.path().join("source.img");
    std::fs::write(&source, &data).unwrap();
    let url = format!("file://{}", source.display());

    let err = transfer()
        .fetch_list(&url, 1 << 20, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "scheme-refused", "{err}");
    let err = download(&transfer(), &url, &scratch.partial(), &data)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "scheme-refused", "{err}");
    let err = transfer()
        .fetch_list("ftp://127.0.0.1/x", 10, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "scheme-refused", "{err}");

    let allowed = Transfer::new(&TransferConfig {
        allow_file_scheme: true,
        ..config()
    })
    .unwrap();
    let ListFetch::Fetched { bytes, .. } = allowed.fetch_list(&url, 1 << 20, None).await.unwrap()
    else {
        panic!("expected a body");
    };
    assert_eq!(bytes, data);
    let err = allowed.fetch_list(&url, 1000, None).await.unwrap_err();
    assert_eq!(err.reason(), "too-large", "{err}");
    let done = download(&allowed, &url, &scratch.partial(), &data)
        .await
        .unwrap();
    assert_eq!(done.sha512, sha512(&data));
    assert_eq!(std::fs::read(scratch.partial()).unwrap(), data);
    let err = allowed
        .download(&url, &scratch.partial(), 1000, &sha512(&data), no_progress)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "too-large", "{err}");
}

#[tokio::test]
async fn explicit_proxy_and_no_proxy_list() {
    // The test server plays an HTTP forward proxy: it receives the
    // absolute-form request for a host that does not resolve.
    let proxy = Server::http(|_, _| Reply::ok(b"via proxy".to_vec())).await;
    let origin = Server::http(|_, _| Reply::ok(b"direct".to_vec())).await;
    let proxy_url = format!("http://pxuser:pxpass@{}", proxy.addr);
    let config = TransferConfig {
        proxy: ProxyConfig::Explicit {
            url: proxy_url,
            no_proxy: vec!["127.0.0.1".to_string()],
        },
        ..config()
    };
    assert!(!format!("{config:?}").contains("pxpass"));
    let transfer = Transfer::new(&config).unwrap();
    let ListFetch::Fetched { bytes, .. } = transfer
        .fetch_list("http://images.vmlisub.invalid/image.list", 100, None)
        .await
        .unwrap()
    else {
        panic!("expected a body");
    };
    assert_eq!(bytes, b"via proxy");
    let request = &proxy.requests()[0];
    assert_eq!(request.path, "http://images.vmlisub.invalid/image.list");
    assert_eq!(
        request.header("proxy-authorization"),
        Some("Basic cHh1c2VyOnB4cGFzcw==")
    );
    // 127.0.0.1 is in the no-proxy list.
    let ListFetch::Fetched { bytes, .. } = transfer
        .fetch_list(&origin.url("/image.list"), 100, None)
        .await
        .unwrap()
    else {
        panic!("expected a body");
    };
    assert_eq!(bytes, b"direct");
    assert_eq!(proxy.requests().len(), 1);
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    // A port held bound but never listening: connecting is refused (RST),
    // and no parallel test's listener can be handed it meanwhile.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = reserved.local_addr().unwrap().port();
    let err = transfer()
        .fetch_list(&format!("http://127.0.0.1:{port}/list"), 10, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "connect", "{err}");
    assert!(err.is_transient());
}

/// Peak memory must not grow with the image: run in release, e.g.
/// `cargo test --release -p vmlisub --test transfer -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "measurement: 1 GiB through loopback, run in release"]
async fn large_download_memory_is_bounded() {
    const SIZE: u64 = 1 << 30;
    fn peak_rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
    let mut hasher = Sha512::new();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(SIZE >> 20) {
        hasher.update(&zeros);
    }
    let expected: [u8; 64] = hasher.finalize().into();
    drop(zeros);
    let server = Server::http(|_, _| Reply::zeros(SIZE)).await;
    let scratch = Scratch::new();
    let before = peak_rss_kib();
    let start = Instant::now();
    let done = transfer()
        .download(
            &server.url("/big"),
            &scratch.partial(),
            SIZE,
            &expected,
            no_progress,
        )
        .await
        .unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let after = peak_rss_kib();
    eprintln!(
        "1 GiB in {seconds:.2} s ({:.0} MiB/s); peak RSS {before} KiB -> {after} KiB",
        1024.0 / seconds
    );
    assert_eq!(done.size, SIZE);
    assert!(
        after - before < 32 * 1024,
        "peak RSS grew by {} KiB",
        after - before
    );
}

/// `imageSecretRef`: a mirror on another origin gets the image credentials
/// over https; plain http elsewhere gets nothing, and the list's origin
/// still gets the list's own credentials.
#[tokio::test]
async fn image_credentials_go_to_other_origins_over_https_only() {
    let pki = Pki::new("mirror");
    let list_host = Server::http(any_ok).await;
    let mirror = Server::https(&pki, any_ok).await;
    let plain_mirror = Server::http(any_ok).await;
    let list_url = list_host.url("/vo/image.list");
    let transfer = Transfer::new(&TransferConfig {
        auth: Auth::Bearer {
            token: "list-token".into(),
        },
        image_auth: Auth::Basic {
            user: "mirror".into(),
            password: "pw".into(),
        },
        credential_scope: Some(list_url.clone()),
        extra_ca_pem: pki.ca_pem.clone(),
        ..config()
    })
    .unwrap();
    touch(&transfer, &list_url).await;
    touch(&transfer, &mirror.url("/a.img")).await;
    touch(&transfer, &plain_mirror.url("/b.img")).await;
    assert_eq!(
        authorizations(&list_host),
        [Some("Bearer list-token".into())]
    );
    // base64("mirror:pw")
    assert_eq!(authorizations(&mirror), [Some("Basic bWlycm9yOnB3".into())]);
    assert_eq!(authorizations(&plain_mirror), [None]);
}

// ---------------------------------------------------------------------------
// The streaming hash, differentially

/// Bytes that look random (xorshift64), so no block repeats.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// Lengths around SHA-512's 128-byte block and 112-byte padding limit,
/// and around the 1 MiB chunks the file re-hash reads.
const AWKWARD_LENGTHS: &[usize] = &[
    0,
    1,
    63,
    64,
    111,
    112,
    113,
    127,
    128,
    129,
    239,
    240,
    241,
    255,
    256,
    257,
    1_000,
    8_191,
    8_192,
    65_537,
    (1 << 20) - 1,
    1 << 20,
    (1 << 20) + 1,
    (2 << 20) + 113,
];

/// Piece sizes, used in turn, to cut an input into updates: single bytes,
/// the block length and its neighbours, pieces that straddle blocks.
const AWKWARD_PIECES: &[&[usize]] = &[
    &[1],
    &[127],
    &[128],
    &[129],
    &[111, 1, 16],
    &[7, 121, 255, 1, 0, 3],
    &[4_095, 1, 4_097],
    &[65_535, 129],
    &[(1 << 20) + 1],
];

fn stream_digest(input: &[u8], pieces: &[usize]) -> [u8; 64] {
    let mut hasher = StreamSha512::new();
    let mut rest = input;
    for &piece in pieces.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(piece.min(rest.len()));
        hasher.update(head);
        rest = tail;
    }
    hasher.finish()
}

/// The downloader's hash (ring) against two independent implementations:
/// sha2 (portable Rust, the whole input at once) and the `openssl dgst
/// -sha512` CLI on the same bytes in a file, for every awkward length cut
/// in every awkward way; and a state cloned mid-stream (as the resume path
/// does) finishes both ways.
#[test]
fn streaming_sha512_agrees_with_sha2_and_openssl() {
    let data = noise(*AWKWARD_LENGTHS.iter().max().unwrap());
    let dir = TempDir::new().unwrap();
    let mut files = Vec::new();
    for &len in AWKWARD_LENGTHS {
        let path = dir.path().join(format!("in-{len}"));
        std::fs::write(&path, &data[..len]).unwrap();
        files.push(path);
    }
    let output = Command::new("openssl")
        .args(["dgst", "-sha512", "-r"])
        .args(&files)
        .output()
        .expect("openssl CLI");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let openssl: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(openssl.len(), AWKWARD_LENGTHS.len());

    let hex = |digest: &[u8; 64]| {
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    for (&len, openssl) in AWKWARD_LENGTHS.iter().zip(&openssl) {
        let input = &data[..len];
        let sha2: [u8; 64] = Sha512::digest(input).into();
        assert_eq!(
            &hex(&sha2),
            openssl,
            "sha2 and openssl differ at {len} bytes"
        );
        assert_eq!(StreamSha512::digest(input), sha2, "{len} bytes at once");
        for pieces in AWKWARD_PIECES {
            assert_eq!(
                stream_digest(input, pieces),
                sha2,
                "{len} bytes in pieces of {pieces:?}"
            );
        }
        let mut first = StreamSha512::new();
        first.update(&input[..len / 3]);
        let mut fork = first.clone();
        first.update(&input[len / 3..]);
        fork.update(&input[len / 3..]);
        assert_eq!(first.finish(), sha2, "{len} bytes, original after a clone");
        assert_eq!(fork.finish(), sha2, "{len} bytes, clone");
    }
}

/// Yields its bytes in short reads of changing sizes, with an
/// `Interrupted` error now and then, as a pipe or a signal can.
struct Stuttering<'a> {
    data: &'a [u8],
    reads: usize,
}

impl std::io::Read for Stuttering<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        const SIZES: &[usize] = &[1, 127, 129, 4_096, 111, 65_537, 3];
        self.reads += 1;
        if self.reads.is_multiple_of(5) {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = SIZES[self.reads % SIZES.len()]
            .min(buf.len())
            .min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The store's file hash (promotion re-hash, integrity checks) and the
/// bounded read the resume path uses, against sha2, through short and
/// interrupted reads.
#[test]
fn file_rehash_agrees_with_sha2_through_short_reads() {
    let data = noise((3 << 20) + 5);
    for &len in AWKWARD_LENGTHS {
        let input = &data[..len];
        let (digest, size) = vmlisub::store::sha512_reader(Stuttering {
            data: input,
            reads: 0,
        })
        .unwrap();
        let sha2: [u8; 64] = Sha512::digest(input).into();
        assert_eq!(size, len as u64);
        assert_eq!(
            digest,
            vmlisub::imagelist::Sha512Hex::from_digest(&sha2),
            "{len} bytes"
        );
    }
    // A limit stops mid-chunk, whatever the reads.
    for limit in [0u64, 129, (1 << 20) + 1, (3 << 20) + 5, u64::MAX] {
        let mut hasher = StreamSha512::new();
        let read = hasher
            .update_from_reader(
                Stuttering {
                    data: &data,
                    reads: 0,
                },
                limit,
            )
            .unwrap();
        let expected = limit.min(data.len() as u64);
        assert_eq!(read, expected);
        let sha2: [u8; 64] = Sha512::digest(&data[..expected as usize]).into();
        assert_eq!(hasher.finish(), sha2, "limit {limit}");
    }
}

/// The single-core speed of the three SHA-512s, per CPU second (the
/// figures in docs/benchmarks.md): ring (the downloader's), sha2 and
/// OpenSSL's (`openssl speed`, which also counts CPU time). Run in release:
/// `cargo test --release -p vmlisub --test transfer -- --ignored
/// sha512_speed --nocapture`.
#[test]
#[ignore = "measurement: hashes 7 GiB, run in release"]
fn sha512_speed_per_cpu_second() {
    fn thread_cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        stat.split_whitespace()
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            / 1e9
    }
    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    const MIB: usize = 256;
    const ROUNDS: usize = 9;
    let buffer = noise(256 * 1024);
    let (mut ring, mut sha2) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = thread_cpu_seconds();
        let mut hasher = StreamSha512::new();
        for _ in 0..MIB * 4 {
            hasher.update(&buffer);
        }
        let a = hasher.finish();
        ring.push(MIB as f64 / (thread_cpu_seconds() - start));
        let start = thread_cpu_seconds();
        let mut hasher = Sha512::new();
        for _ in 0..MIB * 4 {
            hasher.update(&buffer);
        }
        let b: [u8; 64] = hasher.finalize().into();
        sha2.push(MIB as f64 / (thread_cpu_seconds() - start));
        assert_eq!(a, b);
    }
    let output = Command::new("openssl")
        .args([
            "speed", "-bytes", "262144", "-seconds", "3", "-evp", "sha512",
        ])
        .output()
        .expect("openssl CLI");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let openssl = stdout
        .lines()
        .last()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|v| v.trim_end_matches('k').parse::<f64>().ok())
        .map_or(0.0, |kbytes| kbytes * 1000.0 / 1_048_576.0);
    eprintln!(
        "SHA-512, MiB per CPU second (median of {ROUNDS} x {MIB} MiB): ring {:.0}, sha2 {:.0}; openssl speed {openssl:.0}",
        median(ring),
        median(sha2)
    );
}
