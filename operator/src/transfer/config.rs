//! Settings of a [`Transfer`](super::Transfer) client.
//!
//! The struct is plain data with serde support so that the CLI (flags, a
//! config file) and the operator (CRD fields and Secrets) can both fill it
//! in; every field has a default, and secrets never appear in `Debug`
//! output, because configs end up in logs.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::url::redact_str;

/// The `User-Agent` sent by default: publishers see which tool and version
/// fetches their lists, which helps them debug and deprecate.
pub const DEFAULT_USER_AGENT: &str = concat!("vmlisub/", env!("CARGO_PKG_VERSION"));

/// The password AppDB expects when a private-list access token is sent as
/// the HTTP Basic user name.
pub const APPDB_TOKEN_PASSWORD: &str = "x-oauth-basic";

/// How to retrieve lists and images.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferConfig {
    /// Limit for establishing the TCP connection (and TLS handshake).
    /// Durations are written `30s`, `5m`, `1h30m` (or ISO 8601).
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub connect_timeout: Duration,
    /// A response that delivers no byte for this long is aborted: this is
    /// what catches a dead server in the middle of a multi-gigabyte image,
    /// where a total timeout would have to be hours long.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub idle_timeout: Duration,
    /// Deadline for a whole list fetch (redirects, headers and body). Lists
    /// are small, so a short deadline stops a server that trickles bytes
    /// just fast enough to dodge the idle timeout.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub total_timeout: Duration,
    /// Deadline for one image download attempt (re-hashing a partial file
    /// included). Separate from `total_timeout` because images are
    /// gigabytes; `None` leaves only the idle timeout and the size cap.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::optional")]
    pub download_timeout: Option<Duration>,
    /// Redirects followed before giving up (`too-many-redirects`).
    pub max_redirects: usize,
    /// Whether `file://` URLs may be read. Off by default: a list URL taken
    /// from a namespace user's CRD must not read the operator's own files.
    pub allow_file_scheme: bool,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// Which proxy to use.
    pub proxy: ProxyConfig,
    /// Extra transport trust anchors (PEM, one or more certificates), e.g.
    /// a site CA that signs the web server of a private list. Added to the
    /// system roots unless `replace_system_roots` is set. Empty: none.
    /// (De)serialized as PEM text.
    #[serde(with = "pem_text")]
    pub extra_ca_pem: Vec<u8>,
    /// Trust only `extra_ca_pem`, not the system roots: pins a private
    /// server to its CA. TLS is always verified; there is no way to turn
    /// verification off.
    pub replace_system_roots: bool,
    /// Credentials, sent only to requests on the origin of
    /// `credential_scope` (and not across redirects to another host,
    /// scheme or port).
    pub auth: Auth,
    /// The URL credentials belong to: the list's. `auth`, or when it is
    /// [`Auth::None`] the `user:password@` of this URL, go only to requests
    /// on its origin (scheme, host and port): an image on another host or
    /// port gets none, and an `https` scope never sends them over plain
    /// `http`. `None` (or a URL that does not parse, or has no host):
    /// `auth` is sent nowhere. A request URL's own `user:password@` is
    /// always sent to that URL (it names its origin itself).
    pub credential_scope: Option<String>,
    /// Credentials for requests outside `credential_scope`'s origin (image
    /// mirrors that need their own, `spec.imageSecretRef`): sent over
    /// https only, never over plain http.
    pub image_auth: Auth,
    /// Image downloads that may run at once per [`DownloadLimiter`]
    /// (list fetches are not counted: they are small and must not queue
    /// behind images).
    ///
    /// [`DownloadLimiter`]: super::DownloadLimiter
    pub max_concurrent_downloads: usize,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(300),
            download_timeout: Some(Duration::from_secs(24 * 3600)),
            max_redirects: 5,
            allow_file_scheme: false,
            user_agent: DEFAULT_USER_AGENT.to_string(),
            proxy: ProxyConfig::default(),
            extra_ca_pem: Vec::new(),
            replace_system_roots: false,
            auth: Auth::None,
            credential_scope: None,
            image_auth: Auth::None,
            max_concurrent_downloads: 2,
        }
    }
}

impl fmt::Debug for TransferConfig {
    /// Secrets are redacted by the field types; the CA bundle is shown by
    /// size only, as thousands of byte values would drown the log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransferConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("download_timeout", &self.download_timeout)
            .field("max_redirects", &self.max_redirects)
            .field("allow_file_scheme", &self.allow_file_scheme)
            .field("user_agent", &self.user_agent)
            .field("proxy", &self.proxy)
            .field("extra_ca_pem_bytes", &self.extra_ca_pem.len())
            .field("replace_system_roots", &self.replace_system_roots)
            .field("auth", &self.auth)
            .field("image_auth", &self.image_auth)
            .field(
                "credential_scope",
                &self.credential_scope.as_deref().map(redact_str),
            )
            .field("max_concurrent_downloads", &self.max_concurrent_downloads)
            .finish()
    }
}

