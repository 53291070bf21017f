//! A dialect served in-process the way `kvmux`'s server serves it: `classify` on the request
//! head, then `serve` on the buffered request, over a real
//! engine on a temporary redb file, with auth off so fuzzed requests reach the operations.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use kv_core::{Clock, Engine};
use kv_dialect::{Answer, AuthMode, Credential, Dialect, DialectContext};

/// One dialect over its own engine, kept for the whole fuzzing process.
pub struct DialectHarness<D> {
    pub dialect: D,
    /// The 5xx replies the vendor itself defines for client requests, as (status, error code):
    /// Huawei answers an unknown `/v1/<op>` with 501 `KVS.00000002` (spec §5.3). Any other 5xx
    /// is a failure.
    vendor_5xx: &'static [(u16, &'static str)],
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl<D: Dialect> DialectHarness<D> {
    /// Builds the engine and the dialect; `make` receives the context (auth off, the dev
    /// credential of `id`, vendor rate limits off).
    pub fn new(
        id: &str,
        vendor_5xx: &'static [(u16, &'static str)],
        make: impl FnOnce(DialectContext) -> D,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory for the fuzz engine");
        let engine = Engine::open_redb(&dir.path().join("kv.redb"), false, Clock::new())
            .expect("redb engine for fuzzing");
        let dialect = make(DialectContext {
            engine: Arc::new(engine),
            credentials: vec![Credential {
                id: id.to_string(),
                secret: "kvmuxdevsecret".to_string(),
                account: "dev".to_string(),
            }]
            .into(),
            auth_mode: AuthMode::Off,
            options: serde_json::Value::Null,
            vendor_rate_limits: false,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime for fuzzing");
        DialectHarness {
            dialect,
            vendor_5xx,
            runtime,
            _dir: dir,
        }
    }

    /// Serves the raw-format `data` and checks what every reply must satisfy: no panic (libFuzzer
    /// reports one), a `RequestInfo` the server can log (an operation name), and no 5xx but the
    /// vendor's own. Returns the reply for dialect-specific checks; `None` when `data` is not a
    /// request hyper would pass on or its body is over the dialect's limit (the server refuses
    /// those before `serve`).
    pub fn serve(&self, data: &[u8]) -> Option<Answer> {
        let request: Request<Bytes> = crate::parse_request(data)?;
        let (parts, body) = request.into_parts();
        // The server serves what the dialect classifies; an unclaimed request is served with a
        // blank head here, so the fuzzer still reaches every route.
        let head = self.dialect.classify(&parts).unwrap_or_default();
        if head.body_limit > 0 && body.len() as u64 > head.body_limit {
            return None;
        }
        let Answer { response, info } = self
            .runtime
            .block_on(self.dialect.serve(head, Request::from_parts(parts, body)));
        assert!(
            !info.operation.is_empty(),
            "reply without an operation name"
        );
        let status = response.status().as_u16();
        let code = info.code.as_deref().unwrap_or("");
        assert!(
            status < 500 || self.vendor_5xx.contains(&(status, code)),
            "{} answered {status} {code}: {}",
            self.dialect.name(),
            String::from_utf8_lossy(response.body())
        );
        Some(Answer { response, info })
    }
}
