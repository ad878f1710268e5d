//! Seccomp profiles in Docker's JSON format, translated to the OCI `LinuxSeccomp`.
//!
//! Docker's profile format extends the OCI one with conditions: `archMap` (the native
//! architecture and its sub-architectures), and per rule `includes`/`excludes` on the
//! container's bounding capabilities, the host architecture and a minimum kernel
//! version. The translation follows moby's `profiles/seccomp/seccomp_linux.go`
//! (`setupSeccomp`) rule for rule, so a container gets exactly the filter Docker would
//! give it on the same host.
//!
//! Docker's default profile is checked in as data (`data/seccomp-default.json`, from
//! github.com/moby/profiles/seccomp v0.1.0 as vendored by moby v28.5.2, Apache-2.0; see
//! `data/NOTICE`) and embedded at build time.

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSyscall};
use serde::Deserialize;

use crate::caps::CapSet;

/// Docker's default profile, as moby ships it.
pub const DOCKER_DEFAULT_PROFILE: &str = include_str!("../data/seccomp-default.json");

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// Not JSON in Docker's profile format.
    #[error("Decoding seccomp profile failed: {0}")]
    Decode(#[source] serde_json::Error),
    /// Both `architectures` and `archMap`.
    #[error(
        "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'"
    )]
    ArchitecturesAndArchMap,
    /// A rule with both `name` and `names`.
    #[error(
        "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'"
    )]
    NameAndNames,
    /// An action name libseccomp does not know.
    #[error("invalid seccomp action {0:?}")]
    Action(String),
    /// A `minKernel` that is not `<kernel>.<major>`.
    #[error("invalid kernel version: {0:?}, expected \"<kernel>.<major>\"")]
    KernelVersion(String),
}

/// What the conditions in a profile are evaluated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompHost {
    /// The native architecture in libseccomp's (and Go's profile) spelling: `amd64`,
    /// `arm64`, …
    pub arch: &'static str,
    /// The running kernel's (version, major revision), e.g. (6, 1).
    pub kernel: (u64, u64),
}

impl SeccompHost {
    /// The host this process runs on.
    pub fn detect() -> Self {
        let release = rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned();
        SeccompHost {
            arch: native_arch(),
            kernel: parse_release(&release).unwrap_or((0, 0)),
        }
    }
}

/// The host architecture in the profile's spelling (Go's `goToNative` map).
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips64" => "mips64",
        "mips" => "mipsel",
        other => other,
    }
}

fn native_to_scmp(native: &str) -> Option<Arch> {
    Some(match native {
        "x86" => Arch::ScmpArchX86,
        "amd64" => Arch::ScmpArchX86_64,
        "arm" => Arch::ScmpArchArm,
        "arm64" => Arch::ScmpArchAarch64,
        "mips64" => Arch::ScmpArchMips64,
        "mips64n32" => Arch::ScmpArchMips64n32,
        "mipsel64" => Arch::ScmpArchMipsel64,
        "mips3l64n32" => Arch::ScmpArchMipsel64n32,
        "mipsle" => Arch::ScmpArchMipsel,
        "ppc" => Arch::ScmpArchPpc,
        "ppc64" => Arch::ScmpArchPpc64,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "riscv64" => Arch::ScmpArchRiscv64,
        "s390" => Arch::ScmpArchS390,
        "s390x" => Arch::ScmpArchS390x,
        _ => return None,
    })
}

/// "6.1.0-18-amd64" → (6, 1); like moby's `parseRelease`.
fn parse_release(release: &str) -> Option<(u64, u64)> {
    let mut parts = release.splitn(2, '.');
    let kernel = leading_number(parts.next()?)?;
    let major = leading_number(parts.next()?)?;
    Some((kernel, major))
}

