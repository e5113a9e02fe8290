//! Differential test: `vmlisub verify` against `openssl smime -verify`.
//!
//! A corpus of signed messages, good and bad, across every signing shape and
//! failure class, is verified by both. They must agree on accept/reject,
//! except for the deliberate differences declared in [`DELIBERATE`].
//!
//! openssl runs as
//! `openssl smime -verify -CAfile <bundle> -no-CApath -no-CAstore -purpose smimesign -attime <AT>`
//! plus `-crl_check_all` (what IGTF sites configure: every certificate of
//! the chain needs a CRL, not only the end entity) unless the case's vmlisub
//! policy is `ignore` (or the case says otherwise), and `-inform PEM|DER` for
//! those shapes. The bundle holds exactly the CA certificates and CRLs of
//! vmlisub's CA directory.
//!
//! OpenSSL 3 under `-crl_check_all` checks the revocation status of every
//! certificate of the chain *including the self-signed trust anchor*: the
//! root needs a CRL in its own scope (issued by itself; `check_revocation`
//! runs up to `sk_X509_num(chain) - 1`). A root's ordinary complete CRL
//! covers the root too, so this only shows when the root's CRL is scoped
//! (an issuingDistributionPoint that excludes the root). RFC 5280 section 6
//! does not check the trust anchor; vmlisub does as openssl does (under
//! `require`, every CA on the path, the anchor included, needs a current
//! CRL covering it), so the `anchor-crl` cases agree.
//! openssl checks revocation before signatures, validity periods and name
//! constraints, so a case pinned to one of those must have all its CRLs.
//!
//! `VMLISUB_DIFF_VERBOSE=1 cargo test --test differential -- --nocapture`
//! prints every case's verdicts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use support::cli::CrlPolicy;
use support::fixtures::{INTER_NS, ROOT_DN, ROOT_NS, pki};
use support::list::ListDoc;
use support::rfc5280;
use support::scenario::Case;
use support::smime::{self, Digest, Mutation, Shape};
use support::time::{LIST_EXPIRED, LIST_FUTURE};
use support::trust::{Naming, Policy, PolicyFormat, Trust};

/// One declared, deliberate difference between vmlisub and openssl.
struct Deliberate {
    /// The case class it applies to.
    class: &'static str,
    /// vmlisub's verdict: `accept` or the reason code.
    vmlisub: &'static str,
    /// openssl's verdict: `accept` or `reject`.
    openssl: &'static str,
    why: &'static str,
}

/// Every deliberate difference. A case of one of these classes must show
/// exactly this difference; any other difference is a disagreement.
const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        class: "namespace-violation",
        vmlisub: "namespace-violation",
        openssl: "accept",
        why: "openssl ignores IGTF .namespaces/.signing_policy files; vmlisub enforces them (spec 3.4)",
    },
    Deliberate {
        class: "list-malformed",
        vmlisub: "malformed-list",
        openssl: "accept",
        why: "openssl does not parse the signed content; vmlisub requires a valid image list",
    },
    Deliberate {
        class: "list-dn-mismatch",
        vmlisub: "signer-dn-mismatch",
        openssl: "accept",
        why: "hv:endorser hv:dn/hv:ca must name the signer (spec 3.5); openssl does not read the list",
    },
    Deliberate {
        class: "list-expired",
        vmlisub: "list-expired",
        openssl: "accept",
        why: "dc:date:expires passed at --at; openssl does not read the list",
    },
    Deliberate {
        class: "list-created-in-future",
        vmlisub: "created-in-future",
        openssl: "accept",
        why: "dc:date:created after --at; openssl does not read the list",
    },
    Deliberate {
        class: "endorser-not-authorised",
        vmlisub: "endorser-not-authorised",
        openssl: "accept",
        why: "--endorser pins the (subject, issuer) pair; openssl has no such notion",
    },
    Deliberate {
        class: "sha1-without-opt-in",
        vmlisub: "legacy-algorithm",
        openssl: "accept",
        why: "vmlisub accepts SHA-1 (CMS digest or certificate signature) only with --allow-sha1",
    },
    Deliberate {
        class: "multiple-signers",
        vmlisub: "multiple-signers",
        openssl: "accept",
        why: "openssl accepts when every signer verifies; a list has exactly one endorser",
    },
    Deliberate {
        class: "crl-missing-if-present",
        vmlisub: "accept",
        openssl: "reject",
        why: "--crl-policy if-present tolerates a missing CRL (none at all, or none in scope: partial, delta, indirect, other distribution point); -crl_check_all requires one",
    },
    Deliberate {
        class: "crl-ignore-vs-crl-check",
        vmlisub: "accept",
        openssl: "reject",
        why: "--crl-policy ignore skips revocation; openssl ran with -crl_check_all (missing/stale/forged CRL, revoked signer)",
    },
    Deliberate {
        class: "crl-by-other-ca-key",
        vmlisub: "accept",
        openssl: "reject",
        why: "after a key rollover vmlisub takes a CRL signed by another trusted certificate of the same CA (RFC 5280 6.3.3 (f)); openssl without -extended_crl only takes the key that issued the certificate",
    },
    Deliberate {
        class: "delta-crl-as-complete",
        vmlisub: "crl-missing",
        openssl: "accept",
        why: "a delta CRL alone is no complete CRL (RFC 5280 5.2.4); openssl without -use_deltas takes it for one",
    },
    Deliberate {
        class: "delta-crl-hides-revocation",
        vmlisub: "certificate-revoked",
        openssl: "accept",
        why: "openssl without -use_deltas takes the (empty) delta CRL for the complete CRL when it comes first and misses the revocation in the complete CRL next to it",
    },
    Deliberate {
        class: "name-constraints-unsupported-form",
        vmlisub: "certificate-invalid",
        openssl: "accept",
        why: "a critical nameConstraints with a dNSName/iPAddress subtree: vmlisub checks directoryName, rfc822Name and URI only and fails closed on any other form; openssl checks them (and finds no such names in the signer)",
    },
];

/// What openssl's stderr must mention when it rejects a case of this class
/// (any one of the alternatives), so that every bad case is known to fail
/// for the intended reason. Classes not listed are not pinned.
fn openssl_reason(class: &str) -> &'static [&'static str] {
    match class {
        "digest-mismatch" => &["digest failure"],
        "signature-invalid" => &["PKCS7_signatureVerify:signature failure"],
        "malformed-smime" => &["SMIME_read_ASN1"],
        "malformed-cms" => &["asn1"],
        "untrusted-signer" => &[
            "unable to get local issuer certificate",
            "self-signed certificate in certificate chain",
        ],
        "certificate-invalid" => &[
            "invalid CA certificate",
            "path length constraint exceeded",
            "unhandled critical extension",
            "permitted subtree violation",
            "excluded subtree violation",
        ],
        "unsupported-signature" => &["signature failure"],
        "signer-cert-absent" => &["signer certificate not found"],
        "content-twice" => &["digest failure"],
        "forged-certificate" => &[
            "certificate signature failure",
            "self-signed certificate in certificate chain",
        ],
        "certificate-expired" => &["certificate has expired"],
        "certificate-not-yet-valid" => &["certificate is not yet valid"],
        "certificate-revoked" => &["certificate revoked"],
        "crl-missing" => &["unable to get certificate CRL"],
        // No CRL in scope: openssl says "different CRL scope" when the best
        // CRL it has is out of scope, and nothing more specific for CRLs it
        // cannot use at all (partial, indirect, delta).
        "crl-out-of-scope" | "crl-missing-if-present" | "anchor-crl" | "crl-by-other-ca-key" => {
            &["unable to get certificate CRL", "different CRL scope"]
        }
        "crl-critical-extension" => &["unhandled critical CRL extension"],
        "crl-stale" => &["CRL has expired", "CRL is not yet valid"],
        "crl-invalid" => &[
            "CRL signature failure",
            "key usage does not include CRL signing",
        ],
        "crl-unusable" => &[
            "unhandled critical CRL extension",
            "unable to get certificate CRL",
            "different CRL scope",
        ],
        "twin-certificate" => &["signature failure"],
        "key-usage" => &["unsuitable certificate purpose"],
        _ => &[],
    }
}

