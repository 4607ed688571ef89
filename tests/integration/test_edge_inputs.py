#!/usr/bin/env python3
"""Every qemu-ga command guestd supports, and every guestd command that reads
a file or a child's output, driven through the real agent with the inputs
that break C string handling: empty files, files without a final newline,
NUL bytes, invalid UTF-8, one byte; children that print nothing, or print
without a final newline; procfs and sysfs trees whose every file is empty,
unterminated or garbled (agent.proc_root, agent.sys_root); /etc/os-release,
machine-id, timezone, localtime and utmp the same (a private mount
namespace); authorized_keys of a real user that is empty or unterminated.

The answers are checked exactly where the input is the test's own. The
suite is in the valgrind list (tests/CMakeLists.txt): under memcheck a
read of uninitialised memory or a leak anywhere on these paths fails it,
which AddressSanitizer cannot see (issue 16: an empty authorized_keys left
a buffer unterminated and stale heap bytes went to the host).

Nothing here changes the machine: no freeze or trim of a real filesystem
(only over a fixture mount table with no mounts), no clock change (an
invalid time; hwclock only where there is no RTC), the services are a
fake systemctl in a private mount namespace, and the one user is created
and removed by the test."""

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import Agent, Host, scaled  # noqa: E402

FIXTURES = os.environ.get("GUESTD_FIXTURES", os.path.join(os.path.dirname(__file__), "../fixtures"))

# Every qemu-ga command guestd answers (docs/qemu-ga.md, "yes" rows); the
# suite checks guest-info lists exactly these, and that each was sent.
QGA_SUPPORTED = {
    "guest-sync-delimited", "guest-sync", "guest-ping", "guest-info", "guest-get-time",
    "guest-set-time", "guest-shutdown", "guest-file-open", "guest-file-close",
    "guest-file-read", "guest-file-write", "guest-file-seek", "guest-file-flush",
    "guest-fsfreeze-status", "guest-fsfreeze-freeze", "guest-fsfreeze-freeze-list",
    "guest-fsfreeze-thaw", "guest-fstrim", "guest-network-get-interfaces", "guest-get-vcpus",
    "guest-get-disks", "guest-get-fsinfo", "guest-set-user-password", "guest-exec",
    "guest-exec-status", "guest-get-host-name", "guest-get-users", "guest-get-timezone",
    "guest-get-osinfo", "guest-ssh-get-authorized-keys", "guest-ssh-add-authorized-keys",
    "guest-ssh-remove-authorized-keys", "guest-get-diskstats", "guest-get-cpustats",
    "guest-get-load",
}
# Every guestd command (docs/commands.md); each is sent at least once.
NATIVE = {
    "ping", "info", "system.info", "metrics.get", "metrics.history", "health.get", "exec",
    "exec.cancel", "process.list", "process.kill", "service.list", "service.status",
    "service.start", "service.stop", "service.restart", "file.read", "file.write", "file.stat",
    "power.shutdown", "power.reboot", "config.get", "config.set",
}
SENT = set()  # qemu-ga and guestd commands sent by this run


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text)


class EdgeHost(Host):
    """A guestd connection that also takes qemu-ga replies (a 0xFF before
    guest-sync-delimited's is noted and dropped)."""

    delimited = 0

    def read_line_until(self, deadline):
        line = self.read_raw_line_until(deadline)
        if line.startswith(b"\xff"):
            self.delimited += 1
            line = line.lstrip(b"\xff")
        return json.loads(line)

    qid = 0

    def send(self, obj):
        SENT.add(obj.get("cmd") or obj.get("execute"))
        super().send(obj)

    def qga(self, execute, arguments=None, timeout=20):
        """A qemu-ga request on this (auto-dialect) connection; its reply."""
        SENT.add(execute)
        EdgeHost.qid += 1
        rid = "q%d" % EdgeHost.qid
        req = {"execute": execute, "id": rid}
        if arguments is not None:
            req["arguments"] = arguments
        self.send(req)
        return self.wait_for(lambda m: m.get("id") == rid and ("return" in m or "error" in m),
                             timeout)

    def ok(self, cmd, args=None, timeout=20):
        r = self.call(cmd, args, timeout=timeout)
        if not r["ok"]:
            raise AssertionError("%s %r: %r" % (cmd, args, r))
        return r["result"]

    def err(self, cmd, args=None, timeout=20):
        r = self.call(cmd, args, timeout=timeout)
        if r["ok"]:
            raise AssertionError("%s %r answered ok: %r" % (cmd, args, r))
        return r["error"]

    def ret(self, execute, arguments=None, timeout=20):
        r = self.qga(execute, arguments, timeout)
        if "return" not in r:
            raise AssertionError("%s %r: %r" % (execute, arguments, r))
        return r["return"]

    def qerr(self, execute, arguments=None, timeout=20):
        r = self.qga(execute, arguments, timeout)
        if "error" not in r:
            raise AssertionError("%s %r answered: %r" % (execute, arguments, r))
        return r["error"]


def stop_clean(agent):
    """SIGTERM; the agent must exit with status 0 (a sanitizer's report or
    a crash would not), and under valgrind with no error (host.py)."""
    log = agent.stderr()
    rc = agent.stop()
    if rc != 0:
        raise AssertionError("guestd exited with %r:\n%s" % (rc, log[-4000:]))


def connect(agent):
    host = EdgeHost(agent.sock)
    host.hello = host.wait_event("hello")
    return host


def wait_exec(host, pid, timeout=10):
    deadline = time.time() + scaled(timeout)
    while True:
        r = host.ret("guest-exec-status", {"pid": pid})
        if r["exited"]:
            return r
        if time.time() > deadline:
            raise TimeoutError("guest-exec %d did not end" % pid)
        time.sleep(0.05)


# The test's files: name -> content.
FILES = {
    "empty": b"",
    "one": b"x",
    "nonl": b"first line\nno final newline",
    "nul": b"a\x00b\x00\x00c\n\x00",
    "badutf8": b"\xff\xfe\xc3\x28 \xe2\x82 bad\n\xed\xa0\x80",
}


