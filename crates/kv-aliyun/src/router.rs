//! Request -> [`Operation`], and nothing else. The action name travels in the `x-acs-action`
//! header under V3 signing and in the `Action` query parameter under V2; the API version
//! (`x-acs-version` / `Version`) tells ESA, DCDN and OpenPlatform apart, because the action names
//! alone would not always (both products have a `DescribeKvUsageData`-style namespace of names).
//! The unsigned OSS PostObject of the high-capacity flow is recognised by its multipart body.

use http::request::Parts;
use http::Method;

/// ESA KV API version.
pub const ESA_VERSION: &str = "2024-09-10";
/// DCDN KV API version.
pub const DCDN_VERSION: &str = "2018-01-15";
/// OpenPlatform API version (only `AuthorizeFileUpload`, used by the SDKs' `*Advance` methods).
pub const OPENPLATFORM_VERSION: &str = "2019-12-19";

/// The product an action belongs to. ESA and DCDN keep separate namespaces per account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Product {
    Esa,
    Dcdn,
    OpenPlatform,
    Oss,
}

impl Product {
    /// The product whose API version this is.
    pub fn from_version(version: &str) -> Option<Product> {
        match version {
            ESA_VERSION => Some(Product::Esa),
            DCDN_VERSION => Some(Product::Dcdn),
            OPENPLATFORM_VERSION => Some(Product::OpenPlatform),
            _ => None,
        }
    }

    /// The `HostId` the real service puts into error envelopes.
    pub fn host_id(self) -> &'static str {
        match self {
            Product::Esa => "esa.aliyuncs.com",
            Product::Dcdn => "dcdn.aliyuncs.com",
            Product::OpenPlatform => "openplatform.aliyuncs.com",
            Product::Oss => "oss.aliyuncs.com",
        }
    }
}

/// One variant per vendor action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    // ESA 2024-09-10
    PutKv,
    GetKv,
    GetKvDetail,
    DeleteKv,
    ListKvs,
    BatchPutKv,
    BatchDeleteKv,
    PutKvWithHighCapacity,
    BatchPutKvWithHighCapacity,
    BatchDeleteKvWithHighCapacity,
    CreateKvNamespace,
    GetKvNamespace,
    DeleteKvNamespace,
    GetKvAccount,
    DescribeKvAccountStatus,
    // DCDN 2018-01-15
    PutDcdnKv,
    GetDcdnKv,
    GetDcdnKvDetail,
    GetDcdnKvStatus,
    DeleteDcdnKv,
    ListDcdnKv,
    BatchPutDcdnKv,
    BatchDeleteDcdnKv,
    PutDcdnKvWithHighCapacity,
    BatchPutDcdnKvWithHighCapacity,
    BatchDeleteDcdnKvWithHighCapacity,
    PutDcdnKvNamespace,
    DescribeDcdnKvNamespace,
    DeleteDcdnKvNamespace,
    DescribeDcdnKvAccount,
    DescribeDcdnKvAccountStatus,
    DescribeKvUsageData,
    DescribeKvRealTimeQpsData,
    // OpenPlatform 2019-12-19, for the *Advance upload
    AuthorizeFileUpload,
    // OSS PostObject (multipart, unsigned), the upload step of *Advance
    OssPostObject,
}

/// What an operation does, shared by its ESA and DCDN twins; the ops modules dispatch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Put,
    Get,
    GetDetail,
    GetStatus,
    Delete,
    List,
    BatchPut,
    BatchDelete,
    PutHighCapacity,
    BatchPutHighCapacity,
    BatchDeleteHighCapacity,
    CreateNamespace,
    DescribeNamespace,
    DeleteNamespace,
    DescribeAccount,
    DescribeAccountStatus,
    UsageData,
    RealTimeQpsData,
    AuthorizeFileUpload,
    OssPostObject,
}

use Family as F;
use Operation as O;
use Product as P;

