//! HTTP(S) retrieval of image lists and images.
//!
//! The imperative shell around the pure core: it fetches list bytes for
//! [`crate::imagelist`] / [`crate::trust`] to judge, and streams images into
//! the cache's `partial/` area while proving them by sha512, so that the
//! store only ever promotes files whose size and digest are already known
//! to match the signed list.
//!
//! What it guarantees, and why:
//!
//! * **TLS is always verified** (rustls, ring provider), against the system
//!   roots plus an optional transport CA bundle, or that bundle alone. The
//!   original tool ran `wget --no-check-certificate`; there is deliberately
//!   no switch to do that again.
//! * **Bounded everything**: connect, idle (no byte for N seconds) and
//!   overall deadlines; a size cap for lists; `hv:size` for images,
//!   enforced while bytes arrive so a hostile server cannot fill the disk;
//!   bounded redirects, never from https to http; bounded concurrent
//!   downloads ([`DownloadLimiter`]).
//! * **Bounded memory**: image bodies are streamed chunk by chunk through
//!   the hasher into the partial file; nothing holds a whole image.
//! * **Resumable downloads**: an interrupted download keeps its partial
//!   file and a small sidecar (`<partial>.meta`) with the server's
//!   validator; the next attempt re-hashes the partial and asks for the rest
//!   with `Range` + `If-Range`, restarting cleanly when the server cannot
//!   resume or the file changed.
//! * **Credentials stay with their origin**: the subscription's
//!   credentials go only to the list URL's origin (scheme, host, port),
//!   never to image hosts elsewhere and never from https down to plain
//!   http ([`TransferConfig::credential_scope`]); redirects to another
//!   origin drop them.
//! * **No secrets in messages**: user information and credential
//!   parameters are stripped from every URL that reaches an error, a log
//!   line or the sidecar ([`vmlisub_core::redact`]).
//! * `file://` only when explicitly allowed (tests, air-gapped mirrors).

mod api;
mod config;
mod download;
mod error;
mod list;
mod local;
mod redirect;
mod sha512;
mod stamp;
mod tls;
mod url;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{RequestBuilder, Response, Url};
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

pub use api::{ApiBody, ApiRequest, ApiResponse, MAX_API_RESPONSE_BYTES};
pub use config::{APPDB_TOKEN_PASSWORD, Auth, DEFAULT_USER_AGENT, ProxyConfig, TransferConfig};
pub use download::{Downloaded, Progress, sidecar_path};
pub use error::{TimeoutPhase, TransferError};
pub use list::{ListFetch, Validators};
pub use sha512::{SHA512_LEN, Sha512};
pub use stamp::FileStamp;
pub use url::redact_str as redact_url;

use error::{chain_message, find_in_chain};
use redirect::RedirectStop;
use url::{redact, redact_str, take_credentials};

