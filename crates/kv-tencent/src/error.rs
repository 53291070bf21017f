//! The one error table of the Tencent dialect: every failure becomes a Tencent error code inside
//! the TC3 envelope. Tencent answers errors with HTTP 200 (the SDKs read the code from the body and
//! turn any other status into a network error that loses the code), so there is no status column.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use kv_core::{Error as EngineError, Quota};
use serde_json::{json, Value};

/// A Tencent API error: the `Error.Code` and `Error.Message` of the envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn missing(field: &str) -> Self {
        Self::new(
            codes::MISSING_PARAMETER,
            format!("The request is missing a required parameter `{field}`."),
        )
    }

    pub fn wrong_type(field: &str, expected: &str) -> Self {
        Self::new(
            codes::INVALID_PARAMETER,
            format!("The parameter `{field}` must be of type {expected}."),
        )
    }

    pub fn bad_value(field: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            codes::INVALID_PARAMETER_VALUE,
            format!("The value of parameter `{field}` is invalid: {why}."),
        )
    }

    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new(
            codes::NAMESPACE_NOT_FOUND,
            format!("The KV namespace `{namespace}` does not exist."),
        )
    }

    /// Maps an engine error. Every engine call this dialect makes is on a namespace of the request,
    /// so `NotFound` is always the namespace (a missing key is not an error in EdgeKV).
    pub fn from_engine(e: EngineError, namespace: &str) -> Self {
        match e {
            EngineError::NotFound(_) => Self::namespace_not_found(namespace),
            EngineError::AlreadyExists(_) => Self::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("The KV namespace `{namespace}` already exists in this zone."),
            ),
            EngineError::QuotaExceeded(Quota::AccountContainers) => Self::new(
                codes::NAMESPACE_LIMIT_EXCEEDED,
                "The maximum number of KV namespaces has been reached.",
            ),
            EngineError::QuotaExceeded(q) => Self::new(
                codes::LIMIT_EXCEEDED,
                format!("The KV namespace `{namespace}` is full ({q} quota exceeded)."),
            ),
            EngineError::TooLarge(m) | EngineError::Invalid(m) => {
                Self::new(codes::INVALID_PARAMETER_VALUE, m)
            }
            EngineError::PreconditionFailed(m) => Self::new(codes::FAILED_OPERATION, m),
            EngineError::Conflict => Self::new(
                codes::FAILED_OPERATION,
                "Too many concurrent writes to the same keys; retry the request.",
            ),
            EngineError::Internal(m) => {
                tracing::error!(error = %m, "engine failure");
                Self::new(codes::INTERNAL_ERROR, "An internal error occurred.")
            }
        }
    }
}

/// The rest of the table: each error the dialect sends outside the engine mapping, with its
/// message, named once (call sites say which, not how it reads).
impl ApiError {
    pub fn unsupported_method(method: &http::Method) -> Self {
        Self::new(
            codes::UNSUPPORTED_PROTOCOL,
            format!("The HTTP method {method} is not supported."),
        )
    }

    pub fn missing_version() -> Self {
        Self::new(
            codes::MISSING_PARAMETER,
            "The request is missing the API version (X-TC-Version).",
        )
    }

    pub fn no_such_version(asked: &str, served: &str) -> Self {
        Self::new(
            codes::NO_SUCH_VERSION,
            format!("The API version `{asked}` does not exist; EdgeKV is {served}."),
        )
    }

    pub fn missing_action() -> Self {
        Self::new(
            codes::MISSING_PARAMETER,
            "The request is missing the action (X-TC-Action).",
        )
    }

    pub fn invalid_action(action: &str) -> Self {
        Self::new(
            codes::INVALID_ACTION,
            format!("The action `{action}` does not exist."),
        )
    }

    pub fn rate_limited(operation: &str, per_second: u32) -> Self {
        Self::new(
            codes::REQUEST_LIMIT_EXCEEDED,
            format!("Request rate limit of {per_second}/s for {operation} exceeded."),
        )
    }

    /// An injected or gateway-wide throttle (fault rules), not the per-action vendor limit.
    pub fn throttled() -> Self {
        Self::new(
            codes::REQUEST_LIMIT_EXCEEDED,
            "The request rate limit was exceeded.",
        )
    }

