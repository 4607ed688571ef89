"""A Debian 12 guest with systemd, booted under QEMU TCG, with guestd installed
from the .deb the build makes (Python 3, stdlib only; root needed).

  build_deb(build_dir, out_dir)   the .deb, made by CPack from a build tree
  repack_deb(deb, version, out)   the same package under another version
  mirror()                        the Debian mirror, from this machine's apt
                                  sources (or GUESTD_E2E_MIRROR)
  base_rootfs(extra_packages, suite=SUITE)
                                  debootstrap --variant=minbase SUITE
                                  (bookworm; bullseye for the static build's
                                  Debian 11 test) with systemd-sysv, udev and
                                  the given packages, plus the test kernel's
                                  modules; cached, keyed by suite
  make_image(workdir, deb, files) a disk image: a copy of the base rootfs with
                                  the .deb installed by dpkg in a chroot
                                  (deb None: none; prepare(root) may change
                                  the copy first)
                                  (systemd not running: files only) and any
                                  extra files; mkfs.ext4 -d, nothing mounted
  DebianVM                        boots the image: a busybox initramfs insmods
                                  virtio and ext4, mounts /dev/vda and
                                  switch_roots to systemd; the port
                                  org.guestd.agent.0 is on a host socket

Nothing typed into the guest: the test talks to it only through guestd.
The guest's console (ttyS0: kernel, systemd status) and its journal
(forwarded to ttyS1) are written to files in the VM's directory.

Cache (under $GUESTD_E2E_CACHE, default /var/cache/guestd-e2e, never the
repository), each entry keyed by a hash of what went into it:
  debian-rootfs/<key>/   the base root file system (debootstrap took 45 to
                         110 s on these machines; a hit is a directory copy)
  debian-initrd/<key>.cpio.gz
The kernel comes from vm.py's fetch_kernel() (fetch-kernel.sh, cached too).
"""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import vm as V

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = "bookworm"
IMAGE_SIZE = "1200M"
# Bump when the rootfs or initramfs recipe changes in a way the keys cannot see.
ROOTFS_LAYOUT = "3"
INITRD_LAYOUT = "2"

# insmod order for the initramfs (architecture.md, "Testing in a real VM").
INITRD_MODULES = ["virtio_ring", "virtio", "virtio_pci_modern_dev",
                  "virtio_pci_legacy_dev", "virtio_pci", "virtio_blk",
                  "crc32c_generic", "crc16", "mbcache", "jbd2", "ext4"]
# Modules the booted guest may load (udev, systemd), with their dependencies.
# virtio_console is the one that matters: udev loads it for the port.
ROOTFS_MODULES = ["virtio_console", "virtio_blk", "virtio_pci", "virtio_rng",
                  "ext4", "crc32c_generic", "crc32c_intel", "autofs4",
                  "vmw_vsock_virtio_transport", "vsock_loopback", "loop",
                  "configfs", "fuse", "efivarfs"]
BASE_PACKAGES = ["systemd-sysv", "udev", "kmod"]


def log(msg):
    V.log(msg)


def run(argv, what=None, **kw):
    """Runs a command; on failure raises E2EError with its output."""
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    out = res.stdout.decode(errors="replace")
    if res.returncode != 0:
        raise V.E2EError("%s failed (status %d):\n%s"
                         % (what or " ".join(argv), res.returncode, out[-4000:]))
    return out


# --------------------------------------------------------------------------
# The package

def build_deb(build_dir, out_dir):
    """Runs CPack on build_dir; returns the .deb's path in out_dir."""
    config = os.path.join(build_dir, "CPackConfig.cmake")
    if not os.path.exists(config):
        raise V.E2EError("no %s: configure the build first" % config)
    os.makedirs(out_dir, exist_ok=True)
    run(["cpack", "-G", "DEB", "--config", config, "-B", out_dir], "cpack -G DEB")
    debs = sorted(glob.glob(os.path.join(out_dir, "guestd_*.deb")), key=os.path.getmtime)
    if not debs:
        raise V.E2EError("cpack made no guestd_*.deb in %s" % out_dir)
    shutil.rmtree(os.path.join(out_dir, "_CPack_Packages"), ignore_errors=True)
    return debs[-1]


def deb_field(deb, field):
    return run(["dpkg-deb", "-f", deb, field]).strip()


def deb_depends(deb):
    """Package names the .deb depends on (first of each alternative)."""
    names = []
    for dep in deb_field(deb, "Depends").split(","):
        name = dep.split("|")[0].strip().split(" ")[0].split(":")[0]
        if name:
            names.append(name)
    return names


