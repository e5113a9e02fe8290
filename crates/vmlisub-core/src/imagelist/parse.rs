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
//!
//! The document is read in one pass by [`document`](mod@super::document), which
//! hands each entry of `hv:images` here ([`Images::push_entry`]) as soon as
//! it has been read; the list-level checks run once the whole document has
//! been read.

use super::checksum::Sha512Hex;
use super::document::{Body, ImageFields, ImageKey, TopShape};
use super::error::{ImageError, ListError, RejectedImage};
use super::identifier::{ImageId, ListId, sanitize_for_report};
use super::json::{self, Ctx, ReadLimits, ShapeSeed, Shaped, type_name};
use super::model::{Endorser, Image, ImageList, X509Endorser};
use super::timestamp::parse_timestamp;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, hash_map};
use std::fmt;
use std::hash::{Hash, Hasher};

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
    let deepest = Cell::new(0);
    let seed = ShapeSeed {
        ctx: Ctx::new(read_limits, &deepest),
        shape: TopShape,
    };
    let top = match json::read_with(bytes, seed) {
        Ok(Shaped::Expected(top)) => top,
        Ok(Shaped::Other(found)) => {
            return Err(ListError::NotAnObject {
                key: "(document)",
                found,
            });
        }
        Err(e) => {
            return Err(ListError::Json {
                message: e.to_string(),
            });
        }
    };
    let body = match top.wrapped {
        Some(Shaped::Expected(body)) => {
            if !top.rest.is_empty() {
                warnings.push(format!(
                    "keys beside \"hv:imagelist\" at the top level are ignored: {}",
                    key_list(top.rest.keys(), top.rest.len())
                ));
            }
            body
        }
        Some(Shaped::Other(found)) => {
            return Err(ListError::NotAnObject {
                key: "hv:imagelist",
                found,
            });
        }
        None => {
            // The list is re-emitted with the wrapper (one level deeper), and
            // what is accepted must parse again: apply the depth limit to the
            // wrapped form. The top-level object holds the whole document,
            // so its nesting is the deepest level the reader entered.
            let nesting = 1 + deepest.get();
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
            top.rest
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
    body: Body,
    limits: &Limits,
    warnings: &mut Warnings,
) -> Result<(ImageList, Vec<RejectedImage>), ListError> {
    let mut m = body.map;
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
    let vo = optional_string(&mut m, "ad:vo", warnings, &"list");
    let swid = optional_string(&mut m, "ad:swid", warnings, &"list");
    let entries = match body.images {
        None => return Err(ListError::MissingField { key: "hv:images" }),
        Some(Shaped::Expected(images)) => images,
        Some(Shaped::Other(found)) => {
            return Err(ListError::WrongType {
                key: "hv:images",
                expected: "an array",
                found,
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

/// The members of an object being taken apart: a map for the list-level
/// objects, [`ImageFields`] for images (so that [`optional_string`] serves
/// both).
trait Members {
    /// How a key is named: the key itself, or an [`ImageKey`].
    type Key: Copy;
    /// The key as written in lists.
    fn name(key: Self::Key) -> &'static str;
    /// The value of `key`, if present and not taken.
    fn get(&self, key: Self::Key) -> Option<&Value>;
    /// Takes the value of `key`, if present and not taken.
    fn take(&mut self, key: Self::Key) -> Option<Value>;
}

impl Members for Map<String, Value> {
    type Key = &'static str;

    fn name(key: &'static str) -> &'static str {
        key
    }

    fn get(&self, key: &'static str) -> Option<&Value> {
        Map::get(self, key)
    }

    /// Order-preserving (O(n)), but only ever used on a list's few keys.
    fn take(&mut self, key: &'static str) -> Option<Value> {
        self.shift_remove(key)
    }
}

impl Members for ImageFields {
    type Key = ImageKey;

    fn name(key: ImageKey) -> &'static str {
        key.name()
    }

    fn get(&self, key: ImageKey) -> Option<&Value> {
        ImageFields::get(self, key)
    }

    fn take(&mut self, key: ImageKey) -> Option<Value> {
        ImageFields::take(self, key)
    }
}

/// An optional informational string: taken when it is a string; otherwise
/// left in place (so it ends up among the unknown keys, verbatim) with a
/// warning unless it is `null`.
fn optional_string<M: Members>(
    m: &mut M,
    key: M::Key,
    warnings: &mut Warnings,
    context: &dyn fmt::Display,
) -> Option<String> {
    match m.get(key)? {
        Value::String(_) => match m.take(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        Value::Null => None,
        other => {
            warnings.push(format!(
                "{context}: {} is a JSON {}, expected a string; kept as an unknown key",
                M::name(key),
                type_name(other)
            ));
            None
        }
    }
}

/// Like [`optional_string`] for informational counts (`ad:*_recommended`).
fn optional_count_lenient(
    m: &mut ImageFields,
    key: ImageKey,
    warnings: &mut Warnings,
    context: &dyn fmt::Display,
) -> Option<u64> {
    match m.get(key)? {
        Value::Null => None,
        v => match parse_count(v) {
            Ok(n) => {
                m.take(key);
                Some(n)
            }
            Err(detail) => {
                warnings.push(format!(
                    "{context}: {} {detail}; kept as an unknown key",
                    key.name()
                ));
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

/// The entries of `hv:images`, each validated as soon as it has been read.
#[derive(Default)]
pub struct Images {
    /// Where the reader puts the members of each image in turn.
    fields: ImageFields,
    /// The valid images, in list order; duplicates among them are only
    /// found once all are known ([`images`]).
    accepted: Vec<Image>,
    /// The index in `hv:images` of each of `accepted`.
    accepted_at: Vec<usize>,
    /// The rejected entries with their indexes, in list order.
    rejected: Vec<(usize, Rejected)>,
    /// What validating the entries had to say, added to the list's own
    /// warnings once the list is known to be valid.
    warnings: Warnings,
}

/// Why an entry was dropped.
struct Rejected {
    /// `dc:identifier` if it was a string (sanitised when reported).
    identifier: Option<String>,
    /// Whether `identifier` is a valid [`ImageId`]: such an entry still
    /// counts towards duplicates.
    valid: bool,
    error: ImageError,
}

impl Rejected {
    fn malformed(detail: String) -> Rejected {
        Rejected {
            identifier: None,
            valid: false,
            error: ImageError::Malformed { detail },
        }
    }
}

impl Images {
    /// The number of entries.
    pub fn len(&self) -> usize {
        self.accepted.len() + self.rejected.len()
    }

    /// Where the reader is to put the members of the next image.
    pub fn fields(&mut self) -> &mut ImageFields {
        &mut self.fields
    }

    /// Validates the next entry, an object: `hv_image` says what the value
    /// of its `hv:image` key was (if an object, its members are in
    /// [`fields`](Self::fields)), `others` are its other members.
    pub fn push_entry(&mut self, hv_image: Option<Shaped<()>>, others: &Map<String, Value>) {
        let index = self.len();
        let result = match hv_image {
            Some(Shaped::Expected(())) => {
                image_entry(index, &mut self.fields, others, &mut self.warnings)
            }
            Some(Shaped::Other(found)) => {
                Err(Rejected::malformed(format!("hv:image is a JSON {found}")))
            }
            None => Err(Rejected::malformed("no \"hv:image\" key".to_owned())),
        };
        match result {
            Ok(image) => {
                self.accepted.push(image);
                self.accepted_at.push(index);
            }
            Err(rejected) => self.rejected.push((index, rejected)),
        }
    }

    /// Records the next entry, which is not an object at all.
    pub fn push_not_an_object(&mut self, found: &'static str) {
        let rejected = Rejected::malformed(format!("found a JSON {found}"));
        self.rejected.push((self.len(), rejected));
    }
}

fn images(images: Images, warnings: &mut Warnings) -> (Vec<Image>, Vec<RejectedImage>) {
    let Images {
        fields: _,
        mut accepted,
        accepted_at,
        mut rejected,
        warnings: image_warnings,
    } = images;
    warnings.append(image_warnings);
    let mut duplicates = duplicates(&accepted, &accepted_at, &rejected);
    if !duplicates.is_empty() {
        // Move the accepted duplicates over to the rejected entries (lists
        // almost never have any, so this need not be quick).
        let mut kept = Vec::with_capacity(accepted.len());
        for (image, index) in accepted.into_iter().zip(accepted_at) {
            match duplicates.remove(&index) {
                None => kept.push(image),
                Some(error) => rejected.push((
                    index,
                    Rejected {
                        identifier: Some(image.identifier.into_string()),
                        valid: true,
                        error,
                    },
                )),
            }
        }
        accepted = kept;
        rejected.sort_by_key(|&(index, _)| index);
    }
    let rejected = rejected
        .into_iter()
        .map(|(index, r)| {
            let identifier = r.identifier.as_deref().map(sanitize_for_report);
            RejectedImage::new(index, identifier, &r.error)
        })
        .collect();
    (accepted, rejected)
}

/// Identifiers become file names, and file systems may fold case, so two
/// identifiers that differ only in case collide. With no principled way to
/// tell which entry the publisher meant, every entry of a duplicated
/// identifier is rejected. Entries that were already rejected for another
/// reason still count as occurrences but keep their first reason.
///
/// Returns the error for each accepted entry to reject, by index.
fn duplicates(
    accepted: &[Image],
    accepted_at: &[usize],
    rejected: &[(usize, Rejected)],
) -> HashMap<usize, ImageError> {
    let ids = accepted
        .iter()
        .zip(accepted_at)
        .map(|(image, &index)| (index, image.identifier.as_str()));
    let rejected_ids = rejected.iter().filter_map(|(index, r)| match r {
        Rejected {
            identifier: Some(id),
            valid: true,
            ..
        } => Some((*index, id.as_str())),
        _ => None,
    });
    // One pass to find repeats (first index seen, repeat); lists almost
    // never have any.
    let mut seen: HashMap<CaseFolded<'_>, usize> = HashMap::with_capacity(accepted.len());
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    for (index, id) in ids.chain(rejected_ids) {
        match seen.entry(CaseFolded(id)) {
            hash_map::Entry::Occupied(o) => repeats.push((*o.get(), index)),
            hash_map::Entry::Vacant(v) => {
                v.insert(index);
            }
        }
    }
    // Every index of each repeated identifier, in list order.
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (first, index) in repeats {
        groups
            .entry(first)
            .or_insert_with(|| vec![first])
            .push(index);
    }
    let mut out = HashMap::new();
    for indexes in groups.values_mut() {
        indexes.sort_unstable();
        for &i in indexes.iter() {
            if accepted_at.binary_search(&i).is_err() {
                continue;
            }
            let others: Vec<usize> = indexes
                .iter()
                .copied()
                .filter(|&j| j != i)
                .take(MAX_DUPLICATE_INDEXES)
                .collect();
            let error = ImageError::DuplicateIdentifier {
                count: indexes.len(),
                others,
            };
            out.insert(i, error);
        }
    }
    out
}

/// A string hashed and compared ASCII-case-insensitively, without making a
/// lower-case copy of every identifier of the list.
struct CaseFolded<'a>(&'a str);

impl PartialEq for CaseFolded<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for CaseFolded<'_> {}

impl Hash for CaseFolded<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Equal strings have equal lengths, hence the same chunks.
        for chunk in self.0.as_bytes().chunks(64) {
            let mut buf = [0u8; 64];
            let folded = &mut buf[..chunk.len()];
            folded.copy_from_slice(chunk);
            folded.make_ascii_lowercase();
            state.write(folded);
        }
        state.write_u8(0xff);
    }
}

/// Validates an element of `hv:images` of the form `{"hv:image": {...}}`;
/// see [`Images::push_entry`].
fn image_entry(
    index: usize,
    fields: &mut ImageFields,
    others: &Map<String, Value>,
    warnings: &mut Warnings,
) -> Result<Image, Rejected> {
    if !others.is_empty() {
        warnings.push(format!(
            "image {index}: keys beside \"hv:image\" are ignored: {}",
            key_list(others.keys().map(String::as_str), others.len())
        ));
    }
    // The identifier first: it names the entry in reports, whatever else is
    // wrong with it.
    let raw = match fields.take(ImageKey::Identifier) {
        None => {
            return Err(Rejected {
                identifier: None,
                valid: false,
                error: ImageError::MissingField {
                    key: "dc:identifier",
                },
            });
        }
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(Rejected {
                identifier: None,
                valid: false,
                error: ImageError::InvalidField {
                    key: "dc:identifier",
                    detail: format!("is a JSON {}, expected a string", type_name(&other)),
                },
            });
        }
    };
    // A copy: `raw` names the entry if something else is wrong with it.
    let identifier = match ImageId::new(&raw) {
        Ok(id) => id,
        Err(source) => {
            return Err(Rejected {
                identifier: Some(raw),
                valid: false,
                error: ImageError::UnsafeIdentifier { source },
            });
        }
    };
    match image(identifier, fields, warnings, index) {
        Ok(mut image) => {
            image.extra = fields.take_extra();
            Ok(image)
        }
        Err(error) => Err(Rejected {
            identifier: Some(raw),
            valid: true,
            error,
        }),
    }
}

/// How warnings name an image: `image 3 (id)`. Only rendered when there is
/// something to say.
struct ImageContext<'a> {
    index: usize,
    identifier: &'a str,
}

impl fmt::Display for ImageContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "image {} ({})",
            self.index,
            sanitize_for_report(self.identifier)
        )
    }
}

/// The rest of an image, once its identifier is known to be valid.
fn image(
    identifier: ImageId,
    m: &mut ImageFields,
    warnings: &mut Warnings,
    index: usize,
) -> Result<Image, ImageError> {
    let title = image_string(m, ImageKey::Title)?;
    let description = image_string(m, ImageKey::Description)?;
    let uri = image_string(m, ImageKey::Uri)?;
    if uri.is_empty() {
        return Err(ImageError::InvalidField {
            key: "hv:uri",
            detail: "is empty".to_owned(),
        });
    }
    let size = match m.take(ImageKey::Size) {
        None => return Err(ImageError::MissingField { key: "hv:size" }),
        Some(v) => parse_count(&v).map_err(|detail| ImageError::InvalidSize { detail })?,
    };
    let sha512 = match m.take(ImageKey::Sha512) {
        None => {
            return Err(ImageError::MissingField {
                key: "sl:checksum:sha512",
            });
        }
        Some(Value::String(s)) => Sha512Hex::try_from(s)?,
        Some(other) => {
            return Err(ImageError::InvalidChecksum {
                detail: format!("is a JSON {}, expected a string", type_name(&other)),
            });
        }
    };
    let arch = image_string(m, ImageKey::Arch)?;
    let os = image_string(m, ImageKey::Os)?;
    let osversion = image_string(m, ImageKey::OsVersion)?;
    let comments = image_string(m, ImageKey::Comments)?;
    let hypervisor = image_string(m, ImageKey::Hypervisor)?;
    let version = image_string(m, ImageKey::Version)?;
    let ram_minimum = image_count(m, ImageKey::RamMinimum)?;
    let core_minimum = image_count(m, ImageKey::CoreMinimum)?;
    let expires = match m.get(ImageKey::Expires) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let ts = parse_timestamp(s)?;
            m.take(ImageKey::Expires);
            Some(ts)
        }
        Some(other) => {
            return Err(ImageError::InvalidTimestamp {
                key: "dc:date:expires",
                detail: format!("is a JSON {}, expected a string", type_name(other)),
            });
        }
    };
    // The informational keys, in this order (it is the order of warnings).
    let context = &ImageContext {
        index,
        identifier: identifier.as_str(),
    };
    let format = optional_string(m, ImageKey::Format, warnings, context);
    let osname = optional_string(m, ImageKey::OsName, warnings, context);
    let mpuri = optional_string(m, ImageKey::MpUri, warnings, context);
    let base_mpuri = optional_string(m, ImageKey::BaseMpUri, warnings, context);
    let appid = optional_string(m, ImageKey::AppId, warnings, context);
    let group = optional_string(m, ImageKey::Group, warnings, context);
    let ram_recommended = optional_count_lenient(m, ImageKey::RamRecommended, warnings, context);
    let core_recommended = optional_count_lenient(m, ImageKey::CoreRecommended, warnings, context);
    let user_fullname = optional_string(m, ImageKey::UserFullName, warnings, context);
    let user_guid = optional_string(m, ImageKey::UserGuid, warnings, context);
    let user_uri = optional_string(m, ImageKey::UserUri, warnings, context);
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
        format,
        ram_minimum,
        core_minimum,
        osname,
        expires,
        mpuri,
        base_mpuri,
        appid,
        group,
        ram_recommended,
        core_recommended,
        user_fullname,
        user_guid,
        user_uri,
        extra: Map::new(),
    })
}

