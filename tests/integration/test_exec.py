#!/usr/bin/env python3
"""exec and exec.cancel against the real guestd on a unix socket, spoken to
as a host speaks: limits, process groups, streaming, cancel, the concurrency
bound, the agent's memory under 100 MB of output, and the latency figures
(exec of `true`, ping while 8 execs run) printed for the issue's note."""

import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import unittest

GUESTD = os.environ.get("GUESTD_BIN", "build/guestd")


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def live_members(pgid):
    """PIDs of processes in group pgid that are not zombies (a zombie is dead;
    whether PID 1 reaps it is not the agent's business)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            pids.append(int(name))
    return pids


def wait_group_gone(pgid, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not live_members(pgid):
            return True
        time.sleep(0.01)
    return not live_members(pgid)


class Host:
    """One connection to the agent: requests out, replies matched by id,
    events kept in arrival order next to the replies."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.seen = []  # every message in arrival order
        self.replies = {}
        self.next_id = 1

    def close(self):
        self.sock.close()

    def _read_one(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the agent")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("the agent closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        self.seen.append(msg)
        if "event" not in msg:
            self.replies[json.dumps(msg["id"])] = msg
        return msg

    def wait_event(self, name, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_one(deadline)
            if msg.get("event") == name:
                return msg

    def send(self, cmd, args=None, rid=None):
        if rid is None:
            rid = f"r{self.next_id}"
            self.next_id += 1
        req = {"id": rid, "cmd": cmd}
        if args is not None:
            req["args"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        return rid

    def reply(self, rid, timeout=30.0):
        key = json.dumps(rid)
        deadline = time.monotonic() + timeout
        while key not in self.replies:
            self._read_one(deadline)
        return self.replies.pop(key)

    def call(self, cmd, args=None, timeout=30.0):
        return self.reply(self.send(cmd, args), timeout)


class ExecTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="guestd-exec-")
        self.sock_path = os.path.join(self.dir.name, "agent.sock")
        self.agent = subprocess.Popen(
            [GUESTD, "--channel", f"unix-listen:{self.sock_path}", "-c", "/dev/null",
             "--set", "metrics.log_path=none", "--set", "commands.exec_kill_grace_ms=500"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock_path):
            if self.agent.poll() is not None or time.monotonic() > deadline:
                self.fail("guestd did not start: " + self.agent.stderr.read().decode())
            time.sleep(0.01)
        self.host = Host(self.sock_path)
        self.host.wait_event("hello")

    def tearDown(self):
        self.host.close()
        if self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        self.agent.stderr.close()
        self.dir.cleanup()

    def ok(self, msg):
        self.assertTrue(msg["ok"], msg)
        return msg["result"]

    def error(self, msg):
        self.assertFalse(msg["ok"], msg)
        return msg["error"]

    # ---- basics ----------------------------------------------------------

    def test_true_false_and_latency(self):
        r = self.ok(self.host.call("exec", {"argv": ["false"]}))
        self.assertEqual(r["exit_code"], 1)
        times = []
        for _ in range(100):
            t0 = time.perf_counter()
            r = self.ok(self.host.call("exec", {"argv": ["true"]}))
            times.append((time.perf_counter() - t0) * 1000)
            self.assertEqual(r["exit_code"], 0)
            self.assertIsNone(r["signal"])
        times.sort()
        print(f"\nexec true, start to response over the socket (100 runs): "
              f"median {statistics.median(times):.2f} ms, p90 {times[89]:.2f} ms, "
              f"max {times[-1]:.2f} ms")
        self.assertLess(statistics.median(times), 250)

    def test_stdin_env_cwd(self):
        r = self.ok(self.host.call("exec", {"argv": ["cat"], "stdin": "d\u00e9j\u00e0 vu\n"}))
        self.assertEqual(r["stdout"], "d\u00e9j\u00e0 vu\n")
        r = self.ok(self.host.call("exec", {"argv": ["sh", "-c", "echo $FOO; pwd"],
                                            "env": {"FOO": "bar"}, "cwd": "/tmp"}))
        self.assertEqual(r["stdout"], "bar\n/tmp\n")

    def test_non_utf8_both_encodings(self):
        argv = ["printf", "\\377ok\\n"]
        r = self.ok(self.host.call("exec", {"argv": argv}))
        self.assertEqual(r["stdout"], "\ufffdok\n")
        r = self.ok(self.host.call("exec", {"argv": argv, "encoding": "base64"}))
        self.assertEqual(r["stdout_b64"], "/29rCg==")

    def test_cannot_start(self):
        e = self.error(self.host.call("exec", {"argv": ["/nonexistent/prog"]}))
        self.assertEqual(e["code"], "failed")
        self.assertIn("No such file or directory", e["message"])
        e = self.error(self.host.call("exec", {"argv": ["true"], "cwd": "/nonexistent"}))
        self.assertEqual(e["code"], "failed")
        self.assertIn("/nonexistent", e["message"])
        e = self.error(self.host.call("exec", {"argv": ["true"], "timeout_ms": 3600001}))
        self.assertEqual(e["code"], "invalid_args")

    # ---- limits ------------------------------------------------------------

    def test_timeout_kills_the_group(self):
        t0 = time.monotonic()
        r = self.ok(self.host.call("exec", {
            "argv": ["sh", "-c", "echo $$; sleep 100 & sleep 100"], "timeout_ms": 300}))
        ms = (time.monotonic() - t0) * 1000
        self.assertTrue(r["timed_out"])
        self.assertEqual(r["signal"], "TERM")
        self.assertIsNone(r["exit_code"])
        self.assertGreaterEqual(ms, 300)
        self.assertLess(ms, 300 + 500)  # + commands.exec_kill_grace_ms
        pgid = int(r["stdout"])
        self.assertTrue(wait_group_gone(pgid), live_members(pgid))

    def test_large_output_keeps_memory_flat(self):
        self.ok(self.host.call("exec", {"argv": ["true"]}))  # warm up
        idle = vm_rss_kib(self.agent.pid)
        rid = self.host.send("exec", {"argv": ["head", "-c", "100000000", "/dev/zero"]})
        peak = idle
        t0 = time.monotonic()
        # Sample the agent's RSS until the reply starts to arrive.
        self.host.sock.settimeout(0.005)
        while True:
            peak = max(peak, vm_rss_kib(self.agent.pid))
            try:
                chunk = self.host.sock.recv(1 << 20)
            except socket.timeout:
                continue
            self.host.buf += chunk
            break
        running_peak = peak
        msg = self.host.reply(rid, timeout=60)
        secs = time.monotonic() - t0
        after = vm_rss_kib(self.agent.pid)
        r = self.ok(msg)
        self.assertTrue(r["stdout_truncated"])
        self.assertEqual(len(r["stdout"]), 1048576)
        self.assertEqual(r["exit_code"], 0)
        print(f"\nexec of 100 MB output (1 MiB cap): {secs:.2f} s; agent RSS idle {idle} KiB, "
              f"+{running_peak - idle} KiB while running, +{after - idle} KiB after the reply")
        self.assertLess(running_peak - idle, 4 * 1024)

    # ---- streaming and cancel ------------------------------------------------

    def test_stream_order(self):
        rid = self.host.send("exec", {
            "argv": ["sh", "-c", "printf one; sleep 0.2; printf two >&2; sleep 0.2; printf three"],
            "stream": True})
        r = self.ok(self.host.reply(rid))
        self.assertEqual((r["stdout"], r["stderr"]), ("", ""))
        events = [(m["data"]["stream"], m["data"]["data"]) for m in self.host.seen
                  if m.get("event") == "exec.output" and m["data"]["request_id"] == rid]
        self.assertEqual(events, [("stdout", "one"), ("stderr", "two"), ("stdout", "three")])
        # The response is the last message about this exec.
        last = max(i for i, m in enumerate(self.host.seen)
                   if m.get("event") == "exec.output" or m.get("id") == rid)
        self.assertEqual(self.host.seen[last].get("id"), rid)

    def test_cancel(self):
        rid = self.host.send("exec", {"argv": ["sleep", "100"]})
        time.sleep(0.05)
        self.assertEqual(self.ok(self.host.call("exec.cancel", {"request_id": rid})),
                         {"cancelled": True})
        r = self.ok(self.host.reply(rid, timeout=5))
        self.assertEqual(r["signal"], "TERM")
        self.assertTrue(r["cancelled"])
        e = self.error(self.host.call("exec.cancel", {"request_id": rid}))
        self.assertEqual(e["code"], "not_found")

    def test_eight_execs_pings_busy_and_latency(self):
        ids = [self.host.send("exec", {"argv": ["sleep", "100"]}) for _ in range(8)]
        time.sleep(0.1)
        times = []
        for _ in range(1000):
            t0 = time.perf_counter()
            r = self.ok(self.host.call("ping"))
            times.append((time.perf_counter() - t0) * 1000)
            self.assertEqual(r, {"pong": True})
        times.sort()
        print(f"\nping while 8 execs run (1000 pings): median {statistics.median(times):.3f} ms, "
              f"p99 {times[989]:.3f} ms, max {times[-1]:.3f} ms")
        e = self.error(self.host.call("exec", {"argv": ["true"]}))
        self.assertEqual(e["code"], "busy")
        for rid in ids:
            self.ok(self.host.call("exec.cancel", {"request_id": rid}))
        for rid in ids:
            self.assertEqual(self.ok(self.host.reply(rid, timeout=5))["signal"], "TERM")
        self.ok(self.host.call("exec", {"argv": ["true"]}))  # a slot is free again

    # ---- the agent stops while execs run --------------------------------------

    def test_stop_kills_running_execs(self):
        pidfile = os.path.join(self.dir.name, "pgid")
        self.host.send("exec", {"argv": ["sh", "-c", f"echo $$ > {pidfile}; "
                                         "sleep 100 & sleep 100"]})
        deadline = time.monotonic() + 5
        while not (os.path.exists(pidfile) and open(pidfile).read().strip()):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)
        pgid = int(open(pidfile).read())
        self.agent.send_signal(signal.SIGTERM)
        self.assertEqual(self.agent.wait(timeout=5), 0)
        self.assertTrue(wait_group_gone(pgid), live_members(pgid))


if __name__ == "__main__":
    unittest.main(verbosity=2)
