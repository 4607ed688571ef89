"""Faults injected on purpose into a real guestd on a unix socket: a host that
stops reading, a host that vanishes in the middle of large responses, SIGKILL
while the metrics log is being written, a full disk under the log, exec
floods and a fork bomb. Each test checks what a host would notice: no lost
response, bounded memory, no leaked descriptor, no torn log line, an agent
that keeps answering.

The stall lasts a minute in the plain build, where memory is judged; under
ASan, which judges leaks instead, 20 s (GUESTD_FAULTS_FULL=1: a minute
there too)."""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import GUESTD, Agent, Host  # noqa: E402

FULL = os.environ.get("GUESTD_FAULTS_FULL", "") not in ("", "0")


def sanitized():
    """An ASan build keeps freed memory in quarantine, so its RSS says nothing
    about the agent's: memory bounds are checked in the plain build only
    (the ASan build checks leaks instead: they fail the exit status).
    ctest says which build this is (GUESTD_SANITIZED); by hand, the binary."""
    if os.environ.get("GUESTD_SANITIZED") in ("0", "1"):
        return os.environ["GUESTD_SANITIZED"] == "1"
    try:
        with open(GUESTD, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = sanitized()
STALL_S = 20 if SANITIZED and not FULL else 60


def assert_rss_growth(test, before, after, bound, what):
    """after - before < bound (KiB), where RSS means something."""
    sys.stderr.write("%s: RSS %d -> %d KiB (%+d KiB, bound %d%s)\n"
                     % (what, before, after, after - before, bound,
                        ", not checked: ASan build" if SANITIZED else ""))
    if not SANITIZED:
        test.assertLess(after - before, bound, "%s: RSS grew from %d to %d KiB"
                        % (what, before, after))


def fd_count(pid):
    """Open descriptors, minus the processes collector's /proc/<pid>/stat
    files (it keeps one per process of the machine, which come and go)."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        parts = target.split("/")
        if len(parts) == 4 and parts[1] == "proc" and parts[2].isdigit() and parts[3] == "stat":
            continue
        n += 1
    return n


def wait_until(pred, timeout=10, what="condition", step=0.02):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(step)


def connect_when_listening(agent, timeout=10):
    """A host that connects as soon as the agent takes one: Agent() returns
    once the socket file exists, which is before listen(); and a host that
    just vanished may not have been noticed yet, so the agent still refuses a
    second one (closes it at once)."""
    deadline = time.time() + timeout
    while True:
        host = None
        try:
            host = Host(agent.sock)
            host.hello = host.wait_event("hello")
            return host
        except (ConnectionRefusedError, FileNotFoundError, EOFError, ConnectionResetError):
            if host:
                host.close()
            if time.time() > deadline:
                raise
            time.sleep(0.01)


class HostStopsReadingTest(unittest.TestCase):
    """protocol.md: the out-queue is bounded, responses are never dropped,
    events are (oldest first), and they resume when the host reads again."""

    QUEUE = 262144

    def test_host_stops_reading_while_metrics_run_at_100ms(self):
        with Agent("--set", "metrics.interval_ms=100", "--set", "health.interval_ms=1000",
                   "--set", "channel.out_queue_bytes=%d" % self.QUEUE) as agent:
            host = agent.connect()
            host.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            # Warm up what a session allocates anyway, then take the baseline.
            for i in range(3):
                self.assertTrue(host.call("info", rid="warm%d" % i)["ok"])
                self.assertTrue(host.call("metrics.get", rid="warmm%d" % i)["ok"])
            last_seq = host.wait_event("metrics")["seq"]
            host.pending = [m for m in host.pending if "ok" in m]
            rss0 = agent.status("VmRSS")
            fds0 = fd_count(agent.pid())

            # Far more response bytes than the queue holds, then silence.
            want = set()
            burst = []
            for i in range(300):
                want.add("b%d" % i)
                burst.append(b'{"id":"b%d","cmd":"info"}\n' % i)
            pending = b"".join(burst)
            host.s.setblocking(False)
            rss_max = rss0
            started = time.time()
            tick = 0
            while time.time() - started < STALL_S:
                # A host that still writes (one request a second) but never reads.
                tick += 1
                want.add("p%d" % tick)
                pending += b'{"id":"p%d","cmd":"ping"}\n' % tick
                try:
                    sent = host.s.send(pending)
                    pending = pending[sent:]
                except BlockingIOError:
                    pass
                rss_max = max(rss_max, agent.status("VmRSS"))
                time.sleep(1)
            self.assertIsNone(agent.proc.poll(), "the agent died during the stall")
            host.s.setblocking(True)
            host.s.sendall(pending)

            # RSS under the queue bound plus a small constant (KiB).
            assert_rss_growth(self, rss0, rss_max, self.QUEUE // 1024 + 3072,
                              "stall of %d s (max)" % STALL_S)

            # Every response arrives, each once; events come in seq order.
            got = {}
            seqs = []
            while len(got) < len(want):
                m = host.next_message(timeout=30)
                if "ok" in m:
                    self.assertNotIn(m["id"], got, "a response came twice")
                    self.assertTrue(m["ok"], m)
                    got[m["id"]] = m
                elif "seq" in m:
                    seqs.append(m["seq"])
            self.assertEqual(set(got), want, "no response is lost")
            self.assertEqual(seqs, sorted(set(seqs)), "events out of order or repeated")

            # Events were dropped by the bound (not queued without limit)...
            health = host.call("health.get", rid="h")["result"]
            self.assertGreater(health["channel"]["dropped_events"], 0)
            sys.stderr.write("stall of %d s: RSS %d -> max %d KiB (queue %d KiB), %d events "
                             "dropped, %d responses all delivered\n"
                             % (STALL_S, rss0, rss_max, self.QUEUE // 1024,
                                health["channel"]["dropped_events"], len(got)))
            # ...and resume now that the host reads: a fresh metrics event.
            resumed_after = time.time()
            ev = host.wait_event("metrics", timeout=5)
            while ev["ts"] < resumed_after * 1000 - 1000:
                ev = host.wait_event("metrics", timeout=5)
            self.assertGreater(ev["seq"], last_seq)
            self.assertEqual(fd_count(agent.pid()), fds0)
            host.close()
            self.assertEqual(agent.stop(), 0)


class VanishingHostTest(unittest.TestCase):
    """A host that goes away in the middle of a large response, 100 times: no
    crash, no leak (RSS and descriptors flat), the next host served. Under the
    ASan build, leaks also fail the exit status."""

    ROUNDS = 100

    def test_host_vanishes_mid_large_response_100_times(self):
        with tempfile.TemporaryDirectory(prefix="guestd-vanish-") as tmp:
            big = os.path.join(tmp, "big.bin")
            with open(big, "wb") as f:
                f.write(os.urandom(3 << 20))
            with Agent("--set", "commands.exec_max_output_bytes=2097152") as agent:
                host = agent.connect()
                self.assertTrue(host.call("ping")["ok"])
                host.close()
                rss = {}
                fds = {}
                rng = random.Random(9)
                for r in range(self.ROUNDS):
                    host = connect_when_listening(agent)
                    kind = r % 3
                    if kind == 0:  # 3 MiB file, 4 MiB of base64
                        host.send({"id": r, "cmd": "file.read",
                                   "args": {"path": big, "max_bytes": 3 << 20}})
                    elif kind == 1:  # 2 MiB of NULs, 12 MiB of \u0000 escapes
                        host.send({"id": r, "cmd": "exec",
                                   "args": {"argv": ["head", "-c", "2097152", "/dev/zero"]}})
                    else:  # many replies queued at once
                        host.send_raw(b"".join(b'{"id":%d,"cmd":"info"}\n' % i
                                               for i in range(200)))
                    # Read a random part of what comes (maybe nothing), then vanish.
                    want = rng.choice([0, 1, 4096, 65536, 300000])
                    got = 0
                    host.s.settimeout(5)
                    while got < want:
                        chunk = host.s.recv(min(65536, want - got))
                        if not chunk:
                            break
                        got += len(chunk)
                    if rng.random() < 0.5:
                        # RST instead of FIN: close with unread data and linger 0.
                        host.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    host.close()
                    if r in (9, self.ROUNDS - 1):
                        # Settled: the last round's work is finished and dropped.
                        probe = connect_when_listening(agent)
                        self.assertTrue(probe.call("ping", rid="probe")["ok"])
                        probe.close()
                        time.sleep(0.5)
                        rss[r] = agent.status("VmRSS")
                        fds[r] = fd_count(agent.pid())
                self.assertIsNone(agent.proc.poll(), "the agent died")
                # The next host is served.
                host = connect_when_listening(agent)
                self.assertEqual(host.call("ping", rid="after")["result"], {"pong": True})
                host.close()
                first, last = rss[9], rss[self.ROUNDS - 1]
                self.assertEqual(fds[self.ROUNDS - 1], fds[9], "descriptors leaked")
                # Flat: allocator noise only, not a response per round.
                assert_rss_growth(self, first, last, 6144,
                                  "vanishing hosts, rounds 10..%d" % self.ROUNDS)
                sys.stderr.write("vanishing hosts: RSS %d -> %d KiB, fds %d -> %d over rounds "
                                 "10..%d\n" % (first, last, fds[9], fds[self.ROUNDS - 1],
                                                self.ROUNDS))
                self.assertEqual(agent.stop(), 0, "guestd should exit 0 (ASan: no leak)")


def log_lines(path):
    """(whole lines, partial tail) of one log file."""
    with open(path, "rb") as f:
        data = f.read()
    parts = data.split(b"\n")
    return parts[:-1], parts[-1]


def log_files(path):
    """The log and its rotated siblings, oldest first."""
    d, base = os.path.split(path)
    rotated = []
    if not os.path.isdir(d):  # the agent makes it when it first opens the log
        return []
    for name in os.listdir(d):
        if name.startswith(base + ".") and name[len(base) + 1:].isdigit():
            rotated.append((int(name[len(base) + 1:]), os.path.join(d, name)))
    out = [p for _, p in sorted(rotated, reverse=True)]
    if os.path.exists(path):
        out.append(path)
    return out


def all_whole_lines(path):
    """Every whole line of the log in order; asserts that only the current
    file may end in a partial line, and returns it too."""
    lines = []
    tail = b""
    files = log_files(path)
    for i, name in enumerate(files):
        whole, tail = log_lines(name)
        if i < len(files) - 1:
            assert tail == b"", "%s (rotated) ends in a partial line" % name
        for line in whole:
            json.loads(line)  # each whole line is one JSON object
        lines += whole
    return lines, tail


def newline_count(path):
    """Lines in the log and its siblings, read while the agent may be rotating
    them (so only a count, for waiting; checks read the files at rest)."""
    n = 0
    for name in log_files(path):
        try:
            with open(name, "rb") as f:
                n += f.read().count(b"\n")
        except OSError:
            pass
    return n


class MetricsLogKillTest(unittest.TestCase):
    """SIGKILL while the metrics log is being written, 50 times: after each
    restart no torn line is visible and no earlier line is lost. The files are
    checked with the agent dead (no rotation running): every earlier line is
    still there, in order, and every line is one whole JSON object, so a torn
    line that a restart failed to cut would show as a line that does not
    parse."""

    ROUNDS = 50

    def test_sigkill_during_metrics_log_writes_50_times(self):
        tmp = tempfile.TemporaryDirectory(prefix="guestd-kill-")
        self.addCleanup(tmp.cleanup)
        path = os.path.join(tmp.name, "log", "metrics.ndjson")
        args = ("--set", "metrics.log_path=" + path, "--set", "metrics.interval_ms=100",
                "--set", "health.interval_ms=100", "--set", "metrics.log_max_bytes=16384",
                "--set", "metrics.log_keep=100", "--set", "metrics.log_fsync=never",
                "--set", "health.min_free_bytes=0", "--log-level", "info")
        rng = random.Random(50)
        seen = []  # every whole line seen so far, in order
        torn = 0
        for r in range(self.ROUNDS + 1):
            agent = Agent(*args)
            try:
                # It has started again and written: the restart cut any torn tail.
                wait_until(lambda: newline_count(path) > len(seen),
                           what="round %d's first line" % r)
                # A few lines more, then a kill at a random moment.
                if r < self.ROUNDS:
                    time.sleep(rng.uniform(0.0, 0.4))
            finally:
                if r < self.ROUNDS and agent.proc.poll() is None:
                    os.kill(agent.pid(), signal.SIGKILL)
            if r == self.ROUNDS:
                self.assertEqual(agent.stop(), 0)
            else:
                agent.proc.wait()
                agent.log.close()
                agent.dir.cleanup()
            lines, tail = all_whole_lines(path)
            torn += tail != b""
            self.assertEqual(lines[:len(seen)], seen,
                             "round %d: an earlier line was lost or changed" % r)
            self.assertGreater(len(lines), len(seen), "round %d wrote nothing" % r)
            for line in lines[len(seen):]:
                self.assertTrue(line.startswith(b'{"event":'), line[:80])
            seen = lines
        sys.stderr.write("metrics log: %d lines over %d kills, %d torn tails cut on restart\n"
                         % (len(seen), self.ROUNDS, torn))


class DiskFullTest(unittest.TestCase):
    """The metrics log on a small tmpfs that fills up, with rotation on, then
    space is freed: the agent keeps answering, memory stays flat, no torn line
    is left, health says why, and logging resumes by itself."""

    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="guestd-faultfull-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.skipTest("cannot mount a tmpfs (needs root): " + r.stderr.strip())

    def tearDown(self):
        subprocess.run(["umount", "-l", self.mnt])
        os.rmdir(self.mnt)

    def test_disk_full_under_the_log_then_freed(self):
        path = os.path.join(self.mnt, "metrics.ndjson")
        filler = os.path.join(self.mnt, "filler")
        with Agent("--set", "metrics.log_path=" + path, "--set", "metrics.interval_ms=100",
                   "--set", "health.interval_ms=200", "--set", "metrics.log_max_bytes=32768",
                   "--set", "metrics.log_keep=3", "--set", "health.min_free_bytes=0") as agent:
            host = connect_when_listening(agent)

            def log_report():
                return host.call("health.get", rid="h")["result"]["metrics_log"]

            wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 0,
                       what="the first line")
            # Fill what is left, in whole pages, while the agent writes.
            with open(filler, "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"f" * 4096)
                except OSError:
                    pass
            rss0 = agent.status("VmRSS")
            wait_until(lambda: log_report()["lines_lost"] > 0, timeout=10, what="a lost line")
            # Full for a while: events keep coming, nothing is queued without bound.
            for _ in range(20):
                self.assertTrue(host.call("ping", rid="p")["ok"])
                time.sleep(0.1)
            assert_rss_growth(self, rss0, agent.status("VmRSS"), 2048, "disk full for 2 s")
            self.assertFalse(log_report()["ok"])
            lines, tail = all_whole_lines(path)  # asserts rotated files are whole
            self.assertEqual(tail, b"", "a torn line on the full disk")
            # Freed: logging resumes without a restart.
            os.unlink(filler)
            lost = log_report()["lines_lost"]
            wait_until(lambda: log_report()["ok"], timeout=10, what="the log to recover")
            n = len(all_whole_lines(path)[0])
            wait_until(lambda: len(all_whole_lines(path)[0]) > n + 5, what="new lines")
            self.assertEqual(log_report()["lines_lost"], lost, "lines lost after space came back")
            lines, tail = all_whole_lines(path)
            self.assertEqual(tail, b"")
            host.close()


def children_of(pid):
    """Pids whose parent is pid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(name))
    return out


