//! Who may read a namespace's images and lists from the artifact server.
//!
//! [`Access::Anonymous`] serves everyone (`vmlisub serve`, and the operator
//! with `--artifact-auth none`). [`Access::Token`] (the operator's default)
//! serves `/images/<ns>/<list>/...` and `/lists/<ns>/<list>.*` only to a
//! client that presents a Kubernetes bearer token (a ServiceAccount token,
//! `Authorization: Bearer ...`) which
//!
//! 1. the API server authenticates (TokenReview, optionally for an audience
//!    of vmlisub's own, so that the token is useless against the API
//!    server itself), and
//! 2. whose user may `get` `imagesubscriptions.vmli.hepix.org` in `<ns>`
//!    (SubjectAccessReview),
//!
//! unless the ImageListSubscription `<ns>/<list>` sets
//! `spec.publicArtifacts: true`, which serves its images and list to anyone.
//!
//! Answers are cached per (token, namespace), positive ones for
//! [`TokenConfig::allowed_ttl`] and negative ones for
//! [`TokenConfig::denied_ttl`], in a map of bounded size, so a client
//! resuming a download with many Range requests costs two API calls a
//! minute, not two per request. A revoked grant or token can therefore be
//! honoured for up to `allowed_ttl` more. API calls are bounded in number
//! ([`TokenConfig::max_concurrent_reviews`]) and in time
//! ([`TokenConfig::review_timeout`]); when the API server cannot answer, the
//! request gets 503 and nothing is cached.
//!
//! Each decision is counted by how it was made and its verdict
//! (`vmlisub_artifact_access_total{via,verdict}`), so that the reviews the
//! artifact server costs the API server, and what the cache saves, show.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use hyper::HeaderMap;
use hyper::header;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, ResourceExt as _};
use prometheus::IntCounterVec;
use sha2::Digest as _;

use crate::api::ImageListSubscription;

/// Longest bearer token accepted (ServiceAccount tokens are 1-2 KB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What the SubjectAccessReview asks: may the user `get` ImageSubscriptions
/// in the namespace?
pub const REVIEW_GROUP: &str = "vmli.hepix.org";
pub const REVIEW_RESOURCE: &str = "imagesubscriptions";
pub const REVIEW_VERB: &str = "get";

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Bearer realm=\"vmlisub\"";
/// The challenge when a token was presented but is not accepted (RFC 6750).
pub const CHALLENGE_INVALID: &str = "Bearer realm=\"vmlisub\", error=\"invalid_token\"";

/// How the operator's artifact server decides access (`--artifact-auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessMode {
    /// Everyone may read everything (the server's network exposure is the
    /// only guard).
    None,
    /// ServiceAccount tokens, per namespace; `spec.publicArtifacts` lists
    /// are anonymous.
    Token(TokenConfig),
}

/// Settings of token access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// The audience tokens must be issued for (TokenReview
    /// `spec.audiences`); `None`: the API server's own audiences.
    pub audience: Option<String>,
    /// How long an allowed (token, namespace) stays allowed.
    pub allowed_ttl: Duration,
    /// How long a refused one stays refused.
    pub denied_ttl: Duration,
    /// Cached answers at most.
    pub cache_entries: usize,
    /// TokenReview + SubjectAccessReview pairs in flight at most.
    pub max_concurrent_reviews: usize,
    /// Time allowed for one review, waiting for a slot included.
    pub review_timeout: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            audience: None,
            allowed_ttl: Duration::from_secs(60),
            denied_ttl: Duration::from_secs(10),
            cache_entries: 4096,
            max_concurrent_reviews: 8,
            review_timeout: Duration::from_secs(5),
        }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// 401: no usable token (`presented`: a token came but is not valid).
    Unauthenticated {
        presented: bool,
    },
    /// 403: a valid token whose user may not read this namespace.
    Forbidden,
    /// 503: the API server did not answer.
    Unavailable,
}

