//! The build context on disk: walking it with `.dockerignore`, and the checksum of the
//! files an ADD or COPY takes from it.
//!
//! The checksum covers what the copy would produce and nothing else: each file's path
//! (relative to the context), type, permission bits, size, symlink target and content
//! digest. Like Docker's classic builder (tarsum without mtime) it leaves out the
//! modification time, so `touch` alone keeps the cache, and it leaves out the owner,
//! because the docker CLI sends every context file as 0:0. Paths are never followed
//! out of the context: sources are cleaned lexically and symlinks on the way to a
//! source are resolved with the context directory as root; symlinks inside a copied
//! directory are hashed as links, never followed.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::ignore::{IgnoreError, IgnoreMatcher, clean_path, path_match};

/// What kind of file a context entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// A fifo, socket or device.
    Other,
}

/// One file of the build context.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContextEntry {
    /// Path relative to the context root, `/`-separated.
    pub path: String,
    /// Its kind.
    pub kind: EntryKind,
    /// Permission bits (and setuid/setgid/sticky).
    pub mode: u32,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Target of a symlink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

/// Reading the context failed.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A filesystem call failed.
    #[error("cannot read {path} in the build context")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A source that leaves the context (`../x`).
    #[error("forbidden path outside the build context: {0} ()")]
    OutsideContext(String),
    /// A source that names nothing.
    #[error("{0:?}: not found")]
    NotFound(String),
    /// A symlink loop on the way to a source.
    #[error("too many levels of symbolic links resolving {0:?}")]
    SymlinkLoop(String),
    /// A malformed wildcard.
    #[error("bad source pattern")]
    Pattern(#[from] IgnoreError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn entry(root: &Path, rel: &str) -> Result<ContextEntry, ContextError> {
    let full = root.join(rel);
    let md = std::fs::symlink_metadata(&full).map_err(io_err(&full))?;
    let ft = md.file_type();
    let (kind, link_target) = if ft.is_symlink() {
        let t = std::fs::read_link(&full).map_err(io_err(&full))?;
        (EntryKind::Symlink, Some(t.to_string_lossy().into_owned()))
    } else if ft.is_dir() {
        (EntryKind::Dir, None)
    } else if ft.is_file() {
        (EntryKind::File, None)
    } else {
        (EntryKind::Other, None)
    };
    Ok(ContextEntry {
        path: rel.to_string(),
        kind,
        mode: md.mode() & 0o7777,
        size: if kind == EntryKind::Dir { 0 } else { md.size() },
        link_target,
    })
}

/// Lists the context under `root` that `.dockerignore` keeps, sorted by path, without
/// following symlinks. Excluded directories are not descended into unless an exception
/// could re-include something inside them.
///
/// # Errors
/// [`ContextError::Io`] when a directory or file cannot be read.
pub fn walk_context(
    root: &Path,
    ignore: &IgnoreMatcher,
) -> Result<Vec<ContextEntry>, ContextError> {
    let mut out = Vec::new();
    walk_dir(root, "", ignore, &mut out)?;
    Ok(out)
}

fn walk_dir(
    root: &Path,
    rel_dir: &str,
    ignore: &IgnoreMatcher,
    out: &mut Vec<ContextEntry>,
) -> Result<(), ContextError> {
    let dir = root.join(rel_dir);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .map(|e| {
            e.map(|e| e.file_name().to_string_lossy().into_owned())
                .map_err(io_err(&dir))
        })
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let rel = if rel_dir.is_empty() {
            name
        } else {
            format!("{rel_dir}/{name}")
        };
        let e = entry(root, &rel)?;
        let excluded = ignore.is_excluded(&rel);
        if !excluded {
            out.push(e.clone());
        }
        if e.kind == EntryKind::Dir && (!excluded || !ignore.can_skip_dir(&rel)) {
            walk_dir(root, &rel, ignore, out)?;
        }
    }
    Ok(())
}

/// Resolves `rel` inside `root` as if `root` were `/`: `..` stops at the root and
/// symlinks (absolute or relative) are followed within it. The final component is
/// followed too, as Docker follows a source that is a symlink.
fn resolve_in_root(root: &Path, rel: &str) -> Result<String, ContextError> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = rel
        .split('/')
        .filter(|p| !p.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        resolved.push(part);
        let here = root.join(resolved.join("/"));
        let Ok(md) = std::fs::symlink_metadata(&here) else {
            continue;
        };
        if md.file_type().is_symlink() {
            links += 1;
            if links > 255 {
                return Err(ContextError::SymlinkLoop(rel.to_string()));
            }
            let target = std::fs::read_link(&here).map_err(io_err(&here))?;
            let target = target.to_string_lossy();
            resolved.pop();
            if target.starts_with('/') {
                resolved.clear();
            }
            pending.extend(
                target
                    .split('/')
                    .filter(|p| !p.is_empty())
                    .rev()
                    .map(str::to_string),
            );
        }
    }
    Ok(resolved.join("/"))
}

