//! Writes the seed corpora, `corpus/<target>/seed-*`, from the requests the real SDKs sent:
//! the shared captures (`shared/specs/*-captures.txt`) and signature vectors
//! (`shared/specs/vectors/*.json`), in the raw request format of `kvmux_fuzz::parse_request`.
//! Signature targets get the four control bytes in front (no change, a rotating signing variant).
//!
//! Run from anywhere: `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use kvmux_fuzz::{parse_request, Control};

/// At most this many seeds per target, so the committed corpus stays small.
const MAX_SEEDS: usize = 40;

fn specs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs")
}

/// Requests in the tencent and aliyun capture layout: after a `=====` rule (and an optional
/// `### title` line), the request line, headers, a blank line and the body up to `[verify]`.
fn plain_captures(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for block in text.split("\n=====").skip(1) {
        let mut lines = block.lines().skip(1).skip_while(|l| l.starts_with("###"));
        let mut raw = String::new();
        let mut in_body = false;
        for line in lines.by_ref() {
            if line.starts_with("[verify]") || line.starts_with("--- ") {
                break;
            }
            let line = line.strip_suffix(" HTTP/1.1").unwrap_or(line);
            if line.is_empty() && !in_body {
                in_body = true;
                raw.push('\n');
                continue;
            }
            if in_body && !raw.ends_with("\n\n") {
                raw.push('\n');
            }
            raw.push_str(line);
            if !in_body {
                raw.push('\n');
            }
        }
        if !in_body {
            raw.push('\n');
        }
        out.push(raw.into_bytes());
    }
    out
}

/// Requests in the huawei capture layout: `REQUEST LINE:`, indented `HEADERS`, `BODY ... hex:`.
fn huawei_captures(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for block in text.split("\nREQUEST LINE: ").skip(1) {
        let mut lines = block.lines();
        let Some(request_line) = lines.next() else {
            continue;
        };
        let mut raw = request_line
            .trim_end_matches(" HTTP/1.1")
            .as_bytes()
            .to_vec();
        let mut body = Vec::new();
        let mut in_headers = false;
        for line in lines {
            if line.starts_with("HEADERS") {
                in_headers = true;
            } else if let Some(header) = line.strip_prefix("  ").filter(|_| in_headers) {
                raw.push(b'\n');
                raw.extend_from_slice(header.as_bytes());
            } else if line.starts_with("BODY") {
                if let Some((_, hex)) = line.split_once("hex: ") {
                    body = hex::decode(hex.trim()).unwrap_or_default();
                }
                break;
            } else if !line.starts_with("  (") {
                in_headers = false;
            }
        }
        raw.extend_from_slice(b"\n\n");
        raw.extend_from_slice(&body);
        out.push(raw);
    }
    out
}

