//! Unsigned parts of a signed request must not change what runs (docs/SECURITY.md, "Request
//! integrity"). Two checks, each taking a request, signing or aiming it, and changing only what
//! the signature does not cover:
//!
//! - Aliyun V3: after signing, a deciding header (`x-acs-action`, `x-acs-version`, `host`,
//!   `x-acs-date`, `x-acs-signature-nonce`) is replaced or given a second value. If the verifier
//!   still accepts, the action and version it returns must be the ones it returned for the signed
//!   request, and every value of `x-acs-action`/`x-acs-version` on the request must equal them
//!   (so the router, which reads the headers, runs what was signed).
//! - Huawei: the request target is put in absolute form with an authority naming another store
//!   than the Host header (a label in front of it, same port). Served with auth off, so this
//!   reaches routing whatever the signature: the answer must not be a success. This is weaker
//!   than "the operation ran on the signed store" (the harness cannot see which store an
//!   operation touched), but a refusal is what the rule demands and what is checked.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use kv_dialect::Answer;

use crate::dialects::DialectHarness;
use crate::signers::{aliyun, SECRET};
use crate::{parse_request, serialize, Control, NOW};

/// The headers an Aliyun V3 request decides with.
pub const ALIYUN_DECIDING: [&str; 5] = [
    "x-acs-action",
    "x-acs-version",
    "host",
    "x-acs-date",
    "x-acs-signature-nonce",
];

/// Values an override tries: other operations and versions, another host, an old date.
const OVERRIDES: [&str; 6] = [
    "DeleteKv",
    "BatchDeleteKv",
    "2019-01-01",
    "evil.example",
    "2001-01-01T00:00:00Z",
    "replayed-nonce",
];

fn verify_v3(request: &Request<Bytes>) -> Option<kv_aliyun::auth::Caller> {
    kv_aliyun::auth::verify_v3(
        request.method().as_str(),
        &aliyun::query_pairs(request),
        request.headers(),
        request.body(),
        &|id| (id == aliyun::ID).then(|| SECRET.to_string()),
        NOW,
    )
    .ok()
}

/// The Aliyun V3 check on `raw`, signed with variant `control.flags`; `control.mutate_at`
/// picks the header and the value, `control.xor` bit 0 whether it is replaced or repeated.
pub fn aliyun_v3_override(control: Control, raw: &[u8]) {
    let Some(request) = parse_request(raw) else {
        return;
    };
    let Some(signed) = aliyun::sign_v3(request, control.flags & 3) else {
        return;
    };
    let Some(original) = verify_v3(&signed) else {
        return;
    };
    let at = usize::from(control.mutate_at);
    let name = HeaderName::from_static(ALIYUN_DECIDING[at % ALIYUN_DECIDING.len()]);
    let value = HeaderValue::from_static(OVERRIDES[(at / ALIYUN_DECIDING.len()) % OVERRIDES.len()]);
    let mut changed = signed.clone();
    if control.xor & 1 == 0 {
        changed.headers_mut().append(name.clone(), value.clone());
    } else {
        changed.headers_mut().insert(name.clone(), value.clone());
    }
    let Some(caller) = verify_v3(&changed) else {
        return;
    };
    let show = || String::from_utf8_lossy(&serialize(&changed)).into_owned();
    assert_eq!(
        (caller.action.as_str(), caller.version.as_str()),
        (original.action.as_str(), original.version.as_str()),
        "{name}: {value:?} after signing changed the verified operation:\n{}",
        show()
    );
    for (header, signed_value) in [
        ("x-acs-action", &original.action),
        ("x-acs-version", &original.version),
    ] {
        for v in changed.headers().get_all(header) {
            assert_eq!(
                v.as_bytes(),
                signed_value.as_bytes(),
                "accepted with an unsigned {header} {v:?} beside the signed {signed_value:?}:\n{}",
                show()
            );
        }
    }
}

/// The Huawei check on `raw` through `harness` (auth off); `label` is the store the absolute
/// target names in front of the Host.
pub fn huawei_foreign_authority<D: kv_dialect::Dialect>(
    harness: &DialectHarness<D>,
    label: u16,
    raw: &[u8],
) {
    let Some(request) = parse_request(raw) else {
        return;
    };
    let Some(host) = crate::header(&request, "host").map(str::to_string) else {
        return;
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return;
    }
    let Some(path) = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
    else {
        return;
    };
    let (mut parts, body) = request.into_parts();
    let Ok(uri) = format!("http://other{label}.{host}{path}").parse() else {
        return;
    };
    parts.uri = uri;
    let aimed = Request::from_parts(parts, body);
    let Some(Answer { response, info }) = harness.serve(&serialize(&aimed)) else {
        return;
    };
    let code = info.code;
    assert!(
        !response.status().is_success() && code.is_some(),
        "an absolute target naming store other{label} beside Host {host} was served ({} {:?}):\n{}",
        response.status(),
        code,
        String::from_utf8_lossy(&serialize(&aimed))
    );
}
