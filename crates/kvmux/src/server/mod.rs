//! The gateway's request path: one port, HTTP/1.1 keep-alive, dispatch to the admin API or the
//! first dialect that claims the request, body limits enforced before buffering, graceful
//! shutdown. `handle` runs a request through the pipeline's named stages (this file);
//! [`body`] reads bodies within the shared body budget; [`listen`] accepts connections and
//! serves them with hyper.

mod body;
mod listen;

pub use body::BodyBudget;
pub use listen::run;

use body::{read_body_shared, BodyError, BodyShare};

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use kv_core::Engine;
use kv_dialect::{Answer, Dialect, GatewayError, Head, PeerAddr, RequestInfo};

use crate::admin;
use crate::config::Config;
use crate::faults::{FaultError, Faults};
use crate::inspector::{cut_ref, Entry, Inspector, SentRequest, MAX_NAME_BYTES};
use crate::logs;
use crate::metrics::Metrics;

/// Everything a request handler needs, shared by all connections.
pub struct Gateway {
    pub config: Config,
    pub engine: Arc<Engine>,
    pub dialects: Vec<Arc<dyn Dialect>>,
    pub metrics: Metrics,
    pub started: Instant,
    /// The last requests, for `/_kvmux/requests` and the dashboard.
    pub inspector: Inspector,
    /// Fault rules posted to `/_kvmux/faults`.
    pub faults: Faults,
    /// `[limits] max_inflight_body_bytes`, shared by every listener of this gateway.
    pub body_budget: BodyBudget,
}

impl Gateway {
    pub fn dialect_names(&self) -> Vec<&'static str> {
        self.dialects.iter().map(|d| d.name()).collect()
    }

    /// The label for `operation` as `dialect` reported it: one of the dialect's own operation
    /// names ([`Dialect::operations`]), else `unknown`. Operation names can come from client
    /// headers (a refusal names the `X-TC-Action` it was sent); labelling with them made one
    /// metrics series per distinct value (3,000 requests of 20 KB names: 1.97 GiB RSS).
    pub fn operation_label(&self, dialect: &dyn Dialect, operation: &str) -> &'static str {
        dialect
            .operations()
            .iter()
            .find(|known| **known == operation)
            .copied()
            .unwrap_or("unknown")
    }

    /// The account as logged and inspected: a configured account as is, anything else (a name a
    /// dialect took from the request) cut to a short bounded form.
    pub fn account_label<'a>(&self, account: Option<&'a str>) -> Option<Cow<'a, str>> {
        let account = account?;
        let configured =
            account == "dev" || self.config.credentials.iter().any(|c| c.account == account);
        Some(if configured {
            Cow::Borrowed(account)
        } else {
            cut_ref(account, ACCOUNT_LABEL_BYTES)
        })
    }
}

/// The longest account name logged or inspected that is not a configured one.
const ACCOUNT_LABEL_BYTES: usize = 64;

/// The request line and headers as sent on the wire (`METHOD SP target SP HTTP/1.1 CRLF`, then
/// `name: value CRLF` per header, then CRLF), measured from the parsed head. hyper's
/// `max_buf_size` is a read-buffer size, not a head limit (heads of ~115 KB passed a 64 KiB
/// setting), so `max_header_bytes` is enforced on this.
fn head_bytes(parts: &http::request::Parts) -> usize {
    let uri = &parts.uri;
    let path_and_query = uri.path_and_query().map_or(0, |p| p.as_str().len());
    let target = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => {
            scheme.len() + 3 + authority.as_str().len() + path_and_query
        }
        (None, Some(authority)) => authority.as_str().len(),
        _ => path_and_query.max(1),
    };
    let request_line = parts.method.as_str().len() + 1 + target + 1 + "HTTP/1.1".len() + 2;
    let headers: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    request_line + headers + 2
}

/// 431 for a head over `max_header_bytes`; the connection is closed (what follows the head is
/// not read).
fn head_too_large(size: usize, limit: usize) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(format!(
        "kvmux: the request line and headers are {size} bytes; max_header_bytes is {limit}.\n"
    )));
    *resp.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    resp
}

