//! TEO 2022-09-01 EdgeKV request and response types, with Tencent's (case-sensitive PascalCase)
//! field names, and the decoding of the three request shapes into one JSON object:
//! a TC3 POST carries a JSON body; TC3 GET and the legacy form style carry flattened, all-string
//! parameters (`Keys.0=a`, `Filters.0.Values.1=b`, `Fuzzy=True`) that are unflattened here and
//! coerced with the schema of spec §3, so every action parses the same way afterwards.

use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// The request's parameters as one JSON object, checked field by field so each failure gets its
/// own Tencent code: absent -> `MissingParameter`, wrong JSON type -> `InvalidParameter`, a name
/// the action does not define -> `UnknownParameter`.
pub struct Params {
    map: Map<String, Value>,
}

impl Params {
    /// Parses a TC3 POST body. An empty body is an empty parameter set.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params { map: Map::new() });
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Params { map }),
            Ok(_) => Err(ApiError::body_not_an_object()),
            Err(e) => Err(ApiError::body_not_json(&e)),
        }
    }

    /// Unflattens `Name.0.Field=value` pairs (already percent-decoded) into nested objects and
    /// arrays, typing leaves by the EdgeKV schema.
    pub fn from_flat(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut root = Value::Object(Map::new());
        for (name, value) in pairs {
            let path: Vec<&str> = name.split('.').collect();
            if path.iter().any(|s| s.is_empty()) {
                return Err(ApiError::malformed_parameter_name(name));
            }
            let leaf = path
                .iter()
                .rev()
                .find(|s| s.parse::<usize>().is_err())
                .copied()
                .unwrap_or_default();
            let typed = coerce_flat_leaf(name, leaf, value)?;
            insert_path(&mut root, &path, typed, name)?;
        }
        match root {
            Value::Object(map) => Ok(Params { map: compact(map) }),
            _ => Err(ApiError::malformed_parameters()),
        }
    }

    /// `UnknownParameter` for any name outside `allowed` (besides the common `ZoneId`).
    pub fn deny_unknown(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for name in self.map.keys() {
            if name != "ZoneId" && !allowed.contains(&name.as_str()) {
                return Err(ApiError::unknown_parameter(name));
            }
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&Value> {
        // Python drops None and Node drops null, but an explicit null still means "not given".
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::wrong_type(name, "String")),
        }
    }

    pub fn req_str(&self, name: &str) -> Result<String, ApiError> {
        self.opt_str(name)?.ok_or_else(|| ApiError::missing(name))
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::wrong_type(name, "Integer")),
            Some(_) => Err(ApiError::wrong_type(name, "Integer")),
        }
    }

    pub fn opt_str_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(ApiError::wrong_type(name, "Array of String")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::wrong_type(name, "Array of String")),
        }
    }

    pub fn req_str_list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        self.opt_str_list(name)?
            .ok_or_else(|| ApiError::missing(name))
    }

    pub fn opt_filters(&self, name: &str) -> Result<Option<Vec<AdvancedFilter>>, ApiError> {
        let items = match self.get(name) {
            None => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(ApiError::wrong_type(name, "Array of AdvancedFilter")),
        };
        let mut filters = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Object(map) = item else {
                return Err(ApiError::wrong_type(
                    &format!("{name}.{i}"),
                    "AdvancedFilter",
                ));
            };
            let inner = Params { map: map.clone() };
            for key in inner.map.keys() {
                if !["Name", "Values", "Fuzzy"].contains(&key.as_str()) {
                    return Err(ApiError::unknown_parameter(&format!("{name}.{i}.{key}")));
                }
            }
            let field = |f: &str| format!("{name}.{i}.{f}");
            let filter_name = inner
                .opt_str("Name")
                .map_err(|_| ApiError::wrong_type(&field("Name"), "String"))?
                .ok_or_else(|| ApiError::missing(&field("Name")))?;
            let values = inner
                .opt_str_list("Values")
                .map_err(|_| ApiError::wrong_type(&field("Values"), "Array of String"))?
                .ok_or_else(|| ApiError::missing(&field("Values")))?;
            let fuzzy = match inner.get("Fuzzy") {
                None => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(ApiError::wrong_type(&field("Fuzzy"), "Boolean")),
            };
            filters.push(AdvancedFilter {
                name: filter_name,
                values,
                fuzzy,
            });
        }
        Ok(Some(filters))
    }
}

