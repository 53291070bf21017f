//! HTTPS on the gateway port: the `[tls]` section turned into a rustls server config, either from
//! PEM files the operator supplies or from a certificate generated at start-up for local testing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// The ring provider, named once: the default provider would need the aws-lc-rs feature, whose C
/// build we avoid.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain (leaf first), refusing a file with no certificate in it.
pub fn read_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("tls.cert {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.cert {}: not a PEM certificate: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "tls.cert {}: no \"BEGIN CERTIFICATE\" block in the file",
            path.display()
        ));
    }
    Ok(chain)
}

/// Reads the first PEM private key (PKCS#8, PKCS#1 or SEC1) in a file.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => format!(
            "tls.key {}: no \"BEGIN PRIVATE KEY\" (or RSA/EC PRIVATE KEY) block in the file",
            path.display()
        ),
        other => format!("tls.key {}: {other}", path.display()),
    })
}

/// A server config for HTTP/1.1 over TLS from a chain and its key; refuses a key that does not
/// belong to the chain's leaf certificate.
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, String> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls: the certificate and key cannot be used together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Checks `cert`/`key` mode without starting anything: both files readable, PEM, and a matching
/// pair. (Self-signed mode has nothing to check before start-up.)
pub fn check_files(cert: &Path, key: &Path) -> Result<(), String> {
    server_config(read_cert_chain(cert)?, read_private_key(key)?)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "tls.key {}: not usable with the certificate in {}: {e}",
                key.display(),
                cert.display()
            )
        })
}

/// Where self-signed mode writes its certificate when `write_cert` is not set.
pub fn default_cert_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("cert.pem")
}

/// The names a self-signed certificate is valid for: the listen host (unless it is a wildcard
/// address), `localhost`, `127.0.0.1` and the configured `names`, each once.
fn self_signed_names(listen: &str, extra: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(addr) = listen.parse::<std::net::SocketAddr>() {
        if !addr.ip().is_unspecified() {
            names.push(addr.ip().to_string());
        }
    }
    for name in ["localhost", "127.0.0.1"]
        .into_iter()
        .chain(extra.iter().map(String::as_str))
    {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// A fresh key and a certificate for `self_signed_names(listen, extra)`. Its subject names this
/// start uniquely: clients that trust several gateways' certificates in one bundle look the
/// issuer up by subject, and identical subjects (rcgen's default) make all but the first fail.
fn self_signed(
    listen: &str,
    extra: &[String],
) -> Result<rcgen::CertifiedKey<rcgen::KeyPair>, rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(self_signed_names(listen, extra))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("kvmux self-signed {listen} {}", uuid::Uuid::new_v4()),
    );
    let signing_key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&signing_key)?;
    Ok(rcgen::CertifiedKey { cert, signing_key })
}

/// What start-up did to get a TLS config, for the log line.
pub struct Prepared {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Self-signed mode: where the certificate clients must trust was written.
    pub written_cert: Option<PathBuf>,
}

/// Builds the acceptor for `[tls]`; in self-signed mode generates a fresh certificate and key
/// (the key stays in memory) and writes the certificate out for clients to trust.
pub fn prepare(tls: &TlsConfig, listen: &str, data_dir: &Path) -> Result<Prepared, String> {
    let (config, written_cert) = if tls.self_signed {
        let generated = self_signed(listen, &tls.names)
            .map_err(|e| format!("tls: generating a self-signed certificate: {e}"))?;
        let path = tls
            .write_cert
            .clone()
            .unwrap_or_else(|| default_cert_path(data_dir));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("tls: creating {}: {e}", parent.display()))?;
        }
        // Written beside and renamed into place, so a client polling for the file never reads
        // half of it.
        let partial = path.with_extension("pem.partial");
        std::fs::write(&partial, generated.cert.pem())
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|e| format!("tls: writing the certificate to {}: {e}", path.display()))?;
        let key = PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
        let config = server_config(vec![generated.cert.der().clone()], key)?;
        (config, Some(path))
    } else {
        let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
            return Err("tls: set cert and key, or self_signed = true".into());
        };
        let config = server_config(read_cert_chain(cert)?, read_private_key(key)?)?;
        (config, None)
    };
    Ok(Prepared {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        written_cert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_names_cover_the_listen_host_and_loopback_once() {
        assert_eq!(
            self_signed_names("127.0.0.1:9090", &[]),
            ["127.0.0.1", "localhost"]
        );
        assert_eq!(
            self_signed_names("10.1.2.3:443", &[]),
            ["10.1.2.3", "localhost", "127.0.0.1"]
        );
        assert_eq!(
            self_signed_names("0.0.0.0:443", &["kv.internal".into(), "localhost".into()]),
            ["localhost", "127.0.0.1", "kv.internal"]
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let one = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, one.cert.pem()).unwrap();
        std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
        let err = check_files(&cert, &key).unwrap_err();
        assert!(
            err.starts_with("tls.key") && err.contains("cannot be used together"),
            "{err}"
        );
        std::fs::write(&key, one.signing_key.serialize_pem()).unwrap();
        check_files(&cert, &key).unwrap();
    }
}
