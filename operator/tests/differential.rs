//! Differential test: `vmlisub verify` against `openssl smime -verify`.
//!
//! A corpus of signed messages, good and bad, across every signing shape and
//! failure class, is verified by both. They must agree on accept/reject,
//! except for the deliberate differences declared in [`DELIBERATE`].
//!
//! openssl runs as
//! `openssl smime -verify -CAfile <bundle> -no-CApath -no-CAstore -purpose smimesign -attime <AT>`
//! plus `-crl_check` unless the case's vmlisub policy is `ignore` (or the
//! case says otherwise), and `-inform PEM|DER` for those shapes. The bundle
//! holds exactly the CA certificates and CRLs of vmlisub's CA directory.
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
        why: "--crl-policy if-present tolerates a missing CRL; -crl_check requires one",
    },
    Deliberate {
        class: "crl-ignore-vs-crl-check",
        vmlisub: "accept",
        openssl: "reject",
        why: "--crl-policy ignore skips revocation; openssl ran with -crl_check (missing/stale/forged CRL, revoked signer)",
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
        "crl-missing" | "crl-missing-if-present" => &["unable to get certificate CRL"],
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
    c.push(good(
        Case::new(
            "good/revoked-intermediate-not-checked",
            "revoked-inter-signer",
        )
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
    c
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
