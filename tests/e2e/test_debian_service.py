#!/usr/bin/env python3
"""guestd as a real service in a Debian 12 guest with systemd (issue 7).

The .deb is made from the build tree (cpack), installed by dpkg into a
debootstrap'ed Debian 12 root file system (chroot, systemd not running), and
the guest boots under QEMU TCG with the port org.guestd.agent.0 on a host
socket (debian_rootfs.py). Nothing is typed into the guest: every check goes
through the agent, as a host would.

  1. hello arrives: udev and systemd started the agent because the port
     exists (the unit is static, pulled in by the port's device unit)
  2. service.status guestd is active; system.info names Debian 12
  3. systemd-analyze verify and security on the unit (exposure score)
  4. exec, file.* and service.* work under the unit's sandbox: writes to
     /etc and /usr, a mount seen by PID 1, a unit started and stopped;
     systemctl reload guestd re-reads the configuration (SIGHUP)
  5. the watchdog keeps a live agent: no restart over 40 s (> WatchdogSec)
  6. kill -9 of the agent: systemd restarts it, a new hello, a new started_at
  7. the watchdog: a SIGSTOPped agent is killed and restarted by systemd
  8. power.reboot: the answer arrives, the guest reboots, hello again
  9. dpkg -i of a newer version with systemd running: the agent restarts
 10. dpkg -r, dpkg -P, then packaging/install.sh (the installer for guests
     without dpkg): clean at each step, the agent back after install.sh
 11. install.sh --uninstall --purge leaves what dpkg -P leaves; dpkg -i
     twice (idempotent scripts) brings the agent back
 12. the hardened profile (guestd.conf) with its systemd drop-in: the agent
     starts, observes, refuses exec (exposure score again)

Package changes run in a transient unit (systemd-run), outside the agent's
cgroup, since stopping guestd.service stops everything in it.

Environment: GUESTD_BUILD_DIR (the build tree; CPackConfig.cmake in it),
GUESTD_SOURCE_DIR, GUESTD_E2E_KEEP=1 (keep the VM's directory), and those
of vm.py and debian_rootfs.py (GUESTD_E2E_CACHE, GUESTD_E2E_MIRROR).
Exit status 0 when every check passed.
"""

import base64
import os
import re
import shutil
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report as R  # noqa: E402
import vm as V  # noqa: E402
import debian_rootfs as D  # noqa: E402

