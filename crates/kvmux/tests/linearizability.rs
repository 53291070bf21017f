//! Linearizability of single keys through the real gateway: 64 concurrent clients read, write and
//! compare-and-set a few keys through all three dialects, signed the way the SDKs sign
//! (`kvmux_bench::workload`), and the recorded history of every key is checked against a register
//! specification (`kv_testkit::linearizability`: the zone test of Gibbons & Korach for the
//! read/write keys, the Wing & Gong / Lowe search with memoisation for the compare-and-set ones).
//!
//! Registers: a few keys of a Tencent namespace bound to an Aliyun namespace (`[[bindings]]`), so
//! each is written and read through both vendors' APIs; and a few documents of a Huawei table,
//! written with put-kv unconditionally, with `$eq` on the value field (compare-and-set from the
//! value the client last read) and with `$exists: false` (create if absent), and read by get-kv.
//!
//! `KVMUX_LIN_OPS` sets the number of operations (default 15000, about 20 s), `KVMUX_LIN_SEED` replays a run.

mod common;

use kv_testkit::linearizability as checker;
use kvmux_bench::workload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use checker::{Call, Operation, Outcome, Verdict};
use common::{send_request, Server};
use workload::{Target, Workload};

const CLIENTS: usize = 64;
const KEYS_PER_DIALECT: usize = 4;
/// Search steps allowed per register before the checker calls a history inconclusive.
const MAX_STEPS: u64 = 20_000_000;

fn workload(port: u16, target: Target) -> Workload {
    Workload {
        target,
        host: format!("127.0.0.1:{port}"),
        key_id: target.dev_key_id().into(),
        secret: "kvmuxdevsecret".into(),
        value: Bytes::new(),
    }
}

/// A Tencent namespace and an Aliyun namespace that are one container.
fn bindings() -> String {
    format!(
        "[[bindings]]\naccount = \"dev\"\ntencent_zone = \"{}\"\ntencent_namespace = \"{}\"\naliyun_namespace = \"{}\"\n",
        workload::ZONE,
        workload::NAMESPACE,
        workload::NAMESPACE
    )
}

/// Which register an operation touched: a bound flat key, or a Huawei document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Register {
    Flat(usize),
    Document(usize),
}

impl Register {
    fn key(self) -> String {
        match self {
            Register::Flat(i) | Register::Document(i) => format!("lin-{i}"),
        }
    }
}

/// What one answer meant. `Unexpected` (a 5xx, an error the operation cannot produce, a reply
/// that does not parse) is recorded as an unknown outcome for the checker and fails the test.
enum Answer {
    Outcome(Outcome<String>),
    Unexpected(String),
}

fn describe(status: u16, body: &[u8]) -> String {
    match bson::Document::from_reader(body) {
        Ok(d) if !body.starts_with(b"{") => format!("{status} {d}"),
        _ => format!("{status} {}", String::from_utf8_lossy(body)),
    }
}

fn tencent_answer(call: &Call<String>, status: u16, body: &[u8]) -> Answer {
    let reply: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) if status == 200 => v,
        _ => return Answer::Unexpected(describe(status, body)),
    };
    let response = &reply["Response"];
    if response.get("Error").is_some() {
        return Answer::Unexpected(describe(status, body));
    }
    match call {
        Call::Read => match response["Data"][0]["Value"].as_str() {
            // Tencent answers a missing key with an empty value; the test never writes one.
            Some("") => Answer::Outcome(Outcome::Read(None)),
            Some(v) => Answer::Outcome(Outcome::Read(Some(v.to_string()))),
            None => Answer::Unexpected(describe(status, body)),
        },
        _ => Answer::Outcome(Outcome::Done),
    }
}

fn aliyun_answer(call: &Call<String>, status: u16, body: &[u8]) -> Answer {
    let reply: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match (call, status) {
        (Call::Read, 200) => match reply["Value"].as_str() {
            Some(v) => Answer::Outcome(Outcome::Read(Some(v.to_string()))),
            None => Answer::Unexpected(describe(status, body)),
        },
        (Call::Read, 404) if reply["Code"] == "InvalidKey.NotFound" => {
            Answer::Outcome(Outcome::Read(None))
        }
        (Call::Write(_), 200) => Answer::Outcome(Outcome::Done),
        _ => Answer::Unexpected(describe(status, body)),
    }
}

