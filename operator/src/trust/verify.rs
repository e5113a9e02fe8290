//! S/MIME + CMS verification against a [`TrustStore`].
//!
//! The checks run from the message inwards, so that the reported reason is
//! the most fundamental one: the envelope, the CMS structure, the content
//! digest, the signature, then the signer's certificate (validity, key usage,
//! chain to a trusted CA, revocation) and finally the CA namespace policies.

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Decode, Encode};
use jiff::Timestamp;
use pki_types::{CertificateDer, UnixTime};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{KeyUsage, SubjectKeyIdentifier};

use super::algorithms::{
    self, DigestAlgorithm, KeyType, SHA1_WITH_RSA_OID, Unavailable, certificate_algorithms,
};
use super::dn;
use super::error::VerifyError;
use super::policy::PolicyVerdict;
use super::smime::{self, Shape};
use super::store::TrustStore;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// id-kp-emailProtection, DER contents of the OID.
const EKU_EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];

/// Largest message accepted, before any parsing.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What to do when the signer's CA has no usable CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrlPolicy {
    /// A missing or stale CRL rejects the message (the original's behaviour).
    #[default]
    Require,
    /// Check a CRL when one is present; a present CRL must be current.
    IfPresent,
    /// Do not check revocation.
    Ignore,
}

impl CrlPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Require => "require",
            Self::IfPresent => "if-present",
            Self::Ignore => "ignore",
        }
    }
}

impl std::str::FromStr for CrlPolicy {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "require" => Ok(Self::Require),
            "if-present" => Ok(Self::IfPresent),
            "ignore" => Ok(Self::Ignore),
            other => Err(format!(
                "unknown CRL policy {other:?} (expected require, if-present or ignore)"
            )),
        }
    }
}

/// How to verify.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// The time at which certificates, CRLs and the list must be valid.
    pub at: Timestamp,
    pub crl_policy: CrlPolicy,
    /// Accept SHA-1 digests and sha1WithRSA certificate signatures.
    pub allow_sha1: bool,
}

/// The signer, as shown to users and recorded in status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signer {
    /// OpenSSL one-line subject, e.g. `/DC=ch/DC=cern/CN=x`.
    pub subject: String,
    pub issuer: String,
    /// Serial number in upper-case hex, as `openssl x509 -serial` prints it.
    pub serial: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// What revocation checking established.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Revocation {
    /// A current CRL of the issuing CA does not list the signer.
    Checked {
        crl_this_update: Timestamp,
        crl_next_update: Option<Timestamp>,
    },
    /// Not checked, by policy (`ignore`, or `if-present` without a CRL).
    NotChecked,
}

/// A message whose signature and signer are trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed document, without inner MIME headers.
    pub content: Vec<u8>,
    pub shape: Shape,
    pub digest_algorithm: DigestAlgorithm,
    pub signer: Signer,
    /// Subjects from the signer's issuer up to the trust anchor.
    pub chain: Vec<String>,
    pub signing_time: Option<Timestamp>,
    pub revocation: Revocation,
}

fn timestamp(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap_or(Timestamp::MAX)
}

