//! From bytes to a typed [`ImageList`].
//!
//! Two tiers of failure, on purpose:
//! * list-level problems ([`ListError`]) reject the whole document: without a
//!   valid identifier, dates, version and endorser nothing about the list can
//!   be decided safely;
//! * image-level problems drop only that image and are reported in
//!   [`Parsed::rejected`]: one publisher typo must not expire every other
//!   image of a VO-wide list (the original dropped such images silently).
//!
//! Optional informational keys with an unexpected type (say a numeric
//! `ad:appid`) are neither fatal nor lost: the typed field stays empty, the
//! value is kept verbatim among the unknown keys, and a warning says so.

use super::checksum::Sha512Hex;
use super::error::{ImageError, ListError, RejectedImage};
use super::identifier::{ImageId, ListId, sanitize_for_report};
use super::json::{self, ReadLimits, type_name};
use super::model::{Endorser, Image, ImageList, X509Endorser};
use super::timestamp::parse_timestamp;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Bounds on what [`parse_with_limits`] accepts. The defaults are far above
/// any list seen in practice (the largest VO-wide AppDB lists have a few
/// hundred images of a few KiB each) and low enough to keep a hostile list
/// from exhausting memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum document size in bytes.
    pub max_bytes: usize,
    /// Maximum number of entries in `hv:images`.
    pub max_images: usize,
    /// Maximum length of any JSON string (keys included), in bytes.
    pub max_string_bytes: usize,
    /// Maximum nesting of arrays and objects (a list needs 5).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024 * 1024,
            max_images: 10_000,
            max_string_bytes: 64 * 1024,
            max_depth: 64,
        }
    }
}

/// Maximum number of warnings collected; further ones are summarised, so that
/// a hostile list cannot flood status fields and logs.
pub const MAX_WARNINGS: usize = 100;

/// Maximum number of other indexes listed in a duplicate-identifier report.
const MAX_DUPLICATE_INDEXES: usize = 8;

/// The result of parsing a list document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Parsed {
    /// The list, holding only the images that passed validation.
    pub list: ImageList,
    /// Non-fatal oddities (legacy format, ignored keys, unexpected types of
    /// informational keys, ...), capped at [`MAX_WARNINGS`].
    pub warnings: Vec<String>,
    /// Images that were dropped, and why, in list order.
    pub rejected: Vec<RejectedImage>,
}

/// Parses a list document (the JSON part of the signed message) with the
/// default [`Limits`]. Never panics, whatever the input.
pub fn parse(bytes: &[u8]) -> Result<Parsed, ListError> {
    parse_with_limits(bytes, &Limits::default())
}

