#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use der::{Decode as _, DecodePem as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use x509_cert::Certificate;

const CA_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/real-lists/ca"
);

/// The differential tests need the `openssl` CLI; without it they skip.
fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("openssl not on PATH: skipping differential DN test");
    }
    found
}

/// What `openssl x509 -noout -<which> -nameopt compat` prints, without
/// the `<which>=` prefix and the newline; `None` if OpenSSL refuses the
/// certificate.
fn openssl_name(cert: &Path, der_input: bool, which: &str) -> Option<String> {
    let mut command = Command::new("openssl");
    command.arg("x509").arg("-in").arg(cert);
    if der_input {
        command.args(["-inform", "DER"]);
    }
    let out = command
        .args(["-noout", &format!("-{which}"), "-nameopt", "compat"])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.strip_suffix('\n').unwrap();
    Some(line.strip_prefix(&format!("{which}=")).unwrap().to_owned())
}

/// A self-signed P-256 certificate with the given subject, made by the
/// openssl CLI (`-utf8 -multivalue-rdn`), as PEM.
fn openssl_cert(dir: &Path, file: &str, subject: &str) -> PathBuf {
    let cert = dir.join(file);
    let key = dir.join(format!("{file}.key"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:P-256")
        .args(["-nodes", "-days", "1", "-utf8", "-multivalue-rdn"])
        .arg("-subj")
        .arg(subject)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "openssl req failed for {subject}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    cert
}

/// Checks a PEM certificate: both of our paths, for subject and issuer,
/// against OpenSSL.
fn assert_same_as_openssl(cert: &Path) -> CertNames {
    let pem = std::fs::read(cert).unwrap();
    let parsed = Certificate::from_pem(&pem).unwrap();
    let der = der::Encode::to_der(&parsed).unwrap();
    let expected = CertNames {
        subject: openssl_name(cert, false, "subject").unwrap(),
        issuer: openssl_name(cert, false, "issuer").unwrap(),
    };
    assert_eq!(
        one_line(parsed.tbs_certificate().subject()),
        expected.subject
    );
    assert_eq!(one_line(parsed.tbs_certificate().issuer()), expected.issuer);
    assert_eq!(cert_names(&der).unwrap(), expected);
    expected
}

#[test]
fn openssl_generated_names_match() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::TempDir::new().unwrap();
    // (subject given to openssl req, what OpenSSL prints), the latter
    // pinned so a regression is visible even in the expected strings.
    let cases: &[(&str, &str)] = &[
        (
            "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=buncic/CN=379010/CN=Predrag Buncic",
            "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=buncic/CN=379010/CN=Predrag Buncic",
        ),
        (
            "/DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=appdb.egi.eu",
            "/DC=EU/DC=EGI/C=NL/O=Hosts/O=EGI.eu/CN=appdb.egi.eu",
        ),
        (
            "/C=DE/O=GermanGrid/OU=DESY/CN=Owen Synge",
            "/C=DE/O=GermanGrid/OU=DESY/CN=Owen Synge",
        ),
        // Multi-valued RDNs; the second one's canonical DER order (by
        // encoded length first) differs from the order given.
        (
            "/DC=org/CN=buncic+UID=x/OU=a+OU=b",
            "/DC=org/CN=buncic+UID=x/OU=a+OU=b",
        ),
        (
            "/O=Grid/CN=a rather long common name+UID=short",
            "/O=Grid/UID=short+CN=a rather long common name",
        ),
        ("/CN=Jürgen Müller", "/CN=J\\xC3\\xBCrgen M\\xC3\\xBCller"),
        (
            "/O=日本/CN=Ærøskøbing €",
            "/O=\\xE6\\x97\\xA5\\xE6\\x9C\\xAC/CN=\\xC3\\x86r\\xC3\\xB8sk\\xC3\\xB8bing \\xE2\\x82\\xAC",
        ),
        (
            "/CN=a\\/b\\+c,d=e\"f\\\\g'h;i<j>k#l",
            "/CN=a\\/b\\+c,d=e\"f\\g'h;i<j>k#l",
        ),
        (
            "/C=CH/ST=Geneva/L=Meyrin/O=CERN/OU=IT/CN=host.cern.ch/emailAddress=root@cern.ch",
            "/C=CH/ST=Geneva/L=Meyrin/O=CERN/OU=IT/CN=host.cern.ch/emailAddress=root@cern.ch",
        ),
        (
            "/serialNumber=12345/GN=Predrag/SN=Buncic/title=Dr/initials=PB/pseudonym=pb/generationQualifier=Jr/dnQualifier=q/name=n/street=Route 1/postalCode=1211/description=d/businessCategory=b/UID=u/DC=x",
            "/serialNumber=12345/GN=Predrag/SN=Buncic/title=Dr/initials=PB/pseudonym=pb/generationQualifier=Jr/dnQualifier=q/name=n/street=Route 1/postalCode=1211/description=d/businessCategory=b/UID=u/DC=x",
        ),
        (
            "/organizationIdentifier=VATDE-1/jurisdictionC=DE/role=admin/unstructuredName=u",
            "/organizationIdentifier=VATDE-1/jurisdictionC=DE/role=admin/unstructuredName=u",
        ),
        ("/CN= leading and trailing ", "/CN= leading and trailing "),
        ("/CN=tilde~and`backtick", "/CN=tilde~and`backtick"),
    ];
    for (index, (subject, printed)) in cases.iter().enumerate() {
        let cert = openssl_cert(dir.path(), &format!("c{index}.pem"), subject);
        let names = assert_same_as_openssl(&cert);
        assert_eq!(names.subject, *printed, "subject {subject}");
        assert_eq!(names.issuer, *printed, "issuer of self-signed {subject}");
    }
}

#[test]
fn issuer_differs_from_subject() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::TempDir::new().unwrap();
    let ca = openssl_cert(dir.path(), "ca.pem", "/DC=ORG/DC=Test/CN=Test CA+O=Ünï");
    let csr = dir.path().join("leaf.csr");
    let leaf = dir.path().join("leaf.pem");
    let out = Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:P-256")
        .args(["-nodes", "-utf8", "-subj", "/DC=ORG/DC=Test/CN=leaf\\/1"])
        .arg("-keyout")
        .arg(dir.path().join("leaf.key"))
        .arg("-out")
        .arg(&csr)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new("openssl")
        .args(["x509", "-req", "-days", "1", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(dir.path().join("ca.pem.key"))
        .args(["-set_serial", "7", "-out"])
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = assert_same_as_openssl(&leaf);
    assert_eq!(names.subject, "/DC=ORG/DC=Test/CN=leaf\\/1");
    // `-multivalue-rdn` encodes the SET in DER order: the shorter
    // O attribute first.
    assert_eq!(
        names.issuer,
        "/DC=ORG/DC=Test/O=\\xC3\\x9Cn\\xC3\\xAF+CN=Test CA"
    );
}

#[test]
fn real_ca_certificates_match() {
    let expected = [
        ("dd4b34ea.0", "/C=DE/O=GermanGrid/CN=GridKa-CA"),
        ("772dbd1c.0", "/DC=ORG/DC=SEE-GRID/CN=SEE-GRID CA 2013"),
    ];
    for (file, dn) in expected {
        let path = Path::new(CA_DIR).join(file);
        let pem = std::fs::read(&path).unwrap();
        let cert = Certificate::from_pem(&pem).unwrap();
        // Self-signed roots: subject and issuer are the CA's own DN.
        assert_eq!(one_line(cert.tbs_certificate().subject()), dn);
        assert_eq!(one_line(cert.tbs_certificate().issuer()), dn);
        if openssl_available() {
            assert_same_as_openssl(&path);
        }
    }
}

// ---- Hand-built DER: value types and encodings `openssl req` cannot
// ---- produce, spliced into an openssl-made certificate.

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u128> = dotted.split('.').map(|arc| arc.parse().unwrap()).collect();
    let mut content = Vec::new();
    let mut push_arc = |mut value: u128| {
        let mut groups = vec![(value & 0x7f) as u8];
        value >>= 7;
        while value > 0 {
            groups.push(0x80 | (value & 0x7f) as u8);
            value >>= 7;
        }
        groups.reverse();
        content.extend(groups);
    };
    push_arc(arcs[0] * 40 + arcs[1]);
    for arc in &arcs[2..] {
        push_arc(*arc);
    }
    tlv(0x06, &content)
}

fn atav(oid_tlv: Vec<u8>, value_tlv: Vec<u8>) -> Vec<u8> {
    tlv(0x30, &[oid_tlv, value_tlv].concat())
}

/// One RDN, attributes in the given (possibly non-canonical) order.
fn rdn(atavs: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &atavs.concat())
}

