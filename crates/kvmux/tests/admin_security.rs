//! End to end through the real binary: the admin surface (`/_kvmux/*`, `/metrics`) is locked.
//!
//! - On a listener other than loopback it answers 401 without the `[admin] token` (the listen
//!   address decides, not the peer: these tests listen on 0.0.0.0 and connect over 127.0.0.1).
//! - `[admin] enabled = false` makes it 404; `[admin] listen` moves it to a port of its own.
//! - The public dev credentials do not start on 0.0.0.0 unless `allow_dev_credentials` says so.
//! - Even on loopback, a foreign `Host` (DNS rebinding) or `Origin` (another site's page) is
//!   refused, and a state-changing call must be `Content-Type: application/json`, which a
//!   cross-site form or simple `fetch` cannot send: refused calls change nothing.
//! - `clock/advance` refuses negative, fractional and too-large values, leaving the clock alone.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, raw_exchange, wait_bounded, Server, AUTH_OFF};
use serde_json::{json, Value};

const TOKEN: &str = "s3cret-admin-token-0123456789";

/// Own credentials, so a 0.0.0.0 listener is allowed to start.
const OWN_CREDENTIALS: &str = "[auth]\nmode = \"off\"\nallow_unverified = true\n[[credentials]]\ndialect = \"tencent\"\n\
                               id = \"AKIDops\"\nsecret = \"not-the-dev-secret\"\naccount = \"ops\"\n";

/// One raw HTTP/1.1 exchange: returns the status and the body (as JSON when it is JSON).
fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let reply = raw_exchange(port, request.as_bytes());
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"));
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into())),
    )
}

fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    send(port, "GET", path, headers, "")
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// A gateway started from a config of our own (any listen address), stopped when dropped.
struct Gateway {
    child: Child,
    dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts `config` (data_dir is added) and waits until `ready_port` answers HTTP at all.
    fn start(config: &str, ready_port: u16, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().expect("tmp");
        let mut child = spawn(dir.path(), config, env);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "kvmux exited with {status}: {}",
                    std::fs::read_to_string(dir.path().join("kvmux.log")).unwrap_or_default()
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", ready_port)).is_ok() {
                return Gateway { child, dir };
            }
            assert!(Instant::now() < deadline, "kvmux did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kvmux.log")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, config: &str, env: &[(&str, &str)]) -> Child {
    let path = dir.join("kvmux.toml");
    std::fs::write(
        &path,
        format!("data_dir = \"{}\"\n{config}", dir.join("data").display()),
    )
    .expect("config");
    let log = std::fs::File::create(dir.join("kvmux.log")).expect("log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmux"));
    cmd.args(["serve", "--config"])
        .arg(&path)
        .env_remove("KVMUX_LISTEN")
        .env_remove("KVMUX_DATA_DIR")
        .env_remove("KVMUX_CONFIG")
        .env_remove("KVMUX_ADMIN_TOKEN")
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn kvmux")
}

/// Every admin read that exposes data or state, and the calls that change it.
const PROTECTED: [(&str, &str); 7] = [
    ("POST", "/_kvmux/reset"),
    ("GET", "/_kvmux/snapshot"),
    ("GET", "/metrics"),
    ("GET", "/_kvmux/requests"),
    ("GET", "/_kvmux/api/containers"),
    ("GET", "/_kvmux/faults"),
    ("POST", "/_kvmux/clock/advance"),
];

fn call(port: u16, method: &str, path: &str, auth: Option<&str>) -> (u16, Value) {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let mut headers = vec![JSON];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    let body = if path.ends_with("advance") {
        r#"{"seconds": 0}"#
    } else {
        ""
    };
    send(port, method, path, &headers, body)
}

