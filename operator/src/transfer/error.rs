//! The one error type of the transfer module.
//!
//! Every variant carries the (credential-free) URL it concerns, so that a
//! message is useful on its own in a status condition or an event, and maps
//! to a stable reason code (see [`crate::reason`]). The transfer layer
//! stores URLs already redacted; the messages redact them once more, so
//! that a `TransferError` built anywhere else cannot show credentials
//! either.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

use vmlisub_core::redact::redact_url;

use crate::reason::Reason;

/// A URL as messages show it (a no-op on an already redacted one).
fn shown(url: &str) -> String {
    redact_url(url)
}

/// Which deadline expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// TCP connect or TLS handshake.
    Connect,
    /// No byte received for `idle_timeout`.
    Idle,
    /// The whole operation exceeded `total_timeout` / `download_timeout`.
    Total,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "while connecting",
            Self::Idle => "no data received within the idle timeout",
            Self::Total => "the overall deadline passed",
        })
    }
}

/// Why a list fetch or an image download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The [`TransferConfig`](super::TransferConfig) cannot be used (bad CA
    /// PEM, bad proxy URL, ...).
    #[error("invalid transfer configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
    /// The URL does not parse.
    #[error("invalid URL {}: {detail}", shown(url))]
    InvalidUrl {
        /// The URL, credentials stripped.
        url: String,
        /// Parser message.
        detail: String,
    },
    /// A scheme other than `https`/`http` (or `file` when allowed).
    #[error("{}: URL scheme {scheme:?} is not allowed{hint}", shown(url))]
    SchemeRefused {
        /// The URL, credentials stripped.
        url: String,
        /// The refused scheme.
        scheme: String,
        /// Extra explanation (e.g. how to allow `file://`).
        hint: &'static str,
    },
    /// The server answered with an unexpected status.
    #[error("{}: HTTP status {status}", shown(url))]
    HttpStatus {
        /// The URL, credentials stripped.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A deadline expired.
    #[error("{}: timed out: {phase}", shown(url))]
    Timeout {
        /// The URL, credentials stripped.
        url: String,
        /// Which deadline.
        phase: TimeoutPhase,
    },
    /// The TCP connection (or the proxy) could not be established.
    #[error("{}: cannot connect: {detail}", shown(url))]
    Connect {
        /// The URL, credentials stripped.
        url: String,
        /// Cause chain.
        detail: String,
    },
    /// The exchange broke before a complete response head arrived
    /// (connection closed or reset, malformed response).
    #[error("{}: request failed: {detail}", shown(url))]
    Network {
        /// The URL, credentials stripped.
        url: String,
        /// Cause chain.
        detail: String,
    },
    /// The TLS handshake failed, typically an untrusted or mismatching
    /// server certificate.
    #[error("{}: TLS handshake failed: {detail}", shown(url))]
    Tls {
        /// The URL, credentials stripped.
        url: String,
        /// The rustls error.
        detail: String,
    },
    /// More bytes than allowed (list size cap, or the image's `hv:size`).
    #[error(
        "{}: response exceeds the limit of {limit} bytes (got at least {seen})",
        shown(url)
    )]
    TooLarge {
        /// The URL, credentials stripped.
        url: String,
        /// The limit in bytes.
        limit: u64,
        /// Bytes announced or received when the transfer was stopped.
        seen: u64,
    },
    /// The image (or what the server announces) has another size than
    /// `hv:size`.
    #[error("{}: size is {actual} bytes, the list says {expected}", shown(url))]
    SizeMismatch {
        /// The URL, credentials stripped.
        url: String,
        /// `hv:size`.
        expected: u64,
        /// Received or announced size.
        actual: u64,
    },
    /// The image's sha512 differs from the list's.
    #[error("{}: sha512 is {actual}, the list says {expected}", shown(url))]
    ChecksumMismatch {
        /// The URL, credentials stripped.
        url: String,
        /// Expected digest, hex.
        expected: String,
        /// Computed digest, hex.
        actual: String,
    },
    /// A redirect was not followed (https to http, or a non-HTTP scheme).
    #[error("{}: redirect to {} refused: {why}", shown(url), shown(target))]
    RedirectRefused {
        /// The requested URL, credentials stripped.
        url: String,
        /// The redirect target, credentials stripped.
        target: String,
        /// Why.
        why: &'static str,
    },
    /// More redirects than `max_redirects` (a loop, usually).
    #[error("{}: more than {max} redirects", shown(url))]
    TooManyRedirects {
        /// The requested URL, credentials stripped.
        url: String,
        /// The limit.
        max: usize,
    },
    /// The connection ended before the announced body was complete. A
    /// download keeps what it received and resumes next time.
    #[error(
        "{}: transfer interrupted after {received} bytes: {detail}",
        shown(url)
    )]
    Truncated {
        /// The URL, credentials stripped.
        url: String,
        /// Bytes of the body received in this attempt.
        received: u64,
        /// Cause chain.
        detail: String,
    },
    /// The server broke HTTP semantics (e.g. a `Content-Range` that does
    /// not match the requested range).
    #[error("{}: protocol error: {detail}", shown(url))]
    Protocol {
        /// The URL, credentials stripped.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// Reading or writing a local file failed.
    #[error("{}: cannot {action} {}: {source}", shown(url), path.display())]
    Io {
        /// The URL, credentials stripped.
        url: String,
        /// The local file.
        path: PathBuf,
        /// What was being done (`open`, `write`, `sync`, ...).
        action: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl TransferError {
    /// The bytes received so far are known to be wrong (their size or
    /// digest disagrees with the list): a partial file must not be resumed.
    pub fn proves_bytes_wrong(&self) -> bool {
        matches!(
            self,
            Self::TooLarge { .. } | Self::SizeMismatch { .. } | Self::ChecksumMismatch { .. }
        )
    }
}

impl Reason for TransferError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Config { .. } => "transfer-config",
            Self::InvalidUrl { .. } => "invalid-url",
            Self::SchemeRefused { .. } => "scheme-refused",
            Self::HttpStatus { .. } => "http-status",
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::Network { .. } => "network",
            Self::Tls { .. } => "tls",
            Self::TooLarge { .. } => "too-large",
            Self::SizeMismatch { .. } => "size-mismatch",
            Self::ChecksumMismatch { .. } => "checksum-mismatch",
            Self::RedirectRefused { .. } => "redirect-refused",
            Self::TooManyRedirects { .. } => "too-many-redirects",
            Self::Truncated { .. } => "truncated",
            Self::Protocol { .. } => "protocol",
            Self::Io { .. } => "io",
        }
    }
}

