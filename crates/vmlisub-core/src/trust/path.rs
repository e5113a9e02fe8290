//! Certification path building and validation (RFC 5280 section 6) for
//! grid S/MIME signers.
//!
//! Building searches from the signer towards a self-signed CA of the trust
//! store, over the store's CA certificates and the certificates the message
//! carries. Issuers are matched by canonical name (section 7.1), filtered
//! by key identifiers and proven by their signature, so a CA with several
//! certificates for one subject (a key rollover, with self-issued link
//! certificates) chains through whichever key actually signed. The search
//! is depth-first and bounded (depth, signature checks and complete paths),
//! so no input can make it exponential.
//!
//! Each complete path is then validated: validity of every certificate,
//! basicConstraints and pathLenConstraint (self-issued certificates do not
//! count, 6.1.4 (l)), keyUsage keyCertSign, name constraints (6.1.3 (b)),
//! unknown critical extensions, and the S/MIME purpose (extendedKeyUsage,
//! when present, includes emailProtection on every certificate). The first
//! path that validates wins; otherwise the first path's failure is
//! reported. Revocation and namespace policies are checked by the caller
//! on the path returned here.
//!
//! As in OpenSSL, the trust anchor's own constraints (pathLenConstraint,
//! nameConstraints) apply to the path below it. Certificate policies are
//! out of scope: they are recognised, never processed.

use std::collections::HashMap;

use super::algorithms::SignatureCheck;
use super::cert::CertInfo;
use super::constraints;
use super::error::VerifyError;
use super::name;

/// id-kp-emailProtection, DER contents of the OID.
const EKU_EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];

/// Longest path searched, trust anchor included.
pub const MAX_PATH_CERTIFICATES: usize = 10;
/// Signature verifications one search may spend.
pub const MAX_SIGNATURE_CHECKS: usize = 128;
/// Complete paths validated before giving up.
pub const MAX_COMPLETE_PATHS: usize = 16;
/// Issuer candidates one search may consider (cached signatures are free,
/// so this bounds the walk itself).
pub const MAX_SEARCH_STEPS: usize = 2048;

/// A candidate certificate for a path and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub cert: &'a CertInfo,
    /// A self-signed certificate of the trust store: a trust anchor.
    pub anchor: bool,
    /// From the trust store (as opposed to the message).
    pub trusted: bool,
}

/// A validated path: the signer first, the trust anchor last.
#[derive(Debug, Clone)]
pub struct ValidPath<'a> {
    pub certs: Vec<&'a CertInfo>,
}

impl<'a> ValidPath<'a> {
    pub fn anchor(&self) -> &'a CertInfo {
        self.certs[self.certs.len() - 1]
    }
}

/// What the search learned about issuers that did not work out.
#[derive(Debug, Default)]
struct Dead {
    /// A candidate whose signature did not verify.
    bad_signature: bool,
    /// A candidate signed with SHA-1 without the opt-in.
    legacy: bool,
    unsupported: bool,
    /// An issuer name that matched nothing.
    missing_issuer: Option<String>,
    /// The search ran out of budget.
    exhausted: bool,
}

struct Search<'a, 'p> {
    pool: &'p [Candidate<'a>],
    allow_sha1: bool,
    at: i64,
    signature_checks: usize,
    steps: usize,
    /// Signature checks per (child, issuer) pool index; the signer is `None`.
    signatures: HashMap<(Option<usize>, usize), SignatureCheck>,
    complete: Vec<Vec<usize>>,
    dead: Dead,
}

/// Builds and validates the path of `signer`. `pool` holds the trust
/// store's CA certificates and the message's certificates.
pub fn validate<'a>(
    signer: &'a CertInfo,
    pool: &[Candidate<'a>],
    at: i64,
    allow_sha1: bool,
) -> Result<ValidPath<'a>, VerifyError> {
    // A signer that is itself a trust anchor stands alone.
    if let Some(anchor) = pool
        .iter()
        .find(|candidate| candidate.anchor && candidate.cert.der == signer.der)
    {
        let path = ValidPath {
            certs: vec![anchor.cert],
        };
        check_path(&path, at)?;
        return Ok(path);
    }
    let mut search = Search {
        pool,
        allow_sha1,
        at,
        signature_checks: 0,
        steps: 0,
        signatures: HashMap::new(),
        complete: Vec::new(),
        dead: Dead::default(),
    };
    let mut chain = Vec::new();
    search.extend(signer, &mut chain);

    let mut first_error = None;
    for indices in &search.complete {
        let mut certs = vec![signer];
        certs.extend(indices.iter().map(|index| pool[*index].cert));
        let path = ValidPath { certs };
        match check_path(&path, at) {
            Ok(()) => return Ok(path),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }
    Err(no_path(signer, &search.dead))
}

