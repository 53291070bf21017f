//! The operations, one file per family. Each takes the decoded request document and returns the
//! reply document or a `KvsError`.

pub mod batch;
pub mod kv;
pub mod project;
pub mod rename;
pub mod scan;
pub mod store;
pub mod table;
pub mod transact;

use bson::Document;
use kv_core::Engine;

use crate::error::KvsError;
use crate::router::Operation;

/// What every operation needs: the engine, the caller's account and the addressed store.
pub struct Ctx<'a> {
    pub engine: &'a Engine,
    pub account: String,
    pub store: Option<String>,
}

impl Ctx<'_> {
    /// The store of a store-scoped operation (the router guarantees one was resolved).
    pub fn store(&self) -> Result<&str, KvsError> {
        self.store
            .as_deref()
            .ok_or_else(|| KvsError::bad_request("no store named"))
    }
}

pub async fn dispatch(
    ctx: &Ctx<'_>,
    op: Operation,
    request: &Document,
) -> Result<Document, KvsError> {
    match op {
        Operation::ListStore => store::list_store(ctx, request).await,
        Operation::CheckHealth => store::check_health(request),
        Operation::CreateTable => table::create_table(ctx, request).await,
        Operation::DeleteTable => table::delete_table(ctx, request).await,
        Operation::DescribeTable => table::describe_table(ctx, request).await,
        Operation::ListTable => table::list_table(ctx, request).await,
        Operation::PutKv => kv::put_kv(ctx, request).await,
        Operation::GetKv => kv::get_kv(ctx, request).await,
        Operation::UpdateKv => kv::update_kv(ctx, request).await,
        Operation::DeleteKv => kv::delete_kv(ctx, request).await,
        Operation::ScanKv => scan::scan_kv(ctx, request).await,
        Operation::ScanSkeyKv => scan::scan_skey_kv(ctx, request).await,
        Operation::BatchWriteKv => batch::batch_write_kv(ctx, request).await,
        Operation::BatchGetKv => batch::batch_get_kv(ctx, request).await,
        Operation::RenameKv => rename::rename_kv(ctx, request).await,
        Operation::TransactWriteSkeyKv => transact::transact_write_skey_kv(ctx, request).await,
    }
}

/// Store names: `[a-z0-9-]`, no leading or trailing `-`; 16..52 characters when strict (the
/// service's rule), else 1..52 so that local names like `mystore` work.
pub fn validate_store_name(name: &str, strict: bool) -> Result<(), KvsError> {
    let min = if strict { 16 } else { 1 };
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !(min..=52).contains(&name.len())
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(KvsError::bad_request(format!(
            "invalid store name `{name}`: {min}..52 characters of [a-z0-9-], not starting or ending with `-`"
        )));
    }
    Ok(())
}

/// Table and index names: 3..63 characters of `[a-zA-Z0-9_-]` (the SDK's range with the newer
/// API's case-sensitive alphabet).
pub fn validate_table_name(name: &str, what: &str) -> Result<(), KvsError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !(3..=63).contains(&name.len()) || !ok_chars {
        return Err(KvsError::bad_request(format!(
            "invalid {what} `{name}`: 3..63 characters of [a-zA-Z0-9_-]"
        )));
    }
    Ok(())
}

/// Document field names: 1..63 bytes, no `.` or `$`.
pub fn validate_field_name(name: &str) -> Result<(), KvsError> {
    if name.is_empty() || name.len() > 63 || name.contains('.') || name.contains('$') {
        return Err(KvsError::bad_request(format!(
            "invalid field name `{name}`: 1..63 bytes without `.` or `$`"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_store_name("mystore", false).is_ok());
        assert!(validate_store_name("mystore", true).is_err());
        assert!(validate_store_name("mystore-cn-north-4-acc", true).is_ok());
        for bad in ["", "-a", "a-", "My", "a_b", &"a".repeat(53)] {
            assert!(validate_store_name(bad, false).is_err(), "{bad}");
        }
        assert!(validate_table_name("t_1-X", "table name").is_ok());
        for bad in ["t1", "t 1", "t.1", &"t".repeat(64)] {
            assert!(validate_table_name(bad, "table name").is_err(), "{bad}");
        }
        assert!(validate_field_name("a$b").is_err());
        assert!(validate_field_name("a.b").is_err());
        assert!(validate_field_name("").is_err());
        assert!(validate_field_name("ok").is_ok());
    }
}