#[test]
fn a_public_listener_without_a_token_answers_401_to_every_admin_call() {
    let port = free_port();
    let gw = Gateway::start(
        &format!("listen = \"0.0.0.0:{port}\"\n{OWN_CREDENTIALS}"),
        port,
        &[],
    );
    for (method, path) in PROTECTED {
        let (status, reply) = call(port, method, path, None);
        assert_eq!(status, 401, "{method} {path}: {reply}");
        assert!(
            reply["error"]
                .as_str()
                .unwrap()
                .contains("KVMUX_ADMIN_TOKEN"),
            "{reply}"
        );
        // Even a token is no use when none is configured.
        assert_eq!(
            call(port, method, path, Some(TOKEN)).0,
            401,
            "{method} {path}"
        );
    }
    // Probes still work, but learn only that it is up; the dashboard page loads (and asks).
    let (status, health) = get(port, "/_kvmux/health", &[]);
    assert_eq!((status, health), (200, json!({"status": "ok"})));
    let (status, page) = get(port, "/_kvmux/ui", &[]);
    assert_eq!(status, 200);
    assert!(
        page.as_str().unwrap().contains("token"),
        "the page has the token prompt"
    );
    // Each call was logged with the peer, method, path and status.
    let log = gw.log();
    assert!(
        log.lines().any(|l| l.contains("admin call")
            && l.contains("peer=127.0.0.1:")
            && l.contains("method=POST")
            && l.contains("path=/_kvmux/reset")
            && l.contains("status=401")),
        "{log}"
    );
    assert!(
        log.contains("admin API locked"),
        "start-up says the mode: {log}"
    );
}

#[test]
fn the_configured_token_opens_admin_and_a_wrong_one_does_not() {
    let port = free_port();
    let _gw = Gateway::start(
        &format!("listen = \"0.0.0.0:{port}\"\n[admin]\ntoken = \"{TOKEN}\"\n{OWN_CREDENTIALS}"),
        port,
        &[],
    );
    for (method, path) in PROTECTED {
        let (status, reply) = call(port, method, path, Some(TOKEN));
        assert_eq!(status, 200, "{method} {path}: {reply}");
        for wrong in [
            "s3cret-admin-token-012345678",
            "x",
            "",
            &format!("{TOKEN}0"),
        ] {
            assert_eq!(
                call(port, method, path, Some(wrong)).0,
                401,
                "{method} {path} {wrong:?}"
            );
        }
        assert_eq!(call(port, method, path, None).0, 401, "{method} {path}");
    }
    // Another scheme carrying the right token is not a Bearer token.
    let basic = format!("Basic {TOKEN}");
    assert_eq!(get(port, "/metrics", &[("Authorization", &basic)]).0, 401);
    // With the token, health has its details.
    let (_, health) = get(
        port,
        "/_kvmux/health",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    );
    assert!(
        health["version"].is_string() && health["now"].is_u64(),
        "{health}"
    );
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health["uptime_secs"].is_u64(), "{health}");
    assert_eq!(
        health["dialects"],
        serde_json::json!(["tencent", "aliyun", "huawei"]),
        "{health}"
    );
    assert_eq!(health.as_object().map(|o| o.len()), Some(5), "{health}");
}

#[test]
fn the_token_from_the_environment_replaces_the_configured_one_even_on_loopback() {
    let port = free_port();
    let env_token = "from-the-environment-token";
    let _gw = Gateway::start(
        &format!("listen = \"127.0.0.1:{port}\"\n[admin]\ntoken = \"{TOKEN}\"\n{AUTH_OFF}"),
        port,
        &[("KVMUX_ADMIN_TOKEN", env_token)],
    );
    assert_eq!(call(port, "GET", "/metrics", Some(env_token)).0, 200);
    assert_eq!(call(port, "GET", "/metrics", Some(TOKEN)).0, 401);
    // A configured token is required on loopback too.
    assert_eq!(call(port, "GET", "/metrics", None).0, 401);
}

