"""Real-VM test harness for guestd (Python 3, stdlib only).

Boots a Debian kernel under QEMU (TCG) with a busybox initramfs that holds the
guestd binary under test, a virtio-serial port on a host unix socket, a QMP
monitor and a command shell on the serial console, and gives a test script:

  VM          boot/stop the guest, run shell commands in it (VM.sh), read
              guestd's /proc/<pid>/status, hot-plug/unplug ports through QMP
  Host        the host end of a virtio-serial port: connect, send requests,
              wait for NDJSON responses and events with timeouts
  QMP         a minimal QMP client (commands, events)

Nothing slow is made twice: the kernel comes from fetch-kernel.sh (cached by
package version), the initramfs is cached by a hash of everything in it.
Both live under $GUESTD_E2E_CACHE (default /var/cache/guestd-e2e), never in
the repository. Every per-run file (sockets, logs) is in one temporary
directory, removed after a clean run and kept (and named) after a failure.

Guest side (see INIT_SCRIPT): /init mounts proc, sys and devtmpfs, insmods
the virtio modules, starts a watcher that keeps /dev/virtio-ports/<name>
links in step with /sys/class/virtio-ports (busybox has no udev; it polls
every 100 ms with shell builtins only, so it does not fork while nothing
changes), starts the agent with the arguments passed on the kernel command
line (guestd.args=<base64 of one argument per line>, and its environment
from guestd.env=<base64 of one NAME=VALUE per line>), then reads commands
from ttyS0 for the harness. The agent's stdout/stderr and the init/watcher
notes go to ttyS1, which QEMU writes to a host file, so the agent's log
survives a hung guest.

Environment:
  GUESTD_BIN            the guestd binary to test
  GUESTD_E2E_CACHE      cache root (default /var/cache/guestd-e2e)
  GUESTD_E2E_KEEP=1     keep the temporary directory even after success
  GUESTD_E2E_VERBOSE=1  echo the guest console to stdout as it arrives and
                        keep kernel messages at their normal level
  GUESTD_E2E_DEBUG=1    the guest writes `ps` to the agent log every 5 s
  GUESTD_E2E_QEMU       qemu binary (default qemu-system-x86_64)

`python3 tests/e2e/vm.py selftest` checks the harness against a shell
stand-in agent; `python3 tests/e2e/vm.py shell [guestd args]` boots a VM with
GUESTD_BIN and runs guest commands typed on stdin (for poking at a failure).
"""

import base64
import functools
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("GUESTD_E2E_CACHE", "/var/cache/guestd-e2e")
VERBOSE = os.environ.get("GUESTD_E2E_VERBOSE", "") not in ("", "0")
DEBUG = os.environ.get("GUESTD_E2E_DEBUG", "") not in ("", "0")
QEMU = os.environ.get("GUESTD_E2E_QEMU", "qemu-system-x86_64")

PORT_NAME = "org.guestd.agent.0"
PORT_DEV = "/dev/virtio-ports/" + PORT_NAME
MODULES = ["virtio_ring", "virtio", "virtio_pci_modern_dev",
           "virtio_pci_legacy_dev", "virtio_pci", "virtio_console"]
# Bump when the initramfs layout changes in a way the hash cannot see.
LAYOUT_VERSION = "4"


class E2EError(Exception):
    pass


