//! The artifact server: endorsed images, read-only, over HTTP.
//!
//! KubeVirt CDI streams an HTTP DataVolume without scratch space only when
//! the server answers HEAD with Content-Length and honours Range; Glance's
//! web-download wants a plain GET. So every image is served with its length,
//! `Accept-Ranges: bytes`, single-range requests, and an ETag derived from
//! its verified sha512 (`If-None-Match` gives 304). Paths are parsed into a
//! validated [`ImageKey`] and opened through the store, which never follows
//! a symlink: nothing outside the endorsed area can be reached. Who may read
//! a namespace's images and lists is the [`Access`] policy's decision,
//! taken before anything is opened (401/403 reveal nothing about what
//! exists).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::access::{self, Access, Verdict};
use super::http::{Body, Handler, empty, text};
use crate::store::{CacheStore, ImageKey};

/// Bytes read from disk per body chunk.
const CHUNK: usize = 256 * 1024;

/// What the server serves from.
pub struct Artifacts {
    pub store: CacheStore,
    /// The stored signed lists (`<ns>/<name>.smime`, and the bare JSON they
    /// carry as `<ns>/<name>.json`), served under `/lists/`.
    pub lists_dir: Option<std::path::PathBuf>,
    /// `/readyz` answers 503 until this is set.
    pub ready: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Who may read what.
    pub access: Access,
}

impl Artifacts {
    /// Images only, to everyone (`vmlisub serve`).
    pub fn images(store: CacheStore) -> Self {
        Self {
            store,
            lists_dir: None,
            ready: None,
            access: Access::Anonymous,
        }
    }
}

/// A byte range to serve, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// Parses a `Range` header for a file of `len` bytes. `Ok(None)`: serve the
/// whole file (no header, or a form we ignore such as several ranges);
/// `Err(())`: unsatisfiable (416).
#[allow(clippy::result_unit_err)]
pub fn parse_range(value: &str, len: u64) -> Result<Option<ByteRange>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec.split_once('-').ok_or(())?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        // Suffix: the last N bytes.
        let n: u64 = last.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        ByteRange {
            start: len.saturating_sub(n),
            end: len - 1,
        }
    } else {
        let start: u64 = first.parse().map_err(|_| ())?;
        let end = if last.is_empty() {
            len.saturating_sub(1)
        } else {
            last.parse::<u64>()
                .map_err(|_| ())?
                .min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Err(());
        }
        ByteRange { start, end }
    };
    Ok(Some(range))
}

/// `/healthz` and `/readyz` (on the artifact and the metrics port).
pub(crate) fn probe(path: &str, ready: Option<&std::sync::atomic::AtomicBool>) -> Response<Body> {
    if path == "/readyz"
        && !ready.is_none_or(|ready| ready.load(std::sync::atomic::Ordering::SeqCst))
    {
        return text(StatusCode::SERVICE_UNAVAILABLE, "starting");
    }
    text(StatusCode::OK, "ok")
}

/// The answer to a request the access policy refused.
pub(crate) fn refusal(verdict: &Verdict) -> Option<Response<Body>> {
    let response = match verdict {
        Verdict::Allowed => return None,
        Verdict::Unauthenticated { presented } => {
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                "a Kubernetes ServiceAccount token is required (Authorization: Bearer <token>)",
            );
            let challenge = if *presented {
                access::CHALLENGE_INVALID
            } else {
                access::CHALLENGE
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            response
        }
        Verdict::Forbidden => text(
            StatusCode::FORBIDDEN,
            "this token may not read this namespace's images (it needs get on imagesubscriptions.vmli.hepix.org there)",
        ),
        Verdict::Unavailable => {
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot check the token now; retry later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    };
    Some(response)
}

impl Handler for Artifacts {
    async fn handle(self: Arc<Self>, request: Request<hyper::body::Incoming>) -> Response<Body> {
        let path = request.uri().path().to_string();
        match (request.method(), path.as_str()) {
            (&Method::GET | &Method::HEAD, "/healthz" | "/readyz") => {
                probe(&path, self.ready.as_deref())
            }
            (&Method::GET | &Method::HEAD, path) if path.starts_with("/images/") => {
                self.image(&request, &path["/images/".len()..]).await
            }
            (&Method::GET | &Method::HEAD, path) if path.starts_with("/lists/") => {
                self.list(&request, &path["/lists/".len()..]).await
            }
            (&Method::GET | &Method::HEAD, _) => text(StatusCode::NOT_FOUND, "not found"),
            _ => {
                let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "read-only");
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                response
            }
        }
    }
}

