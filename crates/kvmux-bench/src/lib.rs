//! `kvmux bench`: a load generator that signs every request the way the vendor SDK does, over
//! keep-alive connections, and reports throughput and latency percentiles. By default it starts
//! its own gateway (this same binary, as a child process, on a free port with a fresh data dir) so
//! that the gateway's memory can be read separately; `--target` points it at a running one.
//!
//! Its own crate so that the end-to-end tests, the criterion benches and the binary share one
//! copy of the SDK-exact signers (`workload`) without including source files across folders.

mod load;
mod plot;
pub mod workload;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
pub use workload::{Op, Target};

/// The public dev secret of the default configuration (README, "Dev credentials"); kvmux's
/// `config::DEV_SECRET` is the same string, which a test there pins.
pub const DEV_SECRET: &str = "kvmuxdevsecret";

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// The API to drive (`dynamodb` only with --target, for comparing with moto).
    #[arg(long, value_enum, default_value = "tencent")]
    pub dialect: Target,
    #[arg(long, value_enum, default_value = "get")]
    pub op: Op,
    /// Concurrent keep-alive connections (each a closed loop).
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Measured seconds (after setup and a 1 s warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// Keys preloaded (and the key space for puts).
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,
    /// The spawned gateway fsyncs every commit before replying (group commit), as in production.
    #[arg(long)]
    pub durable: bool,
    /// The spawned gateway's storage: the redb file (the default) or the memory store.
    #[arg(long, value_enum, default_value = "redb")]
    pub storage: BenchStorage,
    /// Also measure `GET /_kvmux/health` with the same connections: the HTTP ceiling.
    #[arg(long)]
    pub ceiling: bool,
    /// An already running gateway (or moto) instead of a spawned one, e.g. 127.0.0.1:9090.
    #[arg(long)]
    pub target: Option<String>,
    /// Credentials for --target (default: the dev credentials).
    #[arg(long)]
    pub key_id: Option<String>,
    #[arg(long)]
    pub secret: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Print, instead of running a load, a wrk Lua script that sends one signed request of `--op`
    /// on key 0 to `--target` over and over (for `bench/cpu-per-request.sh`). Only for a signature
    /// the dialect accepts again within its freshness window (Tencent TC3, Huawei; not Aliyun,
    /// whose nonce is single-use). The key's container must exist (a short `kvmux bench --target`
    /// run creates it and loads the keys).
    #[arg(long, requires = "target")]
    pub wrk_lua: bool,
    /// The process id of the `--target` gateway: its CPU (user + system, all threads, from
    /// `/proc/PID/stat`) over the measured run is reported per request. A spawned gateway is
    /// always measured.
    #[arg(long, requires = "target")]
    pub server_pid: Option<u32>,
}

/// Storage of a spawned gateway.
#[derive(clap::ValueEnum, serde::Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BenchStorage {
    Redb,
    Memory,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PlotArgs {
    /// JSON Lines written by `kvmux bench --json` (one run per line).
    #[arg(long)]
    pub input: PathBuf,
    /// The SVG to write.
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(serde::Serialize)]
struct Report {
    dialect: Target,
    op: Op,
    connections: usize,
    value_size: usize,
    keys: usize,
    durable: bool,
    storage: BenchStorage,
    cores: usize,
    result: load::Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    ceiling: Option<load::Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_to_ceiling: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_rss_kib: Option<ServerMemory>,
    /// The gateway's CPU time (user + system) over the measured run, per request, in µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    server_cpu_us_per_op: Option<f64>,
    /// The same over the `--ceiling` run.
    #[serde(skip_serializing_if = "Option::is_none")]
    ceiling_server_cpu_us_per_op: Option<f64>,
}

#[derive(serde::Serialize)]
struct ServerMemory {
    after_setup: u64,
    after_run: u64,
    peak: u64,
}

