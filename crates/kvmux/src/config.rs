//! The config file and how it is found. The keys shown in DESIGN.md are a contract users rely on;
//! unknown keys are refused (with line and column) so that a typo never silently does nothing.

use std::path::{Path, PathBuf};

use kv_dialect::{AuthMode, Credential, DialectOptions};
use serde::{Deserialize, Serialize};

/// The default config file, read when no `--config`/`KVMUX_CONFIG` is given and it exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/kvmux.toml";
pub const DEV_SECRET: &str = "kvmuxdevsecret";
/// `storage = "memory"`: the ephemeral backend.
pub const MEMORY_STORAGE: &str = "memory";

/// Which `Store` backend the config selects (from `storage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend<'a> {
    /// The embedded redb file `<data_dir>/kvmux.redb` (no `storage`).
    Redb,
    /// Everything in the process's memory; nothing is written to disk, everything is gone when
    /// the gateway stops.
    Memory,
    /// The scale-out backend at this URL.
    Postgres(&'a str),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    /// `postgres://...` selects the scale-out backend, `"memory"` the ephemeral one (nothing on
    /// disk, for test suites); absent means the embedded redb file under `data_dir`.
    /// [`Config::backend`] says which.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// fsync before every acknowledged write (group-committed). Off only for benchmarks.
    pub durable: bool,
    /// The embedded store's page cache in MiB: bounds the gateway's memory however much is stored.
    pub cache_mb: usize,
    /// A directory of JSON Lines snapshots (`*.jsonl`, the `kvmux export` format) loaded at
    /// start-up, in file-name order; items already present are overwritten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_dir: Option<PathBuf>,
    /// How many recent requests the request inspector keeps (0 turns it off).
    pub inspector_capacity: usize,
    pub dialects: Dialects,
    pub auth: Auth,
    pub limits: LimitsConfig,
    /// Each dialect's own options, typed by the dialect (unknown keys are refused with their
    /// line and column), handed to it as JSON.
    pub tencent: kv_tencent::Options,
    pub aliyun: kv_aliyun::Options,
    pub huawei: kv_huawei::Options,
    pub credentials: Vec<CredentialConfig>,
    /// Cross-dialect bindings: a Tencent namespace and an Aliyun namespace that are one store.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<BindingConfig>,
    /// `[tls]`: when present the port serves HTTPS only (the admin API included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// `[admin]`: who may reach `/_kvmux/*` and `/metrics`, and on which port.
    pub admin: AdminConfig,
}

/// `[admin]`: the admin API, the dashboard and `/metrics` read every tenant's data and can wipe
/// it, so they are locked unless the operator says otherwise: open without a token only on a
/// loopback listener, behind `Authorization: Bearer <token>` everywhere else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `false` answers every admin path with 404, as if it did not exist.
    pub enabled: bool,
    /// The Bearer token admin clients must send (`KVMUX_ADMIN_TOKEN` overrides it). When set it
    /// is required on every listener, loopback included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A separate address for the admin API, dashboard and metrics; the data port then answers
    /// admin paths with 404 and this port serves nothing else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// More host names (or `host:port`) the admin API answers to, besides loopback names, IP
    /// addresses and the listen hosts: the name operators browse to, e.g. behind a proxy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Refuse to start without a token (from `token` or `KVMUX_ADMIN_TOKEN`): for deployment
    /// configs, so a forgotten secret stops the rollout instead of leaving admin locked or open.
    pub require_token: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            token: None,
            listen: None,
            allowed_hosts: Vec::new(),
            require_token: false,
        }
    }
}

/// The shortest admin token accepted: long enough that guessing it over the network is hopeless.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// `[tls]`: either `cert` + `key` (PEM files; the cert file may hold the whole chain, leaf first),
/// or `self_signed = true`, which generates a certificate for the listen host, `localhost` and
/// `127.0.0.1` at every start and writes it (not the key) to `write_cert` for clients to trust.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    pub self_signed: bool,
    /// Self-signed mode only: where the certificate goes (default `<data_dir>/tls/cert.pem`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_cert: Option<PathBuf>,
    /// Self-signed mode only: more DNS names or IP addresses for the certificate, e.g. the name
    /// clients use, or `*.kvs.localhost` for Huawei SDKs, which put the store name in front of
    /// the endpoint's host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

impl TlsConfig {
    /// Whether the section names one usable mode; the error names the offending key, so that the
    /// caller can point at it in the file.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        match (self.self_signed, &self.cert, &self.key) {
            (true, None, None) => Ok(()),
            (true, _, _) => Err((
                if self.cert.is_some() { "cert" } else { "key" },
                "tls: self_signed = true generates its own certificate; remove cert and key, or \
                 set self_signed = false to use them"
                    .into(),
            )),
            (false, _, _) if !self.names.is_empty() => Err((
                "names",
                "tls: names is only for self_signed = true (a cert file already has its names)"
                    .into(),
            )),
            (false, Some(cert), Some(key)) => {
                if self.write_cert.is_some() {
                    return Err((
                        "write_cert",
                        "tls: write_cert is only for self_signed = true (cert is already a file)"
                            .into(),
                    ));
                }
                crate::tls::check_files(cert, key).map_err(|message| {
                    let key_at_fault = if message.starts_with("tls.key") {
                        "key"
                    } else {
                        "cert"
                    };
                    (key_at_fault, message)
                })
            }
            (false, Some(_), None) => Err(("cert", "tls: cert is set but key is missing".into())),
            (false, None, Some(_)) => Err(("key", "tls: key is set but cert is missing".into())),
            (false, None, None) => Err((
                "",
                "tls: set cert and key (PEM files), or self_signed = true".into(),
            )),
        }
    }
}

