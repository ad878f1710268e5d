//! The userland proxy: published ports on the host's own addresses, for connections
//! DNAT does not serve (those to 127.0.0.0/8, and hairpin from the bridges).
//!
//! The listening socket is bound synchronously by [`bind`] before anything else is set
//! up, so that it also reserves the host port: a second container asking for it gets
//! Docker's "port is already allocated" at once. The proxy lives in the daemon's tokio
//! runtime as one task per port, aborted when its [`PortProxy`] is dropped; after a
//! daemon restart the daemon binds again for the containers still running.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::ports::{PortMapping, PortRequest, Protocol};

/// How long a UDP flow stays mapped without traffic (docker-proxy's figure).
const UDP_IDLE: Duration = Duration::from_secs(90);

/// Errors of binding a host port.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Taken by someone else (Docker's words).
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    PortAllocated {
        /// The host address.
        ip: Ipv4Addr,
        /// The host port (the first of a range).
        port: u16,
    },
    /// Any other bind failure.
    #[error("cannot listen on {ip}:{port}")]
    Bind {
        /// The host address.
        ip: Ipv4Addr,
        /// The host port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// SCTP is published by DNAT alone.
    #[error("publishing SCTP ports is not supported")]
    Sctp,
}

/// A bound host socket, not yet proxying.
#[derive(Debug)]
pub enum Bound {
    /// A TCP listener.
    Tcp(std::net::TcpListener),
    /// A UDP socket.
    Udp(std::net::UdpSocket),
}

/// Binds a host socket for `req`: its port, the first free one of its range, or an
/// ephemeral one. Returns the mapping as bound.
///
/// # Errors
/// `PortAllocated` when no acceptable port is free, `Bind`, `Sctp`.
pub fn bind(req: &PortRequest) -> Result<(Bound, PortMapping), ProxyError> {
    let (first, last) = req.host_ports;
    let mut last_err = None;
    for port in first..=last {
        let addr = SocketAddr::V4(SocketAddrV4::new(req.host_ip, port));
        let bound = match req.proto {
            Protocol::Tcp => std::net::TcpListener::bind(addr).map(Bound::Tcp),
            Protocol::Udp => std::net::UdpSocket::bind(addr).map(Bound::Udp),
            Protocol::Sctp => return Err(ProxyError::Sctp),
        };
        match bound {
            Ok(b) => {
                let local = match &b {
                    Bound::Tcp(l) => l.local_addr(),
                    Bound::Udp(u) => u.local_addr(),
                }
                .map_err(|source| ProxyError::Bind {
                    ip: req.host_ip,
                    port,
                    source,
                })?;
                let mapping = PortMapping {
                    proto: req.proto,
                    container_port: req.container_port,
                    host_ip: req.host_ip,
                    host_port: local.port(),
                };
                return Ok((b, mapping));
            }
            Err(e) => last_err = Some(e),
        }
    }
    match last_err {
        Some(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(ProxyError::PortAllocated {
            ip: req.host_ip,
            port: first,
        }),
        Some(source) => Err(ProxyError::Bind {
            ip: req.host_ip,
            port: first,
            source,
        }),
        None => Err(ProxyError::PortAllocated {
            ip: req.host_ip,
            port: first,
        }),
    }
}

/// A running proxy; dropping it closes the host port.
#[derive(Debug)]
pub struct PortProxy {
    task: JoinHandle<()>,
}

impl Drop for PortProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts proxying `bound` to `target`. Must be called inside a tokio runtime.
///
/// # Errors
/// The socket cannot be registered with the runtime.
pub fn spawn(bound: Bound, target: SocketAddr) -> std::io::Result<PortProxy> {
    let task = match bound {
        Bound::Tcp(l) => {
            l.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(l)?;
            tokio::spawn(tcp_loop(listener, target))
        }
        Bound::Udp(u) => {
            u.set_nonblocking(true)?;
            let socket = tokio::net::UdpSocket::from_std(u)?;
            tokio::spawn(udp_loop(Arc::new(socket), target))
        }
    };
    Ok(PortProxy { task })
}

async fn tcp_loop(listener: tokio::net::TcpListener, target: SocketAddr) {
    loop {
        let (mut inbound, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = inbound.set_nodelay(true);
            match tokio::net::TcpStream::connect(target).await {
                Ok(mut outbound) => {
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                Err(e) => {
                    tracing::debug!(%peer, %target, error = %e, "proxy cannot reach container")
                }
            }
        });
    }
}

async fn udp_loop(socket: Arc<tokio::net::UdpSocket>, target: SocketAddr) {
    let flows: Arc<tokio::sync::Mutex<HashMap<SocketAddr, Arc<tokio::net::UdpSocket>>>> =
        Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let flow = {
            let mut map = flows.lock().await;
            match map.get(&client) {
                Some(f) => f.clone(),
                None => {
                    let Ok(up) = tokio::net::UdpSocket::bind("0.0.0.0:0").await else {
                        continue;
                    };
                    if up.connect(target).await.is_err() {
                        continue;
                    }
                    let up = Arc::new(up);
                    map.insert(client, up.clone());
                    let (up2, down, flows2) = (up.clone(), socket.clone(), flows.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok(Ok(n)) =
                            tokio::time::timeout(UDP_IDLE, up2.recv(&mut buf)).await
                        {
                            let _ = down.send_to(&buf[..n], client).await;
                        }
                        flows2.lock().await.remove(&client);
                    });
                    up
                }
            }
        };
        let _ = flow.send(&buf[..n]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn req(port: u16) -> PortRequest {
        PortRequest {
            proto: Protocol::Tcp,
            container_port: 80,
            host_ip: Ipv4Addr::LOCALHOST,
            host_ports: (port, port),
        }
    }

    #[test]
    fn taken_port_is_reported_as_docker_does() {
        let (_held, m) = bind(&req(0)).unwrap();
        assert_ne!(m.host_port, 0);
        let err = bind(&req(m.host_port)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Bind for 127.0.0.1:{} failed: port is already allocated",
                m.host_port
            )
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tcp_proxy_carries_bytes_both_ways() {
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).await.unwrap();
            s.write_all(&b).await.unwrap();
        });
        let (bound, m) = bind(&req(0)).unwrap();
        let _proxy = spawn(bound, target).unwrap();
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", m.host_port))
            .await
            .unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hello");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn udp_proxy_relays_replies_to_the_client() {
        let echo = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 16];
            let (n, from) = echo.recv_from(&mut b).await.unwrap();
            echo.send_to(&b[..n], from).await.unwrap();
        });
        let mut r = req(0);
        r.proto = Protocol::Udp;
        let (bound, m) = bind(&r).unwrap();
        let _proxy = spawn(bound, target).unwrap();
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(b"ping", ("127.0.0.1", m.host_port))
            .await
            .unwrap();
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&b[..n], b"ping");
    }
}
