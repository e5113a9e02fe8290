//! Fetching an image list: small, size-capped, conditional.

use reqwest::StatusCode;
use reqwest::header::{ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::error::TransferError;
use super::url::redact;
use super::{Target, Transfer, local, next_chunk};

/// The HTTP cache validators of a fetched list, kept with the stored list
/// so that the next poll can be a cheap conditional request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Validators {
    /// The `ETag` header, verbatim (quotes and `W/` included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` header, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    /// Neither validator present: a conditional request is impossible.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        Self {
            etag: text(ETAG),
            last_modified: text(LAST_MODIFIED),
        }
    }
}

/// The outcome of [`Transfer::fetch_list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListFetch {
    /// The server confirmed (304) that the list is unchanged since the
    /// given validators.
    NotModified,
    /// A new copy (which may still be byte-identical to the stored one).
    Fetched {
        /// The body, at most `max_bytes` long.
        bytes: Vec<u8>,
        /// Validators for the next conditional fetch.
        validators: Validators,
        /// Where the list was finally served from, after redirects,
        /// credentials stripped (reported, never used as the next URL).
        final_url: String,
    },
}

impl Transfer {
    /// Fetches a list of at most `max_bytes`, conditionally when
    /// `validators` are given (`If-None-Match` / `If-Modified-Since`).
    ///
    /// The cap is checked against `Content-Length` before reading and
    /// enforced while reading (for chunked or lying responses). The whole
    /// fetch is bounded by `total_timeout`. Does not take a download permit:
    /// list polling must not queue behind image downloads. `file://` lists
    /// (when allowed) are always read in full, without validators.
    pub async fn fetch_list(
        &self,
        url: &str,
        max_bytes: u64,
        validators: Option<&Validators>,
    ) -> Result<ListFetch, TransferError> {
        let (url, credentials, shown) = match self.target(url)? {
            Target::File { path, shown } => {
                let bytes = local::read_capped(&path, &shown, max_bytes).await?;
                return Ok(ListFetch::Fetched {
                    bytes,
                    validators: Validators::default(),
                    final_url: shown,
                });
            }
            Target::Http {
                url,
                credentials,
                shown,
            } => (url, credentials, shown),
        };
        let deadline = Instant::now() + self.settings.total_timeout;
        let mut request = self.get(&url, credentials.as_ref());
        let conditional = validators.filter(|v| !v.is_empty());
        if let Some(v) = conditional {
            if let Some(etag) = &v.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(last_modified) = &v.last_modified {
                request = request.header(IF_MODIFIED_SINCE, last_modified);
            }
        }
        tracing::debug!(url = %shown, conditional = conditional.is_some(), "fetching list");
        let mut response = self.send(request, &shown, Some(deadline)).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_MODIFIED if conditional.is_some() => {
                tracing::debug!(url = %shown, "list not modified");
                return Ok(ListFetch::NotModified);
            }
            status => {
                return Err(TransferError::HttpStatus {
                    url: shown,
                    status: status.as_u16(),
                });
            }
        }
        if let Some(length) = response.content_length()
            && length > max_bytes
        {
            return Err(TransferError::TooLarge {
                url: shown,
                limit: max_bytes,
                seen: length,
            });
        }
        let final_url = redact(response.url());
        let validators = Validators::from_headers(response.headers());
        let initial = response.content_length().unwrap_or(0).min(max_bytes);
        let mut bytes = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
        loop {
            let received = bytes.len() as u64;
            let chunk = next_chunk(
                &mut response,
                self.settings.idle_timeout,
                Some(deadline),
                &shown,
                received,
            )
            .await?;
            let Some(chunk) = chunk else { break };
            let seen = received + chunk.len() as u64;
            if seen > max_bytes {
                return Err(TransferError::TooLarge {
                    url: shown,
                    limit: max_bytes,
                    seen,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        tracing::debug!(url = %shown, bytes = bytes.len(), "list fetched");
        Ok(ListFetch::Fetched {
            bytes,
            validators,
            final_url,
        })
    }
}
