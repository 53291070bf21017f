//! The contract between the `kvmux` binary and a vendor dialect crate, and what every dialect
//! is built from (credentials, the auth mode, request ids, the signature primitives), written
//! once here so the three dialect crates do not each write their own.
//!
//! The binary owns sockets, body limits, logging and metrics; a dialect owns everything its
//! vendor defines (routes, signatures, codec, error table). The binary asks a dialect about a
//! request once, from its head ([`Dialect::classify`]), and hands that answer back with the
//! buffered request to [`Dialect::serve`], which returns the response and the facts about it
//! ([`Answer`]). A dialect is callable without a socket.

pub mod credentials;
pub mod crypto;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::request::Parts;
use http::{Request, Response};
use serde::{Deserialize, Serialize};

pub use credentials::{AuthMode, Credential, CredentialError, Credentials, DialectContext};
pub use kv_core::clock::{wall_clock_millis, wall_clock_secs};
pub use kv_core::{ContainerSelector, ScopeMatch};

/// A dialect's typed config section (`[tencent]`, `[aliyun]`, `[huawei]`), which the binary
/// hands over as JSON ([`DialectContext::options`]). Reading it, and what a dialect does with a
/// section that does not read, are written once here.
pub trait DialectOptions: serde::de::DeserializeOwned + Default {
    /// The section's name (`tencent`), for messages.
    const SECTION: &'static str;

    /// The rules serde cannot state: the offending key and why (the message names the section).
    fn check(&self) -> Result<(), (&'static str, String)> {
        Ok(())
    }

    /// Reads the section (`Null` when absent: the defaults); the message names what is wrong.
    fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        let options: Self = match value {
            serde_json::Value::Null => Self::default(),
            v => serde_json::from_value(v.clone())
                .map_err(|e| format!("[{}]: {e}", Self::SECTION))?,
        };
        options.check().map_err(|(_, message)| message)?;
        Ok(options)
    }

    /// For a dialect's constructor. The binary refuses a config whose options do not read
    /// (check-config names the line); an embedder passing bad JSON gets the defaults, with the
    /// error in the log.
    fn from_json_or_default(value: &serde_json::Value) -> Self {
        Self::from_json(value).unwrap_or_else(|e| {
            tracing::error!("ignoring invalid options: {e}");
            Self::default()
        })
    }
}

/// A fresh request id: a random UUID in lowercase hex with hyphens, the form Tencent and Huawei
/// send (Aliyun's is the same, uppercased: [`new_request_id_upper`]).
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A fresh request id in uppercase, as Alibaba Cloud's services send it.
pub fn new_request_id_upper() -> String {
    let mut id = new_request_id();
    id.make_ascii_uppercase();
    id
}

/// What a dialect reads from a request's head before a byte of the body: asked once per request
/// ([`Dialect::classify`]) and handed back to [`Dialect::serve`] and [`Dialect::gateway_error`],
/// so neither the binary nor the dialect parses the head twice.
///
/// Everything but `body_limit` and `envelope` is the client's unverified word: good for fault
/// rules, labels and the auth-off account, never for deciding what a verified request may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// The vendor operation the head names, when it can be told without the body: one of
    /// [`Dialect::operations`] (a name the dialect does not serve is `None`, so nothing a client
    /// invents reaches fault rules or labels).
    pub operation: Option<&'static str>,
    /// The access key id the head names (header or query), unverified.
    pub key_id: Option<String>,
    /// The account `key_id` belongs to among the dialect's credentials (runtime and auto
    /// accounts included), unverified.
    pub account: Option<String>,
    /// The largest body this request may carry.
    pub body_limit: u64,
    /// Which of its vendor's envelopes the dialect answers this request in (Tencent's API or
    /// runtime binding, Aliyun's ESA, DCDN or OSS form): the dialect's own tag, opaque to the
    /// binary, so a refusal made without the request (a panic, an injected fault) still speaks
    /// the right envelope.
    pub envelope: u8,
}

impl Head {
    /// A head with this body limit, in envelope 0, naming nothing.
    pub fn new(body_limit: u64) -> Self {
        Head {
            body_limit,
            ..Head::default()
        }
    }

    /// In the dialect's envelope `envelope`.
    pub fn in_envelope(mut self, envelope: u8) -> Self {
        self.envelope = envelope;
        self
    }