class FilesAndChildren(unittest.TestCase):
    """One agent; real files and real children of the test's making."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="guestd-edge-")
        cls.mark = os.path.join(cls.tmp, "powered")
        for name, data in FILES.items():
            with open(os.path.join(cls.tmp, name), "wb") as f:
                f.write(data)
            os.chmod(os.path.join(cls.tmp, name), 0o644)
        cls.agent = Agent("--set", "commands.poweroff_argv=touch " + cls.mark + "-off",
                          "--set", "commands.reboot_argv=touch " + cls.mark + "-reboot",
                          "--set", "agent.state_dir=" + cls.tmp,
                          "--set", "metrics.interval_ms=200")
        cls.host = connect(cls.agent)

    @classmethod
    def tearDownClass(cls):
        cls.host.close()
        try:
            stop_clean(cls.agent)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_file_read_and_stat(self):
        h = self.host
        for name, data in FILES.items():
            r = h.ok("file.read", {"path": self.path(name)})
            self.assertEqual((unb64(r["data_b64"]), r["size"], r["eof"]), (data, len(data), True), name)
            r = h.ok("file.read", {"path": self.path(name), "offset": 1, "max_bytes": 1})
            self.assertEqual(unb64(r["data_b64"]), data[1:2], name)
            self.assertEqual(r["eof"], len(data) <= 2, name)
            r = h.ok("file.read", {"path": self.path(name), "offset": 1000})
            self.assertEqual((r["data_b64"], r["eof"]), ("", True), name)
            st = h.ok("file.stat", {"path": self.path(name)})
            self.assertEqual((st["type"], st["size"], st["mode"]), ("file", len(data), "0644"), name)
        os.symlink("nul", self.path("link"))
        self.assertEqual(h.ok("file.stat", {"path": self.path("link")})["target"], "nul")
        # A link whose target is bytes that are not UTF-8.
        os.symlink(b"\xff\xfe-target", os.fsencode(self.path("badlink")))
        st = h.ok("file.stat", {"path": self.path("badlink")})
        self.assertEqual(st["type"], "symlink")
        self.assertIn("\ufffd", st["target"])
        self.assertEqual(h.err("file.read", {"path": self.path("none")})["code"], "not_found")
        # Reading /proc files: size 0 as stat says, the content still read.
        r = h.ok("file.read", {"path": "/proc/self/stat"})
        self.assertEqual(r["size"], 0)
        self.assertTrue(unb64(r["data_b64"]).startswith(b"%d " % self.agent.pid()))

    def test_file_write_to_odd_files(self):
        h = self.host
        p = self.path("w-empty")
        open(p, "wb").close()
        self.assertEqual(h.ok("file.write", {"path": p, "data_b64": "", "append": True}),
                         {"written": 0})
        self.assertEqual(h.ok("file.write", {"path": p, "data_b64": b64(b"\x00\xff")}),
                         {"written": 2})
        self.assertEqual(h.ok("file.write", {"path": p, "data_b64": b64(b"z"), "append": True}),
                         {"written": 1})
        with open(p, "rb") as f:
            self.assertEqual(f.read(), b"\x00\xffz")
        self.assertEqual(h.ok("file.write", {"path": p, "data_b64": ""}), {"written": 0})
        self.assertEqual(os.path.getsize(p), 0)

    def test_qga_file_handles_on_odd_files(self):
        h = self.host
        for name, data in FILES.items():
            fh = h.ret("guest-file-open", {"path": self.path(name)})
            r = h.ret("guest-file-read", {"handle": fh})
            self.assertEqual((unb64(r["buf-b64"]), r["count"], r["eof"]), (data, len(data), True), name)
            r = h.ret("guest-file-read", {"handle": fh})  # at the end
            self.assertEqual((r["buf-b64"], r["count"], r["eof"]), ("", 0, True), name)
            self.assertEqual(h.ret("guest-file-seek", {"handle": fh, "offset": 0, "whence": "set"}),
                             {"position": 0, "eof": False})
            r = h.ret("guest-file-read", {"handle": fh, "count": 1})
            self.assertEqual((unb64(r["buf-b64"]), r["count"]), (data[:1], len(data[:1])), name)
            r = h.ret("guest-file-read", {"handle": fh, "count": 0})
            self.assertEqual((r["buf-b64"], r["count"]), ("", 0), name)
            end = h.ret("guest-file-seek", {"handle": fh, "offset": 0, "whence": "end"})
            self.assertEqual(end, {"position": len(data), "eof": False}, name)
            self.assertEqual(h.ret("guest-file-flush", {"handle": fh}), {})
            self.assertEqual(h.ret("guest-file-close", {"handle": fh}), {})
        # Writing: nothing, then bytes that are not text, then read back.
        fh = h.ret("guest-file-open", {"path": self.path("q-w"), "mode": "w+"})
        self.assertEqual(h.ret("guest-file-write", {"handle": fh, "buf-b64": ""}),
                         {"count": 0, "eof": False})
        self.assertEqual(h.ret("guest-file-write", {"handle": fh, "buf-b64": b64(b"\x00\xff\n\x00")}),
                         {"count": 4, "eof": False})
        h.ret("guest-file-seek", {"handle": fh, "offset": 0, "whence": 0})
        r = h.ret("guest-file-read", {"handle": fh, "count": 100})
        self.assertEqual(unb64(r["buf-b64"]), b"\x00\xff\n\x00")
        h.ret("guest-file-close", {"handle": fh})
        self.assertEqual(h.qerr("guest-file-read", {"handle": fh})["class"], "GenericError")

    def exec_ok(self, args):
        return self.host.ok("exec", args)

    def test_exec_output_without_newline_empty_and_binary(self):
        r = self.exec_ok({"argv": ["printf", "no newline"]})
        self.assertEqual((r["stdout"], r["stderr"], r["exit_code"]), ("no newline", "", 0))
        r = self.exec_ok({"argv": ["true"]})
        self.assertEqual((r["stdout"], r["stderr"]), ("", ""))
        r = self.exec_ok({"argv": ["sh", "-c", "printf 'e\\0r' >&2; printf 'a\\0b\\377'"]})
        self.assertEqual(r["stdout"], "a\x00b\ufffd")
        self.assertEqual(r["stderr"], "e\x00r")
        r = self.exec_ok({"argv": ["sh", "-c", "printf 'a\\0b\\377'; printf '\\303' >&2"],
                          "encoding": "base64"})
        self.assertEqual(unb64(r["stdout_b64"]), b"a\x00b\xff")
        self.assertEqual(unb64(r["stderr_b64"]), b"\xc3")
        r = self.host.ok("file.read", {"path": self.path("nonl"), "max_bytes": 0})
        self.assertEqual((r["data_b64"], r["eof"]), ("", False))
        r = self.exec_ok({"argv": ["cat"], "stdin": ""})
        self.assertEqual(r["stdout"], "")
        r = self.exec_ok({"argv": ["cat"], "stdin": "x"})
        self.assertEqual(r["stdout"], "x")
        r = self.exec_ok({"argv": ["printf", "\\342\\202"], "max_output_bytes": 1})
        self.assertEqual((r["stdout"], r["stdout_truncated"]), ("\ufffd", True))
        r = self.exec_ok({"argv": ["printf", "abc"], "max_output_bytes": 0})
        self.assertEqual((r["stdout"], r["stdout_truncated"]), ("", True))
        # Streamed: an unterminated last chunk and a multi-byte character cut.
        h = self.host
        h.send({"id": "st", "cmd": "exec",
                "args": {"argv": ["sh", "-c", "printf '\\342'; sleep 0.2; printf '\\202\\254 end'"],
                         "stream": True}})
        r = h.response("st", timeout=20)
        self.assertTrue(r["ok"], r)
        out = ""
        while h.pending:
            m = h.pending.pop(0)
            if m.get("event") == "exec.output" and m["data"]["request_id"] == "st":
                out += m["data"]["data"]
        # The character cut between two writes arrives whole.
        self.assertEqual(out, "\u20ac end")

    def test_exec_cancel_and_process_kill(self):
        h = self.host
        h.send({"id": "long", "cmd": "exec", "args": {"argv": ["sh", "-c", "printf partial; sleep 60"]}})
        time.sleep(scaled(0.3))
        self.assertEqual(h.ok("exec.cancel", {"request_id": "long"}), {"cancelled": True})
        r = h.response("long", timeout=20)["result"]
        self.assertEqual((r["cancelled"], r["signal"], r["stdout"]), (True, "TERM", "partial"))
        self.assertEqual(h.err("exec.cancel", {"request_id": "long"})["code"], "not_found")
        child = subprocess.Popen(["sleep", "60"])
        try:
            self.assertEqual(h.ok("process.kill", {"pid": child.pid, "signal": "KILL"}), {"killed": True})
            self.assertEqual(child.wait(10), -9)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()

    def test_process_list_with_odd_children(self):
        # Children whose name and command line are odd bytes, one with an
        # empty command line element, one a zombie for a moment.
        d = self.path("bin")
        os.makedirs(d, exist_ok=True)
        odd = os.path.join(os.fsencode(d), b"odd\xff\xfename")
        shutil.copy("/bin/sleep", odd)
        kids = [subprocess.Popen([odd, "30"]), subprocess.Popen(["sh", "-c", "sleep 30; :", "", "\u00e9"])]
        try:
            procs = self.host.ok("process.list", {"sort_by": "rss"}, timeout=30)["processes"]
            by_pid = {p["pid"]: p for p in procs}
            self.assertEqual(by_pid[kids[0].pid]["cmdline"], d + "/odd\ufffd\ufffdname 30")
            self.assertEqual(by_pid[kids[0].pid]["name"], "odd\ufffd\ufffdname")
            self.assertEqual(by_pid[kids[1].pid]["cmdline"], "sh -c sleep 30; :  \u00e9")
            self.assertEqual(len(self.host.ok("process.list", {"limit": 1})["processes"]), 1)
        finally:
            for k in kids:
                k.kill()
                k.wait()

    def test_qga_exec_empty_and_unterminated_output(self):
        h = self.host
        # As qemu-ga: a stream's members are there only when it said something.
        cases = [
            ({"path": "true", "capture-output": True}, {"exited": True, "exitcode": 0}),
            ({"path": "printf", "arg": ["abc"], "capture-output": True},
             {"exited": True, "exitcode": 0, "out-data": b64(b"abc"), "out-truncated": False}),
            ({"path": "sh", "arg": ["-c", "printf 'e\\0' >&2; printf '\\377'; exit 4"],
              "capture-output": True},
             {"exited": True, "exitcode": 4, "out-data": b64(b"\xff"), "err-data": b64(b"e\x00"),
              "out-truncated": False, "err-truncated": False}),
            ({"path": "cat", "input-data": "", "capture-output": True},
             {"exited": True, "exitcode": 0}),
            ({"path": "cat", "input-data": b64(b"\x00"), "capture-output": "merged"},
             {"exited": True, "exitcode": 0, "out-data": b64(b"\x00"), "out-truncated": False}),
            ({"path": "sh", "arg": ["-c", "printf x >&2"], "capture-output": "stderr"},
             {"exited": True, "exitcode": 0, "err-data": b64(b"x"), "err-truncated": False}),
            ({"path": "true", "capture-output": "none"}, {"exited": True, "exitcode": 0}),
            ({"path": "sh", "arg": ["-c", "printf x"]}, {"exited": True, "exitcode": 0}),
            ({"path": "printf", "arg": [""], "env": [], "capture-output": "separated"},
             {"exited": True, "exitcode": 0}),
        ]
        for args, want in cases:
            pid = h.ret("guest-exec", args)["pid"]
            self.assertEqual(wait_exec(h, pid), want, args)
        self.assertEqual(h.qerr("guest-exec-status", {"pid": pid}),
                         {"class": "GenericError", "desc": "Invalid parameter 'pid'"})
        e = h.qerr("guest-exec", {"path": self.path("empty")})  # not executable
        self.assertIn("Permission denied", e["desc"])

    def test_guest_identity_and_counters_on_this_machine(self):
        """The qemu-ga commands that read this machine's files (not the
        fixtures): each answers, with the members qemu-ga has."""
        h = self.host
        self.assertEqual(h.ret("guest-ping"), {})
        self.assertEqual(h.ret("guest-sync", {"id": 7}), 7)
        before = h.delimited
        self.assertEqual(h.ret("guest-sync-delimited", {"id": -1}), -1)
        self.assertEqual(h.delimited, before + 1)
        self.assertIsInstance(h.ret("guest-get-time"), int)
        info = h.ret("guest-info")
        self.assertEqual({c["name"] for c in info["supported_commands"]}, QGA_SUPPORTED)
        self.assertEqual(h.ret("guest-get-host-name")["host-name"], os.uname().nodename)
        self.assertIn("offset", h.ret("guest-get-timezone"))
        self.assertEqual(h.ret("guest-get-osinfo")["kernel-release"], os.uname().release)
        self.assertIsInstance(h.ret("guest-get-users"), list)
        ifs = h.ret("guest-network-get-interfaces")
        self.assertIn("lo", [i["name"] for i in ifs])
        self.assertEqual(len(h.ret("guest-get-vcpus")), os.cpu_count())
        self.assertEqual(len(h.ret("guest-get-cpustats")), os.cpu_count())
        self.assertIsInstance(h.ret("guest-get-diskstats"), list)
        self.assertEqual(set(h.ret("guest-get-load")), {"load1m", "load5m", "load15m"})
        self.assertIsInstance(h.ret("guest-get-disks", timeout=60), list)
        self.assertIsInstance(h.ret("guest-get-fsinfo", timeout=60), list)
        self.assertEqual(h.ret("guest-fsfreeze-status"), "thawed")
        self.assertEqual(h.ret("guest-fsfreeze-thaw"), 0)
        # guest-set-time: never the clock of this machine.
        self.assertEqual(h.qerr("guest-set-time", {"time": -1}),
                         {"class": "GenericError", "desc": "Invalid time: -1"})
        if not any(n.startswith("rtc") for n in os.listdir("/dev")):
            e = h.qerr("guest-set-time", {}, timeout=30)
            self.assertEqual(e["class"], "GenericError")
        e = h.qerr("guest-set-user-password",
                   {"username": "guestd-no-such-user", "password": b64(b"pw"), "crypted": False},
                   timeout=30)
        self.assertEqual(e["class"], "GenericError")
        # The authorized_keys commands' errors (AuthorizedKeys has a real user).
        for cmd, args in [("guest-ssh-get-authorized-keys", {}),
                          ("guest-ssh-add-authorized-keys", {"keys": ["ssh-ed25519 AAAA k"]}),
                          ("guest-ssh-remove-authorized-keys", {"keys": ["ssh-ed25519 AAAA k"]})]:
            e = h.qerr(cmd, dict(args, username="guestd-no-such-user"))
            self.assertEqual(e["class"], "GenericError", cmd)
            self.assertTrue(e["desc"].startswith("failed to lookup user 'guestd-no-such-user'"), e)

    def test_native_readers_on_this_machine(self):
        h = self.host
        self.assertEqual(h.ok("ping"), {"pong": True})
        info = h.ok("info")
        self.assertEqual({c["name"] for c in info["commands"]}, NATIVE)
        si = h.ok("system.info")
        self.assertEqual(si["kernel"]["release"], os.uname().release)
        self.assertGreater(si["memory_total_bytes"], 0)
        m = h.ok("metrics.get")
        self.assertIn("memory", m)
        self.assertIsInstance(h.ok("metrics.history", {"since_seq": 0, "limit": 2})["samples"], list)
        self.assertEqual(h.ok("metrics.history", {"since_seq": 2 ** 53})["samples"], [])
        self.assertIn(h.ok("health.get")["status"], ("ok", "degraded", "failing"))
        cfg = h.ok("config.get")
        self.assertEqual(cfg["agent"]["state_dir"], self.tmp)
        self.assertEqual(h.ok("config.get", {"key": "metrics.interval_ms"})["value"], 200)
        self.assertEqual(h.ok("config.set", {"key": "metrics.top_processes", "value": 0})["value"], 0)
        self.assertEqual(h.err("config.get", {"key": ""})["code"], "invalid_args")
        self.assertEqual(h.err("config.set", {"key": "agent.log_level", "value": "\u00e9"})["code"],
                         "invalid_args")

    def test_zz_power(self):
        """Last in the class: the power commands run harmless touches."""
        h = self.host
        self.assertEqual(h.ok("power.reboot"), {"scheduled": True})
        self.assertEqual(h.ok("power.shutdown"), {"scheduled": True})
        h.send({"execute": "guest-shutdown", "arguments": {"mode": "reboot"}, "id": "sd"})
        SENT.add("guest-shutdown")
        self.assertEqual(h.ret("guest-ping"), {})  # nothing came for "sd"
        deadline = time.time() + scaled(5)
        while not (os.path.exists(self.mark + "-off") and os.path.exists(self.mark + "-reboot")):
            self.assertLess(time.time(), deadline, self.agent.stderr())
            time.sleep(0.05)


    def test_zzz_work_in_flight_when_the_agent_stops(self):
        """Last: the class's agent is stopped (tearDownClass) with a child of
        exec and of guest-exec running, a file handle open, and pool work
        queued; it must exit 0 and, under valgrind, leak nothing."""
        h = self.host
        h.send({"id": "inflight-exec", "cmd": "exec", "args": {"argv": ["sh", "-c", "printf x; sleep 30"]}})
        h.ret("guest-exec", {"path": "sh", "arg": ["-c", "printf y; sleep 30"], "capture-output": True})
        h.ret("guest-file-open", {"path": self.path("nonl")})
        h.send({"id": "inflight-ps", "cmd": "process.list"})
        h.send({"execute": "guest-get-fsinfo", "id": "inflight-fs"})
        time.sleep(scaled(0.2))


# ---- a fake systemctl whose output is each test's odd case ----

FAKE_SYSTEMCTL = r"""#!/bin/sh
dir=$(dirname "$0")
verb=
unit=
for a in "$@"; do
    case "$a" in
    --*) ;;
    *) if [ -z "$verb" ]; then verb=$a; else unit=$a; fi ;;
    esac
