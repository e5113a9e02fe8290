//! The one-pass reader of list documents.
//!
//! Reading a 1,000-image list into a [`Value`] tree and then taking every
//! object apart key by key cost several times what the JSON itself does: a
//! heap-allocated key and two hash lookups for every member, and an
//! order-preserving removal (shifting the rest of the map) for every
//! modelled key. So the reader knows where a list keeps its images and
//! reads those parts into typed holders as it goes:
//!
//! * the top level and list bodies are plain maps, except that `hv:images`
//!   is read into [`Images`] (and `hv:imagelist`, at the top, into a body);
//! * each image object is read into [`ImageFields`]: the modelled keys are
//!   recognised without allocating a key string and land in fixed slots,
//!   every other key goes to the map that becomes [`Image::extra`];
//! * each entry is validated as soon as it has been read
//!   ([`Images::push_entry`]), so the raw fields never pile up and one
//!   [`ImageFields`] serves every image in turn.
//!
//! The reader never decides anything about the list: it applies the JSON
//! rules of [`json`] (limits, duplicate keys) exactly as the generic reader
//! does, at the same places, so that syntax and limit errors are what they
//! would be for any document, and leaves list-level checks to
//! [`parse`](mod@super::parse). Validating images early is invisible: a later
//! JSON error still discards everything, and the warnings of a list's
//! images are kept apart and added after the list-level ones.
//!
//! [`Image::extra`]: super::Image::extra

use super::json::{self, Ctx, Shape, ShapeSeed, Shaped, ValueSeed};
use super::parse::Images;
use serde::de::{MapAccess, SeqAccess};
use serde_json::{Map, Value};

/// A document's top-level object.
pub struct Top {
    /// `hv:imagelist`, if present: the list body, or the JSON type found.
    pub wrapped: Option<Shaped<Body>>,
    /// Every other member, read as a list body: that is what it is in the
    /// legacy form, where the list keys sit at the top level.
    pub rest: Body,
}

/// The members of a list body.
pub struct Body {
    /// Every member but `hv:images`, in document order.
    pub map: Map<String, Value>,
    /// `hv:images`, if present: its entries, or the JSON type found.
    pub images: Option<Shaped<Images>>,
    /// How many members of `map` precede `hv:images` (for key lists).
    images_at: usize,
}

impl Body {
    /// Whether the object had no members at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && self.images.is_none()
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.map.len() + usize::from(self.images.is_some())
    }

    /// The member names, in document order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        let images = self.images.as_ref().map(|_| "hv:images");
        let before = self.map.keys().take(self.images_at);
        let after = self.map.keys().skip(self.images_at);
        before
            .map(String::as_str)
            .chain(images)
            .chain(after.map(String::as_str))
    }
}

/// Reads the top-level value: a [`Top`] if it is an object.
#[derive(Clone, Copy)]
pub struct TopShape;

impl<'de> Shape<'de> for TopShape {
    type Out = Top;

    fn object<A: MapAccess<'de>>(self, inner: Ctx<'_>, map: A) -> Result<Shaped<Top>, A::Error> {
        let (rest, wrapped) = read_body(map, inner, true)?;
        Ok(Shaped::Expected(Top { wrapped, rest }))
    }
}

/// Reads the value of `hv:imagelist`: a [`Body`] if it is an object.
#[derive(Clone, Copy)]
struct BodyShape;

impl<'de> Shape<'de> for BodyShape {
    type Out = Body;

    fn object<A: MapAccess<'de>>(self, inner: Ctx<'_>, map: A) -> Result<Shaped<Body>, A::Error> {
        let (body, _) = read_body(map, inner, false)?;
        Ok(Shaped::Expected(body))
    }
}

/// Reads a body's members; at the top level (`top`), also `hv:imagelist`.
fn read_body<'de, A: MapAccess<'de>>(
    mut map: A,
    inner: Ctx<'_>,
    top: bool,
) -> Result<(Body, Option<Shaped<Body>>), A::Error> {
    let mut body = Body {
        map: Map::new(),
        images: None,
        images_at: 0,
    };
    let mut wrapped = None;
    while let Some(key) = json::next_key(&mut map, inner)? {
        if key == "hv:images" {
            if body.images.is_some() {
                return Err(json::duplicate_key(&key));
            }
            body.images_at = body.map.len();
            body.images = Some(map.next_value_seed(ShapeSeed {
                ctx: inner,
                shape: ImagesShape,
            })?);
        } else if top && key == "hv:imagelist" {
            if wrapped.is_some() {
                return Err(json::duplicate_key(&key));
            }
            wrapped = Some(map.next_value_seed(ShapeSeed {
                ctx: inner,
                shape: BodyShape,
            })?);
        } else {
            json::insert_member(&mut map, inner, &mut body.map, key)?;
        }
    }
    Ok((body, wrapped))
}

