//! Strict JSON reading and Notary's canonical JSON.
//!
//! Notary signs and verifies the *canonical re-encoding* of the `signed` value, using
//! `github.com/docker/go/canonical/json` (see `research/notary-server-spec.md` §4.2):
//! object members sorted by key bytes, no whitespace, strings with only `"` and `\`
//! escaped, integers only. [`to_canonical`] reproduces that byte for byte.
//!
//! Reading is stricter than Go's `encoding/json` on purpose (attack catalogue §5.6): a
//! duplicate object key, trailing data, a fractional or out-of-range number, invalid UTF-8
//! or a lone surrogate is an error, because each of them lets two parsers disagree about
//! what a signature covers. Real notary clients never produce any of them.
//!
//! Pure code: no I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Go decodes JSON numbers into float64 before canonicalising, so only integers in this
/// range survive exactly; anything larger would be signed over a rounded value.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Nesting deeper than this is refused before it can exhaust the stack.
pub const MAX_DEPTH: usize = 100;

/// A JSON value as read by [`parse`]. Objects keep their members sorted by key bytes,
/// which is exactly the order the canonical form needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every number is an integer within ±(2^53 − 1).
    Integer(i64),
    String(String),
    Array(Vec<Value>),
    Object(BTreeMap<String, Value>),
}

impl Value {
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(n) => Some(*n),
            _ => None,
        }
    }

    fn depth(&self) -> usize {
        match self {
            Value::Array(items) => 1 + items.iter().map(Value::depth).max().unwrap_or(0),
            Value::Object(members) => 1 + members.values().map(Value::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("invalid JSON: {0}")]
    Syntax(String),
    #[error("duplicate key {0:?} in a JSON object")]
    DuplicateKey(String),
    #[error("JSON nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Parses one JSON document (surrounding whitespace allowed, nothing else).
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        // serde_json reports our visitor's duplicate-key error as a custom message.
        match message.strip_prefix(DUPLICATE_KEY_PREFIX) {
            Some(rest) => JsonError::DuplicateKey(rest.split(" at line").next().unwrap_or(rest).to_string()),
            None if message.starts_with("recursion limit exceeded") => JsonError::TooDeep,
            None => JsonError::Syntax(message),
        }
    })?;
    if value.depth() > MAX_DEPTH {
        return Err(JsonError::TooDeep);
    }
    Ok(value)
}

const DUPLICATE_KEY_PREFIX: &str = "duplicate key ";

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER as u64 {
            return Err(E::custom(format!("number {v} is outside ±2^53")));
        }
        Ok(Value::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_SAFE_INTEGER as u64 {
            return Err(E::custom(format!("number {v} is outside ±2^53")));
        }
        Ok(Value::Integer(v as i64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // Go's canonical encoder refuses fractional numbers, and notary never writes
        // integral ones with a fraction or exponent; accepting `1.0` or `1e0` would let the
        // wire bytes and the signed bytes disagree.
        Err(E::custom(format!("number {v} is not an integer")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE_KEY_PREFIX}{key}")));
            }
            let value = map.next_value()?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

/// The canonical encoding of `value`, byte-identical to docker/go's `MarshalCanonical` of
/// the same value decoded by Go into `interface{}`.
pub fn to_canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_canonical_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            // BTreeMap<String, _> iterates in byte order of the keys, which is Go's
            // `sort.Strings` order (not the order of the escaped, quoted keys).
            out.push(b'{');
            for (i, (key, member)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical_string(key, out);
                out.push(b':');
                write_canonical(member, out);
            }
            out.push(b'}');
        }
    }
}

/// docker/go canonical mode escapes only the quote and the backslash; every other byte,
/// control characters and non-ASCII included, is written as it is.
fn write_canonical_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in s.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// The form Go's ordinary encoder gives canonical bytes when it embeds them in the
/// `{"signed":…,"signatures":…}` envelope: `<`, `>`, `&`, U+2028 and U+2029 re-escaped
/// as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029` (spec §4.1). Files we generate
/// are written this way so they look exactly like notary-server's.
pub fn go_envelope_escape(canonical: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(canonical);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        String::from_utf8(to_canonical(&parse(text.as_bytes()).unwrap())).unwrap()
    }

    #[test]
    fn sorts_keys_by_raw_bytes_not_by_quoted_form() {
        // olpc-cjson sorts `"a!"` before `"a"`; Go sorts the raw strings.
        assert_eq!(canon(r#"{"a!":1,"a":2,"B":3}"#), r#"{"B":3,"a":2,"a!":1}"#);
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        assert_eq!(
            canon(r#"{"k":"a<b>&c \u00e9 \"q\" \\ \/ \u2028"}"#),
            "{\"k\":\"a<b>&c \u{e9} \\\"q\\\" \\\\ / \u{2028}\"}"
        );
        // Control characters are written raw.
        assert_eq!(canon(r#"["\n\u0001"]"#), "[\"\n\u{1}\"]");
    }

    #[test]
    fn keeps_unicode_unnormalised() {
        let nfd = "{\"e\u{301}\":1}";
        assert_eq!(canon(nfd), nfd);
    }

    #[test]
    fn removes_whitespace_and_keeps_array_order() {
        assert_eq!(canon(" { \"b\" : [ 3 , 1 , 2 ] ,\n\"a\":null } "), r#"{"a":null,"b":[3,1,2]}"#);
    }

    #[test]
    fn refuses_duplicate_keys_anywhere() {
        assert_eq!(parse(br#"{"signed":{"version":1,"version":2}}"#), Err(JsonError::DuplicateKey("version".into())));
        assert!(matches!(parse(br#"[{"a":1,"a":1}]"#), Err(JsonError::DuplicateKey(_))));
    }

    #[test]
    fn refuses_trailing_data_and_bad_numbers() {
        for bad in [
            &br#"{"a":1} {"b":2}"#[..],
            br#"{"a":1} junk"#,
            br#"{"a":1.0}"#,
            br#"{"a":1e0}"#,
            br#"{"a":9007199254740992}"#,
            br#"{"a":-9007199254740992}"#,
            br#"{"a":18446744073709551616}"#,
            br#"{"a":NaN}"#,
            br#"{"a":01}"#,
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"9007199254740991"), Ok(Value::Integer(MAX_SAFE_INTEGER)));
    }

    #[test]
    fn refuses_bad_encodings() {
        assert!(parse(b"\"\xff\"").is_err());
        assert!(parse(br#""\ud800""#).is_err());
        assert!(parse(b"\xef\xbb\xbf{}").is_err());
        assert!(parse(b"\"a\x01\"").is_err());
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(parse(deep.as_bytes()).is_err());
        let ok = "[".repeat(50) + &"]".repeat(50);
        assert!(parse(ok.as_bytes()).is_ok());
        let too_deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(too_deep.as_bytes()), Err(JsonError::TooDeep));
    }

    #[test]
    fn envelope_escape_matches_go() {
        assert_eq!(
            go_envelope_escape("{\"a<b>&c é\u{2028}\":1}".as_bytes()),
            r#"{"a\u003cb\u003e\u0026c é\u2028":1}"#.as_bytes().to_vec()
        );
    }
}
