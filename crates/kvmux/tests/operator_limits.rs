//! End to end through the real binary: the vendors' documented rate limits, switched on by
//! `[limits] vendor_rate_limits = true` and answered with each vendor's own throttling reply.

mod common;

use std::time::{Duration, Instant};

use common::{agent, Server, AUTH_OFF};
use serde_json::{json, Value};

const RATE_LIMITS: &str = "[limits]\nvendor_rate_limits = true\n";

fn tencent_get_codes(s: &Server, calls: usize) -> Vec<String> {
    (0..calls)
        .map(|_| {
            let r = s.tencent(
                "EdgeKVGet",
                json!({"ZoneId": "z", "Namespace": "ns", "Keys": ["k"]}),
            );
            r["Error"]["Code"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn tencent_allows_20_calls_per_second_per_action_when_switched_on() {
    let s = Server::start(&format!("{RATE_LIMITS}{AUTH_OFF}"));
    s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    );
    // Windows are wall-clock seconds: a burst of 45 that finishes within one second spans at most
    // two windows, so at least 5 calls are refused; the first 20 of a burst that starts in a
    // fresh second are always admitted. A loaded machine may be too slow; then try again.
    let mut judged = false;
    for _ in 0..5 {
        let started = Instant::now();
        let codes = tencent_get_codes(&s, 45);
        assert!(codes[..20].iter().all(String::is_empty), "{codes:?}");
        assert!(codes
            .iter()
            .all(|c| c.is_empty() || c == "RequestLimitExceeded"));
        if started.elapsed() < Duration::from_millis(1000) {
            let limited = codes
                .iter()
                .filter(|c| *c == "RequestLimitExceeded")
                .count();
            assert!(limited >= 5, "{codes:?}");
            judged = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2100));
    }
    assert!(judged, "never got 45 calls into one second in 5 tries");
    // The limit is per action: another action is not affected by EdgeKVGet's burst.
    let r = s.tencent("DescribeEdgeKVNamespaces", json!({"ZoneId": "z"}));
    assert!(r.get("Error").is_none(), "{r}");
}

#[test]
fn without_the_switch_nothing_is_throttled() {
    let s = Server::start(AUTH_OFF);
    s.tencent(
        "CreateEdgeKVNamespace",
        json!({"ZoneId": "z", "Namespace": "ns"}),
    );
    let codes = tencent_get_codes(&s, 45);
    assert!(codes.iter().all(String::is_empty), "{codes:?}");
}

fn aliyun(s: &Server, query: &str) -> (u16, Option<String>, Value) {
    let mut r = agent()
        .post(&s.url(&format!("/?{query}")))
        .send_empty()
        .expect("aliyun request");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("x-acs-retry-after")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (status, retry, r.body_mut().read_json().expect("json"))
}

#[test]
fn aliyun_answers_too_many_and_too_quick_requests() {
    let s = Server::start(&format!("{RATE_LIMITS}{AUTH_OFF}"));
    // DCDN PutDcdnKv: 50 calls per second per user.
    let (status, _, r) = aliyun(
        &s,
        "Version=2018-01-15&Action=PutDcdnKvNamespace&Namespace=dns&Description=d",
    );
    assert_eq!(status, 200, "{r}");
    // A sliding one-second window of 50 admitted calls. Every call that finished within a second
    // of the first call's start was stamped within a second of the first, so once 50 have been
    // admitted each such call must be refused. A loaded machine may be too slow to get 51 calls
    // into one second; then the window is let empty and the burst tried again.
    let mut judged = 0;
    for attempt in 0..5 {
        let first = Instant::now();
        let mut admitted = 0;
        for i in 0..70 {
            let (status, retry, body) = aliyun(
                &s,
                &format!(
                    "Version=2018-01-15&Action=PutDcdnKv&Namespace=dns&Key=a{attempt}k{i}&Value=v"
                ),
            );
            let within_window = first.elapsed() < Duration::from_millis(1000);
            if status == 200 {
                admitted += 1;
                assert!(
                    !(within_window && admitted > 50),
                    "call {i}: a 51st call admitted within one second"
                );
            } else {
                assert_eq!(status, 429, "{body}");
                assert_eq!(body["Code"], "TooManyRequests", "{body}");
                assert_eq!(retry.as_deref(), Some("1000"));
                assert!(
                    admitted >= 50,
                    "call {i} refused after only {admitted} admitted"
                );
                if within_window {
                    judged += 1;
                }
            }
            if !within_window {
                break;
            }
        }
        if judged > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    assert!(judged > 0, "never got 51 calls into one second in 5 tries");

    // ESA: the same item modified twice within a second is TooQuickRequests.
    let (status, _, r) = aliyun(
        &s,
        "Version=2024-09-10&Action=CreateKvNamespace&Namespace=ens",
    );
    assert_eq!(status, 200, "{r}");
    let put = "Version=2024-09-10&Action=PutKv&Namespace=ens&Key=same&Value=v";
    assert_eq!(aliyun(&s, put).0, 200);
    let (status, _, r) = aliyun(&s, put);
    assert_eq!(
        (status, r["Code"].clone()),
        (429, json!("TooQuickRequests")),
        "{r}"
    );
}