/// Bounds how many image downloads run at once. Cheap to clone; clones
/// share the bound, so one limiter can be shared by the per-subscription
/// [`Transfer`]s that differ only in CA, proxy or credentials.
#[derive(Clone, Debug)]
pub struct DownloadLimiter {
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl DownloadLimiter {
    /// Allows `max` concurrent downloads (at least one: zero would
    /// deadlock every download).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Downloads that could start right now without waiting.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }
}

/// The settings a built client still needs per request.
#[derive(Debug)]
struct Settings {
    idle_timeout: Duration,
    total_timeout: Duration,
    download_timeout: Option<Duration>,
    allow_file_scheme: bool,
}

/// A built HTTP(S) client with its limits. Cheap to clone (the connection
/// pool, settings and limiter are shared).
#[derive(Clone)]
pub struct Transfer {
    client: reqwest::Client,
    settings: Arc<Settings>,
    credentials: Arc<Credentials>,
    limiter: DownloadLimiter,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("settings", &self.settings)
            .field("credentials", &self.credentials)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// The credentials of a client and the one origin they may go to.
struct Credentials {
    auth: Auth,
    /// For requests outside the scope's origin, over https only.
    image_auth: Auth,
    /// The scope URL without its credentials; only its origin is used.
    /// `None`: credentials go nowhere.
    scope: Option<Url>,
    /// The scope URL's own `user:password@`.
    scope_userinfo: Option<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("auth", &self.auth)
            .field("image_auth", &self.image_auth)
            .field("scope", &self.scope.as_ref().map(redact))
            .field(
                "scope_userinfo",
                &self.scope_userinfo.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What goes into one request's `Authorization` header.
enum Credential<'a> {
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

impl Credentials {
    fn new(auth: Auth, image_auth: Auth, scope: Option<&str>) -> Self {
        let parsed = scope
            .and_then(|raw| Url::parse(raw).ok())
            .filter(|url| matches!(url.scheme(), "https" | "http"))
            .filter(|url| url.host_str().is_some_and(|host| !host.is_empty()));
        let (scope, scope_userinfo) = match parsed {
            Some(url) => {
                let (clean, userinfo) = take_credentials(&url);
                (Some(clean), userinfo)
            }
            None => (None, None),
        };
        Self {
            auth,
            image_auth,
            scope,
            scope_userinfo,
        }
    }

    /// The credential for a request to `url` (already without its
    /// `user:password@`, which is `own`): the configured ones on the scope's
    /// origin only; a URL's own user information, which names its origin
    /// itself, everywhere.
    fn for_request<'a>(
        &'a self,
        url: &Url,
        own: Option<&'a (String, String)>,
    ) -> Option<Credential<'a>> {
        let basic = |(user, password): &'a (String, String)| Credential::Basic(user, password);
        let in_scope = self
            .scope
            .as_ref()
            .is_some_and(|scope| scope.origin() == url.origin());
        if !in_scope {
            if self.scope_userinfo.is_some() || !matches!(self.auth, Auth::None) {
                tracing::debug!(
                    url = %redact(url),
                    scope = ?self.scope.as_ref().map(redact),
                    "not sending the subscription's credentials outside the list URL's origin"
                );
            }
            if own.is_none() && url.scheme() == "https" {
                match &self.image_auth {
                    Auth::Basic { user, password } => {
                        return Some(Credential::Basic(user, password));
                    }
                    Auth::Bearer { token } => return Some(Credential::Bearer(token)),
                    Auth::None => {}
                }
            }
            return own.map(basic);
        }
        match &self.auth {
            Auth::Basic { user, password } => Some(Credential::Basic(user, password)),
            Auth::Bearer { token } => Some(Credential::Bearer(token)),
            Auth::None => own.or(self.scope_userinfo.as_ref()).map(basic),
        }
    }
}

/// Where a URL points, after the scheme check.
enum Target {
    Http {
        /// Without credentials.
        url: Url,
        /// Credentials that were in the URL.
        credentials: Option<(String, String)>,
        /// For messages.
        shown: String,
    },
    File {
        path: PathBuf,
        shown: String,
    },
}

impl Transfer {
    /// Builds a client with its own [`DownloadLimiter`] of
    /// `config.max_concurrent_downloads`.
    pub fn new(config: &TransferConfig) -> Result<Self, TransferError> {
        Self::with_limiter(
            config,
            DownloadLimiter::new(config.max_concurrent_downloads),
        )
    }

    /// Builds a client that shares `limiter` (whose bound wins over
    /// `config.max_concurrent_downloads`).
    pub fn with_limiter(
        config: &TransferConfig,
        limiter: DownloadLimiter,
    ) -> Result<Self, TransferError> {
        Self::build(config, limiter, true)
    }

    /// A client for API calls ([`Transfer::api`]) that keeps no idle
    /// connections: API calls are few and spaced (polls), and a pooled
    /// connection that the server closes as it idles (gunicorn after 2 s)
    /// would fail a request that cannot be replayed safely (a create, an
    /// upload).
    pub fn for_api(config: &TransferConfig) -> Result<Self, TransferError> {
        Self::build(
            config,
            DownloadLimiter::new(config.max_concurrent_downloads),
            false,
        )
    }

    fn build(
        config: &TransferConfig,
        limiter: DownloadLimiter,
        pooled: bool,
    ) -> Result<Self, TransferError> {
        let config_error = |detail: String| TransferError::Config { detail };
        let tls = tls::client_config(&config.extra_ca_pem, config.replace_system_roots)?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(config.user_agent.as_str())
            .connect_timeout(config.connect_timeout)
            // Also covers the wait for response headers; body reads get
            // their own idle deadline in `next_chunk`.
            .read_timeout(config.idle_timeout)
            .redirect(redirect::policy(config.max_redirects))
            .referer(false);
        if !pooled {
            builder = builder.pool_max_idle_per_host(0);
        }
        builder = match &config.proxy {
            ProxyConfig::Environment => builder,
            ProxyConfig::Direct => builder.no_proxy(),
            ProxyConfig::Explicit { url, no_proxy } => {
                let proxy = reqwest::Proxy::all(url.as_str()).map_err(|e| {
                    config_error(format!(
                        "proxy URL {}: {}",
                        redact_str(url),
                        chain_message(&e.without_url())
                    ))
                })?;
                let no_proxy = reqwest::NoProxy::from_string(&no_proxy.join(","));
                builder.proxy(proxy.no_proxy(no_proxy))
            }
        };
        let client = builder
            .build()
            .map_err(|e| config_error(chain_message(&e.without_url())))?;
        Ok(Self {
            client,
            settings: Arc::new(Settings {
                idle_timeout: config.idle_timeout,
                total_timeout: config.total_timeout,
                download_timeout: config.download_timeout,
                allow_file_scheme: config.allow_file_scheme,
            }),
            credentials: Arc::new(Credentials::new(
                config.auth.clone(),
                config.image_auth.clone(),
                config.credential_scope.as_deref(),
            )),
            limiter,
        })
    }

