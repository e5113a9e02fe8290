//! OpenSSL's legacy one-line distinguished-name strings.
//!
//! Grid tooling (vmcatcher, VOMS, the image-list format itself) identifies
//! endorsers and CAs by the string `X509_NAME_oneline()` produces, e.g.
//! `/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=buncic/CN=379010/CN=Predrag Buncic`.
//! Image lists carry these strings in `hv:dn` / `hv:ca`, subscriptions
//! authorise endorsers by them and namespace policies match regular
//! expressions against them, so we must reproduce OpenSSL byte for byte:
//! any deviation would turn a trusted endorser into an unknown one (or,
//! worse, make two different names compare equal).
//!
//! The rules, taken from OpenSSL 3.0's `X509_NAME_oneline()` (which is what
//! `openssl x509 -noout -subject -nameopt compat` prints) and confirmed
//! differentially by the tests below:
//!
//! * Attributes appear in certificate (DER) order. The first attribute of
//!   each RDN is preceded by `/`, further attributes of a multi-valued RDN
//!   by `+`.
//! * The attribute type is OpenSSL's *short* name (`CN`, `DC`, `UID`,
//!   `emailAddress`, `serialNumber`, `GN`, `SN`, `street`, ...). Types
//!   OpenSSL does not know are printed as a dotted OID, truncated to 79
//!   characters (OpenSSL formats into an 80-byte buffer); an OID whose
//!   encoding is longer than 586 bytes prints as the empty string (OpenSSL's
//!   `OBJ_obj2txt` refuses it).
//! * The value is the raw content octets of the ASN.1 string, whatever its
//!   type: UTF-8 is *not* decoded and BMPString/UniversalString are *not*
//!   transcoded. Each byte below 0x20 or above 0x7E is written as `\xHH`
//!   (upper-case hex); `/` and `+` are written as `\/` and `\+`; every other
//!   byte, including `\`, `=`, `,` and `"`, is written as is. So
//!   `CN=Jürgen` (UTF8String) prints as `CN=J\xC3\xBCrgen`.
//! * Quirks kept for fidelity: a SEQUENCE value prints its whole encoding
//!   (tag and length included); a BIT STRING prints its bits without the
//!   leading unused-bits octet, with the unused bits cleared; BER
//!   constructed strings print the concatenation of their segments.
//! * Value types OpenSSL refuses in names (VisibleString, GeneralString,
//!   INTEGER, ...; OpenSSL then refuses the whole certificate) print their
//!   content octets with the same escaping: there is no OpenSSL string to
//!   agree with, and we must not panic.
//!
//! Note that the format is ambiguous by design (`\` is not escaped, so a
//! value containing `\/` prints like an escaped `/`). That is OpenSSL's
//! format; we reproduce it rather than "fix" it, because the strings are
//! compared with strings that OpenSSL produced.
//!
//! Two entry points: [`one_line`] for an already parsed
//! [`x509_cert::name::Name`], and [`one_line_from_der`] / [`cert_names`] for
//! raw DER. They differ only for a multi-valued RDN whose attributes are not
//! in canonical DER order (the encoder of the certificate did not sort the
//! SET): `x509-cert` sorts such SETs while decoding, OpenSSL prints them in
//! encoded order. The raw-DER functions keep the encoded order, so prefer
//! them when the certificate bytes are at hand.

use std::borrow::Cow;
use std::fmt::Write as _;

use der::Encode as _;
use x509_cert::name::Name;

/// Why a DER name or certificate could not be turned into a one-line DN.
///
/// Only definite-length (DER) encodings are read: a certificate name has no
/// business being BER, and refusing is safer than guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    /// The bytes are not well-formed DER (truncated TLV, bad length, ...).
    #[error("malformed DER at byte {offset}: {what}")]
    Malformed {
        /// Offset of the offending element in the input.
        offset: usize,
        /// What was wrong.
        what: &'static str,
    },
}

/// Subject and issuer of a certificate as one-line DN strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertNames {
    /// The certificate's subject, e.g. `/DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=appdb.egi.eu`.
    pub subject: String,
    /// The certificate's issuer, e.g. `/DC=ORG/DC=SEE-GRID/CN=SEE-GRID CA 2013`.
    pub issuer: String,
}

