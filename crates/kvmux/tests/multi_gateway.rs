//! Several stateless gateways on one PostgreSQL database, through the real binary: three kvmux
//! processes on their own ports share one schema; a write through one is read at once through
//! another (Tencent and Aliyun dialects); a clock advance through one is seen by all; exactly one
//! of them holds the sweeper lease, and when it stops another takes over and sweeps.
//!
//! The server is `KV_TEST_POSTGRES` when set; otherwise one is started for this test binary with
//! scripts/postgres.sh and stopped by a watcher when the binary exits.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{agent, Server, AUTH_OFF};
use serde_json::{json, Value};

/// The PostgreSQL bootstrap the engine's own tests use (start, watcher, schemas).
use kv_testkit::postgres as pg;
use pg::{fresh_schema, server_url};

fn storage_url(schema: &str) -> String {
    pg::with_schema(server_url(), schema)
}

/// One SQL query through psql, first column of every row.
fn sql(schema: &str, query: &str) -> Vec<String> {
    let out = Command::new("psql")
        .arg("-XtA")
        .arg(server_url())
        .arg("-c")
        .arg(format!("SET search_path TO {schema}; {query}"))
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && *l != "SET")
        .map(String::from)
        .collect()
}

fn start_gateways(schema: &str, n: usize) -> Vec<Server> {
    let extra = format!("storage = \"{}\"\n{AUTH_OFF}", storage_url(schema));
    (0..n).map(|_| Server::start(&extra)).collect()
}

fn aliyun(s: &Server, query: &str) -> (u16, Value) {
    let mut r = agent()
        .post(&s.url(&format!("/?Version=2024-09-10&{query}")))
        .send_empty()
        .expect("aliyun request");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().expect("json"))
}

/// The gateway's engine time, read by advancing its clock by zero seconds.
fn engine_now(s: &Server) -> u64 {
    advance(s, 0)
}