/// Reads the value of `hv:images`: [`Images`] if it is an array.
#[derive(Clone, Copy)]
struct ImagesShape;

impl<'de> Shape<'de> for ImagesShape {
    type Out = Images;

    fn array<A: SeqAccess<'de>>(
        self,
        inner: Ctx<'_>,
        mut seq: A,
    ) -> Result<Shaped<Images>, A::Error> {
        let mut images = Images::default();
        loop {
            let shape = EntryShape {
                images: &mut images,
            };
            match seq.next_element_seed(ShapeSeed { ctx: inner, shape })? {
                None => break,
                Some(Shaped::Expected(())) => {}
                Some(Shaped::Other(found)) => images.push_not_an_object(found),
            }
        }
        Ok(Shaped::Expected(images))
    }
}

/// Reads one element of `hv:images`, `{"hv:image": {...}}`, and adds it to
/// `images`.
struct EntryShape<'i> {
    images: &'i mut Images,
}

impl<'de> Shape<'de> for EntryShape<'_> {
    type Out = ();

    fn object<A: MapAccess<'de>>(self, inner: Ctx<'_>, mut map: A) -> Result<Shaped<()>, A::Error> {
        let mut image = None;
        let mut others = Map::new();
        while let Some(key) = json::next_key(&mut map, inner)? {
            if key == "hv:image" {
                if image.is_some() {
                    return Err(json::duplicate_key(&key));
                }
                image = Some(map.next_value_seed(ShapeSeed {
                    ctx: inner,
                    shape: ImageShape {
                        fields: self.images.fields(),
                    },
                })?);
            } else {
                json::insert_member(&mut map, inner, &mut others, key)?;
            }
        }
        self.images.push_entry(image, &others);
        Ok(Shaped::Expected(()))
    }
}

/// Reads the value of `hv:image` into `fields` if it is an object.
///
/// One [`ImageFields`] serves all the images of a list in turn: at 26
/// slots it is large enough that building and moving a fresh one for each
/// image showed up in profiles.
struct ImageShape<'f> {
    fields: &'f mut ImageFields,
}

impl<'de> Shape<'de> for ImageShape<'_> {
    type Out = ();

    fn object<A: MapAccess<'de>>(self, inner: Ctx<'_>, mut map: A) -> Result<Shaped<()>, A::Error> {
        let fields = self.fields;
        fields.clear();
        let mut position = 0;
        while let Some(key) = json::next_key(&mut map, inner)? {
            match ImageKey::from_name(&key) {
                Some(k) => {
                    let i = k as usize;
                    if fields.positions[i].is_some() {
                        return Err(json::duplicate_key(&key));
                    }
                    fields.positions[i] = Some(position);
                    fields.values[i] = Some(map.next_value_seed(ValueSeed(inner))?);
                }
                None => json::insert_member(&mut map, inner, &mut fields.extra, key)?,
            }
            position += 1;
        }
        Ok(Shaped::Expected(()))
    }
}

