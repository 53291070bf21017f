//! The test-harness start-up: `storage = "memory"` (config, `--storage`, `KVMUX_STORAGE`), port 0
//! with `--ready-file`, the `kvmux ready <url>` first line, and the promise that a memory gateway
//! writes nothing to disk. Each gateway runs in an empty temp dir as its working directory, so a
//! stray `data/` or certificate shows up as a file there.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A gateway started by a test: the child, its stdout, and where its ready file goes.
struct Gateway {
    child: Child,
    stdout: Option<BufReader<ChildStdout>>,
    ready_file: PathBuf,
}

impl Gateway {
    /// `kvmux serve ARGS` with `cwd` as the working directory and no KVMUX_* variables but
    /// `env`; stdout piped (to read the ready line), stderr to a file beside the ready file.
    fn spawn(cwd: &Path, side: &Path, args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kvmux"));
        command.arg("serve").args(args).current_dir(cwd);
        for name in [
            "KVMUX_LISTEN",
            "KVMUX_DATA_DIR",
            "KVMUX_CONFIG",
            "KVMUX_STORAGE",
            "KVMUX_ADMIN_TOKEN",
        ] {
            command.env_remove(name);
        }
        command.envs(env.iter().copied());
        let stderr = std::fs::File::create(side.join("stderr.txt")).unwrap();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().map(BufReader::new);
        Gateway {
            child,
            stdout,
            ready_file: side.join("ready.json"),
        }
    }

    /// Polls the ready file as a launcher would; every read that finds the file must find a
    /// whole JSON object (the write is atomic), never a prefix of one.
    fn wait_ready(&mut self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.ready_file) {
                return serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("a partial ready file was visible: {text:?}: {e}"));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("kvmux exited before it was ready: {status}");
            }
            assert!(Instant::now() < deadline, "no ready file within 30 s");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn first_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.as_mut().unwrap().read_line(&mut line).unwrap();
        line
    }

    /// SIGTERM, then the exit status; stdout is drained so the gateway never blocks on it.
    fn terminate(&mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        if let Some(mut out) = self.stdout.take() {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut rest);
        }
        common::wait_bounded(&mut self.child, Duration::from_secs(15))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One Tencent action against `url`, with auth off in the config.
fn tencent(url: &str, action: &str, body: Value) -> Value {
    let mut resp = common::agent()
        .post(&format!("{url}/"))
        .header("Content-Type", "application/json")
        .header("X-TC-Action", action)
        .header("X-TC-Version", "2022-09-01")
        .header("X-TC-Timestamp", &kv_core::clock::wall_clock_secs().to_string())
        .header(
            "Authorization",
            "TC3-HMAC-SHA256 Credential=AKIDkvmuxdev/2026-01-01/teo/tc3_request, SignedHeaders=content-type;host, Signature=00",
        )
        .send(body.to_string())
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.body_mut().read_json().unwrap();
    v["Response"].clone()
}

