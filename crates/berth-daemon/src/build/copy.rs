//! COPY and ADD as a tarball: what a step copies is written as one tar stream whose
//! names are the final paths inside the image, then extracted into the step's root
//! by the same code as `docker cp` (paths resolved inside the root, never on the
//! host), and the root's upper directory becomes the step's layer.
//!
//! Docker's rules, from its classic builder (`builder/dockerfile/copy.go`):
//! - a relative destination is taken from the WORKDIR; a destination ending in `/`
//!   (or one that is a directory in the image) receives sources by their base name;
//!   several sources need such a directory destination;
//! - a directory source is copied as its contents, not as itself;
//! - files from the context belong to root (or `--chown`), keep their permission
//!   bits (or `--chmod`) and their modification time; `COPY --from` keeps owners;
//! - ADD extracts a local tar archive (plain, gzip or zstd) into the destination
//!   directory instead of copying the archive file.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_build::context::{EntryKind, SourceMatch};
use berth_build::ignore::clean_path;
use berth_store::layer;

use crate::DaemonError;

/// Where copied sources go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Dest {
    /// Absolute, cleaned, no trailing slash (`/` for the root).
    pub path: String,
    /// Sources go inside it by base name.
    pub is_dir: bool,
}

impl Dest {
    /// Docker's `normalizeDest`: relative to `workdir`, a trailing `/` (or `.`)
    /// meaning a directory.
    pub(super) fn new(dest: &str, workdir: &str) -> Dest {
        let dir_syntax = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
        let joined = if dest.starts_with('/') {
            dest.to_string()
        } else {
            format!("{}/{dest}", if workdir.is_empty() { "/" } else { workdir })
        };
        Dest {
            path: absolute(&joined),
            is_dir: dir_syntax,
        }
    }

    fn join(&self, rel: &str) -> String {
        if rel.is_empty() {
            return self.path.clone();
        }
        absolute(&format!("{}/{rel}", self.path))
    }
}

/// `p` cleaned lexically and rooted at `/`.
pub(super) fn absolute(p: &str) -> String {
    let cleaned = clean_path(p.trim_start_matches('/'));
    if cleaned == "." || cleaned.is_empty() {
        "/".to_string()
    } else {
        format!(
            "/{}",
            cleaned.trim_start_matches("../").trim_start_matches('/')
        )
    }
}

/// Owner and mode applied to copied entries.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Attrs {
    /// `--chown` (or root for context copies); `None` keeps the source's owners.
    pub owner: Option<(u32, u32)>,
    /// `--chmod` permission bits.
    pub chmod: Option<u32>,
}

fn copy_err(what: &str) -> impl Fn(std::io::Error) -> DaemonError + '_ {
    move |e| DaemonError::internal(format!("failed to copy files: {what}: {e}"))
}

/// Writes tar entries for context sources (per source, what it matched) to `out`.
///
/// # Errors
/// `Internal` when a context file cannot be read or the tarball written.
pub(super) fn write_context_sources<W: Write>(
    out: &mut tar::Builder<W>,
    root: &Path,
    sources: &[(String, Vec<SourceMatch>)],
    dest: &Dest,
    attrs: Attrs,
    extract_archives: bool,
) -> Result<(), DaemonError> {
    for (_, matches) in sources {
        for m in matches {
            match m.entry.kind {
                EntryKind::Dir => {
                    let prefix = if m.entry.path.is_empty() {
                        String::new()
                    } else {
                        format!("{}/", m.entry.path)
                    };
                    for c in &m.contents {
                        let rel = c.path.strip_prefix(&prefix).unwrap_or(&c.path);
                        append_context_entry(out, root, &c.path, &dest.join(rel), attrs)?;
                    }
                }
                _ => {
                    let full = root.join(&m.entry.path);
                    if extract_archives && m.entry.kind == EntryKind::File && is_archive(&full) {
                        extract_archive(out, &full, dest, attrs)?;
                        continue;
                    }
                    let target = if dest.is_dir {
                        let base = m.entry.path.rsplit('/').next().unwrap_or(&m.entry.path);
                        dest.join(base)
                    } else {
                        dest.path.clone()
                    };
                    append_context_entry(out, root, &m.entry.path, &target, attrs)?;
                }
            }
        }
    }
    Ok(())
}

