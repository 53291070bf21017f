//! Tencent TC3-HMAC-SHA256 verifier: never panics, accepts what the spec's signer signs with the configured secret, refuses
//! other secrets, and accepts a changed request only when its signature still equals the one
//! recomputed independently. See `kvmux_fuzz::check_signature`.
#![no_main]

use kvmux_fuzz::signers::tencent;
use kvmux_fuzz::{check_signature, verifiers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_signature(
        data,
        tencent::sign_tc3,
        &verifiers::tencent_tc3,
        tencent::tc3_signed_by_secret,
    );
});