impl Verdict {
    /// The `verdict` label of `vmlisub_artifact_access_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Why a review could not be made (never cached: the request gets 503).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("TokenReview failed: {0}")]
    TokenReview(#[source] kube::Error),
    #[error("SubjectAccessReview for namespace {namespace} failed: {source}")]
    AccessReview {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("{what} returned no status")]
    NoStatus { what: &'static str },
    #[error("no answer from the API server within {0:?}")]
    Timeout(Duration),
}

/// The access policy of an artifact server.
#[derive(Clone)]
pub enum Access {
    Anonymous,
    Token(Arc<TokenAccess>),
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Token(_) => f.write_str("Token"),
        }
    }
}

impl Access {
    /// The policy of `mode`; token access starts watching
    /// ImageListSubscriptions (in `namespace`, or all) for `publicArtifacts`.
    /// Must run inside a tokio runtime. Decisions are counted in `counted`
    /// (labels `via`, `verdict`).
    pub fn start(
        mode: &AccessMode,
        client: Client,
        namespace: Option<&str>,
        counted: IntCounterVec,
    ) -> Self {
        match mode {
            AccessMode::None => Self::Anonymous,
            AccessMode::Token(config) => {
                let public = PublicLists::default();
                let api: Api<ImageListSubscription> = match namespace {
                    Some(namespace) => Api::namespaced(client.clone(), namespace),
                    None => Api::all(client.clone()),
                };
                tokio::spawn(public.clone().watch(api));
                Self::Token(Arc::new(TokenAccess::new(
                    client,
                    config.clone(),
                    public,
                    counted,
                )))
            }
        }
    }

    /// May the client of `headers` read list `list` of `namespace` (its
    /// images and the list itself)? Both names are validated already.
    pub async fn check(&self, headers: &HeaderMap, namespace: &str, list: &str) -> Verdict {
        match self {
            Self::Anonymous => Verdict::Allowed,
            Self::Token(access) => access.check(headers, namespace, list).await,
        }
    }
}

/// Token access: reviews, their cache, the public lists.
pub struct TokenAccess {
    client: Client,
    config: TokenConfig,
    public: PublicLists,
    cache: Mutex<ReviewCache>,
    reviews: tokio::sync::Semaphore,
    counted: IntCounterVec,
}

impl TokenAccess {
    fn new(
        client: Client,
        config: TokenConfig,
        public: PublicLists,
        counted: IntCounterVec,
    ) -> Self {
        Self {
            cache: Mutex::new(ReviewCache::new(config.cache_entries)),
            reviews: tokio::sync::Semaphore::new(config.max_concurrent_reviews.max(1)),
            client,
            config,
            public,
            counted,
        }
    }

    async fn check(&self, headers: &HeaderMap, namespace: &str, list: &str) -> Verdict {
        let (via, verdict) = self.decide(headers, namespace, list).await;
        self.counted
            .with_label_values(&[via, verdict.label()])
            .inc();
        verdict
    }