def repack_deb(deb, version, out_dir):
    """The same package with Version: version (to test an upgrade)."""
    work = tempfile.mkdtemp(prefix="repack-", dir=out_dir)
    try:
        tree = os.path.join(work, "tree")
        run(["dpkg-deb", "-R", deb, tree])
        control = os.path.join(tree, "DEBIAN", "control")
        with open(control) as f:
            text = f.read()
        text = re.sub(r"(?m)^Version: .*$", "Version: " + version, text)
        with open(control, "w") as f:
            f.write(text)
        out = os.path.join(out_dir, "guestd_%s_%s.deb"
                           % (version, deb_field(deb, "Architecture")))
        run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", tree, out])
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------
# The mirror

def _host_codename():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return SUITE


def _apt_sources():
    """(uri, suite, components) of every enabled 'deb' entry of apt's sources."""
    entries = []
    files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in files:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if not line.startswith("deb "):
                continue
            line = re.sub(r"\[[^\]]*\]", " ", line[4:])
            words = line.split()
            if len(words) >= 2:
                entries.append((words[0], words[1], words[2:]))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for para in re.split(r"\n\s*\n", text):
            fields = {}
            key = None
            for line in para.splitlines():
                if line.startswith("#"):
                    continue
                if line[:1] in (" ", "\t") and key:
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, _, val = line.partition(":")
                    key = key.strip().lower()
                    fields[key] = val.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    entries.append((uri, suite, fields.get("components", "").split()))
    return entries


def mirror(suite=SUITE):
    """A Debian archive URI from this machine's apt sources: the entry for
    suite itself if there is one, else for the host's own release (not
    -security or -updates; a Debian mirror carries the other releases too).
    GUESTD_E2E_MIRROR overrides."""
    env = os.environ.get("GUESTD_E2E_MIRROR")
    if env:
        return env
    entries = [e for e in _apt_sources()
               if re.match(r"^(https?|file)://", e[0]) and "main" in e[2]]
    for want in (suite, _host_codename()):
        for uri, suite, _ in entries:
            if suite == want:
                return uri.rstrip("/")
    raise V.E2EError("no Debian mirror in /etc/apt/sources.list{,.d/}: none has a "
                     "'deb URI %s main' entry; set GUESTD_E2E_MIRROR" % suite)


# --------------------------------------------------------------------------
# The base root file system (cached)

def _module_closure(moddir, names):
    """Paths (relative to moddir) of the named modules and of the modules
    they depend on (modinfo's "depends"; the package ships no modules.dep).
    Built-in or unknown names are skipped."""
    by_name = {}
    for dirpath, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            if ".ko" in f:
                rel = os.path.relpath(os.path.join(dirpath, f), moddir)
                by_name[f.split(".ko")[0].replace("-", "_")] = rel
    out = set()
    todo = [n for n in names if n in by_name]
    while todo:
        n = todo.pop()
        rel = by_name.get(n)
        if rel is None or rel in out:
            continue
        out.add(rel)
        deps = run(["modinfo", "-F", "depends", os.path.join(moddir, rel)]).strip()
        todo.extend(d.replace("-", "_") for d in deps.split(",") if d)
    return sorted(out)


# Files written into the base rootfs after debootstrap.
GUEST_FILES = {
    "/etc/hostname": "guestd-debian\n",
    "/etc/hosts": "127.0.0.1 localhost\n127.0.1.1 guestd-debian\n",
    "/etc/fstab": "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
    # The journal goes to the second serial port too: the harness writes it
    # to a file, so a failure shows what systemd and the agent said.
    "/etc/systemd/journald.conf.d/e2e.conf":
        "[Journal]\nForwardToConsole=yes\nTTYPath=/dev/ttyS1\nMaxLevelConsole=info\n",
    # No waiting for a network that the VM does not have.
    "/etc/systemd/system.conf.d/e2e.conf": "[Manager]\nDefaultTimeoutStopSec=20s\n",
}
# Units that only cost boot time in a test VM.
MASKED_UNITS = ["apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
                "e2scrub_reap.service", "fstrim.timer", "systemd-timesyncd.service",
                "getty@tty1.service"]