/// `[[bindings]]`: data written through one vendor's API is read through the other's, e.g. to
/// test a migration from EdgeOne KV to ESA KV. Whichever side creates its namespace first, the
/// other side resolves to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingConfig {
    /// The tenant both namespaces belong to.
    pub account: String,
    /// The Tencent side: ZoneId and namespace name.
    pub tencent_zone: String,
    pub tencent_namespace: String,
    /// The Aliyun side: namespace name, in ESA (default) or DCDN.
    pub aliyun_namespace: String,
    #[serde(default = "default_aliyun_product")]
    pub aliyun_product: String,
}

fn default_aliyun_product() -> String {
    "esa".into()
}

impl BindingConfig {
    /// The engine addresses of the bound namespaces, Tencent's first. The scopes are the ones the
    /// dialects use (`tencent/<zone>`, `aliyun-esa`, `aliyun-dcdn`); the bindings e2e test holds
    /// them to that.
    pub fn members(&self) -> Vec<(String, String, String)> {
        use kv_aliyun::ops::namespace as aliyun_namespace;
        use kv_aliyun::router::Product;
        // Each dialect owns its addresses: Tencent's scope per zone, Aliyun's per product and
        // its engine name (DCDN folds case, so a binding written `Orders` finds `orders`).
        let product = if self.aliyun_product == "dcdn" {
            Product::Dcdn
        } else {
            Product::Esa
        };
        vec![
            (
                self.account.clone(),
                kv_tencent::ops::Ctx::scope(&self.tencent_zone),
                self.tencent_namespace.clone(),
            ),
            (
                self.account.clone(),
                aliyun_namespace::scope(product).to_string(),
                aliyun_namespace::engine_name(product, &self.aliyun_namespace),
            ),
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dialects {
    pub tencent: bool,
    pub aliyun: bool,
    pub huawei: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    pub mode: AuthMode,
    /// The built-in dev credentials (secret `kvmuxdevsecret`) are public: they are refused on a
    /// listener other than loopback unless this says that is intended.
    pub allow_dev_credentials: bool,
    /// A request signed with a key id that no credential has, and with `auto_secret`, is served
    /// in an account named after that key id: each test of a suite signs with a fresh key id and
    /// sees nothing of another's data. Anyone who knows the secret gets an account, so like the
    /// dev credentials it is refused beyond loopback unless `allow_dev_credentials`.
    pub auto_accounts: bool,
    /// The secret of auto accounts; the dev secret `kvmuxdevsecret` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_secret: Option<String>,
    /// `mode = "off"` or `"log"` serves requests whose signature did not verify: refused on a
    /// listener other than loopback unless this says that is intended.
    pub allow_unverified: bool,
}

/// Gateway-level limits. The vendors' own limits live in the dialects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Emulate the vendors' documented rate limits (off so bulk test setups are not throttled).
    pub vendor_rate_limits: bool,
    /// Connections served at once; more wait in the accept queue.
    pub max_connections: usize,
    /// A client must finish sending its request headers within this many seconds.
    pub header_timeout_secs: u64,
    /// ... and its body within this many seconds.
    pub body_timeout_secs: u64,
    /// Largest request head (request line + headers) in bytes.
    pub max_header_bytes: usize,
    /// Request bodies buffered at once, all connections together, in bytes. Bodies are read
    /// before their signature can be checked, so without this a few unauthenticated clients
    /// could make the gateway hold their uploads; past it a request is refused as throttled.
    pub max_inflight_body_bytes: u64,
    /// Bytes (keys plus values) one account may store in total, across every dialect, zone,
    /// namespace, store and table. The vendors' own quotas are per namespace or per store, and
    /// Tencent accepts any number of ZoneIds, so without this one tenant can fill the disk.
    /// Absent: unlimited. Past it, writes get the vendor's own capacity error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_max_bytes: Option<i64>,
    /// Per-account caps that replace `account_max_bytes` for the accounts they name, e.g.
    /// `[limits.account_max_bytes_by_account]` `dev = 1073741824`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub account_max_bytes_by_account: std::collections::BTreeMap<String, i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub dialect: DialectName,
    pub id: String,
    /// The secret itself, or empty when `secret_env` names where it comes from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    /// An environment variable holding the secret, read at start-up: deployments keep secrets in
    /// their secret store (a Kubernetes Secret, an env file) instead of in the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    pub account: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DialectName {
    Tencent,
    Aliyun,
    Huawei,
}

impl DialectName {
    pub const ALL: [DialectName; 3] = [
        DialectName::Tencent,
        DialectName::Aliyun,
        DialectName::Huawei,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DialectName::Tencent => "tencent",
            DialectName::Aliyun => "aliyun",
            DialectName::Huawei => "huawei",
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:9090".into(),
            data_dir: PathBuf::from("data"),
            storage: None,
            durable: true,
            cache_mb: 32,
            seed_dir: None,
            inspector_capacity: 500,
            dialects: Dialects::default(),
            auth: Auth::default(),
            limits: LimitsConfig::default(),
            tencent: kv_tencent::Options::default(),
            aliyun: kv_aliyun::Options::default(),
            huawei: kv_huawei::Options::default(),
            credentials: dev_credentials(),
            bindings: Vec::new(),
            tls: None,
            admin: AdminConfig::default(),
        }
    }
}

impl Default for Dialects {
    fn default() -> Self {
        Dialects {
            tencent: true,
            aliyun: true,
            huawei: true,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            vendor_rate_limits: false,
            max_connections: 10_000,
            header_timeout_secs: 30,
            body_timeout_secs: 300,
            max_header_bytes: 64 * 1024,
            max_inflight_body_bytes: 256 * 1024 * 1024,
            account_max_bytes: None,
            account_max_bytes_by_account: Default::default(),
        }
    }
}

/// One dev credential per dialect, all for account `dev`: what every SDK recipe in the README uses.
pub fn dev_credentials() -> Vec<CredentialConfig> {
    [
        (DialectName::Tencent, "AKIDkvmuxdev"),
        (DialectName::Aliyun, "LTAIkvmuxdev"),
        (DialectName::Huawei, "HWkvmuxdev"),
    ]
    .into_iter()
    .map(|(dialect, id)| CredentialConfig {
        dialect,
        id: id.into(),
        secret: DEV_SECRET.into(),
        secret_env: None,
        account: "dev".into(),
    })
    .collect()
}

/// The environment variable that overrides `[admin] token`.
pub const ADMIN_TOKEN_ENV: &str = "KVMUX_ADMIN_TOKEN";

fn check_admin_token(token: &str, origin: &str) -> Result<(), String> {
    if token.chars().count() < MIN_ADMIN_TOKEN_LEN || token.trim() != token {
        return Err(format!(
            "{origin} must be at least {MIN_ADMIN_TOKEN_LEN} characters without surrounding \
             spaces (e.g. `openssl rand -hex 32`)"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{origin} must be printable ASCII: it is sent in an HTTP header"
        ));
    }
    Ok(())
}

/// A config file that could not be used, with where in it the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Parses config text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_and_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        let dialect_checks = [
            ("tencent", config.tencent.check()),
            ("aliyun", config.aliyun.check()),
        ];
        for (section, checked) in dialect_checks {
            if let Err((key, message)) = checked {
                let (line, column) = position_of(text, &[section, key]);
                return Err(ConfigError::Parse {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message,
                });
            }
        }
        if let Some(tls) = &config.tls {
            tls.check().map_err(|(key, message)| {
                let (line, column) = position_of(text, &["tls", key]);
                ConfigError::Parse {
                    path: path.to_path_buf(),
                    line,
                    column,
                    message,
                }
            })?;
        }
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "listen = {:?} is not an address like 127.0.0.1:9090",
                self.listen
            ));
        }
        self.check_storage()?;
        let mut seen = std::collections::HashSet::new();
        for c in &self.credentials {
            if c.id.is_empty() || c.account.is_empty() {
                return Err(format!(
                    "credential {:?}: id and account must be non-empty",
                    c.id
                ));
            }
            match (&c.secret_env, c.secret.is_empty()) {
                (None, true) => {
                    return Err(format!(
                        "credential {:?}: set secret, or secret_env naming the environment \
                         variable that holds it",
                        c.id
                    ))
                }
                (Some(_), false) => {
                    return Err(format!(
                        "credential {:?}: set secret or secret_env, not both",
                        c.id
                    ))
                }
                (Some(name), true) if name.is_empty() => {
                    return Err(format!("credential {:?}: secret_env is empty", c.id))
                }
                _ => {}
            }
            if !seen.insert((c.dialect, c.id.as_str())) {
                return Err(format!(
                    "credential id {:?} is listed twice for {}",
                    c.id,
                    c.dialect.as_str()
                ));
            }
        }
        for b in &self.bindings {
            if [
                &b.account,
                &b.tencent_zone,
                &b.tencent_namespace,
                &b.aliyun_namespace,
            ]
            .iter()
            .any(|s| s.is_empty())
            {
                return Err("bindings: account, tencent_zone, tencent_namespace and aliyun_namespace must be non-empty".into());
            }
            if b.aliyun_product != "esa" && b.aliyun_product != "dcdn" {
                return Err(format!(
                    "bindings: aliyun_product must be \"esa\" or \"dcdn\", got {:?}",
                    b.aliyun_product
                ));
            }
        }
        if self.limits.max_connections == 0 {
            return Err("limits.max_connections must be at least 1".into());
        }
        if let Some(bytes) = self.limits.account_max_bytes.filter(|b| *b < 0) {
            return Err(format!(
                "limits.account_max_bytes = {bytes} must be 0 or more (leave it out for no cap)"
            ));
        }
        if let Some((account, bytes)) = self
            .limits
            .account_max_bytes_by_account
            .iter()
            .find(|(_, b)| **b < 0)
        {
            return Err(format!(
                "limits.account_max_bytes_by_account.{account} = {bytes} must be 0 or more"
            ));
        }
        if let Some(listen) = &self.admin.listen {
            match listen.parse::<std::net::SocketAddr>() {
                Err(_) => {
                    return Err(format!(
                        "admin.listen = {listen:?} is not an address like 127.0.0.1:9091"
                    ))
                }
                Ok(addr) if Some(addr) == self.listen.parse().ok() => {
                    return Err(format!(
                        "admin.listen = {listen:?} is the data listen address; give the admin \
                         API its own port, or remove admin.listen to share the data port"
                    ))
                }
                Ok(_) => {}
            }
        }
        if let Some(token) = &self.admin.token {
            check_admin_token(token, "admin.token")?;
        }
        self.check_exposure()
    }

    /// Refuses the public dev credentials on a listener other than loopback, unless
    /// `auth.allow_dev_credentials` says so: anyone who can reach such a port and has read the
    /// README could otherwise read and write the `dev` tenant. Run again after `--listen` or
    /// `KVMUX_LISTEN` changed the address.
    pub fn check_exposure(&self) -> Result<(), String> {
        let loopback = is_loopback(&self.listen);
        let dev = self
            .credentials
            .iter()
            .any(|c| c.secret_env.is_none() && c.secret == DEV_SECRET);
        if self.auth.auto_accounts && !loopback && !self.auth.allow_dev_credentials {
            return Err(format!(
                "listen = {:?} is reachable from other machines, and [auth] auto_accounts = true \
                 gives an account to anyone who signs with the auto secret; listen on 127.0.0.1, \
                 or set [auth] allow_dev_credentials = true if that is really intended",
                self.listen
            ));
        }
        if self.auth.mode != AuthMode::Enforce && !loopback && !self.auth.allow_unverified {
            return Err(format!(
                "listen = {:?} is reachable from other machines, and [auth] mode = {:?} serves \
                 requests whose signature did not verify; use mode = \"enforce\", listen on \
                 127.0.0.1, or set [auth] allow_unverified = true if that is really intended",
                self.listen,
                match self.auth.mode {
                    AuthMode::Off => "off",
                    _ => "log",
                }
            ));
        }
        if dev && !loopback && !self.auth.allow_dev_credentials {
            return Err(format!(
                "listen = {:?} is reachable from other machines, and the credentials include the \
                 public dev secret {DEV_SECRET:?}; configure your own [[credentials]] (secret or \
                 secret_env), listen on 127.0.0.1, or set [auth] allow_dev_credentials = true if \
                 that is really intended",
                self.listen
            ));
        }
        Ok(())
    }

    /// Which backend `storage` selects. Call after [`Config::check_storage`] (an unknown value
    /// is reported as Redb here; `check_storage` refuses it).
    pub fn backend(&self) -> Backend<'_> {
        match self.storage.as_deref() {
            None => Backend::Redb,
            Some(MEMORY_STORAGE) => Backend::Memory,
            Some(url) if is_postgres_url(url) => Backend::Postgres(url),
            Some(_) => Backend::Redb,
        }
    }

    /// Whether `storage` names a backend, and whether the rest of the config can keep the
    /// memory backend's promise that nothing is written to disk: a self-signed certificate
    /// would go to `<data_dir>/tls/cert.pem` unless `[tls] write_cert` names where clients
    /// should find it. Runs on load and again after the command line's overrides.
    pub fn check_storage(&self) -> Result<(), String> {
        match self.storage.as_deref() {
            None | Some(MEMORY_STORAGE) => {}
            Some(url) if is_postgres_url(url) => {}
            Some(other) => {
                return Err(format!(
                    "storage = {other:?}: use \"{MEMORY_STORAGE}\", a postgres:// URL, or \
                     leave it out for the embedded file under data_dir"
                ))
            }
        }
        if self.backend() == Backend::Memory {
            if let Some(tls) = self.tls.as_ref().filter(|t| t.self_signed) {
                if tls.write_cert.is_none() {
                    return Err(format!(
                        "storage = \"{MEMORY_STORAGE}\" writes nothing to disk, but [tls] \
                         self_signed would write its certificate under data_dir; set [tls] \
                         write_cert to the file clients should trust"
                    ));
                }
            }
        }
        Ok(())
    }

    /// One line saying where the data lives, for `check-config` and the start-up log (a
    /// PostgreSQL password is hidden).
    pub fn storage_description(&self) -> String {
        match self.backend() {
            Backend::Redb => format!("redb file {}", self.data_dir.join("kvmux.redb").display()),
            Backend::Memory => "memory (nothing written to disk; gone when kvmux stops)".into(),
            Backend::Postgres(url) => format!("postgres {}", masked_storage_url(url)),
        }
    }

    /// Applies the environment at start-up: `KVMUX_ADMIN_TOKEN` replaces `[admin] token` (an
    /// empty value counts as unset), and each `secret_env` credential gets its secret. Returns
    /// where the admin token came from, for the start-up log.
    pub fn apply_env(&mut self) -> Result<(), String> {
        if let Some(token) = std::env::var_os(ADMIN_TOKEN_ENV).filter(|t| !t.is_empty()) {
            let token = token
                .into_string()
                .map_err(|_| format!("{ADMIN_TOKEN_ENV} is not valid UTF-8"))?;
            check_admin_token(&token, ADMIN_TOKEN_ENV)?;
            self.admin.token = Some(token);
        }
        if self.admin.enabled && self.admin.require_token && self.admin.token.is_none() {
            return Err(format!(
                "[admin] require_token = true, but no admin token is set: put it in \
                 {ADMIN_TOKEN_ENV} (e.g. `openssl rand -hex 32`) or [admin] token"
            ));
        }
        // Every missing variable is named at once, so one failed start says all that is needed.
        let mut missing = Vec::new();
        for c in &mut self.credentials {
            if let Some(name) = &c.secret_env {
                match std::env::var(name).ok().filter(|s| !s.is_empty()) {
                    Some(secret) => c.secret = secret,
                    None => missing.push(format!("{name} (credential {:?})", c.id)),
                }
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "the credentials' secret_env variables are not set: {}",
                missing.join(", ")
            ));
        }
        self.check_exposure()
    }

    pub fn enabled(&self, dialect: DialectName) -> bool {
        match dialect {
            DialectName::Tencent => self.dialects.tencent,
            DialectName::Aliyun => self.dialects.aliyun,
            DialectName::Huawei => self.dialects.huawei,
        }
    }

    /// The credentials of one dialect, as the engine's shared set (which the admin API changes
    /// at runtime), with `[auth] auto_accounts` applied.
    pub fn credentials_for(&self, dialect: DialectName) -> kv_dialect::Credentials {
        let set = kv_dialect::Credentials::from(self.configured_credentials(dialect));
        if self.auth.auto_accounts {
            set.with_auto_accounts(self.auth.auto_secret.as_deref().unwrap_or(DEV_SECRET))
                .reserve_accounts(self.credentials.iter().map(|c| c.account.clone()))
        } else {
            set
        }
    }

    /// Enabled dialects that no request can reach: auth is not `off`, `[auth] auto_accounts` is
    /// off, and no `[[credentials]]` names the dialect, so every signed request is refused (until
    /// a key pair is added with `POST /_kvmux/credentials`). One line per dialect, for
    /// `check-config` and the start-up log. The shipped config and the built-in defaults carry
    /// a dev key pair for each dialect, so they warn about nothing.
    pub fn credential_warnings(&self) -> Vec<String> {
        if self.auth.mode == AuthMode::Off || self.auth.auto_accounts {
            return Vec::new();
        }
        DialectName::ALL
            .into_iter()
            .filter(|d| self.enabled(*d) && !self.credentials.iter().any(|c| c.dialect == *d))
            .map(|d| {
                let name = d.as_str();
                format!(
                    "no [[credentials]] for the {name} dialect: every {name} request will be \
                     refused; add a [[credentials]] with dialect = \"{name}\" (or one at runtime \
                     with POST /_kvmux/credentials), set [auth] auto_accounts = true, or turn it \
                     off with [dialects] {name} = false"
                )
            })
            .collect()
    }

    /// The `[[credentials]]` of one dialect, as the engine's type.
    pub fn configured_credentials(&self, dialect: DialectName) -> Vec<Credential> {
        self.credentials
            .iter()
            .filter(|c| c.dialect == dialect)
            .map(|c| Credential {
                id: c.id.clone(),
                secret: c.secret.clone(),
                account: c.account.clone(),
            })
            .collect()
    }

    /// A dialect's options as the JSON its `DialectContext` carries.
    pub fn options_for(&self, dialect: DialectName) -> serde_json::Value {
        let options = match dialect {
            DialectName::Tencent => serde_json::to_value(&self.tencent),
            DialectName::Aliyun => serde_json::to_value(&self.aliyun),
            DialectName::Huawei => serde_json::to_value(&self.huawei),
        };
        options.unwrap_or(serde_json::Value::Null)
    }

    /// The effective config as TOML, with secrets masked (for `check-config` and logs).
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        for c in &mut shown.credentials {
            if c.secret_env.is_none() {
                c.secret = "********".into();
            } else {
                c.secret.clear();
            }
        }
        if shown.auth.auto_secret.is_some() {
            shown.auth.auto_secret = Some("********".into());
        }
        if shown.admin.token.is_some() {
            shown.admin.token = Some("********".into());
        }
        shown.storage = shown.storage.as_deref().map(masked_storage_url);
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A storage URL with its password hidden, whether in the userinfo or in a `password=` option.
fn masked_storage_url(url: &str) -> String {
    let masked = kv_core::store::postgres::redacted_url(url);
    match masked.split_once('?') {
        Some((base, query)) => {
            let options: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{base}?{}", options.join("&"))
        }
        None => masked,
    }
}