/// Types a flattened leaf by its field name (spec §3); strings stay strings.
fn coerce_flat_leaf(full: &str, leaf: &str, value: &str) -> Result<Value, ApiError> {
    match leaf {
        "Offset" | "Limit" | "Expiration" | "ExpirationTTL" => value
            .trim()
            .parse::<i64>()
            .map(|n| Value::Number(Number::from(n)))
            .map_err(|_| ApiError::wrong_type(full, "Integer")),
        "Fuzzy" => match value {
            "true" | "True" | "TRUE" | "1" => Ok(Value::Bool(true)),
            "false" | "False" | "FALSE" | "0" => Ok(Value::Bool(false)),
            _ => Err(ApiError::wrong_type(full, "Boolean")),
        },
        _ => Ok(Value::String(value.to_string())),
    }
}

/// The largest array index accepted in a flattened name, so `Keys.999999999=x` cannot make the
/// gateway allocate a huge array.
const MAX_FLAT_INDEX: usize = 10_000;

fn insert_path(node: &mut Value, path: &[&str], leaf: Value, full: &str) -> Result<(), ApiError> {
    let malformed = || ApiError::malformed_parameter_name(full);
    let Some((head, rest)) = path.split_first() else {
        return Err(malformed());
    };
    if let Ok(index) = head.parse::<usize>() {
        if index > MAX_FLAT_INDEX {
            return Err(malformed());
        }
        let Value::Array(items) = node else {
            return Err(malformed());
        };
        if items.len() <= index {
            items.resize(index + 1, Value::Null);
        }
        let slot = items.get_mut(index).ok_or_else(malformed)?;
        return descend(slot, rest, leaf, full);
    }
    let Value::Object(map) = node else {
        return Err(malformed());
    };
    let slot = map.entry(head.to_string()).or_insert(Value::Null);
    descend(slot, rest, leaf, full)
}

fn descend(slot: &mut Value, rest: &[&str], leaf: Value, full: &str) -> Result<(), ApiError> {
    match rest.first() {
        None => {
            *slot = leaf;
            Ok(())
        }
        Some(next) => {
            if slot.is_null() {
                *slot = if next.parse::<usize>().is_ok() {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Map::new())
                };
            }
            insert_path(slot, rest, leaf, full)
        }
    }
}

/// Drops the holes a sparse flattened array leaves (`Keys.0`, `Keys.2`).
fn compact(map: Map<String, Value>) -> Map<String, Value> {
    fn walk(v: Value) -> Value {
        match v {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .filter(|i| !i.is_null())
                    .map(walk)
                    .collect(),
            ),
            Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, walk(v))).collect()),
            other => other,
        }
    }
    map.into_iter().map(|(k, v)| (k, walk(v))).collect()
}

/// `AdvancedFilter` of DescribeEdgeKVNamespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdvancedFilter {
    pub name: String,
    pub values: Vec<String>,
    pub fuzzy: Option<bool>,
}

// ------------------------------------------------------------------ responses

/// `KeyValuePair` of EdgeKVGet. The value borrows the stored bytes (valid UTF-8 is not copied),
/// so a reply of twenty 1 MB values is serialised straight from the engine's buffers.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct KeyValuePair<'a> {
    pub key: &'a str,
    pub value: std::borrow::Cow<'a, str>,
    /// ISO-8601 UTC (`YYYY-MM-DDThh:mm:ssZ`), or `""` when the key never expires.
    pub expiration: String,
}

/// `KVNamespace` of DescribeEdgeKVNamespaces.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct KvNamespace {
    pub namespace: String,
    pub remark: String,
    pub capacity: i64,
    pub capacity_used: i64,
    pub references: Vec<ComponentReference>,
    pub created_on: String,
    pub modified_on: String,
}

