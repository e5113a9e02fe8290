//! A second throwaway PKI for certification paths with intermediates
//! (RFC 5280 section 6): revoked intermediates, pathLenConstraint and
//! self-issued certificates, CA key rollover, nameConstraints, name
//! chaining variants, odd serial numbers and dates, CRLs with an
//! issuingDistributionPoint, unknown extensions. Built lazily, only by the
//! tests that use it (the differential test), so the standard PKI in
//! [`super::fixtures`] stays small.
//!
//! ```text
//! RFC5280 Root CA (r)                                trusted
//! ├── ia, ia-dp (CRLDP into the root's CRL)          plain intermediates
//! ├── rev-i (revoked by r)                           -> rev-i-ee
//! ├── two-1 -> two-2 -> two-ee, two-1 -> two-2r (revoked by two-1) -> two-2r-ee
//! ├── two-1r (revoked by r) -> two-1r-2 -> two-1r-ee
//! ├── pl0 (pathlen 0) -> pl0-ee, -> pl0-x -> pl0-x-ee,
//! │     -> pl0-link (self-issued, new key) -> pl0-link-ee, -> pl0-link-x -> pl0-link-x-ee
//! ├── pl1 (pathlen 1) -> pl1-x -> {pl1-x-ee, pl1-x-y -> pl1-x-y-ee, pl1-x-link -> pl1-x-link-ee},
//! │     -> pl1-link (self-issued) -> pl1-link-x -> {pl1-link-x-ee, pl1-link-x-y -> pl1-link-x-y-ee}
//! ├── nc-* (critical nameConstraints)                -> nc-*-ee signers in and out
//! ├── ch-v1 and re-encodings of its name (same key)  -> ch-ee (issued under ch-v1)
//! ├── ser-i -> ser-neg-ee (serial -0x1234), ser-big-ee (20-byte serial)
//! ├── ser-neg-i (negative serial), ser-big-i (20-byte serial) -> one signer each
//! ├── idp-i -> idp-ee, idp-ee-rev, idp-ee-dp (with CRLDP), idp-ee-dp-rev
//! └── ux-crit-i / ux-non-i (unknown critical / non-critical extension)
//! RFC5280 Anchor pathlen 0 (rpl0, pathlen 0) -> rpl0-i -> rpl0-i-ee
//! Rollover Root CA: ro-root (old key) and rn-root (new key), links
//!   link-on (new key, signed by old) and link-no (old key, signed by new),
//!   ro-ee, ro-ee-rev, ro-i -> ro-i-ee (old key), rn-ee, rn-i -> rn-i-ee (new key)
//! Dates Root CA (dt-root, 1995..2055) -> dt-i (1999..2052) -> dt-ee..., and
//!   dt-i99 (expired 1999), dt-i50 (valid from 2050)
//! ```

use std::sync::LazyLock;

use super::pki::{CertSpec, KeyKind, Pki, PkiBuilder, Profile};
use super::time::{CRL_FRESH, CRL_STALE};

pub const ROOT_DN: &str = "/DC=org/DC=example/CN=RFC5280 Root CA";
pub const ROLLOVER_DN: &str = "/DC=org/DC=example/CN=Rollover Root CA";
/// The URI in `idp-ee-dp`'s cRLDistributionPoints.
pub const IDP_URI: &str = "http://ca.example.org/idp.crl";
/// The URI in `ia-dp`'s cRLDistributionPoints (a root CRL scope).
pub const ROOT_DP_URI: &str = "http://ca.example.org/root.crl";

/// A CA without pathLenConstraint.
pub const CA: &str = "basicConstraints = critical,CA:TRUE\n\
                      keyUsage = critical,keyCertSign,cRLSign\n\
                      authorityKeyIdentifier = keyid:always\n";
const CA_PL0: &str = "basicConstraints = critical,CA:TRUE,pathlen:0\n\
                      keyUsage = critical,keyCertSign,cRLSign\n\
                      authorityKeyIdentifier = keyid:always\n";
const CA_PL1: &str = "basicConstraints = critical,CA:TRUE,pathlen:1\n\
                      keyUsage = critical,keyCertSign,cRLSign\n\
                      authorityKeyIdentifier = keyid:always\n";

/// CRL windows (thisUpdate, nextUpdate).
pub const CRL_1999: (&str, &str) = ("1999-05-01T00:00:00Z", "1999-07-01T00:00:00Z");
pub const CRL_2050: (&str, &str) = ("2049-12-01T00:00:00Z", "2050-07-01T00:00:00Z");
/// Current at [`super::time::AT`], nextUpdate a GeneralizedTime.
pub const CRL_LONG: (&str, &str) = ("2026-01-01T00:00:00Z", "2051-01-01T00:00:00Z");
/// Verification times other than [`super::time::AT`].
pub const AT_1999: &str = "1999-06-01T12:00:00Z";
pub const AT_2050: &str = "2050-01-01T00:00:30Z";
pub const AT_2050_JUNE: &str = "2050-06-01T12:00:00Z";
/// List windows around those times.
pub const LIST_1999: (&str, &str) = ("1999-05-15T00:00:00Z", "1999-06-15T00:00:00Z");
pub const LIST_2050: (&str, &str) = ("2049-12-31T00:00:00Z", "2050-01-15T00:00:00Z");
pub const LIST_2050_JUNE: (&str, &str) = ("2050-05-15T00:00:00Z", "2050-06-15T00:00:00Z");

