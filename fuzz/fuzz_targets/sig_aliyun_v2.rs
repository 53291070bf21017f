//! Alibaba RPC HMAC-SHA1 ("V2") verifier, with the query and form body collected as the dialect
//! collects them; the invariants of `kvmux_fuzz::check_signature`.
#![no_main]

use bytes::Bytes;
use http::Request;
use kv_aliyun::auth::verify_v2;
use kvmux_fuzz::signers::aliyun;
use kvmux_fuzz::{check_signature, NOW};
use libfuzzer_sys::fuzz_target;

fn verify(request: &Request<Bytes>, secret: &str) -> bool {
    verify_v2(
        request.method().as_str(),
        &aliyun::v2_params(request),
        &|id| (id == aliyun::ID).then(|| secret.to_string()),
        NOW,
    )
    .is_ok()
}

fuzz_target!(|data: &[u8]| {
    check_signature(data, aliyun::sign_v2, &verify, aliyun::v2_signed_by_secret);
});