#[test]
fn disabled_admin_is_404_everywhere_and_the_data_api_still_works() {
    let port = free_port();
    let _gw = Gateway::start(
        &format!("listen = \"127.0.0.1:{port}\"\n[admin]\nenabled = false\n{AUTH_OFF}"),
        port,
        &[],
    );
    for (method, path) in PROTECTED
        .into_iter()
        .chain([("GET", "/_kvmux/health"), ("GET", "/_kvmux/ui")])
    {
        assert_eq!(call(port, method, path, None).0, 404, "{method} {path}");
    }
    let (status, reply) = send(
        port,
        "POST",
        "/",
        &[
            JSON,
            ("X-TC-Action", "CreateEdgeKVNamespace"),
            ("X-TC-Version", "2022-09-01"),
        ],
        r#"{"ZoneId": "z", "Namespace": "n"}"#,
    );
    assert_eq!(status, 200, "{reply}");
    assert!(reply["Response"].get("Error").is_none(), "{reply}");
}

#[test]
fn a_separate_admin_port_serves_only_admin_and_the_data_port_none() {
    let port = free_port();
    let admin_port = free_port();
    let _gw = Gateway::start(
        &format!(
            "listen = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n{AUTH_OFF}"
        ),
        port,
        &[],
    );
    // Wait for the admin listener too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", admin_port)).is_err() {
        assert!(Instant::now() < deadline, "no admin listener");
        std::thread::sleep(Duration::from_millis(50));
    }
    for (method, path) in PROTECTED
        .into_iter()
        .chain([("GET", "/_kvmux/health"), ("GET", "/_kvmux/ui")])
    {
        assert_eq!(
            call(port, method, path, None).0,
            404,
            "data port: {method} {path}"
        );
        assert_eq!(
            call(admin_port, method, path, None).0,
            200,
            "admin port: {method} {path}"
        );
    }
    // The vendor API is on the data port only.
    let tencent = [
        JSON,
        ("X-TC-Action", "CreateEdgeKVNamespace"),
        ("X-TC-Version", "2022-09-01"),
    ];
    let body = r#"{"ZoneId": "z", "Namespace": "n"}"#;
    assert_eq!(send(port, "POST", "/", &tencent, body).0, 200);
    assert_eq!(send(admin_port, "POST", "/", &tencent, body).0, 404);
}

#[test]
fn the_dev_credentials_do_not_start_on_a_public_listener_unless_allowed() {
    let port = free_port();
    for (config, env) in [
        // The built-in dev credentials on 0.0.0.0 in the file ...
        (format!("listen = \"0.0.0.0:{port}\"\n"), vec![]),
        // ... or a loopback file moved to 0.0.0.0 by KVMUX_LISTEN, as the Dockerfile did.
        (
            format!("listen = \"127.0.0.1:{port}\"\n"),
            vec![("KVMUX_LISTEN", format!("0.0.0.0:{port}"))],
        ),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut child = spawn(dir.path(), &config, &env);
        let status = wait_bounded(&mut child, Duration::from_secs(20));
        let log = std::fs::read_to_string(dir.path().join("kvmux.log")).unwrap();
        assert!(!status.success(), "{config}: {log}");
        assert!(
            log.contains("allow_dev_credentials") && log.contains("0.0.0.0"),
            "{config}: {log}"
        );
    }
    // check-config says the same about the file.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("k.toml");
    std::fs::write(&file, format!("listen = \"0.0.0.0:{port}\"\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allow_dev_credentials"));
    // Saying so explicitly starts it (admin stays locked: no token).
    let _gw = Gateway::start(
        &format!("listen = \"0.0.0.0:{port}\"\n[auth]\nallow_dev_credentials = true\n"),
        port,
        &[],
    );
    assert_eq!(call(port, "GET", "/metrics", None).0, 401);
}

/// A loopback gateway with one stored item, for the cross-site tests.
fn loopback_with_data() -> Server {
    let s = Server::start(&format!(
        "{AUTH_OFF}[admin]\nallowed_hosts = [\"kvmux.test\"]\n"
    ));
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "n"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let r = s.tencent(
        "EdgeKVPut",
        json!({"ZoneId": "z", "Namespace": "n", "Key": "k", "Value": "survives"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    s
}

fn stored(s: &Server) -> Value {
    s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "n", "Keys": ["k"]}),
    )["Data"][0]["Value"]
        .clone()
}

/// Whether a reset went through: the namespace itself is gone.
fn wiped(s: &Server) -> bool {
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "n", "Keys": ["k"]}),
    );
    r["Error"]["Code"].is_string()
}

