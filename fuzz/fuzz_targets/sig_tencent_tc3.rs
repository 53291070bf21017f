//! Tencent TC3-HMAC-SHA256 verifier: never panics, accepts what the spec's signer signs with the
//! configured secret, refuses other secrets, and accepts a changed request only when its
//! signature still equals the one recomputed independently (`kvmux_fuzz::check_signature`).
#![no_main]

use bytes::Bytes;
use http::Request;
use kv_tencent::auth::{verify_tc3, SignedRequest};
use kvmux_fuzz::signers::tencent;
use kvmux_fuzz::{check_signature, NOW};
use libfuzzer_sys::fuzz_target;

fn verify(request: &Request<Bytes>, secret: &str) -> bool {
    let signed = SignedRequest {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: request.uri().query().unwrap_or_default(),
        headers: request.headers(),
        body: request.body(),
    };
    verify_tc3(&signed, |id| (id == tencent::ID).then_some(secret), NOW).is_ok()
}

fuzz_target!(|data: &[u8]| {
    check_signature(
        data,
        tencent::sign_tc3,
        &verify,
        tencent::tc3_signed_by_secret,
    );
});
