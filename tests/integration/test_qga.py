#!/usr/bin/env python3
"""qemu-ga's protocol spoken to the real guestd on unix sockets, and the same
requests to the real qemu-ga of this machine (the qemu-guest-agent package)
for comparison: the same kind of reply (return or error, error class), the
same member names, and the same values where the guest is the same (host
name, OS, time zone, CPUs, disks, file systems, exec results, file I/O).

Also what qemu-ga's hosts rely on: requests framed without newlines, the
0xFF resync byte and guest-sync-delimited's 0xFF, exact 64-bit ids; no
events on a qemu-ga connection; both protocols on one agent, on one
channel and on two (channel.qga_spec); the policy and concurrency bound;
guest-shutdown answering only failures.

Nothing here changes the machine it runs on: no freeze (tests/e2e/
test_libvirt.py freezes in a VM), no trim, no clock setting, no password or
authorized_keys of a real user (only their errors)."""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import Agent  # noqa: E402

QEMU_GA = shutil.which("qemu-ga") or ("/usr/sbin/qemu-ga" if os.path.exists("/usr/sbin/qemu-ga") else None)


class Qga:
    """A qemu-ga host: raw bytes out, replies (one JSON object per line,
    possibly after a 0xFF) in."""

    def __init__(self, path, timeout=10):
        deadline = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.buf = b""

    def send_raw(self, data):
        self.s.sendall(data)

    def read(self, timeout=10):
        """The next reply as (object, delimited)."""
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no reply within %.1f s" % timeout)
            self.s.settimeout(left)
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        delimited = line.startswith(b"\xff")
        return json.loads(line.lstrip(b"\xff")), delimited

    def nothing_within(self, seconds):
        """True when no byte arrives within seconds."""
        if self.buf:
            return False
        self.s.settimeout(seconds)
        try:
            chunk = self.s.recv(1 << 16)
        except socket.timeout:
            return True
        self.buf += chunk
        return False

    def call(self, execute, arguments=None, **extra):
        req = {"execute": execute}
        if arguments is not None:
            req["arguments"] = arguments
        req.update(extra)
        self.send_raw(json.dumps(req).encode() + b"\n")
        return self.read()[0]

    def close(self):
        self.s.close()