/// One thing an ADD/COPY source names: a file, symlink or directory of the context.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceMatch {
    /// The matched path itself. A directory is copied as its contents, so its own mode
    /// does not count in the checksum.
    pub entry: ContextEntry,
    /// For a directory: everything under it that `.dockerignore` keeps, sorted.
    pub contents: Vec<ContextEntry>,
}

/// What one ADD/COPY source names, with ignored files left out: a file, a directory
/// with everything under it, or every match of a wildcard (`*`, `?`, `[…]` per path
/// level, as Go's `filepath.Match`).
///
/// # Errors
/// [`ContextError`]: the source leaves the context, matches nothing, or cannot be read.
pub fn source_entries(
    root: &Path,
    source: &str,
    ignore: &IgnoreMatcher,
) -> Result<Vec<SourceMatch>, ContextError> {
    let cleaned = clean_path(source.trim_start_matches('/'));
    if cleaned == ".." || cleaned.starts_with("../") {
        return Err(ContextError::OutsideContext(source.to_string()));
    }
    let not_found = || ContextError::NotFound(format!("/{cleaned}"));
    let contents_of = |all: &[ContextEntry], dir: &str| -> Vec<ContextEntry> {
        let under = format!("{dir}/");
        all.iter()
            .filter(|c| dir.is_empty() || c.path.starts_with(&under))
            .cloned()
            .collect()
    };
    let mut out = Vec::new();
    if cleaned.contains(['*', '?', '[']) {
        let all = walk_context(root, ignore)?;
        for e in &all {
            if path_match(&cleaned, &e.path)? {
                let contents = if e.kind == EntryKind::Dir {
                    contents_of(&all, &e.path)
                } else {
                    Vec::new()
                };
                out.push(SourceMatch {
                    entry: e.clone(),
                    contents,
                });
            }
        }
        if out.is_empty() {
            return Err(not_found());
        }
        return Ok(out);
    }
    let rel = if cleaned == "." {
        String::new()
    } else {
        resolve_in_root(root, &cleaned)?
    };
    if !rel.is_empty() && ignore.is_excluded(&rel) {
        return Err(not_found());
    }
    let full = root.join(&rel);
    let md = match std::fs::symlink_metadata(&full) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(io_err(&full)(e)),
    };
    if md.is_dir() {
        let all = walk_context(root, ignore)?;
        let entry = if rel.is_empty() {
            ContextEntry {
                path: String::new(),
                kind: EntryKind::Dir,
                mode: 0,
                size: 0,
                link_target: None,
            }
        } else {
            entry(root, &rel)?
        };
        out.push(SourceMatch {
            contents: contents_of(&all, &rel),
            entry,
        });
    } else {
        out.push(SourceMatch {
            entry: entry(root, &rel)?,
            contents: Vec::new(),
        });
    }
    Ok(out)
}

fn file_digest(path: &Path) -> Result<String, ContextError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The checksum of the files of ADD/COPY sources, and the files themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSetChecksum {
    /// `sha256:<hex>` over every source's files (see the module docs for what counts).
    pub digest: String,
    /// Per source, in order, what it names.
    pub sources: Vec<(String, Vec<SourceMatch>)>,
}

fn hash_entry(h: &mut Sha256, root: &Path, e: &ContextEntry) -> Result<(), ContextError> {
    let content = match e.kind {
        EntryKind::File => file_digest(&root.join(&e.path))?,
        _ => String::new(),
    };
    let line = format!(
        "{}\0{:?}\0{:o}\0{}\0{}\0{}\n",
        e.path,
        e.kind,
        e.mode,
        e.size,
        e.link_target.as_deref().unwrap_or(""),
        content
    );
    h.update(line.as_bytes());
    Ok(())
}

