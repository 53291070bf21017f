//! The bad-input corpus, end to end: thousands of seeded malformed requests (broken JSON, BSON and
//! forms, wrong types, invalid UTF-8, huge numbers, 10,000-level BSON nesting, duplicate and
//! missing parameters, wrong Content-Type, garbage headers, lying Content-Length, bad methods and
//! paths, bytes that are not HTTP) sent over raw TCP to the real binary, once with auth off (so
//! they reach the decoders and the engine) and once with signatures enforced (signed with the dev
//! credentials, so they pass authentication and still reach the decoders).
//!
//! Every answer must be the aimed dialect's own error envelope with a code from that dialect's
//! table (or another correct answer the case names: the gateway's unclaimed 400, hyper's empty
//! 4xx for bytes that are not HTTP, a success for defects the vendor tolerates). No 5xx (but
//! Huawei's documented 501 for an unknown `/v1/<op>`), no hang, no panic in the log; the
//! server is still alive and healthy afterwards and valid requests still work.
//!
//! `KVMUX_BAD_INPUTS=N` sets the number of requests per auth mode (default 1000);
//! `KVMUX_BAD_INPUTS_SEED=S` replays a run (the seed is printed).

mod adversarial;
mod common;

#[allow(dead_code)]
use kvmux_bench::workload;

use std::collections::BTreeMap;

use adversarial::corpus::{Case, Corpus};
use adversarial::envelope::{Answer, Tables};
use adversarial::raw::{exchange, Exchange, RawRequest};
use adversarial::{from_http, sign_for, trust, Vendor};
use bytes::Bytes;
use common::{Server, AUTH_OFF};
use workload::{Op, Target, Workload};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    AuthOff,
    Enforced,
}

#[derive(Default)]
struct Stats {
    sent: usize,
    signed: usize,
    /// (vendor, category) -> count
    by_category: BTreeMap<(Vendor, &'static str), usize>,
    /// (vendor, what answered) -> count, e.g. "tencent InvalidParameter", "unclaimed 400".
    by_answer: BTreeMap<(Vendor, String), usize>,
    /// Per vendor: answered by the signature check vs by everything after it.
    auth_refusals: BTreeMap<Vendor, usize>,
    past_auth: BTreeMap<Vendor, usize>,
    failures: Vec<String>,
    /// Sizes after the run: `/metrics`, the `/_kvmux/requests` JSON and its entries.
    metrics_bytes: usize,
    inspector_bytes: usize,
    inspector_entries: usize,
}

impl Stats {
    fn inspector_bytes_entries(&self) -> usize {
        self.inspector_entries
    }
}

/// The inspector's ring holds at most its byte budget of entries (4 MiB); the JSON of all of
/// them may add field names and escapes, so it gets an eighth more. Unbounded, a few hundred
/// requests with 40 KB of headers each would make it tens of megabytes.
const INSPECTOR_MAX_JSON_BYTES: usize = 4 * 1024 * 1024 + (4 * 1024 * 1024) / 8;

fn count() -> usize {
    common::env_number("KVMUX_BAD_INPUTS", 1000) as usize
}

fn seed() -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    common::env_number("KVMUX_BAD_INPUTS_SEED", clock)
}

fn target_of(vendor: Vendor) -> Target {
    match vendor {
        Vendor::Tencent => Target::Tencent,
        Vendor::Aliyun => Target::Aliyun,
        Vendor::Huawei => Target::Huawei,
    }
}

fn workload(s: &Server, vendor: Vendor) -> Workload {
    let key = vendor.dev_key();
    Workload {
        target: target_of(vendor),
        host: format!("127.0.0.1:{}", s.port),
        key_id: key.id,
        secret: key.secret,
        value: Bytes::from_static(b"still-served"),
    }
}

