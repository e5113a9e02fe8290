//! Splitting a signed message into its signed content and its CMS blob.
//!
//! Image lists travel in every shape `openssl smime` can write, and files
//! on disk may have been through tools that changed their line endings. This
//! module recognises the shape, and for clear-signed messages rebuilds the
//! exact bytes the signer hashed: the first MIME part, canonicalised to CRLF,
//! without the line break that belongs to the closing boundary.

use thiserror::Error;

/// Header blocks longer than this are not an S/MIME message.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How the signature was wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// `multipart/signed` with a detached signature (the usual list format).
    MultipartSigned,
    /// `application/pkcs7-mime` with the content inside the SignedData.
    OpaqueMime,
    /// `-----BEGIN PKCS7-----` armour.
    Pem,
    /// A bare DER or BER SignedData.
    Der,
}

/// The parts of a signed message, before any cryptography.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub shape: Shape,
    /// The CMS ContentInfo, as BER or DER.
    pub cms: Vec<u8>,
    /// For detached signatures, the canonical signed bytes.
    pub detached_content: Option<Vec<u8>>,
}

/// Why a message could not be taken apart.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SmimeError {
    #[error("no MIME header block")]
    NoHeaders,
    #[error("no Content-Type header")]
    NoContentType,
    #[error("unsupported Content-Type {0:?}")]
    UnsupportedContentType(String),
    #[error("multipart/signed without a boundary parameter")]
    NoBoundary,
    #[error("boundary {0:?} not found")]
    BoundaryNotFound(String),
    #[error("closing boundary missing")]
    NoClosingBoundary,
    #[error("multipart/signed with more than two parts")]
    ExtraParts,
    #[error("signature part has Content-Type {0:?}, expected application/pkcs7-signature")]
    BadSignaturePart(String),
    #[error("unsupported Content-Transfer-Encoding {0:?}")]
    UnsupportedEncoding(String),
    #[error("invalid base64 in the signature")]
    Base64,
    #[error("invalid PEM armour: {0}")]
    Pem(String),
    #[error("header block longer than {MAX_HEADER_BYTES} bytes")]
    HeadersTooLong,
}

/// Recognises the shape of `message` and splits it.
pub fn split(message: &[u8]) -> Result<Envelope, SmimeError> {
    let trimmed = trim_ascii_start(message);
    if trimmed.first() == Some(&0x30) {
        return Ok(Envelope {
            shape: Shape::Der,
            cms: trimmed.to_vec(),
            detached_content: None,
        });
    }
    if trimmed.starts_with(b"-----BEGIN ") {
        return pem(trimmed);
    }
    mime(message)
}

fn trim_ascii_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn pem(text: &[u8]) -> Result<Envelope, SmimeError> {
    let text = std::str::from_utf8(text).map_err(|_| SmimeError::Pem("not ASCII".into()))?;
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .next()
        .and_then(|line| line.strip_prefix("-----BEGIN "))
        .and_then(|line| line.strip_suffix("-----"))
        .ok_or_else(|| SmimeError::Pem("bad BEGIN line".into()))?;
    if !matches!(label, "PKCS7" | "CMS" | "PKCS #7 SIGNED DATA") {
        return Err(SmimeError::Pem(format!("unexpected label {label:?}")));
    }
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut closed = false;
    for line in lines {
        if line == end {
            closed = true;
            break;
        }
        body.push_str(line);
    }
    if !closed {
        return Err(SmimeError::Pem("no END line".into()));
    }
    Ok(Envelope {
        shape: Shape::Pem,
        cms: decode_base64(body.as_bytes())?,
        detached_content: None,
    })
}

/// One parsed header block.
struct Headers {
    /// (lower-cased name, unfolded value)
    fields: Vec<(String, String)>,
}

impl Headers {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads a header block at the start of `bytes`; returns it and the offset of
/// the body (after the empty line).
fn parse_headers(bytes: &[u8]) -> Result<(Headers, usize), SmimeError> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    loop {
        if pos > MAX_HEADER_BYTES {
            return Err(SmimeError::HeadersTooLong);
        }
        let (line, next) = next_line(bytes, pos).ok_or(SmimeError::NoHeaders)?;
        pos = next;
        if line.is_empty() {
            break;
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with([' ', '\t']) {
            match fields.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                None => return Err(SmimeError::NoHeaders),
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.is_empty() && !name.contains(' ') => {
                fields.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
            _ => return Err(SmimeError::NoHeaders),
        }
    }
    if fields.is_empty() {
        return Err(SmimeError::NoHeaders);
    }
    Ok((Headers { fields }, pos))
}

/// The line starting at `pos` without its terminator, and the position after
/// the terminator (CRLF or LF). `None` at the end of input.
fn next_line(bytes: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    if pos >= bytes.len() {
        return None;
    }
    let rest = &bytes[pos..];
    match rest.iter().position(|byte| *byte == b'\n') {
        Some(lf) => {
            let line = &rest[..lf];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Some((line, pos + lf + 1))
        }
        None => Some((rest, bytes.len())),
    }
}

/// A Content-Type value: the lower-cased media type and its parameters
/// (lower-cased names, unquoted values).
fn parse_content_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = split_params(value).into_iter();
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|part| {
            let (name, value) = part.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some((name.trim().to_ascii_lowercase(), value.to_string()))
        })
        .collect();
    (media, params)
}