/// Whether `dn` has the shape of a one-line DN as OpenSSL prints it: `/A=b/C=d...` (a value may itself
/// contain `/`, as in `CN=host/node.example.org`).
pub fn is_one_line_dn(dn: &str) -> bool {
    dn.strip_prefix('/')
        .and_then(|rest| rest.split('/').next())
        .is_some_and(|first| first.split_once('=').is_some_and(|(k, _)| !k.is_empty()))
}

/// Formats a parsed name the way `X509_NAME_oneline()` does.
///
/// Infallible because `x509-cert` has already validated the structure and
/// the OIDs. Multi-valued RDNs come out in the order `x509-cert` holds them,
/// which is canonical DER order (see the module documentation).
pub fn one_line(name: &Name) -> String {
    let mut out = String::new();
    for rdn in name.iter_rdn() {
        for (index, atav) in rdn.iter().enumerate() {
            out.push(if index == 0 { '/' } else { '+' });
            match oid_short_or_dotted(atav.oid.as_bytes()) {
                Some(text) => out.push_str(&text),
                // Unreachable in practice: const-oid only holds valid OIDs.
                None => out.push_str(&atav.oid.to_string()),
            }
            out.push('=');
            let encoded = atav.value.to_der();
            let parsed = encoded
                .as_deref()
                .ok()
                .and_then(|bytes| Der::new(bytes, 0).read().ok());
            match parsed {
                Some(tlv) => push_value(&mut out, &tlv),
                // Unreachable in practice: re-encoding a decoded value does
                // not fail. Fall back to the content octets.
                None => push_escaped(&mut out, atav.value.value()),
            }
        }
    }
    out
}

/// Formats a DER-encoded `Name` (an RDNSequence) the way
/// `X509_NAME_oneline()` does, keeping the encoded order of every SET.
pub fn one_line_from_der(der: &[u8]) -> Result<String, DnError> {
    let mut top = Der::new(der, 0);
    let name = top.read()?;
    if !top.is_empty() {
        return Err(top.error("trailing data after the name"));
    }
    format_rdn_sequence(&name)
}

/// Extracts subject and issuer of a DER certificate as one-line DNs,
/// keeping the encoded attribute order (see the module documentation).
///
/// Only the path to the two names is checked (Certificate, TBSCertificate,
/// version, serial, signature algorithm, issuer, validity, subject); full
/// certificate validation is someone else's job.
pub fn cert_names(cert_der: &[u8]) -> Result<CertNames, DnError> {
    let (issuer, subject) = raw_names(cert_der)?;
    Ok(CertNames {
        subject: format_rdn_sequence(&subject)?,
        issuer: format_rdn_sequence(&issuer)?,
    })
}

/// The issuer and subject Names of a DER certificate, as encoded.
pub fn raw_name_ders(cert_der: &[u8]) -> Result<(&[u8], &[u8]), DnError> {
    let (issuer, subject) = raw_names(cert_der)?;
    Ok((issuer.whole, subject.whole))
}

fn raw_names(cert_der: &[u8]) -> Result<(Tlv<'_>, Tlv<'_>), DnError> {
    let mut top = Der::new(cert_der, 0);
    let cert = top.read()?;
    cert.expect_universal(TAG_SEQUENCE, true, "certificate is not a SEQUENCE")?;
    let mut cert_fields = cert.inner();
    let tbs = cert_fields.read()?;
    tbs.expect_universal(TAG_SEQUENCE, true, "TBSCertificate is not a SEQUENCE")?;
    let mut fields = tbs.inner();
    let mut next = fields.read()?;
    if next.class == CLASS_CONTEXT && next.number == 0 {
        // Explicit [0] version: skip it.
        next = fields.read()?;
    }
    next.expect_universal(TAG_INTEGER, false, "serial number is not an INTEGER")?;
    let algorithm = fields.read()?;
    algorithm.expect_universal(TAG_SEQUENCE, true, "signature algorithm is not a SEQUENCE")?;
    let issuer = fields.read()?;
    let validity = fields.read()?;
    validity.expect_universal(TAG_SEQUENCE, true, "validity is not a SEQUENCE")?;
    let subject = fields.read()?;
    Ok((issuer, subject))
}

