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
use x509_cert::Certificate;
use x509_cert::ext::pkix::{KeyUsage, SubjectKeyIdentifier};

use super::algorithms::{self, DigestAlgorithm, KeyType, Unavailable};
use super::cert::{CertInfo, unix_seconds};
use super::crl;
use super::dn;
use super::error::VerifyError;
use super::path::{self, Candidate};
use super::policy::PolicyVerdict;
use super::smime::{self, Shape};
use super::store::TrustStore;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

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

pub fn timestamp(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap_or(Timestamp::MAX)
}

pub fn hex_upper(bytes: &[u8]) -> String {
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
    let signed_data = decode_signed_data(&super::cert::cms_for_parsing(&der))?;

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

    let certificates = message_certificates(&der);
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

    let (chain, revocation) = verify_chain(signer_cert, signer_der, &certificates, store, options)?;

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

/// The certificates carried in the message, parsed, with their DER as
/// encoded in the message.
fn message_certificates(content_info: &[u8]) -> Vec<(Certificate, Vec<u8>)> {
    super::cert::raw_cms_certificates(content_info)
        .into_iter()
        .filter_map(|der| {
            let cert = Certificate::from_der(&super::cert::for_parsing(&der)).ok()?;
            Some((cert, der))
        })
        .collect()
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

/// Builds and validates the signer's path (see [`super::path`]), then
/// checks the namespace policies of every CA on it and the revocation of
/// every certificate on it. Returns the CA subjects from the signer's
/// issuer up to the trust anchor.
fn verify_chain(
    signer_cert: &Certificate,
    signer_der: &[u8],
    certificates: &[(Certificate, Vec<u8>)],
    store: &TrustStore,
    options: &VerifyOptions,
) -> Result<(Vec<String>, Revocation), VerifyError> {
    let at = options.at.as_second();
    let signer = CertInfo::new(signer_cert.clone(), signer_der.to_vec())
        .map_err(|err| VerifyError::CertificateInvalid(format!("signer certificate: {err}")))?;
    let carried: Vec<CertInfo> = certificates
        .iter()
        .filter(|(_, der)| der.as_slice() != signer_der)
        .filter(|(_, der)| !store.cas.iter().any(|ca| ca.info.der == *der))
        .filter_map(|(cert, der)| CertInfo::new(cert.clone(), der.clone()).ok())
        .collect();
    let mut pool: Vec<Candidate<'_>> = store
        .cas
        .iter()
        .map(|ca| Candidate {
            cert: &ca.info,
            anchor: ca.self_signed,
            trusted: true,
        })
        .collect();
    pool.extend(carried.iter().map(|cert| Candidate {
        cert,
        anchor: false,
        trusted: false,
    }));
    let path = path::validate(&signer, &pool, at, options.allow_sha1)?;

    // Namespace policies: every CA on the path may only vouch for subjects
    // its policy permits (a self-signed signer is checked against itself).
    let links: Vec<(&CertInfo, &CertInfo)> = match path.certs.as_slice() {
        [only] => vec![(*only, *only)],
        certs => certs.windows(2).map(|pair| (pair[0], pair[1])).collect(),
    };
    for (subject, issuer) in &links {
        if let PolicyVerdict::Denied { reason } = store.check_policy(issuer, &subject.subject_line)
        {
            return Err(VerifyError::NamespaceViolation {
                issuer: issuer.subject_line.clone(),
                subject: subject.subject_line.clone(),
                detail: reason,
            });
        }
    }

    // Revocation of every certificate on the path, the signer first, the
    // trust anchor included (against its own CRL), as `openssl
    // -crl_check_all` does.
    let same_ca: Vec<&CertInfo> = store
        .cas
        .iter()
        .map(|ca| &ca.info)
        .chain(path.certs.iter().copied())
        .collect();
    let anchor = path.anchor();
    let anchor_link = (path.certs.len() > 1).then_some((anchor, anchor));
    let mut signer_crl = None;
    for (depth, (cert, issuer)) in links.iter().copied().chain(anchor_link).enumerate() {
        let used = crl::check_certificate(
            cert,
            issuer,
            &store.crls,
            &same_ca,
            options.crl_policy,
            at,
            options.allow_sha1,
        )?;
        if depth == 0 {
            signer_crl = used;
        }
    }
    let revocation = match signer_crl {
        Some(used) => Revocation::Checked {
            crl_this_update: timestamp(used.this_update),
            crl_next_update: used.next_update.map(timestamp),
        },
        None => Revocation::NotChecked,
    };
    let chain = path.certs[1..]
        .iter()
        .map(|cert| cert.subject_line.clone())
        .collect::<Vec<_>>();
    let chain = if chain.is_empty() {
        vec![path.anchor().subject_line.clone()]
    } else {
        chain
    };
    Ok((chain, revocation))
}
