//! Micro-benchmarks that guard the per-request hot paths against regressions: each vendor's
//! signature verifier on a real captured SDK request (from the shared vectors), a whole signed get
//! through each dialect over a redb engine (no HTTP: the gateway's own share of a request, which
//! the noisy two-core load runs cannot resolve), the order-preserving document key encoding, and
//! the BSON codec.
//!
//! Run: `cargo bench -p kvmux --bench hot_paths` (figures in docs/BENCHMARKS.md).

use std::hint::black_box;
use std::sync::Arc;

use kvmux_bench::workload;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue};

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body_b64: String,
    credential: Credential,
    now_unix: u64,
    algorithm: String,
    valid: bool,
}

#[derive(serde::Deserialize)]
struct Credential {
    id: String,
    secret: String,
}

/// The first valid vector of `algorithm` whose name contains `hint`.
fn vector(vendor: &str, algorithm: &str, hint: &str) -> Vector {
    kv_testkit::vectors(vendor)
        .into_iter()
        .map(|v| serde_json::from_value::<Vector>(v).expect("a vector"))
        .find(|v| v.valid && v.algorithm == algorithm && v.name.contains(hint))
        .unwrap_or_else(|| panic!("no {algorithm} vector like {hint} in {vendor}.json"))
}

fn headers(v: &Vector) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, val) in &v.headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_bytes(val.as_bytes()).expect("value"),
        );
    }
    map
}

fn body(v: &Vector) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(&v.body_b64)
        .expect("base64")
}

fn signature_verifiers(c: &mut Criterion) {
    let tc3 = vector("tencent", "TC3-HMAC-SHA256", "EdgeKVPut");
    let (h, b) = (headers(&tc3), body(&tc3));
    let uri: http::Uri = tc3.target.parse().expect("uri");
    c.bench_function("verify/tencent TC3-HMAC-SHA256", |bench| {
        bench.iter(|| {
            let req = kv_tencent::auth::SignedRequest {
                method: &tc3.method,
                path: uri.path(),
                query: uri.query().unwrap_or(""),
                headers: &h,
                body: &b,
            };
            let ok = kv_tencent::auth::verify_tc3(
                black_box(&req),
                |id| (id == tc3.credential.id).then_some(tc3.credential.secret.as_str()),
                tc3.now_unix,
            );
            assert!(ok.is_ok());
        })
    });

    let acs3 = vector("aliyun", "ACS3-HMAC-SHA256", "");
    let (h, b) = (headers(&acs3), body(&acs3));
    let uri: http::Uri = acs3.target.parse().expect("uri");
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    c.bench_function("verify/aliyun ACS3-HMAC-SHA256", |bench| {
        bench.iter(|| {
            let ok = kv_aliyun::auth::verify_v3(
                &acs3.method,
                black_box(&query),
                &h,
                &b,
                &|id| (id == acs3.credential.id).then(|| acs3.credential.secret.clone()),
                acs3.now_unix,
            );
            assert!(ok.is_ok());
        })
    });

    for algorithm in ["SDK-HMAC-SHA256", "SDK-HMAC-SM3"] {
        let hw = vector("huawei", algorithm, "put-kv");
        let (h, b) = (headers(&hw), body(&hw));
        let uri: http::Uri = hw.target.parse().expect("uri");
        c.bench_function(&format!("verify/huawei {algorithm}"), |bench| {
            bench.iter(|| {
                let req = kv_huawei::auth::SignedRequest {
                    method: &hw.method,
                    path: uri.path(),
                    query: uri.query(),
                    headers: &h,
                    body: &b,
                };
                let ok = kv_huawei::auth::verify(black_box(&req), hw.now_unix as i64, |ak| {
                    (ak == hw.credential.id).then(|| hw.credential.secret.clone())
                });
                assert!(ok.is_ok());
            })
        });
    }
}

/// The dev secret of `config/kvmux.toml`'s embedded default (the load generator's too).
const DEV_SECRET: &str = "kvmuxdevsecret";

