//! BSON documents as MongoDB extended JSON that keeps field order, for people (the dashboard,
//! relaxed) and for snapshots (canonical, which gives back every BSON type exactly).
//!
//! The bson crate converts through `serde_json::Value`, whose objects are sorted maps in this
//! build (serde_json without `preserve_order`), so a document would come back with its fields
//! reordered. [`ExtJson`] is the same JSON with objects as ordered lists of fields: documents and
//! arrays are walked here, and only the leaves (and `$`-wrappers such as `{"$date": ..}`, whose
//! order does not matter) go through the bson crate.

use std::fmt;

use bson::{Bson, Document};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// JSON whose objects keep their field order.
#[derive(Clone, Debug, PartialEq)]
pub enum ExtJson {
    /// A scalar, or an extended JSON wrapper of one BSON value (`{"$numberLong": "5"}`).
    Leaf(serde_json::Value),
    Object(Vec<(String, ExtJson)>),
    Array(Vec<ExtJson>),
}

/// Canonical (every type explicit, exact) or relaxed (plain JSON numbers where they fit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Canonical,
    Relaxed,
}

/// `value` as extended JSON, documents in field order.
pub fn from_bson(value: Bson, mode: Mode) -> ExtJson {
    match value {
        Bson::Document(doc) => ExtJson::Object(
            doc.into_iter()
                .map(|(k, v)| (k, from_bson(v, mode)))
                .collect(),
        ),
        Bson::Array(items) => {
            ExtJson::Array(items.into_iter().map(|v| from_bson(v, mode)).collect())
        }
        leaf => ExtJson::Leaf(match mode {
            Mode::Canonical => leaf.into_canonical_extjson(),
            Mode::Relaxed => leaf.into_relaxed_extjson(),
        }),
    }
}

/// The BSON value that extended JSON (canonical or relaxed) describes; an object whose first
/// field starts with `$` is a type wrapper.
pub fn to_bson(value: ExtJson) -> Result<Bson, String> {
    match value {
        ExtJson::Leaf(v) => Bson::try_from(v).map_err(|e| e.to_string()),
        ExtJson::Array(items) => items
            .into_iter()
            .map(to_bson)
            .collect::<Result<Vec<_>, _>>()
            .map(Bson::Array),
        ExtJson::Object(fields) if fields.first().is_some_and(|(k, _)| k.starts_with('$')) => {
            Bson::try_from(ExtJson::Object(fields).into_value()).map_err(|e| e.to_string())
        }
        ExtJson::Object(fields) => {
            let mut doc = Document::new();
            for (k, v) in fields {
                doc.insert(k, to_bson(v)?);
            }
            Ok(Bson::Document(doc))
        }
    }
}

/// The BSON bytes of `doc` as canonical extended JSON, if that gives back exactly these bytes
/// (it does for every document a client can store; `None` for bytes that are not one BSON
/// document, or a document with `$`-named fields that would read back as a type wrapper).
pub fn exact_document(bytes: &[u8]) -> Option<ExtJson> {
    let doc = Document::from_reader(&mut &bytes[..]).ok()?;
    let ext = from_bson(Bson::Document(doc), Mode::Canonical);
    match to_bson(ext.clone()).ok()? {
        Bson::Document(back) if back.to_vec().ok()? == bytes => Some(ext),
        _ => None,
    }
}

/// The BSON bytes of a document written as extended JSON.
pub fn document_bytes(value: ExtJson) -> Result<Vec<u8>, String> {
    match to_bson(value)? {
        Bson::Document(doc) => doc.to_vec().map_err(|e| e.to_string()),
        other => Err(format!(
            "a document must be a JSON object, not {:?}",
            other.element_type()
        )),
    }
}

impl ExtJson {
    /// As a `serde_json::Value` (objects lose their order).
    pub fn into_value(self) -> serde_json::Value {
        match self {
            ExtJson::Leaf(v) => v,
            ExtJson::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(ExtJson::into_value).collect())
            }
            ExtJson::Object(fields) => serde_json::Value::Object(
                fields
                    .into_iter()
                    .map(|(k, v)| (k, v.into_value()))
                    .collect(),
            ),
        }
    }
}

impl Serialize for ExtJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ExtJson::Leaf(v) => v.serialize(serializer),
            ExtJson::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            ExtJson::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ExtJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExtJsonVisitor)
    }
}

struct ExtJsonVisitor;

impl<'de> Visitor<'de> for ExtJsonVisitor {
    type Value = ExtJson;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<ExtJson, E> {
        Ok(ExtJson::Leaf(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<ExtJson, E> {
        Ok(ExtJson::Leaf(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<ExtJson, E> {
        Ok(ExtJson::Leaf(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<ExtJson, E> {
        Ok(ExtJson::Leaf(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<ExtJson, E> {
        Ok(ExtJson::Leaf(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<ExtJson, E> {
        Ok(ExtJson::Leaf(v.into()))
    }
    fn visit_unit<E>(self) -> Result<ExtJson, E> {
        Ok(ExtJson::Leaf(serde_json::Value::Null))
    }
    fn visit_none<E>(self) -> Result<ExtJson, E> {
        Ok(ExtJson::Leaf(serde_json::Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ExtJson, D::Error> {
        ExtJson::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExtJson, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(ExtJson::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExtJson, A::Error> {
        let mut fields = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, ExtJson>()? {
            fields.push((k, v));
        }
        Ok(ExtJson::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, spec::BinarySubtype, Binary};

    fn sample() -> Document {
        doc! {
            "zeta": 1_i32,
            "big": 1_i64 << 40,
            "small_long": 5_i64,
            "d": 2.0,
            "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2] },
            "when": bson::DateTime::from_millis(1_700_000_000_123),
            "nested": {"b": "x\u{0}y", "a": [1_i32, {"$not": "a wrapper"}]},
            "alpha": bson::Bson::Null,
        }
    }

    #[test]
    fn canonical_json_gives_back_the_same_bytes_in_field_order() {
        let bytes = sample().to_vec().expect("bson");
        let ext = exact_document(&bytes).expect("round trips");
        let text = serde_json::to_string(&ext).expect("json");
        assert!(
            text.starts_with(r#"{"zeta":{"$numberInt":"1"},"big":{"$numberLong":"1099511627776"}"#),
            "{text}"
        );
        assert!(text.contains(r#""d":{"$numberDouble":"2.0"}"#), "{text}");
        assert!(
            text.contains(r#""when":{"$date":{"$numberLong":"1700000000123"}}"#),
            "{text}"
        );
        let parsed: ExtJson = serde_json::from_str(&text).expect("parse");
        assert_eq!(document_bytes(parsed).expect("bytes"), bytes);
    }

    #[test]
    fn relaxed_json_is_plain_where_json_has_the_type() {
        let ext = from_bson(
            Bson::Document(doc! {"n": 7_i32, "s": "x", "f": 1.5}),
            Mode::Relaxed,
        );
        assert_eq!(
            serde_json::to_string(&ext).expect("json"),
            r#"{"n":7,"s":"x","f":1.5}"#
        );
    }

    #[test]
    fn what_is_not_a_document_is_not_claimed() {
        assert!(exact_document(b"plain text").is_none());
        // A field named like a wrapper would read back as that type: left to base64.
        let tricky = doc! {"$numberInt": "5"}.to_vec().expect("bson");
        assert!(exact_document(&tricky).is_none());
        assert!(document_bytes(ExtJson::Leaf(serde_json::json!(5))).is_err());
    }
}
