//! A dialect served in-process the way `kvmux`'s server serves it: `claims`, `body_limit` and
//! `operation_hint` from the request head, then `serve` on the buffered request, over a real
//! engine on a temporary redb file, with auth off so fuzzed requests reach the operations.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use kv_core::{AuthMode, Clock, Credential, Dialect, DialectContext, Engine, RequestInfo};

/// One dialect over its own engine, kept for the whole fuzzing process.
pub struct DialectHarness<D> {
    pub dialect: D,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl<D: Dialect> DialectHarness<D> {
    /// Builds the engine and the dialect; `make` receives the context (auth off, the dev
    /// credential of `id`, vendor rate limits off).
    pub fn new(id: &str, make: impl FnOnce(DialectContext) -> D) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory for the fuzz engine");
        let engine = Engine::open_redb(&dir.path().join("kv.redb"), false, Clock::new())
            .expect("redb engine for fuzzing");
        let dialect = make(DialectContext {
            engine: Arc::new(engine),
            credentials: vec![Credential {
                id: id.to_string(),
                secret: "kvmuxdevsecret".to_string(),
                account: "dev".to_string(),
            }],
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
            runtime,
            _dir: dir,
        }
    }

    /// Serves the raw-format `data` and checks what every reply must satisfy: no panic (libFuzzer
    /// reports one), no 5xx, and the `RequestInfo` extension the server logs from. Returns the
    /// reply for dialect-specific checks; `None` when `data` is not a request hyper would pass on
    /// or its body is over the dialect's limit (the server refuses those before `serve`).
    pub fn serve(&self, data: &[u8]) -> Option<Response<Bytes>> {
        let request: Request<Bytes> = crate::parse_request(data)?;
        let (parts, body) = request.into_parts();
        let _ = self.dialect.claims(&parts);
        let _ = self.dialect.operation_hint(&parts);
        if body.len() as u64 > self.dialect.body_limit(&parts) {
            return None;
        }
        let response = self
            .runtime
            .block_on(self.dialect.serve(Request::from_parts(parts, body)));
        assert!(
            !response.status().is_server_error(),
            "{} answered {}: {}",
            self.dialect.name(),
            response.status(),
            String::from_utf8_lossy(response.body())
        );
        let info = response.extensions().get::<RequestInfo>();
        assert!(info.is_some(), "reply without RequestInfo");
        Some(response)
    }
}