fn no_path(signer: &CertInfo, dead: &Dead) -> VerifyError {
    let untrusted = |detail: String| VerifyError::UntrustedSigner {
        subject: signer.subject_line.clone(),
        detail,
    };
    if dead.legacy {
        return VerifyError::LegacyAlgorithm(
            "a sha1WithRSAEncryption certificate signature".into(),
        );
    }
    if dead.bad_signature {
        return untrusted("a certificate signature does not verify with its issuer's key".into());
    }
    if dead.unsupported {
        return VerifyError::UnsupportedAlgorithm(
            "a certificate on the path uses an unsupported signature algorithm".into(),
        );
    }
    if dead.exhausted {
        return untrusted("the path search gave up (too many candidate issuers)".into());
    }
    untrusted(format!(
        "issuer {} is not in the trust store",
        dead.missing_issuer
            .as_deref()
            .unwrap_or(&signer.issuer_line)
    ))
}

impl<'a> Search<'a, '_> {
    /// Depth-first search from `cert`, whose issuers are not yet chosen;
    /// `chain` holds the pool indices above the signer so far.
    fn extend(&mut self, cert: &'a CertInfo, chain: &mut Vec<usize>) {
        if self.complete.len() >= MAX_COMPLETE_PATHS {
            return;
        }
        // +1 for the signer, +1 for the issuer about to be added.
        if chain.len() + 2 > MAX_PATH_CERTIFICATES {
            self.dead.exhausted = true;
            return;
        }
        let mut candidates: Vec<usize> = (0..self.pool.len())
            .filter(|index| {
                let issuer = self.pool[*index].cert;
                cert.names_as_issuer(issuer)
                    && issuer.der != cert.der
                    && !chain.iter().any(|used| {
                        let used = self.pool[*used].cert;
                        used.der == issuer.der
                            || (used.subject == issuer.subject
                                && used.public_key == issuer.public_key)
                    })
            })
            .collect();
        if candidates.is_empty() {
            self.dead.missing_issuer = Some(cert.issuer_line.clone());
            return;
        }
        // Anchors first, then certificates valid now, then those that lead
        // to another name (a self-issued link certificate rarely helps),
        // then the store's before the message's; otherwise as given.
        candidates.sort_by_key(|index| {
            let candidate = self.pool[*index];
            let valid = candidate.cert.not_before <= self.at && self.at <= candidate.cert.not_after;
            (
                !candidate.anchor,
                !valid,
                candidate.cert.self_issued,
                !candidate.trusted,
            )
        });
        for index in candidates {
            if self.complete.len() >= MAX_COMPLETE_PATHS {
                return;
            }
            self.steps += 1;
            if self.steps > MAX_SEARCH_STEPS {
                self.dead.exhausted = true;
                return;
            }
            let candidate = self.pool[index];
            // The child is the chain's last certificate, or the signer.
            match self.signature(cert, chain.last().copied(), index) {
                SignatureCheck::Valid => {}
                SignatureCheck::Invalid => {
                    self.dead.bad_signature = true;
                    continue;
                }
                SignatureCheck::Legacy => {
                    self.dead.legacy = true;
                    continue;
                }
                SignatureCheck::Unsupported => {
                    self.dead.unsupported = true;
                    continue;
                }
            }
            chain.push(index);
            if candidate.anchor {
                self.complete.push(chain.clone());
            } else {
                self.extend(candidate.cert, chain);
            }
            chain.pop();
        }
    }

    fn signature(
        &mut self,
        cert: &CertInfo,
        child: Option<usize>,
        issuer: usize,
    ) -> SignatureCheck {
        if let Some(known) = self.signatures.get(&(child, issuer)) {
            return *known;
        }
        if self.signature_checks >= MAX_SIGNATURE_CHECKS {
            self.dead.exhausted = true;
            return SignatureCheck::Invalid;
        }
        self.signature_checks += 1;
        let result = cert.signed_by(self.pool[issuer].cert, self.allow_sha1);
        self.signatures.insert((child, issuer), result);
        result
    }
}

