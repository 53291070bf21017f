//! Assembling a gateway from its config: the storage, the engine's limits and bindings, the seed
//! files, the enabled dialects, and the [`Gateway`] the server runs. Shared by `kvmux serve` and
//! the in-process server of [`crate::testing`], so both run the same gateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use kv_core::store::postgres::redacted_url;
use kv_core::{Clock, Engine};
use kv_dialect::{Dialect, DialectContext};

use crate::config::{Backend, Config, DialectName};
use crate::faults::Faults;
use crate::inspector::Inspector;
use crate::metrics::Metrics;
use crate::server::{BodyBudget, Gateway};
use crate::{admin, config, snapshot};

/// Binds `listen` and answers the listener with the address it got (the port, for `:0`).
pub async fn bind(listen: &str) -> Result<(tokio::net::TcpListener, SocketAddr), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    Ok((listener, local))
}

/// Opens the storage `config` names and builds the gateway that serves it on `local` (the bound
/// listener's address); returns it with a description of where the data is.
pub async fn assemble(config: Config, local: SocketAddr) -> Result<(Arc<Gateway>, String), String> {
    let (engine, data) = open_engine(&config).await?;
    engine.set_account_byte_limit(
        config.limits.account_max_bytes,
        config
            .limits
            .account_max_bytes_by_account
            .iter()
            .map(|(account, bytes)| (account.clone(), *bytes))
            .collect(),
    );
    for binding in &config.bindings {
        engine.bind_containers(binding.members());
    }
    if let Some(dir) = &config.seed_dir {
        for (path, counts) in snapshot::load_seed_dir(&engine, dir).await? {
            tracing::info!(
                seed = %path.display(),
                containers = counts.containers,
                items = counts.items,
                skipped = counts.skipped,
                "loaded seed file"
            );
        }
    }
    let (admin_mode, admin_why) = admin::mode(&config);
    if admin_mode == admin::Mode::Locked {
        tracing::warn!("admin API {admin_why}");
    } else {
        tracing::info!("admin API {admin_why}");
    }
    if config.auth.allow_dev_credentials
        && config
            .credentials
            .iter()
            .any(|c| c.secret == config::DEV_SECRET)
    {
        tracing::warn!(
            listen = %local,
            "the public dev credentials are accepted ([auth] allow_dev_credentials = true)"
        );
    }
    for warning in config.credential_warnings() {
        tracing::warn!("{warning}");
    }
    let dialects = build_dialects(&config, &engine);
    let gateway = Arc::new(Gateway {
        dialects,
        engine: engine.clone(),
        metrics: Metrics::new(),
        started: Instant::now(),
        inspector: Inspector::new(config.inspector_capacity),
        faults: Faults::default(),
        body_budget: BodyBudget::new(config.limits.max_inflight_body_bytes),
        config,
    });
    Ok((gateway, data))
}

/// Builds the enabled dialects in dispatch order.
pub fn build_dialects(config: &Config, engine: &Arc<Engine>) -> Vec<Arc<dyn Dialect>> {
    let context = |name: DialectName| DialectContext {
        engine: engine.clone(),
        credentials: config.credentials_for(name),
        auth_mode: config.auth.mode,
        options: dialect_options(config, name),
        vendor_rate_limits: config.limits.vendor_rate_limits,
    };
    let mut dialects: Vec<Arc<dyn Dialect>> = Vec::new();
    for name in DialectName::ALL {
        if !config.enabled(name) {
            continue;
        }
        let ctx = context(name);
        match name {
            DialectName::Tencent => dialects.push(Arc::new(kv_tencent::TencentDialect::new(ctx))),
            DialectName::Aliyun => dialects.push(Arc::new(kv_aliyun::AliyunDialect::new(ctx))),
            DialectName::Huawei => dialects.push(Arc::new(kv_huawei::HuaweiDialect::new(ctx))),
        }
    }
    dialects
}

/// A dialect's `[tencent]`/`[aliyun]`/`[huawei]` section, with the defaults that depend on where
/// the gateway listens: Tencent's TC3 signature binding (`bind_unsigned_action`, see kv-tencent's
/// `Options`) is on beyond loopback, where a signed request can be captured and re-targeted, and
/// off on loopback, where its one false refusal (two actions with identical bodies in one second
/// from two connections) would only get in a local test's way.
fn dialect_options(config: &Config, name: DialectName) -> serde_json::Value {
    if name == DialectName::Tencent && config.tencent.bind_unsigned_action.is_none() {
        let mut tencent = config.tencent.clone();
        tencent.bind_unsigned_action = Some(!config::is_loopback(&config.listen));
        return serde_json::to_value(tencent).unwrap_or(serde_json::Value::Null);
    }
    config.options_for(name)
}

/// Connections each gateway keeps to PostgreSQL (`storage = "postgres://..."`).
const POSTGRES_POOL_SIZE: usize = 16;

/// Opens the configured storage; returns the engine and a description of where the data is.
pub async fn open_engine(config: &Config) -> Result<(Arc<Engine>, String), String> {
    let clock = Clock::new();
    match config.backend() {
        // Nothing on disk: no data dir is created, the clock starts at the wall clock.
        Backend::Memory => Ok((
            Arc::new(Engine::open_memory(clock)),
            config.storage_description(),
        )),
        // The scale-out backend: any number of stateless gateways on one database, which keeps
        // their clocks in step and elects the one that sweeps expired items.
        Backend::Postgres(url) => {
            let store = kv_core::store::postgres::PostgresStore::open_shared(
                url,
                POSTGRES_POOL_SIZE,
                &clock,
            )
            .await
            .map_err(|e| format!("opening storage {}: {e}", redacted_url(url)))?;
            Ok((Arc::new(Engine::new(store, clock)), redacted_url(url)))
        }
        Backend::Redb => {
            let db_path = config.data_dir.join("kvmux.redb");
            let options = kv_core::store::redb::RedbOptions {
                durable: config.durable,
                cache_bytes: config.cache_mb.saturating_mul(1 << 20),
            };
            let engine = Engine::open_redb_with(&db_path, options, clock)
                .map_err(|e| open_error(&config.data_dir, &db_path, &e.to_string()))?;
            Ok((Arc::new(engine), db_path.display().to_string()))
        }
    }
}

/// Why the redb file could not be opened. redb locks the file while a process has it open, and
/// its "Database already open. Cannot acquire lock." says nothing about what to do: the usual
/// cause is a second `serve` (or an `export`) on a running gateway's data dir.
fn open_error(data_dir: &std::path::Path, db_path: &std::path::Path, error: &str) -> String {
    if error.contains("already open") {
        format!(
            "another kvmux (or process) holds {}; stop it, or use its online snapshot: GET \
             /_kvmux/snapshot",
            data_dir.display()
        )
    } else {
        format!("opening {}: {error}", db_path.display())
    }
}