done
case "$verb" in
list-units) cat "$dir/list-units.out"; exit 0 ;;
show)
    case "$unit" in
    empty.service) exit 0 ;;
    nonl.service) printf 'Id=nonl.service\nLoadState=loaded\nActiveState=active\nSubState=running\nDescription=no newline' ;;
    nul.service) printf 'Id=nul.service\nLoadState=loaded\nActiveState=active\nSubState=\nMainPID=12\nDescription=\377\376x\n\000ActiveState=after-a-nul\n' ;;
    *) printf 'LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=' ;;
    esac
    exit 0 ;;
start|stop|restart)
    case "$unit" in
    errnonl.service) printf 'Job failed, no newline' >&2; exit 1 ;;
    errempty.service) exit 1 ;;
    errbad.service) printf '\377\376 not found\000tail' >&2; exit 1 ;;
    slow.service) exec sleep 30 ;;
    esac
    exit 0 ;;
esac
exit 1
"""


class Services(unittest.TestCase):
    """service.* against a fake systemctl (in /usr/local/sbin, first in the
    children's fixed PATH) in a mount namespace of the agent's own where /run/systemd/system exists."""

    started = False

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not shutil.which("unshare"):
            raise unittest.SkipTest("needs root and unshare for a private /run/systemd")
        cls.tmp = tempfile.mkdtemp(prefix="guestd-edge-svc-")
        cls.fake = os.path.join(cls.tmp, "systemctl")
        with open(cls.fake, "w") as f:
            f.write(FAKE_SYSTEMCTL)
        os.chmod(cls.fake, 0o755)
        # Children get the agent's fixed PATH, never the agent's own, so the
        # fake is bind-mounted over its first directory, in the namespace only.
        env = dict(os.environ, GUESTD_FAKE_BIN=cls.tmp)
        script = ("mount -n -t tmpfs tmpfs /run/systemd 2>/dev/null || "
                  "mount -n -t tmpfs tmpfs /run || exit 97; "
                  "mkdir -p /usr/local/sbin && "
                  "mount -n --bind \"$GUESTD_FAKE_BIN\" /usr/local/sbin || exit 96; "
                  "mkdir -p /run/systemd/system && exec \"$@\"")
        try:
            cls.agent = Agent(wrapper=["unshare", "-m", "--", "sh", "-c", script, "sh"], env=env)
        except RuntimeError as e:
            raise unittest.SkipTest("no private mount namespace here: %s" % e)
        cls.host = connect(cls.agent)
        Services.started = True

    @classmethod
    def tearDownClass(cls):
        cls.host.close()
        try:
            stop_clean(cls.agent)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def list_with(self, out):
        with open(os.path.join(self.tmp, "list-units.out"), "wb") as f:
            f.write(out)
        return self.host.call("service.list", timeout=30)

    def test_list_units_odd_output(self):
        r = self.list_with(b"")
        self.assertEqual(r["result"], {"services": []})
        r = self.list_with(b"a.service loaded active running The A")  # no newline
        self.assertEqual(r["result"]["services"],
                         [{"name": "a.service", "load": "loaded", "active": "active",
                           "sub": "running", "description": "The A"}])
        r = self.list_with(b"b.service loaded active running \xff\xfe\n"
                           b"c.service loaded active running x\x00y\nd.service\n")
        self.assertEqual([(s["name"], s["description"]) for s in r["result"]["services"]],
                         [("b.service", "\ufffd\ufffd"), ("c.service", "x")])
        self.assertEqual(self.list_with(b"\x00")["result"], {"services": []})
        self.assertEqual(self.list_with(b"only two\n")["error"]["code"], "failed")

    def test_show_odd_output(self):
        h = self.host
        self.assertEqual(h.err("service.status", {"name": "empty"}, timeout=30),
                         {"code": "failed", "message": "cannot parse the output of systemctl show"})
        self.assertEqual(h.ok("service.status", {"name": "nonl"}, timeout=30),
                         {"name": "nonl.service", "active": "active", "sub": "running",
                          "enabled": None, "main_pid": None, "load": "loaded",
                          "description": "no newline"})
        r = h.ok("service.status", {"name": "nul"}, timeout=30)
        self.assertEqual((r["active"], r["sub"], r["main_pid"], r["description"]),
                         ("active", "", 12, "\ufffd\ufffdx"))
        r = h.ok("service.status", {"name": "other"}, timeout=30)
        self.assertEqual((r["name"], r["enabled"]), ("other.service", None))

    def test_changes_with_odd_stderr(self):
        h = self.host
        for verb in ("service.start", "service.stop", "service.restart"):
            self.assertEqual(h.ok(verb, {"name": "quiet"}, timeout=30),
                             {"name": "quiet.service", "active": "inactive", "sub": "dead"})
        e = h.err("service.start", {"name": "errnonl"}, timeout=30)
        self.assertEqual(e, {"code": "failed", "message":
                             "systemctl start errnonl.service exited with 1: Job failed, no newline"})
        e = h.err("service.stop", {"name": "errempty"}, timeout=30)
        self.assertEqual(e["message"], "systemctl stop errempty.service exited with 1: no message")
        e = h.err("service.restart", {"name": "errbad"}, timeout=30)
        self.assertEqual(e, {"code": "not_found", "message":
                             "systemctl restart errbad.service exited with 1: \ufffd\ufffd not found"})


    def test_zz_systemctl_running_when_the_agent_stops(self):
        """Last: a service.start whose systemctl never ends is in flight when
        tearDownClass stops the agent: the child is killed, exit 0, no leak."""
        self.host.send({"id": "slow", "cmd": "service.start", "args": {"name": "slow"}})
        time.sleep(scaled(0.3))


# ---- procfs and sysfs trees with every file empty, unterminated or garbled ----

def build_tree(dest):
    """The fixture trees merged: proc (collectors, processes, mounts) and
    sys (disks, CPUs, network)."""
    proc, sys_ = os.path.join(dest, "proc"), os.path.join(dest, "sys")
    shutil.copytree(os.path.join(FIXTURES, "proc-snap1"), proc, symlinks=True)
    for pid in os.listdir(os.path.join(FIXTURES, "commands", "proc")):
        src = os.path.join(FIXTURES, "commands", "proc", pid)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(proc, pid), symlinks=True, dirs_exist_ok=True)
    shutil.copy(os.path.join(FIXTURES, "qga", "proc", "self", "mountinfo"),
                os.path.join(proc, "self", "mountinfo"))
    shutil.copytree(os.path.join(FIXTURES, "qga", "sys"), sys_, symlinks=True)
    shutil.copytree(os.path.join(FIXTURES, "sys-snap", "class"), os.path.join(sys_, "class"),
                    symlinks=True)
    return proc, sys_


def rewrite_files(root, fn):
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if os.path.islink(p) or not stat.S_ISREG(os.lstat(p).st_mode):
                continue
            with open(p, "rb") as f:
                data = f.read()
            with open(p, "wb") as f:
                f.write(fn(data))


def garble(data):
    """Half the file, a NUL, bytes that are not UTF-8, the rest, and no
    final newline."""
    half = len(data) // 2
    return (data[:half] + b"\x00\xff\xc3(" + data[half:]).rstrip(b"\n")


VARIANTS = {
    "empty": lambda data: b"",
    "unterminated": lambda data: data.rstrip(b"\n"),
    "garbled": garble,
    "one-byte": lambda data: data[:1],
}


class ProcfsEdges(unittest.TestCase):
    """One agent per variant of the fixture trees, collecting every 100 ms;
    every reader of them is asked, and the agent must keep answering."""

    def run_variant(self, name):
        tmp = tempfile.mkdtemp(prefix="guestd-edge-proc-")
        try:
            proc, sys_ = build_tree(tmp)
            rewrite_files(proc, VARIANTS[name])
            rewrite_files(sys_, VARIANTS[name])
            # Freeze and trim only where the mount table cannot name a mount
            # of this machine (empty, or one byte).
            no_mounts = os.path.getsize(os.path.join(proc, "self", "mountinfo")) <= 1
            agent = Agent("--set", "agent.proc_root=" + proc, "--set", "agent.sys_root=" + sys_,
                          "--set", "agent.state_dir=" + tmp, "--set", "metrics.interval_ms=100",
                          "--set", "health.interval_ms=100")
            with agent:
                h = connect(agent)
                self.check_readers(h, name, no_mounts)
                time.sleep(scaled(0.3))  # a few more samples and health checks
                self.assertEqual(h.ok("ping"), {"pong": True})
                h.close()
                stop_clean(agent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def check_readers(self, h, name, no_mounts):
        m = h.ok("metrics.get")
        self.assertIsInstance(m, dict)
        for coll in ("cpu", "memory", "load", "pressure", "disks", "filesystems", "network",
                     "uptime", "processes"):
            r = h.call("metrics.get", {"collectors": [coll]})
            self.assertIn(r.get("error", {}).get("code", "ok"), ("ok", "internal", "failed"), (coll, r))
        self.assertIsInstance(h.ok("metrics.history")["samples"], list)
        health = h.ok("health.get")
        self.assertIn(health["status"], ("ok", "degraded", "failing"))
        failing = {c for c, v in health["collectors"].items() if not v["ok"]}
        if name == "empty":
            # Each collector whose file says nothing is named, with errors;
            # a sample holds the others (empty lists, zero processes).
            self.assertEqual(failing, {"uptime", "cpu", "memory", "load", "pressure", "network"})
            self.assertEqual(m, {"disks": [], "filesystems": [],
                                 "processes": {"total": 0, "running": 0, "top": []}})
        if name == "unterminated":
            # A last line without its newline is read like any other.
            self.assertEqual(failing, set())
            self.assertEqual(set(m), {"cpu", "disks", "filesystems", "load", "memory", "network",
                                      "pressure", "processes", "uptime_s"})
        si = h.ok("system.info")
        if name == "empty":
            self.assertEqual((si["cpu"]["model"], si["memory_total_bytes"], si["uptime_s"]),
                             (None, 0, 0))
            self.assertEqual(si["cpu"]["count"], os.cpu_count())
        procs = h.ok("process.list", timeout=30)["processes"]
        if name == "empty":
            self.assertEqual(procs, [])
        if name == "unterminated":
            self.assertEqual({p["pid"]: p["name"] for p in procs if p["pid"] in (1, 4242, 77)},
                             {1: "systemd", 4242: "my (weird) name", 77: "kworker/0:1-events"})
        # qemu-ga's readers of the same trees.
        for cmd in ("guest-get-cpustats", "guest-get-diskstats", "guest-get-load",
                    "guest-get-vcpus", "guest-network-get-interfaces", "guest-get-disks",
                    "guest-get-fsinfo"):
            r = h.qga(cmd, timeout=60)
            if "error" in r:
                self.assertEqual(r["error"]["class"], "GenericError", (cmd, r))
                self.assertTrue(r["error"]["desc"].startswith("cannot read "), (cmd, r))
        if name == "empty":
            self.assertEqual(h.ret("guest-get-cpustats"), [])
            self.assertEqual(h.ret("guest-get-diskstats"), [])
            self.assertEqual(h.qerr("guest-get-load"),
                             {"class": "GenericError", "desc": "cannot read /proc/loadavg"})
            self.assertEqual(h.ret("guest-get-fsinfo"), [])
            self.assertEqual(h.ret("guest-get-disks"), [])
        if name == "unterminated":
            self.assertEqual(len(h.ret("guest-get-cpustats")), 2)
            self.assertEqual(set(h.ret("guest-get-load")), {"load1m", "load5m", "load15m"})
            fs = h.ret("guest-get-fsinfo")
            self.assertIn("/nonexistent-guestd-fixture/with space", [f["mountpoint"] for f in fs])
            # As with the fixture's newlines (check_qga.c): loop0's size "0"
            # is zero without its newline too, and leaves it out.
            disks = h.ret("guest-get-disks")
            self.assertEqual(sorted(d["name"] for d in disks), ["/dev/dm-0", "/dev/vda", "/dev/vda1"])
            self.assertEqual(next(d for d in disks if d["name"] == "/dev/dm-0")["alias"], "vg-root")
        if no_mounts:
            # Freeze, trim and thaw over a mount table with nothing in it:
            # nothing of this machine is touched.
            self.assertEqual(h.ret("guest-fsfreeze-freeze"), 0)
            self.assertEqual(h.ret("guest-fsfreeze-thaw"), 0)
            self.assertEqual(h.ret("guest-fsfreeze-freeze-list", {"mountpoints": ["/"]}), 0)
            self.assertEqual(h.ret("guest-fsfreeze-status"), "thawed")
            self.assertEqual(h.ret("guest-fstrim"), {"paths": []})
            self.assertEqual(h.ret("guest-fsfreeze-thaw"), 0)

    def test_empty(self):
        self.run_variant("empty")

    def test_unterminated(self):
        self.run_variant("unterminated")

    def test_garbled(self):
        self.run_variant("garbled")

    def test_one_byte(self):
        self.run_variant("one-byte")


# ---- /etc and utmp files empty, unterminated or garbled ----

def utmp_record(ut_type, user, line=b"pts/0", tv_sec=1795320000, tv_usec=500000):
    """One glibc struct utmp (x86_64 and the other 64-bit ABIs: 384 bytes)."""
    import struct
    return struct.pack("<hxxi32s4s32s256shhiii16s20x", ut_type, 4242, line, b"0", user, b"",
                       0, 0, 0, tv_sec, tv_usec, b"")


ETC_VARIANTS = {
    "empty": {"os-release": b"", "machine-id": b"", "timezone": b"", "localtime": b"",
              "utmp": b""},
    "unterminated": {"os-release": b'ID=edge\nNAME="Edge OS"\nVERSION_ID=1',
                     "machine-id": b"abc", "timezone": b"Europe/Paris", "localtime": b"TZif",
                     # a record cut short, then nothing
                     "utmp": utmp_record(7, b"cut")[:200]},
    "garbled": {"os-release": b'ID=ed\xffge\nNAME="N\x00ame"\nPRETTY_NAME="no closing quote',
                "machine-id": b"\xff\x00x", "timezone": b"\xfe\n", "localtime": b"\x00\xff",
                # a user name that fills ut_user (no NUL) and is not UTF-8,
                # an empty one, the same name again (an earlier login)
                "utmp": utmp_record(7, b"\xff\xfe" + b"a" * 30)
                + utmp_record(7, b"") + utmp_record(8, b"dead")
                + utmp_record(7, b"\xff\xfe" + b"a" * 30, tv_sec=1795310000, tv_usec=0)},
}

ETC_WRAPPER = """set -e
t=$GUESTD_EDGE_ETC
mount -n --bind /etc "$t/real-etc"
mount -n --bind "$t/etc" /etc
mount -n -t tmpfs tmpfs /run
cp "$t/utmp" /run/utmp
unset GUESTD_EDGE_ETC
exec "$@"
"""


class EtcEdges(unittest.TestCase):
    """system.info, guest-get-osinfo, guest-get-timezone and guest-get-users
    read fixed paths (/etc/os-release, /etc/machine-id, /etc/timezone,
    /etc/localtime, /run/utmp): the agent runs in a mount namespace of its
    own where those are the test's files; the rest of /etc is the real one
    through symlinks."""

    def run_variant(self, name):
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare for a private /etc")
        files = ETC_VARIANTS[name]
        tmp = tempfile.mkdtemp(prefix="guestd-edge-etc-")
        try:
            os.chmod(tmp, 0o755)
            os.mkdir(os.path.join(tmp, "real-etc"))
            etc = os.path.join(tmp, "etc")
            os.mkdir(etc)
            for n in os.listdir("/etc"):
                if n not in files:
                    os.symlink(os.path.join(tmp, "real-etc", n), os.path.join(etc, n))
            for n, data in files.items():
                with open(os.path.join(tmp if n == "utmp" else etc, n), "wb") as f:
                    f.write(data)
            env = dict(os.environ, GUESTD_EDGE_ETC=tmp)
            try:
                agent = Agent(wrapper=["unshare", "-m", "--", "sh", "-c", ETC_WRAPPER, "sh"],
                              env=env)
            except RuntimeError as e:
                self.skipTest("no private mount namespace here: %s" % e)
            with agent:
                h = connect(agent)
                self.check(h, name)
                h.close()
                stop_clean(agent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def check(self, h, name):
        si = h.ok("system.info")
        osinfo = h.ret("guest-get-osinfo")
        tz = h.ret("guest-get-timezone")
        users = h.ret("guest-get-users")
        self.assertEqual(osinfo["kernel-release"], os.uname().release)
        self.assertEqual(si["kernel"]["release"], os.uname().release)
        if name == "empty":
            self.assertEqual(si["os"], {"id": "linux", "name": "Linux", "version": None,
                                        "version_id": None, "pretty_name": "Linux"})
            self.assertEqual((si["machine_id"], si["timezone"]), (None, "UTC"))
            self.assertEqual(set(osinfo), {"kernel-release", "kernel-version", "machine"})
            self.assertEqual(tz, {"zone": "UTC", "offset": 0})
            self.assertEqual(users, [])
        if name == "unterminated":
            self.assertEqual(si["os"], {"id": "edge", "name": "Edge OS", "version": None,
                                        "version_id": "1", "pretty_name": "Linux"})
            self.assertEqual((si["machine_id"], si["timezone"]), ("abc", "Europe/Paris"))
            self.assertEqual((osinfo["id"], osinfo["name"], osinfo["version-id"]),
                             ("edge", "Edge OS", "1"))
            self.assertEqual(tz["offset"], 0)
            self.assertEqual(users, [])
        if name == "garbled":
            # The text ends at its first NUL; bytes that are not UTF-8
            # become U+FFFD.
            self.assertEqual(si["os"], {"id": "ed\ufffdge", "name": "N", "version": None,
                                        "version_id": None, "pretty_name": "Linux"})
            self.assertEqual((si["machine_id"], si["timezone"]), ("\ufffd", "\ufffd"))
            self.assertEqual((osinfo["id"], osinfo["name"]), ("ed\ufffdge", "N"))
            self.assertNotIn("pretty-name", osinfo)
            self.assertEqual(tz["offset"], 0)
            self.assertEqual(users, [{"user": "\ufffd\ufffd" + "a" * 30,
                                      "login-time": 1795310000}])

    def test_empty(self):
        self.run_variant("empty")

    def test_unterminated(self):
        self.run_variant("unterminated")

    def test_garbled(self):
        self.run_variant("garbled")


# ---- authorized_keys of a real user ----

class AuthorizedKeys(unittest.TestCase):
    """guest-ssh-* and guest-set-user-password for a user the test creates
    (home in a temporary directory) and removes."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not shutil.which("useradd"):
            raise unittest.SkipTest("needs root and useradd")
        cls.tmp = tempfile.mkdtemp(prefix="guestd-edge-user-")
        os.chmod(cls.tmp, 0o755)
        cls.user = "gdedge%d" % (os.getpid() % 100000)
        cls.home = os.path.join(cls.tmp, "home")
        subprocess.run(["useradd", "-M", "-d", cls.home, "-s", "/bin/false", cls.user],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            os.makedirs(os.path.join(cls.home, ".ssh"), mode=0o700)
            import pwd
            pw = pwd.getpwnam(cls.user)
            for d in (cls.home, os.path.join(cls.home, ".ssh")):
                os.chown(d, pw.pw_uid, pw.pw_gid)
            cls.uid, cls.gid = pw.pw_uid, pw.pw_gid
            cls.keys = os.path.join(cls.home, ".ssh", "authorized_keys")
            cls.agent = Agent()
            cls.host = connect(cls.agent)
        except BaseException:
            subprocess.run(["userdel", "-f", cls.user], stderr=subprocess.DEVNULL)
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.host.close()
        try:
            stop_clean(cls.agent)
        finally:
            subprocess.run(["userdel", "-f", cls.user], stderr=subprocess.DEVNULL)
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def put(self, data):
        with open(self.keys, "wb") as f:
            f.write(data)
        os.chown(self.keys, self.uid, self.gid)
        os.chmod(self.keys, 0o600)

    def content(self):
        with open(self.keys, "rb") as f:
            return f.read()

    def get(self):
        return self.host.ret("guest-ssh-get-authorized-keys", {"username": self.user}, timeout=30)

    def test_empty_file(self):
        self.put(b"")
        self.assertEqual(self.get(), {"keys": []})
        self.assertEqual(self.host.ret("guest-ssh-remove-authorized-keys",
                                       {"username": self.user, "keys": ["ssh-ed25519 AAAA k1"]},
                                       timeout=30), {})
        self.assertEqual(self.content(), b"")
        self.put(b"")
        self.assertEqual(self.host.ret("guest-ssh-add-authorized-keys",
                                       {"username": self.user, "keys": ["ssh-ed25519 AAAA k1"]},
                                       timeout=30), {})
        self.assertEqual(self.content(), b"ssh-ed25519 AAAA k1\n")

    def test_no_final_newline(self):
        self.put(b"ssh-ed25519 AAAA k1\n# note\nssh-rsa BBBB k2")
        self.assertEqual(self.get(), {"keys": ["ssh-ed25519 AAAA k1", "ssh-rsa BBBB k2"]})
        self.host.ret("guest-ssh-add-authorized-keys",
                      {"username": self.user, "keys": ["ssh-ed25519 CCCC k3"]}, timeout=30)
        self.assertEqual(self.content(),
                         b"ssh-ed25519 AAAA k1\n# note\nssh-rsa BBBB k2\nssh-ed25519 CCCC k3\n")
        self.put(b"ssh-ed25519 AAAA k1\nssh-rsa BBBB k2")
        self.host.ret("guest-ssh-remove-authorized-keys",
                      {"username": self.user, "keys": ["ssh-rsa BBBB k2"]}, timeout=30)
        self.assertEqual(self.content(), b"ssh-ed25519 AAAA k1\n")
        self.put(b"k")  # one byte
        self.assertEqual(self.get(), {"keys": ["k"]})

    def test_odd_bytes(self):
        self.put(b"ssh-ed25519 AAAA \xff\xfe\n\x00hidden\n\r\n")
        self.assertEqual(self.get(), {"keys": ["ssh-ed25519 AAAA \ufffd\ufffd"]})

    def test_password(self):
        self.assertEqual(self.host.ret("guest-set-user-password",
                                       {"username": self.user, "password": b64(b"s3cret"),
                                        "crypted": False}, timeout=30), {})
        e = self.host.qerr("guest-set-user-password",
                           {"username": self.user, "password": b64(b"a\nb"), "crypted": False})
        self.assertEqual(e["class"], "GenericError")


class ZzCoverage(unittest.TestCase):
    """Last (by name): every qemu-ga command guestd supports was sent."""

    def test_zz_every_qga_command_was_sent(self):
        if len(sys.argv) > 1:
            self.skipTest("a partial run (tests named on the command line)")
        self.assertEqual(QGA_SUPPORTED - SENT, set())
        # service.* runs only where a private /run/systemd could be mounted.
        want = NATIVE if Services.started else {c for c in NATIVE if not c.startswith("service.")}
        self.assertEqual(want - SENT, set())


if __name__ == "__main__":
    unittest.main(verbosity=2)
