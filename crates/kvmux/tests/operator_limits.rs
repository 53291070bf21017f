//! End to end through the real binary: the vendors' documented rate limits, switched on by
//! `[limits] vendor_rate_limits = true` and answered with each vendor's own throttling reply.

mod common;

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
    let codes = tencent_get_codes(&s, 45);
    // The first 20 are always admitted (a second boundary only opens a fresh window); 45 calls
    // span at most two windows, so at least 5 are refused.
    assert!(codes[..20].iter().all(String::is_empty), "{codes:?}");
    let limited = codes
        .iter()
        .filter(|c| *c == "RequestLimitExceeded")
        .count();
    assert!(limited >= 5, "{codes:?}");
    assert!(codes
        .iter()
        .all(|c| c.is_empty() || c == "RequestLimitExceeded"));
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
    let replies: Vec<(u16, Option<String>, Value)> = (0..60)
        .map(|i| {
            aliyun(
                &s,
                &format!("Version=2018-01-15&Action=PutDcdnKv&Namespace=dns&Key=k{i}&Value=v"),
            )
        })
        .collect();
    assert!(replies[..50].iter().all(|(status, _, _)| *status == 200));
    let throttled: Vec<_> = replies
        .iter()
        .filter(|(status, _, _)| *status == 429)
        .collect();
    assert!(!throttled.is_empty(), "60 calls in well under a second");
    for (_, retry, body) in throttled {
        assert_eq!(body["Code"], "TooManyRequests", "{body}");
        assert_eq!(retry.as_deref(), Some("1000"));
    }

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
