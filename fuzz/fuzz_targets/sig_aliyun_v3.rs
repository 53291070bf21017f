//! Alibaba ACS3-HMAC-SHA256 / ACS3-HMAC-SM3 verifier, with the query decoded as the dialect
//! decodes it; the invariants of `kvmux_fuzz::check_signature`.
#![no_main]

use bytes::Bytes;
use http::Request;
use kv_aliyun::auth::verify_v3;
use kvmux_fuzz::signers::aliyun;
use kvmux_fuzz::{check_signature, NOW};
use libfuzzer_sys::fuzz_target;

fn verify(request: &Request<Bytes>, secret: &str) -> bool {
    verify_v3(
        request.method().as_str(),
        &aliyun::query_pairs(request),
        request.headers(),
        request.body(),
        &|id| (id == aliyun::ID).then(|| secret.to_string()),
        NOW,
    )
    .is_ok()
}

fuzz_target!(|data: &[u8]| {
    check_signature(data, aliyun::sign_v3, &verify, aliyun::v3_signed_by_secret);
});
