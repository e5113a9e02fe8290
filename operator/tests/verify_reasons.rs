//! `vmlisub verify` with real cryptography: one test per class of bad input,
//! asserting the exact reason code, plus the good cases (RSA and EC signers,
//! intermediates, every signing shape, digests, endorser pinning, output
//! formats).
//!
//! All material comes from the generated PKI in `support::fixtures`; every
//! verification runs at `support::time::AT`, never at the wall-clock time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::cli::{CrlPolicy, Outcome};
use support::fixtures::{INTER_NS, ROOT_NS, pki, standard_trust};
use support::list::ListDoc;
use support::scenario::Case;
use support::smime::{self, Digest, Mutation, Shape};
use support::time::{LIST_EXPIRED, LIST_FUTURE};
use support::trust::{Naming, Policy, PolicyFormat, Trust};

fn accepts(case: Case) -> Outcome {
    let out = case.prepare().vmlisub();
    out.assert_ok();
    out
}

fn rejects(case: Case, code: &str) {
    case.prepare().vmlisub().assert_reason(code);
}

/// Rejected with some well-formed `error: <code>: ...` report.
fn rejects_any(case: Case) {
    let out = case.prepare().vmlisub();
    assert!(!out.accepted(), "expected a failure\n{}", out.describe());
    assert!(
        out.reason().is_some(),
        "expected `error: <code>: ...` as the only stderr line\n{}",
        out.describe()
    );
}

fn root_only_with_crl(crl: &str) -> Trust {
    Trust::new(&["root", "inter"], &[crl]).policy(Policy::new("root", &[ROOT_NS]))
}

// ---------------------------------------------------------------- good ---

#[test]
fn rsa2048_signer_verifies() {
    accepts(Case::new("alice", "alice"));
}

#[test]
fn rsa3072_signer_verifies() {
    accepts(Case::new("dave", "dave-rsa3072"));
}

#[test]
fn ec_p256_signer_verifies() {
    accepts(Case::new("bob", "bob-ec256"));
}

#[test]
fn ec_p384_signer_verifies() {
    accepts(Case::new("carol", "carol-ec384"));
}

#[test]
fn intermediate_in_ca_dir_verifies() {
    accepts(Case::new("ivan", "ivan"));
}

#[test]
fn intermediate_inside_cms_verifies() {
    accepts(
        Case::new("ivan via cms", "ivan").embed("inter").trust(
            Trust::new(&["root"], &["root-fresh", "inter-fresh"])
                .policy(Policy::new("root", &[ROOT_NS])),
        ),
    );
}

#[test]
fn ec_leaf_under_ec_intermediate_verifies() {
    accepts(Case::new("ivan-ec", "ivan-ec").digest(Digest::Sha384));
}

#[test]
fn rsa_with_sha384_and_sha512_verifies() {
    for digest in [Digest::Sha384, Digest::Sha512] {
        accepts(Case::new(digest.md(), "alice").digest(digest));
        accepts(Case::new(digest.md(), "dave-rsa3072").digest(digest));
    }
}

#[test]
fn ec_p256_with_every_sha2_digest_verifies() {
    for digest in [Digest::Sha256, Digest::Sha384, Digest::Sha512] {
        accepts(Case::new(digest.md(), "bob-ec256").digest(digest));
    }
}

#[test]
fn ec_p384_with_every_sha2_digest_verifies() {
    for digest in [Digest::Sha256, Digest::Sha384, Digest::Sha512] {
        accepts(Case::new(digest.md(), "carol-ec384").digest(digest));
    }
}

macro_rules! shape_tests {
    ($($test:ident => $shape:expr,)*) => {$(
        #[test]
        fn $test() {
            accepts(Case::new(stringify!($test), "alice").shape($shape));
            accepts(Case::new(stringify!($test), "bob-ec256").shape($shape));
        }
    )*};
}

shape_tests! {
    shape_detached_verifies => Shape::Detached,
    shape_detached_text_verifies => Shape::DetachedText,
    shape_detached_lf_verifies => Shape::DetachedLf,
    shape_detached_crlf_verifies => Shape::DetachedCrlf,
    shape_detached_mixed_line_endings_verifies => Shape::DetachedMixed,
    shape_detached_text_lf_verifies => Shape::DetachedTextLf,
    shape_pkcs7_signature_mime_type_verifies => Shape::DetachedNewMime,
    shape_x_pkcs7_signature_mime_type_verifies => Shape::DetachedOldMime,
    shape_detached_stream_verifies => Shape::DetachedStream,
    shape_openssl_cms_detached_verifies => Shape::CmsDetached,
    shape_opaque_verifies => Shape::Opaque,
    shape_opaque_pkcs7_mime_verifies => Shape::OpaqueNewMime,
    shape_opaque_ber_indefinite_verifies => Shape::OpaqueStream,
    shape_opaque_lf_verifies => Shape::OpaqueLf,
    shape_opaque_text_verifies => Shape::OpaqueText,
    shape_pem_pkcs7_verifies => Shape::Pem,
    shape_der_verifies => Shape::Der,
    shape_ber_indefinite_der_verifies => Shape::DerStream,
}

