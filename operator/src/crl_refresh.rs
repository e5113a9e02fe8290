//! Built-in CRL refresh: what `fetch-crl` does for a grid site, for the CAs
//! of vmlisub's trust store.
//!
//! For every CA of the CA directory that says where its CRL lives
//! (`HASH.info` `crl_url = ...`, or `HASH.crl_url`), the URLs are tried in
//! order with the transfer layer (TLS verified, timeouts, proxy, a size
//! cap). A CRL that [`trust::refresh::judge`] accepts (the CA's, signed by
//! it, strictly newer than the one in use) is written atomically as
//! `HASH.r0` into the CRL directory, `HASH` being the CA's OpenSSL subject
//! hash; the CA directory itself is never written. Anything else leaves
//! the CRL in use as it is. The trust store notices the new file at its
//! next reload (see [`crate::trust::CaDirCache`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::reason::Reason;
use crate::sync::state::write_atomically;
use crate::transfer::{ListFetch, Transfer};
use crate::trust::TrustStore;
use crate::trust::cert::CertInfo;
use crate::trust::refresh::{self, Rejected};
use crate::trust::store::{CaOrigin, MAX_FILE_BYTES};

/// The default time between two refreshes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// What happened to one CA's CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A newer CRL was written.
    Updated {
        file: String,
        this_update: i64,
        next_update: Option<i64>,
    },
    /// The published CRL is the one in use (or older: never taken).
    Unchanged { detail: String },
    /// No URL gave a usable CRL; the one in use stays.
    Failed {
        reason: &'static str,
        detail: String,
    },
}

/// One CA's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaOutcome {
    /// The CA's one-line subject.
    pub issuer: String,
    pub outcome: Outcome,
}

/// Refreshes the CRL of every CA of `store` that publishes a CRL URL.
pub async fn refresh(store: &TrustStore, crl_dir: &Path, transfer: &Transfer) -> Vec<CaOutcome> {
    // One entry per CA subject: a CA with several certificates (a key
    // rollover) has one CRL location and one file.
    let mut by_subject: BTreeMap<String, (Vec<&CertInfo>, Vec<String>)> = BTreeMap::new();
    for ca in store
        .cas()
        .iter()
        .filter(|ca| ca.origin == CaOrigin::Directory)
    {
        let entry = by_subject.entry(ca.subject.clone()).or_default();
        entry.0.push(&ca.info);
        for url in &ca.crl_urls {
            if !entry.1.contains(url) {
                entry.1.push(url.clone());
            }
        }
    }
    let mut outcomes = Vec::new();
    for (issuer, (certs, urls)) in by_subject {
        if urls.is_empty() {
            continue;
        }
        let outcome = refresh_one(store, crl_dir, transfer, &certs, &urls).await;
        match &outcome {
            Outcome::Updated { file, .. } => {
                tracing::info!(%issuer, %file, "CRL refreshed");
            }
            Outcome::Unchanged { detail } => {
                tracing::debug!(%issuer, %detail, "CRL unchanged");
            }
            Outcome::Failed { reason, detail } => {
                tracing::warn!(%issuer, reason, %detail, "CRL refresh failed, keeping the CRL in use");
            }
        }
        outcomes.push(CaOutcome { issuer, outcome });
    }
    outcomes
}

async fn refresh_one(
    store: &TrustStore,
    crl_dir: &Path,
    transfer: &Transfer,
    certs: &[&CertInfo],
    urls: &[String],
) -> Outcome {
    let Some(first) = certs.first() else {
        return Outcome::Unchanged {
            detail: "no CA certificate".into(),
        };
    };
    let current: Vec<_> = store
        .crls()
        .iter()
        .filter(|crl| crl.issuer_name == first.subject)
        .collect();
    let file = format!("{:08x}.r0", first.subject.openssl_hash());
    let mut failure = Outcome::Failed {
        reason: "no-crl-url",
        detail: "no usable CRL URL".into(),
    };
    for url in urls {
        let bytes = match transfer.fetch_list(url, MAX_FILE_BYTES, None).await {
            Ok(ListFetch::Fetched { bytes, .. }) => bytes,
            Ok(ListFetch::NotModified) => {
                return Outcome::Unchanged {
                    detail: format!("{url}: not modified"),
                };
            }
            Err(err) => {
                failure = Outcome::Failed {
                    reason: "fetch-failed",
                    detail: format!("{url}: {err}"),
                };
                continue;
            }
        };
        match refresh::judge(&bytes, url, certs, &current) {
            Ok((crl, pem)) => {
                let path = crl_dir.join(&file);
                let written =
                    std::fs::create_dir_all(crl_dir).and_then(|()| write_atomically(&path, &pem));
                return match written {
                    Ok(()) => Outcome::Updated {
                        file: path.display().to_string(),
                        this_update: crl.this_update,
                        next_update: crl.next_update,
                    },
                    Err(err) => Outcome::Failed {
                        reason: "crl-dir-unwritable",
                        detail: format!("{}: {err}", path.display()),
                    },
                };
            }
            Err(rejected @ Rejected::NotNewer(_)) => {
                return Outcome::Unchanged {
                    detail: format!("{url}: {rejected}"),
                };
            }
            Err(rejected) => {
                failure = Outcome::Failed {
                    reason: rejected.reason(),
                    detail: format!("{url}: {rejected}"),
                };
            }
        }
    }
    failure
}

/// The time until the next refresh: `interval` stretched by up to 10%,
/// stably per `key`, so that many replicas or sites do not hit a CA's web
/// server in the same second.
pub fn jittered(interval: Duration, key: &str) -> Duration {
    crate::sync::engine::jittered(interval, key)
}