fn header_for(md: &std::fs::Metadata, attrs: Attrs, default_owner: (u32, u32)) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let (uid, gid) = attrs.owner.unwrap_or(default_owner);
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mode(attrs.chmod.unwrap_or(md.mode() & 0o7777));
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn append_context_entry<W: Write>(
    out: &mut tar::Builder<W>,
    root: &Path,
    rel: &str,
    target: &str,
    attrs: Attrs,
) -> Result<(), DaemonError> {
    let full = root.join(rel);
    let md = std::fs::symlink_metadata(&full).map_err(copy_err(rel))?;
    let name = target.trim_start_matches('/');
    if name.is_empty() {
        return Ok(());
    }
    // The docker CLI sends every context file as 0:0; a raw API client may not.
    let mut h = header_for(&md, attrs, (0, 0));
    let ft = md.file_type();
    if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        out.append_data(&mut h, format!("{name}/"), std::io::empty())
            .map_err(copy_err(rel))?;
    } else if ft.is_symlink() {
        let link = std::fs::read_link(&full).map_err(copy_err(rel))?;
        h.set_entry_type(tar::EntryType::Symlink);
        out.append_link(&mut h, name, link).map_err(copy_err(rel))?;
    } else if ft.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(md.len());
        let f = File::open(&full).map_err(copy_err(rel))?;
        out.append_data(&mut h, name, f).map_err(copy_err(rel))?;
    }
    // Fifos, sockets and devices in a context are skipped, as the docker CLI does.
    Ok(())
}

/// Whether `path` is a tar archive, plain or compressed (what ADD extracts).
fn is_archive(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let Ok((_, mut r)) = layer::decompress(BufReader::new(f)) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut filled = 0;
    while filled < head.len() {
        match r.read(&mut head[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    filled == 512 && (&head[257..262] == b"ustar" || is_v7_header(&head))
}

/// A pre-POSIX tar header: no magic, but a valid checksum.
fn is_v7_header(head: &[u8; 512]) -> bool {
    let field = &head[148..156];
    let text: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = head
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    stored == sum && head[0] != 0
}

/// ADD of a local archive: its entries go under the destination directory.
fn extract_archive<W: Write>(
    out: &mut tar::Builder<W>,
    path: &Path,
    dest: &Dest,
    attrs: Attrs,
) -> Result<(), DaemonError> {
    let f = File::open(path).map_err(copy_err("archive"))?;
    let (_, r) = layer::decompress(BufReader::new(f)).map_err(copy_err("archive"))?;
    let dir = Dest {
        path: dest.path.clone(),
        is_dir: true,
    };
    rewrite_entries(out, r, &dir, attrs, |name| Some(name.to_string()))
}

/// Copies the entries of the tarball `tar` to `out`, each renamed by `rename` (a
/// path relative to `dest`, `None` to skip) and placed under `dest`.
pub(super) fn rewrite_entries<W: Write>(
    out: &mut tar::Builder<W>,
    tar: impl Read,
    dest: &Dest,
    attrs: Attrs,
    rename: impl Fn(&str) -> Option<String>,
) -> Result<(), DaemonError> {
    let bad = |e: std::io::Error| DaemonError::invalid(format!("failed to copy files: {e}"));
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let cleaned = clean_path(raw.trim_start_matches('/'));
        if cleaned == "." || cleaned == ".." || cleaned.starts_with("../") {
            continue;
        }
        let Some(rel) = rename(&cleaned) else {
            continue;
        };
        let target = dest.join(&rel);
        let name = target.trim_start_matches('/').to_string();
        if name.is_empty() {
            continue;
        }
        let mut h = entry.header().clone();
        if let Some((uid, gid)) = attrs.owner {
            h.set_uid(uid.into());
            h.set_gid(gid.into());
        }
        if let Some(mode) = attrs.chmod {
            h.set_mode(mode);
        }
        let kind = h.entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(bad)?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let link = if kind.is_hard_link() {
                // Hardlink targets name entries of the same archive: move them too.
                let cleaned = clean_path(link.trim_start_matches('/'));
                match rename(&cleaned) {
                    Some(r) => dest.join(&r).trim_start_matches('/').to_string(),
                    None => continue,
                }
            } else {
                link
            };
            h.set_size(0);
            out.append_link(&mut h, &name, &link).map_err(bad)?;
        } else if kind.is_dir() {
            out.append_data(&mut h, format!("{name}/"), std::io::empty())
                .map_err(bad)?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            out.append_data(&mut h, &name, &mut entry).map_err(bad)?;
        } else if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        } else {
            out.append_data(&mut h, &name, std::io::empty())
                .map_err(bad)?;
        }
    }
    Ok(())
}

