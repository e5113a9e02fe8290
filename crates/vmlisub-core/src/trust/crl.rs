//! CRLs: what one covers, and revocation of every certificate on a path
//! (RFC 5280 section 6.3, for complete CRLs).
//!
//! A CRL is a candidate for a certificate when its issuer name matches the
//! certificate's issuer (section 7.1 comparison). It covers the certificate
//! when its scope does: an IssuingDistributionPoint is honoured
//! (onlyContainsUserCerts, onlyContainsCACerts, and a distribution point
//! name that must match one in the certificate's cRLDistributionPoints).
//! Partial CRLs (onlySomeReasons), indirect CRLs, attribute-certificate CRLs
//! and delta CRLs are not complete CRLs for the certificate: they are set
//! aside with their reason, and never make a complete base CRL unusable.
//!
//! A covering CRL must be current, carry no critical extension vmlisub does
//! not understand, and be signed by the CA: by the certificate's issuer on
//! the path or, after a key rollover, by another certificate of the same CA
//! subject from the trust store, valid at the verification time; the
//! signing certificate's keyUsage, when present, must allow cRLSign.
//! Serial numbers compare as DER INTEGERs, sign included.

use std::collections::HashMap;

use der::{Decode, Encode};
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};

use super::algorithms::SignatureCheck;
use super::cert::{CertInfo, algorithm_contents, first_element, unix_seconds};
use super::dn;
use super::error::VerifyError;
use super::name::CanonicalName;
use super::verify::{CrlPolicy, timestamp};

const ID_CRL_NUMBER: &str = "2.5.29.20";
const ID_DELTA_CRL_INDICATOR: &str = "2.5.29.27";
const ID_ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";
/// CRL extensions that change nothing for a complete CRL.
const UNDERSTOOD_CRL_EXTENSIONS: &[&str] = &[
    ID_CRL_NUMBER,
    "2.5.29.35", // authorityKeyIdentifier
    "2.5.29.18", // issuerAltName
    ID_ISSUING_DISTRIBUTION_POINT,
    ID_DELTA_CRL_INDICATOR,
    "2.5.29.46", // freshestCRL (where deltas live; deltas are not used)
];
/// CRL entry extensions vmlisub understands. certificateIssuer (2.5.29.29)
/// belongs to indirect CRLs, which are set aside before entries are read.
const UNDERSTOOD_ENTRY_EXTENSIONS: &[&str] = &[
    "2.5.29.21", // reasonCode
    "2.5.29.23", // holdInstructionCode
    "2.5.29.24", // invalidityDate
];

/// A CRL from the store, digested for revocation checks.
#[derive(Debug, Clone)]
pub struct StoredCrl {
    pub issuer: String,
    pub issuer_name: CanonicalName,
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// cRLNumber, as the contents of the DER INTEGER.
    pub crl_number: Option<Vec<u8>>,
    /// DER of the signed part (tbsCertList), as encoded.
    pub tbs_der: Vec<u8>,
    /// The signature AlgorithmIdentifier, as DER contents.
    pub signature_algorithm: Vec<u8>,
    pub signature: Vec<u8>,
    /// Revoked serial numbers (whole DER INTEGERs), each with the first
    /// critical entry extension vmlisub does not understand, if any.
    pub revoked: HashMap<Vec<u8>, Option<String>>,
    /// Why this is not a complete CRL for anyone, if it is not.
    pub incomplete: Option<&'static str>,
    pub only_user_certs: bool,
    pub only_ca_certs: bool,
    /// The IssuingDistributionPoint's full names (DER of each GeneralName).
    pub distribution_point: Option<Vec<Vec<u8>>>,
    /// A critical CRL extension vmlisub does not understand.
    pub unsupported_critical: Option<String>,
    pub source: String,
}

