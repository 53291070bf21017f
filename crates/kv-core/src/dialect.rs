//! The contract between the `kvmux` binary and a vendor dialect crate. The binary owns sockets,
//! body limits, logging and metrics; a dialect owns everything its vendor defines (routes,
//! signatures, codec, error table). A dialect is callable without a socket: `serve` takes a fully
//! buffered `http::Request<Bytes>` and returns the vendor's response.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::request::Parts;
use http::{Request, Response};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;

/// One configured key pair and the tenant it reaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub id: String,
    pub secret: String,
    pub account: String,
}

/// What to do with a request whose signature does not verify.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Refuse it with the vendor's signature error.
    #[default]
    Enforce,
    /// Serve it, but record the failure (for debugging a client's signing).
    Log,
    /// Do not verify; the account comes from the access key id if it is known, else the first
    /// credential's account.
    Off,
}

/// Everything a dialect is built from.
#[derive(Clone)]
pub struct DialectContext {
    pub engine: Arc<Engine>,
    /// The credentials configured for this dialect only.
    pub credentials: Vec<Credential>,
    pub auth_mode: AuthMode,
    /// The dialect's own config section (e.g. `[tencent]`), as JSON; `Null` when absent.
    pub options: serde_json::Value,
    /// Whether the vendor's documented rate limits are emulated (`[limits] vendor_rate_limits`).
    pub vendor_rate_limits: bool,
}

impl DialectContext {
    /// The credential with this access key id.
    pub fn credential(&self, id: &str) -> Option<&Credential> {
        self.credentials.iter().find(|c| c.id == id)
    }

    /// The account used when auth is off and the key id is unknown.
    pub fn fallback_account(&self) -> String {
        self.credentials
            .first()
            .map(|c| c.account.clone())
            .unwrap_or_else(|| "dev".to_string())
    }
}

/// What the gateway itself must refuse or inject, in the dialect's own envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayError {
    /// The body is (or declares to be) larger than `body_limit`.
    BodyTooLarge { limit: u64 },
    /// The body could not be read (client went away, timed out, bad chunking).
    BadBody(String),
    /// An injected fault or an emulated rate limit: the vendor's throttling code.
    Throttled,
    /// An injected fault: the vendor's internal server error.
    Internal,
}

/// The verifier's view of a refused signature, for the request inspector. Never holds a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureDiagnostics {
    pub algorithm: String,
    pub access_key_id: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub client_signature: String,
    pub reason: String,
}

/// Facts about a served request that a dialect puts into the response's extensions, for logs,
/// metrics and the request inspector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// The vendor's operation name (`EdgeKVPut`, `PutKv`, `put-kv`), or `unknown`.
    pub operation: String,
    pub account: Option<String>,
    /// The vendor error code, when the reply is an error.
    pub code: Option<String>,
    /// The vendor request id sent back to the client.
    pub request_id: String,
    pub signature: Option<SignatureDiagnostics>,
}

/// A vendor dialect.
pub trait Dialect: Send + Sync + 'static {
    /// `tencent`, `aliyun` or `huawei`: the name used in config, metrics and logs.
    fn name(&self) -> &'static str;

    /// Whether this request is for this dialect, from the request line and headers alone.
    fn claims(&self, parts: &Parts) -> bool;

    /// The largest body this request may carry, decided before any of it is read.
    fn body_limit(&self, parts: &Parts) -> u64;

    /// The vendor's reply for a failure the gateway detected or injected.
    fn gateway_error(&self, parts: &Parts, error: GatewayError) -> Response<Bytes>;

    /// The vendor operation this request names, if that can be told without the body (fault
    /// rules match on it).
    fn operation_hint(&self, parts: &Parts) -> Option<String>;

    /// Every vendor operation name this dialect serves, as it appears in `RequestInfo::operation`.
    /// The binary labels metrics, logs and the inspector only with these names (anything else is
    /// `unknown`): operation names reach it from client headers, and a label per distinct value
    /// would let any client grow the gateway's memory without bound.
    fn operations(&self) -> &'static [&'static str];

    /// Serves one request. Must not panic on any input; the response carries a `RequestInfo`
    /// extension.
    fn serve(&self, request: Request<Bytes>) -> BoxFuture<'_, Response<Bytes>>;
}

/// The peer address, put into request extensions by the listener.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);