fn leading_number(s: &str) -> Option<u64> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchEntry>>,
    #[serde(default)]
    flags: Option<Vec<oci_spec::runtime::LinuxSeccompFilterFlag>>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchEntry {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    name: String,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

fn parse_action(name: &str) -> Result<LinuxSeccompAction, SeccompError> {
    name.parse()
        .map_err(|_| SeccompError::Action(name.to_string()))
}

fn parse_min_kernel(v: &str) -> Result<(u64, u64), SeccompError> {
    let bad = || SeccompError::KernelVersion(v.to_string());
    let (k, m) = v.split_once('.').ok_or_else(bad)?;
    let k: u8 = k.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    if k == 0 && m == 0 {
        return Err(bad());
    }
    Ok((k.into(), m.into()))
}

/// Translates a profile in Docker's JSON format for a container whose bounding set is
/// `bounding`. `Ok(None)` means the profile disables seccomp (no default action and no
/// rules), as Docker reads it.
///
/// # Errors
/// [`SeccompError`] for a profile Docker would refuse.
pub fn load_profile(
    json: &str,
    bounding: CapSet,
    host: &SeccompHost,
) -> Result<Option<LinuxSeccomp>, SeccompError> {
    let profile: Profile = serde_json::from_str(json).map_err(SeccompError::Decode)?;
    let rules = profile.syscalls.unwrap_or_default();
    if profile.default_action.is_empty() && rules.is_empty() {
        return Ok(None);
    }
    let has_archs = profile
        .architectures
        .as_ref()
        .is_some_and(|a| !a.is_empty());
    let has_map = profile.arch_map.as_ref().is_some_and(|a| !a.is_empty());
    if has_archs && has_map {
        return Err(SeccompError::ArchitecturesAndArchMap);
    }
    let mut architectures = profile.architectures.unwrap_or_default();
    if let Some(native) = native_to_scmp(host.arch) {
        for entry in profile.arch_map.unwrap_or_default() {
            if entry.architecture == native {
                architectures.push(entry.architecture);
                architectures.extend(entry.sub_architectures.unwrap_or_default());
                break;
            }
        }
    }

    let kernel_at_least = |min: &str| -> Result<bool, SeccompError> {
        let (k, m) = parse_min_kernel(min)?;
        Ok(host.kernel.0 > k || (host.kernel.0 == k && host.kernel.1 >= m))
    };
    let mut syscalls = Vec::with_capacity(rules.len());
    'rules: for rule in rules {
        let names = if rule.name.is_empty() {
            rule.names.unwrap_or_default()
        } else {
            if rule.names.as_ref().is_some_and(|n| !n.is_empty()) {
                return Err(SeccompError::NameAndNames);
            }
            vec![rule.name]
        };
        if let Some(ex) = &rule.excludes {
            if ex.arches.iter().flatten().any(|a| a == host.arch) {
                continue 'rules;
            }
            if ex.caps.iter().flatten().any(|c| bounding.contains(c)) {
                continue 'rules;
            }
            if let Some(min) = ex.min_kernel.as_deref().filter(|m| !m.is_empty()) {
                if kernel_at_least(min)? {
                    continue 'rules;
                }
            }
        }
        if let Some(inc) = &rule.includes {
            if let Some(arches) = inc.arches.as_ref().filter(|a| !a.is_empty()) {
                if !arches.iter().any(|a| a == host.arch) {
                    continue 'rules;
                }
            }
            if inc.caps.iter().flatten().any(|c| !bounding.contains(c)) {
                continue 'rules;
            }
            if let Some(min) = inc.min_kernel.as_deref().filter(|m| !m.is_empty()) {
                if !kernel_at_least(min)? {
                    continue 'rules;
                }
            }
        }
        let mut syscall = LinuxSyscall::default();
        syscall.set_names(names);
        syscall.set_action(parse_action(&rule.action)?);
        syscall.set_errno_ret(rule.errno_ret);
        syscall.set_args(rule.args.filter(|a| !a.is_empty()));
        syscalls.push(syscall);
    }

    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(parse_action(&profile.default_action)?);
    seccomp.set_default_errno_ret(profile.default_errno_ret);
    seccomp.set_architectures((!architectures.is_empty()).then_some(architectures));
    seccomp.set_flags(profile.flags.filter(|f| !f.is_empty()));
    seccomp.set_syscalls(Some(syscalls));
    Ok(Some(seccomp))
}

