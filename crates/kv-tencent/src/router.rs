//! Request -> `Operation`, before anything else runs. Tencent puts the action in the
//! `X-TC-Action` header (TC3) or in the `Action` parameter (legacy v1 style); the path is always `/`.

use http::request::Parts;

/// The API version every EdgeKV action belongs to.
pub const API_VERSION: &str = "2022-09-01";

/// One variant per TEO EdgeKV action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    CreateEdgeKVNamespace,
    DeleteEdgeKVNamespace,
    ModifyEdgeKVNamespace,
    DescribeEdgeKVNamespaces,
    EdgeKVPut,
    EdgeKVGet,
    EdgeKVDelete,
    EdgeKVList,
}

impl Operation {
    /// Every action this dialect serves (docs/COVERAGE.md is checked against this list).
    pub const ALL: [Operation; 8] = [
        Operation::CreateEdgeKVNamespace,
        Operation::DeleteEdgeKVNamespace,
        Operation::ModifyEdgeKVNamespace,
        Operation::DescribeEdgeKVNamespaces,
        Operation::EdgeKVPut,
        Operation::EdgeKVGet,
        Operation::EdgeKVDelete,
        Operation::EdgeKVList,
    ];

    /// The action name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Operation::CreateEdgeKVNamespace => "CreateEdgeKVNamespace",
            Operation::DeleteEdgeKVNamespace => "DeleteEdgeKVNamespace",
            Operation::ModifyEdgeKVNamespace => "ModifyEdgeKVNamespace",
            Operation::DescribeEdgeKVNamespaces => "DescribeEdgeKVNamespaces",
            Operation::EdgeKVPut => "EdgeKVPut",
            Operation::EdgeKVGet => "EdgeKVGet",
            Operation::EdgeKVDelete => "EdgeKVDelete",
            Operation::EdgeKVList => "EdgeKVList",
        }
    }

    /// The wire names of [`Operation::ALL`], in that order: the closed set of operation labels
    /// the binary may use (see `Dialect::operations`).
    pub const NAMES: [&'static str; Operation::ALL.len()] =
        kv_dialect::const_names!(Operation::ALL.len(), |i| Operation::ALL[i].name());

    /// The operation named `action` (case-sensitive, as Tencent's API is).
    pub fn from_action(action: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == action)
    }
}

/// How the request is signed, which also says where its parameters are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `Authorization: TC3-HMAC-SHA256 ...`; action and version in `X-TC-*` headers; parameters
    /// in a JSON body (POST) or the query string (GET).
    Tc3,
    /// No Authorization header: `Action`, `Version`, `SecretId`, `Signature`... are parameters
    /// beside the business ones, in the query (GET) or a form body (POST).
    Legacy,
}

/// Which request style this is, from the headers alone. `X-TC-Action` without an Authorization
/// header is a TC3 request that lost its signature, not a legacy one.
pub fn style(parts: &Parts) -> Style {
    if parts.headers.contains_key(http::header::AUTHORIZATION)
        || parts.headers.contains_key("x-tc-action")
    {
        Style::Tc3
    } else {
        Style::Legacy
    }
}

/// The value of the first query parameter `name`, decoded.
pub fn query_param(parts: &Parts, name: &str) -> Option<String> {
    form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Whether a request belongs to the Tencent dialect. The signals, in order of strength:
/// `X-TC-Action` or a TC3 Authorization header (every TC3 client); the client trace header
/// `X-TC-TraceId` that the Python and Node SDKs send even in the legacy style; a legacy query
/// with `SecretId` + `Nonce` (Aliyun names these `AccessKeyId` + `SignatureNonce`); or a bare
/// `POST /` form with no other vendor's marks (the legacy form style of other clients).
pub fn claims(parts: &Parts) -> bool {
    let path = parts.uri.path();
    // The EdgeOne runtime binding route (`crate::runtime`) is Tencent's by its path alone.
    if crate::runtime::is_runtime_path(path) {
        return true;
    }
    if path.starts_with("/_kvmux") || (path != "/" && !path.is_empty()) {
        return false;
    }
    let headers = &parts.headers;
    if headers.contains_key("x-tc-action") {
        return true;
    }
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if authorization.trim_start().starts_with("TC3-HMAC-SHA256") {
        return true;
    }
    if !authorization.is_empty() || headers.keys().any(|k| k.as_str().starts_with("x-acs-")) {
        return false;
    }
    if headers.contains_key("x-tc-traceid") {
        return true;
    }
    let query = parts.uri.query().unwrap_or_default();
    let has = |name: &str| form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == name);
    if has("SecretId") && has("Nonce") {
        return true;
    }
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    parts.method == http::Method::POST && query.is_empty() && form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_a_label() {
        kv_testkit::assert_labels_are_the_operations(
            Operation::ALL.iter().map(|op| op.name()),
            &Operation::NAMES,
            |name| Operation::from_action(name).is_some(),
        );
    }

    #[test]
    fn action_names_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_action(op.name()), Some(op));
        }
        assert_eq!(Operation::from_action("edgekvput"), None);
        assert_eq!(Operation::from_action("EdgeKVScan"), None);
    }
}
