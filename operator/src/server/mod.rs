//! HTTP servers: the read-only artifact server (images and lists, open to
//! everyone with `vmlisub serve`, token-gated per namespace in the operator
//! by default) and, with the operator, the metrics and probe endpoints on a
//! port of their own. Both run the same connection loop with its limits
//! ([`http`]).

pub mod access;
pub mod artifacts;
pub mod http;
pub mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::store::CacheStore;

/// A port that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}")]
pub struct ListenError {
    pub address: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// The operator's two servers (every replica runs them, leader or not).
pub struct OperatorServers {
    /// `/images/`, `/lists/`, probes.
    pub artifacts: SocketAddr,
    /// `/metrics`, probes.
    pub metrics: SocketAddr,
    pub limits: http::Limits,
    pub access: access::AccessMode,
    /// Where the public-list watch looks (all namespaces when `None`).
    pub watch_namespace: Option<String>,
    pub store: CacheStore,
    pub lists_dir: PathBuf,
    pub render_metrics: metrics::MetricsFn,
    /// `vmlisub_artifact_access_total{via,verdict}`.
    pub access_counted: prometheus::IntCounterVec,
    pub ready: Arc<AtomicBool>,
}

impl OperatorServers {
    /// Binds both ports and serves them on background tasks.
    pub async fn start(self, client: kube::Client) -> Result<(), ListenError> {
        let artifacts_listener = bind(self.artifacts).await?;
        let metrics_listener = bind(self.metrics).await?;
        let access = access::Access::start(
            &self.access,
            client,
            self.watch_namespace.as_deref(),
            self.access_counted,
        );
        let mode = match &access {
            access::Access::Anonymous => "anonymous",
            access::Access::Token(_) => "token",
        };
        let artifacts = artifacts::Artifacts {
            store: self.store,
            lists_dir: Some(self.lists_dir),
            ready: Some(Arc::clone(&self.ready)),
            access,
        };
        let endpoint = metrics::MetricsEndpoint {
            render: self.render_metrics,
            ready: Some(self.ready),
        };
        let limits = self.limits;
        let address = artifacts_listener.local_addr().unwrap_or(self.artifacts);
        tracing::info!(%address, access = mode, ?limits, "serving /images, /lists, /healthz, /readyz");
        tokio::spawn(async move {
            if let Err(err) = http::serve(artifacts_listener, Arc::new(artifacts), limits).await {
                tracing::error!(error = %err, "artifact server stopped");
            }
        });
        let address = metrics_listener.local_addr().unwrap_or(self.metrics);
        tracing::info!(%address, "serving /metrics, /healthz, /readyz");
        tokio::spawn(async move {
            if let Err(err) = http::serve(metrics_listener, Arc::new(endpoint), limits).await {
                tracing::error!(error = %err, "metrics server stopped");
            }
        });
        Ok(())
    }
}

async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, ListenError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ListenError { address, source })
}
