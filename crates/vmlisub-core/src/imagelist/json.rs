//! A bounded, strict JSON reader.
//!
//! `serde_json::from_slice::<Value>` would accept duplicate object keys
//! (last one wins) and strings of any length. A signed list with two
//! `sl:checksum:sha512` keys means different things to different parsers, so
//! duplicates are rejected outright; strings and nesting are capped so that a
//! hostile list cannot make the parser allocate or recurse without bound.
//! serde_json's own recursion limit (128) stays in force underneath.
//!
//! This module holds the generic part: [`Ctx`] (limits, depth, the deepest
//! level seen), [`ValueSeed`] for values of any shape, [`next_key`] and
//! [`duplicate_key`] for objects, and [`ShapeSeed`] for places where a typed
//! reader wants an object or an array but must accept anything else under
//! the same rules. The list-specific readers built on it are in
//! [`document`](mod@super::document).

use super::identifier::sanitize_for_report;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

/// Limits applied while reading; see [`Limits`](super::Limits).
#[derive(Clone, Copy, Debug)]
pub struct ReadLimits {
    pub max_string_bytes: usize,
    pub max_depth: usize,
}

/// Reads one JSON document from `bytes` with `seed` (no trailing data
/// allowed).
pub fn read_with<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Reads one JSON value from `bytes` (no trailing data allowed). The list
/// parser reads documents with typed seeds instead; this generic form pins
/// down the rules they all share.
#[cfg(test)]
pub fn read(bytes: &[u8], limits: ReadLimits) -> Result<Value, serde_json::Error> {
    let deepest = Cell::new(0);
    read_with(bytes, ValueSeed(Ctx::new(limits, &deepest)))
}

/// The JSON type name of a value, for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// How many levels of arrays and objects an object's contents span, counting
/// the object itself (as the reader counts them: a document is accepted when
/// this is at most `max_depth`). The reader records the same figure for a
/// whole document as it goes ([`Ctx::deepest`]); this tree walk stays as the
/// reference the tests hold it to.
#[cfg(test)]
pub fn nesting(m: &Map<String, Value>) -> usize {
    fn of(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(of).max().unwrap_or(0),
            Value::Object(m) => nesting(m),
            _ => 0,
        }
    }
    1 + m.values().map(of).max().unwrap_or(0)
}

/// Where a reader is: the limits, the depth of the value about to be read
/// (0 for the document itself), and a shared record of the deepest level of
/// arrays and objects entered so far, so that the legacy list form can be
/// checked against the depth limit it will have once wrapped without walking
/// the tree again.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    limits: ReadLimits,
    depth: usize,
    deepest: &'a Cell<usize>,
}

impl<'a> Ctx<'a> {
    /// The context of a document's top-level value.
    pub fn new(limits: ReadLimits, deepest: &'a Cell<usize>) -> Self {
        Ctx {
            limits,
            depth: 0,
            deepest,
        }
    }

    fn check_string<E: de::Error>(&self, s: &str) -> Result<(), E> {
        if s.len() > self.limits.max_string_bytes {
            return Err(E::custom(format_args!(
                "string of {} bytes exceeds the maximum of {}",
                s.len(),
                self.limits.max_string_bytes
            )));
        }
        Ok(())
    }

    /// Enters an array or object: the context of its members, or an error if
    /// that is one level too many.
    pub fn nested<E: de::Error>(&self) -> Result<Ctx<'a>, E> {
        if self.depth >= self.limits.max_depth {
            return Err(E::custom(format_args!(
                "nesting deeper than {} levels",
                self.limits.max_depth
            )));
        }
        let level = self.depth + 1;
        if level > self.deepest.get() {
            self.deepest.set(level);
        }
        Ok(Ctx {
            limits: self.limits,
            depth: level,
            deepest: self.deepest,
        })
    }
}