/// Parses a list document with explicit [`Limits`].
pub fn parse_with_limits(bytes: &[u8], limits: &Limits) -> Result<Parsed, ListError> {
    if bytes.len() > limits.max_bytes {
        return Err(ListError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let mut warnings = Warnings::default();
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => {
            warnings.push("document starts with a UTF-8 byte order mark (ignored)".to_owned());
            rest
        }
        None => bytes,
    };
    let read_limits = ReadLimits {
        max_string_bytes: limits.max_string_bytes,
        max_depth: limits.max_depth,
    };
    let root = json::read(bytes, read_limits).map_err(|e| ListError::Json {
        message: e.to_string(),
    })?;
    let Value::Object(mut top) = root else {
        return Err(ListError::NotAnObject {
            key: "(document)",
            found: type_name(&root),
        });
    };
    let body = match top.shift_remove("hv:imagelist") {
        Some(Value::Object(body)) => {
            if !top.is_empty() {
                warnings.push(format!(
                    "keys beside \"hv:imagelist\" at the top level are ignored: {}",
                    key_list(&top)
                ));
            }
            body
        }
        Some(other) => {
            return Err(ListError::NotAnObject {
                key: "hv:imagelist",
                found: type_name(&other),
            });
        }
        None => {
            // The list is re-emitted with the wrapper (one level deeper), and
            // what is accepted must parse again: apply the depth limit to the
            // wrapped form.
            let nesting = 1 + json::nesting(&top);
            if nesting > limits.max_depth {
                return Err(ListError::Json {
                    message: format!(
                        "nesting deeper than {} levels once wrapped in \"hv:imagelist\"",
                        limits.max_depth
                    ),
                });
            }
            warnings.push(
                "legacy list format: no \"hv:imagelist\" wrapper, list keys at the top level"
                    .to_owned(),
            );
            top
        }
    };
    let (list, rejected) = parse_body(body, limits, &mut warnings)?;
    Ok(Parsed {
        list,
        warnings: warnings.finish(),
        rejected,
    })
}

fn parse_body(
    mut m: Map<String, Value>,
    limits: &Limits,
    warnings: &mut Warnings,
) -> Result<(ImageList, Vec<RejectedImage>), ListError> {
    let identifier = list_string(&mut m, "dc:identifier", "dc:identifier")?;
    let identifier = ListId::new(&identifier).map_err(|source| ListError::InvalidIdentifier {
        key: "dc:identifier",
        source,
    })?;
    let title = list_string(&mut m, "dc:title", "dc:title")?;
    let description = list_string(&mut m, "dc:description", "dc:description")?;
    let source = list_string(&mut m, "dc:source", "dc:source")?;
    let created = list_timestamp(&mut m, "dc:date:created")?;
    let expires = list_timestamp(&mut m, "dc:date:expires")?;
    let version = non_empty(
        list_string(&mut m, "hv:version", "hv:version")?,
        "hv:version",
    )?;
    let uri = list_string(&mut m, "hv:uri", "hv:uri")?;
    let endorser = endorser(&mut m)?;
    let vo = optional_string(&mut m, "ad:vo", warnings, "list");
    let swid = optional_string(&mut m, "ad:swid", warnings, "list");
    let entries = match m.shift_remove("hv:images") {
        None => return Err(ListError::MissingField { key: "hv:images" }),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(ListError::WrongType {
                key: "hv:images",
                expected: "an array",
                found: type_name(&other),
            });
        }
    };
    if entries.len() > limits.max_images {
        return Err(ListError::TooManyImages {
            count: entries.len(),
            max: limits.max_images,
        });
    }
    if expires <= created {
        warnings.push("dc:date:expires is not after dc:date:created".to_owned());
    }
    let (images, rejected) = images(entries, warnings);
    let list = ImageList {
        identifier,
        title,
        description,
        source,
        created,
        expires,
        version,
        uri,
        endorser,
        vo,
        swid,
        images,
        extra: m,
    };
    Ok((list, rejected))
}

fn endorser(m: &mut Map<String, Value>) -> Result<Endorser, ListError> {
    let mut e = list_object(m, "hv:endorser", "hv:endorser")?;
    let mut x = list_object(&mut e, "hv:x509", "hv:endorser/hv:x509")?;
    let dn = list_string(&mut x, "hv:dn", "hv:endorser/hv:x509/hv:dn")?;
    let dn = non_empty(dn, "hv:endorser/hv:x509/hv:dn")?;
    let ca = list_string(&mut x, "hv:ca", "hv:endorser/hv:x509/hv:ca")?;
    let ca = non_empty(ca, "hv:endorser/hv:x509/hv:ca")?;
    let email = optional_list_string(&mut x, "hv:email", "hv:endorser/hv:x509/hv:email")?;
    let creator = optional_list_string(&mut x, "dc:creator", "hv:endorser/hv:x509/dc:creator")?;
    Ok(Endorser {
        x509: X509Endorser {
            dn,
            ca,
            email,
            creator,
            extra: x,
        },
        extra: e,
    })
}

fn list_object(
    m: &mut Map<String, Value>,
    key: &str,
    path: &'static str,
) -> Result<Map<String, Value>, ListError> {
    match m.shift_remove(key) {
        None => Err(ListError::MissingField { key: path }),
        Some(Value::Object(o)) => Ok(o),
        Some(other) => Err(ListError::WrongType {
            key: path,
            expected: "an object",
            found: type_name(&other),
        }),
    }
}