fn image_string(m: &mut ImageFields, key: ImageKey) -> Result<String, ImageError> {
    match m.take(key) {
        None => Err(ImageError::MissingField { key: key.name() }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(ImageError::InvalidField {
            key: key.name(),
            detail: format!("is a JSON {}, expected a string", type_name(&other)),
        }),
    }
}

/// `hv:ram_minimum` / `hv:core_minimum`: optional, but when present they are
/// requirements a consumer acts on, so an invalid value rejects the image
/// (`null` counts as absent and is kept verbatim).
fn image_count(m: &mut ImageFields, key: ImageKey) -> Result<Option<u64>, ImageError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = parse_count(v).map_err(|detail| ImageError::InvalidField {
                key: key.name(),
                detail,
            })?;
            m.take(key);
            Ok(Some(n))
        }
    }
}

/// Comma-separated, sanitised, capped list of an object's `count` keys.
fn key_list<'a>(keys: impl Iterator<Item = &'a str>, count: usize) -> String {
    const MAX_KEYS: usize = 8;
    let mut out: Vec<String> = keys
        .take(MAX_KEYS)
        .map(|k| format!("\"{}\"", sanitize_short(k)))
        .collect();
    if count > MAX_KEYS {
        out.push(format!("and {} more", count - MAX_KEYS));
    }
    out.join(", ")
}

/// Warnings, capped at [`MAX_WARNINGS`].
#[derive(Default)]
pub struct Warnings {
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

    /// Adds `later` after these, as if each had been pushed here.
    fn append(&mut self, later: Warnings) {
        for w in later.list {
            self.push(w);
        }
        self.dropped += later.dropped;
    }

    fn finish(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.list
                .push(format!("... and {} more warnings", self.dropped));
        }
        self.list
    }
}