/// What vmlisub is expected to say (for reporting; the assertion is on
/// accept/reject agreement with openssl).
#[derive(Clone, Debug)]
enum Expect {
    Accept,
    Reject(&'static str),
    /// Rejected; the contract does not pin the reason code.
    RejectAny,
}

struct Entry {
    class: &'static str,
    case: Case,
    expect: Expect,
}

fn entry(class: &'static str, case: Case, expect: Expect) -> Entry {
    Entry {
        class,
        case,
        expect,
    }
}

fn good(case: Case) -> Entry {
    entry("good", case, Expect::Accept)
}

fn bad(class: &'static str, code: &'static str, case: Case) -> Entry {
    entry(class, case, Expect::Reject(code))
}

/// The corpus.
fn corpus() -> Vec<Entry> {
    let pki = pki();
    let mut c = Vec::new();

    // --- Good: every shape, RSA, EC and intermediate signers. ---
    for shape in Shape::ALL {
        let n = shape.name();
        c.push(good(
            Case::new(&format!("good/alice/{n}"), "alice").shape(shape),
        ));
        c.push(good(
            Case::new(&format!("good/bob-ec256/{n}"), "bob-ec256").shape(shape),
        ));
        // Intermediate only inside the CMS, not in the CA directory.
        c.push(good(
            Case::new(&format!("good/ivan-via-cms/{n}"), "ivan")
                .shape(shape)
                .embed("inter")
                .trust(
                    Trust::new(&["root"], &["root-fresh", "inter-fresh"])
                        .policy(Policy::new("root", &[ROOT_NS])),
                ),
        ));
    }
    // Digests and key types.
    for digest in [Digest::Sha384, Digest::Sha512] {
        let d = digest.md();
        for signer in ["alice", "carol-ec384", "dave-rsa3072"] {
            c.push(good(
                Case::new(&format!("good/{signer}/{d}"), signer).digest(digest),
            ));
        }
        c.push(good(
            Case::new(&format!("good/ivan-ec/{d}/opaque-stream"), "ivan-ec")
                .digest(digest)
                .shape(Shape::OpaqueStream),
        ));
    }
    c.push(good(
        Case::new("good/carol-ec384/der-stream", "carol-ec384").shape(Shape::DerStream),
    ));
    c.push(good(
        Case::new("good/dave-rsa3072/pem", "dave-rsa3072").shape(Shape::Pem),
    ));
    c.push(good(Case::new("good/ivan/intermediate-in-dir", "ivan")));
    c.push(good(
        Case::new("good/ivan/intermediate-in-both", "ivan").embed("inter"),
    ));
    c.push(good(
        Case::new("good/ivan-ec/intermediate-in-dir/text", "ivan-ec").shape(Shape::DetachedText),
    ));
    c.push(good(Case::new("good/nonrepudiation-only", "ku-nonrep")));
    c.push(good(Case::new("good/no-key-usage", "no-ku")));
    for signer in ["exotic-dn", "t61-dn", "slash-dn"] {
        c.push(good(Case::new(&format!("good/{signer}"), signer)));
    }
    c.push(good(
        Case::new("good/igtf-extras-and-both-policy-formats", "ivan")
            .edit_trust(|t| t.both_policy_formats().igtf_extras()),
    ));
    c.push(good(
        Case::new("good/junk-files-in-ca-dir", "alice").edit_trust(Trust::junk),
    ));
    c.push(good(
        Case::new("good/unrelated-stale-crl", "alice").edit_trust(|mut t| {
            t.cas.push("other-root".into());
            t.crls.push("other-root-stale".into());
            t
        }),
    ));
    // Under -crl_check_all a revoked intermediate is refused (it used to
    // pass under -crl_check, which looks at the end entity only).
    c.push(bad(
        "certificate-revoked",
        "certificate-revoked",
        Case::new("bad/revoked-intermediate", "revoked-inter-signer")
            .embed("revoked-inter")
            .edit_trust(|t| {
                let mut t = t;
                t.crls.push("revoked-inter-fresh".into());
                t
            }),
    ));
    c.push(good(
        Case::new("good/wrong-hash-names", "alice").edit_trust(|t| t.naming(Naming::WrongHash)),
    ));
    c.push(good(
        Case::new("good/pem-names", "ivan").edit_trust(|t| t.naming(Naming::Pem)),
    ));
    c.push(good(
        Case::new("good/signing-policy-format", "alice").trust(
            Trust::new(&["root", "inter"], &["root-fresh", "inter-fresh"])
                .policy(Policy::new("root", &[ROOT_NS]).format(PolicyFormat::SigningPolicy))
                .policy(Policy::new("inter", &[INTER_NS]).format(PolicyFormat::SigningPolicy)),
        ),
    ));
    c.push(good(
        Case::new("good/outsider-without-policies", "outsider").edit_trust(Trust::without_policies),
    ));
    c.push(good(
        Case::new("good/legacy-list-format", "alice").list(ListDoc::legacy),
    ));
    let alice = pki.cert("alice");
    c.push(good(
        Case::new("good/endorser-matches", "alice")
            .endorser(
                &pki.cert("bob-ec256").subject,
                &pki.cert("bob-ec256").issuer,
            )
            .endorser(&alice.subject, &alice.issuer),
    ));
    c.push(good(
        Case::new("good/sha1-digest-allowed", "alice")
            .digest(Digest::Sha1)
            .allow_sha1(),
    ));
    c.push(good(
        Case::new("good/sha1-digest-allowed/opaque", "alice")
            .digest(Digest::Sha1)
            .shape(Shape::Opaque)
            .allow_sha1(),
    ));
    c.push(good(
        Case::new("good/sha1-cert-allowed", "sha1-cert").allow_sha1(),
    ));
    c.push(good(
        Case::new("good/crl-if-present-fresh", "alice").crl_policy(CrlPolicy::IfPresent),
    ));
    c.push(good(
        Case::new("good/crl-missing-ignore", "alice")
            .crl_policy(CrlPolicy::Ignore)
            .edit_trust(Trust::without_crls),
    ));
    c.push(good(
        Case::new("good/crl-stale-ignore", "alice")
            .crl_policy(CrlPolicy::Ignore)
            .trust(Trust::new(&["root", "inter"], &["root-stale"])),
    ));
    c.push(good(
        Case::new("good/crl-forged-ignore", "alice")
            .crl_policy(CrlPolicy::Ignore)
            .trust(Trust::new(&["root", "inter"], &["root-forged"])),
    ));
    c.push(good(
        Case::new("good/revoked-ignore", "revoked").crl_policy(CrlPolicy::Ignore),
    ));

    // --- Harmless MIME and encoding variations. ---
    let edits: [(&'static str, smime::Rewrite); 5] = [
        ("folded-header", smime::fold_header),
        ("lowercase-header-names", smime::lowercase_header_names),
        ("unquoted-boundary", smime::unquote_boundary),
        ("epilogue", smime::add_epilogue),
        ("micalg-not-matching-digest", smime::wrong_micalg),
    ];
    for (n, edit) in edits {
        c.push(good(
            Case::new(&format!("good/mime/{n}"), "alice").mutation(Mutation::Edit(n, edit)),
        ));
    }
    for shape in [Shape::Detached, Shape::Opaque, Shape::Pem] {
        c.push(good(
            Case::new(&format!("good/base64-76/{}", shape.name()), "alice")
                .shape(shape)
                .mutation(Mutation::RewrapBase64(76)),
        ));
    }
    c.push(good(
        Case::new("good/signer-cert-not-first-in-cms", "ivan")
            .nocerts()
            .embed("inter")
            .embed("ivan"),
    ));
    c.push(good(
        Case::new("good/no-signed-attributes", "alice").sign_arg("-noattr"),
    ));
    c.push(good(
        Case::new("good/no-smime-capabilities", "bob-ec256").sign_arg("-nosmimecap"),
    ));
    c.push(good(
        Case::new("good/unrelated-certs-in-cms", "ivan")
            .embed("mallet")
            .embed("other-root")
            .embed("inter")
            .embed("bob-ec256"),
    ));
    for shape in [
        Shape::Detached,
        Shape::DetachedLf,
        Shape::OpaqueStream,
        Shape::DerStream,
        Shape::Pem,
    ] {
        c.push(good(
            Case::new(&format!("good/large-list/{}", shape.name()), "bob-ec256")
                .shape(shape)
                .list(|d| d.images(400)),
        ));
    }
    let doc = ListDoc::for_signer(alice);
    let text = doc.to_bytes();
    c.push(good(
        Case::new("good/no-final-newline", "alice").raw_content(text.strip_suffix(b"\n").unwrap()),
    ));
    c.push(good(
        Case::new("good/trailing-blank-lines", "alice")
            .raw_content(&[text.as_slice(), b"\n\n\n"].concat()),
    ));
    c.push(good(
        Case::new("good/unicode-and-unknown-keys", "alice")
            .shape(Shape::DetachedTextLf)
            .list(|d| d.extra("x:note", "Grüße aus Karlsruhe \u{2603} \u{1f680}".into())),
    ));
    for digest in [Digest::Sha256, Digest::Sha384, Digest::Sha512] {
        c.push(good(
            Case::new(&format!("good/bob-ec256/{}", digest.md()), "bob-ec256").digest(digest),
        ));
    }
    c.push(good(Case::new("good/carol-ec384/sha256", "carol-ec384")));
    c.push(good(
        Case::new("good/sha1-self-signed-root", "sha1-root-signer")
            .trust(Trust::new(&["sha1-root"], &["sha1-root-fresh"])),
    ));
    c.push(good(
        Case::new("good/other-ca-crl-lists-same-serial", "alice").trust(Trust::new(
            &["root", "inter"],
            &["root-fresh", "inter-lists-alice-serial"],
        )),
    ));
    c.push(good(Case::new("good/stale-and-fresh-crl", "alice").trust(
        Trust::new(&["root", "inter"], &["root-stale", "root-fresh"]),
    )));

    // --- Content and signature damage. ---
    c.push(bad(
        "malformed-smime",
        "malformed-smime",
        Case::new("bad/mime/third-part", "alice")
            .mutation(Mutation::Edit("third-part", smime::add_third_part)),
    ));
    c.push(bad(
        "malformed-smime",
        "malformed-smime",
        Case::new("bad/mime/swapped-parts", "alice")
            .mutation(Mutation::Edit("swapped-parts", smime::swap_parts)),
    ));
    c.push(bad(
        "digest-mismatch",
        "digest-mismatch",
        Case::new("bad/tampered/junk-in-ca-dir", "alice")
            .mutation(Mutation::TamperContent)
            .edit_trust(|t| t.igtf_extras().junk()),
    ));
    c.push(bad(
        "digest-mismatch",
        "digest-mismatch",
        Case::new("bad/tampered-inner-header", "alice")
            .shape(Shape::DetachedText)
            .mutation(Mutation::Edit("inner-header", smime::tamper_inner_header)),
    ));
    c.push(bad(
        "digest-mismatch",
        "digest-mismatch",
        Case::new("bad/tampered/large/DerStream", "alice")
            .shape(Shape::DerStream)
            .list(|d| d.images(400))
            .mutation(Mutation::TamperContent),
    ));
    for (signer, shape) in [("alice", Shape::Detached), ("bob-ec256", Shape::DerStream)] {
        c.push(bad(
            "signature-invalid",
            "signature-invalid",
            Case::new(&format!("bad/tampered-signing-time/{signer}"), signer)
                .shape(shape)
                .mutation(Mutation::TamperSignedAttribute),
        ));
    }
    c.push(bad(
        "malformed-smime",
        "malformed-smime",
        Case::new("bad/mime/third-part-in-the-middle", "alice")
            .mutation(Mutation::Edit("middle-part", smime::add_middle_part)),
    ));
    for shape in [Shape::Detached, Shape::DetachedLf] {
        c.push(entry(
            "content-twice",
            Case::new(
                &format!("bad/embedded-content-in-signature-part/{}", shape.name()),
                "alice",
            )
            .shape(shape)
            .mutation(Mutation::EmbeddedContentInSignaturePart),
            Expect::RejectAny,
        ));
    }
    c.push(entry(
        "signer-cert-absent",
        Case::new("bad/only-another-cert-embedded", "alice")
            .nocerts()
            .embed("bob-ec256"),
        Expect::RejectAny,
    ));
    c.push(entry(
        "unsupported-signature",
        Case::new("bad/rsa-pss", "alice")
            .shape(Shape::CmsDetached)
            .rsa_pss(),
        Expect::RejectAny,
    ));
    for shape in [
        Shape::Detached,
        Shape::DetachedLf,
        Shape::DetachedText,
        Shape::CmsDetached,
        Shape::Opaque,
        Shape::OpaqueStream,
        Shape::Pem,
        Shape::Der,
        Shape::DerStream,
    ] {
        let n = shape.name();
        c.push(bad(
            "digest-mismatch",
            "digest-mismatch",
            Case::new(&format!("bad/tampered/{n}"), "alice")
                .shape(shape)
                .mutation(Mutation::TamperContent),
        ));
    }
    c.push(bad(
        "digest-mismatch",
        "digest-mismatch",
        Case::new("bad/tampered/ec/sha384", "carol-ec384")
            .digest(Digest::Sha384)
            .mutation(Mutation::TamperContent),
    ));
    for shape in [
        Shape::Detached,
        Shape::Opaque,
        Shape::Pem,
        Shape::Der,
        Shape::DerStream,
    ] {
        let n = shape.name();
        c.push(bad(
            "signature-invalid",
            "signature-invalid",
            Case::new(&format!("bad/flipped-signature/{n}"), "alice")
                .shape(shape)
                .mutation(Mutation::FlipSignature),
        ));
    }
    for signer in ["bob-ec256", "carol-ec384", "dave-rsa3072"] {
        c.push(bad(
            "signature-invalid",
            "signature-invalid",
            Case::new(&format!("bad/flipped-signature/{signer}"), signer)
                .mutation(Mutation::FlipSignature),
        ));
    }
    for shape in [Shape::Detached, Shape::Opaque, Shape::Pem, Shape::Der] {
        let n = shape.name();
        c.push(bad(
            "malformed-cms",
            "malformed-cms",
            Case::new(&format!("bad/truncated-cms/{n}"), "alice")
                .shape(shape)
                .mutation(Mutation::TruncateCms),
        ));
    }
    for (n, garbage) in garbage_messages() {
        c.push(bad(
            "malformed-smime",
            "malformed-smime",
            Case::new(&format!("bad/garbage/{n}"), "alice").mutation(Mutation::Replace(garbage)),
        ));
    }

    // --- Chains and validity. ---
    c.push(bad(
        "untrusted-signer",
        "untrusted-signer",
        Case::new("bad/unknown-ca", "mallet"),
    ));
    c.push(bad(
        "untrusted-signer",
        "untrusted-signer",
        Case::new("bad/unknown-ca/with-root-in-cms", "mallet")
            .embed("other-root")
            .shape(Shape::Der),
    ));
    c.push(bad(
        "untrusted-signer",
        "untrusted-signer",
        Case::new("bad/intermediate-nowhere", "ivan")
            .trust(Trust::new(&["root"], &["root-fresh", "inter-fresh"])),
    ));
    c.push(bad(
        "certificate-invalid",
        "certificate-invalid",
        Case::new("bad/end-entity-as-ca", "eve").embed("alice"),
    ));
    c.push(bad(
        "certificate-invalid",
        "certificate-invalid",
        Case::new("bad/path-length-exceeded", "subby")
            .embed("sub-inter")
            .embed("inter")
            .edit_trust(|mut t| {
                t.crls.push("sub-inter-fresh".into());
                t
            }),
    ));
    c.push(bad(
        "certificate-invalid",
        "certificate-invalid",
        Case::new("bad/ca-without-keycertsign", "nocertsign-signer")
            .embed("nocertsign-inter")
            .edit_trust(|mut t| {
                t.crls.push("nocertsign-inter-fresh".into());
                t
            }),
    ));
    c.push(bad(
        "certificate-invalid",
        "certificate-invalid",
        Case::new("bad/unknown-critical-extension", "critical-ext"),
    ));
    c.push(bad(
        "certificate-invalid",
        "certificate-invalid",
        Case::new("bad/ca-without-basic-constraints", "nobc-signer")
            .embed("nobc-inter")
            .edit_trust(|mut t| {
                t.crls.push("nobc-inter-fresh".into());
                t
            }),
    ));
    c.push(entry(
        "forged-certificate",
        Case::new("bad/forged-signer-certificate/evil-root-in-cms", "forged").embed("evil-root"),
        Expect::RejectAny,
    ));
    for (n, order) in [
        ("twin-first", ["alice-twin", "alice"]),
        ("alice-first", ["alice", "alice-twin"]),
    ] {
        c.push(entry(
            "twin-certificate",
            Case::new(&format!("bad/twin-certificate/{n}"), "alice-twin")
                .nocerts()
                .embed(order[0])
                .embed(order[1]),
            Expect::RejectAny,
        ));
    }
    c.push(entry(
        "forged-certificate",
        Case::new("bad/forged-signer-certificate", "forged"),
        Expect::RejectAny,
    ));
    c.push(entry(
        "signer-cert-absent",
        Case::new("bad/nocerts", "alice").nocerts(),
        Expect::RejectAny,
    ));
    for shape in [Shape::Detached, Shape::Der] {
        let n = shape.name();
        c.push(bad(
            "certificate-expired",
            "certificate-expired",
            Case::new(&format!("bad/expired-signer/{n}"), "expired").shape(shape),
        ));
        c.push(bad(
            "certificate-not-yet-valid",
            "certificate-not-yet-valid",
            Case::new(&format!("bad/not-yet-valid-signer/{n}"), "not-yet-valid").shape(shape),
        ));
    }
    c.push(bad(
        "certificate-expired",
        "certificate-expired",
        Case::new("bad/expired-root", "expired-root-signer")
            .trust(Trust::new(&["expired-root"], &["expired-root-fresh"])),
    ));
    c.push(bad(
        "certificate-not-yet-valid",
        "certificate-not-yet-valid",
        Case::new("bad/future-root", "future-root-signer")
            .trust(Trust::new(&["future-root"], &["future-root-fresh"])),
    ));
    c.push(bad(
        "certificate-expired",
        "certificate-expired",
        Case::new("bad/expired-intermediate/in-cms", "expired-inter-signer")
            .embed("expired-inter")
            .edit_trust(|mut t| {
                t.crls.push("expired-inter-fresh".into());
                t
            }),
    ));
    c.push(bad(
        "certificate-expired",
        "certificate-expired",
        Case::new("bad/expired-intermediate/in-dir", "expired-inter-signer").edit_trust(|mut t| {
            t.cas.push("expired-inter".into());
            t.crls.push("expired-inter-fresh".into());
            t
        }),
    ));
    c.push(bad(
        "certificate-not-yet-valid",
        "certificate-not-yet-valid",
        Case::new("bad/future-intermediate", "future-inter-signer")
            .embed("future-inter")
            .edit_trust(|mut t| {
                t.crls.push("future-inter-fresh".into());
                t
            }),
    ));

    // --- Revocation under each CRL policy. ---
    for shape in [Shape::Detached, Shape::OpaqueStream] {
        c.push(bad(
            "certificate-revoked",
            "certificate-revoked",
            Case::new(&format!("bad/revoked/{}", shape.name()), "revoked").shape(shape),
        ));
    }
    c.push(bad(
        "certificate-revoked",
        "certificate-revoked",
        Case::new("bad/revoked-by-intermediate", "ivan-revoked"),
    ));
    c.push(bad(
        "certificate-revoked",
        "certificate-revoked",
        Case::new("bad/revoked/if-present", "revoked").crl_policy(CrlPolicy::IfPresent),
    ));
    c.push(entry(
        "crl-ignore-vs-crl-check",
        Case::new("diff/revoked/ignore+crl_check", "revoked")
            .crl_policy(CrlPolicy::Ignore)
            .openssl_crl_check(true),
        Expect::Accept,
    ));
    let only_root_crl =
        |crl: &str| Trust::new(&["root", "inter"], &[crl]).policy(Policy::new("root", &[ROOT_NS]));
    c.push(bad(
        "crl-missing",
        "crl-missing",
        Case::new("bad/crl-missing/require", "alice").edit_trust(Trust::without_crls),
    ));
    c.push(bad(
        "crl-missing",
        "crl-missing",
        Case::new("bad/crl-missing/intermediate", "ivan").trust(only_root_crl("root-fresh")),
    ));
    c.push(entry(
        "crl-missing-if-present",
        Case::new("diff/crl-missing/if-present", "alice")
            .crl_policy(CrlPolicy::IfPresent)
            .edit_trust(Trust::without_crls),
        Expect::Accept,
    ));
    c.push(entry(
        "crl-missing-if-present",
        Case::new("diff/crl-missing/if-present/intermediate", "ivan")
            .crl_policy(CrlPolicy::IfPresent)
            .trust(only_root_crl("root-fresh")),
        Expect::Accept,
    ));
    c.push(entry(
        "crl-ignore-vs-crl-check",
        Case::new("diff/crl-missing/ignore+crl_check", "alice")
            .crl_policy(CrlPolicy::Ignore)
            .openssl_crl_check(true)
            .edit_trust(Trust::without_crls),
        Expect::Accept,
    ));
    for (crl, class, code) in [
        ("root-stale", "crl-stale", "crl-stale"),
        ("root-future", "crl-stale", "crl-stale"),
        ("root-forged", "crl-invalid", "crl-invalid"),
    ] {
        for policy in [CrlPolicy::Require, CrlPolicy::IfPresent] {
            c.push(bad(
                class,
                code,
                Case::new(&format!("bad/{crl}/{}", policy.arg()), "alice")
                    .crl_policy(policy)
                    .trust(only_root_crl(crl)),
            ));
        }
        c.push(entry(
            "crl-ignore-vs-crl-check",
            Case::new(&format!("diff/{crl}/ignore+crl_check"), "alice")
                .crl_policy(CrlPolicy::Ignore)
                .openssl_crl_check(true)
                .trust(only_root_crl(crl)),
            Expect::Accept,
        ));
    }
    c.push(bad(
        "crl-invalid",
        "crl-invalid",
        Case::new("bad/crl-issuer-without-crlsign", "nocrlsign-signer")
            .embed("nocrlsign-inter")
            .edit_trust(|mut t| {
                t.crls.push("nocrlsign-inter-fresh".into());
                t
            }),
    ));
    for crl in ["root-critical-ext", "root-ca-only"] {
        c.push(entry(
            "crl-unusable",
            Case::new(&format!("bad/{crl}"), "alice").trust(only_root_crl(crl)),
            Expect::RejectAny,
        ));
    }
    c.push(bad(
        "crl-stale",
        "crl-stale",
        Case::new("bad/inter-stale", "ivan").trust(Trust::new(
            &["root", "inter"],
            &["root-fresh", "inter-stale"],
        )),
    ));

    // --- Namespaces (deliberate). ---
    c.push(entry(
        "namespace-violation",
        Case::new("diff/namespace/root", "outsider"),
        Expect::Reject("namespace-violation"),
    ));
    c.push(entry(
        "namespace-violation",
        Case::new("diff/namespace/intermediate", "robot"),
        Expect::Reject("namespace-violation"),
    ));
    c.push(entry(
        "namespace-violation",
        Case::new("diff/namespace/both-formats+extras+junk", "outsider")
            .edit_trust(|t| t.both_policy_formats().igtf_extras().junk()),
        Expect::Reject("namespace-violation"),
    ));
    c.push(entry(
        "namespace-violation",
        Case::new("diff/namespace/signing-policy", "outsider").trust(
            Trust::new(&["root"], &["root-fresh"])
                .policy(Policy::new("root", &[ROOT_NS]).format(PolicyFormat::SigningPolicy)),
        ),
        Expect::Reject("namespace-violation"),
    ));

    // --- Key usage. ---
    for signer in ["ku-keyenc", "eku-server", "host"] {
        c.push(bad(
            "key-usage",
            "key-usage",
            Case::new(&format!("bad/key-usage/{signer}"), signer),
        ));
    }

    // --- SHA-1 without opt-in (deliberate). ---
    for shape in [Shape::Detached, Shape::Opaque, Shape::Der] {
        c.push(entry(
            "sha1-without-opt-in",
            Case::new(&format!("diff/sha1-digest/{}", shape.name()), "alice")
                .digest(Digest::Sha1)
                .shape(shape),
            Expect::Reject("legacy-algorithm"),
        ));
    }
    c.push(entry(
        "sha1-without-opt-in",
        Case::new("diff/sha1-cert", "sha1-cert"),
        Expect::Reject("legacy-algorithm"),
    ));

    // --- Two signers (deliberate). ---
    for shape in [Shape::Detached, Shape::Opaque] {
        c.push(entry(
            "multiple-signers",
            Case::new(&format!("diff/two-signers/{}", shape.name()), "alice")
                .also_signed_by("bob-ec256")
                .shape(shape),
            Expect::Reject("multiple-signers"),
        ));
    }

    // --- List-level checks (deliberate). ---
    for (n, content) in malformed_lists() {
        c.push(entry(
            "list-malformed",
            Case::new(&format!("diff/malformed-list/{n}"), "alice").raw_content(&content),
            Expect::Reject("malformed-list"),
        ));
    }
    let bob = pki.cert("bob-ec256");
    c.push(entry(
        "list-dn-mismatch",
        Case::new("diff/dn-mismatch/subject", "alice").list(|d| d.dn(&bob.subject)),
        Expect::Reject("signer-dn-mismatch"),
    ));
    c.push(entry(
        "list-dn-mismatch",
        Case::new("diff/dn-mismatch/issuer", "ivan").list(|d| d.ca(ROOT_DN)),
        Expect::Reject("signer-dn-mismatch"),
    ));
    c.push(entry(
        "list-expired",
        Case::new("diff/list-expired", "alice").list(|d| d.window(LIST_EXPIRED)),
        Expect::Reject("list-expired"),
    ));
    c.push(entry(
        "list-created-in-future",
        Case::new("diff/list-created-in-future", "alice").list(|d| d.window(LIST_FUTURE)),
        Expect::Reject("created-in-future"),
    ));
    c.push(entry(
        "endorser-not-authorised",
        Case::new("diff/endorser/other-subject", "alice").endorser(&bob.subject, &bob.issuer),
        Expect::Reject("endorser-not-authorised"),
    ));
    c.push(entry(
        "endorser-not-authorised",
        Case::new("diff/endorser/other-issuer", "alice")
            .endorser(&alice.subject, &pki.cert("inter").subject),
        Expect::Reject("endorser-not-authorised"),
    ));

    rfc5280_corpus(&mut c);
    c
}

/// Where a path's intermediate CA certificates travel.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// Only inside the CMS message (`-certfile`).
    Cms,
    /// Only in the CA directory.
    Dir,
    /// Both.
    Both,
}

impl Place {
    const ALL: [Place; 3] = [Place::Cms, Place::Dir, Place::Both];
    const TWO: [Place; 2] = [Place::Cms, Place::Dir];