fn list_string(
    m: &mut Map<String, Value>,
    key: &str,
    path: &'static str,
) -> Result<String, ListError> {
    optional_list_string(m, key, path)?.ok_or(ListError::MissingField { key: path })
}

/// An optional endorser string: absent is fine, a wrong type is not (these
/// keys sit next to the DNs that decide trust; a malformed endorser block is
/// a malformed list).
fn optional_list_string(
    m: &mut Map<String, Value>,
    key: &str,
    path: &'static str,
) -> Result<Option<String>, ListError> {
    match m.shift_remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ListError::WrongType {
            key: path,
            expected: "a string",
            found: type_name(&other),
        }),
    }
}

fn non_empty(s: String, path: &'static str) -> Result<String, ListError> {
    if s.is_empty() {
        Err(ListError::EmptyField { key: path })
    } else {
        Ok(s)
    }
}

fn list_timestamp(m: &mut Map<String, Value>, key: &'static str) -> Result<Timestamp, ListError> {
    let s = list_string(m, key, key)?;
    parse_timestamp(&s).map_err(|source| ListError::InvalidTimestamp { key, source })
}

/// An optional informational string: taken when it is a string; otherwise
/// left in place (so it ends up among the unknown keys, verbatim) with a
/// warning unless it is `null`.
fn optional_string(
    m: &mut Map<String, Value>,
    key: &str,
    warnings: &mut Warnings,
    context: &str,
) -> Option<String> {
    match m.get(key)? {
        Value::String(_) => match m.shift_remove(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        Value::Null => None,
        other => {
            warnings.push(format!(
                "{context}: {key} is a JSON {}, expected a string; kept as an unknown key",
                type_name(other)
            ));
            None
        }
    }
}

/// Like [`optional_string`] for informational counts (`ad:*_recommended`).
fn optional_count_lenient(
    m: &mut Map<String, Value>,
    key: &str,
    warnings: &mut Warnings,
    context: &str,
) -> Option<u64> {
    match m.get(key)? {
        Value::Null => None,
        v => match parse_count(v) {
            Ok(n) => {
                m.shift_remove(key);
                Some(n)
            }
            Err(detail) => {
                warnings.push(format!("{context}: {key} {detail}; kept as an unknown key"));
                None
            }
        },
    }
}

/// A non-negative integer given as a JSON integer or a decimal string.
fn parse_count(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(u) => Ok(u),
            None if n.is_i64() => Err(format!("is negative ({n})")),
            None => Err(format!("is not an integer ({n})")),
        },
        Value::String(s) => {
            if s.is_empty() {
                Err("is an empty string".to_owned())
            } else if !s.bytes().all(|b| b.is_ascii_digit()) {
                Err(format!(
                    "is not a decimal integer (\"{}\")",
                    sanitize_short(s)
                ))
            } else {
                s.parse::<u64>()
                    .map_err(|_| format!("is too large (\"{}\")", sanitize_short(s)))
            }
        }
        other => Err(format!(
            "is a JSON {}, expected an integer or a decimal string",
            type_name(other)
        )),
    }
}

fn sanitize_short(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() > MAX {
        let head: String = s.chars().take(MAX).collect();
        format!("{}...", sanitize_for_report(&head))
    } else {
        sanitize_for_report(s)
    }
}

struct Entry {
    index: usize,
    /// `dc:identifier` for reports (sanitised), if it was a string.
    report_id: Option<String>,
    /// Lower-cased identifier, if it was a valid [`ImageId`]; used to find
    /// duplicates.
    dup_key: Option<String>,
    result: Result<Image, ImageError>,
}

