//! Fetching one signed list by URL for `vmlisub verify URL` and
//! `vmlisub subscribe URL`: the transfer client both drivers use
//! ([`crate::transfer::Transfer`]), configured from the same
//! [`TransferSettings`] a list's Secrets give, so that a URL is fetched
//! here exactly as `vmlisub sync` and the operator would fetch it (TLS
//! always verified, proxy from the environment, size cap, timeouts,
//! bounded redirects).
//!
//! Credentials are read from files, never taken from the command line or
//! the URL, where `ps` and shell histories would show them.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::reason::Reason;
use crate::subscription::{DEFAULT_MAX_LIST_BYTES, TransferSettings};
use crate::transfer::{Auth, ListFetch, Transfer, TransferConfig, TransferError, redact_url};

/// Largest credential file read (a token or `user:password`).
const MAX_CREDENTIAL_BYTES: u64 = 64 * 1024;
/// Largest transport CA bundle read.
const MAX_CA_BUNDLE_BYTES: u64 = 4 * 1024 * 1024;

/// How a list URL is reached.
#[derive(Debug, Clone, Default, Args)]
pub struct TransportArgs {
    /// Extra CA certificates (PEM) trusted for the TLS connection to the
    /// list's server, added to the system roots. Transport trust only: the
    /// list's signature is still checked against the CA directory.
    #[arg(long, value_name = "FILE")]
    pub transport_ca: Option<PathBuf>,

    /// A file holding a bearer token, sent as `Authorization: Bearer`.
    #[arg(long, value_name = "FILE", conflicts_with = "basic_auth_file")]
    pub token_file: Option<PathBuf>,

    /// A file holding `user:password` for HTTP Basic (EGI AppDB:
    /// `<token>:x-oauth-basic`).
    #[arg(long, value_name = "FILE")]
    pub basic_auth_file: Option<PathBuf>,

    /// Allow file:// URLs (a list saved locally, an air-gapped mirror).
    #[arg(long)]
    pub allow_file_urls: bool,
}

impl TransportArgs {
    /// Whether credentials are configured.
    pub fn has_credentials(&self) -> bool {
        self.token_file.is_some() || self.basic_auth_file.is_some()
    }
}

/// Why a list could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Transfer(#[from] TransferError),
    #[error("cannot read {what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path}: {problem}")]
    Credentials {
        what: &'static str,
        path: PathBuf,
        problem: &'static str,
    },
    #[error(
        "{url}: the URL carries credentials; put them in a file for --basic-auth-file or --token-file instead"
    )]
    CredentialsInUrl { url: String },
    #[error("{url}: file:// URLs are refused without --allow-file-urls")]
    FileRefused { url: String },
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
}

impl Reason for FetchError {
    fn reason(&self) -> &'static str {
        match self {
            Self::Transfer(err) => err.reason(),
            Self::File { .. } => "input-unreadable",
            Self::Credentials { .. } => "credentials-invalid",
            Self::CredentialsInUrl { .. } => "usage",
            Self::FileRefused { .. } => "scheme-refused",
            Self::Runtime(_) => "runtime",
        }
    }
}

/// Whether a command-line argument is a URL (`scheme://...`) rather than
/// a file name.
pub fn is_url(arg: &str) -> bool {
    let Some((scheme, _)) = arg.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// A fetched list.
#[derive(Debug)]
pub struct FetchedList {
    pub bytes: Vec<u8>,
    /// Where it was served from after redirects (credentials stripped).
    pub final_url: String,
}

/// Checks `url` for what the command line must not do: carry credentials,
/// or name a local file without `--allow-file-urls`.
pub fn check_url(url: &str, args: &TransportArgs) -> Result<(), FetchError> {
    if let Ok(parsed) = reqwest::Url::parse(url) {
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(FetchError::CredentialsInUrl {
                url: redact_url(url),
            });
        }
        if parsed.scheme() == "file" && !args.allow_file_urls {
            return Err(FetchError::FileRefused {
                url: redact_url(url),
            });
        }
    }
    Ok(())
}

