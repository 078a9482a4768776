#!/usr/bin/env python3
"""Build Longshore's test images as reproducible OCI layouts and push them to the test registry.

    python3 tests/images/build_images.py [--out DIR] [--registry 127.0.0.1:5000]
                                         [--registry-storage DIR] [--bench] [--no-push]

Python 3.11 stdlib only. Every rootfs comes from Debian's busybox-static (/bin/busybox). Tars are
deterministic (sorted entries, fixed mtime/uid/gid), gzip has mtime 0, so the same input gives the
same digests on every machine. Well-formed images are pushed with skopeo; images skopeo would
rewrite (uncompressed layers, a Docker manifest list) and the hostile ones are written straight to
the registry with HTTP PUTs. `--registry-storage` (the registry's storage dir, DIR/storage of
tests/registry/start.sh) enables the one hostile image that needs its stored blob tampered with.

It writes OUT/digests.json: "repo:tag" -> manifest digest as pushed, for tests that pull by digest.
"""

import argparse
import tempfile
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request

BUSYBOX = "/bin/busybox"
# Debian's dynamic busybox (package `busybox`, unpacked by scripts/setup-test-host.sh), used when
# present: unlike busybox-static it runs `ls` & co. through exec, as the official busybox image
# does, so a masked /bin/ls is really refused (critest's MaskedPaths spec needs that).
BUSYBOX_ROOT = os.environ.get("LONGSHORE_BUSYBOX_ROOT", "")
MTIME = 1700000000  # fixed mtime for every tar entry
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
test1:x:1001:1001:test user 1:/home/test1:/bin/sh
test2:x:1002:1002:test user 2:/home/test2:/bin/sh
test3:x:1003:1003:test user 3:/home/test3:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
www-data:x:33:
test1:x:1001:
test2:x:1002:
test3:x:1003:
nogroup:x:65534:
"""


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- tar building


class Tree:
    """An in-memory file tree that becomes one deterministic tar layer."""

    def __init__(self):
        self.entries = {}  # path -> (TarInfo, bytes or None)

    def _info(self, path, kind, mode, uid=0, gid=0):
        info = tarfile.TarInfo(path)
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = MTIME
        return info

    def dir(self, path, mode=0o755, uid=0, gid=0):
        self.entries[path] = (self._info(path, tarfile.DIRTYPE, mode, uid, gid), None)

    def file(self, path, data: bytes, mode=0o644, uid=0, gid=0, mtime=None, xattrs=None):
        info = self._info(path, tarfile.REGTYPE, mode, uid, gid)
        info.size = len(data)
        if mtime is not None:
            info.mtime = mtime
        if xattrs:
            info.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        self.entries[path] = (info, data)

    def symlink(self, path, target):
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.entries[path] = (info, None)

    def hardlink(self, path, target):
        info = self._info(path, tarfile.LNKTYPE, 0o755)
        info.linkname = target
        self.entries[path] = (info, None)

    def fifo(self, path, mode=0o644):
        self.entries[path] = (self._info(path, tarfile.FIFOTYPE, mode), None)

    def chardev(self, path, major, minor, mode=0o666):
        info = self._info(path, tarfile.CHRTYPE, mode)
        info.devmajor, info.devminor = major, minor
        self.entries[path] = (info, None)

    def tar(self, keep_order=False) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            # Sorted, with hard links after every other entry so their targets come first.
            paths = list(self.entries) if keep_order else sorted(
                self.entries, key=lambda p: (self.entries[p][0].type == tarfile.LNKTYPE, p))
            for path in paths:
                info, data = self.entries[path]
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def gz(data: bytes, level=6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


EXTRA_TOOLS = {
    "pgrep": """#!/bin/sh
# pgrep NAME: PIDs of processes whose name contains NAME (this busybox lacks the applet).
[ -n "$1" ] || exit 2
found=1
for d in /proc/[0-9]*; do
  read -r comm < "$d/comm" 2>/dev/null || continue
  case "$comm" in *"$1"*) echo "${d#/proc/}"; found=0 ;; esac
done
exit $found
""",
    "ipcs": """#!/bin/sh
