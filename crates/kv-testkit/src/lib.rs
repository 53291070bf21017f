//! Test support shared by the three dialect crates' signature tamper tests: the valid requests of
//! `shared/specs/vectors/<vendor>.json`, and every single-byte replacement of a signed part.
//! Each dialect's test keeps its own truth (what is signed, how its verifier is fed); only the
//! vendor-neutral mechanics live here.
//!
//! Also, for the end-to-end suites: [`linearizability`] (the history checker) and [`postgres`]
//! (a test server and a schema per test).

pub mod linearizability;
pub mod postgres;

use std::ops::Range;
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::Value;

/// A request as sent: the parts a tamperer can change.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    /// The value of the first header named `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_index(self, name).map(|i| self.headers[i].1.as_str())
    }

    /// The request target's query (after `?`), empty when there is none.
    pub fn query(&self) -> &str {
        self.target
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or_default()
    }

    /// The request head as hyper hands it to a dialect: what every verifier is fed.
    pub fn to_parts(&self) -> http::request::Parts {
        let mut builder = http::Request::builder()
            .method(self.method.as_str())
            .uri(self.target.as_str());
        for (k, val) in &self.headers {
            builder = builder.header(
                http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                http::HeaderValue::from_str(val).expect("header value"),
            );
        }
        builder
            .body(())
            .expect("a request http can carry")
            .into_parts()
            .0
    }
}

/// What a tamper test saw: how many tampered requests per signed part, and the ones a verifier
/// accepted (which must be none).
#[derive(Debug, Default)]
pub struct TamperTally {
    pub total: usize,
    pub by_part: std::collections::BTreeMap<String, usize>,
    pub accepted: Vec<String>,
}

impl TamperTally {
    /// One tampered request of `part`; `accepted` names it when the verifier let it through.
    pub fn record(&mut self, part: &str, accepted: Option<String>) {
        self.total += 1;
        *self.by_part.entry(part.to_string()).or_default() += 1;
        self.accepted.extend(accepted);
    }

    /// Prints the counts (the test run shows them), then asserts that no tampered request was
    /// accepted, that every part in `parts` was tampered with, and that there were more than
    /// `at_least` tampered requests in all.
    pub fn assert_all_refused(
        &self,
        vendor: &str,
        vectors: usize,
        parts: &[&str],
        at_least: usize,
    ) {
        println!(
            "{vendor}: {} tampered requests from {vectors} valid vectors, every one refused; \
             by part: {:?}",
            self.total, self.by_part
        );
        assert!(
            self.accepted.is_empty(),
            "{} tampered requests verified:\n{}",
            self.accepted.len(),
            self.accepted.join("\n")
        );
        for part in parts {
            assert!(
                self.by_part.get(*part).copied().unwrap_or(0) > 0,
                "no tampering of {part}"
            );
        }
        assert!(
            self.total > at_least,
            "only {} tampered requests",
            self.total
        );
    }
}

/// Every single-byte replacement in the method (signed by every vendor), labelled `method[i]=c`.
pub fn tamper_method(req: &Req) -> Vec<(String, Req)> {
    tamper_str(&req.method, 0..req.method.len())
        .into_iter()
        .map(|(i, b, method)| {
            let tampered = Req {
                method,
                ..req.clone()
            };
            (format!("method[{i}]={}", b as char), tampered)
        })
        .collect()
}

/// What `verify` made of the unmodified vector; a refusal fails the test with the vector's name.
pub fn verified<T, E: std::fmt::Debug>(vector: &Vector, outcome: Result<T, E>) -> T {
    outcome.unwrap_or_else(|e| panic!("{}: the unmodified request is refused: {e:?}", vector.name))
}

/// Every single-byte replacement in the values of the signed headers and of `authorization`,
/// and in the signed headers' names; labelled `"<name>[i]=c"` and `"<name> name[i]=c"`. A signed
/// header missing from the request is a broken vector.
pub fn tamper_headers(req: &Req, signed_headers: &[String], vector: &str) -> Vec<(String, Req)> {
    let mut out = Vec::new();
    let authorization = "authorization".to_string();
    for name in signed_headers.iter().chain([&authorization]) {
        let h = header_index(req, name)
            .unwrap_or_else(|| panic!("{vector}: signed header {name} missing"));
        let (header_name, value) = &req.headers[h];
        for (i, b, m) in tamper_str(value, 0..value.len()) {
            let mut r = req.clone();
            r.headers[h].1 = m;
            out.push((format!("{name}[{i}]={}", b as char), r));
        }
        if name != "authorization" {
            for (i, b, m) in tamper_str(header_name, 0..header_name.len()) {
                let mut r = req.clone();
                r.headers[h].0 = m;
                out.push((format!("{name} name[{i}]={}", b as char), r));
            }
        }
    }
    out
}

