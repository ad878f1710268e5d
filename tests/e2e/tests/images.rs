//! Issue "Foundation I", proven through real clients: `docker load/save/import/images/
//! inspect/history/tag/rmi/image prune/info` against berthd, with the offline test images
//! of `tests/images/`, and the same commands through our `berth` CLI where its output must
//! be byte-identical to docker's.
//!
//! Besides what the clients print, every test looks at the data root itself: a command
//! that failed must leave no record, blob, snapshot or temporary behind, and layers that
//! several images share must be stored once. Expected IDs and digests come from
//! `tests/images/out/images.json`, never from constants, so a new busybox package only
//! changes the inputs.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use berth_e2e::{Berthd, OutputExt, TestImage, test_image};
use berth_oci::{Digest, chain_ids};

// ------------------------------------------------------------------ helpers

/// Every test image, by the name `test_image` knows it.
const ALL_IMAGES: [&str; 5] = [
    "busybox",
    "hello-world",
    "berth-test/layers",
    "berth-test/busybox-gzip",
    "berth-test/busybox-zstd",
];

/// Runs the same arguments through docker and berth; both must succeed and print the
/// same stdout, which is returned.
#[track_caller]
fn same_output(daemon: &Berthd, args: &[&str]) -> String {
    let docker = daemon.docker(args).assert_success();
    let berth = daemon.berth(args).assert_success();
    assert_eq!(
        docker, berth,
        "`docker {args:?}` and `berth {args:?}` print different output"
    );
    docker
}

/// A relative time of something made during the test ("Less than a second ago",
/// "3 seconds ago", "About a minute ago") as one placeholder: docker and berth
/// print their listings a moment apart, and the phrase changes across a second.
fn mask_recent(text: &str) -> String {
    let Some(phrase) = text.strip_suffix(" ago") else {
        return text.to_string();
    };
    let mut words = phrase.split(' ');
    let recent = match (words.next(), words.next()) {
        (Some("Less"), Some("than")) | (Some("About"), Some("a")) => true,
        (Some(n), Some(unit)) => n.parse::<u64>().is_ok() && unit.starts_with("second"),
        _ => false,
    };
    if recent {
        "(recent)".to_string()
    } else {
        text.to_string()
    }
}