/// Reads the next key of an object, checked against the string limit.
/// Keys without escapes are borrowed from the input: the typed readers match
/// most keys against known names and only allocate for the others.
pub fn next_key<'de, A: MapAccess<'de>>(
    map: &mut A,
    ctx: Ctx<'_>,
) -> Result<Option<Cow<'de, str>>, A::Error> {
    let Some(key) = map.next_key_seed(KeySeed)? else {
        return Ok(None);
    };
    ctx.check_string::<A::Error>(&key)?;
    Ok(Some(key))
}

/// The error for a key that occurs twice in one object.
pub fn duplicate_key<E: de::Error>(key: &str) -> E {
    E::custom(format_args!(
        "duplicate object key \"{}\"",
        sanitize_for_report(key)
    ))
}

/// Reads the value of `key` and adds the member to `out`, rejecting a
/// duplicate key. Typed readers use it for the keys they do not model.
pub fn insert_member<'de, A: MapAccess<'de>>(
    map: &mut A,
    inner: Ctx<'_>,
    out: &mut Map<String, Value>,
    key: Cow<'de, str>,
) -> Result<(), A::Error> {
    if out.contains_key(key.as_ref()) {
        return Err(duplicate_key(&key));
    }
    let value = map.next_value_seed(ValueSeed(inner))?;
    out.insert(key.into_owned(), value);
    Ok(())
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Reads any JSON value into a [`Value`], under the limits of its [`Ctx`].
#[derive(Clone, Copy)]
pub struct ValueSeed<'a>(pub Ctx<'a>);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.check_string(v)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.check_string(&v)?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        ValueSeed(self.0.nested()?).elements(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        ValueSeed(self.0.nested()?).members(map)
    }
}

impl ValueSeed<'_> {
    /// The elements of an array, this being their context.
    fn elements<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    /// The members of an object, this being their context.
    fn members<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = next_key(&mut map, self.0)? {
            insert_member(&mut map, self.0, &mut out, key)?;
        }
        Ok(Value::Object(out))
    }
}

/// A typed reader for one place in a document where the format wants an
/// object or an array: it implements [`object`](Shape::object) or
/// [`array`](Shape::array) (or both), and [`ShapeSeed`] reads any other
/// value exactly as [`ValueSeed`] would, reporting only its JSON type.
///
/// `inner` is the context of the container's members: the container has
/// already been counted against the depth limit.
pub trait Shape<'de>: Sized {
    /// What the reader makes of the container.
    type Out;

    /// Reads an object; by default like any other unexpected value.
    fn object<A: MapAccess<'de>>(
        self,
        inner: Ctx<'_>,
        map: A,
    ) -> Result<Shaped<Self::Out>, A::Error> {
        json_type(ValueSeed(inner).members(map))
    }

    /// Reads an array; by default like any other unexpected value.
    fn array<A: SeqAccess<'de>>(
        self,
        inner: Ctx<'_>,
        seq: A,
    ) -> Result<Shaped<Self::Out>, A::Error> {
        json_type(ValueSeed(inner).elements(seq))
    }
}

