//! The operator's metrics port: `/metrics` (Prometheus text format) and the
//! probes, apart from the artifact port, so that who may scrape and who may
//! download are governed separately (NetworkPolicy, Service, exposure).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::artifacts::probe;
use super::http::{Body, Handler, text};

/// A `/metrics` renderer (the operator's Prometheus registry).
pub type MetricsFn = Box<dyn Fn() -> String + Send + Sync>;

/// What the metrics port serves.
pub struct MetricsEndpoint {
    pub render: MetricsFn,
    /// `/readyz` answers 503 until this is set.
    pub ready: Option<Arc<AtomicBool>>,
}

impl Handler for MetricsEndpoint {
    async fn handle(self: Arc<Self>, request: Request<hyper::body::Incoming>) -> Response<Body> {
        let path = request.uri().path();
        match (request.method(), path) {
            (&Method::GET | &Method::HEAD, "/healthz" | "/readyz") => {
                probe(path, self.ready.as_deref())
            }
            (&Method::GET, "/metrics") => {
                let body = (self.render)();
                let mut response = text(StatusCode::OK, body.trim_end());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            (&Method::GET | &Method::HEAD, _) => text(StatusCode::NOT_FOUND, "not found"),
            _ => {
                let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "read-only");
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                response
            }
        }
    }
}
