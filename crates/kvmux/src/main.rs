//! kvmux: one binary that speaks Tencent EdgeKV, Alibaba ESA/DCDN KV and Huawei KVS on one port.

use kvmux::{admin, config, gateway, ready, server, snapshot, tls};
use kvmux_bench as bench;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kv_core::Engine;

use kvmux::config::{Backend, Config};

/// mimalloc instead of glibc malloc: at 64 connections glibc's malloc/free were ~15% of the
/// gateway's CPU (perf, docs/BENCHMARKS.md), and its per-thread arenas kept freed memory resident.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kvmux",
    version,
    about = "One gateway for Tencent EdgeKV, Alibaba ESA/DCDN KV and Huawei KVS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. The admin token comes from KVMUX_ADMIN_TOKEN (or `[admin] token`);
    /// credentials with `secret_env` read their secret from the variable they name.
    Serve {
        /// Config file (default: $KVMUX_CONFIG, else config/kvmux.toml if present, else built-in).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding the config.
        #[arg(long, env = "KVMUX_LISTEN")]
        listen: Option<String>,
        /// Data directory, overriding the config.
        #[arg(long, env = "KVMUX_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Storage, overriding the config's `storage`: `memory` (nothing on disk, for test
        /// suites), or a postgres:// URL.
        #[arg(long, env = "KVMUX_STORAGE")]
        storage: Option<String>,
        /// Once the listener accepts, write `{"url","host","pid","version"}` here (atomically),
        /// e.g. to learn the port of `--listen 127.0.0.1:0`. With no config file at all (no
        /// --config, $KVMUX_CONFIG or config/kvmux.toml) and no --storage/--data-dir, the gateway
        /// runs on the memory store: a test harness needs no files.
        #[arg(long)]
        ready_file: Option<PathBuf>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key), overriding `[tls]`.
        #[arg(long, env = "KVMUX_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "KVMUX_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve HTTPS with a certificate generated at start-up, overriding `[tls]`.
        #[arg(long, env = "KVMUX_TLS_SELF_SIGNED", conflicts_with = "tls_cert")]
        tls_self_signed: bool,
    },
    /// Print the effective configuration of FILE (secrets masked), or where it is wrong.
    CheckConfig { file: PathBuf },
    /// Write every container and live item as JSON Lines to stdout (the gateway must be stopped
    /// when the storage is the embedded file).
    /// `--format esa-kv-json` writes one account's ESA namespaces as esa-cli's kv.json instead.
    Export {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, env = "KVMUX_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        io: snapshot::FormatArgs,
    },
    /// Read a JSON Lines dump from FILE or stdin into the storage, overwriting items that exist;
    /// `--format esa-kv-json` reads esa-cli's kv.json into one account's ESA namespaces.
    Import {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, env = "KVMUX_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        io: snapshot::FormatArgs,
        /// The file to read (stdin when absent or `-`).
        file: Option<PathBuf>,
    },
    /// Measure signed-request throughput and latency (see docs/BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Plot `kvmux bench --json` results (JSON Lines) as throughput against connections.
    BenchPlot(bench::PlotArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(mut config) => {
                print!("{}", config.to_masked_toml());
                // The token may come from the environment at start-up; say what it would be here.
                if let Some(token) = std::env::var(config::ADMIN_TOKEN_ENV)
                    .ok()
                    .filter(|t| !t.is_empty())
                {
                    config.admin.token = Some(token);
                }
                println!("\n# admin: {}", admin::mode(&config).1);
                println!("# storage: {}", config.storage_description());
                for warning in config.credential_warnings() {
                    eprintln!("kvmux: warning: {warning}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kvmux: {e}");
                ExitCode::from(2)
            }
        },
        // One client thread: the load generator must leave the other core to the gateway, and a
        // single-threaded runtime keeps each connection's wakeups on one thread.
        Command::Bench(args) => run_to_exit(Runtime::SingleThread, "kvmux bench", bench::run(args)),
        Command::Export {
            config,
            data_dir,
            io,
        } if io.format == snapshot::Format::EsaKvJson => {
            offline(config, data_dir, |engine| async move {
                let account = io.account()?;
                let mut out = std::io::BufWriter::new(std::io::stdout());
                let mut warn = |w: String| eprintln!("kvmux: {w}");
                let counts =
                    snapshot::export_esa_kv_json(&engine, account, &mut out, &mut warn).await?;
                eprintln!(
                    "kvmux: exported {} ESA namespaces of account `{account}`, {} items ({} \
                     skipped: not UTF-8; {} TTLs dropped: kv.json has none)",
                    counts.namespaces, counts.items, counts.skipped_binary, counts.ttls_dropped
                );
                Ok(())
            })
        }
        Command::Export {
            config,
            data_dir,
            io,
        } => offline(config, data_dir, |engine| async move {
            io.account()?;
            let bar = indicatif::ProgressBar::new(0);
            let mut out = std::io::BufWriter::new(std::io::stdout());
            let counts = snapshot::export(&engine, &mut out, &bar)
                .await
                .map_err(|e| e.to_string())?;
            std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
            bar.finish_and_clear();
            eprintln!(
                "kvmux: exported {} containers, {} items",
                counts.containers, counts.items
            );
            Ok(())
        }),
        Command::Import {
            config,
            data_dir,
            io,
            file,
        } if io.format == snapshot::Format::EsaKvJson => {
            let aliyun = aliyun_options(config.as_deref());
            offline(config, data_dir, |engine| async move {
                let account = io.account()?;
                let text = match file.as_deref().filter(|f| f.as_os_str() != "-") {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| format!("reading {}: {e}", path.display()))?,
                    None => std::io::read_to_string(std::io::stdin())
                        .map_err(|e| format!("reading stdin: {e}"))?,
                };
                let counts = snapshot::import_esa_kv_json(&engine, account, &aliyun, &text).await?;
                eprintln!(
                    "kvmux: imported {} ESA namespaces ({} created) of account `{account}`, {} items",
                    counts.namespaces, counts.created, counts.items
                );
                Ok(())
            })
        }
        Command::Import {
            config,
            data_dir,
            io,
            file,
        } => offline(config, data_dir, |engine| async move {
            io.account()?;
            let bar = indicatif::ProgressBar::new(0);
            let mut input: Box<dyn std::io::BufRead + Send> =
                match file.as_deref().filter(|f| f.as_os_str() != "-") {
                    Some(path) => Box::new(std::io::BufReader::new(
                        std::fs::File::open(path)
                            .map_err(|e| format!("reading {}: {e}", path.display()))?,
                    )),
                    None => Box::new(std::io::BufReader::new(std::io::stdin())),
                };
            let counts = snapshot::import(&engine, &mut *input, snapshot::Mode::Overwrite, &bar)
                .await
                .map_err(|e| e.to_string())?;
            bar.finish_and_clear();
            eprintln!(
                "kvmux: imported {} containers, {} items ({} skipped)",
                counts.containers, counts.items, counts.skipped
            );
            Ok(())
        }),
        Command::BenchPlot(args) => match bench::plot(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kvmux bench-plot: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve {
            config,
            listen,
            data_dir,
            storage,
            ready_file,
            tls_cert,
            tls_key,
            tls_self_signed,
        } => {
            let (_log_flush, gate) = init_tracing();
            let (mut config, source) = match resolve_config(config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            // A harness that only asks for a ready file and has no config file gets a gateway
            // that leaves nothing behind; a data dir or storage it names still wins.
            let ephemeral_default = source.is_none() && ready_file.is_some() && data_dir.is_none();
            if let Some(storage) = storage {
                config.storage = Some(storage);
            } else if ephemeral_default {
                config.storage = Some(config::MEMORY_STORAGE.into());
            }
            if let Some(listen) = listen {
                config.listen = listen;
            }
            // The environment (admin token, secret_env credentials) and the listen override can
            // change what is exposed, so the exposure check runs again on the result.
            if let Err(e) = config.apply_env() {
                eprintln!("kvmux: {e}");
                return ExitCode::from(2);
            }
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                let tls = config.tls.get_or_insert_with(Default::default);
                (tls.cert, tls.key, tls.self_signed) = (Some(cert), Some(key), false);
            } else if tls_self_signed {
                let tls = config.tls.get_or_insert_with(Default::default);
                (tls.cert, tls.key, tls.self_signed) = (None, None, true);
            }
            if let Err(e) = config.check_storage() {
                eprintln!("kvmux: {e}");
                return ExitCode::from(2);
            }
            let start = Start {
                source,
                ready_file,
                gate,
            };
            run_to_exit(Runtime::MultiThread, "kvmux", serve(config, start))
        }
    }
}

