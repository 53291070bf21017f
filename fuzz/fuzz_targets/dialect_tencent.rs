//! Tencent EdgeKV request handling end to end: routing (TC3 headers or legacy `Action`), parameter
//! decoding (JSON body, form body, GET query), the operations and the engine. Every reply must be
//! Tencent's envelope: HTTP 200, JSON with `Response.RequestId`, never `InternalError`.
#![no_main]

use std::sync::OnceLock;

use kv_tencent::TencentDialect;
use kvmux_fuzz::dialects::DialectHarness;
use libfuzzer_sys::fuzz_target;

fn harness() -> &'static DialectHarness<TencentDialect> {
    static HARNESS: OnceLock<DialectHarness<TencentDialect>> = OnceLock::new();
    HARNESS.get_or_init(|| DialectHarness::new("AKIDkvmuxdev", &[], TencentDialect::new))
}

fuzz_target!(|data: &[u8]| {
    let Some(kv_dialect::Answer { response, .. }) = harness().serve(data) else {
        return;
    };
    assert_eq!(
        response.status(),
        200,
        "Tencent answers every request with 200"
    );
    let body: serde_json::Value =
        serde_json::from_slice(response.body()).expect("the reply is JSON");
    let reply = &body["Response"];
    assert!(reply["RequestId"].is_string(), "no RequestId: {body}");
    assert_ne!(reply["Error"]["Code"], "InternalError", "{body}");
});
