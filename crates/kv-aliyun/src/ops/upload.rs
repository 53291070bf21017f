//! The high-capacity flow (spec §6). The SDKs' `*Advance` methods call OpenPlatform
//! `AuthorizeFileUpload`, POST the stream to OSS as a multipart form, then call the
//! `*WithHighCapacity` action with the object's `Url`. kvmux plays all three parts:
//!
//! 1. `AuthorizeFileUpload` answers `Bucket="http://127.0.0"`, `Endpoint="1:PORT"` so that the
//!    SDK's `Bucket + "." + Endpoint` is `http://127.0.0.1:PORT` (the SDK hard-codes https but
//!    drops the scheme when the host already carries one), a fresh `ObjectKey`, and
//!    `UseAccelerate: false` as a JSON boolean (the SDK reads it with Python `bool()`). It also
//!    records a grant binding the ObjectKey to the caller's account, since the upload itself is
//!    unsigned.
//! 2. The multipart `POST /` stores the `file` part under its `key`, if granted, and answers 201
//!    with OSS's XML `PostResponse` (an empty body would make the SDK fail parsing XML).
//! 3. `*WithHighCapacity` resolves the `Url` by its trailing ObjectKey (the SDK builds
//!    `http://http://127.0.0.1:PORT/<ObjectKey>`), applies the documented JSON and drops the
//!    object.
//!
//! Grants and objects live in one hidden engine container (account `_kvmux`, not listed by the
//! dashboard) with an expiry, so they survive a restart between the steps and vanish on their
//! own when never used: the engine's expiry sweeper removes an uploaded object when its
//! authorization ends (`UPLOAD_TTL_SECS` after `AuthorizeFileUpload`), and the small grant a
//! day later (`EXPIRED_GRACE_SECS`). A `*WithHighCapacity` call that reads an object drops it
//! and its grant whether the call succeeds or fails, so nothing is left behind by a used Url.

use base64::Engine as _;
use bytes::Bytes;
use http::{Response, StatusCode};
use kv_core::{Container, ContainerKind, Engine, Limits, NewContainer, Precondition};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::batch::{delete_keys, put_entries};
use super::kv::{expiry, put_reply, validate_key, write};
use super::namespace::open;
use super::{reply, Ctx, Reply};
use crate::error::{ApiError, ApiResult};
use crate::wire::{json_int, HighCapacityBatchDelete, HighCapacityBatchPut, HighCapacityPut};

/// Largest value of PutKvWithHighCapacity: 25 MB.
pub const MAX_HC_VALUE: usize = 25 * 1024 * 1024;
/// Largest object of the batch high-capacity actions: 100 MB.
pub const MAX_HC_BATCH: usize = 100 * 1024 * 1024;
/// How long an upload authorization is valid (engine seconds), as OSS policies are.
pub const UPLOAD_TTL_SECS: u64 = 3600;
/// How long an expired grant and its object are still kept, so that a late use is told its
/// authorization expired (Unauthorized.InvalidTime) rather than that the Url is unknown.
pub const EXPIRED_GRACE_SECS: u64 = 24 * 3600;
/// The prefix of every ObjectKey kvmux hands out; `Url`s are resolved by it.
pub const OBJECT_PREFIX: &str = "kvupload/";

const HIDDEN_ACCOUNT: &str = kv_core::INTERNAL_ACCOUNT;
const HIDDEN_SCOPE: &str = "aliyun-uploads";
const HIDDEN_NAME: &str = "objects";