fn name(rdns: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &rdns.concat())
}

fn utf8(text: &str) -> Vec<u8> {
    tlv(0x0c, text.as_bytes())
}

/// A DER certificate made by openssl with issuer and subject replaced.
/// The signature no longer verifies, which `openssl x509 -subject`
/// does not care about.
fn spliced_cert(template: &[u8], issuer: &[u8], subject: &[u8]) -> Vec<u8> {
    let mut top = Der::new(template, 0);
    let cert = top.read().unwrap();
    let mut cert_fields = cert.inner();
    let tbs = cert_fields.read().unwrap();
    let mut rest = Vec::new();
    while !cert_fields.is_empty() {
        rest.extend_from_slice(cert_fields.read().unwrap().whole);
    }
    let mut fields = tbs.inner();
    let mut tbs_content = Vec::new();
    let mut index = 0;
    while !fields.is_empty() {
        let field = fields.read().unwrap();
        // [0] version, serial, algorithm, issuer, validity, subject, ...
        match index {
            3 => tbs_content.extend_from_slice(issuer),
            5 => tbs_content.extend_from_slice(subject),
            _ => tbs_content.extend_from_slice(field.whole),
        }
        index += 1;
    }
    tlv(0x30, &[tlv(0x30, &tbs_content), rest].concat())
}

