//! `vmlisub serve` over a cache filled by `vmlisub sync` (the quickstart
//! example): HEAD with Content-Length, full and ranged GETs, 416, ETag from
//! the sha512 with 304, read-only, and nothing outside the endorsed area;
//! and its connection limits against slow clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod support;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn request(address: &str, method: &str, path: &str, extra: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in extra {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Starts `vmlisub serve` on a free loopback port; returns it and its
/// address.
fn start_serve(cache: &std::path::Path, extra: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmlisub"))
        .args(["serve", "--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(cache)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let server = Server(child);
    let address = first
        .split("http://")
        .nth(1)
        .unwrap_or_else(|| panic!("vmlisub serve did not start: {first:?}"))
        .split('/')
        .next()
        .unwrap()
        .to_string();
    (server, address)
}

#[test]
fn serves_verified_images_read_only_with_ranges() {
    let example = support::quickstart::example();
    let dir = tempfile::tempdir().unwrap();
    let manifests = support::quickstart::prepare(dir.path());
    let cache = dir.path().join("cache");
    let sync = Command::new(env!("CARGO_BIN_EXE_vmlisub"))
        .args(["sync", "--once", "--allow-file-urls", "-f"])
        .arg(&manifests)
        .arg("--ca-dir")
        .arg(example.join("ca"))
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .args(["--artifact-base-url", "http://images.example.org:8080/"])
        .output()
        .unwrap();
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stdout)
    );
    let id = "5b1d8a30-0c4e-4b5f-8e2a-111111111111";
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(
        state["images"]["default/example-linux-1"]["artifact"]["url"],
        format!("http://images.example.org:8080/images/default/example/{id}")
    );

    let (_server, address) = start_serve(&cache, &[]);

    let bytes = std::fs::read(example.join("site/images/example-1.img")).unwrap();
    let path = format!("/images/default/example/{id}");
    let head = request(&address, "HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    let etag = head.header("etag").unwrap().to_string();
    assert!(etag.starts_with("\"sha512:"), "{etag}");
    assert!(head.body.is_empty());

    let full = request(&address, "GET", &path, &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, bytes);

    let part = request(&address, "GET", &path, &[("Range", "bytes=10-19")]);
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 10-19/{}", bytes.len()).as_str())
    );
    assert_eq!(part.body, &bytes[10..20]);

    let tail = request(
        &address,
        "GET",
        &path,
        &[("Range", "bytes=-5"), ("If-Range", &etag)],
    );
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &bytes[bytes.len() - 5..]);
    let stale = request(
        &address,
        "GET",
        &path,
        &[("Range", "bytes=0-0"), ("If-Range", "\"other\"")],
    );
    assert_eq!(stale.status, 200, "a changed validator gets the whole file");

    let beyond = request(&address, "GET", &path, &[("Range", "bytes=999999-")]);
    assert_eq!(beyond.status, 416);
    assert_eq!(
        beyond.header("content-range"),
        Some(format!("bytes */{}", bytes.len()).as_str())
    );

    let cached = request(&address, "GET", &path, &[("If-None-Match", &etag)]);
    assert_eq!(cached.status, 304);

    assert_eq!(request(&address, "POST", &path, &[]).status, 405);
    assert_eq!(request(&address, "GET", "/healthz", &[]).status, 200);
    for bad in [
        "/images/default/example/5b1d8a30-0c4e-4b5f-8e2a-222222222222",
        "/images/default/example/../example/x",
        "/images/default/example/.hidden",
        "/images/default/example",
        "/images/default/example/%2e%2e",
        "/images/default/../../etc/passwd",
        "/state.json",
    ] {
        assert_eq!(request(&address, "GET", bad, &[]).status, 404, "{bad}");
    }
}

/// Whether the server closes `stream` (EOF or reset, after at most an
/// error response) within `within`.
fn closed_by_server(stream: &TcpStream, within: Duration) -> bool {
    let mut stream = stream.try_clone().unwrap();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(_) => return false,
        }
    }
    !got.starts_with(b"HTTP/1.1 2")
}

/// `vmlisub serve --max-connections 2 --header-read-timeout 1s`: six
/// clients that trickle their request heads (one byte every 100 ms, for a
/// minute) and two that send nothing hold every slot, yet a normal request
/// is answered (once the header timeout has cleared the slots ahead of
/// it), and every slow client is closed by the server.
#[test]
fn slow_clients_cannot_starve_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, address) = start_serve(
        &dir.path().join("cache"),
        &[
            "--max-connections",
            "2",
            "--header-read-timeout",
            "1s",
            "--idle-timeout",
            "30s",
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut slow = Vec::new();
    let mut writers = Vec::new();
    // Before the first slow client: no header timeout can end before one
    // second from here, however long the connects below take.
    let started = Instant::now();
    for _ in 0..6 {
        let stream = TcpStream::connect(&address).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let stop = Arc::clone(&stop);
        writers.push(std::thread::spawn(move || {
            if writer
                .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
                .is_err()
            {
                return;
            }
            for _ in 0..600 {
                if stop.load(Ordering::SeqCst) || writer.write_all(b"a").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
        slow.push(stream);
    }
    for _ in 0..2 {
        slow.push(TcpStream::connect(&address).unwrap());
    }
    let mut normal = TcpStream::connect(&address).unwrap();
    normal
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        normal,
        "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    normal
        .read_exact(&mut head)
        .expect("the normal request was starved");
    assert_eq!(&head[..12], b"HTTP/1.1 200");
    // Behind eight slow clients and two slots, it waited for header
    // timeouts (never less than one).
    assert!(started.elapsed() >= Duration::from_secs(1));
    for (n, stream) in slow.iter().enumerate() {
        assert!(
            closed_by_server(stream, Duration::from_secs(60)),
            "slow client {n} was not closed"
        );
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        let _ = writer.join();
    }
    // Limits are checked: a timeout outside 1s..1h is refused.
    let refused = Command::new(env!("CARGO_BIN_EXE_vmlisub"))
        .args(["serve", "--header-read-timeout", "0s"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
}
