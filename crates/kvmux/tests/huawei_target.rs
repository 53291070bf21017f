//! Huawei KVS, end to end with signatures enforced: the store comes from what was signed (the
//! Host header, never an absolute-form target naming another host), a document with a repeated
//! field name is refused, and scan / batch-get pages stop at the vendor's 1 MB cap with a way to
//! resume.

mod adversarial;
mod common;

use adversarial::raw::{exchange, Exchange, RawRequest};
use adversarial::sign;
use adversarial::Vendor;
use bson::{doc, Bson, Document};
use common::Server;

const ENFORCE: &str = "[auth]\nmode = \"enforce\"\n";

/// The vendor's own page cap ("100 docs or 1 MB"), with 1 MiB as the most lenient reading.
const ONE_MIB: usize = 1 << 20;

fn store_host(s: &Server, store: &str) -> String {
    format!("{store}.127.0.0.1:{}", s.port)
}

/// Status, reply document and reply size of one signed request.
fn send(s: &Server, mut r: RawRequest) -> (u16, Document, usize) {
    assert!(sign::huawei(&mut r, &Vendor::Huawei.dev_key()), "signable");
    send_signed(s, &r)
}

fn send_signed(s: &Server, r: &RawRequest) -> (u16, Document, usize) {
    match exchange(s.port, r) {
        Exchange::Reply(reply) => {
            assert_eq!(reply.content_type(), "application/bson");
            let d = Document::from_reader(&mut reply.body.as_slice()).expect("bson reply");
            (reply.status, d, reply.body.len())
        }
        other => panic!("{other:?}"),
    }
}

fn request(target: &str, host: &str, body: Vec<u8>) -> RawRequest {
    RawRequest::new("POST", target)
        .header("Host", host)
        .header("Content-Type", "application/bson")
        .body(body)
}

fn call(s: &Server, store: &str, op: &str, body: Document) -> (u16, Document, usize) {
    send(
        s,
        request(
            &format!("/v1/{op}"),
            &store_host(s, store),
            body.to_vec().expect("bson"),
        ),
    )
}

fn ok(s: &Server, store: &str, op: &str, body: Document) -> Document {
    let (status, d, _) = call(s, store, op, body);
    assert_eq!(status, 200, "{op}: {d}");
    d
}

fn create_table(s: &Server, store: &str, table: &str) {
    ok(
        s,
        store,
        "create-table",
        doc! {"table_name": table, "primary_key_schema": {"shard_key_fields": [{"name": "id"}]}},
    );
}

fn error_code(d: &Document) -> &str {
    d.get_str("error_code").unwrap_or("")
}

#[test]
fn an_absolute_form_target_naming_another_store_is_refused() {
    let s = Server::start(ENFORCE);
    create_table(&s, "storea", "tbl");
    create_table(&s, "storeb", "tbl");
    // Signed for storea (Host), aimed at storeb (target).
    let (status, reply, _) = send(
        &s,
        request(
            &format!("http://{}/v1/delete-table", store_host(&s, "storeb")),
            &store_host(&s, "storea"),
            doc! {"table_name": "tbl"}.to_vec().unwrap(),
        ),
    );
    assert_eq!(
        (status, error_code(&reply)),
        (400, "KVS.00001001"),
        "{reply}"
    );
    // Both tables survive.
    for store in ["storea", "storeb"] {
        let d = ok(&s, store, "describe-table", doc! {"table_name": "tbl"});
        assert_eq!(d.get_str("table_name").ok(), Some("tbl"), "{store}: {d}");
    }
}

#[test]
fn an_absolute_form_target_through_a_proxy_still_works() {
    let s = Server::start(ENFORCE);
    create_table(&s, "proxied", "tbl");
    // What the SDKs send behind HTTP_PROXY: the same authority in the target and Host.
    let host = store_host(&s, "proxied");
    let absolute = |op: &str, body: Document| {
        send(
            &s,
            request(
                &format!("http://{host}/v1/{op}"),
                &host,
                body.to_vec().unwrap(),
            ),
        )
    };
    let (status, d, _) = absolute(
        "put-kv",
        doc! {"table_name": "tbl", "kv_doc": {"id": "a", "v": 1}},
    );
    assert_eq!(status, 200, "{d}");
    let (status, d, _) = absolute(
        "get-kv",
        doc! {"table_name": "tbl", "primary_key": {"id": "a"}},
    );
    assert_eq!(status, 200, "{d}");
    assert_eq!(
        d.get_document("kv_doc").unwrap().get_i32("v").ok(),
        Some(1),
        "{d}"
    );
}