    fn name(self) -> &'static str {
        match self {
            Place::Cms => "in-cms",
            Place::Dir => "in-dir",
            Place::Both => "in-both",
        }
    }
}

/// A case over the RFC 5280 PKI: `signer` with the intermediates `inters`
/// (placed as `place`), trust anchors `anchors` in the CA directory, and the
/// CRLs `crls` there.
fn path(
    name: &str,
    signer: &str,
    place: Place,
    anchors: &[&str],
    inters: &[&str],
    crls: &[&str],
) -> Case {
    let mut cas: Vec<&str> = anchors.to_vec();
    if matches!(place, Place::Dir | Place::Both) {
        cas.extend_from_slice(inters);
    }
    let mut case = Case::new(name, signer)
        .with_pki(rfc5280::pki)
        .trust(Trust::new(&cas, crls));
    if matches!(place, Place::Cms | Place::Both) {
        for i in inters {
            case = case.embed(i);
        }
    }
    case
}

/// `path` below the RFC 5280 root, each intermediate with its own fresh
/// CRL, the root's CRL `root_crl`.
fn below_root(name: &str, signer: &str, place: Place, inters: &[&str], root_crl: &str) -> Case {
    let crls: Vec<String> = std::iter::once(root_crl.to_owned())
        .chain(inters.iter().map(|i| format!("{i}-crl")))
        .collect();
    let crls: Vec<&str> = crls.iter().map(String::as_str).collect();
    path(name, signer, place, &["r"], inters, &crls)
}

