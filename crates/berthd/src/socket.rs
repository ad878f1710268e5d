//! The API socket: created `0660`, group-owned, never briefly open to others.
//!
//! The socket is bound inside a fresh `0700` directory beside its final path, given
//! its mode and group there, then renamed into place. So no client can connect
//! before the permissions are right (binding in place would leave a window with the
//! umask's mode), and the rename replaces a stale socket from a crashed daemon
//! atomically. A socket some live process still answers on is never replaced.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tokio::net::UnixListener;

/// Binds `path` with mode 0660 and group `gid` (root's group when `None`).
///
/// # Errors
/// A live listener already answers at `path`, `path` exists and is not a socket, or
/// a step of creating the socket fails.
pub(crate) fn bind(path: &Path, gid: Option<u32>) -> anyhow::Result<UnixListener> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!("another daemon is already serving on {}", path.display());
            }
            tracing::info!(path = %path.display(), "replacing stale socket");
        }
        Ok(_) => bail!("{} exists and is not a socket", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    }

    let staging = parent.join(format!(".berthd-bind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let result = bind_in(&staging, path, gid);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn bind_in(staging: &Path, path: &Path, gid: Option<u32>) -> anyhow::Result<UnixListener> {
    let temp: PathBuf = staging.join("sock");
    let listener =
        UnixListener::bind(&temp).with_context(|| format!("cannot bind {}", temp.display()))?;
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot chmod {}", temp.display()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(&temp, None, Some(gid))
            .with_context(|| format!("cannot give {} to group {gid}", temp.display()))?;
    }
    std::fs::rename(&temp, path)
        .with_context(|| format!("cannot move socket to {}", path.display()))?;
    Ok(listener)
}

/// The group id for the socket. A number is taken as is; a name is looked up in
/// `/etc/group` (read directly: berthd links no NSS). dockerd's rule for absence: the
/// default group (`docker`) may be missing, and the socket then stays root's; a group
/// the user named must exist.
///
/// # Errors
/// An explicitly named group that does not exist.
pub(crate) fn resolve_group(name: &str, explicit: bool) -> anyhow::Result<Option<u32>> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(Some(gid));
    }
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    match gid_in_group_file(&groups, name) {
        Some(gid) => Ok(Some(gid)),
        None if explicit => bail!("group {name} not found"),
        None => {
            tracing::debug!(group = name, "socket group not found, socket stays root's");
            Ok(None)
        }
    }
}

fn gid_in_group_file(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn group_file_lookup_finds_gid_by_name() {
        let text = "root:x:0:\ndocker:x:105:alice\nstaff:x:50:\n";
        assert_eq!(gid_in_group_file(text, "docker"), Some(105));
        assert_eq!(gid_in_group_file(text, "dock"), None);
        assert_eq!(resolve_group("1234", true).unwrap(), Some(1234));
        assert!(resolve_group("no-such-group-berth", true).is_err());
        assert_eq!(resolve_group("no-such-group-berth", false).unwrap(), None);
    }

    #[tokio::test]
    async fn bind_creates_0660_socket_and_replaces_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/berth.sock");
        let first = bind(&path, None).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o660);
        // A live listener is never replaced.
        assert!(
            bind(&path, None)
                .unwrap_err()
                .to_string()
                .contains("already serving")
        );
        drop(first);
        // Dropping the listener leaves the file behind, as a crash would.
        let _second = bind(&path, None).unwrap();
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_socket()
        );
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "staging dir left behind"
        );
    }

    #[test]
    fn bind_refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.sock");
        std::fs::write(&path, "").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(async { bind(&path, None).unwrap_err() });
        assert!(err.to_string().contains("not a socket"));
    }
}
