//! Docker's json-file log, written byte for byte as dockerd writes it.
//!
//! One JSON object per line: `{"log":"hello\n","stream":"stdout","time":"…Z"}`.
//! - The container's output is cut into lines; a line keeps its `\n` in `log`. A line
//!   longer than 16 KiB, or the rest of a stream at EOF, is written as a partial entry
//!   without `\n`, as Docker's copier does with its 16 KiB buffer.
//! - Strings are escaped as moby's `jsonlog` escapes them (Go's encoding/json rules:
//!   `<`, `>`, `&` and control characters as `\u00XX`, invalid UTF-8 as `\ufffd`,
//!   U+2028/U+2029 escaped).
//! - `time` is the moment the bytes were read, in Go's RFC 3339 with nanoseconds, UTC,
//!   trailing zeros of the fraction trimmed.
//! - Rotation follows moby's `loggerutils.LogFile`: before an entry is written, when the
//!   file already holds `max_size` bytes, `path.N-1` is dropped, `path.i` becomes
//!   `path.i+1`, `path` becomes `path.1` (with `max_files` ≥ 2; with one file it is
//!   replaced), and a new `path` is started.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use berth_shim_protocol::LogSpec;

/// Docker's copier buffer: a line longer than this is logged in partial pieces.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// Nanoseconds since the epoch, from the realtime clock.
pub(crate) fn now_nanos() -> i128 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_nanos() as i128
}

/// Go's `time.RFC3339Nano` of a UTC instant: `2024-05-01T12:00:00.1234Z`.
pub(crate) fn rfc3339_nano(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Appends `s` as a JSON string, escaped as moby's `ffjsonWriteJSONBytesAsString`.
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' | '"' => {
                    out.push(b'\\');
                    out.push(c as u8);
                }
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
                '\u{2028}' | '\u{2029}' => {
                    out.extend_from_slice(b"\\u202");
                    out.push(HEX[(c as u32 & 0xf) as usize]);
                }
                _ => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        // Go decodes an invalid sequence one byte at a time, each becoming U+FFFD.
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// One stream's name in the log.
fn stream_name(stream: u8) -> &'static [u8] {
    if stream == 2 { b"stderr" } else { b"stdout" }
}

/// The json-file writer for one container.
pub(crate) struct JsonLog {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
    /// Unfinished line per stream (index 0 stdout, 1 stderr).
    partial: [Vec<u8>; 2],
    /// Entries built but not yet written.
    pending: Vec<u8>,
}

/// Why the log cannot be written.
#[derive(Debug)]
pub(crate) struct LogError {
    /// The log file.
    pub(crate) path: PathBuf,
    /// Why.
    pub(crate) source: std::io::Error,
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "log {}: {}", self.path.display(), self.source)
    }
}

fn open_log(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).mode(0o640);
    if truncate {
        o.truncate(true);
    } else {
        o.append(true);
    }
    o.open(path)
}

