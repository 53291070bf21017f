//! An in-process gateway for Rust test suites: `kvmux::testing::Server::start().await` runs the
//! same gateway as `kvmux serve` (every dialect, the admin API, the dev credentials) on a free
//! 127.0.0.1 port with a memory store, inside the calling Tokio runtime. No binary to build or
//! find, no port to pick, nothing on disk; it stops when dropped.
//!
//! ```no_run
//! # async fn example() -> Result<(), String> {
//! let server = kvmux::testing::Server::start().await?;
//! // Point a vendor SDK (or any HTTP client) at server.url(): http://127.0.0.1:PORT
//! server.checkpoint("clean").await?;
//! // ... a test ...
//! server.restore("clean").await?;
//! server.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! Needs a multi-threaded runtime (`#[tokio::test(flavor = "multi_thread")]`) when the test
//! itself blocks, e.g. on a synchronous HTTP client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kv_core::Engine;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Config, MEMORY_STORAGE};
use crate::server::Gateway;
use crate::{admin, gateway, server};

/// A running in-process gateway.
pub struct Server {
    local: SocketAddr,
    gateway: Arc<Gateway>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<()>>,
    sweeper: JoinHandle<()>,
}

impl Server {
    /// The default configuration (all three dialects, the dev credentials, the admin API) on a
    /// memory store and a free loopback port.
    pub async fn start() -> Result<Server, String> {
        let config = Config {
            storage: Some(MEMORY_STORAGE.to_string()),
            ..Config::default()
        };
        Self::start_with(config).await
    }

    /// `config` as given, except that it listens on a free loopback port (its `listen` is
    /// replaced). Use it for other credentials, auth modes, limits or a redb `data_dir`.
    pub async fn start_with(mut config: Config) -> Result<Server, String> {
        config.listen = "127.0.0.1:0".into();
        config
            .validate()
            .map_err(|e| format!("invalid config: {e}"))?;
        let (listener, local) = gateway::bind(&config.listen).await?;
        let (gateway, _) = gateway::assemble(config, local).await?;
        let sweeper = gateway.engine.spawn_sweeper(Duration::from_secs(1));
        let (shutdown, stop) = oneshot::channel::<()>();
        let serving = tokio::spawn(server::run(
            gateway.clone(),
            listener,
            None,
            async move {
                let _ = stop.await;
            },
            Duration::from_secs(2),
            admin::Port::Shared,
        ));
        Ok(Server {
            local,
            gateway,
            shutdown: Some(shutdown),
            serving: Some(serving),
            sweeper,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.local)
    }

    /// `127.0.0.1:PORT`, the endpoint the vendor SDKs take.
    pub fn host(&self) -> String {
        self.local.to_string()
    }

    /// The engine under the gateway, for assertions on stored state.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.gateway.engine
    }

    /// Drops every item and container (the admin API's `POST /_kvmux/reset`).
    pub async fn reset(&self) -> Result<(), String> {
        self.gateway
            .engine
            .reset()
            .await
            .map_err(|e| format!("reset: {e}"))
    }

    /// Saves the whole state under `name` (`PUT /_kvmux/checkpoints/NAME`).
    pub async fn checkpoint(&self, name: &str) -> Result<(), String> {
        self.gateway
            .engine
            .checkpoint(name)
            .await
            .map(|_| ())
            .map_err(|e| format!("checkpoint {name}: {e}"))
    }

    /// Puts the checkpoint `name` back (`POST /_kvmux/checkpoints/NAME/restore`).
    pub async fn restore(&self, name: &str) -> Result<(), String> {
        self.gateway
            .engine
            .restore_checkpoint(name)
            .await
            .map(|_| ())
            .map_err(|e| format!("restore {name}: {e}"))
    }

    /// Moves the engine clock forward (TTLs expire as if `seconds` had passed); returns the new
    /// engine time.
    pub fn advance_clock(&self, seconds: u64) -> u64 {
        self.gateway.engine.clock().advance(seconds)
    }

    /// Stops accepting, lets requests in flight finish (bounded), and closes the store.
    pub async fn stop(mut self) {
        self.shut_down();
        if let Some(serving) = self.serving.take() {
            let _ = serving.await;
        }
        self.sweeper.abort();
        let _ = self.gateway.engine.close().await;
    }

    fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
        self.sweeper.abort();
        if let Some(serving) = self.serving.take() {
            serving.abort();
        }
    }
}