/// Like [`same_output`] for a table whose rows may hold relative times of
/// things made during the test: compares the cells (columns are separated by
/// 3+ spaces; CREATED holds single spaces) with those times masked, since
/// their width also moves the padding of every row.
#[track_caller]
fn same_table(daemon: &Berthd, args: &[&str]) -> Vec<Vec<String>> {
    let cells = |text: String| -> Vec<Vec<String>> {
        text.lines()
            .map(|l| {
                l.split("   ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(mask_recent)
                    .collect()
            })
            .collect()
    };
    let docker = cells(daemon.docker(args).assert_success());
    let berth = cells(daemon.berth(args).assert_success());
    assert_eq!(
        docker, berth,
        "`docker {args:?}` and `berth {args:?}` print different tables"
    );
    docker
}

/// Like [`same_output`] for `--format '{{json .}}'` listings: compares the
/// objects with a recent `CreatedSince` masked.
#[track_caller]
fn same_json_lines(daemon: &Berthd, args: &[&str]) -> Vec<serde_json::Value> {
    let rows = |text: String| -> Vec<serde_json::Value> {
        text.lines()
            .map(|l| {
                let mut row: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                if let Some(since) = row.get("CreatedSince").and_then(|v| v.as_str()) {
                    row["CreatedSince"] = mask_recent(since).into();
                }
                row
            })
            .collect()
    };
    let docker = rows(daemon.docker(args).assert_success());
    let berth = rows(daemon.berth(args).assert_success());
    assert_eq!(
        docker, berth,
        "`docker {args:?}` and `berth {args:?}` print different rows"
    );
    docker
}

/// Like [`same_output`], for listings of images tagged in several repositories:
/// docker prints one image's repositories in Go map order (random), so only the
/// set of lines can match. Returns the lines sorted.
#[track_caller]
fn same_lines(daemon: &Berthd, args: &[&str]) -> Vec<String> {
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let docker = sorted(daemon.docker(args).assert_success());
    let berth = sorted(daemon.berth(args).assert_success());
    assert_eq!(
        docker, berth,
        "`docker {args:?}` and `berth {args:?}` print different lines"
    );
    docker
}

/// Names in a directory (empty if it does not exist).
fn names_in(dir: &Path) -> BTreeSet<String> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.expect("read dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// What the data root holds, per directory of the store's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreContents {
    blobs: BTreeSet<String>,
    snapshots: BTreeSet<String>,
    images: BTreeSet<String>,
    ingest: BTreeSet<String>,
}

fn store_contents(daemon: &Berthd) -> StoreContents {
    let root = daemon.data_root();
    StoreContents {
        blobs: names_in(&root.join("blobs/sha256")),
        snapshots: names_in(&root.join("snapshots")),
        images: names_in(&root.join("images")),
        ingest: names_in(&root.join("ingest")),
    }
}

/// No blob being written and no snapshot being unpacked or deleted remains.
#[track_caller]
fn assert_no_temporaries(daemon: &Berthd) {
    let contents = store_contents(daemon);
    assert!(
        contents.ingest.is_empty(),
        "ingest/ is not empty: {:?}",
        contents.ingest
    );
    let tmp: Vec<_> = contents
        .snapshots
        .iter()
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(tmp.is_empty(), "temporary snapshots remain: {tmp:?}");
}

/// Committed snapshot directories (chain IDs).
fn snapshot_dirs(daemon: &Berthd) -> BTreeSet<String> {
    store_contents(daemon)
        .snapshots
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn short_id(digest: &str) -> &str {
    &hex(digest)[..12]
}

fn chain_ids_of(image: &TestImage) -> Vec<String> {
    let diff_ids: Vec<Digest> = image
        .diff_ids
        .iter()
        .map(|d| Digest::from_hex(hex(d)).expect("images.json holds digests"))
        .collect();
    chain_ids(&diff_ids).iter().map(Digest::hex).collect()
}

/// go-units' `HumanSizeWithPrecision`: decimal units, `precision` significant digits
/// (`%.*g`, trailing zeros dropped), as docker prints sizes.
fn human_size(size: u64, precision: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let integer_digits = if value < 1.0 {
        1
    } else {
        value.log10().floor() as usize + 1
    };
    let decimals = precision.saturating_sub(integer_digits);
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

/// What docker prints as CREATED for the test images (made 2024-01-01T00:00:00Z):
/// go-units' `HumanDuration` counts whole 365-day years past two years.
fn test_images_age() -> String {
    let made = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200);
    let hours = SystemTime::now()
        .duration_since(made)
        .expect("the clock is past 2024")
        .as_secs()
        / 3600;
    assert!(
        hours >= 24 * 365 * 2,
        "the clock is less than two years past 2024-01-01: docker would print months"
    );
    format!("{} years ago", hours / 24 / 365)
}

/// The image's total size as `docker image inspect` reports it.
fn inspected_size(daemon: &Berthd, name: &str) -> u64 {
    daemon
        .docker(["image", "inspect", "-f", "{{.Size}}", name])
        .assert_success()
        .trim()
        .parse()
        .expect("Size is a number")
}

fn load_all(daemon: &Berthd) -> Vec<TestImage> {
    ALL_IMAGES.iter().map(|n| daemon.load_image(n)).collect()
}

/// Every member of a tarball: (header, content).
fn read_archive(path: &Path) -> Vec<(tar::Header, Vec<u8>)> {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut archive = tar::Archive::new(file);
    let mut members = Vec::new();
    for entry in archive.entries().expect("archive entries") {
        let mut entry = entry.expect("archive entry");
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read archive member");
        members.push((entry.header().clone(), data));
    }
    members
}

fn member_name(header: &tar::Header) -> String {
    header
        .path()
        .expect("member path")
        .to_string_lossy()
        .into_owned()
}

/// Writes `members` as a tarball at `path`, with sizes fixed to the content.
fn write_archive(path: &Path, members: Vec<(tar::Header, Vec<u8>)>) {
    let mut builder = tar::Builder::new(fs::File::create(path).expect("create archive"));
    for (mut header, data) in members {
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder
            .append(&header, &data[..])
            .expect("append archive member");
    }
    builder.into_inner().expect("finish archive");
}

/// The parsed `manifest.json` of an archive.
fn archive_manifest(path: &Path) -> serde_json::Value {
    let members = read_archive(path);
    let (_, data) = members
        .iter()
        .find(|(h, _)| member_name(h) == "manifest.json")
        .expect("archive has manifest.json");
    serde_json::from_slice(data).expect("manifest.json is JSON")
}

/// A rootfs tarball: directories `etc/` and `srv/`, and the given files (0644).
fn rootfs_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for dir in ["etc/", "srv/"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(1_704_067_200);
        h.set_size(0);
        builder
            .append_data(&mut h, dir, std::io::empty())
            .expect("append dir");
    }
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(1_704_067_200);
        h.set_size(data.len() as u64);
        builder
            .append_data(&mut h, name, *data)
            .expect("append file");
    }
    builder.into_inner().expect("finish tarball")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

/// The image ID a `docker import` printed.
fn imported_id(stdout: &str) -> String {
    let id = stdout.trim().to_string();
    assert!(
        id.starts_with("sha256:") && id.len() == 71,
        "import printed {stdout:?}, not an image ID"
    );
    id
}

/// An overlay mount (read-only, lower dirs only) that is undone whatever happens.
struct OverlayMount {
    dir: tempfile::TempDir,
}

impl OverlayMount {
    fn new(lower_dirs: &[PathBuf]) -> OverlayMount {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-overlay-")
            .tempdir()
            .expect("make mount point");
        let lowers: Vec<String> = lower_dirs.iter().map(|p| p.display().to_string()).collect();
        let options = std::ffi::CString::new(format!("lowerdir={}", lowers.join(":")))
            .expect("options have no NUL");
        rustix::mount::mount(
            "overlay",
            dir.path(),
            "overlay",
            rustix::mount::MountFlags::RDONLY,
            options.as_c_str(),
        )
        .unwrap_or_else(|e| panic!("mount overlay {options:?} on {}: {e}", dir.path().display()));
        OverlayMount { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        // Before the TempDir field removes the directory.
        if let Err(e) = rustix::mount::unmount(self.dir.path(), rustix::mount::UnmountFlags::DETACH)
        {
            eprintln!("cannot unmount {}: {e}", self.dir.path().display());
        }
    }
}

// --------------------------------------------------------------------- load

#[test]
fn load_reports_loaded_image_for_every_test_archive_by_file_stdin_and_quietly() {
    let daemon = Berthd::start();
    for (i, name) in ALL_IMAGES.iter().enumerate() {
        let image = test_image(name);
        let archive = image.archive.as_os_str();
        let out = match i {
            0 => daemon.docker([OsStr::new("load"), OsStr::new("-i"), archive]),
            1 => daemon.docker_with_stdin(["load"], &fs::read(archive).expect("read archive")),
            2 => daemon.docker([
                OsStr::new("load"),
                OsStr::new("-q"),
                OsStr::new("-i"),
                archive,
            ]),
            3 => daemon.berth([OsStr::new("load"), OsStr::new("-i"), archive]),
            _ => daemon.berth_with_stdin(["load", "-q"], &fs::read(archive).expect("read archive")),
        };
        assert_eq!(
            out.assert_success(),
            format!("Loaded image: {}\n", image.reference)
        );
        let id = daemon
            .docker(["image", "inspect", "-f", "{{.Id}}", &image.reference])
            .assert_success();
        assert_eq!(id.trim(), image.id, "{name}");
    }
    let ids = daemon
        .docker(["images", "-q", "--no-trunc"])
        .assert_success();
    let mut ids: Vec<&str> = ids.lines().collect();
    ids.sort_unstable();
    let mut expected: Vec<String> = ALL_IMAGES.iter().map(|n| test_image(n).id).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert_no_temporaries(&daemon);
}

#[test]
fn loading_the_same_archive_twice_keeps_one_image_and_one_copy_of_each_blob() {
    let daemon = Berthd::start();
    let image = daemon.load_image("berth-test/layers");
    let before = store_contents(&daemon);
    let again = daemon
        .docker([
            OsStr::new("load"),
            OsStr::new("-i"),
            image.archive.as_os_str(),
        ])
        .assert_success();
    assert_eq!(again, format!("Loaded image: {}\n", image.reference));
    assert_eq!(store_contents(&daemon), before);
    let ids = daemon.docker(["images", "-q"]).assert_success();
    assert_eq!(ids, format!("{}\n", short_id(&image.id)));
}

#[test]
fn load_over_a_tag_pointing_elsewhere_renames_the_old_image_to_empty_string() {
    let daemon = Berthd::start();
    let hello = daemon.load_image("hello-world");
    daemon
        .docker(["tag", "hello-world", "busybox:latest"])
        .assert_success();
    daemon.docker(["rmi", "hello-world"]).assert_success();
    let busybox = test_image("busybox");
    let out = daemon
        .docker([
            OsStr::new("load"),
            OsStr::new("-i"),
            busybox.archive.as_os_str(),
        ])
        .assert_success();
    assert_eq!(
        out,
        format!(
            "The image busybox:latest already exists, renaming the old one with ID {} to empty string\n\
             Loaded image: busybox:latest\n",
            hello.id
        )
    );
    // The old image is kept, dangling.
    let dangling = daemon
        .docker([
            "images",
            "-f",
            "dangling=true",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ])
        .assert_success();
    assert_eq!(dangling, format!("<none>:<none> {}\n", hello.id));
    let id = daemon
        .docker(["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .assert_success();
    assert_eq!(id.trim(), busybox.id);
}

/// The ways an archive can be broken, each made from a good test archive.
fn corrupt_archives(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let layers = test_image("berth-test/layers");
    let manifest = archive_manifest(&layers.archive);
    let layer_paths: Vec<String> = manifest[0]["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .map(|l| l.as_str().expect("layer path").to_string())
        .collect();
    let mut out = Vec::new();

    // Cut in the middle of busybox's layer.
    let busybox = fs::read(test_image("busybox").archive).expect("read busybox.tar");
    let truncated = dir.join("truncated.tar");
    fs::write(&truncated, &busybox[..busybox.len() / 2]).expect("write truncated archive");
    out.push(("truncated", truncated));

    // Layer 2's content changed under its digest's name.
    let mut members = read_archive(&layers.archive);
    for (header, data) in &mut members {
        if member_name(header) == layer_paths[1] {
            let last = data.len() - 1024 - 1;
            data[last / 2] ^= 0xff;
        }
    }
    let mismatch = dir.join("blob-digest-mismatch.tar");
    write_archive(&mismatch, members);
    out.push(("blob whose content does not match its name", mismatch));

    // manifest.json names layer 3, which is not in the archive.
    let members: Vec<_> = read_archive(&layers.archive)
        .into_iter()
        .filter(|(h, _)| member_name(h) != layer_paths[2])
        .collect();
    let missing = dir.join("missing-layer.tar");
    write_archive(&missing, members);
    out.push(("manifest naming a missing layer", missing));

    // Layer 3 in manifest.json is layer 2's blob: its diff ID is not the config's.
    let mut members = read_archive(&layers.archive);
    for (header, data) in &mut members {
        if member_name(header) == "manifest.json" {
            let mut m: serde_json::Value = serde_json::from_slice(data).expect("manifest");
            m[0]["Layers"][2] = serde_json::Value::String(layer_paths[1].clone());
            *data = serde_json::to_vec(&m).expect("manifest serializes");
        }
    }
    let wrong_diff_id = dir.join("diff-id-mismatch.tar");
    write_archive(&wrong_diff_id, members);
    out.push(("layer whose diff ID is not the config's", wrong_diff_id));
    out
}

#[test]
fn corrupt_archives_fail_and_leave_no_image_blob_snapshot_or_temporary() {
    let daemon = Berthd::start();
    let work = tempfile::tempdir().expect("temp dir");
    let archives = corrupt_archives(work.path());
    // Once into an empty store, once with busybox's layer present (shared by the
    // broken layers image: it must survive the failed load's cleanup).
    for with_busybox in [false, true] {
        if with_busybox {
            daemon.load_image("busybox");
        }
        let images_before = daemon.docker(["images", "-a", "-q"]).assert_success();
        let before = store_contents(&daemon);
        for (what, archive) in &archives {
            for client in ["docker", "berth"] {
                let args = [OsStr::new("load"), OsStr::new("-i"), archive.as_os_str()];
                let out = if client == "docker" {
                    daemon.docker(args)
                } else {
                    daemon.berth(args)
                };
                let stderr = out.assert_failure();
                assert!(
                    !stderr.trim().is_empty(),
                    "{client} load of a {what} failed without a message"
                );
                assert_eq!(out.status.code(), Some(1), "{client} load of a {what}");
                assert_eq!(
                    store_contents(&daemon),
                    before,
                    "{client} load of a {what} left something in the data root"
                );
                assert_eq!(
                    daemon.docker(["images", "-a", "-q"]).assert_success(),
                    images_before,
                    "{client} load of a {what} left an image"
                );
            }
        }
    }
    // And the good archive still loads afterwards.
    daemon.load_image("berth-test/layers");
}

// ------------------------------------------------------------ layer storage

#[test]
fn busybox_layer_is_stored_once_for_busybox_layers_gzip_and_zstd() {
    let daemon = Berthd::start();
    let images = load_all(&daemon);
    let busybox = &images[0];
    let layers = &images[2];
    let hello = &images[1];
    let mut expected: BTreeSet<String> = chain_ids_of(layers).into_iter().collect();
    expected.extend(chain_ids_of(hello));
    assert_eq!(snapshot_dirs(&daemon), expected);
    assert!(expected.contains(hex(&busybox.diff_ids[0])));
    for variant in &images[3..] {
        assert_eq!(variant.diff_ids, busybox.diff_ids);
        // The compressed blob is kept as it came, beside the plain one.
        let blob = hex(&variant.layer_digests[0]);
        assert!(
            store_contents(&daemon).blobs.contains(blob),
            "{} blob {blob} not stored",
            variant.reference
        );
    }
    let layer_ids = daemon
        .docker([
            "image",
            "inspect",
            "-f",
            "{{index .RootFS.Layers 0}}",
            "busybox",
            "berth-test/layers",
            "berth-test/busybox-gzip",
            "berth-test/busybox-zstd",
        ])
        .assert_success();
    assert_eq!(layer_ids, format!("{}\n", busybox.diff_ids[0]).repeat(4));
}

#[test]
fn whiteouts_are_0_0_char_devices_and_opaque_dirs_carry_the_overlay_xattr() {
    let daemon = Berthd::start();
    let layers = daemon.load_image("berth-test/layers");
    let chains = chain_ids_of(&layers);
    let fs_of = |i: usize| {
        daemon
            .data_root()
            .join("snapshots")
            .join(&chains[i])
            .join("fs")
    };
    for (layer, path) in [(1, "bin/vi"), (1, "var/www"), (2, "data/to-delete.txt")] {
        let path = fs_of(layer).join(path);
        let meta =
            fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            meta.file_type().is_char_device(),
            "{} is no char device",
            path.display()
        );
        assert_eq!(meta.rdev(), 0, "{}", path.display());
    }
    // Markers are not stored as files.
    assert!(!fs_of(1).join("bin/.wh.vi").exists());
    assert!(!fs_of(2).join("data/opaque/.wh..wh..opq").exists());
    let opaque = fs_of(2).join("data/opaque");
    let mut value = [0u8; 16];
    let n = rustix::fs::getxattr(&opaque, "trusted.overlay.opaque", &mut value[..])
        .unwrap_or_else(|e| panic!("trusted.overlay.opaque on {}: {e}", opaque.display()));
    assert_eq!(&value[..n], b"y");
    // Layer 2's own opaque-to-be directory is a plain one.
    assert!(
        rustix::fs::getxattr(
            fs_of(1).join("data/opaque"),
            "trusted.overlay.opaque",
            &mut value[..]
        )
        .is_err()
    );
}

#[test]
fn overlay_of_the_layers_image_snapshots_shows_the_documented_merged_view() {
    let daemon = Berthd::start();
    let layers = daemon.load_image("berth-test/layers");
    let chains = chain_ids_of(&layers);
    let lowers: Vec<PathBuf> = chains
        .iter()
        .rev()
        .map(|c| daemon.data_root().join("snapshots").join(c).join("fs"))
        .collect();
    let mount = OverlayMount::new(&lowers);
    let root = mount.path();

    let data: Vec<String> = names_in(&root.join("data")).into_iter().collect();
    assert_eq!(
        data.join(" "),
        "abs-link added-in-3.txt dangling-link fifo hardlink.txt hello.txt kept nested \
         opaque owned-by-1000 rel-link setuid xattr.txt"
    );
    assert!(!root.join("bin/vi").exists(), "/bin/vi is whited out");
    assert!(root.join("bin/busybox").is_file());
    assert!(root.join("bin/sh").is_file(), "other applet links stay");
    assert!(!root.join("var/www").exists(), "/var/www is whited out");
    assert!(root.join("var/spool/mail").is_dir());
    assert_eq!(
        names_in(&root.join("data/opaque"))
            .into_iter()
            .collect::<Vec<_>>(),
        ["new.txt"]
    );
    assert_eq!(
        names_in(&root.join("data/kept"))
            .into_iter()
            .collect::<Vec<_>>(),
        ["lower.txt", "upper.txt"]
    );
    let read = |p: &str| fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("data/hello.txt"), "hello from layer 2\n");
    assert_eq!(read("data/added-in-3.txt"), "added in layer 3\n");
    assert_eq!(read("data/opaque/new.txt"), "new in layer 3\n");
    assert_eq!(read("data/kept/lower.txt"), "from layer 2\n");
    assert_eq!(read("data/kept/upper.txt"), "from layer 3\n");
    assert_eq!(read("data/nested/a/b/c/deep.txt"), "deep\n");
    assert_eq!(read("data/owned-by-1000"), "owned by 1000:1000\n");
    let meta = |p: &str| fs::symlink_metadata(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let hello = meta("data/hello.txt");
    let hardlink = meta("data/hardlink.txt");
    assert_eq!((hello.ino(), hello.nlink()), (hardlink.ino(), 2));
    assert_eq!(hello.mode() & 0o7777, 0o644);
    assert_eq!(
        fs::read_link(root.join("data/rel-link")).unwrap(),
        Path::new("hello.txt")
    );
    assert_eq!(
        fs::read_link(root.join("data/abs-link")).unwrap(),
        Path::new("/data/hello.txt")
    );
    assert_eq!(
        fs::read_link(root.join("data/dangling-link")).unwrap(),
        Path::new("/does/not/exist")
    );
    assert!(meta("data/fifo").file_type().is_fifo());
    assert_eq!(meta("data/fifo").mode() & 0o7777, 0o644);
    assert_eq!(meta("data/setuid").mode() & 0o7777, 0o4755);
    let owned = meta("data/owned-by-1000");
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1000, 1000, 0o640)
    );
    assert_eq!(
        meta("data/nested/a/b/c").permissions().mode() & 0o7777,
        0o700
    );
    let mut value = [0u8; 8];
    let n = rustix::fs::getxattr(root.join("data/xattr.txt"), "user.berth", &mut value[..])
        .expect("user.berth xattr");
    assert_eq!(&value[..n], b"1");
    assert_eq!(meta("root").mode() & 0o7777, 0o700);
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
    drop(mount);
}

// ------------------------------------------------------------------ listing

#[test]
fn image_list_flags_filters_and_formats_match_docker_and_berth() {
    let daemon = Berthd::start();
    load_all(&daemon);
    let age = test_images_age();
    let busybox_size = human_size(inspected_size(&daemon, "busybox"), 3);
    let hello_size = human_size(inspected_size(&daemon, "hello-world"), 3);

    // Two images made now, one after the other, with a label: for before/since/label.
    let tarball = rootfs_tar(&[("etc/first", b"1\n")]);
    let first = imported_id(
        &daemon
            .docker_with_stdin(
                ["import", "-c", "LABEL stage=one", "-", "imp/first:v1"],
                &tarball,
            )
            .assert_success(),
    );
    let tarball = rootfs_tar(&[("etc/second", b"2\n")]);
    let second = imported_id(
        &daemon
            .docker_with_stdin(
                ["import", "-c", "LABEL stage=two", "-", "imp/second"],
                &tarball,
            )
            .assert_success(),
    );

    let table = same_table(&daemon, &["images"]);
    assert_eq!(
        table[0],
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    );
    let rows = &table[1..];
    assert_eq!(rows.len(), 7, "{table:?}");
    assert_eq!(rows[0][3], "(recent)", "{table:?}");
    // Newest first: the imports, then the 2024 images.
    assert_eq!(rows[0][0], "imp/second");
    assert_eq!(rows[1][0], "imp/first");
    let busybox_row = rows
        .iter()
        .find(|r| r[0] == "busybox")
        .expect("busybox row");
    assert_eq!(
        busybox_row,
        &vec![
            "busybox".to_string(),
            "latest".into(),
            short_id(&test_image("busybox").id).into(),
            age.clone(),
            busybox_size.clone()
        ]
    );
    let hello_row = rows
        .iter()
        .find(|r| r[0] == "hello-world")
        .expect("hello row");
    assert_eq!(hello_row[3..], [age.clone(), hello_size]);

    // -a lists the same here (no intermediate images); -q and --no-trunc IDs.
    assert_eq!(same_table(&daemon, &["images", "-a"]), table);
    let quiet = same_output(&daemon, &["image", "ls", "-q"]);
    assert_eq!(quiet.lines().count(), 7);
    assert!(quiet.starts_with(&format!("{}\n{}\n", short_id(&second), short_id(&first))));
    let full = same_output(&daemon, &["images", "-q", "--no-trunc"]);
    assert!(full.starts_with(&format!("{second}\n{first}\n")));
    let digests = same_table(&daemon, &["images", "--digests"]);
    assert_eq!(digests[0][2], "DIGEST", "{digests:?}");

    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        all.extend_from_slice(args);
        let out = same_output(&daemon, &all);
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let all_tagged = [
        "berth-test/busybox-gzip:latest",
        "berth-test/busybox-zstd:latest",
        "berth-test/layers:latest",
        "busybox:latest",
        "hello-world:latest",
        "imp/first:v1",
        "imp/second:latest",
    ];
    assert_eq!(names(&[]), all_tagged);
    assert!(names(&["-f", "dangling=true"]).is_empty());
    assert_eq!(names(&["-f", "dangling=false"]), all_tagged);
    assert_eq!(
        names(&["-f", "reference=berth-test/*"]),
        [
            "berth-test/busybox-gzip:latest",
            "berth-test/busybox-zstd:latest",
            "berth-test/layers:latest"
        ]
    );
    assert_eq!(names(&["-f", "reference=*box*"]), ["busybox:latest"]);
    assert_eq!(names(&["-f", "reference=imp/*:v?"]), ["imp/first:v1"]);
    assert_eq!(
        names(&["-f", "reference=busybox", "-f", "reference=hello-world"]),
        ["busybox:latest", "hello-world:latest"]
    );
    assert_eq!(
        names(&["-f", "label=stage"]),
        ["imp/first:v1", "imp/second:latest"]
    );
    assert_eq!(names(&["-f", "label=stage=two"]), ["imp/second:latest"]);
    assert_eq!(
        names(&["-f", "label=org.berth.test=layers"]),
        ["berth-test/layers:latest"]
    );
    assert_eq!(
        names(&["-f", "since=busybox"]),
        ["imp/first:v1", "imp/second:latest"]
    );
    assert_eq!(names(&["-f", "since=imp/first:v1"]), ["imp/second:latest"]);
    let mut before_second: Vec<String> = all_tagged
        .iter()
        .filter(|n| **n != "imp/second:latest")
        .map(|n| n.to_string())
        .collect();
    before_second.sort();
    assert_eq!(names(&["-f", &format!("before={second}")]), before_second);
    assert!(names(&["-f", "before=busybox"]).is_empty());
    assert_eq!(names(&["busybox"]), ["busybox:latest"]);
    assert_eq!(names(&["imp/first:v1"]), ["imp/first:v1"]);
    assert_eq!(
        names(&["berth-test/*"]),
        names(&["-f", "reference=berth-test/*"])
    );
    assert!(names(&["nothing-here"]).is_empty());

    // An unknown filter is the daemon's error, in both clients.
    let out = daemon.docker(["images", "-f", "colour=blue"]);
    let stderr = out.assert_failure();
    assert!(stderr.contains("invalid filter 'colour'"), "{stderr}");
    daemon
        .berth(["images", "-f", "colour=blue"])
        .assert_failure();

    let table_format = same_output(
        &daemon,
        &[
            "images",
            "--format",
            "table {{.Repository}}\t{{.Tag}}\t{{.Size}}",
            "busybox",
        ],
    );
    let format_lines: Vec<Vec<&str>> = table_format
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        format_lines,
        [
            vec!["REPOSITORY", "TAG", "SIZE"],
            vec!["busybox", "latest", busybox_size.as_str()]
        ]
    );
    let json = same_output(&daemon, &["images", "--format", "json", "hello-world"]);
    let row: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON line");
    assert_eq!(row["Repository"], "hello-world");
    assert_eq!(row["Tag"], "latest");
    assert_eq!(row["ID"], short_id(&test_image("hello-world").id));
    assert_eq!(row["CreatedAt"], "2024-01-01 00:00:00 +0000 UTC");
    assert_eq!(row["CreatedSince"], age);
    same_json_lines(&daemon, &["images", "--format", "{{json .}}"]);
    assert_no_temporaries(&daemon);
}

// ------------------------------------------------------------------ inspect

#[test]
fn image_inspect_reports_config_rootfs_and_size_of_the_layers_image() {
    let daemon = Berthd::start();
    let busybox = daemon.load_image("busybox");
    let layers = daemon.load_image("berth-test/layers");
    let out = daemon
        .docker(["image", "inspect", "berth-test/layers"])
        .assert_success();
    let inspect: serde_json::Value = serde_json::from_str(&out).expect("inspect is JSON");
    let image = &inspect[0];
    assert_eq!(image["Id"], layers.id.as_str());
    assert_eq!(
        image["RepoTags"],
        serde_json::json!(["berth-test/layers:latest"])
    );
    assert_eq!(image["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(
        image["Config"]["Env"],
        serde_json::json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    );
    assert_eq!(image["Config"]["WorkingDir"], "/data");
    assert_eq!(image["Config"]["Labels"]["org.berth.test"], "layers");
    assert_eq!(image["RootFS"]["Type"], "layers");
    assert_eq!(
        image["RootFS"]["Layers"],
        serde_json::json!(layers.diff_ids)
    );
    assert_eq!(image["Created"], "2024-01-01T00:00:00Z");
    assert_eq!(image["Os"], "linux");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(image["Architecture"], arch);
    // Size: busybox's layer plus two small ones.
    let size = image["Size"].as_u64().expect("Size is a number");
    let busybox_size = inspected_size(&daemon, "busybox");
    assert!(
        size > busybox_size && size < busybox_size + 4096,
        "{size} vs {busybox_size}"
    );

    // `inspect` (any object) and `image inspect` agree, also by ID and ID prefix.
    let generic = daemon
        .docker(["inspect", "berth-test/layers"])
        .assert_success();
    assert_eq!(generic, out);
    for name in [layers.id.as_str(), hex(&layers.id), short_id(&layers.id)] {
        let by_id = daemon.docker(["image", "inspect", name]).assert_success();
        assert_eq!(by_id, out, "inspect {name}");
    }

    // -f templates, identical through both CLIs.
    let template = "{{.Id}}|{{json .RepoTags}}|{{json .Config.Cmd}}|{{json .Config.Env}}|\
                    {{json .RootFS.Layers}}|{{.Created}}|{{.Os}}|{{.Architecture}}|{{.Size}}";
    for command in [
        &["image", "inspect", "-f"][..],
        &["inspect", "--format"][..],
    ] {
        let mut args = command.to_vec();
        args.extend([template, "berth-test/layers", "busybox"]);
        let text = same_output(&daemon, &args);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            format!(
                "{}|[\"berth-test/layers:latest\"]|[\"sh\"]|[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"]|{}|2024-01-01T00:00:00Z|linux|{arch}|{size}",
                layers.id,
                serde_json::to_string(&layers.diff_ids).unwrap()
            )
        );
        assert!(lines[1].starts_with(&format!("{}|[\"busybox:latest\"]|", busybox.id)));
    }
    // Not compared: `{{json .}}` and `{{json .Config}}`, which docker renders from its
    // Go types (struct field order, the OCI config's omitempty fields) and berth from
    // the daemon's JSON.
}

