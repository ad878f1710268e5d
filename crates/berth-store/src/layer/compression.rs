//! Recognizing and undoing a layer blob's compression.
//!
//! Media types say how a layer is compressed, but `docker load` archives, `docker import`
//! and some registries mislabel blobs, so (as Docker does) we trust the magic bytes
//! rather than the label.

use std::io::{self, BufRead, Read};

/// How a layer stream is compressed, as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (`application/vnd.oci.image.layer.v1.tar+gzip`, Docker's default).
    Gzip,
    /// zstd (`application/vnd.oci.image.layer.v1.tar+zstd`).
    Zstd,
    /// bzip2: recognized so the error can name it; Docker reads it, berth does not.
    Bzip2,
    /// xz: recognized so the error can name it; Docker reads it, berth does not.
    Xz,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// The longest magic number [`Compression::detect`] looks at.
const MAGIC_LEN: usize = 6;

impl Compression {
    /// Recognizes the compression from the first bytes of a stream (up to 6 bytes are
    /// looked at; fewer is fine). Anything unrecognized is [`Compression::None`]: the tar
    /// reader then reports whether it really is a tarball.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.starts_with(BZIP2_MAGIC) {
            Compression::Bzip2
        } else if head.starts_with(XZ_MAGIC) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    /// The name Docker uses for this compression (`docker save`, `Content-Type` hints).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }
}

/// Peeks at the magic bytes of `r` and returns the matching decompressing reader:
/// `flate2`'s `MultiGzDecoder` (a gzip member boundary is not the end of a layer) or a
/// multi-frame zstd decoder. A plain stream is passed through unchanged.
///
/// The peeked bytes are read, not merely looked at, so this works whatever buffer size
/// `r` has: they are put back in front of the stream before decoding.
///
/// # Errors
/// Reading the first bytes failed; the stream is bzip2 or xz
/// ([`io::ErrorKind::Unsupported`]); the zstd decoder could not be set up.
pub fn decompress<'a, R: BufRead + Send + 'a>(
    mut r: R,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let mut head = [0u8; MAGIC_LEN];
    let mut filled = 0;
    while filled < MAGIC_LEN {
        match r.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = Compression::detect(&head[..filled]);
    let stream = io::Cursor::new(head).take(filled as u64).chain(r);
    let reader: Box<dyn Read + Send + 'a> = match compression {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(stream)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(stream)?),
        Compression::Bzip2 | Compression::Xz => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{} compressed layers are not supported", compression.name()),
            ));
        }
    };
    Ok((compression, reader))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_each_magic() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(
            Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Compression::Xz
        );
        assert_eq!(Compression::detect(b"etc/passwd\0"), Compression::None);
        assert_eq!(Compression::detect(&[0x1f]), Compression::None);
        assert_eq!(Compression::detect(&[]), Compression::None);
    }

    fn read_all(r: &mut dyn Read) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn plain_stream_passes_through_whole() {
        let data = b"not compressed at all".to_vec();
        let (c, mut r) = decompress(&data[..]).unwrap();
        assert_eq!(c, Compression::None);
        assert_eq!(read_all(&mut r), data);
    }

    #[test]
    fn stream_shorter_than_magic_passes_through() {
        let (c, mut r) = decompress(&b"ab"[..]).unwrap();
        assert_eq!(c, Compression::None);
        assert_eq!(read_all(&mut r), b"ab");
        let (c, mut r) = decompress(&b""[..]).unwrap();
        assert_eq!(c, Compression::None);
        assert!(read_all(&mut r).is_empty());
    }

    #[test]
    fn gzip_with_several_members_decodes_fully() {
        let mut blob = Vec::new();
        for part in [&b"first "[..], &b"second"[..]] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(part).unwrap();
            blob.extend(enc.finish().unwrap());
        }
        // A one-byte buffer makes sure the magic is found even when `fill_buf` is short.
        let (c, mut r) = decompress(io::BufReader::with_capacity(1, &blob[..])).unwrap();
        assert_eq!(c, Compression::Gzip);
        assert_eq!(read_all(&mut r), b"first second");
    }

    #[test]
    fn zstd_round_trips() {
        let blob = zstd::encode_all(&b"layer bytes"[..], 3).unwrap();
        let (c, mut r) = decompress(&blob[..]).unwrap();
        assert_eq!(c, Compression::Zstd);
        assert_eq!(read_all(&mut r), b"layer bytes");
    }

    #[test]
    fn xz_is_refused_by_name() {
        let err = decompress(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2][..])
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(err.to_string().contains("xz"));
    }
}