impl JsonLog {
    /// Opens (appending to) the log `spec` names; an empty path means no log.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub(crate) fn open(spec: &LogSpec) -> Result<Self, LogError> {
        let file = if spec.path.as_os_str().is_empty() {
            None
        } else {
            Some(open_log(&spec.path, false).map_err(|source| LogError {
                path: spec.path.clone(),
                source,
            })?)
        };
        let size = match &file {
            Some(f) => f.metadata().map(|m| m.len()).unwrap_or(0),
            None => 0,
        };
        Ok(JsonLog {
            path: spec.path.clone(),
            file,
            size,
            max_size: spec.max_size.filter(|m| *m > 0),
            max_files: spec.max_files.max(1),
            partial: [Vec::new(), Vec::new()],
            pending: Vec::new(),
        })
    }

    /// Logs bytes the container wrote on `stream` (1 stdout, 2 stderr) at `nanos`.
    /// Complete lines are written at once; a trailing partial line waits for its end.
    ///
    /// # Errors
    /// Writing or rotating failed (the bytes are dropped; the container is not held up).
    pub(crate) fn write(&mut self, stream: u8, data: &[u8], nanos: i128) -> Result<(), LogError> {
        if self.file.is_none() {
            return Ok(());
        }
        let idx = usize::from(stream == 2);
        let mut rest = data;
        while !rest.is_empty() {
            let (piece, complete) = match rest.iter().position(|b| *b == b'\n') {
                Some(pos) => (&rest[..=pos], true),
                None => (rest, false),
            };
            rest = &rest[piece.len()..];
            self.partial[idx].extend_from_slice(piece);
            // Full 16 KiB pieces of a longer line go out as partial entries.
            loop {
                let content = self.partial[idx].len() - usize::from(complete);
                if content > MAX_LINE || (!complete && content == MAX_LINE) {
                    let tail = self.partial[idx].split_off(MAX_LINE);
                    let head = std::mem::replace(&mut self.partial[idx], tail);
                    self.entry(stream, &head, nanos)?;
                } else {
                    break;
                }
            }
            if complete {
                let line = std::mem::take(&mut self.partial[idx]);
                self.entry(stream, &line, nanos)?;
            }
        }
        self.flush()
    }

    /// Writes what is left of unfinished lines (at EOF of `stream`), as partial entries.
    ///
    /// # Errors
    /// As [`JsonLog::write`].
    pub(crate) fn finish_stream(&mut self, stream: u8, nanos: i128) -> Result<(), LogError> {
        let idx = usize::from(stream == 2);
        let rest = std::mem::take(&mut self.partial[idx]);
        if !rest.is_empty() && self.file.is_some() {
            self.entry(stream, &rest, nanos)?;
        }
        self.flush()
    }

    fn entry(&mut self, stream: u8, line: &[u8], nanos: i128) -> Result<(), LogError> {
        if let Some(max) = self.max_size {
            if self.size + self.pending.len() as u64 >= max {
                self.flush()?;
                self.rotate()?;
            }
        }
        let out = &mut self.pending;
        out.extend_from_slice(b"{\"log\":");
        escape_into(out, line);
        out.extend_from_slice(b",\"stream\":\"");
        out.extend_from_slice(stream_name(stream));
        out.extend_from_slice(b"\",\"time\":\"");
        out.extend_from_slice(rfc3339_nano(nanos).as_bytes());
        out.extend_from_slice(b"\"}\n");
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = match &mut self.file {
            Some(f) => f.write_all(&self.pending),
            None => Ok(()),
        };
        self.size += self.pending.len() as u64;
        self.pending.clear();
        if self.pending.capacity() > 64 * 1024 {
            self.pending.shrink_to(64 * 1024);
        }
        result.map_err(|source| LogError {
            path: self.path.clone(),
            source,
        })
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let err = |source| LogError {
            path: self.path.clone(),
            source,
        };
        self.file = None;
        let name = self.path.as_os_str().to_string_lossy().into_owned();
        if self.max_files >= 2 {
            let ignore_missing = |r: std::io::Result<()>| match r {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
            ignore_missing(std::fs::remove_file(format!(
                "{name}.{}",
                self.max_files - 1
            )))
            .map_err(err)?;
            for i in (2..self.max_files).rev() {
                ignore_missing(std::fs::rename(
                    format!("{name}.{}", i - 1),
                    format!("{name}.{i}"),
                ))
                .map_err(err)?;
            }
            ignore_missing(std::fs::rename(&self.path, format!("{name}.1"))).map_err(err)?;
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
        self.file = Some(open_log(&self.path, true).map_err(err)?);
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> String {
        let mut out = Vec::new();
        escape_into(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaping_matches_gos_encoding_json() {
        assert_eq!(esc(b"hi \"x\"\\\n"), r#""hi \"x\"\\\n""#);
        assert_eq!(esc(b"<a&b>\t\r"), r#""\u003ca\u0026b\u003e\u0009\r""#);
        assert_eq!(esc("é\u{2028}".as_bytes()), "\"é\\u2028\"");
        assert_eq!(esc(b"a\xffb\xe2\x82"), r#""a\ufffdb\ufffd\ufffd""#);
    }

    #[test]
    fn times_are_rfc3339_nano_with_trimmed_fraction() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_714_564_800_123_450_000),
            "2024-05-01T12:00:00.12345Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }

    fn spec(dir: &Path, max_size: Option<u64>, max_files: u32) -> LogSpec {
        LogSpec {
            path: dir.join("c-json.log"),
            max_size,
            max_files,
        }
    }

    #[test]
    fn lines_are_logged_with_their_newline_and_partials_at_eof() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = JsonLog::open(&spec(dir.path(), None, 1)).unwrap();
        log.write(1, b"hello\nwor", 0).unwrap();
        log.write(2, b"oops\n", 0).unwrap();
        log.write(1, b"ld\nend", 0).unwrap();
        log.finish_stream(1, 0).unwrap();
        let text = std::fs::read_to_string(dir.path().join("c-json.log")).unwrap();
        assert_eq!(
            text,
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"1970-01-01T00:00:00Z\"}\n\
             {\"log\":\"oops\\n\",\"stream\":\"stderr\",\"time\":\"1970-01-01T00:00:00Z\"}\n\
             {\"log\":\"world\\n\",\"stream\":\"stdout\",\"time\":\"1970-01-01T00:00:00Z\"}\n\
             {\"log\":\"end\",\"stream\":\"stdout\",\"time\":\"1970-01-01T00:00:00Z\"}\n"
        );
    }

    #[test]
    fn long_lines_are_cut_into_16k_partial_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = JsonLog::open(&spec(dir.path(), None, 1)).unwrap();
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.push(b'\n');
        log.write(1, &data, 0).unwrap();
        let text = std::fs::read_to_string(dir.path().join("c-json.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(!lines[0].contains("\\n"));
        assert!(lines[1].starts_with("{\"log\":\"xxxxxxxxxx\\n\""));
    }

    #[test]
    fn rotation_keeps_max_files_minus_one_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = JsonLog::open(&spec(dir.path(), Some(100), 3)).unwrap();
        for i in 0..10 {
            log.write(
                1,
                format!("line {i} ........................................\n").as_bytes(),
                0,
            )
            .unwrap();
        }
        let base = dir.path().join("c-json.log");
        assert!(base.exists());
        assert!(dir.path().join("c-json.log.1").exists());
        assert!(dir.path().join("c-json.log.2").exists());
        assert!(!dir.path().join("c-json.log.3").exists());
        let last = std::fs::read_to_string(&base).unwrap();
        assert!(last.contains("line 9"));
        let older = std::fs::read_to_string(dir.path().join("c-json.log.1")).unwrap();
        assert!(older.contains("line 8"));
    }

    #[test]
    fn one_file_rotation_replaces_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = JsonLog::open(&spec(dir.path(), Some(10), 1)).unwrap();
        log.write(1, b"first line\nsecond line\n", 0).unwrap();
        let text = std::fs::read_to_string(dir.path().join("c-json.log")).unwrap();
        assert!(!text.contains("first"));
        assert!(text.contains("second"));
        assert!(!dir.path().join("c-json.log.1").exists());
    }
}