/// Declares [`ImageKey`] from one table of variant names and key names.
macro_rules! image_keys {
    ($($variant:ident = $name:literal,)*) => {
        /// The keys of an image that [`Image`](super::Image) models.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ImageKey {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl ImageKey {
            /// Every key, in declaration order.
            pub const ALL: &[ImageKey] = &[$(ImageKey::$variant,)*];

            /// The key as written in lists.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ImageKey::$variant => $name,)*
                }
            }

            /// The modelled key called `name`, if any.
            fn from_name(name: &str) -> Option<ImageKey> {
                match name {
                    $($name => Some(ImageKey::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

image_keys! {
    Identifier = "dc:identifier",
    Title = "dc:title",
    Description = "dc:description",
    Uri = "hv:uri",
    Size = "hv:size",
    Sha512 = "sl:checksum:sha512",
    Arch = "sl:arch",
    Os = "sl:os",
    OsVersion = "sl:osversion",
    Comments = "sl:comments",
    Hypervisor = "hv:hypervisor",
    Version = "hv:version",
    Format = "hv:format",
    RamMinimum = "hv:ram_minimum",
    CoreMinimum = "hv:core_minimum",
    OsName = "sl:osname",
    Expires = "dc:date:expires",
    MpUri = "ad:mpuri",
    BaseMpUri = "ad:base_mpuri",
    AppId = "ad:appid",
    Group = "ad:group",
    RamRecommended = "ad:ram_recommended",
    CoreRecommended = "ad:core_recommended",
    UserFullName = "ad:user:fullname",
    UserGuid = "ad:user:guid",
    UserUri = "ad:user:uri",
}

const IMAGE_KEYS: usize = ImageKey::ALL.len();

/// The members of one image object, as read: a slot per modelled key, and
/// the other members in document order.
///
/// The validator [`take`](Self::take)s what it uses; whatever it leaves (a
/// `null`, an informational value of an unexpected type) is kept verbatim
/// among the unknown keys, at its place in the document, by
/// [`take_extra`](Self::take_extra).
pub struct ImageFields {
    /// Each modelled key's value, until taken.
    values: [Option<Value>; IMAGE_KEYS],
    /// Each modelled key's position among all members, if it was present
    /// (kept after the value is taken, to find the others' places).
    positions: [Option<usize>; IMAGE_KEYS],
    /// Members with other keys, in document order.
    extra: Map<String, Value>,
}

impl Default for ImageFields {
    fn default() -> Self {
        ImageFields {
            values: [const { None }; IMAGE_KEYS],
            positions: [None; IMAGE_KEYS],
            extra: Map::new(),
        }
    }
}

impl ImageFields {
    /// Empties every slot, ready for the next image.
    fn clear(&mut self) {
        self.values = [const { None }; IMAGE_KEYS];
        self.positions = [None; IMAGE_KEYS];
        self.extra.clear();
    }

    /// The value of `key`, if present and not yet taken.
    pub fn get(&self, key: ImageKey) -> Option<&Value> {
        self.values[key as usize].as_ref()
    }

    /// Takes the value of `key`, if present and not yet taken.
    pub fn take(&mut self, key: ImageKey) -> Option<Value> {
        self.values[key as usize].take()
    }

    /// Takes the members not taken yet, in document order: the unknown keys
    /// and any modelled key whose value was left in place.
    pub fn take_extra(&mut self) -> Map<String, Value> {
        let mut left: Vec<(usize, ImageKey)> = ImageKey::ALL
            .iter()
            .filter(|&&k| self.values[k as usize].is_some())
            .filter_map(|&k| Some((self.positions[k as usize]?, k)))
            .collect();
        if left.is_empty() {
            return std::mem::take(&mut self.extra);
        }
        left.sort_unstable_by_key(|&(position, _)| position);
        let taken: Vec<usize> = ImageKey::ALL
            .iter()
            .filter(|&&k| self.values[k as usize].is_none())
            .filter_map(|&k| self.positions[k as usize])
            .collect();
        for (position, key) in left {
            // Everything before `position` except the taken members is
            // already in the map: the unknown keys were read in order, and
            // the members left in place are inserted in order.
            let before = taken.iter().filter(|&&p| p < position).count();
            let at = (position - before).min(self.extra.len());
            if let Some(value) = self.values[key as usize].take() {
                self.extra.shift_insert(at, key.name().to_owned(), value);
            }
        }
        std::mem::take(&mut self.extra)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn image_key_names_round_trip() {
        for &k in ImageKey::ALL {
            assert_eq!(ImageKey::from_name(k.name()), Some(k));
        }
        assert_eq!(ImageKey::from_name("hv:image"), None);
        assert_eq!(ImageKey::from_name("DC:IDENTIFIER"), None);
    }

    #[test]
    fn members_left_in_place_keep_their_position() {
        let mut f = ImageFields::default();
        // Document order: a, dc:title, b, hv:format, sl:os, c, ad:appid
        let members: [(&str, Value); 7] = [
            ("a", 1.into()),
            ("dc:title", "t".into()),
            ("b", 2.into()),
            ("hv:format", Value::Null),
            ("sl:os", "Linux".into()),
            ("c", 3.into()),
            ("ad:appid", 4.into()),
        ];
        for (position, (key, value)) in members.into_iter().enumerate() {
            match ImageKey::from_name(key) {
                Some(k) => {
                    f.positions[k as usize] = Some(position);
                    f.values[k as usize] = Some(value);
                }
                None => {
                    f.extra.insert(key.to_owned(), value);
                }
            }
        }
        assert_eq!(f.take(ImageKey::Title), Some("t".into()));
        assert_eq!(f.take(ImageKey::Os), Some("Linux".into()));
        assert_eq!(f.take(ImageKey::Os), None);
        let keys: Vec<String> = f.take_extra().keys().cloned().collect();
        assert_eq!(keys, ["a", "b", "hv:format", "c", "ad:appid"]);
    }
}