fn unix_seconds(time: &x509_cert::time::Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

fn hex_upper(bytes: &[u8]) -> String {
    let trimmed = match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    trimmed.iter().map(|byte| format!("{byte:02X}")).collect()
}

/// Verifies `message` and returns the trusted content and its signer.
pub fn verify(
    message: &[u8],
    store: &TrustStore,
    options: &VerifyOptions,
) -> Result<Verified, VerifyError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(VerifyError::MalformedSmime(format!(
            "message of {} bytes exceeds the limit of {MAX_MESSAGE_BYTES}",
            message.len()
        )));
    }
    let envelope =
        smime::split(message).map_err(|err| VerifyError::MalformedSmime(err.to_string()))?;
    let der = super::ber::to_der(&envelope.cms)
        .map_err(|err| VerifyError::MalformedCms(err.to_string()))?;
    let signed_data = decode_signed_data(&der)?;

    let signer_info = match signed_data.signer_infos.0.as_slice() {
        [one] => one,
        [] => return Err(VerifyError::MalformedCms("no SignerInfo".into())),
        many => return Err(VerifyError::MultipleSigners(many.len())),
    };

    let embedded = match &signed_data.encap_content_info.econtent {
        Some(any) => Some(
            any.decode_as::<OctetString>()
                .map_err(|err| VerifyError::MalformedCms(format!("eContent: {err}")))?
                .into_bytes()
                .into_vec(),
        ),
        None => None,
    };
    // A detached part wins over embedded content, as in OpenSSL.
    let content = match (envelope.detached_content, embedded) {
        (Some(detached), _) => detached,
        (None, Some(embedded)) => embedded,
        (None, None) => {
            return Err(VerifyError::MalformedCms(
                "detached signature without content".into(),
            ));
        }
    };

    let certificates = message_certificates(&signed_data)?;
    let (signer_cert, signer_der) = find_signer(signer_info, &certificates)?;

    let digest_algorithm =
        DigestAlgorithm::from_oid(&signer_info.digest_alg.oid).ok_or_else(|| {
            VerifyError::UnsupportedAlgorithm(format!(
                "digest algorithm {} is not supported",
                signer_info.digest_alg.oid
            ))
        })?;
    if digest_algorithm == DigestAlgorithm::Sha1 && !options.allow_sha1 {
        return Err(VerifyError::LegacyAlgorithm(
            "the SHA-1 message digest".into(),
        ));
    }

    let signing_time = check_digest_and_signature(
        signer_info,
        signer_cert,
        &content,
        digest_algorithm,
        options,
    )?;

    let signer = describe_signer(signer_cert, signer_der);
    check_validity(signer_cert, &signer.subject, options.at)?;
    check_key_usage(signer_cert, &signer.subject)?;

    let intermediates: Vec<CertificateDer<'_>> = store
        .intermediates
        .iter()
        .cloned()
        .chain(
            certificates
                .iter()
                .filter(|(_, der)| der.as_slice() != signer_der)
                .map(|(_, der)| CertificateDer::from(der.as_slice())),
        )
        .collect();
    let (chain, revocation) = verify_chain(
        signer_cert,
        signer_der,
        &signer,
        &intermediates,
        store,
        options,
    )?;

    Ok(Verified {
        content: smime::strip_inner_headers(&content).to_vec(),
        shape: envelope.shape,
        digest_algorithm,
        signer,
        chain,
        signing_time,
        revocation,
    })
}

fn decode_signed_data(der: &[u8]) -> Result<SignedData, VerifyError> {
    let info = ContentInfo::from_der(der)
        .map_err(|err| VerifyError::MalformedCms(format!("ContentInfo: {err}")))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(VerifyError::MalformedCms(format!(
            "content type {} is not signedData",
            info.content_type
        )));
    }
    info.content
        .decode_as::<SignedData>()
        .map_err(|err| VerifyError::MalformedCms(format!("SignedData: {err}")))
}

/// The certificates carried in the message, with their DER.
fn message_certificates(
    signed_data: &SignedData,
) -> Result<Vec<(Certificate, Vec<u8>)>, VerifyError> {
    let mut certificates = Vec::new();
    if let Some(set) = &signed_data.certificates {
        for choice in set.0.iter() {
            if let cms::cert::CertificateChoices::Certificate(cert) = choice {
                let der = cert
                    .to_der()
                    .map_err(|err| VerifyError::MalformedCms(format!("certificate: {err}")))?;
                certificates.push((cert.clone(), der));
            }
        }
    }
    Ok(certificates)
}

fn find_signer<'a>(
    signer_info: &SignerInfo,
    certificates: &'a [(Certificate, Vec<u8>)],
) -> Result<(&'a Certificate, &'a [u8]), VerifyError> {
    let found = certificates.iter().find(|(cert, _)| {
        let tbs = cert.tbs_certificate();
        match &signer_info.sid {
            SignerIdentifier::IssuerAndSerialNumber(id) => {
                tbs.issuer() == &id.issuer && tbs.serial_number() == &id.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, own))) if &own == ski)
            }
        }
    });
    found
        .map(|(cert, der)| (cert, der.as_slice()))
        .ok_or_else(|| {
            VerifyError::MalformedCms("the signer's certificate is not in the message".into())
        })
}

