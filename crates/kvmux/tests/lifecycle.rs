//! Data survives a graceful stop and a SIGKILL; the gateway starts with no config at all.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{Server, AUTH_OFF};
use serde_json::json;

const ZONE: &str = "zone-lifecycle";

fn create_namespace(s: &Server, ns: &str) {
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": ZONE, "Namespace": ns}),
    );
    assert!(r.get("Error").is_none(), "create failed: {r}");
}

fn put(s: &Server, ns: &str, key: &str, value: &str) -> bool {
    let r = s.tencent(
        "EdgeKVPut",
        json!({"ZoneId": ZONE, "Namespace": ns, "Key": key, "Value": value}),
    );
    r.get("Error").is_none()
}

/// Reads keys back in pages of 20 (the vendor's maximum per EdgeKVGet).
fn get_all(s: &Server, ns: &str, keys: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(20) {
        let r = s.tencent(
            "EdgeKVGet",
            json!({"ZoneId": ZONE, "Namespace": ns, "Keys": chunk}),
        );
        let data = r["Data"]
            .as_array()
            .unwrap_or_else(|| panic!("no Data in {r}"));
        assert_eq!(data.len(), chunk.len());
        for item in data {
            let value = item["Value"].as_str().unwrap_or_default().to_string();
            if !value.is_empty() {
                out.insert(item["Key"].as_str().unwrap_or_default().to_string(), value);
            }
        }
    }
    out
}

#[test]
fn sigterm_drains_and_a_restart_reads_everything_back() {
    let mut s = Server::start(AUTH_OFF);
    create_namespace(&s, "graceful");
    let mut expected = BTreeMap::new();
    for i in 0..150 {
        let (k, v) = (
            format!("key-{i:04}"),
            format!("value {i} {}", "x".repeat(i % 50)),
        );
        assert!(put(&s, "graceful", &k, &v));
        expected.insert(k, v);
    }
    let status = s.terminate();
    assert!(
        status.success(),
        "kvmux exited with {status} on SIGTERM; log:\n{}",
        s.log()
    );
    assert!(
        s.log().contains("kvmux stopped"),
        "no clean-stop line in the log"
    );
    s.restart();
    let keys: Vec<String> = expected.keys().cloned().collect();
    assert_eq!(get_all(&s, "graceful", &keys), expected);
}

#[test]
fn sigkill_after_acknowledged_writes_loses_none_of_them() {
    let mut s = Server::start(AUTH_OFF);
    create_namespace(&s, "killed");
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let port = s.port;
    // Eight concurrent writers so that group commit merges their batches.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let acked = acked.clone();
            std::thread::spawn(move || {
                let agent = common::agent();
                for i in 0..40 {
                    let (k, v) = (format!("w{w}-{i:03}"), format!("payload-{w}-{i}"));
                    let body = json!({"ZoneId": ZONE, "Namespace": "killed", "Key": k, "Value": v});
                    let resp = agent
                        .post(&format!("http://127.0.0.1:{port}/"))
                        .header("Content-Type", "application/json")
                        .header("X-TC-Action", "EdgeKVPut")
                        .header("X-TC-Version", "2022-09-01")
                        .header("X-TC-Timestamp", &kv_core::clock::wall_clock_secs().to_string())
                        .header(
                            "Authorization",
                            "TC3-HMAC-SHA256 Credential=AKIDkvmuxdev/2026-01-01/teo/tc3_request, SignedHeaders=content-type;host, Signature=00",
                        )
                        .send(body.to_string());
                    if let Ok(mut r) = resp {
                        let v: serde_json::Value = r.body_mut().read_json().unwrap_or_default();
                        if v["Response"].get("RequestId").is_some() && v["Response"].get("Error").is_none() {
                            acked.lock().unwrap().insert(k, v_clone(&body));
                        }
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread");
    }
    s.kill();
    s.restart();
    let acked = acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        320,
        "every write should have been acknowledged before the kill"
    );
    let keys: Vec<String> = acked.keys().cloned().collect();
    assert_eq!(get_all(&s, "killed", &keys), acked);
}

fn v_clone(body: &serde_json::Value) -> String {
    body["Value"].as_str().unwrap_or_default().to_string()
}

#[test]
fn with_no_config_and_no_flags_it_answers_health_on_9090() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("KVMUX_LISTEN")
        .env_remove("KVMUX_DATA_DIR")
        .env_remove("KVMUX_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let agent = common::agent();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut health = None;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("kvmux exited with {status}: is 127.0.0.1:9090 already in use?");
        }
        if let Ok(mut r) = agent.get("http://127.0.0.1:9090/_kvmux/health").call() {
            health = Some(r.body_mut().read_json::<serde_json::Value>().unwrap());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = common::wait_bounded(&mut child, std::time::Duration::from_secs(15));
    let health = health.expect("no health answer on 127.0.0.1:9090");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["dialects"], json!(["tencent", "aliyun", "huawei"]));
    assert!(status.success());
    // The built-in default data dir is `data/` under the working directory.
    assert!(dir.path().join("data").join("kvmux.redb").exists());
}
