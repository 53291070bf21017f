//! One file per operation family. Each handler takes the authenticated [`Ctx`] and returns the
//! reply's JSON fields (without `RequestId`, which `lib.rs` adds) or an [`ApiError`].

pub mod account;
pub mod batch;
pub mod kv;
pub mod list;
pub mod namespace;
pub mod upload;
pub mod usage;

use kv_core::Engine;
use serde_json::{Map, Value};

use crate::error::ApiResult;
use crate::router::{Family, Operation, Product};
use crate::wire::Params;
use crate::Shared;

/// What every handler needs: who is calling, for which product, with which parameters.
pub struct Ctx<'a> {
    pub engine: &'a Engine,
    pub shared: &'a Shared,
    pub account: &'a str,
    pub op: Operation,
    pub product: Product,
    pub params: &'a Params,
    /// The request's Host header (for the upload endpoint when no proxy is in the way).
    pub host: &'a str,
}

pub type Reply = Map<String, Value>;

/// Runs a routed, authenticated operation (everything except the OSS upload, which has no
/// signature and answers XML).
pub async fn dispatch(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    match ctx.op.family() {
        Family::Put => kv::put(ctx).await,
        Family::Get => kv::get(ctx).await,
        Family::GetDetail => kv::detail(ctx).await,
        Family::GetStatus => kv::status(ctx).await,
        Family::Delete => kv::delete(ctx).await,
        Family::List => list::list(ctx).await,
        Family::BatchPut => batch::batch_put(ctx).await,
        Family::BatchDelete => batch::batch_delete(ctx).await,
        Family::PutHighCapacity => upload::put_high_capacity(ctx).await,
        Family::BatchPutHighCapacity => upload::batch_put_high_capacity(ctx).await,
        Family::BatchDeleteHighCapacity => upload::batch_delete_high_capacity(ctx).await,
        Family::CreateNamespace => namespace::create(ctx).await,
        Family::DescribeNamespace => namespace::describe(ctx).await,
        Family::DeleteNamespace => namespace::delete(ctx).await,
        Family::DescribeAccount => account::describe(ctx).await,
        Family::DescribeAccountStatus => account::status(ctx).await,
        Family::UsageData => usage::usage_data(ctx).await,
        Family::RealTimeQpsData => usage::qps_data(ctx).await,
        Family::AuthorizeFileUpload => upload::authorize(ctx).await,
        Family::OssPostObject => Err(crate::error::ApiError::action_not_found()),
    }
}

/// Builds a reply map from `(field, value)` pairs.
pub fn reply<const N: usize>(fields: [(&str, Value); N]) -> Reply {
    fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}
