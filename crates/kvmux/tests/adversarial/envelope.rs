//! What a correct answer to a bad request looks like, per vendor: the envelope's shape, its status
//! and an error code from that dialect's own table (built from the dialect crates' constructors
//! and constants, so the table cannot drift from what the dialects can send).

use std::collections::BTreeSet;

use super::raw::RawResponse;
use super::Vendor;

/// Who answered, read from the reply alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A vendor envelope: an error with its code, or a success.
    Vendor {
        vendor: Vendor,
        code: Option<String>,
    },
    /// The gateway's plain-text 400 for requests no dialect claims.
    Unclaimed,
    /// hyper's own empty 4xx for bytes that are not an HTTP request (no dialect can see them).
    HttpLevel,
}

/// Every code the Tencent dialect may answer a client mistake with (not `InternalError`).
pub fn tencent_codes() -> BTreeSet<String> {
    use kv_tencent::error::codes as c;
    [
        c::INVALID_AUTHORIZATION,
        c::SECRET_ID_NOT_FOUND,
        c::SIGNATURE_EXPIRE,
        c::SIGNATURE_FAILURE,
        c::INVALID_ACTION,
        c::NO_SUCH_VERSION,
        c::MISSING_PARAMETER,
        c::UNKNOWN_PARAMETER,
        c::INVALID_PARAMETER,
        c::INVALID_PARAMETER_VALUE,
        c::BAD_NAMESPACE_NAME,
        c::REMARK_TOO_LONG,
        c::INVALID_FILTER_NAME,
        c::INVALID_SORT_BY,
        c::INVALID_SORT_ORDER,
        c::KEYS_TOO_MANY,
        c::NAMESPACE_NOT_FOUND,
        c::LIMIT_EXCEEDED,
        c::NAMESPACE_LIMIT_EXCEEDED,
        c::REQUEST_LIMIT_EXCEEDED,
        c::REQUEST_SIZE_LIMIT_EXCEEDED,
        c::UNSUPPORTED_PROTOCOL,
        c::FAILED_OPERATION,
    ]
    .into_iter()
    .map(str::to_string)
    .collect()
}

/// Every (status, code) the Aliyun POP envelope may carry for a client mistake (not 500).
pub fn aliyun_codes() -> BTreeSet<(u16, String)> {
    use kv_aliyun::error::ApiError as E;
    use kv_aliyun::router::Product;
    [
        E::invalid_parameter(Product::Esa, ""),
        E::invalid_parameter(Product::Dcdn, ""),
        E::missing_parameter("x"),
        E::namespace_malformed(),
        E::namespace_not_found(),
        E::namespace_duplicate(),
        E::namespace_quota_full(),
        E::key_malformed(),
        E::key_too_long(),
        E::key_not_found(),
        E::too_many_keys(),
        E::value_too_large("1"),
        E::namespace_capacity(),
        E::account_capacity(),
        E::unauthorized_parameters(),
        E::unauthorized_time(),
        E::unauthorized_token(),
        E::account_malformed(),
        E::account_not_found(),
        E::too_many_requests(),
        E::too_quick_requests(),
        E::action_not_found(),
        E::access_key_not_found(),
        E::signature_v3_mismatch(),
        E::signature_v2_mismatch("x"),
        E::timestamp_expired(),
        E::timestamp_format(),
        E::nonce_used(),
        E::incomplete_signature(),
    ]
    .into_iter()
    .map(|e| (e.status, e.code))
    .collect()
}

/// The OSS PostObject step's XML error codes (status 400/403).
pub const ALIYUN_OSS_CODES: [&str; 3] = ["InvalidArgument", "AccessDenied", "EntityTooLarge"];

/// Every (status, code) of the Huawei KVS table a client mistake may get (no 5xx but the
/// documented 501 `KVS.00000002` for an unknown `/v1/<op>`, which callers allow explicitly).
pub fn huawei_codes() -> BTreeSet<(u16, String)> {
    use kv_huawei::error::KvsError as E;
    let mut all: BTreeSet<(u16, String)> = [
        E::not_implemented(""),
        E::bad_request(""),
        E::entity_too_large(""),
        E::invalid_request(""),
        E::too_many_stores(),
        E::too_many_tables(),
        E::no_such_store(""),
        E::no_such_table(""),
        E::no_such_key(),
        E::table_exists(""),
        E::operation_aborted(),
        E::lsi_limit(),
        E::gsi_limit(),
        E::primary_schema(""),
        E::lsi_schema(""),
        E::gsi_schema(""),
        E::condition_invalid(""),
        E::condition_false(),
        E::kv_too_large(""),
        E::batch_limit(""),
        E::signature(""),
    ]
    .into_iter()
    .map(|e| (e.status.as_u16(), e.code.to_string()))
    .collect();
    // From the engine-error mapping (`From<kv_core::Error>`) and the gateway's body refusals.
    for e in [
        kv_core::Error::NotFound(String::new()),
        kv_core::Error::AlreadyExists(String::new()),
        kv_core::Error::QuotaExceeded(kv_core::Quota::ContainerBytes),
    ] {
        let k = kv_huawei::error::KvsError::from(e);
        all.insert((k.status.as_u16(), k.code.to_string()));
    }
    all.insert((400, "KVS.00001005".into()));
    all
}

/// The known tables, built once.
pub struct Tables {
    pub tencent: BTreeSet<String>,
    pub aliyun: BTreeSet<(u16, String)>,
    pub huawei: BTreeSet<(u16, String)>,
}