#[test]
fn inspect_of_an_unknown_image_says_no_such_image_and_exits_1() {
    let daemon = Berthd::start();
    daemon.load_image("busybox");
    for client in ["docker", "berth"] {
        let run = |args: &[&str]| {
            if client == "docker" {
                daemon.docker(args)
            } else {
                daemon.berth(args)
            }
        };
        let out = run(&["image", "inspect", "nope"]);
        assert_eq!(out.status.code(), Some(1), "{client}");
        assert!(
            out.stderr_text().contains("No such image: nope:latest"),
            "{client}: {}",
            out.stderr_text()
        );
        let out = run(&["image", "inspect", "-f", "{{.Id}}", "busybox", "nope:1"]);
        assert_eq!(out.status.code(), Some(1), "{client}");
        assert_eq!(out.stdout_text(), format!("{}\n", test_image("busybox").id));
        assert!(
            out.stderr_text().contains("No such image: nope:1"),
            "{client}"
        );
        let out = run(&["inspect", "nope"]);
        assert_eq!(out.status.code(), Some(1), "{client}");
        assert!(
            out.stderr_text().contains("No such object: nope"),
            "{client}: {}",
            out.stderr_text()
        );
    }
    let response = daemon.request("GET", "/images/nope/json", None);
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["message"], "No such image: nope:latest");
}