/// Line and column of the value at `keys` (e.g. `["tls", "cert"]`) in config text, falling back
/// to the nearest enclosing table that exists (an empty key stops there), then to 1:1.
fn position_of(text: &str, keys: &[&str]) -> (usize, usize) {
    let Ok(root) = toml::de::DeTable::parse(text) else {
        return (1, 1);
    };
    let mut span = None;
    let mut table = Some(root.get_ref());
    for key in keys.iter().filter(|k| !k.is_empty()) {
        let Some(value) = table.and_then(|t| t.get(*key)) else {
            break;
        };
        span = Some(value.span());
        table = match value.get_ref() {
            toml::de::DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    span.map(|s| line_and_column(text, s.start))
        .unwrap_or((1, 1))
}

/// Whether `listen` is a loopback address (only this machine can connect); a host name is not.
pub fn is_loopback(listen: &str) -> bool {
    listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback())
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// Where the config comes from: the flag, then `KVMUX_CONFIG`, then `config/kvmux.toml` if it
/// exists, else the built-in defaults.
pub fn resolve(flag: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let path = flag
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("KVMUX_CONFIG").map(PathBuf::from))
        .or_else(|| {
            let p = PathBuf::from(DEFAULT_CONFIG_PATH);
            p.exists().then_some(p)
        });
    match path {
        Some(p) => Ok((Config::load(&p)?, Some(p))),
        None => Ok((Config::default(), None)),
    }
}

#[cfg(test)]
mod tests {

    /// DCDN namespace names are case-insensitive at the vendor, so a binding written with capitals
    /// must address the folded name the Aliyun dialect stores; ESA names stay exact.
    #[test]
    fn binding_members_use_the_dialects_addresses() {
        let binding = |product: &str| BindingConfig {
            account: "a".into(),
            tencent_zone: "z".into(),
            tencent_namespace: "Orders".into(),
            aliyun_namespace: "Orders".into(),
            aliyun_product: product.into(),
        };
        assert_eq!(
            binding("dcdn").members(),
            vec![
                ("a".into(), "tencent/z".into(), "Orders".into()),
                ("a".into(), "aliyun-dcdn".into(), "orders".into()),
            ]
        );
        assert_eq!(
            binding("esa").members()[1],
            ("a".into(), "aliyun-esa".into(), "Orders".into())
        );
    }
    use super::*;

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = Config::parse("", Path::new("x.toml")).unwrap();
        assert_eq!(c.listen, "127.0.0.1:9090");
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert!(c.dialects.tencent && c.dialects.aliyun && c.dialects.huawei);
        assert_eq!(c.auth.mode, AuthMode::Enforce);
        let ids: Vec<_> = c.credentials.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["AKIDkvmuxdev", "LTAIkvmuxdev", "HWkvmuxdev"]);
        assert!(c
            .credentials
            .iter()
            .all(|c| c.secret == DEV_SECRET && c.account == "dev"));
    }

    #[test]
    fn a_dialect_without_credentials_is_warned_about_unless_nothing_is_verified() {
        let parse = |text: &str| Config::parse(text, Path::new("t.toml")).expect("parses");
        assert_eq!(
            Config::default().credential_warnings(),
            Vec::<String>::new()
        );
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/kvmux.toml");
        let shipped = Config::load(Path::new(shipped)).expect("shipped config");
        assert_eq!(shipped.credential_warnings(), Vec::<String>::new());
        let only_tencent = "[[credentials]]\ndialect = \"tencent\"\nid = \"AK1\"\n\
                            secret = \"s1\"\naccount = \"a\"\n";
        let warnings = parse(only_tencent).credential_warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with(
                "no [[credentials]] for the aliyun dialect: every aliyun request will be refused"
            ),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with("no [[credentials]] for the huawei dialect"),
            "{warnings:?}"
        );
        let huawei_off = format!("{only_tencent}[dialects]\naliyun = false\nhuawei = false\n");
        assert_eq!(
            parse(&huawei_off).credential_warnings(),
            Vec::<String>::new()
        );
        let none = parse("credentials = []\n").credential_warnings();
        assert_eq!(none.len(), 3, "{none:?}");
        assert_eq!(
            parse("credentials = []\n[auth]\nmode = \"log\"\n")
                .credential_warnings()
                .len(),
            3
        );
        assert_eq!(
            parse("credentials = []\n[auth]\nmode = \"off\"\n").credential_warnings(),
            Vec::<String>::new()
        );
        assert_eq!(
            parse("credentials = []\n[auth]\nauto_accounts = true\n").credential_warnings(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_shipped_default_file_parses_to_the_built_in_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kvmux.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn the_design_example_parses() {
        let text = r#"
listen = "127.0.0.1:9090"
data_dir = "data"
[dialects]
tencent = true
aliyun = false
huawei = true
[auth]
mode = "log"
[[credentials]]
dialect = "tencent"
id = "AKIDkvmuxdev"
secret = "kvmuxdevsecret"
account = "dev"
"#;
        let c = Config::parse(text, Path::new("x.toml")).unwrap();
        assert!(!c.dialects.aliyun);
        assert_eq!(c.auth.mode, AuthMode::Log);
        assert_eq!(c.credentials.len(), 1);
        assert_eq!(
            c.configured_credentials(DialectName::Tencent)[0].account,
            "dev"
        );
        assert!(c.configured_credentials(DialectName::Huawei).is_empty());
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = Config::parse(
            "listen = \"127.0.0.1:1\"\n\n[auth]\nmode = \"sometimes\"\n",
            Path::new("k.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("k.toml:4:8:"), "{err}");
        let err = Config::parse("listne = 1\n", Path::new("k.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("k.toml:1:1:") && err.contains("listne"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::parse("listen = \"nowhere\"", Path::new("k")).is_err());
        let err = Config::parse("storage = \"mysql://x\"", Path::new("k"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"memory\""),
            "the error lists the choices: {err}"
        );
        assert!(Config::parse("storage = \"Memory\"", Path::new("k")).is_err());
        let dup = "[[credentials]]\ndialect=\"aliyun\"\nid=\"a\"\nsecret=\"s\"\naccount=\"x\"\n"
            .repeat(2);
        assert!(Config::parse(&dup, Path::new("k"))
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    /// Auto accounts hand an account to anyone holding the (by default public) auto secret,
    /// so like the dev credentials they stay on loopback unless the operator says otherwise.
    #[test]
    fn auto_accounts_are_refused_beyond_loopback_unless_allowed() {
        let own = "[[credentials]]\ndialect = \"tencent\"\nid = \"a\"\nsecret = \"own\"\n\
                   account = \"a\"\n";
        let public = format!("listen = \"0.0.0.0:1\"\n{own}[auth]\nauto_accounts = true\n");
        let err = Config::parse(&public, Path::new("k"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("auto_accounts"), "{err}");
        let allowed = format!("{public}allow_dev_credentials = true\n");
        assert!(Config::parse(&allowed, Path::new("k"))
            .unwrap()
            .check_exposure()
            .is_ok());
        let local = Config::parse(
            "[auth]\nauto_accounts = true\nauto_secret = \"s3\"\n",
            Path::new("k"),
        )
        .unwrap();
        assert!(local.check_exposure().is_ok());
        let set = local.credentials_for(DialectName::Huawei);
        assert_eq!(
            set.get("fresh").map(|c| (c.secret, c.account)),
            Some(("s3".into(), "fresh".into()))
        );
        assert!(
            !local.to_masked_toml().contains("s3\""),
            "the auto secret is masked"
        );
    }

    #[test]
    fn options_reach_the_dialect_as_json() {
        let c = Config::parse("[tencent]\nstrict_keys = true\n", Path::new("k")).unwrap();
        assert_eq!(
            c.options_for(DialectName::Tencent)["strict_keys"],
            serde_json::json!(true)
        );
        assert_eq!(
            kv_huawei::Options::from_json(&c.options_for(DialectName::Huawei)),
            Ok(kv_huawei::Options::default())
        );
    }

    /// A typo in a dialect section is refused with its line and column, as anywhere else.
    #[test]
    fn dialect_sections_refuse_unknown_keys_and_bad_values_with_line_and_column() {
        for (text, line, needle) in [
            (
                "listen = \"127.0.0.1:1\"\n[tencent]\nstrict_key = true\n",
                3,
                "strict_key",
            ),
            (
                "[aliyun]\nnamespace_capacity = 5\nsecurity_token = [\"t\"]\n",
                3,
                "security_token",
            ),
            ("[huawei]\nbase_host = [\"x\"]\n", 2, "base_host"),
            ("[tencent]\nstrict_keys = \"yes\"\n", 2, "invalid type"),
            ("[aliyun]\n\naccount_capacity = 0\n", 3, "account_capacity"),
        ] {
            match Config::parse(text, Path::new("k")) {
                Err(ConfigError::Parse {
                    line: at, message, ..
                }) => {
                    assert_eq!(at, line, "{text:?}: {message}");
                    assert!(message.contains(needle), "{text:?}: {message}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn operator_keys_parse_and_round_trip() {
        let text = "seed_dir = \"seeds\"\ninspector_capacity = 7\n\
                    [[bindings]]\naccount = \"dev\"\ntencent_zone = \"z\"\n\
                    tencent_namespace = \"a\"\naliyun_namespace = \"b\"\naliyun_product = \"dcdn\"\n";
        let c = Config::parse(text, Path::new("k")).unwrap();
        assert_eq!(c.seed_dir.as_deref(), Some(Path::new("seeds")));
        assert_eq!(c.inspector_capacity, 7);
        assert_eq!(
            c.bindings[0].members(),
            vec![
                ("dev".into(), "tencent/z".into(), "a".into()),
                ("dev".into(), "aliyun-dcdn".into(), "b".into()),
            ]
        );
        let back = Config::parse(&c.to_masked_toml(), Path::new("k")).unwrap();
        assert_eq!(back.bindings, c.bindings);
        assert_eq!(back.seed_dir, c.seed_dir);
        let empty_side = text.replace("tencent_namespace = \"a\"", "tencent_namespace = \"\"");
        assert!(Config::parse(&empty_side, Path::new("k")).is_err());
    }

    #[test]
    fn storage_selects_the_backend() {
        let parse = |text: &str| Config::parse(text, Path::new("k")).unwrap();
        assert_eq!(parse("").backend(), Backend::Redb);
        let memory = parse("storage = \"memory\"\n");
        assert_eq!(memory.backend(), Backend::Memory);
        assert!(memory.storage_description().starts_with("memory"));
        let pg = parse("storage = \"postgres://u:pw@h/db\"\n");
        assert_eq!(pg.backend(), Backend::Postgres("postgres://u:pw@h/db"));
        assert!(!pg.storage_description().contains("pw"), "password shown");
        assert_eq!(
            parse("data_dir = \"d\"\n").storage_description(),
            format!("redb file {}", Path::new("d").join("kvmux.redb").display())
        );
    }

    /// Memory mode promises an empty disk; a self-signed certificate with no `write_cert`
    /// would land in `<data_dir>/tls/`, so that combination is refused with the way out.
    #[test]
    fn memory_with_a_self_signed_certificate_needs_write_cert() {
        let err = Config::parse(
            "storage = \"memory\"\n[tls]\nself_signed = true\n",
            Path::new("k"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("write_cert"), "{err}");
        let ok = Config::parse(
            "storage = \"memory\"\n[tls]\nself_signed = true\nwrite_cert = \"c.pem\"\n",
            Path::new("k"),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn masked_toml_hides_the_storage_password() {
        for url in [
            "postgres://kv:hunter2@db.internal:5432/kvmux",
            "postgres://kv@db.internal/kvmux?sslmode=disable&password=hunter2",
        ] {
            let c = Config::parse(&format!("storage = \"{url}\"\n"), Path::new("k")).unwrap();
            let shown = c.to_masked_toml();
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("db.internal"), "{shown}");
        }
    }

    #[test]
    fn tls_sections_are_checked_with_line_and_column() {
        let ok = Config::parse("[tls]\nself_signed = true\n", Path::new("k")).unwrap();
        assert!(ok.tls.as_ref().is_some_and(|t| t.self_signed));
        assert_eq!(Config::parse("", Path::new("k")).unwrap().tls, None);
        let back = Config::parse(&ok.to_masked_toml(), Path::new("k")).unwrap();
        assert_eq!(back.tls, ok.tls);

        let err = |text: &str| {
            Config::parse(text, Path::new("k.toml"))
                .unwrap_err()
                .to_string()
        };
        let both = err("listen = \"127.0.0.1:1\"\n[tls]\nself_signed = true\ncert = \"c.pem\"\n");
        assert!(both.starts_with("k.toml:4:8: tls: self_signed"), "{both}");
        let missing = err("[tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n");
        assert!(
            missing.starts_with("k.toml:2:8: tls.cert /nonexistent/c.pem:"),
            "{missing}"
        );
        let half = err("\n[tls]\nkey = \"k.pem\"\n");
        assert!(
            half.starts_with("k.toml:3:7: tls: key is set but cert"),
            "{half}"
        );
        let empty = err("\n\n[tls]\n");
        assert!(
            empty.starts_with("k.toml:3:") && empty.contains("self_signed = true"),
            "{empty}"
        );
        let names = err("[tls]\ncert = \"c\"\nkey = \"k\"\nnames = [\"a.example\"]\n");
        assert!(
            names.starts_with("k.toml:4:9: tls: names is only"),
            "{names}"
        );
        let typo = err("[tls]\nself_sigend = true\n");
        assert!(typo.starts_with("k.toml:2:1:"), "{typo}");
    }

    #[test]
    fn masked_toml_hides_secrets_and_round_trips() {
        let c = Config::default();
        let shown = c.to_masked_toml();
        assert!(!shown.contains(DEV_SECRET));
        let back = Config::parse(&shown, Path::new("k")).unwrap();
        assert_eq!(back.listen, c.listen);
        assert_eq!(back.credentials.len(), 3);
    }

    #[test]
    fn admin_section_parses_and_bad_values_are_refused() {
        let c = Config::parse(
            "[admin]\nenabled = false\ntoken = \"0123456789abcdef\"\nlisten = \"127.0.0.1:9091\"\n\
             allowed_hosts = [\"kv.example\"]\n",
            Path::new("k"),
        )
        .unwrap();
        assert!(!c.admin.enabled);
        assert_eq!(c.admin.listen.as_deref(), Some("127.0.0.1:9091"));
        let shown = c.to_masked_toml();
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert_eq!(Config::default().admin, AdminConfig::default());
        assert!(Config::default().admin.enabled);
        let err = |text: &str| Config::parse(text, Path::new("k")).unwrap_err().to_string();
        assert!(err("[admin]\ntoken = \"short\"\n").contains("at least 16"));
        assert!(err("[admin]\ntoken = \"0123456789abcdef \"\n").contains("at least 16"));
        assert!(err("[admin]\nlisten = \"nowhere\"\n").contains("admin.listen"));
        assert!(err("[admin]\nlisten = \"127.0.0.1:9090\"\n").contains("its own port"));
        assert!(err("[admin]\ntokn = \"x\"\n").contains("tokn"));
    }

    /// `off` and `log` serve badly signed requests: beyond loopback only when said so.
    #[test]
    fn unverified_auth_modes_are_refused_beyond_loopback_unless_allowed() {
        let own = "[[credentials]]\ndialect = \"tencent\"\nid = \"a\"\nsecret = \"own\"\n\
                   account = \"a\"\n";
        for mode in ["off", "log"] {
            let public = format!("listen = \"0.0.0.0:1\"\n{own}[auth]\nmode = \"{mode}\"\n");
            let err = Config::parse(&public, Path::new("k"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("allow_unverified") && err.contains(mode),
                "{mode}: {err}"
            );
            let allowed = format!("{public}allow_unverified = true\n");
            assert!(Config::parse(&allowed, Path::new("k")).is_ok(), "{mode}");
            let local = format!("{own}[auth]\nmode = \"{mode}\"\n");
            assert!(Config::parse(&local, Path::new("k")).is_ok(), "{mode}");
        }
        let enforced = format!("listen = \"0.0.0.0:1\"\n{own}[auth]\nmode = \"enforce\"\n");
        assert!(Config::parse(&enforced, Path::new("k")).is_ok());
    }

    #[test]
    fn dev_credentials_on_a_public_listener_need_the_explicit_option() {
        let err = Config::parse("listen = \"0.0.0.0:9090\"\n", Path::new("k"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("allow_dev_credentials"), "{err}");
        let ok = "listen = \"0.0.0.0:9090\"\n[auth]\nallow_dev_credentials = true\n";
        assert!(Config::parse(ok, Path::new("k")).is_ok());
        assert!(Config::parse("listen = \"[::1]:9090\"\n", Path::new("k")).is_ok());
        // --listen / KVMUX_LISTEN apply after parsing: the check runs again.
        let moved = Config {
            listen: "10.0.0.5:9090".into(),
            ..Config::default()
        };
        assert!(moved.check_exposure().is_err());
    }

    #[test]
    fn a_credential_has_a_secret_or_a_secret_env_but_not_both() {
        let cred = |fields: &str| {
            format!("[[credentials]]\ndialect = \"aliyun\"\nid = \"a\"\naccount = \"x\"\n{fields}")
        };
        let c = Config::parse(
            &cred("secret_env = \"KVMUX_TEST_UNSET_SECRET\"\n"),
            Path::new("k"),
        )
        .unwrap();
        assert_eq!(c.credentials[0].secret, "");
        let shown = c.to_masked_toml();
        assert!(shown.contains("KVMUX_TEST_UNSET_SECRET"), "{shown}");
        assert!(Config::parse(&shown, Path::new("k")).is_ok());
        let err = |text: &str| Config::parse(text, Path::new("k")).unwrap_err().to_string();
        assert!(err(&cred("")).contains("secret_env"));
        assert!(err(&cred("secret = \"s\"\nsecret_env = \"V\"\n")).contains("not both"));
        assert!(err(&cred("secret_env = \"\"\n")).contains("empty"));
        // At start-up an unset variable is named.
        let mut unset = c.clone();
        let e = unset.apply_env().unwrap_err();
        assert!(e.contains("KVMUX_TEST_UNSET_SECRET"), "{e}");
    }
}
