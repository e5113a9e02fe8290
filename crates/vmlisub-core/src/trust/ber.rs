//! BER to DER normalisation for CMS messages.
//!
//! `openssl smime -sign -stream` (and other streaming signers) emit BER:
//! indefinite lengths and constructed OCTET STRINGs split into chunks. The
//! `der` crate only reads DER, so the message is rewritten into DER first:
//! definite minimal lengths, and universal constructed OCTET STRINGs folded
//! into primitive ones. Nothing else is changed, so everything that was DER
//! already (certificates, signed attributes) keeps its exact bytes.
//!
//! The walk is bounded in depth, and its output is never larger than its
//! input plus a few bytes per element, so hostile input cannot make it
//! allocate without bound.

use thiserror::Error;

/// Nesting deeper than this is not a CMS message anyone sends.
const MAX_DEPTH: usize = 64;

/// Why a BER encoding could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BerError {
    #[error("truncated encoding at offset {0}")]
    Truncated(usize),
    #[error("invalid length at offset {0}")]
    InvalidLength(usize),
    #[error("indefinite length on a primitive element at offset {0}")]
    IndefinitePrimitive(usize),
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("trailing data after the outermost element ({0} bytes)")]
    TrailingData(usize),
    #[error("a constructed OCTET STRING holds a non-OCTET STRING element at offset {0}")]
    BadStringChunk(usize),
}

/// Identifier octets of one element.
#[derive(Debug, Clone, Copy)]
struct Tag<'a> {
    /// The raw identifier octets (one or more, for high tag numbers).
    raw: &'a [u8],
    constructed: bool,
}

impl Tag<'_> {
    /// Universal, constructed OCTET STRING (0x24): the only string type CMS
    /// signers split into chunks.
    fn is_constructed_octet_string(&self) -> bool {
        self.raw == [0x24]
    }
}

/// Rewrites one BER element (the whole input) into DER.
pub fn to_der(input: &[u8]) -> Result<Vec<u8>, BerError> {
    let mut out = Vec::with_capacity(input.len());
    let consumed = element(input, 0, 0, &mut out)?;
    if consumed != input.len() {
        return Err(BerError::TrailingData(input.len() - consumed));
    }
    Ok(out)
}