// ------------------------------------------------------------------ history

#[test]
fn history_of_the_layers_image_lists_its_six_entries_in_every_format() {
    let daemon = Berthd::start();
    let layers = daemon.load_image("berth-test/layers");
    let busybox = daemon.load_image("busybox");

    let table = same_output(&daemon, &["history", "berth-test/layers"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 7, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    );
    assert!(lines[1].starts_with(short_id(&layers.id)));
    assert!(lines[2..].iter().all(|l| l.starts_with("<missing>")));
    assert!(lines[1].contains(&test_images_age()));

    let quiet = same_output(&daemon, &["history", "-q", "berth-test/layers"]);
    assert_eq!(
        quiet,
        format!("{}\n{}", short_id(&layers.id), "<missing>\n".repeat(5))
    );
    let quiet = same_output(
        &daemon,
        &["history", "-q", "--no-trunc", "berth-test/layers"],
    );
    assert!(quiet.starts_with(&format!("{}\n", layers.id)));

    // Raw sizes: layers have sizes, the rest 0, and they add up to the image's size.
    let raw = same_output(
        &daemon,
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Size}}|{{.CreatedAt}}",
            "-H=false",
            "berth-test/layers",
        ],
    );
    let entries: Vec<(&str, u64, &str)> = raw
        .lines()
        .map(|l| {
            let mut f = l.split('|');
            let by = f.next().unwrap();
            let size = f.next().unwrap().parse().expect("raw size is a number");
            (by, size, f.next().unwrap())
        })
        .collect();
    assert_eq!(entries.len(), 6);
    assert!(
        entries[0].0.starts_with("LABEL org.berth.test=layers"),
        "{raw}"
    );
    assert!(entries[1].0.starts_with("WORKDIR /data"), "{raw}");
    assert!(entries[4].0.contains("CMD [\"sh\"]"), "{raw}");
    assert!(
        entries[5]
            .0
            .contains(&format!("ADD file:{} in /", hex(&busybox.diff_ids[0]))),
        "{raw}"
    );
    let with_layers: Vec<usize> = (0..6).filter(|i| entries[*i].1 > 0).collect();
    assert_eq!(with_layers, [2, 3, 5]);
    let total: u64 = entries.iter().map(|e| e.1).sum();
    assert_eq!(total, inspected_size(&daemon, "berth-test/layers"));
    assert!(
        entries.iter().all(|e| e.2 == "2024-01-01T00:00:00Z"),
        "{raw}"
    );

    let not_human = same_output(&daemon, &["history", "-H=false", "busybox"]);
    assert!(
        not_human
            .lines()
            .nth(1)
            .unwrap()
            .contains("2024-01-01T00:00:00Z")
    );
    assert!(not_human.lines().next().unwrap().contains("CREATED AT"));
    let no_trunc = same_output(&daemon, &["history", "--no-trunc", "busybox"]);
    assert!(no_trunc.lines().nth(1).unwrap().starts_with(&busybox.id));
    assert!(no_trunc.contains(&format!("ADD file:{} in /", hex(&busybox.diff_ids[0]))));
    let json = same_output(&daemon, &["history", "--format", "json", "busybox"]);
    assert_eq!(json.lines().count(), 2);
    for line in json.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("one JSON object per line");
    }
    let out = daemon.docker(["history", "nope"]);
    assert!(out.assert_failure().contains("No such image: nope:latest"));
    daemon.berth(["history", "nope"]).assert_failure();
}

