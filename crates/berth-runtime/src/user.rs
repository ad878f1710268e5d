//! `--user` resolution against the container's own /etc/passwd and /etc/group.
//!
//! The files belong to the image, so they are hostile input and their paths are
//! resolved inside the rootfs: the rootfs is opened once as a directory fd and each file
//! is opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so a symlinked
//! `/etc -> /host/etc` still lands inside the container. Nothing here calls glibc's
//! `getpwnam` (which may load NSS modules: Docker CVE-2019-14271). The parsing and the
//! matching rules follow runc's `libcontainer/user.GetExecUser`, which Docker uses, down
//! to its error messages.
//!
//! The same in-root resolution creates the working directory when it is missing, as
//! Docker does.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::spec::ResolvedUser;

/// Bigger passwd/group files than this are refused (they are read into memory).
const MAX_FILE: u64 = 16 << 20;

/// Why a user could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user name with no passwd entry.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    /// A group name with no group entry.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    /// A `--group-add` name with no group entry.
    #[error("Unable to find group {0}")]
    NoAdditionalGroup(String),
    /// A numeric ID outside 0..=2^31-1.
    #[error("uids and gids must be in range 0-2147483647")]
    Range,
    /// The rootfs or one of the files cannot be read.
    #[error("cannot read {path} in the container's root filesystem")]
    Read {
        /// The path inside the container.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Opens the rootfs as the anchor for in-root resolution.
///
/// # Errors
/// The rootfs cannot be opened as a directory.
pub fn open_root(rootfs: &Path) -> std::io::Result<OwnedFd> {
    rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)
}

fn in_root(flags: ResolveFlags) -> ResolveFlags {
    flags | ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Reads a file inside the root; `None` when it does not exist.
fn read_in_root(root: &OwnedFd, path: &str) -> Result<Option<String>, UserError> {
    let fd = match rustix::fs::openat2(
        root,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        in_root(ResolveFlags::empty()),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
        Err(e) => {
            return Err(UserError::Read {
                path: path.to_string(),
                source: e.into(),
            });
        }
    };
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(|source| UserError::Read {
        path: path.to_string(),
        source,
    })?;
    if !meta.is_file() {
        // A FIFO or device named /etc/passwd must not block or feed us forever.
        return Ok(None);
    }
    let mut text = String::new();
    let mut bytes = Vec::new();
    file.take(MAX_FILE)
        .read_to_end(&mut bytes)
        .map_err(|source| UserError::Read {
            path: path.to_string(),
            source,
        })?;
    text.push_str(&String::from_utf8_lossy(&bytes));
    Ok(Some(text))
}

fn parse_id(s: &str) -> Option<u32> {
    s.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| u32::try_from(n).ok())
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2).and_then(|s| parse_id(s)).unwrap_or(0),
                gid: f.get(3).and_then(|s| parse_id(s)).unwrap_or(0),
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2).and_then(|s| parse_id(s)).unwrap_or(0),
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

const MAX_ID: u64 = (1 << 31) - 1;

fn numeric(s: &str) -> Option<Result<u32, UserError>> {
    let n: i64 = s.parse().ok()?;
    Some(if (0..=MAX_ID as i64).contains(&n) {
        Ok(n as u32)
    } else {
        Err(UserError::Range)
    })
}

/// Resolves `spec` ("", "uid", "uid:gid", "name", "name:group") and `--group-add`
/// entries against passwd and group contents (`None` when a file is missing), with
/// runc's `GetExecUser` rules.
fn resolve_with(
    spec: &str,
    group_add: &[String],
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, UserError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, ""),
    };
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let groups = group.map(parse_group).unwrap_or_default();
    let uid_arg = numeric(user_arg).transpose()?;
    let gid_arg = numeric(group_arg).transpose()?;

    let mut out = ResolvedUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".to_string(),
    };
    let matched = users.iter().find(|u| {
        if user_arg.is_empty() {
            u.uid == 0
        } else if let Some(uid) = uid_arg {
            u.uid == uid
        } else {
            u.name == user_arg
        }
    });
    let mut matched_name = None;
    if let Some(u) = matched {
        matched_name = Some(u.name.as_str());
        out.uid = u.uid;
        out.gid = u.gid;
        out.home = u.home.clone();
    } else if !user_arg.is_empty() {
        match uid_arg {
            Some(uid) => out.uid = uid,
            None => return Err(UserError::NoUser(user_arg.to_string())),
        }
    }

    let mut sgids = Vec::new();
    if !group_arg.is_empty() {
        let found = groups.iter().find(|g| match gid_arg {
            Some(gid) => g.gid == gid,
            None => g.name == group_arg,
        });
        match (found, gid_arg) {
            (Some(g), _) => out.gid = g.gid,
            (None, Some(gid)) => out.gid = gid,
            (None, None) => return Err(UserError::NoGroup(group_arg.to_string())),
        }
    } else if let Some(name) = matched_name {
        sgids = groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == name))
            .map(|g| g.gid)
            .collect();
    }

    let mut added = Vec::with_capacity(group_add.len());
    for g in group_add {
        if let Some(entry) = groups.iter().find(|e| &e.name == g) {
            added.push(entry.gid);
        } else {
            match numeric(g) {
                Some(gid) => added.push(gid?),
                None => return Err(UserError::NoAdditionalGroup(g.clone())),
            }
        }
    }

    // Docker: the primary GID first, then the supplementary ones, then --group-add.
    out.additional_gids = std::iter::once(out.gid).chain(sgids).chain(added).collect();
    if out.home.is_empty() {
        out.home = "/".to_string();
    }
    Ok(out)
}