fn engine_now(port: u16) -> u64 {
    let (status, reply) = send(
        port,
        "POST",
        "/_kvmux/clock/advance",
        &[JSON],
        r#"{"seconds": 0}"#,
    );
    assert_eq!(status, 200, "{reply}");
    reply["now"].as_u64().unwrap()
}

#[test]
fn a_foreign_host_or_origin_is_refused_even_on_loopback() {
    let s = loopback_with_data();
    let port = s.port;
    let own = format!("http://127.0.0.1:{port}");
    // DNS rebinding: the browser sends the attacker's name as Host.
    for host in [
        "attacker.example",
        "attacker.example:80",
        "localhost.attacker.example",
        "127.0.0.1.nip.io",
    ] {
        assert_eq!(
            get(port, "/_kvmux/snapshot", &[("Host", host)]).0,
            403,
            "{host}"
        );
        assert_eq!(
            send(port, "POST", "/_kvmux/reset", &[("Host", host), JSON], "").0,
            403,
            "{host}"
        );
    }
    // Another site's page, even sending JSON to a loopback name.
    for origin in [
        "http://attacker.example",
        "null",
        "http://127.0.0.1:1",
        "https://kvmux.test",
        "file://",
    ] {
        let (status, reply) = send(
            port,
            "POST",
            "/_kvmux/reset",
            &[("Origin", origin), JSON],
            "",
        );
        assert_eq!(status, 403, "{origin}: {reply}");
    }
    assert_eq!(stored(&s), "survives");
    // No Host at all (an HTTP/1.0 health check) is no browser: let through, unless it names an
    // Origin it cannot be the same as.
    let http10 = raw_exchange(port, b"GET /_kvmux/faults HTTP/1.0\r\n\r\n");
    assert!(
        http10.starts_with("HTTP/1.0 200") || http10.starts_with("HTTP/1.1 200"),
        "{http10}"
    );
    let http10 = raw_exchange(
        port,
        b"POST /_kvmux/reset HTTP/1.0\r\nOrigin: http://127.0.0.1\r\nContent-Type: application/json\r\n\r\n",
    );
    assert!(http10.contains(" 403 "), "{http10}");
    assert_eq!(stored(&s), "survives");
    // Loopback names, the listen address, allowed_hosts and the dashboard's own origin work.
    for (host, origin) in [
        ("localhost:1234".to_string(), None),
        ("app.localhost".into(), None),
        ("[::1]".into(), None),
        ("kvmux.test".into(), Some("http://kvmux.test")),
        (format!("127.0.0.1:{port}"), Some(own.as_str())),
    ] {
        let mut headers = vec![("Host", host.as_str())];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        assert_eq!(
            get(port, "/_kvmux/faults", &headers).0,
            200,
            "{host} {origin:?}"
        );
    }
    let (status, _) = send(
        port,
        "POST",
        "/_kvmux/reset",
        &[("Origin", own.as_str()), JSON],
        "",
    );
    assert_eq!(status, 200);
    assert!(wiped(&s), "the allowed reset went through");
}

