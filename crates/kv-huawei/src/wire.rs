//! The KVS wire models (spec §2), read from and written to BSON documents with the vendor's
//! snake_case field names. Request fields are read by hand rather than through serde so that
//! every protocol number may arrive as int32, int64 or double (each SDK picks a different one)
//! and every wrong type becomes a precise `KVS.00001001` message instead of a generic failure.

use bson::{Bson, Document};
use kv_doc::{Condition, FieldTest, UpdateSpec};

use crate::error::KvsError;

fn type_name(v: &Bson) -> String {
    format!("{:?}", v.element_type())
}

/// An optional string field.
pub fn opt_str(doc: &Document, key: &str) -> Result<Option<String>, KvsError> {
    match doc.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(KvsError::bad_request(format!(
            "`{key}` must be a string, not {}",
            type_name(v)
        ))),
    }
}

pub fn req_str(doc: &Document, key: &str) -> Result<String, KvsError> {
    opt_str(doc, key)?.ok_or_else(|| KvsError::bad_request(format!("`{key}` is required")))
}

/// An optional integer field: int32, int64 or an integral double.
pub fn opt_int(doc: &Document, key: &str) -> Result<Option<i64>, KvsError> {
    match doc.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Int32(i)) => Ok(Some(i64::from(*i))),
        Some(Bson::Int64(i)) => Ok(Some(*i)),
        Some(Bson::Double(d)) if d.fract() == 0.0 && d.abs() < 9.0e15 => Ok(Some(*d as i64)),
        Some(v) => Err(KvsError::bad_request(format!(
            "`{key}` must be an integer, not {}",
            type_name(v)
        ))),
    }
}

pub fn opt_bool(doc: &Document, key: &str) -> Result<Option<bool>, KvsError> {
    match doc.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Boolean(b)) => Ok(Some(*b)),
        Some(v) => Err(KvsError::bad_request(format!(
            "`{key}` must be a boolean, not {}",
            type_name(v)
        ))),
    }
}

pub fn opt_doc<'a>(doc: &'a Document, key: &str) -> Result<Option<&'a Document>, KvsError> {
    match doc.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(v) => Err(KvsError::bad_request(format!(
            "`{key}` must be a document, not {}",
            type_name(v)
        ))),
    }
}

pub fn req_doc<'a>(doc: &'a Document, key: &str) -> Result<&'a Document, KvsError> {
    opt_doc(doc, key)?.ok_or_else(|| KvsError::bad_request(format!("`{key}` is required")))
}

pub fn opt_array<'a>(doc: &'a Document, key: &str) -> Result<Option<&'a Vec<Bson>>, KvsError> {
    match doc.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Array(a)) => Ok(Some(a)),
        Some(v) => Err(KvsError::bad_request(format!(
            "`{key}` must be an array, not {}",
            type_name(v)
        ))),
    }
}

pub fn req_array<'a>(doc: &'a Document, key: &str) -> Result<&'a Vec<Bson>, KvsError> {
    opt_array(doc, key)?.ok_or_else(|| KvsError::bad_request(format!("`{key}` is required")))
}

/// The documents of an array field (each element must be a document).
pub fn doc_array<'a>(
    doc: &'a Document,
    key: &str,
    required: bool,
) -> Result<Vec<&'a Document>, KvsError> {
    let items = match opt_array(doc, key)? {
        Some(a) => a,
        None if required => return Err(KvsError::bad_request(format!("`{key}` is required"))),
        None => return Ok(Vec::new()),
    };
    items
        .iter()
        .map(|v| match v {
            Bson::Document(d) => Ok(d),
            other => Err(KvsError::bad_request(format!(
                "`{key}` must hold documents, not {}",
                type_name(other)
            ))),
        })
        .collect()
}

/// An array of strings.
pub fn str_array(doc: &Document, key: &str) -> Result<Vec<String>, KvsError> {
    let Some(items) = opt_array(doc, key)? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|v| match v {
            Bson::String(s) => Ok(s.clone()),
            other => Err(KvsError::bad_request(format!(
                "`{key}` must hold strings, not {}",
                type_name(other)
            ))),
        })
        .collect()
}

/// A request's `limit`: 1..=100, default 100.
pub fn scan_limit(doc: &Document) -> Result<usize, KvsError> {
    match opt_int(doc, "limit")? {
        None => Ok(100),
        Some(n) if (1..=100).contains(&n) => Ok(n as usize),
        Some(n) => Err(KvsError::bad_request(format!(
            "`limit` must be between 1 and 100, got {n}"
        ))),
    }
}