/// The AlgorithmIdentifier of a SubjectPublicKeyInfo, as DER contents.
fn spki_algorithm_contents(cert: &Certificate) -> Result<Vec<u8>, VerifyError> {
    let algorithm = &cert.tbs_certificate().subject_public_key_info().algorithm;
    let mut contents = algorithm
        .oid
        .to_der()
        .map_err(|err| VerifyError::MalformedCms(err.to_string()))?;
    if let Some(parameters) = &algorithm.parameters {
        contents.extend(
            parameters
                .to_der()
                .map_err(|err| VerifyError::MalformedCms(err.to_string()))?,
        );
    }
    Ok(contents)
}

/// Checks the messageDigest attribute and the signature; returns signingTime.
fn check_digest_and_signature(
    signer_info: &SignerInfo,
    signer_cert: &Certificate,
    content: &[u8],
    digest_algorithm: DigestAlgorithm,
    options: &VerifyOptions,
) -> Result<Option<Timestamp>, VerifyError> {
    let content_digest = digest_algorithm.digest(content);
    let mut signing_time = None;
    let signed_message = match &signer_info.signed_attrs {
        Some(attributes) => {
            let mut message_digest = None;
            for attribute in attributes.iter() {
                if attribute.oid == ID_MESSAGE_DIGEST {
                    let [value] = attribute.values.as_slice() else {
                        return Err(VerifyError::MalformedCms(
                            "messageDigest must have one value".into(),
                        ));
                    };
                    if message_digest.is_some() {
                        return Err(VerifyError::MalformedCms(
                            "more than one messageDigest attribute".into(),
                        ));
                    }
                    let digest = value.decode_as::<OctetString>().map_err(|err| {
                        VerifyError::MalformedCms(format!("messageDigest: {err}"))
                    })?;
                    message_digest = Some(digest.into_bytes().into_vec());
                } else if attribute.oid == ID_SIGNING_TIME
                    && let [value] = attribute.values.as_slice()
                    && let Ok(time) = value.decode_as::<x509_cert::time::Time>()
                {
                    signing_time = Some(timestamp(unix_seconds(&time)));
                }
            }
            let message_digest = message_digest.ok_or_else(|| {
                VerifyError::MalformedCms("signed attributes without messageDigest".into())
            })?;
            if message_digest != content_digest {
                return Err(VerifyError::DigestMismatch {
                    algorithm: digest_algorithm.name(),
                });
            }
            // The signature covers the DER SET OF, not the [0] IMPLICIT form.
            attributes
                .to_der()
                .map_err(|err| VerifyError::MalformedCms(format!("signed attributes: {err}")))?
        }
        None => content.to_vec(),
    };

    let key_algorithm = spki_algorithm_contents(signer_cert)?;
    let key = KeyType::from_spki_algorithm(&key_algorithm).ok_or_else(|| {
        VerifyError::UnsupportedAlgorithm(
            "the signer's key is neither RSA nor ECDSA P-256/P-384".into(),
        )
    })?;
    check_signature_algorithm_oid(&signer_info.signature_algorithm.oid, key, digest_algorithm)?;
    let verifier = algorithms::cms_signature_algorithm(key, digest_algorithm, options.allow_sha1)
        .map_err(|unavailable| match unavailable {
        Unavailable::Legacy => VerifyError::LegacyAlgorithm("a SHA-1 signature".into()),
        Unavailable::Unsupported => VerifyError::UnsupportedAlgorithm(format!(
            "{key:?} signatures with {} are not supported",
            digest_algorithm.name()
        )),
    })?;
    let public_key = signer_cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes();
    verifier
        .verify_signature(
            public_key,
            &signed_message,
            signer_info.signature.as_bytes(),
        )
        .map_err(|_| VerifyError::SignatureInvalid)?;
    Ok(signing_time)
}

