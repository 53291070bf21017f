//! Vendor-neutral document machinery: BSON documents addressed by a key schema (shard + sort
//! fields), an order-preserving composite key encoding, condition expressions, partial updates
//! and secondary-index entry derivation. A dialect maps its vendor's wire shapes onto these types
//! and its vendor's error codes onto [`DocError`]; nothing here knows a vendor.
//!
//! Its own crate, below kv-core rather than inside it: the engine stores an item's value as
//! opaque bytes and never decodes a document, so only a document dialect (Huawei KVS) needs this,
//! and kv-core builds without BSON. It depends on no other kvmux crate.

pub mod condition;
pub mod index;
pub mod keycode;
pub mod update;

pub use condition::{Condition, FieldTest};
pub use index::IndexDef;
pub use keycode::{
    compare_values, decode_key, decode_value, encode_key, encode_key_prefix, encode_value,
    extract_fields, field_value, KeySchema,
};
pub use update::UpdateSpec;

/// Why a document operation was refused. Each variant is a distinction a vendor error table
/// needs (bad input vs. a condition that evaluated false vs. a key that cannot be formed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// A key field is missing from a document, or holds a type that cannot be a key.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A condition expression is malformed (unknown operator, wrong operand shape).
    #[error("invalid condition: {0}")]
    InvalidCondition(String),
    /// An update cannot be applied (key field changed, add on a non-number, insert into a
    /// non-array, delete of an absent element ...).
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
    /// The bytes are not a BSON document, or nest deeper than allowed.
    #[error("malformed document: {0}")]
    Malformed(String),
}

/// Deepest nesting of documents/arrays a decoded document may have. Decoding recurses, so an
/// unbounded depth from a client would be a stack overflow instead of a 400.
pub const MAX_DEPTH: usize = 64;

/// Decodes one BSON document, refusing trailing garbage and nesting deeper than [`MAX_DEPTH`]
/// before the recursive decoder ever sees it.
pub fn decode_document(bytes: &[u8]) -> Result<bson::Document, DocError> {
    let raw =
        bson::RawDocument::from_bytes(bytes).map_err(|e| DocError::Malformed(e.to_string()))?;
    check_depth(raw, 1)?;
    bson::Document::try_from(raw).map_err(|e| DocError::Malformed(e.to_string()))
}

fn check_depth(raw: &bson::RawDocument, depth: usize) -> Result<(), DocError> {
    if depth > MAX_DEPTH {
        return Err(DocError::Malformed(format!(
            "nesting deeper than {MAX_DEPTH} levels"
        )));
    }
    for element in raw.iter() {
        let (_, value) = element.map_err(|e| DocError::Malformed(e.to_string()))?;
        match value {
            bson::RawBsonRef::Document(d) => check_depth(d, depth + 1)?,
            bson::RawBsonRef::Array(a) => {
                let as_doc = bson::RawDocument::from_bytes(a.as_bytes())
                    .map_err(|e| DocError::Malformed(e.to_string()))?;
                check_depth(as_doc, depth + 1)?
            }
            bson::RawBsonRef::JavaScriptCodeWithScope(c) => check_depth(c.scope, depth + 1)?,
            _ => {}
        }
    }
    Ok(())
}

/// Encodes a document; infallible for documents built from decoded input, but a dialect still
/// gets an error rather than a panic.
pub fn encode_document(doc: &bson::Document) -> Result<Vec<u8>, DocError> {
    doc.to_vec().map_err(|e| DocError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn decode_round_trips_and_refuses_garbage() {
        let d = doc! {"a": 1, "b": [1, "x", {"c": 2.5}]};
        let bytes = encode_document(&d).unwrap();
        assert_eq!(decode_document(&bytes).unwrap(), d);
        assert!(decode_document(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_document(b"").is_err());
        assert!(decode_document(b"\x05\x00\x00\x00\x01").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut d = doc! {"leaf": 1};
        for _ in 0..(MAX_DEPTH + 5) {
            d = doc! {"n": d};
        }
        let bytes = encode_document(&d).unwrap();
        assert!(
            matches!(decode_document(&bytes), Err(DocError::Malformed(m)) if m.contains("nesting"))
        );
        let mut ok = doc! {"leaf": 1};
        for _ in 0..(MAX_DEPTH - 2) {
            ok = doc! {"n": ok};
        }
        assert!(decode_document(&encode_document(&ok).unwrap()).is_ok());
    }
}