#[test]
fn cross_site_simple_posts_are_refused_and_change_nothing() {
    let s = loopback_with_data();
    let port = s.port;
    let before = engine_now(port);
    for content_type in [
        None,
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| ("Content-Type", c))
            .into_iter()
            .collect();
        for (path, body) in [
            ("/_kvmux/reset", ""),
            ("/_kvmux/faults", r#"{"error": "internal"}"#),
            ("/_kvmux/clock/advance", r#"{"seconds": 86400}"#),
        ] {
            let (status, reply) = send(port, "POST", path, &headers, body);
            assert_eq!(status, 415, "{path} {content_type:?}: {reply}");
            assert!(
                reply["error"]
                    .as_str()
                    .unwrap()
                    .contains("application/json"),
                "{reply}"
            );
        }
        assert_eq!(
            send(port, "DELETE", "/_kvmux/requests", &headers, "").0,
            415
        );
    }
    assert_eq!(stored(&s), "survives", "a refused reset wiped nothing");
    assert_eq!(get(port, "/_kvmux/faults", &[]).1, json!({"faults": []}));
    assert!(engine_now(port) - before < 60, "the clock did not move");
    // JSON with parameters is JSON.
    let typed = [("Content-Type", "application/json; charset=utf-8")];
    assert_eq!(send(port, "POST", "/_kvmux/reset", &typed, "").0, 200);
    assert!(wiped(&s), "the allowed reset went through");
}

#[test]
fn clock_advance_refuses_negative_fractional_and_huge_values() {
    let s = Server::start(AUTH_OFF);
    let port = s.port;
    let before = engine_now(port);
    for seconds in [
        "1e19",
        "-5",
        "1.5",
        "3153600001",
        "18446744073709551615",
        "18446744073709551616",
        "\"60\"",
        "null",
    ] {
        let (status, reply) = send(
            port,
            "POST",
            "/_kvmux/clock/advance",
            &[JSON],
            &format!("{{\"seconds\": {seconds}}}"),
        );
        assert_eq!(status, 400, "{seconds}: {reply}");
        assert!(
            reply["error"].as_str().unwrap().contains("3153600000"),
            "{seconds}: {reply}"
        );
    }
    let after = engine_now(port);
    assert!(
        (before..before + 60).contains(&after),
        "{before} -> {after}"
    );
    // The bound itself is accepted, and repeated it stops short of the clock's limit with a 400.
    let (status, reply) = send(
        port,
        "POST",
        "/_kvmux/clock/advance",
        &[JSON],
        r#"{"seconds": 3153600000}"#,
    );
    assert_eq!(status, 200, "{reply}");
    assert!(reply["now"].as_u64().unwrap() >= before + 3_153_600_000);
    let mut refused = None;
    for i in 0..20 {
        let (status, reply) = send(
            port,
            "POST",
            "/_kvmux/clock/advance",
            &[JSON],
            r#"{"seconds": 3153600000}"#,
        );
        if status != 200 {
            refused = Some((i, status, reply));
            break;
        }
    }
    let (_, status, reply) = refused.expect("the clock's ceiling is reached within 1,000 years");
    assert_eq!(status, 400, "{reply}");
    let now = engine_now(port);
    assert!(
        now > before + 900 * 365 * 86_400,
        "never wrapped back: {now}"
    );
}

/// Readiness: while the store cannot write (its disk is full), `GET /_kvmux/health` answers 503
/// with the reason, so a load balancer or Kubernetes takes the gateway out of service; once a
/// write succeeds again it is 200. Fills a real 4 MiB tmpfs (mounting needs root; without it
/// the test says why and skips).
#[test]
fn health_is_503_with_the_reason_while_the_store_cannot_write() {
    let dir = tempfile::tempdir().expect("tmp");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(dir.path())
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        other => {
            eprintln!("skipping: cannot mount a tmpfs ({other:?}); run as root to cover it");
            return;
        }
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _unmount = Unmount(dir.path());
    let ballast = dir.path().join("ballast");
    std::fs::write(&ballast, vec![0x5a; 1536 << 10]).expect("ballast");
    let s = Server::with_dir(dir.path(), AUTH_OFF);
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "n"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let value = "v".repeat(32 << 10);
    let put = |key: &str| {
        s.tencent(
            "EdgeKVPut",
            json!({"ZoneId": "z", "Namespace": "n", "Key": key, "Value": value}),
        )
    };
    let full = (0..1_000).any(|i| put(&format!("k{i}")).get("Error").is_some());
    assert!(full, "4 MiB never filled up");
    let (status, health) = get(s.port, "/_kvmux/health", &[]);
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "unavailable");
    assert!(
        health["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{health}"
    );
    // Space returns and a write succeeds: ready again.
    std::fs::remove_file(&ballast).expect("remove ballast");
    let deadline = Instant::now() + Duration::from_secs(20);
    while put("after").get("Error").is_some() {
        assert!(Instant::now() < deadline, "writes never resumed");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get(s.port, "/_kvmux/health", &[]).0, 200);
}
