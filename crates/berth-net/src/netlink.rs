//! A small rtnetlink client: the few requests a container's interface needs (create a
//! veth pair with one end in a namespace, set a link's master and bring it up, add an
//! address, add the default route, delete a link, look up an index), each sent on a
//! `NETLINK_ROUTE` socket and waited for until the kernel acknowledges it.
//!
//! Why our own and not `ip`: spawning `ip` and `nsenter` cost about 45 ms of every
//! container start (bench/containers, docs/benchmarks.md); the same work through
//! netlink takes well under a millisecond. Why not the `rtnetlink` crates: they bring an
//! async stack (netlink-proto, futures channels) for what is here a handful of fixed
//! messages sent from a blocking thread.
//!
//! A netlink socket talks to the network namespace it was created in, so
//! [`Netlink::open_in`] creates its socket on a short-lived thread that first joins the
//! target namespace (`setns` affects only the calling thread); the socket keeps that
//! namespace after the thread ends, and the rest of the daemon never changes namespace.
//!
//! The messages are built by pure functions ([`Message`]) whose bytes the unit tests
//! check against the layouts of `<linux/netlink.h>`, `<linux/rtnetlink.h>`,
//! `<linux/if_link.h>` and `<linux/veth.h>`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

// <linux/netlink.h>
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
// <linux/rtnetlink.h>
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
// <linux/if_addr.h>
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
// <linux/if_link.h>
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
// <linux/veth.h>
const VETH_INFO_PEER: u16 = 1;
// <linux/if.h>
const IFF_UP: u32 = 0x1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// `IFA_F_NODAD`: an address usable at once, without duplicate address detection
/// (Docker sets it on container addresses: nothing else holds them on the bridge).
const IFA_F_NODAD: u8 = 0x02;
const AF_UNSPEC: u8 = 0;

/// One netlink request under construction: the 16-byte `nlmsghdr`, a fixed family
/// header, then attributes (nested ones through [`Message::nest`]).
#[derive(Debug)]
pub struct Message {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Message {
    /// A request of `kind` (`RTM_*`) with `flags` beyond `NLM_F_REQUEST | NLM_F_ACK`.
    fn new(kind: u16, flags: u16) -> Message {
        let mut buf = vec![0u8; 16];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        Message {
            buf,
            open: Vec::new(),
        }
    }

    /// `struct ifinfomsg`: family, type, index, flags, change.
    fn ifinfo(mut self, index: u32, flags: u32, change: u32) -> Message {
        push_ifinfo(&mut self.buf, index, flags, change);
        self
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) -> &mut Message {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        self
    }

    fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Message {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// A NUL-terminated string attribute (`IFLA_IFNAME`).
    fn attr_cstr(&mut self, kind: u16, value: &str) -> &mut Message {
        let mut payload = value.as_bytes().to_vec();
        payload.push(0);
        self.attr(kind, &payload)
    }

    /// Opens a nested attribute; [`Message::end`] closes the innermost one.
    fn nest(&mut self, kind: u16) -> &mut Message {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    fn end(&mut self) -> &mut Message {
        let start = self.open.pop().expect("a nested attribute is open");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// The finished bytes with sequence number `seq`.
    fn finish(mut self, seq: u32) -> Vec<u8> {
        assert!(self.open.is_empty(), "nested attribute left open");
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

fn push_ifinfo(buf: &mut Vec<u8>, index: u32, flags: u32, change: u32) {
    buf.extend_from_slice(&[AF_UNSPEC, 0, 0, 0]);
    buf.extend_from_slice(&index.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&change.to_ne_bytes());
}

/// `ip link add HOST [mtu N] type veth peer name PEER address MAC [mtu N] netns FD`.
fn add_veth_message(
    host: &str,
    peer: &str,
    mac: [u8; 6],
    netns_fd: u32,
    mtu: Option<u32>,
) -> Message {
    let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).ifinfo(0, 0, 0);
    m.attr_cstr(IFLA_IFNAME, host);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    m.nest(IFLA_LINKINFO).attr(IFLA_INFO_KIND, b"veth");
    m.nest(IFLA_INFO_DATA).nest(VETH_INFO_PEER);
    // The peer's own ifinfomsg opens VETH_INFO_PEER's payload.
    push_ifinfo(&mut m.buf, 0, 0, 0);
    m.attr_cstr(IFLA_IFNAME, peer).attr(IFLA_ADDRESS, &mac);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    m.attr_u32(IFLA_NET_NS_FD, netns_fd);
    m.end().end().end();
    m
}

/// `ip link set INDEX [master MASTER] up`.
fn set_link_up_message(index: u32, master: Option<u32>) -> Message {
    let mut m = Message::new(RTM_SETLINK, 0).ifinfo(index, IFF_UP, IFF_UP);
    if let Some(master) = master {
        m.attr_u32(IFLA_MASTER, master);
    }
    m
}

/// `ip link show NAME` (for its index).
fn get_link_message(name: &str) -> Message {
    let mut m = Message::new(RTM_GETLINK, 0).ifinfo(0, 0, 0);
    m.attr_cstr(IFLA_IFNAME, name);
    m
}

/// `ip link del NAME`.
fn delete_link_message(name: &str) -> Message {
    let mut m = Message::new(RTM_DELLINK, 0).ifinfo(0, 0, 0);
    m.attr_cstr(IFLA_IFNAME, name);
    m
}

/// `ip addr add ADDRESS/PREFIX dev INDEX`.
fn add_address_message(index: u32, address: Ipv4Addr, prefix: u8) -> Message {
    let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    // struct ifaddrmsg: family, prefixlen, flags, scope, index.
    m.buf
        .extend_from_slice(&[AF_INET, prefix, 0, RT_SCOPE_UNIVERSE]);
    m.buf.extend_from_slice(&index.to_ne_bytes());
    m.attr(IFA_LOCAL, &address.octets())
        .attr(IFA_ADDRESS, &address.octets());
    m
}

/// `ip -6 addr add ADDRESS/PREFIX dev INDEX nodad`.
fn add_address6_message(index: u32, address: Ipv6Addr, prefix: u8) -> Message {
    let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    m.buf
        .extend_from_slice(&[AF_INET6, prefix, IFA_F_NODAD, RT_SCOPE_UNIVERSE]);
    m.buf.extend_from_slice(&index.to_ne_bytes());
    m.attr(IFA_ADDRESS, &address.octets());
    m
}

/// `ip -6 route add default via GATEWAY dev INDEX`.
fn add_default_route6_message(gateway: Ipv6Addr, index: u32) -> Message {
    let mut m = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    m.buf.extend_from_slice(&[
        AF_INET6,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ]);
    m.buf.extend_from_slice(&0u32.to_ne_bytes());
    m.attr(RTA_GATEWAY, &gateway.octets())
        .attr_u32(RTA_OIF, index);
    m
}

/// `ip route add default via GATEWAY dev INDEX`.
fn add_default_route_message(gateway: Ipv4Addr, index: u32) -> Message {
    let mut m = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    m.buf.extend_from_slice(&[
        AF_INET,
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ]);
    m.buf.extend_from_slice(&0u32.to_ne_bytes());
    m.attr(RTA_GATEWAY, &gateway.octets())
        .attr_u32(RTA_OIF, index);
    m
}

/// What the kernel answered to one request: the data messages before its
/// acknowledgement, or the errno it refused with.
fn parse_replies(buf: &[u8], seq: u32, data: &mut Vec<Vec<u8>>) -> Option<io::Result<()>> {
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
        if len < 16 || at + len > buf.len() {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink message",
            )));
        }
        let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().expect("2 bytes"));
        let msg_seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().expect("4 bytes"));
        let body = &buf[at + 16..at + len];
        at += len.next_multiple_of(4);
        if msg_seq != seq {
            continue;
        }
        match kind {
            NLMSG_ERROR => {
                let code = body
                    .get(..4)
                    .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                return Some(if code == 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-code))
                });
            }
            NLMSG_DONE => return Some(Ok(())),
            _ => data.push(body.to_vec()),
        }
    }
    None
}

