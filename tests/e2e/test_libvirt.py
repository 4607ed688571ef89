#!/usr/bin/env python3
"""libvirt, the qemu-ga client nobody here wrote, against guestd (issue 10).

A private libvirtd (Debian's libvirt-daemon, libvirt-daemon-driver-qemu,
libvirt-clients) runs in a mount namespace of its own, so nothing of the
machine's libvirt (if any) is touched or seen: /etc/libvirt, /run/libvirt,
/var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt are bind-mounted
from a temporary directory, and so are copies of /etc/passwd and /etc/group
that have the libvirt-qemu user the QEMU driver looks up at start (QEMU
itself runs as root: qemu.conf says so). virtlogd starts, then libvirtd.

The domain is TCG (type='qemu'), boots the busybox initramfs of vm.py by
direct kernel boot (with a few more modules: virtio_blk and ext4 for a disk
to freeze, virtio_net for an interface to list, and an /etc/shadow for
chpasswd), has no <graphics>, a 32 MiB ext4 disk, a user-mode NIC, and two
virtio-serial channels: org.qemu.guest_agent.0, which libvirt owns, and
org.guestd.agent.0 on a unix socket this script holds. guestd runs with
both: guestd's protocol on its own port (hello, metrics every second) and
qemu-ga's on libvirt's (channel.qga_spec). No qemu-ga in the guest.

Checks, each as virsh runs it against qemu-ga:
  virsh qemu-agent-command DOM '{"execute":"guest-ping"}'
  virsh guestinfo DOM                     (os, hostname, timezone, users, fs, disks)
  virsh domifaddr DOM --source agent      (lo, eth0 with the domain's MAC)
  virsh domfsinfo DOM                     (the ext4 mount, on the domain's disk vda)
  virsh domtime DOM
  virsh set-user-password DOM root ...    (root's hash in /etc/shadow changes)
  virsh domfsfreeze / domfsthaw           (a write into the frozen fs waits until the
                                           thaw; commands outside qemu-ga's allow-list are
                                           refused while frozen; a freeze nobody thaws is
                                           thawed after commands.fsfreeze_timeout_ms)
  virsh reboot --mode agent               (the guest comes back: a new boot, a new hello)
  virsh shutdown --mode agent             (the domain ends: shut off)
while guestd's own stream keeps flowing on its port.

Environment: GUESTD_BIN, and those of vm.py. Exit status 0 when every check
passed; the only skip is a machine where libvirtd cannot be started at all
(no mount namespaces: it says so and exits 0, unless CI is set).
"""

import base64
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import report as R  # noqa: E402
import vm as V  # noqa: E402

NS_MARK = "GUESTD_LIBVIRT_NS"
QGA_PORT = "org.qemu.guest_agent.0"
MAC = "52:54:00:6a:0e:10"
GUEST_IP = "10.0.2.15"
EXTRA_MODULES = ["failover", "net_failover", "virtio_net", "virtio_blk",
                 "crc16", "mbcache", "jbd2", "crc32c_generic", "ext4"]
IN_CI = os.environ.get("CI", "") not in ("", "false", "0")


def log(msg):
    V.log(msg)


# --------------------------------------------------------------------------
# The guest: vm.py's initramfs, and an overlay archive after it

