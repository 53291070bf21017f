//! The vendor's wire types: the merged request parameters (query + form body, spec §1), the
//! JSON-string fields (`KvList`, `Keys`), the stored value layout, and reply helpers. Field names
//! are the vendor's PascalCase.

use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::router::Product;

/// Request parameters: the decoded query merged with the decoded form body. The SDKs place each
/// parameter in one or the other (and the legacy SDK differs from tea), so handlers look them up
/// by name only.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params { pairs }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter the action cannot do without: absent -> `MissingParameter`.
    pub fn required(&self, name: &str) -> ApiResult<&str> {
        self.get(name)
            .ok_or_else(|| ApiError::missing_parameter(name))
    }

    /// A boolean; Python sends `True`/`False`, Go and Java `true`/`false`.
    pub fn bool(&self, product: Product, name: &str) -> ApiResult<bool> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v.is_empty() || v == "false" => Ok(false),
            Some(v) if v == "true" => Ok(true),
            Some(v) => Err(ApiError::invalid_parameter(
                product,
                format!("{name}={v} is not a boolean."),
            )),
        }
    }

    /// An optional integer; empty counts as absent.
    pub fn int(&self, product: Product, name: &str) -> ApiResult<Option<i64>> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::invalid_parameter(product, format!("{name}={v} is not an integer."))
            }),
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space), as both the query and the
/// form body are encoded.
pub fn decode_form(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

/// One entry of `KvList`. `Value` is required; values of other JSON types fail that key only.
#[derive(Clone, Debug, Deserialize)]
pub struct KvEntry {
    #[serde(rename = "Key", default)]
    pub key: Option<serde_json::Value>,
    #[serde(rename = "Value", default)]
    pub value: Option<serde_json::Value>,
    #[serde(rename = "Expiration", default)]
    pub expiration: Option<serde_json::Value>,
    #[serde(rename = "ExpirationTtl", default)]
    pub expiration_ttl: Option<serde_json::Value>,
}

/// The high-capacity object body of `PutKvWithHighCapacity` (spec §1.3).
#[derive(Clone, Debug, Deserialize)]
pub struct HighCapacityPut {
    #[serde(rename = "Value")]
    pub value: String,
    #[serde(rename = "Expiration", default)]
    pub expiration: Option<serde_json::Value>,
    #[serde(rename = "ExpirationTtl", default)]
    pub expiration_ttl: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct HighCapacityBatchPut {
    #[serde(rename = "KvList")]
    pub kv_list: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct HighCapacityBatchDelete {
    #[serde(rename = "Keys")]
    pub keys: Vec<serde_json::Value>,
}

/// A JSON number or a numeric string (the SDKs' JSON is typed, hand-written JSON often is not).
pub fn json_int(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Value` echo of PutKv: values longer than 256 characters become the first 100, `...`, and
/// the last 100 (spec §1.3).
pub fn truncate_echo(value: &str) -> String {
    let count = value.chars().count();
    if count <= 256 {
        return value.to_string();
    }
    let head: String = value.chars().take(100).collect();
    let tail: String = value.chars().skip(count - 100).collect();
    format!("{head}...{tail}")
}

/// ISO-8601 UTC second precision, e.g. `2021-12-13T07:46:03Z`.
pub fn iso_utc(unix_ms: u64) -> String {
    let secs = (unix_ms / 1000) as i64;
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => {
            let f =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
            t.format(&f).unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

/// `2023-09-11T15:39:44+08:00` (GetDcdnKvStatus `Expire`, in China Standard Time as the service
/// answers).
pub fn iso_cst(unix_secs: u64) -> String {
    let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    match time::OffsetDateTime::from_unix_timestamp(unix_secs as i64) {
        Ok(t) => {
            let f = time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]+08:00"
            );
            t.to_offset(offset).format(&f).unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

/// Human-readable sizes for `CapacityString` / `CapacityUsedString`.
pub fn human_size(bytes: i64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes.max(0) as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < units.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v.fract() == 0.0 {
        format!("{} {}", v as i64, units[unit])
    } else {
        let s = format!("{v:.2}");
        format!(
            "{} {}",
            s.trim_end_matches('0').trim_end_matches('.'),
            units[unit]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_truncates_long_values() {
        assert_eq!(truncate_echo("abc"), "abc");
        let v: String = "a".repeat(100) + &"b".repeat(100) + &"c".repeat(100);
        let e = truncate_echo(&v);
        assert_eq!(e, "a".repeat(100) + "..." + &"c".repeat(100));
        let exact = "x".repeat(256);
        assert_eq!(truncate_echo(&exact), exact);
    }

    #[test]
    fn times_and_sizes_format_like_the_service() {
        assert_eq!(iso_utc(1_639_381_563_000), "2021-12-13T07:46:03Z");
        assert_eq!(iso_cst(1_694_417_984), "2023-09-11T15:39:44+08:00");
        assert_eq!(human_size(1 << 30), "1 GB");
        assert_eq!(human_size(10 << 30), "10 GB");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(12), "12 B");
    }

    #[test]
    fn booleans_parse_case_insensitively() {
        let p = Params::new(vec![
            ("A".into(), "True".into()),
            ("B".into(), "false".into()),
            ("C".into(), "yes".into()),
        ]);
        assert_eq!(p.bool(Product::Esa, "A"), Ok(true));
        assert_eq!(p.bool(Product::Esa, "B"), Ok(false));
        assert_eq!(p.bool(Product::Esa, "Z"), Ok(false));
        assert_eq!(
            p.bool(Product::Esa, "C").unwrap_err().code,
            "InvalidParameters"
        );
    }
}