/// Which tokio runtime a command runs on.
#[derive(Clone, Copy)]
enum Runtime {
    /// Both cores: the gateway and the offline commands.
    MultiThread,
    /// One thread: the load generator, which must leave a core to the gateway it measures.
    SingleThread,
}

/// Runs `work` to completion on a fresh runtime; an error is printed after `prefix` and is a
/// failing exit code.
fn run_to_exit<Fut>(runtime: Runtime, prefix: &str, work: Fut) -> ExitCode
where
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let built = match runtime {
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        Runtime::SingleThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kvmux: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{prefix}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The config as `serve` finds it (flag, `KVMUX_CONFIG`, `config/kvmux.toml`, defaults); a broken
/// file is printed with its line and column and exits with code 2.
fn resolve_config(flag: Option<PathBuf>) -> Result<(Config, Option<PathBuf>), ExitCode> {
    config::resolve(flag.as_deref()).map_err(|e| {
        eprintln!("kvmux: {e}");
        ExitCode::from(2)
    })
}

/// The `[aliyun]` section, for the namespaces an esa-kv-json import creates (their capacities);
/// the defaults when the config does not load, which `offline` then reports.
fn aliyun_options(flag: Option<&std::path::Path>) -> kv_aliyun::Options {
    config::resolve(flag)
        .map(|(c, _)| c.aliyun)
        .unwrap_or_default()
}

/// Runs an offline command (`export`, `import`) on the configured storage, then closes it.
fn offline<F, Fut>(config: Option<PathBuf>, data_dir: Option<PathBuf>, work: F) -> ExitCode
where
    F: FnOnce(Arc<Engine>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let (mut config, _) = match resolve_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    if config.backend() == Backend::Memory {
        eprintln!(
            "kvmux: storage = \"memory\" lives only inside a running gateway; export and import \
             it there with GET and POST /_kvmux/snapshot"
        );
        return ExitCode::from(2);
    }
    run_to_exit(Runtime::MultiThread, "kvmux", async move {
        let (engine, _) = gateway::open_engine(&config).await?;
        let result = work(engine.clone()).await;
        engine
            .close()
            .await
            .map_err(|e| format!("closing the store: {e}"))?;
        result
    })
}

/// Logs go to stdout through a background writer thread that writes them in batches
/// (`kvmux::logs`), so the one line per request costs the request an append to a buffer, not a
/// write to a pipe or terminal nor a wake-up of another thread; off a terminal, that line is
/// handed over as data and formatted by that thread. Nothing is dropped: when the
/// buffer is full, callers wait. The returned guard writes what is pending when dropped.
/// The logs are held back until the ready line is on stdout (`ready::StdoutGate`).
fn init_tracing() -> (kvmux::logs::FlushGuard, LogGate) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = kvmux::logs::batched(std::io::stdout());
    let gated = ready::StdoutGate::new(writer.clone());
    let gate = gated.opener();
    // Colour codes only for a terminal: a log file or collector gets plain lines, and formatting
    // the escape codes was a visible share of a request's time under load.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if !colour {
        // The per-request lines, formatted by the writer thread in the same format.
        kvmux::logs::install(writer.clone(), gated.opened_flag(), Box::new(gated.clone()));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colour)
        .with_writer(gated)
        .init();
    (guard, gate)
}