/// Certification paths with intermediates (RFC 5280 section 6), over the
/// second PKI in `support::rfc5280`.
#[allow(clippy::too_many_lines)]
fn rfc5280_corpus(c: &mut Vec<Entry>) {
    // --- Intermediates carried in the CMS, the CA directory, or both. ---
    for place in Place::ALL {
        let p = place.name();
        for shape in [Shape::Detached, Shape::OpaqueStream, Shape::Der] {
            c.push(good(
                below_root(
                    &format!("good/rfc5280/intermediate-{p}/{}", shape.name()),
                    "ia-ee",
                    place,
                    &["ia"],
                    "r-crl",
                )
                .shape(shape),
            ));
        }
    }
    c.push(bad(
        "untrusted-signer",
        "untrusted-signer",
        path(
            "bad/rfc5280/intermediate-nowhere",
            "ia-ee",
            Place::Cms,
            &["r"],
            &[],
            &["r-crl", "ia-crl"],
        ),
    ));

    // --- Revoked intermediates. ---
    for place in Place::ALL {
        let p = place.name();
        let rev = |name: &str| below_root(name, "rev-i-ee", place, &["rev-i"], "r-crl");
        c.push(bad(
            "certificate-revoked",
            "certificate-revoked",
            rev(&format!("bad/rfc5280/revoked-intermediate/{p}")),
        ));
        c.push(bad(
            "certificate-revoked",
            "certificate-revoked",
            rev(&format!("bad/rfc5280/revoked-intermediate/if-present/{p}"))
                .crl_policy(CrlPolicy::IfPresent),
        ));
        c.push(good(
            rev(&format!("good/rfc5280/revoked-intermediate/ignore/{p}"))
                .crl_policy(CrlPolicy::Ignore),
        ));
        let no_parent_crl =
            |name: &str| path(name, "rev-i-ee", place, &["r"], &["rev-i"], &["rev-i-crl"]);
        c.push(bad(
            "crl-missing",
            "crl-missing",
            no_parent_crl(&format!(
                "bad/rfc5280/revoked-intermediate/parent-crl-missing/{p}"
            )),
        ));
        c.push(entry(
            "crl-missing-if-present",
            no_parent_crl(&format!(
                "diff/rfc5280/revoked-intermediate/parent-crl-missing/if-present/{p}"
            ))
            .crl_policy(CrlPolicy::IfPresent),
            Expect::Accept,
        ));
        c.push(good(below_root(
            &format!("good/rfc5280/two-intermediates/{p}"),
            "two-ee",
            place,
            &["two-1", "two-2"],
            "r-crl",
        )));
        c.push(bad(
            "certificate-revoked",
            "certificate-revoked",
            below_root(
                &format!("bad/rfc5280/two-intermediates/lower-revoked/{p}"),
                "two-2r-ee",
                place,
                &["two-1", "two-2r"],
                "r-crl",
            ),
        ));
        c.push(bad(
            "certificate-revoked",
            "certificate-revoked",
            below_root(
                &format!("bad/rfc5280/two-intermediates/upper-revoked/{p}"),
                "two-1r-ee",
                place,
                &["two-1r", "two-1r-2"],
                "r-crl",
            ),
        ));
    }
    c.push(good(
        below_root(
            "good/rfc5280/two-intermediates/lower-revoked/ignore",
            "two-2r-ee",
            Place::Cms,
            &["two-1", "two-2r"],
            "r-crl",
        )
        .crl_policy(CrlPolicy::Ignore),
    ));
    let two = |name: &str, crls: &[&str]| {
        path(
            name,
            "two-ee",
            Place::Dir,
            &["r"],
            &["two-1", "two-2"],
            crls,
        )
    };
    c.push(bad(
        "crl-missing",
        "crl-missing",
        two(
            "bad/rfc5280/two-intermediates/upper-crl-missing",
            &["r-crl", "two-2-crl"],
        ),
    ));
    c.push(bad(
        "crl-missing",
        "crl-missing",
        two(
            "bad/rfc5280/two-intermediates/root-crl-missing",
            &["two-1-crl", "two-2-crl"],
        ),
    ));
    c.push(bad(
        "crl-stale",
        "crl-stale",
        two(
            "bad/rfc5280/two-intermediates/upper-crl-stale",
            &["r-crl", "two-1-crl-stale", "two-2-crl"],
        ),
    ));
    c.push(bad(
        "crl-stale",
        "crl-stale",
        two(
            "bad/rfc5280/two-intermediates/root-crl-stale",
            &["r-crl-stale", "two-1-crl", "two-2-crl"],
        ),
    ));

    // --- The trust anchor's own revocation status (openssl only). ---
    for place in Place::TWO {
        c.push(bad(
            "anchor-crl",
            "crl-missing",
            path(
                &format!(
                    "bad/rfc5280/anchor-crl/root-crl-scoped-to-intermediate/{}",
                    place.name()
                ),
                "ia-dp-ee",
                place,
                &["r"],
                &["ia-dp"],
                &["r-crl-dp", "ia-dp-crl"],
            ),
        ));
    }
    c.push(bad(
        "anchor-crl",
        "crl-missing",
        path(
            "bad/rfc5280/anchor-crl/root-crl-only-user-certs",
            "r-ee",
            Place::Dir,
            &["r"],
            &[],
            &["r-crl-user"],
        ),
    ));
    c.push(bad(
        "crl-out-of-scope",
        "crl-missing",
        path(
            "bad/rfc5280/root-crl-scoped-to-other-intermediate",
            "ia-ee",
            Place::Dir,
            &["r"],
            &["ia"],
            &["r-crl-dp", "ia-crl"],
        ),
    ));

    // --- pathLenConstraint; self-issued certificates do not count. ---
    let pathlen: [(&str, &str, &[&str], bool); 9] = [
        ("pathlen0/end-entity", "pl0-ee", &["pl0"], true),
        (
            "pathlen0/self-issued/end-entity",
            "pl0-link-ee",
            &["pl0", "pl0-link"],
            true,
        ),
        ("pathlen0/ca-below", "pl0-x-ee", &["pl0", "pl0-x"], false),
        (
            "pathlen0/self-issued/ca-below",
            "pl0-link-x-ee",
            &["pl0", "pl0-link", "pl0-link-x"],
            false,
        ),
        ("pathlen1/ca-below", "pl1-x-ee", &["pl1", "pl1-x"], true),
        (
            "pathlen1/two-cas-below",
            "pl1-x-y-ee",
            &["pl1", "pl1-x", "pl1-x-y"],
            false,
        ),
        (
            "pathlen1/ca-below/self-issued",
            "pl1-x-link-ee",
            &["pl1", "pl1-x", "pl1-x-link"],
            true,
        ),
        (
            "pathlen1/self-issued/ca-below",
            "pl1-link-x-ee",
            &["pl1", "pl1-link", "pl1-link-x"],
            true,
        ),
        (
            "pathlen1/self-issued/two-cas-below",
            "pl1-link-x-y-ee",
            &["pl1", "pl1-link", "pl1-link-x", "pl1-link-x-y"],
            false,
        ),
    ];
    for (n, signer, inters, ok) in pathlen {
        for place in Place::TWO {
            let p = place.name();
            if ok {
                c.push(good(below_root(
                    &format!("good/rfc5280/{n}/{p}"),
                    signer,
                    place,
                    inters,
                    "r-crl",
                )));
            } else {
                c.push(bad(
                    "certificate-invalid",
                    "certificate-invalid",
                    below_root(
                        &format!("bad/rfc5280/{n}/{p}"),
                        signer,
                        place,
                        inters,
                        "r-crl",
                    ),
                ));
            }
        }
    }
    // The trust anchor's own pathLenConstraint (RFC 5937 semantics, as
    // openssl and the IGTF distribution's self-signed roots imply).
    for place in Place::TWO {
        c.push(bad(
            "certificate-invalid",
            "certificate-invalid",
            path(
                &format!("bad/rfc5280/anchor-pathlen0/ca-below/{}", place.name()),
                "rpl0-i-ee",
                place,
                &["rpl0"],
                &["rpl0-i"],
                &["rpl0-crl", "rpl0-i-crl"],
            ),
        ));
    }

    // --- CA key rollover: one subject, old and new key. ---
    let both = ["ro-root", "rn-root"];
    let crls = ["ro-crl", "rn-crl"];
    for (signer, inters, extra) in [
        ("ro-ee", &[][..], None),
        ("rn-ee", &[][..], None),
        ("ro-i-ee", &["ro-i"][..], Some("ro-i-crl")),
        ("rn-i-ee", &["rn-i"][..], Some("rn-i-crl")),
    ] {
        let mut all: Vec<&str> = crls.to_vec();
        all.extend(extra);
        c.push(good(path(
            &format!("good/rfc5280/rollover/both-roots/{signer}"),
            signer,
            Place::Cms,
            &both,
            inters,
            &all,
        )));
    }
    for signer in ["ro-ee", "rn-ee"] {
        c.push(good(path(
            &format!("good/rfc5280/rollover/both-roots+both-links/{signer}"),
            signer,
            Place::Cms,
            &both,
            &["link-on", "link-no"],
            &crls,
        )));
    }
    for place in Place::TWO {
        let p = place.name();
        c.push(good(path(
            &format!("good/rfc5280/rollover/new-root-only/old-signer/link-{p}"),
            "ro-ee",
            place,
            &["rn-root"],
            &["link-no"],
            &crls,
        )));
        c.push(good(path(
            &format!("good/rfc5280/rollover/old-root-only/new-signer/link-{p}"),
            "rn-ee",
            place,
            &["ro-root"],
            &["link-on"],
            &crls,
        )));
    }
    c.push(good(path(
        "good/rfc5280/rollover/new-root-only/old-intermediate",
        "ro-i-ee",
        Place::Cms,
        &["rn-root"],
        &["link-no", "ro-i"],
        &["ro-crl", "rn-crl", "ro-i-crl"],
    )));
    c.push(good(path(
        "good/rfc5280/rollover/old-root-only/new-intermediate",
        "rn-i-ee",
        Place::Cms,
        &["ro-root"],
        &["link-on", "rn-i"],
        &["ro-crl", "rn-crl", "rn-i-crl"],
    )));
    c.push(bad(
        "untrusted-signer",
        "untrusted-signer",
        path(
            "bad/rfc5280/rollover/new-root-only/old-signer/no-link",
            "ro-ee",
            Place::Cms,
            &["rn-root"],
            &[],
            &crls,
        ),
    ));
    c.push(bad(
        "untrusted-signer",
        "untrusted-signer",
        path(
            "bad/rfc5280/rollover/old-root-only/new-signer/no-link",
            "rn-ee",
            Place::Cms,
            &["ro-root"],
            &[],
            &crls,
        ),
    ));
    // A CRL signed by the other (trusted) key of the same CA name: the
    // CA's CRL for vmlisub, not the issuing key's for openssl.
    c.push(entry(
        "crl-by-other-ca-key",
        path(
            "diff/rfc5280/rollover/both-roots/old-signer/only-new-key-crl",
            "ro-ee",
            Place::Cms,
            &both,
            &[],
            &["rn-crl"],
        ),
        Expect::Accept,
    ));
    c.push(entry(
        "crl-by-other-ca-key",
        path(
            "diff/rfc5280/rollover/both-roots/new-signer/only-old-key-crl",
            "rn-ee",
            Place::Cms,
            &both,
            &[],
            &["ro-crl"],
        ),
        Expect::Accept,
    ));
    c.push(good(path(
        "good/rfc5280/rollover/both-roots/new-signer/only-new-key-crl",
        "rn-ee",
        Place::Cms,
        &both,
        &[],
        &["rn-crl"],
    )));
    // Through link-no the old key is certified by the trust anchor itself,
    // which also signs the CRL: the CRL issuer's path is the anchor.
    c.push(good(path(
        "good/rfc5280/rollover/new-root-only/old-signer/crl-by-anchor-key",
        "ro-ee",
        Place::Cms,
        &["rn-root"],
        &["link-no"],
        &["rn-crl"],
    )));
    c.push(bad(
        "certificate-revoked",
        "certificate-revoked",
        path(
            "bad/rfc5280/rollover/both-roots/old-signer-revoked",
            "ro-ee-rev",
            Place::Cms,
            &both,
            &[],
            &["ro-crl-rev", "rn-crl"],
        ),
    ));
    c.push(bad(
        "certificate-revoked",
        "certificate-revoked",
        path(
            "bad/rfc5280/rollover/new-root-only/old-signer-revoked",
            "ro-ee-rev",
            Place::Cms,
            &["rn-root"],
            &["link-no"],
            &["ro-crl-rev", "rn-crl"],
        ),
    ));

    // --- nameConstraints (critical) on an intermediate. ---
    let nc_ok = [
        "nc-dir-p-in",
        "nc-dir-p-in-email",
        "nc-dir-x-in",
        "nc-mail-box-dn-in",
        "nc-mail-box-san-in",
        "nc-mail-box-none",
        "nc-mail-host-dn-in",
        "nc-mail-host-san-in",
        "nc-mail-dom-dn-sub",
        "nc-mail-dom-san-sub",
        "nc-mail-x-dn-ok",
        "nc-uri-dom-in",
        "nc-uri-dom-none",
        "nc-uri-host-in",
        "nc-uri-x-ok",
        "nc-mix-in",
    ];
    let unsupported = ["nc-dns-ee", "nc-dns-x-ee", "nc-ip-ee"];
    for (i, (signer, issuer, _, _)) in rfc5280::NC_SIGNERS.iter().enumerate() {
        let inters: Vec<&str> = match *issuer {
            "nc-sub-in" | "nc-sub-out" | "nc-link" => vec!["nc-dir-p", issuer],
            _ => vec![issuer],
        };
        let place = if i % 2 == 0 { Place::Dir } else { Place::Cms };
        let ok = nc_ok.contains(signer) || matches!(*signer, "nc-sub-in-ee" | "nc-link-ee");
        let n = |verdict: &str| format!("{verdict}/rfc5280/name-constraints/{signer}");
        if unsupported.contains(signer) {
            c.push(entry(
                "name-constraints-unsupported-form",
                below_root(&n("diff"), signer, place, &inters, "r-crl"),
                Expect::Reject("certificate-invalid"),
            ));
        } else if ok {
            c.push(good(below_root(
                &n("good"),
                signer,
                place,
                &inters,
                "r-crl",
            )));
        } else {
            c.push(bad(
                "certificate-invalid",
                "certificate-invalid",
                below_root(&n("bad"), signer, place, &inters, "r-crl"),
            ));
        }
    }

    // --- Name chaining: issuer and subject equal under RFC 5280 7.1. ---
    c.push(good(below_root(
        "good/rfc5280/name-chaining/same-encoding",
        "ch-ee",
        Place::Dir,
        &["ch-v1"],
        "r-crl",
    )));
    for (variant, _, _) in rfc5280::CHAIN_VARIANTS {
        let v = variant.trim_start_matches("ch-");
        c.push(good(path(
            &format!("good/rfc5280/name-chaining/{v}/crl-as-issued"),
            "ch-ee",
            Place::Dir,
            &["r"],
            &[variant],
            &["r-crl", "ch-v1-crl"],
        )));
        c.push(good(path(
            &format!("good/rfc5280/name-chaining/{v}/crl-as-in-dir"),
            "ch-ee",
            Place::Dir,
            &["r"],
            &[variant],
            &["r-crl", &format!("{variant}-crl")],
        )));
        c.push(good(path(
            &format!("good/rfc5280/name-chaining/{v}/ca-in-cms"),
            "ch-ee",
            Place::Cms,
            &["r"],
            &[variant],
            &["r-crl", "ch-v1-crl"],
        )));
    }
    c.push(good(path(
        "good/rfc5280/name-chaining/printable-issuer-utf8-ca",
        "ch-ee-print",
        Place::Dir,
        &["r"],
        &["ch-v1"],
        &["r-crl", "ch-print-crl"],
    )));
    for other in ["ch-other-key", "ch-other-name"] {
        c.push(bad(
            "untrusted-signer",
            "untrusted-signer",
            path(
                &format!("bad/rfc5280/name-chaining/{other}"),
                "ch-ee",
                Place::Dir,
                &["r"],
                &[other],
                &["r-crl", &format!("{other}-crl")],
            ),
        ));
    }

    // --- Serial numbers: negative and 20 octets. ---
    for place in Place::TWO {
        let p = place.name();
        let ser = |signer: &str, inter: &str, root_crl: &str, inter_crl: &str, n: &str| {
            path(
                &format!("{n}/{p}"),
                signer,
                place,
                &["r"],
                &[inter],
                &[root_crl, inter_crl],
            )
        };
        let cases: [(&str, &str, &str, &str, bool, &str); 10] = [
            (
                "ser-neg-ee",
                "ser-i",
                "r-crl",
                "ser-i-crl",
                true,
                "negative-signer",
            ),
            (
                "ser-neg-ee",
                "ser-i",
                "r-crl",
                "ser-i-crl-pos",
                true,
                "negative-signer/crl-lists-positive",
            ),
            (
                "ser-neg-ee",
                "ser-i",
                "r-crl",
                "ser-i-crl-neg",
                false,
                "negative-signer/crl-lists-it",
            ),
            (
                "ser-big-ee",
                "ser-i",
                "r-crl",
                "ser-i-crl",
                true,
                "20-octet-signer",
            ),
            (
                "ser-big-ee",
                "ser-i",
                "r-crl",
                "ser-i-crl-big-near",
                true,
                "20-octet-signer/crl-lists-neighbour",
            ),
            (
                "ser-big-ee",
                "ser-i",
                "r-crl",
                "ser-i-crl-big",
                false,
                "20-octet-signer/crl-lists-it",
            ),
            (
                "ser-neg-i-ee",
                "ser-neg-i",
                "r-crl-ser-pos",
                "ser-neg-i-crl",
                true,
                "negative-intermediate/crl-lists-positive",
            ),
            (
                "ser-neg-i-ee",
                "ser-neg-i",
                "r-crl-ser-neg",
                "ser-neg-i-crl",
                false,
                "negative-intermediate/crl-lists-it",
            ),
            (
                "ser-big-i-ee",
                "ser-big-i",
                "r-crl",
                "ser-big-i-crl",
                true,
                "20-octet-intermediate",
            ),
            (
                "ser-big-i-ee",
                "ser-big-i",
                "r-crl-ser-big",
                "ser-big-i-crl",
                false,
                "20-octet-intermediate/crl-lists-it",
            ),
        ];
        for (signer, inter, root_crl, inter_crl, ok, n) in cases {
            if ok {
                c.push(good(ser(
                    signer,
                    inter,
                    root_crl,
                    inter_crl,
                    &format!("good/rfc5280/serial/{n}"),
                )));
            } else {
                c.push(bad(
                    "certificate-revoked",
                    "certificate-revoked",
                    ser(
                        signer,
                        inter,
                        root_crl,
                        inter_crl,
                        &format!("bad/rfc5280/serial/{n}"),
                    ),
                ));
            }
        }
    }

    // --- Dates: UTCTime 9x and GeneralizedTime (>= 2050). ---
    let dates = |name: &str, signer: &str, inter: &str, era: &str, place: Place| {
        let crls = [format!("dt-root-crl{era}"), format!("{inter}-crl{era}")];
        path(
            name,
            signer,
            place,
            &["dt-root"],
            &[inter],
            &[&crls[0], &crls[1]],
        )
    };
    for place in Place::TWO {
        c.push(good(dates(
            &format!("good/rfc5280/dates/generalized-not-after/{}", place.name()),
            "dt-ee",
            "dt-i",
            "",
            place,
        )));
    }
    c.push(good(dates(
        "good/rfc5280/dates/crl-generalized-next-update",
        "dt-ee",
        "dt-i",
        "-long",
        Place::Cms,
    )));
    c.push(good(dates(
        "good/rfc5280/dates/utctime-2049",
        "dt-ee-2049",
        "dt-i",
        "",
        Place::Cms,
    )));
    c.push(bad(
        "certificate-expired",
        "certificate-expired",
        dates(
            "bad/rfc5280/dates/utctime-2049/at-2050",
            "dt-ee-2049",
            "dt-i",
            "-2050",
            Place::Cms,
        )
        .at(rfc5280::AT_2050)
        .list(|d| d.window(rfc5280::LIST_2050)),
    ));
    c.push(bad(
        "certificate-not-yet-valid",
        "certificate-not-yet-valid",
        dates(
            "bad/rfc5280/dates/generalized-2050-not-before",
            "dt-ee-2050",
            "dt-i",
            "",
            Place::Cms,
        ),
    ));
    c.push(good(
        dates(
            "good/rfc5280/dates/generalized-2050/at-2050",
            "dt-ee-2050",
            "dt-i",
            "-2050",
            Place::Cms,
        )
        .at(rfc5280::AT_2050_JUNE)
        .list(|d| d.window(rfc5280::LIST_2050_JUNE)),
    ));
    c.push(bad(
        "certificate-expired",
        "certificate-expired",
        dates(
            "bad/rfc5280/dates/utctime-1999-signer",
            "dt-ee-90s",
            "dt-i",
            "",
            Place::Cms,
        ),
    ));
    c.push(good(
        dates(
            "good/rfc5280/dates/utctime-1999-signer/at-1999",
            "dt-ee-90s",
            "dt-i",
            "-1999",
            Place::Cms,
        )
        .at(rfc5280::AT_1999)
        .list(|d| d.window(rfc5280::LIST_1999)),
    ));
    c.push(bad(
        "crl-stale",
        "crl-stale",
        dates(
            "bad/rfc5280/dates/at-1999/crl-from-2026",
            "dt-ee-90s",
            "dt-i",
            "",
            Place::Cms,
        )
        .at(rfc5280::AT_1999)
        .list(|d| d.window(rfc5280::LIST_1999)),
    ));
    for place in Place::TWO {
        let p = place.name();
        c.push(bad(
            "certificate-expired",
            "certificate-expired",
            dates(
                &format!("bad/rfc5280/dates/intermediate-expired-1999/{p}"),
                "dt-i99-ee",
                "dt-i99",
                "",
                place,
            ),
        ));
        c.push(bad(
            "certificate-not-yet-valid",
            "certificate-not-yet-valid",
            dates(
                &format!("bad/rfc5280/dates/intermediate-from-2050/{p}"),
                "dt-i50-ee",
                "dt-i50",
                "",
                place,
            ),
        ));
    }
    c.push(good(
        dates(
            "good/rfc5280/dates/intermediate-expired-1999/at-1999",
            "dt-i99-ee",
            "dt-i99",
            "-1999",
            Place::Cms,
        )
        .at(rfc5280::AT_1999)
        .list(|d| d.window(rfc5280::LIST_1999)),
    ));
    c.push(good(
        dates(
            "good/rfc5280/dates/intermediate-from-2050/at-2050",
            "dt-i50-ee",
            "dt-i50",
            "-2050",
            Place::Cms,
        )
        .at(rfc5280::AT_2050_JUNE)
        .list(|d| d.window(rfc5280::LIST_2050_JUNE)),
    ));

    // --- CRLs with an issuingDistributionPoint. ---
    let idp = |name: &str, signer: &str, root_crl: &str, crls: &[&str]| {
        let mut all = vec![root_crl];
        all.extend_from_slice(crls);
        path(name, signer, Place::Dir, &["r"], &["idp-i"], &all)
    };
    let idp_good: [(&str, &str, &str, &[&str]); 9] = [
        ("only-user-certs", "idp-ee", "r-crl", &["idp-user"]),
        (
            "only-user-certs/signer-with-crldp",
            "idp-ee-dp",
            "r-crl",
            &["idp-user"],
        ),
        (
            "root-crl-only-ca-certs",
            "idp-ee",
            "r-crl-ca",
            &["idp-full"],
        ),
        ("dp-name-matches", "idp-ee-dp", "r-crl", &["idp-dp-match"]),
        (
            "no-idp/signer-with-crldp",
            "idp-ee-dp",
            "r-crl",
            &["idp-full"],
        ),
        (
            "only-some-reasons+complete",
            "idp-ee",
            "r-crl",
            &["idp-reasons", "idp-full"],
        ),
        (
            "indirect+complete",
            "idp-ee",
            "r-crl",
            &["idp-indirect", "idp-full"],
        ),
        ("delta+base", "idp-ee", "r-crl", &["idp-base", "idp-delta"]),
        (
            "complete-and-out-of-scope",
            "idp-ee-dp",
            "r-crl",
            &["idp-dp-other", "idp-full"],
        ),
    ];
    for (n, signer, root_crl, crls) in idp_good {
        c.push(good(idp(
            &format!("good/rfc5280/idp/{n}"),
            signer,
            root_crl,
            crls,
        )));
    }
    let idp_revoked: [(&str, &str, &str, &[&str]); 5] = [
        ("only-user-certs", "idp-ee-rev", "r-crl", &["idp-user"]),
        (
            "root-crl-only-ca-certs",
            "idp-ee-rev",
            "r-crl-ca",
            &["idp-full"],
        ),
        (
            "dp-name-matches",
            "idp-ee-dp-rev",
            "r-crl",
            &["idp-dp-match"],
        ),
        (
            "only-some-reasons+complete",
            "idp-ee-rev",
            "r-crl",
            &["idp-reasons", "idp-full"],
        ),
        (
            "complete-before-delta",
            "idp-ee-rev",
            "r-crl",
            &["idp-full", "idp-delta"],
        ),
    ];
    for (n, signer, root_crl, crls) in idp_revoked {
        c.push(bad(
            "certificate-revoked",
            "certificate-revoked",
            idp(
                &format!("bad/rfc5280/idp/revoked/{n}"),
                signer,
                root_crl,
                crls,
            ),
        ));
    }
    let idp_missing: [(&str, &str, &str, &[&str]); 7] = [
        ("only-ca-certs/signer", "idp-ee", "r-crl", &["idp-ca"]),
        (
            "root-crl-only-user-certs/intermediate",
            "idp-ee",
            "r-crl-user",
            &["idp-full"],
        ),
        ("dp-name-differs", "idp-ee-dp", "r-crl", &["idp-dp-other"]),
        (
            "dp-name/signer-without-crldp",
            "idp-ee",
            "r-crl",
            &["idp-dp-match"],
        ),
        ("only-some-reasons", "idp-ee", "r-crl", &["idp-reasons"]),
        ("indirect", "idp-ee", "r-crl", &["idp-indirect"]),
        (
            "only-ca-certs/revoked-signer",
            "idp-ee-rev",
            "r-crl",
            &["idp-ca"],
        ),
    ];
    for (n, signer, root_crl, crls) in idp_missing {
        c.push(bad(
            "crl-out-of-scope",
            "crl-missing",
            idp(&format!("bad/rfc5280/idp/{n}"), signer, root_crl, crls),
        ));
    }
    for (n, signer, root_crl, crls) in &idp_missing[..6] {
        c.push(entry(
            "crl-missing-if-present",
            idp(
                &format!("diff/rfc5280/idp/{n}/if-present"),
                signer,
                root_crl,
                crls,
            )
            .crl_policy(CrlPolicy::IfPresent),
            Expect::Accept,
        ));
    }
    // A delta CRL (deltaCRLIndicator) is not a complete CRL (RFC 5280
    // 5.2.4, 6.3.3): alone it leaves the signer without a CRL. openssl
    // without -use_deltas scores it like a complete CRL and, when it comes
    // first in the store, prefers it to the complete one.
    c.push(entry(
        "delta-crl-as-complete",
        idp(
            "diff/rfc5280/idp/delta-only",
            "idp-ee",
            "r-crl",
            &["idp-delta"],
        ),
        Expect::Reject("crl-missing"),
    ));
    c.push(good(
        idp(
            "good/rfc5280/idp/delta-only/if-present",
            "idp-ee",
            "r-crl",
            &["idp-delta"],
        )
        .crl_policy(CrlPolicy::IfPresent),
    ));
    c.push(entry(
        "delta-crl-hides-revocation",
        idp(
            "diff/rfc5280/idp/revoked/delta-before-complete",
            "idp-ee-rev",
            "r-crl",
            &["idp-delta", "idp-full"],
        ),
        Expect::Reject("certificate-revoked"),
    ));

    // --- Unknown extensions. ---
    for place in Place::ALL {
        let p = place.name();
        c.push(bad(
            "certificate-invalid",
            "certificate-invalid",
            below_root(
                &format!("bad/rfc5280/unknown-critical-extension/intermediate/{p}"),
                "ux-crit-ee",
                place,
                &["ux-crit-i"],
                "r-crl",
            ),
        ));
        c.push(good(below_root(
            &format!("good/rfc5280/unknown-non-critical-extension/intermediate/{p}"),
            "ux-non-ee",
            place,
            &["ux-non-i"],
            "r-crl",
        )));
    }
    c.push(bad(
        "certificate-invalid",
        "certificate-invalid",
        below_root(
            "bad/rfc5280/unknown-critical-extension/intermediate/ignore",
            "ux-crit-ee",
            Place::Cms,
            &["ux-crit-i"],
            "r-crl",
        )
        .crl_policy(CrlPolicy::Ignore),
    ));
    let ux = |name: &str, root_crl: &str, crl: &str| {
        path(
            name,
            "ux-non-ee",
            Place::Cms,
            &["r"],
            &["ux-non-i"],
            &[root_crl, crl],
        )
    };
    for policy in [CrlPolicy::Require, CrlPolicy::IfPresent] {
        c.push(bad(
            "crl-critical-extension",
            "crl-invalid",
            ux(
                &format!(
                    "bad/rfc5280/unknown-critical-extension/intermediate-crl/{}",
                    policy.arg()
                ),
                "r-crl",
                "ux-non-i-crl-crit",
            )
            .crl_policy(policy),
        ));
    }
    c.push(bad(
        "crl-critical-extension",
        "crl-invalid",
        ux(
            "bad/rfc5280/unknown-critical-extension/root-crl",
            "r-crl-critical-ext",
            "ux-non-i-crl",
        ),
    ));
    c.push(good(ux(
        "good/rfc5280/unknown-non-critical-extension/intermediate-crl",
        "r-crl",
        "ux-non-i-crl-non",
    )));
}

