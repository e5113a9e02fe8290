//! `vmlisub operator`: run the controllers against the cluster of the
//! current kubeconfig or in-cluster service account.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::controller::leader::LeaderConfig;
use crate::controller::{self, OperatorConfig};
use crate::server::access::{AccessMode, TokenConfig};
use crate::store::RetentionPolicy;

#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// The image cache (a persistent volume): partial/, endorsed/, expired/,
    /// and the operator's state in state/. The only path written.
    #[arg(long, env = "VMLISUB_CACHE_DIR", default_value = "/var/cache/vmimages")]
    pub cache_dir: PathBuf,

    /// The CA directory (IGTF layout), reloaded when its files change.
    #[arg(
        long,
        env = "VMLISUB_CA_DIR",
        default_value = "/etc/grid-security/certificates"
    )]
    pub ca_dir: PathBuf,

    /// Address of the artifact server: /images/, /lists/, /healthz,
    /// /readyz.
    #[arg(long, env = "VMLISUB_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Address of the metrics server: /metrics, /healthz, /readyz (a port
    /// of its own, so that scraping and artifact access are governed
    /// separately).
    #[arg(long, env = "VMLISUB_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,

    /// Who may read images and lists: `token` (a Kubernetes ServiceAccount
    /// token allowed to get ImageSubscriptions in the namespace, checked
    /// with TokenReview and SubjectAccessReview; lists with
    /// spec.publicArtifacts are open to all) or `none` (everyone who can
    /// reach the port reads everything).
    #[arg(long, env = "VMLISUB_ARTIFACT_AUTH", default_value = "token",
          value_parser = ["token", "none"])]
    pub artifact_auth: String,

    /// With --artifact-auth token: accept only tokens issued for this
    /// audience (e.g. a projected ServiceAccount token with `audience:
    /// vmlisub`), so that a token sent to the artifact server is useless
    /// against the API server. Default: the API server's own audiences.
    #[arg(long, env = "VMLISUB_ARTIFACT_TOKEN_AUDIENCE")]
    pub artifact_token_audience: Option<String>,

    #[command(flatten)]
    pub limits: super::ServerLimitArgs,

    /// Base URL under which clients reach this server (recorded in each
    /// ImageSubscription's status.artifact.url), e.g.
    /// http://vmlisub.vmlisub-system.svc:8080.
    #[arg(long, env = "VMLISUB_ARTIFACT_BASE_URL")]
    pub artifact_base_url: Option<String>,

    /// Watch only this namespace (a Role there suffices); all by default.
    #[arg(long, env = "VMLISUB_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// Elect a leader with a Lease: only the holder reconciles.
    #[arg(long, env = "VMLISUB_LEADER_ELECT")]
    pub leader_elect: bool,

    /// Namespace of the Lease (default: $POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Name of the Lease.
    #[arg(long, default_value = "vmlisub-leader")]
    pub leader_election_name: String,

    /// This replica's identity in the Lease (default: $POD_NAME, else the
    /// host name).
    #[arg(long, env = "POD_NAME")]
    pub leader_election_identity: Option<String>,

    /// Image downloads at a time, over all subscriptions.
    #[arg(long, default_value_t = 4)]
    pub max_concurrent_downloads: usize,

    /// Reconciles in flight per kind (1-1000). Each holds an API
    /// connection and its objects while it runs; thousands at once (a new
    /// cluster, a restart) cost memory and API server load without
    /// finishing sooner.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_concurrent_reconciles: u16,

    /// Allow file:// URLs for lists and images (tests and air-gapped
    /// mirrors; never for untrusted namespaces).
    #[arg(long)]
    pub allow_file_urls: bool,

    /// Largest clock skew tolerated for a list's creation time, in seconds.
    #[arg(long, default_value_t = 300)]
    pub max_clock_skew: u64,

    /// Keep at most this many expired images.
    #[arg(long)]
    pub keep_expired: Option<usize>,

    /// Delete expired images older than this many days.
    #[arg(long)]
    pub expired_max_age_days: Option<u64>,

    /// Keep at most this many bytes of expired images.
    #[arg(long)]
    pub expired_max_bytes: Option<u64>,

    #[command(flatten)]
    pub crl: super::CrlRefreshArgs,

    /// Create the Kubernetes Jobs of ImageListSubscriptions' `spec.hooks`
    /// (needs create/get/list/watch/delete on batch Jobs). Whoever may edit
    /// an ImageListSubscription can then run a pod in its namespace: turn
    /// it on where they may create Jobs anyway.
    #[arg(long, env = "VMLISUB_HOOK_JOBS")]
    pub hook_jobs: bool,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| format!("vmlisub-{}", std::process::id()))
}

pub fn run(args: &OperatorArgs) -> ExitCode {
    let leader = if args.leader_elect {
        let Some(namespace) = args.leader_election_namespace.clone() else {
            eprintln!(
                "error: leader-election: --leader-elect needs --leader-election-namespace or $POD_NAMESPACE"
            );
            return ExitCode::from(2);
        };
        Some(LeaderConfig::new(
            namespace,
            args.leader_election_name.clone(),
            args.leader_election_identity
                .clone()
                .unwrap_or_else(host_name),
        ))
    } else {
        None
    };
    let config = OperatorConfig {
        cache_dir: args.cache_dir.clone(),
        ca_dir: args.ca_dir.clone(),
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        artifact_access: if args.artifact_auth == "none" {
            AccessMode::None
        } else {
            AccessMode::Token(TokenConfig {
                audience: args
                    .artifact_token_audience
                    .clone()
                    .filter(|audience| !audience.is_empty()),
                ..TokenConfig::default()
            })
        },
        server_limits: args.limits.limits(),
        artifact_base_url: args.artifact_base_url.clone(),
        watch_namespace: args.watch_namespace.clone(),
        leader,
        max_concurrent_downloads: args.max_concurrent_downloads.max(1),
        max_concurrent_reconciles: args.max_concurrent_reconciles,
        allow_file_urls: args.allow_file_urls,
        retention: RetentionPolicy {
            max_count: args.keep_expired,
            max_age: args
                .expired_max_age_days
                .map(|days| Duration::from_secs(days.saturating_mul(86_400))),
            max_bytes: args.expired_max_bytes,
        },
        max_clock_skew: Duration::from_secs(args.max_clock_skew),
        crl_dir: args.crl.dir_or(&args.cache_dir.join("state").join("crls")),
        crl_refresh_interval: args.crl.interval(),
        hook_jobs: args.hook_jobs,
    };
    let runtime = match super::runtime(tokio::runtime::Builder::new_multi_thread()) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(controller::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => super::fail(&err),
    }
}