fn huawei_answer(call: &Call<String>, status: u16, body: &[u8]) -> Answer {
    let Ok(reply) = bson::Document::from_reader(body) else {
        return Answer::Unexpected(describe(status, body));
    };
    let code = reply.get_str("errorCode").unwrap_or_default();
    match (call, status) {
        (Call::Read, 200) => match reply.get_document("kv_doc").and_then(|d| d.get_str("v")) {
            Ok(v) => Answer::Outcome(Outcome::Read(Some(v.to_string()))),
            Err(_) => Answer::Unexpected(describe(status, body)),
        },
        (Call::Read, 404) if code == "KVS.00001016" => Answer::Outcome(Outcome::Read(None)),
        (Call::Write(_) | Call::CompareAndSet { .. }, 200) => Answer::Outcome(Outcome::Done),
        (Call::CompareAndSet { .. }, 400) if code == "KVS.00005017" => {
            Answer::Outcome(Outcome::Refused)
        }
        _ => Answer::Unexpected(describe(status, body)),
    }
}

/// The put-kv condition of a compare-and-set, as the Huawei SDK sends it.
fn condition(expected: &Option<String>) -> bson::Document {
    match expected {
        Some(v) => {
            bson::doc! {"single_field_expression": {"field": "v", "func": "$eq", "value": {"": v}}}
        }
        None => {
            bson::doc! {"single_field_expression": {"field": "v", "func": "$exists", "value": {"": false}}}
        }
    }
}

/// One recorded operation with its register.
struct Recorded {
    register: Register,
    dialect: Target,
    op: Operation<String>,
}

struct Client {
    id: usize,
    port: u16,
    started: Instant,
    rng: fastrand::Rng,
    agent: ureq::Agent,
    tencent: Workload,
    aliyun: Workload,
    huawei: Workload,
    /// A compare-and-set to send next, the second half of a read-modify-write: the Huawei key
    /// and the value the read saw (its expectation).
    follow_up: Option<(usize, Option<String>)>,
    seq: usize,
}

impl Client {
    fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn fresh_value(&mut self) -> String {
        self.seq += 1;
        format!("c{}-{}", self.id, self.seq)
    }

