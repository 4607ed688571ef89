"""A host for integration tests: starts the real guestd on a unix-listen
socket in a temporary directory and speaks protocol.md to it."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

GUESTD = os.environ.get("GUESTD_BIN", os.path.join(os.path.dirname(__file__), "../../build/guestd"))

# GUESTD_VALGRIND=1 runs every agent under valgrind's memcheck: an error or a
# definite or indirect leak makes valgrind exit with VALGRIND_EXIT, and stop()
# fails the test with valgrind's report. The agent then runs 20 to 50 times
# slower, so waits for it are stretched by TIME_SCALE (GUESTD_TIME_SCALE, 10
# by default under valgrind, 1 otherwise).
VALGRIND = os.environ.get("GUESTD_VALGRIND") == "1"
VALGRIND_EXIT = 99
VALGRIND_ARGS = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                 "--errors-for-leak-kinds=definite,indirect",
                 "--error-exitcode=%d" % VALGRIND_EXIT, "--track-fds=no",
                 "--child-silent-after-fork=yes"]  # the report is the agent's, not its children's
TIME_SCALE = float(os.environ.get("GUESTD_TIME_SCALE", "10" if VALGRIND else "1"))
# RSS and timings of the agent mean nothing under a sanitizer or valgrind.
MEMORY_TOOL = VALGRIND or os.environ.get("GUESTD_SANITIZED") == "1"


def scaled(seconds):
    """A wait for the agent, stretched for a slowed-down agent."""
    return seconds * TIME_SCALE


def wait_socket(d, name):
    """Waits for daemon d (an Agent or a hub: proc, sock, stderr()) to make
    its socket; fails with its stderr when it exits or takes too long."""
    deadline = time.time() + scaled(10)
    while not os.path.exists(d.sock):
        if d.proc.poll() is not None:
            raise RuntimeError("%s exited with %d:\n%s" % (name, d.proc.returncode, d.stderr()))
        if time.time() > deadline:
            raise RuntimeError("%s did not listen:\n%s" % (name, d.stderr()))
        time.sleep(0.01)


def terminate(proc, timeout):
    """SIGTERM, waits up to timeout (scaled), then SIGKILL; returns whether
    it had to kill (the process did not exit on SIGTERM)."""
    if proc.poll() is not None:
        return False
    proc.terminate()
    try:
        proc.wait(scaled(timeout))
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True


def listening(agent, timeout=10):
    """Returns agent once it takes host connections. Agent() returns once the
    socket file exists, which is before listen(); a probe connection tells
    when it listens. The agent serves one host at a time, so this also waits
    until it has seen the probe go: a test's own connection made while the
    probe is still attached would be refused."""
    deadline = time.time() + scaled(timeout)
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(agent.sock)
            break
        except (ConnectionRefusedError, FileNotFoundError):
            if time.time() > deadline:
                raise
            time.sleep(0.01)
        finally:
            s.close()
    while "channel: host detached" not in agent.stderr():
        if time.time() > deadline:
            raise AssertionError("the agent never saw the probe connection close:\n" +
                                 agent.stderr())
        time.sleep(0.01)
    return agent


class Agent:
    """One guestd process. extra: more command-line arguments; wrapper: a
    command line the agent (or valgrind) is exec'd by, keeping its pid (e.g.
    unshare); env: the agent's environment (default: the test's)."""

    def __init__(self, *extra, config_text=None, wrapper=None, env=None):
        self.dir = tempfile.TemporaryDirectory(prefix="guestd-it-")
        self.sock = os.path.join(self.dir.name, "agent.sock")
        args = [GUESTD, "--channel", "unix-listen:" + self.sock]
        if config_text is not None:
            cfg = os.path.join(self.dir.name, "guestd.conf")
            with open(cfg, "w") as f:
                f.write(config_text)
            args += ["-c", cfg]
        else:
            args += ["-c", "/dev/null"]
        args += ["--set", "metrics.log_path=none", "--log-level", "debug"]
        args += list(extra)
        self.log_path = os.path.join(self.dir.name, "stderr.log")
        self.log = open(self.log_path, "wb")
        self.valgrind_log = os.path.join(self.dir.name, "valgrind.log")
        if VALGRIND:
            args = VALGRIND_ARGS + ["--log-file=" + self.valgrind_log] + args
        if wrapper:
            args = list(wrapper) + args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        wait_socket(self, "guestd")

    def stderr(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def pid(self):
        return self.proc.pid

    def status(self, field):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def connect(self, wait_hello=True):
        host = Host(self.sock)
        if wait_hello:
            host.hello = host.wait_event("hello")
        return host

    def stop(self, timeout=5):
        """SIGTERM, then the exit status. Under valgrind, fails when valgrind
        found an error or a leak, or could not finish its leak check."""
        hung = terminate(self.proc, timeout)
        self.log.close()
        rc = self.proc.returncode
        report = self.valgrind_report() if VALGRIND else ""
        self.dir.cleanup()
        if VALGRIND and rc == VALGRIND_EXIT:
            raise AssertionError("valgrind found errors in guestd:\n" + report)
        if VALGRIND and hung:
            raise AssertionError("guestd under valgrind did not exit within %.0f s of SIGTERM:\n%s"
                                 % (scaled(timeout), report))
        return rc

    def valgrind_report(self):
        try:
            with open(self.valgrind_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return "(no valgrind log)"

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        try:
            self.stop()
        except AssertionError as e:
            if exc_type is None:
                raise
            # The test's own failure is the one raised; valgrind's goes beside it.
            print(e, file=sys.stderr)


class Host:
    """The host side of one connection: lines in, lines out."""

    def __init__(self, path, timeout=10):
        # The socket file exists from bind(); connects are refused until
        # listen(), a moment later: retry through that gap.
        deadline = time.time() + scaled(timeout)
        while True:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.s.connect(path)
                break
            except ConnectionRefusedError:
                self.s.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.01)
        self.buf = b""
        self.pending = []  # parsed lines read but not yet taken
        self.hello = None

    def send_raw(self, data):
        self.s.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def read_line(self, timeout=10):
        return self.read_line_until(time.time() + scaled(timeout))

    def read_line_until(self, deadline):
        return json.loads(self.read_raw_line_until(deadline))

    def read_raw_line_until(self, deadline):
        """The next line's bytes, without its newline."""
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no line from the agent in time")
            self.s.settimeout(left)
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise EOFError("the agent closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def next_message(self, timeout=10):
        if self.pending:
            return self.pending.pop(0)
        return self.read_line(timeout)

    def wait_for(self, match, timeout=10):
        """The first message for which match(msg) holds; others are kept."""
        for i, msg in enumerate(self.pending):
            if match(msg):
                return self.pending.pop(i)
        deadline = time.time() + scaled(timeout)
        while True:
            msg = self.read_line_until(max(time.time() + 0.01, deadline))
            if match(msg):
                return msg
            self.pending.append(msg)

    def wait_event(self, name, timeout=10):
        return self.wait_for(lambda m: m.get("event") == name, timeout)

    def response(self, rid=None, timeout=10):
        """The next response (any id when rid is None)."""
        return self.wait_for(lambda m: "ok" in m and (rid is None or m.get("id") == rid), timeout)

    def call(self, cmd, args=None, rid="r", timeout=10):
        req = {"id": rid, "cmd": cmd}
        if args is not None:
            req["args"] = args
        self.send(req)
        return self.response(rid, timeout)

    def close(self):
        self.s.close()
