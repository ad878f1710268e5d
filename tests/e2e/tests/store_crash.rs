//! `kill -9` of berthd in the middle of `docker load`, `docker rmi` and `docker image
//! prune -a`: after a restart the store must be consistent. An image is either wholly
//! there (inspectable, its layers unpacked, its saved archive loads back to the same ID)
//! or absent; no temporary (ingest file, `.tmp-` snapshot or record) survives; every
//! blob and snapshot is referenced by an image; and the interrupted command succeeds
//! when run again.
//!
//! The moments to kill at are found by watching the data root (ingest files growing,
//! snapshots being unpacked or deleted), never by sleeping, so the tests neither
//! depend on the machine's speed nor wait longer than the work takes. When a command
//! finishes before the watched moment shows up, the daemon is killed anyway: both
//! outcomes must leave a consistent store.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_e2e::{Berthd, OutputExt, test_image};
use berth_oci::{Digest, Digester, chain_ids};

/// Layers of the big image, each a big random file plus many small ones (so that
/// unpacking and deleting a snapshot both take a while). Sized for this machine's
/// disk: with 3 × 64 MB and 3000 files per layer a load took 12 s and an rmi 20 s
/// (syncfs per layer and journal waits under writeback), too slow for a test that
/// repeats them; the watched moments do not depend on the size.
const LAYERS: usize = 3;
const BIG_FILE: u64 = 4 << 20;
const SMALL_FILES: usize = 200;
const REFERENCE: &str = "crash/big:latest";
/// How long a watched moment may take to show up.
const DEADLINE: Duration = Duration::from_secs(60);

/// The big test image: an archive made here, and what it holds.
struct BigImage {
    archive: PathBuf,
    id: String,
    diff_ids: Vec<String>,
}

/// Writes through to `inner`, digesting what passes.
struct DigestingWriter<W> {
    inner: W,
    digester: Digester,
}

impl<W: Write> Write for DigestingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_704_067_200);
    h
}

/// Writes layer `n` as a tarball at `path`; returns its diff ID.
fn write_layer(path: &Path, n: usize) -> Digest {
    let file = File::create(path).expect("create layer");
    let mut tar = tar::Builder::new(DigestingWriter {
        inner: io::BufWriter::new(file),
        digester: Digester::new(),
    });
    let dir = format!("layer{n}/");
    tar.append_data(
        &mut header(tar::EntryType::Directory, 0, 0o755),
        &dir,
        io::empty(),
    )
    .expect("append dir");
    let random = File::open("/dev/urandom")
        .expect("open /dev/urandom")
        .take(BIG_FILE);
    tar.append_data(
        &mut header(tar::EntryType::Regular, BIG_FILE, 0o644),
        format!("{dir}big.bin"),
        random,
    )
    .expect("append big file");
    for i in 0..SMALL_FILES {
        let data = format!("layer {n} file {i}\n");
        tar.append_data(
            &mut header(tar::EntryType::Regular, data.len() as u64, 0o644),
            format!("{dir}small-{i}"),
            data.as_bytes(),
        )
        .expect("append small file");
    }
    let mut writer = tar.into_inner().expect("finish layer");
    writer.flush().expect("flush layer");
    writer.digester.finish()
}

/// The big image while tests use it: how many hold it, and it.
static BIG: Mutex<(usize, Option<Arc<BigImage>>)> = Mutex::new((0, None));

/// A test's hold on the big image. The archive is made by the first holder (in cargo's
/// target tmp dir) and removed when the last one lets go, also when tests fail; a
/// later test makes it again.
struct BigImageHold(Arc<BigImage>);

impl BigImageHold {
    fn take() -> BigImageHold {
        let mut big = BIG.lock().unwrap_or_else(|e| e.into_inner());
        let image = big
            .1
            .get_or_insert_with(|| Arc::new(make_big_image()))
            .clone();
        big.0 += 1;
        BigImageHold(image)
    }
}

impl std::ops::Deref for BigImageHold {
    type Target = BigImage;
    fn deref(&self) -> &BigImage {
        &self.0
    }
}