    /// Naming `operation` when it is one of `served` (exactly, as the vendor spells it).
    pub fn naming(mut self, operation: Option<&str>, served: &'static [&'static str]) -> Self {
        self.operation = operation.and_then(|op| served.iter().copied().find(|s| *s == op));
        self
    }

    /// Naming key id `key_id`, and the account it belongs to in `credentials`.
    pub fn signed_by(mut self, key_id: Option<String>, credentials: &Credentials) -> Self {
        self.account = key_id.as_deref().and_then(|id| credentials.account_of(id));
        self.key_id = key_id;
        self
    }

    /// The operation name for a [`RequestInfo`]: the one named, else `unknown`.
    pub fn operation_or_unknown(&self) -> String {
        self.operation.unwrap_or("unknown").to_string()
    }
}

/// A dialect's answer: the vendor's response and the facts about it that the binary logs,
/// counts and shows in the inspector.
#[derive(Debug)]
pub struct Answer {
    pub response: Response<Bytes>,
    pub info: RequestInfo,
}

impl Answer {
    pub fn new(response: Response<Bytes>, info: RequestInfo) -> Self {
        Answer { response, info }
    }
}

/// An answer reads as its response (`answer.status()`, `answer.body()`), which is what most
/// callers look at first.
impl std::ops::Deref for Answer {
    type Target = Response<Bytes>;

    fn deref(&self) -> &Response<Bytes> {
        &self.response
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

/// Facts about a served request, returned beside the response ([`Answer`]), for logs, metrics
/// and the request inspector.
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

    /// Whether this request is for this dialect, from the request line and headers alone, and
    /// if so what the head says ([`Head`]). The binary asks each dialect in turn, once per
    /// request; the first `Some` serves it.
    fn classify(&self, parts: &Parts) -> Option<Head>;

    /// The vendor's reply for a failure the gateway detected or injected, in the envelope the
    /// head chose.
    fn gateway_error(&self, head: &Head, error: GatewayError) -> Answer;

    /// Every vendor operation name this dialect serves, as it appears in `RequestInfo::operation`.
    /// The binary labels metrics, logs and the inspector only with these names (anything else is
    /// `unknown`): operation names reach it from client headers, and a label per distinct value
    /// would let any client grow the gateway's memory without bound.
    fn operations(&self) -> &'static [&'static str];

    /// Serves one request, given what [`Dialect::classify`] said of its head. Must not panic on
    /// any input.
    fn serve(&self, head: Head, request: Request<Bytes>) -> BoxFuture<'_, Answer>;

    /// Classifies and serves a request as the binary does, without the binary's stages (body
    /// limit, faults, logs): for tests, fuzzers and embedders calling a dialect directly. A
    /// request the dialect does not claim is served with a blank head (its main envelope), as a
    /// client that reached the dialect anyway would be.
    fn serve_request(&self, request: Request<Bytes>) -> BoxFuture<'_, Answer> {
        let (parts, body) = request.into_parts();
        let head = self.classify(&parts).unwrap_or_default();
        self.serve(head, Request::from_parts(parts, body))
    }

    /// The engine containers a scoped reset of this dialect removes: every container of the
    /// dialect when `container` is `None`, else the one the vendor calls `container` (a
    /// namespace, or Huawei's `store` or `store/table`) with whatever belongs to it. `Err` says
    /// why the name cannot name one. The default knows no scopes.
    fn reset_selectors(&self, container: Option<&str>) -> Result<Vec<ContainerSelector>, String> {
        let _ = container;
        Err(format!("the {} dialect has no scoped reset", self.name()))
    }

    /// The dialect's key pairs, for the admin API's runtime credentials; `None` when it has none
    /// to share.
    fn credentials(&self) -> Option<&Credentials> {
        None
    }
}

/// The peer address, put into request extensions by the listener.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Builds a `[&str; len]` at compile time from a const table, `name` giving the entry at index
/// `i`: each dialect derives its closed set of operation labels (`Dialect::operations`) from its
/// router's own table this way, so the labels cannot drift from what the router serves.
///
/// ```
/// const TABLE: [(&str, u8); 2] = [("Get", 1), ("Put", 2)];
/// const NAMES: [&str; TABLE.len()] = kv_dialect::const_names!(TABLE.len(), |i| TABLE[i].0);
/// assert_eq!(NAMES, ["Get", "Put"]);
/// ```
#[macro_export]
macro_rules! const_names {
    ($len:expr, |$i:ident| $name:expr) => {{
        let mut names = [""; $len];
        let mut $i = 0;
        while $i < names.len() {
            names[$i] = $name;
            $i += 1;
        }
        names
    }};
}
