//! Parsers for the values of `create`/`run` flags, with docker's semantics
//! and docker's error texts.
//!
//! Each function here mirrors one Go function of the docker CLI or of the
//! libraries it vendors (`opts`, `go-units`, `go-connections/nat`,
//! `internal/volumespec`, Go's `strconv` and `time`), because users compare
//! the two clients' behaviour value by value: `512m` must be 536870912 bytes,
//! `--cpus 1.5` 1500000000 NanoCpus, `-p 127.0.0.1::53/udp` a binding with an
//! empty host port, and a bad value must fail with the same message.
//!
//! Functions used as clap `value_parser`s return `Result<_, String>`: clap
//! hands the message to `cli::flag_error`, which frames it as pflag does
//! ("invalid argument "x" for "-e, --env" flag: ...").

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

// ---------------------------------------------------------------- numbers

/// Go's `strconv.ParseInt(s, 0, bits)` (pflag's int flags): decimal, or
/// with a `0x`/`0o`/`0b`/`0` prefix, `_` separators only with a prefix.
fn go_parse_int(s: &str, bits: u32, func: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.{func}: parsing {s:?}: invalid syntax");
    let range = || format!("strconv.{func}: parsing {s:?}: value out of range");
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    let digits = if radix != 10 {
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(syntax());
    }
    let magnitude = u128::from_str_radix(&digits, radix).map_err(|_| range())?;
    let limit: u128 = 1u128 << (bits - 1);
    let value = if neg {
        if magnitude > limit {
            return Err(range());
        }
        -(magnitude as i128)
    } else {
        if magnitude >= limit {
            return Err(range());
        }
        magnitude as i128
    };
    Ok(value as i64)
}

/// pflag's `Int64` flag.
pub(crate) fn go_i64(s: &str) -> Result<i64, String> {
    go_parse_int(s, 64, "ParseInt")
}

/// pflag's `Int` flag (64-bit Go `int`).
pub(crate) fn go_int(s: &str) -> Result<i64, String> {
    go_parse_int(s, 64, "ParseInt")
}

/// pflag's `Uint16` flag.
pub(crate) fn go_u16(s: &str) -> Result<u16, String> {
    if s.starts_with('-') {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    let v = go_parse_int(s, 64, "ParseUint")?;
    u16::try_from(v).map_err(|_| format!("strconv.ParseUint: parsing {s:?}: value out of range"))
}

/// pflag's `Bool` flag with a value (`--rm=false`): Go's `strconv.ParseBool`.
pub(crate) fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// go-units `RAMInBytes`: "512m" → 536870912 (binary multiples; "b", "k",
/// "kb", "kib" and so on, case-insensitive).
///
/// # Errors
/// go-units' "invalid size: '...'" / "invalid suffix: '...'", or Go's
/// `ParseFloat` error for a bad number.
pub(crate) fn ram_in_bytes(size: &str) -> Result<i64, String> {
    let Some(sep) = size.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{size}'"));
    };
    let (num, sfx) = if size.as_bytes()[sep] == b' ' {
        (&size[..sep], &size[sep + 1..])
    } else {
        (&size[..=sep], &size[sep + 1..])
    };
    let value = go_parse_float(num)?;
    if value < 0.0 {
        return Err(format!("invalid size: '{size}'"));
    }
    if sfx.is_empty() {
        return Ok(value as i64);
    }
    if sfx.len() > 3 {
        return Err(format!("invalid suffix: '{sfx}'"));
    }
    let lower = sfx.to_ascii_lowercase();
    let bad = || Err(format!("invalid suffix: '{lower}'"));
    let bytes = lower.as_bytes();
    if bytes[0] == b'b' {
        return if lower.len() > 1 {
            bad()
        } else {
            Ok(value as i64)
        };
    }
    let mul: i64 = match bytes[0] {
        b'k' => 1 << 10,
        b'm' => 1 << 20,
        b'g' => 1 << 30,
        b't' => 1 << 40,
        b'p' => 1 << 50,
        _ => return bad(),
    };
    if (lower.len() == 2 && bytes[1] != b'b') || (lower.len() == 3 && &lower[1..] != "ib") {
        return bad();
    }
    Ok((value * mul as f64) as i64)
}

/// Go's `strconv.ParseFloat(s, 64)` for the forms users type.
fn go_parse_float(s: &str) -> Result<f64, String> {
    let ok = !s.is_empty()
        && !s.contains(|c: char| c.is_whitespace())
        && !s.starts_with("+-")
        && !s.starts_with("-+");
    match s.parse::<f64>() {
        Ok(v) if ok => Ok(v),
        _ => Err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
    }
}

/// docker's `MemSwapBytes`: as [`ram_in_bytes`], and "-1" for unlimited.
pub(crate) fn mem_swap_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// docker's `opts.ParseCPUs`: a decimal (or `a/b`) number of CPUs as nano-CPUs.
///
/// # Errors
/// "failed to parse X as a rational number", "value is too precise".
pub(crate) fn parse_cpus(value: &str) -> Result<i64, String> {
    let unparsable = || format!("failed to parse {value} as a rational number");
    // A rational a/b, or a decimal with an optional exponent, as big.Rat reads them.
    let (num, den): (i128, i128) = if let Some((a, b)) = value.split_once('/') {
        let a: i128 = a.parse().map_err(|_| unparsable())?;
        let b: i128 = b.parse().map_err(|_| unparsable())?;
        if b == 0 {
            return Err(unparsable());
        }
        (a, b)
    } else {
        decimal_ratio(value).ok_or_else(unparsable)?
    };
    let scaled = num.checked_mul(1_000_000_000).ok_or_else(unparsable)?;
    if scaled % den != 0 {
        return Err("value is too precise".to_string());
    }
    Ok((scaled / den) as i64)
}

/// "1.5e2" → (150, 1); "0.25" → (25, 100).
fn decimal_ratio(s: &str) -> Option<(i128, i128)> {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits: String = format!("{int}{frac}");
    let mut num: i128 = digits.parse().ok()?;
    let mut den: i128 = 10i128.checked_pow(frac.len() as u32)?;
    if exp >= 0 {
        num = num.checked_mul(10i128.checked_pow(exp as u32)?)?;
    } else {
        den = den.checked_mul(10i128.checked_pow((-exp) as u32)?)?;
    }
    Some((if neg { -num } else { num }, den))
}

