#!/usr/bin/env python3
"""Make berth's offline test images from Debian packages.

Docker Hub is out of reach on the machines that build and test berth, so the
images the tests need are assembled here from local files: Debian's static
busybox, a tiny static C program, synthetic fixture layers, and Debian's nginx
(.debs fetched once with `apt-get download` into a cache, never installed on
the host) with the host's shared libraries. See README.md beside this file for
what each image and layer contains.

Every archive is written the way `docker save` of Docker 25+ writes it: an OCI
image layout (oci-layout, index.json, blobs/sha256/...) plus the legacy
docker-archive manifest.json and repositories in the same tarball. That one
file then loads in old and new docker, in skopeo (oci-archive: and
docker-archive:) and in berth.

Everything is deterministic: fixed mtimes (SOURCE_DATE_EPOCH, default below),
numeric owners, sorted JSON. Image IDs depend only on the inputs (the busybox
binary, hello.c, the compilers, the nginx .debs and the libraries nginx
links), and the script skips all work when a stamp of those inputs matches the
outputs already in out/.

Usage: make-images.py [--out DIR] [--force] [--no-verify] [--refresh-debs]
Needs: python3 (stdlib only), busybox-static, gcc with static libc
(libc6-dev), zstd, apt-get and dpkg-deb (the nginx image; apt needs the
network only while the .deb cache is empty); skopeo for the verification step.
"""

import argparse
import glob
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# 2024-01-01T00:00:00Z: any fixed instant works; this one only has to never change
# silently, because it is part of every image ID.
DEFAULT_EPOCH = 1704067200
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_LAYER_GZIP = MT_LAYER + "+gzip"
MT_LAYER_ZSTD = MT_LAYER + "+zstd"

# Bump when the image contents change in a way the input stamp cannot see.
FORMAT_REVISION = "1"


class MakeError(Exception):
    """A failure with a message meant for the person running the script."""


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def go_arch():
    """The machine's architecture in OCI (Go) spelling."""
    machine = platform.machine()
    table = {
        "x86_64": "amd64",
        "aarch64": "arm64",
        "armv7l": "arm",
        "i686": "386",
        "i386": "386",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
        "riscv64": "riscv64",
    }
    if machine not in table:
        raise MakeError(f"unknown machine architecture {machine!r}")
    return table[machine]


def rfc3339(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# ---------------------------------------------------------------- layer tars


class LayerBuilder:
    """Writes one layer tarball in memory with fixed mtimes and numeric owners.

    Parent directories are not added implicitly: each layer lists the
    directories it touches, as layers made by docker do.
    """

    def __init__(self, epoch):
        self.epoch = epoch
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name, kind, mode, uid=0, gid=0):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = self.epoch
        return info

    def dir(self, name, mode=0o755, uid=0, gid=0):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, uid, gid))

    def file(self, name, data=b"", mode=0o644, uid=0, gid=0, xattrs=None):
        info = self._info(name, tarfile.REGTYPE, mode, uid, gid)
        info.size = len(data)
        if xattrs:
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
        self.tar.addfile(info, io.BytesIO(data))

    def hardlink(self, name, target, mode=0o644, uid=0, gid=0):
        # The header repeats the target's mode and owner, as docker's tar writer
        # does: extractors (docker's among them) chmod/chown the shared inode
        # from every hardlink header, so a wrong mode here changes the file.
        info = self._info(name, tarfile.LNKTYPE, mode, uid, gid)
        info.linkname = target
        self.tar.addfile(info)

    def symlink(self, name, target):
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)

    def fifo(self, name, mode=0o644):
        self.tar.addfile(self._info(name, tarfile.FIFOTYPE, mode))

    def whiteout(self, path):
        """Marks `path` (from a lower layer) deleted: an empty `.wh.<name>` file."""
        parent, _, base = path.rpartition("/")
        self.file(f"{parent}/.wh.{base}" if parent else f".wh.{base}", mode=0o000)

    def opaque(self, directory):
        """Hides everything lower layers put in `directory`."""
        self.file(f"{directory}/.wh..wh..opq", mode=0o000)

    def finish(self):
        self.tar.close()
        return self.buf.getvalue()


PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""

GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
"""

SHADOW_USERS = ["root", "daemon", "bin", "sys", "sync", "mail", "www-data", "operator", "nobody"]


def find_busybox():
    """Debian's busybox-static binary; refuses a dynamically linked busybox."""
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
            if elf_has_interpreter(data):
                raise MakeError(
                    f"{path} is dynamically linked: install busybox-static "
                    "(apt-get install busybox-static)"
                )
            return path, data
    raise MakeError("busybox not found: apt-get install busybox-static")


def elf_has_interpreter(data):
    """True when a 64-bit little-endian ELF has a PT_INTERP (needs ld.so)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise MakeError("busybox is not a 64-bit little-endian ELF file")
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        (p_type,) = struct.unpack_from("<I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return True
    return False


def busybox_applets(path):
    out = subprocess.run([path, "--list"], check=True, capture_output=True, text=True).stdout
    applets = sorted({a for a in out.split() if a and "/" not in a and a != "busybox"})
    if len(applets) < 100:
        raise MakeError(f"{path} --list named only {len(applets)} applets")
    return applets


def busybox_layer(epoch, busybox):
    """Layer 1 of busybox and berth-test/layers: the real busybox image's tree."""
    layer = LayerBuilder(epoch)
    layer.dir("bin")
    # The binary first, then every applet as a hardlink to it, as the real image.
    layer.file("bin/busybox", busybox["data"], mode=0o755)
    for applet in busybox["applets"]:
        layer.hardlink(f"bin/{applet}", "bin/busybox", mode=0o755)
    layer.dir("dev")
    layer.dir("etc")
    layer.file("etc/group", GROUP.encode())
    layer.file("etc/hostname")
    layer.file("etc/hosts")
    layer.symlink("etc/mtab", "/proc/mounts")
    layer.file("etc/passwd", PASSWD.encode())
    layer.file("etc/resolv.conf")
    shadow = "".join(f"{u}:*:19723:0:99999:7:::\n" for u in SHADOW_USERS)
    layer.file("etc/shadow", shadow.encode(), mode=0o600)
    layer.dir("home")
    layer.dir("proc")
    layer.dir("root", mode=0o700)
    layer.dir("sys")
    layer.dir("tmp", mode=0o1777)
    layer.dir("usr")
    layer.dir("usr/sbin")
    layer.dir("var")
    layer.dir("var/spool")
    layer.dir("var/spool/mail")
    layer.dir("var/www")
    return layer.finish()


def fixtures_layer(epoch):
    """Layer 2 of berth-test/layers. README.md lists every entry; keep them in step."""
    layer = LayerBuilder(epoch)
    # Deletions of layer-1 entries: a file (one of busybox's hardlinks) and a directory.
    layer.dir("bin")
    layer.whiteout("bin/vi")
    layer.dir("var")
    layer.whiteout("var/www")
    layer.dir("data")
    layer.file("data/hello.txt", b"hello from layer 2\n")
    layer.hardlink("data/hardlink.txt", "data/hello.txt")
    layer.symlink("data/rel-link", "hello.txt")
    layer.symlink("data/abs-link", "/data/hello.txt")
    layer.symlink("data/dangling-link", "/does/not/exist")
    layer.fifo("data/fifo")
    layer.file("data/setuid", b"#!/bin/sh\necho setuid\n", mode=0o4755)
    layer.file("data/owned-by-1000", b"owned by 1000:1000\n", mode=0o640, uid=1000, gid=1000)
    layer.file("data/xattr.txt", b"has an xattr\n", xattrs={"user.berth": "1"})
    layer.file("data/to-delete.txt", b"deleted in layer 3\n")
    layer.dir("data/nested")
    layer.dir("data/nested/a")
    layer.dir("data/nested/a/b")
    layer.dir("data/nested/a/b/c", mode=0o700)
    layer.file("data/nested/a/b/c/deep.txt", b"deep\n")
    layer.dir("data/opaque")
    layer.file("data/opaque/old1.txt", b"old 1\n")
    layer.file("data/opaque/old2.txt", b"old 2\n")
    layer.dir("data/opaque/sub")
    layer.file("data/opaque/sub/old3.txt", b"old 3\n")
    layer.dir("data/kept")
    layer.file("data/kept/lower.txt", b"from layer 2\n")
    return layer.finish()