struct Splicer {
    dir: tempfile::TempDir,
    template: Vec<u8>,
}

impl Splicer {
    fn new() -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let pem = openssl_cert(dir.path(), "template.pem", "/CN=template");
        let cert = Certificate::from_pem(std::fs::read(pem).unwrap()).unwrap();
        let template = der::Encode::to_der(&cert).unwrap();
        Self { dir, template }
    }

    /// Our raw-DER rendering of `subject_der` compared with OpenSSL's
    /// (`None` if OpenSSL refuses the certificate); the parsed-`Name`
    /// path is checked too when x509-cert accepts the certificate and
    /// `canonical` says the SETs are in DER order.
    fn check(&self, label: &str, subject_der: &[u8], canonical: bool) -> Option<String> {
        let issuer = name(&[rdn(&[atav(oid("2.5.4.3"), utf8("issuer"))])]);
        let cert = spliced_cert(&self.template, &issuer, subject_der);
        let path = self.dir.path().join(format!("{label}.der"));
        std::fs::write(&path, &cert).unwrap();
        let ours = cert_names(&cert).map(|names| names.subject);
        assert_eq!(one_line_from_der(subject_der), ours, "{label}");
        let theirs = openssl_name(&path, true, "subject");
        if let Some(theirs) = &theirs {
            assert_eq!(ours.as_ref(), Ok(theirs), "{label}: raw DER path");
            if canonical {
                match Certificate::from_der(&cert) {
                    Ok(parsed) => assert_eq!(
                        &one_line(parsed.tbs_certificate().subject()),
                        theirs,
                        "{label}: parsed Name path"
                    ),
                    Err(error) => eprintln!("{label}: x509-cert refuses it: {error}"),
                }
            }
        }
        theirs
    }
}

