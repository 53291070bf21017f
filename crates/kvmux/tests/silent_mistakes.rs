//! Mistakes that used to pass silently (issue 21): a fault rule naming an operation the dialect
//! does not have, a dialect nobody can reach for want of credentials, a second gateway on a held
//! data dir, a busy port that still left a data dir behind, and admin calls without a request id.
//! Each runs the real binary on 127.0.0.1 and a free port, stopped by its PID.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{agent, free_port, wait_bounded, Server};

/// Runs `kvmux ARGS` to its exit (bounded), with the environment that could redirect it removed.
fn run_kvmux(args: &[&str], config: &Path) -> Output {
    let dir = config.parent().expect("config dir");
    // The output goes to a scratch dir: the shipped config's dir is the repository's.
    let scratch = tempfile::tempdir().expect("scratch dir");
    let out = scratch.path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .args(args)
        .arg(config)
        .env_remove("KVMUX_LISTEN")
        .env_remove("KVMUX_DATA_DIR")
        .env_remove("KVMUX_CONFIG")
        .env_remove("KVMUX_STORAGE")
        .env_remove("KVMUX_ADMIN_TOKEN")
        .current_dir(dir)
        .stdout(Stdio::from(
            std::fs::File::create(out.join("run.out")).expect("out"),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(out.join("run.err")).expect("err"),
        ))
        .spawn()
        .expect("spawn kvmux");
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    Output {
        status,
        stdout: std::fs::read(out.join("run.out")).unwrap_or_default(),
        stderr: std::fs::read(out.join("run.err")).unwrap_or_default(),
    }
}

