//! The HTTP/1 serving loop shared by the artifact and the metrics servers,
//! with the limits that keep slow or idle clients from piling up:
//!
//! * a **connection cap**: at most `max_connections` connections are served
//!   at a time. The loop takes a slot before it accepts, so further clients
//!   wait in the kernel's listen backlog (and are accepted in order as slots
//!   free up) instead of costing a task, a socket and buffers each;
//! * a **header-read timeout**: a connection that has not sent a complete
//!   request head within `header_read_timeout` of the server starting to
//!   wait for one (after the accept, and again after every response on a
//!   kept-alive connection) is closed. A client trickling its headers byte
//!   by byte, or connecting and sending nothing, holds its slot no longer;
//! * an **idle timeout**: a connection on which no byte moved in either
//!   direction for `idle_timeout` is closed, e.g. a client that stops
//!   reading a response (the server's writes stall) or its request body;
//! * a bound on the request head (`MAX_HEADER_BYTES`, 431 beyond).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A response body: streamed from disk or in memory.
pub type Body = BoxBody<Bytes, io::Error>;

/// Largest request head (request line and headers) accepted; a bearer token
/// is bounded far below this (see [`super::access::MAX_TOKEN_BYTES`]).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// How long to wait before accepting again when the process is out of file
/// descriptors or memory (the condition clears as connections close).
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The limits of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time allowed for a complete request head.
    pub header_read_timeout: Duration,
    /// Time without any byte read or written after which a connection is
    /// closed.
    pub idle_timeout: Duration,
    /// Connections served at a time; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 128,
        }
    }
}

/// Answers one request; never fails (errors become status codes).
pub trait Handler: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        request: Request<hyper::body::Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send;
}

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A short `text/plain` response.
pub(crate) fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(format!("{message}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Serves `handler` on `listener` until the listener fails for good; each
/// connection runs on its own task within `limits`.
pub async fn serve<H: Handler>(
    listener: tokio::net::TcpListener,
    handler: Arc<H>,
    limits: Limits,
) -> io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        // The semaphore is never closed, so this only waits.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return Err(io::Error::other("connection slots closed"));
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) if per_connection(&err) => {
                tracing::debug!(error = %err, "accept: connection failed before it was accepted");
                continue;
            }
            Err(err) if exhausted(&err) => {
                tracing::warn!(error = %err, retry_in = ?ACCEPT_BACKOFF, "accept: out of resources");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
            Err(err) => return Err(err),
        };
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            connection(stream, peer, handler, limits).await;
            drop(slot);
        });
    }
}

/// Errors of one incoming connection, not of the listener.
fn per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or system is out of
/// descriptors or buffers.
fn exhausted(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(24 | 23 | 105 | 12))
}

async fn connection<H: Handler>(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    handler: Arc<H>,
    limits: Limits,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = hyper_util::rt::TokioIo::new(Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = hyper::service::service_fn(move |request| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, std::convert::Infallible>(handler.handle(request).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES);
    let served = builder.serve_connection(io, service);
    tokio::select! {
        result = served => {
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        }
        () = activity.idle_for(limits.idle_timeout) => {
            // Dropping the connection closes the socket.
            tracing::debug!(%peer, idle_timeout = ?limits.idle_timeout, "connection idle: closed");
        }
    }
}

/// When bytes last moved on a connection.
struct Activity {
    origin: Instant,
    /// Milliseconds since `origin`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            let quiet = self.now().saturating_sub(self.last.load(Ordering::Relaxed));
            if quiet >= idle_ms {
                return;
            }
            tokio::time::sleep(Duration::from_millis(idle_ms - quiet)).await;
        }
    }
}