/// The uid and gid of `user[:group]` as the image's `/etc/passwd` and `/etc/group`
/// (given as text) define them; numbers are taken as they are.
///
/// # Errors
/// `InvalidArgument` for a name the files do not define.
pub(super) fn resolve_chown(
    spec: &str,
    passwd: &str,
    group: &str,
) -> Result<(u32, u32), DaemonError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |text: &str, name: &str, field: usize| -> Option<(u32, Option<u32>)> {
        text.lines().find_map(|l| {
            let parts: Vec<&str> = l.split(':').collect();
            (parts.first() == Some(&name) && parts.len() > field).then(|| {
                (
                    parts[2].parse().unwrap_or(0),
                    parts.get(3).and_then(|g| g.parse().ok()),
                )
            })
        })
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => lookup(passwd, user, 2).ok_or_else(|| {
            DaemonError::invalid(format!(
                "unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"
            ))
        })?,
    };
    let gid = match grp {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                lookup(group, g, 2)
                    .ok_or_else(|| {
                        DaemonError::invalid(format!(
                            "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                        ))
                    })?
                    .0
            }
        },
    };
    Ok((uid, gid))
}

/// `--chmod=755`: octal permission bits.
///
/// # Errors
/// `InvalidArgument` for anything else.
pub(super) fn parse_chmod(s: &str) -> Result<u32, DaemonError> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| DaemonError::invalid(format!("invalid chmod parameter: {s}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_is_relative_to_workdir_and_a_trailing_slash_means_a_directory() {
        assert_eq!(
            Dest::new("app/", "/srv"),
            Dest {
                path: "/srv/app".into(),
                is_dir: true
            }
        );
        assert_eq!(
            Dest::new("/x/../y", "/srv"),
            Dest {
                path: "/y".into(),
                is_dir: false
            }
        );
        assert_eq!(Dest::new(".", "").path, "/");
        assert!(Dest::new(".", "/w").is_dir);
    }

    #[test]
    fn chown_resolves_names_through_the_image_files() {
        let passwd = "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n";
        let group = "root:x:0:\nstaff:x:50:\n";
        assert_eq!(resolve_chown("www", passwd, group).unwrap(), (33, 34));
        assert_eq!(resolve_chown("www:staff", passwd, group).unwrap(), (33, 50));
        assert_eq!(
            resolve_chown("1000:1001", passwd, group).unwrap(),
            (1000, 1001)
        );
        assert_eq!(resolve_chown("1000", passwd, group).unwrap(), (1000, 1000));
        assert!(resolve_chown("nobody", passwd, group).is_err());
        assert!(parse_chmod("0755").is_ok() && parse_chmod("9").is_err());
    }

    #[test]
    fn context_files_become_entries_at_their_destination() {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir(ctx.path().join("dir")).unwrap();
        std::fs::write(ctx.path().join("dir/a"), b"A").unwrap();
        std::fs::write(ctx.path().join("f"), b"F").unwrap();
        let ignore = berth_build::ignore::IgnoreMatcher::new::<&str>(&[]).unwrap();
        let sources: Vec<_> = ["dir", "f"]
            .iter()
            .map(|s| {
                (
                    s.to_string(),
                    berth_build::context::source_entries(ctx.path(), s, &ignore).unwrap(),
                )
            })
            .collect();
        let mut out = tar::Builder::new(Vec::new());
        let attrs = Attrs {
            owner: Some((5, 6)),
            chmod: None,
        };
        write_context_sources(
            &mut out,
            ctx.path(),
            &sources,
            &Dest::new("/d/", "/"),
            attrs,
            false,
        )
        .unwrap();
        let data = out.into_inner().unwrap();
        let mut archive = tar::Archive::new(&data[..]);
        let names: Vec<(String, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(names, [("d/a".to_string(), 5), ("d/f".to_string(), 5)]);
    }
}
