//! `vmlisub verify` over real-world lists and trust anchors kept in
//! `shared/testdata/real-lists` (read in place, never copied; see its
//! README.txt for the provenance of every file).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use support::cli::{CrlPolicy, Outcome, Verify};
use support::openssl;

const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testdata/real-lists"
);

const GRIDKA_2011_03: [&str; 2] = [
    "hepixvmitrust-README-gridka-2011-03-legacyformat.smime",
    "hepix-book-gridka-2011-03-legacyformat.smime",
];
const GRIDKA_2011_06: &str = "hepixvmitrust-README-gridka-2011-06-hvimagelist.smime";
const GRIDKA_2011_02: &str = "hepixvmitrust-README-gridka-2011-02-legacyformat.smime";
const CLOUDKEEPER: [&str; 4] = [
    "cloudkeeper-imagelist01.signed",
    "cloudkeeper-imagelist02.signed",
    "cloudkeeper-imagelist03.signed",
    "cloudkeeper-imagelist04.signed",
];
const CLOUDKEEPER_INVALID: &str = "cloudkeeper-imagelist_invalid.signed";

const OWEN: &str = "/C=DE/O=GermanGrid/OU=DESY/CN=Owen Synge";
const GRIDKA: &str = "/C=DE/O=GermanGrid/CN=GridKa-CA";
/// While the 2011-03 lists are current and their signer (0x33EC) is valid.
const MARCH_2011: &str = "2011-03-11T00:00:00Z";
/// While the older signer certificate (0x289B, expired 2011-02-04) is valid.
const JANUARY_2011: &str = "2011-01-15T00:00:00Z";
/// While the cloudkeeper test signer is valid (2018-02-19..2028-02-17).
const CLOUDKEEPER_TIME: &str = "2020-01-01T00:00:00Z";

fn real(name: &str) -> PathBuf {
    let path = PathBuf::from(REAL).join(name);
    assert!(
        path.exists(),
        "{} is missing: the real-list test data must be present (shared/testdata/real-lists)",
        path.display()
    );
    path
}

/// GridKa lists: the real IGTF directory (with its .namespaces and
/// .signing_policy files), no CRLs available, SHA-1 allowed.
fn gridka(at: &str) -> Verify {
    Verify::new()
        .ca_dir(&real("ca"))
        .allow_sha1()
        .crl_policy(CrlPolicy::Ignore)
        .at(at)
}

fn cloudkeeper() -> Verify {
    Verify::new()
        .ca_dir(&real("ca/cloudkeeper-test"))
        .crl_policy(CrlPolicy::Ignore)
        .at(CLOUDKEEPER_TIME)
}

fn json(out: &Outcome) -> serde_json::Value {
    out.assert_ok();
    out.json()
}

#[test]
fn gridka_2011_03_legacy_lists_verify_with_sha1_allowed() {
    let mut messages = Vec::new();
    for name in GRIDKA_2011_03 {
        let out = gridka(MARCH_2011).format("json").file(&real(name)).run();
        let v = json(&out);
        assert_eq!(v["signer"]["subject"], OWEN, "{}", out.describe());
        assert_eq!(v["signer"]["issuer"], GRIDKA, "{}", out.describe());
        assert_eq!(
            v["list"]["identifier"],
            "4e186b44-2c64-40ea-97d5-e9e5c0bce059",
            "{}",
            out.describe()
        );
        assert_eq!(
            v["list"]["created"],
            "2011-03-10T17:09:12Z",
            "{}",
            out.describe()
        );
        assert_eq!(
            v["list"]["expires"],
            "2011-04-07T17:09:12Z",
            "{}",
            out.describe()
        );
        assert_eq!(
            v["images"].as_array().map(Vec::len),
            Some(1),
            "{}",
            out.describe()
        );
        let warnings = v["warnings"].as_array().cloned().unwrap_or_default();
        assert!(
            !warnings.is_empty(),
            "legacy format (no hv:imagelist wrapper) must warn\n{}",
            out.describe()
        );

        let message = gridka(MARCH_2011).format("message").file(&real(name)).run();
        messages.push(json(&message));
    }
    assert_eq!(
        messages[0], messages[1],
        "the two copies carry the same signed list"
    );
}

#[test]
fn gridka_2011_03_lists_without_allow_sha1_are_legacy_algorithm() {
    for name in GRIDKA_2011_03 {
        Verify::new()
            .ca_dir(&real("ca"))
            .crl_policy(CrlPolicy::Ignore)
            .at(MARCH_2011)
            .file(&real(name))
            .run()
            .assert_reason("legacy-algorithm");
    }
}

#[test]
fn gridka_2011_03_lists_with_default_crl_policy_are_crl_missing() {
    // No CRL for GridKa-CA is shipped: the default policy fails closed.
    for name in GRIDKA_2011_03 {
        Verify::new()
            .ca_dir(&real("ca"))
            .allow_sha1()
            .at(MARCH_2011)
            .file(&real(name))
            .run()
            .assert_reason("crl-missing");
    }
}

