//! Shared pieces of the kvmux fuzz targets: the raw request format every corpus file uses, the
//! in-process dialect harness (engine on a temporary redb file, auth off), and signers written
//! from the vendor specs (`shared/specs/*.md`), independently of the dialect crates' verifiers.
//!
//! The raw request format is the HTTP/1.1 request head without the version, then the body:
//!
//! ```text
//! POST /?Action=PutKv HTTP-free-target
//! Host: 127.0.0.1:9090
//! Content-Type: application/json
//!
//! {"Namespace":"ns"}
//! ```
//!
//! so seeds are readable, and libFuzzer's byte mutations reach every part of a request.

pub mod dialects;
pub mod overrides;
pub mod signers;
pub mod verifiers;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};

/// The wall-clock time the signature targets verify at: the time the shared vectors were
/// recorded, so vector-derived seeds sit inside every vendor's window.
pub const NOW: u64 = 1_795_314_830;

/// Parses the raw format; `None` when the head is not a request `http` (and so hyper) would
/// accept: such bytes never reach a dialect.
pub fn parse_request(data: &[u8]) -> Option<Request<Bytes>> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let (method, target) = lines.next()?.split_once(' ')?;
    let mut builder = Request::builder().method(method).uri(target);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(value.trim_start().as_bytes()).ok()?;
        builder = builder.header(name, value);
    }
    builder.body(Bytes::copy_from_slice(body)).ok()
}

