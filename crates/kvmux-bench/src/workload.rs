//! What `kvmux bench` sends: for each dialect, requests signed exactly the way the vendor SDK signs
//! them, built with the dialect crates' own canonical-request and string-to-sign code (so the
//! benchmark pays the real verification cost on the server and cannot drift from the verifier).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use sha2::{Digest, Sha256};

/// The operation being measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Get,
    Put,
    List,
    Scan,
    Batch,
}

/// Which API is driven. `Dynamodb` exists only to drive a moto server for comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Tencent,
    Aliyun,
    Huawei,
    Dynamodb,
}

/// How many items a `batch` request carries.
pub const BATCH_SIZE: usize = 20;
/// The Tencent and Aliyun namespace the workload writes to (public so tests can bind them).
pub const NAMESPACE: &str = "kvmux-bench";
/// The Tencent zone of [`NAMESPACE`].
pub const ZONE: &str = "zone-bench";
const STORE: &str = "benchstore";

/// Builds signed requests for one target.
pub struct Workload {
    pub target: Target,
    /// `127.0.0.1:PORT`, the Host the SDKs would send.
    pub host: String,
    pub key_id: String,
    pub secret: String,
    pub value: Bytes,
}

pub fn key_name(i: usize) -> String {
    format!("key-{i:08}")
}