    pub fn missing_nonce() -> Self {
        Self::new(
            codes::MISSING_PARAMETER,
            "The request is missing the `Nonce` parameter.",
        )
    }

    pub fn nonce_reused(nonce: &str, window_secs: u64) -> Self {
        Self::new(
            codes::SIGNATURE_FAILURE,
            format!(
                "The Nonce `{nonce}` was already used with this SecretId within the last \
                 {window_secs} seconds; sign every request with a new Nonce."
            ),
        )
    }

    pub fn signature_reused() -> Self {
        Self::new(
            codes::SIGNATURE_FAILURE,
            "This signature was already used for another action, version or body; sign every \
             request separately.",
        )
    }

    pub fn body_too_large(limit: u64) -> Self {
        Self::new(
            codes::REQUEST_SIZE_LIMIT_EXCEEDED,
            format!("The request body is larger than {limit} bytes."),
        )
    }

    pub fn unreadable_body(why: &str) -> Self {
        Self::new(
            codes::INVALID_PARAMETER,
            format!("The request body could not be read: {why}."),
        )
    }

    pub fn response_too_large(len: usize, limit: usize) -> Self {
        Self::new(
            codes::RESPONSE_SIZE_LIMIT_EXCEEDED,
            format!(
                "The response would be {len} bytes, over the limit of {limit}; request fewer keys \
                 at a time."
            ),
        )
    }

    pub fn internal() -> Self {
        Self::new(codes::INTERNAL_ERROR, "An internal error occurred.")
    }

    pub fn body_not_an_object() -> Self {
        Self::new(
            codes::INVALID_PARAMETER,
            "The request body must be a JSON object.",
        )
    }

    pub fn body_not_json(e: &dyn std::fmt::Display) -> Self {
        Self::new(
            codes::INVALID_PARAMETER,
            format!("The request body is not valid JSON: {e}."),
        )
    }

    pub fn malformed_parameter_name(name: &str) -> Self {
        Self::new(
            codes::INVALID_PARAMETER,
            format!("Malformed parameter name `{name}`."),
        )
    }

    pub fn malformed_parameters() -> Self {
        Self::new(codes::INVALID_PARAMETER, "Malformed parameters.")
    }

    pub fn unknown_parameter(name: &str) -> Self {
        Self::new(
            codes::UNKNOWN_PARAMETER,
            format!("The parameter `{name}` is not defined for this action."),
        )
    }

    pub fn keys_too_many(max: usize, got: usize) -> Self {
        Self::new(
            codes::KEYS_TOO_MANY,
            format!("At most {max} keys may be given in one request, got {got}."),
        )
    }

    pub fn remark_too_long(max_chars: usize) -> Self {
        Self::new(
            codes::REMARK_TOO_LONG,
            format!("The remark is longer than {max_chars} characters."),
        )
    }

    pub fn bad_namespace_name() -> Self {
        Self::new(
            codes::BAD_NAMESPACE_NAME,
            "The namespace name must be 1-50 characters of letters, digits and `-`, and `-` may \
             not start or end it or appear twice in a row.",
        )
    }

    pub fn invalid_sort_by(asked: &str) -> Self {
        Self::new(
            codes::INVALID_SORT_BY,
            format!("`SortBy` must be created-on or updated-on, not `{asked}`."),
        )
    }

    pub fn invalid_sort_order(asked: &str) -> Self {
        Self::new(
            codes::INVALID_SORT_ORDER,
            format!("`SortOrder` must be asc or desc, not `{asked}`."),
        )
    }

    pub fn invalid_filter_name(index: usize, asked: &str) -> Self {
        Self::new(
            codes::INVALID_FILTER_NAME,
            format!("`Filters.{index}.Name` must be namespace or remark, not `{asked}`."),
        )
    }

    pub fn not_a_runtime_path() -> Self {
        Self::new(codes::INVALID_PARAMETER, "Not a runtime binding path.")
    }

    pub fn bad_runtime_path(prefix: &str, segments: usize) -> Self {
        Self::new(
            codes::INVALID_PARAMETER,
            format!(
                "The path must be {prefix}{{ZoneId}}/{{Namespace}}/{{Key}}, with three non-empty \
                 segments; it has {segments}."
            ),
        )
    }

