//! `POST /v1/<op>` -> the operation. Nothing else lives here.

/// The 14 operations of the current KVS SDKs (spec §1), plus `rename-kv` and
/// `transact-write-skey-kv`, which Huawei's SDKs carried from Java 3.1.62/3.1.77 (C++ 3.1.54/3.1.69)
/// until 3.1.84 (C++ 3.1.75) removed them: clients pinned to those releases still send them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    ListStore,
    CreateTable,
    DeleteTable,
    DescribeTable,
    ListTable,
    PutKv,
    GetKv,
    UpdateKv,
    DeleteKv,
    ScanKv,
    ScanSkeyKv,
    BatchWriteKv,
    BatchGetKv,
    CheckHealth,
    RenameKv,
    TransactWriteSkeyKv,
}

impl Operation {
    pub const ALL: [Operation; 16] = [
        Operation::ListStore,
        Operation::CreateTable,
        Operation::DeleteTable,
        Operation::DescribeTable,
        Operation::ListTable,
        Operation::PutKv,
        Operation::GetKv,
        Operation::UpdateKv,
        Operation::DeleteKv,
        Operation::ScanKv,
        Operation::ScanSkeyKv,
        Operation::BatchWriteKv,
        Operation::BatchGetKv,
        Operation::CheckHealth,
        Operation::RenameKv,
        Operation::TransactWriteSkeyKv,
    ];

    /// The wire names of [`Operation::ALL`], in that order: the closed set of operation labels
    /// the binary may use (see `Dialect::operations`).
    pub const NAMES: [&'static str; Operation::ALL.len()] =
        kv_dialect::const_names!(Operation::ALL.len(), |i| Operation::ALL[i].name());

    /// The path segment after `/v1/`, which is also the operation's name in logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Operation::ListStore => "list-store",
            Operation::CreateTable => "create-table",
            Operation::DeleteTable => "delete-table",
            Operation::DescribeTable => "describe-table",
            Operation::ListTable => "list-table",
            Operation::PutKv => "put-kv",
            Operation::GetKv => "get-kv",
            Operation::UpdateKv => "update-kv",
            Operation::DeleteKv => "delete-kv",
            Operation::ScanKv => "scan-kv",
            Operation::ScanSkeyKv => "scan-skey-kv",
            Operation::BatchWriteKv => "batch-write-kv",
            Operation::BatchGetKv => "batch-get-kv",
            Operation::CheckHealth => "check-health",
            Operation::RenameKv => "rename-kv",
            Operation::TransactWriteSkeyKv => "transact-write-skey-kv",
        }
    }

    /// Whether the operation addresses a store (the SDK then puts it in the Host prefix).
    pub fn needs_store(self) -> bool {
        !matches!(self, Operation::ListStore | Operation::CheckHealth)
    }
}

/// Whether a path belongs to KVS at all: every KVS call is under `/v1/`, which no other
/// dialect served on this port uses (Tencent and Aliyun post to `/`).
pub fn is_kvs_path(path: &str) -> bool {
    path.starts_with("/v1/")
}

/// The operation for a path, tolerating a trailing slash.
pub fn route(path: &str) -> Option<Operation> {
    let op = path.strip_prefix("/v1/")?;
    let op = op.strip_suffix('/').unwrap_or(op);
    Operation::ALL.into_iter().find(|o| o.name() == op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_a_label() {
        kv_testkit::assert_labels_are_the_operations(
            Operation::ALL.iter().map(|op| op.name()),
            &Operation::NAMES,
            |name| route(&format!("/v1/{name}")).is_some(),
        );
    }

    #[test]
    fn every_operation_routes_to_itself() {
        for op in Operation::ALL {
            assert_eq!(route(&format!("/v1/{}", op.name())), Some(op));
            assert_eq!(route(&format!("/v1/{}/", op.name())), Some(op));
        }
        assert_eq!(route("/v1/rename-kv"), Some(Operation::RenameKv));
        assert_eq!(
            route("/v1/transact-write-skey-kv"),
            Some(Operation::TransactWriteSkeyKv)
        );
        assert_eq!(route("/v1/transact-get-kv"), None);
        assert_eq!(route("/v2/put-kv"), None);
        assert_eq!(route("/"), None);
    }
}
