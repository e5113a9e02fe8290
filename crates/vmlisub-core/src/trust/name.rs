//! Distinguished names as path validation compares them.
//!
//! RFC 5280 section 7.1 says two names match when their RDNs match after
//! string preparation, not when their bytes do: a CA re-issued with
//! UTF8String names, or a subordinate whose issuer field differs from the
//! CA's subject only in case or spacing, still chains. Grid sites verify
//! with OpenSSL, so we prepare strings exactly as OpenSSL's
//! `x509_name_canon()` does (the form behind `X509_NAME_cmp` and the
//! `openssl x509 -subject_hash` file names of an IGTF directory):
//!
//! * values of the string types (PrintableString, UTF8String, T61String,
//!   IA5String, VisibleString, BMPString, UniversalString) are converted to
//!   UTF-8 (one-byte types as Latin-1), leading and trailing ASCII white
//!   space is removed, inner runs of it become one space, ASCII letters are
//!   lower-cased, and the result is re-tagged as UTF8String;
//! * other values are kept as they are (type and octets);
//! * each RDN is re-encoded as a DER SET (members sorted), and the
//!   canonical form is the concatenation of the RDNs, without the outer
//!   SEQUENCE.
//!
//! Full RFC 4518 preparation (Unicode case folding and normalisation) is
//! not done, as OpenSSL does not do it: names that differ only in non-ASCII
//! case do not match.

use sha1::Digest as _;

use super::dn::{Der, DnError, Tlv};

const TAG_UTF8_STRING: u8 = 12;
const TAG_PRINTABLE_STRING: u8 = 19;
const TAG_T61_STRING: u8 = 20;
const TAG_IA5_STRING: u8 = 22;
const TAG_VISIBLE_STRING: u8 = 26;
const TAG_UNIVERSAL_STRING: u8 = 28;
const TAG_BMP_STRING: u8 = 30;

/// The OID of the PKCS#9 emailAddress attribute (DER contents).
pub const EMAIL_ADDRESS_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

/// A name in canonical form: compare these, never the DER.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CanonicalName {
    /// The canonical encoding of each RDN (a DER SET), in name order.
    rdns: Vec<Vec<u8>>,
}

impl CanonicalName {
    /// Canonicalises a DER `Name` (RDNSequence).
    pub fn from_der(der: &[u8]) -> Result<Self, DnError> {
        let mut top = Der::new(der, 0);
        let name = top.read()?;
        if !top.is_empty() || name.class != 0 || name.number != 16 || !name.constructed {
            return Err(DnError::Malformed {
                offset: 0,
                what: "name is not one SEQUENCE",
            });
        }
        let mut rdns = Vec::new();
        let mut reader = name.inner();
        while !reader.is_empty() {
            let rdn = reader.read()?;
            if rdn.class != 0 || rdn.number != 17 || !rdn.constructed {
                return Err(DnError::Malformed {
                    offset: 0,
                    what: "RDN is not a SET",
                });
            }
            let mut members = Vec::new();
            let mut atavs = rdn.inner();
            while !atavs.is_empty() {
                members.push(canonical_atav(&atavs.read()?)?);
            }
            members.sort();
            rdns.push(tlv(0x31, &members.concat()));
        }
        Ok(Self { rdns })
    }

    /// The number of RDNs.
    pub fn len(&self) -> usize {
        self.rdns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }

    /// Whether `self` is within the subtree rooted at `base` (the
    /// directoryName form of a name constraint): `base`'s RDNs are a prefix
    /// of ours. The empty base contains every name.
    pub fn is_within(&self, base: &CanonicalName) -> bool {
        base.rdns.len() <= self.rdns.len() && self.rdns.iter().zip(&base.rdns).all(|(a, b)| a == b)
    }

    /// OpenSSL's canonical encoding (the RDN SETs concatenated).
    pub fn encoding(&self) -> Vec<u8> {
        self.rdns.concat()
    }

    /// `openssl x509 -subject_hash` (the name of `HASH.0` files since
    /// OpenSSL 1.0): the first four bytes of the SHA-1 of the canonical
    /// encoding, as a little-endian number.
    pub fn openssl_hash(&self) -> u32 {
        let digest = sha1::Sha1::digest(self.encoding());
        u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
    }
}

