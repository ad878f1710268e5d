//! Text forms the Compose Specification accepts for single values: Go-style
//! durations, byte sizes, shell-split command strings, and the short syntax
//! of ports and volumes.

use std::path::Path;

use crate::model::{Port, ServiceVolume};

/// A duration such as `1m30s`, `1.5s`, `100ms` (a bare number is seconds),
/// in nanoseconds.
///
/// # Errors
/// A message naming the text when it is not a duration.
pub fn duration_nanos(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {text:?}");
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return Ok((secs * 1e9) as i64);
    }
    let mut total = 0f64;
    let mut rest = t;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(total as i64)
}

/// A byte size such as `512m`, `1g`, `1024k`, `100b` or a plain number
/// (binary multiples, as docker's `units.RAMInBytes`).
///
/// # Errors
/// A message naming the text when it is not a size.
pub fn size_bytes(text: &str) -> Result<i64, String> {
    let t = text.trim().to_ascii_lowercase();
    let bad = || format!("invalid size {text:?}");
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let value: f64 = t[..num_len].parse().map_err(|_| bad())?;
    let scale: f64 = match t[num_len..].trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => return Err(bad()),
    };
    Ok((value * scale) as i64)
}

/// Splits a command string into words as a POSIX shell would (quotes and
/// backslashes; no expansion), as Compose does for `command: "a 'b c'"`.
///
/// # Errors
/// A message for an unterminated quote.
pub fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated quote in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unterminated quote in {text:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated quote in {text:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn port_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid port {text:?}");
    match text.split_once('-') {
        Some((a, b)) => {
            let a: u16 = a.parse().map_err(|_| bad())?;
            let b: u16 = b.parse().map_err(|_| bad())?;
            if b < a {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => {
            let p = text.parse().map_err(|_| bad())?;
            Ok((p, p))
        }
    }
}

/// The short port syntax `[[ip:][host[-range]]:]container[-range][/proto]`.
///
/// # Errors
/// A message naming the text for a malformed spec or mismatched ranges.
pub fn short_port(text: &str) -> Result<Vec<Port>, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((s, p)) => (s, p.to_string()),
        None => (text, "tcp".to_string()),
    };
    let (host_ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, r) = r
            .split_once("]:")
            .ok_or_else(|| format!("invalid port {text:?}"))?;
        (Some(ip.to_string()), r)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec),
            3 => (
                Some(parts[0].to_string()).filter(|s| !s.is_empty()),
                &spec[parts[0].len() + 1..],
            ),
            _ => return Err(format!("invalid port {text:?}")),
        }
    };
    let (host, container) = match rest.rsplit_once(':') {
        Some((h, c)) => (Some(h).filter(|h| !h.is_empty()), c),
        None => (None, rest),
    };
    let (c0, c1) = port_range(container)?;
    let mut out = Vec::new();
    match host {
        None => {
            for p in c0..=c1 {
                out.push(Port {
                    target: p,
                    published: None,
                    host_ip: host_ip.clone(),
                    protocol: protocol.clone(),
                });
            }
        }
        Some(h) => {
            let (h0, h1) = port_range(h)?;
            if c0 == c1 {
                // One container port and a host range: the engine picks one.
                out.push(Port {
                    target: c0,
                    published: Some(h.to_string()),
                    host_ip: host_ip.clone(),
                    protocol: protocol.clone(),
                });
            } else if h1 - h0 == c1 - c0 {
                for i in 0..=(c1 - c0) {
                    out.push(Port {
                        target: c0 + i,
                        published: Some((h0 + i).to_string()),
                        host_ip: host_ip.clone(),
                        protocol: protocol.clone(),
                    });
                }
            } else {
                return Err(format!(
                    "invalid port {text:?}: host and container port ranges differ in size"
                ));
            }
        }
    }
    Ok(out)
}

/// Whether a volume source names a host path rather than a named volume.
pub fn is_path(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

/// Makes a host path absolute: `~` against `home`, relative against `base`.
pub fn absolute(path: &str, base: &Path, home: Option<&str>) -> String {
    if let Some(rest) = path.strip_prefix('~')
        && let Some(home) = home
    {
        return format!("{}{}", home.trim_end_matches('/'), rest);
    }
    let p = Path::new(path);
    if p.is_absolute() {
        return path.to_string();
    }
    let mut out = base.to_path_buf();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.to_string_lossy().into_owned()
}

/// The short volume syntax `[source:]target[:mode]` (sources already absolute).
///
/// # Errors
/// A message naming the text when it is empty or has too many parts.
pub fn short_volume(text: &str) -> Result<ServiceVolume, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [s, t] => (Some(*s), *t, ""),
        [s, t, m] => (Some(*s), *t, *m),
        _ => return Err(format!("invalid volume specification: {text:?}")),
    };
    if target.is_empty() {
        return Err(format!("invalid volume specification: {text:?}"));
    }
    let kind = match source {
        None => "volume",
        Some(s) if is_path(s) => "bind",
        Some(_) => "volume",
    };
    Ok(ServiceVolume {
        kind: kind.to_string(),
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only: mode.split(',').any(|m| m == "ro"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go() {
        assert_eq!(duration_nanos("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_nanos("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(duration_nanos("100ms").unwrap(), 100_000_000);
        assert_eq!(duration_nanos("10").unwrap(), 10_000_000_000);
        assert!(duration_nanos("10 parsecs").is_err());
        assert!(duration_nanos("").is_err());
    }

    #[test]
    fn sizes_use_binary_multiples() {
        assert_eq!(size_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(size_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(size_bytes("100").unwrap(), 100);
        assert!(size_bytes("lots").is_err());
    }

    #[test]
    fn commands_split_like_a_shell() {
        assert_eq!(
            shell_split(r#"sh -c 'echo "hi there"' x\ y "a\"b""#).unwrap(),
            ["sh", "-c", "echo \"hi there\"", "x y", "a\"b"]
        );
        assert!(shell_split("echo 'open").is_err());
        assert_eq!(shell_split("a ''").unwrap(), ["a", ""]);
    }

    #[test]
    fn short_ports_expand_to_long_syntax() {
        let p = short_port("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(
            p,
            [Port {
                target: 80,
                published: Some("8080".into()),
                host_ip: Some("127.0.0.1".into()),
                protocol: "udp".into()
            }]
        );
        let p = short_port("8000-8001:80-81").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].published.as_deref(), Some("8001"));
        assert_eq!(p[1].target, 81);
        assert_eq!(short_port("3000").unwrap()[0].published, None);
        assert_eq!(short_port("::80").unwrap()[0].published, None);
        assert!(short_port("8000-8002:80-81").is_err());
        assert!(short_port("http").is_err());
    }

    #[test]
    fn short_volumes_tell_binds_from_named_volumes() {
        let v = short_volume("/srv/data:/data:ro").unwrap();
        assert_eq!((v.kind.as_str(), v.read_only), ("bind", true));
        let v = short_volume("db:/var/lib/db").unwrap();
        assert_eq!(v.kind, "volume");
        assert_eq!(short_volume("/scratch").unwrap().source, None);
    }

    #[test]
    fn relative_paths_resolve_against_the_base() {
        let base = Path::new("/proj/app");
        assert_eq!(absolute("./data", base, None), "/proj/app/data");
        assert_eq!(absolute("../x", base, None), "/proj/x");
        assert_eq!(absolute("~/y", base, Some("/root")), "/root/y");
        assert_eq!(absolute("/abs", base, None), "/abs");
    }
}
