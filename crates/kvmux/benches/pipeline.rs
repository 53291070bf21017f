//! The whole gateway pipeline in-process: request bytes in, response bytes out, through hyper's
//! HTTP/1.1 connection and `kvmux::server::handle` (head checks, admin or dialect dispatch, body
//! collection, the dialect, the log line, metrics, the inspector, response building) on a redb
//! store, over an in-memory duplex pipe instead of a socket. What the load runs cannot resolve
//! on two shared cores: the gateway's own work per request, without the kernel's TCP path and
//! without a load generator on the same cores.
//!
//! A counting global allocator reports allocations (and bytes) per request for each point before
//! criterion runs; the request logging is on (`info`, through `kvmux::logs`' batched writer into
//! a sink) as in production.
//!
//! Run: `cargo bench -p kvmux --bench pipeline` (figures in docs/BENCHMARKS.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use hyper_util::rt::TokioIo;
use kvmux_bench::workload::{Op, Target, Workload};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Counts every allocation (and reallocation) made by the process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const DEV_SECRET: &str = kvmux_bench::DEV_SECRET;
const HOST: &str = "127.0.0.1:9090";

/// A request as it goes on the wire.
fn wire(req: &http::Request<Bytes>) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", req.method(), req.uri()).into_bytes();
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if req.method() != http::Method::GET || !req.body().is_empty() {
        out.extend_from_slice(format!("content-length: {}\r\n", req.body().len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(req.body());
    out
}

/// The client end of one keep-alive connection to the gateway.
struct Client {
    pipe: DuplexStream,
    buf: Vec<u8>,
}

impl Client {
    /// Sends `request` and reads the whole response; answers its status line and body.
    async fn call(&mut self, request: &[u8]) -> (u16, Vec<u8>) {
        self.pipe.write_all(request).await.expect("write");
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).expect("head");
                let status: u16 = head[9..12].parse().expect("status");
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .expect("content-length");
                let total = end + 4 + length;
                while self.buf.len() < total {
                    let n = self.pipe.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "connection closed mid-body");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                return (status, self.buf[end + 4..total].to_vec());
            }
            let n = self.pipe.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A gateway (default config: every dialect, the dev credentials, logging, metrics, the
/// inspector) on a redb file, and one connection to it served by hyper as `server::run` does.
async fn start(dir: &std::path::Path, inspector_capacity: usize) -> Client {
    let default = kvmux::config::Config::default();
    let config = kvmux::config::Config {
        data_dir: dir.to_path_buf(),
        durable: false,
        inspector_capacity: if inspector_capacity == usize::MAX {
            default.inspector_capacity
        } else {
            inspector_capacity
        },
        ..default
    };
    let local: SocketAddr = HOST.parse().expect("addr");
    let (gateway, _) = kvmux::gateway::assemble(config, local)
        .await
        .expect("gateway");
    let (client, server) = tokio::io::duplex(64 * 1024);
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("peer");
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |mut req| {
            req.extensions_mut().insert(kvmux::admin::Port::Shared);
            kvmux::server::handle(gateway.clone(), peer, req)
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(server), service)
            .await;
    });
    Client {
        pipe: client,
        buf: Vec::new(),
    }
}

fn workload(target: Target) -> Workload {
    Workload {
        target,
        host: HOST.into(),
        key_id: target.dev_key_id().into(),
        secret: DEV_SECRET.into(),
        value: Bytes::from(vec![b'v'; 1024]),
    }
}

/// Allocations and bytes per request over `n` calls of `make`'s requests (signing excluded).
fn allocations(
    runtime: &tokio::runtime::Runtime,
    client: &mut Client,
    n: u64,
    make: impl Fn() -> Vec<u8>,
) -> (f64, f64) {
    let (mut count, mut bytes) = (0u64, 0u64);
    for _ in 0..n {
        let request = make();
        let (c0, b0) = (
            ALLOCATIONS.load(Ordering::Relaxed),
            ALLOCATED_BYTES.load(Ordering::Relaxed),
        );
        let (status, _) = runtime.block_on(client.call(&request));
        count += ALLOCATIONS.load(Ordering::Relaxed) - c0;
        bytes += ALLOCATED_BYTES.load(Ordering::Relaxed) - b0;
        assert_eq!(status, 200);
        drop(request);
    }
    (count as f64 / n as f64, bytes as f64 / n as f64)
}

fn pipeline(c: &mut Criterion) {
    // The logs as `kvmux serve` writes them off a terminal, into a sink: other events through
    // tracing, the per-request lines queued as data and formatted by the log writer's thread.
    let (log_writer, _log_flush) = kvmux::logs::batched(std::io::sink());
    kvmux::logs::install(
        log_writer.clone(),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        Box::new(log_writer.clone()),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .with_writer(move || log_writer.clone())
        .try_init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let mut client = runtime.block_on(start(dir.path(), usize::MAX));

    let health = wire(&workload(Target::Tencent).health());
    let mut report = Vec::new();
    report.push((
        "health",
        allocations(&runtime, &mut client, 2000, || health.clone()),
    ));
    c.bench_function("pipeline/health", |b| {
        b.iter(|| black_box(runtime.block_on(client.call(&health))))
    });

    for target in [Target::Tencent, Target::Aliyun, Target::Huawei] {
        let w = workload(target);
        let (create, _) = w.setup(0);
        for request in [create, w.request(Op::Put, 0)] {
            let (status, body) = runtime.block_on(client.call(&wire(&request)));
            assert!(!w.is_error(http::StatusCode::from_u16(status).expect("status"), &body));
        }
        let name = format!("{target:?}").to_lowercase();
        // Tencent's and Huawei's signatures may be sent again; Aliyun's nonce may not, so each
        // of its requests is signed in the (untimed) setup of its iteration.
        let check = |(status, body): (u16, Vec<u8>)| {
            assert!(!w.is_error(http::StatusCode::from_u16(status).expect("status"), &body));
        };
        check(runtime.block_on(client.call(&wire(&w.request(Op::Get, 0)))));
        report.push((
            match target {
                Target::Tencent => "tencent get",
                Target::Aliyun => "aliyun get",
                _ => "huawei get",
            },
            allocations(&runtime, &mut client, 2000, || wire(&w.request(Op::Get, 0))),
        ));
        c.bench_function(&format!("pipeline/{name} signed get 1 KiB"), |b| {
            b.iter_batched(
                || wire(&w.request(Op::Get, 0)),
                |request| check(runtime.block_on(client.call(&request))),
                BatchSize::SmallInput,
            )
        });
    }
    // The same Tencent get with the inspector off (`inspector_capacity = 0`): its share.
    let off_dir = tempfile::tempdir().expect("dir");
    let mut off = runtime.block_on(start(off_dir.path(), 0));
    let w = workload(Target::Tencent);
    let (create, _) = w.setup(0);
    for request in [create, w.request(Op::Put, 0)] {
        runtime.block_on(off.call(&wire(&request)));
    }
    report.push((
        "tencent get, inspector off",
        allocations(&runtime, &mut off, 2000, || wire(&w.request(Op::Get, 0))),
    ));
    eprintln!("\nallocations per request through the whole pipeline (client side included: one read buffer copy)");
    for (name, (count, bytes)) in report {
        eprintln!("  {name:<28} {count:>7.1} allocations  {bytes:>9.0} bytes");
    }
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
