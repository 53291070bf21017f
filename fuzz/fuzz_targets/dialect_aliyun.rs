//! Alibaba ESA/DCDN KV request handling end to end: RPC routing (`x-acs-action` or `Action`),
//! query and form decoding, JSON and multipart bodies, the OSS-style upload form, the operations
//! and the engine. Every reply must be a vendor 2xx/4xx, never a 5xx.
#![no_main]

use std::sync::OnceLock;

use kv_aliyun::AliyunDialect;
use kvmux_fuzz::dialects::DialectHarness;
use libfuzzer_sys::fuzz_target;

fn harness() -> &'static DialectHarness<AliyunDialect> {
    static HARNESS: OnceLock<DialectHarness<AliyunDialect>> = OnceLock::new();
    HARNESS.get_or_init(|| DialectHarness::new("LTAIkvmuxdev", &[], AliyunDialect::new))
}

fuzz_target!(|data: &[u8]| {
    let Some(kv_dialect::Answer { response, .. }) = harness().serve(data) else {
        return;
    };
    assert!(!response.body().is_empty(), "empty reply body");
});