/// Every vector of a vendor as a raw request.
fn vectors(vendor: &str) -> Vec<Vec<u8>> {
    let path = specs().join(format!("vectors/{vendor}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let vectors: Vec<serde_json::Value> = serde_json::from_str(&text).expect("vectors are JSON");
    vectors
        .iter()
        .map(|v| {
            let mut raw = format!(
                "{} {}",
                v["method"].as_str().unwrap(),
                v["target"].as_str().unwrap()
            );
            for pair in v["headers"].as_array().unwrap() {
                raw.push_str(&format!(
                    "\n{}: {}",
                    pair[0].as_str().unwrap(),
                    pair[1].as_str().unwrap()
                ));
            }
            raw.push_str("\n\n");
            let mut raw = raw.into_bytes();
            let body = base64::engine::general_purpose::STANDARD
                .decode(v["body_b64"].as_str().unwrap_or(""))
                .expect("body_b64 is base64");
            raw.extend_from_slice(&body);
            raw
        })
        .collect()
}

/// The SDK captures name their table `t1`, which KVS (and the gateway) refuse as shorter than 3
/// characters; with it every later operation meets a missing store and the fuzzer stays at the
/// front door. Renamed to `t1x` (the BSON re-encoded, the Content-Length dropped).
fn with_valid_table_name(raw: Vec<u8>) -> Vec<u8> {
    let Some(at) = raw.windows(2).position(|w| w == b"\n\n") else {
        return raw;
    };
    let Ok(mut doc) = kv_doc::decode_document(&raw[at + 2..]) else {
        return raw;
    };
    if doc.get_str("table_name").ok() != Some("t1") {
        return raw;
    }
    doc.insert("table_name", "t1x");
    let Ok(body) = doc.to_vec() else {
        return raw;
    };
    let head = String::from_utf8_lossy(&raw[..at]);
    let head: Vec<&str> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .collect();
    let mut out = head.join("\n").into_bytes();
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(&body);
    out
}

/// The requests of a vendor that parse, captures first, each distinct one once.
fn requests(vendor: &str) -> Vec<Vec<u8>> {
    let captures = std::fs::read_to_string(specs().join(format!("{vendor}-captures.txt")))
        .expect("captures are readable");
    let mut all = if vendor == "huawei" {
        huawei_captures(&captures)
    } else {
        plain_captures(&captures)
    };
    all.extend(vectors(vendor));
    if vendor == "huawei" {
        all = all.into_iter().map(with_valid_table_name).collect();
    }
    let mut seen = BTreeSet::new();
    all.retain(|raw| parse_request(raw).is_some() && seen.insert(raw.clone()));
    all
}

fn write(target: &str, seeds: impl IntoIterator<Item = Vec<u8>>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    let mut n = 0;
    for seed in seeds.into_iter().take(MAX_SEEDS) {
        std::fs::write(dir.join(format!("seed-{n:03}")), seed).expect("writing a seed");
        n += 1;
    }
    assert!(n > 0, "no seeds for {target}");
    println!("{target}: {n} seeds");
}

/// Seeds for a signature target: the control bytes (no change, variant `i % 8`) + the request.
fn signature_seeds(requests: &[Vec<u8>], keep: impl Fn(&str) -> bool) -> Vec<Vec<u8>> {
    requests
        .iter()
        .filter(|raw| keep(&String::from_utf8_lossy(raw)))
        .enumerate()
        .map(|(i, raw)| {
            let mut seed = Control::seed((i % 8) as u8).to_vec();
            seed.extend_from_slice(raw);
            seed
        })
        .collect()
}

/// Spread the picks over the whole list, so a capped target still sees every client.
fn spread(all: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if all.len() <= MAX_SEEDS {
        return all;
    }
    let step = all.len() as f64 / MAX_SEEDS as f64;
    (0..MAX_SEEDS)
        .map(|i| all[(i as f64 * step) as usize].clone())
        .collect()
}

/// Seeds for `unsigned_override`: Aliyun V3 captures (control bit 7 clear) and Huawei captures
/// (bit 7 set), half each, every one with an override chosen (`mutate_at` = i, `xor` bit 0
/// alternating replace and repeat).
fn override_seeds(aliyun_v3: Vec<Vec<u8>>, huawei: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let half = MAX_SEEDS / 2;
    let mut out = Vec::new();
    for (flags, requests) in [(0u8, aliyun_v3), (0x80, huawei)] {
        for (i, raw) in spread(requests).into_iter().take(half).enumerate() {
            let mut seed = vec![i as u8, 0, (i % 2) as u8, flags | (i % 4) as u8];
            seed.extend_from_slice(&raw);
            out.push(seed);
        }
    }
    out
}

fn main() {
    let tencent = requests("tencent");
    let aliyun = requests("aliyun");
    let huawei = requests("huawei");
    write("dialect_tencent", spread(tencent.clone()));
    write("dialect_aliyun", spread(aliyun.clone()));
    write("dialect_huawei", spread(huawei.clone()));
    let tc3 = |r: &str| r.contains("TC3-HMAC-SHA256");
    write("sig_tencent_tc3", spread(signature_seeds(&tencent, tc3)));
    write(
        "sig_tencent_legacy",
        spread(signature_seeds(&tencent, |r| !tc3(r))),
    );
    let v3 = |r: &str| r.contains("ACS3-HMAC");
    write("sig_aliyun_v3", spread(signature_seeds(&aliyun, v3)));
    write(
        "sig_aliyun_v2",
        spread(signature_seeds(&aliyun, |r| !v3(r))),
    );
    write("sig_huawei", spread(signature_seeds(&huawei, |_| true)));
    let v3_requests: Vec<Vec<u8>> = aliyun
        .iter()
        .filter(|r| v3(&String::from_utf8_lossy(r)))
        .cloned()
        .collect();
    write("unsigned_override", override_seeds(v3_requests, huawei));
}
