//! Just enough BER/DER walking to find and damage parts of a CMS SignedData
//! (definite and indefinite lengths, single-byte tags).

/// One tag-length-value.
#[derive(Clone, Copy, Debug)]
pub struct Tlv {
    pub tag: u8,
    pub start: usize,
    pub content_start: usize,
    /// End of the content (before the end-of-contents octets, if indefinite).
    pub content_end: usize,
    /// End of the whole element.
    pub end: usize,
}

impl Tlv {
    pub fn constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }
}

/// Reads the element starting at `pos`.
pub fn read(data: &[u8], pos: usize) -> Tlv {
    let byte = |i: usize| -> u8 {
        *data.get(i).unwrap_or_else(|| {
            panic!(
                "BER element at {pos} runs past the end ({} bytes)",
                data.len()
            )
        })
    };
    let tag = byte(pos);
    assert!(
        tag & 0x1f != 0x1f,
        "multi-byte tags are not supported (at {pos})"
    );
    let first = byte(pos + 1);
    if first == 0x80 {
        // Indefinite: children up to the 00 00 end-of-contents.
        let content_start = pos + 2;
        let mut p = content_start;
        while !(byte(p) == 0 && byte(p + 1) == 0) {
            p = read(data, p).end;
        }
        return Tlv {
            tag,
            start: pos,
            content_start,
            content_end: p,
            end: p + 2,
        };
    }
    let (len, header) = if first & 0x80 == 0 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        assert!((1..=4).contains(&n), "unsupported length form at {pos}");
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(byte(pos + 2 + i));
        }
        (len, 2 + n)
    };
    let content_start = pos + header;
    let end = content_start + len;
    assert!(end <= data.len(), "BER element at {pos} runs past the end");
    Tlv {
        tag,
        start: pos,
        content_start,
        content_end: end,
        end,
    }
}

/// The children of a constructed element.
pub fn children(data: &[u8], tlv: &Tlv) -> Vec<Tlv> {
    assert!(tlv.constructed(), "element at {} is primitive", tlv.start);
    let mut out = Vec::new();
    let mut p = tlv.content_start;
    while p < tlv.content_end {
        let child = read(data, p);
        p = child.end;
        out.push(child);
    }
    out
}

/// The SignerInfos of a CMS ContentInfo(SignedData).
pub fn signer_infos(cms: &[u8]) -> Vec<Tlv> {
    let content_info = read(cms, 0);
    let explicit = children(cms, &content_info)
        .into_iter()
        .find(|t| t.tag == 0xa0)
        .unwrap_or_else(|| panic!("ContentInfo without [0] content"));
    let signed_data = children(cms, &explicit)[0];
    let parts = children(cms, &signed_data);
    let signer_infos = parts
        .last()
        .copied()
        .unwrap_or_else(|| panic!("empty SignedData"));
    assert_eq!(signer_infos.tag, 0x31, "last SignedData field is not a SET");
    children(cms, &signer_infos)
}

/// The signature value (OCTET STRING content range) of the first signer.
pub fn signature_value(cms: &[u8]) -> std::ops::Range<usize> {
    let signer = signer_infos(cms)
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no SignerInfo"));
    let sig = children(cms, &signer)
        .into_iter()
        .rev()
        .find(|t| t.tag == 0x04)
        .unwrap_or_else(|| panic!("SignerInfo without a signature OCTET STRING"));
    sig.content_start..sig.content_end
}

/// The value (content range) of the first signer's signingTime attribute.
pub fn signing_time_value(cms: &[u8]) -> std::ops::Range<usize> {
    const SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
    let signer = signer_infos(cms)
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no SignerInfo"));
    let attrs = children(cms, &signer)
        .into_iter()
        .find(|t| t.tag == 0xa0)
        .unwrap_or_else(|| panic!("SignerInfo without signed attributes"));
    for attr in children(cms, &attrs) {
        let parts = children(cms, &attr);
        if parts.len() == 2 && &cms[parts[0].content_start..parts[0].content_end] == SIGNING_TIME {
            let value = children(cms, &parts[1])[0];
            return value.content_start..value.content_end;
        }
    }
    panic!("no signingTime attribute")
}

/// Encodes one tag-length-value (definite length).
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap_or(0));
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The minimal two's-complement content octets of an INTEGER.
pub fn integer(value: i128) -> Vec<u8> {
    let mut bytes = value.to_be_bytes().to_vec();
    while bytes.len() > 1
        && ((bytes[0] == 0 && bytes[1] & 0x80 == 0) || (bytes[0] == 0xff && bytes[1] & 0x80 != 0))
    {
        bytes.remove(0);
    }
    bytes
}
