//! The engine's one error type. Vendor-neutral on purpose: each dialect maps these variants to its
//! vendor's code, HTTP status and envelope in its own `error.rs`.

/// What can go wrong in the engine. The variants are the distinctions a vendor error table needs,
/// nothing finer: a dialect never has to parse a message to pick a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The container or item does not exist (or has expired).
    #[error("not found: {0}")]
    NotFound(String),
    /// A create hit an existing container or item.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A caller's precondition (absent, version, predicate on the stored value) did not hold.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// A quota (bytes, items or containers, per container or account) would be exceeded.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(Quota),
    /// A key, value or batch is larger than the engine allows.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The request is malformed in a way only the engine can see (e.g. a corrupt cursor).
    #[error("invalid: {0}")]
    Invalid(String),
    /// Optimistic concurrency lost a race; `Engine` retries these itself and only surfaces one
    /// after many attempts under extreme contention.
    #[error("conflict: concurrent writers kept changing the same keys")]
    Conflict,
    /// The backend failed (I/O, corruption). Never caused by client input.
    #[error("internal: {0}")]
    Internal(String),
}

/// Which quota a write would have passed, so a dialect can choose between e.g. a per-namespace
/// capacity code and a per-account one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    ContainerBytes,
    ContainerItems,
    AccountBytes,
    AccountItems,
    AccountContainers,
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Quota::ContainerBytes => "container bytes",
            Quota::ContainerItems => "container items",
            Quota::AccountBytes => "account bytes",
            Quota::AccountItems => "account items",
            Quota::AccountContainers => "account containers",
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Internal(format!("redb: {e}"))
    }
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self { Error::Internal(format!("redb: {e}")) }
        }
    )*};
}
redb_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
