//! Shared by the adversarial end-to-end tests (bad_input, isolation): a raw HTTP client, the
//! vendors' envelopes and error tables, signers for arbitrary requests, and the corpus generator.

#![allow(dead_code)]

pub mod corpus;
pub mod envelope;
pub mod raw;
pub mod sign;
pub mod trust;

use bytes::Bytes;

/// The three dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    Tencent,
    Aliyun,
    Huawei,
}

impl Vendor {
    pub const ALL: [Vendor; 3] = [Vendor::Tencent, Vendor::Aliyun, Vendor::Huawei];

    pub fn name(self) -> &'static str {
        match self {
            Vendor::Tencent => "tencent",
            Vendor::Aliyun => "aliyun",
            Vendor::Huawei => "huawei",
        }
    }

    /// The dev credential's key id (secret `kvmuxdevsecret`, account `dev`).
    pub fn dev_key(self) -> sign::Key {
        let id = match self {
            Vendor::Tencent => "AKIDkvmuxdev",
            Vendor::Aliyun => "LTAIkvmuxdev",
            Vendor::Huawei => "HWkvmuxdev",
        };
        sign::Key::new(id, "kvmuxdevsecret")
    }

    /// Whether `code` is one of the dialect's signature refusals (as opposed to a decoder's or
    /// an operation's answer).
    pub fn is_auth_code(self, code: &str) -> bool {
        match self {
            Vendor::Tencent => code.starts_with("AuthFailure"),
            Vendor::Aliyun => matches!(
                code,
                "SignatureDoesNotMatch"
                    | "IncompleteSignature"
                    | "InvalidAccessKeyId.NotFound"
                    | "InvalidTimeStamp.Expired"
                    | "InvalidTimeStamp.Format"
                    | "SignatureNonceUsed"
                    | "Unauthorized.InvalidToken"
            ),
            Vendor::Huawei => code == kv_huawei::error::SIGNATURE_CODE,
        }
    }
}

/// A request built by `http` (e.g. by the bench signers) as raw bytes for [`raw::exchange`].
pub fn from_http(request: http::Request<Bytes>) -> raw::RawRequest {
    let (parts, body) = request.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut raw = raw::RawRequest::new(parts.method.as_str(), &target);
    for (name, value) in &parts.headers {
        raw.headers
            .push((name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()));
    }
    raw.body = body.to_vec();
    raw
}

/// Signs `request` for `vendor` with `key` when it can be signed (V3 for Aliyun); true if signed.
pub fn sign_for(vendor: Vendor, request: &mut raw::RawRequest, key: &sign::Key) -> bool {
    match vendor {
        Vendor::Tencent => sign::tencent(request, key),
        Vendor::Aliyun => sign::aliyun_v3(request, key),
        Vendor::Huawei => sign::huawei(request, key),
    }
}