/// A signature's freshness window around `signed_at`: `verify(now)` refuses just outside it
/// (`refusal` checks the vendor's error) and a day away, and accepts at its edges and centre.
pub fn assert_freshness_window<T, E: std::fmt::Debug>(
    vector: &str,
    signed_at: u64,
    window: u64,
    verify: impl Fn(u64) -> Result<T, E>,
    refusal: impl Fn(&E),
) {
    let outside = [
        signed_at + window + 1,
        signed_at - window - 1,
        signed_at + 86_400,
        signed_at - 86_400,
    ];
    for now in outside {
        match verify(now) {
            Ok(_) => panic!("{vector}: accepted at {now}, outside the window"),
            Err(e) => refusal(&e),
        }
    }
    for now in [signed_at + window, signed_at - window, signed_at] {
        if let Err(e) = verify(now) {
            panic!("{vector}: refused at {now}, inside the window: {e:?}");
        }
    }
}

/// A dialect's metrics/log label set (`Dialect::operations`) is exactly its operations: every
/// operation's name is a label (no served request counted as `unknown`), there are no others,
/// and every label routes back to an operation.
pub fn assert_labels_are_the_operations<'a>(
    operation_names: impl IntoIterator<Item = &'a str>,
    labels: &[&str],
    routes: impl Fn(&str) -> bool,
) {
    let mut count = 0;
    for name in operation_names {
        assert!(labels.contains(&name), "{name} is not a label");
        count += 1;
    }
    assert_eq!(
        labels.len(),
        count,
        "labels that are no operation: {labels:?}"
    );
    for label in labels {
        assert!(routes(label), "{label} does not route");
    }
}

/// The part a tamper label names: `"host[3]=x"` is part `host`.
pub fn part_of(label: &str) -> &str {
    label.split('[').next().unwrap_or_default()
}

/// The position of the first header called `name` (any case).
pub fn header_index(req: &Req, name: &str) -> Option<usize> {
    req.headers
        .iter()
        .position(|(k, _)| k.eq_ignore_ascii_case(name))
}

/// A valid signed request of the vectors file, with the credential and clock it verifies under.
pub struct Vector {
    pub name: String,
    pub algorithm: String,
    pub id: String,
    pub secret: String,
    /// Unix seconds at which the request is fresh.
    pub now: u64,
    pub req: Req,
}

/// [`valid_vectors`], asserting that the file holds `expected` of them (a vector lost from the
/// file would otherwise shrink every tamper test silently).
pub fn valid_vectors_expecting(vendor: &str, expected: usize) -> Vec<Vector> {
    let all = valid_vectors(vendor);
    assert_eq!(
        all.len(),
        expected,
        "the vectors file holds {expected} valid {vendor} requests"
    );
    all
}

/// Runs `check` on every valid vector of `vendor` with its request head, having asserted how many
/// valid vectors of each algorithm the file holds (`expected`, none of any other), so a vector
/// lost from the file cannot shrink the check silently.
pub fn check_valid_vectors(
    vendor: &str,
    expected: &[(&str, usize)],
    mut check: impl FnMut(&Vector, &http::request::Parts),
) {
    let vectors = valid_vectors(vendor);
    let mut by_algorithm = std::collections::BTreeMap::new();
    for v in &vectors {
        *by_algorithm.entry(v.algorithm.as_str()).or_insert(0) += 1;
    }
    let expected: std::collections::BTreeMap<&str, usize> = expected.iter().copied().collect();
    assert_eq!(
        by_algorithm, expected,
        "valid {vendor} vectors by algorithm"
    );
    for v in &vectors {
        check(v, &v.req.to_parts());
    }
}

/// Every vector of `shared/specs/vectors/<vendor>.json`, valid and tampered, as the file holds it.
pub fn vectors(vendor: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../../shared/specs/vectors/{vendor}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the vectors file is a JSON array")
}

/// The valid vectors of `shared/specs/vectors/<vendor>.json` (the tampered ones there are the
/// spec's own; these tests make their own from the valid ones).
pub fn valid_vectors(vendor: &str) -> Vec<Vector> {
    let text_of = |v: &Value| v.as_str().expect("a string field").to_string();
    vectors(vendor)
        .iter()
        .filter(|v| v["valid"] == true)
        .map(|v| Vector {
            name: text_of(&v["name"]),
            algorithm: text_of(&v["algorithm"]),
            id: text_of(&v["credential"]["id"]),
            secret: text_of(&v["credential"]["secret"]),
            now: v["now_unix"].as_u64().expect("now_unix"),
            req: Req {
                method: text_of(&v["method"]),
                target: text_of(&v["target"]),
                headers: v["headers"]
                    .as_array()
                    .expect("headers")
                    .iter()
                    .map(|h| (text_of(&h[0]), text_of(&h[1])))
                    .collect(),
                body: base64::engine::general_purpose::STANDARD
                    .decode(v["body_b64"].as_str().expect("body_b64"))
                    .expect("body_b64 is base64"),
            },
        })
        .collect()
}

