//! `GET /containers/{id}/attach/ws`: attach over a websocket (RFC 6455), as docker-py's
//! `attach_socket(ws=True)` uses it.
//!
//! Only what this endpoint needs, written here rather than pulling a websocket stack
//! into the workspace: the opening handshake (SHA-1 and base64 of the key, RFC 6455
//! §4.2.2), server frames (unmasked, binary from API 1.42 as Docker sends them, text
//! before), and client frames (masked; data goes to the container's stdin, a close is
//! answered, a ping gets its pong). As in Docker, the output is not multiplexed: the
//! shim's 8-byte frame headers are removed and stdout and stderr arrive as they come.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The GUID RFC 6455 appends to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The largest client frame taken (stdin chunks are small).
const MAX_FRAME: u64 = 1 << 20;

/// SHA-1 (FIPS 180-4), for the handshake only.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &str) -> String {
    base64(&sha1(format!("{}{GUID}", key.trim()).as_bytes()))
}

/// One server frame (FIN set, unmasked).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// What a client frame asks for.
enum ClientFrame {
    Data(Vec<u8>),
    Ping(Vec<u8>),
    Close,
}

async fn read_client_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<ClientFrame> {
    loop {
        let mut head = [0u8; 2];
        r.read_exact(&mut head).await?;
        let opcode = head[0] & 0x0F;
        let masked = head[1] & 0x80 != 0;
        let mut len = u64::from(head[1] & 0x7F);
        if len == 126 {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).await?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).await?;
            len = u64::from_be_bytes(b);
        }
        if len > MAX_FRAME {
            return Err(std::io::Error::other("websocket frame too large"));
        }
        let mut mask = [0u8; 4];
        if masked {
            r.read_exact(&mut mask).await?;
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload).await?;
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        match opcode {
            0..=2 => return Ok(ClientFrame::Data(payload)),
            8 => return Ok(ClientFrame::Close),
            9 => return Ok(ClientFrame::Ping(payload)),
            _ => continue, // pongs and reserved opcodes
        }
    }
}

/// Removes the shim's 8-byte frame headers (no TTY): the payloads, in order.
#[derive(Default)]
pub(crate) struct Unframer {
    pending: Vec<u8>,
}

impl Unframer {
    pub(crate) fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(data);
        let mut at = 0;
        while self.pending.len() - at >= 8 {
            let len = u32::from_be_bytes([
                self.pending[at + 4],
                self.pending[at + 5],
                self.pending[at + 6],
                self.pending[at + 7],
            ]) as usize;
            if self.pending.len() - at - 8 < len {
                break;
            }
            out.extend_from_slice(&self.pending[at + 8..at + 8 + len]);
            at += 8 + len;
        }
        self.pending.drain(..at);
    }
}

/// Joins a websocket client and a shim attach stream until the output ends or the
/// client closes.
pub(crate) async fn splice_ws<C>(
    client: C,
    shim: tokio::net::UnixStream,
    stdin: bool,
    tty: bool,
    binary: bool,
) where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let opcode = if binary { 2 } else { 1 };
    let (mut client_r, client_w) = tokio::io::split(client);
    let client_w = std::sync::Arc::new(tokio::sync::Mutex::new(client_w));
    let (mut shim_r, mut shim_w) = shim.into_split();
    let input_w = client_w.clone();
    let (closed_tx, mut closed_rx) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        let _closed = closed_tx;
        loop {
            match read_client_frame(&mut client_r).await {
                Ok(ClientFrame::Data(data)) => {
                    if stdin && shim_w.write_all(&data).await.is_err() {
                        return;
                    }
                }
                Ok(ClientFrame::Ping(data)) => {
                    let _ = input_w.lock().await.write_all(&frame(10, &data)).await;
                }
                Ok(ClientFrame::Close) | Err(_) => {
                    let _ = input_w.lock().await.write_all(&frame(8, &[])).await;
                    let _ = shim_w.shutdown().await;
                    return;
                }
            }
        }
    });
    let mut buf = vec![0u8; 32 * 1024];
    let mut unframer = Unframer::default();
    let mut payload = Vec::new();
    loop {
        let n = tokio::select! {
            r = shim_r.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            // The input task ended (the client closed): the sender was dropped.
            _ = &mut closed_rx => break,
        };
        payload.clear();
        if tty {
            payload.extend_from_slice(&buf[..n]);
        } else {
            unframer.feed(&buf[..n], &mut payload);
        }
        if !payload.is_empty()
            && client_w
                .lock()
                .await
                .write_all(&frame(opcode, &payload))
                .await
                .is_err()
        {
            break;
        }
    }
    let mut w = client_w.lock().await;
    let _ = w.write_all(&frame(8, &[])).await;
    let _ = w.shutdown().await;
    input.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_answers_rfc_6455s_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn sha1_and_base64_match_known_values() {
        let hex: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn frames_use_the_short_and_extended_lengths() {
        assert_eq!(frame(2, b"hi"), b"\x82\x02hi");
        let big = frame(2, &[0u8; 300]);
        assert_eq!(&big[..4], &[0x82, 126, 1, 44]);
    }

    #[test]
    fn shim_frame_headers_are_removed_across_reads() {
        let mut u = Unframer::default();
        let mut out = Vec::new();
        u.feed(b"\x01\x00\x00\x00\x00\x00\x00\x03ab", &mut out);
        assert_eq!(out, b"");
        u.feed(b"c\x02\x00\x00\x00\x00\x00\x00\x01e", &mut out);
        assert_eq!(out, b"abce");
    }

    #[tokio::test]
    async fn masked_client_frames_are_unmasked() {
        let mask = [1u8, 2, 3, 4];
        let data = b"echo";
        let mut wire = vec![0x81, 0x80 | 4];
        wire.extend_from_slice(&mask);
        wire.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        wire.extend_from_slice(&[0x88, 0x80, 0, 0, 0, 0]);
        let mut r = &wire[..];
        assert!(
            matches!(read_client_frame(&mut r).await.unwrap(), ClientFrame::Data(d) if d == b"echo")
        );
        assert!(matches!(
            read_client_frame(&mut r).await.unwrap(),
            ClientFrame::Close
        ));
    }
}