/// `openssl x509 -subject_hash_old` (IGTF bundles still ship these names):
/// the first four bytes of the MD5 of the name's DER, little-endian.
pub fn openssl_hash_old(name_der: &[u8]) -> u32 {
    let digest = md5::Md5::digest(name_der);
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Whether the one-line rendering of this DER name could be mistaken for
/// another name's: the one-line form escapes control bytes as `\xHH` and
/// `/`, `+` as `\/`, `\+`, but writes a literal backslash as is, so a value
/// holding `\` can render exactly like a different value (`\xC3\xBC` typed
/// out versus the UTF-8 bytes of `ü`). Endorsers and namespace policies
/// compare those strings, so such names are refused.
pub fn has_ambiguous_rendering(name_der: &[u8]) -> Result<bool, DnError> {
    let mut ambiguous = false;
    for_each_attribute(name_der, |_, value| {
        ambiguous |= value.content.contains(&b'\\');
    })?;
    Ok(ambiguous)
}

/// The emailAddress attribute values of a DER name (IA5String values
/// only; others cannot be compared with rfc822Name constraints and are
/// returned as `Err` with their raw bytes so the caller can fail closed).
pub fn email_addresses(name_der: &[u8]) -> Result<Vec<Result<String, Vec<u8>>>, DnError> {
    let mut found = Vec::new();
    for_each_attribute(name_der, |oid, value| {
        if oid.content != EMAIL_ADDRESS_OID {
            return;
        }
        let text = (value.class == 0 && value.number == u32::from(TAG_IA5_STRING))
            .then(|| std::str::from_utf8(value.content).ok())
            .flatten()
            .filter(|text| text.is_ascii());
        found.push(match text {
            Some(text) => Ok(text.to_string()),
            None => Err(value.content.to_vec()),
        });
    })?;
    Ok(found)
}

/// Calls `visit(type, value)` for every attribute of a DER name, in order.
fn for_each_attribute(
    name_der: &[u8],
    mut visit: impl FnMut(&Tlv<'_>, &Tlv<'_>),
) -> Result<(), DnError> {
    let mut top = Der::new(name_der, 0);
    let name = top.read()?;
    let mut rdns = name.inner();
    while !rdns.is_empty() {
        let rdn = rdns.read()?;
        let mut atavs = rdn.inner();
        while !atavs.is_empty() {
            let atav = atavs.read()?;
            let mut fields = atav.inner();
            let oid = fields.read()?;
            let value = fields.read()?;
            visit(&oid, &value);
        }
    }
    Ok(())
}

fn canonical_atav(atav: &Tlv<'_>) -> Result<Vec<u8>, DnError> {
    let malformed = |what| DnError::Malformed { offset: 0, what };
    if atav.class != 0 || atav.number != 16 || !atav.constructed {
        return Err(malformed("attribute is not a SEQUENCE"));
    }
    let mut fields = atav.inner();
    let oid = fields.read()?;
    let value = fields.read()?;
    if !fields.is_empty() {
        return Err(malformed("extra fields in attribute"));
    }
    let canonical_value = match canonical_string(&value) {
        Some(text) => tlv(TAG_UTF8_STRING, text.as_bytes()),
        None => value.whole.to_vec(),
    };
    let mut content = oid.whole.to_vec();
    content.extend(canonical_value);
    Ok(tlv(0x30, &content))
}

/// The prepared text of a string-typed value; `None` for other types and
/// for strings that cannot be decoded (they then compare as raw bytes,
/// which is how OpenSSL's comparison fails on them too).
fn canonical_string(value: &Tlv<'_>) -> Option<String> {
    if value.class != 0 || value.constructed {
        return None;
    }
    let bytes = value.content;
    let decoded: String = match u8::try_from(value.number).ok()? {
        TAG_UTF8_STRING => std::str::from_utf8(bytes).ok()?.to_string(),
        TAG_PRINTABLE_STRING | TAG_T61_STRING | TAG_IA5_STRING | TAG_VISIBLE_STRING => {
            bytes.iter().map(|byte| char::from(*byte)).collect()
        }
        TAG_BMP_STRING => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            bytes
                .chunks_exact(2)
                .map(|pair| char::from_u32(u32::from(u16::from_be_bytes([pair[0], pair[1]]))))
                .collect::<Option<String>>()?
        }
        TAG_UNIVERSAL_STRING => {
            if !bytes.len().is_multiple_of(4) {
                return None;
            }
            bytes
                .chunks_exact(4)
                .map(|quad| {
                    char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]))
                })
                .collect::<Option<String>>()?
        }
        _ => return None,
    };
    Some(prepare(&decoded))
}