    pub fn unsupported_runtime_method(method: &http::Method) -> Self {
        Self::new(
            codes::UNSUPPORTED_PROTOCOL,
            format!("The HTTP method {method} is not supported here: use PUT, GET or DELETE."),
        )
    }

    pub fn value_too_large(len: usize, max: usize) -> Self {
        Self::new(
            codes::REQUEST_SIZE_LIMIT_EXCEEDED,
            format!("The value is {len} bytes; the KV value limit is {max} bytes (25 MB)."),
        )
    }

    pub fn key_not_found(key: &str, namespace: &str) -> Self {
        Self::new(
            codes::KEY_NOT_FOUND,
            format!("The key `{key}` does not exist in the KV namespace `{namespace}`."),
        )
    }

    pub fn runtime_needs_tc3() -> Self {
        Self::new(
            codes::INVALID_AUTHORIZATION,
            "A runtime binding request must carry a TC3-HMAC-SHA256 Authorization header.",
        )
    }

    pub fn runtime_needs_signed_host() -> Self {
        Self::new(
            codes::INVALID_AUTHORIZATION,
            "A runtime binding request must sign the `host` header.",
        )
    }

    pub fn runtime_needs_signed_payload() -> Self {
        Self::new(
            codes::INVALID_AUTHORIZATION,
            "A runtime binding request must sign its payload (no UNSIGNED-PAYLOAD).",
        )
    }
}

/// Every code this dialect emits, named once.
pub mod codes {
    pub const INVALID_AUTHORIZATION: &str = "AuthFailure.InvalidAuthorization";
    pub const SECRET_ID_NOT_FOUND: &str = "AuthFailure.SecretIdNotFound";
    pub const SIGNATURE_EXPIRE: &str = "AuthFailure.SignatureExpire";
    pub const SIGNATURE_FAILURE: &str = "AuthFailure.SignatureFailure";
    pub const INVALID_ACTION: &str = "InvalidAction";
    pub const NO_SUCH_VERSION: &str = "NoSuchVersion";
    pub const MISSING_PARAMETER: &str = "MissingParameter";
    pub const UNKNOWN_PARAMETER: &str = "UnknownParameter";
    pub const INVALID_PARAMETER: &str = "InvalidParameter";
    pub const INVALID_PARAMETER_VALUE: &str = "InvalidParameterValue";
    pub const BAD_NAMESPACE_NAME: &str = "InvalidParameter.BadNamespaceName";
    pub const REMARK_TOO_LONG: &str = "InvalidParameter.RemarkTooLong";
    pub const INVALID_FILTER_NAME: &str = "InvalidParameter.InvalidFilterName";
    pub const INVALID_SORT_BY: &str = "InvalidParameter.InvalidSortBy";
    pub const INVALID_SORT_ORDER: &str = "InvalidParameter.InvalidSortOrder";
    pub const KEYS_TOO_MANY: &str = "InvalidParameter.KeysTooMany";
    pub const NAMESPACE_NOT_FOUND: &str = "ResourceUnavailable.NamespaceNotFound";
    pub const LIMIT_EXCEEDED: &str = "LimitExceeded";
    pub const NAMESPACE_LIMIT_EXCEEDED: &str = "LimitExceeded.NamespaceLimitExceeded";
    pub const REQUEST_LIMIT_EXCEEDED: &str = "RequestLimitExceeded";
    pub const REQUEST_SIZE_LIMIT_EXCEEDED: &str = "RequestSizeLimitExceeded";
    pub const RESPONSE_SIZE_LIMIT_EXCEEDED: &str = "ResponseSizeLimitExceeded";
    pub const UNSUPPORTED_PROTOCOL: &str = "UnsupportedProtocol";
    pub const FAILED_OPERATION: &str = "FailedOperation";
    pub const INTERNAL_ERROR: &str = "InternalError";
    /// The runtime binding route's missing key (the EdgeKV actions answer an empty value).
    pub const KEY_NOT_FOUND: &str = "ResourceNotFound.KeyNotFound";
}

