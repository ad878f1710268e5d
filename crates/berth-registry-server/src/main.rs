//! `berth-registry`: runs berth's registry server.
//!
//! `berth-registry --addr 127.0.0.1:5000 --root DIR [--htpasswd FILE]
//! [--tls-cert FILE --tls-key FILE]`, or `--garbage-collect` offline. Plain HTTP goes through `axum::serve`; with TLS, each
//! accepted connection is wrapped by rustls (ring provider, as berth's client uses) and
//! served by hyper's HTTP/1 connection with the same router. SIGINT/SIGTERM stop it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use berth_registry_server::auth::Htpasswd;
use berth_registry_server::{Registry, Storage, router};
use clap::Parser;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;

/// A private registry server (Registry HTTP API V2 / OCI distribution).
#[derive(Parser)]
#[command(name = "berth-registry", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    addr: SocketAddr,
    /// Storage directory.
    #[arg(long, default_value = "/var/lib/berth-registry")]
    root: PathBuf,
    /// htpasswd file of bcrypt entries (`htpasswd -B`); every request then needs Basic auth.
    #[arg(long)]
    htpasswd: Option<PathBuf>,
    /// PEM certificate chain; serves HTTPS with --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Delete the blobs no manifest refers to, then exit without serving. Run it only
    /// while no server writes to --root: a blob pushed for a manifest not yet pushed
    /// would count as garbage.
    #[arg(long)]
    garbage_collect: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let storage = Storage::open(&args.root)
        .with_context(|| format!("opening storage at {}", args.root.display()))?;
    if args.garbage_collect {
        let report = storage
            .garbage_collect()
            .await
            .context("garbage collection")?;
        println!(
            "removed {} blobs, {} bytes",
            report.blobs_removed, report.bytes_freed
        );
        return Ok(());
    }
    let users = args
        .htpasswd
        .as_deref()
        .map(Htpasswd::load)
        .transpose()
        .context("loading users")?;
    let app = router(Arc::new(Registry::new(storage, users)));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        _ => None,
    };
    tracing::info!(addr = %args.addr, root = %args.root.display(), tls = tls.is_some(), "registry listening");
    match tls {
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await
            .context("serving")?,
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let stop = shutdown();
            tokio::pin!(stop);
            loop {
                let (tcp, peer) = tokio::select! {
                    accepted = listener.accept() => accepted.context("accepting")?,
                    () = &mut stop => break,
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    };
                    let service = hyper::service::service_fn(move |req| {
                        tower::ServiceExt::oneshot(app.clone(), req)
                    });
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await
                    {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                });
            }
        }
    }
    Ok(())
}

fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading key {}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