impl Drop for BigImageHold {
    fn drop(&mut self) {
        let mut big = BIG.lock().unwrap_or_else(|e| e.into_inner());
        big.0 -= 1;
        if big.0 == 0
            && let Some(image) = big.1.take()
            && let Some(dir) = image.archive.parent()
        {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Writes the big archive and its layers' metadata.
fn make_big_image() -> BigImage {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-crash-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("create archive dir");
    let mut diff_ids = Vec::new();
    let mut layer_paths = Vec::new();
    for n in 0..LAYERS {
        let path = dir.join(format!("layer{n}.tar"));
        diff_ids.push(write_layer(&path, n));
        layer_paths.push(path);
    }
    let config = serde_json::json!({
        "architecture": match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        },
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": diff_ids.iter().map(Digest::to_string).collect::<Vec<_>>(),
        },
        "history": (0..LAYERS)
            .map(|n| serde_json::json!({
                "created": "2024-01-01T00:00:00Z",
                "created_by": format!("ADD layer{n} /"),
            }))
            .collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config).expect("config serializes");
    let id = Digest::of(&config);
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{}", id.hex()),
        "RepoTags": [REFERENCE],
        "Layers": diff_ids.iter().map(|d| format!("blobs/sha256/{}", d.hex())).collect::<Vec<_>>(),
    }]);
    let manifest = serde_json::to_vec(&manifest).expect("manifest serializes");

    let archive = dir.join("big.tar");
    let mut tar = tar::Builder::new(io::BufWriter::new(
        File::create(&archive).expect("create archive"),
    ));
    for (path, diff_id) in layer_paths.iter().zip(&diff_ids) {
        tar.append_path_with_name(path, format!("blobs/sha256/{}", diff_id.hex()))
            .expect("append layer");
        fs::remove_file(path).expect("remove layer file");
    }
    for (name, data) in [
        (format!("blobs/sha256/{}", id.hex()), &config),
        ("manifest.json".to_string(), &manifest),
    ] {
        tar.append_data(
            &mut header(tar::EntryType::Regular, data.len() as u64, 0o644),
            name,
            &data[..],
        )
        .expect("append metadata");
    }
    tar.into_inner()
        .expect("finish archive")
        .flush()
        .expect("flush archive");
    BigImage {
        archive,
        id: id.to_string(),
        diff_ids: diff_ids.iter().map(Digest::to_string).collect(),
    }
}

// ---------------------------------------------------------------- the store

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

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn chains_of(diff_ids: &[String]) -> Vec<String> {
    let digests: Vec<Digest> = diff_ids
        .iter()
        .map(|d| Digest::from_hex(hex(d)).expect("a diff ID is a digest"))
        .collect();
    chain_ids(&digests).iter().map(Digest::hex).collect()
}

/// Asserts everything the module docs promise after a restart; returns whether the big
/// image is there.
#[track_caller]
fn assert_consistent(daemon: &Berthd, big: &BigImage, moment: &str) -> bool {
    let root = daemon.data_root();
    let ingest = names_in(&root.join("ingest"));
    assert!(ingest.is_empty(), "{moment}: ingest/ holds {ingest:?}");
    let snapshots = names_in(&root.join("snapshots"));
    let temporary: Vec<&String> = snapshots.iter().filter(|n| n.starts_with('.')).collect();
    assert!(
        temporary.is_empty(),
        "{moment}: temporary snapshots remain: {temporary:?}"
    );
    for dir in [root.clone(), root.join("images"), root.join("blobs/sha256")] {
        let leftovers: Vec<String> = names_in(&dir)
            .into_iter()
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "{moment}: temporaries in {}: {leftovers:?}",
            dir.display()
        );
    }

    // Every image the daemon lists is inspectable; together they reference exactly
    // the blobs and snapshots on disk (all layers here are stored uncompressed, so a
    // layer's blob is its diff ID).
    let ids = daemon
        .docker(["images", "-a", "-q", "--no-trunc"])
        .assert_success();
    let ids: BTreeSet<String> = ids.lines().map(str::to_string).collect();
    let mut want_blobs = BTreeSet::new();
    let mut want_chains = BTreeSet::new();
    for id in &ids {
        let layers = daemon
            .docker(["image", "inspect", "-f", "{{json .RootFS.Layers}}", id])
            .assert_success();
        let layers: Vec<String> = serde_json::from_str(&layers).expect("layers are JSON");
        want_blobs.insert(hex(id).to_string());
        want_blobs.extend(layers.iter().map(|l| hex(l).to_string()));
        want_chains.extend(chains_of(&layers));
    }
    let records: BTreeSet<String> = names_in(&root.join("images"))
        .into_iter()
        .map(|n| n.trim_end_matches(".json").to_string())
        .collect();
    let want_records: BTreeSet<String> = ids.iter().map(|i| hex(i).to_string()).collect();
    assert_eq!(records, want_records, "{moment}: image records");
    assert_eq!(
        names_in(&root.join("blobs/sha256")),
        want_blobs,
        "{moment}: blobs on disk vs blobs the images reference"
    );
    assert_eq!(
        snapshots, want_chains,
        "{moment}: snapshots on disk vs layers the images use"
    );

    let present = ids.contains(&big.id);
    if present {
        // Wholly there: each layer's files unpacked in full.
        for (n, chain) in chains_of(&big.diff_ids).iter().enumerate() {
            let layer = root.join("snapshots").join(chain).join("fs");
            let big_file = layer.join(format!("layer{n}/big.bin"));
            let size = fs::metadata(&big_file)
                .unwrap_or_else(|e| panic!("{moment}: {}: {e}", big_file.display()))
                .len();
            assert_eq!(size, BIG_FILE, "{moment}: {}", big_file.display());
            let count = names_in(&layer.join(format!("layer{n}"))).len();
            assert_eq!(count, SMALL_FILES + 1, "{moment}: files of layer {n}");
        }
    }
    present
}

