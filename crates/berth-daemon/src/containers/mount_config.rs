//! Create-time checks of a container's mounts (`-v`, `--mount`, `--tmpfs`), in
//! Docker's words (moby `volume/mounts/linux_parser.go`).
//!
//! Everything here runs before anything is created on the host: a spec refused
//! halfway through [`super::spec::mounts_for`] would otherwise leave bind source
//! directories and volumes behind. The checks are also what keeps hostile specs from
//! reaching the host: a volume name is a directory under the volume store (so `../x`
//! must never pass), a relative bind source would be relative to berthd's working
//! directory, and a destination of `/` or `/proc`, or one full of `..`, would fail only
//! when the runtime mounts it, as a 500 the client cannot act on.

use super::model::{HostConfig, MountRequest};
use crate::DaemonError;

/// One `-v src:dst[:mode]` as Docker splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BindSpec<'a> {
    /// Host path (absolute), volume name, or empty for an anonymous volume.
    pub(super) source: &'a str,
    /// Where it is mounted in the container, as given (see [`clean_destination`]).
    pub(super) destination: &'a str,
    /// The comma-separated mode, possibly empty.
    pub(super) mode: &'a str,
}

/// Docker's `invalid volume specification: '<raw>'`.
fn invalid_spec(raw: &str) -> DaemonError {
    DaemonError::invalid(format!("invalid volume specification: '{raw}'"))
}

/// Splits a `-v` spec (moby `ParseMountRaw`).
///
/// # Errors
/// `InvalidArgument` for an empty source part, a two-part spec whose second part is a
/// mode (`/data:ro`), more than three parts, or an invalid mode.
pub(super) fn parse_bind(raw: &str) -> Result<BindSpec<'_>, DaemonError> {
    let parts: Vec<&str> = raw.splitn(4, ':').collect();
    if parts[0].is_empty() {
        return Err(invalid_spec(raw));
    }
    let spec = match parts.as_slice() {
        [dst] => BindSpec {
            source: "",
            destination: dst,
            mode: "",
        },
        // `/data:ro` names no source: a volume cannot have a mode without one.
        [_, second] if valid_mode(second) => return Err(invalid_spec(raw)),
        [src, dst] => BindSpec {
            source: src,
            destination: dst,
            mode: "",
        },
        [src, dst, mode] => BindSpec {
            source: src,
            destination: dst,
            mode,
        },
        _ => return Err(invalid_spec(raw)),
    };
    if !valid_mode(spec.mode) {
        return Err(DaemonError::invalid(format!("invalid mode: {}", spec.mode)));
    }
    Ok(spec)
}

/// Docker's `linuxValidMountMode`: every option known, at most one of each kind.
pub(super) fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    // access, SELinux label, propagation, copy, consistency
    let mut counts = [0u8; 5];
    for option in mode.split(',') {
        let kind = match option {
            "ro" | "rw" => 0,
            "z" | "Z" => 1,
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[kind] += 1;
    }
    counts.iter().all(|&c| c <= 1)
}

/// A mount destination as Docker stores it: `path.Clean`ed, so `/data/../x` is `/x`
/// and two spellings of one directory are seen as the duplicate they are.
pub(super) fn clean_destination(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Checks a destination: absolute, not `/`, not `/proc` (the runtime refuses to
/// mount over the container's procfs; Docker fails at start).
fn check_destination(kind: &str, destination: &str) -> Result<(), String> {
    if destination.is_empty() {
        return Err("field Target must not be empty".into());
    }
    if !destination.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{destination}' mount path must be absolute"
        ));
    }
    if destination.contains('\0') {
        return Err(format!("invalid mount path: {destination:?}"));
    }
    match clean_destination(destination).as_str() {
        "/" => Err("invalid specification: destination can't be '/'".into()),
        "/proc" => Err(format!(
            "invalid specification: a {kind} mount cannot replace the container's /proc"
        )),
        _ => Ok(()),
    }
}

/// `invalid mount config for type "<kind>": <why>`.
fn mount_config_error(kind: &str, why: impl std::fmt::Display) -> DaemonError {
    DaemonError::invalid(format!("invalid mount config for type \"{kind}\": {why}"))
}

/// Checks every mount of `hc` as Docker does at create, before anything is made.
///
/// # Errors
/// `InvalidArgument` in Docker's words for the first bad mount.
pub(super) fn validate(hc: &HostConfig) -> Result<(), DaemonError> {
    for raw in hc.binds.iter().flatten() {
        let spec = parse_bind(raw)?;
        let kind = if spec.source.starts_with('/') {
            "bind"
        } else {
            "volume"
        };
        check_destination(kind, spec.destination).map_err(|why| {
            DaemonError::invalid(format!(
                "{}: {}",
                invalid_spec(raw).message(),
                mount_config_error(kind, why).message()
            ))
        })?;
        if kind == "volume" && !spec.source.is_empty() {
            crate::volumes::check_name(spec.source)?;
        }
    }
    for m in hc.mounts.iter().flatten() {
        validate_mount(m)?;
    }
    for (destination, options) in hc.tmpfs.iter().flatten() {
        check_destination("tmpfs", destination).map_err(|why| {
            DaemonError::invalid(format!("invalid tmpfs mount {destination}: {why}"))
        })?;
        check_tmpfs_options(options).map_err(|why| {
            DaemonError::invalid(format!("invalid tmpfs mount {destination}: {why}"))
        })?;
    }
    Ok(())
}