/// The hidden container holding grants and uploaded objects (created on first use, and again
/// after an admin reset).
pub async fn uploads(engine: &Engine) -> kv_core::Result<Container> {
    match engine
        .container(HIDDEN_ACCOUNT, HIDDEN_SCOPE, HIDDEN_NAME)
        .await
    {
        Ok(c) => return Ok(c),
        Err(kv_core::Error::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    match engine
        .create_container(NewContainer {
            account: HIDDEN_ACCOUNT.into(),
            scope: HIDDEN_SCOPE.into(),
            name: HIDDEN_NAME.into(),
            kind: ContainerKind::Flat,
            attrs: json!({"purpose": "aliyun high-capacity uploads"}),
            limits: Limits {
                account_group: HIDDEN_SCOPE.into(),
                ..Limits::default()
            },
        })
        .await
    {
        Ok(c) => Ok(c),
        Err(kv_core::Error::AlreadyExists(_)) => {
            engine
                .container(HIDDEN_ACCOUNT, HIDDEN_SCOPE, HIDDEN_NAME)
                .await
        }
        Err(e) => Err(e),
    }
}

fn grant_key(object_key: &str) -> Vec<u8> {
    format!("grant/{object_key}").into_bytes()
}

/// Who may use an upload, and until when (engine unix seconds), and the `EncodedPolicy` and
/// `Signature` AuthorizeFileUpload handed out with it. The upload itself is unsigned (OSS checks
/// the policy's signature), so these two values are what the PostObject must present: the
/// signature is 256 random bits, never derivable from the ObjectKey. A grant stored before they
/// were recorded has none and authorizes nothing.
#[derive(Serialize, serde::Deserialize)]
struct Grant {
    account: String,
    expires_at: u64,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    signature: String,
}

fn decode_grant(value: &[u8]) -> Option<Grant> {
    serde_json::from_slice(value).ok()
}

fn object_key_bytes(object_key: &str) -> Vec<u8> {
    format!("object/{object_key}").into_bytes()
}

/// `host:port` that routes back to this gateway: the `[aliyun] upload_endpoint` option, else the
/// request's Host when it names an address with a port (the SDK was pointed at kvmux
/// directly), else 127.0.0.1:9090. Behind `HTTP_PROXY` (the usual recipe) the upload reaches
/// kvmux through the proxy whatever this says.
fn upload_endpoint(ctx: &Ctx<'_>) -> String {
    if let Some(e) = ctx.shared.upload_endpoint.as_deref() {
        return e.to_string();
    }
    let host = ctx
        .host
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    match host.rsplit_once(':') {
        Some((h, port))
            if h.contains('.') && !h.ends_with("aliyuncs.com") && port.parse::<u16>().is_ok() =>
        {
            host.to_string()
        }
        _ => "127.0.0.1:9090".to_string(),
    }
}

/// Splits `127.0.0.1:9090` into the SDK's `Bucket` (`http://127.0.0`) and `Endpoint`
/// (`1:9090`), so that `Bucket + "." + Endpoint` is `http://127.0.0.1:9090`.
pub fn bucket_and_endpoint(endpoint: &str) -> (String, String) {
    let (host, port) = endpoint.rsplit_once(':').unwrap_or((endpoint, "80"));
    match host.rsplit_once('.') {
        Some((bucket, last)) => (format!("http://{bucket}"), format!("{last}:{port}")),
        None => ("http://127.0.0".into(), format!("1:{port}")),
    }
}

pub async fn authorize(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let product = ctx.params.required("Product")?;
    let engine_err = |e| ApiError::from_engine(ctx.product, e);
    let container = uploads(ctx.engine).await.map_err(engine_err)?;
    let object_key = format!("{OBJECT_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let expires = ctx.engine.now() + UPLOAD_TTL_SECS;
    let policy = json!({
        "expiration": crate::wire::iso_utc(expires * 1000),
        "conditions": [["eq", "$key", object_key], {"product": product}],
    });
    let encoded_policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let signature = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let grant = serde_json::to_vec(&Grant {
        account: ctx.account.to_string(),
        expires_at: expires,
        policy: encoded_policy.clone(),
        signature: signature.clone(),
    })
    .map_err(|_| ApiError::internal())?;
    ctx.engine
        .put(
            &container,
            &grant_key(&object_key),
            Bytes::from(grant),
            Some(expires + EXPIRED_GRACE_SECS),
            Precondition::Absent,
        )
        .await
        .map_err(engine_err)?;
    let (bucket, endpoint) = bucket_and_endpoint(&upload_endpoint(ctx));
    Ok(reply([
        ("AccessKeyId", json!("kvmux-oss")),
        ("Bucket", json!(bucket)),
        ("Endpoint", json!(endpoint)),
        ("ObjectKey", json!(object_key)),
        ("EncodedPolicy", json!(encoded_policy)),
        ("Signature", json!(signature)),
        ("UseAccelerate", json!(false)),
    ]))
}

/// OSS's XML error body.
#[derive(Serialize)]
#[serde(rename = "Error")]
struct OssError<'a> {
    #[serde(rename = "Code")]
    code: &'a str,
    #[serde(rename = "Message")]
    message: &'a str,
    #[serde(rename = "RequestId")]
    request_id: &'a str,
    #[serde(rename = "HostId")]
    host_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename = "PostResponse")]
struct PostResponse<'a> {
    #[serde(rename = "Bucket")]
    bucket: &'a str,
    #[serde(rename = "Location")]
    location: &'a str,
    #[serde(rename = "Key")]
    key: &'a str,
    #[serde(rename = "ETag")]
    etag: &'a str,
}

