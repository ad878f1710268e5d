//! berthd, the berth daemon: serves the Docker Engine API on unix sockets.
//!
//! This binary owns what a library must not: the command line and `daemon.json`
//! ([`config`]), the log subscriber, the PID file lock ([`pidfile`]), the sockets
//! ([`socket`]) and the tokio runtime. Everything behind the socket is
//! `berth_api::router` over one `berth_daemon::Daemon`.
//!
//! Design choices:
//! - hyper 1's HTTP/1.1 connection with upgrades enabled, not a higher-level server:
//!   attach and exec hijack the connection (`Upgrade: tcp`), which needs
//!   `serve_connection(..).with_upgrades()`.
//! - A multi-thread runtime with two workers: the API is I/O bound, and an idle
//!   daemon should stay small (a dozen MiB of RSS), as dockerd's users expect.
//! - Shutdown on SIGTERM/SIGINT stops accepting, asks open connections to finish
//!   their current request (bounded wait), removes the sockets, then the PID file.
#![forbid(unsafe_code)]

mod config;
mod pidfile;
mod socket;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_daemon::{Daemon, DaemonConfig};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};
use crate::pidfile::PidFile;

/// How long shutdown waits for open connections before leaving them to the exit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn main() -> std::process::ExitCode {
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("berthd")
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run(config)),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the tokio runtime")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "berthd failed");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Structured logs on stderr. `RUST_LOG`, when set, overrides `--log-level`/`-D`
/// with a full filter (per-crate levels).
fn init_logging(config: &Config) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new(config.log_level))
        }
        _ => EnvFilter::new(config.log_level),
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match config.log_format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.exec_root)
        .with_context(|| format!("cannot create exec root {}", config.exec_root.display()))?;
    // The lock comes first: only the daemon that holds it may touch the sockets and
    // state that go with it.
    let pidfile = PidFile::acquire(&config.pidfile)?;
    let result = serve(&config).await;
    pidfile.remove();
    result
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let daemon = Daemon::open(DaemonConfig {
        data_root: config.data_root.clone(),
        exec_root: config.exec_root.clone(),
        cgroup_parent: config.cgroup_parent.clone(),
        network: berth_daemon::networks::NetworkConfig {
            bridge: config.bridge.clone(),
            bip: config.bip.clone(),
        },
    })
    .context("cannot open the daemon state")?;
    daemon
        .images()
        .set_registry_config(berth_daemon::images::RegistryConfig {
            insecure_registries: config.insecure_registries.clone(),
            registry_mirrors: config.registry_mirrors.clone(),
            max_concurrent_downloads: config.max_concurrent_downloads,
            max_concurrent_uploads: config.max_concurrent_uploads,
        });
    daemon.restore().await;
    let router = berth_api::router(Arc::new(daemon));

    let gid = socket::resolve_group(&config.group, config.group_explicit)?;
    let mut bound: Vec<(PathBuf, UnixListener)> = Vec::new();
    for path in &config.sockets {
        match socket::bind(path, gid) {
            Ok(listener) => bound.push((path.clone(), listener)),
            Err(e) => {
                remove_sockets(bound.iter().map(|(p, _)| p));
                return Err(e);
            }
        }
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut acceptors = JoinSet::new();
    for (path, listener) in bound.drain(..) {
        tracing::info!(socket = %path.display(), "API listening");
        acceptors.spawn(accept_loop(listener, router.clone(), shutdown_rx.clone()));
    }
    tracing::info!(
        pid = std::process::id(),
        version = berth_daemon::system::ENGINE_VERSION,
        data_root = %config.data_root.display(),
        exec_root = %config.exec_root.display(),
        "berthd started"
    );

    let signal = wait_for_signal().await;
    tracing::info!(signal, "shutting down");
    let _ = shutdown_tx.send(true);
    // Each acceptor returns its connections still open; wait for them all together.
    let mut connections = JoinSet::new();
    while let Some(joined) = acceptors.join_next().await {
        if let Ok(open) = joined {
            for handle in open {
                connections.spawn(async move {
                    let _ = handle.await;
                });
            }
        }
    }
    remove_sockets(config.sockets.iter());
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after grace period; closing them"
        );
    }
    tracing::info!("berthd stopped");
    Ok(())
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop berthd with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

fn remove_sockets<'a>(paths: impl Iterator<Item = &'a PathBuf>) {
    for path in paths {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(socket = %path.display(), error = %e, "cannot remove socket");
        }
    }
}

/// Accepts until shutdown; returns the handles of connections still being served.
async fn accept_loop(
    listener: UnixListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut open: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => accepted,
        };
        open.retain(|h| !h.is_finished());
        match accepted {
            Ok((stream, _addr)) => {
                open.push(tokio::spawn(serve_connection(
                    stream,
                    router.clone(),
                    shutdown.clone(),
                )));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    open
}

async fn serve_connection(
    stream: tokio::net::UnixStream,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
            // Finish the request in flight, then close.
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        // Clients hanging up mid-request are routine.
        tracing::debug!(error = %e, "connection ended with error");
    }
}