/// The raw format of a request; `parse_request(&serialize(r))` gives `r` back.
pub fn serialize(request: &Request<Bytes>) -> Vec<u8> {
    let mut out = format!("{} {}", request.method(), request.uri()).into_bytes();
    for (name, value) in request.headers() {
        out.push(b'\n');
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(request.body());
    out
}

/// The four bytes in front of a signature target's raw request: which signed byte to change,
/// how, and which signing variant (algorithm, header set) to use.
#[derive(Clone, Copy, Debug)]
pub struct Control {
    /// Index (modulo the serialized length) of the byte to change after signing.
    pub mutate_at: u16,
    /// XOR applied to that byte; 0 means the signed request is only checked, not changed.
    pub xor: u8,
    /// Signing variant bits, meaning defined per target.
    pub flags: u8,
}

impl Control {
    /// Splits a signature target's input into its control bytes and the raw request.
    pub fn split(data: &[u8]) -> Option<(Control, &[u8])> {
        let (control, raw) = data.split_first_chunk::<4>()?;
        Some((
            Control {
                mutate_at: u16::from_le_bytes([control[0], control[1]]),
                xor: control[2],
                flags: control[3],
            },
            raw,
        ))
    }

    /// The control bytes of a seed: no change, variant `flags`.
    pub fn seed(flags: u8) -> [u8; 4] {
        [0, 0, 0, flags]
    }

    /// The serialized `request` with the chosen byte changed, re-parsed; `None` when there is no
    /// change or the changed bytes are no longer a request.
    pub fn mutate(&self, request: &Request<Bytes>) -> Option<Request<Bytes>> {
        if self.xor == 0 {
            return None;
        }
        let mut raw = serialize(request);
        let at = usize::from(self.mutate_at) % raw.len();
        raw[at] ^= self.xor;
        parse_request(&raw)
    }
}

/// A header's value as text, when it is text.
pub fn header<'r>(request: &'r Request<Bytes>, name: &str) -> Option<&'r str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Every header name present, lower-case, sorted, once each, except those in `skip`.
pub fn header_names(request: &Request<Bytes>, skip: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = request
        .headers()
        .keys()
        .map(|n| n.as_str().to_string())
        .filter(|n| !skip.contains(&n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A signature verifier under test: whether it accepts `request` when the configured key id's
/// secret is `secret`. It must not panic on any request.
pub type Verifier = dyn Fn(&Request<Bytes>, &str) -> bool;

/// The body of every signature target. For the raw request in `data`:
/// 1. as received (seeds carry real SDK signatures): acceptance implies `signed_by_secret`;
/// 2. signed by `sign` (the spec's algorithm, written independently of the verifier): it must be
///    accepted with the configured secret and refused with any other;
/// 3. with one byte of the signed request changed (chosen by the fuzzer): if it is still
///    accepted, the signature it carries must be the one `signed_by_secret` recomputes for the
///    changed request, i.e. the change was one the signature does not cover by the spec.
pub fn check_signature(
    data: &[u8],
    sign: fn(Request<Bytes>, u8) -> Option<Request<Bytes>>,
    verify: &Verifier,
    signed_by_secret: fn(&Request<Bytes>) -> bool,
) {
    let Some((control, raw)) = Control::split(data) else {
        return;
    };
    let Some(request) = parse_request(raw) else {
        return;
    };
    let show = |r: &Request<Bytes>| String::from_utf8_lossy(&serialize(r)).into_owned();
    if verify(&request, signers::SECRET) {
        assert!(
            signed_by_secret(&request),
            "accepted a request not signed with the secret:\n{}",
            show(&request)
        );
    }
    let Some(signed) = sign(request, control.flags) else {
        return;
    };
    assert!(
        verify(&signed, signers::SECRET),
        "refused a request signed by the spec (flags {}):\n{}",
        control.flags,
        show(&signed)
    );
    assert!(
        !verify(&signed, signers::WRONG_SECRET),
        "accepted with the wrong secret:\n{}",
        show(&signed)
    );
    let Some(changed) = control.mutate(&signed) else {
        return;
    };
    if verify(&changed, signers::SECRET) {
        assert!(
            signed_by_secret(&changed),
            "accepted a changed request whose signature no longer covers it:\nsigned:\n{}\nchanged:\n{}",
            show(&signed),
            show(&changed)
        );
        assert!(
            !verify(&changed, signers::WRONG_SECRET),
            "accepted with the wrong secret:\n{}",
            show(&changed)
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::path::Path;
    use std::sync::Mutex;

    use super::*;
    use crate::signers::{aliyun, huawei, tencent};

    type Sign = fn(Request<Bytes>, u8) -> Option<Request<Bytes>>;
    type Covered = fn(&Request<Bytes>) -> bool;

    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
            })
            .collect();
        names.sort();
        assert!(!names.is_empty(), "no seeds in {}", dir.display());
        names.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    /// Every seed, under every signing variant, with about 12 single-byte changes spread over
    /// the signed request: what a short fuzzing run does, as a deterministic test.
    fn sweep(target: &str, sign: Sign, verify: &Verifier, covered: Covered) {
        for seed in seeds(target) {
            let raw = &seed[4..];
            for flags in 0..8u8 {
                let len = parse_request(raw)
                    .and_then(|r| sign(r, flags))
                    .map_or(1, |r| serialize(&r).len());
                for at in (0..len).step_by(len / 12 + 1) {
                    let mut data = vec![at as u8, (at >> 8) as u8, 0x01, flags];
                    data.extend_from_slice(raw);
                    check_signature(&data, sign, verify, covered);
                }
            }
        }
    }

    #[test]
    fn huawei_unknown_operation_is_its_own_501_and_passes_the_harness() {
        // Found by dialect_huawei: the spec's 501 KVS.00000002 for an unknown `/v1/<op>`.
        let harness = dialects::DialectHarness::new(
            "HWkvmuxdev",
            &[(501, "KVS.00000002")],
            kv_huawei::HuaweiDialect::new,
        );
        let crash = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("corpus/dialect_huawei/seed-crash-unknown-op-501"),
        )
        .unwrap();
        let answer = harness.serve(&crash).expect("a request");
        assert_eq!(answer.response.status(), 501);
        let strict =
            dialects::DialectHarness::new("HWkvmuxdev", &[], kv_huawei::HuaweiDialect::new);
        assert!(catch_unwind(AssertUnwindSafe(|| strict.serve(&crash))).is_err());
    }

    #[test]
    fn tc3_with_a_mixed_case_get_signs_its_query_as_the_verifier_does() {
        // Found by sig_tencent_tc3: `GeT` (which the dialect refuses before verifying) was
        // signed without its query by the harness and with it by the verifier.
        let seed = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("corpus/sig_tencent_tc3/seed-crash-method-case"),
        )
        .unwrap();
        check_signature(
            &seed,
            tencent::sign_tc3,
            &verifiers::tencent_tc3,
            tencent::tc3_signed_by_secret,
        );
    }

    #[test]
    fn raw_format_round_trips() {
        for target in ["dialect_tencent", "dialect_aliyun", "dialect_huawei"] {
            for seed in seeds(target) {
                let request = parse_request(&seed).expect("seeds parse");
                let again = parse_request(&serialize(&request)).unwrap();
                assert_eq!(request.method(), again.method());
                assert_eq!(request.uri(), again.uri());
                assert_eq!(request.headers(), again.headers());
                assert_eq!(request.body(), again.body());
            }
        }
    }

    #[test]
    fn the_verifiers_keep_the_invariants_on_every_seed() {
        sweep(
            "sig_tencent_tc3",
            tencent::sign_tc3,
            &verifiers::tencent_tc3,
            tencent::tc3_signed_by_secret,
        );
        sweep(
            "sig_tencent_legacy",
            tencent::sign_legacy,
            &verifiers::tencent_legacy,
            tencent::legacy_signed_by_secret,
        );
        sweep(
            "sig_aliyun_v3",
            aliyun::sign_v3,
            &verifiers::aliyun_v3,
            aliyun::v3_signed_by_secret,
        );
        sweep(
            "sig_aliyun_v2",
            aliyun::sign_v2,
            &verifiers::aliyun_v2,
            aliyun::v2_signed_by_secret,
        );
        sweep(
            "sig_huawei",
            huawei::sign,
            &verifiers::huawei,
            huawei::signed_by_secret,
        );
    }

    /// The panic message of `check_signature` on the first seed of `target` under `verify`,
    /// over every single-byte change; `None` if it never panics.
    fn first_failure(
        target: &str,
        sign: Sign,
        verify: &Verifier,
        covered: Covered,
    ) -> Option<String> {
        let seed = seeds(target).remove(0);
        let signed = sign(parse_request(&seed[4..]).unwrap(), 0).unwrap();
        for at in 0..serialize(&signed).len() {
            let mut data = vec![at as u8, (at >> 8) as u8, 0x01, 0];
            data.extend_from_slice(&seed[4..]);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                check_signature(&data, sign, verify, covered)
            }));
            if let Err(panic) = outcome {
                return Some(panic.downcast_ref::<String>().cloned().unwrap_or_default());
            }
        }
        None
    }

    #[test]
    fn a_verifier_that_ignores_the_secret_is_caught() {
        let accepts_anything = |_: &Request<Bytes>, _: &str| true;
        let failure = first_failure(
            "sig_huawei",
            huawei::sign,
            &accepts_anything,
            huawei::signed_by_secret,
        );
        let failure = failure.expect("caught");
        assert!(
            failure.contains("accepted a request not signed with the secret"),
            "{failure}"
        );
    }

    #[test]
    fn a_verifier_that_trusts_a_seen_signature_for_a_changed_request_is_caught() {
        // The bug: once a signature verified, any request carrying it is accepted.
        let seen = Mutex::new(HashSet::new());
        let trusts_seen = move |request: &Request<Bytes>, secret: &str| {
            let authorization = (
                header(request, "authorization").map(str::to_string),
                secret.to_string(),
            );
            if seen.lock().unwrap().contains(&authorization) {
                return true;
            }
            let ok = verifiers::tencent_tc3(request, secret);
            if ok {
                seen.lock().unwrap().insert(authorization);
            }
            ok
        };
        let failure = first_failure(
            "sig_tencent_tc3",
            tencent::sign_tc3,
            &trusts_seen,
            tencent::tc3_signed_by_secret,
        );
        assert!(failure.unwrap().contains("no longer covers"));
        // The real verifier, over the same changes, never fails.
        assert_eq!(
            first_failure(
                "sig_tencent_tc3",
                tencent::sign_tc3,
                &verifiers::tencent_tc3,
                tencent::tc3_signed_by_secret,
            ),
            None
        );
    }
}