def log(msg):
    print("[e2e %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# --------------------------------------------------------------------------
# Kernel

def fetch_kernel():
    """Returns (vmlinuz path, modules dir, kernel version)."""
    out = subprocess.run(["sh", os.path.join(HERE, "fetch-kernel.sh")],
                         stdout=subprocess.PIPE, check=True,
                         env=dict(os.environ, GUESTD_E2E_CACHE=CACHE))
    root = out.stdout.decode().strip().splitlines()[-1]
    boot = os.path.join(root, "boot")
    kernels = sorted(f for f in os.listdir(boot) if f.startswith("vmlinuz-"))
    if not kernels:
        raise E2EError("no vmlinuz in %s" % boot)
    kver = kernels[-1][len("vmlinuz-"):]
    return (os.path.join(boot, kernels[-1]),
            os.path.join(root, "lib", "modules", kver), kver)


def _find_module(moddir, name):
    """The module's bytes, decompressed; None when it is built in or absent."""
    builtin = os.path.join(moddir, "modules.builtin")
    if os.path.exists(builtin):
        with open(builtin) as f:
            for line in f:
                if os.path.basename(line.strip()).split(".ko")[0] == name:
                    return None
    for dirpath, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            if ".ko" not in f or f.split(".ko")[0].replace("-", "_") != name:
                continue
            path = os.path.join(dirpath, f)
            with open(path, "rb") as fh:
                data = fh.read()
            if f.endswith(".ko"):
                return data
            if f.endswith(".xz"):
                return lzma.decompress(data)
            if f.endswith(".gz"):
                return gzip.decompress(data)
            if f.endswith(".zst"):
                return subprocess.run(["zstd", "-dc", path], check=True,
                                      stdout=subprocess.PIPE).stdout
    log("module %s: not found (assuming built in)" % name)
    return None


# --------------------------------------------------------------------------
# Initramfs

class Cpio:
    """A newc ("070701") archive written by hand: no root, no mknod."""

    def __init__(self):
        self.out = bytearray()
        self.ino = 1
        self.names = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name = name.lstrip("/")
        if name in self.names:
            return
        self.names.add(name)
        nb = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 2 if mode & 0o040000 else 1, 0,
                  len(data), 0, 0, rdev[0], rdev[1], len(nb), 0]
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % v for v in fields) + nb
        self.out += hdr + b"\0" * (-len(hdr) % 4)
        self.out += data + b"\0" * (-len(data) % 4)

    def dir(self, name, mode=0o755):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), 0o040000 | mode)

    def _parent(self, name):
        parent = os.path.dirname(name.strip("/"))
        if parent:
            self.dir(parent)

    def file(self, name, data, mode=0o644):
        self._parent(name)
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name, target):
        self._parent(name)
        self._entry(name, 0o120777, target.encode())

    def chardev(self, name, major, minor, mode=0o600):
        self._parent(name)
        self._entry(name, 0o020000 | mode, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return bytes(self.out)


def cpio_entries(path):
    """(name, mode) of every entry of a gzip'd newc archive (an initramfs
    built here): what a suite asserts is, or is not, in the guest."""
    data = gzip.decompress(open(path, "rb").read())
    out = []
    pos = 0
    while pos + 110 <= len(data):
        if data[pos:pos + 6] != b"070701":
            raise E2EError("%s: no newc header at offset %d" % (path, pos))
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode(errors="replace")
        pos += 110 + namesize
        pos += -pos % 4
        pos += size + (-size % 4)
        if name == "TRAILER!!!":
            break
        out.append((name, mode))
    return out


INIT_SCRIPT = r'''#!/bin/sh
# /init of the guestd e2e initramfs (written by tests/e2e/vm.py).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run/guestd /var/lib/guestd /var/log/guestd /tmp
hostname guestd-e2e

param() {
    for w in $(cat /proc/cmdline); do
        case "$w" in "$1="*) echo "${w#*=}"; return 0;; esac
    done
    return 1
}
LOG=/dev/ttyS1
[ -c $LOG ] && stty -F $LOG raw -echo 2>/dev/null || LOG=/dev/null
note() { read up _ </proc/uptime; echo "[e2e $up] $*" >$LOG; }

for m in @MODULES@; do
    if [ -f /lib/modules/e2e/$m.ko ]; then
        insmod /lib/modules/e2e/$m.ko || note "insmod $m failed"
    fi
done
note "modules loaded"

# /dev/virtio-ports/<name> -> ../vportNpM, kept in step with sysfs (no udev).
mkfifo /run/e2e-tick
(
    exec 9<>/run/e2e-tick
    while :; do
        for l in /dev/virtio-ports/*; do
            if [ -L "$l" ] && [ ! -e "$l" ]; then
                rm -f "$l"; note "watcher: removed $l"
            fi
        done
        for d in /sys/class/virtio-ports/vport*; do
            [ -e "$d/name" ] || continue
            n=; read -r n <"$d/name" 2>/dev/null
            [ -n "$n" ] || continue
            v=${d##*/}
            [ -c "/dev/$v" ] || continue
            l=/dev/virtio-ports/$n
            [ -L "$l" ] && [ "$l" -ef "/dev/$v" ] && continue
            [ -d /dev/virtio-ports ] || mkdir -p /dev/virtio-ports
            ln -sfn "../$v" "$l" && note "watcher: $l -> ../$v"
        done
        read -t 0.1 _ <&9
    done
) </dev/null >/dev/null 2>&1 &

agent=$(param e2e.agent) || agent=guestd
set --
if a=$(param guestd.args) && [ -n "$a" ]; then
    echo "$a" | base64 -d >/etc/guestd.args
    while IFS= read -r x; do set -- "$@" "$x"; done </etc/guestd.args
fi
if e=$(param guestd.env) && [ -n "$e" ]; then
    echo "$e" | base64 -d >/etc/guestd.env
    while IFS= read -r x; do export "$x"; done </etc/guestd.env
fi
case "$agent" in
guestd) cmd=/usr/sbin/guestd ;;
standin) cmd=/sbin/standin-agent ;;
*) cmd= ;;
esac
if [ -n "$cmd" ]; then
    note "starting $cmd $*"
    (
        cd /
        LD_LIBRARY_PATH=@LIBPATH@ "$cmd" "$@" </dev/null >$LOG 2>&1 &
        echo $! >/run/guestd.pid
        wait $!
        note "agent (pid $!) exited with status $?"
    ) &
    while [ ! -s /run/guestd.pid ]; do read -t 0.01 _ <>/run/e2e-tick; done
fi

if param e2e.debug >/dev/null; then
    (
        while :; do
            sleep 5
            { echo "=== ps"; ps -o pid,ppid,stat,args; grep -H . /proc/[0-9]*/wchan; } >$LOG 2>&1
        done
    ) </dev/null >/dev/null 2>&1 &
fi
param e2e.verbose >/dev/null || dmesg -n 1
stty -F /dev/ttyS0 -echo 2>/dev/null
read up _ </proc/uptime
echo "@@E2E-READY uptime=$up"
# The harness's shell: one command per line, "@@<n> <command>"; its output is
# framed by "@@<n>-B" and "@@<n>-E:<status>". Each command runs in its own
# sh -c, so a syntax error cannot take the loop down; other lines are ignored.
while :; do
    while IFS= read -r line; do
        case "$line" in
        @@*" "*)
            n=${line%% *}
            echo "$n-B"
            sh -c "${line#* }" </dev/null 2>&1
            echo "$n-E:$?"
            ;;
        esac
    done </dev/ttyS0 >/dev/ttyS0 2>&1
done
'''

# A few lines of shell that behave like the agent on the wire, for checking
# the harness itself (vm.py selftest): hello on every attach, ping and info.
STANDIN_AGENT = r'''#!/bin/sh
P=/dev/virtio-ports/org.guestd.agent.0
START=$(date +%s)000
seq=0
mkfifo /run/standin-tick
exec 8<>/run/standin-tick
echo "standin agent: waiting for $P"
while :; do
    if ! [ -e $P ] || ! exec 3<>$P; then read -t 0.1 _ <&8; continue; fi
    echo "standin agent: opened $P"
    # Blocks until a host is attached.
    printf '{"event":"hello","seq":%d,"ts":0,"data":{"agent":"standin","version":"0","protocol":1,"hostname":"guestd-e2e","boot_id":"x","started_at":%s,"commands":["ping","info"]}}\n' $seq $START >&3
    seq=$((seq+1))
    while IFS= read -r line <&3; do
        id=${line#*\"id\":}; id=${id%%,*}; id=${id%%\}*}
        case "$line" in
        *'"cmd":"ping"'*) printf '{"id":%s,"ok":true,"result":{"pong":true}}\n' "$id" >&3 ;;
        *'"cmd":"info"'*) printf '{"id":%s,"ok":true,"result":{"agent":"standin","version":"0","protocol":1,"started_at":%s,"commands":[]}}\n' "$id" $START >&3 ;;
        *) printf '{"id":%s,"ok":false,"error":{"code":"unknown_command","message":"?"}}\n' "$id" >&3 ;;
        esac
    done
    exec 3<&-
    echo "standin agent: host detached"
done
'''


@functools.lru_cache(maxsize=None)
def _ldd(binary):
    """The libraries binary loads (a tuple of paths); asked of ldd once per
    binary, since every boot and every sanitized() check needs them."""
    res = subprocess.run(["ldd", binary], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    text = res.stdout.decode(errors="replace")
    if res.returncode != 0:
        if "not a dynamic executable" in text or "statically linked" in text:
            return ()
        raise E2EError("ldd %s failed: %s" % (binary, text))
    libs = []
    for line in text.splitlines():
        if "not found" in line:
            raise E2EError("ldd %s: %s" % (binary, line.strip()))
        for tok in line.split():
            if tok.startswith("/"):
                libs.append(tok)
    return tuple(libs)


def sanitized(binary):
    """True when binary is built with AddressSanitizer (its libasan comes
    into the initramfs with the other libraries): RSS bounds do not hold
    there, and a leak or error report at exit fails the suite."""
    return any("/libasan." in lib for lib in _ldd(binary))


# What a sanitizer prints when it finds something (ASan, LSan, UBSan).
SANITIZER_REPORT = re.compile(r"ERROR: (?:Address|Leak)Sanitizer|runtime error: |SUMMARY: \w+Sanitizer")


def build_initramfs(guestd_bin=None):
    """Builds (or finds in the cache) the initramfs for guestd_bin (None: no
    agent binary, for the stand-in). Returns (vmlinuz, initramfs path)."""
    vmlinuz, moddir, kver = fetch_kernel()
    files = {}   # guest path -> (host path, mode)
    busybox = shutil.which("busybox") or "/bin/busybox"
    files["/bin/busybox"] = (busybox, 0o755)
    libdirs = []
    if guestd_bin:
        files["/usr/sbin/guestd"] = (guestd_bin, 0o755)
        for lib in _ldd(guestd_bin):
            files[lib] = (lib, 0o755)
            d = os.path.dirname(lib)
            if d not in libdirs:
                libdirs.append(d)
    mods = {}
    for m in MODULES:
        data = _find_module(moddir, m)
        if data is not None:
            mods[m] = data
    init = INIT_SCRIPT.replace("@MODULES@", " ".join(MODULES)) \
                      .replace("@LIBPATH@", ":".join(libdirs) or "/lib")

    h = hashlib.sha256()
    h.update(LAYOUT_VERSION.encode() + kver.encode() + init.encode()
             + STANDIN_AGENT.encode())
    contents = {}
    for gpath, (hpath, mode) in sorted(files.items()):
        with open(hpath, "rb") as f:
            contents[gpath] = f.read()
        h.update(gpath.encode() + b"\0" + hashlib.sha256(contents[gpath]).digest())
    for m, data in sorted(mods.items()):
        h.update(m.encode() + hashlib.sha256(data).digest())
    key = h.hexdigest()[:24]
    cdir = os.path.join(CACHE, "initramfs")
    os.makedirs(cdir, exist_ok=True)
    out = os.path.join(cdir, "%s-%s.cpio.gz" % (kver, key))
    if os.path.exists(out):
        os.utime(out)
        log("initramfs from the cache: %s" % out)
        return vmlinuz, out

    applets = subprocess.run([busybox, "--list"], stdout=subprocess.PIPE,
                             check=True).stdout.decode().split()
    c = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys",
              "tmp", "run", "root", "etc", "var/lib", "var/log", "lib/modules/e2e"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    c.chardev("dev/ttyS0", 4, 64)
    for gpath in sorted(files):
        c.file(gpath, contents[gpath], files[gpath][1])
    for a in applets:
        if a != "busybox":
            c.symlink("bin/" + a, "busybox")
    c.file("init", init.encode(), 0o755)
    c.file("sbin/standin-agent", STANDIN_AGENT.encode(), 0o755)
    for m, data in mods.items():
        c.file("lib/modules/e2e/%s.ko" % m, data)
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    c.file("etc/group", b"root:x:0:\n")
    c.file("etc/hostname", b"guestd-e2e\n")
    c.file("etc/machine-id", b"0123456789abcdef0123456789abcdef\n")
    c.file("etc/os-release", b'ID=busybox\nNAME="guestd e2e initramfs"\n'
           b'VERSION_ID=1\nPRETTY_NAME="guestd e2e initramfs"\n')
    tmp = out + ".tmp.%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(gzip.compress(c.finish(), compresslevel=1, mtime=0))
    os.rename(tmp, out)
    log("built initramfs %s" % out)
    # Keep the cache small: the ten most recently used images.
    images = sorted((os.path.join(cdir, f) for f in os.listdir(cdir)
                     if f.endswith(".cpio.gz")), key=os.path.getmtime)
    for old in images[:-10]:
        try:
            os.unlink(old)
        except OSError:
            pass
    return vmlinuz, out


# --------------------------------------------------------------------------
# Sockets

class _LineSocket:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def readline(self, deadline):
        """One line (bytes, without the newline), or None at the deadline.
        Raises EOFError when the peer has closed."""
        while b"\n" not in self.buf:
            if self.eof:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                raise EOFError("connection closed")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                self.eof = True
                continue
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _connect_unix(path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            t = time.monotonic()
            s.connect(path)
            return s, t
        except OSError as e:
            s.close()
            if time.monotonic() > deadline:
                raise E2EError("cannot connect to %s: %s" % (path, e))
            time.sleep(0.05)


class QMP:
    """Minimal QMP client. Events that arrive are kept in self.events."""

    def __init__(self, path, timeout=30):
        s, _ = _connect_unix(path, timeout)
        self.ls = _LineSocket(s)
        self.events = []
        self.next_id = 1
        greeting = self._read(time.monotonic() + timeout)
        if greeting is None or "QMP" not in greeting:
            raise E2EError("QMP greeting: %r" % greeting)
        self.execute("qmp_capabilities")

    def _read(self, deadline):
        line = self.ls.readline(deadline)
        return None if line is None else json.loads(line)

    def execute(self, cmd, timeout=30, **args):
        qid = "q%d" % self.next_id
        self.next_id += 1
        msg = {"execute": cmd, "id": qid}
        if args:
            msg["arguments"] = args
        self.ls.sock.sendall(json.dumps(msg).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            r = self._read(deadline)
            if r is None:
                raise E2EError("QMP %s: no answer within %ss" % (cmd, timeout))
            if "event" in r:
                self.events.append(r)
                continue
            if r.get("id") != qid:
                continue
            if "error" in r:
                raise E2EError("QMP %s %s: %s" % (cmd, args, r["error"]))
            return r.get("return")

    def wait_event(self, name, timeout=10, match=None):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name and (match is None or match(e)):
                    return self.events.pop(i)
            r = self._read(deadline)
            if r is None:
                raise E2EError("QMP: no %s event within %ss" % (name, timeout))
            if "event" in r:
                self.events.append(r)

    def close(self):
        self.ls.close()


def short(m, n=200):
    s = json.dumps({k: v for k, v in m.items() if k != "_t"})
    return s if len(s) <= n else s[:n] + "..."


class Host:
    """The host end of one virtio-serial port (a QEMU socket chardev).

    Messages are dicts; each gets "_t", the monotonic time it was read.
    A line that is not a JSON object comes back as {"_raw": text}."""

    def __init__(self, path, name="host"):
        self.path = path
        self.name = name
        self.ls = None
        self.next_id = 1
        self.pending = []
        self.t_connect = None

    def connect(self, timeout=5):
        s, self.t_connect = _connect_unix(self.path, timeout)
        self.ls = _LineSocket(s)
        self.pending = []
        return self

    def close(self):
        if self.ls:
            self.ls.close()
        self.ls = None

    def send_raw(self, data):
        self.ls.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def _read_msg(self, deadline):
        while True:
            line = self.ls.readline(deadline)
            if line is None:
                return None
            if line.strip():
                break
        try:
            m = json.loads(line)
            if not isinstance(m, dict):
                raise ValueError
        except ValueError:
            m = {"_raw": line.decode(errors="replace")}
        m["_t"] = time.monotonic()
        return m

    def recv(self, timeout):
        """The next message, or None at the timeout."""
        if self.pending:
            return self.pending.pop(0)
        try:
            return self._read_msg(time.monotonic() + timeout)
        except EOFError:
            raise E2EError("%s: connection closed" % self.name)

    def wait_for(self, pred, timeout, what="message"):
        """The first message (pending or new) for which pred is true; the
        others stay pending for later readers."""
        for i, m in enumerate(self.pending):
            if pred(m):
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                m = self._read_msg(deadline)
            except EOFError:
                raise E2EError("%s: connection closed while waiting for %s (saw: %s)"
                               % (self.name, what, [short(x) for x in seen[-5:]]))
            if m is None:
                raise E2EError("%s: no %s within %.1fs (saw: %s)"
                               % (self.name, what, timeout,
                                  [short(x) for x in seen[-5:]] or "nothing"))
            if pred(m):
                return m
            self.pending.append(m)
            seen.append(m)

    def wait_event(self, name, timeout=10):
        return self.wait_for(lambda m: m.get("event") == name, timeout,
                             "'%s' event" % name)

    def request(self, cmd, args=None, id=None, timeout=10):
        if id is None:
            id = self.next_id
            self.next_id += 1
        msg = {"id": id, "cmd": cmd}
        if args is not None:
            msg["args"] = args
        self.send(msg)
        return self.wait_for(lambda m: "event" not in m and m.get("id") == id,
                             timeout, "response to %s (id %r)" % (cmd, id))


# --------------------------------------------------------------------------
# The VM

class VM:
    """One QEMU guest. Use as a context manager, or call start()/stop().

    agent: "guestd" (GUESTD_BIN, started by /init with guestd_args),
    "standin" (a shell imitation, for checking the harness) or "none".
    port_at_boot: whether the virtserialport org.guestd.agent.0 (on the
    host socket self.port_path) exists from the start."""

    def __init__(self, name="vm", agent="guestd", guestd_bin=None,
                 guestd_args=None, port_at_boot=True, mem=256, workdir=None):
        self.name = name
        self.agent = agent
        self.guestd_bin = guestd_bin
        self.guestd_args = list(guestd_args or [])
        self.port_at_boot = port_at_boot
        self.mem = mem
        self.mem_mib = mem
        self.own_workdir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="guestd-e2e-")
        self.qmp_path = os.path.join(self.dir, name + "-qmp.sock")
        self.port_path = os.path.join(self.dir, name + "-port0.sock")
        self.console_log = os.path.join(self.dir, name + "-console.log")
        self.agent_log = os.path.join(self.dir, name + "-agent.log")
        self.qemu_log = os.path.join(self.dir, name + "-qemu.log")
        self.proc = None
        self.qmp = None
        self.reader = None
        self.qemu_err = None
        self.con = bytearray()
        self.con_pos = 0
        self.con_cv = threading.Condition()
        self.con_eof = False
        self.marker = 0
        self.boot_seconds = None
        self.failed = False
        if len(self.port_path) > 100:
            raise E2EError("temporary directory path too long for unix sockets: %s" % self.dir)

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout=180):
        if self.agent == "guestd":
            if not self.guestd_bin or not os.access(self.guestd_bin, os.X_OK):
                raise E2EError("guestd binary %r is not executable" % self.guestd_bin)
        vmlinuz, initrd = build_initramfs(self.guestd_bin if self.agent == "guestd" else None)
        cmdline = ["console=ttyS0", "panic=-1", "e2e.agent=%s" % self.agent]
        if DEBUG:
            cmdline.append("e2e.debug=1")
        if VERBOSE:
            cmdline.append("e2e.verbose=1")
        else:
            cmdline.append("quiet")
        if self.guestd_args:
            enc = "".join(a + "\n" for a in self.guestd_args).encode()
            cmdline.append("guestd.args=" + base64.b64encode(enc).decode())
        mem = self.mem
        if self.agent == "guestd" and sanitized(self.guestd_bin):
            # ASan's defaults keep 256 MiB of freed memory in quarantine,
            # the whole guest: the kernel's OOM killer ended the agent.
            # Leaks are still reported at exit, use-after-free still caught
            # within the last 16 MiB freed.
            env = "ASAN_OPTIONS=quarantine_size_mb=16:detect_leaks=1\n"
            cmdline.append("guestd.env=" + base64.b64encode(env.encode()).decode())
            mem = max(mem, 512)
        self.mem_mib = mem   # what the guest was given
        argv = [QEMU, "-nodefaults", "-no-user-config", "-accel", "tcg",
                "-m", str(mem), "-smp", "1", "-display", "none",
                "-no-reboot", "-kernel", vmlinuz, "-initrd", initrd,
                "-append", " ".join(cmdline),
                "-chardev", "stdio,id=con0,signal=off", "-serial", "chardev:con0",
                "-chardev", "file,id=alog,path=" + self.agent_log,
                "-serial", "chardev:alog",
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
                "-device", "virtio-serial-pci,id=vser0"]
        if self.port_at_boot:
            argv += ["-chardev", "socket,id=port0,path=%s,server=on,wait=off" % self.port_path,
                     "-device", "virtserialport,bus=vser0.0,chardev=port0,id=vport0,name=" + PORT_NAME]
        log("%s: booting: %s" % (self.name, " ".join(argv)))
        self.t_start = time.monotonic()
        self.qemu_err = open(self.qemu_log, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.qemu_err, cwd=self.dir,
                                     preexec_fn=_die_with_parent)
        self.reader = threading.Thread(target=self._read_console, daemon=True)
        self.reader.start()
        self.qmp = QMP(self.qmp_path)
        m = self.wait_console(rb"@@E2E-READY uptime=([0-9.]+)", timeout)
        # Input sent while the guest is still opening ttyS0 can be lost:
        # probe until the command loop answers.
        deadline = time.monotonic() + 60
        while True:
            try:
                self.sh("true", timeout=2)
                break
            except E2EError:
                if time.monotonic() > deadline:
                    raise
        self.boot_seconds = time.monotonic() - self.t_start
        log("%s: guest ready in %.1f s (guest uptime at /init's end: %s s)"
            % (self.name, self.boot_seconds, m.group(1).decode()))
        return self

    def _read_console(self):
        with open(self.console_log, "wb") as f:
            while True:
                try:
                    chunk = os.read(self.proc.stdout.fileno(), 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                f.write(chunk)
                f.flush()
                if VERBOSE:
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()
                with self.con_cv:
                    self.con += chunk
                    self.con_cv.notify_all()
        with self.con_cv:
            self.con_eof = True
            self.con_cv.notify_all()

    def wait_console(self, pattern, timeout):
        """Waits for a regex on the console after what was consumed so far."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        with self.con_cv:
            while True:
                m = rx.search(self.con, self.con_pos)
                if m:
                    self.con_pos = m.end()
                    return m
                if self.con_eof:
                    raise E2EError("%s: QEMU exited (status %s) while waiting for %r"
                                   % (self.name, self.proc.poll(), pattern))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise E2EError("%s: console: no %r within %ss" % (self.name, pattern, timeout))
                self.con_cv.wait(left)

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
            log("%s: QEMU did not quit; killing it" % self.name)
            self.proc.kill()
            self.proc.wait()
        if self.qmp:
            self.qmp.close()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.reader:
            self.reader.join(timeout=5)
        if self.qemu_err:
            self.qemu_err.close()
        self.proc = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.failed = True
            self.dump_logs()
            self.stop()
            self.cleanup()
            raise

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.failed = True
            self.dump_logs()
        self.stop()
        self.cleanup()
        return False

    def cleanup(self):
        if not self.own_workdir:
            return
        if self.failed or os.environ.get("GUESTD_E2E_KEEP"):
            log("%s: logs kept in %s" % (self.name, self.dir))
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- logs ------------------------------------------------------------------

    def agent_log_text(self):
        try:
            with open(self.agent_log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def agent_log_mark(self):
        """A position in the agent log, for agent_log_since()."""
        return len(self.agent_log_text())

    def agent_log_since(self, mark):
        return self.agent_log_text()[mark:]

    def dump_logs(self, lines=60):
        def tail(path, what):
            try:
                with open(path, "rb") as f:
                    text = f.read().decode(errors="replace").replace("\r", "")
            except OSError:
                return
            rows = [r for r in text.splitlines() if not re.match(r"@@\d+-[BE]", r)]
            rows = rows[-lines:]
            print("----- %s: %s (last %d lines of %s) -----" % (self.name, what, len(rows), path))
            for r in rows:
                print("  | " + r)
        tail(self.agent_log, "agent log (guest ttyS1)")
        tail(self.console_log, "guest console (ttyS0)")
        tail(self.qemu_log, "qemu stderr")
        sys.stdout.flush()

    # -- guest shell -----------------------------------------------------------

    def sh(self, cmd, timeout=30, check=True):
        """Runs a one-line shell command in the guest (sh -c, stdin
        /dev/null, stderr merged) and returns its output. With check, a
        non-zero status raises."""
        rc, out = self.sh_rc(cmd, timeout)
        if check and rc != 0:
            raise E2EError("%s: guest command %r failed (status %d): %s"
                           % (self.name, cmd, rc, out.strip()))
        return out

    def sh_rc(self, cmd, timeout=30):
        if "\n" in cmd:
            raise E2EError("guest commands are one line: %r" % cmd)
        if self.proc is None or self.proc.poll() is not None:
            raise E2EError("%s: QEMU is not running" % self.name)
        self.marker += 1
        n = self.marker
        line = "\n@@%d %s\n" % (n, cmd)
        if len(line) > 3500:
            raise E2EError("guest command too long for the tty (%d bytes)" % len(line))
        with self.con_cv:
            start = len(self.con)
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except OSError as e:
            raise E2EError("%s: cannot write to the console: %s" % (self.name, e))
        rx = re.compile(rb"^@@%d-B\r?\n(.*?)^@@%d-E:(\d+)\r?$" % (n, n), re.M | re.S)
        deadline = time.monotonic() + timeout
        with self.con_cv:
            while True:
                m = rx.search(self.con, start)
                if m:
                    self.con_pos = max(self.con_pos, m.end())
                    out = m.group(1).decode(errors="replace").replace("\r", "")
                    return int(m.group(2)), out
                if self.con_eof:
                    raise E2EError("%s: QEMU exited during guest command %r" % (self.name, cmd))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise E2EError("%s: guest command %r: no answer within %ss"
                                   % (self.name, cmd, timeout))
                self.con_cv.wait(left)

    def guestd_pid(self):
        return int(self.sh("cat /run/guestd.pid").strip())

    def stop_agent(self, timeout=60):
        """SIGTERM to the agent /init started, then waits for /init's note
        of its exit in the agent log. Returns (exit status, what the agent
        logged from the signal on)."""
        pid = self.guestd_pid()
        mark = self.agent_log_mark()
        self.sh("kill -TERM %d" % pid)
        rx = re.compile(r"agent \(pid %d\) exited with status (\d+)" % pid)
        deadline = time.monotonic() + timeout
        while True:
            text = self.agent_log_since(mark)
            m = rx.search(text)
            if m:
                return int(m.group(1)), text
            if time.monotonic() > deadline:
                raise E2EError("%s: agent (pid %d) still running %ds after SIGTERM"
                               % (self.name, pid, timeout))
            time.sleep(0.2)

    def alive(self, pid):
        rc, out = self.sh_rc("grep -q '^State:[[:space:]]*[RSD]' /proc/%d/status" % pid)
        return rc == 0

    def proc_status(self, pid):
        """/proc/<pid>/status as a dict (raises if the process is gone)."""
        st = {}
        for line in self.sh("cat /proc/%d/status" % pid).splitlines():
            k, _, v = line.partition(":")
            st[k.strip()] = v.strip()
        return st

    def ctxt_switches(self, pid):
        """(voluntary, nonvoluntary) context switches of the process's main
        thread (/proc/<pid>/status), and the voluntary ones summed over all
        its threads (/proc/<pid>/task/*/status)."""
        out = self.sh("grep ctxt_switches /proc/%d/status; echo ---; "
                      "cat /proc/%d/task/*/status | grep ^voluntary_ctxt_switches"
                      % (pid, pid))
        head, _, threads = out.partition("---")
        vals = dict((k.strip(), int(v)) for k, _, v in
                    (l.partition(":") for l in head.splitlines() if ":" in l))
        tsum = sum(int(l.partition(":")[2]) for l in threads.splitlines() if ":" in l)
        return vals["voluntary_ctxt_switches"], vals["nonvoluntary_ctxt_switches"], tsum

    # -- hot-plug --------------------------------------------------------------

    def add_chardev(self, cid, path):
        self.qmp.execute("chardev-add", id=cid, backend={
            "type": "socket",
            "data": {"addr": {"type": "unix", "data": {"path": path}},
                     "server": True, "wait": False}})

    def remove_chardev(self, cid):
        self.qmp.execute("chardev-remove", id=cid)

    def add_port(self, dev_id, chardev, name=PORT_NAME):
        self.qmp.execute("device_add", driver="virtserialport", bus="vser0.0",
                         chardev=chardev, id=dev_id, name=name)

    def del_port(self, dev_id, timeout=15):
        self.qmp.execute("device_del", id=dev_id)
        self.qmp.wait_event("DEVICE_DELETED", timeout,
                            match=lambda e: e.get("data", {}).get("device") == dev_id)

    def host(self, path=None, name="host"):
        return Host(path or self.port_path, name)


def _die_with_parent():
    """In the QEMU child: SIGKILL when the harness dies (a ctest timeout
    must not leave a VM running)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def median(xs):
    return statistics.median(xs)


# --------------------------------------------------------------------------
# Command line: selftest (the harness against the stand-in) and shell

def _selftest():
    with VM("selftest", agent="standin") as vm:
        log("guest kernel: %s" % vm.sh("uname -r").strip())
        for i in range(20):
            assert vm.sh("echo %d" % i).strip() == str(i)
        rc, out = vm.sh_rc("echo 'unbalanced")
        assert rc != 0, (rc, out)
        assert vm.sh("echo still here").strip() == "still here"
        pid = vm.guestd_pid()
        log("stand-in pid %d, links: %s" % (pid, vm.sh("ls -l /dev/virtio-ports/").strip()))
        h = vm.host().connect()
        hello = h.wait_event("hello", 10)
        log("hello: %s" % short(hello))
        r = h.request("ping")
        assert r.get("ok") is True and r.get("result") == {"pong": True}, r
        lat = []
        for i in range(5):
            h.close()
            time.sleep(0.3)
            h.connect()
            hello = h.wait_event("hello", 10)
            lat.append((hello["_t"] - h.t_connect) * 1000)
        log("stand-in attach latency: %s ms" % ", ".join("%.0f" % x for x in lat))
        h.close()
        v0 = vm.ctxt_switches(pid)
        time.sleep(5)
        v1 = vm.ctxt_switches(pid)
        log("stand-in ctxt switches over 5 s idle: %d (all threads %d)"
            % (v1[0] - v0[0], v1[2] - v0[2]))
        p2 = os.path.join(vm.dir, "p2.sock")
        vm.add_chardev("c2", p2)
        vm.add_port("vp2", "c2", name="org.guestd.test.2")
        time.sleep(0.5)
        out = vm.sh("ls /dev/virtio-ports/")
        assert "org.guestd.test.2" in out, out
        vm.del_port("vp2")
        vm.remove_chardev("c2")
        time.sleep(0.5)
        out = vm.sh("ls /dev/virtio-ports/")
        assert "org.guestd.test.2" not in out, out
    log("selftest passed")


def _shell():
    gbin = os.environ.get("GUESTD_BIN")
    args = sys.argv[2:] or ["--channel", "virtio-serial:" + PORT_DEV, "-c", "/dev/null",
                            "--log-level", "debug"]
    with VM("shell", guestd_bin=gbin, guestd_args=args) as vm:
        print("host port socket: %s\nQMP socket: %s\nagent log: %s\n"
              "type guest commands, EOF to stop" % (vm.port_path, vm.qmp_path, vm.agent_log))
        for line in sys.stdin:
            if line.strip():
                rc, out = vm.sh_rc(line.strip(), timeout=120)
                sys.stdout.write(out + "[status %d]\n" % rc)
                sys.stdout.flush()


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "selftest"
    if what == "selftest":
        _selftest()
    elif what == "shell":
        _shell()
    else:
        sys.exit("usage: vm.py selftest | shell [guestd args...]")
