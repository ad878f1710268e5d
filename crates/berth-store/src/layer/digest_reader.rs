//! Digesting a stream while it is consumed.
//!
//! A pulled layer is verified twice on its single pass through memory: the compressed
//! bytes against the manifest's blob digest and the decompressed bytes against the
//! config's diff ID. Wrapping each side in a [`DigestReader`] does both without a second
//! read of the data.

use std::io::{self, BufRead, Read};

use berth_oci::{Digest, Digester};

/// Size of the buffer [`DigestReader::drain`] reads with.
const DRAIN_BUF: usize = 64 * 1024;

/// A reader that sha256-digests and counts every byte read through it.
///
/// It also implements [`BufRead`] when `R` does, digesting bytes as they are consumed,
/// so it can sit under a decompressor without an extra copy.
pub struct DigestReader<R> {
    inner: R,
    digester: Digester,
    count: u64,
}

impl<R> DigestReader<R> {
    /// Starts digesting `inner` from its current position.
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            digester: Digester::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest and length of everything read so far.
    pub fn finish(self) -> (Digest, u64) {
        (self.digester.finish(), self.count)
    }
}

impl<R: Read> DigestReader<R> {
    /// Reads the rest of the stream to EOF, so that the digest covers all of it: a tar
    /// reader stops at the end-of-archive blocks and never reads the padding after them,
    /// but the diff ID is the digest of the whole stream. Returns how many bytes it read.
    ///
    /// # Errors
    /// Reading from the inner reader failed.
    pub fn drain(&mut self) -> io::Result<u64> {
        let mut buf = vec![0u8; DRAIN_BUF];
        let mut drained = 0u64;
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(drained),
                Ok(n) => drained += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for DigestReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if amt == 0 {
            return;
        }
        // The bytes being consumed are the front of the buffer `fill_buf` just returned;
        // asking again does no I/O while they are still buffered.
        if let Ok(buf) = self.inner.fill_buf() {
            let amt = amt.min(buf.len());
            self.digester.update(&buf[..amt]);
            self.count += amt as u64;
        }
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_covers_every_byte_read() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = DigestReader::new(&data[..]);
        let mut head = [0u8; 10];
        r.read_exact(&mut head).unwrap();
        assert_eq!(r.count(), 10);
        assert_eq!(r.drain().unwrap(), data.len() as u64 - 10);
        let (digest, len) = r.finish();
        assert_eq!(digest, Digest::of(&data));
        assert_eq!(len, data.len() as u64);
    }

    #[test]
    fn empty_stream_digests_to_the_empty_digest() {
        let mut r = DigestReader::new(io::empty());
        assert_eq!(r.drain().unwrap(), 0);
        assert_eq!(r.finish(), (Digest::of(b""), 0));
    }

    #[test]
    fn buffered_consumption_is_digested() {
        let data = b"hello, layer".repeat(1000);
        let mut r = DigestReader::new(io::BufReader::with_capacity(7, &data[..]));
        let mut line = Vec::new();
        r.read_until(b',', &mut line).unwrap();
        assert_eq!(line, b"hello,");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        let (digest, len) = r.finish();
        assert_eq!(len, data.len() as u64);
        assert_eq!(digest, Digest::of(&data));
    }

    #[test]
    fn sits_under_a_decompressor() {
        let payload = b"tar bytes".repeat(500);
        let blob = zstd::encode_all(&payload[..], 1).unwrap();
        let mut compressed = DigestReader::new(io::BufReader::new(&blob[..]));
        let (_, r) = crate::layer::decompress(&mut compressed).unwrap();
        let mut plain = DigestReader::new(r);
        plain.drain().unwrap();
        assert_eq!(plain.finish(), (Digest::of(&payload), payload.len() as u64));
        assert_eq!(compressed.finish(), (Digest::of(&blob), blob.len() as u64));
    }
}