/// `ComponentReference`: which edge functions use a namespace. kvmux has no edge functions, so
/// the list is always empty, but the type keeps the field honest.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentReference {
    pub reference_type: String,
    pub reference_id: String,
    pub reference_name: String,
    pub zone_id: String,
    pub zone_name: String,
    pub alias_zone_name: String,
}

/// ISO-8601 UTC seconds, the form EdgeKV uses for times.
pub fn iso8601_utc(unix_secs: u64) -> String {
    let secs = i64::try_from(unix_secs).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::codes;

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    #[test]
    fn unflattens_python_get_query() {
        let p = Params::from_flat(&pairs(
            "ZoneId=z&Limit=10&Filters.0.Name=namespace&Filters.0.Values.0=ns&Filters.0.Values.1=b&Filters.0.Fuzzy=True",
        ))
        .unwrap();
        assert_eq!(p.req_str("ZoneId").unwrap(), "z");
        assert_eq!(p.opt_i64("Limit").unwrap(), Some(10));
        let filters = p.opt_filters("Filters").unwrap().unwrap();
        assert_eq!(
            filters,
            vec![AdvancedFilter {
                name: "namespace".into(),
                values: vec!["ns".into(), "b".into()],
                fuzzy: Some(true)
            }]
        );
    }

    #[test]
    fn unflattens_keys_in_index_order_and_skips_holes() {
        let p = Params::from_flat(&pairs("Keys.2=c&Keys.0=a&Namespace=ns")).unwrap();
        assert_eq!(p.req_str_list("Keys").unwrap(), vec!["a", "c"]);
    }

    #[test]
    fn flat_type_errors_are_invalid_parameter() {
        let e = Params::from_flat(&pairs("Limit=ten")).err().unwrap();
        assert_eq!(e.code, codes::INVALID_PARAMETER);
        let e = Params::from_flat(&pairs("Keys.0=a&Keys.x=b"))
            .err()
            .unwrap();
        assert_eq!(e.code, codes::INVALID_PARAMETER);
        let e = Params::from_flat(&pairs("Keys.99999999999=a"))
            .err()
            .unwrap();
        assert_eq!(e.code, codes::INVALID_PARAMETER);
    }

    #[test]
    fn json_field_checks_pick_distinct_codes() {
        let p = Params::from_json(br#"{"Key": 5, "Keys": ["a", 1], "Limit": "3", "Extra": 1}"#)
            .unwrap();
        assert_eq!(p.req_str("Key").unwrap_err().code, codes::INVALID_PARAMETER);
        assert_eq!(
            p.req_str("Value").unwrap_err().code,
            codes::MISSING_PARAMETER
        );
        assert_eq!(
            p.req_str_list("Keys").unwrap_err().code,
            codes::INVALID_PARAMETER
        );
        assert_eq!(
            p.opt_i64("Limit").unwrap_err().code,
            codes::INVALID_PARAMETER
        );
        assert_eq!(
            p.deny_unknown(&["Key", "Keys", "Limit"]).unwrap_err().code,
            codes::UNKNOWN_PARAMETER
        );
        assert_eq!(
            Params::from_json(b"[1]").err().unwrap().code,
            codes::INVALID_PARAMETER
        );
        assert_eq!(
            Params::from_json(b"{not json").err().unwrap().code,
            codes::INVALID_PARAMETER
        );
    }

    #[test]
    fn iso8601_is_utc_with_z() {
        assert_eq!(iso8601_utc(1774513200), "2026-03-26T08:20:00Z");
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
    }

    proptest::proptest! {
        #[test]
        fn flat_decoding_never_panics(pairs in proptest::collection::vec(("[A-Za-z0-9.]{0,12}", ".{0,8}"), 0..8)) {
            if let Ok(p) = Params::from_flat(&pairs) {
                let _ = p.opt_filters("Filters");
                let _ = p.opt_str_list("Keys");
            }
        }

        #[test]
        fn json_decoding_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = Params::from_json(&body);
        }
    }
}
