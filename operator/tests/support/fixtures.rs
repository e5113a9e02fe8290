//! The standard test PKI, built once per test binary.
//!
//! ```text
//! Example Root CA (RSA-3072)                       trusted
//! ├── Example Issuing CA (EC P-384)                intermediate
//! │   ├── ivan, ivan-revoked, robot (OU=Robots: outside its namespace)
//! ├── Expired Issuing CA / Future Issuing CA       intermediates outside their validity
//! │   └── one signer each
//! ├── Revoked Issuing CA (listed in the root CRL)
//! │   └── revoked-inter-signer
//! ├── alice (RSA-2048), bob (P-256), carol (P-384), dave (RSA-3072)
//! ├── expired, not-yet-valid, revoked
//! ├── ku-keyenc, ku-nonrep, eku-server, host, no-ku, sha1-cert
//! │   └── Sub Issuing CA (violates the intermediate's pathlen 0) -> subby
//! ├── No CertSign CA (CA:TRUE, keyUsage without keyCertSign) -> nocertsign-signer
//! ├── No BasicConstraints CA (keyCertSign, no basicConstraints) -> nobc-signer
//! ├── No CRLSign CA (keyCertSign, no cRLSign: its CRL is unusable) -> nocrlsign-signer
//! ├── critical-ext (an unknown critical extension)
//! ├── exotic-dn, t61-dn, slash-dn (unusual subject encodings)
//! ├── outsider (/DC=org/DC=other/...: outside the root namespace)
//! └── alice also "issues" eve (an end entity used as a CA)
//! Other Root CA -> mallet                           never trusted
//! Expired Root CA -> expired-root-signer            root outside its validity
//! Future Root CA -> future-root-signer              root not yet valid
//! SHA-1 Root CA -> sha1-root-signer                  root self-signed with SHA-1
//! evil-root: same DN and key identifier as the root, another RSA-3072 key
//!   (forges CRLs, the certificate "forged", and "alice-twin": alice's
//!   issuer DN, subject and serial number with another key)
//! ```

use std::sync::LazyLock;

use super::pki::{CertSpec, KeyKind, Pki, PkiBuilder, Profile};
use super::time::{self, CRL_FRESH, CRL_FUTURE, CRL_STALE};
use super::trust::{Policy, Trust};

pub const ROOT_DN: &str = "/DC=org/DC=example/CN=Example Root CA";
pub const INTER_DN: &str = "/DC=org/DC=example/OU=CAs/CN=Example Issuing CA";
/// The root's namespace.
pub const ROOT_NS: &str = "/DC=org/DC=example/";
/// The intermediate's namespace.
pub const INTER_NS: &str = "/DC=org/DC=example/OU=People/";

static PKI: LazyLock<Pki> = LazyLock::new(build);

/// The standard PKI (generated on first use, then shared by all tests of
/// the binary).
pub fn pki() -> &'static Pki {
    &PKI
}

/// The normal trust store: root and intermediate, their fresh CRLs, and
/// their namespace policies.
pub fn standard_trust() -> Trust {
    Trust::new(&["root", "inter"], &["root-fresh", "inter-fresh"])
        .policy(Policy::new("root", &[ROOT_NS]))
        .policy(Policy::new("inter", &[INTER_NS]))
}

