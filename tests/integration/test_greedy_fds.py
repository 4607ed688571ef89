#!/usr/bin/env python3
"""A greedy host against the agent's file descriptors and configuration
(issue 16, items 9 and 10), on the real guestd under a low open-file limit:

- guest-file-open handles stop at their documented share of the limit, with
  qemu-ga's own EMFILE error, and one more opens once one is closed;
- the collectors keep no more /proc and sysfs files open than their share;
- at the limit, a host connection waiting to be accepted costs (next to) no
  CPU: it is taken with the reserve fd, or the listener is left alone and
  retried with backoff; the attached host keeps answering, and everything
  recovers once fds are freed;
- config.set cannot raise a key past its ceiling.

Prints the agent's CPU time while a connection waits at EMFILE."""
import errno
import os
import re
import resource
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from host import GUESTD, Agent, scaled  # noqa: E402
from test_qga import Qga  # noqa: E402

LIMIT = 256
# strerror(EMFILE) of the agent's C library: glibc's (Python's own), or
# musl's for the static build (packaging/static.sh), whose text it carries.
_MUSL_EMFILE = "No file descriptors available"
with open(GUESTD, "rb") as _f:
    EMFILE_TEXT = _MUSL_EMFILE if _MUSL_EMFILE.encode() in _f.read() else os.strerror(errno.EMFILE)
# docs/configuration.md "Open files": the shares for a limit of 256.
SHARES = {"headroom": 64, "commands": 96, "at_once": 22, "collectors": 48, "file_handles": 24}
QUIET = ["--set", "channel.dialect=qemu-ga", "--set", "metrics.interval_ms=86400000", "--set", "health.interval_ms=86400000",
         "--set", "channel.poll_max_ms=1000"]


