//! The embedded DNS server: answers for the names of containers on user-defined
//! networks at 127.0.0.11 inside each container, and forwards every other question to
//! the host's resolvers.
//!
//! The socket is bound inside the container's network namespace by a short-lived
//! thread ([`bind_in_netns`]) and then served by a task of the daemon, so the server
//! runs in no container process and survives nothing the container does. Forwarded
//! questions leave from the daemon's namespace, which reaches the host's resolvers
//! even when they listen on the host's loopback.
//!
//! It answers over UDP and TCP, as Docker's does: a stub resolver that gets a
//! truncated (TC) UDP answer, a name with more addresses than fit in 512 bytes,
//! asks again over TCP, and some clients use TCP from the start. Forwarded questions
//! keep the transport they came in on, so a large upstream answer arrives whole.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Where the server listens inside each container.
pub const DNS_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

const TYPE_A: u16 = 1;
/// QTYPE AAAA.
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NXDOMAIN: u8 = 3;
/// How long an answer from a container's records may be cached (Docker's figure).
const TTL: u32 = 600;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest UDP answer without EDNS (RFC 1035 4.2.1); larger ones are truncated.
const UDP_LIMIT: usize = 512;
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Size of one A record in an answer (name pointer, type, class, TTL, length, address).
const A_RECORD_LEN: usize = 16;
/// An AAAA record in an answer: name pointer, type, class, TTL, length, address.
const AAAA_RECORD_LEN: usize = 28;

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

/// The records of `addrs` that answer `q`: IPv4 ones for A, IPv6 ones for AAAA.
fn records_for(q: &Question, addrs: &[IpAddr]) -> Vec<IpAddr> {
    if q.qclass != CLASS_IN {
        return Vec::new();
    }
    addrs
        .iter()
        .filter(|a| match q.qtype {
            TYPE_A => a.is_ipv4(),
            TYPE_AAAA => a.is_ipv6(),
            _ => false,
        })
        .copied()
        .collect()
}

/// The answer to `query` (whose question is `q`) from a container's addresses: A
/// records for an A question, AAAA records for AAAA. No address at all answers
/// NXDOMAIN; a name without records of the type asked (an IPv4-only container asked
/// for AAAA) an empty NOERROR: the name exists.
pub fn answer(query: &[u8], q: &Question, addrs: &[IpAddr]) -> Vec<u8> {
    let records = records_for(q, addrs);
    let mut out = Vec::with_capacity(q.end + AAAA_RECORD_LEN * records.len());
    out.extend_from_slice(&query[..2]);
    let rd = query[2] & 0x01;
    let address_question = matches!(q.qtype, TYPE_A | TYPE_AAAA) && q.qclass == CLASS_IN;
    let rcode = if addrs.is_empty() && address_question {
        RCODE_NXDOMAIN
    } else {
        0
    };
    // QR, AA, RD as asked; RA; the rcode.
    out.push(0x80 | 0x04 | rd);
    out.push(0x80 | rcode);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&query[12..q.end]);
    for a in &records {
        out.extend_from_slice(&[0xc0, 0x0c]);
        let (kind, data): (u16, Vec<u8>) = match a {
            IpAddr::V4(v4) => (TYPE_A, v4.octets().to_vec()),
            IpAddr::V6(v6) => (TYPE_AAAA, v6.octets().to_vec()),
        };
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}

/// [`answer`] sized for UDP: when the records do not fit in 512 bytes, as many as fit
/// with the TC bit set, so the client asks again over TCP.
pub fn answer_udp(query: &[u8], q: &Question, addrs: &[IpAddr]) -> Vec<u8> {
    let records = records_for(q, addrs);
    let size = if q.qtype == TYPE_AAAA {
        AAAA_RECORD_LEN
    } else {
        A_RECORD_LEN
    };
    let fit = UDP_LIMIT.saturating_sub(q.end) / size;
    if records.len() <= fit {
        return answer(query, q, addrs);
    }
    // Only the records of the type asked are kept: the rest would not be sent.
    let mut out = answer(query, q, &records[..fit]);
    out[2] |= 0x02;
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

/// A name with several addresses (a scaled service, an alias several containers share)
/// is answered in a random order each time, as Docker's resolver does, so clients that
/// take the first address spread over all of them.
fn shuffled(mut addrs: Vec<IpAddr>) -> Vec<IpAddr> {
    use rand::seq::SliceRandom;
    addrs.shuffle(&mut rand::rng());
    addrs
}

/// The container's names and addresses, asked per query: the network state changes
/// while the server runs.
pub trait Records: Send + Sync + 'static {
    /// The addresses of `name` as seen from this container; `None` when the name is
    /// not a container's (then the question is forwarded).
    fn lookup(&self, name: &str) -> Option<Vec<IpAddr>>;
}

