"""A host for integration tests: starts the real guestd on a unix-listen
socket in a temporary directory and speaks protocol.md to it."""
import json
import os
import socket
import subprocess
import tempfile
import time

GUESTD = os.environ.get("GUESTD_BIN", os.path.join(os.path.dirname(__file__), "../../build/guestd"))


class Agent:
    """One guestd process. extra: more command-line arguments."""

    def __init__(self, *extra, config_text=None):
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
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 10
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None:
                raise RuntimeError("guestd exited with %d:\n%s" % (self.proc.returncode, self.stderr()))
            if time.time() > deadline:
                raise RuntimeError("guestd did not listen:\n" + self.stderr())
            time.sleep(0.01)

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
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        rc = self.proc.returncode
        self.dir.cleanup()
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Host:
    """The host side of one connection: lines in, lines out."""

    def __init__(self, path, timeout=10):
        # The socket file exists from bind(); connects are refused until
        # listen(), a moment later: retry through that gap.
        deadline = time.time() + timeout
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
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no line from the agent within %.1f s" % timeout)
            self.s.settimeout(left)
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise EOFError("the agent closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def next_message(self, timeout=10):
        if self.pending:
            return self.pending.pop(0)
        return self.read_line(timeout)

    def wait_for(self, match, timeout=10):
        """The first message for which match(msg) holds; others are kept."""
        for i, msg in enumerate(self.pending):
            if match(msg):
                return self.pending.pop(i)
        deadline = time.time() + timeout
        while True:
            msg = self.read_line(max(0.01, deadline - time.time()))
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