/// x509-cert cannot read v1 CRLs (no version field), which `openssl ca
/// -gencrl` still writes without a crlnumber file. For parsing only, such a
/// CRL gets an explicit `version v1`; the signature is checked over the
/// original bytes ([`first_element`]).
fn with_explicit_version(der: &[u8]) -> Result<Vec<u8>, der::Error> {
    use der::asn1::AnyRef;
    let outer = AnyRef::from_der(der)?;
    let (tbs, rest) = AnyRef::from_der_partial(outer.value())?;
    if tbs.value().first() == Some(&0x02) {
        return Ok(der.to_vec());
    }
    let mut tbs_value = vec![0x02, 0x01, 0x00];
    tbs_value.extend_from_slice(tbs.value());
    let new_tbs = AnyRef::new(der::Tag::Sequence, &tbs_value)?.to_der()?;
    let mut outer_value = new_tbs;
    outer_value.extend_from_slice(rest);
    AnyRef::new(der::Tag::Sequence, &outer_value)?.to_der()
}

impl StoredCrl {
    /// Parses a DER CRL read from `source`.
    pub fn from_der(source: &str, der: &[u8]) -> Result<Self, String> {
        let parseable = with_explicit_version(der).map_err(|err| format!("bad CRL: {err}"))?;
        let crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&parseable)
            .map_err(|err| format!("bad CRL: {err}"))?;
        let tbs = &crl.tbs_cert_list;
        let issuer_der = tbs.issuer.to_der().map_err(|err| err.to_string())?;
        let mut revoked = HashMap::new();
        for entry in tbs.revoked_certificates.iter().flatten() {
            let serial = entry
                .serial_number
                .to_der()
                .map_err(|err| err.to_string())?;
            let unsupported = entry
                .crl_entry_extensions
                .iter()
                .flatten()
                .find(|ext| {
                    ext.critical
                        && !UNDERSTOOD_ENTRY_EXTENSIONS.contains(&ext.extn_id.to_string().as_str())
                })
                .map(|ext| ext.extn_id.to_string());
            revoked.insert(serial, unsupported);
        }
        let mut stored = Self {
            issuer: dn::one_line_from_der(&issuer_der)
                .unwrap_or_else(|_| dn::one_line(&tbs.issuer)),
            issuer_name: CanonicalName::from_der(&issuer_der)
                .map_err(|err| format!("bad CRL issuer: {err}"))?,
            this_update: unix_seconds(&tbs.this_update),
            next_update: tbs.next_update.as_ref().map(unix_seconds),
            crl_number: None,
            tbs_der: first_element(der).map_err(|err| format!("bad CRL: {err}"))?,
            signature_algorithm: algorithm_contents(&crl.signature_algorithm)
                .map_err(|err| err.to_string())?,
            signature: crl
                .signature
                .as_bytes()
                .ok_or("CRL signature has unused bits")?
                .to_vec(),
            revoked,
            incomplete: None,
            only_user_certs: false,
            only_ca_certs: false,
            distribution_point: None,
            unsupported_critical: None,
            source: source.to_string(),
        };
        let mut seen = Vec::new();
        for ext in tbs.crl_extensions.iter().flatten() {
            // At most one of each (RFC 5280 5.2; OpenSSL refuses repeats):
            // a second issuingDistributionPoint would override the first.
            if seen.contains(&ext.extn_id) {
                return Err(format!(
                    "bad CRL: extension {} appears more than once",
                    ext.extn_id
                ));
            }
            seen.push(ext.extn_id);
            let oid = ext.extn_id.to_string();
            match oid.as_str() {
                ID_DELTA_CRL_INDICATOR => {
                    stored.incomplete = Some("it is a delta CRL (deltas are not used)");
                }
                ID_CRL_NUMBER => {
                    let number = der::asn1::Int::from_der(ext.extn_value.as_bytes())
                        .map_err(|err| format!("bad cRLNumber: {err}"))?;
                    stored.crl_number = Some(number.as_bytes().to_vec());
                }
                ID_ISSUING_DISTRIBUTION_POINT => {
                    let idp = IssuingDistributionPoint::from_der(ext.extn_value.as_bytes())
                        .map_err(|err| format!("bad issuingDistributionPoint: {err}"))?;
                    stored.read_idp(&idp)?;
                }
                _ => {}
            }
            if ext.critical
                && stored.unsupported_critical.is_none()
                && !UNDERSTOOD_CRL_EXTENSIONS.contains(&oid.as_str())
            {
                stored.unsupported_critical = Some(oid);
            }
        }
        Ok(stored)
    }

    fn read_idp(&mut self, idp: &IssuingDistributionPoint) -> Result<(), String> {
        self.only_user_certs = idp.only_contains_user_certs;
        self.only_ca_certs = idp.only_contains_ca_certs;
        if idp.indirect_crl {
            self.incomplete
                .get_or_insert("it is an indirect CRL (not supported)");
        }
        if idp.only_some_reasons.is_some() {
            self.incomplete
                .get_or_insert("it is a partial CRL (onlySomeReasons)");
        }
        if idp.only_contains_attribute_certs {
            self.incomplete
                .get_or_insert("it only covers attribute certificates");
        }
        match &idp.distribution_point {
            None => {}
            Some(DistributionPointName::FullName(names)) => {
                let mut encoded = Vec::new();
                for name in names {
                    encoded.push(name.to_der().map_err(|err| err.to_string())?);
                }
                self.distribution_point = Some(encoded);
            }
            Some(DistributionPointName::NameRelativeToCRLIssuer(_)) => {
                self.incomplete.get_or_insert(
                    "its distribution point is relative to the CRL issuer (not supported)",
                );
            }
        }
        Ok(())
    }

    /// Why this CRL does not cover `cert`, if it does not.
    fn out_of_scope(&self, cert: &CertInfo) -> Option<&'static str> {
        if let Some(reason) = self.incomplete {
            return Some(reason);
        }
        if self.only_user_certs && cert.is_ca() {
            return Some("it only covers end-entity certificates");
        }
        if self.only_ca_certs && !cert.is_ca() {
            return Some("it only covers CA certificates");
        }
        if let Some(idp_names) = &self.distribution_point {
            let covered = cert
                .crl_distribution_points
                .iter()
                .flat_map(|dps| dps.0.iter())
                .filter(|dp| dp.crl_issuer.is_none())
                .filter_map(|dp| match &dp.distribution_point {
                    Some(DistributionPointName::FullName(names)) => Some(names),
                    _ => None,
                })
                .flatten()
                .filter_map(|name: &GeneralName| name.to_der().ok())
                .any(|name| idp_names.contains(&name));
            if !covered {
                return Some("its distribution point is not one of the certificate's");
            }
        }
        None
    }
}