/// Every routable action: wire name, product, operation, family. The coverage test compares
/// docs/COVERAGE.md with this table.
pub const ACTIONS: &[(&str, Product, Operation, Family)] = &[
    ("PutKv", P::Esa, O::PutKv, F::Put),
    ("GetKv", P::Esa, O::GetKv, F::Get),
    ("GetKvDetail", P::Esa, O::GetKvDetail, F::GetDetail),
    ("DeleteKv", P::Esa, O::DeleteKv, F::Delete),
    ("ListKvs", P::Esa, O::ListKvs, F::List),
    ("BatchPutKv", P::Esa, O::BatchPutKv, F::BatchPut),
    ("BatchDeleteKv", P::Esa, O::BatchDeleteKv, F::BatchDelete),
    (
        "PutKvWithHighCapacity",
        P::Esa,
        O::PutKvWithHighCapacity,
        F::PutHighCapacity,
    ),
    (
        "BatchPutKvWithHighCapacity",
        P::Esa,
        O::BatchPutKvWithHighCapacity,
        F::BatchPutHighCapacity,
    ),
    (
        "BatchDeleteKvWithHighCapacity",
        P::Esa,
        O::BatchDeleteKvWithHighCapacity,
        F::BatchDeleteHighCapacity,
    ),
    (
        "CreateKvNamespace",
        P::Esa,
        O::CreateKvNamespace,
        F::CreateNamespace,
    ),
    (
        "GetKvNamespace",
        P::Esa,
        O::GetKvNamespace,
        F::DescribeNamespace,
    ),
    (
        "DeleteKvNamespace",
        P::Esa,
        O::DeleteKvNamespace,
        F::DeleteNamespace,
    ),
    ("GetKvAccount", P::Esa, O::GetKvAccount, F::DescribeAccount),
    (
        "DescribeKvAccountStatus",
        P::Esa,
        O::DescribeKvAccountStatus,
        F::DescribeAccountStatus,
    ),
    ("PutDcdnKv", P::Dcdn, O::PutDcdnKv, F::Put),
    ("GetDcdnKv", P::Dcdn, O::GetDcdnKv, F::Get),
    ("GetDcdnKvDetail", P::Dcdn, O::GetDcdnKvDetail, F::GetDetail),
    ("GetDcdnKvStatus", P::Dcdn, O::GetDcdnKvStatus, F::GetStatus),
    ("DeleteDcdnKv", P::Dcdn, O::DeleteDcdnKv, F::Delete),
    ("ListDcdnKv", P::Dcdn, O::ListDcdnKv, F::List),
    ("BatchPutDcdnKv", P::Dcdn, O::BatchPutDcdnKv, F::BatchPut),
    (
        "BatchDeleteDcdnKv",
        P::Dcdn,
        O::BatchDeleteDcdnKv,
        F::BatchDelete,
    ),
    (
        "PutDcdnKvWithHighCapacity",
        P::Dcdn,
        O::PutDcdnKvWithHighCapacity,
        F::PutHighCapacity,
    ),
    (
        "BatchPutDcdnKvWithHighCapacity",
        P::Dcdn,
        O::BatchPutDcdnKvWithHighCapacity,
        F::BatchPutHighCapacity,
    ),
    (
        "BatchDeleteDcdnKvWithHighCapacity",
        P::Dcdn,
        O::BatchDeleteDcdnKvWithHighCapacity,
        F::BatchDeleteHighCapacity,
    ),
    (
        "PutDcdnKvNamespace",
        P::Dcdn,
        O::PutDcdnKvNamespace,
        F::CreateNamespace,
    ),
    (
        "DescribeDcdnKvNamespace",
        P::Dcdn,
        O::DescribeDcdnKvNamespace,
        F::DescribeNamespace,
    ),
    (
        "DeleteDcdnKvNamespace",
        P::Dcdn,
        O::DeleteDcdnKvNamespace,
        F::DeleteNamespace,
    ),
    (
        "DescribeDcdnKvAccount",
        P::Dcdn,
        O::DescribeDcdnKvAccount,
        F::DescribeAccount,
    ),
    (
        "DescribeDcdnKvAccountStatus",
        P::Dcdn,
        O::DescribeDcdnKvAccountStatus,
        F::DescribeAccountStatus,
    ),
    (
        "DescribeKvUsageData",
        P::Dcdn,
        O::DescribeKvUsageData,
        F::UsageData,
    ),
    (
        "DescribeKvRealTimeQpsData",
        P::Dcdn,
        O::DescribeKvRealTimeQpsData,
        F::RealTimeQpsData,
    ),
    (
        "AuthorizeFileUpload",
        P::OpenPlatform,
        O::AuthorizeFileUpload,
        F::AuthorizeFileUpload,
    ),
    ("PostObject", P::Oss, O::OssPostObject, F::OssPostObject),
];

