//! HTTPS on the gateway port, through the real binary: a self-signed certificate written for
//! clients to trust, an operator's own chain and key, plain HTTP refused, the connection limit and
//! header timeout applied to handshakes, the body limit over TLS, and `check-config` on bad
//! `[tls]` sections.

mod common;

#[allow(dead_code)]
use kvmux_bench::workload;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls_pki_types::pem::PemObject;
use workload::{Op, Target, Workload};

/// A kvmux serving HTTPS, stopped by its PID when dropped.
struct TlsServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl TlsServer {
    /// Starts kvmux with `extra` appended to a config naming a free port and a fresh data dir,
    /// with `env` set; waits (bounded) until it logs that it listens on https.
    fn start(extra: &str, env: &[(&str, &Path)]) -> TlsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = common::free_port();
        let config = dir.path().join("kvmux.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{extra}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("config");
        let log = std::fs::File::create(dir.path().join("kvmux.log")).expect("log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_kvmux"));
        command
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("KVMUX_LISTEN")
            .env_remove("KVMUX_DATA_DIR")
            .env_remove("KVMUX_CONFIG")
            .env_remove("KVMUX_TLS_CERT")
            .env_remove("KVMUX_TLS_KEY")
            .env_remove("KVMUX_TLS_SELF_SIGNED")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log));
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("spawn kvmux");
        let mut server = TlsServer { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.log().contains("kvmux listening on https://") {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("kvmux exited early with {status}: {}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "no https listener within 30 s: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kvmux.log")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that trusts only the certificates in `pem` (no system or webpki roots).
fn trusting(pem: &[u8], timeout: Duration) -> ureq::Agent {
    let roots: Vec<_> = ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    assert!(!roots.is_empty(), "no certificate in the PEM given");
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(tls)
        .build()
        .into()
}

fn health(agent: &ureq::Agent, s: &TlsServer) -> Result<serde_json::Value, ureq::Error> {
    let mut resp = agent.get(&s.url("/_kvmux/health")).call()?;
    assert_eq!(resp.status(), 200);
    resp.body_mut().read_json()
}

/// Creates a container, writes two items and reads one back through each dialect, with requests
/// signed exactly as the vendors' SDKs sign them, over `agent`.
fn signed_round_trip_through_every_dialect(agent: &ureq::Agent, s: &TlsServer) {
    for target in [Target::Tencent, Target::Aliyun, Target::Huawei] {
        let w = Workload {
            target,
            host: format!("127.0.0.1:{}", s.port),
            key_id: target.dev_key_id().into(),
            secret: "kvmuxdevsecret".into(),
            value: Bytes::from_static(b"sent over tls"),
        };
        let send = |request: http::Request<Bytes>| {
            let mut resp = agent
                .run(common::aimed_at(request, |target| s.url(target)))
                .expect("request over tls");
            let status = resp.status();
            let body = resp.body_mut().read_to_vec().expect("body");
            assert!(
                !w.is_error(status, &body),
                "{target:?}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            body
        };
        let (create, puts) = w.setup(2);
        send(create);
        for put in puts {
            send(put);
        }
        let got = send(w.request(Op::Get, 1));
        // Huawei answers BSON, in which the value is a binary field: look for the raw bytes.
        assert!(
            got.windows(13).any(|win| win == b"sent over tls"),
            "{target:?}: the value read back is not the one written: {}",
            String::from_utf8_lossy(&got)
        );
    }
}

/// A rustls client stream to the server trusting only `pem` and expecting it to be `name`, for
/// requests ureq will not send or names that do not resolve.
fn raw_tls(
    port: u16,
    pem: &[u8],
    name: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(name.to_string()).expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    rustls::StreamOwned::new(conn, tcp)
}

/// Reads until the peer closes (or an error, or 10 s without data); what was read.
fn read_to_close(stream: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn self_signed_mode_writes_a_certificate_that_clients_can_trust_for_every_dialect() {
    let s = TlsServer::start("[tls]\nself_signed = true\n", &[]);
    let cert_path = s.data_dir().join("tls").join("cert.pem");
    assert!(
        s.log().contains(&cert_path.display().to_string()),
        "the log must say where the certificate went: {}",
        s.log()
    );
    let pem = std::fs::read(&cert_path).expect("the written certificate");
    assert!(String::from_utf8_lossy(&pem).starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        !String::from_utf8_lossy(&pem).contains("PRIVATE KEY"),
        "only the certificate is written, never the key"
    );

    let agent = trusting(&pem, Duration::from_secs(30));
    assert_eq!(
        health(&agent, &s).expect("health over https")["status"],
        "ok"
    );
    // `localhost` is in the certificate too.
    let mut r = agent
        .get(&format!("https://localhost:{}/_kvmux/health", s.port))
        .call()
        .expect("localhost");
    assert_eq!(r.status(), 200);
    assert!(r.body_mut().read_to_string().unwrap().contains("ok"));
    signed_round_trip_through_every_dialect(&agent, &s);

    // A client trusting anything else (here: the webpki roots) refuses the certificate: the
    // trust above came from the written file, not from a lax client.
    let stranger: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let err = stranger
        .get(&s.url("/_kvmux/health"))
        .call()
        .expect_err("an untrusted certificate must be refused");
    assert!(
        err.to_string().contains("UnknownIssuer"),
        "expected a certificate error, got {err}"
    );
}

/// Sends a health request as `name` over a fresh TLS connection; the reply, or the TLS error.
fn health_as(port: u16, pem: &[u8], name: &str) -> std::io::Result<String> {
    let mut stream = raw_tls(port, pem, name);
    stream.write_all(
        format!("GET /_kvmux/health HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )?;
    let mut reply = Vec::new();
    match stream.read_to_end(&mut reply) {
        Ok(_) => {}
        // The server may close without close_notify after `Connection: close`.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !reply.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

#[test]
fn write_cert_puts_the_certificate_where_asked_and_a_restart_makes_a_new_one() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("nested").join("gateway.pem");
    let config = format!(
        "[tls]\nself_signed = true\nwrite_cert = \"{}\"\nnames = [\"kvs.localhost\", \"*.kvs.localhost\"]\n",
        path.display()
    );
    let first = {
        let s = TlsServer::start(&config, &[]);
        let pem = std::fs::read(&path).expect("written where asked");
        assert!(!s.data_dir().join("tls").join("cert.pem").exists());
        health(&trusting(&pem, Duration::from_secs(30)), &s).expect("health");
        // The extra names are in the certificate (a Huawei SDK puts the store in the host) ...
        for name in ["kvs.localhost", "mystore.kvs.localhost"] {
            let reply = health_as(s.port, &pem, name).expect(name);
            assert!(reply.starts_with("HTTP/1.1 200"), "{name}: {reply}");
        }
        // ... and names that were not asked for are not.
        let err = health_as(s.port, &pem, "gateway.example").expect_err("not a name of the cert");
        assert!(err.to_string().contains("not valid for name"), "{err}");
        pem
    };
    let s = TlsServer::start(&config, &[]);
    let second = std::fs::read(&path).unwrap();
    assert_ne!(first, second, "each start generates a fresh certificate");
    let old_trust = trusting(&first, Duration::from_secs(10));
    assert!(
        health(&old_trust, &s).is_err(),
        "the old certificate no longer matches"
    );
    health(&trusting(&second, Duration::from_secs(30)), &s).expect("health");
}

/// A CA and a leaf for 127.0.0.1/localhost signed by it; returns (CA PEM, chain PEM, key PEM).
fn ca_signed_pair() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kvmux test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (
        ca_cert.pem(),
        format!("{}{}", leaf.pem(), ca_cert.pem()),
        leaf_key.serialize_pem(),
    )
}

#[test]
fn cert_and_key_mode_serves_the_operators_chain_from_the_file_or_the_environment() {
    let files = tempfile::tempdir().unwrap();
    let (ca, chain, key) = ca_signed_pair();
    let chain_path = files.path().join("chain.pem");
    let key_path = files.path().join("key.pem");
    std::fs::write(&chain_path, &chain).unwrap();
    std::fs::write(&key_path, &key).unwrap();

    let s = TlsServer::start(
        &format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            chain_path.display(),
            key_path.display()
        ),
        &[],
    );
    // The client trusts only the CA: the leaf is accepted because the server sends the chain.
    let agent = trusting(ca.as_bytes(), Duration::from_secs(30));
    assert_eq!(health(&agent, &s).expect("health")["status"], "ok");
    signed_round_trip_through_every_dialect(&agent, &s);
    assert!(!s.data_dir().join("tls").exists(), "nothing is written");
    drop(s);

    // The same pair named by KVMUX_TLS_CERT / KVMUX_TLS_KEY on a config without [tls].
    let s = TlsServer::start(
        "",
        &[
            ("KVMUX_TLS_CERT", &chain_path),
            ("KVMUX_TLS_KEY", &key_path),
        ],
    );
    assert_eq!(health(&agent, &s).expect("health")["status"], "ok");
}

#[test]
fn plain_http_to_the_tls_port_gets_no_http_answer_and_the_server_stays_up() {
    let s = TlsServer::start("[tls]\nself_signed = true\n", &[]);
    let pem = std::fs::read(s.data_dir().join("tls").join("cert.pem")).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /_kvmux/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let reply = read_to_close(&mut tcp);
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the connection was left open instead of being closed"
    );
    assert!(
        !String::from_utf8_lossy(&reply).contains("HTTP/1.1"),
        "plain HTTP was answered: {}",
        String::from_utf8_lossy(&reply)
    );
    // And an http:// client gets an error, not a health answer.
    let plain = common::agent()
        .get(&format!("http://127.0.0.1:{}/_kvmux/health", s.port))
        .call();
    assert!(plain.is_err(), "plain HTTP must not be served: {plain:?}");
    health(&trusting(&pem, Duration::from_secs(30)), &s).expect("still serving https");
}

#[test]
fn handshakes_obey_the_connection_limit_and_the_header_timeout() {
    let s = TlsServer::start(
        "[tls]\nself_signed = true\n[limits]\nmax_connections = 1\nheader_timeout_secs = 2\n",
        &[],
    );
    let pem = std::fs::read(s.data_dir().join("tls").join("cert.pem")).unwrap();
    // Opens TCP and never sends a ClientHello: it takes the only connection slot.
    let mut silent = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let opened = Instant::now();
    // While it holds the slot, nobody else is served (the handshake is not even answered).
    let impatient = trusting(&pem, Duration::from_millis(700));
    assert!(
        health(&impatient, &s).is_err(),
        "a second connection was served past max_connections = 1"
    );
    // The silent client is cut off once the header timeout passes ...
    let mut buf = [0u8; 64];
    let end = silent.read(&mut buf);
    assert!(
        matches!(end, Ok(0))
            || end
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "expected the server to close the silent connection, got {end:?}"
    );
    assert!(
        opened.elapsed() < Duration::from_secs(10),
        "the silent connection was held for {:?}",
        opened.elapsed()
    );
    // ... and its slot goes to the next client.
    health(&trusting(&pem, Duration::from_secs(30)), &s).expect("served after the cut-off");
}

#[test]
fn a_3_gb_content_length_over_tls_is_refused_without_reading_it() {
    let s = TlsServer::start("[tls]\nself_signed = true\n[auth]\nmode = \"off\"\n", &[]);
    let pem = std::fs::read(s.data_dir().join("tls").join("cert.pem")).unwrap();
    let before = common::rss_kib(s.child.id());
    let mut stream = raw_tls(s.port, &pem, "127.0.0.1");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nX-TC-Action: EdgeKVPut\r\n\
         X-TC-Version: 2022-09-01\r\nContent-Length: 3000000000\r\n\r\n{{\"ZoneId\":",
        s.port
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.flush().unwrap();
    let reply = String::from_utf8_lossy(&read_to_close(&mut stream)).into_owned();
    // Tencent answers every error with HTTP 200 and its JSON envelope.
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("RequestSizeLimitExceeded"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
    let after = common::rss_kib(s.child.id());
    assert!(
        after < before + 50 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    health(&trusting(&pem, Duration::from_secs(30)), &s).expect("still up");
}

/// Runs `kvmux check-config` on `text`; returns (exit code, stdout, stderr).
fn check_config(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kvmux.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run check-config");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_refuses_unusable_tls_sections_and_says_why() {
    let files = tempfile::tempdir().unwrap();
    let (_, chain, key) = ca_signed_pair();
    let (_, _, other_key) = ca_signed_pair();
    let chain_path = files.path().join("chain.pem");
    let key_path = files.path().join("key.pem");
    let other_key_path = files.path().join("other-key.pem");
    std::fs::write(&chain_path, &chain).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    std::fs::write(&other_key_path, &other_key).unwrap();
    let section = |cert: &Path, key: &Path| {
        format!(
            "listen = \"127.0.0.1:9090\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        )
    };

    let (code, out, err) = check_config(&section(&chain_path, &key_path));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("[tls]") && out.contains("chain.pem"), "{out}");

    // The key of another certificate.
    let (code, _, err) = check_config(&section(&chain_path, &other_key_path));
    assert_eq!(code, 2);
    assert!(
        err.contains("kvmux.toml:4:7:") && err.contains("cannot be used together"),
        "{err}"
    );
    // A certificate file that is not there.
    let missing = files.path().join("absent.pem");
    let (code, _, err) = check_config(&section(&missing, &key_path));
    assert_eq!(code, 2);
    assert!(
        err.contains("kvmux.toml:3:8:") && err.contains("absent.pem"),
        "{err}"
    );
    // The key file swapped for the certificate: no key in it.
    let (code, _, err) = check_config(&section(&chain_path, &chain_path));
    assert_eq!(code, 2);
    assert!(
        err.contains("kvmux.toml:4:7:") && err.contains("PRIVATE KEY"),
        "{err}"
    );
    // Both modes at once.
    let (code, _, err) = check_config(&format!(
        "[tls]\nself_signed = true\ncert = \"{}\"\nkey = \"{}\"\n",
        chain_path.display(),
        key_path.display()
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains("kvmux.toml:3:8:") && err.contains("self_signed = true"),
        "{err}"
    );
    // A misspelt key is refused like everywhere else in the file.
    let (code, _, err) = check_config("[tls]\nselfsigned = true\n");
    assert_eq!(code, 2);
    assert!(
        err.contains("kvmux.toml:2:1:") && err.contains("selfsigned"),
        "{err}"
    );
}