/// A `NETLINK_ROUTE` socket in one network namespace.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    ///
    /// # Errors
    /// `socket(2)` fails.
    pub fn open() -> io::Result<Netlink> {
        #[allow(unsafe_code)]
        // SAFETY: plain socket(2) with constant arguments; the result is checked before
        // it is wrapped, and the new descriptor is owned by nothing else.
        let fd = unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        Ok(Netlink { fd, seq: 0 })
    }

    /// A socket in the network namespace bound at `netns` (a file from
    /// [`crate::link::create_netns`] or `/proc/PID/ns/net`).
    ///
    /// # Errors
    /// The file cannot be opened, `setns` or `socket` fails.
    pub fn open_in(netns: &Path) -> io::Result<Netlink> {
        let ns = std::fs::File::open(netns)?;
        std::thread::spawn(move || {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            Netlink::open()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("netlink namespace thread panicked")))
    }

    /// Sends one request and waits for its acknowledgement; returns the data
    /// messages (their bodies, after `nlmsghdr`) that came before it.
    fn request(&mut self, message: Message) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = message.finish(self.seq);
        #[allow(unsafe_code)]
        // SAFETY: a zeroed sockaddr_nl with the family set addresses the kernel (pid 0);
        // the buffer pointers and lengths come from live slices.
        let sent = unsafe {
            let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
            kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&raw const kernel).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut data = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            #[allow(unsafe_code)]
            // SAFETY: recv(2) writes at most `buf.len()` bytes into `buf`.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if let Some(done) = parse_replies(&buf[..n as usize], self.seq, &mut data) {
                return done.map(|()| data);
            }
        }
    }

    /// The index of the link `name`.
    ///
    /// # Errors
    /// `ENODEV` when there is none.
    pub fn link_index(&mut self, name: &str) -> io::Result<u32> {
        let replies = self.request(get_link_message(name))?;
        replies
            .first()
            .and_then(|b| b.get(4..8))
            .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no link in the reply"))
    }

    /// Creates a veth pair: `host` here, `peer` (with `mac`) in the namespace `netns`.
    ///
    /// # Errors
    /// The kernel refuses (`EEXIST` for a name in use).
    pub fn add_veth(
        &mut self,
        host: &str,
        peer: &str,
        mac: [u8; 6],
        netns: BorrowedFd<'_>,
        mtu: Option<u32>,
    ) -> io::Result<()> {
        let fd = netns.as_raw_fd() as u32;
        self.request(add_veth_message(host, peer, mac, fd, mtu))
            .map(drop)
    }

    /// Brings a link up, enslaving it to `master` first if given.
    ///
    /// # Errors
    /// The kernel refuses.
    pub fn set_up(&mut self, index: u32, master: Option<u32>) -> io::Result<()> {
        self.request(set_link_up_message(index, master)).map(drop)
    }

    /// Adds an IPv4 address to a link.
    ///
    /// # Errors
    /// The kernel refuses (`EEXIST` when present).
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> io::Result<()> {
        self.request(add_address_message(index, address, prefix))
            .map(drop)
    }

    /// Adds the default route through `gateway` on a link (which must be up).
    ///
    /// # Errors
    /// The kernel refuses (`EEXIST` when there is one).
    pub fn add_default_route(&mut self, gateway: Ipv4Addr, index: u32) -> io::Result<()> {
        self.request(add_default_route_message(gateway, index))
            .map(drop)
    }

    /// Adds an IPv6 address to a link, usable at once (no duplicate detection).
    ///
    /// # Errors
    /// The kernel refuses (`EEXIST` when present).
    pub fn add_address6(&mut self, index: u32, address: Ipv6Addr, prefix: u8) -> io::Result<()> {
        self.request(add_address6_message(index, address, prefix))
            .map(drop)
    }

    /// Adds the IPv6 default route through `gateway` on a link.
    ///
    /// # Errors
    /// The kernel refuses.
    pub fn add_default_route6(&mut self, gateway: Ipv6Addr, index: u32) -> io::Result<()> {
        self.request(add_default_route6_message(gateway, index))
            .map(drop)
    }

    /// Deletes the link `name`.
    ///
    /// # Errors
    /// `ENODEV` when there is none.
    pub fn delete_link(&mut self, name: &str) -> io::Result<()> {
        self.request(delete_link_message(name)).map(drop)
    }
}