/// The negative serial of `ser-neg-ee` and `ser-neg-i` (hex, without sign).
pub const NEG_EE: &str = "1234";
pub const NEG_CA: &str = "2345";
const NEG_EE_VALUE: i128 = 0x1234;
const NEG_CA_VALUE: i128 = 0x2345;
/// 20-octet serials (the RFC 5280 maximum), and near misses.
pub const BIG_EE: &str = "7F0102030405060708090A0B0C0D0E0F10111213";
pub const BIG_EE_NEAR: &str = "7F0102030405060708090A0B0C0D0E0F10111214";
pub const BIG_CA: &str = "7E0102030405060708090A0B0C0D0E0F10111213";

static PKI: LazyLock<Pki> = LazyLock::new(build);

pub fn pki() -> &'static Pki {
    &PKI
}

/// Every intermediate below the root whose CRL is `<name>-crl`.
const PLAIN_CAS: &[&str] = &[
    "ia",
    "ia-dp",
    "rev-i",
    "two-1",
    "two-2",
    "two-2r",
    "two-1r",
    "two-1r-2",
    "pl0",
    "pl0-x",
    "pl0-link",
    "pl0-link-x",
    "pl1",
    "pl1-x",
    "pl1-x-y",
    "pl1-x-link",
    "pl1-link",
    "pl1-link-x",
    "pl1-link-x-y",
    "rpl0-i",
    "ser-neg-i",
    "ser-big-i",
    "ux-crit-i",
    "ch-v1",
    "ch-case",
    "ch-space",
    "ch-trim",
    "ch-print",
    "ch-dc-case",
    "ch-other-key",
    "ch-other-name",
];

/// The nameConstraints intermediates: (name, constraint lines, sections).
pub const NC_CAS: &[(&str, &str, &str)] = &[
    (
        "nc-dir-p",
        "nameConstraints = critical,permitted;dirName:nc_people",
        "[nc_people]\n1.DC = org\n2.DC = example\nOU = People",
    ),
    (
        "nc-dir-x",
        "nameConstraints = critical,excluded;dirName:nc_robots",
        "[nc_robots]\n1.DC = org\n2.DC = example\nOU = Robots",
    ),
    (
        "nc-mail-box",
        "nameConstraints = critical,permitted;email:nc-ok@example.org",
        "",
    ),
    (
        "nc-mail-host",
        "nameConstraints = critical,permitted;email:example.org",
        "",
    ),
    (
        "nc-mail-dom",
        "nameConstraints = critical,permitted;email:.example.org",
        "",
    ),
    (
        "nc-mail-x",
        "nameConstraints = critical,excluded;email:.bad.example.org",
        "",
    ),
    (
        "nc-uri-dom",
        "nameConstraints = critical,permitted;URI:.example.org",
        "",
    ),
    (
        "nc-uri-host",
        "nameConstraints = critical,permitted;URI:lists.example.org",
        "",
    ),
    (
        "nc-uri-x",
        "nameConstraints = critical,excluded;URI:.evil.example.org",
        "",
    ),
    (
        "nc-mix",
        "nameConstraints = critical,permitted;dirName:nc_people,permitted;email:example.org",
        "[nc_people]\n1.DC = org\n2.DC = example\nOU = People",
    ),
    (
        "nc-dns",
        "nameConstraints = critical,permitted;DNS:example.org",
        "",
    ),
    (
        "nc-dns-x",
        "nameConstraints = critical,excluded;DNS:evil.example.org",
        "",
    ),
    (
        "nc-ip",
        "nameConstraints = critical,permitted;IP:10.0.0.0/255.0.0.0",
        "",
    ),
];

