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

/// A gateway remembers the namespaces it has read (a get is then one statement: the namespace's
/// record and the items together), and still sees at once a namespace deleted and recreated
/// through another gateway.
#[test]
fn a_namespace_deleted_and_recreated_through_one_gateway_is_seen_at_once_through_another() {
    let schema = fresh_schema("multi_cycle");
    let gateways = start_gateways(&schema, 2);
    let (a, b) = (&gateways[0], &gateways[1]);
    let get = |g: &Server| {
        g.tencent(
            "EdgeKVGet",
            json!({"ZoneId": "z", "Namespace": "cycle", "Keys": ["k"]}),
        )
    };
    for round in 0..3 {
        let r = a.tencent(
            "CreateEdgeKVNamespace",
            json!({"ZoneId": "z", "Namespace": "cycle"}),
        );
        assert!(r.get("Error").is_none(), "{r}");
        let value = format!("round {round}");
        let r = a.tencent(
            "EdgeKVPut",
            json!({"ZoneId": "z", "Namespace": "cycle", "Key": "k", "Value": value}),
        );
        assert!(r.get("Error").is_none(), "{r}");
        for _ in 0..2 {
            let r = get(b);
            assert_eq!(r["Data"][0]["Value"], value.as_str(), "round {round}: {r}");
        }
        let r = a.tencent(
            "DeleteEdgeKVNamespace",
            json!({"ZoneId": "z", "Namespace": "cycle"}),
        );
        assert!(r.get("Error").is_none(), "{r}");
        let r = get(b);
        assert_eq!(
            r["Error"]["Code"], "ResourceUnavailable.NamespaceNotFound",
            "round {round}: {r}"
        );
    }
}

#[test]
fn a_clock_advance_through_one_gateway_is_seen_by_the_very_next_request_through_any_other() {
    let schema = fresh_schema("multi_clock");
    let gateways = start_gateways(&schema, 3);
    let r = gateways[0].tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ttl"}),
    );
    assert!(r.get("Error").is_none(), "{r}");
    for round in 0..3 {
        let key = format!("t{round}");
        let r = gateways[round].tencent(
            "EdgeKVPut",
            json!({"ZoneId": "z", "Namespace": "ttl", "Key": key, "Value": "soon gone", "ExpirationTTL": 3600}),
        );
        assert!(r.get("Error").is_none(), "{r}");
        // Read through another gateway first, so it holds the time before the advance.
        let reader = &gateways[(round + 2) % 3];
        let r = reader.tencent(
            "EdgeKVGet",
            json!({"ZoneId": "z", "Namespace": "ttl", "Keys": [key]}),
        );
        assert_eq!(r["Data"][0]["Value"], "soon gone", "{r}");
        advance(&gateways[(round + 1) % 3], 7200);
        // No wait, no poll: the next request through any other gateway sees the expiry.
        for g in &gateways {
            let r = g.tencent(
                "EdgeKVGet",
                json!({"ZoneId": "z", "Namespace": "ttl", "Keys": [key]}),
            );
            assert_eq!(
                r["Data"][0]["Value"], "",
                "round {round}: expired everywhere: {r}"
            );
            let r = g.tencent(
                "EdgeKVList",
                json!({"ZoneId": "z", "Namespace": "ttl", "Prefix": key, "Limit": 10}),
            );
            assert_eq!(
                r["TotalCount"].as_u64().unwrap_or(0)
                    + r["Data"].as_array().map_or(0, |a| a.len() as u64),
                0,
                "round {round}: listed nowhere: {r}"
            );
        }
        // A TTL written through a third gateway right after counts from the advanced time.
        let r = reader.tencent(
            "EdgeKVPut",
            json!({"ZoneId": "z", "Namespace": "ttl", "Key": "fresh", "Value": "here", "ExpirationTTL": 60}),
        );
        assert!(r.get("Error").is_none(), "{r}");
        let r = gateways[round].tencent(
            "EdgeKVGet",
            json!({"ZoneId": "z", "Namespace": "ttl", "Keys": ["fresh"]}),
        );
        assert_eq!(r["Data"][0]["Value"], "here", "round {round}: {r}");
    }
    // Two advances through two gateways both count.
    let before = engine_now(&gateways[0]);
    advance(&gateways[1], 100);
    advance(&gateways[2], 100);
    assert!(engine_now(&gateways[0]) >= before + 200);
    // A gateway started afterwards starts at the shared time.
    let now = engine_now(&gateways[1]);
    let late = start_gateways(&schema, 1);
    assert!(engine_now(&late[0]) >= now);
}