    /// The same client (pool, TLS, proxy, limiter) with other credentials
    /// for another scope (see [`TransferConfig::credential_scope`]):
    /// subscriptions that differ only in their secret share connections.
    pub fn with_credentials(&self, auth: Auth, scope: Option<&str>) -> Self {
        Self {
            credentials: Arc::new(Credentials::new(auth, Auth::None, scope)),
            ..self.clone()
        }
    }

    /// The limiter that bounds this client's downloads.
    pub fn limiter(&self) -> &DownloadLimiter {
        &self.limiter
    }

    /// Parses a URL and applies the scheme policy.
    fn target(&self, raw: &str) -> Result<Target, TransferError> {
        let parsed = Url::parse(raw).map_err(|e| TransferError::InvalidUrl {
            url: redact_str(raw),
            detail: e.to_string(),
        })?;
        let shown = redact(&parsed);
        match parsed.scheme() {
            "https" | "http" => {
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(TransferError::InvalidUrl {
                        url: shown,
                        detail: "no host".to_string(),
                    });
                }
                let (url, credentials) = take_credentials(&parsed);
                Ok(Target::Http {
                    url,
                    credentials,
                    shown,
                })
            }
            "file" if self.settings.allow_file_scheme => {
                let path = parsed
                    .to_file_path()
                    .map_err(|()| TransferError::InvalidUrl {
                        url: shown.clone(),
                        detail: "not an absolute local path".to_string(),
                    })?;
                Ok(Target::File { path, shown })
            }
            "file" => Err(TransferError::SchemeRefused {
                url: shown,
                scheme: "file".to_string(),
                hint: " (local files are disabled; enable allow_file_scheme)",
            }),
            other => Err(TransferError::SchemeRefused {
                scheme: other.to_string(),
                url: shown,
                hint: " (use https)",
            }),
        }
    }

    /// A GET with the credentials that may go to `url`'s origin (see
    /// [`Credentials::for_request`]); `url_credentials` are `url`'s own.
    fn get(&self, url: &Url, url_credentials: Option<&(String, String)>) -> RequestBuilder {
        let request = self.client.get(url.clone());
        match self.credentials.for_request(url, url_credentials) {
            Some(Credential::Basic(user, password)) => request.basic_auth(user, Some(password)),
            Some(Credential::Bearer(token)) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request (following redirects) until the response headers
    /// arrive, within `deadline`.
    async fn send(
        &self,
        request: RequestBuilder,
        shown: &str,
        deadline: Option<Instant>,
    ) -> Result<Response, TransferError> {
        let response =
            match deadline {
                Some(deadline) => timeout_at(deadline, request.send()).await.map_err(|_| {
                    TransferError::Timeout {
                        url: shown.to_string(),
                        phase: TimeoutPhase::Total,
                    }
                })?,
                None => request.send().await,
            };
        let response = response.map_err(|e| classify(e, shown, 0))?;
        tracing::debug!(
            url = shown,
            final_url = %redact(response.url()),
            status = response.status().as_u16(),
            "response"
        );
        Ok(response)
    }
}

/// The next body chunk, within the idle timeout and the overall deadline.
async fn next_chunk(
    response: &mut Response,
    idle: Duration,
    deadline: Option<Instant>,
    shown: &str,
    received: u64,
) -> Result<Option<bytes::Bytes>, TransferError> {
    let idle_at = Instant::now() + idle;
    let (at, phase) = match deadline {
        Some(deadline) if deadline <= idle_at => (deadline, TimeoutPhase::Total),
        _ => (idle_at, TimeoutPhase::Idle),
    };
    match timeout_at(at, response.chunk()).await {
        Err(_) => Err(TransferError::Timeout {
            url: shown.to_string(),
            phase,
        }),
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(e)) => Err(classify(e, shown, received)),
    }
}

/// Maps a reqwest error onto [`TransferError`]. `received` is the number
/// of body bytes read so far (for `truncated`).
fn classify(error: reqwest::Error, shown: &str, received: u64) -> TransferError {
    // reqwest's message would include the URL; ours is already redacted.
    let error = error.without_url();
    let url = shown.to_string();
    if let Some(stop) = find_in_chain::<RedirectStop>(&error) {
        return match stop {
            RedirectStop::TooMany { max } => TransferError::TooManyRedirects { url, max: *max },
            RedirectStop::Refused { target, why } => TransferError::RedirectRefused {
                url,
                target: target.clone(),
                why,
            },
        };
    }
    if let Some(tls) = find_in_chain::<rustls::Error>(&error) {
        return TransferError::Tls {
            url,
            detail: tls.to_string(),
        };
    }
    if error.is_timeout() {
        let phase = if error.is_connect() {
            TimeoutPhase::Connect
        } else {
            TimeoutPhase::Idle
        };
        return TransferError::Timeout { url, phase };
    }
    let detail = chain_message(&error);
    if error.is_connect() {
        return TransferError::Connect { url, detail };
    }
    if error.is_body() || error.is_decode() {
        return TransferError::Truncated {
            url,
            received,
            detail,
        };
    }
    // The exchange broke before a usable response (connection closed or
    // reset, malformed response head).
    TransferError::Network { url, detail }
}