/// Writes an item and reads it back through the gateway at `url`.
fn put_and_get(url: &str) {
    let r = tencent(
        url,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "n"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let r = tencent(
        url,
        "EdgeKVPut",
        json!({"ZoneId": "z", "Namespace": "n", "Key": "k", "Value": "v", "ExpirationTTL": 600}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let r = tencent(
        url,
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "n", "Keys": ["k"]}),
    );
    assert_eq!(r["Data"][0]["Value"], "v", "{r}");
}

#[test]
fn port_0_writes_the_ready_file_and_the_first_stdout_line_and_memory_leaves_no_files() {
    let cwd = tempfile::tempdir().unwrap();
    let side = tempfile::tempdir().unwrap();
    let config = side.path().join("k.toml");
    // data_dir inside the cwd: were the memory store to touch it, the cwd would not be empty.
    std::fs::write(&config, "data_dir = \"data\"\n[auth]\nmode = \"off\"\n").unwrap();
    let ready_arg = side.path().join("ready.json");
    let mut gw = Gateway::spawn(
        cwd.path(),
        side.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--storage",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
            ready_arg.to_str().unwrap(),
        ],
        &[],
    );
    let ready = gw.wait_ready();

    // Exactly the documented object, fields in the documented order.
    let object = ready.as_object().unwrap();
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "{ready}");
    let text = std::fs::read_to_string(&gw.ready_file).unwrap();
    let host = ready["host"].as_str().unwrap().to_string();
    let port: u16 = host.strip_prefix("127.0.0.1:").unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let url = format!("http://127.0.0.1:{port}");
    assert_eq!(
        text,
        format!(
            r#"{{"url":"{url}","host":"{host}","pid":{},"version":"{}"}}"#,
            gw.child.id(),
            env!("CARGO_PKG_VERSION")
        )
    );
    // The first line on stdout, before any log line.
    assert_eq!(gw.first_line(), format!("kvmux ready {url}\n"));

    // It serves, from memory: health, then a write and a read with a TTL.
    let health = common::agent()
        .get(&format!("{url}/_kvmux/health"))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200);
    put_and_get(&url);

    // The ready file's directory holds only the ready file (and our stderr and config): the
    // temporary it was renamed from is gone.
    assert_eq!(
        entries(side.path()),
        ["k.toml", "ready.json", "stderr.txt"],
        "leftover files beside the ready file"
    );
    assert!(gw.terminate().success());
    assert!(
        entries(cwd.path()).is_empty(),
        "a memory gateway wrote to its working directory: {:?}",
        entries(cwd.path())
    );
    // A clean stop removes the ready file, so a later launcher never reads a dead port from it.
    assert!(
        !gw.ready_file.exists(),
        "the ready file outlived the gateway"
    );
}

/// `--ready-file` and nothing else: no config file exists (none given, none at
/// config/kvmux.toml), so the gateway runs on memory with the built-in defaults and writes no
/// data dir. KVMUX_LISTEN picks port 0 here only so the test never collides on 9090.
#[test]
fn a_ready_file_alone_runs_a_memory_gateway_with_no_config_file() {
    let cwd = tempfile::tempdir().unwrap();
    let side = tempfile::tempdir().unwrap();
    let ready_arg = side.path().join("ready.json");
    let mut gw = Gateway::spawn(
        cwd.path(),
        side.path(),
        &["--ready-file", ready_arg.to_str().unwrap()],
        &[("KVMUX_LISTEN", "127.0.0.1:0")],
    );
    let ready = gw.wait_ready();
    let url = ready["url"].as_str().unwrap().to_string();
    assert_eq!(gw.first_line(), format!("kvmux ready {url}\n"));
    // The built-in defaults: the dev credentials and enforced auth, so an unsigned request is
    // refused with Tencent's own error, and the admin API answers on loopback.
    let r = tencent(
        &url,
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "n"}),
    );
    assert_eq!(r["Error"]["Code"], "AuthFailure.SignatureFailure", "{r}");
    let mut health = common::agent()
        .get(&format!("{url}/_kvmux/health"))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200);
    let body: Value = health.body_mut().read_json().unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert!(gw.terminate().success());
    assert!(entries(cwd.path()).is_empty(), "{:?}", entries(cwd.path()));
    let log = std::fs::read_to_string(side.path().join("stderr.txt")).unwrap();
    assert!(log.is_empty(), "stderr: {log}");
}

/// Without a ready file and with no config the default stays the redb file under data/, as
/// DESIGN.md promises; a ready file with --data-dir keeps redb too (the user asked for a dir).
#[test]
fn a_ready_file_with_a_data_dir_keeps_redb() {
    let cwd = tempfile::tempdir().unwrap();
    let side = tempfile::tempdir().unwrap();
    let ready_arg = side.path().join("ready.json");
    let mut gw = Gateway::spawn(
        cwd.path(),
        side.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "d",
            "--ready-file",
            ready_arg.to_str().unwrap(),
        ],
        &[],
    );
    gw.wait_ready();
    assert!(gw.terminate().success());
    assert_eq!(entries(cwd.path()), ["d"]);
    assert!(cwd.path().join("d/kvmux.redb").exists());
}