/// The values a byte is replaced with: the next one of its class (digit, lower, upper; never a
/// case change, which header names and hex signatures legitimately ignore) and, for a hex digit,
/// the next hex digit; anything else becomes `Z`. All stay legal in a URI and a header.
pub fn replacements(b: u8) -> Vec<u8> {
    let next = match b {
        b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => b + 1,
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        _ => b'Z',
    };
    let mut out = vec![next];
    let hex = match b {
        b'0'..=b'8' | b'a'..=b'e' => Some(b + 1),
        b'9' => Some(b'a'),
        b'f' => Some(b'0'),
        _ => None,
    };
    if let Some(h) = hex.filter(|h| *h != next) {
        out.push(h);
    }
    out
}

/// Every single-byte replacement of `bytes` at the positions in `range`: (position, new byte, copy).
pub fn tamper_bytes(bytes: &[u8], range: Range<usize>) -> Vec<(usize, u8, Vec<u8>)> {
    let mut out = Vec::new();
    for i in range {
        for r in replacements(bytes[i]) {
            let mut b = bytes.to_vec();
            b[i] = r;
            out.push((i, r, b));
        }
    }
    out
}

/// [`tamper_bytes`] of a text, keeping the copies that are still UTF-8.
pub fn tamper_str(text: &str, range: Range<usize>) -> Vec<(usize, u8, String)> {
    tamper_bytes(text.as_bytes(), range)
        .into_iter()
        .filter_map(|(i, r, b)| String::from_utf8(b).ok().map(|s| (i, r, s)))
        .collect()
}

/// Asserts that docs/COVERAGE.md's section of `vendor` (between `<!-- vendor:begin -->` and
/// `<!-- vendor:end -->`) lists exactly the operations `served`, each once, each with a status of
/// `full`, `partial` or `none` in cell `status_cell` of its row (cell 1 is the operation, in
/// backticks), so the page cannot drift from a dialect's router.
pub fn assert_coverage_lists<'a>(
    vendor: &str,
    status_cell: usize,
    served: impl IntoIterator<Item = &'a str>,
) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/COVERAGE.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let begin = text
        .find(&format!("<!-- {vendor}:begin -->"))
        .unwrap_or_else(|| panic!("{vendor}:begin marker"));
    let end = text
        .find(&format!("<!-- {vendor}:end -->"))
        .unwrap_or_else(|| panic!("{vendor}:end marker"));
    assert!(begin < end, "{vendor} markers out of order");
    let mut listed = std::collections::BTreeSet::new();
    for row in text[begin..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let operation = cells[1].trim_matches('`');
        let status = cells.get(status_cell).copied().unwrap_or_default();
        assert!(
            ["full", "partial", "none"].contains(&status),
            "{vendor} {operation}: unknown status {status:?}"
        );
        assert!(
            listed.insert(operation.to_string()),
            "{vendor} {operation} is listed twice"
        );
    }
    let served: std::collections::BTreeSet<String> =
        served.into_iter().map(str::to_string).collect();
    assert_eq!(
        listed, served,
        "docs/COVERAGE.md's {vendor} section against the router"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replacements_never_fold_to_the_same_byte() {
        for b in 0u8..=127 {
            for r in replacements(b) {
                assert_ne!(r, b);
                assert!(!r.eq_ignore_ascii_case(&b), "{b} -> {r} is a case change");
            }
        }
    }

    #[test]
    fn vectors_holds_every_vector_and_valid_vectors_the_valid_ones() {
        for (vendor, all, valid) in [
            ("tencent", 34, 20),
            ("aliyun", 47, 36),
            ("huawei", 120, 110),
        ] {
            let vectors = vectors(vendor);
            assert_eq!(vectors.len(), all, "{vendor}");
            let marked = vectors.iter().filter(|v| v["valid"] == true).count();
            assert_eq!(marked, valid, "{vendor}");
            let names: Vec<String> = valid_vectors(vendor).into_iter().map(|v| v.name).collect();
            let expected: Vec<&str> = vectors
                .iter()
                .filter(|v| v["valid"] == true)
                .map(|v| v["name"].as_str().expect("a name"))
                .collect();
            assert_eq!(names, expected, "{vendor}");
        }
    }

    #[test]
    fn every_vendor_has_valid_vectors_and_tampering_changes_one_byte() {
        for vendor in ["tencent", "aliyun", "huawei"] {
            let vectors = valid_vectors(vendor);
            assert!(!vectors.is_empty(), "{vendor}");
            let req = &vectors[0].req;
            for (i, r, copy) in tamper_str(&req.method, 0..req.method.len()) {
                assert_eq!(copy.as_bytes()[i], r);
                let differing = copy.bytes().zip(req.method.bytes()).filter(|(a, b)| a != b);
                assert_eq!(differing.count(), 1);
            }
        }
    }
}