const CLASS_UNIVERSAL: u8 = 0;
const CLASS_CONTEXT: u8 = 2;
const TAG_INTEGER: u32 = 2;
const TAG_BIT_STRING: u32 = 3;
const TAG_OID: u32 = 6;
const TAG_SEQUENCE: u32 = 16;
const TAG_SET: u32 = 17;

/// How deeply BER constructed strings may nest; OpenSSL's
/// `ASN1_MAX_STRING_NEST` is 5 and it rejects deeper nesting.
const MAX_STRING_NEST: usize = 5;

/// One DER element: identifier, content and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub class: u8,
    pub constructed: bool,
    pub number: u32,
    /// Offset of the content in the outermost input, for error messages.
    content_offset: usize,
    pub content: &'a [u8],
    pub whole: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over this element's content.
    pub fn inner(&self) -> Der<'a> {
        Der::new(self.content, self.content_offset)
    }

    fn expect_universal(
        &self,
        number: u32,
        constructed: bool,
        what: &'static str,
    ) -> Result<(), DnError> {
        if self.class == CLASS_UNIVERSAL && self.number == number && self.constructed == constructed
        {
            Ok(())
        } else {
            Err(DnError::Malformed {
                offset: self
                    .content_offset
                    .saturating_sub(self.whole.len() - self.content.len()),
                what,
            })
        }
    }
}

/// A minimal DER reader: definite lengths only, which is all a certificate
/// name may use. Hand-written (rather than `der::Reader`) because we need
/// the SETs in encoded order and the raw octets of every value.
pub struct Der<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Der<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn error(&self, what: &'static str) -> DnError {
        DnError::Malformed {
            offset: self.base.saturating_add(self.pos),
            what,
        }
    }

    fn byte(&mut self) -> Result<u8, DnError> {
        let byte = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.error("truncated element"))?;
        self.pos += 1;
        Ok(byte)
    }

    pub fn read(&mut self) -> Result<Tlv<'a>, DnError> {
        let start = self.pos;
        let first = self.byte()?;
        let class = first >> 6;
        let constructed = first & 0x20 != 0;
        let mut number = u32::from(first & 0x1f);
        if number == 0x1f {
            // High tag number form: base-128, at most 4 bytes (28 bits).
            number = 0;
            let mut count = 0;
            loop {
                let byte = self.byte()?;
                count += 1;
                if count > 4 || (count == 1 && byte == 0x80) {
                    return Err(self.error("unsupported tag number"));
                }
                number = (number << 7) | u32::from(byte & 0x7f);
                if byte & 0x80 == 0 {
                    break;
                }
            }
        }
        let first_len = self.byte()?;
        let length = if first_len < 0x80 {
            usize::from(first_len)
        } else if first_len == 0x80 {
            return Err(self.error("indefinite length"));
        } else {
            let count = usize::from(first_len & 0x7f);
            if count > std::mem::size_of::<usize>() {
                return Err(self.error("length too large"));
            }
            let mut length = 0usize;
            for _ in 0..count {
                length = (length << 8) | usize::from(self.byte()?);
            }
            length
        };
        let content_start = self.pos;
        let end = content_start
            .checked_add(length)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| self.error("length exceeds the available data"))?;
        self.pos = end;
        let (Some(content), Some(whole)) =
            (self.buf.get(content_start..end), self.buf.get(start..end))
        else {
            return Err(self.error("length exceeds the available data"));
        };
        Ok(Tlv {
            class,
            constructed,
            number,
            content_offset: self.base.saturating_add(content_start),
            content,
            whole,
        })
    }
}