def build_initramfs(gbin, out_path):
    """vm.py's cached initramfs for gbin, followed by a second (gzip cpio)
    archive that the kernel unpacks over it: more modules, an /init that
    loads them, and /etc/shadow."""
    vmlinuz, base = V.build_initramfs(gbin)
    _, moddir, _ = V.fetch_kernel()
    libdirs = []
    for lib in V._ldd(gbin):
        d = os.path.dirname(lib)
        if d not in libdirs:
            libdirs.append(d)
    mods = V.MODULES + EXTRA_MODULES
    init = V.INIT_SCRIPT.replace("@MODULES@", " ".join(mods)) \
                        .replace("@LIBPATH@", ":".join(libdirs) or "/lib")
    c = V.Cpio()
    c.dir("lib/modules/e2e")
    for m in EXTRA_MODULES:
        data = V._find_module(moddir, m)
        if data is not None:
            c.file("lib/modules/e2e/%s.ko" % m, data)
    c.file("init", init.encode(), 0o755)
    c.file("etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o600)
    c.file("usr/sbin/chpasswd", CHPASSWD.encode(), 0o755)
    c.dir("mnt/data")
    with open(base, "rb") as f:
        data = f.read()
    with open(out_path, "wb") as f:
        f.write(data)
        f.write(gzip.compress(c.finish(), compresslevel=1, mtime=0))
    return vmlinuz


# Debian's busybox-static has no chpasswd, which guest-set-user-password
# runs (as qemu-ga does; every distribution's passwd package has it). This
# stand-in does what it does with busybox's mkpasswd: "user:password" lines
# on stdin, -e when the password is already crypted.
CHPASSWD = r"""#!/bin/sh
crypted=0
[ "$1" = "-e" ] && crypted=1
while IFS= read -r line; do
    user=${line%%:*}
    pass=${line#*:}
    grep -q "^$user:" /etc/shadow || exit 1
    if [ $crypted = 1 ]; then hash=$pass; else hash=$(printf '%s' "$pass" | mkpasswd -m sha512 -P 0) || exit 1; fi
    sed -i "s|^$user:[^:]*:|$user:$hash:|" /etc/shadow || exit 1
done
"""


def agent_args(state_dir="/var/lib/guestd"):
    return ["--channel", "virtio-serial:/dev/virtio-ports/" + V.PORT_NAME,
            "--set", "channel.qga_spec=virtio-serial:/dev/virtio-ports/" + QGA_PORT,
            "-c", "/dev/null", "--log-level", "debug",
            "--set", "metrics.interval_ms=1000", "--set", "metrics.log_path=none",
            "--set", "agent.state_dir=" + state_dir,
            "--set", "commands.poweroff_argv=poweroff -f",
            "--set", "commands.reboot_argv=reboot -f"]


# --------------------------------------------------------------------------
# A private libvirtd

QEMU_CONF = """# guestd's libvirt test: QEMU as root, nothing relabelled or confined.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
"""


def _pdeathsig():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)
    except Exception:
        pass


