//! Signing shapes: every way a HEPiX list travels, produced with
//! `openssl smime -sign` / `openssl cms -sign`, plus deliberate damage.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use base64ct::{Base64, Encoding};

use super::der;
use super::list::{MARKER, TAMPERED_MARKER};
use super::openssl;
use super::pki::Cert;

/// Message digest for the CMS signature (`-md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    pub const ALL: [Digest; 4] = [Digest::Sha256, Digest::Sha384, Digest::Sha512, Digest::Sha1];

    pub fn md(self) -> &'static str {
        match self {
            Digest::Sha1 => "sha1",
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
            Digest::Sha512 => "sha512",
        }
    }
}

/// The wire shapes of a signed list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `openssl smime -sign`: clear-signed multipart/signed, detached CMS
    /// (OpenSSL 3 labels it `application/x-pkcs7-signature`).
    Detached,
    /// The same with `-text` (a `Content-Type: text/plain` header inside the
    /// signed part).
    DetachedText,
    /// [`Shape::Detached`] with every CRLF turned into LF (as the 2011
    /// hepixvmitrust lists are stored). OpenSSL's own output has LF in the
    /// MIME structure and CRLF in the signed part (as cloudkeeper's lists).
    DetachedLf,
    /// [`Shape::Detached`] with CRLF everywhere (as after SMTP transport).
    DetachedCrlf,
    /// [`Shape::Detached`] with every other line ending turned into LF.
    DetachedMixed,
    /// [`Shape::DetachedText`] with LF line endings.
    DetachedTextLf,
    /// Protocol and part labelled `application/pkcs7-signature` (RFC 5751,
    /// `openssl cms`, the 2011 hepixvmitrust lists).
    DetachedNewMime,
    /// Protocol and part labelled `application/x-pkcs7-signature` (older
    /// `openssl smime`, cloudkeeper).
    DetachedOldMime,
    /// `-stream` (detached).
    DetachedStream,
    /// `openssl cms -sign` (detached).
    CmsDetached,
    /// `-nodetach`: opaque `application/x-pkcs7-mime`, content inside the CMS.
    Opaque,
    /// Opaque, labelled `application/pkcs7-mime`.
    OpaqueNewMime,
    /// Opaque with `-stream`: BER with indefinite lengths, chunked content.
    OpaqueStream,
    /// Opaque with LF line endings.
    OpaqueLf,
    /// Opaque with `-text`: the embedded content is a MIME entity
    /// (`Content-Type: text/plain` header, blank line, the list).
    OpaqueText,
    /// `-nodetach -outform PEM`: PEM-armoured PKCS#7.
    Pem,
    /// `-nodetach -outform DER` (definite lengths).
    Der,
    /// `-nodetach -outform DER -stream`: BER, indefinite lengths.
    DerStream,
}

impl Shape {
    pub const ALL: [Shape; 18] = [
        Shape::Detached,
        Shape::DetachedText,
        Shape::DetachedLf,
        Shape::DetachedCrlf,
        Shape::DetachedMixed,
        Shape::DetachedTextLf,
        Shape::DetachedNewMime,
        Shape::DetachedOldMime,
        Shape::DetachedStream,
        Shape::CmsDetached,
        Shape::Opaque,
        Shape::OpaqueNewMime,
        Shape::OpaqueStream,
        Shape::OpaqueLf,
        Shape::OpaqueText,
        Shape::Pem,
        Shape::Der,
        Shape::DerStream,
    ];

    pub fn name(self) -> String {
        format!("{self:?}")
    }