#[test]
fn gridka_2011_03_list_outside_its_window() {
    let file = real(GRIDKA_2011_03[0]);
    // Signer valid 2011-01-10..2012-02-09, list 2011-03-10..2011-04-07.
    gridka("2011-05-01T00:00:00Z")
        .file(&file)
        .run()
        .assert_reason("list-expired");
    gridka("2011-02-01T00:00:00Z")
        .file(&file)
        .run()
        .assert_reason("created-in-future");
}

#[test]
fn gridka_2011_03_endorser_pinning() {
    let file = real(GRIDKA_2011_03[0]);
    gridka(MARCH_2011)
        .endorser(OWEN, GRIDKA)
        .file(&file)
        .run()
        .assert_ok();
    gridka(MARCH_2011)
        .endorser("/C=DE/O=GermanGrid/OU=KIT/CN=Someone Else", GRIDKA)
        .file(&file)
        .run()
        .assert_reason("endorser-not-authorised");
}

#[test]
fn gridka_2011_06_list_is_certificate_expired_when_signed() {
    // signingTime 2011-06-02; certificate 0x289B expired 2011-02-04.
    gridka("2011-06-02T00:00:00Z")
        .file(&real(GRIDKA_2011_06))
        .run()
        .assert_reason("certificate-expired");
    // While the list itself is current, the certificate has expired too.
    gridka(MARCH_2011)
        .file(&real(GRIDKA_2011_06))
        .run()
        .assert_reason("certificate-expired");
}

#[test]
fn gridka_2011_06_list_is_created_in_future_while_its_certificate_is_valid() {
    // The list says created 2011-03-10, after the certificate expired.
    gridka(JANUARY_2011)
        .file(&real(GRIDKA_2011_06))
        .run()
        .assert_reason("created-in-future");
}

#[test]
fn gridka_2011_06_list_verifies_at_no_time() {
    let file = real(GRIDKA_2011_06);
    for year in [2010, 2011, 2012] {
        for month in 1..=12 {
            for day in [1, 15] {
                let at = format!("{year}-{month:02}-{day:02}T12:00:00Z");
                let out = gridka(&at).file(&file).run();
                assert!(!out.accepted(), "verified at {at}\n{}", out.describe());
                assert!(out.reason().is_some(), "{}", out.describe());
            }
        }
    }
}

#[test]
fn gridka_2011_02_prototype_is_malformed_list() {
    // A valid signature (at a time its certificate was valid) over a
    // pre-standard document that is not an image list.
    gridka(JANUARY_2011)
        .file(&real(GRIDKA_2011_02))
        .run()
        .assert_reason("malformed-list");
}

#[test]
fn cloudkeeper_lists_are_signer_dn_mismatch() {
    // Valid signatures by the self-signed test certificate, but hv:dn/hv:ca
    // name an AppDB-style host certificate.
    for name in CLOUDKEEPER {
        cloudkeeper()
            .file(&real(name))
            .run()
            .assert_reason("signer-dn-mismatch");
    }
}

#[test]
fn cloudkeeper_invalid_list_is_digest_mismatch() {
    // Tampered content. (Its signer, /C=NA/.../CN=TEST, is not the
    // cloudkeeper-test certificate either: the content digest is checked
    // before the chain.)
    cloudkeeper()
        .file(&real(CLOUDKEEPER_INVALID))
        .run()
        .assert_reason("digest-mismatch");
}

#[test]
fn cloudkeeper_invalid_list_is_digest_mismatch_with_its_signer_trusted() {
    // Trust the list's own (self-signed) signer, so only the tampering is
    // wrong. The certificate is extracted into a temporary CA directory.
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    std::fs::create_dir(&ca_dir).unwrap();
    let p7 = openssl::run(
        dir.path(),
        [
            "smime".as_ref(),
            "-pk7out".as_ref(),
            "-in".as_ref(),
            real(CLOUDKEEPER_INVALID).as_os_str(),
        ] as [&std::ffi::OsStr; 4],
    );
    let p7_path = dir.path().join("p7.pem");
    std::fs::write(&p7_path, p7).unwrap();
    let certs = openssl::run(
        dir.path(),
        [
            "pkcs7".as_ref(),
            "-print_certs".as_ref(),
            "-in".as_ref(),
            p7_path.as_os_str(),
        ] as [&std::ffi::OsStr; 4],
    );
    std::fs::write(ca_dir.join("signer.pem"), certs).unwrap();
    Verify::new()
        .ca_dir(&ca_dir)
        .crl_policy(CrlPolicy::Ignore)
        .at("2019-01-01T00:00:00Z")
        .file(&real(CLOUDKEEPER_INVALID))
        .run()
        .assert_reason("digest-mismatch");
}