fn header(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn utc(format: &[time::format_description::FormatItem<'_>]) -> String {
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_default()
}

impl Target {
    /// The credential id the default configuration ships for this dialect (DynamoDB: an id moto
    /// accepts), so the bench and the tests sign as a newcomer's SDK would.
    pub fn dev_key_id(self) -> &'static str {
        match self {
            Target::Tencent => "AKIDkvmuxdev",
            Target::Aliyun => "LTAIkvmuxdev",
            Target::Huawei => "HWkvmuxdev",
            Target::Dynamodb => "AKIDbench",
        }
    }
}

impl Workload {
    /// Requests that prepare the target: create the container (an "already exists" answer is
    /// fine), then load `keys` items.
    pub fn setup(&self, keys: usize) -> (Request<Bytes>, Vec<Request<Bytes>>) {
        let create = match self.target {
            Target::Tencent => self.tencent("CreateEdgeKVNamespace", serde_json::json!({"ZoneId": ZONE, "Namespace": NAMESPACE})),
            Target::Aliyun => self.aliyun(Method::POST, "CreateKvNamespace", &[], &[("Namespace", NAMESPACE)]),
            Target::Huawei => self.huawei(
                "create-table",
                bson::doc! {"table_name": "bench", "primary_key_schema": {"shard_key_fields": [{"name": "id"}]}},
            ),
            Target::Dynamodb => self.dynamodb(
                "CreateTable",
                serde_json::json!({"TableName": "bench", "BillingMode": "PAY_PER_REQUEST",
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]}),
            ),
        };
        let loads = (0..keys).map(|i| self.request(Op::Put, i)).collect();
        (create, loads)
    }

    /// One request of `op` on key number `i`.
    pub fn request(&self, op: Op, i: usize) -> Request<Bytes> {
        let key = key_name(i);
        let value = kv_core::text::lossy_utf8(&self.value).into_owned();
        let batch_items = || -> Vec<(String, String)> {
            (0..BATCH_SIZE)
                .map(|j| (key_name(i + j), value.clone()))
                .collect()
        };
        match (self.target, op) {
            (_, Op::Put) => self.put(&key, &value),
            (Target::Tencent, Op::Get) | (Target::Aliyun, Op::Get) | (Target::Huawei, Op::Get) => self.get(&key),
            (Target::Tencent, Op::List | Op::Scan) => self.tencent(
                "EdgeKVList",
                serde_json::json!({"ZoneId": ZONE, "Namespace": NAMESPACE, "Prefix": "key-", "Limit": 100}),
            ),
            (Target::Tencent, Op::Batch) => {
                let keys: Vec<String> = (0..BATCH_SIZE).map(|j| key_name(i + j)).collect();
                self.tencent("EdgeKVGet", serde_json::json!({"ZoneId": ZONE, "Namespace": NAMESPACE, "Keys": keys}))
            }
            (Target::Aliyun, Op::List | Op::Scan) => self.aliyun(
                Method::GET,
                "ListKvs",
                &[("Namespace", NAMESPACE), ("Prefix", "key-"), ("PageSize", "100")],
                &[],
            ),
            (Target::Huawei, Op::List | Op::Scan) => self.huawei("scan-kv", bson::doc! {"table_name": "bench", "limit": 100}),
            (Target::Dynamodb, _) => self.get(&key),
            // Aliyun and Huawei: a multi-item write (the others were matched above).
            (_, Op::Batch) => self
                .batch_put(&batch_items())
                .unwrap_or_else(|| self.get(&key)),
        }
    }

    /// One put of `value` at `key` into the container [`Workload::setup`] creates (Huawei: the
    /// document `{id: key, v: value}`).
    pub fn put(&self, key: &str, value: &str) -> Request<Bytes> {
        match self.target {
            Target::Tencent => {
                self.tencent("EdgeKVPut", serde_json::json!({"ZoneId": ZONE, "Namespace": NAMESPACE, "Key": key, "Value": value}))
            }
            Target::Aliyun => self.aliyun(Method::POST, "PutKv", &[("Namespace", NAMESPACE), ("Key", key)], &[("Value", value)]),
            Target::Huawei => self.huawei_put_kv(key, value, None),
            Target::Dynamodb => self.dynamodb(
                "PutItem",
                serde_json::json!({"TableName": "bench", "Item": {"id": {"S": key}, "v": {"S": value}}}),
            ),
        }
    }

    /// One read of `key` (Tencent: an `EdgeKVGet` of that one key).
    pub fn get(&self, key: &str) -> Request<Bytes> {
        match self.target {
            Target::Tencent => self.tencent(
                "EdgeKVGet",
                serde_json::json!({"ZoneId": ZONE, "Namespace": NAMESPACE, "Keys": [key]}),
            ),
            Target::Aliyun => self.aliyun(
                Method::GET,
                "GetKv",
                &[("Namespace", NAMESPACE), ("Key", key)],
                &[],
            ),
            Target::Huawei => self.huawei(
                "get-kv",
                bson::doc! {"table_name": "bench", "primary_key": {"id": key}},
            ),
            Target::Dynamodb => self.dynamodb(
                "GetItem",
                serde_json::json!({"TableName": "bench", "Key": {"id": {"S": key}}}),
            ),
        }
    }

    /// Huawei put-kv of `{id: key, v: value}`, with `condition` as its `condition_expression`
    /// when given (the SDK's shape, e.g. `{single_field_expression: {field, func, value}}`).
    pub fn huawei_put_kv(
        &self,
        key: &str,
        value: &str,
        condition: Option<bson::Document>,
    ) -> Request<Bytes> {
        let mut body = bson::doc! {"table_name": "bench", "kv_doc": {"id": key, "v": value}};
        if let Some(condition) = condition {
            body.insert("condition_expression", condition);
        }
        self.huawei("put-kv", body)
    }

    /// One multi-item write of `items` (key, value) where the dialect has one: Aliyun
    /// `BatchPutKv`, Huawei `batch-write-kv` (one `put_kv` per item, `oper_id` = its index).
    /// `None` for Tencent and DynamoDB, which kvmux serves no multi-item write for.
    pub fn batch_put(&self, items: &[(String, String)]) -> Option<Request<Bytes>> {
        match self.target {
            Target::Aliyun => Some(self.aliyun_batch_put(items)),
            Target::Huawei => Some(self.huawei_batch_write(items)),
            Target::Tencent | Target::Dynamodb => None,
        }
    }

    fn aliyun_batch_put(&self, items: &[(String, String)]) -> Request<Bytes> {
        let list: Vec<serde_json::Value> = items
            .iter()
            .map(|(key, value)| serde_json::json!({"Key": key, "Value": value}))
            .collect();
        let list = serde_json::Value::Array(list).to_string();
        self.aliyun(
            Method::POST,
            "BatchPutKv",
            &[("Namespace", NAMESPACE)],
            &[("KvList", &list)],
        )
    }

    fn huawei_batch_write(&self, items: &[(String, String)]) -> Request<Bytes> {
        let opers: Vec<bson::Document> = items
            .iter()
            .enumerate()
            .map(|(j, (key, value))| bson::doc! {"put_kv": {"oper_id": j as i32, "kv_doc": {"id": key, "v": value}}})
            .collect();
        self.huawei(
            "batch-write-kv",
            bson::doc! {"table_opers": [{"table_name": "bench", "kv_opers": opers}]},
        )
    }

    /// Whether a reply is an error in the target's own terms (Tencent answers errors with 200).
    pub fn is_error(&self, status: StatusCode, body: &[u8]) -> bool {
        match self.target {
            Target::Tencent => !status.is_success() || body.windows(9).any(|w| w == b"\"Error\":{"),
            _ => !status.is_success(),
        }
    }

    /// TC3-HMAC-SHA256 as the Python/Go SDKs sign it: `content-type;host`, service `teo`.
    fn tencent(&self, action: &str, body: serde_json::Value) -> Request<Bytes> {
        use kv_tencent::auth::{sign_tc3, SignedRequest};
        let body = Bytes::from(body.to_string());
        let timestamp = kv_core::clock::wall_clock_secs();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("host", header(&self.host));
        headers.insert("x-tc-action", header(action));
        headers.insert("x-tc-version", HeaderValue::from_static("2022-09-01"));
        headers.insert("x-tc-timestamp", HeaderValue::from(timestamp));
        let signed = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: &body,
        };
        let signed_headers = ["content-type".to_string(), "host".to_string()];
        let authorization = sign_tc3(
            &signed,
            &self.host,
            "teo",
            &self.key_id,
            &self.secret,
            &signed_headers,
            timestamp,
        );
        headers.insert("authorization", header(&authorization));
        build(Method::POST, "/".into(), headers, body)
    }

    /// ACS3-HMAC-SHA256 (V3) as tea-openapi signs it: every header present, sorted.
    fn aliyun(
        &self,
        method: Method,
        action: &str,
        query: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Request<Bytes> {
        use kv_aliyun::auth::{pct, sign_v3};
        let body = if form.is_empty() {
            Bytes::new()
        } else {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                ser.append_pair(k, v);
            }
            Bytes::from(ser.finish())
        };
        let payload_hash = hex::encode(Sha256::digest(&body));
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("application/json"));
        headers.insert("host", header(&self.host));
        headers.insert("x-acs-action", header(action));
        headers.insert("x-acs-version", HeaderValue::from_static("2024-09-10"));
        headers.insert(
            "x-acs-date",
            header(&utc(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))),
        );
        headers.insert(
            "x-acs-signature-nonce",
            header(&uuid::Uuid::new_v4().simple().to_string()),
        );
        headers.insert("x-acs-content-sha256", header(&payload_hash));
        if !body.is_empty() {
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        let mut signed: Vec<String> = headers.keys().map(|k| k.as_str().to_string()).collect();
        signed.sort();
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let authorization = sign_v3(
            method.as_str(),
            &pairs,
            &headers,
            &signed,
            &payload_hash,
            &self.key_id,
            &self.secret,
        );
        headers.insert("authorization", header(&authorization));
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
            .collect();
        let uri = if query.is_empty() {
            "/".to_string()
        } else {
            format!("/?{}", query.join("&"))
        };
        build(method, uri, headers, body)
    }

    /// SDK-HMAC-SHA256 as the Python SDK signs it, with the store name in the Host prefix.
    fn huawei(&self, operation: &str, body: bson::Document) -> Request<Bytes> {
        use kv_huawei::auth::{sign, Algorithm, SignedRequest};
        let mut raw = Vec::new();
        let _ = body.to_writer(&mut raw);
        let body = Bytes::from(raw);
        let path = format!("/v1/{operation}");
        let host = if matches!(operation, "list-store" | "check-health") {
            self.host.clone()
        } else {
            format!("{STORE}.{}", self.host)
        };
        let sdk_date = utc(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ));
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/bson"));
        headers.insert("host", header(&host));
        headers.insert("x-sdk-date", header(&sdk_date));
        let signed = SignedRequest {
            method: "POST",
            path: &path,
            query: None,
            headers: &headers,
            body: &body,
        };
        let authorization = sign(
            &signed,
            Algorithm::HmacSha256,
            &self.key_id,
            &self.secret,
            vec!["content-type".into(), "host".into(), "x-sdk-date".into()],
            &sdk_date,
        );
        headers.insert("authorization", header(&authorization));
        build(Method::POST, path, headers, body)
    }

    /// DynamoDB JSON 1.0 for moto, which does not verify signatures by default; the header is
    /// still well-formed so the server parses the credential scope as with a real SDK.
    fn dynamodb(&self, target: &str, body: serde_json::Value) -> Request<Bytes> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        headers.insert("host", header(&self.host));
        headers.insert(
            "x-amz-target",
            header(&format!("DynamoDB_20120810.{target}")),
        );
        headers.insert(
            "x-amz-date",
            header(&utc(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))),
        );
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDbench/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            ),
        );
        build(
            Method::POST,
            "/".into(),
            headers,
            Bytes::from(body.to_string()),
        )
    }

    /// The health endpoint: the same HTTP path through hyper with no dialect work, the ceiling.
    pub fn health(&self) -> Request<Bytes> {
        let mut headers = HeaderMap::new();
        headers.insert("host", header(&self.host));
        build(Method::GET, "/_kvmux/health".into(), headers, Bytes::new())
    }
}

fn build(method: Method, uri: String, headers: HeaderMap, body: Bytes) -> Request<Bytes> {
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    *req.headers_mut() = headers;
    req
}