/// OpenSSL's `asn1_string_canon` on UTF-8 text: trim, collapse and
/// lower-case ASCII white space and letters; leave every other byte alone.
fn prepare(text: &str) -> String {
    // C isspace(): space, \t, \n, \v, \f, \r.
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
    let trimmed = text.trim_matches(is_space);
    let mut out = String::with_capacity(trimmed.len());
    let mut in_space = false;
    for c in trimmed.chars() {
        if is_space(c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            in_space = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// One DER element with a short-form or long-form length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|byte| *byte == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn atav(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        let mut content = tlv(6, oid);
        content.extend(tlv(tag, value));
        tlv(0x31, &tlv(0x30, &content))
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];

    fn name(rdns: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &rdns.concat())
    }

    fn canon(der: &[u8]) -> CanonicalName {
        CanonicalName::from_der(der).unwrap()
    }

    #[test]
    fn case_spacing_and_string_type_do_not_matter() {
        let a = name(&[
            atav(O, TAG_PRINTABLE_STRING, b"Grid"),
            atav(CN, TAG_PRINTABLE_STRING, b"Test CA"),
        ]);
        let b = name(&[
            atav(O, TAG_UTF8_STRING, b"  grid "),
            atav(CN, TAG_UTF8_STRING, b"TEST \t  ca"),
        ]);
        assert_eq!(canon(&a), canon(&b));
        assert_eq!(canon(&a).openssl_hash(), canon(&b).openssl_hash());
        let c = name(&[
            atav(O, TAG_UTF8_STRING, b"grid"),
            atav(CN, TAG_UTF8_STRING, b"Test-CA"),
        ]);
        assert_ne!(canon(&a), canon(&c));
    }

    #[test]
    fn bmp_and_latin1_decode_to_the_same_text() {
        let utf8 = name(&[atav(CN, TAG_UTF8_STRING, "J\u{fc}rgen".as_bytes())]);
        let t61 = name(&[atav(CN, TAG_T61_STRING, b"J\xfcrgen")]);
        let bmp = name(&[atav(
            CN,
            TAG_BMP_STRING,
            &[0, b'J', 0, 0xfc, 0, b'r', 0, b'g', 0, b'e', 0, b'n'],
        )]);
        assert_eq!(canon(&utf8), canon(&t61));
        assert_eq!(canon(&utf8), canon(&bmp));
        // Non-ASCII case is not folded (as in OpenSSL).
        let upper = name(&[atav(CN, TAG_UTF8_STRING, "J\u{dc}rgen".as_bytes())]);
        assert_ne!(canon(&utf8), canon(&upper));
    }

    #[test]
    fn rdn_order_matters_but_set_order_does_not() {
        let ab = name(&[atav(O, 19, b"a"), atav(CN, 19, b"b")]);
        let ba = name(&[atav(CN, 19, b"b"), atav(O, 19, b"a")]);
        assert_ne!(canon(&ab), canon(&ba));
        let mut set1 = tlv(6, O);
        set1.extend(tlv(19, b"a"));
        let mut set2 = tlv(6, CN);
        set2.extend(tlv(19, b"b"));
        let multi1 = tlv(
            0x30,
            &tlv(0x31, &[tlv(0x30, &set1), tlv(0x30, &set2)].concat()),
        );
        let multi2 = tlv(
            0x30,
            &tlv(0x31, &[tlv(0x30, &set2), tlv(0x30, &set1)].concat()),
        );
        assert_eq!(canon(&multi1), canon(&multi2));
    }

    #[test]
    fn subtree_is_an_rdn_prefix() {
        let base = name(&[atav(O, 19, b"Grid")]);
        let inside = name(&[atav(O, 19, b"GRID"), atav(CN, 19, b"x")]);
        let outside = name(&[atav(O, 19, b"Gridx"), atav(CN, 19, b"x")]);
        assert!(canon(&inside).is_within(&canon(&base)));
        assert!(!canon(&outside).is_within(&canon(&base)));
        assert!(canon(&base).is_within(&canon(&base)));
        assert!(!canon(&base).is_within(&canon(&inside)));
        assert!(canon(&inside).is_within(&CanonicalName::default()));
    }

    #[test]
    fn non_string_values_compare_as_bytes() {
        let a = name(&[atav(CN, 0x04, b"Ab")]);
        let b = name(&[atav(CN, 0x04, b"ab")]);
        assert_ne!(canon(&a), canon(&b));
    }

    #[test]
    fn openssl_hashes_of_a_real_igtf_ca() {
        // GridKa-CA ships as dd4b34ea.0 (old-style hash); the new-style hash
        // is what `openssl x509 -subject_hash` prints for it.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/testdata/real-lists/ca/dd4b34ea.0");
        let pem = std::fs::read(path).unwrap();
        let (_, der) = pem_rfc7468::decode_vec(&pem).unwrap();
        use der::{Decode, Encode};
        let cert = x509_cert::Certificate::from_der(&der).unwrap();
        let subject = cert.tbs_certificate().subject().to_der().unwrap();
        assert_eq!(format!("{:08x}", openssl_hash_old(&subject)), "dd4b34ea");
        let output = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-subject_hash", "-in"])
            .arg(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/testdata/real-lists/ca/dd4b34ea.0"),
            )
            .output()
            .unwrap();
        let expected = String::from_utf8(output.stdout).unwrap();
        assert_eq!(
            format!("{:08x}", canon(&subject).openssl_hash()),
            expected.trim()
        );
    }

    #[test]
    fn literal_backslashes_are_ambiguous() {
        let plain = name(&[atav(CN, TAG_UTF8_STRING, "J\u{fc}rgen".as_bytes())]);
        let typed = name(&[atav(CN, TAG_PRINTABLE_STRING, b"J\\xC3\\xBCrgen")]);
        assert!(!has_ambiguous_rendering(&plain).unwrap());
        assert!(has_ambiguous_rendering(&typed).unwrap());
        assert_eq!(
            super::super::dn::one_line_from_der(&plain).unwrap(),
            super::super::dn::one_line_from_der(&typed).unwrap()
        );
    }
}