/// Resolves `--user` and `--group-add` for a container whose root is `root` (from
/// [`open_root`]).
///
/// # Errors
/// [`UserError`]: an unknown user or group name (in Docker's words), an ID out of range,
/// an unreadable passwd or group file.
pub fn resolve(
    root: &OwnedFd,
    spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser, UserError> {
    let passwd = read_in_root(root, "/etc/passwd")?;
    let group = read_in_root(root, "/etc/group")?;
    resolve_with(spec, group_add, passwd.as_deref(), group.as_deref())
}

/// Whether `path` names a directory inside the root (symlinks resolved in it).
///
/// # Errors
/// Why not: `ENOENT`, `ENOTDIR`, ...
pub fn dir_in_root(root: &OwnedFd, path: &str) -> std::io::Result<()> {
    rustix::fs::openat2(
        root,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        in_root(ResolveFlags::empty()),
    )?;
    Ok(())
}

/// Creates `path` (absolute, inside the container) and its missing parents, resolving
/// every existing component inside `root`. New directories are mode 0755, owned by
/// root, as Docker creates a missing working directory.
///
/// # Errors
/// A component exists and is not a directory, or the fs refuses.
pub fn ensure_dir(root: &OwnedFd, path: &str) -> std::io::Result<()> {
    let open_dir = |base: &OwnedFd, p: &str| {
        rustix::fs::openat2(
            base,
            p,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            in_root(ResolveFlags::empty()),
        )
    };
    match open_dir(root, path) {
        Ok(_) => return Ok(()),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let components: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    // Find the deepest existing prefix, then create the rest below it, one component
    // at a time from the parent's fd (never by joined path).
    let mut existing = 0;
    let mut dir = rustix::io::dup(root)?;
    for i in (0..=components.len()).rev() {
        let prefix = format!("/{}", components[..i].join("/"));
        match open_dir(root, &prefix) {
            Ok(fd) => {
                dir = fd;
                existing = i;
                break;
            }
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    for name in &components[existing..] {
        if *name == ".." {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "working directory contains '..' below a missing directory",
            ));
        }
        match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        dir = rustix::fs::openat2(
            &dir,
            *name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root,alice\nalice:x:1000:\naudio:x:29:alice\n";

    fn r(spec: &str) -> Result<ResolvedUser, UserError> {
        resolve_with(spec, &[], Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn empty_user_is_root_with_its_groups() {
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        assert_eq!(u.additional_gids, vec![0, 10]);
        assert_eq!(u.home, "/root");
    }

    #[test]
    fn name_resolves_uid_gid_home_and_supplementary_groups() {
        let u = r("alice").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![1000, 10, 29]);
        assert_eq!(u.home, "/home/alice");
    }

    #[test]
    fn numeric_user_without_entry_is_accepted() {
        let u = r("1234:1234").unwrap();
        assert_eq!((u.uid, u.gid), (1234, 1234));
        assert_eq!(u.additional_gids, vec![1234]);
        assert_eq!(u.home, "/");
    }

    #[test]
    fn explicit_group_replaces_gid_and_drops_supplementary_groups() {
        let u = r("alice:audio").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 29));
        assert_eq!(u.additional_gids, vec![29]);
    }

    #[test]
    fn unknown_names_fail_in_dockers_words() {
        assert_eq!(
            r("nobody2").unwrap_err().to_string(),
            "unable to find user nobody2: no matching entries in passwd file"
        );
        assert_eq!(
            r("alice:nogroup").unwrap_err().to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        assert!(matches!(r("4294967296"), Err(UserError::Range)));
    }

    #[test]
    fn missing_passwd_still_allows_numeric_users() {
        let u = resolve_with("1000:1000", &[], None, None).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert!(resolve_with("alice", &[], None, None).is_err());
    }

    #[test]
    fn group_add_by_name_and_number() {
        let u = resolve_with(
            "alice",
            &["audio".into(), "4242".into()],
            Some(PASSWD),
            Some(GROUP),
        )
        .unwrap();
        assert_eq!(u.additional_gids, vec![1000, 10, 29, 29, 4242]);
        assert!(resolve_with("", &["nope".into()], Some(PASSWD), Some(GROUP)).is_err());
    }

    #[test]
    fn passwd_is_read_inside_the_root_even_through_absolute_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/passwd"), PASSWD).unwrap();
        // /etc -> /real must resolve to <root>/real, not the host's /real.
        std::os::unix::fs::symlink("/real", dir.path().join("etc")).unwrap();
        let root = open_root(dir.path()).unwrap();
        let u = resolve(&root, "alice", &[]).unwrap();
        assert_eq!(u.uid, 1000);
        // An escape attempt stays inside: ../../etc/passwd is <root>/etc/passwd.
        let text = read_in_root(&root, "../../../etc/passwd").unwrap();
        assert_eq!(text.as_deref(), Some(PASSWD));
    }

    #[test]
    fn ensure_dir_creates_missing_components_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("srv")).unwrap();
        std::os::unix::fs::symlink("/srv", dir.path().join("app")).unwrap();
        let root = open_root(dir.path()).unwrap();
        ensure_dir(&root, "/app/x/y").unwrap();
        assert!(dir.path().join("srv/x/y").is_dir());
        ensure_dir(&root, "/app/x/y").unwrap();
    }
}
