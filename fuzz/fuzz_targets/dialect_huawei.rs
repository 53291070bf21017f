//! Huawei KVS request handling end to end: routing (`/v1/<op>`, store from host or query), BSON
//! decoding, condition and update expressions, key schemas and indexes, the operations and the
//! engine. Every reply must be a 2xx/4xx BSON document, never a 5xx.
#![no_main]

use std::sync::OnceLock;

use kv_huawei::HuaweiDialect;
use kvmux_fuzz::dialects::DialectHarness;
use libfuzzer_sys::fuzz_target;

fn harness() -> &'static DialectHarness<HuaweiDialect> {
    static HARNESS: OnceLock<DialectHarness<HuaweiDialect>> = OnceLock::new();
    HARNESS.get_or_init(|| {
        DialectHarness::new("HWkvmuxdev", &[(501, "KVS.00000002")], HuaweiDialect::new)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(kv_dialect::Answer { response, .. }) = harness().serve(data) else {
        return;
    };
    if let Err(e) = kv_doc::decode_document(response.body()) {
        panic!("the reply is not a BSON document: {e}");
    }
});