fn build() -> Pki {
    let mut b = PkiBuilder::new();
    b.keys(&[
        ("root", KeyKind::Rsa3072),
        ("dave", KeyKind::Rsa3072),
        ("alice", KeyKind::Rsa2048),
        ("inter", KeyKind::EcP384),
        ("bob", KeyKind::EcP256),
        ("carol", KeyKind::EcP384),
        ("other-root", KeyKind::EcP256),
        ("expired-root", KeyKind::EcP256),
        ("future-root", KeyKind::EcP256),
        ("expired-inter", KeyKind::EcP256),
        ("future-inter", KeyKind::EcP256),
        ("revoked-inter", KeyKind::EcP256),
        ("sub-inter", KeyKind::EcP256),
        ("nocertsign-inter", KeyKind::EcP256),
        ("nobc-inter", KeyKind::EcP256),
        ("nocrlsign-inter", KeyKind::EcP256),
        ("sha1-root", KeyKind::Rsa2048),
    ]);

    let person = |cn: &str| format!("/DC=org/DC=example/OU=People/CN={cn}");
    let signer = |name: &str, subject: &str, key: &str, issuer: &str| {
        CertSpec::new(name, subject, key, Some(issuer), Profile::Signer)
    };

    // Roots.
    b.cert(CertSpec::new("root", ROOT_DN, "root", None, Profile::Root));
    let root_ski = b_ski(&b, "root");
    // Same DN and key identifier as the root, another key of the same size.
    b.cert(CertSpec::new("evil-root", ROOT_DN, "dave", None, Profile::Root).ski(&root_ski));
    b.cert(CertSpec::new(
        "other-root",
        "/DC=org/DC=example/CN=Other Root CA",
        "other-root",
        None,
        Profile::Root,
    ));
    b.cert(
        CertSpec::new(
            "expired-root",
            "/DC=org/DC=example/CN=Expired Root CA",
            "expired-root",
            None,
            Profile::Root,
        )
        .valid(time::PAST_FROM, time::PAST_UNTIL),
    );
    b.cert(
        CertSpec::new(
            "future-root",
            "/DC=org/DC=example/CN=Future Root CA",
            "future-root",
            None,
            Profile::Root,
        )
        .valid(time::FUTURE_FROM, time::FUTURE_UNTIL),
    );

    // A root whose self-signature uses SHA-1, like many IGTF roots (GridKa-CA).
    b.cert(
        CertSpec::new(
            "sha1-root",
            "/DC=org/DC=example/CN=SHA-1 Root CA",
            "sha1-root",
            None,
            Profile::Root,
        )
        .md("sha1"),
    );

    // Intermediates.
    let inter = |name: &str, cn: &str, key: &str| {
        CertSpec::new(
            name,
            &format!("/DC=org/DC=example/OU=CAs/CN={cn}"),
            key,
            Some("root"),
            Profile::Intermediate,
        )
    };
    b.cert(inter("inter", "Example Issuing CA", "inter"));
    b.cert(
        inter("expired-inter", "Expired Issuing CA", "expired-inter")
            .valid(time::PAST_FROM, time::PAST_UNTIL),
    );
    b.cert(
        inter("future-inter", "Future Issuing CA", "future-inter")
            .valid(time::FUTURE_FROM, time::FUTURE_UNTIL),
    );
    b.cert(inter(
        "revoked-inter",
        "Revoked Issuing CA",
        "revoked-inter",
    ));
    // Below "inter", whose pathlen is 0: a path-length violation.
    b.cert(CertSpec::new(
        "sub-inter",
        "/DC=org/DC=example/OU=CAs/CN=Sub Issuing CA",
        "sub-inter",
        Some("inter"),
        Profile::Intermediate,
    ));
    b.cert(CertSpec::new(
        "nobc-inter",
        "/DC=org/DC=example/OU=CAs/CN=No BasicConstraints CA",
        "nobc-inter",
        Some("root"),
        Profile::IntermediateWithoutBasicConstraints,
    ));
    b.cert(CertSpec::new(
        "nocrlsign-inter",
        "/DC=org/DC=example/OU=CAs/CN=No CRLSign CA",
        "nocrlsign-inter",
        Some("root"),
        Profile::IntermediateWithoutCrlSign,
    ));
    b.cert(CertSpec::new(
        "nocertsign-inter",
        "/DC=org/DC=example/OU=CAs/CN=No CertSign CA",
        "nocertsign-inter",
        Some("root"),
        Profile::IntermediateWithoutCertSign,
    ));

    // Signers issued by the root.
    b.cert(signer(
        "alice",
        "/DC=org/DC=example/OU=People/CN=alice/CN=12345",
        "alice",
        "root",
    ));
    b.cert(signer(
        "bob-ec256",
        "/DC=org/DC=example/OU=People/OU=Physics/CN=bob/CN=23456",
        "bob",
        "root",
    ));
    b.cert(signer("carol-ec384", &person("carol"), "carol", "root"));
    b.cert(signer("dave-rsa3072", &person("dave"), "dave", "root"));
    b.cert(
        signer("expired", &person("expired"), "alice", "root")
            .valid(time::PAST_FROM, time::PAST_UNTIL),
    );
    b.cert(
        signer("not-yet-valid", &person("not yet valid"), "alice", "root")
            .valid(time::FUTURE_FROM, time::FUTURE_UNTIL),
    );
    b.cert(signer("revoked", &person("revoked"), "alice", "root"));
    let with = |name: &str, cn: &str, profile: Profile| {
        CertSpec::new(name, &person(cn), "alice", Some("root"), profile)
    };
    b.cert(with(
        "ku-keyenc",
        "keyencipherment only",
        Profile::KeyEnciphermentOnly,
    ));
    b.cert(with(
        "ku-nonrep",
        "nonrepudiation only",
        Profile::NonRepudiationOnly,
    ));
    b.cert(with(
        "eku-server",
        "serverauth only",
        Profile::EkuServerAuthOnly,
    ));
    b.cert(with("no-ku", "no key usage", Profile::NoKeyUsage));
    b.cert(CertSpec::new(
        "host",
        "/DC=org/DC=example/OU=Hosts/CN=lists.example.org",
        "alice",
        Some("root"),
        Profile::HostCert,
    ));
    b.cert(signer("sha1-cert", &person("sha1"), "alice", "root").md("sha1"));
    b.cert(with(
        "critical-ext",
        "critical extension",
        Profile::CriticalUnknownExtension,
    ));
    b.cert(signer(
        "outsider",
        "/DC=org/DC=other/OU=People/CN=mallory",
        "alice",
        "root",
    ));
    b.cert(signer("eve", &person("eve"), "bob", "alice"));

    // Exotic subjects: the one-line DN must come out as `openssl x509
    // -nameopt compat` prints it (UTF-8 and T61 bytes as \xHH, a multi-valued
    // RDN joined with `+`, emailAddress, title, serialNumber, an unknown
    // attribute as a dotted OID, a comma and a slash inside values).
    b.cert(signer(
        "exotic-dn",
        "/DC=org/DC=example/OU=People/CN=Jürgen Müller+UID=jmueller\
         /emailAddress=j.mueller@example.org/title=Dr./CN=Smith, John\
         /serialNumber=42/vmlisubTestAttr=odd value",
        "alice",
        "root",
    ));
    b.cert(
        signer(
            "t61-dn",
            "/DC=org/DC=example/OU=People/CN=Jürgen Müller/CN=98765",
            "alice",
            "root",
        )
        .string_mask("nombstr"),
    );
    b.cert(signer(
        "slash-dn",
        "/DC=org/DC=example/OU=People/CN=AT\\/CH operations",
        "alice",
        "root",
    ));

    // Signers issued by intermediates.
    b.cert(signer("ivan", &person("ivan"), "alice", "inter"));
    b.cert(signer("ivan-ec", &person("ivan ec"), "carol", "inter"));
    b.cert(signer(
        "ivan-revoked",
        &person("ivan revoked"),
        "alice",
        "inter",
    ));
    b.cert(signer(
        "robot",
        "/DC=org/DC=example/OU=Robots/CN=robot",
        "alice",
        "inter",
    ));
    b.cert(signer(
        "expired-inter-signer",
        &person("under expired ca"),
        "alice",
        "expired-inter",
    ));
    b.cert(signer(
        "future-inter-signer",
        &person("under future ca"),
        "alice",
        "future-inter",
    ));
    b.cert(signer(
        "revoked-inter-signer",
        &person("under revoked ca"),
        "alice",
        "revoked-inter",
    ));

    b.cert(signer(
        "subby",
        &person("below sub ca"),
        "alice",
        "sub-inter",
    ));
    b.cert(signer(
        "nocertsign-signer",
        &person("below no certsign ca"),
        "alice",
        "nocertsign-inter",
    ));

    // Signers under other roots.
    b.cert(signer("mallet", &person("mallet"), "alice", "other-root"));
    b.cert(signer(
        "expired-root-signer",
        &person("under expired root"),
        "alice",
        "expired-root",
    ));
    b.cert(signer(
        "future-root-signer",
        &person("under future root"),
        "alice",
        "future-root",
    ));
    // Claims to be issued by the root (issuer DN and key identifier), but
    // signed by evil-root's key: a forged certificate.
    b.cert(signer("forged", &person("forged"), "alice", "evil-root"));
    // Same issuer DN and serial as alice, another key, signed by evil-root.
    let alice_serial = b.peek().cert("alice").serial.clone();
    b.cert(
        signer(
            "alice-twin",
            "/DC=org/DC=example/OU=People/CN=alice/CN=12345",
            "dave",
            "evil-root",
        )
        .serial(&alice_serial),
    );
    b.cert(signer(
        "nocrlsign-signer",
        &person("below no crlsign ca"),
        "alice",
        "nocrlsign-inter",
    ));
    b.cert(signer(
        "nobc-signer",
        &person("below no basicconstraints ca"),
        "alice",
        "nobc-inter",
    ));
    b.cert(signer(
        "sha1-root-signer",
        &person("under sha1 root"),
        "bob",
        "sha1-root",
    ));

    // CRLs.
    let root_revoked = ["revoked", "revoked-inter"];
    b.crl("root-fresh", "root", CRL_FRESH, &root_revoked, None);
    b.crl("root-stale", "root", CRL_STALE, &root_revoked, None);
    b.crl("root-future", "root", CRL_FUTURE, &root_revoked, None);
    b.crl("root-forged", "root", CRL_FRESH, &[], Some("evil-root"));
    b.crl("inter-fresh", "inter", CRL_FRESH, &["ivan-revoked"], None);
    b.crl("inter-stale", "inter", CRL_STALE, &["ivan-revoked"], None);
    b.crl("other-root-stale", "other-root", CRL_STALE, &[], None);
    // A CRL with a critical extension nobody understands: unusable.
    b.crl_with_extensions(
        "root-critical-ext",
        "root",
        CRL_FRESH,
        &root_revoked,
        None,
        "1.3.6.1.4.1.55555.2 = critical,ASN1:NULL",
    );
    // A CRL that only covers CA certificates (issuingDistributionPoint
    // onlyContainsCACerts): it says nothing about end entities.
    b.crl_with_extensions(
        "root-ca-only",
        "root",
        CRL_FRESH,
        &["revoked-inter"],
        None,
        "issuingDistributionPoint = critical, @idp\n\
         [idp]\n\
         fullname = URI:http://ca.example.org/root-ca-only.crl\n\
         onlyCA = TRUE",
    );
    // The intermediate's CRL listing a serial that, under the root, is alice's.
    b.crl(
        "inter-lists-alice-serial",
        "inter",
        CRL_FRESH,
        &["alice"],
        None,
    );
    for ca in [
        "other-root",
        "expired-root",
        "future-root",
        "expired-inter",
        "future-inter",
        "revoked-inter",
        "alice",
        "sub-inter",
        "nocertsign-inter",
        "nobc-inter",
        "nocrlsign-inter",
        "sha1-root",
    ] {
        b.crl(&format!("{ca}-fresh"), ca, CRL_FRESH, &[], None);
    }
    b.finish()
}

fn b_ski(b: &PkiBuilder, name: &str) -> String {
    b.peek()
        .cert(name)
        .ski
        .clone()
        .unwrap_or_else(|| panic!("{name} has no subjectKeyIdentifier"))
}