SOURCE_DIR = os.environ.get("GUESTD_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("GUESTD_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
DEVICE_UNIT = r"dev-virtio\x2dports-org.guestd.agent.0.device"
BOOT_TIMEOUT = 240       # QEMU start to the first hello
RESTART_TIMEOUT = 30     # a restart (RestartSec=2s) to the new hello
WATCHDOG_SEC = 30        # packaging/guestd.service


class Guest:
    """The host side: one connection to the port, kept across agent restarts
    and guest reboots (reconnecting if QEMU drops it)."""

    def __init__(self, vm):
        self.vm = vm
        self.h = V.Host(vm.port_path, "host")
        self.h.connect(timeout=30)
        self.hello = None          # the last hello seen
        self.hello_t = None

    def _wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise V.E2EError("no %s within %ss" % (what, timeout))
            try:
                return self.h.wait_for(pred, left, what)
            except V.E2EError as e:
                if "connection closed" not in str(e):
                    raise
                if not self.vm.running():
                    raise V.E2EError("QEMU exited while waiting for %s" % what)
                V.log("host: the port's socket closed; reconnecting")
                self.h.close()
                time.sleep(0.5)
                self.h.connect(timeout=10)

    def new_hello(self, timeout, differs=None):
        """The next hello whose data[differs] is not the last hello's."""
        last = self.hello

        def pred(m):
            if m.get("event") != "hello":
                return False
            if differs and last is not None:
                return m["data"].get(differs) != last["data"].get(differs)
            return True
        m = self._wait(pred, timeout, "hello" + (" with a new %s" % differs if differs else ""))
        self.hello, self.hello_t = m, m["_t"]
        return m

    def settle(self):
        """Makes the running agent the last one seen: asks it for info, and
        drops the hellos that came before the answer (the agent sends its
        hello before any answer, so its own is among them). A later
        new_hello(differs="started_at") then waits for a restart after now."""
        r = self.ok("info")
        hellos = [m for m in self.h.pending if m.get("event") == "hello"]
        self.h.pending = [m for m in self.h.pending if m.get("event") != "hello"]
        mine = [m for m in hellos if m["data"].get("started_at") == r["started_at"]]
        if mine:
            self.hello, self.hello_t = mine[-1], mine[-1]["_t"]
        elif self.hello is None or self.hello["data"].get("started_at") != r["started_at"]:
            data = dict(self.hello["data"]) if self.hello else {}
            data["started_at"] = r["started_at"]
            self.hello, self.hello_t = {"event": "hello", "data": data}, time.monotonic()

    def request(self, cmd, args=None, timeout=30):
        rid = "r%d" % self.h.next_id
        self.h.next_id += 1
        msg = {"id": rid, "cmd": cmd}
        if args is not None:
            msg["args"] = args
        self.h.send(msg)
        return self._wait(lambda m: "event" not in m and m.get("id") == rid, timeout,
                          "response to %s" % cmd)

    def ok(self, cmd, args=None, timeout=30):
        r = self.request(cmd, args, timeout)
        assert r.get("ok") is True, "%s %s: %s" % (cmd, args or "", V.short(r, 600))
        return r["result"]

    def send_only(self, cmd, args=None):
        """A request whose answer may never come (the agent is killed)."""
        self.h.send({"id": "x%d" % self.h.next_id, "cmd": cmd, "args": args or {}})
        self.h.next_id += 1

    def sh(self, script, timeout=60):
        """Runs sh -c script through exec; returns (exit code, stdout+stderr)."""
        res = self.ok("exec", {"argv": ["sh", "-c", script], "timeout_ms": timeout * 1000},
                      timeout + 15)
        return res.get("exit_code"), res.get("stdout", "") + res.get("stderr", "")

    def sh_ok(self, script, timeout=60):
        rc, out = self.sh(script, timeout)
        assert rc == 0, "guest: %r exited %r: %s" % (script, rc, out.strip()[-1500:])
        return out

    def show(self, unit, *props):
        out = self.sh_ok("systemctl show %s %s" % (" ".join("-p " + p for p in props),
                                                    "'" + unit + "'"))
        return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)

    def write(self, path, text, mode="0644"):
        self.ok("file.write", {"path": path, "mode": mode,
                               "data_b64": base64.b64encode(text.encode()).decode()})

    def read(self, path):
        r = self.ok("file.read", {"path": path})
        return base64.b64decode(r["data_b64"]).decode(errors="replace")


def check(name, fn, vm=None):
    """One check; on failure, the guest journal written while it ran."""
    return R.check(name, fn, log=vm.journal_text if vm else None,
                   log_name="guest journal", tail=50)


def unit_environment():
    """The assignments of packaging/guestd.service's Environment= lines."""
    with open(os.path.join(SOURCE_DIR, "packaging", "guestd.service")) as f:
        lines = [l.strip() for l in f if l.startswith("Environment=")]
    assert lines, "packaging/guestd.service has no Environment= line"
    return [a for l in lines for a in l[len("Environment="):].split()]


def exposure(text):
    m = re.search(r"Overall exposure level for guestd\.service:\s*([0-9.]+)\s+(\S+)", text)
    assert m, "no exposure level in: %s" % text.strip()[-500:]
    return float(m.group(1)), m.group(2)


# The state of the package on the guest, for the lifecycle checks: what
# exists, what systemd and dpkg say, and every path named *guestd* left on
# the root file system (outside /root, where the test keeps its .debs).
STATE_FN = r'''
state() {
    echo "== $1"
    for f in /usr/sbin/guestd /lib/systemd/system/guestd.service \
             /lib/udev/rules.d/60-guestd.rules /etc/guestd/guestd.conf \
             /var/lib/guestd /var/log/guestd; do
        if [ -e "$f" ]; then echo "present $f"; else echo "absent $f"; fi
    done
    echo "load=$(systemctl show -p LoadState --value guestd.service)"
    echo "active=$(systemctl is-active guestd.service)"
    # systemd's own 99-systemd.rules tags every vport*, so the port's device
    # unit stays; what the package adds is udev's SYSTEMD_WANTS.
    echo "device=$(systemctl show -p ActiveState --value 'dev-virtio\x2dports-org.guestd.agent.0.device')"
    echo "wants=$(udevadm info /dev/virtio-ports/org.guestd.agent.0 | grep -c 'SYSTEMD_WANTS=.*guestd')"
    echo "dpkg=$(dpkg-query -W -f '${db:Status-Abbrev}' guestd 2>/dev/null)"
    echo "leftover=$(find / -xdev \( -path /root -o -path /proc -o -path /sys -o -path /dev -o -path /run \) -prune \
        -o -name '*guestd*' -print | sort | tr '\n' ' ')"
}
'''