/// Messages that are not S/MIME at all, or broken MIME.
fn garbage_messages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("plain-text", b"this is not a signed message\n".to_vec()),
        ("empty", Vec::new()),
        ("json", b"{\"hv:imagelist\": {}}\n".to_vec()),
        (
            "boundary-never-used",
            b"MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/x-pkcs7-signature\"; \
              micalg=\"sha-256\"; boundary=\"----NOPE\"\r\n\r\nThis is an S/MIME signed message\r\n\r\nno parts here\r\n"
                .to_vec(),
        ),
        (
            "multipart-mixed",
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\n\
              Content-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n"
                .to_vec(),
        ),
    ]
}

/// Signed contents that are not valid image lists.
fn malformed_lists() -> Vec<(&'static str, Vec<u8>)> {
    let doc = ListDoc::for_signer(pki().cert("alice"));
    let mut no_identifier = doc.value();
    no_identifier["hv:imagelist"]
        .as_object_mut()
        .unwrap()
        .remove("dc:identifier");
    let mut bad_date = doc.value();
    bad_date["hv:imagelist"]["dc:date:created"] = "15 Jan 2026".into();
    vec![
        ("not-json", b"this is not JSON {".to_vec()),
        ("json-array", b"[1, 2, 3]\n".to_vec()),
        (
            "no-identifier",
            serde_json::to_vec_pretty(&no_identifier).unwrap(),
        ),
        ("bad-date", serde_json::to_vec_pretty(&bad_date).unwrap()),
    ]
}

