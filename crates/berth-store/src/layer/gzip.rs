//! Gzip on every core, for pushing layers that are stored uncompressed.
//!
//! A single deflate stream runs at one core's speed, which made a push of a loaded
//! image compression-bound. Here the input is cut into fixed blocks, each compressed
//! on its own (a fresh compressor, so no block refers back into another) and ended with
//! a full flush, which byte-aligns it and leaves the stream open; the blocks are written
//! in order, then an empty final block, the CRC-32 and the length. The result is one
//! ordinary gzip member any reader takes, as pigz makes them. Block size and level are
//! fixed, so the same input always gives the same bytes (and the same digest when it
//! is pushed again). Blocks that do not compress are stored instead of deflated.

use std::io::{self, Read, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Uncompressed bytes per block: large enough that the lost history across block
/// edges costs little ratio, small enough to keep every core busy on one layer.
const BLOCK: usize = 1 << 20;

/// The gzip header: magic, deflate, no flags, no mtime, "fastest" extra flags, OS
/// unknown, so the bytes depend on the input alone.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

/// How much of a block is tried first to see whether it compresses at all.
const SAMPLE: usize = 64 << 10;

/// Whether `block` looks incompressible: its first [`SAMPLE`] bytes do not shrink by
/// 3% at level 1. Such blocks (already compressed files, random data) are stored
/// rather than deflated: deflate would spend a core's time to gain nothing. The
/// decision depends on the bytes alone, so the output stays deterministic.
fn incompressible(block: &[u8]) -> io::Result<bool> {
    let sample = &block[..block.len().min(SAMPLE)];
    if sample.len() < 4096 {
        return Ok(false);
    }
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(sample.len() + 1024);
    c.compress_vec(sample, &mut out, FlushCompress::Finish)
        .map_err(io::Error::other)?;
    Ok(c.total_in() as usize == sample.len() && out.len() * 100 >= sample.len() * 97)
}

/// Deflates one block at level 1 (stored, when it does not compress), ending with a
/// full flush (`last`: with the final block bit instead).
fn deflate_block(input: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let level = if incompressible(input)? {
        Compression::none()
    } else {
        Compression::fast()
    };
    let mut c = Compress::new(level, false);
    let mut out = Vec::with_capacity(input.len() + input.len() / 64 + 64);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Full
    };
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let done_input = c.total_in() as usize == input.len();
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => return Ok(out),
            // A full flush is complete once all input is in and the output had room.
            _ if !last && done_input && room_left => return Ok(out),
            _ => out.reserve(out.capacity().max(4096)),
        }
    }
}

/// Reads up to `BLOCK` bytes (less only at the end of the input).
fn read_block(src: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut chunk = src.take(BLOCK as u64);
    chunk.read_to_end(buf)?;
    Ok(())
}

/// Gzips all of `src` into `dst` using up to `threads` threads. Returns the number of
/// uncompressed bytes.
///
/// # Errors
/// Reading, writing, or the compressor failing.
pub fn gzip_parallel(mut src: impl Read, mut dst: impl Write, threads: usize) -> io::Result<u64> {
    let threads = threads.max(1);
    dst.write_all(&HEADER)?;
    let mut crc = Crc::new();
    let mut total: u64 = 0;
    let mut batch: Vec<Vec<u8>> = (0..threads).map(|_| Vec::new()).collect();
    loop {
        let mut filled = 0;
        for buf in batch.iter_mut() {
            read_block(&mut src, buf)?;
            if buf.is_empty() {
                break;
            }
            filled += 1;
            if buf.len() < BLOCK {
                break;
            }
        }
        if filled == 0 {
            break;
        }
        let blocks = &batch[..filled];
        let compressed: Vec<io::Result<Vec<u8>>> = std::thread::scope(|scope| {
            let tasks: Vec<_> = blocks
                .iter()
                .map(|b| scope.spawn(move || deflate_block(b, false)))
                .collect();
            // The checksum runs here while the blocks compress.
            for b in blocks {
                crc.update(b);
                total += b.len() as u64;
            }
            tasks
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|_| Err(io::Error::other("compressor thread panicked")))
                })
                .collect()
        });
        for c in compressed {
            dst.write_all(&c?)?;
        }
        if blocks.last().is_some_and(|b| b.len() < BLOCK) {
            break;
        }
    }
    dst.write_all(&deflate_block(&[], true)?)?;
    dst.write_all(&crc.sum().to_le_bytes())?;
    // ISIZE: the length modulo 2^32.
    dst.write_all(&(total as u32).to_le_bytes())?;
    dst.flush()?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // One member: MultiGzDecoder would hide a second one.
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn output_is_one_gzip_member_that_decodes_to_the_input() {
        // Compressible and incompressible parts, across several blocks and a partial one.
        let mut input: Vec<u8> = (0..BLOCK * 2).map(|i| (i % 251) as u8).collect();
        let mut x: u32 = 12345;
        input.extend((0..BLOCK + 777).map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        }));
        for threads in [1, 2, 4] {
            let mut out = Vec::new();
            let n = gzip_parallel(&input[..], &mut out, threads).unwrap();
            assert_eq!(n, input.len() as u64);
            assert_eq!(gunzip(&out), input, "{threads} threads");
        }
    }

    #[test]
    fn the_same_input_gives_the_same_bytes_whatever_the_threads() {
        let input: Vec<u8> = (0..BLOCK * 3 / 2).map(|i| (i * 7 % 256) as u8).collect();
        let mut a = Vec::new();
        let mut b = Vec::new();
        gzip_parallel(&input[..], &mut a, 1).unwrap();
        gzip_parallel(&input[..], &mut b, 3).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn incompressible_blocks_are_stored_and_compressible_ones_shrink() {
        let mut x: u32 = 7;
        let random: Vec<u8> = (0..BLOCK)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        assert!(incompressible(&random).unwrap());
        let stored = deflate_block(&random, false).unwrap();
        // Stored blocks: the data plus a few bytes of framing per 64 KiB.
        assert!(stored.len() >= random.len() && stored.len() < random.len() + 1024);
        let text = vec![b'a'; BLOCK];
        assert!(!incompressible(&text).unwrap());
        assert!(deflate_block(&text, false).unwrap().len() < BLOCK / 100);
    }

    #[test]
    fn empty_and_exact_block_inputs_are_valid() {
        for len in [0, BLOCK] {
            let input = vec![7u8; len];
            let mut out = Vec::new();
            gzip_parallel(&input[..], &mut out, 2).unwrap();
            assert_eq!(gunzip(&out), input);
        }
    }
}