/// Accepts the signature algorithm names that signers use for each key type:
/// the bare key algorithm (OpenSSL's choice for RSA) or the combined one with
/// the same digest.
fn check_signature_algorithm_oid(
    oid: &ObjectIdentifier,
    key: KeyType,
    digest: DigestAlgorithm,
) -> Result<(), VerifyError> {
    let combined = match (key, digest) {
        (KeyType::Rsa, DigestAlgorithm::Sha1) => "1.2.840.113549.1.1.5",
        (KeyType::Rsa, DigestAlgorithm::Sha256) => "1.2.840.113549.1.1.11",
        (KeyType::Rsa, DigestAlgorithm::Sha384) => "1.2.840.113549.1.1.12",
        (KeyType::Rsa, DigestAlgorithm::Sha512) => "1.2.840.113549.1.1.13",
        (_, DigestAlgorithm::Sha1) => "1.2.840.10045.4.1",
        (_, DigestAlgorithm::Sha256) => "1.2.840.10045.4.3.2",
        (_, DigestAlgorithm::Sha384) => "1.2.840.10045.4.3.3",
        (_, DigestAlgorithm::Sha512) => "1.2.840.10045.4.3.4",
    };
    let bare = match key {
        KeyType::Rsa => ID_RSA_ENCRYPTION,
        KeyType::EcP256 | KeyType::EcP384 => ID_EC_PUBLIC_KEY,
    };
    if *oid == bare || oid.to_string() == combined {
        Ok(())
    } else {
        Err(VerifyError::UnsupportedAlgorithm(format!(
            "signature algorithm {oid} does not match a {key:?} key with {}",
            digest.name()
        )))
    }
}

fn describe_signer(cert: &Certificate, der: &[u8]) -> Signer {
    let tbs = cert.tbs_certificate();
    // From the raw bytes: x509-cert re-sorts multi-valued RDNs on decoding,
    // OpenSSL prints them in stored order.
    let (subject, issuer) = match dn::cert_names(der) {
        Ok(names) => (names.subject, names.issuer),
        Err(_) => (dn::one_line(tbs.subject()), dn::one_line(tbs.issuer())),
    };
    Signer {
        subject,
        issuer,
        serial: hex_upper(tbs.serial_number().as_bytes()),
        not_before: timestamp(unix_seconds(&tbs.validity().not_before)),
        not_after: timestamp(unix_seconds(&tbs.validity().not_after)),
    }
}

fn check_validity(cert: &Certificate, subject: &str, at: Timestamp) -> Result<(), VerifyError> {
    let validity = cert.tbs_certificate().validity();
    let not_before = timestamp(unix_seconds(&validity.not_before));
    let not_after = timestamp(unix_seconds(&validity.not_after));
    if at < not_before {
        return Err(VerifyError::CertificateNotYetValid {
            subject: subject.to_string(),
            not_before: not_before.to_string(),
        });
    }
    if at > not_after {
        return Err(VerifyError::CertificateExpired {
            subject: subject.to_string(),
            not_after: not_after.to_string(),
        });
    }
    Ok(())
}

/// OpenSSL's S/MIME signing purpose: a keyUsage extension, when present,
/// must allow digitalSignature or nonRepudiation. (extendedKeyUsage is
/// checked during path building, for every certificate of the chain.)
fn check_key_usage(cert: &Certificate, subject: &str) -> Result<(), VerifyError> {
    match cert.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(Some((_, usage))) if !(usage.digital_signature() || usage.non_repudiation()) => {
            Err(VerifyError::KeyUsage {
                subject: subject.to_string(),
                detail: "keyUsage allows neither digitalSignature nor nonRepudiation".into(),
            })
        }
        Ok(_) => Ok(()),
        Err(err) => Err(VerifyError::CertificateInvalid(format!(
            "keyUsage extension of {subject}: {err}"
        ))),
    }
}

fn unix_time(at: Timestamp) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(at.as_second()).unwrap_or(0),
    ))
}

