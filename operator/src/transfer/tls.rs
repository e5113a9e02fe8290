//! The rustls client configuration: ring provider, system roots plus (or
//! replaced by) a transport CA bundle, always verified.
//!
//! Built by hand rather than by reqwest so that the crypto provider is
//! pinned to ring (no aws-lc-rs, no process-wide default to install) and
//! so that a bad CA bundle is reported as a configuration error instead of
//! as a handshake failure later.

use std::sync::Arc;

use pki_types::CertificateDer;
use pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::error::TransferError;

/// Builds the TLS client configuration.
pub(crate) fn client_config(
    extra_ca_pem: &[u8],
    replace_system_roots: bool,
) -> Result<ClientConfig, TransferError> {
    let config_error = |detail: String| TransferError::Config { detail };
    let mut roots = RootCertStore::empty();

    if !replace_system_roots {
        // Honours SSL_CERT_FILE / SSL_CERT_DIR, which is how containers
        // without a distribution trust store are usually given one.
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "cannot load some system trust anchors");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system trust anchors loaded");
    }

    if !extra_ca_pem.is_empty() {
        let mut count = 0usize;
        for cert in CertificateDer::pem_slice_iter(extra_ca_pem) {
            let cert =
                cert.map_err(|e| config_error(format!("transport CA bundle is not PEM: {e}")))?;
            roots.add(cert).map_err(|e| {
                config_error(format!("transport CA bundle certificate #{count}: {e}"))
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(config_error(
                "transport CA bundle holds no CERTIFICATE block".to_string(),
            ));
        }
    } else if replace_system_roots {
        return Err(config_error(
            "replace_system_roots is set but no transport CA bundle is given".to_string(),
        ));
    }

    if roots.is_empty() {
        // Not fatal: http:// and file:// still work, and every https
        // request will fail with a clear `tls` error.
        tracing::warn!("no TLS trust anchors: every https request will fail");
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_bundle() {
        let err = client_config(b"not a pem", true).err();
        assert!(matches!(err, Some(TransferError::Config { .. })), "{err:?}");
        let err = client_config(b"", true).err();
        assert!(matches!(err, Some(TransferError::Config { .. })), "{err:?}");
    }

    #[test]
    fn system_roots_alone_build() {
        assert!(client_config(b"", false).is_ok());
    }
}