    /// `-inform` for `openssl smime -verify`, when not S/MIME.
    pub fn inform(self) -> Option<&'static str> {
        match self {
            Shape::Pem => Some("PEM"),
            Shape::Der | Shape::DerStream => Some("DER"),
            _ => None,
        }
    }

    pub fn is_detached(self) -> bool {
        matches!(
            self,
            Shape::Detached
                | Shape::DetachedText
                | Shape::DetachedLf
                | Shape::DetachedCrlf
                | Shape::DetachedMixed
                | Shape::DetachedTextLf
                | Shape::DetachedNewMime
                | Shape::DetachedOldMime
                | Shape::DetachedStream
                | Shape::CmsDetached
        )
    }

    fn is_smime(self) -> bool {
        self.inform().is_none()
    }

    fn sign_args(self) -> (&'static str, Vec<&'static str>) {
        match self {
            Shape::Detached
            | Shape::DetachedLf
            | Shape::DetachedCrlf
            | Shape::DetachedMixed
            | Shape::DetachedNewMime
            | Shape::DetachedOldMime => ("smime", vec![]),
            Shape::DetachedText | Shape::DetachedTextLf => ("smime", vec!["-text"]),
            Shape::DetachedStream => ("smime", vec!["-stream"]),
            Shape::CmsDetached => ("cms", vec![]),
            Shape::Opaque | Shape::OpaqueNewMime | Shape::OpaqueLf => ("smime", vec!["-nodetach"]),
            Shape::OpaqueStream => ("smime", vec!["-nodetach", "-stream"]),
            Shape::OpaqueText => ("smime", vec!["-nodetach", "-text"]),
            Shape::Pem => ("smime", vec!["-nodetach", "-outform", "PEM"]),
            Shape::Der => ("smime", vec!["-nodetach", "-outform", "DER"]),
            Shape::DerStream => ("smime", vec!["-nodetach", "-outform", "DER", "-stream"]),
        }
    }

    /// Rewrites applied after signing (and after any [`Mutation`]).
    fn finish(self, msg: Vec<u8>) -> Vec<u8> {
        match self {
            Shape::DetachedLf | Shape::DetachedTextLf | Shape::OpaqueLf => crlf_to_lf(&msg),
            Shape::DetachedMixed => mixed_line_endings(&msg),
            Shape::DetachedCrlf => lf_to_crlf(&msg),
            Shape::DetachedNewMime => set_mime_prefix(&msg, "application/pkcs7-"),
            Shape::DetachedOldMime => set_mime_prefix(&msg, "application/x-pkcs7-"),
            Shape::OpaqueNewMime => set_mime_prefix(&msg, "application/pkcs7-"),
            _ => msg,
        }
    }
}

/// A rewrite of a signed message's bytes.
pub type Rewrite = fn(&[u8]) -> Vec<u8>;

/// Deliberate damage (or harmless rewriting), applied to the freshly signed
/// message before the shape's own rewrites.
#[derive(Clone, Debug)]
pub enum Mutation {
    None,
    /// Change the signed content (same length, still a valid list).
    TamperContent,
    /// Flip the last byte of the signer's signature value.
    FlipSignature,
    /// Cut the CMS structure in half.
    TruncateCms,
    /// Change one digit of the signingTime signed attribute.
    TamperSignedAttribute,
    /// Re-wrap the base64 of the CMS at this many characters per line.
    RewrapBase64(usize),
    /// Throw the signed message away and use these bytes instead.
    Replace(Vec<u8>),
    /// Any rewrite of the message bytes (named, for reports).
    Edit(&'static str, Rewrite),
    /// Detached shapes only: replace the detached signature by a valid
    /// *opaque* SignedData of the same list, then change the first part.
    /// The content is there twice, and the copies differ.
    EmbeddedContentInSignaturePart,
}

/// What to sign and how.
#[derive(Clone, Debug)]
pub struct SignSpec<'a> {
    pub signers: Vec<&'a Cert>,
    /// Additional certificates to embed (`-certfile`), e.g. intermediates.
    pub extra_certs: Vec<&'a Cert>,
    pub content: Vec<u8>,
    pub shape: Shape,
    pub digest: Digest,
    /// Leave the signer certificate out (`-nocerts`).
    pub nocerts: bool,
    /// Sign with RSASSA-PSS (`openssl cms -sign -keyopt rsa_padding_mode:pss`).
    pub rsa_pss: bool,
    /// More `openssl smime -sign` options (e.g. `-noattr`, `-nosmimecap`).
    pub extra_args: Vec<String>,
    pub mutation: Mutation,
}

