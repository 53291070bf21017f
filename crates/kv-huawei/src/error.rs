//! The one table from failures to Huawei KVS errors: code, HTTP status and the BSON envelope.
//!
//! The envelope carries both key spellings because the SDKs disagree: Python reads
//! `error_code`/`error_msg`, the Java and Go SDKs decode BSON errors into structs whose BSON names
//! are `errorCode`/`errorMsg`. Every reply is `Content-Type: application/bson` exactly, since the
//! Python SDK falls back to JSON (and then crashes on BSON) for anything else.

use bson::doc;
use bytes::Bytes;
use http::{Response, StatusCode};
use kv_doc::DocError;

/// A KVS error ready to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvsError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The signature failure code of Huawei's API gateway (it answers before KVS sees the request).
pub const SIGNATURE_CODE: &str = "APIGW.0301";

impl KvsError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        KvsError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "KVS.00000001", m)
    }
    pub fn not_implemented(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "KVS.00000002", m)
    }
    pub fn slow_down() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "KVS.00000003", "SlowDown")
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "KVS.00001001", m)
    }
    pub fn entity_too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "KVS.00001004", m)
    }
    pub fn invalid_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "KVS.00001006", m)
    }
    pub fn too_many_stores() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "KVS.00001007",
            "TooManyStores: at most 25 stores per account",
        )
    }
    pub fn too_many_tables() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "KVS.00001008",
            "TooManyTables: at most 100 tables per store",
        )
    }
    pub fn no_such_store(store: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "KVS.00001014",
            format!("NoSuchStore: {store}"),
        )
    }
    pub fn no_such_table(table: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "KVS.00001015",
            format!("NoSuchTable: {table}"),
        )
    }
    pub fn no_such_key() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "KVS.00001016",
            "NoSuchKey: the document does not exist",
        )
    }
    pub fn table_exists(table: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "KVS.00001020",
            format!("TableAlreadyExists: {table}"),
        )
    }
    /// rename-kv onto a key that already holds a document. The vendor's models name no code of
    /// their own for it, so this is its one "already exists" family (409 `KVS.00001020`, the
    /// code create-table uses), with a message that says which thing exists.
    pub fn kv_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "KVS.00001020",
            "KvAlreadyExists: a document already exists at the new key",
        )
    }
    pub fn operation_aborted() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "KVS.00001022",
            "OperationAborted: concurrent writers kept conflicting",
        )
    }
    pub fn lsi_limit() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "KVS.00005010",
            "Local2ndIndexNumberExceedLimit: at most 5",
        )
    }
    pub fn gsi_limit() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "KVS.00005011",
            "Global2ndIndexNumberExceedLimit: at most 20",
        )
    }
    pub fn primary_schema(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "KVS.00005012", m)
    }
    pub fn lsi_schema(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "KVS.00005013", m)
    }
    pub fn gsi_schema(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "KVS.00005014", m)
    }
    pub fn condition_invalid(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "KVS.00005016", m)
    }
    pub fn condition_false() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "KVS.00005017",
            "ConditionIsFalse: the condition expression evaluated to false",
        )
    }
    pub fn kv_too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "KVS.00005018", m)
    }
    pub fn batch_limit(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "KVS.00005020", m)
    }
    pub fn signature(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, SIGNATURE_CODE, m)
    }

    /// The BSON error body with both key spellings and the request id.
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        let d = doc! {
            "error_code": self.code,
            "error_msg": &self.message,
            "errorCode": self.code,
            "errorMsg": &self.message,
            "request_id": request_id,
        };
        // A document of plain strings always serialises; fall back to the empty document rather
        // than an empty body (which the Python SDK cannot decode).
        d.to_vec().unwrap_or_else(|_| vec![5, 0, 0, 0, 0])
    }

    pub fn response(&self, request_id: &str) -> Response<Bytes> {
        crate::bson_response(self.status, self.body(request_id), request_id)
    }
}

impl From<kv_core::Error> for KvsError {
    fn from(e: kv_core::Error) -> Self {
        use kv_core::{Error, Quota};
        match e {
            Error::NotFound(m) => KvsError::new(StatusCode::NOT_FOUND, "KVS.00001016", m),
            Error::AlreadyExists(m) => KvsError::new(StatusCode::CONFLICT, "KVS.00001020", m),
            Error::PreconditionFailed(_) => KvsError::condition_false(),
            Error::QuotaExceeded(Quota::AccountContainers) => KvsError::too_many_stores(),
            Error::QuotaExceeded(q) => KvsError::new(
                StatusCode::FORBIDDEN,
                "KVS.00001013",
                format!("InsufficientStorageSpace: {q} quota exceeded"),
            ),
            Error::TooLarge(m) => KvsError::entity_too_large(m),
            Error::Invalid(m) => KvsError::bad_request(m),
            Error::Conflict => KvsError::operation_aborted(),
            Error::Internal(m) => {
                // The detail (a path, a backend message) is for the log, not the client.
                tracing::error!(error = %m, "engine failure");
                KvsError::internal("InternalError: the service failed to process the request")
            }
        }
    }
}

impl From<DocError> for KvsError {
    fn from(e: DocError) -> Self {
        match e {
            DocError::InvalidKey(m) => KvsError::bad_request(m),
            DocError::InvalidCondition(m) => KvsError::condition_invalid(m),
            DocError::InvalidUpdate(m) => KvsError::bad_request(m),
            DocError::Malformed(m) => KvsError::invalid_request(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_both_spellings() {
        let e = KvsError::condition_false();
        let d = kv_doc::decode_document(&e.body("rid")).unwrap();
        assert_eq!(d.get_str("error_code").unwrap(), "KVS.00005017");
        assert_eq!(d.get_str("errorCode").unwrap(), "KVS.00005017");
        assert_eq!(
            d.get_str("errorMsg").unwrap(),
            d.get_str("error_msg").unwrap()
        );
        assert_eq!(d.get_str("request_id").unwrap(), "rid");
        let r = e.response("rid");
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "application/bson");
        assert_eq!(r.headers()["x-request-id"], "rid");
    }

    #[test]
    fn engine_errors_map_to_kvs_codes() {
        let cases = [
            (
                kv_core::Error::PreconditionFailed("x".into()),
                "KVS.00005017",
                400,
            ),
            (
                kv_core::Error::QuotaExceeded(kv_core::Quota::AccountContainers),
                "KVS.00001007",
                400,
            ),
            (kv_core::Error::Conflict, "KVS.00001022", 409),
            (kv_core::Error::Internal("x".into()), "KVS.00000001", 500),
        ];
        for (e, code, status) in cases {
            let k = KvsError::from(e);
            assert_eq!((k.code, k.status.as_u16()), (code, status));
        }
    }
}