/// Go's `time.ParseDuration`, in nanoseconds ("1m30s", "1.5h", "300ms").
///
/// # Errors
/// Go's messages: `time: invalid duration "x"`, `time: missing unit in
/// duration "5"`, `time: unknown unit "x" in duration "5x"`.
pub(crate) fn go_duration(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: f64 = match unit {
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return Err(invalid());
    }
    let total = total.round() as i64;
    Ok(if neg { -total } else { total })
}

// ------------------------------------------------------------ validators

/// docker's `opts.ValidateEnv`: a bare name takes its value from our own
/// environment when set there.
pub(crate) fn validate_env(val: &str) -> Result<String, String> {
    let (k, _, has_value) = cut(val, '=');
    if k.is_empty() {
        return Err(format!("invalid environment variable: {val}"));
    }
    if has_value {
        return Ok(val.to_string());
    }
    match std::env::var_os(k) {
        Some(v) => Ok(format!("{k}={}", v.to_string_lossy())),
        None => Ok(val.to_string()),
    }
}

/// docker's `opts.ValidateLabel`.
pub(crate) fn validate_label(value: &str) -> Result<String, String> {
    let (key, _, _) = cut(value, '=');
    let key = key.trim_start_matches([' ', '\t']);
    if key.is_empty() {
        return Err(format!("invalid label '{value}': empty name"));
    }
    if key.contains([' ', '\t']) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(value.to_string())
}

/// docker's `opts.ValidateIPAddress`: the address in Go's canonical form.
pub(crate) fn validate_ip_address(val: &str) -> Result<String, String> {
    match parse_ip(val.trim()) {
        Some(ip) => Ok(ip.to_string()),
        None => Err(format!("IP address is not correctly formatted: {val}")),
    }
}

/// Go's `net.ParseIP` (no brackets, no zones; IPv4-mapped IPv6 prints as IPv4).
fn parse_ip(s: &str) -> Option<std::net::IpAddr> {
    let ip: std::net::IpAddr = s.parse().ok()?;
    Some(match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    })
}

/// docker's `opts.ValidateDNSSearch`.
pub(crate) fn validate_dns_search(val: &str) -> Result<String, String> {
    let val = val.trim_matches(' ');
    if val == "." {
        return Ok(val.to_string());
    }
    let invalid = || format!("{val} is not a valid domain");
    if !val.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(invalid());
    }
    // The domain regexp: labels of [a-zA-Z0-9-] not starting or ending in
    // '-', separated by dots, an optional trailing dot and whitespace.
    let trimmed = val.trim_end_matches(char::is_whitespace);
    let body = trimmed.strip_suffix('.').unwrap_or(trimmed);
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if body.split('.').all(valid_label) && body.len() < 255 {
        Ok(body.to_string())
    } else {
        Err(invalid())
    }
}

/// docker's `opts.ValidateExtraHost`: "host:ip" or "host=ip", sent as "host:ip".
pub(crate) fn validate_extra_host(val: &str) -> Result<String, String> {
    let (mut k, mut v, mut ok) = cut(val, '=');
    if !ok {
        (k, v, ok) = cut(val, ':');
    }
    if !ok || k.is_empty() || k.contains(':') {
        return Err(format!("bad format for add-host: {val:?}"));
    }
    let mut addr = v;
    if v != "host-gateway" {
        if addr.len() > 2 && addr.starts_with('[') && addr.ends_with(']') {
            addr = &addr[1..addr.len() - 1];
        }
        if validate_ip_address(addr).is_err() {
            return Err(format!("invalid IP address in add-host: {addr:?}"));
        }
    }
    Ok(format!("{k}:{addr}"))
}

/// docker's `opts.ValidateSysctl`: namespaced sysctls only.
pub(crate) fn validate_sysctl(val: &str) -> Result<(String, String), String> {
    const ALLOWED: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let (k, v, ok) = cut(val, '=');
    let allowed = ALLOWED.contains(&k) || k.starts_with("net.") || k.starts_with("fs.mqueue.");
    if !ok || k.is_empty() || !allowed {
        return Err(format!("sysctl '{val}' is not allowed"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// docker's `opts.ValidateLink` ("name" or "name:alias").
pub(crate) fn validate_link(val: &str) -> Result<String, String> {
    if val.is_empty() {
        return Err("empty string specified for links".to_string());
    }
    if val.splitn(3, ':').count() > 2 {
        return Err(format!("bad format for links: {val}"));
    }
    Ok(val.to_string())
}

/// docker's `validateAttach`: stdin, stdout or stderr (any case).
pub(crate) fn validate_attach(val: &str) -> Result<String, String> {
    let s = val.to_lowercase();
    if ["stdin", "stdout", "stderr"].contains(&s.as_str()) {
        Ok(s)
    } else {
        Err("valid streams are STDIN, STDOUT and STDERR".to_string())
    }
}

/// docker's `validateDeviceCgroupRule`: `^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`.
pub(crate) fn validate_device_cgroup_rule(val: &str) -> Result<String, String> {
    let invalid = || format!("invalid device cgroup format '{val}'");
    let parts: Vec<&str> = val.split(' ').collect();
    let [kind, numbers, mode] = parts.as_slice() else {
        return Err(invalid());
    };
    let number = |n: &str| n == "*" || (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    let ok = matches!(*kind, "a" | "b" | "c")
        && numbers
            .split_once(':')
            .is_some_and(|(a, b)| number(a) && number(b))
        && (1..=3).contains(&mode.len())
        && mode.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    if ok {
        Ok(val.to_string())
    } else {
        Err(invalid())
    }
}

/// go-units `ParseUlimit`: "nofile=1024[:2048]".
pub(crate) fn parse_ulimit(val: &str) -> Result<Value, String> {
    const NAMES: [&str; 15] = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    let Some((name, limits)) = val.split_once('=') else {
        return Err(format!("invalid ulimit argument: {val}"));
    };
    if !NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parse = |s: &str| -> Result<i64, String> {
        s.parse::<i64>().map_err(|_| {
            let kind = if !s.is_empty()
                && s.trim_start_matches(['-', '+'])
                    .chars()
                    .all(|c| c.is_ascii_digit())
            {
                "value out of range"
            } else {
                "invalid syntax"
            };
            format!("strconv.ParseInt: parsing {s:?}: {kind}")
        })
    };
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => {
            let s = parse(soft)?;
            (s, s)
        }
        [soft, hard] => {
            let h = parse(hard)?;
            (parse(soft)?, h)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ));
        }
    };
    if hard != -1 {
        if soft == -1 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"
            ));
        }
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    Ok(json!({"Name": name, "Hard": hard, "Soft": soft}))
}

