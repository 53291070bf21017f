//! Tencent legacy HmacSHA1/HmacSHA256 verifier (parameters from the query, and the body for POST): never panics, accepts what the spec's signer signs with the configured secret, refuses
//! other secrets, and accepts a changed request only when its signature still equals the one
//! recomputed independently. See `kvmux_fuzz::check_signature`.
#![no_main]

use kvmux_fuzz::signers::tencent;
use kvmux_fuzz::{check_signature, verifiers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_signature(
        data,
        tencent::sign_legacy,
        &verifiers::tencent_legacy,
        tencent::legacy_signed_by_secret,
    );
});