    /// The verdict and how it was reached: `public`, `none` (no usable
    /// token), `cache` or `review`.
    async fn decide(
        &self,
        headers: &HeaderMap,
        namespace: &str,
        list: &str,
    ) -> (&'static str, Verdict) {
        if self.public.contains(namespace, list) {
            return ("public", Verdict::Allowed);
        }
        let token = match bearer_token(headers) {
            Ok(Some(token)) => token,
            Ok(None) => return ("none", Verdict::Unauthenticated { presented: false }),
            Err(why) => {
                tracing::debug!(%namespace, why, "artifact request with an unusable Authorization header");
                return ("none", Verdict::Unauthenticated { presented: true });
            }
        };
        let key = cache_key(token, namespace);
        let now = Instant::now();
        if let Some(verdict) = self.cached(&key, now) {
            return ("cache", verdict);
        }
        let reviewed = tokio::time::timeout(self.config.review_timeout, async {
            let _slot = self.reviews.acquire().await;
            self.review(token, namespace).await
        })
        .await
        .unwrap_or(Err(ReviewError::Timeout(self.config.review_timeout)));
        match reviewed {
            Ok(verdict) => {
                let ttl = if verdict == Verdict::Allowed {
                    self.config.allowed_ttl
                } else {
                    self.config.denied_ttl
                };
                self.cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, verdict.clone(), Instant::now() + ttl);
                ("review", verdict)
            }
            Err(err) => {
                tracing::warn!(%namespace, error = %err, "artifact access review failed");
                ("review", Verdict::Unavailable)
            }
        }
    }

    fn cached(&self, key: &CacheKey, now: Instant) -> Option<Verdict> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key, now)
    }

    /// TokenReview, then SubjectAccessReview for the user it names.
    async fn review(&self, token: &str, namespace: &str) -> Result<Verdict, ReviewError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: self.config.audience.clone().map(|audience| vec![audience]),
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(ReviewError::TokenReview)?;
        let status = reviewed.status.ok_or(ReviewError::NoStatus {
            what: "TokenReview",
        })?;
        // Some authenticators (webhooks) ignore the audiences asked for:
        // the answer must name ours.
        let audience_ok = match &self.config.audience {
            Some(audience) => status
                .audiences
                .as_ref()
                .is_some_and(|audiences| audiences.contains(audience)),
            None => true,
        };
        let user = match status.user {
            Some(user) if status.authenticated == Some(true) && audience_ok => user,
            _ => {
                tracing::debug!(%namespace, error = status.error.as_deref().unwrap_or_default(), "artifact token not authenticated");
                return Ok(Verdict::Unauthenticated { presented: true });
            }
        };
        let username = user.username.clone().unwrap_or_default();
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                uid: user.uid,
                groups: user.groups,
                extra: user.extra,
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_string()),
                    group: Some(REVIEW_GROUP.to_string()),
                    resource: Some(REVIEW_RESOURCE.to_string()),
                    verb: Some(REVIEW_VERB.to_string()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &access)
            .await
            .map_err(|source| ReviewError::AccessReview {
                namespace: namespace.to_string(),
                source,
            })?;
        let allowed = answer
            .status
            .ok_or(ReviewError::NoStatus {
                what: "SubjectAccessReview",
            })?
            .allowed;
        tracing::debug!(%namespace, user = %username, allowed, "artifact access reviewed");
        Ok(if allowed {
            Verdict::Allowed
        } else {
            Verdict::Forbidden
        })
    }
}

/// The bearer token of a request: `Ok(None)` without an Authorization
/// header, `Err(why)` for one that is not a single well-formed bearer token
/// of at most [`MAX_TOKEN_BYTES`] (RFC 6750 `b64token` characters).
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("several Authorization headers");
    }
    let value = value.to_str().map_err(|_| "not ASCII")?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or("no credentials after the scheme")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("not a bearer token");
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err("empty token");
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err("token too long");
    }
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    {
        return Err("not a b64token");
    }
    Ok(Some(token))
}

/// SHA-256 of token and namespace: the cache never holds a token.
type CacheKey = [u8; 32];

fn cache_key(token: &str, namespace: &str) -> CacheKey {
    let mut hasher = sha2::Sha256::new();
    hasher.update(token.as_bytes());
    // A namespace is a DNS label: no NUL, so the pair is unambiguous.
    hasher.update([0u8]);
    hasher.update(namespace.as_bytes());
    hasher.finalize().into()
}

/// Verdicts until their expiry, at most `capacity` of them.
struct ReviewCache {
    capacity: usize,
    entries: HashMap<CacheKey, (Verdict, Instant)>,
}

impl ReviewCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    fn get(&self, key: &CacheKey, now: Instant) -> Option<Verdict> {
        self.entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(verdict, _)| verdict.clone())
    }

    /// Full: expired entries go first, then the one closest to expiry.
    fn insert(&mut self, key: CacheKey, verdict: Verdict, expires: Instant) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let now = Instant::now();
            self.entries.retain(|_, (_, at)| *at > now);
            if self.entries.len() >= self.capacity
                && let Some(first) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(key, _)| *key)
            {
                self.entries.remove(&first);
            }
        }
        self.entries.insert(key, (verdict, expires));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The ImageListSubscriptions with `spec.publicArtifacts: true`, kept
/// current by a watch. Until the first list completes nothing is public
/// (closed by default).
#[derive(Clone, Default)]
pub struct PublicLists {
    inner: Arc<RwLock<PublicState>>,
}

#[derive(Default)]
struct PublicState {
    lists: HashSet<(String, String)>,
    /// The relist in progress (a watch restart), swapped in when done.
    relisting: Option<HashSet<(String, String)>>,
}