def procs_with(marker):
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                if marker in f.read():
                    n += 1
        except OSError:
            pass
    return n


class ExecFloodTest(unittest.TestCase):
    """100 execs each printing 100 MB: commands.max_concurrent bounds how many
    run, each keeps only max_output_bytes, every request gets one answer."""

    N = 100
    MB = 100
    CAP = 65536
    CONCURRENT = 4

    def test_exec_flood(self):
        with Agent("--set", "commands.max_concurrent=%d" % self.CONCURRENT,
                   "--set", "commands.exec_max_output_bytes=%d" % self.CAP,
                   "--log-level", "info") as agent:
            host = agent.connect()
            rss0 = agent.status("VmRSS")
            argv = ["head", "-c", str(self.MB * 1000000), "/dev/zero"]
            done = {}
            attempts = 0
            most_children = 0
            todo = list(range(self.N))
            started = time.time()
            while todo:
                # Everything left at once; the bound answers the excess `busy`.
                for i in todo:
                    host.send({"id": i, "cmd": "exec", "args": {"argv": argv}})
                attempts += len(todo)
                answered = 0
                retry = []
                while answered < len(todo):
                    most_children = max(most_children, len(children_of(agent.pid())))
                    m = host.response(timeout=120)
                    answered += 1
                    if m["ok"]:
                        self.assertNotIn(m["id"], done, "two answers to one exec")
                        done[m["id"]] = m["result"]
                    else:
                        self.assertEqual(m["error"]["code"], "busy", m)
                        retry.append(m["id"])
                todo = retry
            elapsed = time.time() - started
            self.assertEqual(sorted(done), list(range(self.N)))
            for r in done.values():
                self.assertEqual(r["exit_code"], 0)
                self.assertTrue(r["stdout_truncated"])
                self.assertEqual(len(r["stdout"]), self.CAP)  # NULs: one char each
            self.assertLessEqual(most_children, self.CONCURRENT)
            self.assertGreater(attempts, self.N, "the bound never answered busy")
            # Memory: the kept output of CONCURRENT execs, not of 100 x 100 MB.
            assert_rss_growth(self, rss0, agent.status("VmRSS"), 16384, "exec flood")
            self.assertEqual(children_of(agent.pid()), [])
            self.assertTrue(host.call("ping", rid="alive")["ok"])
            sys.stderr.write("exec flood: %d x %d MB in %.1f s, %d attempts\n"
                             % (self.N, self.MB, elapsed, attempts))
            host.close()

    def test_fork_bomb_is_bounded_by_max_concurrent_and_timeouts(self):
        setpriv, prlimit = shutil.which("setpriv"), shutil.which("prlimit")
        if os.geteuid() != 0 or not setpriv or not prlimit:
            self.skipTest("needs root, setpriv and prlimit to run the bomb as nobody")
        # RLIMIT_NPROC binds only an unprivileged uid: the bomb runs as
        # nobody with at most 64 processes, so it cannot take the machine
        # (it refuses to start if the limit is not there).
        marker = "guestd-fork-bomb-%d" % os.getpid()
        guard = "grep -Eq '^Max processes +64 ' /proc/self/limits || exit 99"

        def bomb(leader):
            # leader: what the group's first process does once the bomb is lit.
            script = ": %s; %s; b() { b | b & }; b; %s" % (marker, guard, leader)
            return [prlimit, "--nproc=64", "--", setpriv, "--reuid=65534", "--regid=65534",
                    "--clear-groups", "/bin/sh", "-c", script]

        self.addCleanup(kill_marked, marker.encode())
        with Agent("--set", "commands.max_concurrent=2",
                   "--set", "commands.exec_kill_grace_ms=200", "--log-level", "info") as agent:
            host = agent.connect()
            # 0: the leader stays, the timeout kills the group; 1: the leader
            # exits at once, its exit kills the group; 2..5: over the bound.
            for i in range(6):
                leader = "sleep 60" if i % 2 == 0 else "exit 0"
                host.send({"id": i, "cmd": "exec", "args": {"argv": bomb(leader),
                                                              "timeout_ms": 1500}})
            answers = {}
            pings = []
            t0 = time.time()
            while len(answers) < 6:
                # The agent keeps answering while the bombs run.
                p0 = time.time()
                self.assertTrue(host.call("ping", rid="ping")["ok"])
                pings.append(time.time() - p0)
                try:
                    m = host.response(timeout=0.2)
                except TimeoutError:
                    continue
                if m["id"] != "ping":
                    answers[m["id"]] = m
            self.assertEqual(sorted(answers), list(range(6)))
            for i in range(2, 6):
                self.assertEqual(answers[i]["error"]["code"], "busy", answers[i])
            timed = answers[0]["result"]
            self.assertTrue(timed["timed_out"], timed)
            self.assertIn(timed["signal"], ("TERM", "KILL", "SIGTERM", "SIGKILL"), timed)
            # Its leader ended at once (exit 0, or 2 when the other bomb had
            # already used nobody's 64 processes and sh could not fork).
            quick = answers[1]["result"]
            self.assertFalse(quick["timed_out"], quick)
            self.assertIn(quick["exit_code"], (0, 2), quick)
            self.assertLess(time.time() - t0, 15)
            self.assertLess(max(pings), 2.0, "a ping waited %.2f s during the bomb" % max(pings))
            # The whole process group went, both ways: nothing of the bomb is left.
            wait_until(lambda: procs_with(marker.encode()) == 0, timeout=10,
                       what="the bomb's processes to end")
            self.assertEqual(children_of(agent.pid()), [])
            sys.stderr.write("fork bomb: answered in %.1f s, slowest ping %.0f ms\n"
                             % (time.time() - t0, max(pings) * 1000))
            host.close()


def kill_marked(marker):
    """Safety net: SIGKILL whatever is left of a bomb, until nothing is."""
    for _ in range(100):
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    if marker in f.read():
                        pids.append(int(name))
            except OSError:
                pass
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


if __name__ == "__main__":
    unittest.main(verbosity=2)
