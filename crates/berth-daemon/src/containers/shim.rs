//! Talking to `berth-shim` processes (the contract is in `berth-shim-protocol`).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use berth_shim_protocol::{
    LaunchError, LaunchErrorKind, Ready, Reply, Request, SHIM_LOG_FILE, SOCKET_FILE,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Finds the shim binary: `$BERTH_SHIM`, else `berth-shim` beside the daemon's binary.
pub(super) fn shim_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_SHIM") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("berth-shim")))
        .unwrap_or_else(|| PathBuf::from("berth-shim"))
}

fn other(message: String) -> LaunchError {
    LaunchError {
        kind: LaunchErrorKind::Other,
        message,
    }
}

/// Spawns a shim for the launch spec already written in `state_dir` and returns its
/// [`Ready`] line once the container is created.
///
/// # Errors
/// The shim could not be spawned or died before reporting.
pub(super) async fn spawn(state_dir: &Path) -> Result<Ready, LaunchError> {
    let log = std::fs::File::create(state_dir.join(SHIM_LOG_FILE))
        .map_err(|e| other(format!("shim log: {e}")))?;
    let mut child = tokio::process::Command::new(shim_binary())
        .arg(state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| {
            other(format!(
                "cannot start berth-shim ({}): {e}",
                shim_binary().display()
            ))
        })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line).await;
    // The shim stays in its own session; reap it whenever it exits.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    match read {
        Ok(n) if n > 0 => serde_json::from_str(line.trim())
            .map_err(|e| other(format!("bad shim reply {line:?}: {e}"))),
        _ => {
            let log = std::fs::read_to_string(state_dir.join(SHIM_LOG_FILE)).unwrap_or_default();
            Err(other(format!(
                "berth-shim exited before creating the container: {}",
                log.trim()
            )))
        }
    }
}

/// The control socket of the shim in `state_dir`.
pub(super) fn socket(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_FILE)
}

async fn send(state_dir: &Path, request: &Request) -> std::io::Result<UnixStream> {
    let mut conn = UnixStream::connect(socket(state_dir)).await?;
    let mut line = serde_json::to_vec(request).expect("request serializes");
    line.push(b'\n');
    conn.write_all(&line).await?;
    Ok(conn)
}

/// Reads one reply line byte by byte, so nothing after it is consumed (an attach
/// stream follows the reply on the same connection).
async fn read_reply(conn: &mut UnixStream) -> std::io::Result<Reply> {
    let mut buf = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    loop {
        if conn.read(&mut byte).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "shim closed the connection",
            ));
        }
        if byte[0] == b'\n' {
            break;
        }
        buf.push(byte[0]);
        if buf.len() > 1 << 20 {
            return Err(std::io::Error::other("shim reply too long"));
        }
    }
    serde_json::from_slice(&buf).map_err(std::io::Error::other)
}

/// Sends one request and reads its reply.
///
/// # Errors
/// The shim is gone or answered garbage.
pub(super) async fn call(state_dir: &Path, request: &Request) -> std::io::Result<Reply> {
    let mut conn = send(state_dir, request).await?;
    read_reply(&mut conn).await
}

/// Opens an attach stream (after the shim's `Ok`).
///
/// # Errors
/// The shim is gone or refused.
pub(super) async fn attach(
    state_dir: &Path,
    stdin: bool,
    stdout: bool,
    stderr: bool,
) -> std::io::Result<UnixStream> {
    let mut conn = send(
        state_dir,
        &Request::Attach {
            stdin,
            stdout,
            stderr,
        },
    )
    .await?;
    match read_reply(&mut conn).await? {
        Reply::Ok => Ok(conn),
        other => Err(std::io::Error::other(format!(
            "shim refused attach: {other:?}"
        ))),
    }
}

/// Starts an exec: the shim's first reply, and the connection (the exec's stream
/// follows the reply when it started and is not detached).
///
/// # Errors
/// The shim is gone.
pub(super) async fn exec(
    state_dir: &Path,
    spec: &berth_shim_protocol::ExecSpec,
) -> std::io::Result<(Reply, UnixStream)> {
    let mut conn = send(state_dir, &Request::Exec(spec.clone())).await?;
    let reply = read_reply(&mut conn).await?;
    Ok((reply, conn))
}
