//! The dialect crates' signature verifiers, called the way each dialect calls them (the same
//! parameter collection and the same `now`), as `fn(request, secret) -> accepted` for
//! [`crate::check_signature`]. The configured key id is the vendor's `signers::*::ID`.

use bytes::Bytes;
use http::Request;

use crate::signers::{aliyun, huawei, tencent};
use crate::NOW;

pub fn tencent_tc3(request: &Request<Bytes>, secret: &str) -> bool {
    let signed = kv_tencent::auth::SignedRequest {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: request.uri().query().unwrap_or_default(),
        headers: request.headers(),
        body: request.body(),
    };
    kv_tencent::auth::verify_tc3(&signed, |id| (id == tencent::ID).then_some(secret), NOW).is_ok()
}

pub fn tencent_legacy(request: &Request<Bytes>, secret: &str) -> bool {
    kv_tencent::auth::verify_legacy(
        request.method().as_str(),
        &tencent::legacy_host(request),
        request.uri().path(),
        &tencent::legacy_params(request),
        |id| (id == tencent::ID).then_some(secret),
        NOW,
    )
    .is_ok()
}

pub fn aliyun_v3(request: &Request<Bytes>, secret: &str) -> bool {
    kv_aliyun::auth::verify_v3(
        request.method().as_str(),
        &aliyun::query_pairs(request),
        request.headers(),
        request.body(),
        &|id| (id == aliyun::ID).then(|| secret.to_string()),
        NOW,
    )
    .is_ok()
}

pub fn aliyun_v2(request: &Request<Bytes>, secret: &str) -> bool {
    kv_aliyun::auth::verify_v2(
        request.method().as_str(),
        &aliyun::v2_params(request),
        &|id| (id == aliyun::ID).then(|| secret.to_string()),
        NOW,
    )
    .is_ok()
}

pub fn huawei(request: &Request<Bytes>, secret: &str) -> bool {
    let signed = kv_huawei::auth::SignedRequest {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: request.uri().query(),
        headers: request.headers(),
        body: request.body(),
    };
    kv_huawei::auth::verify(&signed, NOW as i64, |id| {
        (id == huawei::ID).then(|| secret.to_string())
    })
    .is_ok()
}