/// Plain-text reply for requests no dialect claims: nothing vendor-shaped can be said about them.
fn unclaimed(gw: &Gateway) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(format!(
        "kvmux: no dialect claims this request. kvmux speaks three dialects: tencent (X-TC-Action \
         header or a TC3-HMAC-SHA256 Authorization), aliyun (x-acs-action header or ?Action=) and \
         huawei (POST /v1/<operation>); enabled here: {}. The admin API is under /_kvmux/.\n",
        gw.dialect_names().join(", ")
    )));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn declared_length(parts: &http::request::Parts) -> Option<u64> {
    parts
        .headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What every reply carries: a whole buffer, or (for `GET /_kvmux/snapshot`) a stream that can
/// end in an error, which aborts the response.
pub type ResponseBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

fn full(bytes: Bytes) -> ResponseBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// `GET /_kvmux/snapshot`, streamed page by page so a large store is never held in memory.
fn snapshot(gw: &Gateway) -> Response<ResponseBody> {
    use futures_util::StreamExt;
    let frames = crate::snapshot::export_stream(gw.engine.clone()).map(|chunk| {
        chunk
            .map(|c| hyper::body::Frame::data(c.bytes))
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
    });
    let mut resp = Response::new(StreamBody::new(frames).boxed_unsync());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/jsonl"),
    );
    resp
}

/// Serves one request; never fails (errors become responses). A pipeline of named stages, each
/// of which either hands the request on or answers it (and records that answer) itself:
/// head size, admin, dispatch to a dialect, body, faults, the dialect, record.
pub async fn handle(
    gw: Arc<Gateway>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let call = Call {
        gw: &gw,
        peer,
        started: Instant::now(),
    };
    let (parts, body) = req.into_parts();
    Ok(call
        .pipeline(parts, body)
        .await
        .unwrap_or_else(|early| *early))
}

/// One request on its way through the stages: who sent it, and when it arrived.
struct Call<'g> {
    gw: &'g Arc<Gateway>,
    peer: SocketAddr,
    started: Instant,
}

/// A stage's early answer, already recorded (boxed: the happy path's `Result`s stay small).
type Answered = Box<Response<ResponseBody>>;