/// Which proxy requests go through.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "mode",
    deny_unknown_fields
)]
pub enum ProxyConfig {
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and `NO_PROXY` from the
    /// environment (upper or lower case), read when the client is built:
    /// what every other HTTP tool on the host does.
    #[default]
    Environment,
    /// No proxy, whatever the environment says.
    Direct,
    /// One proxy for both schemes. The URL may carry `user:password@` for
    /// proxy authentication.
    Explicit {
        /// `http://proxy.example:3128` (or `https://`).
        url: String,
        /// Hosts reached directly, in `NO_PROXY` syntax: `example.org`
        /// (and its subdomains), `.example.org`, IPs, CIDR ranges, `*`.
        #[serde(default)]
        no_proxy: Vec<String>,
    },
}

impl fmt::Debug for ProxyConfig {
    /// The proxy URL may hold credentials: show it redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str("Environment"),
            Self::Direct => f.write_str("Direct"),
            Self::Explicit { url, no_proxy } => f
                .debug_struct("Explicit")
                .field("url", &redact_str(url))
                .field("no_proxy", no_proxy)
                .finish(),
        }
    }
}

/// HTTP authentication for lists and images.
///
/// EGI AppDB private lists take the access token as the Basic *user* with
/// the fixed password `x-oauth-basic`: use [`Auth::appdb_token`], not
/// `Bearer`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", deny_unknown_fields)]
pub enum Auth {
    /// No `Authorization` header (credentials in the URL, if any, are used
    /// as Basic).
    #[default]
    None,
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// User name (for AppDB: the access token).
        user: String,
        /// Password (for AppDB: `x-oauth-basic`).
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
}

impl Auth {
    /// Credentials for an EGI AppDB private list: the token as the Basic
    /// user, `x-oauth-basic` as the password.
    pub fn appdb_token(token: impl Into<String>) -> Self {
        Self::Basic {
            user: token.into(),
            password: APPDB_TOKEN_PASSWORD.to_string(),
        }
    }
}

impl fmt::Debug for Auth {
    /// Never prints secrets; the Basic user stays visible unless it is a
    /// token (AppDB), which is recognised by the `x-oauth-basic` password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { user, password } => {
                let user = if password == APPDB_TOKEN_PASSWORD {
                    "<token>"
                } else {
                    user.as_str()
                };
                f.debug_struct("Basic")
                    .field("user", &user)
                    .field("password", &"<redacted>")
                    .finish()
            }
            Self::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

/// PEM bundles are text: keep them readable in YAML/JSON instead of an
/// array of numbers.
mod pem_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&String::from_utf8_lossy(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(deserializer)?.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn defaults_round_trip_through_json() {
        let config = TransferConfig::default();
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("\"idleTimeout\":\"1m\""), "{json}");
        let back: TransferConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        assert_eq!(config.max_redirects, 5);
        assert!(!config.allow_file_scheme);
        assert!(config.user_agent.starts_with("vmlisub/"));
    }

    #[test]
    fn partial_json_takes_defaults() {
        let config: TransferConfig = serde_json::from_str(
            r#"{"idleTimeout":"90s","downloadTimeout":null,
                "auth":{"type":"bearer","token":"t"},
                "proxy":{"mode":"explicit","url":"http://p:3128","noProxy":["local"]}}"#,
        )
        .unwrap();
        assert_eq!(config.idle_timeout, Duration::from_secs(90));
        assert_eq!(config.download_timeout, None);
        assert_eq!(config.connect_timeout, Duration::from_secs(30));
        assert_eq!(
            config.auth,
            Auth::Bearer {
                token: "t".to_string()
            }
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!(
            "{:?} {:?} {:?}",
            Auth::appdb_token("sekrit-token"),
            Auth::Basic {
                user: "alice".into(),
                password: "hunter2".into()
            },
            ProxyConfig::Explicit {
                url: "http://bob:pw@proxy:3128".into(),
                no_proxy: vec![]
            }
        );
        assert!(!shown.contains("sekrit"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("pw@"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
        let config = TransferConfig {
            credential_scope: Some("https://tok3n:x-oauth-basic@h/l?sig=s1g".into()),
            ..TransferConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("tok3n"), "{shown}");
        assert!(!shown.contains("s1g"), "{shown}");
    }
}