/// The wire names in [`ACTIONS`], in that order: the closed set of operation labels the binary
/// may use (see `Dialect::operations`).
pub const ACTION_NAMES: [&str; ACTIONS.len()] =
    kv_dialect::const_names!(ACTIONS.len(), |i| ACTIONS[i].0);

impl Operation {
    fn entry(self) -> &'static (&'static str, Product, Operation, Family) {
        // Every variant is in ACTIONS (checked by a test); the fallback is never taken.
        ACTIONS
            .iter()
            .find(|e| e.2 == self)
            .unwrap_or(&ACTIONS[ACTIONS.len() - 1])
    }

    /// The vendor's action name.
    pub fn name(self) -> &'static str {
        self.entry().0
    }

    pub fn product(self) -> Product {
        self.entry().1
    }

    pub fn family(self) -> Family {
        self.entry().3
    }
}

/// Why a request names no operation we serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// Neither `x-acs-action` nor `Action`.
    MissingAction,
    /// A version/action pair we do not know.
    UnknownAction { action: String, version: String },
}

/// Whether this looks like the OSS PostObject of the `*Advance` upload: a multipart POST.
pub fn is_oss_post(parts: &Parts) -> bool {
    parts.method == Method::POST
        && parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            })
}

/// The action and version a request names, from where its signature scheme signs them: the
/// `x-acs-*` headers under V3 (`Authorization: ACS3-…`), the `Action`/`Version` parameters under
/// V2 (a `Signature` parameter). V2 signs no header, so an `x-acs-action` header must never choose
/// the operation of a V2 request. Only an unsigned request (refused unless auth is off or log)
/// falls back from the headers to the query. The dialect checks the result again against the
/// verified [`crate::auth::Caller`] before anything runs; this early answer is for routing errors,
/// the operation hint and the upload detection.
pub fn action_and_version(parts: &Parts) -> (Option<String>, Option<String>) {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let query = || {
        let (mut action, mut version, mut signature) = (None, None, false);
        for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()) {
            match &*k {
                "Action" if action.is_none() => action = Some(v.into_owned()),
                "Version" if version.is_none() => version = Some(v.into_owned()),
                "Signature" => signature = true,
                _ => {}
            }
        }
        (action, version, signature)
    };
    let v3 = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.trim_start().starts_with("ACS3-"));
    if v3 {
        return (header("x-acs-action"), header("x-acs-version"));
    }
    let (q_action, q_version, v2) = query();
    if v2 {
        return (q_action, q_version);
    }
    (
        header("x-acs-action").or(q_action),
        header("x-acs-version").or(q_version),
    )
}

/// The operation an action name and API version select.
pub fn lookup(action: &str, version: &str) -> Result<Operation, RouteError> {
    let product = Product::from_version(version);
    ACTIONS
        .iter()
        .find(|(name, p, _, _)| *name == action && Some(*p) == product)
        .map(|e| e.2)
        .ok_or_else(|| RouteError::UnknownAction {
            action: action.to_string(),
            version: version.to_string(),
        })
}