/// Signs in `dir` and returns the message bytes as they would sit on disk.
pub fn sign(dir: &Path, spec: &SignSpec<'_>) -> Vec<u8> {
    let write = |name: &str, data: &[u8]| {
        let p = dir.join(name);
        fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    };
    let content = write("content.json", &spec.content);
    let (mut tool, shape_args) = spec.shape.sign_args();
    if spec.rsa_pss {
        tool = "cms";
    }
    let mut args: Vec<OsString> = vec![tool.into(), "-sign".into(), "-in".into(), content.into()];
    for (i, signer) in spec.signers.iter().enumerate() {
        let cert = write(&format!("signer{i}.pem"), signer.pem.as_bytes());
        let key = write(&format!("signer{i}.key"), signer.key_pem.as_bytes());
        args.extend(["-signer".into(), cert.into(), "-inkey".into(), key.into()]);
    }
    if !spec.extra_certs.is_empty() {
        let pem: String = spec.extra_certs.iter().map(|c| c.pem.as_str()).collect();
        let certfile = write("extra-certs.pem", pem.as_bytes());
        args.extend(["-certfile".into(), certfile.into()]);
    }
    if spec.nocerts {
        args.push("-nocerts".into());
    }
    if spec.rsa_pss {
        args.extend(["-keyopt".into(), "rsa_padding_mode:pss".into()]);
    }
    args.extend(spec.extra_args.iter().map(Into::into));
    let base_args = args.clone();
    args.extend(["-md".into(), spec.digest.md().into()]);
    args.extend(shape_args.iter().map(Into::into));
    let out = dir.join("signed.out");
    args.extend(["-out".into(), out.clone().into()]);
    openssl::run(dir, &args);
    let raw = fs::read(&out).unwrap_or_else(|e| panic!("read {}: {e}", out.display()));
    let mutated = if let Mutation::EmbeddedContentInSignaturePart = spec.mutation {
        assert!(spec.shape.is_detached(), "needs a detached shape");
        let der_out = dir.join("opaque.der");
        let mut opaque = base_args;
        opaque.extend([
            "-md".into(),
            spec.digest.md().into(),
            "-nodetach".into(),
            "-outform".into(),
            "DER".into(),
            "-out".into(),
            der_out.clone().into(),
        ]);
        openssl::run(dir, &opaque);
        let der = fs::read(&der_out).unwrap_or_else(|e| panic!("read {}: {e}", der_out.display()));
        let swapped = map_cms(spec.shape, &raw, |_| der);
        mutate(spec.shape, swapped, &Mutation::TamperContent)
    } else {
        mutate(spec.shape, raw, &spec.mutation)
    };
    spec.shape.finish(mutated)
}

fn mutate(shape: Shape, msg: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    match mutation {
        Mutation::None => msg,
        Mutation::Replace(bytes) => bytes.clone(),
        Mutation::TamperContent if shape.is_detached() => {
            let out = replace_once(&msg, MARKER.as_bytes(), TAMPERED_MARKER.as_bytes());
            assert_ne!(out, msg, "the marker is not in the signed part");
            out
        }
        Mutation::TamperContent => map_cms(shape, &msg, |mut cms| {
            let before = cms.clone();
            cms = replace_once(&cms, MARKER.as_bytes(), TAMPERED_MARKER.as_bytes());
            assert_ne!(cms, before, "the marker is not in the embedded content");
            cms
        }),
        Mutation::FlipSignature => map_cms(shape, &msg, |mut cms| {
            let range = der::signature_value(&cms);
            let last = range.end - 1;
            cms[last] ^= 0x01;
            cms
        }),
        Mutation::TruncateCms => map_cms(shape, &msg, |mut cms| {
            cms.truncate(cms.len() / 2);
            cms
        }),
        Mutation::TamperSignedAttribute => map_cms(shape, &msg, |mut cms| {
            let range = der::signing_time_value(&cms);
            // The last digit before the `Z`: still a valid time.
            let digit = range.end - 2;
            assert!(
                cms[digit].is_ascii_digit(),
                "unexpected signingTime encoding"
            );
            cms[digit] = b'0' + (cms[digit] - b'0' + 1) % 10;
            cms
        }),
        Mutation::RewrapBase64(width) => map_cms_width(shape, &msg, *width, |cms| cms),
        Mutation::Edit(_, edit) => edit(&msg),
        Mutation::EmbeddedContentInSignaturePart => unreachable!("handled by sign()"),
    }
}