impl PublicLists {
    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .lists
            .contains(&(namespace.to_string(), name.to_string()))
    }

    /// Takes in one watch event.
    pub fn apply(&self, event: watcher::Event<ImageListSubscription>) {
        let key =
            |list: &ImageListSubscription| (list.namespace().unwrap_or_default(), list.name_any());
        let mut state = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Init => state.relisting = Some(HashSet::new()),
            watcher::Event::InitApply(list) => {
                if list.spec.public_artifacts {
                    let key = key(&list);
                    state.relisting.get_or_insert_with(HashSet::new).insert(key);
                }
            }
            watcher::Event::InitDone => {
                let lists = state.relisting.take().unwrap_or_default();
                tracing::debug!(public = lists.len(), "public artifact lists listed");
                state.lists = lists;
            }
            watcher::Event::Apply(list) => {
                let key = key(&list);
                if list.spec.public_artifacts {
                    state.lists.insert(key);
                } else {
                    state.lists.remove(&key);
                }
            }
            watcher::Event::Delete(list) => {
                state.lists.remove(&key(&list));
            }
        }
    }

    /// Follows `api` for ever (retrying with backoff).
    async fn watch(self, api: Api<ImageListSubscription>) {
        let mut events = std::pin::pin!(
            watcher(api, watcher::Config::default().any_semantic()).default_backoff()
        );
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => self.apply(event),
                Err(err) => {
                    tracing::warn!(error = %err, "watching ImageListSubscriptions for publicArtifacts")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::api::ImageListSubscriptionSpec;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::AUTHORIZATION, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly_and_bounded() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_";
        assert_eq!(bearer_token(&headers(&[])), Ok(None));
        assert_eq!(
            bearer_token(&headers(&[&format!("Bearer {jwt}")])),
            Ok(Some(jwt))
        );
        assert_eq!(
            bearer_token(&headers(&[&format!("bearer  {jwt}")])),
            Ok(Some(jwt))
        );
        assert_eq!(bearer_token(&headers(&["Bearer abc=="])), Ok(Some("abc==")));
        for bad in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer ==",
            "Token abc",
        ] {
            assert!(bearer_token(&headers(&[bad])).is_err(), "{bad}");
        }
        assert!(bearer_token(&headers(&["Bearer a", "Bearer b"])).is_err());
        let longest = "a".repeat(MAX_TOKEN_BYTES);
        assert_eq!(
            bearer_token(&headers(&[&format!("Bearer {longest}")])),
            Ok(Some(longest.as_str()))
        );
        let too_long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(bearer_token(&headers(&[&too_long])), Err("token too long"));
    }

    #[test]
    fn cache_keys_bind_the_token_to_the_namespace() {
        assert_ne!(cache_key("t", "ns-a"), cache_key("t", "ns-b"));
        assert_ne!(cache_key("t1", "ns"), cache_key("t2", "ns"));
        assert_eq!(cache_key("t", "ns"), cache_key("t", "ns"));
    }

    #[test]
    fn cached_verdicts_expire_and_the_cache_stays_bounded() {
        let now = Instant::now();
        let mut cache = ReviewCache::new(3);
        let key = |n: u8| [n; 32];
        cache.insert(key(1), Verdict::Allowed, now + Duration::from_secs(60));
        assert_eq!(cache.get(&key(1), now), Some(Verdict::Allowed));
        assert_eq!(cache.get(&key(1), now + Duration::from_secs(61)), None);
        assert_eq!(cache.get(&key(2), now), None);
        cache.insert(key(2), Verdict::Forbidden, now + Duration::from_secs(10));
        cache.insert(key(3), Verdict::Forbidden, now + Duration::from_secs(20));
        // Full: the entry closest to expiry (2) makes room.
        cache.insert(key(4), Verdict::Allowed, now + Duration::from_secs(60));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&key(2), now), None);
        assert_eq!(cache.get(&key(3), now), Some(Verdict::Forbidden));
        assert_eq!(cache.get(&key(4), now), Some(Verdict::Allowed));
        // Updating a present key never evicts another.
        cache.insert(key(3), Verdict::Allowed, now + Duration::from_secs(60));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&key(1), now), Some(Verdict::Allowed));
        // Many distinct keys (a flood of bad tokens): still bounded.
        for n in 10..200 {
            cache.insert(key(n), Verdict::Forbidden, now + Duration::from_secs(10));
        }
        assert_eq!(cache.len(), 3);
    }

    fn list(namespace: &str, name: &str, public: bool) -> ImageListSubscription {
        let mut spec: ImageListSubscriptionSpec =
            serde_json::from_value(serde_json::json!({"url": "https://example.org/l"})).unwrap();
        spec.public_artifacts = public;
        let mut list = ImageListSubscription::new(name, spec);
        list.metadata.namespace = Some(namespace.to_string());
        list
    }

    /// Each decision is counted by how it was made: the public opt-in, no
    /// usable token, the cache, a review (here failing: the API server's
    /// port refuses, so 503 and nothing cached).
    #[tokio::test]
    async fn decisions_are_counted_by_how_they_were_made() {
        let counted =
            IntCounterVec::new(prometheus::Opts::new("access", "test"), &["via", "verdict"])
                .unwrap();
        let client =
            Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap())).unwrap();
        let public = PublicLists::default();
        public.apply(watcher::Event::Apply(list("ns", "open", true)));
        let access = TokenAccess::new(client, TokenConfig::default(), public, counted.clone());
        let count = |via: &str, verdict: &str| counted.with_label_values(&[via, verdict]).get();

        assert_eq!(
            access.check(&headers(&[]), "ns", "open").await,
            Verdict::Allowed
        );
        assert_eq!(
            access.check(&headers(&[]), "ns", "closed").await,
            Verdict::Unauthenticated { presented: false }
        );
        assert_eq!(
            access
                .check(&headers(&["Basic dXNlcjpwYXNz"]), "ns", "closed")
                .await,
            Verdict::Unauthenticated { presented: true }
        );
        let token = headers(&["Bearer abc"]);
        for _ in 0..2 {
            assert_eq!(
                access.check(&token, "ns", "closed").await,
                Verdict::Unavailable
            );
        }
        access.cache.lock().unwrap().insert(
            cache_key("abc", "ns"),
            Verdict::Allowed,
            Instant::now() + Duration::from_secs(60),
        );
        for _ in 0..3 {
            assert_eq!(access.check(&token, "ns", "closed").await, Verdict::Allowed);
        }
        assert_eq!(
            (
                count("public", "allowed"),
                count("none", "unauthenticated"),
                count("review", "unavailable"),
                count("cache", "allowed"),
            ),
            (1, 2, 2, 3)
        );
    }

    #[test]
    fn public_lists_follow_the_watch_and_start_closed() {
        let public = PublicLists::default();
        assert!(!public.contains("ns", "open"));
        public.apply(watcher::Event::Init);
        public.apply(watcher::Event::InitApply(list("ns", "open", true)));
        public.apply(watcher::Event::InitApply(list("ns", "closed", false)));
        // Not before the initial list is complete.
        assert!(!public.contains("ns", "open"));
        public.apply(watcher::Event::InitDone);
        assert!(public.contains("ns", "open"));
        assert!(!public.contains("ns", "closed"));
        assert!(!public.contains("other", "open"));
        public.apply(watcher::Event::Apply(list("ns", "closed", true)));
        public.apply(watcher::Event::Apply(list("ns", "open", false)));
        assert!(public.contains("ns", "closed") && !public.contains("ns", "open"));
        public.apply(watcher::Event::Delete(list("ns", "closed", true)));
        assert!(!public.contains("ns", "closed"));
        // A relist replaces the set, dropping what vanished meanwhile.
        public.apply(watcher::Event::Apply(list("ns", "gone", true)));
        public.apply(watcher::Event::Init);
        public.apply(watcher::Event::InitApply(list("ns", "new", true)));
        assert!(
            public.contains("ns", "gone"),
            "kept until the relist is done"
        );
        public.apply(watcher::Event::InitDone);
        assert!(public.contains("ns", "new") && !public.contains("ns", "gone"));
    }
}