/// Docker's default profile for a container whose bounding set is `bounding`.
///
/// # Errors
/// None in practice: the embedded profile is tested to load.
pub fn docker_default(bounding: CapSet, host: &SeccompHost) -> Result<LinuxSeccomp, SeccompError> {
    load_profile(DOCKER_DEFAULT_PROFILE, bounding, host)
        .map(|p| p.expect("Docker's default profile has a default action and rules"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps;

    fn host() -> SeccompHost {
        SeccompHost {
            arch: "amd64",
            kernel: (6, 1),
        }
    }

    fn default_caps() -> CapSet {
        caps::resolve(&[], &[], false, CapSet::ALL_KNOWN).unwrap()
    }

    fn allowed(seccomp: &LinuxSeccomp, name: &str) -> bool {
        seccomp.syscalls().iter().flatten().any(|s| {
            s.action() == LinuxSeccompAction::ScmpActAllow
                && s.args().is_none()
                && s.names().iter().any(|n| n == name)
        })
    }

    #[test]
    fn default_profile_denies_with_eperm_and_maps_amd64_archs() {
        let s = docker_default(default_caps(), &host()).unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().clone().unwrap(),
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
    }

    #[test]
    fn default_profile_blocks_namespace_syscalls_without_sys_admin() {
        let s = docker_default(default_caps(), &host()).unwrap();
        assert!(allowed(&s, "read"));
        assert!(!allowed(&s, "unshare"));
        assert!(!allowed(&s, "mount"));
        assert!(!allowed(&s, "keyctl"));
        // clone is allowed only without namespace flags; clone3 answers ENOSYS.
        let clone3 = s
            .syscalls()
            .iter()
            .flatten()
            .find(|r| r.names().iter().any(|n| n == "clone3"))
            .unwrap();
        assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3.errno_ret(), Some(38));
    }

    #[test]
    fn sys_admin_in_bounding_set_unlocks_its_rules() {
        let mut set = default_caps();
        set.0 |= 1 << caps::number("CAP_SYS_ADMIN").unwrap();
        let s = docker_default(set, &host()).unwrap();
        assert!(allowed(&s, "unshare"));
        assert!(allowed(&s, "mount"));
        assert!(allowed(&s, "clone3"));
    }

    #[test]
    fn min_kernel_and_arch_conditions_follow_the_host() {
        let old = SeccompHost {
            arch: "amd64",
            kernel: (4, 4),
        };
        let s = docker_default(default_caps(), &old).unwrap();
        assert!(!allowed(&s, "sync_file_range2") || cfg!(target_arch = "powerpc64"));
        // arch_prctl is amd64/x32/x86 only.
        assert!(allowed(&s, "arch_prctl"));
        let arm = SeccompHost {
            arch: "arm64",
            kernel: (6, 1),
        };
        let s = docker_default(default_caps(), &arm).unwrap();
        assert!(!allowed(&s, "arch_prctl"));
        assert_eq!(
            s.architectures().clone().unwrap(),
            vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
    }

    #[test]
    fn empty_profile_disables_seccomp() {
        assert!(
            load_profile("{}", default_caps(), &host())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn custom_profile_with_name_and_architectures() {
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#;
        let s = load_profile(json, default_caps(), &host())
            .unwrap()
            .unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
        let rule = &s.syscalls().as_ref().unwrap()[0];
        assert_eq!(rule.names(), &vec!["mkdir".to_string()]);
        assert_eq!(rule.errno_ret(), Some(13));
    }

    #[test]
    fn invalid_profiles_are_refused_in_dockers_words() {
        let err = load_profile("nope", default_caps(), &host()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Decoding seccomp profile failed")
        );
        let both = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],
            "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":[]}]}"#;
        assert!(matches!(
            load_profile(both, default_caps(), &host()),
            Err(SeccompError::ArchitecturesAndArchMap)
        ));
    }

    #[test]
    fn kernel_release_parsing_ignores_suffixes() {
        assert_eq!(parse_release("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(parse_release("3.12-1-amd64"), Some((3, 12)));
    }
}