/// Builds and checks the path from the signer to a trust anchor, with
/// revocation and namespace policies. Returns the issuer subjects on the path.
fn verify_chain(
    signer_cert: &Certificate,
    signer_der: &[u8],
    signer: &Signer,
    intermediates: &[CertificateDer<'_>],
    store: &TrustStore,
    options: &VerifyOptions,
) -> Result<(Vec<String>, Revocation), VerifyError> {
    let at = options.at.as_second();
    let issuer_der = signer_cert
        .tbs_certificate()
        .issuer()
        .to_der()
        .map_err(|err| VerifyError::CertificateInvalid(err.to_string()))?;

    // Choose the CRLs before path building, so that a missing CRL is only
    // reported once the chain itself is known to be good.
    let mut deferred = None;
    let mut usable = Vec::new();
    if options.crl_policy != CrlPolicy::Ignore {
        let mut stale = None;
        for crl in store.crls_for(&issuer_der) {
            if crl.this_update > at {
                stale = Some(format!(
                    "{} is not valid before {}",
                    crl.source,
                    timestamp(crl.this_update)
                ));
            } else if crl.next_update.is_some_and(|next| next < at) {
                stale = Some(format!(
                    "{} expired at {}",
                    crl.source,
                    timestamp(crl.next_update.unwrap_or_default())
                ));
            } else {
                usable.push(crl);
            }
        }
        if usable.is_empty() {
            deferred = match (stale, options.crl_policy) {
                (Some(detail), _) => Some(VerifyError::CrlStale {
                    issuer: signer.issuer.clone(),
                    detail,
                }),
                (None, CrlPolicy::Require) => Some(VerifyError::CrlMissing {
                    issuer: signer.issuer.clone(),
                }),
                (None, _) => None,
            };
        }
    }
    // A self-signed signer that is itself in the trust store is trusted
    // directly (test PKIs and some small VOs publish this way; OpenSSL
    // accepts it too). webpki refuses CA certificates as end entities, so
    // this case is checked here.
    if let Some(ca) = store
        .cas
        .iter()
        .find(|ca| ca.self_signed && ca.der.as_ref() == signer_der)
    {
        return verify_direct_trust(signer_cert, signer, ca, &usable, deferred, store, options);
    }

    let end_entity_der = CertificateDer::from(signer_der);
    let end_entity = webpki::EndEntityCert::try_from(&end_entity_der)
        .map_err(|err| VerifyError::CertificateInvalid(format!("signer certificate: {err}")))?;

    // Trust anchors carry no validity of their own in webpki: check the CA
    // certificate each anchor came from, so that an expired root is refused.
    let anchor_valid = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
        let ca = anchor_ca(store, path.anchor());
        match ca {
            Some(ca) if ca.not_after < at => Err(webpki::Error::CertExpired {
                time: unix_time(options.at),
                not_after: unix_time(timestamp(ca.not_after)),
            }),
            Some(ca) if ca.not_before > at => Err(webpki::Error::CertNotValidYet {
                time: unix_time(options.at),
                not_before: unix_time(timestamp(ca.not_before)),
            }),
            _ => Ok(()),
        }
    };

    let path = end_entity
        .verify_for_usage(
            certificate_algorithms(options.allow_sha1),
            &store.anchors,
            intermediates,
            unix_time(options.at),
            webpki::KeyUsage::required_if_present(EKU_EMAIL_PROTECTION),
            None,
            Some(&anchor_valid),
        )
        .map_err(|err| map_chain_error(err, signer, options))?;

    // webpki ignores keyUsage on CA certificates; OpenSSL (and RFC 5280)
    // require keyCertSign when the extension is present.
    for cert in path.intermediate_certificates() {
        check_ca_key_usage(cert.der().as_ref())?;
    }
    if let Some(ca) = anchor_ca(store, path.anchor()) {
        check_ca_key_usage(ca.der.as_ref())?;
    }

    // Namespace policies: every CA on the path may only vouch for subjects
    // its policy permits.
    let mut links: Vec<(String, String)> = Vec::new();
    let mut chain = Vec::new();
    let mut subject = signer.subject.clone();
    for der in path.intermediate_certificates() {
        let intermediate = dn::cert_names(der.der().as_ref())
            .map_err(|err| VerifyError::CertificateInvalid(err.to_string()))?
            .subject;
        links.push((intermediate.clone(), subject));
        chain.push(intermediate.clone());
        subject = intermediate;
    }
    let anchor_name = path_anchor_subject(store, path.anchor());
    links.push((anchor_name.clone(), subject));
    chain.push(anchor_name);
    for (issuer, subject) in links {
        if let PolicyVerdict::Denied { reason } = store.check_policy(&issuer, &subject) {
            return Err(VerifyError::NamespaceViolation {
                issuer,
                subject,
                detail: reason,
            });
        }
    }

    if let Some(err) = deferred {
        return Err(err);
    }
    // The signer's issuer: the first intermediate, else the anchor's CA.
    let issuer_der: Vec<u8> = match path.intermediate_certificates().next() {
        Some(cert) => cert.der().as_ref().to_vec(),
        None => anchor_ca(store, path.anchor())
            .map(|ca| ca.der.as_ref().to_vec())
            .unwrap_or_default(),
    };
    let issuer_cert = Certificate::from_der(&issuer_der)
        .map_err(|err| VerifyError::CertificateInvalid(format!("issuer certificate: {err}")))?;
    let revocation = check_revocation(signer_cert, &issuer_cert, &usable, signer, options)?;
    Ok((chain, revocation))
}