/// The server's two sockets, both on 127.0.0.11:53 in one namespace.
#[derive(Debug)]
pub struct DnsSockets {
    /// Where most questions come.
    pub udp: std::net::UdpSocket,
    /// For truncated answers asked again, and clients that use TCP first.
    pub tcp: std::net::TcpListener,
}

/// Binds UDP and TCP 127.0.0.11:53 inside the namespace bound at `netns`.
///
/// # Errors
/// The namespace cannot be entered or a port bound.
pub fn bind_in_netns(netns: &Path) -> std::io::Result<DnsSockets> {
    let ns = std::fs::File::open(netns)?;
    // A thread of its own enters the namespace: the sockets stay in it, the thread
    // ends, and no daemon thread is left in a container's namespace.
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        Ok(DnsSockets {
            udp: std::net::UdpSocket::bind((DNS_ADDRESS, 53))?,
            tcp: std::net::TcpListener::bind((DNS_ADDRESS, 53))?,
        })
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("dns bind thread panicked")))
}

/// A running server; dropping it stops it, TCP connections included.
#[derive(Debug)]
pub struct DnsServer {
    udp: JoinHandle<()>,
    tcp: JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.udp.abort();
        self.tcp.abort();
    }
}

/// Serves `sockets` with `records`, forwarding other names to `upstream`. Must be
/// called inside a tokio runtime.
///
/// # Errors
/// A socket cannot be registered with the runtime.
pub fn serve(
    sockets: DnsSockets,
    records: Arc<dyn Records>,
    upstream: Vec<SocketAddr>,
) -> std::io::Result<DnsServer> {
    sockets.udp.set_nonblocking(true)?;
    sockets.tcp.set_nonblocking(true)?;
    let socket = Arc::new(tokio::net::UdpSocket::from_std(sockets.udp)?);
    let listener = tokio::net::TcpListener::from_std(sockets.tcp)?;
    let upstream = Arc::new(upstream);
    let tcp = tokio::spawn(serve_tcp(listener, records.clone(), upstream.clone()));
    let udp = tokio::spawn(async move {
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
                let _ = socket
                    .send_to(&answer_udp(&query, &q, &shuffled(addrs)), client)
                    .await;
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
    Ok(DnsServer { udp, tcp })
}

/// Accepts TCP clients; each connection's task lives in a set owned by this task, so
/// aborting it (dropping the [`DnsServer`]) ends them all.
async fn serve_tcp(
    listener: tokio::net::TcpListener,
    records: Arc<dyn Records>,
    upstream: Arc<Vec<SocketAddr>>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(serve_tcp_connection(stream, records.clone(), upstream.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Answers length-prefixed questions (RFC 1035 4.2.2) on one connection until the
/// client closes it, goes idle or sends something that is not a query.
async fn serve_tcp_connection(
    mut stream: tokio::net::TcpStream,
    records: Arc<dyn Records>,
    upstream: Arc<Vec<SocketAddr>>,
) {
    use tokio::io::AsyncWriteExt;
    while let Ok(Some(query)) = tokio::time::timeout(TCP_IDLE, read_tcp_message(&mut stream))
        .await
        .unwrap_or(Ok(None))
    {
        let Some(q) = parse_query(&query) else {
            return;
        };
        let reply = match records.lookup(&q.name) {
            Some(addrs) => answer(&query, &q, &shuffled(addrs)),
            None => forward_tcp(&query, &upstream)
                .await
                .unwrap_or_else(|| servfail(&query)),
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// One length-prefixed DNS message; `None` at a clean end of the stream.
async fn read_tcp_message(stream: &mut tokio::net::TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut msg).await?;
    Ok(Some(msg))
}

/// Asks the upstream servers over TCP in turn; the first answer.
async fn forward_tcp(query: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    use tokio::io::AsyncWriteExt;
    let len = u16::try_from(query.len()).ok()?;
    for server in upstream {
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(server).await.ok()?;
            let mut framed = Vec::with_capacity(query.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(query);
            stream.write_all(&framed).await.ok()?;
            read_tcp_message(&mut stream).await.ok()?
        };
        if let Ok(Some(reply)) = tokio::time::timeout(FORWARD_TIMEOUT, exchange).await {
            return Some(reply);
        }
    }
    None
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
        let a = answer(&m, &q, &[IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2))]);
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 1, 0, 2]);
    }

    #[test]
    fn unknown_names_are_nxdomain_and_a_missing_family_is_empty() {
        let m = query("web", TYPE_A);
        let a = answer(&m, &parse_query(&m).unwrap(), &[]);
        assert_eq!(a[3] & 0x0f, RCODE_NXDOMAIN);
        let m = query("web", TYPE_AAAA);
        let a = answer(
            &m,
            &parse_query(&m).unwrap(),
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        );
        assert_eq!((a[3] & 0x0f, u16::from_be_bytes([a[6], a[7]])), (0, 0));
    }

    #[test]
    fn aaaa_answers_carry_the_ipv6_addresses_and_a_answers_only_ipv4() {
        let both = [
            IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
            IpAddr::V6("fd00::2".parse().unwrap()),
        ];
        let m = query("web", TYPE_AAAA);
        let a = answer(&m, &parse_query(&m).unwrap(), &both);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        let v6: std::net::Ipv6Addr = "fd00::2".parse().unwrap();
        assert_eq!(&a[a.len() - 16..], &v6.octets());
        let m = query("web", TYPE_A);
        let a = answer(&m, &parse_query(&m).unwrap(), &both);
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1);
        assert_eq!(&a[a.len() - 4..], &[10, 1, 0, 2]);
    }

    #[test]
    fn several_addresses_come_in_every_order() {
        let addrs: Vec<IpAddr> = (1..=3)
            .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)))
            .collect();
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..200 {
            let s = shuffled(addrs.clone());
            let mut sorted = s.clone();
            sorted.sort();
            assert_eq!(sorted, addrs, "the same addresses, reordered");
            firsts.insert(s[0]);
        }
        // 200 shuffles of three leave one address never first with odds of 2 * (2/3)^200.
        assert_eq!(firsts.len(), 3);
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
        fn lookup(&self, name: &str) -> Option<Vec<IpAddr>> {
            (name == "web").then(|| vec![IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2))])
        }
    }

    /// Sockets on loopback ports of their own (UDP's address, TCP's address).
    fn loopback_sockets() -> (DnsSockets, SocketAddr, SocketAddr) {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (u, t) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
        (DnsSockets { udp, tcp }, u, t)
    }

    /// One question over TCP, framed; the answer without its length.
    async fn ask_tcp(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(msg);
        s.write_all(&framed).await.unwrap();
        read_tcp_message(&mut s).await.unwrap().unwrap()
    }

    #[test]
    fn udp_answer_too_large_is_truncated_with_tc_and_tcp_answer_is_whole() {
        let m = query("many", TYPE_A);
        let q = parse_query(&m).unwrap();
        let addrs: Vec<_> = (0..40)
            .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)))
            .collect();
        let small = answer_udp(&m, &q, &addrs[..3]);
        assert_eq!(
            (small[2] & 0x02, u16::from_be_bytes([small[6], small[7]])),
            (0, 3)
        );
        let udp = answer_udp(&m, &q, &addrs);
        assert!(udp.len() <= UDP_LIMIT, "{}", udp.len());
        assert_eq!(udp[2] & 0x02, 0x02, "TC set");
        let fit = u16::from_be_bytes([udp[6], udp[7]]) as usize;
        assert_eq!(udp.len(), q.end + fit * A_RECORD_LEN);
        let whole = answer(&m, &q, &addrs);
        assert_eq!(u16::from_be_bytes([whole[6], whole[7]]), 40);
        assert_eq!(whole[2] & 0x02, 0);
    }

    struct Many;
    impl Records for Many {
        fn lookup(&self, name: &str) -> Option<Vec<IpAddr>> {
            (name == "many").then(|| {
                (0..40)
                    .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)))
                    .collect()
            })
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tcp_answers_known_names_whole_and_forwards_others_over_tcp() {
        // A fake upstream that answers every TCP question with a 1000-byte reply.
        let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = up.accept().await.unwrap();
            let q = read_tcp_message(&mut s).await.unwrap().unwrap();
            let mut reply = q.clone();
            reply[2] |= 0x80;
            reply.resize(1000, 0);
            let mut framed = 1000u16.to_be_bytes().to_vec();
            framed.extend_from_slice(&reply);
            s.write_all(&framed).await.unwrap();
        });
        let (sockets, _, tcp) = loopback_sockets();
        let _srv = serve(sockets, Arc::new(Many), vec![up_addr]).unwrap();

        let a = ask_tcp(tcp, &query("many", TYPE_A)).await;
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 40);
        assert_eq!(a[2] & 0x02, 0);
        let a = ask_tcp(tcp, &query("Many", TYPE_AAAA)).await;
        assert_eq!((a[3] & 0x0f, u16::from_be_bytes([a[6], a[7]])), (0, 0));
        let a = ask_tcp(tcp, &query("example.org", TYPE_A)).await;
        assert_eq!(a.len(), 1000);
        assert_eq!(&a[..2], &[0x12, 0x34]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn server_answers_known_names_and_fails_unforwardable_ones() {
        let (sockets, addr, _) = loopback_sockets();
        let _srv = serve(sockets, Arc::new(Fixed), vec![]).unwrap();
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