/// docker's `ValidateWeightDevice`: "/dev/sda:200".
pub(crate) fn parse_weight_device(val: &str) -> Result<Value, String> {
    let path = device_rate_path(val)?;
    let (_, v, _) = cut(val, ':');
    let invalid = || format!("invalid weight for device: {val}");
    let weight: u16 = v.parse().map_err(|_| invalid())?;
    if weight > 0 && !(10..=1000).contains(&weight) {
        return Err(invalid());
    }
    Ok(json!({"Path": path, "Weight": weight}))
}

/// docker's `ValidateThrottleBpsDevice`: "/dev/sda:1mb".
pub(crate) fn parse_throttle_bps(val: &str) -> Result<Value, String> {
    let path = device_rate_path(val)?;
    let (_, v, _) = cut(val, ':');
    match ram_in_bytes(v) {
        Ok(rate) if rate >= 0 => Ok(json!({"Path": path, "Rate": rate})),
        _ => Err(format!(
            "invalid rate for device: {val}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb"
        )),
    }
}

/// docker's `ValidateThrottleIOpsDevice`: "/dev/sda:1000".
pub(crate) fn parse_throttle_iops(val: &str) -> Result<Value, String> {
    let path = device_rate_path(val)?;
    let (_, v, _) = cut(val, ':');
    match v.parse::<u64>() {
        Ok(rate) => Ok(json!({"Path": path, "Rate": rate})),
        Err(_) => Err(format!(
            "invalid rate for device: {val}. The correct format is <device-path>:<number>. Number must be a positive integer"
        )),
    }
}

fn device_rate_path(val: &str) -> Result<String, String> {
    let (k, _, ok) = cut(val, ':');
    if !ok || k.is_empty() {
        return Err(format!("bad format: {val}"));
    }
    if !k.starts_with("/dev/") {
        return Err(format!("bad format for device path: {val}"));
    }
    Ok(k.to_string())
}

// -------------------------------------------------------------- kv files

/// Looks up a bare name's value (our environment, for `--env-file`).
pub(crate) type EnvLookup = dyn Fn(&str) -> Option<String>;

/// One port's binding: (host IP, host port).
pub(crate) type Binding = (String, String);

/// docker's `kvfile.Parse` (`--env-file`, `--label-file`): `KEY=value` lines,
/// `#` comments, a bare `KEY` takes its value from `lookup` (dropped when
/// absent there).
///
/// # Errors
/// Go's open error ("open x: no such file or directory") or "invalid env file
/// (x): ..." for bad content.
pub(crate) fn parse_kv_file(path: &str, lookup: Option<&EnvLookup>) -> Result<Vec<String>, String> {
    let data = std::fs::read(path).map_err(|e| crate::commands::go_io_error("open", path, &e))?;
    parse_kv_bytes(&data, lookup).map_err(|e| format!("invalid env file ({path}): {e}"))
}

fn parse_kv_bytes(data: &[u8], lookup: Option<&EnvLookup>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for (i, raw) in lines.into_iter().enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(mut line) = std::str::from_utf8(raw) else {
            return Err(format!("invalid utf8 bytes at line {}: {raw:?}", i + 1));
        };
        if i == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, _, has_value) = cut(line, '=');
        if key.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        if key.contains([' ', '\t']) {
            return Err(format!("variable '{key}' contains whitespaces"));
        }
        if has_value {
            out.push(line.to_string());
        } else if let Some(lookup) = lookup {
            if let Some(v) = lookup(line) {
                out.push(format!("{key}={v}"));
            }
        }
    }
    Ok(out)
}

// ----------------------------------------------------------------- ports

/// go-connections `ParsePortRange`: "80" or "8000-8010".
fn parse_port_range(ports: &str) -> Result<(u64, u64), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".to_string());
    }
    let parse = |p: &str| -> Result<u64, String> {
        p.parse::<u16>()
            .map(u64::from)
            .map_err(|_| format!("strconv.ParseUint: parsing {p:?}: invalid syntax"))
    };
    match ports.split_once('-') {
        None => {
            let p = parse(ports)?;
            Ok((p, p))
        }
        Some((a, rest)) => {
            let b = rest.split('-').next().unwrap_or("");
            let (start, end) = (parse(a)?, parse(b)?);
            if end < start {
                return Err(format!("invalid range specified for port: {ports}"));
            }
            Ok((start, end))
        }
    }
}

/// go-connections `SplitProtoPort`: "53/udp" → ("udp", "53"), "80" → ("tcp", "80").
fn split_proto_port(raw: &str) -> (String, String) {
    let (port, proto, _) = cut(raw, '/');
    if port.is_empty() {
        return (String::new(), String::new());
    }
    let proto = if proto.is_empty() { "tcp" } else { proto };
    (proto.to_string(), port.to_string())
}

/// Exposed ports and port bindings, keyed "80/tcp", as the API wants them.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PortSpecs {
    /// `Config.ExposedPorts` keys.
    pub(crate) exposed: std::collections::BTreeSet<String>,
    /// `HostConfig.PortBindings`: port → [{HostIp, HostPort}].
    pub(crate) bindings: BTreeMap<String, Vec<Binding>>,
}

/// docker's `convertToStandardNotation` then go-connections `ParsePortSpecs`
/// for `-p` values ("8080:80", "127.0.0.1::53/udp", "[::1]:80:80",
/// "published=8080,target=80").
pub(crate) fn parse_publish(specs: &[String]) -> Result<PortSpecs, String> {
    let mut out = PortSpecs::default();
    for spec in specs {
        let spec = if spec.contains('=') {
            let mut params: BTreeMap<&str, &str> = BTreeMap::from([("protocol", "tcp")]);
            for param in spec.split(',') {
                let (k, v, ok) = cut(param, '=');
                if !ok || k.is_empty() {
                    return Err(format!(
                        "invalid publish opts format (should be name=value but got '{param}')"
                    ));
                }
                params.insert(k, v);
            }
            let get = |k: &str| params.get(k).copied().unwrap_or("");
            format!("{}:{}/{}", get("published"), get("target"), get("protocol"))
        } else {
            spec.clone()
        };
        for (port, binding) in parse_port_spec(&spec)? {
            out.exposed.insert(port.clone());
            out.bindings.entry(port).or_default().push(binding);
        }
    }
    Ok(out)
}