#[test]
fn text_shape_message_is_the_bare_list() {
    for shape in [
        Shape::DetachedText,
        Shape::DetachedTextLf,
        Shape::OpaqueText,
    ] {
        let p = Case::new("text message", "alice").shape(shape).prepare();
        let out = p.command().format("message").file(&p.message).run();
        out.assert_ok();
        let doc = ListDoc::for_signer(pki().cert("alice"));
        assert_eq!(out.json(), doc.value(), "{}", out.describe());
    }
}

#[test]
fn harmless_mime_variations_verify() {
    let edits: [(&'static str, smime::Rewrite); 5] = [
        ("folded header", smime::fold_header),
        ("lower-case header names", smime::lowercase_header_names),
        ("unquoted boundary", smime::unquote_boundary),
        ("epilogue", smime::add_epilogue),
        ("micalg not matching the digest", smime::wrong_micalg),
    ];
    for (name, edit) in edits {
        accepts(Case::new(name, "alice").mutation(Mutation::Edit(name, edit)));
    }
    for shape in [Shape::Detached, Shape::Opaque, Shape::Pem] {
        accepts(
            Case::new("base64 at 76 columns", "alice")
                .shape(shape)
                .mutation(Mutation::RewrapBase64(76)),
        );
    }
}

#[test]
fn large_list_verifies_in_streaming_shapes() {
    // 400 images: BER streaming splits the content into many chunks.
    for shape in [Shape::OpaqueStream, Shape::DerStream, Shape::DetachedLf] {
        let p = Case::new("large", "bob-ec256")
            .shape(shape)
            .list(|d| d.images(400))
            .prepare();
        let out = p.command().format("message").file(&p.message).run();
        out.assert_ok();
        let doc = ListDoc::for_signer(pki().cert("bob-ec256")).images(400);
        assert_eq!(out.json(), doc.value(), "{}", out.describe());
    }
}

#[test]
fn unicode_and_unknown_keys_survive() {
    let note = "Grüße aus Karlsruhe \u{2603} \u{1f680}";
    let p = Case::new("unicode", "alice")
        .shape(Shape::DetachedTextLf)
        .list(|d| d.extra("x:note", note.into()))
        .prepare();
    let out = p.command().format("message").file(&p.message).run();
    out.assert_ok();
    assert_eq!(
        out.json()["hv:imagelist"]["x:note"],
        note,
        "{}",
        out.describe()
    );
}

#[test]
fn content_line_ending_edge_cases_verify() {
    let text = ListDoc::for_signer(pki().cert("alice")).to_bytes();
    accepts(Case::new("no final newline", "alice").raw_content(text.strip_suffix(b"\n").unwrap()));
    accepts(
        Case::new("blank lines at the end", "alice")
            .raw_content(&[text.as_slice(), b"\n\n\n"].concat()),
    );
}

#[test]
fn cms_variations_verify() {
    accepts(Case::new("no signed attributes", "alice").sign_arg("-noattr"));
    accepts(Case::new("no smimeCapabilities", "bob-ec256").sign_arg("-nosmimecap"));
    accepts(
        Case::new("signer certificate not first", "ivan")
            .nocerts()
            .embed("inter")
            .embed("ivan"),
    );
    accepts(
        Case::new("unrelated certificates", "ivan")
            .embed("mallet")
            .embed("other-root")
            .embed("inter")
            .embed("bob-ec256"),
    );
}

#[test]
fn sha1_self_signature_of_a_root_needs_no_opt_in() {
    // Like GridKa-CA: only the trust anchor's own signature uses SHA-1,
    // and nobody verifies a trust anchor's self-signature.
    accepts(
        Case::new("sha1 root", "sha1-root-signer")
            .trust(Trust::new(&["sha1-root"], &["sha1-root-fresh"])),
    );
}

#[test]
fn a_crl_revokes_only_serials_of_its_own_issuer() {
    // The intermediate's CRL lists alice's serial; alice is the root's.
    accepts(Case::new("other CA's serial", "alice").trust(Trust::new(
        &["root", "inter"],
        &["root-fresh", "inter-lists-alice-serial"],
    )));
}

#[test]
fn a_fresh_crl_next_to_a_stale_one_is_used() {
    accepts(Case::new("stale and fresh", "alice").trust(Trust::new(
        &["root", "inter"],
        &["root-stale", "root-fresh"],
    )));
}

#[test]
fn json_output_describes_signer_and_list() {
    let alice = pki().cert("alice");
    let doc = ListDoc::for_signer(alice);
    let p = Case::new("json", "alice").prepare();
    let out = p.command().format("json").file(&p.message).run();
    out.assert_ok();
    let v = out.json();
    assert_eq!(
        v["signer"]["subject"],
        alice.subject.as_str(),
        "{}",
        out.describe()
    );
    assert_eq!(
        v["signer"]["issuer"],
        alice.issuer.as_str(),
        "{}",
        out.describe()
    );
    for key in ["serial", "notBefore", "notAfter"] {
        assert!(
            !v["signer"][key].is_null(),
            "signer.{key} missing\n{}",
            out.describe()
        );
    }
    assert_eq!(
        v["list"]["identifier"],
        doc.identifier.as_str(),
        "{}",
        out.describe()
    );
    assert_eq!(
        v["list"]["created"],
        doc.created.as_str(),
        "{}",
        out.describe()
    );
    assert_eq!(
        v["list"]["expires"],
        doc.expires.as_str(),
        "{}",
        out.describe()
    );
    assert_eq!(
        v["list"]["version"],
        doc.version.as_str(),
        "{}",
        out.describe()
    );
    for key in ["title", "description", "uri", "source", "endorser"] {
        assert!(
            !v["list"][key].is_null(),
            "list.{key} missing\n{}",
            out.describe()
        );
    }
    assert_eq!(
        v["images"].as_array().map(Vec::len),
        Some(2),
        "{}",
        out.describe()
    );
    assert!(v["warnings"].is_array(), "{}", out.describe());
}

#[test]
fn message_output_is_the_signed_json() {
    for shape in [Shape::Detached, Shape::Opaque, Shape::DerStream] {
        let p = Case::new("message", "alice").shape(shape).prepare();
        let out = p.command().format("message").file(&p.message).run();
        out.assert_ok();
        assert_eq!(
            out.json(),
            ListDoc::for_signer(pki().cert("alice")).value(),
            "{}",
            out.describe()
        );
    }
}

#[test]
fn smime_output_is_the_original_bytes() {
    for shape in [Shape::Detached, Shape::DetachedLf, Shape::Der] {
        let p = Case::new("smime", "alice").shape(shape).prepare();
        let out = p.command().format("smime").file(&p.message).run();
        out.assert_ok();
        assert!(
            out.stdout == p.bytes,
            "--format smime changed the bytes\n{}",
            out.describe()
        );
    }
}

#[test]
fn lines_output_is_printed() {
    let p = Case::new("lines", "alice").prepare();
    let out = p.command().format("lines").file(&p.message).run();
    out.assert_ok();
    assert!(!out.stdout.is_empty(), "{}", out.describe());
}

#[test]
fn message_from_stdin_verifies() {
    let p = Case::new("stdin", "alice").prepare();
    p.command().stdin(p.bytes.clone()).run().assert_ok();
    let bad = Case::new("stdin tampered", "alice")
        .mutation(Mutation::TamperContent)
        .prepare();
    bad.command()
        .stdin(bad.bytes.clone())
        .run()
        .assert_reason("digest-mismatch");
}

#[test]
fn legacy_list_without_wrapper_verifies_with_a_warning() {
    let p = Case::new("legacy", "alice").list(ListDoc::legacy).prepare();
    let out = p.command().format("json").file(&p.message).run();
    out.assert_ok();
    let warnings = out.json()["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !warnings.is_empty(),
        "no warning for the legacy format\n{}",
        out.describe()
    );
}

#[test]
fn endorser_match_verifies() {
    let alice = pki().cert("alice");
    let bob = pki().cert("bob-ec256");
    accepts(Case::new("endorser", "alice").endorser(&alice.subject, &alice.issuer));
    accepts(
        Case::new("endorsers", "alice")
            .endorser(&bob.subject, &bob.issuer)
            .endorser(&alice.subject, &alice.issuer),
    );
}

#[test]
fn sha1_verifies_with_allow_sha1() {
    accepts(
        Case::new("sha1 digest", "alice")
            .digest(Digest::Sha1)
            .allow_sha1(),
    );
    accepts(Case::new("sha1 cert", "sha1-cert").allow_sha1());
}

#[test]
fn nonrepudiation_only_key_usage_verifies() {
    accepts(Case::new("nonrep", "ku-nonrep"));
}

#[test]
fn certificate_without_key_usage_extensions_verifies() {
    // No keyUsage and no extendedKeyUsage: unrestricted (RFC 5280).
    accepts(Case::new("no ku", "no-ku"));
}

#[test]
fn exotic_subject_dns_match_the_openssl_one_line_form() {
    // hv:dn is what `openssl x509 -subject -nameopt compat` prints: UTF-8 and
    // T61String bytes as \xHH, `+` inside a multi-valued RDN, emailAddress,
    // title, serialNumber, an unknown attribute as a dotted OID, `\/`.
    for signer in ["exotic-dn", "t61-dn", "slash-dn"] {
        let cert = pki().cert(signer);
        let p = Case::new(signer, signer).prepare();
        let out = p.command().format("json").file(&p.message).run();
        out.assert_ok();
        assert_eq!(
            out.json()["signer"]["subject"],
            cert.subject.as_str(),
            "{}",
            out.describe()
        );
    }
}

#[test]
fn igtf_extras_and_both_policy_formats() {
    let store = |t: Trust| t.both_policy_formats().igtf_extras();
    accepts(Case::new("extras", "ivan").edit_trust(store));
    rejects(
        Case::new("extras, outsider", "outsider").edit_trust(store),
        "namespace-violation",
    );
    rejects(
        Case::new("extras, robot", "robot").edit_trust(store),
        "namespace-violation",
    );
}

#[test]
fn broken_files_in_the_ca_dir_do_not_change_the_verdict() {
    // Success may log about them; a failure is still exactly one line.
    accepts(Case::new("junk", "alice").edit_trust(|t| t.igtf_extras().junk()));
    rejects(
        Case::new("junk, tampered", "alice")
            .mutation(Mutation::TamperContent)
            .edit_trust(|t| t.igtf_extras().junk()),
        "digest-mismatch",
    );
    rejects(
        Case::new("junk, revoked", "revoked").edit_trust(|t| t.igtf_extras().junk()),
        "certificate-revoked",
    );
}

#[test]
fn stale_crl_of_an_unrelated_ca_is_irrelevant() {
    accepts(
        Case::new("unrelated stale crl", "alice").edit_trust(|mut t| {
            t.cas.push("other-root".into());
            t.crls.push("other-root-stale".into());
            t
        }),
    );
}

#[test]
fn ca_files_are_found_by_content() {
    accepts(Case::new("wrong hashes", "ivan").edit_trust(|t| t.naming(Naming::WrongHash)));
    accepts(Case::new("pem names", "ivan").edit_trust(|t| t.naming(Naming::Pem)));
}

#[test]
fn signing_policy_format_permits() {
    accepts(
        Case::new("signing_policy", "ivan").trust(
            Trust::new(&["root", "inter"], &["root-fresh", "inter-fresh"])
                .policy(Policy::new("root", &[ROOT_NS]).format(PolicyFormat::SigningPolicy))
                .policy(Policy::new("inter", &[INTER_NS]).format(PolicyFormat::SigningPolicy)),
        ),
    );
}

#[test]
fn no_policy_file_means_no_namespace_restriction() {
    accepts(Case::new("no policies", "outsider").edit_trust(Trust::without_policies));
}

#[test]
fn every_certificate_on_the_path_is_checked_against_crls() {
    // The issuing CA is listed in the root's CRL: like `openssl
    // -crl_check_all`, the revoked intermediate fails the path, and the
    // report names it.
    let case = Case::new("revoked intermediate", "revoked-inter-signer")
        .embed("revoked-inter")
        .edit_trust(|mut t| {
            t.crls.push("revoked-inter-fresh".into());
            t
        });
    let out = case.prepare().vmlisub();
    out.assert_reason("certificate-revoked");
    assert!(
        out.stderr.contains("CN=Revoked Issuing CA"),
        "{}",
        out.describe()
    );
    // Without the intermediate's own CRL, `require` refuses too.
    rejects(
        Case::new("intermediate without CRL", "ivan").trust(root_only_with_crl("root-fresh")),
        "crl-missing",
    );
}

#[test]
fn crl_policy_if_present_accepts_fresh_and_missing_crls() {
    accepts(Case::new("fresh", "alice").crl_policy(CrlPolicy::IfPresent));
    accepts(
        Case::new("missing", "alice")
            .crl_policy(CrlPolicy::IfPresent)
            .edit_trust(Trust::without_crls),
    );
    accepts(
        Case::new("missing for intermediate", "ivan")
            .crl_policy(CrlPolicy::IfPresent)
            .trust(root_only_with_crl("root-fresh")),
    );
}

#[test]
fn crl_policy_ignore_skips_revocation() {
    let ignore = |name: &str, signer: &str| Case::new(name, signer).crl_policy(CrlPolicy::Ignore);
    accepts(ignore("missing", "alice").edit_trust(Trust::without_crls));
    accepts(ignore("stale", "alice").trust(root_only_with_crl("root-stale")));
    accepts(ignore("forged", "alice").trust(root_only_with_crl("root-forged")));
    accepts(ignore("revoked", "revoked"));
}

// ----------------------------------------------------------------- bad ---

#[test]
fn tampered_content_is_digest_mismatch() {
    for shape in [Shape::Detached, Shape::DetachedLf, Shape::DetachedText] {
        rejects(
            Case::new("tampered", "alice")
                .shape(shape)
                .mutation(Mutation::TamperContent),
            "digest-mismatch",
        );
    }
}

#[test]
fn tampered_embedded_content_is_digest_mismatch() {
    for shape in [
        Shape::Opaque,
        Shape::OpaqueStream,
        Shape::Pem,
        Shape::Der,
        Shape::DerStream,
    ] {
        rejects(
            Case::new("tampered", "alice")
                .shape(shape)
                .mutation(Mutation::TamperContent),
            "digest-mismatch",
        );
    }
}

#[test]
fn flipped_rsa_signature_is_signature_invalid() {
    for shape in [Shape::Detached, Shape::Der] {
        rejects(
            Case::new("flipped", "alice")
                .shape(shape)
                .mutation(Mutation::FlipSignature),
            "signature-invalid",
        );
    }
}

#[test]
fn flipped_ec_signature_is_signature_invalid() {
    rejects(
        Case::new("flipped", "bob-ec256").mutation(Mutation::FlipSignature),
        "signature-invalid",
    );
    rejects(
        Case::new("flipped", "carol-ec384").mutation(Mutation::FlipSignature),
        "signature-invalid",
    );
}

#[test]
fn garbage_is_malformed_smime() {
    rejects(
        Case::new("text", "alice").mutation(Mutation::Replace(
            b"this is not a signed message\n".to_vec(),
        )),
        "malformed-smime",
    );
}

#[test]
fn multipart_without_parts_is_malformed_smime() {
    let msg = b"MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/x-pkcs7-signature\"; \
                micalg=\"sha-256\"; boundary=\"----NOPE\"\r\n\r\nThis is an S/MIME signed message\r\n";
    rejects(
        Case::new("no parts", "alice").mutation(Mutation::Replace(msg.to_vec())),
        "malformed-smime",
    );
}

#[test]
fn multipart_mixed_is_malformed_smime() {
    let msg =
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\n\
                Content-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n";
    rejects(
        Case::new("mixed", "alice").mutation(Mutation::Replace(msg.to_vec())),
        "malformed-smime",
    );
}

#[test]
fn extra_third_part_is_malformed_smime() {
    rejects(
        Case::new("third part after the signature", "alice")
            .mutation(Mutation::Edit("third part", smime::add_third_part)),
        "malformed-smime",
    );
    rejects(
        Case::new("third part in the middle", "alice")
            .mutation(Mutation::Edit("middle part", smime::add_middle_part)),
        "malformed-smime",
    );
}

#[test]
fn signature_part_first_is_malformed_smime() {
    rejects(
        Case::new("swapped", "alice").mutation(Mutation::Edit("swapped", smime::swap_parts)),
        "malformed-smime",
    );
}

#[test]
fn tampered_signed_attribute_is_signature_invalid() {
    rejects(
        Case::new("signingTime", "alice").mutation(Mutation::TamperSignedAttribute),
        "signature-invalid",
    );
    rejects(
        Case::new("signingTime (ec, ber)", "bob-ec256")
            .shape(Shape::DerStream)
            .mutation(Mutation::TamperSignedAttribute),
        "signature-invalid",
    );
}

#[test]
fn tampered_inner_mime_header_is_digest_mismatch() {
    // With -text the inner header is part of what was signed.
    rejects(
        Case::new("inner header", "alice")
            .shape(Shape::DetachedText)
            .mutation(Mutation::Edit("inner header", smime::tamper_inner_header)),
        "digest-mismatch",
    );
}

#[test]
fn opaque_signature_with_other_content_in_first_part_is_digest_mismatch() {
    // The signature part carries a valid opaque SignedData of the list; the
    // first part was changed. The first part is what the signature must cover.
    for shape in [Shape::Detached, Shape::DetachedLf] {
        rejects(
            Case::new("content twice", "alice")
                .shape(shape)
                .mutation(Mutation::EmbeddedContentInSignaturePart),
            "digest-mismatch",
        );
    }
}

#[test]
fn missing_signer_certificate_is_rejected() {
    // The contract pins no code; any one-line failure will do.
    rejects_any(Case::new("nocerts", "alice").nocerts());
    rejects_any(
        Case::new("another cert", "alice")
            .nocerts()
            .embed("bob-ec256"),
    );
}

#[test]
fn rsa_pss_signature_is_rejected() {
    // The spec admits RSA PKCS#1 v1.5 and ECDSA only.
    rejects_any(
        Case::new("pss", "alice")
            .shape(Shape::CmsDetached)
            .rsa_pss(),
    );
}

#[test]
fn truncated_cms_is_malformed_cms() {
    for shape in [Shape::Detached, Shape::Opaque, Shape::Pem, Shape::Der] {
        rejects(
            Case::new("truncated", "alice")
                .shape(shape)
                .mutation(Mutation::TruncateCms),
            "malformed-cms",
        );
    }
}

#[test]
fn two_signers_are_multiple_signers() {
    rejects(
        Case::new("two", "alice").also_signed_by("bob-ec256"),
        "multiple-signers",
    );
    rejects(
        Case::new("two opaque", "alice")
            .also_signed_by("carol-ec384")
            .shape(Shape::Opaque),
        "multiple-signers",
    );
}

#[test]
fn unknown_ca_is_untrusted_signer() {
    rejects(Case::new("unknown", "mallet"), "untrusted-signer");
    // Shipping the foreign root inside the CMS does not make it trusted.
    rejects(
        Case::new("unknown + root", "mallet").embed("other-root"),
        "untrusted-signer",
    );
}

#[test]
fn missing_intermediate_is_untrusted_signer() {
    rejects(
        Case::new("no intermediate", "ivan")
            .trust(Trust::new(&["root"], &["root-fresh", "inter-fresh"])),
        "untrusted-signer",
    );
}

#[test]
fn end_entity_acting_as_ca_is_certificate_invalid() {
    rejects(
        Case::new("eve", "eve").embed("alice"),
        "certificate-invalid",
    );
}

#[test]
fn path_length_violation_is_certificate_invalid() {
    rejects(
        Case::new("pathlen", "subby")
            .embed("sub-inter")
            .embed("inter")
            .edit_trust(|mut t| {
                t.crls.push("sub-inter-fresh".into());
                t
            }),
        "certificate-invalid",
    );
}

#[test]
fn issuer_without_key_cert_sign_is_certificate_invalid() {
    rejects(
        Case::new("no keyCertSign", "nocertsign-signer")
            .embed("nocertsign-inter")
            .edit_trust(|mut t| {
                t.crls.push("nocertsign-inter-fresh".into());
                t
            }),
        "certificate-invalid",
    );
}

#[test]
fn issuer_without_basic_constraints_is_certificate_invalid() {
    rejects(
        Case::new("no basicConstraints", "nobc-signer")
            .embed("nobc-inter")
            .edit_trust(|mut t| {
                t.crls.push("nobc-inter-fresh".into());
                t
            }),
        "certificate-invalid",
    );
}

#[test]
fn unknown_critical_extension_is_certificate_invalid() {
    rejects(
        Case::new("critical ext", "critical-ext"),
        "certificate-invalid",
    );
}

#[test]
fn forged_signer_certificate_is_untrusted_signer() {
    // Issuer DN and authority key identifier of the root, signature by
    // another key: there is no chain to a trusted CA, also not when the
    // forger's look-alike root travels inside the CMS.
    rejects(Case::new("forged", "forged"), "untrusted-signer");
    rejects(
        Case::new("forged + root look-alike", "forged").embed("evil-root"),
        "untrusted-signer",
    );
}

#[test]
fn twin_certificate_with_the_signers_issuer_and_serial_is_rejected() {
    // Signed with the twin's key; the CMS carries alice's genuine
    // certificate and the twin, both matching the SignerInfo's
    // issuerAndSerialNumber. Neither may lend its chain to the other.
    for order in [["alice-twin", "alice"], ["alice", "alice-twin"]] {
        rejects_any(
            Case::new("twin", "alice-twin")
                .nocerts()
                .embed(order[0])
                .embed(order[1]),
        );
    }
}

#[test]
fn expired_signer_is_certificate_expired() {
    rejects(Case::new("expired", "expired"), "certificate-expired");
}

#[test]
fn not_yet_valid_signer_is_certificate_not_yet_valid() {
    rejects(
        Case::new("not yet valid", "not-yet-valid"),
        "certificate-not-yet-valid",
    );
}

#[test]
fn expired_root_is_certificate_expired() {
    rejects(
        Case::new("expired root", "expired-root-signer")
            .trust(Trust::new(&["expired-root"], &["expired-root-fresh"])),
        "certificate-expired",
    );
}

#[test]
fn not_yet_valid_root_is_certificate_not_yet_valid() {
    rejects(
        Case::new("future root", "future-root-signer")
            .trust(Trust::new(&["future-root"], &["future-root-fresh"])),
        "certificate-not-yet-valid",
    );
}

#[test]
fn expired_intermediate_is_certificate_expired() {
    rejects(
        Case::new("expired inter (cms)", "expired-inter-signer")
            .embed("expired-inter")
            .edit_trust(|mut t| {
                t.crls.push("expired-inter-fresh".into());
                t
            }),
        "certificate-expired",
    );
    rejects(
        Case::new("expired inter (dir)", "expired-inter-signer").edit_trust(|mut t| {
            t.cas.push("expired-inter".into());
            t.crls.push("expired-inter-fresh".into());
            t
        }),
        "certificate-expired",
    );
}

#[test]
fn not_yet_valid_intermediate_is_certificate_not_yet_valid() {
    rejects(
        Case::new("future inter", "future-inter-signer")
            .embed("future-inter")
            .edit_trust(|mut t| {
                t.crls.push("future-inter-fresh".into());
                t
            }),
        "certificate-not-yet-valid",
    );
}

#[test]
fn signer_valid_only_at_another_time() {
    // The same expired signer verifies at a time inside its validity window
    // (with the stale-by-then CRL policy relaxed): --at is honoured.
    accepts(
        Case::new("expired, earlier", "expired")
            .at("2021-06-01T00:00:00Z")
            .crl_policy(CrlPolicy::Ignore)
            .list(|d| d.window(("2021-05-01T00:00:00Z", "2021-07-01T00:00:00Z"))),
    );
}

#[test]
fn revoked_signer_is_certificate_revoked() {
    rejects(Case::new("revoked", "revoked"), "certificate-revoked");
    rejects(
        Case::new("revoked (opaque)", "revoked").shape(Shape::OpaqueStream),
        "certificate-revoked",
    );
}

#[test]
fn revoked_by_intermediate_crl_is_certificate_revoked() {
    rejects(
        Case::new("ivan revoked", "ivan-revoked"),
        "certificate-revoked",
    );
}

#[test]
fn revoked_under_if_present_is_certificate_revoked() {
    rejects(
        Case::new("revoked", "revoked").crl_policy(CrlPolicy::IfPresent),
        "certificate-revoked",
    );
}

#[test]
fn missing_crl_under_require_is_crl_missing() {
    rejects(
        Case::new("no crl", "alice").edit_trust(Trust::without_crls),
        "crl-missing",
    );
    // The root's CRL is there, the issuing intermediate's is not.
    rejects(
        Case::new("no inter crl", "ivan").trust(root_only_with_crl("root-fresh")),
        "crl-missing",
    );
}

#[test]
fn stale_crl_is_crl_stale() {
    for policy in [CrlPolicy::Require, CrlPolicy::IfPresent] {
        rejects(
            Case::new("stale", "alice")
                .crl_policy(policy)
                .trust(root_only_with_crl("root-stale")),
            "crl-stale",
        );
    }
    rejects(
        Case::new("stale inter", "ivan").trust(Trust::new(
            &["root", "inter"],
            &["root-fresh", "inter-stale"],
        )),
        "crl-stale",
    );
}

#[test]
fn crl_issued_after_at_is_crl_stale() {
    for policy in [CrlPolicy::Require, CrlPolicy::IfPresent] {
        rejects(
            Case::new("future crl", "alice")
                .crl_policy(policy)
                .trust(root_only_with_crl("root-future")),
            "crl-stale",
        );
    }
}

#[test]
fn forged_crl_is_crl_invalid() {
    for policy in [CrlPolicy::Require, CrlPolicy::IfPresent] {
        rejects(
            Case::new("forged crl", "alice")
                .crl_policy(policy)
                .trust(root_only_with_crl("root-forged")),
            "crl-invalid",
        );
    }
}

#[test]
fn crl_of_a_ca_without_crl_sign_is_crl_invalid() {
    rejects(
        Case::new("no cRLSign", "nocrlsign-signer")
            .embed("nocrlsign-inter")
            .edit_trust(|mut t| {
                t.crls.push("nocrlsign-inter-fresh".into());
                t
            }),
        "crl-invalid",
    );
}

#[test]
fn unusable_crls_are_rejected() {
    // An unknown critical CRL extension; a CRL scoped to CA certificates
    // only (issuingDistributionPoint onlyContainsCACerts).
    for crl in ["root-critical-ext", "root-ca-only"] {
        rejects_any(Case::new(crl, "alice").trust(root_only_with_crl(crl)));
    }
}

#[test]
fn subject_outside_root_namespace_is_namespace_violation() {
    rejects(Case::new("outsider", "outsider"), "namespace-violation");
}

#[test]
fn subject_outside_intermediate_namespace_is_namespace_violation() {
    // Permitted by the root's policy, not by the issuing intermediate's.
    rejects(Case::new("robot", "robot"), "namespace-violation");
}

#[test]
fn signing_policy_file_is_enforced() {
    rejects(
        Case::new("outsider (signing_policy)", "outsider").trust(
            Trust::new(&["root"], &["root-fresh"])
                .policy(Policy::new("root", &[ROOT_NS]).format(PolicyFormat::SigningPolicy)),
        ),
        "namespace-violation",
    );
}

#[test]
fn namespace_policy_with_wrong_hash_name_is_still_enforced() {
    rejects(
        Case::new("outsider, wrong hash", "outsider").edit_trust(|t| t.naming(Naming::WrongHash)),
        "namespace-violation",
    );
}

#[test]
fn key_encipherment_only_is_key_usage() {
    rejects(Case::new("keyenc", "ku-keyenc"), "key-usage");
}

#[test]
fn eku_server_auth_only_is_key_usage() {
    rejects(Case::new("serverauth", "eku-server"), "key-usage");
}

#[test]
fn host_certificate_without_email_protection_is_key_usage() {
    rejects(Case::new("host", "host"), "key-usage");
}

#[test]
fn sha1_digest_without_allow_is_legacy_algorithm() {
    rejects(
        Case::new("sha1", "alice").digest(Digest::Sha1),
        "legacy-algorithm",
    );
    rejects(
        Case::new("sha1 der", "alice")
            .digest(Digest::Sha1)
            .shape(Shape::Der),
        "legacy-algorithm",
    );
}

#[test]
fn sha1_certificate_without_allow_is_legacy_algorithm() {
    rejects(Case::new("sha1 cert", "sha1-cert"), "legacy-algorithm");
}

#[test]
fn content_that_is_not_json_is_malformed_list() {
    rejects(
        Case::new("not json", "alice").raw_content(b"this is not JSON {"),
        "malformed-list",
    );
    rejects(
        Case::new("array", "alice").raw_content(b"[1, 2, 3]\n"),
        "malformed-list",
    );
}

#[test]
fn list_without_identifier_is_malformed_list() {
    let mut v = ListDoc::for_signer(pki().cert("alice")).value();
    v["hv:imagelist"]
        .as_object_mut()
        .unwrap()
        .remove("dc:identifier");
    rejects(
        Case::new("no identifier", "alice").raw_content(&serde_json::to_vec_pretty(&v).unwrap()),
        "malformed-list",
    );
}

#[test]
fn list_with_bad_date_is_malformed_list() {
    let mut v = ListDoc::for_signer(pki().cert("alice")).value();
    v["hv:imagelist"]["dc:date:created"] = "15 Jan 2026".into();
    rejects(
        Case::new("bad date", "alice").raw_content(&serde_json::to_vec_pretty(&v).unwrap()),
        "malformed-list",
    );
}

#[test]
fn endorser_dn_of_someone_else_is_signer_dn_mismatch() {
    let bob = pki().cert("bob-ec256");
    rejects(
        Case::new("dn", "alice").list(|d| d.dn(&bob.subject)),
        "signer-dn-mismatch",
    );
}

#[test]
fn endorser_ca_of_another_ca_is_signer_dn_mismatch() {
    // ivan is issued by the intermediate; the list names the root.
    rejects(
        Case::new("ca", "ivan").list(|d| d.ca(support::fixtures::ROOT_DN)),
        "signer-dn-mismatch",
    );
}

#[test]
fn endorser_dn_in_another_rdn_order_is_signer_dn_mismatch() {
    // Same attributes, reversed order (RFC 2253 style): not the signer's
    // one-line DN in certificate order.
    let alice = pki().cert("alice");
    let reversed: Vec<&str> = alice
        .subject
        .trim_start_matches('/')
        .split('/')
        .rev()
        .collect();
    let reversed = format!("/{}", reversed.join("/"));
    rejects(
        Case::new("reversed", "alice").list(|d| d.dn(&reversed)),
        "signer-dn-mismatch",
    );
}

#[test]
fn endorser_dn_differing_in_case_is_signer_dn_mismatch() {
    let upper = pki().cert("alice").subject.replace("alice", "Alice");
    rejects(
        Case::new("case", "alice").list(|d| d.dn(&upper)),
        "signer-dn-mismatch",
    );
}

#[test]
fn expired_list_is_list_expired() {
    rejects(
        Case::new("expired list", "alice").list(|d| d.window(LIST_EXPIRED)),
        "list-expired",
    );
}

#[test]
fn list_created_after_at_is_created_in_future() {
    rejects(
        Case::new("future list", "alice").list(|d| d.window(LIST_FUTURE)),
        "created-in-future",
    );
}

#[test]
fn other_endorser_is_endorser_not_authorised() {
    let bob = pki().cert("bob-ec256");
    rejects(
        Case::new("other subject", "alice").endorser(&bob.subject, &bob.issuer),
        "endorser-not-authorised",
    );
}

#[test]
fn right_subject_wrong_issuer_is_endorser_not_authorised() {
    let alice = pki().cert("alice");
    rejects(
        Case::new("other issuer", "alice").endorser(&alice.subject, support::fixtures::INTER_DN),
        "endorser-not-authorised",
    );
}

#[test]
fn standard_trust_store_is_what_the_tests_assume() {
    // Guards the fixtures themselves: root and intermediate with CRLs and
    // namespace policies, every CRL issued by the CA it claims.
    let t = standard_trust();
    assert_eq!(t.cas, ["root", "inter"]);
    for crl in &t.crls {
        let crl = pki().crl(crl);
        assert!(
            crl.issuer == pki().cert("root").subject || crl.issuer == pki().cert("inter").subject
        );
    }
    assert_eq!(pki().cert("root").subject, support::fixtures::ROOT_DN);
    assert_eq!(pki().cert("inter").subject, support::fixtures::INTER_DN);
    assert_eq!(
        pki().cert("alice").subject,
        "/DC=org/DC=example/OU=People/CN=alice/CN=12345"
    );
}
