//! The embedded DNS server: answers for the names of containers on user-defined
//! networks at 127.0.0.11 inside each container, and forwards every other question to
//! the host's resolvers.
//!
//! The socket is bound inside the container's network namespace by a short-lived
//! thread ([`bind_in_netns`]) and then served by a task of the daemon, so the server
//! runs in no container process and survives nothing the container does. Forwarded
//! questions leave from the daemon's namespace, which reaches the host's resolvers
//! even when they listen on the host's loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Where the server listens inside each container.
pub const DNS_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
/// How long an answer from a container's records may be cached (Docker's figure).
const TTL: u32 = 600;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// A question of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name, lowercased, without the trailing dot.
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// Where the question section ends in the message.
    end: usize,
}

/// Parses the single question of a standard query; `None` for anything else.
pub fn parse_query(msg: &[u8]) -> Option<Question> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 || (msg[2] >> 3) & 0x0f != 0 {
        return None;
    }
    if u16::from_be_bytes([msg[4], msg[5]]) != 1 {
        return None;
    }
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = *msg.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        let label = msg.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]);
    let qclass = u16::from_be_bytes([*msg.get(i + 2)?, *msg.get(i + 3)?]);
    Some(Question {
        name: labels.join("."),
        qtype,
        qclass,
        end: i + 4,
    })
}

/// The answer to `query` (whose question is `q`) with `addrs` as A records; an empty
/// `addrs` for an A question answers NXDOMAIN, for other types an empty NOERROR
/// (the name exists, without such records).
pub fn answer(query: &[u8], q: &Question, addrs: &[Ipv4Addr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.end + 16 * addrs.len());
    out.extend_from_slice(&query[..2]);
    let rd = query[2] & 0x01;
    let a_question = q.qtype == TYPE_A && q.qclass == CLASS_IN;
    let rcode = if addrs.is_empty() && a_question {
        RCODE_NXDOMAIN
    } else {
        0
    };
    // QR, AA, RD as asked; RA; the rcode.
    out.push(0x80 | 0x04 | rd);
    out.push(0x80 | rcode);
    let ancount = if a_question { addrs.len() as u16 } else { 0 };
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ancount.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..q.end]);
    if a_question {
        for a in addrs {
            out.extend_from_slice(&[0xc0, 0x0c]);
            out.extend_from_slice(&TYPE_A.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&TTL.to_be_bytes());
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&a.octets());
        }
    }
    out
}

/// A failure answer (SERVFAIL) to a query that could not be forwarded.
pub fn servfail(query: &[u8]) -> Vec<u8> {
    let mut out = query.to_vec();
    if out.len() >= 4 {
        out[2] |= 0x80;
        out[3] = (out[3] & 0xf0) | 0x80 | RCODE_SERVFAIL;
    }
    out
}

/// The nameservers of a resolv.conf text.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The container's names and addresses, asked per query: the network state changes
/// while the server runs.
pub trait Records: Send + Sync + 'static {
    /// The addresses of `name` as seen from this container; `None` when the name is
    /// not a container's (then the question is forwarded).
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>>;
}

/// Binds UDP 127.0.0.11:53 inside the namespace bound at `netns`.
///
/// # Errors
/// The namespace cannot be entered or the port bound.
pub fn bind_in_netns(netns: &Path) -> std::io::Result<std::net::UdpSocket> {
    let ns = std::fs::File::open(netns)?;
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        std::net::UdpSocket::bind((DNS_ADDRESS, 53))
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("dns bind thread panicked")))
}

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct DnsServer {
    task: JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `socket` with `records`, forwarding other names to `upstream`. Must be
/// called inside a tokio runtime.
///
/// # Errors
/// The socket cannot be registered with the runtime.
pub fn serve(
    socket: std::net::UdpSocket,
    records: Arc<dyn Records>,
    upstream: Vec<SocketAddr>,
) -> std::io::Result<DnsServer> {
    socket.set_nonblocking(true)?;
    let socket = Arc::new(tokio::net::UdpSocket::from_std(socket)?);
    let upstream = Arc::new(upstream);
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, client)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            let query = buf[..n].to_vec();
            let Some(q) = parse_query(&query) else {
                continue;
            };
            if let Some(addrs) = records.lookup(&q.name) {
                let _ = socket.send_to(&answer(&query, &q, &addrs), client).await;
                continue;
            }
            let (socket, upstream) = (socket.clone(), upstream.clone());
            tokio::spawn(async move {
                let reply = forward(&query, &upstream)
                    .await
                    .unwrap_or_else(|| servfail(&query));
                let _ = socket.send_to(&reply, client).await;
            });
        }
    });
    Ok(DnsServer { task })
}

async fn forward(query: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.send_to(query, server).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(FORWARD_TIMEOUT, sock.recv_from(&mut buf)).await
        {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE_AAAA: u16 = 28;

    /// A query for `name` of `qtype`, as a stub resolver sends it.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m
    }

    #[test]
    fn query_is_parsed_lowercase() {
        let q = parse_query(&query("Web.Local", TYPE_A)).unwrap();
        assert_eq!((q.name.as_str(), q.qtype, q.qclass), ("web.local", 1, 1));
        assert!(parse_query(&[0; 5]).is_none());
        let mut response = query("a", TYPE_A);
        response[2] |= 0x80;
        assert!(parse_query(&response).is_none());
    }

    #[test]
    fn a_answer_carries_the_addresses() {
        let m = query("web", TYPE_A);
        let q = parse_query(&m).unwrap();
        let a = answer(&m, &q, &[Ipv4Addr::new(10, 1, 0, 2)]);
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 1, 0, 2]);
    }

    #[test]
    fn unknown_a_is_nxdomain_and_aaaa_is_empty() {
        let m = query("web", TYPE_A);
        let a = answer(&m, &parse_query(&m).unwrap(), &[]);
        assert_eq!(a[3] & 0x0f, RCODE_NXDOMAIN);
        let m = query("web", TYPE_AAAA);
        let a = answer(&m, &parse_query(&m).unwrap(), &[Ipv4Addr::LOCALHOST]);
        assert_eq!((a[3] & 0x0f, u16::from_be_bytes([a[6], a[7]])), (0, 0));
    }

    #[test]
    fn resolv_conf_nameservers_are_read() {
        let ns = nameservers("search x\nnameserver 10.0.0.53\nnameserver ::1\n");
        assert_eq!(
            ns,
            vec!["10.0.0.53:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
    }

    struct Fixed;
    impl Records for Fixed {
        fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
            (name == "web").then(|| vec![Ipv4Addr::new(10, 1, 0, 2)])
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn server_answers_known_names_and_fails_unforwardable_ones() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let _srv = serve(sock, Arc::new(Fixed), vec![]).unwrap();
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = [0u8; 512];
        c.send_to(&query("web", TYPE_A), addr).await.unwrap();
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[n - 4..n], &[10, 1, 0, 2]);
        c.send_to(&query("example.org", TYPE_A), addr)
            .await
            .unwrap();
        let n = c.recv(&mut buf).await.unwrap();
        assert_eq!(buf[3] & 0x0f, RCODE_SERVFAIL);
        assert!(n >= 12);
    }
}
