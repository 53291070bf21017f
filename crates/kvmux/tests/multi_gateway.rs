//! Several stateless gateways on one PostgreSQL database, through the real binary: three kvmux
//! processes on their own ports share one schema; a write through one is read at once through
//! another (Tencent and Aliyun dialects); a clock advance through one is seen by all; exactly one
//! of them holds the sweeper lease, and when it stops another takes over and sweeps.
//!
//! The server is `KV_TEST_POSTGRES` when set; otherwise one is started for this test binary with
//! scripts/postgres.sh and stopped by a watcher when the binary exits.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_core::store::counting::Counting;
use kv_core::store::postgres::PostgresStore;
use kv_core::{Clock, Engine};
use kv_dialect::Dialect;
use kvmux_bench::workload::{key_name, Op, Target, Workload, NAMESPACE};

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

// ------------------------------------------------------------------ statements per request

/// A gateway in this process on the database `url`, serving the dialects of `config` (the
/// default configuration: the dev credentials, signatures enforced), whose store counts its
/// statements (every `Store` read, claim and commit call is one statement or one transaction).
async fn counted_gateway(
    url: &str,
    config: &kvmux::config::Config,
) -> (Vec<Arc<dyn Dialect>>, Arc<Engine>, Arc<Counting>) {
    let clock = Clock::new();
    let store = PostgresStore::open_shared(url, 4, &clock)
        .await
        .expect("postgres store");
    let counted = Counting::new(store);
    let engine = Arc::new(Engine::new(counted.clone(), clock));
    let dialects = kvmux::gateway::build_dialects(config, &engine);
    (dialects, engine, counted)
}

/// Serves `request` through the dialect that claims it, as the binary dispatches.
async fn serve(dialects: &[Arc<dyn Dialect>], request: http::Request<Bytes>) -> (u16, Bytes) {
    let (parts, body) = request.into_parts();
    for d in dialects {
        if let Some(head) = d.classify(&parts) {
            let answer = d.serve(head, http::Request::from_parts(parts, body)).await;
            let (parts, body) = answer.response.into_parts();
            return (parts.status.as_u16(), body);
        }
    }
    panic!("no dialect claims {} {}", parts.method, parts.uri);
}

fn signed(target: Target) -> Workload {
    Workload {
        target,
        host: "127.0.0.1:9090".into(),
        key_id: target.dev_key_id().into(),
        secret: "kvmuxdevsecret".into(),
        value: Bytes::from_static(b"counted value"),
    }
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// An Aliyun GetKv is one statement for the data once the gateway has seen the namespace (its
/// record and the item read together), beside the one every signed Aliyun request costs (its
/// nonce, claimed in the database so that all gateways admit it once); a PutKv adds only its
/// commit. A namespace deleted or recreated through another gateway is seen in that same read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aliyun_get_reads_the_namespace_with_the_item_in_one_statement() {
    let url = storage_url(&fresh_schema("stmt_aliyun"));
    let config = kvmux::config::Config::default();
    let (a, a_engine, _) = counted_gateway(&url, &config).await;
    let (b, _, counted) = counted_gateway(&url, &config).await;
    let w = signed(Target::Aliyun);
    let (create, puts) = w.setup(1);
    for request in std::iter::once(create).chain(puts) {
        let (status, body) = serve(&a, request).await;
        assert_eq!(status, 200, "{}", text(&body));
    }

    // First read through B: the nonce, the namespace's record, then the item.
    counted.take();
    let (status, body) = serve(&b, w.request(Op::Get, 0)).await;
    assert_eq!(status, 200, "{}", text(&body));
    assert!(text(&body).contains("counted value"), "{}", text(&body));
    assert_eq!(counted.take_names(), ["claim_once", "get_many", "get_many"]);
    // From then on: the nonce and ONE read.
    for _ in 0..3 {
        let (status, body) = serve(&b, w.request(Op::Get, 0)).await;
        assert!(
            text(&body).contains("counted value"),
            "{status} {}",
            text(&body)
        );
        assert_eq!(counted.take(), 2);
    }
    let (status, body) = serve(&b, w.get("no-such-key")).await;
    assert!(
        status == 404 && text(&body).contains("InvalidKey.NotFound"),
        "{status} {}",
        text(&body)
    );
    assert_eq!(counted.take(), 2);
    // A put: the nonce, the namespace's record with the key's current state, the commit (after
    // the first commit through B, which reads once per process whether the per-account byte
    // totals are kept).
    let (status, body) = serve(&b, w.put(&key_name(0), "first from b")).await;
    assert_eq!(status, 200, "{}", text(&body));
    counted.take();
    let (status, body) = serve(&b, w.put(&key_name(0), "from b")).await;
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(counted.take_names(), ["claim_once", "get_many", "commit"]);
    let (_, body) = serve(&a, w.request(Op::Get, 0)).await;
    assert!(text(&body).contains("from b"), "{}", text(&body));

    // Deleted through A: B's next get is NotFound from its one read.
    a_engine
        .delete_container("dev", "aliyun-esa", NAMESPACE)
        .await
        .expect("delete");
    let (status, body) = serve(&b, w.request(Op::Get, 0)).await;
    assert!(
        status == 404 && text(&body).contains("InvalidNameSpace.NotFound"),
        "{status} {}",
        text(&body)
    );
    assert_eq!(counted.take(), 2);
    // Recreated through A: B finds the new namespace and its item, then reads it in one again.
    let (create, _) = w.setup(0);
    assert_eq!(serve(&a, create).await.0, 200);
    assert_eq!(serve(&a, w.put(&key_name(0), "reborn")).await.0, 200);
    let (_, body) = serve(&b, w.request(Op::Get, 0)).await;
    assert!(text(&body).contains("reborn"), "{}", text(&body));
    counted.take();
    let (_, body) = serve(&b, w.request(Op::Get, 0)).await;
    assert!(text(&body).contains("reborn"), "{}", text(&body));
    assert_eq!(counted.take(), 2);
}