/// What a [`ShapeSeed`] read.
pub enum Shaped<T> {
    /// The shape the reader wanted, read by it.
    Expected(T),
    /// Some other JSON value, of this type.
    Other(&'static str),
}

/// Keeps only the JSON type of a value read where another was expected
/// (which is all the parser reports about it).
fn json_type<T, E>(value: Result<Value, E>) -> Result<Shaped<T>, E> {
    value.map(|v| Shaped::Other(type_name(&v)))
}

/// Reads one value with the [`Shape`] `S`; see there.
pub struct ShapeSeed<'a, S> {
    pub ctx: Ctx<'a>,
    pub shape: S,
}

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for ShapeSeed<'_, S> {
    type Value = Shaped<S::Out>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: Shape<'de>> Visitor<'de> for ShapeSeed<'_, S> {
    type Value = Shaped<S::Out>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        json_type(ValueSeed(self.ctx).visit_bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        json_type(ValueSeed(self.ctx).visit_i64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        json_type(ValueSeed(self.ctx).visit_u64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        json_type(ValueSeed(self.ctx).visit_f64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        json_type(ValueSeed(self.ctx).visit_str(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        json_type(ValueSeed(self.ctx).visit_string(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        json_type(ValueSeed(self.ctx).visit_unit())
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        json_type(ValueSeed(self.ctx).visit_none())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let inner = self.ctx.nested()?;
        self.shape.array(inner, seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let inner = self.ctx.nested()?;
        self.shape.object(inner, map)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const LIMITS: ReadLimits = ReadLimits {
        max_string_bytes: 16,
        max_depth: 4,
    };

    #[test]
    fn reads_plain_values() {
        let v = read(br#"{"a": [1, -2, 3.5, true, null, "s"], "b": {}}"#, LIMITS).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": [1, -2, 3.5, true, null, "s"], "b": {}})
        );
    }

    #[test]
    fn keeps_key_order() {
        let v = read(br#"{"z": 1, "a": 2, "m": 3}"#, LIMITS).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn rejects_duplicate_keys() {
        let e = read(br#"{"a": 1, "a": 2}"#, LIMITS).unwrap_err();
        assert!(e.to_string().contains("duplicate object key \"a\""), "{e}");
        // Also nested, and also when the escapes differ but decode equally.
        assert!(read(br#"{"x": {"a": 1, "\u0061": 2}}"#, LIMITS).is_err());
    }

    #[test]
    fn caps_strings_and_keys() {
        assert!(read(br#""0123456789abcdef""#, LIMITS).is_ok());
        let e = read(br#""0123456789abcdefg""#, LIMITS).unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
        assert!(read(br#"{"0123456789abcdefg": 1}"#, LIMITS).is_err());
        // Escaped strings go through visit_string.
        assert!(read(br#""\n123456789abcdefg""#, LIMITS).is_err());
    }

    #[test]
    fn caps_depth() {
        assert!(read(b"[[[[1]]]]", LIMITS).is_ok());
        let e = read(b"[[[[[1]]]]]", LIMITS).unwrap_err();
        assert!(e.to_string().contains("nesting"), "{e}");
        assert!(read(br#"{"a":{"b":{"c":{"d":{}}}}}"#, LIMITS).is_err());
    }

    #[test]
    fn nesting_matches_the_reader() {
        for (text, want) in [
            ("{}", 1),
            (r#"{"a": 1}"#, 1),
            (r#"{"a": []}"#, 2),
            (r#"{"a": [{}], "b": {"c": [[1]]}}"#, 4),
        ] {
            let v = read(text.as_bytes(), LIMITS).unwrap();
            assert_eq!(nesting(v.as_object().unwrap()), want, "{text}");
            let tight = ReadLimits {
                max_depth: want,
                ..LIMITS
            };
            assert!(read(text.as_bytes(), tight).is_ok());
            let tighter = ReadLimits {
                max_depth: want - 1,
                ..LIMITS
            };
            assert!(read(text.as_bytes(), tighter).is_err());
        }
    }

    #[test]
    fn deepest_level_matches_nesting() {
        for text in [
            "{}",
            r#"{"a": 1}"#,
            r#"{"a": []}"#,
            r#"{"a": [{}], "b": {"c": [[1]]}}"#,
            r#"{"a": [[[]]], "b": {}}"#,
        ] {
            let deepest = Cell::new(0);
            let v = read_with(text.as_bytes(), ValueSeed(Ctx::new(LIMITS, &deepest))).unwrap();
            assert_eq!(deepest.get(), nesting(v.as_object().unwrap()), "{text}");
        }
    }

    #[test]
    fn serde_json_recursion_limit_still_applies() {
        let deep = "[".repeat(100_000);
        let limits = ReadLimits {
            max_string_bytes: 16,
            max_depth: usize::MAX,
        };
        assert!(read(deep.as_bytes(), limits).is_err());
    }

    #[test]
    fn rejects_trailing_data_and_bad_utf8() {
        assert!(read(b"{} {}", LIMITS).is_err());
        assert!(read(b"{}  \n", LIMITS).is_ok());
        assert!(read(b"\"\xff\"", LIMITS).is_err());
        assert!(read(b"", LIMITS).is_err());
        assert!(read(b"1e400", LIMITS).is_err());
    }
}