def start_agent(*extra, limit=LIMIT):
    """guestd started with RLIMIT_NOFILE's soft limit at limit (inherited
    from this process, which lowers its own for the spawn)."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, old[1]))
    try:
        return Agent(*extra)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


def open_fds(pid):
    out = {}
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(name)] = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except FileNotFoundError:
            pass
    return out


def lowest_free_fd(pid):
    used = set(open_fds(pid))
    n = 0
    while n in used:
        n += 1
    return n


def at_the_limit(pid):
    """Sets the agent's soft limit to its lowest free fd: its next open,
    socket or accept fails with EMFILE."""
    hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]
    n = lowest_free_fd(pid)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (n, hard))
    return n


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15; fields[0] is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_log(agent, text, timeout=5):
    deadline = time.time() + scaled(timeout)
    while text not in agent.stderr():
        if time.time() > deadline:
            raise AssertionError("%r not in the agent's log:\n%s" % (text, agent.stderr()))
        time.sleep(0.02)


def closed_by_agent(sock, timeout):
    """True when the agent closes sock (end of file) within timeout."""
    sock.settimeout(scaled(timeout))
    try:
        return sock.recv(100) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def open_handles(q, want_refused=True, limit=2000):
    """guest-file-open /dev/null until refused: the handles and the error."""
    handles = []
    for _ in range(limit):
        r = q.call("guest-file-open", {"path": "/dev/null"})
        if "error" in r:
            return handles, r["error"]
        handles.append(r["return"])
    raise AssertionError("guest-file-open never refused after %d handles" % limit)


class FdBudgetTest(unittest.TestCase):
    def test_budget_is_logged_and_file_handles_stop_at_their_share(self):
        with start_agent(*QUIET) as agent:
            wait_log(agent, "fd budget:")
            self.assertIn("fd budget: open-file limit %d: headroom %d, commands %d (%d at once), "
                          "collectors %d, guest-file handles %d"
                          % (LIMIT, SHARES["headroom"], SHARES["commands"], SHARES["at_once"],
                             SHARES["collectors"], SHARES["file_handles"]), agent.stderr())
            q = Qga(agent.sock)
            handles, err = open_handles(q)
            self.assertEqual(len(handles), SHARES["file_handles"])
            self.assertEqual(err["class"], "GenericError")
            self.assertEqual(err["desc"],
                             "failed to open file '/dev/null' (mode: 'r'): %s: "
                             "%d handles are open, guest-file-open's share of the agent's "
                             "open-file limit; close one with guest-file-close"
                             % (EMFILE_TEXT, SHARES["file_handles"]))
            # The agent holds them all, and nothing else is lost: it answers.
            self.assertEqual(sum(1 for t in open_fds(agent.pid()).values() if t == "/dev/null"),
                             SHARES["file_handles"] + 1 + 2)  # + the reserve, stdin, stdout
            self.assertEqual(q.call("guest-ping"), {"return": {}})
            # One closed, one more opens; then refused again.
            self.assertEqual(q.call("guest-file-close", {"handle": handles[0]}), {"return": {}})
            self.assertIn("return", q.call("guest-file-open", {"path": "/dev/null"}))
            self.assertIn("error", q.call("guest-file-open", {"path": "/dev/null"}))
            # A failed open gives its place back.
            self.assertEqual(q.call("guest-file-close", {"handle": handles[1]}), {"return": {}})
            self.assertIn("error", q.call("guest-file-open", {"path": "/nonexistent/guestd"}))
            self.assertIn("return", q.call("guest-file-open", {"path": "/dev/null"}))
            q.close()
            self.assertEqual(agent.stop(), 0)

    def test_collectors_keep_no_more_files_than_their_share(self):
        with start_agent(*QUIET) as agent:
            q = Qga(agent.sock)
            self.assertEqual(q.call("guest-ping"), {"return": {}})  # collectors primed
            kept = [t for t in open_fds(agent.pid()).values()
                    if re.fullmatch(r"/proc/\d+/stat", t) or t.startswith("/sys/")]
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
            print("collectors keep %d files open (%d processes; share %d)"
                  % (len(kept), len(pids), SHARES["collectors"]))
            if len(pids) > SHARES["collectors"] + 10:
                self.assertEqual(len(kept), SHARES["collectors"])
            else:
                self.assertLessEqual(len(kept), SHARES["collectors"])
            q.close()


class AcceptAtTheLimitTest(unittest.TestCase):
    def test_pending_connection_at_emfile_costs_no_cpu_and_all_recovers(self):
        with start_agent(*QUIET) as agent:
            pid = agent.pid()
            host1 = Qga(agent.sock)
            handles, _ = open_handles(host1)

            # 1. A host attached, the agent at its limit: a second host is
            # accepted with the reserve fd and closed at once.
            at_the_limit(pid)
            host2 = connect(agent.sock)
            self.assertTrue(closed_by_agent(host2, 2), "the second host is closed at once")
            host2.close()
            self.assertEqual(host1.call("guest-ping"), {"return": {}})
            wait_log(agent, "channel: out of file descriptors (%s)" % EMFILE_TEXT)

            # 2. No host, the agent at its limit: the next host takes the
            # reserve fd and is served; the one after it waits in the
            # listener's backlog, which is not watched until a retry.
            host1.close()
            deadline = time.time() + scaled(5)
            while "host detached" not in agent.stderr() and time.time() < deadline:
                time.sleep(0.02)
            at_the_limit(pid)
            host3 = Qga(agent.sock)
            self.assertEqual(host3.call("guest-ping"), {"return": {}})
            host4 = connect(agent.sock)
            time.sleep(0.2)
            before, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(3)
            used, elapsed = cpu_seconds(pid) - before, time.monotonic() - t0
            print("agent CPU over %.1f s with a connection pending at EMFILE: %.0f ms "
                  "(%.1f%% of a core)" % (elapsed, used * 1000, 100 * used / elapsed))
            self.assertLess(used / elapsed, 0.10, "the agent spins on the pending connection")
            self.assertEqual(host3.call("guest-ping"), {"return": {}})
            self.assertFalse(closed_by_agent(host4, 0.1), "host4 still waits")

            # 3. Fds available again (the limit back up: closing handles
            # would free slots above the lowest free one set as the limit
            # here): the waiting connection is taken at the next retry
            # (closed: host3 is the host), then a new host is served.
            hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (LIMIT, hard))
            self.assertTrue(closed_by_agent(host4, 3), "the waiting host is answered")
            host4.close()
            wait_log(agent, "channel: accepting host connections again")
            host3.close()
            deadline = time.time() + scaled(5)
            while agent.stderr().count("host detached") < 2 and time.time() < deadline:
                time.sleep(0.02)
            host5 = Qga(agent.sock)
            self.assertEqual(host5.call("guest-ping"), {"return": {}})
            # The handles outlive their host (as qemu-ga's do): still 24.
            self.assertIn("error", host5.call("guest-file-open", {"path": "/dev/null"}))
            self.assertEqual(host5.call("guest-file-close", {"handle": handles[0]}), {"return": {}})
            self.assertIn("return", host5.call("guest-file-open", {"path": "/dev/null"}))
            host5.close()

            # Each burst is logged once, not once per attempt.
            log = agent.stderr()
            self.assertEqual(log.count("out of file descriptors"), 1, log)
            self.assertEqual(log.count("cannot accept a host connection"), 0, log)
            self.assertEqual(log.count("accepting host connections again"), 1, log)
            self.assertEqual(agent.stop(), 0)


class CeilingsTest(unittest.TestCase):
    RUNTIME = {"commands.max_concurrent": 64, "commands.file_max_bytes": 50331648,
               "commands.exec_max_output_bytes": 16777216, "metrics.top_processes": 100}
    RESTART = {"channel.max_message_bytes": 67108864, "channel.out_queue_bytes": 134217728,
               "metrics.history": 2880}

    def test_config_set_over_each_ceiling_is_refused(self):
        with Agent() as agent:
            host = agent.connect()
            before = host.call("config.get")["result"]
            for key, ceiling in self.RUNTIME.items():
                for value in (ceiling + 1, 1 << 40):
                    r = host.call("config.set", {"key": key, "value": value})
                    self.assertFalse(r["ok"], key)
                    self.assertEqual(r["error"]["code"], "invalid_args")
                    self.assertIn("%s: %d is above the ceiling of %d, " % (key, value, ceiling),
                                  r["error"]["message"])
                    self.assertTrue(r["error"]["message"].endswith("..%d)" % ceiling))
                r = host.call("config.set", {"key": key, "value": ceiling})
                self.assertTrue(r["ok"], r)
                self.assertEqual(r["result"]["value"], ceiling)
            after = host.call("config.get")["result"]
            for key in self.RUNTIME:
                section, name = key.split(".")
                after[section][name] = before[section][name]
            self.assertEqual(after, before)
            host.s.close()
            self.assertEqual(agent.stop(), 0)

    def test_startup_over_each_ceiling_is_refused(self):
        import subprocess
        from host import GUESTD
        for key, ceiling in {**self.RUNTIME, **self.RESTART}.items():
            r = subprocess.run([GUESTD, "-c", "/dev/null", "--dump-config",
                                "--set", "%s=%d" % (key, ceiling + 1)],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, key)
            self.assertIn("%s: %d is above the ceiling of %d, " % (key, ceiling + 1, ceiling),
                          r.stderr)
            r = subprocess.run([GUESTD, "-c", "/dev/null", "--dump-config",
                                "--set", "%s=%d" % (key, ceiling)],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
