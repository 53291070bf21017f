//! Alibaba RPC HMAC-SHA1 ("V2") verifier (parameters from the query and a form body): never panics, accepts what the spec's signer signs with the configured secret, refuses
//! other secrets, and accepts a changed request only when its signature still equals the one
//! recomputed independently. See `kvmux_fuzz::check_signature`.
#![no_main]

use kvmux_fuzz::signers::aliyun;
use kvmux_fuzz::{check_signature, verifiers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_signature(
        data,
        aliyun::sign_v2,
        &verifiers::aliyun_v2,
        aliyun::v2_signed_by_secret,
    );
});