def _rootfs_plan(extra_packages, suite=SUITE):
    """What the base rootfs is made of, and where the cache keeps it."""
    vmlinuz, moddir, kver = V.fetch_kernel()
    packages = sorted(set(BASE_PACKAGES) | set(extra_packages))
    src = mirror(suite)
    modules = _module_closure(moddir, ROOTFS_MODULES)
    h = hashlib.sha256()
    h.update(json.dumps([ROOTFS_LAYOUT, suite, src, packages, kver, modules,
                         sorted(GUEST_FILES.items()), MASKED_UNITS]).encode())
    cdir = os.path.join(V.CACHE, "debian-rootfs")
    dest = os.path.join(cdir, "%s-%s" % (suite, h.hexdigest()[:20]))
    return dest, cdir, kver, moddir, packages, src, modules


def base_rootfs_cached(extra_packages=(), suite=SUITE):
    """The cached base rootfs for these packages, or None when it must be made."""
    dest = _rootfs_plan(extra_packages, suite)[0]
    return dest if os.path.exists(os.path.join(dest, ".complete")) else None


def _debootstrap(argv, say):
    """Runs debootstrap, telling each phase as it starts (at most one line
    every 5 s); raises E2EError with its output when it fails."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    last_phase, last_t = None, 0.0
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        m = re.match(r"I: (\w+)", line)
        if m and m.group(1) != last_phase and time.monotonic() - last_t >= 5:
            last_phase, last_t = m.group(1), time.monotonic()
            say("debootstrap: " + line[3:])
    if proc.wait() != 0:
        raise V.E2EError("debootstrap failed (status %d):\n%s"
                         % (proc.returncode, "\n".join(lines[-60:])))


def base_rootfs(extra_packages=(), say=log, suite=SUITE):
    """The cached base root file system of Debian `suite`: a directory to
    copy, never to change. Returns (path, kernel version). say() tells the
    progress of a debootstrap."""
    dest, cdir, kver, moddir, packages, src, modules = _rootfs_plan(extra_packages, suite)
    os.makedirs(cdir, exist_ok=True)
    if os.path.exists(os.path.join(dest, ".complete")):
        os.utime(dest)
        log("Debian rootfs from the cache: %s" % dest)
        return dest, kver

    work = tempfile.mkdtemp(prefix=".work-", dir=cdir)
    try:
        root = os.path.join(work, "root")
        say("debootstrap %s from %s (minbase + %s); one to three minutes, cached afterwards"
            % (suite, src, ",".join(packages)))
        t0 = time.monotonic()
        argv = ["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
                suite, root, src]
        try:
            _debootstrap(argv, say)
        except V.E2EError:
            # A flaky download: one more try from a clean directory.
            say("debootstrap failed; trying once more")
            shutil.rmtree(root, ignore_errors=True)
            _debootstrap(argv, say)
        say("debootstrap took %.0f s" % (time.monotonic() - t0))
        for path, text in GUEST_FILES.items():
            full = root + path
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)
        for unit in MASKED_UNITS:
            link = os.path.join(root, "etc/systemd/system", unit)
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink("/dev/null", link)
        # systemd makes a machine id at first boot; an empty file, not a copy
        # of anyone's, so each image is its own machine.
        with open(os.path.join(root, "etc/machine-id"), "w"):
            pass
        # No root password and no login: nothing is typed into this guest.
        mdest = os.path.join(root, "lib/modules", kver)
        for rel in modules:
            os.makedirs(os.path.join(mdest, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(moddir, rel), os.path.join(mdest, rel))
        for f in os.listdir(moddir):
            if f.startswith("modules.order") or f.startswith("modules.builtin"):
                shutil.copy2(os.path.join(moddir, f), os.path.join(mdest, f))
        run(["depmod", "-b", root, kver], "depmod")
        run(["chroot", root, "apt-get", "clean"], "apt-get clean")
        shutil.rmtree(os.path.join(root, "var/lib/apt/lists"), ignore_errors=True)
        os.makedirs(os.path.join(root, "var/lib/apt/lists/partial"), exist_ok=True)
        with open(os.path.join(root, ".complete"), "w") as f:
            f.write(" ".join(argv) + "\n")
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.rename(root, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Keep the cache small: the three most recently used root file systems
    # of this suite (the other suite's are another test's).
    olds = sorted((os.path.join(cdir, d) for d in os.listdir(cdir)
                   if d.startswith(suite + "-")), key=os.path.getmtime)
    for old in olds[:-3]:
        shutil.rmtree(old, ignore_errors=True)
    return dest, kver


def make_image(workdir, deb, extra_files=None, size=IMAGE_SIZE, say=log,
               suite=SUITE, packages=None, prepare=None):
    """A raw ext4 disk image in workdir: the base rootfs of `suite` with
    `deb` installed by dpkg in a chroot (deb None: no .deb, and `packages`,
    default its dependencies, in the base), prepare(root) called on the copy,
    and extra_files ({guest path: host path}) copied in. Returns (image path,
    kernel version, dpkg's output or prepare()'s result)."""
    if packages is None:
        packages = deb_depends(deb) if deb else ()
    base, kver = base_rootfs(packages, say, suite)
    root = os.path.join(workdir, "rootfs")
    t0 = time.monotonic()
    run(["cp", "-a", base, root], "copying the base rootfs")
    os.unlink(os.path.join(root, ".complete"))
    dpkg_out = None
    if deb:
        shutil.copy2(deb, os.path.join(root, "tmp", "guestd.deb"))
        # systemd is not running in the chroot: the postinst must only lay
        # down files, and the agent must start at boot because udev sees the port.
        dpkg_out = run(["chroot", root, "dpkg", "-i", "/tmp/guestd.deb"], "dpkg -i in the chroot")
        os.unlink(os.path.join(root, "tmp", "guestd.deb"))
    if prepare:
        dpkg_out = prepare(root)
    for gpath, hpath in (extra_files or {}).items():
        dst = root + gpath
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(hpath, dst)
    img = os.path.join(workdir, "root.img")
    run(["mkfs.ext4", "-q", "-F", "-L", "guestd-root", "-d", root, img, size], "mkfs.ext4 -d")
    shutil.rmtree(root)
    say("disk image %s made in %.1f s" % (img, time.monotonic() - t0))
    return img, kver, dpkg_out


# --------------------------------------------------------------------------
# The initramfs: insmod, mount /dev/vda, switch_root to systemd

INIT_SCRIPT = r'''#!/bin/sh
# /init of the guestd Debian-guest initramfs (tests/e2e/debian_rootfs.py).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "guestd-initramfs: $*" >/dev/console; }
fail() { say "$*; powering off"; sleep 1; echo o >/proc/sysrq-trigger; sleep 10; }
say "loading modules"
for m in @MODULES@; do
    [ -f /lib/modules/e2e/$m.ko ] || continue
    insmod /lib/modules/e2e/$m.ko || say "insmod $m failed"
done
n=0
while [ ! -b /dev/vda ]; do
    n=$((n + 1))
    [ $n -le 300 ] || fail "no /dev/vda"
    sleep 0.1
done
mkdir -p /newroot
mount -t ext4 -o rw /dev/vda /newroot || fail "cannot mount /dev/vda"
say "root file system mounted; starting systemd"
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
'''


def build_initrd(moddir, kver):
    mods = {}
    for m in INITRD_MODULES:
        data = V._find_module(moddir, m)
        if data is not None:
            mods[m] = data
    busybox = shutil.which("busybox") or "/bin/busybox"
    with open(busybox, "rb") as f:
        bb = f.read()
    init = INIT_SCRIPT.replace("@MODULES@", " ".join(INITRD_MODULES))
    h = hashlib.sha256()
    h.update((INITRD_LAYOUT + kver + init).encode() + hashlib.sha256(bb).digest())
    for m, data in sorted(mods.items()):
        h.update(m.encode() + hashlib.sha256(data).digest())
    cdir = os.path.join(V.CACHE, "debian-initrd")
    os.makedirs(cdir, exist_ok=True)
    out = os.path.join(cdir, "%s-%s.cpio.gz" % (kver, h.hexdigest()[:20]))
    if os.path.exists(out):
        os.utime(out)
        return out
    import gzip
    c = V.Cpio()
    for d in ("bin", "dev", "proc", "sys", "newroot", "lib/modules/e2e"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    c.file("bin/busybox", bb, 0o755)
    applets = subprocess.run([busybox, "--list"], stdout=subprocess.PIPE,
                             check=True).stdout.decode().split()
    for a in applets:
        if a != "busybox":
            c.symlink("bin/" + a, "busybox")
    c.file("init", init.encode(), 0o755)
    for m, data in mods.items():
        c.file("lib/modules/e2e/%s.ko" % m, data)
    tmp = out + ".tmp.%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(gzip.compress(c.finish(), compresslevel=1, mtime=0))
    os.rename(tmp, out)
    olds = sorted(glob.glob(os.path.join(cdir, "*.cpio.gz")), key=os.path.getmtime)
    for old in olds[:-5]:
        os.unlink(old)
    return out


# --------------------------------------------------------------------------
# The VM

class DebianVM:
    """A QEMU guest booting a disk image made by make_image().

    The port org.guestd.agent.0 is on the host socket self.port_path from
    the start. The guest reboots in place (no -no-reboot), so power.reboot
    can be tested; QMP shows each reset."""

    def __init__(self, name, image, workdir, mem=512, smp=1, quiet=False):
        self.name = name
        self.quiet = quiet
        self.image = image
        self.dir = workdir
        self.mem = mem
        self.smp = smp
        self.port_path = os.path.join(workdir, "port0.sock")
        self.qmp_path = os.path.join(workdir, "qmp.sock")
        self.console_log = os.path.join(workdir, "console.log")
        self.journal_log = os.path.join(workdir, "journal.log")
        self.qemu_log = os.path.join(workdir, "qemu.log")
        self.proc = None
        self.qmp = None
        self.t_start = None
        if len(self.port_path) > 100:
            raise V.E2EError("path too long for a unix socket: %s" % self.port_path)

    def start(self):
        vmlinuz, moddir, kver = V.fetch_kernel()
        initrd = build_initrd(moddir, kver)
        cmdline = ["console=ttyS0", "root=/dev/vda", "rw", "quiet",
                   "systemd.show_status=1", "net.ifnames=0"]
        argv = [V.QEMU, "-nodefaults", "-no-user-config", "-accel", "tcg",
                "-m", str(self.mem), "-smp", str(self.smp), "-display", "none",
                "-kernel", vmlinuz, "-initrd", initrd, "-append", " ".join(cmdline),
                "-drive", "file=%s,format=raw,if=virtio,cache=unsafe" % self.image,
                "-chardev", "file,id=con0,path=" + self.console_log,
                "-serial", "chardev:con0",
                "-chardev", "file,id=jour0,path=" + self.journal_log,
                "-serial", "chardev:jour0",
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
                "-device", "virtio-serial-pci,id=vser0",
                "-chardev", "socket,id=port0,path=%s,server=on,wait=off" % self.port_path,
                "-device", "virtserialport,bus=vser0.0,chardev=port0,id=vport0,"
                           "name=" + V.PORT_NAME]
        if not self.quiet:
            log("%s: booting: %s" % (self.name, " ".join(argv)))
        self.t_start = time.monotonic()
        self.qemu_err = open(self.qemu_log, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.qemu_err, stderr=subprocess.STDOUT,
                                     cwd=self.dir, preexec_fn=V._die_with_parent)
        self.qmp = V.QMP(self.qmp_path)
        return self

    def elapsed(self):
        return time.monotonic() - self.t_start

    def console_text(self):
        try:
            with open(self.console_log, "rb") as f:
                return f.read().decode(errors="replace").replace("\r", "")
        except OSError:
            return ""

    def journal_text(self):
        try:
            with open(self.journal_log, "rb") as f:
                return f.read().decode(errors="replace").replace("\r", "")
        except OSError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None and self.qmp:
            try:
                self.qmp.execute("quit", timeout=5)
            except Exception:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        self.qemu_err.close()

    def dump_logs(self, lines=80):
        for what, text in (("guest console (ttyS0)", self.console_text()),
                           ("guest journal (ttyS1)", self.journal_text())):
            rows = text.splitlines()[-lines:]
            print("----- %s: %s (last %d lines) -----" % (self.name, what, len(rows)))
            for r in rows:
                print("  | " + r)
        try:
            with open(self.qemu_log, "rb") as f:
                q = f.read().decode(errors="replace").strip()
            if q:
                print("----- %s: qemu output -----\n%s" % (self.name, q))
        except OSError:
            pass


class Progress:
    """Tells what the booting guest is doing, from its console: the kernel,
    the initramfs, systemd, the agent's unit."""

    MARKS = [
        (re.compile(r"guestd-initramfs: loading"), "kernel up, initramfs loading virtio and ext4"),
        (re.compile(r"guestd-initramfs: root file system mounted"), "root file system mounted"),
        (re.compile(r"Welcome to .*Debian"), "systemd started"),
        (re.compile(r"Started .*systemd-udevd"), "systemd: udev running"),
        (re.compile(r"Reached target .*[Bb]asic"), "systemd: basic system up"),
        (re.compile(r"Starting .*guestd"), "systemd: starting guestd.service (udev saw the port)"),
    ]

    def __init__(self, vm, say):
        self.vm = vm
        self.say = say
        self.pos = 0
        self.seen = set()

    def poll(self):
        text = self.vm.console_text()
        new, self.pos = text[max(0, self.pos - 200):], len(text)
        for rx, what in self.MARKS:
            if what not in self.seen and rx.search(new):
                self.seen.add(what)
                self.say("%5.1f s  %s" % (self.vm.elapsed(), what))

    def reset(self):
        self.seen = set()