// --------------------------------------------------------------- tag & rmi

#[test]
fn tag_adds_references_in_new_repositories_and_registries() {
    let daemon = Berthd::start();
    let busybox = daemon.load_image("busybox");
    daemon.docker(["tag", "busybox", "mybox"]).assert_success();
    daemon
        .docker(["tag", "busybox:latest", "localhost:5000/team/box:2"])
        .assert_success();
    daemon
        .berth(["tag", short_id(&busybox.id), "berth-tagged:v1"])
        .assert_success();
    let names = same_lines(
        &daemon,
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
    );
    let id = short_id(&busybox.id);
    assert_eq!(
        names,
        [
            format!("berth-tagged:v1 {id}"),
            format!("busybox:latest {id}"),
            format!("localhost:5000/team/box:2 {id}"),
            format!("mybox:latest {id}"),
        ]
    );
    let tags = same_output(
        &daemon,
        &[
            "image",
            "inspect",
            "-f",
            "{{json .RepoTags}}",
            "localhost:5000/team/box:2",
        ],
    );
    let tags: Vec<String> = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags.len(), 4);
    assert_eq!(
        same_output(&daemon, &["images", "-q", "localhost:5000/team/box"]),
        format!("{id}\n")
    );

    for bad in ["bad:tag!", "UPPER", "a:b:c"] {
        let out = daemon.docker(["tag", "busybox", bad]);
        assert!(
            out.assert_failure().contains("invalid reference format"),
            "{bad}"
        );
        daemon.berth(["tag", "busybox", bad]).assert_failure();
    }
    // The daemon checks too, for clients that do not.
    let response = daemon.request("POST", "/images/busybox/tag?repo=bad&tag=no%21", None);
    assert_eq!(response.status, 400, "{}", response.text());
    let response = daemon.request("POST", "/images/nope/tag?repo=x&tag=y", None);
    assert_eq!(response.status, 404, "{}", response.text());
    let out = daemon.docker(["tag", "nope", "x:y"]);
    assert!(out.assert_failure().contains("No such image: nope:latest"));
}

#[test]
fn rmi_by_name_only_untags_while_other_tags_remain() {
    let daemon = Berthd::start();
    let busybox = daemon.load_image("busybox");
    daemon
        .docker(["tag", "busybox", "busybox:v2"])
        .assert_success();
    daemon
        .docker(["tag", "busybox", "busybox:v3"])
        .assert_success();
    let before = store_contents(&daemon);
    let out = daemon.docker(["rmi", "busybox:v2"]).assert_success();
    assert_eq!(out, "Untagged: busybox:v2\n");
    let out = daemon.berth(["rmi", "busybox"]).assert_success();
    assert_eq!(out, "Untagged: busybox:latest\n");
    let mut after = store_contents(&daemon);
    // The record is rewritten in place; nothing else changes.
    after.images.clone_from(&before.images);
    assert_eq!(after, before);
    let out = daemon.docker(["rmi", "busybox:v3"]).assert_success();
    assert_eq!(
        out,
        format!(
            "Untagged: busybox:v3\nDeleted: {}\nDeleted: {}\n",
            busybox.id, busybox.diff_ids[0]
        )
    );
    let empty = store_contents(&daemon);
    assert!(
        empty.blobs.is_empty() && empty.images.is_empty(),
        "{empty:?}"
    );
    assert!(snapshot_dirs(&daemon).is_empty());
    assert_no_temporaries(&daemon);
}