impl TransferError {
    /// The HTTP status code, for `http-status` errors.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::HttpStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether retrying later without any change may succeed: network
    /// trouble, server errors (5xx, 408, 429) and interrupted transfers.
    /// Everything else needs the publisher or the user to change something
    /// (the controller reports those as stalled rather than retrying hot).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. }
            | Self::Connect { .. }
            | Self::Network { .. }
            | Self::Truncated { .. } => true,
            Self::Io { .. } => true,
            Self::HttpStatus { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            _ => false,
        }
    }
}

/// Finds an error of type `T` in a cause chain, looking inside
/// `io::Error`s too (their `source()` skips the wrapped error, which is
/// where hyper-rustls puts the `rustls::Error`).
pub(crate) fn find_in_chain<'a, T: StdError + 'static>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            let inner: &(dyn StdError + 'static) = inner;
            if let Some(found) = find_in_chain::<T>(inner) {
                return Some(found);
            }
        }
        current = e.source();
    }
    None
}

/// The messages of a cause chain joined by `: `, skipping repeats
/// (wrappers often repeat their inner message).
pub(crate) fn chain_message(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kebab_case() {
        let e = TransferError::HttpStatus {
            url: "https://h/x".into(),
            status: 503,
        };
        assert_eq!(e.reason(), "http-status");
        assert_eq!(e.http_status(), Some(503));
        assert!(e.is_transient());
        assert_eq!(e.to_string(), "https://h/x: HTTP status 503");
        let e = TransferError::ChecksumMismatch {
            url: "u".into(),
            expected: "a".into(),
            actual: "b".into(),
        };
        assert_eq!(crate::reason::camel_case(e.reason()), "ChecksumMismatch");
        assert!(!e.is_transient());
    }

    #[test]
    fn messages_never_show_credentials() {
        let url = "https://alice:hunter2@h.example/x.img?X-Amz-Signature=f00d&part=1";
        let errors = [
            TransferError::InvalidUrl {
                url: url.into(),
                detail: "d".into(),
            },
            TransferError::HttpStatus {
                url: url.into(),
                status: 403,
            },
            TransferError::Timeout {
                url: url.into(),
                phase: TimeoutPhase::Idle,
            },
            TransferError::RedirectRefused {
                url: url.into(),
                target: "http://bob:pw2@other/?token=tok2".into(),
                why: "w",
            },
            TransferError::Io {
                url: url.into(),
                path: "/p".into(),
                action: "open",
                source: io::Error::other("e"),
            },
        ];
        for error in errors {
            let message = error.to_string();
            for secret in ["alice", "hunter2", "f00d", "bob", "pw2", "tok2"] {
                assert!(!message.contains(secret), "{message}");
            }
            assert!(message.contains("https://h.example/x.img?X-Amz-Signature=REDACTED&part=1"));
        }
    }

    #[test]
    fn finds_errors_wrapped_in_io() {
        #[derive(Debug, thiserror::Error)]
        #[error("inner")]
        struct Inner;
        let io = io::Error::other(Inner);
        assert!(find_in_chain::<Inner>(&io).is_some());
    }
}