/// Replaces the first occurrence of `from` (which must be present).
pub fn replace_once(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    match find(data, from) {
        Some(at) => {
            let mut out = data[..at].to_vec();
            out.extend_from_slice(to);
            out.extend_from_slice(&data[at + from.len()..]);
            out
        }
        None => data.to_vec(),
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Extracts the CMS DER from a freshly signed message (CRLF line endings).
pub fn extract_cms(shape: Shape, msg: &[u8]) -> Vec<u8> {
    let mut out = None;
    let _ = map_cms(shape, msg, |cms| {
        out = Some(cms.clone());
        cms
    });
    out.unwrap_or_default()
}

/// Applies `f` to the CMS DER inside a message and re-wraps the result the
/// way the message carried it (base64 in S/MIME, PEM armour, raw DER).
pub fn map_cms(shape: Shape, msg: &[u8], f: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    map_cms_width(shape, msg, 64, f)
}

/// [`map_cms`], writing base64 lines of `width` characters.
pub fn map_cms_width(
    shape: Shape,
    msg: &[u8],
    width: usize,
    f: impl FnOnce(Vec<u8>) -> Vec<u8>,
) -> Vec<u8> {
    if !shape.is_smime() && shape.inform() == Some("DER") {
        return f(msg.to_vec());
    }
    let text =
        String::from_utf8(msg.to_vec()).unwrap_or_else(|_| panic!("S/MIME or PEM is not UTF-8"));
    // Lines with their own terminators, so that line endings survive as they are.
    let raw: Vec<&str> = text.split_inclusive('\n').collect();
    let lines: Vec<&str> = raw
        .iter()
        .map(|l| l.trim_end_matches(['\r', '\n']))
        .collect();
    let (first, last) = if shape == Shape::Pem {
        let begin = lines
            .iter()
            .position(|l| l.starts_with("-----BEGIN PKCS7-----"))
            .unwrap_or_else(|| panic!("no PEM header"));
        let end = lines
            .iter()
            .position(|l| l.starts_with("-----END PKCS7-----"))
            .unwrap_or_else(|| panic!("no PEM footer"));
        (begin + 1, end)
    } else {
        // The part (or whole message) whose Content-Type is a pkcs7 one.
        let header = lines
            .iter()
            .position(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("content-type:")
                    && (l.contains("pkcs7-signature") || l.contains("pkcs7-mime"))
                    && !l.contains("multipart/")
            })
            .unwrap_or_else(|| panic!("no pkcs7 part in:\n{text}"));
        let body = header
            + lines[header..]
                .iter()
                .position(|l| l.is_empty())
                .unwrap_or_else(|| panic!("pkcs7 part without a body"))
            + 1;
        let end = body
            + lines[body..]
                .iter()
                .position(|l| l.is_empty() || l.starts_with("--"))
                .unwrap_or(lines.len() - body);
        (body, end)
    };
    let b64: String = lines[first..last].concat();
    let cms =
        Base64::decode_vec(b64.trim()).unwrap_or_else(|e| panic!("bad base64 ({e}) in:\n{text}"));
    let cms = f(cms);
    let encoded = Base64::encode_string(&cms);
    let eol = if raw.get(first).is_some_and(|l| l.ends_with("\r\n")) {
        "\r\n"
    } else {
        "\n"
    };
    let mut out: String = raw[..first].concat();
    for chunk in encoded.as_bytes().chunks(width) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str(eol);
    }
    out.push_str(&raw[last..].concat());
    out.into_bytes()
}

