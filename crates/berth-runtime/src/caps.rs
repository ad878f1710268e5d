//! Capability names and Docker's rules for `--cap-add`, `--cap-drop` and `--privileged`.
//!
//! Docker (moby `oci/caps`) normalises names to upper case with a `CAP_` prefix, accepts
//! the magic value `ALL`, rejects names it does not know, and rejects known names the
//! daemon itself lacks ("not available in the current environment"). What "all" means is
//! the set the engine holds in its own effective set, not every capability the kernel
//! knows: on this host family root lacks `CAP_SYS_RESOURCE`, and asking for it would make
//! `capset` fail in the container's init.

use std::fmt;

/// Every capability the kernel knows, indexed by number (`CAP_CHOWN` is 0).
pub const KNOWN: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default set (moby `oci/caps/defaults.go`), in its order. As a mask:
/// `0x00000000a80425fb`.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A set of capabilities as a bit mask (bit N = capability number N), the form
/// `/proc/<pid>/status` shows.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    /// The set holding every capability the kernel knows.
    pub const ALL_KNOWN: CapSet = CapSet((1u64 << KNOWN.len()) - 1);

    /// Whether `name` (canonical `CAP_` form) is in the set.
    pub fn contains(self, name: &str) -> bool {
        number(name).is_some_and(|n| self.0 & (1 << n) != 0)
    }

    /// The canonical names in the set, by number.
    pub fn names(self) -> Vec<&'static str> {
        KNOWN
            .iter()
            .enumerate()
            .filter(|(n, _)| self.0 & (1 << n) != 0)
            .map(|(_, name)| *name)
            .collect()
    }

    fn insert(&mut self, name: &str) {
        if let Some(n) = number(name) {
            self.0 |= 1 << n;
        }
    }

    fn remove(&mut self, name: &str) {
        if let Some(n) = number(name) {
            self.0 &= !(1 << n);
        }
    }
}

impl fmt::Debug for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CapSet({:016x} {:?})", self.0, self.names())
    }
}

/// The capability's number, for a canonical name.
pub fn number(name: &str) -> Option<usize> {
    KNOWN.iter().position(|known| *known == name)
}

/// A `--cap-add`/`--cap-drop` value Docker would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// Not a capability at all.
    #[error("unknown capability: {0:?}")]
    Unknown(String),
    /// Known, but the engine does not hold it, so it cannot give it.
    #[error(
        "capability not supported by your kernel or not available in the current environment: {0:?}"
    )]
    Unavailable(String),
}

const ALL: &str = "ALL";

/// Normalises names as Docker does: upper case, `CAP_` prefix added, `ALL` kept.
///
/// # Errors
/// [`CapError::Unknown`] for a name that is not a capability, [`CapError::Unavailable`]
/// for one outside `available`.
pub fn normalize(names: &[String], available: CapSet) -> Result<Vec<String>, CapError> {
    names
        .iter()
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            if upper == ALL {
                return Ok(upper);
            }
            let canonical = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            if number(&canonical).is_none() {
                Err(CapError::Unknown(canonical))
            } else if !available.contains(&canonical) {
                Err(CapError::Unavailable(canonical))
            } else {
                Ok(canonical)
            }
        })
        .collect()
}

/// The container's capability set: Docker's `TweakCapabilities` over its default set.
/// `available` is what the engine holds (its effective set); privileged containers get
/// all of it.
///
/// # Errors
/// See [`normalize`].
pub fn resolve(
    add: &[String],
    drop: &[String],
    privileged: bool,
    available: CapSet,
) -> Result<CapSet, CapError> {
    if privileged {
        return Ok(available);
    }
    let mut set = CapSet::default();
    if add.is_empty() && drop.is_empty() {
        for name in DOCKER_DEFAULT {
            set.insert(name);
        }
        return Ok(set);
    }
    let drop = normalize(drop, available)?;
    let add = normalize(add, available)?;
    let has_all = |list: &[String]| list.iter().any(|c| c == ALL);
    if has_all(&add) {
        set = available;
        for name in &drop {
            set.remove(name);
        }
    } else if has_all(&drop) {
        for name in &add {
            set.insert(name);
        }
    } else {
        for name in DOCKER_DEFAULT {
            if !drop.iter().any(|d| d == name) {
                set.insert(name);
            }
        }
        for name in &add {
            set.insert(name);
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn docker_default_set_is_the_documented_mask() {
        let set = resolve(&[], &[], false, CapSet::ALL_KNOWN).unwrap();
        assert_eq!(set.0, 0x0000_0000_a804_25fb);
        assert_eq!(set.names().len(), 14);
    }

    #[test]
    fn cap_add_accepts_lowercase_and_missing_prefix() {
        let set = resolve(
            &strings(&["net_admin", "CAP_SYS_PTRACE"]),
            &[],
            false,
            CapSet::ALL_KNOWN,
        )
        .unwrap();
        assert!(set.contains("CAP_NET_ADMIN"));
        assert!(set.contains("CAP_SYS_PTRACE"));
        assert!(set.contains("CAP_CHOWN"));
    }

    #[test]
    fn cap_drop_all_keeps_only_added() {
        let set = resolve(
            &strings(&["chown"]),
            &strings(&["all"]),
            false,
            CapSet::ALL_KNOWN,
        )
        .unwrap();
        assert_eq!(set.names(), vec!["CAP_CHOWN"]);
        let none = resolve(&[], &strings(&["ALL"]), false, CapSet::ALL_KNOWN).unwrap();
        assert_eq!(none.0, 0);
    }

    #[test]
    fn cap_add_all_minus_drops_is_everything_available() {
        let available = CapSet(CapSet::ALL_KNOWN.0 & !(1 << 24));
        let set = resolve(
            &strings(&["ALL"]),
            &strings(&["NET_ADMIN"]),
            false,
            available,
        )
        .unwrap();
        assert!(!set.contains("CAP_NET_ADMIN"));
        assert!(!set.contains("CAP_SYS_RESOURCE"));
        assert!(set.contains("CAP_SYS_ADMIN"));
    }

    #[test]
    fn cap_drop_removes_from_default() {
        let set = resolve(
            &[],
            &strings(&["NET_RAW", "mknod"]),
            false,
            CapSet::ALL_KNOWN,
        )
        .unwrap();
        assert!(!set.contains("CAP_NET_RAW"));
        assert!(!set.contains("CAP_MKNOD"));
        assert_eq!(set.names().len(), 12);
    }

    #[test]
    fn privileged_gets_what_the_engine_holds() {
        let available = CapSet(0x0000_01ff_feff_ffff);
        assert_eq!(resolve(&[], &[], true, available).unwrap(), available);
    }

    #[test]
    fn unknown_and_unavailable_capabilities_are_refused_in_dockers_words() {
        let err = resolve(&strings(&["FOO"]), &[], false, CapSet::ALL_KNOWN).unwrap_err();
        assert_eq!(err.to_string(), r#"unknown capability: "CAP_FOO""#);
        let available = CapSet(CapSet::ALL_KNOWN.0 & !(1 << 24));
        let err = resolve(&strings(&["SYS_RESOURCE"]), &[], false, available).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE""#
        );
    }
}