def changes_layer(epoch):
    """Layer 3 of berth-test/layers: deletes, an opaque directory, additions."""
    layer = LayerBuilder(epoch)
    layer.dir("data")
    layer.whiteout("data/to-delete.txt")
    layer.file("data/added-in-3.txt", b"added in layer 3\n")
    layer.dir("data/opaque")
    layer.opaque("data/opaque")
    layer.file("data/opaque/new.txt", b"new in layer 3\n")
    layer.dir("data/kept")
    layer.file("data/kept/upper.txt", b"from layer 3\n")
    return layer.finish()


def hello_layer(epoch, hello_binary):
    layer = LayerBuilder(epoch)
    layer.file("hello", hello_binary, mode=0o755)
    return layer.finish()


def compile_hello(workdir):
    source = os.path.join(HERE, "hello.c")
    binary = os.path.join(workdir, "hello")
    gcc = shutil.which("gcc")
    if gcc is None:
        raise MakeError("gcc not found: apt-get install gcc libc6-dev")
    result = subprocess.run(
        [gcc, "-static", "-Os", "-s", "-Wl,--build-id=none", "-o", binary, source],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise MakeError(f"compiling hello.c failed (is libc6-dev installed?):\n{result.stderr}")
    with open(binary, "rb") as f:
        data = f.read()
    if elf_has_interpreter(data):
        raise MakeError("hello was linked dynamically despite -static")
    return data


# ------------------------------------------------------------------- nginx

# The .debs are kept here between runs (tests/images/out is gitignored), so
# only the first run, or --refresh-debs, needs apt and the network.
DEB_CACHE = os.path.join(HERE, "out", "debs")
NGINX_PACKAGES = ("nginx", "nginx-common")

# Our own configuration, shaped like the official image's: the welcome page on
# port 80, logs to the container's stdout and stderr, workers as www-data.
# No `include modules-enabled`: the image carries no dynamic modules.
NGINX_CONF = """\
user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log /dev/stderr notice;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;

    server {
        listen 80 default_server;
        server_name _;
        root /usr/share/nginx/html;
        index index.html;
        location / {
            try_files $uri $uri/ =404;
        }
    }
}
"""


def cached_debs(package):
    """{version: path} of `package`'s .debs in the cache.

    Names are apt's (`<package>_<version>_<arch>.deb`, the epoch colon as %3a),
    so .debs copied in by hand are found too.
    """
    found = {}
    for path in glob.glob(os.path.join(DEB_CACHE, f"{package}_*.deb")):
        parts = os.path.basename(path)[:-4].split("_")
        if len(parts) == 3 and parts[0] == package:
            found[parts[1].replace("%3a", ":")] = path
    return found


def cached_nginx_version():
    """The version of which every NGINX_PACKAGES .deb is in the cache, or None."""
    versions = None
    for package in NGINX_PACKAGES:
        found = set(cached_debs(package))
        versions = found if versions is None else versions & found
    return max(versions) if versions else None


def deb_field(path, field):
    result = subprocess.run(["dpkg-deb", "-f", path, field], capture_output=True, text=True)
    if result.returncode != 0:
        raise MakeError(f"dpkg-deb -f {path} {field} failed:\n{result.stderr}")
    return result.stdout.strip()


def download_nginx_debs():
    """Fetches the candidate nginx .debs with `apt-get download` into the cache.

    Replaces older cached versions. Returns the version.
    """
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise MakeError("the nginx image needs apt-get and dpkg-deb (a Debian host)")
    os.makedirs(DEB_CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="download-", dir=DEB_CACHE) as tmp:
        # apt drops privileges to _apt for downloads; let it write here.
        os.chmod(tmp, 0o777)
        def download():
            return subprocess.run(
                ["apt-get", "-q", "download", *NGINX_PACKAGES],
                cwd=tmp,
                capture_output=True,
                text=True,
            )

        result = download()
        if result.returncode != 0 and os.geteuid() == 0:
            # A fresh machine whose packages were all preinstalled may have no package
            # lists yet: fetch them once and try again.
            subprocess.run(
                ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=600", "update"],
                capture_output=True,
            )
            result = download()
        if result.returncode != 0:
            raise MakeError(
                "cannot make nginx:latest: `apt-get download nginx nginx-common` failed "
                "(no network, or no `apt-get update` yet?). Run `apt-get update` and try "
                "again, or copy the two .debs into "
                f"{DEB_CACHE}.\napt-get said:\n{result.stderr.strip()}"
            )
        fetched = {}
        for name in os.listdir(tmp):
            path = os.path.join(tmp, name)
            fetched[deb_field(path, "Package")] = (path, deb_field(path, "Version"))
        versions = {fetched.get(p, (None, None))[1] for p in NGINX_PACKAGES}
        if len(versions) != 1 or None in versions:
            raise MakeError(f"apt-get download gave {sorted(fetched)} with versions {versions}")
        version = versions.pop()
        for package in NGINX_PACKAGES:
            for old in glob.glob(os.path.join(DEB_CACHE, f"{package}_*.deb")):
                os.remove(old)
            path = fetched[package][0]
            os.replace(path, os.path.join(DEB_CACHE, os.path.basename(path)))
    for old in glob.glob(os.path.join(DEB_CACHE, "root-*")):
        shutil.rmtree(old, ignore_errors=True)
    return version


def nginx_root(refresh):
    """The cached .debs unpacked (`dpkg-deb -x`, no maintainer scripts): (version, dir)."""
    version = None if refresh else cached_nginx_version()
    if version is None:
        version = download_nginx_debs()
    root = os.path.join(DEB_CACHE, "root-" + version.replace(":", "%3a"))
    if not os.path.isdir(root):
        tmp = tempfile.mkdtemp(prefix="unpack-", dir=DEB_CACHE)
        for package in NGINX_PACKAGES:
            deb = cached_debs(package)[version]
            result = subprocess.run(["dpkg-deb", "-x", deb, tmp], capture_output=True, text=True)
            if result.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise MakeError(f"dpkg-deb -x {deb} failed:\n{result.stderr}")
        os.replace(tmp, root)
    return version, root


def shared_libraries(binary):
    """What `ldd` resolves for `binary` on this host: ([(soname, real path)], interpreter).

    The host and the .debs come from the same Debian release, so the host's
    libraries are the ones the package was built against.
    """
    result = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if result.returncode != 0:
        raise MakeError(f"ldd {binary} failed:\n{result.stdout}{result.stderr}")
    libraries, interpreter = [], None
    for line in result.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            target = parts[parts.index("=>") + 1]
            if target == "not":
                raise MakeError(
                    f"{binary} needs {parts[0]}, which this host lacks "
                    "(scripts/install-deps installs nginx's libraries)"
                )
            libraries.append((parts[0], os.path.realpath(target)))
        elif parts and parts[0].startswith("/"):
            interpreter = parts[0]
    if interpreter is None:
        raise MakeError(f"ldd {binary} named no dynamic loader")
    return sorted(libraries), interpreter


def nginx_inputs(refresh):
    """Everything the nginx layer is made of, read from the cache and the host."""
    version, root = nginx_root(refresh)
    binary = os.path.join(root, "usr/sbin/nginx")
    libraries, interpreter = shared_libraries(binary)
    files = {}
    for soname, real in libraries + [(os.path.basename(interpreter), os.path.realpath(interpreter))]:
        with open(real, "rb") as f:
            files[soname] = f.read()
    return {
        "version": version,
        "root": root,
        "libdir": os.path.dirname(os.path.realpath(interpreter)).lstrip("/"),
        "interpreter": interpreter.lstrip("/"),
        "libraries": files,
    }


def nginx_layer(epoch, nginx):
    """The one layer nginx:latest adds on top of busybox's."""
    root = nginx["root"]

    def read(path):
        with open(os.path.join(root, path), "rb") as f:
            return f.read()

    layer = LayerBuilder(epoch)
    layer.dir("etc")
    layer.dir("etc/nginx")
    layer.file("etc/nginx/mime.types", read("etc/nginx/mime.types"))
    layer.file("etc/nginx/nginx.conf", NGINX_CONF.encode())
    # Every directory on the way to the libraries, then the loader's own path
    # (/lib64/ld-linux-x86-64.so.2) as a link to the copy beside them.
    libdir, interpreter = nginx["libdir"], nginx["interpreter"]
    made = {"etc", "etc/nginx"}
    for path in (libdir + "/", os.path.dirname(interpreter) + "/"):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            directory = "/".join(parts[:i])
            if directory and directory not in made:
                made.add(directory)
                layer.dir(directory)
    for soname, data in sorted(nginx["libraries"].items()):
        layer.file(f"{libdir}/{soname}", data, mode=0o755 if soname.startswith("ld-") else 0o644)
    loader = f"{libdir}/{os.path.basename(interpreter)}"
    if interpreter != loader:
        layer.symlink(interpreter, "/" + loader)
    layer.dir("run")
    for directory in ("usr", "usr/sbin", "usr/share", "usr/share/nginx", "usr/share/nginx/html"):
        if directory not in made:
            layer.dir(directory)
    layer.file("usr/sbin/nginx", read("usr/sbin/nginx"), mode=0o755)
    layer.file("usr/share/nginx/html/index.html", read("usr/share/nginx/html/index.html"))
    layer.dir("var")
    layer.dir("var/lib")
    layer.dir("var/lib/nginx")
    layer.dir("var/log")
    layer.dir("var/log/nginx")
    # As the official image: the default log paths lead to the container's output.
    layer.symlink("var/log/nginx/access.log", "/dev/stdout")
    layer.symlink("var/log/nginx/error.log", "/dev/stderr")
    return layer.finish()


# ------------------------------------------------------------- compression


def gzip_bytes(data):
    # mtime=0 and no file name keep the gzip header, and so the digest, stable.
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def zstd_bytes(data):
    zstd = shutil.which("zstd")
    if zstd is None:
        raise MakeError("zstd not found: apt-get install zstd")
    return subprocess.run(
        [zstd, "-q", "-3", "-c", "--no-progress"], input=data, check=True, capture_output=True
    ).stdout


# ------------------------------------------------------------ image archives


class Layer:
    def __init__(self, tar_bytes, media_type=MT_LAYER, blob=None):
        self.diff_id = sha256(tar_bytes)
        self.media_type = media_type
        self.blob = tar_bytes if blob is None else blob
        self.digest = sha256(self.blob)


class Image:
    """One image: its config (built here) and its layers, plus its tag."""

    def __init__(self, name, tag, layers, config, history, epoch, arch):
        self.name, self.tag = name, tag
        self.layers = layers
        created = rfc3339(epoch)
        for entry in history:
            entry.setdefault("created", created)
        self.config_bytes = canonical_json(
            {
                "architecture": arch,
                "config": config,
                "created": created,
                "history": history,
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
            }
        )
        self.config_digest = sha256(self.config_bytes)
        self.manifest_bytes = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": MT_MANIFEST,
                "config": {
                    "mediaType": MT_CONFIG,
                    "digest": self.config_digest,
                    "size": len(self.config_bytes),
                },
                "layers": [
                    {"mediaType": l.media_type, "digest": l.digest, "size": len(l.blob)}
                    for l in layers
                ],
            }
        )
        self.manifest_digest = sha256(self.manifest_bytes)

    @property
    def ref(self):
        return f"{self.name}:{self.tag}"

    @property
    def full_name(self):
        """The fully qualified name containerd (and docker 25+) put in index.json."""
        name = self.name if "/" in self.name else f"library/{self.name}"
        return f"docker.io/{name}:{self.tag}"


