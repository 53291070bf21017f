//! Tencent legacy HmacSHA1/HmacSHA256 verifier, with the parameters collected as the dialect
//! collects them (query, and the body for POST); the invariants of `kvmux_fuzz::check_signature`.
#![no_main]

use bytes::Bytes;
use http::Request;
use kv_tencent::auth::verify_legacy;
use kvmux_fuzz::signers::tencent;
use kvmux_fuzz::{check_signature, NOW};
use libfuzzer_sys::fuzz_target;

fn verify(request: &Request<Bytes>, secret: &str) -> bool {
    verify_legacy(
        request.method().as_str(),
        &tencent::legacy_host(request),
        request.uri().path(),
        &tencent::legacy_params(request),
        |id| (id == tencent::ID).then_some(secret),
        NOW,
    )
    .is_ok()
}

fuzz_target!(|data: &[u8]| {
    check_signature(
        data,
        tencent::sign_legacy,
        &verify,
        tencent::legacy_signed_by_secret,
    );
});
