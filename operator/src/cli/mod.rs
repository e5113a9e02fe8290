//! Subcommands of the `vmlisub` binary.
//!
//! Each subcommand lives in its own module and returns an [`ExitCode`];
//! failures are printed as one line, `error: <reason-code>: <explanation>`,
//! so that scripts can branch on the stable code.

use std::process::ExitCode;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::reason::Reason;

pub mod cache;
pub mod crds;
pub mod images;
pub mod operator;
pub mod output;
pub mod serve;
pub mod subscribe;
pub mod sync;
pub mod transport;
pub mod verify;

/// Subscribe to signed HEPiX virtual-machine image lists.
#[derive(Debug, Parser)]
#[command(name = "vmlisub", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `warn` or `vmlisub=trace`.
    /// Defaults to $RUST_LOG, else `error`: stderr then carries only the
    /// one-line verdict of a failure.
    #[arg(long, global = true)]
    pub log_level: Option<String>,

    /// Log format: `text`, or `json` (one object per line, for log
    /// collectors in a cluster).
    #[arg(long, global = true, env = "VMLISUB_LOG_FORMAT", default_value = "text",
          value_parser = ["text", "json"])]
    pub log_format: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify a signed image list (a file, or a URL) and print it.
    Verify(verify::VerifyArgs),
    /// Verify a list by URL and print an Endorser and an
    /// ImageListSubscription for it, for review.
    Subscribe(subscribe::SubscribeArgs),
    /// Fetch, verify and cache images from manifests, without Kubernetes.
    Sync(sync::SyncArgs),
    /// List each list's images: available, subscribed, not subscribed or
    /// expired (like vmcatcher_image -l).
    Images(images::ImagesArgs),
    /// Look into the image cache and its expired archive (read-only).
    Cache(cache::CacheArgs),
    /// Serve the verified images of a cache read-only over HTTP.
    Serve(serve::ServeArgs),
    /// Print the CustomResourceDefinitions (YAML).
    Crds(crds::CrdsArgs),
    /// Run the Kubernetes operator (controllers, artifact server, metrics).
    Operator(operator::OperatorArgs),
}

/// Logs go to stderr, structured, so stdout stays machine-readable.
pub fn init_logging(level: Option<&str>, json: bool) {
    let filter = level
        .map(tracing_subscriber::EnvFilter::new)
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// Built-in CRL refresh (the job `fetch-crl` did for the original), shared
/// by `sync` and `operator`.
#[derive(Debug, Clone, Args)]
pub struct CrlRefreshArgs {
    /// Where refreshed CRLs are written (`HASH.r0`) and read from, next to
    /// the read-only CA directory. Default: `crls` beside the state file
    /// (sync), `<cache-dir>/state/crls` (operator).
    #[arg(long, env = "VMLISUB_CRL_DIR")]
    pub crl_dir: Option<PathBuf>,

    /// Time between two CRL refreshes (Go-style: 6h, 30m, 90s), stretched
    /// by up to 10% of jitter.
    #[arg(long, env = "VMLISUB_CRL_REFRESH_INTERVAL", default_value = "6h",
          value_parser = parse_interval)]
    pub crl_refresh_interval: Duration,

    /// Do not fetch CRLs (an external fetch-crl keeps the CA directory's
    /// CRLs current).
    #[arg(long, env = "VMLISUB_NO_CRL_REFRESH")]
    pub no_crl_refresh: bool,
}

fn parse_interval(value: &str) -> Result<Duration, String> {
    let interval = crate::api::duration::parse_duration(value).map_err(|err| err.to_string())?;
    if interval < Duration::from_secs(10) {
        return Err(format!(
            "{value}: the CRL refresh interval must be at least 10s"
        ));
    }
    Ok(interval)
}

impl CrlRefreshArgs {
    /// The CRL directory, `default` unless given.
    pub fn dir_or(&self, default: &Path) -> PathBuf {
        self.crl_dir
            .clone()
            .unwrap_or_else(|| default.to_path_buf())
    }

    /// The refresh interval, or `None` when refreshing is off.
    pub fn interval(&self) -> Option<Duration> {
        (!self.no_crl_refresh).then_some(self.crl_refresh_interval)
    }
}

/// Limits of the HTTP server(s), shared by `serve` and `operator` (see
/// `server::http`).
#[derive(Debug, Clone, Args)]
pub struct ServerLimitArgs {
    /// Time a client has to send a complete request head (Go-style: 10s,
    /// 1m), counted from the accept and again after every response on a
    /// kept-alive connection; then the connection is closed.
    #[arg(long, env = "VMLISUB_HEADER_READ_TIMEOUT", default_value = "10s",
          value_parser = parse_server_timeout)]
    pub header_read_timeout: Duration,

    /// A connection on which no byte moves in either direction for this
    /// long (e.g. a client that stopped reading) is closed.
    #[arg(long, env = "VMLISUB_IDLE_TIMEOUT", default_value = "60s",
          value_parser = parse_server_timeout)]
    pub idle_timeout: Duration,

    /// Connections served at a time (per port); more wait in the listen
    /// backlog until one closes.
    #[arg(long, env = "VMLISUB_MAX_CONNECTIONS", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_connections: u32,
}

fn parse_server_timeout(value: &str) -> Result<Duration, String> {
    let timeout = crate::api::duration::parse_duration(value).map_err(|err| err.to_string())?;
    if timeout < Duration::from_secs(1) || timeout > Duration::from_secs(3600) {
        return Err(format!("{value}: must be between 1s and 1h"));
    }
    Ok(timeout)
}

impl ServerLimitArgs {
    pub fn limits(&self) -> crate::server::http::Limits {
        crate::server::http::Limits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Verify(args) => verify::run(&args),
        Command::Subscribe(args) => subscribe::run(&args),
        Command::Images(args) => images::run(&args),
        Command::Cache(args) => cache::run(&args),
        Command::Crds(args) => crds::run(&args),
        Command::Sync(args) => sync::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Operator(args) => operator::run(&args),
    }
}

/// Builds a tokio runtime, or prints why not and gives the exit code.
pub(crate) fn runtime(
    mut builder: tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|err| {
        eprintln!("error: runtime: {err}");
        ExitCode::from(1)
    })
}

/// Prints a failure in the stable one-line form and returns exit code 1.
pub(crate) fn fail(error: &(impl Reason + std::fmt::Display)) -> ExitCode {
    eprintln!("error: {}: {}", error.reason(), error);
    ExitCode::from(1)
}