/// The spawned gateway; killed by PID when dropped.
struct SpawnedGateway {
    child: Child,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A scratch directory removed on drop (no extra crate for one directory).
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for SpawnedGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn spawn_gateway(durable: bool, storage: BenchStorage) -> Result<(SpawnedGateway, String), String> {
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("kvmux-bench-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("scratch dir: {e}"))?;
    let config = dir.join("kvmux.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\ndurable = {durable}\n{}",
            dir.join("data").display(),
            match storage {
                BenchStorage::Redb => "",
                BenchStorage::Memory => "storage = \"memory\"\n",
            }
        ),
    )
    .map_err(|e| format!("config: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("own binary: {e}"))?;
    let child = Command::new(exe)
        .args(["serve", "--config"])
        .arg(&config)
        // Request logging on, as in production: the figures include the per-request log line.
        .env("RUST_LOG", "info")
        .env_remove("KVMUX_LISTEN")
        .env_remove("KVMUX_DATA_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting the gateway: {e}"))?;
    Ok((
        SpawnedGateway {
            child,
            _dir: tempdir::Dir(dir),
        },
        format!("127.0.0.1:{port}"),
    ))
}

/// A process's CPU time so far (user + system, every thread, exited ones included), in seconds.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // In USER_HZ, which Linux fixes at 100 for every user-space interface.
    Some(ticks as f64 / 100.0)
}

/// CPU µs per request of `pid` between two [`cpu_secs`] readings.
fn cpu_per_op(pid: Option<u32>, before: Option<f64>, requests: u64) -> Option<f64> {
    let (after, before) = (cpu_secs(pid?)?, before?);
    (requests > 0).then(|| (after - before) * 1e6 / requests as f64)
}

fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

async fn wait_healthy(addr: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut s) = load::Conn::open(addr).await {
            let mut req = http::Request::new(Bytes::new());
            *req.uri_mut() = http::Uri::from_static("/_kvmux/health");
            req.headers_mut().insert(
                "host",
                http::HeaderValue::from_str(addr).map_err(|e| e.to_string())?,
            );
            if matches!(s.send(req).await, Ok((st, _)) if st.is_success()) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{addr} did not become healthy"))
}

/// Runs a benchmark and prints its report.
pub async fn run(args: BenchArgs) -> Result<(), String> {
    if args.dialect == Target::Dynamodb && args.target.is_none() {
        return Err(
            "--dialect dynamodb needs --target (a DynamoDB-compatible server such as moto)".into(),
        );
    }
    if args.connections == 0 || args.keys == 0 {
        return Err("--connections and --keys must be at least 1".into());
    }
    if args.wrk_lua {
        let target = args.target.clone().unwrap_or_default();
        let (key_id, secret) = credentials(&args);
        let workload = workload::Workload {
            target: args.dialect,
            host: target,
            key_id,
            secret,
            value: Bytes::from(vec![b'v'; args.value_size]),
        };
        print!("{}", wrk_lua(&workload.request(args.op, 0)));
        return Ok(());
    }
    let (gateway, addr) = match &args.target {
        Some(t) => (None, t.clone()),
        None => {
            let (g, a) = spawn_gateway(args.durable, args.storage)?;
            (Some(g), a)
        }
    };
    wait_healthy_or_target(&addr, args.dialect).await?;
    let (key_id, secret) = credentials(&args);
    let workload = std::sync::Arc::new(workload::Workload {
        target: args.dialect,
        host: addr.clone(),
        key_id,
        secret,
        value: Bytes::from(vec![b'v'; args.value_size]),
    });

    // Setup: the container, then the keys, loaded over 16 connections. Each load request is
    // signed just before it is sent: signing a million up front let the last ones pass the
    // vendors' five-minute signature window before they went out.
    let (create, _) = workload.setup(0);
    let mut conn = load::Conn::open(&addr).await?;
    conn.send(create).await?;
    let next_key = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut loaders = Vec::new();
    for _ in 0..16 {
        let (next_key, addr, workload) = (next_key.clone(), addr.clone(), workload.clone());
        let keys = args.keys;
        loaders.push(tokio::spawn(async move {
            let mut conn = load::Conn::open(&addr).await?;
            loop {
                let i = next_key.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= keys {
                    return Ok::<_, String>(());
                }
                let (status, body) = conn.send(workload.request(Op::Put, i)).await?;
                if workload.is_error(status, &body) {
                    return Err(format!(
                        "preloading failed: {status} {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
            }
        }));
    }
    for l in loaders {
        l.await.map_err(|e| e.to_string())??;
    }
    let pid = gateway.as_ref().map(|g| g.child.id()).or(args.server_pid);
    let after_setup = pid.and_then(rss_kib).map(|(rss, _)| rss);

    let keys = args.keys as u64;
    let op = args.op;
    let make = {
        let w = workload.clone();
        move |i: u64| {
            // A multiplicative hash spreads consecutive requests over the key space.
            let k = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) % keys;
            w.request(op, k as usize)
        }
    };
    let judge = {
        let w = workload.clone();
        move |s: http::StatusCode, b: &[u8]| w.is_error(s, b)
    };
    // Warm-up: connections, caches, the page cache of the data file.
    load::run(
        &addr,
        args.connections,
        Duration::from_secs(1),
        make.clone(),
        judge.clone(),
    )
    .await?;
    let cpu_before = pid.and_then(cpu_secs);
    let result = load::run(
        &addr,
        args.connections,
        Duration::from_secs_f64(args.duration),
        make,
        judge,
    )
    .await?;
    let server_cpu_us_per_op = cpu_per_op(pid, cpu_before, result.requests);
    let after_run = pid.and_then(rss_kib);

    let mut ceiling_server_cpu_us_per_op = None;
    let ceiling = if args.ceiling {
        let w = workload.clone();
        let cpu_before = pid.and_then(cpu_secs);
        let ceiling = load::run(
            &addr,
            args.connections,
            Duration::from_secs_f64(args.duration),
            move |_| w.health(),
            |s: http::StatusCode, _: &[u8]| !s.is_success(),
        )
        .await?;
        ceiling_server_cpu_us_per_op = cpu_per_op(pid, cpu_before, ceiling.requests);
        Some(ceiling)
    } else {
        None
    };
    let report = Report {
        dialect: args.dialect,
        op: args.op,
        connections: args.connections,
        value_size: args.value_size,
        keys: args.keys,
        durable: args.durable,
        storage: args.storage,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        ratio_to_ceiling: ceiling.as_ref().map(|c| result.ops_per_sec / c.ops_per_sec),
        server_rss_kib: match (after_setup, after_run) {
            (Some(a), Some((r, peak))) => Some(ServerMemory {
                after_setup: a,
                after_run: r,
                peak,
            }),
            _ => None,
        },
        result,
        ceiling,
        server_cpu_us_per_op,
        ceiling_server_cpu_us_per_op,
    };
    drop(gateway);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        print_table(&report);
    }
    Ok(())
}

async fn wait_healthy_or_target(addr: &str, target: Target) -> Result<(), String> {
    if target == Target::Dynamodb {
        // moto has no /_kvmux/health; a connection is enough.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if load::Conn::open(addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        return Err(format!("cannot connect to {addr}"));
    }
    wait_healthy(addr).await
}

fn credentials(args: &BenchArgs) -> (String, String) {
    (
        args.key_id
            .clone()
            .unwrap_or_else(|| args.dialect.dev_key_id().into()),
        args.secret.clone().unwrap_or_else(|| DEV_SECRET.into()),
    )
}

fn print_table(r: &Report) {
    let o = &r.result;
    println!(
        "kvmux bench: {:?} {:?}, {} connections, {} B values, {} keys, durable={}, storage={:?}, {} cores",
        r.dialect, r.op, r.connections, r.value_size, r.keys, r.durable, r.storage, r.cores
    );
    println!("  requests   {:>10}  in {:.1} s", o.requests, o.seconds);
    println!("  ops/s      {:>10.0}", o.ops_per_sec);
    println!(
        "  latency    p50 {} µs   p90 {} µs   p99 {} µs   max {} µs",
        o.p50_us, o.p90_us, o.p99_us, o.max_us
    );
    println!("  errors     {:>10}", o.errors);
    if let Some(e) = &o.first_error {
        println!("  first error: {e}");
    }
    if let Some(cpu) = r.server_cpu_us_per_op {
        println!("  gateway CPU {cpu:.1} µs per request (user + system)");
    }
    if let (Some(c), Some(ratio)) = (&r.ceiling, r.ratio_to_ceiling) {
        println!(
            "  ceiling    {:>10.0} ops/s on GET /_kvmux/health  ->  {:.0}% of the HTTP ceiling",
            c.ops_per_sec,
            ratio * 100.0
        );
    }
    if let Some(m) = &r.server_rss_kib {
        println!(
            "  gateway RSS {} MiB after setup, {} MiB after the run, peak {} MiB",
            m.after_setup / 1024,
            m.after_run / 1024,
            m.peak / 1024
        );
    }
}

/// A wrk script that sends `req` as it is (method, target, headers, body byte for byte).
fn wrk_lua(req: &http::Request<Bytes>) -> String {
    // Lua's decimal escapes carry any byte (BSON bodies are binary).
    let lua = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("\\{b}")).collect() };
    let mut out = format!(
        "-- generated by `kvmux bench --wrk-lua`\nwrk.method = \"{}\"\nwrk.path = \"{}\"\nwrk.headers = {{}}\n",
        lua(req.method().as_str().as_bytes()),
        lua(req.uri().to_string().as_bytes())
    );
    for (name, value) in req.headers() {
        // wrk adds its own Host unless one named exactly `Host` is set.
        let name = if name == http::header::HOST {
            "Host"
        } else {
            name.as_str()
        };
        out.push_str(&format!(
            "wrk.headers[\"{}\"] = \"{}\"\n",
            lua(name.as_bytes()),
            lua(value.as_bytes())
        ));
    }
    out.push_str(&format!("wrk.body = \"{}\"\n", lua(req.body())));
    out
}

/// Draws throughput against connections, one line per dialect and operation.
pub fn plot(args: PlotArgs) -> Result<(), String> {
    plot::throughput_svg(&args.input, &args.output)
}
