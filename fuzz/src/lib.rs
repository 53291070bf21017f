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
pub mod signers;

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