/// A Huawei get-kv is ONE statement once the gateway has seen the table (the table's record and
/// the document together); a put-kv is that read and its commit, and on a table with a secondary
/// index one more read for the index entries it replaces. A table deleted through another
/// gateway is `NoSuchTable` from that same read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huawei_get_reads_the_table_with_the_document_in_one_statement() {
    let url = storage_url(&fresh_schema("stmt_huawei"));
    let signed_config = kvmux::config::Config::default();
    let mut open_config = kvmux::config::Config::default();
    open_config.auth.mode = kv_dialect::AuthMode::Off;
    let (a, a_engine, _) = counted_gateway(&url, &open_config).await;
    let (b, _, counted) = counted_gateway(&url, &signed_config).await;
    let w = signed(Target::Huawei);
    let (create, puts) = w.setup(1);
    for request in std::iter::once(create).chain(puts) {
        let (status, body) = serve(&a, request).await;
        assert_eq!(status, 200, "{}", text(&body));
    }

    counted.take();
    let (status, body) = serve(&b, w.request(Op::Get, 0)).await;
    assert_eq!(status, 200, "{}", text(&body));
    assert!(text(&body).contains("counted value"), "{}", text(&body));
    assert_eq!(
        counted.take_names(),
        ["get_many", "get_many"],
        "first read: the table, then the document"
    );
    for _ in 0..3 {
        let (status, body) = serve(&b, w.request(Op::Get, 0)).await;
        assert!(
            text(&body).contains("counted value"),
            "{status} {}",
            text(&body)
        );
        assert_eq!(counted.take(), 1);
    }
    let (status, body) = serve(&b, w.get("no-such-key")).await;
    assert!(
        status == 404 && text(&body).contains("KVS.00001016"),
        "{status} {}",
        text(&body)
    );
    assert_eq!(counted.take(), 1);
    // put-kv: the table's record with the document's current state, then the commit (after the
    // first commit through B, which reads once per process whether the per-account byte totals
    // are kept).
    let (status, body) = serve(&b, w.put(&key_name(0), "first from b")).await;
    assert_eq!(status, 200, "{}", text(&body));
    counted.take();
    let (status, body) = serve(&b, w.put(&key_name(0), "from b")).await;
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(counted.take_names(), ["get_many", "commit"]);
    let (_, body) = serve(&a, w.request(Op::Get, 0)).await;
    assert!(text(&body).contains("from b"), "{}", text(&body));

    // A table with a global secondary index on `v`: a put-kv also reads the index entries it
    // replaces (one statement for all of them) and writes them in the same commit.
    let indexed = huawei_unsigned(
        "create-table",
        bson::doc! {
            "table_name": "indexed",
            "primary_key_schema": {"shard_key_fields": [{"name": "id"}]},
            "global_secondary_index_schema": [{
                "index_name": "by_v",
                "shard_key_fields": [{"name": "v"}],
            }],
        },
    );
    let (status, body) = serve(&a, indexed).await;
    assert_eq!(status, 200, "{}", text(&body));
    let put_indexed = |value: &str| {
        huawei_unsigned(
            "put-kv",
            bson::doc! {"table_name": "indexed", "kv_doc": {"id": "doc", "v": value}},
        )
    };
    let (open_b, _, open_counted) = counted_gateway(&url, &open_config).await;
    assert_eq!(serve(&open_b, put_indexed("one")).await.0, 200);
    open_counted.take();
    let (status, body) = serve(&open_b, put_indexed("two")).await;
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(
        open_counted.take_names(),
        ["get_many", "get_many", "commit"],
        "the table, its index and the document; the index entries; the commit"
    );
    // The index holds the new entry and no longer the old one.
    let scan = huawei_unsigned(
        "scan-kv",
        bson::doc! {"table_name": "indexed", "hint_index_name": "by_v"},
    );
    let (status, body) = serve(&a, scan).await;
    assert_eq!(status, 200, "{}", text(&body));
    let reply = bson::Document::from_reader(&body[..]).expect("a BSON reply");
    let entries = format!("{:?}", reply.get("returned_kv_items"));
    assert!(
        entries.contains("\"two\"") && !entries.contains("\"one\""),
        "{entries}"
    );

    // Deleted through A: NoSuchTable from B's one read (and one lookup of the store, to tell
    // which is missing).
    a_engine
        .delete_container("dev", "huawei/benchstore", "bench")
        .await
        .expect("delete");
    let (status, body) = serve(&b, w.request(Op::Get, 0)).await;
    assert!(
        status == 404 && text(&body).contains("KVS.00001015"),
        "{status} {}",
        text(&body)
    );
    assert_eq!(counted.take(), 2);
}

/// A Huawei request without a signature (for a gateway whose auth is off), to the workload's
/// store.
fn huawei_unsigned(operation: &str, body: bson::Document) -> http::Request<Bytes> {
    let mut raw = Vec::new();
    body.to_writer(&mut raw).expect("bson");
    http::Request::builder()
        .method("POST")
        .uri(format!("/v1/{operation}"))
        .header("host", "benchstore.127.0.0.1:9090")
        .header("content-type", "application/bson")
        .body(Bytes::from(raw))
        .expect("request")
}