/// Computes the checksum of what `sources` (already substituted) take from the context
/// at `root`.
///
/// # Errors
/// [`ContextError`] as [`source_entries`], or a file that cannot be read.
pub fn checksum_sources(
    root: &Path,
    sources: &[String],
    ignore: &IgnoreMatcher,
) -> Result<FileSetChecksum, ContextError> {
    let mut h = Sha256::new();
    let mut per_source = Vec::new();
    for src in sources {
        let matches = source_entries(root, src, ignore)?;
        h.update(b"source\0");
        h.update(src.as_bytes());
        h.update(b"\n");
        for m in &matches {
            if m.entry.kind == EntryKind::Dir {
                h.update(format!("dir\0{}\n", m.entry.path).as_bytes());
                for e in &m.contents {
                    hash_entry(&mut h, root, e)?;
                }
            } else {
                hash_entry(&mut h, root, &m.entry)?;
            }
        }
        per_source.push((src.clone(), matches));
    }
    Ok(FileSetChecksum {
        digest: format!("sha256:{}", hex::encode(h.finalize())),
        sources: per_source,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn ctx() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("src/sub")).unwrap();
        std::fs::create_dir_all(p.join("node_modules/x")).unwrap();
        std::fs::write(p.join("src/a.txt"), "a").unwrap();
        std::fs::write(p.join("src/sub/b.txt"), "b").unwrap();
        std::fs::write(p.join("src/c.md"), "c").unwrap();
        std::fs::write(p.join("node_modules/x/i.js"), "i").unwrap();
        std::fs::write(p.join("top.txt"), "t").unwrap();
        symlink("/src/a.txt", p.join("abs-link")).unwrap();
        d
    }

    #[test]
    fn walk_applies_dockerignore_and_skips_excluded_dirs() {
        let d = ctx();
        let ig = IgnoreMatcher::from_dockerignore("node_modules\n*.md\n**/*.md\n").unwrap();
        let paths: Vec<String> = walk_context(d.path(), &ig)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "abs-link",
                "src",
                "src/a.txt",
                "src/sub",
                "src/sub/b.txt",
                "top.txt"
            ]
        );
    }

    #[test]
    fn checksum_ignores_mtime_but_not_content_or_mode() {
        let d = ctx();
        let ig = IgnoreMatcher::default();
        let srcs = vec!["src".to_string()];
        let a = checksum_sources(d.path(), &srcs, &ig).unwrap();
        // Rewriting the same content (new mtime) keeps the checksum.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(d.path().join("src/a.txt"), "a").unwrap();
        assert_eq!(
            checksum_sources(d.path(), &srcs, &ig).unwrap().digest,
            a.digest
        );
        std::fs::write(d.path().join("src/a.txt"), "A").unwrap();
        let b = checksum_sources(d.path(), &srcs, &ig).unwrap();
        assert_ne!(b.digest, a.digest);
        std::fs::set_permissions(
            d.path().join("src/a.txt"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert_ne!(
            checksum_sources(d.path(), &srcs, &ig).unwrap().digest,
            b.digest
        );
    }

    #[test]
    fn copied_directory_mode_does_not_count_but_empty_dir_is_found() {
        let d = ctx();
        let ig = IgnoreMatcher::default();
        let srcs = vec!["src".to_string()];
        let a = checksum_sources(d.path(), &srcs, &ig).unwrap();
        std::fs::set_permissions(d.path().join("src"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        assert_eq!(
            checksum_sources(d.path(), &srcs, &ig).unwrap().digest,
            a.digest
        );
        std::fs::create_dir(d.path().join("empty")).unwrap();
        let m = source_entries(d.path(), "empty", &ig).unwrap();
        assert!(m[0].contents.is_empty());
        let whole = source_entries(d.path(), ".", &ig).unwrap();
        assert!(whole[0].contents.iter().any(|c| c.path == "top.txt"));
    }

    #[test]
    fn unrelated_file_change_keeps_the_checksum() {
        let d = ctx();
        let ig = IgnoreMatcher::default();
        let srcs = vec!["src/a.txt".to_string()];
        let a = checksum_sources(d.path(), &srcs, &ig).unwrap();
        std::fs::write(d.path().join("src/sub/b.txt"), "changed").unwrap();
        assert_eq!(
            checksum_sources(d.path(), &srcs, &ig).unwrap().digest,
            a.digest
        );
    }

    #[test]
    fn wildcard_sources_match_per_level() {
        let d = ctx();
        let ig = IgnoreMatcher::default();
        let e = source_entries(d.path(), "src/*.txt", &ig).unwrap();
        let paths: Vec<&str> = e.iter().map(|m| m.entry.path.as_str()).collect();
        assert_eq!(paths, ["src/a.txt"]);
        let e = source_entries(d.path(), "s*", &ig).unwrap();
        assert_eq!(e[0].entry.path, "src");
        let inside: Vec<&str> = e[0].contents.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            inside,
            ["src/a.txt", "src/c.md", "src/sub", "src/sub/b.txt"]
        );
        assert!(matches!(
            source_entries(d.path(), "*.none", &ig),
            Err(ContextError::NotFound(_))
        ));
    }

    #[test]
    fn sources_stay_inside_the_context() {
        let d = ctx();
        let ig = IgnoreMatcher::default();
        let e = source_entries(d.path(), "../etc/passwd", &ig).unwrap_err();
        assert_eq!(
            e.to_string(),
            "forbidden path outside the build context: ../etc/passwd ()"
        );
        // An absolute symlink resolves inside the context, not on the host.
        let e = source_entries(d.path(), "abs-link", &ig).unwrap();
        assert_eq!(e[0].entry.path, "src/a.txt");
        symlink("../../../../../../etc", d.path().join("up")).unwrap();
        assert!(matches!(
            source_entries(d.path(), "up/passwd", &ig),
            Err(ContextError::NotFound(_))
        ));
    }

    #[test]
    fn ignored_source_is_not_found() {
        let d = ctx();
        let ig = IgnoreMatcher::from_dockerignore("src/c.md\n").unwrap();
        assert!(matches!(
            source_entries(d.path(), "src/c.md", &ig),
            Err(ContextError::NotFound(_))
        ));
    }
}
