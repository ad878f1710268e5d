//! TLS for registries: rustls with the `ring` provider, trusting Mozilla's roots
//! (`webpki-roots`, compiled in, so the daemon needs no CA bundle on the host) plus any
//! `*.crt` CA file in the registry's directory under a certs root, the layout Docker
//! uses: `/etc/docker/certs.d/<host:port>/ca.crt`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Docker's directory of per-registry CA certificates.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// Builds the client config for `authority`: public roots and its own CAs.
fn config(certs_dir: &Path, authority: &str) -> std::io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let dir = certs_dir.join(authority);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "crt") {
                let certs = CertificateDer::pem_file_iter(&path)
                    .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
                for cert in certs {
                    let cert = cert
                        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
                }
            }
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Opens TLS over `stream` to `host`, verifying its certificate (also used by the
/// build's ADD of an `https://` URL).
///
/// # Errors
/// Reading the CA files, an invalid server name, the handshake.
pub async fn connect(
    certs_dir: &Path,
    authority: &str,
    host: &str,
    stream: tokio::net::TcpStream,
) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
    let config = config(certs_dir, authority)?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    TlsConnector::from(config).connect(name, stream).await
}

/// The certs root a client uses.
pub(crate) fn default_certs_dir() -> PathBuf {
    PathBuf::from(DEFAULT_CERTS_DIR)
}