/// One valid request; returns (status, body) and fails the test on anything but a success.
fn valid(s: &Server, w: &Workload, request: http::Request<Bytes>, what: &str) -> Vec<u8> {
    match exchange(s.port, &from_http(request)) {
        Exchange::Reply(r) => {
            let status = http::StatusCode::from_u16(r.status).expect("status");
            assert!(
                !w.is_error(status, &r.body),
                "{:?} {what}: {} {}",
                w.target,
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            r.body
        }
        other => panic!("{:?} {what}: {other:?}", w.target),
    }
}

/// The containers the corpus aims at, and two keys per dialect, through valid signed requests.
fn setup_valid_traffic(s: &Server) {
    for vendor in Vendor::ALL {
        let w = workload(s, vendor);
        let (create, puts) = w.setup(2);
        let _ = exchange(s.port, &from_http(create));
        for put in puts {
            valid(s, &w, put, "setup put");
        }
    }
}

/// Valid requests still work: each dialect reads back what it wrote and writes a new key.
fn assert_valid_traffic_works(s: &Server) {
    for vendor in Vendor::ALL {
        let w = workload(s, vendor);
        let body = valid(s, &w, w.request(Op::Get, 1), "get after the corpus");
        match vendor {
            Vendor::Huawei => {
                let doc = bson::Document::from_reader(&mut body.as_slice()).expect("bson");
                let kv = doc.get_document("kv_doc").expect("kv_doc");
                assert_eq!(kv.get_str("v").ok(), Some("still-served"), "{doc}");
            }
            _ => assert!(
                String::from_utf8_lossy(&body).contains("still-served"),
                "{vendor:?}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
        valid(s, &w, w.request(Op::Put, 7), "put after the corpus");
        valid(s, &w, w.request(Op::List, 0), "list after the corpus");
    }
}

fn assert_alive(s: &Server) {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", s.pid())).expect("process exists");
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?");
    assert_ne!(state, "Z", "kvmux exited");
    match exchange(s.port, &RawRequest::new("GET", "/_kvmux/health")) {
        Exchange::Reply(r) => assert_eq!(r.status, 200, "health"),
        other => panic!("health: {other:?}"),
    }
}

/// An admin call the case expects refused: the admin API's own JSON error with 401, 403 or 415.
fn judge_admin(outcome: &Exchange) -> Result<String, String> {
    let Exchange::Reply(resp) = outcome else {
        return Err(format!("admin call: {outcome:?}"));
    };
    let body = String::from_utf8_lossy(&resp.body);
    if ![401, 403, 415].contains(&resp.status) {
        return Err(format!("admin call answered {}: {body}", resp.status));
    }
    if !resp.content_type().starts_with("application/json") {
        return Err(format!(
            "admin refusal is not JSON: {:?}",
            resp.content_type()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("admin refusal body: {e}: {body}"))?;
    if v["error"].as_str().is_none_or(str::is_empty) {
        return Err(format!("admin refusal without an error message: {body}"));
    }
    Ok(format!("admin {}", resp.status))
}

/// Judges one exchange against the case; Ok(label of the answer) or Err(why it is wrong).
fn judge(tables: &Tables, case: &Case, outcome: &Exchange) -> Result<String, String> {
    let allow = case.allow;
    if allow.admin {
        return judge_admin(outcome);
    }
    let resp = match outcome {
        Exchange::Reply(r) => r,
        Exchange::Closed if allow.http_level => return Ok("closed (not HTTP)".into()),
        other => return Err(format!("{other:?}")),
    };
    match tables.classify(resp)? {
        Answer::Vendor { vendor, code } => {
            if vendor != case.vendor && !allow.other_dialect {
                return Err(format!("answered by {vendor:?}, not {:?}", case.vendor));
            }
            let label = match &code {
                Some(c) => format!("{} {} {c}", vendor.name(), resp.status),
                None => format!("{} {} success", vendor.name(), resp.status),
            };
            if resp.status >= 500 {
                let documented = allow.not_implemented
                    && vendor == Vendor::Huawei
                    && resp.status == 501
                    && code.as_deref() == Some("KVS.00000002");
                if !documented {
                    return Err(format!("5xx: {label}"));
                }
            }
            if code.is_none() && !allow.success {
                return Err(format!("accepted: {label}"));
            }
            Ok(label)
        }
        Answer::Unclaimed if allow.other_dialect => Ok("gateway 400 unclaimed".into()),
        Answer::HttpLevel if allow.http_level => Ok(format!("http-level {}", resp.status)),
        other => Err(format!("{other:?} ({} answer)", resp.status)),
    }
}

/// A loopback GET of an admin path: (status, body).
fn admin_get(s: &Server, path: &str) -> (u16, Vec<u8>) {
    let request = RawRequest::new("GET", path).header("Host", format!("127.0.0.1:{}", s.port));
    match exchange(s.port, &request) {
        Exchange::Reply(r) => (r.status, r.body),
        other => panic!("GET {path}: {other:?}"),
    }
}

/// What the admin cases must not change: the fault rules and how far the engine clock runs
/// ahead of the wall clock (whole seconds; a refused advance would add a year).
fn admin_state(s: &Server) -> (String, i64) {
    let (status, faults) = admin_get(s, "/_kvmux/faults");
    assert_eq!(status, 200, "faults: {}", String::from_utf8_lossy(&faults));
    let (status, health) = admin_get(s, "/_kvmux/health");
    assert_eq!(status, 200, "health: {}", String::from_utf8_lossy(&health));
    let health: serde_json::Value = serde_json::from_slice(&health).expect("health JSON");
    let now = health["now"]
        .as_i64()
        .expect("health names the engine clock");
    let wall = kv_core::clock::wall_clock_secs() as i64;
    (String::from_utf8_lossy(&faults).into_owned(), now - wall)
}

/// Each dialect's sentinel container and item, which only override cases aim at.
fn seed_sentinels(s: &Server, tables: &Tables) {
    for (vendor, request) in trust::sentinel_setup(&format!("127.0.0.1:{}", s.port)) {
        match exchange(s.port, &request) {
            Exchange::Reply(r) => match tables.classify(&r) {
                Ok(Answer::Vendor { code: None, .. }) => {}
                other => panic!(
                    "{vendor:?} sentinel setup: {other:?} {}",
                    String::from_utf8_lossy(&r.body)
                ),
            },
            other => panic!("{vendor:?} sentinel setup: {other:?}"),
        }
    }
}

/// The sentinel items still hold their value: no override case ran the operation it smuggled.
fn sentinel_failures(s: &Server, tables: &Tables) -> Vec<String> {
    let mut failures = Vec::new();
    let value = trust::SENTINEL_VALUE.as_bytes();
    for (vendor, request) in trust::sentinel_reads(&format!("127.0.0.1:{}", s.port)) {
        match exchange(s.port, &request) {
            Exchange::Reply(r)
                if matches!(tables.classify(&r), Ok(Answer::Vendor { code: None, .. }))
                    && r.body.windows(value.len()).any(|w| w == value) => {}
            Exchange::Reply(r) => failures.push(format!(
                "{vendor:?}: the sentinel item is gone or changed: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )),
            other => failures.push(format!("{vendor:?}: reading the sentinel: {other:?}")),
        }
    }
    failures
}

/// The most `/metrics` may hold after the corpus. Labels come from closed sets (each dialect's
/// operations, `unknown`, the statuses), so the exposition is bounded by their product: about
/// 80 KB after a full run of every family, whatever the run size. Were the label-growth cases'
/// names or key ids labels, a run would add megabytes (one series and a 19-line histogram per
/// 0.2–2 KB name).
const METRICS_MAX_BYTES: usize = 256 * 1024;
/// The longest label value: operation names, codes and statuses are short; no client string is
/// copied in whole.
const METRICS_MAX_LABEL_BYTES: usize = 64;

/// Label values of `/metrics` longer than [`METRICS_MAX_LABEL_BYTES`].
fn long_labels(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('{')
                .and_then(|(_, rest)| rest.rsplit_once('}'))
        })
        .flat_map(|(labels, _)| labels.split("\",").map(str::to_string).collect::<Vec<_>>())
        .filter(|pair| pair.len() > METRICS_MAX_LABEL_BYTES + 16)
        .collect()
}

fn run(mode: Mode, seed: u64, n: usize) -> Stats {
    let s = Server::start(match mode {
        Mode::AuthOff => AUTH_OFF,
        Mode::Enforced => "",
    });
    setup_valid_traffic(&s);
    let tables = Tables::new();
    seed_sentinels(&s, &tables);
    let admin_before = admin_state(&s);
    let mut corpus = Corpus::new(seed, s.port);
    let mut stats = Stats::default();
    for i in 0..n {
        let mut case = corpus.case(i);
        if mode == Mode::AuthOff && case.allow.success_without_auth {
            case.allow.success = true;
        }
        if mode == Mode::Enforced && case.sign {
            let key = case.vendor.dev_key();
            if sign_for(case.vendor, &mut case.request, &key) {
                stats.signed += 1;
            }
        }
        let outcome = exchange(s.port, &case.request);
        stats.sent += 1;
        *stats
            .by_category
            .entry((case.vendor, case.category))
            .or_default() += 1;
        match judge(&tables, &case, &outcome) {
            Ok(label) => {
                if let Exchange::Reply(r) = &outcome {
                    if let Ok(Answer::Vendor {
                        vendor,
                        code: Some(code),
                    }) = tables.classify(r)
                    {
                        let bucket = if vendor.is_auth_code(&code) {
                            &mut stats.auth_refusals
                        } else {
                            &mut stats.past_auth
                        };
                        *bucket.entry(vendor).or_default() += 1;
                    }
                }
                *stats.by_answer.entry((case.vendor, label)).or_default() += 1;
            }
            Err(why) => stats.failures.push(format!(
                "#{i} {:?} [{}] {:?}: {why}",
                case.vendor, case.category, case.what
            )),
        }
        if i % 250 == 249 {
            assert_alive(&s);
        }
    }
    assert_alive(&s);
    assert_valid_traffic_works(&s);
    // With auth off nothing is verified, so an unsigned override legitimately runs; enforced, none
    // may have.
    if mode == Mode::Enforced {
        stats.failures.extend(sentinel_failures(&s, &tables));
    }
    let admin_after = admin_state(&s);
    if admin_after.0 != admin_before.0 {
        stats.failures.push(format!(
            "the fault rules changed: {} -> {}",
            admin_before.0, admin_after.0
        ));
    }
    if (admin_after.1 - admin_before.1).abs() > 5 {
        stats.failures.push(format!(
            "the engine clock moved: {} s ahead of the wall clock, then {} s",
            admin_before.1, admin_after.1
        ));
    }
    let (status, metrics) = admin_get(&s, "/metrics");
    stats.metrics_bytes = metrics.len();
    if status != 200 || metrics.len() > METRICS_MAX_BYTES {
        let kept = std::env::temp_dir().join(format!("bad_input-{mode:?}-metrics.txt"));
        let _ = std::fs::write(&kept, &metrics);
        stats.failures.push(format!(
            "/metrics: {status}, {} bytes (at most {METRICS_MAX_BYTES}; kept in {})",
            metrics.len(),
            kept.display()
        ));
    }
    for label in long_labels(&String::from_utf8_lossy(&metrics))
        .iter()
        .take(5)
    {
        stats.failures.push(format!(
            "/metrics label longer than {METRICS_MAX_LABEL_BYTES} bytes: {}",
            label.chars().take(200).collect::<String>()
        ));
    }
    let (status, requests) = admin_get(&s, "/_kvmux/requests?limit=100000");
    stats.inspector_bytes = requests.len();
    stats.inspector_entries = serde_json::from_slice::<serde_json::Value>(&requests)
        .ok()
        .and_then(|v| v["requests"].as_array().map(Vec::len))
        .unwrap_or(0);
    if status != 200 || requests.len() > INSPECTOR_MAX_JSON_BYTES {
        stats.failures.push(format!(
            "/_kvmux/requests: {status}, {} bytes of JSON (at most {INSPECTOR_MAX_JSON_BYTES})",
            requests.len()
        ));
    }
    let log = s.log();
    for bad in ["panicked", "dialect panicked", "stack overflow"] {
        if log.contains(bad) {
            stats
                .failures
                .push(format!("the server log mentions {bad:?}"));
        }
    }
    stats
}

fn report(mode: Mode, seed: u64, stats: &Stats) {
    println!(
        "== {mode:?}: {} malformed requests (seed {seed}), {} signed with the dev credentials",
        stats.sent, stats.signed
    );
    println!(
        "  after the run: /metrics {} bytes (limit {METRICS_MAX_BYTES}), /_kvmux/requests {} \
         entries in {} bytes of JSON (limit {INSPECTOR_MAX_JSON_BYTES})",
        stats.metrics_bytes,
        stats.inspector_bytes_entries(),
        stats.inspector_bytes
    );
    for vendor in Vendor::ALL {
        let total: usize = stats
            .by_category
            .iter()
            .filter(|((v, _), _)| *v == vendor)
            .map(|(_, n)| n)
            .sum();
        println!(
            "  {}: {total} requests; error answers from the signature check {}, from decoders/operations {}",
            vendor.name(),
            stats.auth_refusals.get(&vendor).copied().unwrap_or(0),
            stats.past_auth.get(&vendor).copied().unwrap_or(0)
        );
        for ((_, category), n) in stats.by_category.iter().filter(|((v, _), _)| *v == vendor) {
            println!("    {category:<22} {n}");
        }
        for ((_, label), n) in stats.by_answer.iter().filter(|((v, _), _)| *v == vendor) {
            println!("      -> {label:<48} {n}");
        }
    }
}

fn corpus_in(mode: Mode) {
    let seed = seed();
    let n = count();
    println!(
        "bad_input {mode:?}: seed {seed} (KVMUX_BAD_INPUTS_SEED={seed} replays it), {n} requests"
    );
    let stats = run(mode, seed, n);
    report(mode, seed, &stats);
    assert!(stats.sent >= n);
    for vendor in Vendor::ALL {
        assert!(
            stats.past_auth.get(&vendor).copied().unwrap_or(0) > 0,
            "{vendor:?}: no malformed request got past the signature check"
        );
    }
    assert!(
        stats.failures.is_empty(),
        "{} of {} answers were wrong (seed {seed}):\n{}",
        stats.failures.len(),
        stats.sent,
        stats.failures[..stats.failures.len().min(60)].join("\n")
    );
}

#[test]
fn malformed_requests_with_auth_off_get_vendor_errors() {
    corpus_in(Mode::AuthOff);
}

#[test]
fn malformed_signed_requests_with_signatures_enforced_get_vendor_errors() {
    corpus_in(Mode::Enforced);
}

/// The checker itself can fail: a 5xx, a wrong dialect's envelope, a success for a request that
/// must be refused, an unknown code and a hang are each judged wrong.
#[test]
fn the_judge_refuses_wrong_answers() {
    use adversarial::corpus::Allow;
    use adversarial::raw::RawResponse;
    let tables = Tables::new();
    let case = |vendor, allow| Case {
        vendor,
        category: "test",
        what: "test".into(),
        request: RawRequest::new("POST", "/"),
        allow,
        sign: false,
    };
    let reply = |status: u16, ct: &str, body: Vec<u8>| {
        Exchange::Reply(RawResponse {
            status,
            headers: vec![("Content-Type".into(), ct.as_bytes().to_vec())],
            body,
        })
    };
    let tencent = |code: &str| {
        reply(
            200,
            "application/json",
            serde_json::json!({"Response": {"Error": {"Code": code, "Message": "m"}, "RequestId": "r"}})
                .to_string()
                .into_bytes(),
        )
    };
    let strict = Allow::default();
    assert!(judge(
        &tables,
        &case(Vendor::Tencent, strict),
        &tencent("InvalidParameter")
    )
    .is_ok());
    assert!(judge(
        &tables,
        &case(Vendor::Tencent, strict),
        &tencent("InternalError")
    )
    .is_err());
    assert!(judge(&tables, &case(Vendor::Tencent, strict), &tencent("MadeUp")).is_err());
    assert!(judge(
        &tables,
        &case(Vendor::Aliyun, strict),
        &tencent("InvalidParameter")
    )
    .is_err());
    let success = reply(
        200,
        "application/json",
        br#"{"Response":{"RequestId":"r"}}"#.to_vec(),
    );
    assert!(judge(&tables, &case(Vendor::Tencent, strict), &success).is_err());
    let aliyun_500 = reply(
        500,
        "application/json;charset=utf-8",
        br#"{"RequestId":"R","HostId":"h","Code":"InternalError","Message":"m"}"#.to_vec(),
    );
    assert!(judge(&tables, &case(Vendor::Aliyun, strict), &aliyun_500).is_err());
    let huawei = |status: u16, code: &str| {
        let doc = bson::doc! {"error_code": code, "error_msg": "m", "errorCode": code, "errorMsg": "m", "request_id": "r"};
        reply(status, "application/bson", doc.to_vec().unwrap())
    };
    assert!(judge(
        &tables,
        &case(Vendor::Huawei, strict),
        &huawei(400, "KVS.00001001")
    )
    .is_ok());
    assert!(judge(
        &tables,
        &case(Vendor::Huawei, strict),
        &huawei(501, "KVS.00000002")
    )
    .is_err());
    let documented = Allow {
        not_implemented: true,
        ..Default::default()
    };
    assert!(judge(
        &tables,
        &case(Vendor::Huawei, documented),
        &huawei(501, "KVS.00000002")
    )
    .is_ok());
    assert!(judge(
        &tables,
        &case(Vendor::Huawei, strict),
        &huawei(500, "KVS.00000001")
    )
    .is_err());
    assert!(judge(
        &tables,
        &case(Vendor::Huawei, strict),
        &Exchange::Hang("x".into())
    )
    .is_err());
    assert!(judge(&tables, &case(Vendor::Huawei, strict), &Exchange::Closed).is_err());
}

/// The `/metrics` check sees a client's string copied into a label, and passes the real
/// exposition's short ones.
#[test]
fn the_metrics_check_catches_long_label_values() {
    let good = "# TYPE kvmux_requests counter\n\
        kvmux_requests_total{dialect=\"tencent\",operation=\"EdgeKVGet\",status=\"200\"} 4\n\
        kvmux_request_duration_seconds_bucket{dialect=\"huawei\",operation=\"unknown\",le=\"0.005\"} 1\n";
    assert!(long_labels(good).is_empty());
    let action = format!("EdgeKV{}", "x".repeat(300));
    let bad = format!(
        "kvmux_requests_total{{dialect=\"tencent\",operation=\"{action}\",status=\"200\"}} 1\n"
    );
    let found = long_labels(&bad);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(&action));
}
