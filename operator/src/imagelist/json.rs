//! A bounded, strict JSON reader.
//!
//! `serde_json::from_slice::<Value>` would accept duplicate object keys
//! (last one wins) and strings of any length. A signed list with two
//! `sl:checksum:sha512` keys means different things to different parsers, so
//! duplicates are rejected outright; strings and nesting are capped so that a
//! hostile list cannot make the parser allocate or recurse without bound.
//! serde_json's own recursion limit (128) stays in force underneath.

use super::identifier::sanitize_for_report;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Limits applied while reading; see [`Limits`](super::Limits).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadLimits {
    pub max_string_bytes: usize,
    pub max_depth: usize,
}

/// Reads one JSON value from `bytes` (no trailing data allowed).
pub(crate) fn read(bytes: &[u8], limits: ReadLimits) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = ValueSeed { limits, depth: 0 }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The JSON type name of a value, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
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
/// the object itself (as [`read`] counts them: a document is accepted when
/// this is at most `max_depth`). Recursion is bounded by the depth the value
/// was read with.
pub(crate) fn nesting(m: &Map<String, Value>) -> usize {
    fn of(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(of).max().unwrap_or(0),
            Value::Object(m) => nesting(m),
            _ => 0,
        }
    }
    1 + m.values().map(of).max().unwrap_or(0)
}

#[derive(Clone, Copy)]
struct ValueSeed {
    limits: ReadLimits,
    depth: usize,
}

impl ValueSeed {
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

    fn nested<E: de::Error>(&self) -> Result<ValueSeed, E> {
        if self.depth >= self.limits.max_depth {
            return Err(E::custom(format_args!(
                "nesting deeper than {} levels",
                self.limits.max_depth
            )));
        }
        Ok(ValueSeed {
            limits: self.limits,
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
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
        self.check_string(v)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.check_string(&v)?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.check_string::<A::Error>(&key)?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate object key \"{}\"",
                    sanitize_for_report(&key)
                )));
            }
            let value = map.next_value_seed(inner)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
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