struct Observed {
    name: String,
    class: &'static str,
    expect: Expect,
    vmlisub_accepted: bool,
    vmlisub_reason: Option<String>,
    vmlisub_report: String,
    openssl_accepted: bool,
    openssl_report: String,
}

fn run_all(entries: &[Entry]) -> Vec<Observed> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(e) = entries.get(i) else { break };
                    let prepared = e.case.prepare();
                    let v = prepared.vmlisub();
                    let o = prepared.openssl();
                    let r = Observed {
                        name: e.case.name.clone(),
                        class: e.class,
                        expect: e.expect.clone(),
                        vmlisub_accepted: v.accepted(),
                        vmlisub_reason: v.reason(),
                        vmlisub_report: v.describe(),
                        openssl_accepted: o.accepted,
                        openssl_report: format!("$ {}\n{}", o.command, o.stderr),
                    };
                    results.lock().unwrap().push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn verdict(accepted: bool) -> &'static str {
    if accepted { "accept" } else { "reject" }
}

#[test]
fn vmlisub_and_openssl_agree() {
    let started = Instant::now();
    let entries = corpus();
    assert!(entries.len() >= 100, "corpus too small: {}", entries.len());
    for d in DELIBERATE {
        assert!(
            entries.iter().any(|e| e.class == d.class),
            "deliberate difference {} has no case",
            d.class
        );
    }
    let results = run_all(&entries);

    // First: is the corpus what we think it is? openssl must say what the
    // case class implies (declared verdict for deliberate classes, else the
    // same as the expected vmlisub verdict).
    let mut corpus_errors = Vec::new();
    for r in &results {
        let expected_openssl = match DELIBERATE.iter().find(|d| d.class == r.class) {
            Some(d) => d.openssl == "accept",
            None => matches!(r.expect, Expect::Accept),
        };
        let reasons = openssl_reason(r.class);
        if !r.openssl_accepted
            && !reasons.is_empty()
            && !reasons.iter().any(|m| r.openssl_report.contains(m))
        {
            corpus_errors.push(format!(
                "corpus: {} ({}): openssl rejects, but not with any of {reasons:?}\n{}",
                r.name, r.class, r.openssl_report
            ));
        }
        if r.openssl_accepted != expected_openssl {
            corpus_errors.push(format!(
                "corpus: {} ({}): openssl says {}, the case expects {}\n{}",
                r.name,
                r.class,
                verdict(r.openssl_accepted),
                verdict(expected_openssl),
                r.openssl_report
            ));
        }
    }
    assert!(
        corpus_errors.is_empty(),
        "the generated corpus does not behave as designed under openssl:\n\n{}",
        corpus_errors.join("\n\n")
    );

    let mut agree = 0;
    let mut deliberate = 0;
    let mut disagreements = Vec::new();
    let mut notes = Vec::new();
    for r in &results {
        let declared = DELIBERATE.iter().find(|d| d.class == r.class);
        let vmlisub_says = if r.vmlisub_accepted {
            "accept".to_owned()
        } else {
            r.vmlisub_reason
                .clone()
                .unwrap_or_else(|| "reject (malformed error report)".to_owned())
        };
        match declared {
            Some(d) => {
                if vmlisub_says == d.vmlisub && verdict(r.openssl_accepted) == d.openssl {
                    deliberate += 1;
                } else {
                    disagreements.push(format!(
                        "{} [{}]: declared difference vmlisub={} openssl={}, got vmlisub={} openssl={}\n{}\n{}",
                        r.name,
                        r.class,
                        d.vmlisub,
                        d.openssl,
                        vmlisub_says,
                        verdict(r.openssl_accepted),
                        r.vmlisub_report,
                        r.openssl_report
                    ));
                }
            }
            None if r.vmlisub_accepted == r.openssl_accepted => {
                agree += 1;
                match (&r.expect, &r.vmlisub_reason) {
                    (Expect::Reject(code), Some(got)) if got != code => {
                        notes.push(format!(
                            "note: {}: vmlisub says {got}, expected {code}",
                            r.name
                        ));
                    }
                    (Expect::Reject(_) | Expect::RejectAny, None) => {
                        notes.push(format!(
                            "note: {}: vmlisub rejected without a one-line `error: <code>: ...` report:\n{}",
                            r.name, r.vmlisub_report
                        ));
                    }
                    _ => {}
                }
            }
            None => disagreements.push(format!(
                "{} [{}]: vmlisub={} openssl={}\n{}\n{}",
                r.name,
                r.class,
                vmlisub_says,
                verdict(r.openssl_accepted),
                r.vmlisub_report,
                r.openssl_report
            )),
        }
    }
    if std::env::var_os("VMLISUB_DIFF_VERBOSE").is_some() {
        for r in &results {
            println!(
                "case {:<60} {:<26} vmlisub={:<26} openssl={}",
                r.name,
                r.class,
                r.vmlisub_reason
                    .as_deref()
                    .unwrap_or(verdict(r.vmlisub_accepted)),
                verdict(r.openssl_accepted)
            );
        }
    }
    for n in &notes {
        println!("{n}");
    }
    println!("deliberate differences:");
    println!("  {:<26} {:<24} {:<8} why", "class", "vmlisub", "openssl");
    for d in DELIBERATE {
        let count = results.iter().filter(|r| r.class == d.class).count();
        println!(
            "  {:<26} {:<24} {:<8} {} ({count} cases)",
            d.class, d.vmlisub, d.openssl, d.why
        );
    }
    println!(
        "differential: {} cases, {agree} agree, {deliberate} deliberate differences, {} disagreements ({:.1}s)",
        results.len(),
        disagreements.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        disagreements.is_empty(),
        "{} undeclared disagreement(s) between vmlisub and openssl:\n\n{}",
        disagreements.len(),
        disagreements.join("\n\n")
    );
}