/// What revocation checking found for one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlUsed {
    pub this_update: i64,
    pub next_update: Option<i64>,
}

/// Checks that `cert`, issued by `issuer` on a validated path, is not
/// revoked. `same_ca` are the trust store's CA certificates and those of
/// the path (any subject: filtered here), which may have signed the CA's
/// CRLs.
pub fn check_certificate(
    cert: &CertInfo,
    issuer: &CertInfo,
    crls: &[StoredCrl],
    same_ca: &[&CertInfo],
    policy: CrlPolicy,
    at: i64,
    allow_sha1: bool,
) -> Result<Option<CrlUsed>, VerifyError> {
    if policy == CrlPolicy::Ignore {
        return Ok(None);
    }
    let issuer_line = &cert.issuer_line;
    let mut set_aside = Vec::new();
    let mut stale = None;
    let mut usable = Vec::new();
    for crl in crls.iter().filter(|crl| crl.issuer_name == cert.issuer) {
        if let Some(reason) = crl.out_of_scope(cert) {
            set_aside.push(format!("{}: {reason}", crl.source));
        } else if crl.this_update > at {
            stale = Some(format!(
                "{} is not valid before {}",
                crl.source,
                timestamp(crl.this_update)
            ));
        } else if let Some(next) = crl.next_update.filter(|next| *next < at) {
            stale = Some(format!("{} expired at {}", crl.source, timestamp(next)));
        } else {
            usable.push(crl);
        }
    }
    if usable.is_empty() {
        return match (stale, policy) {
            (Some(detail), _) => Err(VerifyError::CrlStale {
                issuer: issuer_line.clone(),
                detail,
            }),
            (None, CrlPolicy::Require) => Err(VerifyError::CrlMissing {
                issuer: issuer_line.clone(),
                detail: if set_aside.is_empty() {
                    format!("no CRL covers {}", cert.subject_line)
                } else {
                    format!(
                        "no complete CRL covers {} ({})",
                        cert.subject_line,
                        set_aside.join("; ")
                    )
                },
            }),
            (None, _) => Ok(None),
        };
    }
    // Only CRLs signed by the CA count; one that verifies under no key of
    // the CA (a forgery, or the CA's other key where that key is not
    // trusted) is no evidence either way, and an error only when nothing
    // else covers the certificate.
    let mut verified = Vec::new();
    let mut signature_error = None;
    for crl in usable {
        match check_crl_signature(crl, issuer, same_ca, at, allow_sha1) {
            Ok(()) => verified.push(crl),
            Err(err) => {
                signature_error.get_or_insert(err);
            }
        }
    }
    if verified.is_empty()
        && let Some(err) = signature_error
    {
        return Err(err);
    }
    // The newest covering CRL is reported.
    verified.sort_by_key(|crl| std::cmp::Reverse(crl.this_update));
    for crl in &verified {
        if let Some(extension) = &crl.unsupported_critical {
            return Err(VerifyError::CrlInvalid {
                issuer: issuer_line.clone(),
                detail: format!(
                    "{} has unsupported critical extension {extension}",
                    crl.source
                ),
            });
        }
        if let Some(entry) = crl.revoked.get(&cert.serial_der) {
            if let Some(extension) = entry {
                return Err(VerifyError::CrlInvalid {
                    issuer: issuer_line.clone(),
                    detail: format!(
                        "{}: the entry of {} has unsupported critical extension {extension}",
                        crl.source, cert.subject_line
                    ),
                });
            }
            return Err(VerifyError::CertificateRevoked {
                subject: cert.subject_line.clone(),
                serial: super::verify::hex_upper(
                    cert.cert.tbs_certificate().serial_number().as_bytes(),
                ),
                issuer: issuer_line.clone(),
            });
        }
    }
    Ok(verified.first().map(|crl| CrlUsed {
        this_update: crl.this_update,
        next_update: crl.next_update,
    }))
}

