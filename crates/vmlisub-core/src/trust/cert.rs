//! A certificate digested once for path building and revocation.
//!
//! Everything path validation asks of a certificate (canonical names, key
//! identifiers, constraints, the exact signed bytes) is read here, so that
//! the store parses its CAs once and a verification only parses the few
//! certificates a message carries.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage,
    NameConstraints, SubjectAltName, SubjectKeyIdentifier,
};

use super::algorithms::{SignatureCheck, certificate_algorithms, is_sha1_signature};
use super::dn;
use super::name::CanonicalName;

/// Extensions whose meaning vmlisub knows, so that they may be critical.
/// The list follows OpenSSL's `X509_supported_extension()` where vmlisub
/// implements the extension; certificate policies are recognised but not
/// processed (policy validation is out of scope, see docs/trust.md).
const SUPPORTED_CRITICAL: &[&str] = &[
    "2.5.29.15",            // keyUsage
    "2.5.29.17",            // subjectAltName
    "2.5.29.19",            // basicConstraints
    "2.5.29.30",            // nameConstraints
    "2.5.29.31",            // cRLDistributionPoints
    "2.5.29.32",            // certificatePolicies (not processed)
    "2.5.29.33",            // policyMappings (not processed)
    "2.5.29.36",            // policyConstraints (not processed)
    "2.5.29.37",            // extKeyUsage
    "2.5.29.54",            // inhibitAnyPolicy (not processed)
    "1.3.6.1.5.5.7.48.1.5", // id-pkix-ocsp-nocheck (nothing to do)
];

/// The certificate and the facts path validation needs.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub der: Vec<u8>,
    pub cert: Certificate,
    /// The exact signed bytes (tbsCertificate as encoded).
    pub tbs_raw: Vec<u8>,
    pub subject: CanonicalName,
    pub issuer: CanonicalName,
    pub subject_der: Vec<u8>,
    pub issuer_der: Vec<u8>,
    /// One-line subject, as OpenSSL prints it.
    pub subject_line: String,
    pub issuer_line: String,
    pub not_before: i64,
    pub not_after: i64,
    pub serial_der: Vec<u8>,
    pub ski: Option<Vec<u8>>,
    pub aki: Option<Vec<u8>>,
    /// The SubjectPublicKeyInfo algorithm, as DER contents.
    pub key_algorithm: Vec<u8>,
    pub public_key: Vec<u8>,
    /// The certificate's signature algorithm, as DER contents.
    pub signature_algorithm: Vec<u8>,
    pub signature: Vec<u8>,
    pub is_v1: bool,
    /// Subject equals issuer (section 7.1 comparison).
    pub self_issued: bool,
    pub basic_constraints: Option<BasicConstraints>,
    pub key_usage: Option<KeyUsage>,
    pub extended_key_usage: Option<Vec<ObjectIdentifier>>,
    /// The name constraints and whether the extension is critical.
    pub name_constraints: Option<(NameConstraints, bool)>,
    pub subject_alt_names: Vec<GeneralName>,
    pub crl_distribution_points: Option<CrlDistributionPoints>,
    /// The first critical extension vmlisub does not implement.
    pub unsupported_critical: Option<String>,
    /// A present extension that could not be decoded.
    pub broken_extension: Option<String>,
}

/// Why a certificate could not be digested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CertError(pub String);