/// One `--mount` (moby `validateMountConfigImpl`).
fn validate_mount(m: &MountRequest) -> Result<(), DaemonError> {
    let kind = m.kind.as_str();
    if !matches!(kind, "bind" | "volume" | "tmpfs") {
        return Err(DaemonError::invalid(format!(
            "invalid mount config: mount type unknown: {kind:?}"
        )));
    }
    let fail = |why: String| mount_config_error(kind, why);
    check_destination(kind, &m.target).map_err(fail)?;
    match kind {
        "bind" => {
            if m.source.is_empty() {
                return Err(fail("field Source must not be empty".into()));
            }
            if !m.source.starts_with('/') {
                return Err(fail(format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            if m.volume_options.as_ref().is_some_and(|v| !v.is_null()) {
                return Err(fail("field VolumeOptions must not be specified".into()));
            }
        }
        "volume" => {
            if m.bind_options.as_ref().is_some_and(|v| !v.is_null()) {
                return Err(fail("field BindOptions must not be specified".into()));
            }
            if !m.source.is_empty() {
                crate::volumes::check_name(&m.source)?;
            }
        }
        _ => {
            if !m.source.is_empty() {
                return Err(fail("field Source must not be specified".into()));
            }
            if m.bind_options.as_ref().is_some_and(|v| !v.is_null()) {
                return Err(fail("field BindOptions must not be specified".into()));
            }
            tmpfs_options_of(m).map_err(fail)?;
        }
    }
    Ok(())
}

/// The mount options of a `--mount type=tmpfs` (moby `ConvertTmpfsOptions`):
/// `SizeBytes` and `Mode` become `size=` and `mode=`, and `Options` may only hold
/// `exec`/`noexec`.
///
/// # Errors
/// A message for a negative size, a mode beyond `07777`, or another option.
pub(super) fn tmpfs_options_of(m: &MountRequest) -> Result<String, String> {
    let Some(opts) = m.tmpfs_options.as_ref().filter(|v| !v.is_null()) else {
        return Ok(String::new());
    };
    let mut out: Vec<String> = Vec::new();
    match opts.get("SizeBytes") {
        None | Some(serde_json::Value::Null) => {}
        Some(v) => match v.as_i64() {
            Some(0) => {}
            Some(n) if n > 0 => out.push(format!("size={n}")),
            _ => return Err(format!("invalid tmpfs size: {v}")),
        },
    }
    match opts.get("Mode") {
        None | Some(serde_json::Value::Null) => {}
        Some(v) => match v.as_u64() {
            Some(0) => {}
            Some(n) if n <= 0o7777 => out.push(format!("mode={n:o}")),
            _ => return Err(format!("invalid tmpfs mode: {v}")),
        },
    }
    if let Some(list) = opts.get("Options").filter(|v| !v.is_null()) {
        let list: Vec<Vec<String>> = serde_json::from_value(list.clone())
            .map_err(|_| "invalid option array length".to_string())?;
        for opt in list {
            match opt.as_slice() {
                [key] if matches!(key.as_str(), "exec" | "noexec") => out.push(key.clone()),
                [key, value] if matches!(key.as_str(), "exec" | "noexec") => {
                    out.push(format!("{key}={value}"))
                }
                [key] | [key, _] => return Err(format!("invalid option: {key}")),
                _ => return Err("invalid option array length".into()),
            }
        }
    }
    Ok(out.join(","))
}

/// Checks a `--tmpfs dst:options` string: the options tmpfs and the mount flags know,
/// with values that parse. Docker hands the string to the runtime unchecked and fails
/// at start; here the client's typo is a 400 at create.
fn check_tmpfs_options(options: &str) -> Result<(), String> {
    const FLAGS: &[&str] = &[
        "ro",
        "rw",
        "exec",
        "noexec",
        "suid",
        "nosuid",
        "dev",
        "nodev",
        "atime",
        "noatime",
        "diratime",
        "nodiratime",
        "relatime",
        "norelatime",
        "strictatime",
        "nostrictatime",
        "sync",
        "async",
        "dirsync",
        "mand",
        "nomand",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "tmpcopyup",
        "inode32",
        "inode64",
        "noswap",
    ];
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option, None),
        };
        let ok = match (key, value) {
            (flag, None) => FLAGS.contains(&flag),
            ("size" | "nr_blocks" | "nr_inodes", Some(v)) => size_value(v),
            ("mode", Some(v)) => u32::from_str_radix(v, 8).is_ok_and(|m| m <= 0o7777),
            ("uid" | "gid", Some(v)) => v.parse::<u32>().is_ok(),
            ("huge", Some(v)) => matches!(v, "never" | "always" | "within_size" | "advise"),
            ("mpol", Some(v)) => !v.is_empty(),
            _ => false,
        };
        if !ok {
            return Err(format!("invalid tmpfs option {option:?}"));
        }
    }
    Ok(())
}

