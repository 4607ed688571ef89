"""A VM with QEMU's guest agent (qemu-ga) beside guestd (Python 3, stdlib only).

Extends tests/e2e/vm.py without editing it: the initramfs that vm.py builds
(cached as usual) gets a second gzip'd cpio archive appended, with the extra
binaries and the shared libraries ldd names (the kernel unpacks concatenated
archives in order). The combined image is cached beside vm.py's, keyed by the
base image and a hash of everything in the extra archive.

  AgentsVM(..., extra_bins=[qemu_ga_path])   a vm.VM whose guest also holds
                                             /usr/sbin/<basename of each>
  vm.add_qga_port()     hot-plugs the virtserialport org.qemu.guest_agent.0
                        (QMP) and returns the host socket path
  vm.start_qga()        starts qemu-ga on that port in the guest; returns its pid
"""

import gzip
import hashlib
import os
import shutil
import time

import vm as V

QGA_PORT = "org.qemu.guest_agent.0"
QGA_DEV = "/dev/virtio-ports/" + QGA_PORT


def find_qemu_ga():
    p = os.environ.get("QEMU_GA") or shutil.which("qemu-ga") or "/usr/sbin/qemu-ga"
    return p if os.access(p, os.X_OK) else None


def _extra_archive(binaries):
    """(gzip'd cpio bytes, library dirs) for the binaries and their libraries."""
    files = {}
    libdirs = []
    for b in binaries:
        files["/usr/sbin/" + os.path.basename(b)] = b
        for lib in V._ldd(b):
            files[lib] = lib
            d = os.path.dirname(lib)
            if d not in libdirs:
                libdirs.append(d)
    c = V.Cpio()
    for gpath in sorted(files):
        with open(files[gpath], "rb") as f:
            c.file(gpath, f.read(), 0o755)
    return gzip.compress(c.finish(), compresslevel=1, mtime=0), libdirs


def _builder(base_build, binaries):
    def build(guestd_bin=None):
        vmlinuz, base = base_build(guestd_bin)
        extra, _ = _extra_archive(binaries)
        key = hashlib.sha256(os.path.basename(base).encode() + extra).hexdigest()[:16]
        name = os.path.basename(base)[:-len(".cpio.gz")]
        out = os.path.join(os.path.dirname(base), "%s+agents-%s.cpio.gz" % (name, key))
        if not os.path.exists(out):
            tmp = out + ".tmp.%d" % os.getpid()
            with open(base, "rb") as f, open(tmp, "wb") as o:
                o.write(f.read())
                o.write(extra)
            os.rename(tmp, out)
            V.log("built initramfs %s (with %s)" % (out, ", ".join(binaries)))
        else:
            os.utime(out)
        return vmlinuz, out
    return build


class AgentsVM(V.VM):
    """vm.VM plus extra binaries in the guest and a qemu-ga port."""

    def __init__(self, *args, extra_bins=(), **kw):
        super().__init__(*args, **kw)
        self.extra_bins = list(extra_bins)
        self.qga_path = os.path.join(self.dir, self.name + "-qga.sock")
        self.libpath = ":".join(_extra_archive(self.extra_bins)[1]) if self.extra_bins else ""

    def start(self, timeout=180):
        base = V.build_initramfs
        if self.extra_bins:
            V.build_initramfs = _builder(base, self.extra_bins)
        try:
            return super().start(timeout)
        finally:
            V.build_initramfs = base

    def add_qga_port(self, timeout=15):
        self.add_chardev("qga0", self.qga_path)
        self.add_port("qgaport0", "qga0", name=QGA_PORT)
        deadline = time.monotonic() + timeout
        while self.sh_rc("[ -e %s ]" % QGA_DEV)[0] != 0:
            if time.monotonic() > deadline:
                raise V.E2EError("%s did not appear in the guest" % QGA_DEV)
            time.sleep(0.2)
        return self.qga_path

    def start_qga(self, args=()):
        """Starts qemu-ga on the virtio-serial port (state in /run/qga, its
        log on the agent log's tty); returns its pid."""
        extra = " ".join(args)
        self.sh("mkdir -p /run/qga; LD_LIBRARY_PATH=%s setsid /usr/sbin/qemu-ga -m virtio-serial "
                "-p %s -t /run/qga -f /run/qga/qemu-ga.pid %s </dev/null >/dev/ttyS1 2>&1 & "
                "echo $! >/run/qga.pid" % (self.libpath or "/lib", QGA_DEV, extra))
        pid = int(self.sh("cat /run/qga.pid").strip())
        time.sleep(0.5)
        if not self.alive(pid):
            raise V.E2EError("qemu-ga exited at start; agent log:\n%s" % self.agent_log_text()[-2000:])
        return pid