fn xml_response(status: u16, body: String, request_id: &str) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"
    )));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    if let Ok(v) = http::HeaderValue::from_str("application/xml") {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-oss-request-id", v);
    }
    r
}

/// An OSS error reply (what the SDK parses on a 4xx/5xx upload).
pub fn oss_error(status: u16, code: &str, message: &str, request_id: &str) -> Response<Bytes> {
    let body = quick_xml::se::to_string(&OssError {
        code,
        message,
        request_id,
        host_id: "oss.aliyuncs.com",
    })
    .unwrap_or_default();
    xml_response(status, body, request_id)
}

/// A form field's data. multer's own `Field::bytes` copies every chunk into a new buffer; a field
/// that arrives as one chunk (a whole uploaded body is one buffer here) is returned as that chunk,
/// a slice of the parser's buffer, so a 25 MB upload is not held a second time.
async fn field_bytes(mut field: multer::Field<'_>) -> multer::Result<Bytes> {
    let mut first: Option<Bytes> = None;
    let mut joined = bytes::BytesMut::new();
    while let Some(chunk) = field.chunk().await? {
        if first.is_none() && joined.is_empty() {
            first = Some(chunk);
            continue;
        }
        if let Some(head) = first.take() {
            joined.extend_from_slice(&head);
        }
        joined.extend_from_slice(&chunk);
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}

/// Largest form field other than the file (the SDK's are under 1 KB: key, policy, signature).
pub const MAX_FORM_FIELD: u64 = 16 * 1024;

/// Constant-time comparison of a presented secret with the stored one.
fn same_secret(given: &[u8], stored: &[u8]) -> bool {
    given.len() == stored.len()
        && !stored.is_empty()
        && given
            .iter()
            .zip(stored)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The form fields that must precede the file (the SDK sends them sorted, file last, as OSS
/// requires).
#[derive(Default)]
struct GrantFields {
    key: Option<String>,
    policy: Option<Bytes>,
    signature: Option<Bytes>,
}

/// What refused an upload: an OSS status, code and message.
type OssRefusal = (u16, &'static str, &'static str);

/// Checks the grant named by the fields read so far, before any byte of the file is read: the
/// ObjectKey must have been handed out by AuthorizeFileUpload, not expired, and come with that
/// call's EncodedPolicy and Signature.
async fn check_grant(
    engine: &Engine,
    container: &Container,
    fields: &GrantFields,
) -> Result<Grant, OssRefusal> {
    const NOT_AUTHORIZED: OssRefusal = (
        403,
        "AccessDenied",
        "The object key was not authorized by AuthorizeFileUpload or has expired.",
    );
    const FORGED: OssRefusal = (
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    );
    let Some(key) = fields.key.as_deref() else {
        return Err((
            400,
            "InvalidArgument",
            "The form must carry a key field before the file.",
        ));
    };
    let (Some(policy), Some(signature)) = (&fields.policy, &fields.signature) else {
        return Err((
            403,
            "AccessDenied",
            "The form must carry the policy and Signature of AuthorizeFileUpload before the file.",
        ));
    };
    let grant = match engine.get(container, &grant_key(key)).await {
        Ok(Some(item)) => decode_grant(&item.value).ok_or(NOT_AUTHORIZED)?,
        Ok(None) => return Err(NOT_AUTHORIZED),
        Err(_) => return Err((500, "InternalError", "Storage failure.")),
    };
    if !same_secret(policy, grant.policy.as_bytes())
        || !same_secret(signature, grant.signature.as_bytes())
    {
        return Err(FORGED);
    }
    if grant.expires_at <= engine.now() {
        return Err((
            403,
            "AccessDenied",
            "Invalid according to Policy: Policy expired.",
        ));
    }
    Ok(grant)
}

/// Step 2: the unsigned multipart PostObject. Returns the reply and an error code for logs.
///
/// The fields are read in order, and the grant is checked when the `file` part starts, from the
/// fields before it, so that a request without a valid grant is refused before its file is read
/// (let alone stored). Fields after the file are ignored, as OSS does.
pub async fn post_object(
    engine: &Engine,
    content_type: &str,
    body: Bytes,
    request_id: &str,
) -> (Response<Bytes>, Option<&'static str>) {
    let refuse =
        |(status, code, msg): OssRefusal| (oss_error(status, code, msg, request_id), Some(code));
    let malformed = (400, "InvalidArgument", "The multipart body is malformed.");
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return refuse((400, "InvalidArgument", "The multipart boundary is missing."));
    };
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let limits = multer::SizeLimit::new()
        .per_field(MAX_FORM_FIELD)
        .for_field("file", MAX_HC_BATCH as u64);
    let mut multipart = multer::Multipart::with_constraints(
        stream,
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut fields = GrantFields::default();
    let (grant, file) = loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => {
                return refuse((
                    400,
                    "InvalidArgument",
                    "The form must carry a key field and a file.",
                ))
            }
            Err(_) => return refuse(malformed),
        };
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            let container = match uploads(engine).await {
                Ok(c) => c,
                Err(_) => return refuse((500, "InternalError", "Storage failure.")),
            };
            let grant = match check_grant(engine, &container, &fields).await {
                Ok(grant) => grant,
                Err(refusal) => return refuse(refusal),
            };
            match field_bytes(field).await {
                Ok(data) => break ((container, grant), data),
                Err(multer::Error::FieldSizeExceeded { .. }) => {
                    return refuse((
                        400,
                        "EntityTooLarge",
                        "Your proposed upload exceeds the maximum allowed size.",
                    ))
                }
                Err(_) => return refuse(malformed),
            }
        }
        let data = match field_bytes(field).await {
            Ok(d) => d,
            Err(_) => return refuse(malformed),
        };
        match name.as_str() {
            "key" => fields.key = Some(String::from_utf8_lossy(&data).into_owned()),
            "policy" => fields.policy = Some(data),
            "signature" => fields.signature = Some(data),
            _ => {}
        }
    };
    let ((container, grant), key) = (grant, fields.key.unwrap_or_default());
    let etag = format!("\"{}\"", hex::encode_upper(&Sha256::digest(&file)[..16]));
    if engine
        .put(
            &container,
            &object_key_bytes(&key),
            file,
            // The object is useless once its grant has expired (a late use is refused by the
            // grant), so it goes then; only the small grant stays for the grace period.
            Some(grant.expires_at),
            Precondition::None,
        )
        .await
        .is_err()
    {
        return refuse((500, "InternalError", "Storage failure."));
    }
    let location = format!("http://kvmux/{key}");
    let body = quick_xml::se::to_string(&PostResponse {
        bucket: "kvmux",
        location: &location,
        key: &key,
        etag: &etag,
    })
    .unwrap_or_default();
    (xml_response(201, body, request_id), None)
}