/// The transfer settings the flags give: what a list's `secretRef` and
/// `certSecretRef` give the drivers.
pub fn settings(args: &TransportArgs) -> Result<TransferSettings, FetchError> {
    let auth = match (&args.token_file, &args.basic_auth_file) {
        (Some(path), _) => Some(Auth::Bearer {
            token: read_secret_line(path, "token file")?,
        }),
        (None, Some(path)) => {
            let line = read_secret_line(path, "basic-auth file")?;
            let (user, password) = line.split_once(':').ok_or(FetchError::Credentials {
                what: "basic-auth file",
                path: path.clone(),
                problem: "expected one line user:password",
            })?;
            Some(Auth::Basic {
                user: user.to_string(),
                password: password.to_string(),
            })
        }
        (None, None) => None,
    };
    let extra_ca_pem = match &args.transport_ca {
        Some(path) => Some(read_capped(path, "transport CA file", MAX_CA_BUNDLE_BYTES)?),
        None => None,
    };
    Ok(TransferSettings {
        auth,
        extra_ca_pem,
        ..TransferSettings::default()
    })
}

/// Fetches the list at `url` (at most [`DEFAULT_MAX_LIST_BYTES`], as the
/// drivers), with the settings of `args` on top of the drivers' default
/// transfer configuration.
pub fn fetch(url: &str, args: &TransportArgs) -> Result<FetchedList, FetchError> {
    check_url(url, args)?;
    let config = settings(args)?.apply_to(&TransferConfig::default(), args.allow_file_urls, url);
    let transfer = Transfer::new(&config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(FetchError::Runtime)?;
    let fetched = runtime.block_on(transfer.fetch_list(url, DEFAULT_MAX_LIST_BYTES, None))?;
    match fetched {
        ListFetch::Fetched {
            bytes, final_url, ..
        } => {
            tracing::info!(url = %redact_url(url), %final_url, bytes = bytes.len(), "list fetched");
            Ok(FetchedList { bytes, final_url })
        }
        // Never without validators; reported rather than assumed away.
        ListFetch::NotModified => Err(FetchError::Transfer(TransferError::Protocol {
            url: redact_url(url),
            detail: "304 Not Modified to an unconditional request".to_string(),
        })),
    }
}

fn read_capped(path: &Path, what: &'static str, limit: u64) -> Result<Vec<u8>, FetchError> {
    let file_error = |source| FetchError::File {
        what,
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit + 1).read_to_end(&mut bytes))
        .map_err(file_error)?;
    if bytes.len() as u64 > limit {
        return Err(FetchError::Credentials {
            what,
            path: path.to_path_buf(),
            problem: "file too large",
        });
    }
    Ok(bytes)
}

/// One line of a credential file, without its line end: no other line, no
/// control characters (they would break the header), not empty.
fn read_secret_line(path: &Path, what: &'static str) -> Result<String, FetchError> {
    warn_if_readable_by_others(path);
    let bytes = read_capped(path, what, MAX_CREDENTIAL_BYTES)?;
    let invalid = |problem| FetchError::Credentials {
        what,
        path: path.to_path_buf(),
        problem,
    };
    let text = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8"))?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(invalid("empty"));
    }
    if line.chars().any(char::is_control) {
        return Err(invalid("expected one line without control characters"));
    }
    Ok(line.to_string())
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o044 != 0
    {
        tracing::warn!(file = %path.display(), "credential file is readable by group or others");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_file_names() {
        for url in ["https://a/b", "http://a", "file:///x", "ftp://h/x"] {
            assert!(is_url(url), "{url}");
        }
        for file in ["list.smime", "-", "/tmp/a://b", "./x", "1http://a", "://a"] {
            assert!(!is_url(file), "{file}");
        }
    }

    #[test]
    fn credentials_come_from_files_only() {
        let args = TransportArgs::default();
        assert_eq!(
            check_url("https://user:secret@example.org/list", &args)
                .unwrap_err()
                .reason(),
            "usage"
        );
        let refused = check_url("file:///etc/passwd", &args).unwrap_err();
        assert_eq!(refused.reason(), "scheme-refused");
        assert!(!refused.to_string().contains("passwd\n"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth");
        std::fs::write(&file, "alice:s3cret\n").unwrap();
        let settings = settings(&TransportArgs {
            basic_auth_file: Some(file.clone()),
            ..TransportArgs::default()
        })
        .unwrap();
        assert_eq!(
            settings.auth,
            Some(Auth::Basic {
                user: "alice".into(),
                password: "s3cret".into()
            })
        );
        std::fs::write(&file, "a:b\nc:d\n").unwrap();
        let err = super::settings(&TransportArgs {
            basic_auth_file: Some(file),
            ..TransportArgs::default()
        })
        .unwrap_err();
        assert_eq!(err.reason(), "credentials-invalid");
        // The secret is never part of the message.
        assert!(!err.to_string().contains("c:d"));
    }
}
