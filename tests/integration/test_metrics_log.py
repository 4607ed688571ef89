"""The metrics log of a real guestd: lines byte for byte as the host got
them, rotation with no line split, a crash (SIGKILL, then a line cut short)
and a restart that leaves no torn line, and a full tmpfs that health reports
and that logging survives, resuming by itself when space returns."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import Agent, listening  # noqa: E402


def lines_of(path):
    """The lines of a log file; fails on a partial or non-JSON line."""
    with open(path, "rb") as f:
        data = f.read()
    assert data == b"" or data.endswith(b"\n"), "%s ends in a partial line" % path
    out = data.split(b"\n")[:-1]
    for line in out:
        json.loads(line)
    return out


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def log_agent(path, *extra):
    # Agent() turns the log off by default; a later --set wins.
    return listening(Agent("--set", "metrics.log_path=" + path, "--set", "health.min_free_bytes=0",
                           *extra))


class LogTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="guestd-mlog-")
        self.path = os.path.join(self.tmp.name, "log", "metrics.ndjson")

    def tearDown(self):
        self.tmp.cleanup()

    def test_lines_are_the_events_the_host_got(self):
        with log_agent(self.path, "--set", "metrics.interval_ms=100",
                       "--set", "health.interval_ms=250") as agent:
            host = agent.connect()
            raw = b""
            host.s.settimeout(5)
            deadline = time.time() + 1.5
            while time.time() < deadline:
                raw += host.s.recv(1 << 16)
            host.close()
            got = [line for line in raw.split(b"\n")[:-1]
                   if json.loads(line).get("event") in ("metrics", "health")]
            self.assertGreater(len(got), 8)
            wait_until(lambda: set(got) <= set(lines_of(self.path)), what="the log to catch up")
            logged = lines_of(self.path)
            events = {json.loads(line)["event"] for line in logged}
            self.assertEqual(events, {"metrics", "health"})  # no hello, no replies
            seqs = [json.loads(line)["seq"] for line in logged]
            self.assertEqual(seqs, sorted(set(seqs)))

    def test_rotation_keeps_whole_lines_in_order(self):
        with log_agent(self.path, "--set", "metrics.interval_ms=100",
                       "--set", "metrics.log_max_bytes=8192", "--set", "metrics.log_keep=2"):
            wait_until(lambda: os.path.exists(self.path + ".2"), what="two rotations")
            time.sleep(0.3)
        names = [self.path + ".2", self.path + ".1", self.path]
        self.assertFalse(os.path.exists(self.path + ".3"))
        seqs = []
        for name in names:
            lines = lines_of(name)
            self.assertTrue(lines)
            size = os.path.getsize(name)
            # Under the limit, unless a single line is bigger than it.
            self.assertTrue(size <= 8192 or len(lines) == 1, "%s: %d bytes" % (name, size))
            seqs += [json.loads(line)["seq"] for line in lines]
        self.assertEqual(seqs, sorted(set(seqs)))

    def test_crash_and_restart_leave_no_torn_line(self):
        agent = log_agent(self.path, "--set", "metrics.interval_ms=100")
        wait_until(lambda: os.path.exists(self.path) and len(lines_of(self.path)) > 5,
                   what="some lines")
        os.kill(agent.pid(), signal.SIGKILL)
        agent.proc.wait()
        agent.stop()
        before = lines_of(self.path)  # one write per line: SIGKILL tears none
        # A crash mid-write (power cut) leaves a partial line: simulate it.
        with open(self.path, "ab") as f:
            f.write(before[-1][: len(before[-1]) // 2])
        with log_agent(self.path, "--set", "metrics.interval_ms=100") as agent:
            wait_until(lambda: len(lines_of_lenient(self.path)) > len(before) + 3,
                       what="new lines after the restart")
            self.assertIn("cut %d bytes of a partial last line" % (len(before[-1]) // 2),
                          agent.stderr())
        after = lines_of(self.path)
        self.assertEqual(after[: len(before)], before)


def lines_of_lenient(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


class DiskFullTest(unittest.TestCase):
    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="guestd-full-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.skipTest("cannot mount a tmpfs (needs root): " + r.stderr.strip())

    def tearDown(self):
        subprocess.run(["umount", self.mnt], check=True)
        os.rmdir(self.mnt)

    def test_full_disk_is_reported_and_logging_resumes(self):
        path = os.path.join(self.mnt, "metrics.ndjson")
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"f" * 40960)
        with log_agent(path, "--set", "metrics.interval_ms=100",
                       "--set", "metrics.log_max_bytes=1048576") as agent:
            host = agent.connect()

            def log_check():
                r = host.call("health.get")["result"]
                return next(c for c in r["checks"] if c["name"] == "metrics_log"), r

            wait_until(lambda: log_check()[0]["status"] == "degraded", what="the disk to fill")
            check, report = log_check()
            self.assertIn("No space left on device", check["detail"])
            self.assertFalse(report["metrics_log"]["ok"])
            self.assertGreater(report["metrics_log"]["lines_lost"], 0)
            self.assertTrue(host.call("ping")["ok"])  # the agent carries on
            full = lines_of(path)  # whole lines only
            os.unlink(filler)
            wait_until(lambda: log_check()[0]["status"] == "ok", what="logging to resume")
            wait_until(lambda: len(lines_of(path)) > len(full), what="new lines")
            self.assertIn("writing to %s again" % path, agent.stderr())
            host.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
