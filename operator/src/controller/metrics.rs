//! Prometheus metrics of the operator, served on `/metrics`.
//!
//! One registry per process; label values come from closed sets (kinds,
//! results, reason codes, phases) or from object names the cluster already
//! bounds, so the series count stays proportional to the objects.

use prometheus::{
    Encoder as _, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The operator's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: IntCounterVec,
    pub reconcile_duration: HistogramVec,
    pub verification_failures: IntCounterVec,
    pub download_bytes: IntCounter,
    pub download_duration: HistogramVec,
    pub download_failures: IntCounterVec,
    pub images: IntGaugeVec,
    pub cache_bytes: IntGauge,
    pub list_expiry: GaugeVec,
    pub signer_not_after: GaugeVec,
    pub list_last_success: GaugeVec,
    pub crl_next_update: GaugeVec,
    pub crl_refresh_failures: IntCounterVec,
    pub leader: IntGauge,
    pub events: IntCounterVec,
    pub artifact_access: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Records one reconcile of `kind`: its duration since `started` and
    /// whether it succeeded.
    pub fn reconciled<T, E>(&self, kind: &str, started: std::time::Instant, result: &Result<T, E>) {
        self.reconcile_duration
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
        self.reconciles
            .with_label_values(&[kind, if result.is_ok() { "success" } else { "error" }])
            .inc();
    }

    /// Drops the series of a list that is gone, so that its alerts stop.
    pub fn forget_list(&self, namespace: &str, name: &str) {
        for gauge in [
            &self.list_expiry,
            &self.signer_not_after,
            &self.list_last_success,
        ] {
            // Absent series are fine: the list may never have had a good version.
            let _ = gauge.remove_label_values(&[namespace, name]);
        }
    }

    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new("vmlisub_reconciles_total", "Reconciles by kind and result"),
            &["kind", "result"],
        )?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new(
                "vmlisub_reconcile_duration_seconds",
                "Duration of reconciles by kind",
            )
            .buckets(vec![
                0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0,
            ]),
            &["kind"],
        )?;
        let verification_failures = IntCounterVec::new(
            Opts::new(
                "vmlisub_verification_failures_total",
                "Rejected list updates by reason code",
            ),
            &["reason"],
        )?;
        let download_bytes = IntCounter::new(
            "vmlisub_download_bytes_total",
            "Bytes of images downloaded and verified",
        )?;
        let download_duration = HistogramVec::new(
            HistogramOpts::new(
                "vmlisub_download_duration_seconds",
                "Duration of image downloads by result",
            )
            .buckets(vec![0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 7200.0]),
            &["result"],
        )?;
        let download_failures = IntCounterVec::new(
            Opts::new(
                "vmlisub_download_failures_total",
                "Failed image downloads by reason code",
            ),
            &["reason"],
        )?;
        let images = IntGaugeVec::new(
            Opts::new("vmlisub_images", "ImageSubscriptions by phase"),
            &["phase"],
        )?;
        let cache_bytes = IntGauge::new(
            "vmlisub_cache_bytes",
            "Bytes of verified images in the endorsed area",
        )?;
        let list_expiry = GaugeVec::new(
            Opts::new(
                "vmlisub_list_expiry_timestamp_seconds",
                "dc:date:expires of each subscription's current list (Unix time)",
            ),
            &["namespace", "name"],
        )?;
        let signer_not_after = GaugeVec::new(
            Opts::new(
                "vmlisub_list_signer_not_after_timestamp_seconds",
                "notAfter of the certificate that signed each current list (Unix time)",
            ),
            &["namespace", "name"],
        )?;
        let list_last_success = GaugeVec::new(
            Opts::new(
                "vmlisub_list_last_success_timestamp_seconds",
                "When each subscription's list was last fetched and accepted, or found unchanged (Unix time)",
            ),
            &["namespace", "name"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "vmlisub_build_info",
                "1, labelled with the running vmlisub version",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let crl_next_update = GaugeVec::new(
            Opts::new(
                "vmlisub_crl_next_update_timestamp_seconds",
                "nextUpdate of the CRL in use for each CA (CA directory or refreshed; Unix time)",
            ),
            &["issuer"],
        )?;
        let crl_refresh_failures = IntCounterVec::new(
            Opts::new(
                "vmlisub_crl_refresh_failures_total",
                "CRL refreshes that left the CRL in use unchanged, by CA and reason code",
            ),
            &["issuer", "reason"],
        )?;
        let leader = IntGauge::new(
            "vmlisub_leader",
            "1 while this replica holds the Lease and reconciles",
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(verification_failures.clone()))?;
        registry.register(Box::new(download_bytes.clone()))?;
        registry.register(Box::new(download_duration.clone()))?;
        registry.register(Box::new(download_failures.clone()))?;
        registry.register(Box::new(images.clone()))?;
        registry.register(Box::new(cache_bytes.clone()))?;
        registry.register(Box::new(list_expiry.clone()))?;
        registry.register(Box::new(signer_not_after.clone()))?;
        registry.register(Box::new(list_last_success.clone()))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(crl_next_update.clone()))?;
        registry.register(Box::new(crl_refresh_failures.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        let events = IntCounterVec::new(
            Opts::new(
                "vmlisub_events_total",
                "Kubernetes Events by outcome: created, repeated (a series count), dropped (queue full), failed",
            ),
            &["result"],
        )?;
        registry.register(Box::new(events.clone()))?;
        let artifact_access = IntCounterVec::new(
            Opts::new(
                "vmlisub_artifact_access_total",
                "Token-gated artifact requests by how they were decided (public, cache, review: a TokenReview and a SubjectAccessReview, none: no usable token) and the verdict (allowed, unauthenticated, forbidden, unavailable)",
            ),
            &["via", "verdict"],
        )?;
        registry.register(Box::new(artifact_access.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            reconcile_duration,
            verification_failures,
            download_bytes,
            download_duration,
            download_failures,
            images,
            cache_bytes,
            list_expiry,
            signer_not_after,
            list_last_success,
            crl_next_update,
            crl_refresh_failures,
            leader,
            events,
            artifact_access,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(error = %err, "metrics encoding failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_series() {
        let metrics = Metrics::new().unwrap();
        metrics
            .reconciles
            .with_label_values(&["ImageListSubscription", "success"])
            .inc();
        metrics
            .verification_failures
            .with_label_values(&["signature-invalid"])
            .inc_by(2);
        metrics
            .list_expiry
            .with_label_values(&["ns", "cernvm"])
            .set(1.8e9);
        let text = metrics.render();
        assert!(
            text.contains(
                "vmlisub_reconciles_total{kind=\"ImageListSubscription\",result=\"success\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("vmlisub_verification_failures_total{reason=\"signature-invalid\"} 2")
        );
        assert!(
            text.contains(
                "vmlisub_list_expiry_timestamp_seconds{name=\"cernvm\",namespace=\"ns\"} 1800000000"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_forgotten_list_leaves_no_series() {
        let metrics = Metrics::new().unwrap();
        for gauge in [
            &metrics.list_expiry,
            &metrics.signer_not_after,
            &metrics.list_last_success,
        ] {
            gauge.with_label_values(&["grid", "gone"]).set(1.0);
            gauge.with_label_values(&["grid", "kept"]).set(1.0);
        }
        metrics.forget_list("grid", "gone");
        let text = metrics.render();
        assert!(!text.contains("name=\"gone\""), "{text}");
        assert_eq!(text.matches("name=\"kept\"").count(), 3, "{text}");
        assert!(text.contains("vmlisub_build_info{version="), "{text}");
        // Forgetting a list that never had series is harmless.
        metrics.forget_list("grid", "never");
    }
}