/// SDK-HMAC-SHA256 over exactly `signed` headers (the shared signer always signs `host`).
fn sign_without_host(r: &mut RawRequest) {
    use kv_huawei::auth::{sign, Algorithm, SignedRequest};
    let date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap();
    r.set("X-Sdk-Date", &date);
    let mut headers = http::HeaderMap::new();
    for (n, v) in &r.headers {
        headers.append(
            http::HeaderName::from_bytes(n).unwrap(),
            http::HeaderValue::from_bytes(v).unwrap(),
        );
    }
    let key = Vendor::Huawei.dev_key();
    let path = String::from_utf8(r.target.clone()).unwrap();
    let signed = SignedRequest {
        method: "POST",
        path: &path,
        query: None,
        headers: &headers,
        body: &r.body,
    };
    let authorization = sign(
        &signed,
        Algorithm::HmacSha256,
        &key.id,
        &key.secret,
        vec!["content-type".into(), "x-sdk-date".into()],
        &date,
    );
    r.set("Authorization", authorization);
}

#[test]
fn a_signature_without_host_serves_its_store_and_cannot_be_replayed_against_another() {
    // The Go SDK signs no `host`: its requests name the store by an unsigned Host, and are served.
    let s = Server::start(ENFORCE);
    create_table(&s, "mine", "tbl");
    create_table(&s, "victim", "tbl");
    let mut r = request(
        "/v1/delete-table",
        &store_host(&s, "mine"),
        doc! {"table_name": "tbl"}.to_vec().unwrap(),
    );
    sign_without_host(&mut r);
    let (status, reply, _) = send_signed(&s, &r);
    assert_eq!(status, 200, "{reply}");
    // The same signed request with another store in the Host, from another connection (a
    // captured request re-aimed): refused, and the victim's table stays.
    r.set("Host", store_host(&s, "victim"));
    let (status, reply, _) = send_signed(&s, &r);
    assert_eq!((status, error_code(&reply)), (401, "APIGW.0301"), "{reply}");
    ok(&s, "victim", "describe-table", doc! {"table_name": "tbl"});
}

/// One encoded BSON element.
fn field(name: &str, value: Bson) -> Vec<u8> {
    let one = doc! { name: value }.to_vec().unwrap();
    one[4..one.len() - 1].to_vec()
}

/// An embedded-document element whose document is given as bytes.
fn sub_document(name: &str, document: &[u8]) -> Vec<u8> {
    let mut out = vec![0x03];
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.extend_from_slice(document);
    out
}

/// A BSON document of these elements in order, repeats included (a `Document` cannot hold
/// them: the bson crate keeps one of the two values silently).
fn raw_document(elements: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = elements.concat();
    let mut out = ((body.len() + 5) as i32).to_le_bytes().to_vec();
    out.extend(body);
    out.push(0);
    out
}

#[test]
fn a_document_with_a_repeated_field_name_is_refused() {
    let s = Server::start(ENFORCE);
    create_table(&s, "dups", "tbl");
    let kv_doc = raw_document(&[
        field("id", Bson::String("a".into())),
        field("v", Bson::Int32(1)),
        field("v", Bson::Int32(2)),
    ]);
    // What the gateway used to do with it: one value kept, no error.
    assert_eq!(
        Document::from_reader(&mut kv_doc.as_slice()).unwrap().len(),
        2
    );
    let body = raw_document(&[
        field("table_name", Bson::String("tbl".into())),
        sub_document("kv_doc", &kv_doc),
    ]);
    let (status, reply, _) = send(&s, request("/v1/put-kv", &store_host(&s, "dups"), body));
    assert_eq!(
        (status, error_code(&reply)),
        (400, "KVS.00001006"),
        "{reply}"
    );
    let (status, reply, _) = call(
        &s,
        "dups",
        "get-kv",
        doc! {"table_name": "tbl", "primary_key": {"id": "a"}},
    );
    assert_eq!(
        (status, error_code(&reply)),
        (404, "KVS.00001016"),
        "{reply}"
    );

    // The same at the top level: which table is meant?
    let top = raw_document(&[
        field("table_name", Bson::String("tbl".into())),
        field("table_name", Bson::String("tb2".into())),
    ]);
    let (status, reply, _) = send(
        &s,
        request("/v1/describe-table", &store_host(&s, "dups"), top),
    );
    assert_eq!(
        (status, error_code(&reply)),
        (400, "KVS.00001006"),
        "{reply}"
    );
    // A well-formed document still works.
    ok(
        &s,
        "dups",
        "put-kv",
        doc! {"table_name": "tbl", "kv_doc": {"id": "a", "v": 2}},
    );
}