/// Formats the content of an RDNSequence in encoded order.
fn format_rdn_sequence(name: &Tlv<'_>) -> Result<String, DnError> {
    name.expect_universal(TAG_SEQUENCE, true, "name is not a SEQUENCE")?;
    let mut out = String::new();
    let mut rdns = name.inner();
    while !rdns.is_empty() {
        let rdn = rdns.read()?;
        rdn.expect_universal(TAG_SET, true, "RDN is not a SET")?;
        let mut atavs = rdn.inner();
        let mut first = true;
        while !atavs.is_empty() {
            let atav = atavs.read()?;
            atav.expect_universal(TAG_SEQUENCE, true, "attribute is not a SEQUENCE")?;
            let mut fields = atav.inner();
            let oid = fields.read()?;
            oid.expect_universal(TAG_OID, false, "attribute type is not an OID")?;
            let value = fields.read()?;
            if !fields.is_empty() {
                return Err(fields.error("extra fields in attribute"));
            }
            let Some(type_text) = oid_short_or_dotted(oid.content) else {
                return Err(DnError::Malformed {
                    offset: oid.content_offset,
                    what: "invalid OID encoding",
                });
            };
            out.push(if first { '/' } else { '+' });
            out.push_str(&type_text);
            out.push('=');
            push_value(&mut out, &value);
            first = false;
        }
    }
    Ok(out)
}

/// Appends an attribute value as `X509_NAME_oneline()` does.
fn push_value(out: &mut String, value: &Tlv<'_>) {
    let universal = value.class == CLASS_UNIVERSAL;
    let mut bytes: Cow<'_, [u8]> =
        if universal && (value.number == TAG_SEQUENCE || value.number == TAG_SET) {
            // OpenSSL keeps SEQUENCE (and SET) values in encoded form.
            Cow::Borrowed(value.whole)
        } else if value.constructed {
            let mut collected = Vec::new();
            collect_segments(value, 0, &mut collected);
            Cow::Owned(collected)
        } else {
            Cow::Borrowed(value.content)
        };
    if universal && value.number == TAG_BIT_STRING {
        // OpenSSL stores the bits without the unused-bits octet and clears
        // the unused bits of the last byte.
        let (padding, mut bits) = match bytes.split_first() {
            Some((padding, bits)) => (*padding, bits.to_vec()),
            None => (0, Vec::new()),
        };
        if let Some(last) = bits.last_mut() {
            *last &= 0xffu8.checked_shl(u32::from(padding)).unwrap_or(0xff);
        }
        bytes = Cow::Owned(bits);
    }
    push_escaped(out, &bytes);
}

/// Concatenates the primitive segments of a BER constructed string, as
/// OpenSSL's `asn1_collect()` does (it ignores the segments' tags). Nesting
/// deeper than OpenSSL allows, or malformed segments, end the collection.
fn collect_segments(value: &Tlv<'_>, depth: usize, out: &mut Vec<u8>) {
    if depth > MAX_STRING_NEST {
        return;
    }
    let mut segments = value.inner();
    while !segments.is_empty() {
        let Ok(segment) = segments.read() else {
            return;
        };
        if segment.constructed {
            collect_segments(&segment, depth + 1, out);
        } else {
            out.extend_from_slice(segment.content);
        }
    }
}

/// Appends value bytes with OpenSSL's escaping: `\xHH` outside 0x20..=0x7E,
/// a backslash before `/` and `+`, everything else verbatim.
fn push_escaped(out: &mut String, bytes: &[u8]) {
    for &byte in bytes {
        if !(0x20..=0x7e).contains(&byte) {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\x{byte:02X}");
        } else {
            if byte == b'/' || byte == b'+' {
                out.push('\\');
            }
            out.push(char::from(byte));
        }
    }
}

/// OpenSSL's `OBJ_obj2txt` refuses OIDs whose encoding is longer than this
/// (a guard against pathological sub-identifiers).
const OBJ_TXT_MAX_ENCODING: usize = 586;

/// Width of the buffer `X509_NAME_oneline()` formats unknown OIDs into,
/// including the terminating NUL.
const UNKNOWN_OID_BUFFER: usize = 80;

/// The attribute-type text for an OID given by its content octets:
/// OpenSSL's short name if it has one, else the (truncated) dotted form.
/// `None` if the octets are not a valid OID encoding (OpenSSL rejects
/// such certificates).
fn oid_short_or_dotted(content: &[u8]) -> Option<String> {
    // Validate as OpenSSL's c2i_ASN1_OBJECT does: non-empty, the last byte
    // ends a sub-identifier, and no sub-identifier has a leading 0x80.
    let last = content.last()?;
    if last & 0x80 != 0 {
        return None;
    }
    let mut at_start = true;
    for &byte in content {
        if at_start && byte == 0x80 {
            return None;
        }
        at_start = byte & 0x80 == 0;
    }
    if content.len() > OBJ_TXT_MAX_ENCODING {
        return Some(String::new());
    }
    let dotted = dotted_oid(content);
    if let Some((_, short)) = SHORT_NAMES.iter().find(|(oid, _)| *oid == dotted) {
        return Some((*short).to_owned());
    }
    let mut dotted = dotted;
    dotted.truncate(UNKNOWN_OID_BUFFER - 1);
    Some(dotted)
}

