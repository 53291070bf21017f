//! The one table: every error this dialect sends, with the vendor's code, HTTP status and
//! message (spec §5.1), and the mapping from engine errors onto it. The envelope is the POP
//! gateway's JSON `{RequestId, HostId, Code, Message, Recommend}`; the SDKs read `Code` and
//! `Message` and raise ClientException (4xx) or ServerException (5xx) from the status.

use kv_core::Quota;

use crate::router::Product;

/// An error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// The code of the vendor's rate-limit refusal, the one reply tea-openapi retries after
/// `x-acs-retry-after`.
pub const TOO_MANY_REQUESTS: &str = "TooManyRequests";

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// A bad parameter: ESA and DCDN spell this code differently.
    pub fn invalid_parameter(product: Product, detail: impl std::fmt::Display) -> Self {
        match product {
            Product::Dcdn => ApiError::new(
                400,
                "Invalid.Parameter",
                format!("The specified parameter is invalid. {detail}"),
            ),
            _ => ApiError::new(
                400,
                "InvalidParameters",
                format!("The specified parameters are invalid. {detail}"),
            ),
        }
    }

    pub fn missing_parameter(name: &str) -> Self {
        ApiError::new(
            400,
            "MissingParameter",
            format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
        )
    }

    pub fn namespace_malformed() -> Self {
        ApiError::new(
            400,
            "InvalidNameSpace.Malformed",
            "The specified namespace is invalid.",
        )
    }

    pub fn namespace_not_found() -> Self {
        ApiError::new(
            404,
            "InvalidNameSpace.NotFound",
            "The specified namespace does not exist.",
        )
    }

    pub fn namespace_duplicate() -> Self {
        ApiError::new(
            406,
            "InvalidNameSpace.Duplicate",
            "The specified namespace already exists.",
        )
    }

    pub fn namespace_quota_full() -> Self {
        ApiError::new(
            406,
            "InvalidNameSpace.QuotaFull",
            "The namespace quota is full.",
        )
    }

    pub fn key_malformed() -> Self {
        ApiError::new(400, "InvalidKey.Malformed", "The specified key is invalid.")
    }

    pub fn key_too_long() -> Self {
        ApiError::new(
            400,
            "InvalidKey.ExceedsMaximum",
            "The size of the key cannot exceed 512 bytes.",
        )
    }

    pub fn key_not_found() -> Self {
        ApiError::new(
            404,
            "InvalidKey.NotFound",
            "The specified key does not exist.",
        )
    }

    pub fn too_many_keys() -> Self {
        ApiError::new(
            400,
            "InvalidKey.TooManyKeys",
            "request contains too many keys.",
        )
    }

    pub fn value_too_large(limit: &str) -> Self {
        ApiError::new(
            400,
            "InvalidValue.ExceedsMaximum",
            format!("The size of the value cannot exceed {limit} bytes."),
        )
    }

    pub fn namespace_capacity() -> Self {
        ApiError::new(
            403,
            "InvalidKey.ExceedsCapacity",
            "The maximum capacity of a single namespace cannot exceed 1 GB.",
        )
    }

    pub fn account_capacity() -> Self {
        ApiError::new(
            403,
            "InvalidKey.ExceedsCapacity",
            "The maximum capacity of an account cannot exceed 10 GB.",
        )
    }

    /// An upload `Url` that belongs to another account.
    pub fn unauthorized_parameters() -> Self {
        ApiError::new(
            403,
            "Unauthorized.InvalidParameters",
            "The specified authentication parameters are invalid.",
        )
    }

    /// An upload `Url` whose AuthorizeFileUpload authorization has expired.
    pub fn unauthorized_time() -> Self {
        ApiError::new(
            403,
            "Unauthorized.InvalidTime",
            "The specified authentication time is invalid.",
        )
    }

    /// An STS security token kvmux was not configured to accept.
    pub fn unauthorized_token() -> Self {
        ApiError::new(
            403,
            "Unauthorized.InvalidToken",
            "The specified authentication token is invalid.",
        )
    }

    pub fn account_malformed() -> Self {
        ApiError::new(
            400,
            "InvalidAccount.Malformed",
            "The specified account is invalid.",
        )
    }

    pub fn account_not_found() -> Self {
        ApiError::new(
            404,
            "InvalidAccount.NotFound",
            "The specified account does not exist.",
        )
    }

    pub fn too_many_requests() -> Self {
        ApiError::new(429, TOO_MANY_REQUESTS, "Too many requests are submitted.")
    }

    pub fn too_quick_requests() -> Self {
        ApiError::new(
            429,
            "TooQuickRequests",
            "Requests are submitted too quickly.",
        )
    }

    pub fn internal() -> Self {
        ApiError::new(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error.",
        )
    }

    pub fn action_not_found() -> Self {
        ApiError::new(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )
    }

    pub fn access_key_not_found() -> Self {
        ApiError::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )
    }

    pub fn signature_v3_mismatch() -> Self {
        ApiError::new(
            400,
            "SignatureDoesNotMatch",
            "Specified signature does not match our calculation.",
        )
    }

    /// The legacy SDK splits this message on `:` and compares the second piece with its own
    /// string-to-sign; without the `:` it crashes with an IndexError (spec §5).
    pub fn signature_v2_mismatch(server_string_to_sign: &str) -> Self {
        ApiError::new(
            400,
            "SignatureDoesNotMatch",
            format!("Specified signature is not matched with our calculation. server string to sign is:{server_string_to_sign}"),
        )
    }

    pub fn timestamp_expired() -> Self {
        ApiError::new(
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        )
    }

    pub fn timestamp_format() -> Self {
        ApiError::new(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        )
    }

    pub fn nonce_used() -> Self {
        ApiError::new(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        )
    }

    pub fn incomplete_signature() -> Self {
        ApiError::new(
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards.",
        )
    }

    /// Maps an engine error where no operation-specific meaning applies (a namespace that
    /// vanished mid-request, quotas, races, backend failures).
    pub fn from_engine(product: Product, e: kv_core::Error) -> Self {
        use kv_core::Error as E;
        match e {
            E::NotFound(_) => ApiError::namespace_not_found(),
            E::AlreadyExists(_) => ApiError::namespace_duplicate(),
            E::QuotaExceeded(Quota::AccountContainers) => ApiError::namespace_quota_full(),
            E::QuotaExceeded(Quota::AccountBytes | Quota::AccountItems) => {
                ApiError::account_capacity()
            }
            E::QuotaExceeded(_) => ApiError::namespace_capacity(),
            E::TooLarge(_) => ApiError::value_too_large("2,000,000"),
            E::Invalid(m) | E::PreconditionFailed(m) => ApiError::invalid_parameter(product, m),
            E::Conflict => ApiError::too_quick_requests(),
            E::Internal(m) => {
                tracing::error!(error = %m, "aliyun: engine failure");
                ApiError::internal()
            }
        }
    }

    /// The JSON envelope.
    pub fn body(&self, request_id: &str, product: Product) -> serde_json::Value {
        serde_json::json!({
            "RequestId": request_id,
            "HostId": product.host_id(),
            "Code": self.code,
            "Message": self.message,
            "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}", self.code),
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_the_vendor_table() {
        let m = |e| ApiError::from_engine(Product::Esa, e);
        assert_eq!(
            m(kv_core::Error::QuotaExceeded(Quota::ContainerBytes)).code,
            "InvalidKey.ExceedsCapacity"
        );
        assert_eq!(
            m(kv_core::Error::QuotaExceeded(Quota::ContainerBytes)).status,
            403
        );
        assert_eq!(
            m(kv_core::Error::QuotaExceeded(Quota::AccountContainers)).code,
            "InvalidNameSpace.QuotaFull"
        );
        assert_eq!(m(kv_core::Error::Conflict).status, 429);
        assert_eq!(m(kv_core::Error::Internal("x".into())).status, 500);
        assert_eq!(
            ApiError::from_engine(Product::Dcdn, kv_core::Error::Invalid("x".into())).code,
            "Invalid.Parameter"
        );
    }

    #[test]
    fn v2_mismatch_message_splits_like_the_legacy_sdk_expects() {
        let e = ApiError::signature_v2_mismatch("GET&%2F&A%3Db");
        let second = e.message.split(':').nth(1);
        assert_eq!(second, Some("GET&%2F&A%3Db"));
    }
}