/// Routes a request to its operation.
pub fn route(parts: &Parts) -> Result<Operation, RouteError> {
    if is_oss_post(parts) {
        return Ok(Operation::OssPostObject);
    }
    let (action, version) = action_and_version(parts);
    let action = action.ok_or(RouteError::MissingAction)?;
    lookup(&action, &version.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method("GET").uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).map(|r| r.into_parts().0).unwrap()
    }

    #[test]
    fn every_action_routes_to_itself_by_header_and_by_query() {
        for (name, product, op, _) in ACTIONS {
            let version = match product {
                Product::Esa => ESA_VERSION,
                Product::Dcdn => DCDN_VERSION,
                Product::OpenPlatform => OPENPLATFORM_VERSION,
                Product::Oss => continue,
            };
            let p = parts("/", &[("x-acs-action", name), ("x-acs-version", version)]);
            assert_eq!(route(&p), Ok(*op), "{name}");
            let p = parts(&format!("/?Action={name}&Version={version}"), &[]);
            assert_eq!(route(&p), Ok(*op), "{name}");
            assert_eq!(op.name(), *name);
        }
    }

    /// The metrics/log label set (`Dialect::operations`) holds the name of every operation the
    /// router can return (`RequestInfo::operation` is `Operation::name`), so no served request is
    /// counted as `unknown`, and nothing else.
    #[test]
    fn every_operation_is_a_label() {
        for (name, _, op, _) in ACTIONS {
            assert!(ACTION_NAMES.contains(&op.name()), "{op:?}");
            assert!(ACTION_NAMES.contains(name), "{name}");
        }
        assert_eq!(ACTION_NAMES.len(), ACTIONS.len());
        let post = http::Request::builder()
            .method("POST")
            .uri("/")
            .header("content-type", "multipart/form-data; boundary=x")
            .body(())
            .map(|r| r.into_parts().0)
            .unwrap();
        assert_eq!(route(&post), Ok(Operation::OssPostObject));
        assert!(ACTION_NAMES.contains(&Operation::OssPostObject.name()));
    }

    #[test]
    fn counts_match_the_spec() {
        let count = |p| ACTIONS.iter().filter(|e| e.1 == p).count();
        assert_eq!(count(Product::Esa), 15);
        assert_eq!(count(Product::Dcdn), 18);
    }

    #[test]
    fn each_scheme_routes_only_on_what_it_signs() {
        // V2 signs the query, never a header: the header cannot pick the operation.
        let p = parts(
            "/?Action=GetKv&Version=2024-09-10&Signature=x",
            &[("x-acs-action", "DeleteKv")],
        );
        assert_eq!(route(&p), Ok(Operation::GetKv));
        // V3 signs the headers: a query Action is not what runs.
        let p = parts(
            "/?Action=DeleteKv&Version=2024-09-10",
            &[
                ("authorization", "ACS3-HMAC-SHA256 Credential=a"),
                ("x-acs-action", "GetKv"),
                ("x-acs-version", ESA_VERSION),
            ],
        );
        assert_eq!(route(&p), Ok(Operation::GetKv));
        let p = parts(
            "/?Action=DeleteKv&Version=2024-09-10",
            &[("authorization", "ACS3-HMAC-SHA256 Credential=a")],
        );
        assert_eq!(route(&p), Err(RouteError::MissingAction));
    }

    #[test]
    fn an_action_of_the_wrong_product_is_unknown() {
        let p = parts(
            "/",
            &[("x-acs-action", "PutKv"), ("x-acs-version", DCDN_VERSION)],
        );
        assert!(matches!(route(&p), Err(RouteError::UnknownAction { .. })));
        let p = parts("/", &[]);
        assert_eq!(route(&p), Err(RouteError::MissingAction));
    }
}
