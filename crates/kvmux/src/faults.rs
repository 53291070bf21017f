//! Fault injection: rules that make the gateway misbehave on purpose, so that a client's retry and
//! back-off code can be tested against the vendor's own throttling and server-error replies
//! (produced by each dialect's `gateway_error`, so the envelope, status and code are the vendor's).
//!
//! A rule matches on dialect, operation and account (absent = any) and fires with a probability.
//! The account is found without verifying anything, before the body is read: each dialect reads
//! the access key id its vendor's signature names and maps it through its credentials
//! (`Head::account` from `Dialect::classify`, runtime and auto accounts included).

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The error a rule answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultError {
    /// The vendor's throttling reply (RequestLimitExceeded, TooManyRequests, KVS.00001023).
    Throttle,
    /// The vendor's internal server error.
    Internal,
}

/// A rule as posted to `/_kvmux/faults`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRuleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// 0.0 ..= 1.0; default 1.0 (always).
    #[serde(default = "always")]
    pub probability: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FaultError>,
    /// Added before the request is answered (or served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

fn always() -> f64 {
    1.0
}

/// The longest latency a rule may add; a typo of a few zeros must not hang a test suite.
pub const MAX_LATENCY_MS: u64 = 60_000;

impl FaultRuleSpec {
    /// Checks what serde cannot: a usable probability and at least one effect.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(format!(
                "probability must be between 0 and 1, got {}",
                self.probability
            ));
        }
        if self.error.is_none() && self.latency_ms.is_none() {
            return Err(
                "a rule needs \"error\" (\"throttle\" or \"internal\") or \"latency_ms\"".into(),
            );
        }
        if self.latency_ms.is_some_and(|l| l > MAX_LATENCY_MS) {
            return Err(format!("latency_ms must be at most {MAX_LATENCY_MS}"));
        }
        if let Some(d) = &self.dialect {
            if !["tencent", "aliyun", "huawei"].contains(&d.as_str()) {
                return Err(format!(
                    "dialect must be tencent, aliyun or huawei, got {d:?}"
                ));
            }
        }
        Ok(())
    }

    /// Checks the rule's names against the gateway's enabled dialects, given as `(name,
    /// operations)` ([`kv_dialect::Dialect::operations`]): a dialect that is not enabled, or an
    /// operation no (named) dialect has, would make a rule that never fires, and a test that
    /// relies on it would pass for the wrong reason. The error lists the valid names.
    /// Operations match case-insensitively, as [`Faults::decide`] does.
    pub fn check_names(&self, dialects: &[(&str, &[&str])]) -> Result<(), String> {
        let named: Vec<&(&str, &[&str])> = match &self.dialect {
            Some(d) => {
                let found: Vec<_> = dialects.iter().filter(|(name, _)| name == d).collect();
                if found.is_empty() {
                    let enabled: Vec<&str> = dialects.iter().map(|(name, _)| *name).collect();
                    return Err(format!(
                        "dialect {d:?} is not enabled on this gateway; enabled: {}",
                        enabled.join(", ")
                    ));
                }
                found
            }
            None => dialects.iter().collect(),
        };
        let Some(operation) = &self.operation else {
            return Ok(());
        };
        let known = named
            .iter()
            .any(|(_, ops)| ops.iter().any(|op| op.eq_ignore_ascii_case(operation)));
        if known {
            return Ok(());
        }
        let valid: Vec<String> = named
            .iter()
            .map(|(name, ops)| format!("{name}: {}", ops.join(", ")))
            .collect();
        let whose = match &self.dialect {
            Some(d) => format!("a {d} operation"),
            None => "an operation of any enabled dialect".into(),
        };
        Err(format!(
            "operation {operation:?} is not {whose}; valid operations (case-insensitive): {}",
            valid.join("; ")
        ))
    }

    fn matches(&self, dialect: &str, operation: Option<&str>, account: Option<&str>) -> bool {
        self.dialect.as_deref().is_none_or(|d| d == dialect)
            && self
                .operation
                .as_deref()
                .is_none_or(|o| operation.is_some_and(|op| op.eq_ignore_ascii_case(o)))
            && self
                .account
                .as_deref()
                .is_none_or(|a| account.is_some_and(|acc| acc == a))
    }
}

/// A stored rule with its id and how often it fired.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRule {
    pub id: u64,
    #[serde(flatten)]
    pub spec: FaultRuleSpec,
    pub fired: u64,
}

/// What to do to one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub rule_id: u64,
    pub error: Option<FaultError>,
    pub latency_ms: u64,
}

/// The rule table.
#[derive(Default)]
pub struct Faults {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    rules: Vec<FaultRule>,
}

impl Faults {
    pub fn add(&self, spec: FaultRuleSpec) -> FaultRule {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.next_id += 1;
        let rule = FaultRule {
            id: state.next_id,
            spec,
            fired: 0,
        };
        state.rules.push(rule.clone());
        rule
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rules
            .clone()
    }

