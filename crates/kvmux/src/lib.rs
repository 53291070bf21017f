//! kvmux as a library: the gateway that `kvmux serve` runs, for embedding it in-process
//! ([`testing::Server`] starts one on port 0 with a memory store for a Rust test suite) and for
//! kvmux's own end-to-end tests. The binary (`main.rs`) is the command line around it.

pub mod admin;
pub mod config;
pub mod dashboard;
pub mod faults;
pub mod gateway;
pub mod inspector;
pub mod logs;
pub mod metrics;
pub mod ready;
pub mod server;
pub mod snapshot;
pub mod testing;
pub mod tls;