#[test]
fn rmi_by_id_deletes_the_image_and_only_its_unshared_layers() {
    let daemon = Berthd::start();
    let busybox = daemon.load_image("busybox");
    let layers = daemon.load_image("berth-test/layers");
    let hello = daemon.load_image("hello-world");
    daemon
        .docker(["tag", "berth-test/layers", "berth-test/layers:again"])
        .assert_success();
    let chains = chain_ids_of(&layers);
    let out = daemon.docker(["rmi", &layers.id]).assert_success();
    let mut lines: Vec<&str> = out.lines().collect();
    let mut untagged: Vec<&str> = lines.drain(..2).collect();
    untagged.sort_unstable();
    assert_eq!(
        untagged,
        [
            "Untagged: berth-test/layers:again",
            "Untagged: berth-test/layers:latest"
        ]
    );
    // The image, then its own layers from the top; busybox's layer stays.
    assert_eq!(
        lines,
        [
            format!("Deleted: {}", layers.id),
            format!("Deleted: sha256:{}", chains[2]),
            format!("Deleted: sha256:{}", chains[1]),
        ]
    );
    assert_eq!(
        snapshot_dirs(&daemon),
        [
            hex(&busybox.diff_ids[0]).to_string(),
            chain_ids_of(&hello)[0].clone()
        ]
        .into_iter()
        .collect()
    );
    let blobs = store_contents(&daemon).blobs;
    for layer in &layers.diff_ids[1..] {
        assert!(!blobs.contains(hex(layer)), "layer blob {layer} remains");
    }
    assert!(!blobs.contains(hex(&layers.id)));
    assert!(blobs.contains(hex(&busybox.diff_ids[0])));

    // By a unique ID prefix, through berth.
    let out = daemon.berth(["rmi", &hex(&hello.id)[..5]]).assert_success();
    assert_eq!(
        out,
        format!(
            "Untagged: hello-world:latest\nDeleted: {}\nDeleted: {}\n",
            hello.id, hello.diff_ids[0]
        )
    );
    let out = daemon.docker(["rmi", "busybox"]).assert_success();
    assert!(
        out.contains(&format!("Deleted: {}", busybox.diff_ids[0])),
        "{out}"
    );
    assert!(snapshot_dirs(&daemon).is_empty());
    assert!(store_contents(&daemon).blobs.is_empty());
    assert_no_temporaries(&daemon);
}

#[test]
fn rmi_of_an_ambiguous_or_unknown_id_prefix_says_no_such_image() {
    let daemon = Berthd::start();
    load_all(&daemon);
    // Import until two image IDs share their first hex digit (pigeonhole: at most 16
    // more); the IDs change with the creation time, so this cannot be fixed up front.
    let mut ids: Vec<String> = ALL_IMAGES.iter().map(|n| test_image(n).id).collect();
    let mut n = 0;
    let prefix = loop {
        let firsts: Vec<char> = ids.iter().map(|i| hex(i).chars().next().unwrap()).collect();
        if let Some(c) = firsts
            .iter()
            .find(|c| firsts.iter().filter(|d| d == c).count() > 1)
        {
            break c.to_string();
        }
        n += 1;
        let tarball = rootfs_tar(&[("etc/n", n.to_string().as_bytes())]);
        let id = imported_id(
            &daemon
                .docker_with_stdin(["import", "-", &format!("filler:{n}")], &tarball)
                .assert_success(),
        );
        ids.push(id);
    };
    let before = daemon.docker(["images", "-q"]).assert_success();
    for client in ["docker", "berth"] {
        let args = ["rmi", prefix.as_str()];
        let out = if client == "docker" {
            daemon.docker(args)
        } else {
            daemon.berth(args)
        };
        assert_eq!(out.status.code(), Some(1));
        assert!(
            out.stderr_text()
                .contains(&format!("No such image: {prefix}:latest")),
            "{client}: {}",
            out.stderr_text()
        );
    }
    let unknown = (0..16u32)
        .map(|d| format!("{d:x}"))
        .find(|c| !ids.iter().any(|i| hex(i).starts_with(c.as_str())))
        .map(|c| format!("{c}{c}{c}{c}{c}"))
        .unwrap_or_else(|| "0123456789abc".into());
    let out = daemon.docker(["rmi", &unknown]);
    assert!(
        out.assert_failure()
            .contains(&format!("No such image: {unknown}:latest"))
    );
    assert_eq!(daemon.docker(["images", "-q"]).assert_success(), before);
}

#[test]
fn rmi_by_id_with_tags_in_two_repositories_needs_force() {
    let daemon = Berthd::start();
    let busybox = daemon.load_image("busybox");
    daemon
        .docker(["tag", "busybox", "other/repo:x"])
        .assert_success();
    let expected = format!(
        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
        short_id(&busybox.id)
    );
    for name in [short_id(&busybox.id), busybox.id.as_str()] {
        let out = daemon.docker(["rmi", name]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            out.stderr_text().contains(&expected),
            "{}",
            out.stderr_text()
        );
        let out = daemon.berth(["rmi", name]);
        assert!(out.assert_failure().contains(&expected));
    }
    let response = daemon.request("DELETE", &format!("/images/{}", busybox.id), None);
    assert_eq!(response.status, 409);
    assert_eq!(response.json()["message"], expected.as_str());
    // Still both tags.
    let tags = daemon
        .docker(["image", "inspect", "-f", "{{len .RepoTags}}", "busybox"])
        .assert_success();
    assert_eq!(tags.trim(), "2");
    // Within one repository no force is needed; across two, -f untags both and deletes.
    let out = daemon
        .docker(["rmi", "-f", short_id(&busybox.id)])
        .assert_success();
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            format!("Deleted: {}", busybox.diff_ids[0]),
            format!("Deleted: {}", busybox.id),
            "Untagged: busybox:latest".to_string(),
            "Untagged: other/repo:x".to_string(),
        ]
    );
    let busybox = daemon.load_image("busybox");
    daemon
        .docker(["tag", "busybox", "busybox:two"])
        .assert_success();
    let out = daemon
        .docker(["rmi", short_id(&busybox.id)])
        .assert_success();
    assert!(out.contains(&format!("Deleted: {}", busybox.id)), "{out}");
}