fn images(entries: Vec<Value>, warnings: &mut Warnings) -> (Vec<Image>, Vec<RejectedImage>) {
    let parsed: Vec<Entry> = entries
        .into_iter()
        .enumerate()
        .map(|(index, v)| image_entry(index, v, warnings))
        .collect();

    // Identifiers become file names, and file systems may fold case, so two
    // identifiers that differ only in case collide. With no principled way to
    // tell which entry the publisher meant, every entry of a duplicated
    // identifier is rejected. Entries that were already rejected for another
    // reason still count as occurrences but keep their first reason.
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    for e in &parsed {
        if let Some(k) = &e.dup_key {
            by_id.entry(k.as_str()).or_default().push(e.index);
        }
    }
    let mut duplicates: HashMap<usize, ImageError> = HashMap::new();
    for indexes in by_id.values().filter(|v| v.len() > 1) {
        for &i in indexes {
            let others: Vec<usize> = indexes
                .iter()
                .copied()
                .filter(|&j| j != i)
                .take(MAX_DUPLICATE_INDEXES)
                .collect();
            duplicates.insert(
                i,
                ImageError::DuplicateIdentifier {
                    count: indexes.len(),
                    others,
                },
            );
        }
    }

    let mut images = Vec::new();
    let mut rejected = Vec::new();
    for e in parsed {
        let result = match (e.result, duplicates.remove(&e.index)) {
            (Ok(_), Some(dup)) => Err(dup),
            (r, _) => r,
        };
        match result {
            Ok(image) => images.push(image),
            Err(err) => rejected.push(RejectedImage::new(e.index, e.report_id, &err)),
        }
    }
    (images, rejected)
}

fn image_entry(index: usize, v: Value, warnings: &mut Warnings) -> Entry {
    let mut entry = Entry {
        index,
        report_id: None,
        dup_key: None,
        result: Err(ImageError::Malformed {
            detail: String::new(),
        }),
    };
    let mut inner = match unwrap_image(index, v, warnings) {
        Ok(inner) => inner,
        Err(e) => {
            entry.result = Err(e);
            return entry;
        }
    };
    if let Some(Value::String(s)) = inner.get("dc:identifier") {
        entry.report_id = Some(sanitize_for_report(s));
        if ImageId::new(s).is_ok() {
            entry.dup_key = Some(s.to_ascii_lowercase());
        }
    }
    let context = match &entry.report_id {
        Some(id) => format!("image {index} ({id})"),
        None => format!("image {index}"),
    };
    entry.result = image(&mut inner, warnings, &context).map(|mut image| {
        image.extra = inner;
        image
    });
    entry
}

fn unwrap_image(
    index: usize,
    v: Value,
    warnings: &mut Warnings,
) -> Result<Map<String, Value>, ImageError> {
    let Value::Object(mut wrapper) = v else {
        return Err(ImageError::Malformed {
            detail: format!("found a JSON {}", type_name(&v)),
        });
    };
    let inner = match wrapper.shift_remove("hv:image") {
        Some(Value::Object(inner)) => inner,
        Some(other) => {
            return Err(ImageError::Malformed {
                detail: format!("hv:image is a JSON {}", type_name(&other)),
            });
        }
        None => {
            return Err(ImageError::Malformed {
                detail: "no \"hv:image\" key".to_owned(),
            });
        }
    };
    if !wrapper.is_empty() {
        warnings.push(format!(
            "image {index}: keys beside \"hv:image\" are ignored: {}",
            key_list(&wrapper)
        ));
    }
    Ok(inner)
}