class Libvirt:
    DIRS = ["/etc/libvirt", "/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt",
            "/var/log/libvirt"]

    def __init__(self, work):
        self.work = work
        self.root = os.path.join(work, "libvirt")
        self.procs = []
        self.log_path = os.path.join(self.root, "libvirtd.log")

    def _bind(self, src, dst):
        subprocess.run(["mount", "--bind", src, dst], check=True)

    def start(self, timeout=60):
        for d in self.DIRS:
            priv = os.path.join(self.root, d.strip("/").replace("/", "_"))
            os.makedirs(priv, exist_ok=True)
            os.makedirs(d, exist_ok=True)
            self._bind(priv, d)
        self.bind_users()
        with open("/etc/libvirt/qemu.conf", "w") as f:
            f.write(QEMU_CONF)
        with open("/etc/libvirt/libvirtd.conf", "w") as f:
            f.write('log_outputs = "3:file:%s"\n' % self.log_path)
        with open("/etc/libvirt/virtlogd.conf", "w") as f:
            f.write('log_outputs = "3:file:%s"\n' % os.path.join(self.root, "virtlogd.log"))
        for argv, sock in ((["/usr/sbin/virtlogd", "-f", "/etc/libvirt/virtlogd.conf"],
                            "/run/libvirt/virtlogd-sock"),
                           (["/usr/sbin/libvirtd", "-f", "/etc/libvirt/libvirtd.conf"],
                            "/run/libvirt/libvirt-sock")):
            err = open(os.path.join(self.root, os.path.basename(argv[0]) + ".stderr"), "wb")
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                 preexec_fn=_pdeathsig)
            self.procs.append(p)
            deadline = time.monotonic() + timeout
            while not os.path.exists(sock):
                if p.poll() is not None or time.monotonic() > deadline:
                    raise V.E2EError("%s did not start (status %s): %s"
                                     % (argv[0], p.poll(), self.tail()))
                time.sleep(0.05)
        deadline = time.monotonic() + timeout
        while True:
            rc, out = self.virsh("version", check=False, timeout=30)
            if rc == 0:
                log("libvirt: %s" % " / ".join(l.strip() for l in out.splitlines() if l.strip()))
                return
            if time.monotonic() > deadline:
                raise V.E2EError("libvirtd does not answer: %s\n%s" % (out, self.tail()))
            time.sleep(0.2)

    def bind_users(self):
        """Copies of /etc/passwd and /etc/group with the libvirt-qemu user,
        bind-mounted over them. Again before each libvirtd start: another
        process that replaces /etc/passwd (useradd) detaches the mount."""
        for name in ("passwd", "group"):
            copy = os.path.join(self.root, name)
            with open("/etc/" + name) as f:
                text = f.read()
            if not re.search(r"^libvirt-qemu:", text, re.M):
                if not text.endswith("\n"):
                    text += "\n"
                text += ("libvirt-qemu:x:64055:64055:libvirt:/var/lib/libvirt:/usr/sbin/nologin\n"
                         if name == "passwd" else "libvirt-qemu:x:64055:\n")
            with open(copy, "w") as f:
                f.write(text)
            self._bind(copy, "/etc/" + name)

    def tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no libvirtd log)"

    def virsh(self, *args, check=True, timeout=120):
        argv = ["virsh", "-c", "qemu:///system"] + list(args)
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise V.E2EError("virsh %s: no answer within %ss" % (" ".join(args), timeout))
        out = r.stdout.decode(errors="replace")
        if check and r.returncode != 0:
            raise V.E2EError("virsh %s failed (%d): %s" % (" ".join(args), r.returncode, out.strip()))
        return r.returncode, out

    def stop(self):
        # Domains first: libvirtd's QEMU children are not ours to outlive it.
        rc, out = self.virsh("list", "--name", check=False, timeout=30)
        for name in out.split() if rc == 0 else []:
            self.virsh("destroy", name, check=False, timeout=30)
        for pidfile in _glob("/run/libvirt/qemu", ".pid"):
            try:
                with open(pidfile) as f:
                    os.kill(int(f.read().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def _glob(d, suffix):
    try:
        return [os.path.join(d, f) for f in os.listdir(d) if f.endswith(suffix)]
    except OSError:
        return []


# --------------------------------------------------------------------------
# The domain

DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{qemu}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'>
      <mac address='{mac}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='{console}'/>
      <target port='0'/>
    </serial>
    <serial type='file'>
      <source path='{agent_log}'/>
      <target port='1'/>
    </serial>
    <channel type='unix'>
      <target type='virtio' name='{qga_port}'/>
    </channel>
    <channel type='unix'>
      <source mode='bind' path='{guestd_sock}'/>
      <target type='virtio' name='{guestd_port}'/>
    </channel>
    <memballoon model='none'/>
  </devices>
</domain>
"""


class Domain:
    def __init__(self, lv, work, gbin, name=None):
        self.lv = lv
        self.work = work
        self.name = name or "guestd-e2e-%d" % os.getpid()
        self.console = os.path.join(work, "console.log")
        self.agent_log = os.path.join(work, "agent.log")
        self.guestd_sock = os.path.join(work, "guestd.sock")
        self.initrd = os.path.join(work, "initrd.gz")
        self.disk = os.path.join(work, "data.img")
        self.kernel = build_initramfs(gbin, self.initrd)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "guestd-e2e", self.disk, "32M"], check=True,
                       stdout=subprocess.DEVNULL)
        args = "".join(a + "\n" for a in agent_args()).encode()
        cmdline = "console=ttyS0 panic=-1 e2e.agent=guestd quiet guestd.args=" + \
                  base64.b64encode(args).decode()
        xml = DOMAIN_XML.format(name=self.name, kernel=self.kernel, initrd=self.initrd,
                                cmdline=cmdline, qemu=shutil.which(V.QEMU) or V.QEMU,
                                disk=self.disk, mac=MAC, console=self.console,
                                agent_log=self.agent_log, qga_port=QGA_PORT,
                                guestd_sock=self.guestd_sock, guestd_port=V.PORT_NAME)
        self.xml_path = os.path.join(work, "domain.xml")
        with open(self.xml_path, "w") as f:
            f.write(xml)

    def virsh(self, *args, **kw):
        return self.lv.virsh(*args, **kw)

    def console_text(self):
        try:
            with open(self.console, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_console(self, pattern, count, timeout):
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.console_text())) < count:
            if time.monotonic() > deadline:
                raise V.E2EError("console: %d x %r not seen within %ss" % (count, pattern, timeout))
            time.sleep(0.2)

    def agent(self, request, check=True, timeout=60):
        """virsh qemu-agent-command: the reply as JSON."""
        rc, out = self.virsh("qemu-agent-command", self.name, json.dumps(request),
                             check=check, timeout=timeout)
        return rc, (json.loads(out) if rc == 0 else out.strip())

    def wait_agent(self, timeout=90):
        deadline = time.monotonic() + timeout
        while True:
            rc, out = self.virsh("qemu-agent-command", self.name, '{"execute":"guest-ping"}',
                                 "--timeout", "5", check=False, timeout=30)
            if rc == 0:
                return json.loads(out)
            if time.monotonic() > deadline:
                raise V.E2EError("the guest agent did not answer libvirt within %ss: %s"
                                 % (timeout, out.strip()))
            time.sleep(1)

    def dump_logs(self):
        for path, what in ((self.agent_log, "guest agent log"), (self.console, "guest console")):
            try:
                with open(path, "rb") as f:
                    rows = f.read().decode(errors="replace").replace("\r", "").splitlines()[-50:]
            except OSError:
                continue
            print("----- %s (%s) -----" % (what, path))
            for r in rows:
                if not re.match(r"@@\d+-[BE]", r):
                    print("  | " + r)
        print("----- libvirtd log -----\n" + self.lv.tail())
        sys.stdout.flush()


def native(host, cmd, args=None, timeout=30):
    r = host.request(cmd, args, timeout=timeout)
    assert r.get("ok"), "%s: %s" % (cmd, r)
    return r["result"]


def guest_sh(host, script, timeout=30):
    """A shell command in the guest through guestd's own exec."""
    r = native(host, "exec", {"argv": ["sh", "-c", script], "timeout_ms": timeout * 1000},
               timeout=timeout + 10)
    assert r["exit_code"] == 0, "guest: %r: %s %s" % (script, r["stdout"], r["stderr"])
    return r["stdout"]


def table(out):
    """virsh's `key : value` lines as a dict."""
    d = {}
    for line in out.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            d[k.strip()] = v.strip()
    return d


def run(gbin, work):
    lv = Libvirt(work)
    t0 = time.monotonic()
    lv.start()
    R.figure("private libvirtd up", "%.1f s" % (time.monotonic() - t0))
    dom = Domain(lv, work, gbin)
    st = {}
    try:
        t0 = time.monotonic()
        dom.virsh("create", dom.xml_path)
        dom.wait_console(r"@@E2E-READY", 1, 120)
        R.figure("domain created to guest ready", "%.1f s" % (time.monotonic() - t0))
        host = V.Host(dom.guestd_sock, "guestd port").connect(timeout=30)
        st["host"] = host

        def ping():
            r = dom.wait_agent()
            assert r == {"return": {}}, r
            R.figure("domain created to first guest-ping through libvirt",
                     "%.1f s" % (time.monotonic() - t0))
            hello = host.wait_event("hello", 30)
            assert hello["data"]["hostname"] == "guestd-e2e", hello
            st["boot_id"] = hello["data"]["boot_id"]
            host.wait_event("metrics", 10)  # guestd's own stream, beside libvirt's agent
            # Set up what the later checks look at: lo and eth0 up, the disk mounted.
            guest_sh(host, "ip link set lo up && ip link set eth0 up && "
                           "ip addr add %s/24 dev eth0 && mount -t ext4 /dev/vda /mnt/data"
                     % GUEST_IP)
        if not R.check("virsh qemu-agent-command guest-ping; guestd's own port at the same time", ping):
            return

        def guestinfo():
            rc, out = dom.virsh("guestinfo", dom.name)
            info = table(out)
            log("guestinfo:\n" + out)
            want = {"hostname": "guestd-e2e", "os.id": "busybox", "os.name": "guestd e2e initramfs",
                    "os.machine": "x86_64", "timezone.name": "UTC", "timezone.offset": "0",
                    "user.count": "0", "fs.count": "1", "fs.0.mountpoint": "/mnt/data",
                    "fs.0.fstype": "ext4", "fs.0.name": "vda"}
            for k, v in want.items():
                assert info.get(k) == v, "guestinfo %s = %r, expected %r" % (k, info.get(k), v)
            assert int(info["fs.0.total-bytes"]) > 20 * 1024 * 1024, info
            assert info.get("fs.0.disk.0.alias") == "vda", info
        R.check("virsh guestinfo", guestinfo)

        def domifaddr():
            rc, out = dom.virsh("domifaddr", dom.name, "--source", "agent")
            log("domifaddr:\n" + out)
            rows = [l.split() for l in out.splitlines() if l.strip() and not l.startswith(("-", " Name"))]
            rows = [r for r in rows if r and r[0] != "Name"]
            eth = [r for r in rows if r[0] == "eth0"]
            assert eth and eth[0][1] == MAC, "eth0 with MAC %s: %s" % (MAC, rows)
            assert any(GUEST_IP + "/24" in r for r in rows), rows
            assert any("127.0.0.1/8" in r for r in rows), rows
        R.check("virsh domifaddr --source agent", domifaddr)

        def domfsinfo():
            rc, out = dom.virsh("domfsinfo", dom.name)
            log("domfsinfo:\n" + out)
            row = [l.split() for l in out.splitlines() if "/mnt/data" in l]
            assert row, out
            # Mountpoint, Name, Type, Target: libvirt found the domain's own disk.
            assert row[0][:4] == ["/mnt/data", "vda", "ext4", "vda"], row
        R.check("virsh domfsinfo", domfsinfo)

        def domtime():
            rc, out = dom.virsh("domtime", dom.name)
            m = re.search(r"Time:\s*(\d+)", out)
            assert m, out
            skew = abs(int(m.group(1)) - time.time())
            R.figure("domtime: guest clock - host clock", "%.0f s" % skew)
            assert skew < 120, "guest time %s is %.0f s off" % (m.group(1), skew)
        R.check("virsh domtime", domtime)

        def password():
            before = guest_sh(host, "grep ^root: /etc/shadow")
            dom.virsh("set-user-password", dom.name, "root", "guestd-e2e-secret")
            after = guest_sh(host, "grep ^root: /etc/shadow")
            assert before != after and after.split(":")[1].startswith("$"), (before, after)
        R.check("virsh set-user-password", password)

        def freeze():
            rc, out = dom.virsh("domfsfreeze", dom.name)
            assert re.search(r"Froze 1 filesystem", out), out
            rc, r = dom.agent({"execute": "guest-fsfreeze-status"})
            assert r == {"return": "frozen"}, r
            # Outside qemu-ga's allow-list: refused while frozen.
            rc, r = dom.agent({"execute": "guest-get-time"}, check=False)
            assert rc != 0 and "frozen state" in r, r
            # A write into the frozen filesystem waits for the thaw.
            wid = "frozen-write"
            host.send({"id": wid, "cmd": "exec",
                       "args": {"argv": ["sh", "-c", "echo x > /mnt/data/f && sync && date +%s"],
                                "timeout_ms": 120000}})
            try:
                early = host.wait_for(lambda m: m.get("id") == wid, 3, "the write")
                raise AssertionError("a write finished while frozen: %s" % early)
            except V.E2EError:
                pass
            t_thaw = time.time()
            rc, out = dom.virsh("domfsthaw", dom.name)
            assert re.search(r"Thawed 1 filesystem", out), out
            done = host.wait_for(lambda m: m.get("id") == wid, 30, "the write after the thaw")
            assert done.get("ok") and done["result"]["exit_code"] == 0, done
            R.figure("write into a frozen fs: finished after the thaw", "%.1f s after domfsthaw"
                     % (time.time() - t_thaw))
            rc, r = dom.agent({"execute": "guest-fsfreeze-status"})
            assert r == {"return": "thawed"}, r
        R.check("virsh domfsfreeze / domfsthaw (a real FIFREEZE)", freeze)

        def freeze_timeout():
            native(host, "config.set", {"key": "commands.fsfreeze_timeout_ms", "value": 2000})
            rc, out = dom.virsh("domfsfreeze", dom.name)
            assert re.search(r"Froze 1 filesystem", out), out
            t = time.monotonic()
            while True:
                rc, r = dom.agent({"execute": "guest-fsfreeze-status"})
                if r == {"return": "thawed"}:
                    break
                assert time.monotonic() - t < 20, "still frozen after 20 s: %s" % r
                time.sleep(0.5)
            R.figure("freeze left alone: thawed by the agent after", "%.1f s (limit 2 s)"
                     % (time.monotonic() - t))
            guest_sh(host, "echo y > /mnt/data/g && sync")
        R.check("a freeze nobody thaws is thawed at commands.fsfreeze_timeout_ms", freeze_timeout)

        def reboot():
            host.pending = []
            rc, out = dom.virsh("reboot", dom.name, "--mode", "agent")
            t = time.monotonic()
            dom.wait_console(r"@@E2E-READY", 2, 120)
            R.figure("reboot --mode agent to guest ready again", "%.1f s" % (time.monotonic() - t))
            hello = host.wait_event("hello", 60)
            assert hello["data"]["boot_id"] != st["boot_id"], "the same boot: %s" % hello
            r = dom.wait_agent()
            assert r == {"return": {}}, r
        R.check("virsh reboot --mode agent", reboot)

        def shutdown():
            dom.virsh("shutdown", dom.name, "--mode", "agent")
            t = time.monotonic()
            while True:
                rc, out = dom.virsh("domstate", dom.name, check=False, timeout=30)
                if rc != 0 or "shut off" in out:  # a transient domain is gone once off
                    break
                assert time.monotonic() - t < 60, "still %s after 60 s" % out.strip()
                time.sleep(0.5)
            R.figure("shutdown --mode agent to domain off", "%.1f s" % (time.monotonic() - t))
        R.check("virsh shutdown --mode agent", shutdown)
    finally:
        if R.any_failed():
            dom.dump_logs()
        if "host" in st:
            st["host"].close()
        lv.stop()


def main(run_fn=run, suite="test_libvirt", script=__file__):
    """Checks what a private libvirtd needs, re-runs script in a mount
    namespace of its own, and there runs run_fn(gbin, work)."""
    gbin = R.guestd_bin()
    if not gbin or not os.access(gbin, os.X_OK):
        print("FAIL: no guestd binary (set GUESTD_BIN)")
        return 1
    if os.geteuid() != 0:
        print("FAIL: the libvirt test needs root (a libvirtd of its own)")
        return 1
    missing = [p for p in ("/usr/sbin/libvirtd", "/usr/sbin/virtlogd") if not os.path.exists(p)]
    missing += [p for p in ("virsh", "unshare", V.QEMU, "mkfs.ext4") if not shutil.which(p)]
    if missing:
        print("FAIL: missing %s (packaging/install-deps.sh installs them)" % ", ".join(missing))
        return 1
    if os.environ.get(NS_MARK) != "1":
        # Everything below runs in a mount namespace of its own.
        probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                               stderr=subprocess.PIPE)
        if probe.returncode != 0:
            msg = "cannot make a mount namespace for a private libvirtd: %s" \
                  % probe.stderr.decode(errors="replace").strip()
            if IN_CI:
                print("FAIL: " + msg)
                return 1
            print("SKIP: " + msg)
            return 0
        env = dict(os.environ, **{NS_MARK: "1", "GUESTD_BIN": gbin})
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private",
                               sys.executable, os.path.abspath(script)] + sys.argv[1:], env)
    work = tempfile.mkdtemp(prefix="guestd-lv-")
    try:
        run_fn(gbin, work)
    except Exception as e:
        R.fail("setup", str(e))
        if not isinstance(e, V.E2EError):
            traceback.print_exc()
    status = R.summary(suite)
    if status or os.environ.get("GUESTD_E2E_KEEP"):
        print("work directory kept: %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return status

if __name__ == "__main__":
    sys.exit(main())