#[test]
fn kvmux_storage_env_selects_memory_and_a_bad_value_is_refused() {
    let cwd = tempfile::tempdir().unwrap();
    let side = tempfile::tempdir().unwrap();
    let config = side.path().join("k.toml");
    std::fs::write(&config, "data_dir = \"data\"\n[auth]\nmode = \"off\"\n").unwrap();
    let ready_arg = side.path().join("ready.json");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--ready-file",
        ready_arg.to_str().unwrap(),
    ];
    let mut gw = Gateway::spawn(
        cwd.path(),
        side.path(),
        &args,
        &[("KVMUX_STORAGE", "memory")],
    );
    let ready = gw.wait_ready();
    put_and_get(ready["url"].as_str().unwrap());
    assert!(gw.terminate().success());
    assert!(entries(cwd.path()).is_empty(), "{:?}", entries(cwd.path()));

    let mut bad = Gateway::spawn(
        cwd.path(),
        side.path(),
        &args,
        &[("KVMUX_STORAGE", "memroy")],
    );
    let status = common::wait_bounded(&mut bad.child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(2));
    let err = std::fs::read_to_string(side.path().join("stderr.txt")).unwrap();
    assert!(
        err.contains("storage = \"memroy\"") && err.contains("\"memory\""),
        "{err}"
    );
    assert!(entries(cwd.path()).is_empty(), "{:?}", entries(cwd.path()));
}

/// A self-signed certificate would be written under data_dir; on memory that is refused unless
/// `[tls] write_cert` names the file, and then the ready URL is https.
#[test]
fn memory_with_tls_writes_only_the_named_certificate_and_reports_https() {
    let cwd = tempfile::tempdir().unwrap();
    let side = tempfile::tempdir().unwrap();
    let ready_arg = side.path().join("ready.json");
    let mut refused = Gateway::spawn(
        cwd.path(),
        side.path(),
        &[
            "--storage",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--tls-self-signed",
            "--ready-file",
            ready_arg.to_str().unwrap(),
        ],
        &[],
    );
    let status = common::wait_bounded(&mut refused.child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(2));
    let err = std::fs::read_to_string(side.path().join("stderr.txt")).unwrap();
    assert!(err.contains("write_cert"), "{err}");
    assert!(entries(cwd.path()).is_empty(), "{:?}", entries(cwd.path()));

    let config = side.path().join("k.toml");
    let cert = side.path().join("cert.pem");
    std::fs::write(
        &config,
        format!(
            "storage = \"memory\"\n[tls]\nself_signed = true\nwrite_cert = \"{}\"\n",
            cert.display()
        ),
    )
    .unwrap();
    let mut gw = Gateway::spawn(
        cwd.path(),
        side.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
            ready_arg.to_str().unwrap(),
        ],
        &[],
    );
    let ready = gw.wait_ready();
    let url = ready["url"].as_str().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{ready}");
    assert_eq!(gw.first_line(), format!("kvmux ready {url}\n"));
    assert!(cert.exists());
    assert!(gw.terminate().success());
    assert!(entries(cwd.path()).is_empty(), "{:?}", entries(cwd.path()));
}

#[test]
fn check_config_says_which_storage_and_offline_commands_refuse_memory() {
    let side = tempfile::tempdir().unwrap();
    let config = side.path().join("k.toml");
    std::fs::write(&config, "storage = \"memory\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("storage = \"memory\""), "{text}");
    assert!(
        text.contains("# storage: memory (nothing written to disk"),
        "{text}"
    );

    let redb = side.path().join("r.toml");
    std::fs::write(&redb, "data_dir = \"somewhere\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .arg("check-config")
        .arg(&redb)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "# storage: redb file {}",
            Path::new("somewhere").join("kvmux.redb").display()
        )),
        "{text}"
    );

    // A memory store exists only inside a running gateway: an offline export would silently
    // print nothing, so it is refused and points at the admin API instead.
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .args(["export", "--config"])
        .arg(&config)
        .current_dir(side.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("/_kvmux/snapshot"), "{err}");
}