impl Tables {
    pub fn new() -> Self {
        Tables {
            tencent: tencent_codes(),
            aliyun: aliyun_codes(),
            huawei: huawei_codes(),
        }
    }

    /// Reads a reply as one of the known envelopes; Err says exactly what is wrong with it.
    pub fn classify(&self, resp: &RawResponse) -> Result<Answer, String> {
        let ct = resp.content_type();
        let status = resp.status;
        if ct == "application/json" {
            return self.tencent(resp).map(|code| Answer::Vendor {
                vendor: Vendor::Tencent,
                code,
            });
        }
        if ct.starts_with("application/json") {
            return self.aliyun(resp).map(|code| Answer::Vendor {
                vendor: Vendor::Aliyun,
                code,
            });
        }
        if ct == "application/xml" {
            let body = String::from_utf8_lossy(&resp.body);
            let code = between(&body, "<Code>", "</Code>")
                .ok_or_else(|| format!("OSS XML without <Code>: {body}"))?;
            if !ALIYUN_OSS_CODES.contains(&code.as_str()) || !(400..500).contains(&status) {
                return Err(format!("OSS error {status} {code} is not in the table"));
            }
            if between(&body, "<RequestId>", "</RequestId>").is_none_or(|r| r.is_empty()) {
                return Err(format!("OSS error without RequestId: {body}"));
            }
            return Ok(Answer::Vendor {
                vendor: Vendor::Aliyun,
                code: Some(code),
            });
        }
        if ct == "application/bson" {
            return self.huawei(resp).map(|code| Answer::Vendor {
                vendor: Vendor::Huawei,
                code,
            });
        }
        if status == 400 && ct.starts_with("text/plain") {
            let body = String::from_utf8_lossy(&resp.body);
            if body.starts_with("kvmux: no dialect claims this request") {
                return Ok(Answer::Unclaimed);
            }
            return Err(format!("plain 400 that is not the gateway's: {body}"));
        }
        if (400..500).contains(&status) && resp.body.is_empty() && ct.is_empty() {
            return Ok(Answer::HttpLevel);
        }
        // The gateway's own transport-level refusal of a head over `max_header_bytes`, before any
        // dialect parsed it (as hyper's empty 431 for a head past its buffer): HTTP-level too.
        if status == 431
            && ct.starts_with("text/plain")
            && resp
                .body
                .starts_with(b"kvmux: the request line and headers are ")
        {
            return Ok(Answer::HttpLevel);
        }
        Err(format!(
            "no known envelope: status {status}, content-type {ct:?}, body {:?}",
            String::from_utf8_lossy(&resp.body[..resp.body.len().min(300)])
        ))
    }

    fn tencent(&self, resp: &RawResponse) -> Result<Option<String>, String> {
        if resp.status != 200 {
            return Err(format!(
                "Tencent answers with HTTP 200, got {}",
                resp.status
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("Tencent body is not JSON: {e}"))?;
        let inner = &v["Response"];
        if inner["RequestId"].as_str().is_none_or(str::is_empty) {
            return Err(format!("Tencent envelope without RequestId: {v}"));
        }
        if inner.get("Error").is_none() {
            return Ok(None);
        }
        let code = inner["Error"]["Code"]
            .as_str()
            .ok_or_else(|| format!("Tencent Error without Code: {v}"))?;
        if inner["Error"]["Message"].as_str().is_none() {
            return Err(format!("Tencent Error without Message: {v}"));
        }
        if !self.tencent.contains(code) {
            return Err(format!("Tencent code {code} is not in the table: {v}"));
        }
        Ok(Some(code.to_string()))
    }

    fn aliyun(&self, resp: &RawResponse) -> Result<Option<String>, String> {
        let v: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("Aliyun body is not JSON: {e}"))?;
        if v["RequestId"].as_str().is_none_or(str::is_empty) {
            return Err(format!("Aliyun reply without RequestId: {v}"));
        }
        if (200..300).contains(&resp.status) {
            return Ok(None);
        }
        let code = v["Code"]
            .as_str()
            .ok_or_else(|| format!("Aliyun error without Code: {v}"))?;
        if v["Message"].as_str().is_none() || v["HostId"].as_str().is_none() {
            return Err(format!("Aliyun error without Message/HostId: {v}"));
        }
        if !self.aliyun.contains(&(resp.status, code.to_string())) {
            return Err(format!(
                "Aliyun {} {code} is not in the table: {v}",
                resp.status
            ));
        }
        Ok(Some(code.to_string()))
    }

    fn huawei(&self, resp: &RawResponse) -> Result<Option<String>, String> {
        let doc = bson::Document::from_reader(&mut resp.body.as_slice())
            .map_err(|e| format!("Huawei body is not BSON: {e}"))?;
        if (200..300).contains(&resp.status) {
            return Ok(None);
        }
        let code = doc
            .get_str("error_code")
            .map_err(|_| format!("Huawei error without error_code: {doc}"))?;
        if doc.get_str("errorCode").ok() != Some(code)
            || doc.get_str("error_msg").is_err()
            || doc.get_str("errorMsg").is_err()
            || doc.get_str("request_id").is_ok_and(str::is_empty)
            || doc.get_str("request_id").is_err()
        {
            return Err(format!("Huawei error envelope incomplete: {doc}"));
        }
        if !self.huawei.contains(&(resp.status, code.to_string())) {
            return Err(format!(
                "Huawei {} {code} is not in the table: {doc}",
                resp.status
            ));
        }
        Ok(Some(code.to_string()))
    }
}

fn between(text: &str, open: &str, close: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(text[start..end].to_string())
}
