//! Whether a freshly fetched CRL may replace the one in use (pure).
//!
//! A fetched CRL is kept only when it is a CRL of the CA it was fetched
//! for, signed by that CA's key (any certificate of the CA subject in the
//! trust store, so that a CA that rolled its key over still refreshes), and
//! strictly newer than the newest CRL of the CA already in use: a later
//! thisUpdate and, when both carry one, a higher cRLNumber. So a replayed
//! or rolled-back CRL can never un-revoke a certificate.

use super::algorithms::SignatureCheck;
use super::cert::CertInfo;
use super::crl::StoredCrl;
use super::store::pem_blocks;
use super::verify::timestamp;
use crate::reason::Reason;

/// Why a fetched CRL was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("not a CRL: {0}")]
    Unparseable(String),
    #[error("the CRL is issued by {issuer}, not by this CA")]
    WrongIssuer { issuer: String },
    #[error("the CRL's signature does not verify with the CA's key{0}")]
    SignatureInvalid(&'static str),
    #[error("the CRL is not newer than the one in use ({0})")]
    NotNewer(String),
    #[error("the CRL cannot replace the CA's complete CRL: {0}")]
    OtherScope(String),
}

impl Reason for Rejected {
    fn reason(&self) -> &'static str {
        match self {
            Self::Unparseable(_) => "crl-unparseable",
            Self::WrongIssuer { .. } => "crl-wrong-issuer",
            Self::SignatureInvalid(_) => "crl-invalid",
            Self::NotNewer(_) => "crl-not-newer",
            Self::OtherScope(_) => "crl-other-scope",
        }
    }
}

/// Judges `bytes` (PEM or DER) fetched from `source` for the CA whose
/// certificates are `ca` (one subject; several keys after a rollover),
/// against the CA's `current` CRLs. Returns the CRL and what to write: the
/// PEM of that one CRL only (never the fetched bytes, which may carry more
/// blocks that were not judged).
pub fn judge(
    bytes: &[u8],
    source: &str,
    ca: &[&CertInfo],
    current: &[&StoredCrl],
) -> Result<(StoredCrl, Vec<u8>), Rejected> {
    let der = pem_blocks(bytes)
        .map_err(Rejected::Unparseable)?
        .into_iter()
        .find(|(label, _)| label.is_empty() || label == "X509 CRL")
        .map(|(_, der)| der)
        .ok_or_else(|| Rejected::Unparseable("no X509 CRL block".into()))?;
    let crl = StoredCrl::from_der(source, &der).map_err(Rejected::Unparseable)?;
    let pem = pem_rfc7468::encode_string("X509 CRL", pem_rfc7468::LineEnding::LF, &der)
        .map_err(|err| Rejected::Unparseable(err.to_string()))?;
    if !ca.iter().any(|cert| cert.subject == crl.issuer_name) {
        return Err(Rejected::WrongIssuer {
            issuer: crl.issuer.clone(),
        });
    }
    let mut signed_without_crl_sign = false;
    let signed = ca.iter().any(|cert| {
        let valid =
            cert.verify_signature_of(&crl.tbs_der, &crl.signature_algorithm, &crl.signature, true)
                == SignatureCheck::Valid;
        signed_without_crl_sign |= valid && !cert.may_sign_crls();
        valid && cert.may_sign_crls()
    });
    if !signed {
        return Err(Rejected::SignatureInvalid(if signed_without_crl_sign {
            " (its keyUsage does not allow cRLSign)"
        } else {
            ""
        }));
    }
    // Only a complete CRL may take the place of the one in use (a delta,
    // partial or indirect CRL, or one of another scope, written over it
    // would leave certificates uncovered).
    if let Some(reason) = crl.incomplete {
        return Err(Rejected::OtherScope(reason.into()));
    }
    if let Some(oid) = &crl.unsupported_critical {
        return Err(Rejected::OtherScope(format!(
            "it has unsupported critical extension {oid}"
        )));
    }
    if let Some(newest) = current
        .iter()
        .filter(|known| known.issuer_name == crl.issuer_name)
        .max_by_key(|known| known.this_update)
    {
        let scope = |c: &StoredCrl| {
            (
                c.only_user_certs,
                c.only_ca_certs,
                c.distribution_point.clone(),
            )
        };
        if scope(&crl) != scope(newest) {
            return Err(Rejected::OtherScope(format!(
                "its issuingDistributionPoint scope differs from that of {}",
                newest.source
            )));
        }
        if crl.this_update <= newest.this_update {
            return Err(Rejected::NotNewer(format!(
                "thisUpdate {} against {} of {}",
                timestamp(crl.this_update),
                timestamp(newest.this_update),
                newest.source
            )));
        }
        if let (Some(new), Some(old)) = (&crl.crl_number, &newest.crl_number)
            && !is_greater(new, old)
        {
            return Err(Rejected::NotNewer(format!(
                "cRLNumber is not higher than that of {}",
                newest.source
            )));
        }
    }
    Ok((crl, pem.into_bytes()))
}