/// Splits on `;` outside double quotes.
fn split_params(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for ch in value.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                current.push(ch);
            }
            ';' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    parts.push(current);
    parts
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn mime(message: &[u8]) -> Result<Envelope, SmimeError> {
    let (headers, body_start) = parse_headers(message)?;
    let content_type = headers
        .get("content-type")
        .ok_or(SmimeError::NoContentType)?;
    let (media, params) = parse_content_type(content_type);
    let body = &message[body_start..];
    match media.as_str() {
        "multipart/signed" => {
            let boundary = param(&params, "boundary").ok_or(SmimeError::NoBoundary)?;
            multipart(body, boundary)
        }
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
            let cms = transfer_decode(headers.get("content-transfer-encoding"), body)?;
            Ok(Envelope {
                shape: Shape::OpaqueMime,
                cms,
                detached_content: None,
            })
        }
        _ => Err(SmimeError::UnsupportedContentType(media)),
    }
}

fn transfer_decode(encoding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, SmimeError> {
    match encoding.map(|value| value.trim().to_ascii_lowercase()) {
        None => decode_base64(body),
        Some(value) if value == "base64" => decode_base64(body),
        Some(value) if value == "binary" => Ok(body.to_vec()),
        Some(value) => Err(SmimeError::UnsupportedEncoding(value)),
    }
}

fn decode_base64(body: &[u8]) -> Result<Vec<u8>, SmimeError> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    use base64ct::Encoding as _;
    base64ct::Base64::decode_vec(std::str::from_utf8(&compact).map_err(|_| SmimeError::Base64)?)
        .map_err(|_| SmimeError::Base64)
}

/// Finds the lines that are exactly `--boundary` or `--boundary--` (trailing
/// whitespace allowed, as RFC 2046 says). Returns (line start, line end after
/// terminator, is_closing) for each.
fn delimiter_lines(body: &[u8], boundary: &str) -> Vec<(usize, usize, bool)> {
    let dash = format!("--{boundary}");
    let mut found = Vec::new();
    for start in memchr::memmem::find_iter(body, dash.as_bytes()) {
        // Only at the start of a line.
        if start > 0 && body[start - 1] != b'\n' {
            continue;
        }
        let next = memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |lf| start + lf + 1);
        let line = &body[start..next];
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let rest = &line[dash.len()..];
        let closing = rest.starts_with(b"--");
        let tail = if closing { &rest[2..] } else { rest };
        if tail.iter().all(|byte| *byte == b' ' || *byte == b'\t') {
            found.push((start, next, closing));
        }
    }
    found
}

fn multipart(body: &[u8], boundary: &str) -> Result<Envelope, SmimeError> {
    let delimiters = delimiter_lines(body, boundary);
    let (first, second, third) = match delimiters.as_slice() {
        [first, second, third, ..] => (*first, *second, *third),
        [_, _] => return Err(SmimeError::NoClosingBoundary),
        _ => return Err(SmimeError::BoundaryNotFound(boundary.to_string())),
    };
    if first.2 || second.2 {
        return Err(SmimeError::BoundaryNotFound(boundary.to_string()));
    }
    // multipart/signed has exactly two parts: the content and the signature.
    if !third.2 {
        return Err(SmimeError::ExtraParts);
    }

    // The signed part ends before the line break that precedes the delimiter.
    let signed = strip_final_line_break(&body[first.1..second.0]);
    let content = canonical_crlf(signed);

    let part = &body[second.1..third.0];
    let (part_headers, part_body) = parse_headers(part)?;
    let part_type = part_headers
        .get("content-type")
        .ok_or(SmimeError::NoContentType)?;
    let (media, _) = parse_content_type(part_type);
    if !matches!(
        media.as_str(),
        "application/pkcs7-signature" | "application/x-pkcs7-signature"
    ) {
        return Err(SmimeError::BadSignaturePart(media));
    }
    let cms = transfer_decode(
        part_headers.get("content-transfer-encoding"),
        &part[part_body..],
    )?;
    Ok(Envelope {
        shape: Shape::MultipartSigned,
        cms,
        detached_content: Some(content),
    })
}

fn strip_final_line_break(bytes: &[u8]) -> &[u8] {
    if let Some(rest) = bytes.strip_suffix(b"\r\n") {
        rest
    } else if let Some(rest) = bytes.strip_suffix(b"\n") {
        rest
    } else {
        bytes
    }
}

/// Rewrites every bare LF as CRLF, leaving existing CRLFs alone.
///
/// Copies whole lines at a time: lists are hundreds of kilobytes and this
/// runs on every verification.
pub fn canonical_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32 + 2);
    let mut start = 0;
    for lf in memchr::memchr_iter(b'\n', bytes) {
        let line = &bytes[start..lf];
        out.extend_from_slice(line);
        if line.last() != Some(&b'\r') {
            out.push(b'\r');
        }
        out.push(b'\n');
        start = lf + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out
}