    /// Picks and runs one operation; returns it with the unexpected answer, if any.
    fn step(&mut self) -> (Recorded, Option<String>) {
        let follow_up = self.follow_up.take();
        let index = match &follow_up {
            Some((i, _)) => *i,
            None => self.rng.usize(..KEYS_PER_DIALECT),
        };
        let (register, dialect, call) = if follow_up.is_none() && self.rng.bool() {
            let dialect = if self.rng.bool() {
                Target::Tencent
            } else {
                Target::Aliyun
            };
            let call = if self.rng.bool() {
                Call::Read
            } else {
                Call::Write(self.fresh_value())
            };
            (Register::Flat(index), dialect, call)
        } else {
            let call = match (follow_up, self.rng.u8(..100)) {
                (Some((_, expected)), _) => Call::CompareAndSet {
                    expected,
                    new: self.fresh_value(),
                },
                (None, 0..60) => Call::Read,
                (None, 60..80) => Call::Write(self.fresh_value()),
                (None, _) => Call::CompareAndSet {
                    expected: None,
                    new: self.fresh_value(),
                },
            };
            (Register::Document(index), Target::Huawei, call)
        };
        let key = register.key();
        let request = match (dialect, &call) {
            (Target::Tencent, Call::Read) => self.tencent.get(&key),
            (Target::Tencent, Call::Write(v)) => self.tencent.put(&key, v),
            (Target::Aliyun, Call::Read) => self.aliyun.get(&key),
            (Target::Aliyun, Call::Write(v)) => self.aliyun.put(&key, v),
            (Target::Huawei, Call::Read) => self.huawei.get(&key),
            (Target::Huawei, Call::Write(v)) => self.huawei.huawei_put_kv(&key, v, None),
            (Target::Huawei, Call::CompareAndSet { expected, new }) => {
                self.huawei
                    .huawei_put_kv(&key, new, Some(condition(expected)))
            }
            other => unreachable!("not generated: {other:?}"),
        };
        let invoked = self.now();
        let sent = send_request(&self.agent, self.port, request);
        let completed = self.now();
        let (outcome, unexpected) = match sent {
            // No answer (a timeout): an unknown outcome, as the theory has it, not a failure.
            Err(_) => (Outcome::Unknown, None),
            Ok((status, body)) => {
                let answer = match dialect {
                    Target::Tencent => tencent_answer(&call, status, &body),
                    Target::Aliyun => aliyun_answer(&call, status, &body),
                    _ => huawei_answer(&call, status, &body),
                };
                match answer {
                    Answer::Outcome(o) => (o, None),
                    Answer::Unexpected(what) => (Outcome::Unknown, Some(what)),
                }
            }
        };
        if let (Register::Document(i), Outcome::Read(seen)) = (register, &outcome) {
            // Most reads are followed at once by a compare-and-set from what they saw.
            if self.rng.u8(..100) < 70 {
                self.follow_up = Some((i, seen.clone()));
            }
        }
        let op = Operation {
            client: self.id,
            invoked,
            completed,
            call,
            outcome,
        };
        (
            Recorded {
                register,
                dialect,
                op,
            },
            unexpected,
        )
    }
}