fn dialect(
    target: workload::Target,
    engine: &Arc<kv_core::Engine>,
) -> Arc<dyn kv_dialect::Dialect> {
    let context = kv_dialect::DialectContext {
        engine: engine.clone(),
        credentials: vec![kv_dialect::Credential {
            id: target.dev_key_id().into(),
            secret: DEV_SECRET.into(),
            account: "dev".into(),
        }]
        .into(),
        auth_mode: kv_dialect::AuthMode::Enforce,
        options: serde_json::Value::Null,
        vendor_rate_limits: false,
    };
    match target {
        workload::Target::Tencent => Arc::new(kv_tencent::TencentDialect::new(context)),
        workload::Target::Aliyun => Arc::new(kv_aliyun::AliyunDialect::new(context)),
        _ => Arc::new(kv_huawei::HuaweiDialect::new(context)),
    }
}

/// One signed get of a 1 KiB value, served by the dialect from a redb file: signing it (the
/// client's part, measured alone too) and serving it (verify, route, container, read, envelope).
fn dialect_gets(c: &mut Criterion) {
    use workload::{Op, Target, Workload};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for target in [Target::Tencent, Target::Aliyun, Target::Huawei] {
        let dir = tempfile::tempdir().expect("dir");
        let engine = Arc::new(
            kv_core::Engine::open_redb(
                &dir.path().join("bench.redb"),
                false,
                kv_core::Clock::new(),
            )
            .expect("engine"),
        );
        let dialect = dialect(target, &engine);
        let w = Workload {
            target,
            host: "127.0.0.1:9090".into(),
            key_id: target.dev_key_id().into(),
            secret: DEV_SECRET.into(),
            value: bytes::Bytes::from(vec![b'v'; 1024]),
        };
        let serve = |request| runtime.block_on(dialect.serve_request(request)).response;
        let (create, _) = w.setup(0);
        for request in [create, w.request(Op::Put, 0)] {
            let response = serve(request);
            assert!(!w.is_error(response.status(), response.body()));
        }
        let name = format!("{target:?}").to_lowercase();
        c.bench_function(&format!("get/{name} sign"), |bench| {
            bench.iter(|| black_box(w.request(Op::Get, 0)))
        });
        c.bench_function(&format!("get/{name} sign + serve"), |bench| {
            bench.iter(|| {
                let response = serve(w.request(Op::Get, 0));
                assert!(!w.is_error(response.status(), response.body()));
            })
        });
        drop(dialect);
        runtime.block_on(engine.close()).expect("close");
    }
}

fn documents(c: &mut Criterion) {
    let doc = bson::doc! {
        "owner": "alice", "filename": "reports/2026/q3.pdf", "size": 123_456_i64,
        "tags": ["a", "b", "c"], "meta": {"mime": "application/pdf", "pages": 42},
    };
    let fields = vec!["owner".to_string(), "filename".to_string()];
    c.bench_function("doc/encode composite key (string, string)", |bench| {
        bench.iter(|| kv_doc::keycode::encode_key(black_box(&doc), &fields).expect("key"))
    });
    let numeric = bson::doc! {"shard": 9_i32, "sort": 2.5_f64};
    let numeric_fields = vec!["shard".to_string(), "sort".to_string()];
    c.bench_function("doc/encode composite key (int32, double)", |bench| {
        bench.iter(|| {
            kv_doc::keycode::encode_key(black_box(&numeric), &numeric_fields).expect("key")
        })
    });
    let bytes = kv_doc::encode_document(&doc).expect("encode");
    c.bench_function("bson/decode 5-field document", |bench| {
        bench.iter(|| kv_doc::decode_document(black_box(&bytes)).expect("decode"))
    });
    c.bench_function("bson/encode 5-field document", |bench| {
        bench.iter(|| kv_doc::encode_document(black_box(&doc)).expect("encode"))
    });
}

criterion_group!(benches, signature_verifiers, dialect_gets, documents);
criterion_main!(benches);