class RealQemuGa:
    """qemu-ga itself on a unix socket in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="guestd-qga-ref-")
        self.sock = os.path.join(self.dir, "qga.sock")
        self.proc = subprocess.Popen([QEMU_GA, "-m", "unix-listen", "-p", self.sock, "-t", self.dir,
                                      "-f", os.path.join(self.dir, "qga.pid")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("qemu-ga did not listen")
            time.sleep(0.02)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def shape(v):
    """The type of a reply value, as JSON names it."""
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            int: "number", float: "number", type(None): "null"}[type(v)]


def keys_of(items):
    out = set()
    for it in items:
        out |= set(it)
    return out


# Members guestd adds to qemu-ga 7.2's replies (both are in QEMU's current
# schema): a disk's serial from sysfs (qemu-ga reads it from udev, which
# this machine may not run) and total-bytes-privileged (QEMU 9.1).
EXTRA_DISK = {"serial"}
EXTRA_FS = {"total-bytes-privileged"}


def address(d):
    """A GuestDiskAddress as compared: whole for virtio disks; for other
    controllers (SATA, IDE, LSI) qemu-ga numbers bus and unit by walking the
    SCSI hosts, which guestd does not, so only where the disk is."""
    d = {k: v for k, v in d.items() if k not in EXTRA_DISK}
    if d.get("bus-type") != "virtio":
        d = {k: d.get(k) for k in ("pci-controller", "bus-type", "dev")}
    return d


@unittest.skipUnless(QEMU_GA, "qemu-ga is not installed (packaging/install-deps.sh installs it)")
class CompareWithQemuGa(unittest.TestCase):
    """The same requests to guestd and to qemu-ga; the answers compared."""

    @classmethod
    def setUpClass(cls):
        cls.ref = RealQemuGa()
        cls.agent = Agent("--set", "channel.dialect=qemu-ga")
        cls.tmp = tempfile.mkdtemp(prefix="guestd-qga-")

    @classmethod
    def tearDownClass(cls):
        cls.ref.stop()
        cls.agent.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.g = Qga(self.agent.sock)
        self.q = Qga(self.ref.sock)

    def tearDown(self):
        self.g.close()
        self.q.close()

    def both(self, execute, arguments=None, **extra):
        return self.g.call(execute, arguments, **extra), self.q.call(execute, arguments, **extra)

    def same_kind(self, execute, arguments=None, **extra):
        g, q = self.both(execute, arguments, **extra)
        self.assertEqual(set(g), set(q), (execute, g, q))
        if "error" in q:
            self.assertEqual(g["error"]["class"], q["error"]["class"], (g, q))
        else:
            self.assertEqual(shape(g["return"]), shape(q["return"]), (execute, g, q))
        return g, q

    def test_ping_sync_and_ids(self):
        for args, extra in [(None, {}), (None, {"id": "x1"}), (None, {"id": {"a": [1, 2]}}),
                            (None, {"id": None})]:
            g, q = self.both("guest-ping", args, **extra)
            self.assertEqual(g, q)
        big = 2 ** 62 + 1  # past 2^53: a double would round it
        for n in (5, -5, big, 9007199254740993):
            g, q = self.both("guest-sync", {"id": n})
            self.assertEqual(g, q)
            self.assertEqual(g["return"], n)

    def test_errors_match_in_class_and_words(self):
        exact = [
            ({"execute": "nope"}, None),
            ({"execute": "guest-ping", "arguments": {"x": 1}}, None),
            ({"foo": 1}, None),
            ({"foo": 1, "id": 8}, None),
            ({"id": 1}, None),
            ({"execute": 1}, None),
            ({"execute": "guest-ping", "arguments": []}, None),
            ({"execute": "guest-sync", "arguments": {}}, None),
            ({"execute": "guest-sync", "arguments": {"id": "a"}}, None),
            ({"execute": "guest-sync", "arguments": {"id": 1.5}}, None),
            ({"execute": "guest-exec-status", "arguments": {"pid": 999999}}, None),
            ({"execute": "guest-file-read", "arguments": {"handle": 12345}}, None),
            ({"execute": "guest-shutdown", "arguments": {"mode": "bogus"}}, None),
        ]
        for req, _ in exact:
            raw = json.dumps(req).encode() + b"\n"
            self.g.send_raw(raw)
            self.q.send_raw(raw)
            g, q = self.g.read()[0], self.q.read()[0]
            self.assertEqual(g, q, req)
        for raw in (b"[1]\n", b'"str"\n', b"5 \n"):
            self.g.send_raw(raw)
            self.q.send_raw(raw)
            self.assertEqual(self.g.read()[0], self.q.read()[0], raw)
        # Parse errors: same class; the words are each parser's own.
        for raw in (b"garbage\n", b'{"execute":"guest-ping","execute":"guest-info"}\n'):
            self.g.send_raw(raw)
            self.q.send_raw(raw)
            g, q = self.g.read()[0], self.q.read()[0]
            self.assertEqual(g["error"]["class"], q["error"]["class"])
            self.assertIn("JSON parse error", g["error"]["desc"])

    def test_framing_without_newlines_and_resync(self):
        for c in (self.g, self.q):
            c.send_raw(b'{"execute":"guest-sync","arguments":{"id":5}}'
                       b'{"execute":"guest-sync-delimited","arguments":{"id":6}}'
                       b'{"execute":"guest-ping"}')
        for c in (self.g, self.q):
            self.assertEqual(c.read(), ({"return": 5}, False))
            self.assertEqual(c.read(), ({"return": 6}, True))  # 0xFF first
            self.assertEqual(c.read(), ({"return": {}}, False))
        # A partial request from a previous host, dropped by 0xFF.
        for c in (self.g, self.q):
            c.send_raw(b'{"execute":"guest-sy')
            time.sleep(0.1)
            c.send_raw(b'\xff{"execute":"guest-sync-delimited","arguments":{"id":7}}')
        for c in (self.g, self.q):
            msg, delimited = c.read()
            while "error" in msg:  # both report the cut message
                msg, delimited = c.read()
            self.assertEqual((msg, delimited), ({"return": 7}, True))
        # One request byte by byte.
        for c in (self.g, self.q):
            for b in b'{"execute": "guest-sync", "arguments": {"id": 42}}':
                c.send_raw(bytes([b]))
        for c in (self.g, self.q):
            self.assertEqual(c.read()[0], {"return": 42})

    def test_identity_is_the_same_guest(self):
        for cmd in ("guest-get-host-name", "guest-get-timezone", "guest-get-osinfo",
                    "guest-get-users", "guest-fsfreeze-status"):
            g, q = self.both(cmd)
            self.assertEqual(g, q, cmd)
        g, q = self.both("guest-get-vcpus")  # the order is unspecified
        key = lambda c: c["logical-id"]  # noqa: E731
        self.assertEqual(sorted(g["return"], key=key), sorted(q["return"], key=key))
        g, q = self.both("guest-get-time")
        self.assertIsInstance(g["return"], int)
        self.assertLess(abs(g["return"] - q["return"]), 5 * 10 ** 9)

    def test_counters_name_the_same_things(self):
        g, q = self.same_kind("guest-get-cpustats")
        self.assertEqual([c["cpu"] for c in g["return"]], sorted(c["cpu"] for c in q["return"]))
        self.assertEqual(keys_of(g["return"]), keys_of(q["return"]))
        g, q = self.same_kind("guest-get-diskstats")
        self.assertEqual({d["name"] for d in g["return"]}, {d["name"] for d in q["return"]})
        self.assertEqual(keys_of(d["stats"] for d in g["return"]),
                         keys_of(d["stats"] for d in q["return"]))
        for d in g["return"]:
            qd = next(x for x in q["return"] if x["name"] == d["name"])
            self.assertEqual((d["major"], d["minor"]), (qd["major"], qd["minor"]))
        g, q = self.same_kind("guest-network-get-interfaces")
        self.assertEqual([i["name"] for i in g["return"]], [i["name"] for i in q["return"]])
        for gi, qi in zip(g["return"], q["return"]):
            self.assertEqual(set(gi), set(qi), gi["name"])
            self.assertEqual(gi.get("hardware-address"), qi.get("hardware-address"))
            self.assertEqual(gi.get("ip-addresses"), qi.get("ip-addresses"))
            if "statistics" in qi:
                self.assertEqual(set(gi["statistics"]), set(qi["statistics"]))

    def test_filesystems_and_disks(self):
        g, q = self.same_kind("guest-get-fsinfo")
        self.assertEqual({f["mountpoint"] for f in g["return"]},
                         {f["mountpoint"] for f in q["return"]})
        for f in g["return"]:
            qf = next(x for x in q["return"] if x["mountpoint"] == f["mountpoint"])
            self.assertEqual(set(f) - EXTRA_FS, set(qf), f["mountpoint"])
            self.assertEqual((f["name"], f["type"]), (qf["name"], qf["type"]))
            self.assertEqual(f["total-bytes"], qf["total-bytes"])
            self.assertEqual([address(d) for d in f["disk"]], [address(d) for d in qf["disk"]])
        g, q = self.same_kind("guest-get-disks")
        self.assertEqual({d["name"] for d in g["return"]}, {d["name"] for d in q["return"]})
        for d in g["return"]:
            qd = next(x for x in q["return"] if x["name"] == d["name"])
            self.assertEqual((d["partition"], d.get("dependencies")),
                             (qd["partition"], qd.get("dependencies")))
            if "address" in qd:
                self.assertEqual(address(d["address"]), address(qd["address"]))
        g, q = self.both("guest-fsfreeze-thaw")  # nothing frozen: nothing thawed
        self.assertEqual(g, q)

    def test_info_lists_supported_commands(self):
        g, q = self.same_kind("guest-info")
        info = g["return"]
        self.assertEqual(set(info), set(q["return"]))
        names = {c["name"]: c for c in info["supported_commands"]}
        self.assertEqual(set(info["supported_commands"][0]), {"name", "enabled", "success-response"})
        for c in ("guest-ping", "guest-sync-delimited", "guest-exec", "guest-get-fsinfo",
                  "guest-fsfreeze-freeze", "guest-set-user-password", "guest-get-load"):
            self.assertTrue(names[c]["enabled"], c)
        self.assertFalse(names["guest-shutdown"]["success-response"])
        qnames = {c["name"]: c for c in q["return"]["supported_commands"]}
        for name, c in names.items():
            if name in qnames:
                self.assertEqual(c["success-response"], qnames[name]["success-response"], name)

    def exec_status(self, c, pid, timeout=10):
        deadline = time.time() + timeout
        while True:
            r = c.call("guest-exec-status", {"pid": pid})["return"]
            if r["exited"] or time.time() > deadline:
                return r
            time.sleep(0.05)

    def test_exec_and_status(self):
        cases = [
            {"path": "/bin/sh", "arg": ["-c", "echo hi; echo err >&2; exit 3"], "capture-output": True},
            {"path": "sh", "arg": ["-c", "kill -9 $$"]},
            {"path": "cat", "input-data": base64.b64encode(b"in\x00put").decode(),
             "capture-output": True},
            {"path": "sh", "arg": ["-c", "echo $X"], "env": ["X=from-env"], "capture-output": True},
            {"path": "true", "capture-output": True},
        ]
        for args in cases:
            gp = self.g.call("guest-exec", args)["return"]["pid"]
            qp = self.q.call("guest-exec", args)["return"]["pid"]
            g, q = self.exec_status(self.g, gp), self.exec_status(self.q, qp)
            self.assertEqual(g, q, args)
            self.assertTrue(g["exited"])
            # Collected: the pid is forgotten.
            self.assertEqual(self.g.call("guest-exec-status", {"pid": gp}),
                             self.q.call("guest-exec-status", {"pid": qp}))
        # capture-output's modes (QEMU 8.0; this qemu-ga may be older).
        gp = self.g.call("guest-exec", {"path": "sh", "arg": ["-c", "echo out; echo err >&2"],
                                        "capture-output": "merged"})["return"]["pid"]
        self.assertEqual(self.exec_status(self.g, gp),
                         {"exited": True, "exitcode": 0, "out-truncated": False,
                          "out-data": base64.b64encode(b"out\nerr\n").decode()})
        gp = self.g.call("guest-exec", {"path": "sh", "arg": ["-c", "echo out; echo err >&2"],
                                        "capture-output": "stderr"})["return"]["pid"]
        self.assertEqual(self.exec_status(self.g, gp),
                         {"exited": True, "exitcode": 0, "err-truncated": False,
                          "err-data": base64.b64encode(b"err\n").decode()})
        g, q = self.both("guest-exec", {"path": "/nonexistent"})
        self.assertEqual(g, q)
        gp = self.g.call("guest-exec", {"path": "sleep", "arg": ["1"]})["return"]["pid"]
        self.assertEqual(self.g.call("guest-exec-status", {"pid": gp}), {"return": {"exited": False}})
        self.assertTrue(os.path.exists("/proc/%d" % gp))  # the real pid
        self.assertEqual(self.exec_status(self.g, gp), {"exited": True, "exitcode": 0})

    def test_file_handles(self):
        def session(c, path):
            out = []
            h = c.call("guest-file-open", {"path": path, "mode": "w+"})["return"]
            self.assertIsInstance(h, int)
            for req, args in [("guest-file-write", {"buf-b64": base64.b64encode(b"hello\n").decode()}),
                              ("guest-file-seek", {"offset": 0, "whence": "set"}),
                              ("guest-file-read", {}),
                              ("guest-file-seek", {"offset": 0, "whence": 1}),
                              ("guest-file-seek", {"offset": -2, "whence": "end"}),
                              ("guest-file-read", {"count": 1}),
                              ("guest-file-flush", {}),
                              ("guest-file-close", {}),
                              ("guest-file-close", {})]:
                r = c.call(req, dict(args, handle=h))
                if "error" in r:
                    r = {"error": {"class": r["error"]["class"],
                                   "desc": r["error"]["desc"].replace(str(h), "H")}}
                out.append(r)
            return out
        g = session(self.g, os.path.join(self.tmp, "g.txt"))
        q = session(self.q, os.path.join(self.tmp, "q.txt"))
        self.assertEqual(g, q)
        with open(os.path.join(self.tmp, "g.txt"), "rb") as f:
            self.assertEqual(f.read(), b"hello\n")
        self.assertEqual(os.stat(os.path.join(self.tmp, "g.txt")).st_mode & 0o777, 0o600)
        missing = os.path.join(self.tmp, "no", "such")
        g, q = self.both("guest-file-open", {"path": missing})
        self.assertEqual(g, q)
        g, q = self.both("guest-file-open", {"path": missing, "mode": "rw"})
        self.assertEqual((g["error"]["class"]), q["error"]["class"])

    def test_user_errors(self):
        user = "guestd-no-such-user"
        g, q = self.both("guest-set-user-password",
                         {"username": user, "password": base64.b64encode(b"pw").decode(),
                          "crypted": False})
        self.assertEqual(g, q)
        g, q = self.both("guest-set-user-password",
                         {"username": "a:b", "password": "cHc=", "crypted": False})
        self.assertEqual(g, q)
        for cmd, args in [("guest-ssh-get-authorized-keys", {"username": user}),
                          ("guest-ssh-add-authorized-keys", {"username": user, "keys": ["k1"]}),
                          ("guest-ssh-add-authorized-keys", {"username": "root", "keys": ["#bad"]})]:
            g, q = self.both(cmd, args)
            self.assertEqual(g["error"]["class"], q["error"]["class"], cmd)
            self.assertEqual(g["error"]["desc"].split(":")[0], q["error"]["desc"].split(":")[0], cmd)


def wait_detached(agent, count, timeout=5):
    """Until the agent has logged count host detaches."""
    deadline = time.time() + timeout
    while agent.stderr().count("host detached") < count:
        if time.time() > deadline:
            raise TimeoutError("the agent did not notice the host leave")
        time.sleep(0.01)


class Dialects(unittest.TestCase):
    """One agent, both protocols."""

    def test_auto_channel_answers_each_connection_in_its_own(self):
        with Agent("--set", "metrics.interval_ms=200") as agent:
            host = agent.connect()  # guestd: hello, then events
            self.assertTrue(host.call("ping")["ok"])
            host.wait_event("metrics", timeout=3)
            # The agent takes one host at a time: the guestd host leaves first.
            host.close()
            wait_detached(agent, 1)
            q = Qga(agent.sock)
            q.send_raw(b'{"execute":"guest-sync","arguments":{"id":1}}')  # no newline
            # A hello may come before the first message decided the dialect...
            msg, _ = q.read()
            while "event" in msg:
                msg, _ = q.read()
            self.assertEqual(msg, {"return": 1})
            # ... but no event after: metrics come every 200 ms on guestd hosts.
            self.assertTrue(q.nothing_within(0.8))
            # A guestd request on this connection is still answered in guestd's words.
            q.send_raw(b'{"id":7,"cmd":"ping"}\n')
            self.assertEqual(q.read()[0], {"id": 7, "ok": True, "result": {"pong": True}})
            q.close()

    def test_guestd_connection_may_send_qemu_ga_requests(self):
        with Agent() as agent:
            host = agent.connect()
            host.send_raw(b'{"execute":"guest-sync","arguments":{"id":3}}\n')
            msg = host.wait_for(lambda m: "return" in m or "error" in m)
            self.assertEqual(msg, {"return": 3})
            self.assertTrue(host.call("ping")["ok"])

    def test_pinned_guestd_channel_knows_no_execute(self):
        with Agent("--set", "channel.dialect=guestd") as agent:
            host = agent.connect()
            host.send({"execute": "guest-ping"})
            r = host.response()
            self.assertEqual(r["error"]["code"], "invalid_request")

    def test_two_ports_at_once(self):
        d = tempfile.mkdtemp(prefix="guestd-qga2-")
        port = os.path.join(d, "qga.sock")
        try:
            with Agent("--set", "channel.qga_spec=unix-listen:" + port,
                       "--set", "metrics.interval_ms=200") as agent:
                host = agent.connect()
                q = Qga(port)
                self.assertEqual(q.call("guest-ping", id=1), {"return": {}, "id": 1})
                self.assertTrue(host.call("ping")["ok"])
                host.wait_event("metrics", timeout=3)  # guestd's stream goes on
                self.assertTrue(q.nothing_within(0.5))  # and never reaches qemu-ga's port
                # The second port is pinned to qemu-ga's protocol.
                q.send_raw(b'{"id":1,"cmd":"ping"}\n')
                r = q.read()[0]
                self.assertEqual(r["error"], {"class": "GenericError",
                                              "desc": "QMP input member 'cmd' is unexpected"})
                q.close()
                wait_detached(agent, 1)
                q = Qga(port)  # hosts come and go on it too
                self.assertEqual(q.call("guest-sync", {"id": 11}), {"return": 11})
                q.close()
                host.close()
            self.assertFalse(os.path.exists(port))
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_second_port_must_differ_from_the_first(self):
        agent_args = ["--channel", "unix-listen:/tmp/x.sock", "--set",
                      "channel.qga_spec=unix-listen:/tmp/x.sock", "-c", "/dev/null"]
        from host import GUESTD
        r = subprocess.run([GUESTD] + agent_args, stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"channel.qga_spec", r.stderr)


class PolicyAndLimits(unittest.TestCase):
    def test_policy_disables_like_qemu_ga_block_list(self):
        with Agent("--set", "channel.dialect=qemu-ga",
                   "--set", "commands.deny=guest-get-time,exec") as agent:
            q = Qga(agent.sock)
            r = q.call("guest-get-time")
            self.assertEqual(r, {"error": {"class": "CommandNotFound",
                                           "desc": "Command guest-get-time has been disabled"}})
            r = q.call("guest-exec", {"path": "true"})  # guestd's exec is denied
            self.assertEqual(r["error"]["class"], "CommandNotFound")
            info = {c["name"]: c["enabled"] for c in q.call("guest-info")["return"]["supported_commands"]}
            self.assertFalse(info["guest-get-time"])
            self.assertFalse(info["guest-exec"])
            self.assertTrue(info["guest-ping"])
            q.close()

    def test_running_children_count_against_max_concurrent(self):
        with Agent("--set", "channel.dialect=qemu-ga", "--set", "commands.max_concurrent=1") as agent:
            q = Qga(agent.sock)
            pid = q.call("guest-exec", {"path": "sleep", "arg": ["1"]})["return"]["pid"]
            r = q.call("guest-exec", {"path": "true"})
            self.assertIn("commands.max_concurrent", r["error"]["desc"])
            deadline = time.time() + 10
            while not q.call("guest-exec-status", {"pid": pid})["return"]["exited"]:
                self.assertLess(time.time(), deadline)
                time.sleep(0.05)
            self.assertIn("return", q.call("guest-exec", {"path": "true"}))
            q.close()

    def test_shutdown_answers_only_failures(self):
        d = tempfile.mkdtemp(prefix="guestd-qga-sd-")
        mark = os.path.join(d, "powered-off")
        try:
            with Agent("--set", "channel.dialect=qemu-ga",
                       "--set", "commands.poweroff_argv=touch " + mark,
                       "--set", "commands.reboot_argv=/nonexistent/reboot") as agent:
                q = Qga(agent.sock)
                q.send_raw(b'{"execute":"guest-shutdown","id":1}{"execute":"guest-ping","id":2}')
                self.assertEqual(q.read()[0], {"return": {}, "id": 2})  # nothing for id 1
                deadline = time.time() + 5
                while not os.path.exists(mark):
                    self.assertLess(time.time(), deadline, agent.stderr())
                    time.sleep(0.02)
                r = q.call("guest-shutdown", {"mode": "reboot"}, id=3)
                self.assertEqual(r["error"]["class"], "GenericError")
                self.assertEqual(r["id"], 3)
                self.assertIn("/nonexistent/reboot", r["error"]["desc"])
                q.close()
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_stopping_with_a_child_running_exits_cleanly(self):
        agent = Agent("--set", "channel.dialect=qemu-ga")
        q = Qga(agent.sock)
        pid = q.call("guest-exec", {"path": "sleep", "arg": ["30"]})["return"]["pid"]
        h = q.call("guest-file-open", {"path": "/dev/null"})["return"]
        self.assertIsInstance(h, int)
        q.close()
        self.assertEqual(agent.stop(), 0)
        time.sleep(0.1)
        try:
            with open("/proc/%d/stat" % pid, errors="replace") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            state = "gone"
        self.assertIn(state, ("gone", "Z", "X"))  # killed with the agent


if __name__ == "__main__":
    unittest.main(verbosity=2)