/// `docker save` of the big image, `docker rmi`, `docker load` of what was saved: the
/// same ID comes back (the load checks every layer against its diff ID).
fn assert_round_trips(daemon: &Berthd, big: &BigImage, work: &Path) {
    let saved = work.join("saved.tar");
    daemon
        .docker(["save", "-o", saved.to_str().unwrap(), &big.id])
        .assert_success();
    daemon.docker(["rmi", "-f", &big.id]).assert_success();
    let out = daemon
        .docker(["load", "-i", saved.to_str().unwrap()])
        .assert_success();
    assert!(
        out.contains(&format!("Loaded image ID: {}", big.id)),
        "{out}"
    );
    fs::remove_file(&saved).expect("remove saved archive");
    daemon.docker(["tag", &big.id, REFERENCE]).assert_success();
}

// ------------------------------------------------------------ kill moments

/// A client command running in the background while the daemon is killed.
struct Background {
    child: Child,
}

impl Background {
    fn start(daemon: &Berthd, args: &[&str]) -> Background {
        eprintln!("$ docker {} &", args.join(" "));
        let child = daemon
            .docker_cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker");
        Background { child }
    }

    fn finished(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // The daemon is gone by now, so the client ends by itself; make sure of it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !self.finished() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the data root shows while a command runs.
struct Progress {
    /// All ingest files together.
    ingest_bytes: u64,
    temporary_snapshots: usize,
    committed_snapshots: usize,
    records: usize,
}

fn progress(daemon: &Berthd) -> Progress {
    let root = daemon.data_root();
    let ingest_bytes = fs::read_dir(root.join("ingest"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let snapshots = names_in(&root.join("snapshots"));
    Progress {
        ingest_bytes,
        temporary_snapshots: snapshots.iter().filter(|n| n.starts_with('.')).count(),
        committed_snapshots: snapshots.iter().filter(|n| !n.starts_with('.')).count(),
        // Committed records only, not the temporaries they are written through.
        records: names_in(&root.join("images"))
            .iter()
            .filter(|n| !n.starts_with('.'))
            .count(),
    }
}

/// Waits until `moment` holds for the data root or the command finished, then kills
/// the daemon with SIGKILL; returns whether the moment was seen.
fn kill_when(
    daemon: &mut Berthd,
    command: &mut Background,
    moment: &dyn Fn(&Progress) -> bool,
) -> bool {
    let deadline = Instant::now() + DEADLINE;
    let seen = loop {
        if moment(&progress(daemon)) {
            break true;
        }
        if command.finished() {
            break false;
        }
        assert!(
            Instant::now() < deadline,
            "neither the moment nor the end of the command within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    daemon.kill9();
    seen
}

type Moment = (&'static str, Box<dyn Fn(&Progress) -> bool>);

#[test]
fn kill_9_during_load_leaves_a_consistent_store_and_load_succeeds_after_restart() {
    let hold = BigImageHold::take();
    let big: &BigImage = &hold;
    let mut daemon = Berthd::start();
    let work = tempfile::tempdir().expect("temp dir");
    let archive = big.archive.to_str().unwrap().to_string();
    let half = BIG_FILE * LAYERS as u64 / 2;
    let moments: Vec<Moment> = vec![
        ("staging began", Box::new(|p| p.ingest_bytes > 0)),
        (
            "staging half done",
            Box::new(move |p| p.ingest_bytes >= half),
        ),
        (
            "first layer unpacking",
            Box::new(|p| p.temporary_snapshots > 0),
        ),
        (
            "second layer unpacking",
            Box::new(|p| p.committed_snapshots >= 1 && p.temporary_snapshots > 0),
        ),
        (
            "last layer committed",
            Box::new(|p| p.committed_snapshots >= LAYERS),
        ),
        ("image recorded", Box::new(|p| p.records >= 1)),
    ];
    for (name, moment) in &moments {
        let mut load = Background::start(&daemon, &["load", "-i", &archive]);
        let seen = kill_when(&mut daemon, &mut load, moment.as_ref());
        drop(load);
        eprintln!("killed at {name:?} (seen: {seen})");
        daemon.start_again();
        if assert_consistent(&daemon, big, name) {
            assert_round_trips(&daemon, big, work.path());
            assert!(assert_consistent(&daemon, big, name));
            daemon.docker(["rmi", "-f", &big.id]).assert_success();
        }
        assert!(!assert_consistent(&daemon, big, name));
    }
    // And a load that is left alone completes.
    let out = daemon.docker(["load", "-i", &archive]).assert_success();
    assert_eq!(out, format!("Loaded image: {REFERENCE}\n"));
    assert!(assert_consistent(&daemon, big, "after a full load"));
}

/// Loads the big image and the layers test image (whose busybox layer busybox shares).
fn load_images(daemon: &Berthd, big: &BigImage) {
    daemon
        .docker(["load", "-i", big.archive.to_str().unwrap()])
        .assert_success();
    daemon.load_image("busybox");
    daemon.load_image("berth-test/layers");
}

#[test]
fn kill_9_during_rmi_of_a_multi_layer_image_leaves_a_consistent_store() {
    let hold = BigImageHold::take();
    let big: &BigImage = &hold;
    let mut daemon = Berthd::start();
    let work = tempfile::tempdir().expect("temp dir");
    load_images(&daemon, big);
    let layers = test_image("berth-test/layers");
    let moments: Vec<Moment> = vec![
        ("record deleted", Box::new(|p| p.records < 3)),
        (
            "top layer being deleted",
            Box::new(|p| p.temporary_snapshots > 0),
        ),
        (
            "a layer deleted",
            Box::new(|p| p.committed_snapshots < LAYERS + 3),
        ),
    ];
    for (name, moment) in &moments {
        let mut rmi = Background::start(&daemon, &["rmi", REFERENCE]);
        let seen = kill_when(&mut daemon, &mut rmi, moment.as_ref());
        drop(rmi);
        eprintln!("killed at {name:?} (seen: {seen})");
        daemon.start_again();
        if assert_consistent(&daemon, big, name) {
            assert_round_trips(&daemon, big, work.path());
            assert!(assert_consistent(&daemon, big, name));
            // The interrupted rmi succeeds when run again.
            daemon.docker(["rmi", REFERENCE]).assert_success();
        }
        assert!(!assert_consistent(&daemon, big, name));
        // The other images were never touched.
        let id = daemon
            .docker(["image", "inspect", "-f", "{{.Id}}", &layers.reference])
            .assert_success();
        assert_eq!(id.trim(), layers.id);
        daemon
            .docker(["load", "-i", big.archive.to_str().unwrap()])
            .assert_success();
        assert!(assert_consistent(&daemon, big, name));
    }
}

#[test]
fn kill_9_during_image_prune_all_leaves_a_consistent_store() {
    let hold = BigImageHold::take();
    let big: &BigImage = &hold;
    let mut daemon = Berthd::start();
    load_images(&daemon, big);
    let moments: Vec<Moment> = vec![
        ("first image deleted", Box::new(|p| p.records < 3)),
        (
            "a layer being deleted",
            Box::new(|p| p.temporary_snapshots > 0),
        ),
        ("two images deleted", Box::new(|p| p.records < 2)),
    ];
    for (name, moment) in &moments {
        let mut prune = Background::start(&daemon, &["image", "prune", "-a", "-f"]);
        let seen = kill_when(&mut daemon, &mut prune, moment.as_ref());
        drop(prune);
        eprintln!("killed at {name:?} (seen: {seen})");
        daemon.start_again();
        assert_consistent(&daemon, big, name);
        // Pruning again finishes the job.
        daemon
            .docker(["image", "prune", "-a", "-f"])
            .assert_success();
        assert!(!assert_consistent(&daemon, big, name));
        assert_eq!(daemon.docker(["images", "-a", "-q"]).assert_success(), "");
        load_images(&daemon, big);
    }
}
