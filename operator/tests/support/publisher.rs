//! A loopback web server for tests: a few lines of `std::net` that serve
//! documents by path, with a strong ETag of their bytes, answer
//! `If-None-Match` with 304 like any web server, and record every request.
//! It stops accepting after [`SERVER_LIFETIME`], whatever the test does.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::Digest as _;

/// The server stops accepting after this, whatever happens to the test
/// (a hung test's thread ends). Ten minutes: far beyond any test's use on
/// a loaded machine (Glance's web-downloads come over four syncs).
pub const SERVER_LIFETIME: Duration = Duration::from_secs(600);

/// The path [`Publisher::publish`] serves.
pub const LIST_PATH: &str = "/image.list";

/// One request as the publisher saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub if_none_match: Option<String>,
    pub status: u16,
}

struct Shared {
    documents: Mutex<HashMap<String, Vec<u8>>>,
    seen: Mutex<Vec<Seen>>,
    stop: AtomicBool,
}

/// Serves published documents on 127.0.0.1; unknown paths are 404.
pub struct Publisher {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// Accepts connections on `listener` (non-blocking) until `stopped` says
/// so or `lifetime` has passed, serving each on its own detached thread
/// (a connection ends with its client or its socket timeouts).
pub fn spawn_accept<S: Send + Sync + 'static>(
    listener: TcpListener,
    state: Arc<S>,
    lifetime: Duration,
    stopped: fn(&S) -> bool,
    serve: fn(TcpStream, &S),
) -> JoinHandle<()> {
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let until = Instant::now() + lifetime;
        while !stopped(&state) && Instant::now() < until {
            match listener.accept() {
                Ok((stream, _)) => {
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || serve(stream, &state));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => break,
            }
        }
    })
}

/// The strong ETag the publisher gives `bytes`.
pub fn etag_of(bytes: &[u8]) -> String {
    let digest = sha2::Sha512::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

impl Publisher {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            documents: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept = spawn_accept(
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

    /// The URL of the list ([`LIST_PATH`]).
    pub fn url(&self) -> String {
        self.url_of(LIST_PATH)
    }

    /// The URL of `path` (starting with `/`).
    pub fn url_of(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Serves `bytes` as the list.
    pub fn publish(&self, bytes: &[u8]) {
        self.publish_at(LIST_PATH, bytes);
    }

    /// Serves `bytes` at `path`.
    pub fn publish_at(&self, path: &str, bytes: &[u8]) {
        self.shared
            .documents
            .lock()
            .unwrap()
            .insert(path.to_string(), bytes.to_vec());
    }

    /// Stops serving `path` (404 from now on).
    pub fn withdraw(&self, path: &str) {
        self.shared.documents.lock().unwrap().remove(path);
    }

    /// The requests seen since the last call.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.shared.seen.lock().unwrap())
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// One request per connection (`Connection: close`).
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut if_none_match = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("if-none-match")
        {
            if_none_match = Some(value.trim().to_string());
        }
    }
    let document = shared.documents.lock().unwrap().get(&path).cloned();
    let (status, reason, body, etag) = match &document {
        None => (404, "Not Found", b"not found".to_vec(), String::new()),
        Some(bytes) => {
            let etag = etag_of(bytes);
            if if_none_match.as_deref() == Some(etag.as_str()) {
                (304, "Not Modified", Vec::new(), etag)
            } else {
                (200, "OK", bytes.clone(), etag)
            }
        }
    };
    shared.seen.lock().unwrap().push(Seen {
        path,
        if_none_match,
        status,
    });
    let mut stream = stream;
    let etag_header = if etag.is_empty() {
        String::new()
    } else {
        format!("ETag: {etag}\r\n")
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n{etag_header}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = reader.read(&mut [0u8; 64]);
}
