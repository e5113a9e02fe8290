//! A loopback web server for the command-line tests, over HTTP or HTTPS
//! (rustls, with a transport CA generated at test time): documents by
//! path, an optional required `Authorization` header, and hostile routes
//! (an endless body without Content-Length, a lying Content-Length). It
//! counts the body bytes it sends, so that a test can prove a client
//! stopped reading. Accepting stops after [`SERVER_LIFETIME`].

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::publisher::{SERVER_LIFETIME, spawn_accept};

/// The most an endless route sends before giving up on its own.
pub const ENDLESS_LIMIT: u64 = 1 << 30;

/// What a path serves.
#[derive(Clone)]
enum Route {
    Document(Vec<u8>),
    /// Zeros without Content-Length until the client goes away.
    Endless,
    /// A Content-Length of this many bytes, then a few bytes only.
    ClaimsLength(u64),
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub status: u16,
}

struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    authorization: Mutex<Option<String>>,
    seen: Mutex<Vec<Seen>>,
    body_bytes: AtomicU64,
    stop: AtomicBool,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Serves routes on 127.0.0.1 (404 for unknown paths).
pub struct Web {
    port: u16,
    scheme: &'static str,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Web {
    /// A plain HTTP server.
    pub fn http() -> Self {
        Self::start(None)
    }

    /// An HTTPS server with `pki`'s certificate for 127.0.0.1.
    pub fn https(pki: &TransportPki) -> Self {
        Self::start(Some(pki.server_config()))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            authorization: Mutex::new(None),
            seen: Mutex::new(Vec::new()),
            body_bytes: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            tls,
        });
        let accept = spawn_accept(
            listener,
            Arc::clone(&shared),
            SERVER_LIFETIME,
            |shared| shared.stop.load(Ordering::SeqCst),
            serve,
        );
        Self {
            port,
            scheme,
            shared,
            accept: Some(accept),
        }
    }

    /// The URL of `path` (starting with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port)
    }

    fn route(&self, path: &str, route: Route) {
        self.shared
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), route);
    }

    /// Serves `bytes` at `path`.
    pub fn serve(&self, path: &str, bytes: &[u8]) {
        self.route(path, Route::Document(bytes.to_vec()));
    }

    /// Serves zeros at `path`, without Content-Length, until the client
    /// stops reading (or [`ENDLESS_LIMIT`]).
    pub fn serve_endless(&self, path: &str) {
        self.route(path, Route::Endless);
    }

    /// Announces `length` bytes at `path` and sends a handful.
    pub fn serve_claiming(&self, path: &str, length: u64) {
        self.route(path, Route::ClaimsLength(length));
    }

    /// From now on, requests without exactly this `Authorization` header
    /// get 401.
    pub fn require_authorization(&self, value: &str) {
        *self.shared.authorization.lock().unwrap() = Some(value.to_string());
    }

    /// Body bytes sent so far, over all requests.
    pub fn body_bytes_sent(&self) -> u64 {
        self.shared.body_bytes.load(Ordering::SeqCst)
    }

    /// The requests seen since the last call.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.shared.seen.lock().unwrap())
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    match &shared.tls {
        None => {
            let mut stream = stream;
            respond(&mut stream, shared);
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
        Some(config) => {
            let Ok(connection) = rustls::ServerConnection::new(Arc::clone(config)) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(connection, stream);
            respond(&mut tls, shared);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}

/// One request per connection (`Connection: close`).
fn respond<S: Read + Write>(stream: &mut S, shared: &Shared) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or_default()
        .to_string();
    let authorization = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.trim().to_string());
    let required = shared.authorization.lock().unwrap().clone();
    let route = shared.routes.lock().unwrap().get(&path).cloned();
    let (status, route) = match (required, route) {
        (Some(required), _) if authorization.as_deref() != Some(required.as_str()) => (401, None),
        (_, None) => (404, None),
        (_, Some(route)) => (200, Some(route)),
    };
    shared.seen.lock().unwrap().push(Seen {
        path,
        authorization,
        status,
    });
    let count = |n: usize| {
        shared.body_bytes.fetch_add(n as u64, Ordering::SeqCst);
    };
    match route {
        None => {
            let body = if status == 401 {
                &b"unauthorised"[..]
            } else {
                &b"not found"[..]
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} No\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
        Some(Route::Document(bytes)) => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            if stream.write_all(&bytes).is_ok() {
                count(bytes.len());
            }
        }
        Some(Route::ClaimsLength(length)) => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
            );
            if stream.write_all(b"MIME-Version: 1.0\r\n").is_ok() {
                count(19);
            }
        }
        Some(Route::Endless) => {
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let zeros = vec![0u8; 64 * 1024];
            let mut sent = 0u64;
            while sent < ENDLESS_LIMIT {
                if stream.write_all(&zeros).is_err() {
                    break;
                }
                sent += zeros.len() as u64;
                count(zeros.len());
            }
        }
    }
    let _ = stream.flush();
}

pub use super::transport_pki::TransportPki;