def parse_states(log):
    """{"label": {"present": set, "absent": set, key: value...}} from the
    lifecycle log, plus "rc <what>" lines under "rc"."""
    states = {"rc": {}}
    cur = None
    for line in log.splitlines():
        if line.startswith("== "):
            cur = states.setdefault(line[3:].strip(), {"present": set(), "absent": set()})
        elif line.startswith("rc ") and "=" in line:
            k, _, v = line[3:].partition("=")
            states["rc"][k.strip()] = v.strip()
        elif cur is not None and line.startswith(("present ", "absent ")):
            kind, _, path = line.partition(" ")
            cur[kind].add(path)
        elif cur is not None and "=" in line:
            k, _, v = line.partition("=")
            cur[k] = v.strip()
    return states


def no_complaints(log):
    """No warning or error from dpkg, the maintainer scripts or install.sh
    (the state() lines are the test's own)."""
    own = ("== ", "rc ", "present ", "absent ", "load=", "active=", "device=", "wants=",
           "dpkg=", "leftover=")
    bad = [l for l in log.splitlines()
           if not l.startswith(own) and re.search(r"warn|error|fail|denied", l, re.I)]
    assert not bad, "complaints: %s" % bad


def run_transient(g, unit, script, log_path, timeout):
    """Runs script in a transient unit outside guestd's cgroup; returns once
    it was started (the agent may go away while it runs)."""
    g.write("/root/%s.sh" % unit, "#!/bin/sh\nexec >%s 2>&1\n%s\n%s\necho '== done'\n"
            % (log_path, STATE_FN, script), "0755")
    g.sh_ok("systemd-run --quiet --collect --no-block --unit=%s /root/%s.sh" % (unit, unit))