fn image(
    m: &mut Map<String, Value>,
    warnings: &mut Warnings,
    context: &str,
) -> Result<Image, ImageError> {
    let identifier = match m.shift_remove("dc:identifier") {
        None => {
            return Err(ImageError::MissingField {
                key: "dc:identifier",
            });
        }
        Some(Value::String(s)) => {
            ImageId::new(&s).map_err(|source| ImageError::UnsafeIdentifier { source })?
        }
        Some(other) => {
            return Err(ImageError::InvalidField {
                key: "dc:identifier",
                detail: format!("is a JSON {}, expected a string", type_name(&other)),
            });
        }
    };
    let title = image_string(m, "dc:title")?;
    let description = image_string(m, "dc:description")?;
    let uri = image_string(m, "hv:uri")?;
    if uri.is_empty() {
        return Err(ImageError::InvalidField {
            key: "hv:uri",
            detail: "is empty".to_owned(),
        });
    }
    let size = match m.shift_remove("hv:size") {
        None => return Err(ImageError::MissingField { key: "hv:size" }),
        Some(v) => parse_count(&v).map_err(|detail| ImageError::InvalidSize { detail })?,
    };
    let sha512 = match m.shift_remove("sl:checksum:sha512") {
        None => {
            return Err(ImageError::MissingField {
                key: "sl:checksum:sha512",
            });
        }
        Some(Value::String(s)) => Sha512Hex::new(&s)?,
        Some(other) => {
            return Err(ImageError::InvalidChecksum {
                detail: format!("is a JSON {}, expected a string", type_name(&other)),
            });
        }
    };
    let arch = image_string(m, "sl:arch")?;
    let os = image_string(m, "sl:os")?;
    let osversion = image_string(m, "sl:osversion")?;
    let comments = image_string(m, "sl:comments")?;
    let hypervisor = image_string(m, "hv:hypervisor")?;
    let version = image_string(m, "hv:version")?;
    let ram_minimum = image_count(m, "hv:ram_minimum")?;
    let core_minimum = image_count(m, "hv:core_minimum")?;
    let expires = match m.get("dc:date:expires") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let ts = parse_timestamp(s)?;
            m.shift_remove("dc:date:expires");
            Some(ts)
        }
        Some(other) => {
            return Err(ImageError::InvalidTimestamp {
                key: "dc:date:expires",
                detail: format!("is a JSON {}, expected a string", type_name(other)),
            });
        }
    };
    Ok(Image {
        identifier,
        title,
        description,
        uri,
        size,
        sha512,
        arch,
        os,
        osversion,
        comments,
        hypervisor,
        version,
        format: optional_string(m, "hv:format", warnings, context),
        ram_minimum,
        core_minimum,
        osname: optional_string(m, "sl:osname", warnings, context),
        expires,
        mpuri: optional_string(m, "ad:mpuri", warnings, context),
        base_mpuri: optional_string(m, "ad:base_mpuri", warnings, context),
        appid: optional_string(m, "ad:appid", warnings, context),
        group: optional_string(m, "ad:group", warnings, context),
        ram_recommended: optional_count_lenient(m, "ad:ram_recommended", warnings, context),
        core_recommended: optional_count_lenient(m, "ad:core_recommended", warnings, context),
        user_fullname: optional_string(m, "ad:user:fullname", warnings, context),
        user_guid: optional_string(m, "ad:user:guid", warnings, context),
        user_uri: optional_string(m, "ad:user:uri", warnings, context),
        extra: Map::new(),
    })
}

fn image_string(m: &mut Map<String, Value>, key: &'static str) -> Result<String, ImageError> {
    match m.shift_remove(key) {
        None => Err(ImageError::MissingField { key }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ImageError::InvalidField {
            key,
            detail: format!("is a JSON {}, expected a string", type_name(&other)),
        }),
    }
}

/// `hv:ram_minimum` / `hv:core_minimum`: optional, but when present they are
/// requirements a consumer acts on, so an invalid value rejects the image
/// (`null` counts as absent and is kept verbatim).
fn image_count(m: &mut Map<String, Value>, key: &'static str) -> Result<Option<u64>, ImageError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = parse_count(v).map_err(|detail| ImageError::InvalidField { key, detail })?;
            m.shift_remove(key);
            Ok(Some(n))
        }
    }
}

/// Comma-separated, sanitised, capped list of the keys of `m`.
fn key_list(m: &Map<String, Value>) -> String {
    const MAX_KEYS: usize = 8;
    let mut out: Vec<String> = m
        .keys()
        .take(MAX_KEYS)
        .map(|k| format!("\"{}\"", sanitize_short(k)))
        .collect();
    if m.len() > MAX_KEYS {
        out.push(format!("and {} more", m.len() - MAX_KEYS));
    }
    out.join(", ")
}

#[derive(Default)]
struct Warnings {
    list: Vec<String>,
    dropped: usize,
}

impl Warnings {
    fn push(&mut self, w: String) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(w);
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.list
                .push(format!("... and {} more warnings", self.dropped));
        }
        self.list
    }
}