/// The nameConstraints signers: (name, issuing CA, subject, SAN or "").
pub const NC_SIGNERS: &[(&str, &str, &str, &str)] = &[
    (
        "nc-dir-p-in",
        "nc-dir-p",
        "/DC=org/DC=example/OU=People/CN=nc in",
        "",
    ),
    (
        "nc-dir-p-out",
        "nc-dir-p",
        "/DC=org/DC=example/OU=Robots/CN=nc out",
        "",
    ),
    (
        "nc-dir-p-in-email",
        "nc-dir-p",
        "/DC=org/DC=example/OU=People/CN=nc in/emailAddress=nc-in@example.org",
        "",
    ),
    (
        "nc-dir-x-in",
        "nc-dir-x",
        "/DC=org/DC=example/OU=People/CN=nc in",
        "",
    ),
    (
        "nc-dir-x-out",
        "nc-dir-x",
        "/DC=org/DC=example/OU=Robots/CN=nc out",
        "",
    ),
    (
        "nc-dir-x-deeper",
        "nc-dir-x",
        "/DC=org/DC=example/OU=Robots/OU=Sub/CN=nc deeper",
        "",
    ),
    (
        "nc-mail-box-dn-in",
        "nc-mail-box",
        "/DC=org/DC=example/OU=People/CN=nc mail/emailAddress=nc-ok@example.org",
        "",
    ),
    (
        "nc-mail-box-dn-out",
        "nc-mail-box",
        "/DC=org/DC=example/OU=People/CN=nc mail/emailAddress=other@example.org",
        "",
    ),
    (
        "nc-mail-box-san-in",
        "nc-mail-box",
        "/DC=org/DC=example/OU=People/CN=nc mail san",
        "email:nc-ok@example.org",
    ),
    (
        "nc-mail-box-san-out",
        "nc-mail-box",
        "/DC=org/DC=example/OU=People/CN=nc mail san",
        "email:nc-ok@example.net",
    ),
    (
        "nc-mail-box-none",
        "nc-mail-box",
        "/DC=org/DC=example/OU=People/CN=nc no mail",
        "",
    ),
    (
        "nc-mail-host-dn-in",
        "nc-mail-host",
        "/DC=org/DC=example/OU=People/CN=nc host/emailAddress=a@example.org",
        "",
    ),
    (
        "nc-mail-host-dn-sub",
        "nc-mail-host",
        "/DC=org/DC=example/OU=People/CN=nc host/emailAddress=a@sub.example.org",
        "",
    ),
    (
        "nc-mail-host-san-in",
        "nc-mail-host",
        "/DC=org/DC=example/OU=People/CN=nc host san",
        "email:a@example.org",
    ),
    (
        "nc-mail-host-san-out",
        "nc-mail-host",
        "/DC=org/DC=example/OU=People/CN=nc host san",
        "email:a@example.net",
    ),
    (
        "nc-mail-host-dn-in-san-out",
        "nc-mail-host",
        "/DC=org/DC=example/OU=People/CN=nc host both/emailAddress=a@example.org",
        "email:a@example.net",
    ),
    (
        "nc-mail-dom-dn-sub",
        "nc-mail-dom",
        "/DC=org/DC=example/OU=People/CN=nc dom/emailAddress=a@sub.example.org",
        "",
    ),
    (
        "nc-mail-dom-dn-host",
        "nc-mail-dom",
        "/DC=org/DC=example/OU=People/CN=nc dom/emailAddress=a@example.org",
        "",
    ),
    (
        "nc-mail-dom-san-sub",
        "nc-mail-dom",
        "/DC=org/DC=example/OU=People/CN=nc dom san",
        "email:a@deep.sub.example.org",
    ),
    (
        "nc-mail-dom-san-other",
        "nc-mail-dom",
        "/DC=org/DC=example/OU=People/CN=nc dom san",
        "email:a@sub.example.net",
    ),
    (
        "nc-mail-x-dn-bad",
        "nc-mail-x",
        "/DC=org/DC=example/OU=People/CN=nc x/emailAddress=a@x.bad.example.org",
        "",
    ),
    (
        "nc-mail-x-dn-ok",
        "nc-mail-x",
        "/DC=org/DC=example/OU=People/CN=nc x/emailAddress=a@example.org",
        "",
    ),
    (
        "nc-mail-x-san-bad",
        "nc-mail-x",
        "/DC=org/DC=example/OU=People/CN=nc x san",
        "email:a@x.bad.example.org",
    ),
    (
        "nc-mail-x-dn-ok-san-bad",
        "nc-mail-x",
        "/DC=org/DC=example/OU=People/CN=nc x both/emailAddress=a@example.org",
        "email:a@x.bad.example.org",
    ),
    (
        "nc-uri-dom-in",
        "nc-uri-dom",
        "/DC=org/DC=example/OU=People/CN=nc uri",
        "URI:https://lists.example.org/image.list",
    ),
    (
        "nc-uri-dom-out",
        "nc-uri-dom",
        "/DC=org/DC=example/OU=People/CN=nc uri",
        "URI:https://lists.example.net/image.list",
    ),
    (
        "nc-uri-dom-none",
        "nc-uri-dom",
        "/DC=org/DC=example/OU=People/CN=nc no uri",
        "",
    ),
    (
        "nc-uri-host-in",
        "nc-uri-host",
        "/DC=org/DC=example/OU=People/CN=nc uri host",
        "URI:https://lists.example.org/image.list",
    ),
    (
        "nc-uri-host-out",
        "nc-uri-host",
        "/DC=org/DC=example/OU=People/CN=nc uri host",
        "URI:https://other.example.org/image.list",
    ),
    (
        "nc-uri-x-bad",
        "nc-uri-x",
        "/DC=org/DC=example/OU=People/CN=nc uri x",
        "URI:https://www.evil.example.org/image.list",
    ),
    (
        "nc-uri-x-ok",
        "nc-uri-x",
        "/DC=org/DC=example/OU=People/CN=nc uri x",
        "URI:https://lists.example.org/image.list",
    ),
    (
        "nc-mix-in",
        "nc-mix",
        "/DC=org/DC=example/OU=People/CN=nc mix/emailAddress=a@example.org",
        "",
    ),
    (
        "nc-mix-mail-out",
        "nc-mix",
        "/DC=org/DC=example/OU=People/CN=nc mix/emailAddress=a@example.net",
        "",
    ),
    (
        "nc-mix-dir-out",
        "nc-mix",
        "/DC=org/DC=example/OU=Robots/CN=nc mix/emailAddress=a@example.org",
        "",
    ),
    (
        "nc-dns-ee",
        "nc-dns",
        "/DC=org/DC=example/OU=People/CN=nc dns",
        "",
    ),
    (
        "nc-dns-x-ee",
        "nc-dns-x",
        "/DC=org/DC=example/OU=People/CN=nc dns x",
        "",
    ),
    (
        "nc-ip-ee",
        "nc-ip",
        "/DC=org/DC=example/OU=People/CN=nc ip",
        "",
    ),
    // Below CAs below nc-dir-p (see build()).
    (
        "nc-sub-in-ee",
        "nc-sub-in",
        "/DC=org/DC=example/OU=People/CN=nc below sub in",
        "",
    ),
    (
        "nc-sub-out-ee",
        "nc-sub-out",
        "/DC=org/DC=example/OU=People/CN=nc below sub out",
        "",
    ),
    (
        "nc-link-ee",
        "nc-link",
        "/DC=org/DC=example/OU=People/CN=nc below link",
        "",
    ),
];