/// A TCP stream that records when bytes move.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    //! Real loopback sockets against [`serve`]; the clients are plain
    //! blocking std sockets on their own threads. Bounds are generous: each
    //! assertion proves an event happens (a close, a response), never that
    //! it happens fast.

    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{Read as _, Write as _};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// Size of `/big`, far beyond what loopback socket buffers hold.
    const BIG: u64 = 256 << 20;
    static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

    struct TestHandler;

    impl Handler for TestHandler {
        async fn handle(
            self: Arc<Self>,
            request: Request<hyper::body::Incoming>,
        ) -> Response<Body> {
            if request.uri().path() != "/big" {
                return text(StatusCode::OK, "ok");
            }
            let chunks =
                futures_util::stream::iter((0..BIG / ZEROS.len() as u64).map(|_| {
                    Ok::<_, io::Error>(hyper::body::Frame::data(Bytes::from_static(&ZEROS)))
                }));
            let mut response = Response::new(http_body_util::StreamBody::new(chunks).boxed());
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(BIG));
            response
        }
    }

    /// A server on a runtime of its own (dropped with it).
    fn server(limits: Limits) -> (tokio::runtime::Runtime, SocketAddr) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        runtime.spawn(serve(listener, Arc::new(TestHandler), limits));
        (runtime, address)
    }

    /// A client that sends a request head one byte every 100 ms, for a
    /// minute, never finishing it.
    struct Trickler {
        stream: TcpStream,
        stop: Arc<AtomicBool>,
        writer: std::thread::JoinHandle<()>,
    }

    impl Trickler {
        fn start(address: SocketAddr) -> Self {
            let stream = TcpStream::connect(address).unwrap();
            let mut writer = stream.try_clone().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = Arc::clone(&stop);
            let writer = std::thread::spawn(move || {
                if writer
                    .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .is_err()
                {
                    return;
                }
                for _ in 0..600 {
                    if stopped.load(Ordering::SeqCst) || writer.write_all(b"a").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            Self {
                stream,
                stop,
                writer,
            }
        }

        fn stop(self) {
            self.stop.store(true, Ordering::SeqCst);
            let _ = self.writer.join();
        }
    }

    /// Whether the server closes `stream` (EOF or reset) within `within`,
    /// with no successful response before.
    fn closed_by_server(stream: &TcpStream, within: Duration) -> bool {
        let mut stream = stream.try_clone().unwrap();
        stream.set_read_timeout(Some(within)).unwrap();
        let mut got = Vec::new();
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buffer[..n]),
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => break,
                Err(_) => return false,
            }
        }
        !got.starts_with(b"HTTP/1.1 2")
    }

    /// GET `path`; the status code, or `None` without an answer within
    /// `within`.
    fn get(address: SocketAddr, path: &str, within: Duration) -> Option<u16> {
        let mut stream = TcpStream::connect(address).ok()?;
        stream.set_read_timeout(Some(within)).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    }

    #[test]
    fn slow_and_silent_clients_are_closed_after_the_header_timeout() {
        let timeout = Duration::from_secs(1);
        let (_runtime, address) = server(Limits {
            header_read_timeout: timeout,
            ..Limits::default()
        });
        let started = Instant::now();
        let slow = Trickler::start(address);
        let silent = TcpStream::connect(address).unwrap();
        assert!(
            closed_by_server(&slow.stream, Duration::from_secs(30)),
            "a client trickling its headers was not closed"
        );
        assert!(
            closed_by_server(&silent, Duration::from_secs(30)),
            "a client sending nothing was not closed"
        );
        // Not before its time (the trickler never completes its head).
        assert!(started.elapsed() >= timeout);
        slow.stop();
        // And the server still serves.
        assert_eq!(get(address, "/", Duration::from_secs(30)), Some(200));
    }

    #[test]
    fn the_connection_cap_holds_and_a_normal_request_is_served_while_slow_clients_hang_on() {
        // A long header timeout: here the slow clients stay as long as the
        // test wants.
        let (_runtime, address) = server(Limits {
            header_read_timeout: Duration::from_secs(120),
            max_connections: 3,
            ..Limits::default()
        });
        // Below the cap, slow clients do not delay anyone.
        let slow = [Trickler::start(address), Trickler::start(address)];
        assert_eq!(get(address, "/", Duration::from_secs(30)), Some(200));
        for client in &slow {
            assert!(
                !client.writer.is_finished(),
                "a slow client was dropped below the cap"
            );
        }
        // At the cap, the next connection waits in the backlog ...
        let silent = TcpStream::connect(address).unwrap();
        let mut waiting = TcpStream::connect(address).unwrap();
        waiting
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        waiting
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut head = [0u8; 12];
        assert!(
            waiting.read_exact(&mut head).is_err(),
            "a connection beyond the cap was served"
        );
        // ... and is served as soon as a slot frees.
        drop(silent);
        waiting
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        waiting.read_exact(&mut head).unwrap();
        assert_eq!(&head[9..12], b"200");
        for client in slow {
            client.stop();
        }
    }

    #[test]
    fn slow_clients_at_the_cap_cannot_starve_a_normal_request() {
        let (_runtime, address) = server(Limits {
            header_read_timeout: Duration::from_secs(1),
            max_connections: 2,
            ..Limits::default()
        });
        // More slow clients than slots, trickling for a minute each.
        let slow: Vec<Trickler> = (0..4).map(|_| Trickler::start(address)).collect();
        let silent = TcpStream::connect(address).unwrap();
        // Served once the header timeout has cleared the slots before it.
        assert_eq!(get(address, "/", Duration::from_secs(30)), Some(200));
        for client in &slow {
            assert!(closed_by_server(&client.stream, Duration::from_secs(30)));
        }
        assert!(closed_by_server(&silent, Duration::from_secs(30)));
        for client in slow {
            client.stop();
        }
    }

    #[test]
    fn a_client_that_stops_reading_is_closed_after_the_idle_timeout() {
        let (_runtime, address) = server(Limits {
            idle_timeout: Duration::from_secs(1),
            ..Limits::default()
        });
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        // Read nothing: the server's writes stall once the socket buffers
        // are full, and the connection goes idle.
        std::thread::sleep(Duration::from_secs(5));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut total = 0u64;
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => break,
                Err(err) => panic!("neither data nor a close: {err}"),
            }
        }
        assert!(
            total < BIG,
            "the whole body arrived: the stalled connection was not closed"
        );
        assert_eq!(get(address, "/", Duration::from_secs(30)), Some(200));
    }
}