/// Seconds since the Unix epoch of an X.509 time (saturating).
pub fn unix_seconds(time: &x509_cert::time::Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The exact bytes of the first element inside a DER SEQUENCE (the signed
/// part of a certificate or CRL), without re-encoding anything.
pub fn first_element(der: &[u8]) -> Result<Vec<u8>, der::Error> {
    let outer = der::asn1::AnyRef::from_der(der)?;
    let (inner, _) = der::asn1::AnyRef::from_der_partial(outer.value())?;
    inner.to_der()
}

/// An AlgorithmIdentifier as DER contents (OID and parameters, no tag).
pub fn algorithm_contents(
    algorithm: &spki::AlgorithmIdentifierOwned,
) -> Result<Vec<u8>, der::Error> {
    let mut contents = algorithm.oid.to_der()?;
    if let Some(parameters) = &algorithm.parameters {
        contents.extend(parameters.to_der()?);
    }
    Ok(contents)
}

/// A copy of DER input that x509-cert can decode: UTCTime values from 1950
/// to 1969 (valid in RFC 5280, beyond the `der` crate's 1970 floor) become
/// 1970-01-01T00:00:00Z. Lengths do not change, so byte offsets still
/// match the original, and no verdict at a time after 1970 changes (a
/// validity that starts before 1970 has started; one that ended before
/// 1970 has ended). Signatures are always checked over the original bytes.
pub fn for_parsing(der: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut spans = Vec::new();
    find_early_utc_times(der, 0, 0, &mut spans);
    if spans.is_empty() {
        return std::borrow::Cow::Borrowed(der);
    }
    let mut copy = der.to_vec();
    for start in spans {
        if let Some(digits) = copy.get_mut(start..start + 12) {
            digits.copy_from_slice(b"700101000000");
        }
    }
    std::borrow::Cow::Owned(copy)
}

/// Offsets of the contents of 13-byte UTCTime values with years 50-69,
/// searching constructed elements (never the inside of OCTET STRINGs).
fn find_early_utc_times(der: &[u8], base: usize, depth: usize, out: &mut Vec<usize>) {
    if depth > 32 {
        return;
    }
    let mut reader = dn::Der::new(der, 0);
    let mut offset = 0;
    while !reader.is_empty() {
        let Ok(tlv) = reader.read() else {
            return;
        };
        let header = tlv.whole.len() - tlv.content.len();
        let content_start = base + offset + header;
        if tlv.constructed {
            find_early_utc_times(tlv.content, content_start, depth + 1, out);
        } else if tlv.class == 0
            && tlv.number == 23
            && tlv.content.len() == 13
            && matches!(tlv.content.first(), Some(b'5' | b'6'))
            && tlv.content[1].is_ascii_digit()
        {
            out.push(content_start);
        }
        offset += tlv.whole.len();
    }
}

/// [`for_parsing`] limited to the certificate set of a CMS SignedData (DER
/// ContentInfo): the certificates' validity dates are clamped for decoding,
/// while the signed attributes (whose DER the signature covers, and which
/// are re-encoded from the parse) stay exactly as signed.
pub fn cms_for_parsing(content_info: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let Some((start, end)) = cms_certificates_span(content_info) else {
        return std::borrow::Cow::Borrowed(content_info);
    };
    let Some(certificates) = content_info.get(start..end) else {
        return std::borrow::Cow::Borrowed(content_info);
    };
    match for_parsing(certificates) {
        std::borrow::Cow::Borrowed(_) => std::borrow::Cow::Borrowed(content_info),
        std::borrow::Cow::Owned(clamped) => {
            let mut copy = content_info.to_vec();
            copy[start..end].copy_from_slice(&clamped);
            std::borrow::Cow::Owned(copy)
        }
    }
}

/// The byte range of the `certificates [0]` element of a SignedData.
fn cms_certificates_span(content_info: &[u8]) -> Option<(usize, usize)> {
    let base = content_info.as_ptr() as usize;
    let mut top = dn::Der::new(content_info, 0);
    let info = top.read().ok()?;
    let mut fields = info.inner();
    let _content_type = fields.read().ok()?;
    let explicit = fields.read().ok()?;
    let mut inner = explicit.inner();
    let signed_data = inner.read().ok()?;
    let mut fields = signed_data.inner();
    for _ in 0..3 {
        fields.read().ok()?;
    }
    let next = fields.read().ok()?;
    if next.class != 2 || next.number != 0 || !next.constructed {
        return None;
    }
    let start = (next.whole.as_ptr() as usize).checked_sub(base)?;
    Some((start, start + next.whole.len()))
}

/// The certificates of a CMS SignedData (DER ContentInfo), exactly as
/// encoded: re-encoding a parsed certificate can change its signed bytes
/// (x509-cert writes validity dates before 2050 as UTCTime).
pub fn raw_cms_certificates(content_info: &[u8]) -> Vec<Vec<u8>> {
    let walk = || -> Result<Vec<Vec<u8>>, dn::DnError> {
        let mut top = dn::Der::new(content_info, 0);
        let info = top.read()?;
        let mut fields = info.inner();
        let _content_type = fields.read()?;
        let explicit = fields.read()?;
        let mut inner = explicit.inner();
        let signed_data = inner.read()?;
        let mut fields = signed_data.inner();
        let _version = fields.read()?;
        let _digest_algorithms = fields.read()?;
        let _encapsulated = fields.read()?;
        let mut found = Vec::new();
        if fields.is_empty() {
            return Ok(found);
        }
        let next = fields.read()?;
        // certificates [0] IMPLICIT CertificateSet
        if next.class == 2 && next.number == 0 && next.constructed {
            let mut choices = next.inner();
            while !choices.is_empty() {
                let choice = choices.read()?;
                if choice.class == 0 && choice.number == 16 {
                    found.push(choice.whole.to_vec());
                }
            }
        }
        Ok(found)
    };
    walk().unwrap_or_default()
}

impl CertInfo {
    /// Parses and digests a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let cert = Certificate::from_der(&for_parsing(der))
            .map_err(|err| CertError(format!("bad certificate: {err}")))?;
        Self::new(cert, der.to_vec())
    }

    /// Digests an already parsed certificate whose original DER is `der`.
    pub fn new(cert: Certificate, der: Vec<u8>) -> Result<Self, CertError> {
        let bad = |what: &str, err: der::Error| CertError(format!("{what}: {err}"));
        let tbs = cert.tbs_certificate();
        let (issuer_der, subject_der) = match dn::raw_name_ders(&der) {
            Ok((issuer, subject)) => (issuer.to_vec(), subject.to_vec()),
            Err(_) => (
                tbs.issuer().to_der().map_err(|e| bad("issuer", e))?,
                tbs.subject().to_der().map_err(|e| bad("subject", e))?,
            ),
        };
        let subject = CanonicalName::from_der(&subject_der)
            .map_err(|err| CertError(format!("subject: {err}")))?;
        let issuer = CanonicalName::from_der(&issuer_der)
            .map_err(|err| CertError(format!("issuer: {err}")))?;
        // From the raw bytes: x509-cert re-sorts multi-valued RDNs while
        // decoding, OpenSSL prints them in stored order.
        let (subject_line, issuer_line) = match dn::cert_names(&der) {
            Ok(names) => (names.subject, names.issuer),
            Err(_) => (dn::one_line(tbs.subject()), dn::one_line(tbs.issuer())),
        };
        let spki = tbs.subject_public_key_info();
        let key_algorithm = algorithm_contents(&spki.algorithm).map_err(|e| bad("key", e))?;
        let public_key = spki.subject_public_key.raw_bytes().to_vec();
        let signature_algorithm =
            algorithm_contents(cert.signature_algorithm()).map_err(|e| bad("algorithm", e))?;
        let signature = cert
            .signature()
            .as_bytes()
            .ok_or_else(|| CertError("certificate signature has unused bits".into()))?
            .to_vec();
        let tbs_raw = first_element(&der).map_err(|e| bad("tbsCertificate", e))?;
        let serial_der = tbs.serial_number().to_der().map_err(|e| bad("serial", e))?;

        let mut info = Self {
            self_issued: subject == issuer,
            subject,
            issuer,
            subject_line,
            issuer_line,
            not_before: unix_seconds(&tbs.validity().not_before),
            not_after: unix_seconds(&tbs.validity().not_after),
            serial_der,
            ski: None,
            aki: None,
            key_algorithm,
            public_key,
            signature_algorithm,
            signature,
            is_v1: tbs.version() == Version::V1,
            basic_constraints: None,
            key_usage: None,
            extended_key_usage: None,
            name_constraints: None,
            subject_alt_names: Vec::new(),
            crl_distribution_points: None,
            unsupported_critical: None,
            broken_extension: None,
            subject_der,
            issuer_der,
            tbs_raw,
            der,
            cert: cert.clone(),
        };
        let mut seen = Vec::new();
        for extension in tbs.extensions().into_iter().flatten() {
            // RFC 5280 4.2: at most one instance of an extension (OpenSSL
            // marks a certificate with a repeated one invalid); otherwise the
            // last would silently win.
            if seen.contains(&extension.extn_id) {
                info.broken_extension.get_or_insert_with(|| {
                    format!("extension {} appears more than once", extension.extn_id)
                });
            }
            seen.push(extension.extn_id);
            info.read_extension(extension);
        }
        Ok(info)
    }

    fn read_extension(&mut self, extension: &x509_cert::ext::Extension) {
        let oid = extension.extn_id.to_string();
        let value = extension.extn_value.as_bytes();
        let mut broken = None;
        match oid.as_str() {
            "2.5.29.14" => match SubjectKeyIdentifier::from_der(value) {
                Ok(ski) => self.ski = Some(ski.0.as_bytes().to_vec()),
                Err(err) => broken = Some(err),
            },
            "2.5.29.35" => match AuthorityKeyIdentifier::from_der(value) {
                Ok(aki) => self.aki = aki.key_identifier.map(|id| id.as_bytes().to_vec()),
                Err(err) => broken = Some(err),
            },
            "2.5.29.19" => match BasicConstraints::from_der(value) {
                Ok(bc) => self.basic_constraints = Some(bc),
                Err(err) => broken = Some(err),
            },
            "2.5.29.15" => match KeyUsage::from_der(value) {
                Ok(ku) => self.key_usage = Some(ku),
                Err(err) => broken = Some(err),
            },
            "2.5.29.37" => match ExtendedKeyUsage::from_der(value) {
                Ok(eku) => self.extended_key_usage = Some(eku.0),
                Err(err) => broken = Some(err),
            },
            "2.5.29.30" => match NameConstraints::from_der(value) {
                Ok(nc) => self.name_constraints = Some((nc, extension.critical)),
                Err(err) => broken = Some(err),
            },
            "2.5.29.17" => match SubjectAltName::from_der(value) {
                Ok(san) => self.subject_alt_names = san.0,
                Err(err) => broken = Some(err),
            },
            "2.5.29.31" => match CrlDistributionPoints::from_der(value) {
                Ok(dps) => self.crl_distribution_points = Some(dps),
                Err(err) => broken = Some(err),
            },
            _ => {}
        }
        if let Some(err) = broken
            && self.broken_extension.is_none()
        {
            self.broken_extension = Some(format!("extension {oid} cannot be decoded: {err}"));
        }
        if extension.critical
            && self.unsupported_critical.is_none()
            && !SUPPORTED_CRITICAL.contains(&oid.as_str())
        {
            self.unsupported_critical = Some(oid);
        }
    }

    /// basicConstraints says cA.
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.as_ref().is_some_and(|bc| bc.ca)
    }

    /// keyUsage is absent or allows keyCertSign.
    pub fn may_sign_certificates(&self) -> bool {
        self.key_usage.as_ref().is_none_or(KeyUsage::key_cert_sign)
    }

    /// keyUsage is absent or allows cRLSign.
    pub fn may_sign_crls(&self) -> bool {
        self.key_usage.as_ref().is_none_or(KeyUsage::crl_sign)
    }

    /// Whether `issuer` could have issued `self` by name and key identifier
    /// (the signature is checked separately).
    pub fn names_as_issuer(&self, issuer: &CertInfo) -> bool {
        self.issuer == issuer.subject
            && match (&self.aki, &issuer.ski) {
                (Some(aki), Some(ski)) => aki == ski,
                _ => true,
            }
    }

    /// Self-signed in OpenSSL's sense: self-issued with consistent key
    /// identifiers, and (where the algorithm is known) the signature
    /// verifies with its own key. A key-rollover link certificate is
    /// self-issued but not self-signed.
    pub fn is_self_signed(&self) -> bool {
        if !self.names_as_issuer(self) {
            return false;
        }
        !matches!(
            self.verify_signature_of(
                &self.tbs_raw,
                &self.signature_algorithm,
                &self.signature,
                true
            ),
            SignatureCheck::Invalid
        )
    }

    /// Verifies a signature made with this certificate's key.
    pub fn verify_signature_of(
        &self,
        message: &[u8],
        signature_algorithm: &[u8],
        signature: &[u8],
        allow_sha1: bool,
    ) -> SignatureCheck {
        if !allow_sha1 && is_sha1_signature(signature_algorithm) {
            return SignatureCheck::Legacy;
        }
        let mut known = false;
        for candidate in certificate_algorithms(true) {
            if candidate.signature_alg_id().as_ref() != signature_algorithm
                || candidate.public_key_alg_id().as_ref() != self.key_algorithm.as_slice()
            {
                continue;
            }
            known = true;
            if candidate
                .verify_signature(&self.public_key, message, signature)
                .is_ok()
            {
                return SignatureCheck::Valid;
            }
        }
        if known {
            SignatureCheck::Invalid
        } else {
            SignatureCheck::Unsupported
        }
    }

    /// Whether `issuer`'s key signed this certificate.
    pub fn signed_by(&self, issuer: &CertInfo, allow_sha1: bool) -> SignatureCheck {
        issuer.verify_signature_of(
            &self.tbs_raw,
            &self.signature_algorithm,
            &self.signature,
            allow_sha1,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::trust::name::tlv;

    fn gridka_der() -> Vec<u8> {
        let pem = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/testdata/real-lists/ca/dd4b34ea.0"),
        )
        .unwrap();
        pem_rfc7468::decode_vec(&pem).unwrap().1
    }

    #[test]
    fn utctime_from_1950_to_1969_is_read_as_1970_and_signed_bytes_stay() {
        let original = gridka_der();
        let info = CertInfo::from_der(&original).unwrap();
        // notBefore 2003-06-11 as UTCTime: "030611..." -> "650611..." (1965).
        let at = original
            .windows(13)
            .position(|w| w.starts_with(b"030611") && w[12] == b'Z')
            .unwrap();
        let mut early = original.clone();
        early[at..at + 2].copy_from_slice(b"65");
        assert!(
            x509_cert::Certificate::from_der(&early).is_err(),
            "der refuses 1965"
        );
        let parsed = CertInfo::from_der(&early).unwrap();
        assert_eq!(parsed.not_before, 0, "clamped to 1970-01-01");
        assert_eq!(parsed.not_after, info.not_after);
        // The signed bytes are the certificate's own, not the clamped copy.
        assert_eq!(parsed.tbs_raw, first_element(&early).unwrap());
        assert_ne!(parsed.tbs_raw, info.tbs_raw);
        // An OCTET STRING that happens to hold such bytes is never touched.
        let octets = [
            0x04, 0x0f, 0x17, 0x0d, b'6', b'5', b'0', b'1', b'0', b'1', b'0', b'0', b'0', b'0',
            b'0', b'0', b'Z',
        ];
        assert_eq!(for_parsing(&octets).as_ref(), &octets[..]);
    }

    /// `der` with `extra` extensions appended to its extensions (the
    /// signature no longer matches, which digesting does not check).
    fn with_extensions(der: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
        let mut top = dn::Der::new(der, 0);
        let outer = top.read().unwrap();
        let mut parts = outer.inner();
        let tbs = parts.read().unwrap();
        let rest = &outer.content[tbs.whole.len()..];
        let mut fields = tbs.inner();
        let mut new_tbs = Vec::new();
        while !fields.is_empty() {
            let field = fields.read().unwrap();
            if field.class == 2 && field.number == 3 {
                let list = dn::Der::new(field.content, 0).read().unwrap();
                let mut content = list.content.to_vec();
                for ext in extra {
                    content.extend_from_slice(ext);
                }
                new_tbs.extend(tlv(0xa3, &tlv(0x30, &content)));
            } else {
                new_tbs.extend_from_slice(field.whole);
            }
        }
        let mut outer_content = tlv(0x30, &new_tbs);
        outer_content.extend_from_slice(rest);
        tlv(0x30, &outer_content)
    }

    #[test]
    fn a_repeated_extension_makes_the_certificate_invalid() {
        // RFC 5280 4.2: an extension appears at most once (OpenSSL marks
        // such a certificate invalid). Otherwise the last one silently wins:
        // extendedKeyUsage serverAuth, then emailProtection.
        let eku = |purpose: u8| {
            let oid = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, purpose];
            let value = tlv(0x30, &tlv(0x06, &oid));
            let mut ext = tlv(0x06, &[0x55, 0x1d, 0x25]);
            ext.extend(tlv(0x04, &value));
            tlv(0x30, &ext)
        };
        let original = gridka_der();
        let once = CertInfo::from_der(&with_extensions(&original, &[eku(4)])).unwrap();
        assert!(once.broken_extension.is_none());
        assert_eq!(once.extended_key_usage.as_ref().map(Vec::len), Some(1));
        let twice = CertInfo::from_der(&with_extensions(&original, &[eku(1), eku(4)])).unwrap();
        assert!(
            twice.broken_extension.is_some(),
            "two extendedKeyUsage extensions accepted, the last one used: {:?}",
            twice.extended_key_usage
        );
    }

    #[test]
    fn only_the_certificates_of_a_cms_message_are_clamped() {
        let early = tlv(0x17, b"650101000000Z");
        // ContentInfo { OID, [0] { SignedData { version, digestAlgorithms,
        //   encapContentInfo, certificates [0] { time }, signerInfos { time } } } }
        let signed_data = tlv(
            0x30,
            &[
                tlv(0x02, &[1]),
                tlv(0x31, &[]),
                tlv(0x30, &tlv(0x06, &[0x2a])),
                tlv(0xa0, &early),
                tlv(0x31, &early),
            ]
            .concat(),
        );
        let info = tlv(
            0x30,
            &[tlv(0x06, &[0x2a]), tlv(0xa0, &signed_data)].concat(),
        );
        let clamped = cms_for_parsing(&info);
        let text = String::from_utf8_lossy(&clamped).into_owned();
        assert!(
            text.contains("700101000000Z"),
            "the certificate set is clamped"
        );
        assert!(text.contains("650101000000Z"), "the signer infos are not");
        assert_eq!(clamped.len(), info.len());
    }
}