/// The name-chaining variants of `ch-v1`'s subject: (name, subject, string_mask).
pub const CHAIN_VARIANTS: &[(&str, &str, &str)] = &[
    (
        "ch-case",
        "/DC=org/DC=example/OU=CAs/CN=CHAIN issuing ca",
        "utf8only",
    ),
    (
        "ch-space",
        "/DC=org/DC=example/OU=CAs/CN=Chain   Issuing  CA",
        "utf8only",
    ),
    (
        "ch-trim",
        "/DC=org/DC=example/OU=CAs/CN=  Chain Issuing CA ",
        "utf8only",
    ),
    (
        "ch-print",
        "/DC=org/DC=example/OU=CAs/CN=Chain Issuing CA",
        "nombstr",
    ),
    (
        "ch-dc-case",
        "/DC=ORG/DC=Example/OU=CAs/CN=Chain Issuing CA",
        "utf8only",
    ),
];
const CHAIN_DN: &str = "/DC=org/DC=example/OU=CAs/CN=Chain Issuing CA";

fn build() -> Pki {
    let mut b = PkiBuilder::new();
    let keys: Vec<String> = [
        "root",
        "ee",
        "ia",
        "ia-dp",
        "rev-i",
        "two-1",
        "two-2",
        "two-2r",
        "two-1r",
        "two-1r-2",
        "pl0",
        "pl0-b",
        "pl0-x",
        "pl0-link-x",
        "pl1",
        "pl1-b",
        "pl1-x",
        "pl1-x-b",
        "pl1-x-y",
        "pl1-link-x",
        "pl1-link-x-y",
        "rpl0",
        "rpl0-i",
        "ro",
        "rn",
        "ro-i",
        "rn-i",
        "chain",
        "chain-other",
        "ser-i",
        "ser-neg-i",
        "ser-big-i",
        "idp-i",
        "ux-crit-i",
        "ux-non-i",
        "dt-root",
        "dt-i",
        "dt-i99",
        "dt-i50",
        "nc-sub-in",
        "nc-sub-out",
        "nc-link",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .chain(NC_CAS.iter().map(|(n, _, _)| (*n).to_owned()))
    .collect();
    let key_specs: Vec<(&str, KeyKind)> =
        keys.iter().map(|k| (k.as_str(), KeyKind::EcP256)).collect();
    b.keys(&key_specs);

    let ca = |name: &str, cn: &str, key: &str, issuer: &str, ext: &str| {
        CertSpec::new(
            name,
            &format!("/DC=org/DC=example/OU=CAs/CN={cn}"),
            key,
            Some(issuer),
            Profile::Intermediate,
        )
        .extensions(ext, true)
    };
    // A CA certificate for `of`'s subject, with another key: self-issued.
    let link = |b: &PkiBuilder, name: &str, of: &str, key: &str, ext: &str| {
        let subject = b.peek().cert(of).subject.clone();
        CertSpec::new(name, &subject, key, Some(of), Profile::Intermediate).extensions(ext, true)
    };
    let person = |cn: &str| format!("/DC=org/DC=example/OU=People/CN={cn}");
    let ee = |name: &str, issuer: &str| {
        CertSpec::new(name, &person(name), "ee", Some(issuer), Profile::Signer)
    };

    // The root.
    b.cert(CertSpec::new("r", ROOT_DN, "root", None, Profile::Root));
    b.cert(ee("r-ee", "r"));

    // Plain and revoked intermediates.
    b.cert(ca("ia", "Plain Issuing CA", "ia", "r", CA));
    b.cert(ee("ia-ee", "ia"));
    b.cert(
        ca("ia-dp", "DP Issuing CA", "ia-dp", "r", CA)
            .ext(&format!("crlDistributionPoints = URI:{ROOT_DP_URI}")),
    );
    b.cert(ee("ia-dp-ee", "ia-dp"));
    b.cert(ca("rev-i", "Revoked Issuing CA", "rev-i", "r", CA));
    b.cert(ee("rev-i-ee", "rev-i"));
    b.cert(ca("two-1", "Level 1 CA", "two-1", "r", CA));
    b.cert(ca("two-2", "Level 2 CA", "two-2", "two-1", CA));
    b.cert(ee("two-ee", "two-2"));
    b.cert(ca("two-2r", "Level 2 Revoked CA", "two-2r", "two-1", CA));
    b.cert(ee("two-2r-ee", "two-2r"));
    b.cert(ca("two-1r", "Level 1 Revoked CA", "two-1r", "r", CA));
    b.cert(ca(
        "two-1r-2",
        "Level 2 Below Revoked CA",
        "two-1r-2",
        "two-1r",
        CA,
    ));
    b.cert(ee("two-1r-ee", "two-1r-2"));

    // pathLenConstraint and self-issued certificates.
    b.cert(ca("pl0", "Pathlen 0 CA", "pl0", "r", CA_PL0));
    b.cert(ee("pl0-ee", "pl0"));
    b.cert(ca("pl0-x", "Below Pathlen 0 CA", "pl0-x", "pl0", CA));
    b.cert(ee("pl0-x-ee", "pl0-x"));
    let l = link(&b, "pl0-link", "pl0", "pl0-b", CA);
    b.cert(l);
    b.cert(ee("pl0-link-ee", "pl0-link"));
    b.cert(ca(
        "pl0-link-x",
        "Below Pathlen 0 Link CA",
        "pl0-link-x",
        "pl0-link",
        CA,
    ));
    b.cert(ee("pl0-link-x-ee", "pl0-link-x"));
    b.cert(ca("pl1", "Pathlen 1 CA", "pl1", "r", CA_PL1));
    b.cert(ca("pl1-x", "Below Pathlen 1 CA", "pl1-x", "pl1", CA));
    b.cert(ee("pl1-x-ee", "pl1-x"));
    b.cert(ca(
        "pl1-x-y",
        "Two Below Pathlen 1 CA",
        "pl1-x-y",
        "pl1-x",
        CA,
    ));
    b.cert(ee("pl1-x-y-ee", "pl1-x-y"));
    let l = link(&b, "pl1-x-link", "pl1-x", "pl1-x-b", CA);
    b.cert(l);
    b.cert(ee("pl1-x-link-ee", "pl1-x-link"));
    let l = link(&b, "pl1-link", "pl1", "pl1-b", CA);
    b.cert(l);
    b.cert(ca(
        "pl1-link-x",
        "Below Pathlen 1 Link CA",
        "pl1-link-x",
        "pl1-link",
        CA,
    ));
    b.cert(ee("pl1-link-x-ee", "pl1-link-x"));
    b.cert(ca(
        "pl1-link-x-y",
        "Two Below Pathlen 1 Link CA",
        "pl1-link-x-y",
        "pl1-link-x",
        CA,
    ));
    b.cert(ee("pl1-link-x-y-ee", "pl1-link-x-y"));
    // A trust anchor with pathlen 0 and an intermediate below it.
    b.cert(
        CertSpec::new(
            "rpl0",
            "/DC=org/DC=example/CN=RFC5280 Anchor Pathlen 0",
            "rpl0",
            None,
            Profile::Root,
        )
        .extensions(
            "basicConstraints = critical,CA:TRUE,pathlen:0\n\
             keyUsage = critical,keyCertSign,cRLSign\n",
            true,
        ),
    );
    b.cert(ca(
        "rpl0-i",
        "Below Anchor Pathlen 0 CA",
        "rpl0-i",
        "rpl0",
        CA,
    ));
    b.cert(ee("rpl0-i-ee", "rpl0-i"));

    // CA key rollover: one subject, two keys, two link certificates.
    b.cert(CertSpec::new(
        "ro-root",
        ROLLOVER_DN,
        "ro",
        None,
        Profile::Root,
    ));
    b.cert(CertSpec::new(
        "rn-root",
        ROLLOVER_DN,
        "rn",
        None,
        Profile::Root,
    ));
    b.cert(
        CertSpec::new("link-on", ROLLOVER_DN, "rn", Some("ro-root"), Profile::Root)
            .extensions(CA, true),
    );
    b.cert(
        CertSpec::new("link-no", ROLLOVER_DN, "ro", Some("rn-root"), Profile::Root)
            .extensions(CA, true),
    );
    b.cert(ee("ro-ee", "ro-root"));
    b.cert(ee("ro-ee-rev", "ro-root"));
    b.cert(ee("rn-ee", "rn-root"));
    b.cert(ca("ro-i", "Below Old Key CA", "ro-i", "ro-root", CA));
    b.cert(ee("ro-i-ee", "ro-i"));
    b.cert(ca("rn-i", "Below New Key CA", "rn-i", "rn-root", CA));
    b.cert(ee("rn-i-ee", "rn-i"));

    // nameConstraints.
    for (name, lines, sections) in NC_CAS {
        let mut spec = ca(name, &format!("NC {name}"), name, "r", CA).ext(lines);
        if !sections.is_empty() {
            spec = spec.sections(sections);
        }
        b.cert(spec);
    }
    // Below nc-dir-p (permitted: OU=People): a CA inside the subtree, a CA
    // outside it, and a self-issued link of nc-dir-p (whose own name is
    // outside the subtree; RFC 5280 6.1.3(b) skips self-issued
    // intermediates).
    b.cert(
        CertSpec::new(
            "nc-sub-in",
            "/DC=org/DC=example/OU=People/CN=NC Sub CA inside",
            "nc-sub-in",
            Some("nc-dir-p"),
            Profile::Intermediate,
        )
        .extensions(CA, true),
    );
    b.cert(ca(
        "nc-sub-out",
        "NC Sub CA outside",
        "nc-sub-out",
        "nc-dir-p",
        CA,
    ));
    let l = link(&b, "nc-link", "nc-dir-p", "nc-link", CA);
    b.cert(l);
    for (name, issuer, subject, san) in NC_SIGNERS {
        let mut spec = CertSpec::new(name, subject, "ee", Some(issuer), Profile::Signer);
        if !san.is_empty() {
            spec = spec.ext(&format!("subjectAltName = {san}"));
        }
        b.cert(spec);
    }

    // Name chaining: the same CA (same key) under differently encoded names.
    b.cert(
        CertSpec::new("ch-v1", CHAIN_DN, "chain", Some("r"), Profile::Intermediate)
            .extensions(CA, true),
    );
    for (name, subject, mask) in CHAIN_VARIANTS {
        b.cert(
            CertSpec::new(name, subject, "chain", Some("r"), Profile::Intermediate)
                .extensions(CA, true)
                .string_mask(mask),
        );
    }
    // Same name as ch-v1, another key; and a really different name.
    b.cert(
        CertSpec::new(
            "ch-other-key",
            CHAIN_DN,
            "chain-other",
            Some("r"),
            Profile::Intermediate,
        )
        .extensions(CA, true),
    );
    b.cert(
        CertSpec::new(
            "ch-other-name",
            "/DC=org/DC=example/OU=CAs/CN=Chain Issuing CA 2",
            "chain",
            Some("r"),
            Profile::Intermediate,
        )
        .extensions(CA, true),
    );
    b.cert(ee("ch-ee", "ch-v1"));
    // Issued under the PrintableString variant.
    b.cert(ee("ch-ee-print", "ch-print"));

    // Serial numbers.
    b.cert(ca("ser-i", "Serial CA", "ser-i", "r", CA));
    b.cert(ee("ser-tmpl-ee", "ser-i"));
    b.reserial("ser-neg-ee", "ser-tmpl-ee", "ser-i", -NEG_EE_VALUE);
    b.cert(ee("ser-big-ee", "ser-i").serial(BIG_EE));
    b.cert(ca("ser-tmpl-i", "Negative Serial CA", "ser-neg-i", "r", CA));
    b.reserial("ser-neg-i", "ser-tmpl-i", "r", -NEG_CA_VALUE);
    b.cert(ee("ser-neg-i-ee", "ser-neg-i"));
    b.cert(ca("ser-big-i", "Big Serial CA", "ser-big-i", "r", CA).serial(BIG_CA));
    b.cert(ee("ser-big-i-ee", "ser-big-i"));

    // issuingDistributionPoint.
    b.cert(ca("idp-i", "IDP CA", "idp-i", "r", CA));
    b.cert(ee("idp-ee", "idp-i"));
    b.cert(ee("idp-ee-rev", "idp-i"));
    b.cert(ee("idp-ee-dp", "idp-i").ext(&format!("crlDistributionPoints = URI:{IDP_URI}")));
    b.cert(ee("idp-ee-dp-rev", "idp-i").ext(&format!("crlDistributionPoints = URI:{IDP_URI}")));

    // Unknown extensions on an intermediate.
    b.cert(
        ca(
            "ux-crit-i",
            "Unknown Critical Extension CA",
            "ux-crit-i",
            "r",
            CA,
        )
        .ext("1.3.6.1.4.1.55555.1.2 = critical,ASN1:UTF8String:vmlisub test"),
    );
    b.cert(ee("ux-crit-ee", "ux-crit-i"));
    b.cert(
        ca("ux-non-i", "Unknown Extension CA", "ux-non-i", "r", CA)
            .ext("1.3.6.1.4.1.55555.1.3 = ASN1:UTF8String:vmlisub test"),
    );
    b.cert(ee("ux-non-ee", "ux-non-i"));

    // Dates: UTCTime 9x and GeneralizedTime (>= 2050).
    // CMS signingTime is not covered: `openssl smime -sign` always writes
    // the wall-clock time (a UTCTime), there is no faketime here, and the
    // attribute is signed, so it cannot be edited afterwards (see
    // Mutation::TamperSignedAttribute). The cases verified at 1999 or 2050
    // therefore carry a signingTime outside the certificates' validity;
    // neither openssl nor vmlisub judges it.
    b.cert(
        CertSpec::new(
            "dt-root",
            "/DC=org/DC=example/CN=Dates Root CA",
            "dt-root",
            None,
            Profile::Root,
        )
        .valid("1995-12-31T00:00:00Z", "2055-01-01T00:00:00Z"),
    );
    let dt_ca = |name: &str, cn: &str, from: &str, until: &str| {
        ca(name, cn, name, "dt-root", CA).valid(from, until)
    };
    b.cert(dt_ca(
        "dt-i",
        "Dates CA",
        "1999-01-01T00:00:00Z",
        "2052-01-01T00:00:00Z",
    ));
    b.cert(dt_ca(
        "dt-i99",
        "Dates CA 1999",
        "1996-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
    ));
    b.cert(dt_ca(
        "dt-i50",
        "Dates CA 2050",
        "2050-01-01T00:00:00Z",
        "2054-01-01T00:00:00Z",
    ));
    let dt_ee =
        |name: &str, issuer: &str, from: &str, until: &str| ee(name, issuer).valid(from, until);
    b.cert(dt_ee(
        "dt-ee",
        "dt-i",
        "2024-01-01T00:00:00Z",
        "2050-06-01T00:00:00Z",
    ));
    b.cert(dt_ee(
        "dt-ee-2049",
        "dt-i",
        "2024-01-01T00:00:00Z",
        "2049-12-31T23:59:59Z",
    ));
    b.cert(dt_ee(
        "dt-ee-2050",
        "dt-i",
        "2050-01-01T00:00:00Z",
        "2051-01-01T00:00:00Z",
    ));
    b.cert(dt_ee(
        "dt-ee-90s",
        "dt-i",
        "1999-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
    ));
    b.cert(dt_ee(
        "dt-i99-ee",
        "dt-i99",
        "1997-01-01T00:00:00Z",
        "2030-01-01T00:00:00Z",
    ));
    b.cert(dt_ee(
        "dt-i50-ee",
        "dt-i50",
        "2024-01-01T00:00:00Z",
        "2053-01-01T00:00:00Z",
    ));

    // CRLs.
    b.crl("r-crl", "r", CRL_FRESH, &["rev-i", "two-1r"], None);
    b.crl("r-crl-stale", "r", CRL_STALE, &["rev-i", "two-1r"], None);
    b.crl("rpl0-crl", "rpl0", CRL_FRESH, &[], None);
    b.crl("two-1-crl", "two-1", CRL_FRESH, &["two-2r"], None);
    b.crl("two-1-crl-stale", "two-1", CRL_STALE, &["two-2r"], None);
    for ca in PLAIN_CAS.iter().filter(|c| **c != "two-1") {
        b.crl(&format!("{ca}-crl"), ca, CRL_FRESH, &[], None);
    }
    for (ca, _, _) in NC_CAS {
        b.crl(&format!("{ca}-crl"), ca, CRL_FRESH, &[], None);
    }
    for ca in ["nc-sub-in", "nc-sub-out", "nc-link"] {
        b.crl(&format!("{ca}-crl"), ca, CRL_FRESH, &[], None);
    }
    // The root's CRL for a path through ia-dp: in the scope of ia-dp's
    // cRLDistributionPoints, not in the scope of the (DP-less) root.
    b.crl_with_extensions(
        "r-crl-dp",
        "r",
        CRL_FRESH,
        &["rev-i", "two-1r"],
        None,
        &format!("issuingDistributionPoint = critical, @idp\n[idp]\nfullname = URI:{ROOT_DP_URI}"),
    );
    // The root's CRL covering only end entities, only CAs.
    b.crl_with_extensions(
        "r-crl-user",
        "r",
        CRL_FRESH,
        &[],
        None,
        "issuingDistributionPoint = critical, @idp\n[idp]\nonlyuser = TRUE",
    );
    b.crl_with_extensions(
        "r-crl-ca",
        "r",
        CRL_FRESH,
        &["rev-i", "two-1r"],
        None,
        "issuingDistributionPoint = critical, @idp\n[idp]\nonlyCA = TRUE",
    );
    b.crl_with_extensions(
        "r-crl-critical-ext",
        "r",
        CRL_FRESH,
        &["rev-i", "two-1r"],
        None,
        "1.3.6.1.4.1.55555.2.1 = critical,ASN1:NULL",
    );
    // Serial-number CRLs of the root.
    let rev = |b: &PkiBuilder, n: &str| b.peek().cert(n).serial.clone();
    let (rev_i, two_1r) = (rev(&b, "rev-i"), rev(&b, "two-1r"));
    for (name, extra) in [
        ("r-crl-ser-pos", NEG_CA.to_owned()),
        ("r-crl-ser-neg", format!("-{NEG_CA}")),
        ("r-crl-ser-big", BIG_CA.to_owned()),
    ] {
        b.crl_serials(name, "r", CRL_FRESH, &[&rev_i, &two_1r, &extra], None, "");
    }
    for (name, serial) in [
        ("ser-i-crl-pos", NEG_EE.to_owned()),
        ("ser-i-crl-neg", format!("-{NEG_EE}")),
        ("ser-i-crl-big", BIG_EE.to_owned()),
        ("ser-i-crl-big-near", BIG_EE_NEAR.to_owned()),
    ] {
        b.crl_serials(name, "ser-i", CRL_FRESH, &[&serial], None, "");
    }
    b.crl("ser-i-crl", "ser-i", CRL_FRESH, &[], None);

    // Rollover CRLs: one per key, under the same issuer name.
    b.crl("ro-crl", "ro-root", CRL_FRESH, &[], None);
    b.crl("ro-crl-rev", "ro-root", CRL_FRESH, &["ro-ee-rev"], None);
    b.crl("rn-crl", "rn-root", CRL_FRESH, &[], None);
    b.crl("ro-i-crl", "ro-i", CRL_FRESH, &[], None);
    b.crl("rn-i-crl", "rn-i", CRL_FRESH, &[], None);

    // issuingDistributionPoint CRLs of idp-i.
    let idp_revoked = ["idp-ee-rev", "idp-ee-dp-rev"];
    b.crl("idp-full", "idp-i", CRL_FRESH, &idp_revoked, None);
    let idp = |b: &mut PkiBuilder, name: &str, lines: &str| {
        b.crl_with_extensions(
            name,
            "idp-i",
            CRL_FRESH,
            &idp_revoked,
            None,
            &format!("issuingDistributionPoint = critical, @idp\n[idp]\n{lines}"),
        );
    };
    idp(&mut b, "idp-user", "onlyuser = TRUE");
    idp(&mut b, "idp-ca", "onlyCA = TRUE");
    idp(&mut b, "idp-dp-match", &format!("fullname = URI:{IDP_URI}"));
    idp(
        &mut b,
        "idp-dp-other",
        "fullname = URI:http://ca.example.org/other.crl",
    );
    idp(
        &mut b,
        "idp-reasons",
        "onlysomereasons = keyCompromise, CACompromise",
    );
    idp(&mut b, "idp-indirect", "indirectCRL = TRUE");
    // A base CRL (crlNumber 10) and a delta CRL on it (crlNumber 11).
    b.crl_number("10");
    b.crl("idp-base", "idp-i", CRL_FRESH, &[], None);
    b.crl_number("11");
    b.crl_with_extensions(
        "idp-delta",
        "idp-i",
        CRL_FRESH,
        &[],
        None,
        "deltaCRL = critical,ASN1:INTEGER:0x10",
    );

    // Unknown CRL extensions.
    b.crl("ux-crit-i-crl", "ux-crit-i", CRL_FRESH, &[], None);
    b.crl("ux-non-i-crl", "ux-non-i", CRL_FRESH, &[], None);
    b.crl_with_extensions(
        "ux-non-i-crl-crit",
        "ux-non-i",
        CRL_FRESH,
        &[],
        None,
        "1.3.6.1.4.1.55555.2.2 = critical,ASN1:UTF8String:vmlisub test",
    );
    b.crl_with_extensions(
        "ux-non-i-crl-non",
        "ux-non-i",
        CRL_FRESH,
        &[],
        None,
        "1.3.6.1.4.1.55555.2.3 = ASN1:UTF8String:vmlisub test",
    );

    // Dates.
    for ca in ["dt-root", "dt-i", "dt-i99", "dt-i50"] {
        b.crl(&format!("{ca}-crl"), ca, CRL_FRESH, &[], None);
        b.crl(&format!("{ca}-crl-1999"), ca, CRL_1999, &[], None);
        b.crl(&format!("{ca}-crl-2050"), ca, CRL_2050, &[], None);
        b.crl(&format!("{ca}-crl-long"), ca, CRL_LONG, &[], None);
    }
    b.finish()
}