#[test]
fn rmi_of_several_images_with_one_unknown_removes_the_others_and_exits_1() {
    let daemon = Berthd::start();
    daemon.load_image("busybox");
    let hello = daemon.load_image("hello-world");
    let layers = daemon.load_image("berth-test/layers");
    let out = daemon.docker(["rmi", "hello-world", "nope", "berth-test/layers"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr_text().contains("No such image: nope:latest"));
    let stdout = out.stdout_text();
    assert!(
        stdout.contains(&format!("Deleted: {}", hello.id)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Deleted: {}", layers.id)),
        "{stdout}"
    );
    assert_eq!(
        daemon
            .docker(["images", "--format", "{{.Repository}}"])
            .assert_success(),
        "busybox\n"
    );
    // With -f, an unknown name is reported but is no failure (docker's rule).
    for client in ["docker", "berth"] {
        daemon.load_image("hello-world");
        let args = ["rmi", "-f", "nope", "hello-world"];
        let out = if client == "docker" {
            daemon.docker(args)
        } else {
            daemon.berth(args)
        };
        assert_eq!(out.status.code(), Some(0), "{client}");
        assert!(
            out.stderr_text().contains("No such image: nope:latest"),
            "{client}"
        );
        assert!(
            out.stdout_text()
                .contains(&format!("Deleted: {}", hello.id)),
            "{client}"
        );
    }
    // Without -f it is one, in berth as in docker.
    let out = daemon.berth(["rmi", "nope"]);
    assert_eq!(out.status.code(), Some(1));
}

// --------------------------------------------------------------------- save

#[test]
fn save_writes_archives_that_a_second_daemon_loads_with_the_same_ids_and_tags() {
    let first = Berthd::start();
    let second = Berthd::start();
    let busybox = first.load_image("busybox");
    let layers = first.load_image("berth-test/layers");
    let gzip = first.load_image("berth-test/busybox-gzip");
    first
        .docker(["tag", "busybox", "busybox:v2"])
        .assert_success();
    let work = tempfile::tempdir().expect("temp dir");
    let all = work.path().join("all.tar");
    let all_str = all.to_str().unwrap();

    // -o, several images, a repository without tag (all its tags).
    first
        .docker([
            "save",
            "-o",
            all_str,
            "busybox",
            "berth-test/layers",
            "berth-test/busybox-gzip",
        ])
        .assert_success();
    let members = read_archive(&all);
    let names: Vec<String> = members.iter().map(|(h, _)| member_name(h)).collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "a member is written twice: {names:?}"
    );
    // Layers are stored uncompressed under their diff IDs, busybox's once for all three.
    let mut layer_blobs = BTreeSet::new();
    for image in [&busybox, &layers, &gzip] {
        for d in &image.diff_ids {
            layer_blobs.insert(format!("blobs/sha256/{}", hex(d)));
        }
    }
    for blob in &layer_blobs {
        assert!(names.contains(blob), "{blob} missing from {names:?}");
    }
    let manifest = archive_manifest(&all);
    let entries = manifest.as_array().expect("manifest.json is a list");
    assert_eq!(entries.len(), 3);
    let mut tags: Vec<String> = entries
        .iter()
        .flat_map(|e| e["RepoTags"].as_array().unwrap().clone())
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            "berth-test/busybox-gzip:latest",
            "berth-test/layers:latest",
            "busybox:latest",
            "busybox:v2"
        ]
    );
    for entry in entries {
        assert_eq!(
            entry["Layers"][0],
            format!("blobs/sha256/{}", hex(&busybox.diff_ids[0])),
            "every image starts with the one busybox layer blob"
        );
    }

    let out = second.docker(["load", "-i", all_str]).assert_success();
    let mut loaded: Vec<&str> = out.lines().collect();
    loaded.sort_unstable();
    assert_eq!(
        loaded,
        [
            "Loaded image: berth-test/busybox-gzip:latest",
            "Loaded image: berth-test/layers:latest",
            "Loaded image: busybox:latest",
            "Loaded image: busybox:v2"
        ]
    );
    let list = [
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ];
    assert_eq!(
        same_output(&second, &list),
        first.docker(list).assert_success()
    );
    for image in [&busybox, &layers, &gzip] {
        let template = "{{.Id}} {{json .RootFS.Layers}} {{json .Config}}";
        assert_eq!(
            second
                .docker(["image", "inspect", "-f", template, &image.reference])
                .assert_success(),
            first
                .docker(["image", "inspect", "-f", template, &image.reference])
                .assert_success()
        );
    }
    assert_eq!(snapshot_dirs(&second), snapshot_dirs(&first));

    // stdout redirect: the CLI writes the archive to stdout when it is not a terminal.
    let out = first.docker(["save", "hello-world"]);
    assert!(out.assert_failure().contains("No such image: hello-world"));
    let out = first.docker(["save", "busybox:latest"]);
    let single = work.path().join("busybox.tar");
    fs::write(&single, &out.stdout).expect("write saved archive");
    out.assert_success();
    let berth_out = first.berth(["save", "busybox:latest"]);
    berth_out.assert_success();
    assert_eq!(
        berth_out.stdout, out.stdout,
        "docker save and berth save differ"
    );
    let manifest = archive_manifest(&single);
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["busybox:latest"])
    );

    // skopeo reads it both as a docker-archive and as an OCI layout.
    let skopeo = |source: String| -> serde_json::Value {
        let out = berth_e2e::run_command(
            std::process::Command::new("skopeo").args(["inspect", &source]),
            None,
        );
        serde_json::from_str(&out.assert_success()).expect("skopeo inspect prints JSON")
    };
    let single_str = single.to_str().unwrap();
    let docker_archive = skopeo(format!("docker-archive:{single_str}"));
    assert_eq!(
        docker_archive["Layers"],
        serde_json::json!(busybox.diff_ids)
    );
    assert_eq!(docker_archive["Created"], "2024-01-01T00:00:00Z");
    let oci = skopeo(format!("oci-archive:{single_str}"));
    assert_eq!(oci["Layers"], serde_json::json!(busybox.diff_ids));
    let from_all = skopeo(format!("docker-archive:{all_str}:berth-test/layers:latest"));
    assert_eq!(from_all["Layers"], serde_json::json!(layers.diff_ids));
    let raw = berth_e2e::run_command(
        std::process::Command::new("skopeo").args([
            "inspect",
            "--raw",
            &format!("oci-archive:{single_str}"),
        ]),
        None,
    );
    let raw: serde_json::Value = serde_json::from_str(&raw.assert_success()).unwrap();
    assert_eq!(raw["config"]["digest"], busybox.id.as_str());

    // The saved single archive loads back into the first daemon after removal.
    first
        .docker(["rmi", "busybox:latest", "busybox:v2"])
        .assert_success();
    first.docker(["load", "-i", single_str]).assert_success();
    let id = first
        .docker(["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .assert_success();
    assert_eq!(id.trim(), busybox.id);
    assert_no_temporaries(&first);
    assert_no_temporaries(&second);
}

// ------------------------------------------------------------------- import

#[test]
fn import_of_file_stdin_gzip_and_zstd_tarballs_with_changes_and_message() {
    let daemon = Berthd::start();
    let work = tempfile::tempdir().expect("temp dir");
    let tarball = rootfs_tar(&[("etc/hello", b"imported\n"), ("srv/data.bin", &[7u8; 5000])]);
    let plain = work.path().join("rootfs.tar");
    fs::write(&plain, &tarball).unwrap();
    let gz = work.path().join("rootfs.tar.gz");
    fs::write(&gz, gzip(&tarball)).unwrap();
    let zst = work.path().join("rootfs.tar.zst");
    fs::write(&zst, zstd::encode_all(&tarball[..], 3).unwrap()).unwrap();

    let changes = [
        "-c",
        "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]",
        "-c",
        "ENTRYPOINT [\"/entry\"]",
        "-c",
        "ENV A=1 B=\"two words\"",
        "-c",
        "WORKDIR /srv",
        "-c",
        "EXPOSE 80/tcp 53/udp",
        "-c",
        "LABEL org.example.a=b",
        "-c",
        "USER 1000:1000",
    ];
    let mut args = vec!["import"];
    args.extend(changes);
    args.extend([
        "-m",
        "made by a test",
        plain.to_str().unwrap(),
        "imported:plain",
    ]);
    let id = imported_id(&daemon.docker(&args).assert_success());
    let config = daemon
        .docker([
            "image",
            "inspect",
            "-f",
            "{{json .Config}}",
            "imported:plain",
        ])
        .assert_success();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "echo hi"])
    );
    assert_eq!(config["Entrypoint"], serde_json::json!(["/entry"]));
    assert_eq!(config["Env"], serde_json::json!(["A=1", "B=two words"]));
    assert_eq!(config["WorkingDir"], "/srv");
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "80/tcp": {}})
    );
    assert_eq!(config["Labels"], serde_json::json!({"org.example.a": "b"}));
    assert_eq!(config["User"], "1000:1000");
    let inspect = daemon
        .docker([
            "image",
            "inspect",
            "-f",
            "{{.Id}}|{{.Comment}}|{{.Os}}|{{json .RepoTags}}|{{len .RootFS.Layers}}",
            "imported:plain",
        ])
        .assert_success();
    assert_eq!(
        inspect.trim(),
        format!("{id}|made by a test|linux|[\"imported:plain\"]|1")
    );
    let history = same_output(
        &daemon,
        &[
            "history",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
            "imported:plain",
        ],
    );
    let size = inspected_size(&daemon, "imported:plain");
    assert_eq!(
        history,
        format!(
            "{}||{}|made by a test\n",
            short_id(&id),
            human_size(size, 3)
        )
    );
    assert!(size >= 5009, "{size}");

    // stdin (`-`), gzip from a file, zstd through stdin; berth too.
    let from_stdin = imported_id(
        &daemon
            .docker_with_stdin(["import", "-", "imported:stdin"], &tarball)
            .assert_success(),
    );
    let from_gzip = imported_id(
        &daemon
            .docker(["import", gz.to_str().unwrap(), "imported:gzip"])
            .assert_success(),
    );
    let from_zstd = imported_id(
        &daemon
            .berth_with_stdin(["import", "-", "imported:zstd"], &fs::read(&zst).unwrap())
            .assert_success(),
    );
    let comment = daemon
        .docker(["history", "--format", "{{.Comment}}", "imported:stdin"])
        .assert_success();
    assert_eq!(comment, "Imported from -\n");
    let layers = daemon
        .docker([
            "image",
            "inspect",
            "-f",
            "{{json .RootFS.Layers}}",
            "imported:plain",
            "imported:stdin",
            "imported:gzip",
            "imported:zstd",
        ])
        .assert_success();
    let layers: Vec<&str> = layers.lines().collect();
    assert!(layers.iter().all(|l| *l == layers[0]), "{layers:?}");
    // One tarball content, one snapshot, one layer blob (stored uncompressed).
    assert_eq!(snapshot_dirs(&daemon).len(), 1);
    let diff_id: Vec<String> = serde_json::from_str(layers[0]).unwrap();
    assert_eq!(
        snapshot_dirs(&daemon).into_iter().next().unwrap(),
        hex(&diff_id[0])
    );
    assert!(store_contents(&daemon).blobs.contains(hex(&diff_id[0])));
    let ids: BTreeSet<&String> = [&id, &from_stdin, &from_gzip, &from_zstd]
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 4);

    // Untagged import is dangling.
    let dangling = imported_id(
        &daemon
            .docker(["import", plain.to_str().unwrap()])
            .assert_success(),
    );
    let listed = daemon
        .docker(["images", "-f", "dangling=true", "-q", "--no-trunc"])
        .assert_success();
    assert_eq!(listed, format!("{dangling}\n"));

    // A change that is not allowed fails with docker's message and creates nothing.
    let before = store_contents(&daemon);
    let images_before = daemon.docker(["images", "-a", "-q"]).assert_success();
    for client in ["docker", "berth"] {
        let args = [
            "import",
            "-c",
            "RUN x",
            plain.to_str().unwrap(),
            "imported:bad",
        ];
        let out = if client == "docker" {
            daemon.docker(args)
        } else {
            daemon.berth(args)
        };
        assert!(
            out.assert_failure()
                .contains("run is not a valid change command"),
            "{client}: {}",
            out.stderr_text()
        );
    }
    assert_eq!(store_contents(&daemon), before);
    assert_eq!(
        daemon.docker(["images", "-a", "-q"]).assert_success(),
        images_before
    );
    // A tarball that is not one fails and leaves nothing either.
    let out = daemon.docker_with_stdin(["import", "-", "imported:junk"], &[0x42; 4096]);
    out.assert_failure();
    assert_eq!(store_contents(&daemon), before);
    assert_no_temporaries(&daemon);
}