/// 3 gateways x 32 writers put and delete random keys of 3 namespaces whose byte quotas (and the
/// account's) are nearly full, so many writes are refused; at the end every counter equals what
/// the records add up to, and no quota was passed.
#[test]
fn writers_on_three_gateways_near_their_quotas_leave_exact_counters() {
    const WRITERS_PER_GATEWAY: usize = 32;
    const OPS: usize = 12;
    const CAPACITY: i64 = 1_500;
    const ACCOUNT_CAPACITY: i64 = 4_000;
    let schema = fresh_schema("multi_quota");
    let extra = format!(
        "storage = \"{}\"\n{AUTH_OFF}[tencent]\nnamespace_capacity = {CAPACITY}\n\
         [limits]\naccount_max_bytes = {ACCOUNT_CAPACITY}\n",
        storage_url(&schema)
    );
    let gateways: Vec<Server> = (0..3).map(|_| Server::start(&extra)).collect();
    for ns in ["n0", "n1", "n2"] {
        let r = gateways[0].tencent(
            "CreateEdgeKVNamespace",
            json!({"ZoneId": "z", "Namespace": ns}),
        );
        assert!(r.get("Error").is_none(), "{r}");
    }
    let outcomes: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3 * WRITERS_PER_GATEWAY)
            .map(|w| {
                let g = &gateways[w % 3];
                scope.spawn(move || {
                    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (w as u64 + 1);
                    let mut next = move |n: u64| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed % n
                    };
                    let (mut ok, mut full) = (0, 0);
                    for _ in 0..OPS {
                        let ns = format!("n{}", next(3));
                        let key = format!("k{:02}", next(40));
                        let r = if next(5) == 0 {
                            g.tencent(
                                "EdgeKVDelete",
                                json!({"ZoneId": "z", "Namespace": ns, "Keys": [key]}),
                            )
                        } else {
                            let value = "v".repeat(10 + next(90) as usize);
                            g.tencent(
                                "EdgeKVPut",
                                json!({"ZoneId": "z", "Namespace": ns, "Key": key, "Value": value}),
                            )
                        };
                        match r.get("Error") {
                            None => ok += 1,
                            Some(e) if e["Code"] == "LimitExceeded" => full += 1,
                            Some(e) => panic!("writer {w}: unexpected error {e}"),
                        }
                    }
                    (ok, full)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect()
    });
    let refused: usize = outcomes.iter().map(|o| o.1).sum();
    assert!(refused > 0, "the quotas were never reached: {outcomes:?}");

    // What the records add up to, per container id (hex), against its counters. An item record
    // is 'i' + id (8 bytes) + key, its value an 8-byte stamp + the value.
    let truth = sql(
        &schema,
        "SELECT id || ' ' || count(*) || ' ' || sum(size) FROM (\
         SELECT encode(substring(key from 2 for 8), 'hex') AS id, \
         octet_length(key) - 9 + octet_length(value) - 8 AS size \
         FROM kv_records WHERE get_byte(key, 0) = 105) AS items GROUP BY id ORDER BY id",
    );
    assert_eq!(truth.len(), 3, "{truth:?}");
    let counter = |tag: &str, id: &str| -> i64 {
        let rows = sql(
            &schema,
            &format!(
                "SELECT value FROM kv_counters WHERE key = '\\x{}{id}'::bytea",
                hex_of(tag)
            ),
        );
        rows.first().map_or(0, |v| v.parse().expect("counter"))
    };
    let mut total = 0;
    for row in &truth {
        let parts: Vec<&str> = row.split(' ').collect();
        let (id, items, bytes) = (parts[0], parts[1], parts[2]);
        let (items, bytes): (i64, i64) = (items.parse().unwrap(), bytes.parse().unwrap());
        assert_eq!(counter("qn", id), items, "items of {id}");
        assert_eq!(counter("qb", id), bytes, "bytes of {id}");
        assert!(bytes <= CAPACITY, "{id} holds {bytes} > {CAPACITY}");
        total += bytes;
    }
    assert!(total <= ACCOUNT_CAPACITY, "{total} > {ACCOUNT_CAPACITY}");
    let account_total = sql(
        &schema,
        "SELECT value FROM kv_counters WHERE get_byte(key, 0) = 113 AND get_byte(key, 1) = 84",
    );
    assert_eq!(
        account_total,
        [total.to_string()],
        "the account's total bytes"
    );
    // No counter row is left at 0 (the commit drops counters that reach it).
    assert_eq!(
        sql(&schema, "SELECT count(*) FROM kv_counters WHERE value = 0"),
        ["0"]
    );
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
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