/// Big-endian unsigned comparison of two INTEGER contents.
fn is_greater(a: &[u8], b: &[u8]) -> bool {
    let trim =
        |bytes: &[u8]| -> Vec<u8> { bytes.iter().copied().skip_while(|b| *b == 0).collect() };
    let (a, b) = (trim(a), trim(b));
    (a.len(), a) > (b.len(), b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl {args:?}");
    }

    /// A CA and CRLs it signs: `crl(name, last_update, extensions)`.
    struct Ca {
        dir: tempfile::TempDir,
        info: CertInfo,
    }

    impl Ca {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path();
            openssl(
                path,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "30",
                    "-subj",
                    "/CN=Refresh Test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            );
            std::fs::write(path.join("index.txt"), "").unwrap();
            std::fs::write(path.join("num"), "01\n").unwrap();
            std::fs::write(
                path.join("c.cnf"),
                "[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\ncrlnumber = num\n\
                 default_md = sha256\n[complete]\n[delta]\n2.5.29.27 = critical,DER:02:01:01\n\
                 [cacerts]\nissuingDistributionPoint = critical, @idp\n[idp]\nonlyCA = TRUE\n",
            )
            .unwrap();
            let pem = std::fs::read(path.join("ca.pem")).unwrap();
            let der = pem_rfc7468::decode_vec(&pem).unwrap().1;
            let info = CertInfo::from_der(&der).unwrap();
            Self { dir, info }
        }

        /// PEM of a CRL with `lastUpdate` (YYYYMMDDHHMMSSZ) and the
        /// extensions of config section `section`.
        fn crl(&self, name: &str, last_update: &str, section: &str) -> Vec<u8> {
            let out = format!("{name}.pem");
            openssl(
                self.dir.path(),
                &[
                    "ca",
                    "-config",
                    "c.cnf",
                    "-gencrl",
                    "-keyfile",
                    "ca.key",
                    "-cert",
                    "ca.pem",
                    "-crl_lastupdate",
                    last_update,
                    "-crldays",
                    "3650",
                    "-crlexts",
                    section,
                    "-out",
                    &out,
                ],
            );
            std::fs::read(self.dir.path().join(out)).unwrap()
        }
    }

    #[test]
    fn a_newer_crl_of_another_scope_never_replaces_the_complete_one() {
        let ca = Ca::new();
        let base = ca.crl("base", "20240101000000Z", "complete");
        let base = StoredCrl::from_der("base", &pem_blocks(&base).unwrap()[0].1).unwrap();
        assert!(base.incomplete.is_none());
        // A newer complete CRL is taken.
        let newer = ca.crl("newer", "20240102000000Z", "complete");
        assert!(judge(&newer, "u", &[&ca.info], &[&base]).is_ok());
        // The CA's delta CRL and its CA-certificates-only CRL are newer and
        // signed by the CA, but written as HASH.r0 they would replace the
        // complete CRL: end-entity certificates would no longer be covered
        // (unchecked under if-present).
        for section in ["delta", "cacerts"] {
            let other = ca.crl(section, "20240103000000Z", section);
            assert!(
                judge(&other, "u", &[&ca.info], &[&base]).is_err(),
                "a {section} CRL was taken in place of the complete CRL"
            );
            // A delta CRL is not even taken as the first CRL of the CA.
            if section == "delta" {
                assert!(
                    judge(&other, "u", &[&ca.info], &[]).is_err(),
                    "a delta CRL was taken as the CA's CRL"
                );
            }
        }
    }

    #[test]
    fn crl_numbers_compare_as_numbers() {
        assert!(is_greater(&[2], &[1]));
        assert!(is_greater(&[1, 0], &[0xff]));
        assert!(!is_greater(&[0, 5], &[5]));
        assert!(!is_greater(&[4], &[5]));
    }

    #[test]
    fn only_the_judged_crl_is_written() {
        let ca = Ca::new();
        let newer = ca.crl("newer", "20240102000000Z", "complete");
        // Another block after the judged CRL: a CRL of the CA far in the
        // future (would wedge every later refresh as "not newer"), here
        // simply another copy with other bytes.
        let other = ca.crl("future", "20490101000000Z", "complete");
        let mut fetched = newer.clone();
        fetched.extend_from_slice(&other);
        let (crl, written) = judge(&fetched, "u", &[&ca.info], &[]).unwrap();
        let mut store = super::super::TrustStore::default();
        store.add_crl_file("HASH.r0", &written);
        assert_eq!(store.crls().len(), 1, "{:?}", store.problems);
        assert_eq!(store.crls()[0].this_update, crl.this_update);
    }
}
