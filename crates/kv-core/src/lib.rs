//! kv-core: the engine under every kvmux dialect.
//!
//! Model: account -> container -> item. Containers are created, listed, described and deleted;
//! items are read singly, in bulk and by ordered range, and written in atomic batches with
//! preconditions. Quotas (bytes, items, containers per container and per account group) are kept
//! in the same commit as the data they describe, so they are exact. Expired items vanish from
//! reads the instant the engine clock passes their expiry and are swept through an expiry index.
//!
//! This crate knows no vendor and no HTTP server: dialects map its vendor-neutral errors onto
//! their own tables. The `Dialect` trait the binary dispatches through lives in `kv-dialect`.

pub mod clock;
pub mod container;
pub mod engine;
pub mod error;
mod keys;
mod meta_cache;
pub mod replay;
pub mod store;
pub mod text;

pub use clock::Clock;
pub use container::{
    Container, ContainerKind, ContainerSelector, Limits, NewContainer, ScopeMatch, Usage,
    INTERNAL_ACCOUNT,
};
pub use engine::{
    decode_cursor, encode_cursor, retry, Engine, Item, ItemWrite, Precondition, ReadAhead,
    ScanOptions, ScanPage, Txn,
};
pub use error::{Error, Quota, Result};
