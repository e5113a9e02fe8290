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
}

impl Reason for Rejected {
    fn reason(&self) -> &'static str {
        match self {
            Self::Unparseable(_) => "crl-unparseable",
            Self::WrongIssuer { .. } => "crl-wrong-issuer",
            Self::SignatureInvalid(_) => "crl-invalid",
            Self::NotNewer(_) => "crl-not-newer",
        }
    }
}

/// Judges `bytes` (PEM or DER) fetched from `source` for the CA whose
/// certificates are `ca` (one subject; several keys after a rollover),
/// against the CA's `current` CRLs.
pub fn judge(
    bytes: &[u8],
    source: &str,
    ca: &[&CertInfo],
    current: &[&StoredCrl],
) -> Result<StoredCrl, Rejected> {
    let der = pem_blocks(bytes)
        .map_err(Rejected::Unparseable)?
        .into_iter()
        .find(|(label, _)| label.is_empty() || label == "X509 CRL")
        .map(|(_, der)| der)
        .ok_or_else(|| Rejected::Unparseable("no X509 CRL block".into()))?;
    let crl = StoredCrl::from_der(source, &der).map_err(Rejected::Unparseable)?;
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
    if let Some(newest) = current
        .iter()
        .filter(|known| known.issuer_name == crl.issuer_name)
        .max_by_key(|known| known.this_update)
    {
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
    Ok(crl)
}

/// Big-endian unsigned comparison of two INTEGER contents.
fn is_greater(a: &[u8], b: &[u8]) -> bool {
    let trim =
        |bytes: &[u8]| -> Vec<u8> { bytes.iter().copied().skip_while(|b| *b == 0).collect() };
    let (a, b) = (trim(a), trim(b));
    (a.len(), a) > (b.len(), b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crl_numbers_compare_as_numbers() {
        assert!(is_greater(&[2], &[1]));
        assert!(is_greater(&[1, 0], &[0xff]));
        assert!(!is_greater(&[0, 5], &[5]));
        assert!(!is_greater(&[4], &[5]));
    }
}
