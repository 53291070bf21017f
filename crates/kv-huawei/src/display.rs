//! Huawei keys as a person reads them, for the dashboard: a table's engine key is the
//! order-preserving encoding of its primary-key fields (kv-doc's keycode), an index entry's is
//! the index fields followed by the table's primary key. Decoded and named, they read as
//! `{"owner": "ann", "n": 7}` instead of hex.

use kv_core::Container;
use kv_doc::{IndexDef, KeySchema};

use crate::ops::table::TableMeta;

/// The scope prefix of tables; an index container's scope is `huawei-index/<table id>`.
const TABLE_SCOPE: &str = "huawei/";
const INDEX_SCOPE: &str = "huawei-index/";

/// The id of the table an index container belongs to, if `container` is an index.
pub fn index_table_id(container: &Container) -> Option<u64> {
    container.scope.strip_prefix(INDEX_SCOPE)?.parse().ok()
}

/// The field names of `container`'s keys, in key order: the primary key of a table; for an
/// index (whose `table` is given), the index fields and then the table's primary key. Empty
/// when the container is neither or its attrs do not say.
pub fn key_fields(container: &Container, table: Option<&Container>) -> Vec<String> {
    let primary = |c: &Container| {
        serde_json::from_value::<TableMeta>(c.attrs.clone())
            .ok()
            .map(|meta| KeySchema {
                shard_fields: meta.shard_fields,
                sort_fields: meta.sort_fields,
            })
    };
    if container.scope.starts_with(TABLE_SCOPE) {
        return primary(container).map(|s| s.fields()).unwrap_or_default();
    }
    if index_table_id(container).is_some() {
        let def = serde_json::from_value::<IndexDef>(container.attrs.clone()).ok();
        if let (Some(def), Some(schema)) = (def, table.and_then(primary)) {
            return def.entry_key_fields(&schema);
        }
    }
    Vec::new()
}

/// `key` decoded, as relaxed extended JSON text: `{"field": value, ...}` when `fields` names
/// every value, else the values as a JSON array. `None` when the bytes are not an encoded key.
pub fn readable_key(fields: &[String], key: &[u8]) -> Option<String> {
    let values = kv_doc::decode_key(key).ok()?;
    if values.is_empty() {
        return None;
    }
    let shown = |v: bson::Bson| v.into_relaxed_extjson().to_string();
    let parts: Vec<String> = if fields.len() == values.len() {
        fields
            .iter()
            .zip(values)
            .map(|(name, v)| format!("{}: {}", serde_json::Value::from(name.as_str()), shown(v)))
            .collect()
    } else {
        values.into_iter().map(shown).collect()
    };
    Some(if fields.len() == parts.len() {
        format!("{{{}}}", parts.join(", "))
    } else {
        format!("[{}]", parts.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_as_their_fields() {
        let fields = vec!["owner".to_string(), "n".to_string()];
        let key =
            kv_doc::encode_key(&bson::doc! {"owner": "ann", "n": 7_i64}, &fields).expect("key");
        assert_eq!(
            readable_key(&fields, &key).as_deref(),
            Some(r#"{"owner": "ann", "n": 7}"#)
        );
        assert_eq!(readable_key(&[], &key).as_deref(), Some(r#"["ann", 7]"#));
        assert_eq!(readable_key(&fields, b"\x00\x01ann"), None);
        assert_eq!(readable_key(&fields, b""), None);
    }
}
