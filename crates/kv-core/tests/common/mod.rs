//! Backend selection shared by the engine-level test binaries: redb by default, PostgreSQL when
//! `KV_TEST_POSTGRES=postgres://...` is set (each test in a schema of its own). The helpers live
//! in kv-testkit, shared with kvmux's multi-gateway tests.

#![allow(unused_imports)]

pub use kv_testkit::postgres::*;
