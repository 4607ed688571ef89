#!/usr/bin/env python3
"""Every child the real guestd starts begins from one fixed environment
(PATH, LANG=C.UTF-8, HOME=/root): exec, guest-exec and the power command
(one runner, commands/child.c, behind them all);
and inherits no descriptor of the agent's but its stdio.
The agent runs here with what systemd gives it (NOTIFY_SOCKET,
WATCHDOG_USEC, GLIBC_TUNABLES) and a PATH and HOME of its own; none of it
may reach a child. (systemctl's environment is checked in
tests/check_service.c against a stand-in systemctl.)"""

import base64
import json
import os
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import Agent, scaled  # noqa: E402

BASE = ["HOME=/root", "LANG=C.UTF-8",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
SYSTEMD_ENV = {"NOTIFY_SOCKET": None,  # set to a real socket below
               "WATCHDOG_USEC": "60000000",
               "GLIBC_TUNABLES": "glibc.malloc.tcache_max=256",
               "HOME": "/home/agent-home",
               "PATH": "/opt/agent-only/bin:" + os.environ.get("PATH", "/usr/bin:/bin")}


def entries(raw):
    """The sorted NAME=value entries of a /proc/PID/environ."""
    return sorted(e for e in raw.decode().split("\0") if e)


class QgaPort:
    def __init__(self, path):
        deadline = time.time() + scaled(10)
        while True:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rb")

    def call(self, execute, arguments):
        self.s.sendall(json.dumps({"execute": execute, "arguments": arguments}).encode() + b"\n")
        self.s.settimeout(scaled(10))
        return json.loads(self.f.readline().lstrip(b"\xff"))

    def close(self):
        self.f.close()
        self.s.close()


class ChildEnvironment(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="guestd-env-")
        d = cls.tmp.name
        cls.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        cls.notify.bind(os.path.join(d, "notify"))
        cls.qga_sock = os.path.join(d, "qga.sock")
        cls.power_out = os.path.join(d, "power.environ")
        saved = dict(os.environ)
        for k, v in SYSTEMD_ENV.items():
            os.environ[k] = v if v is not None else os.path.join(d, "notify")
        try:
            cls.agent = Agent("--set", "channel.qga_spec=unix-listen:" + cls.qga_sock,
                              "--set", "commands.reboot_argv=cp /proc/self/environ " + cls.power_out,
                              "--set", "metrics.log_path=" + os.path.join(d, "metrics.ndjson"),
                              "--set", "metrics.interval_ms=100")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        cls.host = cls.agent.connect()

    @classmethod
    def tearDownClass(cls):
        cls.host.close()
        cls.agent.stop()
        cls.notify.close()
        cls.tmp.cleanup()

    def test_agent_has_the_systemd_environment(self):
        # Else the test below proves nothing.
        with open("/proc/%d/environ" % self.agent.pid(), "rb") as f:
            names = {e.split("=", 1)[0] for e in entries(f.read())}
        self.assertTrue({"NOTIFY_SOCKET", "WATCHDOG_USEC", "GLIBC_TUNABLES"} <= names)

    def test_exec(self):
        r = self.host.call("exec", {"argv": ["cat", "/proc/self/environ"]})
        self.assertTrue(r["ok"], r)
        self.assertEqual(entries(r["result"]["stdout"].encode()), BASE)

    def test_exec_adds_the_request_env(self):
        r = self.host.call("exec", {"argv": ["cat", "/proc/self/environ"], "env": {"FOO": "1"}})
        self.assertEqual(entries(r["result"]["stdout"].encode()), ["FOO=1"] + BASE)

    def test_exec_inherits_only_stdio(self):
        # Every descriptor the agent holds (sockets, the metrics log, /proc
        # files of the collectors) is close-on-exec: ls sees 0-2 and its own.
        time.sleep(0.3)  # the metrics log is open by now
        r = self.host.call("exec", {"argv": ["ls", "/proc/self/fd"]})
        self.assertTrue(r["ok"], r)
        self.assertEqual(sorted(int(x) for x in r["result"]["stdout"].split()), [0, 1, 2, 3])

    def guest_exec(self, path, args):
        """Runs path through the qemu-ga dialect's guest-exec; its stdout."""
        q = QgaPort(self.qga_sock)
        try:
            pid = q.call("guest-exec", {"path": path, "arg": args,
                                        "capture-output": True})["return"]["pid"]
            deadline = time.time() + scaled(10)
            while True:
                st = q.call("guest-exec-status", {"pid": pid})["return"]
                if st["exited"] or time.time() > deadline:
                    break
                time.sleep(0.02)
            self.assertEqual(st.get("exitcode"), 0, st)
            return base64.b64decode(st.get("out-data", ""))
        finally:
            q.close()

    def test_guest_exec(self):
        self.assertEqual(entries(self.guest_exec("cat", ["/proc/self/environ"])), BASE)

    def test_exec_and_guest_exec_see_the_same_env(self):
        # One runner behind both dialects: env(1)'s whole output is the
        # same, line for line, and is the base (nothing of the agent's).
        r = self.host.call("exec", {"argv": ["env"]})
        self.assertTrue(r["ok"], r)
        native = sorted(r["result"]["stdout"].splitlines())
        qga = sorted(self.guest_exec("env", []).decode().splitlines())
        self.assertEqual(native, qga)
        self.assertEqual(native, BASE)

    def test_power(self):
        r = self.host.call("power.reboot")
        self.assertTrue(r["ok"], r)
        deadline = time.time() + scaled(10)
        while not (os.path.exists(self.power_out) and os.path.getsize(self.power_out)):
            self.assertLess(time.time(), deadline, "the power command did not run")
            time.sleep(0.02)
        time.sleep(0.1)  # cp may still be writing
        with open(self.power_out, "rb") as f:
            self.assertEqual(entries(f.read()), BASE)


if __name__ == "__main__":
    unittest.main()