/// `{"Response": {...fields, "RequestId"}}` with HTTP 200 and `Content-Type: application/json`
/// exactly: the Python SDK and tccli only raise an error when the content type is exactly that
/// (a `; charset=` suffix makes them report an error as a success).
pub fn envelope(fields: serde_json::Map<String, Value>, request_id: &str) -> Response<Bytes> {
    envelope_of(&fields, request_id)
}

/// [`envelope`] for any serialisable reply (a struct or a map of fields), serialised once, in
/// place, into one buffer: `json!({"Response": fields})` or an intermediate `Value` would copy
/// every field (for EdgeKVGet, up to 20 MB of values) before the bytes are even written.
pub fn envelope_of<T: serde::Serialize>(fields: &T, request_id: &str) -> Response<Bytes> {
    let body = serde_json::to_vec(&Envelope {
        response: Inner { fields, request_id },
    })
    .unwrap_or_else(|_| {
        br#"{"Response":{"Error":{"Code":"InternalError","Message":"encoding failed"}}}"#.to_vec()
    });
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-tc-requestid", v);
    }
    response
}

/// The exact number of bytes [`envelope_of`] would produce, counted without building them, so a
/// reply can be refused before its buffer is allocated.
pub fn envelope_len<T: serde::Serialize>(fields: &T, request_id: &str) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let envelope = Envelope {
        response: Inner { fields, request_id },
    };
    match serde_json::to_writer(&mut count, &envelope) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

#[derive(serde::Serialize)]
struct Envelope<'a, T: serde::Serialize> {
    #[serde(rename = "Response")]
    response: Inner<'a, T>,
}

#[derive(serde::Serialize)]
struct Inner<'a, T: serde::Serialize> {
    #[serde(flatten)]
    fields: &'a T,
    #[serde(rename = "RequestId")]
    request_id: &'a str,
}

/// The error envelope for `error`.
pub fn error_response(error: &ApiError, request_id: &str) -> Response<Bytes> {
    let mut fields = serde_json::Map::new();
    fields.insert(
        "Error".into(),
        json!({ "Code": error.code, "Message": error.message }),
    );
    envelope(fields, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_tencent_codes() {
        let cases = [
            (
                EngineError::NotFound("x".into()),
                codes::NAMESPACE_NOT_FOUND,
            ),
            (
                EngineError::AlreadyExists("x".into()),
                codes::INVALID_PARAMETER_VALUE,
            ),
            (
                EngineError::QuotaExceeded(Quota::AccountContainers),
                codes::NAMESPACE_LIMIT_EXCEEDED,
            ),
            (
                EngineError::QuotaExceeded(Quota::ContainerBytes),
                codes::LIMIT_EXCEEDED,
            ),
            (
                EngineError::TooLarge("x".into()),
                codes::INVALID_PARAMETER_VALUE,
            ),
            (
                EngineError::Invalid("x".into()),
                codes::INVALID_PARAMETER_VALUE,
            ),
            (EngineError::Conflict, codes::FAILED_OPERATION),
            (EngineError::Internal("disk".into()), codes::INTERNAL_ERROR),
        ];
        for (engine_error, code) in cases {
            let mapped = ApiError::from_engine(engine_error, "ns");
            assert_eq!(mapped.code, code);
            assert!(!mapped.message.contains("disk"), "internal details leak");
        }
    }

    #[test]
    fn envelope_len_is_the_exact_length_of_the_envelope() {
        let mut fields = serde_json::Map::new();
        fields.insert("Data".into(), json!([{"Key": "k", "Value": "\u{1}\"é"}]));
        fields.insert("Cursor".into(), json!(""));
        let built = envelope_of(&fields, "rid");
        assert_eq!(envelope_len(&fields, "rid"), built.body().len());
        let body: Value = serde_json::from_slice(built.body()).unwrap();
        assert_eq!(body["Response"]["RequestId"], "rid");
        assert_eq!(body["Response"]["Data"][0]["Value"], "\u{1}\"é");
    }

    #[test]
    fn error_envelope_is_http_200_exact_json_content_type() {
        let response = error_response(&ApiError::new(codes::INVALID_ACTION, "nope"), "rid");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(
            body,
            json!({"Response": {"Error": {"Code": "InvalidAction", "Message": "nope"}, "RequestId": "rid"}})
        );
    }
}
