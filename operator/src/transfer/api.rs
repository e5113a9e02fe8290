//! JSON API calls (OpenStack Keystone and Glance) over the same client:
//! TLS always verified against the configured roots, connect and idle
//! timeouts, a deadline per call, bounded response bodies, redirects
//! refused (an API that redirects is misconfigured, and a redirect must not
//! carry a token elsewhere), and no secrets in messages.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::StreamBody;
use hyper::body::Frame;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use tokio::time::Instant;
use tokio_util::io::ReaderStream;

use super::error::TransferError;
use super::local::io_error;
use super::url::redact;
use super::{Transfer, next_chunk};

/// API responses larger than this are refused (a Glance image list of a
/// few hundred images is well below).
pub const MAX_API_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// An API response: its status, headers and (bounded) body.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The start of the body as text, for error messages.
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        let mut end = text.len().min(300);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The body of an API request.
#[derive(Debug)]
pub enum ApiBody<'a> {
    None,
    /// A JSON document with this content type.
    Json {
        content_type: &'static str,
        value: &'a serde_json::Value,
    },
    /// A local file of `size` bytes, streamed (never held in memory).
    File {
        path: &'a Path,
        size: u64,
    },
}

/// One API call.
#[derive(Debug)]
pub struct ApiRequest<'a> {
    pub method: Method,
    pub url: &'a str,
    /// Extra headers (e.g. `X-Auth-Token`); their values never reach a
    /// message.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: ApiBody<'a>,
    /// The whole call's deadline (headers and body; an upload's too).
    pub timeout: Duration,
}

impl Transfer {
    /// Sends an API request and reads the response (at most
    /// [`MAX_API_RESPONSE_BYTES`]); any status is returned, the caller
    /// decides what it means. Only `https` and `http` URLs; the client's
    /// configured credentials are never added.
    pub async fn api(&self, request: ApiRequest<'_>) -> Result<ApiResponse, TransferError> {
        let url = Url::parse(request.url).map_err(|e| TransferError::InvalidUrl {
            url: super::url::redact_str(request.url),
            detail: e.to_string(),
        })?;
        let shown = redact(&url);
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none_or(str::is_empty) {
            return Err(TransferError::SchemeRefused {
                url: shown,
                scheme: url.scheme().to_string(),
                hint: " (API endpoints must be https or http URLs with a host)",
            });
        }
        let deadline = Instant::now() + request.timeout;
        let mut builder = self.client.request(request.method.clone(), url);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        builder =
            match request.body {
                ApiBody::None => builder,
                ApiBody::Json {
                    content_type,
                    value,
                } => builder.header(CONTENT_TYPE, content_type).body(
                    serde_json::to_vec(value).map_err(|e| TransferError::Config {
                        detail: format!("cannot encode a request body: {e}"),
                    })?,
                ),
                ApiBody::File { path, size } => {
                    let file = tokio::fs::File::open(path)
                        .await
                        .map_err(io_error(&shown, path, "open"))?;
                    let stream = ReaderStream::with_capacity(file, 256 * 1024)
                        .map(|chunk| chunk.map(Frame::data));
                    builder
                        .header(CONTENT_TYPE, "application/octet-stream")
                        // A known length: no chunked encoding, which some WSGI
                        // servers in front of Glance do not accept.
                        .header(CONTENT_LENGTH, size)
                        .body(reqwest::Body::wrap(StreamBody::new(stream)))
                }
            };
        let mut response = self.send(builder, &shown, Some(deadline)).await?;
        if response.status().is_redirection() {
            return Err(TransferError::RedirectRefused {
                url: shown,
                target: response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(super::url::redact_str)
                    .unwrap_or_default(),
                why: "API calls do not follow redirects",
            });
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = next_chunk(
            &mut response,
            self.settings.idle_timeout,
            Some(deadline),
            &shown,
            body.len() as u64,
        )
        .await?
        {
            if (body.len() + chunk.len()) as u64 > MAX_API_RESPONSE_BYTES {
                return Err(TransferError::TooLarge {
                    url: shown,
                    limit: MAX_API_RESPONSE_BYTES,
                    seen: (body.len() + chunk.len()) as u64,
                });
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(url = %shown, method = %request.method, status, bytes = body.len(), "API call");
        Ok(ApiResponse {
            status,
            headers,
            body: Bytes::from(body),
        })
    }
}