#[test]
fn every_known_attribute_type_matches() {
    if !openssl_available() {
        return;
    }
    let splicer = Splicer::new();
    let rdns: Vec<Vec<u8>> = SHORT_NAMES
        .iter()
        .map(|(dotted, _)| rdn(&[atav(oid(dotted), utf8("v"))]))
        .collect();
    let printed = splicer
        .check("all-types", &name(&rdns), true)
        .expect("openssl accepts every attribute type");
    let expected: String = SHORT_NAMES
        .iter()
        .map(|(_, short)| format!("/{short}=v"))
        .collect();
    assert_eq!(printed, expected);
}

#[test]
fn unknown_oids_match() {
    if !openssl_available() {
        return;
    }
    let splicer = Splicer::new();
    let long_oid = format!("1.3.6.1.4.1{}", ".123456789".repeat(10));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("plain", oid("1.2.3.4.5"), "/1.2.3.4.5=v"),
        ("first-arc-2", oid("2.999.1"), "/2.999.1=v"),
        ("zero", oid("0.0"), "/0.0=v"),
        (
            "big-arc",
            oid("1.2.340282366920938463463374607431768211455"),
            "/1.2.340282366920938463463374607431768211455=v",
        ),
        ("truncated", oid(&long_oid), ""),
        // A sub-identifier beyond u128 (const-oid cannot hold it).
        (
            "huge-arc",
            tlv(0x06, &[&[0x2a][..], &[0xff; 30], &[0x7f]].concat()),
            "",
        ),
        // Longer than OBJ_obj2txt accepts.
        (
            "too-long",
            tlv(
                0x06,
                &[0x2a]
                    .iter()
                    .chain([0x01; 600].iter())
                    .copied()
                    .collect::<Vec<u8>>(),
            ),
            "/=v",
        ),
    ];
    for (label, oid_tlv, expected) in cases {
        let subject = name(&[rdn(&[atav(oid_tlv, utf8("v"))])]);
        let printed = splicer.check(label, &subject, true).expect(label);
        if !expected.is_empty() {
            assert_eq!(printed, expected, "{label}");
        }
        if label == "truncated" {
            assert_eq!(printed.len(), "/=v".len() + 79);
        }
    }
}