/// Dotted-decimal text of valid OID content octets, with arbitrarily large
/// arcs (as `OBJ_obj2txt` prints them, via bignums when needed).
fn dotted_oid(content: &[u8]) -> String {
    let mut out = String::new();
    let mut arc = BigDecimal::default();
    let mut first = true;
    for &byte in content {
        arc.mul_add(128, u32::from(byte & 0x7f));
        if byte & 0x80 != 0 {
            continue;
        }
        if first {
            // The first sub-identifier packs two arcs: 40 * X + Y, with
            // X = 2 for everything from 80 up.
            if arc.less_than(80) {
                let value = arc.low();
                let _ = write!(out, "{}.{}", value / 40, value % 40);
            } else {
                arc.sub_small(80);
                let _ = write!(out, "2.{}", arc);
            }
            first = false;
        } else {
            let _ = write!(out, ".{}", arc);
        }
        arc = BigDecimal::default();
    }
    out
}

/// A non-negative integer in base 10^9 limbs (least significant first):
/// just enough arithmetic to print arbitrarily large OID arcs. Bounded by
/// [`OBJ_TXT_MAX_ENCODING`], so the quadratic cost stays tiny.
#[derive(Default)]
struct BigDecimal {
    limbs: Vec<u32>,
}

const LIMB: u64 = 1_000_000_000;

impl BigDecimal {
    fn mul_add(&mut self, factor: u32, addend: u32) {
        let mut carry = u64::from(addend);
        for limb in &mut self.limbs {
            let product = u64::from(*limb) * u64::from(factor) + carry;
            // Both casts are exact: the remainder and quotient fit in u32.
            *limb = u32::try_from(product % LIMB).unwrap_or(0);
            carry = product / LIMB;
        }
        while carry > 0 {
            self.limbs.push(u32::try_from(carry % LIMB).unwrap_or(0));
            carry /= LIMB;
        }
    }

    fn less_than(&self, small: u32) -> bool {
        self.limbs.iter().skip(1).all(|limb| *limb == 0) && self.low() < small
    }

    fn low(&self) -> u32 {
        self.limbs.first().copied().unwrap_or(0)
    }

    /// Subtracts a value the number is known to be at least.
    fn sub_small(&mut self, small: u32) {
        let mut borrow = u64::from(small);
        for limb in &mut self.limbs {
            if borrow == 0 {
                break;
            }
            let current = u64::from(*limb);
            if current >= borrow {
                *limb = u32::try_from(current - borrow).unwrap_or(0);
                borrow = 0;
            } else {
                *limb = u32::try_from(current + LIMB - borrow).unwrap_or(0);
                borrow = 1;
            }
        }
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }
}

impl std::fmt::Display for BigDecimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut limbs = self.limbs.iter().rev().skip_while(|limb| **limb == 0);
        match limbs.next() {
            None => f.write_str("0"),
            Some(top) => {
                write!(f, "{top}")?;
                for limb in limbs {
                    write!(f, "{limb:09}")?;
                }
                Ok(())
            }
        }
    }
}