/// A tmpfs size: digits with an optional `k`, `m`, `g`, `t`, `p`, `e` or `%` suffix.
fn size_value(v: &str) -> bool {
    let digits = v
        .strip_suffix([
            'k', 'K', 'm', 'M', 'g', 'G', 't', 'T', 'p', 'P', 'e', 'E', '%',
        ])
        .unwrap_or(v);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_config(v: serde_json::Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }

    fn message(v: serde_json::Value) -> String {
        validate(&host_config(v)).unwrap_err().message().to_string()
    }

    #[test]
    fn binds_split_like_docker() {
        assert_eq!(
            parse_bind("/a:/b:ro,rshared").unwrap(),
            BindSpec {
                source: "/a",
                destination: "/b",
                mode: "ro,rshared"
            }
        );
        assert_eq!(parse_bind("/b").unwrap().source, "");
        for bad in [":/x", "/data:ro", "/data:", "a:b:c:d"] {
            assert!(
                parse_bind(bad)
                    .unwrap_err()
                    .message()
                    .starts_with("invalid volume specification"),
                "{bad}"
            );
        }
        assert_eq!(
            parse_bind("/a:/b:ro,rw").unwrap_err().message(),
            "invalid mode: ro,rw"
        );
        assert_eq!(
            parse_bind("/a:/b:zz").unwrap_err().message(),
            "invalid mode: zz"
        );
    }

    #[test]
    fn destinations_are_cleaned() {
        assert_eq!(clean_destination("/data/../../x"), "/x");
        assert_eq!(clean_destination("/a/./b//"), "/a/b");
        assert_eq!(clean_destination("/.."), "/");
    }

    #[test]
    fn root_and_proc_destinations_are_refused() {
        for bind in ["/tmp:/", "/tmp:/x/..", "/tmp:/proc", "v1:/"] {
            let m = message(serde_json::json!({ "Binds": [bind] }));
            assert!(m.starts_with("invalid volume specification"), "{bind}: {m}");
        }
        let m = message(
            serde_json::json!({ "Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/"}] }),
        );
        assert_eq!(
            m,
            "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert!(message(serde_json::json!({ "Tmpfs": {"/": ""} })).contains("can't be '/'"));
    }

    #[test]
    fn volume_names_that_are_paths_are_refused() {
        for source in ["../../escape", "a/b", ".."] {
            let m = message(
                serde_json::json!({ "Mounts": [{"Type": "volume", "Source": source, "Target": "/x"}] }),
            );
            assert!(m.contains("invalid characters"), "{source}: {m}");
        }
    }

    #[test]
    fn bind_mounts_need_an_absolute_source() {
        assert_eq!(
            message(
                serde_json::json!({ "Mounts": [{"Type": "bind", "Source": "rel", "Target": "/x"}] })
            ),
            "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            message(serde_json::json!({ "Mounts": [{"Type": "bind", "Target": "/x"}] })),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            message(
                serde_json::json!({ "Mounts": [{"Type": "tmpfs", "Source": "/x", "Target": "/x"}] })
            ),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
    }

    #[test]
    fn tmpfs_options_are_checked() {
        for ok in [
            "",
            "size=64m",
            "size=10%,mode=1777,uid=1000,noexec",
            "rw,exec",
        ] {
            assert!(check_tmpfs_options(ok).is_ok(), "{ok}");
        }
        for bad in [
            "size=garbage",
            "nosuchopt",
            "size=-1",
            "mode=99999",
            "uid=x",
        ] {
            assert!(check_tmpfs_options(bad).is_err(), "{bad}");
        }
        let m: MountRequest = serde_json::from_value(serde_json::json!({
            "Type": "tmpfs", "Target": "/t",
            "TmpfsOptions": {"SizeBytes": 65536, "Mode": 0o1777, "Options": [["exec"]]}
        }))
        .unwrap();
        assert_eq!(tmpfs_options_of(&m).unwrap(), "size=65536,mode=1777,exec");
        let m: MountRequest = serde_json::from_value(serde_json::json!({
            "Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": -5}
        }))
        .unwrap();
        assert!(tmpfs_options_of(&m).is_err());
    }
}