#[test]
fn concurrent_reads_writes_and_compare_and_sets_are_linearizable_per_key() {
    let total_ops = common::env_number("KVMUX_LIN_OPS", 15000) as usize;
    let seed = common::env_number("KVMUX_LIN_SEED", fastrand::u64(..));
    println!("linearizability: seed {seed} (replay the choices with KVMUX_LIN_SEED={seed}), {total_ops} operations, {CLIENTS} clients");

    let s = Server::start(&bindings());
    let setup = common::agent();
    for target in [Target::Tencent, Target::Huawei] {
        let w = workload(s.port, target);
        let (status, body) = send_request(&setup, s.port, w.setup(0).0).expect("create");
        assert!(
            !w.is_error(http::StatusCode::from_u16(status).unwrap(), &body),
            "{target:?}: {}",
            describe(status, &body)
        );
    }
    // The binding holds: written through Tencent, read through Aliyun.
    let (tencent, aliyun) = (
        workload(s.port, Target::Tencent),
        workload(s.port, Target::Aliyun),
    );
    send_request(&setup, s.port, tencent.put("lin-probe", "bound")).expect("put");
    let (status, body) = send_request(&setup, s.port, aliyun.get("lin-probe")).expect("get");
    assert_eq!(
        (status, describe(status, &body).contains("bound")),
        (200, true)
    );

    let started = Instant::now();
    let issued = Arc::new(AtomicUsize::new(0));
    let unexpected = Arc::new(Mutex::new(Vec::<String>::new()));
    let port = s.port;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (issued, unexpected) = (issued.clone(), unexpected.clone());
            std::thread::spawn(move || {
                let mut client = Client {
                    id,
                    port,
                    started,
                    rng: fastrand::Rng::with_seed(seed.wrapping_add(id as u64)),
                    agent: ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(20)))
                        .build()
                        .into(),
                    tencent: workload(port, Target::Tencent),
                    aliyun: workload(port, Target::Aliyun),
                    huawei: workload(port, Target::Huawei),
                    follow_up: None,
                    seq: 0,
                };
                let mut history = Vec::new();
                while issued.fetch_add(1, Ordering::Relaxed) < total_ops {
                    let (recorded, surprise) = client.step();
                    if let Some(what) = surprise {
                        unexpected.lock().unwrap().push(format!(
                            "{:?} {:?} {:?}: {what}",
                            recorded.dialect, recorded.register, recorded.op.call
                        ));
                    }
                    history.push(recorded);
                }
                history
            })
        })
        .collect();
    let mut by_register: BTreeMap<Register, Vec<Operation<String>>> = BTreeMap::new();
    let mut by_dialect: BTreeMap<String, usize> = BTreeMap::new();
    for c in clients {
        for r in c.join().expect("client thread") {
            *by_dialect.entry(format!("{:?}", r.dialect)).or_default() += 1;
            by_register.entry(r.register).or_default().push(r.op);
        }
    }
    let ran_for = started.elapsed();
    drop(s);

    let unexpected = unexpected.lock().unwrap().clone();
    let count = |f: &dyn Fn(&Operation<String>) -> bool| {
        by_register.values().flatten().filter(|o| f(o)).count()
    };
    let cas_done = count(&|o| {
        matches!(
            (&o.call, &o.outcome),
            (Call::CompareAndSet { .. }, Outcome::Done)
        )
    });
    let cas_refused = count(&|o| o.outcome == Outcome::Refused);
    let reads_seen = count(&|o| matches!(o.outcome, Outcome::Read(Some(_))));
    let unknown = count(&|o| o.outcome == Outcome::Unknown);
    println!(
        "linearizability: ran {} operations in {ran_for:.1?} ({by_dialect:?}); compare-and-set {cas_done} won / {cas_refused} refused; {reads_seen} reads saw a value; {unknown} unknown outcomes",
        by_register.values().map(Vec::len).sum::<usize>()
    );
    assert!(
        unexpected.is_empty(),
        "{} answers no client should get, e.g.:\n{}",
        unexpected.len(),
        unexpected
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        cas_done > 0 && cas_refused > 0 && reads_seen > 0,
        "the workload must exercise both compare-and-set outcomes and reads of values"
    );

    let checking = Instant::now();
    for (register, history) in &by_register {
        match checker::check(None, history, MAX_STEPS) {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable(v) => panic!(
                "{register:?} is not linearizable (seed {seed}): {}; history in {}",
                v.reason,
                save(register, history)
            ),
            Verdict::Inconclusive(i) => panic!(
                "{register:?}: the checker gave up after {} steps on {} operations (seed {seed}); history in {}",
                i.steps,
                history.len(),
                save(register, history)
            ),
        }
    }
    println!(
        "linearizability: checked {} histories ({} operations) in {:.1?}: all linearizable",
        by_register.len(),
        by_register.values().map(Vec::len).sum::<usize>(),
        checking.elapsed()
    );

    // The same histories with one read changed to a value nobody wrote must be rejected: the
    // check above could fail.
    let mut forged_histories = 0;
    for (register, history) in &by_register {
        let mut forged = history.clone();
        let Some(read) = forged
            .iter_mut()
            .find(|o| matches!(o.outcome, Outcome::Read(Some(_))))
        else {
            continue;
        };
        read.outcome = Outcome::Read(Some("never-written".into()));
        forged_histories += 1;
        assert!(
            matches!(
                checker::check(None, &forged, MAX_STEPS),
                Verdict::NotLinearizable(_)
            ),
            "{register:?}: a forged read was accepted"
        );
    }
    assert!(forged_histories > 0);
    println!(
        "linearizability: {forged_histories} forged histories (one read changed to a never-written value) rejected"
    );
}

/// Writes a register's history to a file for study; returns its path.
fn save(register: &Register, history: &[Operation<String>]) -> String {
    let path = std::env::temp_dir().join(format!(
        "kvmux-linearizability-{register:?}-{}.txt",
        std::process::id()
    ));
    std::fs::write(&path, dump(history)).expect("write the history");
    path.display().to_string()
}

fn dump(history: &[Operation<String>]) -> String {
    let mut ops: Vec<&Operation<String>> = history.iter().collect();
    ops.sort_by_key(|o| o.invoked);
    ops.iter()
        .map(|o| {
            format!(
                "client {:>2} [{:>12} .. {:>12}] {:?} -> {:?}",
                o.client, o.invoked, o.completed, o.call, o.outcome
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
