//! Runs the real kvmux binary for end-to-end tests: a free 127.0.0.1 port, a temp data dir, and a
//! process that is stopped by its PID when the test ends.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    pub config: PathBuf,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

/// Auth off keeps these tests about the gateway, not about signing (the dialects test that).
pub const AUTH_OFF: &str = "[auth]\nmode = \"off\"\n";

impl Server {
    /// Starts kvmux with `extra` appended to a config naming a free port and a fresh data dir.
    pub fn start(extra: &str) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Server::with_dir(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts kvmux on an existing data dir (for restart tests).
    pub fn with_dir(dir: &Path, extra: &str) -> Server {
        let port = free_port();
        let config = dir.join("kvmux.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{extra}\n",
                dir.join("data").display()
            ),
        )
        .expect("write config");
        let mut s = Server {
            port,
            dir: dir.to_path_buf(),
            config,
            child: None,
            _tmp: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("kvmux.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_kvmux"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env_remove("KVMUX_LISTEN")
            .env_remove("KVMUX_DATA_DIR")
            .env_remove("KVMUX_CONFIG")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn kvmux");
        self.child = Some(child);
        wait_healthy(self.port, self.child.as_mut());
    }

    /// Stops with SIGTERM and returns the exit status (bounded wait).
    pub fn terminate(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let status = wait_bounded(child, Duration::from_secs(15));
        self.child = None;
        status
    }

    /// Stops with SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same config and data dir again.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        self.spawn();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kvmux.log")).unwrap_or_default()
    }

    /// One Huawei KVS operation on `store` (named by `?store_name=`, so it needs no signature);
    /// returns the status and the BSON reply (empty when the body is).
    pub fn huawei(&self, store: &str, op: &str, body: bson::Document) -> (u16, bson::Document) {
        let mut r = agent()
            .post(&self.url(&format!("/v1/{op}?store_name={store}")))
            .header("Content-Type", "application/bson")
            .send(body.to_vec().expect("bson"))
            .expect("huawei request");
        let status = r.status().as_u16();
        let bytes = r.body_mut().read_to_vec().expect("body");
        let doc = if bytes.is_empty() {
            bson::Document::new()
        } else {
            bson::Document::from_reader(&mut bytes.as_slice()).expect("bson reply")
        };
        (status, doc)
    }

    /// One Tencent action with auth off; returns the inner `Response` object.
    pub fn tencent(&self, action: &str, body: serde_json::Value) -> serde_json::Value {
        let agent = agent();
        let mut resp = agent
            .post(&self.url("/"))
            .header("Content-Type", "application/json")
            .header("X-TC-Action", action)
            .header("X-TC-Version", "2022-09-01")
            .header("X-TC-Timestamp", &kv_core::clock::wall_clock_secs().to_string())
            .header(
                "Authorization",
                "TC3-HMAC-SHA256 Credential=AKIDkvmuxdev/2026-01-01/teo/tc3_request, SignedHeaders=content-type;host, Signature=00",
            )
            .send(body.to_string())
            .expect("tencent request");
        assert_eq!(resp.status(), 200);
        let v: serde_json::Value = resp.body_mut().read_json().expect("json");
        v["Response"].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn wait_healthy(port: u16, mut child: Option<&mut Child>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let agent = agent();
    while Instant::now() < deadline {
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("kvmux exited early with {status}");
            }
        }
        if let Ok(r) = agent
            .get(&format!("http://127.0.0.1:{port}/_kvmux/health"))
            .call()
        {
            if r.status() == 200 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("kvmux on port {port} did not become healthy within 30 s");
}

pub fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kvmux did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends raw bytes and reads the reply until the server closes (or 1 MiB, or 10 s). The write
/// runs on its own thread so that a reply sent before the request is complete (an early refusal)
/// is read at once, not after the write fails.
pub fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let request = request.to_vec();
    let write = std::thread::spawn(move || {
        // The server may close before the whole request is written: that is not an error here.
        let _ = writer.write_all(&request);
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 1 << 20 {
                    break;
                }
            }
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = write.join();
    String::from_utf8_lossy(&buf).into_owned()
}

/// Resident set size of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// `request`, built elsewhere with a bare path for its URI (e.g. signed by `kvmux_bench::workload`),
/// aimed at `url_of(path and query)` and with its body as ureq sends it.
pub fn aimed_at(
    request: http::Request<bytes::Bytes>,
    url_of: impl FnOnce(&str) -> String,
) -> http::Request<Vec<u8>> {
    let (mut parts, body) = request.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    parts.uri = url_of(&target).parse().expect("uri");
    http::Request::from_parts(parts, body.to_vec())
}

/// Sends a request built elsewhere (see [`aimed_at`]) to the server on `port`. A transport error
/// is returned rather than unwrapped, for tests that stop the server under load or treat a lost
/// answer as an unknown outcome.
pub fn send_request(
    agent: &ureq::Agent,
    port: u16,
    request: http::Request<bytes::Bytes>,
) -> Result<(u16, Vec<u8>), ureq::Error> {
    let mut resp = agent.run(aimed_at(request, |target| {
        format!("http://127.0.0.1:{port}{target}")
    }))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec()?;
    Ok((status, body))
}

/// A number from the environment (a long-mode size or a replay seed), else `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