impl Call<'_> {
    async fn pipeline(
        &self,
        mut parts: http::request::Parts,
        body: Incoming,
    ) -> Result<Response<ResponseBody>, Answered> {
        self.admit_head(&parts)?;
        if admin::is_admin_path(parts.uri.path())
            || parts.extensions.get() == Some(&admin::Port::Admin)
        {
            return Err(Box::new(self.admin(&mut parts, body).await));
        }
        let (dialect, head) = self.dispatch(&parts)?;
        let (body, share) = self.body(&*dialect, &head, &parts, body).await?;
        // Copying the head for the inspector is skipped when it is off (`inspector_capacity = 0`).
        let sent = self
            .gw
            .inspector
            .enabled()
            .then(|| SentRequest::from_parts(&parts, body.len()));
        let fault = self.fault(&*dialect, &head, &sent).await?;
        let answer = self.serve(&*dialect, &head, parts, body).await;
        self.record(&*dialect, &answer, &head, sent.map(|sent| (sent, fault)));
        // The body's share of the budget is released only now, with the response produced.
        drop(share);
        Ok(answer.response.map(full))
    }

    /// Refuses a request head larger than `max_header_bytes` (431).
    fn admit_head(&self, parts: &http::request::Parts) -> Result<(), Answered> {
        let head = head_bytes(parts);
        let limit = self.gw.config.limits.max_header_bytes;
        if head <= limit {
            return Ok(());
        }
        let resp = head_too_large(head, limit);
        let info = RequestInfo::default();
        finish(
            self.gw,
            "none",
            "head_too_large",
            &info,
            resp.status(),
            self.started,
            None,
        );
        Err(Box::new(resp.map(full)))
    }

    /// Admin paths, and everything on an `[admin] listen` port: authorized before a byte of the
    /// body is read, so an unauthorized caller holds no memory; then served by `admin`.
    async fn admin(
        &self,
        parts: &mut http::request::Parts,
        body: Incoming,
    ) -> Response<ResponseBody> {
        parts.extensions.insert(admin::RequestId::fresh());
        let (operation, mut resp) = match admin::authorize(self.gw, self.peer, parts) {
            Err(refused) => ("refused", (*refused).map(full)),
            Ok(()) => self.admin_call(parts, body).await,
        };
        admin::tag_response(parts, resp.headers_mut());
        // Its request id is the admin call's own (a data request's comes from its dialect).
        let info = RequestInfo {
            request_id: admin::request_id(parts).to_string(),
            ..Default::default()
        };
        finish(
            self.gw,
            "admin",
            operation,
            &info,
            resp.status(),
            self.started,
            None,
        );
        resp
    }

    /// An authorized admin call: the streamed snapshot, or a body read within the body budget
    /// and handed to `admin::handle`. A body that cannot be read is refused: read as empty, a
    /// scoped reset would have become a reset of everything.
    async fn admin_call(
        &self,
        parts: &http::request::Parts,
        body: Incoming,
    ) -> (&'static str, Response<ResponseBody>) {
        let path = parts.uri.path();
        if parts.method == http::Method::GET && path == "/_kvmux/snapshot" {
            let resp = snapshot(self.gw);
            admin::log_call(self.peer, parts, resp.status());
            return ("snapshot", resp);
        }
        if !admin::is_admin_path(path) {
            // `admin::authorize` answers these on the admin port; nothing else comes here.
            let resp = admin::error(StatusCode::NOT_FOUND, format!("no admin resource {path}"));
            return ("unknown", resp.map(full));
        }
        let mut share = BodyShare::new(&self.gw.body_budget);
        let limit = admin::body_limit(parts);
        let timeout = self.gw.config.limits.body_timeout_secs;
        match read_body_shared(body, limit, timeout, &mut share).await {
            Ok(body) => {
                let (operation, resp) = admin::handle(self.gw, self.peer, parts, body).await;
                (operation, resp.map(full))
            }
            Err(e) => {
                let resp = match e {
                    BodyError::TooLarge => admin::error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "the body is larger than {limit} bytes, the most {} {path} takes",
                            parts.method
                        ),
                    ),
                    BodyError::Throttled => admin::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "max_inflight_body_bytes is in use by other requests; retry",
                    ),
                    BodyError::Other(why) => admin::error(StatusCode::BAD_REQUEST, why),
                };
                admin::log_call(self.peer, parts, resp.status());
                ("body", resp.map(full))
            }
        }
    }

    /// The dialect that claims the request with what it read from the head (asked once: the
    /// later stages use that answer), or the gateway's own "no dialect" answer.
    fn dispatch(&self, parts: &http::request::Parts) -> Result<(Arc<dyn Dialect>, Head), Answered> {
        for dialect in &self.gw.dialects {
            if let Some(head) = dialect.classify(parts) {
                return Ok((dialect.clone(), head));
            }
        }
        let resp = unclaimed(self.gw);
        let info = RequestInfo {
            operation: "unclaimed".into(),
            ..Default::default()
        };
        let sent = SentRequest::from_parts(parts, declared_length(parts).unwrap_or(0) as usize);
        finish(
            self.gw,
            "none",
            "unclaimed",
            &info,
            resp.status(),
            self.started,
            Some((sent, None)),
        );
        Err(Box::new(resp.map(full)))
    }

    /// The body, read within the dialect's limit and the gateway's body budget, with the share
    /// of the budget it holds until the response is produced. A declared length over the limit
    /// is refused before a byte is read, and the connection is then closed rather than drained.
    async fn body<'b>(
        &'b self,
        dialect: &dyn Dialect,
        head: &Head,
        parts: &http::request::Parts,
        body: Incoming,
    ) -> Result<(Bytes, BodyShare<'b>), Answered> {
        let limit = head.body_limit;
        let declared_len = declared_length(parts);
        let declared = declared_len.unwrap_or(0) as usize;
        let refuse = |refusal| {
            Box::new(refuse(
                self.gw,
                dialect,
                head,
                parts,
                refusal,
                declared,
                self.started,
            ))
        };
        if declared_len.is_some_and(|n| n > limit) {
            return Err(refuse(GatewayError::BodyTooLarge { limit }));
        }
        let mut share = BodyShare::new(&self.gw.body_budget);
        let declared_share = declared_len.map_or(0, |n| n.min(limit));
        if share.cover(declared_share, 0).await.is_err() {
            return Err(refuse(GatewayError::Throttled));
        }
        let timeout = self.gw.config.limits.body_timeout_secs;
        match read_body_shared(body, limit, timeout, &mut share).await {
            Ok(body) => Ok((body, share)),
            Err(BodyError::TooLarge) => Err(refuse(GatewayError::BodyTooLarge { limit })),
            Err(BodyError::Throttled) => Err(refuse(GatewayError::Throttled)),
            Err(BodyError::Other(reason)) => Err(refuse(GatewayError::BadBody(reason))),
        }
    }

    /// Applies the first fault rule that matches (its latency, then its error, answered in the
    /// dialect's envelope); the rule's name when one fired without answering.
    async fn fault(
        &self,
        dialect: &dyn Dialect,
        head: &Head,
        sent: &Option<SentRequest>,
    ) -> Result<Option<String>, Answered> {
        if self.gw.faults.is_empty() {
            return Ok(None);
        }
        let Some(decision) =
            self.gw
                .faults
                .decide(dialect.name(), head.operation, head.account.as_deref())
        else {
            return Ok(None);
        };
        let fault = Some(format!("rule {}", decision.rule_id));
        if decision.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
        }
        let Some(error) = decision.error else {
            return Ok(fault);
        };
        let mut answer = dialect.gateway_error(
            head,
            match error {
                FaultError::Throttle => GatewayError::Throttled,
                FaultError::Internal => GatewayError::Internal,
            },
        );
        if answer.info.account.is_none() {
            answer.info.account = head.account.clone();
        }
        self.finish_dialect(
            dialect,
            &answer.info,
            answer.response.status(),
            sent.clone().map(|s| (s, fault)),
        );
        Err(Box::new(answer.response.map(full)))
    }

    /// The dialect's answer. A panic in a dialect is a bug; it still must not take the
    /// connection down without an answer: the dialect's own internal error, in the envelope its
    /// head chose, answers instead.
    async fn serve(
        &self,
        dialect: &dyn Dialect,
        head: &Head,
        parts: http::request::Parts,
        body: Bytes,
    ) -> Answer {
        let mut request = Request::from_parts(parts, body);
        request.extensions_mut().insert(PeerAddr(self.peer));
        match std::panic::AssertUnwindSafe(dialect.serve(head.clone(), request))
            .catch_unwind()
            .await
        {
            Ok(answer) => answer,
            Err(_) => {
                tracing::error!(
                    dialect = dialect.name(),
                    operation = head.operation.unwrap_or("unknown"),
                    "dialect panicked"
                );
                dialect.gateway_error(head, GatewayError::Internal)
            }
        }
    }

    /// Logs, counts and inspects the dialect's answer.
    fn record(
        &self,
        dialect: &dyn Dialect,
        answer: &Answer,
        head: &Head,
        sent: Option<(SentRequest, Option<String>)>,
    ) {
        if answer.info.account.is_some() {
            return self.finish_dialect(dialect, &answer.info, answer.response.status(), sent);
        }
        // A refused request names its key even when the dialect could not vouch for it; the
        // inspector shows whose key that is (the owner of that key id).
        let info = RequestInfo {
            account: head.account.clone(),
            ..answer.info.clone()
        };
        self.finish_dialect(dialect, &info, answer.response.status(), sent);
    }

    /// Logs, counts and inspects an answer in the dialect's name.
    fn finish_dialect(
        &self,
        dialect: &dyn Dialect,
        info: &RequestInfo,
        status: StatusCode,
        sent: Option<(SentRequest, Option<String>)>,
    ) {
        let operation = self.gw.operation_label(dialect, &info.operation);
        finish(
            self.gw,
            dialect.name(),
            operation,
            info,
            status,
            self.started,
            sent,
        );
    }
}