def wait_log_done(g, path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = g.read(path)
            if "== done" in text:
                return text
        except AssertionError:
            pass
        if time.monotonic() > deadline:
            raise V.E2EError("%s did not finish within %ss" % (path, timeout))
        time.sleep(1)


def main():
    if os.geteuid() != 0:
        print("FAIL: the Debian guest test needs root (debootstrap, chroot)")
        return 1
    work = tempfile.mkdtemp(prefix="guestd-deb-")
    keep = os.environ.get("GUESTD_E2E_KEEP", "") not in ("", "0")
    vm = None
    try:
        t0 = time.monotonic()
        deb = D.build_deb(BUILD_DIR, work)
        version = D.deb_field(deb, "Version")
        next_deb = D.repack_deb(deb, version + "+e2e1", work)
        R.figure("the .deb", "%s, %d bytes, Depends: %s"
                 % (os.path.basename(deb), os.path.getsize(deb), D.deb_field(deb, "Depends")))
        st = {}

        def image():
            img, kver, out = D.make_image(work, deb, {
                "/root/guestd.deb": deb,
                "/root/guestd-next.deb": next_deb,
                "/root/install.sh": os.path.join(SOURCE_DIR, "packaging", "install.sh")})
            st["img"] = img
            V.log("dpkg -i in the chroot said:\n" + out)
            assert "Setting up guestd (%s)" % version in out, out
            bad = [l for l in out.splitlines() if re.search(r"warning|error|fail", l, re.I)]
            assert not bad, "dpkg -i in the chroot: %s" % bad
        if not check("image: dpkg -i in a chroot (systemd not running) installs files only", image):
            return 1
        R.figure("package and image ready (cpack, rootfs, dpkg, mkfs)",
                 "%.0f s" % (time.monotonic() - t0))

        vm = D.DebianVM("debian", st["img"], work)
        vm.start()
        prog = D.Progress(vm, lambda m: V.log("boot: " + m))
        g = Guest(vm)

        def first_hello():
            deadline = time.monotonic() + BOOT_TIMEOUT
            while True:
                prog.poll()
                try:
                    m = g.new_hello(2)
                    break
                except V.E2EError:
                    if time.monotonic() > deadline or not vm.running():
                        raise V.E2EError("no hello within %d s of starting QEMU" % BOOT_TIMEOUT)
            prog.poll()
            R.figure("QEMU start to hello (TCG)", "%.1f s" % vm.elapsed())
            d = m["data"]
            assert d.get("agent") == "guestd", d
            assert d.get("version") == version.split("-")[0], \
                "hello version %r, package %r" % (d.get("version"), version)
            deadline = time.monotonic() + 30
            while True:   # the hello may come before READY=1
                props = g.show("guestd.service", "UnitFileState", "WantedBy", "BindsTo",
                               "ActiveState", "NRestarts")
                if props.get("ActiveState") != "activating" or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            V.log("guestd.service: %s" % props)
            assert props.get("UnitFileState") == "static", props
            assert props.get("ActiveState") == "active", props
            assert ".device" in props.get("WantedBy", ""), \
                "guestd.service is not wanted by a device unit: %s" % props
            assert DEVICE_UNIT in props.get("BindsTo", "").replace("\\\\", "\\"), props
            dev = g.show(DEVICE_UNIT, "ActiveState", "SysFSPath")
            assert dev.get("ActiveState") == "active", dev
            st["hello0"] = m
        if not check("hello: udev and systemd started the agent because the port exists",
                     first_hello, vm):
            return 1

        def status_info():
            s = g.ok("service.status", {"name": "guestd"})
            assert s.get("active") == "active" and s.get("sub") == "running", s
            assert s.get("enabled") == "static", s
            assert isinstance(s.get("main_pid"), int) and s["main_pid"] > 1, s
            info = g.ok("system.info")
            os_ = info.get("os", {})
            V.log("system.info os: %s, kernel %s" % (os_, info.get("kernel", {}).get("release")))
            assert os_.get("id") == "debian", os_
            assert os_.get("version_id") == "12", os_
            assert info.get("hostname") == "guestd-debian", info.get("hostname")
            # The unit's Environment= (glibc's cache bound) reaches the agent,
            # and not the commands it runs for the host.
            env = g.sh_ok("tr '\\0' '\\n' </proc/%d/environ" % s["main_pid"]).splitlines()
            for want in unit_environment():
                assert want in env, "%s not in the agent's environment: %s" % (want, env)
            child = g.sh_ok("env").splitlines()
            inherited = [l for l in child if l in unit_environment()]
            assert not inherited, "exec's child inherited %s" % inherited
        check("service.status guestd is active; system.info names Debian 12; the unit's "
              "Environment= reaches the agent, not exec", status_info, vm)

        def analyze():
            rc, out = g.sh("systemd-analyze verify --man=no /lib/systemd/system/guestd.service", 150)
            assert rc == 0, "systemd-analyze verify: status %r: %s" % (rc, out)
            noise = [l for l in out.splitlines() if "guestd" in l]
            assert not noise, "systemd-analyze verify: %s" % noise
            rc, out = g.sh("systemd-analyze security --no-pager guestd.service", 150)
            score, word = exposure(out)
            st["exposure"] = (score, word)
            R.figure("systemd-analyze security guestd (as shipped)", "%.1f %s" % (score, word))
        check("systemd-analyze verify and security on the unit", analyze, vm)

        def sandbox():
            st["mounts"] = sorted(f.get("mount") for f in g.ok("metrics.get").get("filesystems", []))
            g.write("/etc/e2e-file.txt", "written by file.write\n", "0640")
            assert g.read("/etc/e2e-file.txt") == "written by file.write\n"
            s = g.ok("file.stat", {"path": "/etc/e2e-file.txt"})
            assert s.get("mode") == "0640" and s.get("type") == "file", s
            out = g.sh_ok("echo x >/usr/local/e2e-exec && rm /usr/local/e2e-exec && "
                          "mount -t tmpfs e2e-tmpfs /mnt && "
                          "grep -c e2e-tmpfs /proc/1/mountinfo; umount /mnt; rm /etc/e2e-file.txt")
            assert out.strip() == "1", "a mount made by exec is not seen by PID 1: %r" % out
            g.write("/etc/systemd/system/e2e-sleeper.service",
                    "[Service]\nExecStart=/bin/sleep infinity\n")
            g.sh_ok("systemctl daemon-reload")
            r = g.ok("service.start", {"name": "e2e-sleeper"}, 150)
            assert r.get("active") == "active", r
            r = g.ok("service.status", {"name": "e2e-sleeper"})
            assert r.get("active") == "active" and r.get("main_pid"), r
            r = g.ok("service.stop", {"name": "e2e-sleeper"}, 150)
            assert r.get("active") in ("inactive", "failed"), r
            g.sh_ok("rm /etc/systemd/system/e2e-sleeper.service && systemctl daemon-reload")
        check("exec, file.* and service.* work under the unit's sandbox", sandbox, vm)

        def reload():
            out = g.sh_ok("systemctl reload guestd.service && sleep 1 && "
                          "journalctl -u guestd.service -o cat --no-pager | grep -c 'configuration reloaded'")
            assert int(out.strip().splitlines()[-1]) >= 1, out
            props = g.show("guestd.service", "NRestarts", "ActiveState")
            assert props == {"NRestarts": "0", "ActiveState": "active"}, props
            assert g.hello is st["hello0"], "a new hello: the agent restarted"
        check("systemctl reload guestd: the agent re-reads guestd.conf, no restart", reload, vm)

        def watchdog_alive():
            # The agent must keep systemd's watchdog fed: no restart while
            # it runs well past WatchdogSec.
            wait = WATCHDOG_SEC + 10 - (time.monotonic() - st["hello0"]["_t"])
            if wait > 0:
                V.log("waiting %.0f s (the agent has then run %d s, WatchdogSec=%d)"
                      % (wait, WATCHDOG_SEC + 10, WATCHDOG_SEC))
                time.sleep(wait)
            props = g.show("guestd.service", "NRestarts", "ActiveState", "WatchdogUSec")
            assert props.get("NRestarts") == "0", \
                "guestd.service restarted while running normally: %s" % props
            assert g.hello is st["hello0"], "a new hello: the agent restarted"
            g.ok("ping")
        check("the watchdog keeps a live agent (no restart past WatchdogSec)", watchdog_alive, vm)

        def kill9():
            pid = g.ok("service.status", {"name": "guestd"})["main_pid"]
            old = g.hello["data"]["started_at"]
            t = time.monotonic()
            # The shell's kill: a minbase guest has no /bin/kill.
            g.send_only("exec", {"argv": ["sh", "-c", "kill -9 %d" % pid]})
            m = g.new_hello(RESTART_TIMEOUT, differs="started_at")
            R.figure("kill -9 to the new hello", "%.1f s (RestartSec=2s)" % (m["_t"] - t))
            assert m["data"]["started_at"] > old, (m["data"]["started_at"], old)
            props = g.show("guestd.service", "NRestarts", "MainPID")
            assert props.get("NRestarts") == "1", props
            assert props.get("MainPID") != str(pid), props
        check("kill -9 of the agent: systemd restarts it, new hello, new started_at", kill9, vm)

        def watchdog_stall():
            pid = g.ok("service.status", {"name": "guestd"})["main_pid"]
            n0 = int(g.show("guestd.service", "NRestarts")["NRestarts"])
            t = time.monotonic()
            g.send_only("exec", {"argv": ["sh", "-c", "kill -STOP %d" % pid]})
            m = g.new_hello(WATCHDOG_SEC + 60, differs="started_at")
            R.figure("SIGSTOP to the new hello (watchdog)",
                     "%.1f s (WatchdogSec=%ds)" % (m["_t"] - t, WATCHDOG_SEC))
            props = g.show("guestd.service", "NRestarts")
            assert int(props.get("NRestarts", -1)) == n0 + 1, props
            out = g.sh_ok("journalctl -u guestd.service -o cat --no-pager | grep -i watchdog || true")
            assert re.search(r"[Ww]atchdog timeout", out), \
                "no watchdog timeout in the journal: %r" % out
        check("the watchdog: a stalled (SIGSTOP) agent is restarted by systemd", watchdog_stall, vm)

        def reboot():
            boot_id = g.hello["data"]["boot_id"]
            vm.qmp.events.clear()
            t = time.monotonic()
            r = g.request("power.reboot", {"delay_s": 0})
            assert r.get("ok") is True and r.get("result") == {"scheduled": True}, r
            vm.qmp.wait_event("RESET", 120)
            t_reset = time.monotonic()
            R.figure("power.reboot answer to the guest's reset", "%.1f s" % (t_reset - t))
            m = g.new_hello(BOOT_TIMEOUT, differs="boot_id")
            R.figure("reset to hello after the reboot", "%.1f s" % (m["_t"] - t_reset))
            assert m["data"]["boot_id"] != boot_id
            s = g.ok("service.status", {"name": "guestd"})
            assert s.get("active") == "active", s
        check("power.reboot: answered, the guest reboots, the agent says hello again", reboot, vm)

        def upgrade():
            nv = version + "+e2e1"
            run_transient(g, "e2e-upgrade", "dpkg -i /root/guestd-next.deb; echo \"rc upgrade=$?\"; "
                          "state upgraded", "/root/e2e-upgrade.log", 120)
            g.new_hello(120, differs="started_at")
            log = wait_log_done(g, "/root/e2e-upgrade.log", 120)
            V.log("upgrade log:\n" + log)
            s = parse_states(log)
            assert s["rc"].get("upgrade") == "0", log
            assert "Setting up guestd (%s)" % nv in log, log
            assert s["upgraded"]["dpkg"] == "ii", s["upgraded"]
            no_complaints(log)
            v = g.sh_ok("dpkg-query -W -f '${Version}' guestd").strip()
            assert v == nv, v
            g.settle()
        check("dpkg -i of a newer version, systemd running: the agent restarts", upgrade, vm)

        def lifecycle():
            run_transient(g, "e2e-lifecycle",
                          "dpkg -r guestd; echo \"rc remove=$?\"; state removed\n"
                          "dpkg -P guestd; echo \"rc purge=$?\"; state purged\n"
                          "sh /root/install.sh /root/guestd.deb; echo \"rc install.sh=$?\"; "
                          "state installed-by-install.sh",
                          "/root/e2e-lifecycle.log", 180)
            g.new_hello(180, differs="started_at")
            log = wait_log_done(g, "/root/e2e-lifecycle.log", 120)
            V.log("lifecycle log:\n" + log)
            g.settle()
            s = parse_states(log)
            st["lifecycle"] = s
            assert s["rc"] == {"remove": "0", "purge": "0", "install.sh": "0"}, s["rc"]
            rem = s["removed"]
            assert rem["present"] == {"/etc/guestd/guestd.conf", "/var/lib/guestd",
                                      "/var/log/guestd"}, rem
            assert rem["load"] == "not-found" and rem["active"] == "inactive", rem
            assert rem["wants"] == "0", "udev still wants guestd.service for the port: %s" % rem
            assert rem["dpkg"] == "rc", rem
            pur = s["purged"]
            assert not pur["present"], pur
            assert pur["load"] == "not-found" and pur["dpkg"] == "" and pur["wants"] == "0", pur
            assert pur["leftover"] == "", "left after dpkg -P: %s" % pur["leftover"]
            ins = s["installed-by-install.sh"]
            assert ins["present"] >= {"/usr/sbin/guestd", "/lib/systemd/system/guestd.service",
                                      "/lib/udev/rules.d/60-guestd.rules",
                                      "/etc/guestd/guestd.conf"}, ins
            assert ins["wants"] == "1", ins
            no_complaints(log)
        check("dpkg -r, dpkg -P, then install.sh (systemd running): clean, agent back",
              lifecycle, vm)

        def uninstall_reinstall():
            run_transient(g, "e2e-reinstall",
                          "sh /root/install.sh --uninstall --purge /root/guestd.deb; "
                          "echo \"rc uninstall=$?\"; state uninstalled\n"
                          "dpkg -i /root/guestd.deb; echo \"rc install=$?\"; state installed\n"
                          "dpkg -i /root/guestd.deb; echo \"rc reinstall=$?\"; state reinstalled",
                          "/root/e2e-reinstall.log", 180)
            # Two restarts (install, then reinstall): wait for the log, then
            # for the agent of the last one.
            deadline = time.monotonic() + 180
            while True:
                try:
                    g.new_hello(5, differs="started_at")
                except V.E2EError:
                    pass
                try:
                    log = wait_log_done(g, "/root/e2e-reinstall.log", 3)
                    break
                except (V.E2EError, AssertionError):
                    if time.monotonic() > deadline:
                        raise
            V.log("uninstall/reinstall log:\n" + log)
            g.settle()
            no_complaints(log)
            s = parse_states(log)
            assert s["rc"] == {"uninstall": "0", "install": "0", "reinstall": "0"}, s["rc"]
            un, pur = dict(s["uninstalled"]), dict(st["lifecycle"]["purged"])
            assert un == pur, "install.sh --uninstall --purge left %s; dpkg -P left %s" % (un, pur)
            ins_sh = st["lifecycle"]["installed-by-install.sh"]
            assert s["installed"]["present"] == ins_sh["present"], \
                "dpkg -i: %s; install.sh: %s" % (s["installed"]["present"], ins_sh["present"])
            assert s["reinstalled"]["dpkg"] == "ii", s["reinstalled"]
            deadline = time.monotonic() + 60
            while g.ok("service.status", {"name": "guestd"}).get("active") != "active":
                assert time.monotonic() < deadline, "guestd not active after the reinstall"
                time.sleep(1)
            g.ok("ping")
        check("install.sh --uninstall --purge leaves what dpkg -P leaves; dpkg -i twice",
              uninstall_reinstall, vm)

        def hardened():
            out = g.sh_ok(
                "mkdir -p /etc/systemd/system/guestd.service.d && "
                "cp /usr/share/doc/guestd/examples/hardened.conf /etc/systemd/system/guestd.service.d/ && "
                "sed -i -e 's/^;\\[commands\\]$/[commands]/' -e 's/^;deny = exec/deny = exec/' "
                "/etc/guestd/guestd.conf && guestd --dump-config | grep '^deny = exec' && "
                "systemctl daemon-reload && systemd-analyze security --no-pager guestd.service", 150)
            score, word = exposure(out)
            R.figure("systemd-analyze security guestd (hardened drop-in)", "%.1f %s" % (score, word))
            g.settle()
            g.sh_ok("systemd-run --quiet --collect --no-block --unit=e2e-hardened "
                    "systemctl restart guestd.service")
            m = g.new_hello(60, differs="started_at")
            cmds = set(m["data"]["commands"])
            for c in ("exec", "file.write", "power.reboot", "service.restart", "process.kill"):
                assert c not in cmds, "%s still enabled: %s" % (c, sorted(cmds))
            r = g.request("exec", {"argv": ["true"]})
            assert r.get("ok") is False and r["error"]["code"] == "forbidden", r
            info = g.ok("system.info")
            assert info["os"]["id"] == "debian", info["os"]
            mt = g.ok("metrics.get")
            mounts = sorted(f.get("mount") for f in mt.get("filesystems", []))
            assert "/" in mounts, "filesystems: %s" % mounts
            if "mounts" in st:
                # The sandbox must not hide the guest's filesystems. It adds
                # bind mounts of the agent's own directories to its mount
                # namespace (StateDirectory=, LogsDirectory= under
                # ProtectSystem=strict), which the filesystems collector
                # lists until it skips bind mounts; nothing else may appear.
                missing = sorted(set(st["mounts"]) - set(mounts))
                extra = sorted(set(mounts) - set(st["mounts"]))
                assert not missing, "filesystems hidden by the sandbox: %s" % missing
                own = {"/var/lib/guestd", "/var/log/guestd", "/run/guestd"}
                assert set(extra) <= own, "filesystems only the sandbox has: %s" % extra
                if extra:
                    V.log("NOTE: the sandboxed agent also lists its own bind mounts %s" % extra)
            assert mt.get("cpu", {}).get("count") == 1 and mt.get("memory", {}).get("total_bytes"), mt
            procs = g.ok("process.list", {"limit": 500})["processes"]
            names = {p.get("pid"): p.get("name") for p in procs}
            assert names.get(1) == "systemd", "process.list: pid 1 is %r" % names.get(1)
            s = g.ok("service.status", {"name": "guestd"})
            assert s.get("active") == "active", s
            assert "bookworm" in g.read("/etc/os-release")
            h = g.ok("health.get")
            V.log("health under the hardened sandbox: %s" % h.get("status"))
            assert h.get("status") in ("ok", "degraded"), h
        check("hardened profile + drop-in: the agent starts, observes, refuses exec", hardened, vm)
    except Exception as e:
        R.fail("VM", "error: %s" % e)
        if not isinstance(e, V.E2EError):
            traceback.print_exc()
    finally:
        failed = R.any_failed()
        if vm:
            if failed:
                vm.dump_logs()
            vm.stop()
        if failed or keep:
            for f in os.listdir(work):
                if f.endswith((".img", ".deb")) and not keep:
                    os.unlink(os.path.join(work, f))
            V.log("logs kept in %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    return R.summary("test_debian_service")

if __name__ == "__main__":
    sys.exit(main())