/// Reads identifier octets at `pos`; returns the tag and the position after it.
fn read_tag(input: &[u8], pos: usize) -> Result<(Tag<'_>, usize), BerError> {
    let first = *input.get(pos).ok_or(BerError::Truncated(pos))?;
    let mut end = pos + 1;
    if first & 0x1f == 0x1f {
        // High tag number: base-128 octets, the last one without bit 8.
        loop {
            let byte = *input.get(end).ok_or(BerError::Truncated(end))?;
            end += 1;
            if end - pos > 6 {
                return Err(BerError::InvalidLength(pos));
            }
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    Ok((
        Tag {
            raw: &input[pos..end],
            constructed: first & 0x20 != 0,
        },
        end,
    ))
}

/// Reads length octets at `pos`: `Some(len)` or `None` for indefinite.
fn read_length(input: &[u8], pos: usize) -> Result<(Option<usize>, usize), BerError> {
    let first = *input.get(pos).ok_or(BerError::Truncated(pos))?;
    if first < 0x80 {
        return Ok((Some(usize::from(first)), pos + 1));
    }
    if first == 0x80 {
        return Ok((None, pos + 1));
    }
    let count = usize::from(first & 0x7f);
    if count > 4 {
        // Over 4 GiB: not a message we accept.
        return Err(BerError::InvalidLength(pos));
    }
    let bytes = input
        .get(pos + 1..pos + 1 + count)
        .ok_or(BerError::Truncated(pos + 1))?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
    Ok((Some(len), pos + 1 + count))
}

fn write_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|byte| **byte == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Writes `tag`, the DER length of `content` and `content`.
fn write_element(tag: &[u8], content: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(tag);
    write_length(content.len(), out);
    out.extend_from_slice(content);
}

/// Converts the element at `pos`, appending its DER form to `out`.
/// Returns the position just after the element in `input`.
fn element(input: &[u8], pos: usize, depth: usize, out: &mut Vec<u8>) -> Result<usize, BerError> {
    if depth > MAX_DEPTH {
        return Err(BerError::TooDeep);
    }
    let (tag, after_tag) = read_tag(input, pos)?;
    let (length, content_start) = read_length(input, after_tag)?;

    if !tag.constructed {
        let len = length.ok_or(BerError::IndefinitePrimitive(pos))?;
        let end = content_start
            .checked_add(len)
            .filter(|end| *end <= input.len())
            .ok_or(BerError::Truncated(content_start))?;
        write_element(tag.raw, &input[content_start..end], out);
        return Ok(end);
    }

    // Constructed: convert the children into a scratch buffer, then emit.
    let mut children = Vec::new();
    let end = match length {
        Some(len) => {
            let end = content_start
                .checked_add(len)
                .filter(|end| *end <= input.len())
                .ok_or(BerError::Truncated(content_start))?;
            let mut cursor = content_start;
            while cursor < end {
                cursor = element(&input[..end], cursor, depth + 1, &mut children)?;
            }
            end
        }
        None => {
            let mut cursor = content_start;
            loop {
                match input.get(cursor..cursor + 2) {
                    Some([0, 0]) => break cursor + 2,
                    Some(_) => cursor = element(input, cursor, depth + 1, &mut children)?,
                    None => return Err(BerError::Truncated(cursor)),
                }
            }
        }
    };

    if tag.is_constructed_octet_string() {
        let mut flat = Vec::with_capacity(children.len());
        flatten_octet_string_chunks(&children, &mut flat)?;
        write_element(&[0x04], &flat, out);
    } else {
        write_element(tag.raw, &children, out);
    }
    Ok(end)
}

/// Concatenates the contents of DER OCTET STRING chunks.
fn flatten_octet_string_chunks(mut chunks: &[u8], out: &mut Vec<u8>) -> Result<(), BerError> {
    let base = chunks.len();
    while !chunks.is_empty() {
        let offset = base - chunks.len();
        let (tag, after_tag) = read_tag(chunks, 0)?;
        // Children were already folded, so every chunk is primitive now.
        if tag.raw != [0x04] {
            return Err(BerError::BadStringChunk(offset));
        }
        let (length, start) = read_length(chunks, after_tag)?;
        let len = length.ok_or(BerError::IndefinitePrimitive(offset))?;
        let end = start
            .checked_add(len)
            .filter(|end| *end <= chunks.len())
            .ok_or(BerError::Truncated(offset))?;
        out.extend_from_slice(&chunks[start..end]);
        chunks = &chunks[end..];
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn der_passes_through_unchanged() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xff];
        assert_eq!(to_der(&der).unwrap(), der);
    }

    #[test]
    fn indefinite_sequence_becomes_definite() {
        let ber = [0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00];
        assert_eq!(to_der(&ber).unwrap(), [0x30, 0x03, 0x02, 0x01, 0x05]);
    }

    #[test]
    fn chunked_octet_string_is_folded() {
        // [0] EXPLICIT { OCTET STRING (constructed, indefinite) { "ab", "c" } }
        let ber = [
            0xa0, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x00,
            0x00,
        ];
        assert_eq!(
            to_der(&ber).unwrap(),
            [0xa0, 0x05, 0x04, 0x03, b'a', b'b', b'c']
        );
    }

    #[test]
    fn non_minimal_lengths_are_shortened() {
        let ber = [0x04, 0x82, 0x00, 0x01, 0x7a];
        assert_eq!(to_der(&ber).unwrap(), [0x04, 0x01, 0x7a]);
    }

    #[test]
    fn long_content_gets_long_form_length() {
        let mut ber = vec![0x04, 0x80 | 0x02, 0x01, 0x00];
        ber.extend(std::iter::repeat_n(7u8, 256));
        let der = to_der(&ber).unwrap();
        assert_eq!(&der[..4], &[0x04, 0x82, 0x01, 0x00]);
    }

    #[test]
    fn hostile_inputs_are_errors_not_panics() {
        assert_eq!(to_der(&[]), Err(BerError::Truncated(0)));
        assert_eq!(to_der(&[0x30, 0x80]), Err(BerError::Truncated(2)));
        assert_eq!(
            to_der(&[0x04, 0x80, 0, 0]),
            Err(BerError::IndefinitePrimitive(0))
        );
        assert_eq!(to_der(&[0x04, 0x05, 1]), Err(BerError::Truncated(2)));
        assert_eq!(
            to_der(&[0x04, 0x89, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
            Err(BerError::InvalidLength(1))
        );
        assert_eq!(to_der(&[0x04, 0x00, 0x00]), Err(BerError::TrailingData(1)));
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 200).flatten().collect();
        assert_eq!(to_der(&deep), Err(BerError::TooDeep));
        assert!(matches!(
            to_der(&[0x24, 0x03, 0x02, 0x01, 0x00]),
            Err(BerError::BadStringChunk(0))
        ));
    }
}