# ipcs [-m]: System V shared memory segments of this IPC namespace (this busybox lacks the applet).
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch"
tail -n +2 /proc/sysvipc/shm | while read -r key shmid perms size cpid lpid nattch uid rest; do
  printf '0x%08x %-10s %-10s %-10s %-10s %-10s\\n' "$key" "$shmid" "$uid" "$perms" "$size" "$nattch"
done
""",
}

NNP_SOURCE = """#include <stdio.h>
#include <unistd.h>
int main(void) { printf("Effective uid: %d\\n", (int)geteuid()); return 0; }
"""


def compile_static(source: str) -> bytes:
    """A small static binary from C source, with the machine's gcc (deterministic flags)."""
    with tempfile.TemporaryDirectory() as d:
        c, out = os.path.join(d, "p.c"), os.path.join(d, "p")
        with open(c, "w") as f:
            f.write(source)
        subprocess.run(["gcc", "-static", "-Os", "-s", "-o", out, c], check=True,
                       env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
        with open(out, "rb") as f:
            return f.read()


# nginx stand-in: a process named nginx (pidof finds it) whose command line says "master process",
# writing /var/run/nginx.pid and serving /usr/share/nginx/html on port 80 with busybox httpd.
NGINX_SCRIPT = """#!/bin/sh
echo $$ > /var/run/nginx.pid
httpd -f -p 80 -h /usr/share/nginx/html &
trap 'kill $! 2>/dev/null; exit 0' TERM QUIT INT
wait
"""


def add_shared_libraries(t: "Tree", binary: str):
    """Copies the shared libraries `binary` needs (per ldd) to the same paths in the image."""
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    for line in sorted(out.splitlines()):
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if not path.startswith("/"):
            continue  # the vdso
        real = os.path.realpath(path)
        rel = path.lstrip("/")
        parent = os.path.dirname(rel)
        chain = parent.split("/")
        for i in range(1, len(chain) + 1):
            t.dir("/".join(chain[:i]))
        with open(real, "rb") as f:
            t.file(rel, f.read(), 0o755)


def busybox_tree(index_html=None, www_dir=None) -> Tree:
    t = Tree()
    for d in ["bin", "dev", "etc", "home", "proc", "sys", "usr", "usr/bin", "var", "var/run", "var/www"]:
        t.dir(d)
    t.dir("root", 0o700)
    t.dir("tmp", 0o1777)
    for user in ("test1", "test2", "test3"):
        t.dir("home/" + user, 0o755, int(user[-1]) + 1000, int(user[-1]) + 1000)
    busybox = BUSYBOX
    dynamic = os.path.join(BUSYBOX_ROOT, "bin/busybox") if BUSYBOX_ROOT else ""
    if dynamic and os.path.exists(dynamic):
        busybox = dynamic
        add_shared_libraries(t, dynamic)
    with open(busybox, "rb") as f:
        t.file("bin/busybox", f.read(), 0o755)
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            # The official busybox image hard-links its applets: it exercises hard links on every pull.
            t.hardlink("bin/" + applet, "bin/busybox")
    # Debian's busybox-static has no pgrep or ipcs; critest runs both inside its containers.
    for name, script in EXTRA_TOOLS.items():
        if name not in applets:
            t.file("bin/" + name, script.encode(), 0o755)
    t.symlink("usr/bin/env", "/bin/env")
    t.file("etc/passwd", PASSWD.encode())
    t.file("etc/group", GROUP.encode())
    t.file("etc/hostname", b"busybox\n")
    if www_dir:
        parts = www_dir.split("/")
        for i in range(1, len(parts) + 1):
            t.dir("/".join(parts[:i]))
        t.file(www_dir + "/index.html", index_html.encode())
    return t


# ---------------------------------------------------------------- OCI layout


class Layout:
    """An OCI image layout on disk: blobs plus index.json with one entry per tag."""

    def __init__(self, root):
        self.root = root
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(os.path.join(root, "blobs", "sha256"))
        with open(os.path.join(root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.index = []

    def blob(self, data: bytes) -> str:
        digest = sha256(data)
        path = os.path.join(self.root, "blobs", "sha256", digest[7:])
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
        return digest

    def tag(self, tag, media_type, data: bytes):
        digest = self.blob(data)
        self.index.append({"mediaType": media_type, "digest": digest, "size": len(data),
                           "annotations": {"org.opencontainers.image.ref.name": tag}})
        with open(os.path.join(self.root, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.index}, f)
        return digest


class Image:
    """Layers + config -> manifest bytes; knows its blobs so they can be pushed by hand too."""

    def __init__(self, layers, config, arch="amd64", variant=None, docker=False):
        # layers: list of (media_type, blob_bytes, diff_id)
        self.layers = layers
        self.blobs = {}
        cfg = {
            "architecture": arch,
            "os": "linux",
            "created": "2023-11-14T22:13:20Z",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, _, diff_id in layers]},
            "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "build_images.py"} for _ in layers],
        }
        if variant:
            cfg["variant"] = variant
        self.config = json.dumps(cfg, sort_keys=True).encode()
        self.arch, self.variant, self.docker = arch, variant, docker

    def manifest(self, config_override=None) -> bytes:
        config = self.config if config_override is None else config_override
        self.blobs[sha256(config)] = config
        descs = []
        for media_type, blob, _ in self.layers:
            self.blobs[sha256(blob)] = blob
            descs.append({"mediaType": media_type, "digest": sha256(blob), "size": len(blob)})
        doc = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if self.docker else OCI_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG if self.docker else OCI_CONFIG,
                       "digest": sha256(config), "size": len(config)},
            "layers": descs,
        }
        return json.dumps(doc, sort_keys=True).encode()

    def platform(self):
        p = {"architecture": self.arch, "os": "linux"}
        if self.variant:
            p["variant"] = self.variant
        return p