/// Checks the signer against the usable CRLs of its issuer: each must be
/// signed by the issuer's key (which must allow cRLSign), must not carry a
/// critical extension we do not understand, and must not list the serial.
fn check_revocation(
    signer_cert: &Certificate,
    issuer_cert: &Certificate,
    usable: &[&super::store::StoredCrl],
    signer: &Signer,
    options: &VerifyOptions,
) -> Result<Revocation, VerifyError> {
    let Some(first) = usable.first() else {
        return Ok(Revocation::NotChecked);
    };
    if let Ok(Some((_, usage))) = issuer_cert.tbs_certificate().get_extension::<KeyUsage>()
        && !usage.crl_sign()
    {
        return Err(VerifyError::CrlInvalid {
            issuer: signer.issuer.clone(),
            detail: "the CA's keyUsage does not allow cRLSign".into(),
        });
    }
    let serial =
        super::store::normalise_serial(signer_cert.tbs_certificate().serial_number().as_bytes());
    for crl in usable {
        if let Some(extension) = &crl.unsupported_critical {
            return Err(VerifyError::CrlInvalid {
                issuer: signer.issuer.clone(),
                detail: format!(
                    "{} has unsupported critical extension {extension}",
                    crl.source
                ),
            });
        }
        check_crl_signature(crl, issuer_cert, signer, options)?;
        if crl.revoked.contains(serial) {
            return Err(VerifyError::CertificateRevoked {
                serial: signer.serial.clone(),
                issuer: signer.issuer.clone(),
            });
        }
    }
    Ok(Revocation::Checked {
        crl_this_update: timestamp(first.this_update),
        crl_next_update: first.next_update.map(timestamp),
    })
}

/// A CA certificate on the path must be allowed to sign certificates:
/// keyUsage, when present, includes keyCertSign, and basicConstraints, when
/// present, says cA (webpki checks the latter for intermediates only).
fn check_ca_key_usage(der: &[u8]) -> Result<(), VerifyError> {
    let cert = Certificate::from_der(der)
        .map_err(|err| VerifyError::CertificateInvalid(format!("CA certificate: {err}")))?;
    let subject = || {
        dn::cert_names(der)
            .map(|names| names.subject)
            .unwrap_or_default()
    };
    let tbs = cert.tbs_certificate();
    if let Ok(Some((_, usage))) = tbs.get_extension::<KeyUsage>()
        && !usage.key_cert_sign()
    {
        return Err(VerifyError::CertificateInvalid(format!(
            "CA {} has a keyUsage without keyCertSign",
            subject()
        )));
    }
    if let Ok(Some((_, constraints))) =
        tbs.get_extension::<x509_cert::ext::pkix::BasicConstraints>()
        && !constraints.ca
    {
        return Err(VerifyError::CertificateInvalid(format!(
            "{} is not a CA (basicConstraints cA is false)",
            subject()
        )));
    }
    Ok(())
}

/// The checks path building would do, for a signer that is its own anchor.
fn verify_direct_trust(
    signer_cert: &Certificate,
    signer: &Signer,
    ca: &super::store::StoredCa,
    usable: &[&super::store::StoredCrl],
    deferred: Option<VerifyError>,
    store: &TrustStore,
    options: &VerifyOptions,
) -> Result<(Vec<String>, Revocation), VerifyError> {
    match signer_cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()
    {
        Ok(Some((_, eku)))
            if !eku
                .0
                .iter()
                .any(|oid| oid.as_bytes() == EKU_EMAIL_PROTECTION) =>
        {
            return Err(VerifyError::KeyUsage {
                subject: signer.subject.clone(),
                detail: "extendedKeyUsage does not include emailProtection".into(),
            });
        }
        Ok(_) => {}
        Err(err) => return Err(VerifyError::CertificateInvalid(err.to_string())),
    }
    if let PolicyVerdict::Denied { reason } = store.check_policy(&ca.subject, &signer.subject) {
        return Err(VerifyError::NamespaceViolation {
            issuer: ca.subject.clone(),
            subject: signer.subject.clone(),
            detail: reason,
        });
    }
    if let Some(err) = deferred {
        return Err(err);
    }
    let revocation = check_revocation(signer_cert, signer_cert, usable, signer, options)?;
    Ok((vec![ca.subject.clone()], revocation))
}