/// The ObjectKey at the end of a `Url` such as `http://http://127.0.0.1:9090/kvupload/<id>`.
pub fn object_key_of(url: &str) -> Option<&str> {
    let start = url.find(OBJECT_PREFIX)?;
    let rest = &url[start..];
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let key = &rest[..end];
    (key.len() > OBJECT_PREFIX.len()).then_some(key)
}

/// Step 3 helper: the uploaded object named by `Url`, if it belongs to the caller.
async fn take_object(ctx: &Ctx<'_>) -> ApiResult<(Container, String, Bytes)> {
    let url = ctx.params.required("Url")?;
    let invalid = || {
        ApiError::invalid_parameter(
            ctx.product,
            "The specified Url does not name an uploaded object, or it has expired.",
        )
    };
    let object_key = object_key_of(url).ok_or_else(invalid)?.to_string();
    let engine_err = |e| ApiError::from_engine(ctx.product, e);
    let container = uploads(ctx.engine).await.map_err(engine_err)?;
    let found = ctx
        .engine
        .get_many(
            &container,
            &[grant_key(&object_key), object_key_bytes(&object_key)],
        )
        .await
        .map_err(engine_err)?;
    let grant = match found.first() {
        Some(Some(item)) => decode_grant(&item.value).ok_or_else(invalid)?,
        _ => return Err(invalid()),
    };
    if grant.account != ctx.account {
        return Err(ApiError::unauthorized_parameters());
    }
    if grant.expires_at <= ctx.engine.now() {
        return Err(ApiError::unauthorized_time());
    }
    match found.get(1) {
        Some(Some(object)) => Ok((container, object_key, object.value.clone())),
        _ => Err(invalid()),
    }
}