/// `[{name, order?}]` -> field names.
pub fn key_fields(doc: &Document, key: &str) -> Result<Vec<String>, KvsError> {
    doc_array(doc, key, false)?
        .into_iter()
        .map(|f| req_str(f, "name"))
        .collect()
}

// ------------------------------------------------------------------ condition expressions

const MAX_EXPRESSION_DEPTH: usize = kv_doc::condition::MAX_CONDITION_DEPTH;

fn cond_err(m: impl Into<String>) -> KvsError {
    KvsError::condition_invalid(m)
}

/// The operand of a single-field expression: the value of the one element of `value`.
fn operand(value: &Document) -> Result<Bson, KvsError> {
    let mut it = value.iter();
    match (it.next(), it.next()) {
        (Some((_, v)), None) => Ok(v.clone()),
        _ => Err(cond_err("`value` must hold exactly one element")),
    }
}

fn single_field(sfe: &Document) -> Result<Condition, KvsError> {
    let field = opt_str(sfe, "field")
        .map_err(|e| cond_err(e.message))?
        .ok_or_else(|| cond_err("`field` is required"))?;
    let func = opt_str(sfe, "func")
        .map_err(|e| cond_err(e.message))?
        .ok_or_else(|| cond_err("`func` is required"))?;
    let value = match opt_doc(sfe, "value").map_err(|e| cond_err(e.message))? {
        Some(v) => Some(operand(v)?),
        None => None,
    };
    let values = match opt_array(sfe, "value_array").map_err(|e| cond_err(e.message))? {
        Some(items) => Some(
            items
                .iter()
                .map(|v| match v {
                    Bson::Document(d) => operand(d),
                    other => Ok(other.clone()),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let test = FieldTest::from_operator(&func, value, values)?;
    Ok(Condition::Field { path: field, test })
}

fn logic(doc: &Document) -> Result<Option<String>, KvsError> {
    opt_str(doc, "logic").map_err(|e| cond_err(e.message))
}

fn multi_field(mfe: &Document) -> Result<Condition, KvsError> {
    let children = doc_array(mfe, "expressions", true)
        .map_err(|e| cond_err(e.message))?
        .into_iter()
        .map(single_field)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Condition::combine(logic(mfe)?.as_deref(), children)?)
}

fn composed(ce: &Document, depth: usize) -> Result<Condition, KvsError> {
    if depth > MAX_EXPRESSION_DEPTH {
        return Err(cond_err("composed expressions nest too deeply"));
    }
    let children = doc_array(ce, "expressions", true)
        .map_err(|e| cond_err(e.message))?
        .into_iter()
        .map(|e| expression(e, depth + 1))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Condition::combine(logic(ce)?.as_deref(), children)?)
}

/// An `Expression` / `ConditionExpression`: the present parts are and-ed.
fn expression(doc: &Document, depth: usize) -> Result<Condition, KvsError> {
    let mut parts = Vec::new();
    let sub = |k: &str| opt_doc(doc, k).map_err(|e| cond_err(e.message));
    if let Some(s) = sub("single_field_expression")? {
        parts.push(single_field(s)?);
    }
    if let Some(m) = sub("multi_field_expression")? {
        parts.push(multi_field(m)?);
    }
    if let Some(c) = sub("composed_expression")? {
        parts.push(composed(c, depth)?);
    }
    if let Some(k) = sub("single_kv_expression")? {
        let func = opt_str(k, "func")
            .map_err(|e| cond_err(e.message))?
            .ok_or_else(|| cond_err("`func` is required"))?;
        parts.push(match func.as_str() {
            // Every KV kvmux stores is a document, so is_doc is existence and is_blob never holds.
            "is_exist" | "is_doc" => Condition::Exists(true),
            "not_exist" => Condition::Exists(false),
            "is_blob" => Condition::Or(Vec::new()),
            other => {
                return Err(cond_err(format!(
                    "unknown single_kv_expression func `{other}`"
                )))
            }
        });
    }
    if parts.is_empty() {
        return Err(cond_err("the expression has no part"));
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        Condition::And(parts)
    })
}

/// The optional condition under `key` of a request.
pub fn condition(doc: &Document, key: &str) -> Result<Option<Condition>, KvsError> {
    match opt_doc(doc, key).map_err(|e| cond_err(e.message))? {
        None => Ok(None),
        Some(c) if c.is_empty() => Ok(None),
        Some(c) => expression(c, 0).map(Some),
    }
}

// ------------------------------------------------------------------ update_fields

/// `update_fields`: the update plus the optional upsert document.
pub struct UpdateFields {
    pub spec: UpdateSpec,
    pub upsert: Option<Document>,
}

pub fn update_fields(doc: &Document) -> Result<UpdateFields, KvsError> {
    let Some(u) = opt_doc(doc, "update_fields")? else {
        return Ok(UpdateFields {
            spec: UpdateSpec::default(),
            upsert: None,
        });
    };
    if opt_doc(u, "update_blob")?.is_some() {
        return Err(KvsError::not_implemented(
            "update_blob: blob KVs are not supported by kvmux",
        ));
    }
    let d = |k: &str| opt_doc(u, k).map(|o| o.cloned().unwrap_or_default());
    Ok(UpdateFields {
        spec: UpdateSpec {
            set: d("set")?,
            add: d("add")?,
            rmv: str_array(u, "rmv")?,
            insert: d("insert")?,
            delete: d("delete")?,
        },
        upsert: opt_doc(u, "upsert")?.cloned(),
    })
}

// ------------------------------------------------------------------ helpers for replies

/// `[{name: f}]`, the wire shape of a key-field list.
pub fn fields_to_wire(fields: &[String]) -> Bson {
    Bson::Array(
        fields
            .iter()
            .map(|f| Bson::Document(bson::doc! {"name": f}))
            .collect(),
    )
}

/// A count as int32, which every SDK's declared type accepts.
pub fn count(n: usize) -> Bson {
    Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn conditions_parse_all_shapes() {
        let d = doc! {"c": {
            "single_field_expression": {"field": "n", "func": "$gt", "value": {"": 1}},
            "multi_field_expression": {"logic": "$or", "expressions": [
                {"field": "s", "func": "$prefix", "value": {"s": "ab"}},
                {"field": "t", "func": "$in", "value_array": [{"": 1}, {"": 2}]},
            ]},
            "composed_expression": {"logic": "$nor", "expressions": [
                {"single_field_expression": {"field": "x", "func": "$exists", "value": {"": true}}},
            ]},
        }};
        let c = condition(&d, "c").unwrap().unwrap();
        assert!(c.evaluate(Some(&doc! {"n": 2, "s": "abc"})));
        assert!(!c.evaluate(Some(&doc! {"n": 2, "s": "abc", "x": 0})));
        assert!(!c.evaluate(Some(&doc! {"n": 1, "t": 2})));
        assert!(c.evaluate(Some(&doc! {"n": 1.5, "t": 2i64})));
    }

    #[test]
    fn bad_conditions_are_5016() {
        for bad in [
            doc! {"c": {"single_field_expression": {"field": "n", "func": "$like", "value": {"": 1}}}},
            doc! {"c": {"single_field_expression": {"field": "n", "func": "$gt"}}},
            doc! {"c": {"single_field_expression": {"field": "n", "func": "$gt", "value": {"a": 1, "b": 2}}}},
            doc! {"c": {"multi_field_expression": {"logic": "$xor", "expressions": []}}},
            doc! {"c": {"composed_expression": {"expressions": "nope"}}},
            doc! {"c": 5},
            doc! {"c": {"unknown": {}}},
        ] {
            assert_eq!(
                condition(&bad, "c").unwrap_err().code,
                "KVS.00005016",
                "{bad}"
            );
        }
        let mut deep =
            doc! {"single_field_expression": {"field": "n", "func": "$eq", "value": {"": 1}}};
        for _ in 0..40 {
            deep = doc! {"composed_expression": {"expressions": [deep]}};
        }
        assert_eq!(
            condition(&doc! {"c": deep}, "c").unwrap_err().code,
            "KVS.00005016"
        );
    }

    #[test]
    fn numbers_in_any_width() {
        let d = doc! {"a": 5, "b": 5i64, "c": 5.0, "d": 5.5, "e": "5"};
        assert_eq!(opt_int(&d, "a").unwrap(), Some(5));
        assert_eq!(opt_int(&d, "b").unwrap(), Some(5));
        assert_eq!(opt_int(&d, "c").unwrap(), Some(5));
        assert!(opt_int(&d, "d").is_err());
        assert_eq!(opt_int(&d, "e").unwrap_err().code, "KVS.00001001");
        assert_eq!(
            scan_limit(&doc! {"limit": 101}).unwrap_err().code,
            "KVS.00001001"
        );
        assert_eq!(scan_limit(&doc! {}).unwrap(), 100);
    }
}