#[test]
fn value_types_and_escapes_match() {
    if !openssl_available() {
        return;
    }
    let splicer = Splicer::new();
    let cn = || oid("2.5.4.3");
    let all_bytes: Vec<u8> = (0u8..=255).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("printable", tlv(0x13, b"Predrag Buncic")),
        ("ia5", tlv(0x16, b"a@b.c/x+y")),
        ("t61-latin1", tlv(0x14, b"J\xfcrgen")),
        ("bmp", tlv(0x1e, &[0x00, 0x4a, 0x00, 0xfc, 0x00, 0x2f])),
        ("universal", tlv(0x1c, &[0, 0, 0, 0x41, 0, 0, 0, 0xfc])),
        ("numeric", tlv(0x12, b"0123 456")),
        ("visible", tlv(0x1a, b"visible")),
        ("utf8-all-bytes-ascii", tlv(0x0c, &all_bytes[..0x80])),
        ("t61-all-bytes", tlv(0x14, &all_bytes)),
        ("control", tlv(0x0c, b"a\nb\tc\x00d\x7fe\\f")),
        ("empty", tlv(0x0c, b"")),
        ("general", tlv(0x1b, b"general")),
        ("general-quad", tlv(0x1b, &[0, 0, 0, b'A', 0, 0, 0, b'B'])),
        (
            "general-quad-mixed",
            tlv(0x1b, &[0, 1, 0, b'A', 0, 0, 0, b'B']),
        ),
        ("general-zeros", tlv(0x1b, &[0, 0, 0, 0])),
        ("bitstring", tlv(0x03, &[0x03, 0x41, 0xff])),
        ("bitstring-empty", tlv(0x03, &[0x00])),
        ("sequence", tlv(0x30, &utf8("inner"))),
        (
            "constructed-octets",
            tlv(0x2c, &[tlv(0x04, b"ab"), tlv(0x04, b"/c")].concat()),
        ),
        ("long", tlv(0x0c, "x".repeat(300).as_bytes())),
    ];
    for (label, value) in cases {
        let subject = name(&[
            rdn(&[atav(oid("0.9.2342.19200300.100.1.25"), tlv(0x16, b"org"))]),
            rdn(&[atav(cn(), value)]),
        ]);
        let printed = splicer.check(label, &subject, true);
        // OpenSSL refuses VisibleString and GeneralString in names; all
        // other cases must have been compared.
        let refused = matches!(label, "visible") || label.starts_with("general");
        assert_eq!(printed.is_none(), refused, "{label}: {printed:?}");
    }
    // Pinned results of the rules documented at the top of the module.
    let show = |value: Vec<u8>| one_line_from_der(&name(&[rdn(&[atav(cn(), value)])])).unwrap();
    assert_eq!(
        show(tlv(0x1e, &[0x00, 0x4a, 0x00, 0xfc])),
        "/CN=\\x00J\\x00\\xFC"
    );
    assert_eq!(
        show(tlv(0x0c, b"a\nb\x7f\\/+=,\"")),
        "/CN=a\\x0Ab\\x7F\\\\/\\+=,\""
    );
    // OpenSSL refuses GeneralString in names; we print the octets.
    assert_eq!(show(tlv(0x1b, &[0, 0, 0, b'A'])), "/CN=\\x00\\x00\\x00A");
    assert_eq!(show(tlv(0x03, &[0x03, 0x41, 0xff])), "/CN=A\\xF8");
    assert_eq!(show(tlv(0x30, &utf8("x"))), "/CN=0\\x03\\x0C\\x01x");
}

#[test]
fn rdn_structure_matches() {
    if !openssl_available() {
        return;
    }
    let splicer = Splicer::new();
    let cn = |text: &str| atav(oid("2.5.4.3"), utf8(text));
    let uid = |text: &str| atav(oid("0.9.2342.19200300.100.1.1"), utf8(text));
    // Non-canonical SET order: OpenSSL prints it as encoded.
    let unsorted = name(&[rdn(&[uid("a longer user id"), cn("x")])]);
    assert_eq!(
        splicer.check("unsorted-set", &unsorted, false).as_deref(),
        Some("/UID=a longer user id+CN=x")
    );
    // x509-cert sorts SETs when decoding, so the parsed-Name path
    // prints canonical order here (documented divergence).
    let parsed = Name::from_der(&unsorted).unwrap();
    assert_eq!(one_line(&parsed), "/CN=x+UID=a longer user id");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty-name", name(&[])),
        (
            "three-valued",
            name(&[rdn(&[cn("a"), cn("b"), cn("c")]), rdn(&[cn("d")])]),
        ),
        (
            "empty-rdn",
            name(&[rdn(&[cn("a")]), rdn(&[]), rdn(&[cn("b")])]),
        ),
        (
            "repeated",
            name(&[rdn(&[cn("a")]), rdn(&[cn("a")]), rdn(&[cn("a")])]),
        ),
    ];
    for (label, subject) in cases {
        let printed = splicer.check(label, &subject, true);
        assert!(printed.is_some(), "{label}: OpenSSL refused it");
    }
}