/// A CRL must verify with the key of the CA: the path issuer's, or that of
/// another current certificate of the same CA from the trust store or the
/// validated path.
fn check_crl_signature(
    crl: &StoredCrl,
    issuer: &CertInfo,
    same_ca: &[&CertInfo],
    at: i64,
    allow_sha1: bool,
) -> Result<(), VerifyError> {
    let invalid = |detail: String| VerifyError::CrlInvalid {
        issuer: crl.issuer.clone(),
        detail,
    };
    let mut signers: Vec<&CertInfo> = vec![issuer];
    signers.extend(same_ca.iter().copied().filter(|other| {
        other.subject == crl.issuer_name
            && other.der != issuer.der
            && other.not_before <= at
            && at <= other.not_after
    }));
    let mut without_crl_sign = false;
    let mut legacy = false;
    for signer in signers {
        match signer.verify_signature_of(
            &crl.tbs_der,
            &crl.signature_algorithm,
            &crl.signature,
            allow_sha1,
        ) {
            SignatureCheck::Valid if signer.may_sign_crls() => return Ok(()),
            SignatureCheck::Valid => without_crl_sign = true,
            SignatureCheck::Legacy => legacy = true,
            SignatureCheck::Invalid | SignatureCheck::Unsupported => {}
        }
    }
    if without_crl_sign {
        return Err(invalid(format!(
            "{} is signed by a CA key whose keyUsage does not allow cRLSign",
            crl.source
        )));
    }
    if legacy {
        return Err(VerifyError::LegacyAlgorithm(format!(
            "the sha1WithRSAEncryption signature of CRL {}",
            crl.source
        )));
    }
    Err(invalid(format!(
        "the signature of {} does not verify with the CA's key",
        crl.source
    )))
}