fn parse_port_spec(raw: &str) -> Result<Vec<(String, Binding)>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (ip, host_port, container_port) = match parts.len() {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        n => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container_port) = split_proto_port(container_port);
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut ip = ip;
    if ip.starts_with('[') {
        match ip.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(inner) if !inner.contains(['[', ']']) => ip = inner.to_string(),
            _ => {
                return Err(format!(
                    "invalid IP address {ip}: address {ip}:: missing port in address"
                ));
            }
        }
    }
    if !ip.is_empty() && parse_ip(&ip).is_none() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container_port.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) = parse_port_range(&container_port)
        .map_err(|_| format!("invalid containerPort: {container_port}"))?;
    let (mut host_start, mut host_end) = (0, 0);
    if !host_port.is_empty() {
        (host_start, host_end) =
            parse_port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?;
        if end - start != host_end.wrapping_sub(host_start) && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container_port} and {host_port}"
            ));
        }
    }
    let count = end - start + 1;
    let mut out = Vec::new();
    for i in 0..count {
        let port = format!("{}/{proto}", start + i);
        let mut host = String::new();
        if !host_port.is_empty() {
            host = (host_start + i).to_string();
            if count == 1 && host_start != host_end {
                host.push_str(&format!("-{host_end}"));
            }
        }
        out.push((port, (ip.clone(), host)));
    }
    Ok(out)
}

/// `--expose` values ("80", "8000-8010/udp") as "80/tcp" keys.
pub(crate) fn parse_expose(e: &str) -> Result<Vec<String>, String> {
    if e.contains(':') {
        return Err(format!("invalid port format for --expose: {e}"));
    }
    let (proto, port) = split_proto_port(e);
    let (start, end) = parse_port_range(&port)
        .map_err(|err| format!("invalid range format for --expose: {e}, error: {err}"))?;
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

// ---------------------------------------------------------------- mounts

/// One line of Go's `encoding/csv` (quotes with "" escapes).
fn csv_fields(value: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = value.chars().peekable();
    let mut at_start = true;
    let mut col = 0;
    while let Some(c) = chars.next() {
        col += 1;
        if at_start && c == '"' {
            // A quoted field runs to the closing quote.
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => {
                        return Err(format!(
                            "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                            value.chars().count() + 1
                        ));
                    }
                }
            }
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => {
                    return Err(format!(
                        "parse error on line 1, column {col}: extraneous or missing \" in quoted-field"
                    ));
                }
            }
            at_start = false;
            continue;
        }
        match c {
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            '"' => {
                return Err(format!(
                    "parse error on line 1, column {col}: bare \" in non-quoted-field"
                ));
            }
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    fields.push(field);
    Ok(fields)
}

/// Go's `filepath.Abs` for a relative path.
fn absolute(path: &str) -> String {
    match std::env::current_dir() {
        Ok(cwd) => clean_path(&cwd.join(path).to_string_lossy()),
        Err(_) => path.to_string(),
    }
}