impl Artifacts {
    /// `/lists/<namespace>/<name>.smime|.json`: the last good list of a
    /// subscription as signed, or the JSON it carries.
    async fn list(&self, request: &Request<hyper::body::Incoming>, rest: &str) -> Response<Body> {
        let not_found = || text(StatusCode::NOT_FOUND, "no such list");
        let Some(dir) = &self.lists_dir else {
            return not_found();
        };
        let Some((namespace, file)) = rest.split_once('/') else {
            return not_found();
        };
        let (name, content_type) = if let Some(name) = file.strip_suffix(".smime") {
            (name, "application/pkcs7-mime")
        } else if let Some(name) = file.strip_suffix(".json") {
            (name, "application/json")
        } else {
            return not_found();
        };
        // Validated names only: nothing but `<ns>/<name>.<ext>` is reachable.
        if !crate::api::names::is_valid_namespace(namespace)
            || !crate::api::names::is_valid_name(name)
        {
            return not_found();
        }
        let verdict = self.access.check(request.headers(), namespace, name).await;
        if let Some(refused) = refusal(&verdict) {
            return refused;
        }
        let path = dir.join(namespace).join(file);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(_) => return not_found(),
        };
        let len = bytes.len() as u64;
        let mut response = if request.method() == Method::HEAD {
            Response::new(empty())
        } else {
            Response::new(
                Full::new(Bytes::from(bytes))
                    .map_err(|never| match never {})
                    .boxed(),
            )
        };
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        response
    }

    async fn image(&self, request: &Request<hyper::body::Incoming>, rest: &str) -> Response<Body> {
        let parts: Vec<&str> = rest.split('/').collect();
        let [namespace, subscription, image] = parts.as_slice() else {
            return text(
                StatusCode::NOT_FOUND,
                "expected /images/<namespace>/<subscription>/<image-id>",
            );
        };
        // Validated names only: anything else (`..`, dot files, encoded
        // separators) is simply not an image.
        let Ok(key) = ImageKey::parse(namespace, subscription, image) else {
            return text(StatusCode::NOT_FOUND, "no such image");
        };
        let verdict = self
            .access
            .check(
                request.headers(),
                key.namespace.as_str(),
                key.subscription.as_str(),
            )
            .await;
        if let Some(refused) = refusal(&verdict) {
            return refused;
        }
        let (file, record) = match self.store.open_image(&key) {
            Ok(opened) => opened,
            Err(err) => {
                tracing::debug!(image = %key, error = %err, "artifact not served");
                return text(StatusCode::NOT_FOUND, "no such image");
            }
        };
        let len = record.size;
        let etag = format!("\"sha512:{}\"", record.sha512.as_str());
        let if_none_match = request
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok());
        let mut response = Response::new(empty());
        let headers = response.headers_mut();
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Ok(value) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, value);
        }
        if let Ok(value) = HeaderValue::from_str(&format!("sha-512={}", record.sha512.as_str())) {
            headers.insert("x-checksum", value);
        }
        if if_none_match.is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        }) {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return response;
        }
        // If-Range with another validator: the whole (new) file, not a part.
        let if_range_ok = request
            .headers()
            .get(header::IF_RANGE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|value| value.trim() == etag);
        let range = match request
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
        {
            Some(value) if if_range_ok => parse_range(value, len),
            _ => Ok(None),
        };
        let (start, count) = match range {
            Ok(Some(range)) => {
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
                if let Ok(value) =
                    HeaderValue::from_str(&format!("bytes {}-{}/{len}", range.start, range.end))
                {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                (range.start, range.end - range.start + 1)
            }
            Ok(None) => (0, len),
            Err(()) => {
                let mut refused = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    refused.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                return refused;
            }
        };
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(count));
        if request.method() == Method::HEAD {
            return response;
        }
        let mut file = tokio::fs::File::from_std(file);
        if start > 0
            && let Err(err) = file.seek(std::io::SeekFrom::Start(start)).await
        {
            tracing::warn!(image = %key, error = %err, "seek failed");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "read error");
        }
        let reader = tokio_util::io::ReaderStream::with_capacity(file.take(count), CHUNK);
        *response.body_mut() = StreamBody::new(reader.map_ok(Frame::data)).boxed();
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9", 100),
            Ok(Some(ByteRange { start: 0, end: 9 }))
        );
        assert_eq!(
            parse_range("bytes=90-", 100),
            Ok(Some(ByteRange { start: 90, end: 99 }))
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            Ok(Some(ByteRange { start: 90, end: 99 }))
        );
        assert_eq!(
            parse_range("bytes=-500", 100),
            Ok(Some(ByteRange { start: 0, end: 99 }))
        );
        assert_eq!(
            parse_range("bytes=50-5000", 100),
            Ok(Some(ByteRange { start: 50, end: 99 }))
        );
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=9-3", 100), Err(()));
        assert_eq!(parse_range("bytes=x-3", 100), Err(()));
        assert_eq!(parse_range("bytes=-0", 100), Err(()));
        assert_eq!(parse_range("bytes=0-", 0), Err(()));
    }
}