#[test]
fn malformed_der_is_an_error_not_a_panic() {
    let good = name(&[rdn(&[atav(oid("2.5.4.3"), utf8("x"))])]);
    assert_eq!(one_line_from_der(&good).unwrap(), "/CN=x");
    // Every truncation of a valid name is rejected cleanly.
    for cut in 0..good.len() {
        assert!(one_line_from_der(&good[..cut]).is_err(), "cut at {cut}");
    }
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("trailing", [good.clone(), vec![0]].concat()),
        ("indefinite", vec![0x30, 0x80, 0x00, 0x00]),
        (
            "huge-length",
            vec![0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "too-many-length-bytes",
            vec![0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        ),
        (
            "not-a-set",
            name(&[tlv(0x30, &atav(oid("2.5.4.3"), utf8("x")))]),
        ),
        ("not-an-oid", name(&[rdn(&[atav(utf8("CN"), utf8("x"))])])),
        (
            "oid-empty",
            name(&[rdn(&[atav(tlv(0x06, &[]), utf8("x"))])]),
        ),
        (
            "oid-open-arc",
            name(&[rdn(&[atav(tlv(0x06, &[0x2a, 0x81]), utf8("x"))])]),
        ),
        (
            "oid-leading-80",
            name(&[rdn(&[atav(tlv(0x06, &[0x2a, 0x80, 0x01]), utf8("x"))])]),
        ),
        ("missing-value", name(&[rdn(&[tlv(0x30, &oid("2.5.4.3"))])])),
        (
            "extra-field",
            name(&[rdn(&[tlv(
                0x30,
                &[oid("2.5.4.3"), utf8("x"), utf8("y")].concat(),
            )])]),
        ),
        (
            "high-tag-overflow",
            vec![0x1f, 0x81, 0x81, 0x81, 0x81, 0x01, 0x00],
        ),
    ];
    for (label, der) in bad {
        assert!(one_line_from_der(&der).is_err(), "{label}");
    }
    assert!(cert_names(&[]).is_err());
    assert!(cert_names(&good).is_err());
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: mutate a valid name byte by byte.
    let good = name(&[
        rdn(&[atav(oid("0.9.2342.19200300.100.1.25"), tlv(0x16, b"ch"))]),
        rdn(&[
            atav(oid("2.5.4.3"), utf8("x")),
            atav(oid("1.2.3"), tlv(0x03, &[7, 0xff])),
        ]),
        rdn(&[atav(
            oid("2.5.4.10"),
            tlv(0x2c, &tlv(0x24, &tlv(0x04, b"a"))),
        )]),
    ]);
    for index in 0..good.len() {
        for byte in [0x00, 0x1f, 0x30, 0x31, 0x7f, 0x80, 0x81, 0x84, 0xff] {
            let mut mutated = good.clone();
            mutated[index] = byte;
            let _ = one_line_from_der(&mutated);
            let _ = cert_names(&mutated);
        }
    }
}

#[test]
fn dotted_oid_arithmetic() {
    let text = |dotted: &str| {
        let der = oid(dotted);
        dotted_oid(&der[2..])
    };
    assert_eq!(text("1.2.840.113549.1.9.1"), "1.2.840.113549.1.9.1");
    assert_eq!(text("2.999.3"), "2.999.3");
    assert_eq!(text("2.40.0"), "2.40.0");
    assert_eq!(text("1.39"), "1.39");
    assert_eq!(text("2.0"), "2.0");
    assert_eq!(text("0.0.1000000000000000000"), "0.0.1000000000000000000");
    assert_eq!(
        text("2.340282366920938463463374607431768211375"),
        "2.340282366920938463463374607431768211375"
    );
    assert_eq!(
        oid_short_or_dotted(&oid("2.5.4.3")[2..]).as_deref(),
        Some("CN")
    );
    assert_eq!(
        oid_short_or_dotted(&oid("1.2.840.113549.1.9.1")[2..]).as_deref(),
        Some("emailAddress")
    );
}

#[test]
fn short_name_table_is_sorted_and_unique() {
    let key =
        |dotted: &str| -> Vec<u64> { dotted.split('.').map(|arc| arc.parse().unwrap()).collect() };
    for pair in SHORT_NAMES.windows(2) {
        assert!(key(pair[0].0) < key(pair[1].0), "{pair:?}");
    }
}