/// Opens the held-back stdout logs behind the ready line.
type LogGate = ready::GateOpener<kvmux::logs::BatchedWriter>;

/// How `serve` was started, beyond the config: where the config came from (for the log), where
/// to write the ready file, and the stdout gate to open with the ready line.
struct Start {
    source: Option<PathBuf>,
    ready_file: Option<PathBuf>,
    gate: LogGate,
}

/// Raises the open-files soft limit to the hard limit: every connection is a descriptor, and the
/// usual soft limit of 1024 would refuse connections long before `limits.max_connections`.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "raised the open-files limit"),
            Err(e) => tracing::warn!(error = %e, soft, hard, "cannot raise the open-files limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-files limit"),
    }
}

async fn serve(config: Config, start: Start) -> Result<(), String> {
    let Start {
        source,
        ready_file,
        gate,
    } = start;
    if let Some(path) = &ready_file {
        ready::remove_stale(path)?;
    }
    raise_open_files_limit();
    // Bound first: a busy port must fail the start before anything is created on disk (the
    // data dir, the redb file, a self-signed certificate). The kernel queues connections until
    // the gateway accepts them.
    let (listener, local) = gateway::bind(&config.listen).await?;
    // `[admin] listen`: a port of its own for admin, dashboard and metrics (none when disabled).
    let admin_listener = match &config.admin.listen {
        Some(addr) if config.admin.enabled => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} ([admin] listen): {e}"))?,
        ),
        _ => None,
    };
    let tls = match &config.tls {
        Some(section) => {
            section.check().map_err(|(_, message)| message)?;
            let prepared = tls::prepare(section, &config.listen, &config.data_dir)?;
            if let Some(path) = &prepared.written_cert {
                tracing::info!(
                    cert = %path.display(),
                    "self-signed TLS certificate written; clients must trust this file"
                );
            }
            Some(prepared.acceptor)
        }
        None => None,
    };
    let (gateway, data) = gateway::assemble(config, local).await?;
    let engine = gateway.engine.clone();
    tracing::info!(
        listen = %local,
        storage = %data,
        config = %source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "built-in defaults".into()),
        dialects = ?gateway.dialect_names(),
        "kvmux listening on {scheme}://{local}",
        scheme = if tls.is_some() { "https" } else { "http" },
    );
    let sweeper = engine.spawn_sweeper(Duration::from_secs(1));
    // Everything is built and the listener is bound (the kernel already queues connections):
    // say where, first in the ready file, then as stdout's first line.
    // The signal handlers go in before anyone learns the gateway is up: a SIGTERM sent as soon
    // as the ready file appears must drain and exit 0, not kill the process.
    let shutdown = shutdown_signal();
    let ready = ready::Ready::new(local, tls.is_some());
    if let Some(path) = &ready_file {
        ready::write_atomically(path, &ready.to_json())?;
    }
    gate.open(&ready.line());
    let drain = Duration::from_secs(8);
    match admin_listener {
        None => server::run(gateway, listener, tls, shutdown, drain, admin::Port::Shared).await,
        Some(admin_listener) => {
            if let Ok(addr) = admin_listener.local_addr() {
                tracing::info!(admin = %addr, "admin API, dashboard and metrics on their own port");
            }
            let shutdown = futures_util::FutureExt::shared(Box::pin(shutdown));
            let data = server::run(
                gateway.clone(),
                listener,
                tls.clone(),
                shutdown.clone(),
                drain,
                admin::Port::Data,
            );
            let admin = server::run(
                gateway,
                admin_listener,
                tls,
                shutdown,
                drain,
                admin::Port::Admin,
            );
            tokio::join!(data, admin);
        }
    }
    sweeper.abort();
    // A stopped gateway's file would send the next launcher to a dead port.
    if let Some(path) = &ready_file {
        let _ = std::fs::remove_file(path);
    }
    engine
        .close()
        .await
        .map_err(|e| format!("closing the store: {e}"))?;
    tracing::info!("kvmux stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed by this call, not when the future
/// is first polled (the server polls it only after the ready file is written; a SIGTERM in
/// between used to end the process with the signal's default action instead of a drain).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (term, interrupt) = signals;
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {},
                _ = wait(interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested; draining");
    }
}
