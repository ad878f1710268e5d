//! Crash-safe file writes: write a temp file beside the target, fsync it, rename it
//! over the target, fsync the directory. A reader sees the old file or the new one,
//! never a torn one, also after a power cut.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

/// Replaces `path` with `data` atomically and durably.
///
/// # Errors
/// Any I/O error from creating, writing, syncing or renaming; the temp file is removed.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs a directory so that renames and unlinks inside it are durable.
///
/// # Errors
/// Opening or syncing the directory.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes every dirty page of the filesystem holding `path` (syncfs(2)); one call makes
/// a whole unpacked layer durable, instead of an fsync per file.
///
/// # Errors
/// Opening `path` or the syscall.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    rustix::fs::syncfs(&f)?;
    Ok(())
}

/// Bytes of a file written between two [`start_writeback`] calls by the writers that
/// stream big files (pulled blobs, unpacked layer files).
pub const WRITEBACK_WINDOW: u64 = 8 << 20;

/// Starts writeback of `len` bytes of `file` from `offset` without waiting for it
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), keeping the pages cached.
///
/// Why: with a lot of RAM the kernel keeps a whole pull's data dirty until the
/// fsync/syncfs that makes a layer durable, so the disk idles while the CPU unpacks and
/// the CPU then idles while the disk writes. Starting writeback as data streams overlaps
/// the two; the final sync then waits only for what is still in flight. Failure is
/// harmless (the final sync writes the pages anyway), so it is not reported.
pub fn start_writeback(file: BorrowedFd<'_>, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; `file` is a valid,
    // open descriptor borrowed for the duration of the call.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Removes temporaries in `dir` whose names start with `prefix` (leftovers of a crash).
pub(crate) fn remove_temporaries(dir: &Path, prefix: &str) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