/// Verifies a CRL's signature with `issuer`'s key.
fn check_crl_signature(
    crl: &super::store::StoredCrl,
    issuer: &Certificate,
    signer: &Signer,
    options: &VerifyOptions,
) -> Result<(), VerifyError> {
    let key_algorithm = spki_algorithm_contents(issuer)?;
    let public_key = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes();
    let candidates: Vec<_> = certificate_algorithms(true)
        .iter()
        .filter(|candidate| {
            candidate.signature_alg_id().as_ref() == crl.signature_algorithm.as_slice()
                && candidate.public_key_alg_id().as_ref() == key_algorithm.as_slice()
        })
        .collect();
    if !options.allow_sha1
        && crl.signature_algorithm.starts_with(&[0x06, 0x09])
        && crl.signature_algorithm.get(2..11) == Some(SHA1_WITH_RSA_OID)
    {
        return Err(VerifyError::LegacyAlgorithm(format!(
            "the sha1WithRSAEncryption signature of CRL {}",
            crl.source
        )));
    }
    let verified = candidates.iter().any(|candidate| {
        candidate
            .verify_signature(public_key, &crl.tbs_der, &crl.signature)
            .is_ok()
    });
    if verified {
        Ok(())
    } else {
        Err(VerifyError::CrlInvalid {
            issuer: signer.issuer.clone(),
            detail: format!(
                "the signature of {} does not verify with the CA's key",
                crl.source
            ),
        })
    }
}

fn anchor_ca<'s>(
    store: &'s TrustStore,
    anchor: &pki_types::TrustAnchor<'_>,
) -> Option<&'s super::store::StoredCa> {
    store
        .anchors
        .iter()
        .position(|candidate| {
            candidate.subject.as_ref() == anchor.subject.as_ref()
                && candidate.subject_public_key_info.as_ref()
                    == anchor.subject_public_key_info.as_ref()
        })
        .and_then(|index| store.anchor_ca.get(index))
        .and_then(|index| store.cas.get(*index))
}

fn path_anchor_subject(store: &TrustStore, anchor: &pki_types::TrustAnchor<'_>) -> String {
    anchor_ca(store, anchor)
        .map(|ca| ca.subject.clone())
        .unwrap_or_default()
}

fn map_chain_error(err: webpki::Error, signer: &Signer, options: &VerifyOptions) -> VerifyError {
    use webpki::Error as E;
    let chain = || format!("a CA certificate on the path of {}", signer.subject);
    match err {
        E::UnknownIssuer => VerifyError::UntrustedSigner {
            subject: signer.subject.clone(),
            detail: format!("issuer {} is not in the trust store", signer.issuer),
        },
        E::InvalidSignatureForPublicKey => VerifyError::UntrustedSigner {
            subject: signer.subject.clone(),
            detail: "a certificate signature does not verify with its issuer's key".into(),
        },
        E::CertExpired { not_after, .. } => VerifyError::CertificateExpired {
            subject: chain(),
            not_after: timestamp(i64::try_from(not_after.as_secs()).unwrap_or(i64::MAX))
                .to_string(),
        },
        E::CertNotValidYet { not_before, .. } => VerifyError::CertificateNotYetValid {
            subject: chain(),
            not_before: timestamp(i64::try_from(not_before.as_secs()).unwrap_or(i64::MAX))
                .to_string(),
        },
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => VerifyError::KeyUsage {
            subject: signer.subject.clone(),
            detail: "extendedKeyUsage on the path does not include emailProtection".into(),
        },
        E::UnsupportedSignatureAlgorithmContext(ref context)
            if !options.allow_sha1
                && context
                    .signature_algorithm_id
                    .windows(SHA1_WITH_RSA_OID.len())
                    .any(|window| window == SHA1_WITH_RSA_OID) =>
        {
            VerifyError::LegacyAlgorithm("a sha1WithRSAEncryption certificate signature".into())
        }
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            VerifyError::UnsupportedAlgorithm(format!(
                "a certificate on the path uses an unsupported signature algorithm: {err:?}"
            ))
        }
        other => VerifyError::CertificateInvalid(format!("{other:?}")),
    }
}