/// `02:42:ac:11:00:02` as bytes.
pub fn parse_mac(mac: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = mac.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes(b[at..at + 2].try_into().unwrap())
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_carries_length_kind_flags_and_sequence() {
        let b = set_link_up_message(7, Some(3)).finish(42);
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        assert_eq!(u16_at(&b, 4), RTM_SETLINK);
        assert_eq!(u16_at(&b, 6), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(u32_at(&b, 8), 42);
        // ifinfomsg: index 7, flags and change IFF_UP.
        assert_eq!(u32_at(&b, 20), 7);
        assert_eq!(u32_at(&b, 24), IFF_UP);
        assert_eq!(u32_at(&b, 28), IFF_UP);
        // IFLA_MASTER = 3.
        assert_eq!(u16_at(&b, 32), 8);
        assert_eq!(u16_at(&b, 34), IFLA_MASTER);
        assert_eq!(u32_at(&b, 36), 3);
        assert_eq!(b.len(), 40);
    }

    #[test]
    fn veth_request_nests_the_peer_with_its_own_ifinfomsg() {
        let b = add_veth_message("vb01", "eth0", [2, 0x42, 0xac, 0x11, 0, 2], 9, None).finish(1);
        assert_eq!(u32_at(&b, 0) as usize, b.len());
        assert_eq!(
            u16_at(&b, 6),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
        // IFLA_IFNAME "vb01\0" padded to 8.
        assert_eq!(u16_at(&b, 32), 9);
        assert_eq!(u16_at(&b, 34), IFLA_IFNAME);
        assert_eq!(&b[36..41], b"vb01\0");
        // IFLA_LINKINFO spans the rest of the message.
        let linkinfo = 44;
        assert_eq!(u16_at(&b, linkinfo + 2), IFLA_LINKINFO | NLA_F_NESTED);
        assert_eq!(u16_at(&b, linkinfo) as usize, b.len() - linkinfo);
        assert_eq!(u16_at(&b, linkinfo + 4), 8);
        assert_eq!(u16_at(&b, linkinfo + 6), IFLA_INFO_KIND);
        assert_eq!(&b[linkinfo + 8..linkinfo + 12], b"veth");
        let data = linkinfo + 12;
        assert_eq!(u16_at(&b, data + 2), IFLA_INFO_DATA | NLA_F_NESTED);
        let peer = data + 4;
        assert_eq!(u16_at(&b, peer + 2), VETH_INFO_PEER | NLA_F_NESTED);
        assert_eq!(u16_at(&b, peer) as usize, b.len() - peer);
        // 16 bytes of ifinfomsg, then the peer's name, address and namespace.
        let attrs = peer + 4 + 16;
        assert_eq!(u16_at(&b, attrs + 2), IFLA_IFNAME);
        assert_eq!(&b[attrs + 4..attrs + 9], b"eth0\0");
        let mac = attrs + 12;
        assert_eq!(u16_at(&b, mac), 10);
        assert_eq!(u16_at(&b, mac + 2), IFLA_ADDRESS);
        assert_eq!(&b[mac + 4..mac + 10], &[2, 0x42, 0xac, 0x11, 0, 2]);
        let ns = mac + 12;
        assert_eq!(u16_at(&b, ns + 2), IFLA_NET_NS_FD);
        assert_eq!(u32_at(&b, ns + 4), 9);
        assert_eq!(ns + 8, b.len());
    }

    #[test]
    fn address_and_route_requests_use_inet_headers() {
        let a = add_address_message(5, Ipv4Addr::new(172, 17, 0, 2), 16).finish(2);
        assert_eq!(&a[16..20], &[AF_INET, 16, 0, RT_SCOPE_UNIVERSE]);
        assert_eq!(u32_at(&a, 20), 5);
        assert_eq!(u16_at(&a, 26), IFA_LOCAL);
        assert_eq!(&a[28..32], &[172, 17, 0, 2]);
        assert_eq!(u16_at(&a, 34), IFA_ADDRESS);
        let r = add_default_route_message(Ipv4Addr::new(172, 17, 0, 1), 5).finish(3);
        assert_eq!(
            &r[16..24],
            &[AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST]
        );
        assert_eq!(u16_at(&r, 30), RTA_GATEWAY);
        assert_eq!(&r[32..36], &[172, 17, 0, 1]);
        assert_eq!(u16_at(&r, 38), RTA_OIF);
        assert_eq!(u32_at(&r, 40), 5);
        assert_eq!(r.len(), 44);
    }

    fn reply(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn replies_end_at_the_ack_or_the_errno_of_our_sequence() {
        let mut data = Vec::new();
        let mut buf = reply(RTM_NEWLINK, 4, &[0u8; 16]);
        buf.extend(reply(NLMSG_ERROR, 3, &(-1i32).to_ne_bytes()));
        assert!(parse_replies(&buf, 4, &mut data).is_none());
        assert_eq!(data.len(), 1);
        buf.extend(reply(NLMSG_ERROR, 4, &0i32.to_ne_bytes()));
        assert!(parse_replies(&buf, 4, &mut Vec::new()).unwrap().is_ok());
        let refused = reply(NLMSG_ERROR, 5, &(-libc::EEXIST).to_ne_bytes());
        let e = parse_replies(&refused, 5, &mut Vec::new())
            .unwrap()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert!(parse_replies(&buf[..10], 4, &mut Vec::new()).is_none());
    }

    #[test]
    fn macs_parse_from_docker_s_notation() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:02"),
            Some([2, 0x42, 0xac, 0x11, 0, 2])
        );
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00:02:03"), None);
        assert_eq!(parse_mac("zz:42:ac:11:00:02"), None);
    }
}