/// Section 6.1 checks on a complete path (signatures are already proven).
fn check_path(path: &ValidPath<'_>, at: i64) -> Result<(), VerifyError> {
    let certs = &path.certs;
    let last = certs.len() - 1;
    for (depth, cert) in certs.iter().enumerate() {
        let what = if depth == 0 { "" } else { "CA " };
        if let Some(detail) = &cert.broken_extension {
            return Err(VerifyError::CertificateInvalid(format!(
                "{what}certificate {}: {detail}",
                cert.subject_line
            )));
        }
        if let Some(oid) = &cert.unsupported_critical {
            return Err(VerifyError::CertificateInvalid(format!(
                "{what}certificate {} has an unsupported critical extension {oid}",
                cert.subject_line
            )));
        }
        if name::has_ambiguous_rendering(&cert.subject_der).unwrap_or(true)
            || name::has_ambiguous_rendering(&cert.issuer_der).unwrap_or(true)
        {
            return Err(VerifyError::CertificateInvalid(format!(
                "{what}certificate {} has a name with a literal backslash, whose one-line form is ambiguous",
                cert.subject_line
            )));
        }
        if at < cert.not_before {
            return Err(VerifyError::CertificateNotYetValid {
                subject: cert.subject_line.clone(),
                not_before: super::verify::timestamp(cert.not_before).to_string(),
            });
        }
        if at > cert.not_after {
            return Err(VerifyError::CertificateExpired {
                subject: cert.subject_line.clone(),
                not_after: super::verify::timestamp(cert.not_after).to_string(),
            });
        }
        if let Some(eku) = &cert.extended_key_usage
            && !eku.iter().any(|oid| oid.as_bytes() == EKU_EMAIL_PROTECTION)
        {
            return Err(VerifyError::KeyUsage {
                subject: cert.subject_line.clone(),
                detail: if depth == 0 {
                    "extendedKeyUsage does not include emailProtection".into()
                } else {
                    "extendedKeyUsage on the path does not include emailProtection".into()
                },
            });
        }
        if depth > 0 {
            check_ca(cert, depth == last)?;
        }
    }
    check_path_length(certs)?;
    // Name constraints of every CA (the anchor's included) over the
    // certificates below it; self-issued CA certificates are exempt.
    for ca_depth in 1..certs.len() {
        let Some((constraints, critical)) = &certs[ca_depth].name_constraints else {
            continue;
        };
        for (depth, cert) in certs.iter().enumerate().take(ca_depth) {
            if depth > 0 && cert.self_issued {
                continue;
            }
            constraints::check(constraints, *critical, cert).map_err(|detail| {
                VerifyError::CertificateInvalid(format!(
                    "certificate {} violates the name constraints of {}: {detail}",
                    cert.subject_line, certs[ca_depth].subject_line
                ))
            })?;
        }
    }
    Ok(())
}

/// A CA certificate must be a CA: basicConstraints cA (a trust anchor may
/// instead be a v1 certificate or carry keyUsage keyCertSign without
/// basicConstraints, as OpenSSL allows), and keyUsage, when present, must
/// allow keyCertSign.
fn check_ca(cert: &CertInfo, anchor: bool) -> Result<(), VerifyError> {
    if !cert.may_sign_certificates() {
        return Err(VerifyError::CertificateInvalid(format!(
            "CA {} has a keyUsage without keyCertSign",
            cert.subject_line
        )));
    }
    let is_ca = match &cert.basic_constraints {
        Some(bc) => bc.ca,
        None => anchor && (cert.is_v1 || cert.key_usage.is_some()),
    };
    if !is_ca {
        return Err(VerifyError::CertificateInvalid(format!(
            "{} is not a CA (basicConstraints cA is not set)",
            cert.subject_line
        )));
    }
    Ok(())
}

/// pathLenConstraint: a CA may have at most that many non-self-issued CA
/// certificates below it on the path (the signer does not count).
fn check_path_length(certs: &[&CertInfo]) -> Result<(), VerifyError> {
    let mut below = 0usize;
    for cert in certs.iter().skip(1) {
        if let Some(limit) = cert
            .basic_constraints
            .as_ref()
            .and_then(|bc| bc.path_len_constraint)
            && below > usize::from(limit)
        {
            return Err(VerifyError::CertificateInvalid(format!(
                "path length constraint exceeded: {} allows {limit} CA certificate(s) below it, the path has {below}",
                cert.subject_line
            )));
        }
        if !cert.self_issued {
            below += 1;
        }
    }
    Ok(())
}