fn advance(s: &Server, seconds: u64) -> u64 {
    let mut r = agent()
        .post(&s.url("/_kvmux/clock/advance"))
        .send_json(json!({"seconds": seconds}))
        .expect("advance");
    assert_eq!(r.status(), 200);
    let v: Value = r.body_mut().read_json().expect("json");
    v["now"].as_u64().expect("now")
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_write_through_one_gateway_is_read_at_once_through_the_others() {
    let schema = fresh_schema("multi_rw");
    let gateways = start_gateways(&schema, 3);
    let r = gateways[0].tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "shared"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    for round in 0..30 {
        let writer = &gateways[round % 3];
        let reader = &gateways[(round + 1) % 3];
        let value = format!("value {round}");
        let r = writer.tencent(
            "EdgeKVPut",
            json!({"ZoneId": "z", "Namespace": "shared", "Key": "k", "Value": value}),
        );
        assert!(r.get("Error").is_none(), "{r}");
        // No wait: the very next request, to another process, sees it.
        let r = reader.tencent(
            "EdgeKVGet",
            json!({"ZoneId": "z", "Namespace": "shared", "Keys": ["k"]}),
        );
        assert_eq!(r["Data"][0]["Value"], value.as_str(), "round {round}: {r}");
    }
    // Another dialect, the other way round.
    let (status, r) = aliyun(&gateways[2], "Action=CreateKvNamespace&Namespace=ans");
    assert_eq!(status, 200, "{r}");
    let (status, r) = aliyun(
        &gateways[2],
        "Action=PutKv&Namespace=ans&Key=a&Value=from%20two",
    );
    assert_eq!(status, 200, "{r}");
    let (status, r) = aliyun(&gateways[0], "Action=GetKv&Namespace=ans&Key=a");
    assert_eq!(
        (status, r["Value"].clone()),
        (200, json!("from two")),
        "{r}"
    );
    // A create that lost the race through another gateway is refused, not duplicated.
    let (status, r) = aliyun(&gateways[1], "Action=CreateKvNamespace&Namespace=ans");
    assert_ne!(status, 200, "{r}");
    assert_eq!(
        sql(&schema, "SELECT count(*) FROM kvmux_migrations"),
        ["2"],
        "three start-ups, each migration applied once"
    );
}

#[test]
fn a_clock_advance_through_one_gateway_is_seen_by_all() {
    let schema = fresh_schema("multi_clock");
    let gateways = start_gateways(&schema, 3);
    let r = gateways[0].tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ttl"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let r = gateways[0].tencent(
        "EdgeKVPut",
        json!({"ZoneId": "z", "Namespace": "ttl", "Key": "t", "Value": "soon gone", "ExpirationTTL": 3600}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let before = engine_now(&gateways[2]);
    let advanced = advance(&gateways[1], 7200);
    assert!(advanced >= before + 7200);
    // Every gateway adopts the advance (bounded wait: offsets are exchanged every 50 ms).
    for g in &gateways {
        wait_until("the shared clock", Duration::from_secs(5), || {
            engine_now(g) >= advanced
        });
        let r = g.tencent(
            "EdgeKVGet",
            json!({"ZoneId": "z", "Namespace": "ttl", "Keys": ["t"]}),
        );
        assert_eq!(r["Data"][0]["Value"], "", "expired everywhere: {r}");
    }
    // A gateway started afterwards starts at the shared time.
    let late = start_gateways(&schema, 1);
    assert!(engine_now(&late[0]) >= advanced);
}

#[test]
fn one_gateway_sweeps_at_a_time_and_another_takes_over_when_it_stops() {
    let schema = fresh_schema("multi_sweep");
    let mut gateways = start_gateways(&schema, 3);
    let pids: Vec<String> = gateways.iter().map(|g| g.pid().to_string()).collect();
    // The sweeper ticks every second; within a few, one gateway holds the lease.
    let holder_pid = || -> Option<String> {
        let rows = sql(
            &schema,
            "SELECT holder FROM kv_leases WHERE name = 'sweeper'",
        );
        assert!(rows.len() <= 1);
        rows.first()
            .map(|h| h.split('-').next().unwrap_or("").to_string())
    };
    wait_until("a sweeper lease holder", Duration::from_secs(10), || {
        holder_pid().is_some()
    });
    let first = holder_pid().expect("holder");
    let index = pids
        .iter()
        .position(|p| *p == first)
        .unwrap_or_else(|| panic!("holder {first} is none of {pids:?}"));
    // It stays with that gateway while it lives.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(holder_pid().as_deref(), Some(first.as_str()));

    // Expiring items, then time moves past them: the holder sweeps them from the table.
    let r = gateways[0].tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "sweep"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    let put_expiring = |g: &Server, keys: std::ops::Range<u32>| {
        for i in keys {
            let r = g.tencent(
                "EdgeKVPut",
                json!({"ZoneId": "z", "Namespace": "sweep", "Key": format!("k{i}"), "Value": "v", "ExpirationTTL": 60}),
            );
            assert!(r.get("Error").is_none(), "{r}");
        }
    };
    let expiring = "SELECT count(*) FROM kv_records WHERE expires_at IS NOT NULL";
    put_expiring(&gateways[(index + 1) % 3], 0..10);
    assert_eq!(sql(&schema, expiring), ["10"]);
    advance(&gateways[(index + 2) % 3], 120);
    wait_until("the sweep", Duration::from_secs(10), || {
        sql(&schema, expiring) == ["0"]
    });

    // The holder stops (and gives the lease up); one of the others takes over and sweeps.
    assert!(gateways[index].terminate().success());
    wait_until("a new holder", Duration::from_secs(10), || {
        holder_pid().is_some_and(|p| p != first)
    });
    let second = holder_pid().expect("holder");
    assert!(pids.contains(&second) && second != first, "{second}");
    let survivor = &gateways[(index + 1) % 3];
    put_expiring(survivor, 10..15);
    assert_eq!(sql(&schema, expiring), ["5"]);
    advance(survivor, 120);
    wait_until(
        "the sweep by the new holder",
        Duration::from_secs(10),
        || sql(&schema, expiring) == ["0"],
    );
    gateways.remove(index);
}