/// LF to CRLF everywhere (lines already ending in CRLF stay as they are).
pub fn lf_to_crlf(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 32);
    for (i, &b) in msg.iter().enumerate() {
        if b == b'\n' && (i == 0 || msg[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// CRLF to LF everywhere.
pub fn crlf_to_lf(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len());
    let mut i = 0;
    while i < msg.len() {
        if msg[i] == b'\r' && msg.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(msg[i]);
        i += 1;
    }
    out
}

/// Every other line ending flips between CRLF and LF (headers, signed part
/// and signature part alike).
pub fn mixed_line_endings(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 64);
    let mut crlf = true;
    for &b in &crlf_to_lf(msg) {
        if b == b'\n' {
            if crlf {
                out.push(b'\r');
            }
            crlf = !crlf;
        }
        out.push(b);
    }
    out
}

/// Relabels every `application/[x-]pkcs7-*` media type with `prefix`
/// (`application/pkcs7-` or `application/x-pkcs7-`).
pub fn set_mime_prefix(msg: &[u8], prefix: &str) -> Vec<u8> {
    let mut out = msg.to_vec();
    for from in ["application/x-pkcs7-", "application/pkcs7-"] {
        if from == prefix {
            continue;
        }
        while let Some(at) = find(&out, from.as_bytes()) {
            let mut next = out[..at].to_vec();
            next.extend_from_slice(prefix.as_bytes());
            next.extend_from_slice(&out[at + from.len()..]);
            out = next;
        }
    }
    out
}

// ----------------------------------------------------------------------
// MIME rewrites of a detached (multipart/signed) message, CRLF line endings.

/// The multipart boundary of a multipart/signed message.
pub fn boundary(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    let start = text
        .find("boundary=\"")
        .unwrap_or_else(|| panic!("no quoted boundary parameter in:\n{text}"))
        + "boundary=\"".len();
    let len = text[start..]
        .find('"')
        .unwrap_or_else(|| panic!("unterminated boundary parameter"));
    text[start..start + len].to_owned()
}

/// The line ending of the first header line.
fn eol(msg: &[u8]) -> &'static str {
    match find(msg, b"\n") {
        Some(i) if i > 0 && msg[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// Splits at the delimiter lines: `[preamble, part 1, part 2, "--" + epilogue]`
/// (each piece keeps the line ending that preceded the next delimiter).
fn parts(msg: &[u8]) -> (String, Vec<String>) {
    let text = String::from_utf8(msg.to_vec()).unwrap_or_else(|_| panic!("S/MIME is not UTF-8"));
    let delimiter = format!("\n--{}", boundary(msg));
    let pieces: Vec<String> = text.split(&delimiter).map(str::to_owned).collect();
    assert_eq!(pieces.len(), 4, "not a two-part multipart message");
    (delimiter, pieces)
}

/// Folds the top-level Content-Type header over two lines.
pub fn fold_header(msg: &[u8]) -> Vec<u8> {
    let folded = format!(";{}\tprotocol=", eol(msg));
    replace_once(msg, b"; protocol=", folded.as_bytes())
}

/// Header names in lower case (outer headers and the signature part's).
pub fn lowercase_header_names(msg: &[u8]) -> Vec<u8> {
    let mut out = msg.to_vec();
    for (from, to) in [
        ("MIME-Version:", "mime-version:"),
        ("Content-Type:", "content-type:"),
        ("Content-Transfer-Encoding:", "content-transfer-encoding:"),
        ("Content-Disposition:", "content-disposition:"),
    ] {
        while find(&out, from.as_bytes()).is_some() {
            out = replace_once(&out, from.as_bytes(), to.as_bytes());
        }
    }
    out
}

/// `boundary=X` instead of `boundary="X"` (legal: the boundary is a token).
pub fn unquote_boundary(msg: &[u8]) -> Vec<u8> {
    let b = boundary(msg);
    replace_once(
        msg,
        format!("boundary=\"{b}\"").as_bytes(),
        format!("boundary={b}").as_bytes(),
    )
}

/// Text after the closing delimiter (an epilogue, ignored by MIME).
pub fn add_epilogue(msg: &[u8]) -> Vec<u8> {
    let mut out = msg.to_vec();
    out.extend_from_slice(b"This is the epilogue. It is not signed.");
    out.extend_from_slice(eol(msg).as_bytes());
    out
}

/// A `micalg` that does not match the digest actually used.
pub fn wrong_micalg(msg: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(msg);
    let start = text.find("micalg=").unwrap_or_else(|| panic!("no micalg")) + "micalg=".len();
    let rest = &text[start..];
    let end = if let Some(quoted) = rest.strip_prefix('"') {
        1 + quoted.find('"').unwrap_or(0) + 1
    } else {
        rest.find([';', '\r', '\n']).unwrap_or(rest.len())
    };
    let mut out = text[..start].to_owned();
    out.push_str("\"sha-512\"");
    out.push_str(&rest[end..]);
    out.into_bytes()
}

/// A third body part next to the content and the signature.
pub fn add_third_part(msg: &[u8]) -> Vec<u8> {
    let (delimiter, mut pieces) = parts(msg);
    pieces.insert(
        3,
        "\r\nContent-Type: text/plain\r\n\r\nan extra part".to_owned(),
    );
    pieces.join(&delimiter).into_bytes()
}

/// A third body part between the content and the signature.
pub fn add_middle_part(msg: &[u8]) -> Vec<u8> {
    let (delimiter, mut pieces) = parts(msg);
    let e = eol(msg);
    pieces.insert(
        2,
        format!("{e}Content-Type: text/plain{e}{e}an extra part{e}"),
    );
    pieces.join(&delimiter).into_bytes()
}

/// The signature part first, the content second.
pub fn swap_parts(msg: &[u8]) -> Vec<u8> {
    let (delimiter, mut pieces) = parts(msg);
    pieces.swap(1, 2);
    pieces.join(&delimiter).into_bytes()
}

/// Changes the signed inner header of a `-text` message.
pub fn tamper_inner_header(msg: &[u8]) -> Vec<u8> {
    let out = replace_once(
        msg,
        b"Content-Type: text/plain",
        b"Content-Type: text/plaim",
    );
    assert_ne!(out, msg, "no inner text/plain header");
    out
}