/// Removes the MIME header block that `openssl smime -sign -text` puts in
/// front of the signed content, so the caller gets the bare document.
/// Content that does not start with a `Content-Type` header block is
/// returned unchanged.
pub fn strip_inner_headers(content: &[u8]) -> &[u8] {
    let looks_like_headers = content
        .get(..13)
        .is_some_and(|start| start.eq_ignore_ascii_case(b"content-type:"));
    if !looks_like_headers {
        return content;
    }
    match parse_headers(content) {
        Ok((_, body)) => &content[body..],
        Err(_) => content,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const SIG: &str = "MAMCAQE=";

    fn clear_signed(eol: &str, body: &str) -> Vec<u8> {
        format!(
            "MIME-Version: 1.0{eol}Content-Type: multipart/signed; protocol=\"application/x-pkcs7-signature\"; micalg=\"sha-256\";{eol} boundary=\"----B;x\"{eol}{eol}This is an S/MIME signed message{eol}{eol}------B;x{eol}{body}{eol}------B;x{eol}Content-Type: application/x-pkcs7-signature; name=\"smime.p7s\"{eol}Content-Transfer-Encoding: base64{eol}{eol}{SIG}{eol}{eol}------B;x--{eol}{eol}"
        )
        .into_bytes()
    }

    #[test]
    fn multipart_content_is_crlf_canonical_without_the_delimiter_break() {
        for eol in ["\n", "\r\n"] {
            let envelope = split(&clear_signed(eol, "{\n  \"a\": 1\r\n}")).unwrap();
            assert_eq!(envelope.shape, Shape::MultipartSigned);
            assert_eq!(
                envelope.detached_content.as_deref(),
                Some(&b"{\r\n  \"a\": 1\r\n}"[..])
            );
            assert_eq!(envelope.cms, vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        }
    }

    #[test]
    fn boundary_lookalikes_inside_content_are_not_delimiters() {
        let envelope = split(&clear_signed("\n", "------B;xx\nmore")).unwrap();
        assert_eq!(
            envelope.detached_content.as_deref(),
            Some(&b"------B;xx\r\nmore"[..])
        );
    }

    #[test]
    fn opaque_and_pem_and_der() {
        let opaque = format!(
            "MIME-Version: 1.0\nContent-Disposition: attachment; filename=\"smime.p7m\"\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"\nContent-Transfer-Encoding: base64\n\n{SIG}\n"
        );
        let envelope = split(opaque.as_bytes()).unwrap();
        assert_eq!(envelope.shape, Shape::OpaqueMime);
        assert_eq!(envelope.cms, vec![0x30, 0x03, 0x02, 0x01, 0x01]);

        let pem = format!("-----BEGIN PKCS7-----\n{SIG}\n-----END PKCS7-----\n");
        let envelope = split(pem.as_bytes()).unwrap();
        assert_eq!(envelope.shape, Shape::Pem);
        assert_eq!(envelope.cms, vec![0x30, 0x03, 0x02, 0x01, 0x01]);

        let envelope = split(&[0x30, 0x80, 0, 0]).unwrap();
        assert_eq!(envelope.shape, Shape::Der);
    }

    #[test]
    fn malformed_messages_have_specific_errors() {
        assert_eq!(split(b""), Err(SmimeError::NoHeaders));
        assert_eq!(
            split(b"garbage without colon\n\n"),
            Err(SmimeError::NoHeaders)
        );
        assert_eq!(split(b"Subject: x\n\nbody"), Err(SmimeError::NoContentType));
        assert_eq!(
            split(b"Content-Type: text/plain\n\nbody"),
            Err(SmimeError::UnsupportedContentType("text/plain".into()))
        );
        assert_eq!(
            split(b"Content-Type: multipart/signed\n\nbody"),
            Err(SmimeError::NoBoundary)
        );
        assert_eq!(
            split(b"Content-Type: multipart/signed; boundary=zz\n\n--zz\nA\n--zz\n"),
            Err(SmimeError::NoClosingBoundary)
        );
        assert_eq!(
            split(b"-----BEGIN PKCS7-----\nMAMCAQE=\n"),
            Err(SmimeError::Pem("no END line".into()))
        );
        assert_eq!(
            split(b"Content-Type: application/pkcs7-mime\n\n!!!"),
            Err(SmimeError::Base64)
        );
    }

    #[test]
    fn inner_text_headers_are_stripped() {
        assert_eq!(
            strip_inner_headers(b"Content-Type: text/plain\r\n\r\n{\"a\":1}"),
            b"{\"a\":1}"
        );
        assert_eq!(strip_inner_headers(b"{\"a\":1}"), b"{\"a\":1}");
    }

    #[test]
    fn canonical_crlf_handles_mixed_endings() {
        assert_eq!(canonical_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    }
}
