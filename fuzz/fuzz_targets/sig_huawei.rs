//! Huawei SDK-HMAC-SHA256 / SDK-HMAC-SM3 verifier; the invariants of
//! `kvmux_fuzz::check_signature`.
#![no_main]

use bytes::Bytes;
use http::Request;
use kv_huawei::auth::{verify, SignedRequest};
use kvmux_fuzz::signers::huawei;
use kvmux_fuzz::{check_signature, NOW};
use libfuzzer_sys::fuzz_target;

fn verifies(request: &Request<Bytes>, secret: &str) -> bool {
    let signed = SignedRequest {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: request.uri().query(),
        headers: request.headers(),
        body: request.body(),
    };
    verify(&signed, NOW as i64, |id| {
        (id == huawei::ID).then(|| secret.to_string())
    })
    .is_ok()
}

fuzz_target!(|data: &[u8]| {
    check_signature(data, huawei::sign, &verifies, huawei::signed_by_secret);
});
