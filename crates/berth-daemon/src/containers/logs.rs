//! Reading the json-file log the shim writes (`docker logs`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One log line as stored.
#[derive(Debug, Clone, Deserialize)]
pub struct LogLine {
    /// The bytes, newline included.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When the shim read it.
    pub time: DateTime<Utc>,
}

/// What `docker logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Only lines at or after this time (Docker's bound is inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Only lines at or before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only the last N lines (of those selected).
    pub tail: Option<usize>,
}

/// What `docker logs --details` puts before each line: the attributes the json-file
/// driver records with every line (`--log-opt labels=…`, `env=…`, `tag=…`), sorted
/// by key, query-escaped and joined with commas, then a space (a bare space when there
/// are none, as Docker prints).
pub fn detail_prefix(record: &super::ContainerRecord) -> String {
    let opts = &record.host_config.log_config.config;
    let mut attrs = std::collections::BTreeMap::new();
    let listed = |key: &str| -> Vec<String> {
        opts.get(key)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let labels = record.config.labels.clone().unwrap_or_default();
    for key in listed("labels") {
        if let Some(v) = labels.get(&key) {
            attrs.insert(key, v.clone());
        }
    }
    let env = record.config.env.clone().unwrap_or_default();
    for key in listed("env") {
        if let Some(v) = env.iter().find_map(|e| e.strip_prefix(&format!("{key}="))) {
            attrs.insert(key, v.to_string());
        }
    }
    if let Some(tag) = opts.get("tag").filter(|t| !t.is_empty()) {
        // The placeholders of Docker's log tag template that name the container.
        let tag = tag
            .replace("{{.FullID}}", &record.id)
            .replace("{{.ID}}", &record.id[..12.min(record.id.len())])
            .replace("{{.Name}}", record.name.trim_start_matches('/'))
            .replace("{{.ImageName}}", &record.config.image)
            .replace("{{.DaemonName}}", "docker");
        attrs.insert("tag".to_string(), tag);
    }
    let mut out = attrs
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join(",");
    out.push(' ');
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The log files of a container, oldest first (rotated `path.N` … `path.1`, then `path`).
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for n in (1..100).rev() {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
        if p.exists() {
            out.push(p);
        }
    }
    out.push(path.to_path_buf());
    out
}

impl LogOptions {
    /// Whether a line passes the stream and time selection.
    pub fn wants(&self, line: &LogLine) -> bool {
        let stream_ok =
            (self.stdout && line.stream == "stdout") || (self.stderr && line.stream == "stderr");
        stream_ok
            && self.since.is_none_or(|s| line.time >= s)
            && self.until.is_none_or(|u| line.time <= u)
    }
}

/// Reads every selected line currently in the log files; returns them and the read
/// offset into the newest file (to follow from).
pub fn read(path: &Path, opts: &LogOptions) -> (Vec<LogLine>, u64) {
    let mut lines = Vec::new();
    let mut offset = 0;
    for f in files(path) {
        let Ok(file) = std::fs::File::open(&f) else {
            continue;
        };
        let mut reader = BufReader::new(file);
        let mut buf = String::new();
        let mut pos = 0u64;
        loop {
            buf.clear();
            match reader.read_line(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !buf.ends_with('\n') {
                        // A line the shim is still writing: stop before it.
                        break;
                    }
                    pos += n as u64;
                    if let Ok(line) = serde_json::from_str::<LogLine>(&buf)
                        && opts.wants(&line)
                    {
                        lines.push(line);
                    }
                }
            }
        }
        if f == path {
            offset = pos;
        }
    }
    if let Some(t) = opts.tail {
        let skip = lines.len().saturating_sub(t);
        lines.drain(..skip);
    }
    (lines, offset)
}

/// Reads complete lines appended to `path` after `offset`; returns them and the new offset.
pub fn read_from(path: &Path, offset: u64, opts: &LogOptions) -> (Vec<LogLine>, u64) {
    use std::io::{Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return (Vec::new(), offset);
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // Rotated under us: start over on the new file.
    let start = if len < offset { 0 } else { offset };
    if file.seek(SeekFrom::Start(start)).is_err() {
        return (Vec::new(), offset);
    }
    let mut reader = BufReader::new(file);
    let mut lines = Vec::new();
    let mut pos = start;
    let mut buf = String::new();
    loop {
        buf.clear();
        match reader.read_line(&mut buf) {
            Ok(n) if n > 0 && buf.ends_with('\n') => {
                pos += n as u64;
                if let Ok(line) = serde_json::from_str::<LogLine>(&buf)
                    && opts.wants(&line)
                {
                    lines.push(line);
                }
            }
            _ => break,
        }
    }
    (lines, pos)
}