def gzip_layer(tar: bytes, docker=False):
    return (DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP, gz(tar), sha256(tar))


def image_config(cmd=None, entrypoint=None, user=None, workdir=None, env=None, labels=None,
                 ports=None, volumes=None, stop_signal=None):
    cfg = {"Env": [DEFAULT_PATH] + (env or [])}
    if cmd is not None:
        cfg["Cmd"] = cmd
    if entrypoint is not None:
        cfg["Entrypoint"] = entrypoint
    if user is not None:
        cfg["User"] = user
    if workdir is not None:
        cfg["WorkingDir"] = workdir
    if labels:
        cfg["Labels"] = labels
    if ports:
        cfg["ExposedPorts"] = {p: {} for p in ports}
    if volumes:
        cfg["Volumes"] = {v: {} for v in volumes}
    if stop_signal:
        cfg["StopSignal"] = stop_signal
    return cfg


# ---------------------------------------------------------------- pushing


class Registry:
    """Just enough of the distribution API to push blobs and manifests by hand."""

    def __init__(self, host):
        self.base = "http://" + host

    def _req(self, method, url, data=None, headers=None):
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.headers

    def has_blob(self, repo, digest):
        try:
            self._req("HEAD", f"{self.base}/v2/{repo}/blobs/{digest}")
            return True
        except urllib.error.HTTPError:
            return False

    def put_blob(self, repo, data: bytes):
        digest = sha256(data)
        if self.has_blob(repo, digest):
            return digest
        _, headers = self._req("POST", f"{self.base}/v2/{repo}/blobs/uploads/")
        location = headers["Location"]
        if location.startswith("/"):
            location = self.base + location
        sep = "&" if "?" in location else "?"
        self._req("PUT", f"{location}{sep}digest={digest}", data,
                  {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        return digest

    def put_manifest(self, repo, ref, media_type, data: bytes):
        self._req("PUT", f"{self.base}/v2/{repo}/manifests/{ref}", data, {"Content-Type": media_type})
        return sha256(data)


def skopeo_push(layout, tag, registry, repo, extra=()):
    cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *extra,
           f"oci:{layout}:{tag}", f"docker://{registry}/{repo}:{tag}"]
    subprocess.run(cmd, check=True)


def manifest_digest(registry, repo, tag):
    accept = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
    req = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": accept})
    with urllib.request.urlopen(req) as resp:
        return resp.headers["Docker-Content-Digest"], resp.headers["Content-Type"]


# ---------------------------------------------------------------- the images


class Builder:
    def __init__(self, args):
        self.out = args.out
        self.registry = args.registry
        self.storage = args.registry_storage
        self.push = not args.no_push
        self.reg = Registry(args.registry)
        self.digests = {}
        self._base = None

    def base_layer(self):
        if self._base is None:
            self._base = gzip_layer(busybox_tree().tar())
        return self._base

    def record(self, repo, tag):
        if self.push:
            digest, media_type = manifest_digest(self.registry, repo, tag)
            self.digests[f"{repo}:{tag}"] = {"digest": digest, "mediaType": media_type}

    def simple(self, repo, tags, layers, config, skopeo_args=()):
        """An OCI image pushed with skopeo under each tag."""
        layout = Layout(os.path.join(self.out, repo.replace("/", "_")))
        img = Image(layers, config)
        manifest = img.manifest()
        for blob in img.blobs.values():
            layout.blob(blob)
        for tag in tags:
            layout.tag(tag, OCI_MANIFEST, manifest)
        if self.push:
            for tag in tags:
                skopeo_push(layout.root, tag, self.registry, repo, skopeo_args)
                self.record(repo, tag)
        return img

    def by_hand(self, repo, tag, img: Image, manifest=None):
        """Push an image's blobs and manifest with plain HTTP, exactly as built."""
        manifest = manifest if manifest is not None else img.manifest()
        if not self.push:
            return sha256(manifest)
        for blob in img.blobs.values():
            self.reg.put_blob(repo, blob)
        media_type = DOCKER_MANIFEST if img.docker else OCI_MANIFEST
        digest = self.reg.put_manifest(repo, tag, media_type, manifest)
        if not tag.startswith("sha256:"):
            self.record(repo, tag)
        return digest

    def with_files(self, repo, tags, files, config):
        t = Tree()
        for path, data in files.items():
            parent = os.path.dirname(path)
            parts = parent.split("/") if parent else []
            for i in range(1, len(parts) + 1):
                t.dir("/".join(parts[:i]))
            t.file(path, data, 0o755 if data.startswith(b"#!") else 0o644)
        return self.simple(repo, tags, [self.base_layer(), gzip_layer(t.tar())], config)

    # --- upstream-named images (kubernetes e2e and cri-tools)
    def upstream(self):
        base = self.base_layer()
        sh = image_config(cmd=["sh"])
        self.simple("e2e-test-images/busybox", ["1.29-2"], [base], sh)
        # Docker Hub serves Docker schema 2: keep one image in that format.
        self.simple("library/busybox", ["latest"], [base], sh, ["--format", "v2s2"])
        pause_tree = Tree()
        pause_tree.file("pause", b"#!/bin/sh\ntrap 'exit 0' TERM INT\nwhile :; do sleep 3600 & wait $!; done\n", 0o755)
        pause_cfg = image_config(entrypoint=["/pause"], user="65535:65535")
        self.simple("pause", ["3.10", "3.9"], [base, gzip_layer(pause_tree.tar())], pause_cfg)

        nginx_html = "<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>\n"
        nginx_cmd = ["/usr/sbin/nginx", "master process", "-g", "daemon off;"]
        self.with_files("e2e-test-images/nginx", ["1.14-2"],
                        {"usr/share/nginx/html/index.html": nginx_html.encode(),
                         "usr/sbin/nginx": NGINX_SCRIPT.encode()},
                        image_config(cmd=nginx_cmd, ports=["80/tcp"], stop_signal="SIGQUIT"))
        # Like the official image's httpd-foreground: Apache logs a line naming httpd at start
        # (critest's multi-container log spec looks for it), then serves in the foreground.
        httpd_foreground = (b"#!/bin/sh\n"
                            b"echo 'httpd: busybox httpd serving /usr/local/apache2/htdocs on port 80' >&2\n"
                            b"exec httpd -f -p 80 -h /usr/local/apache2/htdocs\n")
        self.with_files("e2e-test-images/httpd", ["2.4.39-4"],
                        {"usr/local/apache2/htdocs/index.html": b"<html><body><h1>It works!</h1></body></html>\n",
                         "usr/local/bin/httpd-foreground": httpd_foreground},
                        image_config(cmd=["/usr/local/bin/httpd-foreground"], ports=["80/tcp"],
                                     workdir="/usr/local/apache2"))
        # A setuid-root program printing its effective uid: with no_new_privs it stays the
        # caller's, without it becomes 0 (critest's NoNewPrivs specs read this line).
        nnp = Tree()
        nnp.dir("usr")
        nnp.dir("usr/local")
        nnp.dir("usr/local/bin")
        nnp.file("usr/local/bin/nnp", compile_static(NNP_SOURCE), 0o4755)
        self.simple("e2e-test-images/nonewprivs", ["1.3"], [self.base_layer(), gzip_layer(nnp.tar())],
                    image_config(cmd=["/usr/local/bin/nnp"]))
        self.with_files("k8s-staging-cri-tools/hostnet-nginx-amd64", ["latest"],
                        {"www/index.html": nginx_html.encode()},
                        image_config(cmd=["httpd", "-f", "-p", "12003", "-h", "/www"], ports=["12003/tcp"]))

        cri = "k8s-staging-cri-tools/"
        self.with_files(cri + "test-image-latest", ["latest"], {"test-image-latest": b"latest\n"}, sh)
        self.with_files(cri + "test-image-tag", ["test", "all"], {"test-image-tag": b"tag\n"}, sh)
        for n in (1, 2, 3):
            self.with_files(cri + f"test-image-{n}", ["latest"], {f"test-image-{n}": f"{n}\n".encode()}, sh)
        self.with_files(cri + "test-image-tags", ["1", "2", "3"], {"test-image-tags": b"tags\n"}, sh)
        for name, user in [("uid", "1002"), ("username", "www-data"), ("uid-group", "1003:1003"),
                           ("username-group", "www-data:www-data")]:
            self.simple(cri + f"test-image-user-{name}", ["latest"], [base], image_config(cmd=["sh"], user=user))
        predefined = Tree()
        predefined.dir("etc")
        predefined.file("etc/passwd", (PASSWD + "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n").encode())
        predefined.file("etc/group", (GROUP + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n").encode())
        predefined.dir("home")
        predefined.dir("home/default-user", 0o755, 1000, 1000)
        self.simple(cri + "test-image-predefined-group", ["latest"], [base, gzip_layer(predefined.tar())],
                    image_config(cmd=["sh"], user="1000"))

    # --- Longshore's own test images
    def layered(self):
        """Three layers exercising whiteouts, opaque dirs and every tar entry type."""
        l1 = Tree()
        l1.dir("data")
        l1.file("data/a.txt", b"a from layer 1\n")
        l1.file("data/b.txt", b"b from layer 1\n")
        l1.file("data/owned", b"owned by 1001:1002, mode 0640\n", mode=0o640, uid=1001, gid=1002, mtime=1234567890)
        l1.file("data/setuid", b"setuid file\n", mode=0o4755)
        l1.file("data/xattr", b"has an xattr\n", xattrs={"user.longshore": "yes"})
        l1.dir("data/dir")
        l1.file("data/dir/x", b"x\n")
        l1.dir("data/opq")
        l1.file("data/opq/old1", b"old\n")
        l1.file("data/opq/old2", b"old\n")
        l1.symlink("data/link", "a.txt")
        l1.hardlink("data/hard", "data/b.txt")
        l1.fifo("data/fifo")
        l1.chardev("data/null", 1, 3)
        l1.dir("data/emptydir", 0o700)
        l2 = Tree()
        l2.dir("data")
        l2.file("data/.wh.b.txt", b"")
        l2.dir("data/opq")
        l2.file("data/opq/.wh..wh..opq", b"")
        l2.file("data/opq/new1", b"new\n")
        l2.file("data/c.txt", b"c from layer 2\n")
        l3 = Tree()
        l3.dir("data")
        l3.file("data/a.txt", b"a from layer 3\n")
        l3.file("data/.wh.dir", b"")
        layers = [gzip_layer(t.tar()) for t in (l1, l2, l3)]
        self.simple("longshore-test/layers", ["latest"], layers,
                    image_config(cmd=["sh"], entrypoint=["/bin/entry"], user="1001:1002", workdir="/data",
                                 env=["A=1", "B=two words"], labels={"org.longshore.test": "layers"},
                                 ports=["8080/tcp", "53/udp"], volumes=["/data/vol"], stop_signal="SIGUSR1"))
        # A second image sharing the first two layers, for layer reference counting.
        self.simple("longshore-test/layers-shared", ["latest"], layers[:2] + [self.base_layer()], image_config(cmd=["sh"]))

    def multiarch(self):
        images = []
        for arch, variant in [("arm64", "v8"), ("amd64", None), ("arm", "v7")]:
            t = Tree()
            t.file("arch", f"{arch}{variant or ''}\n".encode())
            images.append(Image([gzip_layer(t.tar())], image_config(cmd=["sh"]), arch, variant))
        # OCI index with skopeo --all.
        layout = Layout(os.path.join(self.out, "longshore-test_multiarch"))
        entries = []
        for img in images:
            manifest = img.manifest()
            for blob in img.blobs.values():
                layout.blob(blob)
            digest = layout.blob(manifest)
            entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
                            "platform": img.platform()})
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, sort_keys=True).encode()
        layout.tag("latest", OCI_INDEX, index)
        if self.push:
            skopeo_push(layout.root, "latest", self.registry, "longshore-test/multiarch", ["--all"])
            self.record("longshore-test/multiarch", "latest")
        # The same platforms as a Docker manifest list, pushed by hand.
        repo = "longshore-test/multiarch-docker"
        entries = []
        for img in images:
            img.docker = True
            img.layers = [(DOCKER_LAYER_GZIP, blob, diff) for _, blob, diff in img.layers]
            manifest = img.manifest()
            digest = self.by_hand(repo, sha256(manifest), img, manifest)
            entries.append({"mediaType": DOCKER_MANIFEST, "digest": digest, "size": len(manifest),
                            "platform": img.platform()})
        if self.push:
            lst = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}, sort_keys=True).encode()
            self.reg.put_manifest(repo, "latest", DOCKER_LIST, lst)
            self.record(repo, "latest")

    def compression(self):
        t = Tree()
        t.dir("data")
        t.file("data/zstd.txt", b"this layer is zstd-compressed\n" * 100)
        self.simple("longshore-test/zstd", ["latest"], [self.base_layer(), gzip_layer(t.tar())], image_config(cmd=["sh"]),
                    ["--dest-compress-format", "zstd", "--dest-compress"])
        u = Tree()
        u.dir("data")
        u.file("data/plain.txt", b"this layer is an uncompressed tar\n" * 100)
        plain = u.tar()
        img = Image([self.base_layer(), (OCI_LAYER_TAR, plain, sha256(plain))], image_config(cmd=["sh"]))
        self.by_hand("longshore-test/uncompressed", "latest", img)

    def bench(self):
        """>= 150 MB compressed in 6 layers of mostly incompressible files."""
        rng = random.Random(1234)
        layers = []
        for n in range(6):
            t = Tree()
            t.dir(f"bench{n}")
            for i in range(60):
                size = rng.randrange(200_000, 600_000)
                t.file(f"bench{n}/random-{i:03}", rng.randbytes(size))
            words = [rng.randbytes(6).hex() for _ in range(2000)]
            for i in range(200):
                text = " ".join(rng.choice(words) for _ in range(4000)).encode()
                t.file(f"bench{n}/text-{i:03}", text)
            tar = t.tar()
            layers.append((OCI_LAYER_GZIP, gz(tar, 1), sha256(tar)))
            print(f"  bench layer {n}: {len(tar) >> 20} MiB tar, {len(layers[-1][1]) >> 20} MiB gzip", file=sys.stderr)
        self.simple("longshore-test/big", ["latest"], layers, image_config(cmd=["sh"]))

    def hostile(self):
        def single(repo, tree_or_tar, config=None, keep_order=True, media=OCI_LAYER_GZIP, diff_id=None):
            tar = tree_or_tar if isinstance(tree_or_tar, bytes) else tree_or_tar.tar(keep_order)
            blob = gz(tar) if media == OCI_LAYER_GZIP else tar
            img = Image([(media, blob, diff_id or sha256(tar))], config or image_config(cmd=["sh"]))
            return img

        h = "longshore-test/hostile-"
        t = Tree()
        t.file("ok.txt", b"fine\n")
        t.file("../escape-traversal", b"escaped\n")
        self.by_hand(h + "traversal", "latest", single(h + "traversal", t))

        t = Tree()
        t.file("ok.txt", b"fine\n")
        t.file("/tmp/escape-absolute", b"escaped\n")
        self.by_hand(h + "absolute", "latest", single(h + "absolute", t))

        t = Tree()
        t.symlink("evil", "../../../../../../../../../../tmp")
        t.file("evil/longshore-escape-symlink", b"escaped\n")
        self.by_hand(h + "symlink", "latest", single(h + "symlink", t))

        t = Tree()
        t.symlink("abs", "/tmp")
        t.file("abs/longshore-escape-abs-symlink", b"escaped\n")
        self.by_hand(h + "symlink-absolute", "latest", single(h + "symlink-absolute", t))

        t = Tree()
        t.file("ok.txt", b"fine\n")
        t.hardlink("evil-hard", "../../../../../../../../etc/passwd")
        self.by_hand(h + "hardlink", "latest", single(h + "hardlink", t))

        t = Tree()
        t.symlink("etcdir", "/etc")
        t.hardlink("evil-hard", "etcdir/passwd")
        self.by_hand(h + "hardlink-symlink", "latest", single(h + "hardlink-symlink", t))

        # diff_id in the config does not match the layer.
        t = Tree()
        t.file("ok.txt", b"diff id mismatch\n")
        self.by_hand(h + "diffid", "latest", single(h + "diffid", t, diff_id="sha256:" + "0" * 64))

        # The manifest states a wrong size for the layer.
        t = Tree()
        t.file("ok.txt", b"size mismatch\n")
        img = single(h + "size", t)
        manifest = json.loads(img.manifest())
        manifest["layers"][0]["size"] += 7
        self.by_hand(h + "size", "latest", img, json.dumps(manifest, sort_keys=True).encode())

        # Decompression bomb: 512 MiB of zeros in a small gzip stream.
        zeros = 512 << 20
        info = tarfile.TarInfo("bomb")
        info.size, info.mtime, info.mode = zeros, MTIME, 0o644
        raw = io.BytesIO()
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gzf:
            diff = hashlib.sha256()
            header = info.tobuf(tarfile.PAX_FORMAT)
            chunk = bytes(1 << 20)
            for piece in [header] + [chunk] * (zeros >> 20) + [bytes(1024)]:
                gzf.write(piece)
                diff.update(piece)
        bomb = Image([(OCI_LAYER_GZIP, raw.getvalue(), "sha256:" + diff.hexdigest())], image_config(cmd=["sh"]))
        self.by_hand(h + "bomb", "latest", bomb)

        # A config blob that is not JSON.
        t = Tree()
        t.file("ok.txt", b"bad config\n")
        img = single(h + "badconfig", t)
        bad_config = b"{this is not json"
        self.by_hand(h + "badconfig", "latest", img, img.manifest(config_override=bad_config))

        # A manifest the registry stores but no client can use: a negative layer size.
        t = Tree()
        t.file("ok.txt", b"bad manifest\n")
        img = single(h + "badmanifest", t)
        manifest = json.loads(img.manifest())
        manifest["layers"][0]["size"] = -1
        self.by_hand(h + "badmanifest", "latest", img, json.dumps(manifest, sort_keys=True).encode())

        # The registry serves bytes that do not match the digest: tamper with its stored blob.
        if self.storage and self.push:
            t = Tree()
            t.file("ok.txt", b"digest mismatch\n")
            img = single(h + "digest", t)
            self.by_hand(h + "digest", "latest", img)
            _, blob, _ = img.layers[0]
            digest = sha256(blob)[7:]
            data = os.path.join(self.storage, "docker/registry/v2/blobs/sha256", digest[:2], digest, "data")
            with open(data, "r+b") as f:
                stored = f.read()
                if stored == blob:  # not tampered yet (a re-run finds it already changed)
                    f.seek(len(blob) // 2)
                    f.write(bytes([blob[len(blob) // 2] ^ 0xFF]))

    def write_digests(self):
        with open(os.path.join(self.out, "digests.json"), "w") as f:
            json.dump(self.digests, f, indent=2, sort_keys=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("LONGSHORE_IMAGES_DIR", "/tmp/longshore-images"))
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--registry-storage", default=None,
                    help="the registry's storage dir; enables the tampered-blob hostile image")
    ap.add_argument("--bench", action="store_true", help="also build the big image for the pull benchmark")
    ap.add_argument("--no-push", action="store_true", help="only write the OCI layouts")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    b = Builder(args)
    for step in (b.upstream, b.layered, b.multiarch, b.compression, b.hostile):
        print(f"building {step.__name__}", file=sys.stderr)
        step()
    if args.bench:
        print("building bench", file=sys.stderr)
        b.bench()
    b.write_digests()
    print(f"images built in {args.out}" + (f" and pushed to {args.registry}" if b.push else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