fn post_fault(server: &Server, rule: &str) -> (u16, String, serde_json::Value) {
    let mut resp = agent()
        .post(&server.url("/_kvmux/faults"))
        .header("Content-Type", "application/json")
        .send(rule)
        .expect("post fault");
    let id = resp
        .headers()
        .get("x-kvmux-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: serde_json::Value = resp.body_mut().read_json().expect("json");
    (resp.status().as_u16(), id, body)
}

#[test]
fn a_fault_rule_naming_an_operation_the_dialect_lacks_is_refused_with_the_valid_ones() {
    let server = Server::start("[dialects]\naliyun = false\n");
    let (status, _, body) = post_fault(
        &server,
        r#"{"dialect":"huawei","operation":"put_kv","error":"throttle"}"#,
    );
    assert_eq!(status, 400, "{body}");
    // The list is the dialect's own table (what `Dialect::operations` returns).
    assert_eq!(
        body["error"],
        format!(
            "operation \"put_kv\" is not a huawei operation; valid operations \
             (case-insensitive): huawei: {}",
            kv_huawei::router::Operation::NAMES.join(", ")
        )
    );
    assert!(kv_huawei::router::Operation::NAMES.contains(&"put-kv"));
    // Without a dialect, the operation must be one of an enabled dialect's; the list names each.
    let (status, _, body) = post_fault(&server, r#"{"operation":"PutKv","error":"internal"}"#);
    assert_eq!(status, 400, "{body}");
    let message = body["error"].as_str().expect("error text");
    assert!(
        message.starts_with(
            "operation \"PutKv\" is not an operation of any enabled dialect; valid operations \
             (case-insensitive): tencent: "
        ),
        "{message}"
    );
    assert!(message.contains("; huawei: "), "{message}");
    assert!(message.contains("EdgeKVPut"), "{message}");
    // A dialect that is not enabled would never see the rule.
    let (status, _, body) = post_fault(&server, r#"{"dialect":"aliyun","error":"throttle"}"#);
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "dialect \"aliyun\" is not enabled on this gateway; enabled: tencent, huawei"
    );
    // Names that exist are taken, in any case, as before.
    let (status, _, body) = post_fault(
        &server,
        r#"{"dialect":"huawei","operation":"PUT-KV","error":"throttle"}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["operation"], "PUT-KV");
    let (status, _, body) = post_fault(&server, r#"{"operation":"edgekvget","latency_ms":1}"#);
    assert_eq!(status, 201, "{body}");
}

#[test]
fn admin_calls_carry_a_request_id_in_the_reply_and_the_log() {
    let mut server = Server::start("");
    let (status, id, _) = post_fault(&server, r#"{"error":"throttle","dialect":"x"}"#);
    assert_eq!(status, 400);
    assert_eq!(id.len(), 36, "a UUID: {id:?}");
    let resp = agent()
        .get(&server.url("/_kvmux/faults"))
        .call()
        .expect("get faults");
    assert_eq!(resp.status(), 200);
    let second = resp
        .headers()
        .get("x-kvmux-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id")
        .to_string();
    assert_ne!(id, second, "one id per call");
    // A refused call (wrong content type) has one too.
    let resp = agent()
        .post(&server.url("/_kvmux/faults"))
        .send("{}")
        .expect("post");
    assert_eq!(resp.status(), 415);
    let refused = resp
        .headers()
        .get("x-kvmux-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id on a refusal")
        .to_string();
    server.terminate();
    let log = server.log();
    for (id, status) in [(&id, "400"), (&second, "200"), (&refused, "415")] {
        let line = log
            .lines()
            .find(|l| l.contains("admin call") && l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("no admin call line with {id} in\n{log}"));
        assert!(line.contains(&format!("status={status}")), "{line}");
        // The per-request line (metrics and latency) carries the same id.
        assert!(
            log.lines().any(|l| l.contains(" request ")
                && l.contains("dialect=\"admin\"")
                && l.contains(&format!("request_id={id}"))),
            "{log}"
        );
    }
}

const ONLY_TENCENT: &str = "[[credentials]]\ndialect = \"tencent\"\nid = \"AKIDmine\"\n\
                            secret = \"my-secret\"\naccount = \"team\"\n";

#[test]
fn a_dialect_without_credentials_is_reported_by_check_config_and_at_start_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("kvmux.toml");
    std::fs::write(&config, ONLY_TENCENT).expect("config");
    let out = run_kvmux(&["check-config"], &config);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        warnings,
        ["aliyun", "huawei"]
            .map(|d| format!(
                "kvmux: warning: no [[credentials]] for the {d} dialect: every {d} request will \
                 be refused; add a [[credentials]] with dialect = \"{d}\" (or one at runtime \
                 with POST /_kvmux/credentials), set [auth] auto_accounts = true, or turn it \
                 off with [dialects] {d} = false"
            ))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    // The shipped config (dev key pairs for every dialect) warns about nothing.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kvmux.toml");
    let out = run_kvmux(&["check-config"], &shipped.canonicalize().expect("shipped"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    let mut server = Server::start(ONLY_TENCENT);
    server.terminate();
    let log = server.log();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("no [[credentials]] for the"))
        .collect();
    assert_eq!(warned.len(), 2, "{log}");
    assert!(warned[0].contains("for the aliyun dialect"), "{log}");
    assert!(warned[1].contains("for the huawei dialect"), "{log}");
    // The default credentials start without that warning.
    let mut quiet = Server::start("");
    quiet.terminate();
    assert!(
        !quiet.log().contains("no [[credentials]]"),
        "{}",
        quiet.log()
    );
}

#[test]
fn a_second_serve_on_a_held_data_dir_names_the_holder_and_the_online_snapshot() {
    let first = Server::start("");
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("second.toml");
    let data = first.dir.join("data");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n",
            free_port(),
            data.display()
        ),
    )
    .expect("config");
    let out = run_kvmux(&["serve", "--config"], &config);
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "kvmux: another kvmux (or process) holds {}; stop it, or use its online snapshot: \
             GET /_kvmux/snapshot",
            data.display()
        )
    );
    // The first gateway is unharmed.
    let resp = agent()
        .get(&first.url("/_kvmux/health"))
        .call()
        .expect("health");
    assert_eq!(resp.status(), 200);
}

#[test]
fn serve_on_a_busy_port_exits_without_creating_the_data_dir() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("fresh").join("data");
    let config = tmp.path().join("kvmux.toml");
    // A self-signed certificate would also be written under the data dir: nothing of it either.
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[tls]\nself_signed = true\n",
            data.display()
        ),
    )
    .expect("config");
    let out = run_kvmux(&["serve", "--config"], &config);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("kvmux: cannot listen on 127.0.0.1:{port}: ")),
        "{stderr}"
    );
    assert!(!tmp.path().join("fresh").exists(), "nothing created");
    drop(busy);
}