// -------------------------------------------------------------------- prune

#[test]
fn image_prune_removes_dangling_by_default_and_more_with_all_and_filters() {
    let daemon = Berthd::start();
    let busybox = daemon.load_image("busybox");
    let hello = daemon.load_image("hello-world");
    let layers = daemon.load_image("berth-test/layers");
    let tarball = rootfs_tar(&[("etc/dangling", b"d\n")]);
    let dangling = imported_id(
        &daemon
            .docker_with_stdin(["import", "-"], &tarball)
            .assert_success(),
    );
    let tarball = rootfs_tar(&[("etc/recent", b"r\n")]);
    let recent = imported_id(
        &daemon
            .docker_with_stdin(
                ["import", "-c", "LABEL keep=yes", "-", "recent:1"],
                &tarball,
            )
            .assert_success(),
    );
    let dangling_size = inspected_size(&daemon, &dangling);
    let dangling_layer = daemon
        .docker([
            "image",
            "inspect",
            "-f",
            "{{index .RootFS.Layers 0}}",
            &dangling,
        ])
        .assert_success();
    // One-layer images: Size is their one snapshot's size, what deleting them frees.
    let old_images_size =
        inspected_size(&daemon, "busybox") + inspected_size(&daemon, "hello-world");

    let out = daemon.docker(["image", "prune", "-f"]).assert_success();
    assert_eq!(
        out,
        format!(
            "Deleted Images:\ndeleted: {dangling}\ndeleted: {}\n\nTotal reclaimed space: {}\n",
            dangling_layer.trim(),
            human_size(dangling_size, 4)
        )
    );
    let out = daemon.docker(["image", "prune", "-f"]).assert_success();
    assert_eq!(out, "Total reclaimed space: 0B\n");

    // -a with a label filter: only the layers image; busybox's shared layer stays.
    let chains = chain_ids_of(&layers);
    let out = daemon
        .docker([
            "image",
            "prune",
            "-a",
            "-f",
            "--filter",
            "label=org.berth.test=layers",
        ])
        .assert_success();
    let freed = out
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("Total reclaimed space: "))
        .expect("reclaimed line")
        .to_string();
    assert_eq!(
        out,
        format!(
            "Deleted Images:\nuntagged: berth-test/layers:latest\ndeleted: {}\ndeleted: sha256:{}\ndeleted: sha256:{}\n\nTotal reclaimed space: {freed}\n",
            layers.id, chains[2], chains[1]
        )
    );
    assert_ne!(freed, "0B");

    // until: the 2024 images go, the one imported now stays.
    let out = daemon
        .docker([
            "image",
            "prune",
            "-a",
            "-f",
            "--filter",
            "until=2025-01-01T00:00:00Z",
        ])
        .assert_success();
    for id in [&busybox.id, &hello.id] {
        assert!(out.contains(&format!("deleted: {id}")), "{out}");
    }
    assert!(!out.contains(&recent), "{out}");
    let expected_freed = human_size(old_images_size, 4);
    assert!(
        out.ends_with(&format!("Total reclaimed space: {expected_freed}\n")),
        "{out}"
    );
    assert_eq!(
        daemon
            .docker(["images", "-q", "--no-trunc"])
            .assert_success(),
        format!("{recent}\n")
    );
    // label!= keeps it; a bad filter is refused.
    let out = daemon
        .docker(["image", "prune", "-a", "-f", "--filter", "label!=keep=yes"])
        .assert_success();
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let out = daemon.docker(["image", "prune", "-f", "--filter", "colour=red"]);
    assert!(out.assert_failure().contains("invalid filter 'colour'"));
    let out = daemon
        .docker(["image", "prune", "-a", "-f"])
        .assert_success();
    assert!(out.contains(&format!("deleted: {recent}")), "{out}");
    assert!(snapshot_dirs(&daemon).is_empty());
    assert!(store_contents(&daemon).blobs.is_empty());
    assert_no_temporaries(&daemon);
}

// --------------------------------------------------------------------- info

#[test]
fn info_counts_images_and_the_data_root_is_clean_after_everything() {
    let daemon = Berthd::start();
    let count = |d: &Berthd| {
        d.docker(["info", "--format", "{{.Images}}"])
            .assert_success()
            .trim()
            .to_string()
    };
    assert_eq!(count(&daemon), "0");
    load_all(&daemon);
    assert_eq!(count(&daemon), "5");
    daemon
        .docker(["tag", "busybox", "busybox:two"])
        .assert_success();
    assert_eq!(count(&daemon), "5", "a tag is no image");
    daemon.docker(["rmi", "hello-world"]).assert_success();
    assert_eq!(count(&daemon), "4");
    let info = daemon.docker(["info"]).assert_success();
    assert!(info.contains(" Images: 4\n"), "{info}");
    assert_no_temporaries(&daemon);
    // Restarting keeps all of it.
    let mut daemon = daemon;
    daemon.restart();
    assert_eq!(count(&daemon), "4");
    assert_no_temporaries(&daemon);
}

/// Docker records `Metadata.LastTagTime` when a tag is set by `tag` (or `import`),
/// not when `load` restores the tags an archive carries.
#[test]
fn last_tag_time_is_set_by_tag_not_by_load() {
    let daemon = Berthd::start();
    daemon.load_image("busybox");
    let format = [
        "image",
        "inspect",
        "-f",
        "{{.Metadata.LastTagTime}}",
        "busybox",
    ];
    let loaded = daemon.docker(format).assert_success();
    assert!(
        loaded.starts_with("0001-01-01"),
        "load set LastTagTime: {loaded}"
    );
    daemon
        .docker(["tag", "busybox", "busybox:again"])
        .assert_success();
    let tagged = daemon.docker(format).assert_success();
    assert!(
        !tagged.starts_with("0001-01-01"),
        "tag did not set LastTagTime: {tagged}"
    );
}