#[test]
fn scan_and_batch_get_pages_stop_at_the_one_megabyte_cap_and_resume() {
    let s = Server::start(ENFORCE);
    create_table(&s, "big", "tbl");
    let filler = "x".repeat(300 * 1024);
    let ids: Vec<String> = (0..8).map(|i| format!("id{i}")).collect();
    for id in &ids {
        ok(
            &s,
            "big",
            "put-kv",
            doc! {"table_name": "tbl", "kv_doc": {"id": id, "blob": &filler}},
        );
    }

    // scan-kv: every page under the cap, the cursor resumes exactly where the page stopped.
    let mut seen = Vec::new();
    let mut start: Option<Document> = None;
    let mut pages = 0;
    loop {
        let mut body = doc! {"table_name": "tbl", "limit": 100};
        if let Some(c) = start.take() {
            body.insert("start_key", c);
        }
        let (status, d, size) = call(&s, "big", "scan-kv", body);
        assert_eq!(status, 200, "{d}");
        assert!(size < ONE_MIB, "scan page of {size} bytes");
        pages += 1;
        for item in d.get_array("returned_kv_items").unwrap() {
            let kv = item.as_document().unwrap().get_document("kv_doc").unwrap();
            seen.push(kv.get_str("id").unwrap().to_string());
        }
        match d.get_document("cursor_key") {
            Ok(c) => start = Some(c.clone()),
            Err(_) => break,
        }
        assert!(pages < 20, "no progress");
    }
    assert_eq!(seen, ids);
    assert!(pages >= 3, "{pages} pages");

    // scan-skey-kv pages the same way (one shard key here, so one document).
    let (status, d, size) = call(
        &s,
        "big",
        "scan-skey-kv",
        doc! {"table_name": "tbl", "shard_key": {"id": "id3"}},
    );
    assert_eq!(status, 200, "{d}");
    assert!(size < ONE_MIB);
    assert_eq!(d.get_array("returned_kv_items").unwrap().len(), 1);

    // batch-get-kv: what does not fit is reported as unprocessed, and a second call gets it.
    let opers: Vec<Bson> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            Bson::Document(doc! {"get_kv": {"oper_id": i as i64, "primary_key": {"id": id}}})
        })
        .collect();
    let (status, d, size) = call(
        &s,
        "big",
        "batch-get-kv",
        doc! {"batch_get_kv_opers": [{"table_name": "tbl", "get_kv_opers": opers.clone()}]},
    );
    assert_eq!(status, 200, "{d}");
    assert!(size < ONE_MIB, "batch-get reply of {size} bytes");
    let returned = d.get_array("returned_kv_items_of_all").unwrap()[0]
        .as_document()
        .unwrap()
        .get_array("returned_kv_items")
        .unwrap()
        .len();
    let exceptions = d.get_array("exception_opers").unwrap();
    assert_eq!(exceptions.len(), 1, "{d}");
    let unprocessed: Vec<i64> = exceptions[0]
        .as_document()
        .unwrap()
        .get_array("unprocessed_opers")
        .unwrap()
        .iter()
        .map(|b| b.as_i64().unwrap())
        .collect();
    assert!((1..8).contains(&returned), "{returned}");
    assert_eq!(returned + unprocessed.len(), 8);
    let again: Vec<Bson> = unprocessed
        .iter()
        .map(|i| opers[*i as usize].clone())
        .collect();
    let (status, d, _) = call(
        &s,
        "big",
        "batch-get-kv",
        doc! {"batch_get_kv_opers": [{"table_name": "tbl", "get_kv_opers": again}]},
    );
    assert_eq!(status, 200, "{d}");
    let more = d.get_array("returned_kv_items_of_all").unwrap()[0]
        .as_document()
        .unwrap()
        .get_array("returned_kv_items")
        .unwrap()
        .len();
    assert!(more >= 1, "{d}");
}