def blob_path(digest):
    return "blobs/sha256/" + digest.split(":", 1)[1]


def write_archive(path, images, epoch):
    """Writes `images` as one docker-save-25 style tarball, atomically."""
    blobs = {}
    index_manifests, docker_manifest, repositories = [], [], {}
    for image in images:
        for layer in image.layers:
            blobs[layer.digest] = layer.blob
        blobs[image.config_digest] = image.config_bytes
        blobs[image.manifest_digest] = image.manifest_bytes
        index_manifests.append(
            {
                "mediaType": MT_MANIFEST,
                "digest": image.manifest_digest,
                "size": len(image.manifest_bytes),
                "annotations": {
                    "io.containerd.image.name": image.full_name,
                    "org.opencontainers.image.ref.name": image.tag,
                },
            }
        )
        docker_manifest.append(
            {
                "Config": blob_path(image.config_digest),
                "RepoTags": [image.ref],
                "Layers": [blob_path(l.digest) for l in image.layers],
                # Docker 25+ records each layer's descriptor here, keyed by diff ID;
                # for compressed layers it is the only place the media type appears.
                "LayerSources": {
                    l.diff_id: {"mediaType": l.media_type, "digest": l.digest, "size": len(l.blob)}
                    for l in image.layers
                },
            }
        )
        # Docker writes the top layer's diff ID (hex) here.
        repositories.setdefault(image.name, {})[image.tag] = image.layers[-1].diff_id.split(":")[1]

    files = {blob_path(d): data for d, data in blobs.items()}
    files["index.json"] = canonical_json(
        {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": index_manifests}
    )
    files["manifest.json"] = json.dumps(docker_manifest, separators=(",", ":")).encode() + b"\n"
    files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    files["repositories"] = json.dumps(repositories, separators=(",", ":")).encode() + b"\n"

    tmp = f"{path}.tmp{os.getpid()}"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, epoch
            tar.addfile(info, io.BytesIO(files[name]))
    os.replace(tmp, path)


# ------------------------------------------------------------- verification


def verify_archive(path, image, workdir):
    """Loads the archive both ways with skopeo and checks every digest."""
    for transport in ("oci-archive", "docker-archive"):
        result = subprocess.run(
            ["skopeo", "inspect", "--raw", f"{transport}:{path}"], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise MakeError(f"skopeo inspect {transport}:{path} failed:\n{result.stderr}")
        raw = json.loads(result.stdout)
        if raw.get("config", {}).get("digest") != image.config_digest:
            raise MakeError(f"{transport}:{path}: config digest {raw.get('config')} != {image.config_digest}")

        dest = os.path.join(workdir, f"copy-{transport}")
        shutil.rmtree(dest, ignore_errors=True)
        result = subprocess.run(
            ["skopeo", "copy", "-q", f"{transport}:{path}", f"dir:{dest}"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise MakeError(f"skopeo copy {transport}:{path} dir: failed:\n{result.stderr}")
        # dir: names every blob by its hex digest: recompute each one.
        for name in os.listdir(dest):
            if name in ("manifest.json", "version"):
                continue
            with open(os.path.join(dest, name), "rb") as f:
                actual = hashlib.sha256(f.read()).hexdigest()
            if actual != name:
                raise MakeError(f"{transport}:{path}: blob {name} has digest {actual}")
        expected = {image.config_digest} | {l.digest for l in image.layers}
        if transport == "docker-archive":
            # skopeo hands docker-archive layers on as stored; it may also
            # offer them uncompressed, so either digest is acceptable.
            expected = {image.config_digest}
        present = {"sha256:" + n for n in os.listdir(dest) if n not in ("manifest.json", "version")}
        missing = expected - present
        if missing:
            raise MakeError(f"{transport}:{path}: copied blobs lack {sorted(missing)}")
        if len(present) != len(image.layers) + 1:
            raise MakeError(f"{transport}:{path}: copied {len(present)} blobs, expected {len(image.layers) + 1}")


# --------------------------------------------------------------------- main


def input_stamp(epoch, busybox_data, nginx):
    """Hash of everything the outputs depend on; equal stamp means nothing to do."""
    h = hashlib.sha256()
    if nginx is None:
        h.update(b"no nginx")
    else:
        # The .deb version names the binary, the page and mime.types; the
        # libraries come from the host and may change with its updates.
        h.update(f"nginx {nginx['version']}".encode())
        for soname, data in sorted(nginx["libraries"].items()):
            h.update(soname.encode() + hashlib.sha256(data).digest())
    h.update(FORMAT_REVISION.encode())
    h.update(str(epoch).encode())
    for path in (os.path.abspath(__file__), os.path.join(HERE, "hello.c")):
        with open(path, "rb") as f:
            h.update(f.read())
    h.update(busybox_data)
    for tool in ("gcc", "zstd"):
        exe = shutil.which(tool)
        version = subprocess.run([exe, "--version"], capture_output=True).stdout if exe else b"-"
        h.update(version)
    return h.hexdigest()


ARCHIVES = [
    "busybox.tar",
    "hello-world.tar",
    "berth-test-layers.tar",
    "berth-test-busybox-gzip.tar",
    "berth-test-busybox-zstd.tar",
]
NGINX_ARCHIVE = "nginx.tar"


def build(out, epoch, busybox_path, busybox_data, nginx, verify):
    arch = go_arch()
    busybox = {"data": busybox_data, "applets": busybox_applets(busybox_path)}
    with tempfile.TemporaryDirectory(prefix="berth-images-") as work:
        bb_tar = busybox_layer(epoch, busybox)
        bb_config = {"Cmd": ["sh"], "Env": [PATH_ENV]}

        def bb_history(label=""):
            return [
                {"created_by": f"/bin/sh -c #(nop) ADD file:{sha256(bb_tar)[7:]} in / "},
                {"created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
            ] + ([{"created_by": f"LABEL {label}", "empty_layer": True}] if label else [])

        def with_label(config, key, value):
            return dict(config, Labels={key: value})

        busybox_image = Image(
            "busybox", "latest", [Layer(bb_tar)], bb_config, bb_history(), epoch, arch
        )
        # The compressed variants carry a label so their image IDs differ from
        # busybox's: a test can load several into one daemon and tell them apart.
        gzip_image = Image(
            "berth-test/busybox-gzip",
            "latest",
            [Layer(bb_tar, MT_LAYER_GZIP, gzip_bytes(bb_tar))],
            with_label(bb_config, "org.berth.test.compression", "gzip"),
            bb_history("org.berth.test.compression=gzip"),
            epoch,
            arch,
        )
        zstd_image = Image(
            "berth-test/busybox-zstd",
            "latest",
            [Layer(bb_tar, MT_LAYER_ZSTD, zstd_bytes(bb_tar))],
            with_label(bb_config, "org.berth.test.compression", "zstd"),
            bb_history("org.berth.test.compression=zstd"),
            epoch,
            arch,
        )
        hello_tar = hello_layer(epoch, compile_hello(work))
        hello_image = Image(
            "hello-world",
            "latest",
            [Layer(hello_tar)],
            {"Cmd": ["/hello"], "Env": [PATH_ENV]},
            [
                {"created_by": f"COPY hello / # buildkit {sha256(hello_tar)[7:19]}"},
                {"created_by": 'CMD ["/hello"]', "empty_layer": True},
            ],
            epoch,
            arch,
        )
        fixtures, changes = fixtures_layer(epoch), changes_layer(epoch)
        layers_image = Image(
            "berth-test/layers",
            "latest",
            [Layer(bb_tar), Layer(fixtures), Layer(changes)],
            dict(bb_config, WorkingDir="/data", Labels={"org.berth.test": "layers"}),
            bb_history()
            + [
                {"created_by": "ADD fixtures.tar / # layer 2: fixtures, deletes /bin/vi and /var/www"},
                {"created_by": "ADD changes.tar / # layer 3: whiteout, opaque dir, additions"},
                {"created_by": "WORKDIR /data", "empty_layer": True},
                {"created_by": "LABEL org.berth.test=layers", "empty_layer": True},
            ],
            epoch,
            arch,
        )
        images = dict(
            zip(ARCHIVES, [busybox_image, hello_image, layers_image, gzip_image, zstd_image])
        )
        if nginx is not None:
            nginx_tar = nginx_layer(epoch, nginx)
            images[NGINX_ARCHIVE] = Image(
                "nginx",
                "latest",
                [Layer(bb_tar), Layer(nginx_tar)],
                {
                    "Cmd": ["nginx", "-g", "daemon off;"],
                    "Env": [PATH_ENV],
                    "ExposedPorts": {"80/tcp": {}},
                    "StopSignal": "SIGQUIT",
                },
                bb_history()
                + [
                    {
                        "created_by": f"ADD nginx {nginx['version']} + libraries / "
                        f"# {sha256(nginx_tar)[7:19]}"
                    },
                    {"created_by": "EXPOSE map[80/tcp:{}]", "empty_layer": True},
                    {"created_by": "STOPSIGNAL SIGQUIT", "empty_layer": True},
                    {"created_by": 'CMD ["nginx" "-g" "daemon off;"]', "empty_layer": True},
                ],
                epoch,
                arch,
            )
        for archive, image in images.items():
            write_archive(os.path.join(out, archive), [image], epoch)
        if verify:
            for archive, image in images.items():
                verify_archive(os.path.join(out, archive), image, work)
        return images


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--no-verify", action="store_true", help="skip the skopeo checks")
    parser.add_argument(
        "--no-nginx",
        action="store_true",
        help="leave out nginx:latest (for a host without apt access and no cached .debs)",
    )
    parser.add_argument(
        "--refresh-debs",
        action="store_true",
        help="download the nginx .debs again (after apt-get update brought a new version)",
    )
    args = parser.parse_args()

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))
    os.makedirs(args.out, exist_ok=True)
    busybox_path, busybox_data = find_busybox()
    nginx = None if args.no_nginx else nginx_inputs(args.refresh_debs)
    stamp = input_stamp(epoch, busybox_data, nginx)
    stamp_path = os.path.join(args.out, "images.json")
    verify = not args.no_verify
    archives = ARCHIVES + ([] if nginx is None else [NGINX_ARCHIVE])
    if not args.force and all(os.path.exists(os.path.join(args.out, a)) for a in archives):
        try:
            with open(stamp_path) as f:
                previous = json.load(f)
            # Unverified outputs are not up to date for a run that asks for verification.
            if previous.get("stamp") == stamp and (previous.get("verified") or not verify):
                print(f"test images up to date in {args.out}")
                return 0
        except (OSError, ValueError):
            pass

    if verify and shutil.which("skopeo") is None:
        raise MakeError("skopeo not found (apt-get install skopeo), or pass --no-verify")
    started = time.monotonic()
    images = build(args.out, epoch, busybox_path, busybox_data, nginx, verify)

    # images.json tells tests which archive holds which image and its digests.
    summary = {
        "stamp": stamp,
        "verified": verify,
        "images": {
            image.ref: {
                "archive": archive,
                "id": image.config_digest,
                "manifest": image.manifest_digest,
                "diff_ids": [l.diff_id for l in image.layers],
                "layers": [
                    {"mediaType": l.media_type, "digest": l.digest, "size": len(l.blob)}
                    for l in image.layers
                ],
            }
            for archive, image in images.items()
        },
    }
    tmp = f"{stamp_path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, stamp_path)
    checked = "verified with skopeo" if verify else "not verified"
    print(f"made {len(images)} test images in {args.out} ({checked}, {time.monotonic() - started:.1f}s)")
    for archive, image in images.items():
        print(f"  {image.ref:32} {image.config_digest[:19]}  {archive}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MakeError as err:
        print(f"make-images: {err}", file=sys.stderr)
        sys.exit(1)