/// OpenSSL 3.0's short names for the OIDs that occur as attribute types
/// (X.520 `2.5.4.*`, PKCS #9, the COSINE/pilot `0.9.2342.19200300.100.1.*`
/// attributes, EV jurisdiction, Russian and RFC 3739 attributes), taken
/// from `openssl list -objects`. Other OIDs OpenSSL knows (algorithms,
/// extensions, ...) are not attribute types; were one ever used as one,
/// we would print it dotted where OpenSSL prints its short name.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("0.9.2342.19200300.100.1.2", "textEncodedORAddress"),
    ("0.9.2342.19200300.100.1.3", "mail"),
    ("0.9.2342.19200300.100.1.4", "info"),
    ("0.9.2342.19200300.100.1.5", "favouriteDrink"),
    ("0.9.2342.19200300.100.1.6", "roomNumber"),
    ("0.9.2342.19200300.100.1.7", "photo"),
    ("0.9.2342.19200300.100.1.8", "userClass"),
    ("0.9.2342.19200300.100.1.9", "host"),
    ("0.9.2342.19200300.100.1.10", "manager"),
    ("0.9.2342.19200300.100.1.11", "documentIdentifier"),
    ("0.9.2342.19200300.100.1.12", "documentTitle"),
    ("0.9.2342.19200300.100.1.13", "documentVersion"),
    ("0.9.2342.19200300.100.1.14", "documentAuthor"),
    ("0.9.2342.19200300.100.1.15", "documentLocation"),
    ("0.9.2342.19200300.100.1.20", "homeTelephoneNumber"),
    ("0.9.2342.19200300.100.1.21", "secretary"),
    ("0.9.2342.19200300.100.1.22", "otherMailbox"),
    ("0.9.2342.19200300.100.1.23", "lastModifiedTime"),
    ("0.9.2342.19200300.100.1.24", "lastModifiedBy"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.26", "aRecord"),
    ("0.9.2342.19200300.100.1.27", "pilotAttributeType27"),
    ("0.9.2342.19200300.100.1.28", "mXRecord"),
    ("0.9.2342.19200300.100.1.29", "nSRecord"),
    ("0.9.2342.19200300.100.1.30", "sOARecord"),
    ("0.9.2342.19200300.100.1.31", "cNAMERecord"),
    ("0.9.2342.19200300.100.1.37", "associatedDomain"),
    ("0.9.2342.19200300.100.1.38", "associatedName"),
    ("0.9.2342.19200300.100.1.39", "homePostalAddress"),
    ("0.9.2342.19200300.100.1.40", "personalTitle"),
    ("0.9.2342.19200300.100.1.41", "mobileTelephoneNumber"),
    ("0.9.2342.19200300.100.1.42", "pagerTelephoneNumber"),
    ("0.9.2342.19200300.100.1.43", "friendlyCountryName"),
    ("0.9.2342.19200300.100.1.44", "uid"),
    ("0.9.2342.19200300.100.1.45", "organizationalStatus"),
    ("0.9.2342.19200300.100.1.46", "janetMailbox"),
    ("0.9.2342.19200300.100.1.47", "mailPreferenceOption"),
    ("0.9.2342.19200300.100.1.48", "buildingName"),
    ("0.9.2342.19200300.100.1.49", "dSAQuality"),
    ("0.9.2342.19200300.100.1.50", "singleLevelQuality"),
    ("0.9.2342.19200300.100.1.51", "subtreeMinimumQuality"),
    ("0.9.2342.19200300.100.1.52", "subtreeMaximumQuality"),
    ("0.9.2342.19200300.100.1.53", "personalSignature"),
    ("0.9.2342.19200300.100.1.54", "dITRedirect"),
    ("0.9.2342.19200300.100.1.55", "audio"),
    ("0.9.2342.19200300.100.1.56", "documentPublisher"),
    ("1.2.643.3.131.1.1", "INN"),
    ("1.2.643.100.1", "OGRN"),
    ("1.2.643.100.3", "SNILS"),
    ("1.2.643.100.5", "OGRNIP"),
    ("1.2.643.100.111", "subjectSignTool"),
    ("1.2.643.100.112", "issuerSignTool"),
    ("1.2.643.100.113", "classSignTool"),
    ("1.2.643.100.113.1", "classSignToolKC1"),
    ("1.2.643.100.113.2", "classSignToolKC2"),
    ("1.2.643.100.113.3", "classSignToolKC3"),
    ("1.2.643.100.113.4", "classSignToolKB1"),
    ("1.2.643.100.113.5", "classSignToolKB2"),
    ("1.2.643.100.113.6", "classSignToolKA1"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
    ("1.2.840.113549.1.9.2", "unstructuredName"),
    ("1.2.840.113549.1.9.3", "contentType"),
    ("1.2.840.113549.1.9.4", "messageDigest"),
    ("1.2.840.113549.1.9.5", "signingTime"),
    ("1.2.840.113549.1.9.6", "countersignature"),
    ("1.2.840.113549.1.9.7", "challengePassword"),
    ("1.2.840.113549.1.9.8", "unstructuredAddress"),
    ("1.2.840.113549.1.9.9", "extendedCertificateAttributes"),
    ("1.2.840.113549.1.9.14", "extReq"),
    ("1.2.840.113549.1.9.15", "SMIME-CAPS"),
    ("1.2.840.113549.1.9.16", "SMIME"),
    ("1.2.840.113549.1.9.20", "friendlyName"),
    ("1.2.840.113549.1.9.21", "localKeyID"),
    ("1.3.6.1.4.1.311.60.2.1.1", "jurisdictionL"),
    ("1.3.6.1.4.1.311.60.2.1.2", "jurisdictionST"),
    ("1.3.6.1.4.1.311.60.2.1.3", "jurisdictionC"),
    ("1.3.6.1.5.5.7.9.1", "id-pda-dateOfBirth"),
    ("1.3.6.1.5.5.7.9.2", "id-pda-placeOfBirth"),
    ("1.3.6.1.5.5.7.9.3", "id-pda-gender"),
    ("1.3.6.1.5.5.7.9.4", "id-pda-countryOfCitizenship"),
    ("1.3.6.1.5.5.7.9.5", "id-pda-countryOfResidence"),
    ("2.5.4.3", "CN"),
    ("2.5.4.4", "SN"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "street"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.12", "title"),
    ("2.5.4.13", "description"),
    ("2.5.4.14", "searchGuide"),
    ("2.5.4.15", "businessCategory"),
    ("2.5.4.16", "postalAddress"),
    ("2.5.4.17", "postalCode"),
    ("2.5.4.18", "postOfficeBox"),
    ("2.5.4.19", "physicalDeliveryOfficeName"),
    ("2.5.4.20", "telephoneNumber"),
    ("2.5.4.21", "telexNumber"),
    ("2.5.4.22", "teletexTerminalIdentifier"),
    ("2.5.4.23", "facsimileTelephoneNumber"),
    ("2.5.4.24", "x121Address"),
    ("2.5.4.25", "internationaliSDNNumber"),
    ("2.5.4.26", "registeredAddress"),
    ("2.5.4.27", "destinationIndicator"),
    ("2.5.4.28", "preferredDeliveryMethod"),
    ("2.5.4.29", "presentationAddress"),
    ("2.5.4.30", "supportedApplicationContext"),
    ("2.5.4.31", "member"),
    ("2.5.4.32", "owner"),
    ("2.5.4.33", "roleOccupant"),
    ("2.5.4.34", "seeAlso"),
    ("2.5.4.35", "userPassword"),
    ("2.5.4.36", "userCertificate"),
    ("2.5.4.37", "cACertificate"),
    ("2.5.4.38", "authorityRevocationList"),
    ("2.5.4.39", "certificateRevocationList"),
    ("2.5.4.40", "crossCertificatePair"),
    ("2.5.4.41", "name"),
    ("2.5.4.42", "GN"),
    ("2.5.4.43", "initials"),
    ("2.5.4.44", "generationQualifier"),
    ("2.5.4.45", "x500UniqueIdentifier"),
    ("2.5.4.46", "dnQualifier"),
    ("2.5.4.47", "enhancedSearchGuide"),
    ("2.5.4.48", "protocolInformation"),
    ("2.5.4.49", "distinguishedName"),
    ("2.5.4.50", "uniqueMember"),
    ("2.5.4.51", "houseIdentifier"),
    ("2.5.4.52", "supportedAlgorithms"),
    ("2.5.4.53", "deltaRevocationList"),
    ("2.5.4.54", "dmdName"),
    ("2.5.4.65", "pseudonym"),
    ("2.5.4.72", "role"),
    ("2.5.4.97", "organizationIdentifier"),
    ("2.5.4.98", "c3"),
    ("2.5.4.99", "n3"),
    ("2.5.4.100", "dnsName"),
];

#[cfg(test)]
mod tests;