/// Drops a used object and its grant.
async fn forget(ctx: &Ctx<'_>, container: &Container, object_key: &str) {
    let _ = ctx
        .engine
        .delete(
            container,
            &[grant_key(object_key), object_key_bytes(object_key)],
        )
        .await;
}

pub async fn put_high_capacity(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let namespace = open(ctx).await?;
    let key = ctx.params.required("Key")?;
    validate_key(key)?;
    let (uploads, object_key, object) = take_object(ctx).await?;
    let result = put_object(ctx, &namespace, key, object).await;
    forget(ctx, &uploads, &object_key).await;
    result
}

async fn put_object(
    ctx: &Ctx<'_>,
    namespace: &Container,
    key: &str,
    object: Bytes,
) -> ApiResult<Reply> {
    let parsed: HighCapacityPut = serde_json::from_slice(&object).map_err(|_| {
        ApiError::invalid_parameter(
            ctx.product,
            "The uploaded object is not {\"Namespace\",\"Key\",\"Value\"} JSON.",
        )
    })?;
    if parsed.value.len() > MAX_HC_VALUE {
        return Err(ApiError::value_too_large("26,214,400"));
    }
    let int = |v: &Option<Value>| v.as_ref().and_then(json_int);
    let expires_at = expiry(
        ctx.product,
        int(&parsed.expiration),
        int(&parsed.expiration_ttl),
        ctx.engine.now(),
    )?;
    // The reply echoes at most 200 characters of the value, so it is built before the value is
    // handed to the engine without a copy.
    let reply = put_reply(ctx.product, parsed.value.len(), &parsed.value);
    drop(object);
    write(ctx, namespace, key, Bytes::from(parsed.value), expires_at).await?;
    Ok(reply)
}

pub async fn batch_put_high_capacity(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let namespace = open(ctx).await?;
    let (uploads, object_key, object) = take_object(ctx).await?;
    let result = match serde_json::from_slice::<HighCapacityBatchPut>(&object) {
        Ok(parsed) => put_entries(ctx, &namespace, parsed.kv_list, MAX_HC_VALUE).await,
        // Documented: a malformed object is a 200 with empty SuccessKeys.
        Err(_) => Ok(reply([("SuccessKeys", json!([])), ("FailKeys", json!([]))])),
    };
    forget(ctx, &uploads, &object_key).await;
    result
}

pub async fn batch_delete_high_capacity(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let namespace = open(ctx).await?;
    let (uploads, object_key, object) = take_object(ctx).await?;
    let result = match serde_json::from_slice::<HighCapacityBatchDelete>(&object) {
        Ok(parsed) => delete_keys(ctx, &namespace, parsed.keys).await,
        Err(_) => Ok(reply([("SuccessKeys", json!([])), ("FailKeys", json!([]))])),
    };
    forget(ctx, &uploads, &object_key).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_and_endpoint_join_back_to_the_gateway() {
        let (b, e) = bucket_and_endpoint("127.0.0.1:58775");
        assert_eq!((b.as_str(), e.as_str()), ("http://127.0.0", "1:58775"));
        assert_eq!(format!("{b}.{e}"), "http://127.0.0.1:58775");
    }

    #[test]
    fn object_keys_are_found_at_the_end_of_sdk_urls() {
        assert_eq!(
            object_key_of("http://http://127.0.0.1:1/kvupload/abc"),
            Some("kvupload/abc")
        );
        assert_eq!(
            object_key_of("http://127.0.0.1:1/kvupload/abc?x=1"),
            Some("kvupload/abc")
        );
        assert_eq!(object_key_of("http://127.0.0.1:1/other/abc"), None);
        assert_eq!(object_key_of("kvupload/"), None);
    }
}
