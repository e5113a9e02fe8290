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

use crate::reason::Reason;
use crate::store::write_atomically;
use crate::transfer::{ListFetch, Transfer, redact_url};
use crate::trust::TrustStore;
use crate::trust::cert::CertInfo;
use crate::trust::refresh::{self, Rejected};
use crate::trust::store::{CaOrigin, MAX_FILE_BYTES};

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
    let Some(file) = crl_file_name(crl_dir, first) else {
        return Outcome::Failed {
            reason: "crl-dir-unwritable",
            detail: format!(
                "{}: HASH.r0 to HASH.r9 are all taken by other CAs with the same subject hash",
                crl_dir.display()
            ),
        };
    };
    let mut failure = Outcome::Failed {
        reason: "no-crl-url",
        detail: "no usable CRL URL".into(),
    };
    for url in urls {
        // CRL URLs come from the CA directory; shown without credentials
        // all the same, as every URL is.
        let url_shown = redact_url(url);
        let bytes = match transfer.fetch_list(url, MAX_FILE_BYTES, None).await {
            Ok(ListFetch::Fetched { bytes, .. }) => bytes,
            Ok(ListFetch::NotModified) => {
                return Outcome::Unchanged {
                    detail: format!("{url_shown}: not modified"),
                };
            }
            Err(err) => {
                failure = Outcome::Failed {
                    reason: "fetch-failed",
                    detail: format!("{url_shown}: {err}"),
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
                    detail: format!("{url_shown}: {rejected}"),
                };
            }
            Err(rejected) => {
                failure = Outcome::Failed {
                    reason: rejected.reason(),
                    detail: format!("{url_shown}: {rejected}"),
                };
            }
        }
    }
    failure
}

/// The file for `ca`'s CRL: `HASH.rN` with the first `N` whose file holds
/// this CA's CRL or is free, so that CAs whose subject hashes collide keep
/// separate files (OpenSSL's convention for `HASH.N` certificate links).
fn crl_file_name(crl_dir: &Path, ca: &CertInfo) -> Option<String> {
    let hash = ca.subject.openssl_hash();
    (0..10).map(|n| format!("{hash:08x}.r{n}")).find(|name| {
        match std::fs::read(crl_dir.join(name)) {
            Err(_) => true,
            Ok(bytes) => {
                let mut probe = TrustStore::default();
                probe.add_crl_file(name, &bytes);
                probe.crls().iter().all(|crl| crl.issuer_name == ca.subject)
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A self-signed CA named `subject` and an empty CRL it signed.
    fn ca_and_crl(dir: &Path, tag: &str, subject: &str) -> (CertInfo, Vec<u8>) {
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(dir)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(dir.join(format!("{tag}.idx")), "").unwrap();
        std::fs::write(
            dir.join(format!("{tag}.cnf")),
            format!("[ca]\ndefault_ca = c\n[c]\ndatabase = {tag}.idx\ndefault_md = sha256\ndefault_crl_days = 7\n"),
        )
        .unwrap();
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{tag}.key"),
            "-out",
            &format!("{tag}.pem"),
            "-days",
            "30",
            "-subj",
            subject,
        ]);
        run(&[
            "ca",
            "-config",
            &format!("{tag}.cnf"),
            "-gencrl",
            "-keyfile",
            &format!("{tag}.key"),
            "-cert",
            &format!("{tag}.pem"),
            "-out",
            &format!("{tag}.crl"),
        ]);
        let pem = std::fs::read(dir.join(format!("{tag}.pem"))).unwrap();
        let der = crate::trust::store::pem_blocks(&pem).unwrap().remove(0).1;
        (
            CertInfo::from_der(&der).unwrap(),
            std::fs::read(dir.join(format!("{tag}.crl"))).unwrap(),
        )
    }

    #[test]
    fn cas_whose_subject_hashes_collide_keep_separate_crl_files() {
        let dir = tempfile::tempdir().unwrap();
        let (this, own_crl) = ca_and_crl(dir.path(), "this", "/CN=This CA");
        let (_, other_crl) = ca_and_crl(dir.path(), "other", "/CN=Other CA");
        let crl_dir = dir.path().join("crls");
        std::fs::create_dir(&crl_dir).unwrap();
        let hash = format!("{:08x}", this.subject.openssl_hash());
        assert_eq!(
            crl_file_name(&crl_dir, &this).unwrap(),
            format!("{hash}.r0")
        );
        // Another CA's CRL sits under this CA's hash (a hash collision).
        std::fs::write(crl_dir.join(format!("{hash}.r0")), &other_crl).unwrap();
        assert_eq!(
            crl_file_name(&crl_dir, &this).unwrap(),
            format!("{hash}.r1")
        );
        // This CA's own CRL is found again where it was written.
        std::fs::write(crl_dir.join(format!("{hash}.r1")), &own_crl).unwrap();
        assert_eq!(
            crl_file_name(&crl_dir, &this).unwrap(),
            format!("{hash}.r1")
        );
    }
}
