//! The in-process gateway of `kvmux::testing` (issue 16's Rust launcher): it serves all three
//! dialects, signed the way each vendor's SDK signs (the signers `kvmux bench` uses), in the
//! test's own runtime, with checkpoints, resets and the engine clock at hand; no child process.

mod common;

use std::time::Duration;

use bytes::Bytes;
use kvmux::testing::Server;
use kvmux_bench::workload::{Op, Target, Workload};

/// Sends a signed request from a blocking thread (ureq), so the gateway keeps the runtime.
async fn send(port: u16, request: http::Request<Bytes>) -> (u16, Vec<u8>) {
    tokio::task::spawn_blocking(move || {
        common::send_request(&common::agent(), port, request).expect("request")
    })
    .await
    .expect("sender")
}

fn workload(server: &Server, target: Target) -> Workload {
    Workload {
        target,
        host: server.host(),
        key_id: target.dev_key_id().into(),
        secret: "kvmuxdevsecret".into(),
        value: Bytes::from_static(b"in-process value"),
    }
}

fn port_of(server: &Server) -> u16 {
    server
        .host()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// Whether `key` (the workload's key 0) reads back with the workload's value.
async fn has_value(server: &Server, w: &Workload) -> bool {
    let (status, body) = send(port_of(server), w.request(Op::Get, 0)).await;
    !w.is_error(http::StatusCode::from_u16(status).expect("status"), &body)
        && String::from_utf8_lossy(&body).contains("in-process value")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dialect_is_served_in_process_and_checkpoints_restore_it() {
    let server = Server::start().await.expect("start");
    assert!(
        server.url().starts_with("http://127.0.0.1:"),
        "{}",
        server.url()
    );
    let port = port_of(&server);
    server.checkpoint("empty").await.expect("checkpoint");
    for target in [Target::Tencent, Target::Aliyun, Target::Huawei] {
        let w = workload(&server, target);
        let (create, puts) = w.setup(1);
        for request in std::iter::once(create).chain(puts) {
            let (status, body) = send(port, request).await;
            assert!(
                !w.is_error(http::StatusCode::from_u16(status).expect("status"), &body),
                "{target:?}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        if target != Target::Huawei {
            assert!(
                has_value(&server, &w).await,
                "{target:?} reads its value back"
            );
        }
    }
    let containers = server.engine().all_containers().await.expect("list");
    assert!(containers.len() >= 3, "{containers:?}");

    // Back to the empty state, exactly: the namespaces are gone with their items.
    server.restore("empty").await.expect("restore");
    assert!(server
        .engine()
        .all_containers()
        .await
        .expect("list")
        .iter()
        .all(|c| c.is_internal()));
    let w = workload(&server, Target::Tencent);
    assert!(!has_value(&server, &w).await);

    // The clock moves forward on demand.
    let before = server.engine().now();
    assert_eq!(server.advance_clock(3600), before + 3600);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_server_stops_listening() {
    let server = Server::start().await.expect("start");
    let port = port_of(&server);
    drop(server);
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        refused,
        "the port still accepts after the server was dropped"
    );
}

/// The load generator signs with the dev secret it names itself; it must be the gateway's.
#[test]
fn the_bench_signs_with_the_gateways_dev_secret() {
    assert_eq!(kvmux_bench::DEV_SECRET, kvmux::config::DEV_SECRET);
}