    /// Removes every rule; returns how many there were.
    pub fn clear(&self) -> usize {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut state.rules).len()
    }

    /// Removes one rule; false if there is none with that id.
    pub fn remove(&self, id: u64) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let before = state.rules.len();
        state.rules.retain(|r| r.id != id);
        state.rules.len() != before
    }

    /// The first matching rule that fires (its probability drawn now), if any.
    pub fn decide(
        &self,
        dialect: &str,
        operation: Option<&str>,
        account: Option<&str>,
    ) -> Option<Decision> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let rule = state.rules.iter_mut().find(|r| {
            r.spec.matches(dialect, operation, account)
                && (r.spec.probability >= 1.0 || fastrand::f64() < r.spec.probability)
        })?;
        rule.fired += 1;
        Some(Decision {
            rule_id: rule.id,
            error: rule.spec.error,
            latency_ms: rule.spec.latency_ms.unwrap_or(0),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rules
            .is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FaultRuleSpec {
        serde_json::from_str(json).expect("spec")
    }

    #[test]
    fn absent_fields_match_everything_and_operation_is_case_insensitive() {
        let faults = Faults::default();
        faults.add(spec(
            r#"{"dialect":"huawei","operation":"put-kv","error":"throttle"}"#,
        ));
        assert_eq!(faults.decide("tencent", Some("put-kv"), None), None);
        assert_eq!(faults.decide("huawei", Some("get-kv"), None), None);
        assert_eq!(faults.decide("huawei", None, None), None);
        let d = faults
            .decide("huawei", Some("PUT-KV"), Some("anyone"))
            .expect("fires");
        assert_eq!(d.error, Some(FaultError::Throttle));
        assert_eq!(faults.list()[0].fired, 1);
    }

    #[test]
    fn account_rules_need_a_known_account() {
        let faults = Faults::default();
        faults.add(spec(r#"{"account":"team-a","latency_ms":5}"#));
        assert_eq!(faults.decide("tencent", None, None), None);
        assert_eq!(faults.decide("tencent", None, Some("team-b")), None);
        assert_eq!(
            faults
                .decide("tencent", None, Some("team-a"))
                .map(|d| d.latency_ms),
            Some(5)
        );
    }

    #[test]
    fn probability_is_honoured_roughly() {
        let faults = Faults::default();
        faults.add(spec(r#"{"probability":0.25,"error":"internal"}"#));
        let fired = (0..4000)
            .filter(|_| faults.decide("aliyun", None, None).is_some())
            .count();
        assert!((700..1300).contains(&fired), "{fired} of 4000");
        faults.clear();
        faults.add(spec(r#"{"probability":0.0,"error":"internal"}"#));
        assert!((0..1000).all(|_| faults.decide("aliyun", None, None).is_none()));
    }

    #[test]
    fn rules_naming_an_operation_or_dialect_the_gateway_lacks_are_refused_with_the_valid_ones() {
        let tencent: &[&str] = &["EdgeKVPut", "EdgeKVGet"];
        let huawei: &[&str] = &["put-kv", "get-kv"];
        let both = [("tencent", tencent), ("huawei", huawei)];
        let check = |json: &str| spec(json).check_names(&both);
        assert_eq!(
            check(r#"{"dialect":"tencent","operation":"edgekvput","error":"throttle"}"#),
            Ok(())
        );
        assert_eq!(
            check(r#"{"operation":"GET-KV","error":"throttle"}"#),
            Ok(())
        );
        assert_eq!(check(r#"{"dialect":"huawei","error":"throttle"}"#), Ok(()));
        assert_eq!(
            check(r#"{"dialect":"tencent","operation":"PutKV","error":"throttle"}"#),
            Err(
                "operation \"PutKV\" is not a tencent operation; valid operations \
                 (case-insensitive): tencent: EdgeKVPut, EdgeKVGet"
                    .into()
            )
        );
        // An operation of another dialect is not one of this dialect's.
        assert!(check(r#"{"dialect":"tencent","operation":"put-kv","error":"throttle"}"#).is_err());
        assert_eq!(
            check(r#"{"operation":"Put","error":"internal"}"#),
            Err(
                "operation \"Put\" is not an operation of any enabled dialect; valid \
                 operations (case-insensitive): tencent: EdgeKVPut, EdgeKVGet; huawei: put-kv, \
                 get-kv"
                    .into()
            )
        );
        assert_eq!(
            check(r#"{"dialect":"aliyun","error":"internal"}"#),
            Err(
                "dialect \"aliyun\" is not enabled on this gateway; enabled: tencent, huawei"
                    .into()
            )
        );
    }

    #[test]
    fn validation_refuses_useless_or_dangerous_rules() {
        assert!(spec(r#"{"probability":1.5,"error":"internal"}"#)
            .validate()
            .is_err());
        assert!(spec(r#"{"dialect":"tencent"}"#).validate().is_err());
        assert!(spec(r#"{"latency_ms":600000}"#).validate().is_err());
        assert!(spec(r#"{"dialect":"aws","error":"throttle"}"#)
            .validate()
            .is_err());
        assert!(spec(r#"{"error":"throttle"}"#).validate().is_ok());
        assert!(serde_json::from_str::<FaultRuleSpec>(r#"{"error":"boom"}"#).is_err());
    }
}