/// The dialect's own refusal of a body the gateway would not read (too large, or not received
/// whole), on a connection that is then closed rather than drained; logged, counted and recorded
/// like any answered request.
fn refuse(
    gw: &Gateway,
    dialect: &dyn Dialect,
    head: &Head,
    parts: &http::request::Parts,
    refusal: GatewayError,
    declared: usize,
    started: Instant,
) -> Response<ResponseBody> {
    let Answer { mut response, info } = dialect.gateway_error(head, refusal);
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    let sent = gw
        .inspector
        .enabled()
        .then(|| (SentRequest::from_parts(parts, declared), None));
    finish(
        gw,
        dialect.name(),
        gw.operation_label(dialect, &info.operation),
        &info,
        response.status(),
        started,
        sent,
    );
    response.map(full)
}

/// Logs, counts and (for vendor requests, which carry `inspected`: what was sent and the fault
/// rule that fired, if any) records one answered request in the inspector.
///
/// `dialect` and `operation` are `'static`: names from the code (a dialect's name, one of its
/// [`Dialect::operations`] via [`Gateway::operation_label`], an admin route), never text a client
/// sent, so metrics series and log values come from a closed set. The account, code and request
/// id are cut to a bounded length for the same reason.
fn finish(
    gw: &Gateway,
    dialect: &'static str,
    operation: &'static str,
    info: &RequestInfo,
    status: StatusCode,
    started: Instant,
    inspected: Option<(SentRequest, Option<String>)>,
) {
    let elapsed = started.elapsed();
    let status = status.as_u16();
    gw.metrics.observe(dialect, operation, status, elapsed);
    let account = gw.account_label(info.account.as_deref());
    let code = info.code.as_deref().map(|c| cut_ref(c, MAX_NAME_BYTES));
    let request_id = cut_ref(&info.request_id, MAX_NAME_BYTES);
    logs::emit(logs::Line::Request {
        request_id: &request_id,
        dialect,
        operation,
        account: account.as_deref(),
        status,
        code: code.as_deref(),
        latency_us: elapsed.as_micros() as u64,
    });
    if let Some((request, fault)) = inspected {
        gw.inspector.record(Entry {
            seq: 0,
            time_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            dialect,
            operation,
            account: account.map(Cow::into_owned),
            status,
            code: code.map(Cow::into_owned),
            request_id: request_id.into_owned(),
            latency_ms: elapsed.as_secs_f64() * 1000.0,
            fault,
            request,
            // Cut from a reference: a refused legacy/V2 string-to-sign is the whole body.
            signature: info
                .signature
                .as_ref()
                .map(crate::inspector::bounded_signature),
        });
    }
}
