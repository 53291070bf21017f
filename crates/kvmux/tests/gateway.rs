//! The gateway's own behaviour: admin API, dispatch, body limits, absolute-form targets.

mod common;

use common::{raw_exchange, rss_kib, Server, AUTH_OFF};
use serde_json::json;

#[test]
fn a_3_gb_content_length_is_refused_without_reading_or_allocating_it() {
    let s = Server::start(AUTH_OFF);
    let before = rss_kib(s.pid());
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nX-TC-Action: EdgeKVPut\r\n\
         X-TC-Version: 2022-09-01\r\nContent-Length: 3000000000\r\n\r\n{{\"ZoneId\":",
        s.port
    );
    let reply = raw_exchange(s.port, head.as_bytes());
    // Tencent answers every error with HTTP 200 and its JSON envelope.
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("RequestSizeLimitExceeded"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
    let after = rss_kib(s.pid());
    assert!(
        after < before + 50 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // The server is still up.
    assert_eq!(
        common::agent()
            .get(&s.url("/_kvmux/health"))
            .call()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn a_chunked_body_is_cut_off_at_the_limit() {
    let s = Server::start(AUTH_OFF);
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nX-TC-Action: EdgeKVPut\r\n\
         X-TC-Version: 2022-09-01\r\nTransfer-Encoding: chunked\r\n\r\n",
        s.port
    )
    .into_bytes();
    let chunk = vec![b'a'; 1 << 20];
    // 64 MiB in 1 MiB chunks: more than any Tencent limit.
    for _ in 0..64 {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let reply = raw_exchange(s.port, &req);
    assert!(
        reply.contains("RequestSizeLimitExceeded"),
        "{}",
        &reply[..reply.len().min(500)]
    );
}

#[test]
fn unclaimed_requests_get_a_plain_400_naming_the_dialects() {
    let s = Server::start("");
    let mut r = common::agent().get(&s.url("/some/where")).call().unwrap();
    assert_eq!(r.status(), 400);
    let text = r.body_mut().read_to_string().unwrap();
    for name in ["tencent", "aliyun", "huawei"] {
        assert!(text.contains(name), "{text}");
    }
}

#[test]
fn admin_api_health_clock_reset_and_metrics() {
    let s = Server::start(AUTH_OFF);
    let agent = common::agent();
    let health: serde_json::Value = agent
        .get(&s.url("/_kvmux/health"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    let now = health["now"].as_u64().unwrap();

    let advanced: serde_json::Value = agent
        .post(&s.url("/_kvmux/clock/advance"))
        .send_json(json!({"seconds": 86_400}))
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let later = advanced["now"].as_u64().unwrap();
    assert!(
        (now + 86_400..now + 86_400 + 30).contains(&later),
        "{now} -> {later}"
    );
    let bad = agent
        .post(&s.url("/_kvmux/clock/advance"))
        .send_json(json!({"seconds": -5}))
        .unwrap();
    assert_eq!(bad.status(), 400);

    // An item with a TTL expires when the engine clock passes it.
    let r = s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ttl"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let r = s.tencent(
        "EdgeKVPut",
        json!({"ZoneId": "z", "Namespace": "ttl", "Key": "k", "Value": "v", "ExpirationTTL": 60}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let get = |s: &Server| {
        s.tencent(
            "EdgeKVGet",
            json!({"ZoneId": "z", "Namespace": "ttl", "Keys": ["k"]}),
        )["Data"][0]["Value"]
            .clone()
    };
    assert_eq!(get(&s), "v");
    agent
        .post(&s.url("/_kvmux/clock/advance"))
        .send_json(json!({"seconds": 61}))
        .unwrap();
    assert_eq!(get(&s), "");

    // Reset drops everything, namespaces included.
    assert_eq!(
        agent
            .post(&s.url("/_kvmux/reset"))
            .header("Content-Type", "application/json")
            .send_empty()
            .unwrap()
            .status(),
        200
    );
    let r = s.tencent(
        "EdgeKVGet",
        json!({"ZoneId": "z", "Namespace": "ttl", "Keys": ["k"]}),
    );
    assert_eq!(
        r["Error"]["Code"], "ResourceUnavailable.NamespaceNotFound",
        "{r}"
    );

    let metrics = agent
        .get(&s.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains(
            "kvmux_requests_total{dialect=\"tencent\",operation=\"EdgeKVPut\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("kvmux_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("kvmux_store_file_bytes"), "{metrics}");
    assert_eq!(
        agent.get(&s.url("/_kvmux/nope")).call().unwrap().status(),
        404
    );
}

#[test]
fn absolute_form_request_targets_are_served() {
    let s = Server::start(AUTH_OFF);
    let body = json!({"ZoneId": "z", "Namespace": "abs"}).to_string();
    let req = format!(
        "POST http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         X-TC-Action: CreateEdgeKVNamespace\r\nX-TC-Version: 2022-09-01\r\nX-TC-Timestamp: {ts}\r\n\
         Authorization: TC3-HMAC-SHA256 Credential=AKIDkvmuxdev/2026-01-01/teo/tc3_request, SignedHeaders=content-type;host, Signature=00\r\n\
         Connection: close\r\nContent-Length: {len}\r\n\r\n{body}",
        port = s.port,
        ts = kv_core::clock::wall_clock_secs(),
        len = body.len()
    );
    let reply = raw_exchange(s.port, req.as_bytes());
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains("RequestId") && !reply.contains("\"Error\""),
        "{reply}"
    );
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let s = Server::start("[limits]\nheader_timeout_secs = 1\n");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-TC-Act")
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    // The server closes the connection (possibly after a 408) once the header timeout passes.
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(5),
        "still open after {waited:?}"
    );
    assert_eq!(
        common::agent()
            .get(&s.url("/_kvmux/health"))
            .call()
            .unwrap()
            .status(),
        200
    );
}