/// Go's `path.Clean`.
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// docker's `opts.MountOpt.Set`: `--mount type=bind,src=/x,dst=/y,readonly`
/// as an API `Mount` object.
pub(crate) fn parse_mount(value: &str) -> Result<Value, String> {
    let fields = csv_fields(value)?;
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut read_only = false;
    let mut volume: Option<Map<String, Value>> = None;
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut driver: Map<String, Value> = Map::new();
    let mut driver_opts: Option<BTreeMap<String, String>> = None;
    let mut bind: Option<Map<String, Value>> = None;
    let mut tmpfs: Option<Map<String, Value>> = None;
    let mut image: Option<Map<String, Value>> = None;
    let parse_bool =
        |key: &str, val: &str| go_bool(val).map_err(|_| format!("invalid value for {key}: {val}"));
    for field in &fields {
        let (key, val, ok) = cut(field, '=');
        let key = key.to_lowercase();
        if !ok {
            match key.as_str() {
                "readonly" | "ro" => read_only = true,
                "volume-nocopy" => {
                    volume
                        .get_or_insert_with(Map::new)
                        .insert("NoCopy".into(), true.into());
                }
                "bind-nonrecursive" => {
                    bind.get_or_insert_with(Map::new)
                        .insert("NonRecursive".into(), true.into());
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        }
        match key.as_str() {
            "type" => kind = val.to_lowercase(),
            "source" | "src" => {
                let src = if !val.starts_with('/') && val.starts_with('.') {
                    absolute(val)
                } else {
                    val.to_string()
                };
                m.insert("Source".into(), src.into());
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), val.into());
            }
            "readonly" | "ro" => read_only = parse_bool(&key, val)?,
            "consistency" => {
                m.insert("Consistency".into(), val.to_lowercase().into());
            }
            "bind-propagation" => {
                bind.get_or_insert_with(Map::new)
                    .insert("Propagation".into(), val.to_lowercase().into());
            }
            "bind-nonrecursive" => {
                let b = parse_bool(&key, val)?;
                let opts = bind.get_or_insert_with(Map::new);
                if b {
                    opts.insert("NonRecursive".into(), true.into());
                } else {
                    opts.remove("NonRecursive");
                }
            }
            "bind-recursive" => {
                let opts = bind.get_or_insert_with(Map::new);
                match val {
                    "enabled" => {}
                    "disabled" => {
                        opts.insert("NonRecursive".into(), true.into());
                    }
                    "writable" => {
                        opts.insert("ReadOnlyNonRecursive".into(), true.into());
                    }
                    "readonly" => {
                        opts.insert("ReadOnlyForceRecursive".into(), true.into());
                    }
                    _ => {
                        return Err(format!(
                            "invalid value for {key}: {val} (must \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                        )
                        .replace("(must ", "(must be "));
                    }
                }
            }
            "volume-subpath" => {
                volume
                    .get_or_insert_with(Map::new)
                    .insert("Subpath".into(), val.into());
            }
            "volume-nocopy" => {
                let b =
                    go_bool(val).map_err(|_| format!("invalid value for volume-nocopy: {val}"))?;
                let opts = volume.get_or_insert_with(Map::new);
                if b {
                    opts.insert("NoCopy".into(), true.into());
                } else {
                    opts.remove("NoCopy");
                }
            }
            "volume-label" => {
                volume.get_or_insert_with(Map::new);
                let (k, v, _) = cut(val, '=');
                if !k.is_empty() {
                    labels.insert(k.to_string(), v.to_string());
                }
            }
            "volume-driver" => {
                volume.get_or_insert_with(Map::new);
                if val.is_empty() {
                    driver.remove("Name");
                } else {
                    driver.insert("Name".into(), val.into());
                }
            }
            "volume-opt" => {
                volume.get_or_insert_with(Map::new);
                let opts = driver_opts.get_or_insert_with(BTreeMap::new);
                let (k, v, _) = cut(val, '=');
                if !k.is_empty() {
                    opts.insert(k.to_string(), v.to_string());
                }
            }
            "image-subpath" => {
                image
                    .get_or_insert_with(Map::new)
                    .insert("Subpath".into(), val.into());
            }
            "tmpfs-size" => {
                let size =
                    ram_in_bytes(val).map_err(|_| format!("invalid value for {key}: {val}"))?;
                let opts = tmpfs.get_or_insert_with(Map::new);
                if size == 0 {
                    opts.remove("SizeBytes");
                } else {
                    opts.insert("SizeBytes".into(), size.into());
                }
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(val, 8)
                    .map_err(|_| format!("invalid value for {key}: {val}"))?;
                let opts = tmpfs.get_or_insert_with(Map::new);
                if mode == 0 {
                    opts.remove("Mode");
                } else {
                    opts.insert("Mode".into(), mode.into());
                }
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if kind.is_empty() {
        return Err("type is required".to_string());
    }
    if m.get("Target").is_none_or(|t| t.as_str() == Some("")) {
        return Err("target is required".to_string());
    }
    for (present, prefix, wanted) in [
        (volume.is_some(), "volume", "volume"),
        (image.is_some(), "image", "image"),
        (bind.is_some(), "bind", "bind"),
        (tmpfs.is_some(), "tmpfs", "tmpfs"),
    ] {
        if present && kind != wanted {
            return Err(format!(
                "cannot mix '{prefix}-*' options with mount type '{kind}'"
            ));
        }
    }
    if let Some(b) = &bind {
        if b.contains_key("ReadOnlyNonRecursive") && !read_only {
            return Err(
                "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"
                    .to_string(),
            );
        }
        if b.contains_key("ReadOnlyForceRecursive") {
            if !read_only {
                return Err("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction".to_string());
            }
            if b.get("Propagation").and_then(Value::as_str) != Some("rprivate") {
                return Err("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction".to_string());
            }
        }
    }
    m.insert("Type".into(), kind.into());
    if m.get("Source").is_some_and(|s| s.as_str() == Some("")) {
        m.remove("Source");
    }
    if read_only {
        m.insert("ReadOnly".into(), true.into());
    }
    if let Some(b) = bind {
        m.insert("BindOptions".into(), Value::Object(b));
    }
    if let Some(mut v) = volume {
        if !labels.is_empty() {
            v.insert("Labels".into(), json!(labels));
        }
        if let Some(opts) = driver_opts.filter(|o| !o.is_empty()) {
            driver.insert("Options".into(), json!(opts));
        }
        v.insert("DriverConfig".into(), Value::Object(driver));
        m.insert("VolumeOptions".into(), Value::Object(v));
    }
    if let Some(i) = image {
        m.insert("ImageOptions".into(), Value::Object(i));
    }
    if let Some(t) = tmpfs {
        m.insert("TmpfsOptions".into(), Value::Object(t));
    }
    Ok(Value::Object(m))
}

/// docker's `internal/volumespec.Parse`, reduced to what `-v` needs: the
/// source (empty for an anonymous volume) and whether it is a bind (a path).
pub(crate) fn volume_spec_source(spec: &str) -> Result<(String, bool), String> {
    match spec.chars().count() {
        0 => return Err("invalid empty volume spec".to_string()),
        1 | 2 => return Ok((String::new(), false)),
        _ => {}
    }
    let mut source = String::new();
    let mut target = String::new();
    let mut buffer = String::new();
    let chars: Vec<char> = spec.chars().chain(std::iter::once('\0')).collect();
    for c in chars {
        let windows_drive =
            c == ':' && buffer.chars().count() == 1 && buffer.chars().all(char::is_alphabetic);
        if windows_drive {
            buffer.push(c);
        } else if c == ':' || c == '\0' {
            if buffer.is_empty() {
                return Err(format!(
                    "invalid spec: {spec}: empty section between colons"
                ));
            }
            if source.is_empty() && c == '\0' {
                target = std::mem::take(&mut buffer);
            } else if source.is_empty() {
                source = std::mem::take(&mut buffer);
            } else if target.is_empty() {
                target = std::mem::take(&mut buffer);
            } else if c == ':' {
                return Err(format!("invalid spec: {spec}: too many colons"));
            } else {
                buffer.clear();
            }
        } else {
            buffer.push(c);
        }
    }
    let _ = target;
    let is_path = !source.is_empty() && is_file_path(&source);
    Ok((source, is_path))
}

fn is_file_path(source: &str) -> bool {
    if source.starts_with(['.', '/', '~']) {
        return true;
    }
    let chars: Vec<char> = source.chars().collect();
    if chars.len() == 1 {
        return false;
    }
    source.starts_with("\\\\") || (chars[0].is_alphabetic() && chars[1] == ':')
}

/// The `-v` value as it goes into `Binds`: a relative host path starting
/// with "." made absolute, as docker does for bind sources.
pub(crate) fn bind_with_absolute_source(spec: &str) -> String {
    match spec.split_once(':') {
        Some((host, rest)) if !host.starts_with('/') && host.starts_with('.') => {
            format!("{}:{rest}", absolute(host))
        }
        _ => spec.to_string(),
    }
}

// -------------------------------------------------------------- networks

/// One `--network` value (docker's `NetworkAttachmentOpts`).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct NetworkAttachment {
    pub(crate) target: String,
    pub(crate) aliases: Vec<String>,
    pub(crate) driver_opts: BTreeMap<String, String>,
    pub(crate) links: Vec<String>,
    pub(crate) ipv4: String,
    pub(crate) ipv6: String,
    pub(crate) link_local_ips: Vec<String>,
    pub(crate) mac: String,
    pub(crate) gw_priority: i64,
}

/// docker's `opts.NetworkOpt.Set`: a name, or the csv form
/// `name=n,alias=a,ip=...,driver-opt=k=v,gw-priority=N`.
pub(crate) fn parse_network(value: &str) -> Result<NetworkAttachment, String> {
    let mut n = NetworkAttachment::default();
    // docker's regexp `\w+=\w+(,\w+=\w+)*` is unanchored: one "a=b" anywhere.
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let bytes = value.as_bytes();
    let long_syntax = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'=' && i > 0 && word(bytes[i - 1]) && bytes.get(i + 1).is_some_and(|c| word(*c))
    });
    if !long_syntax {
        n.target = value.to_string();
        return Ok(n);
    }
    for field in csv_fields(value)? {
        let lower = field.to_lowercase();
        let (key, val, ok) = cut(&lower, '=');
        if !ok || key.is_empty() {
            return Err(format!("invalid field {field}"));
        }
        let (key, val) = (key.trim(), val.trim());
        match key {
            "name" => n.target = val.to_string(),
            "alias" => n.aliases.push(val.to_string()),
            "ip" => n.ipv4 = val.to_string(),
            "ip6" => n.ipv6 = val.to_string(),
            "mac-address" => n.mac = val.to_string(),
            "link-local-ip" => n.link_local_ips.push(val.to_string()),
            "driver-opt" => {
                let (k, v, ok) = cut(val, '=');
                if !ok || k.is_empty() {
                    return Err("invalid key value pair format in driver options".to_string());
                }
                n.driver_opts
                    .insert(k.trim().to_string(), v.trim().to_string());
            }
            "gw-priority" => {
                n.gw_priority = val.parse().map_err(|_| {
                    let why = if val
                        .trim_start_matches(['-', '+'])
                        .chars()
                        .all(|c| c.is_ascii_digit())
                        && !val.is_empty()
                    {
                        "value out of range"
                    } else {
                        "invalid syntax"
                    };
                    format!("invalid gw-priority ({val}): {why}")
                })?;
            }
            _ => return Err(format!("invalid field key {key}")),
        }
    }
    if n.target.is_empty() {
        return Err("network name/id is not specified".to_string());
    }
    Ok(n)
}

/// Whether a network mode names a user-defined network (not default,
/// bridge, host, none or container:...).
pub(crate) fn is_user_defined_network(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

/// Go's `net.ParseMAC` for the 6-byte forms docker users type.
pub(crate) fn valid_mac(s: &str) -> bool {
    let s = s.trim();
    let groups: Vec<&str> = if s.contains(':') {
        s.split(':').collect()
    } else if s.contains('-') {
        s.split('-').collect()
    } else if s.contains('.') {
        // 0000.0000.0000 form: three groups of four hex digits.
        let g: Vec<&str> = s.split('.').collect();
        return matches!(g.len(), 3 | 4 | 10)
            && g.iter()
                .all(|x| x.len() == 4 && x.chars().all(|c| c.is_ascii_hexdigit()));
    } else {
        return false;
    };
    matches!(groups.len(), 6 | 8 | 20)
        && groups
            .iter()
            .all(|g| g.len() == 2 && g.chars().all(|c| c.is_ascii_hexdigit()))
}

// --------------------------------------------------------------- devices

/// docker's `validateDevice` + `parseLinuxDevice`: "/dev/x[:/dev/y][:rwm]".
pub(crate) fn parse_linux_device(device: &str) -> Result<Value, String> {
    let valid_mode = |mode: &str| {
        let mut seen = std::collections::HashSet::new();
        !mode.is_empty()
            && mode
                .chars()
                .all(|c| matches!(c, 'r' | 'w' | 'm') && seen.insert(c))
    };
    // validateLinuxPath
    if device.matches(':').count() > 2 {
        return Err(format!("bad format for path: {device}"));
    }
    let split: Vec<&str> = device.splitn(3, ':').collect();
    if split[0].is_empty() {
        return Err(format!("bad format for path: {device}"));
    }
    let (container_path, validated) = match split.len() {
        1 => (split[0].to_string(), clean_path(split[0])),
        2 => {
            if valid_mode(split[1]) {
                (
                    split[0].to_string(),
                    format!("{}:{}", clean_path(split[0]), split[1]),
                )
            } else {
                (
                    split[1].to_string(),
                    format!("{}:{}", split[0], clean_path(split[1])),
                )
            }
        }
        _ => {
            if !valid_mode(split[2]) {
                return Err(format!("bad mode specified: {}", split[2]));
            }
            (split[1].to_string(), device.to_string())
        }
    };
    if !container_path.starts_with('/') {
        return Err(format!("{container_path} is not an absolute path"));
    }
    // parseLinuxDevice
    let arr: Vec<&str> = validated.splitn(4, ':').collect();
    if arr.len() > 3 {
        return Err(format!("invalid device specification: {validated}"));
    }
    let src = arr[0].to_string();
    let (mut dst, mut perms) = (String::new(), "rwm".to_string());
    if arr.len() == 3 {
        perms = arr[2].to_string();
    }
    if arr.len() >= 2 {
        if valid_mode(arr[1]) {
            perms = arr[1].to_string();
        } else {
            dst = arr[1].to_string();
        }
    }
    if dst.is_empty() {
        dst = src.clone();
    }
    Ok(json!({"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}))
}

/// CDI's `IsQualifiedName`: "vendor.com/class=name".
pub(crate) fn is_cdi_name(device: &str) -> bool {
    let Some((kind, name)) = device.split_once('=') else {
        return false;
    };
    let Some((vendor, class)) = kind.split_once('/') else {
        return false;
    };
    let ident = |s: &str, extra: &[char]| {
        !s.is_empty()
            && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    };
    ident(vendor, &['.', '-', '_'])
        && ident(class, &['-', '_'])
        && !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
}

// ------------------------------------------------------------- policies

/// docker's `opts.ParseRestartPolicy`: "", "no", "always", "on-failure[:N]", ...
pub(crate) fn parse_restart_policy(policy: &str) -> Result<(String, i64), String> {
    if policy.is_empty() {
        return Ok((String::new(), 0));
    }
    let (k, v, ok) = cut(policy, ':');
    if ok && k.is_empty() {
        return Err("invalid restart policy format: no policy provided before colon".to_string());
    }
    let mut count = 0;
    if !v.is_empty() {
        count = v.parse::<i64>().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?;
    }
    Ok((k.to_string(), count))
}

/// docker's `parseSecurityOpts`: checks "key=value" (or "key:value") forms
/// and inlines a seccomp profile file as compact JSON.
pub(crate) fn parse_security_opts(opts: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(opts.len());
    for opt in opts {
        let (mut k, mut v, mut ok) = cut(opt, '=');
        if !ok && k != "no-new-privileges" {
            (k, v, ok) = cut(opt, ':');
        }
        if (!ok || v.is_empty()) && k != "no-new-privileges" {
            return Err(format!("Invalid --security-opt: {opt:?}"));
        }
        if k == "seccomp" && v != "builtin" && v != "unconfined" {
            let data = std::fs::read(Path::new(v)).map_err(|e| {
                format!(
                    "opening seccomp profile ({v}) failed: {}",
                    crate::commands::go_io_error("open", v, &e)
                )
            })?;
            if serde_json::from_slice::<Value>(&data).is_err() {
                return Err(format!(
                    "compacting json for seccomp profile ({v}) failed: invalid character"
                ));
            }
            out.push(format!("seccomp={}", crate::format::json::compact(&data)));
            continue;
        }
        out.push(opt.clone());
    }
    Ok(out)
}

/// Go's `strings.Cut`.
pub(crate) fn cut(s: &str, sep: char) -> (&str, &str, bool) {
    match s.split_once(sep) {
        Some((a, b)) => (a, b, true),
        None => (s, "", false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_are_binary_multiples() {
        assert_eq!(ram_in_bytes("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1.5g"), Ok(1610612736));
        assert_eq!(ram_in_bytes("10 MB"), Ok(10 * 1024 * 1024));
        assert_eq!(ram_in_bytes("64KiB"), Ok(65536));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("2b"), Ok(2));
        assert_eq!(ram_in_bytes("1x"), Err("invalid suffix: 'x'".to_string()));
        assert_eq!(
            ram_in_bytes("1mbx"),
            Err("invalid suffix: 'mbx'".to_string())
        );
        assert_eq!(ram_in_bytes("abc"), Err("invalid size: 'abc'".to_string()));
        assert_eq!(ram_in_bytes("-1"), Err("invalid size: '-1'".to_string()));
        assert_eq!(mem_swap_bytes("-1"), Ok(-1));
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("0.001"), Ok(1_000_000));
        assert_eq!(parse_cpus("3/2"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(
            parse_cpus("0.0000000001"),
            Err("value is too precise".to_string())
        );
        assert_eq!(
            parse_cpus("x"),
            Err("failed to parse x as a rational number".to_string())
        );
    }

    #[test]
    fn durations_follow_go() {
        assert_eq!(go_duration("5s"), Ok(5_000_000_000));
        assert_eq!(go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(go_duration("300ms"), Ok(300_000_000));
        assert_eq!(go_duration("0"), Ok(0));
        assert_eq!(go_duration("-2s"), Ok(-2_000_000_000));
        assert_eq!(
            go_duration("5"),
            Err("time: missing unit in duration \"5\"".to_string())
        );
        assert_eq!(
            go_duration("5x"),
            Err("time: unknown unit \"x\" in duration \"5x\"".to_string())
        );
        assert_eq!(
            go_duration("x"),
            Err("time: invalid duration \"x\"".to_string())
        );
    }

    #[test]
    fn ints_parse_like_strconv_with_base_prefixes() {
        assert_eq!(go_int("10"), Ok(10));
        assert_eq!(go_int("0x10"), Ok(16));
        assert_eq!(go_int("-5"), Ok(-5));
        assert_eq!(
            go_int("abc"),
            Err("strconv.ParseInt: parsing \"abc\": invalid syntax".to_string())
        );
        assert_eq!(
            go_u16("70000"),
            Err("strconv.ParseUint: parsing \"70000\": value out of range".to_string())
        );
    }

    #[test]
    fn publish_specs_expand_like_go_connections() {
        let p = parse_publish(&["8080:80".into(), "127.0.0.1::53/udp".into()]).unwrap();
        assert!(p.exposed.contains("80/tcp") && p.exposed.contains("53/udp"));
        assert_eq!(
            p.bindings["80/tcp"],
            vec![(String::new(), "8080".to_string())]
        );
        assert_eq!(
            p.bindings["53/udp"],
            vec![("127.0.0.1".to_string(), String::new())]
        );
        let r = parse_publish(&["8000-8001:80-81".into()]).unwrap();
        assert_eq!(
            r.bindings["81/tcp"],
            vec![(String::new(), "8001".to_string())]
        );
        let dynamic = parse_publish(&["8000-8010:80".into()]).unwrap();
        assert_eq!(dynamic.bindings["80/tcp"][0].1, "8000-8010");
        let v6 = parse_publish(&["[::1]:80:80".into()]).unwrap();
        assert_eq!(v6.bindings["80/tcp"][0].0, "::1");
        let long = parse_publish(&["published=8080,target=80,protocol=udp".into()]).unwrap();
        assert_eq!(long.bindings["80/udp"][0].1, "8080");
        assert_eq!(
            parse_publish(&["99999:80".into()]),
            Err("invalid hostPort: 99999".into())
        );
        assert_eq!(
            parse_publish(&["80/xyz".into()]),
            Err("invalid proto: xyz".into())
        );
        assert_eq!(
            parse_publish(&["1.2.3:80:80".into()]),
            Err("invalid IP address: 1.2.3".into())
        );
        assert_eq!(
            parse_publish(&["8000-8001:80-83".into()]),
            Err(
                "invalid ranges specified for container and host Ports: 80-83 and 8000-8001".into()
            )
        );
    }

    #[test]
    fn expose_ranges_expand() {
        assert_eq!(
            parse_expose("1000-1002/udp").unwrap(),
            ["1000/udp", "1001/udp", "1002/udp"]
        );
        assert!(parse_expose("1:2").is_err());
    }

    #[test]
    fn mount_csv_builds_api_mounts() {
        let m = parse_mount("type=bind,src=/x,dst=/y,readonly,bind-propagation=rshared").unwrap();
        assert_eq!(
            m,
            json!({"Type":"bind","Source":"/x","Target":"/y","ReadOnly":true,
                   "BindOptions":{"Propagation":"rshared"}})
        );
        let v = parse_mount("src=v,dst=/m,volume-label=a=b,volume-opt=o=1,volume-driver=local")
            .unwrap();
        assert_eq!(
            v,
            json!({"Type":"volume","Source":"v","Target":"/m",
                   "VolumeOptions":{"Labels":{"a":"b"},"DriverConfig":{"Name":"local","Options":{"o":"1"}}}})
        );
        let t = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(
            t,
            json!({"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576,"Mode":1016}})
        );
        let quoted = parse_mount("type=volume,\"dst=/a,b\"").unwrap();
        assert_eq!(quoted["Target"], "/a,b");
        assert_eq!(
            parse_mount("type=bind,src=/x"),
            Err("target is required".into())
        );
        assert_eq!(
            parse_mount("type=bind,dst=/x,volume-nocopy"),
            Err("cannot mix 'volume-*' options with mount type 'bind'".into())
        );
        assert_eq!(
            parse_mount("dst=/x,bogus=1"),
            Err("unexpected key 'bogus' in 'bogus=1'".into())
        );
        assert_eq!(
            parse_mount("dst=/x,weird"),
            Err("invalid field 'weird' must be a key=value pair".into())
        );
    }

    #[test]
    fn env_files_keep_values_and_look_up_bare_names() {
        let lookup = |k: &str| (k == "FROM_HOST").then(|| "h".to_string());
        let got = parse_kv_bytes(
            b"\xef\xbb\xbfA=1\n# comment\n\n  B = 2 \nFROM_HOST\nMISSING\nC=\n",
            Some(&lookup),
        );
        assert_eq!(got.unwrap_err(), "variable 'B ' contains whitespaces");
        let got = parse_kv_bytes(
            b"A=1\r\n# c\nFROM_HOST\nMISSING\nC=\n  D=x y \n",
            Some(&lookup),
        )
        .unwrap();
        assert_eq!(got, ["A=1", "FROM_HOST=h", "C=", "D=x y "]);
        assert_eq!(
            parse_kv_bytes(b"=x\n", None).unwrap_err(),
            "no variable name on line '=x'"
        );
        assert_eq!(parse_kv_bytes(b"L\nM=1\n", None).unwrap(), ["M=1"]);
    }

    #[test]
    fn volume_specs_tell_binds_from_volumes() {
        assert_eq!(volume_spec_source("/data").unwrap(), (String::new(), false));
        assert_eq!(
            volume_spec_source("/tmp:/x:ro").unwrap(),
            ("/tmp".into(), true)
        );
        assert_eq!(
            volume_spec_source("named:/x").unwrap(),
            ("named".into(), false)
        );
        assert!(volume_spec_source("/a::b").is_err());
        assert!(volume_spec_source("/a:/b:ro:x").is_err());
    }

    #[test]
    fn networks_parse_short_and_long_forms() {
        assert_eq!(parse_network("mynet").unwrap().target, "mynet");
        let n = parse_network("name=n1,alias=a,ip=10.0.0.2,driver-opt=k=v,gw-priority=5").unwrap();
        assert_eq!(n.target, "n1");
        assert_eq!(n.aliases, ["a"]);
        assert_eq!(n.driver_opts["k"], "v");
        assert_eq!(n.gw_priority, 5);
        assert_eq!(
            parse_network("alias=x").unwrap_err(),
            "network name/id is not specified"
        );
        assert_eq!(
            parse_network("name=x,foo=y").unwrap_err(),
            "invalid field key foo"
        );
    }

    #[test]
    fn validators_report_like_docker() {
        assert_eq!(validate_extra_host("h:1.2.3.4"), Ok("h:1.2.3.4".into()));
        assert_eq!(validate_extra_host("h=[::1]"), Ok("h:::1".into()));
        assert_eq!(
            validate_extra_host("h:host-gateway"),
            Ok("h:host-gateway".into())
        );
        assert_eq!(
            validate_extra_host("h"),
            Err("bad format for add-host: \"h\"".into())
        );
        assert_eq!(
            validate_extra_host("h:x"),
            Err("invalid IP address in add-host: \"x\"".into())
        );
        assert_eq!(
            validate_env("=x"),
            Err("invalid environment variable: =x".into())
        );
        assert_eq!(
            validate_label(" =x"),
            Err("invalid label ' =x': empty name".into())
        );
        assert_eq!(
            validate_sysctl("kernel.foo=1"),
            Err("sysctl 'kernel.foo=1' is not allowed".into())
        );
        assert_eq!(
            validate_ip_address(" ::ffff:1.2.3.4 "),
            Ok("1.2.3.4".into())
        );
        assert_eq!(
            validate_dns_search("example.com."),
            Ok("example.com".into())
        );
        assert!(validate_dns_search("-x.com").is_err());
        assert_eq!(validate_attach("STDIN"), Ok("stdin".into()));
        assert!(validate_device_cgroup_rule("c 1:3 rwm").is_ok());
        assert!(validate_device_cgroup_rule("x 1:3 rwm").is_err());
        assert!(valid_mac("92:d0:c6:0a:29:33"));
        assert!(!valid_mac("92:d0:c6"));
    }

    #[test]
    fn ulimits_parse_soft_and_hard() {
        assert_eq!(
            parse_ulimit("nofile=10:20").unwrap(),
            json!({"Name":"nofile","Hard":20,"Soft":10})
        );
        assert_eq!(
            parse_ulimit("nproc=5").unwrap(),
            json!({"Name":"nproc","Hard":5,"Soft":5})
        );
        assert_eq!(
            parse_ulimit("bogus=1").unwrap_err(),
            "invalid ulimit type: bogus"
        );
        assert_eq!(
            parse_ulimit("nofile=20:10").unwrap_err(),
            "ulimit soft limit must be less than or equal to hard limit: 20 > 10"
        );
    }

    #[test]
    fn devices_default_to_same_path_and_rwm() {
        assert_eq!(
            parse_linux_device("/dev/fuse").unwrap(),
            json!({"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse","CgroupPermissions":"rwm"})
        );
        assert_eq!(
            parse_linux_device("/dev/sda:/dev/xvda:r").unwrap(),
            json!({"PathOnHost":"/dev/sda","PathInContainer":"/dev/xvda","CgroupPermissions":"r"})
        );
        assert_eq!(
            parse_linux_device("/dev/sda:rw").unwrap()["CgroupPermissions"],
            "rw"
        );
        assert_eq!(
            parse_linux_device("/dev/a:rel").unwrap_err(),
            "rel is not an absolute path"
        );
        assert!(is_cdi_name("nvidia.com/gpu=all"));
        assert!(!is_cdi_name("/dev/sda"));
    }

    #[test]
    fn restart_policies_parse() {
        assert_eq!(
            parse_restart_policy("on-failure:3"),
            Ok(("on-failure".into(), 3))
        );
        assert_eq!(parse_restart_policy("no"), Ok(("no".into(), 0)));
        assert!(parse_restart_policy(":3").is_err());
        assert!(parse_restart_policy("on-failure:x").is_err());
    }

    #[test]
    fn paths_clean_like_go() {
        assert_eq!(clean_path("/a/../b/./c/"), "/b/c");
        assert_eq!(clean_path("a/.."), ".");
        assert_eq!(clean_path("../x"), "../x");
    }
}
